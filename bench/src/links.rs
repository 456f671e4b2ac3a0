//! Link management at scale: creating 10,000 links through the HTTP API
//! (authentication, permission checks, limits, audit) and listing them all,
//! against the same operations on the raw embedded store in the same run.

use publinks_domain::accounts::{self, AccountChanges};
use publinks_domain::ids::*;
use publinks_domain::links::entry;
use publinks_domain::model::*;
use publinks_domain::store::*;
use publinks_embedded::EmbeddedCatalog;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub async fn run(total: usize, concurrency: usize, rounds: usize) {
    let server = crate::start_server().await;
    let demo = server.app.demo.clone().expect("seeded");
    let catalog = server.app.library.catalog();
    accounts::update_account(
        catalog,
        demo.account.id,
        &AccountChanges { link_limit: Some(total as u32 + 100), ..Default::default() },
    )
    .await
    .unwrap();
    let admin = server.app.library.actor(demo.admin.id).await.unwrap().unwrap();
    let targets = total.div_ceil(5);
    eprintln!("preparing {targets} files...");
    let mut files = Vec::with_capacity(targets);
    let png = publinks_media::demo_png(4, 4, 1);
    for i in 0..targets {
        let purpose = UploadPurpose::NewFile { folder_id: None, name: format!("f{i:05}.png") };
        files.push(server.app.library.import_file(&admin, purpose, "image/png", png.clone()).await.unwrap().id);
    }
    let token = publinks_domain::tokens::issue(&server.app.keys.jwt, demo.admin.id, Duration::from_secs(3600));
    let http = reqwest::Client::new();

    // Create through the API.
    let started = Instant::now();
    let files = Arc::new(files);
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..concurrency {
        let (http, token, base, files, next) =
            (http.clone(), token.clone(), server.base.clone(), files.clone(), next.clone());
        workers.spawn(async move {
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= total {
                    break;
                }
                let body = serde_json::json!({"target": {"kind": "file", "id": files[i / 5]}});
                let res = http.post(format!("{base}/api/links")).bearer_auth(&token).json(&body).send().await.unwrap();
                assert_eq!(res.status(), 201, "{}", res.text().await.unwrap());
            }
        });
    }
    while let Some(done) = workers.join_next().await {
        done.expect("every create succeeds");
    }
    let api_create = total as f64 / started.elapsed().as_secs_f64();

    // The same creates on a raw store.
    let dir = tempfile::tempdir().unwrap();
    let raw: Arc<EmbeddedCatalog> = Arc::new(EmbeddedCatalog::open(&dir.path().join("raw.sqlite3")).unwrap());
    let account = AccountId::new();
    // The same files in an account of the raw store's own: a link is made
    // only while its target is there.
    for chunk in files.chunks(100) {
        for mut file in catalog.files_by_ids(chunk).await.unwrap() {
            file.account_id = account;
            raw.insert_file(&file, &Placement::default()).await.unwrap();
        }
    }
    let raw_targets = files.clone();
    let limits = LinkLimits { per_target: 5, per_account: total as u32 + 100 };
    let started = Instant::now();
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    for _ in 0..concurrency {
        let (raw, targets, next) = (raw.clone(), raw_targets.clone(), next.clone());
        workers.spawn(async move {
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= total {
                    break;
                }
                let link = raw_link(account, Target::File(targets[i / 5]));
                let audit = entry(
                    &link,
                    AuditActor::System { reason: SystemReason::Expired },
                    AuditAction::Created,
                    LinkChanges::default(),
                    link.created_at,
                );
                raw.create_link(&link, limits, &audit).await.unwrap();
            }
        });
    }
    while let Some(done) = workers.join_next().await {
        done.expect("every create succeeds");
    }
    let raw_create = total as f64 / started.elapsed().as_secs_f64();

    // List everything, 200 a page, newest first: through the API, then on
    // the raw store, `rounds` times in turn (one listing lasts a fraction of
    // a second and swings with the machine's load; the medians compare).
    // And the same pages' bodies from a bare handler, listed by the same
    // client: what HTTP and reading the answers cost, whatever making them does.
    let bare = serve_the_same_pages(&http, &server.base, &token).await;
    let mut api_rates = Vec::with_capacity(rounds);
    let mut raw_rates = Vec::with_capacity(rounds);
    let mut bare_rates = Vec::with_capacity(rounds);
    let mut service_rates = Vec::with_capacity(rounds);
    let mut ratios = Vec::with_capacity(rounds);
    for round in 0..rounds {
        let api = list_through_api(&http, &server.base, &token, total).await;
        let raw = list_raw(&raw, account, total).await;
        let bare = list_through_api(&http, &bare, &token, total).await;
        let service = list_through_service(&server.app.links, &admin, total).await;
        eprintln!(
            "round {}: {api:.0} vs {raw:.0} links/s, ratio {:.3}; the bare pages {bare:.0}, the service {service:.0} links/s",
            round + 1,
            api / raw
        );
        api_rates.push(api);
        raw_rates.push(raw);
        bare_rates.push(bare);
        service_rates.push(service);
        ratios.push(api / raw);
    }
    let (api_list, raw_list, bare_list) = (median(&mut api_rates), median(&mut raw_rates), median(&mut bare_rates));
    let service_list = median(&mut service_rates);

    println!(
        "\nlinks: an account of {total} links, {concurrency} concurrent clients, embedded store, \
         listed {rounds} times each (median)"
    );
    crate::row("create a link (HTTP API vs raw store)", "ops/s", api_create, raw_create);
    crate::row("list all links, 200 a page (HTTP vs raw)", "links/s", api_list, raw_list);
    let (low, high) = ratios.iter().fold((f64::MAX, 0f64), |(l, h), r| (l.min(*r), h.max(*r)));
    println!("  each round's ratio (listing then raw): median {:.3}, from {low:.3} to {high:.3}", median(&mut ratios));
    crate::target("listing the links, of the raw store's rate", api_list / raw_list, crate::Bound::AtLeast(0.5));
    crate::row("list all links (HTTP vs a bare handler)", "links/s", api_list, bare_list);
    crate::row("  the bare handler against the raw store", "links/s", bare_list, raw_list);
    crate::row("  the link service (no HTTP) against the raw store", "links/s", service_list, raw_list);
}

/// Lists every link of the actor's account through the link service, in
/// process (what the API's handler calls), 200 a page; returns links per second.
async fn list_through_service(
    links: &publinks_domain::links::LinkService,
    actor: &publinks_domain::access::Actor,
    total: usize,
) -> f64 {
    let started = Instant::now();
    let mut page = PageRequest::first(200);
    let mut seen = 0;
    loop {
        let batch = links.list_account(actor, None, None, None, true, &page).await.unwrap();
        seen += batch.items.len();
        match batch.next {
            Some(c) => page.cursor = Some(c),
            None => break,
        }
    }
    assert!(seen >= total, "the service lists every link");
    seen as f64 / started.elapsed().as_secs_f64()
}

/// Lists every page of `GET /api/links` once and serves their bodies (and
/// content type, not the API's other headers), by cursor, from a bare
/// handler on another loopback port (no authentication, no store, no
/// layers): about the floor of what a listing through HTTP costs this
/// client. Returns that server's address.
async fn serve_the_same_pages(http: &reqwest::Client, base: &str, token: &str) -> String {
    use axum::extract::Query;
    use std::collections::HashMap;
    let mut pages: HashMap<String, axum::body::Bytes> = HashMap::new();
    let mut cursor = String::new();
    loop {
        let res = http.get(format!("{base}/api/links?limit=200{cursor}")).bearer_auth(token).send().await.unwrap();
        assert!(res.status().is_success(), "{}", res.status());
        let body = res.bytes().await.unwrap();
        let page: ListedPage = serde_json::from_slice(&body).unwrap();
        pages.insert(cursor.trim_start_matches("&cursor=").to_string(), body);
        match page.next_cursor {
            Some(c) => cursor = format!("&cursor={c}"),
            None => break,
        }
    }
    let pages = Arc::new(pages);
    let router = axum::Router::new().route(
        "/api/links",
        axum::routing::get(move |Query(query): Query<HashMap<String, String>>| {
            let pages = pages.clone();
            async move {
                let cursor = query.get("cursor").map_or("", String::as_str);
                let body = pages.get(cursor).expect("a cursor of the pages listed (URL-safe base64)").clone();
                ([(axum::http::header::CONTENT_TYPE, "application/json")], body)
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let bare = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await });
    bare
}

/// Lists every link of the caller's account through `GET /api/links`, 200 a
/// page; returns links per second.
async fn list_through_api(http: &reqwest::Client, base: &str, token: &str, total: usize) -> f64 {
    let started = Instant::now();
    let mut cursor = String::new();
    let mut seen = 0;
    let mut ids = std::collections::HashSet::with_capacity(total);
    loop {
        let page: ListedPage = http
            .get(format!("{base}/api/links?limit=200{cursor}"))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        seen += page.items.len();
        ids.extend(page.items.into_iter().map(|l| l.id));
        match page.next_cursor {
            Some(c) => cursor = format!("&cursor={c}"),
            None => break,
        }
    }
    let rate = seen as f64 / started.elapsed().as_secs_f64();
    assert_eq!(ids.len(), seen, "every link listed once");
    assert!(seen >= total);
    rate
}

/// Lists every link of `account` on the raw store, 200 a page; returns links per second.
async fn list_raw(raw: &EmbeddedCatalog, account: AccountId, total: usize) -> f64 {
    let started = Instant::now();
    let mut page = PageRequest::first(200);
    let query = LinkQuery { kind: None, state: None, newest_first: true, now: chrono::Utc::now() };
    let mut raw_seen = 0;
    loop {
        let batch = raw.links_of_account(account, &query, &page).await.unwrap();
        raw_seen += batch.items.len();
        match batch.next {
            Some(c) => page.cursor = Some(c),
            None => break,
        }
    }
    let rate = raw_seen as f64 / started.elapsed().as_secs_f64();
    assert_eq!(raw_seen, total, "the raw store lists every link");
    rate
}

/// The middle value (the upper one of an even count).
fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// A page of `GET /api/links` as a client reads it: typed, what it uses
/// (parsed into a `serde_json::Value` tree, building the tree cost about as
/// much as the server's whole answer and was counted against the API).
#[derive(serde::Deserialize)]
struct ListedPage {
    items: Vec<ListedLink>,
    next_cursor: Option<String>,
}

/// A listed link: its id (every other field is read, checked JSON, and left).
#[derive(serde::Deserialize)]
struct ListedLink {
    id: LinkId,
}

/// A link on a file at the top of the tree (its placement is empty).
fn raw_link(account: AccountId, target: Target) -> Link {
    let id = LinkId::new();
    let now = chrono::Utc::now();
    Link {
        id,
        account_id: account,
        target,
        token_hash: format!("{:064x}", id.0.as_u128()),
        token_seed: id.to_string(),
        valid_from: None,
        valid_until: None,
        password_hash: None,
        password_version: 0,
        expose_unpublished: false,
        hide_identifying_metadata: false,
        preview_only: false,
        created_by: UserId::new(),
        created_at: now,
        updated_at: now,
        revision: 0,
        placement: Some(Placement::default()),
        max_downloads: None,
        max_sessions: None,
        exhausted_at: None,
    }
}
