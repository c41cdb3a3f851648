//! The conformance suite on PostgreSQL, with a pool of 32 connections so the
//! race cases are decided by the server, in a table of this test process.

use crate::sql_support::CLOSED_PORT;
use crate::sql_support::server::{subject, unreachable_subject};
use idem_conformance::{Subject, conformance_tests};
use idem_sql::PostgresStore;

/// The test tables of this database (their names start `idem_t_`).
const LIST_TEST_TABLES: &str = "SELECT tablename::text FROM pg_tables \
    WHERE schemaname = current_schema() AND tablename LIKE 'idem\\_t\\_%'";

async fn postgres() -> Option<Subject> {
    subject::<PostgresStore>(LIST_TEST_TABLES).await
}

async fn postgres_unreachable() -> Option<Subject> {
    unreachable_subject::<PostgresStore>(&format!(
        "postgres://postgres:secret@127.0.0.1:{CLOSED_PORT}/test"
    ))
    .await
}

conformance_tests!(postgres, unreachable: postgres_unreachable, purge: postgres);

/// Checks beyond the suite.
mod extra {
    use idem_sql::PostgresStore;

    use std::sync::Arc;

    use idem_core::{Completion, Fingerprint, Idempotency, StoredResponse};

    use crate::sql_support::extra::*;
    use crate::sql_support::server::{self, ServerStore, open, url};
    use crate::sql_support::{counting_table, fresh_table};

    // Restart, 32-connection race, purge, background purge, near-identical keys.
    server::server_checks!(PostgresStore);

    /// The connect timeout bounds `connect`, the operation timeout bounds an
    /// operation, when the server is down.
    #[tokio::test]
    async fn timeouts_bound_an_outage() {
        server::timeouts_bound_an_outage::<PostgresStore>("postgres://postgres@127.0.0.1:1/test")
            .await;
    }

    #[tokio::test]
    async fn bad_table_name_is_a_config_error() {
        let bad = ["", "1x", "a-b", "x; DROP TABLE y", "t\"", "sch.t"];
        server::bad_table_name_is_a_config_error::<PostgresStore>(
            "postgres://u:p@127.0.0.1:1/db",
            &bad,
        )
        .await;
    }

    #[tokio::test]
    async fn password_never_shows_in_errors_or_debug() {
        // A wrong password against the real server, a closed port, a bad URL.
        server::password_never_shows_in_errors_or_debug::<PostgresStore>(
            &[
                format!("postgres://postgres:{PASSWORD}@127.0.0.1:5432/no_such_db_idem"),
                format!("postgres://postgres:{PASSWORD}@127.0.0.1:1/test"),
            ],
            &[
                format!("postgres://postgres:{PASSWORD}@127.0.0.1:notaport/test"),
                format!("mysql://root:{PASSWORD}@127.0.0.1/test"),
            ],
        )
        .await;
    }

    #[tokio::test]
    async fn a_fresh_request_costs_two_statements_and_a_replay_one() {
        let Some(url) = url::<PostgresStore>() else {
            return;
        };
        let table = counting_table();
        let store = open::<PostgresStore>(&url, &table, 2).await;
        assert_eq!(count_statements(store.clone(), &table).await, (2, 1));
        store.drop_table(&table).await;
    }

    /// The same count, taken on the wire: a proxy between the store and
    /// the server counts the protocol's Execute and Query messages.
    #[tokio::test]
    async fn the_wire_agrees_two_statements_fresh_and_one_replay() {
        let Some(url) = url::<PostgresStore>() else {
            return;
        };
        let options: idem_sql::sqlx::postgres::PgConnectOptions = url.parse().unwrap();
        let upstream = format!("{}:{}", options.get_host(), options.get_port());
        let proxy = crate::sql_support::pg_proxy::PgProxy::start(upstream).await;
        let proxied = idem_sql::sqlx::ConnectOptions::to_url_lossy(
            &options
                .host("127.0.0.1")
                .port(proxy.port)
                .ssl_mode(idem_sql::sqlx::postgres::PgSslMode::Disable),
        )
        .to_string();
        let table = fresh_table();
        let store = open::<PostgresStore>(&proxied, &table, 1).await;
        let engine = Idempotency::new(Arc::new(store.clone()));
        let k = key("wire");
        let fp = Fingerprint::of_request("POST", "/p", b"");
        let run = |_| async { ((), Completion::Keep(StoredResponse::default())) };
        let before = proxy.executed();
        engine.execute(&k, fp, run).await.unwrap();
        let fresh = proxy.executed() - before;
        let before = proxy.executed();
        engine.execute(&k, fp, run).await.unwrap();
        let replay = proxy.executed() - before;
        assert_eq!(
            (fresh, replay),
            (2, 1),
            "Execute/Query messages on the wire"
        );
        store.drop_table(&table).await;
    }
}

/// The transactional mode: claim, writes and response in one transaction.
mod tx {
    use std::sync::Arc;
    use std::time::Duration;

    use idem_sql::{PostgresStore, sqlx::Postgres};

    use crate::sql_support::fresh_table;
    use crate::sql_support::server::{open, url};
    use crate::sql_support::tx::{TxSubject, tx_cases};

    async fn subject() -> Option<Arc<TxSubject<Postgres>>> {
        let url = url::<PostgresStore>()?;
        let store = open::<PostgresStore>(&url, &fresh_table(), 80).await;
        let subject = TxSubject {
            engine: store.transactional(),
            pool: store.pool().clone(),
            table: fresh_table(),
            kill: Some((
                "SELECT pg_backend_pid()::int8",
                "SELECT pg_terminate_backend({})",
            )),
        };
        subject.create_table().await;
        Some(Arc::new(subject))
    }

    tx_cases!(subject, Duration::from_millis(300));
}
