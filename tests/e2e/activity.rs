//! What a link's managers learn of its visits: the counters in the link's
//! JSON, the filter of the account's list by visits, and the activity log,
//! which keeps no token, password or address and forgets after its retention.

use crate::public::share;
use publinks_e2e::{TestApp, expect, spawn_app};
use reqwest::StatusCode;
use serde_json::{Value, json};

/// Every entry of a link's log, read `limit` at a time, newest first.
async fn whole_log(app: &TestApp, link: &str, limit: u32) -> Vec<Value> {
    let (mut entries, mut cursor) = (Vec::new(), None::<String>);
    loop {
        let mut path = format!("/api/links/{link}/activity?limit={limit}");
        if let Some(c) = &cursor {
            path.push_str(&format!("&cursor={c}"));
        }
        let page = app.get(&path, &app.admin(), StatusCode::OK).await;
        let items = page["items"].as_array().unwrap();
        assert!(items.len() <= limit as usize);
        entries.extend(items.iter().cloned());
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => return entries,
        }
    }
}

/// The ids of the account's links the list gives with `filter`.
async fn listed(app: &TestApp, filter: &str) -> Vec<String> {
    let page = app.get(&format!("/api/links?limit=200&{filter}"), &app.admin(), StatusCode::OK).await;
    assert!(page["next_cursor"].is_null());
    page["items"].as_array().unwrap().iter().map(|l| l["id"].as_str().unwrap().to_string()).collect()
}

#[tokio::test]
async fn a_scripted_visit_is_counted_and_logged_without_a_secret() {
    let app = spawn_app().await;
    let spring = app.folder_id(&["Campaigns", "Spring 2026"]).await;
    let sunrise = app.file_id(&spring, "sunrise.jpg").await;
    let (id, s) = share(&app, json!({"kind": "folder", "id": spring}), json!({"password": "correct horse"})).await;
    let (quiet, _) = share(&app, json!({"kind": "folder", "id": spring}), json!({})).await;
    let at = |path: &str| format!("{}{s}{path}", app.base);

    // Nobody came yet: zeros, and the list tells the two apart only by visits.
    let fresh = app.get(&format!("/api/links/{id}"), &app.admin(), StatusCode::OK).await;
    assert_eq!(fresh["activity"]["page_opens"], 0);
    assert!(fresh["activity"]["first_access"].is_null());

    // The visit: a wrong password, the right one, the page (JSON and HTML),
    // a file (JSON and page), its download and a ZIP of it.
    let wrong = app.http.post(at("/api/session")).json(&json!({"password": "tr0ub4dor"})).send().await.unwrap();
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    let session = app.http.post(at("/api/session")).json(&json!({"password": "correct horse"})).send().await.unwrap();
    let session = expect(session, StatusCode::CREATED).await["token"].as_str().unwrap().to_string();
    let link = expect(app.http.get(at("/api")).bearer_auth(&session).send().await.unwrap(), StatusCode::OK).await;
    assert!(link.get("activity").is_none(), "visitors never see the counters: {link}");
    assert_eq!(app.http.get(at("")).bearer_auth(&session).send().await.unwrap().status(), StatusCode::OK);
    let file = app.http.get(at(&format!("/api/files/{sunrise}"))).bearer_auth(&session).send().await.unwrap();
    let size = expect(file, StatusCode::OK).await["size"].as_u64().unwrap();
    let page = app.http.get(at(&format!("/files/{sunrise}"))).bearer_auth(&session).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let download = app.http.get(at(&format!("/api/files/{sunrise}/download"))).bearer_auth(&session);
    assert_eq!(download.send().await.unwrap().status(), StatusCode::SEE_OTHER);
    let zip = app.http.post(at("/api/archives")).bearer_auth(&session).json(&json!({"file_ids": [sunrise]}));
    assert_eq!(zip.send().await.unwrap().status(), StatusCode::ACCEPTED);

    let seen = app.get(&format!("/api/links/{id}"), &app.admin(), StatusCode::OK).await;
    let a = &seen["activity"];
    let counts = |name: &str| a[name].as_u64().unwrap_or_else(|| panic!("{name} in {a}"));
    assert_eq!(
        ["page_opens", "sessions", "wrong_passwords", "file_views", "downloads", "archives", "bytes_served"]
            .map(counts),
        [2, 1, 1, 2, 1, 1, size],
        "{a}"
    );
    let (first, last) = (a["first_access"].as_str().unwrap(), a["last_access"].as_str().unwrap());
    assert!(first <= last, "{a}");

    // The log: each event once, newest first, every entry from one client.
    let log = whole_log(&app, &id, 3).await;
    let events: Vec<&str> = log.iter().map(|e| e["event"].as_str().unwrap()).collect();
    assert_eq!(
        events,
        [
            "archive_requested",
            "downloaded",
            "file_viewed",
            "file_viewed",
            "page_opened",
            "page_opened",
            "session_started",
            "wrong_password"
        ]
    );
    let client = log[0]["client"].as_str().unwrap();
    assert_eq!(client.len(), 16);
    assert!(log.iter().all(|e| e["client"] == client && e["link_id"] == id.as_str()), "{log:#?}");
    assert!(log.iter().all(|e| e.get("country").is_none()), "no CloudFront here, no country: {log:#?}");
    assert_eq!(log[1]["file_id"], sunrise.as_str());
    assert_eq!(log[1]["bytes"], size);
    let text = serde_json::to_string(&log).unwrap();
    let token = s.rsplit('/').next().unwrap();
    for secret in [token, "correct horse", "tr0ub4dor", "127.0.0.1", "127.0.0", session.as_str()] {
        assert!(!text.contains(secret), "the log holds {secret:?}: {text}");
    }

    // Only the link's managers read it.
    app.get(&format!("/api/links/{id}/activity"), &app.viewer(), StatusCode::FORBIDDEN).await;
    let as_visitor = app.http.get(format!("{}/api/links/{id}/activity", app.base)).bearer_auth(&session);
    assert_eq!(as_visitor.send().await.unwrap().status(), StatusCode::UNAUTHORIZED);

    // The list, by visits.
    assert!(listed(&app, "never_opened=true").await.contains(&quiet));
    assert!(!listed(&app, "never_opened=true").await.contains(&id));
    assert_eq!(listed(&app, "opened_within_days=7").await, [id.as_str()]);
    let filtered = app.get("/api/links?opened_within_days=7", &app.admin(), StatusCode::OK).await;
    assert_eq!(filtered["items"][0]["activity"]["downloads"], 1);
    let unfiltered = app.get("/api/links", &app.admin(), StatusCode::OK).await;
    assert!(unfiltered["items"][0].get("activity").is_none());
    for bad in ["never_opened=true&opened_within_days=7", "opened_within_days=0", "opened_within_days=x"] {
        let refused = app.get(&format!("/api/links?{bad}"), &app.admin(), StatusCode::BAD_REQUEST).await;
        assert_eq!(refused["error"]["code"], "invalid_query", "{bad}");
        assert_eq!(refused["error"]["field"], "opened_within_days", "{bad}");
    }

    // A month later: the log has forgotten, the counters have not, and the
    // link was not opened within the last week.
    app.clock.advance(chrono::Duration::days(31));
    assert!(whole_log(&app, &id, 50).await.is_empty());
    let later = app.get(&format!("/api/links/{id}"), &app.admin(), StatusCode::OK).await;
    assert_eq!(later["activity"], seen["activity"]);
    assert!(listed(&app, "opened_within_days=7").await.is_empty());
    assert!(listed(&app, "opened_within_days=40").await.contains(&id));
}

#[tokio::test]
async fn concurrent_visits_are_all_counted() {
    let app = spawn_app().await;
    let spring = app.folder_id(&["Campaigns", "Spring 2026"]).await;
    let (id, s) = share(&app, json!({"kind": "folder", "id": spring}), json!({})).await;
    let opens = (0..40).map(|_| {
        let request = app.http.get(format!("{}{s}/api", app.base));
        async move { request.send().await.unwrap().status() }
    });
    let statuses = futures_util::future::join_all(opens).await;
    assert!(statuses.iter().all(|s| *s == StatusCode::OK), "{statuses:?}");
    let link = app.get(&format!("/api/links/{id}"), &app.admin(), StatusCode::OK).await;
    assert_eq!(link["activity"]["page_opens"], 40);
    assert_eq!(whole_log(&app, &id, 200).await.len(), 40);
}

/// What the raw store still holds of `link`'s activity (its counters and its
/// log entries, however stored), once everything queued is written.
async fn activity_left(app: &TestApp, link: &str, settle_through: &str) -> Vec<String> {
    // Reading any link's activity writes what the embedded store has queued.
    app.get(&format!("/api/links/{settle_through}/activity"), &app.admin(), StatusCode::OK).await;
    let records = app.raw_records().await;
    records
        .into_iter()
        .filter(|r| r.contains(link))
        .filter(|r| {
            r.starts_with("link_activity:")
                || r.starts_with("activity_log:")
                || r.contains("last_access")
                || r.contains("#ACTIVITY#")
        })
        .collect()
}

#[tokio::test]
async fn a_deleted_links_counters_and_log_go_with_it_however_it_is_deleted() {
    let app = spawn_app().await;
    let token = app.admin();
    let spring = app.folder_id(&["Campaigns", "Spring 2026"]).await;
    let (stays, _) = share(&app, json!({"kind": "folder", "id": spring}), json!({})).await;
    let file = app.upload(&token, None, "gone.png", "image/png", &publinks_media::demo_png(8, 8, 1)).await;
    let file_id = file["id"].as_str().unwrap().to_string();
    let until = (app.now() + chrono::Duration::minutes(10)).to_rfc3339();
    let (by_owner, s1) = share(&app, json!({"kind": "folder", "id": spring}), json!({})).await;
    let (by_cascade, s2) = share(&app, json!({"kind": "file", "id": file_id}), json!({})).await;
    let (by_expiry, s3) = share(&app, json!({"kind": "folder", "id": spring}), json!({"valid_until": until})).await;
    for s in [&s1, &s2, &s3] {
        let opened = app.http.get(format!("{}{s}/api", app.base)).send().await.unwrap();
        assert_eq!(opened.status(), StatusCode::OK);
    }
    for link in [&by_owner, &by_cascade, &by_expiry] {
        assert_eq!(activity_left(&app, link, &stays).await.len(), 2, "a counter and a log entry of {link}");
    }

    app.delete(&format!("/api/links/{by_owner}"), &token, StatusCode::NO_CONTENT).await;
    app.delete(&format!("/api/files/{file_id}"), &token, StatusCode::NO_CONTENT).await;
    app.clock.advance(chrono::Duration::minutes(20));
    assert_eq!(app.links.expire_due(app.now(), 100).await.unwrap(), 1);
    for link in [&by_owner, &by_cascade, &by_expiry] {
        app.get(&format!("/api/links/{link}"), &token, StatusCode::NOT_FOUND).await;
        let left = activity_left(&app, link, &stays).await;
        assert!(left.is_empty(), "the activity of {link} outlived it: {left:#?}");
    }
}

#[tokio::test]
async fn a_visit_racing_the_deletion_of_its_link_leaves_no_counter_behind() {
    let app = spawn_app().await;
    let spring = app.folder_id(&["Campaigns", "Spring 2026"]).await;
    let (stays, _) = share(&app, json!({"kind": "folder", "id": spring}), json!({})).await;
    // Moto answers one request at a time: fewer rounds there.
    let rounds = if matches!(app.storage, publinks_e2e::Storage::Embedded(_)) { 12 } else { 4 };
    for _ in 0..rounds {
        let (id, s) = share(&app, json!({"kind": "folder", "id": spring}), json!({})).await;
        // Four visitors open the link again and again until it is gone,
        // while its owner deletes it: some visits are under way as it goes.
        let visitor = || {
            let (http, url) = (app.http.clone(), format!("{}{s}/api", app.base));
            async move {
                let mut opened = 0;
                while http.get(&url).send().await.unwrap().status() == StatusCode::OK {
                    opened += 1;
                }
                opened
            }
        };
        let delete = async {
            tokio::time::sleep(std::time::Duration::from_millis(15)).await;
            app.request(reqwest::Method::DELETE, &format!("/api/links/{id}"), &app.admin()).send().await.unwrap()
        };
        let (opened, deleted) =
            futures_util::future::join(futures_util::future::join_all((0..4).map(|_| visitor())), delete).await;
        assert_eq!(deleted.status(), StatusCode::NO_CONTENT);
        assert!(opened.iter().sum::<u32>() > 0, "the visits began before the deletion");
        let left = activity_left(&app, &id, &stays).await;
        assert!(left.is_empty(), "the activity of {id} outlived it: {left:#?}");
    }
}
