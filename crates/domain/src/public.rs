//! What a visitor reaches through a share URL. Every read goes through a
//! [`Visit`]: the link found by its token, inside its validity window, with
//! a valid session when it has a password. Everything a visitor asks for is
//! checked against the link's scope; what they may see of a file is decided
//! in one place, [`PublicFile`].

use super::access;
use super::access::FolderTree;
use super::archives::read_manifest;
use super::archives::{self, ArchiveContents, ArchiveRequest, ArchiveService, ArchiveSettings, EntryCollector};
use super::links::token_hash;
use super::model::*;
use super::passwords::{self, Password};
use super::throttle::{self, GuessLimits};
use super::{DomainError, DomainResult};
use crate::activity::{Client, client_hash};
use crate::clock::Clock;
use crate::ids::*;
use crate::jobs::LibraryJob;
use crate::renditions::{
    Rendition, RenditionSize, ask_for_watermark, hand_out_renditions, renditions_asked_recently, stored_rendition,
    stored_watermarked,
};
use crate::signing::SecretKey;
use crate::store::*;
use crate::tokens::{self, VISITOR_AUDIENCE, VisitorClaims};
use crate::webhooks::{Once, WebhookEvent, WebhookService};
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

mod viewing;
pub use viewing::{InlineFile, MAX_INLINE_RESPONSE, MAX_TEXT_SHOWN, MediaKind};

/// Tunables of the public side.
#[derive(Clone, Debug)]
pub struct PublicSettings {
    /// How long a visitor session lasts.
    pub session_ttl: Duration,
    /// How long a download URL handed to a visitor works.
    pub download_url_ttl: Duration,
    pub guesses: GuessLimits,
    /// How long a link's activity log keeps an entry.
    pub activity_retention: Duration,
}

impl Default for PublicSettings {
    fn default() -> Self {
        PublicSettings {
            session_ttl: Duration::from_secs(2 * 3600),
            download_url_ttl: Duration::from_secs(60),
            guesses: GuessLimits::default(),
            activity_retention: Duration::from_secs(30 * 24 * 3600),
        }
    }
}

impl PublicSettings {
    /// The defaults, with the activity log's retention in days from
    /// `PUBLINKS_ACTIVITY_RETENTION_DAYS` (default 30).
    pub fn from_env() -> Result<Self, super::archives::SettingsError> {
        let d = PublicSettings::default();
        let days: u64 = super::read_setting(
            &|name| std::env::var(name).ok(),
            "PUBLINKS_ACTIVITY_RETENTION_DAYS",
            d.activity_retention.as_secs() / 86_400,
        )?;
        Ok(PublicSettings { activity_retention: Duration::from_secs(days.min(3650) * 86_400), ..d })
    }
}

/// A file as a visitor sees it: the allow-list. Tags, AI tags, custom
/// coordinates and metadata, owner, comments, storage keys and the
/// private/draft flags are deliberately absent.
#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
pub struct PublicFile {
    pub id: FileId,
    pub name: String,
    pub content_type: String,
    pub size: u64,
    pub width: Option<u32>,
    pub height: Option<u32>,
    pub embedded_metadata: BTreeMap<String, String>,
    #[serde(serialize_with = "crate::rfc3339::time")]
    pub created_at: DateTime<Utc>,
    /// When the current version was uploaded.
    #[serde(serialize_with = "crate::rfc3339::time")]
    pub updated_at: DateTime<Utc>,
    /// Whether `/thumbnail` and `/preview` serve renditions of it (once made).
    pub has_thumbnail: bool,
}

/// The fields of [`File`] and whether a visitor sees them; a test fails when a
/// field is added to the record without a decision here.
pub const FILE_FIELDS_SHOWN: &[&str] = &["id", "name", "current", "created_at", "updated_at"];
/// The fields of [`File`] a visitor never sees.
pub const FILE_FIELDS_HIDDEN: &[&str] = &[
    "account_id",
    "folder_id",
    "owner_id",
    "tags",
    "ai_tags",
    "custom_coordinates",
    "custom_metadata",
    "comments",
    "private",
    "published",
    "revision",
];
/// The fields of the current [`FileVersion`] a visitor sees.
pub const VERSION_FIELDS_SHOWN: &[&str] =
    &["content_type", "size", "width", "height", "embedded_metadata", "uploaded_at"];
/// The fields of the current [`FileVersion`] a visitor never sees.
pub const VERSION_FIELDS_HIDDEN: &[&str] =
    &["file_id", "number", "blob_key", "crc32", "sha256", "e_tag", "uploaded_by"];

impl PublicFile {
    /// What a visitor of `link` sees of `f`: the allow-list, without the
    /// identifying embedded metadata when the link hides it
    /// ([`is_identifying_field`](crate::inspect::is_identifying_field)).
    pub fn seen_through(f: &File, link: &Link) -> Self {
        Self::listed_through(ListedFile::from(f), link)
    }

    /// [`seen_through`](Self::seen_through) for a file read for a listing,
    /// which it takes (nothing of it is copied).
    pub fn listed_through(f: ListedFile, link: &Link) -> Self {
        Self::listed(f, link.hide_identifying_metadata)
    }

    /// `f` as a link shows it that hides its identifying embedded metadata
    /// or not (`hide_identifying`).
    fn listed(f: ListedFile, hide_identifying: bool) -> Self {
        let ListedFile { id, name, created_at, current, .. } = f;
        let mut embedded_metadata = current.embedded_metadata;
        if hide_identifying {
            embedded_metadata.retain(|name, _| !crate::inspect::is_identifying_field(name));
        }
        PublicFile {
            id,
            name,
            has_thumbnail: crate::renditions::renditions_possible(&current.content_type),
            content_type: current.content_type,
            size: current.size,
            width: current.width,
            height: current.height,
            embedded_metadata,
            created_at,
            updated_at: current.uploaded_at,
        }
    }
}

impl KeptFile {
    /// The form of what stores keep, with the rules that make it
    /// ([`form`](Self::form)). A test pins what a sample file is made into,
    /// so that a change to [`PublicFile`] fails until this is raised.
    pub const FORM: u32 = 1;

    /// The form a store records with each file's kept JSON: [`FORM`](Self::FORM)
    /// and a digest of the rules the JSON is made by (which fields
    /// identify, which files have renditions). A kept JSON of another form
    /// (another build's) is not served: the file is made from its record
    /// instead, and a store that recorded another form remakes what it
    /// keeps. Digits, `-` and hexadecimal digits only.
    pub fn form() -> String {
        Self::form_of(
            Self::FORM,
            crate::inspect::IDENTIFYING_PREFIX,
            crate::inspect::IDENTIFYING_FIELDS,
            crate::renditions::RENDITION_TYPES,
        )
    }

    fn form_of(form: u32, prefix: &str, identifying: &[&str], renditions: &[&str]) -> String {
        use sha2::Digest;
        let rules =
            format!("identifying: {prefix}*, {}; renditions: {}", identifying.join(", "), renditions.join(", "));
        format!("{form}-{}", hex::encode(&sha2::Sha256::digest(rules.as_bytes())[..8]))
    }

    /// What a listing shows of `f`, in both forms.
    pub fn of(f: &ListedFile) -> Self {
        let json = |hide| {
            serde_json::to_string(&PublicFile::listed(f.clone(), hide))
                .expect("a file's JSON is made from strings, numbers and a map of strings")
        };
        let identifying = f.current.embedded_metadata.keys().any(|name| crate::inspect::is_identifying_field(name));
        KeptFile {
            published: f.published,
            shown: json(false),
            shown_without_identifying: identifying.then(|| json(true)),
        }
    }

    /// The JSON a visitor of `link` is shown of this file: none for a draft
    /// the link does not expose.
    pub fn shown_through(self, link: &Link) -> Option<String> {
        if !link.shows(self.published) {
            return None;
        }
        match self.shown_without_identifying {
            Some(hidden) if link.hide_identifying_metadata => Some(hidden),
            _ => Some(self.shown),
        }
    }
}

/// A download as the visitor who made it sees it: never the account, the
/// link or the session it is recorded under.
#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
pub struct VisitorDownload {
    pub id: DownloadId,
    pub at: DateTime<Utc>,
    pub file_id: FileId,
    pub file_name: String,
    pub size: u64,
}

impl From<DownloadRecord> for VisitorDownload {
    fn from(d: DownloadRecord) -> Self {
        VisitorDownload { id: d.id, at: d.at, file_id: d.file_id, file_name: d.file_name, size: d.size }
    }
}

/// A folder as a visitor sees it.
#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
pub struct PublicFolder {
    pub id: FolderId,
    pub name: String,
}

impl From<&Folder> for PublicFolder {
    fn from(f: &Folder) -> Self {
        PublicFolder { id: f.id, name: f.name.clone() }
    }
}

/// A link as a visitor sees it.
#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
pub struct PublicLink {
    pub kind: TargetKind,
    /// The shared file's, folder's or collection's name.
    pub name: String,
    pub valid_until: Option<DateTime<Utc>>,
    pub password_protected: bool,
    /// The link shows previews only: a client offers no download, every
    /// route that hands out an original or a ZIP answers `downloads_forbidden`.
    pub preview_only: bool,
}

/// Who shares a link and until when: what every visitor page says of it,
/// the password page too.
#[derive(Clone, Debug, PartialEq)]
pub struct Sharer {
    /// The sharing account's name.
    pub name: String,
    pub valid_until: Option<DateTime<Utc>>,
    /// Whether the link hands out originals and ZIPs (not a preview-only
    /// link): the pages show download controls only then.
    pub downloads: bool,
    /// The account's accent colour (`#rrggbb`), if it set one.
    pub accent_color: Option<String>,
    /// The account's logo, if it has one: its version, which the pages
    /// replace with its address (`/s/{token}/api/logo?v={version}`).
    pub logo: Option<String>,
}

impl Sharer {
    fn of(account: Account, link: &Link) -> Self {
        Sharer {
            name: account.name,
            valid_until: link.valid_until,
            downloads: !link.preview_only,
            accent_color: account.branding.accent_color,
            logo: account.branding.logo.map(|l| l.version),
        }
    }
}

/// One page of a shared folder or collection.
#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Listing {
    /// The folder shown (`None` for a collection).
    pub folder: Option<PublicFolder>,
    /// From the shared folder down to the shown one's parent.
    pub breadcrumbs: Vec<PublicFolder>,
    pub subfolders: Vec<PublicFolder>,
    pub files: Vec<PublicFile>,
    pub next_cursor: Option<String>,
}

/// What a folder's listing page shows above its files: the folder
/// (`chain[0]`), the breadcrumbs from the shared folder down to its parent
/// (the rest of `chain`, nearest first), and its subfolders.
fn listing_head(
    chain: &[Folder],
    subfolders: &Page<Folder>,
) -> (Option<PublicFolder>, Vec<PublicFolder>, Vec<PublicFolder>) {
    (
        Some(PublicFolder::from(&chain[0])),
        chain[1..].iter().rev().map(PublicFolder::from).collect(),
        subfolders.items.iter().map(PublicFolder::from).collect(),
    )
}

/// [`Listing`] as the API answers it, in the same JSON ([`to_json`](Self::to_json)):
/// its files spliced as a store keeps them ([`KeptFile`]), or made as they are read.
#[derive(Clone, Debug)]
pub struct ListingAnswer {
    /// As [`Listing::folder`].
    pub folder: Option<PublicFolder>,
    /// As [`Listing::breadcrumbs`].
    pub breadcrumbs: Vec<PublicFolder>,
    /// As [`Listing::subfolders`].
    pub subfolders: Vec<PublicFolder>,
    /// As [`Listing::files`], kept or made.
    pub files: Vec<AnsweredFile>,
    /// As [`Listing::next_cursor`].
    pub next_cursor: Option<String>,
}

/// A file of a [`ListingAnswer`].
#[derive(Clone, Debug)]
pub enum AnsweredFile {
    /// As the store keeps it: JSON made by [`KeptFile::of`].
    Kept(String),
    /// Made as it was read (a collection's files, read whole by id).
    Made(PublicFile),
}

impl ListingAnswer {
    /// The answer's JSON: [`Listing`]'s, field for field (a test compares
    /// them), with each kept file written as it was kept.
    pub fn to_json(&self) -> Vec<u8> {
        fn field(out: &mut Vec<u8>, name: &str, value: &impl Serialize) {
            out.extend_from_slice(name.as_bytes());
            serde_json::to_writer(&mut *out, value).expect("a listing's JSON is made from strings and numbers");
        }
        let kept: usize =
            self.files.iter().map(|f| if let AnsweredFile::Kept(json) = f { json.len() } else { 0 }).sum();
        let mut out = Vec::with_capacity(kept + 1024);
        field(&mut out, "{\"folder\":", &self.folder);
        field(&mut out, ",\"breadcrumbs\":", &self.breadcrumbs);
        field(&mut out, ",\"subfolders\":", &self.subfolders);
        out.extend_from_slice(b",\"files\":[");
        for (i, file) in self.files.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            match file {
                AnsweredFile::Kept(json) => out.extend_from_slice(json.as_bytes()),
                AnsweredFile::Made(file) => field(&mut out, "", file),
            }
        }
        field(&mut out, "],\"next_cursor\":", &self.next_cursor);
        out.push(b'}');
        out
    }
}

impl From<Listing> for ListingAnswer {
    fn from(l: Listing) -> Self {
        ListingAnswer {
            folder: l.folder,
            breadcrumbs: l.breadcrumbs,
            subfolders: l.subfolders,
            files: l.files.into_iter().map(AnsweredFile::Made).collect(),
            next_cursor: l.next_cursor,
        }
    }
}

/// Where a file stands among the files shown beside it (its folder's, or
/// the shared collection's), in the order of the listing pages: what the
/// viewer's previous/next and "12 of 60" need.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Neighbours {
    /// From 1.
    pub position: usize,
    pub total: usize,
    pub previous: Option<FileId>,
    pub next: Option<FileId>,
}

/// Most files read to place a file among its neighbours (pages of 200).
pub const MAX_NEIGHBOURS: usize = 10_000;

/// A checked visit: the link is open and the visitor may read through it.
#[derive(Clone, Debug)]
pub struct Visit {
    pub link: Link,
    /// The visitor's session, when they have one.
    pub session: Option<String>,
    /// Where the request comes from (only its hash is recorded).
    pub client: Client,
    /// Who shares the link and until when (from the account the visit read).
    pub sharer: Sharer,
    /// The account's watermark (its text or its logo), burned into the
    /// large previews a preview-only link serves.
    pub watermark: Option<crate::branding::Watermark>,
    /// The events the account's webhooks want (from the same account).
    pub webhook_events: Vec<WebhookEvent>,
    /// The shared folder's record, read with the link
    /// ([`LinkStore::link_opening`]): naming the link and walking up to it
    /// read it no more.
    shared_folder: Option<Folder>,
}

impl Visit {
    /// Refuses, on a preview-only link, whatever would hand out an original
    /// or a ZIP: the one check every download route makes.
    pub fn require_downloads(&self) -> DomainResult<()> {
        if self.link.preview_only { Err(DomainError::DownloadsForbidden) } else { Ok(()) }
    }
}

/// A new visitor session.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct Session {
    /// The session id (downloads are listed by it); inside the token too.
    #[serde(skip)]
    pub id: String,
    pub token: String,
    pub expires_at: DateTime<Utc>,
}

/// Most subfolders shown at once in a shared folder.
const MAX_SUBFOLDERS: u32 = 500;

/// How often a guess tries again when another guess changed a shared bucket
/// at the same moment (the link's buckets, which every network uses).
const SHARED_BUCKET_RETRIES: u32 = 8;

/// The counter of a link's limit on `what` (`downloads`, `sessions`).
pub(crate) fn usage_key(link: &Link, what: &str) -> String {
    format!("usage:{}:{what}", link.id)
}

/// The limit a link now sets on `what` (`downloads`, `sessions`).
pub(crate) fn usage_limit(link: &Link, what: &str) -> Option<u32> {
    if what == "downloads" { link.max_downloads } else { link.max_sessions }
}

/// The key of a link's guess buckets: one per client network (its keyed hash; kept across
/// password changes: a network that guessed wrong keeps waiting), or the
/// shared ones of the current password version (a new password starts anew).
fn guess_key(link: &Link, network: Option<&str>) -> String {
    match network {
        Some(network) => format!("guess:{}:{network}", link.id),
        None => format!("guess:{}:v{}", link.id, link.password_version),
    }
}

/// The shared bucket a guess draws from: new networks' or retrying ones'.
fn lane(limits: &GuessLimits, first: bool) -> (&'static str, throttle::Rule) {
    if first { ("new", limits.new_networks) } else { ("retry", limits.retrying_networks) }
}

/// Whether guessing on `link`'s current password is being slowed down at
/// `now` (one of its shared buckets is empty): what its owner is shown.
pub async fn guessing_slowed(
    store: &dyn ThrottleStore,
    limits: &GuessLimits,
    link: &Link,
    now: DateTime<Utc>,
) -> DomainResult<bool> {
    if link.password_hash.is_none() {
        return Ok(false);
    }
    for first in [true, false] {
        let (lane, rule) = lane(limits, first);
        if let Some(state) = store.throttle_state(&format!("{}:{lane}", guess_key(link, None))).await?
            && throttle::exhausted(rule, &state, now)
        {
            return Ok(true);
        }
    }
    Ok(false)
}

/// The public side's service behind `public-api`.
#[derive(Clone)]
pub struct PublicService {
    catalog: Arc<dyn Catalog>,
    links: Arc<dyn LinkRecords>,
    visitors: Arc<dyn VisitorRecords>,
    blobs: Arc<dyn BlobStore>,
    /// Archive manifests, to check an archive before it is downloaded.
    archives: Arc<dyn ArchiveStore>,
    session_key: SecretKey,
    settings: PublicSettings,
    clock: Arc<dyn Clock>,
    /// Where watermarked previews and missing renditions are asked for (the library jobs' queue).
    jobs: Option<Arc<dyn LibraryJobQueue>>,
    /// Told of first opens, limits reached and guessing; `None`: nobody is.
    webhooks: Option<WebhookService>,
}

impl PublicService {
    /// A service over these stores, signing sessions with `session_key`.
    pub fn new(stores: &Stores, session_key: SecretKey, settings: PublicSettings) -> Self {
        PublicService {
            catalog: stores.catalog.clone(),
            links: stores.links.clone(),
            visitors: stores.visitors.clone(),
            blobs: stores.blobs.clone(),
            archives: stores.archives.clone(),
            session_key,
            settings,
            clock: stores.clock.clone(),
            jobs: None,
            webhooks: None,
        }
    }

    /// Tells the account's webhooks of what visitors do that they want to know.
    pub fn with_webhooks(mut self, webhooks: WebhookService) -> Self {
        self.webhooks = Some(webhooks);
        self
    }

    async fn tell(&self, link: &Link, event: WebhookEvent, once: Option<Once>, reason: Option<&str>) {
        if let Some(w) = &self.webhooks {
            w.notify_quietly(link, event, once, reason).await;
        }
    }

    /// Hands the watermarking of previews, and the renditions a view finds
    /// missing, to `queue` (the library jobs').
    pub fn with_jobs(mut self, queue: Arc<dyn LibraryJobQueue>) -> Self {
        self.jobs = Some(queue);
        self
    }

    /// The logo of the account sharing the link behind `token` (no session
    /// needed: the password page shows it): its bytes and type.
    pub async fn logo(&self, token: &str) -> DomainResult<(Vec<u8>, String)> {
        let (_, account, _) = self.open_with_account(token).await?;
        crate::branding::read_logo(self.blobs.as_ref(), &account).await
    }

    /// The time this service reads: for what the edge computes from it
    /// (how long an archive still waits, a cookie's age).
    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    /// What a client network (`throttle::network_of`) is stored as in the
    /// keys that are per network (guess throttles, archive places): its
    /// keyed hash, never the address.
    pub fn network_hash(&self, network: &str) -> String {
        crate::activity::network_hash(&self.session_key, network)
    }

    /// The link behind a share token, if it is open now. Missing, deleted and
    /// expired links give the same `LinkUnavailable`.
    pub async fn open(&self, token: &str) -> DomainResult<Link> {
        Ok(self.open_with_account(token).await?.0)
    }

    /// [`open`](Self::open), with the sharing account it read on the way
    /// (links work on the Enterprise plan only, checked on every request,
    /// before anything is said of the link) and, for a folder link, the
    /// shared folder (read with them).
    async fn open_with_account(&self, token: &str) -> DomainResult<(Link, Account, Option<Folder>)> {
        if token.is_empty() || token.len() > 128 {
            return Err(DomainError::LinkUnavailable);
        }
        let LinkOpening { link, account, shared_folder } =
            self.links.link_opening(&token_hash(token)).await?.ok_or(DomainError::LinkUnavailable)?;
        // A link of an account off the Enterprise plan (or gone) says nothing
        // more, not even when it would open.
        let account = account.filter(|a| a.plan == Plan::Enterprise).ok_or(DomainError::LinkUnavailable)?;
        let now = self.clock.now();
        match link.state(now) {
            LinkState::Expired | LinkState::Exhausted => Err(DomainError::LinkUnavailable),
            LinkState::Scheduled => Err(DomainError::LinkScheduled { opens_at: link.valid_from.unwrap_or(now) }),
            LinkState::Active => Ok((link, account, shared_folder)),
        }
    }

    /// Who shares the link behind `token` and until when, for a page that
    /// has no visit yet (the password page).
    pub async fn sharer_of(&self, token: &str) -> DomainResult<Sharer> {
        let (link, account, _) = self.open_with_account(token).await?;
        Ok(Sharer::of(account, &link))
    }

    /// The visit a request from `client` makes with `session` (a cookie or bearer token).
    pub async fn visit(&self, token: &str, session: Option<&str>, client: Client) -> DomainResult<Visit> {
        let (link, account, shared_folder) = self.open_with_account(token).await?;
        let claims =
            session.and_then(|s| tokens::verify_visitor(&self.session_key, s)).filter(|c| c.lnk == link.id.to_string());
        let valid = claims.filter(|c| c.pwv == link.password_version);
        if link.password_hash.is_some() && valid.is_none() {
            return Err(DomainError::PasswordRequired);
        }
        let watermark = account.branding.watermark(account.id);
        let webhook_events = account.webhook_events.clone();
        let sharer = Sharer::of(account, &link);
        Ok(Visit { session: valid.map(|c| c.sub), link, client, sharer, watermark, webhook_events, shared_folder })
    }

    /// Records what the visitor did in the link's activity log and counters:
    /// the client only as a keyed hash of its network.
    pub async fn record(&self, visit: &Visit, event: LinkEvent, file: Option<FileId>, bytes: u64) -> DomainResult<()> {
        self.record_for(&visit.link, &visit.client, event, file, bytes).await?;
        // A first open is looked for only where a webhook wants it (the
        // account read for the visit says so): other visits cost nothing more.
        if event == LinkEvent::PageOpened && visit.webhook_events.contains(&WebhookEvent::LinkFirstOpened) {
            // Remembered for as long as the link can be visited.
            let until = visit.link.valid_until.unwrap_or(self.clock.now() + chrono::Duration::days(3650));
            let once = Once { key: format!("first_opened:{}", visit.link.id), until };
            self.tell(&visit.link, WebhookEvent::LinkFirstOpened, Some(once), None).await;
        }
        Ok(())
    }

    /// Counts one use of a link's limit `max` (`what`: `downloads` or
    /// `sessions`) with one conditional write, so that of any number of
    /// concurrent requests exactly `max` pass. The one that reaches it ends
    /// the link ([`exhaust`](Self::exhaust)); any later one finds it gone.
    /// A request that finds the counter at the limit it read looks at the
    /// link again: a manager may have raised or removed it meanwhile.
    pub async fn charge(&self, link: &Link, what: &'static str, max: Option<u32>) -> DomainResult<()> {
        let now = self.clock.now();
        let keep = link.valid_until.unwrap_or(now + chrono::Duration::days(3650)) + chrono::Duration::days(1);
        let mut max = max;
        for _ in 0..8 {
            let Some(limit) = max else { return Ok(()) };
            match self.visitors.count_up(&usage_key(link, what), limit, keep).await? {
                Some(count) if count < limit => return Ok(()),
                Some(count) => {
                    self.exhaust(link, what, count).await?;
                    return Ok(());
                }
                None => {
                    let current = self.links.link(link.id).await?.ok_or(DomainError::LinkUnavailable)?;
                    match usage_limit(&current, what) {
                        Some(now_max) if now_max > limit && current.exhausted_at.is_none() => max = Some(now_max),
                        None if current.exhausted_at.is_none() => return Ok(()),
                        _ => {
                            self.exhaust(link, what, limit).await?;
                            return Err(DomainError::LinkUnavailable);
                        }
                    }
                }
            }
        }
        Err(DomainError::Conflict { code: "busy", message: "the link is being changed by others; try again".into() })
    }

    /// Ends a link whose limit on `what` was reached at `count`:
    /// `exhausted_at` and `valid_until` set to now, recorded in the audit log
    /// as the system's change, so that it goes the way of expired links (the
    /// sweep, DynamoDB's TTL). Nothing happens if the link's limit is now
    /// above `count` (a manager raised or removed it meanwhile).
    async fn exhaust(&self, link: &Link, what: &str, count: u32) -> DomainResult<()> {
        for _ in 0..8 {
            let Some(mut current) = self.links.link(link.id).await? else { return Ok(()) };
            if current.exhausted_at.is_some() || usage_limit(&current, what).is_none_or(|max| max > count) {
                return Ok(());
            }
            let now = self.clock.now();
            let until = current.valid_until.map_or(now, |u| u.min(now));
            let changes = LinkChanges {
                valid_until: Some(ValueChange { from: current.valid_until, to: Some(until) }),
                ..LinkChanges::default()
            };
            current.exhausted_at = Some(now);
            current.valid_until = Some(until);
            current.updated_at = now;
            let actor = AuditActor::System { reason: SystemReason::Exhausted };
            // The entry is named for the revision the change makes, as a user's update's.
            let next = Link { revision: current.revision + 1, ..current.clone() };
            let audit = super::links::entry(&next, actor, AuditAction::Updated, changes, now);
            match self.links.replace_link(&current, &audit).await {
                Ok(stored) => {
                    self.tell(&stored, WebhookEvent::LinkLimitReached, None, Some(what)).await;
                    return Ok(());
                }
                Err(StoreError::NotFound(_)) => return Ok(()),
                Err(StoreError::Conflict(_)) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(DomainError::Conflict { code: "busy", message: "the link is being changed by others; try again".into() })
    }

    async fn record_for(
        &self,
        link: &Link,
        client: &Client,
        event: LinkEvent,
        file_id: Option<FileId>,
        bytes: u64,
    ) -> DomainResult<()> {
        // Microseconds, the precision every store keeps times at.
        let at = chrono::SubsecRound::trunc_subsecs(self.clock.now(), 6);
        let keep = chrono::Duration::from_std(self.settings.activity_retention).unwrap_or(chrono::Duration::days(30));
        let entry = ActivityEntry {
            id: ActivityId::new(),
            link_id: link.id,
            at,
            event,
            file_id,
            bytes,
            client: client_hash(&self.session_key, client),
            country: client.country_code(),
            keep_until: at + keep,
        };
        Ok(self.visitors.record_activity(&entry).await?)
    }

    /// What the visitor is told about the link itself.
    pub async fn describe(&self, visit: &Visit) -> DomainResult<PublicLink> {
        let name = match visit.link.target {
            Target::File(id) => self.catalog.file(id).await?.map(|f| f.name),
            // Read with the link: `None` if it was gone then.
            Target::Folder(_) => visit.shared_folder.as_ref().map(|f| f.name.clone()),
            Target::Collection(id) => self.catalog.collection(id).await?.map(|c| c.name),
        }
        .ok_or(DomainError::LinkUnavailable)?;
        Ok(PublicLink {
            kind: visit.link.target.kind(),
            name,
            valid_until: visit.link.valid_until,
            password_protected: visit.link.password_hash.is_some(),
            preview_only: visit.link.preview_only,
        })
    }

    /// Starts a visitor session: with the password for a protected link
    /// (throttled before any hashing), without one otherwise.
    pub async fn start_session(
        &self,
        token: &str,
        password: Option<&Password>,
        network: &str,
    ) -> DomainResult<Session> {
        self.start_session_at(token, password, network, self.clock.now()).await
    }

    /// [`start_session`](Self::start_session) for a request from `client`
    /// (its throttle network derived from its address).
    pub async fn start_session_from(
        &self,
        token: &str,
        password: Option<&Password>,
        client: &Client,
    ) -> DomainResult<Session> {
        let network = client.ip.map(throttle::network_of).unwrap_or_else(|| "unknown".into());
        self.unlock(token, password, &network, client, self.clock.now()).await
    }

    /// [`start_session`](Self::start_session) with the guess counted at
    /// `now`: the clock of the throttle is a parameter, so that an hour of
    /// guessing can be replayed in seconds (the README's bounds are tested so).
    ///
    /// The guess is counted for its network first (refused while that
    /// network waits), then takes a token from the link's bucket for new
    /// networks or for networks that already failed. A new network refused
    /// by its bucket gets its attempt back, so that it stays new.
    pub async fn start_session_at(
        &self,
        token: &str,
        password: Option<&Password>,
        network: &str,
        now: DateTime<Utc>,
    ) -> DomainResult<Session> {
        let client = Client { ip: network.parse().ok(), country: None };
        self.unlock(token, password, network, &client, now).await
    }

    async fn unlock(
        &self,
        token: &str,
        password: Option<&Password>,
        network: &str,
        client: &Client,
        now: DateTime<Utc>,
    ) -> DomainResult<Session> {
        let link = self.open(token).await?;
        if let Some(hash) = &link.password_hash {
            let password = password.ok_or(DomainError::PasswordRequired)?;
            let limits = self.settings.guesses;
            let visitors = self.visitors.as_ref();
            let network_key = guess_key(&link, Some(&self.network_hash(network)));
            let counted = throttle::take_counted(visitors, &network_key, limits.per_network, now, 0).await?;
            let first = counted.before.attempts == 0;
            let (lane, rule) = lane(&limits, first);
            let lane_key = format!("{}:{lane}", guess_key(&link, None));
            if let Err(refused) = throttle::take_counted(visitors, &lane_key, rule, now, SHARED_BUCKET_RETRIES).await {
                // Guessing is being slowed down: told at most once an hour per link.
                let key = format!("under_attack:{}:{}", link.id, now.format("%Y-%m-%dT%H"));
                let once = Once { key, until: now + chrono::Duration::hours(1) };
                self.tell(&link, WebhookEvent::LinkUnderAttack, Some(once), None).await;
                if first {
                    throttle::give_back(visitors, &network_key, limits.per_network, &counted, now).await?;
                    return Err(refused);
                }
                // The attempt stays counted: say when this network may try again.
                let network_wait = throttle::attempt(limits.per_network, &counted.before, now)
                    .ok()
                    .and_then(|s| s.blocked_until)
                    .map_or(0, |until| (until - now).num_seconds().max(0) as u64);
                return Err(match refused {
                    DomainError::Throttled { retry_after } => {
                        DomainError::Throttled { retry_after: retry_after.max(network_wait) }
                    }
                    other => other,
                });
            }
            if !passwords::verify(password, hash).await {
                self.record_for(&link, client, LinkEvent::WrongPassword, None, 0).await?;
                return Err(DomainError::WrongPassword);
            }
            throttle::clear(visitors, &network_key, limits.per_network, now).await?;
        }
        self.charge(&link, "sessions", link.max_sessions).await?;
        self.record_for(&link, client, LinkEvent::SessionStarted, None, 0).await?;
        Ok(self.issue_session(&link))
    }

    fn issue_session(&self, link: &Link) -> Session {
        let mut id = [0u8; 16];
        rand::RngCore::fill_bytes(&mut rand::rng(), &mut id);
        let expires_at = self.clock.now() + chrono::Duration::from_std(self.settings.session_ttl).expect("TTL fits");
        let id = uuid::Uuid::from_bytes(id).to_string();
        let claims = VisitorClaims {
            sub: id.clone(),
            aud: VISITOR_AUDIENCE.into(),
            lnk: link.id.to_string(),
            pwv: link.password_version,
            exp: expires_at.timestamp(),
        };
        Session { id, token: tokens::issue_visitor(&self.session_key, &claims), expires_at }
    }

    /// A session for a visit that has none yet (first visit of an unprotected link).
    pub fn session_for(&self, visit: &Visit) -> Session {
        self.issue_session(&visit.link)
    }

    /// A file the link reaches: the target itself, or (for folders and
    /// collections) one inside, published unless the link exposes drafts.
    pub async fn file(&self, visit: &Visit, id: FileId) -> DomainResult<File> {
        let link = &visit.link;
        let file = match self.catalog.file(id).await? {
            Some(f) if f.account_id == link.account_id => f,
            _ => return Err(DomainError::NotFound("file")),
        };
        let visible = link.shows(file.published);
        let in_scope = match link.target {
            Target::File(target) => target == file.id,
            Target::Folder(root) => {
                visible
                    && access::folder_chain_up_to(
                        self.catalog.as_ref(),
                        file.folder_id,
                        root,
                        visit.shared_folder.as_ref(),
                    )
                    .await?
                    .is_some()
            }
            Target::Collection(c) => visible && self.catalog.collections_of_file(file.id).await?.contains(&c),
        };
        if in_scope { Ok(file) } else { Err(DomainError::NotFound("file")) }
    }

    /// One page of a shared folder (`folder`: the shared one when `None`, or
    /// one under it) or of a shared collection.
    pub async fn listing(&self, visit: &Visit, folder: Option<FolderId>, page: &PageRequest) -> DomainResult<Listing> {
        let link = &visit.link;
        match link.target {
            Target::Folder(root) => {
                let (chain, first) = self.shown_folder(visit, root, folder, page).await?;
                self.listed_page(link, &chain, first.as_ref(), page).await
            }
            Target::Collection(c) => {
                if folder.is_some() {
                    return Err(DomainError::NotFound("folder"));
                }
                let items = self.catalog.collection_items(c, page).await?;
                let ids: Vec<FileId> = items.items.iter().map(|i| i.file_id).collect();
                let mut found: std::collections::HashMap<FileId, File> =
                    self.catalog.files_by_ids(&ids).await?.into_iter().map(|f| (f.id, f)).collect();
                let files = ids
                    .iter()
                    .filter_map(|id| found.remove(id))
                    .filter(|f| f.account_id == link.account_id && link.shows(f.published))
                    .map(|f| PublicFile::seen_through(&f, link))
                    .collect();
                Ok(Listing {
                    folder: None,
                    breadcrumbs: Vec::new(),
                    subfolders: Vec::new(),
                    files,
                    next_cursor: items.next.map(|c| c.0),
                })
            }
            Target::File(_) => Err(DomainError::NotFound("folder")),
        }
    }

    /// [`listing`](Self::listing) as the API answers it: for a folder, each
    /// file spliced as the store keeps it ([`KeptFile`]).
    pub async fn listing_answer(
        &self,
        visit: &Visit,
        folder: Option<FolderId>,
        page: &PageRequest,
    ) -> DomainResult<ListingAnswer> {
        let link = &visit.link;
        let Target::Folder(root) = link.target else {
            return Ok(self.listing(visit, folder, page).await?.into());
        };
        let (chain, first) = self.shown_folder(visit, root, folder, page).await?;
        let kept = self.catalog.folder_listing_kept(link.account_id, Some(chain[0].id), first.as_ref(), page).await?;
        let Some((subfolders, files)) = kept else {
            return Ok(self.listed_page(link, &chain, first.as_ref(), page).await?.into());
        };
        let (folder, breadcrumbs, subfolders) = listing_head(&chain, &subfolders);
        Ok(ListingAnswer {
            folder,
            breadcrumbs,
            subfolders,
            files: files.items.into_iter().filter_map(|f| f.shown_through(link)).map(AnsweredFile::Kept).collect(),
            next_cursor: files.next.map(|c| c.0),
        })
    }

    /// A page of the folder `chain[0]` (as [`shown_folder`](Self::shown_folder)
    /// read it), made from its files' listed fields.
    async fn listed_page(
        &self,
        link: &Link,
        chain: &[Folder],
        first: Option<&PageRequest>,
        page: &PageRequest,
    ) -> DomainResult<Listing> {
        let (subfolders, files) = self.catalog.folder_listing(link.account_id, Some(chain[0].id), first, page).await?;
        let (folder, breadcrumbs, subfolders) = listing_head(chain, &subfolders);
        Ok(Listing {
            folder,
            breadcrumbs,
            subfolders,
            files: files
                .items
                .into_iter()
                .filter(|f| link.shows(f.published))
                .map(|f| PublicFile::listed_through(f, link))
                .collect(),
            next_cursor: files.next.map(|c| c.0),
        })
    }

    /// The folder a page of a folder link shows (`folder`, or the shared
    /// `root` when `None`) and its chain up to `root`, checked to be under
    /// it and the link's account's; and its subfolders' page, on the first
    /// page of its files only.
    async fn shown_folder(
        &self,
        visit: &Visit,
        root: FolderId,
        folder: Option<FolderId>,
        page: &PageRequest,
    ) -> DomainResult<(Vec<Folder>, Option<PageRequest>)> {
        let shown = folder.unwrap_or(root);
        let chain = access::folder_chain_up_to(self.catalog.as_ref(), Some(shown), root, visit.shared_folder.as_ref())
            .await?
            .filter(|chain| chain[0].account_id == visit.link.account_id)
            .ok_or(DomainError::NotFound("folder"))?;
        Ok((chain, page.cursor.is_none().then(|| PageRequest::first(MAX_SUBFOLDERS))))
    }

    /// Where `file` (one the visit reaches) stands among the files shown
    /// beside it: the visible files of its folder for a folder link, the
    /// collection's for a collection link; `None` for a file link, or beyond
    /// the first [`MAX_NEIGHBOURS`] files.
    pub async fn neighbours(&self, visit: &Visit, file: &File) -> DomainResult<Option<Neighbours>> {
        let link = &visit.link;
        let mut ids = Vec::new();
        let mut page = PageRequest::first(200);
        while ids.len() < MAX_NEIGHBOURS {
            let (batch, next): (Vec<FileId>, Option<Cursor>) = match link.target {
                Target::Folder(_) => {
                    let files = self.catalog.listed_files_in_folder(link.account_id, file.folder_id, &page).await?;
                    let shown = files.items.iter().filter(|f| link.shows(f.published));
                    (shown.map(|f| f.id).collect(), files.next)
                }
                Target::Collection(_) => {
                    let listing = self.listing(visit, None, &page).await?;
                    (listing.files.iter().map(|f| f.id).collect(), listing.next_cursor.map(Cursor))
                }
                Target::File(_) => return Ok(None),
            };
            ids.extend(batch);
            match next {
                Some(cursor) => page = PageRequest { cursor: Some(cursor), limit: 200 },
                None => break,
            }
        }
        let Some(i) = ids.iter().position(|id| *id == file.id) else { return Ok(None) };
        Ok(Some(Neighbours {
            position: i + 1,
            total: ids.len(),
            previous: i.checked_sub(1).map(|j| ids[j]),
            next: ids.get(i + 1).copied(),
        }))
    }

    /// A short-lived URL that downloads a file's current version, recorded
    /// as a download via this link in this session.
    pub async fn download_url(&self, visit: &Visit, id: FileId) -> DomainResult<String> {
        visit.require_downloads()?;
        let file = self.file(visit, id).await?;
        self.charge(&visit.link, "downloads", visit.link.max_downloads).await?;
        let record = DownloadRecord {
            id: DownloadId::new(),
            account_id: file.account_id,
            at: self.clock.now(),
            by: Downloader::PublicLink { link_id: visit.link.id, session: visit.session.clone().unwrap_or_default() },
            file_id: file.id,
            file_name: file.name.clone(),
            version: file.current.number,
            size: file.current.size,
        };
        let event = self.record(visit, LinkEvent::Downloaded, Some(file.id), file.current.size);
        let (recorded, counted) = futures_util::future::join(self.visitors.record_download(&record), event).await;
        recorded?;
        counted?;
        Ok(self.blobs.presign_get(&file.current.blob_key, &file.name, self.settings.download_url_ttl).await?)
    }

    /// The downloads made through this link in this session; refused on a
    /// preview-only link, whose visitors have nothing to download.
    pub async fn downloads(&self, visit: &Visit, page: &PageRequest) -> DomainResult<Page<DownloadRecord>> {
        visit.require_downloads()?;
        match &visit.session {
            Some(session) => Ok(self.visitors.visitor_downloads(visit.link.id, session, page).await?),
            None => Ok(Page { items: Vec::new(), next: None }),
        }
    }

    /// What an archive of `request` holds for this visit: only what the link
    /// reaches (its scope, drafts only if it exposes them, current versions).
    pub async fn archive_contents(
        &self,
        visit: &Visit,
        request: &ArchiveRequest,
        settings: &ArchiveSettings,
    ) -> DomainResult<ArchiveContents> {
        visit.require_downloads()?;
        let link = &visit.link;
        let mut collector = EntryCollector::new(settings);
        let visible = |f: &File| link.shows(f.published);
        let link_name = self.describe(visit).await?.name;
        // Asking for the shared collection by id is asking for the whole link.
        let whole_link = ArchiveRequest::Folder(None);
        let request = match (request, link.target) {
            (ArchiveRequest::Collection(asked), Target::Collection(c)) if *asked == c => &whole_link,
            _ => request,
        };
        let (source, name) = match (request, link.target) {
            (ArchiveRequest::Files(ids), _) => {
                // Read in batches: a long selection costs a few round trips, not one per file.
                let found = self.catalog.files_by_ids(ids).await?;
                let (reached, _) = self.reached(link, &found, Vec::new()).await?;
                let mut found: HashMap<FileId, File> =
                    found.into_iter().filter(|f| reached.contains(&f.id)).map(|f| (f.id, f)).collect();
                let mut files = Vec::with_capacity(ids.len());
                for id in ids {
                    let file = found.remove(id).ok_or(DomainError::NotFound("file"))?;
                    collector.admit(&file)?;
                    files.push(file);
                }
                collector.place("", &[], &files);
                (ArchiveSource::Selection { count: ids.len() as u32 }, link_name)
            }
            (ArchiveRequest::Folder(None), Target::File(id)) => {
                let file = self.file(visit, id).await?;
                collector.admit(&file)?;
                collector.place("", &[], &[file]);
                (ArchiveSource::Selection { count: 1 }, link_name)
            }
            (ArchiveRequest::Folder(None), Target::Collection(c)) => {
                archives::collect_collection(self.catalog.as_ref(), link.account_id, c, visible, &mut collector)
                    .await?;
                (ArchiveSource::Collection { collection_id: c }, link_name)
            }
            (ArchiveRequest::Folder(folder), Target::Folder(root)) => {
                let shown = folder.unwrap_or(root);
                let chain =
                    access::folder_chain_up_to(self.catalog.as_ref(), Some(shown), root, visit.shared_folder.as_ref())
                        .await?
                        .filter(|chain| chain[0].account_id == link.account_id)
                        .ok_or(DomainError::NotFound("folder"))?;
                archives::collect_folder(self.catalog.as_ref(), link.account_id, shown, visible, &mut collector)
                    .await?;
                let name = if shown == root { link_name } else { chain[0].name.clone() };
                (ArchiveSource::Folder { folder_id: shown }, name)
            }
            (ArchiveRequest::Collection(_), _) => return Err(DomainError::NotFound("collection")),
            (ArchiveRequest::Folder(_), _) => return Err(DomainError::NotFound("folder")),
        };
        Ok(ArchiveContents { source, name, entries: collector.finish()? })
    }

    /// Which of `files` the link reaches now, read in batches (what
    /// [`file`](Self::file) decides for one): the target of a file link; for
    /// a folder, those under the shared folder; for a collection, its
    /// members; drafts only where the link exposes them. For a folder link,
    /// also the folder tree read on the way (the files' folders, `folders`
    /// and everything up to the shared folder).
    async fn reached(
        &self,
        link: &Link,
        files: &[File],
        folders: Vec<FolderId>,
    ) -> DomainResult<(HashSet<FileId>, FolderTree)> {
        let mine = files.iter().filter(|f| f.account_id == link.account_id);
        let visible = |f: &&File| link.shows(f.published);
        Ok(match link.target {
            Target::File(target) => (mine.filter(|f| f.id == target).map(|f| f.id).collect(), FolderTree::default()),
            Target::Folder(root) => {
                let starts = files.iter().filter_map(|f| f.folder_id).chain(folders).collect();
                let tree = FolderTree::load(self.catalog.as_ref(), starts, Some(root)).await?;
                let reached = mine.filter(visible).filter(|f| tree.within(f.folder_id, root)).map(|f| f.id).collect();
                (reached, tree)
            }
            Target::Collection(c) => {
                let candidates: Vec<FileId> = mine.filter(visible).map(|f| f.id).collect();
                let members = self.catalog.members_among(c, &candidates).await?;
                (members.into_iter().collect(), FolderTree::default())
            }
        })
    }

    /// Checks that an archive made earlier still holds what the link reaches
    /// now, before a visitor downloads it: every file still exists, at the
    /// version recorded, inside the link's scope (under the shared folder, in
    /// the collection, published unless the link exposes drafts); for an
    /// archive of a folder, every file and folder still where it was (the
    /// same folder, the same parents) and that folder still inside the
    /// link. `ArchiveOutdated` otherwise, with the request that would make a
    /// current one. Reads in batches: an archive of 10,000 files costs about
    /// a hundred round trips on DynamoDB.
    pub async fn check_archive(&self, visit: &Visit, job: &ArchiveJob) -> DomainResult<()> {
        let link = &visit.link;
        let entries = read_manifest(self.archives.as_ref(), &job.manifest_key).await?;
        let ids: Vec<FileId> = entries.iter().filter_map(|e| e.file_id).collect();
        let files = self.catalog.files_by_ids(&ids).await?;
        let archived_folder = match job.source {
            ArchiveSource::Folder { folder_id } => Some(folder_id),
            _ => None,
        };
        let folders = entries.iter().filter(|e| e.file_id.is_none()).filter_map(|e| e.folder_id);
        let folders = folders.chain(archived_folder).collect();
        let (reached, tree) = self.reached(link, &files, folders).await?;
        let files: HashMap<FileId, File> = files.into_iter().map(|f| (f.id, f)).collect();
        let (mut changed, mut still_shared) = (0u32, Vec::new());
        for entry in &entries {
            match (entry.file_id, entry.folder_id) {
                (Some(id), recorded_folder) => match files.get(&id) {
                    Some(file) if reached.contains(&id) => {
                        still_shared.push(id);
                        let moved =
                            archived_folder.is_some() && recorded_folder.is_some_and(|f| file.folder_id != Some(f));
                        if file.current.number != entry.version || moved {
                            changed += 1;
                        }
                    }
                    _ => changed += 1,
                },
                (None, Some(folder)) if archived_folder.is_some() => {
                    if tree.get(folder).is_none_or(|f| f.parent_id != entry.parent_id) {
                        changed += 1;
                    }
                }
                (None, _) => {}
            }
        }
        let folder_shared = match (link.target, archived_folder) {
            (Target::Folder(root), Some(folder)) => tree.within(Some(folder), root),
            _ => true,
        };
        if changed == 0 && folder_shared {
            return Ok(());
        }
        let again = match (job.source.clone(), link.target) {
            (ArchiveSource::Folder { folder_id }, Target::Folder(root)) if folder_shared && folder_id != root => {
                Some(ArchiveRequest::Folder(Some(folder_id)))
            }
            (ArchiveSource::Folder { .. } | ArchiveSource::Collection { .. }, _) => Some(ArchiveRequest::Folder(None)),
            (ArchiveSource::Selection { .. }, _) if !still_shared.is_empty() => {
                Some(ArchiveRequest::Files(still_shared))
            }
            (ArchiveSource::Selection { .. }, _) => None,
        };
        Err(DomainError::ArchiveOutdated { changed: changed.max(1), again })
    }

    /// A short-lived URL of one of this visitor's archives, once it is ready
    /// and [still current](Self::check_archive).
    pub async fn archive_download_url(
        &self,
        visit: &Visit,
        archives: &ArchiveService,
        job: &ArchiveJob,
    ) -> DomainResult<String> {
        visit.require_downloads()?;
        archives.ensure_ready(job).await?;
        self.check_archive(visit, job).await?;
        let url = archives.presign(job).await?;
        self.record(visit, LinkEvent::ArchiveDownloaded, None, job.archive_size.unwrap_or(0)).await?;
        Ok(url)
    }

    /// The rendition of size `size` of a file the link reaches (its current
    /// version): made by a library job after upload, never here; `Pending`
    /// until it is, `NotFound` when none will be. A version found without
    /// renditions (stored before they were made, or whose job the queue
    /// refused) has them asked for again, at most once an hour.
    pub async fn rendition(&self, visit: &Visit, id: FileId, size: RenditionSize) -> DomainResult<Rendition> {
        let file = self.file(visit, id).await?;
        let (blob_key, content_type) = (&file.current.blob_key, &file.current.content_type);
        if let (RenditionSize::Large, true, Some(watermark)) = (size, visit.link.preview_only, &visit.watermark) {
            let made =
                stored_watermarked(self.blobs.as_ref(), file.account_id, blob_key, content_type, watermark).await?;
            if let (Rendition::Pending, Some(jobs)) = (&made, &self.jobs) {
                ask_for_watermark(jobs.as_ref(), file.account_id, blob_key).await?;
            }
            return Ok(made);
        }
        let made = stored_rendition(self.blobs.as_ref(), blob_key, content_type, size).await?;
        if let (Rendition::Pending, Some(jobs)) = (&made, &self.jobs)
            && !renditions_asked_recently(self.blobs.as_ref(), blob_key, self.clock.now()).await?
        {
            let job = LibraryJob::Renditions {
                blob_key: blob_key.clone(),
                content_type: content_type.clone(),
                size: file.current.size,
            };
            hand_out_renditions(self.blobs.as_ref(), jobs.as_ref(), &job, blob_key, self.clock.now()).await?;
        }
        Ok(made)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Fails when a field is added to the file record (or its version)
    /// without deciding whether visitors see it.
    #[test]
    fn every_file_field_is_decided_for_visitors() {
        let file = sample_file();
        let version = file.current.clone();
        let check = |value: serde_json::Value, shown: &[&str], hidden: &[&str]| {
            for key in value.as_object().unwrap().keys() {
                assert!(
                    shown.contains(&key.as_str()) != hidden.contains(&key.as_str()),
                    "decide whether visitors see `{key}`: add it to exactly one of the shown/hidden lists"
                );
            }
        };
        check(serde_json::to_value(&file).unwrap(), FILE_FIELDS_SHOWN, FILE_FIELDS_HIDDEN);
        check(serde_json::to_value(&version).unwrap(), VERSION_FIELDS_SHOWN, VERSION_FIELDS_HIDDEN);

        let mut link = link_to(&file);
        let public = serde_json::to_value(PublicFile::seen_through(&file, &link)).unwrap();
        for hidden in FILE_FIELDS_HIDDEN.iter().chain(VERSION_FIELDS_HIDDEN) {
            assert!(public.get(*hidden).is_none(), "`{hidden}` reaches visitors");
        }

        // A link that hides identifying metadata shows the rest of it.
        let mut located = file.clone();
        let as_read: std::collections::BTreeMap<String, String> =
            [("GPSLatitude", "48 deg 51 min 29.64 sec"), ("BodySerialNumber", "PL1-0042-7781"), ("Model", "X")]
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
        located.current.embedded_metadata = as_read.clone();
        let all = PublicFile::seen_through(&located, &link).embedded_metadata;
        assert!(all.contains_key("GPSLatitude") && all.contains_key("BodySerialNumber"), "shown by default: {all:?}");
        link.hide_identifying_metadata = true;
        let kept = PublicFile::seen_through(&located, &link).embedded_metadata;
        assert!(kept.keys().all(|k| !crate::inspect::is_identifying_field(k)), "{kept:?}");
        assert_eq!(kept.get("Model").map(String::as_str), Some("X"));
        assert_eq!(located.current.embedded_metadata, as_read, "the record keeps it");

        // A listing reads the same record narrowly and shows the same.
        let listed: ListedFile = serde_json::from_str(&serde_json::to_string(&located).unwrap()).unwrap();
        assert_eq!(listed, ListedFile::from(&located));
        assert_eq!(PublicFile::listed_through(listed, &link), PublicFile::seen_through(&located, &link));
    }

    /// A listed file with fixed ids and times, identifying metadata and a
    /// name that JSON escapes.
    fn listed_sample() -> ListedFile {
        let at = |s: &str| DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc);
        ListedFile {
            id: "0190b6a2-7c1e-7a3b-9d4e-5f6a7b8c9d0e".parse().unwrap(),
            name: "Quai \"d'Orsay\" été.jpg".into(),
            published: true,
            created_at: at("2026-03-01T09:30:00.123456Z"),
            current: ListedVersion {
                content_type: "image/jpeg".into(),
                size: 123_456,
                width: Some(4000),
                height: Some(3000),
                embedded_metadata: [("GPSLatitude", "48 deg 51 min"), ("Model", "PL-1")]
                    .into_iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
                uploaded_at: at("2026-03-02T10:00:00Z"),
            },
        }
    }

    /// What a store keeps of a file is what a listing shows of it, through
    /// each kind of link; a draft is shown only where the link exposes drafts.
    #[test]
    fn a_kept_file_is_shown_as_its_listing_shows_it() {
        let mut located = listed_sample();
        let mut link = Link { expose_unpublished: false, ..link_to(&sample_file()) };
        for (hide, expose, published) in [false, true]
            .into_iter()
            .flat_map(|a| [false, true].into_iter().flat_map(move |b| [(a, b, false), (a, b, true)]))
        {
            located.published = published;
            link.hide_identifying_metadata = hide;
            link.expose_unpublished = expose;
            let kept = KeptFile::of(&located);
            let shown = kept.shown_through(&link);
            let made = (published || expose)
                .then(|| serde_json::to_string(&PublicFile::listed_through(located.clone(), &link)).unwrap());
            assert_eq!(shown, made, "hide {hide}, expose {expose}, published {published}");
        }
        // Without identifying metadata, one form is kept.
        located.current.embedded_metadata.remove("GPSLatitude");
        assert!(KeptFile::of(&located).shown_without_identifying.is_none());
        link.hide_identifying_metadata = true;
        let shown = KeptFile::of(&located).shown_through(&link).unwrap();
        assert_eq!(shown, serde_json::to_string(&PublicFile::listed_through(located, &link)).unwrap());
    }

    /// Stores keep a file's JSON as [`KeptFile::FORM`] made it: when this
    /// fails, what a listing shows of a file has changed; raise the form so
    /// that stores remake what they keep, then write the new JSON here.
    #[test]
    fn what_stores_keep_changes_with_its_form() {
        let kept = KeptFile::of(&listed_sample());
        let shown = |metadata: &str| {
            [
                r#"{"id":"0190b6a2-7c1e-7a3b-9d4e-5f6a7b8c9d0e","name":"Quai \"d'Orsay\" été.jpg","#,
                r#""content_type":"image/jpeg","size":123456,"width":4000,"height":3000,"#,
                &format!(r#""embedded_metadata":{{{metadata}}},"#),
                r#""created_at":"2026-03-01T09:30:00.123456Z","updated_at":"2026-03-02T10:00:00Z","has_thumbnail":true}"#,
            ]
            .concat()
        };
        let expected = KeptFile {
            published: true,
            shown: shown(r#""GPSLatitude":"48 deg 51 min","Model":"PL-1""#),
            shown_without_identifying: Some(shown(r#""Model":"PL-1""#)),
        };
        assert_eq!((KeptFile::FORM, kept), (1, expected));

        // A file without dimensions, metadata or renditions, unpublished.
        let mut plain = listed_sample();
        plain.published = false;
        plain.name = "notes.txt".into();
        plain.current.content_type = "text/plain".into();
        (plain.current.width, plain.current.height) = (None, None);
        plain.current.embedded_metadata.clear();
        let expected = KeptFile {
            published: false,
            shown: [
                r#"{"id":"0190b6a2-7c1e-7a3b-9d4e-5f6a7b8c9d0e","name":"notes.txt","content_type":"text/plain","#,
                r#""size":123456,"width":null,"height":null,"embedded_metadata":{},"#,
                r#""created_at":"2026-03-01T09:30:00.123456Z","updated_at":"2026-03-02T10:00:00Z","has_thumbnail":false}"#,
            ]
            .concat(),
            shown_without_identifying: None,
        };
        assert_eq!(KeptFile::of(&plain), expected);
    }

    /// The form stores record changes with every rule the kept JSON is
    /// made by: a field added to the identifying ones, or a type to those
    /// with renditions, makes stores remake what they keep.
    #[test]
    fn the_kept_form_changes_with_the_rules_it_is_made_by() {
        use crate::inspect::{IDENTIFYING_FIELDS, IDENTIFYING_PREFIX};
        use crate::renditions::RENDITION_TYPES;
        let form = KeptFile::form();
        assert_eq!(form, KeptFile::form_of(KeptFile::FORM, IDENTIFYING_PREFIX, IDENTIFYING_FIELDS, RENDITION_TYPES));
        assert!(form.starts_with(&format!("{}-", KeptFile::FORM)), "{form}");
        assert!(form.chars().all(|c| c.is_ascii_hexdigit() || c == '-'), "{form}");
        let more_fields: Vec<&str> = IDENTIFYING_FIELDS.iter().copied().chain(["Make"]).collect();
        let more_types: Vec<&str> = RENDITION_TYPES.iter().copied().chain(["image/webp"]).collect();
        for other in [
            KeptFile::form_of(KeptFile::FORM + 1, IDENTIFYING_PREFIX, IDENTIFYING_FIELDS, RENDITION_TYPES),
            KeptFile::form_of(KeptFile::FORM, "Gps", IDENTIFYING_FIELDS, RENDITION_TYPES),
            KeptFile::form_of(KeptFile::FORM, IDENTIFYING_PREFIX, &more_fields, RENDITION_TYPES),
            KeptFile::form_of(KeptFile::FORM, IDENTIFYING_PREFIX, IDENTIFYING_FIELDS, &more_types),
        ] {
            assert_ne!(other, form);
        }
        // The rules are the lists the form is made of.
        for field in IDENTIFYING_FIELDS.iter().chain(&["GPSLatitude", "GPSAltitude"]) {
            assert!(crate::inspect::is_identifying_field(field), "{field}");
        }
        for field in ["Model", "gpslatitude", "ExposureTime"] {
            assert!(!crate::inspect::is_identifying_field(field), "{field}");
        }
        for kind in RENDITION_TYPES {
            assert!(crate::renditions::renditions_possible(kind));
        }
        assert!(!crate::renditions::renditions_possible("image/webp"));
    }

    /// A listing's answer is the listing's JSON, whichever way its files
    /// come: kept, made, or none.
    #[test]
    fn a_listing_answer_is_the_listings_json() {
        let located = listed_sample();
        let link = link_to(&sample_file());
        let made = PublicFile::listed_through(located.clone(), &link);
        let folder = PublicFolder { id: FolderId::new(), name: "Trips \"é\"".into() };
        for files in [vec![], vec![made.clone()], vec![made.clone(), made]] {
            for next_cursor in [None, Some("abc".to_string())] {
                let listing = Listing {
                    folder: Some(folder.clone()),
                    breadcrumbs: vec![folder.clone()],
                    subfolders: vec![folder.clone(), folder.clone()],
                    files: files.clone(),
                    next_cursor,
                };
                let expected = serde_json::to_vec(&listing).unwrap();
                let mut answer = ListingAnswer::from(listing);
                assert_eq!(answer.to_json(), expected, "made");
                for file in answer.files.iter_mut() {
                    *file = AnsweredFile::Kept(KeptFile::of(&located).shown_through(&link).unwrap());
                }
                assert_eq!(String::from_utf8(answer.to_json()).unwrap(), String::from_utf8(expected).unwrap(), "kept");
            }
        }
        let collection =
            Listing { folder: None, breadcrumbs: vec![], subfolders: vec![], files: vec![], next_cursor: None };
        assert_eq!(ListingAnswer::from(collection.clone()).to_json(), serde_json::to_vec(&collection).unwrap());
    }

    /// A published PNG of a new account, with a version of its own.
    fn sample_file() -> File {
        let id = FileId::new();
        let now = Utc::now();
        File {
            id,
            account_id: AccountId::new(),
            folder_id: None,
            name: "n".into(),
            owner_id: UserId::new(),
            tags: vec![],
            ai_tags: vec![],
            custom_coordinates: vec![],
            custom_metadata: BTreeMap::new(),
            comments: vec![],
            private: false,
            published: true,
            current: FileVersion {
                file_id: id,
                number: 1,
                blob_key: "k".into(),
                content_type: "image/png".into(),
                size: 1,
                crc32: 0,
                sha256: String::new(),
                e_tag: Some("e".into()),
                width: None,
                height: None,
                embedded_metadata: BTreeMap::new(),
                uploaded_by: UserId::new(),
                uploaded_at: now,
            },
            created_at: now,
            updated_at: now,
            revision: 0,
        }
    }

    fn link_to(file: &File) -> Link {
        Link {
            id: LinkId::new(),
            account_id: file.account_id,
            target: Target::File(file.id),
            token_hash: String::new(),
            token_seed: String::new(),
            valid_from: None,
            valid_until: None,
            password_hash: None,
            password_version: 0,
            expose_unpublished: false,
            hide_identifying_metadata: false,
            preview_only: false,
            created_by: file.owner_id,
            created_at: file.created_at,
            updated_at: file.created_at,
            revision: 0,
            placement: None,
            max_downloads: None,
            max_sessions: None,
            exhausted_at: None,
        }
    }
}
