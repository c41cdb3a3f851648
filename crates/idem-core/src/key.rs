//! Idempotency keys, scopes, and the storage keys built from them.

use std::fmt;

/// The longest idempotency key accepted, in characters (the IETF draft leaves
/// it to the server; Stripe allows 255).
pub const MAX_KEY_LEN: usize = 255;
/// The longest scope accepted, in bytes.
pub const MAX_SCOPE_LEN: usize = 256;
/// The longest key prefix accepted, in bytes.
pub const MAX_PREFIX_LEN: usize = 64;
/// The longest storage key that can be built, in bytes. Backends size their
/// key columns for it (SQL Server's index keys stop at 900 bytes).
pub const MAX_STORE_KEY_LEN: usize = MAX_PREFIX_LEN + 4 + MAX_SCOPE_LEN + 1 + MAX_KEY_LEN;
/// The default key prefix.
pub const DEFAULT_PREFIX: &str = "idempotency:";

/// Why a key, a scope or a prefix was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// The key is the empty string.
    #[error("the key is empty")]
    Empty,
    /// The key is longer than [`MAX_KEY_LEN`].
    #[error("the key is {len} characters long; at most {max} are allowed")]
    TooLong {
        /// The key's length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The key has a character outside printable ASCII (`0x20..=0x7E`).
    #[error("the key has a character that is not printable ASCII at position {position}")]
    InvalidCharacter {
        /// Byte offset of the first bad character.
        position: usize,
    },
    /// The scope is too long or has a control character.
    #[error("invalid scope: {0}")]
    InvalidScope(&'static str),
    /// The prefix is too long or has a character outside printable ASCII.
    #[error("invalid key prefix: {0}")]
    InvalidPrefix(&'static str),
}

/// A client's idempotency key, validated.
///
/// Non-empty, at most [`MAX_KEY_LEN`] characters, each printable ASCII
/// (`0x20..=0x7E`), which is what the draft's structured-field string can carry.
///
/// # Examples
/// ```
/// use idem_core::IdempotencyKey;
/// let key = IdempotencyKey::new("8e03978e-40d5-43e8-bc93-6894a57f9324").unwrap();
/// assert_eq!(key.as_str(), "8e03978e-40d5-43e8-bc93-6894a57f9324");
/// assert!(IdempotencyKey::new("").is_err());
/// assert!(IdempotencyKey::new("tab\there").is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    /// Validates `key`.
    pub fn new(key: impl Into<String>) -> Result<Self, KeyError> {
        let key = key.into();
        if key.is_empty() {
            return Err(KeyError::Empty);
        }
        if let Some(position) = key.bytes().position(|b| !(0x20..=0x7e).contains(&b)) {
            return Err(KeyError::InvalidCharacter { position });
        }
        if key.len() > MAX_KEY_LEN {
            return Err(KeyError::TooLong {
                len: key.len(),
                max: MAX_KEY_LEN,
            });
        }
        Ok(Self(key))
    }

    /// The key as the client sent it.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for IdempotencyKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Who a key belongs to: a tenant, a principal, a route, or a mix of them.
///
/// Two requests with the same key but different scopes never meet. Any UTF-8
/// without control characters, at most [`MAX_SCOPE_LEN`] bytes; the empty
/// scope is allowed (one global key space).
///
/// # Examples
/// ```
/// use idem_core::Scope;
/// let scope = Scope::new("tenant-42 POST /payments").unwrap();
/// assert_eq!(scope.as_str(), "tenant-42 POST /payments");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Scope(String);

impl Scope {
    /// Validates `scope`.
    pub fn new(scope: impl Into<String>) -> Result<Self, KeyError> {
        let scope = scope.into();
        if scope.len() > MAX_SCOPE_LEN {
            return Err(KeyError::InvalidScope("longer than 256 bytes"));
        }
        if scope.chars().any(char::is_control) {
            return Err(KeyError::InvalidScope("has a control character"));
        }
        Ok(Self(scope))
    }

    /// The empty scope: one key space for everyone.
    pub fn global() -> Self {
        Self::default()
    }

    /// The scope as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The namespace every storage key is built in: a prefix, default
/// [`DEFAULT_PREFIX`].
///
/// # Examples
/// ```
/// use idem_core::{IdempotencyKey, KeySpace, Scope};
/// let space = KeySpace::default();
/// let key = space.key(&Scope::new("alice").unwrap(), &IdempotencyKey::new("k1").unwrap());
/// assert_eq!(key.as_str(), "idempotency:5:alice:k1");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeySpace {
    prefix: String,
}

impl Default for KeySpace {
    fn default() -> Self {
        Self {
            prefix: DEFAULT_PREFIX.to_owned(),
        }
    }
}

impl KeySpace {
    /// A key space with its own prefix (printable ASCII, at most
    /// [`MAX_PREFIX_LEN`] bytes, may be empty).
    pub fn new(prefix: impl Into<String>) -> Result<Self, KeyError> {
        let prefix = prefix.into();
        if prefix.len() > MAX_PREFIX_LEN {
            return Err(KeyError::InvalidPrefix("longer than 64 bytes"));
        }
        if !prefix.bytes().all(|b| (0x20..=0x7e).contains(&b)) {
            return Err(KeyError::InvalidPrefix("not printable ASCII"));
        }
        Ok(Self { prefix })
    }

    /// The prefix.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The storage key for `key` in `scope`: `{prefix}{scope length}:{scope}:{key}`.
    ///
    /// The scope's length is written out so that no choice of scope and key
    /// can produce another pair's storage key.
    pub fn key(&self, scope: &Scope, key: &IdempotencyKey) -> StoreKey {
        // Built by hand rather than with `format!`: it runs on every
        // request, and the formatting machinery cost more than the copies.
        let (scope, key) = (scope.as_str(), key.as_str());
        let mut len = itoa::Buffer::new();
        let len = len.format(scope.len());
        let mut text =
            String::with_capacity(self.prefix.len() + len.len() + scope.len() + key.len() + 2);
        for part in [self.prefix.as_str(), len, ":", scope, ":", key] {
            text.push_str(part);
        }
        StoreKey(text)
    }
}

/// A key as a store sees it: already validated, prefixed and scoped, at most
/// [`MAX_STORE_KEY_LEN`] bytes of UTF-8.
///
/// Built by [`KeySpace::key`]; [`StoreKey::parse`] rebuilds one from text
/// a store handed back (for tools that list or purge).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StoreKey(String);

impl StoreKey {
    /// Accepts any non-empty text up to [`MAX_STORE_KEY_LEN`] bytes, for callers
    /// that manage their own key layout (the classic `find`/`store` use).
    ///
    /// # Examples
    /// ```
    /// use idem_core::StoreKey;
    /// assert!(StoreKey::parse("orders:1234").is_ok());
    /// assert!(StoreKey::parse("").is_err());
    /// ```
    pub fn parse(key: impl Into<String>) -> Result<Self, KeyError> {
        let key = key.into();
        if key.is_empty() {
            return Err(KeyError::Empty);
        }
        if key.len() > MAX_STORE_KEY_LEN {
            return Err(KeyError::TooLong {
                len: key.len(),
                max: MAX_STORE_KEY_LEN,
            });
        }
        Ok(Self(key))
    }

    /// The key as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for StoreKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_limits() {
        assert!(IdempotencyKey::new("a".repeat(255)).is_ok());
        assert_eq!(
            IdempotencyKey::new("a".repeat(256)),
            Err(KeyError::TooLong { len: 256, max: 255 })
        );
        assert_eq!(IdempotencyKey::new(""), Err(KeyError::Empty));
        assert_eq!(
            IdempotencyKey::new("ab\u{7f}"),
            Err(KeyError::InvalidCharacter { position: 2 })
        );
        assert_eq!(
            IdempotencyKey::new("é"),
            Err(KeyError::InvalidCharacter { position: 0 })
        );
        assert!(IdempotencyKey::new(r#"'"%*:{}\ x"#).is_ok());
    }

    #[test]
    fn scoped_keys_never_collide() {
        let space = KeySpace::default();
        let a = space.key(
            &Scope::new("a:1").unwrap(),
            &IdempotencyKey::new("x").unwrap(),
        );
        let b = space.key(
            &Scope::new("a").unwrap(),
            &IdempotencyKey::new("1:x").unwrap(),
        );
        assert_ne!(a, b);
    }

    #[test]
    fn longest_parts_fit_the_store_key_limit() {
        let space = KeySpace::new("p".repeat(MAX_PREFIX_LEN)).unwrap();
        let key = space.key(
            &Scope::new("s".repeat(MAX_SCOPE_LEN)).unwrap(),
            &IdempotencyKey::new("k".repeat(MAX_KEY_LEN)).unwrap(),
        );
        assert!(key.as_str().len() <= MAX_STORE_KEY_LEN);
        assert!(StoreKey::parse(key.as_str()).is_ok());
    }

    #[test]
    fn bad_scopes_and_prefixes() {
        assert!(Scope::new("x".repeat(257)).is_err());
        assert!(Scope::new("a\nb").is_err());
        assert!(KeySpace::new("é").is_err());
        assert!(KeySpace::new("p".repeat(65)).is_err());
    }
}
