//! What a store keeps for one key, and its versioned binary encoding.
//!
//! Layout: the magic bytes `ID`, one version byte, then the record in
//! [postcard](https://docs.rs/postcard). Version 1 is the record without a
//! request id; version 2 is version 1's payload followed by the request id
//! (a postcard string). A record without a request id is still written as
//! version 1, so servers that read only version 1 keep reading it during a
//! rolling upgrade. Decoding borrows from the stored bytes, so a replayed
//! body is a slice of what the store returned, not a copy.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::{Error, Fingerprint, Result};

const MAGIC: [u8; 2] = *b"ID";
/// The record without a request id.
const VERSION_1: u8 = 1;
/// Version 1's payload, then the request id.
const VERSION_2: u8 = 2;
const HEADER_LEN: usize = MAGIC.len() + 1;
/// The longest request id kept, in bytes; a longer one is not kept.
pub(crate) const MAX_REQUEST_ID_LEN: usize = 255;

/// One key's record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// The fingerprint of the request that claimed the key.
    pub fingerprint: Fingerprint,
    /// When the key was claimed (or the record written), by the app server's clock.
    pub created_at: SystemTime,
    /// When the store will expire the record, as the writer expected by its own
    /// clock (the store's clock decides; this serves caches and hints).
    pub expires_at: SystemTime,
    /// Where the key is in its life.
    pub state: RecordState,
    /// The id of the request that claimed the key, if the caller gave one
    /// (the tower layer keeps the `x-request-id` header, or the trace id of
    /// a W3C `traceparent` header): a replay and a `409` name it, so the
    /// first request's logs can be found. At most 255 bytes of printable
    /// ASCII ([`Record::with_request_id`] drops others).
    pub request_id: Option<String>,
}

/// Where a key is in its life.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordState {
    /// A handler is running; its lease lasts `lease` from `created_at`.
    InProgress {
        /// The lease the claim was taken with.
        lease: Duration,
    },
    /// The handler finished and its response is kept.
    Completed(StoredResponse),
    /// The handler finished with `status`, but the response was too large to
    /// keep. A retry is told so and never runs the handler again.
    CompletedNotRetained {
        /// The status the handler answered with.
        status: u16,
    },
}

/// A response as it is kept for replay.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StoredResponse {
    /// The HTTP status code.
    pub status: u16,
    /// The replayable headers, names in lower case, in order.
    pub headers: Vec<(String, Bytes)>,
    /// The body.
    pub body: Bytes,
}

impl StoredResponse {
    /// The size the response takes in a record, roughly: body plus headers.
    pub fn size(&self) -> usize {
        self.body.len()
            + self
                .headers
                .iter()
                .map(|(n, v)| n.len() + v.len())
                .sum::<usize>()
    }
}

impl Record {
    /// A fresh in-progress record, as written by a claim.
    pub fn in_progress(fingerprint: Fingerprint, lease: Duration) -> Self {
        Self::new(fingerprint, RecordState::InProgress { lease }, lease)
    }

    /// A record created now that the store keeps for `ttl`.
    pub fn new(fingerprint: Fingerprint, state: RecordState, ttl: Duration) -> Self {
        let created_at = SystemTime::now();
        Self {
            fingerprint,
            created_at,
            expires_at: created_at.checked_add(ttl).unwrap_or(created_at),
            state,
            request_id: None,
        }
    }

    /// The record, naming the request that claimed the key. An id that is
    /// empty, over 255 bytes or not printable ASCII is not kept (`None`).
    ///
    /// # Examples
    /// ```
    /// use std::time::Duration;
    /// use idem_core::{Fingerprint, Record};
    ///
    /// let fp = Fingerprint::of_request("POST", "/pay", b"{}");
    /// let record = Record::in_progress(fp, Duration::from_secs(10)).with_request_id(Some("req-42"));
    /// let read = Record::decode(&record.encode())?;
    /// assert_eq!(read.request_id.as_deref(), Some("req-42"));
    /// # Ok::<(), idem_core::Error>(())
    /// ```
    pub fn with_request_id(mut self, id: Option<&str>) -> Self {
        self.request_id = id.filter(|id| is_request_id(id)).map(str::to_owned);
        self
    }

    /// How long until [`Record::expires_at`], by this machine's clock.
    pub fn time_to_live(&self) -> Duration {
        self.expires_at
            .duration_since(SystemTime::now())
            .unwrap_or_default()
    }

    /// Encodes the record.
    pub fn encode(&self) -> Bytes {
        let wire = WireRecord {
            fingerprint: self.fingerprint.as_bytes(),
            created_at_ms: millis_since_epoch(self.created_at),
            expires_at_ms: millis_since_epoch(self.expires_at),
            state: match &self.state {
                RecordState::InProgress { lease } => WireState::InProgress {
                    lease_ms: lease.as_millis().min(u64::MAX as u128) as u64,
                },
                RecordState::Completed(response) => WireState::Completed {
                    status: response.status,
                    headers: HeadersOut(&response.headers),
                    body: &response.body,
                },
                RecordState::CompletedNotRetained { status } => {
                    WireState::CompletedNotRetained { status: *status }
                }
            },
        };
        // Sized exactly (a counting pass costs less than an allocation):
        // a `Vec` as long as its capacity becomes `Bytes` without a second
        // allocation for its shared header.
        let size = HEADER_LEN
            + encoded_len(&wire)
            + self
                .request_id
                .as_ref()
                .map_or(0, |id| encoded_len(id.as_str()));
        let mut out = Vec::with_capacity(size);
        out.extend_from_slice(&MAGIC);
        out.push(if self.request_id.is_some() {
            VERSION_2
        } else {
            VERSION_1
        });
        let out = postcard::to_extend(&wire, out).expect("encoding into a Vec cannot fail");
        let out = match &self.request_id {
            Some(id) => {
                postcard::to_extend(&id.as_str(), out).expect("encoding into a Vec cannot fail")
            }
            None => out,
        };
        debug_assert_eq!(out.len(), size, "the record's length was counted wrong");
        Bytes::from(out)
    }

    /// Decodes bytes written by [`Record::encode`]. Bytes of another shape, or
    /// of an unknown version, give [`Error::CorruptRecord`]; decoding never
    /// panics. The body of the result shares `bytes`' memory.
    pub fn decode(bytes: &Bytes) -> Result<Self> {
        if bytes.len() < HEADER_LEN || bytes[..2] != MAGIC {
            return Err(Error::corrupt("not an idem record (bad magic)", None));
        }
        let version = bytes[2];
        if version != VERSION_1 && version != VERSION_2 {
            return Err(Error::corrupt(
                format!("unknown record version {version}"),
                None,
            ));
        }
        let payload = &bytes[HEADER_LEN..];
        let undecodable =
            |e: postcard::Error| Error::corrupt("undecodable record", Some(Box::new(e)));
        let (wire, rest): (WireRecord<'_>, &[u8]) =
            postcard::take_from_bytes(payload).map_err(undecodable)?;
        let (request_id, rest) = if version == VERSION_2 {
            let (id, rest): (&str, &[u8]) = postcard::take_from_bytes(rest).map_err(undecodable)?;
            if !is_request_id(id) {
                return Err(Error::corrupt(
                    "the request id is not printable ASCII",
                    None,
                ));
            }
            (Some(id.to_owned()), rest)
        } else {
            (None, rest)
        };
        if !rest.is_empty() {
            return Err(Error::corrupt("trailing bytes after the record", None));
        }
        let fingerprint = Fingerprint::from_bytes(
            wire.fingerprint
                .try_into()
                .map_err(|_| Error::corrupt("fingerprint is not 32 bytes", None))?,
        );
        let time = |ms: u64| {
            UNIX_EPOCH
                .checked_add(Duration::from_millis(ms))
                .ok_or_else(|| Error::corrupt("time out of range", None))
        };
        let created_at = time(wire.created_at_ms)?;
        let expires_at = time(wire.expires_at_ms)?;
        let state = match wire.state {
            WireState::InProgress { lease_ms } => RecordState::InProgress {
                lease: Duration::from_millis(lease_ms),
            },
            WireState::Completed {
                status,
                headers,
                body,
            } => RecordState::Completed(StoredResponse {
                status,
                headers: headers
                    .into_iter()
                    .map(|(n, v)| (n.to_owned(), bytes.slice_ref(v)))
                    .collect(),
                body: bytes.slice_ref(body),
            }),
            WireState::CompletedNotRetained { status } => {
                RecordState::CompletedNotRetained { status }
            }
        };
        Ok(Self {
            fingerprint,
            created_at,
            expires_at,
            state,
            request_id,
        })
    }

    /// Whether the record is finished (kept with or without its response).
    pub fn is_completed(&self) -> bool {
        !matches!(self.state, RecordState::InProgress { .. })
    }
}

/// Whether `id` can be kept as a request id: 1 to 255 bytes of printable
/// ASCII (no spaces, no control characters).
fn is_request_id(id: &str) -> bool {
    (1..=MAX_REQUEST_ID_LEN).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_graphic())
}

fn millis_since_epoch(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis().min(u64::MAX as u128) as u64)
        .unwrap_or(0)
}

/// The record on the wire. `H` is the headers: read as [`WireHeaders`],
/// written straight from the response's list ([`HeadersOut`]), with no list
/// of their own built first.
/// How many bytes postcard writes for `value` (a counting pass, no writes).
fn encoded_len<T: Serialize + ?Sized>(value: &T) -> usize {
    postcard::serialize_with_flavor(value, postcard::ser_flavors::Size::default())
        .expect("counting an encoding cannot fail")
}

#[derive(Serialize, Deserialize)]
struct WireRecord<'a, H = WireHeaders<'a>> {
    #[serde(borrow, with = "serde_bytes")]
    fingerprint: &'a [u8],
    created_at_ms: u64,
    expires_at_ms: u64,
    #[serde(borrow)]
    state: WireState<'a, H>,
}

/// The headers of a completed record, as read.
type WireHeaders<'a> = Vec<(&'a str, &'a serde_bytes::Bytes)>;

/// The headers of a completed record, as written: a sequence of
/// (name, bytes) pairs, the same encoding as [`WireHeaders`].
struct HeadersOut<'a>(&'a [(String, Bytes)]);

impl Serialize for HeadersOut<'_> {
    fn serialize<S: serde::Serializer>(
        &self,
        serializer: S,
    ) -> std::result::Result<S::Ok, S::Error> {
        serializer.collect_seq(
            self.0
                .iter()
                .map(|(n, v)| (n.as_str(), serde_bytes::Bytes::new(v))),
        )
    }
}

#[derive(Serialize, Deserialize)]
enum WireState<'a, H> {
    InProgress {
        lease_ms: u64,
    },
    Completed {
        status: u16,
        headers: H,
        #[serde(with = "serde_bytes")]
        body: &'a [u8],
    },
    CompletedNotRetained {
        status: u16,
    },
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sample() -> Record {
        Record {
            fingerprint: Fingerprint::of_request("POST", "/p", b"{}"),
            created_at: UNIX_EPOCH + Duration::from_millis(1_700_000_000_123),
            expires_at: UNIX_EPOCH + Duration::from_millis(1_700_086_400_123),
            state: RecordState::Completed(StoredResponse {
                status: 201,
                headers: vec![
                    (
                        "content-type".into(),
                        Bytes::from_static(b"application/json"),
                    ),
                    ("location".into(), Bytes::from_static(b"/p/1")),
                ],
                body: Bytes::from_static(b"{\"id\":1}"),
            }),
            request_id: None,
        }
    }

    #[test]
    fn round_trip_every_state() {
        let fp = Fingerprint::of_request("POST", "/", b"");
        for state in [
            RecordState::InProgress {
                lease: Duration::from_secs(60),
            },
            RecordState::CompletedNotRetained { status: 200 },
            sample().state,
        ] {
            let record = Record {
                fingerprint: fp,
                created_at: UNIX_EPOCH + Duration::from_millis(5),
                expires_at: UNIX_EPOCH + Duration::from_millis(60_005),
                state,
                request_id: None,
            };
            assert_eq!(Record::decode(&record.encode()).unwrap(), record);
        }
    }

    /// `sample()` as version 1 wrote it (before request ids), byte for
    /// byte, worked out by hand from postcard's format (magic, version, the
    /// fingerprint's 32 bytes, the two times as varints, `Completed`, 201,
    /// two headers, the body): such records, kept for up to the retention,
    /// still decode.
    const SAMPLE_V1: &[u8] = b"ID\x01\x20\x17\x13\x28\x982\x09\x1d\xafZ\x5e\xa8\x17\xe3\xb9\xa3o\x1f\x84\x0e\xa2\xed:\xe0\x92\x83\xd46\xb3\x2b\x1a\x16\
        \xde\xfb\xd0\x95\xff\xbc1\xfb\x88\xaf\xa8\xbd1\x01\xc9\x01\x02\x0ccontent-type\x10application/json\x08location\x04/p/1\x08{\x22id\x22:1}";

    #[test]
    fn an_old_format_record_still_decodes() {
        let read = Record::decode(&Bytes::from_static(SAMPLE_V1)).unwrap();
        assert_eq!(read, sample());
        assert_eq!(read.request_id, None);
        // A record without a request id is still written as version 1.
        assert_eq!(&sample().encode()[..], SAMPLE_V1);
    }

    #[test]
    fn a_request_id_is_kept_as_version_2() {
        let record = sample().with_request_id(Some("req-7f3a"));
        let bytes = record.encode();
        assert_eq!(bytes[2], 2);
        let read = Record::decode(&bytes).unwrap();
        assert_eq!(read.request_id.as_deref(), Some("req-7f3a"));
        assert_eq!(read, record);
        // Version 2 is version 1's payload, then the id.
        assert_eq!(&bytes[3..SAMPLE_V1.len()], &SAMPLE_V1[3..]);
    }

    #[test]
    fn an_unusable_request_id_is_not_kept() {
        for bad in ["", "has space", "tab\t", "é", "x".repeat(256).as_str()] {
            let record = sample().with_request_id(Some(bad));
            assert_eq!(record.request_id, None, "{bad:?}");
        }
        let longest = "x".repeat(255);
        let record = sample().with_request_id(Some(&longest));
        assert_eq!(
            Record::decode(&record.encode()).unwrap().request_id,
            Some(longest)
        );
    }

    #[test]
    fn decoded_body_shares_the_stored_bytes() {
        let bytes = sample().encode();
        let record = Record::decode(&bytes).unwrap();
        let RecordState::Completed(resp) = record.state else {
            panic!("not completed")
        };
        let range = bytes.as_ptr_range();
        assert!(range.contains(&resp.body.as_ptr()));
    }

    #[test]
    fn unknown_version_and_bad_magic_are_typed_errors() {
        let mut bytes = sample().encode().to_vec();
        bytes[2] = 99;
        assert!(matches!(
            Record::decode(&Bytes::from(bytes.clone())),
            Err(Error::CorruptRecord { .. })
        ));
        bytes[0] = b'X';
        assert!(matches!(
            Record::decode(&Bytes::from(bytes)),
            Err(Error::CorruptRecord { .. })
        ));
        assert!(Record::decode(&Bytes::new()).is_err());
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = Record::decode(&Bytes::from(data));
        }

        #[test]
        fn arbitrary_payload_after_a_valid_header_never_panics(
            data in proptest::collection::vec(any::<u8>(), 0..512)
        ) {
            let mut bytes = b"ID\x01".to_vec();
            bytes.extend(data);
            let _ = Record::decode(&Bytes::from(bytes));
        }

        #[test]
        fn truncated_or_flipped_records_never_panic(cut in 0usize..200, flip in 0usize..200, bit in 0u8..8) {
            let mut bytes = sample().encode().to_vec();
            if flip < bytes.len() { bytes[flip] ^= 1 << bit; }
            bytes.truncate(cut.min(bytes.len()));
            let _ = Record::decode(&Bytes::from(bytes));
        }

        #[test]
        fn round_trip_arbitrary_responses(
            status in 100u16..600,
            body in proptest::collection::vec(any::<u8>(), 0..2048),
            headers in proptest::collection::vec(("[a-z-]{1,20}", proptest::collection::vec(any::<u8>(), 0..40)), 0..6),
            ms in 0u64..4_000_000_000_000,
        ) {
            let record = Record {
                fingerprint: Fingerprint::of_request("POST", "/x", &body),
                created_at: UNIX_EPOCH + Duration::from_millis(ms),
                expires_at: UNIX_EPOCH + Duration::from_millis(ms + 1000),
                state: RecordState::Completed(StoredResponse {
                    status,
                    headers: headers.into_iter().map(|(n, v)| (n, Bytes::from(v))).collect(),
                    body: Bytes::from(body),
                }),
                request_id: None,
            };
            prop_assert_eq!(Record::decode(&record.encode()).unwrap(), record);
        }
    }
}
