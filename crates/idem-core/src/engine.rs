//! [`Engine`]: what an HTTP layer (or any caller) needs of a protocol
//! engine, so that one layer drives either mode: [`Idempotency`] (a lease
//! per claim, any store) or a SQL store's transactional mode.

use std::fmt;
use std::future::Future;

use crate::{Completion, Fingerprint, Idempotency, LeaseSignal, Outcome, Result, StoreKey, Traced};

/// A protocol engine: runs a handler at most once per key, or says why not.
///
/// The engine lends its handler something for the run ([`Engine::Lent`]):
/// [`Idempotency`] lends a [`LeaseSignal`]; the SQL stores' transactional
/// mode lends the transaction that holds the claim. The tower layer puts it
/// in the request's extensions, where the handler finds it.
///
/// # Examples
/// ```
/// use std::sync::Arc;
/// use idem_core::{Engine, Idempotency, IdempotencyStore};
///
/// /// Code that works with either mode.
/// fn describe<E: Engine>(engine: &E) -> String {
///     format!("{engine:?}")
/// }
/// # fn f(store: Arc<dyn IdempotencyStore>) {
/// let engine = Idempotency::new(store);
/// assert!(describe(&engine).starts_with("Idempotency"));
/// # }
/// ```
pub trait Engine: Clone + Send + Sync + fmt::Debug + 'static {
    /// What the handler is lent for its run.
    type Lent: Clone + Send + Sync + 'static;

    /// Claims `key` for a request with `fingerprint`; if it is free, runs
    /// `handler` with what the engine lends it and keeps (or releases) what
    /// the handler's [`Completion`] says; otherwise says what the key holds.
    /// [`Idempotency::execute`] describes the outcomes.
    fn run<T, F, Fut>(
        &self,
        key: &StoreKey,
        fingerprint: Fingerprint,
        handler: F,
    ) -> impl Future<Output = Result<Outcome<T>>> + Send
    where
        T: Send,
        F: FnOnce(Self::Lent) -> Fut + Send,
        Fut: Future<Output = (T, Completion)> + Send;

    /// [`run`](Self::run), keeping `request_id` (the id of the request that
    /// runs) in the key's record where the engine can, and returning with
    /// the outcome the id kept by the request that holds or held the key
    /// ([`Traced::original_request_id`]). By default the id is neither kept
    /// nor returned: `run` as is.
    fn run_traced<T, F, Fut>(
        &self,
        key: &StoreKey,
        fingerprint: Fingerprint,
        request_id: Option<&str>,
        handler: F,
    ) -> impl Future<Output = Result<Traced<T>>> + Send
    where
        T: Send,
        F: FnOnce(Self::Lent) -> Fut + Send,
        Fut: Future<Output = (T, Completion)> + Send,
    {
        let _ = request_id;
        let run = self.run(key, fingerprint, handler);
        async move { Ok(Traced::ran(run.await?)) }
    }
}

impl Engine for Idempotency {
    type Lent = LeaseSignal;

    fn run<T, F, Fut>(
        &self,
        key: &StoreKey,
        fingerprint: Fingerprint,
        handler: F,
    ) -> impl Future<Output = Result<Outcome<T>>> + Send
    where
        T: Send,
        F: FnOnce(LeaseSignal) -> Fut + Send,
        Fut: Future<Output = (T, Completion)> + Send,
    {
        self.execute(key, fingerprint, handler)
    }

    fn run_traced<T, F, Fut>(
        &self,
        key: &StoreKey,
        fingerprint: Fingerprint,
        request_id: Option<&str>,
        handler: F,
    ) -> impl Future<Output = Result<Traced<T>>> + Send
    where
        T: Send,
        F: FnOnce(LeaseSignal) -> Fut + Send,
        Fut: Future<Output = (T, Completion)> + Send,
    {
        self.execute_traced(key, fingerprint, request_id, handler)
    }
}
