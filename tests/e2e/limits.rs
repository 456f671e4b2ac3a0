//! Links that stop after a number of downloads or sessions: exact under
//! concurrency, then gone for visitors like an expired link, `exhausted` to
//! their managers, and deleted on the expired links' schedule, on the record.

use publinks_e2e::{Backend, TestApp, expect, spawn_app};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::sync::Arc;
use tokio::sync::Barrier;

/// Rounds of the race: moto handles one request at a time, so fewer there.
fn rounds() -> usize {
    match Backend::from_env() {
        Backend::Embedded => 10,
        Backend::Aws => 2,
    }
}

/// Creates a link as the demo admin; returns (link id, share path `/s/...`).
async fn share(app: &TestApp, body: Value) -> (String, String) {
    let link = app.send(Method::POST, "/api/links", &app.admin(), body, StatusCode::CREATED).await;
    let url = link["url"].as_str().unwrap();
    (link["id"].as_str().unwrap().to_string(), url.strip_prefix(&app.base).unwrap().to_string())
}

async fn session(app: &TestApp, share: &str) -> reqwest::Response {
    app.http.post(format!("{}{share}/api/session", app.base)).json(&json!({})).send().await.unwrap()
}

#[tokio::test]
async fn of_fifty_concurrent_downloads_exactly_the_limit_succeed() {
    let app = Arc::new(spawn_app().await);
    let spring = app.folder_id(&["Campaigns", "Spring 2026"]).await;
    let sunrise = app.file_id(&spring, "sunrise.jpg").await;
    for round in 0..rounds() {
        let body = json!({"target": {"kind": "file", "id": sunrise}, "max_downloads": 10});
        let (id, s) = share(&app, body).await;
        let token = expect(session(&app, &s).await, StatusCode::CREATED).await["token"].as_str().unwrap().to_string();
        let barrier = Arc::new(Barrier::new(50));
        let downloads = (0..50).map(|_| {
            let (app, barrier) = (app.clone(), barrier.clone());
            let request =
                app.http.get(format!("{}{s}/api/files/{sunrise}/download", app.base)).bearer_auth(token.clone());
            async move {
                barrier.wait().await;
                request.send().await.unwrap().status()
            }
        });
        let statuses: Vec<StatusCode> = futures_util::future::join_all(downloads).await;
        let passed = statuses.iter().filter(|s| **s == StatusCode::SEE_OTHER).count();
        let refused = statuses.iter().filter(|s| **s == StatusCode::NOT_FOUND).count();
        assert_eq!((passed, refused), (10, 40), "round {round}: {statuses:?}");

        let link = app.get(&format!("/api/links/{id}"), &app.admin(), StatusCode::OK).await;
        assert_eq!(link["state"], "exhausted", "round {round}: {link}");
        assert_eq!(link["activity"]["downloads"], 10, "round {round}: {link}");
        let gone = app.http.get(format!("{}{s}/api", app.base)).send().await.unwrap();
        assert_eq!(expect(gone, StatusCode::NOT_FOUND).await["error"]["code"], "link_unavailable");
        let updates = app.get(&format!("/api/audit?link_id={id}&action=updated"), &app.admin(), StatusCode::OK).await;
        let by_system: Vec<&Value> = updates["items"].as_array().unwrap().iter().collect();
        assert_eq!(by_system.len(), 1, "exhausted once, on the record: {updates}");
        assert_eq!(by_system[0]["actor"], json!({"type": "system", "reason": "exhausted"}));
    }
}

#[tokio::test]
async fn a_zip_counts_as_one_download_and_sessions_have_their_own_limit() {
    let app = spawn_app().await;
    let spring = app.folder_id(&["Campaigns", "Spring 2026"]).await;
    let sunrise = app.file_id(&spring, "sunrise.jpg").await;

    // Two downloads: a ZIP of two files, then one file; the third is refused.
    let body = json!({"target": {"kind": "folder", "id": spring}, "max_downloads": 2});
    let (id, s) = share(&app, body).await;
    let dusk = app.file_id(&spring, "dusk.jpg").await;
    let token = expect(session(&app, &s).await, StatusCode::CREATED).await["token"].as_str().unwrap().to_string();
    let zip = app.http.post(format!("{}{s}/api/archives", app.base)).bearer_auth(&token);
    let zip = zip.json(&json!({"file_ids": [sunrise, dusk]})).send().await.unwrap();
    assert_eq!(zip.status(), StatusCode::ACCEPTED);
    let link = app.get(&format!("/api/links/{id}"), &app.admin(), StatusCode::OK).await;
    assert_eq!((link["state"].as_str(), link["max_downloads"].as_u64()), (Some("active"), Some(2)), "{link}");
    let file = |app: &TestApp| {
        app.http.get(format!("{}{s}/api/files/{sunrise}/download", app.base)).bearer_auth(&token).send()
    };
    assert_eq!(file(&app).await.unwrap().status(), StatusCode::SEE_OTHER);
    assert_eq!(file(&app).await.unwrap().status(), StatusCode::NOT_FOUND);
    let exhausted = app.get("/api/links?state=exhausted", &app.admin(), StatusCode::OK).await;
    let ids: Vec<&str> = exhausted["items"].as_array().unwrap().iter().map(|l| l["id"].as_str().unwrap()).collect();
    assert_eq!(ids, [id.as_str()]);
    let expired = app.get("/api/links?state=expired", &app.admin(), StatusCode::OK).await;
    assert!(expired["items"].as_array().unwrap().is_empty(), "{expired}");

    // Sessions: two start, the third finds the link gone.
    let body = json!({"target": {"kind": "folder", "id": spring}, "max_sessions": 2});
    let (sessions_id, s2) = share(&app, body).await;
    for _ in 0..2 {
        assert_eq!(session(&app, &s2).await.status(), StatusCode::CREATED);
    }
    assert_eq!(session(&app, &s2).await.status(), StatusCode::NOT_FOUND);

    // Both go the way of expired links, audited as exhausted.
    app.clock.advance(chrono::Duration::seconds(1));
    assert_eq!(app.links.expire_due(app.now(), 100).await.unwrap(), 2);
    for link in [&id, &sessions_id] {
        app.get(&format!("/api/links/{link}"), &app.admin(), StatusCode::NOT_FOUND).await;
        let audit = app.get(&format!("/api/audit?link_id={link}&action=deleted"), &app.admin(), StatusCode::OK).await;
        assert_eq!(audit["items"][0]["actor"], json!({"type": "system", "reason": "exhausted"}), "{audit}");
    }

    // Bad limits are refused, naming the field.
    for (field, value) in
        [("max_downloads", json!(0)), ("max_sessions", json!(1_000_001)), ("max_downloads", json!(-1))]
    {
        let body = json!({"target": {"kind": "folder", "id": spring}, field: value});
        let refused = app.send(Method::POST, "/api/links", &app.admin(), body, StatusCode::UNPROCESSABLE_ENTITY).await;
        assert_eq!(refused["error"]["field"], field, "{refused}");
    }
}
