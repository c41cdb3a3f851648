//! The connection pool: bb8 over bb8-tiberius, with a connect timeout, broken
//! connections dropped, and connect failures reported to whoever waits.

use std::fmt;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bb8::{ManageConnection, Pool, PooledConnection};
use idem_core::Result;
use tokio::sync::Notify;

use crate::error::{ConnectError, OperationError, unavailable};

/// One pooled connection.
pub(crate) struct Conn {
    pub(crate) client: bb8_tiberius::rt::Client,
    /// Set while a request is on the wire. A connection dropped with it set
    /// (the operation was cancelled or failed mid-way) may hold half a
    /// request or reply, so the pool throws it away.
    pub(crate) busy: bool,
}

/// Makes connections: bb8-tiberius' manager, bounded by a timeout (tiberius
/// has none for the handshake, so a silent server would hang the pool).
pub(crate) struct Manager {
    inner: bb8_tiberius::ConnectionManager,
    connect_timeout: Duration,
    addr: Arc<str>,
}

impl Manager {
    fn driver_error(&self, e: bb8_tiberius::Error) -> ConnectError {
        ConnectError::Driver {
            addr: self.addr.clone(),
            source: Arc::new(e),
        }
    }

    fn timeout(&self) -> ConnectError {
        ConnectError::Timeout {
            addr: self.addr.clone(),
            after: self.connect_timeout,
        }
    }
}

impl ManageConnection for Manager {
    type Connection = Conn;
    type Error = ConnectError;

    async fn connect(&self) -> Result<Conn, ConnectError> {
        match tokio::time::timeout(self.connect_timeout, self.inner.connect()).await {
            Ok(Ok(client)) => Ok(Conn {
                client,
                busy: false,
            }),
            Ok(Err(e)) => Err(self.driver_error(e)),
            Err(_) => Err(self.timeout()),
        }
    }

    async fn is_valid(&self, conn: &mut Conn) -> Result<(), ConnectError> {
        conn.busy = true;
        let checked = tokio::time::timeout(self.connect_timeout, async {
            conn.client
                .simple_query("SELECT 1")
                .await?
                .into_results()
                .await
        })
        .await;
        match checked {
            Ok(Ok(_)) => {
                conn.busy = false;
                Ok(())
            }
            Ok(Err(e)) => Err(self.driver_error(e.into())),
            Err(_) => Err(self.timeout()),
        }
    }

    fn has_broken(&self, conn: &mut Conn) -> bool {
        conn.busy
    }
}

/// Where connect failures land, for the operations waiting on the pool.
#[derive(Default)]
struct Failures {
    last: Mutex<Option<ConnectError>>,
    happened: Notify,
}

#[derive(Clone)]
struct Sink(Arc<Failures>);

impl fmt::Debug for Sink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Sink")
    }
}

impl bb8::ErrorSink<ConnectError> for Sink {
    fn sink(&self, error: ConnectError) {
        tracing::debug!(error = %error, cause = ?std::error::Error::source(&error).map(ToString::to_string), "mssql connect failed");
        *self.0.last.lock().unwrap_or_else(|e| e.into_inner()) = Some(error);
        self.0.happened.notify_waiters();
    }

    fn boxed_clone(&self) -> Box<dyn bb8::ErrorSink<ConnectError>> {
        Box::new(self.clone())
    }
}

/// The pool and its failure reports.
#[derive(Clone)]
pub(crate) struct ConnPool {
    pool: Pool<Manager>,
    failures: Arc<Failures>,
    wait: Duration,
}

impl ConnPool {
    /// A pool that connects on demand (nothing is connected yet).
    pub(crate) fn new(
        config: tiberius::Config,
        max_connections: u32,
        connect_timeout: Duration,
        wait: Duration,
    ) -> Self {
        let failures = Arc::new(Failures::default());
        let manager = Manager {
            addr: config.get_addr().into(),
            inner: bb8_tiberius::ConnectionManager::new(config),
            connect_timeout,
        };
        let pool = Pool::builder()
            .max_size(max_connections.max(1))
            .connection_timeout(wait.max(Duration::from_millis(1)))
            // A dead server is reported after one attempt, not retried until
            // the caller gives up: callers fail fast and retry themselves.
            .retry_connection(false)
            .error_sink(Box::new(Sink(failures.clone())))
            .build_unchecked(manager);
        Self {
            pool,
            failures,
            wait,
        }
    }

    /// A connection, or `Unavailable` with the reason (the connect failure
    /// seen while waiting, else the pool timeout with the last failure).
    pub(crate) async fn get(&self) -> Result<PooledConnection<'_, Manager>> {
        self.wait(self.pool.get()).await
    }

    /// [`get`](Self::get), for a connection held past the caller's borrow
    /// of the pool (the transactional mode lends it to a handler).
    pub(crate) async fn get_owned(&self) -> Result<PooledConnection<'static, Manager>> {
        self.wait(self.pool.get_owned()).await
    }

    /// Waits for `got`, or for a connect failure, whichever comes first.
    async fn wait<C>(
        &self,
        got: impl Future<Output = Result<C, bb8::RunError<ConnectError>>>,
    ) -> Result<C> {
        let failed = self.failures.happened.notified();
        tokio::pin!(failed);
        failed.as_mut().enable();
        tokio::select! {
            got = got => match got {
                Ok(conn) => Ok(conn),
                Err(bb8::RunError::User(e)) => Err(unavailable(OperationError::Connect(e))),
                Err(bb8::RunError::TimedOut) => Err(unavailable(OperationError::PoolTimeout {
                    waited: self.wait,
                    last: self.last_failure(),
                })),
            },
            () = failed => Err(unavailable(match self.last_failure() {
                Some(e) => OperationError::Connect(e),
                None => OperationError::PoolTimeout { waited: self.wait, last: None },
            })),
        }
    }

    fn last_failure(&self) -> Option<ConnectError> {
        self.failures
            .last
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The pool's size and idle connections, for `Debug`.
    pub(crate) fn state(&self) -> bb8::State {
        self.pool.state()
    }
}
