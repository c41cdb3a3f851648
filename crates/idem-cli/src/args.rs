//! The command line.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Look up, delete, purge and count idempotency records, and check a store.
///
/// Settings as the library reads them: the TOML file of `--config`, then
/// the IDEM_* environment variables (IDEM_STORE_URL, IDEM_KEY_PREFIX,
/// IDEM_TABLE, IDEM_LEASE, ...), then `--store-url`, each winning over the
/// one before.
#[derive(Debug, Parser)]
#[command(name = "idem", version, about, long_about)]
pub struct Cli {
    /// A TOML file of settings (the fields of `idem::StoreConfig`).
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// The store, as a URL; wins over IDEM_STORE_URL and the file.
    #[arg(long, global = true, value_name = "URL")]
    pub store_url: Option<String>,
    /// Machine-readable output: one JSON document on stdout (errors: on
    /// stderr, as JSON too).
    #[arg(long, global = true)]
    pub json: bool,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// A subcommand.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Show one record: state, fingerprint, status, headers, body size, request id,
    /// created, expires.
    Get {
        /// The record.
        #[command(flatten)]
        at: KeyArgs,
        /// Print the stored body only (raw bytes; with --json, in the document).
        #[arg(long)]
        body: bool,
    },
    /// Delete one record, whatever its state, and say whether it existed.
    Delete {
        /// The record.
        #[command(flatten)]
        at: KeyArgs,
    },
    /// Delete the expired records, on stores that keep them (SQL).
    Purge,
    /// Run claim, complete, replay and release on throwaway keys, timing
    /// each step.
    Check,
    /// Count the records under the key prefix: in progress, completed, and
    /// expired ones awaiting a purge.
    Stats,
}

/// Which record.
#[derive(Debug, Args)]
pub struct KeyArgs {
    /// The scope the layer put the key in (default: the global scope, empty).
    #[arg(long, default_value = "")]
    pub scope: String,
    /// The client's idempotency key.
    #[arg(long)]
    pub key: String,
}
