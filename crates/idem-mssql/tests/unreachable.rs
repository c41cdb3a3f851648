//! A server that is not there, or that never answers, is a typed
//! `Unavailable` within the timeouts, and no message shows the password.

use std::error::Error as _;
use std::time::{Duration, Instant};

use idem_core::{Error, IdempotencyStore, PurgeExpired, StoreKey};
use idem_mssql::{MssqlConfig, MssqlStore};

const PASSWORD: &str = "Never-Show-Me-42";

/// A loopback port nothing listens on.
fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

fn config(port: u16) -> MssqlConfig {
    MssqlConfig::new("127.0.0.1")
        .with_port(port)
        .with_credentials("sa", PASSWORD)
        .with_trust_server_certificate(true)
        .with_connect_timeout(Duration::from_millis(300))
        .with_operation_timeout(Duration::from_millis(1500))
}

/// The error, its `Debug`, and every `Display` down its source chain.
fn everything_shown(e: &Error) -> String {
    let mut shown = format!("{e:?}\n{e}");
    let mut source = e.source();
    while let Some(s) = source {
        shown.push_str(&format!("\n{s}"));
        source = s.source();
    }
    shown
}

fn assert_unavailable(e: &Error) {
    assert!(
        matches!(
            e,
            Error::Unavailable {
                backend: "mssql",
                ..
            }
        ),
        "expected Unavailable, got {e:?}"
    );
    assert!(e.is_transient());
    assert!(!everything_shown(e).contains(PASSWORD), "{e:?}");
}

#[tokio::test]
async fn connect_to_a_closed_port_is_unavailable_at_once() {
    let started = Instant::now();
    let port = closed_port();
    let e = MssqlStore::connect(config(port))
        .await
        .expect_err("nothing listens there");
    assert_unavailable(&e);
    assert!(
        started.elapsed() < Duration::from_millis(1500),
        "took {:?}",
        started.elapsed()
    );
    // The cause is kept: a refused connection, not just "timed out".
    let shown = everything_shown(&e);
    assert!(
        shown.contains(&format!("connecting to 127.0.0.1:{port} failed")),
        "{shown}"
    );
}

#[tokio::test]
async fn connect_to_a_silent_server_times_out_as_unavailable() {
    // Accepts TCP, never says a word: tiberius alone would wait forever.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let holder = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    let started = Instant::now();
    let e = MssqlStore::connect(config(port).with_migrations(false))
        .await
        .expect_err("the server never answers");
    let elapsed = started.elapsed();
    assert_unavailable(&e);
    assert!(elapsed >= Duration::from_millis(250), "took {elapsed:?}");
    assert!(elapsed < Duration::from_millis(1400), "took {elapsed:?}");
    let shown = everything_shown(&e);
    assert!(shown.contains("longer than 300ms"), "{shown}");
    holder.abort();
}

#[tokio::test]
async fn every_operation_of_a_lazy_store_is_unavailable() {
    let store = MssqlStore::connect_lazy(config(closed_port())).unwrap();
    let key = StoreKey::parse("k").unwrap();
    let hour = Duration::from_secs(3600);
    let token = idem_core::LeaseToken::generate();
    let started = Instant::now();
    assert_unavailable(&store.find(&key).await.unwrap_err());
    assert_unavailable(&store.exists(&key).await.unwrap_err());
    assert_unavailable(&store.remove(&key).await.unwrap_err());
    assert_unavailable(&store.store(&key, "v".into(), hour).await.unwrap_err());
    assert_unavailable(&store.claim(&key, "p".into(), hour).await.unwrap_err());
    assert_unavailable(&store.extend(&key, &token, hour).await.unwrap_err());
    assert_unavailable(
        &store
            .complete(&key, &token, "v".into(), hour)
            .await
            .unwrap_err(),
    );
    assert_unavailable(&store.release(&key, &token).await.unwrap_err());
    assert_unavailable(&store.purge_expired().await.unwrap_err());
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "took {:?}",
        started.elapsed()
    );
    assert!(!format!("{store:?}").contains(PASSWORD));
}

/// Runs `call`, which must fail with `Unavailable` within `bound`.
async fn unavailable_within<T: std::fmt::Debug>(
    bound: Duration,
    what: &str,
    call: impl std::future::Future<Output = idem_core::Result<T>>,
) {
    let started = Instant::now();
    let result = tokio::time::timeout(Duration::from_secs(10), call)
        .await
        .unwrap_or_else(|_| panic!("{what} hung"));
    let elapsed = started.elapsed();
    assert_unavailable(&result.expect_err(what));
    assert!(elapsed < bound, "{what} took {elapsed:?}");
}

#[tokio::test]
async fn every_operation_on_a_silent_server_is_unavailable_within_the_operation_timeout() {
    // Accepts TCP, never says a word: each call gives up on connecting.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let holder = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    let config = config(port);
    let bound = config.operation_timeout() + Duration::from_millis(500);
    let store = MssqlStore::connect_lazy(config).unwrap();
    let key = StoreKey::parse("k").unwrap();
    let hour = Duration::from_secs(3600);
    let token = idem_core::LeaseToken::generate();
    unavailable_within(bound, "find", store.find(&key)).await;
    unavailable_within(bound, "exists", store.exists(&key)).await;
    unavailable_within(bound, "remove", store.remove(&key)).await;
    unavailable_within(bound, "store", store.store(&key, "v".into(), hour)).await;
    unavailable_within(bound, "claim", store.claim(&key, "p".into(), hour)).await;
    unavailable_within(bound, "extend", store.extend(&key, &token, hour)).await;
    let complete = store.complete(&key, &token, "v".into(), hour);
    unavailable_within(bound, "complete", complete).await;
    unavailable_within(bound, "release", store.release(&key, &token)).await;
    holder.abort();
}

#[tokio::test]
async fn a_bad_table_name_is_a_config_error_before_any_connection() {
    let e = MssqlStore::connect(config(closed_port()).with_table("x]; DROP TABLE y"))
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Config { .. }), "{e:?}");
}
