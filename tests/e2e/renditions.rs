//! Preview renditions: made once by the library job after an upload, stored
//! beside the version and deleted with it, served only through a session of
//! a link that reaches the file, kept privately by the browser alone.

use publinks_domain::renditions::{RenditionSize, rendition_key, rendition_keys, renditions_asked_key};
use publinks_e2e::{TestApp, expect, rendition, spawn_app};
use publinks_media::demo_jpeg_with_exif;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

async fn visitor_session(app: &TestApp, target: Value) -> (String, String) {
    let link = json!({"target": target});
    let link = app.send(Method::POST, "/api/links", &app.admin(), link, StatusCode::CREATED).await;
    let share = link["url"].as_str().unwrap().strip_prefix(&app.base).unwrap().to_string();
    let session = app.http.post(format!("{}{share}/api/session", app.base)).send().await.unwrap();
    let session = expect(session, StatusCode::CREATED).await["token"].as_str().unwrap().to_string();
    (share, session)
}

#[tokio::test]
async fn an_image_gets_webp_renditions_once_served_privately_through_its_links_and_deleted_with_it() {
    let app = spawn_app().await;
    let admin = app.admin();
    let spring = app.folder_id(&["Campaigns", "Spring 2026"]).await;
    let photo = demo_jpeg_with_exif(3000, 2000, 4, "Big Cam");
    let file = app.upload(&admin, Some(&spring), "big.jpg", "image/jpeg", &photo).await;
    let id = file["id"].as_str().unwrap();
    let (share, session) = visitor_session(&app, json!({"kind": "folder", "id": spring})).await;

    let url = |kind: &str| format!("{}{share}/api/files/{id}/{kind}", app.base);
    let grid = rendition(&app.http, &url("thumbnail"), Some(&session)).await;
    let large = rendition(&app.http, &url("preview"), Some(&session)).await;
    assert_eq!((grid.dimensions(), large.dimensions()), ((400, 267), (2048, 1365)));
    let size = |kind: &'static str| {
        let req = app.http.get(url(kind)).bearer_auth(&session);
        async move { req.send().await.unwrap().bytes().await.unwrap().len() }
    };
    let (grid_bytes, large_bytes) = (size("thumbnail").await, size("preview").await);
    eprintln!("original JPEG {} B; grid WebP {grid_bytes} B; large WebP {large_bytes} B", photo.len());
    assert!(large_bytes < photo.len() && grid_bytes < large_bytes);

    // The same checks as downloads: a session of a link elsewhere sees nothing of it.
    let other = json!({"name": "Elsewhere"});
    let other = app.send(Method::POST, "/api/folders", &admin, other, StatusCode::CREATED).await;
    let (other_share, other_session) = visitor_session(&app, json!({"kind": "folder", "id": other["id"]})).await;
    for kind in ["thumbnail", "preview"] {
        let res = app.http.get(format!("{}{other_share}/api/files/{id}/{kind}", app.base)).bearer_auth(&other_session);
        expect(res.send().await.unwrap(), StatusCode::NOT_FOUND).await;
    }

    // Beside the version; gone with the file.
    let stored = app.library.catalog().file(id.parse().unwrap()).await.unwrap().unwrap();
    let blob_key = stored.current.blob_key;
    for size in RenditionSize::ALL {
        assert!(app.blob_exists(&rendition_key(&blob_key, size)).await, "{size:?}");
    }
    app.send(Method::DELETE, &format!("/api/files/{id}"), &admin, Value::Null, StatusCode::NO_CONTENT).await;
    for key in rendition_keys(&blob_key).iter().chain([&blob_key]) {
        assert!(!app.blob_exists(key).await, "{key} went with the file");
    }
}

#[tokio::test]
async fn a_version_without_renditions_has_them_asked_for_by_a_view_at_most_once_an_hour() {
    let app = spawn_app().await;
    let admin = app.admin();
    let spring = app.folder_id(&["Campaigns", "Spring 2026"]).await;
    let photo = demo_jpeg_with_exif(1200, 800, 4, "Old Cam");
    let file = app.upload(&admin, Some(&spring), "old.jpg", "image/jpeg", &photo).await;
    let id = file["id"].as_str().unwrap();
    let (share, session) = visitor_session(&app, json!({"kind": "folder", "id": spring})).await;
    let url = |kind: &str| format!("{}{share}/api/files/{id}/{kind}", app.base);
    // Both made (the job writes one after the other) before they are taken away.
    rendition(&app.http, &url("preview"), Some(&session)).await;
    rendition(&app.http, &url("thumbnail"), Some(&session)).await;
    let stored = app.library.catalog().file(id.parse().unwrap()).await.unwrap().unwrap();
    let blob_key = stored.current.blob_key;
    let forget = || async {
        for size in RenditionSize::ALL {
            app.delete_blob(&rendition_key(&blob_key, size)).await;
        }
    };
    let status = || async { app.http.get(url("thumbnail")).bearer_auth(&session).send().await.unwrap().status() };

    // The upload asked for them: views meanwhile ask nothing more.
    assert!(app.blob_exists(&renditions_asked_key(&blob_key)).await, "the upload's request is noted");
    // A version stored before renditions were made (no renditions, no
    // request noted): the first view asks.
    forget().await;
    app.delete_blob(&renditions_asked_key(&blob_key)).await;
    assert_eq!(status().await, StatusCode::ACCEPTED);
    assert!(app.blob_exists(&renditions_asked_key(&blob_key)).await, "the request is noted");
    assert_eq!(rendition(&app.http, &url("thumbnail"), Some(&session)).await.dimensions(), (400, 267));

    // Gone again within the hour: views find the note and queue nothing.
    forget().await;
    for _ in 0..20 {
        assert_eq!(status().await, StatusCode::ACCEPTED, "no second job within the hour");
        tokio::time::sleep(std::time::Duration::from_millis(150)).await;
    }
    // An hour on, the next view asks again.
    app.clock.advance(chrono::Duration::minutes(61));
    assert_eq!(rendition(&app.http, &url("preview"), Some(&session)).await.dimensions(), (1200, 800));
}

#[tokio::test]
async fn an_upload_whose_renditions_job_the_queue_refuses_leaves_a_view_to_ask_again() {
    use publinks_domain::library::{Library, LibrarySettings};
    use publinks_domain::model::UploadPurpose;
    let app = spawn_app().await;
    let spring = app.folder_id(&["Campaigns", "Spring 2026"]).await;
    // A library whose job queue refuses everything: its worker has stopped.
    let (refusing, worker) = publinks_local::jobs::local_job_queue(1);
    drop(worker);
    let library = Library::new(&app.local.stores, LibrarySettings::default()).with_jobs(std::sync::Arc::new(refusing));
    let ada = library.actor(app.demo.admin.id).await.unwrap().unwrap();
    let purpose = UploadPurpose::NewFile { folder_id: Some(spring.parse().unwrap()), name: "refused.jpg".into() };
    let photo = demo_jpeg_with_exif(900, 600, 4, "Cam");
    let file = library.import_file(&ada, purpose, "image/jpeg", photo).await.expect("the upload succeeds");
    let blob_key = file.current.blob_key;
    assert!(!app.blob_exists(&renditions_asked_key(&blob_key)).await, "no note of a job the queue refused");

    // The first view asks again (through the server's working queue) and gets them.
    let (share, session) = visitor_session(&app, json!({"kind": "folder", "id": spring})).await;
    let url = format!("{}{share}/api/files/{}/thumbnail", app.base, file.id);
    assert_eq!(rendition(&app.http, &url, Some(&session)).await.dimensions(), (400, 267));
    assert!(app.blob_exists(&renditions_asked_key(&blob_key)).await, "the view's request is noted");
}
