//! The response future of [`IdempotencyService`](crate::IdempotencyService).

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures::future::BoxFuture;
use http::Response;
use pin_project_lite::pin_project;

pin_project! {
    /// What [`IdempotencyService`](crate::IdempotencyService) returns: the inner
    /// service's own future for requests the layer does not cover (no
    /// allocation on that path), an immediate answer for a rejected request,
    /// or the idempotent exchange.
    ///
    /// Dropping it while an idempotent exchange is under way (the client went
    /// away) does not cancel the exchange: it is moved onto a tokio task of its
    /// own and runs to the end, so the handler finishes and its response is
    /// kept for the retry.
    pub struct ResponseFuture<F, B, E>
    where
        B: Send,
        B: 'static,
        E: Send,
        E: 'static,
    {
        #[pin]
        kind: Kind<F, B, E>,
    }
}

pin_project! {
    #[project = KindProj]
    enum Kind<F, B, E>
    where
        B: Send,
        B: 'static,
        E: Send,
        E: 'static,
    {
        PassThrough { #[pin] future: F },
        Ready { response: Option<Response<B>> },
        Idempotent { future: Detached<Result<Response<B>, E>> },
    }
}

impl<F, B: Send + 'static, E: Send + 'static> ResponseFuture<F, B, E> {
    pub(crate) fn pass_through(future: F) -> Self {
        Self {
            kind: Kind::PassThrough { future },
        }
    }

    pub(crate) fn ready(response: Response<B>) -> Self {
        Self {
            kind: Kind::Ready {
                response: Some(response),
            },
        }
    }

    pub(crate) fn idempotent(future: BoxFuture<'static, Result<Response<B>, E>>) -> Self {
        Self {
            kind: Kind::Idempotent {
                future: Detached(Some(future)),
            },
        }
    }
}

impl<F, B, E> Future for ResponseFuture<F, B, E>
where
    F: Future<Output = Result<Response<B>, E>>,
    B: Send + 'static,
    E: Send + 'static,
{
    type Output = Result<Response<B>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().kind.project() {
            KindProj::PassThrough { future } => future.poll(cx),
            KindProj::Ready { response } => {
                Poll::Ready(Ok(response.take().expect("polled after completion")))
            }
            KindProj::Idempotent { future } => future.poll(cx),
        }
    }
}

impl<F, B: Send + 'static, E: Send + 'static> fmt::Debug for ResponseFuture<F, B, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}

/// A boxed future that is run to completion on a tokio task if it is dropped
/// before it finishes.
///
/// Running it in place while someone waits for it costs nothing extra (no task
/// per request); only an abandoned exchange pays for a task. The box keeps the
/// future at one address, so handing it to the task does not move it.
struct Detached<T: Send + 'static>(Option<BoxFuture<'static, T>>);

impl<T: Send + 'static> Detached<T> {
    fn poll(&mut self, cx: &mut Context<'_>) -> Poll<T> {
        // Taken out while it is polled: if it panics, it is dropped with the
        // panic rather than handed to a task in a broken state.
        let mut future = self.0.take().expect("polled after completion");
        match future.as_mut().poll(cx) {
            Poll::Ready(value) => Poll::Ready(value),
            Poll::Pending => {
                self.0 = Some(future);
                Poll::Pending
            }
        }
    }
}

impl<T: Send + 'static> Drop for Detached<T> {
    fn drop(&mut self) {
        if let Some(future) = self.0.take() {
            match tokio::runtime::Handle::try_current() {
                Ok(runtime) => {
                    tracing::debug!(
                        "idempotency: caller went away; finishing the request on a task"
                    );
                    drop(runtime.spawn(async move {
                        let _ = future.await;
                    }));
                }
                Err(_) => tracing::warn!(
                    "idempotency: caller went away outside a tokio runtime; the request is abandoned"
                ),
            }
        }
    }
}
