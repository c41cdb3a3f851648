//! `cargo xtask broker`: the idempotent consumer against a real NATS
//! JetStream server (crates/idem-consumer). Starts `nats-server -js` on
//! 127.0.0.1 if nothing listens on its port, runs the broker tests, prints
//! the counts of each scenario and `N passed, M failed`, and stops the
//! server it started.

use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::util::cargo;

/// The port used when `IDEM_TEST_NATS_URL` is not set.
const DEFAULT_PORT: u16 = 4222;

/// A nats-server this task started: stopped, and its store removed, on drop.
struct Started {
    child: Child,
    dir: PathBuf,
}

impl Drop for Started {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
        eprintln!("==> nats-server stopped");
    }
}

pub(crate) fn run(args: &[String]) -> Result<(), String> {
    let port = match args {
        [] => DEFAULT_PORT,
        [flag, port] if flag == "--port" => port.parse().map_err(|e| format!("--port: {e}"))?,
        _ => return Err("usage: cargo xtask broker [--port N]".into()),
    };
    let (url, _started) = match std::env::var("IDEM_TEST_NATS_URL") {
        Ok(url) => (url, None),
        Err(_) => {
            let url = format!("nats://127.0.0.1:{port}");
            (url, ensure_server(port)?)
        }
    };
    eprintln!("\n==> cargo test -p idem-consumer (NATS at {url})");
    let required = match std::env::var("IDEM_REQUIRE") {
        Ok(list) if !list.trim().is_empty() => format!("{list},nats"),
        _ => "nats".to_owned(),
    };
    let output = cargo()
        .args(["test", "-p", "idem-consumer", "--", "--test-threads=1"])
        .env("IDEM_TEST_NATS_URL", &url)
        .env("IDEM_REQUIRE", required)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("could not start cargo test: {e}"))?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    print!("{stdout}");
    eprint!("{stderr}");
    report(&stdout, &stderr, output.status.success())
}

/// Prints the counts and the verdicts; an error if any test failed.
fn report(stdout: &str, stderr: &str, success: bool) -> Result<(), String> {
    println!("\nbroker scenarios (NATS JetStream, SQLite ledger):");
    println!(
        "  {:<16} {:>9} {:>9} {:>11} {:>5} {:>9}",
        "scenario", "published", "delivered", "redelivered", "rows", "expected"
    );
    for line in stderr.lines().filter_map(|l| l.strip_prefix("BROKER ")) {
        let field = |name: &str| {
            line.split(' ')
                .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
                .unwrap_or("?")
        };
        let expected = match field("scenario") {
            "no-idempotency" => format!(">{}", field("expected_rows")),
            _ => field("expected_rows").to_owned(),
        };
        println!(
            "  {:<16} {:>9} {:>9} {:>11} {:>5} {:>9}",
            field("scenario"),
            field("published"),
            field("delivered"),
            field("redelivered"),
            field("rows"),
            expected
        );
    }
    let verdicts = stdout
        .lines()
        .filter(|l| l.starts_with("test ") && !l.starts_with("test result"));
    let (mut passed, mut failed) = (0, 0);
    for line in verdicts {
        if line.ends_with("... ok") {
            passed += 1;
        } else if line.ends_with("... FAILED") {
            failed += 1;
            println!("  FAILED: {line}");
        }
    }
    println!("{passed} passed, {failed} failed");
    match (success, failed) {
        (true, 0) => Ok(()),
        (_, 0) => Err("cargo test -p idem-consumer failed (see above)".into()),
        _ => Err(format!("{failed} broker test(s) failed")),
    }
}

/// Starts nats-server on `port` unless something listens there already.
fn ensure_server(port: u16) -> Result<Option<Started>, String> {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    if TcpStream::connect_timeout(&addr, Duration::from_millis(300)).is_ok() {
        eprintln!("==> using the server already listening on {addr}");
        return Ok(None);
    }
    let binary = ["/usr/sbin/nats-server", "/usr/bin/nats-server"]
        .into_iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
        .unwrap_or_else(|| PathBuf::from("nats-server"));
    let dir = std::env::temp_dir().join(format!("idem-xtask-nats-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let child = Command::new(&binary)
        .args(["-js", "-a", "127.0.0.1", "-p", &port.to_string(), "-sd"])
        .arg(&dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| {
            format!(
                "could not start {} (install Debian's nats-server): {e}",
                binary.display()
            )
        })?;
    let started = Started { child, dir };
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect_timeout(&addr, Duration::from_millis(300)).is_err() {
        if Instant::now() > deadline {
            return Err(format!("nats-server did not listen on {addr} within 10 s"));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    eprintln!("==> started {} -js on {addr}", binary.display());
    Ok(Some(started))
}
