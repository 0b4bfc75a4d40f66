//! The web app, served at `/` from the binary itself: `ui/dist`, the UI's build, embedded at
//! compile time (debug builds too, so tests serve exactly what a release serves).
//!
//! `index.html` is never cached — a new deploy's content-hashed asset names are picked up at the
//! next load — and carries a strict Content-Security-Policy: scripts, styles and everything else
//! from the server's own origin only, nothing inline, nothing remote. Files under `/assets/` are
//! Vite's, named by their content's hash, so they are cached for good. A server built before the
//! UI was (`ui/dist` missing) still compiles and serves the API; `/` then says what is missing.
//!
//! Not API: these routes are not in the OpenAPI document, and an unknown `/api/...` path is
//! answered as it always was, not by the web app's 404.

use std::fmt::Write as _;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use rust_embed::{EmbeddedFile, RustEmbed};

/// The UI's build output. Missing is allowed, so the workspace builds before the UI has been;
/// `build.rs` makes cargo rebuild the server when it changes.
#[derive(RustEmbed)]
#[folder = "../../ui/dist"]
#[allow_missing = true]
struct Dist;

/// What `index.html` may load, and from where: only this server, only files (no inline script or
/// style); `frame-src 'self'` for the iframe stream the app opens at `/api/stream/iframe`,
/// `img-src data: blob:` for the unread count the app draws on a canvas as its favicon.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
    style-src 'self'; img-src 'self' data: blob:; font-src 'self'; connect-src 'self'; \
    frame-src 'self'; manifest-src 'self'; base-uri 'none'; form-action 'none'; \
    frame-ancestors 'none'";

/// Content-hashed: a changed file has a new name, so a name's bytes never change.
const IMMUTABLE: &str = "public, max-age=31536000, immutable";
/// Any other file of the build keeps its name across deploys: asked again each time (cheap with
/// its ETag).
const REVALIDATE: &str = "no-cache";

const MISSING: &str = "This build of the Tidings server does not include the web app: build ui/ \
    (npm run build) before the server. The API under /api/ is served as usual.\n";

/// Whether this build embeds the web app.
pub fn included() -> bool {
    Dist::get("index.html").is_some()
}

/// Logs once, at start, that `/` has no web app to serve.
pub fn warn_if_missing() {
    if !included() {
        tracing::warn!("this build does not include the web app; build ui/ before the server");
    }
}

/// `/`, `/index.html` and `/assets/…` (GET and HEAD); every path the router does not know goes
/// to [`fallback`].
pub fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/", get(index))
        .route("/index.html", get(index))
        .route("/assets/{*file}", get(asset))
}

async fn index() -> Response {
    let Some(file) = Dist::get("index.html") else {
        return text(StatusCode::NOT_FOUND, MISSING);
    };
    let mut response = Body::from(file.data).into_response();
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        "cross-origin-opener-policy",
        HeaderValue::from_static("same-origin"),
    );
    response
}

async fn asset(uri: Uri, headers: HeaderMap) -> Response {
    let name = uri.path().trim_start_matches('/');
    match Dist::get(name) {
        Some(file) => file_response(&file, IMMUTABLE, &headers),
        None => not_found(),
    }
}

/// What the routes above do not match: a file at the top of the build (GET or HEAD), or 404 —
/// for `/api/...` the empty 404 the API has always answered, for anything else a short text.
pub async fn fallback(method: Method, uri: Uri, headers: HeaderMap) -> Response {
    let path = uri.path();
    if path == "/api" || path.starts_with("/api/") {
        return StatusCode::NOT_FOUND.into_response();
    }
    let name = path.trim_start_matches('/');
    let top_level = !name.is_empty() && !name.contains('/');
    if top_level
        && (method == Method::GET || method == Method::HEAD)
        && let Some(file) = Dist::get(name)
    {
        return file_response(&file, REVALIDATE, &headers);
    }
    not_found()
}

/// A file of the build with its type, caching and strong ETag (its SHA-256); `304 Not Modified`
/// when the client already has it.
fn file_response(file: &EmbeddedFile, cache: &'static str, request: &HeaderMap) -> Response {
    let tag = etag(file);
    let mut response = if fresh(request, &tag) {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        let mut response = Body::from(file.data.clone()).into_response();
        if let Ok(mime) = HeaderValue::from_str(&content_type(file.metadata.mimetype())) {
            response.headers_mut().insert(header::CONTENT_TYPE, mime);
        }
        response
    };
    let h = response.headers_mut();
    if let Ok(tag) = HeaderValue::from_str(&tag) {
        h.insert(header::ETAG, tag);
    }
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}

/// The file's SHA-256 in hex, quoted: a strong validator.
fn etag(file: &EmbeddedFile) -> String {
    let mut tag = String::with_capacity(66);
    tag.push('"');
    for byte in file.metadata.sha256_hash() {
        let _ = write!(tag, "{byte:02x}");
    }
    tag.push('"');
    tag
}

/// Whether `If-None-Match` names `tag` (or `*`); compared weakly, as RFC 9110 says for this
/// header.
fn fresh(request: &HeaderMap, tag: &str) -> bool {
    request
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(|candidate| candidate.trim())
        .any(|candidate| candidate == "*" || candidate.trim_start_matches("W/") == tag)
}

/// Text the browser reads as UTF-8 (what Vite writes) says so.
fn content_type(mime: &str) -> String {
    let text = mime.starts_with("text/")
        || matches!(
            mime,
            "application/javascript" | "application/json" | "image/svg+xml"
        );
    if text && !mime.contains("charset") {
        format!("{mime}; charset=utf-8")
    } else {
        mime.to_owned()
    }
}

fn not_found() -> Response {
    text(StatusCode::NOT_FOUND, "not found\n")
}

fn text(status: StatusCode, body: &'static str) -> Response {
    let mut response = (status, body).into_response();
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn if_none_match(value: &'static str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::IF_NONE_MATCH, HeaderValue::from_static(value));
        headers
    }

    #[test]
    fn if_none_match_compares_weakly_and_takes_lists_and_star() {
        let tag = "\"abc\"";
        assert!(fresh(&if_none_match("\"abc\""), tag));
        assert!(fresh(&if_none_match("W/\"abc\""), tag));
        assert!(fresh(&if_none_match("\"x\", \"abc\""), tag));
        assert!(fresh(&if_none_match("*"), tag));
        assert!(!fresh(&if_none_match("\"abcd\""), tag));
        assert!(!fresh(&HeaderMap::new(), tag));
    }

    #[test]
    fn text_types_say_utf_8() {
        assert_eq!(content_type("text/css"), "text/css; charset=utf-8");
        assert_eq!(
            content_type("application/javascript"),
            "application/javascript; charset=utf-8"
        );
        assert_eq!(content_type("image/png"), "image/png");
    }
}
