//! The payments table: in a SQLite file, or on PostgreSQL or MySQL/MariaDB
//! (`--database`).

mod database;
mod sql;
mod table;
mod tx;

use std::time::Duration;

use sqlx::Sqlite;
use sqlx::pool::PoolOptions;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode};

use crate::payment::{NewPayment, Payment};
use table::Table;

pub use database::{Database, DatabaseError};
pub use tx::Tx;

/// What [`Payments::create`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Created {
    /// A new payment was made.
    New(Payment),
    /// A payment with this scope and key already existed (the idempotency
    /// record had expired or was lost): the table's unique constraint kept it
    /// from being made twice. This is it.
    Existing(Payment),
}

/// The payments, in the database `--database` names.
#[derive(Debug, Clone)]
pub struct Payments {
    table: Tables,
}

/// The table on its database's own pool.
#[derive(Debug, Clone)]
enum Tables {
    Sqlite(Table<Sqlite>),
    #[cfg(feature = "postgres")]
    Postgres(Table<sqlx::Postgres>),
    #[cfg(feature = "mysql")]
    MySql(Table<sqlx::MySql>),
}

/// `$body` with `$table` bound to the payments table, whichever database.
macro_rules! each {
    ($tables:expr, $table:ident => $body:expr) => {
        match $tables {
            Tables::Sqlite($table) => $body,
            #[cfg(feature = "postgres")]
            Tables::Postgres($table) => $body,
            #[cfg(feature = "mysql")]
            Tables::MySql($table) => $body,
        }
    };
}

/// How long connecting to the payments database may take at start.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

impl Payments {
    /// Connects to `database` (a SQLite file is created when missing, and
    /// opened in WAL mode) and creates the table when missing.
    ///
    /// # Errors
    /// The database's error when it cannot be reached or the table cannot be
    /// made.
    ///
    /// # Examples
    /// ```no_run
    /// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
    /// let database: idem_demo::db::Database = "idem-demo.db".parse()?;
    /// let payments = idem_demo::db::Payments::open(&database).await?;
    /// # let _ = payments; Ok(()) }
    /// ```
    pub async fn open(database: &Database) -> Result<Self, sqlx::Error> {
        fn pool<D: sqlx::Database>() -> PoolOptions<D> {
            PoolOptions::new()
                .max_connections(4)
                .acquire_timeout(CONNECT_TIMEOUT)
        }
        match database {
            Database::Sqlite(path) => {
                let options = SqliteConnectOptions::new()
                    .filename(path)
                    .create_if_missing(true)
                    .journal_mode(SqliteJournalMode::Wal)
                    .busy_timeout(Duration::from_secs(10));
                Self::on(pool::<Sqlite>().connect_with(options).await?).await
            }
            #[cfg(feature = "postgres")]
            Database::Postgres(url) => Self::on(pool::<sqlx::Postgres>().connect(url).await?).await,
            #[cfg(feature = "mysql")]
            Database::MySql(url) => Self::on(pool::<sqlx::MySql>().connect(url).await?).await,
        }
    }

    /// The payments on an open pool (the idempotency store's, in the
    /// transactional mode), creating the table when missing.
    pub(crate) async fn on<D: Backend>(pool: sqlx::Pool<D>) -> Result<Self, sqlx::Error> {
        D::payments(pool).await
    }

    /// Makes a payment for `(scope, key)`, unless one exists already.
    pub async fn create(
        &self,
        scope: &str,
        key: &str,
        payment: &NewPayment,
    ) -> Result<Created, sqlx::Error> {
        each!(&self.table, table => table.create(scope, key, payment).await)
    }

    /// [`create`](Self::create) through the request's transaction (the
    /// transactional mode), so that the payment commits with its
    /// idempotency record.
    pub async fn create_in(
        tx: &mut Tx,
        scope: &str,
        key: &str,
        payment: &NewPayment,
    ) -> Result<Created, sqlx::Error> {
        match tx {
            Tx::Sqlite(tx) => Table::<Sqlite>::create_in(tx, scope, key, payment).await,
            #[cfg(feature = "postgres")]
            Tx::Postgres(tx) => Table::<sqlx::Postgres>::create_in(tx, scope, key, payment).await,
            #[cfg(feature = "mysql")]
            Tx::MySql(tx) => Table::<sqlx::MySql>::create_in(tx, scope, key, payment).await,
        }
    }

    /// The payment `id` in `scope`.
    pub async fn get(&self, scope: &str, id: &str) -> Result<Option<Payment>, sqlx::Error> {
        each!(&self.table, table => table.get(scope, id).await)
    }

    /// The payments in `scope`, oldest first (at most 1000).
    pub async fn list(&self, scope: &str) -> Result<Vec<Payment>, sqlx::Error> {
        each!(&self.table, table => table.list(scope).await)
    }

    /// How many payments exist, in every scope.
    pub async fn count(&self) -> Result<i64, sqlx::Error> {
        each!(&self.table, table => table.count().await)
    }

    /// Whether the database answers.
    pub async fn ping(&self) -> Result<(), sqlx::Error> {
        each!(&self.table, table => table.ping().await)
    }
}

/// A database the payments can live in: SQLite, and PostgreSQL and
/// MySQL/MariaDB with their features.
pub(crate) trait Backend: sqlx::Database {
    /// The payments table on `pool`, created when missing.
    fn payments(
        pool: sqlx::Pool<Self>,
    ) -> impl Future<Output = Result<Payments, sqlx::Error>> + Send;
}

/// Stamps [`Backend`] for a database and its [`Tables`] variant.
macro_rules! backend {
    ($db:ty, $variant:ident) => {
        impl Backend for $db {
            async fn payments(pool: sqlx::Pool<Self>) -> Result<Payments, sqlx::Error> {
                let table = Tables::$variant(Table::on(pool).await?);
                Ok(Payments { table })
            }
        }
    };
}

backend!(Sqlite, Sqlite);
#[cfg(feature = "postgres")]
backend!(sqlx::Postgres, Postgres);
#[cfg(feature = "mysql")]
backend!(sqlx::MySql, MySql);
