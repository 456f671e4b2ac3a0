//! Many files as one ZIP: archive jobs requested by signed-in users (from
//! the library, with their permissions) and by visitors (through a link,
//! inside its scope). A request is resolved here, at once, into the exact
//! file versions and entry paths (the manifest), checked against the limits,
//! and handed to the builder; the archive is built in the background
//! (the builder of `publinks-archive`).

use super::access::Actor;
use super::model::*;
use super::{DomainError, DomainResult};
use crate::clock::Clock;
use crate::entry_names::{Child, EntryNames};
use crate::ids::*;
use crate::store::*;
use chrono::{DateTime, DurationRound, Utc};
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::sync::Arc;
use std::time::Duration;

/// The limits and lifetimes of archives.
#[derive(Clone, Debug)]
pub struct ArchiveSettings {
    /// Most files in one archive.
    pub max_files: u32,
    /// Most bytes (before compression) in one archive.
    pub max_bytes: u64,
    /// Archives one visitor session may have pending or building at once.
    pub open_per_session: u32,
    /// Archives one client network may have pending or building at once
    /// through one link, whatever the sessions (fresh sessions cost nothing).
    pub open_per_network: u32,
    /// Archives built through one link per hour, all visitors together.
    pub per_link_hourly: u32,
    /// Archives built for the signed-in users of one account per hour.
    pub per_account_hourly: u32,
    /// A build not done by then has failed: long enough for every delivery
    /// of the archive queue (three invocations of at most 15 minutes, and the
    /// pauses between them).
    pub build_timeout: chrono::Duration,
    /// How long a download URL of a ready archive works.
    pub download_url_ttl: Duration,
    /// A ready archive is reused only if it lasts at least this much longer.
    pub reuse_margin: chrono::Duration,
}

impl Default for ArchiveSettings {
    fn default() -> Self {
        ArchiveSettings {
            max_files: 10_000,
            max_bytes: 50 * 1024 * 1024 * 1024,
            open_per_session: 2,
            open_per_network: 4,
            per_link_hourly: 30,
            per_account_hourly: 300,
            build_timeout: chrono::Duration::hours(1),
            download_url_ttl: Duration::from_secs(300),
            reuse_margin: chrono::Duration::minutes(30),
        }
    }
}

/// A limit set in the environment that is not a positive whole number.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{variable} must be a positive whole number, not {value:?}")]
pub struct SettingsError {
    pub variable: &'static str,
    pub value: String,
}

impl ArchiveSettings {
    /// The defaults, with the limits an operator set in the environment:
    /// `PUBLINKS_ARCHIVE_MAX_FILES`, `PUBLINKS_ARCHIVE_MAX_BYTES`,
    /// `PUBLINKS_ARCHIVE_OPEN_PER_SESSION`, `PUBLINKS_ARCHIVE_OPEN_PER_NETWORK`,
    /// `PUBLINKS_ARCHIVE_PER_LINK_HOURLY` and `PUBLINKS_ARCHIVE_PER_ACCOUNT_HOURLY`.
    pub fn from_env() -> Result<Self, SettingsError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// [`from_env`](Self::from_env), reading through `lookup`.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, SettingsError> {
        use super::read_setting as read;
        let d = ArchiveSettings::default();
        Ok(ArchiveSettings {
            max_files: read(&lookup, "PUBLINKS_ARCHIVE_MAX_FILES", d.max_files)?,
            max_bytes: read(&lookup, "PUBLINKS_ARCHIVE_MAX_BYTES", d.max_bytes)?,
            open_per_session: read(&lookup, "PUBLINKS_ARCHIVE_OPEN_PER_SESSION", d.open_per_session)?,
            open_per_network: read(&lookup, "PUBLINKS_ARCHIVE_OPEN_PER_NETWORK", d.open_per_network)?,
            per_link_hourly: read(&lookup, "PUBLINKS_ARCHIVE_PER_LINK_HOURLY", d.per_link_hourly)?,
            per_account_hourly: read(&lookup, "PUBLINKS_ARCHIVE_PER_ACCOUNT_HOURLY", d.per_account_hourly)?,
            ..d
        })
    }
}

/// An archive job as its requester sees it: never the manifest, the storage
/// keys, the fingerprint or the session.
#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
pub struct ArchiveView {
    pub id: ArchiveId,
    pub name: String,
    pub status: ArchiveStatus,
    pub source: ArchiveSource,
    pub file_count: u32,
    pub total_bytes: u64,
    pub files_done: u32,
    pub bytes_done: u64,
    /// Every file is in: the archive is being completed (uploading its last
    /// parts, assembling them).
    pub finishing: bool,
    /// How far along it is, in percent: writing the files counts for the
    /// first 90, finishing for the rest; 100 only once ready.
    #[schema(maximum = 100)]
    pub progress: u8,
    /// The ZIP's size once ready.
    pub archive_size: Option<u64>,
    /// Why it failed, for people.
    pub failure: Option<String>,
    pub created_at: DateTime<Utc>,
    /// When the ready archive goes away.
    pub expires_at: Option<DateTime<Utc>>,
}

/// An archive job in the account's downloads list: the view, and who asked.
#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
pub struct AccountArchiveView {
    #[serde(flatten)]
    #[schema(inline)]
    pub archive: ArchiveView,
    pub via_public_link: bool,
    /// The link it was requested through.
    pub link_id: Option<LinkId>,
    /// The user who requested it (not through a link).
    pub user_id: Option<UserId>,
}

impl ArchiveView {
    /// The job at `now`.
    pub fn of(job: &ArchiveJob, now: DateTime<Utc>) -> Self {
        let status = job.status(now);
        let failure = match (status, &job.failure) {
            (ArchiveStatus::Failed, None) => Some("the archive could not be finished in time".to_string()),
            (_, f) => f.clone(),
        };
        ArchiveView {
            id: job.id,
            name: job.name.clone(),
            status,
            source: job.source.clone(),
            file_count: job.file_count,
            total_bytes: job.total_bytes,
            files_done: job.files_done,
            bytes_done: job.bytes_done,
            finishing: job.finishing && matches!(status, ArchiveStatus::Pending | ArchiveStatus::Building),
            progress: progress_of(job, status),
            archive_size: job.archive_size,
            failure,
            created_at: job.created_at,
            expires_at: job.expires_at,
        }
    }
}

/// [`ArchiveView::progress`]: writing the files weighs 90 %, finishing the
/// rest, so that the bar never stands full before the archive is ready.
fn progress_of(job: &ArchiveJob, status: ArchiveStatus) -> u8 {
    match status {
        ArchiveStatus::Ready | ArchiveStatus::Expired => 100,
        _ if job.finishing => 95,
        _ if job.total_bytes == 0 => 0,
        _ => (u128::from(job.bytes_done.min(job.total_bytes)) * 90 / u128::from(job.total_bytes)) as u8,
    }
}

impl AccountArchiveView {
    /// The job at `now`, with its requester.
    pub fn of(job: &ArchiveJob, now: DateTime<Utc>) -> Self {
        let (link_id, user_id) = job.requested_by.link_or_user();
        AccountArchiveView { archive: ArchiveView::of(job, now), via_public_link: link_id.is_some(), link_id, user_id }
    }
}

/// An archive's contents, resolved: what goes in, under which paths.
#[derive(Clone, Debug)]
pub struct ArchiveContents {
    pub source: ArchiveSource,
    /// The download name, without `.zip`.
    pub name: String,
    pub entries: Vec<ArchiveEntry>,
}

/// Collects entries within the limits, giving each a unique, safe path
/// ([`crate::entry_names`]: one folder's entries are named together).
pub struct EntryCollector {
    names: EntryNames,
    entries: Vec<ArchiveEntry>,
    files: u32,
    bytes: u64,
    max_files: u32,
    max_bytes: u64,
}

impl EntryCollector {
    /// An empty archive with these limits.
    pub fn new(settings: &ArchiveSettings) -> Self {
        EntryCollector {
            names: EntryNames::new(),
            entries: Vec::new(),
            files: 0,
            bytes: 0,
            max_files: settings.max_files,
            max_bytes: settings.max_bytes,
        }
    }

    /// Counts a file against the limits, before it is placed.
    pub fn admit(&mut self, file: &File) -> DomainResult<()> {
        self.files += 1;
        self.bytes += file.current.size;
        if self.files > self.max_files {
            return Err(too_large(format!("an archive holds at most {} files", self.max_files)));
        }
        if self.bytes > self.max_bytes {
            return Err(too_large(format!("an archive holds at most {} of files", crate::human_size(&self.max_bytes))));
        }
        Ok(())
    }

    /// Adds the entries of one folder of the archive, `parent` (`""` for its
    /// root): `subfolders` and the current versions of `files` (admitted
    /// already). Returns the subfolders' paths, in their order.
    pub fn place(&mut self, parent: &str, subfolders: &[Folder], files: &[File]) -> Vec<String> {
        let children: Vec<Child<'_>> = subfolders
            .iter()
            .map(|f| Child { name: &f.name, folder: true, created_at: f.created_at, id: f.id.to_string() })
            .chain(files.iter().map(|f| Child {
                name: &f.name,
                folder: false,
                created_at: f.created_at,
                id: f.id.to_string(),
            }))
            .collect();
        let mut paths = self.names.place(parent, &children).into_iter();
        let folder_paths: Vec<String> = paths.by_ref().take(subfolders.len()).collect();
        for (folder, path) in subfolders.iter().zip(&folder_paths) {
            self.entries.push(ArchiveEntry {
                folder_id: Some(folder.id),
                parent_id: folder.parent_id,
                ..ArchiveEntry::folder(path.clone(), folder.updated_at)
            });
        }
        for (file, path) in files.iter().zip(paths) {
            self.entries.push(ArchiveEntry {
                path,
                file_id: Some(file.id),
                version: file.current.number,
                blob_key: file.current.blob_key.clone(),
                content_type: file.current.content_type.clone(),
                size: file.current.size,
                crc32: file.current.crc32,
                e_tag: file.current.e_tag.clone(),
                modified: file.current.uploaded_at,
                folder_id: file.folder_id,
                parent_id: None,
            });
        }
        folder_paths
    }

    /// The entries, once every file is in.
    pub fn finish(self) -> DomainResult<Vec<ArchiveEntry>> {
        if self.files == 0 {
            return Err(DomainError::Invalid {
                field: "files".into(),
                message: "there are no files to put in an archive".into(),
            });
        }
        Ok(self.entries)
    }
}

fn too_large(message: String) -> DomainError {
    DomainError::ArchiveTooLarge { message }
}

/// Every file under `root` that `include` admits, with the folder tree below
/// it, breadth first (each folder's entries named together).
pub async fn collect_folder(
    catalog: &dyn Catalog,
    account: AccountId,
    root: FolderId,
    include: impl Fn(&File) -> bool,
    collector: &mut EntryCollector,
) -> DomainResult<()> {
    let mut queue = std::collections::VecDeque::from([(root, String::new())]);
    while let Some((folder, path)) = queue.pop_front() {
        let mut subfolders = Vec::new();
        let mut page = PageRequest::first(500);
        loop {
            let found = catalog.subfolders(account, Some(folder), &page).await?;
            subfolders.extend(found.items);
            match found.next {
                Some(next) => page.cursor = Some(next),
                None => break,
            }
        }
        let mut files = Vec::new();
        let mut page = PageRequest::first(500);
        loop {
            let found = catalog.files_in_folder(account, Some(folder), &page).await?;
            for file in found.items.into_iter().filter(|f| include(f)) {
                collector.admit(&file)?;
                files.push(file);
            }
            match found.next {
                Some(next) => page.cursor = Some(next),
                None => break,
            }
        }
        let paths = collector.place(&path, &subfolders, &files);
        queue.extend(subfolders.iter().map(|f| f.id).zip(paths));
    }
    Ok(())
}

/// Every member of a collection that `include` admits, side by side.
pub async fn collect_collection(
    catalog: &dyn Catalog,
    account: AccountId,
    collection: CollectionId,
    include: impl Fn(&File) -> bool,
    collector: &mut EntryCollector,
) -> DomainResult<()> {
    let mut files = Vec::new();
    let mut page = PageRequest::first(500);
    loop {
        let items = catalog.collection_items(collection, &page).await?;
        let ids: Vec<FileId> = items.items.iter().map(|i| i.file_id).collect();
        let mut found: std::collections::HashMap<FileId, File> =
            catalog.files_by_ids(&ids).await?.into_iter().map(|f| (f.id, f)).collect();
        for id in &ids {
            if let Some(file) = found.remove(id)
                && file.account_id == account
                && include(&file)
            {
                collector.admit(&file)?;
                files.push(file);
            }
        }
        match items.next {
            Some(next) => page.cursor = Some(next),
            None => break,
        }
    }
    collector.place("", &[], &files);
    Ok(())
}

/// What to put in an archive.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ArchiveRequest {
    /// A folder with everything under it (`None`: a visitor's whole link).
    Folder(Option<FolderId>),
    Collection(CollectionId),
    /// Files picked one by one.
    Files(Vec<FileId>),
}

/// Most files one selection may name.
pub const MAX_SELECTION: usize = 1000;

impl ArchiveRequest {
    /// The request a body names: exactly one of a folder, a collection or
    /// files (none at all: `default`).
    pub fn parse(
        folder_id: Option<FolderId>,
        collection_id: Option<CollectionId>,
        file_ids: Option<Vec<FileId>>,
        default: Option<ArchiveRequest>,
    ) -> DomainResult<ArchiveRequest> {
        let named =
            usize::from(folder_id.is_some()) + usize::from(collection_id.is_some()) + usize::from(file_ids.is_some());
        if named > 1 {
            return Err(DomainError::invalid("file_ids", "name one of folder_id, collection_id or file_ids"));
        }
        if let Some(files) = file_ids {
            if files.is_empty() {
                return Err(DomainError::invalid("file_ids", "file_ids must name at least one file"));
            }
            if files.len() > MAX_SELECTION {
                return Err(DomainError::invalid("file_ids", format!("file_ids names at most {MAX_SELECTION} files")));
            }
            let mut seen = std::collections::HashSet::with_capacity(files.len());
            let unique = files.into_iter().filter(|f| seen.insert(*f)).collect();
            return Ok(ArchiveRequest::Files(unique));
        }
        match (folder_id, collection_id, default) {
            (Some(f), _, _) => Ok(ArchiveRequest::Folder(Some(f))),
            (_, Some(c), _) => Ok(ArchiveRequest::Collection(c)),
            (_, _, Some(d)) => Ok(d),
            _ => Err(DomainError::invalid("folder_id", "name one of folder_id, collection_id or file_ids")),
        }
    }
}

/// Who asks for an archive, and what they may reuse.
#[derive(Clone, Debug)]
pub struct Requester {
    pub account_id: AccountId,
    pub by: Downloader,
    /// A visitor's client network (IPv4 address or IPv6 /64, as the password
    /// throttle sees it) as its keyed hash
    /// ([`PublicService::network_hash`](crate::public::PublicService::network_hash)),
    /// for the per-network limit; `None` for users.
    pub network: Option<String>,
}

impl Requester {
    /// A signed-in user.
    pub fn user(actor: &Actor) -> Self {
        Requester { account_id: actor.account.id, by: Downloader::User { user_id: actor.user.id }, network: None }
    }

    /// Archives are shared between requests of the same link, or the same account.
    fn reuse_scope(&self) -> String {
        match &self.by {
            Downloader::PublicLink { link_id, .. } => format!("link:{link_id}"),
            Downloader::User { .. } => format!("account:{}", self.account_id),
        }
    }
}

/// The limit that refused an archive request, named in the refusal.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ArchiveLimit {
    /// Archives in the making at once for one visitor session.
    OpenPerSession,
    /// Archives in the making at once through one link from one client network.
    OpenPerNetwork,
    /// Archives prepared through one link in one clock hour.
    PerLinkHourly,
    /// Archives prepared for an account's signed-in users in one clock hour.
    PerAccountHourly,
}

impl ArchiveLimit {
    /// Its stable name, as clients see it (`limit` in the error body).
    pub fn code(self) -> &'static str {
        match self {
            ArchiveLimit::OpenPerSession => "open_per_session",
            ArchiveLimit::OpenPerNetwork => "open_per_network",
            ArchiveLimit::PerLinkHourly => "per_link_hourly",
            ArchiveLimit::PerAccountHourly => "per_account_hourly",
        }
    }
}

/// What a request took from the limits while it is served, to give back if
/// no build comes of it: the slots it holds and the hourly counter it was
/// charged to.
#[derive(Default)]
struct Charges {
    slots: Vec<String>,
    counter: Option<String>,
}

/// How long an archive still being resolved (no job recorded yet) is
/// expected to take, for `Retry-After`.
const RESOLVING_ESTIMATE_SECS: u64 = 5;

/// Archive jobs: requesting, reading and downloading them.
#[derive(Clone)]
pub struct ArchiveService {
    visitors: Arc<dyn VisitorRecords>,
    archives: Arc<dyn ArchiveStore>,
    queue: Arc<dyn ArchiveQueue>,
    settings: ArchiveSettings,
    clock: Arc<dyn Clock>,
}

impl ArchiveService {
    /// A service recording jobs in `stores.visitors`, keeping archives in
    /// `stores.archives` and handing builds to `queue`.
    pub fn new(stores: &Stores, queue: Arc<dyn ArchiveQueue>, settings: ArchiveSettings) -> Self {
        ArchiveService {
            visitors: stores.visitors.clone(),
            archives: stores.archives.clone(),
            queue,
            settings,
            clock: stores.clock.clone(),
        }
    }

    /// The time this service reads: for what the edge computes from it
    /// (how long an archive still waits, a cookie's age).
    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    /// The limits in force.
    pub fn settings(&self) -> &ArchiveSettings {
        &self.settings
    }

    /// Records a job for `contents` and hands it to the builder, or reuses a
    /// ready archive of exactly the same files.
    pub async fn submit(&self, requester: &Requester, contents: ArchiveContents) -> DomainResult<ArchiveJob> {
        self.submit_resolving(requester, async { Ok(contents) }).await
    }

    /// [`submit`](Self::submit), resolving the contents only once the
    /// request fits every limit, each taken with one conditional write (exact
    /// under any concurrency): for visitors a place among the archives in the
    /// making of their session, then of their client network through this
    /// link; then one of the hour's budget (of the link, or of the account
    /// for users). A refused request never walks a folder tree. A request
    /// whose contents cannot be resolved (an unknown id, too many files)
    /// keeps its charge on the hourly budget: failing costs as much as
    /// succeeding. Places are given back when no build comes of the request,
    /// and by the builder when the archive is finished.
    pub async fn submit_resolving(
        &self,
        requester: &Requester,
        resolve: impl Future<Output = DomainResult<ArchiveContents>>,
    ) -> DomainResult<ArchiveJob> {
        let now = self.clock.now();
        let id = ArchiveId::new();
        let mut charges = Charges::default();
        let outcome = self.submit_charged(requester, resolve, id, now, &mut charges).await;
        let keep_charge = match &outcome {
            Ok(job) if job.id == id => return outcome,
            Ok(_) => false,
            Err(e) => resolution_failure(e),
        };
        self.give_back(&charges, id, !keep_charge).await;
        outcome
    }

    async fn submit_charged(
        &self,
        requester: &Requester,
        resolve: impl Future<Output = DomainResult<ArchiveContents>>,
        id: ArchiveId,
        now: DateTime<Utc>,
        charges: &mut Charges,
    ) -> DomainResult<ArchiveJob> {
        let deadline = now + self.settings.build_timeout;
        if let Downloader::PublicLink { link_id, session } = &requester.by {
            let slot = Slot { holder: id.to_string(), until: deadline };
            let session = format!("archives:open:session:{link_id}:{:x}", Sha256::digest(session.as_bytes()));
            let per_session = self.settings.open_per_session;
            charges.slots.push(self.take_place(&session, per_session, &slot, now, ArchiveLimit::OpenPerSession).await?);
            if let Some(network) = &requester.network {
                let scope = format!("archives:open:network:{link_id}:{network}");
                let per_network = self.settings.open_per_network;
                charges
                    .slots
                    .push(self.take_place(&scope, per_network, &slot, now, ArchiveLimit::OpenPerNetwork).await?);
            }
        }
        charges.counter = Some(self.charge_hour(requester, now).await?);

        let contents = resolve.await?;
        let fingerprint = fingerprint(&requester.reuse_scope(), &contents);
        if let Some(job) = self.reusable(requester, &fingerprint, now).await? {
            return Ok(job);
        }
        let mut job = ArchiveJob::pending(
            id,
            requester.account_id,
            requester.by.clone(),
            contents.source.clone(),
            format!("{}.zip", crate::entry_names::sanitize_component(&contents.name)),
            fingerprint,
            &contents.entries,
            now,
            deadline,
        );
        job.slots = charges.slots.clone();
        self.archives.put(&job.manifest_key, manifest_bytes(&contents.entries), "application/x-ndjson").await?;
        self.visitors.insert_archive_job(&job).await?;
        if let Err(e) = self.queue.enqueue(job.id).await {
            tracing::error!(error = %e, job = %job.id, "could not hand an archive job to the builder");
            let mut failed = job.clone();
            failed.state = ArchiveState::Failed;
            failed.failure = Some("the archive could not be started; try again".into());
            failed.updated_at = self.clock.now();
            let failed = self.visitors.replace_archive_job(&failed).await?;
            free_slots(self.visitors.as_ref(), &failed).await;
            return Ok(failed);
        }
        Ok(job)
    }

    /// Takes one of the `places` slots of `scope` for `slot.holder`: a free
    /// one, or one whose holder is no longer in the making (finished, failed,
    /// past its deadline). Refused, with an estimate of when the soonest
    /// holder will be done, when every place is busy.
    async fn take_place(
        &self,
        scope: &str,
        places: u32,
        slot: &Slot,
        now: DateTime<Utc>,
        limit: ArchiveLimit,
    ) -> DomainResult<String> {
        let key = |i: u32| format!("{scope}:{i}");
        for i in 0..places {
            if self.visitors.take_slot(&key(i), slot, None).await? {
                return Ok(key(i));
            }
        }
        let mut soonest: Option<u64> = None;
        for i in 0..places {
            let taken = match self.visitors.slot(&key(i)).await? {
                None => self.visitors.take_slot(&key(i), slot, None).await?,
                Some(held) => match self.still_in_making(&held, now).await? {
                    None => self.visitors.take_slot(&key(i), slot, Some(&held.holder)).await?,
                    Some(left) => {
                        soonest = Some(soonest.map_or(left, |s| s.min(left)));
                        false
                    }
                },
            };
            if taken {
                return Ok(key(i));
            }
        }
        let message = match limit {
            ArchiveLimit::OpenPerSession => format!(
                "{places} archives are already being prepared for this browser session, the most at once; \
                 try again when one is ready"
            ),
            _ => format!(
                "{places} archives are already being prepared for your network through this link, the most at \
                 once; try again when one is ready"
            ),
        };
        Err(DomainError::TooManyArchives { limit, message, retry_after: soonest.unwrap_or(RESOLVING_ESTIMATE_SECS) })
    }

    /// Seconds until the holder of a slot is likely done (an estimate from
    /// its progress), or `None` if it is no longer in the making.
    async fn still_in_making(&self, held: &Slot, now: DateTime<Utc>) -> DomainResult<Option<u64>> {
        if held.until <= now {
            return Ok(None);
        }
        let to_deadline = (held.until - now).num_seconds().max(1) as u64;
        let Ok(id) = held.holder.parse::<ArchiveId>() else { return Ok(None) };
        Ok(match self.visitors.archive_job(id).await? {
            // Recorded only once its contents are resolved.
            None => Some(RESOLVING_ESTIMATE_SECS.min(to_deadline)),
            Some(job) if job.status(now) == ArchiveStatus::Pending || job.status(now) == ArchiveStatus::Building => {
                Some(time_left(&job, now).min(to_deadline))
            }
            Some(_) => None,
        })
    }

    /// Charges one archive to the requester's budget for this clock hour:
    /// the counter's key, or a refusal that says when the hour ends.
    async fn charge_hour(&self, requester: &Requester, now: DateTime<Utc>) -> DomainResult<String> {
        let (scope, budget, limit) = match &requester.by {
            Downloader::PublicLink { link_id, .. } => {
                (format!("link:{link_id}"), self.settings.per_link_hourly, ArchiveLimit::PerLinkHourly)
            }
            Downloader::User { .. } => (
                format!("account:{}", requester.account_id),
                self.settings.per_account_hourly,
                ArchiveLimit::PerAccountHourly,
            ),
        };
        let hour = now.duration_trunc(chrono::Duration::hours(1)).expect("an hour divides any time");
        let key = format!("archives:hourly:{scope}:{}", hour.format("%Y-%m-%dT%H"));
        let ends = hour + chrono::Duration::hours(1);
        if self.visitors.count_up(&key, budget, ends + chrono::Duration::hours(1)).await?.is_some() {
            return Ok(key);
        }
        let retry_after = ((ends - now).num_milliseconds().max(1) as u64).div_ceil(1000);
        let whose = if limit == ArchiveLimit::PerLinkHourly { "this link" } else { "this account" };
        let minutes = retry_after.div_ceil(60);
        let message = format!(
            "{whose} has prepared {budget} archives this hour, the most it may; try again in {minutes} minute{}",
            if minutes == 1 { "" } else { "s" }
        );
        Err(DomainError::TooManyArchives { limit, message, retry_after })
    }

    /// Gives back what a request took when no build came of it (the hourly
    /// charge only if `counter`). Failing here leaves a place taken until its
    /// deadline at worst: logged, not the request's error.
    async fn give_back(&self, charges: &Charges, holder: ArchiveId, counter: bool) {
        // Not the key: a slot taken before network keys were hashed names the client's address.
        for key in &charges.slots {
            if let Err(e) = self.visitors.free_slot(key, &holder.to_string()).await {
                tracing::warn!(error = %e, job = %holder, "could not free an archive slot");
            }
        }
        if let (true, Some(key)) = (counter, &charges.counter)
            && let Err(e) = self.visitors.count_down(key).await
        {
            tracing::warn!(error = %e, key, "could not give back an archive charge");
        }
    }

    /// A ready archive of the same files to share, recorded as a new job of
    /// this requester; or this requester's own job for them still being built.
    async fn reusable(
        &self,
        requester: &Requester,
        fingerprint: &str,
        now: DateTime<Utc>,
    ) -> DomainResult<Option<ArchiveJob>> {
        for candidate in self.visitors.archive_jobs_by_fingerprint(fingerprint, 10).await? {
            if candidate.account_id != requester.account_id {
                continue;
            }
            match candidate.status(now) {
                ArchiveStatus::Pending | ArchiveStatus::Building if candidate.requested_by == requester.by => {
                    return Ok(Some(candidate));
                }
                ArchiveStatus::Ready
                    if candidate.expires_at.is_some_and(|e| e > now + self.settings.reuse_margin)
                        && self.archives.head(&candidate.archive_key).await?.is_some() =>
                {
                    let job = ArchiveJob {
                        id: ArchiveId::new(),
                        requested_by: requester.by.clone(),
                        attempt: 0,
                        upload_id: None,
                        slots: Vec::new(),
                        created_at: now,
                        updated_at: now,
                        revision: 0,
                        ..candidate
                    };
                    self.visitors.insert_archive_job(&job).await?;
                    return Ok(Some(job));
                }
                _ => {}
            }
        }
        Ok(None)
    }

    /// A job, if `requester` may see it: their own, or (`account_wide`) any of the account's.
    pub async fn job(&self, requester: &Requester, id: ArchiveId, account_wide: bool) -> DomainResult<ArchiveJob> {
        match self.visitors.archive_job(id).await? {
            Some(job)
                if job.account_id == requester.account_id && (job.requested_by == requester.by || account_wide) =>
            {
                Ok(job)
            }
            _ => Err(DomainError::NotFound("archive")),
        }
    }

    /// A short-lived URL of a ready archive (for signed-in users: a visitor's
    /// archive is checked first, see `PublicService::archive_download_url`).
    pub async fn download_url(&self, job: &ArchiveJob) -> DomainResult<String> {
        self.ensure_ready(job).await?;
        self.presign(job).await
    }

    /// Refuses an archive that is not ready, or no longer stored.
    pub async fn ensure_ready(&self, job: &ArchiveJob) -> DomainResult<()> {
        match job.status(self.clock.now()) {
            ArchiveStatus::Ready => {}
            status => return Err(DomainError::ArchiveNotReady { status }),
        }
        if self.archives.head(&job.archive_key).await?.is_none() {
            return Err(DomainError::ArchiveNotReady { status: ArchiveStatus::Expired });
        }
        Ok(())
    }

    /// A short-lived URL of an archive known to be ready.
    pub async fn presign(&self, job: &ArchiveJob) -> DomainResult<String> {
        Ok(self.archives.presign_get(&job.archive_key, &job.name, self.settings.download_url_ttl).await?)
    }

    /// One visitor session's archives through one link, newest first.
    pub async fn visitor_jobs(
        &self,
        link: LinkId,
        session: &str,
        page: &PageRequest,
    ) -> DomainResult<Page<ArchiveJob>> {
        Ok(self.visitors.visitor_archive_jobs(link, session, page).await?)
    }

    /// The account's archives, newest first: through the library and through
    /// public links. Like the downloads list, for those who manage the library.
    pub async fn account_jobs(&self, actor: &Actor, page: &PageRequest) -> DomainResult<Page<ArchiveJob>> {
        if actor.role_level() != Some(Permission::Manage) {
            return Err(DomainError::Forbidden(
                "the account's archives are for administrators, developers and full-access users".into(),
            ));
        }
        Ok(self.visitors.account_archive_jobs(actor.account.id, page).await?)
    }

    /// A job a signed-in user may see: their own, or any of the account's
    /// for those who manage the library.
    pub async fn user_job(&self, actor: &Actor, id: ArchiveId) -> DomainResult<ArchiveJob> {
        let account_wide = actor.role_level() == Some(Permission::Manage);
        self.job(&Requester::user(actor), id, account_wide).await
    }
}

/// Whether a request that ended in `error` was refused for what it asked
/// (an unknown id, too many files...): such requests keep their hourly
/// charge, so that failing costs as much as succeeding.
fn resolution_failure(error: &DomainError) -> bool {
    matches!(
        error,
        DomainError::NotFound(_)
            | DomainError::Invalid { .. }
            | DomainError::Forbidden(_)
            | DomainError::ArchiveTooLarge { .. }
    )
}

/// Seconds a job in the making is likely to take still, from the pace of its
/// bytes so far (at least one; a few while nothing is done yet).
fn time_left(job: &ArchiveJob, now: DateTime<Utc>) -> u64 {
    let elapsed = (now - job.created_at).num_milliseconds().max(1) as u128;
    match (job.bytes_done, job.total_bytes) {
        (0, _) => RESOLVING_ESTIMATE_SECS,
        (done, total) => {
            let left = u128::from(total.saturating_sub(done)) * elapsed / u128::from(done);
            (left.div_ceil(1000) as u64).max(1)
        }
    }
}

/// Frees the slots a finished job held (the builder calls this when it
/// records the outcome; a slot left behind is reclaimed once its holder is
/// seen finished).
pub async fn free_slots(limits: &dyn LimitStore, job: &ArchiveJob) {
    // Not the key: a slot taken before network keys were hashed names the client's address.
    for key in &job.slots {
        if let Err(e) = limits.free_slot(key, &job.id.to_string()).await {
            tracing::warn!(error = %e, job = %job.id, "could not free an archive slot");
        }
    }
}

/// What makes two archives the same: who may share it, its name, and every
/// entry's path, file and version.
fn fingerprint(scope: &str, contents: &ArchiveContents) -> String {
    let mut hash = Sha256::new();
    hash.update(scope.as_bytes());
    hash.update([0]);
    hash.update(contents.name.as_bytes());
    for e in &contents.entries {
        hash.update([0]);
        hash.update(e.path.as_bytes());
        hash.update([0]);
        hash.update(e.file_id.map(|f| f.to_string()).unwrap_or_default().as_bytes());
        hash.update(e.version.to_be_bytes());
    }
    format!("{:x}", hash.finalize())
}

/// Reads the manifest a job was made with: one entry per line.
pub async fn read_manifest(archives: &dyn ArchiveStore, key: &str) -> StoreResult<Vec<ArchiveEntry>> {
    use tokio::io::AsyncReadExt;
    let mut text = String::new();
    archives
        .open(key)
        .await?
        .read_to_string(&mut text)
        .await
        .map_err(|e| StoreError::Backend(format!("manifest: {e}")))?;
    text.lines()
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_str(l).map_err(|e| StoreError::Corrupt(format!("manifest {key}: {e}"))))
        .collect()
}

/// Writes a manifest for [`read_manifest`].
pub fn manifest_bytes(entries: &[ArchiveEntry]) -> Vec<u8> {
    let mut out = Vec::with_capacity(entries.len() * 200);
    for e in entries {
        serde_json::to_writer(&mut out, e).expect("entries serialise");
        out.push(b'\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_come_from_the_environment_and_bad_ones_are_named() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| pairs.iter().find(|(n, _)| *n == k).map(|(_, v)| v.to_string())
        };
        let set = ArchiveSettings::from_lookup(env(&[
            ("PUBLINKS_ARCHIVE_MAX_FILES", "500"),
            ("PUBLINKS_ARCHIVE_MAX_BYTES", " 1073741824 "),
            ("PUBLINKS_ARCHIVE_PER_LINK_HOURLY", ""),
        ]))
        .unwrap();
        assert_eq!((set.max_files, set.max_bytes), (500, 1 << 30));
        assert_eq!(set.per_link_hourly, ArchiveSettings::default().per_link_hourly, "empty is unset");
        for bad in ["0", "-3", "ten", "99999999999"] {
            let lookup = move |k: &str| (k == "PUBLINKS_ARCHIVE_MAX_FILES").then(|| bad.to_string());
            let err = ArchiveSettings::from_lookup(lookup).unwrap_err();
            assert_eq!(err.variable, "PUBLINKS_ARCHIVE_MAX_FILES", "{bad}");
        }
    }

    #[test]
    fn a_build_past_its_deadline_reads_failed() {
        let now = Utc::now();
        let job_at = |state, deadline| ArchiveJob {
            state,
            ..ArchiveJob::pending(
                ArchiveId::new(),
                AccountId::new(),
                Downloader::User { user_id: UserId::new() },
                ArchiveSource::Selection { count: 1 },
                "a.zip".into(),
                String::new(),
                &[],
                now,
                deadline,
            )
        };
        let late = job_at(ArchiveState::Building, now - chrono::Duration::seconds(1));
        assert_eq!(late.status(now), ArchiveStatus::Failed);
        let view = ArchiveView::of(&late, now);
        assert_eq!(view.failure.as_deref(), Some("the archive could not be finished in time"));
        assert_eq!(
            job_at(ArchiveState::Pending, now + chrono::Duration::minutes(1)).status(now),
            ArchiveStatus::Pending
        );
    }
}
