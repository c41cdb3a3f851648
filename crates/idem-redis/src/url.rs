//! Parsing a connection URL into a [`Topology`].

use idem_core::{Error, Result, redact_url};
use redis::IntoConnectionInfo;

use crate::Topology;

/// The URL schemes understood, for messages.
const SCHEMES: &str =
    "redis://, rediss://, redis+unix://, unix://, redis+cluster://, rediss+cluster://";

/// Parses `url` (see [`crate::RedisConfig::from_url`] for the forms).
pub(crate) fn parse(url: &str) -> Result<Topology> {
    let Some((scheme, rest)) = url.split_once("://") else {
        return Err(Error::config(format!(
            "`{}` is not a Redis URL; expected one of {SCHEMES}",
            redact_url(url)
        )));
    };
    match scheme.to_ascii_lowercase().as_str() {
        "redis" | "redis+unix" | "unix" => {
            check(url)?;
            Ok(Topology::Standalone {
                url: url.to_owned(),
            })
        }
        "rediss" => {
            require_tls(url)?;
            check(url)?;
            Ok(Topology::Standalone {
                url: url.to_owned(),
            })
        }
        "redis+cluster" => cluster(url, "redis", rest),
        "rediss+cluster" => {
            require_tls(url)?;
            cluster(url, "rediss", rest)
        }
        other => Err(Error::config(format!(
            "unknown Redis URL scheme `{other}://`; expected one of {SCHEMES}"
        ))),
    }
}

/// `redis+cluster://[user:password@]host[:port],host[:port]...[/]`.
fn cluster(url: &str, node_scheme: &str, rest: &str) -> Result<Topology> {
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    if !matches!(tail, "" | "/" | "/0") {
        return Err(Error::config(format!(
            "cluster URL `{}`: nothing may follow the node list but `/` or `/0` \
             (Redis Cluster has only database 0 and no URL options are read)",
            redact_url(url)
        )));
    }
    let (user_info, hosts) = match authority.rfind('@') {
        Some(at) => (&authority[..=at], &authority[at + 1..]),
        None => ("", authority),
    };
    let mut nodes = Vec::new();
    for (index, node) in hosts.split(',').map(str::trim).enumerate() {
        let (host, port) = host_and_port(node).map_err(|what| {
            Error::config(format!(
                "cluster URL `{}`: node {} {what}",
                redact_url(url),
                index + 1
            ))
        })?;
        let node_url = format!("{node_scheme}://{user_info}{host}:{port}");
        check(&node_url)?;
        nodes.push(node_url);
    }
    Ok(Topology::Cluster { nodes })
}

/// Splits `host[:port]` or `[v6]:port`; the port defaults to 6379.
fn host_and_port(node: &str) -> std::result::Result<(&str, u16), &'static str> {
    if node.is_empty() {
        return Err("is empty");
    }
    let (host, port) = if let Some(v6) = node.strip_prefix('[') {
        let close = v6.find(']').ok_or("has an unclosed `[`")?;
        let host = &node[..close + 2];
        match &v6[close + 1..] {
            "" => (host, None),
            rest => (
                host,
                Some(rest.strip_prefix(':').ok_or("has junk after `]`")?),
            ),
        }
    } else {
        match node.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (node, None),
        }
    };
    if host.is_empty() {
        return Err("has no host");
    }
    let port = match port {
        None => 6379,
        Some(p) => match p.parse::<u16>() {
            Ok(p) if p > 0 => p,
            _ => return Err("has a port that is not a number from 1 to 65535"),
        },
    };
    Ok((host, port))
}

/// Lets the redis crate parse the URL, so that what it would refuse is
/// refused here, as a configuration error.
fn check(url: &str) -> Result<()> {
    url.into_connection_info().map(drop).map_err(|e| {
        Error::config(format!(
            "invalid Redis URL `{}`: {}",
            redact_url(url),
            e.detail().unwrap_or("the redis crate cannot parse it")
        ))
    })
}

fn require_tls(url: &str) -> Result<()> {
    if cfg!(feature = "tls") {
        Ok(())
    } else {
        Err(Error::config(format!(
            "`{}` asks for TLS; enable the `tls` feature of idem-redis",
            redact_url(url)
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(url: &str) -> String {
        match parse(url) {
            Err(Error::Config { message, .. }) => message,
            other => panic!("{url}: expected a config error, got {other:?}"),
        }
    }

    #[test]
    fn standalone_urls_are_kept_as_given() {
        for url in [
            "redis://127.0.0.1:6379",
            "redis://:pw@localhost/2",
            "redis+unix:///tmp/r.sock",
        ] {
            assert_eq!(
                parse(url).unwrap(),
                Topology::Standalone { url: url.into() }
            );
        }
    }

    #[test]
    fn cluster_urls_list_every_node_with_the_credentials() {
        let t = parse("redis+cluster://app:s3cret@10.0.0.1:7000,10.0.0.2,[::1]:7002/").unwrap();
        assert_eq!(
            t,
            Topology::Cluster {
                nodes: vec![
                    "redis://app:s3cret@10.0.0.1:7000".into(),
                    "redis://app:s3cret@10.0.0.2:6379".into(),
                    "redis://app:s3cret@[::1]:7002".into(),
                ]
            }
        );
    }

    #[test]
    fn bad_urls_say_what_is_wrong_without_the_password() {
        let cases = [
            ("127.0.0.1:6379", "not a Redis URL"),
            ("http://:s3cret@h", "unknown Redis URL scheme"),
            ("redis+cluster://:s3cret@h1:7000,,h3", "node 2 is empty"),
            (
                "redis+cluster://:s3cret@h1:99999",
                "port that is not a number",
            ),
            ("redis+cluster://:s3cret@h1:7000/3", "only database 0"),
            ("redis+cluster://:s3cret@[::1", "unclosed"),
            ("redis://:s3cret@h1:notaport", "invalid Redis URL"),
        ];
        for (url, expected) in cases {
            let message = message(url);
            assert!(message.contains(expected), "{url}: {message}");
            assert!(!message.contains("s3cret"), "{url}: {message}");
        }
    }

    #[cfg(not(feature = "tls"))]
    #[test]
    fn tls_needs_the_feature() {
        assert!(message("rediss://h:6380").contains("`tls` feature"));
        assert!(message("rediss+cluster://h:7000").contains("`tls` feature"));
    }
}
