//! The item layout of the three tables (catalog, links, activity): the one
//! place that knows how records map to keys. `infra/README.md` has the same
//! design as tables; change both together.
//!
//! Every item has `pk`/`sk` (table keys), a `doc` attribute with the record's
//! JSON and, for revisioned records, a numeric `revision`. List access
//! patterns use `gsi1pk`/`gsi1sk`, `gsi2pk`/`gsi2sk` and (links and activity
//! tables) `gsi3pk`/`gsi3sk`; each table gives its indexes its own meaning.
//!
//! Naming: `x_key(id)` is the table key of a record by id; `x_keys(record)`
//! every key of its item; `x_partition(..)` a partition value (of the table
//! or an index) that a query reads; `x_position(record)` the record's place in
//! its list, as the `(sort text, id)` pair that cursors carry.

use chrono::{DateTime, SecondsFormat, Utc};
use publinks_domain::ids::*;
use publinks_domain::model::*;
use publinks_domain::webhooks::{Delivery, Webhook};
use sha2::{Digest, Sha256};

/// The table's partition key.
pub(super) const PK: &str = "pk";
/// The table's sort key.
pub(super) const SK: &str = "sk";
/// The record's JSON.
pub(super) const DOC: &str = "doc";
/// The optimistic-concurrency revision, as a number that conditions compare.
pub(super) const REVISION: &str = "revision";
/// When DynamoDB may delete the item (epoch seconds; the template's TTL attribute).
pub(super) const TTL: &str = "ttl";
/// On a file item: the number of its current version (whose version item is
/// then known to exist), so that a metadata-only replace needs one write.
pub(super) const CURRENT_VERSION: &str = "current_version";
/// On a name guard: the file or folder that holds the name.
pub(super) const OWNER: &str = "owner";
/// On a link counter: how many links its target or account holds.
pub(super) const COUNT: &str = "count";
/// On a limit slot: what holds it.
pub(super) const HOLDER: &str = "holder";
/// On a limit slot: when its holder's deadline passes (a time key).
pub(super) const UNTIL: &str = "until";
/// On a token item: the id of the link the token opens.
pub(super) const LINK: &str = "link";
/// On a link: its target's kind (`file`, `folder`, `collection`), for
/// filters; on a name guard, its owner's (absent on guards of folders
/// written before files had guards).
pub(super) const KIND: &str = "kind";
/// On a link: `valid_from` as a time key (absent when open), for filters.
pub(super) const VALID_FROM: &str = "valid_from";
/// On a link: `valid_until` as a time key (absent when open-ended), for filters.
pub(super) const VALID_UNTIL: &str = "valid_until";
/// On a link's place item: the folders above its target, nearest first (a list of ids).
pub(super) const FOLDERS: &str = "folders";
/// On an audit entry: its account, for filters on the by-link and by-target indexes.
pub(super) const ACCOUNT: &str = "account";
/// On an audit entry: its target (`{kind}:{id}`), for filters.
pub(super) const TARGET: &str = "target";
/// On an audit entry: its action (`created`, `updated`, `deleted`), for filters.
pub(super) const ACTION: &str = "action";

/// A global secondary index (the catalog table has `gsi1` and `gsi2`; the
/// links and activity tables have all three).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Index {
    Gsi1,
    Gsi2,
    Gsi3,
}

impl Index {
    pub(super) fn name(self) -> &'static str {
        match self {
            Index::Gsi1 => "gsi1",
            Index::Gsi2 => "gsi2",
            Index::Gsi3 => "gsi3",
        }
    }
    pub(super) fn pk(self) -> &'static str {
        match self {
            Index::Gsi1 => "gsi1pk",
            Index::Gsi2 => "gsi2pk",
            Index::Gsi3 => "gsi3pk",
        }
    }
    pub(super) fn sk(self) -> &'static str {
        match self {
            Index::Gsi1 => "gsi1sk",
            Index::Gsi2 => "gsi2sk",
            Index::Gsi3 => "gsi3sk",
        }
    }
}

/// The keys of one item: the table's and those of the indexes it appears in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Keys {
    pub(super) pk: String,
    pub(super) sk: String,
    pub(super) gsi1: Option<(String, String)>,
    pub(super) gsi2: Option<(String, String)>,
    pub(super) gsi3: Option<(String, String)>,
}

impl Keys {
    /// An item's table keys, in no index yet.
    pub(super) fn table(pk: String, sk: impl Into<String>) -> Self {
        Keys { pk, sk: sk.into(), gsi1: None, gsi2: None, gsi3: None }
    }
    fn gsi1(mut self, pk: String, sk: String) -> Self {
        self.gsi1 = Some((pk, sk));
        self
    }
    fn gsi2(mut self, pk: String, sk: String) -> Self {
        self.gsi2 = Some((pk, sk));
        self
    }
    fn gsi3(mut self, pk: String, sk: String) -> Self {
        self.gsi3 = Some((pk, sk));
        self
    }
}

/// Timestamps as fixed-width RFC 3339 (as the embedded store), so text order is time order.
pub(super) fn time_key(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

pub(super) use publinks_domain::rules::name_key;

/// The separator between the two parts of a sort key: below every character
/// that [`escape`] lets through.
const SEPARATOR: char = '\u{1}';
/// Starts the two-character code of an escaped low character.
const ESCAPE: char = '\u{2}';

/// An order-preserving, prefix-free rewrite of `text` with no character at or
/// below [`SEPARATOR`]: `\0`, `\u{1}` and `\u{2}` become `\u{2}` followed by
/// `\u{3}`..`\u{5}`; everything else is kept.
fn escape(text: &str, out: &mut String) {
    for c in text.chars() {
        if c <= ESCAPE {
            out.push(ESCAPE);
            out.push(char::from(c as u8 + 3));
        } else {
            out.push(c);
        }
    }
}

/// The sort key of a list position `(sort, id)`. For any two positions, the
/// byte order of their sort keys (DynamoDB's order) equals the order of the
/// `(sort, id)` pairs (the embedded store's), whatever characters a name has.
pub(super) fn sort_key(sort: &str, id: &str) -> String {
    let mut out = String::with_capacity(sort.len() + id.len() + 1);
    escape(sort, &mut out);
    out.push(SEPARATOR);
    escape(id, &mut out);
    out
}

/// Below every sort key of a position whose sort text is at most `sort`:
/// `sort_key(s, id) < below_positions_after(t)` exactly when `s <= t`, for any id.
pub(super) fn below_positions_after(sort: &str) -> String {
    let mut out = String::with_capacity(sort.len() + 1);
    escape(sort, &mut out);
    out.push(ESCAPE);
    out
}

/// `ROOT` stands for "no parent folder" in keys (a UUID never spells it).
fn folder_part(folder: Option<FolderId>) -> String {
    folder.map(|f| f.to_string()).unwrap_or_else(|| "ROOT".to_string())
}

/// A target kind in keys and filter attributes.
pub(super) fn kind_part(kind: TargetKind) -> &'static str {
    match kind {
        TargetKind::File => "file",
        TargetKind::Folder => "folder",
        TargetKind::Collection => "collection",
    }
}

/// A target in keys and filter attributes: `{kind}:{id}`.
pub(super) fn target_part(t: &Target) -> String {
    format!("{}:{}", kind_part(t.kind()), t.uuid())
}

/// An audit action in filter attributes.
pub(super) fn action_part(action: AuditAction) -> &'static str {
    match action {
        AuditAction::Created => "created",
        AuditAction::Updated => "updated",
        AuditAction::Deleted => "deleted",
    }
}

// --- accounts -------------------------------------------------------------

pub(super) const ACCOUNTS_PARTITION: &str = "ACCOUNTS";
/// An account item's sort key.
pub(super) const ACCOUNT_SORT: &str = "ACCOUNT";

pub(super) fn account_key(id: &str) -> Keys {
    Keys::table(format!("ACCOUNT#{id}"), ACCOUNT_SORT)
}

/// The position of an account in `list_accounts` (oldest first).
pub(super) fn account_position(a: &Account) -> (String, String) {
    (time_key(&a.created_at), a.id.to_string())
}

pub(super) fn account_keys(a: &Account) -> Keys {
    let (sort, id) = account_position(a);
    account_key(&id).gsi1(ACCOUNTS_PARTITION.to_string(), sort_key(&sort, &id))
}

// --- users and grants -----------------------------------------------------

pub(super) fn user_partition(user: UserId) -> String {
    format!("USER#{user}")
}

pub(super) fn user_key(id: &str) -> Keys {
    Keys::table(format!("USER#{id}"), "USER")
}

pub(super) fn users_partition(account: AccountId) -> String {
    format!("ACCOUNT#{account}#USERS")
}

pub(super) fn user_position(u: &User) -> (String, String) {
    (time_key(&u.created_at), u.id.to_string())
}

pub(super) fn user_keys(u: &User) -> Keys {
    let (sort, id) = user_position(u);
    user_key(&id).gsi1(users_partition(u.account_id), sort_key(&sort, &id))
}

pub(super) const GRANT_PREFIX: &str = "GRANT#";

pub(super) fn grant_key(user: UserId, target: &Target) -> Keys {
    Keys::table(user_partition(user), format!("{GRANT_PREFIX}{}", target_part(target)))
}

pub(super) fn grants_on_partition(target: &Target) -> String {
    format!("TARGET#{}", target_part(target))
}

pub(super) fn grant_keys(g: &Grant) -> Keys {
    grant_key(g.user_id, &g.target).gsi1(grants_on_partition(&g.target), user_partition(g.user_id))
}

// --- folders --------------------------------------------------------------

/// A folder item's sort key.
pub(super) const FOLDER_SORT: &str = "FOLDER";

pub(super) fn folder_key(id: &str) -> Keys {
    Keys::table(format!("FOLDER#{id}"), FOLDER_SORT)
}

pub(super) fn subfolders_partition(account: AccountId, parent: Option<FolderId>) -> String {
    format!("ACCOUNT#{account}#PARENT#{}", folder_part(parent))
}

pub(super) fn folder_position(f: &Folder) -> (String, String) {
    (name_key(&f.name), f.id.to_string())
}

pub(super) fn folder_keys(f: &Folder) -> Keys {
    let (sort, id) = folder_position(f);
    folder_key(&id).gsi1(subfolders_partition(f.account_id, f.parent_id), sort_key(&sort, &id))
}

/// The guard item of a name in a folder (`None`: the top): one file or
/// folder there holds it (its id in [`OWNER`], its kind in [`KIND`]).
/// Written in the same transaction as the record, it keeps names unique
/// among files and subfolders alike.
pub(super) fn name_guard(account: AccountId, parent: Option<FolderId>, name: &str) -> Keys {
    let mut pk = subfolders_partition(account, parent);
    pk.push_str("#NAME#");
    escape(&name_key(name), &mut pk);
    Keys::table(pk, "NAME")
}

/// The guard of a folder's name.
pub(super) fn folder_name_guard(f: &Folder) -> Keys {
    name_guard(f.account_id, f.parent_id, &f.name)
}

/// The guard of a file's name.
pub(super) fn file_name_guard(f: &File) -> Keys {
    name_guard(f.account_id, f.folder_id, &f.name)
}

// --- files and versions ---------------------------------------------------

pub(super) fn file_partition(id: FileId) -> String {
    format!("FILE#{id}")
}

pub(super) fn file_key(id: &str) -> Keys {
    Keys::table(format!("FILE#{id}"), "FILE")
}

pub(super) fn files_partition(account: AccountId, folder: Option<FolderId>) -> String {
    format!("ACCOUNT#{account}#FOLDER#{}", folder_part(folder))
}

pub(super) fn file_position(f: &File) -> (String, String) {
    (name_key(&f.name), f.id.to_string())
}

/// [`file_position`] of a file read for a listing: the same cursor.
pub(super) fn listed_file_position(f: &ListedFile) -> (String, String) {
    (name_key(&f.name), f.id.to_string())
}

pub(super) fn file_keys(f: &File) -> Keys {
    let (sort, id) = file_position(f);
    file_key(&id).gsi1(files_partition(f.account_id, f.folder_id), sort_key(&sort, &id))
}

pub(super) const VERSION_PREFIX: &str = "VERSION#";

/// Versions sort by number: ten digits hold every `u32`.
pub(super) fn version_keys(v: &FileVersion) -> Keys {
    Keys::table(file_partition(v.file_id), format!("{VERSION_PREFIX}{:010}", v.number))
}

// --- collections ----------------------------------------------------------

pub(super) fn collection_partition(id: CollectionId) -> String {
    format!("COLLECTION#{id}")
}

pub(super) fn collection_key(id: &str) -> Keys {
    Keys::table(format!("COLLECTION#{id}"), "COLLECTION")
}

pub(super) fn collections_partition(account: AccountId) -> String {
    format!("ACCOUNT#{account}#COLLECTIONS")
}

pub(super) fn collection_position(c: &Collection) -> (String, String) {
    (name_key(&c.name), c.id.to_string())
}

pub(super) fn collection_keys(c: &Collection) -> Keys {
    let (sort, id) = collection_position(c);
    collection_key(&id).gsi1(collections_partition(c.account_id), sort_key(&sort, &id))
}

pub(super) const ITEM_PREFIX: &str = "ITEM#";

pub(super) fn item_key(collection: CollectionId, file: &str) -> Keys {
    Keys::table(collection_partition(collection), format!("{ITEM_PREFIX}{file}"))
}

pub(super) fn collections_of_file_partition(file: FileId) -> String {
    format!("FILE#{file}#COLLECTIONS")
}

pub(super) fn items_partition(collection: CollectionId) -> String {
    format!("COLLECTION#{collection}#ITEMS")
}

/// The position of a member in `collection_items` (order of addition).
pub(super) fn item_position(i: &CollectionItem) -> (String, String) {
    (time_key(&i.added_at), i.file_id.to_string())
}

pub(super) fn item_keys(i: &CollectionItem) -> Keys {
    let (sort, file) = item_position(i);
    item_key(i.collection_id, &file)
        .gsi1(collections_of_file_partition(i.file_id), sort_key(&sort, &i.collection_id.to_string()))
        .gsi2(items_partition(i.collection_id), sort_key(&sort, &file))
}

// --- uploads --------------------------------------------------------------

pub(super) fn upload_key(id: UploadId) -> Keys {
    Keys::table(format!("UPLOAD#{id}"), "UPLOAD")
}

// --- folder deletions -------------------------------------------------------

/// The deletions not done yet (gsi1, sparse: a done deletion leaves it), oldest first.
pub(super) const UNFINISHED_DELETIONS_PARTITION: &str = "DELETIONS#UNFINISHED";

pub(super) fn deletion_key(folder: FolderId) -> Keys {
    Keys::table(format!("DELETION#{folder}"), "DELETION")
}

pub(super) fn deletion_position(d: &FolderDeletion) -> (String, String) {
    (time_key(&d.created_at), d.folder.id.to_string())
}

pub(super) fn deletion_keys(d: &FolderDeletion) -> Keys {
    let keys = deletion_key(d.folder.id);
    if d.status == DeletionStatus::Done {
        return keys;
    }
    let (sort, id) = deletion_position(d);
    keys.gsi1(UNFINISHED_DELETIONS_PARTITION.to_string(), sort_key(&sort, &id))
}

// --- links (links table) --------------------------------------------------

pub(super) fn link_key(id: &str) -> Keys {
    Keys::table(format!("LINK#{id}"), "LINK")
}

/// Starts the sort key of a link's place item in its account's partition.
pub(super) const PLACE_PREFIX: &str = "PLACE#";

/// The partition of an account's counter and its links' place items: read
/// strongly consistent, it is how a cascade finds every link under a folder.
pub(super) fn account_partition(account: AccountId) -> String {
    format!("ACCOUNT#{account}")
}

/// A link's place item: its target and the folders above it, in its account's partition.
pub(super) fn place_key(account: AccountId, link: LinkId) -> Keys {
    Keys::table(account_partition(account), format!("{PLACE_PREFIX}{link}"))
}

/// The links of one target (gsi1), oldest first.
pub(super) fn target_links_partition(target: &Target) -> String {
    format!("TARGET#{}", target_part(target))
}

/// The links of one account (gsi2), by creation time.
pub(super) fn account_links_partition(account: AccountId) -> String {
    format!("ACCOUNT#{account}#LINKS")
}

/// How many partitions the expiry index (gsi3) spreads links with an end
/// over, so that no single index partition takes every such write. Fixed:
/// changing it would strand the links already written in other partitions.
pub(super) const EXPIRY_SHARDS: u32 = 8;

/// One partition of the expiry index (gsi3), by end of validity.
pub(super) fn expiry_partition(shard: u32) -> String {
    format!("EXPIRY#{shard}")
}

fn expiry_shard(link: LinkId) -> u32 {
    (link.0.as_u128() % u128::from(EXPIRY_SHARDS)) as u32
}

/// The position of a link in its target's and its account's lists (creation order).
pub(super) fn link_position(l: &Link) -> (String, String) {
    (time_key(&l.created_at), l.id.to_string())
}

/// A link in its target's list (gsi1), its account's (gsi2) and, when it
/// has an end, in the expiry index (gsi3, sparse).
pub(super) fn link_keys(l: &Link) -> Keys {
    let (sort, id) = link_position(l);
    let keys = link_key(&id)
        .gsi1(target_links_partition(&l.target), sort_key(&sort, &id))
        .gsi2(account_links_partition(l.account_id), sort_key(&sort, &id));
    match l.valid_until {
        Some(until) => keys.gsi3(expiry_partition(expiry_shard(l.id)), sort_key(&time_key(&until), &id)),
        None => keys,
    }
}

/// The item that finds a link by the hash of its token (no index read on a
/// visitor's request).
pub(super) fn token_key(token_hash: &str) -> Keys {
    Keys::table(format!("TOKEN#{token_hash}"), "TOKEN")
}

/// The counter of a target's links.
pub(super) fn target_counter_key(target: &Target) -> Keys {
    Keys::table(format!("TARGET#{}", target_part(target)), "LINKS")
}

/// The counter of an account's links.
pub(super) fn account_counter_key(account: AccountId) -> Keys {
    Keys::table(account_partition(account), "LINKS")
}

// --- audit entries, downloads, throttle buckets (activity table) ------------

pub(super) fn audit_key(id: &str) -> Keys {
    Keys::table(format!("AUDIT#{id}"), "AUDIT")
}

/// An account's audit log (gsi1).
pub(super) fn account_audit_partition(account: AccountId) -> String {
    format!("ACCOUNT#{account}#AUDIT")
}

/// One link's audit entries (gsi2).
pub(super) fn link_audit_partition(link: LinkId) -> String {
    format!("LINK#{link}#AUDIT")
}

/// One target's audit entries (gsi3).
pub(super) fn target_audit_partition(target: &Target) -> String {
    format!("TARGET#{}#AUDIT", target_part(target))
}

/// The position of an entry in the audit lists (by time; read newest first).
pub(super) fn audit_position(e: &AuditEntry) -> (String, String) {
    (time_key(&e.at), e.id.clone())
}

pub(super) fn audit_keys(e: &AuditEntry) -> Keys {
    let (sort, id) = audit_position(e);
    let sk = sort_key(&sort, &id);
    audit_key(&id)
        .gsi1(account_audit_partition(e.account_id), sk.clone())
        .gsi2(link_audit_partition(e.link_id), sk.clone())
        .gsi3(target_audit_partition(&e.target), sk)
}

pub(super) fn download_key(id: &str) -> Keys {
    Keys::table(format!("DOWNLOAD#{id}"), "DOWNLOAD")
}

/// An account's downloads (gsi1).
pub(super) fn account_downloads_partition(account: AccountId) -> String {
    format!("ACCOUNT#{account}#DOWNLOADS")
}

/// One visitor session's downloads through one link (gsi2). The session is
/// hashed: it may be empty or long, and a key may be neither.
pub(super) fn visitor_downloads_partition(link: LinkId, session: &str) -> String {
    format!("VISITOR#{link}#{:x}", Sha256::digest(session.as_bytes()))
}

/// The position of a download in both lists (by time; read newest first).
pub(super) fn download_position(d: &DownloadRecord) -> (String, String) {
    (time_key(&d.at), d.id.to_string())
}

/// A download in its account's list and, through a link, its visitor's.
pub(super) fn download_keys(d: &DownloadRecord) -> Keys {
    let (sort, id) = download_position(d);
    let keys = download_key(&id).gsi1(account_downloads_partition(d.account_id), sort_key(&sort, &id));
    match &d.by {
        Downloader::PublicLink { link_id, session } => {
            keys.gsi2(visitor_downloads_partition(*link_id, session), sort_key(&sort, &id))
        }
        Downloader::User { .. } => keys,
    }
}

pub(super) fn archive_job_key(id: &str) -> Keys {
    Keys::table(format!("ARCHIVE#{id}"), "ARCHIVE")
}

/// An account's archive jobs (gsi1).
pub(super) fn account_archives_partition(account: AccountId) -> String {
    format!("ACCOUNT#{account}#ARCHIVES")
}

/// One visitor session's archive jobs through one link (gsi2), the session hashed.
pub(super) fn visitor_archives_partition(link: LinkId, session: &str) -> String {
    format!("VISITOR#{link}#{:x}#ARCHIVES", Sha256::digest(session.as_bytes()))
}

/// The jobs of one fingerprint (gsi3): archives to reuse.
pub(super) fn fingerprint_partition(fingerprint: &str) -> String {
    format!("FINGERPRINT#{fingerprint}")
}

/// The position of a job in its lists (by creation; read newest first).
pub(super) fn archive_job_position(j: &ArchiveJob) -> (String, String) {
    (time_key(&j.created_at), j.id.to_string())
}

/// A job in its account's list, its visitor's (through a link), and its fingerprint's.
pub(super) fn archive_job_keys(j: &ArchiveJob) -> Keys {
    let (sort, id) = archive_job_position(j);
    let sk = sort_key(&sort, &id);
    let keys = archive_job_key(&id)
        .gsi1(account_archives_partition(j.account_id), sk.clone())
        .gsi3(fingerprint_partition(&j.fingerprint), sk.clone());
    match &j.requested_by {
        Downloader::PublicLink { link_id, session } => keys.gsi2(visitor_archives_partition(*link_id, session), sk),
        Downloader::User { .. } => keys,
    }
}

pub(super) fn webhook_key(id: &str) -> Keys {
    Keys::table(format!("WEBHOOK#{id}"), "WEBHOOK")
}

/// An account's webhooks (gsi1), oldest first.
pub(super) fn account_webhooks_partition(account: AccountId) -> String {
    format!("ACCOUNT#{account}#WEBHOOKS")
}

/// The counter of an account's webhooks (their cap is exact through it).
pub(super) fn account_webhooks_counter_key(account: AccountId) -> Keys {
    Keys::table(account_partition(account), "WEBHOOKS")
}

/// A webhook in its account's list.
pub(super) fn webhook_keys(h: &Webhook) -> Keys {
    let id = h.id.to_string();
    webhook_key(&id).gsi1(account_webhooks_partition(h.account_id), sort_key(&time_key(&h.created_at), &id))
}

pub(super) fn delivery_key(id: &str) -> Keys {
    Keys::table(format!("DELIVERY#{id}"), "DELIVERY")
}

/// A webhook's deliveries (gsi1), read newest first.
pub(super) fn webhook_deliveries_partition(webhook: WebhookId) -> String {
    format!("WEBHOOK#{webhook}#DELIVERIES")
}

/// The pending deliveries of every account, by when they are due (gsi2):
/// sparse, only while a delivery waits for an attempt.
pub(super) const DUE_DELIVERIES: &str = "DELIVERIES#DUE";

/// A delivery in its webhook's list, and in the due list while pending.
pub(super) fn delivery_keys(d: &Delivery) -> Keys {
    let id = d.id.to_string();
    let keys =
        delivery_key(&id).gsi1(webhook_deliveries_partition(d.webhook_id), sort_key(&time_key(&d.created_at), &id));
    match &d.next_attempt_at {
        Some(at) => keys.gsi2(DUE_DELIVERIES.to_string(), sort_key(&time_key(at), &id)),
        None => keys,
    }
}

/// How many items a link's activity counters, and partitions its activity
/// log, are spread over: each takes about 1/8 of a busy link's writes, so a
/// link opened 1,000 times a second stays far below DynamoDB's 1,000 writes
/// a second per partition. Fixed: items already written stay in their shard.
pub(super) const ACTIVITY_SHARDS: u32 = 8;

/// One shard of a link's activity counters (numbers named as
/// [`LinkActivity`]'s fields, `first_access` and `last_access` as time keys).
pub(super) fn activity_counter_key(link: LinkId, shard: u32) -> Keys {
    Keys::table(format!("STATS#{link}#{shard}"), "STATS")
}

/// One shard of a link's activity log (gsi1), newest first.
pub(super) fn activity_log_partition(link: LinkId, shard: u32) -> String {
    format!("LINK#{link}#ACTIVITY#{shard}")
}

pub(super) fn activity_key(id: &str) -> Keys {
    Keys::table(format!("ACTIVITY#{id}"), "ACTIVITY")
}

/// The position of an entry in its link's log (by time; read newest first).
pub(super) fn activity_position(e: &ActivityEntry) -> (String, String) {
    (time_key(&e.at), e.id.to_string())
}

/// An entry of a link's activity log, in the log's shard `shard`.
pub(super) fn activity_keys(e: &ActivityEntry, shard: u32) -> Keys {
    let (sort, id) = activity_position(e);
    activity_key(&id).gsi1(activity_log_partition(e.link_id, shard), sort_key(&sort, &id))
}

pub(super) fn throttle_key(key: &str) -> Keys {
    Keys::table(format!("THROTTLE#{key}"), "THROTTLE")
}

/// A counter of a limit (`count`, `ttl`).
pub(super) fn limit_counter_key(key: &str) -> Keys {
    Keys::table(format!("LIMIT#{key}"), "LIMIT")
}

/// A slot of a limit (`holder`, `until`, `ttl`).
pub(super) fn limit_slot_key(key: &str) -> Keys {
    Keys::table(format!("SLOT#{key}"), "SLOT")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sort_keys_order_like_pairs_whatever_the_names() {
        let names = ["", "a", "a b", "a\u{0}", "a\u{1}", "a\u{2}", "a\u{3}", "a#", "ab", "b", "\u{e9}", "a!"];
        let ids = ["", "0", "1", "00000000-0000-0000-0000-000000000000", "z"];
        let mut pairs = Vec::new();
        for n in names {
            for i in ids {
                pairs.push((n.to_string(), i.to_string()));
            }
        }
        for a in &pairs {
            for b in &pairs {
                assert_eq!(
                    a.cmp(b),
                    sort_key(&a.0, &a.1).as_bytes().cmp(sort_key(&b.0, &b.1).as_bytes()),
                    "{a:?} vs {b:?}"
                );
            }
        }
    }

    #[test]
    fn the_bound_after_a_sort_text_splits_positions_by_it() {
        let bound = below_positions_after("2026-01-01T00:00:00.000000Z");
        for (sort, below) in [
            ("2025-12-31T23:59:59.999999Z", true),
            ("2026-01-01T00:00:00.000000Z", true),
            ("2026-01-01T00:00:00.000001Z", false),
        ] {
            for id in ["", "0", "\u{0}", "\u{10ffff}", "00000000-0000-0000-0000-000000000000"] {
                assert_eq!(sort_key(sort, id) < bound, below, "{sort:?} {id:?}");
            }
        }
    }

    #[test]
    fn time_keys_are_fixed_width() {
        let a = DateTime::parse_from_rfc3339("2024-01-02T03:04:05Z").unwrap().with_timezone(&Utc);
        assert_eq!(time_key(&a), "2024-01-02T03:04:05.000000Z");
    }
}
