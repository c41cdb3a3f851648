//! Skipping a backend whose server is missing, loudly.

use std::io::Write;

/// Whether `backend` must run here: it is named in `IDEM_REQUIRE`
/// (comma- or space-separated, `all` for every backend).
///
/// # Examples
/// ```
/// // With IDEM_REQUIRE unset, nothing is required.
/// # unsafe { std::env::remove_var("IDEM_REQUIRE") };
/// assert!(!idem_conformance::is_required("redis"));
/// ```
pub fn is_required(backend: &str) -> bool {
    std::env::var("IDEM_REQUIRE")
        .map(|list| {
            list.split([',', ' '])
                .any(|name| name.trim() == backend || name.trim() == "all")
        })
        .unwrap_or(false)
}

/// Reports that `backend` cannot run, and why, then returns `None` so a case
/// can stop. The report goes straight to the terminal (test capture does not
/// hide it). If the backend is required ([`is_required`]), it panics instead:
/// a required backend never passes by skipping.
///
/// # Examples
/// ```
/// # unsafe { std::env::remove_var("IDEM_REQUIRE") };
/// let skipped: Option<()> = idem_conformance::skip("redis", "IDEM_TEST_REDIS_URL is not set");
/// assert!(skipped.is_none());
/// ```
pub fn skip<T>(backend: &str, reason: &str) -> Option<T> {
    if is_required(backend) {
        panic!("{backend} is required (IDEM_REQUIRE) but cannot run: {reason}");
    }
    let _ = writeln!(
        std::io::stderr(),
        "\n*** SKIPPED {backend}: {reason} (this case did NOT run) ***"
    );
    None
}
