//! Counting the statements sqlx executes, from sqlx's own per-statement
//! event (target `sqlx::query`, emitted once for every statement it runs).

use std::sync::{Mutex, Once};

use tracing::field::{Field, Visit};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::{Layer, Registry};

static STATEMENTS: Mutex<Vec<String>> = Mutex::new(Vec::new());

struct Recorder;

#[derive(Default)]
struct Text(String);

impl Visit for Text {
    fn record_str(&mut self, field: &Field, value: &str) {
        if matches!(field.name(), "summary" | "db.statement") {
            self.0.push_str(value);
            self.0.push(' ');
        }
    }
    fn record_debug(&mut self, _: &Field, _: &dyn std::fmt::Debug) {}
}

impl<S: tracing::Subscriber> Layer<S> for Recorder {
    fn on_event(&self, event: &tracing::Event<'_>, _: Context<'_, S>) {
        if event.metadata().target() == "sqlx::query" {
            let mut text = Text::default();
            event.record(&mut text);
            if !text.0.contains(super::COUNTED) {
                return;
            }
            STATEMENTS
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(text.0);
        }
    }
}

/// Installs the recorder as the process's subscriber (once).
pub(crate) fn install() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        tracing::subscriber::set_global_default(Registry::default().with(Recorder))
            .expect("no other global subscriber in this test binary");
    });
}

/// The statements run so far whose text names `table`.
pub(crate) fn on_table(table: &str) -> Vec<String> {
    STATEMENTS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .filter(|s| s.contains(table))
        .cloned()
        .collect()
}
