//! The `zip-builder` Lambda: triggered by the archive queue (SQS, one message
//! per job), it builds each archive into the downloads bucket before the
//! invocation's deadline, reporting only the messages to deliver again. The
//! handling is this crate's library; the builder is the one the local
//! server runs in process.

use aws_lambda_events::event::sqs::SqsEvent;
use lambda_runtime::{LambdaEvent, service_fn};
use publinks_archive::builder::{ArchiveBuilder, BuildSettings};
use publinks_aws::runtime::{AwsRuntime, deadline_of, init_tracing};
use zip_builder::Redelivery;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    publinks_archive::keep_memory_flat();
    init_tracing();
    let runtime = AwsRuntime::from_env().await?;
    let builder = ArchiveBuilder::new(&runtime.stores, BuildSettings::default());
    let redelivery = Redelivery::new(&runtime.archive_queue()?);
    let (builder, redelivery) = (&builder, &redelivery);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| async move {
        let deadline = deadline_of(event.context.deadline);
        Ok::<_, lambda_runtime::Error>(zip_builder::handle(builder, redelivery, &event.payload, Some(deadline)).await)
    }))
    .await
}
