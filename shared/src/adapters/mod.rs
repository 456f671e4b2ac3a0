//! Implementations of the storage ports.
//!
//! - [`embedded`]: SQLite and a blob directory, for the local server and tests.
//! - `aws` (cargo feature `aws`): DynamoDB, S3 and Secrets Manager, for the Lambda functions.

#[cfg(feature = "aws")]
pub mod aws;
pub mod embedded;
