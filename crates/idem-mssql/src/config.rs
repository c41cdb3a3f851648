//! What an [`MssqlStore`](crate::MssqlStore) connects to, and how.

use std::fmt;
use std::time::Duration;

use idem_core::Result;
use serde::{Deserialize, Serialize};

use crate::parse;
use crate::table::DEFAULT_TABLE;

/// The port SQL Server listens on by default.
pub const DEFAULT_PORT: u16 = 1433;

/// A password: kept as given, shown as `***` by `Debug`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Password(String);

impl Password {
    /// Wraps a password.
    pub fn new(password: impl Into<String>) -> Self {
        Self(password.into())
    }

    /// The password itself. Handle with care.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// Whether the connection is encrypted with TLS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Encrypt {
    /// Everything is encrypted; the connection fails without TLS (`Encrypt=true`).
    #[default]
    Required,
    /// Only the login is encrypted (`Encrypt=false`).
    LoginOnly,
    /// Nothing is encrypted, not even the login (`Encrypt=danger_plaintext`).
    /// Only for servers without TLS on a trusted network.
    DangerPlaintext,
}

/// Where and how to reach SQL Server, and the store's settings.
///
/// Built from a `mssql://` URL ([`MssqlConfig::from_url`]), an ADO.NET
/// connection string ([`MssqlConfig::from_ado_string`]), either one
/// ([`MssqlConfig::parse`]), or [`MssqlConfig::new`] and the setters. `Debug`
/// and `Display` never show the password.
///
/// # Examples
/// ```
/// use std::time::Duration;
/// use idem_mssql::MssqlConfig;
///
/// let config = MssqlConfig::from_url("mssql://app:s3cret@127.0.0.1:1433/shop?trust_server_certificate=true")?
///     .with_max_connections(20)
///     .with_connect_timeout(Duration::from_secs(3))
///     .with_table("dbo.Idempotency");
/// assert_eq!(config.to_string(), "mssql://app:***@127.0.0.1:1433/shop");
/// assert!(!format!("{config:?}").contains("s3cret"));
/// # Ok::<(), idem_core::Error>(())
/// ```
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MssqlConfig {
    pub(crate) host: String,
    pub(crate) port: u16,
    pub(crate) database: Option<String>,
    pub(crate) user: Option<String>,
    pub(crate) password: Option<Password>,
    pub(crate) encrypt: Encrypt,
    pub(crate) trust_server_certificate: bool,
    pub(crate) application_name: Option<String>,
    pub(crate) max_connections: u32,
    pub(crate) connect_timeout: Duration,
    pub(crate) operation_timeout: Duration,
    pub(crate) table: String,
    pub(crate) migrations: bool,
}

impl MssqlConfig {
    /// A config for `host` on the default port, with the defaults: TLS
    /// required, certificate checked, 10 connections, 5 s connect timeout,
    /// 10 s operation timeout, table `IdempotencyStore`, created if absent.
    ///
    /// # Examples
    /// ```
    /// use idem_mssql::MssqlConfig;
    /// let config = MssqlConfig::new("127.0.0.1")
    ///     .with_credentials("sa", "secret")
    ///     .with_database("master")
    ///     .with_trust_server_certificate(true);
    /// assert_eq!(config.host(), "127.0.0.1");
    /// ```
    pub fn new(host: impl Into<String>) -> Self {
        Self {
            host: host.into(),
            port: DEFAULT_PORT,
            database: None,
            user: None,
            password: None,
            encrypt: Encrypt::default(),
            trust_server_certificate: false,
            application_name: None,
            max_connections: 10,
            connect_timeout: Duration::from_secs(5),
            operation_timeout: Duration::from_secs(10),
            table: DEFAULT_TABLE.to_owned(),
            migrations: true,
        }
    }

    /// Parses `mssql://user:password@host:port/database?option=value&...`
    /// (the scheme `sqlserver://` works too). User and password are
    /// percent-decoded. Options: `trust_server_certificate`, `encrypt`
    /// (`true`, `false`, `danger_plaintext`), `application_name`,
    /// `max_connections`, `connect_timeout` and `operation_timeout` (seconds;
    /// `command_timeout` is read as `operation_timeout`),
    /// `table`, `migrations`. Anything else is an [`idem_core::Error::Config`]
    /// naming what is wrong, never showing the password.
    ///
    /// # Examples
    /// ```
    /// use idem_mssql::MssqlConfig;
    /// let config = MssqlConfig::from_url("mssql://sa:pw@db.internal/app?connect_timeout=2")?;
    /// assert_eq!(config.port(), 1433);
    /// assert!(MssqlConfig::from_url("mssql://sa:pw@db/app?colour=blue").is_err());
    /// # Ok::<(), idem_core::Error>(())
    /// ```
    pub fn from_url(url: &str) -> Result<Self> {
        parse::url(url)
    }

    /// Parses an ADO.NET connection string:
    /// `Server=tcp:host,1433;Database=app;User Id=sa;Password=...;TrustServerCertificate=true`.
    ///
    /// Keywords are case-insensitive; values may be quoted (`'...'`, `"..."`,
    /// `{...}`). Understood: `Server`/`Data Source`/`Address`, `Database`/`Initial
    /// Catalog`, `User Id`/`UID`, `Password`/`PWD`, `Encrypt`,
    /// `TrustServerCertificate`, `Application Name`, `Connect Timeout`,
    /// `Command Timeout` (the operation timeout), `Max Pool Size`. Client-side keywords that do not
    /// apply here (`Pooling`, `MultipleActiveResultSets`, ...) are ignored;
    /// integrated (Windows) authentication and unknown keywords are errors.
    ///
    /// # Examples
    /// ```
    /// use idem_mssql::MssqlConfig;
    /// let config = MssqlConfig::from_ado_string(
    ///     "Server=tcp:127.0.0.1,1433;Database=app;User Id=sa;Password='a;b';TrustServerCertificate=true",
    /// )?;
    /// assert_eq!(config.database(), Some("app"));
    /// assert!(!format!("{config:?}").contains("a;b"));
    /// # Ok::<(), idem_core::Error>(())
    /// ```
    pub fn from_ado_string(connection_string: &str) -> Result<Self> {
        parse::ado(connection_string)
    }

    /// A `mssql://` or `sqlserver://` URL, else an ADO.NET connection string.
    ///
    /// # Examples
    /// ```
    /// use idem_mssql::MssqlConfig;
    /// let a = MssqlConfig::parse("mssql://sa:pw@127.0.0.1/app")?;
    /// let b = MssqlConfig::parse("Server=127.0.0.1;Database=app;User Id=sa;Password=pw")?;
    /// assert_eq!(a, b);
    /// # Ok::<(), idem_core::Error>(())
    /// ```
    pub fn parse(text: &str) -> Result<Self> {
        let lower = text.trim_start().to_ascii_lowercase();
        if lower.starts_with("mssql://") || lower.starts_with("sqlserver://") {
            Self::from_url(text)
        } else {
            Self::from_ado_string(text)
        }
    }

    /// Sets the port.
    pub fn with_port(mut self, port: u16) -> Self {
        self.port = port;
        self
    }

    /// Sets the database (else the login's default database).
    pub fn with_database(mut self, database: impl Into<String>) -> Self {
        self.database = Some(database.into());
        self
    }

    /// Sets SQL Server authentication.
    pub fn with_credentials(
        mut self,
        user: impl Into<String>,
        password: impl Into<String>,
    ) -> Self {
        self.user = Some(user.into());
        self.password = Some(Password::new(password));
        self
    }

    /// Sets the encryption level.
    pub fn with_encrypt(mut self, encrypt: Encrypt) -> Self {
        self.encrypt = encrypt;
        self
    }

    /// Accepts any server certificate (development servers with a
    /// self-signed one).
    pub fn with_trust_server_certificate(mut self, trust: bool) -> Self {
        self.trust_server_certificate = trust;
        self
    }

    /// Sets the application name the server shows for the connections.
    pub fn with_application_name(mut self, name: impl Into<String>) -> Self {
        self.application_name = Some(name.into());
        self
    }

    /// Sets the pool's size (at least 1).
    pub fn with_max_connections(mut self, n: u32) -> Self {
        self.max_connections = n.max(1);
        self
    }

    /// How long establishing one connection may take (TCP, TLS and login; at
    /// least 1 ms); past it the operation that needed the connection, or
    /// `connect`, fails with `Error::Unavailable`.
    pub fn with_connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout.max(Duration::from_millis(1));
        self
    }

    /// The most one store operation may take (10 s by default; at least
    /// 1 ms); past it the operation fails with `Error::Unavailable`, never a
    /// hang.
    ///
    /// It bounds every method of `IdempotencyStore` (`find`, `store`,
    /// `remove`, `exists`, `claim`, `extend`, `complete`, `release`) from
    /// call to answer: creating the table on first use, waiting for a pooled
    /// connection, opening one (tiberius has no timeout of its own; the
    /// connect timeout bounds it too), and the statement, deadlock retries
    /// included; each batch of `purge_expired` is bounded alike. That holds
    /// for a server that is down, one that accepts connections and never
    /// answers, and one that stalls mid-statement.
    pub fn with_operation_timeout(mut self, timeout: Duration) -> Self {
        self.operation_timeout = timeout.max(Duration::from_millis(1));
        self
    }

    /// Sets the table (`Table` or `schema.Table`); it is validated by
    /// [`MssqlStore::connect`](crate::MssqlStore::connect) (see
    /// [`TableName`](crate::TableName)).
    pub fn with_table(mut self, table: impl Into<String>) -> Self {
        self.table = table.into();
        self
    }

    /// Whether the store creates its table when absent (default `true`).
    pub fn with_migrations(mut self, migrations: bool) -> Self {
        self.migrations = migrations;
        self
    }

    /// The host.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The database, when one is set.
    pub fn database(&self) -> Option<&str> {
        self.database.as_deref()
    }

    /// The user, when one is set.
    pub fn user(&self) -> Option<&str> {
        self.user.as_deref()
    }

    /// The encryption level.
    pub fn encrypt(&self) -> Encrypt {
        self.encrypt
    }

    /// Whether any server certificate is accepted.
    pub fn trust_server_certificate(&self) -> bool {
        self.trust_server_certificate
    }

    /// The pool's size.
    pub fn max_connections(&self) -> u32 {
        self.max_connections
    }

    /// The connect timeout.
    pub fn connect_timeout(&self) -> Duration {
        self.connect_timeout
    }

    /// The operation timeout.
    pub fn operation_timeout(&self) -> Duration {
        self.operation_timeout
    }

    /// The table, as configured.
    pub fn table(&self) -> &str {
        &self.table
    }

    /// Whether the table is created when absent.
    pub fn migrations(&self) -> bool {
        self.migrations
    }

    /// The tiberius config for one connection.
    pub(crate) fn tiberius(&self) -> tiberius::Config {
        let mut config = tiberius::Config::new();
        config.host(&self.host);
        config.port(self.port);
        if let Some(database) = &self.database {
            config.database(database);
        }
        if let Some(name) = &self.application_name {
            config.application_name(name);
        }
        config.encryption(match self.encrypt {
            Encrypt::Required => tiberius::EncryptionLevel::Required,
            Encrypt::LoginOnly => tiberius::EncryptionLevel::Off,
            Encrypt::DangerPlaintext => tiberius::EncryptionLevel::NotSupported,
        });
        if self.trust_server_certificate {
            config.trust_cert();
        }
        config.authentication(tiberius::AuthMethod::sql_server(
            self.user.as_deref().unwrap_or_default(),
            self.password
                .as_ref()
                .map(Password::expose)
                .unwrap_or_default(),
        ));
        config
    }
}

impl fmt::Display for MssqlConfig {
    /// A URL for messages: `mssql://user:***@host:port/database`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("mssql://")?;
        if let Some(user) = &self.user {
            f.write_str(user)?;
            if self.password.is_some() {
                f.write_str(":***")?;
            }
            f.write_str("@")?;
        }
        write!(f, "{}:{}", self.host, self.port)?;
        if let Some(database) = &self.database {
            write!(f, "/{database}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for MssqlConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MssqlConfig")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("database", &self.database)
            .field("user", &self.user)
            .field("password", &self.password)
            .field("encrypt", &self.encrypt)
            .field("trust_server_certificate", &self.trust_server_certificate)
            .field("application_name", &self.application_name)
            .field("max_connections", &self.max_connections)
            .field("connect_timeout", &self.connect_timeout)
            .field("operation_timeout", &self.operation_timeout)
            .field("table", &self.table)
            .field("migrations", &self.migrations)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_display_and_tiberius_debug_hide_the_password() {
        let config = MssqlConfig::new("127.0.0.1").with_credentials("sa", "Hunter2-Secret");
        for shown in [
            format!("{config:?}"),
            format!("{config:#?}"),
            config.to_string(),
            format!("{:?}", config.tiberius()),
        ] {
            assert!(!shown.contains("Hunter2-Secret"), "{shown}");
        }
        assert!(format!("{config:?}").contains("***"));
        assert_eq!(config.to_string(), "mssql://sa:***@127.0.0.1:1433");
    }

    #[test]
    fn setters_clamp_to_usable_values() {
        let config = MssqlConfig::new("h")
            .with_max_connections(0)
            .with_connect_timeout(Duration::ZERO)
            .with_operation_timeout(Duration::ZERO);
        assert_eq!(config.max_connections(), 1);
        assert_eq!(config.connect_timeout(), Duration::from_millis(1));
        assert_eq!(config.operation_timeout(), Duration::from_millis(1));
        assert_eq!(config.tiberius().get_addr(), "h:1433");
    }

    #[test]
    fn serde_round_trip_keeps_every_field() {
        let config = MssqlConfig::new("db")
            .with_credentials("u", "p")
            .with_table("s.t")
            .with_encrypt(Encrypt::LoginOnly);
        let json = serde_json::to_string(&config).unwrap();
        let back: MssqlConfig = serde_json::from_str(&json).unwrap();
        assert_eq!(back, config);
    }
}
