//! Idempotent calls of any async function: a key, an input, a handler that
//! returns `Result<T, E>`, and typed outcomes, over either engine.
//!
//! [`Call`] is the HTTP layer's protocol without HTTP: the input is
//! fingerprinted (its JSON), the handler runs at most once per key, and its
//! `T` is kept (as JSON, in a [`StoredResponse`] marked with
//! [`VALUE_CONTENT_TYPE`]) so that a retry gets the same `T` back. It runs on
//! any [`Engine`], so lease renewal, completion retries and the SQL stores'
//! transactional mode come with it.

mod codec;
mod outcome;
mod policy;

use std::fmt;
use std::future::Future;

use serde::Serialize;
use serde::de::DeserializeOwned;

pub use codec::{ERROR_CONTENT_TYPE, VALUE_CONTENT_TYPE};
pub use outcome::{CallError, Called};
pub use policy::{ErrorPolicy, KeepErrors, KeepErrorsIf, ReleaseErrors};

use crate::{Completion, Engine, Fingerprint, Outcome, StoreKey, StoredResponse};

/// One idempotent call: an engine, a key, the input, and an error policy
/// ([`ReleaseErrors`] unless [`with_error_policy`](Self::with_error_policy)
/// says otherwise). [`run`](Self::run) it with the handler.
///
/// Made by [`Call::new`] or by [`CallExt::call`] on an engine.
///
/// # Examples
/// ```
/// use std::sync::Arc;
/// use idem_core::{CallError, CallExt, Called, Idempotency, IdempotencyKey, KeySpace, Scope};
///
/// #[derive(serde::Serialize)]
/// struct SendInvoice { order: u64, email: &'static str }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let engine = Idempotency::new(Arc::new(idem_memory::MemoryStore::new()));
/// let key = KeySpace::default().key(&Scope::new("invoices")?, &IdempotencyKey::new("order-7")?);
/// let input = SendInvoice { order: 7, email: "alice@example.com" };
/// let send = |_lease| async move { Ok::<_, std::io::Error>(format!("invoice {} sent", input.order)) };
///
/// let first = engine.call(&key, &input).run(send).await?;
/// assert_eq!(first, Called::Executed("invoice 7 sent".to_owned()));
/// // A retry: the same value, and the invoice is not sent again.
/// let again = engine.call(&key, &input).run(send).await?;
/// assert_eq!(again, Called::Replayed("invoice 7 sent".to_owned()));
/// // The same key with another input is refused.
/// let other = SendInvoice { order: 8, email: "bob@example.com" };
/// let refused = engine.call(&key, &other).run(send).await;
/// assert!(matches!(refused, Err(CallError::Mismatch)));
/// # Ok(()) }
/// ```
pub struct Call<'a, En, I: ?Sized, P = ReleaseErrors> {
    engine: &'a En,
    key: &'a StoreKey,
    input: &'a I,
    policy: P,
}

impl<En: fmt::Debug, I: ?Sized, P: fmt::Debug> fmt::Debug for Call<'_, En, I, P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Call")
            .field("engine", &self.engine)
            .field("key", &self.key)
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

impl<'a, En: Engine, I: Serialize + ?Sized> Call<'a, En, I> {
    /// A call of `key` with `input` on `engine`; every error of the
    /// handler releases the key.
    pub fn new(engine: &'a En, key: &'a StoreKey, input: &'a I) -> Self {
        Self {
            engine,
            key,
            input,
            policy: ReleaseErrors,
        }
    }
}

impl<'a, En: Engine, I: Serialize + ?Sized, P> Call<'a, En, I, P> {
    /// The fingerprint of the input, as the call claims the key with: a
    /// SHA-256 over the input's JSON, object keys sorted.
    ///
    /// # Errors
    /// The input could not be serialized.
    pub fn fingerprint(&self) -> serde_json::Result<Fingerprint> {
        codec::fingerprint(self.input)
    }

    /// Which of the handler's errors are kept (and replayed to retries)
    /// rather than releasing the key.
    ///
    /// # Examples
    /// ```
    /// # use std::sync::Arc;
    /// use idem_core::{CallError, CallExt, Idempotency, KeepErrors, StoreKey};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let engine = Idempotency::new(Arc::new(idem_memory::MemoryStore::new()));
    /// let key = StoreKey::parse("charge:9")?;
    /// let decline = |_| async { Err::<u32, _>("card declined".to_owned()) };
    /// let call = || engine.call(&key, &9).with_error_policy(KeepErrors);
    /// assert!(matches!(call().run(decline).await, Err(CallError::Handler(e)) if e == "card declined"));
    /// // The retry gets the same error without running the handler.
    /// let retry = call().run(|_| async { Ok::<u32, String>(1) }).await;
    /// assert!(matches!(retry, Err(CallError::Replayed(e)) if e == "card declined"));
    /// # Ok(()) }
    /// ```
    pub fn with_error_policy<Q>(self, policy: Q) -> Call<'a, En, I, Q> {
        Call {
            engine: self.engine,
            key: self.key,
            input: self.input,
            policy,
        }
    }

    /// Runs `handler` with what the engine lends it (a
    /// [`LeaseSignal`](crate::LeaseSignal) for [`Idempotency`](crate::Idempotency),
    /// the transaction for a SQL store's transactional mode), unless the key
    /// already holds a result for this input.
    ///
    /// - Key free: the handler runs. `Ok(value)` is kept and returned as
    ///   [`Called::Executed`] (or [`Called::Lost`] if it could not be kept);
    ///   `Err(error)` is kept or releases the key as the policy says, and is
    ///   returned as [`CallError::Handler`].
    /// - Completed with the same input: [`Called::Replayed`] with the kept
    ///   value, or [`CallError::Replayed`] with the kept error.
    ///
    /// # Errors
    /// Besides the handler's: [`CallError::InFlight`] (another run holds the
    /// key), [`CallError::Mismatch`] (the key was used with another input),
    /// [`CallError::Input`], [`CallError::Decode`] and [`CallError::Store`].
    /// The handler does not run in any of them.
    pub fn run<T, E, F, Fut>(
        self,
        handler: F,
    ) -> impl Future<Output = Result<Called<T>, CallError<E>>> + Send + 'a
    where
        T: Serialize + DeserializeOwned + Send + 'a,
        E: Send + 'a,
        P: ErrorPolicy<E> + Send + Sync + 'a,
        F: FnOnce(En::Lent) -> Fut + Send + 'a,
        Fut: Future<Output = Result<T, E>> + Send + 'a,
    {
        let fingerprint = codec::fingerprint(self.input);
        let Self {
            engine,
            key,
            policy,
            ..
        } = self;
        async move {
            let fingerprint = fingerprint.map_err(CallError::Input)?;
            let policy = &policy;
            let outcome = engine
                .run(key, fingerprint, move |lent| async move {
                    let result = handler(lent).await;
                    let completion = completion(policy, &result, key);
                    (result, completion)
                })
                .await?;
            match outcome {
                Outcome::Executed(Ok(value)) => Ok(Called::Executed(value)),
                // Released with a value only when the value could not be encoded.
                Outcome::Released(Ok(value)) | Outcome::Lost(Ok(value)) => Ok(Called::Lost(value)),
                Outcome::Executed(Err(error))
                | Outcome::Released(Err(error))
                | Outcome::Lost(Err(error)) => Err(CallError::Handler(error)),
                Outcome::Replayed(response) => {
                    codec::decode(policy, &response).map(Called::Replayed)
                }
                Outcome::ReplayedNotRetained { .. } => Err(CallError::Decode {
                    reason: "the key completed without keeping its result",
                    source: None,
                }),
                Outcome::InFlight { retry_after } => Err(CallError::InFlight { retry_after }),
                Outcome::Mismatch => Err(CallError::Mismatch),
            }
        }
    }
}

/// What becomes of the handler's result: a value is kept; an error is kept
/// or released as the policy says. A result that cannot be encoded releases
/// the key (and is logged): its caller still gets it.
fn completion<T: Serialize, E, P: ErrorPolicy<E>>(
    policy: &P,
    result: &Result<T, E>,
    key: &StoreKey,
) -> Completion {
    let stored: Result<StoredResponse, crate::BoxError> = match result {
        Ok(value) => codec::encode_value(value).map_err(Into::into),
        Err(error) if policy.keeps(error) => codec::encode_error(policy, error),
        Err(_) => return Completion::Release,
    };
    match stored {
        Ok(response) => Completion::Keep(response),
        Err(error) => {
            tracing::error!(%key, %error, event = "completion_lost", "the call's result could not be encoded; the key is released");
            Completion::Release
        }
    }
}

/// [`Call`]s from any [`Engine`]: `engine.call(&key, &input).run(handler)`.
pub trait CallExt: Engine {
    /// A call of `key` with `input` on this engine ([`Call::new`]).
    fn call<'a, I: Serialize + ?Sized>(
        &'a self,
        key: &'a StoreKey,
        input: &'a I,
    ) -> Call<'a, Self, I> {
        Call::new(self, key, input)
    }
}

impl<En: Engine> CallExt for En {}
