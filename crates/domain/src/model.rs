//! The records of the media library. These are the system of record that public
//! links stand on; what a visitor may see of them is decided elsewhere, by an
//! allow-list, never by these types.

use crate::ids::*;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use utoipa::ToSchema;

/// The commercial plan of an account; public links need `Enterprise`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Plan {
    /// Every feature, public links included.
    Enterprise,
    /// The plan without public links.
    Standard,
}

/// The link limit an account gets unless an operator sets another.
pub const DEFAULT_LINK_LIMIT: u32 = 100;

/// A tenant. Every other record belongs to exactly one account.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Account {
    pub id: AccountId,
    pub name: String,
    pub plan: Plan,
    /// Whether the draft-assets feature is on (unpublished files exist and can be exposed).
    pub drafts_enabled: bool,
    /// How many live public links the account may have at once.
    pub link_limit: u32,
    /// What new links get unless they say otherwise (administrators set it).
    #[serde(default)]
    pub link_defaults: LinkDefaults,
    /// How the account presents itself to visitors (administrators set it).
    #[serde(default)]
    pub branding: crate::branding::Branding,
    /// The events some webhook of the account wants (kept by the webhook
    /// service), read with the account on every visit: an account without
    /// webhooks costs a visit nothing more.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schema(ignore)]
    pub webhook_events: Vec<crate::webhooks::WebhookEvent>,
    #[serde(deserialize_with = "crate::rfc3339::read_time")]
    pub created_at: DateTime<Utc>,
    /// Optimistic-concurrency revision: bumped on every write.
    pub revision: u64,
}

/// The options a new link of the account gets when its create leaves them out.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LinkDefaults {
    /// Leave out of what visitors see the embedded metadata that places a
    /// photo (GPS) or identifies the device or person behind it (serial
    /// numbers, owner and artist names, unique image ids). Off unless an
    /// administrator turns it on: visitors see all embedded metadata.
    #[serde(default)]
    pub hide_identifying_metadata: bool,
}

/// What a user may do, before any per-item grant is considered.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Everything, including users and grants.
    Admin,
    /// Everything in the media library.
    Developer,
    /// Everything in the media library.
    FullAccess,
    /// Reads the whole media library, changes nothing.
    ViewOnly,
    /// Sees and changes only what grants give them.
    Restricted,
    /// Billing only: no access to the media library at all.
    Billing,
}

/// A person who signs in. The JWT names the user; the role comes from here.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct User {
    pub id: UserId,
    pub account_id: AccountId,
    pub name: String,
    pub email: String,
    pub role: Role,
    pub created_at: DateTime<Utc>,
}

/// A permission level. The order matters: `View < Edit < Manage`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Permission {
    /// See it and download it.
    View,
    /// Change its content and metadata, upload into it.
    Edit,
    /// Delete, move, and manage its public links.
    Manage,
}

/// The kinds of thing a grant (and later a public link) can point at.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TargetKind {
    File,
    Folder,
    Collection,
}

/// A file, folder or collection, by id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSchema)]
#[serde(tag = "kind", content = "id", rename_all = "snake_case")]
pub enum Target {
    File(FileId),
    Folder(FolderId),
    Collection(CollectionId),
}

impl Target {
    /// Which kind of thing this is.
    pub fn kind(&self) -> TargetKind {
        match self {
            Target::File(_) => TargetKind::File,
            Target::Folder(_) => TargetKind::Folder,
            Target::Collection(_) => TargetKind::Collection,
        }
    }

    /// The bare UUID, for storage keys.
    pub fn uuid(&self) -> uuid::Uuid {
        match self {
            Target::File(id) => id.0,
            Target::Folder(id) => id.0,
            Target::Collection(id) => id.0,
        }
    }

    /// Rebuilds a target from its kind and bare id (the inverse of `kind` + `uuid`).
    pub fn from_parts(kind: TargetKind, id: uuid::Uuid) -> Self {
        match kind {
            TargetKind::File => Target::File(FileId(id)),
            TargetKind::Folder => Target::Folder(FolderId(id)),
            TargetKind::Collection => Target::Collection(CollectionId(id)),
        }
    }
}

/// Where an item hangs in the folder tree: the folders above it, nearest
/// first (empty at the top of the tree, and for collections, which are not in
/// it). Every write that puts something somewhere — a new folder or file, a
/// move, a new link — carries the placement its permission check saw, and the
/// store commits it only while that is still the chain: a concurrent move or
/// delete of any of those folders makes the write fail instead of landing
/// where nobody checked it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Placement(pub Vec<FolderId>);

impl Placement {
    /// The placement of whatever sits directly in the first folder of `chain`
    /// (a folder and the folders above it, nearest first, as
    /// [`folder_chain`](super::access::folder_chain) returns it).
    pub fn of(chain: &[Folder]) -> Self {
        Placement(chain.iter().map(|f| f.id).collect())
    }

    /// The folder the item sits directly in (`None`: the top).
    pub fn parent(&self) -> Option<FolderId> {
        self.0.first().copied()
    }

    /// Whether `folder` is one of the folders above the item.
    pub fn is_under(&self, folder: FolderId) -> bool {
        self.0.contains(&folder)
    }
}

/// A restricted user's permission on one file, folder or collection. A grant on
/// a folder covers everything under it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Grant {
    pub account_id: AccountId,
    pub user_id: UserId,
    pub target: Target,
    pub level: Permission,
    pub granted_at: DateTime<Utc>,
}

/// A folder. `parent_id` is `None` at the top of the account's tree.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Folder {
    pub id: FolderId,
    pub account_id: AccountId,
    pub parent_id: Option<FolderId>,
    pub name: String,
    #[serde(deserialize_with = "crate::rfc3339::read_time")]
    pub created_at: DateTime<Utc>,
    #[serde(deserialize_with = "crate::rfc3339::read_time")]
    pub updated_at: DateTime<Utc>,
    pub revision: u64,
}

/// How far the removal of a deleted folder's contents has come.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DeletionStatus {
    /// Waiting for the worker.
    Pending,
    /// The worker is removing the contents.
    Running,
    /// Everything under the folder is gone.
    Done,
}

/// The deletion of a folder tree. The folder leaves the library (and its
/// links go) at once, in the request; what was under it is removed by a
/// background worker, resumably, since a tree may hold more than one request
/// can remove. Keyed by the folder's id: deleting the same folder again finds
/// this record and hands it to the worker again.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct FolderDeletion {
    /// The deleted folder as it was: the root of the tree being removed.
    pub folder: Folder,
    pub requested_by: UserId,
    pub status: DeletionStatus,
    /// Folders removed so far, the deleted folder itself included.
    pub folders_removed: u64,
    /// Files removed so far.
    pub files_removed: u64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    pub revision: u64,
}

/// A point on an image the owner marked (a focus area, a face...).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Coordinates {
    #[schema(maximum = 4294967295_u64)]
    pub x: u32,
    #[schema(maximum = 4294967295_u64)]
    pub y: u32,
    #[schema(maximum = 4294967295_u64)]
    pub width: u32,
    #[schema(maximum = 4294967295_u64)]
    pub height: u32,
}

/// A remark left on a file by a user.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Comment {
    pub id: CommentId,
    pub author_id: UserId,
    pub text: String,
    #[serde(deserialize_with = "crate::rfc3339::read_time")]
    pub created_at: DateTime<Utc>,
}

/// One stored upload of a file's bytes. Older versions stay stored but only
/// the current one is ever reachable through a public link.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FileVersion {
    pub file_id: FileId,
    /// 1 for the first upload, then 2, 3...
    pub number: u32,
    /// Where the bytes are in the blob store. Never shown to a visitor.
    pub blob_key: String,
    pub content_type: String,
    pub size: u64,
    pub crc32: u32,
    pub sha256: String,
    /// The store's ETag of the bytes when they were read: server-side copies
    /// are made only while it still holds (`None` for versions recorded
    /// before ETags were).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub e_tag: Option<String>,
    pub width: Option<u32>,
    pub height: Option<u32>,
    /// EXIF and similar metadata read from the bytes at upload.
    pub embedded_metadata: BTreeMap<String, String>,
    pub uploaded_by: UserId,
    #[serde(deserialize_with = "crate::rfc3339::read_time")]
    pub uploaded_at: DateTime<Utc>,
}

/// A file (an asset). Its bytes and what was read from them are in `current`,
/// a copy of its current version. [`FilePlace`] and [`ListedFile`] decode
/// from its stored document by these field names: a rename is one of theirs
/// too (the conformance suite compares them with records read back).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct File {
    pub id: FileId,
    pub account_id: AccountId,
    pub folder_id: Option<FolderId>,
    pub name: String,
    pub owner_id: UserId,
    pub tags: Vec<String>,
    pub ai_tags: Vec<String>,
    pub custom_coordinates: Vec<Coordinates>,
    pub custom_metadata: BTreeMap<String, String>,
    pub comments: Vec<Comment>,
    /// A private file needs a signed URL in the library; public links serve it like the rest.
    pub private: bool,
    /// `false` is a draft: only exposed by links that opt in.
    pub published: bool,
    pub current: FileVersion,
    #[serde(deserialize_with = "crate::rfc3339::read_time")]
    pub created_at: DateTime<Utc>,
    #[serde(deserialize_with = "crate::rfc3339::read_time")]
    pub updated_at: DateTime<Utc>,
    pub revision: u64,
}

/// Where a file is and what it is called: the fields of [`File`] that
/// naming a link's target needs, decoded from the stored record without the
/// rest of it (versions, metadata, tags, comments). The account's list of
/// links names up to 200 targets a page.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct FilePlace {
    pub id: FileId,
    /// The account the file belongs to (a link names only its own account's files).
    pub account_id: AccountId,
    /// The folder it is directly in (`None`: the top).
    pub folder_id: Option<FolderId>,
    pub name: String,
}

impl From<&File> for FilePlace {
    fn from(f: &File) -> Self {
        FilePlace { id: f.id, account_id: f.account_id, folder_id: f.folder_id, name: f.name.clone() }
    }
}

/// What a listing shows of a file: the fields of [`File`] a visitor's
/// listing needs (and whether it is published), read from the stored record
/// without decoding the rest of it (tags, comments, hashes, storage keys).
/// It deserialises from a [`File`]'s own document, and serialises to the
/// same fields (a store may keep it beside the document).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ListedFile {
    pub id: FileId,
    pub name: String,
    pub published: bool,
    #[serde(deserialize_with = "crate::rfc3339::read_time")]
    pub created_at: DateTime<Utc>,
    pub current: ListedVersion,
}

/// What a listing shows of a file's current version.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ListedVersion {
    pub content_type: String,
    pub size: u64,
    pub width: Option<u32>,
    pub height: Option<u32>,
    pub embedded_metadata: BTreeMap<String, String>,
    #[serde(deserialize_with = "crate::rfc3339::read_time")]
    pub uploaded_at: DateTime<Utc>,
}

impl From<&File> for ListedFile {
    fn from(f: &File) -> Self {
        let v = &f.current;
        ListedFile {
            id: f.id,
            name: f.name.clone(),
            published: f.published,
            created_at: f.created_at,
            current: ListedVersion {
                content_type: v.content_type.clone(),
                size: v.size,
                width: v.width,
                height: v.height,
                embedded_metadata: v.embedded_metadata.clone(),
                uploaded_at: v.uploaded_at,
            },
        }
    }
}

/// A file of a folder's listing in the JSON its visitors get (the public
/// file's, made by `KeptFile::of` in the public service), made once, when
/// the file is written, by a store that keeps it
/// ([`FileStore::folder_listing_kept`](crate::store::FileStore::folder_listing_kept)):
/// a listing page splices it into its answer as it is, where decoding each
/// file and encoding it again took about half of a 200-file page's time,
/// and checking kept JSON as it was read a fifth. It holds both forms a
/// link can show, and whether the file is published.
///
/// Its texts are JSON as `KeptFile::of` made them: a store hands back what
/// it was given, byte for byte.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeptFile {
    /// Whether visitors of links that do not expose drafts see it.
    pub published: bool,
    /// As a link that shows all its embedded metadata shows it.
    pub shown: String,
    /// As a link that hides identifying metadata shows it: `None` when the
    /// file has none (it is then shown as `shown`).
    pub shown_without_identifying: Option<String>,
}

/// A named set of files from anywhere in the account.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Collection {
    pub id: CollectionId,
    pub account_id: AccountId,
    pub name: String,
    pub created_by: UserId,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub revision: u64,
}

/// A file's membership in a collection.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct CollectionItem {
    pub collection_id: CollectionId,
    pub file_id: FileId,
    pub added_at: DateTime<Utc>,
}

/// What a pending upload will become once its bytes arrive.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum UploadPurpose {
    /// A new file in a folder (or at the top when `folder_id` is `None`).
    NewFile { folder_id: Option<FolderId>, name: String },
    /// A new version of an existing file.
    NewVersion { file_id: FileId },
}

/// Where an upload stands. It moves only forward: open → ingesting → done,
/// or to failed; each move is a conditional write, so a completion can be
/// retried (or run twice at once) and the file is still made once.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum UploadState {
    /// Part URLs are handed out; the bytes and the completion are awaited.
    #[default]
    Open,
    /// The bytes are complete and can no longer change; checksums,
    /// dimensions and EXIF are being read from them.
    Ingesting,
    /// The file, or its new version, exists (`file_id`).
    Done,
    /// It will not become a file; `failure` says why.
    Failed,
}

/// An upload: where its parts go, what it becomes, and where it stands.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Upload {
    pub id: UploadId,
    pub account_id: AccountId,
    pub user_id: UserId,
    pub purpose: UploadPurpose,
    pub content_type: String,
    /// The key the completed object gets, unique to this upload; it becomes
    /// the version's key and is never written again.
    pub blob_key: String,
    /// The byte count the client announced; the upload completes only with exactly these.
    pub declared_size: u64,
    pub created_at: DateTime<Utc>,
    /// Until when its part URLs work and it may be completed.
    pub expires_at: DateTime<Utc>,
    /// The store's id of the multipart upload the parts go to.
    #[serde(default)]
    pub multipart_id: String,
    /// Every part but the last holds exactly this many bytes.
    #[serde(default)]
    pub part_size: u64,
    /// The file this upload makes: a new file's id, chosen at the start so
    /// that it is created once however often the ingest runs, or the file a
    /// new version is for.
    #[serde(default)]
    pub file_id: FileId,
    #[serde(default)]
    pub state: UploadState,
    /// The object's ETag, once the bytes are complete.
    #[serde(default)]
    pub e_tag: Option<String>,
    /// Why it failed, when it did.
    #[serde(default)]
    pub failure: Option<String>,
    #[serde(default)]
    pub updated_at: DateTime<Utc>,
    #[serde(default)]
    pub revision: u64,
}

/// How long a finished (done or failed) upload's record is kept, so that a
/// retried completion still finds what became of it.
pub const FINISHED_UPLOAD_KEPT: chrono::Duration = chrono::Duration::days(1);

impl Upload {
    /// How many parts the bytes come in (one, empty, for an empty file).
    pub fn part_count(&self) -> u32 {
        self.declared_size.div_ceil(self.part_size.max(1)).max(1) as u32
    }

    /// The bytes of the file that part `number` (1-based) holds.
    pub fn part_range(&self, number: u32) -> std::ops::Range<u64> {
        let start = (u64::from(number) - 1) * self.part_size;
        start.min(self.declared_size)..(start + self.part_size).min(self.declared_size)
    }

    /// Until when the record is needed: an open upload until it expires, a
    /// finished one for [`FINISHED_UPLOAD_KEPT`] (DynamoDB's TTL, the local sweep).
    pub fn keep_until(&self) -> DateTime<Utc> {
        match self.state {
            UploadState::Open => self.expires_at,
            _ => self.updated_at + FINISHED_UPLOAD_KEPT,
        }
    }
}

/// Where a link stands at a moment, from its validity window.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum LinkState {
    /// Inside its window (or it has none): it works.
    Active,
    /// Its window has not opened yet.
    Scheduled,
    /// Its window has closed: gone for visitors and for the limits, whatever
    /// storage has not cleaned up yet.
    Expired,
    /// Its download or session limit was reached: gone for visitors, like an
    /// expired link, and deleted like one.
    Exhausted,
}

/// A public link: a view-only URL to a file, folder or collection.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Link {
    pub id: LinkId,
    pub account_id: AccountId,
    pub target: Target,
    /// SHA-256 (hex) of the share token: how a visitor's URL finds the link.
    pub token_hash: String,
    /// The random seed the token is derived from with the link-token key, so
    /// a copy of the table alone does not yield working URLs.
    pub token_seed: String,
    #[serde(default, deserialize_with = "crate::rfc3339::read_optional_time")]
    pub valid_from: Option<DateTime<Utc>>,
    #[serde(default, deserialize_with = "crate::rfc3339::read_optional_time")]
    pub valid_until: Option<DateTime<Utc>>,
    /// Argon2id PHC string; never leaves the service.
    pub password_hash: Option<String>,
    /// Bumped whenever the password is set, changed or removed: visitor
    /// sessions carry it, so a change ends them.
    pub password_version: u32,
    /// Folders and collections only: also show unpublished (draft) files.
    pub expose_unpublished: bool,
    /// Visitors are not shown location (GPS) and device- or
    /// person-identifying embedded metadata; the files' bytes are unchanged.
    #[serde(default)]
    pub hide_identifying_metadata: bool,
    /// Visitors see the previews only: every route that hands out an
    /// original or a ZIP refuses, the pages show no download controls, and
    /// the large previews carry the account's watermark when it has one.
    #[serde(default)]
    pub preview_only: bool,
    pub created_by: UserId,
    #[serde(deserialize_with = "crate::rfc3339::read_time")]
    pub created_at: DateTime<Utc>,
    #[serde(deserialize_with = "crate::rfc3339::read_time")]
    pub updated_at: DateTime<Utc>,
    pub revision: u64,
    /// The folders above the target when the link was made. A move or delete
    /// of the target or of any of them deletes the link, so this stays true
    /// for the link's whole life: it is how a cascade finds every link under
    /// a folder without walking the tree. `None` on links stored before it
    /// was recorded (their target's chain is read instead).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub placement: Option<Placement>,
    /// The most downloads visitors may make through the link: files, and
    /// each ZIP archive as one, counted when it is accepted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_downloads: Option<u32>,
    /// The most sessions visitors may start (unlocks of a protected link).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_sessions: Option<u32>,
    /// When a limit was reached: the link then ends (its `valid_until` is set
    /// to that moment, so it goes the way expired links go).
    #[serde(default, deserialize_with = "crate::rfc3339::read_optional_time", skip_serializing_if = "Option::is_none")]
    pub exhausted_at: Option<DateTime<Utc>>,
}

impl Link {
    /// Whether a visitor of this link sees a file that is `published` (or a
    /// draft): drafts only where the link exposes them.
    pub fn shows(&self, published: bool) -> bool {
        published || self.expose_unpublished
    }

    /// Whether the link points at `scope` or, for a folder, at anything under it.
    /// A link without a recorded placement answers only for its own target.
    pub fn is_within(&self, scope: &Target) -> bool {
        self.target == *scope || matches!((scope, &self.placement), (Target::Folder(f), Some(p)) if p.is_under(*f))
    }

    /// The link's state at `now`.
    pub fn state(&self, now: DateTime<Utc>) -> LinkState {
        if self.exhausted_at.is_some() {
            return LinkState::Exhausted;
        }
        match (self.valid_from, self.valid_until) {
            (_, Some(until)) if until <= now => LinkState::Expired,
            (Some(from), _) if from > now => LinkState::Scheduled,
            _ => LinkState::Active,
        }
    }
}

/// Who made a change to a link.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum AuditActor {
    /// A signed-in user, through the API.
    User { user_id: UserId },
    /// publinks itself, for a reason.
    System { reason: SystemReason },
}

/// Why publinks itself changed a link.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SystemReason {
    Expired,
    /// Its download or session limit was reached.
    Exhausted,
    TargetDeleted,
    TargetMoved,
}

/// What happened to a link.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AuditAction {
    Created,
    Updated,
    Deleted,
}

/// A change of a password, never the password itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PasswordChange {
    Set,
    Changed,
    Removed,
}

/// What an audited change altered (absent: unchanged).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct LinkChanges {
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(schema_with = date_change)]
    pub valid_from: Option<ValueChange<Option<DateTime<Utc>>>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(schema_with = date_change)]
    pub valid_until: Option<ValueChange<Option<DateTime<Utc>>>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password: Option<PasswordChange>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expose_unpublished: Option<ValueChange<bool>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hide_identifying_metadata: Option<ValueChange<bool>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preview_only: Option<ValueChange<bool>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(schema_with = limit_change)]
    pub max_downloads: Option<ValueChange<Option<u32>>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(schema_with = limit_change)]
    pub max_sessions: Option<ValueChange<Option<u32>>>,
}

/// The schema of a changed download or session limit (`null`: none).
fn limit_change() -> utoipa::openapi::Object {
    use utoipa::openapi::schema::{ObjectBuilder, Type};
    let limit = || {
        ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::SchemaType::from_iter([Type::Integer, Type::Null]))
            .minimum(Some(1))
    };
    ObjectBuilder::new()
        .property("from", limit())
        .property("to", limit())
        .required("from")
        .required("to")
        .description(Some("A limit before and after a change (`null`: none)."))
        .build()
}

/// The schema of a changed date (`null`: none), which utoipa cannot derive
/// through the generic [`ValueChange`].
fn date_change() -> utoipa::openapi::Object {
    use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, SchemaFormat, Type};
    let date = || {
        ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::SchemaType::from_iter([Type::String, Type::Null]))
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::DateTime)))
    };
    ObjectBuilder::new()
        .property("from", date())
        .property("to", date())
        .required("from")
        .required("to")
        .description(Some("A date before and after a change (`null`: none)."))
        .build()
}

/// A value before and after a change.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ValueChange<T> {
    pub from: T,
    pub to: T,
}

/// One line of the audit log of links.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AuditEntry {
    /// Unique per change, derived from the link and its revision, so that
    /// recording the same change twice records it once.
    pub id: String,
    pub account_id: AccountId,
    pub at: DateTime<Utc>,
    pub actor: AuditActor,
    pub action: AuditAction,
    pub link_id: LinkId,
    pub target: Target,
    pub changes: LinkChanges,
}

/// Who downloaded: a signed-in user, or a visitor through a public link.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Downloader {
    User {
        user_id: UserId,
    },
    /// `session` is the visitor's browser session, so a visitor sees only their own downloads.
    PublicLink {
        link_id: LinkId,
        session: String,
    },
}

impl Downloader {
    /// The link (for a visitor) or the user (signed in), for lists that say which.
    pub fn link_or_user(&self) -> (Option<LinkId>, Option<UserId>) {
        match self {
            Downloader::PublicLink { link_id, .. } => (Some(*link_id), None),
            Downloader::User { user_id } => (None, Some(*user_id)),
        }
    }
}

/// One download, for the account's downloads list and the visitor's.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct DownloadRecord {
    pub id: DownloadId,
    pub account_id: AccountId,
    pub at: DateTime<Utc>,
    pub by: Downloader,
    pub file_id: FileId,
    pub file_name: String,
    pub version: u32,
    pub size: u64,
}

/// The state of a throttle bucket (guesses of a link password), kept in the
/// store so every function instance sees the same.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ThrottleState {
    /// Attempts counted in the current window (or since the last reset).
    pub attempts: u32,
    /// When the current window began.
    pub window_start: Option<DateTime<Utc>>,
    /// No attempt is allowed before this moment.
    pub blocked_until: Option<DateTime<Utc>>,
    pub revision: u64,
}

/// What a ZIP archive was asked for.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ArchiveSource {
    /// Everything in a folder, its subfolders included.
    Folder { folder_id: FolderId },
    /// Everything in a collection.
    Collection { collection_id: CollectionId },
    /// Files picked one by one.
    Selection { count: u32 },
}

/// Where an archive job stands, as stored. What a reader is told also
/// depends on the clock: see [`ArchiveJob::status`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ArchiveState {
    /// Recorded and handed to the builder, not started yet.
    Pending,
    /// A builder is writing it.
    Building,
    /// Complete in the downloads store until `expires_at`.
    Ready,
    /// It could not be built; `failure` says why.
    Failed,
}

/// What a reader is told about an archive job at a moment.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ArchiveStatus {
    Pending,
    Building,
    Ready,
    Failed,
    /// It was ready, and its archive has since been removed.
    Expired,
}

/// The status as its JSON name (`"ready"`...), for pages and logs.
pub fn archive_status_code(status: ArchiveStatus) -> &'static str {
    match status {
        ArchiveStatus::Pending => "pending",
        ArchiveStatus::Building => "building",
        ArchiveStatus::Ready => "ready",
        ArchiveStatus::Failed => "failed",
        ArchiveStatus::Expired => "expired",
    }
}

/// One request for many files as one ZIP, and how far its build has come.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ArchiveJob {
    pub id: ArchiveId,
    pub account_id: AccountId,
    /// A signed-in user, or a visitor through a link in one browser session.
    pub requested_by: Downloader,
    pub source: ArchiveSource,
    /// The archive's download name, e.g. `Holiday.zip`.
    pub name: String,
    /// SHA-256 over who may reuse it (the link or the account) and every
    /// entry's path, file and version: equal requests share one archive.
    pub fingerprint: String,
    /// The entries, one JSON line each, in the downloads store.
    pub manifest_key: String,
    /// Where the archive is (or will be) in the downloads store.
    pub archive_key: String,
    pub file_count: u32,
    /// The files' bytes, before compression.
    pub total_bytes: u64,
    pub state: ArchiveState,
    pub files_done: u32,
    pub bytes_done: u64,
    /// Every file is written; the last parts are uploading and the archive
    /// is being completed.
    #[serde(default)]
    pub finishing: bool,
    /// The archive's size once ready.
    pub archive_size: Option<u64>,
    /// Why it failed, for people.
    pub failure: Option<String>,
    /// How many builds were started; only the latest may finish the job.
    pub attempt: u32,
    /// The multipart upload of the latest attempt, so that a retry can abort it.
    pub upload_id: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// A job not ready by then has failed, whatever happened to its builder.
    pub deadline: DateTime<Utc>,
    /// When a ready archive is removed from the downloads store.
    pub expires_at: Option<DateTime<Utc>>,
    /// The limit slots the job holds while it is in the making (archives in
    /// the making per session and per network), freed when it is finished.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub slots: Vec<String>,
    pub revision: u64,
}

impl ArchiveJob {
    /// A new job `id` for `entries`, pending, to be built by `deadline`; its
    /// manifest and archive go under `archives/{account}/{id}/`.
    #[allow(clippy::too_many_arguments)]
    pub fn pending(
        id: ArchiveId,
        account_id: AccountId,
        requested_by: Downloader,
        source: ArchiveSource,
        name: String,
        fingerprint: String,
        entries: &[ArchiveEntry],
        now: DateTime<Utc>,
        deadline: DateTime<Utc>,
    ) -> Self {
        let prefix = format!("archives/{account_id}/{id}");
        let files = entries.iter().filter(|e| e.file_id.is_some());
        ArchiveJob {
            id,
            account_id,
            requested_by,
            source,
            name,
            fingerprint,
            manifest_key: format!("{prefix}/manifest.jsonl"),
            archive_key: format!("{prefix}/archive.zip"),
            file_count: files.clone().count() as u32,
            total_bytes: files.map(|e| e.size).sum(),
            state: ArchiveState::Pending,
            files_done: 0,
            bytes_done: 0,
            finishing: false,
            archive_size: None,
            failure: None,
            attempt: 0,
            upload_id: None,
            created_at: now,
            updated_at: now,
            deadline,
            expires_at: None,
            slots: Vec::new(),
            revision: 0,
        }
    }

    /// The job's status at `now`: a ready archive past its lifetime is
    /// expired, and a build past its deadline has failed.
    pub fn status(&self, now: DateTime<Utc>) -> ArchiveStatus {
        match self.state {
            ArchiveState::Ready if self.expires_at.is_some_and(|e| e <= now) => ArchiveStatus::Expired,
            ArchiveState::Ready => ArchiveStatus::Ready,
            ArchiveState::Failed => ArchiveStatus::Failed,
            ArchiveState::Pending | ArchiveState::Building if self.deadline <= now => ArchiveStatus::Failed,
            ArchiveState::Pending => ArchiveStatus::Pending,
            ArchiveState::Building => ArchiveStatus::Building,
        }
    }

    /// Whether a build may still change it.
    pub fn is_open(&self) -> bool {
        matches!(self.state, ArchiveState::Pending | ArchiveState::Building)
    }
}

/// One file in an archive: where it goes and where its bytes are. The
/// builder needs nothing else, so it never reads the catalog.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArchiveEntry {
    /// The sanitized, unique path inside the archive; ends in `/` for a folder.
    pub path: String,
    /// `None` for a folder entry.
    pub file_id: Option<FileId>,
    pub version: u32,
    pub blob_key: String,
    pub content_type: String,
    pub size: u64,
    pub crc32: u32,
    /// The version's ETag: a server-side copy is made only while the stored
    /// bytes still have it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub e_tag: Option<String>,
    pub modified: DateTime<Utc>,
    /// Where the entry was in the library when the archive was made, checked
    /// before a visitor downloads it: the folder a file was in, or a folder
    /// entry's own id (`None`: the library's top, or not recorded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub folder_id: Option<FolderId>,
    /// A folder entry's parent when the archive was made.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_id: Option<FolderId>,
}

impl ArchiveEntry {
    /// A folder's entry (`path` ends in `/`): it keeps empty folders.
    pub fn folder(path: String, modified: DateTime<Utc>) -> Self {
        ArchiveEntry {
            path,
            file_id: None,
            version: 0,
            blob_key: String::new(),
            content_type: String::new(),
            size: 0,
            crc32: 0,
            e_tag: None,
            modified,
            folder_id: None,
            parent_id: None,
        }
    }
}

/// What a visitor did through a link, as its activity log and counters record it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum LinkEvent {
    /// The link's page (or its JSON description) was opened.
    PageOpened,
    /// A session was started with `POST .../session` or the password form (an unlock).
    SessionStarted,
    /// A wrong password was given.
    WrongPassword,
    /// A file's details were opened.
    FileViewed,
    /// A file was downloaded (`bytes`: its size).
    Downloaded,
    /// A ZIP archive was asked for.
    ArchiveRequested,
    /// A ready ZIP archive was downloaded (`bytes`: its size).
    ArchiveDownloaded,
}

/// One line of a link's activity log, for its managers. It never holds a
/// token, a password or an address: the client is a keyed hash of its
/// network (an IPv4 /24 or an IPv6 /48), enough to tell one visitor from
/// another and nothing more.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ActivityEntry {
    pub id: ActivityId,
    pub link_id: LinkId,
    pub at: DateTime<Utc>,
    pub event: LinkEvent,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_id: Option<FileId>,
    /// Bytes handed out by this event (downloads), else 0.
    #[serde(default)]
    pub bytes: u64,
    /// The keyed hash of the client's network (16 URL-safe characters).
    pub client: String,
    /// The client's country (ISO 3166-1 alpha-2), where CloudFront supplies it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub country: Option<String>,
    /// When the entry is forgotten (the retention period after `at`).
    pub keep_until: DateTime<Utc>,
}

/// How much a link was used, from its first visit: what its managers see.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct LinkActivity {
    pub page_opens: u64,
    /// Sessions started (unlocks of a protected link).
    pub sessions: u64,
    pub file_views: u64,
    /// Files downloaded.
    pub downloads: u64,
    /// ZIP archives asked for.
    pub archives: u64,
    /// Bytes of the files and archives downloaded.
    pub bytes_served: u64,
    pub wrong_passwords: u64,
    pub first_access: Option<DateTime<Utc>>,
    pub last_access: Option<DateTime<Utc>>,
}

impl LinkActivity {
    /// Counts one event in.
    pub fn add(&mut self, event: LinkEvent, bytes: u64, at: DateTime<Utc>) {
        match event {
            LinkEvent::PageOpened => self.page_opens += 1,
            LinkEvent::SessionStarted => self.sessions += 1,
            LinkEvent::WrongPassword => self.wrong_passwords += 1,
            LinkEvent::FileViewed => self.file_views += 1,
            LinkEvent::Downloaded => self.downloads += 1,
            LinkEvent::ArchiveRequested => self.archives += 1,
            LinkEvent::ArchiveDownloaded => {}
        }
        self.bytes_served += bytes;
        self.first_access = Some(self.first_access.map_or(at, |f| f.min(at)));
        self.last_access = Some(self.last_access.map_or(at, |l| l.max(at)));
    }

    /// Adds another part of the counters (a shard) to these.
    pub fn merge(&mut self, other: &LinkActivity) {
        self.page_opens += other.page_opens;
        self.sessions += other.sessions;
        self.file_views += other.file_views;
        self.downloads += other.downloads;
        self.archives += other.archives;
        self.bytes_served += other.bytes_served;
        self.wrong_passwords += other.wrong_passwords;
        self.first_access = match (self.first_access, other.first_access) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        self.last_access = match (self.last_access, other.last_access) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
    }
}
