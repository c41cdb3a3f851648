//! idem: not written yet.
