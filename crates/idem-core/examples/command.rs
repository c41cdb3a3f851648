//! Commands made idempotent in-process: the shape a mediator's pipeline
//! behaviour takes with idem's typed API.
//!
//! A mediator sends each command through a pipeline of behaviours to its
//! handler. [`Idempotent`] is one behaviour: it wraps any handler, takes the
//! key from the command, and lets the handler run at most once per key; a
//! duplicate command gets the first result back.
//!
//! `cargo run -p idem-core --example command`; `cargo test -p idem-core
//! --example command` runs its tests.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use idem_core::{CallError, CallExt, Idempotency, IdempotencyKey, KeepErrorsIf, KeySpace, Scope};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// A command that carries its own idempotency key (a client's request id,
/// a message id).
trait Command: Serialize + Send + Sync {
    /// What handling it returns.
    type Output: Serialize + DeserializeOwned + Send;
    /// Names the command in keys, so two kinds of command never share one.
    const NAME: &'static str;
    /// The key that makes two commands "the same".
    fn idempotency_key(&self) -> &str;
}

/// What a handler (or a behaviour in front of it) can fail with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
enum AppError {
    #[error("the account has {balance} cents; {wanted} were asked")]
    InsufficientFunds { balance: u64, wanted: u64 },
    #[error("the same command is being handled; retry in {0:?}")]
    Busy(Duration),
    #[error("this key was used for another command")]
    KeyReused,
    #[error("{0}")]
    Infrastructure(String),
}

/// A command handler, as a mediator calls it.
trait Handler<C: Command>: Send + Sync {
    fn handle(&self, command: &C) -> impl Future<Output = Result<C::Output, AppError>> + Send;
}

/// The pipeline behaviour: the inner handler runs at most once per key.
/// Final business errors are kept (a duplicate gets the same refusal);
/// anything else releases the key so that a retry runs again.
struct Idempotent<H> {
    inner: H,
    engine: Idempotency,
    keys: KeySpace,
}

impl<C: Command, H: Handler<C>> Handler<C> for Idempotent<H> {
    async fn handle(&self, command: &C) -> Result<C::Output, AppError> {
        let infra = |e: &dyn std::fmt::Display| AppError::Infrastructure(e.to_string());
        let scope = Scope::new(C::NAME).map_err(|e| infra(&e))?;
        let id = IdempotencyKey::new(command.idempotency_key()).map_err(|e| infra(&e))?;
        let key = self.keys.key(&scope, &id);
        let final_errors =
            KeepErrorsIf(|e: &AppError| matches!(e, AppError::InsufficientFunds { .. }));
        let called = self
            .engine
            .call(&key, command)
            .with_error_policy(final_errors)
            .run(|_lease| self.inner.handle(command))
            .await;
        match called {
            Ok(called) => Ok(called.into_value()),
            Err(CallError::Handler(e) | CallError::Replayed(e)) => Err(e),
            Err(CallError::InFlight { retry_after }) => Err(AppError::Busy(retry_after)),
            Err(CallError::Mismatch) => Err(AppError::KeyReused),
            Err(other) => Err(infra(&other)),
        }
    }
}

/// A command: move money out of the account.
#[derive(Debug, Serialize)]
struct Withdraw {
    request_id: String,
    cents: u64,
}

impl Command for Withdraw {
    type Output = Receipt;
    const NAME: &'static str = "withdraw";
    fn idempotency_key(&self) -> &str {
        &self.request_id
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Receipt {
    withdrawal: u64,
    balance: u64,
}

/// The business handler: not idempotent on its own.
#[derive(Debug)]
struct Account {
    balance: AtomicU64,
    withdrawals: AtomicU64,
}

impl Handler<Withdraw> for Arc<Account> {
    async fn handle(&self, command: &Withdraw) -> Result<Receipt, AppError> {
        let balance = self.balance.load(Ordering::SeqCst);
        if balance < command.cents {
            return Err(AppError::InsufficientFunds {
                balance,
                wanted: command.cents,
            });
        }
        self.balance.fetch_sub(command.cents, Ordering::SeqCst);
        let withdrawal = self.withdrawals.fetch_add(1, Ordering::SeqCst) + 1;
        Ok(Receipt {
            withdrawal,
            balance: balance - command.cents,
        })
    }
}

fn pipeline(account: Arc<Account>) -> Idempotent<Arc<Account>> {
    let store = Arc::new(idem_memory::MemoryStore::new());
    Idempotent {
        inner: account,
        engine: Idempotency::new(store),
        keys: KeySpace::default(),
    }
}

fn account(cents: u64) -> Arc<Account> {
    Arc::new(Account {
        balance: AtomicU64::new(cents),
        withdrawals: AtomicU64::new(0),
    })
}

fn withdraw(request_id: &str, cents: u64) -> Withdraw {
    Withdraw {
        request_id: request_id.to_owned(),
        cents,
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let account = account(100);
    let mediator = pipeline(account.clone());
    for (id, cents) in [("req-1", 30), ("req-1", 30), ("req-2", 500), ("req-2", 500)] {
        let answer = mediator.handle(&withdraw(id, cents)).await;
        println!("{id} withdraw {cents}: {answer:?}");
    }
    println!(
        "balance {} after {} withdrawal(s)",
        account.balance.load(Ordering::SeqCst),
        account.withdrawals.load(Ordering::SeqCst)
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_duplicate_command_gets_the_first_receipt_and_moves_no_money() {
        let account = account(100);
        let mediator = pipeline(account.clone());
        let first = mediator.handle(&withdraw("req-1", 30)).await.unwrap();
        let duplicate = mediator.handle(&withdraw("req-1", 30)).await.unwrap();
        assert_eq!(
            first,
            Receipt {
                withdrawal: 1,
                balance: 70
            }
        );
        assert_eq!(duplicate, first);
        assert_eq!(account.balance.load(Ordering::SeqCst), 70);
        assert_eq!(account.withdrawals.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn duplicates_racing_run_the_handler_once() {
        let account = account(1_000);
        let mediator = Arc::new(pipeline(account.clone()));
        let tasks: Vec<_> = (0..16)
            .map(|_| {
                let mediator = mediator.clone();
                tokio::spawn(async move { mediator.handle(&withdraw("req-9", 10)).await })
            })
            .collect();
        for task in tasks {
            match task.await.unwrap() {
                Ok(receipt) => assert_eq!(
                    receipt,
                    Receipt {
                        withdrawal: 1,
                        balance: 990
                    }
                ),
                Err(AppError::Busy(_)) => {}
                Err(other) => panic!("{other:?}"),
            }
        }
        assert_eq!(account.withdrawals.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_final_refusal_is_kept_and_a_reused_key_is_refused() {
        let account = account(10);
        let mediator = pipeline(account.clone());
        let refused = AppError::InsufficientFunds {
            balance: 10,
            wanted: 50,
        };
        assert_eq!(
            mediator.handle(&withdraw("req-2", 50)).await,
            Err(refused.clone())
        );
        // Money arrives; the duplicate still gets the first answer.
        account.balance.store(100, Ordering::SeqCst);
        assert_eq!(mediator.handle(&withdraw("req-2", 50)).await, Err(refused));
        assert_eq!(
            mediator.handle(&withdraw("req-2", 60)).await,
            Err(AppError::KeyReused)
        );
        assert_eq!(account.withdrawals.load(Ordering::SeqCst), 0);
    }
}
