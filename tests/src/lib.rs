//! The harness of the end-to-end tests: the real local server on a loopback
//! port over fresh storage with the demo account, and an HTTP client.
//!
//! The storage is chosen per test run by `PUBLINKS_E2E_BACKEND` ([`Backend`]):
//! `embedded` (the default) runs the server exactly as `publinks-local` does,
//! on SQLite and a blob directory; `aws` assembles the same server on the AWS
//! adapters over fresh DynamoDB tables, S3 buckets and a secret on moto, so
//! that every end-to-end rule is seen to hold on both. `scripts/test.sh` runs
//! the e2e binary once per backend.
//!
//! - [`aws`]: the AWS test harness, shared with the conformance suite.

pub mod aws;

use publinks_domain::clock::ShiftedClock;
use publinks_domain::library::{Library, LibrarySettings, NewUser};
use publinks_domain::model::{Plan, Role, User};
use publinks_domain::signing::SigningKeys;
use publinks_domain::store::Stores;
use publinks_domain::tokens;
use publinks_domain::webhooks::AddressPolicy;
use publinks_local::demo::Demo;
use publinks_local::{LocalApp, LocalConfig, Parts};
use reqwest::{Method, RequestBuilder, Response, StatusCode};
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;

/// The variable that chooses the backend of an end-to-end test run.
pub const BACKEND_VAR: &str = "PUBLINKS_E2E_BACKEND";

/// The storage a test's local server runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// SQLite and a blob directory in a fresh data directory, as `publinks-local` runs.
    Embedded,
    /// The AWS adapters on this test's own tables, buckets and secret on moto ([`aws`]).
    Aws,
}

impl Backend {
    /// The backend of this run: [`BACKEND_VAR`] is `embedded` (also when
    /// unset) or `aws`; anything else is a mistake and panics.
    pub fn from_env() -> Self {
        let value = std::env::var(BACKEND_VAR).unwrap_or_default();
        Self::parse(&value).unwrap_or_else(|| panic!("{BACKEND_VAR}={value:?}: expected `embedded` or `aws`"))
    }

    fn parse(value: &str) -> Option<Self> {
        match value.trim() {
            "" | "embedded" => Some(Backend::Embedded),
            "aws" => Some(Backend::Aws),
            _ => None,
        }
    }
}

/// Where a test server's data lives; kept as long as the server runs.
pub enum Storage {
    /// The embedded store's data directory, deleted when dropped.
    Embedded(tempfile::TempDir),
    /// This test's tables, buckets and secret, with raw clients to inspect them.
    Aws(Box<aws::AwsEnv>),
}

/// A running local server and what a test needs to talk to it.
pub struct TestApp {
    /// e.g. `http://127.0.0.1:41234`
    pub base: String,
    pub http: reqwest::Client,
    pub demo: Demo,
    pub library: Library,
    pub links: publinks_domain::links::LinkService,
    pub public: publinks_domain::public::PublicService,
    pub archives: publinks_domain::archives::ArchiveService,
    pub webhooks: publinks_domain::webhooks::WebhookService,
    pub keys: SigningKeys,
    /// The server as built, for what it does beside serving (the sweep).
    pub local: LocalApp,
    /// Where the data lives, for as long as the server runs.
    pub storage: Storage,
    /// The time every service of this server reads: a test moves it ahead
    /// rather than sleeping through a link's window or a throttle's wait.
    pub clock: ShiftedClock,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// Starts the local server on a free port over fresh storage of this run's
/// backend ([`Backend::from_env`]).
pub async fn spawn_app() -> TestApp {
    spawn_app_on(Backend::from_env()).await
}

/// Starts the local server on a free port over fresh storage of `backend`;
/// tests of what only one backend has name it here.
pub async fn spawn_app_on(backend: Backend) -> TestApp {
    spawn_app_with(backend, LibrarySettings::default()).await
}

/// [`spawn_app_on`] with these library settings (a lowered part size...).
pub async fn spawn_app_with(backend: Backend, settings: LibrarySettings) -> TestApp {
    spawn_app_full(backend, settings, None, AddressPolicy::AllowLoopback).await
}

/// [`spawn_app`] whose dashboard signs in through `oidc`'s identity provider
/// (a test's own, on loopback) instead of the local sign-in.
pub async fn spawn_app_with_dashboard_oidc(oidc: publinks_local::dashboard::OidcConfig) -> TestApp {
    spawn_app_full(Backend::from_env(), LibrarySettings::default(), Some(oidc), AddressPolicy::AllowLoopback).await
}

/// [`spawn_app`] whose webhooks may reach only public addresses, as in AWS.
pub async fn spawn_app_with_public_webhooks() -> TestApp {
    spawn_app_full(Backend::from_env(), LibrarySettings::default(), None, AddressPolicy::PublicOnly).await
}

async fn spawn_app_full(
    backend: Backend,
    settings: LibrarySettings,
    dashboard_oidc: Option<publinks_local::dashboard::OidcConfig>,
    webhook_policy: AddressPolicy,
) -> TestApp {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let base = format!("http://{}", listener.local_addr().unwrap());
    let clock = ShiftedClock::new();
    let (app, storage) = match backend {
        Backend::Embedded => {
            let data_dir = tempfile::tempdir().expect("temp dir");
            let config = LocalConfig {
                data_dir: data_dir.path().to_path_buf(),
                base_url: base.clone(),
                seed_demo: true,
                share_demo: false,
                clock: Arc::new(clock.clone()),
                webhook_policy,
            };
            let app = LocalApp::build_full(&config, settings, dashboard_oidc).await.expect("the local server builds");
            (app, Storage::Embedded(data_dir))
        }
        Backend::Aws => {
            // Never fall back to the embedded store: a run that asked for AWS
            // and got SQLite would pass for the wrong reason.
            for var in [aws::ENDPOINT_VAR, aws::RESOURCES_VAR] {
                assert!(
                    std::env::var_os(var).is_some(),
                    "{BACKEND_VAR}=aws needs {var}: run scripts/test.sh, which starts moto and sets it"
                );
            }
            let env = aws::environment().await;
            let parts = Parts {
                stores: Stores { clock: Arc::new(clock.clone()), ..env.stores() },
                keys: env.signing_keys().await,
                base_url: base.clone(),
                seed_demo: true,
                share_demo: false,
                // S3 presigns URLs of its own: no /_blobs routes.
                blob_routes: None,
                // DynamoDB's TTL and the bucket's lifecycle rule tidy uploads.
                upload_records: None,
                library_settings: settings,
                dashboard_oidc,
                webhook_policy,
            };
            let app = LocalApp::assemble(parts).await.expect("the local server builds on the AWS adapters");
            (app, Storage::Aws(Box::new(env)))
        }
    };
    let router = app.router.clone();
    let server = tokio::spawn(async move {
        let service = router.into_make_service_with_connect_info::<std::net::SocketAddr>();
        axum::serve(listener, service).await.expect("server runs");
    });
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    TestApp {
        base,
        http,
        demo: app.demo.clone().expect("a fresh store is seeded"),
        library: app.library.clone(),
        links: app.links.clone(),
        public: app.public.clone(),
        archives: app.archives.clone(),
        webhooks: app.webhooks.clone(),
        keys: app.keys.clone(),
        local: app,
        storage,
        clock,
        server,
    }
}

/// A second server of a test, stopped when dropped.
pub struct Spawned {
    /// e.g. `http://127.0.0.1:41235`
    pub base: String,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Spawned {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl TestApp {
    /// The storage calls (DynamoDB and S3 requests, by operation) `f` makes
    /// on the AWS backend; `None` on the embedded one.
    pub async fn calls_of<T>(
        &self,
        f: impl std::future::Future<Output = T>,
    ) -> (T, Option<std::collections::BTreeMap<String, u64>>) {
        match &self.storage {
            Storage::Aws(env) => {
                let before = env.calls.snapshot();
                let out = f.await;
                (out, Some(env.calls.since(&before)))
            }
            Storage::Embedded(_) => (f.await, None),
        }
    }

    /// The time the server reads ([`TestApp::clock`]).
    pub fn now(&self) -> chrono::DateTime<chrono::Utc> {
        publinks_domain::clock::Clock::now(&self.clock)
    }

    /// The `public-api` router as its Lambda function serves it behind
    /// CloudFront — `origin`'s guard in front — over this app's stores and
    /// keys, on a loopback port of its own.
    pub async fn spawn_public_api(&self, origin: publinks_http::origin::OriginSecrets) -> Spawned {
        let state = publinks_http::public::PublicState {
            public: self.public.clone(),
            archives: self.archives.clone(),
            secure_cookies: false,
        };
        let router = publinks_pages::router(state, Some(origin));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let base = format!("http://{}", listener.local_addr().unwrap());
        let task = tokio::spawn(async move {
            let service = router.into_make_service_with_connect_info::<std::net::SocketAddr>();
            axum::serve(listener, service).await.expect("server runs");
        });
        Spawned { base, task }
    }

    /// The embedded store's data directory; panics on any other backend.
    pub fn data_dir(&self) -> &std::path::Path {
        match &self.storage {
            Storage::Embedded(dir) => dir.path(),
            Storage::Aws(_) => panic!("only the embedded backend has a data directory"),
        }
    }

    /// Whether the blob store holds `key`: the bucket's or the blob directory's.
    pub async fn blob_exists(&self, key: &str) -> bool {
        use publinks_domain::store::BlobStore;
        match &self.storage {
            Storage::Embedded(dir) => dir.path().join("blobs").join(key).exists(),
            Storage::Aws(env) => env.assets.head(key).await.unwrap().is_some(),
        }
    }

    /// Every record the server's store holds, read raw, one string each
    /// (`table: columns` of every SQLite row, `table: item` of every
    /// DynamoDB item): for tests of what no record may hold, or what must
    /// be gone.
    pub async fn raw_records(&self) -> Vec<String> {
        match &self.storage {
            Storage::Embedded(dir) => {
                // Visitor activity is written behind the requests: all of it first.
                let catalog = self.local.upload_records.as_ref().expect("the embedded store");
                catalog.settle_activity().await.unwrap();
                let db = rusqlite::Connection::open(dir.path().join("catalog.sqlite3")).unwrap();
                let tables: Vec<String> = db
                    .prepare("SELECT name FROM sqlite_master WHERE type = 'table'")
                    .unwrap()
                    .query_map([], |r| r.get(0))
                    .unwrap()
                    .collect::<Result<_, _>>()
                    .unwrap();
                let mut records = Vec::new();
                for table in tables {
                    let mut stmt = db.prepare(&format!("SELECT * FROM \"{table}\"")).unwrap();
                    let columns = stmt.column_count();
                    let mut rows = stmt.query([]).unwrap();
                    while let Some(row) = rows.next().unwrap() {
                        let cells: Vec<String> = (0..columns)
                            .map(|i| match row.get_ref(i).unwrap() {
                                rusqlite::types::ValueRef::Text(t) | rusqlite::types::ValueRef::Blob(t) => {
                                    String::from_utf8_lossy(t).into_owned()
                                }
                                other => format!("{other:?}"),
                            })
                            .collect();
                        records.push(format!("{table}: {}", cells.join(" | ")));
                    }
                }
                records
            }
            Storage::Aws(env) => {
                let c = &env.config;
                let mut records = Vec::new();
                for table in [&c.catalog_table, &c.links_table, &c.activity_table] {
                    let scan = env.clients.dynamodb.scan().table_name(table).consistent_read(true).into_paginator();
                    let pages: Vec<_> = scan.send().collect::<Vec<_>>().await;
                    for page in pages {
                        for item in page.unwrap().items.unwrap_or_default() {
                            records.push(format!("{table}: {item:?}"));
                        }
                    }
                }
                records
            }
        }
    }

    /// Deletes the blob at `key` behind the server's back (as if it had
    /// never been written).
    pub async fn delete_blob(&self, key: &str) {
        use publinks_domain::store::BlobStore;
        match &self.storage {
            Storage::Embedded(dir) => std::fs::remove_file(dir.path().join("blobs").join(key)).unwrap(),
            Storage::Aws(env) => env.assets.delete(key).await.unwrap(),
        }
    }

    /// Writes `bytes` at `key` behind the server's back (a blob damaged in
    /// storage).
    pub async fn overwrite_blob(&self, key: &str, bytes: Vec<u8>) {
        use publinks_domain::store::BlobStore;
        match &self.storage {
            Storage::Embedded(dir) => std::fs::write(dir.path().join("blobs").join(key), bytes).unwrap(),
            Storage::Aws(env) => env.assets.put(key, bytes, "application/octet-stream").await.unwrap(),
        }
    }

    /// A bearer token for `user`.
    pub fn token(&self, user: &User) -> String {
        tokens::issue(&self.keys.jwt, user.id, Duration::from_secs(600))
    }

    pub fn admin(&self) -> String {
        self.token(&self.demo.admin)
    }

    pub fn restricted(&self) -> String {
        self.token(&self.demo.restricted)
    }

    pub fn viewer(&self) -> String {
        self.token(&self.demo.viewer)
    }

    /// A request to `path` (relative to the server) as the holder of `token`.
    pub fn request(&self, method: Method, path: &str, token: &str) -> RequestBuilder {
        self.http.request(method, format!("{}{path}", self.base)).bearer_auth(token)
    }

    /// GET, expecting `status`, returning the JSON body.
    pub async fn get(&self, path: &str, token: &str, status: StatusCode) -> Value {
        expect(self.request(Method::GET, path, token).send().await.unwrap(), status).await
    }

    /// A JSON request, expecting `status`, returning the JSON body (or null).
    pub async fn send(&self, method: Method, path: &str, token: &str, body: Value, status: StatusCode) -> Value {
        expect(self.request(method, path, token).json(&body).send().await.unwrap(), status).await
    }

    /// DELETE, expecting `status`.
    pub async fn delete(&self, path: &str, token: &str, status: StatusCode) -> Value {
        expect(self.request(Method::DELETE, path, token).send().await.unwrap(), status).await
    }

    /// Deletes a folder (202) and waits until the worker has removed what
    /// was under it; returns the finished deletion.
    pub async fn delete_folder_tree(&self, folder: &str, token: &str) -> Value {
        let started = self.delete(&format!("/api/folders/{folder}"), token, StatusCode::ACCEPTED).await;
        assert_eq!(started["folder"]["id"], folder);
        self.deletion_done(folder, token, None).await
    }

    /// Waits until the deletion of `folder` is done and, if given, its
    /// counts are `(folders, files)` (a deletion run twice at once — a job
    /// delivered twice — adds the second run's last counts a moment after
    /// the first says done); returns it.
    pub async fn deletion_done(&self, folder: &str, token: &str, counts: Option<(u64, u64)>) -> Value {
        // moto answers one request at a time: a big tree takes a while there.
        let deadline = std::time::Instant::now() + Duration::from_secs(600);
        loop {
            let now = self.get(&format!("/api/folders/{folder}/deletion"), token, StatusCode::OK).await;
            let counted = (now["folders_removed"].as_u64().unwrap(), now["files_removed"].as_u64().unwrap());
            if now["status"] == "done" && counts.is_none_or(|c| c == counted) {
                return now;
            }
            assert!(std::time::Instant::now() < deadline, "the deletion did not finish: {now}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Runs the whole presigned upload flow for a new file; returns the file.
    pub async fn upload(
        &self,
        token: &str,
        folder: Option<&str>,
        name: &str,
        content_type: &str,
        bytes: &[u8],
    ) -> Value {
        let mut req = serde_json::json!({"name": name, "content_type": content_type, "size": bytes.len()});
        if let Some(f) = folder {
            req["folder_id"] = f.into();
        }
        self.upload_with(token, req, content_type, bytes).await
    }

    /// Uploads a new version of `file_id`; returns the file.
    pub async fn upload_version(&self, token: &str, file_id: &str, content_type: &str, bytes: &[u8]) -> Value {
        let req = serde_json::json!({"file_id": file_id, "content_type": content_type, "size": bytes.len()});
        self.upload_with(token, req, content_type, bytes).await
    }

    async fn upload_with(&self, token: &str, req: Value, content_type: &str, bytes: &[u8]) -> Value {
        let ticket = self.send(Method::POST, "/api/uploads", token, req, StatusCode::CREATED).await;
        let put = self
            .http
            .put(ticket["url"].as_str().unwrap())
            .header("content-type", content_type)
            .body(bytes.to_vec())
            .send()
            .await
            .unwrap();
        assert_eq!(put.status(), StatusCode::OK, "PUT to the upload URL");
        let id = ticket["upload_id"].as_str().unwrap();
        self.send(Method::POST, &format!("/api/uploads/{id}/complete"), token, Value::Null, StatusCode::CREATED).await
    }

    /// A second account (standard plan unless `enterprise`), with its admin's token.
    pub async fn other_account(&self, enterprise: bool) -> (User, String) {
        let plan = if enterprise { Plan::Enterprise } else { Plan::Standard };
        let admin =
            NewUser { id: None, name: "Olga Other".into(), email: "olga@other.example".into(), role: Role::Admin };
        let (_, user) = self.library.create_account("Other Co", plan, false, admin).await.unwrap();
        let token = self.token(&user);
        (user, token)
    }

    /// Creates a user with `role` in the demo account; returns it and its token.
    pub async fn user_with_role(&self, role: &str) -> (Value, String) {
        let body = serde_json::json!({"name": "New Person", "email": "new@demo.example", "role": role});
        let user = self.send(Method::POST, "/api/users", &self.admin(), body, StatusCode::CREATED).await;
        let id = user["id"].as_str().unwrap().parse().unwrap();
        let token = tokens::issue(&self.keys.jwt, id, Duration::from_secs(600));
        (user, token)
    }

    /// The id of the folder at `path` (names from the top, e.g. `["Campaigns", "Spring 2026"]`).
    pub async fn folder_id(&self, path: &[&str]) -> String {
        let mut current = "root".to_string();
        for name in path {
            let list =
                self.get(&format!("/api/folders/{current}/folders?limit=200"), &self.admin(), StatusCode::OK).await;
            current = list["items"]
                .as_array()
                .unwrap()
                .iter()
                .find(|f| f["name"] == *name)
                .unwrap_or_else(|| panic!("no folder {name}"))["id"]
                .as_str()
                .unwrap()
                .to_string();
        }
        current
    }

    /// A file record of the demo admin's in `folder` (its bytes never
    /// stored), for tests that write many files straight to the catalog
    /// because the upload round trips are not what they test.
    pub fn file_record(
        &self,
        folder: publinks_domain::ids::FolderId,
        name: &str,
        (content_type, size): (&str, u64),
        at: chrono::DateTime<chrono::Utc>,
    ) -> publinks_domain::model::File {
        use publinks_domain::model::{File, FileVersion};
        let id = publinks_domain::ids::FileId::new();
        File {
            id,
            account_id: self.demo.account.id,
            folder_id: Some(folder),
            name: name.into(),
            owner_id: self.demo.admin.id,
            tags: Vec::new(),
            ai_tags: Vec::new(),
            custom_coordinates: Vec::new(),
            custom_metadata: Default::default(),
            comments: Vec::new(),
            private: false,
            published: true,
            current: FileVersion {
                file_id: id,
                number: 1,
                blob_key: format!("accounts/{}/uploads/{}", self.demo.account.id, uuid::Uuid::new_v4()),
                content_type: content_type.into(),
                size,
                crc32: 0,
                sha256: "00".repeat(32),
                e_tag: None,
                width: None,
                height: None,
                embedded_metadata: Default::default(),
                uploaded_by: self.demo.admin.id,
                uploaded_at: at,
            },
            created_at: at,
            updated_at: at,
            revision: 0,
        }
    }

    /// The id of the file named `name` in folder `folder` (`root` for the top).
    pub async fn file_id(&self, folder: &str, name: &str) -> String {
        let list = self.get(&format!("/api/folders/{folder}/files?limit=200"), &self.admin(), StatusCode::OK).await;
        list["items"].as_array().unwrap().iter().find(|f| f["name"] == name).unwrap_or_else(|| panic!("no file {name}"))
            ["id"]
            .as_str()
            .unwrap()
            .to_string()
    }
}

/// How many calls [`TestApp::calls_of`] counted in all (0 when it counted none).
pub fn total_calls(calls: &Option<std::collections::BTreeMap<String, u64>>) -> u64 {
    calls.as_ref().map_or(0, |c| c.values().sum())
}

/// Asserts the status and returns the JSON body (null when empty). Error
/// responses must carry the JSON error shape.
pub async fn expect(res: Response, status: StatusCode) -> Value {
    let got = res.status();
    let url = res.url().clone();
    let text = res.text().await.unwrap();
    assert_eq!(got, status, "{url}: {text}");
    let body: Value = if text.is_empty() { Value::Null } else { serde_json::from_str(&text).expect("a JSON body") };
    if got.is_client_error() || got.is_server_error() {
        assert!(body["error"]["code"].is_string(), "an error body has a code: {text}");
        assert!(body["error"]["message"].is_string(), "an error body has a message: {text}");
    }
    body
}

/// The rendition at `url` (a visitor's `/thumbnail` or `/preview`) once it is
/// made: asked again while it answers 202 (the job has not run yet), at
/// most 60 seconds. Checks it is WebP, kept only privately, and decodes it.
pub async fn rendition(http: &reqwest::Client, url: &str, session: Option<&str>) -> image::RgbaImage {
    for _ in 0..600 {
        let mut request = http.get(url);
        if let Some(session) = session {
            request = request.bearer_auth(session);
        }
        let res = request.send().await.unwrap();
        if res.status() == StatusCode::ACCEPTED {
            assert_eq!(res.headers()["content-type"], "image/svg+xml");
            assert_eq!(res.headers()["cache-control"], "no-store", "a placeholder is never kept");
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        }
        assert_eq!(res.status(), StatusCode::OK, "{url}");
        assert_eq!(res.headers()["content-type"], "image/webp");
        assert_eq!(res.headers()["cache-control"], "private, max-age=300");
        let bytes = res.bytes().await.unwrap();
        let decoded = webp::Decoder::new(&bytes).decode().expect("a WebP image");
        let (w, h) = (decoded.width(), decoded.height());
        let rgba = if decoded.is_alpha() {
            decoded.to_vec()
        } else {
            decoded.chunks(3).flat_map(|p| [p[0], p[1], p[2], 255]).collect()
        };
        return image::RgbaImage::from_raw(w, h, rgba).unwrap();
    }
    panic!("{url} was not made within a minute");
}

/// A valid mono 16-bit PCM WAV of `millis` milliseconds at 8 kHz (a 440 Hz
/// tone), made here so that playback tests need no file from elsewhere.
pub fn tiny_wav(millis: u32) -> Vec<u8> {
    let rate = 8_000u32;
    let samples = rate * millis / 1000;
    let data_len = samples * 2;
    let mut wav = Vec::with_capacity(44 + data_len as usize);
    wav.extend_from_slice(b"RIFF");
    wav.extend_from_slice(&(36 + data_len).to_le_bytes());
    wav.extend_from_slice(b"WAVEfmt ");
    wav.extend_from_slice(&16u32.to_le_bytes());
    wav.extend_from_slice(&1u16.to_le_bytes()); // PCM
    wav.extend_from_slice(&1u16.to_le_bytes()); // mono
    wav.extend_from_slice(&rate.to_le_bytes());
    wav.extend_from_slice(&(rate * 2).to_le_bytes()); // bytes per second
    wav.extend_from_slice(&2u16.to_le_bytes()); // block align
    wav.extend_from_slice(&16u16.to_le_bytes()); // bits per sample
    wav.extend_from_slice(b"data");
    wav.extend_from_slice(&data_len.to_le_bytes());
    for i in 0..samples {
        let t = i as f64 / rate as f64;
        let sample = ((t * 440.0 * std::f64::consts::TAU).sin() * 8_000.0) as i16;
        wav.extend_from_slice(&sample.to_le_bytes());
    }
    wav
}

/// The names of a JSON listing's files, largest first: the order a page
/// sorted by size, descending, must show.
pub fn names_largest_first(listing: &serde_json::Value) -> Vec<String> {
    let mut sized: Vec<(u64, String)> = listing["files"]
        .as_array()
        .expect("a listing has files")
        .iter()
        .map(|f| (f["size"].as_u64().unwrap(), f["name"].as_str().unwrap().to_string()))
        .collect();
    sized.sort_by_key(|(size, _)| std::cmp::Reverse(*size));
    sized.into_iter().map(|(_, name)| name).collect()
}

/// What a webhook receiver got: each request's headers (lower-cased names) and body.
pub type Received = Arc<std::sync::Mutex<Vec<(std::collections::BTreeMap<String, String>, String)>>>;

/// A webhook receiver on a loopback port (which the local server may
/// reach): answers 500 to its first `failures` requests, then 200. Returns
/// its URL and what it received.
pub async fn webhook_receiver(failures: usize) -> (String, Received, tokio::task::JoinHandle<()>) {
    let received: Received = Arc::default();
    let log = received.clone();
    let hook = move |headers: axum::http::HeaderMap, body: String| {
        let log = log.clone();
        async move {
            let mut log = log.lock().unwrap();
            let headers =
                headers.iter().map(|(k, v)| (k.as_str().to_string(), v.to_str().unwrap_or("").to_string())).collect();
            log.push((headers, body));
            if log.len() <= failures { StatusCode::INTERNAL_SERVER_ERROR } else { StatusCode::OK }
        }
    };
    let router = axum::Router::new().route("/hook", axum::routing::post(hook));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let server = tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    (url, received, server)
}

#[cfg(test)]
mod tests {
    use super::Backend;

    #[test]
    fn the_backend_is_embedded_unless_aws_is_asked_for_and_typos_are_refused() {
        assert_eq!(Backend::parse(""), Some(Backend::Embedded));
        assert_eq!(Backend::parse("embedded"), Some(Backend::Embedded));
        assert_eq!(Backend::parse(" aws\n"), Some(Backend::Aws));
        assert_eq!(Backend::parse("AWS-ish"), None);
        assert_eq!(Backend::parse("sqlite"), None);
    }
}
