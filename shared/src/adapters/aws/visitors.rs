//! Downloads, archive jobs and throttle buckets on the activity table, with the embedded
//! store's semantics (`infra/README.md` has the layout). Neither is on the
//! links table: downloads are many and throttle buckets change on every
//! password guess, and the links table's stream is for link changes only.

use super::layout::{self, Index};
use super::table::*;
use crate::domain::model::*;
use crate::ids::*;
use crate::store::*;
use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Utc};

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
