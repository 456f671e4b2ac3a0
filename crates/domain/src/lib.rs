//! The domain of publinks: the media library's records and rules, the
//! storage ports they are kept through, and the services the routers and
//! workers call. No AWS, SQL, HTTP or file system here: the crates over this
//! one implement the ports (`publinks-embedded`, `publinks-aws`) or offer
//! the services (`publinks-http`), and the compiler keeps it that way.
//!
//! - [`ids`]: typed identifiers, so a file id can never be passed where a folder id is meant.
//! - [`model`]: the records.
//! - [`store`]: the storage ports, small traits named for what they hold, and their error type.
//! - [`rules`]: names, tags and other input parsed at the edge of the domain.
//! - [`access`]: who may do what to which item.
//! - [`accounts`]: operators' acts on accounts (create, plan, drafts, link limit).
//! - [`archives`]: many files as one ZIP: archive jobs, their limits and reuse.
//! - [`entry_names`]: safe, unique entry paths inside a ZIP.
//! - [`jobs`]: library jobs, the slow halves of requests that a worker runs.
//! - [`library`]: the operations of the media library.
//! - [`inspect`]: what is read out of uploaded bytes (checksums, dimensions, EXIF).
//! - [`links`]: public links: creating, listing, editing and deleting them, within the limits.
//! - [`passwords`]: link passwords (Argon2id).
//! - [`public`]: what a visitor reaches through a share URL, inside the link's scope.
//! - [`throttle`]: the two-tier limit on password guesses.
//! - [`uploads`]: files uploaded in parts, read once and recorded exactly once.
//! - [`signing`]: signing keys and HMAC signatures.
//! - [`tokens`]: signed tokens: the local server's dashboard JWTs, visitor sessions.
//! - [`webhooks`]: account webhooks: signed, retried deliveries of link events to endpoints.

pub mod access;
pub mod accounts;
pub mod activity;
pub mod archives;
pub mod branding;
pub mod browse;
pub mod clock;
pub mod entry_names;
pub mod ids;
pub mod inspect;
pub mod jobs;
pub mod library;
pub mod links;
pub mod model;
pub mod passwords;
pub mod public;
pub mod renditions;
mod rfc3339;
pub mod rules;
pub mod signing;
pub mod store;
pub mod throttle;
pub mod tokens;
pub mod uploads;
pub mod webhooks;

use crate::store::{LimitScope, StoreError};

/// What the domain refuses, and why. The HTTP layer maps each to one status.
#[derive(Debug, thiserror::Error)]
pub enum DomainError {
    /// Missing, or not visible to this caller (the two look the same).
    #[error("{0} not found")]
    NotFound(&'static str),
    /// Visible but not allowed; the message says which permission is missing.
    #[error("{0}")]
    Forbidden(String),
    /// Input that breaks a rule; `field` names where it is.
    #[error("{message}")]
    Invalid { field: String, message: String },
    /// A state that does not allow the change (a taken name, a cycle...).
    #[error("{message}")]
    Conflict { code: &'static str, message: String },
    /// The account's plan does not include public links.
    #[error("public links need the enterprise plan")]
    PlanRequired,
    /// A new link would pass a limit.
    #[error("the {scope} limit of {limit} links is reached")]
    LimitReached { scope: LimitScope, limit: u32 },
    /// A share URL that leads nowhere: never existed, deleted or expired (one
    /// answer for all three, so nothing can be learned from it).
    #[error("this link is not available")]
    LinkUnavailable,
    /// A link whose validity window has not opened yet.
    #[error("this link opens at {opens_at}")]
    LinkScheduled { opens_at: chrono::DateTime<chrono::Utc> },
    /// The link has a password and the visitor has no valid session.
    #[error("this link is protected by a password")]
    PasswordRequired,
    /// A wrong password was given.
    #[error("the password is not correct")]
    WrongPassword,
    /// Too many password guesses: try again after `retry_after` seconds.
    #[error("too many attempts; try again in {retry_after} seconds")]
    Throttled { retry_after: u64 },
    /// The visitor has no session to tie the request to.
    #[error("start a session first (POST /s/{{token}}/api/session)")]
    SessionRequired,
    /// The link shows previews only: no original or ZIP is handed out through it.
    #[error("this link shows previews only; its files cannot be downloaded")]
    DownloadsForbidden,
    /// An archive would pass the files or bytes limit.
    #[error("{message}")]
    ArchiveTooLarge { message: String },
    /// Too many archives asked for (`limit` says which limit refused it):
    /// try again after `retry_after` seconds.
    #[error("{message}")]
    TooManyArchives { limit: crate::archives::ArchiveLimit, message: String, retry_after: u64 },
    /// A visitor's archive no longer matches what the link reaches: `changed`
    /// of its files changed or are no longer shared since it was made.
    /// `again` is the request that would make a current one (`None`: nothing
    /// of it is shared any more).
    #[error("{changed} files of this archive changed or are no longer shared since it was made")]
    ArchiveOutdated { changed: u32, again: Option<crate::archives::ArchiveRequest> },
    /// The archive cannot be downloaded in this status.
    #[error("the archive is {status:?}, not ready")]
    ArchiveNotReady { status: crate::model::ArchiveStatus },
    /// The storage failed in a way the caller cannot fix.
    #[error(transparent)]
    Store(StoreError),
}

impl DomainError {
    /// An `Invalid` error for `field`.
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        DomainError::Invalid { field: field.into(), message: message.into() }
    }
}

impl From<StoreError> for DomainError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(what) => DomainError::NotFound(what),
            StoreError::LimitReached { scope, limit } => DomainError::LimitReached { scope, limit },
            other => DomainError::Store(other),
        }
    }
}

/// Shorthand for results of domain operations.
pub type DomainResult<T> = Result<T, DomainError>;

/// A positive whole number set in the environment as `variable` (through
/// `lookup`), or `default` when unset or empty.
pub fn read_setting<T: std::str::FromStr + PartialOrd + From<u8>>(
    lookup: &impl Fn(&str) -> Option<String>,
    variable: &'static str,
    default: T,
) -> Result<T, archives::SettingsError> {
    match lookup(variable).map(|v| v.trim().to_string()).filter(|v| !v.is_empty()) {
        None => Ok(default),
        Some(value) => match value.parse::<T>() {
            Ok(n) if n >= T::from(1) => Ok(n),
            _ => Err(archives::SettingsError { variable, value }),
        },
    }
}

/// "1.4 MB" and the like, for people.
pub fn human_size(bytes: &u64) -> String {
    const UNITS: [&str; 5] = ["B", "KB", "MB", "GB", "TB"];
    let mut value = *bytes as f64;
    let mut unit = 0;
    while value >= 1000.0 && unit < UNITS.len() - 1 {
        value /= 1000.0;
        unit += 1;
    }
    if unit == 0 { format!("{bytes} B") } else { format!("{value:.1} {}", UNITS[unit]) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_like_people_write_them() {
        assert_eq!(human_size(&999), "999 B");
        assert_eq!(human_size(&1_500), "1.5 KB");
        assert_eq!(human_size(&23_400_000), "23.4 MB");
    }
}
