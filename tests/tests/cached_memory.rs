//! The conformance suite on a memory tier in front of the memory store.

use std::sync::Arc;

use idem_conformance::{Subject, conformance_tests};
use idem_memory::{CachedStore, MemoryStore, TierConfig};

async fn cached_memory() -> Option<Subject> {
    let store = CachedStore::new(Arc::new(MemoryStore::new()), TierConfig::default());
    Some(Subject::new("cached-memory", Arc::new(store)))
}

conformance_tests!(cached_memory);
