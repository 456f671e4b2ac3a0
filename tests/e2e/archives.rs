//! ZIP archives over HTTP: a visitor's archive of a shared tree (tricky
//! names, checked by four readers byte for byte), scope and drafts, sessions,
//! reuse of identical archives, the downloads lists, and the library's own
//! archives. Everything runs on both backends.

use publinks_archive::readers;
use publinks_e2e::{TestApp, expect, spawn_app};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// Creates a link as the demo admin; returns the share path `/s/...`.
async fn share(app: &TestApp, target: Value) -> String {
    let link = app.send(Method::POST, "/api/links", &app.admin(), json!({"target": target}), StatusCode::CREATED).await;
    link["url"].as_str().unwrap().strip_prefix(&app.base).unwrap().to_string()
}

/// A new folder (under `parent`, or at the top), made by the demo admin; returns its id.
async fn new_folder(app: &TestApp, name: &str, parent: Option<&str>) -> String {
    let mut body = json!({"name": name});
    if let Some(p) = parent {
        body["parent_id"] = p.into();
    }
    let folder = app.send(Method::POST, "/api/folders", &app.admin(), body, StatusCode::CREATED).await;
    folder["id"].as_str().unwrap().to_string()
}

/// A visitor session on an open link.
async fn session(app: &TestApp, share: &str) -> String {
    let res = app.http.post(format!("{}{share}/api/session", app.base)).send().await.unwrap();
    expect(res, StatusCode::CREATED).await["token"].as_str().unwrap().to_string()
}

async fn visitor_post(app: &TestApp, path: &str, session: &str, body: Value, status: StatusCode) -> Value {
    let res = app.http.post(format!("{}{path}", app.base)).bearer_auth(session).json(&body).send().await.unwrap();
    expect(res, status).await
}

async fn visitor_get(app: &TestApp, path: &str, session: &str, status: StatusCode) -> Value {
    expect(app.http.get(format!("{}{path}", app.base)).bearer_auth(session).send().await.unwrap(), status).await
}

/// Polls the archive at `path` until it is no longer being prepared.
async fn settled(app: &TestApp, path: &str, auth: &str) -> Value {
    for _ in 0..300 {
        let job =
            expect(app.http.get(format!("{}{path}", app.base)).bearer_auth(auth).send().await.unwrap(), StatusCode::OK)
                .await;
        if !matches!(job["status"].as_str(), Some("pending" | "building")) {
            return job;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("the archive at {path} never settled");
}

/// Follows the download redirect and returns the ZIP's bytes.
async fn download(app: &TestApp, path: &str, auth: &str) -> Vec<u8> {
    let res = app.http.get(format!("{}{path}", app.base)).bearer_auth(auth).send().await.unwrap();
    assert!(res.status().is_redirection(), "{path}: {}", res.status());
    let url = res.headers()["location"].to_str().unwrap().to_string();
    let res = app.http.get(&url).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK, "{url}");
    res.bytes().await.unwrap().to_vec()
}

fn check_zip(bytes: &[u8], expected: &BTreeMap<String, String>) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.zip");
    std::fs::write(&path, bytes).unwrap();
    readers::verify(&path, expected).unwrap_or_else(|e| panic!("{e}"));
}

fn text(seed: usize, lines: usize) -> Vec<u8> {
    (0..lines).map(|i| format!("line {i} of file {seed}: the quick brown fox\n")).collect::<String>().into_bytes()
}

#[tokio::test]
async fn a_visitor_zips_a_shared_tree_with_tricky_names_and_every_reader_agrees() {
    let app = spawn_app().await;
    let admin = app.admin();
    let root = app.send(Method::POST, "/api/folders", &admin, json!({"name": "Zip me"}), StatusCode::CREATED).await;
    let root = root["id"].as_str().unwrap().to_string();
    let sub = app
        .send(Method::POST, "/api/folders", &admin, json!({"name": "Été ☀", "parent_id": root}), StatusCode::CREATED)
        .await["id"]
        .as_str()
        .unwrap()
        .to_string();
    app.send(Method::POST, "/api/folders", &admin, json!({"name": "empty", "parent_id": root}), StatusCode::CREATED)
        .await;
    let long = format!("{}.txt", "long".repeat(62));
    let photo = publinks_media::demo_png(64, 48, 7);
    let mut expected = BTreeMap::new();
    // Three names the library tells apart that become one in an archive
    // (the same once made safe to extract, but for case): which one keeps the
    // plain name follows the listing order, so the test checks them as a group.
    let mut same_name_digests = Vec::new();
    for (name, bytes) in [("photo?.png", photo.clone()), ("photo*.png", text(1, 10)), ("Photo:.PNG", text(2, 10))] {
        app.upload(&admin, Some(&root), name, "image/png", &bytes).await;
        same_name_digests.push(readers::digest(&bytes));
    }
    for (folder, name, path, content_type, bytes) in [
        (&root, "a:b?.txt", "a_b_.txt", "text/plain", text(3, 2000)),
        (&root, "Été ☀.", "Été ☀ (1)", "text/plain", text(4, 5)),
        (&root, &long, &long, "text/plain", text(5, 5)),
        (&sub, "notes.txt", "Été ☀/notes.txt", "text/plain", text(6, 50)),
    ] {
        app.upload(&admin, Some(folder), name, content_type, &bytes).await;
        expected.insert(path.to_string(), readers::digest(&bytes));
    }
    expected.insert("Été ☀/".into(), readers::digest(b""));
    expected.insert("empty/".into(), readers::digest(b""));
    let draft = app.upload(&admin, Some(&root), "draft.txt", "text/plain", b"not yet").await;
    app.send(
        Method::PATCH,
        &format!("/api/files/{}", draft["id"].as_str().unwrap()),
        &admin,
        json!({"published": false}),
        StatusCode::OK,
    )
    .await;

    let s = share(&app, json!({"kind": "folder", "id": root})).await;
    let visitor = session(&app, &s).await;
    let job = visitor_post(&app, &format!("{s}/api/archives"), &visitor, json!({}), StatusCode::ACCEPTED).await;
    assert_eq!(job["name"], "Zip me.zip");
    assert_eq!(job["file_count"], 7, "the draft stays out");
    for hidden in ["fingerprint", "manifest_key", "archive_key", "requested_by", "upload_id"] {
        assert!(job.get(hidden).is_none(), "{hidden} reaches visitors: {job}");
    }
    let at = format!("{s}/api/archives/{}", job["id"].as_str().unwrap());
    let done = settled(&app, &at, &visitor).await;
    assert_eq!(done["status"], "ready", "{done}");
    assert_eq!(done["files_done"], 7);
    let zip = download(&app, &format!("{at}/download"), &visitor).await;
    assert_eq!(Some(zip.len() as u64), done["archive_size"].as_u64());
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.zip"), &zip).unwrap();
    let read = readers::python_digests(&dir.path().join("a.zip")).unwrap();
    let group: BTreeMap<String, String> =
        read.into_iter().filter(|(name, _)| name.to_lowercase().starts_with("photo")).collect();
    let mut names: Vec<String> = group.keys().map(|n| n.to_lowercase()).collect();
    names.sort();
    assert_eq!(names, ["photo_ (1).png", "photo_ (2).png", "photo_.png"]);
    let mut digests: Vec<&String> = group.values().collect();
    digests.sort();
    same_name_digests.sort();
    assert_eq!(digests, same_name_digests.iter().collect::<Vec<_>>());
    expected.extend(group);
    check_zip(&zip, &expected);

    // A subfolder alone, and a selection.
    let job =
        visitor_post(&app, &format!("{s}/api/archives"), &visitor, json!({"folder_id": sub}), StatusCode::ACCEPTED)
            .await;
    let done = settled(&app, &format!("{s}/api/archives/{}", job["id"].as_str().unwrap()), &visitor).await;
    assert_eq!((done["name"].as_str(), done["file_count"].as_u64()), (Some("Été ☀.zip"), Some(1)));
    let listing = visitor_get(&app, &format!("{s}/api/folders/root"), &visitor, StatusCode::OK).await;
    let picked: Vec<Value> = listing["files"].as_array().unwrap().iter().take(2).map(|f| f["id"].clone()).collect();
    let job =
        visitor_post(&app, &format!("{s}/api/archives"), &visitor, json!({"file_ids": picked}), StatusCode::ACCEPTED)
            .await;
    let at = format!("{s}/api/archives/{}", job["id"].as_str().unwrap());
    assert_eq!(settled(&app, &at, &visitor).await["file_count"], 2);
}

#[tokio::test]
async fn nothing_outside_the_link_gets_into_an_archive() {
    let app = spawn_app().await;
    let spring = app.folder_id(&["Campaigns", "Spring 2026"]).await;
    let products = app.folder_id(&["Products"]).await;
    let outside = app.file_id(&products, "product-blue.png").await;
    let s = share(&app, json!({"kind": "folder", "id": spring})).await;
    let visitor = session(&app, &s).await;
    let post = |body: Value, status| {
        let (app, s, visitor) = (&app, &s, &visitor);
        async move { visitor_post(app, &format!("{s}/api/archives"), visitor, body, status).await }
    };
    post(json!({"file_ids": [outside]}), StatusCode::NOT_FOUND).await;
    post(json!({"folder_id": products}), StatusCode::NOT_FOUND).await;
    post(json!({"folder_id": uuid::Uuid::new_v4()}), StatusCode::NOT_FOUND).await;
    post(json!({"collection_id": uuid::Uuid::new_v4()}), StatusCode::NOT_FOUND).await;
    let bad = post(json!({"file_ids": []}), StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(bad["error"]["field"], "file_ids");
    let both = post(json!({"folder_id": spring, "file_ids": [outside]}), StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(both["error"]["code"], "invalid_field");
    let unknown = post(json!({"everything": true}), StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(unknown["error"]["field"], "everything");
    let url = format!("{}{s}/api/archives", app.base);
    let res = app.http.post(&url).bearer_auth(&visitor).header("content-type", "application/json").body("{");
    assert_eq!(expect(res.send().await.unwrap(), StatusCode::BAD_REQUEST).await["error"]["code"], "malformed_json");
    let res = app.http.post(&url).bearer_auth(&visitor).body("{}").send().await.unwrap();
    assert_eq!(expect(res, StatusCode::UNSUPPORTED_MEDIA_TYPE).await["error"]["code"], "unsupported_media_type");

    // Without a session there is nobody to give the archive to.
    let res = app.http.post(format!("{}{s}/api/archives", app.base)).send().await.unwrap();
    assert_eq!(expect(res, StatusCode::UNAUTHORIZED).await["error"]["code"], "session_required");
}

#[tokio::test]
async fn archives_belong_to_their_session_and_identical_ones_are_shared() {
    let app = spawn_app().await;
    let spring = app.folder_id(&["Campaigns", "Spring 2026"]).await;
    let s = share(&app, json!({"kind": "folder", "id": spring})).await;
    let (alice, bob) = (session(&app, &s).await, session(&app, &s).await);
    let first = visitor_post(&app, &format!("{s}/api/archives"), &alice, json!({}), StatusCode::ACCEPTED).await;
    let first_at = format!("{s}/api/archives/{}", first["id"].as_str().unwrap());
    let built = settled(&app, &first_at, &alice).await;
    assert_eq!(built["status"], "ready");

    // Bob's identical request reuses the archive at once, as a job of his own.
    let second = visitor_post(&app, &format!("{s}/api/archives"), &bob, json!({}), StatusCode::ACCEPTED).await;
    assert_eq!(second["status"], "ready", "{second}");
    assert_ne!(second["id"], first["id"]);
    assert_eq!(second["archive_size"], built["archive_size"]);
    let second_at = format!("{s}/api/archives/{}", second["id"].as_str().unwrap());
    assert_eq!(
        download(&app, &format!("{second_at}/download"), &bob).await,
        download(&app, &format!("{first_at}/download"), &alice).await
    );

    // Each sees only their own.
    visitor_get(&app, &first_at, &bob, StatusCode::NOT_FOUND).await;
    visitor_get(&app, &format!("{first_at}/download"), &bob, StatusCode::NOT_FOUND).await;
    let list = visitor_get(&app, &format!("{s}/api/archives"), &bob, StatusCode::OK).await;
    let ids: Vec<&Value> = list["items"].as_array().unwrap().iter().map(|j| &j["id"]).collect();
    assert_eq!(ids, [&second["id"]]);
    let other_link = share(&app, json!({"kind": "folder", "id": spring})).await;
    let carol = session(&app, &other_link).await;
    visitor_get(
        &app,
        &format!("{other_link}/api/archives/{}", first["id"].as_str().unwrap()),
        &carol,
        StatusCode::NOT_FOUND,
    )
    .await;

    // The account sees both, through the link.
    let all = app.get("/api/archives", &app.admin(), StatusCode::OK).await;
    let via: Vec<(&Value, &Value)> =
        all["items"].as_array().unwrap().iter().map(|j| (&j["id"], &j["via_public_link"])).collect();
    assert_eq!(via, [(&second["id"], &json!(true)), (&first["id"], &json!(true))]);
    assert!(all["items"][0]["link_id"].is_string());
    app.get("/api/archives", &app.viewer(), StatusCode::FORBIDDEN).await;
}

#[tokio::test]
async fn signed_in_users_zip_what_they_may_see() {
    let app = spawn_app().await;
    let spring = app.folder_id(&["Campaigns", "Spring 2026"]).await;
    let job = app
        .send(Method::POST, "/api/archives", &app.viewer(), json!({"folder_id": spring}), StatusCode::ACCEPTED)
        .await;
    assert_eq!(job["via_public_link"], false);
    let at = format!("/api/archives/{}", job["id"].as_str().unwrap());
    let done = settled(&app, &at, &app.viewer()).await;
    assert_eq!(done["status"], "ready", "{done}");
    assert_eq!(done["file_count"], 4, "the folder and its subfolder");
    let zip = download(&app, &format!("{at}/download"), &app.viewer()).await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.zip"), &zip).unwrap();
    let names: Vec<String> = readers::python_digests(&dir.path().join("a.zip")).unwrap().into_keys().collect();
    assert_eq!(names, ["Hero shots/", "Hero shots/close-up.jpg", "dusk.jpg", "palette.png", "sunrise.jpg"]);

    // A restricted user reaches only what is granted; others' jobs stay theirs.
    let products = app.folder_id(&["Products"]).await;
    let refused = app
        .send(Method::POST, "/api/archives", &app.restricted(), json!({"folder_id": products}), StatusCode::NOT_FOUND)
        .await;
    assert_eq!(refused["error"]["code"], "not_found");
    app.get(&at, &app.restricted(), StatusCode::NOT_FOUND).await;
    app.get(&at, &app.admin(), StatusCode::OK).await;
    let missing =
        app.send(Method::POST, "/api/archives", &app.admin(), json!({}), StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(missing["error"]["field"], "folder_id");
    let not_ready =
        app.get(&format!("/api/archives/{}/download", uuid::Uuid::new_v4()), &app.admin(), StatusCode::NOT_FOUND).await;
    assert_eq!(not_ready["error"]["code"], "not_found");
}

#[tokio::test]
async fn names_equal_but_for_case_or_normalisation_survive_every_extractor() {
    let app = spawn_app().await;
    let admin = app.admin();
    // One folder holds no two names equal but for case or Unicode form (the
    // library refuses them), so such names meet in a collection, laid flat,
    // from two folders; names that only cleaning makes equal meet in a folder.
    let left = new_folder(&app, "Left", None).await;
    let right = new_folder(&app, "Right", None).await;
    let root = new_folder(&app, "Names", None).await;
    let colon_folder = new_folder(&app, "x:y", Some(&root)).await;
    let plain_folder = new_folder(&app, "x_y", Some(&root)).await;
    let long = format!("a.{}", "x".repeat(253));
    // (folder, name as uploaded, path expected in the archive), oldest first.
    // The library keeps names in NFC, so the oldest keeps the plain name.
    let in_collection = [
        (&left, "cafe\u{301}.txt", "caf\u{e9}.txt"),
        (&right, "caf\u{e9}.txt", "caf\u{e9} (1).txt"),
        (&left, "report.txt", "report.txt"),
        (&right, "Report.TXT", "Report (1).TXT"),
    ];
    let in_folder = [
        (&root, "a:b.txt".to_string(), "a_b (1).txt".to_string()),
        (&root, "a_b.txt".to_string(), "a_b.txt".to_string()),
        (&root, long.clone(), long.clone()),
        (&colon_folder, "x.txt".to_string(), "x_y (1)/x.txt".to_string()),
        (&plain_folder, "x.txt".to_string(), "x_y/x.txt".to_string()),
    ];
    let collection =
        app.send(Method::POST, "/api/collections", &admin, json!({"name": "Names"}), StatusCode::CREATED).await;
    let collection = collection["id"].as_str().unwrap().to_string();
    let mut flat = BTreeMap::new();
    for (i, (folder, name, path)) in in_collection.iter().enumerate() {
        let bytes = text(100 + i, 3);
        let file = app.upload(&admin, Some(folder), name, "text/plain", &bytes).await;
        let member = format!("/api/collections/{collection}/files/{}", file["id"].as_str().unwrap());
        let res = app.request(Method::PUT, &member, &admin).send().await.unwrap();
        assert!(res.status().is_success(), "{}", res.status());
        flat.insert(path.to_string(), readers::digest(&bytes));
    }
    let mut tree = BTreeMap::new();
    for (i, (folder, name, path)) in in_folder.iter().enumerate() {
        let bytes = text(200 + i, 3);
        app.upload(&admin, Some(folder), name, "text/plain", &bytes).await;
        tree.insert(path.clone(), readers::digest(&bytes));
    }
    tree.insert("x_y (1)/".into(), readers::digest(b""));
    tree.insert("x_y/".into(), readers::digest(b""));

    for (target, expected) in
        [(json!({"kind": "collection", "id": collection}), flat), (json!({"kind": "folder", "id": root}), tree)]
    {
        let s = share(&app, target).await;
        let visitor = session(&app, &s).await;
        let job = visitor_post(&app, &format!("{s}/api/archives"), &visitor, json!({}), StatusCode::ACCEPTED).await;
        let at = format!("{s}/api/archives/{}", job["id"].as_str().unwrap());
        assert_eq!(settled(&app, &at, &visitor).await["status"], "ready");
        let zip = download(&app, &format!("{at}/download"), &visitor).await;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("names.zip");
        std::fs::write(&path, &zip).unwrap();
        readers::verify(&path, &expected).unwrap_or_else(|e| panic!("{e}"));
        let scratch = tempfile::tempdir().unwrap();
        readers::extract_and_compare(&path, scratch.path(), &expected).unwrap_or_else(|e| panic!("{e}"));
    }
}

/// A ready ZIP of everything the link `s` shares; returns its job path.
async fn fresh_archive(app: &TestApp, s: &str, visitor: &str) -> String {
    let job = visitor_post(app, &format!("{s}/api/archives"), visitor, json!({}), StatusCode::ACCEPTED).await;
    let at = format!("{s}/api/archives/{}", job["id"].as_str().unwrap());
    assert_eq!(settled(app, &at, visitor).await["status"], "ready");
    at
}

/// The archive at `at` downloads (a redirect to its bytes), or is refused as out of date.
async fn downloads(app: &TestApp, at: &str, visitor: &str) -> bool {
    let res = app.http.get(format!("{}{at}/download", app.base)).bearer_auth(visitor).send().await.unwrap();
    if res.status() == StatusCode::SEE_OTHER {
        return true;
    }
    let body = expect(res, StatusCode::GONE).await;
    assert_eq!(body["error"]["code"], "archive_outdated", "{body}");
    false
}

#[tokio::test]
async fn a_visitor_archive_is_refused_once_what_it_holds_changed_or_left_the_link() {
    let app = spawn_app().await;
    let admin = app.admin();
    let shared = Value::from(new_folder(&app, "Shared", None).await);
    let sub = Value::from(new_folder(&app, "Sub", shared.as_str()).await);
    let elsewhere = Value::from(new_folder(&app, "Elsewhere", None).await);
    let mut ids = BTreeMap::new();
    let files = [("a.txt", &shared), ("b.txt", &shared), ("c.txt", &shared), ("d.txt", &shared), ("e.txt", &sub)];
    for (name, at) in files.into_iter().chain([("keep.txt", &shared)]) {
        let file = app.upload(&admin, at.as_str(), name, "text/plain", name.as_bytes()).await;
        ids.insert(name, file["id"].as_str().unwrap().to_string());
    }
    let patch_file = |name: &str, body: Value| {
        let (app, admin, path) = (&app, &admin, format!("/api/files/{}", ids[name]));
        async move { app.send(Method::PATCH, &path, admin, body, StatusCode::OK).await }
    };
    let move_file = |name: &str, to: &Value| {
        let (app, admin, path) = (&app, &admin, format!("/api/files/{}/move", ids[name]));
        let body = json!({"folder_id": to});
        async move { app.send(Method::POST, &path, admin, body, StatusCode::OK).await }
    };
    patch_file("d.txt", json!({"published": false})).await;
    let link = app
        .send(
            Method::POST,
            "/api/links",
            &admin,
            json!({"target": {"kind": "folder", "id": shared}, "expose_unpublished": true}),
            StatusCode::CREATED,
        )
        .await;
    let s = link["url"].as_str().unwrap().strip_prefix(&app.base).unwrap().to_string();
    let visitor = session(&app, &s).await;

    let at = fresh_archive(&app, &s, &visitor).await;
    app.upload(&admin, elsewhere.as_str(), "unrelated.txt", "text/plain", b"elsewhere").await;
    assert!(downloads(&app, &at, &visitor).await, "a change outside the link leaves the archive current");

    app.upload_version(&admin, &ids["a.txt"], "text/plain", b"a, version 2").await;
    assert!(!downloads(&app, &at, &visitor).await, "a new version");

    let at = fresh_archive(&app, &s, &visitor).await;
    move_file("a.txt", &sub).await;
    assert!(!downloads(&app, &at, &visitor).await, "moved within the link: its path in the ZIP is wrong");

    let at = fresh_archive(&app, &s, &visitor).await;
    move_file("b.txt", &elsewhere).await;
    assert!(!downloads(&app, &at, &visitor).await, "moved out of the link");

    let at = fresh_archive(&app, &s, &visitor).await;
    app.delete(&format!("/api/files/{}", ids["c.txt"]), &admin, StatusCode::NO_CONTENT).await;
    assert!(!downloads(&app, &at, &visitor).await, "deleted");

    let at = fresh_archive(&app, &s, &visitor).await;
    let link_path = format!("/api/links/{}", link["id"].as_str().unwrap());
    app.send(Method::PATCH, &link_path, &admin, json!({"expose_unpublished": false}), StatusCode::OK).await;
    assert!(!downloads(&app, &at, &visitor).await, "the link no longer exposes the draft in it");

    let at = fresh_archive(&app, &s, &visitor).await;
    patch_file("e.txt", json!({"published": false})).await;
    assert!(!downloads(&app, &at, &visitor).await, "turned into a draft");
    patch_file("e.txt", json!({"published": true})).await;

    let at = fresh_archive(&app, &s, &visitor).await;
    let sub_move = format!("/api/folders/{}/move", sub.as_str().unwrap());
    app.send(Method::POST, &sub_move, &admin, json!({"parent_id": elsewhere}), StatusCode::OK).await;
    assert!(!downloads(&app, &at, &visitor).await, "a folder on the path moved out of the link");

    // The page says so, and offers a new ZIP of the same scope.
    let page = app.http.get(format!("{}{at}/download", app.base).replace("/api/", "/")).bearer_auth(&visitor);
    let page = page.send().await.unwrap();
    assert_eq!(page.status(), StatusCode::GONE);
    let html = page.text().await.unwrap();
    assert!(html.contains("This ZIP is out of date") && html.contains("Make a new ZIP"), "{html}");
    assert!(html.contains(r#"name="scope" value="all""#), "{html}");
    let remade = app
        .http
        .post(format!("{}{s}/archives", app.base))
        .bearer_auth(&visitor)
        .form(&[("scope", "all")])
        .send()
        .await
        .unwrap();
    assert_eq!(remade.status(), StatusCode::SEE_OTHER);
    let new_page = remade.headers()["location"].to_str().unwrap().to_string();
    let new_at = new_page.replace(&format!("{s}/archives/"), &format!("{s}/api/archives/"));
    assert_eq!(settled(&app, &new_at, &visitor).await["status"], "ready");
    assert!(downloads(&app, &new_at, &visitor).await);
}

#[tokio::test]
async fn archives_of_a_collection_or_a_file_link_follow_membership_and_versions() {
    let app = spawn_app().await;
    let admin = app.admin();
    let collection =
        app.send(Method::POST, "/api/collections", &admin, json!({"name": "Picks"}), StatusCode::CREATED).await;
    let collection = collection["id"].as_str().unwrap().to_string();
    let mut ids = Vec::new();
    for name in ["x.txt", "y.txt"] {
        let file = app.upload(&admin, None, name, "text/plain", name.as_bytes()).await;
        let id = file["id"].as_str().unwrap().to_string();
        let member = format!("/api/collections/{collection}/files/{id}");
        let res = app.request(Method::PUT, &member, &admin).send().await.unwrap();
        assert!(res.status().is_success(), "{}", res.status());
        ids.push(id);
    }
    let s = share(&app, json!({"kind": "collection", "id": collection})).await;
    let visitor = session(&app, &s).await;
    let at = fresh_archive(&app, &s, &visitor).await;
    assert!(downloads(&app, &at, &visitor).await);
    app.delete(&format!("/api/collections/{collection}/files/{}", ids[1]), &admin, StatusCode::NO_CONTENT).await;
    assert!(!downloads(&app, &at, &visitor).await, "no longer in the collection");

    // A selection of what is left, through the same link.
    let job =
        visitor_post(&app, &format!("{s}/api/archives"), &visitor, json!({"file_ids": [ids[0]]}), StatusCode::ACCEPTED)
            .await;
    let selection = format!("{s}/api/archives/{}", job["id"].as_str().unwrap());
    assert_eq!(settled(&app, &selection, &visitor).await["status"], "ready");
    assert!(downloads(&app, &selection, &visitor).await);
    app.upload_version(&admin, &ids[0], "text/plain", b"x, version 2").await;
    assert!(!downloads(&app, &selection, &visitor).await, "a new version of a selected file");
    let page = app.http.get(format!("{}{selection}/download", app.base).replace("/api/", "/")).bearer_auth(&visitor);
    let html = page.send().await.unwrap().text().await.unwrap();
    assert!(html.contains(&format!(r#"name="file_id" value="{}""#, ids[0])), "the selection is offered again: {html}");

    let file_link = share(&app, json!({"kind": "file", "id": ids[1]})).await;
    let visitor = session(&app, &file_link).await;
    let at = fresh_archive(&app, &file_link, &visitor).await;
    assert!(downloads(&app, &at, &visitor).await);
    app.upload_version(&admin, &ids[1], "text/plain", b"y, version 2").await;
    assert!(!downloads(&app, &at, &visitor).await, "a new version of the shared file");
}
