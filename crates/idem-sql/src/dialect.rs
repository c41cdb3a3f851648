//! What one SQL database differs in from the others, for the store they share
//! ([`SqlStore`](crate::store::SqlStore)): the sqlx database, the statements,
//! how a key, a clock reading and an expiry are bound, and how a claim learns
//! what it met.

use std::sync::Arc;
use std::time::Duration;

use idem_core::{Result, StoreKey};
use sqlx::pool::PoolOptions;
use sqlx::{Connection, Database};

use crate::settings::Settings;

/// A query on the dialect's database.
pub(crate) type Query<'q, D> =
    sqlx::query::Query<'q, <D as Dialect>::Db, <<D as Dialect>::Db as Database>::Arguments>;

/// What a dialect's database connects with.
pub(crate) type ConnectOptions<D> =
    <<<D as Dialect>::Db as Database>::Connection as Connection>::Options;

/// The query result (rows affected, ...) of the dialect's database.
pub(crate) type QueryResult<D> = <<D as Dialect>::Db as Database>::QueryResult;

/// Every statement of a store, built once for its (validated) table name.
///
/// The store binds each statement's parameters in one order, every dialect
/// alike: the key first, then the value, the token, the expiry
/// ([`Dialect::bind_expiry`]) and, last, the clock reading
/// ([`Dialect::bind_now`], nothing where the server's clock decides); an
/// `UPDATE` (`extend`, `complete`) binds what it sets first, as MySQL's
/// positional `?` needs:
///
/// | statement | parameters |
/// |---|---|
/// | `find`, `exists`, `remove` | key, now |
/// | `store` | key, value, expiry |
/// | `claim` | key, pending value, token, expiry, now |
/// | `extend` | expiry, key, token, now |
/// | `complete` | value, expiry, key, token, now |
/// | `release` | key, token, now |
/// | `purge` | now |
#[derive(Debug)]
pub(crate) struct Queries {
    /// Creates the table and its expiry index when missing, in this order.
    pub(crate) create: Vec<Arc<str>>,
    pub(crate) find: Arc<str>,
    pub(crate) exists: Arc<str>,
    pub(crate) store: Arc<str>,
    pub(crate) remove: Arc<str>,
    pub(crate) claim: Arc<str>,
    pub(crate) extend: Arc<str>,
    pub(crate) complete: Arc<str>,
    pub(crate) release: Arc<str>,
    pub(crate) purge: Arc<str>,
}

/// How a claim statement tells the caller what it met.
pub(crate) enum ClaimReply<DB: Database> {
    /// It returns the row as it is after the statement (`RETURNING value,
    /// token`): the caller won if the token is its own.
    #[cfg_attr(not(any(feature = "sqlite", feature = "postgres")), allow(dead_code))]
    Returning,
    /// It returns nothing (MySQL has no `RETURNING`); the function says from
    /// the result whether it met a live record and left it alone, which the
    /// store then reads with `find`.
    #[cfg_attr(not(feature = "mysql"), allow(dead_code))]
    ReadAfter(fn(&DB::QueryResult) -> bool),
}

/// One SQL database, for the store they share.
pub(crate) trait Dialect: Sized + Send + Sync + 'static {
    /// The sqlx database.
    type Db: Database;
    /// The store's config.
    type Config: std::fmt::Debug + Send + Sync + 'static;
    /// The clock reading the statements are bound with: the process's clock
    /// where it decides expiry (SQLite), `()` where the server's does.
    type Now: Copy + Send + Sync;

    /// The backend name errors and logs carry.
    const BACKEND: &'static str;
    /// The clock in a statement whose one parameter, if any, is the clock
    /// reading ([`Dialect::bind_now`]): the count of `stats`.
    const CLOCK: &'static str;
    /// How a claim reports what it met.
    const CLAIM: ClaimReply<Self::Db>;
    /// How often a write that the database chose as a deadlock victim is run
    /// again (concurrent upserts on one key can deadlock on InnoDB's gap
    /// locks).
    const DEADLOCK_RETRIES: u32 = 0;
    /// A statement taking a lock named by its one parameter until the end of
    /// the transaction: with one, the schema is created in a transaction
    /// under that lock, so app servers starting together do not trip over
    /// each other's `CREATE ... IF NOT EXISTS`.
    const MIGRATION_LOCK: Option<&'static str> = None;
    /// How many of the pool's connections new work (claims, reads) leaves
    /// to keeping running claims alive (`extend`, `complete`, `release`).
    ///
    /// After a stall or a cut, every retried request queues for a
    /// connection at once; a renewal or completion waiting behind them
    /// lets the lease run out, and the key runs twice. With connections
    /// new work cannot take, keeping a claim waits less for it.
    const RESERVED_CONNECTIONS: u32 = 2;

    /// Whether a database error says a statement gave up waiting for a lock
    /// another transaction holds (or was chosen as a deadlock victim): in
    /// the transactional mode, the key is busy.
    fn lock_busy(error: &dyn sqlx::error::DatabaseError) -> bool;

    /// The statement that bounds how long the statements after it, in the
    /// transactional mode's transaction, wait for a lock another transaction
    /// holds (the database's own lock timeout).
    fn lock_wait(wait: Duration) -> String;
    /// The settings every config has.
    fn settings(config: &Self::Config) -> &Settings;
    /// The connect options the config names.
    fn connect_options(config: &Self::Config) -> Result<ConnectOptions<Self>>;
    /// The pool for the config (its acquire timeout is set by the store).
    ///
    /// No ping before handing out an idle connection: an operation that
    /// times out while that ping waits on a stalled server drops the
    /// connection, so a stall of one operation timeout empties the pool and
    /// every app reconnects at once when the server answers again (under
    /// load, within the operation timeout: PostgreSQL's SCRAM login alone
    /// is 50 ms of CPU in a debug build), and results wait for connections.
    /// A connection whose statement timed out is pinged when it returns to
    /// the pool (without a bound), so it survives the stall; a connection
    /// that died while idle fails one statement as unavailable (transient),
    /// and is then closed.
    fn pool_options(config: &Self::Config) -> PoolOptions<Self::Db> {
        // No ping before handing out a connection: during a stall that ping
        // times out with the operation and the connection is thrown away,
        // so after the stall the whole pool has to log in again at once. A
        // connection that died idle fails one statement as unavailable,
        // which the caller retries.
        PoolOptions::new()
            .max_connections(Self::settings(config).max_connections)
            .test_before_acquire(false)
    }
    /// The statements on table `t`, which passed `validate_table`.
    fn queries(t: &str) -> Queries;

    /// The clock reading for one statement.
    fn now() -> Self::Now;
    /// Binds the key.
    fn bind_key<'q>(query: Query<'q, Self>, key: &StoreKey) -> Query<'q, Self>;
    /// Binds the clock reading, if the statements take one.
    fn bind_now<'q>(query: Query<'q, Self>, now: Self::Now) -> Query<'q, Self>;
    /// Binds the expiry of a record that lives `ttl` from `now`.
    fn bind_expiry<'q>(query: Query<'q, Self>, now: Self::Now, ttl: Duration) -> Query<'q, Self>;
    /// How many rows a statement changed.
    fn rows_affected(done: &QueryResult<Self>) -> u64;
}
