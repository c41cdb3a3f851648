//! `idem-chaos app ...` (an app server) or `idem-chaos run ...` (the driver).

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(about = "Fault injection for idem (see cargo xtask chaos)")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// One app server on the idempotency layer.
    App(idem_chaos::app::AppArgs),
    /// The driver: apps, clients, faults, checker, one CELL line per fault.
    Run(idem_chaos::driver::RunArgs),
}

fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        // The apps' standard error is a log file, which CI prints from.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let result = runtime.block_on(async {
        match Cli::parse().command {
            Command::App(args) => idem_chaos::app::serve(args).await,
            Command::Run(args) => idem_chaos::driver::run(args).await,
        }
    });
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("idem-chaos: {message}");
            std::process::ExitCode::FAILURE
        }
    }
}
