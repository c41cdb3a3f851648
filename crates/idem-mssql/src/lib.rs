#![doc = include_str!("../README.md")]

mod config;
mod error;
mod parse;
mod pool;
mod sql;
mod store;
mod table;
mod tx;

pub use config::{DEFAULT_PORT, Encrypt, MssqlConfig, Password};
pub use store::MssqlStore;
pub use table::{DEFAULT_TABLE, MAX_NAME_LEN, TableName};
pub use tx::{Client, DEFAULT_LOCK_WAIT, IdempotentTx, Transactional, TxSlot};

/// The SQL Server driver, for the statements a handler runs through its
/// [`IdempotentTx`].
pub use tiberius;
