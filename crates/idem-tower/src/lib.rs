//! idem-tower: not written yet.
