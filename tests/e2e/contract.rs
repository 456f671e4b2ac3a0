//! The API contract as the server offers it: the OpenAPI document, the
//! reference page that renders it from this server alone, and the session
//! endpoint's body, which the document describes as optional JSON.

use publinks_e2e::{TestApp, expect, spawn_app};
use publinks_http::openapi::openapi;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

async fn get_text(app: &TestApp, path: &str) -> (StatusCode, String, String) {
    let res = app.http.get(format!("{}{path}", app.base)).send().await.unwrap();
    let content_type = res.headers().get("content-type").map(|v| v.to_str().unwrap().to_string()).unwrap_or_default();
    (res.status(), content_type, res.text().await.unwrap())
}

#[tokio::test]
async fn the_server_answers_with_the_generated_document() {
    let app = spawn_app().await;
    let (status, content_type, body) = get_text(&app, "/api/openapi.json").await;
    assert_eq!(status, StatusCode::OK);
    assert!(content_type.starts_with("application/json"), "{content_type}");
    let served: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(served, serde_json::to_value(openapi()).unwrap());
    assert_eq!(served["openapi"], "3.1.0");
    for path in ["/api/me", "/api/links", "/s/{token}/api/session"] {
        assert!(served["paths"].get(path).is_some(), "{path} is not in the document");
    }
}

#[tokio::test]
async fn the_reference_page_loads_everything_from_this_server() {
    let app = spawn_app().await;
    let (status, content_type, page) = get_text(&app, "/api/docs/").await;
    assert_eq!(status, StatusCode::OK);
    assert!(content_type.starts_with("text/html"), "{content_type}");
    let assets: Vec<&str> = ["src=\"", "href=\""]
        .iter()
        .flat_map(|attr| page.split(attr).skip(1).map(|rest| rest.split('"').next().unwrap()))
        .collect();
    assert!(assets.len() >= 4, "scripts and stylesheets: {assets:?}");
    for asset in assets {
        assert!(!asset.contains("//"), "{asset} would be fetched from elsewhere");
        let (status, _, body) = get_text(&app, &format!("/api/docs/{}", asset.trim_start_matches("./"))).await;
        assert_eq!(status, StatusCode::OK, "{asset}");
        assert!(!body.is_empty(), "{asset}");
    }
    let (_, _, init) = get_text(&app, "/api/docs/swagger-initializer.js").await;
    assert!(init.contains(r#""url": "/api/openapi.json""#), "the page renders this server's document: {init}");
    assert!(init.contains(r#""validatorUrl": "none""#), "no online validator badge: {init}");
}

#[tokio::test]
async fn a_session_takes_no_body_null_or_a_json_password_and_nothing_else() {
    let app = spawn_app().await;
    let spring = app.folder_id(&["Campaigns", "Spring 2026"]).await;
    let body = json!({"target": {"kind": "folder", "id": spring}});
    let link = app.send(Method::POST, "/api/links", &app.admin(), body, StatusCode::CREATED).await;
    let session = format!("{}/api/session", link["url"].as_str().unwrap());

    let empty = app.http.post(&session).send().await.unwrap();
    assert!(expect(empty, StatusCode::CREATED).await["token"].is_string());
    let null = app.http.post(&session).header("content-type", "application/json").body("null").send().await.unwrap();
    assert!(expect(null, StatusCode::CREATED).await["token"].is_string());

    let form = app.http.post(&session).header("content-type", "text/plain").body("{}").send().await.unwrap();
    assert_eq!(expect(form, StatusCode::UNSUPPORTED_MEDIA_TYPE).await["error"]["code"], "unsupported_media_type");
    let huge = format!("{{\"password\": \"{}\"}}", "x".repeat(300 * 1024));
    let res = app.http.post(&session).header("content-type", "application/json").body(huge).send().await.unwrap();
    assert_eq!(expect(res, StatusCode::PAYLOAD_TOO_LARGE).await["error"]["code"], "payload_too_large");
}
