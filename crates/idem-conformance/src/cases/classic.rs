//! The four classic operations: find, store, remove, exists.

use std::time::Duration;

use crate::Subject;

const HOUR: Duration = Duration::from_secs(3600);

/// `find` on a key never written returns `None`.
pub async fn find_returns_none_for_absent_key(s: &Subject) {
    let key = s.fresh_key();
    assert_eq!(s.store().find(&key).await.unwrap(), None);
    assert!(!s.store().exists(&key).await.unwrap());
}

/// `store` then `find` returns the same bytes.
pub async fn store_then_find_returns_the_value(s: &Subject) {
    let key = s.fresh_key();
    s.put(&key, b"v1", HOUR).await;
    s.assert_value(&key, b"v1", "after store").await;
}

/// `store` is an upsert: a second write replaces the first.
pub async fn store_overwrites_the_value(s: &Subject) {
    let key = s.fresh_key();
    s.put(&key, b"first", HOUR).await;
    s.put(&key, b"second", HOUR).await;
    s.assert_value(&key, b"second", "after the second store")
        .await;
}

/// `remove` deletes a live record and says so; removing again says it did not.
pub async fn remove_deletes_and_reports_it(s: &Subject) {
    let key = s.fresh_key();
    s.put(&key, b"v", HOUR).await;
    assert!(
        s.store().remove(&key).await.unwrap(),
        "remove of a live record must report it"
    );
    s.assert_absent(&key, "after remove").await;
    assert!(
        !s.store().remove(&key).await.unwrap(),
        "remove of an absent key must report false"
    );
}

/// `exists` is true exactly while a live record is there.
pub async fn exists_follows_the_record(s: &Subject) {
    let key = s.fresh_key();
    assert!(!s.store().exists(&key).await.unwrap());
    s.put(&key, b"v", HOUR).await;
    assert!(s.store().exists(&key).await.unwrap());
    s.store().remove(&key).await.unwrap();
    assert!(!s.store().exists(&key).await.unwrap());
}

/// A stored record is gone once its TTL has passed.
pub async fn stored_record_expires_after_its_ttl(s: &Subject) {
    let key = s.fresh_key();
    s.put(&key, b"v", s.short_ttl()).await;
    assert!(
        s.store().exists(&key).await.unwrap(),
        "must be live before its TTL"
    );
    tokio::time::sleep(s.past_short_ttl()).await;
    s.assert_absent(&key, "expired record was returned by find")
        .await;
    assert!(
        !s.store().exists(&key).await.unwrap(),
        "expired record reported by exists"
    );
}

/// `store` over an in-progress claim replaces it and clears the lease token.
pub async fn store_over_a_claim_clears_its_lease(s: &Subject) {
    let key = s.fresh_key();
    let token = s
        .claim_acquired(&key, b"pending", HOUR, "first claim")
        .await;
    s.put(&key, b"plain", HOUR).await;
    s.assert_complete_refused(&key, &token, "after store").await;
    assert!(!s.store().release(&key, &token).await.unwrap());
    s.assert_value(&key, b"plain", "after release").await;
}

/// A TTL of `Duration::MAX` ("never expire") is accepted by every write and
/// kept as a very long one: no panic, no overflow, no instant expiry.
pub async fn huge_ttls_are_accepted(s: &Subject) {
    let forever = Duration::MAX;
    let key = s.fresh_key();
    s.put(&key, b"kept", forever).await;
    s.assert_value(&key, b"kept", "stored forever").await;

    let key = s.fresh_key();
    let token = s.claim_acquired(&key, b"p", forever, "claim").await;
    s.complete(&key, &token, b"done", forever).await;
    s.assert_value(&key, b"done", "completed forever").await;
}
