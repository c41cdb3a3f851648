//! idem-redis: not written yet.
