//! Preview-only links: visitors see the renditions, never an original or a
//! ZIP. Every route under `/s/` is walked from the router's own lists (the
//! page routes as registered, the API's OpenAPI paths): a route not named
//! here as showing previews or metadata must refuse, so a download route
//! added later cannot be forgotten.

use crate::headers::share_routes;
use publinks_e2e::{expect, rendition, spawn_app};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// The routes a preview-only link still serves: pages, metadata, listings,
/// the renditions, sessions and the logo. The visitor's downloads (page and
/// list) are refused: they lead to archives and originals.
const SERVED: &[(&str, &str)] = &[
    ("GET", "/s/{token}"),
    ("POST", "/s/{token}/unlock"),
    ("GET", "/s/{token}/folders/{folder_id}"),
    ("GET", "/s/{token}/files/{file_id}"),
    ("GET", "/s/{token}/api"),
    ("POST", "/s/{token}/api/session"),
    ("GET", "/s/{token}/api/folders/{folder_id}"),
    ("GET", "/s/{token}/api/files/{file_id}"),
    ("GET", "/s/{token}/api/files/{file_id}/thumbnail"),
    ("GET", "/s/{token}/api/files/{file_id}/preview"),
    ("GET", "/s/{token}/api/logo"),
];

#[tokio::test]
async fn a_preview_only_link_refuses_every_download_route_and_still_serves_previews() {
    let app = spawn_app().await;
    let admin = app.admin();
    let spring = app.folder_id(&["Campaigns", "Spring 2026"]).await;
    let hero = app.folder_id(&["Campaigns", "Spring 2026", "Hero shots"]).await;
    let file = app.file_id(&spring, "dusk.jpg").await;
    let body = json!({"target": {"kind": "folder", "id": spring}});
    let link = app.send(Method::POST, "/api/links", &admin, body, StatusCode::CREATED).await;
    assert_eq!(link["preview_only"], false);
    let token = link["url"].as_str().unwrap().rsplit('/').next().unwrap().to_string();
    let logo = app.request(Method::PUT, "/api/account/branding/logo", &admin).header("content-type", "image/png");
    expect(logo.body(publinks_media::demo_png(32, 16, 2)).send().await.unwrap(), StatusCode::OK).await;
    let base = format!("{}/s/{token}", app.base);
    let session = app.http.post(format!("{base}/api/session")).send().await.unwrap();
    let session = expect(session, StatusCode::CREATED).await["token"].as_str().unwrap().to_string();
    // An archive made while downloads were allowed: after the change it is refused too.
    let zip = app.http.post(format!("{base}/api/archives")).bearer_auth(&session).json(&json!({"file_ids": [file]}));
    let archive = expect(zip.send().await.unwrap(), StatusCode::ACCEPTED).await["id"].as_str().unwrap().to_string();
    let page = app.http.get(&base).bearer_auth(&session).send().await.unwrap().text().await.unwrap();
    assert!(page.contains("/downloads\"") && page.contains("id=\"zip\""), "a normal link offers downloads");
    let downloads = app.http.get(format!("{base}/downloads")).bearer_auth(&session).send().await.unwrap();
    let downloads = downloads.text().await.unwrap();
    assert!(
        downloads.contains(&format!("/archives/{archive}")),
        "the downloads page leads to the archive: {downloads}"
    );

    let described = |base: String| {
        let req = app.http.get(format!("{base}/api")).bearer_auth(&session);
        async move { expect(req.send().await.unwrap(), StatusCode::OK).await["preview_only"].clone() }
    };
    assert_eq!(described(base.clone()).await, false, "visitors' clients are told");
    let patch = json!({"preview_only": true});
    let path = format!("/api/links/{}", link["id"].as_str().unwrap());
    let changed = app.send(Method::PATCH, &path, &admin, patch, StatusCode::OK).await;
    assert_eq!(changed["preview_only"], true);
    assert_eq!(changed["url"], link["url"], "the URL stays");
    assert_eq!(described(base.clone()).await, true);

    let fill = |pattern: &str| {
        pattern
            .replace("{token}", &token)
            .replace("{file_id}", &file)
            .replace("{folder_id}", &hero)
            .replace("{archive_id}", &archive)
    };
    let routes = share_routes();
    let mut refused = Vec::new();
    for (method, pattern, page) in &routes {
        let mut req = app.http.request(method.clone(), format!("{}{}", app.base, fill(pattern))).bearer_auth(&session);
        req = match (method, *page, pattern.ends_with("/unlock")) {
            (&Method::POST, true, true) => req.form(&json!({"password": "not needed"})),
            (&Method::POST, true, false) => req.form(&json!({"scope": "selected", "file_id": file})),
            (&Method::POST, false, _) if pattern.ends_with("/archives") => req.json(&json!({"file_ids": [file]})),
            _ => req,
        };
        let res = req.send().await.unwrap();
        let status = res.status();
        let content_type = res.headers().get("content-type").map(|v| v.to_str().unwrap().to_string());
        let content_type = content_type.unwrap_or_default();
        let text = res.text().await.unwrap();
        let what = format!("{method} {pattern} -> {status}: {text}");
        if SERVED.contains(&(method.as_str(), pattern.as_str())) {
            assert!(status.is_success() || status.is_redirection(), "{what}");
            assert!(!text.contains("downloads_forbidden"), "{what}");
            continue;
        }
        assert_eq!(status, StatusCode::FORBIDDEN, "{what}");
        if *page {
            assert!(content_type.starts_with("text/html") && text.contains("previews only"), "{what}");
        } else {
            let body: Value = serde_json::from_str(&text).unwrap();
            assert_eq!(body["error"]["code"], "downloads_forbidden", "{what}");
        }
        refused.push(format!("{method} {pattern}"));
    }
    // The download routes of today, at least: a file, the ZIPs and the visitor's downloads on both sides.
    for route in [
        "GET /s/{token}/downloads",
        "GET /s/{token}/api/downloads",
        "GET /s/{token}/archives/{archive_id}",
        "GET /s/{token}/api/archives/{archive_id}",
        "GET /s/{token}/api/files/{file_id}/download",
        "POST /s/{token}/api/archives",
        "GET /s/{token}/api/archives/{archive_id}/download",
        "POST /s/{token}/archives",
        "GET /s/{token}/archives/{archive_id}/download",
    ] {
        assert!(refused.iter().any(|r| r == route), "{route} refused: {refused:?}");
    }

    // The previews still work, and the pages offer no download.
    let image = |kind: &str| format!("{base}/api/files/{file}/{kind}");
    assert!(rendition(&app.http, &image("thumbnail"), Some(&session)).await.width() > 0);
    assert!(rendition(&app.http, &image("preview"), Some(&session)).await.width() > 0);
    for path in [String::new(), format!("/files/{file}"), format!("/folders/{hero}")] {
        let page = app.http.get(format!("{base}{path}")).bearer_auth(&session).send().await.unwrap();
        let page = page.text().await.unwrap();
        for control in ["/download\"", "id=\"zip\"", "Download", "/downloads\"", "type=\"checkbox\""] {
            assert!(!page.contains(control), "{path} shows {control}: {page}");
        }
    }
    let listing = app.http.get(format!("{base}/api/folders/root")).bearer_auth(&session).send().await.unwrap();
    assert!(!expect(listing, StatusCode::OK).await["files"].as_array().unwrap().is_empty());

    // Created preview-only, audited; allowed again, the original is handed out.
    let body = json!({"target": {"kind": "file", "id": file}, "preview_only": true});
    let created = app.send(Method::POST, "/api/links", &admin, body, StatusCode::CREATED).await;
    assert_eq!(created["preview_only"], true);
    let id = created["id"].as_str().unwrap();
    let audit = app.get(&format!("/api/audit?link_id={id}"), &admin, StatusCode::OK).await;
    assert_eq!(audit["items"][0]["changes"]["preview_only"], json!({"from": false, "to": true}));
    app.send(Method::PATCH, &path, &admin, json!({"preview_only": false}), StatusCode::OK).await;
    let download = app.http.get(image("download")).bearer_auth(&session).send().await.unwrap();
    assert_eq!(download.status(), StatusCode::SEE_OTHER, "a redirect to the original");
}
