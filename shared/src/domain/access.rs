//! Who may do what. Roles give a level on the whole library; restricted users
//! get levels only through grants, and a grant on a folder covers everything
//! under it. An item the caller cannot even view is reported as not found, so
//! nothing leaks its existence.

use super::model::*;
use super::{DomainError, DomainResult};
use crate::ids::FolderId;
use crate::store::Catalog;

/// How deep a folder tree may go; also bounds every walk up the tree.
pub const MAX_FOLDER_DEPTH: usize = 64;

/// The signed-in caller, resolved from the identity the request carries.
#[derive(Clone, Debug)]
pub struct Actor {
    pub user: User,
    pub account: Account,
}

impl Actor {
    /// The level the role gives on every item of the account (`None`:
    /// grants only, or no library access at all).
    pub fn role_level(&self) -> Option<Permission> {
        match self.user.role {
            Role::Admin | Role::Developer | Role::FullAccess => Some(Permission::Manage),
            Role::ViewOnly => Some(Permission::View),
            Role::Restricted | Role::Billing => None,
        }
    }

    /// Refuses anyone but account administrators.
    pub fn require_admin(&self) -> DomainResult<()> {
        if self.user.role == Role::Admin {
            Ok(())
        } else {
            Err(DomainError::Forbidden("only account administrators may do this".into()))
        }
    }

    /// Refuses callers whose role does not give `level` on the whole library
    /// (for things that have no item to hold a grant: the top of the tree, new collections).
    pub fn require_role_level(&self, level: Permission) -> DomainResult<()> {
        match self.role_level() {
            Some(l) if l >= level => Ok(()),
            _ => Err(DomainError::Forbidden(format!(
                "your role does not give {} permission on the whole library",
                permission_name(level)
            ))),
        }
    }
}

/// The lowercase name of a permission, as the API spells it.
pub fn permission_name(level: Permission) -> &'static str {
    match level {
        Permission::View => "view",
        Permission::Edit => "edit",
        Permission::Manage => "manage",
    }
}

fn what(target: &Target) -> &'static str {
    match target {
        Target::File(_) => "file",
        Target::Folder(_) => "folder",
        Target::Collection(_) => "collection",
    }
}

/// A folder and the folders above it, nearest first.
pub async fn folder_chain(catalog: &dyn Catalog, start: Option<FolderId>) -> DomainResult<Vec<Folder>> {
    let mut chain = Vec::new();
    let mut next = start;
    while let Some(id) = next {
        if chain.len() >= MAX_FOLDER_DEPTH {
            return Err(DomainError::Store(crate::store::StoreError::Corrupt(format!(
                "folder {id} is deeper than {MAX_FOLDER_DEPTH} levels"
            ))));
        }
        let folder = catalog.folder(id).await?.ok_or(DomainError::NotFound("folder"))?;
        next = folder.parent_id;
        chain.push(folder);
    }
    Ok(chain)
}

/// The caller's level on `target`, whose folder chain (for files and folders)
/// is `chain`: the folder the item is in, or the folder itself, then upwards.
pub async fn level_on(
    catalog: &dyn Catalog,
    actor: &Actor,
    target: &Target,
    chain: &[Folder],
) -> DomainResult<Option<Permission>> {
    if actor.user.role != Role::Restricted {
        return Ok(actor.role_level());
    }
    let grants = catalog.grants_of_user(actor.user.id).await?;
    let covers = |g: &Grant| {
        g.target == *target
            || matches!((g.target, target), (Target::Folder(f), Target::File(_) | Target::Folder(_)) if chain.iter().any(|c| c.id == f))
    };
    Ok(grants.iter().filter(|g| covers(g)).map(|g| g.level).max())
}

/// Succeeds if the caller has at least `needed` on `target`. No access at all
/// is `NotFound`; too little is `Forbidden`.
pub async fn require(
    catalog: &dyn Catalog,
    actor: &Actor,
    target: &Target,
    chain: &[Folder],
    needed: Permission,
) -> DomainResult<()> {
    match level_on(catalog, actor, target, chain).await? {
        None => Err(DomainError::NotFound(what(target))),
        Some(level) if level >= needed => Ok(()),
        Some(_) => Err(DomainError::Forbidden(format!(
            "you need {} permission on this {}",
            permission_name(needed),
            what(target)
        ))),
    }
}
