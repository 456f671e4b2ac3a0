//! Library jobs: the halves of library requests too slow for a request (a
//! big upload's bytes to read, an image's renditions to make), handed to a worker through a
//! [`LibraryJobQueue`](crate::store::LibraryJobQueue): the local server's
//! in-process worker, or an SQS queue that the `library-worker` function
//! reads in AWS. Both run them through [`LibraryJobs::run`].
//!
//! A job may run more than once (a queue delivers at least once, a retried
//! request hands it out again): each kind is written to do its work exactly
//! once however often it runs.

use super::DomainResult;
use super::library::Library;
use crate::ids::{AccountId, FolderId, UploadId};
use crate::renditions::{RenditionMaker, make_renditions, make_watermarked};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use tokio::time::Instant;

/// One job, as it travels through a queue (JSON, tagged by `kind`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum LibraryJob {
    /// Read a completed upload's bytes (checksums, dimensions, EXIF) and
    /// record its file or new version.
    Ingest { upload_id: UploadId },
    /// Remove what was under a deleted folder (its [`FolderDeletion`](super::model::FolderDeletion)).
    DeleteFolderTree { folder: FolderId },
    /// Make the preview renditions of the version stored at `blob_key`
    /// ([`crate::renditions`]).
    Renditions { blob_key: String, content_type: String, size: u64 },
    /// Burn the account's current watermark into the large rendition of the
    /// version at `blob_key` (asked for by a view through a preview-only link).
    Watermark { account_id: AccountId, blob_key: String },
    /// Make the next attempt at a webhook delivery if it is due, or hand it
    /// to the queue again until it is (a queue delays a message 15 minutes at most).
    DeliverWebhook { delivery: crate::ids::DeliveryId },
}

/// Runs library jobs: the same code in the local worker and in `library-worker`.
#[derive(Clone)]
pub struct LibraryJobs {
    library: Library,
    renditions: Arc<dyn RenditionMaker>,
    webhooks: Option<crate::webhooks::WebhookService>,
}

impl LibraryJobs {
    /// Jobs run on this library, making renditions with `renditions`.
    pub fn new(library: Library, renditions: Arc<dyn RenditionMaker>) -> Self {
        LibraryJobs { library, renditions, webhooks: None }
    }

    /// Deliveries of webhooks run here too (`library-worker` in AWS).
    pub fn with_webhooks(mut self, webhooks: crate::webhooks::WebhookService) -> Self {
        self.webhooks = Some(webhooks);
        self
    }

    /// Runs `job` to its end, or, for work that can stop half-way (a folder
    /// tree's removal), until shortly before `deadline`, then hands the rest
    /// to the queue again. A job whose outcome is recorded (done, or failed
    /// for a reason its record states) is `Ok`; `Err` means it could not
    /// finish (storage failed) and should run again.
    pub async fn run(&self, job: &LibraryJob, deadline: Option<Instant>) -> DomainResult<()> {
        match job {
            LibraryJob::Ingest { upload_id } => self.library.ingest_upload(*upload_id).await,
            LibraryJob::DeleteFolderTree { folder } => {
                if !self.library.run_folder_deletion(*folder, deadline).await? {
                    self.library.enqueue_job(job).await?;
                }
                Ok(())
            }
            LibraryJob::Renditions { blob_key, content_type, size } => {
                let blobs = self.library.blobs.as_ref();
                make_renditions(blobs, self.renditions.clone(), blob_key, content_type, *size).await
            }
            LibraryJob::Watermark { account_id, blob_key } => {
                let account = self.library.catalog().account(*account_id).await?;
                let Some(watermark) = account.and_then(|a| a.branding.watermark(a.id)) else { return Ok(()) };
                let (blobs, maker) = (self.library.blobs.as_ref(), self.renditions.clone());
                make_watermarked(blobs, maker, *account_id, blob_key, &watermark).await
            }
            LibraryJob::DeliverWebhook { delivery } => match &self.webhooks {
                Some(webhooks) => webhooks.attempt(*delivery).await.map(|_| ()),
                None => {
                    tracing::error!(%delivery, "a webhook delivery reached a worker without webhooks; dropped");
                    Ok(())
                }
            },
        }
    }

    /// The jobs left unfinished when a worker stopped (folder deletions not
    /// done): what a worker starting up hands out again.
    pub async fn unfinished(&self) -> DomainResult<Vec<LibraryJob>> {
        self.library.unfinished_jobs().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jobs_travel_as_json_tagged_by_kind() {
        let id = UploadId::new();
        let job = LibraryJob::Ingest { upload_id: id };
        let json = serde_json::to_value(&job).unwrap();
        assert_eq!(json, serde_json::json!({"kind": "ingest", "upload_id": id.to_string()}));
        assert_eq!(serde_json::from_value::<LibraryJob>(json).unwrap(), job);
        assert!(serde_json::from_str::<LibraryJob>(r#"{"kind": "unknown"}"#).is_err());
    }
}
