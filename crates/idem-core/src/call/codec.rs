//! A call's value or kept error as a [`StoredResponse`], marked by its
//! content type so that it is never mistaken for an HTTP response.

use bytes::Bytes;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{CallError, ErrorPolicy};
use crate::{Fingerprint, FingerprintBuilder, StoredResponse};

/// The content type of a call's value as stored: JSON.
pub const VALUE_CONTENT_TYPE: &str = "application/vnd.idem.value+json";
/// The content type of a call's kept error as stored.
pub const ERROR_CONTENT_TYPE: &str = "application/vnd.idem.error+json";

/// The status a stored value carries (what `idem get` shows).
const VALUE_STATUS: u16 = 200;
/// The status a stored error carries.
const ERROR_STATUS: u16 = 500;

/// The fingerprint of a call's input: a SHA-256 over a tag and the input's
/// JSON, with object keys in sorted order, so that a map's iteration order
/// does not change it.
pub(crate) fn fingerprint<I: Serialize + ?Sized>(input: &I) -> serde_json::Result<Fingerprint> {
    let canonical = serde_json::to_vec(&serde_json::to_value(input)?)?;
    let mut builder = FingerprintBuilder::new();
    builder.part(b"idem call").part(&canonical);
    Ok(builder.finish())
}

fn stored(status: u16, content_type: &'static str, body: Vec<u8>) -> StoredResponse {
    StoredResponse {
        status,
        headers: vec![(
            "content-type".to_owned(),
            Bytes::from_static(content_type.as_bytes()),
        )],
        body: body.into(),
    }
}

/// `value` as stored.
pub(crate) fn encode_value<T: Serialize>(value: &T) -> serde_json::Result<StoredResponse> {
    Ok(stored(
        VALUE_STATUS,
        VALUE_CONTENT_TYPE,
        serde_json::to_vec(value)?,
    ))
}

/// A kept `error` as stored.
pub(crate) fn encode_error<E, P: ErrorPolicy<E>>(
    policy: &P,
    error: &E,
) -> Result<StoredResponse, crate::BoxError> {
    Ok(stored(
        ERROR_STATUS,
        ERROR_CONTENT_TYPE,
        policy.encode(error)?,
    ))
}

/// Reads back what [`encode_value`] or [`encode_error`] stored: `Ok(value)`,
/// or the kept error as [`CallError::Replayed`].
pub(crate) fn decode<T, E, P>(policy: &P, response: &StoredResponse) -> Result<T, CallError<E>>
where
    T: DeserializeOwned,
    P: ErrorPolicy<E>,
{
    let content_type = response
        .headers
        .iter()
        .find(|(name, _)| name == "content-type")
        .map(|(_, value)| value.as_ref());
    match content_type {
        Some(t) if t == VALUE_CONTENT_TYPE.as_bytes() => serde_json::from_slice(&response.body)
            .map_err(|e| CallError::Decode {
                reason: "the stored value is not of this call's type",
                source: Some(Box::new(e)),
            }),
        Some(t) if t == ERROR_CONTENT_TYPE.as_bytes() => match policy.decode(&response.body) {
            Ok(error) => Err(CallError::Replayed(error)),
            Err(source) => Err(CallError::Decode {
                reason: "the stored error cannot be read by this call's error policy",
                source: Some(source),
            }),
        },
        _ => Err(CallError::Decode {
            reason: "the key holds a response that is not a call's value (an HTTP response?)",
            source: None,
        }),
    }
}
