//! The `idem-demo` binary as a process: started on a free port, stopped
//! with SIGTERM or killed, and a client that sees every answer as sent.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::mpsc;

use super::alice;

/// One `idem-demo` process and the lines it prints.
pub struct Process {
    pub child: Child,
    pub base: String,
    lines: mpsc::UnboundedReceiver<String>,
}

impl Process {
    /// Starts the binary on a free port over `database`, with `args`, and
    /// waits for its URL.
    pub async fn start(database: &Path, args: &[&str]) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_idem-demo"))
            .args(["--listen", "127.0.0.1:0", "--database"])
            .arg(database)
            .args(args)
            .env_remove("IDEM_STORE_URL")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let (tx, mut lines) = mpsc::unbounded_channel();
        let mut stdout = BufReader::new(child.stdout.take().unwrap()).lines();
        tokio::spawn(async move {
            while let Ok(Some(line)) = stdout.next_line().await {
                let _ = tx.send(line);
            }
        });
        let first = tokio::time::timeout(Duration::from_secs(20), lines.recv())
            .await
            .expect("the URL in time")
            .expect("a first line");
        let base = first
            .split_whitespace()
            .find(|w| w.starts_with("http://"))
            .unwrap_or_else(|| panic!("no URL in {first:?}"))
            .to_owned();
        Self { child, base, lines }
    }

    pub fn sigterm(&self) {
        let pid = self.child.id().expect("still running").to_string();
        let status = std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// SIGTERM, then the exit within `bound`; returns what it printed since
    /// the URL.
    pub async fn stop(mut self, bound: Duration) -> Vec<String> {
        self.sigterm();
        self.wait(bound).await
    }

    pub async fn wait(&mut self, bound: Duration) -> Vec<String> {
        let status = tokio::time::timeout(bound, self.child.wait())
            .await
            .expect("the process exits within the bound")
            .unwrap();
        assert!(status.success(), "{status}");
        let mut printed = Vec::new();
        while let Some(line) = self.lines.recv().await {
            printed.push(line);
        }
        printed
    }
}

/// What one payment request got.
#[derive(Debug)]
pub enum Got {
    Answer {
        status: u16,
        replayed: bool,
        retry_after: Option<String>,
        body: Value,
    },
    /// Refused, reset or closed without an answer.
    NoAnswer(String),
}

/// One connection per request, no retries: every answer is seen as sent.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

pub async fn pay(client: &reqwest::Client, base: &str, key: &str) -> Got {
    let sent = client
        .post(format!("{base}/payments"))
        .header("Idempotency-Key", key)
        .json(&alice())
        .send()
        .await;
    let response = match sent {
        Ok(response) => response,
        Err(error) => return Got::NoAnswer(format!("{error:?}")),
    };
    let status = response.status().as_u16();
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .map(|v| v.to_str().unwrap().to_owned())
    };
    let replayed = header("idempotent-replayed").is_some_and(|v| v == "true");
    let retry_after = header("retry-after");
    match response.json().await {
        Ok(body) => Got::Answer {
            status,
            replayed,
            retry_after,
            body,
        },
        Err(error) => Got::NoAnswer(format!("{error:?}")),
    }
}
