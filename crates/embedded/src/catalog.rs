//! The catalog on SQLite. One connection behind a mutex: every method is one
//! serialised transaction, so conditional writes are trivially atomic here.

use async_trait::async_trait;
use chrono::{DateTime, SecondsFormat, Utc};
use publinks_domain::ids::*;
use publinks_domain::model::*;
use publinks_domain::store::*;
use rusqlite::{Connection, OptionalExtension, Transaction, params};
use serde::{Serialize, de::DeserializeOwned};
use std::path::Path;
use std::sync::{Arc, Mutex};

const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS accounts (
    id TEXT PRIMARY KEY, created_at TEXT NOT NULL, revision INTEGER NOT NULL, doc TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS users (
    id TEXT PRIMARY KEY, account_id TEXT NOT NULL, created_at TEXT NOT NULL, doc TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS users_by_account ON users (account_id, created_at, id);
CREATE TABLE IF NOT EXISTS grants (
    user_id TEXT NOT NULL, target TEXT NOT NULL, doc TEXT NOT NULL, PRIMARY KEY (user_id, target));
CREATE INDEX IF NOT EXISTS grants_by_target ON grants (target);
CREATE TABLE IF NOT EXISTS folders (
    id TEXT PRIMARY KEY, account_id TEXT NOT NULL, parent TEXT NOT NULL, name_key TEXT NOT NULL,
    revision INTEGER NOT NULL, doc TEXT NOT NULL, UNIQUE (account_id, parent, name_key));
CREATE TABLE IF NOT EXISTS files (
    id TEXT PRIMARY KEY, account_id TEXT NOT NULL, folder TEXT NOT NULL, name_key TEXT NOT NULL,
    revision INTEGER NOT NULL, doc TEXT NOT NULL, listed TEXT,
    kept_published INTEGER, kept_shown TEXT, kept_without_identifying TEXT, kept_form TEXT,
    kept_revision INTEGER);
CREATE TABLE IF NOT EXISTS kept_forms (name TEXT PRIMARY KEY, form TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS files_by_folder ON files (account_id, folder, name_key, id);
CREATE TABLE IF NOT EXISTS file_versions (
    file_id TEXT NOT NULL, number INTEGER NOT NULL, doc TEXT NOT NULL, PRIMARY KEY (file_id, number));
CREATE TABLE IF NOT EXISTS collections (
    id TEXT PRIMARY KEY, account_id TEXT NOT NULL, name_key TEXT NOT NULL,
    revision INTEGER NOT NULL, doc TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS collections_by_account ON collections (account_id, name_key, id);
CREATE TABLE IF NOT EXISTS collection_items (
    collection_id TEXT NOT NULL, file_id TEXT NOT NULL, added_at TEXT NOT NULL, doc TEXT NOT NULL,
    PRIMARY KEY (collection_id, file_id));
CREATE INDEX IF NOT EXISTS collection_items_in_order ON collection_items (collection_id, added_at, file_id);
CREATE INDEX IF NOT EXISTS collection_items_by_file ON collection_items (file_id);
CREATE TABLE IF NOT EXISTS uploads (id TEXT PRIMARY KEY, doc TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS links (
    id TEXT PRIMARY KEY, account_id TEXT NOT NULL, target TEXT NOT NULL, kind TEXT NOT NULL,
    token_hash TEXT NOT NULL UNIQUE, created_at TEXT NOT NULL, valid_from TEXT, valid_until TEXT,
    revision INTEGER NOT NULL, doc TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS links_by_target ON links (target, created_at, id);
CREATE INDEX IF NOT EXISTS links_by_account ON links (account_id, created_at, id);
CREATE INDEX IF NOT EXISTS links_by_expiry ON links (valid_until) WHERE valid_until IS NOT NULL;
CREATE TABLE IF NOT EXISTS audit (
    id TEXT PRIMARY KEY, account_id TEXT NOT NULL, at TEXT NOT NULL, link_id TEXT NOT NULL,
    target TEXT NOT NULL, action TEXT NOT NULL, doc TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS audit_by_account ON audit (account_id, at, id);
CREATE TABLE IF NOT EXISTS downloads (
    id TEXT PRIMARY KEY, account_id TEXT NOT NULL, at TEXT NOT NULL, visitor TEXT, doc TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS downloads_by_account ON downloads (account_id, at, id);
CREATE INDEX IF NOT EXISTS downloads_by_visitor ON downloads (visitor, at, id) WHERE visitor IS NOT NULL;
CREATE TABLE IF NOT EXISTS archive_jobs (
    id TEXT PRIMARY KEY, account_id TEXT NOT NULL, created_at TEXT NOT NULL, visitor TEXT,
    fingerprint TEXT NOT NULL, revision INTEGER NOT NULL, doc TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS archive_jobs_by_account ON archive_jobs (account_id, created_at, id);
CREATE INDEX IF NOT EXISTS archive_jobs_by_visitor ON archive_jobs (visitor, created_at, id) WHERE visitor IS NOT NULL;
CREATE INDEX IF NOT EXISTS archive_jobs_by_fingerprint ON archive_jobs (fingerprint, created_at);
CREATE TABLE IF NOT EXISTS folder_deletions (
    folder_id TEXT PRIMARY KEY, done INTEGER NOT NULL, created_at TEXT NOT NULL,
    revision INTEGER NOT NULL, doc TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS folder_deletions_unfinished ON folder_deletions (created_at) WHERE done = 0;
CREATE TABLE IF NOT EXISTS names (
    account_id TEXT NOT NULL, parent TEXT NOT NULL, name_key TEXT NOT NULL, owner TEXT NOT NULL,
    kind TEXT NOT NULL, PRIMARY KEY (account_id, parent, name_key));
CREATE INDEX IF NOT EXISTS names_by_owner ON names (owner);
CREATE TABLE IF NOT EXISTS throttles (
    key TEXT PRIMARY KEY, revision INTEGER NOT NULL, expires_at TEXT NOT NULL, doc TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS limit_counters (
    key TEXT PRIMARY KEY, count INTEGER NOT NULL, expires_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS limit_slots (
    key TEXT PRIMARY KEY, holder TEXT NOT NULL, until TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS link_activity (
    link_id TEXT PRIMARY KEY, last_access TEXT NOT NULL, doc TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS activity_log (
    id TEXT PRIMARY KEY, link_id TEXT NOT NULL, at TEXT NOT NULL, keep_until TEXT NOT NULL, doc TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS activity_log_by_link ON activity_log (link_id, at, id);
CREATE INDEX IF NOT EXISTS activity_log_by_age ON activity_log (keep_until);
CREATE TABLE IF NOT EXISTS deleted_links (link_id TEXT PRIMARY KEY, until TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS webhooks (
    id TEXT PRIMARY KEY, account_id TEXT NOT NULL, created_at TEXT NOT NULL, revision INTEGER NOT NULL,
    doc TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS webhooks_by_account ON webhooks (account_id, created_at, id);
CREATE TABLE IF NOT EXISTS webhook_deliveries (
    id TEXT PRIMARY KEY, webhook_id TEXT NOT NULL, created_at TEXT NOT NULL, due_at TEXT,
    revision INTEGER NOT NULL, doc TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS deliveries_by_webhook ON webhook_deliveries (webhook_id, created_at, id);
CREATE INDEX IF NOT EXISTS deliveries_due ON webhook_deliveries (due_at) WHERE due_at IS NOT NULL;
"#;

/// The catalog ports on one SQLite file.
#[derive(Clone)]
pub struct EmbeddedCatalog {
    /// The one connection that writes: writes are serialised, so conditional
    /// writes and limits are simply checked inside the transaction.
    writer: Arc<Mutex<Connection>>,
    /// Read-only connections (WAL lets them read while the writer writes).
    readers: Arc<[Mutex<Connection>]>,
    next_reader: Arc<std::sync::atomic::AtomicUsize>,
    /// Visitor activity recorded but not yet written: written in batches,
    /// off the visitor's request (see `visitors.rs`).
    pub(super) activity: Arc<super::visitors::ActivityQueue>,
}

/// How many read-only connections the embedded store keeps.
const READERS: usize = 4;

/// Most ids read by id on the requesting thread: more go to a blocking one
/// (a visitor's listing page, read here, is bounded by its page size).
const SMALL_BATCH: usize = 32;

/// Prepared statements each connection keeps (rusqlite keeps 16 by default,
/// fewer than the distinct queries of one page view: preparing is a good part
/// of a point read's cost).
const STATEMENTS_KEPT: usize = 128;

/// Sets up a connection as every connection of the store is: its statement
/// cache, its wait for a busy database, and a query plan fixed when a
/// statement is prepared. SQLite otherwise compiles a statement again each
/// time a value a plan may depend on is bound anew, and every page's `LIMIT
/// ?` is one: the cached statements of listings and link pages were prepared
/// again on every use (a seventh of a folder page's time under load). Our
/// plans come from the indexes, not from the values: no `LIKE` or `GLOB`
/// with a bound pattern, no partial index chosen by a bound value (their
/// conditions are implied by the operators, `x = ?` or `x <= ?`), and no
/// `ANALYZE` statistics.
fn configure(conn: &Connection) -> StoreResult<()> {
    conn.set_prepared_statement_cache_capacity(STATEMENTS_KEPT);
    conn.busy_timeout(std::time::Duration::from_secs(5)).map_err(backend)?;
    conn.set_db_config(rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG, true).map_err(backend)?;
    Ok(())
}

pub(super) fn backend(e: rusqlite::Error) -> StoreError {
    match e {
        rusqlite::Error::SqliteFailure(f, msg)
            if matches!(f.code, rusqlite::ErrorCode::NotADatabase | rusqlite::ErrorCode::DatabaseCorrupt) =>
        {
            StoreError::Corrupt(msg.unwrap_or_else(|| f.to_string()))
        }
        other => StoreError::Backend(other.to_string()),
    }
}

pub(super) fn is_unique_violation(e: &rusqlite::Error) -> bool {
    matches!(e, rusqlite::Error::SqliteFailure(f, _) if f.code == rusqlite::ErrorCode::ConstraintViolation)
}

pub(super) fn encode<T: Serialize>(value: &T) -> String {
    serde_json::to_string(value).expect("records serialise")
}

pub(super) fn decode<T: DeserializeOwned>(doc: &str) -> StoreResult<T> {
    serde_json::from_str(doc).map_err(|e| StoreError::Corrupt(e.to_string()))
}

/// Timestamps as fixed-width RFC 3339, so text order is time order.
pub(super) fn time_key(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// The key of a folder's parent (or of a file's folder): `""` is the top.
pub(super) fn folder_key(folder: Option<FolderId>) -> String {
    folder.map(|f| f.to_string()).unwrap_or_default()
}

use publinks_domain::rules::name_key;

/// The `kind` column of a name guard.
fn owner_kind(owner: &Target) -> &'static str {
    match owner.kind() {
        TargetKind::File => "file",
        TargetKind::Folder => "folder",
        TargetKind::Collection => "collection",
    }
}

/// What holds `key` directly in the folder `parent` (a [`folder_key`]) of `account`.
fn name_holder_at(tx: &Connection, account: AccountId, parent: &str, key: &str) -> StoreResult<Option<Target>> {
    let row: Option<(String, String)> = tx
        .query_row(
            "SELECT owner, kind FROM names WHERE account_id = ?1 AND parent = ?2 AND name_key = ?3",
            params![account.to_string(), parent, key],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()
        .map_err(backend)?;
    row.map(|(owner, kind)| {
        let id = owner.parse().map_err(|_| StoreError::Corrupt(format!("name guard owner {owner}")))?;
        let kind = if kind == "file" { TargetKind::File } else { TargetKind::Folder };
        Ok(Target::from_parts(kind, id))
    })
    .transpose()
}

/// Gives `owner` the name `name` in `parent`: `NameTaken` if something else has it.
fn claim_name(
    tx: &Transaction<'_>,
    account: AccountId,
    parent: Option<FolderId>,
    name: &str,
    owner: Target,
) -> StoreResult<()> {
    let (parent, key) = (folder_key(parent), name_key(name));
    match name_holder_at(tx, account, &parent, &key)? {
        Some(holder) if holder == owner => Ok(()),
        Some(holder) => Err(StoreError::NameTaken { holder }),
        None => {
            tx.execute(
                "INSERT INTO names (account_id, parent, name_key, owner, kind) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![account.to_string(), parent, key, owner.uuid().to_string(), owner_kind(&owner)],
            )
            .map_err(backend)?;
            Ok(())
        }
    }
}

/// Frees the name `owner` holds (if it holds one: items written before
/// names were guarded may not).
fn release_name(tx: &Transaction<'_>, owner: Target) -> StoreResult<()> {
    tx.execute("DELETE FROM names WHERE owner = ?1", [owner.uuid().to_string()]).map_err(backend)?;
    Ok(())
}

/// When a record's folder or name (compared as keys) changes, frees its
/// old name and claims the new one; otherwise leaves the guards alone, so
/// that a duplicate from before names were guarded can still be edited.
fn rename_guard(
    tx: &Transaction<'_>,
    account: AccountId,
    owner: Target,
    before: (Option<FolderId>, &str),
    after: (Option<FolderId>, &str),
) -> StoreResult<()> {
    if before.0 == after.0 && name_key(before.1) == name_key(after.1) {
        return Ok(());
    }
    release_name(tx, owner)?;
    claim_name(tx, account, after.0, after.1, owner)
}

/// A unique-constraint failure of the folders table (its own rule on the
/// keys written before names were guarded) as the name's holder.
fn folder_name_clash(tx: &Transaction<'_>, f: &Folder) -> StoreError {
    let holder: Option<String> = tx
        .query_row(
            "SELECT id FROM folders WHERE account_id = ?1 AND parent = ?2 AND name_key = ?3",
            params![f.account_id.to_string(), folder_key(f.parent_id), name_key(&f.name)],
            |r| r.get(0),
        )
        .optional()
        .unwrap_or_default();
    match holder.and_then(|h| h.parse().ok()) {
        Some(id) => StoreError::NameTaken { holder: Target::Folder(id) },
        None => StoreError::Conflict("folder"),
    }
}

/// Gives every folder and file written before names were guarded the guard
/// of its name, once (`user_version` 0 → 1). Where two already share a
/// name, the first — folders before files, then the oldest — gets it, and
/// the others keep theirs unguarded: nothing is renamed, and new writes
/// cannot add to the duplicates.
fn guard_existing_names(conn: &mut Connection) -> StoreResult<()> {
    let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0)).map_err(backend)?;
    if version >= 1 {
        return Ok(());
    }
    let tx = migration(conn)?;
    // Another process may have done it while this one waited.
    let version: i64 = tx.pragma_query_value(None, "user_version", |r| r.get(0)).map_err(backend)?;
    if version >= 1 {
        return Ok(());
    }
    let mut folders: Vec<Folder> = docs(&tx, "SELECT doc FROM folders", [])?;
    folders.sort_by_key(|f| (f.created_at, f.id));
    let mut files: Vec<File> = docs(&tx, "SELECT doc FROM files", [])?;
    files.sort_by_key(|f| (f.created_at, f.id));
    let mut left = 0;
    let owners = folders
        .iter()
        .map(|f| (f.account_id, f.parent_id, f.name.as_str(), Target::Folder(f.id)))
        .chain(files.iter().map(|f| (f.account_id, f.folder_id, f.name.as_str(), Target::File(f.id))));
    for (account, parent, name, owner) in owners {
        match claim_name(&tx, account, parent, name, owner) {
            Ok(()) => {}
            Err(StoreError::NameTaken { .. }) => left += 1,
            Err(e) => return Err(e),
        }
    }
    tx.pragma_update(None, "user_version", 1).map_err(backend)?;
    tx.commit().map_err(backend)?;
    if left > 0 {
        tracing::warn!(items = left, "items sharing a name with another in their folder were left as they are");
    }
    Ok(())
}

/// Gives every file its listed fields in a column of their own, `listed`
/// (`user_version` 1 → 2), adding the column to stores made before it: a
/// listing decodes those few fields instead of the whole stored document
/// (four ids, hashes, keys, tags), which was two fifths of a 200-file
/// listing's time. A row without them is read from its document.
fn record_listed_files(conn: &mut Connection) -> StoreResult<()> {
    let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0)).map_err(backend)?;
    if version >= 2 {
        return Ok(());
    }
    let tx = migration(conn)?;
    add_column_if_missing(&tx, "files", "listed", "TEXT")?;
    tx.commit().map_err(backend)?;
    each_file(conn, "listed IS NULL", |tx, rowid, f| {
        tx.execute("UPDATE files SET listed = ?1 WHERE rowid = ?2", params![listed(f), rowid]).map(drop)
    })?;
    conn.pragma_update(None, "user_version", 2).map_err(backend)
}

/// A migration's transaction, which holds the write lock from its start: of
/// two processes opening a store at once, the second waits (up to the busy
/// timeout), then finds the work done, instead of failing to write on a
/// snapshot the first one changed.
fn migration(conn: &mut Connection) -> StoreResult<Transaction<'_>> {
    conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate).map_err(backend)
}

/// Adds `column` (of `kind`) to `table` unless it has one.
fn add_column_if_missing(tx: &Connection, table: &str, column: &str, kind: &str) -> StoreResult<()> {
    let has_column: i64 = tx
        .query_row("SELECT count(*) FROM pragma_table_info(?1) WHERE name = ?2", [table, column], |r| r.get(0))
        .map_err(backend)?;
    if has_column == 0 {
        tx.execute_batch(&format!("ALTER TABLE {table} ADD COLUMN {column} {kind}")).map_err(backend)?;
    }
    Ok(())
}

/// Runs `write` for every file that `filter` (an SQL condition) selects,
/// with its rowid, a thousand files at a time, each thousand in a
/// transaction of its own: a migration of a store of any size holds a
/// thousand documents at most, and the write lock for one batch at a time
/// (writers wait for a batch, not for the whole store). What `write` does
/// must leave the file out of `filter`, or be safe to do twice: another
/// process opening the store may walk it too.
fn each_file(
    conn: &mut Connection,
    filter: &str,
    mut write: impl FnMut(&Transaction<'_>, i64, &File) -> rusqlite::Result<()>,
) -> StoreResult<()> {
    let sql = format!("SELECT rowid, doc FROM files WHERE rowid > ?1 AND ({filter}) ORDER BY rowid LIMIT 1000");
    let mut after = i64::MIN;
    loop {
        let tx = migration(conn)?;
        let batch: Vec<(i64, String)> = tx
            .prepare_cached(&sql)
            .and_then(|mut stmt| stmt.query_map([after], |r| Ok((r.get(0)?, r.get(1)?)))?.collect())
            .map_err(backend)?;
        let Some(&(last, _)) = batch.last() else { return Ok(()) };
        for (rowid, doc) in &batch {
            write(&tx, *rowid, &decode(doc)?).map_err(backend)?;
        }
        tx.commit().map_err(backend)?;
        after = last;
    }
}

/// What the `listed` column of a file holds.
fn listed(f: &File) -> String {
    encode(&ListedFile::from(f))
}

/// Gives every file the JSON a visitor's listing shows of it ([`KeptFile`],
/// made when the file is written), in columns of their own (`kept_*`),
/// adding them to stores made before them, and remakes it for every file
/// kept in another form ([`KeptFile::form`]) when the store recorded
/// another (`kept_forms`, looked at first so that an open with nothing to
/// do reads one row): a listing page splices it as it is. Each file's kept
/// JSON names the form and the revision it was made of, and is served only
/// when both are this build's and the record's ([`kept_columns`]): a file whose
/// JSON another build made, or that a build before these columns wrote, is
/// listed from its document, also while this runs.
fn record_kept_files(conn: &mut Connection) -> StoreResult<()> {
    let form = kept_form();
    let recorded: Option<String> = conn
        .query_row("SELECT CAST(form AS TEXT) FROM kept_forms WHERE name = 'files'", [], |r| r.get(0))
        .optional()
        .map_err(backend)?;
    if recorded.as_deref() == Some(form) {
        return Ok(());
    }
    let tx = migration(conn)?;
    for (column, kind) in KEPT_COLUMNS {
        add_column_if_missing(&tx, "files", column, kind)?;
    }
    tx.commit().map_err(backend)?;
    let stale = format!("kept_form IS NOT {} OR kept_revision IS NOT revision", sql_text(form));
    each_file(conn, &stale, |tx, rowid, f| {
        let k = kept(f);
        tx.execute(
            "UPDATE files SET kept_published = ?1, kept_shown = ?2, kept_without_identifying = ?3, \
             kept_form = ?4, kept_revision = revision WHERE rowid = ?5",
            params![k.published, k.shown, k.shown_without_identifying, form, rowid],
        )
        .map(drop)
    })?;
    conn.execute(
        "INSERT INTO kept_forms (name, form) VALUES ('files', ?1) ON CONFLICT (name) DO UPDATE SET form = ?1",
        [form],
    )
    .map_err(backend)?;
    Ok(())
}

/// This build's [`KeptFile::form`], made once.
fn kept_form() -> &'static str {
    static FORM: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    FORM.get_or_init(KeptFile::form)
}

/// `text` as an SQL string literal.
fn sql_text(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// The columns a file's [`KeptFile`] is kept in, with the form and the revision it was made of.
const KEPT_COLUMNS: [(&str, &str); 5] = [
    ("kept_published", "INTEGER"),
    ("kept_shown", "TEXT"),
    ("kept_without_identifying", "TEXT"),
    ("kept_form", "TEXT"),
    ("kept_revision", "INTEGER"),
];

/// What the `kept_*` columns of a file hold.
fn kept(f: &File) -> KeptFile {
    KeptFile::of(&ListedFile::from(f))
}

/// What [`kept_at`] reads, in its order: the `kept_*` columns, and the
/// file's document when they were not made of its revision in this build's
/// form (another build wrote the file, or made its JSON), from which it is
/// then made.
fn kept_columns() -> (&'static str, usize) {
    static COLUMNS: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let columns = COLUMNS.get_or_init(|| {
        format!(
            "kept_published, kept_shown, kept_without_identifying, \
             CASE WHEN kept_revision IS revision AND kept_form IS {} THEN NULL ELSE doc END",
            sql_text(kept_form())
        )
    });
    (columns, 4)
}

/// The [`KeptFile`] of a row that selects [`kept_columns`] first.
fn kept_at(row: &rusqlite::Row<'_>) -> StoreResult<KeptFile> {
    if let Some(doc) =
        row.get_ref(3).map_err(backend)?.as_str_or_null().map_err(|e| StoreError::Corrupt(e.to_string()))?
    {
        return Ok(KeptFile::of(&decode::<ListedFile>(doc)?));
    }
    let published: Option<bool> = row.get(0).map_err(backend)?;
    Ok(KeptFile {
        published: published.ok_or_else(|| StoreError::Corrupt("a file without its kept JSON".into()))?,
        shown: text_at(row, 1)?.to_owned(),
        shown_without_identifying: row.get(2).map_err(backend)?,
    })
}

pub(super) fn target_key(t: &Target) -> String {
    format!("{}:{}", encode(&t.kind()).trim_matches('"'), t.uuid())
}

/// One keyset-paginated query: `filter` is the WHERE clause over `?1..?n`
/// (`args`), ordered by `(sort_col, id_col)`, descending if `descending`.
pub(super) fn keyset_page<T: DeserializeOwned>(
    tx: &Connection,
    table: &str,
    filter: &str,
    args: &[String],
    order: (&str, &str, bool),
    page: &PageRequest,
) -> StoreResult<Page<T>> {
    keyset_page_of(tx, "doc", table, filter, args, order, page)
}

/// [`keyset_page`], each record decoded from `document` (a column, or an
/// expression of the row's columns).
fn keyset_page_of<T: DeserializeOwned>(
    tx: &Connection,
    document: &str,
    table: &str,
    filter: &str,
    args: &[String],
    order: (&str, &str, bool),
    page: &PageRequest,
) -> StoreResult<Page<T>> {
    // Decoded from SQLite's own copy of the row, never copied out first.
    keyset_page_read(tx, (document, 1), table, filter, args, order, page, |row| decode(text_at(row, 0)?))
}

/// [`keyset_page_of`] with each item read by `read` from the row's first
/// `columns.1` columns (`columns.0`).
#[allow(clippy::too_many_arguments)]
fn keyset_page_read<T>(
    tx: &Connection,
    (columns, count): (&str, usize),
    table: &str,
    filter: &str,
    args: &[String],
    (sort_col, id_col, descending): (&str, &str, bool),
    page: &PageRequest,
    read: impl Fn(&rusqlite::Row<'_>) -> StoreResult<T>,
) -> StoreResult<Page<T>> {
    let mut values: Vec<rusqlite::types::Value> = args.iter().map(|a| a.clone().into()).collect();
    let (cmp, dir) = if descending { ("<", "DESC") } else { (">", "ASC") };
    let after = match &page.cursor {
        Some(c) => {
            let (after_sort, after_id): (String, String) = c.decode()?;
            values.push(after_sort.into());
            values.push(after_id.into());
            format!("AND ({sort_col}, {id_col}) {cmp} (?{}, ?{})", values.len() - 1, values.len())
        }
        None => String::new(),
    };
    values.push(i64::from(page.limit + 1).into());
    let sql = format!(
        "SELECT {columns}, {sort_col}, {id_col} FROM {table} WHERE {filter} {after} \
         ORDER BY {sort_col} {dir}, {id_col} {dir} LIMIT ?{}",
        values.len()
    );
    let mut stmt = tx.prepare_cached(&sql).map_err(backend)?;
    let mut rows = stmt.query(rusqlite::params_from_iter(values)).map_err(backend)?;
    let limit = page.limit as usize;
    let mut items = Vec::with_capacity(limit.min(256));
    // The last row's position (for the cursor), in buffers reused row to row.
    let (mut sort, mut id) = (String::new(), String::new());
    let mut has_more = false;
    while let Some(row) = rows.next().map_err(backend)? {
        if items.len() == limit {
            has_more = true;
            break;
        }
        items.push(read(row)?);
        sort.clear();
        sort.push_str(text_at(row, count)?);
        id.clear();
        id.push_str(text_at(row, count + 1)?);
    }
    let next = (has_more && !items.is_empty()).then(|| Cursor::encode(&(sort, id)));
    Ok(Page { items, next })
}

/// Column `i` of `row` as text, borrowed from the row.
fn text_at<'r>(row: &'r rusqlite::Row<'_>, i: usize) -> StoreResult<&'r str> {
    row.get_ref(i).map_err(backend)?.as_str().map_err(|e| StoreError::Corrupt(e.to_string()))
}

/// The records a query selects as its first column, decoded.
pub(super) fn docs<T: DeserializeOwned>(
    tx: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
) -> StoreResult<Vec<T>> {
    let mut stmt = tx.prepare_cached(sql).map_err(backend)?;
    let texts = stmt
        .query_map(params, |r| r.get::<_, String>(0))
        .map_err(backend)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(backend)?;
    texts.iter().map(|d| decode(d)).collect()
}

/// The records `select` (a query ending in `IN`, its own parameters in
/// `args`) finds for `ids`, asked in batches of a few hundred ids.
fn docs_by_ids<T: DeserializeOwned>(
    tx: &Connection,
    select: &str,
    args: &[String],
    ids: &[String],
) -> StoreResult<Vec<T>> {
    let mut found = Vec::with_capacity(ids.len());
    for batch in ids.chunks(500) {
        let marks: Vec<String> = (0..batch.len()).map(|i| format!("?{}", args.len() + i + 1)).collect();
        let sql = format!("{select} ({})", marks.join(", "));
        let values = args.iter().chain(batch).map(String::as_str);
        found.extend(docs(tx, &sql, rusqlite::params_from_iter(values))?);
    }
    Ok(found)
}

pub(super) fn exists(tx: &Connection, table: &str, id: &str) -> StoreResult<bool> {
    tx.query_row(&format!("SELECT 1 FROM {table} WHERE id = ?1"), [id], |_| Ok(()))
        .optional()
        .map(|r| r.is_some())
        .map_err(backend)
}

pub(super) fn get_doc<T: DeserializeOwned>(tx: &Connection, table: &str, id: &str) -> StoreResult<Option<T>> {
    let doc: Option<String> = tx
        .prepare_cached(&format!("SELECT doc FROM {table} WHERE id = ?1"))
        .and_then(|mut s| s.query_row([id], |r| r.get(0)).optional())
        .map_err(backend)?;
    doc.map(|d| decode(&d)).transpose()
}

/// Why a conditional update touched no row: the record is gone or changed.
pub(super) fn missing_or_conflict(tx: &Transaction<'_>, table: &str, id: &str, what: &'static str) -> StoreError {
    match exists(tx, table, id) {
        Ok(true) => StoreError::Conflict(what),
        Ok(false) => StoreError::NotFound(what),
        Err(e) => e,
    }
}

/// Whether `placement` is still the chain of folders it names: each exists in
/// `account`, each one's parent is the next, the last is at the top.
pub(super) fn placement_holds(tx: &Connection, account: AccountId, placement: &Placement) -> StoreResult<bool> {
    let mut stmt = tx.prepare_cached("SELECT account_id, parent FROM folders WHERE id = ?1").map_err(backend)?;
    for (i, folder) in placement.0.iter().enumerate() {
        let row: Option<(String, String)> =
            stmt.query_row([folder.to_string()], |r| Ok((r.get(0)?, r.get(1)?))).optional().map_err(backend)?;
        let expected_parent = folder_key(placement.0.get(i + 1).copied());
        match row {
            Some((owner, parent)) if owner == account.to_string() && parent == expected_parent => {}
            _ => return Ok(false),
        }
    }
    Ok(true)
}

/// The folder a file (`files`) or folder (`folders`) row sits in, by its
/// `folder`/`parent` column, if the row exists in `account`.
pub(super) fn parent_of(
    tx: &Connection,
    table: &str,
    column: &str,
    id: &str,
    account: AccountId,
) -> StoreResult<Option<String>> {
    let row: Option<(String, String)> = tx
        .query_row(&format!("SELECT account_id, {column} FROM {table} WHERE id = ?1"), [id], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .optional()
        .map_err(backend)?;
    Ok(row.filter(|(owner, _)| *owner == account.to_string()).map(|(_, parent)| parent))
}

/// The placement of a folder (`""`: the top) read from the folder rows: the
/// folder and those above it. Bounded like every walk up the tree.
pub(super) fn chain_from(tx: &Connection, start: &str) -> StoreResult<Placement> {
    let mut chain = Vec::new();
    let mut next = start.to_string();
    while !next.is_empty() {
        if chain.len() >= publinks_domain::access::MAX_FOLDER_DEPTH {
            return Err(StoreError::Corrupt(format!("folder {start} is deeper than the tree may go")));
        }
        let id: FolderId = next.parse().map_err(|_| StoreError::Corrupt(format!("folder id {next}")))?;
        chain.push(id);
        next = tx
            .query_row("SELECT parent FROM folders WHERE id = ?1", [&next], |r| r.get(0))
            .optional()
            .map_err(backend)?
            .unwrap_or_default();
    }
    Ok(Placement(chain))
}

/// Links stored before placements were recorded get theirs, read from the
/// tree as it is now (the tree they were checked against, since any move
/// since would have deleted them).
fn record_link_placements(conn: &mut Connection) -> StoreResult<()> {
    // Looked for first, so that an open with nothing to do takes no write lock.
    let any: bool = conn
        .query_row("SELECT EXISTS (SELECT 1 FROM links WHERE doc NOT LIKE '%\"placement\"%')", [], |r| r.get(0))
        .map_err(backend)?;
    if !any {
        return Ok(());
    }
    let tx = migration(conn)?;
    let legacy: Vec<(String, String)> = {
        let mut stmt = tx.prepare("SELECT id, doc FROM links WHERE doc NOT LIKE '%\"placement\"%'").map_err(backend)?;
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .map_err(backend)?
            .collect::<Result<_, _>>()
            .map_err(backend)?
    };
    for (id, doc) in legacy {
        let mut link: Link = decode(&doc)?;
        let start = match link.target {
            Target::File(f) => {
                tx.query_row("SELECT folder FROM files WHERE id = ?1", [f.to_string()], |r| r.get(0)).optional()
            }
            Target::Folder(f) => {
                tx.query_row("SELECT parent FROM folders WHERE id = ?1", [f.to_string()], |r| r.get(0)).optional()
            }
            Target::Collection(_) => Ok(Some(String::new())),
        }
        .map_err(backend)?;
        let Some(start) = start else { continue };
        link.placement = Some(chain_from(&tx, &start)?);
        tx.execute("UPDATE links SET doc = ?1 WHERE id = ?2", params![encode(&link), id]).map_err(backend)?;
    }
    tx.commit().map_err(backend)
}

impl EmbeddedCatalog {
    /// Opens (creating if needed) the database at `path`. A file that is not a
    /// database is reported as `Corrupt`.
    pub fn open(path: &Path) -> StoreResult<Self> {
        let mut conn = Connection::open(path).map_err(backend)?;
        configure(&conn)?;
        conn.pragma_update(None, "journal_mode", "WAL").map_err(backend)?;
        conn.pragma_update(None, "synchronous", "NORMAL").map_err(backend)?;
        conn.execute_batch(SCHEMA).map_err(backend)?;
        record_link_placements(&mut conn)?;
        guard_existing_names(&mut conn)?;
        record_listed_files(&mut conn)?;
        record_kept_files(&mut conn)?;
        let readers = (0..READERS)
            .map(|_| {
                let flags = rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX;
                let reader = Connection::open_with_flags(path, flags).map_err(backend)?;
                configure(&reader)?;
                Ok(Mutex::new(reader))
            })
            .collect::<StoreResult<Vec<_>>>()?;
        Ok(Self {
            writer: Arc::new(Mutex::new(conn)),
            readers: readers.into(),
            next_reader: Arc::new(std::sync::atomic::AtomicUsize::new(0)),
            activity: Arc::default(),
        })
    }

    /// Runs read-only `f` in one snapshot on one of the reader connections.
    pub(super) async fn read<T, F>(&self, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> StoreResult<T> + Send + 'static,
    {
        let readers = self.readers.clone();
        let i = self.next_reader.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % readers.len();
        tokio::task::spawn_blocking(move || in_snapshot(&lock(&readers[i]), f))
            .await
            .map_err(|e| StoreError::Backend(format!("store task failed: {e}")))?
    }

    /// [`read`](Self::read) on this thread when a reader connection is free
    /// now: for the point reads of a request (records by id, a link by its
    /// token) and a visitor's listing page, which take less time than
    /// handing them to a blocking thread and waking the request again (a
    /// profile of the link page under load put a quarter of its time in
    /// those hand-overs). The listing page once held up the requests behind
    /// it here (the 1,000-file listing fell by half); since its plans are
    /// prepared once and its files read from their `listed` column, five
    /// alternated pairs of runs gave the page 1.16x and the listing 1.10x
    /// (medians) here rather than on a blocking thread (README, Benchmarks).
    pub(super) async fn read_now<T, F>(&self, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> StoreResult<T> + Send + 'static,
    {
        for conn in self.readers.iter() {
            let conn = match conn.try_lock() {
                Ok(conn) => conn,
                Err(std::sync::TryLockError::Poisoned(poisoned)) => poisoned.into_inner(),
                Err(std::sync::TryLockError::WouldBlock) => continue,
            };
            return in_snapshot(&conn, f);
        }
        self.read(f).await
    }

    /// Runs `f` in one transaction on a blocking thread, committing if it succeeds.
    pub(super) async fn tx<T, F>(&self, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Transaction<'_>) -> StoreResult<T> + Send + 'static,
    {
        let conn = self.writer.clone();
        tokio::task::spawn_blocking(move || write_locked(&mut lock(&conn), f))
            .await
            .map_err(|e| StoreError::Backend(format!("store task failed: {e}")))?
    }

    /// The writer connection, for what runs its own blocking task (the
    /// activity written behind the requests).
    pub(super) fn writer(&self) -> Arc<Mutex<Connection>> {
        self.writer.clone()
    }
}

/// Runs `f` in one read transaction (one snapshot of the store) on a reader
/// connection. Its `BEGIN` and `COMMIT` are cached statements: rusqlite's
/// `Transaction` prepares its `BEGIN` and `ROLLBACK` anew each time
/// (`execute_batch`), 2.7% of a link page's samples (four reads a page)
/// against 0.1% now. The transaction ends however `f` ends, a panic
/// included, so the connection is left usable.
fn in_snapshot<T>(conn: &Connection, f: impl FnOnce(&Connection) -> StoreResult<T>) -> StoreResult<T> {
    /// Ends the read transaction when dropped.
    struct Snapshot<'c>(&'c Connection);
    impl Drop for Snapshot<'_> {
        fn drop(&mut self) {
            if !self.0.is_autocommit() {
                // Nothing was written: ending it cannot lose anything, and
                // should it fail, the next read ends it first.
                let _ = self.0.prepare_cached("COMMIT").and_then(|mut end| end.execute([]));
            }
        }
    }
    if !conn.is_autocommit() {
        // A transaction left open (its end failed): this read must not
        // see that old snapshot, nor fail for it.
        conn.prepare_cached("ROLLBACK").and_then(|mut end| end.execute([])).map_err(backend)?;
    }
    conn.prepare_cached("BEGIN").and_then(|mut begin| begin.execute([])).map_err(backend)?;
    let snapshot = Snapshot(conn);
    f(snapshot.0)
}

/// Holds a connection's lock (a panic elsewhere leaves it usable: every
/// transaction ends when its guard drops).
pub(super) fn lock(conn: &Mutex<Connection>) -> std::sync::MutexGuard<'_, Connection> {
    conn.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Runs `f` in one immediate transaction on the locked writer, committing if it succeeds.
pub(super) fn write_locked<T>(
    conn: &mut Connection,
    f: impl FnOnce(&Transaction<'_>) -> StoreResult<T>,
) -> StoreResult<T> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate).map_err(backend)?;
    let out = f(&tx)?;
    tx.commit().map_err(backend)?;
    Ok(out)
}

#[async_trait]
impl AccountStore for EmbeddedCatalog {
    async fn insert_account(&self, account: &Account) -> StoreResult<()> {
        let a = account.clone();
        self.tx(move |tx| {
            if exists(tx, "accounts", &a.id.to_string())? {
                return Err(StoreError::AlreadyExists("account"));
            }
            tx.execute(
                "INSERT INTO accounts (id, created_at, revision, doc) VALUES (?1, ?2, ?3, ?4)",
                params![a.id.to_string(), time_key(&a.created_at), a.revision as i64, encode(&a)],
            )
            .map_err(backend)?;
            Ok(())
        })
        .await
    }

    async fn account(&self, id: AccountId) -> StoreResult<Option<Account>> {
        self.read_now(move |tx| get_doc(tx, "accounts", &id.to_string())).await
    }

    async fn replace_account(&self, account: &Account) -> StoreResult<Account> {
        let mut a = account.clone();
        self.tx(move |tx| {
            let expected = a.revision;
            a.revision += 1;
            let n = tx
                .execute(
                    "UPDATE accounts SET revision = ?1, doc = ?2 WHERE id = ?3 AND revision = ?4",
                    params![a.revision as i64, encode(&a), a.id.to_string(), expected as i64],
                )
                .map_err(backend)?;
            if n == 0 {
                return Err(missing_or_conflict(tx, "accounts", &a.id.to_string(), "account"));
            }
            Ok(a)
        })
        .await
    }

    async fn list_accounts(&self, page: &PageRequest) -> StoreResult<Page<Account>> {
        let page = page.clone();
        self.read(move |tx| keyset_page(tx, "accounts", "1 = 1", &[], ("created_at", "id", false), &page)).await
    }
}

#[async_trait]
impl UserStore for EmbeddedCatalog {
    async fn insert_user(&self, user: &User) -> StoreResult<()> {
        let u = user.clone();
        self.tx(move |tx| {
            if exists(tx, "users", &u.id.to_string())? {
                return Err(StoreError::AlreadyExists("user"));
            }
            tx.execute(
                "INSERT INTO users (id, account_id, created_at, doc) VALUES (?1, ?2, ?3, ?4)",
                params![u.id.to_string(), u.account_id.to_string(), time_key(&u.created_at), encode(&u)],
            )
            .map_err(backend)?;
            Ok(())
        })
        .await
    }

    async fn user(&self, id: UserId) -> StoreResult<Option<User>> {
        self.read_now(move |tx| get_doc(tx, "users", &id.to_string())).await
    }

    async fn replace_user(&self, user: &User) -> StoreResult<()> {
        let u = user.clone();
        self.tx(move |tx| {
            let n = tx
                .execute("UPDATE users SET doc = ?1 WHERE id = ?2", params![encode(&u), u.id.to_string()])
                .map_err(backend)?;
            if n == 0 {
                return Err(StoreError::NotFound("user"));
            }
            Ok(())
        })
        .await
    }

    async fn delete_user(&self, id: UserId) -> StoreResult<()> {
        self.tx(move |tx| {
            tx.execute("DELETE FROM grants WHERE user_id = ?1", [id.to_string()]).map_err(backend)?;
            tx.execute("DELETE FROM users WHERE id = ?1", [id.to_string()]).map_err(backend)?;
            Ok(())
        })
        .await
    }

    async fn list_users(&self, account: AccountId, page: &PageRequest) -> StoreResult<Page<User>> {
        let page = page.clone();
        self.read(move |tx| {
            keyset_page(tx, "users", "account_id = ?1", &[account.to_string()], ("created_at", "id", false), &page)
        })
        .await
    }
}

#[async_trait]
impl GrantStore for EmbeddedCatalog {
    async fn put_grant(&self, grant: &Grant) -> StoreResult<()> {
        let g = grant.clone();
        self.tx(move |tx| {
            tx.execute(
                "INSERT INTO grants (user_id, target, doc) VALUES (?1, ?2, ?3) \
                 ON CONFLICT (user_id, target) DO UPDATE SET doc = excluded.doc",
                params![g.user_id.to_string(), target_key(&g.target), encode(&g)],
            )
            .map_err(backend)?;
            Ok(())
        })
        .await
    }

    async fn delete_grant(&self, user: UserId, target: Target) -> StoreResult<bool> {
        self.tx(move |tx| {
            let n = tx
                .execute(
                    "DELETE FROM grants WHERE user_id = ?1 AND target = ?2",
                    params![user.to_string(), target_key(&target)],
                )
                .map_err(backend)?;
            Ok(n > 0)
        })
        .await
    }

    async fn grants_of_user(&self, user: UserId) -> StoreResult<Vec<Grant>> {
        self.read(move |tx| docs(tx, "SELECT doc FROM grants WHERE user_id = ?1 ORDER BY target", [user.to_string()]))
            .await
    }

    async fn delete_grants_on(&self, target: Target) -> StoreResult<()> {
        self.tx(move |tx| {
            tx.execute("DELETE FROM grants WHERE target = ?1", [target_key(&target)]).map_err(backend)?;
            Ok(())
        })
        .await
    }
}

/// Writes a changed folder if its revision is still `f.revision`, bumping
/// it, and moves its name guard if its name or parent changed.
fn update_folder(tx: &Transaction<'_>, mut f: Folder) -> StoreResult<Folder> {
    let Some(stored) = get_doc::<Folder>(tx, "folders", &f.id.to_string())? else {
        return Err(StoreError::NotFound("folder"));
    };
    if stored.revision != f.revision {
        return Err(StoreError::Conflict("folder"));
    }
    let (before, after) = ((stored.parent_id, stored.name.as_str()), (f.parent_id, f.name.as_str()));
    rename_guard(tx, f.account_id, Target::Folder(f.id), before, after)?;
    let expected = f.revision;
    f.revision += 1;
    let n = tx
        .execute(
            "UPDATE folders SET parent = ?1, name_key = ?2, revision = ?3, doc = ?4 WHERE id = ?5 AND revision = ?6",
            params![
                folder_key(f.parent_id),
                name_key(&f.name),
                f.revision as i64,
                encode(&f),
                f.id.to_string(),
                expected as i64
            ],
        )
        .map_err(|e| if is_unique_violation(&e) { folder_name_clash(tx, &f) } else { backend(e) })?;
    if n == 0 {
        return Err(missing_or_conflict(tx, "folders", &f.id.to_string(), "folder"));
    }
    Ok(f)
}

#[async_trait]
impl FolderStore for EmbeddedCatalog {
    async fn insert_folder(&self, folder: &Folder, placement: &Placement) -> StoreResult<()> {
        let (f, placement) = (folder.clone(), placement.clone());
        self.tx(move |tx| {
            if exists(tx, "folders", &f.id.to_string())? {
                return Err(StoreError::AlreadyExists("folder"));
            }
            if placement.parent() != f.parent_id || !placement_holds(tx, f.account_id, &placement)? {
                return Err(StoreError::Conflict("placement"));
            }
            claim_name(tx, f.account_id, f.parent_id, &f.name, Target::Folder(f.id))?;
            tx.execute(
                "INSERT INTO folders (id, account_id, parent, name_key, revision, doc) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    f.id.to_string(),
                    f.account_id.to_string(),
                    folder_key(f.parent_id),
                    name_key(&f.name),
                    f.revision as i64,
                    encode(&f)
                ],
            )
            .map_err(|e| if is_unique_violation(&e) { folder_name_clash(tx, &f) } else { backend(e) })?;
            Ok(())
        })
        .await
    }

    async fn folder(&self, id: FolderId) -> StoreResult<Option<Folder>> {
        self.read_now(move |tx| get_doc(tx, "folders", &id.to_string())).await
    }

    async fn folders_by_ids(&self, ids: &[FolderId]) -> StoreResult<Vec<Folder>> {
        let ids: Vec<String> = ids.iter().map(ToString::to_string).collect();
        let small = ids.len() <= SMALL_BATCH;
        let read = move |tx: &Connection| docs_by_ids(tx, "SELECT doc FROM folders WHERE id IN", &[], &ids);
        if small { self.read_now(read).await } else { self.read(read).await }
    }

    async fn replace_folder(&self, folder: &Folder) -> StoreResult<Folder> {
        let f = folder.clone();
        self.tx(move |tx| update_folder(tx, f)).await
    }

    async fn move_folder(&self, folder: &Folder, placement: &Placement) -> StoreResult<Folder> {
        let (f, placement) = (folder.clone(), placement.clone());
        self.tx(move |tx| {
            if placement.parent() != f.parent_id
                || placement.is_under(f.id)
                || !placement_holds(tx, f.account_id, &placement)?
            {
                return Err(StoreError::Conflict("placement"));
            }
            update_folder(tx, f)
        })
        .await
    }

    async fn detach_folder(&self, deletion: &FolderDeletion) -> StoreResult<()> {
        let d = deletion.clone();
        self.tx(move |tx| {
            let id = d.folder.id.to_string();
            let n = tx
                .execute("DELETE FROM folders WHERE id = ?1 AND revision = ?2", params![id, d.folder.revision as i64])
                .map_err(backend)?;
            if n == 0 {
                return Err(missing_or_conflict(tx, "folders", &id, "folder"));
            }
            release_name(tx, Target::Folder(d.folder.id))?;
            let n = tx
                .execute(
                    "INSERT INTO folder_deletions (folder_id, done, created_at, revision, doc) VALUES (?1, ?2, ?3, ?4, ?5) \
                     ON CONFLICT (folder_id) DO NOTHING",
                    params![id, d.status == DeletionStatus::Done, time_key(&d.created_at), d.revision as i64, encode(&d)],
                )
                .map_err(backend)?;
            if n == 0 {
                return Err(StoreError::AlreadyExists("folder deletion"));
            }
            Ok(())
        })
        .await
    }

    async fn folder_deletion(&self, folder: FolderId) -> StoreResult<Option<FolderDeletion>> {
        self.read(move |tx| {
            let doc: Option<String> = tx
                .query_row("SELECT doc FROM folder_deletions WHERE folder_id = ?1", [folder.to_string()], |r| r.get(0))
                .optional()
                .map_err(backend)?;
            doc.map(|d| decode(&d)).transpose()
        })
        .await
    }

    async fn replace_folder_deletion(&self, deletion: &FolderDeletion) -> StoreResult<FolderDeletion> {
        let mut d = deletion.clone();
        self.tx(move |tx| {
            let expected = d.revision;
            d.revision += 1;
            let id = d.folder.id.to_string();
            let n = tx
                .execute(
                    "UPDATE folder_deletions SET done = ?1, revision = ?2, doc = ?3 WHERE folder_id = ?4 AND revision = ?5",
                    params![d.status == DeletionStatus::Done, d.revision as i64, encode(&d), id, expected as i64],
                )
                .map_err(backend)?;
            if n == 0 {
                let present = tx
                    .query_row("SELECT 1 FROM folder_deletions WHERE folder_id = ?1", [&id], |_| Ok(()))
                    .optional()
                    .map_err(backend)?
                    .is_some();
                return Err(if present {
                    StoreError::Conflict("folder deletion")
                } else {
                    StoreError::NotFound("folder deletion")
                });
            }
            Ok(d)
        })
        .await
    }

    async fn unfinished_folder_deletions(&self, limit: u32) -> StoreResult<Vec<FolderDeletion>> {
        self.read(move |tx| {
            docs(tx, "SELECT doc FROM folder_deletions WHERE done = 0 ORDER BY created_at, folder_id LIMIT ?1", [limit])
        })
        .await
    }

    async fn delete_folder(&self, id: FolderId) -> StoreResult<bool> {
        self.tx(move |tx| {
            release_name(tx, Target::Folder(id))?;
            Ok(tx.execute("DELETE FROM folders WHERE id = ?1", [id.to_string()]).map_err(backend)? > 0)
        })
        .await
    }

    async fn name_holder(
        &self,
        account: AccountId,
        parent: Option<FolderId>,
        name: &str,
    ) -> StoreResult<Option<Target>> {
        let key = name_key(name);
        self.read(move |tx| name_holder_at(tx, account, &folder_key(parent), &key)).await
    }

    async fn subfolders(
        &self,
        account: AccountId,
        parent: Option<FolderId>,
        page: &PageRequest,
    ) -> StoreResult<Page<Folder>> {
        let page = page.clone();
        self.read(move |tx| subfolders_page(tx, account, parent, &page)).await
    }
}

/// A page of the folders directly under `parent`, by name.
fn subfolders_page(
    tx: &Connection,
    account: AccountId,
    parent: Option<FolderId>,
    page: &PageRequest,
) -> StoreResult<Page<Folder>> {
    keyset_page(
        tx,
        "folders",
        "account_id = ?1 AND parent = ?2",
        &[account.to_string(), folder_key(parent)],
        ("name_key", "id", false),
        page,
    )
}

fn insert_version(tx: &Transaction<'_>, v: &FileVersion) -> StoreResult<()> {
    tx.execute(
        "INSERT INTO file_versions (file_id, number, doc) VALUES (?1, ?2, ?3) ON CONFLICT DO NOTHING",
        params![v.file_id.to_string(), v.number, encode(v)],
    )
    .map_err(backend)?;
    Ok(())
}

/// Writes a changed file if its revision is still `f.revision`, bumping it,
/// stores its current version if that is new, and moves its name guard if
/// its name or folder changed.
fn update_file(tx: &Transaction<'_>, mut f: File) -> StoreResult<File> {
    let Some(stored) = get_doc::<File>(tx, "files", &f.id.to_string())? else {
        return Err(StoreError::NotFound("file"));
    };
    if stored.revision != f.revision {
        return Err(StoreError::Conflict("file"));
    }
    let (before, after) = ((stored.folder_id, stored.name.as_str()), (f.folder_id, f.name.as_str()));
    rename_guard(tx, f.account_id, Target::File(f.id), before, after)?;
    let expected = f.revision;
    f.revision += 1;
    let kept = kept(&f);
    let n = tx
        .execute(
            "UPDATE files SET folder = ?1, name_key = ?2, revision = ?3, doc = ?4, listed = ?5, \
             kept_published = ?6, kept_shown = ?7, kept_without_identifying = ?8, kept_form = ?11, \
             kept_revision = ?3 WHERE id = ?9 AND revision = ?10",
            params![
                folder_key(f.folder_id),
                name_key(&f.name),
                f.revision as i64,
                encode(&f),
                listed(&f),
                kept.published,
                kept.shown,
                kept.shown_without_identifying,
                f.id.to_string(),
                expected as i64,
                kept_form()
            ],
        )
        .map_err(backend)?;
    if n == 0 {
        return Err(missing_or_conflict(tx, "files", &f.id.to_string(), "file"));
    }
    insert_version(tx, &f.current)?;
    Ok(f)
}

/// A page of the files in `folder`, by name (the index `files_by_folder`),
/// each decoded as `T`: a whole [`File`] from `doc`, or what a listing shows
/// of it ([`LISTED`]).
fn files_page<T: DeserializeOwned>(
    tx: &Connection,
    document: &str,
    account: AccountId,
    folder: Option<FolderId>,
    page: &PageRequest,
) -> StoreResult<Page<T>> {
    files_page_read(tx, (document, 1), account, folder, page, |row| decode(text_at(row, 0)?))
}

/// [`files_page`] with each file read by `read` from its row's first
/// `columns.1` columns (`columns.0`).
fn files_page_read<T>(
    tx: &Connection,
    columns: (&str, usize),
    account: AccountId,
    folder: Option<FolderId>,
    page: &PageRequest,
    read: impl Fn(&rusqlite::Row<'_>) -> StoreResult<T>,
) -> StoreResult<Page<T>> {
    keyset_page_read(
        tx,
        columns,
        "files",
        "account_id = ?1 AND folder = ?2",
        &[account.to_string(), folder_key(folder)],
        ("name_key", "id", false),
        page,
        read,
    )
}

/// A listing page of `folder`, read in one snapshot: its subfolders (none
/// unless `subfolders` is asked) and its files, read by `files_of`.
fn listing_page<T>(
    tx: &Connection,
    account: AccountId,
    folder: Option<FolderId>,
    subfolders: Option<&PageRequest>,
    files_of: impl FnOnce(&Connection) -> StoreResult<Page<T>>,
) -> StoreResult<(Page<Folder>, Page<T>)> {
    let folders = match subfolders {
        Some(page) => subfolders_page(tx, account, folder, page)?,
        None => Page { items: Vec::new(), next: None },
    };
    Ok((folders, files_of(tx)?))
}

/// A file's [`ListedFile`] as the files table holds it: its `listed`
/// column, or its whole document where that is missing or may be older
/// than the document (a build before the `kept_*` columns wrote the file:
/// its kept revision is not the record's).
const LISTED: &str = "CASE WHEN kept_revision IS revision THEN coalesce(listed, doc) ELSE doc END";

impl EmbeddedCatalog {
    /// The files among `ids` that exist, each decoded from its document as
    /// `T` (a whole [`File`], or the few fields of one).
    async fn file_docs<T: DeserializeOwned + Send + 'static>(&self, ids: &[FileId]) -> StoreResult<Vec<T>> {
        let ids: Vec<String> = ids.iter().map(ToString::to_string).collect();
        let small = ids.len() <= SMALL_BATCH;
        let read = move |tx: &Connection| docs_by_ids(tx, "SELECT doc FROM files WHERE id IN", &[], &ids);
        if small { self.read_now(read).await } else { self.read(read).await }
    }
}

#[async_trait]
impl FileStore for EmbeddedCatalog {
    async fn insert_file(&self, file: &File, placement: &Placement) -> StoreResult<()> {
        let (f, placement) = (file.clone(), placement.clone());
        self.tx(move |tx| {
            if exists(tx, "files", &f.id.to_string())? {
                return Err(StoreError::AlreadyExists("file"));
            }
            if placement.parent() != f.folder_id || !placement_holds(tx, f.account_id, &placement)? {
                return Err(StoreError::Conflict("placement"));
            }
            claim_name(tx, f.account_id, f.folder_id, &f.name, Target::File(f.id))?;
            insert_version(tx, &f.current)?;
            let kept = kept(&f);
            tx.execute(
                "INSERT INTO files (id, account_id, folder, name_key, revision, doc, listed, \
                 kept_published, kept_shown, kept_without_identifying, kept_form, kept_revision) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?5)",
                params![
                    f.id.to_string(),
                    f.account_id.to_string(),
                    folder_key(f.folder_id),
                    name_key(&f.name),
                    f.revision as i64,
                    encode(&f),
                    listed(&f),
                    kept.published,
                    kept.shown,
                    kept.shown_without_identifying,
                    kept_form()
                ],
            )
            .map_err(backend)?;
            Ok(())
        })
        .await
    }

    async fn file(&self, id: FileId) -> StoreResult<Option<File>> {
        self.read_now(move |tx| get_doc(tx, "files", &id.to_string())).await
    }

    async fn files_by_ids(&self, ids: &[FileId]) -> StoreResult<Vec<File>> {
        self.file_docs(ids).await
    }

    async fn file_places(&self, ids: &[FileId]) -> StoreResult<Vec<FilePlace>> {
        self.file_docs(ids).await
    }

    async fn replace_file(&self, file: &File) -> StoreResult<File> {
        let f = file.clone();
        self.tx(move |tx| update_file(tx, f)).await
    }

    async fn move_file(&self, file: &File, placement: &Placement) -> StoreResult<File> {
        let (f, placement) = (file.clone(), placement.clone());
        self.tx(move |tx| {
            if placement.parent() != f.folder_id || !placement_holds(tx, f.account_id, &placement)? {
                return Err(StoreError::Conflict("placement"));
            }
            update_file(tx, f)
        })
        .await
    }

    async fn delete_file(&self, id: FileId) -> StoreResult<Option<Vec<FileVersion>>> {
        self.tx(move |tx| {
            let versions: Vec<FileVersion> =
                docs(tx, "SELECT doc FROM file_versions WHERE file_id = ?1 ORDER BY number", [id.to_string()])?;
            tx.execute("DELETE FROM file_versions WHERE file_id = ?1", [id.to_string()]).map_err(backend)?;
            release_name(tx, Target::File(id))?;
            let gone = tx.execute("DELETE FROM files WHERE id = ?1", [id.to_string()]).map_err(backend)?;
            Ok((gone > 0).then_some(versions))
        })
        .await
    }

    async fn files_in_folder(
        &self,
        account: AccountId,
        folder: Option<FolderId>,
        page: &PageRequest,
    ) -> StoreResult<Page<File>> {
        let page = page.clone();
        self.read(move |tx| files_page(tx, "doc", account, folder, &page)).await
    }

    async fn listed_files_in_folder(
        &self,
        account: AccountId,
        folder: Option<FolderId>,
        page: &PageRequest,
    ) -> StoreResult<Page<ListedFile>> {
        let page = page.clone();
        self.read(move |tx| files_page(tx, LISTED, account, folder, &page)).await
    }

    async fn folder_listing(
        &self,
        account: AccountId,
        folder: Option<FolderId>,
        subfolders: Option<&PageRequest>,
        files: &PageRequest,
    ) -> StoreResult<(Page<Folder>, Page<ListedFile>)> {
        let (subfolders, files) = (subfolders.cloned(), files.clone());
        self.read_now(move |tx| {
            listing_page(tx, account, folder, subfolders.as_ref(), |tx| files_page(tx, LISTED, account, folder, &files))
        })
        .await
    }

    async fn folder_listing_kept(
        &self,
        account: AccountId,
        folder: Option<FolderId>,
        subfolders: Option<&PageRequest>,
        files: &PageRequest,
    ) -> StoreResult<Option<(Page<Folder>, Page<KeptFile>)>> {
        let (subfolders, files) = (subfolders.cloned(), files.clone());
        self.read_now(move |tx| {
            listing_page(tx, account, folder, subfolders.as_ref(), |tx| {
                files_page_read(tx, kept_columns(), account, folder, &files, kept_at)
            })
        })
        .await
        .map(Some)
    }

    async fn versions(&self, file: FileId) -> StoreResult<Vec<FileVersion>> {
        self.read(move |tx| {
            docs(tx, "SELECT doc FROM file_versions WHERE file_id = ?1 ORDER BY number", [file.to_string()])
        })
        .await
    }
}

#[async_trait]
impl CollectionStore for EmbeddedCatalog {
    async fn insert_collection(&self, collection: &Collection) -> StoreResult<()> {
        let c = collection.clone();
        self.tx(move |tx| {
            if exists(tx, "collections", &c.id.to_string())? {
                return Err(StoreError::AlreadyExists("collection"));
            }
            tx.execute(
                "INSERT INTO collections (id, account_id, name_key, revision, doc) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![c.id.to_string(), c.account_id.to_string(), name_key(&c.name), c.revision as i64, encode(&c)],
            )
            .map_err(backend)?;
            Ok(())
        })
        .await
    }

    async fn collection(&self, id: CollectionId) -> StoreResult<Option<Collection>> {
        self.read_now(move |tx| get_doc(tx, "collections", &id.to_string())).await
    }

    async fn replace_collection(&self, collection: &Collection) -> StoreResult<Collection> {
        let mut c = collection.clone();
        self.tx(move |tx| {
            let expected = c.revision;
            c.revision += 1;
            let n = tx
                .execute(
                    "UPDATE collections SET name_key = ?1, revision = ?2, doc = ?3 WHERE id = ?4 AND revision = ?5",
                    params![name_key(&c.name), c.revision as i64, encode(&c), c.id.to_string(), expected as i64],
                )
                .map_err(backend)?;
            if n == 0 {
                return Err(missing_or_conflict(tx, "collections", &c.id.to_string(), "collection"));
            }
            Ok(c)
        })
        .await
    }

    async fn delete_collection(&self, id: CollectionId) -> StoreResult<()> {
        self.tx(move |tx| {
            tx.execute("DELETE FROM collection_items WHERE collection_id = ?1", [id.to_string()]).map_err(backend)?;
            tx.execute("DELETE FROM collections WHERE id = ?1", [id.to_string()]).map_err(backend)?;
            Ok(())
        })
        .await
    }

    async fn collections(&self, account: AccountId, page: &PageRequest) -> StoreResult<Page<Collection>> {
        let page = page.clone();
        self.read(move |tx| {
            keyset_page(tx, "collections", "account_id = ?1", &[account.to_string()], ("name_key", "id", false), &page)
        })
        .await
    }

    async fn add_to_collection(&self, item: &CollectionItem) -> StoreResult<()> {
        let i = item.clone();
        self.tx(move |tx| {
            tx.execute(
                "INSERT INTO collection_items (collection_id, file_id, added_at, doc) VALUES (?1, ?2, ?3, ?4)",
                params![i.collection_id.to_string(), i.file_id.to_string(), time_key(&i.added_at), encode(&i)],
            )
            .map_err(|e| {
                if is_unique_violation(&e) { StoreError::AlreadyExists("collection item") } else { backend(e) }
            })?;
            Ok(())
        })
        .await
    }

    async fn remove_from_collection(&self, collection: CollectionId, file: FileId) -> StoreResult<bool> {
        self.tx(move |tx| {
            let n = tx
                .execute(
                    "DELETE FROM collection_items WHERE collection_id = ?1 AND file_id = ?2",
                    params![collection.to_string(), file.to_string()],
                )
                .map_err(backend)?;
            Ok(n > 0)
        })
        .await
    }

    async fn collection_items(
        &self,
        collection: CollectionId,
        page: &PageRequest,
    ) -> StoreResult<Page<CollectionItem>> {
        let page = page.clone();
        self.read(move |tx| {
            keyset_page(
                tx,
                "collection_items",
                "collection_id = ?1",
                &[collection.to_string()],
                ("added_at", "file_id", false),
                &page,
            )
        })
        .await
    }

    async fn collections_of_file(&self, file: FileId) -> StoreResult<Vec<CollectionId>> {
        self.read(move |tx| {
            // The ids are JSON strings as a text column is: decode them as documents would be.
            let sql = "SELECT json_quote(collection_id) FROM collection_items WHERE file_id = ?1";
            docs(tx, sql, [file.to_string()])
        })
        .await
    }

    async fn members_among(&self, collection: CollectionId, files: &[FileId]) -> StoreResult<Vec<FileId>> {
        let ids: Vec<String> = files.iter().map(ToString::to_string).collect();
        self.read(move |tx| {
            let sql = "SELECT json_quote(file_id) FROM collection_items WHERE collection_id = ?1 AND file_id IN";
            docs_by_ids(tx, sql, &[collection.to_string()], &ids)
        })
        .await
    }
}

#[async_trait]
impl UploadStore for EmbeddedCatalog {
    async fn insert_upload(&self, upload: &Upload) -> StoreResult<()> {
        let u = upload.clone();
        self.tx(move |tx| {
            if exists(tx, "uploads", &u.id.to_string())? {
                return Err(StoreError::AlreadyExists("upload"));
            }
            tx.execute("INSERT INTO uploads (id, doc) VALUES (?1, ?2)", params![u.id.to_string(), encode(&u)])
                .map_err(backend)?;
            Ok(())
        })
        .await
    }

    async fn upload(&self, id: UploadId) -> StoreResult<Option<Upload>> {
        self.read_now(move |tx| get_doc(tx, "uploads", &id.to_string())).await
    }

    async fn replace_upload(&self, upload: &Upload) -> StoreResult<Upload> {
        let mut u = upload.clone();
        self.tx(move |tx| {
            let stored: Option<Upload> = get_doc(tx, "uploads", &u.id.to_string())?;
            match stored {
                None => return Err(StoreError::NotFound("upload")),
                Some(s) if s.revision != u.revision => return Err(StoreError::Conflict("upload")),
                Some(_) => {}
            }
            u.revision += 1;
            tx.execute("UPDATE uploads SET doc = ?1 WHERE id = ?2", params![encode(&u), u.id.to_string()])
                .map_err(backend)?;
            Ok(u)
        })
        .await
    }

    async fn delete_upload(&self, id: UploadId) -> StoreResult<()> {
        self.tx(move |tx| {
            tx.execute("DELETE FROM uploads WHERE id = ?1", [id.to_string()]).map_err(backend)?;
            Ok(())
        })
        .await
    }
}

impl EmbeddedCatalog {
    /// Every upload on record, for the local sweep (what DynamoDB's TTL and
    /// the assets bucket's lifecycle rule do in AWS). The table holds only
    /// uploads in flight and those finished within a day.
    pub async fn every_upload(&self) -> StoreResult<Vec<Upload>> {
        self.read(move |tx| docs(tx, "SELECT doc FROM uploads ORDER BY id", [])).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    /// A page query's statement, cached, run with its `LIMIT` bound anew
    /// each time; how many times SQLite prepared it again.
    fn repreparations_of_a_page_query(conn: &Connection) -> usize {
        conn.execute_batch("CREATE TABLE t (k TEXT PRIMARY KEY); INSERT INTO t VALUES ('a'), ('b'), ('c');").unwrap();
        let sql = "SELECT k FROM t WHERE k > ?1 ORDER BY k LIMIT ?2";
        for limit in [2, 2, 3, 201, 201] {
            let mut stmt = conn.prepare_cached(sql).unwrap();
            let keys: Vec<String> =
                stmt.query_map(params!["", limit], |r| r.get(0)).unwrap().collect::<Result<_, _>>().unwrap();
            assert_eq!(keys.len(), 3.min(limit as usize));
        }
        conn.prepare_cached(sql).unwrap().get_status(rusqlite::StatementStatus::RePrepare) as usize
    }

    #[test]
    fn cached_page_queries_are_not_prepared_again_for_each_limit() {
        let conn = Connection::open_in_memory().unwrap();
        configure(&conn).unwrap();
        assert_eq!(repreparations_of_a_page_query(&conn), 0);
        // What `configure` prevents: SQLite's default.
        let plain = Connection::open_in_memory().unwrap();
        assert!(repreparations_of_a_page_query(&plain) >= 4);
    }

    #[test]
    fn reads_begin_and_end_with_statements_prepared_once() {
        let conn = Connection::open_in_memory().unwrap();
        configure(&conn).unwrap();
        for _ in 0..5 {
            in_snapshot(&conn, |c| {
                assert!(!c.is_autocommit(), "the read runs in a transaction");
                Ok(())
            })
            .unwrap();
        }
        assert!(conn.is_autocommit(), "every read ended its transaction");
        for sql in ["BEGIN", "COMMIT"] {
            let runs = conn.prepare_cached(sql).unwrap().get_status(rusqlite::StatementStatus::Run);
            assert_eq!(runs, 5, "{sql} is one statement, run once a read");
        }
    }

    #[test]
    fn a_read_that_fails_or_panics_leaves_its_connection_usable() {
        let conn = Connection::open_in_memory().unwrap();
        configure(&conn).unwrap();
        let failed: StoreResult<()> = in_snapshot(&conn, |_| Err(StoreError::Backend("refused".into())));
        assert!(failed.is_err());
        assert!(conn.is_autocommit());
        let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            in_snapshot(&conn, |_| -> StoreResult<()> { panic!("a bug in a read") })
        }));
        assert!(panicked.is_err());
        assert!(conn.is_autocommit(), "the panic ended the transaction");
        assert_eq!(
            in_snapshot(&conn, |c| c.query_row("SELECT 7", [], |r| r.get::<_, i64>(0)).map_err(backend)).unwrap(),
            7
        );
        // A transaction left open on the connection, however it came to be.
        conn.execute_batch("BEGIN").unwrap();
        let read = in_snapshot(&conn, |c| c.query_row("SELECT 8", [], |r| r.get::<_, i64>(0)).map_err(backend));
        assert_eq!(read.unwrap(), 8);
        assert!(conn.is_autocommit());
    }

    fn file(account: AccountId, name: &str, age_secs: i64) -> File {
        let id = FileId::new();
        let at = Utc::now() - chrono::Duration::seconds(age_secs);
        let current = FileVersion {
            file_id: id,
            number: 1,
            blob_key: format!("k/{id}"),
            content_type: "image/jpeg".into(),
            size: 1,
            crc32: 0,
            sha256: String::new(),
            e_tag: None,
            width: None,
            height: None,
            embedded_metadata: BTreeMap::new(),
            uploaded_by: UserId::new(),
            uploaded_at: at,
        };
        File {
            id,
            account_id: account,
            folder_id: None,
            name: name.into(),
            owner_id: UserId::new(),
            tags: vec![],
            ai_tags: vec![],
            custom_coordinates: vec![],
            custom_metadata: BTreeMap::new(),
            comments: vec![],
            private: false,
            published: true,
            current,
            created_at: at,
            updated_at: at,
            revision: 0,
        }
    }

    /// A store made before files had a `listed` column gets it, filled from
    /// each file's document, when opened; the listing reads it, writes keep
    /// it current, and a row without it is read from its document.
    #[tokio::test]
    async fn files_stored_before_the_listed_column_are_listed_as_before_and_kept_current() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("catalog.sqlite3");
        let acc = AccountId::new();
        let mut files: Vec<File> = ["b.jpg", "a.jpg", "c.jpg"].iter().map(|n| file(acc, n, 10)).collect();
        files[0].current.embedded_metadata = BTreeMap::from([("Model".into(), "X100 \"é\"".into())]);
        {
            let catalog = EmbeddedCatalog::open(&path).unwrap();
            for f in &files {
                catalog.insert_file(f, &Placement::default()).await.unwrap();
            }
            // As a store was before the column: a table without it, at version 1.
            catalog
                .tx(|tx| {
                    tx.execute_batch("ALTER TABLE files DROP COLUMN listed; PRAGMA user_version = 1").map_err(backend)
                })
                .await
                .unwrap();
        }
        let catalog = EmbeddedCatalog::open(&path).unwrap();
        let stored: Vec<Option<String>> = catalog
            .read(|tx| {
                let mut stmt = tx.prepare("SELECT listed FROM files ORDER BY name_key").map_err(backend)?;
                stmt.query_map([], |r| r.get(0)).map_err(backend)?.collect::<Result<_, _>>().map_err(backend)
            })
            .await
            .unwrap();
        let mut by_name = files.clone();
        by_name.sort_by(|a, b| a.name.cmp(&b.name));
        let expected: Vec<Option<String>> = by_name.iter().map(|f| Some(listed(f))).collect();
        assert_eq!(stored, expected, "every file got its listed fields");
        let page = catalog.listed_files_in_folder(acc, None, &PageRequest::first(10)).await.unwrap();
        assert_eq!(page.items, by_name.iter().map(ListedFile::from).collect::<Vec<_>>());
        // A rename and a new size are listed at once.
        let mut changed = files[1].clone();
        changed.name = "z.jpg".into();
        changed.current.size = 99;
        let changed = catalog.replace_file(&changed).await.unwrap();
        let page = catalog.listed_files_in_folder(acc, None, &PageRequest::first(10)).await.unwrap();
        assert_eq!(page.items.last(), Some(&ListedFile::from(&changed)));
        // A row whose column is empty is read from its document.
        catalog.tx(|tx| tx.execute("UPDATE files SET listed = NULL", []).map_err(backend)).await.unwrap();
        let again = catalog.listed_files_in_folder(acc, None, &PageRequest::first(10)).await.unwrap();
        assert_eq!(again.items, page.items);
    }

    /// What a visitor's listing shows of each file is kept with it: a store
    /// made before the `kept` column gets it when opened, and one made with
    /// another [`KeptFile::FORM`] has it remade for every file; the listing
    /// reads it as it is.
    #[tokio::test]
    async fn files_kept_before_their_column_or_in_another_form_are_remade_when_opened() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("catalog.sqlite3");
        let acc = AccountId::new();
        let mut files: Vec<File> = ["b.jpg", "a.jpg", "c.jpg"].iter().map(|n| file(acc, n, 10)).collect();
        files[0].current.embedded_metadata = BTreeMap::from([("GPSLatitude".into(), "1 deg \"N\"".into())]);
        // Another account's files, more than one batch of the remaking.
        let others = AccountId::new();
        {
            let catalog = EmbeddedCatalog::open(&path).unwrap();
            for f in &files {
                catalog.insert_file(f, &Placement::default()).await.unwrap();
            }
            for i in 0..1_500 {
                catalog.insert_file(&file(others, &format!("{i:04}.jpg"), i), &Placement::default()).await.unwrap();
            }
        }
        let mut by_name = files.clone();
        by_name.sort_by(|a, b| a.name.cmp(&b.name));
        let expected: Vec<KeptFile> = by_name.iter().map(kept).collect();
        let stored = |catalog: EmbeddedCatalog| async move {
            let remade: i64 = catalog
                .read(move |tx| {
                    let kept_of_others: i64 = tx
                        .query_row(
                            "SELECT count(*) FROM files WHERE account_id = ?1 AND kept_shown LIKE '{\"id\":%'",
                            [others.to_string()],
                            |r| r.get(0),
                        )
                        .map_err(backend)?;
                    Ok(kept_of_others)
                })
                .await
                .unwrap();
            assert_eq!(remade, 1_500, "every file of the other account is remade");
            catalog
                .read(move |tx| {
                    let mut stmt = tx
                        .prepare(&format!(
                            "SELECT {} FROM files WHERE account_id = ?1 ORDER BY name_key",
                            kept_columns().0
                        ))
                        .map_err(backend)?;
                    let mut rows = stmt.query([acc.to_string()]).map_err(backend)?;
                    let mut kept = Vec::new();
                    while let Some(row) = rows.next().map_err(backend)? {
                        kept.push(kept_at(row)?);
                    }
                    Ok(kept)
                })
                .await
                .unwrap()
        };
        for before in [
            "ALTER TABLE files DROP COLUMN kept_published; ALTER TABLE files DROP COLUMN kept_shown; \
             ALTER TABLE files DROP COLUMN kept_without_identifying; ALTER TABLE files DROP COLUMN kept_form; \
             ALTER TABLE files DROP COLUMN kept_revision; DELETE FROM kept_forms",
            "UPDATE files SET kept_shown = '{}', kept_without_identifying = NULL, kept_form = '0'; \
             UPDATE kept_forms SET form = '0'",
        ] {
            EmbeddedCatalog::open(&path)
                .unwrap()
                .tx(move |tx| tx.execute_batch(before).map_err(backend))
                .await
                .unwrap();
            let catalog = EmbeddedCatalog::open(&path).unwrap();
            let (_, page) =
                catalog.folder_listing_kept(acc, None, None, &PageRequest::first(10)).await.unwrap().unwrap();
            assert_eq!(page.items, expected, "listed as made from each file, after `{before}`");
            assert_eq!(stored(catalog).await, expected, "and stored so");
        }
        assert!(expected[1].shown_without_identifying.is_some(), "b.jpg's both forms");
    }

    /// Two processes (here, threads with connections of their own) opening
    /// a store that needs remaking at once: both open it, and what it keeps
    /// is right. Without the write lock taken first, the
    /// second failed to write on the snapshot the first had changed.
    #[test]
    fn stores_that_need_remaking_opened_at_once_both_open_remade() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("catalog.sqlite3");
        let acc = AccountId::new();
        let files: Vec<File> = (0..300).map(|i| file(acc, &format!("{i:03}.jpg"), i)).collect();
        let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
        runtime.block_on(async {
            let catalog = EmbeddedCatalog::open(&path).unwrap();
            for f in &files {
                catalog.insert_file(f, &Placement::default()).await.unwrap();
            }
        });
        for round in 0..20 {
            let stale = Connection::open(&path).unwrap();
            stale
                .execute_batch("UPDATE files SET kept_shown = '{}', kept_form = '0'; UPDATE kept_forms SET form = '0'")
                .unwrap();
            drop(stale);
            let barrier = std::sync::Barrier::new(2);
            std::thread::scope(|scope| {
                let opens: Vec<_> = (0..2)
                    .map(|_| {
                        scope.spawn(|| {
                            barrier.wait();
                            EmbeddedCatalog::open(&path).map(drop)
                        })
                    })
                    .collect();
                for open in opens {
                    assert_eq!(open.join().unwrap(), Ok(()), "round {round}");
                }
            });
            let catalog = EmbeddedCatalog::open(&path).unwrap();
            let (_, page) = runtime
                .block_on(catalog.folder_listing_kept(acc, None, None, &PageRequest::first(300)))
                .unwrap()
                .unwrap();
            assert_eq!(page.items, files.iter().map(kept).collect::<Vec<_>>(), "round {round}");
        }
    }

    /// A file written by a build before the kept JSON (its document and
    /// revision changed, its `kept_*` columns not), or whose JSON another
    /// build made, is listed as its document says, never as a kept JSON
    /// made of another revision or form: a draft stays hidden, a new name
    /// shows.
    /// Runs `sql` with `args` in a transaction of its own, as another
    /// build (or a hand) might write the database.
    async fn write_raw(catalog: &EmbeddedCatalog, sql: &'static str, args: Vec<String>) {
        catalog
            .tx(move |tx| tx.execute(sql, rusqlite::params_from_iter(args)).map(drop).map_err(backend))
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn files_written_without_their_kept_json_are_listed_from_their_documents() {
        let dir = tempfile::tempdir().unwrap();
        let catalog = EmbeddedCatalog::open(&dir.path().join("catalog.sqlite3")).unwrap();
        let acc = AccountId::new();
        let (mut a, b) = (file(acc, "a.jpg", 10), file(acc, "b.jpg", 10));
        for f in [&a, &b] {
            catalog.insert_file(f, &Placement::default()).await.unwrap();
        }
        // As an older build writes: the document and revision, nothing kept.
        a.published = !a.published;
        a.current.embedded_metadata = BTreeMap::from([("GPSLatitude".into(), "1 deg".into())]);
        a.revision += 1;
        let (id, doc, missing) = (a.id.to_string(), encode(&a), b.id.to_string());
        write_raw(&catalog, "UPDATE files SET doc = ?1, revision = revision + 1 WHERE id = ?2", vec![doc, id]).await;
        write_raw(
            &catalog,
            "UPDATE files SET kept_published = NULL, kept_shown = NULL, kept_without_identifying = NULL, \
             kept_revision = NULL WHERE id = ?1",
            vec![missing],
        )
        .await;
        let (_, page) = catalog.folder_listing_kept(acc, None, None, &PageRequest::first(10)).await.unwrap().unwrap();
        assert_eq!(page.items, [kept(&a), kept(&b)]);
        assert_ne!(page.items[0].published, b.published, "a's draft state is its document's");
        let listed = catalog.listed_files_in_folder(acc, None, &PageRequest::first(10)).await.unwrap().items;
        assert_eq!(listed, [ListedFile::from(&a), ListedFile::from(&b)], "its listed fields too");

        // A kept JSON another build made (of another form) is not served.
        write_raw(
            &catalog,
            "UPDATE files SET kept_published = 1, kept_shown = '{}', kept_without_identifying = NULL, \
             kept_form = 'another', kept_revision = revision WHERE id = ?1",
            vec![a.id.to_string()],
        )
        .await;
        let (_, page) = catalog.folder_listing_kept(acc, None, None, &PageRequest::first(10)).await.unwrap().unwrap();
        assert_eq!(page.items[0], kept(&a));
    }

    /// A data directory from before names were guarded holds two files of
    /// one name: opening it guards the older one's name and leaves the other
    /// as it is — editable, listed — while new writes can no longer add to them.
    #[tokio::test]
    async fn duplicates_from_before_names_were_guarded_stay_and_no_new_ones_come() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("catalog.sqlite3");
        let acc = AccountId::new();
        let (older, newer) = (file(acc, "dup.jpg", 60), file(acc, "DUP.jpg", 30));
        {
            let catalog = EmbeddedCatalog::open(&path).unwrap();
            for f in [&older, &newer] {
                catalog.insert_file(f, &Placement::default()).await.unwrap();
                // As the data was before: no guard.
                catalog.tx(move |tx| tx.execute("DELETE FROM names", []).map_err(backend)).await.unwrap();
            }
            catalog.tx(|tx| tx.pragma_update(None, "user_version", 0).map_err(backend)).await.unwrap();
        }
        let catalog = EmbeddedCatalog::open(&path).unwrap();
        assert_eq!(catalog.name_holder(acc, None, "Dup.JPG").await.unwrap(), Some(Target::File(older.id)));
        let listed = catalog.files_in_folder(acc, None, &PageRequest::first(10)).await.unwrap().items;
        assert_eq!(listed.len(), 2, "both stay");
        let third = file(acc, "dup.JPG", 0);
        assert_eq!(
            catalog.insert_file(&third, &Placement::default()).await,
            Err(StoreError::NameTaken { holder: Target::File(older.id) })
        );
        let mut tagged = newer.clone();
        tagged.tags = vec!["kept".into()];
        let tagged = catalog.replace_file(&tagged).await.expect("the unguarded duplicate can still be edited");
        let mut renamed = tagged.clone();
        renamed.name = "other.jpg".into();
        let renamed = catalog.replace_file(&renamed).await.expect("and renamed to a free name");
        let mut back = renamed.clone();
        back.name = "dup.jpg".into();
        assert_eq!(catalog.replace_file(&back).await, Err(StoreError::NameTaken { holder: Target::File(older.id) }));
        drop(catalog);
        let reopened = EmbeddedCatalog::open(&path).unwrap();
        assert_eq!(reopened.name_holder(acc, None, "OTHER.jpg").await.unwrap(), Some(Target::File(newer.id)));
    }
}
