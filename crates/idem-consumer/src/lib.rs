#![doc = include_str!("../README.md")]

pub mod broker;
mod consume;
mod error;
pub mod ledger;
mod options;

pub use consume::{Consumer, Delivery, Handled};
pub use error::ConsumerError;
pub use options::{Faults, Options};

/// The header that carries a message's idempotency key, set by the
/// publisher. It is not `Nats-Msg-Id`: JetStream's own de-duplication is a
/// time window on the publish side, and this consumer must not lean on it.
pub const KEY_HEADER: &str = "Idem-Key";
