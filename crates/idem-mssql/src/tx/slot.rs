//! Lending one value to one holder at a time: where a run's transaction
//! waits while the handler does not hold it. Generic, so that its rules are
//! tested without a server.

use std::ops::{Deref, DerefMut};
use std::sync::{Arc, Mutex, MutexGuard};

/// A value that is home, lent, or gone (taken for good).
pub(crate) struct Slot<T>(Arc<Mutex<Option<T>>>);

impl<T> Clone for Slot<T> {
    fn clone(&self) -> Self {
        Self(self.0.clone())
    }
}

impl<T> Slot<T> {
    pub(crate) fn new(value: T) -> Self {
        Self(Arc::new(Mutex::new(Some(value))))
    }

    fn lock(&self) -> MutexGuard<'_, Option<T>> {
        // Every change under the lock is one `Option::take` or assignment.
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The value for good, if it is home: the run is over.
    pub(crate) fn take(&self) -> Option<T> {
        self.lock().take()
    }

    /// Whether the value is home (not lent, not taken).
    pub(crate) fn is_home(&self) -> bool {
        self.lock().is_some()
    }

    /// The value until the returned guard is dropped; `None` while another
    /// guard holds it, or once it was taken.
    pub(crate) fn lend(&self) -> Option<Lent<T>> {
        let value = self.take()?;
        Some(Lent {
            value: Some(value),
            home: self.clone(),
        })
    }
}

/// A lent value; dropping it sends the value home.
pub(crate) struct Lent<T> {
    value: Option<T>,
    home: Slot<T>,
}

impl<T> Deref for Lent<T> {
    type Target = T;

    fn deref(&self) -> &T {
        self.value
            .as_ref()
            .expect("the value is only taken on drop")
    }
}

impl<T> DerefMut for Lent<T> {
    fn deref_mut(&mut self) -> &mut T {
        self.value
            .as_mut()
            .expect("the value is only taken on drop")
    }
}

impl<T> Drop for Lent<T> {
    fn drop(&mut self) {
        if let Some(value) = self.value.take() {
            *self.home.lock() = Some(value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_value_is_lent_to_one_holder_at_a_time_and_comes_home_on_drop() {
        let slot = Slot::new(String::from("tx"));
        let mut lent = slot.lend().expect("home");
        assert!(!slot.is_home());
        assert!(slot.lend().is_none(), "lent twice");
        assert!(slot.clone().lend().is_none(), "lent twice through a clone");
        lent.push_str("+write");
        drop(lent);
        assert!(slot.is_home());
        assert_eq!(slot.lend().as_deref().map(String::as_str), Some("tx+write"));
        assert_eq!(slot.take().as_deref(), Some("tx+write"));
        assert!(slot.lend().is_none(), "lent after the run");
        assert!(slot.take().is_none());
    }

    #[test]
    fn a_value_kept_past_the_take_is_not_taken_and_comes_home_later() {
        let slot = Slot::new(7);
        let kept = slot.lend().unwrap();
        assert_eq!(slot.take(), None, "the run must see it is missing");
        drop(kept);
        assert!(
            slot.is_home(),
            "home again, for nobody: dropped with the slot"
        );
    }

    #[test]
    fn a_panicking_holder_sends_the_value_home() {
        let slot = Slot::new(1);
        let in_thread = slot.clone();
        let joined = std::thread::spawn(move || {
            let _held = in_thread.lend().unwrap();
            panic!("handler fails");
        })
        .join();
        assert!(joined.is_err());
        assert_eq!(slot.take(), Some(1));
    }
}
