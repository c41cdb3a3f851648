//! The history every app process appends to: one line per handler event.
//!
//! `start <key> <run>` when a handler begins, `end <key> <run>` when it has
//! done its work (before its response leaves). Processes share one file,
//! opened with `O_APPEND`, and each line is one `write`, so lines from
//! concurrent processes never interleave.

use std::fs::{File, OpenOptions};
use std::io::{self, Write as _};
use std::path::Path;

/// What a history line says happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// A handler began.
    Start,
    /// A handler finished its work.
    End,
}

/// One history line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// Start or end.
    pub step: Step,
    /// The client's idempotency key.
    pub key: String,
    /// The run: `<process>-<n>`, where the process is `a<i>.<incarnation>`.
    pub run: String,
}

impl Event {
    /// The process that ran it (the run id up to its last `-`).
    pub fn process(&self) -> &str {
        process_of(&self.run)
    }
}

/// The process part of a run id (`a0.1-17` → `a0.1`).
pub fn process_of(run: &str) -> &str {
    run.rsplit_once('-').map_or(run, |(process, _)| process)
}

/// The appending side, shared by one process's handlers.
#[derive(Debug)]
pub struct Writer {
    file: File,
}

impl Writer {
    /// Opens `path` for appending, creating it.
    ///
    /// # Errors
    /// When the file cannot be opened.
    pub fn open(path: &Path) -> io::Result<Self> {
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        Ok(Self { file })
    }

    /// Appends one line, in one `write`.
    ///
    /// # Errors
    /// When the write fails or is short.
    pub fn append(&self, step: Step, key: &str, run: &str) -> io::Result<()> {
        let word = match step {
            Step::Start => "start",
            Step::End => "end",
        };
        let line = format!("{word} {key} {run}\n");
        let written = (&self.file).write(line.as_bytes())?;
        if written == line.len() {
            Ok(())
        } else {
            Err(io::Error::other("short write to the history"))
        }
    }
}

/// Parses a whole history; a line that cannot be read is an error.
///
/// # Errors
/// The first line that is not `start|end <key> <run>`.
pub fn parse(text: &str) -> Result<Vec<Event>, String> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let mut words = line.split(' ');
            let step = match words.next() {
                Some("start") => Step::Start,
                Some("end") => Step::End,
                _ => return Err(format!("bad history line `{line}`")),
            };
            match (words.next(), words.next(), words.next()) {
                (Some(key), Some(run), None) => Ok(Event {
                    step,
                    key: key.to_owned(),
                    run: run.to_owned(),
                }),
                _ => Err(format!("bad history line `{line}`")),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_round_trip_through_a_file() {
        let dir = std::env::temp_dir().join(format!("idem-chaos-history-{}", std::process::id()));
        let writer = Writer::open(&dir).unwrap();
        writer.append(Step::Start, "k1", "a0.0-1").unwrap();
        writer.append(Step::End, "k1", "a0.0-1").unwrap();
        let events = parse(&std::fs::read_to_string(&dir).unwrap()).unwrap();
        let _ = std::fs::remove_file(&dir);
        assert_eq!(events.len(), 2);
        assert_eq!(events[1].step, Step::End);
        assert_eq!(events[1].process(), "a0.0");
        assert!(parse("begin k r").is_err());
    }
}
