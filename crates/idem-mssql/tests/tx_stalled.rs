//! The transactional mode against a real SQL Server (`IDEM_TEST_MSSQL_URL`)
//! that answered, then stalls: a relay in front of it stops passing bytes
//! on. A run whose server stalls before its claim, or between the handler
//! and the commit, is `Unavailable` within its bound, and nothing of it is
//! kept: its connection is closed, and the server rolls it back. Without a
//! server these cases are reported SKIPPED.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use idem_conformance::{fresh_key, skip, stall};
use idem_core::{Completion, Error, Fingerprint, Outcome, StoredResponse};
use idem_mssql::{MssqlConfig, MssqlStore, Transactional};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

const OPERATION_TIMEOUT: Duration = Duration::from_millis(1500);
const LOCK_WAIT: Duration = Duration::from_millis(500);

/// Relays 127.0.0.1:`port` to the server until dropped; frozen, it holds
/// every byte, both ways.
struct Relay {
    port: u16,
    frozen: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl Relay {
    async fn start(upstream: String) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let (frozen, gate) = watch::channel(false);
        let task = tokio::spawn(async move {
            let mut pipes = tokio::task::JoinSet::new();
            while let Ok((client, _)) = listener.accept().await {
                let Ok(server) = TcpStream::connect(&upstream).await else {
                    continue;
                };
                let (client_read, client_write) = client.into_split();
                let (server_read, server_write) = server.into_split();
                pipes.spawn(pipe(client_read, server_write, gate.clone()));
                pipes.spawn(pipe(server_read, client_write, gate.clone()));
            }
        });
        Self { port, frozen, task }
    }

    fn freeze(&self, frozen: bool) {
        self.frozen.send_replace(frozen);
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn pipe(mut from: OwnedReadHalf, mut to: OwnedWriteHalf, mut gate: watch::Receiver<bool>) {
    let mut buf = vec![0; 16 * 1024];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if gate.wait_for(|frozen| !frozen).await.is_err() {
            break;
        }
        if to.write_all(&buf[..n]).await.is_err() {
            break;
        }
    }
    let _ = to.shutdown().await;
}

/// An engine on the test server through a relay, or `None` (SKIPPED).
async fn through_relay() -> Option<(Relay, Transactional)> {
    let url = match std::env::var("IDEM_TEST_MSSQL_URL") {
        Ok(url) if !url.trim().is_empty() => url,
        _ => {
            let reason = "IDEM_TEST_MSSQL_URL is not set: no SQL Server here for the stall cases";
            return skip("mssql", reason);
        }
    };
    let config = MssqlConfig::parse(&url).expect("IDEM_TEST_MSSQL_URL is usable");
    let relay = Relay::start(format!("{}:{}", config.host(), config.port())).await;
    let config = MssqlConfig::parse(&url)
        .unwrap()
        .with_port(relay.port)
        .with_table("IdemTxStalled")
        .with_connect_timeout(OPERATION_TIMEOUT)
        .with_operation_timeout(OPERATION_TIMEOUT);
    // The relay listens on loopback, whatever the server's host.
    let config = rehost(config, "127.0.0.1");
    let store = MssqlStore::connect(config)
        .await
        .expect("the server answers");
    let engine = store.transactional().with_lock_wait(LOCK_WAIT);
    Some((relay, engine))
}

/// `config` with another host and everything else kept.
fn rehost(config: MssqlConfig, host: &str) -> MssqlConfig {
    let mut json = serde_json::to_value(&config).unwrap();
    json["host"] = host.into();
    serde_json::from_value(json).unwrap()
}

fn fp() -> Fingerprint {
    Fingerprint::of_request("POST", "/payments", b"{}")
}

fn keep() -> Completion {
    Completion::Keep(StoredResponse {
        status: 201,
        ..Default::default()
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_stalls_before_the_claim_is_unavailable_within_the_bound() {
    let Some((relay, engine)) = through_relay().await else {
        return;
    };
    let runs = AtomicUsize::new(0);
    let key = fresh_key();
    relay.freeze(true);
    let run = engine.execute(&key, fp(), |_tx| async {
        runs.fetch_add(1, Ordering::SeqCst);
        ((), keep())
    });
    let e = stall::unavailable_within(OPERATION_TIMEOUT + LOCK_WAIT, "a stalled claim", run).await;
    assert!(matches!(e, Error::Unavailable { .. }), "{e:?}");
    assert_eq!(runs.load(Ordering::SeqCst), 0, "the handler ran");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_stalls_before_the_commit_keeps_nothing() {
    let Some((relay, engine)) = through_relay().await else {
        return;
    };
    let key = fresh_key();
    let relay = &relay;
    let run = engine.execute(&key, fp(), |_tx| async move {
        // The claim is in; the server stalls before the completion.
        relay.freeze(true);
        ((), keep())
    });
    let e = stall::unavailable_within(OPERATION_TIMEOUT, "a stalled commit", run).await;
    assert!(matches!(e, Error::Unavailable { .. }), "{e:?}");
    relay.freeze(false);
    // The connection was closed without a commit: the retry runs (it may
    // wait for the server to roll the closed session back).
    let patient = engine.clone().with_lock_wait(Duration::from_secs(10));
    let retry = patient
        .execute(&key, fp(), |_tx| async { ((), keep()) })
        .await
        .unwrap();
    assert!(matches!(retry, Outcome::Executed(())), "{retry:?}");
}
