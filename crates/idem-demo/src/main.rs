//! `idem-demo`: the payments API. `idem-demo --help` lists the options.

use std::future::Future;
use std::process::ExitCode;

use clap::Parser;
use idem_demo::{Config, Demo};
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("idem-demo: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .init();
    let config = Config::parse();
    // Before the first line is printed, so a SIGTERM from then on drains.
    let signal = shutdown_signal()?;
    let store_url = idem::redact_url(&config.store_url());
    let demo = Demo::open(config).await?;
    let listener = tokio::net::TcpListener::bind(demo.config().listen).await?;
    let address = listener.local_addr()?;
    let config = demo.config();
    println!("idem-demo: payments API on http://{address}");
    let mode = if demo.is_transactional() {
        "one transaction each"
    } else {
        "lease mode"
    };
    println!(
        "  payments in {}, idempotency records in {store_url} ({mode})",
        config.database.display()
    );
    if config.chaos_drop_rate > 0.0 {
        println!(
            "  chaos: losing {:.0}% of fresh payment responses ({:?})",
            config.chaos_drop_rate * 100.0,
            config.chaos_mode
        );
    }
    println!("Make a payment (run it twice: the second answer is a replay):");
    println!(
        "  curl -i http://{address}/payments -H 'Content-Type: application/json' \
         -H 'Idempotency-Key: {}' \
         -d '{{\"amount\": 99.99, \"currency\": \"EUR\", \"recipient\": \"alice@example.com\"}}'",
        uuid::Uuid::new_v4()
    );
    let metrics = demo.metrics();
    let chaos = demo.chaos().clone();
    let bound = config.drain_timeout;
    let stopped = demo
        .serve_until(listener, async move {
            let name = signal.await;
            println!("idem-demo: {name}; draining (new payments get 503, up to {bound:?})");
        })
        .await;
    if stopped.abandoned > 0 {
        println!(
            "idem-demo: abandoned at the drain timeout: {} payment(s) still running",
            stopped.abandoned
        );
    }
    if !stopped.connections_closed {
        println!("idem-demo: some connections were still open at the drain timeout");
    }
    let m = metrics.snapshot();
    println!(
        "idem-demo: stopped; executed {}, replayed {}, in flight {}, mismatch {}, store errors {}, responses lost by chaos {}, turned away while draining {}",
        m.executed,
        m.replayed,
        m.in_flight,
        m.mismatch,
        m.errors,
        chaos.lost(),
        m.draining
    );
    Ok(())
}

/// Resolves to the signal's name on SIGTERM (`docker stop`, Kubernetes) or
/// SIGINT (Ctrl-C); the handlers are in place when this returns.
#[cfg(unix)]
fn shutdown_signal() -> std::io::Result<impl Future<Output = &'static str>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut terminate = signal(SignalKind::terminate())?;
    let mut interrupt = signal(SignalKind::interrupt())?;
    Ok(async move {
        tokio::select! {
            _ = terminate.recv() => "SIGTERM",
            _ = interrupt.recv() => "SIGINT",
        }
    })
}

/// Resolves on Ctrl-C.
#[cfg(not(unix))]
fn shutdown_signal() -> std::io::Result<impl Future<Output = &'static str>> {
    Ok(async {
        let _ = tokio::signal::ctrl_c().await;
        "Ctrl-C"
    })
}
