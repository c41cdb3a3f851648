//! The store servers of `cargo xtask bench --stores`: a `redis-server` and a
//! PostgreSQL 15 server, each a local process on 127.0.0.1 at a free port,
//! pinned to CPU 0 beside the bench server, its files in a temporary
//! directory of its own.
//!
//! `initdb` and `postgres` refuse to run as root, so when this task runs as
//! root both run as the user `nobody` (uid and gid from `/etc/passwd`),
//! through util-linux's `setpriv`, which execs them (so the process this
//! task holds is the postmaster, and `nice` with `--priority` still applies);
//! their directory is handed to `nobody` first. Redis runs as the calling
//! user.
//!
//! Each server is stopped (SIGTERM for Redis, SIGINT, PostgreSQL's fast
//! shutdown, then SIGKILL after 10 s) and its directory removed when its
//! value drops, so also when a step fails. On Ctrl-C the terminal sends
//! SIGINT to the whole process group, the servers included; only a
//! `kill -9` of this task leaves a `idem-bench-*` directory in the
//! temporary directory behind.

use std::fs::File;
use std::net::{Ipv4Addr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use super::{Options, Probe, cpu_ticks, pinned, stat_fields, ticks};

/// Where PostgreSQL 15's server programs are (Debian's layout).
pub(super) const PG_BIN: &str = "/usr/lib/postgresql/15/bin";

/// How long a server may take to accept connections.
const READY_WITHIN: Duration = Duration::from_secs(30);

/// A server process and its directory, stopped and removed on drop.
struct Process {
    name: &'static str,
    child: Child,
    /// The signal that stops it cleanly.
    stop: &'static str,
    dir: PathBuf,
}

impl Drop for Process {
    fn drop(&mut self) {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args([self.stop, &pid]).status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while matches!(self.child.try_wait(), Ok(None)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
        eprintln!("==> {} stopped, {} removed", self.name, self.dir.display());
    }
}

/// A redis-server this task started.
pub(super) struct LocalRedis {
    process: Process,
    port: u16,
}

impl LocalRedis {
    /// Starts `redis-server` (no persistence) and waits until it answers
    /// `PING`.
    pub(super) fn start(opts: &Options) -> Result<Self, String> {
        let dir = scratch_dir("redis", None)?;
        let port = free_port()?;
        let log = log_file(&dir)?;
        let child = pinned("0", opts)
            .arg("redis-server")
            .args(["--bind", "127.0.0.1", "--port", &port.to_string()])
            .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
            .arg("--dir")
            .arg(&dir)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("could not start redis-server: {e}"))?;
        let mut process = Process {
            name: "redis-server",
            child,
            stop: "-TERM",
            dir,
        };
        let redis = |args: &[&str]| {
            Command::new("redis-cli")
                .args(["-h", "127.0.0.1", "-p", &port.to_string()])
                .args(args)
                .output()
        };
        wait_ready(&mut process, || {
            redis(&["ping"]).is_ok_and(|o| o.stdout.starts_with(b"PONG"))
        })?;
        Ok(Self { process, port })
    }

    /// The URL idem's Redis store connects to.
    pub(super) fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// The port it listens on.
    pub(super) fn port(&self) -> u16 {
        self.port
    }

    /// `redis-server --version`'s `v=` field.
    pub(super) fn version() -> String {
        let out = Command::new("redis-server").arg("--version").output();
        let text = out.map(|o| String::from_utf8_lossy(&o.stdout).into_owned());
        text.ok()
            .and_then(|t| {
                t.split_whitespace()
                    .find_map(|w| w.strip_prefix("v=").map(str::to_owned))
            })
            .unwrap_or_else(|| "?".into())
    }
}

impl Probe for LocalRedis {
    /// `total_commands_processed` from `INFO stats`.
    fn operations(&self) -> Option<u64> {
        let out = Command::new("redis-cli")
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string()])
            .args(["info", "stats"])
            .output()
            .ok()?;
        info_field(
            &String::from_utf8_lossy(&out.stdout),
            "total_commands_processed",
        )
    }

    fn cpu_ticks(&self) -> Option<u64> {
        cpu_ticks(self.process.child.id())
    }
}

/// A field of Redis' `INFO` output (`name:value` lines).
fn info_field(info: &str, name: &str) -> Option<u64> {
    info.lines()
        .find_map(|l| l.trim().strip_prefix(name)?.strip_prefix(':'))
        .and_then(|v| v.trim().parse().ok())
}

/// A PostgreSQL server this task started, with `pg_stat_statements`
/// loaded, a database `idem` for idem's store and one `bench` for pgbench.
pub(super) struct LocalPostgres {
    process: Process,
    port: u16,
}

/// idem's database (its statements are the ones counted).
pub(super) const IDEM_DB: &str = "idem";
/// pgbench's database.
pub(super) const BENCH_DB: &str = "bench";

impl LocalPostgres {
    /// Runs `initdb` (superuser `postgres`, trust authentication: the
    /// server listens on 127.0.0.1 and its own directory's socket only),
    /// starts `postgres` with its default settings (`pg_stat_statements`
    /// preloaded) and creates the databases.
    pub(super) fn start(opts: &Options) -> Result<Self, String> {
        let user = if running_as_root() {
            Some(nobody()?)
        } else {
            None
        };
        let dir = scratch_dir("postgres", user)?;
        let data = dir.join("data");
        // PostgreSQL's `program`, pinned to CPU 0, as `user`, in `dir`.
        let program = |program: &str| {
            let mut cmd = pinned("0", opts);
            if let Some((uid, gid)) = user {
                cmd.arg("setpriv")
                    .arg(format!("--reuid={uid}"))
                    .arg(format!("--regid={gid}"))
                    .arg("--clear-groups");
            }
            cmd.arg(Path::new(PG_BIN).join(program)).current_dir(&dir);
            cmd
        };
        let out = program("initdb")
            .arg("-D")
            .arg(&data)
            .args(["-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync"])
            .output()
            .map_err(|e| format!("could not start initdb: {e}"))?;
        if !out.status.success() {
            let _ = std::fs::remove_dir_all(&dir);
            return Err(format!(
                "initdb failed:\n{}",
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        let port = free_port()?;
        let log = log_file(&dir)?;
        let child = program("postgres")
            .arg("-D")
            .arg(&data)
            .args(["-p", &port.to_string(), "-k"])
            .arg(&dir)
            .args(["-c", "listen_addresses=127.0.0.1"])
            .args(["-c", "shared_preload_libraries=pg_stat_statements"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .map_err(|e| format!("could not start postgres: {e}"))?;
        let mut process = Process {
            name: "postgres",
            child,
            stop: "-INT",
            dir,
        };
        wait_ready(&mut process, || {
            Command::new("pg_isready")
                .args(["-q", "-h", "127.0.0.1", "-p", &port.to_string()])
                .status()
                .is_ok_and(|s| s.success())
        })?;
        let pg = Self { process, port };
        pg.sql("postgres", "CREATE EXTENSION pg_stat_statements")?;
        pg.sql("postgres", &format!("CREATE DATABASE {IDEM_DB}"))?;
        pg.sql("postgres", &format!("CREATE DATABASE {BENCH_DB}"))?;
        Ok(pg)
    }

    /// The URL of database `db`.
    pub(super) fn url(&self, db: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{db}", self.port)
    }

    /// The port it listens on.
    pub(super) fn port(&self) -> u16 {
        self.port
    }

    /// Runs `sql` in database `db` with `psql` and returns what it printed
    /// (unaligned, tuples only).
    pub(super) fn sql(&self, db: &str, sql: &str) -> Result<String, String> {
        let out: Output = Command::new("psql")
            .args(["-X", "-Atq", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1"])
            .args(["-p", &self.port.to_string(), "-U", "postgres", "-d", db])
            .args(["-c", sql])
            .output()
            .map_err(|e| format!("could not start psql: {e}"))?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
        } else {
            Err(format!(
                "psql `{sql}` failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ))
        }
    }
}

impl Probe for LocalPostgres {
    /// The calls `pg_stat_statements` counted in idem's database, every
    /// statement included (`BEGIN` and `COMMIT` too: it tracks utility
    /// statements by default).
    fn operations(&self) -> Option<u64> {
        let sql = format!(
            "SELECT coalesce(sum(s.calls), 0) FROM pg_stat_statements s \
             JOIN pg_database d ON d.oid = s.dbid WHERE d.datname = '{IDEM_DB}'"
        );
        self.sql("postgres", &sql).ok()?.parse().ok()
    }

    /// The postmaster's and its children's (the backends') CPU time.
    fn cpu_ticks(&self) -> Option<u64> {
        tree_ticks(self.process.child.id())
    }
}

/// The CPU ticks of `pid` and of its children, with what its exited
/// children used.
fn tree_ticks(pid: u32) -> Option<u64> {
    let own = stat_fields(&pid.to_string())?;
    let mut total = ticks(&own, 11..15)?;
    let parent = pid.to_string();
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let name = entry.file_name();
        let Some(child) = name
            .to_str()
            .filter(|n| n.bytes().all(|b| b.is_ascii_digit()))
        else {
            continue;
        };
        if let Some(f) = stat_fields(child).filter(|f| f.get(1) == Some(&parent)) {
            total += ticks(&f, 11..13).unwrap_or(0);
        }
    }
    Some(total)
}

/// Waits until `ready` holds, failing if the process exits first or
/// [`READY_WITHIN`] passes; the error shows the end of its log.
fn wait_ready(process: &mut Process, ready: impl Fn() -> bool) -> Result<(), String> {
    let deadline = Instant::now() + READY_WITHIN;
    loop {
        if ready() {
            eprintln!("==> {} ready ({})", process.name, process.dir.display());
            return Ok(());
        }
        let exited = matches!(process.child.try_wait(), Ok(Some(_)));
        if exited || Instant::now() > deadline {
            let log = std::fs::read_to_string(process.dir.join("server.log")).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(15).collect();
            let tail: Vec<&str> = tail.into_iter().rev().collect();
            return Err(format!(
                "{} {}:\n{}",
                process.name,
                if exited {
                    "exited"
                } else {
                    "did not get ready"
                },
                tail.join("\n")
            ));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A new directory `idem-bench-NAME-PID` in the temporary directory, owned
/// by `owner` (uid, gid) if given.
fn scratch_dir(name: &str, owner: Option<(u32, u32)>) -> Result<PathBuf, String> {
    let dir = std::env::temp_dir().join(format!("idem-bench-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    if let Some((uid, gid)) = owner {
        std::os::unix::fs::chown(&dir, Some(uid), Some(gid))
            .map_err(|e| format!("handing {} to uid {uid}: {e}", dir.display()))?;
    }
    Ok(dir)
}

/// `server.log` in `dir`, for a server's output.
fn log_file(dir: &Path) -> Result<File, String> {
    let path = dir.join("server.log");
    File::create(&path).map_err(|e| format!("creating {}: {e}", path.display()))
}

/// A port nothing listens on now (the OS's pick of an ephemeral port).
fn free_port() -> Result<u16, String> {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| format!("finding a free port: {e}"))
}

/// Whether this process runs as root (real uid 0).
fn running_as_root() -> bool {
    std::fs::read_to_string("/proc/self/status").is_ok_and(|s| {
        s.lines()
            .find_map(|l| l.strip_prefix("Uid:"))
            .and_then(|ids| ids.split_whitespace().next())
            == Some("0")
    })
}

/// The uid and gid of `nobody`.
fn nobody() -> Result<(u32, u32), String> {
    let passwd =
        std::fs::read_to_string("/etc/passwd").map_err(|e| format!("reading /etc/passwd: {e}"))?;
    passwd_ids(&passwd, "nobody").ok_or_else(|| {
        "running as root, and no user `nobody` to run PostgreSQL as (initdb and postgres \
         refuse root)"
            .to_owned()
    })
}

/// The uid and gid of `user` in `/etc/passwd`'s text.
fn passwd_ids(passwd: &str, user: &str) -> Option<(u32, u32)> {
    let line = passwd.lines().find(|l| l.split(':').next() == Some(user))?;
    let mut fields = line.split(':').skip(2);
    Some((fields.next()?.parse().ok()?, fields.next()?.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_users_ids() {
        let passwd = "root:x:0:0:root:/root:/bin/bash\n\
                      nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n";
        assert_eq!(passwd_ids(passwd, "nobody"), Some((65534, 65534)));
        assert_eq!(passwd_ids(passwd, "nobod"), None);
    }

    #[test]
    fn reads_an_info_field() {
        // From `redis-cli info stats` (redis 7.0.15).
        let info = "# Stats\r\ntotal_connections_received:66\r\n\
                    total_commands_processed:40002\r\ninstantaneous_ops_per_sec:22517\r\n";
        assert_eq!(info_field(info, "total_commands_processed"), Some(40002));
        assert_eq!(info_field(info, "total_commands"), None);
    }

    #[test]
    fn reads_own_tree_ticks() {
        assert!(tree_ticks(std::process::id()).is_some());
    }

    #[test]
    fn finds_a_free_port() {
        assert!(free_port().unwrap() > 0);
    }
}
