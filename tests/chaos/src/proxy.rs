//! A TCP proxy between the app processes and the store, that cuts and
//! resets connections on command.
//!
//! Each accepted connection is joined to a fresh connection to the upstream
//! (which can be changed: a restarted container may get another address).
//! [`Proxy::reset`] ends every open connection with a TCP reset.
//! [`Proxy::cut`] is a partition: while it lasts, open and new connections
//! carry nothing (no FIN, no RST: the apps see silence, as when packets are
//! dropped); when it heals, those connections are reset, as a stateful
//! firewall that forgot them would.

use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::io::copy_bidirectional;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// Whether connections carry bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Forward,
    Cut,
}

/// The state every connection task watches: the mode, and a generation
/// bumped to reset every connection open at the time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct State {
    mode: Mode,
    generation: u64,
}

/// A running proxy; it stops when dropped (its tasks end with the runtime
/// or at the next state change).
#[derive(Debug)]
pub struct Proxy {
    addr: SocketAddr,
    upstream: Arc<Mutex<SocketAddr>>,
    state: watch::Sender<State>,
    accept: tokio::task::JoinHandle<()>,
}

impl Proxy {
    /// Listens on an ephemeral loopback port, forwarding to `upstream`.
    ///
    /// # Errors
    /// When the port cannot be bound.
    pub async fn start(upstream: SocketAddr) -> io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let upstream = Arc::new(Mutex::new(upstream));
        let (state, _) = watch::channel(State {
            mode: Mode::Forward,
            generation: 0,
        });
        let accept = tokio::spawn(accept_loop(listener, upstream.clone(), state.clone()));
        Ok(Self {
            addr,
            upstream,
            state,
            accept,
        })
    }

    /// Where the apps connect.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Forwards new connections to `upstream` from now on.
    pub fn set_upstream(&self, upstream: SocketAddr) {
        *self.upstream.lock().unwrap_or_else(PoisonError::into_inner) = upstream;
    }

    /// Resets (RST) every connection open now.
    pub fn reset(&self) {
        self.state.send_modify(|s| s.generation += 1);
    }

    /// Starts (`true`) or heals (`false`) a partition; healing resets the
    /// connections that were open across it.
    pub fn cut(&self, on: bool) {
        self.state.send_modify(|s| {
            s.mode = if on { Mode::Cut } else { Mode::Forward };
            s.generation += 1;
        });
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.accept.abort();
        // Every connection task ends at this change.
        self.state.send_modify(|s| s.generation += 1);
    }
}

async fn accept_loop(
    listener: TcpListener,
    upstream: Arc<Mutex<SocketAddr>>,
    state: watch::Sender<State>,
) {
    loop {
        let Ok((client, _)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        let to = *upstream.lock().unwrap_or_else(PoisonError::into_inner);
        tokio::spawn(connection(client, to, state.subscribe()));
    }
}

/// Carries one connection until it closes or the state changes.
async fn connection(mut client: TcpStream, to: SocketAddr, mut state: watch::Receiver<State>) {
    let born = *state.borrow_and_update();
    if born.mode == Mode::Cut {
        // Silence until healed, then a reset.
        while state.changed().await.is_ok() && state.borrow().mode == Mode::Cut {}
        reset(&client);
        return;
    }
    let connect = tokio::time::timeout(Duration::from_secs(2), TcpStream::connect(to)).await;
    let Ok(Ok(mut server)) = connect else {
        reset(&client);
        return;
    };
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    tokio::select! {
        _ = copy_bidirectional(&mut client, &mut server) => return,
        _ = state.changed() => {}
    }
    // The state changed: a reset, a cut, or the proxy going away.
    if state.borrow().mode == Mode::Cut {
        while state.changed().await.is_ok() && state.borrow().mode == Mode::Cut {}
    }
    reset(&client);
    reset(&server);
}

/// Makes the coming drop send RST rather than FIN.
fn reset(stream: &TcpStream) {
    let _ = stream.set_zero_linger();
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    use super::*;

    async fn echo_server() -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let (mut r, mut w) = s.split();
                    let _ = tokio::io::copy(&mut r, &mut w).await;
                });
            }
        });
        addr
    }

    async fn round_trip(stream: &mut TcpStream) -> io::Result<()> {
        stream.write_all(b"ping").await?;
        let mut buf = [0; 4];
        tokio::time::timeout(Duration::from_millis(300), stream.read_exact(&mut buf))
            .await
            .map_err(|_| io::Error::other("silence"))??;
        Ok(())
    }

    #[tokio::test]
    async fn forwards_resets_and_cuts() {
        let proxy = Proxy::start(echo_server().await).await.unwrap();
        let mut a = TcpStream::connect(proxy.addr()).await.unwrap();
        round_trip(&mut a).await.unwrap();

        proxy.reset();
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(
            round_trip(&mut a).await.is_err(),
            "reset ends the connection"
        );

        let mut b = TcpStream::connect(proxy.addr()).await.unwrap();
        round_trip(&mut b).await.unwrap();
        proxy.cut(true);
        let err = round_trip(&mut b).await.unwrap_err();
        assert_eq!(err.to_string(), "silence");
        let mut c = TcpStream::connect(proxy.addr()).await.unwrap();
        assert!(round_trip(&mut c).await.is_err(), "a cut carries nothing");
        proxy.cut(false);
        let mut d = TcpStream::connect(proxy.addr()).await.unwrap();
        round_trip(&mut d).await.unwrap();
    }
}
