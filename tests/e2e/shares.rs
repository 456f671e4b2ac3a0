//! Big shares on the visitor's folder and collection pages, over plain HTTP
//! (no script): sort orders, search, numbered pages and their boundaries,
//! the grid and list views kept across links, a ZIP of exactly the ticked
//! files, an empty selection explained on the listing itself, and bad
//! queries answered with a 400 page.

use chrono::{Duration, TimeZone, Utc};
use publinks_archive::readers;
use publinks_domain::ids::FolderId;
use publinks_domain::model::{File, Placement};
use publinks_e2e::{TestApp, expect, spawn_app};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// A new open link on `target`: its share path and a visitor session.
async fn open_link(app: &TestApp, target: Value) -> (String, String) {
    let link = app.send(Method::POST, "/api/links", &app.admin(), json!({"target": target}), StatusCode::CREATED).await;
    let share = link["url"].as_str().unwrap().strip_prefix(&app.base).unwrap().to_string();
    let session = app.http.post(format!("{}{share}/api/session", app.base)).send().await.unwrap();
    (share, expect(session, StatusCode::CREATED).await["token"].as_str().unwrap().to_string())
}

/// A page as the visitor with `session`: its status and HTML (always HTML).
async fn page(app: &TestApp, path: &str, session: &str) -> (StatusCode, String) {
    let res = app.http.get(format!("{}{path}", app.base)).bearer_auth(session).send().await.unwrap();
    let status = res.status();
    let kind = res.headers()[reqwest::header::CONTENT_TYPE].to_str().unwrap().to_string();
    assert!(kind.starts_with("text/html"), "{path}: {kind}");
    (status, res.text().await.unwrap())
}

/// A page that must answer 200.
async fn ok_page(app: &TestApp, path: &str, session: &str) -> String {
    let (status, html) = page(app, path, session).await;
    assert_eq!(status, StatusCode::OK, "{path}: {html}");
    html
}

/// The names of the file cards, in the page's order.
fn card_names(html: &str) -> Vec<String> {
    html.split("<a class=\"name\" href=\"")
        .skip(1)
        .map(|part| {
            let text = &part[part.find('>').unwrap() + 1..];
            text[..text.find("</a>").unwrap()].to_string()
        })
        .collect()
}

/// The `href` of the link whose text is `text`, unescaped.
fn link_to(html: &str, text: &str) -> Option<String> {
    let end = html.find(&format!(">{text}</a>"))?;
    let start = html[..end].rfind("href=\"")? + 6;
    let href = &html[start..end];
    Some(href[..href.find('"')?].replace("&amp;", "&").replace("&#38;", "&"))
}

/// The text of the element with `id`, tags left out.
fn text_of(html: &str, id: &str) -> String {
    let at = html.find(&format!("id=\"{id}\"")).unwrap_or_else(|| panic!("no #{id} in {html}"));
    let rest = &html[at + html[at..].find('>').unwrap() + 1..];
    let mut text = String::new();
    let mut depth = 0i32;
    let mut in_tag = false;
    for (i, c) in rest.char_indices() {
        match c {
            '<' if rest[i..].starts_with("</") => {
                if depth == 0 {
                    break;
                }
                depth -= 1;
                in_tag = true;
            }
            '<' => {
                depth += 1;
                in_tag = true;
            }
            '>' => in_tag = false,
            c if !in_tag => text.push(c),
            _ => {}
        }
    }
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The big folder: 61 files whose name, size and date orders all differ
/// (file `i` is uploaded `i` minutes after the first), and a subfolder
/// holding a file whose name a search for "f1" would match.
struct BigFolder {
    folder: FolderId,
    sub: FolderId,
    /// (name, size), in upload order.
    files: Vec<(String, u64)>,
}

async fn big_folder(app: &TestApp) -> BigFolder {
    let ada = app.library.actor(app.demo.admin.id).await.unwrap().unwrap();
    let folder = app.library.create_folder(&ada, None, "Big").await.unwrap();
    let sub = app.library.create_folder(&ada, Some(folder.id), "Sub").await.unwrap();
    let start = Utc.with_ymd_and_hms(2026, 3, 1, 9, 0, 0).unwrap();
    let files: Vec<(String, u64)> =
        (0..61u64).map(|i| (format!("f{:02}.txt", (i * 7) % 61), ((i * 13) % 61 + 1) * 100)).collect();
    let mut records: Vec<(File, Placement)> = files
        .iter()
        .enumerate()
        .map(|(i, (name, size))| {
            (
                app.file_record(folder.id, name, ("text/plain", *size), start + Duration::minutes(i as i64)),
                Placement(vec![folder.id]),
            )
        })
        .collect();
    records
        .push((app.file_record(sub.id, "f1-inside.txt", ("text/plain", 5), start), Placement(vec![sub.id, folder.id])));
    let catalog = app.library.catalog();
    for batch in records.chunks(16) {
        for inserted in futures_util::future::join_all(batch.iter().map(|(f, p)| catalog.insert_file(f, p))).await {
            inserted.unwrap();
        }
    }
    BigFolder { folder: folder.id, sub: sub.id, files }
}

#[tokio::test]
async fn a_big_folder_sorts_searches_and_pages_through_plain_links() {
    let app = spawn_app().await;
    let big = big_folder(&app).await;
    let (s, session) = open_link(&app, json!({"kind": "folder", "id": big.folder})).await;
    let mut by_name: Vec<&(String, u64)> = big.files.iter().collect();
    by_name.sort();
    let names = |files: &[&(String, u64)]| files.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>();
    let total: u64 = big.files.iter().map(|(_, size)| size).sum();

    // By name, 60 a page: the page, the totals, the way on.
    let first = ok_page(&app, &s, &session).await;
    assert_eq!(card_names(&first), names(&by_name[..60]));
    assert_eq!(text_of(&first, "page-indicator"), "Page 1 of 2");
    assert_eq!(text_of(&first, "totals"), format!("1 folder, 61 files, {}", publinks_domain::human_size(&total)));
    assert!(first.contains(">Sub</a>"), "the subfolder on the first page");
    assert!(link_to(&first, "Previous page").is_none() && link_to(&first, "First page").is_none());
    let next = link_to(&first, "Next page").unwrap();
    assert_eq!(next, format!("{s}?page=2"));
    let second = ok_page(&app, &next, &session).await;
    assert_eq!(card_names(&second), names(&by_name[60..]));
    assert_eq!(text_of(&second, "page-indicator"), "Page 2 of 2");
    assert!(!second.contains(">Sub</a>"), "subfolders on the first page only");
    assert!(link_to(&second, "Next page").is_none());
    assert_eq!(link_to(&second, "Previous page").unwrap(), s, "the way back");
    // Past the last page: the last page.
    let past = ok_page(&app, &format!("{s}?page=99"), &session).await;
    assert_eq!(text_of(&past, "page-indicator"), "Page 2 of 2");
    assert_eq!(card_names(&past), names(&by_name[60..]));

    // By size and by date, both ways, kept across the pages.
    let mut by_size = big.files.iter().collect::<Vec<_>>();
    by_size.sort_by_key(|(_, size)| *size);
    let by_date: Vec<&(String, u64)> = big.files.iter().collect();
    for (query, expected) in [
        ("sort=size", by_size.clone()),
        ("sort=size&order=desc", by_size.iter().rev().copied().collect()),
        ("sort=date", by_date.clone()),
        ("sort=date&order=desc", by_date.iter().rev().copied().collect()),
        ("sort=name&order=desc", by_name.iter().rev().copied().collect()),
    ] {
        let html = ok_page(&app, &format!("{s}?{query}"), &session).await;
        assert_eq!(card_names(&html), names(&expected[..60]), "{query}");
        let next = link_to(&html, "Next page").unwrap();
        assert_eq!(next, format!("{s}?{query}&page=2"));
        let html = ok_page(&app, &next, &session).await;
        assert_eq!(card_names(&html), names(&expected[60..]), "{query}, page 2");
        assert_eq!(link_to(&html, "Previous page").unwrap(), format!("{s}?{query}"));
    }

    // A search, any case, in this folder only (not the subfolder's file).
    let matching: Vec<String> = names(&by_name).into_iter().filter(|n| n.starts_with("f1")).collect();
    assert_eq!(matching.len(), 10);
    for q in ["f1", "F1"] {
        let html = ok_page(&app, &format!("{s}?q={q}"), &session).await;
        assert_eq!(card_names(&html), matching);
        let size: u64 = big.files.iter().filter(|(n, _)| n.starts_with("f1")).map(|(_, s)| s).sum();
        let totals = text_of(&html, "totals");
        assert!(
            totals.starts_with(&format!("Matching “{q}”: 10 files, {}", publinks_domain::human_size(&size))),
            "{totals}"
        );
        assert!(!html.contains("page-indicator") && !html.contains("f1-inside") && !html.contains(">Sub</a>"));
        assert_eq!(link_to(&html, "Clear search").unwrap(), s);
    }
    let none = ok_page(&app, &format!("{s}?q=nothing+like+it"), &session).await;
    assert!(card_names(&none).is_empty() && text_of(&none, "nothing").contains("No name here matches"), "{none}");
    // A search with a sort, as a list: each link keeps the others.
    let html = ok_page(&app, &format!("{s}?q=f&sort=size&order=desc&view=list"), &session).await;
    assert!(html.contains("class=\"grid list\""), "{html}");
    assert_eq!(card_names(&html), names(&by_size.iter().rev().copied().collect::<Vec<_>>()[..60]));
    assert_eq!(link_to(&html, "Next page").unwrap(), format!("{s}?sort=size&order=desc&q=f&page=2&view=list"));
    assert_eq!(link_to(&html, "Grid").unwrap(), format!("{s}?sort=size&order=desc&q=f"));
    assert!(!html.contains(">Sub</a>"), "a search filters the subfolders too");
    let unsearched = ok_page(&app, &format!("{s}?sort=size&order=desc&view=list"), &session).await;
    let into = link_to(&unsearched, "Sub").unwrap();
    assert_eq!(
        into,
        format!("{s}/folders/{}?sort=size&order=desc&view=list", big.sub),
        "entering keeps view and order"
    );
    for field in ["name=\"q\" value=\"f\"", "<option value=\"size\" selected>", "<option value=\"desc\" selected>"] {
        assert!(html.contains(field), "the form shows {field}");
    }
    assert!(html.contains("<input type=\"hidden\" name=\"view\" value=\"list\">"), "the search form keeps the view");
    let sub = ok_page(&app, &format!("{s}/folders/{}?q=inside", big.sub), &session).await;
    assert_eq!(card_names(&sub), ["f1-inside.txt"]);
    assert_eq!(text_of(&sub, "totals"), "Matching “inside”: 1 file, 5 B · Clear search");
}

#[tokio::test]
async fn bad_listing_queries_answer_a_page_that_names_the_problem() {
    let app = spawn_app().await;
    let spring = app.folder_id(&["Campaigns", "Spring 2026"]).await;
    let hero = app.folder_id(&["Campaigns", "Spring 2026", "Hero shots"]).await;
    let (s, session) = open_link(&app, json!({"kind": "folder", "id": spring})).await;
    let long = "x".repeat(101);
    for (query, says) in [
        ("sort=colour".to_string(), "sort must be name, date or size"),
        ("order=up".into(), "order must be asc or desc"),
        ("page=0".into(), "page must be a whole number from 1"),
        ("page=-2".into(), "page must be a whole number from 1"),
        ("page=two".into(), "page must be a whole number from 1"),
        ("page=184467440737095516160".into(), "page must be a whole number from 1"),
        ("view=table".into(), "view must be grid or list"),
        (format!("q={long}"), "at most 100 characters"),
        ("q=a%00b".into(), "control characters"),
    ] {
        for at in [s.clone(), format!("{s}/folders/{hero}")] {
            let (status, html) = page(&app, &format!("{at}?{query}"), &session).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{query}: {html}");
            assert!(html.contains(says), "{query}: {html}");
            assert!(html.contains(&format!("href=\"{at}\"")), "a way back to the page: {html}");
        }
    }
    // A repeated parameter: the plain 400 page; bytes that are no UTF-8 are
    // read as replacement characters (a search that matches nothing).
    let (status, _) = page(&app, &format!("{s}?sort=name&sort=size"), &session).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let html = ok_page(&app, &format!("{s}?q=%FF"), &session).await;
    assert!(card_names(&html).is_empty(), "{html}");
    // Unknown parameters and empty values change nothing.
    let plain = ok_page(&app, &s, &session).await;
    let odd = ok_page(&app, &format!("{s}?utm_source=mail&sort=&order=&q=+&page=&view="), &session).await;
    assert_eq!(card_names(&odd), card_names(&plain));
}

#[tokio::test]
async fn a_collection_keeps_its_own_order_until_sorted() {
    let app = spawn_app().await;
    let big = big_folder(&app).await;
    let (s, session) = open_link(&app, json!({"kind": "folder", "id": big.folder})).await;
    let html = ok_page(&app, &format!("{s}?sort=size"), &session).await;
    let ids: Vec<String> = html
        .split("name=\"file_id\" value=\"")
        .skip(1)
        .take(3)
        .map(|part| part[..part.find('"').unwrap()].to_string())
        .collect();
    let smallest = card_names(&html)[..3].to_vec();
    let collection =
        app.send(Method::POST, "/api/collections", &app.admin(), json!({"name": "Picks"}), StatusCode::CREATED).await;
    let collection = collection["id"].as_str().unwrap().to_string();
    for id in ids.iter().rev() {
        let path = format!("/api/collections/{collection}/files/{id}");
        app.send(Method::PUT, &path, &app.admin(), Value::Null, StatusCode::CREATED).await;
    }
    let (c, session) = open_link(&app, json!({"kind": "collection", "id": collection})).await;
    let added: Vec<String> = smallest.iter().rev().cloned().collect();
    let html = ok_page(&app, &c, &session).await;
    assert_eq!(card_names(&html), added, "as added");
    assert!(html.contains("<option value=\"\" selected>Collection order</option>"), "{html}");
    assert!(html.contains("Search in this collection"));
    assert_eq!(card_names(&ok_page(&app, &format!("{c}?order=desc"), &session).await), smallest);
    assert_eq!(card_names(&ok_page(&app, &format!("{c}?sort=size"), &session).await), smallest);
    let mut by_name = smallest.clone();
    by_name.sort();
    assert_eq!(card_names(&ok_page(&app, &format!("{c}?sort=name"), &session).await), by_name);
}

/// Posts the listing's ZIP form as a browser would; returns the answer.
async fn post_zip(app: &TestApp, share: &str, session: &str, fields: &[(&str, &str)]) -> reqwest::Response {
    // Every value here is a plain word or an id: nothing to escape.
    let body = fields.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("&");
    app.http
        .post(format!("{}{share}/archives", app.base))
        .bearer_auth(session)
        .header(reqwest::header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn the_selection_zip_holds_exactly_the_ticked_files_and_an_empty_one_is_explained() {
    let app = spawn_app().await;
    let spring = app.folder_id(&["Campaigns", "Spring 2026"]).await;
    let hero = app.folder_id(&["Campaigns", "Spring 2026", "Hero shots"]).await;
    let (s, session) = open_link(&app, json!({"kind": "folder", "id": spring})).await;
    let html = ok_page(&app, &s, &session).await;
    let names = card_names(&html);
    assert_eq!(names, ["dusk.jpg", "palette.png", "sunrise.jpg"]);
    let ids: Vec<String> = html
        .split("name=\"file_id\" value=\"")
        .skip(1)
        .map(|part| part[..part.find('"').unwrap()].to_string())
        .collect();
    assert_eq!(ids.len(), 3);
    for name in &names {
        assert!(
            html.contains(&format!("Select<span class=\"vh\"> {name}</span>")),
            "each checkbox named after its file"
        );
    }

    // Two of three ticked: the ZIP holds those two, no more.
    let fields = [("scope", "selected"), ("file_id", ids[0].as_str()), ("file_id", ids[2].as_str())];
    let res = post_zip(&app, &s, &session, &fields).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let at = res.headers()["location"].to_str().unwrap().to_string();
    let id = at.rsplit('/').next().unwrap();
    let api = format!("{}{s}/api/archives/{id}", app.base);
    let mut job = Value::Null;
    for _ in 0..300 {
        job = expect(app.http.get(&api).bearer_auth(&session).send().await.unwrap(), StatusCode::OK).await;
        if !matches!(job["status"].as_str(), Some("pending" | "building")) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(job["status"], "ready", "{job}");
    let res = app.http.get(format!("{api}/download")).bearer_auth(&session).send().await.unwrap();
    assert!(res.status().is_redirection(), "{}", res.status());
    let zip = app.http.get(res.headers()["location"].to_str().unwrap()).send().await.unwrap().bytes().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.zip"), &zip).unwrap();
    let inside: Vec<String> = readers::python_digests(&dir.path().join("a.zip")).unwrap().into_keys().collect();
    assert_eq!(inside, [names[0].clone(), names[2].clone()]);

    // Nothing ticked: the same listing again (its sort and view kept), saying so.
    let fields = [("scope", "selected"), ("sort", "size"), ("order", "desc"), ("view", "list")];
    let res = post_zip(&app, &s, &session, &fields).await;
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = res.text().await.unwrap();
    assert!(text_of(&html, "selection-error").contains("Select at least one file"), "{html}");
    assert!(html.contains("role=\"alert\"") && html.contains("class=\"grid list\""), "{html}");
    let listing = app.http.get(format!("{}{s}/api/folders/root", app.base)).bearer_auth(&session);
    let listing = expect(listing.send().await.unwrap(), StatusCode::OK).await;
    assert_eq!(card_names(&html), publinks_e2e::names_largest_first(&listing));
    assert!(html.contains("<input type=\"hidden\" name=\"sort\" value=\"size\">"), "{html}");
    // In a subfolder, the subfolder's listing.
    let fields = [("scope", "selected"), ("folder_id", hero.as_str())];
    let res = post_zip(&app, &s, &session, &fields).await;
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = res.text().await.unwrap();
    assert_eq!(card_names(&html), ["close-up.jpg"]);
    assert!(html.contains("Select at least one file"));
    // A bad id is still refused.
    let res = post_zip(&app, &s, &session, &[("scope", "selected"), ("file_id", "nope")]).await;
    assert!(res.status().is_client_error(), "{}", res.status());
}
