//! What can go wrong, and the exit code each failure gives.

/// A failed command. [`CliError::exit_code`] is what the process exits with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CliError {
    /// The store (or the settings that name it) failed; the kind of
    /// [`idem::Error`] decides the exit code.
    #[error(transparent)]
    Store(#[from] idem::Error),
    /// A step of `check` could not run: the store's error.
    #[error("check failed at {step}")]
    AtStep {
        /// The step.
        step: &'static str,
        /// The store's error; its kind decides the exit code.
        #[source]
        source: idem::Error,
    },
    /// The output could not be written (a closed pipe).
    #[error("cannot write the output")]
    Output(#[source] std::io::Error),
    /// `get` found no live record.
    #[error("no record for key {key:?} in scope {scope:?}")]
    NotFound {
        /// The scope asked for.
        scope: String,
        /// The key asked for.
        key: String,
    },
    /// The store cannot do this.
    #[error("{operation} is not supported by {backend}: {reason}")]
    Unsupported {
        /// The command.
        operation: &'static str,
        /// The backend's name.
        backend: &'static str,
        /// Why, and what to do instead.
        reason: String,
    },
    /// `check` reached the store, but a step answered wrongly.
    #[error("check failed at {step}: {reason}")]
    CheckFailed {
        /// The step that failed.
        step: &'static str,
        /// What it answered instead.
        reason: String,
    },
}

/// The exit codes, documented in the README.
pub mod exit {
    /// Done.
    pub const OK: u8 = 0;
    /// The store answered with an error (a failed statement, a corrupt
    /// record), or the output could not be written.
    pub const STORE: u8 = 1;
    /// Bad arguments, or a key or scope the protocol refuses.
    pub const USAGE: u8 = 2;
    /// `get`: no live record under that key.
    pub const NOT_FOUND: u8 = 3;
    /// The store cannot do this (`stats` on a store that cannot count).
    pub const UNSUPPORTED: u8 = 4;
    /// The settings are wrong: no store URL, unknown scheme, bad config file.
    pub const CONFIG: u8 = 5;
    /// The store could not be reached in time.
    pub const UNAVAILABLE: u8 = 6;
    /// `check`: the store answered, but not as the protocol requires.
    pub const CHECK_FAILED: u8 = 7;
}

impl CliError {
    /// The process's exit code for this failure (see [`exit`]).
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::Store(error) | Self::AtStep { source: error, .. } => match error {
                idem::Error::Unavailable { .. } => exit::UNAVAILABLE,
                idem::Error::Config { .. } => exit::CONFIG,
                idem::Error::InvalidKey(_) => exit::USAGE,
                idem::Error::Unsupported { .. } => exit::UNSUPPORTED,
                _ => exit::STORE,
            },
            Self::Unsupported { .. } => exit::UNSUPPORTED,
            Self::NotFound { .. } => exit::NOT_FOUND,
            Self::CheckFailed { .. } => exit::CHECK_FAILED,
            Self::Output(_) => exit::STORE,
        }
    }

    /// A short name for the kind of failure, for `--json` output.
    pub fn kind(&self) -> &'static str {
        match self.exit_code() {
            exit::UNAVAILABLE => "unavailable",
            exit::CONFIG => "config",
            exit::USAGE => "usage",
            exit::UNSUPPORTED => "unsupported",
            exit::NOT_FOUND => "not_found",
            exit::CHECK_FAILED => "check_failed",
            _ => "store",
        }
    }

    /// The message with its sources, each after a colon; no password, as no
    /// error of idem's carries one.
    pub fn chain(&self) -> String {
        let mut text = self.to_string();
        let mut source = std::error::Error::source(self);
        while let Some(s) = source {
            text.push_str(": ");
            text.push_str(&s.to_string());
            source = s.source();
        }
        text
    }
}

/// `Result` with a [`CliError`].
pub type Result<T, E = CliError> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_kind_of_failure_has_its_own_code() {
        let unavailable = CliError::Store(idem::Error::unavailable("redis", "refused"));
        assert_eq!(unavailable.exit_code(), exit::UNAVAILABLE);
        assert_eq!(unavailable.chain(), "redis store is unavailable: refused");
        let config = CliError::Store(idem::Error::config("bad"));
        assert_eq!(config.exit_code(), exit::CONFIG);
        let key = idem::IdempotencyKey::new("").unwrap_err();
        assert_eq!(CliError::Store(key.into()).exit_code(), exit::USAGE);
        let failed = CliError::Store(idem::Error::backend("postgres", "syntax"));
        assert_eq!(failed.exit_code(), exit::STORE);
        let unsupported = CliError::Store(idem::Error::unsupported("MssqlStore", "stats"));
        assert_eq!(unsupported.kind(), "unsupported");
        let codes = [
            exit::OK,
            exit::STORE,
            exit::USAGE,
            exit::NOT_FOUND,
            exit::UNSUPPORTED,
            exit::CONFIG,
            exit::UNAVAILABLE,
            exit::CHECK_FAILED,
        ];
        let mut unique = codes.to_vec();
        unique.dedup();
        assert_eq!(unique.len(), codes.len());
    }
}
