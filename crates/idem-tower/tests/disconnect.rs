//! Over a real socket: a client that hangs up mid-handler does not cancel the
//! handler, and its retry gets the stored response.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use idem_tower::IdempotencyLayer;
use support::{key, memory};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

#[derive(Clone, Default)]
struct Counters {
    started: Arc<AtomicUsize>,
    finished: Arc<AtomicUsize>,
}

async fn pay(State(c): State<Counters>) -> (StatusCode, String) {
    let n = c.started.fetch_add(1, SeqCst) + 1;
    tokio::time::sleep(Duration::from_millis(300)).await;
    c.finished.fetch_add(1, SeqCst);
    (StatusCode::CREATED, format!("payment {n}"))
}

fn raw_post(key: &str) -> String {
    format!(
        "POST /pay HTTP/1.1\r\nhost: localhost\r\nidempotency-key: {key}\r\n\
         content-type: application/json\r\ncontent-length: 2\r\nconnection: close\r\n\r\n{{}}"
    )
}

async fn exchange(addr: std::net::SocketAddr, key: &str) -> String {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(raw_post(key).as_bytes()).await.unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.unwrap();
    answer.to_ascii_lowercase()
}

#[tokio::test]
async fn a_hang_up_mid_handler_still_stores_the_response() {
    let counters = Counters::default();
    let app = Router::new()
        .route("/pay", post(pay))
        .with_state(counters.clone())
        .layer(IdempotencyLayer::new(memory()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let k = key();
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(raw_post(&k).as_bytes()).await.unwrap();
    while counters.started.load(SeqCst) == 0 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    drop(stream); // the client hangs up while the handler runs

    // The retry is told to wait while the first run finishes, then replays it.
    let answer = loop {
        let answer = exchange(addr, &k).await;
        if !answer.starts_with("http/1.1 409") {
            break answer;
        }
        assert!(answer.contains("retry-after:"), "{answer}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(answer.starts_with("http/1.1 201"), "{answer}");
    assert!(answer.contains("idempotent-replayed: true"), "{answer}");
    assert!(answer.ends_with("payment 1"), "{answer}");
    assert_eq!(counters.started.load(SeqCst), 1, "the handler ran once");
    assert_eq!(counters.finished.load(SeqCst), 1, "and ran to the end");
}
