//! The operations of the media library. Every method takes the [`Actor`] and
//! checks access itself, so no caller can reach the catalog around the rules.

use super::access::{self, Actor, MAX_FOLDER_DEPTH};
use super::archives::SettingsError;
use super::jobs::LibraryJob;
use super::links;
use super::model::*;
use super::{DomainError, DomainResult, rules};
use crate::clock::Clock;
use crate::ids::*;
use crate::store::*;
use crate::webhooks::{WebhookEvent, WebhookService};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

/// Tunables of the library, set once at start-up.
#[derive(Clone, Debug)]
pub struct LibrarySettings {
    /// How long an upload's part URLs work at least; a big upload gets
    /// longer (see [`upload_window`](Self::upload_window)).
    pub upload_url_ttl: Duration,
    /// The longest an upload stays open, whatever its size (below the day
    /// after which the assets bucket aborts an incomplete multipart upload).
    pub max_upload_window: Duration,
    /// How long a download URL handed to a signed-in user works.
    pub download_url_ttl: Duration,
    /// The largest file an upload may carry.
    pub max_upload_bytes: u64,
    /// The size of an upload's parts (each but the last), grown for a big
    /// file so that it needs at most `max_upload_parts` parts.
    pub upload_part_bytes: u64,
    /// The most parts an upload is cut into.
    pub max_upload_parts: u32,
    /// Uploads up to this size are read within the completion request, which
    /// answers with the file; bigger ones by a library job (the request
    /// answers 202 and the upload's state shows the outcome).
    pub inline_ingest_bytes: u64,
    /// An upload still being read after this long had its job lost (a
    /// restart, a crashed worker): a completion or the sweep hands it out again.
    pub ingest_retry_after: Duration,
}

const MIB: u64 = 1024 * 1024;

impl Default for LibrarySettings {
    fn default() -> Self {
        LibrarySettings {
            upload_url_ttl: Duration::from_secs(15 * 60),
            max_upload_window: Duration::from_secs(12 * 3600),
            download_url_ttl: Duration::from_secs(5 * 60),
            max_upload_bytes: 50 * 1024 * MIB,
            upload_part_bytes: 64 * MIB,
            max_upload_parts: 1000,
            inline_ingest_bytes: 64 * MIB,
            ingest_retry_after: Duration::from_secs(16 * 60),
        }
    }
}

impl LibrarySettings {
    /// The defaults, with what the environment changes:
    /// `PUBLINKS_UPLOAD_MAX_BYTES`, `PUBLINKS_UPLOAD_PART_BYTES` (at least
    /// 5 MiB, S3's smallest part) and `PUBLINKS_UPLOAD_INLINE_BYTES`. A bad
    /// value is an error naming the variable.
    pub fn from_env() -> Result<Self, SettingsError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// [`from_env`](Self::from_env), reading through `lookup`.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, SettingsError> {
        let d = LibrarySettings::default();
        let settings = LibrarySettings {
            max_upload_bytes: super::read_setting(&lookup, "PUBLINKS_UPLOAD_MAX_BYTES", d.max_upload_bytes)?,
            upload_part_bytes: super::read_setting(&lookup, "PUBLINKS_UPLOAD_PART_BYTES", d.upload_part_bytes)?,
            inline_ingest_bytes: super::read_setting(&lookup, "PUBLINKS_UPLOAD_INLINE_BYTES", d.inline_ingest_bytes)?,
            ..d
        };
        if !(MIN_PART_SIZE..=MAX_PART_SIZE).contains(&settings.upload_part_bytes) {
            let value = settings.upload_part_bytes.to_string();
            return Err(SettingsError { variable: "PUBLINKS_UPLOAD_PART_BYTES", value });
        }
        Ok(settings)
    }

    /// How long an upload of `size` bytes stays open: the base time, plus a
    /// second per MiB, at most `max_upload_window`.
    pub fn upload_window(&self, size: u64) -> Duration {
        (self.upload_url_ttl + Duration::from_secs(size / MIB)).min(self.max_upload_window)
    }

    /// The part size for a file of `size` bytes: the configured one, or
    /// bigger (whole MiB) so that the file fits `max_upload_parts` parts.
    pub fn part_size_for(&self, size: u64) -> u64 {
        let needed = size.div_ceil(u64::from(self.max_upload_parts.max(1))).next_multiple_of(MIB);
        self.upload_part_bytes.max(needed).min(MAX_PART_SIZE)
    }
}

/// A new user, as an administrator describes them.
#[derive(Clone, Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewUser {
    /// The user's id: in AWS, the `sub` your identity provider puts in their
    /// JWTs (a UUID, as Cognito's); generated when absent.
    #[serde(default)]
    pub id: Option<UserId>,
    #[schema(schema_with = super::rules::name_schema)]
    pub name: String,
    #[schema(schema_with = super::rules::email_schema)]
    pub email: String,
    pub role: Role,
}

/// What administrators change of their account; absent fields stay.
#[derive(Clone, Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AccountPatch {
    /// The options new links get when their create leaves them out.
    pub link_defaults: Option<LinkDefaults>,
}

/// The changes a `PATCH` of a file may carry; absent fields stay as they are.
#[derive(Clone, Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FilePatch {
    #[schema(schema_with = super::rules::name_schema)]
    pub name: Option<String>,
    #[schema(schema_with = super::rules::tags_schema)]
    pub tags: Option<Vec<String>>,
    #[schema(schema_with = super::rules::tags_schema)]
    pub ai_tags: Option<Vec<String>>,
    #[schema(max_items = 20)]
    pub custom_coordinates: Option<Vec<Coordinates>>,
    /// At most 100 entries; keys of 1–64 characters, values of at most 1024.
    pub custom_metadata: Option<BTreeMap<String, String>>,
    pub private: Option<bool>,
    pub published: Option<bool>,
}

/// The media library service.
#[derive(Clone)]
pub struct Library {
    pub(super) catalog: Arc<dyn Catalog>,
    links: Arc<dyn LinkRecords>,
    visitors: Arc<dyn VisitorRecords>,
    pub(super) blobs: Arc<dyn BlobStore>,
    pub(super) asset_uploads: Arc<dyn AssetUploads>,
    /// Where the slow half of a request goes (reading a big upload); `None`
    /// for tools that never hand work out (operators, the demo seed).
    pub(super) jobs: Option<Arc<dyn LibraryJobQueue>>,
    pub(super) settings: LibrarySettings,
    /// The time this library reads.
    pub(super) clock: Arc<dyn Clock>,
    /// Told when a cascade deletes links; `None`: nobody is.
    webhooks: Option<WebhookService>,
}

const RETRIES: usize = 8;

/// Runs a read-modify-write until it does not meet a concurrent change.
pub(super) async fn retry_on_conflict<T, F, Fut>(mut attempt: F) -> DomainResult<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = DomainResult<T>>,
{
    for _ in 0..RETRIES {
        match attempt().await {
            Err(DomainError::Store(StoreError::Conflict(_))) => tokio::task::yield_now().await,
            other => return other,
        }
    }
    Err(DomainError::Conflict { code: "busy", message: "the item is being changed by others; try again".into() })
}

impl Library {
    /// A library over these stores; [`with_jobs`](Self::with_jobs) gives it a worker.
    pub fn new(stores: &Stores, settings: LibrarySettings) -> Self {
        Library {
            catalog: stores.catalog.clone(),
            links: stores.links.clone(),
            visitors: stores.visitors.clone(),
            blobs: stores.blobs.clone(),
            asset_uploads: stores.asset_uploads.clone(),
            jobs: None,
            settings,
            clock: stores.clock.clone(),
            webhooks: None,
        }
    }

    /// Tells the account's webhooks of the links this library's cascades delete.
    pub fn with_webhooks(mut self, webhooks: WebhookService) -> Self {
        self.webhooks = Some(webhooks);
        self
    }

    /// Runs the links' cascade after a move or delete of `scope` by `actor`
    /// (see [`links::cascade`]), on this library's clock.
    async fn drop_stale_links(&self, actor: &Actor, scope: Target, reason: SystemReason) -> DomainResult<usize> {
        let (catalog, records, now) = (self.catalog(), self.links.as_ref(), self.clock.now());
        // The account read for the request says whether any webhook wants to know.
        let wanted = actor.account.webhook_events.contains(&WebhookEvent::LinkDeletedBySystem);
        let webhooks = self.webhooks.as_ref().filter(|_| wanted);
        links::cascade(catalog, records, webhooks, actor.account.id, scope, reason, now).await
    }

    /// The time this library reads: what deadlines of uploads are checked against.
    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    /// The jobs left unfinished (a server stopped half-way): what a worker
    /// resumes when it starts.
    pub async fn unfinished_jobs(&self) -> DomainResult<Vec<LibraryJob>> {
        let deletions = self.catalog.unfinished_folder_deletions(1000).await?;
        Ok(deletions.into_iter().map(|d| LibraryJob::DeleteFolderTree { folder: d.folder.id }).collect())
    }

    /// This library, handing its jobs (reading big uploads, removing deleted
    /// folder trees) to `queue`.
    pub fn with_jobs(mut self, queue: Arc<dyn LibraryJobQueue>) -> Self {
        self.jobs = Some(queue);
        self
    }

    /// Hands `job` to the worker.
    pub(super) async fn enqueue_job(&self, job: &LibraryJob) -> DomainResult<()> {
        let queue =
            self.jobs.as_ref().ok_or_else(|| StoreError::Backend("no library job queue is configured".into()))?;
        Ok(queue.enqueue(job).await?)
    }

    /// The catalog, for services built beside the library.
    pub fn catalog(&self) -> &dyn Catalog {
        self.catalog.as_ref()
    }

    /// The caller behind an authenticated user id; `None` if the user (or
    /// their account) no longer exists.
    pub async fn actor(&self, user_id: UserId) -> DomainResult<Option<Actor>> {
        let Some(user) = self.catalog.user(user_id).await? else {
            return Ok(None);
        };
        let Some(account) = self.catalog.account(user.account_id).await? else {
            return Ok(None);
        };
        Ok(Some(Actor { user, account }))
    }

    /// Creates an account with its first administrator (an operator's act:
    /// see [`accounts`](super::accounts)).
    pub async fn create_account(
        &self,
        name: &str,
        plan: Plan,
        drafts_enabled: bool,
        admin: NewUser,
    ) -> DomainResult<(Account, User)> {
        super::accounts::create_account(self.catalog(), name, plan, drafts_enabled, admin).await
    }

    /// Changes the caller's account (administrators only): the defaults of new links.
    pub async fn update_account(&self, actor: &Actor, patch: AccountPatch) -> DomainResult<Account> {
        actor.require_admin()?;
        let changes = super::accounts::AccountChanges { link_defaults: patch.link_defaults, ..Default::default() };
        super::accounts::update_account(self.catalog(), actor.account.id, &changes).await
    }

    // ---- users and grants -------------------------------------------------

    async fn user_in_account(&self, actor: &Actor, id: UserId) -> DomainResult<User> {
        match self.catalog.user(id).await? {
            Some(u) if u.account_id == actor.account.id => Ok(u),
            _ => Err(DomainError::NotFound("user")),
        }
    }

    /// The account's users (administrators only).
    pub async fn list_users(&self, actor: &Actor, page: &PageRequest) -> DomainResult<Page<User>> {
        actor.require_admin()?;
        Ok(self.catalog.list_users(actor.account.id, page).await?)
    }

    /// Adds a user to the caller's account (administrators only).
    pub async fn create_user(&self, actor: &Actor, new: NewUser) -> DomainResult<User> {
        actor.require_admin()?;
        let user = User {
            id: new.id.unwrap_or_default(),
            account_id: actor.account.id,
            name: rules::name("name", &new.name)?,
            email: rules::email(&new.email)?,
            role: new.role,
            created_at: self.clock.now(),
        };
        self.catalog.insert_user(&user).await?;
        Ok(user)
    }

    /// One user: administrators see anyone in the account, others themselves.
    pub async fn user(&self, actor: &Actor, id: UserId) -> DomainResult<User> {
        if id != actor.user.id {
            actor.require_admin()?;
        }
        self.user_in_account(actor, id).await
    }

    /// Changes a user's role (administrators only; not their own).
    pub async fn change_role(&self, actor: &Actor, id: UserId, role: Role) -> DomainResult<User> {
        actor.require_admin()?;
        if id == actor.user.id {
            return Err(DomainError::Conflict {
                code: "own_role",
                message: "administrators cannot change their own role".into(),
            });
        }
        let mut user = self.user_in_account(actor, id).await?;
        user.role = role;
        self.catalog.replace_user(&user).await?;
        Ok(user)
    }

    /// Removes a user and their grants (administrators only; not themselves).
    pub async fn delete_user(&self, actor: &Actor, id: UserId) -> DomainResult<()> {
        actor.require_admin()?;
        if id == actor.user.id {
            return Err(DomainError::Conflict {
                code: "own_user",
                message: "administrators cannot delete themselves".into(),
            });
        }
        self.user_in_account(actor, id).await?;
        Ok(self.catalog.delete_user(id).await?)
    }

    /// A user's grants: administrators see anyone's, others their own.
    pub async fn grants(&self, actor: &Actor, user: UserId) -> DomainResult<Vec<Grant>> {
        if user != actor.user.id {
            actor.require_admin()?;
        }
        self.user_in_account(actor, user).await?;
        Ok(self.catalog.grants_of_user(user).await?)
    }

    /// Gives a restricted user `level` on `target` (administrators only).
    pub async fn set_grant(
        &self,
        actor: &Actor,
        user: UserId,
        target: Target,
        level: Permission,
    ) -> DomainResult<Grant> {
        actor.require_admin()?;
        let grantee = self.user_in_account(actor, user).await?;
        if grantee.role != Role::Restricted {
            return Err(DomainError::invalid("user_id", "grants apply to restricted users only"));
        }
        self.ensure_in_account(actor, &target).await?;
        let grant = Grant { account_id: actor.account.id, user_id: user, target, level, granted_at: self.clock.now() };
        self.catalog.put_grant(&grant).await?;
        Ok(grant)
    }

    /// Withdraws a grant (administrators only).
    pub async fn remove_grant(&self, actor: &Actor, user: UserId, target: Target) -> DomainResult<()> {
        actor.require_admin()?;
        self.user_in_account(actor, user).await?;
        if self.catalog.delete_grant(user, target).await? { Ok(()) } else { Err(DomainError::NotFound("grant")) }
    }

    async fn ensure_in_account(&self, actor: &Actor, target: &Target) -> DomainResult<()> {
        let account = match target {
            Target::File(id) => self.catalog.file(*id).await?.map(|f| f.account_id),
            Target::Folder(id) => self.catalog.folder(*id).await?.map(|f| f.account_id),
            Target::Collection(id) => self.catalog.collection(*id).await?.map(|c| c.account_id),
        };
        match account {
            Some(a) if a == actor.account.id => Ok(()),
            _ => Err(DomainError::NotFound(match target.kind() {
                TargetKind::File => "file",
                TargetKind::Folder => "folder",
                TargetKind::Collection => "collection",
            })),
        }
    }

    // ---- folders ----------------------------------------------------------

    /// A folder of the caller's account with its chain (itself, then upwards),
    /// after checking the caller has `needed` on it.
    pub async fn load_folder(&self, actor: &Actor, id: FolderId, needed: Permission) -> DomainResult<Vec<Folder>> {
        let folder = match self.catalog.folder(id).await? {
            Some(f) if f.account_id == actor.account.id => f,
            _ => return Err(DomainError::NotFound("folder")),
        };
        let mut chain = vec![folder.clone()];
        chain.extend(access::folder_chain(self.catalog(), folder.parent_id).await?);
        access::require(self.catalog(), actor, &Target::Folder(id), &chain, needed).await?;
        Ok(chain)
    }

    /// Checks `needed` on a place things go into: a folder, or the top.
    pub(super) async fn require_on_place(
        &self,
        actor: &Actor,
        folder: Option<FolderId>,
        needed: Permission,
    ) -> DomainResult<Vec<Folder>> {
        match folder {
            Some(id) => self.load_folder(actor, id, needed).await,
            None => actor.require_role_level(needed).map(|_| Vec::new()),
        }
    }

    /// Creates a folder in `parent` (or at the top).
    pub async fn create_folder(&self, actor: &Actor, parent: Option<FolderId>, name: &str) -> DomainResult<Folder> {
        let name = rules::name("name", name)?;
        let now = self.clock.now();
        let folder = &Folder {
            id: FolderId::new(),
            account_id: actor.account.id,
            parent_id: parent,
            name,
            created_at: now,
            updated_at: now,
            revision: 0,
        };
        retry_on_conflict(move || async move {
            let chain = self.require_on_place(actor, parent, Permission::Edit).await?;
            if chain.len() >= MAX_FOLDER_DEPTH {
                return Err(DomainError::invalid("parent_id", format!("folders nest at most {MAX_FOLDER_DEPTH} deep")));
            }
            match self.catalog.insert_folder(folder, &Placement::of(&chain)).await {
                Ok(()) => Ok(folder.clone()),
                Err(e) => Err(self.name_taken(e).await),
            }
        })
        .await
    }

    /// A folder and the path above it (top first), for breadcrumbs.
    pub async fn folder(&self, actor: &Actor, id: FolderId) -> DomainResult<(Folder, Vec<Folder>)> {
        let mut chain = self.load_folder(actor, id, Permission::View).await?;
        let folder = chain.remove(0);
        chain.reverse();
        Ok((folder, chain))
    }

    /// Renames a folder; sibling names stay unique.
    pub async fn rename_folder(&self, actor: &Actor, id: FolderId, name: &str) -> DomainResult<Folder> {
        let name = &rules::name("name", name)?;
        retry_on_conflict(move || async move {
            let mut folder = self.load_folder(actor, id, Permission::Edit).await?.remove(0);
            folder.name = name.clone();
            folder.updated_at = self.clock.now();
            match self.catalog.replace_folder(&folder).await {
                Ok(stored) => Ok(stored),
                Err(e) => Err(self.name_taken(e).await),
            }
        })
        .await
    }

    /// Moves a folder (and everything under it) into `parent` or to the top;
    /// the links on it and on everything under it go.
    pub async fn move_folder(&self, actor: &Actor, id: FolderId, parent: Option<FolderId>) -> DomainResult<Folder> {
        let height = self.subtree_height(actor.account.id, id).await?;
        let (moved, was_in) = retry_on_conflict(move || async move {
            let dest_chain = self.require_on_place(actor, parent, Permission::Edit).await?;
            if dest_chain.iter().any(|f| f.id == id) {
                return Err(DomainError::Conflict {
                    code: "folder_cycle",
                    message: "a folder cannot move into itself or a folder under it".into(),
                });
            }
            if dest_chain.len() + height > MAX_FOLDER_DEPTH {
                return Err(DomainError::invalid("parent_id", format!("folders nest at most {MAX_FOLDER_DEPTH} deep")));
            }
            let mut folder = self.load_folder(actor, id, Permission::Manage).await?.remove(0);
            let was_in = folder.parent_id;
            folder.parent_id = parent;
            folder.updated_at = self.clock.now();
            let stored = if was_in == parent {
                self.catalog.replace_folder(&folder).await
            } else {
                self.catalog.move_folder(&folder, &Placement::of(&dest_chain)).await
            };
            match stored {
                Ok(stored) => Ok((stored, was_in)),
                Err(e) => Err(self.name_taken(e).await),
            }
        })
        .await?;
        if was_in != parent {
            self.drop_stale_links(actor, Target::Folder(id), SystemReason::TargetMoved).await?;
        }
        Ok(moved)
    }

    /// How many levels a folder's tree spans (1 for a folder with no
    /// subfolders): what a move must leave room for under the depth limit.
    async fn subtree_height(&self, account: AccountId, root: FolderId) -> DomainResult<usize> {
        let mut level = vec![root];
        let mut height = 0;
        while !level.is_empty() {
            height += 1;
            if height > MAX_FOLDER_DEPTH {
                break;
            }
            let mut next = Vec::new();
            for folder in level {
                next.extend(self.all_subfolders(account, folder).await?.into_iter().map(|f| f.id));
            }
            level = next;
        }
        Ok(height)
    }

    /// Every folder directly in `parent`, read page by page.
    async fn all_subfolders(&self, account: AccountId, parent: FolderId) -> DomainResult<Vec<Folder>> {
        let mut page = PageRequest::first(200);
        let mut out = Vec::new();
        loop {
            let batch = self.catalog.subfolders(account, Some(parent), &page).await?;
            out.extend(batch.items);
            match batch.next {
                Some(c) => page.cursor = Some(c),
                None => return Ok(out),
            }
        }
    }

    /// Deletes a folder and everything under it. The folder leaves the
    /// library at once, with the links on it and on everything under it; what
    /// was under it is removed by the worker ([`Self::run_folder_deletion`]),
    /// so that a tree of any size is deleted in one short request. Deleting a
    /// folder whose deletion is under way answers that deletion and hands it
    /// to the worker again.
    pub async fn delete_folder(&self, actor: &Actor, id: FolderId) -> DomainResult<FolderDeletion> {
        let detached = retry_on_conflict(move || async move {
            let folder = match self.load_folder(actor, id, Permission::Manage).await {
                Ok(mut chain) => chain.remove(0),
                Err(DomainError::NotFound(_)) => return Ok(None),
                Err(e) => return Err(e),
            };
            let now = self.clock.now();
            let deletion = FolderDeletion {
                folder,
                requested_by: actor.user.id,
                status: DeletionStatus::Pending,
                folders_removed: 1,
                files_removed: 0,
                created_at: now,
                updated_at: now,
                finished_at: None,
                revision: 0,
            };
            match self.catalog.detach_folder(&deletion).await {
                Ok(()) => Ok(Some(deletion)),
                Err(StoreError::NotFound(_)) => Ok(None),
                Err(e) => Err(e.into()),
            }
        })
        .await?;
        let deletion = match detached {
            Some(d) => d,
            None => self.folder_deletion(actor, id).await?,
        };
        // Nothing can be placed under the folder any more (every such write
        // is conditional on its chain), so these catch every link there is.
        self.drop_stale_links(actor, Target::Folder(id), SystemReason::TargetDeleted).await?;
        self.catalog.delete_grants_on(Target::Folder(id)).await?;
        if deletion.status != DeletionStatus::Done {
            self.enqueue_job(&LibraryJob::DeleteFolderTree { folder: id }).await?;
        }
        Ok(deletion)
    }

    /// The deletion of a folder tree, for the account's managers and whoever asked for it.
    pub async fn folder_deletion(&self, actor: &Actor, id: FolderId) -> DomainResult<FolderDeletion> {
        match self.catalog.folder_deletion(id).await? {
            Some(d)
                if d.folder.account_id == actor.account.id
                    && (d.requested_by == actor.user.id || actor.role_level() == Some(Permission::Manage)) =>
            {
                Ok(d)
            }
            _ => Err(DomainError::NotFound("folder")),
        }
    }

    /// Removes what was under a deleted folder: every folder below it,
    /// deepest first, each emptied of its files and then removed. Safe to run
    /// twice or to resume after a crash: each pass lists what is left, and
    /// nothing new can appear under a deleted folder. Finishes with a pass
    /// that finds nothing. Returns `false` if `deadline` came first (progress
    /// is saved; run it again).
    pub async fn run_folder_deletion(&self, folder: FolderId, deadline: Option<Instant>) -> DomainResult<bool> {
        let Some(deletion) = self.catalog.folder_deletion(folder).await? else {
            return Ok(true);
        };
        if deletion.status == DeletionStatus::Done {
            return Ok(true);
        }
        let account = deletion.folder.account_id;
        let mut progress = DeletionProgress::new(self, folder);
        progress.save(DeletionStatus::Running).await?;
        let out_of_time = || deadline.is_some_and(|d| Instant::now() + DEADLINE_MARGIN >= d);
        loop {
            // A pass that finds nothing under the folder ends the deletion
            // (not one that removes nothing: another worker may be removing).
            let mut found = 0;
            // Parents come before children: walked backwards, children go first.
            let places = self.folders_under(account, folder).await?;
            found += places.len();
            for place in places.iter().map(Some).rev().chain([None]) {
                let in_folder = place.map_or(folder, |f| f.id);
                let mut page = PageRequest::first(200);
                loop {
                    let files = self.catalog.files_in_folder(account, Some(in_folder), &page).await?;
                    found += files.items.len();
                    let mut bytes = Vec::new();
                    for batch in files.items.chunks(REMOVALS_AT_ONCE) {
                        let removals: Vec<_> = batch.iter().map(|f| self.remove_file_keeping_bytes(f)).collect();
                        for gone in futures_util::future::join_all(removals).await {
                            if let Some(keys) = gone? {
                                progress.files += 1;
                                bytes.extend(keys);
                            }
                        }
                    }
                    self.remove_bytes(&bytes).await;
                    progress.save_now_and_then().await?;
                    match files.next {
                        Some(next) => page.cursor = Some(next),
                        None => break,
                    }
                    // Checked after some work is done, so that every run gets somewhere.
                    if out_of_time() {
                        progress.save(DeletionStatus::Running).await?;
                        return Ok(false);
                    }
                }
                if let Some(sub) = place {
                    self.catalog.delete_grants_on(Target::Folder(sub.id)).await?;
                    progress.folders += u64::from(self.catalog.delete_folder(sub.id).await?);
                }
                if out_of_time() {
                    progress.save(DeletionStatus::Running).await?;
                    return Ok(false);
                }
            }
            if found == 0 {
                break;
            }
        }
        progress.save(DeletionStatus::Done).await?;
        Ok(true)
    }

    /// Every folder below `root` (not `root` itself), level by level: parents before children.
    async fn folders_under(&self, account: AccountId, root: FolderId) -> DomainResult<Vec<Folder>> {
        let mut out = Vec::new();
        let mut level = vec![root];
        while !level.is_empty() {
            let mut next = Vec::new();
            for parent in level {
                let children = self.all_subfolders(account, parent).await?;
                next.extend(children.iter().map(|f| f.id));
                out.extend(children);
            }
            level = next;
        }
        Ok(out)
    }

    /// The folders directly in `folder` (or at the top).
    pub async fn subfolders(
        &self,
        actor: &Actor,
        folder: Option<FolderId>,
        page: &PageRequest,
    ) -> DomainResult<Page<Folder>> {
        self.require_on_place(actor, folder, Permission::View).await?;
        Ok(self.catalog.subfolders(actor.account.id, folder, page).await?)
    }

    /// The files directly in `folder` (or at the top).
    pub async fn files_in(
        &self,
        actor: &Actor,
        folder: Option<FolderId>,
        page: &PageRequest,
    ) -> DomainResult<Page<File>> {
        self.require_on_place(actor, folder, Permission::View).await?;
        Ok(self.catalog.files_in_folder(actor.account.id, folder, page).await?)
    }

    // ---- files ------------------------------------------------------------

    /// A file of the caller's account, after checking `needed` on it.
    pub async fn load_file(&self, actor: &Actor, id: FileId, needed: Permission) -> DomainResult<File> {
        let file = match self.catalog.file(id).await? {
            Some(f) if f.account_id == actor.account.id => f,
            _ => return Err(DomainError::NotFound("file")),
        };
        let chain = access::folder_chain(self.catalog(), file.folder_id).await?;
        access::require(self.catalog(), actor, &Target::File(id), &chain, needed).await?;
        Ok(file)
    }

    /// One file with everything the library knows of it.
    pub async fn file(&self, actor: &Actor, id: FileId) -> DomainResult<File> {
        self.load_file(actor, id, Permission::View).await
    }

    /// Changes a file's name and metadata.
    pub async fn update_file(&self, actor: &Actor, id: FileId, patch: FilePatch) -> DomainResult<File> {
        let name = patch.name.as_deref().map(|n| rules::name("name", n)).transpose()?;
        let tags = patch.tags.as_deref().map(|t| rules::tags("tags", t)).transpose()?;
        let ai_tags = patch.ai_tags.as_deref().map(|t| rules::tags("ai_tags", t)).transpose()?;
        let custom_metadata =
            patch.custom_metadata.as_ref().map(|m| rules::metadata("custom_metadata", m)).transpose()?;
        if let Some(coords) = &patch.custom_coordinates
            && coords.len() > rules::MAX_COORDINATES
        {
            return Err(DomainError::invalid(
                "custom_coordinates",
                format!("custom_coordinates must hold at most {} areas", rules::MAX_COORDINATES),
            ));
        }
        if patch.published == Some(false) && !actor.account.drafts_enabled {
            return Err(DomainError::invalid("published", "the account's draft-assets feature is off"));
        }
        let (name, tags, ai_tags, custom_metadata, patch) = (&name, &tags, &ai_tags, &custom_metadata, &patch);
        retry_on_conflict(move || async move {
            let mut file = self.load_file(actor, id, Permission::Edit).await?;
            if let Some(n) = &name {
                file.name = n.clone();
            }
            if let Some(t) = &tags {
                file.tags = t.clone();
            }
            if let Some(t) = &ai_tags {
                file.ai_tags = t.clone();
            }
            if let Some(c) = &patch.custom_coordinates {
                file.custom_coordinates = c.clone();
            }
            if let Some(m) = &custom_metadata {
                file.custom_metadata = m.clone();
            }
            if let Some(p) = patch.private {
                file.private = p;
            }
            if let Some(p) = patch.published {
                file.published = p;
            }
            file.updated_at = self.clock.now();
            match self.catalog.replace_file(&file).await {
                Ok(stored) => Ok(stored),
                Err(e) => Err(self.name_taken(e).await),
            }
        })
        .await
    }

    /// Moves a file into `folder` (or to the top); its links go.
    pub async fn move_file(&self, actor: &Actor, id: FileId, folder: Option<FolderId>) -> DomainResult<File> {
        let (moved, was_in) = retry_on_conflict(move || async move {
            let dest_chain = self.require_on_place(actor, folder, Permission::Edit).await?;
            let mut file = self.load_file(actor, id, Permission::Manage).await?;
            let was_in = file.folder_id;
            file.folder_id = folder;
            file.updated_at = self.clock.now();
            let stored = if was_in == folder {
                self.catalog.replace_file(&file).await
            } else {
                self.catalog.move_file(&file, &Placement::of(&dest_chain)).await
            };
            match stored {
                Ok(stored) => Ok((stored, was_in)),
                Err(e) => Err(self.name_taken(e).await),
            }
        })
        .await?;
        if was_in != folder {
            self.drop_stale_links(actor, Target::File(id), SystemReason::TargetMoved).await?;
        }
        Ok(moved)
    }

    /// Deletes a file, all its versions and their bytes, and its links.
    pub async fn delete_file(&self, actor: &Actor, id: FileId) -> DomainResult<()> {
        let file = self.load_file(actor, id, Permission::Manage).await?;
        if !self.remove_file_records(&file).await? {
            return Err(DomainError::NotFound("file"));
        }
        // After the file is gone no link on it can be created, so this
        // catches every one there is.
        self.drop_stale_links(actor, Target::File(id), SystemReason::TargetDeleted).await?;
        Ok(())
    }

    /// Removes a file and what hangs off it but its links: memberships,
    /// grants, versions, bytes. Records go first, bytes last: a crash leaves
    /// stray bytes, never a record pointing at nothing. `false` if the file
    /// was gone already (removed by someone else meanwhile).
    async fn remove_file_records(&self, file: &File) -> DomainResult<bool> {
        let Some(bytes) = self.remove_file_keeping_bytes(file).await? else {
            return Ok(false);
        };
        self.remove_bytes(&bytes).await;
        Ok(true)
    }

    /// [`Self::remove_file_records`] but for the bytes, whose keys it answers
    /// (`None` if the file was gone already): a tree deletion removes many
    /// files' bytes in one request.
    async fn remove_file_keeping_bytes(&self, file: &File) -> DomainResult<Option<Vec<String>>> {
        let Some(versions) = self.catalog.delete_file(file.id).await? else {
            return Ok(None);
        };
        for collection in self.catalog.collections_of_file(file.id).await? {
            self.catalog.remove_from_collection(collection, file.id).await?;
        }
        self.catalog.delete_grants_on(Target::File(file.id)).await?;
        Ok(Some(
            versions
                .into_iter()
                .flat_map(|v| std::iter::once(v.blob_key.clone()).chain(crate::renditions::rendition_keys(&v.blob_key)))
                .collect(),
        ))
    }

    /// Deletes bytes whose records are gone; a failure leaves stray bytes, logged.
    async fn remove_bytes(&self, keys: &[String]) {
        if let Err(e) = self.blobs.delete_many(keys).await {
            tracing::warn!(blobs = keys.len(), error = %e, "stray blobs left after a delete");
        }
    }

    /// Every version of a file, oldest first.
    pub async fn versions(&self, actor: &Actor, id: FileId) -> DomainResult<Vec<FileVersion>> {
        self.load_file(actor, id, Permission::View).await?;
        Ok(self.catalog.versions(id).await?)
    }

    /// A short-lived URL that downloads a version (the current one by
    /// default), recorded in the account's downloads.
    pub async fn download_url(&self, actor: &Actor, id: FileId, version: Option<u32>) -> DomainResult<String> {
        let file = self.load_file(actor, id, Permission::View).await?;
        let version = match version {
            None => file.current.clone(),
            Some(n) if n == file.current.number => file.current.clone(),
            Some(n) => self
                .catalog
                .versions(id)
                .await?
                .into_iter()
                .find(|v| v.number == n)
                .ok_or(DomainError::NotFound("version"))?,
        };
        let record = DownloadRecord {
            id: DownloadId::new(),
            account_id: actor.account.id,
            at: self.clock.now(),
            by: Downloader::User { user_id: actor.user.id },
            file_id: file.id,
            file_name: file.name.clone(),
            version: version.number,
            size: version.size,
        };
        self.visitors.record_download(&record).await?;
        Ok(self.blobs.presign_get(&version.blob_key, &file.name, self.settings.download_url_ttl).await?)
    }

    /// The account's downloads, newest first, through the library or public links.
    pub async fn downloads(&self, actor: &Actor, page: &PageRequest) -> DomainResult<Page<DownloadRecord>> {
        if actor.role_level() != Some(Permission::Manage) {
            return Err(DomainError::Forbidden(
                "the account's downloads are for administrators, developers and full-access users".into(),
            ));
        }
        Ok(self.visitors.account_downloads(actor.account.id, page).await?)
    }

    /// Adds a comment to a file.
    pub async fn add_comment(&self, actor: &Actor, id: FileId, text: &str) -> DomainResult<Comment> {
        let text = rules::comment(text)?;
        let comment = &Comment { id: CommentId::new(), author_id: actor.user.id, text, created_at: self.clock.now() };
        retry_on_conflict(move || async move {
            let mut file = self.load_file(actor, id, Permission::Edit).await?;
            if file.comments.len() >= 1000 {
                return Err(DomainError::Conflict {
                    code: "too_many_comments",
                    message: "a file holds at most 1000 comments".into(),
                });
            }
            file.comments.push(comment.clone());
            self.catalog.replace_file(&file).await?;
            Ok(comment.clone())
        })
        .await
    }

    // ---- collections ------------------------------------------------------

    async fn load_collection(&self, actor: &Actor, id: CollectionId, needed: Permission) -> DomainResult<Collection> {
        let collection = match self.catalog.collection(id).await? {
            Some(c) if c.account_id == actor.account.id => c,
            _ => return Err(DomainError::NotFound("collection")),
        };
        access::require(self.catalog(), actor, &Target::Collection(id), &[], needed).await?;
        Ok(collection)
    }

    /// What an archive of `request` holds for this caller: what they may view.
    pub async fn archive_contents(
        &self,
        actor: &Actor,
        request: &super::archives::ArchiveRequest,
        settings: &super::archives::ArchiveSettings,
    ) -> DomainResult<super::archives::ArchiveContents> {
        use super::archives::{self as archives, ArchiveContents, ArchiveRequest, EntryCollector};
        let mut collector = EntryCollector::new(settings);
        let account = actor.account.id;
        let (source, name) = match request {
            ArchiveRequest::Folder(None) => {
                return Err(DomainError::invalid("folder_id", "name one of folder_id, collection_id or file_ids"));
            }
            ArchiveRequest::Folder(Some(id)) => {
                let folder = self.load_folder(actor, *id, Permission::View).await?.remove(0);
                archives::collect_folder(self.catalog(), account, *id, |_| true, &mut collector).await?;
                (ArchiveSource::Folder { folder_id: *id }, folder.name)
            }
            ArchiveRequest::Collection(id) => {
                let collection = self.load_collection(actor, *id, Permission::View).await?;
                archives::collect_collection(self.catalog(), account, *id, |_| true, &mut collector).await?;
                (ArchiveSource::Collection { collection_id: *id }, collection.name)
            }
            ArchiveRequest::Files(ids) => {
                // Read in batches: a long selection costs a few round trips, not one per file.
                let mut found: std::collections::HashMap<FileId, File> = self
                    .catalog
                    .files_by_ids(ids)
                    .await?
                    .into_iter()
                    .filter(|f| f.account_id == account)
                    .map(|f| (f.id, f))
                    .collect();
                let folders = found.values().filter_map(|f| f.folder_id).collect();
                let tree = access::FolderTree::load(self.catalog(), folders, None).await?;
                let levels = access::Levels::of(self.catalog(), actor).await?;
                let mut files = Vec::with_capacity(ids.len());
                for id in ids {
                    let file = found.remove(id).ok_or(DomainError::NotFound("file"))?;
                    levels.require(&Target::File(*id), &tree.chain(file.folder_id)?, Permission::View)?;
                    collector.admit(&file)?;
                    files.push(file);
                }
                collector.place("", &[], &files);
                (ArchiveSource::Selection { count: ids.len() as u32 }, "files".to_string())
            }
        };
        Ok(ArchiveContents { source, name, entries: collector.finish()? })
    }

    /// The collections the caller can see: all of them, or for a restricted
    /// user those granted to them.
    pub async fn collections(&self, actor: &Actor, page: &PageRequest) -> DomainResult<Page<Collection>> {
        if actor.role_level().is_some() {
            return Ok(self.catalog.collections(actor.account.id, page).await?);
        }
        if actor.user.role != Role::Restricted {
            return Err(DomainError::Forbidden("your role has no access to the media library".into()));
        }
        let mut items = Vec::new();
        for grant in self.catalog.grants_of_user(actor.user.id).await? {
            if let Target::Collection(id) = grant.target
                && let Some(c) = self.catalog.collection(id).await?
            {
                items.push(c);
            }
        }
        items.sort_by_key(|c| c.name.to_lowercase());
        Ok(Page { items, next: None })
    }

    /// Creates a collection (roles that can edit the whole library).
    pub async fn create_collection(&self, actor: &Actor, name: &str) -> DomainResult<Collection> {
        let name = rules::name("name", name)?;
        actor.require_role_level(Permission::Edit)?;
        let now = self.clock.now();
        let collection = Collection {
            id: CollectionId::new(),
            account_id: actor.account.id,
            name,
            created_by: actor.user.id,
            created_at: now,
            updated_at: now,
            revision: 0,
        };
        self.catalog.insert_collection(&collection).await?;
        Ok(collection)
    }

    /// One collection.
    pub async fn collection(&self, actor: &Actor, id: CollectionId) -> DomainResult<Collection> {
        self.load_collection(actor, id, Permission::View).await
    }

    /// Renames a collection.
    pub async fn rename_collection(&self, actor: &Actor, id: CollectionId, name: &str) -> DomainResult<Collection> {
        let name = &rules::name("name", name)?;
        retry_on_conflict(move || async move {
            let mut c = self.load_collection(actor, id, Permission::Edit).await?;
            c.name = name.clone();
            c.updated_at = self.clock.now();
            Ok(self.catalog.replace_collection(&c).await?)
        })
        .await
    }

    /// Deletes a collection (its files stay).
    pub async fn delete_collection(&self, actor: &Actor, id: CollectionId) -> DomainResult<()> {
        self.load_collection(actor, id, Permission::Manage).await?;
        self.catalog.delete_collection(id).await?;
        // After the collection is gone no link on it can be created, so this
        // catches every one there is.
        self.drop_stale_links(actor, Target::Collection(id), SystemReason::TargetDeleted).await?;
        self.catalog.delete_grants_on(Target::Collection(id)).await?;
        Ok(())
    }

    /// The files of a collection, in the order they were added.
    pub async fn collection_files(
        &self,
        actor: &Actor,
        id: CollectionId,
        page: &PageRequest,
    ) -> DomainResult<Page<File>> {
        self.load_collection(actor, id, Permission::View).await?;
        let items = self.catalog.collection_items(id, page).await?;
        let mut files = Vec::with_capacity(items.items.len());
        for item in items.items {
            if let Some(f) = self.catalog.file(item.file_id).await? {
                files.push(f);
            }
        }
        Ok(Page { items: files, next: items.next })
    }

    /// Adds a file the caller can see to a collection they can edit.
    pub async fn add_to_collection(
        &self,
        actor: &Actor,
        id: CollectionId,
        file: FileId,
    ) -> DomainResult<CollectionItem> {
        self.load_collection(actor, id, Permission::Edit).await?;
        self.load_file(actor, file, Permission::View).await?;
        let item = CollectionItem { collection_id: id, file_id: file, added_at: self.clock.now() };
        self.catalog.add_to_collection(&item).await.map_err(|e| match e {
            StoreError::AlreadyExists(_) => DomainError::Conflict {
                code: "already_in_collection",
                message: "the file is already in this collection".into(),
            },
            other => other.into(),
        })?;
        Ok(item)
    }

    /// Takes a file out of a collection.
    pub async fn remove_from_collection(&self, actor: &Actor, id: CollectionId, file: FileId) -> DomainResult<()> {
        self.load_collection(actor, id, Permission::Edit).await?;
        if self.catalog.remove_from_collection(id, file).await? {
            Ok(())
        } else {
            Err(DomainError::NotFound("collection item"))
        }
    }
}

/// How long before a deadline a folder deletion stops to save its progress.
const DEADLINE_MARGIN: Duration = Duration::from_secs(10);
/// How often a running folder deletion records its counts.
const PROGRESS_EVERY: Duration = Duration::from_secs(1);
/// How many files a folder deletion removes at once (each is a few store calls).
const REMOVALS_AT_ONCE: usize = 8;

/// A folder deletion's counts, added to its record now and then. Two
/// workers on one deletion (a message delivered twice) each add what they
/// removed themselves, so the counts stay true.
struct DeletionProgress<'a> {
    library: &'a Library,
    folder: FolderId,
    folders: u64,
    files: u64,
    saved: (u64, u64),
    last_saved: Instant,
}

impl<'a> DeletionProgress<'a> {
    fn new(library: &'a Library, folder: FolderId) -> Self {
        DeletionProgress { library, folder, folders: 0, files: 0, saved: (0, 0), last_saved: Instant::now() }
    }

    /// Records the counts if a while has passed since the last time.
    async fn save_now_and_then(&mut self) -> DomainResult<()> {
        if self.last_saved.elapsed() < PROGRESS_EVERY {
            return Ok(());
        }
        let status = DeletionStatus::Running;
        self.save(status).await
    }

    /// Adds what was removed since the last save to the record, with `status`.
    async fn save(&mut self, status: DeletionStatus) -> DomainResult<()> {
        let (folders, files) = (self.folders - self.saved.0, self.files - self.saved.1);
        let (catalog, id, clock) = (self.library.catalog.as_ref(), self.folder, self.library.clock.as_ref());
        retry_on_conflict(move || async move {
            let Some(mut d) = catalog.folder_deletion(id).await? else {
                return Err(DomainError::NotFound("folder deletion"));
            };
            let now = clock.now();
            d.folders_removed += folders;
            d.files_removed += files;
            // Another worker may have finished it meanwhile: done stays done.
            if d.status != DeletionStatus::Done {
                d.status = status;
            }
            d.updated_at = now;
            if d.status == DeletionStatus::Done && d.finished_at.is_none() {
                d.finished_at = Some(now);
            }
            catalog.replace_folder_deletion(&d).await?;
            Ok(())
        })
        .await?;
        self.saved = (self.folders, self.files);
        self.last_saved = Instant::now();
        Ok(())
    }
}

/// The 409 of a name already held in a folder, naming what holds it: its
/// kind and name as stored (escaped, and cut if long).
pub(super) async fn name_clash(catalog: &dyn Catalog, holder: Target) -> DomainError {
    let name = match holder {
        Target::File(id) => catalog.file(id).await.ok().flatten().map(|f| f.name),
        Target::Folder(id) => catalog.folder(id).await.ok().flatten().map(|f| f.name),
        Target::Collection(_) => None,
    };
    let what = if holder.kind() == TargetKind::File { "file" } else { "folder" };
    let message = match name {
        Some(name) => {
            let shown: String = name.chars().take(80).collect();
            let cut = if shown.len() < name.len() { "…" } else { "" };
            format!(
                "the {what} {shown:?}{cut} is already there; names in a folder must differ by more than case \
                 or Unicode form, among files and folders alike"
            )
        }
        None => format!("a {what} with this name is already there"),
    };
    DomainError::Conflict { code: "name_taken", message }
}

impl Library {
    /// A store error as the domain says it: a taken name names its holder.
    pub(super) async fn name_taken(&self, e: StoreError) -> DomainError {
        match e {
            StoreError::NameTaken { holder } => name_clash(self.catalog(), holder).await,
            other => other.into(),
        }
    }

    /// Refuses `name` in `folder` early when something there holds it
    /// already (the write itself is what enforces it, against races).
    pub(super) async fn check_name_free(
        &self,
        account: AccountId,
        folder: Option<FolderId>,
        name: &str,
        except: Option<Target>,
    ) -> DomainResult<()> {
        match self.catalog.name_holder(account, folder, name).await? {
            Some(holder) if Some(holder) != except => Err(name_clash(self.catalog(), holder).await),
            _ => Ok(()),
        }
    }
}
