//! What `public-api` builds at its cold start: the visitor's service on the
//! AWS stores (renditions served as `library-worker` made them: nothing is
//! decoded here), and the router of the pages and the visitor's JSON API
//! behind the origin guard (the only function that renders pages).

use axum::Router;
use publinks_aws::runtime::AwsRuntime;
use publinks_http::origin::OriginSecrets;
use publinks_http::public::PublicState;

/// The `public-api` router on `runtime`'s stores and secrets: its own key
/// and the origin secret, nothing of the dashboard's.
pub async fn router(runtime: &AwsRuntime) -> Result<Router, lambda_http::Error> {
    let state = PublicState { public: runtime.public().await?, archives: runtime.archives()?, secure_cookies: true };
    let origin = OriginSecrets::new(runtime.origin_secret_values().await?)
        .map_err(|reason| format!("the origin secret is not valid: {reason}"))?;
    Ok(publinks_pages::router(state, Some(origin)))
}
