//! The API contract: an OpenAPI 3.1 document built from the handlers'
//! `#[utoipa::path]` annotations and the types they take and return.
//!
//! Each router registers its JSON endpoints through `utoipa_axum::routes!`,
//! which takes the method and path from the annotation: an endpoint cannot be
//! routed without being in this document. What every endpoint of a kind can
//! answer is added here, in one place, rather than on each handler:
//!
//! - dashboard endpoints (`library`, `links`) authenticate with a bearer JWT
//!   ([`Caller`](super::extract::Caller)): 401, and 503 when storage fails;
//! - visitor endpoints (`public`) open the link and check the session first:
//!   404 `link_unavailable`, 403 `link_not_yet_active`, 401 `password_required`, 503;
//! - path parameters ([`ApiPath`](super::extract::ApiPath)): 400 `invalid_path`;
//! - query parameters ([`ApiQuery`](super::extract::ApiQuery)): 400
//!   `invalid_query`, whatever the problem (a `limit` out of range included);
//! - a JSON body ([`ApiJson`](super::extract::ApiJson)): 400, 413, 415, 422.
//!
//! The handlers' annotations list the rest: the success status and body, and
//! the refusals of the domain (403, 404, 409, 422, 429). Every error response
//! is one of [`error_responses`](super::error::error_responses), all with the
//! [`ErrorBody`] schema.

#[cfg(any(feature = "openapi", test))]
use super::error::{self, ErrorBody, ErrorDetail};
#[cfg(any(feature = "openapi", test))]
use super::{library, links, public};
#[cfg(any(feature = "openapi", test))]
use utoipa::openapi::path::{Operation, ParameterIn};
#[cfg(any(feature = "openapi", test))]
use utoipa::openapi::security::{
    ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme,
};
#[cfg(any(feature = "openapi", test))]
use utoipa::openapi::{OpenApi, Ref, RefOr};
#[cfg(any(feature = "openapi", test))]
use utoipa::{OpenApi as _, ToResponse};

/// Where the servers answer with the document.
pub const SPEC_PATH: &str = "/api/openapi.json";

/// The security scheme of the dashboard APIs.
pub const DASHBOARD_JWT: &str = "dashboardJwt";
/// The security scheme of the visitor's JSON API: the session token as a bearer token.
pub const VISITOR_SESSION: &str = "visitorSession";
/// The same session as the visitor's pages carry it: a cookie.
pub const VISITOR_COOKIE: &str = "visitorCookie";

#[cfg(any(feature = "openapi", test))]
#[derive(utoipa::OpenApi)]
#[openapi(
    info(
        title = "publinks",
        description = "Public links for a media library. Three APIs share this document:\n\n\
            - **library** (`library-api`) and **links** (`links-api`): the dashboard's, under `/api`, \
            authenticated with a bearer JWT;\n\
            - **visitor** (`public-api`): what a share URL `/s/{token}` offers scripts, under \
            `/s/{token}/api`; a link with a password needs the session token from \
            `POST /s/{token}/api/session`.\n\n\
            Every error has one body, `ErrorBody`: a machine-readable `code`, a `message` for people \
            and, where there is one, the `field` at fault. Lists are paginated with `limit` (1–200, \
            default 50) and `cursor` (the `next_cursor` of the previous page, absent on the last).\n\n\
            Not described here: the visitor's HTML pages under `/s/{token}` (for browsers) and the \
            local server's signed blob URLs under `/_blobs` (S3's part, handed out by the API).",
        license(name = "Apache-2.0", identifier = "Apache-2.0"),
    ),
    components(schemas(ErrorBody, ErrorDetail)),
    tags(
        (name = "library", description = "The media library: account, users, grants, folders, files, \
            versions, uploads, collections, downloads."),
        (name = "links", description = "Public links as the dashboard manages them, and their audit log."),
        (name = "webhooks", description = "The account's webhooks: signed deliveries of link events to \
            an HTTPS endpoint, for administrators."),
        (name = "visitor", description = "What a share link gives a script: the shared item, listings, \
            file metadata, downloads, thumbnails."),
    )
)]
struct Base;

/// The whole document: the dashboard APIs and the visitor's JSON API.
#[cfg(any(feature = "openapi", test))]
pub fn openapi() -> OpenApi {
    let mut doc = Base::openapi();
    let (_, mut dashboard) = library::api().merge(links::api()).split_for_parts();
    for op in operations(&mut dashboard) {
        op.security = Some(vec![SecurityRequirement::new(DASHBOARD_JWT, Vec::<String>::new())]);
        add(op, 401, error::Unauthenticated::response());
        add(op, 503, error::StorageUnavailable::response());
    }
    let (_, mut visitor) = public::api().split_for_parts();
    for op in operations(&mut visitor) {
        op.security = Some(vec![
            SecurityRequirement::default(),
            SecurityRequirement::new(VISITOR_SESSION, Vec::<String>::new()),
            SecurityRequirement::new(VISITOR_COOKIE, Vec::<String>::new()),
        ]);
        add(op, 401, error::SessionRequired::response());
        add(op, 403, error::LinkNotYetActive::response());
        add(op, 404, error::LinkNotFound::response());
        add(op, 503, error::StorageUnavailable::response());
    }
    doc.merge(dashboard);
    doc.merge(visitor);
    for op in operations(&mut doc) {
        let has = |place: ParameterIn, name: Option<&str>| {
            op.parameters.iter().flatten().any(|p| match p {
                RefOr::T(p) => p.parameter_in == place && name.is_none_or(|n| p.name == n),
                RefOr::Ref(_) => false,
            })
        };
        let (path, query) = (has(ParameterIn::Path, None), has(ParameterIn::Query, None));
        let body = op.request_body.is_some();
        if path || query || body {
            add(op, 400, error::BadRequest::response());
        }
        if body {
            add(op, 413, error::PayloadTooLarge::response());
            add(op, 415, error::UnsupportedMediaType::response());
        }
        if body {
            add(op, 422, error::Unprocessable::response());
        }
    }
    let components = doc.components.get_or_insert_with(Default::default);
    for (name, response) in error::error_responses() {
        components.responses.insert(name.to_string(), response);
    }
    let bearer = |format: &str, description: &str| {
        SecurityScheme::Http(
            HttpBuilder::new()
                .scheme(HttpAuthScheme::Bearer)
                .bearer_format(format)
                .description(Some(description))
                .build(),
        )
    };
    components.security_schemes.insert(
        DASHBOARD_JWT.into(),
        RefOr::T(bearer(
            "JWT",
            "A JWT whose `sub` is the user's id. In AWS, API Gateway's JWT authorizer checks it against the \
             identity provider; locally the server checks HS256 tokens signed with the key in \
             `<data dir>/keys.json` (`publinks-admin token --user <id>` issues one).",
        )),
    );
    components.security_schemes.insert(
        VISITOR_SESSION.into(),
        RefOr::T(bearer(
            "JWT",
            "The `token` of `POST /s/{token}/api/session`: needed for a link with a password, optional \
             otherwise (with one, the visitor's downloads are listed). Bound to the link and its password: \
             changing the password ends it.",
        )),
    );
    components.security_schemes.insert(
        VISITOR_COOKIE.into(),
        RefOr::T(SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
            public::SESSION_COOKIE,
            "The same session as the visitor's pages set it (path `/s/{token}`): the JSON API accepts it too.",
        )))),
    );
    doc
}

/// Every operation of a document.
#[cfg(any(feature = "openapi", test))]
fn operations(doc: &mut OpenApi) -> impl Iterator<Item = &mut Operation> {
    doc.paths.paths.values_mut().flat_map(|item| {
        [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
            &mut item.patch,
            &mut item.head,
            &mut item.options,
            &mut item.trace,
            &mut item.query,
        ]
        .into_iter()
        .flatten()
    })
}

/// Adds a reference to a shared error response, unless the handler's
/// annotation already documents that status.
#[cfg(any(feature = "openapi", test))]
fn add(op: &mut Operation, status: u16, (name, _): (&str, RefOr<utoipa::openapi::Response>)) {
    op.responses
        .responses
        .entry(status.to_string())
        .or_insert_with(|| RefOr::Ref(Ref::new(format!("#/components/responses/{name}"))));
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every `$ref` names something the document defines: a type used only
    /// through a manual schema or a parameter is easily left out.
    #[test]
    fn every_reference_resolves() {
        fn refs(value: &serde_json::Value, out: &mut Vec<String>) {
            match value {
                serde_json::Value::Object(map) => {
                    if let Some(serde_json::Value::String(r)) = map.get("$ref") {
                        out.push(r.clone());
                    }
                    map.values().for_each(|v| refs(v, out));
                }
                serde_json::Value::Array(items) => items.iter().for_each(|v| refs(v, out)),
                _ => {}
            }
        }
        let doc = serde_json::to_value(openapi()).unwrap();
        let mut found = Vec::new();
        refs(&doc, &mut found);
        assert!(!found.is_empty());
        for r in found {
            let pointer = r.strip_prefix('#').unwrap_or_else(|| panic!("{r} points outside the document"));
            assert!(doc.pointer(pointer).is_some(), "{r} is referenced but not defined");
        }
    }

    /// Every operation documents its success and, through the shared
    /// responses, every error status its extractors and the domain give.
    #[test]
    fn operations_are_complete() {
        let mut doc = openapi();
        let mut ids = std::collections::BTreeSet::new();
        for op in operations(&mut doc) {
            let id = op.operation_id.clone().expect("every operation has an id");
            assert!(ids.insert(id.clone()), "operation id {id} is used twice");
            assert!(op.summary.is_some(), "{id}: give the handler a `///` line, the operation's summary");
            assert!(op.security.is_some(), "{id} says nothing of authentication");
            let statuses: Vec<&str> = op.responses.responses.keys().map(String::as_str).collect();
            assert!(statuses.iter().any(|s| s.starts_with('2') || s.starts_with('3')), "{id} has no success");
            for must in ["401", "503"] {
                assert!(statuses.contains(&must), "{id} lacks {must}");
            }
        }
    }

    /// The path of the committed copy, relative to the workspace.
    const COMMITTED: &str = "api/openapi.json";

    /// Fails when `api/openapi.json` is not what the code generates, so that
    /// the committed contract never drifts from the handlers.
    #[test]
    fn committed_document_is_current() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").join(COMMITTED);
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        let generated = openapi().to_pretty_json().unwrap() + "\n";
        assert!(
            committed == generated,
            "{COMMITTED} is stale: the handlers or types changed. Refresh it with\n\n    \
             ./scripts/openapi.sh\n\nand commit the result."
        );
    }
}
