//! The `audit-stream` Lambda: triggered by the links table's DynamoDB stream
//! (TTL removals of link items, by the event source mapping's filter), it
//! records each removal and releases the link's limit slots, reporting bad
//! records as batch item failures. The handling is `publinks_core::stream`.

use aws_lambda_events::event::dynamodb::Event;
use lambda_runtime::{LambdaEvent, service_fn};
use publinks_core::lambda::{AwsRuntime, init_tracing};
use publinks_core::stream;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    init_tracing();
    let runtime = AwsRuntime::from_env().await?;
    let links = runtime.link_records().await?;
    let links = &links;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Event>| async move {
        Ok::<_, lambda_runtime::Error>(stream::handle(links, &event.payload).await)
    }))
    .await
}
