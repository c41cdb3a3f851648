//! The per-request options of `POST /payments`, for the checkout page's
//! switches: `?slow=3` holds that payment's response 3 seconds, `?lose=true`
//! loses its fresh response (the chaos option, for one request).
//!
//! They are in the query, which the request fingerprint covers (method,
//! path and query, body): every retry of one payment must send the same
//! options, and the same key with other options is `422`.

use std::fmt;
use std::time::Duration;

use axum::extract::Request;
use axum::http::{Method, StatusCode, Uri};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::problem::Problem;

/// The longest `slow` accepted, in seconds.
pub const MAX_SLOW_SECS: u64 = 10;

/// What one request asked for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Options {
    /// How long to hold the response before the payment is made.
    pub slow: Duration,
    /// Whether to lose the fresh response once the payment is made and stored.
    pub lose: bool,
}

/// Why a query's options are refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OptionError {
    /// `slow` is not a whole number of seconds from 0 to [`MAX_SLOW_SECS`].
    Slow(String),
    /// `lose` is not `true` or `false`.
    Lose(String),
    /// The option was given twice.
    Repeated(&'static str),
}

impl fmt::Display for OptionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Slow(value) => write!(
                f,
                "`slow={value}`: slow is a whole number of seconds from 0 to {MAX_SLOW_SECS}"
            ),
            Self::Lose(value) => write!(f, "`lose={value}`: lose is `true` or `false`"),
            Self::Repeated(name) => write!(f, "`{name}` is given more than once"),
        }
    }
}

impl std::error::Error for OptionError {}

impl Options {
    /// Reads the options from a query string; other parameters are ignored.
    ///
    /// # Examples
    /// ```
    /// use std::time::Duration;
    /// use idem_demo::page::options::Options;
    ///
    /// let options = Options::from_query(Some("slow=3&lose=true")).unwrap();
    /// assert_eq!(options.slow, Duration::from_secs(3));
    /// assert!(options.lose);
    /// assert_eq!(Options::from_query(None).unwrap(), Options::default());
    /// assert!(Options::from_query(Some("slow=3600")).is_err());
    /// ```
    pub fn from_query(query: Option<&str>) -> Result<Self, OptionError> {
        let mut slow = None;
        let mut lose = None;
        for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            match name {
                "slow" => set(&mut slow, "slow", parse_slow(value)?)?,
                "lose" => set(&mut lose, "lose", parse_lose(value)?)?,
                _ => {}
            }
        }
        Ok(Self {
            slow: slow.unwrap_or_default(),
            lose: lose.unwrap_or_default(),
        })
    }

    /// Whether `uri` asks for its fresh response to be lost (and its
    /// options are valid: a refused request loses nothing).
    pub fn lose_requested(uri: &Uri) -> bool {
        Self::from_query(uri.query()).is_ok_and(|options| options.lose)
    }
}

fn set<T>(slot: &mut Option<T>, name: &'static str, value: T) -> Result<(), OptionError> {
    if slot.replace(value).is_some() {
        return Err(OptionError::Repeated(name));
    }
    Ok(())
}

fn parse_slow(value: &str) -> Result<Duration, OptionError> {
    let refused = || OptionError::Slow(value.chars().take(32).collect());
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(refused());
    }
    match value.parse::<u64>() {
        Ok(secs) if secs <= MAX_SLOW_SECS => Ok(Duration::from_secs(secs)),
        _ => Err(refused()),
    }
}

fn parse_lose(value: &str) -> Result<bool, OptionError> {
    match value {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(OptionError::Lose(value.chars().take(32).collect())),
    }
}

/// Middleware on `POST /payments`, inside the idempotency layer: refuses bad
/// options with `400` problem+json, and holds the request `slow` seconds
/// while its key is claimed, so a duplicate meets it in flight.
pub async fn apply(request: Request, next: Next) -> Response {
    if request.method() != Method::POST {
        return next.run(request).await;
    }
    match Options::from_query(request.uri().query()) {
        Ok(options) => {
            if !options.slow.is_zero() {
                tokio::time::sleep(options.slow).await;
            }
            next.run(request).await
        }
        Err(error) => Problem::new(
            StatusCode::BAD_REQUEST,
            "invalid-option",
            "A payment option is invalid",
            error.to_string(),
        )
        .into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_are_read_and_bounded() {
        let read = |q| Options::from_query(Some(q));
        assert_eq!(read("").unwrap(), Options::default());
        assert_eq!(read("slow=0").unwrap().slow, Duration::ZERO);
        assert_eq!(read("slow=10").unwrap().slow, Duration::from_secs(10));
        assert_eq!(read("x=1&lose=false").unwrap(), Options::default());
        assert!(read("lose=true&other").unwrap().lose);
        for bad in [
            "slow=11",
            "slow=-1",
            "slow=1.5",
            "slow=",
            "slow",
            "slow=+3",
            "slow=99999999999999999999999",
        ] {
            assert!(matches!(read(bad), Err(OptionError::Slow(_))), "{bad}");
        }
        for bad in ["lose=1", "lose=", "lose=TRUE"] {
            assert!(matches!(read(bad), Err(OptionError::Lose(_))), "{bad}");
        }
        assert_eq!(
            read("slow=1&slow=1"),
            Err(OptionError::Repeated("slow")),
            "one value per option"
        );
    }

    #[test]
    fn only_valid_queries_lose_responses() {
        let lose = |uri: &str| Options::lose_requested(&uri.parse().unwrap());
        assert!(lose("/payments?lose=true"));
        assert!(lose("/payments?slow=2&lose=true"));
        assert!(!lose("/payments"));
        assert!(!lose("/payments?lose=false"));
        assert!(!lose("/payments?lose=true&slow=99"));
    }

    #[test]
    fn refusals_name_the_option() {
        let error = Options::from_query(Some("slow=3600")).unwrap_err();
        assert!(error.to_string().contains("0 to 10"), "{error}");
    }
}
