#![doc = include_str!("../README.md")]

mod capacity;
mod store;

pub use capacity::Capacity;
pub use store::{MemoryStore, MemoryStoreBuilder};
