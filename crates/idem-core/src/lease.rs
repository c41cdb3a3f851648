//! Lease renewal while a handler runs, and the signal that tells the handler
//! its lease was lost.
//!
//! The engine renews the claim at a fraction of the lease, so the lease can
//! be short (a crashed server's keys are taken over within seconds) while a
//! slow handler never loses its key. A renewal is fenced by the token: once
//! it is refused, or the lease runs out before one succeeds, the claim is
//! gone for good; the handler is told, and its result is not stored.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use crate::metrics::{self, LostLease};
use crate::{Error, IdempotencyStore, LeaseToken, StoreKey};

/// The pause before another renewal when one failed on a transient error.
const RETRY_PAUSE: Duration = Duration::from_millis(100);

/// Tells a running handler whether the engine still holds its key.
///
/// The engine hands one to every handler it runs. Once the lease is lost (a
/// renewal was refused because another request took the key over, or the
/// store could not be reached before the lease ran out), the handler's result
/// will not be stored; a handler with a long way to go may watch the signal
/// and stop early. Watching it is optional: the engine never cancels the
/// handler itself, as a side effect cut halfway is worse than one finished.
///
/// # Examples
/// ```
/// use idem_core::LeaseSignal;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// async fn handler(signal: LeaseSignal) -> &'static str {
///     tokio::select! {
///         () = signal.lost() => "stopped: another request holds the key now",
///         () = tokio::time::sleep(std::time::Duration::from_millis(10)) => "done",
///     }
/// }
/// // Outside the engine (in a test, say), a signal that is never lost:
/// assert_eq!(handler(LeaseSignal::default()).await, "done");
/// # }
/// ```
#[derive(Debug, Clone, Default)]
pub struct LeaseSignal(CancellationToken);

impl LeaseSignal {
    /// Whether the lease is lost: the handler's result will not be stored.
    pub fn is_lost(&self) -> bool {
        self.0.is_cancelled()
    }

    /// Completes once the lease is lost (never, if it is kept).
    pub async fn lost(&self) {
        self.0.cancelled().await;
    }

    fn lose(&self) {
        self.0.cancel();
    }
}

/// One claim's lease, as the engine knows it: until when it surely holds.
#[derive(Debug)]
pub(crate) struct Lease<'a> {
    store: &'a dyn IdempotencyStore,
    key: &'a StoreKey,
    token: &'a LeaseToken,
    length: Duration,
    /// A lower bound of the lease's end on the store's clock: the moment a
    /// claim or renewal was sent, plus the lease.
    ends: Mutex<Instant>,
    refused: AtomicBool,
    signal: LeaseSignal,
}

impl<'a> Lease<'a> {
    /// The lease of a claim sent at `claimed_at`.
    pub(crate) fn new(
        store: &'a dyn IdempotencyStore,
        key: &'a StoreKey,
        token: &'a LeaseToken,
        length: Duration,
        claimed_at: Instant,
    ) -> Self {
        Self {
            store,
            key,
            token,
            length,
            ends: Mutex::new(claimed_at + length),
            refused: AtomicBool::new(false),
            signal: LeaseSignal::default(),
        }
    }

    /// The signal the handler gets.
    pub(crate) fn signal(&self) -> LeaseSignal {
        self.signal.clone()
    }

    /// Until when the claim surely holds.
    pub(crate) fn ends(&self) -> Instant {
        *self.ends.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether the store refused a renewal: the token is spent, and
    /// completing or releasing with it is refused too. (A lease lost only to
    /// time may still hold on the store, if a renewal's answer was lost; the
    /// fenced `complete` finds out.)
    pub(crate) fn was_refused(&self) -> bool {
        self.refused.load(Ordering::Relaxed)
    }

    /// Renews the lease every `every` until it is lost; never returns
    /// otherwise (the engine drops it when the handler is done). A renewal
    /// that fails on a transient error is tried again shortly; each attempt
    /// is bounded by what is left of the lease.
    pub(crate) async fn renew_every(&self, every: Duration) {
        let mut pause = every;
        loop {
            tokio::time::sleep(pause).await;
            let sent = Instant::now();
            let left = self.ends().saturating_duration_since(sent);
            if left.is_zero() {
                return self.lose(
                    LostLease::Expired,
                    "the lease ran out before a renewal succeeded",
                );
            }
            let renewal = self.store.extend(self.key, self.token, self.length);
            match tokio::time::timeout(left, renewal).await {
                Ok(Ok(())) => {
                    *self.ends.lock().unwrap_or_else(|e| e.into_inner()) = sent + self.length;
                    metrics::lease_renewed();
                    pause = every;
                }
                Ok(Err(Error::LeaseLost)) => {
                    self.refused.store(true, Ordering::Relaxed);
                    return self.lose(
                        LostLease::Refused,
                        "the renewal was refused: another request holds the key",
                    );
                }
                Ok(Err(error)) => {
                    tracing::debug!(key = %self.key, error = &error as &(dyn std::error::Error + 'static), "lease renewal failed; trying again");
                    pause = RETRY_PAUSE.min(every);
                }
                Err(_) => {
                    return self.lose(
                        LostLease::Expired,
                        "the lease ran out while a renewal was waiting",
                    );
                }
            }
        }
    }

    fn lose(&self, reason: LostLease, why: &'static str) {
        metrics::lease_lost(reason);
        tracing::warn!(key = %self.key, event = "lease_lost", "{why}; the handler's result will not be stored");
        self.signal.lose();
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::AtomicU32;

    use super::*;
    use crate::scripted::Scripted;

    /// Renews a 300 ms lease every 100 ms for `run`, with the store down for
    /// `down` first; says whether the lease was lost and how many renewals
    /// got through.
    async fn renew_through(down: Duration, run: Duration) -> (bool, u32) {
        let now = Instant::now();
        // `extend` fails as unavailable until `down` has passed, then
        // succeeds; the renewals that got through are counted.
        let renewed = Arc::new(AtomicU32::new(0));
        let (down_until, counted) = (now + down, renewed.clone());
        let store = Scripted::extending(move || {
            if Instant::now() < down_until {
                return Err(Error::unavailable("test", "down"));
            }
            counted.fetch_add(1, Ordering::SeqCst);
            Ok(())
        });
        let key = StoreKey::parse("k").unwrap();
        let token = LeaseToken::generate();
        let lease = Lease::new(&store, &key, &token, Duration::from_millis(300), now);
        let _ = tokio::time::timeout(run, lease.renew_every(Duration::from_millis(100))).await;
        (lease.signal().is_lost(), renewed.load(Ordering::SeqCst))
    }

    #[tokio::test]
    async fn a_blip_shorter_than_the_lease_is_ridden_out() {
        let (lost, renewed) =
            renew_through(Duration::from_millis(150), Duration::from_secs(1)).await;
        assert!(
            !lost,
            "a 150 ms blip lost a 300 ms lease renewed every 100 ms"
        );
        assert!(renewed >= 5, "only {renewed} renewals in a second");
    }

    #[tokio::test]
    async fn an_outage_longer_than_the_lease_loses_it() {
        let (lost, renewed) = renew_through(Duration::from_secs(5), Duration::from_secs(1)).await;
        assert!(
            lost,
            "the lease ran out unrenewed, yet the handler was not told"
        );
        assert_eq!(renewed, 0);
    }
}
