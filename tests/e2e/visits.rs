//! What a visit costs in storage calls: on the AWS backend, the DynamoDB and
//! S3 requests each visitor request makes, counted on moto, held to the
//! figures infra/README.md gives ("What a visit costs") with the reason for
//! each. On the embedded store the same visits run and are only checked.

use publinks_domain::model::UploadPurpose;
use publinks_e2e::{TestApp, spawn_app, total_calls};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// A folder of `files` small files, shared by an open link; returns the
/// share path (`/s/...`) and the files' ids.
async fn shared_folder(app: &TestApp, files: usize) -> (String, Vec<String>, String) {
    let actor = app.library.actor(app.demo.admin.id).await.unwrap().unwrap();
    let folder = app.library.create_folder(&actor, None, "Visited").await.unwrap();
    let mut ids = Vec::with_capacity(files);
    for chunk in (0..files).collect::<Vec<_>>().chunks(16) {
        let imports = chunk.iter().map(|i| {
            let purpose = UploadPurpose::NewFile { folder_id: Some(folder.id), name: format!("file-{i:04}.txt") };
            app.library.import_file(&actor, purpose, "text/plain", format!("file {i}").into_bytes())
        });
        for file in futures_util::future::join_all(imports).await {
            ids.push(file.unwrap().id.to_string());
        }
    }
    let body = json!({"target": {"kind": "folder", "id": folder.id}});
    let link = app.send(Method::POST, "/api/links", &app.admin(), body, StatusCode::CREATED).await;
    let limited = json!({"target": {"kind": "folder", "id": folder.id}, "max_downloads": 100});
    let limited = app.send(Method::POST, "/api/links", &app.admin(), limited, StatusCode::CREATED).await;
    let path = |link: &Value| link["url"].as_str().unwrap().strip_prefix(&app.base).unwrap().to_string();
    (path(&link), ids, path(&limited))
}

/// The status of `request` and the storage calls it cost (by operation).
async fn cost(app: &TestApp, request: reqwest::RequestBuilder) -> (StatusCode, Option<BTreeMap<String, u64>>) {
    let (res, calls) = app.calls_of(request.send()).await;
    (res.unwrap().status(), calls)
}

#[tokio::test]
async fn each_visit_costs_the_storage_calls_the_table_design_allows() {
    let app = spawn_app().await;
    let (share, files, limited) = shared_folder(&app, 210).await;
    let at = |path: &str| format!("{}{share}{path}", app.base);
    let session: Value = app.http.post(at("/api/session")).json(&json!({})).send().await.unwrap().json().await.unwrap();
    let token = session["token"].as_str().unwrap().to_string();
    let at_limited = |path: &str| format!("{}{limited}{path}", app.base);
    let session: Value =
        app.http.post(at_limited("/api/session")).json(&json!({})).send().await.unwrap().json().await.unwrap();
    let limited_token = session["token"].as_str().unwrap().to_string();
    let file = &files[7];

    // (what, request, status, most calls allowed: infra/README.md says why)
    let visits = [
        ("open the link's page (first visit)", app.http.get(at("")), StatusCode::OK, 7),
        ("start a session", app.http.post(at("/api/session")).json(&json!({})), StatusCode::CREATED, 4),
        (
            "list 200 files (JSON)",
            app.http.get(at("/api/folders/root?limit=200")).bearer_auth(&token),
            StatusCode::OK,
            4,
        ),
        ("a file's page", app.http.get(at(&format!("/files/{file}"))).bearer_auth(&token), StatusCode::OK, 8),
        (
            "download a file",
            app.http.get(at(&format!("/api/files/{file}/download"))).bearer_auth(&token),
            StatusCode::SEE_OTHER,
            6,
        ),
        (
            "download a file, link with a download limit",
            app.http.get(at_limited(&format!("/api/files/{file}/download"))).bearer_auth(&limited_token),
            StatusCode::SEE_OTHER,
            7,
        ),
        (
            "ask for a ZIP of one file",
            app.http.post(at("/api/archives")).bearer_auth(&token).json(&json!({"file_ids": [file]})),
            StatusCode::ACCEPTED,
            12,
        ),
    ];
    let mut report = Vec::new();
    let mut over = Vec::new();
    for (what, request, status, allowed) in visits {
        let (got, calls) = cost(&app, request).await;
        assert_eq!(got, status, "{what}");
        let total = total_calls(&calls);
        let (reads, writes) = split(&calls);
        report.push(format!(
            "{what:<44} {total:>3} calls (at most {allowed}): {reads:>2} reads, {writes:>2} writes  {}",
            fmt(&calls)
        ));
        if calls.is_some() && total > allowed {
            over.push(format!("{what}: {total} storage calls, more than {allowed}"));
        }
    }
    // Printed for the benchmark too (`scripts/bench.sh visits`).
    eprintln!("storage calls per visit:\n{}", report.join("\n"));
    assert!(over.is_empty(), "{over:#?}");
}

/// Reads and writes among `calls` (a request that changes nothing stored is a read).
fn split(calls: &Option<BTreeMap<String, u64>>) -> (u64, u64) {
    let reading = ["Get", "Query", "Scan", "BatchGet", "TransactGet", "Head", "List"];
    calls.iter().flatten().fold((0, 0), |(r, w), (op, n)| {
        let name = op.rsplit('.').next().unwrap_or(op);
        if reading.iter().any(|p| name.starts_with(p)) { (r + n, w) } else { (r, w + n) }
    })
}

fn fmt(calls: &Option<BTreeMap<String, u64>>) -> String {
    calls.as_ref().map_or(String::new(), |c| c.iter().map(|(op, n)| format!("{op}×{n}")).collect::<Vec<_>>().join(" "))
}
