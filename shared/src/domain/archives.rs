//! Many files as one ZIP: archive jobs requested by signed-in users (from
//! the library, with their permissions) and by visitors (through a link,
//! inside its scope). A request is resolved here, at once, into the exact
//! file versions and entry paths (the manifest), checked against the limits,
//! and handed to the builder; the archive is built in the background
//! ([`crate::archive::builder`]).

use super::access::Actor;
use super::model::*;
use super::throttle::{self, Rule};
use super::{DomainError, DomainResult};
use crate::archive::builder::manifest_bytes;
use crate::archive::names::EntryNames;
use crate::ids::*;
use crate::store::*;
use chrono::{DateTime, Utc};
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
    /// Archives built through one link per hour, all visitors together.
    pub per_link_hourly: u32,
    /// Archives built for the signed-in users of one account per hour.
    pub per_account_hourly: u32,
    /// A build not done by then has failed.
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
            per_link_hourly: 30,
            per_account_hourly: 300,
            build_timeout: chrono::Duration::minutes(15),
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
    /// `PUBLINKS_ARCHIVE_OPEN_PER_SESSION`, `PUBLINKS_ARCHIVE_PER_LINK_HOURLY`
    /// and `PUBLINKS_ARCHIVE_PER_ACCOUNT_HOURLY`.
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
            archive_size: job.archive_size,
            failure,
            created_at: job.created_at,
            expires_at: job.expires_at,
        }
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

/// Collects entries within the limits, giving each a unique, safe path.
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

    /// Adds a folder entry under `parent`; returns its path.
    pub fn folder(&mut self, parent: &str, folder: &Folder) -> String {
        let path = self.names.folder(parent, &folder.name);
        self.entries.push(ArchiveEntry::folder(path.clone(), folder.updated_at));
        path
    }

    /// Adds a file's current version under `parent`.
    pub fn file(&mut self, parent: &str, file: &File) -> DomainResult<()> {
        self.files += 1;
        self.bytes += file.current.size;
        if self.files > self.max_files {
            return Err(too_large(format!("an archive holds at most {} files", self.max_files)));
        }
        if self.bytes > self.max_bytes {
            return Err(too_large(format!(
                "an archive holds at most {} of files",
                crate::http::pages::human_size(&self.max_bytes)
            )));
        }
        self.entries.push(ArchiveEntry {
            path: self.names.file(parent, &file.name),
            file_id: Some(file.id),
            version: file.current.number,
            blob_key: file.current.blob_key.clone(),
            content_type: file.current.content_type.clone(),
            size: file.current.size,
            crc32: file.current.crc32,
            e_tag: file.current.e_tag.clone(),
            modified: file.current.uploaded_at,
        });
        Ok(())
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
/// it, breadth first (folders before files in each).
pub async fn collect_folder(
    catalog: &dyn Catalog,
    account: AccountId,
    root: FolderId,
    include: impl Fn(&File) -> bool,
    collector: &mut EntryCollector,
) -> DomainResult<()> {
    let mut queue = std::collections::VecDeque::from([(root, String::new())]);
    while let Some((folder, path)) = queue.pop_front() {
        let mut page = PageRequest::first(500);
        loop {
            let subfolders = catalog.subfolders(account, Some(folder), &page).await?;
            for sub in &subfolders.items {
                queue.push_back((sub.id, collector.folder(&path, sub)));
            }
            match subfolders.next {
                Some(next) => page.cursor = Some(next),
                None => break,
            }
        }
        let mut page = PageRequest::first(500);
        loop {
            let files = catalog.files_in_folder(account, Some(folder), &page).await?;
            for file in files.items.iter().filter(|f| include(f)) {
                collector.file(&path, file)?;
            }
            match files.next {
                Some(next) => page.cursor = Some(next),
                None => break,
            }
        }
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
    let mut page = PageRequest::first(500);
    loop {
        let items = catalog.collection_items(collection, &page).await?;
        for item in &items.items {
            if let Some(file) = catalog.file(item.file_id).await?
                && file.account_id == account
                && include(&file)
            {
                collector.file("", &file)?;
            }
        }
        match items.next {
            Some(next) => page.cursor = Some(next),
            None => return Ok(()),
        }
    }
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
            let mut unique = Vec::with_capacity(files.len());
            for f in files {
                if !unique.contains(&f) {
                    unique.push(f);
                }
            }
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
}

impl Requester {
    /// A signed-in user.
    pub fn user(actor: &Actor) -> Self {
        Requester { account_id: actor.account.id, by: Downloader::User { user_id: actor.user.id } }
    }

    /// Archives are shared between requests of the same link, or the same account.
    fn reuse_scope(&self) -> String {
        match &self.by {
            Downloader::PublicLink { link_id, .. } => format!("link:{link_id}"),
            Downloader::User { .. } => format!("account:{}", self.account_id),
        }
    }
}

/// Archive jobs: requesting, reading and downloading them.
#[derive(Clone)]
pub struct ArchiveService {
    visitors: Arc<dyn VisitorRecords>,
    archives: Arc<dyn ArchiveStore>,
    queue: Arc<dyn ArchiveQueue>,
    settings: ArchiveSettings,
}

impl ArchiveService {
    /// A service recording jobs in `stores.visitors`, keeping archives in
    /// `stores.archives` and handing builds to `queue`.
    pub fn new(stores: &Stores, queue: Arc<dyn ArchiveQueue>, settings: ArchiveSettings) -> Self {
        ArchiveService { visitors: stores.visitors.clone(), archives: stores.archives.clone(), queue, settings }
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
    /// requester's hourly budget is known not to be spent: a refused request
    /// never walks a folder tree.
    pub async fn submit_resolving(
        &self,
        requester: &Requester,
        resolve: impl Future<Output = DomainResult<ArchiveContents>>,
    ) -> DomainResult<ArchiveJob> {
        let (key, budget) = self.budget_of(requester);
        let spent = self.visitors.throttle_state(&key).await?.unwrap_or_default();
        if let Err(until) = throttle::attempt(hourly(budget), &spent, Utc::now()) {
            let retry_after = (until - Utc::now()).num_seconds().max(1) as u64;
            return Err(budget_spent(budget, retry_after));
        }
        let contents = resolve.await?;
        let now = Utc::now();
        let fingerprint = fingerprint(&requester.reuse_scope(), &contents);
        if let Some(job) = self.reusable(requester, &fingerprint, now).await? {
            return Ok(job);
        }
        self.take_budget(requester, now).await?;

        let job = ArchiveJob::pending(
            requester.account_id,
            requester.by.clone(),
            contents.source.clone(),
            format!("{}.zip", crate::archive::names::sanitize_component(&contents.name)),
            fingerprint,
            &contents.entries,
            now,
            now + self.settings.build_timeout,
        );
        self.archives.put(&job.manifest_key, manifest_bytes(&contents.entries), "application/x-ndjson").await?;
        self.visitors.insert_archive_job(&job).await?;
        if let Err(e) = self.queue.enqueue(job.id).await {
            tracing::error!(error = %e, job = %job.id, "could not hand an archive job to the builder");
            let mut failed = job.clone();
            failed.state = ArchiveState::Failed;
            failed.failure = Some("the archive could not be started; try again".into());
            failed.updated_at = Utc::now();
            return Ok(self.visitors.replace_archive_job(&failed).await?);
        }
        Ok(job)
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

    /// The key and size of the requester's hourly budget of builds.
    fn budget_of(&self, requester: &Requester) -> (String, u32) {
        match &requester.by {
            Downloader::PublicLink { link_id, .. } => {
                (format!("archives:link:{link_id}"), self.settings.per_link_hourly)
            }
            Downloader::User { .. } => {
                (format!("archives:account:{}", requester.account_id), self.settings.per_account_hourly)
            }
        }
    }

    /// Counts one build against the requester's budgets.
    async fn take_budget(&self, requester: &Requester, now: DateTime<Utc>) -> DomainResult<()> {
        if let Downloader::PublicLink { link_id, session } = &requester.by {
            let mine = self.visitors.visitor_archive_jobs(*link_id, session, &PageRequest::first(50)).await?;
            let open = mine.items.iter().filter(|j| j.is_open() && j.deadline > now).count() as u32;
            if open >= self.settings.open_per_session {
                return Err(DomainError::TooManyArchives {
                    message: format!("{open} archives are already being prepared for you; wait for one to finish"),
                    retry_after: 10,
                });
            }
        }
        let (key, budget) = self.budget_of(requester);
        throttle::take(self.visitors.as_ref(), &key, hourly(budget), now).await.map_err(|e| match e {
            DomainError::Throttled { retry_after } => budget_spent(budget, retry_after),
            other => other,
        })
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

    /// A short-lived URL of a ready archive.
    pub async fn download_url(&self, job: &ArchiveJob) -> DomainResult<String> {
        match job.status(Utc::now()) {
            ArchiveStatus::Ready => {}
            ArchiveStatus::Expired => return Err(DomainError::ArchiveNotReady { status: ArchiveStatus::Expired }),
            status => return Err(DomainError::ArchiveNotReady { status }),
        }
        if self.archives.head(&job.archive_key).await?.is_none() {
            return Err(DomainError::ArchiveNotReady { status: ArchiveStatus::Expired });
        }
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

fn hourly(budget: u32) -> Rule {
    Rule::Budget { attempts: budget, window_secs: 3600 }
}

fn budget_spent(budget: u32, retry_after: u64) -> DomainError {
    DomainError::TooManyArchives {
        message: format!("at most {budget} archives an hour can be prepared here; try again later"),
        retry_after,
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adapters::embedded::{BlobUrlSigner, DirectoryBlobStore, EmbeddedCatalog};
    use crate::domain::library::{Library, LibrarySettings};
    use crate::signing::SecretKey;
    use std::sync::Mutex;

    /// A queue that only remembers what it was given: jobs stay pending.
    #[derive(Default)]
    struct HeldQueue(Mutex<Vec<ArchiveId>>);

    #[async_trait::async_trait]
    impl ArchiveQueue for HeldQueue {
        async fn enqueue(&self, id: ArchiveId) -> StoreResult<()> {
            self.0.lock().unwrap().push(id);
            Ok(())
        }
    }

    struct Setup {
        library: Library,
        stores: Stores,
        actor: Actor,
        queue: Arc<HeldQueue>,
        _dir: tempfile::TempDir,
    }

    async fn setup() -> Setup {
        let dir = tempfile::tempdir().unwrap();
        let catalog = Arc::new(EmbeddedCatalog::open(&dir.path().join("c.sqlite3")).unwrap());
        let root = dir.path().join("b");
        let blobs = DirectoryBlobStore::open(&root, BlobUrlSigner::new(SecretKey::generate(), "http://x")).unwrap();
        let stores = Stores {
            catalog: catalog.clone(),
            links: catalog.clone(),
            visitors: catalog,
            blobs: Arc::new(blobs.clone()),
            asset_uploads: Arc::new(blobs.clone()),
            archives: Arc::new(blobs.with_copy_source(&root)),
        };
        let library = Library::new(&stores, LibrarySettings::default());
        let admin = crate::domain::library::NewUser {
            id: None,
            name: "A".into(),
            email: "a@x.example".into(),
            role: Role::Admin,
        };
        let (account, user) = library.create_account("X", Plan::Enterprise, false, admin).await.unwrap();
        let actor = Actor { user, account };
        Setup { library, stores, actor, queue: Arc::new(HeldQueue::default()), _dir: dir }
    }

    async fn files(s: &Setup, n: usize, size: usize) -> Vec<FileId> {
        let mut ids = Vec::new();
        for i in 0..n {
            let purpose = UploadPurpose::NewFile { folder_id: None, name: format!("f{i}.txt") };
            let file = s.library.import_file(&s.actor, purpose, "text/plain", vec![b'x'; size]).await.unwrap();
            ids.push(file.id);
        }
        ids
    }

    fn visitor(session: &str, link: LinkId, account: AccountId) -> Requester {
        Requester { account_id: account, by: Downloader::PublicLink { link_id: link, session: session.into() } }
    }

    #[tokio::test]
    async fn archives_past_the_file_or_byte_limit_are_refused_up_front() {
        let s = setup().await;
        let ids = files(&s, 3, 100).await;
        let settings = ArchiveSettings { max_files: 2, ..ArchiveSettings::default() };
        let err = s.library.archive_contents(&s.actor, &ArchiveRequest::Files(ids.clone()), &settings).await;
        assert!(
            matches!(&err, Err(DomainError::ArchiveTooLarge { message }) if message.contains("at most 2 files")),
            "{err:?}"
        );
        let settings = ArchiveSettings { max_bytes: 250, ..ArchiveSettings::default() };
        let err = s.library.archive_contents(&s.actor, &ArchiveRequest::Files(ids.clone()), &settings).await;
        assert!(matches!(err, Err(DomainError::ArchiveTooLarge { .. })));
        let fits = ArchiveSettings { max_files: 3, max_bytes: 300, ..ArchiveSettings::default() };
        let contents = s.library.archive_contents(&s.actor, &ArchiveRequest::Files(ids), &fits).await.unwrap();
        assert_eq!(contents.entries.len(), 3);
    }

    #[tokio::test]
    async fn a_session_may_have_only_so_many_archives_in_the_making() {
        let s = setup().await;
        let service = ArchiveService::new(&s.stores, s.queue.clone(), ArchiveSettings::default());
        let ids = files(&s, 3, 10).await;
        let link = LinkId::new();
        let alice = visitor("alice", link, s.actor.account.id);
        for id in &ids[..2] {
            let contents = s
                .library
                .archive_contents(&s.actor, &ArchiveRequest::Files(vec![*id]), service.settings())
                .await
                .unwrap();
            service.submit(&alice, contents).await.unwrap();
        }
        let third = s
            .library
            .archive_contents(&s.actor, &ArchiveRequest::Files(vec![ids[2]]), service.settings())
            .await
            .unwrap();
        let err = service.submit(&alice, third.clone()).await;
        assert!(matches!(err, Err(DomainError::TooManyArchives { retry_after: 10, .. })), "{err:?}");
        // Asking again for one being made is no new build.
        let again = s
            .library
            .archive_contents(&s.actor, &ArchiveRequest::Files(vec![ids[0]]), service.settings())
            .await
            .unwrap();
        service.submit(&alice, again).await.unwrap();
        assert_eq!(s.queue.0.lock().unwrap().len(), 2);
        // Another session has its own allowance.
        service.submit(&visitor("bob", link, s.actor.account.id), third).await.unwrap();
        assert_eq!(s.queue.0.lock().unwrap().len(), 3);
    }

    #[tokio::test]
    async fn a_link_builds_only_so_many_archives_an_hour_whoever_asks() {
        let s = setup().await;
        let settings = ArchiveSettings { per_link_hourly: 3, ..ArchiveSettings::default() };
        let service = ArchiveService::new(&s.stores, s.queue.clone(), settings);
        let ids = files(&s, 4, 10).await;
        let link = LinkId::new();
        for (i, id) in ids.iter().enumerate() {
            let contents = s
                .library
                .archive_contents(&s.actor, &ArchiveRequest::Files(vec![*id]), service.settings())
                .await
                .unwrap();
            let result = service.submit(&visitor(&format!("v{i}"), link, s.actor.account.id), contents).await;
            if i < 3 {
                result.unwrap();
            } else {
                assert!(matches!(result, Err(DomainError::TooManyArchives { .. })), "{result:?}");
            }
        }
        // Spent: refused before the contents are even resolved.
        let late = visitor("late", link, s.actor.account.id);
        async fn never() -> DomainResult<ArchiveContents> {
            panic!("a spent budget must not resolve the archive's contents")
        }
        let result = service.submit_resolving(&late, never()).await;
        assert!(matches!(result, Err(DomainError::TooManyArchives { .. })), "{result:?}");
    }

    #[tokio::test]
    async fn ready_archives_expire_and_are_then_neither_reused_nor_downloaded() {
        let s = setup().await;
        let service = ArchiveService::new(&s.stores, s.queue.clone(), ArchiveSettings::default());
        let ids = files(&s, 1, 10).await;
        let request = ArchiveRequest::Files(ids);
        let contents = s.library.archive_contents(&s.actor, &request, service.settings()).await.unwrap();
        let job = service.submit(&Requester::user(&s.actor), contents.clone()).await.unwrap();
        assert!(matches!(
            service.download_url(&job).await,
            Err(DomainError::ArchiveNotReady { status: ArchiveStatus::Pending })
        ));

        // Built, then past its lifetime (and gone from the store, as the lifecycle rule does).
        let builder = crate::archive::builder::ArchiveBuilder::new(&s.stores, Default::default());
        builder.build(job.id, None).await.unwrap();
        let ready = s.stores.visitors.archive_job(job.id).await.unwrap().unwrap();
        assert!(service.download_url(&ready).await.is_ok());
        let reused = service.submit(&Requester::user(&s.actor), contents.clone()).await.unwrap();
        assert_eq!((reused.state, &reused.archive_key), (ArchiveState::Ready, &ready.archive_key));
        assert_eq!(s.queue.0.lock().unwrap().len(), 1, "reuse builds nothing");

        let mut expired = ready.clone();
        expired.expires_at = Some(Utc::now() - chrono::Duration::seconds(1));
        let expired = s.stores.visitors.replace_archive_job(&expired).await.unwrap();
        assert_eq!(expired.status(Utc::now()), ArchiveStatus::Expired);
        assert!(matches!(
            service.download_url(&expired).await,
            Err(DomainError::ArchiveNotReady { status: ArchiveStatus::Expired })
        ));
        s.stores.archives.delete(&ready.archive_key).await.unwrap();
        assert!(
            matches!(
                service.download_url(&reused).await,
                Err(DomainError::ArchiveNotReady { status: ArchiveStatus::Expired })
            ),
            "a missing archive is expired, whatever the job says"
        );
        let fresh = service.submit(&Requester::user(&s.actor), contents).await.unwrap();
        assert_eq!(fresh.state, ArchiveState::Pending, "nothing left to reuse: built again");
    }

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
