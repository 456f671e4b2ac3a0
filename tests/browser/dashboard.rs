//! The owner's dashboard (`/app/`) in headless Chromium: the whole story of
//! sharing a folder as the administrator — with a visitor in a second
//! browser — and what a restricted and a view-only user see. Every page is
//! checked with axe-core (zero violations) at desktop and mobile widths, and
//! photographed into `target/screenshots/dashboard-*.png`.

use super::{Chromium, chromium_with_env, snap, text_of};
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
    assert_eq!(text_of(&client, "dialog[open] li.link .field.inline button").await, "Copied");
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
