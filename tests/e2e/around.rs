//! What surrounds the content on the visitor's pages: the icon, who shared
//! the link and until when, the way back through the password.

use publinks_e2e::{TestApp, spawn_app};
use publinks_media::demo_png;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// A new link on `target` (with `extra` fields): its share path.
async fn new_link(app: &TestApp, target: Value, extra: Value) -> String {
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
    let share = new_link(&app, json!({"kind": "folder", "id": folder}), json!({})).await;
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

#[tokio::test]
async fn every_visitor_page_says_who_shares_the_link_and_until_when() {
    let app = spawn_app().await;
    let (folder, file) = folder_with_a_picture(&app).await;
    let account = app.get("/api/account", &app.admin(), StatusCode::OK).await;
    let by = format!("Shared by {}", account["name"].as_str().unwrap());
    let until = app.now() + chrono::Duration::days(3);
    let until = until - chrono::Duration::seconds(until.timestamp() % 60);
    let share = new_link(
        &app,
        json!({"kind": "folder", "id": folder}),
        json!({"valid_until": until.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)}),
    )
    .await;
    // In UTC with the zone named; the pages' script shows it in the visitor's zone.
    let available = format!(
        r#"Available until <time class="local" datetime="{}">{}</time>"#,
        until.format("%Y-%m-%dT%H:%M:%S+00:00"),
        until.format("%-d %B %Y, %H:%M UTC")
    );
    let first = app.http.get(format!("{}{share}", app.base)).send().await.unwrap();
    let cookie = first.headers()[reqwest::header::SET_COOKIE].to_str().unwrap().split(';').next().unwrap().to_string();
    let unknown = "/files/00000000-0000-0000-0000-000000000000";
    for path in ["".to_string(), format!("/files/{file}"), "/downloads".to_string(), unknown.to_string()] {
        let res = app.http.get(format!("{}{share}{path}", app.base)).header("cookie", &cookie).send().await.unwrap();
        let html = res.text().await.unwrap();
        assert!(html.contains(&by) && html.contains(&available), "{path}: {html}");
    }

    let protected = new_link(&app, json!({"kind": "folder", "id": folder}), json!({"password": "correct horse"})).await;
    let page = app.http.get(format!("{}{protected}/files/{file}", app.base)).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::UNAUTHORIZED);
    let html = page.text().await.unwrap();
    assert!(html.contains(&by) && !html.contains("Available until"), "a link without end says nothing: {html}");
    let wrong = app.http.post(format!("{}{protected}/unlock", app.base)).form(&[("password", "wrong")]).send();
    let html = wrong.await.unwrap().text().await.unwrap();
    assert!(html.contains("not correct") && html.contains(&by), "{html}");
}

#[tokio::test]
async fn a_deep_link_survives_the_password_and_the_form_returns_only_within_the_link() {
    let app = spawn_app().await;
    let (folder, file) = folder_with_a_picture(&app).await;
    let share = new_link(&app, json!({"kind": "folder", "id": folder}), json!({"password": "correct horse"})).await;
    let deep = format!("{share}/files/{file}");
    let page = app.http.get(format!("{}{deep}", app.base)).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::UNAUTHORIZED);
    let html = page.text().await.unwrap();
    assert!(html.contains(&format!(r#"<input type="hidden" name="next" value="{deep}">"#)), "{html}");
    let root = app.http.get(format!("{}{share}", app.base)).send().await.unwrap().text().await.unwrap();
    assert!(!root.contains(r#"name="next""#), "the start page returns to itself: {root}");

    let unlock = |next: String| {
        app.http
            .post(format!("{}{share}/unlock", app.base))
            .form(&[("password", "correct horse"), ("next", &next)])
            .send()
    };
    let res = unlock(deep.clone()).await.unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(res.headers()[reqwest::header::LOCATION], deep.as_str());
    let cookie = res.headers()[reqwest::header::SET_COOKIE].to_str().unwrap().split(';').next().unwrap().to_string();
    let there = app.http.get(format!("{}{deep}", app.base)).header("cookie", &cookie).send().await.unwrap();
    assert_eq!(there.status(), StatusCode::OK, "the deep link opens once unlocked");

    let outside = [
        "https://evil.example/s/x".to_string(),
        "//evil.example/".to_string(),
        format!("{share}/../../elsewhere"),
        format!("{share}//evil.example"),
        format!("{share}evil"),
        "/s/another-token/files/x".to_string(),
        format!("{share}/files/a?b=https://evil.example"),
    ];
    for next in outside {
        let res = unlock(next.clone()).await.unwrap();
        assert_eq!(res.status(), StatusCode::SEE_OTHER, "{next}");
        assert_eq!(res.headers()[reqwest::header::LOCATION], share.as_str(), "{next} is refused for the start page");
    }
    let wrong = app.http.post(format!("{}{share}/unlock", app.base)).form(&[("password", "wrong"), ("next", &deep)]);
    let html = wrong.send().await.unwrap().text().await.unwrap();
    assert!(html.contains(&format!(r#"name="next" value="{deep}""#)), "a wrong password keeps the way back: {html}");
}

#[tokio::test]
async fn an_item_outside_the_share_leads_back_and_the_throttle_counts_in_words() {
    let app = spawn_app().await;
    let (folder, _) = folder_with_a_picture(&app).await;
    let share = new_link(&app, json!({"kind": "folder", "id": folder}), json!({"password": "correct horse"})).await;
    let unlock = |password: &'static str| {
        app.http.post(format!("{}{share}/unlock", app.base)).form(&[("password", password)]).send()
    };
    let res = unlock("correct horse").await.unwrap();
    let cookie = res.headers()[reqwest::header::SET_COOKIE].to_str().unwrap().split(';').next().unwrap().to_string();
    let outside = app.file_id(&app.folder_id(&["Campaigns", "Spring 2026"]).await, "dusk.jpg").await;
    for path in [format!("/files/{outside}"), "/files/00000000-0000-0000-0000-000000000000".into()] {
        let res = app.http.get(format!("{}{share}{path}", app.base)).header("cookie", &cookie).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::NOT_FOUND, "{path}");
        let html = res.text().await.unwrap();
        assert!(html.contains(&format!(r#"<a href="{share}">"#)), "the page leads back to the share: {html}");
        assert!(!html.contains("dusk.jpg"), "{html}");
    }

    let mut throttled = None;
    for _ in 0..8 {
        let res = unlock("wrong").await.unwrap();
        if res.status() == StatusCode::TOO_MANY_REQUESTS {
            throttled = Some(res);
            break;
        }
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    }
    let res = throttled.expect("guesses are throttled");
    let wait: u64 = res.headers()[reqwest::header::RETRY_AFTER].to_str().unwrap().parse().unwrap();
    assert_eq!(wait, 1, "the first wait is a second");
    let html = res.text().await.unwrap();
    assert!(html.contains("Try again in 1 second.") && !html.contains("1 seconds"), "{html}");
}

/// The `og:` properties of a page, as (property, content).
fn open_graph(html: &str) -> Vec<(String, String)> {
    html.split("<meta property=\"og:")
        .skip(1)
        .map(|rest| {
            let (property, rest) = rest.split_once('"').unwrap();
            let content = rest.split("content=\"").nth(1).unwrap();
            (property.to_string(), content[..content.find('"').unwrap()].to_string())
        })
        .collect()
}

#[tokio::test]
async fn link_previews_get_a_title_only_and_nothing_of_a_protected_link() {
    let app = spawn_app().await;
    let (folder, file) = folder_with_a_picture(&app).await;
    let open = new_link(&app, json!({"kind": "folder", "id": folder}), json!({})).await;
    for path in [open.clone(), format!("{open}/files/{file}")] {
        let html = app.http.get(format!("{}{path}", app.base)).send().await.unwrap().text().await.unwrap();
        assert_eq!(open_graph(&html), [("title".to_string(), "Around".to_string())], "{path}: {html}");
    }

    let protected = new_link(&app, json!({"kind": "folder", "id": folder}), json!({"password": "correct horse"})).await;
    let unlock = app.http.post(format!("{}{protected}/unlock", app.base)).form(&[("password", "correct horse")]);
    let res = unlock.send().await.unwrap();
    let cookie = res.headers()[reqwest::header::SET_COOKIE].to_str().unwrap().split(';').next().unwrap().to_string();
    for path in [protected.clone(), format!("{protected}/files/{file}")] {
        let locked = app.http.get(format!("{}{path}", app.base)).send().await.unwrap();
        assert_eq!(locked.status(), StatusCode::UNAUTHORIZED);
        let html = locked.text().await.unwrap();
        assert_eq!(open_graph(&html), [("title".to_string(), "Shared files".to_string())], "{path}: {html}");
        assert!(!html.contains("Around") && !html.contains("dusk.png"), "{html}");
        let unlocked = app.http.get(format!("{}{path}", app.base)).header("cookie", &cookie).send().await.unwrap();
        let html = unlocked.text().await.unwrap();
        assert_eq!(open_graph(&html), [("title".to_string(), "Shared files".to_string())], "{path}: {html}");
    }
}
