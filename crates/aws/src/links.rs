//! Public links and their audit log on DynamoDB, with the embedded store's
//! semantics (`infra/README.md` has the layout):
//!
//! - A link's item sits on the links table beside a token item (so a visitor's
//!   token is resolved by strongly consistent key reads, never an index) and
//!   two counters, one per target and one per account. Every change to a link
//!   is one transaction with those items and its audit entry on the activity
//!   table, so the limits hold exactly under any concurrency and no change goes
//!   unrecorded.
//! - The counters count every stored link, expired or not (the port's
//!   contract). DynamoDB's TTL deletes a link's item after its end without
//!   touching them: the audit-stream function, reading the links table's
//!   stream, releases them, deletes the token item and records the deletion
//!   (its audit entry's id, `{link}:deleted`, makes a repeated stream record
//!   harmless).
//! - A link's id, account, target, token hash and creation time are fixed at
//!   creation: `replace_link` changes the rest, and its item keys follow from
//!   those.

use super::catalog::{listed_in, placement_checks};
use super::layout::{self, Index};
use super::table::*;
use super::visitors::forget_activity;
use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Utc};
use publinks_domain::ids::*;
use publinks_domain::model::*;
use publinks_domain::store::*;

/// Links on the links table and their audit log on the activity table.
#[derive(Clone, Debug)]
pub struct DynamoLinks {
    links: Table,
    activity: Table,
    /// Where link targets are: creates are conditional on them, and a
    /// link's opening reads its account and shared folder there.
    catalog: Table,
}

/// A link's place item: its target and the folders above it, in its
/// account's partition, where a cascade reads them strongly consistent.
fn place_item(l: &Link) -> Item {
    let mut item = key_of(&layout::place_key(l.account_id, l.id));
    item.insert(layout::LINK.to_string(), s(l.id.to_string()));
    item.insert(layout::TARGET.to_string(), s(layout::target_part(&l.target)));
    let folders = l.placement.as_ref().map(|p| p.0.iter().map(|f| s(f.to_string())).collect()).unwrap_or_default();
    item.insert(layout::FOLDERS.to_string(), AttributeValue::L(folders));
    item
}

/// Whether a place item's link is within `scope` (as [`Link::is_within`]).
fn place_within(item: &Item, scope: &Target) -> StoreResult<bool> {
    if text_of(item, layout::TARGET)? == layout::target_part(scope) {
        return Ok(true);
    }
    let Target::Folder(folder) = scope else {
        return Ok(false);
    };
    let folder = folder.to_string();
    match item.get(layout::FOLDERS) {
        Some(AttributeValue::L(folders)) => {
            Ok(folders.iter().any(|f| matches!(f, AttributeValue::S(id) if *id == folder)))
        }
        _ => Err(StoreError::Corrupt(format!("place item {} has no folders", describe(item)))),
    }
}

/// The checks that make a link's create conditional on its target being in
/// the link's account where its placement says: the target's own item
/// first, then the folders above it.
fn target_checks(catalog: &Table, l: &Link) -> StoreResult<Vec<Write>> {
    let Some(placement) = &l.placement else {
        return Err(StoreError::Backend(format!("link {} is created without a placement", l.id)));
    };
    let account = l.account_id;
    let own = match l.target {
        Target::File(id) => (layout::file_key(&id.to_string()), layout::files_partition(account, placement.parent())),
        Target::Folder(id) => {
            (layout::folder_key(&id.to_string()), layout::subfolders_partition(account, placement.parent()))
        }
        Target::Collection(id) => (layout::collection_key(&id.to_string()), layout::collections_partition(account)),
    };
    let mut checks = vec![catalog.check_write(&own.0, listed_in(own.1))];
    checks.extend(placement_checks(catalog, account, placement));
    Ok(checks)
}

/// A link's item: its record, the attributes its lists filter on, and its TTL.
fn link_item(l: &Link) -> Item {
    let mut item = revisioned_item(&layout::link_keys(l), encode(l), l.revision);
    item.insert(layout::KIND.to_string(), s(layout::kind_part(l.target.kind())));
    if let Some(from) = l.valid_from {
        item.insert(layout::VALID_FROM.to_string(), s(layout::time_key(&from)));
    }
    if let Some(until) = l.valid_until {
        item.insert(layout::VALID_UNTIL.to_string(), s(layout::time_key(&until)));
        item.insert(layout::TTL.to_string(), ttl_at(until));
    }
    item
}

/// The item that leads from a token hash to its link, with a copy of the
/// link's record (written in the same transaction as the link item, every
/// time): a visit, the hot path, reads one item where it would read two.
fn token_item(l: &Link) -> Item {
    let mut item = item_of(&layout::token_key(&l.token_hash), encode(l));
    item.insert(layout::LINK.to_string(), s(l.id.to_string()));
    item
}

/// An audit entry's item, with the attributes its filters read.
fn audit_item(e: &AuditEntry) -> Item {
    let mut item = item_of(&layout::audit_keys(e), encode(e));
    item.insert(layout::ACCOUNT.to_string(), s(e.account_id.to_string()));
    item.insert(layout::TARGET.to_string(), s(layout::target_part(&e.target)));
    item.insert(layout::ACTION.to_string(), s(layout::action_part(e.action)));
    item
}

/// A counter may go up: it is below `limit` (a missing counter is 0).
pub(super) fn below(limit: u32) -> Condition {
    Condition::new(
        "attribute_not_exists(#count) OR #count < :limit",
        &[("#count", layout::COUNT)],
        vec![(":limit", n(limit))],
    )
}

/// A link whose validity ended at or before `now` (one without an end never matches).
fn ended_by(now: DateTime<Utc>) -> Condition {
    Condition::new("#until <= :now", &[("#until", layout::VALID_UNTIL)], vec![(":now", s(layout::time_key(&now)))])
}

/// The links in `state` at `now`, as the embedded store judges it.
fn in_state(state: LinkState, now: DateTime<Utc>) -> Condition {
    let expression = match state {
        // An exhausted link ended when its limit was reached: its `valid_until` says so.
        LinkState::Expired | LinkState::Exhausted => "#until <= :now",
        LinkState::Scheduled => "#from > :now AND (attribute_not_exists(#until) OR #until > :now)",
        LinkState::Active => {
            "(attribute_not_exists(#from) OR #from <= :now) AND (attribute_not_exists(#until) OR #until > :now)"
        }
    };
    let mut names = vec![("#until", layout::VALID_UNTIL)];
    if !matches!(state, LinkState::Expired | LinkState::Exhausted) {
        names.push(("#from", layout::VALID_FROM));
    }
    Condition::new(expression, &names, vec![(":now", s(layout::time_key(&now)))])
}

/// An attribute equals a string value.
fn equals(placeholder: &str, attribute: &str, value: String) -> Condition {
    let (name, value_placeholder) = (format!("#{placeholder}"), format!(":{placeholder}"));
    Condition::new(
        &format!("{name} = {value_placeholder}"),
        &[(&name, attribute)],
        vec![(&value_placeholder, s(value))],
    )
}

/// Oldest end first, as the embedded store hands expired links out: ordered
/// as the expiry index keys them (the end to the microsecond, then the id),
/// so a page that stops between two links ending in the same microsecond
/// resumes where the index does.
fn by_end(mut links: Vec<Link>, limit: u32) -> Vec<Link> {
    links.sort_by_cached_key(|l| (l.valid_until.as_ref().map(layout::time_key), l.id.to_string()));
    links.truncate(limit as usize);
    links
}

impl DynamoLinks {
    /// Links on `links_table` and the audit log on `activity_table`, their
    /// targets on `catalog_table`, all created from `infra/template.yaml`.
    pub fn new(
        client: Client,
        links_table: impl Into<String>,
        activity_table: impl Into<String>,
        catalog_table: impl Into<String>,
    ) -> Self {
        DynamoLinks {
            links: Table::new(client.clone(), links_table),
            activity: Table::new(client.clone(), activity_table),
            catalog: Table::new(client, catalog_table),
        }
    }

    /// The table of links, token items and counters.
    pub fn links_table(&self) -> &str {
        self.links.name()
    }

    /// The table of audit entries (shared with downloads and throttle buckets).
    pub fn activity_table(&self) -> &str {
        self.activity.name()
    }

    /// Runs `writes` and the put of `audit` (if no entry has its id) as one
    /// transaction. If the entry alone was there already, runs `writes`
    /// without it: an entry is recorded once, as in the embedded store.
    /// Positions of failed conditions are those of `writes`.
    async fn transact_with_audit(&self, writes: Vec<Write>, audit: &AuditEntry) -> Result<(), TxError> {
        let audit_at = writes.len();
        let mut all = writes.clone();
        all.push(self.activity.put_write(audit_item(audit), Some(Condition::absent())));
        match self.links.transact(all).await {
            Err(e) if e.failed_only(audit_at) => self.links.transact(writes).await,
            other => other,
        }
    }

    async fn query_links(&self, index: Index, query: &Query) -> StoreResult<Vec<Link>> {
        self.links.query_all(Some(index), query).await?.iter().map(decode).collect()
    }

    /// The link whose token hashes to `token_hash`.
    async fn token_link(&self, token_hash: &str) -> StoreResult<Option<Link>> {
        let Some(token) = self.links.get_item(&layout::token_key(token_hash)).await? else {
            return Ok(None);
        };
        // The link's copy, kept with it, is the link until the link's end:
        // only after it may TTL have removed the link item (a token item
        // outlives its link until the audit-stream function handles that), so
        // an ended link is read from its own item. Token items written before
        // they carried the copy lead to the link item too.
        if token.contains_key(layout::DOC) {
            let copy: Link = decode(&token)?;
            if copy.valid_until.is_none_or(|until| until > Utc::now()) {
                return Ok(Some(copy));
            }
        }
        self.links.get_doc(&layout::link_key(text_of(&token, layout::LINK)?)).await
    }
}

#[async_trait]
impl LinkStore for DynamoLinks {
    async fn create_link(&self, link: &Link, limits: LinkLimits, audit: &AuditEntry) -> StoreResult<()> {
        // A missing counter passes its condition whatever the limit: a limit of
        // 0 is refused here.
        if limits.per_target == 0 {
            return Err(StoreError::LimitReached { scope: LimitScope::Target, limit: 0 });
        }
        if limits.per_account == 0 {
            return Err(StoreError::LimitReached { scope: LimitScope::Account, limit: 0 });
        }
        // In the embedded store's order of precedence: the target, the
        // limits, then the link's id, then its token.
        let mut writes = target_checks(&self.catalog, link)?;
        let checks = writes.len();
        writes.extend([
            self.links.add_write(
                &layout::target_counter_key(&link.target),
                layout::COUNT,
                1,
                Some(below(limits.per_target)),
            ),
            self.links.add_write(
                &layout::account_counter_key(link.account_id),
                layout::COUNT,
                1,
                Some(below(limits.per_account)),
            ),
            self.links.put_write(link_item(link), Some(Condition::absent())),
            self.links.put_write(token_item(link), Some(Condition::absent())),
            self.links.put_write(place_item(link), None),
        ]);
        match self.transact_with_audit(writes, audit).await {
            Ok(()) => Ok(()),
            Err(e) if (0..checks).any(|i| e.failed(i)) => Err(StoreError::Conflict("link target")),
            Err(e) if e.failed(checks) => {
                Err(StoreError::LimitReached { scope: LimitScope::Target, limit: limits.per_target })
            }
            Err(e) if e.failed(checks + 1) => {
                Err(StoreError::LimitReached { scope: LimitScope::Account, limit: limits.per_account })
            }
            Err(e) if e.failed(checks + 2) => Err(StoreError::AlreadyExists("link")),
            Err(e) if e.failed(checks + 3) => Err(StoreError::AlreadyExists("link token")),
            Err(e) => Err(tx_store_error(e)),
        }
    }

    async fn link(&self, id: LinkId) -> StoreResult<Option<Link>> {
        self.links.get_doc(&layout::link_key(&id.to_string())).await
    }

    async fn link_opening(&self, token_hash: &str) -> StoreResult<Option<LinkOpening>> {
        let Some(link) = self.token_link(token_hash).await? else { return Ok(None) };
        // The account and the shared folder in one request: both are items
        // of the catalog table, read strongly consistent as their own ports do.
        let mut keys = vec![layout::account_key(&link.account_id.to_string())];
        if let Target::Folder(id) = link.target {
            keys.push(layout::folder_key(&id.to_string()));
        }
        let (mut account, mut shared_folder) = (None, None);
        for item in self.catalog.get_items(&keys).await? {
            match text_of(&item, layout::SK)? {
                layout::ACCOUNT_SORT => account = Some(decode(&item)?),
                layout::FOLDER_SORT => shared_folder = Some(decode(&item)?),
                _ => return Err(StoreError::Corrupt(format!("read as an account or a folder: {}", describe(&item)))),
            }
        }
        Ok(Some(LinkOpening { link, account, shared_folder }))
    }

    async fn replace_link(&self, link: &Link, audit: &AuditEntry) -> StoreResult<Link> {
        let mut l = link.clone();
        l.revision += 1;
        let writes = vec![
            self.links.put_write(link_item(&l), Some(Condition::revision(link.revision))),
            self.links.put_write(token_item(&l), None),
        ];
        match self.transact_with_audit(writes, audit).await {
            Ok(()) => Ok(l),
            Err(e) => match e.failed_on_existing(0) {
                Some(true) => Err(StoreError::Conflict("link")),
                Some(false) => Err(StoreError::NotFound("link")),
                None => Err(tx_store_error(e)),
            },
        }
    }

    async fn delete_link(&self, id: LinkId, audit: &AuditEntry) -> StoreResult<bool> {
        let key = layout::link_key(&id.to_string());
        for _ in 0..CHANGED_ATTEMPTS {
            // The stored record names the token item and the counters to release.
            let Some(item) = self.links.get_item(&key).await? else {
                return Ok(false);
            };
            let stored: Link = decode(&item)?;
            let writes = vec![
                self.links.delete_write(&key, Some(Condition::revision(revision_of(&item)?))),
                self.links.delete_write(&layout::token_key(&stored.token_hash), None),
                self.links.add_write(&layout::target_counter_key(&stored.target), layout::COUNT, -1, None),
                self.links.add_write(&layout::account_counter_key(stored.account_id), layout::COUNT, -1, None),
                self.links.delete_write(&layout::place_key(stored.account_id, stored.id), None),
            ];
            match self.transact_with_audit(writes, audit).await {
                Ok(()) => {
                    forget_activity(&self.activity, id, audit.at).await;
                    return Ok(true);
                }
                // Changed or deleted meanwhile: look again.
                Err(e) if e.failed(0) => continue,
                Err(e) => return Err(tx_store_error(e)),
            }
        }
        Err(StoreError::Conflict("link"))
    }

    async fn release_removed(&self, link: &Link, audit: &AuditEntry) -> StoreResult<bool> {
        if self.links.get_item(&layout::link_key(&link.id.to_string())).await?.is_some() {
            return self.delete_link(link.id, audit).await;
        }
        // The audit entry goes first: if it exists, the release happened already
        // (a stream record delivered twice, or a delete that beat TTL).
        let writes = vec![
            self.activity.put_write(audit_item(audit), Some(Condition::absent())),
            self.links.add_write(&layout::target_counter_key(&link.target), layout::COUNT, -1, None),
            self.links.add_write(&layout::account_counter_key(link.account_id), layout::COUNT, -1, None),
            self.links.delete_write(&layout::token_key(&link.token_hash), None),
            self.links.delete_write(&layout::place_key(link.account_id, link.id), None),
        ];
        match self.links.transact(writes).await {
            Ok(()) => {
                forget_activity(&self.activity, link.id, audit.at).await;
                Ok(true)
            }
            Err(e) if e.failed(0) => Ok(false),
            Err(e) => Err(tx_store_error(e)),
        }
    }

    async fn links_of_target(&self, target: Target) -> StoreResult<Vec<Link>> {
        self.query_links(Index::Gsi1, &Query::partition(layout::target_links_partition(&target))).await
    }

    async fn links_within(&self, account: AccountId, scope: Target) -> StoreResult<Vec<Link>> {
        // The place items: one strongly consistent query of the account's
        // partition, however big the tree under `scope`.
        let q = Query::partition(layout::account_partition(account)).begins_with(layout::PLACE_PREFIX);
        let mut links = Vec::new();
        for item in self.links.query_all(None, &q).await? {
            if !place_within(&item, &scope)? {
                continue;
            }
            // A place item outlives its link only until the audit-stream
            // function handles the link's TTL deletion.
            if let Some(link) = self.links.get_doc::<Link>(&layout::link_key(text_of(&item, layout::LINK)?)).await? {
                links.push(link);
            }
        }
        links.sort_by_key(|l| (l.created_at, l.id));
        Ok(links)
    }

    async fn links_of_account(
        &self,
        account: AccountId,
        query: &LinkQuery,
        page: &PageRequest,
    ) -> StoreResult<Page<Link>> {
        let mut q = Query::partition(layout::account_links_partition(account)).descending(query.newest_first);
        if let Some(kind) = query.kind {
            q = q.filter(equals("kind", layout::KIND, layout::kind_part(kind).to_string()));
        }
        if let Some(state) = query.state {
            q = q.filter(in_state(state, query.now));
        }
        self.links.list_page(Index::Gsi2, &q, page, layout::link_key, layout::link_position).await
    }

    async fn expired_links(&self, scope: ExpiredScope, now: DateTime<Utc>, limit: u32) -> StoreResult<Vec<Link>> {
        let links = match scope {
            // The sweep reads the expiry index: only links that have ended, each
            // shard's oldest ends first.
            ExpiredScope::All => {
                let mut links = Vec::new();
                let bound = layout::below_positions_after(&layout::time_key(&now));
                for shard in 0..layout::EXPIRY_SHARDS {
                    let q = Query::partition(layout::expiry_partition(shard)).below(bound.clone());
                    for item in self.links.query_first(Some(Index::Gsi3), &q, limit as usize).await? {
                        links.push(decode(&item)?);
                    }
                }
                links
            }
            // A target holds a handful of links, an account up to its limit.
            ExpiredScope::Target(t) => {
                let q = Query::partition(layout::target_links_partition(&t)).filter(ended_by(now));
                self.query_links(Index::Gsi1, &q).await?
            }
            ExpiredScope::Account(a) => {
                let q = Query::partition(layout::account_links_partition(a)).filter(ended_by(now));
                self.query_links(Index::Gsi2, &q).await?
            }
        };
        Ok(by_end(links, limit))
    }

    async fn links_ending_between(
        &self,
        after: EndPosition,
        until: DateTime<Utc>,
        limit: u32,
    ) -> StoreResult<Vec<Link>> {
        // The bounds without a link are never a link's key (they hold no
        // separator), so `BETWEEN` keeps exactly the ends in (after, until];
        // with one, the bound is that link's own key, which is left out.
        let low = match after.link {
            Some(link) => layout::sort_key(&layout::time_key(&after.end), &link.to_string()),
            None => layout::below_positions_after(&layout::time_key(&after.end)),
        };
        let high = layout::below_positions_after(&layout::time_key(&until));
        let mut links = Vec::new();
        for shard in 0..layout::EXPIRY_SHARDS {
            let q = Query::partition(layout::expiry_partition(shard)).between(low.clone(), high.clone());
            for item in self.links.query_first(Some(Index::Gsi3), &q, limit as usize + 1).await? {
                let link: Link = decode(&item)?;
                if Some(link.id) != after.link {
                    links.push(link);
                }
            }
        }
        Ok(by_end(links, limit))
    }
}

#[async_trait]
impl AuditStore for DynamoLinks {
    async fn append_audit(&self, entry: &AuditEntry) -> StoreResult<bool> {
        match self.activity.put(audit_item(entry), Some(Condition::absent())).await {
            Ok(()) => Ok(true),
            Err(PutError::Condition(_)) => Ok(false),
            Err(PutError::Store(e)) => Err(e),
        }
    }

    async fn audit_entries(
        &self,
        account: AccountId,
        query: &AuditQuery,
        page: &PageRequest,
    ) -> StoreResult<Page<AuditEntry>> {
        // The narrowest list that holds the answer: a link's, a target's, the account's.
        let (index, partition) = match (query.link, &query.target) {
            (Some(link), _) => (Index::Gsi2, layout::link_audit_partition(link)),
            (None, Some(target)) => (Index::Gsi3, layout::target_audit_partition(target)),
            (None, None) => (Index::Gsi1, layout::account_audit_partition(account)),
        };
        let mut q = Query::partition(partition).descending(true);
        if index != Index::Gsi1 {
            q = q.filter(equals("account", layout::ACCOUNT, account.to_string()));
        }
        if let (Some(_), Some(target)) = (query.link, &query.target) {
            q = q.filter(equals("target", layout::TARGET, layout::target_part(target)));
        }
        if let Some(action) = query.action {
            q = q.filter(equals("action", layout::ACTION, layout::action_part(action).to_string()));
        }
        self.activity.list_page(index, &q, page, layout::audit_key, layout::audit_position).await
    }
}
