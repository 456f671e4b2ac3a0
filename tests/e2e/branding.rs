//! The account's branding: an accent colour and a logo on the visitor
//! pages, and a watermark burned into the large previews of preview-only
//! links (made once by the library job, absent through normal links).

use publinks_e2e::{TestApp, expect, rendition, spawn_app};
use publinks_media::{demo_jpeg_with_exif, demo_png};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// A link on `target` with `options`: its share path and a visitor session.
async fn share(app: &TestApp, target: Value, options: Value) -> (String, String) {
    let mut body = json!({"target": target});
    body.as_object_mut().unwrap().extend(options.as_object().unwrap().clone());
    let link = app.send(Method::POST, "/api/links", &app.admin(), body, StatusCode::CREATED).await;
    let share = link["url"].as_str().unwrap().strip_prefix(&app.base).unwrap().to_string();
    let session = app.http.post(format!("{}{share}/api/session", app.base)).json(&json!({}));
    let session = expect(session.send().await.unwrap(), StatusCode::CREATED).await;
    (share, session["token"].as_str().unwrap().to_string())
}

/// A photo of `width` × `height` uploaded to Spring 2026 and two links to
/// that folder, a normal one and a preview-only one: the photo's id, and
/// each link's share path with a visitor session.
async fn a_photo_shared_twice(app: &TestApp, width: u32, height: u32) -> (String, (String, String), (String, String)) {
    let spring = app.folder_id(&["Campaigns", "Spring 2026"]).await;
    let photo = demo_jpeg_with_exif(width, height, 9, "Proof Cam");
    let file = app.upload(&app.admin(), Some(&spring), "proof.jpg", "image/jpeg", &photo).await;
    let target = json!({"kind": "folder", "id": spring});
    let normal = share(app, target.clone(), json!({})).await;
    let proofs = share(app, target, json!({"preview_only": true})).await;
    (file["id"].as_str().unwrap().to_string(), normal, proofs)
}

async fn put_logo(app: &TestApp, token: &str, content_type: &str, bytes: Vec<u8>, status: StatusCode) -> Value {
    let req = app.request(Method::PUT, "/api/account/branding/logo", token).header("content-type", content_type);
    expect(req.body(bytes).send().await.unwrap(), status).await
}

#[tokio::test]
async fn an_administrator_brands_the_visitor_pages_with_an_accent_colour_and_a_logo() {
    let app = spawn_app().await;
    let admin = app.admin();
    let path = "/api/account/branding";
    let accent = json!({"accent_color": "#7A1F5C"});
    app.send(Method::PATCH, path, &app.viewer(), accent.clone(), StatusCode::FORBIDDEN).await;
    put_logo(&app, &app.viewer(), "image/png", demo_png(64, 32, 1), StatusCode::FORBIDDEN).await;
    for bad in ["#ffd000", "red", "#12345"] {
        let refused =
            app.send(Method::PATCH, path, &admin, json!({"accent_color": bad}), StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(refused.await["error"]["field"], "accent_color", "{bad}");
    }
    assert_eq!(app.send(Method::PATCH, path, &admin, accent, StatusCode::OK).await["accent_color"], "#7a1f5c");
    for (content_type, bytes) in [
        ("text/plain", b"hello".to_vec()),
        ("image/svg+xml", b"<svg xmlns='http://www.w3.org/2000/svg'/>".to_vec()),
        ("image/jpeg", demo_png(64, 32, 1)),
        ("image/png", vec![0x89; 210 * 1024]),
        ("image/webp", animated_webp()),
    ] {
        let refused = put_logo(&app, &admin, content_type, bytes, StatusCode::UNPROCESSABLE_ENTITY).await;
        assert_eq!(refused["error"]["field"], "logo", "{content_type}");
    }
    let logo = demo_png(64, 32, 1);
    let branding = put_logo(&app, &admin, "image/png", logo.clone(), StatusCode::OK).await;
    let version = branding["logo"]["version"].as_str().unwrap().to_string();
    assert_eq!(app.get(path, &admin, StatusCode::OK).await["accent_color"], "#7a1f5c");

    let spring = app.folder_id(&["Campaigns", "Spring 2026"]).await;
    let (open, _) = share(&app, json!({"kind": "folder", "id": spring}), json!({})).await;
    let body = json!({"target": {"kind": "folder", "id": spring}, "password": "correct horse"});
    let protected = app.send(Method::POST, "/api/links", &admin, body, StatusCode::CREATED).await;
    let protected = protected["url"].as_str().unwrap().strip_prefix(&app.base).unwrap().to_string();
    for link in [&open, &protected] {
        let page = app.http.get(format!("{}{link}", app.base)).send().await.unwrap().text().await.unwrap();
        assert!(page.contains("--accent: #7a1f5c"), "{page}");
        let src = format!("src=\"{link}/api/logo?v={version}\"");
        assert!(page.contains(&src), "{src}: {page}");
        let served = app.http.get(format!("{}{link}/api/logo?v={version}", app.base)).send().await.unwrap();
        assert_eq!(served.status(), StatusCode::OK);
        assert_eq!(served.headers()["content-type"], "image/png");
        assert_eq!(served.headers()["cache-control"], "private, max-age=300");
        assert_eq!(served.bytes().await.unwrap().to_vec(), logo);
    }

    let cleared = json!({"accent_color": null});
    assert!(app.send(Method::PATCH, path, &admin, cleared, StatusCode::OK).await.get("accent_color").is_none());
    app.send(Method::DELETE, "/api/account/branding/logo", &admin, Value::Null, StatusCode::OK).await;
    let page = app.http.get(format!("{}{open}", app.base)).send().await.unwrap().text().await.unwrap();
    assert!(!page.contains("class=\"logo\"") && !page.contains("--accent: #7a1f5c"), "{page}");
    let gone = app.http.get(format!("{}{open}/api/logo", app.base)).send().await.unwrap();
    assert_eq!(expect(gone, StatusCode::NOT_FOUND).await["error"]["code"], "not_found");
}

#[tokio::test]
async fn the_account_reads_its_logo_back_for_the_dashboards_preview() {
    let app = spawn_app().await;
    let (admin, path) = (app.admin(), "/api/account/branding/logo");
    let none = app.request(Method::GET, path, &admin).send().await.unwrap();
    assert_eq!(expect(none, StatusCode::NOT_FOUND).await["error"]["code"], "not_found");
    let logo = demo_png(48, 24, 3);
    put_logo(&app, &admin, "image/png", logo.clone(), StatusCode::OK).await;
    for token in [admin.clone(), app.viewer()] {
        let read = app.request(Method::GET, path, &token).send().await.unwrap();
        assert_eq!(read.status(), StatusCode::OK);
        assert_eq!(read.headers()["content-type"], "image/png");
        assert_eq!(read.headers()["cache-control"], "private, no-store");
        assert_eq!(read.headers()["x-content-type-options"], "nosniff");
        assert_eq!(read.bytes().await.unwrap().to_vec(), logo, "the bytes uploaded");
    }
    let (_, other) = app.other_account(true).await;
    let theirs = app.request(Method::GET, path, &other).send().await.unwrap();
    assert_eq!(theirs.status(), StatusCode::NOT_FOUND, "another account has no logo of its own");
    app.send(Method::DELETE, path, &admin, Value::Null, StatusCode::OK).await;
    let gone = app.request(Method::GET, path, &admin).send().await.unwrap();
    assert_eq!(gone.status(), StatusCode::NOT_FOUND);
}

/// Mean difference per channel between two images of the same size, over a
/// region given in fractions of the image.
fn difference(a: &image::RgbaImage, b: &image::RgbaImage, (x0, x1, y0, y1): (f64, f64, f64, f64)) -> f64 {
    let (w, h) = (a.width() as f64, a.height() as f64);
    let (mut sum, mut n) = (0u64, 0u64);
    for y in (y0 * h) as u32..(y1 * h) as u32 {
        for x in (x0 * w) as u32..(x1 * w) as u32 {
            let (p, q) = (a.get_pixel(x, y), b.get_pixel(x, y));
            sum += (0..3).map(|c| p[c].abs_diff(q[c]) as u64).sum::<u64>();
            n += 3;
        }
    }
    sum as f64 / n as f64
}

#[tokio::test]
async fn the_watermark_is_burned_into_large_previews_of_preview_only_links_and_nowhere_else() {
    let app = spawn_app().await;
    let admin = app.admin();
    let path = "/api/account/branding";
    let mark = json!({"watermark_text": "PROOF · Studio Ada"});
    app.send(Method::PATCH, path, &app.viewer(), mark.clone(), StatusCode::FORBIDDEN).await;
    let refused =
        app.send(Method::PATCH, path, &admin, json!({"watermark_text": "a\u{7}"}), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(refused.await["error"]["field"], "watermark_text");
    app.send(Method::PATCH, path, &admin, mark, StatusCode::OK).await;

    let (id, (normal, normal_session), (proofs, proofs_session)) = a_photo_shared_twice(&app, 1600, 1000).await;
    let url = |link: &str, kind: &str| format!("{}{link}/api/files/{id}/{kind}", app.base);

    let plain = rendition(&app.http, &url(&normal, "preview"), Some(&normal_session)).await;
    let marked = rendition(&app.http, &url(&proofs, "preview"), Some(&proofs_session)).await;
    assert_eq!(plain.dimensions(), marked.dimensions());
    let middle = difference(&plain, &marked, (0.25, 0.75, 0.4, 0.6));
    let corner = difference(&plain, &marked, (0.0, 0.1, 0.0, 0.1));
    eprintln!("watermark: mean difference {middle:.1} in the middle band, {corner:.1} in a corner");
    assert!(middle > 5.0 && corner < 2.0, "middle {middle}, corner {corner}");
    // Through the normal link the preview stays plain; grid renditions are never marked.
    let again = rendition(&app.http, &url(&normal, "preview"), Some(&normal_session)).await;
    assert_eq!(difference(&plain, &again, (0.0, 1.0, 0.0, 1.0)), 0.0);
    let grid = rendition(&app.http, &url(&normal, "thumbnail"), Some(&normal_session)).await;
    let proof_grid = rendition(&app.http, &url(&proofs, "thumbnail"), Some(&proofs_session)).await;
    assert_eq!(grid, proof_grid);
    // Made once and stored beside the version: every view serves the same bytes.
    let stored = app.library.catalog().file(id.parse().unwrap()).await.unwrap().unwrap();
    let key = publinks_domain::renditions::watermarked_key(&stored.current.blob_key);
    assert!(app.blob_exists(&key).await);
    assert_eq!(rendition(&app.http, &url(&proofs, "preview"), Some(&proofs_session)).await, marked);

    // A new watermark makes a new one (the placeholder meanwhile); the old one is not served.
    app.send(Method::PATCH, path, &admin, json!({"watermark_text": "SAMPLE"}), StatusCode::OK).await;
    let renewed = rendition(&app.http, &url(&proofs, "preview"), Some(&proofs_session)).await;
    assert!(difference(&marked, &renewed, (0.25, 0.75, 0.4, 0.6)) > 3.0, "the new text is drawn");
    assert!(difference(&plain, &renewed, (0.25, 0.75, 0.4, 0.6)) > 3.0, "and marked still");
    // Without a watermark, a preview-only link serves the plain preview.
    app.send(Method::PATCH, path, &admin, json!({"watermark_text": null}), StatusCode::OK).await;
    let unmarked = rendition(&app.http, &url(&proofs, "preview"), Some(&proofs_session)).await;
    assert_eq!(difference(&plain, &unmarked, (0.0, 1.0, 0.0, 1.0)), 0.0);
    // Deleted with the file. A watermark job still running then (the one
    // the renewed text asked for) removes what it wrote once it sees the
    // version gone, so the key goes within moments, not always at once.
    app.send(Method::DELETE, &format!("/api/files/{id}"), &admin, Value::Null, StatusCode::NO_CONTENT).await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while app.blob_exists(&key).await {
        assert!(std::time::Instant::now() < deadline, "{key} went with the file");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// A logo of `width`×`height`: a solid `colour` disc on a transparent
/// ground (PNG), or on black (JPEG, which has no transparency).
fn disc_logo(width: u32, height: u32, colour: [u8; 3], format: image::ImageFormat) -> Vec<u8> {
    let (cx, cy, r) = (width as f64 / 2.0, height as f64 / 2.0, width.min(height) as f64 * 0.45);
    let img = image::RgbaImage::from_fn(width, height, |x, y| {
        let inside = (x as f64 - cx).powi(2) + (y as f64 - cy).powi(2) < r * r;
        image::Rgba(if inside { [colour[0], colour[1], colour[2], 255] } else { [0, 0, 0, 0] })
    });
    let img = match format {
        image::ImageFormat::Jpeg => image::DynamicImage::ImageRgb8(image::DynamicImage::ImageRgba8(img).to_rgb8()),
        _ => image::DynamicImage::ImageRgba8(img),
    };
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, format).unwrap();
    out.into_inner()
}

#[tokio::test]
async fn the_logo_as_watermark_is_blended_into_large_previews_of_preview_only_links_and_a_new_logo_remakes_them() {
    let app = spawn_app().await;
    let admin = app.admin();
    let path = "/api/account/branding";
    let choose = json!({"watermark_logo": true});
    app.send(Method::PATCH, path, &app.viewer(), choose.clone(), StatusCode::FORBIDDEN).await;
    let refused = app.send(Method::PATCH, path, &admin, choose.clone(), StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(refused["error"]["field"], "watermark_logo", "no logo yet: {refused}");
    let refused =
        app.send(Method::PATCH, path, &admin, json!({"watermark_logo": "yes"}), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(refused.await["error"]["field"], "watermark_logo");
    let huge = put_logo(&app, &admin, "image/png", demo_png(5000, 10, 1), StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(huge["error"]["field"], "logo", "{huge}");
    put_logo(&app, &admin, "image/png", disc_logo(240, 240, [230, 0, 200], image::ImageFormat::Png), StatusCode::OK)
        .await;
    let text = json!({"watermark_text": "PROOF"});
    app.send(Method::PATCH, path, &admin, text, StatusCode::OK).await;
    let branding = app.send(Method::PATCH, path, &admin, choose, StatusCode::OK).await;
    assert_eq!((branding["watermark_logo"].clone(), branding["watermark_text"].clone()), (json!(true), json!("PROOF")));
    assert_eq!(app.get("/api/account", &admin, StatusCode::OK).await["branding"]["watermark_logo"], true);

    let (id, (normal, normal_session), (proofs, proofs_session)) = a_photo_shared_twice(&app, 800, 500).await;
    let url = |link: &str| format!("{}{link}/api/files/{id}/preview", app.base);

    let plain = rendition(&app.http, &url(&normal), Some(&normal_session)).await;
    let marked = rendition(&app.http, &url(&proofs), Some(&proofs_session)).await;
    assert_eq!(plain.dimensions(), marked.dimensions());
    // The disc fills 40% of the height around the centre; the text's band is not drawn.
    let centre = difference(&plain, &marked, (0.45, 0.55, 0.42, 0.58));
    let corner = difference(&plain, &marked, (0.0, 0.1, 0.0, 0.1));
    let text_band = difference(&plain, &marked, (0.05, 0.3, 0.45, 0.55));
    eprintln!(
        "logo watermark: mean difference {centre:.1} in the centre, {corner:.1} in a corner, {text_band:.1} on the band"
    );
    assert!(centre > 20.0 && corner < 2.0 && text_band < 2.0, "centre {centre}, corner {corner}, band {text_band}");
    let centre_pixel = marked.get_pixel(marked.width() / 2, marked.height() / 2);
    let plain_pixel = plain.get_pixel(plain.width() / 2, plain.height() / 2);
    assert!(centre_pixel[0] > plain_pixel[0] && centre_pixel[1] < plain_pixel[1], "magenta blended in");
    assert!(centre_pixel[1] > 10, "semi-transparent: the photo shows through: {centre_pixel:?}");
    let again = rendition(&app.http, &url(&normal), Some(&normal_session)).await;
    assert_eq!(difference(&plain, &again, (0.0, 1.0, 0.0, 1.0)), 0.0, "a normal link serves the plain preview");
    assert_eq!(rendition(&app.http, &url(&proofs), Some(&proofs_session)).await, marked, "made once");

    // The logo in use cannot be removed; a new one (a JPEG) makes new previews.
    let logo = "/api/account/branding/logo";
    let refused = app.send(Method::DELETE, logo, &admin, Value::Null, StatusCode::CONFLICT).await;
    assert_eq!(refused["error"]["code"], "logo_is_watermark");
    put_logo(&app, &admin, "image/jpeg", disc_logo(300, 150, [0, 220, 40], image::ImageFormat::Jpeg), StatusCode::OK)
        .await;
    let renewed = rendition(&app.http, &url(&proofs), Some(&proofs_session)).await;
    assert!(difference(&marked, &renewed, (0.45, 0.55, 0.42, 0.58)) > 20.0, "the new logo is drawn");
    let green = renewed.get_pixel(renewed.width() / 2, renewed.height() / 2);
    assert!(green[1] > plain_pixel[1] && green[0] < plain_pixel[0], "green blended in: {green:?}");
    // The JPEG's black ground (300×150 → 40% of the width) reaches sideways beyond the disc.
    assert!(difference(&plain, &renewed, (0.33, 0.38, 0.45, 0.55)) > 10.0, "its ground is blended too");

    // Back to the text; then no watermark and the logo may go.
    app.send(Method::PATCH, path, &admin, json!({"watermark_logo": false}), StatusCode::OK).await;
    let text_marked = rendition(&app.http, &url(&proofs), Some(&proofs_session)).await;
    assert!(difference(&plain, &text_marked, (0.25, 0.75, 0.4, 0.6)) > 3.0, "the text is burned in again");
    assert!(difference(&renewed, &text_marked, (0.45, 0.55, 0.42, 0.58)) > 10.0, "not the logo");
    app.send(Method::PATCH, path, &admin, json!({"watermark_text": null}), StatusCode::OK).await;
    app.send(Method::DELETE, logo, &admin, Value::Null, StatusCode::OK).await;
    let unmarked = rendition(&app.http, &url(&proofs), Some(&proofs_session)).await;
    assert_eq!(difference(&plain, &unmarked, (0.0, 1.0, 0.0, 1.0)), 0.0);
}

/// The header of an animated WebP (a 64×32 canvas whose extended header
/// sets the animation flag), which the worker could never decode.
fn animated_webp() -> Vec<u8> {
    let mut chunk = b"VP8X".to_vec();
    chunk.extend(10u32.to_le_bytes());
    chunk.extend([0x02, 0, 0, 0, 63, 0, 0, 31, 0, 0]);
    let mut file = b"RIFF".to_vec();
    file.extend((4 + chunk.len() as u32).to_le_bytes());
    file.extend(b"WEBP");
    file.extend(chunk);
    file
}

#[tokio::test]
async fn a_logo_whose_body_is_broken_is_tried_once_and_a_new_logo_remakes_the_previews() {
    use publinks_domain::renditions::watermark_jobs_asked;
    let app = spawn_app().await;
    let admin = app.admin();
    // A PNG whose signature and header (64×64) are sound, and whose image data is not.
    let mut broken = demo_png(64, 64, 1)[..33].to_vec();
    broken.extend(16u32.to_be_bytes());
    broken.extend(b"IDAT");
    broken.extend([0x5a; 20]);
    broken.extend([0, 0, 0, 0]);
    broken.extend(b"IEND");
    broken.extend([0xae, 0x42, 0x60, 0x82]);
    put_logo(&app, &admin, "image/png", broken, StatusCode::OK).await;
    app.send(Method::PATCH, "/api/account/branding", &admin, json!({"watermark_logo": true}), StatusCode::OK).await;
    let (id, _, (proofs, session)) = a_photo_shared_twice(&app, 400, 250).await;
    let url = format!("{}{proofs}/api/files/{id}/preview", app.base);
    let view = || async { app.http.get(&url).bearer_auth(&session).send().await.unwrap().status() };

    // The placeholder, until the worker has tried the logo and noted its failure.
    let mut settled = None;
    for _ in 0..300 {
        match view().await {
            StatusCode::ACCEPTED => tokio::time::sleep(std::time::Duration::from_millis(50)).await,
            status => {
                settled = Some(status);
                break;
            }
        }
    }
    assert_eq!(settled, Some(StatusCode::NOT_FOUND), "a watermark that cannot be made is no preview, not a wait");
    let asked = watermark_jobs_asked();
    for _ in 0..5 {
        assert_eq!(view().await, StatusCode::NOT_FOUND);
    }
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert_eq!(watermark_jobs_asked(), asked, "views of a failed watermark queue nothing");

    // A new, sound logo is a new watermark: the preview is made with it.
    put_logo(&app, &admin, "image/png", disc_logo(120, 120, [230, 0, 200], image::ImageFormat::Png), StatusCode::OK)
        .await;
    let marked = rendition(&app.http, &url, Some(&session)).await;
    assert!(watermark_jobs_asked() > asked);
    let centre = marked.get_pixel(marked.width() / 2, marked.height() / 2);
    assert!(centre[0] > centre[1], "magenta blended in: {centre:?}");
}

#[tokio::test]
async fn a_preview_that_cannot_take_the_watermark_fails_alone() {
    use publinks_domain::renditions::{RenditionSize, rendition_key};
    let app = spawn_app().await;
    let admin = app.admin();
    let mark = json!({"watermark_text": "© Studio Ada — proof"});
    app.send(Method::PATCH, "/api/account/branding", &admin, mark, StatusCode::OK).await;
    let spring = app.folder_id(&["Campaigns", "Spring 2026"]).await;
    let mut ids = Vec::new();
    for (name, seed) in [("damaged.jpg", 3), ("sound.jpg", 4)] {
        let photo = demo_jpeg_with_exif(1600, 1000, seed, "Proof Cam");
        let file = app.upload(&admin, Some(&spring), name, "image/jpeg", &photo).await;
        ids.push(file["id"].as_str().unwrap().to_string());
    }
    let target = json!({"kind": "folder", "id": spring});
    let (normal, normal_session) = share(&app, target.clone(), json!({})).await;
    let (proofs, session) = share(&app, target, json!({"preview_only": true})).await;
    for id in &ids {
        rendition(&app.http, &format!("{}{normal}/api/files/{id}/preview", app.base), Some(&normal_session)).await;
    }
    // One version's large rendition is damaged in storage.
    let damaged = app.library.catalog().file(ids[0].parse().unwrap()).await.unwrap().unwrap();
    app.overwrite_blob(&rendition_key(&damaged.current.blob_key, RenditionSize::Large), b"not a WebP".to_vec()).await;

    let url = |id: &str| format!("{}{proofs}/api/files/{id}/preview", app.base);
    let mut settled = None;
    for _ in 0..300 {
        match app.http.get(url(&ids[0])).bearer_auth(&session).send().await.unwrap().status() {
            StatusCode::ACCEPTED => tokio::time::sleep(std::time::Duration::from_millis(50)).await,
            status => {
                settled = Some(status);
                break;
            }
        }
    }
    assert_eq!(settled, Some(StatusCode::NOT_FOUND), "a preview the watermark cannot go into is no preview");
    // The account's watermark still marks every other preview.
    let marked = rendition(&app.http, &url(&ids[1]), Some(&session)).await;
    let plain =
        rendition(&app.http, &format!("{}{normal}/api/files/{}/preview", app.base, ids[1]), Some(&normal_session))
            .await;
    let middle = difference(&plain, &marked, (0.25, 0.75, 0.4, 0.6));
    assert!(middle > 5.0, "the other preview is watermarked: mean difference {middle:.1} in the middle band");
}
