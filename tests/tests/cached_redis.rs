//! The conformance suite on a memory tier in front of Redis, built through
//! `idem::StoreConfig`.

use idem_conformance::{Subject, conformance_tests, skip};
use idem_tests::facade::through_facade;
use idem_tests::{ServerKind, server};

async fn cached_redis() -> Option<Subject> {
    let server = match server(ServerKind::Redis) {
        Ok(s) => s,
        Err(reason) => return skip("cached-redis", &reason),
    };
    Some(through_facade("cached-redis", &server.url, None, true).await)
}

conformance_tests!(cached_redis);
