//! The HTTP surface: one router per function, and the single place where
//! errors become responses.
//!
//! - [`error`]: [`ApiError`], the JSON error body every failure uses.
//! - [`extract`]: extractors whose rejections are [`ApiError`]s too.
//! - [`library`]: the `library-api` router.
//! - [`links`]: the `links-api` router.
//! - [`public`]: the `public-api` router: the visitor's JSON API and pages ([`pages`]).
//! - [`origin`]: the guard that lets only CloudFront reach `public-api`.
//! - [`openapi`]: the OpenAPI document of the JSON APIs, built from the handlers.
//! - [`blobs`]: the local server's signed blob URLs (S3's part, locally).

pub mod blobs;
pub mod error;
pub mod extract;
pub mod library;
pub mod links;
pub mod openapi;
pub mod origin;
pub mod pages;
pub mod public;

pub use error::ApiError;

use crate::auth::Authenticator;
use crate::domain::archives::ArchiveService;
use crate::domain::library::Library;
use crate::domain::links::LinkService;
use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath};
use axum::http::{Request, Uri};
use axum::response::IntoResponse;
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
    pub auth: Arc<Authenticator>,
}

/// The layers every function's router gets: JSON errors for unknown routes,
/// wrong methods and panics (HTML pages for the visitor's pages), a body
/// limit, the protective headers of everything under `/s/`, and request logs
/// that name the route pattern rather than the URI (so tokens in paths never
/// reach a log).
pub fn finish(router: Router) -> Router {
    finish_guarded(router, None)
}

/// [`finish`], with `origin`'s guard in front of everything but the logs
/// (`public-api` behind CloudFront): a request without the secret is refused
/// before any route, fallback or body is looked at.
pub fn finish_guarded(router: Router, origin: Option<origin::OriginSecrets>) -> Router {
    let router = router
        .fallback(|uri: Uri| async move {
            if public::is_page_path(uri.path()) { pages::not_found() } else { ApiError::no_route().into_response() }
        })
        .method_not_allowed_fallback(|uri: Uri| async move {
            if public::is_page_path(uri.path()) {
                pages::method_not_allowed()
            } else {
                ApiError::method_not_allowed().into_response()
            }
        })
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
