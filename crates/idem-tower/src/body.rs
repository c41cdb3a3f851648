//! Buffering bodies: the request's for the fingerprint, the response's to keep it.

use std::pin::pin;

use bytes::{Buf, Bytes, BytesMut};
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
    match collect(Limited::new(body, limit)).await {
        Ok(bytes) => Ok(bytes),
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
    collect(body).await.map_err(Into::into)
}

/// The body's data, trailers dropped. A body that comes in one chunk (a
/// handler's `Full` body, a small request) is that chunk, not a copy, and
/// nothing is allocated to gather it; `BodyExt::collect` would allocate a
/// list of chunks and its trailers' map on every request.
async fn collect<B: Body>(body: B) -> Result<Bytes, B::Error> {
    let mut body = pin!(body);
    let mut first = Bytes::new();
    let mut gathered: Option<BytesMut> = None;
    while let Some(frame) = body.frame().await {
        let Ok(mut data) = frame?.into_data() else {
            continue;
        };
        let chunk = data.copy_to_bytes(data.remaining());
        match &mut gathered {
            Some(all) => all.extend_from_slice(&chunk),
            None if first.is_empty() => first = chunk,
            None => {
                let mut all = BytesMut::with_capacity(first.len() + chunk.len());
                all.extend_from_slice(&first);
                all.extend_from_slice(&chunk);
                gathered = Some(all);
            }
        }
    }
    Ok(gathered.map_or(first, BytesMut::freeze))
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;

    use http_body::Frame;
    use http_body_util::{Full, StreamBody};

    use super::*;

    fn chunked(
        chunks: &[&'static str],
    ) -> StreamBody<impl futures::Stream<Item = Result<Frame<Bytes>, Infallible>>> {
        let frames: Vec<_> = chunks
            .iter()
            .map(|c| Ok(Frame::data(Bytes::from_static(c.as_bytes()))))
            .chain([Ok(Frame::trailers(HeaderMap::new()))])
            .collect();
        StreamBody::new(futures::stream::iter(frames))
    }

    #[tokio::test]
    async fn one_chunk_is_kept_as_is() {
        let chunk = Bytes::from(vec![b'x'; 100]);
        let body = buffer_response(Full::new(chunk.clone())).await.unwrap();
        assert_eq!(body, chunk);
        assert_eq!(body.as_ptr(), chunk.as_ptr(), "the chunk was copied");
    }

    #[tokio::test]
    async fn chunks_are_joined_in_order_and_trailers_dropped() {
        let body = buffer_response(chunked(&["ab", "", "cd", "e"]))
            .await
            .unwrap();
        assert_eq!(body, "abcde");
        let body = buffer_response(chunked(&["", "only"])).await.unwrap();
        assert_eq!(body, "only");
        let body = buffer_response(chunked(&[])).await.unwrap();
        assert!(body.is_empty());
    }

    #[tokio::test]
    async fn the_limit_counts_every_chunk() {
        let headers = HeaderMap::new();
        let body = buffer_request(&headers, chunked(&["abc", "de"]), 5).await;
        assert_eq!(body.ok().as_deref(), Some(&b"abcde"[..]));
        let body = buffer_request(&headers, chunked(&["abc", "def"]), 5).await;
        assert!(matches!(body, Err(BufferError::TooLarge)));
    }
}
