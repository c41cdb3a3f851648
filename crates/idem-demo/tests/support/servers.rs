//! The database servers of the test run (`IDEM_TEST_POSTGRES_URL`,
//! `IDEM_TEST_MYSQL_URL`, as `cargo xtask servers` prints them), and a fresh
//! database on one per test, so that tests share a server without meeting.
//!
//! A server whose variable is unset is a loud SKIPPED, or a failure when its
//! backend is in `IDEM_REQUIRE`.

use std::io::Write;

use sqlx::{AssertSqlSafe, Connection, MySqlConnection, PgConnection};

/// A database server kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Server {
    Postgres,
    Mysql,
}

impl Server {
    /// Its backend's name in `IDEM_REQUIRE`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Postgres => "postgres",
            Self::Mysql => "mysql",
        }
    }

    fn var(self) -> &'static str {
        match self {
            Self::Postgres => "IDEM_TEST_POSTGRES_URL",
            Self::Mysql => "IDEM_TEST_MYSQL_URL",
        }
    }

    /// The server's URL, or `None` after saying loudly why `test` does not
    /// run (a failure when the backend is required).
    pub fn url(self, test: &str) -> Option<String> {
        match std::env::var(self.var()) {
            Ok(url) if !url.trim().is_empty() => Some(url.trim().to_owned()),
            _ => {
                let required = std::env::var("IDEM_REQUIRE").unwrap_or_default();
                assert!(
                    !required.split([',', ' ']).any(|b| b.trim() == self.name()),
                    "{} is required (IDEM_REQUIRE) but {} is not set",
                    self.name(),
                    self.var()
                );
                let _ = writeln!(
                    std::io::stderr(),
                    "*** SKIPPED {test} on {}: {} is not set ***",
                    self.name(),
                    self.var()
                );
                None
            }
        }
    }
}

/// A database of its own on a test server, made for one test; [`drop`]
/// removes it (a failed test leaves it to the server's end).
///
/// [`drop`]: Fresh::drop
#[derive(Debug)]
pub struct Fresh {
    /// The database's URL, for `--database`.
    pub url: String,
    pub server: Server,
    admin: String,
    name: String,
}

impl Fresh {
    /// A new, empty database on `server`, or `None` when the server is not
    /// given (see [`Server::url`]).
    pub async fn new(server: Server, test: &str) -> Option<Self> {
        let admin = server.url(test)?;
        let name = format!(
            "idem_demo_{}",
            &uuid::Uuid::new_v4().simple().to_string()[..12]
        );
        let fresh = Self {
            url: with_database(&admin, &name),
            server,
            admin,
            name,
        };
        fresh
            .run(&fresh.admin, &format!("CREATE DATABASE {}", fresh.name))
            .await;
        Some(fresh)
    }

    /// Runs `sql` in the fresh database.
    pub async fn execute(&self, sql: &str) {
        self.run(&self.url, sql).await;
    }

    /// The rows of `table` in the fresh database (`payments`, and
    /// `idem_records` for the idempotency records).
    pub async fn count(&self, table: &str) -> i64 {
        let sql = format!("SELECT COUNT(*) FROM {table}");
        match self.server {
            Server::Postgres => {
                let mut conn = PgConnection::connect(&self.url).await.unwrap();
                sqlx::query_scalar(AssertSqlSafe(sql.as_str()))
                    .fetch_one(&mut conn)
                    .await
                    .unwrap()
            }
            Server::Mysql => {
                let mut conn = MySqlConnection::connect(&self.url).await.unwrap();
                sqlx::query_scalar(AssertSqlSafe(sql.as_str()))
                    .fetch_one(&mut conn)
                    .await
                    .unwrap()
            }
        }
    }

    /// Removes the database.
    pub async fn drop(self) {
        let sql = match self.server {
            Server::Postgres => format!("DROP DATABASE {} WITH (FORCE)", self.name),
            Server::Mysql => format!("DROP DATABASE {}", self.name),
        };
        self.run(&self.admin, &sql).await;
    }

    async fn run(&self, url: &str, sql: &str) {
        let sql = AssertSqlSafe(sql.to_owned());
        let done = match self.server {
            Server::Postgres => {
                let mut conn = PgConnection::connect(url).await.unwrap();
                sqlx::raw_sql(sql).execute(&mut conn).await.map(drop)
            }
            Server::Mysql => {
                let mut conn = MySqlConnection::connect(url).await.unwrap();
                sqlx::raw_sql(sql).execute(&mut conn).await.map(drop)
            }
        };
        done.unwrap_or_else(|e| panic!("{e}"));
    }
}

/// `url` with its database (the path) replaced by `name`.
fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, format!("?{query}")),
        None => (url, String::new()),
    };
    let authority_start = base.find("://").map_or(0, |i| i + 3);
    let root = match base[authority_start..].find('/') {
        Some(slash) => &base[..authority_start + slash],
        None => base,
    };
    format!("{root}/{name}{query}")
}
