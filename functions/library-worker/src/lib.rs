//! The library job queue as the `library-worker` function reads it: each SQS
//! message is one [`LibraryJob`] (JSON), run by [`LibraryJobs`]. A job that
//! ends (done, or failed for a reason its record states) is done with; only a
//! job that could not finish (storage failed) is reported as a batch item
//! failure, so that SQS delivers it again (and, after a few tries, to the
//! dead-letter queue). A message that names no job is dropped. Running a
//! job twice is safe. Each message is held while its job runs
//! ([`ReceivedMessages::holding`]): one whose process ended (Lambda's time
//! or memory limit, a panic in a decoder) is delivered again within two
//! minutes, not after the queue's 90. A job that could not finish is
//! delivered again after [`PAUSE_AFTER_A_FAILURE`], as before the hold.
//!
//! The same function is invoked on a schedule with [`SWEEP_INPUT`]: the
//! webhook sweep ([`sweep`]), which tells webhooks of links that end within
//! a day and makes the deliveries whose queue message was lost. Any other
//! payload is refused ([`Invocation::parse`]).

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use publinks_aws::ReceivedMessages;
use publinks_domain::jobs::{LibraryJob, LibraryJobs};
use publinks_domain::store::LinkStore;
use publinks_domain::webhooks::WebhookService;
use serde::{Deserialize, Serialize};
use std::time::Duration;
use tokio::time::Instant;

/// The input the schedule in `infra/template.yaml` sends (its `Input`).
pub const SWEEP_INPUT: &str = r#"{"sweep":"webhooks"}"#;

/// Deliveries a sweep attempts at most: each attempt may wait up to 20
/// seconds on an endpoint (name, then answer), so a sweep ends well within
/// the function's timeout.
pub const SWEEP_DELIVERIES: u32 = 25;

/// How long past its time a delivery must be for the sweep to take it: its
/// queue message, delayed at most by a backlog, should have come by then.
pub const SWEEP_OVERDUE_MINUTES: i64 = 10;

/// How long a job that could not finish (storage failed) waits before its
/// next delivery: the queue's visibility timeout, which set it before each
/// message was held, so that its three deliveries span hours and an outage
/// of minutes sends no job to the dead letters.
pub const PAUSE_AFTER_A_FAILURE: Duration = Duration::from_secs(5400);

/// Links ending within a day that a sweep reads at a time (it reads them
/// all, page by page, soonest first).
pub const SWEEP_LINKS: u32 = 500;

/// What the function was invoked with, told apart explicitly.
#[derive(Debug)]
pub enum Invocation {
    /// A batch from the library job queue.
    Jobs(SqsEvent),
    /// The scheduled webhook sweep.
    Sweep,
}

/// The scheduled payload: exactly `{"sweep": "webhooks"}`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SweepRequest {
    sweep: SweepKind,
}

/// The sweeps there are.
#[derive(Deserialize)]
#[serde(rename_all = "snake_case")]
enum SweepKind {
    Webhooks,
}

impl Invocation {
    /// An SQS batch (an object with `Records` from `aws:sqs`) or the sweep's
    /// input; anything else is an error naming what was wrong.
    pub fn parse(payload: serde_json::Value) -> Result<Self, String> {
        if payload.get("Records").is_some() {
            let event: SqsEvent = serde_json::from_value(payload).map_err(|e| format!("not an SQS batch: {e}"))?;
            if let Some(other) =
                event.records.iter().find_map(|r| r.event_source.as_deref().filter(|s| *s != "aws:sqs"))
            {
                return Err(format!("records from {other}, not from SQS"));
            }
            return Ok(Invocation::Jobs(event));
        }
        serde_json::from_value::<SweepRequest>(payload)
            .map(|request| match request.sweep {
                SweepKind::Webhooks => Invocation::Sweep,
            })
            .map_err(|e| format!("neither an SQS batch nor {SWEEP_INPUT}: {e}"))
    }
}

/// What a sweep did, returned as the invocation's result (and logged).
#[derive(Debug, Default, Serialize, PartialEq, Eq)]
pub struct SweepReport {
    /// Overdue deliveries attempted.
    pub attempted: usize,
    /// Active links found ending within a day (each told once per end date).
    pub expiring: usize,
}

/// The scheduled sweep: warns of links in `links` that end within a day
/// and attempts the deliveries overdue by [`SWEEP_OVERDUE_MINUTES`], each
/// in a bounded batch. Both parts run; a failure of either fails the
/// invocation (the errors alarm) after the other has run. Overlapping
/// sweeps are safe: a warning takes its slot before anything is sent, and a
/// delivery's attempt is claimed (a slot per attempt) before it is sent.
pub async fn sweep(webhooks: &WebhookService, links: &dyn LinkStore) -> Result<SweepReport, String> {
    let mut report = SweepReport::default();
    let mut errors = Vec::new();
    match webhooks.warn_expiring(links, SWEEP_LINKS).await {
        Ok(n) => report.expiring = n,
        Err(e) => errors.push(format!("expiry warnings: {e}")),
    }
    let overdue = chrono::Duration::minutes(SWEEP_OVERDUE_MINUTES);
    match webhooks.deliver_overdue(overdue, SWEEP_DELIVERIES).await {
        Ok(n) => report.attempted = n,
        Err(e) => errors.push(format!("overdue deliveries: {e}")),
    }
    tracing::info!(attempted = report.attempted, expiring = report.expiring, "webhook sweep");
    if errors.is_empty() { Ok(report) } else { Err(errors.join("; ")) }
}

/// Handles one invocation: the batch's messages to deliver again (held
/// through `received` while their jobs run), or the sweep's report. An
/// unknown payload is logged and refused.
pub async fn invoke(
    jobs: &LibraryJobs,
    received: Option<&ReceivedMessages>,
    webhooks: &WebhookService,
    links: &dyn LinkStore,
    payload: serde_json::Value,
    deadline: Option<Instant>,
) -> Result<serde_json::Value, String> {
    let invocation = Invocation::parse(payload).inspect_err(|why| {
        tracing::error!(%why, "library-worker invoked with an unknown payload; refused");
    })?;
    let answer = match invocation {
        Invocation::Jobs(event) => serde_json::to_value(handle(jobs, received, &event, deadline).await),
        Invocation::Sweep => serde_json::to_value(sweep(webhooks, links).await?),
    };
    answer.map_err(|e| e.to_string())
}

/// Handles a batch: the messages to deliver again. Each is held through
/// `received` (if given) while its job runs. Jobs that can stop half-way
/// stop shortly before `deadline` (the invocation's) and hand the rest out
/// again.
pub async fn handle(
    jobs: &LibraryJobs,
    received: Option<&ReceivedMessages>,
    event: &SqsEvent,
    deadline: Option<Instant>,
) -> SqsBatchResponse {
    let mut failures = Vec::new();
    for message in &event.records {
        let job = handle_message(jobs, message, deadline);
        let outcome = match received {
            Some(received) => received.holding(message.receipt_handle.as_deref(), job).await,
            None => job.await,
        };
        if let (Err(_), Some(received), Some(receipt)) = (&outcome, received, &message.receipt_handle)
            && let Err(e) = received.deliver_again_in(receipt, PAUSE_AFTER_A_FAILURE).await
        {
            tracing::warn!(error = %e, "could not put off the next delivery of a job that failed");
        }
        if let Err(reason) = outcome {
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_schedule_input_is_the_sweep_and_an_sqs_batch_is_jobs() {
        let input = serde_json::from_str(SWEEP_INPUT).unwrap();
        assert!(matches!(Invocation::parse(input), Ok(Invocation::Sweep)));
        let batch = json!({"Records": [{"messageId": "m1", "body": "{}", "eventSource": "aws:sqs"}]});
        assert!(matches!(Invocation::parse(batch), Ok(Invocation::Jobs(e)) if e.records.len() == 1));
    }

    #[test]
    fn any_other_payload_is_refused_never_taken_for_a_batch() {
        for payload in [
            json!({}),
            json!(null),
            json!({"detail-type": "Scheduled Event", "source": "aws.events", "detail": {}}),
            json!({"sweep": "links"}),
            json!({"sweep": "webhooks", "also": 1}),
            json!({"Records": [{"eventSource": "aws:dynamodb", "eventID": "1"}]}),
            json!({"Records": "none"}),
        ] {
            let parsed = Invocation::parse(payload.clone());
            assert!(parsed.is_err(), "{payload} was taken for {parsed:?}");
        }
    }
}
