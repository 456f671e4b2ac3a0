//! What only the embedded store has, so these tests start it by name
//! ([`Backend::Embedded`]) whatever the run's backend:
//!
//! - its data directory: a restart keeps everything, a corrupt file is a
//!   clean start-up error (on AWS the state lives in the tables);
//! - its signed `/_blobs` URLs, which check their signature, expiry and
//!   part size themselves. On AWS those URLs are S3's presigned ones, which
//!   moto checks neither for signature nor expiry (see `infra/README.md`); the
//!   AWS adapters' side of them (the length is signed, the URL expires) is
//!   tested in `tests/conformance/aws.rs`;
//! - its sweep of uploads (DynamoDB's TTL and the bucket's lifecycle rule do
//!   that in AWS; moto runs neither).
//!
//! The AWS run of this binary leaves this module out (the `aws-e2e` profile's
//! filter in `.config/nextest.toml`): it would only repeat the embedded run.

use publinks_domain::library::LibrarySettings;
use publinks_e2e::{Backend, expect, spawn_app_on, spawn_app_with};
use publinks_local::{LocalApp, LocalConfig};
use reqwest::{Method, StatusCode};
use serde_json::json;

#[tokio::test]
async fn a_restart_keeps_everything_and_does_not_seed_again() {
    let app = spawn_app_on(Backend::Embedded).await;
    let token = app.admin();
    let made = app.send(Method::POST, "/api/folders", &token, json!({"name": "Kept"}), StatusCode::CREATED).await;
    let config = LocalConfig {
        data_dir: app.data_dir().to_path_buf(),
        base_url: app.base.clone(),
        seed_demo: true,
        share_demo: false,
        clock: publinks_domain::clock::system(),
        webhook_policy: publinks_domain::webhooks::AddressPolicy::AllowLoopback,
    };
    let again = LocalApp::build(&config).await.expect("restarts on the same data");
    assert!(!again.seeded, "an existing store is not seeded twice");
    let found = again.demo.as_ref().expect("the demo is found again");
    assert_eq!(
        (found.admin.id, found.viewer.id, found.restricted.id),
        (app.demo.admin.id, app.demo.viewer.id, app.demo.restricted.id)
    );
    assert_eq!(found.granted_folder, app.demo.granted_folder);
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
    let config = LocalConfig {
        data_dir: dir.path().to_path_buf(),
        base_url: "http://127.0.0.1:1".into(),
        seed_demo: true,
        share_demo: false,
        clock: publinks_domain::clock::system(),
        webhook_policy: publinks_domain::webhooks::AddressPolicy::AllowLoopback,
    };
    let err = LocalApp::build(&config).await.err().expect("refuses to start");
    assert!(err.to_string().contains("corrupt"), "{err}");

    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("keys.json"), b"{ not json").unwrap();
    let config = LocalConfig {
        data_dir: dir.path().to_path_buf(),
        base_url: "http://127.0.0.1:1".into(),
        seed_demo: true,
        share_demo: false,
        clock: publinks_domain::clock::system(),
        webhook_policy: publinks_domain::webhooks::AddressPolicy::AllowLoopback,
    };
    let err = LocalApp::build(&config).await.err().expect("refuses to start");
    assert!(err.to_string().contains("keys.json"), "{err}");
}

#[tokio::test]
async fn a_part_url_takes_only_its_own_size_and_signature() {
    let app = spawn_app_on(Backend::Embedded).await;
    let token = app.admin();
    let body = json!({"name": "a.txt", "content_type": "text/plain", "size": 5});
    let ticket = app.send(Method::POST, "/api/uploads", &token, body, StatusCode::CREATED).await;
    let url = ticket["url"].as_str().unwrap();
    let put = |body: &'static str| app.http.put(url).header("content-type", "text/plain").body(body);
    let too_big = expect(put("hello, world").send().await.unwrap(), StatusCode::PAYLOAD_TOO_LARGE).await;
    assert_eq!(too_big["error"]["code"], "part_too_large");
    assert!(chunked_put(url, &["hel", "lo, ", "world"]).await.starts_with("HTTP/1.1 413"), "no length announced");
    assert_eq!(
        expect(put("hell").send().await.unwrap(), StatusCode::BAD_REQUEST).await["error"]["code"],
        "part_too_small"
    );
    let tampered = app.http.put(url.replace("sig=", "sig=A")).header("content-type", "text/plain").body("hello");
    assert_eq!(
        expect(tampered.send().await.unwrap(), StatusCode::FORBIDDEN).await["error"]["code"],
        "invalid_signature"
    );
    let bigger = url.replace("size=5", "size=50");
    let forged = app.http.put(bigger).body("hello, world");
    assert_eq!(expect(forged.send().await.unwrap(), StatusCode::FORBIDDEN).await["error"]["code"], "invalid_signature");
    // No refused PUT stored anything.
    let complete = format!("/api/uploads/{}/complete", ticket["upload_id"].as_str().unwrap());
    let body = app.send(Method::POST, &complete, &token, json!(null), StatusCode::CONFLICT).await;
    assert_eq!(body["error"]["code"], "upload_incomplete");

    // The content type is the one declared at the start, whatever a PUT says.
    expect(app.http.put(url).header("content-type", "image/png").body("hello").send().await.unwrap(), StatusCode::OK)
        .await;
    let file = app.send(Method::POST, &complete, &token, json!(null), StatusCode::CREATED).await;
    let res = app.request(Method::GET, &format!("/api/files/{}/download", file["id"].as_str().unwrap()), &token);
    let location = res.send().await.unwrap().headers()["location"].to_str().unwrap().to_string();
    let got = app.http.get(location).send().await.unwrap();
    assert_eq!(got.headers()["content-type"], "text/plain");
    assert_eq!(got.bytes().await.unwrap().as_ref(), b"hello");
    let after = expect(put("HELLO").send().await.unwrap(), StatusCode::NOT_FOUND).await;
    assert_eq!(after["error"]["code"], "no_such_upload", "completed: the URL takes nothing more");
}

/// PUTs `chunks` to `url` with chunked transfer encoding (no length
/// announced up front); returns the response's status line and headers.
async fn chunked_put(url: &str, chunks: &[&str]) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let url = reqwest::Url::parse(url).unwrap();
    let mut tcp = tokio::net::TcpStream::connect((url.host_str().unwrap(), url.port().unwrap())).await.unwrap();
    let target = format!("{}?{}", url.path(), url.query().unwrap_or(""));
    let mut request = format!("PUT {target} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n");
    for chunk in chunks {
        request.push_str(&format!("{:x}\r\n{chunk}\r\n", chunk.len()));
    }
    request.push_str("0\r\n\r\n");
    tcp.write_all(request.as_bytes()).await.unwrap();
    let mut head = vec![0u8; 1024];
    let n = tcp.read(&mut head).await.unwrap();
    String::from_utf8_lossy(&head[..n]).into_owned()
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
    use publinks_archive::readers;
    use publinks_domain::archives::{ArchiveRequest, Requester};
    use publinks_domain::model::{ArchiveState, UploadPurpose};
    use publinks_domain::store::{ArchiveJobStore, ArchiveStore};
    let dir = tempfile::tempdir().unwrap();
    let config = LocalConfig {
        data_dir: dir.path().to_path_buf(),
        base_url: "http://127.0.0.1:1".into(),
        seed_demo: true,
        share_demo: false,
        clock: publinks_domain::clock::system(),
        webhook_policy: publinks_domain::webhooks::AddressPolicy::AllowLoopback,
    };
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
        let stopped = publinks_embedded::EmbeddedCatalog::open(&dir.path().join("catalog.sqlite3"))
            .unwrap()
            .archive_job(job.id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!((stopped.state, stopped.attempt), (ArchiveState::Building, 1), "left in the making");
        assert!(stopped.upload_id.is_some(), "with its upload open");

        let app = LocalApp::build(&config).await.unwrap();
        let publinks_domain::model::Downloader::User { user_id } = stopped.requested_by else {
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
        let blobs = publinks_embedded::DirectoryBlobStore::open(
            &dir.path().join("blobs"),
            publinks_embedded::BlobUrlSigner::new(app.keys.urls.clone(), "http://127.0.0.1:1"),
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

#[tokio::test]
async fn the_sweep_drops_abandoned_uploads_and_forgets_finished_ones() {
    let settings = LibrarySettings { upload_part_bytes: 5 << 20, ..Default::default() };
    let app = spawn_app_with(Backend::Embedded, settings).await;
    let token = app.admin();
    let body = json!({"name": "left.bin", "content_type": "application/octet-stream", "size": 6 << 20});
    let abandoned = app.send(Method::POST, "/api/uploads", &token, body, StatusCode::CREATED).await;
    let part = |n: usize| abandoned["parts"][n]["url"].as_str().unwrap().to_string();
    let res = app.http.put(part(0)).body(vec![1u8; 5 << 20]).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let body = json!({"name": "kept.txt", "content_type": "text/plain", "size": 4});
    let finished = app.send(Method::POST, "/api/uploads", &token, body, StatusCode::CREATED).await;
    app.http.put(finished["url"].as_str().unwrap()).body("kept").send().await.unwrap();
    let finished = format!("/api/uploads/{}", finished["upload_id"].as_str().unwrap());
    let file = app.send(Method::POST, &format!("{finished}/complete"), &token, json!(null), StatusCode::CREATED).await;
    let parts_dir = app.data_dir().join("blobs/.uploads");
    assert_eq!(std::fs::read_dir(&parts_dir).unwrap().count(), 1, "the abandoned upload's parts");

    let now = chrono::Utc::now();
    assert_eq!(app.local.sweep_uploads(now).await.unwrap(), 0, "nothing is due yet");
    assert_eq!(app.local.sweep_uploads(now + chrono::Duration::hours(1)).await.unwrap(), 1, "past its window");
    assert_eq!(std::fs::read_dir(&parts_dir).unwrap().count(), 0, "its parts are gone");
    let id = abandoned["upload_id"].as_str().unwrap();
    app.get(&format!("/api/uploads/{id}"), &token, StatusCode::NOT_FOUND).await;
    let late = app.http.put(part(1)).body(vec![2u8; 1 << 20]).send().await.unwrap();
    assert_eq!(expect(late, StatusCode::NOT_FOUND).await["error"]["code"], "no_such_upload");

    app.get(&finished, &token, StatusCode::OK).await;
    assert_eq!(app.local.sweep_uploads(now + chrono::Duration::days(2)).await.unwrap(), 1, "a day after it finished");
    app.get(&finished, &token, StatusCode::NOT_FOUND).await;
    let id = file["id"].as_str().unwrap();
    app.get(&format!("/api/files/{id}"), &token, StatusCode::OK).await;
    let res = app.request(Method::GET, &format!("/api/files/{id}/download"), &token).send().await.unwrap();
    let location = res.headers()["location"].to_str().unwrap().to_string();
    assert_eq!(app.http.get(location).send().await.unwrap().bytes().await.unwrap().as_ref(), b"kept");
}
