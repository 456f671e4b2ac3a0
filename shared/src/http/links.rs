//! The `links-api` router: public links as the dashboard manages them.

use super::error::ApiResult;
use super::extract::{ApiJson, ApiPath, ApiQuery, Caller};
use super::library::{PageBody, PageQuery};
use super::{AppState, finish};
use crate::domain::links::{LinkPatch, LinkView, NewLink};
use crate::domain::model::*;
use crate::domain::rules;
use crate::ids::*;
use crate::store::{AuditQuery, Cursor, PageRequest};
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;

/// The `links-api` router, with its state.
pub fn router(state: AppState) -> Router {
    finish(routes().with_state(state))
}

/// The routes alone, for merging into the local server.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/links", get(list_account_links).post(create_link))
        .route("/api/links/{link_id}", get(get_link).patch(update_link).delete(delete_link))
        .route("/api/files/{file_id}/links", get(file_links))
        .route("/api/folders/{folder_id}/links", get(folder_links))
        .route("/api/collections/{collection_id}/links", get(collection_links))
        .route("/api/audit", get(audit_log))
}

async fn create_link(
    State(s): State<AppState>,
    Caller(actor): Caller,
    ApiJson(body): ApiJson<NewLink>,
) -> ApiResult<(StatusCode, Json<LinkView>)> {
    Ok((StatusCode::CREATED, Json(s.links.create(&actor, body).await?)))
}

/// Sort order of the account-wide list.
#[derive(Deserialize, Clone, Copy, Default)]
#[serde(rename_all = "snake_case")]
enum Order {
    #[default]
    Newest,
    Oldest,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AccountLinksQuery {
    kind: Option<TargetKind>,
    state: Option<LinkState>,
    #[serde(default)]
    order: Order,
    cursor: Option<String>,
    limit: Option<u32>,
}

async fn list_account_links(
    State(s): State<AppState>,
    Caller(actor): Caller,
    ApiQuery(q): ApiQuery<AccountLinksQuery>,
) -> ApiResult<Json<PageBody<LinkView>>> {
    let page = PageQuery { cursor: q.cursor, limit: q.limit }.request()?;
    let newest_first = matches!(q.order, Order::Newest);
    let links = s.links.list_account(&actor, q.kind, q.state, newest_first, &page).await?;
    Ok(Json(PageBody::from_page(links, |l| l)))
}

async fn get_link(
    State(s): State<AppState>,
    Caller(actor): Caller,
    ApiPath(id): ApiPath<LinkId>,
) -> ApiResult<Json<LinkView>> {
    Ok(Json(s.links.get(&actor, id).await?))
}

async fn update_link(
    State(s): State<AppState>,
    Caller(actor): Caller,
    ApiPath(id): ApiPath<LinkId>,
    ApiJson(patch): ApiJson<LinkPatch>,
) -> ApiResult<Json<LinkView>> {
    Ok(Json(s.links.update(&actor, id, patch).await?))
}

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
    actor: &crate::domain::access::Actor,
    target: Target,
) -> ApiResult<Json<PageBody<LinkView>>> {
    Ok(Json(PageBody { items: s.links.list_for_target(actor, target).await?, next_cursor: None }))
}

async fn file_links(
    State(s): State<AppState>,
    Caller(actor): Caller,
    ApiPath(id): ApiPath<FileId>,
) -> ApiResult<Json<PageBody<LinkView>>> {
    target_links(&s, &actor, Target::File(id)).await
}

async fn folder_links(
    State(s): State<AppState>,
    Caller(actor): Caller,
    ApiPath(id): ApiPath<FolderId>,
) -> ApiResult<Json<PageBody<LinkView>>> {
    target_links(&s, &actor, Target::Folder(id)).await
}

async fn collection_links(
    State(s): State<AppState>,
    Caller(actor): Caller,
    ApiPath(id): ApiPath<CollectionId>,
) -> ApiResult<Json<PageBody<LinkView>>> {
    target_links(&s, &actor, Target::Collection(id)).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AuditLogQuery {
    link_id: Option<LinkId>,
    target_kind: Option<TargetKind>,
    target_id: Option<uuid::Uuid>,
    action: Option<AuditAction>,
    cursor: Option<String>,
    limit: Option<u32>,
}

async fn audit_log(
    State(s): State<AppState>,
    Caller(actor): Caller,
    ApiQuery(q): ApiQuery<AuditLogQuery>,
) -> ApiResult<Json<PageBody<AuditEntry>>> {
    let target = match (q.target_kind, q.target_id) {
        (Some(kind), Some(id)) => Some(Target::from_parts(kind, id)),
        (None, None) => None,
        _ => {
            return Err(
                crate::domain::DomainError::invalid("target_id", "target_kind and target_id go together").into()
            );
        }
    };
    let query = AuditQuery { link: q.link_id, target, action: q.action };
    let page = PageRequest { cursor: q.cursor.map(Cursor), limit: rules::page_limit(q.limit)? };
    Ok(Json(PageBody::from_page(s.links.audit(&actor, &query, &page).await?, |e| e)))
}
