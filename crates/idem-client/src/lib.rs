//! idem-client: not written yet.
