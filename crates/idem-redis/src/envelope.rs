//! How a record is laid out in its Redis string.
//!
//! One byte says what kind of record it is; an in-progress record then
//! carries its 16-byte lease token; the caller's bytes follow, untouched.
//! Keeping the token inside the one string lets a claim stay one `SET`, and
//! lets the scripts compare the token with a plain prefix test.

use bytes::Bytes;
use idem_core::{Error, LeaseToken, Result};

/// Tag of an in-progress record (written by a claim).
const PENDING: u8 = b'P';
/// Tag of a plain record (written by `store` or `complete`).
const PLAIN: u8 = b'D';
/// Length of a pending record's header: tag and token.
pub(crate) const FENCE_LEN: usize = 1 + 16;

/// The prefix an in-progress record held by `token` starts with.
pub(crate) fn fence(token: &LeaseToken) -> [u8; FENCE_LEN] {
    let mut out = [0; FENCE_LEN];
    out[0] = PENDING;
    out[1..].copy_from_slice(token.as_bytes());
    out
}

/// An in-progress record held by `token`.
pub(crate) fn pending(token: &LeaseToken, value: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(FENCE_LEN + value.len());
    out.extend_from_slice(&fence(token));
    out.extend_from_slice(value);
    out
}

/// A plain record.
pub(crate) fn plain(value: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(1 + value.len());
    out.push(PLAIN);
    out.extend_from_slice(value);
    out
}

/// What a stored string whose first byte is `tag` holds: an in-progress
/// record (`Some(true)`), a plain one (`Some(false)`), or no idem-redis
/// record (`None`).
pub(crate) fn is_pending(tag: u8) -> Option<bool> {
    match tag {
        PENDING => Some(true),
        PLAIN => Some(false),
        _ => None,
    }
}

/// The caller's bytes in a stored string, sharing its memory.
pub(crate) fn open(raw: Vec<u8>) -> Result<Bytes> {
    let start = match raw.first() {
        Some(&PENDING) if raw.len() >= FENCE_LEN => FENCE_LEN,
        Some(&PLAIN) => 1,
        _ => {
            return Err(Error::corrupt(
                "the Redis value is not an idem-redis record",
                None,
            ));
        }
    };
    Ok(Bytes::from(raw).slice(start..))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_kinds_open_to_the_callers_bytes() {
        let token = LeaseToken::generate();
        assert_eq!(open(pending(&token, b"abc")).unwrap(), &b"abc"[..]);
        assert_eq!(open(plain(b"")).unwrap(), &b""[..]);
        assert!(pending(&token, b"x").starts_with(&fence(&token)));
        assert!(!plain(b"x").starts_with(&fence(&token)));
    }

    #[test]
    fn foreign_values_are_corrupt_not_panics() {
        for raw in [&b""[..], b"x", b"P123", b"\0"] {
            assert!(matches!(
                open(raw.to_vec()),
                Err(Error::CorruptRecord { .. })
            ));
        }
    }
}
