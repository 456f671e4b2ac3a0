//! The HTTP surface: one router per function, and the single place where
//! errors become responses. The visitor's HTML pages are `publinks-pages`,
//! over this crate: only `public-api` and the local server link templates.
//!
//! - [`error`]: [`ApiError`], the JSON error body every failure uses.
//! - [`extract`]: extractors whose rejections are [`ApiError`]s too.
//! - [`auth`]: who is calling (the local server's JWTs, API Gateway's authorizer).
//! - [`library`]: the `library-api` router.
//! - [`links`]: the `links-api` router.
//! - [`public`]: the visitor's JSON API of `public-api`, and what the pages share with it.
//! - [`ranges`]: byte ranges (`Range`, 206, 416) of files served in parts.
//! - [`origin`]: the guard that lets only CloudFront reach `public-api`.
//! - [`webhooks`]: the account's webhooks (part of `links-api`).
//! - [`openapi`]: the OpenAPI document of the JSON APIs, built from the handlers
//!   (feature `openapi`; the functions route without it, see `routing`).

pub mod auth;
pub mod branding;
pub mod error;
pub mod extract;
pub mod library;
pub mod links;
pub mod openapi;
pub mod origin;
pub mod public;
pub mod ranges;
mod routing;
pub mod webhooks;

pub use error::ApiError;

use crate::auth::Authenticator;
use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath};
use axum::http::{Request, Uri};
use axum::response::{IntoResponse, Response};
use publinks_domain::archives::ArchiveService;
use publinks_domain::library::Library;
use publinks_domain::links::LinkService;
use publinks_domain::webhooks::WebhookService;
use std::sync::Arc;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::trace::TraceLayer;

/// Largest JSON body any API endpoint accepts.
pub const MAX_JSON_BODY: usize = 256 * 1024;

/// What every dashboard router needs: the services and how to authenticate.
#[derive(Clone)]
pub struct AppState {
    pub library: Library,
    /// ZIP archives of library items.
    pub archives: ArchiveService,
    pub links: LinkService,
    /// The account's webhooks.
    pub webhooks: WebhookService,
    pub auth: Arc<Authenticator>,
}

impl AppState {
    /// The state of a dashboard function in Lambda, whose callers API
    /// Gateway's JWT authorizer has authenticated.
    pub fn behind_authorizer(
        library: Library,
        archives: ArchiveService,
        links: LinkService,
        webhooks: WebhookService,
    ) -> Self {
        AppState { library, archives, links, webhooks, auth: Arc::new(Authenticator::ApiGatewayAuthorizer) }
    }
}

/// What a router answers for an address it has no route for, and for a
/// method a route does not take: JSON errors ([`Fallbacks::JSON`]), or, on
/// a router with the visitor's pages, HTML pages under `/s/` (`publinks-pages`).
#[derive(Clone, Copy)]
pub struct Fallbacks {
    /// The answer to an address without a route.
    pub not_found: fn(&Uri) -> Response,
    /// The answer to a method the route does not take.
    pub method_not_allowed: fn(&Uri) -> Response,
}

impl Fallbacks {
    /// JSON errors, for the routers without pages.
    pub const JSON: Fallbacks = Fallbacks {
        not_found: |_| ApiError::no_route().into_response(),
        method_not_allowed: |_| ApiError::method_not_allowed().into_response(),
    };
}

/// The layers every function's router gets: JSON errors for unknown routes,
/// wrong methods and panics, a body limit, the protective headers of
/// everything under `/s/`, and request logs that name the route pattern
/// rather than the URI (so tokens in paths never reach a log).
pub fn finish(router: Router) -> Router {
    finish_with(router, None, Fallbacks::JSON)
}

/// [`finish`], with `fallbacks` for unknown routes and methods, and
/// `origin`'s guard in front of everything but the logs (`public-api` behind
/// CloudFront): a request without the secret is refused before any route,
/// fallback or body is looked at.
pub fn finish_with(router: Router, origin: Option<origin::OriginSecrets>, fallbacks: Fallbacks) -> Router {
    let router = router
        .fallback(move |uri: Uri| async move { (fallbacks.not_found)(&uri) })
        .method_not_allowed_fallback(move |uri: Uri| async move { (fallbacks.method_not_allowed)(&uri) })
        .layer(DefaultBodyLimit::max(MAX_JSON_BODY))
        .layer(CatchPanicLayer::custom(|_| {
            tracing::error!("a handler panicked");
            ApiError::internal().into_response()
        }));
    let router = match origin {
        Some(secrets) => router.layer(axum::middleware::from_fn_with_state(secrets, origin::guard)),
        None => router,
    };
    router.layer(axum::middleware::from_fn(public::share_headers)).layer(TraceLayer::new_for_http().make_span_with(
        |req: &Request<_>| {
            let route = req.extensions().get::<MatchedPath>().map(|p| p.as_str().to_owned()).unwrap_or_default();
            tracing::info_span!("request", method = %req.method(), route)
        },
    ))
}
