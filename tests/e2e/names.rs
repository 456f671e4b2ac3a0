//! One rule for names in a folder: files and folders alike, compared without
//! case or Unicode form, on upload, rename and move; a clash is a 409 that
//! names what holds the name; racing creates of one name make one item.

use publinks_e2e::{Backend, TestApp, spawn_app};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::sync::Arc;
use tokio::sync::Barrier;

/// Starts an upload of a small text file named `name` and PUTs its bytes;
/// returns the upload id, to be completed later.
async fn staged_upload(app: &TestApp, token: &str, folder: &str, name: &str) -> String {
    let body = json!({"name": name, "folder_id": folder, "content_type": "text/plain", "size": 5});
    let ticket = app.send(Method::POST, "/api/uploads", token, body, StatusCode::CREATED).await;
    let put = app.http.put(ticket["url"].as_str().unwrap()).header("content-type", "text/plain").body("hello");
    assert_eq!(put.send().await.unwrap().status(), StatusCode::OK);
    ticket["upload_id"].as_str().unwrap().to_string()
}

async fn new_folder(app: &TestApp, token: &str, parent: Option<&str>, name: &str) -> String {
    let body = match parent {
        Some(p) => json!({"name": name, "parent_id": p}),
        None => json!({"name": name}),
    };
    app.send(Method::POST, "/api/folders", token, body, StatusCode::CREATED).await["id"].as_str().unwrap().to_string()
}

fn says_clash_with(body: &Value, what: &str) {
    assert_eq!(body["error"]["code"], "name_taken", "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains(what), "the message names the holder {what}: {message}");
}

#[tokio::test]
async fn one_rule_for_names_on_upload_rename_and_move() {
    let app = spawn_app().await;
    let token = app.admin();
    let here = new_folder(&app, &token, None, "Names").await;
    let report = app.upload(&token, Some(&here), "Report.pdf", "text/plain", b"one").await;

    // Refused when the upload is asked for, before any byte is sent.
    let body = json!({"name": "report.PDF", "folder_id": here, "content_type": "text/plain", "size": 3});
    says_clash_with(
        &app.send(Method::POST, "/api/uploads", &token, body, StatusCode::CONFLICT).await,
        "file \"Report.pdf\"",
    );

    // Stored as written, in NFC; compared without case or form, files and folders alike.
    let cafe = app.upload(&token, Some(&here), "Cafe\u{301}.txt", "text/plain", b"two").await;
    assert_eq!(cafe["name"], "Caf\u{e9}.txt");
    let body = json!({"name": "CAF\u{c9}.TXT", "parent_id": here});
    says_clash_with(&app.send(Method::POST, "/api/folders", &token, body, StatusCode::CONFLICT).await, "Caf\u{e9}.txt");

    // Renames.
    let archive = new_folder(&app, &token, Some(&here), "Archive").await;
    let path = format!("/api/files/{}", report["id"].as_str().unwrap());
    let clash = app.send(Method::PATCH, &path, &token, json!({"name": "ARCHIVE"}), StatusCode::CONFLICT).await;
    says_clash_with(&clash, "folder \"Archive\"");
    let clash = app
        .send(
            Method::PATCH,
            &format!("/api/folders/{archive}"),
            &token,
            json!({"name": "report.pdf"}),
            StatusCode::CONFLICT,
        )
        .await;
    says_clash_with(&clash, "file \"Report.pdf\"");
    let recased = app.send(Method::PATCH, &path, &token, json!({"name": "REPORT.pdf"}), StatusCode::OK).await;
    assert_eq!(recased["name"], "REPORT.pdf", "another case of its own name");

    // Moves, of files and of folders.
    app.upload(&token, Some(&archive), "report.PDF", "text/plain", b"three").await;
    let clash = app
        .send(Method::POST, &format!("{path}/move"), &token, json!({"folder_id": archive}), StatusCode::CONFLICT)
        .await;
    says_clash_with(&clash, "file \"report.PDF\"");
    let other = new_folder(&app, &token, None, "Other").await;
    new_folder(&app, &token, Some(&other), "archive").await;
    let clash = app
        .send(
            Method::POST,
            &format!("/api/folders/{archive}/move"),
            &token,
            json!({"parent_id": other}),
            StatusCode::CONFLICT,
        )
        .await;
    says_clash_with(&clash, "folder \"archive\"");

    // A name taken between the upload's start and its completion: the
    // completion says so and the upload stays open; freed, it completes.
    let late = staged_upload(&app, &token, &here, "late.txt").await;
    let blocker = new_folder(&app, &token, Some(&here), "LATE.txt").await;
    let complete = format!("/api/uploads/{late}/complete");
    let clash = app.send(Method::POST, &complete, &token, Value::Null, StatusCode::CONFLICT).await;
    says_clash_with(&clash, "folder \"LATE.txt\"");
    assert_eq!(app.get(&format!("/api/uploads/{late}"), &token, StatusCode::OK).await["state"], "open");
    app.send(Method::PATCH, &format!("/api/folders/{blocker}"), &token, json!({"name": "Later"}), StatusCode::OK).await;
    let made = app.send(Method::POST, &complete, &token, Value::Null, StatusCode::CREATED).await;
    assert_eq!(made["name"], "late.txt");

    // Nothing changed by the refusals.
    let files = app.get(&format!("/api/folders/{here}/files"), &token, StatusCode::OK).await;
    let names: Vec<_> = files["items"].as_array().unwrap().iter().map(|f| f["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["Caf\u{e9}.txt", "late.txt", "REPORT.pdf"]);
}

/// Rounds of the race: moto handles one request at a time, so fewer there.
fn rounds() -> usize {
    match Backend::from_env() {
        Backend::Embedded => 15,
        Backend::Aws => 3,
    }
}

/// Folder creates, upload completions and renames that all want one name
/// (in varied case and form), fired together round after round: one wins
/// each round, every other is refused naming the clash, and the folder
/// holds one item of that name.
#[tokio::test]
async fn racing_creates_renames_and_uploads_of_one_name_make_one_item() {
    let app = Arc::new(spawn_app().await);
    let token = app.admin();
    for round in 0..rounds() {
        let here = new_folder(&app, &token, None, &format!("Round {round}")).await;
        // Everything staged before the race: uploads started (the name was
        // free then) with their bytes sent, files to rename in place.
        let mut uploads = Vec::new();
        for name in ["s\u{e1}me", "S\u{c1}ME", "sa\u{301}me"] {
            uploads.push(staged_upload(&app, &token, &here, name).await);
        }
        let mut renames = Vec::new();
        for i in 0..2 {
            renames.push(app.upload(&token, Some(&here), &format!("other-{i}.txt"), "text/plain", b"x").await);
        }
        let mut requests = Vec::new();
        for name in ["S\u{e1}me", "SA\u{301}ME", "s\u{c1}me"] {
            let body = json!({"name": name, "parent_id": here});
            requests.push(app.request(Method::POST, "/api/folders", &token).json(&body));
        }
        for id in &uploads {
            requests.push(app.request(Method::POST, &format!("/api/uploads/{id}/complete"), &token));
        }
        for file in &renames {
            let path = format!("/api/files/{}", file["id"].as_str().unwrap());
            requests.push(app.request(Method::PATCH, &path, &token).json(&json!({"name": "S\u{c1}ME"})));
        }
        let barrier = Arc::new(Barrier::new(requests.len()));
        let tasks: Vec<_> = requests
            .into_iter()
            .map(|request| {
                let barrier = barrier.clone();
                tokio::spawn(async move {
                    barrier.wait().await;
                    let response = request.send().await.unwrap();
                    let status = response.status();
                    (status, response.json::<Value>().await.unwrap_or(Value::Null))
                })
            })
            .collect();
        let mut wins = 0;
        for task in tasks {
            let (status, body) = task.await.unwrap();
            match status {
                StatusCode::OK | StatusCode::CREATED => wins += 1,
                StatusCode::CONFLICT => {
                    let code = body["error"]["code"].as_str().unwrap();
                    let message = body["error"]["message"].as_str().unwrap();
                    // A completion whose file lost the race at its insert fails, saying why.
                    assert!(
                        code == "name_taken" || (code == "upload_failed" && message.contains("already there")),
                        "round {round}: {body}"
                    );
                }
                other => panic!("round {round}: {other} {body}"),
            }
        }
        assert_eq!(wins, 1, "round {round}");
        let files = app.get(&format!("/api/folders/{here}/files"), &token, StatusCode::OK).await;
        let folders = app.get(&format!("/api/folders/{here}/folders"), &token, StatusCode::OK).await;
        let same: Vec<_> = files["items"]
            .as_array()
            .unwrap()
            .iter()
            .chain(folders["items"].as_array().unwrap())
            .filter(|item| !item["name"].as_str().unwrap().starts_with("other-"))
            .collect();
        assert_eq!(same.len(), 1, "round {round}: {same:?}");
    }
}
