//! The cases, one `pub async fn` per behaviour of the contract. Each panics
//! with a message naming the broken rule when the store breaks it.
//!
//! Run them all through [`crate::conformance_tests!`]; call one directly to
//! debug it.

mod call;
mod classic;
mod concurrency;
mod engine;
mod extend;
mod keys;
mod primitives;
mod renewal;

pub use call::*;
pub use classic::*;
pub use concurrency::*;
pub use engine::*;
pub use extend::*;
pub use keys::*;
pub use primitives::*;
pub use renewal::*;

use std::fmt;

use futures::future::BoxFuture;

use crate::Subject;

/// One case of the suite, by name: what [`crate::conformance_tests!`] stamps a
/// test for. The lists below are built by that macro from the same names, so
/// a case is named in one place.
///
/// # Examples
/// ```
/// use std::sync::Arc;
/// use idem_conformance::{Subject, cases};
///
/// # #[tokio::main]
/// # async fn main() {
/// let subject = Subject::new("memory", Arc::new(idem_memory::MemoryStore::new()));
/// let case = cases::named("claim_on_absent_key_acquires").unwrap();
/// case.run(&subject).await;
/// # }
/// ```
#[derive(Clone, Copy)]
pub struct Case {
    name: &'static str,
    run: for<'a> fn(&'a Subject) -> BoxFuture<'a, ()>,
}

impl Case {
    pub(crate) const fn new(
        name: &'static str,
        run: for<'a> fn(&'a Subject) -> BoxFuture<'a, ()>,
    ) -> Self {
        Self { name, run }
    }

    /// The case's name: its function's, and its test's.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// Runs the case on `subject`; it panics where the store breaks the rule.
    pub fn run<'a>(&self, subject: &'a Subject) -> BoxFuture<'a, ()> {
        (self.run)(subject)
    }
}

impl fmt::Debug for Case {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Case").field(&self.name).finish()
    }
}

/// Every case for a plain subject, in the order the suite runs them.
pub const ALL: &[Case] = crate::conformance_tests!(@cases (@list));

/// The cases for a store that cannot reach its server (`unreachable:`).
pub const UNREACHABLE: &[Case] = crate::conformance_tests!(@unreachable (@list));

/// The cases for a subject with a purger (`purge:`).
pub const PURGE: &[Case] = crate::conformance_tests!(@purge (@list));

/// The case called `name`, from any of the lists.
pub fn named(name: &str) -> Option<Case> {
    [ALL, UNREACHABLE, PURGE]
        .into_iter()
        .flatten()
        .find(|case| case.name == name)
        .copied()
}
