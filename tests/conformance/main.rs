//! One behaviour suite for every implementation of the storage ports. Each
//! test body in [`suite`] runs once per backend: the embedded store here, the
//! AWS adapters (against moto on loopback) in `aws`.

mod archives;
mod aws;
mod suite;

use publinks_domain::ids::FolderId;
use publinks_domain::model::{File, Folder, Placement};
use publinks_domain::signing::SecretKey;
use publinks_domain::store::{
    AssetUploads, BlobStore, Catalog, FileStore, FolderStore, LinkRecords, StoreResult, Stores, VisitorRecords,
};
use publinks_embedded::{BlobUrlSigner, DirectoryBlobStore, EmbeddedCatalog};
use std::any::Any;
use std::sync::Arc;

/// The stores under test, and whatever must live as long as they do.
pub struct Backend {
    pub catalog: Arc<dyn Catalog>,
    pub blobs: Arc<dyn BlobStore>,
    /// Clients' uploads, into the same store as `blobs`.
    pub uploads: Arc<dyn AssetUploads>,
    /// Temporary directories, servers: dropped with the backend.
    pub keep: Vec<Box<dyn Any + Send + Sync>>,
}

/// The link store under test (links live in their own table in AWS).
pub struct LinkBackend {
    pub links: Arc<dyn LinkRecords>,
    /// Where link targets are (links can only be made on what exists).
    pub catalog: Arc<dyn Catalog>,
    /// Temporary directories: dropped with the backend.
    pub keep: Vec<Box<dyn Any + Send + Sync>>,
}

/// The downloads and throttle store under test (on the activity table in AWS).
pub struct VisitorBackend {
    pub visitors: Arc<dyn VisitorRecords>,
    /// Temporary directories: dropped with the backend.
    pub keep: Vec<Box<dyn Any + Send + Sync>>,
}

/// Everything an archive build touches, wired as the services wire it.
pub struct ArchiveBackend {
    pub stores: Stores,
    /// The embedded store's blob directory (`None` on S3).
    pub blob_dir: Option<std::path::PathBuf>,
    /// Temporary directories: dropped with the backend.
    pub keep: Vec<Box<dyn Any + Send + Sync>>,
}

/// A fresh embedded store whose archives live beside its assets, as in the local server.
pub async fn embedded_archive_backend() -> ArchiveBackend {
    let (store, dir) = embedded_store();
    let root = dir.downcast_ref::<tempfile::TempDir>().expect("a temp dir").path().join("blobs");
    let blobs =
        DirectoryBlobStore::open(&root, BlobUrlSigner::new(SecretKey::generate(), "http://x")).expect("open blobs");
    let stores = Stores {
        catalog: store.clone(),
        links: store.clone(),
        visitors: store.clone(),
        blobs: Arc::new(blobs.clone()),
        asset_uploads: Arc::new(blobs.clone()),
        archives: Arc::new(blobs.with_copy_source(&root)),
        webhooks: store.clone(),
        clock: publinks_domain::clock::system(),
    };
    ArchiveBackend { stores, blob_dir: Some(root), keep: vec![dir] }
}

/// A fresh embedded store in a temporary directory, and the directory.
fn embedded_store() -> (Arc<EmbeddedCatalog>, Box<dyn Any + Send + Sync>) {
    let dir = tempfile::tempdir().expect("temp dir");
    let catalog = EmbeddedCatalog::open(&dir.path().join("catalog.sqlite3")).expect("open catalog");
    (Arc::new(catalog), Box::new(dir))
}

/// A fresh embedded link store in a temporary directory.
pub async fn embedded_link_backend() -> LinkBackend {
    let (store, dir) = embedded_store();
    LinkBackend { links: store.clone(), catalog: store, keep: vec![dir] }
}

/// A fresh embedded downloads and throttle store in a temporary directory.
pub async fn embedded_visitor_backend() -> VisitorBackend {
    let (store, dir) = embedded_store();
    VisitorBackend { visitors: store, keep: vec![dir] }
}

/// A fresh embedded store in a temporary directory, with the local server's
/// blob routes on a loopback port so its signed URLs really work.
pub async fn embedded_backend() -> Backend {
    let dir = tempfile::tempdir().expect("temp dir");
    let catalog = EmbeddedCatalog::open(&dir.path().join("catalog.sqlite3")).expect("open catalog");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let base = format!("http://{}", listener.local_addr().unwrap());
    let blobs = DirectoryBlobStore::open(&dir.path().join("blobs"), BlobUrlSigner::new(SecretKey::generate(), base))
        .expect("open blobs");
    let server = tokio::spawn(axum::serve(listener, publinks_local::blobs::router(blobs.clone())).into_future());
    Backend {
        catalog: Arc::new(catalog),
        blobs: Arc::new(blobs.clone()),
        uploads: Arc::new(blobs),
        keep: vec![Box::new(dir), Box::new(AbortOnDrop(server))],
    }
}

/// Stops a spawned server when the backend is dropped.
pub struct AbortOnDrop(pub tokio::task::JoinHandle<std::io::Result<()>>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Instantiates every link-store test body of [`suite`] for one backend.
#[macro_export]
macro_rules! link_conformance_suite {
    ($backend:ident, $factory:expr) => {
        mod $backend {
            use super::*;
            $crate::conformance_suite!(@tests $factory;
                links_fit_their_limits_until_deleted,
                fifty_racing_link_creates_on_one_target_make_five,
                links_are_found_by_token_hash_replaced_and_deleted_once,
                links_open_with_their_account_and_shared_folder,
                account_links_filter_sort_and_page,
                audit_entries_are_idempotent_filtered_and_newest_first,
                expired_links_are_found_in_every_scope_up_to_the_limit,
                links_about_to_end_are_found_past_any_number_that_already_ended,
                a_limit_of_zero_refuses_the_first_link,
                three_hundred_racing_creates_in_one_account_make_one_hundred,
                links_are_made_only_on_targets_where_they_say,
                links_within_a_scope_are_every_link_on_it_or_under_it,
            );
        }
    };
}

/// Instantiates every download and throttle test body of [`suite`] for one backend.
#[macro_export]
macro_rules! visitor_conformance_suite {
    ($backend:ident, $factory:expr) => {
        mod $backend {
            use super::*;
            $crate::conformance_suite!(@tests $factory;
                downloads_are_listed_per_account_and_per_visitor_newest_first,
                throttle_buckets_are_compared_and_set_on_their_revision,
                twenty_racing_throttle_puts_of_one_revision_let_one_win,
                archive_jobs_are_replaced_on_revision_and_listed_three_ways,
                limit_counters_and_slots_hold_under_racing_writes,
                link_activity_is_counted_logged_paged_and_forgotten_in_time,
            );
        }
    };
}

/// Instantiates every archive test body of [`archives`] for one backend.
#[macro_export]
macro_rules! archive_conformance_suite {
    ($backend:ident, $factory:expr) => {
        mod $backend {
            use super::*;
            $crate::archive_conformance_suite!(@tests $factory;
                multipart_archives_complete_whole_or_abort_to_nothing,
                a_tree_with_every_kind_of_entry_round_trips_through_four_readers,
                a_file_gone_midway_aborts_the_upload_and_fails_the_job,
                a_store_failure_midway_aborts_the_upload_and_fails_the_job,
                a_store_failure_that_passes_is_retried_into_one_whole_archive,
                progress_never_reads_full_before_the_archive_is_ready,
                a_retry_aborts_the_crashed_attempt_and_finishes,
                a_build_past_its_deadline_fails_without_writing,
                archive_limits_hold_exactly_under_concurrent_requests,
                a_copy_is_made_only_while_the_asset_is_the_one_recorded,
            );
        }
    };
    (@tests $factory:expr; $($name:ident),+ $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let backend = $factory.await;
                super::archives::$name(&backend).await;
            }
        )+
    };
}

/// Instantiates every catalog and blob test body of [`suite`] for one backend.
#[macro_export]
macro_rules! conformance_suite {
    ($backend:ident, $factory:expr) => {
        mod $backend {
            use super::*;
            $crate::conformance_suite!(@tests $factory;
                accounts_insert_read_replace_and_page,
                users_belong_to_accounts_and_take_their_grants_along,
                grants_are_upserted_listed_and_removed,
                names_in_a_folder_are_unique_among_files_and_folders,
                folder_replace_is_conditional_on_revision,
                subfolders_page_in_name_order,
                files_keep_versions_and_page_by_folder,
                listed_files_are_the_folders_files_in_the_same_pages,
                collections_hold_files_in_order_of_addition,
                many_records_are_read_by_id_at_once,
                uploads_move_on_their_revision_and_are_deleted,
                foreign_cursors_are_refused,
                racing_creates_of_one_name_make_one_file_or_folder,
                racing_replaces_of_one_revision_let_one_win,
                racing_completions_of_one_upload_let_one_seal_it,
                blobs_round_trip_and_missing_ones_are_not_found,
                placed_writes_commit_only_while_their_chain_holds,
                detached_folders_keep_a_deletion_record_until_done,
                uploads_take_parts_over_http_until_completed_and_then_never,
            );
        }
    };
    (@tests $factory:expr; $($name:ident),+ $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let backend = $factory.await;
                super::suite::$name(&backend).await;
            }
        )+
    };
}

conformance_suite!(embedded, embedded_backend());
link_conformance_suite!(embedded_links, embedded_link_backend());
visitor_conformance_suite!(embedded_visitors, embedded_visitor_backend());
conformance_suite!(aws_suite, aws::backend());
link_conformance_suite!(aws_links, aws::link_backend());
visitor_conformance_suite!(aws_visitors, aws::visitor_backend());
archive_conformance_suite!(embedded_archives, embedded_archive_backend());
archive_conformance_suite!(aws_archives, aws::archive_backend());

/// The catalog's placed writes with the placement read from the store as it
/// is now: what tests that are not about placement need to set up a tree.
#[allow(async_fn_in_trait)] // used by these tests only, never across threads
pub trait PlaceAsStored {
    /// `insert_folder` under the folder's parent as stored.
    async fn insert_folder_placed(&self, folder: &Folder) -> StoreResult<()>;
    /// `insert_file` in the file's folder as stored.
    async fn insert_file_placed(&self, file: &File) -> StoreResult<()>;
}

/// The placement of whatever sits directly in `folder`, read from `catalog`.
pub async fn stored_placement<C: FolderStore + ?Sized>(catalog: &C, folder: Option<FolderId>) -> Placement {
    let mut chain = Vec::new();
    let mut next = folder;
    while let Some(id) = next {
        chain.push(id);
        next = catalog.folder(id).await.unwrap().and_then(|f| f.parent_id);
    }
    Placement(chain)
}

impl<C: FolderStore + FileStore + ?Sized> PlaceAsStored for C {
    async fn insert_folder_placed(&self, folder: &Folder) -> StoreResult<()> {
        self.insert_folder(folder, &stored_placement(self, folder.parent_id).await).await
    }
    async fn insert_file_placed(&self, file: &File) -> StoreResult<()> {
        self.insert_file(file, &stored_placement(self, file.folder_id).await).await
    }
}
