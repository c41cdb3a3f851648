//! The compare-then-write steps, as Lua scripts run atomically by Redis.
//!
//! [`redis::Script`] calls a script by its SHA-1 (`EVALSHA`) and, when the
//! server answers `NOSCRIPT` (a restart, `SCRIPT FLUSH`), loads it and calls
//! it again. Each script touches only `KEYS[1]`, so in a cluster it runs on
//! the node that owns that key's slot.

use redis::Script;

/// `extend`: if the record starts with the caller's fence (pending tag and
/// token), make it expire in `ARGV[2]` milliseconds from now, bytes untouched,
/// and return 1; otherwise write nothing and return 0. An expired record is
/// gone for `GET`, so it is never brought back.
const EXTEND: &str = r"
local current = redis.call('GET', KEYS[1])
if current and string.sub(current, 1, string.len(ARGV[1])) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
";

/// `complete`: if the record starts with the caller's fence (pending tag and
/// token), replace it with the plain record `ARGV[2]`, expiring in `ARGV[3]`
/// milliseconds, and return 1; otherwise write nothing and return 0.
const COMPLETE: &str = r"
local current = redis.call('GET', KEYS[1])
if current and string.sub(current, 1, string.len(ARGV[1])) == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
  return 1
end
return 0
";

/// `release`: if the record starts with the caller's fence, delete it and
/// return 1; otherwise return 0.
const RELEASE: &str = r"
local current = redis.call('GET', KEYS[1])
if current and string.sub(current, 1, string.len(ARGV[1])) == ARGV[1] then
  redis.call('DEL', KEYS[1])
  return 1
end
return 0
";

/// The scripts, hashed once per store.
#[derive(Debug, Clone)]
pub(crate) struct Scripts {
    pub(crate) extend: Script,
    pub(crate) complete: Script,
    pub(crate) release: Script,
}

impl Scripts {
    pub(crate) fn new() -> Self {
        Self {
            extend: Script::new(EXTEND),
            complete: Script::new(COMPLETE),
            release: Script::new(RELEASE),
        }
    }
}
