//! What every Lambda function builds once per cold start: the typed
//! configuration, the SDK clients and the stores — then the state its
//! router needs, with the one key it uses read from the one secret it may
//! read (Secrets Manager, once). Each function's `main` is this plus
//! `lambda_http::run(router)`.

use crate::adapters::aws::{
    AwsClients, AwsConfig, ConfigError, ENV_ARCHIVE_QUEUE_URL, ENV_LIBRARY_JOBS_QUEUE_URL, ENV_ORIGIN_SECRET_ID,
    ENV_SECRET_ID, ENV_VISITOR_SECRET_ID, SecretsError, load_origin_secrets, load_signing_keys,
};
use crate::archive::builder::{ArchiveBuilder, BuildSettings};
use crate::auth::Authenticator;
use crate::domain::archives::{ArchiveService, ArchiveSettings};
use crate::domain::jobs::LibraryJobs;
use crate::domain::library::{Library, LibrarySettings};
use crate::domain::links::LinkService;
use crate::domain::public::{PublicService, PublicSettings};
use crate::http::AppState;
use crate::http::origin::OriginSecrets;
use crate::http::public::PublicState;
use crate::signing::SecretKey;
use crate::store::Stores;
use std::sync::Arc;

/// The environment variable with the URL share links start with (the CloudFront distribution).
pub const ENV_PUBLIC_BASE_URL: &str = "PUBLIC_BASE_URL";

/// Why a function could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("missing environment variable {ENV_PUBLIC_BASE_URL}: the dashboard functions make share URLs with it")]
    PublicBaseUrl,
    #[error(transparent)]
    Secrets(#[from] SecretsError),
    #[error("missing environment variable {0}: this function reads its key from that secret")]
    SecretId(&'static str),
    #[error("missing environment variable {ENV_ARCHIVE_QUEUE_URL}: this function requests archives")]
    ArchiveQueue,
    #[error("missing environment variable {ENV_LIBRARY_JOBS_QUEUE_URL}: this function hands out library jobs")]
    LibraryJobsQueue,
    #[error(transparent)]
    ArchiveLimits(#[from] crate::domain::archives::SettingsError),
}

/// A function's process-wide state: built once, borrowed by every request.
/// It holds no key: each function asks for the one it uses.
pub struct AwsRuntime {
    pub config: AwsConfig,
    pub clients: AwsClients,
    pub stores: Stores,
    /// Set for the dashboard functions (they hand out share URLs); the
    /// public and stream functions need none.
    pub public_base_url: Option<String>,
}

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

    /// The link-token key, from the dashboard functions' secret.
    async fn link_token_key(&self) -> Result<SecretKey, StartupError> {
        let id = self.config.secret_id.as_deref().ok_or(StartupError::SecretId(ENV_SECRET_ID))?;
        Ok(load_signing_keys(&self.clients.secrets, id).await?.link_tokens)
    }

    /// The state of the dashboard routers (`library-api`, `links-api`): the
    /// caller is whoever API Gateway's JWT authorizer let through.
    pub async fn dashboard(&self) -> Result<AppState, StartupError> {
        let base = self.public_base_url.clone().ok_or(StartupError::PublicBaseUrl)?;
        Ok(AppState {
            library: self.library()?,
            archives: self.archives()?,
            links: LinkService::new(&self.stores, self.link_token_key().await?, base),
            auth: Arc::new(Authenticator::ApiGatewayAuthorizer),
        })
    }

    /// The media library, handing its background work to the library jobs queue.
    pub fn library(&self) -> Result<Library, StartupError> {
        let queue = self.config.library_jobs_queue(&self.clients).ok_or(StartupError::LibraryJobsQueue)?;
        Ok(Library::new(&self.stores, LibrarySettings::from_env()?).with_jobs(Arc::new(queue)))
    }

    /// The link service for work that makes no share URL (the stream function).
    pub async fn link_records(&self) -> Result<LinkService, StartupError> {
        let base = self.public_base_url.clone().unwrap_or_default();
        Ok(LinkService::new(&self.stores, self.link_token_key().await?, base))
    }

    /// The state of the `public-api` router and the origin secrets its
    /// requests must carry (behind CloudFront): the visitor-session key from
    /// its own secret, and nothing from the dashboard's.
    pub async fn public(&self) -> Result<(PublicState, OriginSecrets), StartupError> {
        let secrets = &self.clients.secrets;
        let visitor = self.config.visitor_secret_id.as_deref().ok_or(StartupError::SecretId(ENV_VISITOR_SECRET_ID))?;
        let origin = self.config.origin_secret_id.as_deref().ok_or(StartupError::SecretId(ENV_ORIGIN_SECRET_ID))?;
        let session_key = load_signing_keys(secrets, visitor).await?.visitor_sessions;
        let state = PublicState {
            public: PublicService::new(&self.stores, session_key, PublicSettings::default()),
            archives: self.archives()?,
            secure_cookies: true,
        };
        Ok((state, load_origin_secrets(secrets, origin).await?))
    }

    /// Archive jobs, handed to `zip-builder` through the archive queue.
    pub fn archives(&self) -> Result<ArchiveService, StartupError> {
        let queue = self.config.archive_queue(&self.clients).ok_or(StartupError::ArchiveQueue)?;
        Ok(ArchiveService::new(&self.stores, Arc::new(queue), ArchiveSettings::from_env()?))
    }

    /// The jobs `library-worker` runs.
    pub fn library_jobs(&self) -> Result<LibraryJobs, StartupError> {
        // A tree deletion cut short by the deadline hands the rest to the queue again.
        Ok(LibraryJobs::new(self.library()?))
    }

    /// The builder `zip-builder` runs.
    pub fn archive_builder(&self) -> ArchiveBuilder {
        ArchiveBuilder::new(&self.stores, BuildSettings::default())
    }

    /// How `zip-builder` has the archive queue deliver a build again.
    pub fn archive_redelivery(&self) -> Result<crate::zip_builder::Redelivery, StartupError> {
        let queue = self.config.archive_queue(&self.clients).ok_or(StartupError::ArchiveQueue)?;
        Ok(crate::zip_builder::Redelivery::new(queue))
    }
}

/// JSON logs for CloudWatch, filtered by `RUST_LOG` (default `info`).
pub fn init_tracing() {
    tracing_subscriber::fmt()
        .json()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .with_current_span(false)
        .without_time()
        .init();
}
