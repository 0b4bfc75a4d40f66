//! The web app at `/`, embedded in the server: `index.html` never cached and under a strict CSP,
//! the content-hashed assets cached for good and revalidated by ETag, and everything else — the
//! API's unknown paths included — answered as before.
//!
//! These tests need the UI built before the server (`scripts/test.sh` builds it first); a server
//! built without it fails them, saying so.

use reqwest::{Method, StatusCode, header};
use tidings_tests::{TestServer, http_client};

const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
    img-src 'self' data: blob:; font-src 'self'; connect-src 'self'; frame-src 'self'; \
    manifest-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

fn header<'a>(response: &'a reqwest::Response, name: &str) -> &'a str {
    response
        .headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_else(|| panic!("no {name} header in {:?}", response.headers()))
}

/// The path of the module script `index.html` loads (Vite writes it relative, `./assets/…`).
fn module_script(index: &str) -> String {
    let tag = index
        .find("<script type=\"module\"")
        .map(|at| &index[at..])
        .unwrap_or_else(|| panic!("no module script in index.html: {index}"));
    let src = tag
        .split_once("src=\"")
        .and_then(|(_, rest)| rest.split_once('"'))
        .map(|(src, _)| src)
        .unwrap_or_else(|| panic!("no src on the module script: {tag}"));
    let path = format!("/{}", src.trim_start_matches("./").trim_start_matches('/'));
    assert!(
        path.starts_with("/assets/") && path.ends_with(".js"),
        "the module script is not a built asset: {src}"
    );
    path
}

#[tokio::test]
async fn the_web_app_is_served_at_the_root_under_a_strict_csp_with_assets_cached_for_good() {
    let server = TestServer::start().await;
    let http = http_client();

    // GET / reaches the router through the listener (which takes only feeds, streams and polls
    // for itself) and answers index.html.
    let index = http.get(server.url("/")).send().await.unwrap();
    let status = index.status();
    let headers = index.headers().clone();
    let body = index.text().await.unwrap();
    assert_eq!(
        status,
        StatusCode::OK,
        "GET /: {body}\n(was ui/ built before the server? `cd ui && npm run build`)"
    );
    let expected = [
        ("content-type", "text/html; charset=utf-8"),
        ("cache-control", "no-store"),
        ("content-security-policy", CSP),
        ("x-content-type-options", "nosniff"),
        ("referrer-policy", "no-referrer"),
        ("x-frame-options", "DENY"),
        ("cross-origin-opener-policy", "same-origin"),
    ];
    for (name, value) in expected {
        assert_eq!(
            headers.get(name).and_then(|v| v.to_str().ok()),
            Some(value),
            "{name} of GET /"
        );
    }
    let script = module_script(&body);

    // /index.html is the same document.
    let same = http.get(server.url("/index.html")).send().await.unwrap();
    assert_eq!(same.status(), StatusCode::OK);
    assert_eq!(header(&same, "content-security-policy"), CSP);
    assert_eq!(same.text().await.unwrap(), body);

    // The script it loads: its type, cached for good, with a strong ETag.
    let asset = http.get(server.url(&script)).send().await.unwrap();
    assert_eq!(asset.status(), StatusCode::OK, "GET {script}");
    let content_type = header(&asset, "content-type");
    assert!(
        content_type.starts_with("text/javascript")
            || content_type.starts_with("application/javascript"),
        "{content_type}"
    );
    assert_eq!(
        header(&asset, "cache-control"),
        "public, max-age=31536000, immutable"
    );
    assert_eq!(header(&asset, "x-content-type-options"), "nosniff");
    let etag = header(&asset, "etag").to_owned();
    assert!(
        etag.starts_with('"') && etag.ends_with('"') && etag.len() > 2,
        "a strong ETag: {etag}"
    );
    assert!(!asset.bytes().await.unwrap().is_empty());

    // Asked again with its ETag: not modified, no body.
    let again = http
        .get(server.url(&script))
        .header(header::IF_NONE_MATCH, &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
    assert_eq!(header(&again, "etag"), etag);
    assert!(again.bytes().await.unwrap().is_empty());
    // With another ETag: the file.
    let changed = http
        .get(server.url(&script))
        .header(header::IF_NONE_MATCH, "\"something-else\"")
        .send()
        .await
        .unwrap();
    assert_eq!(changed.status(), StatusCode::OK);

    // HEAD: the headers, no body.
    let head = http.head(server.url("/")).send().await.unwrap();
    assert_eq!(head.status(), StatusCode::OK);
    assert_eq!(header(&head, "content-security-policy"), CSP);
    assert_eq!(header(&head, "cache-control"), "no-store");
    assert!(head.bytes().await.unwrap().is_empty());

    server.stop().await;
}

#[tokio::test]
async fn unknown_paths_are_not_found_the_api_answers_as_before_and_the_root_takes_only_get() {
    let server = TestServer::start().await;
    let http = http_client();

    for path in ["/nope", "/assets/nope.js", "/nope/index.html"] {
        let response = http.get(server.url(path)).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "GET {path}");
        assert_eq!(
            header(&response, "content-type"),
            "text/plain; charset=utf-8"
        );
        assert_eq!(header(&response, "x-content-type-options"), "nosniff");
    }

    // An unknown API path is still the router's bare 404: no body, no web app text.
    for path in ["/api/nope", "/api"] {
        let response = http.get(server.url(path)).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "GET {path}");
        assert!(response.headers().get("content-type").is_none(), "{path}");
        assert!(response.bytes().await.unwrap().is_empty(), "{path}");
    }
    // The API's own routes are untouched.
    let health = http.get(server.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), StatusCode::OK);
    assert_eq!(health.text().await.unwrap(), "ok");

    let post = http
        .request(Method::POST, server.url("/"))
        .send()
        .await
        .unwrap();
    assert_eq!(post.status(), StatusCode::METHOD_NOT_ALLOWED);

    server.stop().await;
}
