//! The shared store of a run, and what a fault can do to it: its
//! containers (their processes stopped, a restart), a proxy in front of it, and for
//! SQLite a connection that holds the database locked.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tokio::process::Command;

/// The store of one backend's run.
#[derive(Debug, Clone)]
pub struct Store {
    /// The backend's name.
    pub backend: String,
    /// Its URL as given (for SQLite: `sqlite://<file>`).
    pub url: String,
    /// Its containers (none when it came from an env URL, or for SQLite).
    pub containers: Vec<String>,
}

impl Store {
    /// Whether it is a SQLite file.
    pub fn is_sqlite(&self) -> bool {
        self.backend == "sqlite"
    }

    /// Whether a proxy can sit in front of it (one server, one address:
    /// not a cluster, whose clients follow the nodes' own addresses).
    pub fn proxied(&self) -> bool {
        !self.is_sqlite() && self.backend != "redis-cluster"
    }

    /// The addresses in its URL: for a Redis Cluster, every node's (the
    /// nodes announce the same addresses, so its clients use those).
    ///
    /// # Errors
    /// When an address is not `ip:port`.
    pub fn nodes(&self) -> Result<Vec<SocketAddr>, String> {
        let hosts = self.url.split_once("://").map_or("", |(_, rest)| rest);
        let hosts = hosts.split(['/', '?']).next().unwrap_or_default();
        let hosts = hosts.rsplit_once('@').map_or(hosts, |(_, h)| h);
        hosts
            .split(',')
            .map(|h| h.parse().map_err(|e| format!("node address `{h}`: {e}")))
            .collect()
    }

    /// The port the server listens on inside its container.
    fn inner_port(&self) -> u16 {
        match self.backend.as_str() {
            "postgres" => 5432,
            "mysql" => 3306,
            _ => 6379,
        }
    }

    /// Where the proxy forwards to: the container's own address on its
    /// network (it survives a restart, unlike a published port), else the
    /// URL's host and port.
    ///
    /// # Errors
    /// When neither can be read.
    pub async fn upstream(&self) -> Result<SocketAddr, String> {
        if let Some(id) = self.containers.first() {
            let ip = docker(&[
                "inspect",
                "-f",
                "{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}",
                id,
            ])
            .await?;
            let ip = ip
                .split_whitespace()
                .next()
                .ok_or(format!("container {id} has no address"))?;
            return format!("{ip}:{}", self.inner_port())
                .parse()
                .map_err(|e| format!("container address `{ip}`: {e}"));
        }
        let url = url::Url::parse(&self.url).map_err(|e| format!("the store URL: {e}"))?;
        let host = url.host_str().ok_or("the store URL has no host")?;
        let port = url.port().unwrap_or(self.inner_port());
        tokio::net::lookup_host((host, port))
            .await
            .map_err(|e| format!("cannot resolve {host}: {e}"))?
            .next()
            .ok_or(format!("{host} has no address"))
    }

    /// The URL with its host and port replaced by `proxy`'s.
    ///
    /// # Errors
    /// When the URL cannot be parsed.
    pub fn via(&self, proxy: SocketAddr) -> Result<String, String> {
        let mut url = url::Url::parse(&self.url).map_err(|e| format!("the store URL: {e}"))?;
        url.set_ip_host(proxy.ip())
            .map_err(|()| "the store URL takes no host".to_owned())?;
        url.set_port(Some(proxy.port()))
            .map_err(|()| "the store URL takes no port".to_owned())?;
        Ok(url.into())
    }

    /// Stalls the store for `time` and says how long it really stalled:
    /// every process of its (first) container is stopped (`SIGSTOP`) and
    /// continued (`SIGCONT`), as the fault is; for SQLite, another
    /// connection holds an exclusive lock.
    ///
    /// Not `docker pause`: on this machine its `unpause` of a container a
    /// few seconds old often returned 1.4 to 3 s late, and a stall that
    /// long outlasts what the lease allows, so the cell would test another
    /// fault. The signals are sent by the host, at once, and the stall is
    /// measured between them.
    ///
    /// # Errors
    /// When there is nothing to stall, or docker or `kill` fails.
    pub async fn stall(&self, time: Duration) -> Result<Duration, String> {
        if self.is_sqlite() {
            return lock_sqlite(&self.url, time).await;
        }
        let id = self.containers.first().ok_or("no container to stall")?;
        let pids: Vec<String> = docker(&["top", id, "-eo", "pid"])
            .await?
            .lines()
            .skip(1)
            .map(|line| line.trim().to_owned())
            .filter(|pid| !pid.is_empty())
            .collect();
        if pids.is_empty() {
            return Err(format!("container {id} has no process to stop"));
        }
        let started = Instant::now();
        signal("STOP", &pids).await?;
        tracing::info!(id, ?pids, "stopped");
        tokio::time::sleep(time).await;
        signal("CONT", &pids).await?;
        let stalled = started.elapsed();
        tracing::info!(id, ?stalled, "continued");
        Ok(stalled)
    }

    /// Restarts the store's (first) container, gracefully: its server saves
    /// what it holds (Redis is told to write its snapshot, as a Redis with
    /// persistence does on SIGTERM), stops, and starts again.
    ///
    /// # Errors
    /// When there is no container, or docker fails.
    pub async fn restart(&self) -> Result<(), String> {
        let id = self.containers.first().ok_or("no container to restart")?;
        let signal = match self.backend.as_str() {
            // PostgreSQL's fast shutdown (SIGTERM waits for every client).
            "postgres" => "INT",
            "redis" | "redis-cluster" => {
                docker(&["exec", id, "redis-cli", "config", "set", "save", "3600 1"]).await?;
                "TERM"
            }
            _ => "TERM",
        };
        docker(&["kill", "-s", signal, id]).await?;
        let waited = tokio::time::timeout(Duration::from_secs(20), docker(&["wait", id])).await;
        waited.map_err(|_| format!("container {id} did not stop within 20 s"))??;
        docker(&["start", id]).await.map(drop)
    }
}

/// Runs the docker CLI; its standard output, or why it failed.
async fn docker(args: &[&str]) -> Result<String, String> {
    let output = Command::new("docker")
        .args(args)
        .output()
        .await
        .map_err(|e| format!("cannot run docker: {e}"))?;
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    } else {
        Err(format!(
            "docker {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr).trim()
        ))
    }
}

/// Sends signal `name` to every process `pids` names, with one `kill`.
async fn signal(name: &str, pids: &[String]) -> Result<(), String> {
    let mut pids = pids.to_vec();
    // A process listed a moment ago may have exited since (a `docker exec`
    // of a probe, say): `kill` then fails for it, having signalled the
    // others. Signal again those still there (stopping or continuing a
    // process twice is harmless); it fails only if a process that is still
    // there could not be signalled, or if none is left.
    for _ in 0..3 {
        if kill(name, &pids).await? {
            return Ok(());
        }
        pids.retain(|pid| std::path::Path::new(&format!("/proc/{pid}")).exists());
        if pids.is_empty() {
            return Err(format!("kill -{name}: every process listed has exited"));
        }
    }
    Err(format!("kill -{name} {} failed", pids.join(" ")))
}

/// Sends signal `name` to `pids` with one `kill`; whether it reached all.
async fn kill(name: &str, pids: &[String]) -> Result<bool, String> {
    let status = Command::new("kill")
        .arg(format!("-{name}"))
        .args(pids)
        .stderr(std::process::Stdio::null())
        .status()
        .await
        .map_err(|e| format!("cannot run kill: {e}"))?;
    Ok(status.success())
}

/// Holds an exclusive lock on the SQLite database at `url` for `time`;
/// says how long it held it.
async fn lock_sqlite(url: &str, time: Duration) -> Result<Duration, String> {
    use sqlx::Connection as _;
    let mut conn = sqlx::SqliteConnection::connect(url)
        .await
        .map_err(|e| format!("cannot open {url}: {e}"))?;
    sqlx::query("BEGIN EXCLUSIVE")
        .execute(&mut conn)
        .await
        .map_err(|e| format!("cannot lock {url}: {e}"))?;
    let started = Instant::now();
    tokio::time::sleep(time).await;
    sqlx::query("COMMIT")
        .execute(&mut conn)
        .await
        .map_err(|e| format!("cannot unlock {url}: {e}"))?;
    Ok(started.elapsed())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_process_gone_since_it_was_listed_does_not_fail_the_signal() {
        let mut live = Command::new("sleep").arg("30").spawn().unwrap();
        let mut gone = Command::new("true").spawn().unwrap();
        let gone_pid = gone.id().unwrap().to_string();
        gone.wait().await.unwrap();
        let live_pid = live.id().unwrap().to_string();

        let both = [gone_pid.clone(), live_pid.clone()];
        signal("STOP", &both).await.unwrap();
        let state = std::fs::read_to_string(format!("/proc/{live_pid}/stat")).unwrap();
        let state = state.rsplit(") ").next().unwrap().chars().next();
        assert_eq!(state, Some('T'), "the live process was not stopped");
        signal("CONT", &both).await.unwrap();
        assert!(signal("CONT", &[gone_pid]).await.is_err());
        live.kill().await.unwrap();
    }

    #[test]
    fn a_cluster_url_names_every_node() {
        let store = |url: &str| Store {
            backend: "redis-cluster".into(),
            url: url.into(),
            containers: Vec::new(),
        };
        let nodes = store("redis+cluster://:pw@172.18.0.2:6379,172.18.0.3:6379/0")
            .nodes()
            .unwrap();
        assert_eq!(
            nodes,
            [
                "172.18.0.2:6379".parse().unwrap(),
                "172.18.0.3:6379".parse().unwrap()
            ]
        );
        assert!(store("redis+cluster://node-a:6379").nodes().is_err());
    }
}
