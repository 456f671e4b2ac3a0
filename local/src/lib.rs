//! publinks as one local server: every function's router on one port, on the
//! embedded store (SQLite + a blob directory) under one data directory.
//! The end-to-end tests start it as `main` does, on a port of their own: on
//! the embedded store ([`LocalApp::build`]), or assembled from the same parts
//! on the AWS adapters ([`LocalApp::assemble`]).
//!
//! What only the local server runs lives here: its workers of archive and
//! library jobs (the `zip-builder` and `library-worker` functions' part in
//! AWS), the signed blob URLs (S3's part) and the demo account.

pub mod archive_worker;
pub mod blobs;
pub mod dashboard;
pub mod demo;
pub mod jobs;
pub mod webhooks;

use crate::archive_worker::LocalArchiveWorker;
use crate::demo::Demo;
use axum::Router;
use publinks_archive::builder::{ArchiveBuilder, BuildSettings};
use publinks_domain::DomainError;
use publinks_domain::access::Actor;
use publinks_domain::archives::{ArchiveService, ArchiveSettings};
use publinks_domain::clock::Clock;
use publinks_domain::jobs::LibraryJobs;
use publinks_domain::library::{Library, LibrarySettings};
use publinks_domain::links::{LinkService, NewLink};
use publinks_domain::model::{LinkState, Target};
use publinks_domain::passwords::{self, Password};
use publinks_domain::public::{PublicService, PublicSettings};
use publinks_domain::signing::SigningKeys;
use publinks_domain::store::{ArchiveQueue, PageRequest, Stores};
use publinks_domain::webhooks::{AddressPolicy, WebhookService};
use publinks_embedded::{BlobUrlSigner, DirectoryBlobStore, EmbeddedCatalog, load_or_create_keys};
use publinks_http::AppState;
use publinks_http::auth::Authenticator;
use publinks_http::public::PublicState;
use publinks_media::ImageRenditions;
use publinks_outbound::HttpTransport;
use publinks_pages::{HomePage, ShareLink};
use std::path::PathBuf;
use std::sync::Arc;

/// Where the local server keeps its data and how it is reached.
#[derive(Clone, Debug)]
pub struct LocalConfig {
    /// Holds `catalog.sqlite3`, `blobs/` and `keys.json`.
    pub data_dir: PathBuf,
    /// The URL browsers reach this server at (signed blob URLs point here).
    pub base_url: String,
    /// Seed the demo account when the store is empty.
    pub seed_demo: bool,
    /// Make (or find again) the demo's share links, to print and to offer on
    /// the home page, whenever the demo account exists.
    pub share_demo: bool,
    /// The time the services read: the system's, or one a test moves.
    pub clock: Arc<dyn Clock>,
    /// Which addresses webhooks may reach (the server: loopback too, so that
    /// a receiver on the same machine can be tried).
    pub webhook_policy: AddressPolicy,
}

/// A built local server: its router and what it knows.
pub struct LocalApp {
    pub router: Router,
    /// The stores every service here is built on.
    pub stores: Stores,
    pub keys: SigningKeys,
    pub library: Library,
    pub links: LinkService,
    pub public: PublicService,
    pub archives: ArchiveService,
    /// The account's webhooks; their deliveries go out from an in-process worker.
    pub webhooks: WebhookService,
    /// The in-process builder of archive jobs.
    pub archive_worker: Arc<LocalArchiveWorker>,
    /// Where the embedded store keeps archives (`None` on S3).
    pub archive_dir: Option<PathBuf>,
    /// The embedded catalog, whose uploads the sweep tidies (`None` on
    /// DynamoDB, where TTL and the bucket's lifecycle rule do it) and whose
    /// queued visitor activity is written when the server stops.
    pub upload_records: Option<Arc<EmbeddedCatalog>>,
    /// The demo account: seeded by this start, or found from an earlier one.
    pub demo: Option<Demo>,
    /// Whether this start seeded the demo (into an empty store).
    pub seeded: bool,
    /// The demo's share links (when asked for and the demo exists): the
    /// same links at every start, made once.
    pub demo_links: Vec<ShareLink>,
}

/// The password of the demo's protected link.
pub const DEMO_LINK_PASSWORD: &str = "open sesame";

/// Why the local server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot create the data directory {0}: {1}")]
    DataDir(String, std::io::Error),
    #[error(transparent)]
    Keys(#[from] publinks_embedded::KeyError),
    #[error("the store cannot be opened: {0}")]
    Store(#[from] publinks_domain::store::StoreError),
    #[error(transparent)]
    ArchiveLimits(#[from] publinks_domain::archives::SettingsError),
    #[error("{0}")]
    DashboardOidc(String),
    #[error("seeding the demo account failed: {0}")]
    Seed(#[from] publinks_domain::DomainError),
}

/// What the services and routers are built on, once the stores are open.
/// `publinks-local` opens the embedded store ([`LocalApp::build`]); the
/// end-to-end tests also assemble the same server on the AWS adapters.
pub struct Parts {
    /// The storage ports every service is built on.
    pub stores: Stores,
    /// The keys of JWTs, share tokens and visitor sessions.
    pub keys: SigningKeys,
    /// The URL browsers reach this server at (share links start with it).
    pub base_url: String,
    /// Seed the demo account when the catalog has no account yet.
    pub seed_demo: bool,
    /// Make or find the demo's share links ([`LocalConfig::share_demo`]).
    pub share_demo: bool,
    /// The embedded blob directory, whose signed `/_blobs` URLs this server
    /// answers; `None` when the blob store's URLs point elsewhere (S3).
    pub blob_routes: Option<DirectoryBlobStore>,
    /// The embedded catalog, for the sweep of its uploads; `None` on DynamoDB.
    pub upload_records: Option<Arc<EmbeddedCatalog>>,
    /// The library's settings (`LibrarySettings::from_env` for the server).
    pub library_settings: LibrarySettings,
    /// The identity provider the dashboard signs in with; `None`: the local
    /// sign-in (choose a user).
    pub dashboard_oidc: Option<dashboard::OidcConfig>,
    /// Which addresses webhooks may reach.
    pub webhook_policy: AddressPolicy,
}

impl LocalApp {
    /// Opens (or creates) the data directory and builds every router on it,
    /// with the library's settings from the environment.
    pub async fn build(config: &LocalConfig) -> Result<Self, StartError> {
        let oidc = dashboard::OidcConfig::from_env().map_err(StartError::DashboardOidc)?;
        Self::build_full(config, LibrarySettings::from_env()?, oidc).await
    }

    /// [`build`](Self::build) with these library settings (tests lower the
    /// part size and the size read within a request).
    pub async fn build_with(config: &LocalConfig, library_settings: LibrarySettings) -> Result<Self, StartError> {
        Self::build_full(config, library_settings, None).await
    }

    /// [`build_with`](Self::build_with), the dashboard signing in through
    /// `dashboard_oidc`'s identity provider when given (tests start one).
    pub async fn build_full(
        config: &LocalConfig,
        library_settings: LibrarySettings,
        dashboard_oidc: Option<dashboard::OidcConfig>,
    ) -> Result<Self, StartError> {
        std::fs::create_dir_all(&config.data_dir)
            .map_err(|e| StartError::DataDir(config.data_dir.display().to_string(), e))?;
        let keys = load_or_create_keys(&config.data_dir.join("keys.json"))?;
        let catalog = Arc::new(EmbeddedCatalog::open(&config.data_dir.join("catalog.sqlite3"))?);
        let signer = BlobUrlSigner::new(keys.urls.clone(), config.base_url.clone());
        let blob_root = config.data_dir.join("blobs");
        let blob_dir = DirectoryBlobStore::open(&blob_root, signer)?;
        // Archives live beside the assets (under `archives/`), so the same
        // signed `/_blobs` URLs serve them, and copies stay on one file system.
        let stores = Stores {
            catalog: catalog.clone(),
            links: catalog.clone(),
            visitors: catalog.clone(),
            blobs: Arc::new(blob_dir.clone()),
            asset_uploads: Arc::new(blob_dir.clone()),
            archives: Arc::new(blob_dir.clone().with_copy_source(&blob_root)),
            webhooks: catalog.clone(),
            clock: config.clock.clone(),
        };
        let (base_url, seed_demo, share_demo) = (config.base_url.clone(), config.seed_demo, config.share_demo);
        let app = Self::assemble(Parts {
            stores,
            keys,
            base_url,
            seed_demo,
            share_demo,
            blob_routes: Some(blob_dir),
            upload_records: Some(catalog.clone()),
            library_settings,
            dashboard_oidc,
            webhook_policy: config.webhook_policy,
        })
        .await?;
        // Archives that were pending or building when the server last stopped
        // are built again (a retry aborts the interrupted attempt's upload).
        for job in catalog.open_archive_jobs().await? {
            tracing::info!(job = %job.id, "resuming an archive left unfinished");
            app.archive_worker.enqueue(job.id).await?;
        }
        Ok(app)
    }

    /// Builds the services and every router on open stores, seeding the demo
    /// account into an empty catalog if asked.
    pub async fn assemble(parts: Parts) -> Result<Self, StartError> {
        let Parts {
            stores,
            keys,
            base_url,
            seed_demo,
            share_demo,
            blob_routes,
            upload_records,
            library_settings,
            dashboard_oidc,
            webhook_policy,
        } = parts;
        let deliveries = crate::webhooks::LocalDeliveries::default();
        let webhooks = WebhookService::new(
            stores.catalog.clone(),
            stores.webhooks.clone(),
            stores.visitors.clone(),
            Arc::new(HttpTransport::new()),
            Arc::new(deliveries.clone()),
            webhook_policy,
            stores.clock.clone(),
        );
        deliveries.spawn_worker(webhooks.clone());
        if upload_records.is_some() {
            // The embedded store's own server: deliveries left pending by the last run go on.
            deliveries.wake();
        }
        let (job_queue, job_worker) = crate::jobs::local_job_queue(2);
        let job_queue_for_resumes = job_queue.clone();
        let job_queue_for_public = job_queue.clone();
        let library =
            Library::new(&stores, library_settings).with_jobs(Arc::new(job_queue)).with_webhooks(webhooks.clone());
        job_worker.spawn(LibraryJobs::new(library.clone(), Arc::new(ImageRenditions)), job_queue_for_resumes);

        let empty = stores.catalog.list_accounts(&PageRequest::first(1)).await?.items.is_empty();
        let seeded = seed_demo && empty;
        let demo = if seeded { Some(demo::seed(&library).await?) } else { demo::find(&library).await? };

        let links =
            LinkService::new(&stores, keys.link_tokens.clone(), base_url.clone()).with_webhooks(webhooks.clone());
        let demo_links = match &demo {
            Some(demo) if share_demo => demo_links(&library, &links, &stores, demo).await?,
            _ => Vec::new(),
        };
        let public = PublicService::new(&stores, keys.visitor_sessions.clone(), PublicSettings::from_env()?)
            .with_jobs(Arc::new(job_queue_for_public))
            .with_webhooks(webhooks.clone());
        let builder = ArchiveBuilder::new(&stores, BuildSettings::default());
        let worker = Arc::new(LocalArchiveWorker::new(builder, 2));
        let archives = ArchiveService::new(&stores, worker.clone(), ArchiveSettings::from_env()?);
        let public_state = PublicState {
            public: public.clone(),
            archives: archives.clone(),
            secure_cookies: base_url.starts_with("https://"),
        };
        let state = AppState {
            library: library.clone(),
            archives: archives.clone(),
            links: links.clone(),
            webhooks: webhooks.clone(),
            auth: Arc::new(Authenticator::LocalJwt(keys.jwt.clone())),
        };
        let mut router = publinks_http::finish_with(
            Router::new()
                .merge(publinks_http::library::routes().merge(publinks_http::links::routes()).with_state(state))
                .merge(publinks_pages::routes::routes().with_state(public_state))
                .merge(reference_page())
                .merge(home_page(demo_links.clone()))
                .route("/healthz", axum::routing::get(|| async { "ok" })),
            None,
            publinks_pages::FALLBACKS,
        );
        let sign_in = dashboard::LocalSignIn::new(stores.clone(), keys.jwt.clone(), &base_url, dashboard_oidc);
        router = router.merge(dashboard::router(sign_in));
        let archive_dir = blob_routes.as_ref().map(|b| b.root().join("archives"));
        if let Some(blob_dir) = blob_routes {
            router = router.merge(blobs::router(blob_dir));
        }
        Ok(LocalApp {
            router,
            stores,
            keys,
            library,
            links,
            public,
            archives,
            webhooks,
            archive_worker: worker,
            archive_dir,
            upload_records,
            demo,
            seeded,
            demo_links,
        })
    }
}

/// Where the local server shows the API reference (Swagger UI, its files
/// compiled in: the page fetches nothing from elsewhere).
pub const REFERENCE_PATH: &str = "/api/docs";

/// The OpenAPI document at [`SPEC_PATH`](publinks_http::openapi::SPEC_PATH) and the
/// reference page that renders it.
fn reference_page() -> Router {
    let config = utoipa_swagger_ui::Config::new([publinks_http::openapi::SPEC_PATH]).validator_url("none");
    let ui = utoipa_swagger_ui::SwaggerUi::new(REFERENCE_PATH)
        .url(publinks_http::openapi::SPEC_PATH, publinks_http::openapi::openapi());
    ui.config(config).into()
}

/// The page at `/`: what a person who opens the server's address finds
/// (the API reference, the demo's share links). JSON clients live under
/// `/api`, where unknown addresses stay JSON 404s.
fn home_page(links: Vec<ShareLink>) -> Router {
    let links: Arc<[ShareLink]> = links.into();
    let page = move || {
        let links = links.clone();
        async move {
            let page = HomePage { reference: REFERENCE_PATH, spec: publinks_http::openapi::SPEC_PATH, links: &links };
            publinks_pages::render(axum::http::StatusCode::OK, &page)
        }
    };
    Router::new().route("/", axum::routing::get(page))
}

impl LocalApp {
    /// Starts the cleanup sweep of expired links (what DynamoDB's TTL and the
    /// audit-stream function do in AWS): every `every`, expired links are
    /// deleted, each on the record as expired by the system, and so are links
    /// whose target went or moved without its cascade finishing (what the
    /// catalog stream's cascades do in AWS).
    /// Archives older than their lifetime are removed too (the downloads
    /// bucket's lifecycle rule in AWS), and so are uploads past their time
    /// (see [`sweep_uploads`](Self::sweep_uploads)).
    pub fn spawn_expiry_sweep(&self, every: std::time::Duration) -> tokio::task::JoinHandle<()> {
        let links = self.links.clone();
        let archive_dir = self.archive_dir.clone();
        let uploads = self.upload_sweep();
        let archive_ttl = BuildSettings::default().archive_ttl.to_std().expect("a positive lifetime");
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            loop {
                tick.tick().await;
                match links.expire_due(links.now(), 500).await {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(removed = n, "expired links removed"),
                    Err(e) => tracing::warn!(error = %e, "the expiry sweep failed; it will try again"),
                }
                match links.warn_expiring(500).await {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(links = n, "links ending within a day told to webhooks"),
                    Err(e) => tracing::warn!(error = %e, "the expiring-links sweep failed; it will try again"),
                }
                match links.reap_orphans().await {
                    Ok(0) => {}
                    Ok(n) => tracing::warn!(removed = n, "links whose target had gone or moved removed"),
                    Err(e) => tracing::warn!(error = %e, "the orphan sweep failed; it will try again"),
                }
                if let Some(dir) = &archive_dir {
                    let removed = remove_older_than(dir, archive_ttl).await;
                    if removed > 0 {
                        tracing::info!(removed, "expired archives removed");
                    }
                }
                if let Some(uploads) = &uploads {
                    match uploads.run(links.now()).await {
                        Ok(0) => {}
                        Ok(n) => tracing::info!(tidied = n, "uploads tidied"),
                        Err(e) => tracing::warn!(error = %e, "the upload sweep failed; it will try again"),
                    }
                }
            }
        })
    }

    fn upload_sweep(&self) -> Option<UploadSweep> {
        self.upload_records.clone().map(|records| UploadSweep { records, library: self.library.clone() })
    }

    /// One pass of the upload sweep at `now` (what DynamoDB's TTL and the
    /// assets bucket's lifecycle rule do in AWS): an abandoned upload's parts
    /// and its record go once it expired, a finished upload's record a day
    /// after, and an upload whose ingest was lost (a restart) is handed out
    /// again. How many uploads it acted on; `0` on DynamoDB.
    pub async fn sweep_uploads(&self, now: chrono::DateTime<chrono::Utc>) -> Result<usize, DomainError> {
        match self.upload_sweep() {
            Some(sweep) => sweep.run(now).await,
            None => Ok(0),
        }
    }
}

/// The local sweep of upload records.
struct UploadSweep {
    records: Arc<EmbeddedCatalog>,
    library: Library,
}

impl UploadSweep {
    async fn run(&self, now: chrono::DateTime<chrono::Utc>) -> Result<usize, DomainError> {
        let mut acted = 0;
        for upload in self.records.every_upload().await? {
            if self.library.tidy_upload(&upload, now).await? {
                acted += 1;
            }
        }
        Ok(acted)
    }
}

/// Removes the files under `dir` last written more than `age` ago, and the
/// directories that leaves empty; returns how many files went.
pub async fn remove_older_than(dir: &std::path::Path, age: std::time::Duration) -> usize {
    fn sweep(dir: &std::path::Path, cutoff: std::time::SystemTime) -> usize {
        let Ok(entries) = std::fs::read_dir(dir) else { return 0 };
        let mut removed = 0;
        for entry in entries.flatten() {
            let path = entry.path();
            match entry.file_type() {
                Ok(t) if t.is_dir() => {
                    removed += sweep(&path, cutoff);
                    let _ = std::fs::remove_dir(&path);
                }
                Ok(_) => {
                    let old = entry.metadata().and_then(|m| m.modified()).is_ok_and(|m| m < cutoff);
                    if old && std::fs::remove_file(&path).is_ok() {
                        removed += 1;
                    }
                }
                Err(_) => {}
            }
        }
        removed
    }
    let (dir, cutoff) = (dir.to_path_buf(), std::time::SystemTime::now() - age);
    tokio::task::spawn_blocking(move || sweep(&dir, cutoff)).await.unwrap_or(0)
}

/// The demo's two share links — the granted folder, open to anyone, and the
/// collection behind [`DEMO_LINK_PASSWORD`] — made on the first start and
/// found again on the next ones (an active link of the demo's with the same
/// password), so that a restart shows the same URLs rather than adding links.
/// One that can be neither found nor made (a limit) is left out.
pub async fn demo_links(
    library: &Library,
    links: &LinkService,
    stores: &Stores,
    demo: &Demo,
) -> Result<Vec<ShareLink>, StartError> {
    let Some(ada) = library.actor(demo.admin.id).await? else { return Ok(Vec::new()) };
    let mut out = Vec::new();
    if let Some(folder) = &demo.granted_folder {
        let what = format!("folder \"{}\"", folder.name);
        if let Some(url) = demo_link(links, stores, &ada, Target::Folder(folder.id), None).await? {
            out.push(ShareLink { what, url, password: None });
        }
    }
    let picks = library.collections(&ada, &PageRequest::first(200)).await?.items;
    if let Some(picks) = picks.iter().find(|c| c.name == "Homepage picks") {
        let what = format!("collection \"{}\"", picks.name);
        let target = Target::Collection(picks.id);
        if let Some(url) = demo_link(links, stores, &ada, target, Some(DEMO_LINK_PASSWORD)).await? {
            out.push(ShareLink { what, url, password: Some(DEMO_LINK_PASSWORD.to_string()) });
        }
    }
    Ok(out)
}

/// The URL of an active link on `target` with exactly `password` (none, or
/// that one), made if there is none.
async fn demo_link(
    links: &LinkService,
    stores: &Stores,
    ada: &Actor,
    target: Target,
    password: Option<&str>,
) -> Result<Option<String>, StartError> {
    let now = stores.clock.now();
    for link in stores.links.links_of_target(target).await? {
        if link.account_id != ada.account.id || link.state(now) != LinkState::Active {
            continue;
        }
        let fits = match (password, &link.password_hash) {
            (None, None) => true,
            (Some(p), Some(hash)) => passwords::verify(&Password::new(p), hash).await,
            _ => false,
        };
        if fits {
            return Ok(Some(links.url(&link)));
        }
    }
    let new = NewLink {
        target,
        valid_from: None,
        valid_until: None,
        password: password.map(Password::new),
        expose_unpublished: false,
        hide_identifying_metadata: None,
        preview_only: false,
        max_downloads: None,
        max_sessions: None,
    };
    match links.create(ada, new).await {
        Ok(view) => Ok(Some(view.url)),
        Err(DomainError::LimitReached { .. } | DomainError::NotFound(_) | DomainError::PlanRequired) => Ok(None),
        Err(e) => Err(e.into()),
    }
}
