//! The conformance suite on a three-master Redis Cluster
//! (`IDEM_TEST_REDIS_CLUSTER_URL`; `cargo xtask` starts one in containers).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use idem_conformance::{Subject, conformance_tests, skip};
use idem_core::{Claim, IdempotencyKey, IdempotencyStore, KeySpace, Scope};
use idem_redis::{RedisConfig, RedisStore};
use idem_tests::redis_servers::{cluster, cluster_nodes};

async fn cluster_store() -> Option<RedisStore> {
    let url = match cluster() {
        Ok(url) => url,
        Err(reason) => return skip("redis-cluster", &reason),
    };
    let config = RedisConfig::from_url(&url).expect("the harness builds a cluster URL");
    assert!(config.is_cluster());
    Some(
        RedisStore::connect(config)
            .await
            .expect("the test cluster answers"),
    )
}

async fn redis_cluster() -> Option<Subject> {
    let store = cluster_store().await?;
    Some(Subject::new("redis-cluster", Arc::new(store)))
}

conformance_tests!(redis_cluster);

/// Checks only a cluster needs.
mod extra {
    use super::*;

    /// Keys spread over every master, and every operation (scripts included)
    /// reaches the node that owns its key's slot.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn keys_land_on_every_master_and_each_operation_follows_its_slot() {
        let Some(store) = cluster_store().await else {
            return;
        };
        let space = KeySpace::new(format!("spread:{}:", uuid::Uuid::new_v4().simple())).unwrap();
        let hour = Duration::from_secs(3600);
        let mut keys = Vec::new();
        for i in 0..60 {
            let k = space.key(
                &Scope::global(),
                &IdempotencyKey::new(format!("k{i}")).unwrap(),
            );
            let Claim::Acquired(token) = store.claim(&k, Bytes::new(), hour).await.unwrap() else {
                panic!("fresh key taken")
            };
            if i % 2 == 0 {
                store
                    .complete(&k, &token, Bytes::from(format!("v{i}")), hour)
                    .await
                    .unwrap();
            } else {
                assert!(store.release(&k, &token).await.unwrap());
            }
            keys.push(k);
        }
        for (i, k) in keys.iter().enumerate() {
            let found = store.find(k).await.unwrap();
            assert_eq!(found, (i % 2 == 0).then(|| Bytes::from(format!("v{i}"))));
        }
        // Each master holds some of the 30 completed keys.
        let pattern = format!("{}*", space.prefix());
        let nodes = cluster_nodes();
        assert_eq!(nodes.len(), 3, "three masters");
        for (host, port) in nodes {
            let out = std::process::Command::new("redis-cli")
                .args(["-h", &host, "-p", &port.to_string()])
                .args(["--scan", "--pattern", &pattern])
                .output()
                .unwrap();
            let held = String::from_utf8_lossy(&out.stdout).lines().count();
            assert!(held > 0, "master {host}:{port} holds none of the keys");
        }
    }
}
