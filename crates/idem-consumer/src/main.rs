//! `idem-consumer`: runs the idempotent JetStream consumer (see the crate's
//! README).

use clap::Parser;
use idem_consumer::{Consumer, Options};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .init();
    let options = Options::parse();
    Consumer::open(options).await?.run().await?;
    Ok(())
}
