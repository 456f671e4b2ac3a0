//! The HTTP surface: one router per function, and the single place where
//! errors become responses.
//!
//! - [`error`]: [`ApiError`], the JSON error body every failure uses.
//! - [`extract`]: extractors whose rejections are [`ApiError`]s too.
//! - [`library`]: the `library-api` router.
//! - [`links`]: the `links-api` router.
//! - [`public`]: the `public-api` router: the visitor's JSON API and pages ([`pages`]).
//! - [`openapi`]: the OpenAPI document of the JSON APIs, built from the handlers.
//! - [`blobs`]: the local server's signed blob URLs (S3's part, locally).

pub mod blobs;
pub mod error;
pub mod extract;
pub mod library;
pub mod links;
pub mod openapi;
pub mod pages;
pub mod public;

pub use error::ApiError;

use crate::auth::Authenticator;
use crate::domain::archives::ArchiveService;
use crate::domain::library::Library;
use crate::domain::links::LinkService;
use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath};
use axum::http::Request;
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
/// wrong methods and panics, a body limit, and request logs that name the
/// route pattern rather than the URI (so tokens in paths never reach a log).
pub fn finish(router: Router) -> Router {
    router
        .fallback(|| async { ApiError::no_route() })
        .method_not_allowed_fallback(|| async { ApiError::method_not_allowed() })
        .layer(DefaultBodyLimit::max(MAX_JSON_BODY))
        .layer(CatchPanicLayer::custom(|_| {
            tracing::error!("a handler panicked");
            axum::response::IntoResponse::into_response(ApiError::internal())
        }))
        .layer(TraceLayer::new_for_http().make_span_with(|req: &Request<_>| {
            let route = req.extensions().get::<MatchedPath>().map(|p| p.as_str().to_owned()).unwrap_or_default();
            tracing::info_span!("request", method = %req.method(), route)
        }))
}
