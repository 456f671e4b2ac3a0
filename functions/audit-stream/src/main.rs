//! The `audit-stream` Lambda: triggered by the links table's DynamoDB stream
//! (TTL removals of link items, by the event source mapping's filter) and
//! the catalog table's, it records each link removal, releases the link's
//! limit slots and records its webhooks' deliveries, and runs the cascades of removed or moved items again,
//! reporting bad records as batch item failures. The handling is this
//! crate's library.

use aws_lambda_events::event::dynamodb::Event;
use lambda_runtime::{LambdaEvent, service_fn};
use publinks_aws::AwsConfig;
use publinks_aws::runtime::{init_tracing, link_records};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    init_tracing();
    let links = link_records(&AwsConfig::from_env()?).await?;
    let links = &links;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Event>| async move {
        Ok::<_, lambda_runtime::Error>(audit_stream::handle(links, &event.payload).await)
    }))
    .await
}
