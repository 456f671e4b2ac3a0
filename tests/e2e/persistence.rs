//! The embedded store survives restarts and refuses corrupt data cleanly.

use publinks_e2e::spawn_app;
use publinks_local::{LocalApp, LocalConfig};
use reqwest::{Method, StatusCode};
use serde_json::json;

#[tokio::test]
async fn a_restart_keeps_everything_and_does_not_seed_again() {
    let app = spawn_app().await;
    let token = app.admin();
    let made = app.send(Method::POST, "/api/folders", &token, json!({"name": "Kept"}), StatusCode::CREATED).await;
    let config =
        LocalConfig { data_dir: app.data_dir.path().to_path_buf(), base_url: app.base.clone(), seed_demo: true };
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
