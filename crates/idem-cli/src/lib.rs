#![doc = include_str!("../README.md")]

mod args;
mod check;
mod error;
mod record;
mod run;
mod stats;
mod target;

pub use args::{Cli, Command, KeyArgs};
pub use check::{CHECK_SCOPE, CheckReport, Step, check};
pub use error::{CliError, Result, exit};
pub use record::{Deleted, Header, RecordView, delete, get, store_key};
pub use run::run;
pub use stats::{Purged, StatsView, purge, stats};
pub use target::{Target, backend_name, settings};
