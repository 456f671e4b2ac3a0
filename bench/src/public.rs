//! The visitor's hot paths under load: opening an unprotected folder link,
//! listing a 1,000-file folder and opening the largest first page (500
//! subfolders and 200 files), with `wrk` (Debian) on loopback, against a
//! trivial handler (`/healthz`) on the same server in the same run.

use publinks_domain::links::NewLink;
use publinks_domain::model::*;
use std::process::Command;

/// What wrk measured.
struct Load {
    requests_per_second: f64,
    p99_ms: f64,
}

fn wrk(url: &str, seconds: u64) -> Load {
    let out = Command::new("wrk")
        .args(["-t2", "-c32", &format!("-d{seconds}s"), "--latency", url])
        .output()
        .expect("wrk is not installed: run scripts/bench.sh, which installs it");
    let text = String::from_utf8_lossy(&out.stdout);
    let rps = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("Requests/sec:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no Requests/sec in wrk's output:\n{text}"));
    let p99 = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("99%"))
        .map(|v| millis(v.trim()))
        .unwrap_or_else(|| panic!("no 99% line in wrk's output:\n{text}"));
    let non_2xx = text.lines().any(|l| l.contains("Non-2xx"));
    assert!(!non_2xx, "errors under load:\n{text}");
    Load { requests_per_second: rps, p99_ms: p99 }
}

/// wrk prints `812.00us`, `5.12ms` or `1.02s`.
fn millis(v: &str) -> f64 {
    let (num, factor) = if let Some(n) = v.strip_suffix("us") {
        (n, 0.001)
    } else if let Some(n) = v.strip_suffix("ms") {
        (n, 1.0)
    } else if let Some(n) = v.strip_suffix('s') {
        (n, 1000.0)
    } else {
        (v, 1.0)
    };
    num.parse::<f64>().expect("a number") * factor
}

/// Subfolders of the folder whose page is the largest a visitor gets: as
/// many as the first page of a folder shows.
const SUBFOLDERS: usize = 500;
/// Files of that folder: as many as a page reads with its subfolders.
const FILES_READ_AT_ONCE: usize = 200;

pub async fn run(seconds: u64, files: usize) {
    let server = crate::start_server().await;
    let demo = server.app.demo.clone().expect("seeded");
    let library = &server.app.library;
    let admin = library.actor(demo.admin.id).await.unwrap().unwrap();
    let big = library.create_folder(&admin, None, "Big").await.unwrap();
    eprintln!("preparing {files} files...");
    let png = publinks_media::demo_png(4, 4, 1);
    for i in 0..files {
        let purpose = UploadPurpose::NewFile { folder_id: Some(big.id), name: format!("file-{i:04}.png") };
        library.import_file(&admin, purpose, "image/png", png.clone()).await.unwrap();
    }
    let share = |target| NewLink {
        target,
        valid_from: None,
        valid_until: None,
        password: None,
        expose_unpublished: false,
        hide_identifying_metadata: None,
        preview_only: false,
        max_downloads: None,
        max_sessions: None,
    };
    let spring = server
        .app
        .links
        .create(&admin, share(Target::Folder(demo.granted_folder.as_ref().expect("a fresh demo").id)))
        .await
        .unwrap()
        .url;
    let big_link = server.app.links.create(&admin, share(Target::Folder(big.id))).await.unwrap().url;
    // The largest first page a visitor can ask for: as many subfolders as
    // a page shows and a page of files, read and decoded in one store call.
    let many = library.create_folder(&admin, None, "Many").await.unwrap();
    for i in 0..SUBFOLDERS {
        library.create_folder(&admin, Some(many.id), &format!("sub-{i:03}")).await.unwrap();
    }
    for i in 0..FILES_READ_AT_ONCE {
        let purpose = UploadPurpose::NewFile { folder_id: Some(many.id), name: format!("file-{i:03}.png") };
        library.import_file(&admin, purpose, "image/png", png.clone()).await.unwrap();
    }
    let largest_link = server.app.links.create(&admin, share(Target::Folder(many.id))).await.unwrap().url;

    let listing_url = format!("{big_link}/api/folders/root?limit=200");
    let same_bytes = serve_the_same_bytes(&spring, &listing_url).await;

    // Load runs one after another (two cores: the server and wrk share them).
    let baseline = wrk(&format!("{}/healthz", server.base), seconds);
    let open = wrk(&spring, seconds);
    let listing = wrk(&listing_url, seconds);
    let largest = wrk(&largest_link, seconds);
    let baseline_again = wrk(&format!("{}/healthz", server.base), seconds);
    let base_rps = (baseline.requests_per_second + baseline_again.requests_per_second) / 2.0;
    let base_p99 = (baseline.p99_ms + baseline_again.p99_ms) / 2.0;
    let page_alone = wrk(&format!("{same_bytes}/page"), seconds);
    let listing_alone = wrk(&format!("{same_bytes}/listing"), seconds);

    println!("\npublic: wrk -t2 -c32 -d{seconds}s on loopback, embedded store, `server` build");
    println!("baseline: GET /healthz on the same server (mean of a run before and after)");
    crate::row("open a folder link (page), requests/s", "req/s", open.requests_per_second, base_rps);
    crate::row("open a folder link (page), p99 latency", "ms", open.p99_ms, base_p99);
    crate::row(
        &format!("list a {files}-file folder (200/page), requests/s"),
        "req/s",
        listing.requests_per_second,
        base_rps,
    );
    crate::row(&format!("list a {files}-file folder (200/page), p99"), "ms", listing.p99_ms, base_p99);
    crate::row("the largest first page, requests/s", "req/s", largest.requests_per_second, base_rps);
    crate::row("the largest first page, p99", "ms", largest.p99_ms, base_p99);
    println!(
        "  (the largest first page: a folder of {SUBFOLDERS} subfolders and {FILES_READ_AT_ONCE} files, all read at once)"
    );
    use crate::{Bound, target};
    target("the page's rate, of /healthz's", open.requests_per_second / base_rps, Bound::AtLeast(0.20));
    target("the page's p99, ms", open.p99_ms, Bound::AtMost(5.0));
    target("the listing's rate, of /healthz's", listing.requests_per_second / base_rps, Bound::AtLeast(0.10));
    println!(
        "\nthe same answers' bodies from a bare handler that does nothing else (what HTTP and their size cost here)"
    );
    crate::row(
        "open a folder link (page), requests/s",
        "req/s",
        open.requests_per_second,
        page_alone.requests_per_second,
    );
    crate::row(
        &format!("list a {files}-file folder (200/page), requests/s"),
        "req/s",
        listing.requests_per_second,
        listing_alone.requests_per_second,
    );
    crate::row("the bytes alone, page's, against /healthz", "req/s", page_alone.requests_per_second, base_rps);
    crate::row("the bytes alone, listing's, against /healthz", "req/s", listing_alone.requests_per_second, base_rps);
}

/// Fetches the page and the listing once, and serves their bodies (and
/// content types; not their other headers, nor the server's layers) from a
/// bare handler on another loopback port: about the floor of what answering
/// them costs, whatever the server does to make them.
/// Returns that server's address.
async fn serve_the_same_bytes(page: &str, listing: &str) -> String {
    use axum::http::header::CONTENT_TYPE;
    let fetch = |url: String| async move {
        let res = reqwest::get(&url).await.expect("the page answers");
        assert!(res.status().is_success(), "{url}: {}", res.status());
        let kind = res.headers().get(CONTENT_TYPE).expect("a content type").to_str().unwrap().to_string();
        (kind, res.bytes().await.expect("a body"))
    };
    let (page, listing) = (fetch(page.to_string()).await, fetch(listing.to_string()).await);
    eprintln!("page {} bytes, listing {} bytes", page.1.len(), listing.1.len());
    let answer = |(kind, body): (String, axum::body::Bytes)| {
        axum::routing::get(move || {
            let (kind, body) = (kind.clone(), body.clone());
            async move { ([(CONTENT_TYPE, kind)], body) }
        })
    };
    let router = axum::Router::new().route("/page", answer(page)).route("/listing", answer(listing));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await });
    base
}
