//! idem-sql: not written yet.
