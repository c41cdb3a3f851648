//! wrk's side of the benchmark: the script it runs and the figures read from
//! its `--latency` output.

use std::time::Duration;

use super::Figures;

/// The body every request sends (it is in [`SCRIPT`] too).
const BODY: &str = r#"{"amount":"99.99","currency":"EUR","recipient":"alice@example.com"}"#;

/// Sets a fresh `Idempotency-Key` per request (unique per wrk thread and run),
/// or, for a replay scenario (`replay`, `replay-tier`), one constant key of
/// its own ([`replay_key`]). Every scenario sends the same request shape.
pub(super) const SCRIPT: &str = r#"
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"amount":"99.99","currency":"EUR","recipient":"alice@example.com"}'
local mode = os.getenv("IDEM_BENCH_MODE") or "fresh"
local run = os.getenv("IDEM_BENCH_RUN") or "0"
local n = 0
local prefix = run .. "-" .. tostring(math.random(1, 2000000000)) .. "-"
function request()
  n = n + 1
  if mode:sub(1, 6) == "replay" then
    wrk.headers["Idempotency-Key"] = "bench-" .. mode .. "-key"
  else
    wrk.headers["Idempotency-Key"] = prefix .. n
  end
  return wrk.format()
end
"#;

/// The key [`SCRIPT`] sends in replay scenario `scenario`: one per route,
/// since a key's fingerprint covers the path.
fn replay_key(scenario: &str) -> String {
    format!("bench-{scenario}-key")
}

/// Sends replay scenario `scenario`'s request once, so that its key is
/// completed before wrk replays it (else the first concurrent requests
/// would find it in progress and get 409).
pub(super) fn seed(url: &str, scenario: &str) -> Result<(), String> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .proxy(None)
        .timeout_global(Some(Duration::from_secs(10)))
        .build()
        .into();
    agent
        .post(format!("{url}/{scenario}"))
        .header("Idempotency-Key", replay_key(scenario))
        .header("Content-Type", "application/json")
        .send(BODY)
        .map(drop)
        .map_err(|e| format!("{scenario}: the first request failed: {e}"))
}

/// Reads requests/s, the 50% and 99% latencies, non-2xx count and socket
/// errors from `wrk --latency` output.
pub(super) fn parse(text: &str) -> Option<Figures> {
    let mut rps = None;
    let mut requests = None;
    let mut p50 = None;
    let mut p99 = None;
    let mut non_2xx = 0;
    let mut errors = String::from("0");
    for line in text.lines() {
        let line = line.trim();
        if line.contains(" requests in ") {
            requests = line.split_whitespace().next().and_then(|n| n.parse().ok());
        }
        if let Some(v) = line.strip_prefix("Requests/sec:") {
            rps = v.trim().parse::<f64>().ok();
        } else if let Some(v) = line.strip_prefix("50%") {
            p50 = latency_ms(v.trim());
        } else if let Some(v) = line.strip_prefix("99%") {
            p99 = latency_ms(v.trim());
        } else if let Some(v) = line.strip_prefix("Non-2xx or 3xx responses:") {
            non_2xx = v.trim().parse().unwrap_or(u64::MAX);
        } else if let Some(v) = line.strip_prefix("Socket errors:") {
            errors = v.trim().to_owned();
        }
    }
    Some(Figures {
        rps: rps?,
        requests: requests.unwrap_or(0),
        cpu_us: None,
        p50_ms: p50?,
        p99_ms: p99?,
        non_2xx,
        errors,
        store_ops: None,
        store_cpu_us: None,
    })
}

/// `812.00us`, `3.69ms`, `1.02s`, `1.50m` in milliseconds.
fn latency_ms(v: &str) -> Option<f64> {
    let split = v.find(|c: char| c.is_ascii_alphabetic())?;
    let (num, unit) = v.split_at(split);
    let num: f64 = num.parse().ok()?;
    Some(match unit {
        "us" => num / 1000.0,
        "ms" => num,
        "s" => num * 1000.0,
        "m" => num * 60_000.0,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_script_sends_the_seeded_body_and_keys() {
        assert!(SCRIPT.contains(&format!("wrk.body = '{BODY}'")));
        assert_eq!(replay_key("replay"), "bench-replay-key");
        assert!(SCRIPT.contains(r#""bench-" .. mode .. "-key""#));
    }

    #[test]
    fn reads_wrk_output() {
        let text = "  32000 requests in 10.00s, 5.1MB read\n  Latency Distribution\n     50%  812.00us\n     75%    1.20ms\n     99%   39.92ms\n\
                    Requests/sec:   9380.23\n";
        let f = parse(text).unwrap();
        assert_eq!(f.rps, 9380.23);
        assert!((f.p50_ms - 0.812).abs() < 1e-9);
        assert_eq!(f.p99_ms, 39.92);
        assert_eq!(f.non_2xx, 0);
        assert_eq!(f.requests, 32000);
    }
}
