//! Lease renewal: `extend`, fenced by the token like `complete` and `release`.

use std::time::Duration;

use idem_core::LeaseToken;

use crate::Subject;

const HOUR: Duration = Duration::from_secs(3600);

/// `extend` with the holder's token keeps the claim alive past its first
/// lease, with its bytes and its token: `complete` still works after.
pub async fn extend_with_token_keeps_the_claim_past_its_lease(s: &Subject) {
    let key = s.fresh_key();
    let token = s.claim_acquired(&key, b"p", s.short_ttl(), "claim").await;
    s.store().extend(&key, &token, HOUR).await.unwrap();
    tokio::time::sleep(s.past_short_ttl()).await;
    let what = "a claim extended by an hour, after its first lease";
    s.assert_value(&key, b"p", what).await;
    let seen = s.claim_existing(&key, b"other", HOUR, what).await;
    assert_eq!(&seen[..], b"p");
    s.complete(&key, &token, b"final", HOUR).await;
    s.assert_value(&key, b"final", "complete after extend")
        .await;
}

/// `extend` with any other token writes nothing: the claim still ends with
/// its first lease.
pub async fn extend_with_wrong_token_is_lease_lost(s: &Subject) {
    let key = s.fresh_key();
    s.claim_acquired(&key, b"p", s.short_ttl(), "claim").await;
    let what = "extend with a wrong token";
    s.assert_extend_refused(&key, &LeaseToken::generate(), what)
        .await;
    s.assert_value(&key, b"p", what).await;
    tokio::time::sleep(s.past_short_ttl()).await;
    s.assert_absent(&key, "a wrong token's extend kept the claim alive")
        .await;
}

/// An expired claim cannot be extended, and is not brought back.
pub async fn extend_after_expiry_is_lease_lost(s: &Subject) {
    let key = s.fresh_key();
    let token = s.claim_acquired(&key, b"p", s.short_ttl(), "claim").await;
    tokio::time::sleep(s.past_short_ttl()).await;
    s.assert_extend_refused(&key, &token, "an expired claim")
        .await;
    s.assert_absent(&key, "extend resurrected an expired claim")
        .await;
    s.claim_acquired(&key, b"b", HOUR, "claim after a refused extend")
        .await;
}

/// Once the claim is completed or removed, its token extends nothing.
pub async fn extend_after_complete_or_remove_is_lease_lost(s: &Subject) {
    let key = s.fresh_key();
    let token = s.claim_acquired(&key, b"p", HOUR, "claim").await;
    s.complete(&key, &token, b"done", s.short_ttl()).await;
    let what = "extend of a completed record";
    s.assert_extend_refused(&key, &token, what).await;
    s.assert_value(&key, b"done", what).await;
    tokio::time::sleep(s.past_short_ttl()).await;
    s.assert_absent(&key, "extend kept a completed record past its retention")
        .await;

    let removed = s.fresh_key();
    let token = s.claim_acquired(&removed, b"p", HOUR, "claim").await;
    assert!(s.store().remove(&removed).await.unwrap());
    s.assert_extend_refused(&removed, &token, "extend after remove")
        .await;
    s.assert_absent(&removed, "extend resurrected a removed claim")
        .await;
}

/// The lease runs from the `extend`: a shorter one ends the claim sooner.
pub async fn extend_can_shorten_the_lease(s: &Subject) {
    let key = s.fresh_key();
    let token = s.claim_acquired(&key, b"p", HOUR, "claim").await;
    s.store().extend(&key, &token, s.short_ttl()).await.unwrap();
    tokio::time::sleep(s.past_short_ttl()).await;
    s.assert_absent(&key, "the lease set by extend was not kept")
        .await;
    s.assert_complete_refused(&key, &token, "after the extended lease ran out")
        .await;
}

/// Worker A's lease ran out and B holds the key: A's late `extend` is
/// refused and B's claim keeps its own lease and bytes.
pub async fn lost_lease_rejects_a_late_extend(s: &Subject) {
    let key = s.fresh_key();
    let a = s.claim_acquired(&key, b"a", s.short_ttl(), "A").await;
    tokio::time::sleep(s.past_short_ttl()).await;
    let b = s.claim_acquired(&key, b"b", s.short_ttl(), "B").await;
    s.assert_extend_refused(&key, &a, "A's late extend").await;
    s.assert_value(&key, b"b", "A's late extend").await;
    s.store().extend(&key, &b, HOUR).await.unwrap();
    tokio::time::sleep(s.past_short_ttl()).await;
    s.complete(&key, &b, b"B's result", HOUR).await;
    s.assert_value(&key, b"B's result", "B's complete").await;
}
