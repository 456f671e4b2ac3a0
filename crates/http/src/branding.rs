//! The account's branding (`/api/account/branding`, part of `library-api`):
//! its accent colour, logo and watermark (a text or the logo), set by administrators and shown
//! to visitors (the pages, the logo under `/s/{token}/api/logo`, the
//! watermark in the large previews of preview-only links).

use super::AppState;
use super::error::{ApiError, ApiResult, Conflict, Forbidden, NotFound, Unprocessable};
use super::extract::{ApiJson, Caller};
use crate::routing::{OpenApiRouter, routes};
use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use publinks_domain::DomainError;
use publinks_domain::branding::{Branding, BrandingPatch};

/// The branding routes with their part of the OpenAPI document.
pub fn api() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(get_branding, update_branding)).routes(routes!(get_logo, put_logo, delete_logo))
}

/// The account's branding: accent colour, watermark (text, or the logo) and logo.
#[utoipa::path(
    get,
    path = "/api/account/branding",
    tag = "library",
    responses((status = 200, description = "The account's branding.", body = Branding))
)]
async fn get_branding(State(s): State<AppState>, Caller(actor): Caller) -> Json<Branding> {
    Json(s.library.branding(&actor))
}

/// Changes the accent colour or the watermark: its text, or the logo as the watermark (administrators only).
#[utoipa::path(
    patch,
    path = "/api/account/branding",
    tag = "library",
    request_body = BrandingPatch,
    responses(
        (status = 200, description = "The changed branding.", body = Branding),
        (status = 403, response = Forbidden),
        (status = 422, response = Unprocessable),
    )
)]
async fn update_branding(
    State(s): State<AppState>,
    Caller(actor): Caller,
    ApiJson(patch): ApiJson<BrandingPatch>,
) -> ApiResult<Json<Branding>> {
    Ok(Json(s.library.update_branding(&actor, patch).await?))
}

/// The account's logo as uploaded, for the dashboard's preview (the
/// visitor pages read it through their link instead).
#[utoipa::path(
    get,
    path = "/api/account/branding/logo",
    tag = "library",
    responses(
        (status = 200, description = "The logo (PNG, JPEG or WebP); not kept by the browser.",
            content(("image/png"), ("image/jpeg"), ("image/webp"))),
        (status = 404, response = NotFound),
    )
)]
async fn get_logo(State(s): State<AppState>, Caller(actor): Caller) -> ApiResult<Response> {
    let (bytes, content_type) = s.library.logo(&actor).await?;
    let content_type = HeaderValue::from_str(&content_type).map_err(|_| DomainError::NotFound("logo"))?;
    let headers = [
        (header::CONTENT_TYPE, content_type),
        (header::CACHE_CONTROL, HeaderValue::from_static("private, no-store")),
        (header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")),
    ];
    Ok((headers, bytes).into_response())
}

/// Sets the logo shown on the visitor pages (administrators only): the image's bytes as the body, at most 200 KiB.
#[utoipa::path(
    put,
    path = "/api/account/branding/logo",
    tag = "library",
    request_body(
        description = "A PNG, JPEG or WebP image, at most 200 KiB, sent with its `Content-Type`.",
        content(
            (Vec<u8> = "image/png"),
            (Vec<u8> = "image/jpeg"),
            (Vec<u8> = "image/webp"),
        )
    ),
    responses(
        (status = 200, description = "The branding with the new logo.", body = Branding),
        (status = 403, response = Forbidden),
        (status = 422, response = Unprocessable),
    )
)]
async fn put_logo(
    State(s): State<AppState>,
    Caller(actor): Caller,
    headers: HeaderMap,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> ApiResult<Json<Branding>> {
    let body = body.map_err(|e| match e.status() {
        StatusCode::PAYLOAD_TOO_LARGE => {
            ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", "the logo is over the size limit")
        }
        status => ApiError::new(status, "unreadable_body", "the body could not be read"),
    })?;
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or_default();
    let content_type = content_type.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
    Ok(Json(s.library.set_logo(&actor, &content_type, body.to_vec()).await?))
}

/// Removes the logo (administrators only); not while it is the watermark (`watermark_logo`).
#[utoipa::path(
    delete,
    path = "/api/account/branding/logo",
    tag = "library",
    responses(
        (status = 200, description = "The branding without a logo.", body = Branding),
        (status = 403, response = Forbidden),
        (status = 409, response = Conflict),
    )
)]
async fn delete_logo(State(s): State<AppState>, Caller(actor): Caller) -> ApiResult<Json<Branding>> {
    Ok(Json(s.library.delete_logo(&actor).await?))
}
