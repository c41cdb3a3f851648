//! The checks: calls that end as `Unavailable` within a bound, and a store
//! that works again.

use std::fmt::Debug;
use std::future::Future;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::future::join_all;
use idem_core::{Claim, Error, IdempotencyStore, LeaseToken, Result, StoreKey};

use super::SLACK;
use crate::fresh_key;

const HOUR: Duration = Duration::from_secs(3600);

/// How long [`works_again`] waits between two tries.
const RETRY: Duration = Duration::from_millis(50);

/// Runs `call`, which must fail with [`Error::Unavailable`] within `bound`
/// (and [`SLACK`]); returns that error for further checks.
///
/// # Panics
/// Naming the call `what`: when it succeeds, fails with another error, takes
/// longer, or is still waiting then (a hang: it is dropped, not waited for).
///
/// # Examples
/// ```
/// use std::time::Duration;
/// use idem_conformance::doubles::UnavailableStore;
/// use idem_conformance::{fresh_key, stall};
/// use idem_core::IdempotencyStore;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let store = UnavailableStore::new();
/// let bound = Duration::from_millis(100);
/// let error = stall::unavailable_within(bound, "find", store.find(&fresh_key())).await;
/// assert!(error.is_transient());
/// # }
/// ```
pub async fn unavailable_within<T: Debug>(
    bound: Duration,
    what: &str,
    call: impl Future<Output = Result<T>>,
) -> Error {
    let limit = bound + SLACK;
    let started = Instant::now();
    let result = tokio::time::timeout(limit, call)
        .await
        .unwrap_or_else(|_| panic!("{what} hung: still waiting after {limit:?}"));
    let elapsed = started.elapsed();
    assert!(
        elapsed < limit,
        "{what} took {elapsed:?}, past the {bound:?} bound"
    );
    match result {
        Err(error @ Error::Unavailable { .. }) => error,
        other => panic!("{what}: expected Unavailable, got {other:?}"),
    }
}

/// Calls every method of the trait on `key`, each of which must be
/// [`Error::Unavailable`] within `bound`, as [`unavailable_within`] checks;
/// `token` is the claim that `extend`, `complete` and `release` present.
/// Returns the errors, in the order called: `find`, `exists`, `store`,
/// `remove`, `claim`, `extend`, `complete`, `release`.
///
/// # Panics
/// At the first call that is not `Unavailable` in time.
///
/// # Examples
/// ```
/// use std::time::Duration;
/// use idem_conformance::doubles::UnavailableStore;
/// use idem_conformance::{fresh_key, stall};
/// use idem_core::LeaseToken;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let store = UnavailableStore::new();
/// let (key, token) = (fresh_key(), LeaseToken::generate());
/// let bound = Duration::from_millis(100);
/// let errors = stall::every_call_unavailable_within(&store, &key, &token, bound).await;
/// assert_eq!(errors.len(), 8);
/// # }
/// ```
pub async fn every_call_unavailable_within(
    store: &dyn IdempotencyStore,
    key: &StoreKey,
    token: &LeaseToken,
    bound: Duration,
) -> Vec<Error> {
    let value = || Bytes::from_static(b"v");
    vec![
        unavailable_within(bound, "find", store.find(key)).await,
        unavailable_within(bound, "exists", store.exists(key)).await,
        unavailable_within(bound, "store", store.store(key, value(), HOUR)).await,
        unavailable_within(bound, "remove", store.remove(key)).await,
        unavailable_within(bound, "claim", store.claim(key, value(), HOUR)).await,
        unavailable_within(bound, "extend", store.extend(key, token, HOUR)).await,
        unavailable_within(bound, "complete", store.complete(key, token, value(), HOUR)).await,
        unavailable_within(bound, "release", store.release(key, token)).await,
    ]
}

/// Sends `calls` finds, each on a fresh key, all at once; each must be
/// [`Error::Unavailable`] within `bound`, as [`unavailable_within`] checks.
/// With more calls than the store's pool has connections, waiting for a
/// connection must count against the same bound.
///
/// # Panics
/// When any of them is not `Unavailable` in time.
///
/// # Examples
/// See [the module](crate::stall).
pub async fn crowd_unavailable_within(store: &dyn IdempotencyStore, calls: usize, bound: Duration) {
    let keys: Vec<StoreKey> = (0..calls).map(|_| fresh_key()).collect();
    let finds = keys
        .iter()
        .map(|key| unavailable_within(bound, "a crowded find", store.find(key)));
    join_all(finds).await;
}

/// Within `within`, a fresh key goes through `claim`, `extend`, `complete`
/// and `find` on `store`: the store works again (after a stall, say).
/// Transient failures before the claim succeeds are retried.
///
/// # Panics
/// On a non-transient error, a wrong answer, or when `within` runs out
/// (retries, calls and hangs alike).
///
/// # Examples
/// ```
/// use std::time::Duration;
/// use idem_conformance::doubles::ReferenceStore;
/// use idem_conformance::stall;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// stall::works_again(&ReferenceStore::new(), Duration::from_secs(1)).await;
/// # }
/// ```
pub async fn works_again(store: &dyn IdempotencyStore, within: Duration) {
    let mut last = None;
    let served = tokio::time::timeout(within, serves_a_fresh_key(store, &mut last)).await;
    assert!(
        served.is_ok(),
        "the store did not work again within {within:?}; the last error: {last:?}"
    );
}

/// Claims a fresh key, retrying while the claim fails transiently (keeping
/// the error in `last`), then extends and completes it and finds the value.
async fn serves_a_fresh_key(store: &dyn IdempotencyStore, last: &mut Option<Error>) {
    let key = fresh_key();
    let claim = loop {
        match store.claim(&key, Bytes::from_static(b"p"), HOUR).await {
            Ok(claim) => break claim,
            Err(error) if error.is_transient() => {
                *last = Some(error);
                tokio::time::sleep(RETRY).await;
            }
            Err(error) => panic!("the store did not come back: {error:?}"),
        }
    };
    let Claim::Acquired(token) = claim else {
        panic!("a fresh key was taken");
    };
    store.extend(&key, &token, HOUR).await.unwrap();
    let done = Bytes::from_static(b"done");
    store.complete(&key, &token, done, HOUR).await.unwrap();
    assert_eq!(
        store.find(&key).await.unwrap().as_deref(),
        Some(&b"done"[..])
    );
}
