//! MySQL and MariaDB: pooled connections, expiry by the server's `UTC_TIMESTAMP(6)`.

mod config;
mod schema;
mod store;

pub use config::MySqlConfig;
pub use store::MySqlStore;
