//! No call waits longer than the operation timeout on a stalled Redis: one
//! that accepts connections and never answers (standalone and cluster URLs),
//! and a real `redis-server` frozen with `SIGSTOP` after it answered. Every
//! call is `Error::Unavailable` within the bound, and the store works again
//! once the server does.

use std::fmt::Debug;
use std::future::Future;
use std::time::{Duration, Instant};

use idem_core::{Claim, Error, IdempotencyStore, LeaseToken, Result, StoreKey};
use idem_redis::{DEFAULT_OPERATION_TIMEOUT, RedisConfig, RedisStore};
use idem_tests::redis_servers::RedisProcess;
use tokio::net::TcpListener;
use tokio::task::{JoinHandle, JoinSet};

/// The documented bound of every call: the default operation timeout.
const BOUND: Duration = DEFAULT_OPERATION_TIMEOUT;
/// Scheduling slack on a busy machine.
const MARGIN: Duration = Duration::from_millis(500);
/// Past this the call hung: the test fails instead of waiting with it.
const HANG: Duration = Duration::from_secs(10);
const HOUR: Duration = Duration::from_secs(3600);

/// A listener on 127.0.0.1 that accepts every connection and never sends a
/// byte; it holds the connections until dropped.
struct Silent {
    port: u16,
    task: JoinHandle<()>,
}

impl Silent {
    async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let task = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((socket, _)) = listener.accept().await {
                held.push(socket);
            }
        });
        Self { port, task }
    }
}

impl Drop for Silent {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn fresh_key() -> StoreKey {
    StoreKey::parse(format!("stalled:{}", uuid::Uuid::new_v4())).unwrap()
}

/// Runs `call`, which must fail with `Error::Unavailable` within the bound.
async fn unavailable_in_time<T: Debug>(what: &str, call: impl Future<Output = Result<T>>) {
    let started = Instant::now();
    let result = tokio::time::timeout(HANG, call)
        .await
        .unwrap_or_else(|_| panic!("{what} hung for {HANG:?}"));
    let elapsed = started.elapsed();
    assert!(
        matches!(result, Err(Error::Unavailable { .. })),
        "{what}: expected Unavailable, got {result:?}"
    );
    assert!(
        elapsed < BOUND + MARGIN,
        "{what} took {elapsed:?}, past the {BOUND:?} bound"
    );
}

/// Every method of the trait, each of which must be `Unavailable` within the
/// bound; `token` is the claim `extend`, `complete` and `release` present.
async fn every_call_unavailable_in_time(store: &RedisStore, key: &StoreKey, token: &LeaseToken) {
    unavailable_in_time("find", store.find(key)).await;
    unavailable_in_time("exists", store.exists(key)).await;
    unavailable_in_time("store", store.store(key, "v".into(), HOUR)).await;
    unavailable_in_time("remove", store.remove(key)).await;
    unavailable_in_time("claim", store.claim(key, "p".into(), HOUR)).await;
    unavailable_in_time("extend", store.extend(key, token, HOUR)).await;
    unavailable_in_time("complete", store.complete(key, token, "v".into(), HOUR)).await;
    unavailable_in_time("release", store.release(key, token)).await;
    unavailable_in_time("ping", store.ping()).await;
}

/// More calls at once than the pool has connections: waiting for one counts
/// against the same bound.
async fn crowd_unavailable_in_time(store: &RedisStore) {
    let mut calls = JoinSet::new();
    for _ in 0..3 * store.config().max_connections() {
        let store = store.clone();
        calls.spawn(async move {
            unavailable_in_time("a crowded find", store.find(&fresh_key())).await;
        });
    }
    while let Some(done) = calls.join_next().await {
        done.unwrap();
    }
}

#[tokio::test]
async fn a_silent_server_is_unavailable_within_the_operation_timeout() {
    let silent = Silent::start().await;
    let url = format!("redis://127.0.0.1:{}", silent.port);
    let store = RedisStore::connect_lazy(RedisConfig::from_url(&url).unwrap()).unwrap();
    every_call_unavailable_in_time(&store, &fresh_key(), &LeaseToken::generate()).await;
    crowd_unavailable_in_time(&store).await;
}

#[tokio::test]
async fn a_silent_cluster_node_is_unavailable_within_the_operation_timeout() {
    let silent = Silent::start().await;
    let url = format!("redis+cluster://127.0.0.1:{}", silent.port);
    let store = RedisStore::connect_lazy(RedisConfig::from_url(&url).unwrap()).unwrap();
    every_call_unavailable_in_time(&store, &fresh_key(), &LeaseToken::generate()).await;
    crowd_unavailable_in_time(&store).await;
}

#[tokio::test]
async fn connect_to_a_silent_server_is_unavailable_within_the_operation_timeout() {
    let silent = Silent::start().await;
    let url = format!("redis://127.0.0.1:{}", silent.port);
    unavailable_in_time(
        "connect",
        RedisStore::connect(RedisConfig::from_url(&url).unwrap()),
    )
    .await;
}

/// The harder stall: a real server that answered, then freezes mid-session
/// with pooled connections open and the scripts loaded.
#[tokio::test]
async fn a_paused_server_is_unavailable_within_the_operation_timeout_then_works_again() {
    let server = match RedisProcess::start() {
        Ok(server) => server,
        Err(reason) => return idem_conformance::skip("redis", &reason).unwrap_or(()),
    };
    let store = RedisStore::connect(RedisConfig::from_url(&server.url()).unwrap())
        .await
        .unwrap();
    let key = fresh_key();
    let Claim::Acquired(token) = store.claim(&key, "p".into(), HOUR).await.unwrap() else {
        panic!("a fresh key was taken");
    };
    store.extend(&key, &token, HOUR).await.unwrap();

    server.pause();
    every_call_unavailable_in_time(&store, &key, &token).await;
    crowd_unavailable_in_time(&store).await;
    server.resume();

    // The commands sent during the pause may still run once Redis reads
    // them, so the paused key's state is unknown: a fresh key shows the
    // store works again, with no new store needed.
    let key = fresh_key();
    let started = Instant::now();
    let claim = loop {
        match store.claim(&key, "p".into(), HOUR).await {
            Ok(claim) => break claim,
            Err(e) if e.is_transient() && started.elapsed() < Duration::from_secs(5) => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => panic!("the store did not come back after the pause: {e:?}"),
        }
    };
    let Claim::Acquired(token) = claim else {
        panic!("a fresh key was taken");
    };
    store.extend(&key, &token, HOUR).await.unwrap();
    store
        .complete(&key, &token, "done".into(), HOUR)
        .await
        .unwrap();
    assert_eq!(
        store.find(&key).await.unwrap().as_deref(),
        Some(&b"done"[..])
    );
}
