#![doc = include_str!("../README.md")]

mod config;
mod connect;
mod layer;
mod scheme;
mod sql;

pub use config::StoreConfig;
pub use connect::connect;
pub use scheme::{Backend, backend_for_url};

pub use idem_core::*;
pub use idem_memory::{CachedStore, Capacity, MemoryStore, TierConfig};
