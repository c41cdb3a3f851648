//! The conformance suite on the in-process moka store.

use std::sync::Arc;

use idem_conformance::{Subject, conformance_tests};
use idem_memory::MemoryStore;

async fn memory() -> Option<Subject> {
    Some(Subject::new("memory", Arc::new(MemoryStore::new())))
}

conformance_tests!(memory);
