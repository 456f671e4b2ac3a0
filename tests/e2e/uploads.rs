//! Uploads: the bytes of a completed version never change, whatever URL was
//! handed out; big files come in parts and are read in the background;
//! completion is idempotent and retryable. Everything runs on both backends.

use publinks_archive::readers;
use publinks_domain::library::LibrarySettings;
use publinks_e2e::{Backend, TestApp, expect, spawn_app, spawn_app_with};
use publinks_media::demo_png;
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
    let url = format!("{}{share}/api/files/{picture_id}/thumbnail", app.base);
    let thumb = publinks_e2e::rendition(&app.http, &url, Some(&session)).await;
    let original = image::load_from_memory(&picture).unwrap().to_rgba8();
    assert_eq!(thumb.dimensions(), original.dimensions());
    let off: u64 = thumb.as_raw().iter().zip(original.as_raw()).map(|(a, b)| u64::from(a.abs_diff(*b))).sum();
    assert!(off / thumb.as_raw().len() as u64 <= 4, "the preview is of the uploaded picture (lossy): {off}");

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

/// Settings that make a test's uploads multipart and read in the background:
/// 8 MiB parts, and everything above 1 MiB read by a library job.
fn small_parts() -> LibrarySettings {
    LibrarySettings { upload_part_bytes: 8 * MIB as u64, inline_ingest_bytes: MIB as u64, ..Default::default() }
}

/// Follows an upload until it is no longer open or ingesting.
async fn settled_upload(app: &TestApp, id: &str) -> Value {
    for _ in 0..600 {
        let upload = app.get(&format!("/api/uploads/{id}"), &app.admin(), StatusCode::OK).await;
        if !matches!(upload["state"].as_str(), Some("open" | "ingesting")) {
            return upload;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("the upload {id} never settled");
}

#[tokio::test]
async fn a_big_upload_comes_in_parts_is_read_in_the_background_and_completes_once() {
    let app = spawn_app_with(Backend::from_env(), small_parts()).await;
    let admin = app.admin();
    let bytes = noise(64 * MIB + 1234, 7);
    let body = json!({"name": "big.bin", "content_type": "application/octet-stream", "size": bytes.len()});
    let ticket = app.send(Method::POST, "/api/uploads", &admin, body, StatusCode::CREATED).await;
    let id = ticket["upload_id"].as_str().unwrap().to_string();
    let complete = format!("/api/uploads/{id}/complete");
    let parts = ticket["parts"].as_array().unwrap().clone();
    assert_eq!((parts.len(), ticket["part_size"].as_u64()), (9, Some(8 * MIB as u64)), "{ticket}");
    let slice = |p: &Value| {
        let (offset, size) = (p["offset"].as_u64().unwrap() as usize, p["size"].as_u64().unwrap() as usize);
        bytes[offset..offset + size].to_vec()
    };
    assert_eq!(parts[8]["size"], 1234, "the last part holds the rest");

    // In any order; part 3 left out, then sent one byte short.
    for part in parts.iter().rev().filter(|p| p["number"] != 3) {
        let res = put(&app, &ticket, part["url"].as_str().unwrap(), slice(part)).await;
        assert_eq!(res.status(), StatusCode::OK, "part {}", part["number"]);
    }
    let missing = app.send(Method::POST, &complete, &admin, Value::Null, StatusCode::CONFLICT).await;
    assert_eq!(missing["error"]["code"], "upload_incomplete");
    assert!(missing["error"]["message"].as_str().unwrap().contains("parts 3 "), "{missing}");
    let mut short = slice(&parts[2]);
    short.pop();
    // The embedded store refuses a part of another size at once; S3 (moto
    // checks no signature) takes it, and the completion refuses it.
    let taken = put(&app, &ticket, parts[2]["url"].as_str().unwrap(), short).await.status().is_success();
    let refused = app.send(Method::POST, &complete, &admin, Value::Null, StatusCode::CONFLICT).await;
    let message = refused["error"]["message"].as_str().unwrap();
    if taken {
        assert_eq!(refused["error"]["code"], "upload_size_mismatch");
        assert!(message.starts_with("part 3 holds 8388607 bytes but must hold exactly 8388608"), "{message}");
    } else {
        assert_eq!(refused["error"]["code"], "upload_incomplete");
    }
    let still = app.get(&format!("/api/uploads/{id}"), &admin, StatusCode::OK).await;
    assert_eq!((still["state"].as_str(), still["parts"].as_array().unwrap().len()), (Some("open"), 9));
    let res = put(&app, &ticket, still["parts"][2]["url"].as_str().unwrap(), slice(&parts[2])).await;
    assert_eq!(res.status(), StatusCode::OK);

    let accepted = app.send(Method::POST, &complete, &admin, Value::Null, StatusCode::ACCEPTED).await;
    assert!(matches!(accepted["state"].as_str(), Some("ingesting" | "done")), "{accepted}");
    assert!(accepted["parts"].as_array().unwrap().is_empty() && accepted.get("url").is_none(), "no more URLs");
    let done = settled_upload(&app, &id).await;
    assert_eq!(done["state"], "done", "{done}");
    let file_id = done["file_id"].as_str().unwrap();
    let file = app.get(&format!("/api/files/{file_id}"), &admin, StatusCode::OK).await;
    let v = &file["current_version"];
    assert_eq!(v["size"].as_u64(), Some(bytes.len() as u64));
    assert_eq!(v["crc32"].as_u64(), Some(crc32fast::hash(&bytes) as u64), "the CRC-32 of every byte");
    assert_eq!(v["sha256"], sha256(&bytes));
    let again = app.send(Method::POST, &complete, &admin, Value::Null, StatusCode::OK).await;
    assert_eq!(again["id"], file_id, "a retried completion answers with the same file");
    assert_eq!(again["current_version"], file["current_version"]);
    let top = app.get("/api/folders/root/files", &admin, StatusCode::OK).await;
    assert_eq!(top["items"].as_array().unwrap().iter().filter(|f| f["name"] == "big.bin").count(), 1);
    assert!(follow(&app, &format!("/api/files/{file_id}/download"), &admin).await == bytes, "the bytes");

    // Completed: no part URL changes the file any more.
    let res = try_put(&app, &ticket, parts[0]["url"].as_str().unwrap(), noise(8 * MIB, 8)).await;
    assert!(res.map(|r| r.status().is_client_error()).unwrap_or(true), "a part PUT after completion is refused");
    let after = app.get(&format!("/api/files/{file_id}"), &admin, StatusCode::OK).await;
    assert_eq!(after["current_version"], file["current_version"]);
}

#[tokio::test]
async fn racing_completions_of_one_upload_make_one_file() {
    let app = spawn_app_with(Backend::from_env(), small_parts()).await;
    let admin = app.admin();
    // Three rounds of eight completions at once, read within the request and by a job.
    let rounds = [("small.txt", 1000), ("parts.bin", 9 * MIB)].into_iter().flat_map(|kind| [kind; 3]);
    for (round, (kind, size)) in rounds.enumerate() {
        let name = format!("{round}-{kind}");
        let name = name.as_str();
        let bytes = noise(size, round as u32);
        let body = json!({"name": name, "content_type": "application/octet-stream", "size": size});
        let ticket = app.send(Method::POST, "/api/uploads", &admin, body, StatusCode::CREATED).await;
        for part in ticket["parts"].as_array().unwrap() {
            let (offset, len) = (part["offset"].as_u64().unwrap() as usize, part["size"].as_u64().unwrap() as usize);
            put(&app, &ticket, part["url"].as_str().unwrap(), bytes[offset..offset + len].to_vec()).await;
        }
        let complete = format!("{}/api/uploads/{}/complete", app.base, ticket["upload_id"].as_str().unwrap());
        let racing: Vec<_> = (0..8)
            .map(|_| {
                let (http, url, token) = (app.http.clone(), complete.clone(), admin.clone());
                tokio::spawn(async move { http.post(url).bearer_auth(token).send().await.unwrap().status() })
            })
            .collect();
        let mut statuses = Vec::new();
        for r in racing {
            statuses.push(r.await.unwrap().as_u16());
        }
        assert!(statuses.iter().all(|s| [200, 201, 202, 409].contains(s)), "{name}: {statuses:?}");
        let done = settled_upload(&app, ticket["upload_id"].as_str().unwrap()).await;
        assert_eq!(done["state"], "done", "{name}: {done}");
        let top = app.get("/api/folders/root/files?limit=200", &admin, StatusCode::OK).await;
        let made: Vec<_> = top["items"].as_array().unwrap().iter().filter(|f| f["name"] == name).collect();
        assert_eq!(made.len(), 1, "{name}: one file, whatever the race: {statuses:?}");
        assert_eq!(made[0]["current_version"]["crc32"].as_u64(), Some(crc32fast::hash(&bytes) as u64));
    }
}

#[tokio::test]
async fn a_new_version_uploaded_in_parts_is_recorded_once() {
    let app = spawn_app_with(Backend::from_env(), small_parts()).await;
    let admin = app.admin();
    let file = app.upload(&admin, None, "v.bin", "application/octet-stream", b"first").await;
    let file_id = file["id"].as_str().unwrap();
    let bytes = noise(9 * MIB, 4);
    let body = json!({"file_id": file_id, "content_type": "application/octet-stream", "size": bytes.len()});
    let ticket = app.send(Method::POST, "/api/uploads", &admin, body, StatusCode::CREATED).await;
    for part in ticket["parts"].as_array().unwrap() {
        let (offset, len) = (part["offset"].as_u64().unwrap() as usize, part["size"].as_u64().unwrap() as usize);
        put(&app, &ticket, part["url"].as_str().unwrap(), bytes[offset..offset + len].to_vec()).await;
    }
    let id = ticket["upload_id"].as_str().unwrap();
    app.send(Method::POST, &format!("/api/uploads/{id}/complete"), &admin, Value::Null, StatusCode::ACCEPTED).await;
    assert_eq!(settled_upload(&app, id).await["file_id"], file_id);
    // The job runs again (a queue delivers at least once): nothing changes.
    let upload_id = id.parse().unwrap();
    app.library.ingest_upload(upload_id).await.unwrap();
    let versions = app.get(&format!("/api/files/{file_id}/versions"), &admin, StatusCode::OK).await;
    assert_eq!(versions["items"].as_array().unwrap().len(), 2, "{versions}");
    let current = app.get(&format!("/api/files/{file_id}"), &admin, StatusCode::OK).await;
    assert_eq!(current["current_version"]["sha256"], sha256(&bytes));
}

/// The biggest upload measured: `PUBLINKS_BIG_UPLOAD_MIB` MiB (default
/// 1024) with the default settings (64 MiB parts, read by a library job),
/// timed from the first PUT to the file. Run by hand, on either backend:
/// `cargo nextest run -p publinks-e2e --test e2e --run-ignored only a_big_upload_is_timed --no-capture`
/// (checksums and hashing are optimised in debug builds too).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "moves a GiB or more; run by hand to measure"]
async fn a_big_upload_is_timed() {
    use sha2::Digest;
    let mib: usize = std::env::var("PUBLINKS_BIG_UPLOAD_MIB").ok().and_then(|v| v.parse().ok()).unwrap_or(1024);
    let size = mib * MIB;
    let app = spawn_app_with(Backend::from_env(), LibrarySettings::default()).await;
    let admin = app.admin();
    let body = json!({"name": "big.bin", "content_type": "application/octet-stream", "size": size});
    let ticket = app.send(Method::POST, "/api/uploads", &admin, body, StatusCode::CREATED).await;
    let id = ticket["upload_id"].as_str().unwrap().to_string();
    let (mut crc, mut sha) = (crc32fast::Hasher::new(), sha2::Sha256::new());
    let started = std::time::Instant::now();
    for part in ticket["parts"].as_array().unwrap() {
        let len = part["size"].as_u64().unwrap() as usize;
        let bytes = noise(len, part["number"].as_u64().unwrap() as u32);
        crc.update(&bytes);
        sha.update(&bytes);
        let res = put(&app, &ticket, part["url"].as_str().unwrap(), bytes).await;
        assert_eq!(res.status(), StatusCode::OK);
    }
    let sent = started.elapsed();
    let completing = std::time::Instant::now();
    let complete = format!("/api/uploads/{id}/complete");
    let res = app.request(Method::POST, &complete, &admin).send().await.unwrap();
    let answered = completing.elapsed();
    assert!(res.status().is_success(), "{}", res.status());
    let done = settled_upload(&app, &id).await;
    let finished = completing.elapsed();
    assert_eq!(done["state"], "done", "{done}");
    let file = app.get(&format!("/api/files/{}", done["file_id"].as_str().unwrap()), &admin, StatusCode::OK).await;
    assert_eq!(file["current_version"]["crc32"].as_u64(), Some(crc.finalize() as u64));
    assert_eq!(file["current_version"]["sha256"], format!("{:x}", sha.finalize()));
    println!(
        "{mib} MiB in {} parts on {:?}: PUT {:.1} s; completion answered {} in {:.2} s; done (read, recorded) after {:.1} s",
        ticket["parts"].as_array().unwrap().len(),
        Backend::from_env(),
        sent.as_secs_f64(),
        res.status(),
        answered.as_secs_f64(),
        finished.as_secs_f64()
    );
}
