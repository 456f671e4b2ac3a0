//! Who may do what. Roles give a level on the whole library; restricted users
//! get levels only through grants, and a grant on a folder covers everything
//! under it. An item the caller cannot even view is reported as not found, so
//! nothing leaks its existence.

use super::model::*;
use super::{DomainError, DomainResult};
use crate::ids::FolderId;
use crate::store::Catalog;
use std::collections::{HashMap, HashSet};

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

/// A tree deeper than any folder may be: stored data that cannot be right.
pub(crate) fn too_deep(id: FolderId) -> DomainError {
    DomainError::Store(crate::store::StoreError::Corrupt(format!(
        "folder {id} is deeper than {MAX_FOLDER_DEPTH} levels"
    )))
}

/// A folder and the folders above it, nearest first.
pub async fn folder_chain(catalog: &dyn Catalog, start: Option<FolderId>) -> DomainResult<Vec<Folder>> {
    let mut chain = Vec::new();
    let mut next = start;
    while let Some(id) = next {
        if chain.len() >= MAX_FOLDER_DEPTH {
            return Err(too_deep(id));
        }
        let folder = catalog.folder(id).await?.ok_or(DomainError::NotFound("folder"))?;
        next = folder.parent_id;
        chain.push(folder);
    }
    Ok(chain)
}

/// The folders from `start` up to `root` (both included), nearest first, if
/// `root` is `start` or above it; `None` if it is not. Reads no further up
/// than `root`, nor `root` itself when its record is `known`: what a shared
/// folder's pages need, whatever its depth.
pub async fn folder_chain_up_to(
    catalog: &dyn Catalog,
    start: Option<FolderId>,
    root: FolderId,
    known: Option<&Folder>,
) -> DomainResult<Option<Vec<Folder>>> {
    let mut chain = Vec::new();
    let mut next = start;
    while let Some(id) = next {
        if chain.len() >= MAX_FOLDER_DEPTH {
            return Err(too_deep(id));
        }
        let read = match known.filter(|k| k.id == id && id == root) {
            Some(folder) => Some(folder.clone()),
            None => catalog.folder(id).await?,
        };
        let Some(folder) = read else { return Ok(None) };
        next = folder.parent_id;
        chain.push(folder);
        if id == root {
            return Ok(Some(chain));
        }
    }
    Ok(None)
}

/// What gives a caller their levels: their role, or (restricted users) their
/// grants, read once for as many items as need checking.
pub struct Levels {
    role: Option<Permission>,
    /// `None` unless the caller is restricted.
    grants: Option<Vec<Grant>>,
}

impl Levels {
    /// The caller's levels (one read of their grants if they are restricted).
    pub async fn of(catalog: &dyn Catalog, actor: &Actor) -> DomainResult<Self> {
        let grants = match actor.user.role {
            Role::Restricted => Some(catalog.grants_of_user(actor.user.id).await?),
            _ => None,
        };
        Ok(Levels { role: actor.role_level(), grants })
    }

    /// The level on `target`, whose folder chain (for files and folders) is
    /// `chain`: the folder the item is in, or the folder itself, then upwards.
    pub fn on(&self, target: &Target, chain: &[Folder]) -> Option<Permission> {
        let Some(grants) = &self.grants else { return self.role };
        let covers = |g: &Grant| {
            g.target == *target
                || matches!((g.target, target), (Target::Folder(f), Target::File(_) | Target::Folder(_)) if chain.iter().any(|c| c.id == f))
        };
        grants.iter().filter(|g| covers(g)).map(|g| g.level).max()
    }

    /// Succeeds if the level on `target` is at least `needed`. No access at
    /// all is `NotFound`; too little is `Forbidden`.
    pub fn require(&self, target: &Target, chain: &[Folder], needed: Permission) -> DomainResult<()> {
        match self.on(target, chain) {
            None => Err(DomainError::NotFound(what(target))),
            Some(level) if level >= needed => Ok(()),
            Some(_) => Err(DomainError::Forbidden(format!(
                "you need {} permission on this {}",
                permission_name(needed),
                what(target)
            ))),
        }
    }
}

/// The caller's level on `target`, whose folder chain (for files and folders)
/// is `chain`: the folder the item is in, or the folder itself, then upwards.
pub async fn level_on(
    catalog: &dyn Catalog,
    actor: &Actor,
    target: &Target,
    chain: &[Folder],
) -> DomainResult<Option<Permission>> {
    Ok(Levels::of(catalog, actor).await?.on(target, chain))
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
    Levels::of(catalog, actor).await?.require(target, chain, needed)
}

/// Folders read by id in batches and kept: the chains above many items cost
/// one round trip per level of the tree (per 100 folders on DynamoDB), not
/// one per folder.
#[derive(Debug, Default)]
pub struct FolderTree {
    folders: HashMap<FolderId, Folder>,
}

impl FolderTree {
    /// Reads `starts` and the folders above them, a level at a time; above
    /// `stop` (the shared folder of a link) nothing is read.
    pub async fn load(catalog: &dyn Catalog, starts: Vec<FolderId>, stop: Option<FolderId>) -> DomainResult<Self> {
        let mut tree = FolderTree::default();
        let mut frontier: HashSet<FolderId> = starts.into_iter().collect();
        for _ in 0..=MAX_FOLDER_DEPTH {
            frontier.retain(|id| !tree.folders.contains_key(id));
            if frontier.is_empty() {
                return Ok(tree);
            }
            let asked: Vec<FolderId> = frontier.drain().collect();
            for folder in catalog.folders_by_ids(&asked).await? {
                if Some(folder.id) != stop
                    && let Some(parent) = folder.parent_id
                {
                    frontier.insert(parent);
                }
                tree.folders.insert(folder.id, folder);
            }
        }
        Err(too_deep(frontier.into_iter().next().unwrap_or_default()))
    }

    /// A folder that was read (`None`: missing, or not asked for).
    pub fn get(&self, id: FolderId) -> Option<&Folder> {
        self.folders.get(&id)
    }

    /// Whether `folder` is `root` or lies below it (a missing folder on the way: no).
    pub fn within(&self, folder: Option<FolderId>, root: FolderId) -> bool {
        let mut next = folder;
        for _ in 0..=MAX_FOLDER_DEPTH {
            let Some(id) = next else { return false };
            if id == root {
                return true;
            }
            let Some(folder) = self.folders.get(&id) else { return false };
            next = folder.parent_id;
        }
        false
    }

    /// `start` and the folders above it, nearest first, as [`folder_chain`]
    /// gives it: `NotFound` if one is missing.
    pub fn chain(&self, start: Option<FolderId>) -> DomainResult<Vec<Folder>> {
        let mut chain = Vec::new();
        let mut next = start;
        while let Some(id) = next {
            if chain.len() >= MAX_FOLDER_DEPTH {
                return Err(too_deep(id));
            }
            let folder = self.folders.get(&id).ok_or(DomainError::NotFound("folder"))?;
            next = folder.parent_id;
            chain.push(folder.clone());
        }
        Ok(chain)
    }
}
