//! The servers the tests need, owned by this process for the whole run.
//!
//! A server kind whose `IDEM_TEST_<KIND>_URL` is set comes from there. Else
//! one container per kind is started with testcontainers, before any test
//! binary runs, and every test process of the run reaches it through the URL
//! variable that [`Servers::env`] passes on. The containers belong to the
//! [`Servers`] value: dropping it removes them (a normal end and a failed
//! one), and testcontainers' watchdog removes them on SIGINT, SIGTERM and
//! SIGQUIT. Each carries the label [`LABEL`], and [`RUN_LABEL`] with this
//! process's id, so a leak can be counted (`xtask/tests/no_leaks.rs` does).
//!
//! The images are the official ones unless `IDEM_TEST_<KIND>_IMAGE` names
//! another (`name:tag`), such as the local ones `cargo xtask images` builds
//! on machines that reach no registry; such an image is waited on through a
//! health check rather than the official image's log lines. With
//! `IDEM_TEST_NO_PULL` set, an image that is not already local is never
//! pulled: that server is not started, and its backend is SKIPPED.

use std::any::Any;
use std::io::Read as _;
use std::os::unix::net::UnixStream;
use std::time::Duration;

mod cluster;

use testcontainers::core::wait::HealthWaitStrategy;
use testcontainers::core::{Healthcheck, IntoContainerPort, WaitFor};
use testcontainers::runners::SyncRunner;
use testcontainers::{ContainerRequest, Image, ImageExt};
use testcontainers_modules::{
    mssql_server::MssqlServer, mysql::Mysql, postgres::Postgres, redis::Redis,
};

/// The label (key and value) on every container this process starts.
pub(crate) const LABEL: (&str, &str) = ("org.idem.owner", "xtask");

/// A second label whose value is this process's id, so one run's
/// containers can be told from another's.
pub(crate) const RUN_LABEL: &str = "org.idem.run";

/// A kind of server the tests need.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Kind {
    Redis,
    /// Three Redis masters on a private Docker network, as one cluster.
    RedisCluster,
    Postgres,
    Mysql,
    Mssql,
}

impl Kind {
    pub(crate) const ALL: [Kind; 5] = [
        Kind::Redis,
        Kind::RedisCluster,
        Kind::Postgres,
        Kind::Mysql,
        Kind::Mssql,
    ];

    pub(crate) fn name(self) -> &'static str {
        match self {
            Kind::Redis => "redis",
            Kind::RedisCluster => "redis-cluster",
            Kind::Postgres => "postgres",
            Kind::Mysql => "mysql",
            Kind::Mssql => "mssql",
        }
    }

    pub(crate) fn from_name(name: &str) -> Result<Kind, String> {
        Kind::ALL
            .into_iter()
            .find(|k| k.name() == name)
            .ok_or_else(|| {
                let known: Vec<_> = Kind::ALL.iter().map(|k| k.name()).collect();
                format!("no server kind `{name}`; known: {}", known.join(", "))
            })
    }

    /// The variable that names a running server (and that the tests read).
    pub(crate) fn url_var(self) -> &'static str {
        match self {
            Kind::Redis => "IDEM_TEST_REDIS_URL",
            Kind::RedisCluster => "IDEM_TEST_REDIS_CLUSTER_URL",
            Kind::Postgres => "IDEM_TEST_POSTGRES_URL",
            Kind::Mysql => "IDEM_TEST_MYSQL_URL",
            Kind::Mssql => "IDEM_TEST_MSSQL_URL",
        }
    }

    /// The variable that replaces the official image (the cluster's nodes
    /// are Redis servers: the same image).
    pub(crate) fn image_var(self) -> &'static str {
        match self {
            Kind::Redis | Kind::RedisCluster => "IDEM_TEST_REDIS_IMAGE",
            Kind::Postgres => "IDEM_TEST_POSTGRES_IMAGE",
            Kind::Mysql => "IDEM_TEST_MYSQL_IMAGE",
            Kind::Mssql => "IDEM_TEST_MSSQL_IMAGE",
        }
    }

    /// The official image and tag.
    fn official(self) -> (&'static str, &'static str) {
        match self {
            Kind::Redis | Kind::RedisCluster => ("redis", "7.2"),
            Kind::Postgres => ("postgres", "16-alpine"),
            Kind::Mysql => ("mysql", "8.4"),
            Kind::Mssql => ("mcr.microsoft.com/mssql/server", "2022-latest"),
        }
    }

    fn port(self) -> u16 {
        match self {
            Kind::Redis | Kind::RedisCluster => 6379,
            Kind::Postgres => 5432,
            Kind::Mysql => 3306,
            Kind::Mssql => 1433,
        }
    }

    /// The health check an image given by [`Kind::image_var`] is waited on
    /// with (it works on the official images too).
    fn health_check(self) -> Healthcheck {
        let test = match self {
            Kind::Redis | Kind::RedisCluster => "redis-cli ping | grep -q PONG",
            Kind::Postgres => "pg_isready -q -h 127.0.0.1 -p 5432",
            Kind::Mysql => {
                "mariadb-admin ping -h 127.0.0.1 --silent || mysqladmin ping -h 127.0.0.1 --silent"
            }
            Kind::Mssql => {
                "/opt/mssql-tools18/bin/sqlcmd -C -S localhost -U sa -P \"$MSSQL_SA_PASSWORD\" -Q 'SELECT 1' -b -o /dev/null"
            }
        };
        Healthcheck::cmd_shell(test)
            .with_interval(Duration::from_millis(500))
            .with_timeout(Duration::from_secs(5))
            .with_retries(240)
    }

    /// The URL of this kind's server on a loopback `port`, with the
    /// credentials the images are started with (the cluster's URL names
    /// its nodes instead: see [`cluster`]).
    fn url(self, port: u16) -> String {
        match self {
            Kind::Redis | Kind::RedisCluster => format!("redis://127.0.0.1:{port}"),
            Kind::Postgres => format!("postgres://postgres:postgres@127.0.0.1:{port}/postgres"),
            Kind::Mysql => format!("mysql://root@127.0.0.1:{port}/test"),
            Kind::Mssql => format!(
                "mssql://sa:{}@127.0.0.1:{port}/master?trust_server_certificate=true",
                MssqlServer::DEFAULT_SA_PASSWORD
            ),
        }
    }
}

/// One kind's server: where it is, where it came from, and the container
/// that keeps it alive (if this process started one).
struct Server {
    url: String,
    source: String,
    /// The ids of its containers (none for an env URL), for the faults of
    /// `cargo xtask chaos` (pause, restart).
    ids: Vec<String>,
    _container: Option<Box<dyn Any + Send>>,
}

/// The servers of one run, by kind: each one ready, or the reason it is not.
pub(crate) struct Servers {
    servers: Vec<(Kind, Result<Server, String>)>,
}

impl Servers {
    /// Makes each of `kinds` available: from its URL variable, else in a
    /// container (all started at once). A kind that cannot be had keeps the
    /// reason; the backends that need it are reported as skipped.
    pub(crate) fn start(kinds: &[Kind]) -> Servers {
        let engine = docker_engine();
        let servers = std::thread::scope(|scope| {
            let handles: Vec<_> = kinds
                .iter()
                .map(|&kind| {
                    let engine = engine.as_deref();
                    (kind, scope.spawn(move || provide(kind, engine)))
                })
                .collect();
            handles
                .into_iter()
                .map(|(kind, handle)| {
                    let server = handle
                        .join()
                        .unwrap_or_else(|_| Err("starting its container panicked".into()));
                    (kind, server)
                })
                .collect()
        });
        Servers { servers }
    }

    /// Where `kind`'s server comes from, for the table, or why there is none.
    pub(crate) fn source(&self, kind: Kind) -> Result<String, String> {
        match self.servers.iter().find(|(k, _)| *k == kind) {
            Some((_, Ok(server))) => Ok(server.source.clone()),
            Some((_, Err(reason))) => Err(reason.clone()),
            None => Err(format!("{} was not started for this run", kind.name())),
        }
    }

    /// The URL of `kind`'s server and the ids of its containers (none when
    /// it came from an env URL), or why there is none.
    pub(crate) fn server(&self, kind: Kind) -> Result<(String, Vec<String>), String> {
        match self.servers.iter().find(|(k, _)| *k == kind) {
            Some((_, Ok(server))) => Ok((server.url.clone(), server.ids.clone())),
            Some((_, Err(reason))) => Err(reason.clone()),
            None => Err(format!("{} was not started for this run", kind.name())),
        }
    }

    /// The URL variables for the test processes of this run.
    pub(crate) fn env(&self) -> Vec<(&'static str, String)> {
        self.servers
            .iter()
            .filter_map(|(kind, server)| {
                server
                    .as_ref()
                    .ok()
                    .map(|s| (kind.url_var(), s.url.clone()))
            })
            .collect()
    }

    /// How many containers this value owns.
    fn containers(&self) -> usize {
        self.servers
            .iter()
            .filter(|(_, s)| s.as_ref().is_ok_and(|s| s._container.is_some()))
            .count()
    }
}

impl Drop for Servers {
    fn drop(&mut self) {
        let n = self.containers();
        if n > 0 {
            eprintln!("\n==> removing the containers of {n} test server(s)");
        }
    }
}

fn provide(kind: Kind, engine: Option<&str>) -> Result<Server, String> {
    let var = kind.url_var();
    if let Some(url) = std::env::var(var).ok().filter(|v| !v.trim().is_empty()) {
        return Ok(Server {
            url,
            source: format!("env URL ({var})"),
            ids: Vec::new(),
            _container: None,
        });
    }
    let Some(engine) = engine else {
        return Err(format!(
            "{var} is not set and no Docker engine is reachable"
        ));
    };
    let image = image(kind);
    if std::env::var_os(NO_PULL).is_some() && !image_is_local(&image) {
        return Err(format!(
            "{var} is not set and {image} is not on this machine ({NO_PULL} is set: \
             no registry is asked for it)"
        ));
    }
    eprintln!(
        "==> starting {} in a container ({image}, engine {engine})",
        kind.name()
    );
    if kind == Kind::RedisCluster {
        let (nodes, ids, url) = cluster::start(&image)
            .map_err(|e| format!("{var} is not set and the cluster could not be started: {e}"))?;
        return Ok(Server {
            url,
            source: format!("testcontainers (3 x {image})"),
            ids,
            _container: Some(nodes),
        });
    }
    let (container, id, port) = match kind {
        Kind::Redis | Kind::RedisCluster => start_container(kind, Redis::default().into()),
        Kind::Postgres => start_container(kind, Postgres::default().into()),
        Kind::Mysql => start_container(kind, Mysql::default().into()),
        Kind::Mssql => start_container(kind, MssqlServer::default().with_accept_eula().into()),
    }
    .map_err(|e| format!("{var} is not set and {image} could not be started: {e}"))?;
    Ok(Server {
        url: kind.url(port),
        source: format!("testcontainers ({image})"),
        ids: vec![id],
        _container: Some(container),
    })
}

/// Set (to anything) on machines that must not reach a registry: a server
/// whose image is not already local is then not started (its backend is
/// SKIPPED, with the reason) rather than pulled.
const NO_PULL: &str = "IDEM_TEST_NO_PULL";

/// Whether the Docker engine has `image` already.
fn image_is_local(image: &str) -> bool {
    std::process::Command::new("docker")
        .args(["image", "inspect", "--format", "{{.Id}}", image])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// The image for `kind`: the override, else the official one.
fn image(kind: Kind) -> String {
    std::env::var(kind.image_var())
        .ok()
        .filter(|v| !v.trim().is_empty())
        .unwrap_or_else(|| {
            let (name, tag) = kind.official();
            format!("{name}:{tag}")
        })
}

/// Starts one container and returns it with its id and loopback port.
fn start_container<I: Image + 'static>(
    kind: Kind,
    request: ContainerRequest<I>,
) -> Result<(Box<dyn Any + Send>, String, u16), String> {
    let container = prepare(kind, request).start().map_err(|e| e.to_string())?;
    let port = container
        .get_host_port_ipv4(kind.port().tcp())
        .map_err(|e| format!("the container started but its port is unknown: {e}"))?;
    let id = container.id().to_owned();
    Ok((Box::new(container), id, port))
}

/// The image (official, or the override and its health check), the labels
/// and the start-up bound of a `kind` container.
fn prepare<I: Image>(kind: Kind, request: ContainerRequest<I>) -> ContainerRequest<I> {
    let (name, tag) = kind.official();
    let request = request
        .with_name(name)
        .with_tag(tag)
        .with_label(LABEL.0, LABEL.1)
        .with_label(RUN_LABEL, std::process::id().to_string())
        .with_startup_timeout(Duration::from_secs(180));
    let Ok(image) = std::env::var(kind.image_var()) else {
        return request;
    };
    let (name, tag) = image
        .rsplit_once(':')
        .filter(|(_, tag)| !tag.contains('/'))
        .unwrap_or((&image, "latest"));
    request
        .with_name(name)
        .with_tag(tag)
        .with_health_check(kind.health_check())
        .with_ready_conditions(vec![WaitFor::Healthcheck(HealthWaitStrategy::default())])
}

/// The Docker engine testcontainers would use, if one answers.
pub(crate) fn docker_engine() -> Option<String> {
    match std::env::var("DOCKER_HOST") {
        Ok(host) if host.starts_with("tcp://") => {
            let addr = host.trim_start_matches("tcp://").trim_end_matches('/');
            std::net::TcpStream::connect(addr)
                .ok()
                .map(|_| host.clone())
        }
        Ok(host) if host.starts_with("unix://") => {
            let path = host.trim_start_matches("unix://");
            UnixStream::connect(path).ok().map(|_| host.clone())
        }
        _ => {
            let path = "/var/run/docker.sock";
            UnixStream::connect(path)
                .ok()
                .map(|_| format!("unix://{path}"))
        }
    }
}

/// `cargo xtask servers [KIND ...]`: starts the servers (default: redis,
/// redis-cluster, postgres, mysql), prints `export` lines for their URLs, and holds them
/// until standard input closes or the process is interrupted.
pub(crate) fn run(args: &[String]) -> Result<(), String> {
    let kinds: Vec<Kind> = if args.is_empty() {
        vec![Kind::Redis, Kind::RedisCluster, Kind::Postgres, Kind::Mysql]
    } else {
        args.iter()
            .map(|a| Kind::from_name(a))
            .collect::<Result<_, _>>()?
    };
    let servers = Servers::start(&kinds);
    for kind in &kinds {
        if let Err(reason) = servers.source(*kind) {
            return Err(format!("{}: {reason}", kind.name()));
        }
    }
    for (var, url) in servers.env() {
        println!("export {var}='{url}'");
    }
    println!("# ready: close standard input (Ctrl-D) or press Ctrl-C to remove them");
    // Blocks until EOF; the bytes themselves do not matter.
    let _ = std::io::stdin().lock().read_to_end(&mut Vec::new());
    drop(servers);
    Ok(())
}
