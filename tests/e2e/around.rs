//! What surrounds the content on the visitor's pages: the icon, who shared
//! the link and until when, the way back through the password.

use publinks_e2e::{TestApp, spawn_app};
use publinks_media::demo_png;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// A new link on `target` (with `extra` fields): its share path.
async fn share(app: &TestApp, target: Value, extra: Value) -> String {
    let mut body = json!({"target": target});
    body.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
    let link = app.send(Method::POST, "/api/links", &app.admin(), body, StatusCode::CREATED).await;
    link["url"].as_str().unwrap().strip_prefix(&app.base).unwrap().to_string()
}

/// A folder "Around" with one picture: its id and the file's.
async fn folder_with_a_picture(app: &TestApp) -> (String, String) {
    let admin = app.admin();
    let folder = app.send(Method::POST, "/api/folders", &admin, json!({"name": "Around"}), StatusCode::CREATED).await;
    let folder = folder["id"].as_str().unwrap().to_string();
    let file = app.upload(&admin, Some(&folder), "dusk.png", "image/png", &demo_png(8, 8, 1)).await;
    (folder, file["id"].as_str().unwrap().to_string())
}

/// Every local address in an `href` or `src` attribute of `html`.
fn local_references(html: &str) -> Vec<String> {
    let mut found = Vec::new();
    for attribute in ["href=\"", "src=\""] {
        for part in html.split(attribute).skip(1) {
            let value = &part[..part.find('"').unwrap()];
            if value.starts_with('/') {
                found.push(value.replace("&amp;", "&"));
            }
        }
    }
    found
}

#[tokio::test]
async fn no_address_a_folder_page_references_answers_404_and_the_icon_is_served() {
    let app = spawn_app().await;
    let (folder, _) = folder_with_a_picture(&app).await;
    let share = share(&app, json!({"kind": "folder", "id": folder}), json!({})).await;
    let page = app.http.get(format!("{}{share}", app.base)).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let cookie = page.headers()[reqwest::header::SET_COOKIE].to_str().unwrap().split(';').next().unwrap().to_string();
    let csp = page.headers()[reqwest::header::CONTENT_SECURITY_POLICY].to_str().unwrap().to_string();
    assert!(csp.contains("img-src 'self'"), "the icon is allowed: {csp}");
    let html = page.text().await.unwrap();
    let references = local_references(&html);
    assert!(references.iter().any(|r| r == "/favicon.svg"), "{html}");
    for path in references.iter().map(String::as_str).chain(["/favicon.ico"]) {
        let res = app.http.get(format!("{}{path}", app.base)).header("cookie", &cookie).send().await.unwrap();
        assert_ne!(res.status(), StatusCode::NOT_FOUND, "{path}");
        assert!(res.status().is_success() || res.status().is_redirection(), "{path}: {}", res.status());
    }
    for path in ["/favicon.svg", "/favicon.ico"] {
        let res = app.http.get(format!("{}{path}", app.base)).send().await.unwrap();
        assert_eq!(res.headers()[reqwest::header::CONTENT_TYPE], "image/svg+xml", "{path}");
        assert!(res.text().await.unwrap().starts_with("<svg"), "{path}");
    }
}
