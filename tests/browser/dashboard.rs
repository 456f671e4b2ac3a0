//! The owner's dashboard (`/app/`) in headless Chromium: the whole story of
//! sharing a folder as the administrator — with a visitor in a second
//! browser — and what a restricted and a view-only user see. Every page is
//! checked with axe-core (zero violations) at desktop and mobile widths, and
//! photographed into `target/screenshots/dashboard-*.png`.

use super::{Chromium, chromium_with_env, snap, text_of, text_once_it_says};
use fantoccini::key::Key;
use fantoccini::{Client, Locator};
use publinks_e2e::spawn_app;
use std::path::Path;
use std::time::Duration;

/// The time zone the browser runs in: the validity pickers are in it, and
/// what reaches the API must be the same instant in UTC.
const ZONE: &str = "Europe/Berlin";

pub(super) const DESKTOP: (u32, u32) = (1280, 900);
pub(super) const MOBILE: (u32, u32) = (390, 844);

/// axe-core, installed by `scripts/test.sh` (npm ci in tests/browser/axe).
fn axe_source() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("browser/axe/node_modules/axe-core/axe.min.js");
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e}; run scripts/test.sh, which installs axe-core", path.display()))
}

/// Runs axe-core on the page as it is and fails on any violation, naming
/// each rule and the elements it found.
pub(super) async fn no_axe_violations(client: &Client, page: &str) {
    let injected = client.execute("return typeof axe !== 'undefined';", vec![]).await.unwrap();
    if injected.as_bool() != Some(true) {
        client.execute(&format!("{}\nreturn true;", axe_source()), vec![]).await.unwrap();
    }
    let script = "const done = arguments[arguments.length - 1];
        axe.run(document, { resultTypes: ['violations'] }).then(r => done(r.violations.map(v =>
            v.id + ': ' + v.help + ' — ' + v.nodes.map(n => n.target.join(' ')).join(', '))));";
    let found = client.execute_async(script, vec![]).await.unwrap();
    let found: Vec<String> = serde_json::from_value(found).unwrap();
    assert!(found.is_empty(), "axe-core on {page}: {found:#?}");
}

/// Checks, then photographs, the page.
async fn page_ok(client: &Client, name: &str) {
    no_axe_violations(client, name).await;
    snap(client, &format!("dashboard-{name}")).await;
}

async fn size(client: &Client, (w, h): (u32, u32)) {
    client.set_window_size(w, h).await.unwrap();
}

pub(super) async fn click(client: &Client, css: &str) {
    client.wait().for_element(Locator::Css(css)).await.unwrap().click().await.unwrap();
}

/// Waits until the page's `h1` says `title` (pages render after their API calls).
pub(super) async fn heading(client: &Client, title: &str) {
    for _ in 0..100 {
        if let Ok(h1) = client.find(Locator::Css("main h1")).await
            && h1.text().await.is_ok_and(|t| t == title)
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the page never said {title:?}; it says {:?}", text_of(client, "main").await);
}

/// Waits until `css` matches `n` elements.
async fn count(client: &Client, css: &str, n: usize) {
    let mut last = 0;
    for _ in 0..100 {
        last = client.find_all(Locator::Css(css)).await.unwrap().len();
        if last == n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{css}: {last} elements, expected {n}");
}

/// A key pressed where the focus is.
async fn press(client: &Client, key: Key) {
    client.active_element().await.unwrap().send_keys(&key.to_string()).await.unwrap();
}

async fn sign_in_as(client: &Client, base: &str, role: &str) {
    client.goto(&format!("{base}/app/")).await.unwrap();
    heading(client, "Sign in to the dashboard").await;
    click(client, &format!("button.user[data-role={role}]")).await;
}

async fn value_of(client: &Client, css: &str) -> String {
    let el = client.wait().for_element(Locator::Css(css)).await.unwrap();
    el.prop("value").await.unwrap().unwrap_or_default()
}

/// Sets a datetime-local picker as a person would leave it (typing into one
/// depends on the locale's field order).
async fn set_input(client: &Client, id: &str, value: &str) {
    let script = "const el = document.getElementById(arguments[0]); el.value = arguments[1]; return el.value;";
    let set = client.execute(script, vec![id.into(), value.into()]).await.unwrap();
    assert_eq!(set.as_str(), Some(value), "{id} takes {value}");
}

/// No bearer token ever shows in the address bar.
async fn no_token_in_url(client: &Client) {
    let url = client.current_url().await.unwrap();
    assert!(!url.as_str().contains("eyJ"), "a token in the URL: {url}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_administrator_shares_a_folder_and_follows_it_to_the_audit_log_and_downloads() {
    let app = spawn_app().await;
    let Chromium { client, downloads: _d, _driver, _profile } = chromium_with_env(&[("TZ", ZONE)]).await;
    let spring = app.folder_id(&["Campaigns", "Spring 2026"]).await;

    // Sign in: the local mode says so, and offers the demo's users.
    client.goto(&format!("{}/app/", app.base)).await.unwrap();
    heading(&client, "Sign in to the dashboard").await;
    assert!(text_of(&client, ".local-mode").await.contains("Local mode"));
    count(&client, "button.user", 3).await;
    page_ok(&client, "01-sign-in").await;
    click(&client, "button.user[data-role=admin]").await;
    heading(&client, "Library").await;
    assert!(text_of(&client, "#nav").await.contains("Public links"), "administrators have the settings page");
    page_ok(&client, "02-library").await;

    // Browse to the folder: breadcrumbs, the grid, drafts and private files marked.
    client.find(Locator::LinkText("Campaigns")).await.unwrap().click().await.unwrap();
    heading(&client, "Campaigns").await;
    client.find(Locator::LinkText("Spring 2026")).await.unwrap().click().await.unwrap();
    heading(&client, "Spring 2026").await;
    let crumbs = text_of(&client, ".crumbs").await;
    assert!(crumbs.contains("Library") && crumbs.contains("Campaigns"), "{crumbs}");
    count(&client, ".grid .file", 3).await;
    assert!(text_of(&client, ".grid").await.contains("private"), "sunrise.jpg is marked private");
    count(&client, ".grid .thumb img", 3).await;
    page_ok(&client, "03-folder").await;

    // The Public links dialog: a refusal beside its field, then the link.
    click(&client, &format!(".title-row button.share[data-share='{spring}']")).await;
    client.wait().for_element(Locator::Css("dialog[open] #link-form")).await.unwrap();
    assert!(text_of(&client, "dialog[open]").await.contains("No public links yet"));
    client.find(Locator::Id("password")).await.unwrap().send_keys("short").await.unwrap();
    click(&client, "#link-form button[type=submit]").await;
    let refusal = text_of(&client, "#link-form .field:has(#password) .field-error").await;
    assert!(refusal.contains("password") && refusal.contains('8'), "{refusal}");
    page_ok(&client, "04-links-dialog-refusal").await;

    let password = client.find(Locator::Id("password")).await.unwrap();
    password.clear().await.unwrap();
    password.send_keys("first secret").await.unwrap();
    set_input(&client, "valid_until", "2030-01-15T18:30").await;
    click(&client, "#link-form button[type=submit]").await;
    count(&client, "dialog[open] li.link[data-state=active]", 1).await;
    let url = value_of(&client, "dialog[open] li.link input.url").await;
    assert!(url.starts_with(&format!("{}/s/", app.base)), "{url}");
    click(&client, "dialog[open] li.link .field.inline button").await;
    // The button says so once the clipboard took the URL (a promise the page awaits).
    let copied = text_once_it_says(&client, "dialog[open] li.link .field.inline button", "Copied").await;
    assert_eq!(copied, "Copied");
    page_ok(&client, "05-links-dialog").await;

    // What the API holds: the end in UTC (18:30 in Berlin in January is 17:30Z).
    let links = app.get(&format!("/api/folders/{spring}/links"), &app.admin(), reqwest::StatusCode::OK).await;
    let link = &links["items"][0];
    assert_eq!(link["valid_until"], "2030-01-15T17:30:00Z");
    assert_eq!(link["password_protected"], true);
    let link_id = link["id"].as_str().unwrap().to_string();

    // A visitor in a second browser unlocks the link and downloads a file.
    let visitor = chromium_with_env(&[]).await;
    visitor.client.goto(&url).await.unwrap();
    visitor.client.find(Locator::Id("password")).await.unwrap().send_keys("first secret\n").await.unwrap();
    visitor.client.wait().for_element(Locator::Css(".grid")).await.unwrap();
    visitor.client.find(Locator::LinkText("dusk.jpg")).await.unwrap().click().await.unwrap();
    visitor.client.wait().for_element(Locator::Id("download")).await.unwrap().click().await.unwrap();
    super::saved_download(visitor.downloads.path(), "dusk.jpg").await;

    // A new password: same URL, and the visitor's session is over.
    click(&client, "dialog[open] li.link button.edit").await;
    client.wait().for_element(Locator::Css("#link-form #remove_password")).await.unwrap();
    client.find(Locator::Id("password")).await.unwrap().send_keys("second secret").await.unwrap();
    click(&client, "#link-form button[type=submit]").await;
    client.wait().for_element(Locator::Css("dialog[open] #link-form:not(:has(#remove_password))")).await.unwrap();
    assert_eq!(value_of(&client, "dialog[open] li.link input.url").await, url, "the URL stays");
    visitor.client.goto(&url).await.unwrap();
    assert!(text_of(&visitor.client, "h1").await.contains("protected"), "the visitor is asked again");
    visitor.client.close().await.unwrap();
    click(&client, "dialog[open] button.close").await;

    // Settings → Public links finds it; delete it there, after a confirmation.
    client.find(Locator::LinkText("Public links")).await.unwrap().click().await.unwrap();
    heading(&client, "Public links").await;
    client.find(Locator::Css("#filter-kind option[value=folder]")).await.unwrap().click().await.unwrap();
    client.find(Locator::Css("#filter-state option[value=active]")).await.unwrap().click().await.unwrap();
    click(&client, "#link-filters button[type=submit]").await;
    count(&client, &format!("#all-links li.link[data-link='{link_id}']"), 1).await;
    assert!(text_of(&client, "#all-links").await.contains("Spring 2026"));
    page_ok(&client, "06-settings-links").await;
    click(&client, &format!("#all-links li.link[data-link='{link_id}'] button.delete")).await;
    client.wait().for_element(Locator::Css("dialog.confirm[open]")).await.unwrap();
    page_ok(&client, "07-confirm-delete").await;
    click(&client, "dialog.confirm button[value=yes]").await;
    count(&client, &format!("#all-links li.link[data-link='{link_id}']"), 0).await;
    app.get(&format!("/api/links/{link_id}"), &app.admin(), reqwest::StatusCode::NOT_FOUND).await;

    // The audit log: created, updated, deleted, by the administrator.
    client.find(Locator::LinkText("Audit log")).await.unwrap().click().await.unwrap();
    heading(&client, "Audit log").await;
    client.find(Locator::Id("audit-link_id")).await.unwrap().send_keys(&link_id).await.unwrap();
    click(&client, "#audit-filters button[type=submit]").await;
    count(&client, "#audit tbody tr", 3).await;
    let audit = text_of(&client, "#audit").await;
    for expected in ["created", "updated", "deleted", "Ada Admin (you)", "password changed"] {
        assert!(audit.contains(expected), "{expected} missing from {audit}");
    }
    page_ok(&client, "08-audit").await;

    // Downloads: the visitor's, through a public link.
    client.find(Locator::LinkText("Downloads")).await.unwrap().click().await.unwrap();
    heading(&client, "Downloads").await;
    count(&client, "#downloads tbody tr[data-via=true]", 1).await;
    let row = text_of(&client, "#downloads tbody tr[data-via=true]").await;
    assert!(row.contains("dusk.jpg") && row.contains("Yes"), "{row}");
    page_ok(&client, "09-downloads").await;

    // The same pages at a phone's width.
    size(&client, MOBILE).await;
    for (hash, title, name) in [
        ("#/library", "Library", "10-mobile-library"),
        (&*format!("#/library/folder/{spring}"), "Spring 2026", "11-mobile-folder"),
        ("#/settings/links", "Public links", "12-mobile-settings"),
        ("#/audit", "Audit log", "13-mobile-audit"),
        ("#/downloads", "Downloads", "14-mobile-downloads"),
    ] {
        client.goto(&format!("{}/app/{hash}", app.base)).await.unwrap();
        heading(&client, title).await;
        page_ok(&client, name).await;
        no_token_in_url(&client).await;
    }
    size(&client, DESKTOP).await;

    // Sign out: the token is gone from the tab.
    client.goto(&format!("{}/app/#/library", app.base)).await.unwrap();
    heading(&client, "Library").await;
    click(&client, "#sign-out").await;
    heading(&client, "Sign in to the dashboard").await;
    let kept = client.execute("return sessionStorage.length;", vec![]).await.unwrap();
    assert_eq!(kept.as_i64(), Some(0), "nothing kept after signing out");
    client.goto(&format!("{}/app/#/library", app.base)).await.unwrap();
    heading(&client, "Sign in to the dashboard").await;
    client.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restricted_user_shares_only_where_they_manage_and_a_viewer_never() {
    let app = spawn_app().await;
    let Chromium { client, downloads: _d, _driver, _profile } = chromium_with_env(&[("TZ", ZONE)]).await;
    size(&client, MOBILE).await;
    let campaigns = app.folder_id(&["Campaigns"]).await;
    let spring = app.folder_id(&["Campaigns", "Spring 2026"]).await;

    // By keyboard alone: each page puts the focus on its heading; from there
    // past the first user to the second.
    client.goto(&format!("{}/app/", app.base)).await.unwrap();
    heading(&client, "Sign in to the dashboard").await;
    count(&client, "button.user", 3).await;
    assert_eq!(client.active_element().await.unwrap().text().await.unwrap(), "Sign in to the dashboard");
    for _ in 0..2 {
        press(&client, Key::Tab).await;
    }
    let focused = client.active_element().await.unwrap().attr("data-role").await.unwrap();
    assert_eq!(focused.as_deref(), Some("restricted"), "Tab reaches the users in order");
    press(&client, Key::Enter).await;
    heading(&client, "Shared with you").await;
    let nav = text_of(&client, "#nav").await;
    assert!(!nav.contains("Public links") && !nav.contains("Audit") && !nav.contains("Downloads"), "{nav}");
    count(&client, &format!("button.share[data-share='{spring}']"), 1).await;
    page_ok(&client, "20-restricted-shared-with-you").await;

    // Inside the granted folder: Share on it and on what is under it.
    client.find(Locator::LinkText("Spring 2026")).await.unwrap().click().await.unwrap();
    heading(&client, "Spring 2026").await;
    count(&client, ".grid .file button.share", 3).await;
    page_ok(&client, "21-restricted-folder").await;
    click(&client, &format!(".title-row button.share[data-share='{spring}']")).await;
    click(&client, "#link-form button[type=submit]").await;
    count(&client, "dialog[open] li.link[data-state=active]", 1).await;
    page_ok(&client, "22-restricted-links-dialog").await;
    press(&client, Key::Escape).await;
    count(&client, "dialog[open]", 0).await;

    // Nowhere else: the folder above is not there, nor the settings page.
    client.goto(&format!("{}/app/#/library/folder/{campaigns}", app.base)).await.unwrap();
    heading(&client, "Not available").await;
    client.goto(&format!("{}/app/#/settings/links", app.base)).await.unwrap();
    heading(&client, "Public links").await;
    assert!(text_of(&client, "main").await.contains("for administrators, developers and full-access users"));
    assert_eq!(client.find_all(Locator::Css("#all-links")).await.unwrap().len(), 0);
    click(&client, "#sign-out").await;

    // The viewer reads the whole library and shares nothing.
    sign_in_as(&client, &app.base, "view_only").await;
    heading(&client, "Library").await;
    assert!(!text_of(&client, "#nav").await.contains("Public links"));
    count(&client, "button.share", 0).await;
    client.find(Locator::LinkText("Campaigns")).await.unwrap().click().await.unwrap();
    heading(&client, "Campaigns").await;
    client.find(Locator::LinkText("Spring 2026")).await.unwrap().click().await.unwrap();
    heading(&client, "Spring 2026").await;
    count(&client, ".grid .file", 3).await;
    count(&client, "button.share", 0).await;
    page_ok(&client, "23-viewer-folder").await;
    size(&client, DESKTOP).await;
    page_ok(&client, "24-viewer-folder-desktop").await;
    client.close().await.unwrap();
}

/// A zone without summer time, so that a delivery's time can be checked in
/// it whatever the date.
const FIXED_ZONE: (&str, i64) = ("Asia/Tokyo", 9 * 60);

/// Sets a text field as a person types it, replacing what it held.
async fn type_into(client: &Client, css: &str, text: &str) {
    let input = client.wait().for_element(Locator::Css(css)).await.unwrap();
    input.clear().await.unwrap();
    input.send_keys(text).await.unwrap();
}

/// Clicks `refresh` until `css` is on the page (a delivery the worker makes in the background).
async fn refreshed_until(client: &Client, refresh: &str, css: &str) {
    for _ in 0..100 {
        if !client.find_all(Locator::Css(css)).await.unwrap().is_empty() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        click(client, refresh).await;
    }
    panic!("{css} never appeared: {}", text_of(client, "main").await);
}

/// The id of the focused element.
async fn focused_id(client: &Client) -> Option<String> {
    client.active_element().await.unwrap().attr("id").await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_administrator_brands_the_account_and_manages_its_webhooks_and_no_one_else_sees_them() {
    use reqwest::{Method, StatusCode};
    let app = spawn_app().await;
    let Chromium { client, downloads: _d, _driver, _profile } = chromium_with_env(&[("TZ", FIXED_ZONE.0)]).await;
    let (receiver_url, received, _server) = publinks_e2e::webhook_receiver(0).await;
    let admin = app.admin();

    sign_in_as(&client, &app.base, "admin").await;
    heading(&client, "Library").await;
    click(&client, "#nav a[href='#/settings/branding']").await;
    heading(&client, "Branding").await;
    assert_eq!(text_of(&client, "#account-name").await, publinks_local::demo::ACCOUNT_NAME);
    assert!(text_of(&client, "#logo-current").await.contains("No logo"));
    page_ok(&client, "30-branding").await;

    // A colour too light for white text: the API's refusal, beside the field.
    let said = app.send(
        Method::PATCH,
        "/api/account/branding",
        &admin,
        serde_json::json!({"accent_color": "#ffd000"}),
        StatusCode::UNPROCESSABLE_ENTITY,
    );
    let said = said.await["error"]["message"].as_str().unwrap().to_string();
    type_into(&client, "#accent_color", "#ffd000").await;
    click(&client, "#accent-form button[type=submit]").await;
    let refusal = text_of(&client, "#accent-form .field:has(#accent_color) .field-error").await;
    assert_eq!(refusal, said, "the API's words");
    assert!(refusal.contains("4.5:1"), "{refusal}");
    assert_eq!(
        client.find(Locator::Id("accent_color")).await.unwrap().attr("aria-invalid").await.unwrap().as_deref(),
        Some("true")
    );
    assert_eq!(focused_id(&client).await.as_deref(), Some("accent_color"), "the focus goes to the field at fault");
    page_ok(&client, "31-branding-refused-colour").await;

    // A dark one is saved, and the sample shows it.
    type_into(&client, "#accent_color", "#7A1F5C").await;
    click(&client, "#accent-form button[type=submit]").await;
    assert_eq!(text_of(&client, "#accent-form .saved").await, "Accent colour saved.");
    count(&client, "#accent-form .field-error", 0).await;
    count(&client, "#accent-sample[data-accent='#7a1f5c']", 1).await;
    assert_eq!(value_of(&client, "#accent_color").await, "#7a1f5c", "as the API keeps it");
    assert_eq!(value_of(&client, "#accent_picker").await, "#7a1f5c", "the picker follows the hex");
    let branding = app.get("/api/account/branding", &admin, StatusCode::OK).await;
    assert_eq!(branding["accent_color"], "#7a1f5c");

    // A logo, uploaded from a file, previewed as it is stored.
    let dir = tempfile::tempdir().unwrap();
    let logo = dir.path().join("logo.png");
    std::fs::write(&logo, publinks_media::demo_png(96, 40, 2)).unwrap();
    client.find(Locator::Id("logo")).await.unwrap().send_keys(&logo.display().to_string()).await.unwrap();
    click(&client, "#logo-form button[type=submit]").await;
    assert_eq!(text_of(&client, "#logo-form .saved").await, "Logo uploaded.");
    let version = app.get("/api/account/branding", &admin, StatusCode::OK).await["logo"]["version"].clone();
    count(&client, &format!("#logo-current[data-version='{}'] img", version.as_str().unwrap()), 1).await;
    let shown = "const img = document.querySelector('#logo-current img'); \
        return img.complete ? [img.naturalWidth, img.naturalHeight] : null;";
    let mut size_shown = serde_json::Value::Null;
    for _ in 0..50 {
        size_shown = client.execute(shown, vec![]).await.unwrap();
        if size_shown.is_array() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(size_shown, serde_json::json!([96, 40]), "the stored logo is shown");
    assert!(text_of(&client, "#logo-current").await.contains("PNG"));
    // The logo as the watermark of preview-only links.
    click(&client, "#watermark_logo").await;
    click(&client, "#watermark-form button[type=submit]").await;
    assert_eq!(text_of(&client, "#watermark-form .saved").await, "The logo is the watermark.");
    assert_eq!(app.get("/api/account/branding", &admin, StatusCode::OK).await["watermark_logo"], true);
    page_ok(&client, "32-branding-saved").await;
    size(&client, MOBILE).await;
    page_ok(&client, "33-mobile-branding").await;
    size(&client, DESKTOP).await;

    // Webhooks: a URL the API refuses, beside the field, in its words.
    click(&client, "#nav a[href='#/settings/webhooks']").await;
    heading(&client, "Webhooks").await;
    assert!(text_of(&client, "#webhooks").await.contains("No webhooks yet"));
    assert!(text_of(&client, "main").await.contains(FIXED_ZONE.0), "the page names the time zone");
    let said = app.send(
        Method::POST,
        "/api/account/webhooks",
        &admin,
        serde_json::json!({"url": "ftp://example.com/hook", "events": ["link.first_opened"]}),
        StatusCode::UNPROCESSABLE_ENTITY,
    );
    let said = said.await["error"]["message"].as_str().unwrap().to_string();
    type_into(&client, "#url-new", "ftp://example.com/hook").await;
    click(&client, "#webhook-form-new button[type=submit]").await;
    assert_eq!(text_of(&client, "#webhook-form-new .field:has(#url-new) .field-error").await, said);
    page_ok(&client, "34-webhooks-refused-url").await;

    // Created: the secret shown this once, reached and copied by keyboard.
    type_into(&client, "#url-new", &receiver_url).await;
    click(&client, "#webhook-form-new button[type=submit]").await;
    let secret = value_of(&client, "#secret-panel #webhook-secret").await;
    assert!(secret.starts_with("whsec_"), "{secret}");
    assert!(text_of(&client, "#secret-panel").await.contains("you will not see it again"));
    assert_eq!(focused_id(&client).await.as_deref(), Some("secret-title"), "the focus goes to the secret");
    press(&client, Key::Tab).await;
    assert_eq!(focused_id(&client).await.as_deref(), Some("webhook-secret"));
    press(&client, Key::Tab).await;
    assert_eq!(focused_id(&client).await.as_deref(), Some("copy-secret"));
    press(&client, Key::Enter).await;
    assert_eq!(text_once_it_says(&client, "#copy-secret", "Copied").await, "Copied");
    let hooks = app.get("/api/account/webhooks", &admin, StatusCode::OK).await;
    assert_eq!(hooks.as_array().unwrap().len(), 1);
    assert_eq!((hooks[0]["url"].as_str(), hooks[0]["events"].as_array().unwrap().len()), (Some(&*receiver_url), 5));
    let id = hooks[0]["id"].as_str().unwrap().to_string();
    page_ok(&client, "35-webhooks-secret").await;
    click(&client, "#secret-done").await;
    count(&client, "#secret-panel", 0).await;
    assert!(!text_of(&client, "main").await.contains(&secret), "not shown again");

    // A visitor opens a link: the delivery, with its answer and time in the user's zone.
    let spring = app.folder_id(&["Campaigns", "Spring 2026"]).await;
    let url = super::share(&app, serde_json::json!({"target": {"kind": "folder", "id": spring}})).await;
    assert_eq!(app.http.get(&url).send().await.unwrap().status(), StatusCode::OK);
    let card = format!("li.webhook[data-webhook='{id}']");
    let row = format!("{card} tr[data-event='link.first_opened'][data-state=delivered]");
    refreshed_until(&client, &format!("{card} button.refresh"), &row).await;
    assert_eq!(received.lock().unwrap().len(), 1, "delivered once");
    let text = text_of(&client, &row).await;
    let delivery = app.get(&format!("/api/account/webhooks/{id}/deliveries"), &admin, StatusCode::OK).await;
    let at: chrono::DateTime<chrono::Utc> = delivery[0]["last_attempt_at"].as_str().unwrap().parse().unwrap();
    let local = at + chrono::Duration::minutes(FIXED_ZONE.1);
    let (h12, h24) = (local.format("%-I:%M").to_string(), local.format("%H:%M").to_string());
    assert!(text.contains("HTTP 200") && (text.contains(&h12) || text.contains(&h24)), "{h24} in {text}");
    page_ok(&client, "36-webhooks-delivery").await;
    size(&client, MOBILE).await;
    page_ok(&client, "37-mobile-webhooks").await;
    size(&client, DESKTOP).await;

    // Edit: one event fewer.
    click(&client, &format!("{card} button.edit")).await;
    click(&client, &format!("#events-{id}-under_attack")).await;
    click(&client, &format!("#webhook-form-{id} button[type=submit]")).await;
    count(&client, &format!("{card} .marks li"), 4).await;
    let hook = app.get(&format!("/api/account/webhooks/{id}"), &admin, StatusCode::OK).await;
    assert!(!hook["events"].to_string().contains("under_attack") && hook["events"].as_array().unwrap().len() == 4);

    // Rotate, after a confirmation: a new secret, once.
    click(&client, &format!("{card} button.rotate")).await;
    client.wait().for_element(Locator::Css("dialog.confirm[open]")).await.unwrap();
    click(&client, "dialog.confirm button[value=yes]").await;
    let rotated = value_of(&client, "#secret-panel #webhook-secret").await;
    assert!(rotated.starts_with("whsec_") && rotated != secret, "a new secret");
    assert!(text_of(&client, "#secret-panel h2").await.starts_with("Rotated"));

    // Delete, after a confirmation.
    click(&client, &format!("{card} button.delete")).await;
    client.wait().for_element(Locator::Css("dialog.confirm[open]")).await.unwrap();
    page_ok(&client, "38-webhooks-confirm-delete").await;
    click(&client, "dialog.confirm button[value=yes]").await;
    count(&client, "li.webhook", 0).await;
    assert!(text_of(&client, "#webhooks").await.contains("No webhooks yet"));
    assert_eq!(app.get("/api/account/webhooks", &admin, StatusCode::OK).await, serde_json::json!([]));

    // The cap of 10, beside the URL field in the API's words.
    let body = serde_json::json!({"url": receiver_url, "events": ["link.expires_soon"]});
    for _ in 0..10 {
        app.send(Method::POST, "/api/account/webhooks", &admin, body.clone(), StatusCode::CREATED).await;
    }
    client.refresh().await.unwrap();
    heading(&client, "Webhooks").await;
    count(&client, "li.webhook", 10).await;
    type_into(&client, "#url-new", &receiver_url).await;
    click(&client, "#webhook-form-new button[type=submit]").await;
    let refusal = text_of(&client, "#webhook-form-new .field:has(#url-new) .field-error").await;
    assert!(refusal.contains("at most 10 webhooks"), "{refusal}");

    // Everyone else: no entries, and the pages refuse politely.
    for role in ["restricted", "view_only"] {
        click(&client, "#sign-out").await;
        sign_in_as(&client, &app.base, role).await;
        client.wait().for_element(Locator::Css("#nav a")).await.unwrap();
        let nav = text_of(&client, "#nav").await;
        assert!(!nav.contains("Branding") && !nav.contains("Webhooks"), "{role}: {nav}");
        for (hash, title, says) in [
            ("#/settings/branding", "Branding", "set by its administrators"),
            ("#/settings/webhooks", "Webhooks", "managed by its administrators"),
        ] {
            client.goto(&format!("{}/app/{hash}", app.base)).await.unwrap();
            heading(&client, title).await;
            assert!(text_of(&client, "main").await.contains(says), "{role} on {hash}");
            count(&client, "main form", 0).await;
        }
    }
    page_ok(&client, "39-viewer-webhooks-refused").await;
    client.close().await.unwrap();
}
