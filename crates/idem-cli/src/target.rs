//! The settings, and the store they name.

use std::path::Path;
use std::sync::Arc;

use idem::{Backend, IdempotencyStore, KeySpace, StoreConfig, backend_for_url, redact_url};

use crate::Result;

/// Loads the settings as the library does ([`StoreConfig::load`]):
/// defaults, then the TOML file `file`, then the `IDEM_*` environment
/// variables; then `store_url`, when given, wins over all of them. The
/// memory tier is turned off: the command always asks the shared store.
///
/// # Errors
/// [`idem::Error::Config`] when the file is missing or a value is wrong.
pub fn settings(file: Option<&Path>, store_url: Option<&str>) -> Result<StoreConfig> {
    let mut config = StoreConfig::load(file)?;
    if let Some(url) = store_url {
        config.store_url = url.to_owned();
    }
    config.tier = false;
    Ok(config)
}

/// A connected store, with the settings that named it.
#[derive(Debug, Clone)]
pub struct Target {
    config: StoreConfig,
    backend: Backend,
    store: Arc<dyn IdempotencyStore>,
    space: KeySpace,
}

impl Target {
    /// Connects to the store `config` names.
    ///
    /// # Errors
    /// [`idem::Error::Config`] for `memory://` (an app's memory store lives
    /// in the app's process, where no other process can reach it), an
    /// unknown scheme or a bad key prefix; the store's error when it cannot
    /// connect.
    pub async fn connect(config: StoreConfig) -> Result<Self> {
        let backend = backend_for_url(&config.store_url)?;
        if backend == Backend::Memory {
            return Err(idem::Error::config(
                "no shared store: memory:// lives inside one process, so this command would see an \
                 empty store; set IDEM_STORE_URL, --store-url or store_url in --config to the app's store",
            )
            .into());
        }
        let store = config.connect().await?;
        Self::over(config, store)
    }

    /// A target over a store built elsewhere (a memory store in tests, a
    /// store an app holds), with `config`'s key prefix and lease.
    ///
    /// # Errors
    /// [`idem::Error::Config`] for a bad store URL or key prefix.
    ///
    /// # Examples
    /// ```
    /// use std::sync::Arc;
    /// use idem::{MemoryStore, StoreConfig};
    /// let target = idem_cli::Target::over(StoreConfig::default(), Arc::new(MemoryStore::new()))?;
    /// assert_eq!(target.backend_name(), "memory");
    /// # Ok::<(), idem_cli::CliError>(())
    /// ```
    pub fn over(config: StoreConfig, store: Arc<dyn IdempotencyStore>) -> Result<Self> {
        Ok(Self {
            backend: backend_for_url(&config.store_url)?,
            space: config.key_space()?,
            config,
            store,
        })
    }

    /// The settings.
    pub fn config(&self) -> &StoreConfig {
        &self.config
    }

    /// The backend the store URL names.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The backend's name, as in the URL scheme.
    pub fn backend_name(&self) -> &'static str {
        backend_name(self.backend)
    }

    /// The store.
    pub fn store(&self) -> &dyn IdempotencyStore {
        &*self.store
    }

    /// The key space (the settings' key prefix).
    pub fn space(&self) -> &KeySpace {
        &self.space
    }

    /// The store URL with its password hidden.
    pub fn shown_url(&self) -> String {
        redact_url(&self.config.store_url)
    }
}

/// A backend's name, as in its URL scheme.
pub fn backend_name(backend: Backend) -> &'static str {
    match backend {
        Backend::Memory => "memory",
        Backend::Sqlite => "sqlite",
        Backend::Postgres => "postgres",
        Backend::MySql => "mysql",
        Backend::Redis => "redis",
        Backend::Mssql => "mssql",
        _ => "this store",
    }
}
