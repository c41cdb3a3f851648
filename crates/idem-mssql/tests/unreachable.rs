//! A server that is not there, or that never answers, is a typed
//! `Unavailable` within the timeouts, and no message shows the password.

use std::error::Error as _;
use std::time::{Duration, Instant};

use idem_conformance::fresh_key;
use idem_conformance::stall::{self, SilentServer};
use idem_core::{Error, LeaseToken, PurgeExpired};
use idem_mssql::{MssqlConfig, MssqlStore};

const PASSWORD: &str = "Never-Show-Me-42";
const CONNECT_TIMEOUT: Duration = Duration::from_millis(300);
const OPERATION_TIMEOUT: Duration = Duration::from_millis(1500);

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
        .with_connect_timeout(CONNECT_TIMEOUT)
        .with_operation_timeout(OPERATION_TIMEOUT)
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
    let silent = SilentServer::start().await.unwrap();
    let started = Instant::now();
    let connect = MssqlStore::connect(config(silent.port()).with_migrations(false));
    let e = stall::unavailable_within(CONNECT_TIMEOUT, "connect", connect).await;
    let elapsed = started.elapsed();
    assert_unavailable(&e);
    assert!(elapsed >= Duration::from_millis(250), "took {elapsed:?}");
    let shown = everything_shown(&e);
    assert!(shown.contains("longer than 300ms"), "{shown}");
}

#[tokio::test]
async fn every_operation_of_a_lazy_store_is_unavailable() {
    let store = MssqlStore::connect_lazy(config(closed_port())).unwrap();
    let token = LeaseToken::generate();
    let started = Instant::now();
    let errors =
        stall::every_call_unavailable_within(&store, &fresh_key(), &token, OPERATION_TIMEOUT).await;
    errors.iter().for_each(assert_unavailable);
    let purge = store.purge_expired();
    assert_unavailable(&stall::unavailable_within(OPERATION_TIMEOUT, "purge", purge).await);
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "took {:?}",
        started.elapsed()
    );
    assert!(!format!("{store:?}").contains(PASSWORD));
}

#[tokio::test]
async fn every_operation_on_a_silent_server_is_unavailable_within_the_operation_timeout() {
    // Accepts TCP, never says a word: each call gives up on connecting.
    let silent = SilentServer::start().await.unwrap();
    let store = MssqlStore::connect_lazy(config(silent.port())).unwrap();
    let token = LeaseToken::generate();
    let errors =
        stall::every_call_unavailable_within(&store, &fresh_key(), &token, OPERATION_TIMEOUT).await;
    errors.iter().for_each(assert_unavailable);
}

#[tokio::test]
async fn a_bad_table_name_is_a_config_error_before_any_connection() {
    let e = MssqlStore::connect(config(closed_port()).with_table("x]; DROP TABLE y"))
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Config { .. }), "{e:?}");
}
