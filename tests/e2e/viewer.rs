//! The file page as a viewer: previous/next through the folder or the
//! collection, in the listing's order, with the position.

use publinks_e2e::{TestApp, expect, spawn_app};
use publinks_media::demo_png;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// The share path and a session of a new open link on `target`.
async fn open_link(app: &TestApp, target: Value) -> (String, String) {
    let link = app.send(Method::POST, "/api/links", &app.admin(), json!({"target": target}), StatusCode::CREATED).await;
    let share = link["url"].as_str().unwrap().strip_prefix(&app.base).unwrap().to_string();
    let session = app.http.post(format!("{}{share}/api/session", app.base)).send().await.unwrap();
    (share.clone(), expect(session, StatusCode::CREATED).await["token"].as_str().unwrap().to_string())
}

/// The value of `attribute` on the element with `id` in `html`, if there is one.
fn attribute_of(html: &str, id: &str, attribute: &str) -> Option<String> {
    let at = html.find(&format!("id=\"{id}\""))?;
    let start = html[..at].rfind('<')?;
    let tag = &html[start..start + html[start..].find('>')?];
    let value = tag.split(&format!("{attribute}=\"")).nth(1)?;
    Some(value[..value.find('"')?].to_string())
}

/// Follows "Next" from the file page `first`, checking each position: the
/// ids in the order walked.
async fn walk(app: &TestApp, share: &str, session: &str, first: &str, total: usize) -> Vec<String> {
    let mut ids = Vec::new();
    let mut at = Some(format!("{share}/files/{first}"));
    while let Some(path) = at {
        let res = app.http.get(format!("{}{path}", app.base)).bearer_auth(session).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::OK, "{path}");
        let html = res.text().await.unwrap();
        ids.push(path.rsplit('/').next().unwrap().to_string());
        assert!(html.contains(&format!("<span id=\"position\">{} of {total}</span>", ids.len())), "{html}");
        let previous = attribute_of(&html, "previous", "href");
        assert_eq!(previous.is_some(), ids.len() > 1, "no previous on the first only");
        if let Some(previous) = previous {
            assert!(previous.ends_with(&ids[ids.len() - 2]), "previous leads back");
        }
        at = attribute_of(&html, "next", "href");
        assert!(ids.len() <= total);
    }
    ids
}

#[tokio::test]
async fn the_file_page_steps_through_the_folder_or_collection_in_listing_order() {
    let app = spawn_app().await;
    let admin = app.admin();
    let folder = app.send(Method::POST, "/api/folders", &admin, json!({"name": "Steps"}), StatusCode::CREATED).await;
    let folder = folder["id"].as_str().unwrap().to_string();
    for (i, name) in ["b.png", "a.png", "c.png", "d.png"].iter().enumerate() {
        app.upload(&admin, Some(&folder), name, "image/png", &demo_png(8, 8, i as u8)).await;
    }
    let (share, session) = open_link(&app, json!({"kind": "folder", "id": folder})).await;
    let listing = app.http.get(format!("{}{share}/api/folders/root", app.base)).bearer_auth(&session);
    let listing = expect(listing.send().await.unwrap(), StatusCode::OK).await;
    let order: Vec<String> =
        listing["files"].as_array().unwrap().iter().map(|f| f["id"].as_str().unwrap().to_string()).collect();
    assert_eq!(walk(&app, &share, &session, &order[0], 4).await, order);

    // A collection: its members in the collection's order.
    let collection =
        app.send(Method::POST, "/api/collections", &admin, json!({"name": "Picks"}), StatusCode::CREATED).await;
    let collection = collection["id"].as_str().unwrap().to_string();
    for id in order.iter().rev().take(3) {
        app.send(
            Method::PUT,
            &format!("/api/collections/{collection}/files/{id}"),
            &admin,
            Value::Null,
            StatusCode::CREATED,
        )
        .await;
    }
    let (share, session) = open_link(&app, json!({"kind": "collection", "id": collection})).await;
    let listing = app.http.get(format!("{}{share}/api/folders/root", app.base)).bearer_auth(&session);
    let listing = expect(listing.send().await.unwrap(), StatusCode::OK).await;
    let members: Vec<String> =
        listing["files"].as_array().unwrap().iter().map(|f| f["id"].as_str().unwrap().to_string()).collect();
    assert_eq!(members.len(), 3);
    assert_eq!(walk(&app, &share, &session, &members[0], 3).await, members);

    // A file link has nothing beside it.
    let (share, session) = open_link(&app, json!({"kind": "file", "id": order[1]})).await;
    let html = app.http.get(format!("{}{share}", app.base)).bearer_auth(&session).send().await.unwrap();
    let html = html.text().await.unwrap();
    assert!(html.contains("Download") && !html.contains("id=\"position\""), "{html}");
}

/// A GET of `path` with `session` (a bearer token) and a `Range` header.
async fn ranged(app: &TestApp, path: &str, session: Option<&str>, range: Option<&str>) -> reqwest::Response {
    let mut req = app.http.get(format!("{}{path}", app.base));
    if let Some(s) = session {
        req = req.bearer_auth(s);
    }
    if let Some(r) = range {
        req = req.header("range", r);
    }
    req.send().await.unwrap()
}

fn header<'a>(res: &'a reqwest::Response, name: &str) -> &'a str {
    res.headers().get(name).map(|v| v.to_str().unwrap()).unwrap_or("")
}

#[tokio::test]
async fn media_play_inline_in_byte_ranges_only_through_a_session_of_a_link_that_reaches_it() {
    let app = spawn_app().await;
    let admin = app.admin();
    let folder = app.send(Method::POST, "/api/folders", &admin, json!({"name": "Sounds"}), StatusCode::CREATED).await;
    let folder = folder["id"].as_str().unwrap().to_string();
    let wav = publinks_e2e::tiny_wav(1500);
    let size = wav.len();
    let file = app.upload(&admin, Some(&folder), "tone.wav", "audio/wav", &wav).await;
    let id = file["id"].as_str().unwrap().to_string();
    let link = json!({"target": {"kind": "folder", "id": folder}, "password": "open sesame 12"});
    let link = app.send(Method::POST, "/api/links", &admin, link, StatusCode::CREATED).await;
    let share = link["url"].as_str().unwrap().strip_prefix(&app.base).unwrap().to_string();
    let inline = format!("{share}/api/files/{id}/inline");

    // No session: the password first, as for a download.
    expect(ranged(&app, &inline, None, Some("bytes=0-")).await, StatusCode::UNAUTHORIZED).await;
    let session =
        app.http.post(format!("{}{share}/api/session", app.base)).json(&json!({"password": "open sesame 12"}));
    let session =
        expect(session.send().await.unwrap(), StatusCode::CREATED).await["token"].as_str().unwrap().to_string();
    let s = Some(session.as_str());

    let whole = ranged(&app, &inline, s, None).await;
    assert_eq!(whole.status(), StatusCode::OK);
    assert_eq!((header(&whole, "content-type"), header(&whole, "accept-ranges")), ("audio/wav", "bytes"));
    assert!(header(&whole, "content-disposition").starts_with("inline;"), "shown, not saved");
    assert_eq!(whole.bytes().await.unwrap(), wav);

    for (range, expected, content_range) in [
        ("bytes=100-199", 100..200, format!("bytes 100-199/{size}")),
        ("bytes=-50", size - 50..size, format!("bytes {}-{}/{size}", size - 50, size - 1)),
        ("bytes=2000-", 2000..size, format!("bytes 2000-{}/{size}", size - 1)),
        ("bytes=10-999999", 10..size, format!("bytes 10-{}/{size}", size - 1)),
    ] {
        let res = ranged(&app, &inline, s, Some(range)).await;
        assert_eq!(res.status(), StatusCode::PARTIAL_CONTENT, "{range}");
        assert_eq!(header(&res, "content-range"), content_range, "{range}");
        assert_eq!(header(&res, "content-length"), expected.len().to_string(), "{range}");
        assert_eq!(res.bytes().await.unwrap(), wav[expected], "{range}");
    }
    let refused = ranged(&app, &inline, s, Some(&format!("bytes={size}-"))).await;
    assert_eq!(header(&refused, "content-range"), format!("bytes */{size}"));
    let body = expect(refused, StatusCode::RANGE_NOT_SATISFIABLE).await;
    assert_eq!(body["error"]["code"], "range_not_satisfiable");
    let several = ranged(&app, &inline, s, Some("bytes=0-1,5-6")).await;
    assert_eq!(several.status(), StatusCode::OK, "several ranges: the whole file, as RFC 9110 allows");

    // Nothing is a download, and the page plays it from its own origin only.
    let downloads = app.http.get(format!("{}{share}/api/downloads", app.base)).bearer_auth(&session);
    assert_eq!(expect(downloads.send().await.unwrap(), StatusCode::OK).await["items"], json!([]));
    let page = ranged(&app, &format!("{share}/files/{id}"), s, None).await;
    let policy = header(&page, "content-security-policy").to_string();
    assert!(policy.contains("media-src 'self'") && policy.contains("script-src 'self'"), "{policy}");
    assert!(!policy.contains("media-src *") && !policy.contains("http"), "{policy}");
    let html = page.text().await.unwrap();
    assert!(html.contains(&format!(r#"<audio id="player" controls preload="metadata" src="{inline}""#)), "{html}");
    assert!(html.contains("<dd>WAV audio</dd>") && !html.contains(&format!("{size} B")), "{html}");

    // A session of another link, another link's token, a file not inline-able: not found.
    let other = app.send(Method::POST, "/api/folders", &admin, json!({"name": "Other"}), StatusCode::CREATED).await;
    let (other_share, other_session) = open_link(&app, json!({"kind": "folder", "id": other["id"]})).await;
    let elsewhere = format!("{other_share}/api/files/{id}/inline");
    expect(ranged(&app, &elsewhere, Some(&other_session), Some("bytes=0-9")).await, StatusCode::NOT_FOUND).await;
    expect(ranged(&app, &elsewhere, s, Some("bytes=0-9")).await, StatusCode::NOT_FOUND).await;
    let blob = app.upload(&admin, Some(&folder), "data.bin", "application/octet-stream", b"\x00\x01").await;
    let blob = format!("{share}/api/files/{}/inline", blob["id"].as_str().unwrap());
    expect(ranged(&app, &blob, s, None).await, StatusCode::NOT_FOUND).await;
}

#[tokio::test]
async fn a_large_file_is_served_in_parts_and_without_a_range_as_its_download() {
    let app = spawn_app().await;
    let admin = app.admin();
    let folder = app.send(Method::POST, "/api/folders", &admin, json!({"name": "Films"}), StatusCode::CREATED).await;
    let folder = folder["id"].as_str().unwrap().to_string();
    let cap = publinks_domain::public::MAX_INLINE_RESPONSE as usize;
    let film: Vec<u8> = (0..cap + 300_000).map(|i| (i % 251) as u8).collect();
    let file = app.upload(&admin, Some(&folder), "film.mp4", "video/mp4", &film).await;
    let id = file["id"].as_str().unwrap();
    let (share, session) = open_link(&app, json!({"kind": "folder", "id": folder})).await;
    let inline = format!("{share}/api/files/{id}/inline");
    let first = ranged(&app, &inline, Some(&session), Some("bytes=0-")).await;
    assert_eq!(first.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(header(&first, "content-range"), format!("bytes 0-{}/{}", cap - 1, film.len()));
    assert_eq!(first.bytes().await.unwrap(), film[..cap]);
    let rest = ranged(&app, &inline, Some(&session), Some(&format!("bytes={cap}-"))).await;
    assert_eq!(rest.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(rest.bytes().await.unwrap(), film[cap..]);
    let whole = ranged(&app, &inline, Some(&session), None).await;
    assert_eq!(whole.status(), StatusCode::SEE_OTHER);
    assert_eq!(header(&whole, "location"), format!("{share}/api/files/{id}/download"));
}

#[tokio::test]
async fn text_shows_escaped_in_the_page_and_pdfs_open_in_the_browser() {
    let app = spawn_app().await;
    let admin = app.admin();
    let folder = app.send(Method::POST, "/api/folders", &admin, json!({"name": "Docs"}), StatusCode::CREATED).await;
    let folder = folder["id"].as_str().unwrap().to_string();
    let notes = "Notes <b>bold</b> & \"quoted\"\nSecond line é\n";
    let text = app.upload(&admin, Some(&folder), "notes.txt", "text/plain", notes.as_bytes()).await;
    let long: String = "0123456789abcdef".repeat(5000);
    let long = app.upload(&admin, Some(&folder), "long.txt", "text/plain", long.as_bytes()).await;
    let pdf = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n";
    let pdf = app.upload(&admin, Some(&folder), "brief.pdf", "application/pdf", pdf).await;
    let (share, session) = open_link(&app, json!({"kind": "folder", "id": folder})).await;
    let page = |id: &Value| {
        let req = app.http.get(format!("{}{share}/files/{}", app.base, id["id"].as_str().unwrap()));
        let req = req.bearer_auth(&session);
        async move { req.send().await.unwrap().text().await.unwrap() }
    };

    let html = page(&text).await;
    assert!(html.contains("Notes &#60;b&#62;bold&#60;/b&#62; &#38; &#34;quoted&#34;\nSecond line é"), "{html}");
    assert!(!html.contains("<b>bold") && html.contains("<dd>Plain text</dd>"), "{html}");
    assert!(!html.contains("The first"), "all of a short text is shown");
    let html = page(&long).await;
    let shown = html.split("<pre").nth(1).unwrap().split("</pre>").next().unwrap();
    assert!(shown.len() < 70_000 && html.contains("The first 65.5 KB are shown"), "capped: {}", shown.len());
    let html = page(&pdf).await;
    let inline = format!("{share}/api/files/{}/inline", pdf["id"].as_str().unwrap());
    assert!(html.contains(&format!(r#"id="open-pdf" href="{inline}""#)) && html.contains("PDF document"), "{html}");
    let res = ranged(&app, &inline, Some(&session), None).await;
    assert_eq!((res.status(), header(&res, "content-type")), (StatusCode::OK, "application/pdf"));
    assert!(header(&res, "content-disposition").starts_with("inline; filename=\"brief.pdf\""));
    let txt = format!("{share}/api/files/{}/inline", text["id"].as_str().unwrap());
    let res = ranged(&app, &txt, Some(&session), None).await;
    assert_eq!(header(&res, "content-type"), "text/plain; charset=utf-8", "text never runs as a page");
    assert!(header(&res, "content-security-policy").starts_with("default-src 'none'"));
}

#[tokio::test]
async fn an_unknown_address_inside_a_share_leads_back_to_it() {
    let app = spawn_app().await;
    let folder = app.folder_id(&["Campaigns", "Spring 2026"]).await;
    let (share, _) = open_link(&app, json!({"kind": "folder", "id": folder})).await;
    for path in [format!("{share}/nothing"), format!("{share}/files/x/y/z"), format!("{share}/folders")] {
        let res = app.http.get(format!("{}{path}", app.base)).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::NOT_FOUND, "{path}");
        assert!(header(&res, "content-type").starts_with("text/html"), "{path}");
        let html = res.text().await.unwrap();
        assert!(html.contains(&format!(r#"href="{share}""#)) && html.contains("no such page in this share"), "{html}");
    }
    let res = app.http.get(format!("{}/s/", app.base)).send().await.unwrap();
    let html = res.text().await.unwrap();
    assert!(!html.contains("start of what was shared"), "no share to go back to: {html}");
}
