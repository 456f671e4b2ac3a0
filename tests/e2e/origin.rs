//! Only CloudFront reaches `public-api`: a request without the origin secret
//! is refused before any work, and only a request with it has its
//! `CloudFront-Viewer-Address` believed — the network whose guesses wait.

use publinks_domain::passwords;
use publinks_e2e::{TestApp, expect, spawn_app};
use publinks_http::origin::{ORIGIN_HEADER, OriginSecrets};
use reqwest::{Method, StatusCode};
use serde_json::json;

const CURRENT: &str = "current-origin-secret-0123456789abcdefghijklmnopqrstuvwxyzABCDEF";
const PREVIOUS: &str = "previous-origin-secret-0123456789abcdefghijklmnopqrstuvwxyzABCDE";

async fn protected_link(app: &TestApp) -> String {
    let spring = app.folder_id(&["Campaigns", "Spring 2026"]).await;
    let body = json!({"target": {"kind": "folder", "id": spring}, "password": "correct horse"});
    let link = app.send(Method::POST, "/api/links", &app.admin(), body, StatusCode::CREATED).await;
    link["url"].as_str().unwrap().strip_prefix(&app.base).unwrap().to_string()
}

/// A password guess at `base` (a server), with the origin secret and viewer address given.
async fn guess(
    app: &TestApp,
    base: &str,
    share: &str,
    password: &str,
    origin: Option<&str>,
    viewer: &str,
) -> reqwest::Response {
    let mut req = app.http.post(format!("{base}{share}/api/session")).json(&json!({"password": password}));
    if let Some(secret) = origin {
        req = req.header(ORIGIN_HEADER, secret);
    }
    req.header("cloudfront-viewer-address", viewer).send().await.unwrap()
}

#[tokio::test]
async fn without_the_origin_secret_nothing_is_done() {
    let app = spawn_app().await;
    let public = app.spawn_public_api(OriginSecrets::new([CURRENT, PREVIOUS]).unwrap()).await;
    let share = protected_link(&app).await;
    let hashed_before = passwords::verifications();
    let (near_miss, shouted) = (&CURRENT[..CURRENT.len() - 1], CURRENT.to_uppercase());
    for secret in [None, Some("wrong"), Some(near_miss), Some(shouted.as_str())] {
        for (method, path) in [
            (Method::POST, format!("{share}/api/session")),
            (Method::POST, format!("{share}/unlock")),
            (Method::GET, format!("{share}/api")),
            (Method::GET, "/s/no-such-link/api".to_string()),
            (Method::GET, "/nowhere".to_string()),
        ] {
            let mut req = app.http.request(method.clone(), format!("{}{path}", public.base));
            if let Some(s) = secret {
                req = req.header(ORIGIN_HEADER, s);
            }
            let res = req
                .header("cloudfront-viewer-address", "198.51.100.9:443")
                .header("content-type", "application/json")
                .body(r#"{"password": "a guess"}"#)
                .send()
                .await
                .unwrap();
            if path.starts_with("/s/") {
                assert_eq!(res.headers()["x-robots-tag"], "noindex, nofollow", "{path}");
            }
            let body = expect(res, StatusCode::FORBIDDEN).await;
            assert_eq!(body["error"]["code"], "origin_refused", "{method} {path} with {secret:?}");
        }
    }
    assert_eq!(passwords::verifications(), hashed_before, "no password was checked");
    // Nothing was counted either: the network still has its five free guesses.
    for _ in 0..5 {
        let res = guess(&app, &public.base, &share, "wrong guess", Some(CURRENT), "198.51.100.9:443").await;
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    }
}

#[tokio::test]
async fn through_cloudfront_the_viewer_address_is_the_network_that_waits() {
    let app = spawn_app().await;
    let public = app.spawn_public_api(OriginSecrets::new([CURRENT, PREVIOUS]).unwrap()).await;
    let share = protected_link(&app).await;
    let base = public.base.as_str();
    for _ in 0..5 {
        let res = guess(&app, base, &share, "wrong guess", Some(CURRENT), "198.51.100.1:50000").await;
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    }
    let res = guess(&app, base, &share, "wrong guess", Some(CURRENT), "198.51.100.1:50001").await;
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS, "the viewer's network waits");
    let res = guess(&app, base, &share, "correct horse", Some(CURRENT), "198.51.100.1:50002").await;
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS, "even with the right password");
    // Other viewers are other networks, whichever of the two accepted
    // secrets (a rotation) their edge sends.
    let res = guess(&app, base, &share, "wrong guess", Some(PREVIOUS), "198.51.100.2:443").await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    let res = guess(&app, base, &share, "wrong guess", Some(CURRENT), "[2001:db8:1:2::7]:443").await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    let res = guess(&app, base, &share, "correct horse", Some(CURRENT), "198.51.100.3:443").await;
    assert!(expect(res, StatusCode::CREATED).await["token"].is_string());

    // Without CloudFront in front (the local server), the header is anyone's
    // to write: it is ignored, and every guess is the socket's.
    for i in 0..5 {
        let res = guess(&app, &app.base, &share, "wrong guess", None, &format!("203.0.113.{i}:443")).await;
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    }
    let res = guess(&app, &app.base, &share, "wrong guess", None, "203.0.113.99:443").await;
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS, "a forged address buys no new network");
}

#[tokio::test]
async fn no_stored_record_holds_a_viewers_address() {
    let app = spawn_app().await;
    let public = app.spawn_public_api(OriginSecrets::new([CURRENT]).unwrap()).await;
    let share = protected_link(&app).await;
    let base = public.base.as_str();
    let viewers = [("203.0.113.77:443", "203.0.113"), ("[2001:db8:77:1::5]:443", "2001:db8:77")];
    for (viewer, _) in viewers {
        let res = guess(&app, base, &share, "wrong guess", Some(CURRENT), viewer).await;
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
        let res = guess(&app, base, &share, "correct horse", Some(CURRENT), viewer).await;
        let session = expect(res, StatusCode::CREATED).await["token"].as_str().unwrap().to_string();
        let res = app
            .http
            .post(format!("{base}{share}/api/archives"))
            .header(ORIGIN_HEADER, CURRENT)
            .header("cloudfront-viewer-address", viewer)
            .bearer_auth(&session)
            .json(&serde_json::json!({}))
            .send()
            .await
            .unwrap();
        expect(res, StatusCode::ACCEPTED).await;
    }
    let records = app.raw_records().await;
    assert!(records.iter().any(|r| r.contains("archives:open:network:")), "the network places are stored");
    for (_, address) in viewers {
        let holding: Vec<&String> = records.iter().filter(|r| r.contains(address)).collect();
        assert!(holding.is_empty(), "records holding {address}: {holding:#?}");
    }
}
