//! Load against one Redis: requests per second through the idempotency
//! engine (a fresh request = claim + complete, a replay = one claim), next to
//! `redis-benchmark -t set` on the same server in the same run.
//!
//! `cargo run --release -p idem-redis --example redis_load -- [URL] [REQUESTS] [CLIENTS]`
//! (defaults: `redis://127.0.0.1:6379`, 100000, 50). Not part of CI.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use idem_core::{Completion, Fingerprint, Idempotency, Outcome, StoreKey, StoredResponse};
use idem_redis::{RedisConfig, RedisStore};

fn response() -> StoredResponse {
    StoredResponse {
        status: 201,
        headers: vec![(
            "content-type".into(),
            Bytes::from_static(b"application/json"),
        )],
        body: Bytes::from(vec![b'x'; 512]),
    }
}

/// Runs `per_client` requests on each of `clients` tasks; `key(client, i)`
/// names the key of request `i`. Returns requests per second.
async fn run(
    engine: &Idempotency,
    clients: usize,
    per_client: usize,
    expect_replay: bool,
    key: impl Fn(usize, usize) -> String + Send + Sync + 'static,
) -> f64 {
    let key = Arc::new(key);
    let fp = Fingerprint::of_request("POST", "/payments", b"{}");
    let start = Instant::now();
    let tasks: Vec<_> = (0..clients)
        .map(|c| {
            let engine = engine.clone();
            let key = key.clone();
            tokio::spawn(async move {
                for i in 0..per_client {
                    let k = StoreKey::parse(key(c, i)).expect("a valid key");
                    let outcome = engine
                        .execute(&k, fp, |_| async { ((), Completion::Keep(response())) })
                        .await
                        .expect("Redis answers");
                    assert_eq!(matches!(outcome, Outcome::Replayed(_)), expect_replay);
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.expect("a load task panicked");
    }
    (clients * per_client) as f64 / start.elapsed().as_secs_f64()
}

fn redis_benchmark(url: &str, requests: usize, clients: usize) -> Option<f64> {
    let authority = url.split_once("://")?.1.split(['/', '?']).next()?;
    let host_port = authority.rsplit('@').next()?;
    let (host, port) = host_port.rsplit_once(':').unwrap_or((host_port, "6379"));
    let out = std::process::Command::new("redis-benchmark")
        .args(["-h", host, "-p", port, "-t", "set", "-q"])
        .args(["-n", &requests.to_string(), "-c", &clients.to_string()])
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    // "SET: 98231.83 requests per second, p50=0.255 msec" (after \r updates).
    let line = text.rsplit('\r').find(|l| l.contains("SET:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

#[tokio::main]
async fn main() -> idem_core::Result<()> {
    let mut args = std::env::args().skip(1);
    let url = args
        .next()
        .unwrap_or_else(|| "redis://127.0.0.1:6379".into());
    let requests: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(100_000);
    let clients: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(50);
    let per_client = (requests / clients).max(1);

    let config = RedisConfig::from_url(&url)?
        .with_operation_timeout(Duration::from_secs(5))
        .with_connect_timeout(Duration::from_secs(5));
    let store = RedisStore::connect(config).await?;
    let engine = Idempotency::new(Arc::new(store)).with_retention(Duration::from_secs(600));
    let run_id = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let fresh_key = move |c: usize, i: usize| format!("idempotency:load:{run_id}:{c}:{i}");

    // Warm-up: connections, the script cache.
    run(&engine, clients, 10, false, move |c, i| {
        format!("idempotency:warm:{run_id}:{c}:{i}")
    })
    .await;

    let fresh = run(&engine, clients, per_client, false, fresh_key).await;
    // Replays: every request asks again for a key the fresh run completed.
    let replay = run(&engine, clients, per_client, true, fresh_key).await;
    let set = redis_benchmark(&url, clients * per_client, clients);

    println!(
        "requests: {} on {clients} concurrent clients",
        clients * per_client
    );
    println!("engine fresh (claim + complete): {fresh:>10.0} requests/s");
    println!("engine replay (one claim):       {replay:>10.0} requests/s");
    match set {
        Some(set) => {
            println!("redis-benchmark -t set:          {set:>10.0} requests/s");
            println!(
                "ratio to SET: fresh {:.2} (ideal 0.5: two commands), replay {:.2} (ideal 1.0)",
                fresh / set,
                replay / set
            );
        }
        None => println!("redis-benchmark: not run (not on PATH, or no SET line in its output)"),
    }
    Ok(())
}
