//! The archive queue as the `zip-builder` function reads it: each SQS message
//! names one archive job, built by [`ArchiveBuilder`] before the invocation's
//! deadline.
//!
//! Failures that may pass (storage throttled, a 5xx, a timeout) are retried
//! at three levels: the SDK retries each request; the builder tries the
//! build again in the invocation, after a pause; and, while deliveries are
//! left, the message is made visible again after a growing pause and
//! reported as a batch item failure, so that SQS delivers it again. On the
//! last delivery (the queue's `maxReceiveCount`, [`MAX_DELIVERIES`]) such a
//! failure fails the job, with its reason. A failure that stays (a missing
//! file, the deadline) fails the job at once. A repeated build is safe.
//!
//! A process can also end mid-build (Lambda's time or memory limit, a
//! panic): each message is held while its build runs
//! ([`ReceivedMessages::holding`]), so that one whose process ended is
//! delivered again within two minutes, not after the queue's 90.

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use publinks_archive::builder::{ArchiveBuilder, BuildError};
use publinks_aws::{ArchiveMessage, ReceivedMessages, SqsArchiveQueue};
use std::time::Duration;
use tokio::time::Instant;

/// How often SQS delivers a message before it goes to the dead letters: the
/// archive queue's `maxReceiveCount` in `infra/template.yaml` (a test holds
/// the two equal).
pub const MAX_DELIVERIES: u32 = 3;

/// How the messages of builds are held while they run, and delivered again
/// when they should be tried again.
#[derive(Clone, Debug)]
pub struct Redelivery {
    /// The messages received from the archive queue.
    pub received: ReceivedMessages,
    /// The pause before the second delivery; each further one waits twice as long.
    pub first_pause: Duration,
    /// Deliveries of one message before the job is failed ([`MAX_DELIVERIES`]).
    pub deliveries: u32,
}

impl Redelivery {
    /// Redelivery through `queue`: a minute before the second delivery, a
    /// message held two minutes at a time while its build runs.
    pub fn new(queue: &SqsArchiveQueue) -> Self {
        Redelivery { received: queue.received(), first_pause: Duration::from_secs(60), deliveries: MAX_DELIVERIES }
    }
}

/// Handles a batch, building each job before `deadline`.
pub async fn handle(
    builder: &ArchiveBuilder,
    redelivery: &Redelivery,
    event: &SqsEvent,
    deadline: Option<Instant>,
) -> SqsBatchResponse {
    let mut failures = Vec::new();
    for message in &event.records {
        if let Err(reason) = handle_message(builder, redelivery, message, deadline).await {
            tracing::warn!(message = ?message.message_id, %reason, "archive message failed; SQS will deliver it again");
            let mut failure = BatchItemFailure::default();
            failure.item_identifier = message.message_id.clone().unwrap_or_default();
            failures.push(failure);
        }
    }
    let mut response = SqsBatchResponse::default();
    response.batch_item_failures = failures;
    response
}

/// Handles one message: `Err` only when it should be delivered again.
pub async fn handle_message(
    builder: &ArchiveBuilder,
    redelivery: &Redelivery,
    message: &SqsMessage,
    deadline: Option<Instant>,
) -> Result<(), String> {
    let Some(parsed) = message.body.as_deref().and_then(|b| serde_json::from_str::<ArchiveMessage>(b).ok()) else {
        tracing::error!(message = ?message.message_id, "an archive message that names no job; dropped");
        return Ok(());
    };
    let delivery: u32 =
        message.attributes.get("ApproximateReceiveCount").and_then(|c| c.parse().ok()).unwrap_or(1).max(1);
    let build = async {
        if delivery >= redelivery.deliveries {
            builder.build(parsed.archive_id, deadline).await
        } else {
            builder.build_or_defer(parsed.archive_id, deadline).await
        }
    };
    let result = redelivery.received.holding(message.receipt_handle.as_deref(), build).await;
    match result {
        Ok(()) => Ok(()),
        Err(BuildError::Deferred(reason)) => {
            let pause = redelivery.first_pause * 2u32.saturating_pow(delivery - 1);
            if let Some(receipt) = &message.receipt_handle
                && let Err(e) = redelivery.received.deliver_again_in(receipt, pause).await
            {
                tracing::warn!(error = %e, "could not shorten the wait before the next delivery");
            }
            Err(reason)
        }
        Err(BuildError::Failed(reason)) => {
            tracing::info!(job = %parsed.archive_id, %reason, "archive build ended in failure");
            Ok(())
        }
        // The outcome could not be recorded (or the job not even read): deliver again.
        Err(e) => Err(e.to_string()),
    }
}
