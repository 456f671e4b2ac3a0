//! The `links-api` Lambda: public links as the dashboard manages them (create,
//! list, edit, delete, audit), behind API Gateway, whose JWT authorizer has
//! already authenticated the caller.
//! The router is the one the local server mounts.

use publinks_core::http::links;
use publinks_core::lambda::{AwsRuntime, init_tracing};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    init_tracing();
    let runtime = AwsRuntime::from_env().await?;
    lambda_http::run(links::router(runtime.dashboard().await?)).await
}
