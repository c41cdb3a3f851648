//! Which backend a URL names, and whether it is compiled in.

use idem_core::{Error, Result};

/// A backend a store URL can name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Backend {
    /// `memory://`: in this process.
    Memory,
    /// `sqlite://path`, `sqlite:path`, `sqlite::memory:`.
    Sqlite,
    /// `postgres://`, `postgresql://`.
    Postgres,
    /// `mysql://`, `mariadb://`.
    MySql,
    /// `redis://`, `rediss://`, and the cluster forms of `idem-redis`.
    Redis,
    /// `mssql://`, `sqlserver://`, or an ADO.NET connection string.
    Mssql,
}

/// Every scheme we know, with its backend.
const SCHEMES: &[(&str, Backend)] = &[
    ("memory", Backend::Memory),
    ("sqlite", Backend::Sqlite),
    ("postgres", Backend::Postgres),
    ("postgresql", Backend::Postgres),
    ("mysql", Backend::MySql),
    ("mariadb", Backend::MySql),
    ("redis", Backend::Redis),
    ("rediss", Backend::Redis),
    ("redis+cluster", Backend::Redis),
    ("rediss+cluster", Backend::Redis),
    ("mssql", Backend::Mssql),
    ("sqlserver", Backend::Mssql),
];

impl Backend {
    /// The cargo feature of the `idem` crate that compiles this backend in
    /// (`None` for memory, which is always there).
    pub fn feature(self) -> Option<&'static str> {
        match self {
            Self::Memory => None,
            Self::Sqlite => Some("sqlite"),
            Self::Postgres => Some("postgres"),
            Self::MySql => Some("mysql"),
            Self::Redis => Some("redis"),
            Self::Mssql => Some("mssql"),
        }
    }

    /// Whether this build of `idem` can connect to the backend.
    pub fn is_compiled_in(self) -> bool {
        match self {
            Self::Memory => true,
            Self::Sqlite => cfg!(feature = "sqlite"),
            Self::Postgres => cfg!(feature = "postgres"),
            Self::MySql => cfg!(feature = "mysql"),
            Self::Redis => cfg!(feature = "redis"),
            Self::Mssql => cfg!(feature = "mssql"),
        }
    }

    /// The error for a backend that is known but not compiled in.
    pub(crate) fn not_compiled_in(self) -> Error {
        let feature = self.feature().unwrap_or("default");
        Error::config(format!(
            "the {self:?} store is not compiled into this build: enable the `{feature}` feature of the `idem` crate"
        ))
    }
}

/// The backend `url` names.
///
/// An ADO.NET connection string (`Server=...;Database=...`) names SQL Server.
///
/// # Errors
/// [`Error::Config`] for an unknown scheme (the message lists the known ones
/// and shows only the scheme, never the rest of the URL), or for a known
/// backend whose feature is not compiled in (the message names the feature).
///
/// # Examples
/// ```
/// use idem::{Backend, backend_for_url};
/// assert_eq!(backend_for_url("memory://").unwrap(), Backend::Memory);
/// assert_eq!(backend_for_url("sqlite::memory:").unwrap(), Backend::Sqlite);
/// assert!(backend_for_url("ftp://user:secret@host").is_err());
/// ```
pub fn backend_for_url(url: &str) -> Result<Backend> {
    compiled(scheme_of(url)?, Backend::is_compiled_in)
}

fn compiled(backend: Backend, is_compiled_in: impl Fn(Backend) -> bool) -> Result<Backend> {
    if is_compiled_in(backend) {
        Ok(backend)
    } else {
        Err(backend.not_compiled_in())
    }
}

fn scheme_of(url: &str) -> Result<Backend> {
    let url = url.trim();
    if url.is_empty() {
        return Err(Error::config("the store URL is empty"));
    }
    let scheme = url
        .split(':')
        .next()
        .unwrap_or_default()
        .to_ascii_lowercase();
    if let Some((_, backend)) = SCHEMES.iter().find(|(s, _)| *s == scheme) {
        return Ok(*backend);
    }
    if url.contains('=') && !url.contains("://") {
        return Ok(Backend::Mssql);
    }
    let known: Vec<_> = SCHEMES.iter().map(|(s, _)| *s).collect();
    let shown = if scheme.len() <= 20
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
    {
        scheme
    } else {
        "(unreadable)".to_owned()
    };
    Err(Error::config(format!(
        "unknown store URL scheme `{shown}`; known schemes: {}, or an ADO.NET connection string for SQL Server",
        known.join(", ")
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_documented_form_names_its_backend() {
        for (url, backend) in [
            ("memory://", Backend::Memory),
            ("sqlite://idem.db", Backend::Sqlite),
            ("sqlite:idem.db", Backend::Sqlite),
            ("sqlite::memory:", Backend::Sqlite),
            ("postgres://u:p@h/db", Backend::Postgres),
            ("postgresql://h/db", Backend::Postgres),
            ("mysql://root@h/test", Backend::MySql),
            ("mariadb://root@h/test", Backend::MySql),
            ("redis://127.0.0.1:6379", Backend::Redis),
            ("rediss://h:6380", Backend::Redis),
            ("redis+cluster://h1:7000,h2:7001", Backend::Redis),
            ("mssql://sa:pw@h:1433/db", Backend::Mssql),
            (
                "Server=tcp:h,1433;Database=db;User Id=sa;Password=pw",
                Backend::Mssql,
            ),
        ] {
            assert_eq!(scheme_of(url).unwrap(), backend, "{url}");
        }
    }

    #[test]
    fn a_backend_without_its_feature_names_the_feature() {
        let err = compiled(scheme_of("redis://:pw@h").unwrap(), |_| false).unwrap_err();
        let text = err.to_string();
        assert!(matches!(err, Error::Config { .. }));
        assert!(
            text.contains("enable the `redis` feature of the `idem` crate"),
            "{text}"
        );
        let err = compiled(Backend::Postgres, |_| false)
            .unwrap_err()
            .to_string();
        assert!(err.contains("`postgres` feature"), "{err}");
        assert!(compiled(Backend::Memory, |b| b == Backend::Memory).is_ok());
    }

    #[test]
    fn an_unknown_scheme_lists_the_known_ones_and_hides_the_rest() {
        let err = scheme_of("mongodb://admin:hunter2@db:27017")
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown store URL scheme `mongodb`"), "{err}");
        assert!(err.contains("redis") && err.contains("postgres"), "{err}");
        assert!(!err.contains("hunter2"), "{err}");
        assert!(scheme_of("").is_err());
        assert!(scheme_of("just some text").is_err());
    }
}
