//! Writes a few records as an app behind the layer would, to try the `idem`
//! command on: in scope `tenant-42`, `order-1001` completed (201 with a JSON
//! body), `order-1002` in progress, `order-0999` already expired.
//!
//! ```sh
//! IDEM_STORE_URL=sqlite://idem.db cargo run -p idem-cli --example seed
//! ```

use std::time::Duration;

use bytes::Bytes;
use idem::{
    Completion, Fingerprint, IdempotencyKey, Record, RecordState, Scope, StoreConfig,
    StoredResponse,
};

#[tokio::main(flavor = "current_thread")]
async fn main() -> idem::Result<()> {
    let config = StoreConfig::load(None)?;
    let store = config.connect().await?;
    let engine = config.engine_over(store.clone());
    let space = config.key_space()?;
    let scope = Scope::new("tenant-42")?;
    let key = |k: &str| IdempotencyKey::new(k).map(|k| space.key(&scope, &k));
    let body = br#"{"amount":"99.99","currency":"EUR"}"#;
    let fp = Fingerprint::of_request("POST", "/payments", body);

    let response = StoredResponse {
        status: 201,
        headers: vec![
            (
                "content-type".into(),
                Bytes::from_static(b"application/json"),
            ),
            ("location".into(), Bytes::from_static(b"/payments/pay_7f3a")),
        ],
        body: Bytes::from_static(br#"{"id":"pay_7f3a","status":"succeeded"}"#),
    };
    engine
        .execute(&key("order-1001")?, fp, |_| async {
            ((), Completion::Keep(response))
        })
        .await?;
    let lease = Duration::from_secs(300);
    let pending = Record::in_progress(fp, lease).encode();
    store.claim(&key("order-1002")?, pending, lease).await?;
    let gone = Record::new(
        fp,
        RecordState::CompletedNotRetained { status: 201 },
        Duration::ZERO,
    );
    store
        .store(&key("order-0999")?, gone.encode(), Duration::from_millis(1))
        .await?;
    println!(
        "seeded order-1001 (completed), order-1002 (in progress), order-0999 (expired) in scope tenant-42"
    );
    Ok(())
}
