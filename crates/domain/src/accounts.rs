//! What operators do that no dashboard does: create an account with its first
//! administrator, change its plan, draft feature and link limit, list accounts.
//! Used by the `publinks-admin` command and the demo seed; no actor checks —
//! whoever runs these holds the store's credentials.

use super::library::{NewUser, retry_on_conflict};
use super::model::*;
use super::{DomainError, DomainResult, rules};
use crate::ids::*;
use crate::store::{Catalog, Page, PageRequest};
use chrono::Utc;

/// The largest link limit an operator may set.
pub const MAX_LINK_LIMIT: u32 = 1_000_000;

/// Creates an account (default link limit) and its first administrator.
pub async fn create_account(
    catalog: &dyn Catalog,
    name: &str,
    plan: Plan,
    drafts_enabled: bool,
    admin: NewUser,
) -> DomainResult<(Account, User)> {
    let now = Utc::now();
    let account = Account {
        id: AccountId::new(),
        name: rules::name("name", name)?,
        plan,
        drafts_enabled,
        link_limit: DEFAULT_LINK_LIMIT,
        link_defaults: LinkDefaults::default(),
        branding: Default::default(),
        webhook_events: Vec::new(),
        created_at: now,
        revision: 0,
    };
    let user = User {
        id: admin.id.unwrap_or_default(),
        account_id: account.id,
        name: rules::name("admin_name", &admin.name)?,
        email: rules::email(&admin.email)?,
        role: Role::Admin,
        created_at: now,
    };
    catalog.insert_account(&account).await?;
    catalog.insert_user(&user).await?;
    Ok((account, user))
}

/// Changes to an account; absent fields stay.
#[derive(Clone, Debug, Default)]
pub struct AccountChanges {
    pub plan: Option<Plan>,
    pub drafts_enabled: Option<bool>,
    pub link_limit: Option<u32>,
    pub link_defaults: Option<LinkDefaults>,
}

/// Applies `changes` to an account (retrying if it changes meanwhile).
pub async fn update_account(catalog: &dyn Catalog, id: AccountId, changes: &AccountChanges) -> DomainResult<Account> {
    if let Some(limit) = changes.link_limit
        && !(1..=MAX_LINK_LIMIT).contains(&limit)
    {
        return Err(DomainError::invalid("link_limit", format!("link_limit must be between 1 and {MAX_LINK_LIMIT}")));
    }
    retry_on_conflict(move || async move {
        let mut account = catalog.account(id).await?.ok_or(DomainError::NotFound("account"))?;
        if let Some(plan) = changes.plan {
            account.plan = plan;
        }
        if let Some(drafts) = changes.drafts_enabled {
            account.drafts_enabled = drafts;
        }
        if let Some(limit) = changes.link_limit {
            account.link_limit = limit;
        }
        if let Some(defaults) = changes.link_defaults {
            account.link_defaults = defaults;
        }
        Ok(catalog.replace_account(&account).await?)
    })
    .await
}

/// A page of all accounts, oldest first.
pub async fn list_accounts(catalog: &dyn Catalog, page: &PageRequest) -> DomainResult<Page<Account>> {
    Ok(catalog.list_accounts(page).await?)
}
