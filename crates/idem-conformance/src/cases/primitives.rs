//! The atomic primitives: claim, complete, release, and expiry of each.

use std::time::Duration;

use bytes::Bytes;
use idem_core::{Claim, LeaseToken};

use crate::Subject;

const HOUR: Duration = Duration::from_secs(3600);

/// A claim on an absent key is acquired, and the pending bytes are readable.
pub async fn claim_on_absent_key_acquires(s: &Subject) {
    let key = s.fresh_key();
    s.claim_acquired(&key, b"p", HOUR, "claim").await;
    s.assert_value(&key, b"p", "the pending bytes").await;
    assert!(s.store().exists(&key).await.unwrap());
}

/// A claim on a live record (in progress or plain) returns its bytes and
/// writes nothing.
pub async fn claim_on_live_record_returns_it_and_writes_nothing(s: &Subject) {
    let key = s.fresh_key();
    s.claim_acquired(&key, b"first", HOUR, "first").await;
    let what = "second claim on an in-progress key";
    let seen = s.claim_existing(&key, b"second", HOUR, what).await;
    assert_eq!(&seen[..], b"first");
    s.assert_value(&key, b"first", what).await;

    let plain = s.fresh_key();
    s.put(&plain, b"done", HOUR).await;
    let seen = s
        .claim_existing(&plain, b"x", HOUR, "claim on a stored key")
        .await;
    assert_eq!(&seen[..], b"done");
}

/// Every acquired claim has a token of its own.
pub async fn claim_tokens_are_fresh(s: &Subject) {
    let key = s.fresh_key();
    let first = s.claim_acquired(&key, b"", HOUR, "first").await;
    assert!(s.store().release(&key, &first).await.unwrap());
    let second = s.claim_acquired(&key, b"", HOUR, "second").await;
    assert_ne!(first, second, "a new claim must get a new token");
    let other = s.fresh_key();
    let third = s.claim_acquired(&other, b"", HOUR, "other key").await;
    assert_ne!(second, third);
}

/// `complete` with the holder's token swaps in the final record.
pub async fn complete_with_token_writes_the_final_record(s: &Subject) {
    let key = s.fresh_key();
    let token = s.claim_acquired(&key, b"p", HOUR, "claim").await;
    s.complete(&key, &token, b"final", HOUR).await;
    s.assert_value(&key, b"final", "after complete").await;
    let seen = s
        .claim_existing(&key, b"", HOUR, "claim after complete")
        .await;
    assert_eq!(&seen[..], b"final");
}

/// `complete` with any other token writes nothing and reports a lost lease.
pub async fn complete_with_wrong_token_is_lease_lost(s: &Subject) {
    let key = s.fresh_key();
    s.claim_acquired(&key, b"p", HOUR, "claim").await;
    let what = "wrong token";
    s.assert_complete_refused(&key, &LeaseToken::generate(), what)
        .await;
    s.assert_value(&key, b"p", what).await;
}

/// `complete` after the record was removed is a lost lease and writes nothing.
pub async fn complete_after_remove_is_lease_lost(s: &Subject) {
    let key = s.fresh_key();
    let token = s.claim_acquired(&key, b"p", HOUR, "claim").await;
    assert!(s.store().remove(&key).await.unwrap());
    s.assert_complete_refused(&key, &token, "after remove")
        .await;
    s.assert_absent(&key, "complete resurrected a removed key")
        .await;
}

/// Once completed, the token is spent: a second `complete` is a lost lease.
pub async fn complete_twice_is_lease_lost(s: &Subject) {
    let key = s.fresh_key();
    let token = s.claim_acquired(&key, b"", HOUR, "claim").await;
    s.complete(&key, &token, b"one", HOUR).await;
    let what = "a spent token";
    s.assert_complete_refused(&key, &token, what).await;
    s.assert_value(&key, b"one", what).await;
}

/// `release` with the holder's token deletes the claim; the key is free again.
pub async fn release_with_token_frees_the_key(s: &Subject) {
    let key = s.fresh_key();
    let token = s.claim_acquired(&key, b"", HOUR, "claim").await;
    assert!(s.store().release(&key, &token).await.unwrap());
    assert!(!s.store().exists(&key).await.unwrap());
    s.claim_acquired(&key, b"", HOUR, "claim after release")
        .await;
}

/// `release` with another token leaves the claim in place.
pub async fn release_with_wrong_token_keeps_the_record(s: &Subject) {
    let key = s.fresh_key();
    s.claim_acquired(&key, b"p", HOUR, "claim").await;
    let released = s.store().release(&key, &LeaseToken::generate()).await;
    assert!(!released.unwrap());
    s.assert_value(&key, b"p", "release with a wrong token")
        .await;
}

/// `release` never deletes a completed record, even with the old token.
pub async fn release_leaves_completed_records_alone(s: &Subject) {
    let key = s.fresh_key();
    let token = s.claim_acquired(&key, b"", HOUR, "claim").await;
    s.complete(&key, &token, b"done", HOUR).await;
    assert!(!s.store().release(&key, &token).await.unwrap());
    s.assert_value(&key, b"done", "release after complete")
        .await;
}

/// A claim whose lease ran out no longer holds the key.
pub async fn expired_claim_can_be_claimed_again(s: &Subject) {
    let key = s.fresh_key();
    s.claim_acquired(&key, b"a", s.short_ttl(), "first").await;
    tokio::time::sleep(s.past_short_ttl()).await;
    let what = "claim after the lease expired";
    s.claim_acquired(&key, b"b", HOUR, what).await;
    s.assert_value(&key, b"b", what).await;
}

/// The whole lost-lease story: worker A's lease expires, worker B claims the
/// key and completes; A's late complete and release are rejected and B's
/// record survives.
pub async fn lost_lease_rejects_the_first_worker(s: &Subject) {
    let key = s.fresh_key();
    let a = s.claim_acquired(&key, b"a", s.short_ttl(), "A").await;
    tokio::time::sleep(s.past_short_ttl()).await;
    let b = s.claim_acquired(&key, b"b", HOUR, "B").await;
    s.assert_complete_refused(&key, &a, "A's late complete")
        .await;
    assert!(
        !s.store().release(&key, &a).await.unwrap(),
        "A's late release must be rejected"
    );
    s.complete(&key, &b, b"B's result", HOUR).await;
    s.assert_value(&key, b"B's result", "B's complete").await;
}

/// A completed record lives for its retention TTL, then the key is free.
pub async fn completed_record_expires_after_retention(s: &Subject) {
    let key = s.fresh_key();
    let token = s.claim_acquired(&key, b"", HOUR, "claim").await;
    s.complete(&key, &token, b"done", s.short_ttl()).await;
    assert!(s.store().exists(&key).await.unwrap());
    tokio::time::sleep(s.past_short_ttl()).await;
    s.assert_absent(&key, "after retention").await;
    s.claim_acquired(&key, b"", HOUR, "claim after retention")
        .await;
}

/// An expired record is invisible to find, exists, remove, complete and release.
pub async fn expired_record_is_invisible_to_every_operation(s: &Subject) {
    let key = s.fresh_key();
    let token = s.claim_acquired(&key, b"p", s.short_ttl(), "claim").await;
    tokio::time::sleep(s.past_short_ttl()).await;
    s.assert_absent(&key, "find saw an expired claim").await;
    assert!(
        !s.store().exists(&key).await.unwrap(),
        "exists saw an expired claim"
    );
    s.assert_complete_refused(&key, &token, "an expired claim")
        .await;
    assert!(
        !s.store().release(&key, &token).await.unwrap(),
        "release acted on an expired claim"
    );
    assert!(
        !s.store().remove(&key).await.unwrap(),
        "remove reported an expired record as live"
    );
    assert!(matches!(
        s.store().claim(&key, Bytes::new(), HOUR).await.unwrap(),
        Claim::Acquired(_)
    ));
}

/// The optional purge ability: expired records are deleted and counted, live
/// ones are kept.
pub async fn purge_deletes_expired_records_and_keeps_live_ones(s: &Subject) {
    let purger = s
        .purger()
        .expect("the `purge:` setup must build its subject with Subject::with_purger");
    let expired: Vec<_> = (0..3).map(|_| s.fresh_key()).collect();
    for key in &expired {
        s.put(key, b"old", s.short_ttl()).await;
    }
    let key = s.fresh_key();
    let token = s
        .claim_acquired(&key, b"old claim", s.short_ttl(), "claim")
        .await;
    let live = s.fresh_key();
    s.put(&live, b"live", HOUR).await;
    tokio::time::sleep(s.past_short_ttl()).await;

    // Other cases may share the table, so at least ours were purged.
    let purged = purger.purge_expired().await.unwrap();
    assert!(
        purged >= 4,
        "purged {purged} records; 4 of ours had expired"
    );
    s.assert_value(&live, b"live", "purge deleted a live record")
        .await;
    assert!(!s.store().release(&key, &token).await.unwrap());
}
