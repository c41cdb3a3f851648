//! The conformance suite on SQL Server, from `IDEM_TEST_MSSQL_URL` (a
//! `mssql://` URL or an ADO.NET string, set by hand or by `cargo xtask`, which
//! starts the server in a container); and, always, an
//! unreachable server on a closed loopback port.

use std::sync::Arc;
use std::time::Duration;

use idem_conformance::{Subject, conformance_tests, skip};
use idem_core::{IdempotencyStore, PurgeExpired, StoreKey};
use idem_mssql::{MssqlConfig, MssqlStore};
use idem_tests::{ServerKind, server};

/// Every case shares this table; each uses its own random keys.
const TABLE: &str = "IdemConformance";

/// A store on the test server, or `None` (reported as SKIPPED) without one.
async fn mssql_store() -> Option<MssqlStore> {
    let server = match server(ServerKind::Mssql) {
        Ok(s) => s,
        Err(reason) => return skip("mssql", &reason),
    };
    let config = match MssqlConfig::parse(&server.url) {
        Ok(c) => c.with_table(TABLE),
        Err(e) => panic!("IDEM_TEST_MSSQL_URL is not usable: {e}"),
    };
    let store = MssqlStore::connect(config)
        .await
        .unwrap_or_else(|e| panic!("cannot connect to SQL Server: {e} ({e:?})"));
    Some(store)
}

async fn mssql() -> Option<Subject> {
    let store = mssql_store().await?;
    Some(Subject::with_purger("mssql", Arc::new(store)))
}

async fn mssql_unreachable() -> Option<Subject> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a loopback port")
        .port();
    let config = MssqlConfig::new("127.0.0.1")
        .with_port(port)
        .with_credentials("sa", "unused-password")
        .with_trust_server_certificate(true)
        .with_connect_timeout(Duration::from_millis(300))
        .with_operation_timeout(Duration::from_secs(2));
    let store = MssqlStore::connect_lazy(config).expect("a valid config");
    Some(Subject::new("mssql", Arc::new(store)))
}

conformance_tests!(mssql, unreachable: mssql_unreachable, purge: mssql);

/// Checks beyond the suite.
mod extra {
    use super::*;

    fn unique(suffix: &str) -> StoreKey {
        StoreKey::parse(format!(
            "mssql-test:{}:{suffix}",
            uuid::Uuid::new_v4().simple()
        ))
        .unwrap()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn purge_deletes_expired_rows_and_keeps_live_ones() {
        let Some(store) = mssql_store().await else {
            return;
        };
        let expired: Vec<StoreKey> = (0..5).map(|i| unique(&format!("old{i}"))).collect();
        for key in &expired {
            store
                .store(key, "old".into(), Duration::from_millis(50))
                .await
                .unwrap();
        }
        let live = unique("live");
        store
            .store(&live, "new".into(), Duration::from_secs(600))
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(300)).await;
        let purged = store.purge_expired().await.unwrap();
        assert!(purged >= expired.len() as u64, "purged only {purged}");
        assert_eq!(
            store.find(&live).await.unwrap().as_deref(),
            Some(&b"new"[..])
        );
        // Nothing expired is left: a second purge finds none of ours.
        for key in &expired {
            assert!(!store.remove(key).await.unwrap());
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn keys_differing_in_case_trailing_space_or_nul_stay_distinct() {
        let Some(store) = mssql_store().await else {
            return;
        };
        let base = unique("k");
        let variants = [
            base.as_str().to_owned(),
            base.as_str().to_uppercase(),
            format!("{base} "),
            format!("{base}\0"),
            format!("{base}\0\0"),
        ];
        let hour = Duration::from_secs(3600);
        for (i, key) in variants.iter().enumerate() {
            let key = StoreKey::parse(key.clone()).unwrap();
            store.store(&key, vec![i as u8].into(), hour).await.unwrap();
        }
        for (i, key) in variants.iter().enumerate() {
            let key = StoreKey::parse(key.clone()).unwrap();
            assert_eq!(
                store.find(&key).await.unwrap().as_deref(),
                Some(&[i as u8][..]),
                "variant {i} was overwritten by another"
            );
        }
    }
}

/// The transactional mode: the claim, the handler's statements and the
/// response in one transaction (the cases of `sql_support::tx`, written
/// for tiberius in `sql_support::mssql_tx`).
mod tx {
    use std::sync::Arc;
    use std::time::Duration;

    use idem_conformance::skip;
    use idem_mssql::{MssqlConfig, MssqlStore};
    use idem_tests::{ServerKind, server};

    use crate::sql_support::fresh_table;
    use crate::sql_support::mssql_tx::{MssqlTxSubject, mssql_tx_cases};

    /// A subject with tables of its own, on a pool of 80 (64 racers and
    /// the runs that count their rows), or `None` (SKIPPED) without a
    /// server.
    async fn subject() -> Option<Arc<MssqlTxSubject>> {
        let server = match server(ServerKind::Mssql) {
            Ok(s) => s,
            Err(reason) => {
                let reason = format!("{reason}: no SQL Server here for the transactional cases");
                return skip("mssql", &reason);
            }
        };
        let config = match MssqlConfig::parse(&server.url) {
            Ok(c) => c.with_table(fresh_table()).with_max_connections(80),
            Err(e) => panic!("IDEM_TEST_MSSQL_URL is not usable: {e}"),
        };
        let store = MssqlStore::connect(config)
            .await
            .unwrap_or_else(|e| panic!("cannot connect to SQL Server: {e} ({e:?})"));
        let subject = MssqlTxSubject {
            engine: store.transactional(),
            table: fresh_table(),
        };
        subject.create_table().await;
        Some(Arc::new(subject))
    }

    mssql_tx_cases!(subject, Duration::from_millis(300));
}
