//! The accept loop: HTTP/1 and HTTP/2 on hyper, one task per connection,
//! with a graceful end.
//!
//! Unlike `axum::serve` it takes a service that may fail: a failed call
//! closes the connection without an answer, which is how the chaos option
//! drops a response.

use std::future::Future;
use std::time::Duration;

use axum::body::Body;
use axum::http::Request;
use axum::response::Response;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::time::Instant;
use tower::Service;

/// Serves `service` on `listener` until the task is dropped.
pub async fn serve<S>(listener: TcpListener, service: S)
where
    S: Service<Request<Body>, Response = Response> + Clone + Send + Sync + 'static,
    S::Future: Send + 'static,
    S::Error: std::error::Error + Send + Sync + 'static,
{
    serve_until(listener, service, std::future::pending()).await;
}

/// Serves `service` on `listener` until `stop` resolves to a deadline; then
/// stops accepting connections, asks each open one to close once the request
/// it is on has been answered (idle ones close at once), and waits for them
/// until the deadline. Returns whether every connection closed in time; those
/// still open are left to the runtime's end.
pub async fn serve_until<S>(
    listener: TcpListener,
    service: S,
    stop: impl Future<Output = Instant>,
) -> bool
where
    S: Service<Request<Body>, Response = Response> + Clone + Send + Sync + 'static,
    S::Future: Send + 'static,
    S::Error: std::error::Error + Send + Sync + 'static,
{
    let builder = auto::Builder::new(TokioExecutor::new());
    let graceful = GracefulShutdown::new();
    let mut stop = std::pin::pin!(stop);
    let deadline = loop {
        let accepted = tokio::select! {
            deadline = &mut stop => break deadline,
            accepted = listener.accept() => accepted,
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(error) => {
                // Out of file descriptors and the like: wait, then go on.
                tracing::warn!(%error, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let service = tower::ServiceExt::map_request(service.clone(), |req: Request<Incoming>| {
            req.map(Body::new)
        });
        let connection = builder
            .serve_connection(TokioIo::new(stream), TowerToHyperService::new(service))
            .into_owned();
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(%error, "connection ended with an error");
            }
        });
    };
    drop(listener);
    let closed = tokio::time::timeout_at(deadline, graceful.shutdown())
        .await
        .is_ok();
    if !closed {
        tracing::warn!("connections still open at the deadline are cut");
    }
    closed
}
