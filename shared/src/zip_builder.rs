//! The archive queue as the `zip-builder` function reads it: each SQS message
//! names one archive job, built by [`ArchiveBuilder`] before the invocation's
//! deadline. A build that ends (ready, or failed for a reason the job
//! records) is done with; only a build that could not record its outcome
//! (the store failing) is reported as a batch item failure, so that SQS
//! delivers it again; a repeated build is safe.

use crate::adapters::aws::ArchiveMessage;
use crate::archive::builder::{ArchiveBuilder, BuildError};
use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use tokio::time::Instant;

/// Handles a batch, building each job before `deadline`.
pub async fn handle(builder: &ArchiveBuilder, event: &SqsEvent, deadline: Option<Instant>) -> SqsBatchResponse {
    let mut failures = Vec::new();
    for message in &event.records {
        if let Err(reason) = handle_message(builder, message, deadline).await {
            tracing::warn!(message = ?message.message_id, %reason, "archive message failed; SQS will retry it");
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
    message: &SqsMessage,
    deadline: Option<Instant>,
) -> Result<(), String> {
    let Some(parsed) = message.body.as_deref().and_then(|b| serde_json::from_str::<ArchiveMessage>(b).ok()) else {
        tracing::error!(message = ?message.message_id, "an archive message that names no job; dropped");
        return Ok(());
    };
    match builder.build(parsed.archive_id, deadline).await {
        Ok(()) => Ok(()),
        Err(BuildError::Store(e)) => Err(e.to_string()),
        Err(e) => {
            tracing::info!(job = %parsed.archive_id, reason = %e, "archive build ended in failure");
            Ok(())
        }
    }
}

/// The invocation's deadline as an [`Instant`], from the runtime's epoch milliseconds.
pub fn deadline_of(deadline_epoch_ms: u64) -> Instant {
    let now_ms =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0);
    Instant::now() + std::time::Duration::from_millis(deadline_epoch_ms.saturating_sub(now_ms))
}
