//! Downloads, archive jobs and throttle buckets on the activity table, with the embedded
//! store's semantics (`infra/README.md` has the layout). Neither is on the
//! links table: downloads are many and throttle buckets change on every
//! password guess, and the links table's stream is for link changes only.

use super::layout::{self, Index};
use super::table::*;
use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Utc};
use publinks_domain::ids::*;
use publinks_domain::model::*;
use publinks_domain::store::*;

/// Downloads and throttle buckets on the activity table.
#[derive(Clone, Debug)]
pub struct DynamoVisitors {
    activity: Table,
}

impl DynamoVisitors {
    /// The visitors' records on `activity_table`, created from `infra/template.yaml`.
    pub fn new(client: Client, activity_table: impl Into<String>) -> Self {
        DynamoVisitors { activity: Table::new(client, activity_table) }
    }

    /// The table this adapter uses.
    pub fn table(&self) -> &str {
        self.activity.name()
    }
}

#[async_trait]
impl DownloadStore for DynamoVisitors {
    async fn record_download(&self, record: &DownloadRecord) -> StoreResult<()> {
        self.activity.insert(item_of(&layout::download_keys(record), encode(record)), "download").await
    }

    async fn account_downloads(&self, account: AccountId, page: &PageRequest) -> StoreResult<Page<DownloadRecord>> {
        let q = Query::partition(layout::account_downloads_partition(account)).descending(true);
        self.activity.list_page(Index::Gsi1, &q, page, layout::download_key, layout::download_position).await
    }

    async fn visitor_downloads(
        &self,
        link: LinkId,
        session: &str,
        page: &PageRequest,
    ) -> StoreResult<Page<DownloadRecord>> {
        let q = Query::partition(layout::visitor_downloads_partition(link, session)).descending(true);
        self.activity.list_page(Index::Gsi2, &q, page, layout::download_key, layout::download_position).await
    }
}

#[async_trait]
impl ArchiveJobStore for DynamoVisitors {
    async fn insert_archive_job(&self, job: &ArchiveJob) -> StoreResult<()> {
        let item = revisioned_item(&layout::archive_job_keys(job), encode(job), job.revision);
        self.activity.insert(item, "archive job").await
    }

    async fn archive_job(&self, id: ArchiveId) -> StoreResult<Option<ArchiveJob>> {
        self.activity.get_doc(&layout::archive_job_key(&id.to_string())).await
    }

    async fn replace_archive_job(&self, job: &ArchiveJob) -> StoreResult<ArchiveJob> {
        let mut j = job.clone();
        j.revision += 1;
        let item = revisioned_item(&layout::archive_job_keys(&j), encode(&j), j.revision);
        self.activity.replace(item, Condition::revision(job.revision), "archive job").await?;
        Ok(j)
    }

    async fn account_archive_jobs(&self, account: AccountId, page: &PageRequest) -> StoreResult<Page<ArchiveJob>> {
        let q = Query::partition(layout::account_archives_partition(account)).descending(true);
        self.activity.list_page(Index::Gsi1, &q, page, layout::archive_job_key, layout::archive_job_position).await
    }

    async fn visitor_archive_jobs(
        &self,
        link: LinkId,
        session: &str,
        page: &PageRequest,
    ) -> StoreResult<Page<ArchiveJob>> {
        let q = Query::partition(layout::visitor_archives_partition(link, session)).descending(true);
        self.activity.list_page(Index::Gsi2, &q, page, layout::archive_job_key, layout::archive_job_position).await
    }

    async fn archive_jobs_by_fingerprint(&self, fingerprint: &str, limit: u32) -> StoreResult<Vec<ArchiveJob>> {
        let q = Query::partition(layout::fingerprint_partition(fingerprint)).descending(true);
        let items = self.activity.query_first(Some(Index::Gsi3), &q, limit as usize).await?;
        // The index may lag the table: read each job itself.
        let mut jobs = Vec::with_capacity(items.len());
        for item in &items {
            let job: ArchiveJob = decode(item)?;
            if let Some(current) = self.archive_job(job.id).await? {
                jobs.push(current);
            }
        }
        Ok(jobs)
    }
}

#[async_trait]
impl ThrottleStore for DynamoVisitors {
    async fn throttle_state(&self, key: &str) -> StoreResult<Option<ThrottleState>> {
        self.activity.get_doc(&layout::throttle_key(key)).await
    }

    async fn put_throttle_state(&self, key: &str, state: &ThrottleState, expires_at: DateTime<Utc>) -> StoreResult<()> {
        let mut s = state.clone();
        s.revision += 1;
        let mut item = revisioned_item(&layout::throttle_key(key), encode(&s), s.revision);
        item.insert(layout::TTL.to_string(), ttl_at(expires_at));
        let condition = match state.revision {
            0 => Condition::absent(),
            expected => Condition::revision(expected),
        };
        match self.activity.put(item, Some(condition)).await {
            Ok(()) => Ok(()),
            Err(PutError::Condition(_)) => Err(StoreError::Conflict("throttle")),
            Err(PutError::Store(e)) => Err(e),
        }
    }
}

#[async_trait]
impl LimitStore for DynamoVisitors {
    async fn count_up(&self, key: &str, limit: u32, expires_at: DateTime<Utc>) -> StoreResult<Option<u32>> {
        // One conditional update: concurrent requests cannot both pass the limit.
        let update = Condition::new(
            "ADD #count :one SET #ttl = :ttl",
            &[("#count", layout::COUNT), ("#ttl", layout::TTL)],
            vec![(":one", n(1)), (":ttl", ttl_at(expires_at))],
        );
        let below = Condition::new(
            "attribute_not_exists(#count) OR #count < :limit",
            &[("#count", layout::COUNT)],
            vec![(":limit", n(limit))],
        );
        match self.activity.update(&layout::limit_counter_key(key), update, Some(below)).await {
            Ok(item) => match item.get(layout::COUNT) {
                Some(AttributeValue::N(count)) => count
                    .parse()
                    .map(Some)
                    .map_err(|_| StoreError::Corrupt(format!("limit counter {key} holds {count:?}"))),
                _ => Err(StoreError::Corrupt(format!("limit counter {key} has no count"))),
            },
            Err(PutError::Condition(_)) => Ok(None),
            Err(PutError::Store(e)) => Err(e),
        }
    }

    async fn count_down(&self, key: &str) -> StoreResult<()> {
        let update = Condition::new("ADD #count :minus", &[("#count", layout::COUNT)], vec![(":minus", n(-1))]);
        let positive = Condition::new("#count > :zero", &[], vec![(":zero", n(0))]);
        match self.activity.update(&layout::limit_counter_key(key), update, Some(positive)).await {
            Ok(_) | Err(PutError::Condition(_)) => Ok(()),
            Err(PutError::Store(e)) => Err(e),
        }
    }

    async fn count(&self, key: &str) -> StoreResult<u32> {
        let Some(item) = self.activity.get_item(&layout::limit_counter_key(key)).await? else { return Ok(0) };
        match item.get(layout::COUNT) {
            Some(AttributeValue::N(count)) => {
                count.parse().map_err(|_| StoreError::Corrupt(format!("limit counter {key} holds {count:?}")))
            }
            _ => Ok(0),
        }
    }

    async fn slot(&self, key: &str) -> StoreResult<Option<Slot>> {
        let Some(item) = self.activity.get_item(&layout::limit_slot_key(key)).await? else {
            return Ok(None);
        };
        let until = text_of(&item, layout::UNTIL)?;
        let until = DateTime::parse_from_rfc3339(until)
            .map_err(|e| StoreError::Corrupt(format!("slot {key} until {until:?}: {e}")))?
            .with_timezone(&Utc);
        Ok(Some(Slot { holder: text_of(&item, layout::HOLDER)?.to_string(), until }))
    }

    async fn take_slot(&self, key: &str, slot: &Slot, replacing: Option<&str>) -> StoreResult<bool> {
        let mut item = key_of(&layout::limit_slot_key(key));
        item.insert(layout::HOLDER.to_string(), s(&slot.holder));
        item.insert(layout::UNTIL.to_string(), s(layout::time_key(&slot.until)));
        item.insert(layout::TTL.to_string(), ttl_at(slot.until + chrono::Duration::days(1)));
        let condition = match replacing {
            None => Condition::absent(),
            Some(previous) => held_by(previous),
        };
        match self.activity.put(item, Some(condition)).await {
            Ok(()) => Ok(true),
            Err(PutError::Condition(_)) => Ok(false),
            Err(PutError::Store(e)) => Err(e),
        }
    }

    async fn free_slot(&self, key: &str, holder: &str) -> StoreResult<()> {
        self.activity.delete_if(&layout::limit_slot_key(key), held_by(holder)).await.map(|_| ())
    }
}

/// The slot is held by `holder`.
fn held_by(holder: &str) -> Condition {
    Condition::new("#holder = :holder", &[("#holder", layout::HOLDER)], vec![(":holder", s(holder))])
}

/// On a counter shard of a deleted link: counting there is refused.
const DELETED: &str = "deleted";

/// How long a deleted link's counter shards stay marked: longer than any
/// visitor request that read the link before it was deleted takes.
const DELETED_LINK_KEPT: chrono::Duration = chrono::Duration::days(1);

/// How many of a deleted link's log entries the deletion itself removes (per
/// shard of the log): the rest of a long log is left to the entries' own
/// `ttl`, so a deletion's time does not grow with its link's visits.
const LOG_FORGOTTEN_PER_SHARD: usize = 250;

/// Done after the transaction that deleted a link, and best-effort (the link
/// is gone whatever happens here; a failure is logged, and what it leaves
/// expires by its `ttl`): replaces each of the link's counter shards with a
/// mark that the link is deleted (no counter, its `ttl` a day later), then
/// deletes its log. A visit that read the link before its deletion and
/// counts after the mark is refused and takes its entry back; one that
/// counted before is overwritten by the mark, its entry (written before its
/// count) there for the log's deletion to find. The marks are not part of
/// the deletion's transaction, where a busy link's visits, updating the
/// same shards, could make it fail.
pub(super) async fn forget_activity(activity: &Table, link: LinkId, at: DateTime<Utc>) {
    let marks = (0..layout::ACTIVITY_SHARDS).map(|shard| {
        let mut item = key_of(&layout::activity_counter_key(link, shard));
        item.insert(DELETED.to_string(), AttributeValue::Bool(true));
        item.insert(layout::TTL.to_string(), ttl_at(at + DELETED_LINK_KEPT));
        activity.put(item, None)
    });
    let marked = futures_util::future::join_all(marks).await;
    if let Some(Err(PutError::Store(e))) = marked.into_iter().find(Result::is_err) {
        tracing::warn!(link = %link, error = %e, "a deleted link's counters were not all marked; they expire with the link's usage");
    }
    if let Err(e) = forget_log(activity, link).await {
        tracing::warn!(link = %link, error = %e, "a deleted link's log was not all deleted; its entries expire by their ttl");
    }
}

/// Deletes a deleted link's activity log: one `Query` per shard of the log
/// (its first [`LOG_FORGOTTEN_PER_SHARD`] entries), then the entries. An
/// entry the index does not show yet (written within about a second of the
/// deletion, read eventually) is left to its own `ttl`.
async fn forget_log(activity: &Table, link: LinkId) -> StoreResult<()> {
    let mut keys = Vec::new();
    for shard in 0..layout::ACTIVITY_SHARDS {
        let q = Query::partition(layout::activity_log_partition(link, shard));
        for item in activity.query_first(Some(Index::Gsi1), &q, LOG_FORGOTTEN_PER_SHARD).await? {
            let entry: ActivityEntry = decode(&item)?;
            keys.push(layout::activity_key(&entry.id.to_string()));
        }
    }
    activity.delete_all(None, keys).await.map_err(tx_store_error)
}

/// The attribute each event adds one to on its counter shard.
fn counter_of(event: LinkEvent) -> Option<&'static str> {
    match event {
        LinkEvent::PageOpened => Some("page_opens"),
        LinkEvent::SessionStarted => Some("sessions"),
        LinkEvent::WrongPassword => Some("wrong_passwords"),
        LinkEvent::FileViewed => Some("file_views"),
        LinkEvent::Downloaded => Some("downloads"),
        LinkEvent::ArchiveRequested => Some("archives"),
        LinkEvent::ArchiveDownloaded => None,
    }
}

const FIRST_ACCESS: &str = "first_access";
const LAST_ACCESS: &str = "last_access";
const BYTES_SERVED: &str = "bytes_served";

/// The shard an entry goes to: from the last byte of its id, random in
/// every id (activity ids begin with their time), so writes spread evenly.
fn shard_of(entry: &ActivityEntry) -> u32 {
    u32::from(entry.id.0.as_bytes()[15]) % layout::ACTIVITY_SHARDS
}

/// The counters one shard item holds.
fn counters_of(item: &Item) -> StoreResult<LinkActivity> {
    let number = |name: &str| -> StoreResult<u64> {
        match item.get(name) {
            Some(AttributeValue::N(v)) => {
                v.parse().map_err(|_| StoreError::Corrupt(format!("activity counter {name} holds {v:?}")))
            }
            None => Ok(0),
            Some(other) => Err(StoreError::Corrupt(format!("activity counter {name} is {other:?}"))),
        }
    };
    let time = |name: &str| -> StoreResult<Option<DateTime<Utc>>> {
        match item.get(name) {
            Some(AttributeValue::S(t)) => DateTime::parse_from_rfc3339(t)
                .map(|t| Some(t.with_timezone(&Utc)))
                .map_err(|e| StoreError::Corrupt(format!("activity {name} {t:?}: {e}"))),
            _ => Ok(None),
        }
    };
    Ok(LinkActivity {
        page_opens: number("page_opens")?,
        sessions: number("sessions")?,
        file_views: number("file_views")?,
        downloads: number("downloads")?,
        archives: number("archives")?,
        bytes_served: number(BYTES_SERVED)?,
        wrong_passwords: number("wrong_passwords")?,
        first_access: time(FIRST_ACCESS)?,
        last_access: time(LAST_ACCESS)?,
    })
}

#[async_trait]
impl ActivityStore for DynamoVisitors {
    /// Two writes, one after the other, each to one of the link's shards:
    /// the log entry (`PutItem`, its `ttl` the end of its retention), then
    /// an `UpdateItem` adding to a counter shard, refused on a deleted
    /// link's mark (the entry is then deleted again: see [`forget_activity`]).
    async fn record_activity(&self, entry: &ActivityEntry) -> StoreResult<()> {
        let shard = shard_of(entry);
        let mut item = item_of(&layout::activity_keys(entry, shard), encode(entry));
        item.insert(layout::TTL.to_string(), ttl_at(entry.keep_until));
        let log = self.activity.insert(item, "activity");
        let at = s(layout::time_key(&entry.at));
        let mut names = vec![("#bytes", BYTES_SERVED), ("#first", FIRST_ACCESS), ("#last", LAST_ACCESS)];
        let mut expression = "ADD #bytes :bytes".to_string();
        let mut values = vec![(":bytes", n(entry.bytes)), (":at", at)];
        if let Some(counter) = counter_of(entry.event) {
            names.push(("#counter", counter));
            values.push((":one", n(1)));
            expression.push_str(", #counter :one");
        }
        // Two requests racing on one shard may land in either order: the
        // last access is then that of the one written last (milliseconds apart).
        expression.push_str(" SET #first = if_not_exists(#first, :at), #last = :at");
        let update = Condition::new(&expression, &names, values);
        let key = layout::activity_counter_key(entry.link_id, shard);
        // The entry first, then the count, refused on a deleted link's shard:
        // an entry written before its link's deletion is there for the
        // deletion to find, and one written after is taken back.
        log.await?;
        let live = Condition::new("attribute_not_exists(#deleted)", &[("#deleted", DELETED)], vec![]);
        match self.activity.update(&key, update, Some(live)).await {
            Ok(_) => Ok(()),
            Err(PutError::Condition(_)) => {
                self.activity.delete_if(&layout::activity_key(&entry.id.to_string()), Condition::present()).await?;
                Ok(())
            }
            Err(PutError::Store(e)) => Err(e),
        }
    }

    async fn link_activity(&self, link: LinkId) -> StoreResult<LinkActivity> {
        Ok(self.links_activity(&[link]).await?.pop().map(|(_, a)| a).unwrap_or_default())
    }

    /// One `BatchGetItem` per 12 links (8 shards each, 100 keys a request).
    async fn links_activity(&self, links: &[LinkId]) -> StoreResult<Vec<(LinkId, LinkActivity)>> {
        let keys: Vec<_> = links
            .iter()
            .flat_map(|&link| (0..layout::ACTIVITY_SHARDS).map(move |shard| layout::activity_counter_key(link, shard)))
            .collect();
        let mut by_link: std::collections::HashMap<LinkId, LinkActivity> = std::collections::HashMap::new();
        for item in self.activity.get_items(&keys).await? {
            let pk = text_of(&item, layout::PK)?;
            let link = pk
                .strip_prefix("STATS#")
                .and_then(|rest| rest.split('#').next())
                .and_then(|id| id.parse().ok())
                .ok_or_else(|| StoreError::Corrupt(format!("activity counter key {pk:?}")))?;
            by_link.entry(link).or_default().merge(&counters_of(&item)?);
        }
        Ok(links.iter().filter_map(|l| by_link.remove(l).map(|a| (*l, a))).collect())
    }

    /// One `Query` per shard of the log (newest first, below the cursor,
    /// entries past their retention left out), merged by time.
    async fn activity_log(
        &self,
        link: LinkId,
        now: DateTime<Utc>,
        page: &PageRequest,
    ) -> StoreResult<Page<ActivityEntry>> {
        let below = match &page.cursor {
            Some(cursor) => {
                let (sort, id): (String, String) = cursor.decode()?;
                if sort.len() > 64 || id.len() > 64 {
                    return Err(StoreError::InvalidCursor);
                }
                Some(layout::sort_key(&sort, &id))
            }
            None => None,
        };
        let limit = page.limit as usize;
        let kept = Condition::new("#ttl >= :now", &[("#ttl", layout::TTL)], vec![(":now", n(now.timestamp()))]);
        let mut entries: Vec<ActivityEntry> = Vec::new();
        for shard in 0..layout::ACTIVITY_SHARDS {
            let mut q =
                Query::partition(layout::activity_log_partition(link, shard)).descending(true).filter(kept.clone());
            if let Some(bound) = &below {
                q = q.below(bound.clone());
            }
            for item in self.activity.query_first(Some(Index::Gsi1), &q, limit + 1).await? {
                let entry: ActivityEntry = decode(&item)?;
                if entry.keep_until >= now {
                    entries.push(entry);
                }
            }
        }
        entries.sort_by_key(|e| std::cmp::Reverse(layout::activity_position(e)));
        let has_more = entries.len() > limit;
        entries.truncate(limit);
        let next = if has_more { entries.last().map(|e| Cursor::encode(&layout::activity_position(e))) } else { None };
        Ok(Page { items: entries, next })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_made_in_a_burst_spread_evenly_over_the_shards() {
        // Activity ids are ordered by their creation (their first bytes are
        // the time, then a counter): the shard comes from their random end,
        // so a burst of visits within one millisecond still spreads out.
        let at = chrono::Utc::now();
        let mut per_shard = vec![0u32; layout::ACTIVITY_SHARDS as usize];
        for _ in 0..8_000 {
            let entry = ActivityEntry {
                id: ActivityId::new(),
                link_id: LinkId::new(),
                at,
                event: LinkEvent::PageOpened,
                file_id: None,
                bytes: 0,
                client: String::new(),
                country: None,
                keep_until: at,
            };
            per_shard[shard_of(&entry) as usize] += 1;
        }
        assert!(per_shard.iter().all(|&n| (800..=1_200).contains(&n)), "{per_shard:?}");
    }
}
