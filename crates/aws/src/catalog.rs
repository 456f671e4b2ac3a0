//! The catalog ports on one DynamoDB table, with the embedded store's
//! semantics: conditional puts for inserts and revisions, transactions where
//! the embedded store relies on SQL constraints (unique folder names, a file
//! with its current version), keyset pagination with the same cursors.
//!
//! Reads of single records and of a partition are strongly consistent; lists
//! that go through a global secondary index are eventually consistent on real
//! AWS (moto answers them at once). `infra/README.md` lists which are which.

use super::layout::{self, Index, Keys};
use super::table::*;
use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::AttributeValue;
use publinks_domain::ids::*;
use publinks_domain::model::*;
use publinks_domain::store::*;

/// Every catalog port on one DynamoDB table (layout in `infra/README.md`).
#[derive(Clone, Debug)]
pub struct DynamoCatalog {
    table: Table,
}

fn file_item(f: &File) -> Item {
    let mut item = revisioned_item(&layout::file_keys(f), encode(f), f.revision);
    item.insert(layout::CURRENT_VERSION.to_string(), n(f.current.number));
    item
}

fn version_item(v: &FileVersion) -> Item {
    item_of(&layout::version_keys(v), encode(v))
}

/// The guard item `keys` held by `owner`.
fn guard_item(keys: &Keys, owner: Target) -> Item {
    let mut item = key_of(keys);
    item.insert(layout::OWNER.to_string(), s(owner.uuid().to_string()));
    item.insert(layout::KIND.to_string(), s(layout::kind_part(owner.kind())));
    item
}

/// Who holds a name guard (a guard without a kind is a folder's, written
/// before files had guards).
fn holder_of(item: &Item) -> StoreResult<Target> {
    let owner = text_of(item, layout::OWNER)?;
    let id = owner.parse().map_err(|_| StoreError::Corrupt(format!("name guard owner {owner}")))?;
    let kind = match item.get(layout::KIND) {
        Some(AttributeValue::S(k)) if k == "file" => TargetKind::File,
        _ => TargetKind::Folder,
    };
    Ok(Target::from_parts(kind, id))
}

/// The file's item still lists it where `f` does (same folder, same name
/// key): its name guard stays as it is.
fn same_listing(f: &File) -> Condition {
    let keys = layout::file_keys(f);
    let (pk, sk) = keys.gsi1.expect("files are listed in their folder");
    Condition::new(
        "#lp = :lp AND #ls = :ls",
        &[("#lp", Index::Gsi1.pk()), ("#ls", Index::Gsi1.sk())],
        vec![(":lp", s(pk)), (":ls", s(sk))],
    )
}

/// The file exists with this revision and this current version.
fn file_revision(expected: u64, current_version: u32) -> Condition {
    Condition::revision(expected).and(Condition::new(
        "#cv = :cv",
        &[("#cv", layout::CURRENT_VERSION)],
        vec![(":cv", n(current_version))],
    ))
}

/// The guard is missing or held by `owner`.
fn guard_of(owner: Target) -> Condition {
    Condition::new(
        "attribute_not_exists(#pk) OR #owner = :owner",
        &[("#pk", layout::PK), ("#owner", layout::OWNER)],
        vec![(":owner", s(owner.uuid().to_string()))],
    )
}

/// The item is listed in `partition` (its gsi1 partition, which names its
/// account and the folder it is in); a missing item fails it.
pub(super) fn listed_in(partition: String) -> Condition {
    Condition::new("#listed = :listed", &[("#listed", Index::Gsi1.pk())], vec![(":listed", s(partition))])
}

/// The checks that make a transaction conditional on `placement`: each
/// folder it names is still in `account` under the parent it names.
pub(super) fn placement_checks(catalog: &Table, account: AccountId, placement: &Placement) -> Vec<Write> {
    placement
        .0
        .iter()
        .enumerate()
        .map(|(i, folder)| {
            let parent = placement.0.get(i + 1).copied();
            catalog.check_write(
                &layout::folder_key(&folder.to_string()),
                listed_in(layout::subfolders_partition(account, parent)),
            )
        })
        .collect()
}

/// Whether any of the actions from `first` on failed its condition.
fn failed_from(e: &TxError, first: usize, count: usize) -> bool {
    (first..first + count).any(|i| e.failed(i))
}

fn deletion_item(d: &FolderDeletion) -> Item {
    revisioned_item(&layout::deletion_keys(d), encode(d), d.revision)
}

impl DynamoCatalog {
    /// The catalog on `table`, created from `infra/template.yaml`.
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        DynamoCatalog { table: Table::new(client, table) }
    }

    /// The table this catalog uses.
    pub fn table(&self) -> &str {
        self.table.name()
    }

    /// Whether `owner` holds the guard `keys` (records written before names
    /// were guarded, or whose name key has changed since, may hold none).
    async fn holds(&self, owner: Target, keys: &Keys) -> StoreResult<bool> {
        match self.table.get_item(keys).await? {
            Some(item) => Ok(holder_of(&item)? == owner),
            None => Ok(false),
        }
    }

    /// The files among `ids` that exist, each decoded from its item as `T`
    /// (a whole [`File`], or the few fields of one).
    async fn file_docs<T: serde::de::DeserializeOwned>(&self, ids: &[FileId]) -> StoreResult<Vec<T>> {
        let keys: Vec<Keys> = unique(ids).map(|id| layout::file_key(&id.to_string())).collect();
        self.table.get_items(&keys).await?.iter().map(decode).collect()
    }

    /// The writes that free the guard `keys` if `owner` holds it.
    async fn release(&self, owner: Target, keys: &Keys) -> StoreResult<Option<Write>> {
        Ok(self.holds(owner, keys).await?.then(|| self.table.delete_write(keys, Some(guard_of(owner)))))
    }

    /// The writes that move `owner`'s name from the guard `old` to `new`
    /// (none when they are one): the old one freed if `owner` holds it, the
    /// new one claimed (last) unless another holds it.
    async fn guard_moves(&self, owner: Target, old: &Keys, new: &Keys) -> StoreResult<Vec<Write>> {
        if old == new {
            return Ok(Vec::new());
        }
        let mut writes: Vec<Write> = self.release(owner, old).await?.into_iter().collect();
        writes.push(self.table.put_write(guard_item(new, owner), Some(guard_of(owner))));
        Ok(writes)
    }

    /// The error of a transaction whose claim of the guard `keys` (action
    /// `i`) failed: the name's holder, as the failure or a read shows it.
    async fn name_taken(&self, e: &TxError, i: usize, keys: &Keys) -> StoreError {
        let item = match e.failed_item(i) {
            Some(item) => Some(item.clone()),
            None => match self.table.get_item(keys).await {
                Ok(item) => item,
                Err(e) => return e,
            },
        };
        match item.as_ref().map(holder_of) {
            Some(Ok(holder)) => StoreError::NameTaken { holder },
            Some(Err(e)) => e,
            // Freed meanwhile: the caller tries again.
            None => StoreError::Conflict("name"),
        }
    }

    /// Writes a changed folder if its revision is the one it carries, moving
    /// its name guard if its name or parent changed, in one transaction with
    /// `checks` (the placement of a move; after the folder's own writes).
    async fn write_folder(&self, folder: &Folder, checks: Vec<Write>) -> StoreResult<Folder> {
        // The stored record says which name guard to release.
        let Some(stored_item) = self.table.get_item(&layout::folder_key(&folder.id.to_string())).await? else {
            return Err(StoreError::NotFound("folder"));
        };
        if revision_of(&stored_item)? != folder.revision {
            return Err(StoreError::Conflict("folder"));
        }
        let stored: Folder = decode(&stored_item)?;
        let mut f = folder.clone();
        f.revision += 1;
        let item = revisioned_item(&layout::folder_keys(&f), encode(&f), f.revision);
        let condition = Condition::revision(folder.revision);
        let new_guard = layout::folder_name_guard(&f);
        let guards = self.guard_moves(Target::Folder(f.id), &layout::folder_name_guard(&stored), &new_guard).await?;
        if guards.is_empty() && checks.is_empty() {
            self.table.replace(item, condition, "folder").await?;
            return Ok(f);
        }
        let mut writes = vec![self.table.put_write(item, Some(condition))];
        let claim = (!guards.is_empty()).then_some(guards.len());
        writes.extend(guards);
        let first_check = writes.len();
        let check_count = checks.len();
        writes.extend(checks);
        match self.table.transact(writes).await {
            Ok(()) => Ok(f),
            Err(e) => match e.failed_on_existing(0) {
                Some(true) => Err(StoreError::Conflict("folder")),
                Some(false) => Err(StoreError::NotFound("folder")),
                None if failed_from(&e, first_check, check_count) => Err(StoreError::Conflict("placement")),
                None if claim.is_some_and(|i| e.failed(i)) => {
                    Err(self.name_taken(&e, claim.unwrap(), &new_guard).await)
                }
                // The old guard changed hands since it was read: look again.
                None if claim.is_some() => Err(StoreError::Conflict("folder")),
                None => Err(tx_store_error(e)),
            },
        }
    }

    /// Writes a changed file if its revision is the one it carries: one
    /// conditional put when it stays where it is under the same name with
    /// the same version; otherwise one transaction that also stores a new
    /// current version, moves its name guard, and holds `checks` (the
    /// placement of a move).
    async fn write_file(&self, file: &File, checks: Vec<Write>) -> StoreResult<File> {
        let expected = file.revision;
        let mut f = file.clone();
        f.revision += 1;
        if checks.is_empty() {
            let unchanged = file_revision(expected, f.current.number).and(same_listing(&f));
            match self.table.put(file_item(&f), Some(unchanged)).await {
                Ok(()) => return Ok(f),
                Err(PutError::Condition(None)) => return Err(StoreError::NotFound("file")),
                Err(PutError::Condition(Some(old))) if revision_of(&old)? != expected => {
                    return Err(StoreError::Conflict("file"));
                }
                Err(PutError::Condition(Some(_))) => {}
                Err(PutError::Store(e)) => return Err(e),
            }
        }
        let Some(stored_item) = self.table.get_item(&layout::file_key(&f.id.to_string())).await? else {
            return Err(StoreError::NotFound("file"));
        };
        if revision_of(&stored_item)? != expected {
            return Err(StoreError::Conflict("file"));
        }
        let stored: File = decode(&stored_item)?;
        let new_guard = layout::file_name_guard(&f);
        let mut with_version = stored.current.number != f.current.number;
        loop {
            let condition = file_revision(expected, stored.current.number);
            let mut writes = vec![self.table.put_write(file_item(&f), Some(condition))];
            if with_version {
                writes.push(self.table.put_write(version_item(&f.current), Some(Condition::absent())));
            }
            let guards = self.guard_moves(Target::File(f.id), &layout::file_name_guard(&stored), &new_guard).await?;
            let claim = (!guards.is_empty()).then_some(writes.len() + guards.len() - 1);
            writes.extend(guards);
            let first_check = writes.len();
            writes.extend(checks.iter().cloned());
            let e = match self.table.transact(writes).await {
                Ok(()) => return Ok(f),
                Err(e) => e,
            };
            return match e.failed_on_existing(0) {
                Some(true) => Err(StoreError::Conflict("file")),
                Some(false) => Err(StoreError::NotFound("file")),
                None if failed_from(&e, first_check, checks.len()) => Err(StoreError::Conflict("placement")),
                None if claim.is_some_and(|i| e.failed(i)) => {
                    Err(self.name_taken(&e, claim.unwrap(), &new_guard).await)
                }
                // The version is stored already (a retried new version): keep it.
                None if with_version && e.failed_only(1) => {
                    with_version = false;
                    continue;
                }
                None if claim.is_some() => Err(StoreError::Conflict("file")),
                None => Err(tx_store_error(e)),
            };
        }
    }

    /// One page of a list kept in an index partition, in ascending order.
    async fn list_page<T: serde::de::DeserializeOwned>(
        &self,
        index: Index,
        partition: String,
        page: &PageRequest,
        table_keys: impl Fn(&str) -> Keys,
        position: impl Fn(&T) -> (String, String),
    ) -> StoreResult<Page<T>> {
        self.table.list_page(index, &Query::partition(partition), page, table_keys, position).await
    }
}

#[async_trait]
impl AccountStore for DynamoCatalog {
    async fn insert_account(&self, account: &Account) -> StoreResult<()> {
        let item = revisioned_item(&layout::account_keys(account), encode(account), account.revision);
        self.table.insert(item, "account").await
    }

    async fn account(&self, id: AccountId) -> StoreResult<Option<Account>> {
        self.table.get_doc(&layout::account_key(&id.to_string())).await
    }

    async fn replace_account(&self, account: &Account) -> StoreResult<Account> {
        let mut a = account.clone();
        a.revision += 1;
        let item = revisioned_item(&layout::account_keys(&a), encode(&a), a.revision);
        self.table.replace(item, Condition::revision(account.revision), "account").await?;
        Ok(a)
    }

    async fn list_accounts(&self, page: &PageRequest) -> StoreResult<Page<Account>> {
        self.list_page(
            Index::Gsi1,
            layout::ACCOUNTS_PARTITION.to_string(),
            page,
            layout::account_key,
            layout::account_position,
        )
        .await
    }
}

#[async_trait]
impl UserStore for DynamoCatalog {
    async fn insert_user(&self, user: &User) -> StoreResult<()> {
        self.table.insert(item_of(&layout::user_keys(user), encode(user)), "user").await
    }

    async fn user(&self, id: UserId) -> StoreResult<Option<User>> {
        self.table.get_doc(&layout::user_key(&id.to_string())).await
    }

    async fn replace_user(&self, user: &User) -> StoreResult<()> {
        match self.table.put(item_of(&layout::user_keys(user), encode(user)), Some(Condition::present())).await {
            Ok(()) => Ok(()),
            Err(PutError::Condition(_)) => Err(StoreError::NotFound("user")),
            Err(PutError::Store(e)) => Err(e),
        }
    }

    async fn delete_user(&self, id: UserId) -> StoreResult<()> {
        // The user and their grants share one partition.
        let items = self.table.query_all(None, &Query::partition(layout::user_partition(id))).await?;
        let keys = items
            .iter()
            .map(|item| match (item.get(layout::PK), item.get(layout::SK)) {
                (Some(AttributeValue::S(pk)), Some(AttributeValue::S(sk))) => Ok(Keys::table(pk.clone(), sk.clone())),
                _ => Err(StoreError::Corrupt(format!("item {} has no keys", describe(item)))),
            })
            .collect::<StoreResult<Vec<_>>>()?;
        self.table.delete_all(None, keys).await.map_err(tx_store_error)
    }

    async fn list_users(&self, account: AccountId, page: &PageRequest) -> StoreResult<Page<User>> {
        self.list_page(Index::Gsi1, layout::users_partition(account), page, layout::user_key, layout::user_position)
            .await
    }
}

#[async_trait]
impl GrantStore for DynamoCatalog {
    async fn put_grant(&self, grant: &Grant) -> StoreResult<()> {
        match self.table.put(item_of(&layout::grant_keys(grant), encode(grant)), None).await {
            Ok(()) => Ok(()),
            Err(PutError::Condition(_)) => Err(StoreError::Backend("an unconditional put failed a condition".into())),
            Err(PutError::Store(e)) => Err(e),
        }
    }

    async fn delete_grant(&self, user: UserId, target: Target) -> StoreResult<bool> {
        self.table.delete_returning(&layout::grant_key(user, &target)).await
    }

    async fn grants_of_user(&self, user: UserId) -> StoreResult<Vec<Grant>> {
        let items = self
            .table
            .query_all(None, &Query::partition(layout::user_partition(user)).begins_with(layout::GRANT_PREFIX))
            .await?;
        items.iter().map(decode).collect()
    }

    async fn delete_grants_on(&self, target: Target) -> StoreResult<()> {
        let items =
            self.table.query_all(Some(Index::Gsi1), &Query::partition(layout::grants_on_partition(&target))).await?;
        let keys = items
            .iter()
            .map(|item| decode::<Grant>(item).map(|g| layout::grant_key(g.user_id, &g.target)))
            .collect::<StoreResult<Vec<_>>>()?;
        self.table.delete_all(None, keys).await.map_err(tx_store_error)
    }
}

#[async_trait]
impl FolderStore for DynamoCatalog {
    async fn insert_folder(&self, folder: &Folder, placement: &Placement) -> StoreResult<()> {
        if placement.parent() != folder.parent_id {
            return Err(StoreError::Conflict("placement"));
        }
        let item = revisioned_item(&layout::folder_keys(folder), encode(folder), folder.revision);
        let guard = layout::folder_name_guard(folder);
        let mut writes = vec![
            self.table.put_write(item, Some(Condition::absent())),
            self.table.put_write(guard_item(&guard, Target::Folder(folder.id)), Some(Condition::absent())),
        ];
        writes.extend(placement_checks(&self.table, folder.account_id, placement));
        match self.table.transact(writes).await {
            Ok(()) => Ok(()),
            Err(e) if e.failed(0) => Err(StoreError::AlreadyExists("folder")),
            Err(e) if failed_from(&e, 2, placement.0.len()) => Err(StoreError::Conflict("placement")),
            Err(e) if e.failed(1) => Err(self.name_taken(&e, 1, &guard).await),
            Err(e) => Err(tx_store_error(e)),
        }
    }

    async fn folder(&self, id: FolderId) -> StoreResult<Option<Folder>> {
        self.table.get_doc(&layout::folder_key(&id.to_string())).await
    }

    async fn folders_by_ids(&self, ids: &[FolderId]) -> StoreResult<Vec<Folder>> {
        let keys: Vec<Keys> = unique(ids).map(|id| layout::folder_key(&id.to_string())).collect();
        self.table.get_items(&keys).await?.iter().map(decode).collect()
    }

    async fn replace_folder(&self, folder: &Folder) -> StoreResult<Folder> {
        self.write_folder(folder, Vec::new()).await
    }

    async fn move_folder(&self, folder: &Folder, placement: &Placement) -> StoreResult<Folder> {
        // A folder cannot be placed under itself (nor can one transaction touch it twice).
        if placement.parent() != folder.parent_id || placement.is_under(folder.id) {
            return Err(StoreError::Conflict("placement"));
        }
        self.write_folder(folder, placement_checks(&self.table, folder.account_id, placement)).await
    }

    async fn detach_folder(&self, deletion: &FolderDeletion) -> StoreResult<()> {
        let folder = &deletion.folder;
        let mut writes = vec![
            self.table
                .delete_write(&layout::folder_key(&folder.id.to_string()), Some(Condition::revision(folder.revision))),
            self.table.put_write(deletion_item(deletion), Some(Condition::absent())),
        ];
        let guard = self.release(Target::Folder(folder.id), &layout::folder_name_guard(folder)).await?;
        writes.extend(guard);
        match self.table.transact(writes).await {
            Ok(()) => Ok(()),
            Err(e) => match e.failed_on_existing(0) {
                Some(true) => Err(StoreError::Conflict("folder")),
                Some(false) => Err(StoreError::NotFound("folder")),
                None if e.failed(1) => Err(StoreError::AlreadyExists("folder deletion")),
                // The guard changed hands since it was read: look again.
                None if e.failed(2) => Err(StoreError::Conflict("folder")),
                None => Err(tx_store_error(e)),
            },
        }
    }

    async fn folder_deletion(&self, folder: FolderId) -> StoreResult<Option<FolderDeletion>> {
        self.table.get_doc(&layout::deletion_key(folder)).await
    }

    async fn replace_folder_deletion(&self, deletion: &FolderDeletion) -> StoreResult<FolderDeletion> {
        let mut d = deletion.clone();
        d.revision += 1;
        self.table.replace(deletion_item(&d), Condition::revision(deletion.revision), "folder deletion").await?;
        Ok(d)
    }

    async fn unfinished_folder_deletions(&self, limit: u32) -> StoreResult<Vec<FolderDeletion>> {
        let q = Query::partition(layout::UNFINISHED_DELETIONS_PARTITION);
        let items = self.table.query_first(Some(Index::Gsi1), &q, limit as usize).await?;
        items.iter().map(decode).collect()
    }

    async fn delete_folder(&self, id: FolderId) -> StoreResult<bool> {
        for _ in 0..CHANGED_ATTEMPTS {
            let Some(stored_item) = self.table.get_item(&layout::folder_key(&id.to_string())).await? else {
                return Ok(false);
            };
            let revision = revision_of(&stored_item)?;
            let stored: Folder = decode(&stored_item)?;
            let mut writes = vec![
                self.table.delete_write(&layout::folder_key(&id.to_string()), Some(Condition::revision(revision))),
            ];
            writes.extend(self.release(Target::Folder(id), &layout::folder_name_guard(&stored)).await?);
            match self.table.transact(writes).await {
                Ok(()) => return Ok(true),
                // Renamed or deleted meanwhile, or its guard changed hands: look again.
                Err(e) if e.failed(0) || e.failed(1) => continue,
                Err(e) => return Err(tx_store_error(e)),
            }
        }
        Err(StoreError::Conflict("folder"))
    }

    async fn name_holder(
        &self,
        account: AccountId,
        parent: Option<FolderId>,
        name: &str,
    ) -> StoreResult<Option<Target>> {
        self.table.get_item(&layout::name_guard(account, parent, name)).await?.as_ref().map(holder_of).transpose()
    }

    async fn subfolders(
        &self,
        account: AccountId,
        parent: Option<FolderId>,
        page: &PageRequest,
    ) -> StoreResult<Page<Folder>> {
        let partition = layout::subfolders_partition(account, parent);
        self.list_page(Index::Gsi1, partition, page, layout::folder_key, layout::folder_position).await
    }
}

#[async_trait]
impl FileStore for DynamoCatalog {
    async fn insert_file(&self, file: &File, placement: &Placement) -> StoreResult<()> {
        if placement.parent() != file.folder_id {
            return Err(StoreError::Conflict("placement"));
        }
        let checks = placement_checks(&self.table, file.account_id, placement);
        let guard = layout::file_name_guard(file);
        let claim = || self.table.put_write(guard_item(&guard, Target::File(file.id)), Some(Condition::absent()));
        let mut writes = vec![
            self.table.put_write(file_item(file), Some(Condition::absent())),
            claim(),
            self.table.put_write(version_item(&file.current), Some(Condition::absent())),
        ];
        writes.extend(checks.clone());
        let e = match self.table.transact(writes).await {
            Ok(()) => return Ok(()),
            Err(e) if e.failed(0) => return Err(StoreError::AlreadyExists("file")),
            Err(e) if failed_from(&e, 3, checks.len()) => return Err(StoreError::Conflict("placement")),
            Err(e) if e.failed(1) => return Err(self.name_taken(&e, 1, &guard).await),
            Err(e) => e,
        };
        if !e.failed(2) {
            return Err(tx_store_error(e));
        }
        // The version is stored already: keep it (as the embedded store does).
        let mut writes = vec![self.table.put_write(file_item(file), Some(Condition::absent())), claim()];
        writes.extend(checks);
        match self.table.transact(writes).await {
            Ok(()) => Ok(()),
            Err(e) if e.failed(0) => Err(StoreError::AlreadyExists("file")),
            Err(e) if failed_from(&e, 2, placement.0.len()) => Err(StoreError::Conflict("placement")),
            Err(e) if e.failed(1) => Err(self.name_taken(&e, 1, &guard).await),
            Err(e) => Err(tx_store_error(e)),
        }
    }

    async fn file(&self, id: FileId) -> StoreResult<Option<File>> {
        self.table.get_doc(&layout::file_key(&id.to_string())).await
    }

    async fn files_by_ids(&self, ids: &[FileId]) -> StoreResult<Vec<File>> {
        self.file_docs(ids).await
    }

    async fn file_places(&self, ids: &[FileId]) -> StoreResult<Vec<FilePlace>> {
        self.file_docs(ids).await
    }

    async fn replace_file(&self, file: &File) -> StoreResult<File> {
        self.write_file(file, Vec::new()).await
    }

    async fn move_file(&self, file: &File, placement: &Placement) -> StoreResult<File> {
        if placement.parent() != file.folder_id {
            return Err(StoreError::Conflict("placement"));
        }
        self.write_file(file, placement_checks(&self.table, file.account_id, placement)).await
    }

    async fn delete_file(&self, id: FileId) -> StoreResult<Option<Vec<FileVersion>>> {
        for _ in 0..CHANGED_ATTEMPTS {
            // The file and its versions share one partition.
            let items = self.table.query_all(None, &Query::partition(layout::file_partition(id))).await?;
            let mut first = None;
            let mut versions = Vec::new();
            let mut keys = Vec::new();
            for item in &items {
                match item.get(layout::SK) {
                    Some(AttributeValue::S(sk)) if sk.starts_with(layout::VERSION_PREFIX) => {
                        let version: FileVersion = decode(item)?;
                        keys.push(layout::version_keys(&version));
                        versions.push(version);
                    }
                    Some(AttributeValue::S(sk)) if sk == "FILE" => {
                        // Conditional on the revision read, so that no version
                        // can land between this read and the delete.
                        let condition = Condition::revision(revision_of(item)?);
                        first = Some(self.table.delete_write(&layout::file_key(&id.to_string()), Some(condition)));
                        // Its name guard goes in the same transaction (the file's
                        // revision condition keeps it from changing hands meanwhile).
                        let guard = layout::file_name_guard(&decode::<File>(item)?);
                        if self.holds(Target::File(id), &guard).await? {
                            keys.insert(0, guard);
                        }
                    }
                    _ => return Err(StoreError::Corrupt(format!("unexpected item {} in a file", describe(item)))),
                }
            }
            // Versions without their file (a delete cut short): removed, but
            // the file was gone already.
            let existed = first.is_some();
            match self.table.delete_all(first, keys).await {
                Ok(()) => {
                    return Ok(existed.then(|| {
                        versions.sort_by_key(|v| v.number);
                        versions
                    }));
                }
                Err(e) if e.failed(0) => continue,
                Err(e) => return Err(tx_store_error(e)),
            }
        }
        Err(StoreError::Conflict("file"))
    }

    async fn files_in_folder(
        &self,
        account: AccountId,
        folder: Option<FolderId>,
        page: &PageRequest,
    ) -> StoreResult<Page<File>> {
        let partition = layout::files_partition(account, folder);
        self.list_page(Index::Gsi1, partition, page, layout::file_key, layout::file_position).await
    }

    async fn listed_files_in_folder(
        &self,
        account: AccountId,
        folder: Option<FolderId>,
        page: &PageRequest,
    ) -> StoreResult<Page<ListedFile>> {
        let partition = layout::files_partition(account, folder);
        self.list_page(Index::Gsi1, partition, page, layout::file_key, layout::listed_file_position).await
    }

    async fn folder_listing(
        &self,
        account: AccountId,
        folder: Option<FolderId>,
        subfolders: Option<&PageRequest>,
        files: &PageRequest,
    ) -> StoreResult<(Page<Folder>, Page<ListedFile>)> {
        let folders = async {
            match subfolders {
                Some(page) => self.subfolders(account, folder, page).await,
                None => Ok(Page { items: Vec::new(), next: None }),
            }
        };
        futures_util::future::try_join(folders, self.listed_files_in_folder(account, folder, files)).await
    }

    async fn versions(&self, file: FileId) -> StoreResult<Vec<FileVersion>> {
        let items = self
            .table
            .query_all(None, &Query::partition(layout::file_partition(file)).begins_with(layout::VERSION_PREFIX))
            .await?;
        items.iter().map(decode).collect()
    }
}

#[async_trait]
impl CollectionStore for DynamoCatalog {
    async fn insert_collection(&self, collection: &Collection) -> StoreResult<()> {
        let item = revisioned_item(&layout::collection_keys(collection), encode(collection), collection.revision);
        self.table.insert(item, "collection").await
    }

    async fn collection(&self, id: CollectionId) -> StoreResult<Option<Collection>> {
        self.table.get_doc(&layout::collection_key(&id.to_string())).await
    }

    async fn replace_collection(&self, collection: &Collection) -> StoreResult<Collection> {
        let mut c = collection.clone();
        c.revision += 1;
        let item = revisioned_item(&layout::collection_keys(&c), encode(&c), c.revision);
        self.table.replace(item, Condition::revision(collection.revision), "collection").await?;
        Ok(c)
    }

    async fn delete_collection(&self, id: CollectionId) -> StoreResult<()> {
        // The collection and its memberships share one partition.
        let items = self.table.query_all(None, &Query::partition(layout::collection_partition(id))).await?;
        let mut keys = Vec::with_capacity(items.len());
        for item in &items {
            match item.get(layout::SK) {
                Some(AttributeValue::S(sk)) if sk.starts_with(layout::ITEM_PREFIX) => {
                    keys.push(layout::item_keys(&decode::<CollectionItem>(item)?));
                }
                Some(AttributeValue::S(sk)) if sk == "COLLECTION" => keys.push(layout::collection_key(&id.to_string())),
                _ => return Err(StoreError::Corrupt(format!("unexpected item {} in a collection", describe(item)))),
            }
        }
        self.table.delete_all(None, keys).await.map_err(tx_store_error)
    }

    async fn collections(&self, account: AccountId, page: &PageRequest) -> StoreResult<Page<Collection>> {
        let partition = layout::collections_partition(account);
        self.list_page(Index::Gsi1, partition, page, layout::collection_key, layout::collection_position).await
    }

    async fn add_to_collection(&self, item: &CollectionItem) -> StoreResult<()> {
        self.table.insert(item_of(&layout::item_keys(item), encode(item)), "collection item").await
    }

    async fn remove_from_collection(&self, collection: CollectionId, file: FileId) -> StoreResult<bool> {
        self.table.delete_returning(&layout::item_key(collection, &file.to_string())).await
    }

    async fn collection_items(
        &self,
        collection: CollectionId,
        page: &PageRequest,
    ) -> StoreResult<Page<CollectionItem>> {
        self.list_page(
            Index::Gsi2,
            layout::items_partition(collection),
            page,
            |file| layout::item_key(collection, file),
            layout::item_position,
        )
        .await
    }

    async fn collections_of_file(&self, file: FileId) -> StoreResult<Vec<CollectionId>> {
        let items = self
            .table
            .query_all(Some(Index::Gsi1), &Query::partition(layout::collections_of_file_partition(file)))
            .await?;
        items.iter().map(|item| decode::<CollectionItem>(item).map(|i| i.collection_id)).collect()
    }

    async fn members_among(&self, collection: CollectionId, files: &[FileId]) -> StoreResult<Vec<FileId>> {
        let keys: Vec<Keys> = unique(files).map(|file| layout::item_key(collection, &file.to_string())).collect();
        self.table
            .get_items(&keys)
            .await?
            .iter()
            .map(|item| decode::<CollectionItem>(item).map(|i| i.file_id))
            .collect()
    }
}

/// Each id once, in their order (`BatchGetItem` refuses a request that names a key twice).
fn unique<T: Copy + Eq + std::hash::Hash>(ids: &[T]) -> impl Iterator<Item = T> + '_ {
    let mut seen = std::collections::HashSet::with_capacity(ids.len());
    ids.iter().copied().filter(move |id| seen.insert(*id))
}

#[async_trait]
impl UploadStore for DynamoCatalog {
    async fn insert_upload(&self, upload: &Upload) -> StoreResult<()> {
        self.table.insert(upload_item(upload), "upload").await
    }

    async fn upload(&self, id: UploadId) -> StoreResult<Option<Upload>> {
        self.table.get_doc(&layout::upload_key(id)).await
    }

    async fn replace_upload(&self, upload: &Upload) -> StoreResult<Upload> {
        let mut u = upload.clone();
        u.revision += 1;
        self.table.replace(upload_item(&u), Condition::revision(upload.revision), "upload").await?;
        Ok(u)
    }

    async fn delete_upload(&self, id: UploadId) -> StoreResult<()> {
        self.table.delete_returning(&layout::upload_key(id)).await.map(|_| ())
    }
}

/// An upload's item. DynamoDB deletes it some time after [`Upload::keep_until`]
/// (TTL is only cleanup: the domain checks `expires_at` itself).
fn upload_item(upload: &Upload) -> Item {
    let mut item = revisioned_item(&layout::upload_key(upload.id), encode(upload), upload.revision);
    item.insert(layout::TTL.to_string(), ttl_at(upload.keep_until()));
    item
}
