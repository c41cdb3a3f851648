//! `idem-demo`: the payments API. `idem-demo --help` lists the options.

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
    let store_url = idem::redact_url(&config.store_url());
    let demo = Demo::open(config).await?;
    let listener = tokio::net::TcpListener::bind(demo.config().listen).await?;
    let address = listener.local_addr()?;
    let config = demo.config();
    println!("idem-demo: payments API on http://{address}");
    println!(
        "  payments in {}, idempotency records in {store_url}",
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
    tokio::select! {
        () = demo.serve(listener) => {}
        _ = tokio::signal::ctrl_c() => {
            let m = metrics.snapshot();
            println!(
                "idem-demo: stopped; executed {}, replayed {}, in flight {}, mismatch {}, store errors {}, responses lost by chaos {}",
                m.executed, m.replayed, m.in_flight, m.mismatch, m.errors, chaos.lost()
            );
        }
    }
    Ok(())
}
