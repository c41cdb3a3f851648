//! Test doubles: stores that stand in for a real backend where a test needs
//! one that behaves in a known way.
//!
//! - [`ReferenceStore`] keeps the contract in the plainest way there is (one
//!   mutex over one hash map). It passes the whole suite, and is the base that
//!   the suite's self-test breaks one rule of at a time. It also shows what a
//!   layer costs when the store costs next to nothing.
//! - [`UnavailableStore`] is a store whose server is down: every operation
//!   fails as [`idem_core::Error::Unavailable`].
//!
//! # Examples
//! ```
//! use idem_conformance::doubles::{ReferenceStore, UnavailableStore};
//! use idem_core::{IdempotencyStore, StoreKey};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let key = StoreKey::parse("orders:1234").unwrap();
//! assert_eq!(ReferenceStore::new().find(&key).await.unwrap(), None);
//! let error = UnavailableStore::new().find(&key).await.unwrap_err();
//! assert!(error.is_transient());
//! # }
//! ```

mod reference;
mod unavailable;

pub use reference::ReferenceStore;
pub use unavailable::UnavailableStore;
