//! The request fingerprint: what makes two requests "the same payload".

use std::fmt;

use sha2::{Digest, Sha256};

/// A SHA-256 over the parts of a request that must match for a replay.
///
/// Two requests with one key but different fingerprints get a mismatch
/// (`422`), never each other's response.
///
/// # Examples
/// ```
/// use idem_core::Fingerprint;
/// let a = Fingerprint::of_request("POST", "/payments?x=1", br#"{"amount":1}"#);
/// let b = Fingerprint::of_request("POST", "/payments?x=1", br#"{"amount":2}"#);
/// assert_ne!(a, b);
/// assert_eq!(a, Fingerprint::of_request("POST", "/payments?x=1", br#"{"amount":1}"#));
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Fingerprint([u8; 32]);

impl Fingerprint {
    /// Wraps a digest computed elsewhere.
    pub const fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// The digest's bytes.
    pub const fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Hashes the method, the path with its query, and the body.
    ///
    /// Each part is length-prefixed, so moving bytes between parts changes
    /// the fingerprint.
    pub fn of_request(method: &str, path_and_query: &str, body: &[u8]) -> Self {
        let mut hasher = FingerprintBuilder::new();
        hasher.part(method.as_bytes());
        hasher.part(path_and_query.as_bytes());
        hasher.part(body);
        hasher.finish()
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Fingerprint({})", hex::encode(&self.0[..8]))
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

/// Builds a [`Fingerprint`] from any number of length-prefixed parts, for
/// callers that fingerprint more than method, path and body.
///
/// # Examples
/// ```
/// use idem_core::FingerprintBuilder;
/// let mut b = FingerprintBuilder::new();
/// b.part(b"POST");
/// b.part(b"/payments");
/// let fp = b.finish();
/// # let _ = fp;
/// ```
#[derive(Debug, Clone, Default)]
pub struct FingerprintBuilder(Sha256);

impl FingerprintBuilder {
    /// An empty builder.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds one part.
    pub fn part(&mut self, bytes: &[u8]) -> &mut Self {
        self.0.update((bytes.len() as u64).to_be_bytes());
        self.0.update(bytes);
        self
    }

    /// The fingerprint of every part added.
    pub fn finish(self) -> Fingerprint {
        Fingerprint(self.0.finalize().into())
    }
}
