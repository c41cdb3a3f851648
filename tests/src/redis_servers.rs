//! Redis servers for the tests: the three-master Redis Cluster of the run
//! ([`cluster`], started in containers by `cargo xtask`), and single servers
//! a test starts itself from the `redis-server` binary, to stop, pause and
//! restart ([`RedisProcess`]).
//!
//! Such a server runs on a free loopback port, in a throwaway directory,
//! with persistence off. It is started under a small `sh` watchdog that
//! kills it by process id, and removes its directory, once the test process
//! is gone.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The binary the servers are started from.
pub const REDIS_SERVER: &str = "redis-server";

/// Runs `redis-server "$@"`, prints its pid, and kills it when the process
/// with pid `$2` (the test process) has exited. `$1` is the server's
/// directory, removed at the end.
const WATCHDOG: &str = r#"
dir=$1; parent=$2; shift 2
redis-server "$@" >/dev/null 2>&1 </dev/null &
server=$!
echo "$server"
while kill -0 "$parent" 2>/dev/null && kill -0 "$server" 2>/dev/null; do sleep 0.2; done
kill -9 "$server" 2>/dev/null
kill -0 "$parent" 2>/dev/null || rm -rf "$dir"
"#;

/// One `redis-server` process on a loopback port.
///
/// Dropping it kills the server; the watchdog kills it anyway when the test
/// process exits.
#[derive(Debug)]
pub struct RedisProcess {
    port: u16,
    pid: u32,
    dir: PathBuf,
    extra: Vec<String>,
}

impl RedisProcess {
    /// Starts a standalone server on a free port.
    pub fn start() -> Result<Self, String> {
        Self::start_with(free_port()?, &[])
    }

    /// Starts a server on `port` with extra `redis-server` arguments.
    pub fn start_with(port: u16, extra: &[&str]) -> Result<Self, String> {
        which(REDIS_SERVER)?;
        let dir = std::env::temp_dir().join(format!("idem-redis-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {dir:?}: {e}"))?;
        let mut server = Self {
            port,
            pid: 0,
            dir,
            extra: extra.iter().map(|s| (*s).to_owned()).collect(),
        };
        server.spawn()?;
        Ok(server)
    }

    fn spawn(&mut self) -> Result<(), String> {
        let port = self.port.to_string();
        let dir = self.dir.display().to_string();
        let log = self.dir.join("redis.log").display().to_string();
        let mut args: Vec<&str> = vec![
            "--port",
            &port,
            "--bind",
            "127.0.0.1",
            "--dir",
            &dir,
            "--logfile",
            &log,
            "--save",
            "",
            "--appendonly",
            "no",
            "--daemonize",
            "no",
        ];
        args.extend(self.extra.iter().map(String::as_str));
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(WATCHDOG)
            .arg("idem-redis-watchdog")
            .arg(&dir)
            .arg(std::process::id().to_string())
            .args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot run sh to start {REDIS_SERVER}: {e}"))?;
        let stdout = child.stdout.take().ok_or("no stdout from the watchdog")?;
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .map_err(|e| format!("cannot read the server's pid: {e}"))?;
        self.pid = line
            .trim()
            .parse()
            .map_err(|_| format!("the watchdog printed no pid: {line:?}"))?;
        self.wait_until(Duration::from_secs(10), |s| s.ping())
            .map_err(|_| {
                format!(
                    "{REDIS_SERVER} on port {} did not answer PING: {}",
                    self.port,
                    self.log_tail()
                )
            })
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// `redis://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Kills the server (`SIGKILL`) and waits until its port refuses
    /// connections.
    pub fn kill(&self) {
        signal("KILL", self.pid);
        let _ = self.wait_until(Duration::from_secs(5), |s| {
            TcpStream::connect(("127.0.0.1", s.port)).is_err()
        });
    }

    /// Freezes the server (`SIGSTOP`): connections are accepted by the
    /// kernel, but nothing is answered.
    pub fn pause(&self) {
        signal("STOP", self.pid);
    }

    /// Thaws a paused server (`SIGCONT`).
    pub fn resume(&self) {
        signal("CONT", self.pid);
    }

    /// Starts the server again on the same port (after [`Self::kill`]).
    pub fn restart(&mut self) -> Result<(), String> {
        self.spawn()
    }

    /// Runs `redis-cli -p <port> <args>` and returns its output.
    pub fn cli(&self, args: &[&str]) -> Result<String, String> {
        cli(self.port, args)
    }

    /// Whether the server answers `PING` (a raw RESP exchange).
    pub fn ping(&self) -> bool {
        let Ok(mut stream) = TcpStream::connect(("127.0.0.1", self.port)) else {
            return false;
        };
        let _ = stream.set_read_timeout(Some(Duration::from_millis(500)));
        let mut reply = [0; 7];
        stream.write_all(b"PING\r\n").is_ok()
            && stream.read_exact(&mut reply).is_ok()
            && &reply == b"+PONG\r\n"
    }

    fn wait_until(&self, limit: Duration, ready: impl Fn(&Self) -> bool) -> Result<(), ()> {
        let start = Instant::now();
        while start.elapsed() < limit {
            if ready(self) {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Err(())
    }

    fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(self.dir.join("redis.log")).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(5)..].join("\n")
    }
}

impl Drop for RedisProcess {
    fn drop(&mut self) {
        self.resume();
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The URL of the three-master Redis Cluster of this run
/// (`IDEM_TEST_REDIS_CLUSTER_URL`, which `cargo xtask` sets after starting
/// the nodes in containers), or why there is none.
pub fn cluster() -> Result<String, String> {
    crate::server(crate::ServerKind::RedisCluster).map(|s| s.url)
}

/// The cluster's nodes as `(host, port)`, from its URL.
pub fn cluster_nodes() -> Vec<(String, u16)> {
    cluster()
        .ok()
        .and_then(|url| {
            url.strip_prefix("redis+cluster://").map(|nodes| {
                nodes
                    .split(',')
                    .filter_map(|n| {
                        let (host, port) = n.rsplit_once(':')?;
                        Some((host.to_owned(), port.parse().ok()?))
                    })
                    .collect()
            })
        })
        .unwrap_or_default()
}

/// A free loopback port.
fn free_port() -> Result<u16, String> {
    TcpListener::bind(("127.0.0.1", 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| format!("cannot find a free port: {e}"))
}

fn cli(port: u16, args: &[&str]) -> Result<String, String> {
    let output = Command::new("redis-cli")
        .args(["-h", "127.0.0.1", "-p", &port.to_string()])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run redis-cli: {e}"))?;
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    } else {
        Err(format!(
            "redis-cli {args:?} failed: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ))
    }
}

fn signal(name: &str, pid: u32) {
    let _ = Command::new("kill")
        .arg(format!("-{name}"))
        .arg(pid.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

fn which(binary: &str) -> Result<(), String> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .any(|dir| dir.join(binary).is_file())
        .then_some(())
        .ok_or_else(|| format!("`{binary}` is not on PATH"))
}
