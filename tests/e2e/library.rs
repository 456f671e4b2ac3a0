//! The media library's flows: uploads, versions, folders, collections.

use publinks_e2e::spawn_app;
use publinks_media::{demo_jpeg_with_exif, demo_png};
use reqwest::{Method, StatusCode};
use serde_json::json;

#[tokio::test]
async fn the_demo_account_is_seeded_and_visible() {
    let app = spawn_app().await;
    let me = app.get("/api/me", &app.admin(), StatusCode::OK).await;
    assert_eq!(me["account"]["plan"], "enterprise");
    assert_eq!(me["account"]["drafts_enabled"], true);
    assert_eq!(me["user"]["role"], "admin");
    let top = app.get("/api/folders/root/folders", &app.admin(), StatusCode::OK).await;
    let names: Vec<_> = top["items"].as_array().unwrap().iter().map(|f| f["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["Campaigns", "Products"]);
    let spring = app.folder_id(&["Campaigns", "Spring 2026"]).await;
    let files = app.get(&format!("/api/folders/{spring}/files"), &app.admin(), StatusCode::OK).await;
    let sunrise = files["items"].as_array().unwrap().iter().find(|f| f["name"] == "sunrise.jpg").unwrap();
    assert_eq!(sunrise["current_version"]["width"], 1200);
    assert_eq!(sunrise["current_version"]["embedded_metadata"]["Model"], "PL-1 Mark II");
    assert!(sunrise["current_version"].get("blob_key").is_none(), "storage keys are not shown");
}

#[tokio::test]
async fn an_upload_becomes_a_file_with_its_metadata_and_downloads_intact() {
    let app = spawn_app().await;
    let products = app.folder_id(&["Products"]).await;
    let bytes = demo_jpeg_with_exif(320, 240, 3, "Test Cam");
    let file = app.upload(&app.admin(), Some(&products), "new shot.jpg", "image/jpeg", &bytes).await;
    assert_eq!(file["name"], "new shot.jpg");
    assert_eq!(file["folder_id"], products.as_str());
    let v = &file["current_version"];
    assert_eq!((v["number"].as_u64(), v["size"].as_u64()), (Some(1), Some(bytes.len() as u64)));
    assert_eq!((v["width"].as_u64(), v["height"].as_u64()), (Some(320), Some(240)));
    assert_eq!(v["crc32"].as_u64(), Some(crc32fast::hash(&bytes) as u64));
    assert_eq!(v["embedded_metadata"]["Model"], "Test Cam");

    let id = file["id"].as_str().unwrap();
    let redirect = app.request(Method::GET, &format!("/api/files/{id}/download"), &app.admin()).send().await.unwrap();
    assert_eq!(redirect.status(), StatusCode::FOUND);
    let url = redirect.headers()["location"].to_str().unwrap().to_string();
    let got = app.http.get(&url).send().await.unwrap();
    assert_eq!(got.status(), StatusCode::OK);
    assert_eq!(got.headers()["content-type"], "image/jpeg");
    let disposition = got.headers()["content-disposition"].to_str().unwrap().to_string();
    assert!(disposition.contains("filename=\"new shot.jpg\""), "{disposition}");
    assert_eq!(got.bytes().await.unwrap().to_vec(), bytes);
}

#[tokio::test]
async fn an_upload_completes_only_with_exactly_the_declared_bytes_and_a_retry_returns_the_same_file() {
    let app = spawn_app().await;
    let token = app.admin();
    let ticket = app
        .send(
            Method::POST,
            "/api/uploads",
            &token,
            json!({"name": "a.txt", "content_type": "text/plain", "size": 5}),
            StatusCode::CREATED,
        )
        .await;
    assert_eq!((ticket["state"].as_str(), ticket["parts"].as_array().map(Vec::len)), (Some("open"), Some(1)));
    let id = ticket["upload_id"].as_str().unwrap();
    let complete = format!("/api/uploads/{id}/complete");
    let body = app.send(Method::POST, &complete, &token, json!(null), StatusCode::CONFLICT).await;
    assert_eq!(body["error"]["code"], "upload_incomplete");

    // Too many bytes: the embedded store refuses the PUT itself (its URLs
    // bind the size); S3 signs the length, which moto does not check, so
    // there the completion refuses the part. What else the URL refuses is in
    // embedded_only.
    let url = ticket["url"].as_str().unwrap();
    let res = app.http.put(url).header("content-type", "text/plain").body("hello, world").send().await.unwrap();
    let expected = if res.status().is_success() { "upload_size_mismatch" } else { "upload_incomplete" };
    let body = app.send(Method::POST, &complete, &token, json!(null), StatusCode::CONFLICT).await;
    assert_eq!(body["error"]["code"], expected);

    app.http.put(url).header("content-type", "text/plain").body("hello").send().await.unwrap();
    let file = app.send(Method::POST, &complete, &token, json!(null), StatusCode::CREATED).await;
    let again = app.send(Method::POST, &complete, &token, json!(null), StatusCode::OK).await;
    assert_eq!(again, file, "a retried completion answers with the same file");
    let status = app.get(&format!("/api/uploads/{id}"), &token, StatusCode::OK).await;
    assert_eq!((status["state"].as_str(), status["file_id"].as_str()), (Some("done"), file["id"].as_str()));
    assert!(status["parts"].as_array().unwrap().is_empty() && status.get("url").is_none(), "no URL once done");
    let top = app.get("/api/folders/root/files", &token, StatusCode::OK).await;
    assert_eq!(top["items"].as_array().unwrap().iter().filter(|f| f["name"] == "a.txt").count(), 1);

    let viewer_completes = app
        .send(
            Method::POST,
            "/api/uploads",
            &token,
            json!({"name": "b.txt", "content_type": "text/plain", "size": 1}),
            StatusCode::CREATED,
        )
        .await;
    let other = format!("/api/uploads/{}", viewer_completes["upload_id"].as_str().unwrap());
    app.send(Method::POST, &format!("{other}/complete"), &app.viewer(), json!(null), StatusCode::NOT_FOUND).await;
    app.get(&other, &app.viewer(), StatusCode::NOT_FOUND).await;
}

#[tokio::test]
async fn a_new_version_becomes_current_and_the_old_one_stays_stored() {
    let app = spawn_app().await;
    let token = app.admin();
    let first = demo_png(40, 40, 1);
    let file = app.upload(&token, None, "logo-2.png", "image/png", &first).await;
    let id = file["id"].as_str().unwrap();
    let second = demo_png(80, 60, 2);
    let updated = app.upload_version(&token, id, "image/png", &second).await;
    assert_eq!(updated["id"], id);
    assert_eq!(updated["current_version"]["number"], 2);
    assert_eq!(updated["current_version"]["width"], 80);

    let versions = app.get(&format!("/api/files/{id}/versions"), &token, StatusCode::OK).await;
    let numbers: Vec<_> = versions["items"].as_array().unwrap().iter().map(|v| v["number"].as_u64().unwrap()).collect();
    assert_eq!(numbers, [1, 2]);

    for (query, expected) in [("", &second), ("?version=1", &first), ("?version=2", &second)] {
        let res = app.request(Method::GET, &format!("/api/files/{id}/download{query}"), &token).send().await.unwrap();
        let url = res.headers()["location"].to_str().unwrap().to_string();
        assert_eq!(&app.http.get(url).send().await.unwrap().bytes().await.unwrap().to_vec(), expected, "{query}");
    }
    app.get(&format!("/api/files/{id}/download?version=3"), &token, StatusCode::NOT_FOUND).await;
}

#[tokio::test]
async fn files_are_edited_moved_commented_and_deleted_with_their_bytes() {
    let app = spawn_app().await;
    let token = app.admin();
    let products = app.folder_id(&["Products"]).await;
    let file = app.upload(&token, None, "loose.png", "image/png", &demo_png(10, 10, 5)).await;
    let id = file["id"].as_str().unwrap();
    let path = format!("/api/files/{id}");

    let patch = json!({"name": "tidy.png", "tags": ["a", "b", "a"], "custom_metadata": {"sku": "123"}, "private": true, "published": false});
    let edited = app.send(Method::PATCH, &path, &token, patch, StatusCode::OK).await;
    assert_eq!(edited["name"], "tidy.png");
    assert_eq!(edited["tags"], json!(["a", "b"]));
    assert_eq!((edited["private"].as_bool(), edited["published"].as_bool()), (Some(true), Some(false)));

    let moved =
        app.send(Method::POST, &format!("{path}/move"), &token, json!({"folder_id": products}), StatusCode::OK).await;
    assert_eq!(moved["folder_id"], products.as_str());
    assert_eq!(app.file_id(&products, "tidy.png").await, id);

    let comment = app
        .send(Method::POST, &format!("{path}/comments"), &token, json!({"text": "Nice."}), StatusCode::CREATED)
        .await;
    let fetched = app.get(&path, &token, StatusCode::OK).await;
    assert_eq!(fetched["comments"][0]["id"], comment["id"]);

    let res = app.request(Method::GET, &format!("{path}/download"), &token).send().await.unwrap();
    let url = res.headers()["location"].to_str().unwrap().to_string();
    assert_eq!(app.http.get(&url).send().await.unwrap().status(), StatusCode::OK);
    app.delete(&path, &token, StatusCode::NO_CONTENT).await;
    app.get(&path, &token, StatusCode::NOT_FOUND).await;
    // The same URL, served a moment ago, now finds nothing: the embedded
    // store says 404; S3 says 403 to a URL whose signer may not list the
    // bucket, and moto does the same.
    let gone = app.http.get(&url).send().await.unwrap().status();
    assert!(matches!(gone, StatusCode::NOT_FOUND | StatusCode::FORBIDDEN), "the bytes are gone too: {gone}");
}

#[tokio::test]
async fn folders_are_created_renamed_moved_and_deleted_with_everything_under_them() {
    let app = spawn_app().await;
    let token = app.admin();
    let mk = |name: &str, parent: Option<&str>| {
        let body = match parent {
            Some(p) => json!({"name": name, "parent_id": p}),
            None => json!({"name": name}),
        };
        let (app, token) = (&app, token.clone());
        async move {
            app.send(Method::POST, "/api/folders", &token, body, StatusCode::CREATED).await["id"]
                .as_str()
                .unwrap()
                .to_string()
        }
    };
    let a = mk("A", None).await;
    let b = mk("B", Some(&a)).await;
    let c = mk("C", Some(&b)).await;
    let elsewhere = mk("Elsewhere", None).await;
    let deep = app.upload(&token, Some(&c), "deep.png", "image/png", &demo_png(8, 8, 1)).await;
    let shallow = app.upload(&token, Some(&a), "shallow.png", "image/png", &demo_png(8, 8, 2)).await;

    let clash = app
        .send(Method::POST, "/api/folders", &token, json!({"name": "b", "parent_id": a}), StatusCode::CONFLICT)
        .await;
    assert_eq!(clash["error"]["code"], "name_taken");
    let renamed =
        app.send(Method::PATCH, &format!("/api/folders/{b}"), &token, json!({"name": "Bee"}), StatusCode::OK).await;
    assert_eq!(renamed["name"], "Bee");

    let cycle = app
        .send(Method::POST, &format!("/api/folders/{a}/move"), &token, json!({"parent_id": c}), StatusCode::CONFLICT)
        .await;
    assert_eq!(cycle["error"]["code"], "folder_cycle");
    app.send(Method::POST, &format!("/api/folders/{b}/move"), &token, json!({"parent_id": elsewhere}), StatusCode::OK)
        .await;
    let c_now = app.get(&format!("/api/folders/{c}"), &token, StatusCode::OK).await;
    let path: Vec<_> = c_now["path"].as_array().unwrap().iter().map(|f| f["name"].as_str().unwrap()).collect();
    assert_eq!(path, ["Elsewhere", "Bee"], "the subtree moved along");

    let removed = app.delete_folder_tree(&elsewhere, &token).await;
    assert_eq!((&removed["folders_removed"], &removed["files_removed"]), (&json!(3), &json!(1)));
    assert!(removed["finished_at"].is_string());
    app.get(&format!("/api/folders/{elsewhere}"), &token, StatusCode::NOT_FOUND).await;
    for gone in [
        format!("/api/folders/{b}"),
        format!("/api/folders/{c}"),
        format!("/api/files/{}", deep["id"].as_str().unwrap()),
    ] {
        app.get(&gone, &token, StatusCode::NOT_FOUND).await;
    }
    app.get(&format!("/api/files/{}", shallow["id"].as_str().unwrap()), &token, StatusCode::OK).await;
}

#[tokio::test]
async fn collections_gather_files_from_anywhere_and_lose_deleted_ones() {
    let app = spawn_app().await;
    let token = app.admin();
    let coll =
        app.send(Method::POST, "/api/collections", &token, json!({"name": "Press kit"}), StatusCode::CREATED).await;
    let cid = coll["id"].as_str().unwrap();
    let products = app.folder_id(&["Products"]).await;
    let blue = app.file_id(&products, "product-blue.png").await;
    let logo = app.file_id("root", "logo.png").await;
    for f in [&logo, &blue] {
        app.send(Method::PUT, &format!("/api/collections/{cid}/files/{f}"), &token, json!(null), StatusCode::CREATED)
            .await;
    }
    let dup = app
        .send(Method::PUT, &format!("/api/collections/{cid}/files/{logo}"), &token, json!(null), StatusCode::CONFLICT)
        .await;
    assert_eq!(dup["error"]["code"], "already_in_collection");
    let files = app.get(&format!("/api/collections/{cid}/files"), &token, StatusCode::OK).await;
    let ids: Vec<_> = files["items"].as_array().unwrap().iter().map(|f| f["id"].as_str().unwrap()).collect();
    assert_eq!(ids, [logo.as_str(), blue.as_str()], "in order of addition");

    app.delete(&format!("/api/files/{blue}"), &token, StatusCode::NO_CONTENT).await;
    let files = app.get(&format!("/api/collections/{cid}/files"), &token, StatusCode::OK).await;
    assert_eq!(files["items"].as_array().unwrap().len(), 1, "a deleted file leaves its collections");

    app.send(Method::PATCH, &format!("/api/collections/{cid}"), &token, json!({"name": "Kit"}), StatusCode::OK).await;
    app.delete(&format!("/api/collections/{cid}/files/{logo}"), &token, StatusCode::NO_CONTENT).await;
    app.delete(&format!("/api/collections/{cid}/files/{logo}"), &token, StatusCode::NOT_FOUND).await;
    app.delete(&format!("/api/collections/{cid}"), &token, StatusCode::NO_CONTENT).await;
    app.get(&format!("/api/collections/{cid}"), &token, StatusCode::NOT_FOUND).await;
    app.get(&format!("/api/files/{logo}"), &token, StatusCode::OK).await;
}

#[tokio::test]
async fn lists_page_with_opaque_cursors() {
    let app = spawn_app().await;
    let token = app.admin();
    let parent = app.send(Method::POST, "/api/folders", &token, json!({"name": "Many"}), StatusCode::CREATED).await;
    let pid = parent["id"].as_str().unwrap();
    for i in 0..7 {
        app.send(
            Method::POST,
            "/api/folders",
            &token,
            json!({"name": format!("f{i}"), "parent_id": pid}),
            StatusCode::CREATED,
        )
        .await;
    }
    let mut names = Vec::new();
    let mut next: Option<String> = None;
    loop {
        let q = match &next {
            Some(c) => format!("?limit=3&cursor={c}"),
            None => "?limit=3".into(),
        };
        let page = app.get(&format!("/api/folders/{pid}/folders{q}"), &token, StatusCode::OK).await;
        names.extend(page["items"].as_array().unwrap().iter().map(|f| f["name"].as_str().unwrap().to_string()));
        match page["next_cursor"].as_str() {
            Some(c) => next = Some(c.to_string()),
            None => break,
        }
    }
    assert_eq!(names, (0..7).map(|i| format!("f{i}")).collect::<Vec<_>>());
}
