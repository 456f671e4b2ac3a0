//! The common crate of publinks: everything the Lambda functions and the local
//! server share.
//!
//! # Layout
//! - [`ids`]: typed identifiers, so a file id can never be passed where a folder id is meant.
//! - [`domain`]: the media library and its rules (who may do what, names, versions).
//!   It knows nothing of AWS, SQLite or HTTP.
//! - [`archive`]: ZIP archives of many files: the container, entry names, the builder.
//! - [`store`]: the storage ports, small traits named for what they hold, and their error type.
//! - [`adapters`]: implementations of the ports (the embedded store on SQLite and a blob directory).
//! - [`media`]: what is read out of uploaded bytes (dimensions, EXIF) and demo images.
//! - [`auth`]: who is calling: bearer JWTs locally, API Gateway authorizer claims in Lambda.
//! - [`signing`]: signing keys and HMAC-signed URLs for the local blob endpoints.
//! - [`http`]: the axum routers, the one place where errors become HTTP responses.
//! - [`demo`]: the demo account the local server seeds on first start.
//! - [`jobs`]: the local server's worker of library jobs (reading big uploads, removing deleted folder trees).
//! - `lambda` (feature `aws`): what each Lambda function builds at cold start.
//! - `stream` (feature `aws`): the links table's stream, as the `audit-stream` function handles it.
//! - `zip_builder` (feature `aws`): the archive queue, as the `zip-builder` function handles it.
//! - `library_worker` (feature `aws`): the library job queue, as the `library-worker` function handles it.

pub mod adapters;
pub mod archive;
pub mod auth;
pub mod demo;
pub mod domain;
pub mod http;
pub mod ids;
pub mod jobs;
#[cfg(feature = "aws")]
pub mod lambda;
#[cfg(feature = "aws")]
pub mod library_worker;
pub mod media;
pub mod signing;
pub mod store;
#[cfg(feature = "aws")]
pub mod stream;
#[cfg(feature = "aws")]
pub mod zip_builder;
