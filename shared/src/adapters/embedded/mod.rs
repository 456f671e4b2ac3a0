//! The embedded store: one SQLite database file and one blob directory under a
//! data directory, so the whole system runs on a laptop with no cloud account.
//! Records are JSON documents beside the key columns their queries need.

mod blobs;
mod catalog;
mod links;
mod visitors;

pub use blobs::{BlobGrant, BlobUrlError, BlobUrlSigner, DirectoryBlobStore, PartError, valid_blob_key};
pub use catalog::EmbeddedCatalog;
