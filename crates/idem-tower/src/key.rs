//! Reading the `Idempotency-Key` header.
//!
//! The IETF draft makes the header a structured-field string (`"abc"`, with
//! `\"` and `\\` as the only escapes); Stripe's clients send the key bare
//! (`abc`). Both are accepted. Structured-field parameters (`"abc";p=1`) are
//! not: the header must hold the string alone. A bare key may not contain a
//! comma, which cannot be told apart from two header values joined by a
//! proxy (`a, b`); a quoted key may.

use http::HeaderMap;
use idem_core::{IdempotencyKey, KeyError};

/// The header's name, lower case.
pub const IDEMPOTENCY_KEY: &str = "idempotency-key";

/// Why a header could not be read as a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum KeyParseError {
    /// Two or more `Idempotency-Key` headers.
    Repeated,
    /// A quoted string that does not parse (no closing quote, bad escape,
    /// something after the closing quote).
    BadQuoting(&'static str),
    /// A bare (unquoted) key with a comma: two values joined, or one key?
    CommaInBareKey,
    /// The key itself is rejected (empty, too long, not printable ASCII).
    Invalid(KeyError),
}

impl std::fmt::Display for KeyParseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Repeated => f.write_str("the Idempotency-Key header was sent more than once"),
            Self::BadQuoting(why) => write!(f, "the quoted Idempotency-Key is malformed: {why}"),
            Self::CommaInBareKey => f.write_str(
                "an unquoted Idempotency-Key may not contain a comma (it reads as two header \
                 values); send the key as a quoted string",
            ),
            Self::Invalid(e) => write!(f, "{e}"),
        }
    }
}

/// The key in `headers`, `Ok(None)` when there is no `Idempotency-Key` header.
pub(crate) fn key_from_headers(
    headers: &HeaderMap,
) -> Result<Option<IdempotencyKey>, KeyParseError> {
    let mut values = headers.get_all(IDEMPOTENCY_KEY).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(KeyParseError::Repeated);
    }
    parse_key(value.as_bytes()).map(Some)
}

/// Parses one header value: a structured-field string, or a bare key.
pub(crate) fn parse_key(raw: &[u8]) -> Result<IdempotencyKey, KeyParseError> {
    let value = raw.trim_ascii_matches_space();
    let text = if value.first() == Some(&b'"') {
        unquote(&value[1..])?
    } else if value.contains(&b',') {
        return Err(KeyParseError::CommaInBareKey);
    } else {
        // Bare: every byte must be printable ASCII; IdempotencyKey checks it.
        match std::str::from_utf8(value) {
            Ok(text) => text.to_owned(),
            Err(e) => {
                return Err(KeyParseError::Invalid(KeyError::InvalidCharacter {
                    position: e.valid_up_to(),
                }));
            }
        }
    };
    IdempotencyKey::new(text).map_err(KeyParseError::Invalid)
}

/// The body of a structured-field string after its opening quote.
fn unquote(rest: &[u8]) -> Result<String, KeyParseError> {
    let mut out = String::with_capacity(rest.len());
    let mut bytes = rest.iter().copied().enumerate();
    while let Some((i, b)) = bytes.next() {
        match b {
            b'\\' => match bytes.next() {
                Some((_, c @ (b'"' | b'\\'))) => out.push(c as char),
                _ => {
                    return Err(KeyParseError::BadQuoting(
                        "only \\\" and \\\\ may be escaped",
                    ));
                }
            },
            b'"' => {
                if i + 1 != rest.len() {
                    return Err(KeyParseError::BadQuoting(
                        "nothing may follow the closing quote",
                    ));
                }
                return Ok(out);
            }
            0x20..=0x7e => out.push(b as char),
            _ => {
                return Err(KeyParseError::Invalid(KeyError::InvalidCharacter {
                    position: i + 1,
                }));
            }
        }
    }
    Err(KeyParseError::BadQuoting("no closing quote"))
}

trait TrimSpace {
    fn trim_ascii_matches_space(&self) -> &[u8];
}

impl TrimSpace for [u8] {
    /// Structured-field parsing drops leading and trailing spaces (SP only).
    fn trim_ascii_matches_space(&self) -> &[u8] {
        let start = self.iter().position(|&b| b != b' ').unwrap_or(self.len());
        let end = self
            .iter()
            .rposition(|&b| b != b' ')
            .map_or(start, |i| i + 1);
        &self[start..end]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn ok(raw: &str) -> String {
        parse_key(raw.as_bytes()).unwrap().as_str().to_owned()
    }

    #[test]
    fn bare_and_quoted_keys() {
        assert_eq!(ok("8e03978e-40d5-43e8"), "8e03978e-40d5-43e8");
        assert_eq!(ok("\"8e03978e-40d5-43e8\""), "8e03978e-40d5-43e8");
        assert_eq!(ok("  \"a b\"  "), "a b");
        assert_eq!(ok(r#""say \"hi\" \\o/""#), r#"say "hi" \o/"#);
        assert_eq!(ok("bare\"quote"), "bare\"quote");
        assert_eq!(ok("\"a,b\""), "a,b", "a quoted key may hold a comma");
    }

    #[test]
    fn a_bare_key_with_a_comma_is_refused() {
        for raw in ["a,b", "a, b", "key-1,key-2", ","] {
            assert_eq!(
                parse_key(raw.as_bytes()).unwrap_err(),
                KeyParseError::CommaInBareKey,
                "{raw:?}"
            );
        }
    }

    #[test]
    fn malformed_keys() {
        for raw in [
            "\"open",
            "\"bad \\n escape\"",
            "\"trailing\" x",
            "\"a\";p=1",
            "\"\"",
            "",
            "   ",
        ] {
            assert!(parse_key(raw.as_bytes()).is_err(), "{raw:?} was accepted");
        }
        assert!(parse_key(b"tab\there").is_err());
        assert!(parse_key(b"\"tab\there\"").is_err());
        assert!(parse_key(&[b'a', 0xc3, 0xa9]).is_err());
        assert!(parse_key("k".repeat(256).as_bytes()).is_err());
        assert!(parse_key(format!("\"{}\"", "k".repeat(255)).as_bytes()).is_ok());
    }

    #[test]
    fn repeated_and_absent_headers() {
        let mut headers = HeaderMap::new();
        assert_eq!(key_from_headers(&headers), Ok(None));
        headers.append(IDEMPOTENCY_KEY, HeaderValue::from_static("a"));
        assert!(key_from_headers(&headers).unwrap().is_some());
        headers.append(IDEMPOTENCY_KEY, HeaderValue::from_static("b"));
        assert_eq!(key_from_headers(&headers), Err(KeyParseError::Repeated));
    }
}
