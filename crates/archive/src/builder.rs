//! Builds one archive job into the downloads store.
//!
//! Memory stays flat whatever the archive's size: small files are read (and
//! deflated) a few at a time ahead of the writer, large ones are streamed in
//! chunks, and large stored ones are not read at all: the store copies them
//! into the upload server-side ([`ArchiveStore::copy_part`]), their headers
//! written from the CRC-32 and size recorded at upload. The archive goes up
//! in parts ([`PartWriter`]); it appears only when every part is there, and
//! any failure aborts the upload, so a half-written archive never looks
//! complete.
//!
//! A build is safe to repeat: each attempt starts its own upload and aborts
//! the previous attempt's, and only the latest attempt may finish the job.

use super::zip::{EntryStart, Method, Sizes, ZipError, ZipLayout};
use futures_util::StreamExt;
use publinks_domain::archives::read_manifest;
use publinks_domain::ids::ArchiveId;
use publinks_domain::model::*;
use publinks_domain::store::*;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::AsyncReadExt;
use tokio::task::JoinSet;
use tokio::time::Instant;

/// Tunables of the builder.
#[derive(Clone, Debug)]
pub struct BuildSettings {
    /// Stored files at least this large are copied by the store, not read.
    pub copy_from: u64,
    /// Files up to this size are read whole, ahead of the writer.
    pub read_ahead_max: u64,
    /// How many such files are in flight at once.
    pub read_ahead: usize,
    /// The size of streamed reads.
    pub chunk: usize,
    /// How often progress is written to the job.
    pub progress_every: Duration,
    /// How long a ready archive is kept (the downloads bucket's lifecycle rule).
    pub archive_ttl: chrono::Duration,
    /// Stop this long before the deadline, so that failing is still possible.
    pub deadline_margin: Duration,
    /// DEFLATE level: 1–9 for zlib-rs, 1–12 for libdeflate (streamed
    /// files, always through zlib-rs, take it up to 9).
    pub level: u32,
    /// What deflates the files read whole.
    pub whole_files: WholeFileDeflate,
    /// Attempts in one run of [`ArchiveBuilder::build`] when storage fails
    /// in a way that may pass (throttling, a 5xx, a timeout).
    pub attempts: u32,
    /// The pause before the second attempt; each further one waits twice as long.
    pub retry_pause: Duration,
}

impl Default for BuildSettings {
    fn default() -> Self {
        BuildSettings {
            copy_from: 16 * 1024 * 1024,
            read_ahead_max: 4 * 1024 * 1024,
            read_ahead: 8,
            chunk: 1024 * 1024,
            progress_every: Duration::from_secs(1),
            archive_ttl: chrono::Duration::hours(24),
            deadline_margin: Duration::from_secs(10),
            level: 6,
            whole_files: WholeFileDeflate::ZlibRs,
            attempts: 3,
            retry_pause: Duration::from_secs(1),
        }
    }
}

/// The DEFLATE implementation of files read whole (up to
/// [`BuildSettings::read_ahead_max`]); larger files stream through zlib-rs
/// (libdeflate compresses whole buffers only).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WholeFileDeflate {
    /// zlib-rs (zlib-ng's algorithms, in Rust), through flate2.
    ZlibRs,
    /// libdeflate (C), one call over the whole file: the benchmark's
    /// comparison (feature `libdeflate`; the functions do not link it).
    #[cfg(feature = "libdeflate")]
    Libdeflate,
}

/// Why a build stopped.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// A file of the archive cannot be read as it was when the job was made.
    #[error("{0}")]
    Source(String),
    /// The build would not finish before its deadline.
    #[error("the archive could not be finished in time")]
    OutOfTime,
    /// A newer attempt took the job over; this one leaves it alone.
    #[error("a newer build of this archive took over")]
    Superseded,
    /// The build failed and the job says why (the reason, for logs).
    #[error("the archive failed: {0}")]
    Failed(String),
    /// Storage failed in a way that may pass, on every attempt of this run;
    /// the job stays in the making for the next delivery of its message.
    #[error("storage failed, to be tried again: {0}")]
    Deferred(String),
    #[error(transparent)]
    Zip(#[from] ZipError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl BuildError {
    /// Whether trying again may help: storage that failed (throttling, a 5xx,
    /// a timeout) or a record changed meanwhile. A missing or changed file,
    /// the deadline or a broken entry stay as they are.
    pub fn may_pass(&self) -> bool {
        matches!(self, BuildError::Store(StoreError::Backend(_) | StoreError::Conflict(_)))
    }

    /// What the job tells people.
    fn reason(&self) -> String {
        match self {
            BuildError::Store(StoreError::Backend(_)) => "storage failed while the archive was written".into(),
            BuildError::Zip(ZipError::SizesChanged { name, .. }) => format!("{name} changed since it was stored"),
            BuildError::Store(StoreError::Conflict("stored file")) => {
                "a file changed since the archive was asked for".into()
            }
            other => other.to_string(),
        }
    }
}

/// Builds archive jobs. One instance serves every job of a process.
#[derive(Clone)]
pub struct ArchiveBuilder {
    jobs: Arc<dyn VisitorRecords>,
    blobs: Arc<dyn BlobStore>,
    archives: Arc<dyn ArchiveStore>,
    settings: BuildSettings,
    /// The time jobs' deadlines and expiry are read against.
    time: Arc<dyn publinks_domain::clock::Clock>,
}

/// The part size for an archive of about `estimate` bytes: at least 8 MiB,
/// and large enough that streamed parts plus the extra parts of server-side
/// copies stay within [`MAX_PARTS`].
pub fn part_size_for(estimate: u64) -> u64 {
    (estimate.div_ceil(u64::from(MAX_PARTS) / 2 - 500)).clamp(8 * 1024 * 1024, MAX_PART_SIZE)
}

/// An entry made ready for the writer.
enum Prepared {
    Folder(ArchiveEntry),
    /// Read (and maybe deflated) ahead: the header can carry the sizes.
    Inline {
        entry: ArchiveEntry,
        method: Method,
        sizes: Sizes,
        data: Vec<u8>,
    },
    /// Copied by the store from the asset.
    Copy(ArchiveEntry),
    /// Streamed as it is, headed by the recorded CRC-32, which is checked.
    StreamStored(ArchiveEntry),
    /// Streamed through DEFLATE, with a data descriptor.
    StreamDeflated(ArchiveEntry),
}

fn source_error(entry: &ArchiveEntry, e: StoreError) -> BuildError {
    match e {
        StoreError::NotFound(_) => BuildError::Source(format!("{} is no longer stored", entry.path)),
        other => BuildError::Store(other),
    }
}

async fn read_whole(blobs: &dyn BlobStore, entry: &ArchiveEntry) -> Result<Vec<u8>, BuildError> {
    let mut data = Vec::with_capacity(entry.size as usize);
    let reader = blobs.open(&entry.blob_key).await.map_err(|e| source_error(entry, e))?;
    reader
        .take(entry.size + 1)
        .read_to_end(&mut data)
        .await
        .map_err(|e| BuildError::Store(StoreError::Backend(format!("reading {}: {e}", entry.path))))?;
    if data.len() as u64 != entry.size {
        return Err(BuildError::Source(format!("{} changed since it was stored", entry.path)));
    }
    Ok(data)
}

fn deflate_all(data: &[u8], level: u32, with: WholeFileDeflate) -> Vec<u8> {
    use std::io::Write;
    match with {
        WholeFileDeflate::ZlibRs => {}
        #[cfg(feature = "libdeflate")]
        WholeFileDeflate::Libdeflate => {
            let level = libdeflater::CompressionLvl::new(level.clamp(1, 12) as i32).expect("a level of 1 to 12");
            let mut compressor = libdeflater::Compressor::new(level);
            let mut out = vec![0; compressor.deflate_compress_bound(data.len())];
            let n = compressor.deflate_compress(data, &mut out).expect("the bound holds the output");
            out.truncate(n);
            return out;
        }
    }
    let mut encoder = flate2::write::DeflateEncoder::new(
        Vec::with_capacity(data.len() / 2 + 64),
        flate2::Compression::new(level.min(9)),
    );
    encoder.write_all(data).expect("writing to a Vec cannot fail");
    encoder.finish().expect("writing to a Vec cannot fail")
}

async fn prepare(
    blobs: Arc<dyn BlobStore>,
    entry: ArchiveEntry,
    settings: BuildSettings,
    copy_from: Option<u64>,
) -> Result<Prepared, BuildError> {
    if entry.file_id.is_none() {
        return Ok(Prepared::Folder(entry));
    }
    let stored = super::already_compressed(&entry.content_type);
    if stored && copy_from.is_some_and(|min| entry.size >= min) {
        return Ok(Prepared::Copy(entry));
    }
    if entry.size > settings.read_ahead_max {
        return Ok(if stored { Prepared::StreamStored(entry) } else { Prepared::StreamDeflated(entry) });
    }
    let data = read_whole(blobs.as_ref(), &entry).await?;
    let crc32 = crc32fast::hash(&data);
    if crc32 != entry.crc32 {
        return Err(BuildError::Source(format!("{} changed since it was stored", entry.path)));
    }
    let size = entry.size;
    let as_is = Sizes { crc32, compressed: size, uncompressed: size };
    if stored || size == 0 {
        return Ok(Prepared::Inline { entry, method: Method::Stored, sizes: as_is, data });
    }
    let (level, with) = (settings.level, settings.whole_files);
    let (data, packed) = tokio::task::spawn_blocking(move || {
        let packed = deflate_all(&data, level, with);
        (data, packed)
    })
    .await
    .map_err(|e| BuildError::Store(StoreError::Backend(e.to_string())))?;
    Ok(if packed.len() < data.len() {
        let sizes = Sizes { crc32, compressed: packed.len() as u64, uncompressed: size };
        Prepared::Inline { entry, method: Method::Deflated, sizes, data: packed }
    } else {
        Prepared::Inline { entry, method: Method::Stored, sizes: as_is, data }
    })
}

/// Uploads an archive in parts as it is written: up to the store's
/// [`parallel_parts`](ArchiveStore::parallel_parts) at once, so reading and
/// uploading overlap, and never more than that many parts in memory.
pub struct PartWriter {
    store: Arc<dyn ArchiveStore>,
    upload: MultipartUpload,
    part_size: usize,
    buffer: Vec<u8>,
    next_number: u32,
    written: u64,
    in_flight: JoinSet<StoreResult<UploadedPart>>,
    done: Vec<UploadedPart>,
}

impl PartWriter {
    /// A writer of `upload` in parts of `part_size` bytes.
    pub fn new(store: Arc<dyn ArchiveStore>, upload: MultipartUpload, part_size: u64) -> Self {
        let part_size = part_size.clamp(MIN_PART_SIZE, MAX_PART_SIZE) as usize;
        PartWriter {
            store,
            upload,
            part_size,
            buffer: Vec::with_capacity(part_size),
            next_number: 1,
            written: 0,
            in_flight: JoinSet::new(),
            done: Vec::new(),
        }
    }

    fn take_number(&mut self) -> StoreResult<u32> {
        let n = self.next_number;
        if n > MAX_PARTS {
            return Err(StoreError::Backend(format!("the archive needs more than {MAX_PARTS} parts")));
        }
        self.next_number += 1;
        Ok(n)
    }

    async fn make_room(&mut self) -> StoreResult<()> {
        while self.in_flight.len() >= self.store.parallel_parts().max(1) {
            self.collect_one().await?;
        }
        Ok(())
    }

    async fn collect_one(&mut self) -> StoreResult<()> {
        if let Some(result) = self.in_flight.join_next().await {
            let part = result.map_err(|e| StoreError::Backend(format!("part upload: {e}")))??;
            self.done.push(part);
        }
        Ok(())
    }

    async fn flush(&mut self) -> StoreResult<()> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        self.make_room().await?;
        let number = self.take_number()?;
        let bytes = std::mem::replace(&mut self.buffer, Vec::with_capacity(self.part_size));
        let (store, upload) = (self.store.clone(), self.upload.clone());
        self.in_flight.spawn(async move { store.upload_part(&upload, number, bytes).await });
        Ok(())
    }

    /// Appends bytes to the archive.
    pub async fn write(&mut self, mut bytes: &[u8]) -> StoreResult<()> {
        self.written += bytes.len() as u64;
        while !bytes.is_empty() {
            let take = (self.part_size - self.buffer.len()).min(bytes.len());
            self.buffer.extend_from_slice(&bytes[..take]);
            bytes = &bytes[take..];
            if self.buffer.len() == self.part_size {
                self.flush().await?;
            }
        }
        Ok(())
    }

    /// Appends up to `max` bytes read from `reader` straight into the part
    /// being filled (no buffer between: the bytes are copied once), handing
    /// what was read to `seen` first (a checksum). Returns how many bytes
    /// were read: 0 at the end of the reader.
    pub async fn write_from(
        &mut self,
        reader: &mut BlobReader,
        max: usize,
        seen: &mut impl FnMut(&[u8]),
    ) -> std::io::Result<usize> {
        use bytes::BufMut;
        let room = (self.part_size - self.buffer.len()).min(max);
        if room == 0 {
            return Ok(0);
        }
        let start = self.buffer.len();
        let n = reader.read_buf(&mut (&mut self.buffer).limit(room)).await?;
        seen(&self.buffer[start..]);
        self.written += n as u64;
        if self.buffer.len() == self.part_size {
            self.flush().await.map_err(std::io::Error::other)?;
        }
        Ok(n)
    }

    /// Appends `range` of the asset `key`. What can be a part of its own is
    /// copied by the store; the rest (to fill the part before it up to the
    /// minimum part size, or a short tail) is read through here.
    /// With `if_match`, the store copies only while the asset's ETag is that one.
    pub async fn copy(
        &mut self,
        blobs: &dyn BlobStore,
        key: &str,
        range: std::ops::Range<u64>,
        if_match: Option<&str>,
    ) -> StoreResult<()> {
        let mut start = range.start;
        let short = MIN_PART_SIZE.saturating_sub(self.buffer.len() as u64).min(range.end - start);
        if short > 0 {
            self.read_through(blobs, key, start..start + short).await?;
            start += short;
        }
        let remaining = range.end - start;
        if remaining < MIN_PART_SIZE {
            return self.read_through(blobs, key, start..range.end).await;
        }
        self.flush().await?;
        let chunks = remaining.div_ceil(MAX_PART_SIZE);
        let each = remaining / chunks;
        for i in 0..chunks {
            let from = start + i * each;
            let to = if i + 1 == chunks { range.end } else { from + each };
            self.make_room().await?;
            let number = self.take_number()?;
            let (store, upload, key) = (self.store.clone(), self.upload.clone(), key.to_string());
            let if_match = if_match.map(str::to_string);
            self.in_flight
                .spawn(async move { store.copy_part(&upload, number, &key, from..to, if_match.as_deref()).await });
            self.written += to - from;
        }
        Ok(())
    }

    async fn read_through(&mut self, blobs: &dyn BlobStore, key: &str, range: std::ops::Range<u64>) -> StoreResult<()> {
        let len = range.end - range.start;
        let mut reader = blobs.open_range(key, range).await?;
        let mut chunk = vec![0u8; 256 * 1024];
        let mut left = len;
        while left > 0 {
            let n = reader.read(&mut chunk).await.map_err(|e| StoreError::Backend(format!("reading {key}: {e}")))?;
            if n == 0 {
                return Err(StoreError::NotFound("blob"));
            }
            let n = n.min(left as usize);
            self.write(&chunk[..n]).await?;
            left -= n as u64;
        }
        Ok(())
    }

    /// Uploads what is buffered, waits for every part, and returns them in order.
    pub async fn finish(mut self) -> StoreResult<(Vec<UploadedPart>, u64)> {
        self.flush().await?;
        while !self.in_flight.is_empty() {
            self.collect_one().await?;
        }
        self.done.sort_by_key(|p| p.number);
        Ok((self.done, self.written))
    }
}

/// When the current attempt must stop.
struct Clock {
    stop_at: Instant,
}

impl Clock {
    fn check(&self) -> Result<(), BuildError> {
        if Instant::now() >= self.stop_at { Err(BuildError::OutOfTime) } else { Ok(()) }
    }
}

impl ArchiveBuilder {
    /// A builder reading assets from `blobs` and writing into `archives`.
    pub fn new(stores: &Stores, settings: BuildSettings) -> Self {
        ArchiveBuilder {
            jobs: stores.visitors.clone(),
            blobs: stores.blobs.clone(),
            archives: stores.archives.clone(),
            settings,
            time: stores.clock.clone(),
        }
    }

    /// Builds job `id`, unless it is already finished. `deadline` is the
    /// runtime's own (a Lambda invocation's end); the job's deadline applies too.
    /// A failure that may pass ([`BuildError::may_pass`]) is tried again
    /// after a pause, up to [`BuildSettings::attempts`] times while time
    /// remains. The job ends ready or failed; the error says why it failed.
    pub async fn build(&self, id: ArchiveId, deadline: Option<Instant>) -> Result<(), BuildError> {
        self.run(id, deadline, false).await
    }

    /// [`build`](Self::build), for a job whose message will be delivered
    /// again (SQS): when every attempt of this run failed in a way that may
    /// pass, the job is left in the making for that delivery and the answer
    /// is [`BuildError::Deferred`]; it is failed only for a reason that
    /// stays.
    pub async fn build_or_defer(&self, id: ArchiveId, deadline: Option<Instant>) -> Result<(), BuildError> {
        self.run(id, deadline, true).await
    }

    async fn run(&self, id: ArchiveId, deadline: Option<Instant>, delivered_again: bool) -> Result<(), BuildError> {
        let mut pause = self.settings.retry_pause;
        let attempts = self.settings.attempts.max(1);
        for run_attempt in 1..=attempts {
            let Some(job) = self.jobs.archive_job(id).await? else {
                return Ok(());
            };
            if !job.is_open() {
                return Ok(());
            }
            let until_job_deadline = (job.deadline - self.time.now()).to_std().unwrap_or_default();
            let mut stop_at = Instant::now() + until_job_deadline;
            if let Some(d) = deadline {
                stop_at = stop_at.min(d);
            }
            let clock = Clock { stop_at: stop_at.checked_sub(self.settings.deadline_margin).unwrap_or(stop_at) };
            if clock.check().is_err() {
                let attempt = job.attempt;
                return self.fail(job.id, attempt, BuildError::OutOfTime).await;
            }
            let (attempt, error) = match self.attempt(job, &clock).await {
                Ok(()) => return Ok(()),
                Err(failed) => failed,
            };
            if error.may_pass() {
                tracing::warn!(job = %id, %error, run_attempt, "archive build failed; it may pass");
                if run_attempt < attempts && Instant::now() + pause < clock.stop_at {
                    tokio::time::sleep(pause).await;
                    pause *= 2;
                    continue;
                }
                if delivered_again {
                    return Err(BuildError::Deferred(error.to_string()));
                }
            }
            return self.fail(id, attempt, error).await;
        }
        unreachable!("the last attempt returns")
    }

    /// One attempt: takes the job over, writes the archive and completes it.
    /// A failure aborts this attempt's upload and comes back with the
    /// attempt's number, for the caller to decide what the job becomes.
    async fn attempt(&self, job: ArchiveJob, clock: &Clock) -> Result<(), (u32, BuildError)> {
        let id = job.id;
        let before = job.attempt;
        let upload = self.archives.start_multipart(&job.archive_key).await.map_err(|e| (before, e.into()))?;
        let (job, previous_upload) = match self.take_over(job, &upload).await {
            Ok(taken) => taken,
            Err(BuildError::Superseded) => {
                let _ = self.archives.abort_multipart(&upload).await;
                return Ok(());
            }
            Err(e) => {
                let _ = self.archives.abort_multipart(&upload).await;
                return Err((before, e));
            }
        };
        if let Some(previous) = previous_upload {
            let previous = MultipartUpload { key: job.archive_key.clone(), upload_id: previous };
            if let Err(e) = self.archives.abort_multipart(&previous).await {
                tracing::warn!(error = %e, "could not abort the previous attempt's upload");
            }
        }
        let attempt = job.attempt;
        let mut progress = Progress { job, last: Instant::now(), finishing: false };
        let outcome = match self.write(&mut progress, &upload, clock).await {
            Ok((parts, size)) => {
                self.archives.complete_multipart(&upload, &parts).await.map(|()| size).map_err(BuildError::from)
            }
            Err(e) => Err(e),
        };
        let size = match outcome {
            Ok(size) => size,
            Err(e) => {
                if let Err(abort) = self.archives.abort_multipart(&upload).await {
                    tracing::error!(error = %abort, "could not abort a failed archive upload");
                }
                return match e {
                    BuildError::Superseded => Ok(()),
                    e => Err((attempt, e)),
                };
            }
        };
        let expires_at = self.time.now() + self.settings.archive_ttl;
        self.finish(id, attempt, |job| {
            job.state = ArchiveState::Ready;
            job.archive_size = Some(size);
            job.files_done = job.file_count;
            job.bytes_done = job.total_bytes;
            job.finishing = false;
            job.expires_at = Some(expires_at);
        })
        .await
        .map_err(|e| (attempt, e))
    }

    /// Marks the job building by this attempt; returns it and the upload of
    /// the attempt it replaces.
    async fn take_over(
        &self,
        mut job: ArchiveJob,
        upload: &MultipartUpload,
    ) -> Result<(ArchiveJob, Option<String>), BuildError> {
        for _ in 0..8 {
            let previous = job.upload_id.clone();
            let mut next = job.clone();
            next.state = ArchiveState::Building;
            next.attempt += 1;
            next.upload_id = Some(upload.upload_id.clone());
            next.files_done = 0;
            next.bytes_done = 0;
            next.finishing = false;
            next.updated_at = self.time.now();
            match self.jobs.replace_archive_job(&next).await {
                Ok(stored) => return Ok((stored, previous)),
                Err(StoreError::Conflict(_)) => {
                    job = self.jobs.archive_job(job.id).await?.ok_or(StoreError::NotFound("archive job"))?;
                    if !job.is_open() {
                        return Err(BuildError::Superseded);
                    }
                }
                Err(e) => return Err(e.into()),
            }
        }
        Err(StoreError::Conflict("archive job").into())
    }

    /// Records the failure, unless a newer attempt owns the job; then
    /// [`BuildError::Failed`] (a failure to record it stays a store error).
    async fn fail(&self, id: ArchiveId, attempt: u32, error: BuildError) -> Result<(), BuildError> {
        let reason = error.reason();
        tracing::warn!(job = %id, %reason, %error, "archive build failed");
        self.finish(id, attempt, |j| {
            j.state = ArchiveState::Failed;
            j.finishing = false;
            j.failure = Some(reason.clone());
        })
        .await?;
        Err(BuildError::Failed(reason))
    }

    /// Applies `change` to the job if `attempt` still owns it, and frees the
    /// limit slots it held.
    async fn finish(&self, id: ArchiveId, attempt: u32, change: impl Fn(&mut ArchiveJob)) -> Result<(), BuildError> {
        for _ in 0..8 {
            let Some(mut job) = self.jobs.archive_job(id).await? else {
                return Ok(());
            };
            if job.attempt != attempt || !job.is_open() {
                return Ok(());
            }
            change(&mut job);
            job.upload_id = None;
            job.updated_at = self.time.now();
            match self.jobs.replace_archive_job(&job).await {
                Ok(finished) => {
                    publinks_domain::archives::free_slots(self.jobs.as_ref(), &finished).await;
                    return Ok(());
                }
                Err(StoreError::Conflict(_)) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(StoreError::Conflict("archive job").into())
    }

    async fn write(
        &self,
        progress: &mut Progress,
        upload: &MultipartUpload,
        clock: &Clock,
    ) -> Result<(Vec<UploadedPart>, u64), BuildError> {
        let entries = read_manifest(self.archives.as_ref(), &progress.job.manifest_key).await?;
        let estimate = entries.iter().map(|e| e.size + 2 * e.path.len() as u64 + 150).sum::<u64>() + 1024;
        let part_size = part_size_for(estimate);
        let copy_from = self.archives.can_copy_parts().then(|| self.settings.copy_from.max(2 * part_size));
        let mut out = PartWriter::new(self.archives.clone(), upload.clone(), part_size);
        let mut layout = ZipLayout::new();
        let (mut files, mut bytes) = (0u32, 0u64);

        let settings = self.settings.clone();
        let blobs = self.blobs.clone();
        let mut prepared = futures_util::stream::iter(entries)
            .map(|entry| tokio::spawn(prepare(blobs.clone(), entry, settings.clone(), copy_from)))
            .buffered(self.settings.read_ahead.max(1));

        while let Some(next) = prepared.next().await {
            clock.check()?;
            let next = next.map_err(|e| BuildError::Store(StoreError::Backend(e.to_string())))??;
            let entry = match next {
                Prepared::Folder(entry) => {
                    let empty = Sizes { crc32: 0, compressed: 0, uncompressed: 0 };
                    out.write(&layout.begin(&start(&entry, Method::Stored, Some(empty)))?).await?;
                    out.write(&layout.end(empty)?).await?;
                    continue;
                }
                Prepared::Inline { entry, method, sizes, data } => {
                    out.write(&layout.begin(&start(&entry, method, Some(sizes)))?).await?;
                    out.write(&data).await?;
                    out.write(&layout.end(sizes)?).await?;
                    entry
                }
                Prepared::Copy(entry) => {
                    let sizes = Sizes { crc32: entry.crc32, compressed: entry.size, uncompressed: entry.size };
                    out.write(&layout.begin(&start(&entry, Method::Stored, Some(sizes)))?).await?;
                    out.copy(self.blobs.as_ref(), &entry.blob_key, 0..entry.size, entry.e_tag.as_deref())
                        .await
                        .map_err(|e| source_error(&entry, e))?;
                    out.write(&layout.end(sizes)?).await?;
                    entry
                }
                Prepared::StreamStored(entry) => {
                    let sizes = Sizes { crc32: entry.crc32, compressed: entry.size, uncompressed: entry.size };
                    out.write(&layout.begin(&start(&entry, Method::Stored, Some(sizes)))?).await?;
                    let actual = self.stream(&entry, &mut out, None, clock, progress, files, bytes).await?;
                    out.write(&layout.end(actual)?).await?;
                    entry
                }
                Prepared::StreamDeflated(entry) => {
                    out.write(&layout.begin(&start(&entry, Method::Deflated, None))?).await?;
                    let compress = flate2::Compress::new(flate2::Compression::new(self.settings.level.min(9)), false);
                    let actual = self.stream(&entry, &mut out, Some(compress), clock, progress, files, bytes).await?;
                    out.write(&layout.end(actual)?).await?;
                    entry
                }
            };
            files += 1;
            bytes += entry.size;
            progress.report(self, files, bytes, false).await?;
        }
        out.write(&layout.finish()?).await?;
        // Every file is in; the last parts and the completion remain.
        progress.finishing = true;
        progress.report(self, files, bytes, true).await?;
        Ok(out.finish().await?)
    }

    /// Streams one file into the archive, deflating it when `compress` is
    /// given; returns its CRC-32 and sizes as written.
    #[allow(clippy::too_many_arguments)]
    async fn stream(
        &self,
        entry: &ArchiveEntry,
        out: &mut PartWriter,
        mut compress: Option<flate2::Compress>,
        clock: &Clock,
        progress: &mut Progress,
        files: u32,
        bytes_before: u64,
    ) -> Result<Sizes, BuildError> {
        let mut reader = self.blobs.open(&entry.blob_key).await.map_err(|e| source_error(entry, e))?;
        let mut crc = crc32fast::Hasher::new();
        let (mut read, mut compressed) = (0u64, 0u64);
        let reading = |e: std::io::Error| match e.downcast::<StoreError>() {
            Ok(store) => BuildError::Store(store),
            Err(e) => BuildError::Store(StoreError::Backend(format!("reading {}: {e}", entry.path))),
        };
        if compress.is_none() {
            // Stored: read straight into the archive's parts; one byte past
            // the recorded size tells a file that grew.
            loop {
                clock.check()?;
                let left = (entry.size + 1 - read).min(self.settings.chunk as u64) as usize;
                let n = out.write_from(&mut reader, left, &mut |bytes| crc.update(bytes)).await.map_err(reading)?;
                read += n as u64;
                if read > entry.size {
                    return Err(BuildError::Source(format!("{} changed since it was stored", entry.path)));
                }
                progress.report(self, files, bytes_before + read, false).await?;
                if n == 0 {
                    return Ok(Sizes { crc32: crc.finalize(), compressed: read, uncompressed: read });
                }
            }
        }
        let mut chunk = vec![0u8; self.settings.chunk];
        loop {
            clock.check()?;
            let mut filled = 0;
            while filled < chunk.len() {
                let n = reader
                    .read(&mut chunk[filled..])
                    .await
                    .map_err(|e| BuildError::Store(StoreError::Backend(format!("reading {}: {e}", entry.path))))?;
                if n == 0 {
                    break;
                }
                filled += n;
            }
            let last = filled < chunk.len();
            crc.update(&chunk[..filled]);
            read += filled as u64;
            if read > entry.size {
                return Err(BuildError::Source(format!("{} changed since it was stored", entry.path)));
            }
            match compress.take() {
                None => {
                    out.write(&chunk[..filled]).await?;
                    compressed += filled as u64;
                }
                Some(c) => {
                    let input = chunk[..filled].to_vec();
                    let (c, packed) = tokio::task::spawn_blocking(move || deflate_chunk(c, &input, last))
                        .await
                        .map_err(|e| BuildError::Store(StoreError::Backend(e.to_string())))?;
                    out.write(&packed).await?;
                    compressed += packed.len() as u64;
                    compress = Some(c);
                }
            }
            progress.report(self, files, bytes_before + read, false).await?;
            if last {
                break;
            }
        }
        Ok(Sizes { crc32: crc.finalize(), compressed, uncompressed: read })
    }
}

/// Deflates one chunk of a stream (`last`: and ends the stream).
fn deflate_chunk(mut c: flate2::Compress, input: &[u8], last: bool) -> (flate2::Compress, Vec<u8>) {
    let flush = if last { flate2::FlushCompress::Finish } else { flate2::FlushCompress::None };
    let mut out = Vec::with_capacity(input.len() / 2 + 1024);
    let mut consumed = 0;
    loop {
        if out.capacity() - out.len() < 1024 {
            out.reserve(out.capacity().max(64 * 1024));
        }
        let before = c.total_in();
        let status = c.compress_vec(&input[consumed..], &mut out, flush).expect("DEFLATE of bytes cannot fail");
        consumed += (c.total_in() - before) as usize;
        let done = match status {
            flate2::Status::StreamEnd => true,
            _ => consumed == input.len() && !last && out.capacity() > out.len(),
        };
        if done {
            return (c, out);
        }
    }
}

fn start(entry: &ArchiveEntry, method: Method, known: Option<Sizes>) -> EntryStart<'_> {
    EntryStart { name: &entry.path, method, modified: entry.modified, known, size_hint: entry.size }
}

/// The job as this attempt last wrote it, and when.
struct Progress {
    job: ArchiveJob,
    last: Instant,
    /// Every file is written: what remains is uploading the last parts and
    /// completing the archive.
    finishing: bool,
}

impl Progress {
    /// Writes progress to the job, at most every `progress_every` (or now, if `force`).
    async fn report(
        &mut self,
        builder: &ArchiveBuilder,
        files: u32,
        bytes: u64,
        force: bool,
    ) -> Result<(), BuildError> {
        if !force && self.last.elapsed() < builder.settings.progress_every {
            return Ok(());
        }
        self.last = Instant::now();
        let attempt = self.job.attempt;
        for _ in 0..8 {
            let mut next = self.job.clone();
            next.files_done = files;
            next.bytes_done = bytes.min(next.total_bytes);
            next.finishing = self.finishing;
            next.updated_at = builder.time.now();
            match builder.jobs.replace_archive_job(&next).await {
                Ok(stored) => {
                    self.job = stored;
                    return Ok(());
                }
                Err(StoreError::Conflict(_)) => {
                    let current =
                        builder.jobs.archive_job(self.job.id).await?.ok_or(StoreError::NotFound("archive job"))?;
                    if current.attempt != attempt || !current.is_open() {
                        return Err(BuildError::Superseded);
                    }
                    self.job = current;
                }
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Streamed parts (at most estimate / part size) plus, per server-side
    /// copy of at least two parts' worth, one short part before it and the
    /// copy's own parts: within S3's 10,000 for any archive up to 5 TiB.
    #[test]
    fn parts_grow_with_the_archive_and_stay_within_the_limit() {
        const GIB: u64 = 1024 * 1024 * 1024;
        assert_eq!(part_size_for(1), 8 * 1024 * 1024, "small archives: 8 MiB parts");
        for estimate in [GIB, 15 * GIB, 50 * GIB, 1024 * GIB, 5 * 1024 * GIB] {
            let part = part_size_for(estimate);
            let streamed = estimate.div_ceil(part);
            let copies = estimate / (2 * part);
            let worst = streamed + 2 * copies + 1;
            assert!(worst <= u64::from(MAX_PARTS), "{estimate}: {worst} parts of {part}");
            assert!((MIN_PART_SIZE..=MAX_PART_SIZE).contains(&part));
        }
    }

    #[test]
    fn whole_files_deflated_by_either_implementation_inflate_to_their_input() {
        use std::io::Read;
        let input: Vec<u8> = (0..300_000u32).map(|i| b"alpha bravo charlie\n"[(i * 7 % 20) as usize]).collect();
        let choices = [
            (WholeFileDeflate::ZlibRs, 6),
            (WholeFileDeflate::ZlibRs, 12),
            #[cfg(feature = "libdeflate")]
            (WholeFileDeflate::Libdeflate, 6),
            #[cfg(feature = "libdeflate")]
            (WholeFileDeflate::Libdeflate, 12),
        ];
        for (with, level) in choices {
            for input in [&input[..], &[]] {
                let packed = deflate_all(input, level, with);
                assert!(packed.len() <= input.len() / 10 + 8, "{with:?} {level}: {} bytes", packed.len());
                let mut back = Vec::new();
                flate2::read::DeflateDecoder::new(&packed[..]).read_to_end(&mut back).unwrap();
                assert!(back == input, "{with:?} {level}");
            }
        }
    }

    #[test]
    fn a_chunked_deflate_stream_inflates_to_its_input() {
        use std::io::Read;
        let input: Vec<u8> = (0..3_000_000u32).map(|i| (i % 97) as u8).collect();
        let mut compress = flate2::Compress::new(flate2::Compression::new(6), false);
        let mut packed = Vec::new();
        let chunks: Vec<&[u8]> = input.chunks(1 << 20).collect();
        for (i, chunk) in chunks.iter().enumerate() {
            let (c, out) = deflate_chunk(compress, chunk, i + 1 == chunks.len());
            compress = c;
            packed.extend(out);
        }
        let mut back = Vec::new();
        flate2::read::DeflateDecoder::new(&packed[..]).read_to_end(&mut back).unwrap();
        assert!(back == input);
    }
}
