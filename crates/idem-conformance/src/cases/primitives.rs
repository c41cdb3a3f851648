//! The atomic primitives: claim, complete, release, and expiry of each.

use std::time::Duration;

use bytes::Bytes;
use idem_core::{Claim, LeaseToken};

use super::{acquired, assert_complete_refused, existing};
use crate::Subject;

const HOUR: Duration = Duration::from_secs(3600);

/// A claim on an absent key is acquired, and the pending bytes are readable.
pub async fn claim_on_absent_key_acquires(s: &Subject) {
    let key = s.fresh_key();
    acquired(
        s.store()
            .claim(&key, Bytes::from_static(b"p"), HOUR)
            .await
            .unwrap(),
        "claim",
    );
    assert_eq!(
        s.store().find(&key).await.unwrap().as_deref(),
        Some(&b"p"[..])
    );
    assert!(s.store().exists(&key).await.unwrap());
}

/// A claim on a live record (in progress or plain) returns its bytes and
/// writes nothing.
pub async fn claim_on_live_record_returns_it_and_writes_nothing(s: &Subject) {
    let key = s.fresh_key();
    acquired(
        s.store()
            .claim(&key, Bytes::from_static(b"first"), HOUR)
            .await
            .unwrap(),
        "first",
    );
    let seen = existing(
        s.store()
            .claim(&key, Bytes::from_static(b"second"), HOUR)
            .await
            .unwrap(),
        "second claim on an in-progress key",
    );
    assert_eq!(&seen[..], b"first");
    assert_eq!(
        s.store().find(&key).await.unwrap().as_deref(),
        Some(&b"first"[..])
    );

    let plain = s.fresh_key();
    s.store()
        .store(&plain, Bytes::from_static(b"done"), HOUR)
        .await
        .unwrap();
    let seen = existing(
        s.store()
            .claim(&plain, Bytes::from_static(b"x"), HOUR)
            .await
            .unwrap(),
        "claim on a stored key",
    );
    assert_eq!(&seen[..], b"done");
}

/// Every acquired claim has a token of its own.
pub async fn claim_tokens_are_fresh(s: &Subject) {
    let key = s.fresh_key();
    let first = acquired(
        s.store().claim(&key, Bytes::new(), HOUR).await.unwrap(),
        "first",
    );
    assert!(s.store().release(&key, &first).await.unwrap());
    let second = acquired(
        s.store().claim(&key, Bytes::new(), HOUR).await.unwrap(),
        "second",
    );
    assert_ne!(first, second, "a new claim must get a new token");
    let other = s.fresh_key();
    let third = acquired(
        s.store().claim(&other, Bytes::new(), HOUR).await.unwrap(),
        "other key",
    );
    assert_ne!(second, third);
}

/// `complete` with the holder's token swaps in the final record.
pub async fn complete_with_token_writes_the_final_record(s: &Subject) {
    let key = s.fresh_key();
    let token = acquired(
        s.store()
            .claim(&key, Bytes::from_static(b"p"), HOUR)
            .await
            .unwrap(),
        "claim",
    );
    s.store()
        .complete(&key, &token, Bytes::from_static(b"final"), HOUR)
        .await
        .unwrap();
    assert_eq!(
        s.store().find(&key).await.unwrap().as_deref(),
        Some(&b"final"[..])
    );
    let seen = existing(
        s.store().claim(&key, Bytes::new(), HOUR).await.unwrap(),
        "claim after complete",
    );
    assert_eq!(&seen[..], b"final");
}

/// `complete` with any other token writes nothing and reports a lost lease.
pub async fn complete_with_wrong_token_is_lease_lost(s: &Subject) {
    let key = s.fresh_key();
    acquired(
        s.store()
            .claim(&key, Bytes::from_static(b"p"), HOUR)
            .await
            .unwrap(),
        "claim",
    );
    assert_complete_refused(s, &key, &LeaseToken::generate(), "wrong token").await;
    assert_eq!(
        s.store().find(&key).await.unwrap().as_deref(),
        Some(&b"p"[..])
    );
}

/// `complete` after the record was removed is a lost lease and writes nothing.
pub async fn complete_after_remove_is_lease_lost(s: &Subject) {
    let key = s.fresh_key();
    let token = acquired(
        s.store()
            .claim(&key, Bytes::from_static(b"p"), HOUR)
            .await
            .unwrap(),
        "claim",
    );
    assert!(s.store().remove(&key).await.unwrap());
    assert_complete_refused(s, &key, &token, "after remove").await;
    assert_eq!(
        s.store().find(&key).await.unwrap(),
        None,
        "complete resurrected a removed key"
    );
}

/// Once completed, the token is spent: a second `complete` is a lost lease.
pub async fn complete_twice_is_lease_lost(s: &Subject) {
    let key = s.fresh_key();
    let token = acquired(
        s.store().claim(&key, Bytes::new(), HOUR).await.unwrap(),
        "claim",
    );
    s.store()
        .complete(&key, &token, Bytes::from_static(b"one"), HOUR)
        .await
        .unwrap();
    assert_complete_refused(s, &key, &token, "a spent token").await;
    assert_eq!(
        s.store().find(&key).await.unwrap().as_deref(),
        Some(&b"one"[..])
    );
}

/// `release` with the holder's token deletes the claim; the key is free again.
pub async fn release_with_token_frees_the_key(s: &Subject) {
    let key = s.fresh_key();
    let token = acquired(
        s.store().claim(&key, Bytes::new(), HOUR).await.unwrap(),
        "claim",
    );
    assert!(s.store().release(&key, &token).await.unwrap());
    assert!(!s.store().exists(&key).await.unwrap());
    acquired(
        s.store().claim(&key, Bytes::new(), HOUR).await.unwrap(),
        "claim after release",
    );
}

/// `release` with another token leaves the claim in place.
pub async fn release_with_wrong_token_keeps_the_record(s: &Subject) {
    let key = s.fresh_key();
    acquired(
        s.store()
            .claim(&key, Bytes::from_static(b"p"), HOUR)
            .await
            .unwrap(),
        "claim",
    );
    assert!(
        !s.store()
            .release(&key, &LeaseToken::generate())
            .await
            .unwrap()
    );
    assert_eq!(
        s.store().find(&key).await.unwrap().as_deref(),
        Some(&b"p"[..])
    );
}

/// `release` never deletes a completed record, even with the old token.
pub async fn release_leaves_completed_records_alone(s: &Subject) {
    let key = s.fresh_key();
    let token = acquired(
        s.store().claim(&key, Bytes::new(), HOUR).await.unwrap(),
        "claim",
    );
    s.store()
        .complete(&key, &token, Bytes::from_static(b"done"), HOUR)
        .await
        .unwrap();
    assert!(!s.store().release(&key, &token).await.unwrap());
    assert_eq!(
        s.store().find(&key).await.unwrap().as_deref(),
        Some(&b"done"[..])
    );
}

/// A claim whose lease ran out no longer holds the key.
pub async fn expired_claim_can_be_claimed_again(s: &Subject) {
    let key = s.fresh_key();
    acquired(
        s.store()
            .claim(&key, Bytes::from_static(b"a"), s.short_ttl())
            .await
            .unwrap(),
        "first",
    );
    tokio::time::sleep(s.past_short_ttl()).await;
    acquired(
        s.store()
            .claim(&key, Bytes::from_static(b"b"), HOUR)
            .await
            .unwrap(),
        "claim after the lease expired",
    );
    assert_eq!(
        s.store().find(&key).await.unwrap().as_deref(),
        Some(&b"b"[..])
    );
}

/// The whole lost-lease story: worker A's lease expires, worker B claims the
/// key and completes; A's late complete and release are rejected and B's
/// record survives.
pub async fn lost_lease_rejects_the_first_worker(s: &Subject) {
    let key = s.fresh_key();
    let a = acquired(
        s.store()
            .claim(&key, Bytes::from_static(b"a"), s.short_ttl())
            .await
            .unwrap(),
        "A",
    );
    tokio::time::sleep(s.past_short_ttl()).await;
    let b = acquired(
        s.store()
            .claim(&key, Bytes::from_static(b"b"), HOUR)
            .await
            .unwrap(),
        "B",
    );
    assert_complete_refused(s, &key, &a, "A's late complete").await;
    assert!(
        !s.store().release(&key, &a).await.unwrap(),
        "A's late release must be rejected"
    );
    s.store()
        .complete(&key, &b, Bytes::from_static(b"B's result"), HOUR)
        .await
        .unwrap();
    assert_eq!(
        s.store().find(&key).await.unwrap().as_deref(),
        Some(&b"B's result"[..])
    );
}

/// A completed record lives for its retention TTL, then the key is free.
pub async fn completed_record_expires_after_retention(s: &Subject) {
    let key = s.fresh_key();
    let token = acquired(
        s.store().claim(&key, Bytes::new(), HOUR).await.unwrap(),
        "claim",
    );
    s.store()
        .complete(&key, &token, Bytes::from_static(b"done"), s.short_ttl())
        .await
        .unwrap();
    assert!(s.store().exists(&key).await.unwrap());
    tokio::time::sleep(s.past_short_ttl()).await;
    assert_eq!(s.store().find(&key).await.unwrap(), None);
    acquired(
        s.store().claim(&key, Bytes::new(), HOUR).await.unwrap(),
        "claim after retention",
    );
}

/// An expired record is invisible to find, exists, remove, complete and release.
pub async fn expired_record_is_invisible_to_every_operation(s: &Subject) {
    let key = s.fresh_key();
    let token = acquired(
        s.store()
            .claim(&key, Bytes::from_static(b"p"), s.short_ttl())
            .await
            .unwrap(),
        "claim",
    );
    tokio::time::sleep(s.past_short_ttl()).await;
    assert_eq!(
        s.store().find(&key).await.unwrap(),
        None,
        "find saw an expired claim"
    );
    assert!(
        !s.store().exists(&key).await.unwrap(),
        "exists saw an expired claim"
    );
    assert_complete_refused(s, &key, &token, "an expired claim").await;
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
        s.store()
            .store(key, Bytes::from_static(b"old"), s.short_ttl())
            .await
            .unwrap();
    }
    let key = s.fresh_key();
    let token = acquired(
        s.store()
            .claim(&key, Bytes::from_static(b"old claim"), s.short_ttl())
            .await
            .unwrap(),
        "claim",
    );
    let live = s.fresh_key();
    s.store()
        .store(&live, Bytes::from_static(b"live"), HOUR)
        .await
        .unwrap();
    tokio::time::sleep(s.past_short_ttl()).await;

    // Other cases may share the table, so at least ours were purged.
    let purged = purger.purge_expired().await.unwrap();
    assert!(
        purged >= 4,
        "purged {purged} records; 4 of ours had expired"
    );
    assert_eq!(
        s.store().find(&live).await.unwrap().as_deref(),
        Some(&b"live"[..]),
        "purge deleted a live record"
    );
    assert!(!s.store().release(&key, &token).await.unwrap());
}
