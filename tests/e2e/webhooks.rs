//! Account webhooks: managed by administrators, each event delivered once to
//! a receiver on loopback, signed, retried after a failure on the services'
//! clock, recorded; no token, password or address in what is sent; endpoints
//! inside the network refused where only public ones may be reached; the cap
//! of 10 per account exact however many are created at once.

use publinks_domain::webhooks::{backoff, verify_signature};
use publinks_e2e::{TestApp, expect, spawn_app, spawn_app_with_public_webhooks, webhook_receiver as receiver};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::time::Duration;

const ALL_EVENTS: [&str; 5] =
    ["link.first_opened", "link.limit_reached", "link.expires_soon", "link.deleted_by_system", "link.under_attack"];

/// Waits (on the wall clock: the worker runs in the background) until
/// `done` holds for the webhook's deliveries, and returns them.
async fn deliveries_when(app: &TestApp, hook: &str, done: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    for _ in 0..200 {
        let list = app.get(&format!("/api/account/webhooks/{hook}/deliveries"), &app.admin(), StatusCode::OK).await;
        let list = list.as_array().unwrap().clone();
        if done(&list) {
            return list;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the deliveries never got there");
}

#[tokio::test]
async fn every_event_is_delivered_once_signed_retried_and_recorded_without_a_secret() {
    let app = spawn_app().await;
    let (url, received, _server) = receiver(1).await;

    // Administrators only; the secret is shown once.
    let body = json!({"url": url, "events": ALL_EVENTS});
    let restricted = app.restricted();
    app.send(Method::POST, "/api/account/webhooks", &restricted, body.clone(), StatusCode::FORBIDDEN).await;
    let hook = app.send(Method::POST, "/api/account/webhooks", &app.admin(), body, StatusCode::CREATED).await;
    let secret = hook["secret"].as_str().unwrap().to_string();
    assert!(secret.starts_with("whsec_") && secret.len() > 40, "{hook}");
    let id = hook["id"].as_str().unwrap().to_string();
    let listed = app.get("/api/account/webhooks", &app.admin(), StatusCode::OK).await;
    assert_eq!(listed.as_array().unwrap().len(), 1);
    assert!(listed[0].get("secret").is_none() && !listed.to_string().contains(&secret), "{listed}");
    let one = app.get(&format!("/api/account/webhooks/{id}"), &app.admin(), StatusCode::OK).await;
    assert_eq!((one["url"].as_str(), one.get("secret")), (Some(url.as_str()), None));

    // A protected link with a download limit, ending within a day.
    let spring = app.folder_id(&["Campaigns", "Spring 2026"]).await;
    let sunrise = app.file_id(&spring, "sunrise.jpg").await;
    let password = "correct horse battery";
    let until = (app.now() + chrono::Duration::hours(23)).to_rfc3339();
    let body = json!({"target": {"kind": "file", "id": sunrise}, "password": password, "max_downloads": 1,
        "valid_until": until});
    let link = app.send(Method::POST, "/api/links", &app.admin(), body, StatusCode::CREATED).await;
    let (link_id, link_url) = (link["id"].as_str().unwrap().to_string(), link["url"].as_str().unwrap().to_string());
    let share = link_url.strip_prefix(&app.base).unwrap().to_string();
    let token = share.rsplit('/').next().unwrap().to_string();

    // Unlocked, then opened twice: told once.
    let session = app.http.post(format!("{link_url}/api/session")).json(&json!({"password": password}));
    let session = expect(session.send().await.unwrap(), StatusCode::CREATED).await;
    let session = session["token"].as_str().unwrap().to_string();
    for _ in 0..2 {
        let page = app.http.get(format!("{link_url}/api")).bearer_auth(&session).send().await.unwrap();
        assert_eq!(page.status(), StatusCode::OK);
    }
    // Guessed from 60 networks: slowed down, told once.
    let wrong = publinks_domain::passwords::Password::new("wrong guess!");
    let mut slowed = 0;
    for i in 0..60 {
        let network = format!("203.0.113.{i}");
        if let Err(publinks_domain::DomainError::Throttled { .. }) =
            app.public.start_session(&token, Some(&wrong), &network).await
        {
            slowed += 1;
        }
    }
    assert!(slowed > 0, "the link's shared bucket slowed the guessing down");
    // Ending within a day: told once, however often the sweep runs.
    assert_eq!(app.links.warn_expiring(100).await.unwrap(), 1);
    assert_eq!(app.links.warn_expiring(100).await.unwrap(), 1, "found again, told no more");
    // The limit reached: told once; then deleted by the system: told once.
    let download = app.http.get(format!("{link_url}/api/files/{sunrise}/download")).bearer_auth(&session);
    assert_eq!(download.send().await.unwrap().status(), StatusCode::SEE_OTHER);
    app.clock.advance(chrono::Duration::seconds(1));
    assert_eq!(app.links.expire_due(app.now(), 100).await.unwrap(), 1);

    // The first attempt met a 500: recorded, due again after the backoff.
    let first = deliveries_when(&app, &id, |d| d.len() == 5 && d.iter().all(|d| d["attempts"] == 1)).await;
    let failed: Vec<&Value> = first.iter().filter(|d| d["state"] == "pending").collect();
    assert_eq!(failed.len(), 1, "{first:?}");
    assert_eq!((failed[0]["last_status"].as_u64(), failed[0]["attempts"].as_u64()), (Some(500), Some(1)));
    let next: chrono::DateTime<chrono::Utc> = serde_json::from_value(failed[0]["next_attempt_at"].clone()).unwrap();
    let last: chrono::DateTime<chrono::Utc> = serde_json::from_value(failed[0]["last_attempt_at"].clone()).unwrap();
    assert_eq!(next - last, backoff(1));
    // Not tried again before its time; tried once the clock passes it.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(received.lock().unwrap().len(), 5);
    app.clock.advance(backoff(1) + chrono::Duration::seconds(1));
    let all = deliveries_when(&app, &id, |d| d.iter().all(|d| d["state"] == "delivered")).await;
    assert_eq!(all.iter().map(|d| d["attempts"].as_u64().unwrap()).sum::<u64>(), 6, "{all:?}");
    assert!(all.iter().all(|d| d["last_status"] == 200 && d["next_attempt_at"].is_null()), "{all:?}");

    // Each event once, each request signed over its timestamp and body.
    let received = received.lock().unwrap().clone();
    assert_eq!(received.len(), 6);
    let mut events = BTreeMap::new();
    for (headers, body) in &received {
        let signed = &headers["publinks-signature"];
        assert!(verify_signature(&secret, signed, body, app.now()), "{signed}");
        assert!(!verify_signature("whsec_other", signed, body, app.now()));
        let parsed: Value = serde_json::from_str(body).unwrap();
        assert_eq!(parsed["type"].as_str(), headers.get("publinks-event").map(String::as_str));
        assert_eq!(parsed["data"]["link_id"], link_id.as_str());
        events.entry(parsed["id"].as_str().unwrap().to_string()).or_insert(parsed["type"].clone());
        // Nothing that opens the link or says who visited (the receiver's own
        // address is only in the request's `host`).
        let sent: Vec<&String> = headers.iter().filter(|(k, _)| *k != "host").map(|(_, v)| v).collect();
        let everything = format!("{sent:?} {body}");
        for secret_thing in [token.as_str(), password, "wrong guess", session.as_str(), "203.0.113.", "127.0.0.1"] {
            assert!(!everything.contains(secret_thing), "{secret_thing} in {everything}");
        }
    }
    let mut types: Vec<&str> = events.values().map(|v| v.as_str().unwrap()).collect();
    types.sort();
    let mut expected = ALL_EVENTS.to_vec();
    expected.sort();
    assert_eq!(types, expected, "each event once");
    let deleted = received.iter().find(|(h, _)| h["publinks-event"] == "link.deleted_by_system").unwrap();
    assert_eq!(serde_json::from_str::<Value>(&deleted.1).unwrap()["data"]["reason"], "exhausted");

    // Changed, its secret rotated (shown once), then deleted.
    let path = format!("/api/account/webhooks/{id}");
    let patch = json!({"events": ["link.first_opened"], "rotate_secret": true});
    let rotated = app.send(Method::PATCH, &path, &app.admin(), patch, StatusCode::OK).await;
    assert!(rotated["secret"].as_str().is_some_and(|s| s != secret), "{rotated}");
    assert_eq!(rotated["events"], json!(["link.first_opened"]));
    app.delete(&path, &app.admin(), StatusCode::NO_CONTENT).await;
    app.get(&path, &app.admin(), StatusCode::NOT_FOUND).await;
}

#[tokio::test]
async fn a_delivery_failing_for_a_day_is_given_up() {
    let app = spawn_app().await;
    let (url, received, _server) = receiver(usize::MAX).await;
    let body = json!({"url": url, "events": ["link.first_opened"]});
    let hook = app.send(Method::POST, "/api/account/webhooks", &app.admin(), body, StatusCode::CREATED).await;
    let id = hook["id"].as_str().unwrap();
    let spring = app.folder_id(&["Campaigns", "Spring 2026"]).await;
    let link = json!({"target": {"kind": "folder", "id": spring}});
    let link = app.send(Method::POST, "/api/links", &app.admin(), link, StatusCode::CREATED).await;
    app.http.get(format!("{}/api", link["url"].as_str().unwrap())).send().await.unwrap();
    let mut attempts = 0;
    loop {
        let list = deliveries_when(&app, id, |d| d.len() == 1 && d[0]["attempts"].as_u64() > Some(attempts)).await;
        attempts = list[0]["attempts"].as_u64().unwrap();
        if list[0]["state"] == "failed" {
            assert!(list[0]["next_attempt_at"].is_null() && list[0]["last_status"] == 500, "{list:?}");
            break;
        }
        assert_eq!(list[0]["state"], "pending");
        app.clock.advance(backoff(attempts as u32) + chrono::Duration::seconds(1));
    }
    // Doubling from 30 s up to 4 hours: 14 attempts within the day.
    assert_eq!((attempts, received.lock().unwrap().len()), (14, 14));
}

#[tokio::test]
async fn a_link_about_to_end_is_warned_of_however_many_ended_links_wait_for_removal() {
    let app = spawn_app().await;
    let (url, _received, _server) = receiver(0).await;
    let body = json!({"url": url, "events": ["link.expires_soon"]});
    let hook = app.send(Method::POST, "/api/account/webhooks", &app.admin(), body, StatusCode::CREATED).await;
    let spring = app.folder_id(&["Campaigns", "Spring 2026"]).await;
    let ending_in = |hours| {
        json!({"target": {"kind": "folder", "id": spring},
        "valid_until": (app.now() + chrono::Duration::hours(hours)).to_rfc3339()})
    };
    // More links than the sweep's batch end and stay until they are removed
    // (DynamoDB's TTL takes up to days); the sweep must look past them.
    for _ in 0..3 {
        app.send(Method::POST, "/api/links", &app.admin(), ending_in(1), StatusCode::CREATED).await;
    }
    app.clock.advance(chrono::Duration::hours(2));
    let soon = app.send(Method::POST, "/api/links", &app.admin(), ending_in(23), StatusCode::CREATED).await;
    assert_eq!(app.links.warn_expiring(2).await.unwrap(), 1);
    let told = deliveries_when(&app, hook["id"].as_str().unwrap(), |d| d.len() == 1).await;
    let told: Value = serde_json::from_str(told[0]["body"].as_str().unwrap()).unwrap();
    assert_eq!(
        (told["type"].as_str(), told["data"]["link_id"].as_str()),
        (Some("link.expires_soon"), soon["id"].as_str())
    );
}

#[tokio::test]
async fn every_link_ending_within_a_day_is_warned_in_one_run_however_small_the_page() {
    let app = spawn_app().await;
    let (url, _received, _server) = receiver(0).await;
    let body = json!({"url": url, "events": ["link.expires_soon"]});
    let hook = app.send(Method::POST, "/api/account/webhooks", &app.admin(), body, StatusCode::CREATED).await;
    // At most 5 links per folder: two folders.
    let folders = [app.folder_id(&["Campaigns", "Spring 2026"]).await, app.folder_id(&["Products"]).await];
    let ending_at = |i: usize, at: chrono::DateTime<chrono::Utc>| json!({"target": {"kind": "folder", "id": folders[i % 2]}, "valid_until": at.to_rfc3339()});
    // Seven links end within the day, three of them at the same moment (on
    // a page's edge), read two at a time; one ends in two days.
    let mut ending = std::collections::BTreeSet::new();
    let same = app.now() + chrono::Duration::hours(5);
    let ends = [1, 3, 5, 5, 5, 8, 20].map(|h| if h == 5 { same } else { app.now() + chrono::Duration::hours(h) });
    for (i, at) in ends.into_iter().enumerate() {
        let link = app.send(Method::POST, "/api/links", &app.admin(), ending_at(i, at), StatusCode::CREATED).await;
        ending.insert(link["id"].as_str().unwrap().to_string());
    }
    let later = ending_at(7, app.now() + chrono::Duration::hours(48));
    app.send(Method::POST, "/api/links", &app.admin(), later, StatusCode::CREATED).await;
    assert_eq!(app.links.warn_expiring(2).await.unwrap(), 7);
    let told = deliveries_when(&app, hook["id"].as_str().unwrap(), |d| d.len() >= 7).await;
    // A second run finds them again and tells nobody twice.
    assert_eq!(app.links.warn_expiring(2).await.unwrap(), 7);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let again = app
        .get(
            &format!("/api/account/webhooks/{}/deliveries", hook["id"].as_str().unwrap()),
            &app.admin(),
            StatusCode::OK,
        )
        .await;
    assert_eq!(again.as_array().unwrap().len(), 7, "{again}");
    let told: std::collections::BTreeSet<String> = told
        .iter()
        .map(|d| {
            serde_json::from_str::<Value>(d["body"].as_str().unwrap()).unwrap()["data"]["link_id"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(told, ending);
}

#[tokio::test]
async fn endpoints_inside_the_network_are_refused_where_only_public_ones_may_be_reached() {
    let app = spawn_app_with_public_webhooks().await;
    let (url, _received, _server) = receiver(0).await;
    for bad in [
        url.as_str(),
        "https://127.0.0.1/hook",
        "https://localhost/hook",
        "https://169.254.169.254/latest/meta-data/",
        "https://10.0.0.8/hook",
        "https://[fd00:ec2::254]/hook",
        "https://[::ffff:192.168.0.1]/hook",
        "https://user:pw@hooks.example.com/",
        "ftp://hooks.example.com/",
    ] {
        let body = json!({"url": bad, "events": ["link.first_opened"]});
        let res = app.request(Method::POST, "/api/account/webhooks", &app.admin()).json(&body).send().await.unwrap();
        let refused = expect(res, StatusCode::UNPROCESSABLE_ENTITY).await;
        assert_eq!(refused["error"]["field"], "url", "{bad}: {refused}");
    }
    let none = json!({"url": "https://hooks.example.com/", "events": []});
    let refused =
        app.send(Method::POST, "/api/account/webhooks", &app.admin(), none, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(refused["error"]["field"], "events");
    assert_eq!(app.get("/api/account/webhooks", &app.admin(), StatusCode::OK).await, json!([]));
}

#[tokio::test]
async fn concurrent_creates_never_exceed_the_webhook_cap_and_a_delete_frees_a_place() {
    let app = spawn_app().await;
    let admin = app.admin();
    let create = |i: usize| {
        let body = json!({"url": format!("http://127.0.0.1:9/hook{i}"), "events": ["link.first_opened"]});
        let req = app.request(Method::POST, "/api/account/webhooks", &admin).json(&body);
        async move {
            let res = req.send().await.unwrap();
            let status = res.status();
            (status, res.json::<Value>().await.unwrap())
        }
    };
    let mut ids = Vec::new();
    for round in 0..3 {
        let answers = futures_util::future::join_all((0..30).map(|i| create(round * 30 + i))).await;
        for (status, body) in &answers {
            match *status {
                StatusCode::CREATED => ids.push(body["id"].as_str().unwrap().to_string()),
                StatusCode::CONFLICT => {
                    assert_eq!(body["error"]["code"], "webhook_limit", "{body}");
                    assert!(body["error"]["message"].as_str().unwrap().contains("at most 10 webhooks"), "{body}");
                }
                other => panic!("round {round}: {other} {body}"),
            }
        }
        assert_eq!(ids.len(), 10, "round {round}: {ids:?}");
        let listed = app.get("/api/account/webhooks", &admin, StatusCode::OK).await;
        assert_eq!(listed.as_array().unwrap().len(), 10, "round {round}");
    }
    let gone = ids.pop().unwrap();
    app.delete(&format!("/api/account/webhooks/{gone}"), &admin, StatusCode::NO_CONTENT).await;
    let answers = futures_util::future::join_all((0..5).map(|i| create(100 + i))).await;
    let created: Vec<_> = answers.iter().filter(|(s, _)| *s == StatusCode::CREATED).collect();
    assert_eq!(created.len(), 1, "{answers:?}");
    assert!(answers.iter().all(|(s, _)| *s == StatusCode::CREATED || *s == StatusCode::CONFLICT), "{answers:?}");
}

#[tokio::test]
async fn a_retry_attempted_by_the_sweep_and_its_message_at_once_is_sent_once() {
    let app = spawn_app().await;
    // A receiver that refuses each delivery's first request and counts them all.
    let counts: std::sync::Arc<std::sync::Mutex<BTreeMap<String, u32>>> = Default::default();
    let seen = counts.clone();
    let hook = move |headers: axum::http::HeaderMap| {
        let seen = seen.clone();
        async move {
            let id = headers["publinks-delivery"].to_str().unwrap().to_string();
            let mut seen = seen.lock().unwrap();
            let n = seen.entry(id).or_default();
            *n += 1;
            if *n == 1 { StatusCode::INTERNAL_SERVER_ERROR } else { StatusCode::OK }
        }
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let router = axum::Router::new().route("/hook", axum::routing::post(hook));
    let _server = tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    let body = json!({"url": url, "events": ["link.first_opened"]});
    let hook = app.send(Method::POST, "/api/account/webhooks", &app.admin(), body, StatusCode::CREATED).await;
    let hook = hook["id"].as_str().unwrap().to_string();
    let spring = app.folder_id(&["Campaigns", "Spring 2026"]).await;
    // Moto answers one request at a time: fewer rounds there.
    let rounds = if matches!(app.storage, publinks_e2e::Storage::Embedded(_)) { 5 } else { 2 };
    for round in 1..=rounds {
        let body = json!({"target": {"kind": "folder", "id": spring}});
        let link = app.send(Method::POST, "/api/links", &app.admin(), body, StatusCode::CREATED).await;
        let share = link["url"].as_str().unwrap().to_string();
        assert_eq!(app.http.get(format!("{share}/api")).send().await.unwrap().status(), StatusCode::OK);
        // Its first attempt is refused: a retry waits 30 s.
        let list = deliveries_when(&app, &hook, |d| d.len() == round && d[0]["attempts"] == 1).await;
        let id: publinks_domain::ids::DeliveryId = list[0]["id"].as_str().unwrap().parse().unwrap();
        // Ten minutes overdue: the sweep takes it up while its queue message arrives.
        app.clock.advance(chrono::Duration::minutes(11));
        let messages = (0..3).map(|_| app.webhooks.attempt(id));
        let sweep = app.webhooks.deliver_overdue(chrono::Duration::minutes(10), 25);
        let (attempts, swept) = futures_util::future::join(futures_util::future::join_all(messages), sweep).await;
        let made = attempts.into_iter().map(|a| a.unwrap()).filter(Option::is_some).count() + swept.unwrap();
        assert_eq!(made, 1, "one attempt made of the four: round {round}");
        let list = deliveries_when(&app, &hook, |d| d[0]["state"] == "delivered").await;
        assert_eq!(list[0]["attempts"], 2, "{}", list[0]);
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(counts.lock().unwrap()[&id.to_string()], 2, "sent once per attempt: round {round}");
    }
}
