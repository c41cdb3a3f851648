//! Checks for a stalled store: a server that accepts connections and never
//! answers, or one that answered and then froze. The contract is that no call
//! waits longer than the store's documented bound, and that the wait ends as
//! [`idem_core::Error::Unavailable`] (transient), never a hang and never
//! another error.
//!
//! - [`SilentServer`] is the simplest stall there is: a loopback listener
//!   that accepts every connection and never sends a byte.
//! - [`unavailable_within`] checks one call, [`every_call_unavailable_within`]
//!   every method of the trait, and [`crowd_unavailable_within`] more calls at
//!   once than a pool has connections (waiting for a connection counts against
//!   the same bound).
//! - [`works_again`] checks that the store serves a fresh key once its
//!   server does.
//!
//! Every check allows [`SLACK`] past the bound for scheduling on a busy
//! machine, and fails (panics) on a call that is still waiting then: a hang
//! fails the test instead of holding it.
//!
//! # Examples
//! ```
//! use std::time::Duration;
//! use idem_conformance::doubles::UnavailableStore;
//! use idem_conformance::stall;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let bound = Duration::from_millis(100);
//! let store = UnavailableStore::new();
//! stall::crowd_unavailable_within(&store, 30, bound).await;
//! # }
//! ```

mod checks;
mod silent;

use std::time::Duration;

pub use checks::{
    crowd_unavailable_within, every_call_unavailable_within, unavailable_within, works_again,
};
pub use silent::SilentServer;

/// What every check allows past the bound it is given: scheduling slack on a
/// busy machine.
pub const SLACK: Duration = Duration::from_millis(500);
