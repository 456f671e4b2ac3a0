//! The archive service over the embedded store: its limits, reuse and
//! lifetime, with archives built by the real builder.

use chrono::{DurationRound, Utc};
use publinks_archive::builder::ArchiveBuilder;
use publinks_domain::access::Actor;
use publinks_domain::archives::*;
use publinks_domain::ids::*;
use publinks_domain::library::{Library, LibrarySettings};
use publinks_domain::model::*;
use publinks_domain::signing::SecretKey;
use publinks_domain::store::*;
use publinks_domain::{DomainError, DomainResult};
use publinks_embedded::{BlobUrlSigner, DirectoryBlobStore, EmbeddedCatalog};
use std::sync::Arc;
use std::sync::Mutex;

/// A queue that only remembers what it was given: jobs stay pending.
#[derive(Default)]
struct HeldQueue(Mutex<Vec<ArchiveId>>);

#[async_trait::async_trait]
impl ArchiveQueue for HeldQueue {
    async fn enqueue(&self, id: ArchiveId) -> StoreResult<()> {
        self.0.lock().unwrap().push(id);
        Ok(())
    }
}

struct Setup {
    library: Library,
    stores: Stores,
    actor: Actor,
    queue: Arc<HeldQueue>,
    _dir: tempfile::TempDir,
}

async fn setup() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let catalog = Arc::new(EmbeddedCatalog::open(&dir.path().join("c.sqlite3")).unwrap());
    let root = dir.path().join("b");
    let blobs = DirectoryBlobStore::open(&root, BlobUrlSigner::new(SecretKey::generate(), "http://x")).unwrap();
    let stores = Stores {
        catalog: catalog.clone(),
        links: catalog.clone(),
        visitors: catalog.clone(),
        blobs: Arc::new(blobs.clone()),
        asset_uploads: Arc::new(blobs.clone()),
        archives: Arc::new(blobs.with_copy_source(&root)),
        webhooks: catalog.clone(),
        clock: publinks_domain::clock::system(),
    };
    let library = Library::new(&stores, LibrarySettings::default());
    let admin = publinks_domain::library::NewUser {
        id: None,
        name: "A".into(),
        email: "a@x.example".into(),
        role: Role::Admin,
    };
    let (account, user) = library.create_account("X", Plan::Enterprise, false, admin).await.unwrap();
    let actor = Actor { user, account };
    Setup { library, stores, actor, queue: Arc::new(HeldQueue::default()), _dir: dir }
}

async fn files(s: &Setup, n: usize, size: usize) -> Vec<FileId> {
    let mut ids = Vec::new();
    for i in 0..n {
        let purpose = UploadPurpose::NewFile { folder_id: None, name: format!("f{i}.txt") };
        let file = s.library.import_file(&s.actor, purpose, "text/plain", vec![b'x'; size]).await.unwrap();
        ids.push(file.id);
    }
    ids
}

fn visitor(session: &str, link: LinkId, account: AccountId) -> Requester {
    Requester {
        account_id: account,
        by: Downloader::PublicLink { link_id: link, session: session.into() },
        network: None,
    }
}

#[tokio::test]
async fn archives_past_the_file_or_byte_limit_are_refused_up_front() {
    let s = setup().await;
    let ids = files(&s, 3, 100).await;
    let settings = ArchiveSettings { max_files: 2, ..ArchiveSettings::default() };
    let err = s.library.archive_contents(&s.actor, &ArchiveRequest::Files(ids.clone()), &settings).await;
    assert!(
        matches!(&err, Err(DomainError::ArchiveTooLarge { message }) if message.contains("at most 2 files")),
        "{err:?}"
    );
    let settings = ArchiveSettings { max_bytes: 250, ..ArchiveSettings::default() };
    let err = s.library.archive_contents(&s.actor, &ArchiveRequest::Files(ids.clone()), &settings).await;
    assert!(matches!(err, Err(DomainError::ArchiveTooLarge { .. })));
    let fits = ArchiveSettings { max_files: 3, max_bytes: 300, ..ArchiveSettings::default() };
    let contents = s.library.archive_contents(&s.actor, &ArchiveRequest::Files(ids), &fits).await.unwrap();
    assert_eq!(contents.entries.len(), 3);
}

#[tokio::test]
async fn a_session_may_have_only_so_many_archives_in_the_making() {
    let s = setup().await;
    let service = ArchiveService::new(&s.stores, s.queue.clone(), ArchiveSettings::default());
    let ids = files(&s, 4, 10).await;
    let link = LinkId::new();
    let alice = visitor("alice", link, s.actor.account.id);
    let contents = |i: usize| {
        let (s, service, id) = (&s, &service, ids[i]);
        async move {
            s.library.archive_contents(&s.actor, &ArchiveRequest::Files(vec![id]), service.settings()).await.unwrap()
        }
    };
    let first = service.submit(&alice, contents(0).await).await.unwrap();
    // Asking again for one being made is no new build, and takes no place.
    let again = service.submit(&alice, contents(0).await).await.unwrap();
    assert_eq!(again.id, first.id);
    let second = service.submit(&alice, contents(1).await).await.unwrap();
    assert_eq!(s.queue.0.lock().unwrap().len(), 2);
    let err = service.submit(&alice, contents(2).await).await;
    assert!(
        matches!(&err, Err(DomainError::TooManyArchives { limit: ArchiveLimit::OpenPerSession, retry_after: 5, message })
            if message.contains("2 archives")),
        "{err:?}"
    );
    // Another session has its own places.
    service.submit(&visitor("bob", link, s.actor.account.id), contents(2).await).await.unwrap();
    assert_eq!(s.queue.0.lock().unwrap().len(), 3);

    // A finished build frees its place...
    let builder = ArchiveBuilder::new(&s.stores, Default::default());
    builder.build(first.id, None).await.unwrap();
    let third = service.submit(&alice, contents(2).await).await.unwrap();
    // ...and a place whose holder failed without freeing it is taken over.
    let mut failed = s.stores.visitors.archive_job(second.id).await.unwrap().unwrap();
    failed.state = ArchiveState::Failed;
    s.stores.visitors.replace_archive_job(&failed).await.unwrap();
    service.submit(&alice, contents(3).await).await.unwrap();
    let err = service.submit(&alice, contents(1).await).await;
    assert!(matches!(err, Err(DomainError::TooManyArchives { .. })), "{err:?}: {} is still in the making", third.id);
}

#[tokio::test]
async fn a_link_builds_only_so_many_archives_an_hour_whoever_asks() {
    let s = setup().await;
    let settings = ArchiveSettings { per_link_hourly: 3, ..ArchiveSettings::default() };
    let service = ArchiveService::new(&s.stores, s.queue.clone(), settings);
    let ids = files(&s, 4, 10).await;
    let link = LinkId::new();
    for (i, id) in ids.iter().enumerate() {
        let contents =
            s.library.archive_contents(&s.actor, &ArchiveRequest::Files(vec![*id]), service.settings()).await.unwrap();
        let result = service.submit(&visitor(&format!("v{i}"), link, s.actor.account.id), contents).await;
        if i < 3 {
            result.unwrap();
        } else {
            let Err(DomainError::TooManyArchives { limit, retry_after, message }) = result else {
                panic!("{result:?}")
            };
            assert_eq!(limit, ArchiveLimit::PerLinkHourly);
            let hour_ends = Utc::now().duration_trunc(chrono::Duration::hours(1)).unwrap() + chrono::Duration::hours(1);
            let to_hour_end = (hour_ends - Utc::now()).num_seconds() as u64;
            assert!((to_hour_end..=to_hour_end + 2).contains(&retry_after), "{retry_after} vs {to_hour_end}");
            assert!(message.contains("3 archives this hour"), "{message}");
        }
    }
    // Spent: refused before the contents are even resolved.
    let late = visitor("late", link, s.actor.account.id);
    async fn never() -> DomainResult<ArchiveContents> {
        panic!("a spent budget must not resolve the archive's contents")
    }
    let result = service.submit_resolving(&late, never()).await;
    assert!(matches!(result, Err(DomainError::TooManyArchives { .. })), "{result:?}");
}

#[tokio::test]
async fn a_request_that_fails_to_resolve_keeps_its_charge_and_a_reused_one_gives_it_back() {
    let s = setup().await;
    let settings = ArchiveSettings { per_link_hourly: 3, open_per_session: 5, ..ArchiveSettings::default() };
    let service = ArchiveService::new(&s.stores, s.queue.clone(), settings);
    let ids = files(&s, 2, 10).await;
    let link = LinkId::new();
    let alice = visitor("alice", link, s.actor.account.id);
    let contents = |id: FileId| {
        let (s, service) = (&s, &service);
        async move { s.library.archive_contents(&s.actor, &ArchiveRequest::Files(vec![id]), service.settings()).await }
    };
    // An unknown id at the end of a list: refused, and charged.
    let mut unknown = ids.clone();
    unknown.push(FileId::new());
    let request = ArchiveRequest::Files(unknown);
    let failing = s.library.archive_contents(&s.actor, &request, service.settings());
    assert!(matches!(service.submit_resolving(&alice, failing).await, Err(DomainError::NotFound(_))));
    // Built, then asked for again while in the making: the second costs nothing.
    service.submit_resolving(&alice, contents(ids[0])).await.unwrap();
    service.submit_resolving(&alice, contents(ids[0])).await.unwrap();
    service.submit_resolving(&alice, contents(ids[1])).await.unwrap();
    let spent = service.submit_resolving(&alice, contents(ids[1])).await;
    assert!(
        matches!(spent, Err(DomainError::TooManyArchives { limit: ArchiveLimit::PerLinkHourly, .. })),
        "1 failure + 2 builds spend a budget of 3: {spent:?}"
    );
    assert_eq!(s.queue.0.lock().unwrap().len(), 2);
    // The failure held no place: the session still has room for 3 more.
    let open = s.stores.visitors.visitor_archive_jobs(link, "alice", &PageRequest::first(10)).await.unwrap();
    assert_eq!(open.items.len(), 2);
}

#[tokio::test]
async fn ready_archives_expire_and_are_then_neither_reused_nor_downloaded() {
    let s = setup().await;
    let service = ArchiveService::new(&s.stores, s.queue.clone(), ArchiveSettings::default());
    let ids = files(&s, 1, 10).await;
    let request = ArchiveRequest::Files(ids);
    let contents = s.library.archive_contents(&s.actor, &request, service.settings()).await.unwrap();
    let job = service.submit(&Requester::user(&s.actor), contents.clone()).await.unwrap();
    assert!(matches!(
        service.download_url(&job).await,
        Err(DomainError::ArchiveNotReady { status: ArchiveStatus::Pending })
    ));

    // Built, then past its lifetime (and gone from the store, as the lifecycle rule does).
    let builder = ArchiveBuilder::new(&s.stores, Default::default());
    builder.build(job.id, None).await.unwrap();
    let ready = s.stores.visitors.archive_job(job.id).await.unwrap().unwrap();
    assert!(service.download_url(&ready).await.is_ok());
    let reused = service.submit(&Requester::user(&s.actor), contents.clone()).await.unwrap();
    assert_eq!((reused.state, &reused.archive_key), (ArchiveState::Ready, &ready.archive_key));
    assert_eq!(s.queue.0.lock().unwrap().len(), 1, "reuse builds nothing");

    let mut expired = ready.clone();
    expired.expires_at = Some(Utc::now() - chrono::Duration::seconds(1));
    let expired = s.stores.visitors.replace_archive_job(&expired).await.unwrap();
    assert_eq!(expired.status(Utc::now()), ArchiveStatus::Expired);
    assert!(matches!(
        service.download_url(&expired).await,
        Err(DomainError::ArchiveNotReady { status: ArchiveStatus::Expired })
    ));
    s.stores.archives.delete(&ready.archive_key).await.unwrap();
    assert!(
        matches!(
            service.download_url(&reused).await,
            Err(DomainError::ArchiveNotReady { status: ArchiveStatus::Expired })
        ),
        "a missing archive is expired, whatever the job says"
    );
    let fresh = service.submit(&Requester::user(&s.actor), contents).await.unwrap();
    assert_eq!(fresh.state, ArchiveState::Pending, "nothing left to reuse: built again");
}

#[tokio::test]
async fn a_network_place_taken_before_network_keys_were_hashed_is_freed_by_its_job() {
    let s = setup().await;
    let service = ArchiveService::new(&s.stores, s.queue.clone(), ArchiveSettings::default());
    let link = LinkId::new();
    let mut alice = visitor("alice", link, s.actor.account.id);
    alice.network = Some("0123456789abcdef".into());
    let ids = files(&s, 1, 10).await;
    let request = ArchiveRequest::Files(ids);
    let contents = s.library.archive_contents(&s.actor, &request, &ArchiveSettings::default()).await.unwrap();
    let mut job = service.submit(&alice, contents).await.unwrap();
    assert!(job.slots.iter().any(|k| k.contains(":0123456789abcdef:")), "{:?}", job.slots);
    // A job of the older form names its network's place by the address.
    let old = format!("archives:open:network:{link}:203.0.113.77:0");
    let slot = Slot { holder: job.id.to_string(), until: Utc::now() + chrono::Duration::hours(1) };
    assert!(s.stores.visitors.take_slot(&old, &slot, None).await.unwrap());
    job.slots.push(old.clone());
    free_slots(s.stores.visitors.as_ref(), &job).await;
    for key in &job.slots {
        assert!(s.stores.visitors.slot(key).await.unwrap().is_none(), "{key} is still held");
    }
}
