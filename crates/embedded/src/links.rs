//! Public links and their audit log on the embedded store. Limits are checked
//! by counting links inside the same serialised transaction as the insert, so
//! they hold under any concurrency.

use super::catalog::*;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use publinks_domain::ids::*;
use publinks_domain::model::*;
use publinks_domain::store::*;
use rusqlite::{Connection, OptionalExtension, Transaction, params};

fn kind_key(kind: TargetKind) -> &'static str {
    match kind {
        TargetKind::File => "file",
        TargetKind::Folder => "folder",
        TargetKind::Collection => "collection",
    }
}

fn action_key(action: AuditAction) -> &'static str {
    match action {
        AuditAction::Created => "created",
        AuditAction::Updated => "updated",
        AuditAction::Deleted => "deleted",
    }
}

/// Live at `?N`: not yet past its validity end.
fn live(now_param: usize) -> String {
    format!("(valid_until IS NULL OR valid_until > ?{now_param})")
}

/// The number a `SELECT COUNT(*)` with one argument reads.
pub(super) fn count(tx: &Connection, sql: &str, args: [String; 1]) -> StoreResult<u32> {
    tx.query_row(sql, args, |r| r.get::<_, u32>(0)).map_err(backend)
}

fn insert_audit(tx: &Transaction<'_>, e: &AuditEntry) -> StoreResult<bool> {
    let n = tx
        .execute(
            "INSERT INTO audit (id, account_id, at, link_id, target, action, doc) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) \
             ON CONFLICT (id) DO NOTHING",
            params![
                e.id,
                e.account_id.to_string(),
                time_key(&e.at),
                e.link_id.to_string(),
                target_key(&e.target),
                action_key(e.action),
                encode(e)
            ],
        )
        .map_err(backend)?;
    Ok(n > 0)
}

fn optional_time(t: &Option<DateTime<Utc>>) -> Option<String> {
    t.as_ref().map(time_key)
}

/// Whether a link's target still exists in the link's account where the
/// link's placement says.
fn target_in_place(tx: &Transaction<'_>, l: &Link) -> StoreResult<bool> {
    let account = l.account_id;
    let Some(placement) = &l.placement else {
        return Err(StoreError::Corrupt(format!("link {} has no placement", l.id)));
    };
    let parent = match l.target {
        Target::File(id) => parent_of(tx, "files", "folder", &id.to_string(), account)?,
        Target::Folder(id) => parent_of(tx, "folders", "parent", &id.to_string(), account)?,
        Target::Collection(id) => {
            let owner: Option<String> = tx
                .query_row("SELECT account_id FROM collections WHERE id = ?1", [id.to_string()], |r| r.get(0))
                .optional()
                .map_err(backend)?;
            return Ok(owner == Some(account.to_string()) && placement.0.is_empty());
        }
    };
    Ok(parent.is_some_and(|p| p == folder_key(placement.parent())) && placement_holds(tx, account, placement)?)
}

#[async_trait]
impl LinkStore for EmbeddedCatalog {
    async fn create_link(&self, link: &Link, limits: LinkLimits, audit: &AuditEntry) -> StoreResult<()> {
        let (l, a) = (link.clone(), audit.clone());
        self.tx(move |tx| {
            if !target_in_place(tx, &l)? {
                return Err(StoreError::Conflict("link target"));
            }
            let on_target = count(tx, "SELECT COUNT(*) FROM links WHERE target = ?1", [target_key(&l.target)])?;
            if on_target >= limits.per_target {
                return Err(StoreError::LimitReached { scope: LimitScope::Target, limit: limits.per_target });
            }
            let in_account = count(tx, "SELECT COUNT(*) FROM links WHERE account_id = ?1", [l.account_id.to_string()])?;
            if in_account >= limits.per_account {
                return Err(StoreError::LimitReached { scope: LimitScope::Account, limit: limits.per_account });
            }
            if exists(tx, "links", &l.id.to_string())? {
                return Err(StoreError::AlreadyExists("link"));
            }
            tx.execute(
                "INSERT INTO links (id, account_id, target, kind, token_hash, created_at, valid_from, valid_until, revision, doc) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                params![
                    l.id.to_string(),
                    l.account_id.to_string(),
                    target_key(&l.target),
                    kind_key(l.target.kind()),
                    l.token_hash,
                    time_key(&l.created_at),
                    optional_time(&l.valid_from),
                    optional_time(&l.valid_until),
                    l.revision as i64,
                    encode(&l)
                ],
            )
            .map_err(|e| if is_unique_violation(&e) { StoreError::AlreadyExists("link token") } else { backend(e) })?;
            insert_audit(tx, &a)?;
            Ok(())
        })
        .await
    }

    async fn link(&self, id: LinkId) -> StoreResult<Option<Link>> {
        self.read_now(move |tx| get_doc(tx, "links", &id.to_string())).await
    }

    async fn link_opening(&self, token_hash: &str) -> StoreResult<Option<LinkOpening>> {
        let hash = token_hash.to_string();
        // One snapshot: a page's reads before its listing take one read
        // transaction, not three (each one's locks and its begin and end).
        self.read_now(move |tx| {
            let doc: Option<String> = tx
                .prepare_cached("SELECT doc FROM links WHERE token_hash = ?1")
                .and_then(|mut s| s.query_row([hash], |r| r.get(0)).optional())
                .map_err(backend)?;
            let Some(link) = doc.map(|d| decode::<Link>(&d)).transpose()? else { return Ok(None) };
            let account = get_doc(tx, "accounts", &link.account_id.to_string())?;
            let shared_folder = match link.target {
                Target::Folder(id) => get_doc(tx, "folders", &id.to_string())?,
                Target::File(_) | Target::Collection(_) => None,
            };
            Ok(Some(LinkOpening { link, account, shared_folder }))
        })
        .await
    }

    async fn replace_link(&self, link: &Link, audit: &AuditEntry) -> StoreResult<Link> {
        let (mut l, a) = (link.clone(), audit.clone());
        self.tx(move |tx| {
            let expected = l.revision;
            l.revision += 1;
            let n = tx
                .execute(
                    "UPDATE links SET valid_from = ?1, valid_until = ?2, revision = ?3, doc = ?4 WHERE id = ?5 AND revision = ?6",
                    params![
                        optional_time(&l.valid_from),
                        optional_time(&l.valid_until),
                        l.revision as i64,
                        encode(&l),
                        l.id.to_string(),
                        expected as i64
                    ],
                )
                .map_err(backend)?;
            if n == 0 {
                return Err(missing_or_conflict(tx, "links", &l.id.to_string(), "link"));
            }
            insert_audit(tx, &a)?;
            Ok(l)
        })
        .await
    }

    async fn delete_link(&self, id: LinkId, audit: &AuditEntry) -> StoreResult<bool> {
        let a = audit.clone();
        self.tx(move |tx| {
            let n = tx.execute("DELETE FROM links WHERE id = ?1", [id.to_string()]).map_err(backend)?;
            if n > 0 {
                insert_audit(tx, &a)?;
                crate::visitors::forget_activity(tx, id, a.at)?;
            }
            Ok(n > 0)
        })
        .await
    }

    async fn release_removed(&self, link: &Link, audit: &AuditEntry) -> StoreResult<bool> {
        let (id, a) = (link.id, audit.clone());
        self.tx(move |tx| {
            tx.execute("DELETE FROM links WHERE id = ?1", [id.to_string()]).map_err(backend)?;
            crate::visitors::forget_activity(tx, id, a.at)?;
            insert_audit(tx, &a)
        })
        .await
    }

    async fn links_of_target(&self, target: Target) -> StoreResult<Vec<Link>> {
        self.read(move |tx| {
            docs(tx, "SELECT doc FROM links WHERE target = ?1 ORDER BY created_at, id", [target_key(&target)])
        })
        .await
    }

    async fn links_within(&self, account: AccountId, scope: Target) -> StoreResult<Vec<Link>> {
        self.read(move |tx| {
            let links: Vec<Link> =
                docs(tx, "SELECT doc FROM links WHERE account_id = ?1 ORDER BY created_at, id", [account.to_string()])?;
            Ok(links.into_iter().filter(|l| l.is_within(&scope)).collect())
        })
        .await
    }

    async fn links_of_account(
        &self,
        account: AccountId,
        query: &LinkQuery,
        page: &PageRequest,
    ) -> StoreResult<Page<Link>> {
        let (query, page) = (query.clone(), page.clone());
        self.read(move |tx| {
            let mut filter = "account_id = ?1".to_string();
            let mut args = vec![account.to_string()];
            if let Some(kind) = query.kind {
                args.push(kind_key(kind).to_string());
                filter += &format!(" AND kind = ?{}", args.len());
            }
            if let Some(state) = query.state {
                args.push(time_key(&query.now));
                let n = args.len();
                filter += &match state {
                    LinkState::Expired | LinkState::Exhausted => format!(" AND valid_until <= ?{n}"),
                    LinkState::Scheduled => format!(" AND valid_from > ?{n} AND {}", live(n)),
                    LinkState::Active => format!(" AND (valid_from IS NULL OR valid_from <= ?{n}) AND {}", live(n)),
                };
            }
            keyset_page(tx, "links", &filter, &args, ("created_at", "id", query.newest_first), &page)
        })
        .await
    }

    async fn expired_links(&self, scope: ExpiredScope, now: DateTime<Utc>, limit: u32) -> StoreResult<Vec<Link>> {
        self.read(move |tx| {
            let (filter, arg) = match scope {
                ExpiredScope::All => ("?3 = ?3", String::new()),
                ExpiredScope::Target(t) => ("target = ?3", target_key(&t)),
                ExpiredScope::Account(a) => ("account_id = ?3", a.to_string()),
            };
            let sql =
                format!("SELECT doc FROM links WHERE valid_until <= ?1 AND {filter} ORDER BY valid_until LIMIT ?2");
            docs(tx, &sql, params![time_key(&now), limit, arg])
        })
        .await
    }

    async fn links_ending_between(
        &self,
        after: EndPosition,
        until: DateTime<Utc>,
        limit: u32,
    ) -> StoreResult<Vec<Link>> {
        self.read(move |tx| {
            // Without a link, every id is after '' too: only ends after `after.end` go on.
            let sql = "SELECT doc FROM links WHERE valid_until >= ?1 AND valid_until <= ?2 \
                       AND (valid_until > ?1 OR id > ?4) ORDER BY valid_until, id LIMIT ?3";
            let (end, link) = (time_key(&after.end), after.link.map(|l| l.to_string()));
            // No id is above "~": without a link, nothing ending at `end` itself is read.
            let link = link.unwrap_or_else(|| "~".into());
            docs(tx, sql, params![end, time_key(&until), limit, link])
        })
        .await
    }
}

#[async_trait]
impl AuditStore for EmbeddedCatalog {
    async fn append_audit(&self, entry: &AuditEntry) -> StoreResult<bool> {
        let e = entry.clone();
        self.tx(move |tx| insert_audit(tx, &e)).await
    }

    async fn audit_entries(
        &self,
        account: AccountId,
        query: &AuditQuery,
        page: &PageRequest,
    ) -> StoreResult<Page<AuditEntry>> {
        let (query, page) = (query.clone(), page.clone());
        self.read(move |tx| {
            let mut filter = "account_id = ?1".to_string();
            let mut args = vec![account.to_string()];
            if let Some(link) = query.link {
                args.push(link.to_string());
                filter += &format!(" AND link_id = ?{}", args.len());
            }
            if let Some(target) = query.target {
                args.push(target_key(&target));
                filter += &format!(" AND target = ?{}", args.len());
            }
            if let Some(action) = query.action {
                args.push(action_key(action).to_string());
                filter += &format!(" AND action = ?{}", args.len());
            }
            keyset_page(tx, "audit", &filter, &args, ("at", "id", true), &page)
        })
        .await
    }
}
