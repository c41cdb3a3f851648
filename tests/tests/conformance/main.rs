//! The conformance suite on every backend, in one test binary.
//!
//! `suite::<backend>` runs the suite (`idem_conformance::conformance_tests!`)
//! on one backend, with the checks only that backend needs in clearly named
//! modules beside it (`suite::redis::outages`, `suite::postgres::extra`, ...);
//! `suite::cached::<backend>` runs it again with the memory tier in front.
//! `cargo xtask conformance` runs each backend on its own by filtering on
//! `suite::<backend>::` and prints a table.
//!
//! Servers come from `IDEM_TEST_<KIND>_URL` (see `idem_tests::server`); a
//! backend without one is SKIPPED loudly, or fails where `IDEM_REQUIRE`
//! names it.

mod sql_support;

mod suite {
    mod cached;
    mod memory;
    mod mssql;
    mod mysql;
    mod postgres;
    mod redis;
    mod redis_cluster;
    mod sqlite;
}
