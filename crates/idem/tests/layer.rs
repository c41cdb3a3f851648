//! One configuration path: the layer built from a `StoreConfig` keeps its
//! lease, retention and key prefix, with nothing copied by hand.
#![cfg(all(feature = "tower", feature = "sqlite"))]

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::routing::post;
use http::{Request, StatusCode};
use idem::{
    IdempotencyKey, IdempotencyStore, KeySpace, MemoryStore, Record, RecordState, Scope,
    StoreConfig,
};
use tower::ServiceExt;

fn request(key: &str) -> Request<Body> {
    Request::post("/p")
        .header("idempotency-key", key)
        .body(Body::from("{}"))
        .unwrap()
}

#[tokio::test]
async fn the_layer_takes_lease_retention_and_prefix_from_the_config() {
    let mut config = StoreConfig::from_url("memory://");
    config.key_prefix = "shop:".into();
    config.lease = Duration::from_secs(7);
    config.retention = Duration::from_secs(90);
    let store = Arc::new(MemoryStore::new());
    let layer = config.layer_over(store.clone()).unwrap();

    let (started_tx, started) = tokio::sync::oneshot::channel::<()>();
    let started_tx = Arc::new(std::sync::Mutex::new(Some(started_tx)));
    let (release, released) = tokio::sync::oneshot::channel::<()>();
    let released = Arc::new(tokio::sync::Mutex::new(Some(released)));
    let app = Router::new()
        .route(
            "/p",
            post(move || {
                let (started_tx, released) = (started_tx.clone(), released.clone());
                async move {
                    if let Some(tx) = started_tx.lock().unwrap().take() {
                        let _ = tx.send(());
                    }
                    if let Some(rx) = released.lock().await.take() {
                        let _ = rx.await;
                    }
                    (StatusCode::CREATED, "paid")
                }
            }),
        )
        .layer(layer);

    let key = "k-1";
    let stored_at = KeySpace::new("shop:")
        .unwrap()
        .key(&Scope::global(), &IdempotencyKey::new(key).unwrap());
    let running = tokio::spawn(app.clone().oneshot(request(key)));
    started.await.unwrap();
    // In progress, under the config's prefix, with the config's lease.
    let bytes = store
        .find(&stored_at)
        .await
        .unwrap()
        .expect("under the prefix");
    let record = Record::decode(&bytes).unwrap();
    assert_eq!(
        record.state,
        RecordState::InProgress {
            lease: Duration::from_secs(7)
        }
    );
    release.send(()).unwrap();
    assert_eq!(
        running.await.unwrap().unwrap().status(),
        StatusCode::CREATED
    );

    // Completed, kept for the config's retention.
    let record = Record::decode(&store.find(&stored_at).await.unwrap().unwrap()).unwrap();
    assert!(record.is_completed());
    let kept = record.expires_at.duration_since(record.created_at).unwrap();
    assert_eq!(kept, Duration::from_secs(90));
    let again = app.oneshot(request(key)).await.unwrap();
    assert_eq!(again.headers()["idempotent-replayed"], "true");
}

#[tokio::test]
async fn a_bad_prefix_is_a_config_error() {
    let mut config = StoreConfig::from_url("memory://");
    config.key_prefix = "bad\nprefix".into();
    let error = config.layer_over(Arc::new(MemoryStore::new())).unwrap_err();
    assert!(
        matches!(
            error,
            idem::Error::Config { .. } | idem::Error::InvalidKey(_)
        ),
        "{error:?}"
    );
}

#[tokio::test]
async fn the_transactional_layer_and_the_pool_path_work_from_the_config() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("app.db").display());
    let pool = idem_sql_pool(&url).await;
    let mut config = StoreConfig::from_url(&url);
    config.table = Some("app_idem".into());
    let store = config.sqlite_on_pool(pool.clone()).await.unwrap();
    let layer = config.transactional_layer(store.transactional()).unwrap();
    let app = Router::new()
        .route("/p", post(|| async { (StatusCode::CREATED, "paid") }))
        .layer(layer);
    assert_eq!(
        app.clone().oneshot(request("k")).await.unwrap().status(),
        StatusCode::CREATED
    );
    let again = app.oneshot(request("k")).await.unwrap();
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    let rows: i64 = idem_sql::sqlx::query_scalar("SELECT COUNT(*) FROM app_idem")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(
        rows, 1,
        "the record is in the application's database, on its pool"
    );
}

async fn idem_sql_pool(url: &str) -> idem_sql::sqlx::SqlitePool {
    use std::str::FromStr;
    let options = idem_sql::sqlx::sqlite::SqliteConnectOptions::from_str(url)
        .unwrap()
        .create_if_missing(true);
    idem_sql::sqlx::sqlite::SqlitePoolOptions::new()
        .max_connections(2)
        .connect_with(options)
        .await
        .unwrap()
}
