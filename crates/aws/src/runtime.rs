//! What every Lambda function builds once per cold start: the typed
//! configuration, the SDK clients and the stores — then the services it
//! runs, with the one key it uses read from the one secret it may read
//! (Secrets Manager, once). Each function's `main` is this, the state of
//! its router or handler, and `lambda_http::run` or `lambda_runtime::run`.
//!
//! [`AwsRuntime`] holds every store, so it needs the `s3` feature; what
//! needs a queue or a secret is behind `sqs` or `secrets`. `audit-stream`,
//! which touches no file and no queue, starts with [`link_records`]
//! instead and builds only the DynamoDB and Secrets Manager clients.

#[cfg(any(feature = "s3", feature = "secrets"))]
use crate::AwsConfig;
use crate::ConfigError;
#[cfg(feature = "sqs")]
use crate::{ENV_ARCHIVE_QUEUE_URL, ENV_LIBRARY_JOBS_QUEUE_URL};
#[cfg(feature = "secrets")]
use crate::{ENV_SECRET_ID, SecretsError, load_signing_keys};
#[cfg(feature = "secrets")]
use publinks_domain::links::LinkService;
#[cfg(any(feature = "secrets", all(feature = "s3", feature = "sqs")))]
use std::sync::Arc;
// What AwsRuntime alone uses.
#[cfg(feature = "s3")]
use crate::AwsClients;
#[cfg(all(feature = "s3", feature = "secrets"))]
use crate::{ENV_ORIGIN_SECRET_ID, ENV_VISITOR_SECRET_ID, load_origin_secrets};
#[cfg(all(feature = "s3", feature = "sqs"))]
use crate::{SqsArchiveQueue, SqsLibraryJobQueue};
#[cfg(all(feature = "s3", feature = "sqs"))]
use publinks_domain::archives::{ArchiveService, ArchiveSettings};
#[cfg(all(feature = "s3", feature = "sqs"))]
use publinks_domain::jobs::LibraryJobs;
#[cfg(all(feature = "s3", feature = "sqs"))]
use publinks_domain::library::{Library, LibrarySettings};
#[cfg(all(feature = "s3", feature = "secrets"))]
use publinks_domain::public::{PublicService, PublicSettings};
#[cfg(all(feature = "s3", feature = "sqs"))]
use publinks_domain::renditions::RenditionMaker;
#[cfg(feature = "s3")]
use publinks_domain::store::Stores;
#[cfg(all(feature = "s3", feature = "sqs"))]
use publinks_domain::webhooks::{AddressPolicy, WebhookService};
use tokio::time::Instant;

/// The environment variable with the URL share links start with (the CloudFront distribution).
pub const ENV_PUBLIC_BASE_URL: &str = "PUBLIC_BASE_URL";

/// Why a function could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("missing environment variable {ENV_PUBLIC_BASE_URL}: the dashboard functions make share URLs with it")]
    PublicBaseUrl,
    #[cfg(feature = "secrets")]
    #[error(transparent)]
    Secrets(#[from] SecretsError),
    #[error("missing environment variable {0}: this function reads its key from that secret")]
    SecretId(&'static str),
    #[cfg(feature = "sqs")]
    #[error("missing environment variable {ENV_ARCHIVE_QUEUE_URL}: this function requests archives")]
    ArchiveQueue,
    #[cfg(feature = "sqs")]
    #[error("missing environment variable {ENV_LIBRARY_JOBS_QUEUE_URL}: this function hands out library jobs")]
    LibraryJobsQueue,
    #[error(transparent)]
    ArchiveLimits(#[from] publinks_domain::archives::SettingsError),
}

/// A function's process-wide state: built once, borrowed by every request.
/// It holds no key: each function asks for the one it uses.
#[cfg(feature = "s3")]
pub struct AwsRuntime {
    pub config: AwsConfig,
    pub clients: AwsClients,
    pub stores: Stores,
    /// Set for the dashboard functions (they hand out share URLs); the
    /// public and stream functions need none.
    pub public_base_url: Option<String>,
}

#[cfg(feature = "s3")]
impl AwsRuntime {
    /// Reads the environment and connects; any missing piece fails the cold
    /// start with its name.
    pub async fn from_env() -> Result<Self, StartupError> {
        let public_base_url = std::env::var(ENV_PUBLIC_BASE_URL).ok();
        Ok(Self::new(AwsConfig::from_env()?, public_base_url).await)
    }

    /// Connects to the resources `config` names.
    pub async fn new(config: AwsConfig, public_base_url: Option<String>) -> Self {
        let public_base_url =
            public_base_url.map(|u| u.trim().trim_end_matches('/').to_string()).filter(|u| !u.is_empty());
        let clients = config.clients().await;
        let stores = config.stores(&clients);
        AwsRuntime { config, clients, stores, public_base_url }
    }

    /// The link service of the dashboard functions, which hand out share URLs.
    #[cfg(feature = "secrets")]
    pub async fn links(&self) -> Result<LinkService, StartupError> {
        let base = self.public_base_url.clone().ok_or(StartupError::PublicBaseUrl)?;
        let key = link_token_key(&self.config, &self.clients.secrets).await?;
        let links = LinkService::new(&self.stores, key, base);
        #[cfg(feature = "sqs")]
        let links = links.with_webhooks(self.webhooks()?);
        Ok(links)
    }

    /// The media library, handing its background work to the library jobs queue.
    #[cfg(feature = "sqs")]
    pub fn library(&self) -> Result<Library, StartupError> {
        let queue = self.library_jobs_queue()?;
        let library = Library::new(&self.stores, LibrarySettings::from_env()?).with_jobs(Arc::new(queue));
        Ok(library.with_webhooks(self.webhooks()?))
    }

    /// The account's webhooks: deliveries through the library jobs queue to
    /// `library-worker`, to public addresses only.
    #[cfg(feature = "sqs")]
    pub fn webhooks(&self) -> Result<WebhookService, StartupError> {
        let queue = self.library_jobs_queue()?;
        Ok(WebhookService::new(
            self.stores.catalog.clone(),
            self.stores.webhooks.clone(),
            self.stores.visitors.clone(),
            Arc::new(publinks_outbound::HttpTransport::new()),
            Arc::new(queue),
            AddressPolicy::PublicOnly,
            self.stores.clock.clone(),
        ))
    }

    /// The visitor's service of `public-api`, with the visitor-session key
    /// from its own secret (nothing from the dashboard's).
    #[cfg(feature = "secrets")]
    pub async fn public(&self) -> Result<PublicService, StartupError> {
        let visitor = self.config.visitor_secret_id.as_deref().ok_or(StartupError::SecretId(ENV_VISITOR_SECRET_ID))?;
        let session_key = load_signing_keys(&self.clients.secrets, visitor).await?.visitor_sessions;
        let public = PublicService::new(&self.stores, session_key, PublicSettings::from_env()?);
        // Watermarked previews are made by library-worker, asked for through its queue.
        #[cfg(feature = "sqs")]
        let public = match self.config.library_jobs_queue(&self.clients) {
            Some(queue) => public.with_jobs(Arc::new(queue)),
            None => public,
        };
        #[cfg(feature = "sqs")]
        let public = public.with_webhooks(self.webhooks()?);
        Ok(public)
    }

    /// The values of the origin secret that requests to `public-api` must
    /// carry (behind CloudFront): the current one and, during a rotation,
    /// the previous one.
    #[cfg(feature = "secrets")]
    pub async fn origin_secret_values(&self) -> Result<Vec<String>, StartupError> {
        let origin = self.config.origin_secret_id.as_deref().ok_or(StartupError::SecretId(ENV_ORIGIN_SECRET_ID))?;
        Ok(load_origin_secrets(&self.clients.secrets, origin).await?)
    }

    /// Archive jobs, handed to `zip-builder` through the archive queue.
    #[cfg(feature = "sqs")]
    pub fn archives(&self) -> Result<ArchiveService, StartupError> {
        let queue = self.config.archive_queue(&self.clients).ok_or(StartupError::ArchiveQueue)?;
        Ok(ArchiveService::new(&self.stores, Arc::new(queue), ArchiveSettings::from_env()?))
    }

    /// The jobs `library-worker` runs, making renditions with `renditions`.
    #[cfg(feature = "sqs")]
    pub fn library_jobs(&self, renditions: Arc<dyn RenditionMaker>) -> Result<LibraryJobs, StartupError> {
        // A tree deletion cut short by the deadline hands the rest to the queue again.
        Ok(LibraryJobs::new(self.library()?, renditions).with_webhooks(self.webhooks()?))
    }

    /// The library jobs queue, for `library-worker` to hold the messages it works on.
    #[cfg(feature = "sqs")]
    pub fn library_jobs_queue(&self) -> Result<SqsLibraryJobQueue, StartupError> {
        self.config.library_jobs_queue(&self.clients).ok_or(StartupError::LibraryJobsQueue)
    }

    /// The archive queue, for `zip-builder` to have a build delivered again.
    #[cfg(feature = "sqs")]
    pub fn archive_queue(&self) -> Result<SqsArchiveQueue, StartupError> {
        self.config.archive_queue(&self.clients).ok_or(StartupError::ArchiveQueue)
    }
}

/// The link service for work that makes no share URL (the stream
/// function), on the link records of the tables `config` names: only the
/// DynamoDB and Secrets Manager clients are built, so nothing of S3 or SQS
/// is linked. Links the system deletes are told to webhooks by recording
/// their deliveries only ([`WebhookService::recording_only`]): no queue, no
/// HTTP client; `library-worker`'s sweep sends them. A missing secret fails
/// the cold start with its name.
#[cfg(feature = "secrets")]
pub async fn link_records(config: &AwsConfig) -> Result<LinkService, StartupError> {
    let sdk = config.sdk_config().await;
    let dynamodb = aws_sdk_dynamodb::Client::new(&sdk);
    let key = link_token_key(config, &aws_sdk_secretsmanager::Client::new(&sdk)).await?;
    let (catalog, visitors) = (Arc::new(config.catalog(&dynamodb)), Arc::new(config.visitors(&dynamodb)));
    let clock = publinks_domain::clock::system();
    let webhooks = publinks_domain::webhooks::WebhookService::recording_only(
        catalog.clone(),
        Arc::new(config.webhooks(&dynamodb)),
        visitors.clone(),
        clock.clone(),
    );
    let links = LinkService::over_records(catalog, Arc::new(config.links(&dynamodb)), visitors, clock, key, "");
    Ok(links.with_webhooks(webhooks))
}

/// The link-token key, from the dashboard functions' secret.
#[cfg(feature = "secrets")]
async fn link_token_key(
    config: &AwsConfig,
    secrets: &aws_sdk_secretsmanager::Client,
) -> Result<publinks_domain::signing::SecretKey, StartupError> {
    let id = config.secret_id.as_deref().ok_or(StartupError::SecretId(ENV_SECRET_ID))?;
    Ok(load_signing_keys(secrets, id).await?.link_tokens)
}

/// The invocation's deadline as an [`Instant`], from the runtime's epoch milliseconds.
pub fn deadline_of(deadline_epoch_ms: u64) -> Instant {
    let now_ms =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0);
    Instant::now() + std::time::Duration::from_millis(deadline_epoch_ms.saturating_sub(now_ms))
}

/// JSON logs for CloudWatch, filtered by `RUST_LOG` (default `info`): a
/// level, and `target=level` pairs, as `filter::Targets` reads them (no span
/// or field filters, which would bring a regex engine into every function).
pub fn init_tracing() {
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    let logs = tracing_subscriber::fmt::layer().json().with_current_span(false).without_time();
    tracing_subscriber::registry().with(logs).with(log_filter(std::env::var("RUST_LOG").ok().as_deref())).init();
}

/// What `RUST_LOG` lets through; `info` when unset or unreadable.
fn log_filter(rust_log: Option<&str>) -> tracing_subscriber::filter::Targets {
    rust_log
        .and_then(|directives| directives.parse().ok())
        .unwrap_or_else(|| tracing_subscriber::filter::Targets::new().with_default(tracing::Level::INFO))
}

#[cfg(test)]
mod log_filter_tests {
    use super::log_filter;
    use tracing::Level;

    #[test]
    fn rust_log_sets_levels_by_target_and_defaults_to_info() {
        let default = log_filter(None);
        assert!(default.would_enable("publinks_aws", &Level::INFO));
        assert!(!default.would_enable("publinks_aws", &Level::DEBUG));
        let tuned = log_filter(Some("warn,publinks_domain=debug"));
        assert!(tuned.would_enable("publinks_domain::links", &Level::DEBUG));
        assert!(!tuned.would_enable("publinks_aws", &Level::INFO));
        assert!(tuned.would_enable("publinks_aws", &Level::WARN));
        let unreadable = log_filter(Some("[span{field=1}]=debug"));
        assert!(unreadable.would_enable("publinks_aws", &Level::INFO));
        assert!(!unreadable.would_enable("publinks_aws", &Level::DEBUG));
    }
}
