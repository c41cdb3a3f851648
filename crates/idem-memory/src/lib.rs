#![doc = include_str!("../README.md")]

mod cached;
mod capacity;
mod store;

pub use cached::{CachedStore, DEFAULT_TIER_TTL, TierConfig};
pub use capacity::Capacity;
pub use store::MemoryStore;
