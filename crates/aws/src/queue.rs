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
use std::time::Duration;

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

    /// The messages `zip-builder` receives from this queue.
    pub fn received(&self) -> ReceivedMessages {
        ReceivedMessages::new(self.client.clone(), self.queue_url.clone())
    }
}

/// The longest a renewal of a hold may take ([`ReceivedMessages::holding`]):
/// SQS answers in milliseconds, and a work that ended waits for the renewal
/// under way, well within the 10 s the functions keep before their deadline.
pub const RENEWAL_TIMEOUT: Duration = Duration::from_secs(5);

/// What a function that consumes a queue asks of SQS about the messages it
/// received: to hold one while its work runs, or to have it delivered
/// again after a pause.
///
/// The queues' visibility timeouts are long: six times the functions',
/// AWS's guidance for a queue Lambda reads, so that no message is
/// delivered again before an invocation gets it. A process can end in the
/// middle of a message (Lambda's time or memory limit, or a panic: the
/// functions abort on one) and report nothing; so the message is held
/// [`hold`](Self::hold) at a time from the moment its work starts, and
/// delivered again within that hold once its process is gone, not after
/// the queue's hour and a half.
#[derive(Clone, Debug)]
pub struct ReceivedMessages {
    client: aws_sdk_sqs::Client,
    queue_url: String,
    /// How long a message is held from each renewal while its work runs.
    /// Renewed every quarter of it (a second at least), so that three
    /// renewals in a row may fail before another invocation gets the message.
    pub hold: Duration,
}

impl ReceivedMessages {
    /// The messages received from the queue at `queue_url`, held two minutes at a time.
    pub fn new(client: aws_sdk_sqs::Client, queue_url: impl Into<String>) -> Self {
        ReceivedMessages { client, queue_url: queue_url.into(), hold: Duration::from_secs(120) }
    }

    /// Has SQS deliver a received message again after `delay` (instead of
    /// after the queue's visibility timeout), rounded up to whole seconds
    /// and 12 hours at most (SQS's unit and limit).
    pub async fn deliver_again_in(&self, receipt_handle: &str, delay: Duration) -> StoreResult<()> {
        self.client
            .change_message_visibility()
            .queue_url(&self.queue_url)
            .receipt_handle(receipt_handle)
            .visibility_timeout(delay.as_millis().div_ceil(1000).min(12 * 3600) as i32)
            .send()
            .await
            .map_err(backend)?;
        Ok(())
    }

    /// Runs `work` while holding the message of `receipt` (no receipt: just
    /// runs it): held for [`hold`](Self::hold) now, and again every quarter
    /// of it (a renewal starts on time whatever the one before did) until
    /// `work` ends. Each renewal gets [`RENEWAL_TIMEOUT`] at most, and one
    /// under way when `work` ends is let finish, so that what the caller
    /// then asks of the message comes after it. A renewal that fails is
    /// logged: if three in a row fail, the hold lapses and another
    /// invocation may get the message while this one works on it (and its
    /// receive count grows), so the work must be safe to do twice (every
    /// job's is).
    pub async fn holding<T>(&self, receipt: Option<&str>, work: impl Future<Output = T>) -> T {
        let Some(receipt) = receipt else { return work.await };
        let every = (self.hold / 4).max(Duration::from_secs(1));
        let done = tokio::sync::Notify::new();
        let renew = async {
            let mut next = tokio::time::Instant::now();
            loop {
                next += every;
                let renewal =
                    tokio::time::timeout(RENEWAL_TIMEOUT.min(every), self.deliver_again_in(receipt, self.hold));
                match renewal.await {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => tracing::warn!(error = %e, "could not hold a message while its work runs"),
                    Err(_) => {
                        tracing::warn!("could not hold a message while its work runs: SQS did not answer in time")
                    }
                }
                tokio::select! {
                    () = tokio::time::sleep_until(next) => {}
                    () = done.notified() => break,
                }
            }
        };
        let work = async {
            let outcome = work.await;
            done.notify_one();
            outcome
        };
        tokio::join!(work, renew).0
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

    /// The messages `library-worker` receives from this queue.
    pub fn received(&self) -> ReceivedMessages {
        ReceivedMessages::new(self.client.clone(), self.queue_url.clone())
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
