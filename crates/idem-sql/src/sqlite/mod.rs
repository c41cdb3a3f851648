//! SQLite: a file (WAL mode, busy timeout) or `sqlite::memory:`.

mod config;
mod schema;
mod store;

pub use config::SqliteConfig;
pub use store::SqliteStore;
