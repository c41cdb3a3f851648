//! Counting the records, for operators ([`IdempotencyStore::stats`]).
//!
//! [`IdempotencyStore::stats`]: idem_core::IdempotencyStore::stats

use idem_core::{Error, KeySpace, Result, StoreStats};
use redis::Value;
use tokio::task::JoinSet;

use super::RedisStore;
use crate::Topology;
use crate::envelope;
use crate::error::BACKEND;
use crate::pool::Call;

/// Keys asked for per `SCAN` call.
const SCAN_COUNT: u64 = 500;
/// Records read at once while counting.
const READS_AT_ONCE: usize = 32;

impl RedisStore {
    /// Counts the live records under `space`'s prefix: `SCAN ... MATCH
    /// prefix*` on the server (on a cluster, on every master, found with
    /// `CLUSTER SLOTS`), then the first byte of each key found (`GETRANGE`,
    /// a few at a time), which says in progress or plain. O(n) in the keys
    /// of the database, one round trip per key; keys that are not
    /// idem-redis records are not counted. Redis expires records itself,
    /// so none is counted as kept.
    pub(super) async fn count(&self, space: &KeySpace) -> Result<StoreStats> {
        let pattern = format!("{}*", glob_escape(space.prefix()));
        let (mut in_progress, mut completed) = (0, 0);
        for (host, port) in self.masters().await? {
            let mut cursor = 0u64;
            loop {
                let mut cmd = redis::cmd("SCAN");
                cmd.arg(cursor)
                    .arg("MATCH")
                    .arg(&pattern)
                    .arg("COUNT")
                    .arg(SCAN_COUNT);
                let (next, keys): (u64, Vec<Vec<u8>>) =
                    self.run(Call::Node(cmd, &host, port)).await?;
                for pending in self.kinds(keys).await? {
                    match pending {
                        Some(true) => in_progress += 1,
                        Some(false) => completed += 1,
                        None => {}
                    }
                }
                if next == 0 {
                    break;
                }
                cursor = next;
            }
        }
        Ok(StoreStats::new(in_progress, completed))
    }

    /// The nodes to scan: the masters of a cluster; a placeholder address
    /// for a standalone server, which [`Call::Node`] ignores.
    async fn masters(&self) -> Result<Vec<(String, u16)>> {
        if !matches!(self.config.topology(), Topology::Cluster { .. }) {
            return Ok(vec![(String::new(), 0)]);
        }
        let slots: Value = self
            .run(Call::Cmd(redis::cmd("CLUSTER").arg("SLOTS").clone()))
            .await?;
        let mut masters = masters_of(slots)?;
        masters.sort();
        masters.dedup();
        Ok(masters)
    }

    /// What each key holds: in progress, plain, or no record (gone, or not
    /// idem-redis'), by its first byte, read a few keys at a time.
    async fn kinds(&self, keys: Vec<Vec<u8>>) -> Result<Vec<Option<bool>>> {
        let mut kinds = Vec::with_capacity(keys.len());
        for chunk in keys.chunks(READS_AT_ONCE) {
            let mut reads = JoinSet::new();
            for key in chunk {
                let store = self.clone();
                let mut cmd = redis::cmd("GETRANGE");
                cmd.arg(&key[..]).arg(0).arg(0);
                reads.spawn(async move { store.run::<Vec<u8>>(Call::Cmd(cmd)).await });
            }
            while let Some(read) = reads.join_next().await {
                let first = read.map_err(|e| Error::backend(BACKEND, e))??;
                kinds.push(first.first().copied().and_then(envelope::is_pending));
            }
        }
        Ok(kinds)
    }
}

/// The master addresses in a `CLUSTER SLOTS` reply: one entry per slot
/// range, `[start, end, [host, port, id, ...], replicas...]`.
fn masters_of(slots: Value) -> Result<Vec<(String, u16)>> {
    let bad = || Error::backend(BACKEND, "CLUSTER SLOTS answered an unexpected reply");
    let Value::Array(ranges) = slots else {
        return Err(bad());
    };
    ranges
        .into_iter()
        .map(|range| {
            let Value::Array(range) = range else {
                return Err(bad());
            };
            let Some(Value::Array(master)) = range.into_iter().nth(2) else {
                return Err(bad());
            };
            let mut master = master.into_iter();
            let host: String = master
                .next()
                .and_then(|v| redis::from_redis_value(v).ok())
                .ok_or_else(bad)?;
            let port: u16 = master
                .next()
                .and_then(|v| redis::from_redis_value(v).ok())
                .ok_or_else(bad)?;
            Ok((host, port))
        })
        .collect()
}

/// `text` with Redis' glob characters (`*`, `?`, `[`, `]`, `\`) escaped.
fn glob_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glob_characters_match_themselves() {
        assert_eq!(glob_escape("idempotency:"), "idempotency:");
        assert_eq!(glob_escape(r"a*b?[c]\"), r"a\*b\?\[c\]\\");
    }

    #[test]
    fn masters_come_from_each_slot_range() {
        let node = |host: &str, port: i64| {
            Value::Array(vec![
                Value::BulkString(host.as_bytes().to_vec()),
                Value::Int(port),
                Value::BulkString(b"id".to_vec()),
            ])
        };
        let reply = Value::Array(vec![
            Value::Array(vec![
                Value::Int(0),
                Value::Int(5460),
                node("10.0.0.1", 7000),
            ]),
            Value::Array(vec![
                Value::Int(5461),
                Value::Int(16383),
                node("10.0.0.2", 7001),
                node("10.0.0.3", 7002),
            ]),
        ]);
        assert_eq!(
            masters_of(reply).unwrap(),
            vec![("10.0.0.1".into(), 7000), ("10.0.0.2".into(), 7001)]
        );
        assert!(masters_of(Value::Nil).is_err());
    }
}
