//! The client against a small axum server that fails on purpose and records the keys it saw.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use idem_client::{CallReport, RetryPolicy};
use reqwest_middleware::ClientWithMiddleware;

/// What the server answers on the n-th attempt; after the script, 201.
#[derive(Clone, Copy)]
struct Step {
    status: u16,
    retry_after: Option<u64>,
    delay: Duration,
}

fn fail(status: u16) -> Step {
    Step {
        status,
        retry_after: None,
        delay: Duration::ZERO,
    }
}

/// The layer's answer while the same key is still running: 409 with `Retry-After`.
fn in_flight() -> Step {
    Step {
        status: 409,
        retry_after: Some(0),
        delay: Duration::ZERO,
    }
}

#[derive(Default)]
struct Server {
    script: Vec<Step>,
    /// Every attempt forever fails with this, when set.
    always: Option<u16>,
    seen: Mutex<Vec<(String, Option<String>)>>,
}

async fn handler(State(server): State<Arc<Server>>, req: axum::extract::Request) -> Response {
    let key = req
        .headers()
        .get("idempotency-key")
        .map(|v| v.to_str().unwrap().to_owned());
    let n = {
        let mut seen = server.seen.lock().unwrap();
        seen.push((req.method().to_string(), key));
        seen.len() - 1
    };
    let _ = axum::body::to_bytes(req.into_body(), usize::MAX).await;
    if let Some(status) = server.always {
        return StatusCode::from_u16(status).unwrap().into_response();
    }
    match server.script.get(n) {
        Some(step) => {
            tokio::time::sleep(step.delay).await;
            let mut headers = HeaderMap::new();
            if let Some(secs) = step.retry_after {
                headers.insert("retry-after", secs.into());
            }
            (StatusCode::from_u16(step.status).unwrap(), headers, "no").into_response()
        }
        None => (StatusCode::CREATED, "done").into_response(),
    }
}

async fn start(server: Server) -> (SocketAddr, Arc<Server>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = Arc::new(server);
    serve(listener, server.clone());
    (addr, server)
}

fn serve(listener: tokio::net::TcpListener, server: Arc<Server>) {
    let app = axum::Router::new()
        .route("/{*path}", any(handler))
        .with_state(server);
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
}

fn fast() -> RetryPolicy {
    RetryPolicy::default()
        .with_max_attempts(6)
        .with_base_delay(Duration::from_millis(5))
        .with_max_delay(Duration::from_millis(20))
        .with_budget(Duration::from_secs(10))
}

fn client(policy: RetryPolicy) -> ClientWithMiddleware {
    idem_client::client_with(
        reqwest::Client::builder()
            .timeout(Duration::from_millis(300))
            .build()
            .unwrap(),
        policy,
    )
}

fn keys(server: &Server) -> Vec<Option<String>> {
    server
        .seen
        .lock()
        .unwrap()
        .iter()
        .map(|(_, k)| k.clone())
        .collect()
}

fn report(response: &reqwest::Response) -> CallReport {
    response.extensions().get::<CallReport>().cloned().unwrap()
}

#[tokio::test]
async fn same_key_on_every_attempt_until_success() {
    let (addr, server) = start(Server {
        script: vec![fail(503), fail(502), fail(504), in_flight(), fail(429)],
        ..Default::default()
    })
    .await;
    let response = client(fast())
        .post(format!("http://{addr}/pay"))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let keys = keys(&server);
    assert_eq!(keys.len(), 6);
    let first = keys[0].clone().expect("a key was added");
    let uuid = uuid::Uuid::parse_str(&first).expect("the key is a UUID");
    assert_eq!(uuid.get_version_num(), 4);
    assert!(keys.iter().all(|k| k.as_deref() == Some(first.as_str())));
    assert_eq!(
        report(&response),
        CallReport {
            attempts: 6,
            key: Some(first)
        }
    );
}

#[tokio::test]
async fn each_call_gets_its_own_key_and_patch_gets_one_too() {
    let (addr, server) = start(Server::default()).await;
    let c = client(fast());
    c.post(format!("http://{addr}/a")).send().await.unwrap();
    c.patch(format!("http://{addr}/a")).send().await.unwrap();
    c.put(format!("http://{addr}/a")).send().await.unwrap();
    c.get(format!("http://{addr}/a")).send().await.unwrap();
    let keys = keys(&server);
    assert!(keys[0].is_some() && keys[1].is_some());
    assert_ne!(keys[0], keys[1]);
    assert_eq!(keys[2], None, "PUT gets no key");
    assert_eq!(keys[3], None, "GET gets no key");
}

#[tokio::test]
async fn other_client_errors_and_500_are_never_retried() {
    // 409 without Retry-After is the handler's own conflict, not "in flight".
    for status in [400, 401, 403, 404, 408, 409, 413, 422, 500] {
        let (addr, server) = start(Server {
            script: vec![fail(status)],
            ..Default::default()
        })
        .await;
        let response = client(fast())
            .post(format!("http://{addr}/pay"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), status);
        assert_eq!(keys(&server).len(), 1, "status {status} was retried");
        assert_eq!(report(&response).attempts, 1);
    }
}

#[tokio::test]
async fn retry_after_is_honoured() {
    let (addr, server) = start(Server {
        script: vec![Step {
            status: 429,
            retry_after: Some(1),
            delay: Duration::ZERO,
        }],
        ..Default::default()
    })
    .await;
    let started = Instant::now();
    let response = client(fast())
        .post(format!("http://{addr}/pay"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "waited only {:?}",
        started.elapsed()
    );
    assert_eq!(keys(&server).len(), 2);
}

#[tokio::test]
async fn a_long_retry_after_is_shortened_to_the_cap() {
    let (addr, server) = start(Server {
        script: vec![Step {
            status: 409,
            retry_after: Some(60),
            delay: Duration::ZERO,
        }],
        ..Default::default()
    })
    .await;
    let started = Instant::now();
    let response = client(fast().with_max_retry_after(Duration::from_millis(300)))
        .post(format!("http://{addr}/pay"))
        .send()
        .await
        .unwrap();
    let elapsed = started.elapsed();
    assert_eq!(response.status(), 201);
    assert!(elapsed >= Duration::from_millis(300), "{elapsed:?}");
    assert!(elapsed < Duration::from_secs(5), "{elapsed:?}");
    assert_eq!(keys(&server).len(), 2);
}

#[tokio::test]
async fn a_retry_after_past_the_budget_ends_the_call_at_once() {
    let (addr, server) = start(Server {
        script: vec![Step {
            status: 503,
            retry_after: Some(30),
            delay: Duration::ZERO,
        }],
        ..Default::default()
    })
    .await;
    let started = Instant::now();
    let policy = fast()
        .with_budget(Duration::from_secs(2))
        .with_max_retry_after(Duration::from_secs(60));
    let response = client(policy)
        .post(format!("http://{addr}/pay"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 503);
    assert!(started.elapsed() < Duration::from_secs(1));
    assert_eq!(keys(&server).len(), 1);
}

#[tokio::test]
async fn the_time_budget_is_respected() {
    let (addr, server) = start(Server {
        always: Some(503),
        ..Default::default()
    })
    .await;
    let policy = fast()
        .with_max_attempts(10_000)
        .with_base_delay(Duration::from_millis(20))
        .with_max_delay(Duration::from_millis(40))
        .with_budget(Duration::from_millis(400));
    let started = Instant::now();
    let response = client(policy)
        .post(format!("http://{addr}/pay"))
        .send()
        .await
        .unwrap();
    let elapsed = started.elapsed();
    assert_eq!(response.status(), 503);
    assert!(elapsed < Duration::from_millis(800), "took {elapsed:?}");
    let attempts = keys(&server).len();
    assert!(attempts > 2 && attempts < 100, "{attempts} attempts");
}

#[tokio::test]
async fn max_attempts_is_respected() {
    let (addr, server) = start(Server {
        always: Some(502),
        ..Default::default()
    })
    .await;
    let response = client(fast().with_max_attempts(3))
        .post(format!("http://{addr}/pay"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 502);
    assert_eq!(report(&response).attempts, 3);
    assert_eq!(keys(&server).len(), 3);
}

#[tokio::test]
async fn the_callers_own_key_is_kept() {
    let (addr, server) = start(Server {
        script: vec![fail(503), in_flight()],
        ..Default::default()
    })
    .await;
    let response = client(fast())
        .post(format!("http://{addr}/pay"))
        .header("Idempotency-Key", "order-1234")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    assert_eq!(keys(&server), vec![Some("order-1234".to_owned()); 3]);
}

#[tokio::test]
async fn timeouts_are_retried_with_the_same_key() {
    let (addr, server) = start(Server {
        script: vec![Step {
            status: 201,
            retry_after: None,
            delay: Duration::from_secs(2),
        }],
        ..Default::default()
    })
    .await;
    let response = client(fast())
        .post(format!("http://{addr}/pay"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let keys = keys(&server);
    assert_eq!(keys.len(), 2);
    assert_eq!(keys[0], keys[1]);
}

#[tokio::test]
async fn connect_errors_are_retried_until_the_server_is_up() {
    // Take a free port, close it, and open it again a little later.
    let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = probe.local_addr().unwrap();
    drop(probe);
    let server = Arc::new(Server::default());
    let later = server.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
        serve(listener, later);
    });
    let policy = fast()
        .with_max_attempts(50)
        .with_base_delay(Duration::from_millis(50))
        .with_max_delay(Duration::from_millis(100));
    let response = client(policy)
        .post(format!("http://{addr}/pay"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    assert!(report(&response).attempts > 1);
    assert_eq!(
        keys(&server).len(),
        1,
        "only the attempt that connected arrived"
    );
}

#[tokio::test]
async fn a_connect_error_past_the_attempts_is_returned() {
    let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = probe.local_addr().unwrap();
    drop(probe);
    let error = client(fast().with_max_attempts(2))
        .post(format!("http://{addr}/pay"))
        .send()
        .await
        .unwrap_err();
    assert!(error.is_connect(), "{error:?}");
}

#[tokio::test]
async fn a_streaming_body_is_sent_once() {
    let (addr, server) = start(Server {
        always: Some(503),
        ..Default::default()
    })
    .await;
    let chunks = futures::stream::iter(vec![Ok::<_, std::io::Error>("chunk")]);
    let response = client(fast())
        .post(format!("http://{addr}/pay"))
        .body(reqwest::Body::wrap_stream(chunks))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 503);
    assert_eq!(keys(&server).len(), 1);
    assert!(keys(&server)[0].is_some(), "the key is still added");
}

#[tokio::test]
async fn idempotent_methods_are_retried_without_a_key() {
    let (addr, server) = start(Server {
        script: vec![fail(503)],
        ..Default::default()
    })
    .await;
    let response = client(fast())
        .get(format!("http://{addr}/pay"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    assert_eq!(keys(&server), vec![None, None]);
}

#[tokio::test]
async fn a_post_without_a_key_is_not_retried() {
    let (addr, server) = start(Server {
        script: vec![fail(503)],
        ..Default::default()
    })
    .await;
    let client = reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
        .with(idem_client::IdempotentRetry::new(fast()).with_methods([]))
        .build();
    let response = client
        .post(format!("http://{addr}/pay"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 503);
    assert_eq!(keys(&server), vec![None]);
}
