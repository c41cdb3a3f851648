//! The app processes of one cell: started, killed, terminated, restarted.

use std::collections::HashSet;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::process::{Child, Command};

/// Everything an app is started with, but its port and name.
#[derive(Debug, Clone)]
pub struct AppConfig {
    /// This binary.
    pub exe: PathBuf,
    /// The store URL the apps use (through the proxy, if any).
    pub store_url: String,
    /// The shared history file.
    pub history: PathBuf,
    /// The apps' lease.
    pub lease: Duration,
    /// Test-only: one attempt to store a result.
    pub no_completion_retries: bool,
    /// The SQL stores' transactional mode (`app --transactional`).
    pub transactional: bool,
    /// Test-only: the claim commits apart (`app --split-claim`).
    pub split_claim: bool,
    /// Handlers of 10 to 40 ms instead of 100 to 300: for SQLite's
    /// transactional mode, where a run holds the database's one write lock
    /// from its claim to its commit.
    pub short_handlers: bool,
}

/// The apps of one cell.
#[derive(Debug)]
pub struct Apps {
    config: AppConfig,
    ports: Vec<u16>,
    children: Vec<Option<Child>>,
    incarnations: Vec<u32>,
    killed: HashSet<String>,
    http: reqwest::Client,
}

impl Apps {
    /// Starts `n` apps on free loopback ports and waits until each answers.
    ///
    /// # Errors
    /// When one does not come up.
    pub async fn start(config: AppConfig, n: usize) -> Result<Self, String> {
        let mut ports = Vec::new();
        for _ in 0..n {
            let listener = std::net::TcpListener::bind("127.0.0.1:0")
                .map_err(|e| format!("no free port: {e}"))?;
            ports.push(listener.local_addr().map_err(|e| e.to_string())?.port());
        }
        let mut apps = Self {
            config,
            ports,
            children: (0..n).map(|_| None).collect(),
            incarnations: vec![0; n],
            killed: HashSet::new(),
            http: reqwest::Client::new(),
        };
        for i in 0..n {
            apps.spawn(i)?;
        }
        for i in 0..n {
            apps.wait_ready(i).await?;
        }
        Ok(apps)
    }

    /// The apps' ports.
    pub fn ports(&self) -> &[u16] {
        &self.ports
    }

    /// The processes killed with SIGKILL (their names).
    pub fn killed(&self) -> &HashSet<String> {
        &self.killed
    }

    fn name(&self, i: usize) -> String {
        format!("a{i}.{}", self.incarnations[i])
    }

    /// The apps' log (their standard error), next to the history.
    pub fn log_path(&self) -> PathBuf {
        self.config.history.with_extension("log")
    }

    fn log(&self) -> Result<std::fs::File, String> {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .map_err(|e| format!("the apps' log: {e}"))
    }

    fn spawn(&mut self, i: usize) -> Result<(), String> {
        let mut cmd = Command::new(&self.config.exe);
        cmd.arg("app")
            .arg("--listen")
            .arg(format!("127.0.0.1:{}", self.ports[i]))
            .arg("--store-url")
            .arg(&self.config.store_url)
            .arg("--history")
            .arg(&self.config.history)
            .arg("--name")
            .arg(self.name(i))
            .arg("--lease-ms")
            .arg(self.config.lease.as_millis().to_string())
            .args(self.handler_range())
            .stdin(Stdio::null())
            .stderr(self.log()?)
            .kill_on_drop(true);
        if self.config.no_completion_retries {
            cmd.arg("--no-completion-retries");
        }
        if self.config.transactional {
            cmd.arg("--transactional");
        }
        if self.config.split_claim {
            cmd.arg("--split-claim");
        }
        let child = cmd
            .spawn()
            .map_err(|e| format!("cannot start an app: {e}"))?;
        self.children[i] = Some(child);
        Ok(())
    }

    /// How long a handler runs.
    fn handler_range(&self) -> [String; 4] {
        let (min, max) = if self.config.short_handlers {
            (10, 40)
        } else {
            (100, 300)
        };
        [
            "--handler-min-ms".into(),
            min.to_string(),
            "--handler-max-ms".into(),
            max.to_string(),
        ]
    }

    async fn wait_ready(&mut self, i: usize) -> Result<(), String> {
        let url = format!("http://127.0.0.1:{}/health", self.ports[i]);
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(20) {
            if let Some(child) = self.children[i].as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                return Err(format!(
                    "app {} exited at start ({status}){}",
                    self.name(i),
                    self.last_error()
                ));
            }
            if let Ok(r) = self.http.get(&url).send().await
                && r.status().is_success()
            {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Err(format!("app {} did not come up within 20 s", self.name(i)))
    }

    /// The last error an app printed before exiting (`idem-chaos: ...` in
    /// the apps' log), as `: <error>`, or nothing.
    fn last_error(&self) -> String {
        let log = std::fs::read_to_string(self.log_path()).unwrap_or_default();
        log.lines()
            .rev()
            .find_map(|line| line.strip_prefix("idem-chaos: "))
            .map(|error| format!(": {error}"))
            .unwrap_or_default()
    }

    /// kill -9 of app `i`; its name is remembered as killed.
    pub async fn kill(&mut self, i: usize) {
        if let Some(mut child) = self.children[i].take() {
            let _ = child.kill().await;
            self.killed.insert(self.name(i));
        }
    }

    /// SIGTERM to app `i`, then waits for it to exit (it drains first).
    ///
    /// # Errors
    /// When it exits with a failure or not within `bound` (then it is
    /// killed, and remembered as killed).
    pub async fn terminate(&mut self, i: usize, bound: Duration) -> Result<(), String> {
        let Some(mut child) = self.children[i].take() else {
            return Ok(());
        };
        if let Some(pid) = child.id() {
            let _ = Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .status()
                .await;
        }
        match tokio::time::timeout(bound, child.wait()).await {
            Ok(Ok(status)) if status.success() => Ok(()),
            Ok(Ok(status)) => Err(format!(
                "app {} exited with {status} on SIGTERM",
                self.name(i)
            )),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => {
                let _ = child.kill().await;
                self.killed.insert(self.name(i));
                Err(format!(
                    "app {} did not exit within {bound:?} of SIGTERM",
                    self.name(i)
                ))
            }
        }
    }

    /// Starts app `i` again (a new incarnation) and waits until it answers.
    ///
    /// # Errors
    /// When it does not come up.
    pub async fn restart(&mut self, i: usize) -> Result<(), String> {
        self.incarnations[i] += 1;
        self.spawn(i)?;
        self.wait_ready(i).await
    }

    /// SIGTERM to every app, each waited on.
    ///
    /// # Errors
    /// The first app that did not stop cleanly.
    pub async fn stop(&mut self) -> Result<(), String> {
        let mut result = Ok(());
        for i in 0..self.children.len() {
            let stopped = self.terminate(i, Duration::from_secs(10)).await;
            if result.is_ok() {
                result = stopped;
            }
        }
        result
    }
}
