#![doc = include_str!("../README.md")]
// With no database feature on, the shared helpers have no user.
#![cfg_attr(
    not(any(feature = "sqlite", feature = "postgres", feature = "mysql")),
    allow(dead_code, unused_imports, unused_macros)
)]

mod dialect;
mod error;
mod forward;
mod purge;
mod settings;
mod store;
mod table;
mod time;
#[cfg(any(feature = "sqlite", feature = "postgres", feature = "mysql"))]
mod tx;

#[cfg(feature = "mysql")]
mod mysql;
#[cfg(feature = "postgres")]
mod postgres;
#[cfg(feature = "sqlite")]
mod sqlite;

#[cfg(feature = "mysql")]
pub use mysql::{MySqlConfig, MySqlStore};
#[cfg(feature = "postgres")]
pub use postgres::{PostgresConfig, PostgresStore};
#[cfg(feature = "sqlite")]
pub use sqlite::{SqliteConfig, SqliteStore};
pub use table::{DEFAULT_TABLE, MAX_TABLE_LEN};
#[cfg(any(feature = "sqlite", feature = "postgres", feature = "mysql"))]
pub use tx::{DEFAULT_LOCK_WAIT, IdempotentTx, Transactional, TxSlot};

/// The sqlx this crate is built on, for queries on a store's `pool()`.
pub use sqlx;
