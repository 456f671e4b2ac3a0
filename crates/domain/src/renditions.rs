//! Preview renditions of images: a grid size and a large size, made once
//! per version by a library job (never while a visitor waits) and stored
//! beside the version's bytes, under keys derived from its blob key, so that
//! they go when the version goes. Decoding and encoding are behind the
//! [`RenditionMaker`] port: only the processes that run library jobs link
//! the image codecs (`publinks-media`).

use super::{DomainError, DomainResult};
use crate::branding::Watermark;
use crate::ids::AccountId;
use crate::jobs::LibraryJob;
use crate::store::{BlobReader, BlobStore, LibraryJobQueue, StoreError};
use chrono::{DateTime, Utc};
use std::sync::Arc;

/// The sizes a rendition is made in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RenditionSize {
    /// For folder grids: at most [`GRID_SIDE`] pixels on the long side.
    Grid,
    /// For the viewer: at most [`LARGE_SIDE`] pixels on the long side.
    Large,
}

/// Long side of a grid rendition: a card is at most 200 CSS pixels wide, so
/// this is sharp on screens of two device pixels per CSS pixel.
pub const GRID_SIDE: u32 = 400;
/// Long side of a large rendition: fills a 1080p or 1440p window.
pub const LARGE_SIDE: u32 = 2048;
/// The format renditions are stored and served in.
pub const RENDITION_CONTENT_TYPE: &str = "image/webp";
/// Largest original a rendition is made of: it is read whole into memory.
pub const MAX_RENDITION_SOURCE_BYTES: u64 = 40 * 1024 * 1024;

impl RenditionSize {
    /// Every size, each made by one job.
    pub const ALL: [RenditionSize; 2] = [RenditionSize::Grid, RenditionSize::Large];

    /// The most pixels on the long side.
    pub fn long_side(self) -> u32 {
        match self {
            RenditionSize::Grid => GRID_SIDE,
            RenditionSize::Large => LARGE_SIDE,
        }
    }

    fn name(self) -> &'static str {
        match self {
            RenditionSize::Grid => "grid",
            RenditionSize::Large => "large",
        }
    }
}

/// Content types renditions are made of (what `publinks-media` decodes).
pub const RENDITION_TYPES: &[&str] = &["image/png", "image/jpeg"];

/// Whether renditions are made of a file of `content_type` ([`RENDITION_TYPES`]).
pub fn renditions_possible(content_type: &str) -> bool {
    RENDITION_TYPES.contains(&content_type)
}

/// Where the rendition of size `size` of the version stored at `blob_key` is.
pub fn rendition_key(blob_key: &str, size: RenditionSize) -> String {
    format!("{blob_key}.{}.webp", size.name())
}

/// The marker of a version no rendition can be made of (its reason inside),
/// so that it is neither decoded again nor waited for.
pub fn renditions_failed_key(blob_key: &str) -> String {
    format!("{blob_key}.renditions-failed")
}

/// Where the watermarked large rendition of the version at `blob_key` is
/// (what preview-only links serve): the watermark's
/// [fingerprint](crate::branding::Watermark::fingerprint), then the WebP. One
/// key per version, so that it goes with the version; a changed watermark
/// no longer matches its fingerprint and is made again.
pub fn watermarked_key(blob_key: &str) -> String {
    format!("{blob_key}.large.watermarked")
}

/// Where the worker notes, with its reason inside, that it could not burn
/// the watermark of fingerprint `fingerprint` into `account`'s previews (a
/// logo whose header is sound and whose body is broken): views then stop
/// asking for it, until the watermark changes (a new logo, a new fingerprint).
pub fn watermark_failed_key(account: AccountId, fingerprint: &str) -> String {
    format!("accounts/{account}/branding/watermark-failed-{fingerprint}")
}

/// How many watermark jobs views of this process have handed out: what
/// tests count to see that views stop asking for a watermark that failed.
pub fn watermark_jobs_asked() -> u64 {
    WATERMARK_JOBS_ASKED.load(std::sync::atomic::Ordering::Relaxed)
}

static WATERMARK_JOBS_ASKED: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Hands `account`'s watermark job for the version at `blob_key` to `jobs`
/// (a view found its watermarked preview missing).
pub async fn ask_for_watermark(jobs: &dyn LibraryJobQueue, account: AccountId, blob_key: &str) -> DomainResult<()> {
    WATERMARK_JOBS_ASKED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    Ok(jobs.enqueue(&LibraryJob::Watermark { account_id: account, blob_key: blob_key.to_string() }).await?)
}

/// Where a view's request for a version's missing renditions is noted (the
/// time it was made, RFC 3339), so that views ask at most once per
/// [`RENDITIONS_ASKED_AGAIN_AFTER`].
pub fn renditions_asked_key(blob_key: &str) -> String {
    format!("{blob_key}.renditions-asked")
}

/// How long a view's request for missing renditions stands before another
/// view may ask again: long enough that a visitor reloading a placeholder
/// queues nothing more, short enough that a lost job is asked again.
pub const RENDITIONS_ASKED_AGAIN_AFTER: chrono::TimeDelta = chrono::TimeDelta::hours(1);

/// Every key a version's renditions may occupy: what goes with the version.
pub fn rendition_keys(blob_key: &str) -> Vec<String> {
    let mut keys: Vec<String> = RenditionSize::ALL.iter().map(|s| rendition_key(blob_key, *s)).collect();
    keys.push(watermarked_key(blob_key));
    keys.push(renditions_failed_key(blob_key));
    keys.push(renditions_asked_key(blob_key));
    keys
}

/// Whether the renditions of the version at `blob_key` were asked for within
/// [`RENDITIONS_ASKED_AGAIN_AFTER`] of `now` (by its upload or by a view): a
/// view finding none asks again only when not.
pub async fn renditions_asked_recently(
    blobs: &dyn BlobStore,
    blob_key: &str,
    now: DateTime<Utc>,
) -> DomainResult<bool> {
    match blobs.open(&renditions_asked_key(blob_key)).await {
        Ok(reader) => {
            let noted = String::from_utf8(read_all(reader, 40).await?).unwrap_or_default();
            let at = DateTime::parse_from_rfc3339(noted.trim()).map(|t| t.with_timezone(&Utc));
            Ok(at.is_ok_and(|at| now.signed_duration_since(at) < RENDITIONS_ASKED_AGAIN_AFTER))
        }
        Err(StoreError::NotFound(_)) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// Notes that the renditions of the version at `blob_key` were asked for at
/// `now`: by the upload that recorded it, or by a view that found them missing.
pub async fn note_renditions_asked(blobs: &dyn BlobStore, blob_key: &str, now: DateTime<Utc>) -> DomainResult<()> {
    blobs.put(&renditions_asked_key(blob_key), now.to_rfc3339().into_bytes(), "text/plain").await?;
    Ok(())
}

/// Asks `queue` for the renditions of a version, noted first (so that views
/// meanwhile ask nothing more); a queue that refuses has the note dropped, so
/// that the next view asks again. A refusal is logged, not returned: the
/// upload or view that asked goes on without previews.
pub async fn hand_out_renditions(
    blobs: &dyn BlobStore,
    queue: &dyn crate::store::LibraryJobQueue,
    job: &crate::jobs::LibraryJob,
    blob_key: &str,
    now: DateTime<Utc>,
) -> DomainResult<()> {
    note_renditions_asked(blobs, blob_key, now).await?;
    if let Err(e) = queue.enqueue(job).await {
        tracing::warn!(blob = blob_key, error = %e, "the renditions of a version could not be handed out");
        blobs.delete(&renditions_asked_key(blob_key)).await?;
    }
    Ok(())
}

/// Decodes an image and encodes its renditions: the port behind which the
/// image codecs live.
pub trait RenditionMaker: Send + Sync {
    /// Every size of [`RenditionSize::ALL`] of these bytes, in
    /// [`RENDITION_CONTENT_TYPE`], or why none can be made (too large,
    /// damaged, not an image).
    fn make(&self, bytes: &[u8]) -> Result<Vec<(RenditionSize, Vec<u8>)>, String>;

    /// A large rendition (`rendition`, in [`RENDITION_CONTENT_TYPE`]) with
    /// `text` burned in, in the same format.
    fn watermark(&self, rendition: &[u8], text: &str) -> Result<Vec<u8>, WatermarkFailure>;

    /// A large rendition with the image `logo` (PNG, JPEG or WebP, as
    /// uploaded) blended in, in the same format; or why it cannot be.
    fn logo_watermark(&self, rendition: &[u8], logo: &[u8]) -> Result<Vec<u8>, WatermarkFailure>;
}

/// Why a watermark could not be burned into a rendition, by whose fault:
/// a mark that cannot be drawn fails every preview of the account alike,
/// a rendition that cannot be read only itself.
#[derive(Debug, PartialEq, Eq)]
pub enum WatermarkFailure {
    /// The mark itself (a logo that does not decode, the font).
    Mark(String),
    /// This rendition (not a WebP that decodes, or not one that encodes).
    Rendition(String),
}

/// Where a version's rendition stands, as a visitor may be told.
#[derive(Debug, PartialEq, Eq)]
pub enum Rendition {
    /// Made: its bytes, in [`RENDITION_CONTENT_TYPE`].
    Ready(Vec<u8>),
    /// Not made yet: the library job has not run.
    Pending,
}

fn backend(e: impl std::fmt::Display) -> DomainError {
    DomainError::Store(StoreError::Backend(e.to_string()))
}

async fn read_all(mut reader: BlobReader, capacity: usize) -> DomainResult<Vec<u8>> {
    let mut out = Vec::with_capacity(capacity);
    tokio::io::AsyncReadExt::read_to_end(&mut reader, &mut out).await.map_err(backend)?;
    Ok(out)
}

/// Makes and stores the renditions of the version at `blob_key`, once: a
/// version that has them, or whose failure is recorded, is left alone (a
/// job may run twice). An image none can be made of gets the failure
/// marker. One image is decoded at a time per process. If the version went
/// while they were made, they go too.
pub async fn make_renditions(
    blobs: &dyn BlobStore,
    maker: Arc<dyn RenditionMaker>,
    blob_key: &str,
    content_type: &str,
    size: u64,
) -> DomainResult<()> {
    if !renditions_possible(content_type) {
        return Ok(());
    }
    let failed = renditions_failed_key(blob_key);
    if blobs.head(&rendition_key(blob_key, RenditionSize::Large)).await?.is_some()
        || blobs.head(&failed).await?.is_some()
    {
        return Ok(());
    }
    if size > MAX_RENDITION_SOURCE_BYTES {
        let why = format!("{size} bytes, more than a rendition is made of");
        blobs.put(&failed, why.into_bytes(), "text/plain").await?;
        return Ok(());
    }
    let _turn = DECODING.acquire().await.map_err(backend)?;
    let original = match blobs.open(blob_key).await {
        Ok(reader) => read_all(reader, size as usize).await?,
        Err(StoreError::NotFound(_)) => return Ok(()),
        Err(e) => return Err(e.into()),
    };
    let made = tokio::task::spawn_blocking(move || maker.make(&original)).await.map_err(backend)?;
    match made {
        // The large one last: its presence says all are there.
        Ok(mut renditions) => {
            renditions.sort_by_key(|(size, _)| *size == RenditionSize::Large);
            for (size, bytes) in renditions {
                blobs.put(&rendition_key(blob_key, size), bytes, RENDITION_CONTENT_TYPE).await?;
            }
        }
        Err(why) => {
            tracing::info!(blob = blob_key, reason = %why, "no rendition can be made of this image");
            blobs.put(&failed, why.into_bytes(), "text/plain").await?;
        }
    }
    if blobs.head(blob_key).await?.is_none() {
        blobs.delete_many(&rendition_keys(blob_key)).await?;
    }
    Ok(())
}

/// One image decoded at a time per process.
static DECODING: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(1);

/// Makes and stores the watermarked large rendition of the version at
/// `blob_key` with `account`'s `watermark`, once: one made with the same
/// watermark is left alone; without a large rendition yet, or with a logo
/// replaced meanwhile, there is nothing to mark (the next view asks again).
/// A watermark that cannot be drawn is noted failed for the account
/// ([`watermark_failed_key`]); a rendition it cannot be burned into is
/// stored empty for this watermark. Neither is tried again.
pub async fn make_watermarked(
    blobs: &dyn BlobStore,
    maker: Arc<dyn RenditionMaker>,
    account: AccountId,
    blob_key: &str,
    watermark: &Watermark,
) -> DomainResult<()> {
    let fingerprint = watermark.fingerprint();
    let failed = watermark_failed_key(account, &fingerprint);
    if blobs.head(&failed).await?.is_some() {
        return Ok(());
    }
    let key = watermarked_key(blob_key);
    match blobs.open_range(&key, 0..fingerprint.len() as u64).await {
        Ok(reader) => {
            if read_all(reader, 16).await? == fingerprint.as_bytes() {
                return Ok(());
            }
        }
        Err(StoreError::NotFound(_)) => {}
        Err(e) => return Err(e.into()),
    }
    let large = match blobs.open(&rendition_key(blob_key, RenditionSize::Large)).await {
        Ok(reader) => read_all(reader, 0).await?,
        Err(StoreError::NotFound(_)) => return Ok(()),
        Err(e) => return Err(e.into()),
    };
    let logo = match watermark {
        Watermark::Text(_) => None,
        Watermark::Logo { account, logo } => {
            match blobs.open(&crate::branding::logo_key(*account, &logo.version)).await {
                Ok(reader) => Some(read_all(reader, logo.size as usize).await?),
                Err(StoreError::NotFound(_)) => return Ok(()),
                Err(e) => return Err(e.into()),
            }
        }
    };
    let _turn = DECODING.acquire().await.map_err(backend)?;
    let watermark = watermark.clone();
    let made = tokio::task::spawn_blocking(move || match (&watermark, logo) {
        (Watermark::Logo { .. }, Some(logo)) => maker.logo_watermark(&large, &logo),
        (Watermark::Text(text), _) => maker.watermark(&large, text),
        (Watermark::Logo { .. }, None) => Err(WatermarkFailure::Mark("the logo was not read".to_string())),
    })
    .await
    .map_err(backend)?;
    match made {
        Ok(webp) => {
            let mut stored = fingerprint.into_bytes();
            stored.extend_from_slice(&webp);
            blobs.put(&key, stored, "application/octet-stream").await?;
        }
        Err(WatermarkFailure::Mark(why)) => {
            tracing::warn!(blob = blob_key, reason = %why, "this account's watermark cannot be burned in");
            blobs.put(&failed, why.into_bytes(), "text/plain").await?;
        }
        // This preview alone: stored as made with this watermark, empty, so
        // its views answer that there is none and ask no more (a new
        // watermark, a new fingerprint, tries again).
        Err(WatermarkFailure::Rendition(why)) => {
            tracing::warn!(blob = blob_key, reason = %why, "no watermark could be burned into this rendition");
            blobs.put(&key, fingerprint.into_bytes(), "application/octet-stream").await?;
        }
    }
    if blobs.head(blob_key).await?.is_none() {
        blobs.delete_many(&rendition_keys(blob_key)).await?;
    }
    Ok(())
}

/// The large rendition of a version with `account`'s `watermark`, as it
/// stands: `Pending` until one with this watermark is made; `NotFound` when
/// none will be (the watermark is noted failed, or this rendition could not
/// take it).
pub async fn stored_watermarked(
    blobs: &dyn BlobStore,
    account: AccountId,
    blob_key: &str,
    content_type: &str,
    watermark: &Watermark,
) -> DomainResult<Rendition> {
    if let Rendition::Pending = stored_rendition(blobs, blob_key, content_type, RenditionSize::Large).await? {
        return Ok(Rendition::Pending);
    }
    let fingerprint = watermark.fingerprint();
    let made = match blobs.open(&watermarked_key(blob_key)).await {
        Ok(reader) => read_all(reader, 0).await?.strip_prefix(fingerprint.as_bytes()).map(<[u8]>::to_vec),
        Err(StoreError::NotFound(_)) => None,
        Err(e) => return Err(e.into()),
    };
    match made {
        Some(webp) if webp.is_empty() => Err(DomainError::NotFound("preview")),
        Some(webp) => Ok(Rendition::Ready(webp)),
        None if blobs.head(&watermark_failed_key(account, &fingerprint)).await?.is_some() => {
            Err(DomainError::NotFound("preview"))
        }
        None => Ok(Rendition::Pending),
    }
}

/// A version's rendition of size `size` as it stands: `NotFound` when none
/// will ever be (not an image, or none could be made).
pub async fn stored_rendition(
    blobs: &dyn BlobStore,
    blob_key: &str,
    content_type: &str,
    size: RenditionSize,
) -> DomainResult<Rendition> {
    if !renditions_possible(content_type) {
        return Err(DomainError::NotFound("preview"));
    }
    match blobs.open(&rendition_key(blob_key, size)).await {
        Ok(reader) => return Ok(Rendition::Ready(read_all(reader, 0).await?)),
        Err(StoreError::NotFound(_)) => {}
        Err(e) => return Err(e.into()),
    }
    if blobs.head(&renditions_failed_key(blob_key)).await?.is_some() {
        return Err(DomainError::NotFound("preview"));
    }
    Ok(Rendition::Pending)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rendition_keys_sit_beside_the_version_and_are_valid_blob_keys() {
        let key = "accounts/a1/uploads/u1";
        assert_eq!(rendition_key(key, RenditionSize::Grid), "accounts/a1/uploads/u1.grid.webp");
        assert_eq!(rendition_key(key, RenditionSize::Large), "accounts/a1/uploads/u1.large.webp");
        for k in rendition_keys(key) {
            assert!(k.starts_with(key) && crate::store::valid_blob_key(&k), "{k}");
        }
    }
}
