//! Keeping passwords out of messages and logs.

/// Returns `url` with the password of its user-info replaced by `***`.
///
/// Works on any `scheme://user:password@host/...` form, and leaves a string
/// without a password as it is. Backends use it for every message and
/// `Debug` output that shows a connection URL.
///
/// # Examples
/// ```
/// use idem_core::redact_url;
/// assert_eq!(
///     redact_url("postgres://app:s3cr3t@127.0.0.1/db"),
///     "postgres://app:***@127.0.0.1/db"
/// );
/// assert_eq!(redact_url("redis://127.0.0.1:6379"), "redis://127.0.0.1:6379");
/// ```
pub fn redact_url(url: &str) -> String {
    let Some(scheme_end) = url.find("://") else {
        return url.to_owned();
    };
    let rest_start = scheme_end + 3;
    let rest = &url[rest_start..];
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    let Some(at) = authority.rfind('@') else {
        return url.to_owned();
    };
    let user_info = &authority[..at];
    let Some(colon) = user_info.find(':') else {
        return url.to_owned();
    };
    let mut out = String::with_capacity(url.len());
    out.push_str(&url[..rest_start]);
    out.push_str(&user_info[..colon]);
    out.push_str(":***");
    out.push_str(&rest[at..]);
    out
}

#[cfg(test)]
mod tests {
    use super::redact_url;

    #[test]
    fn hides_password_and_keeps_the_rest() {
        assert_eq!(
            redact_url("mysql://root:pa:ss@db:3306/test?ssl=true"),
            "mysql://root:***@db:3306/test?ssl=true"
        );
        assert_eq!(
            redact_url("redis://:pw@127.0.0.1/0"),
            "redis://:***@127.0.0.1/0"
        );
        assert_eq!(redact_url("redis://user@host"), "redis://user@host");
        assert_eq!(redact_url("sqlite::memory:"), "sqlite::memory:");
        assert_eq!(redact_url("memory://"), "memory://");
    }
}
