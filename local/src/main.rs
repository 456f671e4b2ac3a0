//! `publinks-local`: runs the whole system on this machine, no cloud account.

use clap::Parser;
use publinks_domain::tokens;
use publinks_http::openapi::SPEC_PATH;
use publinks_local::dashboard::{DASHBOARD_PATH, OIDC_VAR};
use publinks_local::{DEMO_LINK_PASSWORD, LocalApp, LocalConfig, REFERENCE_PATH};
use std::path::PathBuf;
use std::time::Duration;

/// Run publinks locally on the embedded store.
#[derive(Parser)]
#[command(version, about)]
struct Args {
    /// Where the database, blobs and keys live (created if missing).
    #[arg(long, env = "PUBLINKS_DATA_DIR", default_value = ".publinks")]
    data_dir: PathBuf,
    /// Address to listen on.
    #[arg(long, env = "PUBLINKS_HOST", default_value = "127.0.0.1")]
    host: String,
    /// Port to listen on (0 picks a free one).
    #[arg(long, env = "PUBLINKS_PORT", default_value_t = 8080)]
    port: u16,
    /// The URL people reach this server at, if not http://HOST:PORT.
    #[arg(long, env = "PUBLIC_BASE_URL")]
    public_base_url: Option<String>,
    /// Do not seed the demo account into an empty store (a demo account
    /// already there still gets its tokens and share links printed).
    #[arg(long)]
    no_demo: bool,
    /// Also write what is printed at start-up (URL, bearer tokens, share
    /// links) as JSON to this file, for scripts such as the API fuzzing.
    #[arg(long, env = "PUBLINKS_INFO_FILE")]
    info_file: Option<PathBuf>,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Archives are built in this process.
    publinks_archive::keep_memory_flat();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info,tower_http=info".into()),
        )
        .init();
    let args = Args::parse();
    let listener = tokio::net::TcpListener::bind((args.host.as_str(), args.port)).await?;
    let addr = listener.local_addr()?;
    let base_url = args.public_base_url.unwrap_or_else(|| format!("http://{addr}"));
    let config = LocalConfig {
        data_dir: args.data_dir.clone(),
        base_url: base_url.clone(),
        seed_demo: !args.no_demo,
        share_demo: true,
        clock: publinks_domain::clock::system(),
        webhook_policy: publinks_domain::webhooks::AddressPolicy::AllowLoopback,
    };
    let app = LocalApp::build(&config).await?;
    let data_dir = args.data_dir.display().to_string();

    println!("\npublinks is running at {base_url}  (data in {data_dir})");
    println!("Open it in a browser for the API reference and the demo's share links.");
    let sign_in = if std::env::var(OIDC_VAR).is_ok_and(|v| !v.trim().is_empty()) {
        "signing in with the OpenID Connect provider of PUBLINKS_DASHBOARD_OIDC"
    } else {
        "local mode: choose a user to sign in as"
    };
    println!("Dashboard: {base_url}{DASHBOARD_PATH}  ({sign_in})");
    let mut info = serde_json::json!({
        "base_url": base_url,
        "reference": format!("{base_url}{REFERENCE_PATH}"),
        "dashboard": format!("{base_url}{DASHBOARD_PATH}"),
    });
    println!("API reference: {base_url}{REFERENCE_PATH}  (OpenAPI document: {base_url}{SPEC_PATH})");
    if let Some(demo) = &app.demo {
        let how =
            if app.seeded { "Seeded the demo account" } else { "The demo account is here from an earlier start:" };
        println!("{how} \"{}\". Bearer tokens, new at every start (valid 7 days):", demo.account.name);
        let mut users = Vec::new();
        for user in [&demo.admin, &demo.restricted, &demo.viewer] {
            let token = tokens::issue(&app.keys.jwt, user.id, Duration::from_secs(7 * 24 * 3600));
            println!("  {:<17} {:?}\n    export TOKEN={token}", user.name, user.role);
            users.push(serde_json::json!({ "id": user.id, "name": user.name, "role": user.role, "token": token }));
        }
        println!("Try:  curl -H \"Authorization: Bearer $TOKEN\" {base_url}/api/me");
        if !app.demo_links.is_empty() {
            println!("Share links to open in a browser:");
        }
        for link in &app.demo_links {
            match &link.password {
                Some(p) => println!("  {} (password: {p})\n    {}", link.what, link.url),
                None => println!("  {}\n    {}", link.what, link.url),
            }
        }
        info["users"] = users.into();
        info["links"] = serde_json::to_value(&app.demo_links)?;
        info["link_password"] = DEMO_LINK_PASSWORD.into();
    } else {
        println!(
            "No demo account in this store. A token for a user: publinks-admin --data-dir {data_dir} token --user <id>"
        );
    }
    let reset = format!("stop the server and delete {data_dir}; the next start seeds a fresh demo");
    println!("To start over: {reset}.");
    info["reset"] = reset.into();
    if let Some(path) = &args.info_file {
        std::fs::write(path, serde_json::to_string_pretty(&info)? + "\n")?;
    }
    println!();
    app.spawn_expiry_sweep(Duration::from_secs(30));
    let service = app.router.clone().into_make_service_with_connect_info::<std::net::SocketAddr>();
    axum::serve(listener, service).with_graceful_shutdown(shutdown()).await?;
    // Visitor activity is written behind the requests: what is still queued goes now.
    if let Some(catalog) = &app.upload_records {
        catalog.settle_activity().await?;
    }
    Ok(())
}

/// Ctrl-C, or SIGTERM (what `docker stop` and systemd send): either stops
/// the server gracefully, so that queued activity is written.
async fn shutdown() {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate => {}
    }
}
