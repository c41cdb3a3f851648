//! The conformance suite on standalone Redis (`IDEM_TEST_REDIS_URL`), and
//! what only a server of our own can show: outages, round trips, the script
//! cache, server-side expiry.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use idem_conformance::{Subject, conformance_tests, skip};
use idem_core::{
    Claim, Completion, Error, Fingerprint, Idempotency, IdempotencyKey, IdempotencyStore, KeySpace,
    Outcome, Scope, StoreKey, StoredResponse,
};
use idem_redis::{RedisConfig, RedisStore};
use idem_tests::redis_servers::RedisProcess;
use idem_tests::{ServerKind, server};

async fn redis() -> Option<Subject> {
    let server = match server(ServerKind::Redis) {
        Ok(s) => s,
        Err(reason) => return skip("redis", &reason),
    };
    let config = RedisConfig::from_url(&server.url).expect("IDEM_TEST_REDIS_URL is a Redis URL");
    let store = RedisStore::connect(config)
        .await
        .expect("the test Redis answers");
    Some(Subject::new("redis", Arc::new(store)))
}

async fn redis_unreachable() -> Option<Subject> {
    let config = RedisConfig::from_url(&format!("redis://127.0.0.1:{}", closed_port()))
        .unwrap()
        .with_connect_timeout(Duration::from_millis(200))
        .with_operation_timeout(Duration::from_millis(200));
    Some(Subject::new(
        "redis",
        Arc::new(RedisStore::connect_lazy(config).unwrap()),
    ))
}

conformance_tests!(redis, unreachable: redis_unreachable);

/// A loopback port nothing listens on.
fn closed_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Checks only Redis needs: outages, round trips, the script cache,
/// server-side expiry, on servers of their own.
mod extra {
    use super::*;

    /// A `redis-server` only this test uses, or `None` (a loud skip) without
    /// the binary.
    fn own_server() -> Option<RedisProcess> {
        match RedisProcess::start() {
            Ok(server) => Some(server),
            Err(reason) => skip("redis", &reason),
        }
    }

    fn key(space: &KeySpace) -> StoreKey {
        space.key(
            &Scope::global(),
            &IdempotencyKey::new(uuid::Uuid::new_v4().to_string()).unwrap(),
        )
    }

    fn response() -> StoredResponse {
        StoredResponse {
            status: 201,
            headers: vec![("content-type".into(), Bytes::from_static(b"text/plain"))],
            body: Bytes::from_static(b"created"),
        }
    }

    async fn execute(engine: &Idempotency, key: &StoreKey) -> Outcome<()> {
        let fp = Fingerprint::of_request("POST", "/payments", b"{}");
        engine
            .execute(key, fp, |_| async { ((), Completion::Keep(response())) })
            .await
            .expect("the store answers")
    }

    /// Calls per command since the server started, from `INFO commandstats`,
    /// leaving out the `INFO` and `ECHO` calls the test itself sends.
    fn command_calls(server: &RedisProcess) -> BTreeMap<String, u64> {
        let info = server.cli(&["INFO", "commandstats"]).unwrap();
        info.lines()
            .filter_map(|line| {
                let (name, stats) = line.strip_prefix("cmdstat_")?.split_once(':')?;
                let calls = stats.split(',').find_map(|s| s.strip_prefix("calls="))?;
                (name != "info" && name != "echo")
                    .then(|| (name.to_owned(), calls.trim().parse().unwrap()))
            })
            .collect()
    }

    fn delta(
        before: &BTreeMap<String, u64>,
        after: &BTreeMap<String, u64>,
    ) -> BTreeMap<String, u64> {
        after
            .iter()
            .map(|(name, n)| (name.clone(), n - before.get(name).copied().unwrap_or(0)))
            .filter(|(_, n)| *n > 0)
            .collect()
    }

    fn counts(pairs: &[(&str, u64)]) -> BTreeMap<String, u64> {
        pairs.iter().map(|(n, c)| ((*n).to_owned(), *c)).collect()
    }

    /// `MONITOR` on a server: the commands clients send, each with where it
    /// came from (a client address, or `lua` for a script's own calls).
    struct Monitor {
        child: std::process::Child,
        lines: std::sync::mpsc::Receiver<String>,
    }

    impl Monitor {
        fn start(server: &RedisProcess) -> Self {
            use std::io::BufRead;
            let mut child = std::process::Command::new("redis-cli")
                .args(["-p", &server.port().to_string(), "MONITOR"])
                .stdout(std::process::Stdio::piped())
                .spawn()
                .unwrap();
            let stdout = child.stdout.take().unwrap();
            let (tx, lines) = std::sync::mpsc::channel();
            std::thread::spawn(move || {
                for line in std::io::BufReader::new(stdout)
                    .lines()
                    .map_while(Result::ok)
                {
                    if tx.send(line).is_err() {
                        break;
                    }
                }
            });
            let monitor = Self { child, lines };
            monitor.wait_until_listening(server);
            monitor
        }

        /// MONITOR only sees commands sent after redis-cli registered it, which
        /// may take a while on a busy machine: ping it with markers until one shows.
        fn wait_until_listening(&self, server: &RedisProcess) {
            for attempt in 0..80 {
                let marker = format!("monitor-started-{attempt}");
                server.cli(&["ECHO", &marker]).unwrap();
                let deadline = std::time::Instant::now() + Duration::from_millis(250);
                while let Ok(line) = self
                    .lines
                    .recv_timeout(deadline.saturating_duration_since(std::time::Instant::now()))
                {
                    if line.contains(&marker) {
                        return;
                    }
                }
            }
            panic!("redis-cli MONITOR never started listening");
        }

        /// The commands seen since the last call, up to an `ECHO marker` it sends.
        fn until(&self, server: &RedisProcess, marker: &str) -> Vec<String> {
            server.cli(&["ECHO", marker]).unwrap();
            let mut seen = Vec::new();
            loop {
                let line = self.lines.recv_timeout(Duration::from_secs(20)).unwrap();
                if line.contains(marker) {
                    return seen;
                }
                seen.push(line);
            }
        }

        /// The commands clients sent (a script's own calls left out), by name.
        fn client_commands(&self, server: &RedisProcess, marker: &str) -> Vec<String> {
            self.until(server, marker)
                .iter()
                .filter(|line| !line.contains(" lua] ") && !line.contains("[lua]"))
                .filter_map(|line| line.split('"').nth(1).map(str::to_uppercase))
                .filter(|cmd| cmd != "INFO")
                .collect()
        }
    }

    impl Drop for Monitor {
        fn drop(&mut self) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }

    #[tokio::test]
    async fn a_fresh_request_costs_two_commands_and_a_replay_one() {
        let Some(server) = own_server() else { return };
        let store = RedisStore::connect(RedisConfig::from_url(&server.url()).unwrap())
            .await
            .unwrap();
        let engine = Idempotency::new(Arc::new(store));
        let space = KeySpace::default();
        // Warm up: open the pooled connection and load the script.
        let warm = key(&space);
        execute(&engine, &warm).await;
        execute(&engine, &warm).await;
        let monitor = Monitor::start(&server);

        let fresh = key(&space);
        let before = command_calls(&server);
        assert!(matches!(
            execute(&engine, &fresh).await,
            Outcome::Executed(())
        ));
        let after_fresh = command_calls(&server);
        let sent_fresh = monitor.client_commands(&server, "after-fresh");
        let after_marker = command_calls(&server);
        assert!(matches!(
            execute(&engine, &fresh).await,
            Outcome::Replayed(_)
        ));
        let after_replay = command_calls(&server);
        let sent_replay = monitor.client_commands(&server, "after-replay");

        // What the client sent, as MONITOR saw it: one round trip each.
        assert_eq!(sent_fresh, ["SET", "EVALSHA"], "fresh request");
        assert_eq!(sent_replay, ["SET"], "replay");
        // What Redis ran, as INFO commandstats counts it: the claim's SET, the
        // EVALSHA, and the script's own GET and SET inside it.
        assert_eq!(
            delta(&before, &after_fresh),
            counts(&[("set", 2), ("get", 1), ("evalsha", 1)]),
            "a fresh request: claim (SET NX GET) and complete (EVALSHA: GET, SET)"
        );
        assert_eq!(
            delta(&after_marker, &after_replay),
            counts(&[("set", 1)]),
            "a replay: the claim alone, which returns the record"
        );
    }

    #[tokio::test]
    async fn keys_are_prefixed_and_expire_by_the_servers_clock() {
        let Some(server) = own_server() else { return };
        let store = RedisStore::connect(RedisConfig::from_url(&server.url()).unwrap())
            .await
            .unwrap();
        let lease = Duration::from_secs(60);
        let retention = Duration::from_secs(3600);
        let engine = Idempotency::new(Arc::new(store.clone()))
            .with_lease(lease)
            .with_retention(retention);

        // The default prefix, and a configured one, are the Redis key names.
        let default_key = key(&KeySpace::default());
        assert!(default_key.as_str().starts_with("idempotency:"));
        let custom_key = key(&KeySpace::new("payments-api:").unwrap());
        for k in [&default_key, &custom_key] {
            let Claim::Acquired(_) = store
                .claim(k, Bytes::from_static(b"x"), lease)
                .await
                .unwrap()
            else {
                panic!("fresh key taken")
            };
            assert_eq!(server.cli(&["EXISTS", k.as_str()]).unwrap().trim(), "1");
            // The lease is a server-side expiry, in milliseconds.
            let pttl: u64 = server
                .cli(&["PTTL", k.as_str()])
                .unwrap()
                .trim()
                .parse()
                .unwrap();
            assert!((59_000..=60_000).contains(&pttl), "lease PTTL {pttl}");
        }
        assert_eq!(
            server.cli(&["KEYS", "payments-api:*"]).unwrap().trim(),
            custom_key.as_str()
        );

        // A completed record carries the retention as its server-side expiry.
        let done = key(&KeySpace::default());
        execute(&engine, &done).await;
        let pttl: u64 = server
            .cli(&["PTTL", done.as_str()])
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        assert!(
            (3_599_000..=3_600_000).contains(&pttl),
            "retention PTTL {pttl}"
        );
    }

    #[tokio::test]
    async fn scripts_work_after_the_script_cache_is_flushed() {
        let Some(server) = own_server() else { return };
        let store = RedisStore::connect(RedisConfig::from_url(&server.url()).unwrap())
            .await
            .unwrap();
        let hour = Duration::from_secs(3600);
        for flush_before in ["complete", "release"] {
            let k = key(&KeySpace::default());
            let Claim::Acquired(token) = store.claim(&k, Bytes::new(), hour).await.unwrap() else {
                panic!("fresh key taken")
            };
            assert_eq!(server.cli(&["SCRIPT", "FLUSH"]).unwrap().trim(), "OK");
            let before = command_calls(&server);
            if flush_before == "complete" {
                store
                    .complete(&k, &token, Bytes::from_static(b"v"), hour)
                    .await
                    .unwrap();
                assert_eq!(store.find(&k).await.unwrap().as_deref(), Some(&b"v"[..]));
            } else {
                assert!(store.release(&k, &token).await.unwrap());
                assert!(!store.exists(&k).await.unwrap());
            }
            let spent = delta(&before, &command_calls(&server));
            assert_eq!(
                spent.get("script|load"),
                Some(&1),
                "{flush_before}: {spent:?}"
            );
        }
    }

    /// Runs every operation and checks each one fails as `Unavailable` within
    /// `limit`.
    async fn all_unavailable_within(store: &RedisStore, limit: Duration, what: &str) {
        let k = key(&KeySpace::default());
        let token = idem_core::LeaseToken::generate();
        let hour = Duration::from_secs(3600);
        macro_rules! check {
            ($name:literal, $op:expr) => {{
                let start = Instant::now();
                let result = $op.await;
                let elapsed = start.elapsed();
                match result {
                    Err(Error::Unavailable { .. }) => {}
                    other => panic!("{what}: {} gave {other:?}, not Unavailable", $name),
                }
                assert!(
                    elapsed <= limit,
                    "{what}: {} took {elapsed:?} (limit {limit:?})",
                    $name
                );
            }};
        }
        check!("find", store.find(&k));
        check!("store", store.store(&k, Bytes::new(), hour));
        check!("claim", store.claim(&k, Bytes::new(), hour));
        check!("complete", store.complete(&k, &token, Bytes::new(), hour));
        check!("release", store.release(&k, &token));
        check!("remove", store.remove(&k));
        check!("exists", store.exists(&k));
    }

    async fn works(store: &RedisStore) {
        let k = key(&KeySpace::default());
        let hour = Duration::from_secs(3600);
        let Claim::Acquired(token) = store.claim(&k, Bytes::new(), hour).await.unwrap() else {
            panic!("fresh key taken")
        };
        store
            .complete(&k, &token, Bytes::from_static(b"ok"), hour)
            .await
            .unwrap();
        assert_eq!(store.find(&k).await.unwrap().as_deref(), Some(&b"ok"[..]));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn outage_gives_typed_errors_in_time_and_the_same_store_recovers() {
        let Some(mut server) = own_server() else {
            return;
        };
        // Default timeouts: 500 ms to open a connection, 500 ms per operation.
        let config = RedisConfig::from_url(&server.url())
            .unwrap()
            .with_max_connections(4);
        let limit =
            config.connect_timeout() + config.operation_timeout() + Duration::from_millis(150);
        assert!(limit <= Duration::from_millis(1150));
        let store = RedisStore::connect(config).await.unwrap();
        // Several pooled connections, all of which the outage will break.
        let warm: Vec<_> = (0..8).map(|_| works(&store)).collect();
        for w in warm {
            w.await;
        }
        works(&store).await;

        // Down: the process is gone, connections are refused.
        server.kill();
        all_unavailable_within(&store, limit, "killed server").await;
        server.restart().unwrap();
        works(&store).await;

        // Hung: the process is frozen; the kernel still accepts connections but
        // nothing answers. Only the timeouts can end the wait.
        server.pause();
        all_unavailable_within(&store, limit, "frozen server").await;
        server.resume();
        works(&store).await;
    }
}
