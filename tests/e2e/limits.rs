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

/// Downloads of `file` through share path `s` with session `token`: the statuses.
async fn download(app: &TestApp, s: &str, file: &str, token: &str) -> StatusCode {
    let url = format!("{}{s}/api/files/{file}/download", app.base);
    app.http.get(url).bearer_auth(token).send().await.unwrap().status()
}

#[tokio::test]
async fn a_patch_raises_lowers_and_removes_a_limit() {
    let app = spawn_app().await;
    let spring = app.folder_id(&["Campaigns", "Spring 2026"]).await;
    let sunrise = app.file_id(&spring, "sunrise.jpg").await;
    let file = json!({"kind": "file", "id": sunrise});

    // Raised after two of three: three more pass, the fifth ends the link.
    let (id, s) = share(&app, json!({"target": file, "max_downloads": 3})).await;
    let token = expect(session(&app, &s).await, StatusCode::CREATED).await["token"].as_str().unwrap().to_string();
    for _ in 0..2 {
        assert_eq!(download(&app, &s, &sunrise, &token).await, StatusCode::SEE_OTHER);
    }
    let path = format!("/api/links/{id}");
    let raised = app.send(Method::PATCH, &path, &app.admin(), json!({"max_downloads": 5}), StatusCode::OK).await;
    assert_eq!((raised["max_downloads"].as_u64(), raised["state"].as_str()), (Some(5), Some("active")), "{raised}");
    for _ in 0..3 {
        assert_eq!(download(&app, &s, &sunrise, &token).await, StatusCode::SEE_OTHER);
    }
    assert_eq!(download(&app, &s, &sunrise, &token).await, StatusCode::NOT_FOUND);
    let link = app.get(&format!("/api/links/{id}"), &app.admin(), StatusCode::OK).await;
    assert_eq!(link["state"], "exhausted");
    let refused =
        app.send(Method::PATCH, &path, &app.admin(), json!({"max_downloads": 50}), StatusCode::CONFLICT).await;
    assert_eq!(refused["error"]["code"], "link_exhausted");
    let audit = app.get(&format!("/api/audit?link_id={id}&action=updated"), &app.admin(), StatusCode::OK).await;
    let by_user = audit["items"].as_array().unwrap().iter().find(|e| e["actor"]["type"] == "user").unwrap();
    assert_eq!(by_user["changes"]["max_downloads"], json!({"from": 3, "to": 5}), "{audit}");

    // Lowered to the downloads already made: ended at once, by the manager.
    let (id, s) = share(&app, json!({"target": file, "max_downloads": 5, "max_sessions": 9})).await;
    let token = expect(session(&app, &s).await, StatusCode::CREATED).await["token"].as_str().unwrap().to_string();
    for _ in 0..2 {
        assert_eq!(download(&app, &s, &sunrise, &token).await, StatusCode::SEE_OTHER);
    }
    let path = format!("/api/links/{id}");
    let lowered = app.send(Method::PATCH, &path, &app.admin(), json!({"max_downloads": 2}), StatusCode::OK).await;
    assert_eq!(lowered["state"], "exhausted");
    assert_eq!(download(&app, &s, &sunrise, &token).await, StatusCode::NOT_FOUND);
    let gone = app.http.get(format!("{}{s}/api", app.base)).send().await.unwrap();
    assert_eq!(expect(gone, StatusCode::NOT_FOUND).await["error"]["code"], "link_unavailable");

    // Lowered above what was used: the link goes on until the new limit.
    let (id, s) = share(&app, json!({"target": file, "max_sessions": 9})).await;
    assert_eq!(session(&app, &s).await.status(), StatusCode::CREATED);
    let path = format!("/api/links/{id}");
    let lowered = app.send(Method::PATCH, &path, &app.admin(), json!({"max_sessions": 2}), StatusCode::OK).await;
    assert_eq!((lowered["max_sessions"].as_u64(), lowered["state"].as_str()), (Some(2), Some("active")));
    assert_eq!(session(&app, &s).await.status(), StatusCode::CREATED);
    assert_eq!(session(&app, &s).await.status(), StatusCode::NOT_FOUND);

    // Removed: no limit any more.
    let (id, s) = share(&app, json!({"target": file, "max_downloads": 1})).await;
    let token = expect(session(&app, &s).await, StatusCode::CREATED).await["token"].as_str().unwrap().to_string();
    let path = format!("/api/links/{id}");
    let removed = app.send(Method::PATCH, &path, &app.admin(), json!({"max_downloads": null}), StatusCode::OK).await;
    assert!(removed.get("max_downloads").is_none(), "{removed}");
    for _ in 0..3 {
        assert_eq!(download(&app, &s, &sunrise, &token).await, StatusCode::SEE_OTHER);
    }
    // Added later: counted from then on.
    app.send(Method::PATCH, &path, &app.admin(), json!({"max_downloads": 1}), StatusCode::OK).await;
    assert_eq!(download(&app, &s, &sunrise, &token).await, StatusCode::SEE_OTHER);
    assert_eq!(download(&app, &s, &sunrise, &token).await, StatusCode::NOT_FOUND);

    // Bad limits are refused, naming the field.
    for (field, value) in
        [("max_downloads", json!(0)), ("max_sessions", json!(1_000_001)), ("max_sessions", json!("9"))]
    {
        let (id, _) = share(&app, json!({"target": file})).await;
        let path = format!("/api/links/{id}");
        let refused =
            app.request(Method::PATCH, &path, &app.admin()).json(&json!({field: value})).send().await.unwrap();
        assert!(refused.status().is_client_error(), "{field}: {value}");
        let refused: Value = refused.json().await.unwrap();
        assert!(refused["error"]["message"].as_str().unwrap().contains(field), "{refused}");
    }
}

#[tokio::test]
async fn a_limit_changed_while_downloads_race_holds_exactly() {
    let app = Arc::new(spawn_app().await);
    let spring = app.folder_id(&["Campaigns", "Spring 2026"]).await;
    let sunrise = app.file_id(&spring, "sunrise.jpg").await;
    for round in 0..rounds() {
        // Raised from 10 to 20 (or refused, if the link ended first), then
        // lowered from 20 to 5, each while 40 downloads are under way.
        for (from, to) in [(10u64, 20u64), (20, 5)] {
            let body = json!({"target": {"kind": "file", "id": sunrise}, "max_downloads": from});
            let (id, s) = share(&app, body).await;
            let token =
                expect(session(&app, &s).await, StatusCode::CREATED).await["token"].as_str().unwrap().to_string();
            let barrier = Arc::new(Barrier::new(41));
            let downloads = (0..40).map(|_| {
                let (app, barrier, s, token, sunrise) =
                    (app.clone(), barrier.clone(), s.clone(), token.clone(), sunrise.clone());
                tokio::spawn(async move {
                    barrier.wait().await;
                    download(&app, &s, &sunrise, &token).await
                })
            });
            let downloads: Vec<_> = downloads.collect();
            let patch = app.request(Method::PATCH, &format!("/api/links/{id}"), &app.admin());
            let patch = patch.json(&json!({"max_downloads": to}));
            barrier.wait().await;
            let patched = patch.send().await.unwrap();
            let patch_status = patched.status();
            let patched: Value = patched.json().await.unwrap();
            let mut passed = 0;
            for d in downloads {
                let status = d.await.unwrap();
                assert!([StatusCode::SEE_OTHER, StatusCode::NOT_FOUND].contains(&status), "{status}");
                passed += u64::from(status == StatusCode::SEE_OTHER);
            }
            // Then downloads one at a time until the link ends: in all,
            // exactly the limit in force passed.
            while download(&app, &s, &sunrise, &token).await == StatusCode::SEE_OTHER {
                passed += 1;
                assert!(passed <= from.max(to), "round {round}: {passed} passed");
            }
            match (from < to, patch_status) {
                (true, StatusCode::OK) => assert_eq!(passed, to, "round {round}: raised, {patched}"),
                // Lowered: downloads under way with the old limit may pass the new one.
                (false, StatusCode::OK) => assert!((to..=from).contains(&passed), "round {round}: {passed} passed"),
                (_, StatusCode::CONFLICT) => {
                    assert_eq!(patched["error"]["code"], "link_exhausted");
                    assert_eq!(passed, from, "round {round}: the link ended before the change");
                }
                (_, other) => panic!("round {round}: {other} {patched}"),
            }
            let link = app.get(&format!("/api/links/{id}"), &app.admin(), StatusCode::OK).await;
            assert_eq!(link["state"], "exhausted", "round {round}: {link}");
            assert_eq!(download(&app, &s, &sunrise, &token).await, StatusCode::NOT_FOUND);
            let updates =
                app.get(&format!("/api/audit?link_id={id}&action=updated"), &app.admin(), StatusCode::OK).await;
            let ended = updates["items"].as_array().unwrap().iter().filter(|e| e["changes"]["valid_until"].is_object());
            assert_eq!(ended.count(), 1, "ended once, on the record: {updates}");
        }
    }
}

#[tokio::test]
async fn sessions_and_downloads_exhausting_together_let_exactly_one_limit_through() {
    let app = Arc::new(spawn_app().await);
    let spring = app.folder_id(&["Campaigns", "Spring 2026"]).await;
    let sunrise = app.file_id(&spring, "sunrise.jpg").await;
    for round in 0..rounds() {
        let body = json!({"target": {"kind": "file", "id": sunrise}, "max_downloads": 8, "max_sessions": 8});
        let (id, s) = share(&app, body).await;
        // One session of the eight is the downloads'.
        let token = expect(session(&app, &s).await, StatusCode::CREATED).await["token"].as_str().unwrap().to_string();
        let barrier = Arc::new(Barrier::new(60));
        let tasks: Vec<_> = (0..60)
            .map(|i| {
                let (app, barrier, s, token, sunrise) =
                    (app.clone(), barrier.clone(), s.clone(), token.clone(), sunrise.clone());
                tokio::spawn(async move {
                    barrier.wait().await;
                    if i % 2 == 0 {
                        ("download", download(&app, &s, &sunrise, &token).await == StatusCode::SEE_OTHER)
                    } else {
                        ("session", session(&app, &s).await.status() == StatusCode::CREATED)
                    }
                })
            })
            .collect();
        let (mut downloads, mut sessions) = (0, 1);
        for t in tasks {
            match t.await.unwrap() {
                ("download", true) => downloads += 1,
                ("session", true) => sessions += 1,
                _ => {}
            }
        }
        assert!(downloads <= 8 && sessions <= 8, "round {round}: {downloads} downloads, {sessions} sessions");
        assert!(downloads == 8 || sessions == 8, "round {round}: one limit ended the link: {downloads}, {sessions}");
        let link = app.get(&format!("/api/links/{id}"), &app.admin(), StatusCode::OK).await;
        assert_eq!(link["state"], "exhausted", "round {round}: {link}");
        assert_eq!(
            (link["activity"]["downloads"].as_u64(), link["activity"]["sessions"].as_u64()),
            (Some(downloads), Some(sessions)),
            "round {round}: {link}"
        );
        let updates = app.get(&format!("/api/audit?link_id={id}&action=updated"), &app.admin(), StatusCode::OK).await;
        assert_eq!(updates["items"].as_array().unwrap().len(), 1, "exhausted once: {updates}");
        assert_eq!(download(&app, &s, &sunrise, &token).await, StatusCode::NOT_FOUND);
        assert_eq!(session(&app, &s).await.status(), StatusCode::NOT_FOUND);
    }
}
