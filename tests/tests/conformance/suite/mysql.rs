//! The conformance suite on MariaDB (or MySQL), with a pool of 32 connections so the
//! race cases are decided by the server, in a table of this test process.

use crate::sql_support::CLOSED_PORT;
use crate::sql_support::server::{subject, unreachable_subject};
use idem_conformance::{Subject, conformance_tests};
use idem_sql::MySqlStore;

/// The test tables of this database (their names start `idem_t_`).
const LIST_TEST_TABLES: &str = "SELECT CAST(table_name AS CHAR) FROM information_schema.tables \
    WHERE table_schema = DATABASE() AND table_name LIKE 'idem\\_t\\_%'";

async fn mysql() -> Option<Subject> {
    subject::<MySqlStore>(LIST_TEST_TABLES).await
}

async fn mysql_unreachable() -> Option<Subject> {
    unreachable_subject::<MySqlStore>(&format!("mysql://root:secret@127.0.0.1:{CLOSED_PORT}/test"))
        .await
}

conformance_tests!(mysql, unreachable: mysql_unreachable, purge: mysql);

/// Checks beyond the suite.
mod extra {
    use idem_sql::MySqlStore;
    use idem_sql::sqlx::{self, Row};

    use std::sync::Arc;
    use std::time::Duration;

    use bytes::Bytes;
    use idem_core::{Completion, Fingerprint, Idempotency, IdempotencyStore, StoredResponse};

    use crate::sql_support::extra::*;
    use crate::sql_support::server::{self, ServerStore, open, url};
    use crate::sql_support::{counting_table, fresh_table};

    // Restart, 32-connection race, purge, background purge, near-identical keys.
    server::server_checks!(MySqlStore);

    /// The connect timeout bounds `connect`, the operation timeout bounds an
    /// operation, when the server is down.
    #[tokio::test]
    async fn timeouts_bound_an_outage() {
        server::timeouts_bound_an_outage::<MySqlStore>("mysql://root@127.0.0.1:1/test").await;
    }

    #[tokio::test]
    async fn bad_table_name_is_a_config_error() {
        let bad = ["", "1x", "a-b", "x; DROP TABLE y", "t`", "sch.t"];
        server::bad_table_name_is_a_config_error::<MySqlStore>("mysql://u:p@127.0.0.1:1/db", &bad)
            .await;
    }

    #[tokio::test]
    async fn password_never_shows_in_errors_or_debug() {
        server::password_never_shows_in_errors_or_debug::<MySqlStore>(
            &[
                format!("mysql://root:{PASSWORD}@127.0.0.1:3306/test"),
                format!("mysql://root:{PASSWORD}@127.0.0.1:1/test"),
            ],
            &[
                format!("mysql://root:{PASSWORD}@127.0.0.1:notaport/test"),
                format!("postgres://root:{PASSWORD}@127.0.0.1/test"),
            ],
        )
        .await;
    }

    /// Expiry is computed and compared in UTC by the server, whatever the
    /// session's time zone: a store whose session runs at +05:00 sees the
    /// records of one at +00:00 as live, and their short TTLs run out on
    /// time for both (with `NOW()` on `DATETIME` they would be 5 hours off).
    #[tokio::test]
    async fn expiry_does_not_depend_on_the_session_time_zone() {
        let Some(url) = url::<MySqlStore>() else {
            return;
        };
        let table = fresh_table();
        let utc = open::<MySqlStore>(&url, &table, 2).await;
        let sep = if url.contains('?') { '&' } else { '?' };
        let shifted = open::<MySqlStore>(&format!("{url}{sep}timezone=%2B05:00"), &table, 2).await;
        let zone: String = sqlx::query_scalar("SELECT @@session.time_zone")
            .fetch_one(shifted.pool())
            .await
            .unwrap();
        assert_eq!(zone, "+05:00");
        let (a, b) = (key("tz-a"), key("tz-b"));
        let short = Duration::from_millis(1500);
        utc.store(&a, Bytes::from_static(b"a"), short)
            .await
            .unwrap();
        shifted
            .store(&b, Bytes::from_static(b"b"), short)
            .await
            .unwrap();
        for store in [&utc, &shifted] {
            assert!(store.exists(&a).await.unwrap());
            assert!(store.exists(&b).await.unwrap());
        }
        tokio::time::sleep(Duration::from_millis(2500)).await;
        for store in [&utc, &shifted] {
            assert!(!store.exists(&a).await.unwrap());
            assert!(!store.exists(&b).await.unwrap());
        }
        utc.drop_table(&table).await;
    }

    /// Counted twice: by sqlx's statement events, and by the server's own
    /// per-session counter of executed prepared statements.
    #[tokio::test]
    async fn a_fresh_request_costs_two_statements_and_a_replay_two() {
        let Some(url) = url::<MySqlStore>() else {
            return;
        };
        let table = counting_table();
        // One connection, so the session counters are the store's.
        let store = open::<MySqlStore>(&url, &table, 1).await;
        assert_eq!(count_statements(store.clone(), &table).await, (2, 2));

        let executed = || async {
            let row = sqlx::query("SHOW SESSION STATUS LIKE 'Com_stmt_execute'")
                .fetch_one(store.pool())
                .await
                .unwrap();
            row.try_get::<String, _>(1).unwrap().parse::<u64>().unwrap()
        };
        let engine = Idempotency::new(Arc::new(store.clone()));
        let k = key("server-count");
        let fp = Fingerprint::of_request("POST", "/p", b"");
        let run = |_| async { ((), Completion::Keep(StoredResponse::default())) };
        // Each SHOW is itself one executed statement.
        let before = executed().await;
        engine.execute(&k, fp, run).await.unwrap();
        let fresh = executed().await - before - 1;
        let before = executed().await;
        engine.execute(&k, fp, run).await.unwrap();
        let replay = executed().await - before - 1;
        assert_eq!((fresh, replay), (2, 2), "server-side Com_stmt_execute");
        store.drop_table(&table).await;
    }
}

/// The transactional mode: claim, writes and response in one transaction.
mod tx {
    use std::sync::Arc;
    use std::time::Duration;

    use idem_sql::{MySqlStore, sqlx::MySql};

    use crate::sql_support::fresh_table;
    use crate::sql_support::server::{open, url};
    use crate::sql_support::tx::{TxSubject, tx_cases};

    async fn subject() -> Option<Arc<TxSubject<MySql>>> {
        let url = url::<MySqlStore>()?;
        let store = open::<MySqlStore>(&url, &fresh_table(), 80).await;
        let subject = TxSubject {
            engine: store.transactional(),
            pool: store.pool().clone(),
            table: fresh_table(),
            kill: Some(("SELECT CAST(CONNECTION_ID() AS SIGNED)", "KILL {}")),
        };
        subject.create_table().await;
        Some(Arc::new(subject))
    }

    tx_cases!(subject, Duration::from_secs(1));
}
