//! The AWS adapters of the storage ports: the catalog, the links and the
//! visitors' records on three DynamoDB tables, blobs in S3, signing keys in
//! Secrets Manager, jobs on SQS queues; and what every Lambda function builds
//! at cold start over them ([`runtime`]). The local server never builds the SDK.
//!
//! # Layout
//! - [`AwsConfig`]: the resource names and endpoint, read once from the environment.
//! - `tls`: the authorities the SDK clients trust ([`SdkRoots`], [`https_client`]).
//! - `layout`: the single place that knows the item keys of every table (see `infra/README.md`).
//! - `table`: what every DynamoDB adapter shares: conditional writes, transactions
//!   with retries, keyset pagination, error mapping.
//! - [`DynamoCatalog`] (`catalog`): every catalog port on the catalog table.
//! - [`DynamoLinks`] (`links`): links (with their limits' counters and token items) on
//!   the links table, and their audit log on the activity table.
//! - [`DynamoVisitors`] (`visitors`): downloads, archive jobs and throttle buckets on the activity table.
//! - [`S3BlobStore`] (`blobs`): the blob port on one bucket, presigned URLs, multipart uploads.
//! - [`SqsArchiveQueue`] (`queue`): archive jobs handed to the `zip-builder` function.
//! - [`SqsLibraryJobQueue`] (`queue`): library jobs handed to the `library-worker` function.
//! - [`load_signing_keys`], [`load_origin_secrets`] (`secrets`): the signing keys and the origin
//!   secret from Secrets Manager, each function reading only its own.
//! - [`runtime`]: a function's process-wide state, built once per cold start.
//!
//! Each SDK client but DynamoDB's is behind a cargo feature named for its
//! service (`s3`, `sqs`, `secrets`), so that a function links only the
//! clients it calls (`scripts/build-lambdas.sh` checks it).
//!
//! Tests run these against moto's server on loopback (`tests/conformance/aws.rs`).

#[cfg(feature = "s3")]
mod blobs;
mod catalog;
mod layout;
mod links;
#[cfg(feature = "sqs")]
mod queue;
pub mod runtime;
#[cfg(feature = "secrets")]
mod secrets;
mod table;
mod tls;
mod visitors;
mod webhooks;

#[cfg(feature = "s3")]
pub use blobs::S3BlobStore;
pub use catalog::DynamoCatalog;
pub use links::DynamoLinks;
#[cfg(feature = "sqs")]
pub use queue::{ArchiveMessage, ReceivedMessages, SqsArchiveQueue, SqsLibraryJobQueue};
#[cfg(feature = "secrets")]
pub use secrets::{SecretsError, load_origin_secrets, load_signing_keys, parse_origin_secrets, parse_signing_keys};
pub use tls::{ENV_CA_BUNDLE, SdkRoots, https_client};
pub use visitors::DynamoVisitors;
pub use webhooks::DynamoWebhooks;

use aws_config::{BehaviorVersion, Region, SdkConfig};
use publinks_domain::store::StoreError;

/// The environment variable naming the DynamoDB catalog table.
pub const ENV_CATALOG_TABLE: &str = "PUBLINKS_CATALOG_TABLE";
/// The environment variable naming the DynamoDB table of links (and their counters).
pub const ENV_LINKS_TABLE: &str = "PUBLINKS_LINKS_TABLE";
/// The environment variable naming the DynamoDB table of audit entries, downloads and throttle buckets.
pub const ENV_ACTIVITY_TABLE: &str = "PUBLINKS_ACTIVITY_TABLE";
/// The environment variable naming the S3 bucket of file bytes.
pub const ENV_ASSETS_BUCKET: &str = "PUBLINKS_ASSETS_BUCKET";
/// The environment variable naming the S3 bucket of generated ZIPs.
pub const ENV_DOWNLOADS_BUCKET: &str = "PUBLINKS_DOWNLOADS_BUCKET";
/// The environment variable with the URL of the SQS queue of archive jobs
/// (read by `zip-builder`; set for the functions that request archives).
pub const ENV_ARCHIVE_QUEUE_URL: &str = "PUBLINKS_ARCHIVE_QUEUE_URL";
/// The environment variable with the URL of the SQS queue of library jobs
/// (read by `library-worker`; set for `library-api`, which hands them out).
pub const ENV_LIBRARY_JOBS_QUEUE_URL: &str = "PUBLINKS_LIBRARY_JOBS_QUEUE_URL";
/// The environment variable naming the Secrets Manager secret of the dashboard
/// functions' key (the link-token key, from which share URLs are made).
pub const ENV_SECRET_ID: &str = "PUBLINKS_SECRET_ID";
/// The environment variable naming the secret of `public-api`'s key (visitor sessions).
pub const ENV_VISITOR_SECRET_ID: &str = "PUBLINKS_VISITOR_SECRET_ID";
/// The environment variable naming the secret of the origin header CloudFront adds.
pub const ENV_ORIGIN_SECRET_ID: &str = "PUBLINKS_ORIGIN_SECRET_ID";
/// The SDK's own endpoint override (moto, LocalStack); read here only to know
/// that S3 must then use path-style addressing.
pub const ENV_ENDPOINT_URL: &str = "AWS_ENDPOINT_URL";

/// Any SDK failure that is not an expected outcome: a backend error with the
/// SDK's full context (service error code included).
fn backend(e: impl std::error::Error) -> StoreError {
    StoreError::Backend(aws_sdk_dynamodb::error::DisplayErrorContext(e).to_string())
}

/// Why the configuration could not be read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    /// Required variables are unset or empty; every one of them is named.
    #[error("missing environment variables: {}", .0.join(", "))]
    Missing(Vec<&'static str>),
    /// `AWS_CA_BUNDLE` names a file that cannot be read, holds no
    /// certificate, or holds one a client cannot trust.
    #[error("{0}")]
    CaBundle(String),
}

/// Where the AWS resources are: one typed value read once at start-up, so a
/// missing variable fails the cold start with its name rather than a later request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AwsConfig {
    /// The DynamoDB table holding the whole catalog (see `infra/README.md`).
    pub catalog_table: String,
    /// The DynamoDB table of links, their token items and limit counters (its
    /// stream feeds the audit-stream function).
    pub links_table: String,
    /// The DynamoDB table of audit entries, downloads and throttle buckets.
    pub activity_table: String,
    /// The bucket of file bytes (uploads land here through presigned PUTs).
    pub assets_bucket: String,
    /// The bucket of generated ZIPs, emptied by a lifecycle rule.
    pub downloads_bucket: String,
    /// The secret of the dashboard functions' link-token key (`None`: this
    /// function makes no share URL).
    pub secret_id: Option<String>,
    /// The secret of the visitor-session key (`public-api` only).
    pub visitor_secret_id: Option<String>,
    /// The secret of the origin header CloudFront adds (`public-api` only).
    pub origin_secret_id: Option<String>,
    /// The queue of archive jobs (`None`: this function requests none).
    pub archive_queue_url: Option<String>,
    /// The queue of library jobs (`None`: this function hands none out).
    pub library_jobs_queue_url: Option<String>,
    /// An endpoint override for every service (tests: moto on loopback); `None` is AWS itself.
    pub endpoint_url: Option<String>,
    /// A region override; `None` leaves it to the SDK (`AWS_REGION`, profile...).
    pub region: Option<String>,
    /// The authorities the SDK clients trust: Amazon Trust Services' unless
    /// `AWS_CA_BUNDLE` names others.
    pub sdk_roots: SdkRoots,
}

/// The SDK clients the adapters use, built once per process and cloned cheaply.
#[derive(Clone, Debug)]
pub struct AwsClients {
    /// Every table.
    pub dynamodb: aws_sdk_dynamodb::Client,
    /// Both buckets; path-style when an endpoint override is set.
    #[cfg(feature = "s3")]
    pub s3: aws_sdk_s3::Client,
    /// The signing-key secret.
    #[cfg(feature = "secrets")]
    pub secrets: aws_sdk_secretsmanager::Client,
    /// The archive and library job queues.
    #[cfg(feature = "sqs")]
    pub sqs: aws_sdk_sqs::Client,
}

impl AwsConfig {
    /// Explicit names, with no endpoint or region override (tests set those with the `with_*` methods).
    pub fn new(
        catalog_table: impl Into<String>,
        links_table: impl Into<String>,
        activity_table: impl Into<String>,
        assets_bucket: impl Into<String>,
        downloads_bucket: impl Into<String>,
    ) -> Self {
        AwsConfig {
            catalog_table: catalog_table.into(),
            links_table: links_table.into(),
            activity_table: activity_table.into(),
            assets_bucket: assets_bucket.into(),
            downloads_bucket: downloads_bucket.into(),
            secret_id: None,
            visitor_secret_id: None,
            origin_secret_id: None,
            archive_queue_url: None,
            library_jobs_queue_url: None,
            endpoint_url: None,
            region: None,
            sdk_roots: SdkRoots::default(),
        }
    }

    /// Reads the dashboard functions' key from the secret `id`.
    pub fn with_secret(mut self, id: impl Into<String>) -> Self {
        self.secret_id = Some(id.into());
        self
    }

    /// Hands archive jobs to the queue at `url`.
    pub fn with_archive_queue(mut self, url: impl Into<String>) -> Self {
        self.archive_queue_url = Some(url.into());
        self
    }

    /// Hands library jobs to the queue at `url`.
    pub fn with_library_jobs_queue(mut self, url: impl Into<String>) -> Self {
        self.library_jobs_queue_url = Some(url.into());
        self
    }

    /// Sends every request to `url` instead of AWS (and S3 in path style).
    pub fn with_endpoint(mut self, url: impl Into<String>) -> Self {
        self.endpoint_url = Some(url.into());
        self
    }

    /// Uses `region` whatever the environment says.
    pub fn with_region(mut self, region: impl Into<String>) -> Self {
        self.region = Some(region.into());
        self
    }

    /// Reads the process environment; every missing variable is named in the error.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads the variables through `lookup` (the environment, or a map in tests).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |name: &str| lookup(name).map(|v| v.trim().to_string()).filter(|v| !v.is_empty());
        let mut missing = Vec::new();
        let mut required = |name: &'static str| {
            get(name).unwrap_or_else(|| {
                missing.push(name);
                String::new()
            })
        };
        let config = AwsConfig {
            catalog_table: required(ENV_CATALOG_TABLE),
            links_table: required(ENV_LINKS_TABLE),
            activity_table: required(ENV_ACTIVITY_TABLE),
            assets_bucket: required(ENV_ASSETS_BUCKET),
            downloads_bucket: required(ENV_DOWNLOADS_BUCKET),
            secret_id: get(ENV_SECRET_ID),
            visitor_secret_id: get(ENV_VISITOR_SECRET_ID),
            origin_secret_id: get(ENV_ORIGIN_SECRET_ID),
            archive_queue_url: get(ENV_ARCHIVE_QUEUE_URL),
            library_jobs_queue_url: get(ENV_LIBRARY_JOBS_QUEUE_URL),
            endpoint_url: get(ENV_ENDPOINT_URL),
            region: None,
            sdk_roots: SdkRoots::default(),
        };
        if !missing.is_empty() {
            return Err(ConfigError::Missing(missing));
        }
        match get(ENV_CA_BUNDLE) {
            Some(path) => {
                Ok(AwsConfig { sdk_roots: SdkRoots::from_bundle_file(&path).map_err(ConfigError::CaBundle)?, ..config })
            }
            None => Ok(config),
        }
    }

    /// A Lambda function's SDK configuration: credentials and region from
    /// the environment, where Lambda puts them for the sandbox's whole life
    /// (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`,
    /// `AWS_REGION`), with this config's overrides on top; otherwise the
    /// defaults `aws_config::defaults` gives (standard retries, a 3.1 s
    /// connect timeout, the lazy identity cache). Built here rather than
    /// through that loader so that no function links the providers Lambda
    /// never uses (profile files, web identity and its STS client, ECS,
    /// instance metadata): 0.6-0.7 MiB a function (README, Deploying).
    pub async fn sdk_config(&self) -> SdkConfig {
        use aws_config::environment::{EnvironmentVariableCredentialsProvider, EnvironmentVariableRegionProvider};
        use aws_config::meta::region::ProvideRegion;
        use aws_sdk_dynamodb::config::SharedCredentialsProvider;
        let region = match &self.region {
            Some(region) => Some(Region::new(region.clone())),
            None => EnvironmentVariableRegionProvider::new().region().await,
        };
        let mut builder = SdkConfig::builder()
            .behavior_version(BehaviorVersion::latest())
            .http_client(https_client(&self.sdk_roots))
            .credentials_provider(SharedCredentialsProvider::new(EnvironmentVariableCredentialsProvider::new()))
            .identity_cache(aws_config::identity::IdentityCache::lazy().build())
            .retry_config(aws_config::retry::RetryConfig::standard())
            .timeout_config(
                aws_config::timeout::TimeoutConfig::builder()
                    .connect_timeout(std::time::Duration::from_millis(3100))
                    .build(),
            )
            .region(region);
        builder.set_endpoint_url(self.endpoint_url.clone());
        builder.build()
    }

    /// The SDK configuration of a process outside Lambda (the operator
    /// command on a workstation): credentials and region from the SDK's
    /// whole default chain (profiles, web identity, instance metadata...),
    /// with this config's overrides on top.
    pub async fn sdk_config_from_default_chain(&self) -> SdkConfig {
        let mut loader = aws_config::defaults(BehaviorVersion::latest()).http_client(https_client(&self.sdk_roots));
        if let Some(url) = &self.endpoint_url {
            loader = loader.endpoint_url(url);
        }
        if let Some(region) = &self.region {
            loader = loader.region(Region::new(region.clone()));
        }
        loader.load().await
    }

    /// Builds the clients from [`sdk_config`](Self::sdk_config), as a Lambda function does.
    pub async fn clients(&self) -> AwsClients {
        AwsClients::from_sdk_config(&self.sdk_config().await)
    }

    /// The catalog adapter on [`catalog_table`](Self::catalog_table).
    pub fn catalog(&self, dynamodb: &aws_sdk_dynamodb::Client) -> DynamoCatalog {
        DynamoCatalog::new(dynamodb.clone(), self.catalog_table.clone())
    }

    /// The link and audit adapter on [`links_table`](Self::links_table) and
    /// [`activity_table`](Self::activity_table).
    pub fn links(&self, dynamodb: &aws_sdk_dynamodb::Client) -> DynamoLinks {
        DynamoLinks::new(
            dynamodb.clone(),
            self.links_table.clone(),
            self.activity_table.clone(),
            self.catalog_table.clone(),
        )
    }

    /// The download and throttle adapter on [`activity_table`](Self::activity_table).
    pub fn visitors(&self, dynamodb: &aws_sdk_dynamodb::Client) -> DynamoVisitors {
        DynamoVisitors::new(dynamodb.clone(), self.activity_table.clone())
    }

    /// The webhook adapter on [`activity_table`](Self::activity_table).
    pub fn webhooks(&self, dynamodb: &aws_sdk_dynamodb::Client) -> DynamoWebhooks {
        DynamoWebhooks::new(dynamodb.clone(), self.activity_table.clone())
    }

    /// Every storage port, wired as the functions use them (blobs: the assets
    /// bucket; archives: the downloads bucket, copying parts from the assets).
    #[cfg(feature = "s3")]
    pub fn stores(&self, clients: &AwsClients) -> publinks_domain::store::Stores {
        use std::sync::Arc;
        publinks_domain::store::Stores {
            catalog: Arc::new(self.catalog(&clients.dynamodb)),
            links: Arc::new(self.links(&clients.dynamodb)),
            visitors: Arc::new(self.visitors(&clients.dynamodb)),
            blobs: Arc::new(self.assets(clients)),
            asset_uploads: Arc::new(self.assets(clients)),
            archives: Arc::new(self.downloads(clients)),
            webhooks: Arc::new(self.webhooks(&clients.dynamodb)),
            clock: publinks_domain::clock::system(),
        }
    }

    /// The library job queue, if this function has one.
    #[cfg(feature = "sqs")]
    pub fn library_jobs_queue(&self, clients: &AwsClients) -> Option<SqsLibraryJobQueue> {
        self.library_jobs_queue_url.as_ref().map(|url| SqsLibraryJobQueue::new(clients.sqs.clone(), url.clone()))
    }

    /// The archive queue, if this function has one.
    #[cfg(feature = "sqs")]
    pub fn archive_queue(&self, clients: &AwsClients) -> Option<SqsArchiveQueue> {
        self.archive_queue_url.as_ref().map(|url| SqsArchiveQueue::new(clients.sqs.clone(), url.clone()))
    }

    /// The blob adapter on the assets bucket.
    #[cfg(feature = "s3")]
    pub fn assets(&self, clients: &AwsClients) -> S3BlobStore {
        S3BlobStore::new(clients.s3.clone(), self.assets_bucket.clone())
    }

    /// The blob adapter on the downloads (ZIP) bucket.
    #[cfg(feature = "s3")]
    pub fn downloads(&self, clients: &AwsClients) -> S3BlobStore {
        S3BlobStore::new(clients.s3.clone(), self.downloads_bucket.clone()).with_copy_source(self.assets_bucket.clone())
    }
}

impl AwsClients {
    /// Clients for one SDK configuration. S3 uses path-style addressing when an
    /// endpoint override is set: emulators do not resolve `bucket.host` names.
    pub fn from_sdk_config(sdk: &SdkConfig) -> Self {
        AwsClients {
            dynamodb: aws_sdk_dynamodb::Client::new(sdk),
            #[cfg(feature = "s3")]
            s3: aws_sdk_s3::Client::from_conf(
                aws_sdk_s3::config::Builder::from(sdk).force_path_style(sdk.endpoint_url().is_some()).build(),
            ),
            #[cfg(feature = "secrets")]
            secrets: aws_sdk_secretsmanager::Client::new(sdk),
            #[cfg(feature = "sqs")]
            sqs: aws_sdk_sqs::Client::new(sdk),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn every_missing_variable_is_named() {
        let env: HashMap<&str, &str> =
            HashMap::from([(ENV_ASSETS_BUCKET, "assets"), (ENV_DOWNLOADS_BUCKET, " "), (ENV_LINKS_TABLE, "links")]);
        let err = AwsConfig::from_lookup(|k| env.get(k).map(|v| v.to_string())).unwrap_err();
        assert_eq!(err, ConfigError::Missing(vec![ENV_CATALOG_TABLE, ENV_ACTIVITY_TABLE, ENV_DOWNLOADS_BUCKET]));
        assert_eq!(
            err.to_string(),
            "missing environment variables: PUBLINKS_CATALOG_TABLE, PUBLINKS_ACTIVITY_TABLE, PUBLINKS_DOWNLOADS_BUCKET"
        );
    }

    #[test]
    fn a_complete_environment_reads_into_one_value() {
        let env: HashMap<&str, &str> = HashMap::from([
            (ENV_CATALOG_TABLE, "t"),
            (ENV_LINKS_TABLE, "l"),
            (ENV_ACTIVITY_TABLE, "v"),
            (ENV_ASSETS_BUCKET, "a"),
            (ENV_DOWNLOADS_BUCKET, "d"),
            (ENV_SECRET_ID, "s"),
            (ENV_ENDPOINT_URL, "http://127.0.0.1:5000"),
        ]);
        let config = AwsConfig::from_lookup(|k| env.get(k).map(|v| v.to_string())).unwrap();
        let expected = AwsConfig::new("t", "l", "v", "a", "d").with_secret("s").with_endpoint("http://127.0.0.1:5000");
        assert_eq!(config, expected);
        assert_eq!((config.visitor_secret_id, config.origin_secret_id), (None, None), "each function names its own");
        assert_eq!(config.sdk_roots, SdkRoots::AmazonTrustServices);
    }

    #[test]
    fn a_ca_bundle_replaces_the_built_in_roots_and_a_bad_one_fails_the_start() {
        let dir = tempfile::tempdir().unwrap();
        let bundle = dir.path().join("bundle.pem");
        let pem = include_bytes!("amazon-trust-services.pem");
        std::fs::write(&bundle, pem).unwrap();
        let path = bundle.to_str().unwrap().to_string();
        let mut env: HashMap<&str, String> =
            [ENV_CATALOG_TABLE, ENV_LINKS_TABLE, ENV_ACTIVITY_TABLE, ENV_ASSETS_BUCKET, ENV_DOWNLOADS_BUCKET]
                .into_iter()
                .map(|k| (k, "x".to_string()))
                .collect();
        env.insert(ENV_CA_BUNDLE, path.clone());
        let config = AwsConfig::from_lookup(|k| env.get(k).cloned()).unwrap();
        assert_eq!(config.sdk_roots, SdkRoots::Bundle { path: path.clone(), pem: pem.as_slice().into() });

        std::fs::write(&bundle, "not a certificate").unwrap();
        let err = AwsConfig::from_lookup(|k| env.get(k).cloned()).unwrap_err();
        assert_eq!(err.to_string(), format!("AWS_CA_BUNDLE: {path} holds no PEM certificate"));
    }
}
