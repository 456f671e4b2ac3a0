//! The storage ports: small traits named for what they hold. The domain talks
//! only to these; the embedded store and the AWS adapters implement them and
//! pass one conformance suite.
//!
//! Conventions every adapter keeps:
//! - `insert_*` creates only if absent (`AlreadyExists` otherwise).
//! - `replace_*` of a record with a `revision` succeeds only if the stored
//!   revision equals the given one, and stores it bumped by one (`Conflict`
//!   otherwise, `NotFound` if it is gone). The domain retries read-modify-write.
//! - Lists are paginated with an opaque [`Cursor`]; the order is stable.

use crate::ids::*;
use crate::model::*;
use async_trait::async_trait;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Serialize, de::DeserializeOwned};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::AsyncRead;

/// What can go wrong below the domain.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum StoreError {
    /// An insert met a record (or a unique name) that already exists.
    #[error("{0} already exists")]
    AlreadyExists(&'static str),
    /// The record to change or read is not there.
    #[error("{0} not found")]
    NotFound(&'static str),
    /// A conditional write lost a race: the record changed since it was read.
    #[error("{0} was changed concurrently")]
    Conflict(&'static str),
    /// A pagination cursor that this store did not hand out.
    #[error("the pagination cursor is not valid")]
    InvalidCursor,
    /// Stored bytes that do not decode: reported, never a panic.
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    /// The name of a new, renamed or moved file or folder is one that
    /// `holder` already has in that folder (names compared by
    /// [`name_key`](crate::rules::name_key)).
    #[error("the name is taken in that folder")]
    NameTaken { holder: Target },
    /// Creating a link would pass a limit.
    #[error("the {scope} link limit of {limit} is reached")]
    LimitReached { scope: LimitScope, limit: u32 },
    /// The backend failed (I/O, network, throttling).
    #[error("storage backend failed: {0}")]
    Backend(String),
}

/// Which link limit a create ran into.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitScope {
    /// Links per file, folder or collection.
    Target,
    /// Links per account.
    Account,
}

impl std::fmt::Display for LimitScope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            LimitScope::Target => "per-target",
            LimitScope::Account => "per-account",
        })
    }
}

/// Shorthand for results of the storage ports.
pub type StoreResult<T> = Result<T, StoreError>;

/// An opaque position in a list, handed to clients as a string.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cursor(pub String);

impl Cursor {
    /// Encodes an adapter's position (its last key) as an opaque cursor.
    pub fn encode<T: Serialize>(position: &T) -> Cursor {
        let json = serde_json::to_vec(position).expect("cursor positions serialise");
        Cursor(URL_SAFE_NO_PAD.encode(json))
    }

    /// Decodes a cursor this adapter handed out; anything else is `InvalidCursor`.
    pub fn decode<T: DeserializeOwned>(&self) -> StoreResult<T> {
        let bytes = URL_SAFE_NO_PAD.decode(self.0.as_bytes()).map_err(|_| StoreError::InvalidCursor)?;
        serde_json::from_slice(&bytes).map_err(|_| StoreError::InvalidCursor)
    }
}

/// Which page of a list to read.
#[derive(Clone, Debug)]
pub struct PageRequest {
    pub cursor: Option<Cursor>,
    /// At most this many items (the domain clamps it to a sane range).
    pub limit: u32,
}

impl PageRequest {
    /// The first page of `limit` items.
    pub fn first(limit: u32) -> Self {
        PageRequest { cursor: None, limit }
    }
}

/// One page of a list and where the next one starts.
#[derive(Clone, Debug, PartialEq)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next: Option<Cursor>,
}

/// Accounts (tenants).
#[async_trait]
pub trait AccountStore: Send + Sync {
    async fn insert_account(&self, account: &Account) -> StoreResult<()>;
    async fn account(&self, id: AccountId) -> StoreResult<Option<Account>>;
    /// Conditional on `account.revision`; returns the stored record.
    async fn replace_account(&self, account: &Account) -> StoreResult<Account>;
    /// All accounts, oldest first.
    async fn list_accounts(&self, page: &PageRequest) -> StoreResult<Page<Account>>;
}

/// Users and their roles.
#[async_trait]
pub trait UserStore: Send + Sync {
    async fn insert_user(&self, user: &User) -> StoreResult<()>;
    async fn user(&self, id: UserId) -> StoreResult<Option<User>>;
    /// Overwrites an existing user (`NotFound` if gone).
    async fn replace_user(&self, user: &User) -> StoreResult<()>;
    /// Deletes the user and every grant they hold.
    async fn delete_user(&self, id: UserId) -> StoreResult<()>;
    /// An account's users, oldest first.
    async fn list_users(&self, account: AccountId, page: &PageRequest) -> StoreResult<Page<User>>;
}

/// Restricted users' grants.
#[async_trait]
pub trait GrantStore: Send + Sync {
    /// Creates or overwrites the grant of `grant.user_id` on `grant.target`.
    async fn put_grant(&self, grant: &Grant) -> StoreResult<()>;
    /// Removes it; `false` if there was none.
    async fn delete_grant(&self, user: UserId, target: Target) -> StoreResult<bool>;
    /// Every grant a user holds (a short list by nature).
    async fn grants_of_user(&self, user: UserId) -> StoreResult<Vec<Grant>>;
    /// Removes every grant on a target (when the target is deleted).
    async fn delete_grants_on(&self, target: Target) -> StoreResult<()>;
}

/// The folder tree. Within one folder (or the top), every file and
/// subfolder has a name of its own: names are compared by
/// [`name_key`](crate::rules::name_key), files and folders alike. A
/// write that would give something a name another item holds there fails
/// with `NameTaken`, naming the holder, and writes nothing; the embedded
/// store and DynamoDB both hold a guard per name, written in the same
/// transaction as the record. Items written before guards existed keep
/// their names (duplicates among them stay) until renamed or moved.
///
/// Writes that place something in the tree take the [`Placement`] the domain
/// checked: the folders above the new position, nearest first. They commit
/// only if every one of those folders still exists in the folder's account
/// with the parent the placement says (the last at the top); otherwise
/// `Conflict("placement")`, and nothing is written.
#[async_trait]
pub trait FolderStore: Send + Sync {
    /// Creates `folder` under `placement` (whose first folder is its parent).
    /// `NameTaken` when a file or folder there has its name.
    async fn insert_folder(&self, folder: &Folder, placement: &Placement) -> StoreResult<()>;
    async fn folder(&self, id: FolderId) -> StoreResult<Option<Folder>>;
    /// Conditional on revision; also keeps names unique. For changes
    /// that keep the folder where it is (a rename); moves use `move_folder`.
    async fn replace_folder(&self, folder: &Folder) -> StoreResult<Folder>;
    /// `replace_folder` for a folder whose `parent_id` changed, conditional
    /// on `placement` too (the destination's chain, starting with the new parent).
    async fn move_folder(&self, folder: &Folder, placement: &Placement) -> StoreResult<Folder>;
    /// Deletes one folder record (the domain empties it first); `false` if it
    /// was gone already (of two racing deletes, one gets `true`).
    async fn delete_folder(&self, id: FolderId) -> StoreResult<bool>;
    /// In one transaction: deletes the folder record of `deletion.folder`
    /// (if its revision is still the one recorded: `Conflict("folder")`
    /// otherwise, `NotFound("folder")` if gone), frees its name, and stores
    /// `deletion` (`AlreadyExists("folder deletion")` if one exists). What was
    /// under the folder stays until the worker removes it; from then on
    /// nothing can be placed under it.
    async fn detach_folder(&self, deletion: &FolderDeletion) -> StoreResult<()>;
    /// The deletion of the folder tree rooted at `folder`, if one was requested.
    async fn folder_deletion(&self, folder: FolderId) -> StoreResult<Option<FolderDeletion>>;
    /// Conditional on revision, like every `replace_*`.
    async fn replace_folder_deletion(&self, deletion: &FolderDeletion) -> StoreResult<FolderDeletion>;
    /// Up to `limit` deletions not done yet, oldest first (to resume them).
    async fn unfinished_folder_deletions(&self, limit: u32) -> StoreResult<Vec<FolderDeletion>>;
    /// What holds `name` directly in `parent` (`None`: the top) of
    /// `account`, if anything: a file or a folder (read strongly consistent).
    async fn name_holder(
        &self,
        account: AccountId,
        parent: Option<FolderId>,
        name: &str,
    ) -> StoreResult<Option<Target>>;
    /// The folders among `ids` that exist, in no particular order: read
    /// strongly consistent, in as few round trips as the store allows (one
    /// per 100 on DynamoDB), so that checking many costs little.
    async fn folders_by_ids(&self, ids: &[FolderId]) -> StoreResult<Vec<Folder>>;
    /// The folders directly under `parent` (`None`: the top), by name.
    async fn subfolders(
        &self,
        account: AccountId,
        parent: Option<FolderId>,
        page: &PageRequest,
    ) -> StoreResult<Page<Folder>>;
}

/// Files and their versions.
#[async_trait]
pub trait FileStore: Send + Sync {
    /// Creates the file and its current version together, in the folder
    /// `placement` starts with (its whole chain checked as
    /// [`FolderStore`] describes).
    async fn insert_file(&self, file: &File, placement: &Placement) -> StoreResult<()>;
    async fn file(&self, id: FileId) -> StoreResult<Option<File>>;
    /// Conditional on revision. If `file.current` is a version not stored yet,
    /// it is stored in the same transaction (that is how a new version lands).
    /// For changes that keep the file where it is; moves use `move_file`.
    async fn replace_file(&self, file: &File) -> StoreResult<File>;
    /// The files among `ids` that exist, in no particular order; like
    /// [`FolderStore::folders_by_ids`], a few round trips for many.
    async fn files_by_ids(&self, ids: &[FileId]) -> StoreResult<Vec<File>>;
    /// [`files_by_ids`](Self::files_by_ids) for what names a link's target
    /// only: where each file is and its name, not its whole record.
    async fn file_places(&self, ids: &[FileId]) -> StoreResult<Vec<FilePlace>>;
    /// `replace_file` for a file whose `folder_id` changed (its current
    /// version unchanged), conditional on `placement` too (the destination's chain).
    async fn move_file(&self, file: &File, placement: &Placement) -> StoreResult<File>;
    /// Deletes the file and all its version records, and says which versions
    /// went (their bytes are the caller's to remove); `None` if the file was
    /// gone already (of two racing deletes, one gets the versions).
    async fn delete_file(&self, id: FileId) -> StoreResult<Option<Vec<FileVersion>>>;
    /// Files directly in `folder` (`None`: the top), by name.
    async fn files_in_folder(
        &self,
        account: AccountId,
        folder: Option<FolderId>,
        page: &PageRequest,
    ) -> StoreResult<Page<File>>;
    /// [`files_in_folder`](Self::files_in_folder) as a listing shows it: the
    /// same files in the same order with the same cursors (either method
    /// takes the other's), each read as a [`ListedFile`] and not decoded further.
    async fn listed_files_in_folder(
        &self,
        account: AccountId,
        folder: Option<FolderId>,
        page: &PageRequest,
    ) -> StoreResult<Page<ListedFile>>;
    /// What a listing page of `folder` reads, together: its subfolders
    /// ([`FolderStore::subfolders`] with `subfolders`; none when `None`) and
    /// [`listed_files_in_folder`](Self::listed_files_in_folder) with `files`.
    /// The embedded store reads both in one snapshot on one thread; DynamoDB
    /// sends both queries at once.
    async fn folder_listing(
        &self,
        account: AccountId,
        folder: Option<FolderId>,
        subfolders: Option<&PageRequest>,
        files: &PageRequest,
    ) -> StoreResult<(Page<Folder>, Page<ListedFile>)>;
    /// [`folder_listing`](Self::folder_listing) with each file in the JSON
    /// a visitor's listing answers, as kept with it since it was written
    /// ([`KeptFile`]): the same files in the same order with the same
    /// cursors. `None` from a store that keeps no such JSON (the default;
    /// the AWS adapters): the listing is then made from the listed fields.
    async fn folder_listing_kept(
        &self,
        _account: AccountId,
        _folder: Option<FolderId>,
        _subfolders: Option<&PageRequest>,
        _files: &PageRequest,
    ) -> StoreResult<Option<(Page<Folder>, Page<KeptFile>)>> {
        Ok(None)
    }
    /// Every version of a file, oldest first.
    async fn versions(&self, file: FileId) -> StoreResult<Vec<FileVersion>>;
}

/// Media collections and their members.
#[async_trait]
pub trait CollectionStore: Send + Sync {
    async fn insert_collection(&self, collection: &Collection) -> StoreResult<()>;
    async fn collection(&self, id: CollectionId) -> StoreResult<Option<Collection>>;
    async fn replace_collection(&self, collection: &Collection) -> StoreResult<Collection>;
    /// Deletes the collection and its memberships (never the files).
    async fn delete_collection(&self, id: CollectionId) -> StoreResult<()>;
    /// An account's collections, by name.
    async fn collections(&self, account: AccountId, page: &PageRequest) -> StoreResult<Page<Collection>>;
    /// `AlreadyExists("collection item")` if the file is already in it.
    async fn add_to_collection(&self, item: &CollectionItem) -> StoreResult<()>;
    /// `false` if the file was not in it.
    async fn remove_from_collection(&self, collection: CollectionId, file: FileId) -> StoreResult<bool>;
    /// Members in the order they were added.
    async fn collection_items(&self, collection: CollectionId, page: &PageRequest)
    -> StoreResult<Page<CollectionItem>>;
    /// The collections a file is in (to drop memberships when it goes).
    async fn collections_of_file(&self, file: FileId) -> StoreResult<Vec<CollectionId>>;
    /// Which of `files` are members of `collection`, in no particular order;
    /// strongly consistent, a few round trips for many.
    async fn members_among(&self, collection: CollectionId, files: &[FileId]) -> StoreResult<Vec<FileId>>;
}

/// Uploads, from the moment their part URLs are handed out until a while
/// after they became a file: a completion moves one through its states with
/// conditional writes, so it can be retried and never runs twice.
#[async_trait]
pub trait UploadStore: Send + Sync {
    async fn insert_upload(&self, upload: &Upload) -> StoreResult<()>;
    async fn upload(&self, id: UploadId) -> StoreResult<Option<Upload>>;
    /// Conditional on revision, like every `replace_*`.
    async fn replace_upload(&self, upload: &Upload) -> StoreResult<Upload>;
    /// Forgets it (the cleanup of uploads past [`Upload::keep_until`]). Idempotent.
    async fn delete_upload(&self, id: UploadId) -> StoreResult<()>;
}

/// Everything the media library keeps, as one object for the domain to hold.
pub trait Catalog:
    AccountStore + UserStore + GrantStore + FolderStore + FileStore + CollectionStore + UploadStore
{
}

impl<T> Catalog for T where
    T: AccountStore + UserStore + GrantStore + FolderStore + FileStore + CollectionStore + UploadStore
{
}

/// The limits a new link must fit in. Every stored link counts, expired or
/// not, until it is deleted: the link service deletes expired links that
/// stand in the way (see [`LinkStore::expired_links`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LinkLimits {
    pub per_target: u32,
    pub per_account: u32,
}

/// Where to look for expired links.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExpiredScope {
    /// Everywhere (the sweep).
    All,
    Target(Target),
    Account(AccountId),
}

/// Filters and order of the account-wide list of links.
#[derive(Clone, Debug)]
pub struct LinkQuery {
    pub kind: Option<TargetKind>,
    pub state: Option<LinkState>,
    pub newest_first: bool,
    /// The moment states are judged at.
    pub now: chrono::DateTime<chrono::Utc>,
}

/// Public links. Every change is written together with its audit entry, in
/// one transaction: there is no link change without its record.
#[async_trait]
pub trait LinkStore: Send + Sync {
    /// Creates `link` if its target holds fewer than `limits.per_target` and
    /// its account fewer than `limits.per_account` links (`LimitReached`
    /// otherwise), and only while its target exists in the link's account
    /// where `link.placement` says (the target's own parent first, then the
    /// whole chain, as [`FolderStore`] checks placements): `Conflict("link
    /// target")` otherwise. Holds under any concurrency, so a link can never
    /// outlive a concurrent delete or move of what it points at.
    async fn create_link(&self, link: &Link, limits: LinkLimits, audit: &AuditEntry) -> StoreResult<()>;
    async fn link(&self, id: LinkId) -> StoreResult<Option<Link>>;
    /// The link whose token hashes to `token_hash`, with what every visit
    /// reads next: the link's account and, for a folder link, the shared
    /// folder, each as [`AccountStore::account`] and [`FolderStore::folder`]
    /// read it. Read together where the store can: one snapshot of the
    /// embedded store; in AWS the token's item (and the link's own for a
    /// link past its end), then one `BatchGetItem` of the catalog's items
    /// (each read strongly consistent, not as one snapshot).
    async fn link_opening(&self, token_hash: &str) -> StoreResult<Option<LinkOpening>>;
    /// Conditional on revision, like every `replace_*`. A link's id, account,
    /// target, token hash and creation time never change: only its options do.
    async fn replace_link(&self, link: &Link, audit: &AuditEntry) -> StoreResult<Link>;
    /// Deletes the link and records `audit`; `false` (and no record) if it was already gone.
    async fn delete_link(&self, id: LinkId, audit: &AuditEntry) -> StoreResult<bool>;
    /// The link's record was removed by the storage itself (DynamoDB's TTL),
    /// not through `delete_link`: release what it held (its limit slots, its
    /// token) and record `audit`, exactly once however often this is called
    /// (`false` if it was done already). A link still stored is deleted as by
    /// `delete_link`.
    async fn release_removed(&self, link: &Link, audit: &AuditEntry) -> StoreResult<bool>;
    /// Every link on one target, oldest first (at most a handful).
    async fn links_of_target(&self, target: Target) -> StoreResult<Vec<Link>>;
    /// Every link of `account` that [is within](Link::is_within) `scope`,
    /// read strongly consistent: a link whose create committed before this
    /// call is in the answer. What cascades delete; it costs what the
    /// account's links cost (bounded by its limit), whatever the size of the tree.
    async fn links_within(&self, account: AccountId, scope: Target) -> StoreResult<Vec<Link>>;
    /// An account's links, filtered and ordered by creation time.
    async fn links_of_account(
        &self,
        account: AccountId,
        query: &LinkQuery,
        page: &PageRequest,
    ) -> StoreResult<Page<Link>>;
    /// Up to `limit` links in `scope` whose validity ended at or before `now`,
    /// for the cleanup sweep and to free a limit.
    async fn expired_links(
        &self,
        scope: ExpiredScope,
        now: chrono::DateTime<chrono::Utc>,
        limit: u32,
    ) -> StoreResult<Vec<Link>>;
    /// Up to `limit` links, of every account, whose validity ends after
    /// `after` and at or before `until`, in order of end then id: those
    /// about to end, for the expiry warnings, read page by page (the next
    /// page is after the last link of this one). Links that have already
    /// ended (TTL may leave them for days) are not read, so they never crowd
    /// these out.
    async fn links_ending_between(
        &self,
        after: EndPosition,
        until: chrono::DateTime<chrono::Utc>,
        limit: u32,
    ) -> StoreResult<Vec<Link>>;
}

/// A link as a visit opens it ([`LinkStore::link_opening`]).
#[derive(Clone, Debug, PartialEq)]
pub struct LinkOpening {
    pub link: Link,
    /// The link's account; `None` if it is gone.
    pub account: Option<Account>,
    /// The shared folder of a folder link; `None` for other links, or if it is gone.
    pub shared_folder: Option<Folder>,
}

/// Where a read of links in order of their end resumes: after every link
/// ending at or before `end`, or, with `link`, after that link among those
/// ending exactly at `end` (links ending at one moment go in id order).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EndPosition {
    pub end: chrono::DateTime<chrono::Utc>,
    pub link: Option<LinkId>,
}

impl EndPosition {
    /// After every link ending at or before `end`.
    pub fn after(end: chrono::DateTime<chrono::Utc>) -> Self {
        EndPosition { end, link: None }
    }

    /// Just after `link` (which has an end): where the page that ended with it goes on.
    pub fn after_link(link: &Link) -> Option<Self> {
        link.valid_until.map(|end| EndPosition { end, link: Some(link.id) })
    }
}

/// Filters of the audit log.
#[derive(Clone, Debug, Default)]
pub struct AuditQuery {
    pub link: Option<LinkId>,
    pub target: Option<Target>,
    pub action: Option<AuditAction>,
}

/// The audit log of links, newest first.
#[async_trait]
pub trait AuditStore: Send + Sync {
    /// Records an entry unless one with its id exists; `false` if it did.
    async fn append_audit(&self, entry: &AuditEntry) -> StoreResult<bool>;
    async fn audit_entries(
        &self,
        account: AccountId,
        query: &AuditQuery,
        page: &PageRequest,
    ) -> StoreResult<Page<AuditEntry>>;
}

/// Links and their audit log, as one object for the link service to hold.
pub trait LinkRecords: LinkStore + AuditStore {}

impl<T: LinkStore + AuditStore> LinkRecords for T {}

/// Downloads, for the account's list and each visitor's.
#[async_trait]
pub trait DownloadStore: Send + Sync {
    async fn record_download(&self, record: &DownloadRecord) -> StoreResult<()>;
    /// The account's downloads, newest first.
    async fn account_downloads(&self, account: AccountId, page: &PageRequest) -> StoreResult<Page<DownloadRecord>>;
    /// One visitor session's downloads through one link, newest first.
    async fn visitor_downloads(
        &self,
        link: LinkId,
        session: &str,
        page: &PageRequest,
    ) -> StoreResult<Page<DownloadRecord>>;
}

/// Throttle buckets by key. The rules live in the domain; the store only
/// offers a compare-and-set, so concurrent attempts cannot both pass.
#[async_trait]
pub trait ThrottleStore: Send + Sync {
    async fn throttle_state(&self, key: &str) -> StoreResult<Option<ThrottleState>>;
    /// Stores `state` if the stored revision is `state.revision` (or, for
    /// revision 0, if there is none yet), bumping it; `Conflict` otherwise.
    /// The bucket may be forgotten after `expires_at`.
    async fn put_throttle_state(
        &self,
        key: &str,
        state: &ThrottleState,
        expires_at: chrono::DateTime<chrono::Utc>,
    ) -> StoreResult<()>;
}

/// Archive jobs: requests for many files as one ZIP, and their progress.
#[async_trait]
pub trait ArchiveJobStore: Send + Sync {
    async fn insert_archive_job(&self, job: &ArchiveJob) -> StoreResult<()>;
    async fn archive_job(&self, id: ArchiveId) -> StoreResult<Option<ArchiveJob>>;
    /// Conditional on revision, like every `replace_*`.
    async fn replace_archive_job(&self, job: &ArchiveJob) -> StoreResult<ArchiveJob>;
    /// The account's jobs, newest first.
    async fn account_archive_jobs(&self, account: AccountId, page: &PageRequest) -> StoreResult<Page<ArchiveJob>>;
    /// One visitor session's jobs through one link, newest first.
    async fn visitor_archive_jobs(
        &self,
        link: LinkId,
        session: &str,
        page: &PageRequest,
    ) -> StoreResult<Page<ArchiveJob>>;
    /// Up to `limit` jobs with this fingerprint, newest first: an archive to reuse.
    async fn archive_jobs_by_fingerprint(&self, fingerprint: &str, limit: u32) -> StoreResult<Vec<ArchiveJob>>;
}

/// One slot of a limit on things in progress (archives in the making): what
/// holds it, and the moment after which the holder cannot be in progress any
/// more (its deadline).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Slot {
    pub holder: String,
    pub until: chrono::DateTime<chrono::Utc>,
}

/// Counters and slots that keep limits exact under any concurrency: every
/// change is one conditional write on one record (never a list read followed
/// by an insert), so concurrent requests cannot both take the last place.
/// The rules (keys, windows, what frees a slot) live in the domain.
#[async_trait]
pub trait LimitStore: Send + Sync {
    /// Adds one to counter `key` if it holds less than `limit`: the new
    /// count, or `None` (and nothing written) if it is at the limit. The
    /// counter may be forgotten after `expires_at`.
    async fn count_up(
        &self,
        key: &str,
        limit: u32,
        expires_at: chrono::DateTime<chrono::Utc>,
    ) -> StoreResult<Option<u32>>;
    /// Takes one back from counter `key` (a charge that turned out not to be
    /// due); never below zero.
    async fn count_down(&self, key: &str) -> StoreResult<()>;
    /// What counter `key` holds now (0 if it was never counted or is
    /// forgotten): read when a manager lowers a limit below it.
    async fn count(&self, key: &str) -> StoreResult<u32>;
    /// Who holds slot `key`, if anyone.
    async fn slot(&self, key: &str) -> StoreResult<Option<Slot>>;
    /// Gives slot `key` to `slot.holder` if it is free (`replacing: None`) or
    /// still held by `replacing`; `false`, and nothing written, otherwise.
    /// The slot may be forgotten a day after `slot.until`.
    async fn take_slot(&self, key: &str, slot: &Slot, replacing: Option<&str>) -> StoreResult<bool>;
    /// Frees slot `key` if `holder` holds it (otherwise nothing happens).
    async fn free_slot(&self, key: &str, holder: &str) -> StoreResult<()>;
}

/// What visitors did through links: each link's counters (kept as long as
/// the link) and its activity log (kept for a retention period). Recording
/// is on every visitor request, so it must stay cheap however busy one link
/// is: the DynamoDB adapter spreads a link's counters and log over shards.
#[async_trait]
pub trait ActivityStore: Send + Sync {
    /// Adds `entry` to its link's log (until `entry.keep_until`) and to its
    /// link's counters. Recording an entry id twice is not guarded against:
    /// each visitor request records once.
    async fn record_activity(&self, entry: &ActivityEntry) -> StoreResult<()>;
    /// A link's counters (zero for a link nobody visited). `first_access`
    /// and `last_access` are exact but for requests recorded at once: of
    /// those, a store that spreads counters over shards may keep either's time.
    async fn link_activity(&self, link: LinkId) -> StoreResult<LinkActivity>;
    /// The counters of many links at once (those never visited are absent).
    async fn links_activity(&self, links: &[LinkId]) -> StoreResult<Vec<(LinkId, LinkActivity)>>;
    /// A link's log, newest first, without the entries kept until before `now`.
    async fn activity_log(
        &self,
        link: LinkId,
        now: chrono::DateTime<chrono::Utc>,
        page: &PageRequest,
    ) -> StoreResult<Page<ActivityEntry>>;
}

/// What the public side keeps besides links: downloads, archive jobs,
/// throttles, limit counters and link activity.
pub trait VisitorRecords: DownloadStore + ThrottleStore + ArchiveJobStore + LimitStore + ActivityStore {}

impl<T: DownloadStore + ThrottleStore + ArchiveJobStore + LimitStore + ActivityStore> VisitorRecords for T {}

/// A stream of a blob's bytes.
pub type BlobReader = Pin<Box<dyn AsyncRead + Send>>;

/// Blob keys are made by the domain; anything else is refused before it can
/// become a path.
pub fn valid_blob_key(key: &str) -> bool {
    !key.is_empty()
        && key.len() <= 512
        && key.split('/').all(|part| {
            !part.is_empty()
                && part != "."
                && part != ".."
                && part.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        })
}

/// A `Content-Disposition` value that saves the file as `name` (RFC 6266:
/// an ASCII fallback and the exact UTF-8 name).
pub fn attachment_disposition(name: &str) -> String {
    let fallback: String =
        name.chars().map(|c| if c.is_ascii_graphic() && c != '"' && c != '\\' || c == ' ' { c } else { '_' }).collect();
    let exact = percent_encoding::utf8_percent_encode(name, percent_encoding::NON_ALPHANUMERIC);
    format!("attachment; filename=\"{fallback}\"; filename*=UTF-8''{exact}")
}

/// Facts about a stored blob.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlobInfo {
    pub size: u64,
    /// The store's identity of these bytes (S3's ETag): it changes whenever the
    /// blob is written, so a copy made on a condition of it copies what was
    /// recorded or nothing.
    pub e_tag: String,
}

/// File bytes by key (S3 in AWS, a directory locally). URLs it signs are the
/// way bytes reach browsers: the functions never proxy large bodies.
#[async_trait]
pub trait BlobStore: Send + Sync {
    async fn put(&self, key: &str, bytes: Vec<u8>, content_type: &str) -> StoreResult<()>;
    /// `NotFound("blob")` if absent.
    async fn open(&self, key: &str) -> StoreResult<BlobReader>;
    /// The bytes in `range` (which must lie inside the blob): `NotFound("blob")` if absent.
    async fn open_range(&self, key: &str, range: std::ops::Range<u64>) -> StoreResult<BlobReader>;
    async fn head(&self, key: &str) -> StoreResult<Option<BlobInfo>>;
    /// Idempotent: deleting a missing blob succeeds.
    async fn delete(&self, key: &str) -> StoreResult<()>;
    /// Deletes many blobs, as few requests as the store allows (S3: a
    /// thousand a request); idempotent like `delete`.
    async fn delete_many(&self, keys: &[String]) -> StoreResult<()> {
        for key in keys {
            self.delete(key).await?;
        }
        Ok(())
    }
    /// A URL that downloads the blob as an attachment named `download_name`.
    async fn presign_get(&self, key: &str, download_name: &str, ttl: Duration) -> StoreResult<String>;
}

/// A multipart upload in progress: what its parts and its completion need.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MultipartUpload {
    /// The object the upload becomes on completion.
    pub key: String,
    /// The store's id of the upload, needed by every later call.
    pub upload_id: String,
}

/// A part the store accepted: completing the upload lists every one, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UploadedPart {
    /// 1 to [`MAX_PARTS`].
    pub number: u32,
    /// The store's checksum of the part, which completion must repeat.
    pub e_tag: String,
}

/// A part of a client's upload as the store holds it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredPart {
    pub number: u32,
    pub size: u64,
    pub e_tag: String,
}

/// Uploads of asset bytes by clients, always multipart: a client PUTs parts
/// to URLs the store signs, and the object appears under its key only when
/// the upload is completed. After that no URL ever handed out can change it:
/// a part PUT to a completed or aborted upload is refused.
#[async_trait]
pub trait AssetUploads: Send + Sync {
    /// Starts an upload that becomes `key`, stored with `content_type`.
    async fn start_upload(&self, key: &str, content_type: &str) -> StoreResult<MultipartUpload>;
    /// A URL that accepts one PUT of part `number`. Where the store can, it
    /// takes exactly `size` bytes and refuses more at once.
    async fn presign_part(
        &self,
        upload: &MultipartUpload,
        number: u32,
        size: u64,
        ttl: Duration,
    ) -> StoreResult<String>;
    /// The parts received so far, by number; `NotFound("multipart upload")`
    /// once the upload is completed or aborted.
    async fn list_parts(&self, upload: &MultipartUpload) -> StoreResult<Vec<StoredPart>>;
    /// Assembles `parts` (each as listed: a part PUT again since is refused
    /// with `Conflict("upload part")`) into the object; returns its ETag.
    /// `NotFound("multipart upload")` if it was completed or aborted already.
    async fn complete_upload(&self, upload: &MultipartUpload, parts: &[StoredPart]) -> StoreResult<String>;
    /// Drops the upload and its parts. Idempotent.
    async fn abort_upload(&self, upload: &MultipartUpload) -> StoreResult<()>;
}

/// The most parts one upload may have (S3's limit).
pub const MAX_PARTS: u32 = 10_000;
/// The least a part other than the last may hold (S3's limit).
pub const MIN_PART_SIZE: u64 = 5 * 1024 * 1024;
/// The most one part may hold (S3's limit).
pub const MAX_PART_SIZE: u64 = 5 * 1024 * 1024 * 1024;

/// The downloads store: generated archives, written with multipart uploads
/// so that an archive of any size takes flat memory, and which appear whole
/// or not at all. Everything of [`BlobStore`] works on it too (manifests,
/// presigned downloads).
#[async_trait]
pub trait ArchiveStore: BlobStore {
    /// How many parts a writer may upload at once.
    fn parallel_parts(&self) -> usize;
    /// Whether [`copy_part`](Self::copy_part) is available (a copy source is set).
    fn can_copy_parts(&self) -> bool;
    /// Starts a multipart upload of `key` (a ZIP).
    async fn start_multipart(&self, key: &str) -> StoreResult<MultipartUpload>;
    /// Uploads part `number`. Every part but the last holds at least [`MIN_PART_SIZE`].
    async fn upload_part(&self, upload: &MultipartUpload, number: u32, bytes: Vec<u8>) -> StoreResult<UploadedPart>;
    /// Makes part `number` a copy of `range` of the asset blob `source_key`,
    /// done by the store itself: the bytes never pass through this process.
    /// With `if_match`, only while the source's ETag is that one
    /// (`Conflict("stored file")` otherwise): the archive's header was written
    /// from what was recorded of exactly those bytes.
    async fn copy_part(
        &self,
        upload: &MultipartUpload,
        number: u32,
        source_key: &str,
        range: std::ops::Range<u64>,
        if_match: Option<&str>,
    ) -> StoreResult<UploadedPart>;
    /// Assembles the parts into the object: it appears whole, or not at all.
    async fn complete_multipart(&self, upload: &MultipartUpload, parts: &[UploadedPart]) -> StoreResult<()>;
    /// Drops the upload and its parts, leaving no object. Idempotent.
    async fn abort_multipart(&self, upload: &MultipartUpload) -> StoreResult<()>;
    /// The ids of uploads of `key` still in progress (neither completed nor aborted).
    async fn open_multiparts(&self, key: &str) -> StoreResult<Vec<String>>;
}

/// Hands archive jobs to a builder: an in-process worker locally, a queue
/// that the `zip-builder` function reads in AWS.
#[async_trait]
pub trait ArchiveQueue: Send + Sync {
    /// Asks for job `id` to be built, soon, at least once.
    async fn enqueue(&self, id: ArchiveId) -> StoreResult<()>;
}

/// Hands library jobs (the slow halves of requests) to a worker: an
/// in-process one locally, a queue that the `library-worker` function reads
/// in AWS.
#[async_trait]
pub trait LibraryJobQueue: Send + Sync {
    /// Asks for `job` to run, soon, at least once.
    async fn enqueue(&self, job: &crate::jobs::LibraryJob) -> StoreResult<()>;
}

/// The stores the services are built on, shared by every router.
#[derive(Clone)]
pub struct Stores {
    pub catalog: Arc<dyn Catalog>,
    pub links: Arc<dyn LinkRecords>,
    pub visitors: Arc<dyn VisitorRecords>,
    /// The assets.
    pub blobs: Arc<dyn BlobStore>,
    /// Clients' uploads of assets (into the same store as `blobs`).
    pub asset_uploads: Arc<dyn AssetUploads>,
    /// Generated archives and their manifests.
    pub archives: Arc<dyn ArchiveStore>,
    /// The account's webhooks and their deliveries.
    pub webhooks: Arc<dyn crate::webhooks::WebhookStore>,
    /// The time the services read ([`clock::system`](crate::clock::system) when deployed).
    pub clock: Arc<dyn crate::clock::Clock>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn disposition_keeps_the_exact_name_and_a_safe_fallback() {
        let d = attachment_disposition("r\u{e9}sum\u{e9} \"final\".pdf");
        assert!(d.starts_with("attachment; filename=\"r_sum_ _final_.pdf\""), "{d}");
        assert!(d.ends_with("filename*=UTF-8''r%C3%A9sum%C3%A9%20%22final%22%2Epdf"), "{d}");
    }
}
