//! The checkout page: `GET /` serves a small payment form (plain HTML, CSS
//! and JavaScript in the binary, no build step) that tells the double-click
//! story. It sends one `Idempotency-Key` per payment on every press, shows
//! each answer as fresh, replayed, in flight or refused, and lists the
//! payments made.

pub mod options;

use axum::Router;
use axum::http::header::{self, HeaderName};
use axum::response::IntoResponse;
use axum::routing::get;

/// The page, from `crates/idem-demo/page/`.
const INDEX_HTML: &str = include_str!("../../page/index.html");
/// Its style sheet.
const STYLE_CSS: &str = include_str!("../../page/style.css");
/// Its script.
const APP_JS: &str = include_str!("../../page/app.js");

/// Everything the page loads comes from the demo itself.
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; \
     img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// `GET /`, `GET /style.css` and `GET /app.js`.
///
/// # Examples
/// ```
/// let app: axum::Router = idem_demo::page::router();
/// ```
pub fn router<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route(
            "/",
            get(|| async { asset("text/html; charset=utf-8", INDEX_HTML) }),
        )
        .route(
            "/style.css",
            get(|| async { asset("text/css; charset=utf-8", STYLE_CSS) }),
        )
        .route(
            "/app.js",
            get(|| async { asset("text/javascript; charset=utf-8", APP_JS) }),
        )
}

fn asset(content_type: &'static str, body: &'static str) -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-cache"),
            (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
            (HeaderName::from_static("x-content-type-options"), "nosniff"),
        ],
        body,
    )
}
