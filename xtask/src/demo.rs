//! `cargo xtask demo-compose`: the demo's image and `docker-compose.yml`,
//! built and run.
//!
//! 1. `cargo build -p idem-demo --bins` (debug), and the two binaries copied
//!    to `target/prebuilt/` in the project root. They run in the image as they
//!    are, so this machine's C library must be no newer than the runtime
//!    base's (Debian bookworm).
//! 2. `docker build --target prebuilt -t idem-demo:latest`, no Rust image
//!    needed; `IDEM_TEST_DEBIAN_IMAGE` names the runtime base when set.
//! 3. `docker-compose up -d demo demo-postgres` under the project name
//!    [`PROJECT`]: the demo with its idempotency records on Redis (port 8080)
//!    and on PostgreSQL (port 8081), each started once its server is healthy.
//!    `IDEM_TEST_REDIS_IMAGE` and `IDEM_TEST_POSTGRES_IMAGE` pick the servers.
//! 4. On each demo: one payment posted twice with the same fresh key, both
//!    `201`, the second replayed with the same body, and one payment listed.
//!
//! The project is removed (`down -v --remove-orphans`) before it starts, and
//! after, whatever happened; on a failure the containers' logs are printed
//! first.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::util::{cargo, project_root, run_step};

/// The compose project the check runs in, apart from the user's own.
const PROJECT: &str = "idem-demo-check";
/// The image `docker-compose.yml` names for the demo.
const IMAGE: &str = "idem-demo:latest";
/// How long the demos get to answer `/healthz` once started.
const READY_WITHIN: Duration = Duration::from_secs(90);
/// The demos to check: compose service and port on 127.0.0.1.
const DEMOS: [(&str, u16); 2] = [("demo", 8080), ("demo-postgres", 8081)];
/// Host ports `docker-compose.yml` publishes for these services.
const PORTS: [u16; 4] = [6379, 5432, 8080, 8081];
/// The payment posted.
const PAYMENT: &str = r#"{"amount": 99.99, "currency": "EUR", "recipient": "alice@example.com"}"#;

/// Runs the task (it takes no arguments).
pub(crate) fn run(args: &[String]) -> Result<(), String> {
    if let Some(arg) = args.first() {
        return Err(format!("demo-compose takes no arguments, got `{arg}`"));
    }
    let root = project_root();
    run_step(
        "cargo build -p idem-demo --bins",
        cargo().args(["build", "-p", "idem-demo", "--bins"]),
    )?;
    stage_binaries(&root)?;
    build_image(&root)?;

    let compose = Compose::new(root);
    compose.down()?;
    ports_free()?;
    let result = compose.up().and_then(|()| check_demos());
    if result.is_err() {
        compose.print_logs();
    }
    let down = compose.finish();
    result.and(down)?;
    eprintln!("\ndemo-compose: both demos replayed the payment");
    Ok(())
}

/// Copies `idem-demo` and `pay` from cargo's debug directory (under
/// `CARGO_TARGET_DIR` when set) to `target/prebuilt/`.
fn stage_binaries(root: &Path) -> Result<(), String> {
    let target = match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => root.join(dir),
        None => root.join("target"),
    };
    let prebuilt = root.join("target").join("prebuilt");
    std::fs::create_dir_all(&prebuilt)
        .map_err(|e| format!("cannot create {}: {e}", prebuilt.display()))?;
    for bin in ["idem-demo", "pay"] {
        let from = target.join("debug").join(bin);
        std::fs::copy(&from, prebuilt.join(bin)).map_err(|e| {
            format!(
                "cannot copy {} to {}: {e}",
                from.display(),
                prebuilt.display()
            )
        })?;
    }
    Ok(())
}

/// Builds [`IMAGE`] from `target/prebuilt/`.
fn build_image(root: &Path) -> Result<(), String> {
    let mut docker = Command::new("docker");
    docker.current_dir(root).args([
        "build",
        "-f",
        "crates/idem-demo/Dockerfile",
        "--target",
        "prebuilt",
        "-t",
        IMAGE,
    ]);
    if let Some(base) = std::env::var("IDEM_TEST_DEBIAN_IMAGE")
        .ok()
        .filter(|s| !s.is_empty())
    {
        docker
            .arg("--build-arg")
            .arg(format!("RUNTIME_IMAGE={base}"));
    }
    docker.arg(".");
    run_step(
        &format!("docker build -t {IMAGE} (--target prebuilt)"),
        &mut docker,
    )
}

/// Fails when a port the project publishes is taken: compose would fail on it
/// later, or the check would talk to someone else's server.
fn ports_free() -> Result<(), String> {
    for port in PORTS {
        TcpListener::bind(("127.0.0.1", port)).map_err(|e| {
            format!("127.0.0.1:{port} is taken ({e}); docker-compose.yml publishes it")
        })?;
    }
    Ok(())
}

/// The compose project; dropping it removes the containers and volumes, so
/// that an early return cleans up too.
#[derive(Debug)]
struct Compose {
    root: PathBuf,
    /// Set once the project was removed.
    removed: bool,
}

impl Compose {
    fn new(root: PathBuf) -> Self {
        Self {
            root,
            removed: false,
        }
    }

    /// `docker-compose -p PROJECT` (else `docker compose`) in the project root.
    fn command(&self) -> Command {
        let mut cmd = if on_path("docker-compose") {
            Command::new("docker-compose")
        } else {
            let mut cmd = Command::new("docker");
            cmd.arg("compose");
            cmd
        };
        cmd.current_dir(&self.root)
            .args(["-p", PROJECT, "-f", "docker-compose.yml"])
            // Were compose to build the image, from the binaries too.
            .env("IDEM_DEMO_BUILD_TARGET", "prebuilt");
        cmd
    }

    /// Starts both demos (and their servers), with the image built above.
    fn up(&self) -> Result<(), String> {
        let mut up = self.command();
        up.args(["up", "-d", "--no-build"])
            .args(DEMOS.map(|(service, _)| service));
        run_step("docker-compose up -d demo demo-postgres", &mut up)
    }

    /// Removes the project's containers, networks and volumes.
    fn down(&self) -> Result<(), String> {
        let mut down = self.command();
        down.args(["down", "-v", "--remove-orphans"]);
        run_step(&format!("docker-compose -p {PROJECT} down"), &mut down)
    }

    /// Prints every container's output, to tell why a check failed.
    fn print_logs(&self) {
        let mut logs = self.command();
        logs.args(["logs", "--no-color"]);
        if let Err(e) = run_step("docker-compose logs", &mut logs) {
            eprintln!("{e}");
        }
    }

    /// Removes the project now, reporting a failure.
    fn finish(mut self) -> Result<(), String> {
        self.removed = true;
        self.down()
    }
}

impl Drop for Compose {
    fn drop(&mut self) {
        if !self.removed
            && let Err(e) = self.down()
        {
            eprintln!("xtask: {e}");
        }
    }
}

/// Whether `program` is an executable file in a `PATH` directory.
fn on_path(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(program).is_file()))
}

/// Waits for every demo's `/healthz`, then checks a replay on each.
fn check_demos() -> Result<(), String> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .proxy(None)
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(10)))
        .build()
        .into();
    let deadline = Instant::now() + READY_WITHIN;
    for (service, port) in DEMOS {
        wait_healthy(&agent, service, port, deadline)?;
    }
    for (service, port) in DEMOS {
        check_replay(&agent, service, port)?;
        eprintln!("{service} (127.0.0.1:{port}): replayed, one payment");
    }
    Ok(())
}

/// Polls `GET /healthz` until it answers `200` or `deadline` passes.
fn wait_healthy(
    agent: &ureq::Agent,
    service: &str,
    port: u16,
    deadline: Instant,
) -> Result<(), String> {
    let url = format!("http://127.0.0.1:{port}/healthz");
    loop {
        let last = match agent.get(&url).call() {
            Ok(response) if response.status() == 200 => return Ok(()),
            Ok(response) => format!("status {}", response.status()),
            Err(e) => e.to_string(),
        };
        if Instant::now() >= deadline {
            return Err(format!(
                "{service}: {url} did not answer 200 within {} s (last: {last})",
                READY_WITHIN.as_secs()
            ));
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// Posts [`PAYMENT`] twice with one fresh key and checks the replay, then
/// that `GET /payments` lists the payment once.
fn check_replay(agent: &ureq::Agent, service: &str, port: u16) -> Result<(), String> {
    let key = fresh_key(port);
    let url = format!("http://127.0.0.1:{port}/payments");
    let post = || -> Result<(u16, bool, String), String> {
        let mut response = agent
            .post(&url)
            .header("Idempotency-Key", &key)
            .content_type("application/json")
            .send(PAYMENT)
            .map_err(|e| format!("{service}: POST {url}: {e}"))?;
        let replayed = response
            .headers()
            .get("idempotent-replayed")
            .is_some_and(|v| v == "true");
        let body = response
            .body_mut()
            .read_to_string()
            .map_err(|e| format!("{service}: POST {url}: reading the body: {e}"))?;
        Ok((response.status().as_u16(), replayed, body))
    };
    let first = post()?;
    let second = post()?;
    if first.0 != 201 || first.1 {
        return Err(format!(
            "{service}: the first POST should be a fresh 201, got {} (replayed: {}): {}",
            first.0, first.1, first.2
        ));
    }
    if second.0 != 201 || !second.1 {
        return Err(format!(
            "{service}: the retry should be a replayed 201, got {} (replayed: {}): {}",
            second.0, second.1, second.2
        ));
    }
    if first.2 != second.2 {
        return Err(format!(
            "{service}: the replay's body differs:\n  first:  {}\n  replay: {}",
            first.2, second.2
        ));
    }

    let mut response = agent
        .get(&url)
        .call()
        .map_err(|e| format!("{service}: GET {url}: {e}"))?;
    let list = response
        .body_mut()
        .read_to_string()
        .map_err(|e| format!("{service}: GET {url}: reading the body: {e}"))?;
    // The demo writes compact JSON (serde_json), one object per payment.
    let listed = list
        .matches(&format!(r#""idempotency_key":"{key}""#))
        .count();
    if response.status() != 200 || listed != 1 {
        return Err(format!(
            "{service}: GET {url} should list the payment of key {key} once, \
             got {} listing it {listed} times: {list}",
            response.status()
        ));
    }
    Ok(())
}

/// A UUID-shaped key (version 4, variant 1 bits set) from the clock, the
/// process id and `salt`: fresh for each run and each demo.
fn fresh_key(salt: u16) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let pid = std::process::id();
    format!(
        "{:08x}-{:04x}-4{:03x}-8{:03x}-{:04x}{:08x}",
        nanos as u32,
        (nanos >> 32) as u16,
        (nanos >> 48) as u16 & 0xfff,
        (nanos >> 60) as u16 & 0xfff,
        salt,
        pid
    )
}
