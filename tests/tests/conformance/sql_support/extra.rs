//! Checks beyond the conformance suite that every SQL backend runs: restart
//! survival, purge, near-identical keys, passwords kept out of errors, and
//! the statements a request costs.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use super::statements;
use bytes::Bytes;
use idem_core::{
    Claim, Completion, Error, Fingerprint, Idempotency, IdempotencyStore, Outcome, PurgeExpired,
    StoreKey, StoredResponse,
};

pub(crate) const HOUR: Duration = Duration::from_secs(3600);

pub(crate) fn key(text: &str) -> StoreKey {
    StoreKey::parse(format!("extra:{}:{text}", uuid::Uuid::new_v4().simple())).unwrap()
}

/// Writes a completed record through one store, drops it (closing its pool),
/// opens a new one on the same table, and replays.
pub(crate) async fn survives_restart<S, F, Fut>(open: F, close: impl Fn(S) -> Fut2<()>)
where
    S: IdempotencyStore + 'static,
    F: Fn() -> Fut,
    Fut: Future<Output = S>,
{
    let k = key("restart");
    let first = open().await;
    let Claim::Acquired(token) = first
        .claim(&k, Bytes::from_static(b"p"), HOUR)
        .await
        .unwrap()
    else {
        panic!("fresh key taken")
    };
    first
        .complete(&k, &token, Bytes::from_static(b"paid"), HOUR)
        .await
        .unwrap();
    close(first).await;
    let second = open().await;
    assert_eq!(
        second
            .claim(&k, Bytes::from_static(b"p2"), HOUR)
            .await
            .unwrap(),
        Claim::Existing(Bytes::from_static(b"paid")),
        "the completed record did not survive the restart"
    );
}

pub(crate) type Fut2<T> = std::pin::Pin<Box<dyn Future<Output = T> + Send>>;

/// An expired row is deleted by `purge_expired`, a live one is kept, and a
/// second purge finds nothing (the row is gone, not just hidden).
pub(crate) async fn purge_deletes_expired_and_keeps_live<S: PurgeExpired>(store: &S) {
    let (old, live) = (key("old"), key("live"));
    store
        .store(&old, Bytes::from_static(b"o"), Duration::from_millis(200))
        .await
        .unwrap();
    store
        .store(&live, Bytes::from_static(b"l"), HOUR)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(store.purge_expired().await.unwrap(), 1);
    assert_eq!(store.purge_expired().await.unwrap(), 0);
    assert_eq!(
        store.find(&live).await.unwrap(),
        Some(Bytes::from_static(b"l"))
    );
    assert_eq!(store.find(&old).await.unwrap(), None);
}

/// With a purge interval, expired rows disappear without a call.
pub(crate) async fn background_purge_runs<S: PurgeExpired>(store: &S) {
    let old = key("bg");
    store
        .store(&old, Bytes::from_static(b"o"), Duration::from_millis(200))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(
        store.purge_expired().await.unwrap(),
        0,
        "the background task did not purge the expired row"
    );
}

/// `k`, `K` and `k ` are three keys (no case folding, no pad-space
/// comparison), and so are keys that differ only in a multi-byte character.
pub(crate) async fn near_identical_keys_are_distinct<S: IdempotencyStore>(store: &S) {
    let base = format!("extra:{}:", uuid::Uuid::new_v4().simple());
    let names = ["key", "KEY", "key ", "key  ", "kéy", "kÉy"];
    for (i, name) in names.iter().enumerate() {
        let k = StoreKey::parse(format!("{base}{name}")).unwrap();
        store
            .store(&k, Bytes::from(i.to_string()), HOUR)
            .await
            .unwrap();
    }
    for (i, name) in names.iter().enumerate() {
        let k = StoreKey::parse(format!("{base}{name}")).unwrap();
        assert_eq!(
            store.find(&k).await.unwrap(),
            Some(Bytes::from(i.to_string())),
            "key {name:?} collapsed into another"
        );
    }
}

/// Each of `bad` table names makes `connect` fail with [`Error::Config`].
pub(crate) async fn bad_table_names_are_config_errors<S, Fut>(
    bad: &[&str],
    connect: impl Fn(String) -> Fut,
) where
    S: std::fmt::Debug,
    Fut: Future<Output = idem_core::Result<S>>,
{
    for bad in bad {
        let err = connect(bad.to_string()).await.unwrap_err();
        assert!(matches!(err, Error::Config { .. }), "{bad:?}: {err:?}");
    }
}

/// Statements run for one fresh request (claim + complete through the
/// engine) and for one replay (a claim that finds the completed record).
pub(crate) async fn count_statements<S: IdempotencyStore + 'static>(
    store: S,
    table: &str,
) -> (usize, usize) {
    statements::install();
    let engine = Idempotency::new(Arc::new(store));
    let k = key("count");
    let fp = Fingerprint::of_request("POST", "/payments", b"{}");
    let run = |_| async {
        let response = StoredResponse {
            status: 201,
            ..Default::default()
        };
        ((), Completion::Keep(response))
    };
    let before = statements::on_table(table).len();
    let outcome = engine.execute(&k, fp, run).await.unwrap();
    assert!(matches!(outcome, Outcome::Executed(())));
    let fresh = statements::on_table(table).len() - before;
    let before = statements::on_table(table).len();
    let outcome = engine.execute(&k, fp, run).await.unwrap();
    assert!(matches!(outcome, Outcome::Replayed(_)), "{outcome:?}");
    let replay = statements::on_table(table).len() - before;
    (fresh, replay)
}

/// Neither the error nor its source chain, in Display or Debug, shows the
/// password.
pub(crate) fn assert_hidden(error: &Error, password: &str) {
    let mut texts = vec![error.to_string(), format!("{error:?}")];
    let mut source = std::error::Error::source(error);
    while let Some(e) = source {
        texts.push(e.to_string());
        texts.push(format!("{e:?}"));
        source = e.source();
    }
    for text in texts {
        assert!(!text.contains(password), "password leaked: {text}");
    }
}

pub(crate) const PASSWORD: &str = "Sup3rS3cretPw";
