//! The layer around a mock inner service (`tower::service_fn`): the main
//! paths, a client that disconnects mid-handler, and 64 racing duplicates.

mod support;

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use idem_core::IdempotencyStore;
use idem_tower::IdempotencyLayer;
use support::{key, memory};
use tokio::sync::Notify;
use tower::{Layer, Service, ServiceExt, service_fn};

type Body = Full<Bytes>;

/// A handler that counts its runs, optionally waits, and answers 201 with the
/// run number and the request body.
fn handler(
    runs: Arc<AtomicUsize>,
    delay: Duration,
    started: Arc<Notify>,
) -> impl Service<Request<Body>, Response = Response<Body>, Error = Infallible, Future: Send>
+ Clone
+ Send
+ 'static {
    service_fn(move |req: Request<Body>| {
        let runs = runs.clone();
        let started = started.clone();
        async move {
            let n = runs.fetch_add(1, SeqCst) + 1;
            started.notify_one();
            tokio::time::sleep(delay).await;
            let body = req.into_body().collect().await.unwrap().to_bytes();
            let text = format!("run {n}: {}", String::from_utf8_lossy(&body));
            Ok::<_, Infallible>(
                Response::builder()
                    .status(StatusCode::CREATED)
                    .header("content-type", "text/plain")
                    .header("set-cookie", "s=1")
                    .body(Body::from(text))
                    .unwrap(),
            )
        }
    })
}

fn post(key: Option<&str>, body: &'static str) -> Request<Body> {
    let mut b = Request::builder().method("POST").uri("/orders");
    if let Some(k) = key {
        b = b.header("idempotency-key", k);
    }
    b.body(Body::from(body)).unwrap()
}

async fn read(response: Response<Body>) -> (StatusCode, http::HeaderMap, Bytes) {
    let (parts, body) = response.into_parts();
    (
        parts.status,
        parts.headers,
        body.collect().await.unwrap().to_bytes(),
    )
}

fn setup(
    store: Arc<dyn IdempotencyStore>,
    delay: Duration,
) -> (
    impl Service<Request<Body>, Response = Response<Body>, Error = Infallible, Future: Send>
    + Clone
    + Send
    + 'static,
    Arc<AtomicUsize>,
    Arc<Notify>,
    IdempotencyLayer,
) {
    let runs = Arc::new(AtomicUsize::new(0));
    let started = Arc::new(Notify::new());
    let layer = IdempotencyLayer::new(store);
    let svc = layer.layer(handler(runs.clone(), delay, started.clone()));
    (svc, runs, started, layer)
}

#[tokio::test]
async fn mock_service_first_replay_mismatch_and_pass_through() {
    let (svc, runs, _, layer) = setup(memory(), Duration::ZERO);
    let k = key();
    let (status, headers, body) =
        read(svc.clone().oneshot(post(Some(&k), "a")).await.unwrap()).await;
    assert_eq!(status, StatusCode::CREATED);
    assert!(headers.get("idempotent-replayed").is_none());
    assert_eq!(body, "run 1: a");

    let (status, headers, replay) =
        read(svc.clone().oneshot(post(Some(&k), "a")).await.unwrap()).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(headers["idempotent-replayed"], "true");
    assert_eq!(headers["content-type"], "text/plain");
    assert!(headers.get("set-cookie").is_none());
    assert_eq!(replay, body);

    let (status, headers, _) = read(svc.clone().oneshot(post(Some(&k), "b")).await.unwrap()).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(headers["content-type"], "application/problem+json");

    let (status, _, body) = read(svc.clone().oneshot(post(None, "c")).await.unwrap()).await;
    assert_eq!((status, &body[..]), (StatusCode::CREATED, &b"run 2: c"[..]));

    let get = Request::get("/orders")
        .header("idempotency-key", "x")
        .body(Body::default())
        .unwrap();
    let (status, _, _) = read(svc.clone().oneshot(get).await.unwrap()).await;
    assert_eq!(status, StatusCode::CREATED, "GET passes through");
    assert_eq!(runs.load(SeqCst), 3);
    let m = layer.metrics().snapshot();
    assert_eq!(
        (m.executed, m.replayed, m.mismatch, m.passed_through),
        (1, 1, 1, 2)
    );
}

#[tokio::test]
async fn a_client_that_disconnects_mid_handler_still_gets_the_replay() {
    let (svc, runs, started, _) = setup(memory(), Duration::from_millis(300));
    let k = key();
    let call = svc.clone().oneshot(post(Some(&k), "pay"));
    // Drive the call until the handler has started, then drop it: the client
    // went away mid-request.
    tokio::select! {
        _ = call => panic!("the handler should still be running"),
        _ = started.notified() => {}
    }
    // While it runs, a retry is told to wait.
    let (status, headers, _) =
        read(svc.clone().oneshot(post(Some(&k), "pay")).await.unwrap()).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert!(headers.contains_key("retry-after"));
    // The handler runs to the end on its own; the retry then replays its result.
    let (status, headers, body) = loop {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let answer = read(svc.clone().oneshot(post(Some(&k), "pay")).await.unwrap()).await;
        if answer.0 != StatusCode::CONFLICT {
            break answer;
        }
    };
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(headers["idempotent-replayed"], "true");
    assert_eq!(body, "run 1: pay");
    assert_eq!(runs.load(SeqCst), 1, "the handler ran once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sixty_four_racing_duplicates_run_the_handler_once() {
    let (svc, runs, _, _) = setup(memory(), Duration::from_millis(20));
    let k = key();
    let barrier = Arc::new(tokio::sync::Barrier::new(64));
    let tasks: Vec<_> = (0..64)
        .map(|_| {
            let svc = svc.clone();
            let k = k.clone();
            let barrier = barrier.clone();
            tokio::spawn(async move {
                barrier.wait().await;
                read(svc.oneshot(post(Some(&k), "same")).await.unwrap()).await
            })
        })
        .collect();
    let mut answers = Vec::new();
    for t in tasks {
        answers.push(t.await.unwrap());
    }
    assert_eq!(runs.load(SeqCst), 1, "exactly one handler run");
    let mut created = 0;
    for (status, headers, body) in &answers {
        match *status {
            StatusCode::CREATED => {
                created += 1;
                assert_eq!(body, "run 1: same");
                assert_eq!(headers["content-type"], "text/plain");
            }
            StatusCode::CONFLICT => assert!(headers.contains_key("retry-after")),
            other => panic!("unexpected {other}"),
        }
    }
    assert!(created >= 1, "the one run answered its own caller");
    // After the race, every retry is the same replay.
    let (status, headers, body) = read(svc.oneshot(post(Some(&k), "same")).await.unwrap()).await;
    assert_eq!(
        (status, &body[..]),
        (StatusCode::CREATED, &b"run 1: same"[..])
    );
    assert_eq!(headers["idempotent-replayed"], "true");
}
