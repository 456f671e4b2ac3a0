//! The `public-api` router: what a visitor reaches through
//! `{PUBLIC_BASE_URL}/s/{token}`, as pages for people and as a JSON API under
//! `/s/{token}/api` for scripts. Both authenticate the visitor the same way:
//! a session cookie (pages) or a bearer token (API), bound to the link and
//! its password version.
//!
//! Every response under `/s/` — page, JSON, redirect, download, thumbnail,
//! error — gets the same protective headers from one layer
//! ([`share_headers`]); an address under `/s/` outside the JSON API that
//! fails answers an HTML page. The routes are listed as they are routed
//! ([`page_routes`] and the OpenAPI document of [`api`]), so that a test can
//! walk every one of them.

use super::error::{ApiError, ApiResult, ArchiveExpired, Conflict, TooManyRequests};
use super::extract::{ApiJson, ApiPath, ApiQuery};
use super::library::{ArchiveBody, FolderRef, PageBody, PageQuery};
use super::origin::{OriginSecrets, VIEWER_ADDRESS_HEADER, ViaCloudFront};
use super::pages::{self, ArchivePage, DownloadsPage, FilePage, ListingPage, MessagePage, PasswordPage};
use crate::domain::DomainError;
use crate::domain::archives::{ArchiveRequest, ArchiveService, ArchiveView, Requester};
use crate::domain::model::*;
use crate::domain::passwords::Password;
use crate::domain::public::{Listing, PublicFile, PublicLink, PublicService, Session, Visit, VisitorDownload};
use crate::domain::throttle::network_of;
use crate::ids::*;
use crate::store::{Cursor, PageRequest};
use axum::extract::{ConnectInfo, FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{MethodRouter, get, post};
use axum::{Form, Json, Router};
use serde::Deserialize;
use std::net::{IpAddr, SocketAddr};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// The session cookie's name; its path is the link's, so links never share one.
pub const SESSION_COOKIE: &str = "publinks_session";

/// What the public router needs.
#[derive(Clone)]
pub struct PublicState {
    pub public: PublicService,
    /// ZIP archives of what the link reaches.
    pub archives: ArchiveService,
    /// Mark cookies `Secure` (the public base URL is https).
    pub secure_cookies: bool,
}

/// The `public-api` router, with its state; behind CloudFront, `origin` are
/// the secrets a request must carry (see [`super::origin`]).
pub fn router(state: PublicState, origin: Option<OriginSecrets>) -> Router {
    super::finish_guarded(routes().with_state(state), origin)
}

/// The routes alone, for merging into the local server: the pages, and the
/// JSON API of [`api`].
pub fn routes() -> Router<PublicState> {
    pages().router.merge(api().split_for_parts().0)
}

/// Every page route, as (method, path pattern): the routes of [`routes`]
/// that are not in the OpenAPI document.
pub fn page_routes() -> Vec<(Method, &'static str)> {
    pages().listed
}

/// The page routes, recorded as they are added to the router.
#[derive(Default)]
struct PageRoutes {
    router: Router<PublicState>,
    listed: Vec<(Method, &'static str)>,
}

impl PageRoutes {
    fn route(mut self, method: Method, path: &'static str, handler: MethodRouter<PublicState>) -> Self {
        self.listed.push((method, path));
        self.router = self.router.route(path, handler);
        self
    }
}

fn pages() -> PageRoutes {
    PageRoutes::default()
        .route(Method::GET, "/s/{token}", get(page_root))
        .route(Method::POST, "/s/{token}/unlock", post(page_unlock))
        .route(Method::GET, "/s/{token}/folders/{folder_id}", get(page_folder))
        .route(Method::GET, "/s/{token}/files/{file_id}", get(page_file))
        .route(Method::GET, "/s/{token}/downloads", get(page_downloads))
        .route(Method::POST, "/s/{token}/archives", post(page_create_archive))
        .route(Method::GET, "/s/{token}/archives/{archive_id}", get(page_archive))
        .route(Method::GET, "/s/{token}/archives/{archive_id}/download", get(page_archive_download))
}

// ---- what every response under /s/ carries --------------------------------

/// Whether `path` is under `/s/`, where share URLs live.
pub fn is_share_path(path: &str) -> bool {
    path == "/s" || path.starts_with("/s/")
}

/// Whether `path` is under `/s/` but not in a link's JSON API
/// (`/s/{token}/api...`): such addresses answer HTML, errors included.
pub fn is_page_path(path: &str) -> bool {
    let Some(rest) = path.strip_prefix("/s/") else { return path == "/s" };
    rest.split('/').nth(1) != Some("api")
}

/// What a browser may keep of a response under `/s/`: nothing, except what
/// the handler marked `private` (thumbnails, kept by the visitor's browser
/// for a few minutes; never by a shared cache).
const NO_STORE: &str = "no-store";
/// The content policy of responses that are not pages (JSON, images,
/// redirects): nothing may be loaded or framed through them.
const NOTHING_ALLOWED: &str = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'";

/// The one layer of protective headers for everything under `/s/`: never
/// indexed or followed by crawlers, never cached (but see [`NO_STORE`]), no
/// referrer (the URL holds the token), never framed or sniffed, and a
/// content policy (the pages set their own, stricter for what they load).
pub async fn share_headers(request: Request, next: Next) -> Response {
    if !is_share_path(request.uri().path()) {
        return next.run(request).await;
    }
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    let private = headers
        .get(header::CACHE_CONTROL)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|d| d.trim() == "private"));
    if !private {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(NO_STORE));
    }
    headers.insert("x-robots-tag", HeaderValue::from_static("noindex, nofollow"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    if !headers.contains_key(header::CONTENT_SECURITY_POLICY) {
        headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(NOTHING_ALLOWED));
    }
    response
}

/// Path parameters of a page; a malformed one answers the HTML 400 page.
struct PagePath<T>(T);

impl<T: serde::de::DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for PagePath<T> {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Response> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|p| PagePath(p.0))
            .map_err(|_| pages::bad_request(StatusCode::BAD_REQUEST))
    }
}

/// The query of a page; a malformed one answers the HTML 400 page.
struct PageParams<T>(T);

impl<T: serde::de::DeserializeOwned, S: Send + Sync> FromRequestParts<S> for PageParams<T> {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Response> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|q| PageParams(q.0))
            .map_err(|_| pages::bad_request(StatusCode::BAD_REQUEST))
    }
}

/// The JSON API with its part of the OpenAPI document: each route is
/// registered from its handler's `#[utoipa::path]`.
pub fn api() -> OpenApiRouter<PublicState> {
    OpenApiRouter::new()
        .routes(routes!(api_link))
        .routes(routes!(api_session))
        .routes(routes!(api_listing))
        .routes(routes!(api_file))
        .routes(routes!(download))
        .routes(routes!(thumbnail))
        .routes(routes!(api_downloads))
        .routes(routes!(api_archives, api_create_archive))
        .routes(routes!(api_archive))
        .routes(routes!(api_archive_download))
}

// ---- who is visiting -----------------------------------------------------

/// The visitor's session token, from `Authorization: Bearer` or the cookie.
pub struct Credentials(pub Option<String>);

impl<S: Send + Sync> FromRequestParts<S> for Credentials {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let bearer = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
            .map(|t| t.trim().to_string());
        let cookie = || {
            parts
                .headers
                .get_all(header::COOKIE)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .flat_map(|v| v.split(';'))
                .find_map(|pair| {
                    let (name, value) = pair.trim().split_once('=')?;
                    (name == SESSION_COOKIE).then(|| value.to_string())
                })
        };
        Ok(Credentials(bearer.or_else(cookie)))
    }
}

/// The client network a request comes from (IPv4 address or IPv6 /64).
pub struct ClientNetwork(pub String);

impl<S: Send + Sync> FromRequestParts<S> for ClientNetwork {
    type Rejection = std::convert::Infallible;

    /// The viewer address CloudFront reports, only on a request the origin
    /// guard let through ([`ViaCloudFront`]); otherwise the address the
    /// request came from (API Gateway's source IP, or the socket's).
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let from_cloudfront = || {
            parts.extensions.get::<ViaCloudFront>()?;
            let value = parts.headers.get(VIEWER_ADDRESS_HEADER)?.to_str().ok()?;
            let ip = value.rsplit_once(':').map(|(ip, _)| ip).unwrap_or(value);
            ip.trim_matches(['[', ']']).parse::<IpAddr>().ok()
        };
        let from_lambda = || {
            use lambda_http::request::RequestContext;
            match parts.extensions.get::<RequestContext>()? {
                RequestContext::ApiGatewayV2(ctx) => ctx.http.source_ip.as_deref()?.parse::<IpAddr>().ok(),
                #[allow(unreachable_patterns)]
                _ => None,
            }
        };
        let from_socket = || parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip());
        let ip = from_cloudfront().or_else(from_lambda).or_else(from_socket);
        Ok(ClientNetwork(ip.map(network_of).unwrap_or_else(|| "unknown".into())))
    }
}

fn base(token: &str) -> String {
    format!("/s/{token}")
}

fn session_cookie(state: &PublicState, token: &str, session: &Session) -> HeaderValue {
    let max_age = (session.expires_at - chrono::Utc::now()).num_seconds().max(0);
    let secure = if state.secure_cookies { "; Secure" } else { "" };
    let cookie = format!(
        "{SESSION_COOKIE}={}; Path=/s/{token}; Max-Age={max_age}; HttpOnly; SameSite=Lax{secure}",
        session.token
    );
    HeaderValue::from_str(&cookie).expect("cookie values are token characters")
}

// ---- the JSON API --------------------------------------------------------

async fn visit(state: &PublicState, token: &str, credentials: Credentials) -> ApiResult<Visit> {
    Ok(state.public.visit(token, credentials.0.as_deref()).await?)
}

/// What the link shares.
#[utoipa::path(
    get,
    path = "/s/{token}/api",
    tag = "visitor",
    params(("token" = String, Path, description = "The share token, from the link's URL.")),
    responses((status = 200, description = "The shared item.", body = PublicLink))
)]
async fn api_link(
    State(s): State<PublicState>,
    ApiPath(token): ApiPath<String>,
    credentials: Credentials,
) -> ApiResult<Json<PublicLink>> {
    let v = visit(&s, &token, credentials).await?;
    Ok(Json(s.public.describe(&v).await?))
}

/// What starts a visitor session.
#[derive(Deserialize, Default, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct SessionRequest {
    password: Option<Password>,
}

/// Starts a visitor session: with the password for a protected link, with an empty body (or `{}`) otherwise.
#[utoipa::path(
    post,
    path = "/s/{token}/api/session",
    tag = "visitor",
    params(("token" = String, Path, description = "The share token, from the link's URL.")),
    request_body(
        content = Option<SessionRequest>,
        description = "The password, for a link that has one; may be left out (or `null`) for a link without."
    ),
    responses(
        (status = 201, description = "A session token for the other calls (bearer token).", body = Session),
        (status = 429, response = TooManyRequests),
    )
)]
async fn api_session(
    State(s): State<PublicState>,
    ApiPath(token): ApiPath<String>,
    network: ClientNetwork,
    body: Option<ApiJson<Option<SessionRequest>>>,
) -> ApiResult<(StatusCode, Json<Session>)> {
    let request = body.and_then(|b| b.0).unwrap_or_default();
    let session = s.public.start_session(&token, request.password.as_ref(), &network.0).await?;
    Ok((StatusCode::CREATED, Json(session)))
}

/// A page of the shared folder, of a folder under it, or of the shared collection (`root`).
#[utoipa::path(
    get,
    path = "/s/{token}/api/folders/{folder_id}",
    tag = "visitor",
    params(
        ("token" = String, Path, description = "The share token, from the link's URL."),
        ("folder_id" = inline(FolderRef), Path),
        PageQuery,
    ),
    responses(
        (status = 200, description = "Its subfolders (on the first page) and a page of its files.", body = Listing),
    )
)]
async fn api_listing(
    State(s): State<PublicState>,
    ApiPath((token, folder)): ApiPath<(String, FolderRef)>,
    ApiQuery(q): ApiQuery<PageQuery>,
    credentials: Credentials,
) -> ApiResult<Json<Listing>> {
    let v = visit(&s, &token, credentials).await?;
    Ok(Json(s.public.listing(&v, folder.0, &q.request()?).await?))
}

/// What a visitor may see of a file the link reaches.
#[utoipa::path(
    get,
    path = "/s/{token}/api/files/{file_id}",
    tag = "visitor",
    params(("token" = String, Path, description = "The share token, from the link's URL."), ("file_id" = FileId, Path)),
    responses((status = 200, description = "The file's visible metadata.", body = PublicFile))
)]
async fn api_file(
    State(s): State<PublicState>,
    ApiPath((token, id)): ApiPath<(String, FileId)>,
    credentials: Credentials,
) -> ApiResult<Json<PublicFile>> {
    let v = visit(&s, &token, credentials).await?;
    Ok(Json(PublicFile::seen_through(&s.public.file(&v, id).await?, &v.link)))
}

/// Downloads a file the link reaches: recorded as a download via this link.
#[utoipa::path(
    get,
    path = "/s/{token}/api/files/{file_id}/download",
    tag = "visitor",
    params(("token" = String, Path, description = "The share token, from the link's URL."), ("file_id" = FileId, Path)),
    responses(
        (
            status = 303,
            description = "A redirect (See Other) to a download URL valid for 60 seconds.",
            headers(("Location" = String, description = "The download URL."))
        ),
    )
)]
async fn download(
    State(s): State<PublicState>,
    ApiPath((token, id)): ApiPath<(String, FileId)>,
    credentials: Credentials,
) -> ApiResult<Response> {
    let v = visit(&s, &token, credentials).await?;
    let url = s.public.download_url(&v, id).await?;
    Ok(Redirect::to(&url).into_response())
}

/// A PNG preview (at most 320 px) of an image the link reaches.
#[utoipa::path(
    get,
    path = "/s/{token}/api/files/{file_id}/thumbnail",
    tag = "visitor",
    params(("token" = String, Path, description = "The share token, from the link's URL."), ("file_id" = FileId, Path)),
    responses((status = 200, description = "The preview.", content_type = "image/png", body = inline(Png)))
)]
async fn thumbnail(
    State(s): State<PublicState>,
    ApiPath((token, id)): ApiPath<(String, FileId)>,
    credentials: Credentials,
) -> ApiResult<Png> {
    let v = visit(&s, &token, credentials).await?;
    Ok(Png(s.public.thumbnail(&v, id).await?))
}

/// A PNG image as a response body, kept privately by the browser for 5
/// minutes (a folder page shows dozens; a shared cache never keeps one).
pub struct Png(pub Vec<u8>);

impl IntoResponse for Png {
    fn into_response(self) -> Response {
        let headers = [(header::CONTENT_TYPE, "image/png"), (header::CACHE_CONTROL, "private, max-age=300")];
        (headers, self.0).into_response()
    }
}

impl utoipa::PartialSchema for Png {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        let png = utoipa::openapi::ObjectBuilder::new().schema_type(utoipa::openapi::Type::String);
        png.content_media_type("image/png").into()
    }
}

impl utoipa::ToSchema for Png {}

/// The downloads made through this link in this session (none without a session).
#[utoipa::path(
    get,
    path = "/s/{token}/api/downloads",
    tag = "visitor",
    params(("token" = String, Path, description = "The share token, from the link's URL."), PageQuery),
    responses(
        (status = 200, description = "This session's downloads, newest first.", body = PageBody<VisitorDownload>),
    )
)]
async fn api_downloads(
    State(s): State<PublicState>,
    ApiPath(token): ApiPath<String>,
    ApiQuery(q): ApiQuery<PageQuery>,
    credentials: Credentials,
) -> ApiResult<Json<PageBody<VisitorDownload>>> {
    let v = visit(&s, &token, credentials).await?;
    Ok(Json(PageBody::from_page(s.public.downloads(&v, &q.request()?).await?, VisitorDownload::from)))
}

/// The requester a visit makes: this link, this session (which it must have),
/// from this client network (when it asks for an archive).
fn visitor(visit: &Visit, network: Option<&ClientNetwork>) -> Result<Requester, DomainError> {
    let session = visit.session.clone().ok_or(DomainError::SessionRequired)?;
    Ok(Requester {
        account_id: visit.link.account_id,
        by: Downloader::PublicLink { link_id: visit.link.id, session },
        network: network.map(|n| n.0.clone()),
    })
}

async fn submit_archive(
    s: &PublicState,
    visit: &Visit,
    network: &ClientNetwork,
    request: ArchiveRequest,
) -> Result<ArchiveJob, DomainError> {
    let requester = visitor(visit, Some(network))?;
    let contents = s.public.archive_contents(visit, &request, s.archives.settings());
    s.archives.submit_resolving(&requester, contents).await
}

/// Asks for a ZIP of what the link reaches: everything (no body, or `{}`), a folder under a shared folder, or files.
#[utoipa::path(
    post,
    path = "/s/{token}/api/archives",
    tag = "visitor",
    params(("token" = String, Path, description = "The share token, from the link's URL.")),
    request_body(
        content = Option<ArchiveBody>,
        description = "What to put in it; may be left out (or `null`, or `{}`) for everything the link shares."
    ),
    responses(
        (
            status = 202,
            description = "The archive job (ready at once when an identical archive can be reused).",
            body = ArchiveView,
            headers(("Location" = String, description = "Where to follow the job."))
        ),
        (status = 429, response = TooManyRequests),
    )
)]
async fn api_create_archive(
    State(s): State<PublicState>,
    ApiPath(token): ApiPath<String>,
    credentials: Credentials,
    network: ClientNetwork,
    body: Option<ApiJson<Option<ArchiveBody>>>,
) -> ApiResult<Response> {
    let v = visit(&s, &token, credentials).await?;
    let b = body.and_then(|b| b.0).unwrap_or_default();
    let request = ArchiveRequest::parse(b.folder_id, b.collection_id, b.file_ids, Some(ArchiveRequest::Folder(None)))?;
    let job = submit_archive(&s, &v, &network, request).await?;
    let location = format!("{}/api/archives/{}", base(&token), job.id);
    let mut response = (StatusCode::ACCEPTED, Json(ArchiveView::of(&job, chrono::Utc::now()))).into_response();
    response.headers_mut().insert(header::LOCATION, HeaderValue::from_str(&location).expect("ids are URL-safe"));
    Ok(response)
}

/// [`visitor_archive`] named by a page's path (a bad id is one it does not have).
async fn page_archive_job(s: &PublicState, visit: &Visit, id: &str) -> Result<ArchiveJob, DomainError> {
    let id: ArchiveId = id.parse().map_err(|_| DomainError::NotFound("archive"))?;
    visitor_archive(s, visit, id).await
}

async fn visitor_archive(s: &PublicState, visit: &Visit, id: ArchiveId) -> Result<ArchiveJob, DomainError> {
    let requester = visitor(visit, None).map_err(|_| DomainError::NotFound("archive"))?;
    s.archives.job(&requester, id, false).await
}

/// This session's archives through this link, newest first (none without a session).
#[utoipa::path(
    get,
    path = "/s/{token}/api/archives",
    tag = "visitor",
    params(("token" = String, Path, description = "The share token, from the link's URL."), PageQuery),
    responses((status = 200, description = "A page of this session's archives.", body = PageBody<ArchiveView>))
)]
async fn api_archives(
    State(s): State<PublicState>,
    ApiPath(token): ApiPath<String>,
    ApiQuery(q): ApiQuery<PageQuery>,
    credentials: Credentials,
) -> ApiResult<Json<PageBody<ArchiveView>>> {
    let v = visit(&s, &token, credentials).await?;
    let now = chrono::Utc::now();
    let page = match &v.session {
        Some(session) => s.archives.visitor_jobs(v.link.id, session, &q.request()?).await?,
        None => crate::store::Page { items: Vec::new(), next: None },
    };
    Ok(Json(PageBody::from_page(page, |j| ArchiveView::of(&j, now))))
}

/// One of this session's archives and its progress.
#[utoipa::path(
    get,
    path = "/s/{token}/api/archives/{archive_id}",
    tag = "visitor",
    params(
        ("token" = String, Path, description = "The share token, from the link's URL."),
        ("archive_id" = ArchiveId, Path),
    ),
    responses((status = 200, description = "The job.", body = ArchiveView))
)]
async fn api_archive(
    State(s): State<PublicState>,
    ApiPath((token, id)): ApiPath<(String, ArchiveId)>,
    credentials: Credentials,
) -> ApiResult<Json<ArchiveView>> {
    let v = visit(&s, &token, credentials).await?;
    Ok(Json(ArchiveView::of(&visitor_archive(&s, &v, id).await?, chrono::Utc::now())))
}

/// Downloads one of this session's ready archives.
#[utoipa::path(
    get,
    path = "/s/{token}/api/archives/{archive_id}/download",
    tag = "visitor",
    params(
        ("token" = String, Path, description = "The share token, from the link's URL."),
        ("archive_id" = ArchiveId, Path),
    ),
    responses(
        (
            status = 303,
            description = "A redirect to a short-lived download URL of the ZIP.",
            headers(("Location" = String, description = "The download URL."))
        ),
        (status = 409, response = Conflict),
        (status = 410, response = ArchiveExpired),
    )
)]
async fn api_archive_download(
    State(s): State<PublicState>,
    ApiPath((token, id)): ApiPath<(String, ArchiveId)>,
    credentials: Credentials,
) -> ApiResult<Response> {
    let v = visit(&s, &token, credentials).await?;
    let job = visitor_archive(&s, &v, id).await?;
    let url = s.public.archive_download_url(&v, &s.archives, &job).await?;
    Ok(Redirect::to(&url).into_response())
}

// ---- the pages -----------------------------------------------------------

/// The page for a refusal: gone, scheduled, password, or an error.
fn refusal_page(token: &str, error: DomainError) -> Response {
    match error {
        DomainError::LinkUnavailable => pages::render(
            StatusCode::NOT_FOUND,
            &MessagePage {
                title: "This link is not available",
                message: "It may have expired or been removed. Ask the person who shared it for a new link.",
            },
        ),
        DomainError::LinkScheduled { opens_at } => {
            let message = format!("This link opens on {}.", opens_at.format("%A %-d %B %Y at %H:%M UTC"));
            pages::render(StatusCode::FORBIDDEN, &MessagePage { title: "Not open yet", message: &message })
        }
        DomainError::PasswordRequired => {
            pages::render(StatusCode::UNAUTHORIZED, &PasswordPage { base: &base(token), error: None })
        }
        DomainError::NotFound(_) => pages::render(
            StatusCode::NOT_FOUND,
            &MessagePage { title: "Not found", message: "This item is not part of what was shared." },
        ),
        other => {
            let api = ApiError::from(other);
            pages::render(api.status, &MessagePage { title: "Something went wrong", message: &api.message })
        }
    }
}

/// Runs a page: the visit first (setting a session cookie on a first
/// visit), then `render`, with every refusal shown as a page.
async fn page<F, Fut>(s: &PublicState, token: &str, credentials: Credentials, render: F) -> Response
where
    F: FnOnce(Visit, String) -> Fut,
    Fut: std::future::Future<Output = Result<Response, DomainError>>,
{
    let mut visit = match s.public.visit(token, credentials.0.as_deref()).await {
        Ok(v) => v,
        Err(e) => return refusal_page(token, e),
    };
    let new_session = visit.session.is_none().then(|| s.public.session_for(&visit));
    if let Some(session) = &new_session {
        visit.session = Some(session.id.clone());
    }
    let link_name = match s.public.describe(&visit).await {
        Ok(d) => d.name,
        Err(e) => return refusal_page(token, e),
    };
    let mut response = match render(visit, link_name).await {
        Ok(r) => r,
        Err(e) => refusal_page(token, e),
    };
    if let Some(session) = new_session {
        response.headers_mut().append(header::SET_COOKIE, session_cookie(s, token, &session));
    }
    response
}

#[derive(Deserialize)]
struct PageCursor {
    cursor: Option<String>,
}

fn listing_page(token: &str, link_name: &str, listing: Listing, here: &str) -> Response {
    let b = base(token);
    let breadcrumbs = listing
        .breadcrumbs
        .iter()
        .enumerate()
        .map(|(i, f)| (f.name.clone(), if i == 0 { b.clone() } else { format!("{b}/folders/{}", f.id) }))
        .collect();
    let title = listing.folder.as_ref().map(|f| f.name.clone()).unwrap_or_else(|| link_name.to_string());
    let folder_id =
        if listing.breadcrumbs.is_empty() { None } else { listing.folder.as_ref().map(|f| f.id.to_string()) };
    let next_page = listing.next_cursor.as_ref().map(|c| format!("{here}?cursor={c}"));
    pages::render(
        StatusCode::OK,
        &ListingPage {
            base: &b,
            link_name,
            title: &title,
            breadcrumbs,
            subfolders: listing.subfolders,
            files: listing.files,
            next_page,
            folder_id,
        },
    )
}

fn page_request(cursor: Option<String>) -> PageRequest {
    PageRequest { cursor: cursor.map(Cursor), limit: 60 }
}

async fn page_root(
    State(s): State<PublicState>,
    PagePath(token): PagePath<String>,
    PageParams(q): PageParams<PageCursor>,
    credentials: Credentials,
) -> Response {
    let public = s.public.clone();
    let t = token.clone();
    page(&s, &token, credentials, |visit, link_name| async move {
        match visit.link.target {
            Target::File(id) => {
                let file = public.file(&visit, id).await?;
                Ok(pages::render(
                    StatusCode::OK,
                    &FilePage {
                        base: &base(&t),
                        link_name: &link_name,
                        file: PublicFile::seen_through(&file, &visit.link),
                        back: None,
                    },
                ))
            }
            _ => {
                let listing = public.listing(&visit, None, &page_request(q.cursor)).await?;
                Ok(listing_page(&t, &link_name, listing, &base(&t)))
            }
        }
    })
    .await
}

async fn page_folder(
    State(s): State<PublicState>,
    PagePath((token, folder)): PagePath<(String, String)>,
    PageParams(q): PageParams<PageCursor>,
    credentials: Credentials,
) -> Response {
    let public = s.public.clone();
    let t = token.clone();
    page(&s, &token, credentials, |visit, link_name| async move {
        let folder: FolderId = folder.parse().map_err(|_| DomainError::NotFound("folder"))?;
        let listing = public.listing(&visit, Some(folder), &page_request(q.cursor)).await?;
        Ok(listing_page(&t, &link_name, listing, &format!("{}/folders/{folder}", base(&t))))
    })
    .await
}

async fn page_file(
    State(s): State<PublicState>,
    PagePath((token, file)): PagePath<(String, String)>,
    credentials: Credentials,
) -> Response {
    let public = s.public.clone();
    let t = token.clone();
    page(&s, &token, credentials, |visit, link_name| async move {
        let id: FileId = file.parse().map_err(|_| DomainError::NotFound("file"))?;
        let file = public.file(&visit, id).await?;
        let b = base(&t);
        let back = match (visit.link.target, file.folder_id) {
            (Target::Folder(root), Some(folder)) if folder != root => Some(format!("{b}/folders/{folder}")),
            (Target::File(_), _) => None,
            _ => Some(b.clone()),
        };
        let file = PublicFile::seen_through(&file, &visit.link);
        Ok(pages::render(StatusCode::OK, &FilePage { base: &b, link_name: &link_name, file, back }))
    })
    .await
}

async fn page_downloads(
    State(s): State<PublicState>,
    PagePath(token): PagePath<String>,
    credentials: Credentials,
) -> Response {
    let public = s.public.clone();
    let archives = s.archives.clone();
    let t = token.clone();
    page(&s, &token, credentials, |visit, link_name| async move {
        let downloads = public.downloads(&visit, &PageRequest::first(100)).await?.items;
        let now = chrono::Utc::now();
        let archives = match &visit.session {
            Some(session) => archives.visitor_jobs(visit.link.id, session, &PageRequest::first(50)).await?.items,
            None => Vec::new(),
        };
        let archives = archives.iter().map(|j| ArchiveView::of(j, now)).collect();
        Ok(pages::render(
            StatusCode::OK,
            &DownloadsPage { base: &base(&t), link_name: &link_name, downloads, archives },
        ))
    })
    .await
}

/// The ZIP form of a listing: `scope=all` (with the folder shown, if not the
/// shared root) or `scope=selected` with the ticked `file_id`s.
fn archive_form(body: &[u8]) -> Result<ArchiveRequest, DomainError> {
    let (mut scope, mut folder, mut files) = (None, None, Vec::new());
    for (name, value) in form_urlencoded::parse(body) {
        let bad = || DomainError::invalid(name.to_string(), format!("{name} is not valid"));
        match name.as_ref() {
            "scope" => scope = Some(value.to_string()),
            "folder_id" => folder = Some(value.parse::<FolderId>().map_err(|_| bad())?),
            "file_id" => files.push(value.parse::<FileId>().map_err(|_| bad())?),
            _ => {}
        }
    }
    match scope.as_deref() {
        Some("selected") if files.is_empty() => Err(DomainError::invalid("file_id", "Select at least one file.")),
        Some("selected") => ArchiveRequest::parse(None, None, Some(files), None),
        _ => Ok(ArchiveRequest::Folder(folder)),
    }
}

async fn page_create_archive(
    State(s): State<PublicState>,
    PagePath(token): PagePath<String>,
    credentials: Credentials,
    network: ClientNetwork,
    body: Result<axum::body::Bytes, axum::extract::rejection::BytesRejection>,
) -> Response {
    let body = match body {
        Ok(body) => body,
        Err(e) => return pages::bad_request(e.status()),
    };
    let state = s.clone();
    let t = token.clone();
    page(&s, &token, credentials, |visit, _| async move {
        let job = submit_archive(&state, &visit, &network, archive_form(&body)?).await?;
        Ok(Redirect::to(&format!("{}/archives/{}", base(&t), job.id)).into_response())
    })
    .await
}

async fn page_archive(
    State(s): State<PublicState>,
    PagePath((token, id)): PagePath<(String, String)>,
    credentials: Credentials,
) -> Response {
    let state = s.clone();
    let t = token.clone();
    page(&s, &token, credentials, |visit, link_name| async move {
        let archive = ArchiveView::of(&page_archive_job(&state, &visit, &id).await?, chrono::Utc::now());
        let status = crate::domain::model::archive_status_code(archive.status);
        let in_progress = matches!(archive.status, ArchiveStatus::Pending | ArchiveStatus::Building);
        let page = ArchivePage { base: &base(&t), link_name: &link_name, archive, status, in_progress };
        Ok(pages::render(StatusCode::OK, &page))
    })
    .await
}

/// The download of a ZIP from its page: a redirect to it, or a page saying
/// why not — with, for an archive out of date, a button that asks for a new one.
async fn page_archive_download(
    State(s): State<PublicState>,
    axum::extract::Path((token, id)): axum::extract::Path<(String, String)>,
    credentials: Credentials,
) -> Response {
    let state = s.clone();
    let t = token.clone();
    page(&s, &token, credentials, |visit, link_name| async move {
        let job = page_archive_job(&state, &visit, &id).await?;
        match state.public.archive_download_url(&visit, &state.archives, &job).await {
            Ok(url) => {
                let mut response = Redirect::to(&url).into_response();
                response.headers_mut().insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
                Ok(response)
            }
            Err(DomainError::ArchiveOutdated { changed, again }) => {
                let message = format!(
                    "Since this ZIP was made, {changed} of its files changed or {} no longer shared. \
                     Make a new ZIP to get what is shared now.",
                    if changed == 1 { "is" } else { "are" }
                );
                let again = again.map(|a| match a {
                    ArchiveRequest::Files(ids) => pages::ArchiveForm {
                        scope: "selected",
                        folder_id: None,
                        file_ids: ids.iter().map(ToString::to_string).collect(),
                    },
                    ArchiveRequest::Folder(folder) => pages::ArchiveForm {
                        scope: "all",
                        folder_id: folder.map(|f| f.to_string()),
                        file_ids: Vec::new(),
                    },
                    ArchiveRequest::Collection(_) => {
                        pages::ArchiveForm { scope: "all", folder_id: None, file_ids: Vec::new() }
                    }
                });
                let page = pages::OutdatedPage { base: &base(&t), link_name: &link_name, message: &message, again };
                Ok(pages::render(StatusCode::GONE, &page))
            }
            Err(e) => Err(e),
        }
    })
    .await
}

#[derive(Deserialize)]
struct UnlockForm {
    password: String,
}

async fn page_unlock(
    State(s): State<PublicState>,
    PagePath(token): PagePath<String>,
    network: ClientNetwork,
    form: Result<Form<UnlockForm>, axum::extract::rejection::FormRejection>,
) -> Response {
    let b = base(&token);
    let Ok(Form(form)) = form else {
        let page = PasswordPage { base: &b, error: Some("Enter the password.".into()) };
        return pages::render(StatusCode::BAD_REQUEST, &page);
    };
    match s.public.start_session(&token, Some(&Password::new(form.password)), &network.0).await {
        Ok(session) => {
            let mut response = Redirect::to(&b).into_response();
            response.headers_mut().append(header::SET_COOKIE, session_cookie(&s, &token, &session));
            response
        }
        Err(DomainError::WrongPassword) => {
            let page = PasswordPage { base: &b, error: Some("That password is not correct. Try again.".into()) };
            pages::render(StatusCode::UNAUTHORIZED, &page)
        }
        Err(DomainError::Throttled { retry_after }) => {
            let error = format!("Too many attempts. Try again in {retry_after} seconds.");
            let mut response =
                pages::render(StatusCode::TOO_MANY_REQUESTS, &PasswordPage { base: &b, error: Some(error) });
            response.headers_mut().insert(header::RETRY_AFTER, retry_after.into());
            response
        }
        Err(e) => refusal_page(&token, e),
    }
}
