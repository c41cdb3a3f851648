//! A loopback TCP proxy in front of PostgreSQL that counts the statements
//! clients execute, from the wire protocol itself: every `Execute` ('E') of
//! the extended protocol and every simple `Query` ('Q'). Clients must not use
//! TLS through it (`sslmode=disable`): it reads the plain protocol.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const SSL_REQUEST: u32 = 80_877_103;
const GSSENC_REQUEST: u32 = 80_877_104;

/// The proxy's port and its count of executed statements.
pub(crate) struct PgProxy {
    pub(crate) port: u16,
    executed: Arc<AtomicU64>,
}

impl PgProxy {
    /// Starts a proxy to `upstream` (`host:port`) on an ephemeral port.
    pub(crate) async fn start(upstream: String) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let executed = Arc::new(AtomicU64::new(0));
        let count = executed.clone();
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let (upstream, count) = (upstream.clone(), count.clone());
                tokio::spawn(async move {
                    if let Ok(server) = TcpStream::connect(&upstream).await {
                        let _ = relay(client, server, count).await;
                    }
                });
            }
        });
        Self { port, executed }
    }

    /// Statements executed through the proxy so far.
    pub(crate) fn executed(&self) -> u64 {
        self.executed.load(Ordering::SeqCst)
    }
}

async fn relay(client: TcpStream, server: TcpStream, count: Arc<AtomicU64>) -> std::io::Result<()> {
    let (mut client_rx, mut client_tx) = client.into_split();
    let (mut server_rx, mut server_tx) = server.into_split();
    let down = tokio::spawn(async move { tokio::io::copy(&mut server_rx, &mut client_tx).await });
    // Client to server: untyped start-up packets until the StartupMessage,
    // then typed messages (1 type byte, 4 length bytes, payload).
    let mut started = false;
    loop {
        let mut frame = Vec::new();
        if started {
            let mut kind = [0u8; 1];
            if client_rx.read_exact(&mut kind).await.is_err() {
                break;
            }
            if matches!(kind[0], b'E' | b'Q') {
                count.fetch_add(1, Ordering::SeqCst);
            }
            frame.push(kind[0]);
        }
        let mut len = [0u8; 4];
        if client_rx.read_exact(&mut len).await.is_err() {
            break;
        }
        let mut body = vec![0u8; (u32::from_be_bytes(len) as usize).saturating_sub(4)];
        client_rx.read_exact(&mut body).await?;
        if !started {
            let code = body
                .get(..4)
                .map(|c| u32::from_be_bytes(c.try_into().unwrap()));
            started = !matches!(code, Some(SSL_REQUEST | GSSENC_REQUEST));
        }
        frame.extend_from_slice(&len);
        frame.extend_from_slice(&body);
        server_tx.write_all(&frame).await?;
    }
    down.abort();
    Ok(())
}
