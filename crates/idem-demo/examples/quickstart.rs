//! The top README's first example: a store from a URL, the layer, a route.
//!
//! ```sh
//! IDEM_STORE_URL=sqlite://idem.db cargo run -p idem-demo --example quickstart
//! curl -i -X POST -H 'Idempotency-Key: k1' 127.0.0.1:3000/payments   # 201, ran
//! curl -i -X POST -H 'Idempotency-Key: k1' 127.0.0.1:3000/payments   # 201, Idempotent-Replayed: true
//! ```

use axum::{Router, http::StatusCode, routing::post};
use idem_tower::IdempotencyLayer;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = std::env::var("IDEM_STORE_URL").unwrap_or_else(|_| "memory://".into());
    let store = idem::connect(&url).await?; // memory://, sqlite://, postgres://, redis://, ...
    let app = Router::new()
        .route(
            "/payments",
            post(|| async { (StatusCode::CREATED, "paid") }),
        )
        .layer(IdempotencyLayer::new(store));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
    axum::serve(listener, app).await?;
    Ok(())
}
