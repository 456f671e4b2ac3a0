//! The blob port on one S3 bucket, with presigned URLs (the way bytes reach
//! browsers) and multipart uploads (the way a ZIP of any size is written with
//! flat memory).

use super::backend;
use crate::adapters::embedded::valid_blob_key;
use crate::media::attachment_disposition;
use crate::store::*;
use async_trait::async_trait;
use aws_sdk_s3::Client;
use aws_sdk_s3::operation::abort_multipart_upload::AbortMultipartUploadError;
use aws_sdk_s3::operation::get_object::GetObjectError;
use aws_sdk_s3::operation::head_object::HeadObjectError;
use aws_sdk_s3::presigning::PresigningConfig;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use std::time::Duration;

/// Blobs in one S3 bucket (the assets bucket or the downloads bucket).
#[derive(Clone, Debug)]
pub struct S3BlobStore {
    client: Client,
    bucket: String,
}

/// A multipart upload in progress: what its parts and its completion need.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MultipartUpload {
    /// The object the upload becomes on completion.
    pub key: String,
    /// S3's id of the upload, needed by every later call.
    pub upload_id: String,
}

/// A part S3 accepted: completing the upload lists every one of them, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UploadedPart {
    /// 1 to 10,000; every part but the last must hold at least 5 MiB.
    pub number: i32,
    /// S3's checksum of the part, which completion must repeat.
    pub e_tag: String,
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
        S3BlobStore { client, bucket: bucket.into() }
    }

    /// The bucket this store uses.
    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// The SDK client, for the operations this adapter does not wrap.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Starts a multipart upload of `key`; the content type is set now, once.
    pub async fn create_multipart(&self, key: &str, content_type: &str) -> StoreResult<MultipartUpload> {
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

    /// Uploads part `number` (1-based). Every part but the last must hold at least 5 MiB.
    pub async fn upload_part(
        &self,
        upload: &MultipartUpload,
        number: i32,
        bytes: Vec<u8>,
    ) -> StoreResult<UploadedPart> {
        let out = self
            .client
            .upload_part()
            .bucket(&self.bucket)
            .key(&upload.key)
            .upload_id(&upload.upload_id)
            .part_number(number)
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

    /// Assembles the parts into the object: it appears whole, or not at all.
    pub async fn complete_multipart(&self, upload: &MultipartUpload, parts: &[UploadedPart]) -> StoreResult<()> {
        let parts =
            parts.iter().map(|p| CompletedPart::builder().part_number(p.number).e_tag(&p.e_tag).build()).collect();
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

    /// Drops the upload and its parts, leaving no object. Idempotent: an upload
    /// that is already gone (aborted or completed) is not an error.
    pub async fn abort_multipart(&self, upload: &MultipartUpload) -> StoreResult<()> {
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

    async fn head(&self, key: &str) -> StoreResult<Option<BlobInfo>> {
        match self.client.head_object().bucket(&self.bucket).key(checked(key)?).send().await {
            Ok(out) => {
                let size = out.content_length.unwrap_or(0);
                Ok(Some(BlobInfo { size: u64::try_from(size).unwrap_or(0) }))
            }
            Err(e) if matches!(e.as_service_error(), Some(HeadObjectError::NotFound(_))) => Ok(None),
            Err(e) => Err(backend(e)),
        }
    }

    async fn delete(&self, key: &str) -> StoreResult<()> {
        self.client.delete_object().bucket(&self.bucket).key(checked(key)?).send().await.map_err(backend)?;
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

    async fn presign_put(&self, key: &str, content_type: &str, ttl: Duration) -> StoreResult<String> {
        // The content type is a signed header: the PUT must send exactly it.
        let request = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(checked(key)?)
            .content_type(content_type)
            .presigned(presigning(ttl)?)
            .await
            .map_err(backend)?;
        Ok(request.uri().to_string())
    }
}
