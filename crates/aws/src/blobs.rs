//! The blob port on one S3 bucket, with presigned URLs (the way bytes reach
//! browsers) and multipart uploads: clients' uploads of assets, part by part
//! through presigned part URLs, and ZIPs of any size written with flat memory.

use super::backend;
use async_trait::async_trait;
use aws_sdk_s3::Client;
use aws_sdk_s3::operation::abort_multipart_upload::AbortMultipartUploadError;
use aws_sdk_s3::operation::get_object::GetObjectError;
use aws_sdk_s3::operation::head_object::HeadObjectError;
use aws_sdk_s3::presigning::PresigningConfig;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use publinks_domain::store::*;
use std::time::Duration;

/// Blobs in one S3 bucket (the assets bucket or the downloads bucket).
#[derive(Clone, Debug)]
pub struct S3BlobStore {
    client: Client,
    bucket: String,
    /// The assets bucket `copy_part` copies from (downloads bucket only).
    copy_source_bucket: Option<String>,
}

/// Keys are checked as in the embedded store, so both answer alike: a key the
/// domain could not have made is `NotFound("blob")`.
fn checked(key: &str) -> StoreResult<&str> {
    if valid_blob_key(key) { Ok(key) } else { Err(StoreError::NotFound("blob")) }
}

fn presigning(ttl: Duration) -> StoreResult<PresigningConfig> {
    PresigningConfig::expires_in(ttl).map_err(backend)
}

impl S3BlobStore {
    /// Blobs in `bucket`. The client must use path-style addressing when it
    /// talks to an emulator ([`AwsClients`](super::AwsClients) does that).
    pub fn new(client: Client, bucket: impl Into<String>) -> Self {
        S3BlobStore { client, bucket: bucket.into(), copy_source_bucket: None }
    }

    /// This store, copying parts from the assets bucket `bucket`.
    pub fn with_copy_source(mut self, bucket: impl Into<String>) -> Self {
        self.copy_source_bucket = Some(bucket.into());
        self
    }

    /// The bucket this store uses.
    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// The SDK client, for the operations this adapter does not wrap.
    pub fn client(&self) -> &Client {
        &self.client
    }
}

#[async_trait]
impl BlobStore for S3BlobStore {
    async fn put(&self, key: &str, bytes: Vec<u8>, content_type: &str) -> StoreResult<()> {
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(checked(key)?)
            .content_type(content_type)
            .content_length(bytes.len() as i64)
            .body(ByteStream::from(bytes))
            .send()
            .await
            .map_err(backend)?;
        Ok(())
    }

    async fn open(&self, key: &str) -> StoreResult<BlobReader> {
        match self.client.get_object().bucket(&self.bucket).key(checked(key)?).send().await {
            Ok(out) => Ok(Box::pin(out.body.into_async_read())),
            Err(e) if matches!(e.as_service_error(), Some(GetObjectError::NoSuchKey(_))) => {
                Err(StoreError::NotFound("blob"))
            }
            Err(e) => Err(backend(e)),
        }
    }

    async fn open_range(&self, key: &str, range: std::ops::Range<u64>) -> StoreResult<BlobReader> {
        if range.is_empty() {
            return Ok(Box::pin(tokio::io::empty()));
        }
        let bytes = format!("bytes={}-{}", range.start, range.end - 1);
        match self.client.get_object().bucket(&self.bucket).key(checked(key)?).range(bytes).send().await {
            Ok(out) => Ok(Box::pin(out.body.into_async_read())),
            Err(e) if matches!(e.as_service_error(), Some(GetObjectError::NoSuchKey(_))) => {
                Err(StoreError::NotFound("blob"))
            }
            Err(e) => Err(backend(e)),
        }
    }

    async fn head(&self, key: &str) -> StoreResult<Option<BlobInfo>> {
        match self.client.head_object().bucket(&self.bucket).key(checked(key)?).send().await {
            Ok(out) => {
                let size = out.content_length.unwrap_or(0);
                let e_tag = out.e_tag.ok_or_else(|| StoreError::Backend(format!("S3 gave {key} no ETag")))?;
                Ok(Some(BlobInfo { size: u64::try_from(size).unwrap_or(0), e_tag }))
            }
            Err(e) if matches!(e.as_service_error(), Some(HeadObjectError::NotFound(_))) => Ok(None),
            Err(e) => Err(backend(e)),
        }
    }

    async fn delete(&self, key: &str) -> StoreResult<()> {
        self.client.delete_object().bucket(&self.bucket).key(checked(key)?).send().await.map_err(backend)?;
        Ok(())
    }

    async fn delete_many(&self, keys: &[String]) -> StoreResult<()> {
        use aws_sdk_s3::types::{Delete, ObjectIdentifier};
        for chunk in keys.chunks(1000) {
            let objects = chunk
                .iter()
                .map(|k| ObjectIdentifier::builder().key(checked(k)?).build().map_err(backend))
                .collect::<StoreResult<Vec<_>>>()?;
            let delete = Delete::builder().set_objects(Some(objects)).quiet(true).build().map_err(backend)?;
            let out = self.client.delete_objects().bucket(&self.bucket).delete(delete).send().await.map_err(backend)?;
            if let Some(failed) = out.errors().first() {
                return Err(StoreError::Backend(format!(
                    "S3 did not delete {}: {}",
                    failed.key().unwrap_or_default(),
                    failed.message().unwrap_or_default()
                )));
            }
        }
        Ok(())
    }

    async fn presign_get(&self, key: &str, download_name: &str, ttl: Duration) -> StoreResult<String> {
        let request = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(checked(key)?)
            .response_content_disposition(attachment_disposition(download_name))
            .presigned(presigning(ttl)?)
            .await
            .map_err(backend)?;
        Ok(request.uri().to_string())
    }
}

/// S3's error code of a failed call, if it got that far.
fn code<E: aws_sdk_s3::error::ProvideErrorMetadata, R>(e: &aws_sdk_s3::error::SdkError<E, R>) -> Option<&str> {
    e.as_service_error().and_then(|s| s.code())
}

#[async_trait]
impl AssetUploads for S3BlobStore {
    async fn start_upload(&self, key: &str, content_type: &str) -> StoreResult<MultipartUpload> {
        let out = self
            .client
            .create_multipart_upload()
            .bucket(&self.bucket)
            .key(checked(key)?)
            .content_type(content_type)
            .send()
            .await
            .map_err(backend)?;
        let upload_id =
            out.upload_id.ok_or_else(|| StoreError::Backend("S3 started a multipart upload without an id".into()))?;
        Ok(MultipartUpload { key: key.to_string(), upload_id })
    }

    async fn presign_part(
        &self,
        upload: &MultipartUpload,
        number: u32,
        size: u64,
        ttl: Duration,
    ) -> StoreResult<String> {
        // The length is a signed header: S3 takes a body of exactly `size` bytes.
        let request = self
            .client
            .upload_part()
            .bucket(&self.bucket)
            .key(checked(&upload.key)?)
            .upload_id(&upload.upload_id)
            .part_number(number as i32)
            .content_length(size as i64)
            .presigned(presigning(ttl)?)
            .await
            .map_err(backend)?;
        Ok(request.uri().to_string())
    }

    async fn list_parts(&self, upload: &MultipartUpload) -> StoreResult<Vec<StoredPart>> {
        let mut parts = Vec::new();
        let mut marker: Option<String> = None;
        loop {
            let out = self
                .client
                .list_parts()
                .bucket(&self.bucket)
                .key(checked(&upload.key)?)
                .upload_id(&upload.upload_id)
                .set_part_number_marker(marker.take())
                .send()
                .await
                .map_err(|e| match code(&e) {
                    Some("NoSuchUpload") => StoreError::NotFound("multipart upload"),
                    _ => backend(e),
                })?;
            for p in out.parts.unwrap_or_default() {
                let (Some(number), Some(size), Some(e_tag)) = (p.part_number, p.size, p.e_tag) else {
                    return Err(StoreError::Backend("S3 listed a part without its number, size or ETag".into()));
                };
                parts.push(StoredPart { number: number as u32, size: size.max(0) as u64, e_tag });
            }
            match (out.is_truncated, out.next_part_number_marker) {
                (Some(true), Some(next)) => marker = Some(next),
                _ => return Ok(parts),
            }
        }
    }

    async fn complete_upload(&self, upload: &MultipartUpload, parts: &[StoredPart]) -> StoreResult<String> {
        let parts = parts
            .iter()
            .map(|p| CompletedPart::builder().part_number(p.number as i32).e_tag(&p.e_tag).build())
            .collect();
        let out = self
            .client
            .complete_multipart_upload()
            .bucket(&self.bucket)
            .key(checked(&upload.key)?)
            .upload_id(&upload.upload_id)
            .multipart_upload(CompletedMultipartUpload::builder().set_parts(Some(parts)).build())
            .send()
            .await
            .map_err(|e| match code(&e) {
                Some("NoSuchUpload") => StoreError::NotFound("multipart upload"),
                // A part was sent again since it was listed.
                Some("InvalidPart" | "InvalidPartOrder" | "EntityTooSmall") => StoreError::Conflict("upload part"),
                _ => backend(e),
            })?;
        out.e_tag.ok_or_else(|| StoreError::Backend("S3 completed an upload without an ETag".into()))
    }

    async fn abort_upload(&self, upload: &MultipartUpload) -> StoreResult<()> {
        self.abort_multipart(upload).await
    }
}

#[async_trait]
impl ArchiveStore for S3BlobStore {
    fn parallel_parts(&self) -> usize {
        4
    }

    fn can_copy_parts(&self) -> bool {
        self.copy_source_bucket.is_some()
    }

    async fn start_multipart(&self, key: &str) -> StoreResult<MultipartUpload> {
        let out = self
            .client
            .create_multipart_upload()
            .bucket(&self.bucket)
            .key(checked(key)?)
            .content_type("application/zip")
            .send()
            .await
            .map_err(backend)?;
        let upload_id =
            out.upload_id.ok_or_else(|| StoreError::Backend("S3 started a multipart upload without an id".into()))?;
        Ok(MultipartUpload { key: key.to_string(), upload_id })
    }

    async fn upload_part(&self, upload: &MultipartUpload, number: u32, bytes: Vec<u8>) -> StoreResult<UploadedPart> {
        let out = self
            .client
            .upload_part()
            .bucket(&self.bucket)
            .key(&upload.key)
            .upload_id(&upload.upload_id)
            .part_number(number as i32)
            .content_length(bytes.len() as i64)
            .body(ByteStream::from(bytes))
            .send()
            .await
            .map_err(|e| match e.as_service_error().and_then(|s| s.meta().code()) {
                Some("NoSuchUpload") => StoreError::NotFound("multipart upload"),
                _ => backend(e),
            })?;
        let e_tag = out.e_tag.ok_or_else(|| StoreError::Backend("S3 accepted a part without an ETag".into()))?;
        Ok(UploadedPart { number, e_tag })
    }

    async fn complete_multipart(&self, upload: &MultipartUpload, parts: &[UploadedPart]) -> StoreResult<()> {
        let parts = parts
            .iter()
            .map(|p| CompletedPart::builder().part_number(p.number as i32).e_tag(&p.e_tag).build())
            .collect();
        self.client
            .complete_multipart_upload()
            .bucket(&self.bucket)
            .key(&upload.key)
            .upload_id(&upload.upload_id)
            .multipart_upload(CompletedMultipartUpload::builder().set_parts(Some(parts)).build())
            .send()
            .await
            .map_err(|e| match e.as_service_error().and_then(|s| s.meta().code()) {
                Some("NoSuchUpload") => StoreError::NotFound("multipart upload"),
                _ => backend(e),
            })?;
        Ok(())
    }

    async fn abort_multipart(&self, upload: &MultipartUpload) -> StoreResult<()> {
        match self
            .client
            .abort_multipart_upload()
            .bucket(&self.bucket)
            .key(&upload.key)
            .upload_id(&upload.upload_id)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if matches!(e.as_service_error(), Some(AbortMultipartUploadError::NoSuchUpload(_))) => Ok(()),
            Err(e) => Err(backend(e)),
        }
    }

    async fn copy_part(
        &self,
        upload: &MultipartUpload,
        number: u32,
        source_key: &str,
        range: std::ops::Range<u64>,
        if_match: Option<&str>,
    ) -> StoreResult<UploadedPart> {
        let source_bucket = self
            .copy_source_bucket
            .as_deref()
            .ok_or_else(|| StoreError::Backend("no copy source configured".into()))?;
        let out = self
            .client
            .upload_part_copy()
            .bucket(&self.bucket)
            .key(&upload.key)
            .upload_id(&upload.upload_id)
            .part_number(number as i32)
            .copy_source(format!("{source_bucket}/{}", checked(source_key)?))
            .copy_source_range(format!("bytes={}-{}", range.start, range.end - 1))
            .set_copy_source_if_match(if_match.map(str::to_string))
            .send()
            .await
            .map_err(|e| match e.as_service_error().and_then(|s| s.meta().code()) {
                Some("NoSuchUpload") => StoreError::NotFound("multipart upload"),
                Some("NoSuchKey") => StoreError::NotFound("blob"),
                Some("PreconditionFailed") => StoreError::Conflict("stored file"),
                _ => backend(e),
            })?;
        let e_tag = out
            .copy_part_result
            .and_then(|r| r.e_tag)
            .ok_or_else(|| StoreError::Backend("S3 copied a part without an ETag".into()))?;
        Ok(UploadedPart { number, e_tag })
    }

    async fn open_multiparts(&self, key: &str) -> StoreResult<Vec<String>> {
        let out = self
            .client
            .list_multipart_uploads()
            .bucket(&self.bucket)
            .prefix(checked(key)?)
            .send()
            .await
            .map_err(backend)?;
        Ok(out
            .uploads
            .unwrap_or_default()
            .into_iter()
            .filter(|u| u.key.as_deref() == Some(key))
            .filter_map(|u| u.upload_id)
            .collect())
    }
}
