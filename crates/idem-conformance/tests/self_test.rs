//! The suite can fail: a store with one deliberate flaw must fail exactly the
//! cases that check the rule it breaks, and the same store without the flaw
//! must pass them.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use idem_conformance::{Subject, cases};
use idem_core::{
    Claim, Error, IdempotencyStore, LeaseToken, PurgeExpired, Result, StoreKey, async_trait,
};

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
    /// purge deletes live records too.
    PurgeDeletesLive,
}

#[derive(Clone)]
struct Slot {
    value: Bytes,
    token: Option<LeaseToken>,
    expires_at: Instant,
}

/// A small reference store over a mutex-guarded map, with an optional flaw.
#[derive(Debug)]
struct FlawedStore {
    flaw: Flaw,
    map: Mutex<HashMap<String, SlotDebug>>,
}

#[derive(Clone)]
struct SlotDebug(Slot);
impl std::fmt::Debug for SlotDebug {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Slot")
    }
}

impl FlawedStore {
    fn new(flaw: Flaw) -> Self {
        Self {
            flaw,
            map: Mutex::new(HashMap::new()),
        }
    }

    fn live(&self, key: &StoreKey) -> Option<Slot> {
        let map = self.map.lock().unwrap();
        let slot = map.get(key.as_str())?.0.clone();
        (self.flaw == Flaw::IgnoresExpiry || slot.expires_at > Instant::now()).then_some(slot)
    }

    fn put(&self, key: &StoreKey, value: Bytes, token: Option<LeaseToken>, ttl: Duration) {
        let slot = Slot {
            value,
            token,
            expires_at: Instant::now() + ttl.min(Duration::from_secs(1 << 32)),
        };
        self.map
            .lock()
            .unwrap()
            .insert(key.as_str().to_owned(), SlotDebug(slot));
    }
}

#[async_trait]
impl IdempotencyStore for FlawedStore {
    async fn find(&self, key: &StoreKey) -> Result<Option<Bytes>> {
        Ok(self.live(key).map(|s| s.value))
    }
    async fn store(&self, key: &StoreKey, value: Bytes, ttl: Duration) -> Result<()> {
        self.put(key, value, None, ttl);
        Ok(())
    }
    async fn remove(&self, key: &StoreKey) -> Result<bool> {
        let live = self.live(key).is_some();
        self.map.lock().unwrap().remove(key.as_str());
        Ok(live)
    }
    async fn exists(&self, key: &StoreKey) -> Result<bool> {
        Ok(self.live(key).is_some())
    }
    async fn claim(&self, key: &StoreKey, pending: Bytes, lease: Duration) -> Result<Claim> {
        let token = LeaseToken::generate();
        if self.flaw == Flaw::NonAtomicClaim {
            if let Some(slot) = self.live(key) {
                return Ok(Claim::Existing(slot.value));
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
            self.put(key, pending, Some(token), lease);
            return Ok(Claim::Acquired(token));
        }
        let mut map = self.map.lock().unwrap();
        if let Some(SlotDebug(slot)) = map.get(key.as_str()) {
            if self.flaw == Flaw::IgnoresExpiry || slot.expires_at > Instant::now() {
                return Ok(Claim::Existing(slot.value.clone()));
            }
        }
        let slot = Slot {
            value: pending,
            token: Some(token),
            expires_at: Instant::now() + lease.min(Duration::from_secs(1 << 32)),
        };
        map.insert(key.as_str().to_owned(), SlotDebug(slot));
        Ok(Claim::Acquired(token))
    }
    async fn complete(
        &self,
        key: &StoreKey,
        token: &LeaseToken,
        value: Bytes,
        ttl: Duration,
    ) -> Result<()> {
        let held = self
            .live(key)
            .is_some_and(|s| s.token.as_ref() == Some(token));
        if held || self.flaw == Flaw::UnfencedComplete {
            self.put(key, value, None, ttl);
            Ok(())
        } else {
            Err(Error::LeaseLost)
        }
    }
    async fn release(&self, key: &StoreKey, token: &LeaseToken) -> Result<bool> {
        let held = self
            .live(key)
            .is_some_and(|s| s.token.as_ref() == Some(token));
        if held || self.flaw == Flaw::UnfencedRelease {
            self.map.lock().unwrap().remove(key.as_str());
            return Ok(true);
        }
        Ok(false)
    }
}

#[async_trait]
impl PurgeExpired for FlawedStore {
    async fn purge_expired(&self) -> Result<u64> {
        let mut map = self.map.lock().unwrap();
        let before = map.len();
        let everything = self.flaw == Flaw::PurgeDeletesLive;
        map.retain(|_, SlotDebug(slot)| !everything && slot.expires_at > Instant::now());
        Ok((before - map.len()) as u64)
    }
}

/// A store whose server is down: honest (errors) or flawed (reads as absent).
#[derive(Debug)]
struct Down {
    honest: bool,
}

fn outage<T>(honest: bool, absent: T) -> Result<T> {
    if honest {
        Err(Error::unavailable("down", "connection refused"))
    } else {
        Ok(absent)
    }
}

#[async_trait]
impl IdempotencyStore for Down {
    async fn find(&self, _: &StoreKey) -> Result<Option<Bytes>> {
        outage(self.honest, None)
    }
    async fn store(&self, _: &StoreKey, _: Bytes, _: Duration) -> Result<()> {
        outage(self.honest, ())
    }
    async fn remove(&self, _: &StoreKey) -> Result<bool> {
        outage(self.honest, false)
    }
    async fn exists(&self, _: &StoreKey) -> Result<bool> {
        outage(self.honest, false)
    }
    async fn claim(&self, _: &StoreKey, _: Bytes, _: Duration) -> Result<Claim> {
        outage(self.honest, Claim::Acquired(LeaseToken::generate()))
    }
    async fn complete(&self, _: &StoreKey, _: &LeaseToken, _: Bytes, _: Duration) -> Result<()> {
        outage(self.honest, ())
    }
    async fn release(&self, _: &StoreKey, _: &LeaseToken) -> Result<bool> {
        outage(self.honest, false)
    }
}

type Case = for<'a> fn(&'a Subject) -> Pin<Box<dyn Future<Output = ()> + Send + 'a>>;

macro_rules! case {
    ($name:ident) => {
        (stringify!($name), (|s| Box::pin(cases::$name(s))) as Case)
    };
}

/// Runs `case` on its own task and reports whether it passed.
async fn passes(store: Arc<dyn IdempotencyStore>, case: Case) -> bool {
    let subject = Subject::new("flawed", store).with_short_ttl(Duration::from_millis(100));
    tokio::spawn(async move { case(&subject).await })
        .await
        .is_ok()
}

async fn check(flaw: Flaw, must_fail: &[(&str, Case)]) {
    for (name, case) in must_fail {
        assert!(
            passes(Arc::new(FlawedStore::new(Flaw::None)), *case).await,
            "{name} fails on the reference store, so it proves nothing about {flaw:?}"
        );
        assert!(
            !passes(Arc::new(FlawedStore::new(flaw)), *case).await,
            "{name} passed on a store with the flaw {flaw:?}: the suite cannot see it"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_non_atomic_claim_is_caught() {
    check(
        Flaw::NonAtomicClaim,
        &[
            case!(racing_claims_have_exactly_one_winner),
            case!(racing_requests_run_the_handler_once),
        ],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_ignored_expiry_is_caught() {
    check(
        Flaw::IgnoresExpiry,
        &[
            case!(stored_record_expires_after_its_ttl),
            case!(expired_claim_can_be_claimed_again),
            case!(lost_lease_rejects_the_first_worker),
            case!(completed_record_expires_after_retention),
            case!(expired_record_is_invisible_to_every_operation),
        ],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_unfenced_complete_is_caught() {
    check(
        Flaw::UnfencedComplete,
        &[
            case!(complete_with_wrong_token_is_lease_lost),
            case!(complete_after_remove_is_lease_lost),
            case!(complete_twice_is_lease_lost),
            case!(lost_lease_rejects_the_first_worker),
            case!(store_over_a_claim_clears_its_lease),
        ],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_unfenced_release_is_caught() {
    check(
        Flaw::UnfencedRelease,
        &[
            case!(release_with_wrong_token_keeps_the_record),
            case!(release_leaves_completed_records_alone),
        ],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_outage_read_as_absent_is_caught() {
    let (name, case) = case!(unreachable_store_is_an_error);
    assert!(
        passes(Arc::new(Down { honest: true }), case).await,
        "{name} fails on an honest outage"
    );
    assert!(
        !passes(Arc::new(Down { honest: false }), case).await,
        "{name} missed an outage read as absent"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_reference_store_passes_every_case() {
    // Every case, on the flawless store: the suite itself is not broken.
    macro_rules! all {
        ($($name:ident)*) => { vec![$(case!($name)),*] };
    }
    let every: Vec<(&str, Case)> = all!(
        find_returns_none_for_absent_key store_then_find_returns_the_value store_overwrites_the_value
        remove_deletes_and_reports_it exists_follows_the_record stored_record_expires_after_its_ttl
        huge_ttls_are_accepted
        store_over_a_claim_clears_its_lease claim_on_absent_key_acquires
        claim_on_live_record_returns_it_and_writes_nothing claim_tokens_are_fresh
        complete_with_token_writes_the_final_record complete_with_wrong_token_is_lease_lost
        complete_after_remove_is_lease_lost complete_twice_is_lease_lost release_with_token_frees_the_key
        release_with_wrong_token_keeps_the_record release_leaves_completed_records_alone
        expired_claim_can_be_claimed_again lost_lease_rejects_the_first_worker
        completed_record_expires_after_retention expired_record_is_invisible_to_every_operation
        engine_executes_then_replays engine_reports_in_flight_while_running
        engine_reports_mismatch_for_another_fingerprint engine_release_lets_a_retry_run_again
        engine_releases_the_key_when_the_handler_panics engine_keeps_a_not_retained_marker
        engine_surfaces_store_errors racing_claims_have_exactly_one_winner
        racing_requests_run_the_handler_once many_keys_in_parallel values_are_binary_safe
        keys_with_punctuation_work key_of_255_characters_works empty_and_over_long_keys_are_rejected
        scopes_with_the_same_key_are_independent
    );
    assert_eq!(
        every.len(),
        cases::ALL.len(),
        "this list is missing a case of the suite"
    );
    for (name, case) in every {
        assert!(
            passes(Arc::new(FlawedStore::new(Flaw::None)), case).await,
            "{name} failed on the reference store"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_purge_that_deletes_live_records_is_caught() {
    let run = |flaw| async move {
        let subject = Subject::with_purger("flawed", Arc::new(FlawedStore::new(flaw)))
            .with_short_ttl(Duration::from_millis(100));
        tokio::spawn(async move {
            cases::purge_deletes_expired_records_and_keeps_live_ones(&subject).await
        })
        .await
        .is_ok()
    };
    assert!(
        run(Flaw::None).await,
        "the purge case fails on the reference store"
    );
    assert!(
        !run(Flaw::PurgeDeletesLive).await,
        "the purge case missed a purge of live records"
    );
}
