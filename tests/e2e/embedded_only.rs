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
