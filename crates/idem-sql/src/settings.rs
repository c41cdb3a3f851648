//! What every SQL config has besides its URL: table, schema creation, pool
//! size, timeouts, background purge.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::table::DEFAULT_TABLE;

/// The pool and table settings shared by the three configs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub(crate) struct Settings {
    pub(crate) table: String,
    pub(crate) migrations: bool,
    pub(crate) max_connections: u32,
    pub(crate) connect_timeout: Duration,
    pub(crate) operation_timeout: Duration,
    pub(crate) purge_interval: Option<Duration>,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            table: DEFAULT_TABLE.to_owned(),
            migrations: true,
            max_connections: 10,
            connect_timeout: Duration::from_secs(10),
            operation_timeout: Duration::from_secs(10),
            purge_interval: None,
        }
    }
}

/// Stamps the builder setters every config has, onto a type with a
/// `settings: Settings` field.
macro_rules! settings_setters {
    ($config:ty) => {
        impl $config {
            /// The table the records live in (default `idem_records`): ASCII
            /// letters, digits and underscores, checked when the store connects.
            pub fn with_table(mut self, table: impl Into<String>) -> Self {
                self.settings.table = table.into();
                self
            }

            /// Whether the store creates the table and its expiry index when
            /// they are missing (default `true`): in `connect`, or for a store
            /// from `connect_lazy` before its first operation. Turn it off when
            /// you manage the schema yourself.
            pub fn with_migrations(mut self, on: bool) -> Self {
                self.settings.migrations = on;
                self
            }

            /// The most connections the pool opens (default 10, at least 1).
            /// On PostgreSQL and MySQL, claims and reads use all but 2 of them
            /// at once: those are kept for renewing, completing and releasing
            /// running claims, which must not wait behind new work.
            pub fn with_max_connections(mut self, max: u32) -> Self {
                self.settings.max_connections = max.max(1);
                self
            }

            /// How long `connect` may take to reach the server and prove it
            /// answers, creating the schema included (default 10 s); past it
            /// `connect` fails with `Error::Unavailable`.
            pub fn with_connect_timeout(mut self, timeout: ::std::time::Duration) -> Self {
                self.settings.connect_timeout = timeout;
                self
            }

            /// The most one store operation may take (default 10 s); past it
            /// the operation fails with `Error::Unavailable`, never a hang.
            ///
            /// It bounds every method of `IdempotencyStore` (`find`, `store`,
            /// `remove`, `exists`, `claim`, `extend`, `complete`, `release`)
            /// from call to answer: creating the schema on first use, waiting
            /// for a pooled connection, opening one, and the statements
            /// (a MySQL claim's read and deadlock retries included). That
            /// holds for a server that is down, one that accepts connections
            /// and never answers, and one that stalls mid-statement.
            /// `purge_expired` is bounded by it only while it waits for a
            /// connection.
            pub fn with_operation_timeout(mut self, timeout: ::std::time::Duration) -> Self {
                self.settings.operation_timeout = timeout;
                self
            }

            /// Deletes expired records every `interval` in a background task,
            /// which stops when the last clone of the store is dropped.
            /// Off by default: reads never see expired records anyway, so the
            /// purge only keeps the table small. See also `purge_expired`.
            pub fn with_purge_interval(mut self, interval: ::std::time::Duration) -> Self {
                self.settings.purge_interval = Some(interval);
                self
            }

            /// The table name as configured (not yet checked).
            pub fn table(&self) -> &str {
                &self.settings.table
            }
        }
    };
}

pub(crate) use settings_setters;
