//! Every response under `/s/` — pages, JSON, redirects, downloads,
//! thumbnails, errors — carries the same protective headers, and a page
//! address that fails answers HTML. The routes are walked from the router's
//! own lists (the page routes as registered, the JSON API's OpenAPI paths),
//! so a route added later is walked too.

use publinks_e2e::{TestApp, spawn_app};
use publinks_http::openapi::openapi;
use publinks_pages::page_routes;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// A value in a request that no response may repeat.
const MARK: &str = "zq<i>MARK</i>";

/// Every route under `/s/`, as (method, path pattern, is a page).
pub(crate) fn share_routes() -> Vec<(Method, String, bool)> {
    let mut routes: Vec<_> = page_routes().into_iter().map(|(m, p)| (m, p.to_string(), true)).collect();
    let doc = serde_json::to_value(openapi()).unwrap();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            if let Ok(method) = method.to_uppercase().parse::<Method>()
                && path.starts_with("/s/")
            {
                routes.push((method, path.clone(), false));
            }
        }
    }
    routes
}

struct Ids {
    open: String,
    protected: String,
    file: String,
    folder: String,
    archive: String,
    session: String,
}

fn fill(pattern: &str, token: &str, ids: &Ids, bad_id: Option<&str>) -> String {
    let id = |real: &str| bad_id.unwrap_or(real).to_string();
    pattern
        .replace("{token}", token)
        .replace("{file_id}", &id(&ids.file))
        .replace("{folder_id}", &id(&ids.folder))
        .replace("{archive_id}", &id(&ids.archive))
}

async fn setup(app: &TestApp) -> Ids {
    let spring = app.folder_id(&["Campaigns", "Spring 2026"]).await;
    let hero = app.folder_id(&["Campaigns", "Spring 2026", "Hero shots"]).await;
    let file = app.file_id(&spring, "dusk.jpg").await;
    let token = |link: &Value| link["url"].as_str().unwrap().rsplit('/').next().unwrap().to_string();
    let logo = app.request(Method::PUT, "/api/account/branding/logo", &app.admin()).header("content-type", "image/png");
    assert_eq!(logo.body(publinks_media::demo_png(32, 16, 2)).send().await.unwrap().status(), StatusCode::OK);
    let body = json!({"target": {"kind": "folder", "id": spring}});
    let open = token(&app.send(Method::POST, "/api/links", &app.admin(), body, StatusCode::CREATED).await);
    let body = json!({"target": {"kind": "folder", "id": spring}, "password": "correct horse"});
    let protected = token(&app.send(Method::POST, "/api/links", &app.admin(), body, StatusCode::CREATED).await);
    let session = app.http.post(format!("{}/s/{open}/api/session", app.base)).send().await.unwrap();
    let session = session.json::<Value>().await.unwrap()["token"].as_str().unwrap().to_string();
    let archive = app
        .http
        .post(format!("{}/s/{open}/api/archives", app.base))
        .bearer_auth(&session)
        .json(&json!({"file_ids": [file]}))
        .send()
        .await
        .unwrap();
    assert_eq!(archive.status(), StatusCode::ACCEPTED);
    let archive = archive.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_string();
    Ids { open, protected, file, folder: hero, archive, session }
}

/// Sends one request and checks what every response under `/s/` carries.
async fn check(
    app: &TestApp,
    method: &Method,
    path: &str,
    page: bool,
    session: Option<&str>,
    body: Option<Value>,
) -> u16 {
    let mut req = app.http.request(method.clone(), format!("{}{path}", app.base));
    if let Some(s) = session {
        req = req.bearer_auth(s);
    }
    req = match body {
        Some(b) if page => req.form(&b),
        Some(b) => req.json(&b),
        None => req,
    };
    let res = req.send().await.unwrap();
    let (status, headers) = (res.status(), res.headers().clone());
    let text = res.text().await.unwrap();
    let what = format!("{method} {path} -> {status}");
    let header = |name: &str| headers.get(name).map(|v| v.to_str().unwrap().to_string()).unwrap_or_default();
    assert_eq!(header("x-robots-tag"), "noindex, nofollow", "{what}");
    assert_eq!(header("referrer-policy"), "no-referrer", "{what}");
    assert_eq!(header("x-content-type-options"), "nosniff", "{what}");
    assert_eq!(header("x-frame-options"), "DENY", "{what}");
    assert!(header("content-security-policy").contains("frame-ancestors 'none'"), "{what}");
    let plain = path.split('?').next().unwrap();
    let image = ["/thumbnail", "/preview", "/api/logo"].iter().any(|end| plain.ends_with(end));
    let rendition = image && status == StatusCode::OK;
    let cache = header("cache-control");
    assert!(if rendition { cache == "private, max-age=300" } else { cache == "no-store" }, "{what}: {cache}");
    let content_type = header("content-type");
    if status.is_client_error() || status.is_server_error() {
        let expected = if page { "text/html" } else { "application/json" };
        assert!(content_type.starts_with(expected), "{what}: {content_type}: {text}");
    }
    if content_type.starts_with("text/html") {
        assert!(text.contains(r#"<meta name="robots" content="noindex, nofollow">"#), "{what}");
    }
    assert!(!text.contains("MARK"), "{what} repeats the request: {text}");
    status.as_u16()
}

#[tokio::test]
async fn every_route_under_s_carries_the_protective_headers_and_pages_fail_as_pages() {
    let app = spawn_app().await;
    let ids = setup(&app).await;
    let routes = share_routes();
    assert!(routes.len() >= 18, "pages and API routes: {routes:?}");
    let mut seen = Vec::new();
    for (method, pattern, page) in &routes {
        let body = |mark: bool| match (method, page, pattern.ends_with("/unlock")) {
            (&Method::POST, true, true) => Some(json!({"password": if mark { MARK } else { "x" }})),
            (&Method::POST, true, false) => {
                Some(json!({"scope": "selected", "file_id": if mark { MARK } else { &ids.file }}))
            }
            (&Method::POST, false, _) if mark => Some(json!({"folder_id": MARK})),
            (&Method::POST, false, _) => None,
            _ => None,
        };
        // As a visitor of an open link (with a session for the API).
        let ok = fill(pattern, &ids.open, &ids, None);
        let session = Some(ids.session.as_str());
        seen.push(check(&app, method, &ok, *page, session, body(false)).await);
        // A link that needs a password, without one; a link that does not exist.
        check(&app, method, &fill(pattern, &ids.protected, &ids, None), *page, None, body(false)).await;
        check(&app, method, &fill(pattern, "no-such-link", &ids, None), *page, None, body(false)).await;
        // Bad input everywhere it can go: ids, the query, the body.
        let bad = fill(pattern, &ids.open, &ids, Some(&urlencode(MARK)));
        check(&app, method, &bad, *page, session, body(true)).await;
        check(
            &app,
            method,
            &format!("{ok}?cursor={}&limit={}", urlencode(MARK), urlencode(MARK)),
            *page,
            session,
            None,
        )
        .await;
        // A method the route does not take.
        let other = if *method == Method::GET { Method::DELETE } else { Method::PUT };
        assert_eq!(check(&app, &other, &ok, *page, session, None).await, 405, "{other} {ok}");
    }
    assert!(seen.iter().all(|s| [200, 201, 202, 303].contains(s)), "each route worked once: {seen:?}");
    // Addresses under /s/ that no route has: pages fail as pages, the API as JSON.
    let open = &ids.open;
    for (path, page) in [
        (format!("/s/{open}/nope"), true),
        (format!("/s/{open}/files/{}/nope", ids.file), true),
        ("/s/".to_string(), true),
        ("/s".to_string(), true),
        (format!("/s/{open}/api/nope"), false),
        (format!("/s/{open}/api/files/{}/nope", ids.file), false),
    ] {
        assert_eq!(check(&app, &Method::GET, &path, page, None, None).await, 404, "{path}");
    }
}

fn urlencode(text: &str) -> String {
    text.bytes()
        .map(|b| if b.is_ascii_alphanumeric() { (b as char).to_string() } else { format!("%{b:02X}") })
        .collect()
}

/// The server's address answers people with a page (strict content policy,
/// like the visitor's pages); API clients keep JSON errors under `/api`.
#[tokio::test]
async fn the_root_is_a_page_for_people_and_api_clients_keep_json() {
    let app = spawn_app().await;
    let res = app.http.get(format!("{}/", app.base)).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let headers = res.headers().clone();
    assert!(headers["content-type"].to_str().unwrap().starts_with("text/html"));
    assert!(headers["content-security-policy"].to_str().unwrap().starts_with("default-src 'none'"));
    assert_eq!(headers["x-frame-options"], "DENY");
    let page = res.text().await.unwrap();
    assert!(page.contains("href=\"/api/docs\"") && page.contains("href=\"/api/openapi.json\""), "{page}");
    let res = app.http.get(format!("{}/api/no-such-thing", app.base)).send().await.unwrap();
    let body = publinks_e2e::expect(res, StatusCode::NOT_FOUND).await;
    assert_eq!(body["error"]["code"], "no_route");
    let res = app.http.post(format!("{}/", app.base)).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::METHOD_NOT_ALLOWED);
}
