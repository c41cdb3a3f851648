#![doc = include_str!("../README.md")]
// With no database feature on, the shared helpers have no user.
#![cfg_attr(
    not(any(feature = "sqlite", feature = "postgres", feature = "mysql")),
    allow(dead_code, unused_imports, unused_macros)
)]

mod error;
mod purge;
mod settings;
mod table;
mod time;

#[cfg(feature = "sqlite")]
mod sqlite;

#[cfg(feature = "sqlite")]
pub use sqlite::{SqliteConfig, SqliteStore};
pub use table::{DEFAULT_TABLE, MAX_TABLE_LEN};
