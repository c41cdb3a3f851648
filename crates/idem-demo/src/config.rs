//! Command-line flags and environment variables.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Parser, ValueEnum};

/// The payments API demo for idem.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "idem-demo",
    version,
    about,
    long_about = None,
    after_help = "The idempotency store is also tuned by the idem crate's IDEM_* variables: \
                  IDEM_LEASE, IDEM_RETENTION (\"24h\"), IDEM_KEY_PREFIX, IDEM_TIER, \
                  IDEM_CONNECT_TIMEOUT, IDEM_OPERATION_TIMEOUT, IDEM_MAX_CONNECTIONS, IDEM_TABLE."
)]
pub struct Config {
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, env = "IDEM_DEMO_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,

    /// SQLite file for the payments (created when missing); also the
    /// idempotency store unless --store-url says otherwise.
    #[arg(long, env = "IDEM_DEMO_DATABASE", default_value = "idem-demo.db")]
    pub database: PathBuf,

    /// Idempotency store URL (default: sqlite://<database>, the same file).
    /// Built with the `redis`, `postgres`, `mysql` or `mssql` feature, those
    /// stores too.
    #[arg(long, env = "IDEM_STORE_URL")]
    pub store_url: Option<String>,

    /// Share (0.0 to 1.0) of fresh payment responses to lose after the
    /// payment was made and its response stored, to watch retries land on the
    /// replay.
    #[arg(long, env = "IDEM_DEMO_CHAOS_DROP_RATE", default_value_t = 0.0, value_parser = rate)]
    pub chaos_drop_rate: f64,

    /// How a response is lost: the connection is dropped, or a 502 is sent
    /// instead.
    #[arg(long, env = "IDEM_DEMO_CHAOS_MODE", value_enum, default_value_t = ChaosMode::Drop)]
    pub chaos_mode: ChaosMode,

    /// Simulated processing time of POST /payments in milliseconds, to watch
    /// a concurrent retry get 409.
    #[arg(long, env = "IDEM_DEMO_PROCESSING_DELAY_MS", default_value_t = 0)]
    pub processing_delay_ms: u64,
}

/// How the chaos option loses a response.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ChaosMode {
    /// Close the connection without an answer.
    Drop,
    /// Answer `502 Bad Gateway`, as a proxy in front of a dead upstream would.
    BadGateway,
}

impl Config {
    /// The defaults, with the database at `database` and a free port.
    ///
    /// # Examples
    /// ```
    /// let config = idem_demo::Config::new("/tmp/demo.db");
    /// assert_eq!(config.store_url(), "sqlite:///tmp/demo.db");
    /// ```
    pub fn new(database: impl Into<PathBuf>) -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            database: database.into(),
            store_url: None,
            chaos_drop_rate: 0.0,
            chaos_mode: ChaosMode::Drop,
            processing_delay_ms: 0,
        }
    }

    /// The idempotency store's URL: `--store-url`, else the database file.
    pub fn store_url(&self) -> String {
        self.store_url
            .clone()
            .unwrap_or_else(|| format!("sqlite://{}", self.database.display()))
    }
}

fn rate(text: &str) -> Result<f64, String> {
    let rate: f64 = text
        .parse()
        .map_err(|_| format!("`{text}` is not a number"))?;
    if (0.0..=1.0).contains(&rate) {
        Ok(rate)
    } else {
        Err("must be between 0.0 and 1.0".to_owned())
    }
}
