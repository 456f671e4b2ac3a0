//! End-to-end tests: the real local server on a loopback port, over real HTTP.
//! One binary, a module per area; every test gets its own server and store.

mod access;
mod bad_input;
mod library;
mod lifecycle;
mod links;
mod persistence;
mod public;
