//! The `library-worker` Lambda: triggered by the library job queue (SQS, one
//! message per job), it runs each job — reading a big upload's bytes and
//! recording its file, making an image's preview renditions (the only
//! function that decodes images), removing a deleted folder's contents (until shortly
//! before the deadline, then handing the rest out again) — reporting only
//! the messages to deliver again. Every few minutes a schedule invokes it
//! for the webhook sweep (expiry warnings, deliveries whose message was
//! lost). The handling is this crate's library; the jobs and the sweep are
//! the ones the local server runs in process.

use lambda_runtime::{LambdaEvent, service_fn};
use publinks_aws::runtime::{AwsRuntime, deadline_of, init_tracing};
use publinks_media::ImageRenditions;
use std::sync::Arc;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    init_tracing();
    let runtime = AwsRuntime::from_env().await?;
    let jobs = runtime.library_jobs(Arc::new(ImageRenditions))?;
    let webhooks = runtime.webhooks()?;
    let received = runtime.library_jobs_queue()?.received();
    let links = runtime.stores.links.clone();
    let (jobs, received, webhooks, links) = (&jobs, Some(&received), &webhooks, links.as_ref());
    lambda_runtime::run(service_fn(move |event: LambdaEvent<serde_json::Value>| async move {
        let deadline = deadline_of(event.context.deadline);
        let answer = library_worker::invoke(jobs, received, webhooks, links, event.payload, Some(deadline)).await;
        answer.map_err(lambda_runtime::Error::from)
    }))
    .await
}
