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
