//! The visitor's side of `public-api`: what a visitor reaches through
//! `{PUBLIC_BASE_URL}/s/{token}/api`, the JSON API for scripts, and what the
//! pages for people (`publinks-pages`) share with it. Both authenticate the
//! visitor the same way: a session cookie (pages) or a bearer token (API),
//! bound to the link and its password version.
//!
//! Every response under `/s/` — page, JSON, redirect, download, thumbnail,
//! error — gets the same protective headers from one layer
//! ([`share_headers`]). The routes of [`api`] are listed in the OpenAPI
//! document, so that a test can walk every one of them.

use super::error::{ApiResult, ArchiveExpired, Conflict, DownloadsForbidden, TooManyRequests};
use super::extract::{ApiJson, ApiPath, ApiQuery};
use super::library::{ArchiveBody, FolderRef, PageBody, PageQuery};
use super::origin::{VIEWER_ADDRESS_HEADER, VIEWER_COUNTRY_HEADER, ViaCloudFront};
use crate::routing::{OpenApiRouter, routes};
use axum::Json;
use axum::extract::{ConnectInfo, FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use publinks_domain::DomainError;
use publinks_domain::activity::Client;
use publinks_domain::archives::{ArchiveRequest, ArchiveService, ArchiveView, Requester};
use publinks_domain::ids::*;
use publinks_domain::model::*;
use publinks_domain::passwords::Password;
use publinks_domain::public::{
    Listing, MAX_INLINE_RESPONSE, PublicFile, PublicLink, PublicService, Session, Visit, VisitorDownload,
};
use publinks_domain::renditions::{RENDITION_CONTENT_TYPE, Rendition, RenditionSize};
use publinks_domain::throttle::network_of;
use serde::Deserialize;
use std::net::{IpAddr, SocketAddr};

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
/// the handler marked `private` (renditions, kept by the visitor's browser
/// for a few minutes; never by a shared cache).
const NO_STORE: &str = "no-store";
/// The content policy of responses that are not pages (JSON, images,
/// redirects): nothing may be loaded or framed through them.
const NOTHING_ALLOWED: &str = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'";

/// The content policy of a file shown inline: the browser's own image,
/// media and PDF viewers may show it from here; nothing runs, nothing frames it.
const INLINE_POLICY: &str =
    "default-src 'none'; img-src 'self'; media-src 'self'; object-src 'self'; frame-ancestors 'none'; base-uri 'none'";

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
        .routes(routes!(preview))
        .routes(routes!(inline))
        .routes(routes!(api_downloads))
        .routes(routes!(logo))
        .routes(routes!(api_archives, api_create_archive))
        .routes(routes!(api_archive))
        .routes(routes!(api_archive_download))
}

// ---- who is visiting -----------------------------------------------------

/// The visitor's session token, from `Authorization: Bearer` or the cookie,
/// and where the request comes from (for the link's activity log).
pub struct Credentials(pub Option<String>, pub Client);

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
        Ok(Credentials(bearer.or_else(cookie), client_of(parts)))
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
        let ip = client_ip(parts);
        Ok(ClientNetwork(ip.map(network_of).unwrap_or_else(|| "unknown".into())))
    }
}

/// The request's client: its address (as [`ClientNetwork`] finds it) and,
/// behind CloudFront, the country CloudFront places it in.
pub fn client_of(parts: &Parts) -> Client {
    let country = parts
        .extensions
        .get::<ViaCloudFront>()
        .and_then(|_| parts.headers.get(VIEWER_COUNTRY_HEADER))
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    Client { ip: client_ip(parts), country }
}

/// The viewer address CloudFront reports, only on a request the origin
/// guard let through ([`ViaCloudFront`]); otherwise the address the request
/// came from (API Gateway's source IP, or the socket's).
fn client_ip(parts: &Parts) -> Option<IpAddr> {
    {
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
        from_cloudfront().or_else(from_lambda).or_else(from_socket)
    }
}

/// Where a link's pages start.
pub fn base(token: &str) -> String {
    format!("/s/{token}")
}

/// The cookie that carries `session` on the pages of the link `token`.
pub fn session_cookie(state: &PublicState, token: &str, session: &Session) -> HeaderValue {
    let max_age = (session.expires_at - state.public.now()).num_seconds().max(0);
    let secure = if state.secure_cookies { "; Secure" } else { "" };
    let cookie = format!(
        "{SESSION_COOKIE}={}; Path=/s/{token}; Max-Age={max_age}; HttpOnly; SameSite=Lax{secure}",
        session.token
    );
    HeaderValue::from_str(&cookie).expect("cookie values are token characters")
}

// ---- the JSON API --------------------------------------------------------

async fn visit(state: &PublicState, token: &str, credentials: Credentials) -> ApiResult<Visit> {
    Ok(state.public.visit(token, credentials.0.as_deref(), credentials.1).await?)
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
    let link = s.public.describe(&v).await?;
    s.public.record(&v, LinkEvent::PageOpened, None, 0).await?;
    Ok(Json(link))
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
    credentials: Credentials,
    body: Option<ApiJson<Option<SessionRequest>>>,
) -> ApiResult<(StatusCode, Json<Session>)> {
    let request = body.and_then(|b| b.0).unwrap_or_default();
    let session = s.public.start_session_from(&token, request.password.as_ref(), &credentials.1).await?;
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
) -> ApiResult<Response> {
    let v = visit(&s, &token, credentials).await?;
    let answer = s.public.listing_answer(&v, folder.0, &q.request()?).await?;
    Ok(([(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))], answer.to_json()).into_response())
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
    let file = s.public.file(&v, id).await?;
    s.public.record(&v, LinkEvent::FileViewed, Some(file.id), 0).await?;
    Ok(Json(PublicFile::seen_through(&file, &v.link)))
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
        (status = 403, response = DownloadsForbidden),
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

/// The grid rendition (WebP, at most 400 px on the long side) of an image the link reaches.
#[utoipa::path(
    get,
    path = "/s/{token}/api/files/{file_id}/thumbnail",
    tag = "visitor",
    params(("token" = String, Path, description = "The share token, from the link's URL."), ("file_id" = FileId, Path)),
    responses(
        (status = 200, description = "The rendition.", content_type = "image/webp", body = inline(Webp)),
        (
            status = 202,
            description = "Not made yet (it is made once after upload): a placeholder; ask again later.",
            content_type = "image/svg+xml",
            body = inline(Placeholder),
            headers(("Retry-After" = u32, description = "Seconds after which to ask again."))
        ),
    )
)]
async fn thumbnail(
    State(s): State<PublicState>,
    ApiPath((token, id)): ApiPath<(String, FileId)>,
    credentials: Credentials,
) -> ApiResult<RenditionBody> {
    let v = visit(&s, &token, credentials).await?;
    Ok(RenditionBody(s.public.rendition(&v, id, RenditionSize::Grid).await?))
}

/// The large rendition (WebP, at most 2048 px on the long side) of an image the link reaches: the viewer's.
#[utoipa::path(
    get,
    path = "/s/{token}/api/files/{file_id}/preview",
    tag = "visitor",
    params(("token" = String, Path, description = "The share token, from the link's URL."), ("file_id" = FileId, Path)),
    responses(
        (status = 200, description = "The rendition.", content_type = "image/webp", body = inline(Webp)),
        (
            status = 202,
            description = "Not made yet (it is made once after upload): a placeholder; ask again later.",
            content_type = "image/svg+xml",
            body = inline(Placeholder),
            headers(("Retry-After" = u32, description = "Seconds after which to ask again."))
        ),
    )
)]
async fn preview(
    State(s): State<PublicState>,
    ApiPath((token, id)): ApiPath<(String, FileId)>,
    credentials: Credentials,
) -> ApiResult<RenditionBody> {
    let v = visit(&s, &token, credentials).await?;
    Ok(RenditionBody(s.public.rendition(&v, id, RenditionSize::Large).await?))
}

/// The logo of the account sharing the link, shown on its pages (no session needed: the password page shows it too).
#[utoipa::path(
    get,
    path = "/s/{token}/api/logo",
    tag = "visitor",
    params(("token" = String, Path, description = "The share token, from the link's URL.")),
    responses(
        (status = 200, description = "The logo (PNG, JPEG or WebP), kept privately by the browser for 5 minutes.",
            content(("image/png"), ("image/jpeg"), ("image/webp"))),
    )
)]
async fn logo(State(s): State<PublicState>, ApiPath(token): ApiPath<String>) -> ApiResult<Response> {
    let (bytes, content_type) = s.public.logo(&token).await?;
    let content_type = HeaderValue::from_str(&content_type).map_err(|_| DomainError::NotFound("logo"))?;
    let headers = [
        (header::CONTENT_TYPE, content_type),
        (header::CACHE_CONTROL, HeaderValue::from_static("private, max-age=300")),
    ];
    Ok((headers, bytes).into_response())
}

/// The original of a file the link reaches, for the browser to show in the page: video and audio (seeking
/// asks byte ranges), images at full resolution, PDF and plain text. Not a download: none is recorded.
#[utoipa::path(
    get,
    path = "/s/{token}/api/files/{file_id}/inline",
    tag = "visitor",
    params(
        ("token" = String, Path, description = "The share token, from the link's URL."),
        ("file_id" = FileId, Path),
        (
            "Range" = Option<String>, Header,
            description = "One byte range (`bytes=0-499`, `bytes=500-`, `bytes=-500`); an answer holds at most \
                4 MiB of it (ask again from where it ends)."
        ),
    ),
    responses(
        (status = 200, description = "The whole file (a file of at most 4 MiB asked without a range), in its own type (text as `text/plain; charset=utf-8`).", content_type = "*/*", body = inline(Binary)),
        (
            status = 206,
            description = "Part of the asked range: at most 4 MiB from its start, in the file's own type.",
            content_type = "*/*",
            body = inline(Binary),
            headers(("Content-Range" = String, description = "`bytes first-last/size`."))
        ),
        (
            status = 303,
            description = "A file larger than 4 MiB asked without a range: the download instead (recorded as one).",
            headers(("Location" = String, description = "The file's download route."))
        ),
        (status = 403, response = DownloadsForbidden),
        (
            status = 416,
            description = "The range lies outside the file (`Content-Range: bytes */size`).",
            body = crate::error::ErrorBody,
        ),
    )
)]
async fn inline(
    State(s): State<PublicState>,
    ApiPath((token, id)): ApiPath<(String, FileId)>,
    credentials: Credentials,
    headers: axum::http::HeaderMap,
) -> ApiResult<Response> {
    use crate::ranges::{Requested, content_range, range_not_satisfiable};
    let v = visit(&s, &token, credentials).await?;
    let file = s.public.inline_file(&v, id).await?;
    let size = file.size;
    let (status, range) = match Requested::of(&headers, size) {
        Some(Requested::Range(range)) => {
            (StatusCode::PARTIAL_CONTENT, range.start..range.end.min(range.start + MAX_INLINE_RESPONSE))
        }
        Some(Requested::Unsatisfiable) => return Ok(range_not_satisfiable(size)),
        None | Some(Requested::Ignored) if size <= MAX_INLINE_RESPONSE => (StatusCode::OK, 0..size),
        None | Some(Requested::Ignored) => {
            return Ok(Redirect::to(&format!("{}/api/files/{id}/download", base(&token))).into_response());
        }
    };
    let reader = s.public.inline_bytes(&file, range.clone()).await?;
    let mut response = (
        status,
        [
            (header::CONTENT_TYPE, file.content_type.clone()),
            (header::CONTENT_LENGTH, (range.end - range.start).to_string()),
            (header::CONTENT_DISPOSITION, inline_disposition(&file.name)),
            (header::ACCEPT_RANGES, "bytes".to_string()),
            (header::CONTENT_SECURITY_POLICY, INLINE_POLICY.to_string()),
        ],
        axum::body::Body::from_stream(tokio_util::io::ReaderStream::with_capacity(reader, 64 * 1024)),
    )
        .into_response();
    if status == StatusCode::PARTIAL_CONTENT {
        response.headers_mut().insert(header::CONTENT_RANGE, content_range(&range, size));
    }
    Ok(response)
}

/// `Content-Disposition` that shows a file in the browser, under its name if saved.
fn inline_disposition(name: &str) -> String {
    publinks_domain::store::attachment_disposition(name).replacen("attachment", "inline", 1)
}

/// Bytes of a file, in the OpenAPI document.
pub struct Binary;

impl utoipa::PartialSchema for Binary {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        binary_schema("application/octet-stream")
    }
}

impl utoipa::ToSchema for Binary {}

/// What stands in for a rendition not made yet: a neutral 4:3 box saying so
/// (480 px wide, more than a grid rendition ever is: a page can tell them apart).
pub const PENDING_PLACEHOLDER: &str = concat!(
    r##"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 480 360" width="480" height="360">"##,
    r##"<rect width="480" height="360" fill="#e8e8ec"/>"##,
    r##"<text x="240" y="188" text-anchor="middle" font-family="sans-serif" font-size="26" fill="#44444c">"##,
    "Preview being prepared</text></svg>"
);

/// A rendition as a response: the WebP, kept privately by the browser for 5
/// minutes (a folder page shows dozens; a shared cache never keeps one), or,
/// until it is made, a 202 with [`PENDING_PLACEHOLDER`] that nothing keeps.
pub struct RenditionBody(pub Rendition);

impl IntoResponse for RenditionBody {
    fn into_response(self) -> Response {
        match self.0 {
            Rendition::Ready(bytes) => {
                let headers =
                    [(header::CONTENT_TYPE, RENDITION_CONTENT_TYPE), (header::CACHE_CONTROL, "private, max-age=300")];
                (headers, bytes).into_response()
            }
            Rendition::Pending => {
                let headers = [(header::CONTENT_TYPE, "image/svg+xml"), (header::RETRY_AFTER, "5")];
                (StatusCode::ACCEPTED, headers, PENDING_PLACEHOLDER).into_response()
            }
        }
    }
}

/// A binary body of `media_type` in the OpenAPI document.
fn binary_schema(media_type: &str) -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
    let body = utoipa::openapi::ObjectBuilder::new().schema_type(utoipa::openapi::Type::String);
    body.content_media_type(media_type).into()
}

/// A WebP rendition, in the OpenAPI document.
pub struct Webp;

impl utoipa::PartialSchema for Webp {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        binary_schema("image/webp")
    }
}

impl utoipa::ToSchema for Webp {}

/// The placeholder of a rendition not made yet, in the OpenAPI document.
pub struct Placeholder;

impl utoipa::PartialSchema for Placeholder {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        binary_schema("image/svg+xml")
    }
}

impl utoipa::ToSchema for Placeholder {}

/// The downloads made through this link in this session (none without a session); refused on a preview-only link.
#[utoipa::path(
    get,
    path = "/s/{token}/api/downloads",
    tag = "visitor",
    params(("token" = String, Path, description = "The share token, from the link's URL."), PageQuery),
    responses(
        (status = 200, description = "This session's downloads, newest first.", body = PageBody<VisitorDownload>),
        (status = 403, response = DownloadsForbidden),
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
/// from this client network, as its keyed hash (when it asks for an archive).
pub fn visitor(visit: &Visit, network_hash: Option<String>) -> Result<Requester, DomainError> {
    let session = visit.session.clone().ok_or(DomainError::SessionRequired)?;
    Ok(Requester {
        account_id: visit.link.account_id,
        by: Downloader::PublicLink { link_id: visit.link.id, session },
        network: network_hash,
    })
}

/// Asks for a ZIP of `request` on behalf of this visit, from this network.
pub async fn submit_archive(
    s: &PublicState,
    visit: &Visit,
    network: &ClientNetwork,
    request: ArchiveRequest,
) -> Result<ArchiveJob, DomainError> {
    visit.require_downloads()?;
    let requester = visitor(visit, Some(s.public.network_hash(&network.0)))?;
    // Once the archive's own limits passed and its contents are known, a ZIP
    // counts as one download (of `max_downloads`) and is recorded, before its
    // job is stored and handed to a builder.
    let contents = async {
        let contents = s.public.archive_contents(visit, &request, s.archives.settings()).await?;
        s.public.charge(&visit.link, "downloads", visit.link.max_downloads).await?;
        s.public.record(visit, LinkEvent::ArchiveRequested, None, 0).await?;
        Ok(contents)
    };
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
        (status = 403, response = DownloadsForbidden),
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
    let mut response = (StatusCode::ACCEPTED, Json(ArchiveView::of(&job, s.archives.now()))).into_response();
    response.headers_mut().insert(header::LOCATION, HeaderValue::from_str(&location).expect("ids are URL-safe"));
    Ok(response)
}

/// One of this visit's archives (another session's is not found).
pub async fn visitor_archive(s: &PublicState, visit: &Visit, id: ArchiveId) -> Result<ArchiveJob, DomainError> {
    visit.require_downloads()?;
    let requester = visitor(visit, None).map_err(|_| DomainError::NotFound("archive"))?;
    s.archives.job(&requester, id, false).await
}

/// This session's archives through this link, newest first (none without a session).
#[utoipa::path(
    get,
    path = "/s/{token}/api/archives",
    tag = "visitor",
    params(("token" = String, Path, description = "The share token, from the link's URL."), PageQuery),
    responses(
        (status = 200, description = "A page of this session's archives.", body = PageBody<ArchiveView>),
        (status = 403, response = DownloadsForbidden),
    )
)]
async fn api_archives(
    State(s): State<PublicState>,
    ApiPath(token): ApiPath<String>,
    ApiQuery(q): ApiQuery<PageQuery>,
    credentials: Credentials,
) -> ApiResult<Json<PageBody<ArchiveView>>> {
    let v = visit(&s, &token, credentials).await?;
    v.require_downloads()?;
    let now = s.archives.now();
    let page = match &v.session {
        Some(session) => s.archives.visitor_jobs(v.link.id, session, &q.request()?).await?,
        None => publinks_domain::store::Page { items: Vec::new(), next: None },
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
    responses((status = 200, description = "The job.", body = ArchiveView), (status = 403, response = DownloadsForbidden))
)]
async fn api_archive(
    State(s): State<PublicState>,
    ApiPath((token, id)): ApiPath<(String, ArchiveId)>,
    credentials: Credentials,
) -> ApiResult<Json<ArchiveView>> {
    let v = visit(&s, &token, credentials).await?;
    Ok(Json(ArchiveView::of(&visitor_archive(&s, &v, id).await?, s.archives.now())))
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
        (status = 403, response = DownloadsForbidden),
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
