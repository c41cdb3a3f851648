//! Running a parsed command line: output on stdout, in text or JSON.

use std::io::Write;

use serde::Serialize;
use serde_json::json;

use crate::{Cli, CliError, Command, Result, Target, check, delete, get, purge, settings, stats};

/// Runs `cli`, writing what it found to `out`; returns the exit code
/// ([`crate::exit`]). A failure is written to `err`, as text or, with
/// `--json`, as `{"error": {"kind": ..., "message": ..., "exit_code": ...}}`.
pub async fn run(cli: Cli, out: &mut dyn Write, err: &mut dyn Write) -> u8 {
    let json = cli.json;
    match execute(cli, out).await {
        Ok(()) => crate::exit::OK,
        Err(failure) => {
            let code = failure.exit_code();
            let message = failure.chain();
            let _ = if json {
                let doc = json!({"error": {"kind": failure.kind(), "message": message, "exit_code": code}});
                writeln!(err, "{doc}")
            } else {
                writeln!(err, "idem: {message}")
            };
            code
        }
    }
}

async fn execute(cli: Cli, out: &mut dyn Write) -> Result<()> {
    let config = settings(cli.config.as_deref(), cli.store_url.as_deref())?;
    let json = cli.json;
    match cli.command {
        Command::Purge => emit(out, json, &purge(&config).await?),
        Command::Get { at, body } => {
            let target = Target::connect(config).await?;
            let record = get(&target, &at.scope, &at.key).await?;
            if body && json {
                let mut doc = serde_json::to_value(&record).map_err(io)?;
                doc["body"] = match std::str::from_utf8(&record.body) {
                    Ok(text) => json!(text),
                    Err(_) => json!({ "hex": hex::encode(&record.body) }),
                };
                emit(out, true, &doc)
            } else if body {
                out.write_all(&record.body).map_err(CliError::Output)
            } else {
                emit(out, json, &record)
            }
        }
        Command::Delete { at } => {
            let target = Target::connect(config).await?;
            emit(out, json, &delete(&target, &at.scope, &at.key).await?)
        }
        Command::Check => emit(out, json, &check(&Target::connect(config).await?).await?),
        Command::Stats => emit(out, json, &stats(&Target::connect(config).await?).await?),
    }
}

fn emit<T: Serialize + std::fmt::Display>(
    out: &mut dyn Write,
    json: bool,
    value: &T,
) -> Result<()> {
    if json {
        serde_json::to_writer_pretty(&mut *out, value).map_err(io)?;
    } else {
        write!(out, "{value}").map_err(CliError::Output)?;
    }
    writeln!(out).map_err(CliError::Output)
}

fn io(e: serde_json::Error) -> CliError {
    CliError::Output(e.into())
}
