//! No call waits longer than the operation timeout on a stalled Redis: one
//! that accepts connections and never answers (standalone and cluster URLs),
//! and a real `redis-server` frozen with `SIGSTOP` after it answered. Every
//! call is `Error::Unavailable` within the bound, and the store works again
//! once the server does.

use std::time::Duration;

use idem_conformance::fresh_key;
use idem_conformance::stall::{self, SilentServer};
use idem_core::{Claim, IdempotencyStore, LeaseToken, StoreKey};
use idem_redis::{DEFAULT_OPERATION_TIMEOUT, RedisConfig, RedisStore};
use idem_tests::redis_servers::RedisProcess;

/// The documented bound of every call: the default operation timeout.
const BOUND: Duration = DEFAULT_OPERATION_TIMEOUT;
const HOUR: Duration = Duration::from_secs(3600);

/// Every method of the trait and `ping`, then more calls at once than the
/// pool has connections (waiting for one counts against the same bound):
/// each must be `Unavailable` within the bound. `token` is the claim
/// `extend`, `complete` and `release` present.
async fn all_unavailable_in_time(store: &RedisStore, key: &StoreKey, token: &LeaseToken) {
    stall::every_call_unavailable_within(store, key, token, BOUND).await;
    stall::unavailable_within(BOUND, "ping", store.ping()).await;
    let crowd = 3 * store.config().max_connections() as usize;
    stall::crowd_unavailable_within(store, crowd, BOUND).await;
}

/// A lazy store on a silent server at `scheme://host:port`.
async fn silent_server_is_unavailable_in_time(scheme: &str) {
    let silent = SilentServer::start().await.unwrap();
    let url = format!("{scheme}://{}", silent.addr());
    let store = RedisStore::connect_lazy(RedisConfig::from_url(&url).unwrap()).unwrap();
    all_unavailable_in_time(&store, &fresh_key(), &LeaseToken::generate()).await;
}

#[tokio::test]
async fn a_silent_server_is_unavailable_within_the_operation_timeout() {
    silent_server_is_unavailable_in_time("redis").await;
}

#[tokio::test]
async fn a_silent_cluster_node_is_unavailable_within_the_operation_timeout() {
    silent_server_is_unavailable_in_time("redis+cluster").await;
}

#[tokio::test]
async fn connect_to_a_silent_server_is_unavailable_within_the_operation_timeout() {
    let silent = SilentServer::start().await.unwrap();
    let url = format!("redis://{}", silent.addr());
    let connect = RedisStore::connect(RedisConfig::from_url(&url).unwrap());
    stall::unavailable_within(BOUND, "connect", connect).await;
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
    all_unavailable_in_time(&store, &key, &token).await;
    server.resume();

    // The commands sent during the pause may still run once Redis reads
    // them, so the paused key's state is unknown: a fresh key shows the
    // store works again, with no new store needed.
    stall::works_again(&store, Duration::from_secs(5)).await;
}
