//! No call waits longer than the operation timeout on a stalled database:
//! a server that accepts connections and never answers (PostgreSQL and
//! MySQL, no server needed), a SQLite file another connection keeps locked,
//! and a real server that answered and then stalls mid-session (a relay in
//! front of `IDEM_TEST_POSTGRES_URL` / `IDEM_TEST_MYSQL_URL` that stops
//! passing bytes on). Every call is `Error::Unavailable` within the bound,
//! and the store works again once the server does.

#![cfg(any(feature = "sqlite", feature = "postgres", feature = "mysql"))]

use std::time::{Duration, Instant};

use idem_conformance::{fresh_key, stall};
use idem_core::{Claim, IdempotencyStore};

/// The operation timeout of the stores under test.
const BOUND: Duration = Duration::from_millis(500);
/// How long a store may take to work again once its server does.
const COMEBACK: Duration = Duration::from_secs(10);
const HOUR: Duration = Duration::from_secs(3600);

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

/// Stamps the stall tests of a network backend, in a module named for it:
/// the store's config and store types, the URL of a silent server (`{}` is
/// its address) and the variable naming a real server.
#[cfg(any(feature = "postgres", feature = "mysql"))]
macro_rules! network_backend_tests {
    ($backend:ident, $Config:ident, $Store:ident, $silent_url:literal, $env:literal) => {
        mod $backend {
            use idem_conformance::stall::SilentServer;
            use idem_core::{LeaseToken, StoreKey};
            use idem_sql::{$Config, $Store};

            use super::*;

            /// Three times more calls at once than the pool has connections
            /// (10).
            const CROWD: usize = 30;
            /// The default operation timeout of the SQL stores.
            const DEFAULT_BOUND: Duration = Duration::from_secs(10);

            fn config(url: &str) -> $Config {
                $Config::from_url(url)
                    .unwrap()
                    .with_operation_timeout(BOUND)
                    .with_connect_timeout(BOUND)
            }

            fn silent_url(silent: &SilentServer) -> String {
                format!($silent_url, silent.addr())
            }

            /// Every method of the trait, then a crowd of calls: each is
            /// `Unavailable` within the bound.
            async fn all_unavailable_in_time(store: &$Store, key: &StoreKey, token: &LeaseToken) {
                stall::every_call_unavailable_within(store, key, token, BOUND).await;
                stall::crowd_unavailable_within(store, CROWD, BOUND).await;
            }

            #[tokio::test]
            async fn a_silent_server_is_unavailable_within_the_operation_timeout() {
                let silent = SilentServer::start().await.unwrap();
                let token = LeaseToken::generate();
                let store = $Store::connect_lazy(config(&silent_url(&silent))).unwrap();
                all_unavailable_in_time(&store, &fresh_key(), &token).await;
                let unmigrated = config(&silent_url(&silent)).with_migrations(false);
                let store = $Store::connect_lazy(unmigrated).unwrap();
                all_unavailable_in_time(&store, &fresh_key(), &token).await;
            }

            #[tokio::test]
            async fn the_default_operation_timeout_bounds_a_silent_server() {
                let silent = SilentServer::start().await.unwrap();
                let config = $Config::from_url(&silent_url(&silent)).unwrap();
                let store = $Store::connect_lazy(config).unwrap();
                stall::unavailable_within(DEFAULT_BOUND, "find", store.find(&fresh_key())).await;
            }

            #[tokio::test]
            async fn connect_to_a_silent_server_is_unavailable_within_the_connect_timeout() {
                let silent = SilentServer::start().await.unwrap();
                let connect = $Store::connect(config(&silent_url(&silent)));
                stall::unavailable_within(BOUND, "connect", connect).await;
            }

            #[tokio::test]
            async fn a_server_that_stalls_mid_session_is_unavailable_within_the_operation_timeout()
            {
                let Ok(url) = std::env::var($env) else {
                    let reason = concat!($env, " is not set");
                    return idem_conformance::skip(stringify!($backend), reason).unwrap_or(());
                };
                let (_, upstream) = relay::through(&url, 0);
                let relay = relay::Relay::start(upstream).await;
                let (via, _) = relay::through(&url, relay.port);
                let store = $Store::connect(config(&via)).await.unwrap();
                let key = fresh_key();
                let Claim::Acquired(token) = store.claim(&key, "p".into(), HOUR).await.unwrap()
                else {
                    panic!("a fresh key was taken");
                };

                relay.freeze();
                all_unavailable_in_time(&store, &key, &token).await;
                relay.thaw();
                stall::works_again(&store, COMEBACK).await;
            }
        }
    };
}

#[cfg(feature = "postgres")]
network_backend_tests!(
    postgres,
    PostgresConfig,
    PostgresStore,
    "postgres://postgres:pw@{}/test",
    "IDEM_TEST_POSTGRES_URL"
);

#[cfg(feature = "mysql")]
network_backend_tests!(
    mysql,
    MySqlConfig,
    MySqlStore,
    "mysql://root:pw@{}/test",
    "IDEM_TEST_MYSQL_URL"
);

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
        assert!(started.elapsed() < BOUND + stall::SLACK);
        stall::unavailable_within(BOUND, "store", store.store(&key, "v".into(), HOUR)).await;
        stall::unavailable_within(BOUND, "remove", store.remove(&key)).await;
        stall::unavailable_within(BOUND, "claim", store.claim(&fresh_key(), "p".into(), HOUR))
            .await;
        stall::unavailable_within(BOUND, "extend", store.extend(&key, &token, HOUR)).await;
        stall::unavailable_within(
            BOUND,
            "complete",
            store.complete(&key, &token, "v".into(), HOUR),
        )
        .await;
        stall::unavailable_within(BOUND, "release", store.release(&key, &token)).await;

        locker.execute("ROLLBACK").await.unwrap();
        locker.close().await.unwrap();
        stall::works_again(&store, COMEBACK).await;
    }
}
