//! Where the payments live: `--database`, a SQLite file or a server URL.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

/// Where the payments live (`--database`): a SQLite file, or a PostgreSQL
/// or MySQL/MariaDB server. Its `Debug` and [`display`](Self::display) hide
/// the password.
///
/// # Examples
/// ```
/// use idem_demo::db::Database;
/// let file: Database = "idem-demo.db".parse().unwrap();
/// assert_eq!(file.store_url(), "sqlite://idem-demo.db");
/// let server: Database = "postgres://app:secret@db/app".parse().unwrap();
/// assert!(!server.display().contains("secret"));
/// assert!("redis://127.0.0.1".parse::<Database>().is_err());
/// ```
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Database {
    /// A SQLite file, created when missing: a path, or `sqlite://path`.
    Sqlite(PathBuf),
    /// A `postgres://` or `postgresql://` URL.
    #[cfg(feature = "postgres")]
    Postgres(String),
    /// A `mysql://` or `mariadb://` URL.
    #[cfg(feature = "mysql")]
    MySql(String),
}

/// Why a `--database` value names no database this build can use. The
/// message shows the URL's scheme, never the rest of it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DatabaseError {
    /// A scheme the demo does not know.
    #[error(
        "unsupported database URL scheme `{0}`: --database takes a SQLite file path, \
         or a sqlite://, postgres://, postgresql://, mysql:// or mariadb:// URL"
    )]
    UnknownScheme(String),
    /// A known scheme whose cargo feature this build lacks.
    #[error("this idem-demo was built without {scheme}: build it with `--features {feature}`")]
    NotBuilt {
        /// The database, as the URL names it.
        scheme: String,
        /// The demo's cargo feature that adds it.
        feature: &'static str,
    },
}

impl Database {
    /// The path (SQLite) or the URL with its password hidden, for messages.
    pub fn display(&self) -> String {
        match self {
            Self::Sqlite(path) => path.display().to_string(),
            #[cfg(feature = "postgres")]
            Self::Postgres(url) => idem::redact_url(url),
            #[cfg(feature = "mysql")]
            Self::MySql(url) => idem::redact_url(url),
        }
    }

    /// The URL of the idempotency store in the same database.
    pub fn store_url(&self) -> String {
        match self {
            Self::Sqlite(path) => format!("sqlite://{}", path.display()),
            #[cfg(feature = "postgres")]
            Self::Postgres(url) => url.clone(),
            #[cfg(feature = "mysql")]
            Self::MySql(url) => url.clone(),
        }
    }
}

impl FromStr for Database {
    type Err = DatabaseError;

    fn from_str(text: &str) -> Result<Self, DatabaseError> {
        let text = text.trim();
        let Some((scheme, rest)) = text.split_once("://") else {
            // `sqlite:path`, or a bare path.
            let path = text.strip_prefix("sqlite:").unwrap_or(text);
            return Ok(Self::Sqlite(PathBuf::from(path)));
        };
        match scheme.to_ascii_lowercase().as_str() {
            "sqlite" => Ok(Self::Sqlite(PathBuf::from(rest))),
            #[cfg(feature = "postgres")]
            "postgres" | "postgresql" => Ok(Self::Postgres(text.to_owned())),
            #[cfg(not(feature = "postgres"))]
            "postgres" | "postgresql" => Err(not_built(scheme, "postgres")),
            #[cfg(feature = "mysql")]
            "mysql" | "mariadb" => Ok(Self::MySql(text.to_owned())),
            #[cfg(not(feature = "mysql"))]
            "mysql" | "mariadb" => Err(not_built(scheme, "mysql")),
            _ => {
                let readable = scheme.len() <= 20
                    && scheme
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c));
                Err(DatabaseError::UnknownScheme(if readable {
                    scheme.to_owned()
                } else {
                    "(unreadable)".to_owned()
                }))
            }
        }
    }
}

/// A known scheme whose feature is off.
#[cfg_attr(all(feature = "postgres", feature = "mysql"), allow(dead_code))]
fn not_built(scheme: &str, feature: &'static str) -> DatabaseError {
    DatabaseError::NotBuilt {
        scheme: scheme.to_owned(),
        feature,
    }
}

impl From<PathBuf> for Database {
    fn from(path: PathBuf) -> Self {
        Self::Sqlite(path)
    }
}

impl fmt::Debug for Database {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            Self::Sqlite(_) => "Sqlite",
            #[cfg(feature = "postgres")]
            Self::Postgres(_) => "Postgres",
            #[cfg(feature = "mysql")]
            Self::MySql(_) => "MySql",
        };
        f.debug_tuple(name).field(&self.display()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Database, DatabaseError> {
        text.parse()
    }

    #[test]
    fn paths_and_sqlite_urls_are_files() {
        for (text, path) in [
            ("idem-demo.db", "idem-demo.db"),
            ("/tmp/a.db", "/tmp/a.db"),
            ("sqlite:///tmp/a.db", "/tmp/a.db"),
            ("sqlite://a.db", "a.db"),
            ("sqlite:a.db", "a.db"),
        ] {
            assert_eq!(parse(text), Ok(Database::Sqlite(path.into())), "{text}");
        }
    }

    #[cfg(all(feature = "postgres", feature = "mysql"))]
    #[test]
    fn server_urls_are_kept_whole_and_shown_without_password() {
        let pg = parse("postgresql://u:hunter2@h:5432/db").unwrap();
        assert_eq!(pg.store_url(), "postgresql://u:hunter2@h:5432/db");
        assert!(matches!(pg, Database::Postgres(_)));
        let my = parse("MariaDB://root:hunter2@h/test").unwrap();
        assert!(matches!(my, Database::MySql(_)));
        for db in [pg, my] {
            assert!(!db.display().contains("hunter2"), "{}", db.display());
            assert!(!format!("{db:?}").contains("hunter2"), "{db:?}");
        }
    }

    #[test]
    fn an_unknown_scheme_is_named_and_the_rest_hidden() {
        let err = parse("redis://:hunter2@127.0.0.1:6379").unwrap_err();
        assert_eq!(err, DatabaseError::UnknownScheme("redis".into()));
        let text = err.to_string();
        assert!(
            text.contains("`redis`") && text.contains("postgres://"),
            "{text}"
        );
        assert!(!text.contains("hunter2"));
        assert_eq!(
            parse("a b:pw@c://x").unwrap_err(),
            DatabaseError::UnknownScheme("(unreadable)".into())
        );
    }
}
