//! The AWS backends of the conformance suite, and the tests of what only the
//! AWS adapters have (multipart uploads, the secret, presigned S3 URLs, the
//! item layout under races, TTL attributes and limit counters), all against an
//! AWS-compatible server (moto) on loopback that `scripts/test.sh` starts.
//!
//! Every call of [`environment`] (the tests crate's AWS harness,
//! `tests/src/aws.rs`) creates its own tables, buckets and secret under a
//! fresh name prefix: tests never share storage.

use super::suite::top_target_in;
use super::{ArchiveBackend, Backend, LinkBackend, PlaceAsStored, VisitorBackend};
use aws_sdk_dynamodb::types::{BillingMode, StreamViewType};
use chrono::{Duration, TimeZone, Utc};
use publinks_aws::{AwsConfig, DynamoCatalog, SecretsError, load_signing_keys, parse_signing_keys};
use publinks_domain::ids::*;
use publinks_domain::model::*;
use publinks_domain::store::*;
use publinks_e2e::aws::{AwsEnv, endpoint, environment};
use publinks_embedded::EmbeddedCatalog;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

/// The conformance suite's AWS backend: a fresh table and assets bucket.
pub async fn backend() -> Backend {
    let env = environment().await;
    Backend {
        catalog: Arc::new(env.catalog),
        blobs: Arc::new(env.assets.clone()),
        uploads: Arc::new(env.assets),
        keep: Vec::new(),
    }
}

/// The archive suite's AWS backend: every store, wired as the functions wire them.
pub async fn archive_backend() -> ArchiveBackend {
    let env = environment().await;
    ArchiveBackend { stores: env.stores(), blob_dir: None, keep: vec![Box::new(env)] }
}

/// The link suite's AWS backend: fresh links and activity tables.
pub async fn link_backend() -> LinkBackend {
    let env = environment().await;
    LinkBackend { links: Arc::new(env.links), catalog: Arc::new(env.catalog), keep: Vec::new() }
}

/// The visitor suite's AWS backend: a fresh activity table.
pub async fn visitor_backend() -> VisitorBackend {
    VisitorBackend { visitors: Arc::new(environment().await.visitors), keep: Vec::new() }
}

// --- the storage the template declares -------------------------------------

#[tokio::test]
async fn the_harness_builds_the_storage_the_template_declares() {
    let env = environment().await;
    let ddb = &env.clients.dynamodb;
    for (table, indexes, stream) in [
        (&env.config.catalog_table, &["gsi1", "gsi2"][..], true),
        (&env.config.links_table, &["gsi1", "gsi2", "gsi3"][..], true),
        (&env.config.activity_table, &["gsi1", "gsi2", "gsi3"][..], false),
    ] {
        let described = ddb.describe_table().table_name(table).send().await.unwrap().table.unwrap();
        let mut names: Vec<_> =
            described.global_secondary_indexes().iter().map(|g| g.index_name().unwrap().to_string()).collect();
        names.sort();
        assert_eq!(names, indexes, "{table}");
        match described.stream_specification() {
            Some(s) if s.stream_enabled() => {
                assert!(stream, "{table} has no stream in the template");
                assert_eq!(s.stream_view_type(), Some(&StreamViewType::NewAndOldImages), "{table}");
            }
            _ => assert!(!stream, "{table} should have a stream"),
        }
        assert_eq!(
            described.billing_mode_summary().and_then(|b| b.billing_mode()),
            Some(&BillingMode::PayPerRequest),
            "{table}"
        );
        let ttl = ddb.describe_time_to_live().table_name(table).send().await.unwrap();
        assert_eq!(ttl.time_to_live_description().unwrap().attribute_name(), Some("ttl"), "{table}");
    }

    let rules = env
        .clients
        .s3
        .get_bucket_lifecycle_configuration()
        .bucket(&env.config.downloads_bucket)
        .send()
        .await
        .unwrap()
        .rules
        .unwrap_or_default();
    assert!(
        rules.iter().any(|r| r.expiration().and_then(|e| e.days()).is_some_and(|d| d > 0)),
        "generated ZIPs expire: {rules:?}"
    );
    load_signing_keys(&env.clients.secrets, env.secret_id()).await.expect("the generated secret holds keys");
}

#[tokio::test]
async fn the_config_read_from_the_environment_reaches_the_storage() {
    let env = environment().await;
    // What a Lambda function does at start-up, with AWS_ENDPOINT_URL pointing at moto
    // (credentials and region come from the SDK's usual chain: scripts/test.sh sets them).
    let vars = HashMap::from([
        ("PUBLINKS_CATALOG_TABLE", env.config.catalog_table.clone()),
        ("PUBLINKS_LINKS_TABLE", env.config.links_table.clone()),
        ("PUBLINKS_ACTIVITY_TABLE", env.config.activity_table.clone()),
        ("PUBLINKS_ASSETS_BUCKET", env.config.assets_bucket.clone()),
        ("PUBLINKS_DOWNLOADS_BUCKET", env.config.downloads_bucket.clone()),
        ("PUBLINKS_SECRET_ID", env.secret_id().to_string()),
        ("AWS_ENDPOINT_URL", endpoint()),
    ]);
    let config = AwsConfig::from_lookup(|k| vars.get(k).cloned()).unwrap();
    assert_eq!(config.endpoint_url.as_deref(), Some(endpoint().as_str()));
    let clients = config.clients().await;
    let account = account_named("via env", Utc::now());
    config.catalog(&clients.dynamodb).insert_account(&account).await.unwrap();
    assert_eq!(env.catalog.account(account.id).await.unwrap(), Some(account));
    let state = ThrottleState { attempts: 1, ..Default::default() };
    config.visitors(&clients.dynamodb).put_throttle_state("k", &state, Utc::now()).await.unwrap();
    assert_eq!(env.visitors.throttle_state("k").await.unwrap().map(|s| s.attempts), Some(1));
    let entry = publinks_domain::links::entry(
        &link_of(AccountId::new(), Target::File(FileId::new()), None),
        AuditActor::System { reason: SystemReason::Expired },
        AuditAction::Deleted,
        LinkChanges::default(),
        Utc::now(),
    );
    assert!(config.links(&clients.dynamodb).append_audit(&entry).await.unwrap());
    assert!(!env.links.append_audit(&entry).await.unwrap(), "the same table");
    config.downloads(&clients).put("zips/a.zip", b"PK".to_vec(), "application/zip").await.unwrap();
    assert_eq!(env.downloads.head("zips/a.zip").await.unwrap().map(|i| i.size), Some(2));
    assert_eq!(env.assets.head("zips/a.zip").await.unwrap(), None, "the two buckets are distinct");
}

// --- signing keys -------------------------------------------------------------

/// What public-api does at its cold start, on the secrets the template
/// generates: its own key and the origin secret, without the dashboard's
/// secret (the template does not name it to public-api, nor lets it read it).
#[tokio::test]
async fn public_api_starts_on_its_own_secrets_and_only_cloudfront_gets_through() {
    use publinks_aws::runtime::{AwsRuntime, StartupError};
    use publinks_http::origin::ORIGIN_HEADER;
    let env = environment().await;
    let as_public_api = AwsConfig { secret_id: None, ..env.config.clone() };
    let runtime = AwsRuntime::new(as_public_api.clone(), Some("https://share.example".into())).await;
    let router = public_api::router(&runtime).await.expect("public-api starts without the dashboard's secret");
    let sm = &env.clients.secrets;
    let origin_id = env.config.origin_secret_id.as_deref().unwrap();
    let text = sm.get_secret_value().secret_id(origin_id).send().await.unwrap().secret_string.unwrap();
    let current = serde_json::from_str::<serde_json::Value>(&text).unwrap()["current"].as_str().unwrap().to_string();
    assert!(current.len() >= 64 && runtime.origin_secret_values().await.unwrap() == [current.clone()]);

    let visitor_id = env.config.visitor_secret_id.as_deref().unwrap();
    let visitor = load_signing_keys(sm, visitor_id).await.unwrap().visitor_sessions;
    let dashboard = env.signing_keys().await;
    assert!(visitor != dashboard.visitor_sessions && visitor != dashboard.link_tokens && visitor != dashboard.jwt);
    let err = runtime.links().await.err().expect("public-api's configuration names no dashboard secret");
    assert!(matches!(err, StartupError::SecretId("PUBLINKS_SECRET_ID")), "{err}");
    let no_origin = AwsConfig { origin_secret_id: None, ..as_public_api };
    let no_origin = AwsRuntime::new(no_origin, None).await;
    let err = no_origin.origin_secret_values().await.err().unwrap();
    assert!(matches!(err, StartupError::SecretId("PUBLINKS_ORIGIN_SECRET_ID")), "{err}");
    assert!(public_api::router(&no_origin).await.is_err());

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let server = tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    let http = reqwest::Client::new();
    let url = format!("{base}/s/no-such-link/api");
    assert_eq!(http.get(&url).send().await.unwrap().status(), 403);
    assert_eq!(http.get(&url).header(ORIGIN_HEADER, "forged").send().await.unwrap().status(), 403);
    let through_cloudfront = http.get(&url).header(ORIGIN_HEADER, &current).send().await.unwrap();
    assert_eq!(through_cloudfront.status(), 404, "past the guard, the link is looked up");
    server.abort();
}

#[tokio::test]
async fn signing_keys_come_from_the_secret_once_per_process() {
    let env = environment().await;
    let sm = &env.clients.secrets;
    let first = load_signing_keys(sm, env.secret_id()).await.unwrap();

    // Later changes are not seen by this process: the keys were read once.
    let other = publinks_domain::signing::SigningKeys::generate();
    let other_json = serde_json::to_string(&other).unwrap();
    sm.put_secret_value().secret_id(env.secret_id()).secret_string(&other_json).send().await.unwrap();
    let again = load_signing_keys(sm, env.secret_id()).await.unwrap();
    assert_eq!(again.jwt, first.jwt);

    // A secret in the keys.json shape is read as it is.
    let name = format!("{}-keys-json", env.secret_id());
    sm.create_secret().name(&name).secret_string(&other_json).send().await.unwrap();
    let read = load_signing_keys(sm, &name).await.unwrap();
    assert_eq!(serde_json::to_value(&read).unwrap(), serde_json::to_value(&other).unwrap());

    // Failures are errors that name the secret, and are not cached.
    let missing = format!("{}-missing", env.secret_id());
    let err = load_signing_keys(sm, &missing).await.unwrap_err();
    assert!(matches!(&err, SecretsError::Fetch { secret_id, .. } if *secret_id == missing), "{err}");
    sm.create_secret().name(&missing).secret_string("{\"password\": \"hunter2\"}").send().await.unwrap();
    let err = load_signing_keys(sm, &missing).await.unwrap_err();
    assert!(matches!(err, SecretsError::Invalid { .. }), "{err}");
    assert!(parse_signing_keys(&other_json).is_ok());
}

// --- S3 -------------------------------------------------------------------------

#[tokio::test]
async fn archives_are_stored_as_zips_and_copies_read_the_assets_bucket() {
    let env = environment().await;
    let s3 = &env.downloads;
    env.assets.put("assets/a.bin", vec![7u8; 6 * 1024 * 1024], "video/mp4").await.unwrap();
    let upload = s3.start_multipart("zips/whole.zip").await.unwrap();
    let source = env.assets.head("assets/a.bin").await.unwrap().unwrap().e_tag;
    let p1 = s3.copy_part(&upload, 1, "assets/a.bin", 0..(5 * 1024 * 1024 + 10), Some(&source)).await.unwrap();
    let p2 = s3.upload_part(&upload, 2, b"tail".to_vec()).await.unwrap();
    s3.complete_multipart(&upload, &[p1, p2]).await.unwrap();
    let head = s3.client().head_object().bucket(s3.bucket()).key("zips/whole.zip").send().await.unwrap();
    assert_eq!(head.content_type(), Some("application/zip"), "the content type set at creation sticks");
    assert_eq!(head.content_length(), Some(5 * 1024 * 1024 + 10 + 4));
}

#[tokio::test]
async fn part_urls_sign_their_length_and_downloads_name_the_file() {
    let env = environment().await;
    let blobs = &env.assets;
    let ttl = std::time::Duration::from_secs(60);
    let upload = blobs.start_upload("a/b.png", "image/png").await.unwrap();
    let put = blobs.presign_part(&upload, 1, 3, ttl).await.unwrap();
    let query: HashMap<String, String> =
        url_query(&put).into_iter().map(|(k, v)| (k.to_ascii_lowercase(), v)).collect();
    assert!(query["x-amz-signedheaders"].split(';').any(|h| h == "content-length"), "{put}");
    assert_eq!(query["x-amz-expires"], "60");
    assert_eq!((query["partnumber"].as_str(), query["uploadid"].as_str()), ("1", upload.upload_id.as_str()));
    assert!(put.starts_with(&format!("{}/{}/a/b.png?", endpoint(), blobs.bucket())), "path style: {put}");

    let http = reqwest::Client::new();
    let res = http.put(&put).header("content-type", "image/png").body(b"png".to_vec()).send().await.unwrap();
    assert!(res.status().is_success(), "{}", res.status());
    let parts = blobs.list_parts(&upload).await.unwrap();
    blobs.complete_upload(&upload, &parts).await.unwrap();
    let name = "r\u{e9}sum\u{e9} \"final\".pdf";
    let get = blobs.presign_get("a/b.png", name, ttl).await.unwrap();
    let res = http.get(&get).send().await.unwrap();
    assert!(res.status().is_success(), "{}", res.status());
    assert_eq!(
        res.headers()["content-disposition"].to_str().unwrap(),
        publinks_domain::store::attachment_disposition(name)
    );
    assert_eq!(res.headers()["content-type"].to_str().unwrap(), "image/png");

    // Keys the domain could not have made are refused as in the embedded store.
    for bad in ["../etc/passwd", "a//b", ""] {
        assert_eq!(blobs.put(bad, vec![1], "text/plain").await, Err(StoreError::NotFound("blob")));
        assert_eq!(blobs.head(bad).await, Err(StoreError::NotFound("blob")));
        assert!(matches!(blobs.presign_get(bad, "x", ttl).await, Err(StoreError::NotFound("blob"))));
    }
}

fn url_query(url: &str) -> Vec<(String, String)> {
    reqwest::Url::parse(url).expect("a URL").query_pairs().map(|(k, v)| (k.into_owned(), v.into_owned())).collect()
}

// --- the catalog on DynamoDB ------------------------------------------------

fn account_named(name: &str, created_at: chrono::DateTime<Utc>) -> Account {
    Account {
        id: AccountId::new(),
        name: name.into(),
        plan: Plan::Enterprise,
        drafts_enabled: false,
        link_limit: DEFAULT_LINK_LIMIT,
        link_defaults: LinkDefaults::default(),
        branding: Default::default(),
        webhook_events: Vec::new(),
        created_at,
        revision: 0,
    }
}

fn folder_named(account: AccountId, parent: Option<FolderId>, name: &str) -> Folder {
    let now = Utc::now();
    Folder {
        id: FolderId::new(),
        account_id: account,
        parent_id: parent,
        name: name.into(),
        created_at: now,
        updated_at: now,
        revision: 0,
    }
}

fn version_of(file: FileId, number: u32, size: u64) -> FileVersion {
    FileVersion {
        file_id: file,
        number,
        blob_key: format!("accounts/x/files/{file}/v{number}"),
        content_type: "image/png".into(),
        size,
        crc32: number,
        sha256: "ab".repeat(32),
        e_tag: Some(format!("\"{number}\"")),
        width: None,
        height: None,
        embedded_metadata: BTreeMap::new(),
        uploaded_by: UserId(uuid::Uuid::nil()),
        uploaded_at: Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap(),
    }
}

fn file_named(account: AccountId, folder: Option<FolderId>, name: &str) -> File {
    let id = FileId::new();
    let at = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
    File {
        id,
        account_id: account,
        folder_id: folder,
        name: name.into(),
        owner_id: UserId(uuid::Uuid::nil()),
        tags: vec![],
        ai_tags: vec![],
        custom_coordinates: vec![],
        custom_metadata: BTreeMap::new(),
        comments: vec![],
        private: false,
        published: true,
        current: version_of(id, 1, 10),
        created_at: at,
        updated_at: at,
        revision: 0,
    }
}

/// Every page of a list at one limit, as text: items and cursors.
async fn walk<T: std::fmt::Debug, F, Fut>(limit: u32, mut read: F) -> Vec<String>
where
    F: FnMut(PageRequest) -> Fut,
    Fut: std::future::Future<Output = StoreResult<Page<T>>>,
{
    let mut out = Vec::new();
    let mut request = PageRequest::first(limit);
    for _ in 0..100 {
        let page = read(request.clone()).await;
        out.push(format!("{page:?}"));
        match page {
            Ok(Page { next: Some(c), .. }) => request.cursor = Some(c),
            _ => break,
        }
    }
    out
}

/// Fixed records, so that two stores given the same script hold the same ids.
struct Fixture {
    accounts: Vec<Account>,
    account: AccountId,
    dir: Folder,
    /// Where the files go: beside `dir`, since a folder and a file in one
    /// folder may not share a name.
    files_dir: Folder,
    folders: Vec<Folder>,
    files: Vec<File>,
    users: Vec<User>,
    collection: Collection,
    items: Vec<CollectionItem>,
    /// Folders the script inserts after renames and deletes.
    later: Vec<Folder>,
}

fn fixture() -> Fixture {
    let t0 = Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0).unwrap();
    let tie = t0 + Duration::microseconds(5);
    let accounts: Vec<_> = [t0 + Duration::days(2), tie, tie, t0, tie + Duration::microseconds(1)]
        .into_iter()
        .enumerate()
        .map(|(i, at)| account_named(&format!("a{i}"), at))
        .collect();
    let account = accounts[0].id;
    let dir = folder_named(account, None, "dir");
    let files_dir = folder_named(account, None, "files");
    // Names that tell a naive "name#id" sort key from the (name, id) order:
    // prefixes, characters below '#', case, accents, control characters.
    let names = ["a", "A", "a b", "a#", "a!", "ab", "a\u{1}", "", " ", "\u{e9}t\u{e9}", "Zeta", "a-b", "a.b"];
    // "A" after "a" is refused the same way by both stores, naming the same holder.
    let files = names.iter().map(|n| file_named(account, Some(files_dir.id), n)).collect();
    let folder_names = ["a", "a b", "a#", "a!", "ab", "a\u{2}", "\u{c9}t\u{e9}", "zz", "A.b", "a-"];
    let folders = folder_names.iter().map(|n| folder_named(account, Some(dir.id), n)).collect();
    let users = (0..5)
        .map(|i| User {
            id: UserId::new(),
            account_id: account,
            name: format!("u{i}"),
            email: format!("u{i}@example.com"),
            role: Role::ViewOnly,
            created_at: if i % 2 == 0 { tie } else { t0 + Duration::seconds(i) },
        })
        .collect();
    let collection = Collection {
        id: CollectionId::new(),
        account_id: account,
        name: "c".into(),
        created_by: UserId(uuid::Uuid::nil()),
        created_at: t0,
        updated_at: t0,
        revision: 0,
    };
    let items = (0..6)
        .map(|i| CollectionItem {
            collection_id: collection.id,
            file_id: FileId::new(),
            added_at: if i < 3 { tie } else { t0 + Duration::seconds(i) },
        })
        .collect();
    let later = vec![folder_named(account, Some(dir.id), "a"), folder_named(account, Some(dir.id), "AB")];
    Fixture { accounts, account, dir, files_dir, folders, files, users, collection, items, later }
}

/// The same operations on any catalog, written down as text.
async fn transcript(c: &dyn Catalog, fx: &Fixture) -> Vec<String> {
    let mut out = Vec::new();
    for a in &fx.accounts {
        out.push(format!("{:?}", c.insert_account(a).await));
    }
    for u in &fx.users {
        out.push(format!("{:?}", c.insert_user(u).await));
    }
    out.push(format!("{:?}", c.insert_folder_placed(&fx.dir).await));
    out.push(format!("{:?}", c.insert_folder_placed(&fx.files_dir).await));
    for f in &fx.folders {
        out.push(format!("{:?}", c.insert_folder_placed(f).await));
    }
    for f in &fx.files {
        out.push(format!("{:?}", c.insert_file_placed(f).await));
    }
    out.push(format!("{:?}", c.insert_collection(&fx.collection).await));
    for i in &fx.items {
        out.push(format!("{:?}", c.add_to_collection(i).await));
    }

    let (acc, dir, coll) = (fx.account, Some(fx.dir.id), fx.collection.id);
    let files_dir = Some(fx.files_dir.id);
    for limit in [0, 1, 2, 3, 5, 200] {
        out.push(format!("limit {limit}"));
        out.extend(walk(limit, |p| async move { c.list_accounts(&p).await }).await);
        out.extend(walk(limit, |p| async move { c.list_users(acc, &p).await }).await);
        out.extend(walk(limit, |p| async move { c.subfolders(acc, dir, &p).await }).await);
        out.extend(walk(limit, |p| async move { c.files_in_folder(acc, files_dir, &p).await }).await);
        out.extend(walk(limit, |p| async move { c.collection_items(coll, &p).await }).await);
    }

    // Cursors: after an item deleted meanwhile, from another list, made up.
    let first = c.files_in_folder(acc, files_dir, &PageRequest::first(3)).await.unwrap();
    let cursor = first.next.clone().unwrap();
    c.delete_file(first.items[2].id).await.unwrap();
    let after = PageRequest { cursor: Some(cursor.clone()), limit: 3 };
    out.push(format!("{:?}", c.files_in_folder(acc, files_dir, &after).await));
    out.push(format!("{:?}", c.subfolders(acc, dir, &after).await));
    for made_up in
        [Cursor::encode(&("a", "not-an-id")), Cursor::encode(&("", "")), Cursor::encode(&("\u{10ffff}", "z"))]
    {
        let req = PageRequest { cursor: Some(made_up), limit: 4 };
        out.push(format!("{:?}", c.files_in_folder(acc, files_dir, &req).await));
        out.push(format!("{:?}", c.collection_items(coll, &req).await));
    }
    for bad in [Cursor("e30".into()), Cursor(Cursor::encode(&[1, 2]).0), Cursor("%%".into())] {
        let req = PageRequest { cursor: Some(bad), limit: 4 };
        out.push(format!("{:?}", c.list_users(acc, &req).await));
    }

    // Files: metadata edits, new versions, a current version that is stored already.
    let ab = fx.files.iter().find(|f| f.name == "ab").unwrap();
    let mut f = c.file(ab.id).await.unwrap().unwrap();
    f.tags = vec!["edited".into()];
    f = c.replace_file(&f).await.unwrap();
    f.current = version_of(f.id, 2, 20);
    f = c.replace_file(&f).await.unwrap();
    f.current = version_of(f.id, 1, 999);
    let rolled_back = c.replace_file(&f).await;
    out.push(format!("{rolled_back:?}"));
    out.push(format!("{:?}", c.versions(f.id).await));
    out.push(format!("{:?}", c.replace_file(&f).await));
    let zeta = fx.files.iter().find(|f| f.name == "Zeta").unwrap();
    let mut moved = c.file(zeta.id).await.unwrap().unwrap();
    moved.folder_id = None;
    moved.name = "Moved".into();
    out.push(format!("{:?}", c.replace_file(&moved).await));
    out.push(format!("{:?}", c.files_in_folder(acc, None, &PageRequest::first(10)).await));

    // Folders: renames into a clash, case-only renames, moves, deletes freeing names.
    let mut renamed = c.folder(fx.folders[0].id).await.unwrap().unwrap();
    renamed.name = "AB".into();
    out.push(format!("{:?}", c.replace_folder(&renamed).await));
    renamed.name = "A".into();
    let renamed = c.replace_folder(&renamed).await;
    out.push(format!("{renamed:?}"));
    let mut renamed = renamed.unwrap();
    renamed.parent_id = None;
    renamed.name = "dir".into();
    out.push(format!("{:?}", c.replace_folder(&renamed).await));
    renamed.name = "top".into();
    out.push(format!("{:?}", c.replace_folder(&renamed).await));
    out.push(format!("{:?}", c.insert_folder_placed(&fx.later[0]).await));
    out.push(format!("{:?}", c.delete_folder(fx.folders[4].id).await));
    out.push(format!("{:?}", c.delete_folder(fx.folders[4].id).await));
    out.push(format!("{:?}", c.insert_folder_placed(&fx.later[1]).await));
    out.extend(walk(4, |p| async move { c.subfolders(acc, dir, &p).await }).await);
    out.extend(walk(4, |p| async move { c.subfolders(acc, None, &p).await }).await);

    // Collections and users: removals and deletes.
    out.push(format!("{:?}", c.remove_from_collection(coll, fx.items[1].file_id).await));
    out.push(format!("{:?}", c.collections_of_file(fx.items[2].file_id).await));
    out.push(format!("{:?}", c.delete_collection(coll).await));
    out.push(format!("{:?}", c.collections_of_file(fx.items[2].file_id).await));
    out.push(format!("{:?}", c.delete_user(fx.users[0].id).await));
    out.extend(walk(2, |p| async move { c.list_users(acc, &p).await }).await);
    out
}

#[tokio::test]
async fn the_aws_catalog_answers_exactly_like_the_embedded_one() {
    let env = environment().await;
    let dir = tempfile::tempdir().unwrap();
    let embedded = EmbeddedCatalog::open(&dir.path().join("c.sqlite3")).unwrap();
    let fx = fixture();
    let expected = transcript(&embedded, &fx).await;
    let got = transcript(&env.catalog, &fx).await;
    for (i, (e, g)) in expected.iter().zip(&got).enumerate() {
        assert_eq!(g, e, "step {i} differs (left: DynamoDB, right: embedded)");
    }
    assert_eq!(got.len(), expected.len());
    // The script reaches the paths it is meant to compare.
    for expected_somewhere in ["NameTaken", "InvalidCursor", "Conflict(\"file\")", "next: Some"] {
        assert!(got.iter().any(|line| line.contains(expected_somewhere)), "no step shows {expected_somewhere}");
    }
}

#[tokio::test]
async fn racing_renames_to_one_name_let_one_win_and_free_the_old_names() {
    let env = environment().await;
    let catalog = Arc::new(env.catalog);
    let acc = AccountId::new();
    let mut folders = Vec::new();
    for i in 0..20 {
        let f = folder_named(acc, None, &format!("f{i}"));
        catalog.insert_folder_placed(&f).await.unwrap();
        folders.push(f);
    }
    let tasks: Vec<_> = folders
        .iter()
        .map(|f| {
            let (c, mut f) = (catalog.clone(), f.clone());
            f.name = "Contested".into();
            tokio::spawn(async move { c.replace_folder(&f).await })
        })
        .collect();
    let mut winners = Vec::new();
    for t in tasks {
        match t.await.unwrap() {
            Ok(f) => winners.push(f),
            Err(StoreError::NameTaken { .. }) => {}
            Err(e) => panic!("unexpected {e:?}"),
        }
    }
    assert_eq!(winners.len(), 1);
    let listed = catalog.subfolders(acc, None, &PageRequest::first(100)).await.unwrap().items;
    assert_eq!(listed.len(), 20);
    assert_eq!(listed.iter().filter(|f| f.name == "Contested").count(), 1);
    let old = winners[0].clone();
    let freed = folders.iter().find(|f| f.id == old.id).unwrap();
    catalog.insert_folder_placed(&folder_named(acc, None, &freed.name)).await.expect("the winner's old name is free");
    for f in folders.iter().filter(|f| f.id != old.id) {
        let again = folder_named(acc, None, &f.name.to_uppercase());
        assert_eq!(
            catalog.insert_folder_placed(&again).await,
            Err(StoreError::NameTaken { holder: Target::Folder(f.id) })
        );
    }
    catalog.delete_folder(old.id).await.unwrap();
    catalog.insert_folder_placed(&folder_named(acc, None, "contested")).await.expect("a deleted folder frees its name");
}

#[tokio::test]
async fn deletes_span_more_than_one_transaction() {
    let env = environment().await;
    let c = &env.catalog;
    // DynamoDB takes at most 100 writes per transaction: a user with 100
    // grants and a collection with 100 members need two each. (Files share the
    // code; their versions are written by transactions, which moto makes slow
    // on a long table history, so a few suffice here.)
    let mut f = file_named(AccountId::new(), None, "versions.png");
    c.insert_file_placed(&f).await.unwrap();
    for n in 2..=5 {
        f.current = version_of(f.id, n, n as u64);
        f = c.replace_file(&f).await.unwrap();
    }
    assert_eq!(c.versions(f.id).await.unwrap().len(), 5);
    c.delete_file(f.id).await.unwrap();
    assert_eq!(c.file(f.id).await.unwrap(), None);
    assert!(c.versions(f.id).await.unwrap().is_empty());

    let user = User {
        id: UserId::new(),
        account_id: AccountId::new(),
        name: "g".into(),
        email: "g@example.com".into(),
        role: Role::Restricted,
        created_at: Utc::now(),
    };
    c.insert_user(&user).await.unwrap();
    for _ in 0..100 {
        let grant = Grant {
            account_id: user.account_id,
            user_id: user.id,
            target: Target::File(FileId::new()),
            level: Permission::View,
            granted_at: Utc::now(),
        };
        c.put_grant(&grant).await.unwrap();
    }
    c.delete_user(user.id).await.unwrap();
    assert_eq!(c.user(user.id).await.unwrap(), None);
    assert!(c.grants_of_user(user.id).await.unwrap().is_empty());

    let now = Utc::now();
    let collection = Collection {
        id: CollectionId::new(),
        account_id: user.account_id,
        name: "big".into(),
        created_by: user.id,
        created_at: now,
        updated_at: now,
        revision: 0,
    };
    c.insert_collection(&collection).await.unwrap();
    let files: Vec<FileId> = (0..100).map(|_| FileId::new()).collect();
    for file in &files {
        c.add_to_collection(&CollectionItem { collection_id: collection.id, file_id: *file, added_at: now })
            .await
            .unwrap();
    }
    c.delete_collection(collection.id).await.unwrap();
    assert_eq!(c.collection(collection.id).await.unwrap(), None);
    assert!(c.collection_items(collection.id, &PageRequest::first(10)).await.unwrap().items.is_empty());
    assert!(c.collections_of_file(files[99]).await.unwrap().is_empty());
}

type RawItem = HashMap<String, aws_sdk_dynamodb::types::AttributeValue>;

/// Every item of a (fresh, small) table, raw.
async fn scan(env: &AwsEnv, table: &str) -> Vec<RawItem> {
    env.clients.dynamodb.scan().table_name(table).send().await.unwrap().items.unwrap_or_default()
}

#[tokio::test]
async fn uploads_carry_their_keep_time_for_ttl() {
    use aws_sdk_dynamodb::types::AttributeValue;
    let env = environment().await;
    let expires = Utc.with_ymd_and_hms(2030, 5, 6, 7, 8, 9).unwrap();
    let upload = Upload {
        id: UploadId::new(),
        account_id: AccountId::new(),
        user_id: UserId::new(),
        purpose: UploadPurpose::NewVersion { file_id: FileId::new() },
        content_type: "image/png".into(),
        blob_key: "k".into(),
        declared_size: 1,
        created_at: Utc::now(),
        expires_at: expires,
        multipart_id: "m".into(),
        part_size: 8 << 20,
        file_id: FileId::new(),
        state: UploadState::Open,
        e_tag: None,
        failure: None,
        updated_at: Utc::now(),
        revision: 0,
    };
    env.catalog.insert_upload(&upload).await.unwrap();
    let items = scan(&env, &env.config.catalog_table).await;
    assert_eq!(items.len(), 1);
    assert_eq!(items[0].get("ttl"), Some(&AttributeValue::N(expires.timestamp().to_string())));
    // Finished, it is kept a day, for retried completions.
    let mut done = upload.clone();
    done.state = UploadState::Done;
    done.updated_at = Utc.with_ymd_and_hms(2030, 5, 6, 7, 30, 0).unwrap();
    env.catalog.replace_upload(&done).await.unwrap();
    let items = scan(&env, &env.config.catalog_table).await;
    let kept = Utc.with_ymd_and_hms(2030, 5, 7, 7, 30, 0).unwrap();
    assert_eq!(items[0].get("ttl"), Some(&AttributeValue::N(kept.timestamp().to_string())));
}

#[tokio::test]
async fn undecodable_items_are_corrupt_and_missing_tables_a_backend_error() {
    use aws_sdk_dynamodb::types::AttributeValue;
    let env = environment().await;
    let account = account_named("x", Utc::now());
    env.catalog.insert_account(&account).await.unwrap();
    let mut item = scan(&env, &env.config.catalog_table).await.remove(0);
    item.insert("doc".into(), AttributeValue::S("{\"id\": 42".into()));
    env.clients
        .dynamodb
        .put_item()
        .table_name(&env.config.catalog_table)
        .set_item(Some(item.clone()))
        .send()
        .await
        .unwrap();
    assert!(matches!(env.catalog.account(account.id).await, Err(StoreError::Corrupt(_))));
    assert!(matches!(env.catalog.list_accounts(&PageRequest::first(5)).await, Err(StoreError::Corrupt(_))));
    item.remove("doc");
    env.clients.dynamodb.put_item().table_name(&env.config.catalog_table).set_item(Some(item)).send().await.unwrap();
    assert!(matches!(env.catalog.account(account.id).await, Err(StoreError::Corrupt(_))));

    let nowhere = DynamoCatalog::new(env.clients.dynamodb.clone(), format!("{}-missing", env.config.catalog_table));
    match nowhere.account(account.id).await {
        Err(StoreError::Backend(message)) => assert!(message.contains("ResourceNotFound"), "{message}"),
        other => panic!("expected a backend error, got {other:?}"),
    }
}

// --- links on DynamoDB ----------------------------------------------------------

fn link_of(account: AccountId, target: Target, until: Option<chrono::DateTime<Utc>>) -> Link {
    super::suite::link(account, target, 0, until)
}

fn audit_of(l: &Link, action: AuditAction) -> AuditEntry {
    super::suite::audit(l, action, Utc::now())
}

/// One item of a table by its keys, raw.
async fn raw_item(env: &AwsEnv, table: &str, pk: String, sk: &str) -> Option<RawItem> {
    use aws_sdk_dynamodb::types::AttributeValue;
    env.clients
        .dynamodb
        .get_item()
        .table_name(table)
        .key("pk", AttributeValue::S(pk))
        .key("sk", AttributeValue::S(sk.into()))
        .consistent_read(true)
        .send()
        .await
        .unwrap()
        .item
}

/// The link counters of a target and an account, as stored.
async fn counters(env: &AwsEnv, target: &Target, account: AccountId) -> (Option<String>, Option<String>) {
    let kind = serde_json::to_value(target.kind()).unwrap();
    let target_pk = format!("TARGET#{}:{}", kind.as_str().unwrap(), target.uuid());
    let mut out = Vec::new();
    for pk in [target_pk, format!("ACCOUNT#{account}")] {
        let item = raw_item(env, &env.config.links_table, pk, "LINKS").await;
        out.push(item.and_then(|i| i.get("count").and_then(|c| c.as_n().ok().cloned())));
    }
    (out[0].clone(), out[1].clone())
}

#[tokio::test]
async fn link_items_carry_their_end_as_ttl_in_step_with_replaces() {
    use aws_sdk_dynamodb::types::AttributeValue;
    let env = environment().await;
    let limits = LinkLimits { per_target: 5, per_account: 100 };
    let until = Utc.with_ymd_and_hms(2030, 5, 6, 7, 8, 9).unwrap();
    let acc = AccountId::new();
    let l = link_of(acc, top_target_in(&env.catalog, acc, TargetKind::Folder).await, Some(until));
    env.links.create_link(&l, limits, &audit_of(&l, AuditAction::Created)).await.unwrap();
    let stored_item = || raw_item(&env, &env.config.links_table, format!("LINK#{}", l.id), "LINK");
    let item = stored_item().await.expect("the link's item");
    assert_eq!(item.get("ttl"), Some(&AttributeValue::N(until.timestamp().to_string())));
    assert!(item.contains_key("gsi3pk"), "a link with an end is in the expiry index");
    let token = raw_item(&env, &env.config.links_table, format!("TOKEN#{}", l.token_hash), "TOKEN").await.unwrap();
    assert_eq!(token.get("link"), Some(&AttributeValue::S(l.id.to_string())));
    assert!(!token.contains_key("ttl"), "the token item goes with its link, never before it");

    // A fractional end is rounded up: TTL never removes a link that still works.
    let mut changed = l.clone();
    let later = until + Duration::days(1) + Duration::milliseconds(250);
    changed.valid_until = Some(later);
    let mut update = audit_of(&changed, AuditAction::Updated);
    update.id = format!("{}:0000000001", l.id);
    let stored = env.links.replace_link(&changed, &update).await.unwrap();
    let item = stored_item().await.unwrap();
    assert_eq!(item.get("ttl"), Some(&AttributeValue::N((later.timestamp() + 1).to_string())));

    let mut open_ended = stored.clone();
    open_ended.valid_until = None;
    update.id = format!("{}:0000000002", l.id);
    env.links.replace_link(&open_ended, &update).await.unwrap();
    let item = stored_item().await.unwrap();
    assert!(!item.contains_key("ttl") && !item.contains_key("gsi3pk"), "no end: no TTL, not in the expiry index");
    assert_eq!(item.get("revision"), Some(&AttributeValue::N("2".into())));
}

#[tokio::test]
async fn deleting_a_link_releases_both_counters_and_its_token_once() {
    let env = environment().await;
    let s = &env.links;
    let acc = AccountId::new();
    let target = top_target_in(&env.catalog, acc, TargetKind::File).await;
    let limits = LinkLimits { per_target: 5, per_account: 6 };
    let mut made = Vec::new();
    for _ in 0..5 {
        let l = link_of(acc, target, None);
        s.create_link(&l, limits, &audit_of(&l, AuditAction::Created)).await.unwrap();
        made.push(l);
    }
    let sixth = link_of(acc, target, None);
    assert_eq!(
        s.create_link(&sixth, limits, &audit_of(&sixth, AuditAction::Created)).await,
        Err(StoreError::LimitReached { scope: LimitScope::Target, limit: 5 })
    );
    assert_eq!(counters(&env, &target, acc).await, (Some("5".into()), Some("5".into())), "a refusal counts nothing");

    let gone = &made[0];
    assert!(s.delete_link(gone.id, &audit_of(gone, AuditAction::Deleted)).await.unwrap());
    assert_eq!(counters(&env, &target, acc).await, (Some("4".into()), Some("4".into())));
    assert_eq!(s.link_opening(&gone.token_hash).await.unwrap().map(|o| o.link), None);
    let token_pk = format!("TOKEN#{}", gone.token_hash);
    assert!(raw_item(&env, &env.config.links_table, token_pk, "TOKEN").await.is_none(), "the token item goes too");

    let mut again = audit_of(gone, AuditAction::Deleted);
    again.id = format!("{}:deleted-again", gone.id);
    assert!(!s.delete_link(gone.id, &again).await.unwrap());
    assert_eq!(counters(&env, &target, acc).await, (Some("4".into()), Some("4".into())), "released once");
    let query = AuditQuery { link: Some(gone.id), ..Default::default() };
    let log = s.audit_entries(acc, &query, &PageRequest::first(10)).await.unwrap().items;
    assert_eq!(log.iter().map(|e| e.action).collect::<Vec<_>>(), [AuditAction::Deleted, AuditAction::Created]);

    s.create_link(&sixth, limits, &audit_of(&sixth, AuditAction::Created)).await.expect("the target's slot is free");
    let elsewhere = link_of(acc, top_target_in(&env.catalog, acc, TargetKind::File).await, None);
    s.create_link(&elsewhere, limits, &audit_of(&elsewhere, AuditAction::Created)).await.unwrap();
    let over = link_of(acc, top_target_in(&env.catalog, acc, TargetKind::File).await, None);
    assert_eq!(
        s.create_link(&over, limits, &audit_of(&over, AuditAction::Created)).await,
        Err(StoreError::LimitReached { scope: LimitScope::Account, limit: 6 })
    );
}

#[tokio::test]
async fn a_token_whose_link_ttl_removed_finds_nothing() {
    use aws_sdk_dynamodb::types::AttributeValue;
    let env = environment().await;
    let acc = AccountId::new();
    let l = link_of(acc, top_target_in(&env.catalog, acc, TargetKind::Collection).await, Some(Utc::now()));
    let limits = LinkLimits { per_target: 5, per_account: 100 };
    env.links.create_link(&l, limits, &audit_of(&l, AuditAction::Created)).await.unwrap();
    assert_eq!(env.links.link_opening(&l.token_hash).await.unwrap().map(|o| o.link), Some(l.clone()));
    // What TTL does (moto never does it): the link's item alone goes.
    env.clients
        .dynamodb
        .delete_item()
        .table_name(&env.config.links_table)
        .key("pk", AttributeValue::S(format!("LINK#{}", l.id)))
        .key("sk", AttributeValue::S("LINK".into()))
        .send()
        .await
        .unwrap();
    assert_eq!(env.links.link_opening(&l.token_hash).await.unwrap().map(|o| o.link), None);
    assert!(!env.links.delete_link(l.id, &audit_of(&l, AuditAction::Deleted)).await.unwrap());
}

/// A DynamoDB stream record of TTL removing `link`'s item, as Lambda delivers it.
fn ttl_removal(seq: &str, link: &Link) -> serde_json::Value {
    let keys = serde_json::json!({"pk": {"S": format!("LINK#{}", link.id)}, "sk": {"S": "LINK"}});
    let mut old_image = keys.clone();
    old_image["doc"] = serde_json::json!({"S": serde_json::to_string(link).unwrap()});
    serde_json::json!({
        "eventID": format!("e{seq}"),
        "eventName": "REMOVE",
        "eventVersion": "1.1",
        "eventSource": "aws:dynamodb",
        "awsRegion": "us-east-1",
        "eventSourceARN": "arn:aws:dynamodb:us-east-1:123456789012:table/links/stream/2026-01-01T00:00:00.000",
        "userIdentity": {"type": "Service", "principalId": "dynamodb.amazonaws.com"},
        "dynamodb": {"Keys": keys, "OldImage": old_image, "SequenceNumber": seq, "SizeBytes": 300, "StreamViewType": "NEW_AND_OLD_IMAGES"}
    })
}

#[tokio::test]
async fn the_stream_handler_releases_a_ttl_removal_once_even_when_delivered_twice() {
    use aws_sdk_dynamodb::types::AttributeValue;
    let env = environment().await;
    // The service audit-stream starts with: the link records and the dashboard's secret, no S3 or SQS.
    let service = publinks_aws::runtime::link_records(&env.config).await.expect("audit-stream starts");
    let acc = AccountId::new();
    let target = top_target_in(&env.catalog, acc, TargetKind::File).await;
    let limits = LinkLimits { per_target: 5, per_account: 100 };
    let mut made = Vec::new();
    for i in 0..5 {
        let until = if i == 0 { Some(Utc::now() - Duration::hours(1)) } else { None };
        let l = link_of(acc, target, until);
        env.links.create_link(&l, limits, &audit_of(&l, AuditAction::Created)).await.unwrap();
        made.push(l);
    }
    let expired = &made[0];
    // What TTL does (moto never does it): the link's item alone goes.
    env.clients
        .dynamodb
        .delete_item()
        .table_name(&env.config.links_table)
        .key("pk", AttributeValue::S(format!("LINK#{}", expired.id)))
        .key("sk", AttributeValue::S("LINK".into()))
        .send()
        .await
        .unwrap();
    assert_eq!(counters(&env, &target, acc).await, (Some("5".into()), Some("5".into())), "TTL released nothing");

    let batch: aws_lambda_events::event::dynamodb::Event =
        serde_json::from_value(serde_json::json!({"Records": [ttl_removal("200", expired)]})).unwrap();
    for _ in 0..2 {
        let response = audit_stream::handle(&service, &batch).await;
        assert!(response.batch_item_failures.is_empty());
    }
    assert_eq!(counters(&env, &target, acc).await, (Some("4".into()), Some("4".into())), "released exactly once");
    let token_pk = format!("TOKEN#{}", expired.token_hash);
    assert!(raw_item(&env, &env.config.links_table, token_pk, "TOKEN").await.is_none(), "the token item goes");
    let query = AuditQuery { link: Some(expired.id), action: Some(AuditAction::Deleted), ..Default::default() };
    let log = env.links.audit_entries(acc, &query, &PageRequest::first(10)).await.unwrap().items;
    assert_eq!(log.len(), 1);
    assert_eq!(log[0].actor, AuditActor::System { reason: SystemReason::Expired });
    let fresh = link_of(acc, target, None);
    env.links
        .create_link(&fresh, limits, &audit_of(&fresh, AuditAction::Created))
        .await
        .expect("the slot is free again");
}

#[tokio::test]
async fn reading_many_records_by_id_costs_one_request_per_hundred() {
    let env = environment().await;
    let acc = AccountId::new();
    let mut files = Vec::new();
    for i in 0..250 {
        let f = file_named(acc, None, &format!("f{i}"));
        env.catalog.insert_file(&f, &Placement::default()).await.unwrap();
        files.push(f.id);
    }
    let mut asked = files.clone();
    asked.extend(files.iter().take(20).copied());
    asked.push(FileId::new());
    let before = env.calls.snapshot();
    assert_eq!(env.catalog.files_by_ids(&asked).await.unwrap().len(), 250);
    let calls = env.calls.since(&before);
    let three = BTreeMap::from([("DynamoDB.BatchGetItem".to_string(), 3)]);
    assert_eq!(calls, three, "251 distinct ids: three BatchGetItem requests");
}

// --- the archive queue ---------------------------------------------------------

/// Receives what the archive queue holds (waiting up to `wait` seconds for
/// a message to show) and hands it to `zip-builder`'s handler as Lambda's SQS
/// integration would, deleting the messages it does not report as failed;
/// returns the handler's answer and how many messages it got.
async fn deliver(
    env: &AwsEnv,
    builder: &publinks_archive::builder::ArchiveBuilder,
    redelivery: &zip_builder::Redelivery,
    wait: i32,
) -> (aws_lambda_events::event::sqs::SqsBatchResponse, usize) {
    use aws_sdk_sqs::types::MessageSystemAttributeName;
    let url = env.config.archive_queue_url.clone().expect("the template declares the archive queue");
    let received = env
        .clients
        .sqs
        .receive_message()
        .queue_url(&url)
        .max_number_of_messages(10)
        .wait_time_seconds(wait)
        .message_system_attribute_names(MessageSystemAttributeName::All)
        .send()
        .await
        .unwrap();
    let messages = received.messages.unwrap_or_default();
    let records: Vec<serde_json::Value> = messages
        .iter()
        .map(|m| {
            let attributes: BTreeMap<String, String> =
                m.attributes().into_iter().flatten().map(|(k, v)| (k.as_str().to_string(), v.clone())).collect();
            serde_json::json!({
                "messageId": m.message_id(),
                "receiptHandle": m.receipt_handle(),
                "body": m.body(),
                "attributes": attributes,
                "messageAttributes": {},
                "md5OfBody": m.md5_of_body(),
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:archives",
                "awsRegion": "us-east-1"
            })
        })
        .collect();
    let event: aws_lambda_events::event::sqs::SqsEvent =
        serde_json::from_value(serde_json::json!({"Records": records})).unwrap();
    let deadline = publinks_aws::runtime::deadline_of((Utc::now() + Duration::minutes(15)).timestamp_millis() as u64);
    let response = zip_builder::handle(builder, redelivery, &event, Some(deadline)).await;
    // Lambda deletes the messages the handler did not report as failed.
    for m in &messages {
        if !response.batch_item_failures.iter().any(|f| Some(f.item_identifier.as_str()) == m.message_id()) {
            let receipt = m.receipt_handle().expect("received messages have a receipt");
            env.clients.sqs.delete_message().queue_url(&url).receipt_handle(receipt).send().await.unwrap();
        }
    }
    (response, messages.len())
}

/// Redelivery through this environment's archive queue, a second before the second delivery.
fn quick_redelivery(env: &AwsEnv) -> zip_builder::Redelivery {
    use publinks_aws::SqsArchiveQueue;
    let url = env.config.archive_queue_url.clone().expect("the template declares the archive queue");
    let mut redelivery = zip_builder::Redelivery::new(&SqsArchiveQueue::new(env.clients.sqs.clone(), url));
    redelivery.first_pause = std::time::Duration::from_secs(1);
    redelivery
}

/// The archive queue's URL, this environment's stores as an archive
/// backend, and the job of one small file (its bytes from `seed`), sent to
/// the queue.
async fn one_job_queued(
    env: &AwsEnv,
    seed: u32,
) -> (String, ArchiveBackend, ArchiveJob, publinks_aws::SqsArchiveQueue) {
    use super::archives::{asset, job, noise};
    let url = env.config.archive_queue_url.clone().expect("the template declares the archive queue");
    let b = ArchiveBackend { stores: env.stores(), blob_dir: None, keep: Vec::new() };
    let entry = asset(&b, "a.bin", "application/octet-stream", &noise(3000, seed)).await;
    let job = job(&b, &[entry]).await;
    let queue = publinks_aws::SqsArchiveQueue::new(env.clients.sqs.clone(), url.clone());
    queue.enqueue(job.id).await.unwrap();
    (url, b, job, queue)
}

#[tokio::test]
async fn archive_jobs_travel_through_the_queue_to_the_zip_builder() {
    use publinks_archive::builder::{ArchiveBuilder, BuildSettings};
    let env = environment().await;
    let (url, b, job, queue) = one_job_queued(&env, 1).await;
    env.clients.sqs.send_message().queue_url(&url).message_body("not a job").send().await.unwrap();
    let builder = ArchiveBuilder::new(&b.stores, BuildSettings::default());
    let redelivery = quick_redelivery(&env);
    let (response, received) = deliver(&env, &builder, &redelivery, 0).await;
    assert_eq!(received, 2);
    assert!(response.batch_item_failures.is_empty(), "a bad message is dropped, not retried forever");
    let done = b.stores.visitors.archive_job(job.id).await.unwrap().unwrap();
    assert_eq!(done.state, ArchiveState::Ready, "{:?}", done.failure);
    // Delivered again (SQS is at least once): nothing changes.
    queue.enqueue(job.id).await.unwrap();
    let (again, _) = deliver(&env, &builder, &redelivery, 0).await;
    assert!(again.batch_item_failures.is_empty());
    assert_eq!(b.stores.visitors.archive_job(job.id).await.unwrap().unwrap().revision, done.revision);
}

#[tokio::test]
async fn a_storage_error_that_passes_costs_an_attempt_not_the_archive() {
    use super::archives::{FailingPart, assert_archive_holds, asset, job, noise, quick_retries, reload, stores_with};
    use publinks_archive::builder::ArchiveBuilder;
    use publinks_aws::SqsArchiveQueue;
    let env = environment().await;
    let url = env.config.archive_queue_url.clone().expect("the template declares the archive queue");
    let b = ArchiveBackend { stores: env.stores(), blob_dir: None, keep: Vec::new() };
    let (first, second) = (noise(6 * 1024 * 1024, 50), noise(6 * 1024 * 1024, 51));
    let entries = vec![asset(&b, "a.mp4", "video/mp4", &first).await, asset(&b, "b.mp4", "video/mp4", &second).await];
    let redelivery = quick_redelivery(&env);

    // Once, mid-build: the invocation tries again and the job ends ready.
    let once = job(&b, &entries).await;
    SqsArchiveQueue::new(env.clients.sqs.clone(), url.clone()).enqueue(once.id).await.unwrap();
    let failing = Arc::new(FailingPart::new(&b, 2, 1));
    let builder = ArchiveBuilder::new(&stores_with(&b, failing.clone()), quick_retries());
    let (response, received) = deliver(&env, &builder, &redelivery, 0).await;
    assert_eq!((received, response.batch_item_failures.len()), (1, 0));
    let done = reload(&b, once.id).await;
    assert_eq!(
        (done.state, done.attempt, failing.failed.load(std::sync::atomic::Ordering::SeqCst)),
        (ArchiveState::Ready, 2, 1)
    );
    assert!(b.stores.archives.open_multiparts(&once.archive_key).await.unwrap().is_empty(), "no orphan upload");
    assert_archive_holds(&b, &done, &[(&entries[0], &first), (&entries[1], &second)]).await;

    // Every time: delivered again after a pause, until the last delivery fails it, once.
    let always = job(&b, &entries).await;
    SqsArchiveQueue::new(env.clients.sqs.clone(), url.clone()).enqueue(always.id).await.unwrap();
    let failing = Arc::new(FailingPart::new(&b, 2, u32::MAX));
    let builder = ArchiveBuilder::new(&stores_with(&b, failing.clone()), quick_retries());
    for delivery in 1..=zip_builder::MAX_DELIVERIES {
        let (response, received) = deliver(&env, &builder, &redelivery, 5).await;
        assert_eq!(received, 1, "delivery {delivery} arrives after its pause");
        let job = reload(&b, always.id).await;
        if delivery < zip_builder::MAX_DELIVERIES {
            assert_eq!(response.batch_item_failures.len(), 1, "delivery {delivery}: to be delivered again");
            assert!(
                job.is_open() && job.failure.is_none(),
                "delivery {delivery} leaves the job in the making: {job:?}"
            );
        } else {
            assert!(response.batch_item_failures.is_empty(), "the last delivery is the end");
            assert_eq!(job.state, ArchiveState::Failed);
            assert_eq!(job.failure.as_deref(), Some("storage failed while the archive was written"));
        }
    }
    let failed = reload(&b, always.id).await;
    assert_eq!(
        failing.failed.load(std::sync::atomic::Ordering::SeqCst),
        9,
        "three attempts in each of three deliveries"
    );
    assert_eq!(failed.attempt, 9);
    assert!(b.stores.archives.open_multiparts(&always.archive_key).await.unwrap().is_empty(), "no orphan upload");
    assert_eq!(b.stores.archives.head(&always.archive_key).await.unwrap(), None);
    let (_, received) = deliver(&env, &builder, &redelivery, 0).await;
    assert_eq!(received, 0, "nothing left to deliver");
}

/// How many messages the queue at `url` showed to receives a quarter
/// second apart for `seconds` (they are received, not handled: hidden for
/// the queue's visibility timeout). Short receives: moto's server answers
/// no other call, of any service, while a long one waits.
async fn messages_showing(env: &AwsEnv, url: &str, seconds: u64) -> usize {
    let until = std::time::Instant::now() + std::time::Duration::from_secs(seconds);
    let mut shown = 0;
    while std::time::Instant::now() < until {
        let received = env.clients.sqs.receive_message().queue_url(url).wait_time_seconds(0).send().await.unwrap();
        shown += received.messages.unwrap_or_default().len();
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
    shown
}

#[tokio::test]
async fn a_build_is_held_while_it_runs_and_delivered_again_soon_when_its_process_ends() {
    use super::archives::{HeldCompletion, reload, stores_with};
    use publinks_archive::builder::{ArchiveBuilder, BuildSettings};
    let env = environment().await;
    let (url, b, job, _) = one_job_queued(&env, 61).await;
    let mut redelivery = quick_redelivery(&env);
    redelivery.received.hold = std::time::Duration::from_secs(4);

    // A build that stops at its completion, in an invocation that then ends
    // the way a process does (Lambda's limits, a panic): nothing of it runs on.
    let held = Arc::new(HeldCompletion::new(&b));
    let stuck = ArchiveBuilder::new(&stores_with(&b, held.clone()), BuildSettings::default());
    {
        let invocation = deliver(&env, &stuck, &redelivery, 0);
        tokio::pin!(invocation);
        tokio::select! {
            _ = &mut invocation => panic!("the build waits at its completion"),
            () = held.reached.notified() => {}
        }
        // Over two holds long, the message stays with the build that runs.
        tokio::select! {
            _ = &mut invocation => panic!("the build waits at its completion"),
            shown = messages_showing(&env, &url, 9) => assert_eq!(shown, 0, "held while its build runs"),
        }
    }
    // Its process gone, the message is delivered again within a hold (the
    // queue's own visibility timeout is an hour and a half), and built.
    let builder = ArchiveBuilder::new(&b.stores, BuildSettings::default());
    let (response, received) = deliver(&env, &builder, &redelivery, 8).await;
    assert_eq!((received, response.batch_item_failures.len()), (1, 0), "delivered again within the hold");
    let done = reload(&b, job.id).await;
    assert_eq!((done.state, done.attempt), (ArchiveState::Ready, 2), "{:?}", done.failure);
    assert_eq!(messages_showing(&env, &url, 3).await, 0, "nothing left to deliver");
}

#[tokio::test]
async fn the_builder_knows_how_often_the_queue_delivers() {
    assert_eq!(
        publinks_e2e::aws::archive_queue_max_receive_count(),
        zip_builder::MAX_DELIVERIES,
        "infra/template.yaml's maxReceiveCount of the archive queue and zip_builder::MAX_DELIVERIES differ"
    );
}

// --- the catalog stream: cascades made durable -----------------------------------

/// A raw item as a stream image (`{"attr": {"S": "..."}}`), for the string
/// and number attributes the handler reads.
fn image(item: &HashMap<String, aws_sdk_dynamodb::types::AttributeValue>) -> serde_json::Value {
    use aws_sdk_dynamodb::types::AttributeValue;
    let mut out = serde_json::Map::new();
    for (name, value) in item {
        match value {
            AttributeValue::S(s) => out.insert(name.clone(), serde_json::json!({"S": s})),
            AttributeValue::N(n) => out.insert(name.clone(), serde_json::json!({"N": n})),
            _ => None,
        };
    }
    serde_json::Value::Object(out)
}

/// A catalog stream record of `name` (`MODIFY`, `REMOVE`) on an item, as Lambda delivers it.
fn catalog_record(
    seq: &str,
    name: &str,
    old: &serde_json::Value,
    new: Option<&serde_json::Value>,
) -> serde_json::Value {
    let keys = serde_json::json!({"pk": old["pk"], "sk": old["sk"]});
    let mut change = serde_json::json!({
        "Keys": keys, "OldImage": old, "SequenceNumber": seq, "SizeBytes": 300, "StreamViewType": "NEW_AND_OLD_IMAGES"
    });
    if let Some(new) = new {
        change["NewImage"] = new.clone();
    }
    serde_json::json!({
        "eventID": format!("e{seq}"), "eventName": name, "eventVersion": "1.1", "eventSource": "aws:dynamodb",
        "awsRegion": "us-east-1",
        "eventSourceARN": "arn:aws:dynamodb:us-east-1:123456789012:table/catalog/stream/2026-01-01T00:00:00.000",
        "dynamodb": change
    })
}

#[tokio::test]
async fn the_catalog_stream_runs_a_cascade_again_when_its_request_died_half_way() {
    use publinks_domain::links::{LinkService, NewLink};
    let env = environment().await;
    let stores = env.stores();
    let library = publinks_domain::library::Library::new(&stores, Default::default());
    let service = LinkService::new(&stores, publinks_domain::signing::SecretKey::generate(), "https://x");
    let admin = publinks_domain::library::NewUser {
        id: None,
        name: "Ann".into(),
        email: "ann@x.example".into(),
        role: Role::Admin,
    };
    let (_, ann) = library.create_account("Acme", Plan::Enterprise, false, admin).await.unwrap();
    let ann = library.actor(ann.id).await.unwrap().unwrap();
    let top = library.create_folder(&ann, None, "Top").await.unwrap();
    let inner = library.create_folder(&ann, Some(top.id), "Inner").await.unwrap();
    let share = |target: Target| NewLink {
        target,
        valid_from: None,
        valid_until: None,
        password: None,
        expose_unpublished: false,
        hide_identifying_metadata: None,
        preview_only: false,
        max_downloads: None,
        max_sessions: None,
    };
    let on_inner = service.create(&ann, share(Target::Folder(inner.id))).await.unwrap();

    // The move commits; the request dies before its cascade.
    let folder_item = || raw_item(&env, &env.config.catalog_table, format!("FOLDER#{}", inner.id), "FOLDER");
    let before = image(&folder_item().await.unwrap());
    let mut moved = env.catalog.folder(inner.id).await.unwrap().unwrap();
    moved.parent_id = None;
    env.catalog.move_folder(&moved, &Placement::default()).await.unwrap();
    let after = image(&folder_item().await.unwrap());
    assert!(service.get(&ann, on_inner.id).await.is_ok(), "the link outlived the move");
    let since_move = service.create(&ann, share(Target::Folder(inner.id))).await.unwrap();

    let record = catalog_record("300", "MODIFY", &before, Some(&after));
    let unmoved = catalog_record("301", "MODIFY", &after, Some(&after));
    let batch: aws_lambda_events::event::dynamodb::Event =
        serde_json::from_value(serde_json::json!({"Records": [record, unmoved]})).unwrap();
    for _ in 0..2 {
        let response = audit_stream::handle(&service, &batch).await;
        assert!(response.batch_item_failures.is_empty());
    }
    assert!(service.get(&ann, on_inner.id).await.is_err(), "the stale link is gone");
    service.get(&ann, since_move.id).await.expect("a link made since the move stays");
    let query = AuditQuery { link: Some(on_inner.id), action: Some(AuditAction::Deleted), ..Default::default() };
    let log = env.links.audit_entries(ann.account.id, &query, &PageRequest::first(10)).await.unwrap().items;
    assert_eq!(log.len(), 1);
    assert_eq!(log[0].actor, AuditActor::System { reason: SystemReason::TargetMoved });

    // A removal the request never cascaded.
    let collection = library.create_collection(&ann, "Picks").await.unwrap();
    let on_collection = service.create(&ann, share(Target::Collection(collection.id))).await.unwrap();
    let item = image(
        &raw_item(&env, &env.config.catalog_table, format!("COLLECTION#{}", collection.id), "COLLECTION")
            .await
            .unwrap(),
    );
    env.catalog.delete_collection(collection.id).await.unwrap();
    let removal = catalog_record("302", "REMOVE", &item, None);
    let outcome = audit_stream::handle_record(&service, &serde_json::from_value(removal).unwrap()).await;
    assert_eq!(outcome, Ok(audit_stream::Outcome::Cascaded(1)));
    assert!(service.get(&ann, on_collection.id).await.is_err());
}

// --- the library job queue -------------------------------------------------------

/// Messages as Lambda's SQS integration delivers them.
fn sqs_event(messages: &[aws_sdk_sqs::types::Message]) -> aws_lambda_events::event::sqs::SqsEvent {
    let records: Vec<serde_json::Value> = messages
        .iter()
        .map(|m| {
            serde_json::json!({
                "messageId": m.message_id(),
                "receiptHandle": m.receipt_handle(),
                "body": m.body(),
                "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": "0", "SenderId": "x", "ApproximateFirstReceiveTimestamp": "0"},
                "messageAttributes": {},
                "md5OfBody": m.md5_of_body(),
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:library-jobs",
                "awsRegion": "us-east-1"
            })
        })
        .collect();
    serde_json::from_value(serde_json::json!({"Records": records})).unwrap()
}

#[tokio::test]
async fn library_jobs_travel_through_the_queue_to_the_library_worker() {
    use publinks_aws::SqsLibraryJobQueue;
    use publinks_domain::jobs::{LibraryJob, LibraryJobs};
    use publinks_domain::library::{Library, LibrarySettings, NewUser};
    use publinks_domain::uploads::{Completion, UploadRequest};
    let env = environment().await;
    let url = env.config.library_jobs_queue_url.clone().expect("the template declares the library job queue");
    let sqs = &env.clients.sqs;
    // Every upload is read by a job.
    let settings = LibrarySettings { inline_ingest_bytes: 0, ..Default::default() };
    let queue = SqsLibraryJobQueue::new(sqs.clone(), url.clone());
    let library = Library::new(&env.stores(), settings.clone()).with_jobs(Arc::new(queue));
    let admin = NewUser { id: None, name: "Ann".into(), email: "ann@q.example".into(), role: Role::Admin };
    let (_, admin) = library.create_account("Queue Co", Plan::Enterprise, false, admin).await.unwrap();
    let actor = library.actor(admin.id).await.unwrap().unwrap();
    let bytes = publinks_media::demo_jpeg_with_exif(64, 48, 1, "Queue Cam");
    let request = UploadRequest {
        name: Some("q.jpg".into()),
        folder_id: None,
        file_id: None,
        content_type: "image/jpeg".into(),
        size: bytes.len() as u64,
    };
    let ticket = library.start_upload(&actor, request).await.unwrap();
    let res = reqwest::Client::new()
        .put(ticket.url.as_deref().unwrap())
        .header("content-type", "image/jpeg")
        .body(bytes.clone())
        .send()
        .await
        .unwrap();
    assert!(res.status().is_success(), "{}", res.status());
    match library.complete_upload(&actor, ticket.upload_id).await.unwrap() {
        Completion::Accepted(t) => assert_eq!(t.state, UploadState::Ingesting),
        other => panic!("expected the job to read it: {other:?}"),
    }
    sqs.send_message().queue_url(&url).message_body("not a job").send().await.unwrap();
    let received = sqs.receive_message().queue_url(&url).max_number_of_messages(10).send().await.unwrap();
    let messages = received.messages.unwrap_or_default();
    assert_eq!(messages.len(), 2);
    let event = sqs_event(&messages);

    let worker_queue = SqsLibraryJobQueue::new(sqs.clone(), url.clone());
    let renditions = Arc::new(publinks_media::ImageRenditions);
    let jobs =
        LibraryJobs::new(Library::new(&env.stores(), settings).with_jobs(Arc::new(worker_queue)), renditions.clone());
    let response = library_worker::handle(&jobs, None, &event, None).await;
    assert!(response.batch_item_failures.is_empty(), "done, and the garbage dropped: {response:?}");
    let done = library.upload_status(&actor, ticket.upload_id).await.unwrap();
    assert_eq!(done.state, UploadState::Done);
    let file = library.file(&actor, done.file_id.unwrap()).await.unwrap();
    assert_eq!((file.current.crc32, file.current.size), (crc32fast::hash(&bytes), bytes.len() as u64));
    assert_eq!((file.current.width, file.current.height), (Some(64), Some(48)));
    assert_eq!(file.current.embedded_metadata.get("Model").map(String::as_str), Some("Queue Cam"));
    let stored = env.assets.head(&file.current.blob_key).await.unwrap().unwrap();
    assert_eq!(file.current.e_tag.as_deref(), Some(stored.e_tag.as_str()), "the version records the ETag");

    // The ingest handed the renditions to the queue; the worker makes them beside the version.
    use publinks_domain::renditions::{RenditionSize, rendition_key};
    let drain = || async {
        let received = sqs.receive_message().queue_url(&url).max_number_of_messages(10).send().await.unwrap();
        received.messages.unwrap_or_default()
    };
    let messages = drain().await;
    let job: LibraryJob = serde_json::from_str(messages[0].body().unwrap()).unwrap();
    let expected = LibraryJob::Renditions {
        blob_key: file.current.blob_key.clone(),
        content_type: "image/jpeg".into(),
        size: bytes.len() as u64,
    };
    assert_eq!((messages.len(), job), (1, expected));
    let decodes = publinks_media::rendition_decodes();
    let response = library_worker::handle(&jobs, None, &sqs_event(&messages), None).await;
    assert!(response.batch_item_failures.is_empty(), "{response:?}");
    assert_eq!(publinks_media::rendition_decodes(), decodes + 1);
    for size in RenditionSize::ALL {
        let key = rendition_key(&file.current.blob_key, size);
        let mut webp = Vec::new();
        let mut reader = env.assets.open(&key).await.unwrap();
        tokio::io::AsyncReadExt::read_to_end(&mut reader, &mut webp).await.unwrap();
        assert_eq!(&webp[8..12], b"WEBP", "{key}");
    }

    // Delivered again: nothing changes.
    let response = library_worker::handle(&jobs, None, &event, None).await;
    assert!(response.batch_item_failures.is_empty());
    assert_eq!(library.file(&actor, file.id).await.unwrap(), file);
    assert_eq!(library.versions(&actor, file.id).await.unwrap().len(), 1);
    let again = drain().await;
    let response = library_worker::handle(&jobs, None, &sqs_event(&again), None).await;
    assert!(response.batch_item_failures.is_empty(), "{response:?}");
    assert_eq!(publinks_media::rendition_decodes(), decodes + 1, "renditions are made once");

    // Deleting the file deletes its renditions with its bytes.
    library.delete_file(&actor, file.id).await.unwrap();
    for key in publinks_domain::renditions::rendition_keys(&file.current.blob_key) {
        assert!(env.assets.head(&key).await.unwrap().is_none(), "{key}");
    }

    // Storage failing: the message is reported, for SQS to deliver again.
    let job = serde_json::to_string(&LibraryJob::Ingest { upload_id: ticket.upload_id }).unwrap();
    sqs.send_message().queue_url(&url).message_body(job).send().await.unwrap();
    let received = sqs.receive_message().queue_url(&url).max_number_of_messages(10).send().await.unwrap();
    let event = sqs_event(&received.messages.unwrap_or_default());
    let missing = DynamoCatalog::new(env.clients.dynamodb.clone(), format!("{}-missing", env.config.catalog_table));
    let broken = LibraryJobs::new(
        Library::new(&Stores { catalog: Arc::new(missing), ..env.stores() }, LibrarySettings::default()),
        renditions,
    );
    // Held while it runs (a short hold here), then put off as before the
    // hold: not delivered again within minutes.
    let mut held = publinks_aws::ReceivedMessages::new(sqs.clone(), url.clone());
    held.hold = std::time::Duration::from_secs(2);
    let response = library_worker::handle(&broken, Some(&held), &event, None).await;
    let failed: Vec<_> = response.batch_item_failures.iter().map(|f| f.item_identifier.clone()).collect();
    assert_eq!(failed, [event.records[0].message_id.clone().unwrap()]);
    assert_eq!(messages_showing(&env, &url, 5).await, 0, "a job that failed waits for its next delivery");
}

/// Renditions that wait, on the blocking thread that makes them, until
/// released: a job that lasts as long as a test wants.
#[derive(Default)]
struct HeldRenditions {
    started: std::sync::atomic::AtomicBool,
    released: std::sync::Mutex<bool>,
    wake: std::sync::Condvar,
}

impl HeldRenditions {
    fn release(&self) {
        *self.released.lock().unwrap() = true;
        self.wake.notify_all();
    }
}

impl publinks_domain::renditions::RenditionMaker for HeldRenditions {
    fn make(&self, _: &[u8]) -> Result<Vec<(publinks_domain::renditions::RenditionSize, Vec<u8>)>, String> {
        self.started.store(true, std::sync::atomic::Ordering::SeqCst);
        let mut released = self.released.lock().unwrap();
        while !*released {
            released = self.wake.wait(released).unwrap();
        }
        Err("released".into())
    }
    fn watermark(&self, _: &[u8], _: &str) -> Result<Vec<u8>, publinks_domain::renditions::WatermarkFailure> {
        unimplemented!("only renditions are asked of it")
    }
    fn logo_watermark(&self, _: &[u8], _: &[u8]) -> Result<Vec<u8>, publinks_domain::renditions::WatermarkFailure> {
        unimplemented!("only renditions are asked of it")
    }
}

#[tokio::test]
async fn a_library_job_is_held_while_it_runs_and_delivered_again_soon_when_its_process_ends() {
    use publinks_aws::{ReceivedMessages, SqsLibraryJobQueue};
    use publinks_domain::jobs::{LibraryJob, LibraryJobs};
    use publinks_domain::library::{Library, LibrarySettings};
    use publinks_domain::renditions::{RenditionSize, rendition_key};
    let env = environment().await;
    let url = env.config.library_jobs_queue_url.clone().expect("the template declares the library job queue");
    let sqs = &env.clients.sqs;
    let png = publinks_media::demo_png(32, 24, 7);
    let blob_key = format!("held/{}.png", FileId::new());
    env.assets.put(&blob_key, png.clone(), "image/png").await.unwrap();
    let job =
        LibraryJob::Renditions { blob_key: blob_key.clone(), content_type: "image/png".into(), size: png.len() as u64 };
    sqs.send_message().queue_url(&url).message_body(serde_json::to_string(&job).unwrap()).send().await.unwrap();
    let mut received = ReceivedMessages::new(sqs.clone(), url.clone());
    received.hold = std::time::Duration::from_secs(4);
    let library = || {
        Library::new(&env.stores(), LibrarySettings::default())
            .with_jobs(Arc::new(SqsLibraryJobQueue::new(sqs.clone(), url.clone())))
    };

    // The decoding lasts until released, in an invocation that ends the way
    // a process does (Lambda's limits, a decoder's panic).
    let held = Arc::new(HeldRenditions::default());
    // Released however the test ends: the runtime waits for the blocking
    // thread the decoding holds.
    struct Release(Arc<HeldRenditions>);
    impl Drop for Release {
        fn drop(&mut self) {
            self.0.release();
        }
    }
    let release = Release(held.clone());
    let stuck = LibraryJobs::new(library(), held.clone());
    let messages = sqs.receive_message().queue_url(&url).send().await.unwrap().messages.unwrap_or_default();
    assert_eq!(messages.len(), 1);
    {
        let event = sqs_event(&messages);
        let invocation = library_worker::handle(&stuck, Some(&received), &event, None);
        tokio::pin!(invocation);
        let started = async {
            while !held.started.load(std::sync::atomic::Ordering::SeqCst) {
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
        };
        tokio::select! {
            _ = &mut invocation => panic!("the decoding waits until released"),
            () = started => {}
        }
        // Over two holds long, the message stays with the job that runs.
        tokio::select! {
            _ = &mut invocation => panic!("the decoding waits until released"),
            shown = messages_showing(&env, &url, 9) => assert_eq!(shown, 0, "held while its job runs"),
        }
    }
    drop(release);
    // Its process gone, the message is delivered again within a hold (the
    // queue's own visibility timeout is an hour and a half), and done.
    let until = std::time::Instant::now() + std::time::Duration::from_secs(8);
    let mut again = Vec::new();
    while again.is_empty() && std::time::Instant::now() < until {
        let received = sqs.receive_message().queue_url(&url).wait_time_seconds(0).send().await.unwrap();
        again = received.messages.unwrap_or_default();
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
    assert_eq!(again.len(), 1, "delivered again within the hold");
    let jobs = LibraryJobs::new(library(), Arc::new(publinks_media::ImageRenditions));
    let response = library_worker::handle(&jobs, Some(&received), &sqs_event(&again), None).await;
    assert!(response.batch_item_failures.is_empty(), "{response:?}");
    assert!(env.assets.head(&rendition_key(&blob_key, RenditionSize::Large)).await.unwrap().is_some(), "made");
}

/// An endpoint on loopback answering POST `/in` with `handler`: its URL, and
/// the task serving it.
async fn webhook_receiver(handler: axum::routing::MethodRouter) -> (String, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let receiver = format!("http://{}/in", listener.local_addr().unwrap());
    let router = axum::Router::new().route("/in", handler);
    (receiver, tokio::spawn(async move { axum::serve(listener, router).await.unwrap() }))
}

/// The webhook service on `stores`, handing deliveries to the SQS queue at
/// `url`, allowed to reach loopback (the receiver above).
fn webhooks_over_queue(
    stores: &Stores,
    sqs: &aws_sdk_sqs::Client,
    url: &str,
) -> publinks_domain::webhooks::WebhookService {
    use publinks_domain::webhooks::{AddressPolicy, WebhookService};
    WebhookService::new(
        stores.catalog.clone(),
        stores.webhooks.clone(),
        stores.visitors.clone(),
        Arc::new(publinks_outbound::HttpTransport::new()),
        Arc::new(publinks_aws::SqsLibraryJobQueue::new(sqs.clone(), url.to_string())),
        AddressPolicy::AllowLoopback,
        stores.clock.clone(),
    )
}

#[tokio::test]
async fn webhook_deliveries_travel_through_the_queue_to_the_library_worker() {
    use publinks_domain::jobs::LibraryJobs;
    use publinks_domain::library::{Library, LibrarySettings, NewUser};
    use publinks_domain::webhooks::*;
    let env = environment().await;
    let url = env.config.library_jobs_queue_url.clone().expect("the template declares the library job queue");
    let sqs = &env.clients.sqs;
    let stores = env.stores();
    // A receiver on loopback: a 503 first, then 200s.
    let hits = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = hits.clone();
    let hook = move || {
        let n = counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        async move { if n == 0 { axum::http::StatusCode::SERVICE_UNAVAILABLE } else { axum::http::StatusCode::OK } }
    };
    let (receiver, _server) = webhook_receiver(axum::routing::post(hook)).await;
    let webhooks = webhooks_over_queue(&stores, sqs, &url);
    let library = Library::new(&stores, LibrarySettings::default());
    let admin = NewUser { id: None, name: "Ann".into(), email: "ann@hooks.example".into(), role: Role::Admin };
    let (account, admin) = library.create_account("Hook Co", Plan::Enterprise, false, admin).await.unwrap();
    let actor = library.actor(admin.id).await.unwrap().unwrap();
    let new = NewWebhook { url: receiver, events: vec![WebhookEvent::LinkLimitReached] };
    let hook = webhooks.create(&actor, new).await.unwrap();
    let stored = library.catalog().account(account.id).await.unwrap().unwrap();
    assert_eq!(stored.webhook_events, [WebhookEvent::LinkLimitReached], "the account says what its webhooks want");
    let link = link_of(account.id, Target::File(FileId::new()), None);
    webhooks.notify(&link, WebhookEvent::LinkLimitReached, None, Some("downloads")).await.unwrap();
    webhooks.notify(&link, WebhookEvent::LinkFirstOpened, None, None).await.unwrap();

    // One message, for the one event wanted; the worker makes the attempt
    // (503), records it and sends the retry back to the queue, delayed.
    let receive = || async {
        let received = sqs.receive_message().queue_url(&url).max_number_of_messages(10).send().await.unwrap();
        received.messages.unwrap_or_default()
    };
    let messages = receive().await;
    assert_eq!(messages.len(), 1, "{messages:?}");
    let jobs =
        LibraryJobs::new(library.clone(), Arc::new(publinks_media::ImageRenditions)).with_webhooks(webhooks.clone());
    let response = library_worker::handle(&jobs, None, &sqs_event(&messages), None).await;
    assert!(response.batch_item_failures.is_empty(), "{response:?}");
    let id = hook.id;
    let deliveries = stores.webhooks.deliveries_of_webhook(id, 10).await.unwrap();
    assert_eq!(deliveries.len(), 1);
    let first = &deliveries[0];
    assert_eq!((first.state, first.attempts, first.last_status), (DeliveryState::Pending, 1, Some(503)));
    assert_eq!(receive().await.len(), 0, "the retry waits its delay in the queue");
    let queued = sqs
        .get_queue_attributes()
        .queue_url(&url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessagesDelayed)
        .send()
        .await
        .unwrap();
    let delayed = queued.attributes.unwrap_or_default();
    assert_eq!(
        delayed.get(&aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessagesDelayed).map(String::as_str),
        Some("1")
    );
    // Its time come (the delivery made due), the worker sends it.
    let due = Delivery { next_attempt_at: Some(Utc::now()), ..first.clone() };
    stores.webhooks.replace_delivery(&due).await.unwrap();
    let again = serde_json::to_string(&publinks_domain::jobs::LibraryJob::DeliverWebhook { delivery: first.id });
    let again = again.unwrap();
    sqs.send_message().queue_url(&url).message_body(again).send().await.unwrap();
    let messages = receive().await;
    let response = library_worker::handle(&jobs, None, &sqs_event(&messages), None).await;
    assert!(response.batch_item_failures.is_empty(), "{response:?}");
    let done = stores.webhooks.delivery(first.id).await.unwrap().unwrap();
    assert_eq!((done.state, done.attempts, done.last_status), (DeliveryState::Delivered, 2, Some(200)));
    assert_eq!(hits.load(std::sync::atomic::Ordering::SeqCst), 2);
}

#[tokio::test]
async fn the_scheduled_sweep_warns_of_expiring_links_and_makes_lost_deliveries() {
    use publinks_domain::jobs::LibraryJobs;
    use publinks_domain::library::{Library, LibrarySettings, NewUser};
    use publinks_domain::webhooks::*;
    let env = environment().await;
    let url = env.config.library_jobs_queue_url.clone().expect("the template declares the library job queue");
    let sqs = &env.clients.sqs;
    let stores = env.stores();
    // A receiver on loopback that answers 200 and keeps each delivery's event.
    let events = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let seen = events.clone();
    let hook = move |headers: axum::http::HeaderMap| {
        let event = headers.get("Publinks-Event").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
        seen.lock().unwrap().push(event);
        async { axum::http::StatusCode::OK }
    };
    let (receiver, _server) = webhook_receiver(axum::routing::post(hook)).await;
    let webhooks = webhooks_over_queue(&stores, sqs, &url);
    let library = Library::new(&stores, LibrarySettings::default());
    let admin = NewUser { id: None, name: "Ann".into(), email: "ann@sweep.example".into(), role: Role::Admin };
    let (account, admin) = library.create_account("Sweep Co", Plan::Enterprise, false, admin).await.unwrap();
    let actor = library.actor(admin.id).await.unwrap().unwrap();
    let wanted = vec![WebhookEvent::LinkExpiresSoon, WebhookEvent::LinkLimitReached];
    let hook = webhooks.create(&actor, NewWebhook { url: receiver, events: wanted }).await.unwrap();
    let jobs =
        LibraryJobs::new(library.clone(), Arc::new(publinks_media::ImageRenditions)).with_webhooks(webhooks.clone());
    let links: &dyn LinkStore = stores.links.as_ref();
    let receive = || async {
        let received = sqs.receive_message().queue_url(&url).max_number_of_messages(10).send().await.unwrap();
        received.messages.unwrap_or_default()
    };

    // Links ending in 2 hours (warned), in 2 days and an hour ago (not).
    let limits = LinkLimits { per_target: 5, per_account: 100 };
    let target = top_target_in(&env.catalog, account.id, TargetKind::File).await;
    let mut made = Vec::new();
    for hours in [2, 48, -1] {
        let l = link_of(account.id, target, Some(Utc::now() + Duration::hours(hours)));
        env.links.create_link(&l, limits, &audit_of(&l, AuditAction::Created)).await.unwrap();
        made.push(l);
    }
    // A delivery whose queue message was lost, due an hour ago.
    webhooks.notify(&made[1], WebhookEvent::LinkLimitReached, None, Some("downloads")).await.unwrap();
    for m in receive().await {
        sqs.delete_message().queue_url(&url).receipt_handle(m.receipt_handle().unwrap()).send().await.unwrap();
    }
    let lost = stores.webhooks.deliveries_of_webhook(hook.id, 10).await.unwrap().remove(0);
    let overdue = Delivery { next_attempt_at: Some(Utc::now() - Duration::hours(1)), ..lost.clone() };
    stores.webhooks.replace_delivery(&overdue).await.unwrap();

    // An unknown payload (a classic EventBridge schedule's) is refused and does nothing.
    let classic = serde_json::json!({"detail-type": "Scheduled Event", "source": "aws.events", "detail": {}});
    let refused = library_worker::invoke(&jobs, None, &webhooks, links, classic, None).await;
    assert!(refused.is_err(), "{refused:?}");
    assert!(events.lock().unwrap().is_empty());

    // The scheduled run: the lost delivery is made; the expiring link's
    // warning is recorded and handed to the queue.
    let input: serde_json::Value = serde_json::from_str(library_worker::SWEEP_INPUT).unwrap();
    let report = library_worker::invoke(&jobs, None, &webhooks, links, input.clone(), None).await.unwrap();
    assert_eq!(report, serde_json::json!({"attempted": 1, "expiring": 1}));
    let made_again = stores.webhooks.delivery(lost.id).await.unwrap().unwrap();
    assert_eq!((made_again.state, made_again.last_status), (DeliveryState::Delivered, Some(200)));
    let messages = receive().await;
    assert_eq!(messages.len(), 1, "the warning's delivery goes through the queue: {messages:?}");
    let batch = serde_json::to_value(sqs_event(&messages)).unwrap();
    let response = library_worker::invoke(&jobs, None, &webhooks, links, batch, None).await.unwrap();
    assert_eq!(response["batchItemFailures"], serde_json::json!([]), "{response}");
    let deliveries = stores.webhooks.deliveries_of_webhook(hook.id, 10).await.unwrap();
    let warning = deliveries.iter().find(|d| d.event == WebhookEvent::LinkExpiresSoon).expect("a warning");
    assert_eq!(warning.state, DeliveryState::Delivered);
    assert!(warning.body.contains(&made[0].id.to_string()), "{}", warning.body);
    assert_eq!(*events.lock().unwrap(), ["link.limit_reached", "link.expires_soon"]);

    // Another run (or one overlapping it) warns of the same end no more.
    let report = library_worker::invoke(&jobs, None, &webhooks, links, input, None).await.unwrap();
    assert_eq!(report, serde_json::json!({"attempted": 0, "expiring": 1}));
    assert_eq!(receive().await.len(), 0);
    assert_eq!(stores.webhooks.deliveries_of_webhook(hook.id, 10).await.unwrap().len(), 2);
}

#[tokio::test]
async fn a_link_removed_by_ttl_is_told_to_webhooks_once_by_the_next_sweep() {
    use aws_sdk_dynamodb::types::AttributeValue;
    use publinks_domain::jobs::LibraryJobs;
    use publinks_domain::library::{Library, LibrarySettings, NewUser};
    use publinks_domain::webhooks::*;
    let env = environment().await;
    let url = env.config.library_jobs_queue_url.clone().expect("the template declares the library job queue");
    let sqs = &env.clients.sqs;
    let stores = env.stores();
    // A receiver on loopback that answers 200 and keeps each request's headers and body.
    let requests = Arc::new(std::sync::Mutex::new(Vec::<(axum::http::HeaderMap, String)>::new()));
    let seen = requests.clone();
    let hook = move |headers: axum::http::HeaderMap, body: String| {
        seen.lock().unwrap().push((headers, body));
        async { axum::http::StatusCode::OK }
    };
    let (receiver, _server) = webhook_receiver(axum::routing::post(hook)).await;
    let webhooks = webhooks_over_queue(&stores, sqs, &url);
    let library = Library::new(&stores, LibrarySettings::default());
    let limits = LinkLimits { per_target: 5, per_account: 100 };
    // Two accounts, each with a link that ended an hour ago; only the first has a webhook.
    let mut ended = Vec::new();
    let mut secret = String::new();
    for (i, name) in ["Told Co", "Quiet Co"].into_iter().enumerate() {
        let email = format!("ann@{i}.ttl.example");
        let admin = NewUser { id: None, name: "Ann".into(), email, role: Role::Admin };
        let (account, admin) = library.create_account(name, Plan::Enterprise, false, admin).await.unwrap();
        if i == 0 {
            let actor = library.actor(admin.id).await.unwrap().unwrap();
            let wanted = NewWebhook { url: receiver.clone(), events: vec![WebhookEvent::LinkDeletedBySystem] };
            secret = webhooks.create(&actor, wanted).await.unwrap().secret.unwrap();
        }
        let target = top_target_in(&env.catalog, account.id, TargetKind::File).await;
        let l = link_of(account.id, target, Some(Utc::now() - Duration::hours(1)));
        env.links.create_link(&l, limits, &audit_of(&l, AuditAction::Created)).await.unwrap();
        // What TTL does (moto never does it): the link's item alone goes.
        let key = |k: &str, v: String| (k.to_string(), AttributeValue::S(v));
        let keys = [key("pk", format!("LINK#{}", l.id)), key("sk", "LINK".into())];
        let table = &env.config.links_table;
        env.clients.dynamodb.delete_item().table_name(table).set_key(Some(keys.into())).send().await.unwrap();
        ended.push(l);
    }

    // audit-stream, as it starts (no queue, no HTTP client), given the batch twice (a retried batch).
    let stream = publinks_aws::runtime::link_records(&env.config).await.expect("audit-stream starts");
    let records: Vec<_> = ended.iter().enumerate().map(|(i, l)| ttl_removal(&format!("30{i}"), l)).collect();
    let batch: aws_lambda_events::event::dynamodb::Event =
        serde_json::from_value(serde_json::json!({ "Records": records })).unwrap();
    for _ in 0..2 {
        let response = audit_stream::handle(&stream, &batch).await;
        assert!(response.batch_item_failures.is_empty());
    }
    let far = Utc::now() + Duration::days(2);
    let pending = stores.webhooks.due_deliveries(far, 10).await.unwrap();
    assert_eq!(pending.len(), 1, "one delivery, for the account with a webhook: {pending:?}");
    assert!(pending[0].unqueued, "recorded for the sweep, with no queue message");
    let received = sqs.receive_message().queue_url(&url).max_number_of_messages(10).send().await.unwrap();
    assert_eq!(received.messages.unwrap_or_default().len(), 0, "audit-stream sends no message");
    assert!(requests.lock().unwrap().is_empty(), "nor anything to the endpoint");

    // The next scheduled sweep makes it at once, though it is not 10 minutes overdue.
    let jobs =
        LibraryJobs::new(library.clone(), Arc::new(publinks_media::ImageRenditions)).with_webhooks(webhooks.clone());
    let links: &dyn LinkStore = stores.links.as_ref();
    let input: serde_json::Value = serde_json::from_str(library_worker::SWEEP_INPUT).unwrap();
    let report = library_worker::invoke(&jobs, None, &webhooks, links, input.clone(), None).await.unwrap();
    assert_eq!(report, serde_json::json!({"attempted": 1, "expiring": 0}));
    let report = library_worker::invoke(&jobs, None, &webhooks, links, input, None).await.unwrap();
    assert_eq!(report, serde_json::json!({"attempted": 0, "expiring": 0}));
    let requests = requests.lock().unwrap().clone();
    assert_eq!(requests.len(), 1, "exactly one request reached the endpoint");
    let (headers, body) = &requests[0];
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
    assert_eq!(header("Publinks-Event"), "link.deleted_by_system");
    assert!(verify_signature(&secret, &header(SIGNATURE_HEADER), body, Utc::now()), "signed with the secret");
    let body: serde_json::Value = serde_json::from_str(body).unwrap();
    assert_eq!(body["type"], "link.deleted_by_system");
    assert_eq!(body["data"]["reason"], "expired");
    assert_eq!(body["data"]["link_id"], ended[0].id.to_string());
    assert_eq!(header("Publinks-Delivery"), body["id"].as_str().unwrap());
    let delivery = stores.webhooks.delivery(pending[0].id).await.unwrap().unwrap();
    assert_eq!((delivery.state, delivery.attempts, delivery.unqueued), (DeliveryState::Delivered, 1, false));
}
