//! The `idem` command; see the crate's README.

use std::process::ExitCode;

use clap::Parser;

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    // Bad arguments: clap prints the usage and exits with 2 (`exit::USAGE`).
    let cli = idem_cli::Cli::parse();
    let code = idem_cli::run(cli, &mut std::io::stdout().lock(), &mut std::io::stderr()).await;
    ExitCode::from(code)
}
