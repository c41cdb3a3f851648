//! A consumer process (the crate's binary), its output lines collected in
//! a log the scenario shares.

use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::mpsc;

/// Every line the scenario's consumers printed.
pub(crate) type Log = Arc<Mutex<Vec<String>>>;

/// What every consumer of a scenario shares.
pub(crate) struct Setup<'a> {
    pub(crate) url: &'a str,
    pub(crate) stream: &'a str,
    pub(crate) subject: &'a str,
    pub(crate) database: &'a Path,
    pub(crate) idempotent: bool,
    pub(crate) log: Log,
}

/// One running consumer process.
pub(crate) struct Worker {
    child: Child,
    log: Log,
    stalls: mpsc::UnboundedReceiver<String>,
}

impl Worker {
    /// Starts a consumer with `faults` (its fault options) and waits until
    /// it pulls.
    pub(crate) async fn start(setup: &Setup<'_>, faults: &[&str]) -> Self {
        let mut command = Command::new(env!("CARGO_BIN_EXE_idem-consumer"));
        command
            .args(["--nats-url", setup.url, "--stream", setup.stream])
            .args(["--subject", setup.subject, "--durable", "ledger"])
            .args(["--ack-wait", "1s", "--database"])
            .arg(setup.database)
            .args(faults)
            .env_remove("IDEM_CONSUMER_NO_IDEMPOTENCY")
            .stdout(Stdio::piped())
            .kill_on_drop(true);
        if !setup.idempotent {
            command.arg("--no-idempotency");
        }
        let mut child = command.spawn().expect("start the consumer");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let (ready_tx, mut ready) = mpsc::unbounded_channel();
        let (stall_tx, stalls) = mpsc::unbounded_channel();
        let log = setup.log.clone();
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                if line.starts_with("ready") {
                    let _ = ready_tx.send(());
                } else if line.starts_with("STALL") {
                    let _ = stall_tx.send(line.clone());
                }
                log.lock().unwrap().push(line);
            }
        });
        let ready = tokio::time::timeout(Duration::from_secs(60), ready.recv()).await;
        assert!(
            matches!(ready, Ok(Some(()))),
            "the consumer did not get ready in 60 s ({ready:?})"
        );
        Self {
            child,
            stalls,
            log: setup.log.clone(),
        }
    }

    /// Waits for the consumer to stall where its fault says, then kills it
    /// with SIGKILL, as a crash would.
    pub(crate) async fn kill_at_stall(mut self) -> String {
        let stall = tokio::time::timeout(Duration::from_secs(90), self.stalls.recv()).await;
        let Ok(Some(stall)) = stall else {
            let log = self.log.lock().unwrap().join("\n");
            panic!("the consumer did not reach its stall in 90 s ({stall:?}); the log:\n{log}");
        };
        self.kill().await;
        stall
    }

    /// Kills the consumer (SIGKILL).
    pub(crate) async fn kill(mut self) {
        self.child.kill().await.expect("kill the consumer");
    }
}
