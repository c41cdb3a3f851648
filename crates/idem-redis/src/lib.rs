#![doc = include_str!("../README.md")]

mod config;
mod envelope;
mod error;
mod pool;
mod scripts;
mod store;
mod url;

pub use config::{
    DEFAULT_CONNECT_TIMEOUT, DEFAULT_MAX_CONNECTIONS, DEFAULT_OPERATION_TIMEOUT, RedisConfig,
    Topology,
};
pub use store::RedisStore;
