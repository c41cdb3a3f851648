#![doc = include_str!("../README.md")]

mod config;
mod error;
mod parse;
mod pool;
mod sql;
mod store;
mod table;

pub use config::{DEFAULT_PORT, Encrypt, MssqlConfig, Password};
pub use store::MssqlStore;
pub use table::{DEFAULT_TABLE, MAX_NAME_LEN, TableName};
