//! What a case runs against.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use idem_core::{
    Claim, Error, IdempotencyKey, IdempotencyStore, KeySpace, LeaseToken, PurgeExpired, Scope,
    StoreKey,
};

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
        fresh_key()
    }
}

/// Steps that cases repeat, each a store call plus the check that its answer
/// is the one the contract promises. Every one panics, with `what` in its
/// message where it takes one, when the store answers otherwise (an error
/// included).
///
/// # Examples
/// ```
/// use std::sync::Arc;
/// use std::time::Duration;
/// use idem_conformance::Subject;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let s = Subject::new("memory", Arc::new(idem_memory::MemoryStore::new()));
/// let key = s.fresh_key();
/// let hour = Duration::from_secs(3600);
/// let token = s.claim_acquired(&key, b"pending", hour, "first claim").await;
/// assert_eq!(s.claim_existing(&key, b"", hour, "second claim").await, "pending");
/// s.complete(&key, &token, b"done", hour).await;
/// s.assert_value(&key, b"done", "after complete").await;
/// # }
/// ```
impl Subject {
    /// Claims `key` and expects to acquire it; returns the lease token.
    pub async fn claim_acquired(
        &self,
        key: &StoreKey,
        pending: impl AsRef<[u8]>,
        lease: Duration,
        what: &str,
    ) -> LeaseToken {
        match self.claim(key, pending, lease).await {
            Claim::Acquired(token) => token,
            Claim::Existing(_) => {
                panic!("{what}: expected the claim to be acquired, found a live record")
            }
        }
    }

    /// Claims `key` and expects a live record; returns its bytes.
    pub async fn claim_existing(
        &self,
        key: &StoreKey,
        pending: impl AsRef<[u8]>,
        lease: Duration,
        what: &str,
    ) -> Bytes {
        match self.claim(key, pending, lease).await {
            Claim::Existing(bytes) => bytes,
            Claim::Acquired(_) => {
                panic!("{what}: expected a live record, but the claim was acquired")
            }
        }
    }

    async fn claim(&self, key: &StoreKey, pending: impl AsRef<[u8]>, lease: Duration) -> Claim {
        let pending = Bytes::copy_from_slice(pending.as_ref());
        self.store.claim(key, pending, lease).await.unwrap()
    }

    /// Stores `value` under `key` for `ttl`, expecting no error.
    pub async fn put(&self, key: &StoreKey, value: impl AsRef<[u8]>, ttl: Duration) {
        let value = Bytes::copy_from_slice(value.as_ref());
        self.store.store(key, value, ttl).await.unwrap();
    }

    /// Completes the claim that `token` holds with `value` for `ttl`,
    /// expecting no error.
    pub async fn complete(
        &self,
        key: &StoreKey,
        token: &LeaseToken,
        value: impl AsRef<[u8]>,
        ttl: Duration,
    ) {
        let value = Bytes::copy_from_slice(value.as_ref());
        self.store.complete(key, token, value, ttl).await.unwrap();
    }

    /// Asserts that `find` returns exactly `expected` for `key`.
    pub async fn assert_value(&self, key: &StoreKey, expected: impl AsRef<[u8]>, what: &str) {
        let expected = expected.as_ref();
        let found = self.store.find(key).await.unwrap();
        assert!(
            found.as_deref() == Some(expected),
            "{what}: find returned {}, expected {}",
            shown(found.as_deref()),
            shown(Some(expected)),
        );
    }

    /// Asserts that `find` returns nothing for `key`.
    pub async fn assert_absent(&self, key: &StoreKey, what: &str) {
        let found = self.store.find(key).await.unwrap();
        assert!(
            found.is_none(),
            "{what}: find returned {}, expected nothing",
            shown(found.as_deref())
        );
    }

    /// Asserts that `complete` with `token` is refused as a lost lease.
    pub async fn assert_complete_refused(&self, key: &StoreKey, token: &LeaseToken, what: &str) {
        let hour = Duration::from_secs(3600);
        let done = self
            .store
            .complete(key, token, Bytes::from_static(b"refused"), hour)
            .await;
        assert!(
            matches!(done, Err(Error::LeaseLost)),
            "{what}: complete must be LeaseLost, got {done:?}"
        );
    }

    /// Asserts that `extend` with `token` is refused as a lost lease.
    pub async fn assert_extend_refused(&self, key: &StoreKey, token: &LeaseToken, what: &str) {
        let hour = Duration::from_secs(3600);
        let extended = self.store.extend(key, token, hour).await;
        assert!(
            matches!(extended, Err(Error::LeaseLost)),
            "{what}: extend must be LeaseLost, got {extended:?}"
        );
    }
}

/// A value for a message: its bytes when short, its length when long.
fn shown(value: Option<&[u8]>) -> String {
    match value {
        None => "nothing".to_owned(),
        Some(bytes) if bytes.len() <= 64 => format!("{:?}", Bytes::copy_from_slice(bytes)),
        Some(bytes) => format!("{} bytes", bytes.len()),
    }
}

/// A storage key no other test uses: a random prefix and a random key.
///
/// # Examples
/// ```
/// assert_ne!(idem_conformance::fresh_key(), idem_conformance::fresh_key());
/// ```
pub fn fresh_key() -> StoreKey {
    fresh_space().key(&Scope::global(), &random_key())
}

/// A key space with a random prefix, so cases never meet on a shared server.
pub(crate) fn fresh_space() -> KeySpace {
    KeySpace::new(format!("conformance:{}:", uuid::Uuid::new_v4().simple()))
        .expect("a uuid prefix is valid")
}

pub(crate) fn random_key() -> IdempotencyKey {
    IdempotencyKey::new(uuid::Uuid::new_v4().to_string()).expect("a uuid is a valid key")
}
