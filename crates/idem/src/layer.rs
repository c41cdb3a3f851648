//! The tower layer built from a [`StoreConfig`]: the store, and the lease,
//! renewal, completion bound, retention and key prefix, read in one place
//! (cargo feature `tower`).

#![cfg(feature = "tower")]

use std::sync::Arc;

use idem_core::{Engine, IdempotencyStore, Result};
use idem_tower::IdempotencyLayer;

use crate::StoreConfig;

impl StoreConfig {
    /// Connects to the store this config names and returns the tower layer
    /// over it, with this config's lease, renewal, completion bound,
    /// retention and key prefix. The layer's other settings (methods, key
    /// required, scope, limits) are set on the result.
    ///
    /// # Errors
    /// The store's error when it cannot connect; [`Error::Config`](idem_core::Error::Config)
    /// for an unknown scheme or an unusable key prefix.
    ///
    /// # Examples
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> idem::Result<()> {
    /// use axum::{Router, routing::post};
    ///
    /// let config = idem::StoreConfig::load(None)?; // IDEM_STORE_URL, IDEM_LEASE, ...
    /// let layer = config.layer().await?.with_key_required(true);
    /// let app: Router = Router::new()
    ///     .route("/payments", post(|| async { "paid" }))
    ///     .layer(layer);
    /// # let _ = app; Ok(()) }
    /// ```
    pub async fn layer(&self) -> Result<IdempotencyLayer> {
        self.layer_over(self.connect().await?)
    }

    /// The tower layer over a store built elsewhere (one on the
    /// application's own pool, say), with this config's lease, renewal,
    /// completion bound, retention and key prefix.
    ///
    /// # Errors
    /// [`Error::Config`](idem_core::Error::Config) for an unusable key prefix.
    ///
    /// # Examples
    /// ```
    /// use std::{sync::Arc, time::Duration};
    ///
    /// let mut config = idem::StoreConfig::default();
    /// config.lease = Duration::from_secs(3);
    /// config.key_prefix = "shop:".into();
    /// let layer = config.layer_over(Arc::new(idem::MemoryStore::new()))?;
    /// # let _ = layer; Ok::<(), idem::Error>(())
    /// ```
    pub fn layer_over(&self, store: Arc<dyn IdempotencyStore>) -> Result<IdempotencyLayer> {
        self.layer_with(self.engine_over(store))
    }

    /// The tower layer over an engine built elsewhere, with this config's
    /// key prefix; the engine brings its own lease and retention (for a
    /// SQL store's transactional mode, [`transactional_layer`](Self::transactional_layer)
    /// sets the retention from this config).
    ///
    /// # Errors
    /// [`Error::Config`](idem_core::Error::Config) for an unusable key prefix.
    pub fn layer_with<E: Engine>(&self, engine: E) -> Result<IdempotencyLayer<E>> {
        Ok(IdempotencyLayer::from_engine(engine).with_key_space(self.key_space()?))
    }

    /// The tower layer over a SQL store's transactional mode
    /// (`store.transactional()`), with this config's retention and key
    /// prefix.
    ///
    /// # Errors
    /// [`Error::Config`](idem_core::Error::Config) for an unusable key prefix.
    ///
    /// # Examples
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> idem::Result<()> {
    /// let config = idem::StoreConfig::from_url("sqlite::memory:");
    /// let store = config.connect_sqlite().await?;
    /// let layer = config.transactional_layer(store.transactional())?;
    /// # let _ = layer; Ok(()) }
    /// ```
    #[cfg(any(feature = "sqlite", feature = "postgres", feature = "mysql"))]
    pub fn transactional_layer<DB: idem_sql::sqlx::Database>(
        &self,
        engine: idem_sql::Transactional<DB>,
    ) -> Result<IdempotencyLayer<idem_sql::Transactional<DB>>> {
        self.layer_with(engine.with_retention(self.retention))
    }
}
