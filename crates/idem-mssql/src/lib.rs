//! idem-mssql: not written yet.
