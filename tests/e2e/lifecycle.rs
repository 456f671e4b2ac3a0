//! Links disappear with what they point at (deleted or moved) and when they
//! expire; each removal is on the record, and frees its slot at once.

use publinks_e2e::{TestApp, spawn_app};
use publinks_media::demo_png;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

async fn link_on(app: &TestApp, target: Value) -> String {
    let body = json!({"target": target});
    app.send(Method::POST, "/api/links", &app.admin(), body, StatusCode::CREATED).await["id"]
        .as_str()
        .unwrap()
        .to_string()
}

async fn gone_by(app: &TestApp, link: &str, reason: &str) {
    app.get(&format!("/api/links/{link}"), &app.admin(), StatusCode::NOT_FOUND).await;
    let audit = app.get(&format!("/api/audit?link_id={link}&action=deleted"), &app.admin(), StatusCode::OK).await;
    let entries = audit["items"].as_array().unwrap();
    assert_eq!(entries.len(), 1, "deleted exactly once: {audit}");
    assert_eq!(entries[0]["actor"], json!({"type": "system", "reason": reason}));
}

async fn alive(app: &TestApp, link: &str) {
    app.get(&format!("/api/links/{link}"), &app.admin(), StatusCode::OK).await;
}

#[tokio::test]
async fn deleting_a_file_deletes_its_links_and_frees_their_slots() {
    let app = spawn_app().await;
    let token = app.admin();
    let file = app.upload(&token, None, "shared.png", "image/png", &demo_png(8, 8, 1)).await;
    let id = file["id"].as_str().unwrap();
    let mut links = Vec::new();
    for _ in 0..5 {
        links.push(link_on(&app, json!({"kind": "file", "id": id})).await);
    }
    let mut account = app.demo.account.clone();
    account.link_limit = 5;
    app.library.catalog().replace_account(&account).await.unwrap();
    app.delete(&format!("/api/files/{id}"), &token, StatusCode::NO_CONTENT).await;
    for l in &links {
        gone_by(&app, l, "target_deleted").await;
    }
    let other = app.upload(&token, None, "next.png", "image/png", &demo_png(8, 8, 2)).await;
    for _ in 0..5 {
        link_on(&app, json!({"kind": "file", "id": other["id"]})).await;
    }
}

#[tokio::test]
async fn deleting_a_folder_deletes_the_links_on_everything_under_it() {
    let app = spawn_app().await;
    let campaigns = app.folder_id(&["Campaigns"]).await;
    let spring = app.folder_id(&["Campaigns", "Spring 2026"]).await;
    let hero = app.folder_id(&["Campaigns", "Spring 2026", "Hero shots"]).await;
    let close_up = app.file_id(&hero, "close-up.jpg").await;
    let products = app.folder_id(&["Products"]).await;
    let picks = app.get("/api/collections", &app.admin(), StatusCode::OK).await["items"][0]["id"].clone();
    let on_top = link_on(&app, json!({"kind": "folder", "id": campaigns})).await;
    let on_spring = link_on(&app, json!({"kind": "folder", "id": spring})).await;
    let on_hero = link_on(&app, json!({"kind": "folder", "id": hero})).await;
    let on_file = link_on(&app, json!({"kind": "file", "id": close_up})).await;
    let unrelated = link_on(&app, json!({"kind": "folder", "id": products})).await;
    let on_collection = link_on(&app, json!({"kind": "collection", "id": picks})).await;

    app.delete(&format!("/api/folders/{campaigns}"), &app.admin(), StatusCode::ACCEPTED).await;
    for l in [&on_top, &on_spring, &on_hero, &on_file] {
        gone_by(&app, l, "target_deleted").await;
    }
    alive(&app, &unrelated).await;
    alive(&app, &on_collection).await;
    app.delete(&format!("/api/collections/{}", picks.as_str().unwrap()), &app.admin(), StatusCode::NO_CONTENT).await;
    gone_by(&app, &on_collection, "target_deleted").await;
}

#[tokio::test]
async fn moving_a_file_or_folder_deletes_its_links_and_a_new_version_keeps_them() {
    let app = spawn_app().await;
    let token = app.admin();
    let spring = app.folder_id(&["Campaigns", "Spring 2026"]).await;
    let hero = app.folder_id(&["Campaigns", "Spring 2026", "Hero shots"]).await;
    let products = app.folder_id(&["Products"]).await;
    let dusk = app.file_id(&spring, "dusk.jpg").await;
    let close_up = app.file_id(&hero, "close-up.jpg").await;
    let blue = app.file_id(&products, "product-blue.png").await;

    let on_dusk = link_on(&app, json!({"kind": "file", "id": dusk})).await;
    app.upload_version(&token, &dusk, "image/png", &demo_png(10, 10, 3)).await;
    alive(&app, &on_dusk).await;
    app.send(Method::POST, &format!("/api/files/{dusk}/move"), &token, json!({"folder_id": spring}), StatusCode::OK)
        .await;
    alive(&app, &on_dusk).await;
    app.send(Method::POST, &format!("/api/files/{dusk}/move"), &token, json!({"folder_id": products}), StatusCode::OK)
        .await;
    gone_by(&app, &on_dusk, "target_moved").await;

    let on_spring = link_on(&app, json!({"kind": "folder", "id": spring})).await;
    let on_hero = link_on(&app, json!({"kind": "folder", "id": hero})).await;
    let on_close_up = link_on(&app, json!({"kind": "file", "id": close_up})).await;
    let on_blue = link_on(&app, json!({"kind": "file", "id": blue})).await;
    app.send(Method::POST, &format!("/api/folders/{spring}/move"), &token, json!({"parent_id": null}), StatusCode::OK)
        .await;
    for l in [&on_spring, &on_hero, &on_close_up] {
        gone_by(&app, l, "target_moved").await;
    }
    alive(&app, &on_blue).await;
}

#[tokio::test]
async fn the_sweep_removes_expired_links_once_and_on_the_record() {
    let app = spawn_app().await;
    let spring = app.folder_id(&["Campaigns", "Spring 2026"]).await;
    let until = app.now() + chrono::Duration::minutes(10);
    let body = json!({"target": {"kind": "folder", "id": spring}, "valid_until": until.to_rfc3339()});
    let short = app.send(Method::POST, "/api/links", &app.admin(), body, StatusCode::CREATED).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let lasting = link_on(&app, json!({"kind": "folder", "id": spring})).await;
    assert_eq!(app.links.expire_due(app.now(), 100).await.unwrap(), 0);
    app.clock.advance(chrono::Duration::minutes(20));
    assert_eq!(app.links.expire_due(app.now(), 100).await.unwrap(), 1);
    assert_eq!(app.links.expire_due(app.now(), 100).await.unwrap(), 0);
    gone_by(&app, &short, "expired").await;
    alive(&app, &lasting).await;
}
