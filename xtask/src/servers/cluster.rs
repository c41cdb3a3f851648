//! A three-master Redis Cluster in containers, on a private Docker network
//! of its own.
//!
//! The nodes announce their addresses on that network, which the host
//! reaches directly (a Linux bridge), so the cluster's URL names them:
//! `redis+cluster://172.x.y.2:6379,172.x.y.3:6379,172.x.y.4:6379`. A node
//! can then be stalled (its processes stopped), stopped or cut off the network
//! (`docker network disconnect`) by a fault test.
//!
//! The network carries the owner label too. Dropping the cluster removes
//! the nodes, then the network; after an interrupted run (where the
//! watchdog removes only the containers) the next start prunes the network,
//! which nothing uses by then.

use std::any::Any;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use testcontainers::core::{CmdWaitFor, ExecCommand};
use testcontainers::runners::SyncRunner;
use testcontainers::{Container, ImageExt};
use testcontainers_modules::redis::Redis;

use super::{Kind, LABEL, prepare};

const NODES: usize = 3;

/// The nodes, then the network: fields drop in this order.
struct Cluster {
    _nodes: Vec<Container<Redis>>,
    _network: Network,
}

/// A started cluster: the value that keeps it alive, its nodes' container
/// ids, and its URL.
pub(super) type Started = (Box<dyn Any + Send>, Vec<String>, String);

/// Starts the cluster.
pub(super) fn start(image: &str) -> Result<Started, String> {
    prune_networks();
    let network = Network::create(&format!("idem-redis-cluster-{}", std::process::id()))?;
    let mut nodes = Vec::new();
    for _ in 0..NODES {
        let request = prepare(Kind::RedisCluster, Redis::default().into())
            .with_network(network.name.clone())
            .with_cmd([
                "redis-server",
                "--cluster-enabled",
                "yes",
                "--cluster-config-file",
                "nodes.conf",
                "--cluster-node-timeout",
                "5000",
            ]);
        nodes.push(
            request
                .start()
                .map_err(|e| format!("a node ({image}) did not start: {e}"))?,
        );
    }
    let mut addrs = Vec::new();
    for node in &nodes {
        let ip = node
            .get_bridge_ip_address()
            .map_err(|e| format!("a node's address is unknown: {e}"))?;
        addrs.push(format!("{ip}:6379"));
    }
    let mut create = vec!["redis-cli", "--cluster", "create"];
    create.extend(addrs.iter().map(String::as_str));
    create.extend(["--cluster-replicas", "0", "--cluster-yes"]);
    exec(&nodes[0], &create)?;
    wait_until_ok(&nodes)?;
    let url = format!("redis+cluster://{}", addrs.join(","));
    let ids = nodes.iter().map(|n| n.id().to_owned()).collect();
    let cluster = Cluster {
        _nodes: nodes,
        _network: network,
    };
    Ok((Box::new(cluster), ids, url))
}

/// Waits until every node reports `cluster_state:ok` (slots assigned and
/// agreed on).
fn wait_until_ok(nodes: &[Container<Redis>]) -> Result<(), String> {
    let start = Instant::now();
    loop {
        let mut all_ok = true;
        for node in nodes {
            let info = exec(node, &["redis-cli", "cluster", "info"])?;
            all_ok &= info.contains("cluster_state:ok");
        }
        if all_ok {
            return Ok(());
        }
        if start.elapsed() > Duration::from_secs(30) {
            return Err("the cluster did not reach cluster_state:ok within 30 s".into());
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Runs `cmd` in `node` to its end; its standard output, or why it failed.
fn exec(node: &Container<Redis>, cmd: &[&str]) -> Result<String, String> {
    let mut result = node
        .exec(ExecCommand::new(cmd.iter().copied()).with_cmd_ready_condition(CmdWaitFor::exit()))
        .map_err(|e| format!("{cmd:?} could not run in a node: {e}"))?;
    let stdout = result.stdout_to_vec().unwrap_or_default();
    let stdout = String::from_utf8_lossy(&stdout).into_owned();
    match result.exit_code() {
        Ok(Some(0)) => Ok(stdout),
        code => {
            let stderr = result.stderr_to_vec().unwrap_or_default();
            Err(format!(
                "{cmd:?} failed in a node ({code:?}): {stdout}{}",
                String::from_utf8_lossy(&stderr)
            ))
        }
    }
}

/// A Docker network this process created, removed when dropped.
struct Network {
    name: String,
}

impl Network {
    fn create(name: &str) -> Result<Self, String> {
        let output = Command::new("docker")
            .args(["network", "create", "--label"])
            .arg(format!("{}={}", LABEL.0, LABEL.1))
            .arg(name)
            .output()
            .map_err(|e| format!("cannot run docker: {e}"))?;
        if !output.status.success() {
            return Err(format!(
                "docker network create {name} failed: {}",
                String::from_utf8_lossy(&output.stderr).trim()
            ));
        }
        Ok(Self { name: name.into() })
    }
}

impl Drop for Network {
    fn drop(&mut self) {
        let _ = Command::new("docker")
            .args(["network", "rm", &self.name])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// Removes the networks of earlier runs that nothing uses any more (Docker
/// refuses to prune a network in use, so a concurrent run keeps its own).
fn prune_networks() {
    let _ = Command::new("docker")
        .args(["network", "prune", "--force", "--filter"])
        .arg(format!("label={}={}", LABEL.0, LABEL.1))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}
