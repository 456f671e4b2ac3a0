//! Link creates racing the delete or move of what they point at, fired
//! together over HTTP many times: whatever the order, no link outlives its
//! target's delete or move, every acknowledged create either stands or was
//! removed by the cascade on the record, and the limit counters equal the links.

use publinks_domain::access::Actor;
use publinks_domain::model::{Collection, Folder, UploadPurpose};
use publinks_e2e::{Backend, Storage, TestApp, spawn_app};
use publinks_media::demo_png;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::sync::Arc;
use tokio::sync::Barrier;

/// Rounds per scenario: moto handles one request at a time, so fewer there.
fn rounds() -> usize {
    match Backend::from_env() {
        Backend::Embedded => 40,
        Backend::Aws => 5,
    }
}

/// What a round changes while the creates run.
struct Change {
    method: Method,
    path: String,
    body: Option<Value>,
}

/// Fires a create on each target and `change`, all released at once; returns
/// the ids of the links whose create was acknowledged.
async fn race(app: &TestApp, targets: &[Value], change: Change) -> Vec<String> {
    let barrier = Arc::new(Barrier::new(targets.len() + 1));
    let token = app.admin();
    let mut creates = Vec::new();
    for target in targets {
        let request = app.request(Method::POST, "/api/links", &token).json(&json!({"target": target}));
        let barrier = barrier.clone();
        creates.push(tokio::spawn(async move {
            barrier.wait().await;
            request.send().await.unwrap()
        }));
    }
    let mut request = app.request(change.method, &change.path, &token);
    if let Some(body) = change.body {
        request = request.json(&body);
    }
    barrier.wait().await;
    let changed = request.send().await.unwrap();
    assert!(changed.status().is_success(), "{}: {}", change.path, changed.text().await.unwrap());
    let mut made = Vec::new();
    for create in creates {
        let res = create.await.unwrap();
        match res.status() {
            StatusCode::CREATED => made.push(res.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_string()),
            // The target went first: an honest refusal.
            StatusCode::NOT_FOUND => {}
            other => panic!("a racing create answered {other}: {}", res.text().await.unwrap()),
        }
    }
    made
}

/// Every acknowledged link stands, or was deleted by the system for `reason`
/// (once, on the record); nothing is left whose target is gone or moved; the
/// account's list names every target; the counters equal the links.
async fn check(app: &TestApp, made: &[String], reason: &str) -> (usize, usize) {
    let token = app.admin();
    let (mut standing, mut cascaded) = (0, 0);
    for id in made {
        let res = app.request(Method::GET, &format!("/api/links/{id}"), &token).send().await.unwrap();
        if res.status() == StatusCode::OK {
            standing += 1;
            continue;
        }
        assert_eq!(res.status(), StatusCode::NOT_FOUND);
        let audit = app.get(&format!("/api/audit?link_id={id}&action=deleted"), &token, StatusCode::OK).await;
        let entries = audit["items"].as_array().unwrap();
        assert_eq!(entries.len(), 1, "an acknowledged link is gone only on the record: {audit}");
        assert_eq!(entries[0]["actor"], json!({"type": "system", "reason": reason}));
        cascaded += 1;
    }
    let all = app.get("/api/links?limit=200", &token, StatusCode::OK).await;
    for link in all["items"].as_array().unwrap() {
        assert!(link["target"]["name"].is_string(), "a link whose target is gone: {link}");
    }
    assert_eq!(app.links.reap_orphans().await.unwrap(), 0, "no link left on a target gone or moved");
    if let Storage::Aws(env) = &app.storage {
        let (counter, links, places) = env.link_bookkeeping(app.demo.account.id).await;
        assert_eq!((counter, places), (links, links), "the account counter and place items equal the links");
    }
    (standing, cascaded)
}

/// Lifts the account's link limit out of the way: links made after a move
/// stand, round after round.
async fn spacious(app: &TestApp) {
    let mut account = app.demo.account.clone();
    account.link_limit = 10_000;
    app.library.catalog().replace_account(&account).await.unwrap();
}

async fn admin(app: &TestApp) -> Actor {
    app.library.actor(app.demo.admin.id).await.unwrap().unwrap()
}

/// A file named `name` in `folder`, made without the upload round trips.
async fn file_in(app: &TestApp, folder: Option<&Folder>, name: &str) -> String {
    let purpose = UploadPurpose::NewFile { folder_id: folder.map(|f| f.id), name: name.into() };
    let file = app.library.import_file(&admin(app).await, purpose, "image/png", demo_png(4, 4, 1)).await.unwrap();
    file.id.to_string()
}

/// A chain of folders `names[0]/names[1]/...` under `parent`; returns them, top first.
async fn folders(app: &TestApp, parent: Option<&Folder>, names: &[&str]) -> Vec<Folder> {
    let ada = admin(app).await;
    let mut made: Vec<Folder> = Vec::new();
    for name in names {
        let above = made.last().or(parent).map(|f| f.id);
        made.push(app.library.create_folder(&ada, above, name).await.unwrap());
    }
    made
}

fn file_target(id: &str) -> Value {
    json!({"kind": "file", "id": id})
}

fn folder_target(folder: &Folder) -> Value {
    json!({"kind": "folder", "id": folder.id})
}

#[tokio::test]
async fn link_creates_racing_a_file_delete_leave_no_link_behind() {
    let app = spawn_app().await;
    spacious(&app).await;
    let (mut standing, mut cascaded) = (0, 0);
    for round in 0..rounds() {
        let file = file_in(&app, None, &format!("doomed {round}.png")).await;
        let change = Change { method: Method::DELETE, path: format!("/api/files/{file}"), body: None };
        let made = race(&app, &vec![file_target(&file); 5], change).await;
        let (s, c) = check(&app, &made, "target_deleted").await;
        assert_eq!(s, 0, "nothing stands on a deleted file");
        (standing, cascaded) = (standing + s, cascaded + c);
    }
    eprintln!("file delete: {} rounds, {cascaded} links made then cascaded, {standing} standing", rounds());
}

#[tokio::test]
async fn link_creates_racing_a_file_move_leave_no_link_on_the_old_place() {
    let app = spawn_app().await;
    spacious(&app).await;
    let from = folders(&app, None, &["From"]).await.remove(0);
    let to = folders(&app, None, &["To"]).await.remove(0);
    let (mut standing, mut cascaded) = (0, 0);
    for round in 0..rounds() {
        let file = file_in(&app, Some(&from), &format!("moving {round}.png")).await;
        let change = Change {
            method: Method::POST,
            path: format!("/api/files/{file}/move"),
            body: Some(json!({"folder_id": to.id})),
        };
        let made = race(&app, &vec![file_target(&file); 5], change).await;
        let (s, c) = check(&app, &made, "target_moved").await;
        (standing, cascaded) = (standing + s, cascaded + c);
    }
    eprintln!("file move: {} rounds, {cascaded} links cascaded, {standing} made after the move", rounds());
}

#[tokio::test]
async fn link_creates_racing_the_delete_of_a_folder_above_leave_no_link_behind() {
    let app = spawn_app().await;
    spacious(&app).await;
    let (mut standing, mut cascaded) = (0, 0);
    for round in 0..rounds() {
        let chain = folders(&app, None, &[&format!("Top {round}"), &format!("Middle {round}"), "Deep"]).await;
        let file = file_in(&app, Some(&chain[2]), "deep inside.png").await;
        let mut targets = vec![file_target(&file); 3];
        targets.extend([folder_target(&chain[1]), folder_target(&chain[2])]);
        let change = Change { method: Method::DELETE, path: format!("/api/folders/{}", chain[0].id), body: None };
        let made = race(&app, &targets, change).await;
        let (s, c) = check(&app, &made, "target_deleted").await;
        assert_eq!(s, 0, "nothing stands under a deleted folder");
        (standing, cascaded) = (standing + s, cascaded + c);
    }
    eprintln!("folder delete: {} rounds, {cascaded} links cascaded", rounds());
}

#[tokio::test]
async fn link_creates_racing_the_move_of_a_folder_above_leave_no_link_on_the_old_place() {
    let app = spawn_app().await;
    spacious(&app).await;
    let elsewhere = folders(&app, None, &["Elsewhere"]).await.remove(0);
    let (mut standing, mut cascaded) = (0, 0);
    for round in 0..rounds() {
        let chain = folders(&app, None, &[&format!("Top {round}"), &format!("Middle {round}"), "Deep"]).await;
        let file = file_in(&app, Some(&chain[2]), "deep inside.png").await;
        let mut targets = vec![file_target(&file); 3];
        targets.extend([folder_target(&chain[1]), folder_target(&chain[2])]);
        let path = format!("/api/folders/{}/move", chain[1].id);
        let change = Change { method: Method::POST, path, body: Some(json!({"parent_id": elsewhere.id})) };
        let made = race(&app, &targets, change).await;
        let (s, c) = check(&app, &made, "target_moved").await;
        (standing, cascaded) = (standing + s, cascaded + c);
    }
    eprintln!("folder move: {} rounds, {cascaded} links cascaded, {standing} made after the move", rounds());
}

#[tokio::test]
async fn link_creates_racing_a_collection_delete_leave_no_link_behind() {
    let app = spawn_app().await;
    spacious(&app).await;
    let ada = admin(&app).await;
    let mut cascaded = 0;
    for round in 0..rounds() {
        let collection: Collection = app.library.create_collection(&ada, &format!("Doomed {round}")).await.unwrap();
        let target = json!({"kind": "collection", "id": collection.id});
        let change = Change { method: Method::DELETE, path: format!("/api/collections/{}", collection.id), body: None };
        let made = race(&app, &vec![target; 5], change).await;
        let (s, c) = check(&app, &made, "target_deleted").await;
        assert_eq!(s, 0, "nothing stands on a deleted collection");
        cascaded += c;
    }
    eprintln!("collection delete: {} rounds, {cascaded} links cascaded", rounds());
}
