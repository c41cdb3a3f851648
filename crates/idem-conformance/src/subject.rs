//! What a case runs against.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use idem_core::{IdempotencyKey, IdempotencyStore, KeySpace, PurgeExpired, Scope, StoreKey};

/// A store under test, with what the suite needs to know about it.
///
/// # Examples
/// ```
/// use std::sync::Arc;
/// use idem_conformance::Subject;
/// # struct Dummy;
/// let subject = Subject::new("memory", Arc::new(idem_memory::MemoryStore::new()));
/// assert_eq!(subject.name(), "memory");
/// ```
#[derive(Clone)]
pub struct Subject {
    name: &'static str,
    store: Arc<dyn IdempotencyStore>,
    purger: Option<Arc<dyn PurgeExpired>>,
    short_ttl: Duration,
}

impl fmt::Debug for Subject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Subject")
            .field("name", &self.name)
            .field("store", &self.store)
            .field("short_ttl", &self.short_ttl)
            .field("purges", &self.purger.is_some())
            .finish()
    }
}

impl Subject {
    /// A subject named `name` (it shows in messages) over `store`.
    pub fn new(name: &'static str, store: Arc<dyn IdempotencyStore>) -> Self {
        Self {
            name,
            store,
            purger: None,
            short_ttl: Duration::from_millis(300),
        }
    }

    /// A subject whose store can also purge expired records in bulk (the
    /// optional [`PurgeExpired`] ability); the `purge:` cases use it.
    pub fn with_purger<S: PurgeExpired + 'static>(name: &'static str, store: Arc<S>) -> Self {
        let mut subject = Self::new(name, store.clone());
        subject.purger = Some(store);
        subject
    }

    /// The purge ability, when the setup gave one.
    pub fn purger(&self) -> Option<&Arc<dyn PurgeExpired>> {
        self.purger.as_ref()
    }

    /// The TTL the expiry cases use (default 300 ms). Raise it for a backend
    /// whose expiry has a coarse clock.
    pub fn with_short_ttl(mut self, ttl: Duration) -> Self {
        self.short_ttl = ttl;
        self
    }

    /// The backend's name.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn IdempotencyStore> {
        &self.store
    }

    /// The TTL the expiry cases use.
    pub fn short_ttl(&self) -> Duration {
        self.short_ttl
    }

    /// How long to wait for a short-TTL record to be gone for sure.
    pub fn past_short_ttl(&self) -> Duration {
        self.short_ttl * 2 + Duration::from_millis(200)
    }

    /// A storage key no other case uses: a random prefix and a random key.
    pub fn fresh_key(&self) -> StoreKey {
        fresh_space().key(&Scope::global(), &random_key())
    }
}

/// A key space with a random prefix, so cases never meet on a shared server.
pub(crate) fn fresh_space() -> KeySpace {
    KeySpace::new(format!("conformance:{}:", uuid::Uuid::new_v4().simple()))
        .expect("a uuid prefix is valid")
}

pub(crate) fn random_key() -> IdempotencyKey {
    IdempotencyKey::new(uuid::Uuid::new_v4().to_string()).expect("a uuid is a valid key")
}
