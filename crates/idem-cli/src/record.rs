//! `get` and `delete`: one record, by scope and key.

use std::fmt;
use std::time::SystemTime;

use bytes::Bytes;
use idem::{IdempotencyKey, Record, RecordState, Scope, StoreKey};
use serde::Serialize;

use crate::{CliError, Result, Target};

/// A record as `get` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct RecordView {
    /// The scope asked for.
    pub scope: String,
    /// The key asked for.
    pub key: String,
    /// The storage key they map to.
    pub store_key: String,
    /// `in_progress`, `completed` or `completed_not_retained`.
    pub state: &'static str,
    /// The request fingerprint, in hex.
    pub fingerprint: String,
    /// The stored status (none while in progress).
    pub status: Option<u16>,
    /// The stored headers (lossy UTF-8 values).
    pub headers: Vec<Header>,
    /// The stored body's size in bytes (none unless completed with a response).
    pub body_size: Option<usize>,
    /// The lease of an in-progress record, in milliseconds.
    pub lease_ms: Option<u64>,
    /// The id of the request that made the record (its `x-request-id`, or
    /// its trace id), if the layer kept one.
    pub request_id: Option<String>,
    /// When the record was written (RFC 3339, by the writer's clock).
    pub created: String,
    /// When the writer expected it to expire (the store's clock decides).
    pub expires: String,
    /// The stored body.
    #[serde(skip)]
    pub body: Bytes,
}

/// One stored header.
#[derive(Debug, Clone, Serialize)]
pub struct Header {
    /// The name, lower case.
    pub name: String,
    /// The value (lossy UTF-8).
    pub value: String,
}

/// What `delete` did.
#[derive(Debug, Clone, Serialize)]
pub struct Deleted {
    /// The scope asked for.
    pub scope: String,
    /// The key asked for.
    pub key: String,
    /// Whether a live record existed (and is now gone).
    pub existed: bool,
}

/// The storage key of `key` in `scope`, built as the layer builds it.
///
/// # Errors
/// [`idem::Error::InvalidKey`] for a key or scope the protocol refuses.
pub fn store_key(target: &Target, scope: &str, key: &str) -> Result<StoreKey> {
    let scope = Scope::new(scope).map_err(idem::Error::from)?;
    let key = IdempotencyKey::new(key).map_err(idem::Error::from)?;
    Ok(target.space().key(&scope, &key))
}

/// Reads the live record of `key` in `scope`.
///
/// # Errors
/// [`CliError::NotFound`] when there is none; the store's error, or
/// [`idem::Error::CorruptRecord`] for bytes that are not a record.
pub async fn get(target: &Target, scope: &str, key: &str) -> Result<RecordView> {
    let store_key = store_key(target, scope, key)?;
    let Some(bytes) = target.store().find(&store_key).await? else {
        return Err(CliError::NotFound {
            scope: scope.into(),
            key: key.into(),
        });
    };
    let record = Record::decode(&bytes)?;
    let (state, status, headers, body, lease_ms) = match record.state {
        RecordState::InProgress { lease } => (
            "in_progress",
            None,
            Vec::new(),
            None,
            Some(lease.as_millis() as u64),
        ),
        RecordState::Completed(response) => (
            "completed",
            Some(response.status),
            response.headers,
            Some(response.body),
            None,
        ),
        RecordState::CompletedNotRetained { status } => (
            "completed_not_retained",
            Some(status),
            Vec::new(),
            None,
            None,
        ),
    };
    Ok(RecordView {
        scope: scope.into(),
        key: key.into(),
        store_key: store_key.to_string(),
        state,
        fingerprint: record.fingerprint.to_string(),
        status,
        headers: headers
            .into_iter()
            .map(|(name, value)| Header {
                name,
                value: String::from_utf8_lossy(&value).into_owned(),
            })
            .collect(),
        body_size: body.as_ref().map(Bytes::len),
        lease_ms,
        request_id: record.request_id.clone(),
        created: time(record.created_at),
        expires: time(record.expires_at),
        body: body.unwrap_or_default(),
    })
}

/// Deletes the record of `key` in `scope`, whatever its state.
///
/// # Errors
/// The store's error.
pub async fn delete(target: &Target, scope: &str, key: &str) -> Result<Deleted> {
    let store_key = store_key(target, scope, key)?;
    let existed = target.store().remove(&store_key).await?;
    Ok(Deleted {
        scope: scope.into(),
        key: key.into(),
        existed,
    })
}

fn time(at: SystemTime) -> String {
    humantime::format_rfc3339_millis(at).to_string()
}

fn or_global(scope: &str) -> &str {
    if scope.is_empty() { "(global)" } else { scope }
}

impl fmt::Display for RecordView {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "key          {}", self.key)?;
        writeln!(f, "scope        {}", or_global(&self.scope))?;
        writeln!(f, "store key    {}", self.store_key)?;
        writeln!(f, "state        {}", self.state.replace('_', " "))?;
        writeln!(f, "fingerprint  {}", self.fingerprint)?;
        match self.status {
            Some(status) => writeln!(f, "status       {status}")?,
            None => writeln!(f, "status       -")?,
        }
        if let Some(lease) = self.lease_ms {
            writeln!(f, "lease        {lease} ms")?;
        }
        for (i, header) in self.headers.iter().enumerate() {
            let label = if i == 0 { "headers" } else { "" };
            writeln!(f, "{label:<13}{}: {}", header.name, header.value)?;
        }
        match self.body_size {
            Some(size) => writeln!(f, "body size    {size} bytes")?,
            None if self.status.is_some() => writeln!(f, "body size    - (not retained)")?,
            None => writeln!(f, "body size    -")?,
        }
        if let Some(id) = &self.request_id {
            writeln!(f, "request id   {id}")?;
        }
        writeln!(f, "created      {}", self.created)?;
        write!(f, "expires      {}", self.expires)
    }
}

impl fmt::Display for Deleted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scope = or_global(&self.scope);
        if self.existed {
            write!(
                f,
                "deleted the record of key {:?} in scope {scope}",
                self.key
            )
        } else {
            write!(
                f,
                "no record of key {:?} in scope {scope}: nothing deleted",
                self.key
            )
        }
    }
}
