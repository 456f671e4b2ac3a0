//! Big folder trees: a move drops the links under it at a cost that does not
//! grow with the files in it, and a delete answers at once and leaves the
//! removal of the contents to the worker, which can stop and resume.

use chrono::Utc;
use publinks_domain::ids::FolderId;
use publinks_domain::library::{Library, LibrarySettings};
use publinks_domain::model::{DeletionStatus, File, Folder, Placement};
use publinks_e2e::{Backend, TestApp, spawn_app};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// Folders of the tree: `Root/{A,B}/{1,2}/Deep`, eleven in all.
struct Tree {
    root: Folder,
    /// Every folder of the tree, the root first, parents before children.
    folders: Vec<(Folder, Placement)>,
}

/// Makes the tree under the top of the demo account and spreads `files`
/// files over its folders (written straight to the catalog: the upload
/// round trips are not what is tested here).
async fn tree(app: &TestApp, name: &str, files: usize) -> Tree {
    let ada = app.library.actor(app.demo.admin.id).await.unwrap().unwrap();
    let root = app.library.create_folder(&ada, None, name).await.unwrap();
    let mut folders = vec![(root.clone(), Placement(vec![root.id]))];
    for side in ["A", "B"] {
        let side = app.library.create_folder(&ada, Some(root.id), side).await.unwrap();
        folders.push((side.clone(), Placement(vec![side.id, root.id])));
        for n in ["1", "2"] {
            let mid = app.library.create_folder(&ada, Some(side.id), n).await.unwrap();
            folders.push((mid.clone(), Placement(vec![mid.id, side.id, root.id])));
            let deep = app.library.create_folder(&ada, Some(mid.id), "Deep").await.unwrap();
            folders.push((deep.clone(), Placement(vec![deep.id, mid.id, side.id, root.id])));
        }
    }
    let catalog = app.library.catalog();
    let records: Vec<_> = (0..files)
        .map(|i| {
            let (folder, placement) = &folders[i % folders.len()];
            (file_record(app, folder, &format!("f{i:05}.bin")), placement.clone())
        })
        .collect();
    for batch in records.chunks(32) {
        let inserts = batch.iter().map(|(file, placement)| catalog.insert_file(file, placement));
        for inserted in futures_util::future::join_all(inserts).await {
            inserted.unwrap();
        }
    }
    Tree { root, folders }
}

fn file_record(app: &TestApp, folder: &Folder, name: &str) -> File {
    app.file_record(folder.id, name, ("application/octet-stream", 1), Utc::now())
}

async fn link_on(app: &TestApp, target: Value) -> String {
    let body = json!({"target": target});
    app.send(Method::POST, "/api/links", &app.admin(), body, StatusCode::CREATED).await["id"]
        .as_str()
        .unwrap()
        .to_string()
}

/// Links on the root, a folder at each depth and a file deep down; returns their ids.
async fn links_at_every_depth(app: &TestApp, tree: &Tree) -> Vec<String> {
    let mut ids = Vec::new();
    for (folder, _) in [&tree.folders[0], &tree.folders[1], &tree.folders[2], &tree.folders[3]] {
        ids.push(link_on(app, json!({"kind": "folder", "id": folder.id})).await);
    }
    let deep = &tree.folders[3].0;
    let files = app.get(&format!("/api/folders/{}/files?limit=1", deep.id), &app.admin(), StatusCode::OK).await;
    ids.push(link_on(app, json!({"kind": "file", "id": files["items"][0]["id"]})).await);
    ids
}

async fn deleted_by_the_system(app: &TestApp, links: &[String], reason: &str) {
    for id in links {
        app.get(&format!("/api/links/{id}"), &app.admin(), StatusCode::NOT_FOUND).await;
        let audit = app.get(&format!("/api/audit?link_id={id}&action=deleted"), &app.admin(), StatusCode::OK).await;
        assert_eq!(audit["items"][0]["actor"], json!({"type": "system", "reason": reason}), "{audit}");
    }
}

#[tokio::test]
async fn a_big_tree_moves_at_the_cost_of_an_empty_one_and_is_deleted_in_the_background() {
    let app = spawn_app().await;
    let token = app.admin();
    let elsewhere =
        app.send(Method::POST, "/api/folders", &token, json!({"name": "Elsewhere"}), StatusCode::CREATED).await;
    let outside = link_on(&app, json!({"kind": "folder", "id": elsewhere["id"]})).await;
    let mut costs = Vec::new();
    let mut trees = Vec::new();
    let big_files = big_tree_files();
    for (name, files) in [("Small", 11), ("Big", big_files)] {
        let tree = tree(&app, name, files).await;
        let links = links_at_every_depth(&app, &tree).await;
        let path = format!("/api/folders/{}/move", tree.root.id);
        let body = json!({"parent_id": elsewhere["id"]});
        let (_, calls) = app.calls_of(app.send(Method::POST, &path, &token, body, StatusCode::OK)).await;
        deleted_by_the_system(&app, &links, "target_moved").await;
        eprintln!("moving a tree of {files} files: {} storage calls {calls:?}", publinks_e2e::total_calls(&calls));
        costs.push(publinks_e2e::total_calls(&calls));
        trees.push(tree);
    }
    assert_eq!(costs[0], costs[1], "the move's storage calls do not grow with the files under it");
    app.get(&format!("/api/links/{outside}"), &token, StatusCode::OK).await;

    let big = trees.pop().unwrap();
    let links = links_at_every_depth(&app, &big).await;
    let started = std::time::Instant::now();
    let answered = app.delete(&format!("/api/folders/{}", big.root.id), &token, StatusCode::ACCEPTED).await;
    let answer_took = started.elapsed();
    assert_ne!(answered["status"], "done", "the contents are removed after the answer");
    deleted_by_the_system(&app, &links, "target_deleted").await;
    app.get(&format!("/api/folders/{}", big.root.id), &token, StatusCode::NOT_FOUND).await;
    // Asked again while under way: the same deletion, handed out again (two
    // runs at once), removing each thing once and counting it once.
    let again = app.delete(&format!("/api/folders/{}", big.root.id), &token, StatusCode::ACCEPTED).await;
    assert_eq!(again["created_at"], answered["created_at"], "the same deletion");
    let counts = (11, big_files as u64);
    let done = app.deletion_done(&big.root.id.to_string(), &token, Some(counts)).await;
    eprintln!("deleting a tree of {big_files} files: answered in {answer_took:?}, removed in {:?}", started.elapsed());
    assert_eq!((&done["folders_removed"], &done["files_removed"]), (&json!(11), &json!(big_files)));
    for (folder, _) in &big.folders {
        let listed = app.library.catalog().files_in_folder(app.demo.account.id, Some(folder.id), &first(1)).await;
        assert!(listed.unwrap().items.is_empty(), "nothing is left in {}", folder.name);
        assert_eq!(app.library.catalog().folder(folder.id).await.unwrap(), None);
    }
    app.get(&format!("/api/links/{outside}"), &token, StatusCode::OK).await;
}

/// The big tree's files: 2,000 on the embedded store; 200 on moto, which
/// answers every index query by reading the whole table and one request at a
/// time (500 took over two minutes there). The move's cost is compared with
/// the 11-file tree's all the same.
fn big_tree_files() -> usize {
    match Backend::from_env() {
        Backend::Embedded => 2000,
        Backend::Aws => 200,
    }
}

fn first(limit: u32) -> publinks_domain::store::PageRequest {
    publinks_domain::store::PageRequest::first(limit)
}

#[tokio::test]
async fn a_tree_deletion_stopped_by_its_deadline_resumes_where_it_was() {
    let app = spawn_app().await;
    let tree = tree(&app, "Interrupted", 120).await;
    let id: FolderId = tree.root.id;
    // A library of its own whose jobs nobody runs: this test is the worker.
    let (unread, _worker) = publinks_local::jobs::local_job_queue(1);
    let library = Library::new(&app.local.stores, LibrarySettings::default()).with_jobs(std::sync::Arc::new(unread));
    let ada = library.actor(app.demo.admin.id).await.unwrap().unwrap();
    library.delete_folder(&ada, id).await.unwrap();
    // 10 s before its deadline a deletion stops, saves its counts and says so.
    let margin = std::time::Duration::from_secs(10);
    let at_once = tokio::time::Instant::now() + margin;
    assert!(!library.run_folder_deletion(id, Some(at_once)).await.unwrap());
    let stopped = library.folder_deletion(&ada, id).await.unwrap();
    assert_eq!(stopped.status, DeletionStatus::Running);
    // Then run after run, each cut short, until one finishes.
    let mut runs = 1;
    loop {
        runs += 1;
        let soon = tokio::time::Instant::now() + margin + std::time::Duration::from_millis(40);
        if library.run_folder_deletion(id, Some(soon)).await.unwrap() {
            break;
        }
        assert!(runs < 1000, "each run gets somewhere");
    }
    eprintln!("a deletion of 120 files in {runs} runs");
    let done = library.folder_deletion(&ada, id).await.unwrap();
    assert_eq!(done.status, DeletionStatus::Done);
    assert_eq!((done.folders_removed, done.files_removed), (11, 120));
    for (folder, _) in &tree.folders {
        assert_eq!(app.library.catalog().folder(folder.id).await.unwrap(), None);
    }
}
