//! The `library-api` Lambda: the media library's dashboard API (accounts,
//! users, grants, folders, files, uploads, collections), behind API Gateway,
//! whose JWT authorizer has already authenticated the caller.
//! The router is the one the local server mounts.

use publinks_aws::runtime::{AwsRuntime, init_tracing};
use publinks_http::{AppState, library};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    init_tracing();
    let runtime = AwsRuntime::from_env().await?;
    let (library, archives, link_service) = (runtime.library()?, runtime.archives()?, runtime.links().await?);
    let state = AppState::behind_authorizer(library, archives, link_service, runtime.webhooks()?);
    lambda_http::run(library::router(state)).await
}
