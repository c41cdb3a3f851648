//! The stall checks can fail: on a hang, on a non-transient error, on a
//! success, and on a store that never comes back.

use std::future::pending;
use std::time::{Duration, Instant};

use idem_conformance::doubles::{ReferenceStore, UnavailableStore};
use idem_conformance::{fresh_key, stall};
use idem_core::{Error, IdempotencyStore, LeaseToken, Result};

const BOUND: Duration = Duration::from_millis(100);

#[tokio::test]
#[should_panic(expected = "hung")]
async fn a_hang_fails_at_the_bound() {
    stall::unavailable_within(BOUND, "a hang", pending::<Result<()>>()).await;
}

#[tokio::test]
async fn a_hang_is_dropped_not_waited_for() {
    let started = Instant::now();
    let hang = tokio::spawn(stall::unavailable_within(
        BOUND,
        "a hang",
        pending::<Result<()>>(),
    ));
    assert!(hang.await.is_err(), "a hang must fail");
    assert!(started.elapsed() < BOUND + stall::SLACK + Duration::from_millis(500));
}

#[tokio::test]
#[should_panic(expected = "expected Unavailable")]
async fn a_non_transient_error_fails() {
    let config = async { Err::<(), _>(Error::config("wrong")) };
    stall::unavailable_within(BOUND, "a config error", config).await;
}

#[tokio::test]
#[should_panic(expected = "took")]
async fn a_late_unavailable_fails() {
    let late = async {
        tokio::time::sleep(BOUND + stall::SLACK - Duration::from_millis(5)).await;
        std::thread::sleep(Duration::from_millis(50));
        UnavailableStore::new().find(&fresh_key()).await
    };
    stall::unavailable_within(BOUND, "a late find", late).await;
}

#[tokio::test]
#[should_panic(expected = "expected Unavailable")]
async fn a_store_that_answers_fails_every_call() {
    let store = ReferenceStore::new();
    stall::every_call_unavailable_within(&store, &fresh_key(), &LeaseToken::generate(), BOUND)
        .await;
}

#[tokio::test]
#[should_panic(expected = "expected Unavailable")]
async fn a_store_that_answers_fails_the_crowd() {
    stall::crowd_unavailable_within(&ReferenceStore::new(), 30, BOUND).await;
}

#[tokio::test]
#[should_panic(expected = "did not work again")]
async fn a_store_that_stays_down_does_not_work_again() {
    stall::works_again(&UnavailableStore::new(), Duration::from_millis(300)).await;
}

#[tokio::test]
async fn an_unavailable_store_passes() {
    let store = UnavailableStore::new();
    let errors =
        stall::every_call_unavailable_within(&store, &fresh_key(), &LeaseToken::generate(), BOUND)
            .await;
    assert!(errors.iter().all(Error::is_transient));
    stall::crowd_unavailable_within(&store, 30, BOUND).await;
    stall::works_again(&ReferenceStore::new(), Duration::from_secs(1)).await;
}
