//! The command's library functions, in process, on a memory store.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use idem::{
    Completion, Fingerprint, IdempotencyStore, MemoryStore, Outcome, StoreConfig, StoredResponse,
};
use idem_cli::{CliError, Target, exit};

fn target() -> (Target, Arc<MemoryStore>) {
    let store = Arc::new(MemoryStore::new());
    let target = Target::over(StoreConfig::default(), store.clone()).unwrap();
    (target, store)
}

/// Completes `key` in `scope` through the engine, as the layer would.
async fn complete(target: &Target, store: Arc<MemoryStore>, scope: &str, key: &str) {
    let engine = target.config().engine_over(store);
    let store_key = idem_cli::store_key(target, scope, key).unwrap();
    let response = StoredResponse {
        status: 201,
        headers: vec![
            (
                "content-type".into(),
                Bytes::from_static(b"application/json"),
            ),
            ("location".into(), Bytes::from_static(b"/orders/1")),
        ],
        body: Bytes::from_static(b"{\"id\":1}"),
    };
    let fp = Fingerprint::of_request("POST", "/orders", b"{}");
    let traced = engine
        .execute_traced(&store_key, fp, Some("req-1"), |_| async {
            ((), Completion::Keep(response))
        })
        .await
        .unwrap();
    assert!(matches!(traced.outcome, Outcome::Executed(())));
}

#[tokio::test]
async fn get_shows_a_completed_record_and_delete_removes_it() {
    let (target, store) = target();
    complete(&target, store, "tenant-a", "order-1").await;

    let record = idem_cli::get(&target, "tenant-a", "order-1").await.unwrap();
    assert_eq!(record.state, "completed");
    assert_eq!(record.status, Some(201));
    assert_eq!(record.body_size, Some(8));
    assert_eq!(&record.body[..], b"{\"id\":1}");
    assert_eq!(record.headers[1].value, "/orders/1");
    assert_eq!(record.store_key, "idempotency:8:tenant-a:order-1");
    assert_eq!(
        record.fingerprint,
        Fingerprint::of_request("POST", "/orders", b"{}").to_string()
    );
    assert!(record.created < record.expires, "{record:?}");
    let text = record.to_string();
    assert!(text.contains("state        completed"), "{text}");
    assert!(text.contains("location: /orders/1"), "{text}");
    assert_eq!(record.request_id.as_deref(), Some("req-1"));
    assert!(text.contains("request id   req-1"), "{text}");

    // Another scope is another key.
    let other = idem_cli::get(&target, "tenant-b", "order-1").await;
    assert!(matches!(other, Err(CliError::NotFound { .. })), "{other:?}");

    let deleted = idem_cli::delete(&target, "tenant-a", "order-1")
        .await
        .unwrap();
    assert!(deleted.existed);
    let again = idem_cli::delete(&target, "tenant-a", "order-1")
        .await
        .unwrap();
    assert!(!again.existed);
    assert!(again.to_string().contains("nothing deleted"));
    let gone = idem_cli::get(&target, "tenant-a", "order-1")
        .await
        .unwrap_err();
    assert_eq!(gone.exit_code(), exit::NOT_FOUND);
}

#[tokio::test]
async fn get_shows_an_in_progress_claim() {
    let (target, store) = target();
    let key = idem_cli::store_key(&target, "", "running").unwrap();
    let fp = Fingerprint::of_request("POST", "/slow", b"");
    let pending = idem::Record::in_progress(fp, Duration::from_secs(30)).encode();
    store
        .claim(&key, pending, Duration::from_secs(30))
        .await
        .unwrap();
    let record = idem_cli::get(&target, "", "running").await.unwrap();
    assert_eq!(record.state, "in_progress");
    assert_eq!(record.status, None);
    assert_eq!(record.lease_ms, Some(30_000));
    assert!(record.to_string().contains("scope        (global)"));
}

#[tokio::test]
async fn a_bad_key_is_a_usage_error() {
    let (target, _) = target();
    let err = idem_cli::get(&target, "", "").await.unwrap_err();
    assert_eq!(err.exit_code(), exit::USAGE, "{err}");
    let err = idem_cli::delete(&target, "a\nb", "k").await.unwrap_err();
    assert_eq!(err.exit_code(), exit::USAGE, "{err}");
}

#[tokio::test]
async fn check_runs_every_step_and_leaves_nothing_behind() {
    let (target, store) = target();
    let report = idem_cli::check(&target).await.unwrap();
    let steps: Vec<_> = report.steps.iter().map(|s| s.step).collect();
    assert_eq!(
        steps,
        ["claim", "complete", "replay", "claim", "release", "remove"]
    );
    assert!(report.steps.iter().all(|s| s.ms >= 0.0));
    assert!(report.to_string().contains("ok: the store works"));
    let left = store.stats(target.space()).await.unwrap();
    assert_eq!(left.records(), 0, "{left:?}");
}

#[tokio::test]
async fn stats_counts_by_state_under_the_prefix() {
    let (target, store) = target();
    complete(&target, store.clone(), "t", "done-1").await;
    complete(&target, store.clone(), "t", "done-2").await;
    let running = idem_cli::store_key(&target, "t", "running").unwrap();
    store
        .claim(&running, "x".into(), Duration::from_secs(30))
        .await
        .unwrap();
    // Outside the key space, and expired: neither is counted.
    let foreign = idem::StoreKey::parse("other-app:1").unwrap();
    store
        .store(&foreign, "x".into(), Duration::from_secs(30))
        .await
        .unwrap();
    let expired = idem_cli::store_key(&target, "t", "old").unwrap();
    store
        .store(&expired, "x".into(), Duration::from_millis(1))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(20)).await;

    let stats = idem_cli::stats(&target).await.unwrap();
    assert_eq!(
        (
            stats.records,
            stats.in_progress,
            stats.completed,
            stats.expired
        ),
        (3, 1, 2, None)
    );
    let text = stats.to_string();
    assert!(text.contains("in progress  1"), "{text}");
    assert!(text.contains("memory drops them itself"), "{text}");
}

#[tokio::test]
async fn purge_on_a_self_expiring_store_says_so() {
    let purged = idem_cli::purge(&StoreConfig::default()).await.unwrap();
    assert_eq!(purged.purged, None);
    assert_eq!(
        purged.to_string(),
        "nothing to purge: memory expires records by itself"
    );
}

/// A store that implements only what every store must: no `stats`.
#[derive(Debug)]
struct Plain(MemoryStore);

#[idem::async_trait]
impl IdempotencyStore for Plain {
    async fn find(&self, key: &idem::StoreKey) -> idem::Result<Option<Bytes>> {
        self.0.find(key).await
    }
    async fn store(&self, key: &idem::StoreKey, value: Bytes, ttl: Duration) -> idem::Result<()> {
        self.0.store(key, value, ttl).await
    }
    async fn remove(&self, key: &idem::StoreKey) -> idem::Result<bool> {
        self.0.remove(key).await
    }
    async fn exists(&self, key: &idem::StoreKey) -> idem::Result<bool> {
        self.0.exists(key).await
    }
    async fn claim(
        &self,
        key: &idem::StoreKey,
        pending: Bytes,
        lease: Duration,
    ) -> idem::Result<idem::Claim> {
        self.0.claim(key, pending, lease).await
    }
    async fn extend(
        &self,
        key: &idem::StoreKey,
        token: &idem::LeaseToken,
        lease: Duration,
    ) -> idem::Result<()> {
        self.0.extend(key, token, lease).await
    }
    async fn complete(
        &self,
        key: &idem::StoreKey,
        token: &idem::LeaseToken,
        value: Bytes,
        ttl: Duration,
    ) -> idem::Result<()> {
        self.0.complete(key, token, value, ttl).await
    }
    async fn release(&self, key: &idem::StoreKey, token: &idem::LeaseToken) -> idem::Result<bool> {
        self.0.release(key, token).await
    }
}

#[tokio::test]
async fn stats_on_a_store_that_cannot_count_is_unsupported() {
    let store = Arc::new(Plain(MemoryStore::new()));
    // The trait's default answers, through an `Arc` too.
    let direct = store.stats(&idem::KeySpace::default()).await.unwrap_err();
    assert!(
        matches!(
            direct,
            idem::Error::Unsupported {
                backend: "Plain",
                operation: "stats"
            }
        ),
        "{direct:?}"
    );
    let target = Target::over(StoreConfig::default(), store).unwrap();
    let err = idem_cli::stats(&target).await.unwrap_err();
    assert_eq!(err.exit_code(), exit::UNSUPPORTED);
    assert_eq!(
        err.to_string(),
        "stats is not supported by memory: this store cannot count its records"
    );
}

#[tokio::test]
async fn the_command_refuses_a_memory_url_and_names_the_settings() {
    use clap::Parser;
    let cli = idem_cli::Cli::parse_from(["idem", "--store-url", "memory://", "--json", "stats"]);
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let code = idem_cli::run(cli, &mut out, &mut err).await;
    assert_eq!(code, exit::CONFIG);
    assert!(out.is_empty());
    let doc: serde_json::Value = serde_json::from_slice(&err).unwrap();
    assert_eq!(doc["error"]["kind"], "config");
    assert_eq!(doc["error"]["exit_code"], exit::CONFIG);
    let message = doc["error"]["message"].as_str().unwrap();
    assert!(message.contains("IDEM_STORE_URL"), "{message}");
}
