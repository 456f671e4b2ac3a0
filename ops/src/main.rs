//! `publinks-admin`: what no dashboard does — create an account and its first
//! administrator, set an account's plan, draft feature and link limit, list
//! accounts — on the local embedded store or on DynamoDB (the deployed
//! system, configured by the same environment variables as the functions);
//! and prints the OpenAPI document. Every command prints JSON. On the
//! embedded store every command but `init` needs a store to be there.

use clap::{Parser, Subcommand, ValueEnum};
use publinks_aws::{AwsClients, AwsConfig};
use publinks_domain::accounts::{self, AccountChanges};
use publinks_domain::ids::{AccountId, UserId};
use publinks_domain::library::NewUser;
use publinks_domain::model::{Plan, Role};
use publinks_domain::store::{Catalog, PageRequest};
use publinks_domain::tokens;
use publinks_embedded::{EmbeddedCatalog, load_or_create_keys};
use publinks_http::openapi;
use serde_json::json;
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Parser)]
#[command(version, about)]
struct Args {
    /// Which store to work on.
    #[arg(long, value_enum, default_value_t = Store::Embedded)]
    store: Store,
    /// The local server's data directory (embedded store). It must hold a
    /// store already (the server makes one at its first start), except for
    /// `init`, which makes one.
    #[arg(long, env = "PUBLINKS_DATA_DIR", default_value = ".publinks")]
    data_dir: PathBuf,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum Store {
    /// `<data-dir>/catalog.sqlite3`, as the local server uses it.
    Embedded,
    /// DynamoDB: tables named by PUBLINKS_CATALOG_TABLE etc., credentials from the usual AWS chain.
    Aws,
}

#[derive(Clone, Copy, ValueEnum)]
enum PlanArg {
    Enterprise,
    Standard,
}

impl From<PlanArg> for Plan {
    fn from(p: PlanArg) -> Self {
        match p {
            PlanArg::Enterprise => Plan::Enterprise,
            PlanArg::Standard => Plan::Standard,
        }
    }
}

#[derive(Subcommand)]
enum Command {
    /// Creates an empty store in --data-dir (embedded store only): the one
    /// command that makes a store; the others refuse a directory without one.
    Init,
    /// Creates an account and its first administrator.
    CreateAccount {
        #[arg(long)]
        name: String,
        #[arg(long, value_enum, default_value_t = PlanArg::Enterprise)]
        plan: PlanArg,
        /// Turn the draft-assets feature on.
        #[arg(long)]
        drafts: bool,
        #[arg(long)]
        admin_name: String,
        #[arg(long)]
        admin_email: String,
        /// The administrator's user id: in AWS, the `sub` of their JWTs from your identity provider.
        #[arg(long)]
        admin_id: Option<UserId>,
    },
    /// Lists every account.
    ListAccounts,
    /// Sets an account's plan.
    SetPlan {
        #[arg(long)]
        account: AccountId,
        #[arg(long, value_enum)]
        plan: PlanArg,
    },
    /// Turns an account's draft-assets feature on or off.
    SetDrafts {
        #[arg(long)]
        account: AccountId,
        #[arg(long, action = clap::ArgAction::Set)]
        enabled: bool,
    },
    /// Sets how many public links an account may have.
    SetLinkLimit {
        #[arg(long)]
        account: AccountId,
        #[arg(long)]
        limit: u32,
    },
    /// Prints a bearer token for a user of the local server (embedded store only).
    Token {
        #[arg(long)]
        user: UserId,
        #[arg(long, default_value_t = 7)]
        days: u64,
    },
    /// Prints the OpenAPI document of the JSON APIs (`./scripts/openapi.sh` writes it to `api/openapi.json`).
    Openapi,
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    if let Command::Openapi = args.command {
        println!("{}", openapi::openapi().to_pretty_json().expect("the document serialises"));
        return;
    }
    if let Err(e) = run(args).await {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

/// The embedded store's database in a data directory.
fn catalog_path(data_dir: &Path) -> PathBuf {
    data_dir.join("catalog.sqlite3")
}

/// Makes an empty store (and the keys the local server signs with) in the
/// data directory, unless one is there; says which.
fn init(data_dir: &Path) -> Result<serde_json::Value, String> {
    let path = catalog_path(data_dir);
    let existed = path.is_file();
    std::fs::create_dir_all(data_dir).map_err(|e| format!("{}: {e}", data_dir.display()))?;
    EmbeddedCatalog::open(&path).map_err(|e| e.to_string())?;
    load_or_create_keys(&data_dir.join("keys.json")).map_err(|e| e.to_string())?;
    Ok(json!({"data_dir": data_dir.display().to_string(), "created": !existed}))
}

async fn catalog(args: &Args) -> Result<Box<dyn Catalog>, String> {
    match args.store {
        Store::Embedded => {
            // Never a new empty store by accident (a typo, the wrong directory).
            let path = catalog_path(&args.data_dir);
            if !path.is_file() {
                let dir = args.data_dir.display();
                return Err(format!(
                    "no publinks store in {dir} (looked for {}). Give --data-dir (or PUBLINKS_DATA_DIR) the \
                     local server's data directory, or make an empty store there with: \
                     publinks-admin --data-dir {dir} init",
                    path.display()
                ));
            }
            let store = EmbeddedCatalog::open(&path).map_err(|e| e.to_string())?;
            Ok(Box::new(store))
        }
        Store::Aws => {
            let config = AwsConfig::from_env().map_err(|e| e.to_string())?;
            // An operator's workstation: credentials from profile files, web identity or instance metadata.
            let clients = AwsClients::from_sdk_config(&config.sdk_config_from_default_chain().await);
            Ok(Box::new(config.catalog(&clients.dynamodb)))
        }
    }
}

async fn run(args: Args) -> Result<(), String> {
    if let Command::Init = args.command {
        if !matches!(args.store, Store::Embedded) {
            return Err("init makes a local data directory; the AWS tables come from the SAM template".into());
        }
        println!("{}", serde_json::to_string_pretty(&init(&args.data_dir)?).expect("JSON output"));
        return Ok(());
    }
    let catalog = catalog(&args).await?;
    let catalog = catalog.as_ref();
    let update = |account: AccountId, changes: AccountChanges| async move {
        accounts::update_account(catalog, account, &changes).await.map_err(|e| e.to_string())
    };
    let out = match &args.command {
        Command::CreateAccount { name, plan, drafts, admin_name, admin_email, admin_id } => {
            let admin =
                NewUser { id: *admin_id, name: admin_name.clone(), email: admin_email.clone(), role: Role::Admin };
            let (account, user) = accounts::create_account(catalog, name, (*plan).into(), *drafts, admin)
                .await
                .map_err(|e| e.to_string())?;
            json!({"account": account, "admin": user})
        }
        Command::ListAccounts => {
            let mut all = Vec::new();
            let mut page = PageRequest::first(200);
            loop {
                let batch = accounts::list_accounts(catalog, &page).await.map_err(|e| e.to_string())?;
                all.extend(batch.items);
                match batch.next {
                    Some(c) => page.cursor = Some(c),
                    None => break,
                }
            }
            json!({"accounts": all})
        }
        Command::SetPlan { account, plan } => {
            json!({"account": update(*account, AccountChanges { plan: Some((*plan).into()), ..Default::default() }).await?})
        }
        Command::SetDrafts { account, enabled } => {
            let changes = AccountChanges { drafts_enabled: Some(*enabled), ..Default::default() };
            json!({"account": update(*account, changes).await?})
        }
        Command::SetLinkLimit { account, limit } => {
            let changes = AccountChanges { link_limit: Some(*limit), ..Default::default() };
            json!({"account": update(*account, changes).await?})
        }
        Command::Openapi | Command::Init => unreachable!("done before any store is opened"),
        Command::Token { user, days } => {
            if !matches!(args.store, Store::Embedded) {
                return Err("tokens are issued by your identity provider in AWS; this is for the local server".into());
            }
            catalog.user(*user).await.map_err(|e| e.to_string())?.ok_or("no such user")?;
            let keys = load_or_create_keys(&args.data_dir.join("keys.json")).map_err(|e| e.to_string())?;
            json!({"token": tokens::issue(&keys.jwt, *user, Duration::from_secs(days * 24 * 3600))})
        }
    };
    println!("{}", serde_json::to_string_pretty(&out).expect("JSON output"));
    Ok(())
}
