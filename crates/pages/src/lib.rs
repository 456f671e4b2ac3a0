//! The visitor's pages: server-rendered HTML (askama templates in
//! `templates/`), with the headers every page carries, and their routes
//! ([`routes`]) beside the visitor's JSON API: the `public-api` router.
//! Only `public-api` and the local server link this crate.

pub mod routes;
pub mod viewing;

pub use publinks_domain::human_size;
pub use routes::{FALLBACKS, page_routes, router};

use askama::Template;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use publinks_domain::archives::ArchiveView;
use publinks_domain::model::{ArchiveStatus, DownloadRecord};
use publinks_domain::public::{Neighbours, PublicFile, PublicFolder, Sharer};

/// The pages' icon (SVG), served at [`FAVICON_PATH`] and `/favicon.ico`.
pub const FAVICON: &str = include_str!("../assets/favicon.svg");

/// The address every page links its icon from.
pub const FAVICON_PATH: &str = "/favicon.svg";

/// The listing page's script (select all, the count of ticked files); the
/// page works without it.
pub const SHARE_SCRIPT: &str = include_str!("../assets/share.js");

/// The address the listing page loads [`SHARE_SCRIPT`] from.
pub const SHARE_SCRIPT_PATH: &str = "/assets/share.js";

/// A count with its noun, singular for one: "1 file", "2 files".
pub fn count(n: &u32, one: &str, many: &str) -> String {
    let n = *n;
    format!("{n} {}", if n == 1 { one } else { many })
}

/// When a link ends, for people, in UTC with the zone named ("30 November
/// 2026, 14:00 UTC"): the pages' script shows it in the visitor's zone.
pub fn until_utc(t: &chrono::DateTime<chrono::Utc>) -> String {
    t.format("%-d %B %Y, %H:%M UTC").to_string()
}

/// Whether a page shows download controls: not on a preview-only link.
pub fn downloads_allowed(shared: &Option<&Sharer>) -> bool {
    shared.is_none_or(|s| s.downloads)
}

/// An archive's size for people: the ZIP's once ready, else its files'.
pub fn archive_size(archive: &ArchiveView) -> String {
    publinks_domain::human_size(&archive.archive_size.unwrap_or(archive.total_bytes))
}

/// A day for people ("3 Nov 2026"), in UTC.
pub fn short_date(at: &chrono::DateTime<chrono::Utc>) -> String {
    at.format("%-d %b %Y").to_string()
}

/// The short label a card without a preview shows for its file's type:
/// "PDF", "WAV", or the kind ("Video", "Document") for long type names.
pub fn kind_label(content_type: &str) -> String {
    let (kind, subtype) = content_type.split_once('/').unwrap_or((content_type, ""));
    let subtype = subtype.split([';', '+']).next().unwrap_or("").trim().trim_start_matches("x-");
    let subtype = match subtype {
        "plain" => "txt",
        "quicktime" => "mov",
        "msword" => "doc",
        other => other,
    };
    if !subtype.is_empty() && subtype.len() <= 5 && subtype.chars().all(|c| c.is_ascii_alphanumeric()) {
        return subtype.to_ascii_uppercase();
    }
    match kind.trim() {
        "audio" => "Audio",
        "video" => "Video",
        "image" => "Image",
        "text" => "Text",
        _ => "Document",
    }
    .to_string()
}

/// An archive status in words.
pub fn status_name(status: &ArchiveStatus) -> &'static str {
    match status {
        ArchiveStatus::Pending => "Waiting",
        ArchiveStatus::Building => "Being prepared",
        ArchiveStatus::Ready => "Ready",
        ArchiveStatus::Failed => "Failed",
        ArchiveStatus::Expired => "Expired",
    }
}

/// A notice: gone, scheduled, throttled, an error.
#[derive(Template)]
#[template(path = "message.html")]
pub struct MessagePage<'a> {
    /// Who shares the link and until when (none where the link is unknown).
    pub shared: Option<&'a Sharer>,
    pub title: &'a str,
    pub message: &'a str,
    /// The share's start page, for a refusal inside a link it still opens.
    pub back: Option<&'a str>,
}

/// A share link the local server's home page offers.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct ShareLink {
    /// What it shares, for people (`folder "Spring 2026"`).
    pub what: String,
    pub url: String,
    /// The password it needs, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
}

/// The local server's page at `/`, for people who open its address: where
/// the API reference is and, when the demo exists, its share links.
#[derive(Template)]
#[template(path = "home.html")]
pub struct HomePage<'a> {
    pub reference: &'a str,
    pub spec: &'a str,
    pub links: &'a [ShareLink],
}

/// The password form.
#[derive(Template)]
#[template(path = "password.html")]
pub struct PasswordPage<'a> {
    /// Who shares the link and until when (none where the link is unknown).
    pub shared: Option<&'a Sharer>,
    pub base: &'a str,
    pub error: Option<String>,
    /// The page of the link to return to once unlocked.
    pub next: Option<String>,
}

/// A shared folder or collection: one numbered page of it, sorted and
/// searched as its address asks, with the ZIP form of its files.
#[derive(Template)]
#[template(path = "listing.html")]
pub struct ListingPage<'a> {
    /// The title link previews show: the share's, for a link without a
    /// password only (a protected link names nothing).
    pub og_title: Option<&'a str>,
    /// Who shares the link and until when (none where the link is unknown).
    pub shared: Option<&'a Sharer>,
    pub base: &'a str,
    pub link_name: &'a str,
    pub title: &'a str,
    /// This page's path, without its query (the search form's action).
    pub here: String,
    /// (name, href), from the shared folder down.
    pub breadcrumbs: Vec<(String, String)>,
    pub subfolders: Vec<PublicFolder>,
    pub files: Vec<PublicFile>,
    /// The folder shown, when it is not the shared root (the ZIP form names it).
    pub folder_id: Option<String>,
    /// The query kept when entering a subfolder (view and order), `?…` or empty.
    pub keep: String,
    /// How the page is shown and asked for.
    pub controls: ListingControls,
    /// "3 folders, 23 files, 1.2 GB" of everything the search matches.
    pub totals: String,
    /// Numbered pages, when there is more than one.
    pub pager: Option<Pager>,
    /// Why the selection ZIP was not made (nothing ticked).
    pub selection_error: Option<&'a str>,
    /// Whether only the first files of a very large folder are sorted and searched.
    pub truncated: bool,
}

/// The sort, search and view of a listing page, as its forms and links show them.
pub struct ListingControls {
    /// What is searched: `folder` or `collection`.
    pub scope: &'static str,
    /// (value, label, chosen) of the sort field.
    pub sorts: Vec<(&'static str, &'static str, bool)>,
    pub descending: bool,
    pub search: String,
    /// Shown as a list (else a grid).
    pub list: bool,
    /// The same page as a grid, and as a list.
    pub grid_href: String,
    pub list_href: String,
    /// The page without its search, when there is one.
    pub clear_search: Option<String>,
    /// The fields the ZIP form carries back, so that its answer shows the same page.
    pub hidden: Vec<(&'static str, String)>,
}

/// Numbered pages of a listing: where the visitor is, and the ways on and back.
pub struct Pager {
    pub page: usize,
    pub pages: usize,
    pub first: Option<String>,
    pub previous: Option<String>,
    pub next: Option<String>,
    pub last: Option<String>,
}

/// One file's details.
#[derive(Template)]
#[template(path = "file.html")]
pub struct FilePage<'a> {
    /// The title link previews show: the share's, for a link without a
    /// password only (a protected link names nothing).
    pub og_title: Option<&'a str>,
    /// Who shares the link and until when (none where the link is unknown).
    pub shared: Option<&'a Sharer>,
    pub base: &'a str,
    pub link_name: &'a str,
    pub file: PublicFile,
    pub back: Option<String>,
    /// Previous/next through the folder or collection, and the position.
    pub neighbours: Option<Neighbours>,
    /// How the page shows the file (preview, player, text...).
    pub view: viewing::FileView,
}

/// The visitor's downloads through this link.
#[derive(Template)]
#[template(path = "downloads.html")]
pub struct DownloadsPage<'a> {
    /// Who shares the link and until when (none where the link is unknown).
    pub shared: Option<&'a Sharer>,
    pub base: &'a str,
    pub link_name: &'a str,
    pub downloads: Vec<DownloadRecord>,
    pub archives: Vec<ArchiveView>,
}

/// One archive: its progress while it is prepared, its download once ready.
#[derive(Template, Clone)]
#[template(path = "archive.html")]
pub struct ArchivePage<'a> {
    /// Who shares the link and until when (none where the link is unknown).
    pub shared: Option<&'a Sharer>,
    pub base: &'a str,
    pub link_name: &'a str,
    pub archive: ArchiveView,
    /// `pending`, `building`, `ready`, `failed` or `expired`.
    pub status: &'static str,
    pub in_progress: bool,
}

/// A visitor's ZIP that no longer matches what the link shares, and the form
/// that asks for a current one.
#[derive(Template)]
#[template(path = "outdated.html")]
pub struct OutdatedPage<'a> {
    /// Who shares the link and until when (none where the link is unknown).
    pub shared: Option<&'a Sharer>,
    pub base: &'a str,
    pub link_name: &'a str,
    pub message: &'a str,
    pub again: Option<ArchiveForm>,
}

/// The fields of the ZIP form (as the listing page posts them) that ask for
/// an archive again.
pub struct ArchiveForm {
    /// `all` (everything, or the folder `folder_id`) or `selected` (`file_ids`).
    pub scope: &'static str,
    pub folder_id: Option<String>,
    pub file_ids: Vec<String>,
}

/// Renders a page with its status and the headers of every visitor page:
/// never cached, never framed, no referrer (the URL holds the token), and a
/// content policy that allows nothing from elsewhere.
pub fn render(status: StatusCode, page: &impl Template) -> Response {
    render_with_policy(status, page, PAGE_POLICY)
}

/// The content policy of the pages: their own images and script, inline
/// styles, forms to themselves; nothing from elsewhere, never framed.
pub const PAGE_POLICY: &str = "default-src 'none'; img-src 'self'; script-src 'self'; style-src 'unsafe-inline'; \
    form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// The content policy of the file page: the pages' ([`PAGE_POLICY`]), and
/// video and audio from the share's own origin, where the inline route is.
pub const FILE_PAGE_POLICY: &str = "default-src 'none'; img-src 'self'; media-src 'self'; script-src 'self'; \
    style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// [`render`] with the content policy `policy`.
pub fn render_with_policy(status: StatusCode, page: &impl Template, policy: &'static str) -> Response {
    let body = match page.render() {
        Ok(html) => html,
        Err(e) => {
            tracing::error!(error = %e, "a page failed to render");
            return (StatusCode::INTERNAL_SERVER_ERROR, "something went wrong on our side").into_response();
        }
    };
    let mut response = (status, Html(body)).into_response();
    let headers = response.headers_mut();
    for (name, value) in [
        (header::CACHE_CONTROL, "no-store"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::CONTENT_SECURITY_POLICY, policy),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    response
}

/// The page for an address under `/s/` that is no page (or a bad id in one).
pub fn not_found() -> Response {
    not_found_at("/s")
}

/// The page for `path`, an address under `/s/` that is no page: inside a
/// share's address (`/s/{token}/…`), it leads back to the share's start.
pub fn not_found_at(path: &str) -> Response {
    let token = path
        .strip_prefix("/s/")
        .and_then(|rest| rest.split('/').next())
        .filter(|t| !t.is_empty() && t.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'));
    let back = token.map(publinks_http::public::base);
    let page = MessagePage {
        title: "Not found",
        message: if back.is_some() {
            "There is no such page in this share. What was shared is still at its start."
        } else {
            "There is no such page here. Check the link you were given."
        },
        shared: None,
        back: back.as_deref(),
    };
    render(StatusCode::NOT_FOUND, &page)
}

/// The page for a page address asked with a method it does not take.
pub fn method_not_allowed() -> Response {
    let page =
        MessagePage { title: "Not available", message: "This page cannot be used that way.", shared: None, back: None };
    render(StatusCode::METHOD_NOT_ALLOWED, &page)
}

/// The page for a request that could not be read (a malformed address or form).
pub fn bad_request(status: StatusCode) -> Response {
    let page = MessagePage {
        title: "Something is wrong with this request",
        message: "Go back and try again.",
        shared: None,
        back: None,
    };
    render(status, &page)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_archive_in_the_making_shows_its_progress_and_refreshes() {
        use publinks_domain::model::ArchiveSource;
        let now = chrono::Utc::now();
        let archive = ArchiveView {
            id: publinks_domain::ids::ArchiveId::new(),
            name: "Spring.zip".into(),
            status: ArchiveStatus::Building,
            source: ArchiveSource::Selection { count: 4 },
            file_count: 4,
            total_bytes: 4_000_000,
            files_done: 1,
            bytes_done: 1_000_000,
            finishing: false,
            progress: 22,
            archive_size: None,
            failure: None,
            created_at: now,
            expires_at: None,
        };
        let page = ArchivePage {
            base: "/s/t",
            link_name: "Spring",
            archive: archive.clone(),
            status: "building",
            in_progress: true,
            shared: None,
        };
        let html = page.render().unwrap();
        assert!(html.contains(r#"<meta http-equiv="refresh" content="2">"#), "{html}");
        assert!(html.contains(r#"<progress max="100" value="22""#), "{html}");
        assert!(html.contains("1 of 4 files"), "{html}");
        assert!(!html.contains("Download ZIP"));

        let finishing =
            ArchiveView { files_done: 4, bytes_done: 4_000_000, finishing: true, progress: 95, ..archive.clone() };
        let html = ArchivePage { archive: finishing, ..page.clone() }.render().unwrap();
        assert!(html.contains("Finishing your ZIP") && html.contains(r#"value="95""#), "{html}");

        let ready = ArchiveView { status: ArchiveStatus::Ready, archive_size: Some(3_900_000), ..archive };
        let page = ArchivePage { archive: ready, status: "ready", in_progress: false, ..page };
        let html = page.render().unwrap();
        assert!(!html.contains("http-equiv=\"refresh\""), "a ready page stays still");
        assert!(html.contains("Download ZIP") && html.contains("3.9 MB"), "{html}");
        assert!(html.contains("Your ZIP is ready: 4 files,"), "{html}");
        let one = ArchiveView { file_count: 1, ..page.archive.clone() };
        let html = ArchivePage { archive: one, ..page }.render().unwrap();
        assert!(html.contains("Your ZIP is ready: 1 file,"), "{html}");
    }

    #[test]
    fn the_home_page_links_the_reference_and_the_demo() {
        let links = [ShareLink { what: "folder <x>".into(), url: "http://h/s/t".into(), password: Some("p w".into()) }];
        let html = HomePage { reference: "/api/docs", spec: "/api/openapi.json", links: &links }.render().unwrap();
        assert!(html.contains(r#"href="/api/docs""#) && html.contains(r#"href="http://h/s/t""#), "{html}");
        assert!(html.contains("folder &#60;x&#62;") || html.contains("folder &lt;x&gt;"), "{html}");
        let html = HomePage { reference: "/api/docs", spec: "/api/openapi.json", links: &[] }.render().unwrap();
        assert!(!html.contains("share links"), "{html}");
    }

    #[test]
    fn cards_without_a_preview_name_the_type_shortly() {
        for (content_type, label) in [
            ("application/pdf", "PDF"),
            ("audio/wav", "WAV"),
            ("audio/x-wav", "WAV"),
            ("text/plain; charset=utf-8", "TXT"),
            ("video/quicktime", "MOV"),
            ("image/svg+xml", "SVG"),
            ("application/vnd.openxmlformats-officedocument.wordprocessingml.document", "Document"),
            ("video/x-matroska", "Video"),
            ("nonsense", "Document"),
        ] {
            assert_eq!(kind_label(content_type), label, "{content_type}");
        }
    }

    #[test]
    fn names_are_escaped_in_pages() {
        let page = MessagePage { title: "<script>alert(1)</script>", message: "a & b", shared: None, back: None };
        let html = page.render().unwrap();
        assert!(!html.contains("<script>alert"), "{html}");
        assert!(html.contains("&#60;script&#62;") || html.contains("&lt;script&gt;"), "{html}");
    }
}
