//! The suite can fail: a store with one deliberate flaw must fail exactly the
//! cases that check the rule it breaks, and the same store without the flaw
//! must pass them.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use idem_conformance::Subject;
use idem_conformance::cases::{self, Case};
use idem_conformance::doubles::{ReferenceStore, UnavailableStore};
use idem_core::{Claim, IdempotencyStore, LeaseToken, PurgeExpired, Result, StoreKey, async_trait};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flaw {
    None,
    /// claim reads, yields, then writes: two racers can both win.
    NonAtomicClaim,
    /// records never expire.
    IgnoresExpiry,
    /// complete does not check the token.
    UnfencedComplete,
    /// release deletes whatever is there.
    UnfencedRelease,
    /// extend renews the claim whoever asks, whatever the token.
    UnfencedExtend,
    /// extend says yes and renews nothing.
    ExtendIsNoop,
    /// purge deletes live records too.
    PurgeDeletesLive,
}

/// The reference store, with one rule broken (or none).
#[derive(Debug)]
struct FlawedStore {
    flaw: Flaw,
    inner: ReferenceStore,
    /// The token of the last claim acquired on each key, for the unfenced
    /// extend to use in place of the caller's.
    holders: Mutex<HashMap<String, LeaseToken>>,
}

impl FlawedStore {
    fn new(flaw: Flaw) -> Self {
        Self {
            flaw,
            inner: ReferenceStore::new(),
            holders: Mutex::default(),
        }
    }

    /// The TTL a write keeps: none ever runs out when expiry is ignored.
    fn ttl(&self, ttl: Duration) -> Duration {
        if self.flaw == Flaw::IgnoresExpiry {
            Duration::MAX
        } else {
            ttl
        }
    }
}

#[async_trait]
impl IdempotencyStore for FlawedStore {
    async fn find(&self, key: &StoreKey) -> Result<Option<Bytes>> {
        self.inner.find(key).await
    }
    async fn store(&self, key: &StoreKey, value: Bytes, ttl: Duration) -> Result<()> {
        self.inner.store(key, value, self.ttl(ttl)).await
    }
    async fn remove(&self, key: &StoreKey) -> Result<bool> {
        self.inner.remove(key).await
    }
    async fn exists(&self, key: &StoreKey) -> Result<bool> {
        self.inner.exists(key).await
    }
    async fn claim(&self, key: &StoreKey, pending: Bytes, lease: Duration) -> Result<Claim> {
        if self.flaw == Flaw::NonAtomicClaim {
            if let Some(value) = self.inner.find(key).await? {
                return Ok(Claim::Existing(value));
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
            // Write over whatever another racer wrote meanwhile.
            self.inner.remove(key).await?;
        }
        let claim = self.inner.claim(key, pending, self.ttl(lease)).await?;
        if let Claim::Acquired(token) = &claim {
            let mut holders = self.holders.lock().unwrap();
            holders.insert(key.as_str().to_owned(), *token);
        }
        Ok(claim)
    }
    async fn extend(&self, key: &StoreKey, token: &LeaseToken, lease: Duration) -> Result<()> {
        match self.flaw {
            Flaw::ExtendIsNoop => Ok(()),
            Flaw::UnfencedExtend => {
                let holder = self.holders.lock().unwrap().get(key.as_str()).copied();
                let token = holder.unwrap_or(*token);
                self.inner.extend(key, &token, self.ttl(lease)).await
            }
            _ => self.inner.extend(key, token, self.ttl(lease)).await,
        }
    }
    async fn complete(
        &self,
        key: &StoreKey,
        token: &LeaseToken,
        value: Bytes,
        ttl: Duration,
    ) -> Result<()> {
        if self.flaw == Flaw::UnfencedComplete {
            return self.inner.store(key, value, ttl).await;
        }
        self.inner.complete(key, token, value, self.ttl(ttl)).await
    }
    async fn release(&self, key: &StoreKey, token: &LeaseToken) -> Result<bool> {
        if self.flaw == Flaw::UnfencedRelease {
            self.inner.remove(key).await?;
            return Ok(true);
        }
        self.inner.release(key, token).await
    }
}

#[async_trait]
impl PurgeExpired for FlawedStore {
    async fn purge_expired(&self) -> Result<u64> {
        if self.flaw == Flaw::PurgeDeletesLive {
            return Ok(self.inner.clear());
        }
        self.inner.purge_expired().await
    }
}

/// A store whose server is down but that reads the outage as "absent".
#[derive(Debug)]
struct HidesOutage(UnavailableStore);

#[async_trait]
impl IdempotencyStore for HidesOutage {
    async fn find(&self, key: &StoreKey) -> Result<Option<Bytes>> {
        Ok(self.0.find(key).await.unwrap_or(None))
    }
    async fn store(&self, key: &StoreKey, value: Bytes, ttl: Duration) -> Result<()> {
        let _ = self.0.store(key, value, ttl).await;
        Ok(())
    }
    async fn remove(&self, key: &StoreKey) -> Result<bool> {
        Ok(self.0.remove(key).await.unwrap_or(false))
    }
    async fn exists(&self, key: &StoreKey) -> Result<bool> {
        Ok(self.0.exists(key).await.unwrap_or(false))
    }
    async fn claim(&self, key: &StoreKey, pending: Bytes, lease: Duration) -> Result<Claim> {
        let absent = || Claim::Acquired(LeaseToken::generate());
        Ok(self
            .0
            .claim(key, pending, lease)
            .await
            .unwrap_or_else(|_| absent()))
    }
    async fn extend(&self, key: &StoreKey, token: &LeaseToken, lease: Duration) -> Result<()> {
        let _ = self.0.extend(key, token, lease).await;
        Ok(())
    }
    async fn complete(
        &self,
        key: &StoreKey,
        token: &LeaseToken,
        value: Bytes,
        ttl: Duration,
    ) -> Result<()> {
        let _ = self.0.complete(key, token, value, ttl).await;
        Ok(())
    }
    async fn release(&self, key: &StoreKey, token: &LeaseToken) -> Result<bool> {
        Ok(self.0.release(key, token).await.unwrap_or(false))
    }
}

/// The case called `name`.
fn case(name: &str) -> Case {
    cases::named(name).unwrap_or_else(|| panic!("the suite has no case {name}"))
}

/// Runs `case` on `subject`, on its own task, and reports whether it passed.
async fn passes(subject: Subject, case: Case) -> bool {
    tokio::spawn(async move { case.run(&subject).await })
        .await
        .is_ok()
}

/// Runs `case` on the store with `flaw`, as a subject with a purger.
async fn passes_with(flaw: Flaw, case: Case) -> bool {
    let store = Arc::new(FlawedStore::new(flaw));
    let subject = Subject::with_purger("flawed", store).with_short_ttl(Duration::from_millis(100));
    passes(subject, case).await
}

async fn check(flaw: Flaw, must_fail: &[&str]) {
    for case in must_fail.iter().map(|name| case(name)) {
        let name = case.name();
        assert!(
            passes_with(Flaw::None, case).await,
            "{name} fails on the reference store, so it proves nothing about {flaw:?}"
        );
        assert!(
            !passes_with(flaw, case).await,
            "{name} passed on a store with the flaw {flaw:?}: the suite cannot see it"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_non_atomic_claim_is_caught() {
    check(
        Flaw::NonAtomicClaim,
        &[
            "racing_claims_have_exactly_one_winner",
            "racing_requests_run_the_handler_once",
        ],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_ignored_expiry_is_caught() {
    check(
        Flaw::IgnoresExpiry,
        &[
            "stored_record_expires_after_its_ttl",
            "expired_claim_can_be_claimed_again",
            "lost_lease_rejects_the_first_worker",
            "completed_record_expires_after_retention",
            "expired_record_is_invisible_to_every_operation",
        ],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_unfenced_complete_is_caught() {
    check(
        Flaw::UnfencedComplete,
        &[
            "complete_with_wrong_token_is_lease_lost",
            "complete_after_remove_is_lease_lost",
            "complete_twice_is_lease_lost",
            "lost_lease_rejects_the_first_worker",
            "store_over_a_claim_clears_its_lease",
        ],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_unfenced_release_is_caught() {
    check(
        Flaw::UnfencedRelease,
        &[
            "release_with_wrong_token_keeps_the_record",
            "release_leaves_completed_records_alone",
        ],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_unfenced_extend_is_caught() {
    check(
        Flaw::UnfencedExtend,
        &[
            "extend_with_wrong_token_is_lease_lost",
            "lost_lease_rejects_a_late_extend",
        ],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_extend_that_renews_nothing_is_caught() {
    check(
        Flaw::ExtendIsNoop,
        &[
            "extend_with_token_keeps_the_claim_past_its_lease",
            "extend_can_shorten_the_lease",
            "engine_renews_the_lease_of_a_slow_handler",
            "engine_signals_a_lost_lease_and_keeps_nothing",
        ],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_purge_that_deletes_live_records_is_caught() {
    check(
        Flaw::PurgeDeletesLive,
        &["purge_deletes_expired_records_and_keeps_live_ones"],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_outage_read_as_absent_is_caught() {
    for &case in cases::UNREACHABLE {
        let name = case.name();
        let honest = Subject::new("down", Arc::new(UnavailableStore::new()));
        assert!(
            passes(honest, case).await,
            "{name} fails on an honest outage"
        );
        let hiding = Subject::new("down", Arc::new(HidesOutage(UnavailableStore::new())));
        assert!(
            !passes(hiding, case).await,
            "{name} missed an outage read as absent"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_reference_store_passes_every_case() {
    // Every case, on the flawless store: the suite itself is not broken.
    for &case in cases::ALL.iter().chain(cases::PURGE) {
        assert!(
            passes_with(Flaw::None, case).await,
            "{} failed on the reference store",
            case.name()
        );
    }
}
