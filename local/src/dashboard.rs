//! The owner's dashboard under [`DASHBOARD_PATH`]: the static front end of
//! `dashboard/` (plain ES modules and one style sheet, compiled into the
//! binary), its `config.json`, and the local mode's sign-in.
//!
//! The dashboard calls only the public JSON API with a bearer token. What
//! exists here alone is how the local server hands that token out: a list of
//! the store's users and a token for the one chosen (`/app/local/...`). It is
//! the local server's stand-in for an identity provider — no Lambda links this
//! crate — and it answers only requests from this machine (a loopback peer)
//! made under the server's own address (no rebound DNS name), with a JSON
//! body (which another site's page cannot send without CORS, never granted).

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use publinks_domain::ids::UserId;
use publinks_domain::signing::SecretKey;
use publinks_domain::store::{PageRequest, Stores};
use publinks_domain::tokens;
use publinks_http::error::ApiError;
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::time::Duration;

/// Where the dashboard is served.
pub const DASHBOARD_PATH: &str = "/app/";

/// How long a token of the local sign-in works: a working day.
pub const LOCAL_TOKEN_TTL: Duration = Duration::from_secs(8 * 3600);

/// The content policy of every dashboard file: its own scripts, styles and
/// images only, API calls to this origin (and to the identity provider's
/// token endpoint, `{connect}`), never framed.
fn policy(connect: &str) -> String {
    format!(
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; \
         connect-src 'self'{connect}; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    )
}

/// The variable that makes the local server's dashboard sign in through an
/// OpenID Connect provider (its JSON is an [`OidcConfig`]) instead of the
/// local sign-in.
pub const OIDC_VAR: &str = "PUBLINKS_DASHBOARD_OIDC";

/// The identity provider the dashboard signs in with (authorization code
/// with PKCE, in the page): what `config.json` tells the front end, as the
/// `config.json` deployed in AWS does.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OidcConfig {
    /// Shown on the button: "Sign in with <issuer_name>".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer_name: Option<String>,
    pub authorization_endpoint: String,
    /// Called by the page (`fetch`): its origin joins `connect-src`.
    pub token_endpoint: String,
    pub client_id: String,
    /// Where the provider sends the browser back; the dashboard's own
    /// address when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redirect_uri: Option<String>,
    /// `openid` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// Where sign-out sends the browser, if the provider has a session to end.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logout_endpoint: Option<String>,
    /// Which token the API is sent: `access_token` (when absent) or `id_token`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
}

impl OidcConfig {
    /// The provider named by [`OIDC_VAR`], if set; a message naming what is
    /// wrong otherwise.
    pub fn from_env() -> Result<Option<Self>, String> {
        match std::env::var(OIDC_VAR) {
            Ok(json) if !json.trim().is_empty() => Self::parse(&json).map(Some),
            _ => Ok(None),
        }
    }

    /// Reads and checks one provider's settings.
    pub fn parse(json: &str) -> Result<Self, String> {
        let config: OidcConfig = serde_json::from_str(json).map_err(|e| format!("{OIDC_VAR}: {e}"))?;
        for url in [&config.authorization_endpoint, &config.token_endpoint] {
            origin(url).ok_or_else(|| format!("{OIDC_VAR}: {url:?} is not an http(s) URL"))?;
        }
        if let Some(token) = &config.token
            && !matches!(token.as_str(), "access_token" | "id_token")
        {
            return Err(format!("{OIDC_VAR}: token must be access_token or id_token, not {token:?}"));
        }
        Ok(config)
    }

    /// The token endpoint's origin, for `connect-src`.
    pub fn token_origin(&self) -> String {
        origin(&self.token_endpoint).unwrap_or_default()
    }
}

/// `scheme://host[:port]` of an absolute http(s) URL; `None` for anything
/// else (including characters that could end a policy directive).
fn origin(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    if !matches!(scheme, "http" | "https") {
        return None;
    }
    let authority = rest.split(['/', '?', '#']).next()?;
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']');
    (!authority.is_empty() && authority.chars().all(allowed)).then(|| format!("{scheme}://{authority}"))
}

/// The front end's files: path under `/app/`, content type, bytes.
const FILES: &[(&str, &str, &str)] = &[
    ("index.html", "text/html; charset=utf-8", include_str!("../../dashboard/index.html")),
    ("style.css", "text/css; charset=utf-8", include_str!("../../dashboard/style.css")),
    ("js/app.js", "text/javascript; charset=utf-8", include_str!("../../dashboard/js/app.js")),
    ("js/api.js", "text/javascript; charset=utf-8", include_str!("../../dashboard/js/api.js")),
    ("js/ui.js", "text/javascript; charset=utf-8", include_str!("../../dashboard/js/ui.js")),
    ("js/signin.js", "text/javascript; charset=utf-8", include_str!("../../dashboard/js/signin.js")),
    ("js/oidc.js", "text/javascript; charset=utf-8", include_str!("../../dashboard/js/oidc.js")),
    ("js/library.js", "text/javascript; charset=utf-8", include_str!("../../dashboard/js/library.js")),
    ("js/links.js", "text/javascript; charset=utf-8", include_str!("../../dashboard/js/links.js")),
    ("js/settings.js", "text/javascript; charset=utf-8", include_str!("../../dashboard/js/settings.js")),
    ("js/audit.js", "text/javascript; charset=utf-8", include_str!("../../dashboard/js/audit.js")),
    ("js/downloads.js", "text/javascript; charset=utf-8", include_str!("../../dashboard/js/downloads.js")),
    ("js/branding.js", "text/javascript; charset=utf-8", include_str!("../../dashboard/js/branding.js")),
    ("js/webhooks.js", "text/javascript; charset=utf-8", include_str!("../../dashboard/js/webhooks.js")),
];

/// What the local sign-in needs: the stores (for the users), the key that
/// signs dashboard tokens, and whether it may answer at all.
#[derive(Clone)]
pub struct LocalSignIn {
    pub stores: Stores,
    pub jwt: SecretKey,
    /// The `Host` this server is reached under (from its base URL): the only
    /// one the sign-in answers to.
    pub host: String,
    /// The identity provider the front end signs in with, if not locally.
    pub oidc: Option<OidcConfig>,
}

impl LocalSignIn {
    /// The sign-in of a server reached at `base_url`.
    pub fn new(stores: Stores, jwt: SecretKey, base_url: &str, oidc: Option<OidcConfig>) -> Self {
        let authority = base_url.split("://").nth(1).unwrap_or(base_url);
        let host = authority.split('/').next().unwrap_or_default().to_string();
        LocalSignIn { stores, jwt, host, oidc }
    }
}

/// The dashboard's routes: the files, `config.json` and the local sign-in.
pub fn router(sign_in: LocalSignIn) -> Router {
    let connect = sign_in.oidc.as_ref().map(|o| format!(" {}", o.token_origin())).unwrap_or_default();
    let policy = HeaderValue::from_str(&policy(&connect)).expect("an origin is a header value");
    let mut router = Router::new()
        .route("/app", get(|| async { Redirect::permanent(DASHBOARD_PATH) }))
        .route("/app/", get(|| async { file("index.html") }))
        .route("/app/config.json", get(config));
    for (path, _, _) in FILES {
        router = router.route(&format!("/app/{path}"), get(move || async move { file(path) }));
    }
    router.route("/app/local/users", get(users)).route("/app/local/token", post(token)).with_state(sign_in).layer(
        axum::middleware::from_fn(move |request: Request, next: Next| {
            let policy = policy.clone();
            async move { headers(policy, request, next).await }
        }),
    )
}

fn file(path: &str) -> Response {
    match FILES.iter().find(|(p, _, _)| *p == path) {
        Some((_, kind, body)) => ([(header::CONTENT_TYPE, *kind)], *body).into_response(),
        None => ApiError::no_route().into_response(),
    }
}

/// The front end's settings: the local mode (sign-in by choosing a user),
/// or the OpenID Connect provider when one is configured (as the deployed
/// `config.json` in AWS), and the API on this origin.
async fn config(State(sign_in): State<LocalSignIn>) -> Json<serde_json::Value> {
    match sign_in.oidc {
        None => Json(serde_json::json!({ "mode": "local", "api": "" })),
        Some(oidc) => {
            let mut body = serde_json::to_value(oidc).expect("settings serialize");
            body["mode"] = "oidc".into();
            body["api"] = "".into();
            Json(body)
        }
    }
}

/// Every dashboard response: the strict content policy, no referrer, never
/// framed or sniffed; revalidated, so a new build is seen at once.
async fn headers(policy: HeaderValue, request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_SECURITY_POLICY, policy);
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    if !headers.contains_key(header::CACHE_CONTROL) {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    }
    response
}

/// Whether `host` (a request's `Host`) names this server: its own address,
/// or a loopback name with its port (`localhost:8080` for `127.0.0.1:8080`).
fn same_server(host: &str, own: &str) -> bool {
    if host.eq_ignore_ascii_case(own) {
        return true;
    }
    let port = |h: &str| h.rsplit_once(':').map(|(name, port)| (name.to_ascii_lowercase(), port.to_string()));
    match (port(host), port(own)) {
        (Some((name, p)), Some((_, own_port))) => {
            p == own_port && matches!(name.as_str(), "localhost" | "127.0.0.1" | "[::1]")
        }
        _ => false,
    }
}

/// One user the local sign-in offers.
#[derive(Serialize)]
struct LocalUser {
    id: UserId,
    name: String,
    email: String,
    role: publinks_domain::model::Role,
    account: String,
}

/// Refuses unless the server signs in locally (with an identity provider
/// configured, it is the only way in) and the request comes from this
/// machine under the server's own host.
fn allowed(sign_in: &LocalSignIn, peer: Option<SocketAddr>, request_headers: &HeaderMap) -> Result<(), ApiError> {
    if sign_in.oidc.is_some() {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "local_sign_in_off",
            "this server signs in through its identity provider; there is no local sign-in",
        ));
    }
    let host = request_headers.get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or_default();
    if !peer.is_some_and(|p| p.ip().is_loopback()) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "local_sign_in_off",
            "the local sign-in answers only requests from this machine; paste a token instead",
        ));
    }
    if !same_server(host, &sign_in.host) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "wrong_host",
            "the local sign-in answers only under the server's own address",
        ));
    }
    Ok(())
}

/// The users of every account in the store, to choose one to sign in as.
async fn users(
    State(sign_in): State<LocalSignIn>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    request_headers: HeaderMap,
) -> Result<Response, ApiError> {
    allowed(&sign_in, peer.map(|p| p.0.0), &request_headers)?;
    let catalog = &sign_in.stores.catalog;
    let mut out = Vec::new();
    for account in catalog.list_accounts(&PageRequest::first(50)).await?.items {
        for user in catalog.list_users(account.id, &PageRequest::first(200)).await?.items {
            let (id, name, email, role) = (user.id, user.name, user.email, user.role);
            out.push(LocalUser { id, name, email, role, account: account.name.clone() });
        }
    }
    Ok(([(header::CACHE_CONTROL, "no-store")], Json(serde_json::json!({ "items": out }))).into_response())
}

/// Who to sign in as.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenRequest {
    user_id: UserId,
}

/// A dashboard token for one user, in the response body only (never in a
/// URL, never logged).
async fn token(
    State(sign_in): State<LocalSignIn>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    request_headers: HeaderMap,
    body: Result<Json<TokenRequest>, axum::extract::rejection::JsonRejection>,
) -> Result<Response, ApiError> {
    allowed(&sign_in, peer.map(|p| p.0.0), &request_headers)?;
    let Json(body) = body.map_err(|_| {
        ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_field", "user_id must be a user's id")
            .with_field("user_id")
    })?;
    if sign_in.stores.catalog.user(body.user_id).await?.is_none() {
        return Err(ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such user").with_field("user_id"));
    }
    let token = tokens::issue(&sign_in.jwt, body.user_id, LOCAL_TOKEN_TTL);
    let body = serde_json::json!({ "token": token, "expires_in": LOCAL_TOKEN_TTL.as_secs() });
    Ok(([(header::CACHE_CONTROL, "no-store")], Json(body)).into_response())
}
