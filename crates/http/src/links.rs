//! The `links-api` router: public links as the dashboard manages them.

use super::error::{ApiError, ApiResult, Conflict, Forbidden, NotFound};
use super::extract::{ApiJson, ApiPath, ApiQuery, Caller, QueryNumber};
use super::library::{PageBody, PageLimit, PageQuery, page_request};
use super::{AppState, finish};
use crate::routing::{OpenApiRouter, routes};
use axum::extract::State;
use axum::http::StatusCode;
use axum::{Json, Router};
use publinks_domain::ids::*;
use publinks_domain::links::{LinkPatch, LinkView, NewLink, OpenedFilter};
use publinks_domain::model::*;
use publinks_domain::store::AuditQuery;
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

/// The `links-api` router, with its state.
pub fn router(state: AppState) -> Router {
    finish(routes().with_state(state))
}

/// The routes alone, for merging into the local server.
pub fn routes() -> Router<AppState> {
    api().split_for_parts().0
}

/// The routes with their part of the OpenAPI document: each is registered
/// from its handler's `#[utoipa::path]`.
pub fn api() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_account_links, create_link))
        .routes(routes!(get_link, update_link, delete_link))
        .routes(routes!(file_links))
        .routes(routes!(folder_links))
        .routes(routes!(collection_links))
        .routes(routes!(audit_log))
        .routes(routes!(link_activity))
        .merge(super::webhooks::api())
}

/// A link's activity log, newest first: what visitors did, when, and from
/// which client (a keyed hash of its network, never an address).
#[utoipa::path(
    get,
    path = "/api/links/{link_id}/activity",
    tag = "links",
    params(("link_id" = LinkId, Path), PageQuery),
    responses(
        (status = 200, description = "A page of the link's activity log.", body = PageBody<ActivityEntry>),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
    )
)]
async fn link_activity(
    State(s): State<AppState>,
    Caller(actor): Caller,
    ApiPath(id): ApiPath<LinkId>,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> ApiResult<Json<PageBody<ActivityEntry>>> {
    let page = page_request(q.cursor, q.limit)?;
    Ok(Json(PageBody::from_page(s.links.activity(&actor, id, &page).await?, |e| e)))
}

/// Creates a public link to a file, folder or collection.
#[utoipa::path(
    post,
    path = "/api/links",
    tag = "links",
    request_body = NewLink,
    responses(
        (status = 201, description = "The new link, with its URL.", body = LinkView),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 409, response = Conflict),
    )
)]
async fn create_link(
    State(s): State<AppState>,
    Caller(actor): Caller,
    ApiJson(body): ApiJson<NewLink>,
) -> ApiResult<(StatusCode, Json<LinkView>)> {
    Ok((StatusCode::CREATED, Json(s.links.create(&actor, body).await?)))
}

/// Sort order of the account-wide list.
#[derive(Deserialize, Clone, Copy, Default, ToSchema)]
#[serde(rename_all = "snake_case")]
enum Order {
    #[default]
    Newest,
    Oldest,
}

/// Filters, order and page of the account-wide list.
#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct AccountLinksQuery {
    /// Only links to this kind of item.
    kind: Option<TargetKind>,
    /// Only links in this state.
    state: Option<LinkState>,
    /// `true`: only links nobody has visited yet (each item then carries its `activity`).
    never_opened: Option<bool>,
    /// Only links visited within this many days, up to now (each item then carries its `activity`).
    #[param(value_type = Option<u32>, minimum = 1, maximum = 3650)]
    opened_within_days: Option<QueryNumber<1, 3650>>,
    /// By creation date (default: newest first).
    #[serde(default)]
    #[param(inline)]
    order: Order,
    /// The `next_cursor` of the previous page.
    #[param(min_length = 1)]
    cursor: Option<String>,
    /// How many links a page holds (default 50).
    #[param(value_type = Option<u32>, minimum = 1, maximum = 200)]
    limit: Option<PageLimit>,
}

/// The account's links: administrators, developers and full-access users only.
#[utoipa::path(
    get,
    path = "/api/links",
    tag = "links",
    params(AccountLinksQuery),
    responses(
        (status = 200, description = "A page of the account's links.", body = PageBody<LinkView>),
        (status = 403, response = Forbidden),
    )
)]
async fn list_account_links(
    State(s): State<AppState>,
    Caller(actor): Caller,
    ApiQuery(q): ApiQuery<AccountLinksQuery>,
) -> ApiResult<Json<PageBody<LinkView>>> {
    let page = page_request(q.cursor, q.limit)?;
    let newest_first = matches!(q.order, Order::Newest);
    let opened = match (q.never_opened, q.opened_within_days) {
        (Some(true), Some(_)) => {
            return Err(ApiError::invalid_query(
                Some("opened_within_days"),
                "opened_within_days cannot go with never_opened=true",
            ));
        }
        (_, Some(days)) => Some(OpenedFilter::Since(s.links.now() - chrono::Duration::days(i64::from(days.0)))),
        (Some(true), None) => Some(OpenedFilter::Never),
        (Some(false) | None, None) => None,
    };
    let links = s.links.list_account(&actor, q.kind, q.state, opened, newest_first, &page).await?;
    Ok(Json(PageBody::from_page(links, |l| l)))
}

/// One link.
#[utoipa::path(
    get,
    path = "/api/links/{link_id}",
    tag = "links",
    params(("link_id" = LinkId, Path)),
    responses(
        (status = 200, description = "The link.", body = LinkView),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
    )
)]
async fn get_link(
    State(s): State<AppState>,
    Caller(actor): Caller,
    ApiPath(id): ApiPath<LinkId>,
) -> ApiResult<Json<LinkView>> {
    Ok(Json(s.links.get(&actor, id).await?))
}

/// Changes a link's options; its URL stays the same.
#[utoipa::path(
    patch,
    path = "/api/links/{link_id}",
    tag = "links",
    params(("link_id" = LinkId, Path)),
    request_body = LinkPatch,
    responses(
        (status = 200, description = "The changed link.", body = LinkView),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 409, response = Conflict),
    )
)]
async fn update_link(
    State(s): State<AppState>,
    Caller(actor): Caller,
    ApiPath(id): ApiPath<LinkId>,
    ApiJson(patch): ApiJson<LinkPatch>,
) -> ApiResult<Json<LinkView>> {
    Ok(Json(s.links.update(&actor, id, patch).await?))
}

/// Deletes a link: its URL stops working at once.
#[utoipa::path(
    delete,
    path = "/api/links/{link_id}",
    tag = "links",
    params(("link_id" = LinkId, Path)),
    responses(
        (status = 204, description = "The link is gone."),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 409, response = Conflict),
    )
)]
async fn delete_link(
    State(s): State<AppState>,
    Caller(actor): Caller,
    ApiPath(id): ApiPath<LinkId>,
) -> ApiResult<StatusCode> {
    s.links.delete(&actor, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn target_links(
    s: &AppState,
    actor: &publinks_domain::access::Actor,
    target: Target,
) -> ApiResult<Json<PageBody<LinkView>>> {
    Ok(Json(PageBody { items: s.links.list_for_target(actor, target).await?, next_cursor: None }))
}

/// The links of one file.
#[utoipa::path(
    get,
    path = "/api/files/{file_id}/links",
    tag = "links",
    params(("file_id" = FileId, Path)),
    responses(
        (status = 200, description = "All its links, on one page.", body = PageBody<LinkView>),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
    )
)]
async fn file_links(
    State(s): State<AppState>,
    Caller(actor): Caller,
    ApiPath(id): ApiPath<FileId>,
) -> ApiResult<Json<PageBody<LinkView>>> {
    target_links(&s, &actor, Target::File(id)).await
}

/// The links of one folder.
#[utoipa::path(
    get,
    path = "/api/folders/{folder_id}/links",
    tag = "links",
    params(("folder_id" = FolderId, Path)),
    responses(
        (status = 200, description = "All its links, on one page.", body = PageBody<LinkView>),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
    )
)]
async fn folder_links(
    State(s): State<AppState>,
    Caller(actor): Caller,
    ApiPath(id): ApiPath<FolderId>,
) -> ApiResult<Json<PageBody<LinkView>>> {
    target_links(&s, &actor, Target::Folder(id)).await
}

/// The links of one collection.
#[utoipa::path(
    get,
    path = "/api/collections/{collection_id}/links",
    tag = "links",
    params(("collection_id" = CollectionId, Path)),
    responses(
        (status = 200, description = "All its links, on one page.", body = PageBody<LinkView>),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
    )
)]
async fn collection_links(
    State(s): State<AppState>,
    Caller(actor): Caller,
    ApiPath(id): ApiPath<CollectionId>,
) -> ApiResult<Json<PageBody<LinkView>>> {
    target_links(&s, &actor, Target::Collection(id)).await
}

/// Filters and page of the audit log.
#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct AuditLogQuery {
    /// Only the entries of this link.
    link_id: Option<LinkId>,
    /// With `target_id`: only the entries of links to this item.
    target_kind: Option<TargetKind>,
    /// With `target_kind`: only the entries of links to this item.
    target_id: Option<uuid::Uuid>,
    /// Only this kind of change.
    action: Option<AuditAction>,
    /// The `next_cursor` of the previous page.
    #[param(min_length = 1)]
    cursor: Option<String>,
    /// How many entries a page holds (default 50).
    #[param(value_type = Option<u32>, minimum = 1, maximum = 200)]
    limit: Option<PageLimit>,
}

/// The audit log of links, newest first: administrators and full-access users.
#[utoipa::path(
    get,
    path = "/api/audit",
    tag = "links",
    params(AuditLogQuery),
    responses(
        (status = 200, description = "A page of the audit log.", body = PageBody<AuditEntry>),
        (status = 403, response = Forbidden),
    )
)]
async fn audit_log(
    State(s): State<AppState>,
    Caller(actor): Caller,
    ApiQuery(q): ApiQuery<AuditLogQuery>,
) -> ApiResult<Json<PageBody<AuditEntry>>> {
    let target = match (q.target_kind, q.target_id) {
        (Some(kind), Some(id)) => Some(Target::from_parts(kind, id)),
        (None, None) => None,
        (Some(_), None) => {
            return Err(ApiError::invalid_query(Some("target_id"), "target_id is needed with target_kind"));
        }
        (None, Some(_)) => {
            return Err(ApiError::invalid_query(Some("target_kind"), "target_kind is needed with target_id"));
        }
    };
    let query = AuditQuery { link: q.link_id, target, action: q.action };
    let page = page_request(q.cursor, q.limit)?;
    Ok(Json(PageBody::from_page(s.links.audit(&actor, &query, &page).await?, |e| e)))
}
