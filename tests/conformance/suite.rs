//! The behaviour every storage backend must show. Each function is one test
//! body; `conformance_suite!` runs it against each backend.

use super::{Backend, LinkBackend, PlaceAsStored, VisitorBackend};
use chrono::{Duration, Utc};
use publinks_domain::ids::*;
use publinks_domain::model::*;
use publinks_domain::store::*;
use std::collections::BTreeMap;
use std::sync::Arc;

fn account(name: &str, age_secs: i64) -> Account {
    Account {
        id: AccountId::new(),
        name: name.into(),
        plan: Plan::Enterprise,
        drafts_enabled: true,
        link_limit: DEFAULT_LINK_LIMIT,
        link_defaults: LinkDefaults::default(),
        branding: Default::default(),
        webhook_events: Vec::new(),
        created_at: Utc::now() - Duration::seconds(age_secs),
        revision: 0,
    }
}

fn user(account: AccountId, role: Role, age_secs: i64) -> User {
    User {
        id: UserId::new(),
        account_id: account,
        name: "Someone".into(),
        email: "someone@example.com".into(),
        role,
        created_at: Utc::now() - Duration::seconds(age_secs),
    }
}

fn folder(account: AccountId, parent: Option<FolderId>, name: &str) -> Folder {
    let now = Utc::now();
    Folder {
        id: FolderId::new(),
        account_id: account,
        parent_id: parent,
        name: name.into(),
        created_at: now,
        updated_at: now,
        revision: 0,
    }
}

fn version(file: FileId, number: u32) -> FileVersion {
    FileVersion {
        file_id: file,
        number,
        blob_key: format!("accounts/x/uploads/{}", UploadId::new()),
        content_type: "image/png".into(),
        size: 100 * number as u64,
        crc32: number,
        sha256: "00".repeat(32),
        e_tag: None,
        width: Some(10),
        height: Some(20),
        embedded_metadata: BTreeMap::from([("Model".to_string(), format!("v{number}"))]),
        uploaded_by: UserId::new(),
        uploaded_at: Utc::now(),
    }
}

fn file(account: AccountId, folder: Option<FolderId>, name: &str) -> File {
    let id = FileId::new();
    let now = Utc::now();
    File {
        id,
        account_id: account,
        folder_id: folder,
        name: name.into(),
        owner_id: UserId::new(),
        tags: vec!["t".into()],
        ai_tags: vec![],
        custom_coordinates: vec![Coordinates { x: 1, y: 2, width: 3, height: 4 }],
        custom_metadata: BTreeMap::from([("k".to_string(), "v".to_string())]),
        comments: vec![],
        private: true,
        published: false,
        current: version(id, 1),
        created_at: now,
        updated_at: now,
        revision: 0,
    }
}

/// Reads every page of a list, checking no page is over `limit` long.
async fn all_pages<T, F, Fut>(limit: u32, mut read: F) -> Vec<T>
where
    F: FnMut(PageRequest) -> Fut,
    Fut: std::future::Future<Output = StoreResult<Page<T>>>,
{
    let mut out = Vec::new();
    let mut req = PageRequest::first(limit);
    loop {
        let page = read(req.clone()).await.expect("page reads");
        assert!(page.items.len() <= limit as usize, "a page holds at most `limit` items");
        let done = page.next.is_none();
        if !done {
            assert_eq!(page.items.len(), limit as usize, "only the last page may be short");
        }
        out.extend(page.items);
        match page.next {
            Some(c) => req.cursor = Some(c),
            None => break,
        }
    }
    out
}

pub async fn accounts_insert_read_replace_and_page(b: &Backend) {
    let c = &b.catalog;
    let mut made = Vec::new();
    for i in 0..5 {
        let a = account(&format!("acct {i}"), 100 - i);
        c.insert_account(&a).await.unwrap();
        made.push(a);
    }
    assert_eq!(c.insert_account(&made[0]).await, Err(StoreError::AlreadyExists("account")));
    assert_eq!(c.account(made[2].id).await.unwrap().as_ref(), Some(&made[2]));
    assert_eq!(c.account(AccountId::new()).await.unwrap(), None);

    let mut changed = made[1].clone();
    changed.link_limit = 250;
    let stored = c.replace_account(&changed).await.unwrap();
    assert_eq!(stored.revision, 1);
    assert_eq!(c.account(changed.id).await.unwrap().unwrap().link_limit, 250);
    assert_eq!(c.replace_account(&changed).await, Err(StoreError::Conflict("account")), "stale revision");
    assert_eq!(c.replace_account(&account("ghost", 0)).await, Err(StoreError::NotFound("account")));

    let listed = all_pages(2, |p| async move { c.list_accounts(&p).await }).await;
    let ids: Vec<_> = listed.iter().map(|a| a.id).collect();
    assert_eq!(ids, made.iter().map(|a| a.id).collect::<Vec<_>>(), "oldest first, every account once");
}

pub async fn users_belong_to_accounts_and_take_their_grants_along(b: &Backend) {
    let c = &b.catalog;
    let (a1, a2) = (AccountId::new(), AccountId::new());
    let mut mine = Vec::new();
    for i in 0..3 {
        let u = user(a1, Role::Restricted, 50 - i);
        c.insert_user(&u).await.unwrap();
        mine.push(u);
    }
    c.insert_user(&user(a2, Role::Admin, 0)).await.unwrap();
    assert_eq!(c.insert_user(&mine[0]).await, Err(StoreError::AlreadyExists("user")));

    let listed = all_pages(2, |p| async move { c.list_users(a1, &p).await }).await;
    assert_eq!(listed, mine, "an account's users, oldest first, and no one else's");

    let mut promoted = mine[0].clone();
    promoted.role = Role::FullAccess;
    c.replace_user(&promoted).await.unwrap();
    assert_eq!(c.user(promoted.id).await.unwrap().unwrap().role, Role::FullAccess);
    assert_eq!(c.replace_user(&user(a1, Role::Admin, 0)).await, Err(StoreError::NotFound("user")));

    let grant = Grant {
        account_id: a1,
        user_id: mine[1].id,
        target: Target::Folder(FolderId::new()),
        level: Permission::Edit,
        granted_at: Utc::now(),
    };
    c.put_grant(&grant).await.unwrap();
    c.delete_user(mine[1].id).await.unwrap();
    assert_eq!(c.user(mine[1].id).await.unwrap(), None);
    assert!(c.grants_of_user(mine[1].id).await.unwrap().is_empty(), "grants go with their user");
}

pub async fn grants_are_upserted_listed_and_removed(b: &Backend) {
    let c = &b.catalog;
    let (acc, u1, u2) = (AccountId::new(), UserId::new(), UserId::new());
    let folder_target = Target::Folder(FolderId::new());
    let file_target = Target::File(FileId::new());
    let grant = |user, target, level| Grant { account_id: acc, user_id: user, target, level, granted_at: Utc::now() };
    c.put_grant(&grant(u1, folder_target, Permission::View)).await.unwrap();
    c.put_grant(&grant(u1, folder_target, Permission::Manage)).await.unwrap();
    c.put_grant(&grant(u1, file_target, Permission::Edit)).await.unwrap();
    c.put_grant(&grant(u2, folder_target, Permission::View)).await.unwrap();

    let g1 = c.grants_of_user(u1).await.unwrap();
    assert_eq!(g1.len(), 2, "a second grant on one target replaces the first");
    assert_eq!(g1.iter().find(|g| g.target == folder_target).unwrap().level, Permission::Manage);

    assert!(c.delete_grant(u1, file_target).await.unwrap());
    assert!(!c.delete_grant(u1, file_target).await.unwrap(), "deleting twice reports nothing deleted");
    c.delete_grants_on(folder_target).await.unwrap();
    assert!(c.grants_of_user(u1).await.unwrap().is_empty());
    assert!(c.grants_of_user(u2).await.unwrap().is_empty(), "every user's grant on the target goes");
}

pub async fn names_in_a_folder_are_unique_among_files_and_folders(b: &Backend) {
    let c = &b.catalog;
    let acc = AccountId::new();
    let top = folder(acc, None, "Photos");
    c.insert_folder_placed(&top).await.unwrap();
    let taken_by_top = StoreError::NameTaken { holder: Target::Folder(top.id) };
    assert_eq!(c.insert_folder_placed(&folder(acc, None, "PHOTOS")).await, Err(taken_by_top.clone()));
    assert_eq!(
        c.insert_file_placed(&file(acc, None, "photos")).await,
        Err(taken_by_top.clone()),
        "a file may not take a folder's name"
    );
    assert_eq!(c.insert_folder_placed(&top).await, Err(StoreError::AlreadyExists("folder")));
    c.insert_folder_placed(&folder(acc, Some(top.id), "Photos")).await.expect("same name under another parent");
    c.insert_folder_placed(&folder(AccountId::new(), None, "Photos")).await.expect("same name in another account");
    assert_eq!(c.name_holder(acc, None, "pHoToS").await.unwrap(), Some(Target::Folder(top.id)));
    assert_eq!(c.name_holder(acc, None, "Videos").await.unwrap(), None);

    // Unicode: precomposed and combining forms, in any case, are one name.
    let cafe = file(acc, None, "Caf\u{e9}.jpg");
    c.insert_file_placed(&cafe).await.unwrap();
    let taken_by_cafe = StoreError::NameTaken { holder: Target::File(cafe.id) };
    assert_eq!(c.insert_file_placed(&file(acc, None, "CAFE\u{301}.JPG")).await, Err(taken_by_cafe.clone()));
    assert_eq!(c.insert_folder_placed(&folder(acc, None, "caf\u{e9}.JPG")).await, Err(taken_by_cafe.clone()));
    assert_eq!(c.name_holder(acc, None, "cafe\u{301}.jpg").await.unwrap(), Some(Target::File(cafe.id)));

    let other = folder(acc, None, "Videos");
    c.insert_folder_placed(&other).await.unwrap();
    let mut clash = other.clone();
    clash.name = "photos".into();
    assert_eq!(c.replace_folder(&clash).await, Err(taken_by_top));
    clash.name = "CAF\u{c9}.jpg".into();
    assert_eq!(c.replace_folder(&clash).await, Err(taken_by_cafe), "a folder may not be renamed to a file's name");
    let mut recase = other.clone();
    recase.name = "VIDEOS".into();
    let stored = c.replace_folder(&recase).await.expect("renaming to another case of itself");

    // A file renamed or moved onto a taken name is refused; its own name it may keep re-cased.
    let clip = file(acc, None, "clip.mov");
    c.insert_file_placed(&clip).await.unwrap();
    let mut renamed = clip.clone();
    renamed.name = "videos".into();
    assert_eq!(c.replace_file(&renamed).await, Err(StoreError::NameTaken { holder: Target::Folder(other.id) }));
    renamed.name = "CLIP.mov".into();
    let clip = c.replace_file(&renamed).await.expect("another case of its own name");
    let inner = file(acc, Some(top.id), "clip.MOV");
    c.insert_file_placed(&inner).await.unwrap();
    let mut moved = clip.clone();
    moved.folder_id = Some(top.id);
    assert_eq!(
        c.move_file(&moved, &Placement(vec![top.id])).await,
        Err(StoreError::NameTaken { holder: Target::File(inner.id) })
    );
    let mut freed = clip.clone();
    freed.name = "clip2.mov".into();
    let clip = c.replace_file(&freed).await.unwrap();
    c.insert_file_placed(&file(acc, None, "clip.mov")).await.expect("a renamed file frees its old name");
    let mut tagged = clip.clone();
    tagged.tags = vec!["new".into()];
    c.replace_file(&tagged).await.expect("a change that keeps the name");
    c.delete_file(clip.id).await.unwrap();
    c.insert_folder_placed(&folder(acc, None, "Clip2.MOV")).await.expect("a deleted file frees its name");

    c.delete_folder(top.id).await.unwrap();
    assert_eq!(c.folder(top.id).await.unwrap(), None);
    c.insert_folder_placed(&folder(acc, None, "photos")).await.expect("a deleted folder frees its name");
    let mut moved = stored.clone();
    moved.name = "Photos".into();
    assert!(matches!(c.replace_folder(&moved).await, Err(StoreError::NameTaken { holder: Target::Folder(_) })));
}

pub async fn folder_replace_is_conditional_on_revision(b: &Backend) {
    let c = &b.catalog;
    let acc = AccountId::new();
    let parent = folder(acc, None, "Parent");
    let f = folder(acc, None, "Child");
    c.insert_folder_placed(&parent).await.unwrap();
    c.insert_folder_placed(&f).await.unwrap();
    let mut moved = f.clone();
    moved.parent_id = Some(parent.id);
    let stored = c.replace_folder(&moved).await.unwrap();
    assert_eq!(stored.revision, 1);
    assert_eq!(c.folder(f.id).await.unwrap(), Some(stored.clone()));
    assert_eq!(c.replace_folder(&moved).await, Err(StoreError::Conflict("folder")));
    let listed = c.subfolders(acc, Some(parent.id), &PageRequest::first(10)).await.unwrap();
    assert_eq!(listed.items, vec![stored]);
    assert!(c.subfolders(acc, None, &PageRequest::first(10)).await.unwrap().items.iter().all(|x| x.id != f.id));
    assert_eq!(c.replace_folder(&folder(acc, None, "ghost")).await, Err(StoreError::NotFound("folder")));
}

pub async fn subfolders_page_in_name_order(b: &Backend) {
    let c = &b.catalog;
    let acc = AccountId::new();
    let names = ["delta", "Alpha", "charlie", "Echo", "bravo", "foxtrot", "golf"];
    for n in names {
        c.insert_folder_placed(&folder(acc, None, n)).await.unwrap();
    }
    c.insert_folder_placed(&folder(AccountId::new(), None, "zulu")).await.unwrap();
    let listed = all_pages(3, |p| async move { c.subfolders(acc, None, &p).await }).await;
    let got: Vec<_> = listed.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(got, ["Alpha", "bravo", "charlie", "delta", "Echo", "foxtrot", "golf"]);
}

pub async fn files_keep_versions_and_page_by_folder(b: &Backend) {
    let c = &b.catalog;
    let acc = AccountId::new();
    let dir = folder(acc, None, "Dir");
    c.insert_folder_placed(&dir).await.unwrap();
    let mut files = Vec::new();
    for n in ["b.png", "a.png", "c.png", "a2.png"] {
        let f = file(acc, Some(dir.id), n);
        c.insert_file_placed(&f).await.unwrap();
        files.push(f);
    }
    c.insert_file_placed(&file(acc, None, "top.png")).await.unwrap();
    assert_eq!(c.insert_file_placed(&files[0]).await, Err(StoreError::AlreadyExists("file")));
    assert_eq!(c.file(files[0].id).await.unwrap().as_ref(), Some(&files[0]), "a file round-trips exactly");

    let listed = all_pages(2, |p| async move { c.files_in_folder(acc, Some(dir.id), &p).await }).await;
    let names: Vec<_> = listed.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(names, ["a.png", "a2.png", "b.png", "c.png"], "by name");

    let mut f = files[0].clone();
    f.current = version(f.id, 2);
    let stored = c.replace_file(&f).await.unwrap();
    assert_eq!(stored.revision, 1);
    assert_eq!(c.replace_file(&f).await, Err(StoreError::Conflict("file")));
    let versions = c.versions(f.id).await.unwrap();
    assert_eq!(versions.iter().map(|v| v.number).collect::<Vec<_>>(), [1, 2]);
    assert_eq!(versions[1], f.current);

    let mut renamed = stored.clone();
    renamed.name = "z.png".into();
    renamed.folder_id = None;
    c.replace_file(&renamed).await.unwrap();
    assert_eq!(c.versions(f.id).await.unwrap().len(), 2, "a replace without a new version adds none");
    let top = c.files_in_folder(acc, None, &PageRequest::first(10)).await.unwrap().items;
    assert_eq!(top.iter().map(|f| f.name.as_str()).collect::<Vec<_>>(), ["top.png", "z.png"]);

    c.delete_file(f.id).await.unwrap();
    assert_eq!(c.file(f.id).await.unwrap(), None);
    assert!(c.versions(f.id).await.unwrap().is_empty(), "versions go with their file");
    assert_eq!(c.replace_file(&renamed).await, Err(StoreError::NotFound("file")));
}

/// A listing's narrow read is the full one's files, fields and pages: the
/// same order (names as people see them), the same cursors, each taking the other's.
pub async fn listed_files_are_the_folders_files_in_the_same_pages(b: &Backend) {
    let c = &b.catalog;
    let acc = AccountId::new();
    let dir = folder(acc, None, "Dir");
    c.insert_folder_placed(&dir).await.unwrap();
    for n in ["b.png", "Été.png", "A.png", "ete2.png", "a1.png", "c.png", "Zed.png"] {
        let mut f = file(acc, Some(dir.id), n);
        f.published = n.starts_with('a') || n.starts_with('E');
        c.insert_file_placed(&f).await.unwrap();
    }
    c.insert_file_placed(&file(acc, None, "top.png")).await.unwrap();
    let mut req = PageRequest::first(3);
    let mut full_pages = 0;
    loop {
        let full = c.files_in_folder(acc, Some(dir.id), &req).await.unwrap();
        let listed = c.listed_files_in_folder(acc, Some(dir.id), &req).await.unwrap();
        assert_eq!(listed.items, full.items.iter().map(ListedFile::from).collect::<Vec<_>>());
        assert_eq!(listed.next, full.next, "the same cursor");
        full_pages += 1;
        match full.next {
            Some(next) => req.cursor = Some(next),
            None => break,
        }
    }
    assert_eq!(full_pages, 3);
    let listed = all_pages(2, |p| async move { c.listed_files_in_folder(acc, Some(dir.id), &p).await }).await;
    let names: Vec<_> = listed.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(names, ["A.png", "a1.png", "b.png", "c.png", "ete2.png", "Zed.png", "Été.png"]);
    let top = c.listed_files_in_folder(acc, None, &PageRequest::first(10)).await.unwrap().items;
    assert_eq!(top.iter().map(|f| f.name.as_str()).collect::<Vec<_>>(), ["top.png"]);

    // A listing page's reads together: the subfolders when asked, and the files.
    for n in ["sub-b", "Sub-a"] {
        c.insert_folder_placed(&folder(acc, Some(dir.id), n)).await.unwrap();
    }
    let (some, three) = (PageRequest::first(10), PageRequest::first(3));
    let (folders, files) = c.folder_listing(acc, Some(dir.id), Some(&some), &three).await.unwrap();
    assert_eq!(folders.items, c.subfolders(acc, Some(dir.id), &some).await.unwrap().items);
    assert_eq!(folders.items.iter().map(|f| f.name.as_str()).collect::<Vec<_>>(), ["Sub-a", "sub-b"]);
    assert_eq!(files, c.listed_files_in_folder(acc, Some(dir.id), &three).await.unwrap());
    let after = PageRequest { cursor: files.next.clone(), limit: 3 };
    let (none, rest) = c.folder_listing(acc, Some(dir.id), None, &after).await.unwrap();
    assert!(none.items.is_empty() && none.next.is_none(), "no subfolders unless asked");
    assert_eq!(rest, c.listed_files_in_folder(acc, Some(dir.id), &after).await.unwrap());

    // The same pages, each file in the JSON a visitor's listing shows of it,
    // as it is after its last write: one renamed, published, given a new
    // version with identifying metadata.
    let first = c.listed_files_in_folder(acc, Some(dir.id), &three).await.unwrap().items[0].id;
    let mut changed = c.file(first).await.unwrap().unwrap();
    changed.name = "A \"renamed\".png".into();
    changed.published = !changed.published;
    changed.current = version(changed.id, 2);
    changed.current.embedded_metadata =
        BTreeMap::from([("GPSLatitude".to_string(), "1 deg".to_string()), ("Model".to_string(), "X".to_string())]);
    c.replace_file(&changed).await.unwrap();
    for (subfolders, page) in [(Some(&some), &three), (None, &after)] {
        let (folders, listed) = c.folder_listing(acc, Some(dir.id), subfolders, page).await.unwrap();
        // A store that keeps no such JSON says so; the listing is then made.
        let Some((same, kept)) = c.folder_listing_kept(acc, Some(dir.id), subfolders, page).await.unwrap() else {
            continue;
        };
        assert_eq!(same, folders);
        assert_eq!(kept.next, listed.next, "the same cursor");
        assert_eq!(kept.items, listed.items.iter().map(KeptFile::of).collect::<Vec<_>>());
    }
}

pub async fn collections_hold_files_in_order_of_addition(b: &Backend) {
    let c = &b.catalog;
    let acc = AccountId::new();
    let now = Utc::now();
    let coll = |name: &str| Collection {
        id: CollectionId::new(),
        account_id: acc,
        name: name.into(),
        created_by: UserId::new(),
        created_at: now,
        updated_at: now,
        revision: 0,
    };
    let (picks, other) = (coll("Picks"), coll("archive"));
    c.insert_collection(&picks).await.unwrap();
    c.insert_collection(&other).await.unwrap();
    assert_eq!(c.insert_collection(&picks).await, Err(StoreError::AlreadyExists("collection")));
    let names: Vec<_> =
        c.collections(acc, &PageRequest::first(10)).await.unwrap().items.into_iter().map(|c| c.name).collect();
    assert_eq!(names, ["archive", "Picks"]);

    let mut renamed = picks.clone();
    renamed.name = "Best picks".into();
    assert_eq!(c.replace_collection(&renamed).await.unwrap().revision, 1);
    assert_eq!(c.replace_collection(&renamed).await, Err(StoreError::Conflict("collection")));

    let files: Vec<FileId> = (0..5).map(|_| FileId::new()).collect();
    for (i, f) in files.iter().enumerate() {
        let item = CollectionItem { collection_id: picks.id, file_id: *f, added_at: now + Duration::seconds(i as i64) };
        c.add_to_collection(&item).await.unwrap();
    }
    let dup = CollectionItem { collection_id: picks.id, file_id: files[0], added_at: now };
    assert_eq!(c.add_to_collection(&dup).await, Err(StoreError::AlreadyExists("collection item")));
    c.add_to_collection(&CollectionItem { collection_id: other.id, file_id: files[0], added_at: now }).await.unwrap();

    let items = all_pages(2, |p| async move { c.collection_items(picks.id, &p).await }).await;
    assert_eq!(items.iter().map(|i| i.file_id).collect::<Vec<_>>(), files, "in order of addition");

    let mut of_file = c.collections_of_file(files[0]).await.unwrap();
    of_file.sort();
    let mut expected = vec![picks.id, other.id];
    expected.sort();
    assert_eq!(of_file, expected);

    assert!(c.remove_from_collection(picks.id, files[0]).await.unwrap());
    assert!(!c.remove_from_collection(picks.id, files[0]).await.unwrap());
    c.delete_collection(picks.id).await.unwrap();
    assert_eq!(c.collection(picks.id).await.unwrap(), None);
    assert!(c.collection_items(picks.id, &PageRequest::first(10)).await.unwrap().items.is_empty());
    assert_eq!(c.collections_of_file(files[1]).await.unwrap(), Vec::<CollectionId>::new(), "memberships go too");
}

pub async fn many_records_are_read_by_id_at_once(b: &Backend) {
    let c = &b.catalog;
    let acc = AccountId::new();
    let top = folder(acc, None, "top");
    c.insert_folder_placed(&top).await.unwrap();
    let mut folders = vec![top.clone()];
    for i in 0..3 {
        let f = folder(acc, Some(top.id), &format!("sub {i}"));
        c.insert_folder_placed(&f).await.unwrap();
        folders.push(f);
    }
    let mut files = Vec::new();
    for i in 0..120 {
        let f = file(acc, Some(folders[i % 4].id), &format!("f{i}.jpg"));
        c.insert_file_placed(&f).await.unwrap();
        files.push(f);
    }
    // More than one batch of DynamoDB's 100, unknown ids and repeats among them.
    let mut asked: Vec<FileId> = files.iter().map(|f| f.id).collect();
    asked.extend([FileId::new(), FileId::new(), files[7].id]);
    let mut found: Vec<FileId> = c.files_by_ids(&asked).await.unwrap().into_iter().map(|f| f.id).collect();
    found.sort();
    let mut expected: Vec<FileId> = files.iter().map(|f| f.id).collect();
    expected.sort();
    assert_eq!(found, expected, "each existing file once");
    assert_eq!(c.files_by_ids(&[]).await.unwrap(), vec![]);
    let got = c.files_by_ids(&[files[3].id]).await.unwrap();
    assert_eq!(got, vec![files[3].clone()], "whole records");
    // Where they are and their names, the same files.
    let mut places = c.file_places(&asked).await.unwrap();
    places.sort_by_key(|p| p.id);
    let mut expected: Vec<FilePlace> = files.iter().map(FilePlace::from).collect();
    expected.sort_by_key(|p| p.id);
    assert_eq!(places, expected, "each existing file's place once");
    assert_eq!(c.file_places(&[]).await.unwrap(), vec![]);
    // After a rename and a move, the places read are the new ones.
    let mut moved = c.file(files[5].id).await.unwrap().unwrap();
    moved.name = "renamed.jpg".into();
    moved.folder_id = Some(folders[3].id);
    let moved = c.move_file(&moved, &Placement::of(&[folders[3].clone(), top.clone()])).await.unwrap();
    assert_eq!(c.file_places(&[moved.id]).await.unwrap(), vec![FilePlace::from(&moved)]);

    let mut asked: Vec<FolderId> = folders.iter().map(|f| f.id).collect();
    asked.push(FolderId::new());
    let mut found = c.folders_by_ids(&asked).await.unwrap();
    found.sort_by_key(|f| f.id);
    let mut expected = folders.clone();
    expected.sort_by_key(|f| f.id);
    assert_eq!(found, expected);

    let now = Utc::now();
    let picks = Collection {
        id: CollectionId::new(),
        account_id: acc,
        name: "Picks".into(),
        created_by: UserId::new(),
        created_at: now,
        updated_at: now,
        revision: 0,
    };
    c.insert_collection(&picks).await.unwrap();
    for f in files.iter().step_by(3) {
        c.add_to_collection(&CollectionItem { collection_id: picks.id, file_id: f.id, added_at: now }).await.unwrap();
    }
    let mut asked: Vec<FileId> = files.iter().map(|f| f.id).collect();
    asked.push(FileId::new());
    let mut members = c.members_among(picks.id, &asked).await.unwrap();
    members.sort();
    let mut expected: Vec<FileId> = files.iter().step_by(3).map(|f| f.id).collect();
    expected.sort();
    assert_eq!(members, expected);
    assert_eq!(c.members_among(CollectionId::new(), &asked).await.unwrap(), vec![]);
}

fn upload(account: AccountId) -> Upload {
    let id = UploadId::new();
    let now = Utc::now();
    Upload {
        id,
        account_id: account,
        user_id: UserId::new(),
        purpose: UploadPurpose::NewFile { folder_id: None, name: "a.png".into() },
        content_type: "image/png".into(),
        blob_key: format!("accounts/{account}/uploads/{id}"),
        declared_size: 10,
        created_at: now,
        expires_at: now + Duration::minutes(15),
        multipart_id: "m".into(),
        part_size: 8 << 20,
        file_id: FileId::new(),
        state: UploadState::Open,
        e_tag: None,
        failure: None,
        updated_at: now,
        revision: 0,
    }
}

pub async fn uploads_move_on_their_revision_and_are_deleted(b: &Backend) {
    let c = &b.catalog;
    let u = upload(AccountId::new());
    c.insert_upload(&u).await.unwrap();
    assert_eq!(c.insert_upload(&u).await, Err(StoreError::AlreadyExists("upload")));
    assert_eq!(c.upload(u.id).await.unwrap(), Some(u.clone()));
    let mut sealed = u.clone();
    sealed.state = UploadState::Ingesting;
    sealed.e_tag = Some("\"e\"".into());
    let stored = c.replace_upload(&sealed).await.unwrap();
    assert_eq!(stored.revision, 1);
    assert_eq!(c.upload(u.id).await.unwrap(), Some(stored.clone()));
    assert_eq!(c.replace_upload(&sealed).await, Err(StoreError::Conflict("upload")), "revision 0 is gone");
    let mut elsewhere = upload(AccountId::new());
    elsewhere.revision = 3;
    assert_eq!(c.replace_upload(&elsewhere).await, Err(StoreError::NotFound("upload")));
    c.delete_upload(u.id).await.unwrap();
    c.delete_upload(u.id).await.expect("deleting twice is fine");
    assert_eq!(c.upload(u.id).await.unwrap(), None);
}

pub async fn foreign_cursors_are_refused(b: &Backend) {
    let c = &b.catalog;
    for bad in ["not-a-cursor", "e30", "!!!"] {
        let req = PageRequest { cursor: Some(Cursor(bad.into())), limit: 5 };
        assert_eq!(c.list_accounts(&req).await.unwrap_err(), StoreError::InvalidCursor, "{bad}");
        assert_eq!(c.subfolders(AccountId::new(), None, &req).await.unwrap_err(), StoreError::InvalidCursor);
    }
}

pub async fn racing_creates_of_one_name_make_one_file_or_folder(b: &Backend) {
    // Files and folders of one name (in varied case and Unicode form) race,
    // round after round: each round one wins and the rest are told who.
    for round in 0..10 {
        let acc = AccountId::new();
        let names = ["Contest\u{e9}", "CONTESTE\u{301}", "conteste\u{301}", "CONTEST\u{c9}"];
        let tasks: Vec<_> = (0..20)
            .map(|i| {
                let c = b.catalog.clone();
                let name = names[i % names.len()];
                tokio::spawn(async move {
                    if i % 2 == 0 {
                        let f = folder(acc, None, name);
                        c.insert_folder_placed(&f).await.map(|()| Target::Folder(f.id))
                    } else {
                        let f = file(acc, None, name);
                        c.insert_file_placed(&f).await.map(|()| Target::File(f.id))
                    }
                })
            })
            .collect();
        let (mut winners, mut told) = (Vec::new(), Vec::new());
        for t in tasks {
            match t.await.unwrap() {
                Ok(made) => winners.push(made),
                Err(StoreError::NameTaken { holder }) => told.push(holder),
                Err(e) => panic!("round {round}: unexpected error {e:?}"),
            }
        }
        assert_eq!(winners.len(), 1, "round {round}");
        assert!(told.iter().all(|h| *h == winners[0]), "round {round}: the losers are told who holds the name");
        let folders = b.catalog.subfolders(acc, None, &PageRequest::first(100)).await.unwrap().items;
        let files = b.catalog.files_in_folder(acc, None, &PageRequest::first(100)).await.unwrap().items;
        assert_eq!(folders.len() + files.len(), 1, "round {round}");
    }
}

pub async fn racing_replaces_of_one_revision_let_one_win(b: &Backend) {
    let a = account("raced", 0);
    b.catalog.insert_account(&a).await.unwrap();
    let tasks: Vec<_> = (0..20u32)
        .map(|i| {
            let (c, mut mine) = (b.catalog.clone(), a.clone());
            mine.link_limit = 1000 + i;
            tokio::spawn(async move { c.replace_account(&mine).await })
        })
        .collect();
    let mut winners = Vec::new();
    for t in tasks {
        match t.await.unwrap() {
            Ok(stored) => winners.push(stored),
            Err(StoreError::Conflict("account")) => {}
            Err(e) => panic!("unexpected error {e:?}"),
        }
    }
    assert_eq!(winners.len(), 1);
    assert_eq!(b.catalog.account(a.id).await.unwrap().unwrap(), winners[0]);
}

pub async fn racing_completions_of_one_upload_let_one_seal_it(b: &Backend) {
    let u = upload(AccountId::new());
    b.catalog.insert_upload(&u).await.unwrap();
    let catalog: Arc<dyn Catalog> = b.catalog.clone();
    let tasks: Vec<_> = (0..20)
        .map(|i| {
            let (c, mut mine) = (catalog.clone(), u.clone());
            mine.state = UploadState::Ingesting;
            mine.e_tag = Some(format!("e{i}"));
            tokio::spawn(async move { c.replace_upload(&mine).await })
        })
        .collect();
    let mut winners = Vec::new();
    for t in tasks {
        match t.await.unwrap() {
            Ok(stored) => winners.push(stored),
            Err(StoreError::Conflict("upload")) => {}
            Err(e) => panic!("unexpected error {e:?}"),
        }
    }
    assert_eq!(winners.len(), 1);
    assert_eq!(b.catalog.upload(u.id).await.unwrap().unwrap(), winners[0]);
}

async fn read_all(b: &Backend, key: &str) -> Vec<u8> {
    use tokio::io::AsyncReadExt;
    let mut out = Vec::new();
    b.blobs.open(key).await.unwrap().read_to_end(&mut out).await.unwrap();
    out
}

pub async fn blobs_round_trip_and_missing_ones_are_not_found(b: &Backend) {
    let key = format!("accounts/{}/uploads/{}", AccountId::new(), UploadId::new());
    assert_eq!(b.blobs.head(&key).await.unwrap(), None);
    assert!(matches!(b.blobs.open(&key).await, Err(StoreError::NotFound("blob"))));
    let bytes: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    b.blobs.put(&key, bytes.clone(), "application/octet-stream").await.unwrap();
    let first = b.blobs.head(&key).await.unwrap().expect("stored");
    assert_eq!(first.size, bytes.len() as u64);
    assert_eq!(read_all(b, &key).await, bytes);
    assert_eq!(b.blobs.head(&key).await.unwrap().unwrap().e_tag, first.e_tag, "reading changes no ETag");
    b.blobs.put(&key, b"replaced".to_vec(), "text/plain").await.unwrap();
    assert_eq!(read_all(b, &key).await, b"replaced");
    assert_ne!(b.blobs.head(&key).await.unwrap().unwrap().e_tag, first.e_tag, "new bytes, new ETag");
    b.blobs.delete(&key).await.unwrap();
    b.blobs.delete(&key).await.expect("deleting twice is fine");
    assert_eq!(b.blobs.head(&key).await.unwrap(), None);
}

/// PUTs `bytes` to a part URL, as a client would.
async fn put_part(http: &reqwest::Client, url: &str, bytes: Vec<u8>) -> reqwest::StatusCode {
    http.put(url).header("content-type", "application/octet-stream").body(bytes).send().await.unwrap().status()
}

/// Whether a part PUT is refused: a 4xx, or the connection closed before
/// the body was taken (a store may answer before reading it).
async fn part_refused(http: &reqwest::Client, url: &str, bytes: Vec<u8>) -> bool {
    match http.put(url).header("content-type", "application/octet-stream").body(bytes).send().await {
        Ok(res) => res.status().is_client_error(),
        Err(e) => e.is_request(),
    }
}

pub async fn uploads_take_parts_over_http_until_completed_and_then_never(b: &Backend) {
    let (http, ttl) = (reqwest::Client::new(), std::time::Duration::from_secs(300));
    let key = format!("accounts/{}/uploads/{}", AccountId::new(), UploadId::new());
    let (first, second) = (vec![1u8; 5 << 20], publinks_media::demo_png(32, 32, 1));
    let upload = b.uploads.start_upload(&key, "image/png").await.unwrap();
    let url1 = b.uploads.presign_part(&upload, 1, first.len() as u64, ttl).await.unwrap();
    let url2 = b.uploads.presign_part(&upload, 2, second.len() as u64, ttl).await.unwrap();
    // In any order, and a part sent again replaces it.
    assert!(put_part(&http, &url2, second.clone()).await.is_success());
    assert!(put_part(&http, &url1, vec![9u8; 5 << 20]).await.is_success());
    assert!(put_part(&http, &url1, first.clone()).await.is_success());
    assert_eq!(b.blobs.head(&key).await.unwrap(), None, "nothing shows before completion");
    let parts = b.uploads.list_parts(&upload).await.unwrap();
    let listed: Vec<(u32, u64)> = parts.iter().map(|p| (p.number, p.size)).collect();
    assert_eq!(listed, [(1, first.len() as u64), (2, second.len() as u64)]);

    // A part sent again (other bytes) after it was listed: completing with the listed one is refused.
    let second: Vec<u8> = second.iter().rev().copied().collect();
    assert!(put_part(&http, &url2, second.clone()).await.is_success());
    assert_eq!(b.uploads.complete_upload(&upload, &parts).await, Err(StoreError::Conflict("upload part")));
    let parts = b.uploads.list_parts(&upload).await.unwrap();
    let e_tag = b.uploads.complete_upload(&upload, &parts).await.unwrap();
    let stored = b.blobs.head(&key).await.unwrap().expect("the object appears on completion");
    assert_eq!((stored.size, &stored.e_tag), ((first.len() + second.len()) as u64, &e_tag));
    assert_eq!(read_all(b, &key).await, [first.clone(), second.clone()].concat());

    // Completed: every part URL is refused, and nothing changes.
    for (url, len) in [(&url1, first.len()), (&url2, second.len())] {
        assert!(part_refused(&http, url, vec![7u8; len]).await, "a part PUT after completion");
    }
    assert_eq!(b.blobs.head(&key).await.unwrap().unwrap().e_tag, e_tag);
    assert_eq!(b.uploads.list_parts(&upload).await, Err(StoreError::NotFound("multipart upload")));
    // Completing again is gone (the embedded store) or the same object (S3 answers a repeat alike).
    match b.uploads.complete_upload(&upload, &parts).await {
        Err(StoreError::NotFound("multipart upload")) => {}
        Ok(again) => assert_eq!(again, e_tag),
        other => panic!("completing twice: {other:?}"),
    }

    let get_url = b.blobs.presign_get(&key, "résumé final.png", ttl).await.unwrap();
    let res = http.get(&get_url).send().await.unwrap();
    assert!(res.status().is_success(), "GET of the presigned URL: {}", res.status());
    assert_eq!(res.headers()["content-type"].to_str().unwrap(), "image/png", "the type declared at the start");
    let disposition = res.headers()["content-disposition"].to_str().unwrap().to_string();
    assert!(disposition.starts_with("attachment;"), "{disposition}");
    assert!(disposition.contains("filename*=UTF-8''r%C3%A9sum%C3%A9%20final%2Epng"), "{disposition}");
    assert_eq!(res.bytes().await.unwrap().to_vec(), [first, second].concat());

    // Aborted: its parts go, no object appears, and its URLs are refused.
    let other = format!("{key}-aborted");
    let aborted = b.uploads.start_upload(&other, "text/plain").await.unwrap();
    let url = b.uploads.presign_part(&aborted, 1, 4, ttl).await.unwrap();
    assert!(put_part(&http, &url, b"abcd".to_vec()).await.is_success());
    b.uploads.abort_upload(&aborted).await.unwrap();
    b.uploads.abort_upload(&aborted).await.expect("aborting twice is fine");
    assert_eq!(b.uploads.list_parts(&aborted).await, Err(StoreError::NotFound("multipart upload")));
    assert!(part_refused(&http, &url, b"abcd".to_vec()).await, "a part PUT after an abort");
    assert_eq!(b.blobs.head(&other).await.unwrap(), None);

    // An empty file is one empty part.
    let empty = format!("{key}-empty");
    let upload = b.uploads.start_upload(&empty, "text/plain").await.unwrap();
    let url = b.uploads.presign_part(&upload, 1, 0, ttl).await.unwrap();
    assert!(put_part(&http, &url, Vec::new()).await.is_success());
    let parts = b.uploads.list_parts(&upload).await.unwrap();
    b.uploads.complete_upload(&upload, &parts).await.unwrap();
    assert_eq!(b.blobs.head(&empty).await.unwrap().map(|i| i.size), Some(0));
}

/// A link record for store tests (the token hash derived from its id).
pub(crate) fn link(
    account: AccountId,
    target: Target,
    created_secs_ago: i64,
    until: Option<chrono::DateTime<Utc>>,
) -> Link {
    let now = Utc::now() - Duration::seconds(created_secs_ago);
    let id = LinkId::new();
    Link {
        id,
        account_id: account,
        target,
        token_hash: format!("{:064x}", id.0.as_u128()),
        token_seed: id.to_string(),
        valid_from: None,
        valid_until: until,
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

/// A new file, folder or collection at the top of `account`'s library: a
/// target links can be made on.
pub(crate) async fn top_target(b: &LinkBackend, account: AccountId, kind: TargetKind) -> Target {
    top_target_in(b.catalog.as_ref(), account, kind).await
}

/// [`top_target`] in a given catalog.
pub(crate) async fn top_target_in(c: &dyn Catalog, account: AccountId, kind: TargetKind) -> Target {
    match kind {
        TargetKind::File => {
            let f = file(account, None, &format!("linked {}.png", FileId::new()));
            c.insert_file(&f, &Placement::default()).await.unwrap();
            Target::File(f.id)
        }
        TargetKind::Folder => {
            let f = folder(account, None, &format!("linked {}", FolderId::new()));
            c.insert_folder(&f, &Placement::default()).await.unwrap();
            Target::Folder(f.id)
        }
        TargetKind::Collection => {
            let now = Utc::now();
            let col = Collection {
                id: CollectionId::new(),
                account_id: account,
                name: "linked".into(),
                created_by: UserId::new(),
                created_at: now,
                updated_at: now,
                revision: 0,
            };
            c.insert_collection(&col).await.unwrap();
            Target::Collection(col.id)
        }
    }
}

/// The audit entry of a change to `l` by its creator.
pub(crate) fn audit(l: &Link, action: AuditAction, at: chrono::DateTime<Utc>) -> AuditEntry {
    publinks_domain::links::entry(l, AuditActor::User { user_id: l.created_by }, action, LinkChanges::default(), at)
}

const LIMITS: LinkLimits = LinkLimits { per_target: 2, per_account: 3 };

pub async fn links_fit_their_limits_until_deleted(b: &LinkBackend) {
    let s = &b.links;
    let acc = AccountId::new();
    let now = Utc::now();
    let t1 = top_target(b, acc, TargetKind::File).await;
    let t2 = top_target(b, acc, TargetKind::Folder).await;
    let t3 = top_target(b, acc, TargetKind::File).await;
    let soon = now + Duration::seconds(30);
    let short = link(acc, t1, 0, Some(soon));
    s.create_link(&short, LIMITS, &audit(&short, AuditAction::Created, now)).await.unwrap();
    let long = link(acc, t1, 0, None);
    s.create_link(&long, LIMITS, &audit(&long, AuditAction::Created, now)).await.unwrap();
    let third = link(acc, t1, 0, None);
    let refused = Err(StoreError::LimitReached { scope: LimitScope::Target, limit: 2 });
    assert_eq!(s.create_link(&third, LIMITS, &audit(&third, AuditAction::Created, now)).await, refused);
    assert_eq!(s.link(third.id).await.unwrap(), None, "a refused link leaves nothing behind");
    let query = AuditQuery { link: Some(third.id), ..Default::default() };
    let entries = s.audit_entries(acc, &query, &PageRequest::first(10)).await.unwrap();
    assert!(entries.items.is_empty(), "nor an audit entry");

    let later = soon + Duration::seconds(1);
    assert!(s.expired_links(ExpiredScope::Target(t1), now, 10).await.unwrap().is_empty());
    let ids = |links: Vec<Link>| links.into_iter().map(|l| l.id).collect::<Vec<_>>();
    assert_eq!(ids(s.expired_links(ExpiredScope::Target(t1), later, 10).await.unwrap()), [short.id]);
    assert_eq!(ids(s.expired_links(ExpiredScope::Account(acc), later, 10).await.unwrap()), [short.id]);
    assert!(s.expired_links(ExpiredScope::Target(t2), later, 10).await.unwrap().is_empty());
    assert!(s.expired_links(ExpiredScope::All, later, 1000).await.unwrap().iter().any(|l| l.id == short.id));
    assert_eq!(
        s.create_link(&third, LIMITS, &audit(&third, AuditAction::Created, later)).await,
        refused,
        "an expired link counts until it is deleted"
    );
    assert!(s.delete_link(short.id, &audit(&short, AuditAction::Deleted, later)).await.unwrap());
    s.create_link(&third, LIMITS, &audit(&third, AuditAction::Created, later))
        .await
        .expect("a deleted link frees its slot");

    let on_t2 = link(acc, t2, 0, None);
    s.create_link(&on_t2, LIMITS, &audit(&on_t2, AuditAction::Created, later)).await.unwrap();
    let on_t3 = link(acc, t3, 0, None);
    assert_eq!(
        s.create_link(&on_t3, LIMITS, &audit(&on_t3, AuditAction::Created, later)).await,
        Err(StoreError::LimitReached { scope: LimitScope::Account, limit: 3 })
    );
    let elsewhere = AccountId::new();
    let other_account = link(elsewhere, top_target(b, elsewhere, TargetKind::File).await, 0, None);
    s.create_link(&other_account, LIMITS, &audit(&other_account, AuditAction::Created, later)).await.unwrap();
    assert!(s.delete_link(long.id, &audit(&long, AuditAction::Deleted, later)).await.unwrap());
    s.create_link(&on_t3, LIMITS, &audit(&on_t3, AuditAction::Created, later))
        .await
        .expect("the account slot is free again");
}

pub async fn fifty_racing_link_creates_on_one_target_make_five(b: &LinkBackend) {
    let acc = AccountId::new();
    let target = top_target(b, acc, TargetKind::Collection).await;
    let limits = LinkLimits { per_target: 5, per_account: 100 };
    let tasks: Vec<_> = (0..50)
        .map(|_| {
            let s = b.links.clone();
            tokio::spawn(async move {
                let l = link(acc, target, 0, None);
                s.create_link(&l, limits, &audit(&l, AuditAction::Created, Utc::now())).await
            })
        })
        .collect();
    let mut made = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(()) => made += 1,
            Err(StoreError::LimitReached { scope: LimitScope::Target, limit: 5 }) => {}
            Err(e) => panic!("unexpected {e:?}"),
        }
    }
    assert_eq!(made, 5);
    assert_eq!(b.links.links_of_target(target).await.unwrap().len(), 5);
}

pub async fn links_are_found_by_token_hash_replaced_and_deleted_once(b: &LinkBackend) {
    let s = &b.links;
    let acc = AccountId::new();
    let now = Utc::now();
    let l = link(acc, top_target(b, acc, TargetKind::File).await, 0, None);
    s.create_link(&l, LIMITS, &audit(&l, AuditAction::Created, now)).await.unwrap();
    assert_eq!(s.link_opening(&l.token_hash).await.unwrap().map(|o| o.link), Some(l.clone()));
    assert_eq!(s.link_opening(&"0".repeat(64)).await.unwrap().map(|o| o.link), None);
    let mut clash = link(acc, top_target(b, acc, TargetKind::File).await, 0, None);
    clash.token_hash = l.token_hash.clone();
    assert_eq!(
        s.create_link(&clash, LIMITS, &audit(&clash, AuditAction::Created, now)).await,
        Err(StoreError::AlreadyExists("link token"))
    );

    let mut changed = l.clone();
    changed.password_version = 1;
    changed.valid_until = Some(now + Duration::days(1));
    let mut update = audit(&changed, AuditAction::Updated, now + Duration::seconds(1));
    update.id = format!("{}:update-1", l.id);
    let stored = s.replace_link(&changed, &update).await.unwrap();
    assert_eq!((stored.revision, stored.password_version), (1, 1));
    assert_eq!(s.link(l.id).await.unwrap(), Some(stored.clone()));
    assert_eq!(s.replace_link(&changed, &update).await, Err(StoreError::Conflict("link")));

    let gone = audit(&stored, AuditAction::Deleted, now + Duration::seconds(2));
    assert!(s.delete_link(l.id, &gone).await.unwrap());
    assert!(!s.delete_link(l.id, &gone).await.unwrap());
    assert_eq!(s.link(l.id).await.unwrap(), None);
    assert_eq!(s.link_opening(&l.token_hash).await.unwrap().map(|o| o.link), None);
    assert_eq!(s.replace_link(&stored, &update).await, Err(StoreError::NotFound("link")));
    let query = AuditQuery { link: Some(l.id), ..Default::default() };
    let log = s.audit_entries(acc, &query, &PageRequest::first(10)).await.unwrap();
    let actions: Vec<_> = log.items.into_iter().map(|e| e.action).collect();
    assert_eq!(actions, [AuditAction::Deleted, AuditAction::Updated, AuditAction::Created]);
}

/// A link opens with its account and, for a folder link, the shared folder,
/// each as its own read gives it now (after changes, after a delete).
pub async fn links_open_with_their_account_and_shared_folder(b: &LinkBackend) {
    let (s, c) = (&b.links, &b.catalog);
    let a = account("opened", 0);
    c.insert_account(&a).await.unwrap();
    let now = Utc::now();
    let mut made = Vec::new();
    for kind in [TargetKind::Folder, TargetKind::File, TargetKind::Collection] {
        let l = link(a.id, top_target(b, a.id, kind).await, 0, None);
        s.create_link(&l, LIMITS, &audit(&l, AuditAction::Created, now)).await.unwrap();
        made.push(l);
    }
    let shared = |l: &Link| match l.target {
        Target::Folder(id) => Some(id),
        _ => None,
    };
    let expect = |l: &Link, account: Option<Account>, folder: Option<Folder>| {
        Some(LinkOpening { link: l.clone(), account, shared_folder: folder })
    };
    for l in &made {
        let folder = match shared(l) {
            Some(id) => Some(c.folder(id).await.unwrap().expect("the shared folder")),
            None => None,
        };
        assert_eq!(s.link_opening(&l.token_hash).await.unwrap(), expect(l, Some(a.clone()), folder), "{l:?}");
    }
    assert_eq!(s.link_opening(&"0".repeat(64)).await.unwrap(), None);

    // Read as they are now: the account and the folder changed, then the folder gone.
    let folder_link = &made[0];
    let folder_id = shared(folder_link).unwrap();
    let renamed = Folder { name: "renamed".into(), ..c.folder(folder_id).await.unwrap().unwrap() };
    let renamed = c.replace_folder(&renamed).await.unwrap();
    let plan = c.replace_account(&Account { plan: Plan::Standard, ..a.clone() }).await.unwrap();
    let opened = s.link_opening(&folder_link.token_hash).await.unwrap();
    assert_eq!(opened, expect(folder_link, Some(plan.clone()), Some(renamed)));
    assert!(c.delete_folder(folder_id).await.unwrap());
    assert_eq!(s.link_opening(&folder_link.token_hash).await.unwrap(), expect(folder_link, Some(plan), None));

    // A link whose account is not there opens without one.
    let stray = AccountId::new();
    let l = link(stray, top_target(b, stray, TargetKind::Folder).await, 0, None);
    s.create_link(&l, LIMITS, &audit(&l, AuditAction::Created, now)).await.unwrap();
    let folder = c.folder(shared(&l).unwrap()).await.unwrap();
    assert_eq!(s.link_opening(&l.token_hash).await.unwrap(), expect(&l, None, folder));
}

pub async fn account_links_filter_sort_and_page(b: &LinkBackend) {
    let s = &b.links;
    let acc = AccountId::new();
    let now = Utc::now();
    let limits = LinkLimits { per_target: 5, per_account: 100 };
    let mut made = Vec::new();
    for i in 0..7i64 {
        let kind = if i % 2 == 0 { TargetKind::File } else { TargetKind::Folder };
        let target = top_target(b, acc, kind).await;
        let mut l = link(acc, target, 100 - i, None);
        match i {
            5 => l.valid_from = Some(now + Duration::hours(1)),
            6 => l.valid_until = Some(now + Duration::seconds(5)),
            _ => {}
        }
        s.create_link(&l, limits, &audit(&l, AuditAction::Created, now)).await.unwrap();
        made.push(l);
    }
    let elsewhere = AccountId::new();
    let other = link(elsewhere, top_target(b, elsewhere, TargetKind::File).await, 0, None);
    s.create_link(&other, limits, &audit(&other, AuditAction::Created, now)).await.unwrap();

    let query = |kind, state, newest_first, at| LinkQuery { kind, state, newest_first, now: at };
    let ids = |links: Vec<Link>| links.into_iter().map(|l| l.id).collect::<Vec<_>>();
    let oldest =
        all_pages(3, |p| async move { s.links_of_account(acc, &query(None, None, false, now), &p).await }).await;
    assert_eq!(ids(oldest), made.iter().map(|l| l.id).collect::<Vec<_>>());
    let newest =
        all_pages(2, |p| async move { s.links_of_account(acc, &query(None, None, true, now), &p).await }).await;
    assert_eq!(ids(newest), made.iter().rev().map(|l| l.id).collect::<Vec<_>>());
    let folders = all_pages(2, |p| async move {
        s.links_of_account(acc, &query(Some(TargetKind::Folder), None, false, now), &p).await
    })
    .await;
    assert_eq!(ids(folders), [made[1].id, made[3].id, made[5].id]);
    let later = now + Duration::seconds(10);
    let by_state = |state| async move {
        ids(all_pages(2, |p| async move { s.links_of_account(acc, &query(None, Some(state), false, later), &p).await })
            .await)
    };
    assert_eq!(by_state(LinkState::Scheduled).await, [made[5].id]);
    assert_eq!(by_state(LinkState::Expired).await, [made[6].id]);
    assert_eq!(by_state(LinkState::Active).await, made[..5].iter().map(|l| l.id).collect::<Vec<_>>());
}

pub async fn audit_entries_are_idempotent_filtered_and_newest_first(b: &LinkBackend) {
    let s = &b.links;
    let acc = AccountId::new();
    let now = Utc::now();
    let (l1, l2) =
        (link(acc, Target::File(FileId::new()), 0, None), link(acc, Target::Folder(FolderId::new()), 0, None));
    let mut written = Vec::new();
    for (i, (l, action)) in [
        (&l1, AuditAction::Created),
        (&l2, AuditAction::Created),
        (&l1, AuditAction::Updated),
        (&l1, AuditAction::Deleted),
    ]
    .into_iter()
    .enumerate()
    {
        let mut e = audit(l, action, now + Duration::seconds(i as i64));
        e.id = format!("{}:{i}", l.id);
        assert!(s.append_audit(&e).await.unwrap());
        assert!(!s.append_audit(&e).await.unwrap(), "the same entry is recorded once");
        written.push(e);
    }
    let mut other = audit(&l1, AuditAction::Created, now);
    other.account_id = AccountId::new();
    other.id = "elsewhere".into();
    s.append_audit(&other).await.unwrap();

    let all = all_pages(3, |p| async move { s.audit_entries(acc, &AuditQuery::default(), &p).await }).await;
    assert_eq!(all, written.iter().rev().cloned().collect::<Vec<_>>());
    let q = AuditQuery { link: Some(l1.id), ..Default::default() };
    assert_eq!(s.audit_entries(acc, &q, &PageRequest::first(10)).await.unwrap().items.len(), 3);
    let q = AuditQuery { target: Some(l2.target), ..Default::default() };
    assert_eq!(s.audit_entries(acc, &q, &PageRequest::first(10)).await.unwrap().items, vec![written[1].clone()]);
    let q = AuditQuery { action: Some(AuditAction::Created), ..Default::default() };
    assert_eq!(s.audit_entries(acc, &q, &PageRequest::first(10)).await.unwrap().items.len(), 2);
}

pub async fn expired_links_are_found_in_every_scope_up_to_the_limit(b: &LinkBackend) {
    let s = &b.links;
    let (acc, other_acc) = (AccountId::new(), AccountId::new());
    let now = Utc::now();
    let limits = LinkLimits { per_target: 5, per_account: 100 };
    let mut ended = Vec::new();
    let mut folders = Vec::new();
    for _ in 0..4 {
        folders.push(top_target(b, acc, TargetKind::Folder).await);
    }
    for i in 0..12i64 {
        // Spread over several targets; the last one ends exactly now (ended: `<=`).
        let target = folders[i as usize % 4];
        let l = link(acc, target, 100, Some(now - Duration::seconds(11 - i)));
        s.create_link(&l, limits, &audit(&l, AuditAction::Created, now)).await.unwrap();
        ended.push(l.id);
    }
    let elsewhere =
        link(other_acc, top_target(b, other_acc, TargetKind::File).await, 100, Some(now - Duration::seconds(1)));
    s.create_link(&elsewhere, limits, &audit(&elsewhere, AuditAction::Created, now)).await.unwrap();
    for until in [Some(now + Duration::microseconds(1)), Some(now + Duration::days(1)), None] {
        let l = link(acc, top_target(b, acc, TargetKind::File).await, 100, until);
        s.create_link(&l, limits, &audit(&l, AuditAction::Created, now)).await.unwrap();
    }

    let sorted = |links: Vec<Link>| {
        assert!(links.iter().all(|l| l.valid_until.is_some_and(|u| u <= now)), "only links that have ended");
        let mut ids: Vec<_> = links.into_iter().map(|l| l.id).collect();
        ids.sort();
        ids
    };
    let mut in_account = ended.clone();
    in_account.sort();
    let mut everywhere = [ended.clone(), vec![elsewhere.id]].concat();
    everywhere.sort();
    assert_eq!(sorted(s.expired_links(ExpiredScope::Account(acc), now, 100).await.unwrap()), in_account);
    assert_eq!(sorted(s.expired_links(ExpiredScope::All, now, 100).await.unwrap()), everywhere);
    let first = folders[0];
    assert_eq!(s.expired_links(ExpiredScope::Target(first), now, 100).await.unwrap().len(), 3);
    for (scope, limit) in [(ExpiredScope::All, 5), (ExpiredScope::Account(acc), 4), (ExpiredScope::Target(first), 2)] {
        let some = s.expired_links(scope, now, limit).await.unwrap();
        assert_eq!(some.len(), limit as usize, "{scope:?}: at most `limit`, and that many when there are more");
        sorted(some);
    }
    assert!(s.expired_links(ExpiredScope::All, now - Duration::seconds(12), 100).await.unwrap().is_empty());
}

pub async fn links_about_to_end_are_found_past_any_number_that_already_ended(b: &LinkBackend) {
    let s = &b.links;
    let acc = AccountId::new();
    let now = Utc::now();
    let limits = LinkLimits { per_target: 5, per_account: 100 };
    let make = async |until: Option<chrono::DateTime<Utc>>| {
        let l = link(acc, top_target(b, acc, TargetKind::File).await, 100, until);
        s.create_link(&l, limits, &audit(&l, AuditAction::Created, now)).await.unwrap();
        l.id
    };
    // More links that ended (as DynamoDB's TTL leaves them, for up to days)
    // than the batch asked for, the last one exactly at the window's start.
    for hours in (0..12).rev() {
        make(Some(now - Duration::hours(hours))).await;
    }
    let in_an_hour = make(Some(now + Duration::hours(1))).await;
    let at_the_end = make(Some(now + Duration::hours(24))).await;
    let soonest = make(Some(now + Duration::seconds(1))).await;
    make(Some(now + Duration::hours(24) + Duration::microseconds(1))).await;
    make(None).await;

    let ids = |links: Vec<Link>| links.into_iter().map(|l| l.id).collect::<Vec<_>>();
    let window = |limit| s.links_ending_between(EndPosition::after(now), now + Duration::hours(24), limit);
    assert_eq!(ids(window(5).await.unwrap()), [soonest, in_an_hour, at_the_end], "earliest end first, (after, until]");
    assert_eq!(ids(window(2).await.unwrap()), [soonest, in_an_hour], "at most `limit`");
    let past = s.links_ending_between(EndPosition::after(now - Duration::days(1)), now - Duration::hours(11), 100);
    assert_eq!(past.await.unwrap().len(), 1, "the ended ones are found by their own window only");

    // Page by page, one or two at a time, from after the last one read: five
    // links ending at one moment are each read once, in id order.
    let same = now + Duration::hours(2);
    let mut tied = Vec::new();
    for _ in 0..5 {
        tied.push(make(Some(same)).await);
    }
    tied.sort();
    let mut expected = vec![soonest, in_an_hour];
    expected.extend(&tied);
    expected.push(at_the_end);
    for limit in [1, 2] {
        let (mut after, mut read) = (EndPosition::after(now), Vec::new());
        loop {
            let page = s.links_ending_between(after, now + Duration::hours(24), limit).await.unwrap();
            assert!(page.len() <= limit as usize);
            let Some(next) = page.last().and_then(EndPosition::after_link) else { break };
            read.extend(ids(page));
            after = next;
        }
        assert_eq!(read, expected, "pages of {limit}");
    }
}

pub async fn a_limit_of_zero_refuses_the_first_link(b: &LinkBackend) {
    let s = &b.links;
    let acc = AccountId::new();
    let l = link(acc, top_target(b, acc, TargetKind::File).await, 0, None);
    let created = audit(&l, AuditAction::Created, Utc::now());
    for (limits, scope) in [
        (LinkLimits { per_target: 0, per_account: 0 }, LimitScope::Target),
        (LinkLimits { per_target: 5, per_account: 0 }, LimitScope::Account),
    ] {
        assert_eq!(s.create_link(&l, limits, &created).await, Err(StoreError::LimitReached { scope, limit: 0 }));
    }
    assert_eq!(s.link(l.id).await.unwrap(), None);
    s.create_link(&l, LinkLimits { per_target: 1, per_account: 1 }, &created).await.expect("a limit of 1 takes one");
}

pub async fn three_hundred_racing_creates_in_one_account_make_one_hundred(b: &LinkBackend) {
    let acc = AccountId::new();
    let limits = LinkLimits { per_target: 5, per_account: 100 };
    let mut targets = Vec::new();
    for _ in 0..60 {
        targets.push(top_target(b, acc, TargetKind::Collection).await);
    }
    let tasks: Vec<_> = (0..300)
        .map(|i| {
            let (s, target) = (b.links.clone(), targets[i % targets.len()]);
            tokio::spawn(async move {
                let l = link(acc, target, 0, None);
                s.create_link(&l, limits, &audit(&l, AuditAction::Created, Utc::now())).await
            })
        })
        .collect();
    let mut made = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(()) => made += 1,
            Err(StoreError::LimitReached { scope: LimitScope::Account, limit: 100 }) => {}
            Err(e) => panic!("unexpected {e:?}"),
        }
    }
    assert_eq!(made, 100);
    let query = LinkQuery { kind: None, state: None, newest_first: false, now: Utc::now() };
    let listed = b.links.links_of_account(acc, &query, &PageRequest::first(500)).await.unwrap();
    assert_eq!(listed.items.len(), 100);
    assert_eq!(listed.next, None);
}

fn download(account: AccountId, by: Downloader, at: chrono::DateTime<Utc>) -> DownloadRecord {
    DownloadRecord {
        id: DownloadId::new(),
        account_id: account,
        at,
        by,
        file_id: FileId::new(),
        file_name: "photo.jpg".into(),
        version: 2,
        size: 1234,
    }
}

pub async fn downloads_are_listed_per_account_and_per_visitor_newest_first(b: &VisitorBackend) {
    let v = &b.visitors;
    let (acc, other_acc) = (AccountId::new(), AccountId::new());
    let (link1, link2) = (LinkId::new(), LinkId::new());
    let t0 = Utc::now() - Duration::hours(1);
    let visitor = |link_id, session: &str| Downloader::PublicLink { link_id, session: session.into() };
    let mut mine = Vec::new();
    for i in 0..9i64 {
        let by = match i % 3 {
            0 => Downloader::User { user_id: UserId::new() },
            1 => visitor(link1, "session-a"),
            _ => visitor(link2, "session-a"),
        };
        // Two downloads at one instant: newest first, then by id. The later
        // one gets the smaller id (fresh download ids grow with time), so an
        // order by insertion would not pass for one by id.
        let at = if i == 4 { t0 + Duration::seconds(3) } else { t0 + Duration::seconds(i) };
        let mut d = download(acc, by, at);
        if i == 4 {
            d.id = "00000000-0000-4000-8000-000000000004".parse().unwrap();
        }
        v.record_download(&d).await.unwrap();
        mine.push(d);
    }
    for session in ["session-b", ""] {
        let d = download(acc, visitor(link1, session), t0 + Duration::seconds(20));
        v.record_download(&d).await.unwrap();
        mine.push(d);
    }
    v.record_download(&download(other_acc, visitor(LinkId::new(), "session-a"), t0)).await.unwrap();
    assert_eq!(v.record_download(&mine[0]).await, Err(StoreError::AlreadyExists("download")));

    let newest_first = |mut records: Vec<DownloadRecord>| {
        records.sort_by_key(|d| std::cmp::Reverse((d.at, d.id.to_string())));
        records
    };
    let listed = all_pages(4, |p| async move { v.account_downloads(acc, &p).await }).await;
    assert_eq!(listed, newest_first(mine.clone()), "every download of the account, and no other's");

    let of = |link: LinkId, session: &str| {
        newest_first(mine.iter().filter(|d| d.by == visitor(link, session)).cloned().collect())
    };
    let listed = all_pages(2, |p| async move { v.visitor_downloads(link1, "session-a", &p).await }).await;
    assert_eq!(listed, of(link1, "session-a"), "one session's downloads through one link");
    assert_eq!(listed.len(), 3);
    let listed = all_pages(2, |p| async move { v.visitor_downloads(link2, "session-a", &p).await }).await;
    assert_eq!(listed, of(link2, "session-a"));
    let listed = all_pages(2, |p| async move { v.visitor_downloads(link1, "", &p).await }).await;
    assert_eq!(listed, of(link1, ""), "an empty session is a session like any other");
    assert!(v.visitor_downloads(link1, "session-c", &PageRequest::first(10)).await.unwrap().items.is_empty());
    assert!(v.account_downloads(AccountId::new(), &PageRequest::first(10)).await.unwrap().items.is_empty());
}

fn bucket(attempts: u32, revision: u64) -> ThrottleState {
    let now = Utc::now();
    ThrottleState { attempts, window_start: Some(now), blocked_until: Some(now + Duration::seconds(8)), revision }
}

pub async fn throttle_buckets_are_compared_and_set_on_their_revision(b: &VisitorBackend) {
    let v = &b.visitors;
    let expires = Utc::now() + Duration::hours(1);
    assert_eq!(v.throttle_state("pw:a").await.unwrap(), None);
    let first = bucket(1, 0);
    v.put_throttle_state("pw:a", &first, expires).await.unwrap();
    let stored = v.throttle_state("pw:a").await.unwrap().unwrap();
    assert_eq!(stored, ThrottleState { revision: 1, ..first.clone() }, "stored with the revision bumped");
    assert_eq!(
        v.put_throttle_state("pw:a", &first, expires).await,
        Err(StoreError::Conflict("throttle")),
        "revision 0 only creates"
    );

    let second = ThrottleState { attempts: 2, ..stored.clone() };
    v.put_throttle_state("pw:a", &second, expires).await.unwrap();
    assert_eq!(v.throttle_state("pw:a").await.unwrap().unwrap(), ThrottleState { revision: 2, ..second.clone() });
    assert_eq!(v.put_throttle_state("pw:a", &second, expires).await, Err(StoreError::Conflict("throttle")), "stale");
    assert_eq!(
        v.put_throttle_state("pw:b", &bucket(1, 3), expires).await,
        Err(StoreError::Conflict("throttle")),
        "a revision other than 0 needs a stored bucket"
    );
    assert_eq!(v.throttle_state("pw:b").await.unwrap(), None);
    v.put_throttle_state("pw:b", &bucket(7, 0), expires).await.expect("buckets are independent");
    assert_eq!(v.throttle_state("pw:a").await.unwrap().unwrap().attempts, 2);
    assert_eq!(v.throttle_state("pw:b").await.unwrap().unwrap().attempts, 7);
}

pub async fn twenty_racing_throttle_puts_of_one_revision_let_one_win(b: &VisitorBackend) {
    let key = format!("pw:{}:192.0.2.7", LinkId::new());
    let expires = Utc::now() + Duration::hours(1);
    for revision in [0, 1] {
        let tasks: Vec<_> = (0..20u32)
            .map(|i| {
                let (v, key) = (b.visitors.clone(), key.clone());
                tokio::spawn(async move {
                    let mine = bucket(100 * (revision as u32 + 1) + i, revision);
                    v.put_throttle_state(&key, &mine, expires).await.map(|()| mine)
                })
            })
            .collect();
        let mut winners = Vec::new();
        for t in tasks {
            match t.await.unwrap() {
                Ok(mine) => winners.push(mine),
                Err(StoreError::Conflict("throttle")) => {}
                Err(e) => panic!("unexpected {e:?}"),
            }
        }
        assert_eq!(winners.len(), 1, "one put of revision {revision} wins");
        let stored = b.visitors.throttle_state(&key).await.unwrap().unwrap();
        assert_eq!(stored, ThrottleState { revision: revision + 1, ..winners[0].clone() });
    }
}

pub async fn limit_counters_and_slots_hold_under_racing_writes(b: &VisitorBackend) {
    let key = format!("test:hourly:{}", LinkId::new());
    let expires = Utc::now() + Duration::hours(2);
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let (v, key) = (b.visitors.clone(), key.clone());
            tokio::spawn(async move { v.count_up(&key, 7, expires).await.unwrap() })
        })
        .collect();
    let mut counts = Vec::new();
    for t in tasks {
        counts.extend(t.await.unwrap());
    }
    counts.sort();
    assert_eq!(counts, (1..=7).collect::<Vec<u32>>(), "exactly the limit, each count once");
    assert_eq!(b.visitors.count(&key).await.unwrap(), 7);
    b.visitors.count_down(&key).await.unwrap();
    assert_eq!(b.visitors.count(&key).await.unwrap(), 6);
    assert_eq!(b.visitors.count_up(&key, 7, expires).await.unwrap(), Some(7), "a place given back is taken again");
    assert_eq!(b.visitors.count_up(&key, 7, expires).await.unwrap(), None);
    let empty = format!("test:empty:{}", LinkId::new());
    b.visitors.count_down(&empty).await.unwrap();
    assert_eq!(b.visitors.count(&empty).await.unwrap(), 0, "never counted");
    assert_eq!(b.visitors.count_up(&empty, 1, expires).await.unwrap(), Some(1), "never below zero");

    let slot_key = format!("test:slot:{}", LinkId::new());
    assert_eq!(b.visitors.slot(&slot_key).await.unwrap(), None);
    let until = chrono::TimeZone::with_ymd_and_hms(&Utc, 2031, 1, 2, 3, 4, 5).unwrap();
    let tasks: Vec<_> = (0..20)
        .map(|i| {
            let (v, key) = (b.visitors.clone(), slot_key.clone());
            tokio::spawn(async move {
                let mine = Slot { holder: format!("h{i}"), until };
                v.take_slot(&key, &mine, None).await.unwrap().then_some(mine)
            })
        })
        .collect();
    let mut winners = Vec::new();
    for t in tasks {
        winners.extend(t.await.unwrap());
    }
    assert_eq!(winners.len(), 1, "one of twenty takes a free slot");
    let held = b.visitors.slot(&slot_key).await.unwrap().unwrap();
    assert_eq!(held, winners[0]);
    let next = Slot { holder: "next".into(), until };
    assert!(!b.visitors.take_slot(&slot_key, &next, Some("someone else")).await.unwrap());
    b.visitors.free_slot(&slot_key, "someone else").await.unwrap();
    assert_eq!(b.visitors.slot(&slot_key).await.unwrap(), Some(held.clone()), "only its holder frees a slot");
    let tasks: Vec<_> = (0..20)
        .map(|i| {
            let (v, key, previous) = (b.visitors.clone(), slot_key.clone(), held.holder.clone());
            tokio::spawn(async move {
                let mine = Slot { holder: format!("t{i}"), until };
                v.take_slot(&key, &mine, Some(&previous)).await.unwrap()
            })
        })
        .collect();
    let mut took = 0;
    for t in tasks {
        took += usize::from(t.await.unwrap());
    }
    assert_eq!(took, 1, "one of twenty takes over a slot from its old holder");
    let now_held = b.visitors.slot(&slot_key).await.unwrap().unwrap();
    b.visitors.free_slot(&slot_key, &now_held.holder).await.unwrap();
    assert_eq!(b.visitors.slot(&slot_key).await.unwrap(), None);
    assert!(b.visitors.take_slot(&slot_key, &next, None).await.unwrap(), "free again");
}

fn archive_job(account: AccountId, by: Downloader, created_at: chrono::DateTime<Utc>, fingerprint: &str) -> ArchiveJob {
    let source = ArchiveSource::Folder { folder_id: FolderId::new() };
    let deadline = created_at + Duration::minutes(15);
    ArchiveJob::pending(
        ArchiveId::new(),
        account,
        by,
        source,
        "Photos.zip".into(),
        fingerprint.into(),
        &[],
        created_at,
        deadline,
    )
}

pub async fn archive_jobs_are_replaced_on_revision_and_listed_three_ways(b: &VisitorBackend) {
    let v = &b.visitors;
    let (acc, link) = (AccountId::new(), LinkId::new());
    let t0 = Utc::now() - Duration::hours(1);
    let visitor = |session: &str| Downloader::PublicLink { link_id: link, session: session.into() };
    let mut jobs = Vec::new();
    for i in 0..7i64 {
        let by = match i % 3 {
            0 => Downloader::User { user_id: UserId::new() },
            1 => visitor("session-a"),
            _ => visitor("session-b"),
        };
        let fingerprint = if i < 4 { "same" } else { "other" };
        let job = archive_job(acc, by, t0 + Duration::seconds(i), fingerprint);
        v.insert_archive_job(&job).await.unwrap();
        jobs.push(job);
    }
    let older = t0 - Duration::seconds(1);
    let elsewhere = Downloader::PublicLink { link_id: LinkId::new(), session: "session-a".into() };
    v.insert_archive_job(&archive_job(AccountId::new(), elsewhere, older, "same")).await.unwrap();
    assert_eq!(v.insert_archive_job(&jobs[0]).await, Err(StoreError::AlreadyExists("archive job")));
    assert_eq!(v.archive_job(jobs[1].id).await.unwrap().as_ref(), Some(&jobs[1]));
    assert_eq!(v.archive_job(ArchiveId::new()).await.unwrap(), None);

    // Progress and completion are conditional on the revision the writer read.
    let mut building = jobs[1].clone();
    building.state = ArchiveState::Building;
    building.files_done = 2;
    let stored = v.replace_archive_job(&building).await.unwrap();
    assert_eq!(stored.revision, 1);
    assert_eq!(
        v.replace_archive_job(&building).await,
        Err(StoreError::Conflict("archive job")),
        "a stale writer loses"
    );
    let mut gone = jobs[1].clone();
    gone.id = ArchiveId::new();
    assert_eq!(v.replace_archive_job(&gone).await, Err(StoreError::NotFound("archive job")));
    jobs[1] = stored;

    let newest_first = |mut list: Vec<ArchiveJob>| {
        list.sort_by_key(|j| std::cmp::Reverse((j.created_at, j.id.to_string())));
        list
    };
    let listed = all_pages(3, |p| async move { v.account_archive_jobs(acc, &p).await }).await;
    assert_eq!(listed, newest_first(jobs.clone()), "every job of the account, and no other's");
    let listed = all_pages(2, |p| async move { v.visitor_archive_jobs(link, "session-a", &p).await }).await;
    let mine = newest_first(jobs.iter().filter(|j| j.requested_by == visitor("session-a")).cloned().collect());
    assert_eq!(listed, mine, "one session's jobs through one link");
    assert!(v.visitor_archive_jobs(LinkId::new(), "session-a", &PageRequest::first(5)).await.unwrap().items.is_empty());

    let same = v.archive_jobs_by_fingerprint("same", 10).await.unwrap();
    let ids: Vec<_> = same.iter().map(|j| j.id).collect();
    assert_eq!(ids.len(), 5, "four of this account and one of another");
    assert_eq!(ids[..4], newest_first(jobs[..4].to_vec()).iter().map(|j| j.id).collect::<Vec<_>>()[..]);
    assert_eq!(same.iter().find(|j| j.id == jobs[1].id).map(|j| j.revision), Some(1), "read as stored now");
    assert_eq!(v.archive_jobs_by_fingerprint("same", 2).await.unwrap().len(), 2);
    assert!(v.archive_jobs_by_fingerprint("none", 10).await.unwrap().is_empty());
}

// --- placements: writes that put things somewhere ---------------------------

pub async fn placed_writes_commit_only_while_their_chain_holds(b: &Backend) {
    let c = &b.catalog;
    let acc = AccountId::new();
    let conflict = Err(StoreError::Conflict("placement"));
    let misplaced = StoreError::Conflict("placement");
    let a = folder(acc, None, "A");
    c.insert_folder(&a, &Placement::default()).await.unwrap();
    let below = folder(acc, Some(a.id), "B");
    assert_eq!(
        c.insert_folder(&below, &Placement::default()).await,
        conflict,
        "the placement must start at the parent"
    );
    assert_eq!(c.insert_folder(&below, &Placement(vec![a.id, FolderId::new()])).await, conflict, "a chain that is not");
    assert_eq!(c.folder(below.id).await.unwrap(), None, "a refused insert leaves nothing");
    c.insert_folder(&below, &Placement(vec![a.id])).await.unwrap();
    let deep = Placement(vec![below.id, a.id]);
    let f = file(acc, Some(below.id), "f.png");
    c.insert_file(&f, &deep).await.unwrap();
    let stranger = folder(AccountId::new(), Some(below.id), "S");
    assert_eq!(c.insert_folder(&stranger, &deep).await, conflict, "a chain of another account");

    // A moves under T: every placement through A is stale.
    let t = folder(acc, None, "T");
    c.insert_folder(&t, &Placement::default()).await.unwrap();
    let mut a_moved = a.clone();
    a_moved.parent_id = Some(t.id);
    assert_eq!(c.move_folder(&a_moved, &Placement::default()).await.unwrap_err(), misplaced, "starts at its parent");
    let a_moved = c.move_folder(&a_moved, &Placement(vec![t.id])).await.unwrap();
    assert_eq!(c.subfolders(acc, Some(t.id), &PageRequest::first(10)).await.unwrap().items, vec![a_moved.clone()]);
    let late = file(acc, Some(below.id), "late.png");
    assert_eq!(c.insert_file(&late, &deep).await, conflict, "placed where the tree no longer is");
    assert_eq!(c.file(late.id).await.unwrap(), None);
    let now_deep = Placement(vec![below.id, a.id, t.id]);
    c.insert_file(&late, &now_deep).await.unwrap();

    let mut f_up = c.file(f.id).await.unwrap().unwrap();
    f_up.folder_id = Some(a.id);
    assert_eq!(c.move_file(&f_up, &Placement(vec![a.id])).await.unwrap_err(), misplaced);
    assert_eq!(c.file(f.id).await.unwrap().unwrap().folder_id, Some(below.id), "a refused move leaves the file");
    let stored = c.move_file(&f_up, &Placement(vec![a.id, t.id])).await.unwrap();
    assert_eq!((stored.revision, stored.folder_id), (f_up.revision + 1, Some(a.id)));
    assert_eq!(c.move_file(&f_up, &Placement(vec![a.id, t.id])).await, Err(StoreError::Conflict("file")));

    let mut t_under = c.folder(t.id).await.unwrap().unwrap();
    t_under.parent_id = Some(below.id);
    assert_eq!(c.move_folder(&t_under, &now_deep).await.unwrap_err(), misplaced, "nothing moves under itself");

    // Once A is deleted, nothing can be placed under it.
    let deletion = folder_deletion(c.folder(a.id).await.unwrap().unwrap());
    c.detach_folder(&deletion).await.unwrap();
    assert_eq!(c.folder(a.id).await.unwrap(), None);
    assert_eq!(c.insert_file(&file(acc, Some(below.id), "x.png"), &now_deep).await, conflict);
    assert_eq!(c.insert_folder(&folder(acc, Some(below.id), "X"), &now_deep).await, conflict);
    c.insert_folder(&folder(acc, Some(t.id), "a"), &Placement(vec![t.id])).await.expect("its name is free again");
}

fn folder_deletion(folder: Folder) -> FolderDeletion {
    let now = Utc::now();
    FolderDeletion {
        folder,
        requested_by: UserId::new(),
        status: DeletionStatus::Pending,
        folders_removed: 0,
        files_removed: 0,
        created_at: now,
        updated_at: now,
        finished_at: None,
        revision: 0,
    }
}

pub async fn detached_folders_keep_a_deletion_record_until_done(b: &Backend) {
    let c = &b.catalog;
    let acc = AccountId::new();
    let f = folder(acc, None, "Doomed");
    c.insert_folder(&f, &Placement::default()).await.unwrap();
    let mut renamed = f.clone();
    renamed.name = "Renamed".into();
    let renamed = c.replace_folder(&renamed).await.unwrap();
    assert_eq!(c.detach_folder(&folder_deletion(f.clone())).await, Err(StoreError::Conflict("folder")), "a stale read");
    let deletion = folder_deletion(renamed.clone());
    c.detach_folder(&deletion).await.unwrap();
    assert_eq!(c.detach_folder(&deletion).await, Err(StoreError::NotFound("folder")));
    assert_eq!(c.folder_deletion(f.id).await.unwrap(), Some(deletion.clone()));
    assert_eq!(c.folder_deletion(FolderId::new()).await.unwrap(), None);
    let unfinished = c.unfinished_folder_deletions(10).await.unwrap();
    assert!(unfinished.iter().any(|d| d.folder.id == f.id));

    let mut running = deletion.clone();
    running.status = DeletionStatus::Running;
    running.files_removed = 3;
    let stored = c.replace_folder_deletion(&running).await.unwrap();
    assert_eq!(stored.revision, 1);
    assert_eq!(c.replace_folder_deletion(&running).await, Err(StoreError::Conflict("folder deletion")));
    let mut done = stored.clone();
    done.status = DeletionStatus::Done;
    done.finished_at = Some(Utc::now());
    c.replace_folder_deletion(&done).await.unwrap();
    assert!(c.unfinished_folder_deletions(10).await.unwrap().iter().all(|d| d.folder.id != f.id));
    assert_eq!(c.folder_deletion(f.id).await.unwrap().unwrap().status, DeletionStatus::Done);
    let ghost = folder_deletion(folder(acc, None, "ghost"));
    assert_eq!(c.replace_folder_deletion(&ghost).await, Err(StoreError::NotFound("folder deletion")));
}

// --- links and where their targets are -----------------------------------------

pub async fn links_are_made_only_on_targets_where_they_say(b: &LinkBackend) {
    let (c, s) = (&b.catalog, &b.links);
    let acc = AccountId::new();
    let now = Utc::now();
    let conflict = Err(StoreError::Conflict("link target"));
    let a = folder(acc, None, "A");
    c.insert_folder(&a, &Placement::default()).await.unwrap();
    let f = file(acc, Some(a.id), "f.png");
    c.insert_file(&f, &Placement(vec![a.id])).await.unwrap();
    let on = |target: Target, placement: Vec<FolderId>| {
        let mut l = link(acc, target, 0, None);
        l.placement = Some(Placement(placement));
        l
    };
    let limits = LinkLimits { per_target: 5, per_account: 100 };
    let create = |l: Link| async move { s.create_link(&l, limits, &audit(&l, AuditAction::Created, now)).await };

    let misplaced = on(Target::File(f.id), vec![]);
    assert_eq!(create(misplaced.clone()).await, conflict, "the file is not at the top");
    assert_eq!(s.link(misplaced.id).await.unwrap(), None, "a refused link leaves nothing behind");
    let query = AuditQuery { link: Some(misplaced.id), ..Default::default() };
    assert!(s.audit_entries(acc, &query, &PageRequest::first(10)).await.unwrap().items.is_empty());
    assert_eq!(create(on(Target::File(FileId::new()), vec![a.id])).await, conflict, "no such file");
    assert_eq!(create(on(Target::Folder(a.id), vec![FolderId::new()])).await, conflict);
    let elsewhere = AccountId::new();
    let mut foreign = link(elsewhere, Target::File(f.id), 0, None);
    foreign.placement = Some(Placement(vec![a.id]));
    assert_eq!(create(foreign).await, conflict, "another account's file");
    create(on(Target::File(f.id), vec![a.id])).await.unwrap();
    create(on(Target::Folder(a.id), vec![])).await.unwrap();

    let t = folder(acc, None, "T");
    c.insert_folder(&t, &Placement::default()).await.unwrap();
    let mut moved = a.clone();
    moved.parent_id = Some(t.id);
    c.move_folder(&moved, &Placement(vec![t.id])).await.unwrap();
    assert_eq!(create(on(Target::File(f.id), vec![a.id])).await, conflict, "the folder above moved");
    assert_eq!(create(on(Target::Folder(a.id), vec![])).await, conflict, "the folder moved");
    create(on(Target::File(f.id), vec![a.id, t.id])).await.unwrap();

    let collection = top_target(b, acc, TargetKind::Collection).await;
    create(on(collection, vec![])).await.unwrap();
    let Target::Collection(id) = collection else { unreachable!() };
    c.delete_collection(id).await.unwrap();
    assert_eq!(create(on(collection, vec![])).await, conflict, "a deleted collection");
    c.delete_file(f.id).await.unwrap();
    assert_eq!(create(on(Target::File(f.id), vec![a.id, t.id])).await, conflict, "a deleted file");
}

pub async fn links_within_a_scope_are_every_link_on_it_or_under_it(b: &LinkBackend) {
    let (c, s) = (&b.catalog, &b.links);
    let acc = AccountId::new();
    let now = Utc::now();
    let limits = LinkLimits { per_target: 5, per_account: 100 };
    // t/a/deep with f in deep, g in t; o beside t; a collection.
    let t = folder(acc, None, "T");
    c.insert_folder(&t, &Placement::default()).await.unwrap();
    let a = folder(acc, Some(t.id), "A");
    c.insert_folder(&a, &Placement(vec![t.id])).await.unwrap();
    let deep = folder(acc, Some(a.id), "Deep");
    c.insert_folder(&deep, &Placement(vec![a.id, t.id])).await.unwrap();
    let f = file(acc, Some(deep.id), "f.png");
    c.insert_file(&f, &Placement(vec![deep.id, a.id, t.id])).await.unwrap();
    let g = file(acc, Some(t.id), "g.png");
    c.insert_file(&g, &Placement(vec![t.id])).await.unwrap();
    let o = top_target(b, acc, TargetKind::Folder).await;
    let col = top_target(b, acc, TargetKind::Collection).await;
    let mut made = BTreeMap::new();
    for (name, target, placement) in [
        ("t", Target::Folder(t.id), vec![]),
        ("a", Target::Folder(a.id), vec![t.id]),
        ("deep", Target::Folder(deep.id), vec![a.id, t.id]),
        ("f", Target::File(f.id), vec![deep.id, a.id, t.id]),
        ("f2", Target::File(f.id), vec![deep.id, a.id, t.id]),
        ("g", Target::File(g.id), vec![t.id]),
        ("o", o, vec![]),
        ("col", col, vec![]),
    ] {
        let mut l = link(acc, target, 0, None);
        l.placement = Some(Placement(placement));
        s.create_link(&l, limits, &audit(&l, AuditAction::Created, now)).await.unwrap();
        made.insert(l.id, name);
    }
    let elsewhere = AccountId::new();
    let theirs = link(elsewhere, top_target(b, elsewhere, TargetKind::Folder).await, 0, None);
    s.create_link(&theirs, limits, &audit(&theirs, AuditAction::Created, now)).await.unwrap();

    let names = |links: Vec<Link>| {
        let mut n: Vec<&str> = links.iter().map(|l| made[&l.id]).collect();
        n.sort();
        n
    };
    assert_eq!(names(s.links_within(acc, Target::Folder(t.id)).await.unwrap()), ["a", "deep", "f", "f2", "g", "t"]);
    assert_eq!(names(s.links_within(acc, Target::Folder(a.id)).await.unwrap()), ["a", "deep", "f", "f2"]);
    assert_eq!(names(s.links_within(acc, Target::Folder(deep.id)).await.unwrap()), ["deep", "f", "f2"]);
    assert_eq!(names(s.links_within(acc, Target::File(f.id)).await.unwrap()), ["f", "f2"]);
    assert_eq!(names(s.links_within(acc, col).await.unwrap()), ["col"]);
    assert_eq!(names(s.links_within(acc, o).await.unwrap()), ["o"]);
    assert!(s.links_within(acc, Target::File(FileId::new())).await.unwrap().is_empty());

    let f_link = made.iter().find(|(_, n)| **n == "f").map(|(id, _)| *id).unwrap();
    let stored = s.link(f_link).await.unwrap().unwrap();
    assert!(s.delete_link(f_link, &audit(&stored, AuditAction::Deleted, now)).await.unwrap());
    assert_eq!(names(s.links_within(acc, Target::File(f.id)).await.unwrap()), ["f2"], "a deleted link is not within");
}

pub async fn link_activity_is_counted_logged_paged_and_forgotten_in_time(b: &VisitorBackend) {
    let (link, other) = (LinkId::new(), LinkId::new());
    // Stores keep times to the microsecond (the domain records them so).
    let start = chrono::SubsecRound::trunc_subsecs(Utc::now(), 6);
    let entry = |link: LinkId, i: i64, event: LinkEvent, bytes: u64| ActivityEntry {
        id: ActivityId::new(),
        link_id: link,
        at: start + Duration::seconds(i),
        event,
        file_id: (bytes > 0).then(FileId::new),
        bytes,
        client: format!("client{}", i % 3),
        country: (i % 2 == 0).then(|| "FR".to_string()),
        // The first four are kept a day, the rest a month.
        keep_until: start + Duration::seconds(i) + if i < 4 { Duration::days(1) } else { Duration::days(30) },
    };
    let events = [LinkEvent::PageOpened, LinkEvent::SessionStarted, LinkEvent::FileViewed, LinkEvent::Downloaded];
    let event = |i: i64| entry(link, i, events[i as usize % 4], if i % 4 == 3 { 100 } else { 0 });
    // The first and the last alone (requests racing on one counter shard
    // may leave either's time: milliseconds apart in life), the rest
    // recorded concurrently, as busy links record them.
    b.visitors.record_activity(&event(0)).await.unwrap();
    let tasks: Vec<_> = (1..19)
        .map(|i| {
            let v = b.visitors.clone();
            let e = event(i);
            tokio::spawn(async move { v.record_activity(&e).await.unwrap() })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    b.visitors.record_activity(&event(19)).await.unwrap();
    b.visitors.record_activity(&entry(other, 0, LinkEvent::WrongPassword, 0)).await.unwrap();

    let counted = b.visitors.link_activity(link).await.unwrap();
    assert_eq!(
        (counted.page_opens, counted.sessions, counted.file_views, counted.downloads, counted.bytes_served),
        (5, 5, 5, 5, 500)
    );
    assert_eq!((counted.first_access, counted.last_access), (Some(start), Some(start + Duration::seconds(19))));
    assert_eq!(counted.wrong_passwords, 0);
    assert_eq!(b.visitors.link_activity(LinkId::new()).await.unwrap(), LinkActivity::default());
    let many = b.visitors.links_activity(&[other, LinkId::new(), link]).await.unwrap();
    assert_eq!(many.iter().map(|(l, _)| *l).collect::<Vec<_>>(), [other, link], "never-visited links are absent");
    assert_eq!(many[0].1.wrong_passwords, 1);

    // Newest first, 3 a page, every entry once.
    let (mut seen, mut cursor) = (Vec::new(), None);
    loop {
        let page = b.visitors.activity_log(link, start, &PageRequest { cursor, limit: 3 }).await.unwrap();
        assert!(page.items.len() <= 3);
        seen.extend(page.items);
        match page.next {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    let times: Vec<_> = seen.iter().map(|e| e.at).collect();
    assert_eq!(times, (0..20).rev().map(|i| start + Duration::seconds(i)).collect::<Vec<_>>());
    let newest = &seen[0];
    assert_eq!((newest.link_id, newest.event, newest.bytes), (link, LinkEvent::Downloaded, 100));
    assert_eq!((newest.client.as_str(), newest.country.as_deref()), ("client1", None));
    assert_eq!(newest.keep_until, newest.at + Duration::days(30));
    assert!(newest.file_id.is_some());
    assert_eq!(seen[1].country.as_deref(), Some("FR"));

    // Two days on, the entries kept a day are left out; the counters stay.
    let later = start + Duration::days(2);
    let kept = b.visitors.activity_log(link, later, &PageRequest::first(50)).await.unwrap();
    assert_eq!(kept.items.len(), 16);
    assert!(kept.items.iter().all(|e| e.keep_until >= later));
    assert_eq!(b.visitors.link_activity(link).await.unwrap(), counted);
    let bad = b.visitors.activity_log(link, start, &PageRequest { cursor: Some(Cursor("x".into())), limit: 3 }).await;
    assert_eq!(bad.unwrap_err(), StoreError::InvalidCursor);
}
