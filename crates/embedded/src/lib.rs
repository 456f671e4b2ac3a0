//! The embedded store: one SQLite database file and one blob directory under a
//! data directory, so the whole system runs on a laptop with no cloud account.
//! Records are JSON documents beside the key columns their queries need.
//! It implements the storage ports of `publinks-domain`; the signing keys
//! of the local server are a file of the same data directory ([`load_or_create_keys`]).

mod blobs;
mod catalog;
mod keys;
mod links;
mod visitors;
mod webhooks;

pub use blobs::{BlobGrant, BlobUrlError, BlobUrlSigner, DirectoryBlobStore, PartError};
pub use catalog::EmbeddedCatalog;
pub use keys::{KeyError, load_or_create_keys};
