//! Roles and grants: who may see and change what.

use publinks_e2e::{expect, spawn_app};
use publinks_media::demo_png;
use reqwest::{Method, StatusCode};
use serde_json::json;

#[tokio::test]
async fn requests_without_a_valid_token_are_refused() {
    let app = spawn_app().await;
    let none = app.http.get(format!("{}/api/me", app.base)).send().await.unwrap();
    assert_eq!(expect(none, StatusCode::UNAUTHORIZED).await["error"]["code"], "unauthenticated");
    app.get("/api/me", "not-a-jwt", StatusCode::UNAUTHORIZED).await;
    let foreign = publinks_domain::tokens::issue(
        &publinks_domain::signing::SecretKey::generate(),
        app.demo.admin.id,
        std::time::Duration::from_secs(60),
    );
    app.get("/api/me", &foreign, StatusCode::UNAUTHORIZED).await;

    let (user, token) = app.user_with_role("full_access").await;
    app.get("/api/me", &token, StatusCode::OK).await;
    app.delete(&format!("/api/users/{}", user["id"].as_str().unwrap()), &app.admin(), StatusCode::NO_CONTENT).await;
    app.get("/api/me", &token, StatusCode::UNAUTHORIZED).await;
}

#[tokio::test]
async fn a_restricted_user_reaches_only_what_is_granted() {
    let app = spawn_app().await;
    let riley = app.restricted();
    let spring = app.folder_id(&["Campaigns", "Spring 2026"]).await;
    let hero = app.folder_id(&["Campaigns", "Spring 2026", "Hero shots"]).await;
    let products = app.folder_id(&["Products"]).await;
    let inside = app.file_id(&spring, "sunrise.jpg").await;
    let below = app.file_id(&hero, "close-up.jpg").await;
    let outside = app.file_id(&products, "product-blue.png").await;

    app.get(&format!("/api/files/{inside}"), &riley, StatusCode::OK).await;
    app.get(&format!("/api/files/{below}"), &riley, StatusCode::OK).await;
    app.get(&format!("/api/folders/{hero}/files"), &riley, StatusCode::OK).await;
    app.get(&format!("/api/files/{outside}"), &riley, StatusCode::NOT_FOUND).await;
    app.get(&format!("/api/folders/{products}/files"), &riley, StatusCode::NOT_FOUND).await;
    app.get("/api/folders/root/files", &riley, StatusCode::FORBIDDEN).await;
    app.send(Method::PATCH, &format!("/api/files/{outside}"), &riley, json!({"tags": ["x"]}), StatusCode::NOT_FOUND)
        .await;
    app.delete(&format!("/api/files/{outside}"), &riley, StatusCode::NOT_FOUND).await;

    // Manage on the folder: edit, upload and delete inside it.
    app.send(Method::PATCH, &format!("/api/files/{below}"), &riley, json!({"tags": ["ok"]}), StatusCode::OK).await;
    let file = app.upload(&riley, Some(&hero), "riley.png", "image/png", &demo_png(8, 8, 8)).await;
    app.delete(&format!("/api/files/{}", file["id"].as_str().unwrap()), &riley, StatusCode::NO_CONTENT).await;
    // ...but not move a file out to where they have no grant.
    app.send(
        Method::POST,
        &format!("/api/files/{below}/move"),
        &riley,
        json!({"folder_id": products}),
        StatusCode::NOT_FOUND,
    )
    .await;
    app.get(&format!("/api/files/{below}"), &riley, StatusCode::OK).await;
    // Users and grants are the administrator's.
    app.get("/api/users", &riley, StatusCode::FORBIDDEN).await;
    let grant = json!({"target": {"kind": "folder", "id": products}, "level": "manage"});
    app.send(
        Method::PUT,
        &format!("/api/users/{}/grants", app.demo.restricted.id),
        &riley,
        grant,
        StatusCode::FORBIDDEN,
    )
    .await;
    app.get(&format!("/api/files/{outside}"), &riley, StatusCode::NOT_FOUND).await;
}

#[tokio::test]
async fn grant_levels_are_ordered_view_edit_manage() {
    let app = spawn_app().await;
    let (user, token) = app.user_with_role("restricted").await;
    let uid = user["id"].as_str().unwrap();
    let products = app.folder_id(&["Products"]).await;
    let blue = app.file_id(&products, "product-blue.png").await;
    let file = format!("/api/files/{blue}");
    let grant = |level: &str| json!({"target": {"kind": "folder", "id": products}, "level": level});
    let grants = format!("/api/users/{uid}/grants");

    app.get(&file, &token, StatusCode::NOT_FOUND).await;
    app.send(Method::PUT, &grants, &app.admin(), grant("view"), StatusCode::OK).await;
    app.get(&file, &token, StatusCode::OK).await;
    let refused = app.send(Method::PATCH, &file, &token, json!({"tags": ["x"]}), StatusCode::FORBIDDEN).await;
    assert!(refused["error"]["message"].as_str().unwrap().contains("edit"), "{refused}");

    app.send(Method::PUT, &grants, &app.admin(), grant("edit"), StatusCode::OK).await;
    app.send(Method::PATCH, &file, &token, json!({"tags": ["x"]}), StatusCode::OK).await;
    app.delete(&file, &token, StatusCode::FORBIDDEN).await;

    app.send(Method::PUT, &grants, &app.admin(), grant("manage"), StatusCode::OK).await;
    app.delete(&file, &token, StatusCode::NO_CONTENT).await;

    app.delete(&format!("{grants}/folder/{products}"), &app.admin(), StatusCode::NO_CONTENT).await;
    app.get(&format!("/api/folders/{products}/files"), &token, StatusCode::NOT_FOUND).await;
    let listed = app.get(&grants, &app.admin(), StatusCode::OK).await;
    assert!(listed["items"].as_array().unwrap().is_empty());
}

#[tokio::test]
async fn view_only_users_read_everything_and_change_nothing() {
    let app = spawn_app().await;
    let vera = app.viewer();
    let products = app.folder_id(&["Products"]).await;
    let blue = app.file_id(&products, "product-blue.png").await;
    app.get("/api/folders/root/folders", &vera, StatusCode::OK).await;
    app.get(&format!("/api/files/{blue}"), &vera, StatusCode::OK).await;
    app.get("/api/collections", &vera, StatusCode::OK).await;
    let res = app.request(Method::GET, &format!("/api/files/{blue}/download"), &vera).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::FOUND);

    app.send(Method::PATCH, &format!("/api/files/{blue}"), &vera, json!({"name": "x.png"}), StatusCode::FORBIDDEN)
        .await;
    app.delete(&format!("/api/files/{blue}"), &vera, StatusCode::FORBIDDEN).await;
    app.send(Method::POST, "/api/folders", &vera, json!({"name": "Mine"}), StatusCode::FORBIDDEN).await;
    app.send(Method::POST, "/api/collections", &vera, json!({"name": "Mine"}), StatusCode::FORBIDDEN).await;
    let upload = json!({"name": "x.txt", "content_type": "text/plain", "size": 1, "folder_id": products});
    app.send(Method::POST, "/api/uploads", &vera, upload, StatusCode::FORBIDDEN).await;
    app.send(Method::POST, &format!("/api/files/{blue}/comments"), &vera, json!({"text": "hi"}), StatusCode::FORBIDDEN)
        .await;
    let file = app.get(&format!("/api/files/{blue}"), &app.admin(), StatusCode::OK).await;
    assert_eq!(file["name"], "product-blue.png", "nothing changed");
}

#[tokio::test]
async fn billing_users_have_no_library_access() {
    let app = spawn_app().await;
    let (_, token) = app.user_with_role("billing").await;
    let products = app.folder_id(&["Products"]).await;
    let blue = app.file_id(&products, "product-blue.png").await;
    app.get("/api/me", &token, StatusCode::OK).await;
    app.get("/api/folders/root/folders", &token, StatusCode::FORBIDDEN).await;
    app.get(&format!("/api/files/{blue}"), &token, StatusCode::NOT_FOUND).await;
    app.get("/api/collections", &token, StatusCode::FORBIDDEN).await;
}

#[tokio::test]
async fn another_accounts_items_are_indistinguishable_from_missing_ones() {
    let app = spawn_app().await;
    let (_, olga) = app.other_account(true).await;
    let products = app.folder_id(&["Products"]).await;
    let blue = app.file_id(&products, "product-blue.png").await;
    let made_up = uuid::Uuid::new_v4();
    for path in [format!("/api/files/{blue}"), format!("/api/files/{made_up}")] {
        let body = app.get(&path, &olga, StatusCode::NOT_FOUND).await;
        assert_eq!(body["error"]["message"], "file not found");
    }
    app.get(&format!("/api/folders/{products}/files"), &olga, StatusCode::NOT_FOUND).await;
    app.delete(&format!("/api/files/{blue}"), &olga, StatusCode::NOT_FOUND).await;
    app.get(&format!("/api/users/{}", app.demo.admin.id), &olga, StatusCode::NOT_FOUND).await;
    let own = app.get("/api/folders/root/folders", &olga, StatusCode::OK).await;
    assert!(own["items"].as_array().unwrap().is_empty(), "a new account starts empty");
    // Grants and collection members cannot point across accounts either.
    let coll = app.send(Method::POST, "/api/collections", &olga, json!({"name": "Mine"}), StatusCode::CREATED).await;
    let cid = coll["id"].as_str().unwrap();
    app.send(Method::PUT, &format!("/api/collections/{cid}/files/{blue}"), &olga, json!(null), StatusCode::NOT_FOUND)
        .await;
    let folder = json!({"name": "Sneaky", "parent_id": products});
    app.send(Method::POST, "/api/folders", &olga, folder, StatusCode::NOT_FOUND).await;
    let grant = json!({"target": {"kind": "folder", "id": products}, "level": "view"});
    app.send(
        Method::PUT,
        &format!("/api/users/{}/grants", app.demo.restricted.id),
        &olga,
        grant,
        StatusCode::NOT_FOUND,
    )
    .await;
}

#[tokio::test]
async fn only_administrators_manage_users_and_not_themselves() {
    let app = spawn_app().await;
    let admin = app.admin();
    let (dev, dev_token) = app.user_with_role("developer").await;
    app.get("/api/users", &dev_token, StatusCode::FORBIDDEN).await;
    let new_user = json!({"name": "X", "email": "x@demo.example", "role": "admin"});
    app.send(Method::POST, "/api/users", &dev_token, new_user, StatusCode::FORBIDDEN).await;
    let me = format!("/api/users/{}", app.demo.admin.id);
    app.send(Method::PATCH, &me, &admin, json!({"role": "view_only"}), StatusCode::CONFLICT).await;
    app.delete(&me, &admin, StatusCode::CONFLICT).await;
    let dev_path = format!("/api/users/{}", dev["id"].as_str().unwrap());
    let changed = app.send(Method::PATCH, &dev_path, &admin, json!({"role": "view_only"}), StatusCode::OK).await;
    assert_eq!(changed["role"], "view_only");
    app.send(Method::POST, "/api/folders", &dev_token, json!({"name": "Nope"}), StatusCode::FORBIDDEN).await;
    let grant = json!({"target": {"kind": "folder", "id": app.folder_id(&["Products"]).await}, "level": "view"});
    let refused =
        app.send(Method::PUT, &format!("{dev_path}/grants"), &admin, grant, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(refused["error"]["field"], "user_id");
}
