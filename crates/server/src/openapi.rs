//! The HTTP API's OpenAPI document, generated from the handlers' `#[utoipa::path]` annotations
//! and the protocol's types, and served at `/api/openapi.json`.
//!
//! The router is built from the same annotated handlers (`app::router`), so a route cannot be
//! served without being described. Each handler states its own outcomes; [`finish`] adds the
//! failures every route shares, from the one place that produces them (the extractors in
//! `error` and `auth`, the store).
//!
//! The chat channel (`/api/ws`) and the feed (`/api/events`) are not request/response routes; the
//! protocol crate describes their frames and events.

use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{
    ContentBuilder, HttpMethod, OpenApi, Ref, RefOr, Response, ResponseBuilder, SecurityRequirement,
};
use utoipa::{Modify, OpenApi as _};

use tidings_proto::v1::{ErrorBody, ErrorCode, SESSION_COOKIE};

/// The document's fixed part; the paths are added by the router.
#[derive(utoipa::OpenApi)]
#[openapi(
    info(
        title = "Tidings",
        description = "The HTTP API of a Tidings server. Errors are an `ErrorBody` whose `code` \
            is stable; the status follows from the code.",
    ),
    components(schemas(ErrorBody, ErrorCode)),
    modifiers(&Security),
    tags(
        (name = "accounts", description = "Logging in, sessions, invites"),
        (name = "rooms", description = "Group rooms and direct messages"),
        (name = "messages", description = "Sending, history, read markers"),
        (name = "admin", description = "The owners' administration of the group"),
    ),
)]
struct Base;

/// The two ways a request carries its session: a bearer token, or the browser's cookie.
struct Security;

impl Modify for Security {
    fn modify(&self, doc: &mut OpenApi) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
        components.add_security_scheme(
            "cookie",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::new(SESSION_COOKIE))),
        );
        doc.security = Some(vec![
            SecurityRequirement::new("bearer", Vec::<String>::new()),
            SecurityRequirement::new("cookie", Vec::<String>::new()),
        ]);
    }
}

/// The document before the router adds its paths.
pub fn base() -> OpenApi {
    Base::openapi()
}

/// Adds to every operation the failures that every route shares, where its own annotation does
/// not already say more: a malformed request (400) where it takes parameters or a body, a body
/// over the limit (413), no valid session (401) unless the route is public, storage that refuses
/// a write (507) on every method that writes, and an internal error (500).
pub fn finish(doc: &mut OpenApi) {
    for item in doc.paths.paths.values_mut() {
        let operations = [
            (HttpMethod::Get, item.get.as_mut()),
            (HttpMethod::Post, item.post.as_mut()),
            (HttpMethod::Delete, item.delete.as_mut()),
            (HttpMethod::Put, item.put.as_mut()),
            (HttpMethod::Patch, item.patch.as_mut()),
        ];
        for (method, operation) in operations {
            let Some(operation) = operation else { continue };
            let public = operation
                .security
                .as_ref()
                .is_some_and(|s| s.iter().all(is_anonymous));
            let has_body = operation.request_body.is_some();
            let has_params = operation.parameters.as_ref().is_some_and(|p| !p.is_empty());
            let shared = [
                (
                    "400",
                    has_params || has_body,
                    "The request is malformed: a path or query parameter of the wrong type, a \
                     body that is not JSON of the right shape, or a value out of range",
                ),
                ("401", !public, "No valid session: log in again"),
                (
                    "403",
                    !public,
                    "A cookie-authenticated request from an Origin that may not use the cookie",
                ),
                ("413", has_body, "The request body is over the size limit"),
                (
                    "507",
                    method != HttpMethod::Get,
                    "The server's storage is full; nothing was stored",
                ),
                ("500", true, "An unexpected failure on the server"),
            ];
            for (status, applies, description) in shared {
                if applies {
                    operation
                        .responses
                        .responses
                        .entry(status.to_owned())
                        .or_insert_with(|| error_response(description));
                }
            }
        }
    }
}

/// An empty security requirement: the route needs no session.
fn is_anonymous(requirement: &SecurityRequirement) -> bool {
    requirement == &SecurityRequirement::default()
}

fn error_response(description: &str) -> RefOr<Response> {
    ResponseBuilder::new()
        .description(description)
        .content(
            "application/json",
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("ErrorBody")))
                .build(),
        )
        .build()
        .into()
}

#[cfg(test)]
mod tests {
    use tidings_proto::v1::MAX_CLIENT_ID_LEN;

    use crate::account::{MAX_NAME_LEN, MAX_PASSWORD_BYTES, MIN_PASSWORD_LEN};

    /// The limits the document states are the ones the handlers enforce.
    #[test]
    fn the_documents_limits_are_the_enforced_ones() {
        let (_, mut doc) = crate::app::api().split_for_parts();
        super::finish(&mut doc);
        let doc = serde_json::to_value(&doc).unwrap();
        let schemas = &doc["components"]["schemas"];
        let register = &schemas["RegisterRequest"]["properties"];
        assert_eq!(register["name"]["maxLength"], MAX_NAME_LEN);
        assert_eq!(register["password"]["minLength"], MIN_PASSWORD_LEN);
        assert_eq!(register["password"]["maxLength"], MAX_PASSWORD_BYTES);
        let send = &schemas["SendMessage"]["properties"];
        assert_eq!(send["client_id"]["maxLength"], MAX_CLIENT_ID_LEN);
        // Every route but the public ones answers 401, and every body route 413.
        let login = &doc["paths"]["/api/login"]["post"]["responses"];
        assert!(
            login.get("413").is_some()
                && login["401"]["description"] != "No valid session: log in again"
        );
        let me = &doc["paths"]["/api/me"]["get"]["responses"];
        assert!(me.get("401").is_some() && me.get("413").is_none() && me.get("400").is_none());
    }
}
