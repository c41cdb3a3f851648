//! Test support: where each backend's server comes from.
