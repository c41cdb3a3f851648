//! Reading a config from a `mssql://` URL or an ADO.NET connection string.
//!
//! No message built here ever holds the password, nor any text that could be
//! a piece of it.

use std::time::Duration;

use idem_core::{Error, Result};

use crate::config::{DEFAULT_PORT, Encrypt, MssqlConfig, Password};
use crate::table::TableName;

pub(crate) fn url(text: &str) -> Result<MssqlConfig> {
    let url = url::Url::parse(text.trim()).map_err(|e| Error::Config {
        message: format!("not a valid mssql:// URL: {e}"),
        source: Some(Box::new(e)),
    })?;
    if !matches!(url.scheme(), "mssql" | "sqlserver") {
        return Err(Error::config(format!(
            "the URL scheme is `{}`; expected `mssql` or `sqlserver`",
            url.scheme()
        )));
    }
    let host = url
        .host_str()
        .filter(|h| !h.is_empty())
        .ok_or_else(|| Error::config("the mssql:// URL has no host"))?;
    let mut config = MssqlConfig::new(host).with_port(url.port().unwrap_or(DEFAULT_PORT));
    if !url.username().is_empty() {
        config.user = Some(decode(url.username(), "user name")?);
    }
    if let Some(password) = url.password() {
        config.password = Some(Password::new(decode(password, "password")?));
    }
    let path = url.path().trim_start_matches('/');
    if path.contains('/') {
        return Err(Error::config(
            "the mssql:// URL's path must be just the database name",
        ));
    }
    if !path.is_empty() {
        config.database = Some(decode(path, "database name")?);
    }
    for (name, value) in url.query_pairs() {
        config = url_option(config, &name, &value)?;
    }
    Ok(config)
}

fn url_option(config: MssqlConfig, name: &str, value: &str) -> Result<MssqlConfig> {
    Ok(match name {
        "trust_server_certificate" | "trustservercertificate" => {
            config.with_trust_server_certificate(boolean(name, value)?)
        }
        "encrypt" => config.with_encrypt(encrypt(value)?),
        "application_name" => config.with_application_name(value),
        "max_connections" => config.with_max_connections(number(name, value)?),
        "connect_timeout" => config.with_connect_timeout(seconds(name, value)?),
        // `command_timeout` as in ADO.NET's `Command Timeout`.
        "operation_timeout" | "command_timeout" => {
            config.with_operation_timeout(seconds(name, value)?)
        }
        "table" => {
            TableName::parse(value)?;
            config.with_table(value)
        }
        "migrations" => config.with_migrations(boolean(name, value)?),
        other => {
            return Err(Error::config(format!(
                "unknown mssql:// URL option `{other}`; known: trust_server_certificate, encrypt, \
                 application_name, max_connections, connect_timeout, operation_timeout \
                 (or command_timeout), table, migrations"
            )));
        }
    })
}

/// ADO.NET keywords that configure the .NET client itself and mean nothing here.
const IGNORED_KEYWORDS: &[&str] = &[
    "pooling",
    "min pool size",
    "multipleactiveresultsets",
    "persist security info",
    "persistsecurityinfo",
    "multisubnetfailover",
    "connect retry count",
    "connectretrycount",
    "connect retry interval",
    "connectretryinterval",
    "packet size",
    "workstation id",
    "wsid",
    "load balance timeout",
    "connection lifetime",
    "applicationintent",
    "application intent",
];

pub(crate) fn ado(text: &str) -> Result<MssqlConfig> {
    let pairs = ado_pairs(text)?;
    let mut server = None;
    let mut config = MssqlConfig::new("");
    let mut password_seen = false;
    for (keyword, value) in pairs {
        match keyword.as_str() {
            "server" | "data source" | "address" | "addr" | "network address" => {
                server = Some(value);
            }
            "database" | "initial catalog" => config.database = Some(value),
            "user id" | "userid" | "uid" | "user" | "username" => config.user = Some(value),
            "password" | "pwd" => {
                password_seen = true;
                config.password = Some(Password::new(value));
            }
            "encrypt" => config.encrypt = encrypt(&value)?,
            "trustservercertificate" | "trust server certificate" => {
                config.trust_server_certificate = boolean(&keyword, &value)?;
            }
            "application name" | "app" => config.application_name = Some(value),
            "connect timeout" | "connection timeout" | "timeout" => {
                config = config.with_connect_timeout(seconds(&keyword, &value)?);
            }
            "command timeout" => config = config.with_operation_timeout(seconds(&keyword, &value)?),
            "max pool size" => config = config.with_max_connections(number(&keyword, &value)?),
            "integrated security" | "trusted_connection" => {
                if !matches!(value.to_ascii_lowercase().as_str(), "false" | "no") {
                    return Err(Error::config(
                        "integrated (Windows) authentication is not supported; use User Id and Password",
                    ));
                }
            }
            known if IGNORED_KEYWORDS.contains(&known) => {}
            _ if password_seen => {
                return Err(Error::config(
                    "unknown keyword after the password in the connection string \
                     (a `;` in a password must be quoted: Password='a;b')",
                ));
            }
            other => {
                return Err(Error::config(format!(
                    "unknown connection string keyword `{other}`"
                )));
            }
        }
    }
    let server =
        server.ok_or_else(|| Error::config("the connection string has no Server keyword"))?;
    let (host, port) = ado_server(&server)?;
    config.host = host;
    config.port = port;
    Ok(config)
}

/// `tcp:host\instance,port`: the host and the port.
fn ado_server(server: &str) -> Result<(String, u16)> {
    let mut rest = server.trim();
    if let Some((protocol, after)) = rest.split_once(':') {
        if protocol.eq_ignore_ascii_case("tcp") {
            rest = after;
        } else if ["np", "lpc", "admin"].contains(&protocol.to_ascii_lowercase().as_str()) {
            return Err(Error::config(format!(
                "the `{protocol}:` protocol is not supported; use tcp"
            )));
        }
    }
    let (host_part, port) = match rest.rsplit_once(',') {
        Some((host, port)) => {
            let port = port
                .trim()
                .parse::<u16>()
                .map_err(|_| Error::config("the port in Server is not a number from 0 to 65535"))?;
            (host.trim(), Some(port))
        }
        None => (rest, None),
    };
    let (host, instance) = match host_part.split_once('\\') {
        Some((host, instance)) => (host, Some(instance)),
        None => (host_part, None),
    };
    if instance.is_some() && port.is_none() {
        return Err(Error::config(
            "a named instance needs its port (Server=host\\instance,port): the SQL Browser is not used",
        ));
    }
    let host = match host.trim() {
        "." | "(local)" | "(localdb)" => "localhost",
        "" => return Err(Error::config("the Server keyword names no host")),
        host => host,
    };
    if host.contains(char::is_whitespace) {
        return Err(Error::config("the host in Server contains whitespace"));
    }
    Ok((host.to_owned(), port.unwrap_or(DEFAULT_PORT)))
}

/// Splits `k=v;k='v';k={v}` into lower-cased keywords (inner spaces kept,
/// outer ones trimmed) and unquoted values.
fn ado_pairs(text: &str) -> Result<Vec<(String, String)>> {
    let mut pairs = Vec::new();
    let mut chars = text.chars().peekable();
    let mut segment = 0;
    loop {
        segment += 1;
        let mut keyword = String::new();
        let mut ended = true;
        for c in chars.by_ref() {
            match c {
                '=' => {
                    ended = false;
                    break;
                }
                ';' => break,
                c => keyword.push(c),
            }
        }
        let keyword = keyword.trim().to_ascii_lowercase();
        if ended {
            // A segment without `=`: fine only if it is blank.
            if !keyword.is_empty() {
                return Err(Error::config(format!(
                    "part {segment} of the connection string is not `keyword=value`"
                )));
            }
            if chars.peek().is_none() {
                break;
            }
            continue;
        }
        if keyword.is_empty() {
            return Err(Error::config(format!(
                "part {segment} of the connection string has no keyword before `=`"
            )));
        }
        while chars.next_if(|c| *c == ' ' || *c == '\t').is_some() {}
        let value = match chars.peek().copied() {
            Some(quote @ ('\'' | '"' | '{')) => {
                chars.next();
                let close = if quote == '{' { '}' } else { quote };
                let mut value = String::new();
                loop {
                    match chars.next() {
                        Some(c) if c == close => {
                            if chars.next_if_eq(&close).is_some() {
                                value.push(close);
                            } else {
                                break;
                            }
                        }
                        Some(c) => value.push(c),
                        None => {
                            return Err(Error::config(format!(
                                "the quoted value of `{keyword}` is not closed"
                            )));
                        }
                    }
                }
                while chars.next_if(|c| c.is_whitespace()).is_some() {}
                match chars.next() {
                    None | Some(';') => {}
                    Some(_) => {
                        return Err(Error::config(format!(
                            "unexpected text after the quoted value of `{keyword}`"
                        )));
                    }
                }
                value
            }
            _ => {
                let mut value = String::new();
                for c in chars.by_ref() {
                    if c == ';' {
                        break;
                    }
                    value.push(c);
                }
                value.trim().to_owned()
            }
        };
        pairs.push((keyword, value));
        if chars.peek().is_none() {
            break;
        }
    }
    if pairs.is_empty() {
        return Err(Error::config("the connection string is empty"));
    }
    Ok(pairs)
}

fn boolean(name: &str, value: &str) -> Result<bool> {
    match value.trim().to_ascii_lowercase().as_str() {
        "true" | "yes" | "1" => Ok(true),
        "false" | "no" | "0" => Ok(false),
        _ => Err(Error::config(format!("`{name}` must be true or false"))),
    }
}

fn encrypt(value: &str) -> Result<Encrypt> {
    match value.trim().to_ascii_lowercase().as_str() {
        "true" | "yes" | "mandatory" | "strict" | "required" => Ok(Encrypt::Required),
        "false" | "no" | "optional" => Ok(Encrypt::LoginOnly),
        "danger_plaintext" => Ok(Encrypt::DangerPlaintext),
        _ => Err(Error::config(
            "`encrypt` must be true, false or danger_plaintext",
        )),
    }
}

fn number(name: &str, value: &str) -> Result<u32> {
    value
        .trim()
        .parse()
        .map_err(|_| Error::config(format!("`{name}` must be a whole number")))
}

fn seconds(name: &str, value: &str) -> Result<Duration> {
    value
        .trim()
        .parse::<f64>()
        .ok()
        .filter(|s| s.is_finite() && *s > 0.0 && *s < 1e9)
        .map(Duration::from_secs_f64)
        .ok_or_else(|| Error::config(format!("`{name}` must be a positive number of seconds")))
}

/// Percent-decodes a URL part. `what` names it in errors; the text never
/// appears in one.
fn decode(text: &str, what: &str) -> Result<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| Error::config(format!("bad percent-encoding in the {what}")))?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out)
        .map_err(|_| Error::config(format!("the {what} is not UTF-8 once decoded")))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "Sup3r;Secr=t'pw";

    fn config_error(result: Result<MssqlConfig>) -> String {
        match result {
            Err(Error::Config { message, .. }) => message,
            other => panic!("expected a config error, got {other:?}"),
        }
    }

    #[test]
    fn url_with_every_part() {
        let config = url(
            "mssql://app%40corp:p%40ss%3Aw0rd@db.example:14330/Shop?trust_server_certificate=true\
             &encrypt=false&application_name=api&max_connections=7&connect_timeout=2.5\
             &command_timeout=4&table=app.Keys&migrations=false",
        )
        .unwrap();
        assert_eq!(config.host(), "db.example");
        assert_eq!(config.port(), 14330);
        assert_eq!(config.database(), Some("Shop"));
        assert_eq!(config.user(), Some("app@corp"));
        assert_eq!(config.password.as_ref().unwrap().expose(), "p@ss:w0rd");
        assert!(config.trust_server_certificate());
        assert_eq!(config.encrypt(), Encrypt::LoginOnly);
        assert_eq!(config.application_name.as_deref(), Some("api"));
        assert_eq!(config.max_connections(), 7);
        assert_eq!(config.connect_timeout(), Duration::from_millis(2500));
        assert_eq!(config.operation_timeout(), Duration::from_secs(4));
        assert_eq!(config.table(), "app.Keys");
        assert!(!config.migrations());
    }

    #[test]
    fn url_defaults_and_the_testcontainers_form() {
        let config = url("sqlserver://localhost").unwrap();
        assert_eq!(config.port(), DEFAULT_PORT);
        assert_eq!(config.database(), None);
        assert_eq!(config.user(), None);
        assert_eq!(config.encrypt(), Encrypt::Required);
        assert!(!config.trust_server_certificate());
        assert_eq!(config.table(), "IdempotencyStore");
        assert!(config.migrations());

        let config = url(
            "mssql://sa:yourStrong(!)Password@127.0.0.1:49153/master?trust_server_certificate=true",
        )
        .unwrap();
        assert_eq!(
            config.password.as_ref().unwrap().expose(),
            "yourStrong(!)Password"
        );
        assert_eq!(config.port(), 49153);
    }

    #[test]
    fn bad_urls_are_config_errors_without_the_password() {
        let bad = [
            format!("postgres://sa:{SECRET}@h/db"),
            format!("mssql://sa:{SECRET}@:1433/db"),
            format!("mssql://sa:{SECRET}@h:99999/db"),
            format!("mssql://sa:{SECRET}@h/db/extra"),
            format!("mssql://sa:{SECRET}@h/db?colour=blue"),
            format!("mssql://sa:{SECRET}@h/db?max_connections=many"),
            format!("mssql://sa:{SECRET}@h/db?connect_timeout=-1"),
            format!("mssql://sa:{SECRET}@h/db?encrypt=maybe"),
            format!("mssql://sa:{SECRET}@h/db?table=a;drop"),
            format!("mssql://sa:{SECRET}@h/db?trust_server_certificate=perhaps"),
            format!("mssql://sa:{SECRET}%zz@h/db"),
            format!("mssql://sa:{SECRET}%ff@h/db"),
            "not a url".to_owned(),
        ];
        for text in &bad {
            let message = config_error(url(text));
            assert!(!message.contains("Secr"), "{text}: {message}");
            let shown = format!("{:?} {}", url(text).unwrap_err(), url(text).unwrap_err());
            assert!(!shown.contains("Secr"), "{text}: {shown}");
        }
    }

    #[test]
    fn ado_with_every_keyword() {
        let config = ado(
            " Data Source = tcp:db.example,14330 ; Initial Catalog=Shop; User ID=app;\
             Password=\"a;b=\"\"c\"\"\";Encrypt=True;TrustServerCertificate=yes;\
             Application Name=api;Connect Timeout=3;Command Timeout=8;Max Pool Size=12;\
             Pooling=true;MultipleActiveResultSets=False;Integrated Security=false;",
        )
        .unwrap();
        assert_eq!(config.host(), "db.example");
        assert_eq!(config.port(), 14330);
        assert_eq!(config.database(), Some("Shop"));
        assert_eq!(config.user(), Some("app"));
        assert_eq!(config.password.as_ref().unwrap().expose(), "a;b=\"c\"");
        assert_eq!(config.encrypt(), Encrypt::Required);
        assert!(config.trust_server_certificate());
        assert_eq!(config.application_name.as_deref(), Some("api"));
        assert_eq!(config.connect_timeout(), Duration::from_secs(3));
        assert_eq!(config.operation_timeout(), Duration::from_secs(8));
        assert_eq!(config.max_connections(), 12);
    }

    #[test]
    fn ado_quoting_forms_and_server_forms() {
        let pw = |s: &str| {
            ado(&format!("Server=h;Password={s}"))
                .unwrap()
                .password
                .unwrap()
                .expose()
                .to_owned()
        };
        assert_eq!(pw("'it''s'"), "it's");
        assert_eq!(pw("{x;}}y}"), "x;}y");
        assert_eq!(pw("  plain  "), "plain");
        assert_eq!(pw("'a;b' "), "a;b");

        let host_port = |s: &str| {
            let c = ado(&format!("Server={s}")).unwrap();
            (c.host().to_owned(), c.port())
        };
        assert_eq!(host_port("tcp:h,1"), ("h".into(), 1));
        assert_eq!(host_port("TCP:h"), ("h".into(), 1433));
        assert_eq!(host_port("h\\SQLEXPRESS,1500"), ("h".into(), 1500));
        assert_eq!(host_port("(local)"), ("localhost".into(), 1433));
        assert_eq!(host_port("."), ("localhost".into(), 1433));
        assert_eq!(host_port("127.0.0.1 , 1433"), ("127.0.0.1".into(), 1433));
    }

    #[test]
    fn bad_ado_strings_are_config_errors_without_the_password() {
        let bad = [
            String::new(),
            ";;".to_owned(),
            format!("Database=x;Password={SECRET}"),
            format!("Server=h;Password={SECRET}"),
            format!("Server=h;Password='{SECRET}"),
            "Server=h;Password='Secr' junk;".to_owned(),
            format!("Server=np:h;Password='{SECRET}'"),
            format!("Server=h,port;Password='{SECRET}'"),
            format!("Server=h\\inst;Password='{SECRET}'"),
            format!("Server=h;Password='{SECRET}';Colour=blue"),
            format!("Server=h;Password='{SECRET}';Integrated Security=SSPI"),
            format!("Server=h;Password='{SECRET}';Encrypt=maybe"),
            format!("Server=h;Password='{SECRET}';Connect Timeout=soon"),
            format!("Server=h;Password='{SECRET}';=x"),
            format!("Server=;Password='{SECRET}'"),
            "Server=h;Password=Secret;Secrpart=x".to_owned(),
        ];
        for text in &bad {
            let message = config_error(ado(text));
            assert!(!message.contains("Secr"), "{text}: {message}");
        }
        assert!(config_error(ado("Server=h;Colour=blue")).contains("`colour`"));
    }

    #[test]
    fn parse_picks_url_or_ado() {
        let a = MssqlConfig::parse("mssql://sa:pw@127.0.0.1:1433/db?trust_server_certificate=true")
            .unwrap();
        let b = MssqlConfig::parse(
            "Server=tcp:127.0.0.1,1433;Database=db;User Id=sa;Password=pw;TrustServerCertificate=true",
        )
        .unwrap();
        assert_eq!(a, b);
    }
}
