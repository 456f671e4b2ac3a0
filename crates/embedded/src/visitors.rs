//! Downloads, archive jobs, throttle buckets and limit counters on the embedded store.

use super::catalog::*;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use publinks_domain::ids::*;
use publinks_domain::model::*;
use publinks_domain::store::*;
use rusqlite::params;

/// The key a visitor's downloads and archives are listed by: one link, one session.
fn visitor_key(link: LinkId, session: &str) -> String {
    format!("{link}/{session}")
}

fn visitor_of(by: &Downloader) -> Option<String> {
    match by {
        Downloader::PublicLink { link_id, session } => Some(visitor_key(*link_id, session)),
        Downloader::User { .. } => None,
    }
}

#[async_trait]
impl DownloadStore for EmbeddedCatalog {
    async fn record_download(&self, record: &DownloadRecord) -> StoreResult<()> {
        let r = record.clone();
        self.tx(move |tx| {
            let visitor = visitor_of(&r.by);
            tx.execute(
                "INSERT INTO downloads (id, account_id, at, visitor, doc) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![r.id.to_string(), r.account_id.to_string(), time_key(&r.at), visitor, encode(&r)],
            )
            .map_err(|e| if is_unique_violation(&e) { StoreError::AlreadyExists("download") } else { backend(e) })?;
            Ok(())
        })
        .await
    }

    async fn account_downloads(&self, account: AccountId, page: &PageRequest) -> StoreResult<Page<DownloadRecord>> {
        let page = page.clone();
        self.read(move |tx| {
            keyset_page(tx, "downloads", "account_id = ?1", &[account.to_string()], ("at", "id", true), &page)
        })
        .await
    }

    async fn visitor_downloads(
        &self,
        link: LinkId,
        session: &str,
        page: &PageRequest,
    ) -> StoreResult<Page<DownloadRecord>> {
        let (page, key) = (page.clone(), visitor_key(link, session));
        self.read(move |tx| keyset_page(tx, "downloads", "visitor = ?1", &[key], ("at", "id", true), &page)).await
    }
}

#[async_trait]
impl ArchiveJobStore for EmbeddedCatalog {
    async fn insert_archive_job(&self, job: &ArchiveJob) -> StoreResult<()> {
        let j = job.clone();
        self.tx(move |tx| {
            tx.execute(
                "INSERT INTO archive_jobs (id, account_id, created_at, visitor, fingerprint, revision, doc) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![
                    j.id.to_string(),
                    j.account_id.to_string(),
                    time_key(&j.created_at),
                    visitor_of(&j.requested_by),
                    j.fingerprint,
                    j.revision as i64,
                    encode(&j)
                ],
            )
            .map_err(|e| if is_unique_violation(&e) { StoreError::AlreadyExists("archive job") } else { backend(e) })?;
            Ok(())
        })
        .await
    }

    async fn archive_job(&self, id: ArchiveId) -> StoreResult<Option<ArchiveJob>> {
        self.read(move |tx| get_doc(tx, "archive_jobs", &id.to_string())).await
    }

    async fn replace_archive_job(&self, job: &ArchiveJob) -> StoreResult<ArchiveJob> {
        let mut j = job.clone();
        self.tx(move |tx| {
            let expected = j.revision;
            j.revision += 1;
            let n = tx
                .execute(
                    "UPDATE archive_jobs SET revision = ?1, doc = ?2 WHERE id = ?3 AND revision = ?4",
                    params![j.revision as i64, encode(&j), j.id.to_string(), expected as i64],
                )
                .map_err(backend)?;
            if n == 0 {
                return Err(missing_or_conflict(tx, "archive_jobs", &j.id.to_string(), "archive job"));
            }
            Ok(j)
        })
        .await
    }

    async fn account_archive_jobs(&self, account: AccountId, page: &PageRequest) -> StoreResult<Page<ArchiveJob>> {
        let page = page.clone();
        self.read(move |tx| {
            keyset_page(
                tx,
                "archive_jobs",
                "account_id = ?1",
                &[account.to_string()],
                ("created_at", "id", true),
                &page,
            )
        })
        .await
    }

    async fn visitor_archive_jobs(
        &self,
        link: LinkId,
        session: &str,
        page: &PageRequest,
    ) -> StoreResult<Page<ArchiveJob>> {
        let (page, key) = (page.clone(), visitor_key(link, session));
        self.read(move |tx| keyset_page(tx, "archive_jobs", "visitor = ?1", &[key], ("created_at", "id", true), &page))
            .await
    }

    async fn archive_jobs_by_fingerprint(&self, fingerprint: &str, limit: u32) -> StoreResult<Vec<ArchiveJob>> {
        let fingerprint = fingerprint.to_string();
        self.read(move |tx| {
            docs(
                tx,
                "SELECT doc FROM archive_jobs WHERE fingerprint = ?1 ORDER BY created_at DESC, id DESC LIMIT ?2",
                params![fingerprint, limit],
            )
        })
        .await
    }
}

impl EmbeddedCatalog {
    /// The archive jobs still pending or building, oldest first: what the
    /// local server's worker was doing when it stopped, to pick up again.
    pub async fn open_archive_jobs(&self) -> StoreResult<Vec<ArchiveJob>> {
        self.read(|tx| {
            docs(
                tx,
                "SELECT doc FROM archive_jobs WHERE json_extract(doc, '$.state') IN ('pending', 'building') \
                 ORDER BY created_at, id",
                [],
            )
        })
        .await
    }
}

#[async_trait]
impl ThrottleStore for EmbeddedCatalog {
    async fn throttle_state(&self, key: &str) -> StoreResult<Option<ThrottleState>> {
        let key = key.to_string();
        self.read(move |tx| {
            use rusqlite::OptionalExtension;
            let doc: Option<String> = tx
                .query_row("SELECT doc FROM throttles WHERE key = ?1", [key], |r| r.get(0))
                .optional()
                .map_err(backend)?;
            doc.map(|d| decode(&d)).transpose()
        })
        .await
    }

    async fn put_throttle_state(&self, key: &str, state: &ThrottleState, expires_at: DateTime<Utc>) -> StoreResult<()> {
        let (key, mut s) = (key.to_string(), state.clone());
        self.tx(move |tx| {
            let expected = s.revision;
            s.revision += 1;
            let n = if expected == 0 {
                tx.execute(
                    "INSERT INTO throttles (key, revision, expires_at, doc) VALUES (?1, ?2, ?3, ?4) ON CONFLICT DO NOTHING",
                    params![key, s.revision as i64, time_key(&expires_at), encode(&s)],
                )
            } else {
                tx.execute(
                    "UPDATE throttles SET revision = ?1, expires_at = ?2, doc = ?3 WHERE key = ?4 AND revision = ?5",
                    params![s.revision as i64, time_key(&expires_at), encode(&s), key, expected as i64],
                )
            }
            .map_err(backend)?;
            tx.execute("DELETE FROM throttles WHERE expires_at < ?1", [time_key(&Utc::now())]).map_err(backend)?;
            if n == 0 { Err(StoreError::Conflict("throttle")) } else { Ok(()) }
        })
        .await
    }
}

/// Forgotten slots: a slot is free once its holder's deadline passed, so a
/// day later it is of no use to anyone.
fn slot_forgotten_before() -> String {
    time_key(&(Utc::now() - chrono::Duration::days(1)))
}

#[async_trait]
impl LimitStore for EmbeddedCatalog {
    async fn count_up(&self, key: &str, limit: u32, expires_at: DateTime<Utc>) -> StoreResult<Option<u32>> {
        let key = key.to_string();
        self.tx(move |tx| {
            use rusqlite::OptionalExtension;
            let now = time_key(&Utc::now());
            tx.execute("DELETE FROM limit_counters WHERE expires_at < ?1", [&now]).map_err(backend)?;
            let count: u32 = tx
                .query_row("SELECT count FROM limit_counters WHERE key = ?1", [&key], |r| r.get(0))
                .optional()
                .map_err(backend)?
                .unwrap_or(0);
            if count >= limit {
                return Ok(None);
            }
            tx.execute(
                "INSERT INTO limit_counters (key, count, expires_at) VALUES (?1, ?2, ?3) \
                 ON CONFLICT (key) DO UPDATE SET count = excluded.count, expires_at = excluded.expires_at",
                params![key, count + 1, time_key(&expires_at)],
            )
            .map_err(backend)?;
            Ok(Some(count + 1))
        })
        .await
    }

    async fn count_down(&self, key: &str) -> StoreResult<()> {
        let key = key.to_string();
        self.tx(move |tx| {
            tx.execute("UPDATE limit_counters SET count = count - 1 WHERE key = ?1 AND count > 0", [key])
                .map_err(backend)?;
            Ok(())
        })
        .await
    }

    async fn count(&self, key: &str) -> StoreResult<u32> {
        let key = key.to_string();
        self.read(move |tx| {
            use rusqlite::OptionalExtension;
            let count = tx
                .query_row(
                    "SELECT count FROM limit_counters WHERE key = ?1 AND expires_at >= ?2",
                    params![key, time_key(&Utc::now())],
                    |r| r.get(0),
                )
                .optional()
                .map_err(backend)?;
            Ok(count.unwrap_or(0))
        })
        .await
    }

    async fn slot(&self, key: &str) -> StoreResult<Option<Slot>> {
        let key = key.to_string();
        self.read(move |tx| {
            use rusqlite::OptionalExtension;
            let row: Option<(String, String)> = tx
                .query_row("SELECT holder, until FROM limit_slots WHERE key = ?1", [key], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })
                .optional()
                .map_err(backend)?;
            row.map(|(holder, until)| {
                let until = DateTime::parse_from_rfc3339(&until)
                    .map_err(|e| StoreError::Corrupt(format!("slot until {until:?}: {e}")))?
                    .with_timezone(&Utc);
                Ok(Slot { holder, until })
            })
            .transpose()
        })
        .await
    }

    async fn take_slot(&self, key: &str, slot: &Slot, replacing: Option<&str>) -> StoreResult<bool> {
        let (key, slot, replacing) = (key.to_string(), slot.clone(), replacing.map(str::to_string));
        self.tx(move |tx| {
            tx.execute("DELETE FROM limit_slots WHERE until < ?1", [slot_forgotten_before()]).map_err(backend)?;
            let until = time_key(&slot.until);
            let n = match &replacing {
                None => tx.execute(
                    "INSERT INTO limit_slots (key, holder, until) VALUES (?1, ?2, ?3) ON CONFLICT DO NOTHING",
                    params![key, slot.holder, until],
                ),
                Some(previous) => tx.execute(
                    "UPDATE limit_slots SET holder = ?2, until = ?3 WHERE key = ?1 AND holder = ?4",
                    params![key, slot.holder, until, previous],
                ),
            }
            .map_err(backend)?;
            Ok(n == 1)
        })
        .await
    }

    async fn free_slot(&self, key: &str, holder: &str) -> StoreResult<()> {
        let (key, holder) = (key.to_string(), holder.to_string());
        self.tx(move |tx| {
            tx.execute("DELETE FROM limit_slots WHERE key = ?1 AND holder = ?2", [key, holder]).map_err(backend)?;
            Ok(())
        })
        .await
    }
}

/// Visitor activity recorded and not yet written. Every visitor request
/// records an entry, and a transaction of its own on the one writer
/// connection each was most of what a page view cost (the commit, and
/// requests queueing for the writer). Recording queues the entry and returns;
/// one blocking task writes everything queued meanwhile in one transaction.
/// Whatever reads activity writes what is queued first
/// ([`EmbeddedCatalog::settle_activity`]), so the counters and the log read
/// are exact. Limits are not activity: they are counted at once.
#[derive(Default)]
pub(super) struct ActivityQueue {
    pending: std::sync::Mutex<Vec<ActivityEntry>>,
    /// Whether a task that writes the queue is on its way.
    scheduled: std::sync::atomic::AtomicBool,
    /// Entries recorded and not yet committed (queued, or being written).
    unwritten: std::sync::atomic::AtomicUsize,
}

/// Most entries left queued: past them, recording writes the queue itself
/// and waits (when writes fail, the visitor sees it rather than the queue
/// growing).
const MOST_QUEUED: usize = 10_000;

/// How long the task that writes the queue lets entries gather before it
/// writes them. Written as soon as it started, the queue held the one or two
/// entries recorded during the last commit: a commit per request under load
/// (a seventh of a folder page's time). Reads of activity do not wait for
/// it: they write the queue first.
const GATHERING: std::time::Duration = std::time::Duration::from_millis(5);

impl ActivityQueue {
    /// Queues `entry`; how many are queued now.
    fn push(&self, entry: ActivityEntry) -> usize {
        let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        self.unwritten.fetch_add(1, std::sync::atomic::Ordering::AcqRel);
        pending.push(entry);
        pending.len()
    }

    /// Whether every entry recorded so far is written.
    fn settled(&self) -> bool {
        self.unwritten.load(std::sync::atomic::Ordering::Acquire) == 0
    }

    /// Writes everything queued, in one transaction, holding the writer:
    /// whoever takes the writer after this finds the entries written. On
    /// failure the entries go back to the queue (and the error is returned).
    fn write(&self, writer: &std::sync::Mutex<rusqlite::Connection>) -> StoreResult<()> {
        let mut conn = lock(writer);
        self.scheduled.store(false, std::sync::atomic::Ordering::Release);
        let entries = std::mem::take(&mut *self.pending.lock().unwrap_or_else(|p| p.into_inner()));
        if entries.is_empty() {
            return Ok(());
        }
        match write_locked(&mut conn, |tx| write_activity(tx, &entries)) {
            Ok(()) => {
                self.unwritten.fetch_sub(entries.len(), std::sync::atomic::Ordering::AcqRel);
                Ok(())
            }
            Err(e) => {
                let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
                pending.splice(0..0, entries);
                Err(e)
            }
        }
    }
}

/// How long a deleted link's activity is refused after its deletion: longer
/// than any visitor request that read the link before it was deleted takes.
const DELETED_LINK_KEPT: chrono::Duration = chrono::Duration::days(1);

/// Deletes a link's counters and log with the link (in its transaction), and
/// notes it deleted, so that activity still queued or recorded by a request
/// that read the link before is dropped instead of counted anew.
pub(super) fn forget_activity(tx: &rusqlite::Transaction<'_>, link: LinkId, at: DateTime<Utc>) -> StoreResult<()> {
    let link = link.to_string();
    tx.execute("DELETE FROM link_activity WHERE link_id = ?1", [&link]).map_err(backend)?;
    tx.execute("DELETE FROM activity_log WHERE link_id = ?1", [&link]).map_err(backend)?;
    tx.execute(
        "INSERT INTO deleted_links (link_id, until) VALUES (?1, ?2) ON CONFLICT DO NOTHING",
        params![link, time_key(&(at + DELETED_LINK_KEPT))],
    )
    .map_err(backend)?;
    Ok(())
}

/// Adds `entries` to their links' logs and counters: each link's counters
/// read and written once; entries of deleted links are dropped.
fn write_activity(tx: &rusqlite::Transaction<'_>, entries: &[ActivityEntry]) -> StoreResult<()> {
    use rusqlite::OptionalExtension;
    // The local sweep: entries past their retention go as new ones come, and
    // so do the notes of links deleted long enough ago.
    let oldest = entries.iter().map(|e| e.at).min().expect("entries");
    tx.prepare_cached("DELETE FROM activity_log WHERE keep_until < ?1")
        .and_then(|mut s| s.execute([time_key(&oldest)]))
        .map_err(backend)?;
    tx.prepare_cached("DELETE FROM deleted_links WHERE until < ?1")
        .and_then(|mut s| s.execute([time_key(&oldest)]))
        .map_err(backend)?;
    // An entry id written already is not counted again (one bad entry must
    // not hold back the rest of the queue).
    let mut insert = tx
        .prepare_cached(
            "INSERT INTO activity_log (id, link_id, at, keep_until, doc) SELECT ?1, ?2, ?3, ?4, ?5 \
             WHERE NOT EXISTS (SELECT 1 FROM deleted_links WHERE link_id = ?2) ON CONFLICT DO NOTHING",
        )
        .map_err(backend)?;
    let mut by_link: std::collections::BTreeMap<LinkId, Vec<&ActivityEntry>> = std::collections::BTreeMap::new();
    for e in entries {
        let (id, link, at, keep) = (e.id.to_string(), e.link_id.to_string(), time_key(&e.at), time_key(&e.keep_until));
        if insert.execute(params![id, link, at, keep, encode(e)]).map_err(backend)? == 1 {
            by_link.entry(e.link_id).or_default().push(e);
        }
    }
    let mut read = tx.prepare_cached("SELECT doc FROM link_activity WHERE link_id = ?1").map_err(backend)?;
    let mut upsert = tx
        .prepare_cached(
            "INSERT INTO link_activity (link_id, last_access, doc) VALUES (?1, ?2, ?3) \
             ON CONFLICT (link_id) DO UPDATE SET last_access = excluded.last_access, doc = excluded.doc",
        )
        .map_err(backend)?;
    for (link, entries) in by_link {
        let link = link.to_string();
        let stored: Option<String> = read.query_row([&link], |r| r.get(0)).optional().map_err(backend)?;
        let mut counters: LinkActivity = stored.map(|d| decode(&d)).transpose()?.unwrap_or_default();
        for e in &entries {
            counters.add(e.event, e.bytes, e.at);
        }
        let last = counters.last_access.expect("counted");
        upsert.execute(params![link, time_key(&last), encode(&counters)]).map_err(backend)?;
    }
    Ok(())
}

impl EmbeddedCatalog {
    /// Writes the activity recorded so far and not yet written: what reads
    /// of activity do first, and what a server stopping does last.
    pub async fn settle_activity(&self) -> StoreResult<()> {
        if self.activity.settled() {
            return Ok(());
        }
        let (queue, writer) = (self.activity.clone(), self.writer());
        tokio::task::spawn_blocking(move || queue.write(&writer))
            .await
            .map_err(|e| StoreError::Backend(format!("store task failed: {e}")))?
    }
}

#[async_trait]
impl ActivityStore for EmbeddedCatalog {
    async fn record_activity(&self, entry: &ActivityEntry) -> StoreResult<()> {
        if self.activity.push(entry.clone()) > MOST_QUEUED {
            return self.settle_activity().await;
        }
        if !self.activity.scheduled.swap(true, std::sync::atomic::Ordering::AcqRel) {
            let (queue, writer) = (self.activity.clone(), self.writer());
            tokio::task::spawn_blocking(move || {
                std::thread::sleep(GATHERING);
                // A failed write keeps the entries queued and tries again
                // after a pause, so a quiet server does not leave them there.
                for pause in [1, 2, 4, 8, 16, 32] {
                    match queue.write(&writer) {
                        Ok(()) => return,
                        Err(e) => tracing::error!(error = %e, "link activity not written yet; kept queued"),
                    }
                    // This task tries again: the visits meanwhile start no
                    // other (each would hold a blocking thread through its
                    // own pauses, and the store's reads and writes need them).
                    queue.scheduled.store(true, std::sync::atomic::Ordering::Release);
                    std::thread::sleep(std::time::Duration::from_secs(pause));
                }
                // Given up for now: the next visit starts a writer again.
                queue.scheduled.store(false, std::sync::atomic::Ordering::Release);
            });
        }
        Ok(())
    }

    async fn link_activity(&self, link: LinkId) -> StoreResult<LinkActivity> {
        Ok(self.links_activity(&[link]).await?.pop().map(|(_, a)| a).unwrap_or_default())
    }

    async fn links_activity(&self, links: &[LinkId]) -> StoreResult<Vec<(LinkId, LinkActivity)>> {
        self.settle_activity().await?;
        let ids: Vec<String> = links.iter().map(|l| l.to_string()).collect();
        self.read(move |tx| {
            let mut stmt = tx.prepare_cached("SELECT doc FROM link_activity WHERE link_id = ?1").map_err(backend)?;
            let mut found = Vec::new();
            for id in ids {
                use rusqlite::OptionalExtension;
                let doc: Option<String> = stmt.query_row([&id], |r| r.get(0)).optional().map_err(backend)?;
                if let Some(doc) = doc {
                    let link = id.parse().map_err(|_| StoreError::Corrupt(format!("link activity of {id:?}")))?;
                    found.push((link, decode(&doc)?));
                }
            }
            Ok(found)
        })
        .await
    }

    async fn activity_log(
        &self,
        link: LinkId,
        now: DateTime<Utc>,
        page: &PageRequest,
    ) -> StoreResult<Page<ActivityEntry>> {
        self.settle_activity().await?;
        let page = page.clone();
        self.read(move |tx| {
            keyset_page(
                tx,
                "activity_log",
                "link_id = ?1 AND keep_until >= ?2",
                &[link.to_string(), time_key(&now)],
                ("at", "id", true),
                &page,
            )
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn opened(link: LinkId, at: DateTime<Utc>) -> ActivityEntry {
        ActivityEntry {
            id: ActivityId::new(),
            link_id: link,
            at,
            event: LinkEvent::PageOpened,
            file_id: None,
            bytes: 0,
            client: "client".into(),
            country: None,
            keep_until: at + chrono::Duration::days(1),
        }
    }

    /// Recording a visit does not wait for the writer (a visitor's request
    /// used to queue behind every other write), and what was recorded while
    /// the writer was busy is all read back once it is free.
    #[tokio::test]
    async fn recording_does_not_wait_for_the_writer_and_reads_stay_exact() {
        let dir = tempfile::tempdir().unwrap();
        let catalog = EmbeddedCatalog::open(&dir.path().join("catalog.sqlite3")).unwrap();
        let (link, at) = (LinkId::new(), chrono::SubsecRound::trunc_subsecs(Utc::now(), 6));
        let writer = catalog.writer();
        let (held, is_held) = std::sync::mpsc::channel();
        let (release, released) = std::sync::mpsc::channel::<()>();
        // Holds the writer until told to let go (or 5 s): `true` if told.
        let holder = std::thread::spawn(move || {
            let _writer = lock(&writer);
            held.send(()).unwrap();
            released.recv_timeout(Duration::from_secs(5)).is_ok()
        });
        is_held.recv().unwrap();
        for i in 0..50 {
            catalog.record_activity(&opened(link, at + chrono::Duration::milliseconds(i))).await.unwrap();
        }
        let _ = release.send(());
        assert!(holder.join().unwrap(), "recording waited for the writer");
        assert_eq!(catalog.link_activity(link).await.unwrap().page_opens, 50);
        let log = catalog.activity_log(link, at, &PageRequest::first(100)).await.unwrap();
        assert_eq!(log.items.len(), 50);
        assert_eq!(catalog.links_activity(&[link]).await.unwrap()[0].1.last_access, Some(log.items[0].at));
    }

    /// While writes fail, one task keeps trying; the visits meanwhile do
    /// not each start their own, which would hold every blocking thread
    /// through their pauses: once the store can write again, a read of
    /// activity answers at once rather than after the pauses.
    #[test]
    fn failing_writes_are_retried_by_one_task_and_leave_threads_for_the_store() {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .max_blocking_threads(3)
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("catalog.sqlite3");
            let catalog = EmbeddedCatalog::open(&path).unwrap();
            let outside = rusqlite::Connection::open(&path).unwrap();
            outside.busy_timeout(Duration::from_secs(5)).unwrap();
            outside.execute_batch("ALTER TABLE activity_log RENAME TO activity_log_away").unwrap();
            let (link, at) = (LinkId::new(), chrono::SubsecRound::trunc_subsecs(Utc::now(), 6));
            // Visits while the store cannot write, each after the last
            // attempt failed.
            for i in 0..6 {
                catalog.record_activity(&opened(link, at + chrono::Duration::milliseconds(i))).await.unwrap();
                tokio::time::sleep(GATHERING * 4).await;
            }
            outside.execute_batch("ALTER TABLE activity_log_away RENAME TO activity_log").unwrap();
            let asked = std::time::Instant::now();
            let counted = catalog.link_activity(link).await.unwrap();
            assert!(asked.elapsed() < Duration::from_millis(500), "the read waited {:?}", asked.elapsed());
            assert_eq!(counted.page_opens, 6);
        });
    }

    /// Entries left to gather are still written by themselves, with nothing
    /// reading activity to make them: seen from a connection of its own.
    #[tokio::test]
    async fn gathered_entries_are_written_without_a_read_asking() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("catalog.sqlite3");
        let catalog = EmbeddedCatalog::open(&path).unwrap();
        let (link, at) = (LinkId::new(), chrono::SubsecRound::trunc_subsecs(Utc::now(), 6));
        for i in 0..20 {
            catalog.record_activity(&opened(link, at + chrono::Duration::milliseconds(i))).await.unwrap();
        }
        let outside = rusqlite::Connection::open(&path).unwrap();
        let written = || -> i64 { outside.query_row("SELECT count(*) FROM activity_log", [], |r| r.get(0)).unwrap() };
        let waited = std::time::Instant::now();
        // The rows are committed a moment before the queue counts them written.
        while !(written() == 20 && catalog.activity.settled()) && waited.elapsed() < Duration::from_secs(5) {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(written(), 20);
        assert!(catalog.activity.settled());
    }
}
