//! What only the embedded store has, so these tests start it by name
//! ([`Backend::Embedded`]) whatever the run's backend:
//!
//! - its data directory: a restart keeps everything, a corrupt file is a
//!   clean start-up error (on AWS the state lives in the tables);
//! - its signed `/_blobs` URLs, which check their signature, expiry and
//!   content type themselves. On AWS those URLs are S3's presigned ones, which
//!   moto checks neither for signature nor expiry (see `infra/README.md`); the
//!   AWS adapters' side of them (the content type is signed, the URL expires)
//!   is tested in `tests/conformance/aws.rs`.
//!
//! The AWS run of this binary leaves this module out (the `aws-e2e` profile's
//! filter in `.config/nextest.toml`): it would only repeat the embedded run.

use publinks_e2e::{Backend, expect, spawn_app_on};
use publinks_local::{LocalApp, LocalConfig};
use reqwest::{Method, StatusCode};
use serde_json::json;

#[tokio::test]
async fn a_restart_keeps_everything_and_does_not_seed_again() {
    let app = spawn_app_on(Backend::Embedded).await;
    let token = app.admin();
    let made = app.send(Method::POST, "/api/folders", &token, json!({"name": "Kept"}), StatusCode::CREATED).await;
    let config = LocalConfig { data_dir: app.data_dir().to_path_buf(), base_url: app.base.clone(), seed_demo: true };
    let again = LocalApp::build(&config).await.expect("restarts on the same data");
    assert!(again.demo.is_none(), "an existing store is not seeded twice");
    assert_eq!(again.keys.jwt, app.keys.jwt, "the signing key survives");
    let actor = again.library.actor(app.demo.admin.id).await.unwrap().expect("the admin is still there");
    let id = made["id"].as_str().unwrap().parse().unwrap();
    let (folder, _) = again.library.folder(&actor, id).await.unwrap();
    assert_eq!(folder.name, "Kept");
}

#[tokio::test]
async fn a_corrupt_database_is_an_error_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("catalog.sqlite3"), b"this is not a database, just text padding it out".repeat(100))
        .unwrap();
    let config =
        LocalConfig { data_dir: dir.path().to_path_buf(), base_url: "http://127.0.0.1:1".into(), seed_demo: true };
    let err = LocalApp::build(&config).await.err().expect("refuses to start");
    assert!(err.to_string().contains("corrupt"), "{err}");

    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("keys.json"), b"{ not json").unwrap();
    let config =
        LocalConfig { data_dir: dir.path().to_path_buf(), base_url: "http://127.0.0.1:1".into(), seed_demo: true };
    let err = LocalApp::build(&config).await.err().expect("refuses to start");
    assert!(err.to_string().contains("keys.json"), "{err}");
}

#[tokio::test]
async fn an_upload_url_takes_only_its_content_type_and_its_own_signature() {
    let app = spawn_app_on(Backend::Embedded).await;
    let token = app.admin();
    let body = json!({"name": "a.txt", "content_type": "text/plain", "size": 5});
    let ticket = app.send(Method::POST, "/api/uploads", &token, body, StatusCode::CREATED).await;
    let url = ticket["url"].as_str().unwrap();
    let wrong_type = app.http.put(url).header("content-type", "image/png").body("hello").send().await.unwrap();
    assert_eq!(expect(wrong_type, StatusCode::FORBIDDEN).await["error"]["code"], "content_type_mismatch");
    let tampered = app.http.put(url.replace("sig=", "sig=A")).header("content-type", "text/plain").body("hello");
    assert_eq!(
        expect(tampered.send().await.unwrap(), StatusCode::FORBIDDEN).await["error"]["code"],
        "invalid_signature"
    );
    // Neither refused PUT stored anything.
    let complete = format!("/api/uploads/{}/complete", ticket["upload_id"].as_str().unwrap());
    let body = app.send(Method::POST, &complete, &token, json!(null), StatusCode::CONFLICT).await;
    assert_eq!(body["error"]["code"], "upload_incomplete");
}

#[tokio::test]
async fn unsigned_or_expired_blob_urls_are_refused() {
    let app = spawn_app_on(Backend::Embedded).await;
    let base = &app.base;
    let plain = app.http.get(format!("{base}/_blobs/accounts/x/uploads/y")).send().await.unwrap();
    expect(plain, StatusCode::BAD_REQUEST).await;
    let forged = format!("{base}/_blobs/accounts/x/uploads/y?op=get&exp=99999999999&name=a&sig=AAAA");
    assert_eq!(
        expect(app.http.get(forged).send().await.unwrap(), StatusCode::FORBIDDEN).await["error"]["code"],
        "invalid_signature"
    );
    let traversal = format!("{base}/_blobs/../keys.json?op=get&exp=99999999999&name=a&sig=AAAA");
    assert_ne!(app.http.get(traversal).send().await.unwrap().status(), StatusCode::OK);
}

#[test]
fn a_restart_mid_build_finishes_the_archives_left_unfinished() {
    use publinks_core::archive::readers;
    use publinks_core::domain::archives::{ArchiveRequest, Requester};
    use publinks_core::domain::model::{ArchiveState, UploadPurpose};
    use publinks_core::store::{ArchiveJobStore, ArchiveStore};
    let dir = tempfile::tempdir().unwrap();
    let config =
        LocalConfig { data_dir: dir.path().to_path_buf(), base_url: "http://127.0.0.1:1".into(), seed_demo: true };
    let texts: Vec<Vec<u8>> = (0..4)
        .map(|i| {
            (0..240_000).map(|n| format!("file {i}, line {n}: text that deflates\n")).collect::<String>().into_bytes()
        })
        .collect();

    // The first run, in a runtime of its own that stops (with every task in
    // it) as soon as the build is under way: the server stopping mid-build.
    let first = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let job = first.block_on(async {
        let app = LocalApp::build(&config).await.unwrap();
        let actor = app.library.actor(app.demo.as_ref().unwrap().admin.id).await.unwrap().unwrap();
        let folder = app.library.create_folder(&actor, None, "Big").await.unwrap();
        for (i, text) in texts.iter().enumerate() {
            let purpose = UploadPurpose::NewFile { folder_id: Some(folder.id), name: format!("{i}.txt") };
            app.library.import_file(&actor, purpose, "text/plain", text.clone()).await.unwrap();
        }
        let request = ArchiveRequest::Folder(Some(folder.id));
        let contents = app.library.archive_contents(&actor, &request, app.archives.settings()).await.unwrap();
        let job = app.archives.submit(&Requester::user(&actor), contents).await.unwrap();
        for _ in 0..2000 {
            if app.archives.user_job(&actor, job.id).await.unwrap().state == ArchiveState::Building {
                return job;
            }
            tokio::time::sleep(std::time::Duration::from_millis(2)).await;
        }
        panic!("the build never started");
    });
    first.shutdown_background();

    let second = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    second.block_on(async {
        let stopped = publinks_core::adapters::embedded::EmbeddedCatalog::open(&dir.path().join("catalog.sqlite3"))
            .unwrap()
            .archive_job(job.id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!((stopped.state, stopped.attempt), (ArchiveState::Building, 1), "left in the making");
        assert!(stopped.upload_id.is_some(), "with its upload open");

        let app = LocalApp::build(&config).await.unwrap();
        let publinks_core::domain::model::Downloader::User { user_id } = stopped.requested_by else {
            panic!("asked for by a user")
        };
        let actor = app.library.actor(user_id).await.unwrap().unwrap();
        let mut done = stopped.clone();
        for _ in 0..600 {
            done = app.archives.user_job(&actor, job.id).await.unwrap();
            if !done.is_open() {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        assert_eq!((done.state, done.attempt, done.failure.as_deref()), (ArchiveState::Ready, 2, None), "resumed");
        let blobs = publinks_core::adapters::embedded::DirectoryBlobStore::open(
            &dir.path().join("blobs"),
            publinks_core::adapters::embedded::BlobUrlSigner::new(app.keys.urls.clone(), "http://127.0.0.1:1"),
        )
        .unwrap();
        assert!(
            blobs.open_multiparts(&done.archive_key).await.unwrap().is_empty(),
            "the stopped attempt's upload is gone"
        );
        let expected = texts
            .iter()
            .enumerate()
            .map(|(i, t)| (format!("{i}.txt"), readers::digest(t)))
            .collect::<std::collections::BTreeMap<_, _>>();
        readers::verify(&dir.path().join("blobs").join(&done.archive_key), &expected).unwrap_or_else(|e| panic!("{e}"));
    });
}

#[tokio::test]
async fn a_signed_download_url_serves_one_byte_range_at_a_time() {
    let app = spawn_app_on(Backend::Embedded).await;
    let token = app.admin();
    let bytes: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
    let file = app.upload(&token, None, "film.bin", "application/octet-stream", &bytes).await;
    let path = format!("/api/files/{}/download", file["id"].as_str().unwrap());
    let res = app.request(Method::GET, &path, &token).send().await.unwrap();
    assert!(res.status().is_redirection(), "{}", res.status());
    let url = res.headers()["location"].to_str().unwrap().to_string();
    let get = |range: Option<&'static str>| {
        let mut req = app.http.get(&url);
        if let Some(r) = range {
            req = req.header("range", r);
        }
        async move { req.send().await.unwrap() }
    };

    let whole = get(None).await;
    assert_eq!(whole.status(), StatusCode::OK);
    assert_eq!(whole.headers()["accept-ranges"], "bytes");
    assert!(whole.bytes().await.unwrap() == bytes);

    for (range, from, to) in
        [("bytes=1000-1999", 1000, 2000), ("bytes=2999000-", 2_999_000, 3_000_000), ("bytes=-10", 2_999_990, 3_000_000)]
    {
        let part = get(Some(range)).await;
        assert_eq!(part.status(), StatusCode::PARTIAL_CONTENT, "{range}");
        let content_range = format!("bytes {}-{}/3000000", from, to - 1);
        assert_eq!(part.headers()["content-range"], content_range.as_str(), "{range}");
        assert_eq!(part.headers()["content-length"], (to - from).to_string().as_str());
        assert!(part.bytes().await.unwrap() == bytes[from..to], "{range}");
    }
    let past = get(Some("bytes=3000000-")).await;
    assert_eq!(past.status(), StatusCode::RANGE_NOT_SATISFIABLE);
    assert_eq!(past.headers()["content-range"], "bytes */3000000");
    assert_eq!(expect(past, StatusCode::RANGE_NOT_SATISFIABLE).await["error"]["code"], "range_not_satisfiable");
    let several = get(Some("bytes=0-1,5-6")).await;
    assert_eq!(several.status(), StatusCode::OK, "several ranges: the whole file");
    assert_eq!(several.bytes().await.unwrap().len(), bytes.len());
}
