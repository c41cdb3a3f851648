//! The NATS server the scenarios run against: `IDEM_TEST_NATS_URL`, or a
//! private `nats-server -js` started here and stopped when dropped.

use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A NATS server with JetStream.
pub(crate) struct Nats {
    pub(crate) url: String,
    child: Option<Child>,
    _dir: Option<tempfile::TempDir>,
}

impl Drop for Nats {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn binary() -> Option<PathBuf> {
    let on_path = std::env::var_os("PATH").into_iter().flat_map(|p| {
        std::env::split_paths(&p)
            .map(|dir| dir.join("nats-server"))
            .collect::<Vec<_>>()
    });
    on_path
        .chain([PathBuf::from("/usr/sbin/nats-server")])
        .find(|path| path.is_file())
}

/// The server, or `None` after a loud SKIP (a failure when `IDEM_REQUIRE`
/// names `nats`).
pub(crate) fn nats() -> Option<Nats> {
    if let Ok(url) = std::env::var("IDEM_TEST_NATS_URL") {
        return Some(Nats {
            url,
            child: None,
            _dir: None,
        });
    }
    let Some(binary) = binary() else {
        return idem_conformance::skip(
            "nats",
            "IDEM_TEST_NATS_URL is not set and no nats-server is installed",
        );
    };
    let port = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let dir = tempfile::Builder::new()
        .prefix("idem-nats-")
        .tempdir()
        .expect("a temporary directory");
    let child = Command::new(&binary)
        .args(["-js", "-a", "127.0.0.1", "-p", &port.to_string(), "-sd"])
        .arg(dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("start {}: {e}", binary.display()));
    let nats = Nats {
        url: format!("nats://127.0.0.1:{port}"),
        child: Some(child),
        _dir: Some(dir),
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect((Ipv4Addr::LOCALHOST, port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "nats-server did not listen on {port}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    Some(nats)
}
