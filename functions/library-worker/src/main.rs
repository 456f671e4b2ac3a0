//! The `library-worker` Lambda: triggered by the library job queue (SQS, one
//! message per job), it runs each job — reading a big upload's bytes and
//! recording its file, making an image's preview renditions (the only
//! function that decodes images), removing a deleted folder's contents (until shortly
//! before the deadline, then handing the rest out again) — reporting only
//! the messages to deliver again. The handling is this crate's library; the
//! jobs are the ones the local server runs in process.

use aws_lambda_events::event::sqs::SqsEvent;
use lambda_runtime::{LambdaEvent, service_fn};
use publinks_aws::runtime::{AwsRuntime, deadline_of, init_tracing};
use publinks_media::ImageRenditions;
use std::sync::Arc;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    init_tracing();
    let runtime = AwsRuntime::from_env().await?;
    let jobs = runtime.library_jobs(Arc::new(ImageRenditions))?;
    let jobs = &jobs;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| async move {
        let deadline = deadline_of(event.context.deadline);
        Ok::<_, lambda_runtime::Error>(library_worker::handle(jobs, &event.payload, Some(deadline)).await)
    }))
    .await
}
