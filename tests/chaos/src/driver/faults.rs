//! The faults, when each applies, and how each is injected.

use std::time::Duration;

use super::apps::Apps;
use super::firewall::{Block, Rules};
use super::store::Store;
use crate::app::{LEASE, LONG_LEASE};
use crate::proxy::Proxy;

/// One fault, injected while requests are in flight.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// kill -9 of an app mid-run, then a restart.
    Kill,
    /// The store stalled for half the lease (its container's processes
    /// stopped, or a SQLite exclusive lock; for Redis Cluster, one master's).
    Pause,
    /// The proxy between apps and store carries nothing for half the lease,
    /// then resets what was open.
    Cut,
    /// The proxy resets every open connection, twice.
    Reset,
    /// The store restarted (for Redis Cluster, one master).
    Restart,
    /// SIGTERM of an app: it drains and exits, then a restart.
    Sigterm,
}

impl Fault {
    /// Every fault, in table order.
    pub const ALL: [Fault; 6] = [
        Fault::Kill,
        Fault::Pause,
        Fault::Cut,
        Fault::Reset,
        Fault::Restart,
        Fault::Sigterm,
    ];

    /// Its name on the command line and in the table.
    pub fn name(self) -> &'static str {
        match self {
            Fault::Kill => "kill",
            Fault::Pause => "pause",
            Fault::Cut => "cut",
            Fault::Reset => "reset",
            Fault::Restart => "restart",
            Fault::Sigterm => "sigterm",
        }
    }

    /// The fault called `name`.
    ///
    /// # Errors
    /// An unknown name, with the known ones.
    pub fn from_name(name: &str) -> Result<Fault, String> {
        Fault::ALL
            .into_iter()
            .find(|f| f.name() == name)
            .ok_or_else(|| {
                let known: Vec<_> = Fault::ALL.iter().map(|f| f.name()).collect();
                format!("no fault `{name}`; known: {}", known.join(", "))
            })
    }

    /// The apps' lease in its cell: 3 s, but idem's default (10 s) where
    /// every store connection is opened again ([`LONG_LEASE`]).
    pub fn lease(self) -> Duration {
        match self {
            Fault::Restart | Fault::Cut | Fault::Reset => LONG_LEASE,
            _ => LEASE,
        }
    }

    /// Why it cannot be injected on `store`, if it cannot.
    pub fn not_applicable(self, store: &Store) -> Option<String> {
        match self {
            Fault::Kill | Fault::Sigterm => None,
            Fault::Cut | Fault::Reset if store.is_sqlite() => {
                Some("a file: no connection to cut".into())
            }
            // A cluster: the host's firewall cuts its nodes off instead of
            // a proxy, which its clients would not stay behind.
            Fault::Cut | Fault::Reset if !store.proxied() && store.containers.is_empty() => Some(
                "the cluster is not of this run's containers (env URL): its nodes may share \
                 this machine's loopback, which the firewall would cut between them too"
                    .into(),
            ),
            Fault::Cut | Fault::Reset if !store.proxied() => Rules::unavailable(),
            Fault::Cut | Fault::Reset => None,
            Fault::Pause if store.is_sqlite() => None,
            Fault::Restart if store.is_sqlite() => Some("a file: no server to restart".into()),
            Fault::Pause | Fault::Restart if store.containers.is_empty() => {
                Some("the server is not a container of this run (env URL)".into())
            }
            Fault::Pause | Fault::Restart => None,
        }
    }

    /// Injects it (the victim app is app 0); for a pause, says how long
    /// the store really stalled.
    ///
    /// # Errors
    /// When it could not be injected, or the apps did not recover.
    pub async fn inject(
        self,
        apps: &mut Apps,
        store: &Store,
        proxy: Option<&Proxy>,
    ) -> Result<Option<Duration>, String> {
        let half_lease = LEASE / 2;
        let done = match self {
            Fault::Kill => {
                apps.kill(0).await;
                tokio::time::sleep(Duration::from_millis(200)).await;
                apps.restart(0).await
            }
            Fault::Pause => return store.stall(half_lease).await.map(Some),
            Fault::Cut => match proxy {
                Some(proxy) => {
                    proxy.cut(true);
                    tokio::time::sleep(half_lease).await;
                    proxy.cut(false);
                    Ok(())
                }
                None => {
                    let cut = Rules::block(&store.nodes()?, Block::Drop)?;
                    tokio::time::sleep(half_lease).await;
                    drop(cut);
                    // Healed: what was open is reset, as by the proxy.
                    reset_briefly(store).await
                }
            },
            Fault::Reset => {
                for _ in 0..2 {
                    match proxy {
                        Some(proxy) => proxy.reset(),
                        None => reset_briefly(store).await?,
                    }
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
                Ok(())
            }
            Fault::Restart => {
                store.restart().await?;
                if let Some(proxy) = proxy {
                    proxy.set_upstream(store.upstream().await?);
                }
                Ok(())
            }
            Fault::Sigterm => {
                apps.terminate(0, LEASE + Duration::from_secs(2)).await?;
                apps.restart(0).await
            }
        };
        done.map(|()| None)
    }
}

/// Resets the connections to a cluster's nodes (the firewall answers their
/// packets with a TCP reset for a moment, so every busy connection breaks).
async fn reset_briefly(store: &Store) -> Result<(), String> {
    let reset = Rules::block(&store.nodes()?, Block::Reset)?;
    tokio::time::sleep(Duration::from_millis(200)).await;
    drop(reset);
    Ok(())
}
