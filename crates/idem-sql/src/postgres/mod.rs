//! PostgreSQL: pooled connections, expiry by the server's `now()`.

mod config;
mod schema;
mod store;

pub use config::PostgresConfig;
pub use store::PostgresStore;
