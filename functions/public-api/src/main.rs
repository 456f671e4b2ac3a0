//! The `public-api` Lambda: what a visitor reaches through a share URL (pages
//! and JSON API), behind CloudFront and API Gateway, with no authorizer:
//! visitors have no account. Only requests carrying CloudFront's origin
//! secret get past the router's first layer. The router is this crate's
//! library, the one the local server mounts.

use publinks_aws::runtime::{AwsRuntime, init_tracing};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    init_tracing();
    let runtime = AwsRuntime::from_env().await?;
    lambda_http::run(public_api::router(&runtime).await?).await
}
