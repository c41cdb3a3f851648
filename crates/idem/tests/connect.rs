//! `idem::connect`: every URL form we can reach here, and the errors.

use bytes_free::roundtrip;
use idem::{Error, StoreConfig};

mod bytes_free {
    use std::sync::Arc;
    use std::time::Duration;

    use idem::{IdempotencyStore, StoreKey};

    /// Writes and reads one record through the store.
    pub(super) async fn roundtrip(store: Arc<dyn IdempotencyStore>) {
        let key = StoreKey::parse(format!("facade-test:{:?}", std::time::Instant::now())).unwrap();
        store
            .store(&key, "v".into(), Duration::from_secs(60))
            .await
            .unwrap();
        assert_eq!(store.find(&key).await.unwrap().as_deref(), Some(&b"v"[..]));
    }
}

#[tokio::test]
async fn memory_and_sqlite_urls_connect() {
    roundtrip(idem::connect("memory://").await.unwrap()).await;
    roundtrip(idem::connect("sqlite::memory:").await.unwrap()).await;
    let dir = std::env::temp_dir().join(format!("idem-facade-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("idem.db");
    roundtrip(
        idem::connect(&format!("sqlite://{}", file.display()))
            .await
            .unwrap(),
    )
    .await;
    assert!(file.exists(), "the SQLite file was not created");
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn the_tier_wraps_any_store() {
    let mut config = StoreConfig::from_url("sqlite::memory:");
    config.tier = true;
    let store = config.connect().await.unwrap();
    assert!(format!("{store:?}").starts_with("CachedStore"), "{store:?}");
    roundtrip(store).await;
}

#[tokio::test]
async fn an_unknown_scheme_is_a_config_error() {
    let err = idem::connect("mongodb://admin:hunter2@127.0.0.1:27017")
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Config { .. }), "{err:?}");
    assert!(!format!("{err} {err:?}").contains("hunter2"));
}

/// Connecting to a closed port with a password in the URL: a typed error
/// within the timeout, and the password nowhere in it.
#[cfg(any(
    feature = "postgres",
    feature = "mysql",
    feature = "redis",
    feature = "mssql"
))]
async fn refused_without_leaking(url: &str) {
    let mut config = StoreConfig::from_url(url);
    config.connect_timeout = Some(std::time::Duration::from_millis(500));
    config.operation_timeout = Some(std::time::Duration::from_millis(500));
    let started = std::time::Instant::now();
    let result = tokio::time::timeout(std::time::Duration::from_secs(10), config.connect()).await;
    let err = match result {
        Ok(Err(err)) => err,
        Ok(Ok(store)) => {
            // Lazy pools connect on first use.
            let key = idem::StoreKey::parse("k").unwrap();
            store.find(&key).await.expect_err("a closed port answered")
        }
        Err(_) => panic!("{url}: connecting hung past 10 s"),
    };
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
    let mut text = format!("{err} {err:?}");
    let mut source = std::error::Error::source(&err);
    while let Some(s) = source {
        text.push_str(&format!(" {s} {s:?}"));
        source = s.source();
    }
    assert!(
        !text.contains("hunter2"),
        "{url}: the password leaked: {text}"
    );
}

#[cfg(feature = "postgres")]
#[tokio::test]
async fn postgres_password_never_leaks() {
    refused_without_leaking("postgres://app:hunter2@127.0.0.1:1/db").await;
}

#[cfg(feature = "mysql")]
#[tokio::test]
async fn mysql_and_mariadb_passwords_never_leak() {
    refused_without_leaking("mysql://root:hunter2@127.0.0.1:1/test").await;
    refused_without_leaking("mariadb://root:hunter2@127.0.0.1:1/test").await;
}

#[cfg(feature = "redis")]
#[tokio::test]
async fn redis_password_never_leaks() {
    refused_without_leaking("redis://:hunter2@127.0.0.1:1").await;
}

#[cfg(feature = "mssql")]
#[tokio::test]
async fn mssql_password_never_leaks() {
    refused_without_leaking("mssql://sa:hunter2@127.0.0.1:1/master").await;
    refused_without_leaking("Server=tcp:127.0.0.1,1;Database=master;User Id=sa;Password=hunter2;TrustServerCertificate=true").await;
}

/// The server URL in `var`, or `None` after saying loudly why the test did
/// not run (a failure if the backend is in `IDEM_REQUIRE`).
#[cfg(any(feature = "postgres", feature = "mysql", feature = "redis"))]
fn server_url(var: &str, backend: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(url) if !url.trim().is_empty() => Some(url),
        _ => {
            let required = std::env::var("IDEM_REQUIRE").unwrap_or_default();
            assert!(
                !required.split([',', ' ']).any(|b| b.trim() == backend),
                "{backend} is required but {var} is not set"
            );
            use std::io::Write;
            let _ = writeln!(
                std::io::stderr(),
                "*** SKIPPED facade on {backend}: {var} is not set ***"
            );
            None
        }
    }
}

#[cfg(feature = "postgres")]
#[tokio::test]
async fn a_postgres_url_connects() {
    let Some(url) = server_url("IDEM_TEST_POSTGRES_URL", "postgres") else {
        return;
    };
    let mut config = StoreConfig::from_url(&url);
    config.table = Some("idem_t_facade_pg".into());
    roundtrip(config.connect().await.unwrap()).await;
    let url = url.replacen("postgres://", "postgresql://", 1);
    let mut config = StoreConfig::from_url(&url);
    config.table = Some("idem_t_facade_pg".into());
    roundtrip(config.connect().await.unwrap()).await;
}

#[cfg(feature = "mysql")]
#[tokio::test]
async fn mysql_and_mariadb_urls_connect() {
    let Some(url) = server_url("IDEM_TEST_MYSQL_URL", "mysql") else {
        return;
    };
    for url in [url.clone(), url.replacen("mysql://", "mariadb://", 1)] {
        let mut config = StoreConfig::from_url(&url);
        config.table = Some("idem_t_facade_my".into());
        roundtrip(config.connect().await.unwrap()).await;
    }
}

#[cfg(feature = "redis")]
#[tokio::test]
async fn a_redis_url_connects() {
    let Some(url) = server_url("IDEM_TEST_REDIS_URL", "redis") else {
        return;
    };
    roundtrip(idem::connect(&url).await.unwrap()).await;
}
