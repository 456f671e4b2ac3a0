//! The link management API: create, list, edit, delete, with the plan,
//! permission, limit, validity, password and draft rules.

use publinks_domain::library::NewUser;
use publinks_domain::model::{Plan, Role, UploadPurpose};
use publinks_e2e::{TestApp, spawn_app};
use publinks_media::demo_png;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

async fn sunrise(app: &TestApp) -> String {
    let spring = app.folder_id(&["Campaigns", "Spring 2026"]).await;
    app.file_id(&spring, "sunrise.jpg").await
}

async fn create(app: &TestApp, token: &str, body: Value, status: StatusCode) -> Value {
    app.send(Method::POST, "/api/links", token, body, status).await
}

fn file_target(id: &str) -> Value {
    json!({"kind": "file", "id": id})
}

#[tokio::test]
async fn links_are_created_for_files_folders_and_collections_with_unguessable_urls() {
    let app = spawn_app().await;
    let admin = app.admin();
    let spring = app.folder_id(&["Campaigns", "Spring 2026"]).await;
    let file = sunrise(&app).await;
    let picks =
        app.get("/api/collections", &admin, StatusCode::OK).await["items"][0]["id"].as_str().unwrap().to_string();

    let mut tokens = Vec::new();
    for (target, name, path) in [
        (json!({"kind": "file", "id": file}), "sunrise.jpg", json!("/Campaigns/Spring 2026/sunrise.jpg")),
        (json!({"kind": "folder", "id": spring}), "Spring 2026", json!("/Campaigns/Spring 2026")),
        (json!({"kind": "collection", "id": picks}), "Homepage picks", json!(null)),
    ] {
        let link = create(&app, &admin, json!({"target": target}), StatusCode::CREATED).await;
        assert_eq!(link["target"]["name"], name);
        assert_eq!(link["target"]["path"], path);
        assert_eq!(link["state"], "active");
        assert_eq!(link["password_protected"], false);
        let url = link["url"].as_str().unwrap();
        let token = url.strip_prefix(&format!("{}/s/", app.base)).expect("a share URL on the public base");
        assert!(token.len() >= 22, "at least 128 bits: {token}");
        assert!(token.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'), "URL-safe: {token}");
        tokens.push(token.to_string());
    }
    tokens.sort();
    tokens.dedup();
    assert_eq!(tokens.len(), 3);
}

#[tokio::test]
async fn accounts_without_the_enterprise_plan_are_refused() {
    let app = spawn_app().await;
    let (olga, token) = app.other_account(false).await;
    let actor = app.library.actor(olga.id).await.unwrap().unwrap();
    let folder = app.library.create_folder(&actor, None, "Mine").await.unwrap();
    let body = json!({"target": {"kind": "folder", "id": folder.id}});
    let refused = create(&app, &token, body, StatusCode::FORBIDDEN).await;
    assert_eq!(refused["error"]["code"], "enterprise_plan_required");
    assert!(refused["error"]["message"].as_str().unwrap().contains("enterprise plan"));
    app.get("/api/links", &token, StatusCode::FORBIDDEN).await;
}

#[tokio::test]
async fn only_managers_of_the_target_manage_its_links() {
    let app = spawn_app().await;
    let riley = app.restricted();
    let inside = sunrise(&app).await;
    let products = app.folder_id(&["Products"]).await;
    let outside = app.file_id(&products, "product-blue.png").await;

    let mine = create(&app, &riley, json!({"target": file_target(&inside)}), StatusCode::CREATED).await;
    create(&app, &riley, json!({"target": file_target(&outside)}), StatusCode::NOT_FOUND).await;
    let admins = create(&app, &app.admin(), json!({"target": file_target(&outside)}), StatusCode::CREATED).await;
    for path in [format!("/api/links/{}", admins["id"].as_str().unwrap()), format!("/api/files/{outside}/links")] {
        app.get(&path, &riley, StatusCode::NOT_FOUND).await;
    }
    app.delete(&format!("/api/links/{}", admins["id"].as_str().unwrap()), &riley, StatusCode::NOT_FOUND).await;
    app.get(&format!("/api/links/{}", mine["id"].as_str().unwrap()), &riley, StatusCode::OK).await;
    let listed = app.get(&format!("/api/files/{inside}/links"), &riley, StatusCode::OK).await;
    assert_eq!(listed["items"].as_array().unwrap().len(), 1);
    let refused = app.get("/api/links", &riley, StatusCode::FORBIDDEN).await;
    assert!(refused["error"]["message"].as_str().unwrap().contains("administrators"));

    // view-only users and edit grants fall short of manage
    let vera = app.viewer();
    let refused = create(&app, &vera, json!({"target": file_target(&outside)}), StatusCode::FORBIDDEN).await;
    assert!(refused["error"]["message"].as_str().unwrap().contains("manage"));
    app.get("/api/links", &vera, StatusCode::FORBIDDEN).await;
    let (editor, editor_token) = app.user_with_role("restricted").await;
    let grant = json!({"target": {"kind": "folder", "id": products}, "level": "edit"});
    app.send(
        Method::PUT,
        &format!("/api/users/{}/grants", editor["id"].as_str().unwrap()),
        &app.admin(),
        grant,
        StatusCode::OK,
    )
    .await;
    create(&app, &editor_token, json!({"target": file_target(&outside)}), StatusCode::FORBIDDEN).await;
    let (_, billing) = app.user_with_role("billing").await;
    create(&app, &billing, json!({"target": file_target(&outside)}), StatusCode::NOT_FOUND).await;
    // developers and full-access users manage anything
    for role in ["developer", "full_access"] {
        let (_, token) = app.user_with_role(role).await;
        create(&app, &token, json!({"target": file_target(&outside)}), StatusCode::CREATED).await;
        app.get("/api/links", &token, StatusCode::OK).await;
    }
    // another account's link is a missing link
    let (_, olga) = app.other_account(true).await;
    app.get(&format!("/api/links/{}", admins["id"].as_str().unwrap()), &olga, StatusCode::NOT_FOUND).await;
    create(&app, &olga, json!({"target": file_target(&outside)}), StatusCode::NOT_FOUND).await;
}

#[tokio::test]
async fn fifty_simultaneous_creates_on_one_file_make_exactly_five_links() {
    let app = std::sync::Arc::new(spawn_app().await);
    let file = sunrise(&app).await;
    let token = app.admin();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..50 {
        let (app, token, file) = (app.clone(), token.clone(), file.clone());
        tasks.spawn(async move {
            let res = app
                .request(Method::POST, "/api/links", &token)
                .json(&json!({"target": file_target(&file)}))
                .send()
                .await;
            let res = res.unwrap();
            (res.status(), res.json::<Value>().await.unwrap())
        });
    }
    let mut created = 0;
    while let Some(r) = tasks.join_next().await {
        let (status, body) = r.unwrap();
        match status {
            StatusCode::CREATED => created += 1,
            StatusCode::CONFLICT => {
                assert_eq!(body["error"]["code"], "target_link_limit");
                assert!(body["error"]["message"].as_str().unwrap().contains('5'), "{body}");
            }
            other => panic!("unexpected {other}: {body}"),
        }
    }
    assert_eq!(created, 5);
    let listed = app.get(&format!("/api/files/{file}/links"), &token, StatusCode::OK).await;
    assert_eq!(listed["items"].as_array().unwrap().len(), 5);
}

#[tokio::test]
async fn three_hundred_simultaneous_creates_in_an_account_of_limit_100_make_exactly_100() {
    let app = std::sync::Arc::new(spawn_app().await);
    let admin = app.library.actor(app.demo.admin.id).await.unwrap().unwrap();
    let mut files = Vec::new();
    for i in 0..60 {
        let purpose = UploadPurpose::NewFile { folder_id: None, name: format!("f{i}.png") };
        files.push(app.library.import_file(&admin, purpose, "image/png", demo_png(4, 4, i)).await.unwrap().id);
    }
    let token = app.admin();
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..300 {
        let (app, token, file) = (app.clone(), token.clone(), files[i % 60]);
        tasks.spawn(async move {
            let body = json!({"target": {"kind": "file", "id": file}});
            let res = app.request(Method::POST, "/api/links", &token).json(&body).send().await.unwrap();
            (res.status(), res.json::<Value>().await.unwrap())
        });
    }
    let mut created = 0;
    while let Some(r) = tasks.join_next().await {
        let (status, body) = r.unwrap();
        match status {
            StatusCode::CREATED => created += 1,
            StatusCode::CONFLICT => {
                let code = body["error"]["code"].as_str().unwrap();
                assert!(code == "account_link_limit" || code == "target_link_limit", "{body}");
            }
            other => panic!("unexpected {other}: {body}"),
        }
    }
    assert_eq!(created, 100);
    let mut total = 0;
    let mut cursor = String::new();
    loop {
        let page = app.get(&format!("/api/links?limit=200{cursor}"), &token, StatusCode::OK).await;
        total += page["items"].as_array().unwrap().len();
        match page["next_cursor"].as_str() {
            Some(c) => cursor = format!("&cursor={c}"),
            None => break,
        }
    }
    assert_eq!(total, 100);
    let refused =
        create(&app, &token, json!({"target": {"kind": "file", "id": files[59]}}), StatusCode::CONFLICT).await;
    assert!(refused["error"]["message"].as_str().unwrap().contains("100"), "{refused}");
}

#[tokio::test]
async fn the_account_limit_is_the_accounts_own() {
    let app = spawn_app().await;
    let mut account = app.demo.account.clone();
    account.link_limit = 2;
    app.library.catalog().replace_account(&account).await.unwrap();
    let products = app.folder_id(&["Products"]).await;
    let token = app.admin();
    for name in ["product-blue.png", "product-green.png"] {
        let id = app.file_id(&products, name).await;
        create(&app, &token, json!({"target": file_target(&id)}), StatusCode::CREATED).await;
    }
    let id = app.file_id(&products, "spec-sheet.txt").await;
    let refused = create(&app, &token, json!({"target": file_target(&id)}), StatusCode::CONFLICT).await;
    assert_eq!(refused["error"]["code"], "account_link_limit");
    assert!(refused["error"]["message"].as_str().unwrap().contains('2'));
}

#[tokio::test]
async fn validity_windows_are_checked_and_expired_links_stop_counting() {
    let app = spawn_app().await;
    let token = app.admin();
    let file = sunrise(&app).await;
    let now = app.now();
    let at = |secs: i64| (now + chrono::Duration::seconds(secs)).to_rfc3339();
    for (body, field) in [
        (json!({"target": file_target(&file), "valid_from": at(100), "valid_until": at(50)}), "valid_until"),
        (json!({"target": file_target(&file), "valid_until": at(-10)}), "valid_until"),
        (json!({"target": file_target(&file), "valid_from": "2026-02-30T00:00:00Z"}), "valid_from"),
        (json!({"target": file_target(&file), "valid_until": "tomorrow"}), "valid_until"),
    ] {
        let refused = create(&app, &token, body, StatusCode::UNPROCESSABLE_ENTITY).await;
        assert_eq!(refused["error"]["field"], field, "{refused}");
    }
    let scheduled =
        create(&app, &token, json!({"target": file_target(&file), "valid_from": at(3600)}), StatusCode::CREATED).await;
    assert_eq!(scheduled["state"], "scheduled");
    // Two links that end in ten minutes; the server's clock then moves past
    // their end, however long the requests took.
    let body = json!({"target": file_target(&file), "valid_until": at(600)});
    let short = create(&app, &token, body, StatusCode::CREATED).await;
    let products = app.folder_id(&["Products"]).await;
    let blue = app.file_id(&products, "product-blue.png").await;
    let body = json!({"target": file_target(&blue), "valid_until": at(600)});
    let elsewhere = create(&app, &token, body, StatusCode::CREATED).await;
    for _ in 0..3 {
        create(&app, &token, json!({"target": file_target(&file)}), StatusCode::CREATED).await;
    }
    create(&app, &token, json!({"target": file_target(&file)}), StatusCode::CONFLICT).await;
    app.clock.advance(chrono::Duration::minutes(20));
    let short_path = format!("/api/links/{}", short["id"].as_str().unwrap());
    assert_eq!(app.get(&short_path, &token, StatusCode::OK).await["state"], "expired");
    create(&app, &token, json!({"target": file_target(&file)}), StatusCode::CREATED).await;
    app.get(&short_path, &token, StatusCode::NOT_FOUND).await;
    let audit = app.get(&format!("/api/audit?link_id={}", short["id"].as_str().unwrap()), &token, StatusCode::OK).await;
    assert_eq!(audit["items"][0]["action"], "deleted", "the expired link in the way was removed, on the record");
    assert_eq!(audit["items"][0]["actor"], json!({"type": "system", "reason": "expired"}));

    let path = format!("/api/links/{}", elsewhere["id"].as_str().unwrap());
    let refused =
        app.send(Method::PATCH, &path, &token, json!({"valid_until": at(7200 + 1200)}), StatusCode::CONFLICT).await;
    assert_eq!(refused["error"]["code"], "link_expired", "an expired link cannot be revived past the limits");

    let listed = app.get("/api/links?state=expired", &token, StatusCode::OK).await;
    assert_eq!(listed["items"].as_array().unwrap().len(), 1);
    let listed = app.get("/api/links?state=scheduled", &token, StatusCode::OK).await;
    assert_eq!(listed["items"][0]["id"], scheduled["id"]);
    let listed = app.get("/api/links?state=active", &token, StatusCode::OK).await;
    assert_eq!(listed["items"].as_array().unwrap().len(), 4);
}

#[tokio::test]
async fn passwords_are_set_changed_and_removed_and_never_shown() {
    let app = spawn_app().await;
    let token = app.admin();
    let file = sunrise(&app).await;
    for bad in ["short", &"x".repeat(257)] {
        let body = json!({"target": file_target(&file), "password": bad});
        let refused = create(&app, &token, body, StatusCode::UNPROCESSABLE_ENTITY).await;
        assert_eq!(refused["error"]["field"], "password");
    }
    let res = app
        .request(Method::POST, "/api/links", &token)
        .json(&json!({"target": file_target(&file), "password": "open sesame"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let text = res.text().await.unwrap();
    assert!(!text.contains("open sesame") && !text.contains("argon2") && !text.contains("password_hash"), "{text}");
    let link: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(link["password_protected"], true);
    let path = format!("/api/links/{}", link["id"].as_str().unwrap());
    let url = link["url"].clone();

    let changed = app.send(Method::PATCH, &path, &token, json!({"password": "new secret!"}), StatusCode::OK).await;
    assert_eq!((changed["password_protected"].as_bool(), &changed["url"]), (Some(true), &url), "the URL never changes");
    let removed = app.send(Method::PATCH, &path, &token, json!({"password": null}), StatusCode::OK).await;
    assert_eq!(removed["password_protected"], false);
    let untouched = app.send(Method::PATCH, &path, &token, json!({"valid_until": null}), StatusCode::OK).await;
    assert_eq!(untouched["url"], url);

    let audit = app.get(&format!("/api/audit?link_id={}", link["id"].as_str().unwrap()), &token, StatusCode::OK).await;
    let text = audit.to_string();
    assert!(!text.contains("open sesame") && !text.contains("new secret") && !text.contains("argon2"), "{text}");
    let changes: Vec<_> = audit["items"].as_array().unwrap().iter().map(|e| e["changes"]["password"].clone()).collect();
    assert_eq!(changes, [json!("removed"), json!("changed"), json!("set")], "newest first");
}

#[tokio::test]
async fn exposing_drafts_needs_a_folder_or_collection_and_the_drafts_feature() {
    let app = spawn_app().await;
    let token = app.admin();
    let file = sunrise(&app).await;
    let products = app.folder_id(&["Products"]).await;
    let refused = create(
        &app,
        &token,
        json!({"target": file_target(&file), "expose_unpublished": true}),
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(refused["error"]["field"], "expose_unpublished");
    let folder = json!({"kind": "folder", "id": products});
    let link = create(&app, &token, json!({"target": folder, "expose_unpublished": true}), StatusCode::CREATED).await;
    assert_eq!(link["expose_unpublished"], true);

    let admin = NewUser { id: None, name: "Dee".into(), email: "dee@nodrafts.example".into(), role: Role::Admin };
    let (_, dee) = app.library.create_account("No Drafts Ltd", Plan::Enterprise, false, admin).await.unwrap();
    let dee_actor = app.library.actor(dee.id).await.unwrap().unwrap();
    let their = app.library.create_folder(&dee_actor, None, "Stuff").await.unwrap();
    let dee_token = app.token(&dee);
    let body = json!({"target": {"kind": "folder", "id": their.id}, "expose_unpublished": true});
    let refused = create(&app, &dee_token, body, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert!(refused["error"]["message"].as_str().unwrap().contains("draft"));
    let link =
        create(&app, &dee_token, json!({"target": {"kind": "folder", "id": their.id}}), StatusCode::CREATED).await;
    let patch = json!({"expose_unpublished": true});
    let path = format!("/api/links/{}", link["id"].as_str().unwrap());
    app.send(Method::PATCH, &path, &dee_token, patch, StatusCode::UNPROCESSABLE_ENTITY).await;
}

#[tokio::test]
async fn deleted_links_are_gone_and_every_change_is_audited() {
    let app = spawn_app().await;
    let token = app.admin();
    let file = sunrise(&app).await;
    let link = create(&app, &token, json!({"target": file_target(&file)}), StatusCode::CREATED).await;
    let id = link["id"].as_str().unwrap();
    let path = format!("/api/links/{id}");
    let until = (chrono::Utc::now() + chrono::Duration::days(7)).to_rfc3339();
    app.send(Method::PATCH, &path, &token, json!({"valid_until": until}), StatusCode::OK).await;
    app.delete(&path, &token, StatusCode::NO_CONTENT).await;
    app.get(&path, &token, StatusCode::NOT_FOUND).await;
    app.delete(&path, &token, StatusCode::NOT_FOUND).await;

    let audit = app.get(&format!("/api/audit?link_id={id}"), &token, StatusCode::OK).await;
    let entries = audit["items"].as_array().unwrap();
    let actions: Vec<_> = entries.iter().map(|e| e["action"].as_str().unwrap()).collect();
    assert_eq!(actions, ["deleted", "updated", "created"]);
    for e in entries {
        assert_eq!(e["actor"], json!({"type": "user", "user_id": app.demo.admin.id}));
        assert_eq!(e["target"], json!({"kind": "file", "id": file}));
    }
    assert!(entries[1]["changes"]["valid_until"]["to"].is_string());
    let only_deletes = app.get("/api/audit?action=deleted", &token, StatusCode::OK).await;
    assert_eq!(only_deletes["items"].as_array().unwrap().len(), 1);
    let by_target = app.get(&format!("/api/audit?target_kind=file&target_id={file}"), &token, StatusCode::OK).await;
    assert_eq!(by_target["items"].as_array().unwrap().len(), 3);
    app.get(&format!("/api/audit?target_id={file}"), &token, StatusCode::BAD_REQUEST).await;
    app.get("/api/audit", &app.restricted(), StatusCode::FORBIDDEN).await;
    app.get("/api/audit", &app.viewer(), StatusCode::FORBIDDEN).await;
    let (_, full) = app.user_with_role("full_access").await;
    app.get("/api/audit", &full, StatusCode::OK).await;
}

#[tokio::test]
async fn the_account_list_pages_sorts_and_filters() {
    let app = spawn_app().await;
    let token = app.admin();
    let file = sunrise(&app).await;
    let products = app.folder_id(&["Products"]).await;
    let mut made = Vec::new();
    for _ in 0..3 {
        made.push(create(&app, &token, json!({"target": file_target(&file)}), StatusCode::CREATED).await["id"].clone());
    }
    made.push(
        create(&app, &token, json!({"target": {"kind": "folder", "id": products}}), StatusCode::CREATED).await["id"]
            .clone(),
    );

    let page1 = app.get("/api/links?limit=3", &token, StatusCode::OK).await;
    let cursor = page1["next_cursor"].as_str().expect("a second page");
    let page2 = app.get(&format!("/api/links?limit=3&cursor={cursor}"), &token, StatusCode::OK).await;
    assert!(page2["next_cursor"].is_null());
    let ids: Vec<_> = page1["items"]
        .as_array()
        .unwrap()
        .iter()
        .chain(page2["items"].as_array().unwrap())
        .map(|l| l["id"].clone())
        .collect();
    let mut newest_first = made.clone();
    newest_first.reverse();
    assert_eq!(ids, newest_first, "newest first by default");
    let oldest = app.get("/api/links?order=oldest&limit=1", &token, StatusCode::OK).await;
    assert_eq!(oldest["items"][0]["id"], made[0]);
    let folders = app.get("/api/links?kind=folder", &token, StatusCode::OK).await;
    assert_eq!(folders["items"].as_array().unwrap().len(), 1);
    assert_eq!(folders["items"][0]["target"]["path"], "/Products");
    app.get("/api/links?kind=planet", &token, StatusCode::BAD_REQUEST).await;
    app.get("/api/links?order=sideways", &token, StatusCode::BAD_REQUEST).await;
}
