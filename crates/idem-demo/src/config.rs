//! Command-line flags and environment variables.

use std::ffi::OsStr;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::builder::TypedValueParser;
use clap::error::ErrorKind;
use clap::{Arg, Command, Parser, ValueEnum};

use crate::db::Database;

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

    /// Where the payments live: a SQLite file (a path or `sqlite://path`,
    /// created when missing), or a `postgres://` or `mysql://` (`mariadb://`)
    /// URL. Unless --store-url says otherwise, the idempotency records live
    /// there too, and each payment is one transaction with its record.
    #[arg(
        long,
        env = "IDEM_DEMO_DATABASE",
        hide_env_values = true,
        default_value = "idem-demo.db",
        value_parser = DatabaseParser
    )]
    pub database: Database,

    /// Idempotency store URL, for the lease mode: the records there, the
    /// payments in --database, each written on its own (default: none, the
    /// records in --database, one transaction with each payment). Built
    /// with the `redis`, `postgres`, `mysql` or `mssql` feature, those
    /// stores too.
    #[arg(long, env = "IDEM_STORE_URL", hide_env_values = true)]
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

    /// On SIGTERM or Ctrl-C, how long to wait for the payments under way to
    /// finish and their answers to be written, while new ones get 503
    /// ("10s", "500ms"; a bare number is seconds). Past it the process exits
    /// anyway. The default fits in `docker stop`'s 10 s.
    #[arg(long, env = "IDEM_DEMO_DRAIN_TIMEOUT", default_value = "8s", value_parser = duration)]
    pub drain_timeout: Duration,
}

/// The default of `--drain-timeout`.
pub const DEFAULT_DRAIN_TIMEOUT: Duration = Duration::from_secs(8);

/// How the chaos option loses a response.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ChaosMode {
    /// Close the connection without an answer.
    Drop,
    /// Answer `502 Bad Gateway`, as a proxy in front of a dead upstream would.
    BadGateway,
}

impl Config {
    /// The defaults, with the payments in the SQLite file `database` and a
    /// free port; set [`Config::database`] for a server.
    ///
    /// # Examples
    /// ```
    /// let mut config = idem_demo::Config::new("/tmp/demo.db");
    /// assert_eq!(config.store_url(), "sqlite:///tmp/demo.db");
    /// # #[cfg(feature = "postgres")] {
    /// config.database = "postgres://app@127.0.0.1/app".parse().unwrap();
    /// assert_eq!(config.store_url(), "postgres://app@127.0.0.1/app");
    /// # }
    /// ```
    pub fn new(database: impl Into<PathBuf>) -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            database: Database::Sqlite(database.into()),
            store_url: None,
            chaos_drop_rate: 0.0,
            chaos_mode: ChaosMode::Drop,
            processing_delay_ms: 0,
            drain_timeout: DEFAULT_DRAIN_TIMEOUT,
        }
    }

    /// The idempotency store's URL: `--store-url`, else the database's.
    pub fn store_url(&self) -> String {
        self.store_url
            .clone()
            .unwrap_or_else(|| self.database.store_url())
    }
}

/// Parses `--database`; its error names the URL's scheme, never the rest
/// (clap's own would print the whole value, password included).
#[derive(Debug, Clone, Copy)]
struct DatabaseParser;

impl TypedValueParser for DatabaseParser {
    type Value = Database;

    fn parse_ref(
        &self,
        cmd: &Command,
        _: Option<&Arg>,
        value: &OsStr,
    ) -> Result<Database, clap::Error> {
        let text = value.to_str().ok_or_else(|| {
            clap::Error::raw(ErrorKind::InvalidUtf8, "--database is not valid UTF-8\n")
                .with_cmd(cmd)
        })?;
        text.parse().map_err(|e| {
            clap::Error::raw(ErrorKind::ValueValidation, format!("--database: {e}\n")).with_cmd(cmd)
        })
    }
}

/// `10s`, `500ms`, `2m`, or a bare number of seconds.
fn duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: u64 = number
        .parse()
        .map_err(|_| format!("`{text}` is not a duration like 10s or 500ms"))?;
    match unit {
        "" | "s" => Ok(Duration::from_secs(number)),
        "ms" => Ok(Duration::from_millis(number)),
        "m" => Ok(Duration::from_secs(number.saturating_mul(60))),
        _ => Err(format!("`{text}`: the unit is ms, s or m")),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drain_timeouts_read_seconds_milliseconds_and_minutes() {
        assert_eq!(duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(duration("10"), Ok(Duration::from_secs(10)));
        assert_eq!(duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(duration("2m"), Ok(Duration::from_secs(120)));
        assert!(duration("1.5s").is_err());
        assert!(duration("s").is_err());
        assert!(duration("3h").is_err());
    }
}
