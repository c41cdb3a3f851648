//! `idem-chaos run`: one backend, each fault in turn (a cell each), one
//! `CELL` line per cell on standard output for `cargo xtask chaos`.
//!
//! A cell: a fresh proxy (when the store can have one) and fresh apps over
//! the shared store, the load started, the fault injected while it is in
//! flight, the load waited on, the apps stopped, the checker run.

mod apps;
mod clients;
mod faults;
mod firewall;
mod store;

use std::collections::HashSet;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::{Duration, Instant};

pub use faults::Fault;
pub use store::Store;

use crate::check::{Report, check};
use crate::proxy::Proxy;
use apps::{AppConfig, Apps};
use clients::Load;

/// The driver's command line.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// The backend: redis, redis-cluster, postgres, mysql or sqlite.
    #[arg(long)]
    pub backend: String,
    /// The store's URL (not for sqlite: a file is made).
    #[arg(long, default_value = "")]
    pub store_url: String,
    /// A container of the store (for pause and restart); repeatable.
    #[arg(long = "container")]
    pub containers: Vec<String>,
    /// A fault to inject (default: every one); repeatable.
    #[arg(long = "fault")]
    pub faults: Vec<String>,
    /// Logical requests per cell.
    #[arg(long, default_value_t = 200)]
    pub keys: usize,
    /// Copies of each sent at once.
    #[arg(long, default_value_t = 3)]
    pub copies: usize,
    /// App processes.
    #[arg(long, default_value_t = 3)]
    pub apps: usize,
    /// Test-only: the apps make one attempt to store a result.
    #[arg(long)]
    pub no_completion_retries: bool,
    /// The self-test: a cell passes when the checker reports violations.
    #[arg(long)]
    pub expect_violations: bool,
    /// The SQL stores' transactional mode: the history is what committed,
    /// and no key may run twice, not even one cut by a kill.
    #[arg(long)]
    pub transactional: bool,
    /// Test-only, with `--transactional`: the claim commits apart.
    #[arg(long)]
    pub split_claim: bool,
}

/// When the fault starts, after the load does.
const FAULT_AT: Duration = Duration::from_millis(800);

/// Runs every cell; fails only when the run itself cannot go on.
///
/// # Errors
/// Bad arguments, or the store cannot be set up.
pub async fn run(args: RunArgs) -> Result<(), String> {
    let faults: Vec<Fault> = if args.faults.is_empty() {
        Fault::ALL.to_vec()
    } else {
        args.faults
            .iter()
            .map(|f| Fault::from_name(f))
            .collect::<Result<_, _>>()?
    };
    let exe = std::env::current_exe().map_err(|e| format!("this binary: {e}"))?;
    let dir = std::env::temp_dir().join(format!(
        "idem-chaos-{}-{}",
        args.backend,
        std::process::id()
    ));
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let url = if args.backend == "sqlite" {
        format!("sqlite://{}", dir.join("chaos.db").display())
    } else if args.store_url.is_empty() {
        return Err(format!("--store-url is needed for {}", args.backend));
    } else {
        args.store_url.clone()
    };
    let store = Store {
        backend: args.backend.clone(),
        url,
        containers: args.containers.clone(),
    };
    let label_suffix = match (
        args.no_completion_retries,
        args.transactional,
        args.split_claim,
    ) {
        (true, _, _) => " (completion retries off)",
        (_, true, true) => " (transactional, claim split)",
        (_, true, false) => " (transactional)",
        _ => "",
    };
    let mut keep = false;
    for fault in faults {
        let label = format!("{}{label_suffix}", fault.name());
        if let Some(reason) = fault.not_applicable(&store) {
            print_cell(&store.backend, &label, "n/a", &Report::default(), &reason);
            continue;
        }
        let started = Instant::now();
        let outcome = cell(&args, &store, fault, &exe, &dir).await;
        let took = format!("{:.1} s", started.elapsed().as_secs_f64());
        match outcome {
            Ok(Done {
                report,
                lost,
                stalled,
            }) => {
                let mut took = format!("{took}, {} completion(s) lost", lost.len());
                if let Some(stalled) = stalled {
                    write!(took, ", store stalled {:.2} s", stalled.as_secs_f64())
                        .expect("writing to a String");
                }
                for v in report.violations.iter().take(5) {
                    eprintln!("  {} x {label}: {v}", store.backend);
                }
                let found = !report.violations.is_empty();
                let verdict = if found == args.expect_violations {
                    "pass"
                } else {
                    "fail"
                };
                if verdict == "fail" {
                    // Why the results were not kept, as the apps logged it.
                    for line in lost.iter().take(3) {
                        eprintln!("  {} x {label}: app log: {line}", store.backend);
                    }
                }
                keep |= verdict == "fail";
                print_cell(&store.backend, &label, verdict, &report, &took);
            }
            Err(e) => {
                keep = true;
                print_cell(&store.backend, &label, "error", &Report::default(), &e);
            }
        }
    }
    if keep {
        // The histories and the apps' logs, to see why.
        eprintln!("  {}: kept {}", store.backend, dir.display());
    } else {
        let _ = std::fs::remove_dir_all(&dir);
    }
    Ok(())
}

/// One tab-separated line: `CELL backend fault verdict keys runs twice
/// violations note`.
fn print_cell(backend: &str, fault: &str, verdict: &str, r: &Report, note: &str) {
    println!(
        "CELL\t{backend}\t{fault}\t{verdict}\t{}\t{}\t{}\t{}\t{}",
        r.keys,
        r.runs,
        r.twice,
        r.violations.len(),
        note.replace(['\t', '\n'], " ")
    );
}

/// What one cell found.
struct Done {
    report: Report,
    /// The apps' log lines about results they could not keep.
    lost: Vec<String>,
    /// How long the store really stalled (the pause fault).
    stalled: Option<Duration>,
}

async fn cell(
    args: &RunArgs,
    store: &Store,
    fault: Fault,
    exe: &std::path::Path,
    dir: &std::path::Path,
) -> Result<Done, String> {
    let history: PathBuf = dir.join(format!("history-{}", fault.name()));
    let _ = std::fs::remove_file(&history);
    let _ = std::fs::remove_file(history.with_extension("log"));
    let proxy = if store.proxied() {
        Some(
            Proxy::start(store.upstream().await?)
                .await
                .map_err(|e| format!("the proxy: {e}"))?,
        )
    } else {
        None
    };
    let store_url = match &proxy {
        Some(proxy) => store.via(proxy.addr())?,
        None => store.url.clone(),
    };
    let config = AppConfig {
        exe: exe.to_owned(),
        store_url,
        history: history.clone(),
        lease: fault.lease(),
        no_completion_retries: args.no_completion_retries,
        transactional: args.transactional,
        split_claim: args.split_claim,
        short_handlers: args.transactional && store.backend == "sqlite",
    };
    let mut apps = Apps::start(config, args.apps).await?;
    let load = Load {
        keys: args.keys,
        copies: args.copies,
        spread: Duration::from_millis(2500),
        deadline: Duration::from_secs(30),
    };
    let prefix = format!(
        "{}-{}-{}",
        fault.name(),
        std::process::id(),
        rand::random::<u32>()
    );
    let sending = tokio::spawn(clients::send(apps.ports().to_vec(), load, prefix));
    tokio::time::sleep(FAULT_AT).await;
    let injected = fault.inject(&mut apps, store, proxy.as_ref()).await;
    let (keys, answers) = sending.await.map_err(|e| format!("the clients: {e}"))?;
    // In the transactional mode the history is in the database: what
    // committed. A run cut by a kill left nothing, so none is excused.
    let committed = if args.transactional {
        Some(committed_history(apps.ports()).await)
    } else {
        None
    };
    let stopped = apps.stop().await;
    let injected = injected?;
    stopped?;
    let (text, excused) = match committed {
        Some(text) => (text?, HashSet::new()),
        None => (
            std::fs::read_to_string(&history).map_err(|e| format!("the history: {e}"))?,
            apps.killed().clone(),
        ),
    };
    let events = crate::history::parse(&text)?;
    // The apps log each result they could not keep as `completion_lost`.
    let log = std::fs::read_to_string(apps.log_path()).unwrap_or_default();
    let lost = log
        .lines()
        .filter(|line| line.contains("completion_lost"))
        .map(str::to_owned)
        .collect();
    if std::env::var_os("IDEM_CHAOS_APP_LOG").is_some() {
        eprintln!("{log}");
    }
    Ok(Done {
        report: check(&keys, &events, &answers, &excused),
        lost,
        stalled: injected,
    })
}

/// The history the transactional apps committed, from the first that
/// answers.
async fn committed_history(ports: &[u16]) -> Result<String, String> {
    let client = reqwest::Client::new();
    let mut last = String::from("no app");
    for port in ports {
        let url = format!("http://127.0.0.1:{port}/history");
        match client.get(&url).send().await {
            Ok(response) if response.status().is_success() => {
                return response.text().await.map_err(|e| format!("{url}: {e}"));
            }
            Ok(response) => last = format!("{url}: {}", response.status()),
            Err(e) => last = format!("{url}: {e}"),
        }
    }
    Err(format!("the committed history: {last}"))
}
