//! No call waits longer than the operation timeout on a stalled database:
//! a server that accepts connections and never answers (PostgreSQL and
//! MySQL, no server needed), a SQLite file another connection keeps locked,
//! and a real server that answered and then stalls mid-session (a relay in
//! front of `IDEM_TEST_POSTGRES_URL` / `IDEM_TEST_MYSQL_URL` that stops
//! passing bytes on). Every call is `Error::Unavailable` within the bound,
//! and the store works again once the server does.

#![cfg(any(feature = "sqlite", feature = "postgres", feature = "mysql"))]

use std::fmt::Debug;
use std::future::Future;
use std::time::{Duration, Instant};

#[cfg(any(feature = "postgres", feature = "mysql"))]
use idem_core::LeaseToken;
use idem_core::{Claim, Error, IdempotencyStore, Result, StoreKey};
#[cfg(any(feature = "postgres", feature = "mysql"))]
use tokio::net::TcpListener;
#[cfg(any(feature = "postgres", feature = "mysql"))]
use tokio::task::{JoinHandle, JoinSet};

/// The operation timeout of the stores under test.
const BOUND: Duration = Duration::from_millis(500);
/// Scheduling slack on a busy machine.
const MARGIN: Duration = Duration::from_millis(500);
/// Past this the call hung: the test fails instead of waiting with it.
const HANG: Duration = Duration::from_secs(30);
const HOUR: Duration = Duration::from_secs(3600);

#[cfg(any(feature = "postgres", feature = "mysql"))]
/// A listener on 127.0.0.1 that accepts every connection and never sends a
/// byte; it holds the connections until dropped.
struct Silent {
    port: u16,
    task: JoinHandle<()>,
}

#[cfg(any(feature = "postgres", feature = "mysql"))]
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

#[cfg(any(feature = "postgres", feature = "mysql"))]
impl Drop for Silent {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn fresh_key() -> StoreKey {
    StoreKey::parse(format!("stalled:{}", uuid::Uuid::new_v4())).unwrap()
}

/// Runs `call`, which must fail with `Error::Unavailable` within `bound`.
async fn unavailable_within<T: Debug>(
    bound: Duration,
    what: &str,
    call: impl Future<Output = Result<T>>,
) {
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
        elapsed < bound + MARGIN,
        "{what} took {elapsed:?}, past the {bound:?} bound"
    );
}

async fn unavailable_in_time<T: Debug>(what: &str, call: impl Future<Output = Result<T>>) {
    unavailable_within(BOUND, what, call).await;
}

#[cfg(any(feature = "postgres", feature = "mysql"))]
/// Every method of the trait, each of which must be `Unavailable` within the
/// bound; `token` is the claim `extend`, `complete` and `release` present.
async fn every_call_unavailable_in_time(
    store: &dyn IdempotencyStore,
    key: &StoreKey,
    token: &LeaseToken,
) {
    unavailable_in_time("find", store.find(key)).await;
    unavailable_in_time("exists", store.exists(key)).await;
    unavailable_in_time("store", store.store(key, "v".into(), HOUR)).await;
    unavailable_in_time("remove", store.remove(key)).await;
    unavailable_in_time("claim", store.claim(key, "p".into(), HOUR)).await;
    unavailable_in_time("extend", store.extend(key, token, HOUR)).await;
    unavailable_in_time("complete", store.complete(key, token, "v".into(), HOUR)).await;
    unavailable_in_time("release", store.release(key, token)).await;
}

#[cfg(any(feature = "postgres", feature = "mysql"))]
/// Three times more calls at once than the pool has connections (10):
/// waiting for one counts against the same bound.
async fn crowd_unavailable_in_time<S: IdempotencyStore + Clone + 'static>(store: &S) {
    let mut calls = JoinSet::new();
    for _ in 0..30 {
        let store = store.clone();
        calls.spawn(async move {
            unavailable_in_time("a crowded find", store.find(&fresh_key())).await;
        });
    }
    while let Some(done) = calls.join_next().await {
        done.unwrap();
    }
}

/// A fresh key goes through claim, extend and complete: the store works,
/// after at most a few seconds of transient failures.
async fn works_again(store: &dyn IdempotencyStore) {
    let key = fresh_key();
    let started = Instant::now();
    let claim = loop {
        match store.claim(&key, "p".into(), HOUR).await {
            Ok(claim) => break claim,
            Err(e) if e.is_transient() && started.elapsed() < Duration::from_secs(10) => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("the store did not come back: {e:?}"),
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

#[cfg(any(feature = "postgres", feature = "mysql"))]
mod relay {
    //! A TCP relay to a real server that can be told to stop passing bytes
    //! on, in either direction: a server that answered, then stalls.

    use std::net::SocketAddr;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
    use tokio::net::{TcpListener, TcpStream};
    use tokio::sync::watch;
    use tokio::task::JoinHandle;

    /// Relays 127.0.0.1:`port` to the upstream server until dropped.
    pub(super) struct Relay {
        pub(super) port: u16,
        frozen: watch::Sender<bool>,
        task: JoinHandle<()>,
    }

    impl Relay {
        pub(super) async fn start(upstream: String) -> Self {
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

        /// Holds every byte from now on, both ways, until [`Self::thaw`].
        pub(super) fn freeze(&self) {
            self.frozen.send_replace(true);
        }

        /// Passes the held bytes on, and every byte after them.
        pub(super) fn thaw(&self) {
            self.frozen.send_replace(false);
        }
    }

    impl Drop for Relay {
        fn drop(&mut self) {
            self.task.abort();
        }
    }

    async fn pipe(
        mut from: OwnedReadHalf,
        mut to: OwnedWriteHalf,
        mut gate: watch::Receiver<bool>,
    ) {
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

    /// `url` with its `host:port` replaced by the relay's, and that
    /// `host:port`.
    pub(super) fn through(url: &str, port: u16) -> (String, String) {
        let (scheme, rest) = url.split_once("://").expect("a URL with a scheme");
        let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, path) = rest.split_at(authority_end);
        let (userinfo, host_port) = match authority.rsplit_once('@') {
            Some((userinfo, host_port)) => (format!("{userinfo}@"), host_port),
            None => (String::new(), authority),
        };
        let upstream = if host_port.parse::<SocketAddr>().is_ok() || host_port.contains(':') {
            host_port.to_owned()
        } else {
            format!("{host_port}:{}", default_port(scheme))
        };
        (
            format!("{scheme}://{userinfo}127.0.0.1:{port}{path}"),
            upstream,
        )
    }

    fn default_port(scheme: &str) -> u16 {
        if scheme.starts_with("postgres") {
            5432
        } else {
            3306
        }
    }
}

#[cfg(feature = "postgres")]
mod postgres {
    use idem_sql::{PostgresConfig, PostgresStore};

    use super::*;

    fn config(url: &str) -> PostgresConfig {
        PostgresConfig::from_url(url)
            .unwrap()
            .with_operation_timeout(BOUND)
            .with_connect_timeout(BOUND)
    }

    fn silent_url(silent: &Silent) -> String {
        format!("postgres://postgres:pw@127.0.0.1:{}/test", silent.port)
    }

    #[tokio::test]
    async fn a_silent_server_is_unavailable_within_the_operation_timeout() {
        let silent = Silent::start().await;
        let store = PostgresStore::connect_lazy(config(&silent_url(&silent))).unwrap();
        every_call_unavailable_in_time(&store, &fresh_key(), &LeaseToken::generate()).await;
        crowd_unavailable_in_time(&store).await;
        let store =
            PostgresStore::connect_lazy(config(&silent_url(&silent)).with_migrations(false))
                .unwrap();
        every_call_unavailable_in_time(&store, &fresh_key(), &LeaseToken::generate()).await;
    }

    #[tokio::test]
    async fn the_default_operation_timeout_bounds_a_silent_server() {
        let silent = Silent::start().await;
        let config = PostgresConfig::from_url(&silent_url(&silent)).unwrap();
        let store = PostgresStore::connect_lazy(config).unwrap();
        unavailable_within(Duration::from_secs(10), "find", store.find(&fresh_key())).await;
    }

    #[tokio::test]
    async fn connect_to_a_silent_server_is_unavailable_within_the_connect_timeout() {
        let silent = Silent::start().await;
        unavailable_in_time(
            "connect",
            PostgresStore::connect(config(&silent_url(&silent))),
        )
        .await;
    }

    #[tokio::test]
    async fn a_server_that_stalls_mid_session_is_unavailable_within_the_operation_timeout() {
        let Ok(url) = std::env::var("IDEM_TEST_POSTGRES_URL") else {
            return idem_conformance::skip("postgres", "IDEM_TEST_POSTGRES_URL is not set")
                .unwrap_or(());
        };
        let (_, upstream) = relay::through(&url, 0);
        let relay = relay::Relay::start(upstream).await;
        let (via, _) = relay::through(&url, relay.port);
        let store = PostgresStore::connect(config(&via)).await.unwrap();
        let key = fresh_key();
        let Claim::Acquired(token) = store.claim(&key, "p".into(), HOUR).await.unwrap() else {
            panic!("a fresh key was taken");
        };

        relay.freeze();
        every_call_unavailable_in_time(&store, &key, &token).await;
        crowd_unavailable_in_time(&store).await;
        relay.thaw();
        works_again(&store).await;
    }
}

#[cfg(feature = "mysql")]
mod mysql {
    use idem_sql::{MySqlConfig, MySqlStore};

    use super::*;

    fn config(url: &str) -> MySqlConfig {
        MySqlConfig::from_url(url)
            .unwrap()
            .with_operation_timeout(BOUND)
            .with_connect_timeout(BOUND)
    }

    fn silent_url(silent: &Silent) -> String {
        format!("mysql://root:pw@127.0.0.1:{}/test", silent.port)
    }

    #[tokio::test]
    async fn a_silent_server_is_unavailable_within_the_operation_timeout() {
        let silent = Silent::start().await;
        let store = MySqlStore::connect_lazy(config(&silent_url(&silent))).unwrap();
        every_call_unavailable_in_time(&store, &fresh_key(), &LeaseToken::generate()).await;
        crowd_unavailable_in_time(&store).await;
        let store =
            MySqlStore::connect_lazy(config(&silent_url(&silent)).with_migrations(false)).unwrap();
        every_call_unavailable_in_time(&store, &fresh_key(), &LeaseToken::generate()).await;
    }

    #[tokio::test]
    async fn the_default_operation_timeout_bounds_a_silent_server() {
        let silent = Silent::start().await;
        let config = MySqlConfig::from_url(&silent_url(&silent)).unwrap();
        let store = MySqlStore::connect_lazy(config).unwrap();
        unavailable_within(Duration::from_secs(10), "find", store.find(&fresh_key())).await;
    }

    #[tokio::test]
    async fn connect_to_a_silent_server_is_unavailable_within_the_connect_timeout() {
        let silent = Silent::start().await;
        unavailable_in_time("connect", MySqlStore::connect(config(&silent_url(&silent)))).await;
    }

    #[tokio::test]
    async fn a_server_that_stalls_mid_session_is_unavailable_within_the_operation_timeout() {
        let Ok(url) = std::env::var("IDEM_TEST_MYSQL_URL") else {
            return idem_conformance::skip("mysql", "IDEM_TEST_MYSQL_URL is not set").unwrap_or(());
        };
        let (_, upstream) = relay::through(&url, 0);
        let relay = relay::Relay::start(upstream).await;
        let (via, _) = relay::through(&url, relay.port);
        let store = MySqlStore::connect(config(&via)).await.unwrap();
        let key = fresh_key();
        let Claim::Acquired(token) = store.claim(&key, "p".into(), HOUR).await.unwrap() else {
            panic!("a fresh key was taken");
        };

        relay.freeze();
        every_call_unavailable_in_time(&store, &key, &token).await;
        crowd_unavailable_in_time(&store).await;
        relay.thaw();
        works_again(&store).await;
    }
}

#[cfg(feature = "sqlite")]
mod sqlite {
    use idem_sql::sqlx::{Connection, Executor, SqliteConnection};
    use idem_sql::{SqliteConfig, SqliteStore};

    use super::*;

    /// Another connection holds the write lock of the file (the busy timeout
    /// of the store, 5 s by default, is longer than the operation timeout):
    /// every write is `Unavailable` within the operation timeout, and a read
    /// answers at once (WAL lets it), either way within the bound.
    #[tokio::test]
    async fn a_locked_file_is_unavailable_within_the_operation_timeout() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("idem.db");
        let store = SqliteStore::connect(SqliteConfig::file(&path).with_operation_timeout(BOUND))
            .await
            .unwrap();
        let key = fresh_key();
        let Claim::Acquired(token) = store.claim(&key, "p".into(), HOUR).await.unwrap() else {
            panic!("a fresh key was taken");
        };

        let mut locker = SqliteConnection::connect(&format!("sqlite://{}", path.display()))
            .await
            .unwrap();
        locker.execute("BEGIN IMMEDIATE").await.unwrap();
        let started = Instant::now();
        assert!(store.find(&key).await.unwrap().is_some());
        assert!(store.exists(&key).await.unwrap());
        assert!(started.elapsed() < BOUND + MARGIN);
        unavailable_in_time("store", store.store(&key, "v".into(), HOUR)).await;
        unavailable_in_time("remove", store.remove(&key)).await;
        unavailable_in_time("claim", store.claim(&fresh_key(), "p".into(), HOUR)).await;
        unavailable_in_time("extend", store.extend(&key, &token, HOUR)).await;
        unavailable_in_time("complete", store.complete(&key, &token, "v".into(), HOUR)).await;
        unavailable_in_time("release", store.release(&key, &token)).await;

        locker.execute("ROLLBACK").await.unwrap();
        locker.close().await.unwrap();
        works_again(&store).await;
    }
}
