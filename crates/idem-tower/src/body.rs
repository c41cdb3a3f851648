//! Buffering bodies: the request's for the fingerprint, the response's to keep it.

use bytes::Bytes;
use http::{HeaderMap, header};
use http_body::Body;
use http_body_util::{BodyExt, LengthLimitError, Limited};
use idem_core::BoxError;

/// Why a request body could not be buffered.
#[derive(Debug)]
pub(crate) enum BufferError {
    /// Over the limit (by `Content-Length` or by what arrived).
    TooLarge,
    /// The body failed (the client went away mid-upload, bad framing).
    Unreadable(BoxError),
}

/// Reads the whole request body, refusing more than `limit` bytes.
pub(crate) async fn buffer_request<B>(
    headers: &HeaderMap,
    body: B,
    limit: usize,
) -> Result<Bytes, BufferError>
where
    B: Body,
    B::Error: Into<BoxError>,
{
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > limit as u64) {
        return Err(BufferError::TooLarge);
    }
    match Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.is::<LengthLimitError>() => Err(BufferError::TooLarge),
        Err(e) => Err(BufferError::Unreadable(e)),
    }
}

/// Reads the whole response body.
pub(crate) async fn buffer_response<B>(body: B) -> Result<Bytes, BoxError>
where
    B: Body,
    B::Error: Into<BoxError>,
{
    body.collect()
        .await
        .map(|c| c.to_bytes())
        .map_err(Into::into)
}
