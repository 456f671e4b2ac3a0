//! The `library-api` Lambda: the media library's dashboard API (accounts,
//! users, grants, folders, files, uploads, collections), behind API Gateway,
//! whose JWT authorizer has already authenticated the caller.
//! The router is the one the local server mounts.

use publinks_core::http::library;
use publinks_core::lambda::{AwsRuntime, init_tracing};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    init_tracing();
    let runtime = AwsRuntime::from_env().await?;
    lambda_http::run(library::router(runtime.dashboard().await?)).await
}
