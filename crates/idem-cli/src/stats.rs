//! `stats` and `purge`: the whole key space.

use std::fmt;

use idem::{Backend, PurgeExpired, StoreConfig, StoreStats, backend_for_url};
use serde::Serialize;

use crate::target::backend_name;
use crate::{CliError, Result, Target};

/// What `stats` counted.
#[derive(Debug, Clone, Serialize)]
pub struct StatsView {
    /// The backend.
    pub backend: &'static str,
    /// The key prefix counted under.
    pub key_prefix: String,
    /// Live records.
    pub records: u64,
    /// Live records in progress.
    pub in_progress: u64,
    /// Live completed records.
    pub completed: u64,
    /// Expired records kept until a purge (none: the store drops them itself).
    pub expired: Option<u64>,
}

/// Counts the records under the settings' key prefix
/// ([`IdempotencyStore::stats`](idem::IdempotencyStore::stats)).
///
/// # Errors
/// [`CliError::Unsupported`] for a store that cannot count; the store's error.
pub async fn stats(target: &Target) -> Result<StatsView> {
    let counted = match target.store().stats(target.space()).await {
        Ok(counted) => counted,
        Err(idem::Error::Unsupported { .. }) => {
            return Err(CliError::Unsupported {
                operation: "stats",
                backend: target.backend_name(),
                reason: "this store cannot count its records".into(),
            });
        }
        Err(other) => return Err(other.into()),
    };
    Ok(view(target, counted))
}

fn view(target: &Target, counted: StoreStats) -> StatsView {
    StatsView {
        backend: target.backend_name(),
        key_prefix: target.space().prefix().to_owned(),
        records: counted.records(),
        in_progress: counted.in_progress,
        completed: counted.completed,
        expired: counted.expired,
    }
}

/// What `purge` did.
#[derive(Debug, Clone, Serialize)]
pub struct Purged {
    /// The backend.
    pub backend: &'static str,
    /// How many expired records were deleted; none where the store expires
    /// records by itself.
    pub purged: Option<u64>,
}

/// Deletes the expired records, on the stores that keep them until a purge
/// (the SQL stores); on Redis, which expires records by itself, there is
/// nothing to do and `purged` is `None`.
///
/// # Errors
/// [`CliError::Unsupported`] on SQL Server (its store's purge is not
/// reachable through the facade's settings yet); the store's error.
pub async fn purge(config: &StoreConfig) -> Result<Purged> {
    let backend = backend_for_url(&config.store_url)?;
    let name = backend_name(backend);
    let purged = match backend {
        Backend::Memory | Backend::Redis => None,
        Backend::Sqlite => Some(config.connect_sqlite().await?.purge_expired().await?),
        Backend::Postgres => Some(config.connect_postgres().await?.purge_expired().await?),
        Backend::MySql => Some(config.connect_mysql().await?.purge_expired().await?),
        _ => {
            return Err(CliError::Unsupported {
                operation: "purge",
                backend: name,
                reason: "the idem facade cannot reach its purge yet; call \
                         `idem_mssql::MssqlStore::purge_expired` from the app instead"
                    .into(),
            });
        }
    };
    Ok(Purged {
        backend: name,
        purged,
    })
}

impl fmt::Display for StatsView {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "store        {}, keys under {:?}",
            self.backend, self.key_prefix
        )?;
        writeln!(f, "records      {}", self.records)?;
        writeln!(f, "in progress  {}", self.in_progress)?;
        writeln!(f, "completed    {}", self.completed)?;
        match self.expired {
            Some(n) => write!(f, "expired      {n} (kept until `idem purge`)"),
            None => write!(f, "expired      - ({} drops them itself)", self.backend),
        }
    }
}

impl fmt::Display for Purged {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.purged {
            Some(n) => write!(f, "purged {n} expired records from {}", self.backend),
            None => write!(
                f,
                "nothing to purge: {} expires records by itself",
                self.backend
            ),
        }
    }
}
