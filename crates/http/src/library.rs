//! The `library-api` router: accounts, users, grants, folders, files,
//! versions, uploads and collections under `/api`. Handlers parse, call the
//! domain (which checks access) and shape the answer.

use super::error::{ApiError, ApiResult, ArchiveExpired, Conflict, Forbidden, NotFound, TooManyRequests};
use super::extract::{ApiJson, ApiPath, ApiQuery, Caller, QueryNumber};
use super::{AppState, finish};
use crate::routing::{OpenApiRouter, routes};
use axum::extract::State;
use axum::http::StatusCode;
use axum::http::header::LOCATION;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use publinks_domain::archives::{AccountArchiveView, ArchiveRequest, Requester};
use publinks_domain::ids::*;
use publinks_domain::library::{AccountPatch, FilePatch, NewUser};
use publinks_domain::model::*;
use publinks_domain::rules;
use publinks_domain::store::{Cursor, Page, PageRequest};
use publinks_domain::uploads::{Completion, UploadRequest, UploadTicket};
use serde::{Deserialize, Deserializer, Serialize};
use std::collections::BTreeMap;
use utoipa::openapi::schema::{AnyOfBuilder, KnownFormat, ObjectBuilder, SchemaFormat, Type};
use utoipa::openapi::{RefOr, Schema};
use utoipa::{IntoParams, ToSchema};

/// The `library-api` router, with its state. It also answers with the
/// OpenAPI document at [`SPEC_PATH`](super::openapi::SPEC_PATH): in AWS this
/// function serves `/api/*`, behind the same JWT authorizer.
pub fn router(state: AppState) -> Router {
    finish(routes().route(super::openapi::SPEC_PATH, get(spec)).with_state(state))
}

/// The routes alone, for merging into the local server.
pub fn routes() -> Router<AppState> {
    api().split_for_parts().0
}

/// The routes with their part of the OpenAPI document: each is registered
/// from its handler's `#[utoipa::path]`.
pub fn api() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(me))
        .routes(routes!(get_account, update_account))
        .merge(super::branding::api())
        .routes(routes!(list_users, create_user))
        .routes(routes!(get_user, change_role, delete_user))
        .routes(routes!(list_grants, set_grant))
        .routes(routes!(remove_grant))
        .routes(routes!(create_folder))
        .routes(routes!(get_folder, rename_folder, delete_folder))
        .routes(routes!(move_folder))
        .routes(routes!(get_folder_deletion))
        .routes(routes!(list_subfolders))
        .routes(routes!(list_files))
        .routes(routes!(get_file, update_file, delete_file))
        .routes(routes!(move_file))
        .routes(routes!(list_versions))
        .routes(routes!(download_file))
        .routes(routes!(add_comment))
        .routes(routes!(list_downloads))
        .routes(routes!(list_archives, create_archive))
        .routes(routes!(get_archive))
        .routes(routes!(download_archive))
        .routes(routes!(start_upload))
        .routes(routes!(get_upload))
        .routes(routes!(complete_upload))
        .routes(routes!(list_collections, create_collection))
        .routes(routes!(get_collection, rename_collection, delete_collection))
        .routes(routes!(collection_files))
        .routes(routes!(add_to_collection, remove_from_collection))
}

/// The OpenAPI document, serialised once.
async fn spec() -> impl IntoResponse {
    #[cfg(any(feature = "openapi", test))]
    let spec = {
        static SPEC: std::sync::LazyLock<String> =
            std::sync::LazyLock::new(|| super::openapi::openapi().to_json().expect("the document serialises"));
        SPEC.as_str()
    };
    // The functions serve the committed copy, which a unit test
    // (`openapi::tests::committed_document_is_current`) keeps equal to the
    // generated document: the code that generates it stays out of the binary.
    #[cfg(not(any(feature = "openapi", test)))]
    let spec = include_str!("../../../api/openapi.json");
    ([(axum::http::header::CONTENT_TYPE, "application/json")], spec)
}

// ---- shapes --------------------------------------------------------------

/// `?cursor=...&limit=...` on every list.
#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// The `next_cursor` of the previous page.
    #[param(min_length = 1)]
    pub cursor: Option<String>,
    /// How many items a page holds (default 50).
    #[param(value_type = Option<u32>, minimum = 1, maximum = 200)]
    pub limit: Option<PageLimit>,
}

/// The `limit` of a page, as the query string gives it.
pub type PageLimit = QueryNumber<1, { rules::MAX_PAGE_LIMIT }>;

impl PageQuery {
    /// The domain's page request.
    pub fn request(self) -> ApiResult<PageRequest> {
        page_request(self.cursor, self.limit)
    }
}

/// A page request from the query's `cursor` and `limit`.
pub fn page_request(cursor: Option<String>, limit: Option<PageLimit>) -> ApiResult<PageRequest> {
    let limit = rules::page_limit(limit.map(|l| l.0)).map_err(ApiError::in_query)?;
    Ok(PageRequest { cursor: cursor.map(Cursor), limit })
}

/// One page of a list, with the cursor of the next (absent on the last page).
#[derive(Serialize, ToSchema)]
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

impl utoipa::PartialSchema for FolderRef {
    fn schema() -> RefOr<Schema> {
        let id =
            ObjectBuilder::new().schema_type(Type::String).format(Some(SchemaFormat::KnownFormat(KnownFormat::Uuid)));
        let root = ObjectBuilder::new().schema_type(Type::String).enum_values(Some(["root"]));
        AnyOfBuilder::new()
            .item(id)
            .item(root)
            .description(Some("A folder id, or `root`: the top of the tree, or what a share link shares."))
            .into()
    }
}

impl ToSchema for FolderRef {}

/// A version as the dashboard sees it (no storage key).
#[derive(Serialize, ToSchema)]
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
#[derive(Serialize, ToSchema)]
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

/// The caller, their account and their grants.
#[derive(Serialize, ToSchema)]
struct MeBody {
    user: User,
    account: Account,
    grants: Vec<Grant>,
}

/// The caller, their account and their grants.
#[utoipa::path(
    get,
    path = "/api/me",
    tag = "library",
    responses((status = 200, description = "The caller, their account and their grants.", body = MeBody))
)]
async fn me(State(s): State<AppState>, Caller(actor): Caller) -> ApiResult<Json<MeBody>> {
    let grants = s.library.grants(&actor, actor.user.id).await?;
    Ok(Json(MeBody { user: actor.user, account: actor.account, grants }))
}

/// The caller's account.
#[utoipa::path(
    get,
    path = "/api/account",
    tag = "library",
    responses((status = 200, description = "The caller's account, with the defaults of its new links.", body = Account))
)]
async fn get_account(Caller(actor): Caller) -> Json<Account> {
    Json(actor.account)
}

/// Changes the caller's account (administrators only): the options new
/// links get when their create leaves them out.
#[utoipa::path(
    patch,
    path = "/api/account",
    tag = "library",
    request_body = AccountPatch,
    responses(
        (status = 200, description = "The changed account.", body = Account),
        (status = 403, response = Forbidden),
        (status = 409, response = Conflict),
    )
)]
async fn update_account(
    State(s): State<AppState>,
    Caller(actor): Caller,
    ApiJson(patch): ApiJson<AccountPatch>,
) -> ApiResult<Json<Account>> {
    Ok(Json(s.library.update_account(&actor, patch).await?))
}

/// The account's users (administrators only).
#[utoipa::path(
    get,
    path = "/api/users",
    tag = "library",
    params(PageQuery),
    responses(
        (status = 200, description = "A page of the account's users.", body = PageBody<User>),
        (status = 403, response = Forbidden),
    )
)]
async fn list_users(
    State(s): State<AppState>,
    Caller(actor): Caller,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> ApiResult<Json<PageBody<User>>> {
    let page = s.library.list_users(&actor, &q.request()?).await?;
    Ok(Json(PageBody::from_page(page, |u| u)))
}

/// Adds a user to the account (administrators only).
#[utoipa::path(
    post,
    path = "/api/users",
    tag = "library",
    request_body = NewUser,
    responses(
        (status = 201, description = "The new user.", body = User),
        (status = 403, response = Forbidden),
        (status = 409, response = Conflict),
    )
)]
async fn create_user(
    State(s): State<AppState>,
    Caller(actor): Caller,
    ApiJson(body): ApiJson<NewUser>,
) -> ApiResult<(StatusCode, Json<User>)> {
    Ok((StatusCode::CREATED, Json(s.library.create_user(&actor, body).await?)))
}

/// One user: administrators see anyone in the account, others themselves.
#[utoipa::path(
    get,
    path = "/api/users/{user_id}",
    tag = "library",
    params(("user_id" = UserId, Path, description = "A user of the caller's account.")),
    responses(
        (status = 200, description = "The user.", body = User),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
    )
)]
async fn get_user(
    State(s): State<AppState>,
    Caller(actor): Caller,
    ApiPath(id): ApiPath<UserId>,
) -> ApiResult<Json<User>> {
    Ok(Json(s.library.user(&actor, id).await?))
}

/// A user's new role.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct RoleChange {
    role: Role,
}

/// Changes a user's role (administrators only; not their own).
#[utoipa::path(
    patch,
    path = "/api/users/{user_id}",
    tag = "library",
    params(("user_id" = UserId, Path, description = "A user of the caller's account.")),
    request_body = RoleChange,
    responses(
        (status = 200, description = "The user with the new role.", body = User),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 409, response = Conflict),
    )
)]
async fn change_role(
    State(s): State<AppState>,
    Caller(actor): Caller,
    ApiPath(id): ApiPath<UserId>,
    ApiJson(body): ApiJson<RoleChange>,
) -> ApiResult<Json<User>> {
    Ok(Json(s.library.change_role(&actor, id, body.role).await?))
}

/// Removes a user and their grants (administrators only; not themselves).
#[utoipa::path(
    delete,
    path = "/api/users/{user_id}",
    tag = "library",
    params(("user_id" = UserId, Path, description = "A user of the caller's account.")),
    responses(
        (status = 204, description = "The user and their grants are gone."),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 409, response = Conflict),
    )
)]
async fn delete_user(
    State(s): State<AppState>,
    Caller(actor): Caller,
    ApiPath(id): ApiPath<UserId>,
) -> ApiResult<StatusCode> {
    s.library.delete_user(&actor, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A user's grants: administrators see anyone's, others their own.
#[utoipa::path(
    get,
    path = "/api/users/{user_id}/grants",
    tag = "library",
    params(("user_id" = UserId, Path, description = "A user of the caller's account.")),
    responses(
        (status = 200, description = "All the user's grants, on one page.", body = PageBody<Grant>),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
    )
)]
async fn list_grants(
    State(s): State<AppState>,
    Caller(actor): Caller,
    ApiPath(id): ApiPath<UserId>,
) -> ApiResult<Json<PageBody<Grant>>> {
    let grants = s.library.grants(&actor, id).await?;
    Ok(Json(PageBody { items: grants, next_cursor: None }))
}

/// A permission for a restricted user on one file, folder or collection.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct GrantBody {
    target: Target,
    level: Permission,
}

/// Gives a restricted user a permission on a file, folder or collection (administrators only).
#[utoipa::path(
    put,
    path = "/api/users/{user_id}/grants",
    tag = "library",
    params(("user_id" = UserId, Path, description = "A user of the caller's account.")),
    request_body = GrantBody,
    responses(
        (status = 200, description = "The grant, created or changed.", body = Grant),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 409, response = Conflict),
    )
)]
async fn set_grant(
    State(s): State<AppState>,
    Caller(actor): Caller,
    ApiPath(id): ApiPath<UserId>,
    ApiJson(body): ApiJson<GrantBody>,
) -> ApiResult<Json<Grant>> {
    Ok(Json(s.library.set_grant(&actor, id, body.target, body.level).await?))
}

/// Withdraws a grant (administrators only).
#[utoipa::path(
    delete,
    path = "/api/users/{user_id}/grants/{kind}/{target_id}",
    tag = "library",
    params(
        ("user_id" = UserId, Path, description = "A user of the caller's account."),
        ("kind" = TargetKind, Path),
        ("target_id" = uuid::Uuid, Path, description = "The id of the file, folder or collection."),
    ),
    responses(
        (status = 204, description = "The grant is gone."),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
    )
)]
async fn remove_grant(
    State(s): State<AppState>,
    Caller(actor): Caller,
    ApiPath((user, kind, target)): ApiPath<(UserId, TargetKind, uuid::Uuid)>,
) -> ApiResult<StatusCode> {
    s.library.remove_grant(&actor, user, Target::from_parts(kind, target)).await?;
    Ok(StatusCode::NO_CONTENT)
}

// ---- folders -------------------------------------------------------------

/// A new folder, in `parent_id` or at the top.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct NewFolder {
    /// Unique among its siblings.
    #[schema(schema_with = rules::name_schema)]
    name: String,
    parent_id: Option<FolderId>,
}

/// Creates a folder in another or at the top (edit permission there).
#[utoipa::path(
    post,
    path = "/api/folders",
    tag = "library",
    request_body = NewFolder,
    responses(
        (status = 201, description = "The new folder.", body = Folder),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 409, response = Conflict),
    )
)]
async fn create_folder(
    State(s): State<AppState>,
    Caller(actor): Caller,
    ApiJson(body): ApiJson<NewFolder>,
) -> ApiResult<(StatusCode, Json<Folder>)> {
    Ok((StatusCode::CREATED, Json(s.library.create_folder(&actor, body.parent_id, &body.name).await?)))
}

/// A folder with the folders above it.
#[derive(Serialize, ToSchema)]
struct FolderBody {
    #[serde(flatten)]
    folder: Folder,
    /// The folders above, top first.
    path: Vec<Folder>,
}

/// A folder and the folders above it, for breadcrumbs.
#[utoipa::path(
    get,
    path = "/api/folders/{folder_id}",
    tag = "library",
    params(("folder_id" = FolderId, Path)),
    responses(
        (status = 200, description = "The folder and the folders above it.", body = FolderBody),
        (status = 404, response = NotFound),
    )
)]
async fn get_folder(
    State(s): State<AppState>,
    Caller(actor): Caller,
    ApiPath(id): ApiPath<FolderId>,
) -> ApiResult<Json<FolderBody>> {
    let (folder, path) = s.library.folder(&actor, id).await?;
    Ok(Json(FolderBody { folder, path }))
}

/// A new name.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct Rename {
    #[schema(schema_with = rules::name_schema)]
    name: String,
}

/// Renames a folder; sibling names stay unique.
#[utoipa::path(
    patch,
    path = "/api/folders/{folder_id}",
    tag = "library",
    params(("folder_id" = FolderId, Path)),
    request_body = Rename,
    responses(
        (status = 200, description = "The renamed folder.", body = Folder),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 409, response = Conflict),
    )
)]
async fn rename_folder(
    State(s): State<AppState>,
    Caller(actor): Caller,
    ApiPath(id): ApiPath<FolderId>,
    ApiJson(body): ApiJson<Rename>,
) -> ApiResult<Json<Folder>> {
    Ok(Json(s.library.rename_folder(&actor, id, &body.name).await?))
}

/// Where a folder goes: into `parent_id`, or to the top when it is `null`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct FolderMove {
    parent_id: Option<FolderId>,
}

/// Moves a folder and everything under it; their links are deleted.
#[utoipa::path(
    post,
    path = "/api/folders/{folder_id}/move",
    tag = "library",
    params(("folder_id" = FolderId, Path)),
    request_body = FolderMove,
    responses(
        (status = 200, description = "The moved folder; the links on it and on all under it are gone.", body = Folder),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 409, response = Conflict),
    )
)]
async fn move_folder(
    State(s): State<AppState>,
    Caller(actor): Caller,
    ApiPath(id): ApiPath<FolderId>,
    ApiJson(body): ApiJson<FolderMove>,
) -> ApiResult<Json<Folder>> {
    Ok(Json(s.library.move_folder(&actor, id, body.parent_id).await?))
}

/// Deletes a folder and everything under it. The folder and the links on it
/// and on everything under it go at once; the contents are removed in the
/// background (the answer says how far that is; `GET .../deletion` follows it).
#[utoipa::path(
    delete,
    path = "/api/folders/{folder_id}",
    tag = "library",
    params(("folder_id" = FolderId, Path)),
    responses(
        (status = 202, description = "The folder is gone; its contents are being removed.", body = FolderDeletion,
            headers(("Location" = String, description = "Where the deletion's progress is."))),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 409, response = Conflict),
    )
)]
async fn delete_folder(
    State(s): State<AppState>,
    Caller(actor): Caller,
    ApiPath(id): ApiPath<FolderId>,
) -> ApiResult<impl IntoResponse> {
    let deletion = s.library.delete_folder(&actor, id).await?;
    let location = format!("/api/folders/{id}/deletion");
    Ok((StatusCode::ACCEPTED, [(LOCATION, location)], Json(deletion)))
}

/// How far the deletion of a folder tree has come (for whoever asked for it
/// and the account's administrators, developers and full-access users).
#[utoipa::path(
    get,
    path = "/api/folders/{folder_id}/deletion",
    tag = "library",
    params(("folder_id" = FolderId, Path)),
    responses(
        (status = 200, description = "The deletion and its counts.", body = FolderDeletion),
        (status = 404, response = NotFound),
    )
)]
async fn get_folder_deletion(
    State(s): State<AppState>,
    Caller(actor): Caller,
    ApiPath(id): ApiPath<FolderId>,
) -> ApiResult<Json<FolderDeletion>> {
    Ok(Json(s.library.folder_deletion(&actor, id).await?))
}

/// The folders directly in a folder, or at the top (`root`).
#[utoipa::path(
    get,
    path = "/api/folders/{folder_id}/folders",
    tag = "library",
    params(("folder_id" = inline(FolderRef), Path), PageQuery),
    responses(
        (status = 200, description = "A page of the folders directly in it.", body = PageBody<Folder>),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
    )
)]
async fn list_subfolders(
    State(s): State<AppState>,
    Caller(actor): Caller,
    ApiPath(folder): ApiPath<FolderRef>,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> ApiResult<Json<PageBody<Folder>>> {
    let page = s.library.subfolders(&actor, folder.0, &q.request()?).await?;
    Ok(Json(PageBody::from_page(page, |f| f)))
}

/// The files directly in a folder, or at the top (`root`).
#[utoipa::path(
    get,
    path = "/api/folders/{folder_id}/files",
    tag = "library",
    params(("folder_id" = inline(FolderRef), Path), PageQuery),
    responses(
        (status = 200, description = "A page of the files directly in it.", body = PageBody<FileView>),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
    )
)]
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

/// One file with everything the library knows of it.
#[utoipa::path(
    get,
    path = "/api/files/{file_id}",
    tag = "library",
    params(("file_id" = FileId, Path)),
    responses((status = 200, description = "The file.", body = FileView), (status = 404, response = NotFound))
)]
async fn get_file(
    State(s): State<AppState>,
    Caller(actor): Caller,
    ApiPath(id): ApiPath<FileId>,
) -> ApiResult<Json<FileView>> {
    Ok(Json(s.library.file(&actor, id).await?.into()))
}

/// Changes a file's name and metadata.
#[utoipa::path(
    patch,
    path = "/api/files/{file_id}",
    tag = "library",
    params(("file_id" = FileId, Path)),
    request_body = FilePatch,
    responses(
        (status = 200, description = "The changed file.", body = FileView),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 409, response = Conflict),
    )
)]
async fn update_file(
    State(s): State<AppState>,
    Caller(actor): Caller,
    ApiPath(id): ApiPath<FileId>,
    ApiJson(patch): ApiJson<FilePatch>,
) -> ApiResult<Json<FileView>> {
    Ok(Json(s.library.update_file(&actor, id, patch).await?.into()))
}

/// Where a file goes: into `folder_id`, or to the top when it is `null`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct FileMove {
    folder_id: Option<FolderId>,
}

/// Moves a file into a folder or to the top; its links are deleted.
#[utoipa::path(
    post,
    path = "/api/files/{file_id}/move",
    tag = "library",
    params(("file_id" = FileId, Path)),
    request_body = FileMove,
    responses(
        (status = 200, description = "The moved file; its links are gone.", body = FileView),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 409, response = Conflict),
    )
)]
async fn move_file(
    State(s): State<AppState>,
    Caller(actor): Caller,
    ApiPath(id): ApiPath<FileId>,
    ApiJson(body): ApiJson<FileMove>,
) -> ApiResult<Json<FileView>> {
    Ok(Json(s.library.move_file(&actor, id, body.folder_id).await?.into()))
}

/// Deletes a file, all its versions and its links.
#[utoipa::path(
    delete,
    path = "/api/files/{file_id}",
    tag = "library",
    params(("file_id" = FileId, Path)),
    responses(
        (status = 204, description = "The file, its versions and its links are gone."),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 409, response = Conflict),
    )
)]
async fn delete_file(
    State(s): State<AppState>,
    Caller(actor): Caller,
    ApiPath(id): ApiPath<FileId>,
) -> ApiResult<StatusCode> {
    s.library.delete_file(&actor, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A file's versions, oldest first.
#[utoipa::path(
    get,
    path = "/api/files/{file_id}/versions",
    tag = "library",
    params(("file_id" = FileId, Path)),
    responses(
        (status = 200, description = "Every version, oldest first, on one page.", body = PageBody<VersionView>),
        (status = 404, response = NotFound),
    )
)]
async fn list_versions(
    State(s): State<AppState>,
    Caller(actor): Caller,
    ApiPath(id): ApiPath<FileId>,
) -> ApiResult<Json<PageBody<VersionView>>> {
    let versions = s.library.versions(&actor, id).await?;
    Ok(Json(PageBody { items: versions.into_iter().map(Into::into).collect(), next_cursor: None }))
}

/// Which version to download.
#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct DownloadQuery {
    /// A version number (default: the current version).
    #[param(value_type = Option<u32>, minimum = 1, maximum = 4294967295_u64)]
    version: Option<QueryNumber<1, { u32::MAX }>>,
}

/// Downloads a version of a file (the current one by default); recorded in the downloads.
#[utoipa::path(
    get,
    path = "/api/files/{file_id}/download",
    tag = "library",
    params(("file_id" = FileId, Path), DownloadQuery),
    responses(
        (
            status = 302,
            description = "A redirect to a short-lived download URL; the download is recorded.",
            headers(("Location" = String, description = "The download URL."))
        ),
        (status = 404, response = NotFound),
    )
)]
async fn download_file(
    State(s): State<AppState>,
    Caller(actor): Caller,
    ApiPath(id): ApiPath<FileId>,
    ApiQuery(q): ApiQuery<DownloadQuery>,
) -> ApiResult<impl IntoResponse> {
    let url = s.library.download_url(&actor, id, q.version.map(|v| v.0)).await?;
    Ok((StatusCode::FOUND, [(LOCATION, url)]))
}

/// A new comment.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct NewComment {
    #[schema(schema_with = rules::comment_schema)]
    text: String,
}

/// Adds a comment to a file.
#[utoipa::path(
    post,
    path = "/api/files/{file_id}/comments",
    tag = "library",
    params(("file_id" = FileId, Path)),
    request_body = NewComment,
    responses(
        (status = 201, description = "The new comment.", body = Comment),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 409, response = Conflict),
    )
)]
async fn add_comment(
    State(s): State<AppState>,
    Caller(actor): Caller,
    ApiPath(id): ApiPath<FileId>,
    ApiJson(body): ApiJson<NewComment>,
) -> ApiResult<(StatusCode, Json<Comment>)> {
    Ok((StatusCode::CREATED, Json(s.library.add_comment(&actor, id, &body.text).await?)))
}

/// A download as the dashboard lists it.
#[derive(Serialize, ToSchema)]
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

/// The account's downloads, through the library or public links (administrators, developers, full-access users).
#[utoipa::path(
    get,
    path = "/api/downloads",
    tag = "library",
    params(PageQuery),
    responses(
        (status = 200, description = "A page of the account's downloads, newest first.", body = PageBody<DownloadView>),
        (status = 403, response = Forbidden),
    )
)]
async fn list_downloads(
    State(s): State<AppState>,
    Caller(actor): Caller,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> ApiResult<Json<PageBody<DownloadView>>> {
    Ok(Json(PageBody::from_page(s.library.downloads(&actor, &q.request()?).await?, DownloadView::from)))
}

// ---- archives ------------------------------------------------------------

/// What goes in a ZIP: a folder with everything under it, a collection, or
/// files (one of the three; through a share link, none means everything it shares).
#[derive(Deserialize, Default, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct ArchiveBody {
    pub folder_id: Option<FolderId>,
    pub collection_id: Option<CollectionId>,
    /// Files picked one by one (1 to 1,000; repeats count once).
    #[schema(min_items = 1, max_items = 1000)]
    pub file_ids: Option<Vec<FileId>>,
}

/// Asks for a ZIP of a folder tree, a collection or files the caller may view; it is built in the background.
#[utoipa::path(
    post,
    path = "/api/archives",
    tag = "library",
    request_body = ArchiveBody,
    responses(
        (
            status = 202,
            description = "The archive job (ready at once when an identical archive can be reused).",
            body = AccountArchiveView,
            headers(("Location" = String, description = "Where to follow the job."))
        ),
        (status = 404, response = NotFound),
        (status = 429, response = TooManyRequests),
    )
)]
async fn create_archive(
    State(s): State<AppState>,
    Caller(actor): Caller,
    ApiJson(body): ApiJson<ArchiveBody>,
) -> ApiResult<impl IntoResponse> {
    let request = ArchiveRequest::parse(body.folder_id, body.collection_id, body.file_ids, None)?;
    let contents = s.library.archive_contents(&actor, &request, s.archives.settings());
    let job = s.archives.submit_resolving(&Requester::user(&actor), contents).await?;
    let location = format!("/api/archives/{}", job.id);
    Ok((StatusCode::ACCEPTED, [(LOCATION, location)], Json(AccountArchiveView::of(&job, s.archives.now()))))
}

/// The account's archives, newest first, through the library and through public links.
#[utoipa::path(
    get,
    path = "/api/archives",
    tag = "library",
    params(PageQuery),
    responses(
        (status = 200, description = "A page of the account's archives.", body = PageBody<AccountArchiveView>),
        (status = 403, response = Forbidden),
    )
)]
async fn list_archives(
    State(s): State<AppState>,
    Caller(actor): Caller,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> ApiResult<Json<PageBody<AccountArchiveView>>> {
    let now = s.archives.now();
    let page = s.archives.account_jobs(&actor, &q.request()?).await?;
    Ok(Json(PageBody::from_page(page, |j| AccountArchiveView::of(&j, now))))
}

/// One archive job and its progress: the requester's own, or any for those who manage the library.
#[utoipa::path(
    get,
    path = "/api/archives/{archive_id}",
    tag = "library",
    params(("archive_id" = ArchiveId, Path)),
    responses(
        (status = 200, description = "The job.", body = AccountArchiveView),
        (status = 404, response = NotFound),
    )
)]
async fn get_archive(
    State(s): State<AppState>,
    Caller(actor): Caller,
    ApiPath(id): ApiPath<ArchiveId>,
) -> ApiResult<Json<AccountArchiveView>> {
    Ok(Json(AccountArchiveView::of(&s.archives.user_job(&actor, id).await?, s.archives.now())))
}

/// Downloads a ready archive.
#[utoipa::path(
    get,
    path = "/api/archives/{archive_id}/download",
    tag = "library",
    params(("archive_id" = ArchiveId, Path)),
    responses(
        (
            status = 302,
            description = "A redirect to a short-lived download URL of the ZIP.",
            headers(("Location" = String, description = "The download URL."))
        ),
        (status = 404, response = NotFound),
        (status = 409, response = Conflict),
        (status = 410, response = ArchiveExpired),
    )
)]
async fn download_archive(
    State(s): State<AppState>,
    Caller(actor): Caller,
    ApiPath(id): ApiPath<ArchiveId>,
) -> ApiResult<impl IntoResponse> {
    let job = s.archives.user_job(&actor, id).await?;
    Ok((StatusCode::FOUND, [(LOCATION, s.archives.download_url(&job).await?)]))
}

// ---- uploads -------------------------------------------------------------

/// Declares an upload of a new file or a new version: the parts to PUT, each to its own URL.
#[utoipa::path(
    post,
    path = "/api/uploads",
    tag = "library",
    request_body = UploadRequest,
    responses(
        (status = 201, description = "The upload, open: where and how to PUT each part.", body = UploadTicket),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 409, response = Conflict),
    )
)]
async fn start_upload(
    State(s): State<AppState>,
    Caller(actor): Caller,
    ApiJson(body): ApiJson<UploadRequest>,
) -> ApiResult<(StatusCode, Json<UploadTicket>)> {
    Ok((StatusCode::CREATED, Json(s.library.start_upload(&actor, body).await?)))
}

/// Where one of the caller's uploads stands (open with fresh part URLs, ingesting, done with its file, or failed).
#[utoipa::path(
    get,
    path = "/api/uploads/{upload_id}",
    tag = "library",
    params(("upload_id" = UploadId, Path)),
    responses(
        (status = 200, description = "The upload.", body = UploadTicket),
        (status = 404, response = NotFound),
    )
)]
async fn get_upload(
    State(s): State<AppState>,
    Caller(actor): Caller,
    ApiPath(id): ApiPath<UploadId>,
) -> ApiResult<Json<UploadTicket>> {
    Ok(Json(s.library.upload_status(&actor, id).await?))
}

/// Completes an upload: checks every part, fixes the bytes, reads them (checksums, dimensions, EXIF) and records the file or new version. Safe to retry.
#[utoipa::path(
    post,
    path = "/api/uploads/{upload_id}/complete",
    tag = "library",
    params(("upload_id" = UploadId, Path)),
    responses(
        (status = 200, description = "Completed before (a retry): the file, or the file with its new version.", body = FileView),
        (status = 201, description = "The new file, or the file with its new current version.", body = FileView),
        (status = 202, description = "A big upload: its bytes are complete and being read; follow `GET /api/uploads/{upload_id}` until it is `done` (with `file_id`) or `failed`.", body = UploadTicket),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 409, response = Conflict),
    )
)]
async fn complete_upload(
    State(s): State<AppState>,
    Caller(actor): Caller,
    ApiPath(id): ApiPath<UploadId>,
) -> ApiResult<Response> {
    Ok(match s.library.complete_upload(&actor, id).await? {
        Completion::Created(file) => (StatusCode::CREATED, Json(FileView::from(file))).into_response(),
        Completion::AlreadyDone(file) => (StatusCode::OK, Json(FileView::from(file))).into_response(),
        Completion::Accepted(ticket) => (StatusCode::ACCEPTED, Json(ticket)).into_response(),
    })
}

// ---- collections ---------------------------------------------------------

/// The collections the caller can see.
#[utoipa::path(
    get,
    path = "/api/collections",
    tag = "library",
    params(PageQuery),
    responses(
        (status = 200, description = "A page of the collections the caller can see.", body = PageBody<Collection>),
        (status = 403, response = Forbidden),
    )
)]
async fn list_collections(
    State(s): State<AppState>,
    Caller(actor): Caller,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> ApiResult<Json<PageBody<Collection>>> {
    let page = s.library.collections(&actor, &q.request()?).await?;
    Ok(Json(PageBody::from_page(page, |c| c)))
}

/// Creates a collection (roles that can edit the whole library).
#[utoipa::path(
    post,
    path = "/api/collections",
    tag = "library",
    request_body = Rename,
    responses(
        (status = 201, description = "The new collection.", body = Collection),
        (status = 403, response = Forbidden),
        (status = 409, response = Conflict),
    )
)]
async fn create_collection(
    State(s): State<AppState>,
    Caller(actor): Caller,
    ApiJson(body): ApiJson<Rename>,
) -> ApiResult<(StatusCode, Json<Collection>)> {
    Ok((StatusCode::CREATED, Json(s.library.create_collection(&actor, &body.name).await?)))
}

/// One collection.
#[utoipa::path(
    get,
    path = "/api/collections/{collection_id}",
    tag = "library",
    params(("collection_id" = CollectionId, Path)),
    responses((status = 200, description = "The collection.", body = Collection), (status = 404, response = NotFound))
)]
async fn get_collection(
    State(s): State<AppState>,
    Caller(actor): Caller,
    ApiPath(id): ApiPath<CollectionId>,
) -> ApiResult<Json<Collection>> {
    Ok(Json(s.library.collection(&actor, id).await?))
}

/// Renames a collection.
#[utoipa::path(
    patch,
    path = "/api/collections/{collection_id}",
    tag = "library",
    params(("collection_id" = CollectionId, Path)),
    request_body = Rename,
    responses(
        (status = 200, description = "The renamed collection.", body = Collection),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 409, response = Conflict),
    )
)]
async fn rename_collection(
    State(s): State<AppState>,
    Caller(actor): Caller,
    ApiPath(id): ApiPath<CollectionId>,
    ApiJson(body): ApiJson<Rename>,
) -> ApiResult<Json<Collection>> {
    Ok(Json(s.library.rename_collection(&actor, id, &body.name).await?))
}

/// Deletes a collection and its links; its files stay.
#[utoipa::path(
    delete,
    path = "/api/collections/{collection_id}",
    tag = "library",
    params(("collection_id" = CollectionId, Path)),
    responses(
        (status = 204, description = "The collection and its links are gone; its files stay."),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 409, response = Conflict),
    )
)]
async fn delete_collection(
    State(s): State<AppState>,
    Caller(actor): Caller,
    ApiPath(id): ApiPath<CollectionId>,
) -> ApiResult<StatusCode> {
    s.library.delete_collection(&actor, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The files of a collection, in the order they were added.
#[utoipa::path(
    get,
    path = "/api/collections/{collection_id}/files",
    tag = "library",
    params(("collection_id" = CollectionId, Path), PageQuery),
    responses(
        (status = 200, description = "A page of its files, in the order they were added.", body = PageBody<FileView>),
        (status = 404, response = NotFound),
    )
)]
async fn collection_files(
    State(s): State<AppState>,
    Caller(actor): Caller,
    ApiPath(id): ApiPath<CollectionId>,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> ApiResult<Json<PageBody<FileView>>> {
    let page = s.library.collection_files(&actor, id, &q.request()?).await?;
    Ok(Json(PageBody::from_page(page, FileView::from)))
}

/// Adds a file to a collection.
#[utoipa::path(
    put,
    path = "/api/collections/{collection_id}/files/{file_id}",
    tag = "library",
    params(("collection_id" = CollectionId, Path), ("file_id" = FileId, Path)),
    responses(
        (status = 201, description = "The file is in the collection.", body = CollectionItem),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 409, response = Conflict),
    )
)]
async fn add_to_collection(
    State(s): State<AppState>,
    Caller(actor): Caller,
    ApiPath((id, file)): ApiPath<(CollectionId, FileId)>,
) -> ApiResult<(StatusCode, Json<CollectionItem>)> {
    Ok((StatusCode::CREATED, Json(s.library.add_to_collection(&actor, id, file).await?)))
}

/// Takes a file out of a collection.
#[utoipa::path(
    delete,
    path = "/api/collections/{collection_id}/files/{file_id}",
    tag = "library",
    params(("collection_id" = CollectionId, Path), ("file_id" = FileId, Path)),
    responses(
        (status = 204, description = "The file is out of the collection."),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
    )
)]
async fn remove_from_collection(
    State(s): State<AppState>,
    Caller(actor): Caller,
    ApiPath((id, file)): ApiPath<(CollectionId, FileId)>,
) -> ApiResult<StatusCode> {
    s.library.remove_from_collection(&actor, id, file).await?;
    Ok(StatusCode::NO_CONTENT)
}
