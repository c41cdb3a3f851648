//! Opening the idempotency store: from its URL (the lease mode), or in the
//! payments' database (the transactional mode).

use std::sync::Arc;

use anyhow::Context;
use axum::Router;
use idem::{Error, IdempotencyStore, StoreConfig};
use idem_sql::Transactional;
use idem_tower::{Drain, IdempotencyLayer, Metrics};

use crate::db::{Database, Payments};

/// The store's settings: `url`, plus the `IDEM_*` environment variables the
/// `idem` crate reads (lease, retention, timeouts, memory tier, ...).
///
/// # Errors
/// [`Error::Config`] when an `IDEM_*` variable has a wrong value.
pub fn store_config(url: &str) -> Result<StoreConfig, Error> {
    let mut config = StoreConfig::load(None)?;
    config.store_url = url.to_owned();
    Ok(config)
}

/// Opens the idempotency store `config` names, through `idem`'s URL
/// dispatch: `sqlite://path` always; `redis://`, `postgres://`, `mysql://`,
/// `mssql://` when the demo is built with that feature.
///
/// # Errors
/// [`Error::Config`] for an unknown scheme or one whose feature is off (the
/// message names the feature), or the store's error when it cannot connect.
pub async fn open_store(config: &StoreConfig) -> Result<Arc<dyn IdempotencyStore>, Error> {
    config.connect().await
}

/// The transactional mode's layer, on the database's own engine
/// ([`Transactional`]): each payment and its idempotency record are one
/// transaction.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum TxLayer {
    /// In a SQLite file.
    Sqlite(IdempotencyLayer<Transactional<sqlx::Sqlite>>),
    /// On PostgreSQL.
    #[cfg(feature = "postgres")]
    Postgres(IdempotencyLayer<Transactional<sqlx::Postgres>>),
    /// On MySQL or MariaDB.
    #[cfg(feature = "mysql")]
    MySql(IdempotencyLayer<Transactional<sqlx::MySql>>),
}

/// `$body` with `$layer` bound to the layer, whichever database.
macro_rules! each {
    ($layers:expr, $layer:ident => $body:expr) => {
        match $layers {
            TxLayer::Sqlite($layer) => $body,
            #[cfg(feature = "postgres")]
            TxLayer::Postgres($layer) => $body,
            #[cfg(feature = "mysql")]
            TxLayer::MySql($layer) => $body,
        }
    };
}

impl TxLayer {
    /// Connects to `database` as the idempotency store, with `settings`
    /// (its URL is the database's), and returns the payments on the same
    /// pool and the layer over the store's transactional engine.
    ///
    /// # Errors
    /// When the database cannot be reached, or the payments table or the
    /// records' table cannot be made; the message shows the URL without its
    /// password.
    pub async fn open(
        database: &Database,
        settings: &StoreConfig,
    ) -> anyhow::Result<(Payments, Self)> {
        let cannot = || format!("cannot open the database {}", database.display());
        /// The payments on the store's pool, and the layer over its engine.
        macro_rules! open {
            ($connect:ident, $variant:ident) => {{
                let store = settings.$connect().await.with_context(cannot)?;
                let payments = Payments::on(store.pool().clone())
                    .await
                    .with_context(cannot)?;
                let layer = settings
                    .transactional_layer(store.transactional())
                    .context(crate::app::BAD_PREFIX)?;
                let layer = crate::app::configure(layer);
                Ok((payments, Self::$variant(layer)))
            }};
        }
        match database {
            Database::Sqlite(_) => open!(connect_sqlite, Sqlite),
            #[cfg(feature = "postgres")]
            Database::Postgres(_) => open!(connect_postgres, Postgres),
            #[cfg(feature = "mysql")]
            Database::MySql(_) => open!(connect_mysql, MySql),
        }
    }

    /// `router` with this layer on its routes.
    pub fn cover<S: Clone + Send + Sync + 'static>(&self, router: Router<S>) -> Router<S> {
        each!(self, layer => router.route_layer(layer.clone()))
    }

    /// The layer's shutdown handle.
    pub fn drain(&self) -> Drain {
        each!(self, layer => layer.drain())
    }

    /// The layer's counters.
    pub fn metrics(&self) -> Arc<Metrics> {
        each!(self, layer => layer.metrics())
    }
}
