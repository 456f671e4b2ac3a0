//! The routes of the pages, and the whole `public-api` router: the pages
//! beside the visitor's JSON API (`publinks_http::public`), each page a
//! visit first (a session cookie set on a first visit), then a template,
//! every refusal shown as a page. The page routes are listed as they are
//! routed ([`page_routes`]), so that a test can walk every one of them.

use crate::{
    self as pages, ArchivePage, DownloadsPage, FilePage, ListingControls, ListingPage, MessagePage, Pager, PasswordPage,
};
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{MethodRouter, get, post};
use axum::{Form, Router};
use publinks_domain::DomainError;
use publinks_domain::archives::{ArchiveRequest, ArchiveView};
use publinks_domain::browse::{Browse, BrowseQuery, SortKey};
use publinks_domain::ids::*;
use publinks_domain::model::*;
use publinks_domain::passwords::Password;
use publinks_domain::public::{PublicFile, Sharer, Visit};
use publinks_domain::store::PageRequest;
use publinks_http::Fallbacks;
use publinks_http::error::ApiError;
use publinks_http::origin::OriginSecrets;
use publinks_http::public::{
    ClientNetwork, Credentials, PublicState, api, base, is_page_path, session_cookie, submit_archive, visitor_archive,
};
use serde::Deserialize;

/// The `public-api` router, with its state; behind CloudFront, `origin` are
/// the secrets a request must carry (see `publinks_http::origin`).
pub fn router(state: PublicState, origin: Option<OriginSecrets>) -> Router {
    publinks_http::finish_with(routes().with_state(state), origin, FALLBACKS)
}

/// The fallbacks of a router with pages: an address under `/s/` outside a
/// link's JSON API answers an HTML page, anything else JSON.
pub const FALLBACKS: Fallbacks = Fallbacks {
    not_found: |uri| {
        if is_page_path(uri.path()) { pages::not_found_at(uri.path()) } else { (Fallbacks::JSON.not_found)(uri) }
    },
    method_not_allowed: |uri| {
        if is_page_path(uri.path()) { pages::method_not_allowed() } else { (Fallbacks::JSON.method_not_allowed)(uri) }
    },
};

/// The routes alone, for merging into the local server: the pages, and the
/// JSON API of [`api`].
pub fn routes() -> Router<PublicState> {
    pages()
        .router
        .merge(api().split_for_parts().0)
        .route(pages::FAVICON_PATH, get(favicon))
        .route("/favicon.ico", get(favicon))
        .route(pages::SHARE_SCRIPT_PATH, get(share_script))
        .route(pages::viewing::SCRIPT_PATH, get(viewer_script))
}

/// The listing page's script (selection helpers).
async fn share_script() -> Response {
    script(pages::SHARE_SCRIPT)
}

/// The pages' script ([`pages::viewing::SCRIPT`]: keys, swipe, local times).
async fn viewer_script() -> Response {
    script(pages::viewing::SCRIPT)
}

/// A script from this origin (the pages' policy allows scripts from 'self'
/// only), kept by browsers for a day.
fn script(body: &'static str) -> Response {
    let mut response = ([(header::CONTENT_TYPE, "text/javascript; charset=utf-8")], body).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=86400"));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static("default-src 'none'"));
    response
}

/// The pages' icon, at the address they link and where browsers look
/// unasked, so that no request of a page answers 404.
async fn favicon() -> Response {
    let mut response = ([(header::CONTENT_TYPE, "image/svg+xml")], pages::FAVICON).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=86400"));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static("default-src 'none'"));
    response
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

/// The page for a refusal: gone, scheduled, password, or an error; `shared`
/// when the link is known.
fn refusal_page(token: &str, shared: Option<&Sharer>, error: DomainError) -> Response {
    match error {
        DomainError::LinkUnavailable => pages::render(
            StatusCode::NOT_FOUND,
            &MessagePage {
                title: "This link is not available",
                message: "It may have expired or been removed. Ask the person who shared it for a new link.",
                shared: None,
                back: None,
            },
        ),
        DomainError::LinkScheduled { opens_at } => {
            let message = format!("This link opens on {}.", opens_at.format("%A %-d %B %Y at %H:%M UTC"));
            pages::render(
                StatusCode::FORBIDDEN,
                &MessagePage { title: "Not open yet", message: &message, shared: None, back: None },
            )
        }
        DomainError::PasswordRequired => pages::render(
            StatusCode::UNAUTHORIZED,
            &PasswordPage { base: &base(token), error: None, shared, next: None },
        ),
        DomainError::NotFound(_) => pages::render(
            StatusCode::NOT_FOUND,
            &MessagePage {
                title: "Not found",
                message: "This item is not part of what was shared, or no longer is.",
                shared,
                back: Some(&base(token)),
            },
        ),
        DomainError::DownloadsForbidden => pages::render(
            StatusCode::FORBIDDEN,
            &MessagePage {
                title: "Downloads are not offered",
                message: "This link shows previews only: its files cannot be downloaded.",
                shared,
                back: Some(&base(token)),
            },
        ),
        other => {
            let api = ApiError::from(other);
            pages::render(
                api.status,
                &MessagePage { title: "Something went wrong", message: &api.message, shared, back: None },
            )
        }
    }
}

/// Who shares the link as the pages show it: the logo's version turned
/// into its address under the link.
fn shown(mut sharer: Sharer, token: &str) -> Sharer {
    sharer.logo = sharer.logo.map(|version| format!("{}/api/logo?v={version}", base(token)));
    sharer
}

/// Where the password form may return to: `path` if it is a page of the
/// same link (`/s/{token}/…` in plain path segments), never elsewhere.
fn return_path(token: &str, path: &str) -> Option<String> {
    let rest = path.strip_prefix(&base(token))?.strip_prefix('/')?;
    let plain = |segment: &str| {
        !segment.is_empty() && segment.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    };
    rest.split('/').all(plain).then(|| path.to_string())
}

/// The password page of the link `token`, saying who shares it; the form
/// returns to `next` (a page of the same link) once unlocked.
async fn password_page(
    s: &PublicState,
    token: &str,
    status: StatusCode,
    error: Option<String>,
    next: Option<&str>,
) -> Response {
    let sharer = match s.public.sharer_of(token).await {
        Ok(sharer) => shown(sharer, token),
        Err(e) => return refusal_page(token, None, e),
    };
    let next = next.and_then(|path| return_path(token, path));
    pages::render(status, &PasswordPage { base: &base(token), error, shared: Some(&sharer), next })
}

/// Runs a page: the visit first (setting a session cookie on a first
/// visit), then `render` with the link's name and who shares it, with every
/// refusal shown as a page.
async fn page<F, Fut>(
    s: &PublicState,
    token: &str,
    here: Option<String>,
    credentials: Credentials,
    render: F,
) -> Response
where
    F: FnOnce(Visit, String, Sharer) -> Fut,
    Fut: std::future::Future<Output = Result<Response, DomainError>>,
{
    let mut visit = match s.public.visit(token, credentials.0.as_deref(), credentials.1).await {
        Ok(v) => v,
        Err(DomainError::PasswordRequired) => {
            return password_page(s, token, StatusCode::UNAUTHORIZED, None, here.as_deref()).await;
        }
        Err(e) => return refusal_page(token, None, e),
    };
    let new_session = visit.session.is_none().then(|| s.public.session_for(&visit));
    if let Some(session) = &new_session {
        visit.session = Some(session.id.clone());
    }
    let link_name = match s.public.describe(&visit).await {
        Ok(d) => d.name,
        Err(e) => return refusal_page(token, None, e),
    };
    let sharer = shown(visit.sharer.clone(), token);
    let mut response = match render(visit, link_name, sharer.clone()).await {
        Ok(r) => r,
        Err(e) => refusal_page(token, Some(&sharer), e),
    };
    if let Some(session) = new_session {
        response.headers_mut().append(header::SET_COOKIE, session_cookie(s, token, &session));
    }
    response
}

/// The query of a listing page: its sort, order, search, page and view,
/// each optional (an unknown parameter is ignored).
#[derive(Clone, Debug, Default, Deserialize)]
struct ListingParams {
    sort: Option<String>,
    order: Option<String>,
    q: Option<String>,
    page: Option<String>,
    view: Option<String>,
}

/// A listing page's query once checked: what the domain needs, and the view.
struct ListingState {
    query: BrowseQuery,
    list: bool,
}

impl ListingParams {
    fn check(&self) -> Result<ListingState, DomainError> {
        let query =
            BrowseQuery::parse(self.sort.as_deref(), self.order.as_deref(), self.q.as_deref(), self.page.as_deref())?;
        let list = match self.view.as_deref().map(str::trim) {
            None | Some("") | Some("grid") => false,
            Some("list") => true,
            Some(_) => return Err(DomainError::invalid("view", "view must be grid or list")),
        };
        Ok(ListingState { query, list })
    }
}

impl ListingState {
    /// The query of this state's page `page` (`search`: with the search),
    /// default values left out: `?…`, or empty.
    fn href(&self, page: usize, search: bool, list: bool) -> String {
        let mut query = form_urlencoded::Serializer::new(String::new());
        if self.query.sort != SortKey::Shared {
            query.append_pair("sort", self.query.sort.as_str());
        }
        if self.query.descending {
            query.append_pair("order", "desc");
        }
        if let Some(q) = self.query.search.as_deref().filter(|_| search) {
            query.append_pair("q", q);
        }
        if page > 1 {
            query.append_pair("page", &page.to_string());
        }
        if list {
            query.append_pair("view", "list");
        }
        let query = query.finish();
        if query.is_empty() { query } else { format!("?{query}") }
    }

    /// The fields that bring a form's answer back to this page.
    fn hidden(&self, page: usize) -> Vec<(&'static str, String)> {
        let mut fields = Vec::new();
        if self.query.sort != SortKey::Shared {
            fields.push(("sort", self.query.sort.as_str().to_string()));
        }
        if self.query.descending {
            fields.push(("order", "desc".to_string()));
        }
        if let Some(q) = &self.query.search {
            fields.push(("q", q.clone()));
        }
        if page > 1 {
            fields.push(("page", page.to_string()));
        }
        if self.list {
            fields.push(("view", "list".to_string()));
        }
        fields
    }
}

/// The title a link's pages give previews: its name, unless it has a password.
fn og_title<'a>(visit: &Visit, link_name: &'a str) -> Option<&'a str> {
    visit.link.password_hash.is_none().then_some(link_name)
}

/// The page for a listing address whose query is wrong: what is wrong, and
/// the way to the page without it.
fn query_refusal(here: &str, shared: &Sharer, error: DomainError) -> Response {
    let api = ApiError::in_query(error);
    let page = MessagePage {
        title: "This address asks for something we cannot show",
        message: &api.message,
        shared: Some(shared),
        back: Some(here),
    };
    pages::render(api.status, &page)
}

/// "3 folders, 23 files, 1.2 GB": what the page's query matches, on every page.
fn totals(browse: &Browse, search: Option<&str>) -> String {
    let count = |n: usize, one, many| pages::count(&u32::try_from(n).unwrap_or(u32::MAX), one, many);
    let mut parts = Vec::new();
    if browse.total_subfolders > 0 {
        parts.push(count(browse.total_subfolders, "folder", "folders"));
    }
    parts.push(format!("{}, {}", count(browse.total_files, "file", "files"), pages::human_size(&browse.total_bytes)));
    let all = parts.join(", ");
    match search {
        Some(q) => format!("Matching “{q}”: {all}"),
        None => all,
    }
}

/// What a listing page shows besides its files.
struct Shown<'a> {
    token: &'a str,
    link_name: &'a str,
    og: Option<&'a str>,
    shared: &'a Sharer,
    /// The page's path, without its query.
    here: String,
    state: ListingState,
    selection_error: Option<&'a str>,
}

fn listing_page(shown: Shown<'_>, status: StatusCode, browse: Browse) -> Response {
    let Shown { token, link_name, og, shared, here, state, selection_error } = shown;
    let b = base(token);
    let keep = state.href(1, false, state.list);
    let breadcrumbs = browse
        .breadcrumbs
        .iter()
        .enumerate()
        .map(|(i, f)| {
            (f.name.clone(), if i == 0 { format!("{b}{keep}") } else { format!("{b}/folders/{}{keep}", f.id) })
        })
        .collect();
    let title = browse.folder.as_ref().map(|f| f.name.clone()).unwrap_or_else(|| link_name.to_string());
    let folder_id = if browse.breadcrumbs.is_empty() { None } else { browse.folder.as_ref().map(|f| f.id.to_string()) };
    let at = |page: usize| format!("{here}{}", state.href(page, true, state.list));
    let (page, pages) = (browse.page, browse.pages);
    let pager = (pages > 1).then(|| Pager {
        page,
        pages,
        first: (page > 2).then(|| at(1)),
        previous: (page > 1).then(|| at(page - 1)),
        next: (page < pages).then(|| at(page + 1)),
        last: (page + 1 < pages).then(|| at(pages)),
    });
    let mut sorts = Vec::new();
    if browse.folder.is_none() {
        sorts.push(("", "Collection order", state.query.sort == SortKey::Shared));
    }
    let name_chosen =
        state.query.sort == SortKey::Name || (browse.folder.is_some() && state.query.sort == SortKey::Shared);
    sorts.push(("name", "Name", name_chosen));
    sorts.push(("date", "Date", state.query.sort == SortKey::Date));
    sorts.push(("size", "Size", state.query.sort == SortKey::Size));
    let controls = ListingControls {
        scope: if browse.folder.is_some() { "folder" } else { "collection" },
        sorts,
        descending: state.query.descending,
        search: state.query.search.clone().unwrap_or_default(),
        list: state.list,
        grid_href: format!("{here}{}", state.href(page, true, false)),
        list_href: format!("{here}{}", state.href(page, true, true)),
        clear_search: state.query.search.is_some().then(|| format!("{here}{}", state.href(1, false, state.list))),
        hidden: state.hidden(page),
    };
    let totals = totals(&browse, state.query.search.as_deref());
    pages::render(
        status,
        &ListingPage {
            base: &b,
            link_name,
            title: &title,
            here,
            breadcrumbs,
            subfolders: browse.subfolders,
            files: browse.files,
            folder_id,
            keep,
            controls,
            totals,
            pager,
            selection_error,
            truncated: browse.truncated,
            shared: Some(shared),
            og_title: og,
        },
    )
}

/// A listing page of `folder` (the shared root when `None`) as `params` ask;
/// a wrong query answers a 400 page saying what is wrong.
async fn show_listing(
    public: &publinks_domain::public::PublicService,
    visit: &Visit,
    (token, link_name, sharer): (&str, &str, &Sharer),
    folder: Option<FolderId>,
    params: &ListingParams,
    selection_error: Option<&str>,
) -> Result<Response, DomainError> {
    let here = match folder {
        Some(folder) => format!("{}/folders/{folder}", base(token)),
        None => base(token),
    };
    let state = match params.check() {
        Ok(state) => state,
        Err(e) => return Ok(query_refusal(&here, sharer, e)),
    };
    let browse = public.browse(visit, folder, &state.query).await?;
    let status = if selection_error.is_some() { StatusCode::UNPROCESSABLE_ENTITY } else { StatusCode::OK };
    let og = og_title(visit, link_name);
    let shown = Shown { token, link_name, og, shared: sharer, here, state, selection_error };
    Ok(listing_page(shown, status, browse))
}

async fn page_root(
    State(s): State<PublicState>,
    PagePath(token): PagePath<String>,
    PageParams(q): PageParams<ListingParams>,
    credentials: Credentials,
) -> Response {
    let public = s.public.clone();
    let t = token.clone();
    page(&s, &token, None, credentials, |visit, link_name, sharer| async move {
        public.record(&visit, LinkEvent::PageOpened, None, 0).await?;
        match visit.link.target {
            Target::File(id) => {
                let file = public.file(&visit, id).await?;
                let text = public.text_excerpt(&file).await?;
                let file = PublicFile::seen_through(&file, &visit.link);
                Ok(pages::render_with_policy(
                    StatusCode::OK,
                    &FilePage {
                        base: &base(&t),
                        link_name: &link_name,
                        view: pages::viewing::FileView::of(&file, text, sharer.downloads),
                        file,
                        back: None,
                        neighbours: None,
                        shared: Some(&sharer),
                        og_title: og_title(&visit, &link_name),
                    },
                    pages::FILE_PAGE_POLICY,
                ))
            }
            _ => show_listing(&public, &visit, (&t, &link_name, &sharer), None, &q, None).await,
        }
    })
    .await
}

async fn page_folder(
    State(s): State<PublicState>,
    PagePath((token, folder)): PagePath<(String, String)>,
    PageParams(q): PageParams<ListingParams>,
    credentials: Credentials,
) -> Response {
    let public = s.public.clone();
    let t = token.clone();
    page(
        &s,
        &token,
        Some(format!("{}/folders/{folder}", base(&token))),
        credentials,
        |visit, link_name, sharer| async move {
            let folder: FolderId = folder.parse().map_err(|_| DomainError::NotFound("folder"))?;
            show_listing(&public, &visit, (&t, &link_name, &sharer), Some(folder), &q, None).await
        },
    )
    .await
}

async fn page_file(
    State(s): State<PublicState>,
    PagePath((token, file)): PagePath<(String, String)>,
    credentials: Credentials,
) -> Response {
    let public = s.public.clone();
    let t = token.clone();
    page(
        &s,
        &token,
        Some(format!("{}/files/{file}", base(&token))),
        credentials,
        |visit, link_name, sharer| async move {
            let id: FileId = file.parse().map_err(|_| DomainError::NotFound("file"))?;
            let file = public.file(&visit, id).await?;
            public.record(&visit, LinkEvent::FileViewed, Some(file.id), 0).await?;
            let b = base(&t);
            let back = match (visit.link.target, file.folder_id) {
                (Target::Folder(root), Some(folder)) if folder != root => Some(format!("{b}/folders/{folder}")),
                (Target::File(_), _) => None,
                _ => Some(b.clone()),
            };
            let neighbours = public.neighbours(&visit, &file).await?;
            let text = public.text_excerpt(&file).await?;
            let file = PublicFile::seen_through(&file, &visit.link);
            Ok(pages::render_with_policy(
                StatusCode::OK,
                &FilePage {
                    base: &b,
                    link_name: &link_name,
                    view: pages::viewing::FileView::of(&file, text, sharer.downloads),
                    file,
                    back,
                    neighbours,
                    shared: Some(&sharer),
                    og_title: og_title(&visit, &link_name),
                },
                pages::FILE_PAGE_POLICY,
            ))
        },
    )
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
    page(&s, &token, Some(format!("{}/downloads", base(&token))), credentials, |visit, link_name, sharer| async move {
        let downloads = public.downloads(&visit, &PageRequest::first(100)).await?.items;
        let now = archives.now();
        let archives = match &visit.session {
            Some(session) => archives.visitor_jobs(visit.link.id, session, &PageRequest::first(50)).await?.items,
            None => Vec::new(),
        };
        let archives = archives.iter().map(|j| ArchiveView::of(j, now)).collect();
        Ok(pages::render(
            StatusCode::OK,
            &DownloadsPage { base: &base(&t), link_name: &link_name, downloads, archives, shared: Some(&sharer) },
        ))
    })
    .await
}

/// What the ZIP form of a listing asks for.
enum ZipForm {
    Archive(ArchiveRequest),
    /// `scope=selected` with nothing ticked: the listing it came from
    /// (`folder`, and the query it carried back) is shown again, saying so.
    NothingSelected {
        folder: Option<FolderId>,
        params: ListingParams,
    },
}

/// The ZIP form of a listing: `scope=all` (with the folder shown, if not the
/// shared root) or `scope=selected` with the ticked `file_id`s; the fields
/// of the listing's query come back with it.
fn archive_form(body: &[u8]) -> Result<ZipForm, DomainError> {
    let (mut scope, mut folder, mut files) = (None, None, Vec::new());
    let mut params = ListingParams::default();
    for (name, value) in form_urlencoded::parse(body) {
        let bad = || DomainError::invalid(name.to_string(), format!("{name} is not valid"));
        match name.as_ref() {
            "scope" => scope = Some(value.to_string()),
            "folder_id" => folder = Some(value.parse::<FolderId>().map_err(|_| bad())?),
            "file_id" => files.push(value.parse::<FileId>().map_err(|_| bad())?),
            "sort" => params.sort = Some(value.to_string()),
            "order" => params.order = Some(value.to_string()),
            "q" => params.q = Some(value.to_string()),
            "page" => params.page = Some(value.to_string()),
            "view" => params.view = Some(value.to_string()),
            _ => {}
        }
    }
    match scope.as_deref() {
        Some("selected") if files.is_empty() => Ok(ZipForm::NothingSelected { folder, params }),
        Some("selected") => ArchiveRequest::parse(None, None, Some(files), None).map(ZipForm::Archive),
        _ => Ok(ZipForm::Archive(ArchiveRequest::Folder(folder))),
    }
}

/// What the listing says when "Download selected as ZIP" is pressed with nothing ticked.
const NOTHING_SELECTED: &str = "Select at least one file to download as a ZIP, or download everything.";

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
    page(&s, &token, None, credentials, |visit, link_name, sharer| async move {
        match archive_form(&body)? {
            ZipForm::Archive(request) => {
                let job = submit_archive(&state, &visit, &network, request).await?;
                Ok(Redirect::to(&format!("{}/archives/{}", base(&t), job.id)).into_response())
            }
            ZipForm::NothingSelected { folder, params } => {
                let names = (t.as_str(), link_name.as_str(), &sharer);
                show_listing(&state.public, &visit, names, folder, &params, Some(NOTHING_SELECTED)).await
            }
        }
    })
    .await
}

/// [`visitor_archive`] named by a page's path (a bad id is one it does not have).
async fn page_archive_job(s: &PublicState, visit: &Visit, id: &str) -> Result<ArchiveJob, DomainError> {
    let id: ArchiveId = id.parse().map_err(|_| DomainError::NotFound("archive"))?;
    visitor_archive(s, visit, id).await
}

async fn page_archive(
    State(s): State<PublicState>,
    PagePath((token, id)): PagePath<(String, String)>,
    credentials: Credentials,
) -> Response {
    let state = s.clone();
    let t = token.clone();
    page(
        &s,
        &token,
        Some(format!("{}/archives/{id}", base(&token))),
        credentials,
        |visit, link_name, sharer| async move {
            let archive = ArchiveView::of(&page_archive_job(&state, &visit, &id).await?, state.archives.now());
            let status = publinks_domain::model::archive_status_code(archive.status);
            let in_progress = matches!(archive.status, ArchiveStatus::Pending | ArchiveStatus::Building);
            let page = ArchivePage {
                base: &base(&t),
                link_name: &link_name,
                archive,
                status,
                in_progress,
                shared: Some(&sharer),
            };
            Ok(pages::render(StatusCode::OK, &page))
        },
    )
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
    page(&s, &token, None, credentials, |visit, link_name, sharer| async move {
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
                let page = pages::OutdatedPage {
                    base: &base(&t),
                    link_name: &link_name,
                    message: &message,
                    again,
                    shared: Some(&sharer),
                };
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
    /// The page to return to, kept only if it is one of this link's.
    next: Option<String>,
}

async fn page_unlock(
    State(s): State<PublicState>,
    PagePath(token): PagePath<String>,
    credentials: Credentials,
    form: Result<Form<UnlockForm>, axum::extract::rejection::FormRejection>,
) -> Response {
    let b = base(&token);
    let Ok(Form(form)) = form else {
        return password_page(&s, &token, StatusCode::BAD_REQUEST, Some("Enter the password.".into()), None).await;
    };
    let next = form.next.as_deref().and_then(|path| return_path(&token, path));
    match s.public.start_session_from(&token, Some(&Password::new(form.password)), &credentials.1).await {
        Ok(session) => {
            let mut response = Redirect::to(next.as_deref().unwrap_or(&b)).into_response();
            response.headers_mut().append(header::SET_COOKIE, session_cookie(&s, &token, &session));
            response
        }
        Err(DomainError::WrongPassword) => {
            let error = Some("That password is not correct. Try again.".into());
            password_page(&s, &token, StatusCode::UNAUTHORIZED, error, next.as_deref()).await
        }
        Err(DomainError::Throttled { retry_after }) => {
            let wait = pages::count(&u32::try_from(retry_after).unwrap_or(u32::MAX), "second", "seconds");
            let error = format!("Too many attempts. Try again in {wait}.");
            let mut response =
                password_page(&s, &token, StatusCode::TOO_MANY_REQUESTS, Some(error), next.as_deref()).await;
            response.headers_mut().insert(header::RETRY_AFTER, retry_after.into());
            response
        }
        Err(e) => refusal_page(&token, None, e),
    }
}
