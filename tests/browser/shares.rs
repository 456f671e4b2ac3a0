//! A visitor in a big shared folder, in headless Chromium: sorting, search,
//! numbered pages, the list view, and a selection made with select-all and
//! the count, by keyboard alone; axe-core finds nothing at desktop and
//! mobile widths, and each state is photographed into
//! `target/screenshots/shares-*.png`.

use super::dashboard::{DESKTOP, MOBILE, no_axe_violations};
use super::{Chromium, archive_status, chromium, share, snap, text_of};
use chrono::{Duration, TimeZone, Utc};
use fantoccini::key::Key;
use fantoccini::{Client, Locator};
use publinks_domain::model::Placement;
use publinks_e2e::{TestApp, spawn_app};
use serde_json::json;

/// A key pressed where the focus is.
async fn press(client: &Client, key: Key) {
    client.active_element().await.unwrap().send_keys(&key.to_string()).await.unwrap();
}

/// What the focused element is: its id, else its text.
async fn focused(client: &Client) -> String {
    let script = "const e = document.activeElement; return e.id || e.textContent.trim();";
    client.execute(script, vec![]).await.unwrap().as_str().unwrap_or_default().to_string()
}

/// The names on the file cards, in order.
async fn card_names(client: &Client) -> Vec<String> {
    let script = "return Array.from(document.querySelectorAll('.card .name')).map(a => a.textContent);";
    serde_json::from_value(client.execute(script, vec![]).await.unwrap()).unwrap()
}

/// Waits for the listing (after a navigation) and returns its card names.
async fn listing(client: &Client) -> Vec<String> {
    client.wait().for_element(Locator::Id("totals")).await.unwrap();
    card_names(client).await
}

/// The contrast of the focus ring around the focused element (or its card)
/// against what surrounds it: the page's and the card's backgrounds.
async fn focus_ring_contrast(client: &Client) -> f64 {
    let script = "
        const lum = c => { const [r, g, b] = c.match(/\\d+(\\.\\d+)?/g).slice(0, 3).map(v => {
            v = v / 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); });
            return 0.2126 * r + 0.7152 * g + 0.0722 * b; };
        const ratio = (a, b) => { const [x, y] = [lum(a), lum(b)].sort((p, q) => q - p); return (x + 0.05) / (y + 0.05); };
        let e = document.activeElement;
        let s = getComputedStyle(e);
        if (s.outlineStyle === 'none' || parseFloat(s.outlineWidth) === 0) { e = e.closest('.card'); s = getComputedStyle(e); }
        if (s.outlineStyle === 'none' || parseFloat(s.outlineWidth) < 2) return 0;
        const around = [getComputedStyle(document.body).backgroundColor, 'rgb(255, 255, 255)'];
        return Math.min(...around.map(b => ratio(s.outlineColor, b)));";
    client.execute(script, vec![]).await.unwrap().as_f64().unwrap()
}

/// Waits until the address holds `part` (a form sent, a link followed).
async fn until_url_has(client: &Client, part: &str) {
    for _ in 0..100 {
        if client.current_url().await.unwrap().as_str().contains(part) {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("the address never held {part}");
}

/// Checks, then photographs, the page at the window's width.
async fn page_ok(client: &Client, name: &str) {
    no_axe_violations(client, name).await;
    snap(client, &format!("shares-{name}")).await;
}

/// A folder of 61 text files (their bytes never stored: only listed) whose
/// name, size and date orders differ; returns its id.
async fn big_folder(app: &TestApp) -> String {
    let ada = app.library.actor(app.demo.admin.id).await.unwrap().unwrap();
    let folder = app.library.create_folder(&ada, None, "Big share").await.unwrap();
    let start = Utc.with_ymd_and_hms(2026, 3, 1, 9, 0, 0).unwrap();
    let catalog = app.library.catalog();
    for i in 0..61u64 {
        let name = format!("notes-{:02}.txt", (i * 7) % 61);
        let file = app.file_record(
            folder.id,
            &name,
            ("text/plain", ((i * 13) % 61 + 1) * 1000),
            start + Duration::hours(i as i64),
        );
        catalog.insert_file(&file, &Placement(vec![folder.id])).await.unwrap();
    }
    folder.id.to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_visitor_sorts_searches_pages_and_zips_a_selection_by_keyboard() {
    let app = spawn_app().await;
    let Chromium { client, downloads: _downloads, _driver, _profile } = chromium().await;
    let spring = app.folder_id(&["Campaigns", "Spring 2026"]).await;
    let url = share(&app, json!({"target": {"kind": "folder", "id": spring}})).await;
    client.set_window_size(DESKTOP.0, DESKTOP.1).await.unwrap();
    client.goto(&url).await.unwrap();
    assert_eq!(listing(&client).await, ["dusk.jpg", "palette.png", "sunrise.jpg"]);
    assert!(text_of(&client, "#totals").await.starts_with("1 folder, 3 files, "));

    // The skip link comes first and leads to the content.
    press(&client, Key::Tab).await;
    assert_eq!(focused(&client).await, "Skip to content");
    assert!(focus_ring_contrast(&client).await >= 3.0, "the focus ring stands out");
    press(&client, Key::Enter).await;
    assert!(client.current_url().await.unwrap().as_str().ends_with("#main"));

    // At most two tab stops per card: the name, and its checkbox.
    let stops = "return Math.max(...Array.from(document.querySelectorAll('.card')).map(c =>
        Array.from(c.querySelectorAll('a[href], button, input, select, textarea, [tabindex]'))
            .filter(e => e.tabIndex >= 0).length));";
    assert_eq!(client.execute(stops, vec![]).await.unwrap().as_i64(), Some(2));
    // Tabbing onto a card's name rings the whole card.
    client.execute("document.querySelector('.views a:last-child').focus();", vec![]).await.unwrap();
    for _ in 0..20 {
        press(&client, Key::Tab).await;
        if focused(&client).await == "dusk.jpg" {
            break;
        }
    }
    assert_eq!(focused(&client).await, "dusk.jpg", "the first card's name is reached by Tab");
    assert!(focus_ring_contrast(&client).await >= 3.0, "the card's focus ring stands out");
    press(&client, Key::Tab).await;
    let label: String = client
        .execute("return document.activeElement.closest('label').textContent.trim();", vec![])
        .await
        .unwrap()
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(label, "Select dusk.jpg", "then its checkbox, named after the file");

    // Select by keyboard: one box, then all, with the count and the highlight.
    press(&client, Key::Space).await;
    assert_eq!(text_of(&client, "#picked").await, "1 selected");
    let highlighted = "return document.querySelectorAll('.card.picked').length;";
    assert_eq!(client.execute(highlighted, vec![]).await.unwrap().as_i64(), Some(1));
    let all = client.find(Locator::Id("select-all")).await.unwrap();
    all.send_keys(&Key::Space.to_string()).await.unwrap();
    assert_eq!(text_of(&client, "#picked").await, "3 selected");
    page_ok(&client, "01-all-selected-1280").await;
    all.send_keys(&Key::Space.to_string()).await.unwrap();
    assert_eq!(text_of(&client, "#picked").await, "0 selected");
    assert_eq!(client.execute(highlighted, vec![]).await.unwrap().as_i64(), Some(0));

    // Nothing ticked: the listing says so, in place.
    let selected = client.find(Locator::Css("button[value=selected]")).await.unwrap();
    selected.send_keys(&Key::Enter.to_string()).await.unwrap();
    client.wait().for_element(Locator::Id("selection-error")).await.unwrap();
    assert!(text_of(&client, "#selection-error").await.contains("Select at least one file"));
    assert_eq!(card_names(&client).await.len(), 3, "the files are still there to pick");
    page_ok(&client, "02-empty-selection-1280").await;

    // Two ticked by keyboard, then the ZIP by keyboard: an archive of two.
    let boxes = client.find_all(Locator::Css("input[name=file_id]")).await.unwrap();
    boxes[0].send_keys(&Key::Space.to_string()).await.unwrap();
    boxes[2].send_keys(&Key::Space.to_string()).await.unwrap();
    assert_eq!(text_of(&client, "#picked").await, "2 selected");
    client
        .find(Locator::Css("button[value=selected]"))
        .await
        .unwrap()
        .send_keys(&Key::Enter.to_string())
        .await
        .unwrap();
    archive_status(&client, "ready").await;
    assert!(text_of(&client, "#archive").await.contains("2 files"));

    // Search, then sort, from the form by keyboard.
    client.goto(&url).await.unwrap();
    listing(&client).await;
    client.find(Locator::Id("q")).await.unwrap().send_keys("DUSK\u{E007}").await.unwrap();
    until_url_has(&client, "q=DUSK").await;
    assert_eq!(listing(&client).await, ["dusk.jpg"]);
    assert!(text_of(&client, "#totals").await.starts_with("Matching “DUSK”: 1 file"));
    page_ok(&client, "03-search-1280").await;
    client.find(Locator::LinkText("Clear search")).await.unwrap().send_keys(&Key::Enter.to_string()).await.unwrap();
    assert_eq!(listing(&client).await.len(), 3);
    client.find(Locator::Id("sort")).await.unwrap().send_keys("Size").await.unwrap();
    client.find(Locator::Id("order")).await.unwrap().send_keys("Descending").await.unwrap();
    press(&client, Key::Tab).await;
    assert_eq!(focused(&client).await, "Apply");
    press(&client, Key::Enter).await;
    until_url_has(&client, "sort=size&order=desc").await;
    let listed = app.http.get(format!("{url}/api/folders/root")).send().await.unwrap();
    let listed: serde_json::Value = listed.json().await.unwrap();
    assert_eq!(listing(&client).await, publinks_e2e::names_largest_first(&listed), "largest first");

    // A big folder: numbered pages, the way back, the list view, at both widths.
    let big = big_folder(&app).await;
    let big_url = share(&app, json!({"target": {"kind": "folder", "id": big}})).await;
    for ((w, h), width) in [(DESKTOP, 1280), (MOBILE, 390)] {
        client.set_window_size(w, h).await.unwrap();
        client.goto(&big_url).await.unwrap();
        assert_eq!(listing(&client).await.len(), 60);
        assert_eq!(text_of(&client, "#page-indicator").await, "Page 1 of 2");
        page_ok(&client, &format!("04-big-grid-{width}")).await;
        client.find(Locator::LinkText("Next page")).await.unwrap().send_keys(&Key::Enter.to_string()).await.unwrap();
        client.wait().for_element(Locator::LinkText("Previous page")).await.unwrap();
        assert_eq!(text_of(&client, "#page-indicator").await, "Page 2 of 2");
        assert_eq!(card_names(&client).await, ["notes-60.txt"]);
        client.find(Locator::LinkText("List")).await.unwrap().send_keys(&Key::Enter.to_string()).await.unwrap();
        client.wait().for_element(Locator::Css(".grid.list")).await.unwrap();
        assert_eq!(text_of(&client, "#page-indicator").await, "Page 2 of 2", "the view keeps the page");
        page_ok(&client, &format!("05-big-list-page-2-{width}")).await;
        client
            .find(Locator::LinkText("Previous page"))
            .await
            .unwrap()
            .send_keys(&Key::Enter.to_string())
            .await
            .unwrap();
        client.wait().for_element(Locator::LinkText("Next page")).await.unwrap();
        assert!(client.find(Locator::Css(".grid.list")).await.is_ok(), "the way back keeps the view");
        assert_eq!(card_names(&client).await.first().map(String::as_str), Some("notes-00.txt"));
        page_ok(&client, &format!("06-big-list-{width}")).await;
    }
    client.goto(&url).await.unwrap();
    listing(&client).await;
    page_ok(&client, "07-folder-390").await;
    client.close().await.unwrap();
}
