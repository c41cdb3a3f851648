//! Starts the demo on an ephemeral port with a fresh SQLite file.

#![allow(dead_code, unreachable_pub)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bytes::Bytes;
use idem_core::{Claim, Error, IdempotencyStore, LeaseToken, Result, StoreKey};
use idem_demo::{Config, Demo};
use serde_json::{Value, json};
use tokio::task::JoinHandle;

#[cfg(unix)]
pub mod process;
pub mod servers;

/// A demo serving on 127.0.0.1 until dropped.
pub struct Running {
    pub base: String,
    pub demo: Demo,
    task: JoinHandle<()>,
    _dir: tempfile::TempDir,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Running {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn payment_rows(&self) -> i64 {
        self.demo.payments().count().await.unwrap()
    }

    /// The payments as `GET /payments` lists them.
    pub async fn listed(&self) -> Vec<Value> {
        http()
            .get(self.url("/payments"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }
}

/// Starts the demo with its SQLite store, after `tune` changed the config.
pub async fn start(tune: impl FnOnce(&mut Config)) -> Running {
    start_inner(tune, None).await
}

/// Starts the demo in the lease mode: the idempotency records through the
/// store URL (the same SQLite file), the payments apart, so a duplicate of
/// a running payment gets `409` at once (in the default transactional mode
/// it waits for the first one's transaction, then replays).
pub async fn start_lease(tune: impl FnOnce(&mut Config)) -> Running {
    start_inner(
        |c| {
            c.store_url = Some(format!("sqlite://{}", c.database.display()));
            tune(c)
        },
        None,
    )
    .await
}

/// Starts the demo with the SQLite store wrapped in a [`Switch`].
pub async fn start_switchable(tune: impl FnOnce(&mut Config)) -> (Running, Arc<Switch>) {
    let switch = Arc::new(Switch::default());
    let running = start_inner(tune, Some(switch.clone())).await;
    (running, switch)
}

async fn start_inner(tune: impl FnOnce(&mut Config), switch: Option<Arc<Switch>>) -> Running {
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::new(dir.path().join("demo.db"));
    tune(&mut config);
    let demo = match switch {
        None => Demo::open(config).await.unwrap(),
        Some(switch) => {
            // The payments table first: it creates the file.
            let payments = idem_demo::db::Payments::open(&config.database)
                .await
                .unwrap();
            drop(payments);
            let store_config = idem_demo::store::store_config(&config.store_url()).unwrap();
            let inner = idem_demo::store::open_store(&store_config).await.unwrap();
            *switch.inner.lock().unwrap() = Some(inner);
            Demo::with_store(config, switch).await.unwrap()
        }
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let task = tokio::spawn(demo.clone().serve(listener));
    Running {
        base,
        demo,
        task,
        _dir: dir,
    }
}

/// A store that forwards to the real one, or fails as unreachable when off.
#[derive(Debug, Default)]
pub struct Switch {
    inner: std::sync::Mutex<Option<Arc<dyn IdempotencyStore>>>,
    down: AtomicBool,
}

impl Switch {
    pub fn set_down(&self, down: bool) {
        self.down.store(down, Ordering::SeqCst);
    }

    fn get(&self) -> Result<Arc<dyn IdempotencyStore>> {
        if self.down.load(Ordering::SeqCst) {
            return Err(Error::unavailable(
                "switch",
                std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "switched off"),
            ));
        }
        Ok(self.inner.lock().unwrap().clone().expect("store set"))
    }
}

#[idem_core::async_trait]
impl IdempotencyStore for Switch {
    async fn find(&self, key: &StoreKey) -> Result<Option<Bytes>> {
        self.get()?.find(key).await
    }
    async fn store(&self, key: &StoreKey, value: Bytes, ttl: Duration) -> Result<()> {
        self.get()?.store(key, value, ttl).await
    }
    async fn remove(&self, key: &StoreKey) -> Result<bool> {
        self.get()?.remove(key).await
    }
    async fn exists(&self, key: &StoreKey) -> Result<bool> {
        self.get()?.exists(key).await
    }
    async fn claim(&self, key: &StoreKey, pending: Bytes, lease: Duration) -> Result<Claim> {
        self.get()?.claim(key, pending, lease).await
    }
    async fn extend(&self, key: &StoreKey, token: &LeaseToken, lease: Duration) -> Result<()> {
        self.get()?.extend(key, token, lease).await
    }
    async fn complete(
        &self,
        key: &StoreKey,
        token: &LeaseToken,
        value: Bytes,
        ttl: Duration,
    ) -> Result<()> {
        self.get()?.complete(key, token, value, ttl).await
    }
    async fn release(&self, key: &StoreKey, token: &LeaseToken) -> Result<bool> {
        self.get()?.release(key, token).await
    }
}

/// The tutorial's payment.
pub fn alice() -> Value {
    json!({"amount": 99.99, "currency": "EUR", "recipient": "alice@example.com"})
}

pub fn new_key() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// A plain client: no retries, so every status is seen as sent.
pub fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

pub async fn pay(base: &Running, key: &str, body: &Value) -> reqwest::Response {
    http()
        .post(base.url("/payments"))
        .header("Idempotency-Key", key)
        .json(body)
        .send()
        .await
        .unwrap()
}

pub fn replayed(response: &reqwest::Response) -> bool {
    response
        .headers()
        .get("idempotent-replayed")
        .is_some_and(|v| v == "true")
}

/// Sends `copies` payments with one key at once, and asserts what the
/// transactional mode promises them: exactly one ran the handler, at least
/// one duplicate waited for it and replayed it, every `201` is the same
/// payment, and the rest were told to come back (`409`, past the lock wait).
pub async fn race_one_key(demo: &Running, copies: usize) {
    let key = new_key();
    let calls: Vec<_> = (0..copies)
        .map(|_| {
            let (demo_url, key) = (demo.url("/payments"), key.clone());
            tokio::spawn(async move {
                let response = http()
                    .post(demo_url)
                    .header("Idempotency-Key", key)
                    .json(&alice())
                    .send()
                    .await
                    .unwrap();
                let status = response.status().as_u16();
                let replay = replayed(&response);
                (status, replay, response.json::<Value>().await.unwrap())
            })
        })
        .collect();
    let (mut fresh, mut replays, mut ids) = (0, 0, std::collections::HashSet::new());
    for call in calls {
        match call.await.unwrap() {
            (201, replay, body) => {
                if replay {
                    replays += 1;
                } else {
                    fresh += 1;
                }
                ids.insert(body["id"].as_str().unwrap().to_owned());
            }
            (409, _, _) => {}
            (status, _, body) => panic!("unexpected {status}: {body}"),
        }
    }
    assert_eq!(fresh, 1, "exactly one request ran the handler");
    assert!(
        replays > 0,
        "no duplicate waited for the first and replayed"
    );
    assert_eq!(ids.len(), 1, "every 201 is the same payment");
}

/// Asserts a problem+json answer with `status`, and returns its document.
pub async fn problem(response: reqwest::Response, status: u16) -> Value {
    assert_eq!(response.status(), status);
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );
    let doc: Value = response.json().await.unwrap();
    assert!(
        doc["type"].as_str().unwrap().starts_with("https://"),
        "{doc}"
    );
    doc
}
