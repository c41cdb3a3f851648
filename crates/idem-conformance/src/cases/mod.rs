//! The cases, one `pub async fn` per behaviour of the contract. Each panics
//! with a message naming the broken rule when the store breaks it.
//!
//! Run them all through [`crate::conformance_tests!`]; call one directly to
//! debug it.

mod classic;
mod concurrency;
mod engine;
mod keys;
mod primitives;

pub use classic::*;
pub use concurrency::*;
pub use engine::*;
pub use keys::*;
pub use primitives::*;

use std::time::Duration;

use idem_core::{Claim, Error, LeaseToken, StoreKey};

use crate::Subject;

/// Every case's name, in the order the suite runs them.
pub const ALL: &[&str] = crate::conformance_tests!(@cases (@names));

pub(crate) fn acquired(claim: Claim, what: &str) -> LeaseToken {
    match claim {
        Claim::Acquired(token) => token,
        Claim::Existing(_) => {
            panic!("{what}: expected the claim to be acquired, found a live record")
        }
    }
}

pub(crate) fn existing(claim: Claim, what: &str) -> bytes::Bytes {
    match claim {
        Claim::Existing(bytes) => bytes,
        Claim::Acquired(_) => panic!("{what}: expected a live record, but the claim was acquired"),
    }
}

/// Asserts that `complete` with `token` is refused as a lost lease.
pub(crate) async fn assert_complete_refused(
    s: &Subject,
    key: &StoreKey,
    token: &LeaseToken,
    what: &str,
) {
    let done = s
        .store()
        .complete(
            key,
            token,
            bytes::Bytes::from_static(b"refused"),
            Duration::from_secs(3600),
        )
        .await;
    assert!(
        matches!(done, Err(Error::LeaseLost)),
        "{what}: complete must be LeaseLost, got {done:?}"
    );
}
