//! End-to-end tests: the real local server on a loopback port, over real HTTP.
//! One binary, a module per area; every test gets its own server and store.
//! Every test runs on the backend `PUBLINKS_E2E_BACKEND` names (embedded by
//! default, or the AWS adapters on moto; `scripts/test.sh` runs both), except
//! those in `embedded_only`, which say why.

mod access;
mod activity;
mod archives;
mod around;
mod bad_input;
mod branding;
mod contract;
mod dashboard;
mod embedded_only;
mod headers;
mod library;
mod lifecycle;
mod limits;
mod links;
mod names;
mod origin;
mod preview_only;
mod public;
mod races;
mod renditions;
mod shares;
mod trees;
mod uploads;
mod viewer;
mod visits;
mod webhooks;
