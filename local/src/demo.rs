//! The demo account the local server seeds on first start: real (generated)
//! images with EXIF (one with its GPS position and camera serial number), a folder tree, a draft, a collection, an administrator,
//! a restricted user with a grant and a view-only user.

use publinks_domain::DomainResult;
use publinks_domain::access::Actor;
use publinks_domain::library::{Library, NewUser};
use publinks_domain::model::*;
use publinks_domain::store::PageRequest;
use publinks_media::{demo_jpeg_with_exif, demo_jpeg_with_location, demo_png};

/// Who and what the demo holds, for printing tokens and for tests.
#[derive(Clone, Debug)]
pub struct Demo {
    pub account: Account,
    pub admin: User,
    pub restricted: User,
    pub viewer: User,
    /// The folder the restricted user may manage (`None` when the demo was
    /// found again and that grant is gone).
    pub granted_folder: Option<Folder>,
}

/// The demo account's name.
pub const ACCOUNT_NAME: &str = "Demo Studio";
/// Its administrator's, restricted user's and view-only user's addresses:
/// how a restarted server finds them again.
pub const ADMIN_EMAIL: &str = "ada@demo.example";
pub const RESTRICTED_EMAIL: &str = "riley@demo.example";
pub const VIEWER_EMAIL: &str = "vera@demo.example";

/// The demo account of a store seeded before (a restart), if it is still
/// there with its three users: the account named [`ACCOUNT_NAME`] whose
/// users have the demo's addresses and roles.
pub async fn find(library: &Library) -> DomainResult<Option<Demo>> {
    let catalog = library.catalog();
    let mut page = PageRequest::first(200);
    loop {
        let accounts = catalog.list_accounts(&page).await?;
        for account in accounts.items.iter().filter(|a| a.name == ACCOUNT_NAME) {
            if let Some(demo) = found_in(library, account).await? {
                return Ok(Some(demo));
            }
        }
        match accounts.next {
            Some(next) => page.cursor = Some(next),
            None => return Ok(None),
        }
    }
}

async fn found_in(library: &Library, account: &Account) -> DomainResult<Option<Demo>> {
    let catalog = library.catalog();
    let mut users = Vec::new();
    let mut page = PageRequest::first(200);
    loop {
        let batch = catalog.list_users(account.id, &page).await?;
        users.extend(batch.items);
        match batch.next {
            Some(next) => page.cursor = Some(next),
            None => break,
        }
    }
    let by = |email: &str, role: Role| users.iter().find(|u| u.email == email && u.role == role).cloned();
    let (Some(admin), Some(restricted), Some(viewer)) =
        (by(ADMIN_EMAIL, Role::Admin), by(RESTRICTED_EMAIL, Role::Restricted), by(VIEWER_EMAIL, Role::ViewOnly))
    else {
        return Ok(None);
    };
    let mut granted_folder = None;
    for grant in catalog.grants_of_user(restricted.id).await? {
        if let Target::Folder(id) = grant.target
            && let Some(folder) = catalog.folder(id).await?
        {
            granted_folder = Some(folder);
            break;
        }
    }
    Ok(Some(Demo { account: account.clone(), admin, restricted, viewer, granted_folder }))
}

/// Creates the demo account and its content.
pub async fn seed(library: &Library) -> DomainResult<Demo> {
    let admin_user = NewUser { id: None, name: "Ada Admin".into(), email: ADMIN_EMAIL.into(), role: Role::Admin };
    let (account, admin) = library.create_account(ACCOUNT_NAME, Plan::Enterprise, true, admin_user).await?;
    let ada = Actor { user: admin.clone(), account: account.clone() };

    let restricted = library
        .create_user(
            &ada,
            NewUser {
                id: None,
                name: "Riley Restricted".into(),
                email: RESTRICTED_EMAIL.into(),
                role: Role::Restricted,
            },
        )
        .await?;
    let viewer = library
        .create_user(
            &ada,
            NewUser { id: None, name: "Vera Viewer".into(), email: VIEWER_EMAIL.into(), role: Role::ViewOnly },
        )
        .await?;

    let campaigns = library.create_folder(&ada, None, "Campaigns").await?;
    let spring = library.create_folder(&ada, Some(campaigns.id), "Spring 2026").await?;
    let hero = library.create_folder(&ada, Some(spring.id), "Hero shots").await?;
    let products = library.create_folder(&ada, None, "Products").await?;

    let put = |folder: Option<&Folder>, name: &str, content_type: &str, bytes: Vec<u8>| {
        let purpose = UploadPurpose::NewFile { folder_id: folder.map(|f| f.id), name: name.to_string() };
        let (ada, content_type) = (ada.clone(), content_type.to_string());
        async move { library.import_file(&ada, purpose, &content_type, bytes).await }
    };
    let sunrise =
        put(Some(&spring), "sunrise.jpg", "image/jpeg", demo_jpeg_with_exif(1200, 800, 20, "PL-1 Mark II")).await?;
    // Where it was taken and the camera's serial number: shown to visitors
    // unless a link (or the account's default) hides them.
    put(Some(&spring), "dusk.jpg", "image/jpeg", demo_jpeg_with_location(1200, 800, 200, "PL-1 Mark II")).await?;
    put(Some(&spring), "palette.png", "image/png", demo_png(640, 640, 90)).await?;
    put(Some(&hero), "close-up.jpg", "image/jpeg", demo_jpeg_with_exif(800, 1200, 140, "PL-7")).await?;
    let blue = put(Some(&products), "product-blue.png", "image/png", demo_png(800, 800, 10)).await?;
    let green = put(Some(&products), "product-green.png", "image/png", demo_png(800, 800, 240)).await?;
    put(Some(&products), "spec-sheet.txt", "text/plain", b"Demo product specification\n".to_vec()).await?;
    let logo = put(None, "logo.png", "image/png", demo_png(256, 256, 60)).await?;
    library
        .import_file(&ada, UploadPurpose::NewVersion { file_id: logo.id }, "image/png", demo_png(256, 256, 180))
        .await?;

    library
        .update_file(
            &ada,
            green.id,
            publinks_domain::library::FilePatch {
                published: Some(false),
                tags: Some(vec!["upcoming".into()]),
                ..Default::default()
            },
        )
        .await?;
    library
        .update_file(
            &ada,
            sunrise.id,
            publinks_domain::library::FilePatch {
                tags: Some(vec!["spring".into(), "hero".into()]),
                ai_tags: Some(vec!["sky".into(), "gradient".into()]),
                custom_metadata: Some([("campaign".to_string(), "SPR-26".to_string())].into()),
                private: Some(true),
                ..Default::default()
            },
        )
        .await?;
    library.add_comment(&ada, sunrise.id, "Approved for the homepage.").await?;

    let picks = library.create_collection(&ada, "Homepage picks").await?;
    library.add_to_collection(&ada, picks.id, sunrise.id).await?;
    library.add_to_collection(&ada, picks.id, blue.id).await?;

    library.set_grant(&ada, restricted.id, Target::Folder(spring.id), Permission::Manage).await?;

    Ok(Demo { account, admin, restricted, viewer, granted_folder: Some(spring) })
}
