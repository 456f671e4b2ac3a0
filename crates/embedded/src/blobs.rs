//! Blobs as files under a directory, and the signed URLs that stand in for S3's
//! presigned ones: the local server's `/_blobs/...` routes verify them.
//!
//! Clients' uploads are multipart, as on S3: each part is a file under
//! `.uploads/{upload id}/`, written whole or not at all (a part PUT again
//! replaces it); completion concatenates the parts into the blob (the
//! kernel copies) and removes the directory, after which no part URL of the
//! upload is taken any more. Upload directories survive restarts.

use async_trait::async_trait;
use chrono::Utc;
use publinks_domain::signing::SecretKey;
use publinks_domain::store::*;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::AsyncWriteExt;

/// Makes and checks the signed blob URLs of the embedded store.
#[derive(Clone, Debug)]
pub struct BlobUrlSigner {
    key: SecretKey,
    /// Where the local server is reached, e.g. `http://127.0.0.1:8080`.
    base_url: String,
}

/// What a signed blob URL allows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BlobGrant {
    /// Download, as an attachment with this name.
    Get { download_name: String },
    /// Upload part `number` of the multipart upload `upload_id`: exactly `size` bytes.
    Part { upload_id: String, number: u32, size: u64 },
}

impl BlobGrant {
    /// The operation's name in the URL, and what else the signature covers.
    fn signed(&self) -> (&'static str, String) {
        match self {
            BlobGrant::Get { download_name } => ("get", download_name.clone()),
            BlobGrant::Part { upload_id, number, size } => ("part", format!("{upload_id}:{number}:{size}")),
        }
    }
}

/// Why a blob URL was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BlobUrlError {
    #[error("the URL signature is not valid")]
    BadSignature,
    #[error("the URL has expired")]
    Expired,
}

impl BlobUrlSigner {
    /// A signer for URLs under `base_url`.
    pub fn new(key: SecretKey, base_url: impl Into<String>) -> Self {
        BlobUrlSigner { key, base_url: base_url.into().trim_end_matches('/').to_string() }
    }

    fn message(op: &str, key: &str, expires: i64, detail: &str) -> Vec<u8> {
        format!("{op}\n{key}\n{expires}\n{detail}").into_bytes()
    }

    /// A URL for one operation on `key`, valid for `ttl`.
    pub fn url(&self, key: &str, grant: &BlobGrant, ttl: Duration) -> String {
        let expires = Utc::now().timestamp() + ttl.as_secs() as i64;
        let (op, detail) = grant.signed();
        let sig = self.key.sign(&Self::message(op, key, expires, &detail));
        let mut query = form_urlencoded::Serializer::new(String::new());
        query.append_pair("op", op).append_pair("exp", &expires.to_string());
        match grant {
            BlobGrant::Get { download_name } => query.append_pair("name", download_name),
            BlobGrant::Part { upload_id, number, size } => query
                .append_pair("upload", upload_id)
                .append_pair("part", &number.to_string())
                .append_pair("size", &size.to_string()),
        };
        format!("{}/_blobs/{key}?{}", self.base_url, query.append_pair("sig", &sig).finish())
    }

    /// Checks a URL's signature (in constant time) and expiry.
    pub fn verify(&self, key: &str, grant: &BlobGrant, expires: i64, signature: &str) -> Result<(), BlobUrlError> {
        let (op, detail) = grant.signed();
        if !self.key.verify(&Self::message(op, key, expires, &detail), signature) {
            return Err(BlobUrlError::BadSignature);
        }
        if Utc::now().timestamp() > expires {
            return Err(BlobUrlError::Expired);
        }
        Ok(())
    }
}

/// The blob directory of the embedded store. Used for the assets and, with
/// [`with_copy_source`](Self::with_copy_source), for the downloads, where it
/// is an [`ArchiveStore`]: a multipart upload is a hidden file that grows part
/// by part, in order, and is renamed into place on completion.
#[derive(Clone, Debug)]
pub struct DirectoryBlobStore {
    root: PathBuf,
    signer: BlobUrlSigner,
    /// The asset directory `copy_part` copies from.
    copy_source: Option<PathBuf>,
    uploads: Arc<Mutex<HashMap<String, PartialUpload>>>,
    /// Held while a client's upload is completed or aborted, so that one
    /// completion writes the blob and the others find it done.
    finishing: Arc<tokio::sync::Mutex<()>>,
}

/// A multipart upload of the embedded store.
#[derive(Debug)]
struct PartialUpload {
    key: String,
    /// The part number the next part must have.
    next: u32,
    parts: u32,
}

/// Where multipart uploads grow, inside the root; blob keys never start with a dot.
const MULTIPART_DIR: &str = ".multipart";
/// Where clients' uploads keep their parts until completion (kept across restarts).
const UPLOADS_DIR: &str = ".uploads";
/// The file in an upload's directory naming its key and content type.
const UPLOAD_META: &str = "upload";

const CONTENT_TYPE_SUFFIX: &str = ".content-type";

impl DirectoryBlobStore {
    /// Blobs under `root` (created if missing), URLs signed by `signer`.
    pub fn open(root: &Path, signer: BlobUrlSigner) -> StoreResult<Self> {
        std::fs::create_dir_all(root).map_err(|e| StoreError::Backend(format!("blob directory: {e}")))?;
        // Uploads of an earlier process cannot be completed any more.
        let _ = std::fs::remove_dir_all(root.join(MULTIPART_DIR));
        Ok(DirectoryBlobStore {
            root: root.to_path_buf(),
            signer,
            copy_source: None,
            uploads: Arc::new(Mutex::new(HashMap::new())),
            finishing: Arc::new(tokio::sync::Mutex::new(())),
        })
    }

    /// This store, copying parts from the asset directory `assets`.
    pub fn with_copy_source(mut self, assets: &Path) -> Self {
        self.copy_source = Some(assets.to_path_buf());
        self
    }

    fn partial_path(&self, upload_id: &str) -> PathBuf {
        self.root.join(MULTIPART_DIR).join(upload_id)
    }

    /// Checks that `number` is the upload's next part and reserves it.
    fn take_part_number(&self, upload: &MultipartUpload, number: u32) -> StoreResult<()> {
        let mut uploads = self.uploads.lock().expect("uploads lock");
        let partial = uploads.get_mut(&upload.upload_id).ok_or(StoreError::NotFound("multipart upload"))?;
        if number != partial.next {
            return Err(StoreError::Backend(format!(
                "the embedded store takes parts in order: expected part {}, got {number}",
                partial.next
            )));
        }
        partial.next += 1;
        Ok(())
    }

    fn part_written(&self, upload: &MultipartUpload, number: u32) -> StoreResult<UploadedPart> {
        let mut uploads = self.uploads.lock().expect("uploads lock");
        let partial = uploads.get_mut(&upload.upload_id).ok_or(StoreError::NotFound("multipart upload"))?;
        partial.parts = number;
        Ok(UploadedPart { number, e_tag: format!("part-{number}") })
    }

    /// The directory the blobs are in.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The signer whose URLs this store hands out.
    pub fn signer(&self) -> &BlobUrlSigner {
        &self.signer
    }

    fn path(&self, key: &str) -> StoreResult<PathBuf> {
        if !valid_blob_key(key) {
            return Err(StoreError::NotFound("blob"));
        }
        Ok(self.root.join(key))
    }

    /// The content type the blob was stored with.
    pub async fn content_type(&self, key: &str) -> StoreResult<String> {
        let path = self.path(key)?;
        let mut sidecar = path.into_os_string();
        sidecar.push(CONTENT_TYPE_SUFFIX);
        match tokio::fs::read_to_string(&sidecar).await {
            Ok(ct) => Ok(ct),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok("application/octet-stream".into()),
            Err(e) => Err(io_error(e)),
        }
    }

    fn upload_dir(&self, upload_id: &str) -> StoreResult<PathBuf> {
        if uuid::Uuid::parse_str(upload_id).is_err() {
            return Err(StoreError::NotFound("multipart upload"));
        }
        Ok(self.root.join(UPLOADS_DIR).join(upload_id))
    }

    /// The key and content type of a client's upload still open.
    async fn open_upload(&self, upload: &MultipartUpload) -> StoreResult<(PathBuf, String)> {
        let dir = self.upload_dir(&upload.upload_id)?;
        let meta = match tokio::fs::read_to_string(dir.join(UPLOAD_META)).await {
            Ok(meta) => meta,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(StoreError::NotFound("multipart upload")),
            Err(e) => return Err(io_error(e)),
        };
        match meta.split_once('\n') {
            Some((key, content_type)) if key == upload.key => Ok((dir, content_type.to_string())),
            _ => Err(StoreError::NotFound("multipart upload")),
        }
    }

    /// Writes part `number` of a client's upload from a stream of chunks: the
    /// part is replaced whole or not at all. More than `size` bytes are
    /// refused as soon as they arrive (`PartTooLarge`), fewer at the end
    /// (`PartTooSmall`); an upload completed or aborted meanwhile is
    /// `NotFound("multipart upload")`.
    pub async fn put_part<S, E>(
        &self,
        upload: &MultipartUpload,
        number: u32,
        size: u64,
        mut body: S,
    ) -> Result<StoredPart, PartError>
    where
        S: futures_util::Stream<Item = Result<bytes::Bytes, E>> + Unpin,
        E: std::fmt::Display,
    {
        use futures_util::StreamExt;
        let (dir, _) = self.open_upload(upload).await?;
        let tmp = dir.join(format!("{number}.{}.part", uuid::Uuid::new_v4()));
        let mut out = match tokio::fs::File::create(&tmp).await {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(StoreError::NotFound("multipart upload"))?;
            }
            Err(e) => return Err(io_error(e))?,
        };
        let mut written = 0u64;
        let result: Result<(), PartError> = async {
            while let Some(chunk) = body.next().await {
                let chunk = chunk.map_err(|e| StoreError::Backend(format!("upload interrupted: {e}")))?;
                written += chunk.len() as u64;
                if written > size {
                    return Err(PartError::TooLarge);
                }
                out.write_all(&chunk).await.map_err(io_error)?;
            }
            if written < size {
                return Err(PartError::TooSmall { received: written });
            }
            Ok(out.sync_all().await.map_err(io_error)?)
        }
        .await;
        if let Err(e) = result {
            let _ = tokio::fs::remove_file(&tmp).await;
            return Err(e);
        }
        let path = dir.join(number.to_string());
        match tokio::fs::rename(&tmp, &path).await {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(StoreError::NotFound("multipart upload"))?;
            }
            Err(e) => return Err(io_error(e))?,
        }
        let meta = tokio::fs::metadata(&path).await.map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => StoreError::NotFound("multipart upload"),
            _ => io_error(e),
        })?;
        Ok(StoredPart { number, size: meta.len(), e_tag: identity(&meta) })
    }

    async fn finish_write(&self, tmp: &Path, path: &Path, content_type: &str) -> StoreResult<()> {
        let mut sidecar = path.as_os_str().to_owned();
        sidecar.push(CONTENT_TYPE_SUFFIX);
        tokio::fs::write(&sidecar, content_type).await.map_err(io_error)?;
        tokio::fs::rename(tmp, path).await.map_err(io_error)
    }
}

/// The size of the reads that serve or read a blob (see [`read_ahead`]).
const SERVE_CHUNK: usize = 1 << 20;
/// Chunks read ahead of the network (or the reader) while serving or reading a blob.
const SERVE_AHEAD: usize = 4;

impl DirectoryBlobStore {
    /// The bytes of `range` of a blob, as a stream of large chunks read by a
    /// thread of its own (positioned reads, a few chunks ahead of the
    /// network): what the local server's signed download URLs send. The
    /// range must lie inside the blob; `NotFound("blob")` if it is absent.
    pub async fn stream_range(
        &self,
        key: &str,
        range: std::ops::Range<u64>,
    ) -> StoreResult<impl futures_util::Stream<Item = std::io::Result<bytes::Bytes>> + Send + 'static> {
        Ok(read_ahead(self.open_file(key).await?, range))
    }

    async fn open_file(&self, key: &str) -> StoreResult<std::fs::File> {
        match tokio::fs::File::open(self.path(key)?).await {
            Ok(f) => Ok(f.into_std().await),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(StoreError::NotFound("blob")),
            Err(e) => Err(io_error(e)),
        }
    }
}

/// `range` of `file` as chunks read by a thread of its own, a few ahead of
/// the consumer; the range must lie inside the file.
fn read_ahead(
    file: std::fs::File,
    range: std::ops::Range<u64>,
) -> impl futures_util::Stream<Item = std::io::Result<bytes::Bytes>> + Send + 'static {
    let (tx, rx) = tokio::sync::mpsc::channel::<std::io::Result<bytes::Bytes>>(SERVE_AHEAD);
    tokio::task::spawn_blocking(move || {
        use std::os::unix::fs::FileExt;
        let mut at = range.start;
        while at < range.end {
            let want = (range.end - at).min(SERVE_CHUNK as u64) as usize;
            let mut chunk = bytes::BytesMut::zeroed(want);
            let read = match file.read_at(&mut chunk, at) {
                Ok(0) => Err(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "the blob got shorter")),
                Ok(n) => Ok(n),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => Err(e),
            };
            let item = read.map(|n| {
                at += n as u64;
                chunk.truncate(n);
                chunk.freeze()
            });
            let failed = item.is_err();
            // A closed channel: the client went away.
            if tx.blocking_send(item).is_err() || failed {
                return;
            }
        }
    });
    futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|item| (item, rx)) })
}

fn io_error(e: std::io::Error) -> StoreError {
    StoreError::Backend(format!("blob I/O: {e}"))
}

/// Why a part PUT was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PartError {
    #[error("the part is larger than its URL allows")]
    TooLarge,
    #[error("the part ended after {received} bytes, fewer than its URL names")]
    TooSmall { received: u64 },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The embedded store's ETag of a file: its size and modification time to
/// the nanosecond. Every write goes to a new file renamed into place, so it
/// changes with the bytes; a copy of the data directory that keeps
/// timestamps (`cp -a`, `rsync -a`) keeps it.
fn identity(meta: &std::fs::Metadata) -> String {
    use std::os::unix::fs::MetadataExt;
    format!("{:x}-{:x}.{:09}", meta.len(), meta.mtime(), meta.mtime_nsec())
}

/// Opens a part and checks it is the one that was listed (by its ETag).
fn listed_part(dir: &Path, part: &StoredPart) -> std::io::Result<Option<std::fs::File>> {
    let file = match std::fs::File::open(dir.join(part.number.to_string())) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    Ok((identity(&file.metadata()?) == part.e_tag).then_some(file))
}

#[async_trait]
impl BlobStore for DirectoryBlobStore {
    async fn put(&self, key: &str, bytes: Vec<u8>, content_type: &str) -> StoreResult<()> {
        let path = self.path(key)?;
        if let Some(dir) = path.parent() {
            tokio::fs::create_dir_all(dir).await.map_err(io_error)?;
        }
        let tmp = path.with_extension(format!("upload-{}", uuid::Uuid::new_v4()));
        tokio::fs::write(&tmp, bytes).await.map_err(io_error)?;
        self.finish_write(&tmp, &path, content_type).await
    }

    async fn open(&self, key: &str) -> StoreResult<BlobReader> {
        self.open_range(key, 0..u64::MAX).await
    }

    /// Read ahead by a thread of its own, as blobs are served
    /// ([`DirectoryBlobStore::stream_range`]): the reader's consumer (an
    /// archive build, an upload's checksums) works while the next chunks are
    /// read. A range past the end stops at the end.
    async fn open_range(&self, key: &str, range: std::ops::Range<u64>) -> StoreResult<BlobReader> {
        let file = self.open_file(key).await?;
        let len = file.metadata().map_err(io_error)?.len();
        let range = range.start.min(len)..range.end.min(len);
        Ok(Box::pin(tokio_util::io::StreamReader::new(read_ahead(file, range))))
    }

    async fn head(&self, key: &str) -> StoreResult<Option<BlobInfo>> {
        match tokio::fs::metadata(self.path(key)?).await {
            Ok(m) if m.is_file() => Ok(Some(BlobInfo { size: m.len(), e_tag: identity(&m) })),
            Ok(_) => Ok(None),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_error(e)),
        }
    }

    async fn delete(&self, key: &str) -> StoreResult<()> {
        let path = self.path(key)?;
        let mut sidecar = path.as_os_str().to_owned();
        sidecar.push(CONTENT_TYPE_SUFFIX);
        for p in [path.into_os_string(), sidecar] {
            match tokio::fs::remove_file(&p).await {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(io_error(e)),
            }
        }
        Ok(())
    }

    async fn presign_get(&self, key: &str, download_name: &str, ttl: Duration) -> StoreResult<String> {
        self.path(key)?;
        Ok(self.signer.url(key, &BlobGrant::Get { download_name: download_name.to_string() }, ttl))
    }
}

#[async_trait]
impl AssetUploads for DirectoryBlobStore {
    async fn start_upload(&self, key: &str, content_type: &str) -> StoreResult<MultipartUpload> {
        self.path(key)?;
        let upload_id = uuid::Uuid::new_v4().to_string();
        let dir = self.upload_dir(&upload_id)?;
        tokio::fs::create_dir_all(&dir).await.map_err(io_error)?;
        tokio::fs::write(dir.join(UPLOAD_META), format!("{key}\n{content_type}")).await.map_err(io_error)?;
        Ok(MultipartUpload { key: key.to_string(), upload_id })
    }

    async fn presign_part(
        &self,
        upload: &MultipartUpload,
        number: u32,
        size: u64,
        ttl: Duration,
    ) -> StoreResult<String> {
        self.path(&upload.key)?;
        let grant = BlobGrant::Part { upload_id: upload.upload_id.clone(), number, size };
        Ok(self.signer.url(&upload.key, &grant, ttl))
    }

    async fn list_parts(&self, upload: &MultipartUpload) -> StoreResult<Vec<StoredPart>> {
        let (dir, _) = self.open_upload(upload).await?;
        tokio::task::spawn_blocking(move || -> std::io::Result<Vec<StoredPart>> {
            let mut parts = Vec::new();
            for entry in std::fs::read_dir(dir)? {
                let entry = entry?;
                let Some(number) = entry.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else { continue };
                match entry.metadata() {
                    Ok(meta) => parts.push(StoredPart { number, size: meta.len(), e_tag: identity(&meta) }),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(e),
                }
            }
            parts.sort_by_key(|p| p.number);
            Ok(parts)
        })
        .await
        .map_err(|e| StoreError::Backend(e.to_string()))?
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => StoreError::NotFound("multipart upload"),
            _ => io_error(e),
        })
    }

    async fn complete_upload(&self, upload: &MultipartUpload, parts: &[StoredPart]) -> StoreResult<String> {
        let _finishing = self.finishing.lock().await;
        let (dir, content_type) = self.open_upload(upload).await?;
        let path = self.path(&upload.key)?;
        if let Some(parent) = path.parent() {
            tokio::fs::create_dir_all(parent).await.map_err(io_error)?;
        }
        let tmp = path.with_extension(format!("upload-{}", uuid::Uuid::new_v4()));
        let (parts, from, to) = (parts.to_vec(), dir.clone(), tmp.clone());
        let assembled = tokio::task::spawn_blocking(move || -> std::io::Result<bool> {
            let mut out = std::fs::File::create(&to)?;
            for part in &parts {
                // Opened and checked first, then copied from the open file: a
                // part PUT again meanwhile is a new file, and refused.
                let Some(mut file) = listed_part(&from, part)? else { return Ok(false) };
                std::io::copy(&mut file, &mut out)?;
            }
            out.sync_all()?;
            Ok(true)
        })
        .await
        .map_err(|e| StoreError::Backend(e.to_string()))?;
        match assembled {
            Ok(true) => {}
            other => {
                let _ = tokio::fs::remove_file(&tmp).await;
                return match other {
                    Err(e) => Err(io_error(e)),
                    _ => Err(StoreError::Conflict("upload part")),
                };
            }
        }
        self.finish_write(&tmp, &path, &content_type).await?;
        let meta = tokio::fs::metadata(&path).await.map_err(io_error)?;
        tokio::fs::remove_dir_all(&dir).await.map_err(io_error)?;
        Ok(identity(&meta))
    }

    async fn abort_upload(&self, upload: &MultipartUpload) -> StoreResult<()> {
        let _finishing = self.finishing.lock().await;
        if self.open_upload(upload).await.is_err() {
            return Ok(());
        }
        match tokio::fs::remove_dir_all(self.upload_dir(&upload.upload_id)?).await {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_error(e)),
        }
    }
}

#[async_trait]
impl ArchiveStore for DirectoryBlobStore {
    fn parallel_parts(&self) -> usize {
        1
    }

    fn can_copy_parts(&self) -> bool {
        self.copy_source.is_some()
    }

    async fn start_multipart(&self, key: &str) -> StoreResult<MultipartUpload> {
        self.path(key)?;
        let upload_id = uuid::Uuid::new_v4().to_string();
        let partial = self.partial_path(&upload_id);
        tokio::fs::create_dir_all(partial.parent().expect("inside the root")).await.map_err(io_error)?;
        tokio::fs::File::create(&partial).await.map_err(io_error)?;
        self.uploads
            .lock()
            .expect("uploads lock")
            .insert(upload_id.clone(), PartialUpload { key: key.to_string(), next: 1, parts: 0 });
        Ok(MultipartUpload { key: key.to_string(), upload_id })
    }

    async fn upload_part(&self, upload: &MultipartUpload, number: u32, bytes: Vec<u8>) -> StoreResult<UploadedPart> {
        self.take_part_number(upload, number)?;
        // One blocking write of the whole part, finished before the next part
        // is taken: parts land in order.
        let partial = self.partial_path(&upload.upload_id);
        tokio::task::spawn_blocking(move || -> std::io::Result<()> {
            use std::io::Write;
            let mut file = std::fs::OpenOptions::new().append(true).open(partial)?;
            let at = file.metadata()?.len();
            file.write_all(&bytes)?;
            write_behind(&file, at, bytes.len() as u64);
            Ok(())
        })
        .await
        .map_err(|e| StoreError::Backend(e.to_string()))?
        .map_err(io_error)?;
        self.part_written(upload, number)
    }

    async fn copy_part(
        &self,
        upload: &MultipartUpload,
        number: u32,
        source_key: &str,
        range: std::ops::Range<u64>,
        if_match: Option<&str>,
    ) -> StoreResult<UploadedPart> {
        let assets = self.copy_source.clone().ok_or_else(|| StoreError::Backend("no copy source configured".into()))?;
        if !valid_blob_key(source_key) {
            return Err(StoreError::NotFound("blob"));
        }
        self.take_part_number(upload, number)?;
        let (source, target) = (assets.join(source_key), self.partial_path(&upload.upload_id));
        let if_match = if_match.map(str::to_string);
        // std's io::copy between files uses copy_file_range: the kernel copies.
        tokio::task::spawn_blocking(move || -> std::io::Result<u64> {
            use std::io::{Read, Seek};
            let mut from = std::fs::File::open(source)?;
            // Checked on the open file: what is copied is what was checked.
            if let Some(expected) = if_match
                && identity(&from.metadata()?) != expected
            {
                return Err(std::io::Error::other(ChangedSource));
            }
            from.seek(std::io::SeekFrom::Start(range.start))?;
            let mut to = std::fs::OpenOptions::new().append(true).open(target)?;
            let at = to.metadata()?.len();
            let copied = std::io::copy(&mut from.take(range.end - range.start), &mut to)?;
            write_behind(&to, at, copied);
            if copied != range.end - range.start {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    "the source is shorter than the range",
                ));
            }
            Ok(copied)
        })
        .await
        .map_err(|e| StoreError::Backend(e.to_string()))?
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => StoreError::NotFound("blob"),
            _ if e.get_ref().is_some_and(|inner| inner.is::<ChangedSource>()) => StoreError::Conflict("stored file"),
            _ => io_error(e),
        })?;
        self.part_written(upload, number)
    }

    async fn complete_multipart(&self, upload: &MultipartUpload, parts: &[UploadedPart]) -> StoreResult<()> {
        {
            let uploads = self.uploads.lock().expect("uploads lock");
            let partial = uploads.get(&upload.upload_id).ok_or(StoreError::NotFound("multipart upload"))?;
            let in_order = parts.iter().enumerate().all(|(i, p)| p.number == i as u32 + 1);
            if !in_order || parts.len() as u32 != partial.parts || partial.key != upload.key {
                return Err(StoreError::Backend("the completion does not list the uploaded parts".into()));
            }
        }
        let partial = self.partial_path(&upload.upload_id);
        tokio::fs::File::open(&partial).await.map_err(io_error)?.sync_all().await.map_err(io_error)?;
        let path = self.path(&upload.key)?;
        if let Some(dir) = path.parent() {
            tokio::fs::create_dir_all(dir).await.map_err(io_error)?;
        }
        self.finish_write(&partial, &path, "application/zip").await?;
        self.uploads.lock().expect("uploads lock").remove(&upload.upload_id);
        Ok(())
    }

    async fn abort_multipart(&self, upload: &MultipartUpload) -> StoreResult<()> {
        self.uploads.lock().expect("uploads lock").remove(&upload.upload_id);
        match tokio::fs::remove_file(self.partial_path(&upload.upload_id)).await {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_error(e)),
        }
    }

    async fn open_multiparts(&self, key: &str) -> StoreResult<Vec<String>> {
        let uploads = self.uploads.lock().expect("uploads lock");
        Ok(uploads.iter().filter(|(_, p)| p.key == key).map(|(id, _)| id.clone()).collect())
    }
}

/// Starts writing `len` bytes of `file` at `at` to disk without waiting, so
/// that the archive's completion (which syncs the file) does not wait for
/// the whole archive: without it the kernel holds gigabytes dirty (until
/// its background threshold, a tenth of memory) and the sync writes them all.
fn write_behind(file: &std::fs::File, at: u64, len: u64) {
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        // SAFETY: a valid open descriptor and a range; the call only starts
        // writeback (no memory is passed). A failure leaves the sync to do it.
        unsafe {
            libc::sync_file_range(file.as_raw_fd(), at as i64, len as i64, libc::SYNC_FILE_RANGE_WRITE);
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = (file, at, len);
}

/// A copy's source whose ETag is not the expected one.
#[derive(Debug, thiserror::Error)]
#[error("the source changed")]
struct ChangedSource;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blob_keys_cannot_escape_the_directory() {
        assert!(valid_blob_key("accounts/a-1/files/f_2/v1.bin"));
        for bad in ["", "/etc/passwd", "a/../b", "a//b", "..", "a/./b", "a\\b", "a/b c", "a/\u{e9}"] {
            assert!(!valid_blob_key(bad), "{bad:?} should be refused");
        }
    }

    #[test]
    fn signed_urls_bind_operation_key_and_detail() {
        let signer = BlobUrlSigner::new(SecretKey::generate(), "http://x");
        let grant = BlobGrant::Get { download_name: "a.jpg".into() };
        let url = signer.url("k/1", &grant, Duration::from_secs(60));
        let q: std::collections::HashMap<String, String> =
            form_urlencoded::parse(url.split_once('?').unwrap().1.as_bytes()).into_owned().collect();
        let exp: i64 = q["exp"].parse().unwrap();
        assert_eq!(signer.verify("k/1", &grant, exp, &q["sig"]), Ok(()));
        assert_eq!(signer.verify("k/2", &grant, exp, &q["sig"]), Err(BlobUrlError::BadSignature));
        let other = BlobGrant::Get { download_name: "b.jpg".into() };
        assert_eq!(signer.verify("k/1", &other, exp, &q["sig"]), Err(BlobUrlError::BadSignature));
        let part = BlobGrant::Part { upload_id: "u".into(), number: 1, size: 5 };
        assert_eq!(signer.verify("k/1", &part, exp, &q["sig"]), Err(BlobUrlError::BadSignature));
        let url = signer.url("k/1", &part, Duration::from_secs(60));
        let q: std::collections::HashMap<String, String> =
            form_urlencoded::parse(url.split_once('?').unwrap().1.as_bytes()).into_owned().collect();
        let exp: i64 = q["exp"].parse().unwrap();
        assert_eq!(signer.verify("k/1", &part, exp, &q["sig"]), Ok(()));
        for other in [
            BlobGrant::Part { upload_id: "v".into(), number: 1, size: 5 },
            BlobGrant::Part { upload_id: "u".into(), number: 2, size: 5 },
            BlobGrant::Part { upload_id: "u".into(), number: 1, size: 6 },
        ] {
            assert_eq!(signer.verify("k/1", &other, exp, &q["sig"]), Err(BlobUrlError::BadSignature), "{other:?}");
        }
        assert_eq!(signer.verify("k/1", &grant, exp + 1, &q["sig"]), Err(BlobUrlError::BadSignature));
    }

    #[test]
    fn expired_urls_are_refused() {
        let signer = BlobUrlSigner::new(SecretKey::generate(), "http://x");
        let grant = BlobGrant::Part { upload_id: "u".into(), number: 1, size: 5 };
        let past = Utc::now().timestamp() - 10;
        let sig = signer.key.sign(&BlobUrlSigner::message("part", "k", past, "u:1:5"));
        assert_eq!(signer.verify("k", &grant, past, &sig), Err(BlobUrlError::Expired));
    }
}
