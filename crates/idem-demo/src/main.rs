//! idem-demo: not written yet.
fn main() {}
