//! Implementations of the storage ports.
//!
//! - [`embedded`]: SQLite and a blob directory, for the local server and tests.

pub mod embedded;
