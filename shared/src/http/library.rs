//! The `library-api` router: accounts, users, grants, folders, files,
//! versions, uploads and collections under `/api`. Handlers parse, call the
//! domain (which checks access) and shape the answer.

use super::error::ApiResult;
use super::extract::{ApiJson, ApiPath, ApiQuery, Caller};
use super::{AppState, finish};
use crate::domain::archives::{AccountArchiveView, ArchiveRequest, Requester};
use crate::domain::library::{FilePatch, NewUser, Removed, UploadRequest, UploadTicket};
use crate::domain::model::*;
use crate::domain::rules;
use crate::ids::*;
use crate::store::{Cursor, Page, PageRequest};
use axum::extract::State;
use axum::http::StatusCode;
use axum::http::header::LOCATION;
use axum::response::IntoResponse;
use axum::routing::{get, post, put};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize};
use std::collections::BTreeMap;

/// The `library-api` router, with its state.
pub fn router(state: AppState) -> Router {
    finish(routes().with_state(state))
}

/// The routes alone, for merging into the local server.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/me", get(me))
        .route("/api/users", get(list_users).post(create_user))
        .route("/api/users/{user_id}", get(get_user).patch(change_role).delete(delete_user))
        .route("/api/users/{user_id}/grants", get(list_grants).put(set_grant))
        .route("/api/users/{user_id}/grants/{kind}/{target_id}", axum::routing::delete(remove_grant))
        .route("/api/folders", post(create_folder))
        .route("/api/folders/{folder_id}", get(get_folder).patch(rename_folder).delete(delete_folder))
        .route("/api/folders/{folder_id}/move", post(move_folder))
        .route("/api/folders/{folder_id}/folders", get(list_subfolders))
        .route("/api/folders/{folder_id}/files", get(list_files))
        .route("/api/files/{file_id}", get(get_file).patch(update_file).delete(delete_file))
        .route("/api/files/{file_id}/move", post(move_file))
        .route("/api/files/{file_id}/versions", get(list_versions))
        .route("/api/files/{file_id}/download", get(download_file))
        .route("/api/files/{file_id}/comments", post(add_comment))
        .route("/api/downloads", get(list_downloads))
        .route("/api/archives", get(list_archives).post(create_archive))
        .route("/api/archives/{archive_id}", get(get_archive))
        .route("/api/archives/{archive_id}/download", get(download_archive))
        .route("/api/uploads", post(start_upload))
        .route("/api/uploads/{upload_id}/complete", post(complete_upload))
        .route("/api/collections", get(list_collections).post(create_collection))
        .route(
            "/api/collections/{collection_id}",
            get(get_collection).patch(rename_collection).delete(delete_collection),
        )
        .route("/api/collections/{collection_id}/files", get(collection_files))
        .route(
            "/api/collections/{collection_id}/files/{file_id}",
            put(add_to_collection).delete(remove_from_collection),
        )
}

// ---- shapes --------------------------------------------------------------

/// `?cursor=...&limit=...` on every list.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PageQuery {
    pub cursor: Option<String>,
    pub limit: Option<u32>,
}

impl PageQuery {
    /// The domain's page request, with the limit checked.
    pub fn request(self) -> ApiResult<PageRequest> {
        Ok(PageRequest { cursor: self.cursor.map(Cursor), limit: rules::page_limit(self.limit)? })
    }
}

/// One page of a list, with the cursor of the next (absent on the last page).
#[derive(Serialize)]
pub struct PageBody<T> {
    pub items: Vec<T>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

impl<T> PageBody<T> {
    /// Converts a store page, shaping each item.
    pub fn from_page<U>(page: Page<U>, shape: impl Fn(U) -> T) -> Self {
        PageBody { items: page.items.into_iter().map(shape).collect(), next_cursor: page.next.map(|c| c.0) }
    }
}

/// A folder id in a path, or `root` for the top of the tree.
#[derive(Clone, Copy)]
pub struct FolderRef(pub Option<FolderId>);

impl<'de> Deserialize<'de> for FolderRef {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        if s == "root" {
            return Ok(FolderRef(None));
        }
        s.parse().map(|id| FolderRef(Some(id))).map_err(|_| serde::de::Error::custom("expected a folder id or 'root'"))
    }
}

/// A version as the dashboard sees it (no storage key).
#[derive(Serialize)]
pub struct VersionView {
    pub number: u32,
    pub content_type: String,
    pub size: u64,
    pub crc32: u32,
    pub sha256: String,
    pub width: Option<u32>,
    pub height: Option<u32>,
    pub embedded_metadata: BTreeMap<String, String>,
    pub uploaded_by: UserId,
    pub uploaded_at: DateTime<Utc>,
}

impl From<FileVersion> for VersionView {
    fn from(v: FileVersion) -> Self {
        VersionView {
            number: v.number,
            content_type: v.content_type,
            size: v.size,
            crc32: v.crc32,
            sha256: v.sha256,
            width: v.width,
            height: v.height,
            embedded_metadata: v.embedded_metadata,
            uploaded_by: v.uploaded_by,
            uploaded_at: v.uploaded_at,
        }
    }
}

/// A file as the dashboard sees it: everything but storage internals.
#[derive(Serialize)]
pub struct FileView {
    pub id: FileId,
    pub folder_id: Option<FolderId>,
    pub name: String,
    pub owner_id: UserId,
    pub tags: Vec<String>,
    pub ai_tags: Vec<String>,
    pub custom_coordinates: Vec<Coordinates>,
    pub custom_metadata: BTreeMap<String, String>,
    pub comments: Vec<Comment>,
    pub private: bool,
    pub published: bool,
    pub current_version: VersionView,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<File> for FileView {
    fn from(f: File) -> Self {
        FileView {
            id: f.id,
            folder_id: f.folder_id,
            name: f.name,
            owner_id: f.owner_id,
            tags: f.tags,
            ai_tags: f.ai_tags,
            custom_coordinates: f.custom_coordinates,
            custom_metadata: f.custom_metadata,
            comments: f.comments,
            private: f.private,
            published: f.published,
            current_version: f.current.into(),
            created_at: f.created_at,
            updated_at: f.updated_at,
        }
    }
}

// ---- me, users, grants ---------------------------------------------------

#[derive(Serialize)]
struct MeBody {
    user: User,
    account: Account,
    grants: Vec<Grant>,
}

async fn me(State(s): State<AppState>, Caller(actor): Caller) -> ApiResult<Json<MeBody>> {
    let grants = s.library.grants(&actor, actor.user.id).await?;
    Ok(Json(MeBody { user: actor.user, account: actor.account, grants }))
}

async fn list_users(
    State(s): State<AppState>,
    Caller(actor): Caller,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> ApiResult<Json<PageBody<User>>> {
    let page = s.library.list_users(&actor, &q.request()?).await?;
    Ok(Json(PageBody::from_page(page, |u| u)))
}

async fn create_user(
    State(s): State<AppState>,
    Caller(actor): Caller,
    ApiJson(body): ApiJson<NewUser>,
) -> ApiResult<(StatusCode, Json<User>)> {
    Ok((StatusCode::CREATED, Json(s.library.create_user(&actor, body).await?)))
}

async fn get_user(
    State(s): State<AppState>,
    Caller(actor): Caller,
    ApiPath(id): ApiPath<UserId>,
) -> ApiResult<Json<User>> {
    Ok(Json(s.library.user(&actor, id).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RoleChange {
    role: Role,
}

async fn change_role(
    State(s): State<AppState>,
    Caller(actor): Caller,
    ApiPath(id): ApiPath<UserId>,
    ApiJson(body): ApiJson<RoleChange>,
) -> ApiResult<Json<User>> {
    Ok(Json(s.library.change_role(&actor, id, body.role).await?))
}

async fn delete_user(
    State(s): State<AppState>,
    Caller(actor): Caller,
    ApiPath(id): ApiPath<UserId>,
) -> ApiResult<StatusCode> {
    s.library.delete_user(&actor, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn list_grants(
    State(s): State<AppState>,
    Caller(actor): Caller,
    ApiPath(id): ApiPath<UserId>,
) -> ApiResult<Json<PageBody<Grant>>> {
    let grants = s.library.grants(&actor, id).await?;
    Ok(Json(PageBody { items: grants, next_cursor: None }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct GrantBody {
    target: Target,
    level: Permission,
}

async fn set_grant(
    State(s): State<AppState>,
    Caller(actor): Caller,
    ApiPath(id): ApiPath<UserId>,
    ApiJson(body): ApiJson<GrantBody>,
) -> ApiResult<Json<Grant>> {
    Ok(Json(s.library.set_grant(&actor, id, body.target, body.level).await?))
}

async fn remove_grant(
    State(s): State<AppState>,
    Caller(actor): Caller,
    ApiPath((user, kind, target)): ApiPath<(UserId, TargetKind, uuid::Uuid)>,
) -> ApiResult<StatusCode> {
    s.library.remove_grant(&actor, user, Target::from_parts(kind, target)).await?;
    Ok(StatusCode::NO_CONTENT)
}

// ---- folders -------------------------------------------------------------

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewFolder {
    name: String,
    parent_id: Option<FolderId>,
}

async fn create_folder(
    State(s): State<AppState>,
    Caller(actor): Caller,
    ApiJson(body): ApiJson<NewFolder>,
) -> ApiResult<(StatusCode, Json<Folder>)> {
    Ok((StatusCode::CREATED, Json(s.library.create_folder(&actor, body.parent_id, &body.name).await?)))
}

#[derive(Serialize)]
struct FolderBody {
    #[serde(flatten)]
    folder: Folder,
    /// The folders above, top first.
    path: Vec<Folder>,
}

async fn get_folder(
    State(s): State<AppState>,
    Caller(actor): Caller,
    ApiPath(id): ApiPath<FolderId>,
) -> ApiResult<Json<FolderBody>> {
    let (folder, path) = s.library.folder(&actor, id).await?;
    Ok(Json(FolderBody { folder, path }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Rename {
    name: String,
}

async fn rename_folder(
    State(s): State<AppState>,
    Caller(actor): Caller,
    ApiPath(id): ApiPath<FolderId>,
    ApiJson(body): ApiJson<Rename>,
) -> ApiResult<Json<Folder>> {
    Ok(Json(s.library.rename_folder(&actor, id, &body.name).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FolderMove {
    parent_id: Option<FolderId>,
}

async fn move_folder(
    State(s): State<AppState>,
    Caller(actor): Caller,
    ApiPath(id): ApiPath<FolderId>,
    ApiJson(body): ApiJson<FolderMove>,
) -> ApiResult<Json<Folder>> {
    Ok(Json(s.library.move_folder(&actor, id, body.parent_id).await?))
}

async fn delete_folder(
    State(s): State<AppState>,
    Caller(actor): Caller,
    ApiPath(id): ApiPath<FolderId>,
) -> ApiResult<Json<Removed>> {
    Ok(Json(s.library.delete_folder(&actor, id).await?))
}

async fn list_subfolders(
    State(s): State<AppState>,
    Caller(actor): Caller,
    ApiPath(folder): ApiPath<FolderRef>,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> ApiResult<Json<PageBody<Folder>>> {
    let page = s.library.subfolders(&actor, folder.0, &q.request()?).await?;
    Ok(Json(PageBody::from_page(page, |f| f)))
}

async fn list_files(
    State(s): State<AppState>,
    Caller(actor): Caller,
    ApiPath(folder): ApiPath<FolderRef>,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> ApiResult<Json<PageBody<FileView>>> {
    let page = s.library.files_in(&actor, folder.0, &q.request()?).await?;
    Ok(Json(PageBody::from_page(page, FileView::from)))
}

// ---- files ---------------------------------------------------------------

async fn get_file(
    State(s): State<AppState>,
    Caller(actor): Caller,
    ApiPath(id): ApiPath<FileId>,
) -> ApiResult<Json<FileView>> {
    Ok(Json(s.library.file(&actor, id).await?.into()))
}

async fn update_file(
    State(s): State<AppState>,
    Caller(actor): Caller,
    ApiPath(id): ApiPath<FileId>,
    ApiJson(patch): ApiJson<FilePatch>,
) -> ApiResult<Json<FileView>> {
    Ok(Json(s.library.update_file(&actor, id, patch).await?.into()))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileMove {
    folder_id: Option<FolderId>,
}

async fn move_file(
    State(s): State<AppState>,
    Caller(actor): Caller,
    ApiPath(id): ApiPath<FileId>,
    ApiJson(body): ApiJson<FileMove>,
) -> ApiResult<Json<FileView>> {
    Ok(Json(s.library.move_file(&actor, id, body.folder_id).await?.into()))
}

async fn delete_file(
    State(s): State<AppState>,
    Caller(actor): Caller,
    ApiPath(id): ApiPath<FileId>,
) -> ApiResult<StatusCode> {
    s.library.delete_file(&actor, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn list_versions(
    State(s): State<AppState>,
    Caller(actor): Caller,
    ApiPath(id): ApiPath<FileId>,
) -> ApiResult<Json<PageBody<VersionView>>> {
    let versions = s.library.versions(&actor, id).await?;
    Ok(Json(PageBody { items: versions.into_iter().map(Into::into).collect(), next_cursor: None }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DownloadQuery {
    version: Option<u32>,
}

async fn download_file(
    State(s): State<AppState>,
    Caller(actor): Caller,
    ApiPath(id): ApiPath<FileId>,
    ApiQuery(q): ApiQuery<DownloadQuery>,
) -> ApiResult<impl IntoResponse> {
    let url = s.library.download_url(&actor, id, q.version).await?;
    Ok((StatusCode::FOUND, [(LOCATION, url)]))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewComment {
    text: String,
}

async fn add_comment(
    State(s): State<AppState>,
    Caller(actor): Caller,
    ApiPath(id): ApiPath<FileId>,
    ApiJson(body): ApiJson<NewComment>,
) -> ApiResult<(StatusCode, Json<Comment>)> {
    Ok((StatusCode::CREATED, Json(s.library.add_comment(&actor, id, &body.text).await?)))
}

/// A download as the dashboard lists it.
#[derive(Serialize)]
pub struct DownloadView {
    pub id: DownloadId,
    pub at: DateTime<Utc>,
    pub file_id: FileId,
    pub file_name: String,
    pub version: u32,
    pub size: u64,
    /// Made by a visitor through a public link (which one in `link_id`), or by a signed-in user (`user_id`).
    pub via_public_link: bool,
    pub link_id: Option<LinkId>,
    pub user_id: Option<UserId>,
}

impl From<DownloadRecord> for DownloadView {
    fn from(d: DownloadRecord) -> Self {
        let (link_id, user_id) = d.by.link_or_user();
        DownloadView {
            id: d.id,
            at: d.at,
            file_id: d.file_id,
            file_name: d.file_name,
            version: d.version,
            size: d.size,
            via_public_link: link_id.is_some(),
            link_id,
            user_id,
        }
    }
}

async fn list_downloads(
    State(s): State<AppState>,
    Caller(actor): Caller,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> ApiResult<Json<PageBody<DownloadView>>> {
    Ok(Json(PageBody::from_page(s.library.downloads(&actor, &q.request()?).await?, DownloadView::from)))
}

// ---- archives ------------------------------------------------------------

/// A ZIP of a folder (with everything under it), a collection, or files.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ArchiveBody {
    folder_id: Option<FolderId>,
    collection_id: Option<CollectionId>,
    file_ids: Option<Vec<FileId>>,
}

async fn create_archive(
    State(s): State<AppState>,
    Caller(actor): Caller,
    ApiJson(body): ApiJson<ArchiveBody>,
) -> ApiResult<impl IntoResponse> {
    let request = ArchiveRequest::parse(body.folder_id, body.collection_id, body.file_ids, None)?;
    let contents = s.library.archive_contents(&actor, &request, s.archives.settings()).await?;
    let job = s.archives.submit(&Requester::user(&actor), contents).await?;
    let location = format!("/api/archives/{}", job.id);
    Ok((StatusCode::ACCEPTED, [(LOCATION, location)], Json(AccountArchiveView::of(&job, Utc::now()))))
}

async fn list_archives(
    State(s): State<AppState>,
    Caller(actor): Caller,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> ApiResult<Json<PageBody<AccountArchiveView>>> {
    let now = Utc::now();
    let page = s.archives.account_jobs(&actor, &q.request()?).await?;
    Ok(Json(PageBody::from_page(page, |j| AccountArchiveView::of(&j, now))))
}

async fn get_archive(
    State(s): State<AppState>,
    Caller(actor): Caller,
    ApiPath(id): ApiPath<ArchiveId>,
) -> ApiResult<Json<AccountArchiveView>> {
    Ok(Json(AccountArchiveView::of(&s.archives.user_job(&actor, id).await?, Utc::now())))
}

async fn download_archive(
    State(s): State<AppState>,
    Caller(actor): Caller,
    ApiPath(id): ApiPath<ArchiveId>,
) -> ApiResult<impl IntoResponse> {
    let job = s.archives.user_job(&actor, id).await?;
    Ok((StatusCode::FOUND, [(LOCATION, s.archives.download_url(&job).await?)]))
}

// ---- uploads -------------------------------------------------------------

async fn start_upload(
    State(s): State<AppState>,
    Caller(actor): Caller,
    ApiJson(body): ApiJson<UploadRequest>,
) -> ApiResult<(StatusCode, Json<UploadTicket>)> {
    Ok((StatusCode::CREATED, Json(s.library.start_upload(&actor, body).await?)))
}

async fn complete_upload(
    State(s): State<AppState>,
    Caller(actor): Caller,
    ApiPath(id): ApiPath<UploadId>,
) -> ApiResult<(StatusCode, Json<FileView>)> {
    Ok((StatusCode::CREATED, Json(s.library.complete_upload(&actor, id).await?.into())))
}

// ---- collections ---------------------------------------------------------

async fn list_collections(
    State(s): State<AppState>,
    Caller(actor): Caller,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> ApiResult<Json<PageBody<Collection>>> {
    let page = s.library.collections(&actor, &q.request()?).await?;
    Ok(Json(PageBody::from_page(page, |c| c)))
}

async fn create_collection(
    State(s): State<AppState>,
    Caller(actor): Caller,
    ApiJson(body): ApiJson<Rename>,
) -> ApiResult<(StatusCode, Json<Collection>)> {
    Ok((StatusCode::CREATED, Json(s.library.create_collection(&actor, &body.name).await?)))
}

async fn get_collection(
    State(s): State<AppState>,
    Caller(actor): Caller,
    ApiPath(id): ApiPath<CollectionId>,
) -> ApiResult<Json<Collection>> {
    Ok(Json(s.library.collection(&actor, id).await?))
}

async fn rename_collection(
    State(s): State<AppState>,
    Caller(actor): Caller,
    ApiPath(id): ApiPath<CollectionId>,
    ApiJson(body): ApiJson<Rename>,
) -> ApiResult<Json<Collection>> {
    Ok(Json(s.library.rename_collection(&actor, id, &body.name).await?))
}

async fn delete_collection(
    State(s): State<AppState>,
    Caller(actor): Caller,
    ApiPath(id): ApiPath<CollectionId>,
) -> ApiResult<StatusCode> {
    s.library.delete_collection(&actor, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn collection_files(
    State(s): State<AppState>,
    Caller(actor): Caller,
    ApiPath(id): ApiPath<CollectionId>,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> ApiResult<Json<PageBody<FileView>>> {
    let page = s.library.collection_files(&actor, id, &q.request()?).await?;
    Ok(Json(PageBody::from_page(page, FileView::from)))
}

async fn add_to_collection(
    State(s): State<AppState>,
    Caller(actor): Caller,
    ApiPath((id, file)): ApiPath<(CollectionId, FileId)>,
) -> ApiResult<(StatusCode, Json<CollectionItem>)> {
    Ok((StatusCode::CREATED, Json(s.library.add_to_collection(&actor, id, file).await?)))
}

async fn remove_from_collection(
    State(s): State<AppState>,
    Caller(actor): Caller,
    ApiPath((id, file)): ApiPath<(CollectionId, FileId)>,
) -> ApiResult<StatusCode> {
    s.library.remove_from_collection(&actor, id, file).await?;
    Ok(StatusCode::NO_CONTENT)
}
