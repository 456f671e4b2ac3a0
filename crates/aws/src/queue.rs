//! Jobs on SQS queues. Archive jobs: the functions that request archives send
//! one message per job; the `zip-builder` function receives them. Library
//! jobs: `library-api` sends them, the `library-worker` function receives
//! them. SQS retries a message whose job did not record an outcome, and moves
//! it to a dead-letter queue after a few tries.

use super::backend;
use async_trait::async_trait;
use publinks_domain::ids::ArchiveId;
use publinks_domain::jobs::LibraryJob;
use publinks_domain::store::{ArchiveQueue, LibraryJobQueue, StoreResult};
use serde::{Deserialize, Serialize};

/// The body of one message: which job to build.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArchiveMessage {
    pub archive_id: ArchiveId,
}

/// The archive queue on SQS.
#[derive(Clone, Debug)]
pub struct SqsArchiveQueue {
    client: aws_sdk_sqs::Client,
    queue_url: String,
}

impl SqsArchiveQueue {
    /// Sends to the queue at `queue_url`.
    pub fn new(client: aws_sdk_sqs::Client, queue_url: impl Into<String>) -> Self {
        SqsArchiveQueue { client, queue_url: queue_url.into() }
    }

    /// Has SQS deliver a received message again after `delay` (instead of
    /// after the queue's visibility timeout), to retry a build soon.
    pub async fn deliver_again_in(&self, receipt_handle: &str, delay: std::time::Duration) -> StoreResult<()> {
        self.client
            .change_message_visibility()
            .queue_url(&self.queue_url)
            .receipt_handle(receipt_handle)
            .visibility_timeout(delay.as_secs().min(12 * 3600) as i32)
            .send()
            .await
            .map_err(backend)?;
        Ok(())
    }
}

#[async_trait]
impl ArchiveQueue for SqsArchiveQueue {
    async fn enqueue(&self, id: ArchiveId) -> StoreResult<()> {
        let body = serde_json::to_string(&ArchiveMessage { archive_id: id }).expect("messages serialise");
        self.client.send_message().queue_url(&self.queue_url).message_body(body).send().await.map_err(backend)?;
        Ok(())
    }
}

/// The library job queue on SQS: one message per job, the job as JSON.
#[derive(Clone, Debug)]
pub struct SqsLibraryJobQueue {
    client: aws_sdk_sqs::Client,
    queue_url: String,
}

impl SqsLibraryJobQueue {
    /// Sends to the queue at `queue_url`.
    pub fn new(client: aws_sdk_sqs::Client, queue_url: impl Into<String>) -> Self {
        SqsLibraryJobQueue { client, queue_url: queue_url.into() }
    }
}

#[async_trait]
impl LibraryJobQueue for SqsLibraryJobQueue {
    async fn enqueue(&self, job: &LibraryJob) -> StoreResult<()> {
        let body = serde_json::to_string(job).expect("jobs serialise");
        self.client.send_message().queue_url(&self.queue_url).message_body(body).send().await.map_err(backend)?;
        Ok(())
    }
}

/// Webhook deliveries go through the library job queue to `library-worker`:
/// one message per attempt, delayed until it is due, up to SQS's longest
/// delay (15 minutes); a message that arrives early is sent again.
#[async_trait]
impl publinks_domain::webhooks::DeliveryQueue for SqsLibraryJobQueue {
    async fn schedule(
        &self,
        delivery: publinks_domain::ids::DeliveryId,
        at: chrono::DateTime<chrono::Utc>,
    ) -> StoreResult<()> {
        let body = serde_json::to_string(&LibraryJob::DeliverWebhook { delivery }).expect("jobs serialise");
        let delay = (at - chrono::Utc::now()).num_seconds().clamp(0, MAX_DELAY_SECONDS);
        self.client
            .send_message()
            .queue_url(&self.queue_url)
            .message_body(body)
            .delay_seconds(delay as i32)
            .send()
            .await
            .map_err(backend)?;
        Ok(())
    }
}

/// SQS's longest message delay.
const MAX_DELAY_SECONDS: i64 = 900;
