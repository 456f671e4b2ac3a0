//! The account's webhooks, as administrators manage them (served by `links-api`).

use super::AppState;
use super::error::{ApiResult, Conflict, Forbidden, NotFound};
use super::extract::{ApiJson, ApiPath, ApiQuery, Caller};
use super::library::PageLimit;
use crate::routing::{OpenApiRouter, routes};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use publinks_domain::ids::WebhookId;
use publinks_domain::webhooks::{Delivery, NewWebhook, WebhookPatch, WebhookView};
use serde::Deserialize;
use utoipa::IntoParams;

/// The webhook routes with their part of the OpenAPI document.
pub fn api() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_webhooks, create_webhook))
        .routes(routes!(get_webhook, update_webhook, delete_webhook))
        .routes(routes!(webhook_deliveries))
}

/// Registers a webhook: its secret is in this answer only.
#[utoipa::path(
    post,
    path = "/api/account/webhooks",
    tag = "webhooks",
    request_body = NewWebhook,
    responses(
        (status = 201, description = "The new webhook, with its secret (shown this once).", body = WebhookView),
        (status = 403, response = Forbidden),
        (status = 409, response = Conflict),
    )
)]
async fn create_webhook(
    State(s): State<AppState>,
    Caller(actor): Caller,
    ApiJson(body): ApiJson<NewWebhook>,
) -> ApiResult<(StatusCode, Json<WebhookView>)> {
    Ok((StatusCode::CREATED, Json(s.webhooks.create(&actor, body).await?)))
}

/// The account's webhooks (without their secrets).
#[utoipa::path(
    get,
    path = "/api/account/webhooks",
    tag = "webhooks",
    responses(
        (status = 200, description = "The account's webhooks, oldest first.", body = Vec<WebhookView>),
        (status = 403, response = Forbidden),
    )
)]
async fn list_webhooks(State(s): State<AppState>, Caller(actor): Caller) -> ApiResult<Json<Vec<WebhookView>>> {
    Ok(Json(s.webhooks.list(&actor).await?))
}

/// One webhook (without its secret).
#[utoipa::path(
    get,
    path = "/api/account/webhooks/{webhook_id}",
    tag = "webhooks",
    params(("webhook_id" = WebhookId, Path)),
    responses(
        (status = 200, description = "The webhook.", body = WebhookView),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
    )
)]
async fn get_webhook(
    State(s): State<AppState>,
    Caller(actor): Caller,
    ApiPath(id): ApiPath<WebhookId>,
) -> ApiResult<Json<WebhookView>> {
    Ok(Json(s.webhooks.get(&actor, id).await?))
}

/// Changes a webhook's URL or events, or rotates its secret.
#[utoipa::path(
    patch,
    path = "/api/account/webhooks/{webhook_id}",
    tag = "webhooks",
    params(("webhook_id" = WebhookId, Path)),
    request_body = WebhookPatch,
    responses(
        (status = 200, description = "The changed webhook (with its new secret if rotated).", body = WebhookView),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 409, response = Conflict),
    )
)]
async fn update_webhook(
    State(s): State<AppState>,
    Caller(actor): Caller,
    ApiPath(id): ApiPath<WebhookId>,
    ApiJson(patch): ApiJson<WebhookPatch>,
) -> ApiResult<Json<WebhookView>> {
    Ok(Json(s.webhooks.update(&actor, id, patch).await?))
}

/// Deletes a webhook; deliveries still pending are given up.
#[utoipa::path(
    delete,
    path = "/api/account/webhooks/{webhook_id}",
    tag = "webhooks",
    params(("webhook_id" = WebhookId, Path)),
    responses(
        (status = 204, description = "Deleted."),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
    )
)]
async fn delete_webhook(
    State(s): State<AppState>,
    Caller(actor): Caller,
    ApiPath(id): ApiPath<WebhookId>,
) -> ApiResult<StatusCode> {
    s.webhooks.delete(&actor, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// How many deliveries to list.
#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct DeliveriesQuery {
    /// At most this many, newest first (default 50).
    #[param(value_type = Option<u32>, minimum = 1, maximum = 200)]
    limit: Option<PageLimit>,
}

/// A webhook's latest deliveries: state, attempts, last status or error, next attempt.
#[utoipa::path(
    get,
    path = "/api/account/webhooks/{webhook_id}/deliveries",
    tag = "webhooks",
    params(("webhook_id" = WebhookId, Path), DeliveriesQuery),
    responses(
        (status = 200, description = "The latest deliveries, newest first.", body = Vec<Delivery>),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
    )
)]
async fn webhook_deliveries(
    State(s): State<AppState>,
    Caller(actor): Caller,
    ApiPath(id): ApiPath<WebhookId>,
    ApiQuery(q): ApiQuery<DeliveriesQuery>,
) -> ApiResult<Json<Vec<Delivery>>> {
    let limit = q.limit.map_or(50, |l| l.0);
    Ok(Json(s.webhooks.deliveries(&actor, id, limit).await?))
}
