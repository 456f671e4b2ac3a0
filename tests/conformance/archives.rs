//! The archive builder on each backend's real stores: multipart uploads and
//! server-side copies, round trips judged by four ZIP readers, failures that
//! leave nothing behind, and retries.

use super::ArchiveBackend;
use async_trait::async_trait;
use chrono::Utc;
use publinks_archive::builder::{ArchiveBuilder, BuildSettings};
use publinks_archive::readers;
use publinks_domain::archives::manifest_bytes;
use publinks_domain::ids::*;
use publinks_domain::model::*;
use publinks_domain::store::*;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use tokio::io::AsyncReadExt;

const MIB: usize = 1024 * 1024;

/// Bytes that do not compress, reproducible from `seed`.
pub fn noise(len: usize, seed: u32) -> Vec<u8> {
    let mut x = seed.wrapping_mul(2_654_435_761).max(1);
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}

/// Stores `bytes` as an asset and returns its manifest entry at `path`.
pub async fn asset(b: &ArchiveBackend, path: &str, content_type: &str, bytes: &[u8]) -> ArchiveEntry {
    let key = format!("accounts/test/files/{}/v1.bin", uuid::Uuid::new_v4());
    b.stores.blobs.put(&key, bytes.to_vec(), content_type).await.unwrap();
    let e_tag = b.stores.blobs.head(&key).await.unwrap().map(|info| info.e_tag);
    ArchiveEntry {
        path: path.to_string(),
        file_id: Some(FileId::new()),
        version: 1,
        blob_key: key,
        content_type: content_type.to_string(),
        size: bytes.len() as u64,
        crc32: crc32fast::hash(bytes),
        e_tag,
        modified: Utc::now(),
        folder_id: None,
        parent_id: None,
    }
}

fn folder(path: &str) -> ArchiveEntry {
    ArchiveEntry::folder(path.to_string(), Utc::now())
}

/// Records a pending job for `entries`, as the archive service does.
pub async fn job(b: &ArchiveBackend, entries: &[ArchiveEntry]) -> ArchiveJob {
    let now = Utc::now();
    let job = ArchiveJob::pending(
        ArchiveId::new(),
        AccountId::new(),
        Downloader::User { user_id: UserId::new() },
        ArchiveSource::Selection { count: entries.len() as u32 },
        "test.zip".into(),
        uuid::Uuid::new_v4().to_string(),
        entries,
        now,
        now + chrono::Duration::minutes(15),
    );
    b.stores.archives.put(&job.manifest_key, manifest_bytes(entries), "application/x-ndjson").await.unwrap();
    b.stores.visitors.insert_archive_job(&job).await.unwrap();
    job
}

pub async fn reload(b: &ArchiveBackend, id: ArchiveId) -> ArchiveJob {
    b.stores.visitors.archive_job(id).await.unwrap().expect("the job is there")
}

/// Downloads the archive and has the four readers check it against `expected`.
pub async fn assert_archive_holds(b: &ArchiveBackend, job: &ArchiveJob, expected: &[(&ArchiveEntry, &[u8])]) {
    let mut bytes = Vec::new();
    b.stores.archives.open(&job.archive_key).await.unwrap().read_to_end(&mut bytes).await.unwrap();
    assert_eq!(Some(bytes.len() as u64), job.archive_size, "the job states the archive's size");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("archive.zip");
    std::fs::write(&path, &bytes).unwrap();
    let expected: BTreeMap<String, String> =
        expected.iter().map(|(e, data)| (e.path.clone(), readers::digest(data))).collect();
    readers::verify(&path, &expected).unwrap_or_else(|e| panic!("{e}"));
}

pub fn stores_with(b: &ArchiveBackend, archives: Arc<dyn ArchiveStore>) -> Stores {
    Stores { archives, ..b.stores.clone() }
}

pub async fn multipart_archives_complete_whole_or_abort_to_nothing(b: &ArchiveBackend) {
    let archives = &b.stores.archives;
    let first = noise(5 * MIB, 1);
    let upload = archives.start_multipart("archives/t/whole.zip").await.unwrap();
    let p1 = archives.upload_part(&upload, 1, first.clone()).await.unwrap();
    let source = asset(b, "a", "video/mp4", &noise(6 * MIB, 2)).await;
    let copied_range = 100..(100 + 5 * MIB as u64);
    let p2 = archives.copy_part(&upload, 2, &source.blob_key, copied_range.clone(), None).await.unwrap();
    let p3 = archives.upload_part(&upload, 3, b"the last part may be small".to_vec()).await.unwrap();
    assert_eq!(archives.head("archives/t/whole.zip").await.unwrap(), None, "nothing shows before completion");
    assert_eq!(archives.open_multiparts("archives/t/whole.zip").await.unwrap(), vec![upload.upload_id.clone()]);
    archives.complete_multipart(&upload, &[p1, p2, p3]).await.unwrap();
    let mut read = Vec::new();
    archives.open("archives/t/whole.zip").await.unwrap().read_to_end(&mut read).await.unwrap();
    let mut expected = first.clone();
    expected.extend_from_slice(&noise(6 * MIB, 2)[100..100 + 5 * MIB]);
    expected.extend_from_slice(b"the last part may be small");
    assert!(read == expected, "the parts, copies included, in order");
    assert!(archives.open_multiparts("archives/t/whole.zip").await.unwrap().is_empty());

    let upload = archives.start_multipart("archives/t/failed.zip").await.unwrap();
    archives.upload_part(&upload, 1, first).await.unwrap();
    archives.abort_multipart(&upload).await.unwrap();
    archives.abort_multipart(&upload).await.expect("aborting twice is fine");
    assert_eq!(archives.head("archives/t/failed.zip").await.unwrap(), None, "an aborted upload leaves no object");
    assert!(archives.open_multiparts("archives/t/failed.zip").await.unwrap().is_empty());
    assert!(archives.complete_multipart(&upload, &[]).await.is_err(), "an aborted upload cannot complete");
    let missing = archives.start_multipart("archives/t/missing.zip").await.unwrap();
    let copy = archives.copy_part(&missing, 1, "accounts/none/files/x/v1.bin", 0..10, None).await;
    assert!(copy.is_err(), "copying a missing asset fails: {copy:?}");
    archives.abort_multipart(&missing).await.unwrap();
}

pub async fn a_tree_with_every_kind_of_entry_round_trips_through_four_readers(b: &ArchiveBackend) {
    let text = b"a line of text that compresses well\n".repeat(3000);
    let big_text = b"streamed text, deflated in chunks, longer than the read-ahead\n".repeat(90_000);
    let photo = noise(300 * 1024, 3);
    let video = noise(18 * MIB, 4);
    let big_photo = noise(5 * MIB, 5);
    let entries = vec![
        folder("Holiday/"),
        asset(b, "Holiday/notes.txt", "text/plain", &text).await,
        asset(b, "Holiday/photo.jpg", "image/jpeg", &photo).await,
        asset(b, "Holiday/photo (1).jpg", "image/jpeg", &photo).await,
        asset(b, "Holiday/film.mp4", "video/mp4", &video).await,
        asset(b, "Été ☀/big.jpg", "image/jpeg", &big_photo).await,
        asset(b, "log.txt", "text/plain", &big_text).await,
        asset(b, "empty.txt", "text/plain", b"").await,
    ];
    let contents: Vec<&[u8]> = vec![b"", &text, &photo, &photo, &video, &big_photo, &big_text, b""];
    let job = job(b, &entries).await;
    let copies = Arc::new(AtomicU32::new(0));
    let counting = Arc::new(CountingCopies { inner: b.stores.archives.clone(), copies: copies.clone() });
    ArchiveBuilder::new(&stores_with(b, counting), BuildSettings::default()).build(job.id, None).await.unwrap();
    let done = reload(b, job.id).await;
    assert_eq!(done.state, ArchiveState::Ready, "{:?}", done.failure);
    assert_eq!((done.files_done, done.bytes_done), (done.file_count, done.total_bytes));
    assert!(done.expires_at.is_some_and(|e| e > Utc::now()));
    assert_eq!(done.upload_id, None);
    assert!(copies.load(Ordering::SeqCst) >= 1, "the 18 MiB video is copied by the store, not read");
    let expected: Vec<(&ArchiveEntry, &[u8])> = entries.iter().zip(contents).collect();
    assert_archive_holds(b, &done, &expected).await;

    // Built already: a second delivery of the same job changes nothing.
    ArchiveBuilder::new(&b.stores, BuildSettings::default()).build(job.id, None).await.unwrap();
    assert_eq!(reload(b, job.id).await.revision, done.revision);
}

pub async fn a_file_gone_midway_aborts_the_upload_and_fails_the_job(b: &ArchiveBackend) {
    let mut entries = Vec::new();
    for i in 0..3 {
        entries.push(asset(b, &format!("part {i}.mp4"), "video/mp4", &noise(6 * MIB, 10 + i)).await);
    }
    let mut gone = asset(b, "gone.jpg", "image/jpeg", &noise(1000, 20)).await;
    b.stores.blobs.delete(&gone.blob_key).await.unwrap();
    gone.path = "gone.jpg".into();
    entries.push(gone);
    let job = job(b, &entries).await;
    let parts = Arc::new(AtomicU32::new(0));
    let counting = Arc::new(CountingCopies { inner: b.stores.archives.clone(), copies: parts.clone() });
    let result = ArchiveBuilder::new(&stores_with(b, counting), BuildSettings::default()).build(job.id, None).await;
    assert!(result.is_err());
    let failed = reload(b, job.id).await;
    assert_eq!(failed.state, ArchiveState::Failed);
    assert_eq!(failed.failure.as_deref(), Some("gone.jpg is no longer stored"));
    assert_eq!(b.stores.archives.head(&job.archive_key).await.unwrap(), None, "no archive that looks complete");
    assert!(b.stores.archives.open_multiparts(&job.archive_key).await.unwrap().is_empty(), "the upload is aborted");
}

pub async fn a_store_failure_midway_aborts_the_upload_and_fails_the_job(b: &ArchiveBackend) {
    let entries = vec![
        asset(b, "a.mp4", "video/mp4", &noise(9 * MIB, 30)).await,
        asset(b, "b.mp4", "video/mp4", &noise(9 * MIB, 31)).await,
    ];
    let job = job(b, &entries).await;
    let failing = Arc::new(FailingPart::new(b, 2, u32::MAX));
    let builder = ArchiveBuilder::new(&stores_with(b, failing.clone()), quick_retries());
    let result = builder.build(job.id, None).await;
    assert!(result.is_err());
    let failed = reload(b, job.id).await;
    assert_eq!(failed.state, ArchiveState::Failed);
    assert_eq!(failed.failure.as_deref(), Some("storage failed while the archive was written"));
    assert_eq!((failed.attempt, failing.failed.load(Ordering::SeqCst)), (3, 3), "tried three times, then failed");
    assert_eq!(b.stores.archives.head(&job.archive_key).await.unwrap(), None);
    assert!(b.stores.archives.open_multiparts(&job.archive_key).await.unwrap().is_empty(), "the upload is aborted");
}

/// The builder's settings with short pauses between attempts.
pub fn quick_retries() -> BuildSettings {
    BuildSettings { retry_pause: std::time::Duration::from_millis(20), ..BuildSettings::default() }
}

pub async fn a_store_failure_that_passes_is_retried_into_one_whole_archive(b: &ArchiveBackend) {
    let (first, second) = (noise(9 * MIB, 32), noise(9 * MIB, 33));
    let entries = vec![asset(b, "a.mp4", "video/mp4", &first).await, asset(b, "b.mp4", "video/mp4", &second).await];
    let job = job(b, &entries).await;
    let failing = Arc::new(FailingPart::new(b, 2, 1));
    ArchiveBuilder::new(&stores_with(b, failing.clone()), quick_retries()).build(job.id, None).await.unwrap();
    let done = reload(b, job.id).await;
    assert_eq!((done.state, done.failure.as_deref()), (ArchiveState::Ready, None));
    assert_eq!((done.attempt, failing.failed.load(Ordering::SeqCst)), (2, 1), "one failure, one more attempt");
    assert!(b.stores.archives.open_multiparts(&job.archive_key).await.unwrap().is_empty(), "no orphan upload");
    assert_archive_holds(b, &done, &[(&entries[0], &first), (&entries[1], &second)]).await;
}

pub async fn progress_never_reads_full_before_the_archive_is_ready(b: &ArchiveBackend) {
    use publinks_domain::archives::ArchiveView;
    let data = noise(6 * MIB, 34);
    let entries = vec![asset(b, "a.bin", "application/octet-stream", &data).await];
    let job = job(b, &entries).await;
    let held = Arc::new(HeldCompletion::new(b));
    let builder = ArchiveBuilder::new(&stores_with(b, held.clone()), BuildSettings::default());
    let build = tokio::spawn(async move { builder.build(job.id, None).await });
    held.reached.notified().await;
    let finishing = reload(b, job.id).await;
    assert_eq!((finishing.state, finishing.bytes_done), (ArchiveState::Building, finishing.total_bytes));
    let view = ArchiveView::of(&finishing, Utc::now());
    assert!(view.finishing && view.progress < 100, "every byte read, not ready: {view:?}");
    held.release.notify_one();
    build.await.unwrap().unwrap();
    let view = ArchiveView::of(&reload(b, job.id).await, Utc::now());
    assert_eq!((view.status, view.progress, view.finishing), (ArchiveStatus::Ready, 100, false));
}

pub async fn a_retry_aborts_the_crashed_attempt_and_finishes(b: &ArchiveBackend) {
    let data = noise(2 * MIB, 40);
    let entries = vec![asset(b, "a.jpg", "image/jpeg", &data).await];
    let mut crashed = job(b, &entries).await;
    // An attempt that died mid-build: building, with an upload of its own.
    let orphan = b.stores.archives.start_multipart(&crashed.archive_key).await.unwrap();
    crashed.state = ArchiveState::Building;
    crashed.attempt = 1;
    crashed.upload_id = Some(orphan.upload_id.clone());
    b.stores.visitors.replace_archive_job(&crashed).await.unwrap();

    ArchiveBuilder::new(&b.stores, BuildSettings::default()).build(crashed.id, None).await.unwrap();
    let done = reload(b, crashed.id).await;
    assert_eq!((done.state, done.attempt), (ArchiveState::Ready, 2));
    assert!(b.stores.archives.open_multiparts(&crashed.archive_key).await.unwrap().is_empty(), "the orphan is aborted");
    assert_archive_holds(b, &done, &[(&entries[0], &data)]).await;
}

pub async fn a_build_past_its_deadline_fails_without_writing(b: &ArchiveBackend) {
    let entries = vec![asset(b, "a.txt", "text/plain", b"late").await];
    let mut late = job(b, &entries).await;
    late.deadline = Utc::now() + chrono::Duration::hours(1);
    b.stores.visitors.replace_archive_job(&late).await.unwrap();
    // The builder meets the job two hours on, by its clock.
    let clock = publinks_domain::clock::ShiftedClock::new();
    clock.advance(chrono::Duration::hours(2));
    let later = Stores { clock: Arc::new(clock), ..b.stores.clone() };
    let result = ArchiveBuilder::new(&later, BuildSettings::default()).build(late.id, None).await;
    assert!(result.is_err());
    let failed = reload(b, late.id).await;
    assert_eq!(failed.state, ArchiveState::Failed);
    assert_eq!(failed.failure.as_deref(), Some("the archive could not be finished in time"));
    assert_eq!(b.stores.archives.head(&late.archive_key).await.unwrap(), None);
}

pub async fn a_copy_is_made_only_while_the_asset_is_the_one_recorded(b: &ArchiveBackend) {
    let archives = &b.stores.archives;
    let entry = asset(b, "film.mp4", "video/mp4", &noise(6 * MIB, 50)).await;
    let recorded = entry.e_tag.clone().expect("the store gives an ETag");
    let upload = archives.start_multipart("archives/t/conditional.zip").await.unwrap();
    let range = 0..5 * MIB as u64;
    archives.copy_part(&upload, 1, &entry.blob_key, range.clone(), Some(&recorded)).await.expect("the recorded bytes");
    // Other bytes of the same size under the key (no URL can do that any
    // more; a store could). The pause outlasts file timestamps' granularity.
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    b.stores.blobs.put(&entry.blob_key, noise(6 * MIB, 51), "video/mp4").await.unwrap();
    let copy = archives.copy_part(&upload, 2, &entry.blob_key, range, Some(&recorded)).await;
    assert_eq!(copy, Err(StoreError::Conflict("stored file")));
    archives.abort_multipart(&upload).await.unwrap();

    // The builder fails the job with that reason, and no archive appears.
    let big = asset(b, "big.mp4", "video/mp4", &noise(17 * MIB, 52)).await;
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    b.stores.blobs.put(&big.blob_key, noise(17 * MIB, 53), "video/mp4").await.unwrap();
    let job = job(b, &[big]).await;
    assert!(ArchiveBuilder::new(&b.stores, BuildSettings::default()).build(job.id, None).await.is_err());
    let failed = reload(b, job.id).await;
    assert_eq!(failed.state, ArchiveState::Failed);
    assert_eq!(failed.failure.as_deref(), Some("a file changed since the archive was asked for"));
    assert_eq!(b.stores.archives.head(&job.archive_key).await.unwrap(), None);
    assert!(b.stores.archives.open_multiparts(&job.archive_key).await.unwrap().is_empty(), "the upload is aborted");
}

/// The real archive store, counting the parts it copies.
struct CountingCopies {
    inner: Arc<dyn ArchiveStore>,
    copies: Arc<AtomicU32>,
}

/// The real archive store, failing the upload of part `fail` as a network
/// error would, the first `times` times it is asked.
pub struct FailingPart {
    inner: Arc<dyn ArchiveStore>,
    fail: u32,
    times: u32,
    pub failed: AtomicU32,
}

impl FailingPart {
    pub fn new(b: &ArchiveBackend, fail: u32, times: u32) -> Self {
        FailingPart { inner: b.stores.archives.clone(), fail, times, failed: AtomicU32::new(0) }
    }
}

/// The real archive store, holding every completion until released, so that
/// a test can look at the job while its archive is being completed.
pub struct HeldCompletion {
    inner: Arc<dyn ArchiveStore>,
    /// Notified when a build reaches its completion.
    pub reached: tokio::sync::Notify,
    /// Lets the completion held go on.
    pub release: tokio::sync::Notify,
}

impl HeldCompletion {
    pub fn new(b: &ArchiveBackend) -> Self {
        HeldCompletion {
            inner: b.stores.archives.clone(),
            reached: tokio::sync::Notify::new(),
            release: tokio::sync::Notify::new(),
        }
    }
}

macro_rules! delegate_blobs {
    ($t:ty) => {
        #[async_trait]
        impl BlobStore for $t {
            async fn put(&self, key: &str, bytes: Vec<u8>, content_type: &str) -> StoreResult<()> {
                self.inner.put(key, bytes, content_type).await
            }
            async fn open(&self, key: &str) -> StoreResult<BlobReader> {
                self.inner.open(key).await
            }
            async fn open_range(&self, key: &str, range: std::ops::Range<u64>) -> StoreResult<BlobReader> {
                self.inner.open_range(key, range).await
            }
            async fn head(&self, key: &str) -> StoreResult<Option<BlobInfo>> {
                self.inner.head(key).await
            }
            async fn delete(&self, key: &str) -> StoreResult<()> {
                self.inner.delete(key).await
            }
            async fn presign_get(&self, key: &str, name: &str, ttl: std::time::Duration) -> StoreResult<String> {
                self.inner.presign_get(key, name, ttl).await
            }
        }
    };
}
delegate_blobs!(CountingCopies);
delegate_blobs!(FailingPart);
delegate_blobs!(HeldCompletion);

macro_rules! delegate_archives {
    ($t:ty, |$s:ident, $upload:ident, $number:ident, $bytes:ident| $upload_part:expr, |$s2:ident, $number2:ident| $on_copy:expr) => {
        delegate_archives!($t, |$s, $upload, $number, $bytes| $upload_part, |$s2, $number2| $on_copy, |_s3| {});
    };
    ($t:ty, |$s:ident, $upload:ident, $number:ident, $bytes:ident| $upload_part:expr, |$s2:ident, $number2:ident| $on_copy:expr, |$s3:ident| $on_complete:expr) => {
        #[async_trait]
        impl ArchiveStore for $t {
            fn parallel_parts(&self) -> usize {
                self.inner.parallel_parts()
            }
            fn can_copy_parts(&self) -> bool {
                self.inner.can_copy_parts()
            }
            async fn start_multipart(&self, key: &str) -> StoreResult<MultipartUpload> {
                self.inner.start_multipart(key).await
            }
            async fn upload_part(
                &self,
                $upload: &MultipartUpload,
                $number: u32,
                $bytes: Vec<u8>,
            ) -> StoreResult<UploadedPart> {
                let $s = self;
                $upload_part
            }
            async fn copy_part(
                &self,
                upload: &MultipartUpload,
                $number2: u32,
                source_key: &str,
                range: std::ops::Range<u64>,
                if_match: Option<&str>,
            ) -> StoreResult<UploadedPart> {
                let $s2 = self;
                $on_copy;
                self.inner.copy_part(upload, $number2, source_key, range, if_match).await
            }
            async fn complete_multipart(&self, upload: &MultipartUpload, parts: &[UploadedPart]) -> StoreResult<()> {
                let $s3 = self;
                $on_complete;
                self.inner.complete_multipart(upload, parts).await
            }
            async fn abort_multipart(&self, upload: &MultipartUpload) -> StoreResult<()> {
                self.inner.abort_multipart(upload).await
            }
            async fn open_multiparts(&self, key: &str) -> StoreResult<Vec<String>> {
                self.inner.open_multiparts(key).await
            }
        }
    };
}
delegate_archives!(
    CountingCopies,
    |s, upload, number, bytes| s.inner.upload_part(upload, number, bytes).await,
    |s, _n| {
        s.copies.fetch_add(1, Ordering::SeqCst);
    }
);
delegate_archives!(
    FailingPart,
    |s, upload, number, bytes| {
        if number == s.fail
            && s.failed.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| (n < s.times).then_some(n + 1)).is_ok()
        {
            return Err(StoreError::Backend("connection reset by peer".into()));
        }
        s.inner.upload_part(upload, number, bytes).await
    },
    |_s, _n| {}
);
delegate_archives!(
    HeldCompletion,
    |s, upload, number, bytes| s.inner.upload_part(upload, number, bytes).await,
    |_s, _n| {},
    |s| {
        s.reached.notify_one();
        s.release.notified().await;
    }
);

/// ZIP64 for real: two entries of 4.2 GiB (one deflated as it streams, one
/// stored and copied by the store) and a small one past the 4 GiB offset,
/// from sparse files made on the spot. Too slow for every run: the benchmark
/// command runs it (`./scripts/bench.sh zip64`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "writes and reads about 9 GiB; ./scripts/bench.sh zip64 runs it"]
async fn zip64_entries_and_offsets_past_4_gib_open_in_four_readers() {
    let b = super::embedded_archive_backend().await;
    let root = b.blob_dir.clone().expect("an embedded store");
    let size = 4 * 1024 * MIB as u64 + 200 * MIB as u64;
    let mut entries = Vec::new();
    let (zeros_crc, zeros_digest) = {
        use sha2::Digest;
        let (mut crc, mut sha) = (crc32fast::Hasher::new(), sha2::Sha256::new());
        let block = vec![0u8; MIB];
        for _ in 0..size / MIB as u64 {
            crc.update(&block);
            sha.update(&block);
        }
        (crc.finalize(), format!("{:x}", sha.finalize()))
    };
    for (name, content_type) in [("zeros.bin", "application/octet-stream"), ("zeros.mp4", "video/mp4")] {
        let key = format!("accounts/zip64/files/{name}/v1.bin");
        let path = root.join(&key);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::File::create(&path).unwrap().set_len(size).unwrap();
        entries.push(ArchiveEntry {
            path: name.into(),
            file_id: Some(FileId::new()),
            version: 1,
            blob_key: key,
            content_type: content_type.into(),
            size,
            crc32: zeros_crc,
            e_tag: None,
            modified: Utc::now(),
            folder_id: None,
            parent_id: None,
        });
    }
    entries.push(asset(&b, "after 4 GiB.txt", "text/plain", b"past the 32-bit offsets").await);
    let job = job(&b, &entries).await;
    ArchiveBuilder::new(&b.stores, BuildSettings::default()).build(job.id, None).await.unwrap();
    let done = reload(&b, job.id).await;
    assert_eq!(done.state, ArchiveState::Ready, "{:?}", done.failure);
    assert!(done.archive_size.unwrap() > u32::MAX as u64);
    let expected = BTreeMap::from([
        ("zeros.bin".to_string(), zeros_digest.clone()),
        ("zeros.mp4".to_string(), zeros_digest),
        ("after 4 GiB.txt".to_string(), readers::digest(b"past the 32-bit offsets")),
    ]);
    readers::verify(&root.join(&done.archive_key), &expected).unwrap_or_else(|e| panic!("{e}"));
}

/// A queue that only remembers what it was given: jobs stay in the making.
#[derive(Default)]
struct HeldQueue(std::sync::Mutex<Vec<ArchiveId>>);

#[async_trait]
impl ArchiveQueue for HeldQueue {
    async fn enqueue(&self, id: ArchiveId) -> StoreResult<()> {
        self.0.lock().unwrap().push(id);
        Ok(())
    }
}

/// Contents of one file that no other request asks for (nothing to reuse).
fn one_file() -> publinks_domain::archives::ArchiveContents {
    use publinks_domain::archives::ArchiveContents;
    let entry = ArchiveEntry {
        path: "a.txt".into(),
        file_id: Some(FileId::new()),
        version: 1,
        blob_key: "accounts/none/files/a/v1.bin".into(),
        content_type: "text/plain".into(),
        size: 10,
        crc32: 0,
        e_tag: None,
        modified: Utc::now(),
        folder_id: None,
        parent_id: None,
    };
    ArchiveContents { source: ArchiveSource::Selection { count: 1 }, name: "a".into(), entries: vec![entry] }
}

/// Sends `requesters` all at once; returns how many were accepted and the
/// limits named by the refusals.
async fn burst(
    service: &publinks_domain::archives::ArchiveService,
    requesters: Vec<publinks_domain::archives::Requester>,
) -> (usize, std::collections::BTreeSet<&'static str>) {
    use publinks_domain::DomainError;
    let tasks: Vec<_> = requesters
        .into_iter()
        .map(|r| {
            let service = service.clone();
            tokio::spawn(async move { service.submit(&r, one_file()).await })
        })
        .collect();
    let (mut accepted, mut refused_by) = (0, std::collections::BTreeSet::new());
    for task in tasks {
        match task.await.unwrap() {
            Ok(_) => accepted += 1,
            Err(DomainError::TooManyArchives { limit, retry_after, .. }) => {
                assert!((1..=3600).contains(&retry_after), "Retry-After {retry_after}");
                refused_by.insert(limit.code());
            }
            Err(other) => panic!("a request failed for another reason: {other:?}"),
        }
    }
    (accepted, refused_by)
}

pub async fn archive_limits_hold_exactly_under_concurrent_requests(b: &ArchiveBackend) {
    use publinks_domain::archives::{ArchiveService, ArchiveSettings, Requester};
    let settings = ArchiveSettings {
        open_per_session: 2,
        open_per_network: 3,
        per_link_hourly: 5,
        per_account_hourly: 7,
        ..ArchiveSettings::default()
    };
    let queue = Arc::new(HeldQueue::default());
    let service = ArchiveService::new(&b.stores, queue.clone(), settings);
    let visitor = |link: LinkId, session: String, network: Option<String>| Requester {
        account_id: AccountId::new(),
        by: Downloader::PublicLink { link_id: link, session },
        network,
    };
    // Fewer rounds on moto, which serves one request at a time.
    let rounds = if b.blob_dir.is_some() { 20 } else { 3 };
    for round in 0..rounds {
        // 20 requests from one session: its 2 places.
        let link = LinkId::new();
        let one_session = (0..20).map(|_| visitor(link, "alice".into(), None)).collect();
        let (accepted, refused_by) = burst(&service, one_session).await;
        assert_eq!(
            (accepted, refused_by.into_iter().collect::<Vec<_>>()),
            (2, vec!["open_per_session"]),
            "round {round}"
        );

        // 20 requests from 10 sessions on 10 networks: the link's hourly 5.
        let link = LinkId::new();
        let ten_sessions =
            (0..20).map(|i| visitor(link, format!("s{}", i % 10), Some(format!("192.0.2.{}", i % 10)))).collect();
        let (accepted, refused_by) = burst(&service, ten_sessions).await;
        assert_eq!(
            (accepted, refused_by.into_iter().collect::<Vec<_>>()),
            (5, vec!["per_link_hourly"]),
            "round {round}"
        );

        // 20 requests from 10 sessions on one network: the network's 3.
        let link = LinkId::new();
        let one_network =
            (0..20).map(|i| visitor(link, format!("s{}", i % 10), Some("2001:db8:1:2::/64".into()))).collect();
        let (accepted, refused_by) = burst(&service, one_network).await;
        assert_eq!(
            (accepted, refused_by.into_iter().collect::<Vec<_>>()),
            (3, vec!["open_per_network"]),
            "round {round}"
        );

        // 20 requests from the users of one account: its hourly 7.
        let account = AccountId::new();
        let users = (0..20)
            .map(|_| Requester { account_id: account, by: Downloader::User { user_id: UserId::new() }, network: None })
            .collect();
        let (accepted, refused_by) = burst(&service, users).await;
        assert_eq!(
            (accepted, refused_by.into_iter().collect::<Vec<_>>()),
            (7, vec!["per_account_hourly"]),
            "round {round}"
        );
    }
    assert_eq!(
        queue.0.lock().unwrap().len(),
        rounds * (2 + 5 + 3 + 7),
        "every accepted request, and only those, is queued"
    );
}
