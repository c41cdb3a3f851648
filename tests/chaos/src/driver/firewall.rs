//! Cut and reset for a store that no proxy can front: a Redis Cluster,
//! whose clients follow the addresses the nodes announce. The host's
//! firewall (iptables, as root) stands in for the proxy: rules on the
//! traffic from this machine to the nodes' ports drop it (a cut) or answer
//! it with a TCP reset (a reset). The nodes still reach each other (that
//! traffic is forwarded between containers, not sent by this machine), so
//! the cluster itself stays whole: only the apps are cut off.
//!
//! Every rule carries a comment naming this process, and a [`Rules`] value
//! deletes the ones it added when dropped, so a failed cell leaves none.

use std::net::SocketAddr;
use std::process::{Command, Stdio};

/// What the rules do to the apps' packets.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Block {
    /// Dropped: the apps see silence, as in a partition.
    Drop,
    /// Answered with a TCP reset: open connections break, new ones are refused.
    Reset,
}

/// Rules added to the host's OUTPUT chain, one per node; deleted on drop.
#[derive(Debug)]
pub(crate) struct Rules {
    added: Vec<Vec<String>>,
}

impl Rules {
    /// Blocks the traffic from this machine to `nodes`.
    ///
    /// # Errors
    /// When iptables is missing or refuses (not root, say); the rules added
    /// before the failure are deleted.
    pub(crate) fn block(nodes: &[SocketAddr], how: Block) -> Result<Self, String> {
        let mut rules = Self { added: Vec::new() };
        for node in nodes {
            let mut rule: Vec<String> = [
                "OUTPUT",
                "-p",
                "tcp",
                "-d",
                &node.ip().to_string(),
                "--dport",
                &node.port().to_string(),
                "-m",
                "comment",
                "--comment",
                &format!("idem-chaos-{}", std::process::id()),
                "-j",
            ]
            .map(str::to_owned)
            .to_vec();
            match how {
                Block::Drop => rule.push("DROP".into()),
                Block::Reset => {
                    rule.extend(["REJECT", "--reject-with", "tcp-reset"].map(Into::into))
                }
            }
            iptables("-I", &rule)?;
            rules.added.push(rule);
        }
        Ok(rules)
    }

    /// Whether this machine's firewall can be changed here (iptables is
    /// installed and answers, as root); why not, if not.
    pub(crate) fn unavailable() -> Option<String> {
        match Command::new("iptables")
            .args(["-w", "-S", "OUTPUT"])
            .output()
        {
            Ok(out) if out.status.success() => None,
            Ok(out) => Some(format!(
                "iptables refused ({}): cutting the cluster's nodes needs root",
                String::from_utf8_lossy(&out.stderr).trim()
            )),
            Err(e) => Some(format!("no iptables to cut the cluster's nodes off: {e}")),
        }
    }
}

impl Drop for Rules {
    fn drop(&mut self) {
        for rule in self.added.drain(..) {
            if let Err(e) = iptables("-D", &rule) {
                tracing::error!(%e, "a firewall rule of the chaos driver was left in place");
            }
        }
    }
}

/// Runs `iptables -w <op> <rule>`.
fn iptables(op: &str, rule: &[String]) -> Result<(), String> {
    let out = Command::new("iptables")
        .arg("-w")
        .arg(op)
        .args(rule)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run iptables: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "iptables {op} {} failed: {}",
            rule.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}
