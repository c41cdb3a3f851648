//! Which handler errors are kept (replayed to retries) and which release the
//! key so that a retry runs again.

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::BoxError;

/// Says, for a handler's error, whether it is kept or releases the key, and
/// how a kept error is encoded in the store and read back.
///
/// A released key lets a retry run the handler again: right for errors a
/// retry may fix (a timeout, a service that was down). A kept error is
/// stored like a value, and every retry with the same input gets it back
/// without running the handler: right for final answers (a card declined,
/// an order that does not exist).
///
/// [`ReleaseErrors`] (the default) keeps none, [`KeepErrors`] keeps all and
/// [`KeepErrorsIf`] keeps those its predicate picks; the last two need
/// `E: Serialize + DeserializeOwned` and encode errors as JSON.
pub trait ErrorPolicy<E> {
    /// Whether `error` is kept (`true`) or releases the key (`false`).
    fn keeps(&self, error: &E) -> bool;

    /// `error` as stored, for an error that [`keeps`](Self::keeps) picked.
    ///
    /// # Errors
    /// The encoder's error; the key is then released.
    fn encode(&self, error: &E) -> Result<Vec<u8>, BoxError>;

    /// Reads back an error stored by [`encode`](Self::encode).
    ///
    /// # Errors
    /// The decoder's error, or the policy keeps no errors.
    fn decode(&self, body: &[u8]) -> Result<E, BoxError>;
}

/// The default policy: every error releases the key, so a retry runs the
/// handler again. Works for any error type.
#[derive(Debug, Clone, Copy, Default)]
pub struct ReleaseErrors;

impl<E> ErrorPolicy<E> for ReleaseErrors {
    fn keeps(&self, _: &E) -> bool {
        false
    }

    fn encode(&self, _: &E) -> Result<Vec<u8>, BoxError> {
        Err("this call's error policy keeps no errors".into())
    }

    fn decode(&self, _: &[u8]) -> Result<E, BoxError> {
        Err(
            "the key holds a kept error, but this call's error policy keeps none \
             (give the call the policy that kept it)"
                .into(),
        )
    }
}

/// Every error is kept: a retry gets the same error back.
#[derive(Debug, Clone, Copy, Default)]
pub struct KeepErrors;

impl<E: Serialize + DeserializeOwned> ErrorPolicy<E> for KeepErrors {
    fn keeps(&self, _: &E) -> bool {
        true
    }

    fn encode(&self, error: &E) -> Result<Vec<u8>, BoxError> {
        Ok(serde_json::to_vec(error)?)
    }

    fn decode(&self, body: &[u8]) -> Result<E, BoxError> {
        Ok(serde_json::from_slice(body)?)
    }
}

/// The errors for which the predicate says `true` are kept; the others
/// release the key.
///
/// # Examples
/// ```
/// use idem_core::{ErrorPolicy, KeepErrorsIf};
///
/// #[derive(serde::Serialize, serde::Deserialize)]
/// enum PayError { Declined, NetworkDown }
///
/// let policy = KeepErrorsIf(|e: &PayError| matches!(e, PayError::Declined));
/// assert!(policy.keeps(&PayError::Declined));
/// assert!(!policy.keeps(&PayError::NetworkDown));
/// ```
#[derive(Debug, Clone, Copy)]
pub struct KeepErrorsIf<F>(pub F);

impl<E, F> ErrorPolicy<E> for KeepErrorsIf<F>
where
    E: Serialize + DeserializeOwned,
    F: Fn(&E) -> bool,
{
    fn keeps(&self, error: &E) -> bool {
        (self.0)(error)
    }

    fn encode(&self, error: &E) -> Result<Vec<u8>, BoxError> {
        KeepErrors.encode(error)
    }

    fn decode(&self, body: &[u8]) -> Result<E, BoxError> {
        KeepErrors.decode(body)
    }
}
