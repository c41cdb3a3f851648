//! The conformance suite on a memory tier in front of the three-master Redis
//! Cluster (`IDEM_TEST_REDIS_CLUSTER_URL`), built through `idem::StoreConfig`.

use idem_conformance::{Subject, conformance_tests, skip};
use idem_tests::facade::through_facade;
use idem_tests::redis_servers::cluster;

async fn cached_redis_cluster() -> Option<Subject> {
    let url = match cluster() {
        Ok(url) => url,
        Err(reason) => return skip("cached-redis-cluster", &reason),
    };
    Some(through_facade("cached-redis-cluster", &url, None, true).await)
}

conformance_tests!(cached_redis_cluster);
