//! A server that accepts connections and never answers.

use std::io;
use std::net::SocketAddr;

use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// A listener on 127.0.0.1 that accepts every connection and never sends a
/// byte: a client's handshake waits forever, so only the client's own
/// timeouts end it. It holds the connections it accepted until it is dropped;
/// then it closes them and stops listening.
///
/// It runs on the Tokio runtime it was started on.
///
/// # Examples
/// ```
/// use std::time::Duration;
/// use idem_conformance::stall::SilentServer;
/// use tokio::io::AsyncReadExt;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let server = SilentServer::start().await.unwrap();
/// let url = format!("redis://{}", server.addr());
/// # let _ = url;
/// let mut socket = tokio::net::TcpStream::connect(("127.0.0.1", server.port())).await.unwrap();
/// let mut byte = [0u8; 1];
/// let waited = tokio::time::timeout(Duration::from_millis(100), socket.read(&mut byte)).await;
/// assert!(waited.is_err(), "not a byte");
///
/// drop(server);
/// assert_eq!(socket.read(&mut byte).await.unwrap(), 0, "closed on drop");
/// # }
/// ```
#[derive(Debug)]
pub struct SilentServer {
    addr: SocketAddr,
    task: JoinHandle<()>,
}

impl SilentServer {
    /// Binds 127.0.0.1 on a free port and starts accepting.
    ///
    /// # Errors
    /// When no loopback port can be bound.
    pub async fn start() -> io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let task = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((socket, _)) = listener.accept().await {
                held.push(socket);
            }
        });
        Ok(Self { addr, task })
    }

    /// Where it listens: `127.0.0.1:port`.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }
}

impl Drop for SilentServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}
