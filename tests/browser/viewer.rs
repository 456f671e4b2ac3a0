//! The file page as a viewer in Chromium: previous and next by arrow keys,
//! audio that plays from the inline route and seeks (byte ranges), times in
//! the visitor's zone, and axe-core at both widths.

use super::{Chromium, chromium_with_env, share, snap, text_of};
use crate::dashboard::{DESKTOP, MOBILE, no_axe_violations};
use fantoccini::Locator;
use publinks_media::demo_png;
use reqwest::{Method, StatusCode};
use serde_json::json;

/// WebDriver's codes of the arrow keys.
const ARROW_LEFT: &str = "\u{E012}";
const ARROW_RIGHT: &str = "\u{E014}";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_viewer_steps_by_arrow_keys_plays_audio_that_seeks_and_shows_local_times() {
    let app = publinks_e2e::spawn_app().await;
    let admin = app.admin();
    let folder = app.send(Method::POST, "/api/folders", &admin, json!({"name": "Viewer"}), StatusCode::CREATED).await;
    let folder = folder["id"].as_str().unwrap().to_string();
    let mut ids = Vec::new();
    for (i, name) in ["a.png", "b.png", "c.png"].iter().enumerate() {
        let file = app.upload(&admin, Some(&folder), name, "image/png", &demo_png(64, 48, i as u8)).await;
        ids.push(file["id"].as_str().unwrap().to_string());
    }
    let wav = app.upload(&admin, Some(&folder), "tone.wav", "audio/wav", &publinks_e2e::tiny_wav(2000)).await;
    let wav = wav["id"].as_str().unwrap().to_string();
    let body = json!({"target": {"kind": "folder", "id": folder}, "valid_until": "2030-01-01T00:00:00Z"});
    let url = share(&app, body).await;
    // Tokyo is 9 hours ahead of UTC, with no summer time.
    let Chromium { client, downloads: _downloads, _driver, _profile } =
        chromium_with_env(&[("TZ", "Asia/Tokyo")]).await;

    client.goto(&format!("{url}/files/{}", ids[0])).await.unwrap();
    let start = text_of(&client, "#position").await;
    let (at, total) = start.split_once(" of ").unwrap();
    let (at, total): (usize, usize) = (at.parse().unwrap(), total.parse().unwrap());
    assert_eq!(total, 4);
    let (key, moved) = if at < total { (ARROW_RIGHT, at + 1) } else { (ARROW_LEFT, at - 1) };
    client.find(Locator::Css("body")).await.unwrap().send_keys(key).await.unwrap();
    let stepped = format!("{moved} of {total}");
    for _ in 0..50 {
        if text_of(&client, "#position").await == stepped {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(text_of(&client, "#position").await, stepped, "an arrow key steps");
    let back = if key == ARROW_RIGHT { ARROW_LEFT } else { ARROW_RIGHT };
    client.find(Locator::Css("body")).await.unwrap().send_keys(back).await.unwrap();
    for _ in 0..50 {
        if text_of(&client, "#position").await == start {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(text_of(&client, "#position").await, start, "the other arrow steps back");

    let footer = text_of(&client, "footer").await;
    assert!(footer.contains("2030") && footer.contains("09:00") && !footer.contains("UTC"), "{footer}");
    for (w, h) in [DESKTOP, MOBILE] {
        client.set_window_size(w, h).await.unwrap();
        snap(&client, &format!("20-viewer-image-{w}")).await;
        no_axe_violations(&client, &format!("the viewer with an image at {w} px")).await;
    }

    client.set_window_size(DESKTOP.0, DESKTOP.1).await.unwrap();
    client.goto(&format!("{url}/files/{wav}")).await.unwrap();
    client.wait().for_element(Locator::Id("player")).await.unwrap();
    let played = client
        .execute_async(
            r#"const done = arguments[arguments.length - 1];
            const a = document.getElementById('player');
            const seek = () => {
                a.addEventListener('seeked', () => done({ time: a.currentTime, duration: a.duration }), { once: true });
                a.currentTime = 1.5;
            };
            a.addEventListener('error', () => done({ error: String(a.error && a.error.code) }), { once: true });
            if (a.readyState >= 3) { seek(); } else { a.addEventListener('canplay', seek, { once: true }); a.load(); }"#,
            vec![],
        )
        .await
        .unwrap();
    assert!(played["error"].is_null(), "{played}");
    assert!((played["duration"].as_f64().unwrap() - 2.0).abs() < 0.05, "{played}");
    assert!((played["time"].as_f64().unwrap() - 1.5).abs() < 0.05, "seeked: {played}");
    for (w, h) in [DESKTOP, MOBILE] {
        client.set_window_size(w, h).await.unwrap();
        snap(&client, &format!("21-viewer-audio-{w}")).await;
        no_axe_violations(&client, &format!("the viewer with audio at {w} px")).await;
    }
    client.close().await.unwrap();
}
