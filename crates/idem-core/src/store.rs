//! The storage trait every backend implements.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;

use crate::{Error, KeySpace, Result, StoreKey, StoreStats};

/// Proof that the caller holds a key's claim. Fresh and unique for every
/// successful [`IdempotencyStore::claim`]; [`extend`](IdempotencyStore::extend),
/// [`complete`](IdempotencyStore::complete) and
/// [`release`](IdempotencyStore::release) only act while it still matches.
///
/// # Examples
/// ```
/// use idem_core::LeaseToken;
/// let a = LeaseToken::generate();
/// let b = LeaseToken::generate();
/// assert_ne!(a, b);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LeaseToken(uuid::Uuid);

impl LeaseToken {
    /// A new random token (a version 4 UUID).
    pub fn generate() -> Self {
        Self(uuid::Uuid::new_v4())
    }

    /// The token's 16 bytes, for backends that store it as binary.
    pub fn as_bytes(&self) -> &[u8; 16] {
        self.0.as_bytes()
    }
}

impl fmt::Display for LeaseToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0.as_hyphenated(), f)
    }
}

/// What [`IdempotencyStore::claim`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// The key was absent or expired: the caller now holds it with this token.
    Acquired(LeaseToken),
    /// A live record exists (in progress or completed); nothing was written.
    /// These are its bytes, as given to `claim` or `complete`.
    Existing(Bytes),
}

/// A key-value store that can run the idempotency protocol safely.
///
/// Values are opaque bytes; the protocol engine ([`crate::Idempotency`])
/// decides what they mean. Every record has an expiry. **An expired record
/// is invisible to every method**, whether or not the backend has deleted it
/// yet. Where the backend has a clock of its own (Redis, SQL servers), expiry
/// is computed by that clock, so app servers with skewed clocks agree.
///
/// A record is either *in progress* (written by [`claim`](Self::claim), holding a
/// lease token) or *plain* (written by [`store`](Self::store) or
/// [`complete`](Self::complete), holding none).
///
/// Errors: a store that cannot be reached returns [`crate::Error::Unavailable`],
/// never "absent". The conformance suite (`idem-conformance`) checks every
/// sentence of this contract; a backend passes it or is not done.
#[async_trait]
pub trait IdempotencyStore: Send + Sync + fmt::Debug {
    /// Reads the value of a live record.
    ///
    /// # Behaviour
    /// Returns the bytes last written for `key` by `claim`, `store` or
    /// `complete`, or `None` if there is no record or it has expired.
    async fn find(&self, key: &StoreKey) -> Result<Option<Bytes>>;

    /// Writes `value` under `key`, live for `ttl` (an upsert).
    ///
    /// # Behaviour
    /// Replaces any record, in progress or not, and clears its lease token.
    /// The record expires `ttl` after the write. A zero `ttl` is rounded up to
    /// the backend's smallest expiry (one millisecond or one second).
    async fn store(&self, key: &StoreKey, value: Bytes, ttl: Duration) -> Result<()>;

    /// Deletes the record under `key`.
    ///
    /// # Behaviour
    /// Returns whether a live record was deleted. Deleting an absent or expired
    /// key is not an error.
    async fn remove(&self, key: &StoreKey) -> Result<bool>;

    /// Whether a live record exists under `key`.
    async fn exists(&self, key: &StoreKey) -> Result<bool>;

    /// Takes the key for one caller, if nobody holds it.
    ///
    /// # Behaviour
    /// **Atomic**: if `key` is absent or expired, writes `pending` with a fresh
    /// [`LeaseToken`], live for `lease`, and returns [`Claim::Acquired`]. If a
    /// live record exists (in progress or plain), writes nothing and returns
    /// [`Claim::Existing`] with its bytes. However many callers race on one key,
    /// on however many processes, exactly one acquires it.
    async fn claim(&self, key: &StoreKey, pending: Bytes, lease: Duration) -> Result<Claim>;

    /// Renews the caller's claim: its lease now ends `lease` from now.
    ///
    /// # Behaviour
    /// **Atomic and fenced**: only if the live record under `key` is in progress
    /// with `token`, sets its expiry to `lease` after this call (by the
    /// backend's clock; it may shorten the lease as well as lengthen it),
    /// leaving its bytes and token as they are. Otherwise (the lease expired,
    /// the key was claimed again, completed, removed, or stored over) writes
    /// nothing and returns [`crate::Error::LeaseLost`]; an expired claim is
    /// never brought back.
    async fn extend(&self, key: &StoreKey, token: &LeaseToken, lease: Duration) -> Result<()>;

    /// Swaps the caller's in-progress record for its final value.
    ///
    /// # Behaviour
    /// **Atomic and fenced**: only if the live record under `key` is in progress
    /// with `token`, replaces it by the plain record `value`, live for
    /// `ttl`. Otherwise (the lease expired, the key was claimed again, removed,
    /// or stored over) writes nothing and returns [`crate::Error::LeaseLost`].
    async fn complete(
        &self,
        key: &StoreKey,
        token: &LeaseToken,
        value: Bytes,
        ttl: Duration,
    ) -> Result<()>;

    /// Gives the key back without a result.
    ///
    /// # Behaviour
    /// **Atomic and fenced**: deletes the record only if it is in progress with
    /// `token`, and returns whether it did. Any other record is left alone.
    async fn release(&self, key: &StoreKey, token: &LeaseToken) -> Result<bool>;

    /// Counts the records whose storage key starts with `space`'s prefix
    /// (an optional ability, for operators: the `idem stats` command).
    ///
    /// # Behaviour
    /// Live records are counted as in progress or completed (plain); a store
    /// that keeps expired records until a purge also counts those. The
    /// counts are a snapshot taken while other callers write, not a
    /// transaction: a record may be counted in neither state, or, on a store
    /// that scans, twice. It costs a scan of the records (O(n) in the
    /// records the store holds, or in the keys of a Redis database); run it
    /// for operators, not on a request path.
    ///
    /// # Errors
    /// [`Error::Unsupported`] for a store that cannot count (the default);
    /// [`Error::Unavailable`] when the store cannot be reached.
    async fn stats(&self, space: &KeySpace) -> Result<StoreStats> {
        let _ = space;
        Err(Error::unsupported(self.backend(), "stats"))
    }

    /// The backend's short name (`memory`, `sqlite`, `postgres`, `mysql`,
    /// `redis`, `mssql`): the `backend` label of the engine's
    /// `idem_store_duration_seconds` histogram, and the name in errors.
    ///
    /// # Behaviour
    /// A constant. By default, the name of the implementing type without its
    /// path and generic parameters (`MyStore`); the stores here override it,
    /// and a wrapper (a memory tier, a test double) gives its inner store's.
    fn backend(&self) -> &'static str {
        type_name_of::<Self>()
    }
}

/// The last path segment of `T`'s type name, without generic parameters.
pub(crate) fn type_name_of<T: ?Sized>() -> &'static str {
    let name = std::any::type_name::<T>();
    let name = name.split('<').next().unwrap_or(name);
    name.rsplit("::").next().unwrap_or(name)
}

/// A call's future as `#[async_trait]` declares it: boxed, `Send`, living
/// as long as the call's borrows.
type Call<'a, T> = Pin<Box<dyn Future<Output = Result<T>> + Send + 'a>>;

/// Forwards to the shared store. Written out rather than with
/// `#[async_trait]`, which would box each call's future once more around the
/// inner store's own box; this hands that box back as it is.
impl<S: IdempotencyStore + ?Sized> IdempotencyStore for std::sync::Arc<S> {
    fn find<'s, 'k, 'c>(&'s self, key: &'k StoreKey) -> Call<'c, Option<Bytes>>
    where
        's: 'c,
        'k: 'c,
        Self: 'c,
    {
        (**self).find(key)
    }
    fn store<'s, 'k, 'c>(&'s self, key: &'k StoreKey, value: Bytes, ttl: Duration) -> Call<'c, ()>
    where
        's: 'c,
        'k: 'c,
        Self: 'c,
    {
        (**self).store(key, value, ttl)
    }
    fn remove<'s, 'k, 'c>(&'s self, key: &'k StoreKey) -> Call<'c, bool>
    where
        's: 'c,
        'k: 'c,
        Self: 'c,
    {
        (**self).remove(key)
    }
    fn exists<'s, 'k, 'c>(&'s self, key: &'k StoreKey) -> Call<'c, bool>
    where
        's: 'c,
        'k: 'c,
        Self: 'c,
    {
        (**self).exists(key)
    }
    fn claim<'s, 'k, 'c>(
        &'s self,
        key: &'k StoreKey,
        pending: Bytes,
        lease: Duration,
    ) -> Call<'c, Claim>
    where
        's: 'c,
        'k: 'c,
        Self: 'c,
    {
        (**self).claim(key, pending, lease)
    }
    fn extend<'s, 'k, 't, 'c>(
        &'s self,
        key: &'k StoreKey,
        token: &'t LeaseToken,
        lease: Duration,
    ) -> Call<'c, ()>
    where
        's: 'c,
        'k: 'c,
        't: 'c,
        Self: 'c,
    {
        (**self).extend(key, token, lease)
    }
    fn complete<'s, 'k, 't, 'c>(
        &'s self,
        key: &'k StoreKey,
        token: &'t LeaseToken,
        value: Bytes,
        ttl: Duration,
    ) -> Call<'c, ()>
    where
        's: 'c,
        'k: 'c,
        't: 'c,
        Self: 'c,
    {
        (**self).complete(key, token, value, ttl)
    }
    fn release<'s, 'k, 't, 'c>(&'s self, key: &'k StoreKey, token: &'t LeaseToken) -> Call<'c, bool>
    where
        's: 'c,
        'k: 'c,
        't: 'c,
        Self: 'c,
    {
        (**self).release(key, token)
    }
    fn stats<'s, 'k, 'c>(&'s self, space: &'k KeySpace) -> Call<'c, StoreStats>
    where
        's: 'c,
        'k: 'c,
        Self: 'c,
    {
        (**self).stats(space)
    }
    fn backend(&self) -> &'static str {
        (**self).backend()
    }
}

/// An optional ability: deleting expired records in bulk.
///
/// Stores whose backend expires records by itself (Redis, moka) do not need
/// it. SQL stores implement it; the conformance suite checks it where a test
/// setup says it exists.
#[async_trait]
pub trait PurgeExpired: IdempotencyStore {
    /// Deletes every expired record and returns how many were deleted.
    async fn purge_expired(&self) -> Result<u64>;
}
