//! The visitor's page in a real headless Chromium (Debian's `chromium` and
//! `chromium-driver`, installed by `scripts/test.sh`), driven over WebDriver:
//! a wrong then the right password, a subfolder, a file's details, a real
//! download whose bytes are compared, and every refusal state. Screenshots of
//! each state are kept in `target/screenshots/` as artefacts.

mod dashboard;
mod oidc;
mod shares;
mod viewer;

use fantoccini::{Client, ClientBuilder, Locator};
use publinks_e2e::{TestApp, spawn_app};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A chromedriver process on a free port, stopped on drop.
struct Driver {
    child: Child,
    url: String,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A chromedriver whose browsers run with `env` added (e.g. a time zone).
async fn start_driver(env: &[(&str, &str)]) -> Driver {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let child = Command::new("chromedriver")
        .arg(format!("--port={port}"))
        .envs(env.iter().copied())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromedriver is not installed: run scripts/test.sh, which installs chromium and chromium-driver");
    let driver = Driver { child, url: format!("http://127.0.0.1:{port}") };
    for _ in 0..100 {
        if reqwest::get(format!("{}/status", driver.url)).await.is_ok() {
            return driver;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("chromedriver did not start");
}

async fn browser(driver: &Driver, downloads: &Path, profile: &Path) -> Client {
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": "/usr/bin/chromium",
            "args": [
                "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--disable-dev-shm-usage", "--window-size=1280,900",
                format!("--user-data-dir={}", profile.display()),
            ],
            "prefs": {
                "download.default_directory": downloads.display().to_string(),
                "download.prompt_for_download": false,
                "safebrowsing.enabled": false,
            },
        }),
    );
    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(&driver.url)
        .await
        .expect("a Chromium session starts")
}

/// A Chromium session with its own downloads directory and profile, and the
/// driver and directories it needs for as long as it runs.
struct Chromium {
    client: Client,
    downloads: tempfile::TempDir,
    _driver: Driver,
    _profile: tempfile::TempDir,
}

async fn chromium() -> Chromium {
    chromium_with_env(&[]).await
}

/// [`chromium`] with `env` added to the browser's environment.
async fn chromium_with_env(env: &[(&str, &str)]) -> Chromium {
    let driver = start_driver(env).await;
    let downloads = tempfile::tempdir().unwrap();
    let profile = tempfile::tempdir().unwrap();
    let client = browser(&driver, downloads.path(), profile.path()).await;
    Chromium { client, downloads, _driver: driver, _profile: profile }
}

fn screenshots() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

async fn snap(client: &Client, name: &str) {
    let png = client.screenshot().await.unwrap();
    std::fs::write(screenshots().join(format!("{name}.png")), png).unwrap();
}

async fn share(app: &TestApp, body: Value) -> String {
    let link = app.send(Method::POST, "/api/links", &app.admin(), body, StatusCode::CREATED).await;
    link["url"].as_str().unwrap().to_string()
}

/// Where the browser saves `name`, once it has (Chromium writes a temporary file first).
async fn saved_download(dir: &Path, name: &str) -> PathBuf {
    let saved = dir.join(name);
    for _ in 0..100 {
        if saved.exists() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    saved
}

/// The text of the element `css` finds. A page that refreshes itself (the
/// archive page, while a ZIP is made) can be between two documents when
/// asked, or replace the element between the find and the read: then it is
/// looked for again, for up to five seconds.
async fn text_of(client: &Client, css: &str) -> String {
    use fantoccini::error::{CmdError, ErrorStatus};
    let passing = |e: &CmdError| {
        matches!(e, CmdError::Standard(w)
            if w.error == ErrorStatus::StaleElementReference || w.error == ErrorStatus::NoSuchElement)
    };
    let mut last = None;
    for _ in 0..50 {
        let read = match client.find(Locator::Css(css)).await {
            Ok(element) => element.text().await,
            Err(e) => Err(e),
        };
        match read {
            Ok(text) => return text,
            Err(e) if passing(&e) => {
                last = Some(e);
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("reading {css}: {e}"),
        }
    }
    panic!("{css} not found or kept being replaced: {last:?}")
}

/// The text of the element `css` finds once it contains `needle`, or as it
/// is after five seconds: for a click that loads the same page again with a
/// notice, where the page read at once may still be the one clicked on.
async fn text_once_it_says(client: &Client, css: &str, needle: &str) -> String {
    let mut text = text_of(client, css).await;
    for _ in 0..50 {
        if text.contains(needle) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        text = text_of(client, css).await;
    }
    text
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_visitor_unlocks_browses_reads_details_and_downloads() {
    let app = spawn_app().await;
    let Chromium { client, downloads, _driver, _profile } = chromium().await;
    let campaigns = app.folder_id(&["Campaigns"]).await;
    let url = share(&app, json!({"target": {"kind": "folder", "id": campaigns}, "password": "let me in!"})).await;

    client.goto(&url).await.unwrap();
    assert!(text_of(&client, "h1").await.contains("protected"));
    let label = client.find(Locator::Css("label[for=password]")).await.unwrap().text().await.unwrap();
    assert_eq!(label, "Password", "the field is labelled");
    snap(&client, "01-password").await;

    let field = client.find(Locator::Id("password")).await.unwrap();
    field.send_keys("not the password").await.unwrap();
    client.find(Locator::Css("button[type=submit]")).await.unwrap().click().await.unwrap();
    let alert = client.wait().for_element(Locator::Css("[role=alert]")).await.unwrap();
    assert!(alert.text().await.unwrap().contains("not correct"));
    snap(&client, "02-wrong-password").await;

    let field = client.find(Locator::Id("password")).await.unwrap();
    field.send_keys("let me in!\n").await.unwrap();
    client.wait().for_element(Locator::Css(".folders")).await.unwrap();
    assert_eq!(text_of(&client, "h1").await, "Campaigns");
    snap(&client, "03-folder").await;

    client.find(Locator::LinkText("Spring 2026")).await.unwrap().click().await.unwrap();
    client.wait().for_element(Locator::Css(".grid")).await.unwrap();
    assert_eq!(text_of(&client, "h1").await, "Spring 2026");
    let crumbs = text_of(&client, ".crumbs").await;
    assert!(crumbs.contains("Campaigns"), "{crumbs}");
    let alts: Vec<String> = {
        let mut out = Vec::new();
        for img in client.find_all(Locator::Css(".grid img")).await.unwrap() {
            out.push(img.attr("alt").await.unwrap().unwrap_or_default());
        }
        out
    };
    assert!(!alts.is_empty() && alts.iter().all(|a| a.starts_with("Preview of ")), "{alts:?}");
    // The renditions are made in the background after the demo's uploads:
    // until then the page shows the 480 px placeholder; reloaded until every
    // card shows its grid rendition (400 px at most), through the cookie.
    let mut loaded = false;
    for _ in 0..100 {
        let script = "return Array.from(document.querySelectorAll('.grid img')).every(i => i.complete \
            && i.naturalWidth > 0 && Math.max(i.naturalWidth, i.naturalHeight) <= 400);";
        loaded = client.execute(script, vec![]).await.unwrap().as_bool().unwrap();
        if loaded {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        client.refresh().await.unwrap();
        client.wait().for_element(Locator::Css(".grid")).await.unwrap();
    }
    assert!(loaded, "every rendition loads through the session cookie");
    snap(&client, "04-subfolder").await;

    client.find(Locator::LinkText("dusk.jpg")).await.unwrap().click().await.unwrap();
    client.wait().for_element(Locator::Id("download")).await.unwrap();
    let details = text_of(&client, ".panel").await;
    for expected in ["dusk.jpg", "JPEG image", "1200 × 800 px", "Camera", "PL-1 Mark II"] {
        assert!(details.contains(expected), "{expected} missing from {details}");
    }
    snap(&client, "05-details").await;

    // Previous/next through the folder, with the position.
    let position = text_of(&client, "#position").await;
    let (at, total) = position.split_once(" of ").unwrap();
    let (at, total): (usize, usize) = (at.parse().unwrap(), total.parse().unwrap());
    assert!(total >= 2 && at >= 1 && at <= total, "{position}");
    let (step, moved) = if at < total { ("next", at + 1) } else { ("previous", at - 1) };
    client.find(Locator::Id(step)).await.unwrap().click().await.unwrap();
    client.wait().for_element(Locator::Id("download")).await.unwrap();
    assert_eq!(text_of(&client, "#position").await, format!("{moved} of {total}"));
    assert_ne!(text_of(&client, "h1").await, "dusk.jpg");
    snap(&client, "05b-viewer-stepped").await;
    client.back().await.unwrap();
    client.wait().for_element(Locator::Id("download")).await.unwrap();
    assert_eq!(text_of(&client, "h1").await, "dusk.jpg");

    client.find(Locator::Id("download")).await.unwrap().click().await.unwrap();
    let saved = saved_download(downloads.path(), "dusk.jpg").await;
    let got = std::fs::read(&saved).expect("the browser saved the download under its name");
    let spring = app.folder_id(&["Campaigns", "Spring 2026"]).await;
    let dusk = app.file_id(&spring, "dusk.jpg").await;
    let res = app.request(Method::GET, &format!("/api/files/{dusk}/download"), &app.admin()).send().await.unwrap();
    let original =
        app.http.get(res.headers()["location"].to_str().unwrap()).send().await.unwrap().bytes().await.unwrap();
    assert_eq!(got, original.to_vec(), "the downloaded bytes are the file's");

    client.goto(&format!("{url}/downloads")).await.unwrap();
    assert!(text_of(&client, "table").await.contains("dusk.jpg"));
    snap(&client, "06-downloads").await;

    // Keyboard: the first file card link is reachable by tabbing.
    client.goto(&format!("{url}/folders/{spring}")).await.unwrap();
    let focusable: i64 = client
        .execute("return document.querySelectorAll('a[href], button, input').length;", vec![])
        .await
        .unwrap()
        .as_i64()
        .unwrap();
    assert!(focusable > 3);
    client.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_are_clear_pages() {
    let app = spawn_app().await;
    let Chromium { client, downloads: _downloads, _driver, _profile } = chromium().await;
    let spring = app.folder_id(&["Campaigns", "Spring 2026"]).await;

    client.goto(&format!("{}/s/no-such-link-at-all", app.base)).await.unwrap();
    assert_eq!(text_of(&client, "h1").await, "This link is not available");
    snap(&client, "10-not-found").await;

    let soon = (chrono::Utc::now() + chrono::Duration::seconds(1)).to_rfc3339();
    let expired = share(&app, json!({"target": {"kind": "folder", "id": spring}, "valid_until": soon})).await;
    tokio::time::sleep(Duration::from_millis(1200)).await;
    client.goto(&expired).await.unwrap();
    assert_eq!(text_of(&client, "h1").await, "This link is not available");
    snap(&client, "11-expired").await;

    let later = (chrono::Utc::now() + chrono::Duration::days(3)).to_rfc3339();
    let scheduled = share(&app, json!({"target": {"kind": "folder", "id": spring}, "valid_from": later})).await;
    client.goto(&scheduled).await.unwrap();
    assert_eq!(text_of(&client, "h1").await, "Not open yet");
    assert!(text_of(&client, "main").await.contains("opens on"));
    snap(&client, "12-scheduled").await;

    let protected = share(&app, json!({"target": {"kind": "folder", "id": spring}, "password": "correct horse"})).await;
    // Five free guesses, then waits of 1, 2, 4... seconds: however slow the
    // machine, a guess inside a wait comes within a few more.
    let mut last = String::new();
    for _ in 0..12 {
        client.goto(&protected).await.unwrap();
        client.find(Locator::Id("password")).await.unwrap().send_keys("wrong guess\n").await.unwrap();
        last = client.wait().for_element(Locator::Css("[role=alert]")).await.unwrap().text().await.unwrap();
        if last.contains("Too many attempts") {
            break;
        }
        assert!(last.contains("not correct"), "{last}");
    }
    assert!(last.contains("Too many attempts"), "{last}");
    snap(&client, "13-throttled").await;
    client.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_password_page_returns_to_a_deep_link_and_the_visitor_pages_pass_axe_at_both_widths() {
    use dashboard::{DESKTOP, MOBILE, no_axe_violations};
    let app = spawn_app().await;
    let Chromium { client, downloads: _downloads, _driver, _profile } = chromium().await;
    let spring = app.folder_id(&["Campaigns", "Spring 2026"]).await;
    let dusk = app.file_id(&spring, "dusk.jpg").await;
    for (w, h) in [DESKTOP, MOBILE] {
        client.set_window_size(w, h).await.unwrap();
        let body = json!({"target": {"kind": "folder", "id": spring}, "password": "correct horse"});
        let url = share(&app, body).await;
        client.goto(&format!("{url}/files/{dusk}")).await.unwrap();
        assert!(text_of(&client, "h1").await.contains("protected"));
        no_axe_violations(&client, &format!("the password page at {w} px")).await;
        client.find(Locator::Id("password")).await.unwrap().send_keys("correct horse\n").await.unwrap();
        client.wait().for_element(Locator::Id("download")).await.unwrap();
        assert_eq!(text_of(&client, "h1").await, "dusk.jpg", "the deep link survives the password");
        assert!(text_of(&client, "footer").await.contains("Shared by"));
        no_axe_violations(&client, &format!("the file page at {w} px")).await;
        client.goto(&url).await.unwrap();
        client.wait().for_element(Locator::Css(".grid")).await.unwrap();
        no_axe_violations(&client, &format!("the folder page at {w} px")).await;
    }
    client.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_other_visitor_page_kinds_pass_axe_at_both_widths() {
    use dashboard::{DESKTOP, MOBILE, no_axe_violations};
    let app = spawn_app().await;
    let Chromium { client, downloads: _downloads, _driver, _profile } = chromium().await;
    let spring = app.folder_id(&["Campaigns", "Spring 2026"]).await;
    let url = share(&app, json!({"target": {"kind": "folder", "id": spring}})).await;
    let preview_only = share(&app, json!({"target": {"kind": "folder", "id": spring}, "preview_only": true})).await;
    let unknown = format!("{}/s/{}", app.base, "A".repeat(43));
    let home = url.strip_prefix(&app.base).unwrap().to_string();
    for (w, h) in [DESKTOP, MOBILE] {
        client.set_window_size(w, h).await.unwrap();
        client.goto(&url).await.unwrap();
        client.find(Locator::Css("button[value=all]")).await.unwrap().click().await.unwrap();
        archive_status(&client, "ready").await;
        no_axe_violations(&client, &format!("the archive page at {w} px")).await;
        client.goto(&format!("{url}/downloads")).await.unwrap();
        assert!(text_of(&client, "main").await.contains("ZIP"), "the archive is listed");
        no_axe_violations(&client, &format!("the downloads page at {w} px")).await;
        client.goto(&format!("{url}/files/not-a-file")).await.unwrap();
        client.find(Locator::Css(&format!("main a[href='{home}']"))).await.expect("a way back to the share");
        no_axe_violations(&client, &format!("a not-found page inside a share at {w} px")).await;
        client.goto(&format!("{url}?sort=colour")).await.unwrap();
        assert!(text_of(&client, "main").await.contains("sort"), "the page names the parameter");
        no_axe_violations(&client, &format!("a bad query's page at {w} px")).await;
        client.goto(&unknown).await.unwrap();
        no_axe_violations(&client, &format!("an unknown link's page at {w} px")).await;
        client.goto(&preview_only).await.unwrap();
        client.wait().for_element(Locator::Css(".grid")).await.unwrap();
        assert!(client.find(Locator::Id("zip")).await.is_err(), "a preview-only link offers no ZIP");
        no_axe_violations(&client, &format!("a preview-only folder page at {w} px")).await;
        snap(&client, &format!("30-preview-only-{w}")).await;
    }
    client.close().await.unwrap();
}

/// Waits until the archive page says `status` (it refreshes itself while the ZIP is prepared).
async fn archive_status(client: &Client, status: &str) {
    for _ in 0..200 {
        if let Ok(panel) = client.find(Locator::Id("archive")).await
            && panel.attr("data-status").await.ok().flatten().as_deref() == Some(status)
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the archive page never said {status}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_visitor_picks_files_and_gets_them_as_one_zip() {
    let app = spawn_app().await;
    let Chromium { client, downloads, _driver, _profile } = chromium().await;
    let spring = app.folder_id(&["Campaigns", "Spring 2026"]).await;
    let url = share(&app, json!({"target": {"kind": "folder", "id": spring}})).await;

    client.goto(&url).await.unwrap();
    client.wait().for_element(Locator::Css(".grid")).await.unwrap();
    let boxes = client.find_all(Locator::Css("input[type=checkbox][name=file_id]")).await.unwrap();
    assert_eq!(boxes.len(), 3, "one per file");
    boxes[0].click().await.unwrap();
    boxes[2].click().await.unwrap();
    snap(&client, "07-selection").await;
    client.find(Locator::Css("button[value=selected]")).await.unwrap().click().await.unwrap();
    client.wait().for_element(Locator::Id("archive")).await.unwrap();
    snap(&client, "08-archive-preparing-or-ready").await;
    archive_status(&client, "ready").await;
    let summary = text_of(&client, "#archive").await;
    assert!(summary.contains("2 files"), "{summary}");
    snap(&client, "09-archive-ready").await;

    let selection_page = client.current_url().await.unwrap();
    client.find(Locator::Id("download")).await.unwrap().click().await.unwrap();
    let saved = saved_download(downloads.path(), "Spring 2026.zip").await;
    let names: Vec<String> = publinks_archive::readers::python_digests(&saved)
        .expect("the browser saved a ZIP every reader opens")
        .into_keys()
        .collect();
    assert_eq!(names, ["dusk.jpg", "sunrise.jpg"], "the two ticked files, by name");
    std::fs::remove_file(&saved).unwrap();

    // A new version of a ticked file: the ZIP is out of date, and the page offers a new one.
    let dusk = app.file_id(&spring, "dusk.jpg").await;
    let new_dusk = publinks_media::demo_jpeg_with_exif(40, 30, 9, "Later camera");
    app.upload_version(&app.admin(), &dusk, "image/jpeg", &new_dusk).await;
    client.goto(selection_page.as_str()).await.unwrap();
    client.find(Locator::Id("download")).await.unwrap().click().await.unwrap();
    client.wait().for_element(Locator::Id("outdated")).await.unwrap();
    let message = text_of(&client, "#outdated").await;
    assert!(message.contains("out of date") && message.contains("1 of its files changed"), "{message}");
    snap(&client, "09b-archive-out-of-date").await;
    client.find(Locator::Css("#remake button")).await.unwrap().click().await.unwrap();
    archive_status(&client, "ready").await;
    client.find(Locator::Id("download")).await.unwrap().click().await.unwrap();
    let saved = saved_download(downloads.path(), "Spring 2026.zip").await;
    let remade = publinks_archive::readers::python_digests(&saved).expect("a ZIP every reader opens");
    assert_eq!(remade.len(), 2, "the same two files");
    assert_eq!(remade["dusk.jpg"], publinks_archive::readers::digest(&new_dusk), "at their current version");

    // Everything, then the visitor's downloads list shows all three archives.
    client.goto(&url).await.unwrap();
    client.find(Locator::Css("button[value=all]")).await.unwrap().click().await.unwrap();
    archive_status(&client, "ready").await;
    assert!(text_of(&client, "#archive").await.contains("4 files"));
    client.goto(&format!("{url}/downloads")).await.unwrap();
    let rows = client.find_all(Locator::Css("#archives tbody tr")).await.unwrap();
    assert_eq!(rows.len(), 3);
    assert!(text_of(&client, "#archives").await.contains("Ready"));
    snap(&client, "10-downloads-with-archives").await;

    // Nothing ticked: the form says so instead of making an empty archive.
    client.goto(&url).await.unwrap();
    client.find(Locator::Css("button[value=selected]")).await.unwrap().click().await.unwrap();
    let message = text_once_it_says(&client, "main", "Select at least one file").await;
    assert!(message.contains("Select at least one file"), "{message}");
    client.close().await.unwrap();
}

/// The local server as `publinks-local` runs it (demo share links made), on
/// a loopback port of its own; stopped when the returned task is dropped.
async fn local_server_with_demo_links() -> (String, tempfile::TempDir, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let dir = tempfile::tempdir().unwrap();
    let config = publinks_local::LocalConfig {
        data_dir: dir.path().to_path_buf(),
        base_url: base.clone(),
        seed_demo: true,
        share_demo: true,
        clock: publinks_domain::clock::system(),
        webhook_policy: publinks_domain::webhooks::AddressPolicy::AllowLoopback,
    };
    let app = publinks_local::LocalApp::build(&config).await.expect("the local server builds");
    let router = app.router.clone();
    let server = tokio::spawn(async move {
        let service = router.into_make_service_with_connect_info::<std::net::SocketAddr>();
        axum::serve(listener, service).await.unwrap();
    });
    (base, dir, server)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_address_opens_a_page_that_leads_to_the_reference_and_the_demo() {
    let (base, _dir, server) = local_server_with_demo_links().await;
    let Chromium { client, downloads: _downloads, _driver, _profile } = chromium().await;
    client.goto(&base).await.unwrap();
    assert_eq!(text_of(&client, "h1").await, "publinks is running");
    let violations =
        "return performance.getEntriesByType('resource').filter(r => !r.name.startsWith(location.origin)).length;";
    assert_eq!(client.execute(violations, vec![]).await.unwrap().as_i64(), Some(0), "nothing fetched from elsewhere");
    snap(&client, "00-home").await;

    client.find(Locator::LinkText("API reference")).await.unwrap().click().await.unwrap();
    client.wait().for_element(Locator::Css(".swagger-ui .info")).await.expect("the reference renders");
    let title = text_of(&client, ".swagger-ui .info .title").await;
    assert!(title.contains("publinks"), "{title}");

    client.goto(&base).await.unwrap();
    client.find(Locator::LinkText("folder \"Spring 2026\"")).await.unwrap().click().await.unwrap();
    client.wait().for_element(Locator::Css(".grid")).await.unwrap();
    assert_eq!(text_of(&client, "h1").await, "Spring 2026", "the demo's folder link opens as a visitor sees it");
    client.goto(&base).await.unwrap();
    let home = text_of(&client, "main").await;
    assert!(home.contains("Homepage picks") && home.contains("open sesame"), "{home}");
    client.close().await.unwrap();
    server.abort();
}
