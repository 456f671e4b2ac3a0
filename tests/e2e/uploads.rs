//! Uploads: the bytes of a completed version never change, whatever URL was
//! handed out; big files come in parts and are read in the background;
//! completion is idempotent and retryable. Everything runs on both backends.

use publinks_core::archive::readers;
use publinks_core::media::demo_png;
use publinks_e2e::{TestApp, expect, spawn_app};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::collections::BTreeMap;

const MIB: usize = 1024 * 1024;

/// Bytes that do not compress, reproducible from `seed`.
fn noise(len: usize, seed: u32) -> Vec<u8> {
    let mut x = seed.wrapping_mul(2_654_435_761).max(1);
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}

fn sha256(bytes: &[u8]) -> String {
    use sha2::Digest;
    format!("{:x}", sha2::Sha256::digest(bytes))
}

/// PUTs `bytes` to a URL an upload handed out, with the headers it named.
async fn try_put(app: &TestApp, ticket: &Value, url: &str, bytes: Vec<u8>) -> reqwest::Result<reqwest::Response> {
    let mut req = app.http.put(url).body(bytes);
    for (name, value) in ticket["headers"].as_object().unwrap() {
        req = req.header(name, value.as_str().unwrap());
    }
    req.send().await
}

async fn put(app: &TestApp, ticket: &Value, url: &str, bytes: Vec<u8>) -> reqwest::Response {
    try_put(app, ticket, url, bytes).await.unwrap()
}

/// Every URL the upload handed out: its parts', and the one-part `url`.
fn urls(ticket: &Value) -> Vec<String> {
    let mut out: Vec<String> = ticket["parts"]
        .as_array()
        .map(|parts| parts.iter().map(|p| p["url"].as_str().unwrap().to_string()).collect())
        .unwrap_or_default();
    out.push(ticket["url"].as_str().unwrap().to_string());
    out
}

/// Follows a download redirect and returns the bytes.
async fn follow(app: &TestApp, path: &str, auth: &str) -> Vec<u8> {
    let res = app.http.get(format!("{}{path}", app.base)).bearer_auth(auth).send().await.unwrap();
    assert!(res.status().is_redirection(), "{path}: {}", res.status());
    let url = res.headers()["location"].to_str().unwrap().to_string();
    let res = app.http.get(&url).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK, "{url}");
    res.bytes().await.unwrap().to_vec()
}

/// Starts an upload of `bytes` as a new file in `folder`, PUTs them and completes it.
async fn upload_in(app: &TestApp, folder: &str, name: &str, content_type: &str, bytes: &[u8]) -> (Value, Value) {
    let admin = app.admin();
    let body = json!({"name": name, "folder_id": folder, "content_type": content_type, "size": bytes.len()});
    let ticket = app.send(Method::POST, "/api/uploads", &admin, body, StatusCode::CREATED).await;
    let res = put(app, &ticket, ticket["url"].as_str().unwrap(), bytes.to_vec()).await;
    assert_eq!(res.status(), StatusCode::OK, "the one-part upload's PUT");
    let complete = format!("/api/uploads/{}/complete", ticket["upload_id"].as_str().unwrap());
    let file = app.send(Method::POST, &complete, &admin, Value::Null, StatusCode::CREATED).await;
    (ticket, file)
}

#[tokio::test]
async fn a_put_after_completion_changes_nothing_a_download_a_thumbnail_or_an_archive_serves() {
    let app = spawn_app().await;
    let admin = app.admin();
    let folder = app.send(Method::POST, "/api/folders", &admin, json!({"name": "Final"}), StatusCode::CREATED).await;
    let folder = folder["id"].as_str().unwrap().to_string();
    // Past the size from which archives copy files server-side, from the CRC-32 recorded at upload.
    let film = noise(17 * MIB, 1);
    let picture = demo_png(40, 30, 1);
    let (film_ticket, film_file) = upload_in(&app, &folder, "film.mp4", "video/mp4", &film).await;
    let (picture_ticket, picture_file) = upload_in(&app, &folder, "picture.png", "image/png", &picture).await;

    // Whoever kept the upload URLs tries to replace the bytes, with other
    // bytes of the same size and with more.
    for (ticket, len) in [(&film_ticket, film.len()), (&picture_ticket, picture.len())] {
        for url in urls(ticket) {
            for forged in [noise(len, 99), noise(len + 1000, 98)] {
                // A server may refuse before reading the body and close the connection.
                if let Ok(res) = try_put(&app, ticket, &url, forged).await {
                    assert!(
                        res.status().is_client_error() || res.status().is_success(),
                        "refused or ignored, never a server error: {}",
                        res.status()
                    );
                }
            }
        }
    }
    // A retried completion does not read the forged bytes either.
    let complete = format!("/api/uploads/{}/complete", film_ticket["upload_id"].as_str().unwrap());
    let res = app.request(Method::POST, &complete, &admin).send().await.unwrap();
    assert!(res.status().is_success() || res.status() == StatusCode::NOT_FOUND, "{}", res.status());

    let film_id = film_file["id"].as_str().unwrap();
    let picture_id = picture_file["id"].as_str().unwrap();
    assert!(follow(&app, &format!("/api/files/{film_id}/download"), &admin).await == film, "the download");
    let versions = app.get(&format!("/api/files/{film_id}/versions"), &admin, StatusCode::OK).await;
    assert_eq!(versions["items"].as_array().unwrap().len(), 1, "no new version appeared");
    let described = app.get(&format!("/api/files/{film_id}"), &admin, StatusCode::OK).await;
    assert_eq!(described["current_version"]["sha256"], sha256(&film), "the record still matches the bytes");

    let link = json!({"target": {"kind": "folder", "id": folder}});
    let link = app.send(Method::POST, "/api/links", &admin, link, StatusCode::CREATED).await;
    let share = link["url"].as_str().unwrap().strip_prefix(&app.base).unwrap().to_string();
    let session = app.http.post(format!("{}{share}/api/session", app.base)).send().await.unwrap();
    let session = expect(session, StatusCode::CREATED).await["token"].as_str().unwrap().to_string();
    let shared = follow(&app, &format!("{share}/api/files/{picture_id}/download"), &session).await;
    assert_eq!(shared, picture, "the visitor's download");
    let thumb = app.http.get(format!("{}{share}/api/files/{picture_id}/thumbnail", app.base)).bearer_auth(&session);
    let thumb = thumb.send().await.unwrap();
    assert_eq!(thumb.status(), StatusCode::OK);
    let thumb = image::load_from_memory(&thumb.bytes().await.unwrap()).unwrap();
    let original = image::load_from_memory(&picture).unwrap();
    assert_eq!(thumb.to_rgba8(), original.to_rgba8(), "the preview is of the uploaded picture");

    let job = app.http.post(format!("{}{share}/api/archives", app.base)).bearer_auth(&session).json(&json!({}));
    let job = expect(job.send().await.unwrap(), StatusCode::ACCEPTED).await;
    let path = format!("{share}/api/archives/{}", job["id"].as_str().unwrap());
    let mut status = Value::Null;
    for _ in 0..600 {
        status = expect(
            app.http.get(format!("{}{path}", app.base)).bearer_auth(&session).send().await.unwrap(),
            StatusCode::OK,
        )
        .await;
        if !matches!(status["status"].as_str(), Some("pending" | "building")) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(status["status"], "ready", "{status}");
    let zip = follow(&app, &format!("{path}/download"), &session).await;
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("a.zip");
    std::fs::write(&archive, &zip).unwrap();
    let expected = BTreeMap::from([
        ("film.mp4".to_string(), readers::digest(&film)),
        ("picture.png".to_string(), readers::digest(&picture)),
    ]);
    readers::verify(&archive, &expected).unwrap_or_else(|e| panic!("{e}"));
}
