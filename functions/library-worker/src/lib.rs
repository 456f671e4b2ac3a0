//! The library job queue as the `library-worker` function reads it: each SQS
//! message is one [`LibraryJob`] (JSON), run by [`LibraryJobs`]. A job that
//! ends (done, or failed for a reason its record states) is done with; only a
//! job that could not finish (storage failed) is reported as a batch item
//! failure, so that SQS delivers it again (and, after a few tries, to the
//! dead-letter queue). A message that names no job is dropped. Running a
//! job twice is safe.

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use publinks_domain::jobs::{LibraryJob, LibraryJobs};
use tokio::time::Instant;

/// Handles a batch: the messages to deliver again. Jobs that can stop
/// half-way stop shortly before `deadline` (the invocation's) and hand the
/// rest out again.
pub async fn handle(jobs: &LibraryJobs, event: &SqsEvent, deadline: Option<Instant>) -> SqsBatchResponse {
    let mut failures = Vec::new();
    for message in &event.records {
        if let Err(reason) = handle_message(jobs, message, deadline).await {
            tracing::warn!(message = ?message.message_id, %reason, "library job failed; SQS will retry it");
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
pub async fn handle_message(jobs: &LibraryJobs, message: &SqsMessage, deadline: Option<Instant>) -> Result<(), String> {
    let Some(job) = message.body.as_deref().and_then(|b| serde_json::from_str::<LibraryJob>(b).ok()) else {
        tracing::error!(message = ?message.message_id, "a library job message that names no job; dropped");
        return Ok(());
    };
    jobs.run(&job, deadline).await.map_err(|e| e.to_string())
}
