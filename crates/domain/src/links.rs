//! Public links, as the dashboard manages them: create within the limits, list,
//! edit (the URL never changes), delete. Every change is written with its
//! audit entry in one transaction.
//!
//! Share tokens: each link stores a random 128-bit seed; the token is the
//! HMAC-SHA256 of the seed under the link-token key (from Secrets Manager or
//! the local key file), and the link is found by the SHA-256 of the token. A
//! copy of the table alone therefore neither holds nor yields a working URL,
//! while a manager can always be shown the same URL again.

use super::access::{self, Actor, MAX_FOLDER_DEPTH, too_deep};
use super::model::*;
use super::passwords::{self, Password};
use super::{DomainError, DomainResult, rules};
use crate::clock::Clock;
use crate::ids::*;
use crate::signing::{SecretKey, Signer};
use crate::store::*;
use crate::webhooks::{WebhookEvent, WebhookService};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use rand::RngCore;
use serde::{Deserialize, Deserializer, Serialize};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::Arc;

/// At most this many links on one file, folder or collection.
pub const LINKS_PER_TARGET: u32 = 5;

/// A new link, as a manager asks for it.
#[derive(Clone, Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewLink {
    pub target: Target,
    /// The link works from then on (absent: at once). RFC 3339 with a time
    /// zone, e.g. `2026-12-31T18:00:00Z`; a date alone is refused.
    #[serde(default, deserialize_with = "rules::date_time_field::optional")]
    pub valid_from: Option<DateTime<Utc>>,
    /// The link stops working then and is deleted; in the future, after
    /// `valid_from`. RFC 3339 with a time zone, like `valid_from`.
    #[serde(default, deserialize_with = "rules::date_time_field::optional")]
    pub valid_until: Option<DateTime<Utc>>,
    /// 8 characters to 256 bytes.
    #[schema(value_type = Option<String>, format = Password, min_length = 8, max_length = 256)]
    pub password: Option<Password>,
    /// Folders and collections of accounts with the draft-assets feature only: show drafts too.
    #[serde(default)]
    pub expose_unpublished: bool,
    /// Leave location (GPS) and device- or person-identifying embedded
    /// metadata out of what visitors see (absent: the account's default,
    /// `link_defaults` of `GET /api/me`'s account). Downloads keep the
    /// file's bytes as uploaded.
    pub hide_identifying_metadata: Option<bool>,
    /// Visitors see previews only: no original, inline original or ZIP is
    /// handed out (`403 downloads_forbidden`), the pages offer no download,
    /// and large previews carry the account's watermark, if it has one.
    #[serde(default)]
    pub preview_only: bool,
    /// The most downloads visitors may make (1 to 1,000,000): each file, and
    /// each ZIP archive as one (counted when it is accepted). Once reached,
    /// the link ends: visitors find it gone, managers see `exhausted`.
    #[schema(minimum = 1, maximum = 1_000_000)]
    pub max_downloads: Option<u32>,
    /// The most sessions visitors may start (1 to 1,000,000): each
    /// `POST .../session` or password form that lets a visitor in.
    #[schema(minimum = 1, maximum = 1_000_000)]
    pub max_sessions: Option<u32>,
}

/// The largest download or session limit a link may carry.
pub const MAX_USAGE_LIMIT: u32 = 1_000_000;

/// Changes to a link: an absent field stays, `null` removes, a value sets.
#[derive(Clone, Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LinkPatch {
    /// RFC 3339 with a time zone (e.g. `2026-12-31T18:00:00Z`), or `null`.
    #[serde(default, deserialize_with = "rules::date_time_field::patch")]
    pub valid_from: Option<Option<DateTime<Utc>>>,
    /// RFC 3339 with a time zone (e.g. `2026-12-31T18:00:00Z`), or `null`.
    #[serde(default, deserialize_with = "rules::date_time_field::patch")]
    pub valid_until: Option<Option<DateTime<Utc>>>,
    /// A new password (8 characters to 256 bytes), or `null` to remove it.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, format = Password, min_length = 8, max_length = 256)]
    pub password: Option<Option<Password>>,
    pub expose_unpublished: Option<bool>,
    pub hide_identifying_metadata: Option<bool>,
    pub preview_only: Option<bool>,
    /// A new download limit (1 to 1,000,000), or `null` to remove it. At or
    /// below the downloads already counted, the link ends at once
    /// (`exhausted`). Downloads are counted while a limit is set.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<u32>, minimum = 1, maximum = 1_000_000)]
    pub max_downloads: Option<Option<u32>>,
    /// A new session limit (1 to 1,000,000), or `null` to remove it; as
    /// `max_downloads`.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<u32>, minimum = 1, maximum = 1_000_000)]
    pub max_sessions: Option<Option<u32>>,
}

/// Refuses a download or session limit outside 1 to [`MAX_USAGE_LIMIT`].
fn check_usage_limit(field: &str, value: Option<u32>) -> DomainResult<()> {
    if value.is_some_and(|v| !(1..=MAX_USAGE_LIMIT).contains(&v)) {
        return Err(DomainError::invalid(field, format!("{field} must be from 1 to {MAX_USAGE_LIMIT}")));
    }
    Ok(())
}

/// Tells a field given as `null` (`Some(None)`) from an absent one (`None`).
fn present<'de, T: Deserialize<'de>, D: Deserializer<'de>>(d: D) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

/// What a link points at, named for people.
#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
pub struct TargetSummary {
    pub kind: TargetKind,
    pub id: uuid::Uuid,
    /// `None` if the target is gone (its links are being removed).
    pub name: Option<String>,
    /// Folder path from the top, e.g. `/Campaigns/Spring 2026/sunrise.jpg`; none for collections.
    pub path: Option<String>,
}

/// A link as a manager sees it: the URL and the options, never the password.
#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
pub struct LinkView {
    pub id: LinkId,
    pub url: String,
    pub target: TargetSummary,
    pub state: LinkState,
    #[serde(serialize_with = "crate::rfc3339::optional_time")]
    pub valid_from: Option<DateTime<Utc>>,
    #[serde(serialize_with = "crate::rfc3339::optional_time")]
    pub valid_until: Option<DateTime<Utc>>,
    pub password_protected: bool,
    pub expose_unpublished: bool,
    /// Visitors are not shown location and device- or person-identifying embedded metadata.
    pub hide_identifying_metadata: bool,
    /// Visitors see previews only; every download route refuses.
    pub preview_only: bool,
    pub created_by: UserId,
    #[serde(serialize_with = "crate::rfc3339::time")]
    pub created_at: DateTime<Utc>,
    #[serde(serialize_with = "crate::rfc3339::time")]
    pub updated_at: DateTime<Utc>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_downloads: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_sessions: Option<u32>,
    /// Only on `GET /api/links/{id}` of a link with a password: `true` while
    /// wrong guesses from many networks are being slowed down (someone is
    /// guessing). Visitors who know the password still get in; changing it
    /// starts the guessers from nothing.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub under_attack: Option<bool>,
    /// How much the link was used: on `GET /api/links/{id}`, and on the
    /// account's list when it is filtered by `opened`. Never shown to visitors.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub activity: Option<LinkActivity>,
}

/// Which links of the account's list to keep, by their visits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpenedFilter {
    /// Links nobody has visited yet.
    Never,
    /// Links visited (any visitor request) at or after this moment.
    Since(DateTime<Utc>),
}

/// The link service behind `links-api`.
#[derive(Clone)]
pub struct LinkService {
    catalog: Arc<dyn Catalog>,
    links: Arc<dyn LinkRecords>,
    visitors: Arc<dyn VisitorRecords>,
    /// Derives share tokens; readied once, as a list signs one token per link.
    token_key: Signer,
    public_base_url: String,
    clock: Arc<dyn Clock>,
    /// Told of links the system deletes or that end soon; `None`: nobody is.
    webhooks: Option<WebhookService>,
}

/// The SHA-256 (hex) a token is looked up by.
pub fn token_hash(token: &str) -> String {
    format!("{:x}", Sha256::digest(token.as_bytes()))
}

const RETRIES: usize = 8;

impl LinkService {
    /// A service over these stores; share URLs start with `public_base_url`.
    pub fn new(stores: &Stores, token_key: SecretKey, public_base_url: impl Into<String>) -> Self {
        Self::over_records(
            stores.catalog.clone(),
            stores.links.clone(),
            stores.visitors.clone(),
            stores.clock.clone(),
            token_key,
            public_base_url,
        )
    }

    /// A service over the only stores it reads (no blobs, no archives): for a
    /// process that has no others, such as the AWS stream function.
    pub fn over_records(
        catalog: Arc<dyn Catalog>,
        links: Arc<dyn LinkRecords>,
        visitors: Arc<dyn VisitorRecords>,
        clock: Arc<dyn Clock>,
        token_key: SecretKey,
        public_base_url: impl Into<String>,
    ) -> Self {
        LinkService {
            catalog,
            links,
            visitors,
            token_key: Signer::new(&token_key),
            public_base_url: public_base_url.into().trim_end_matches('/').to_string(),
            clock,
            webhooks: None,
        }
    }

    /// Tells the account's webhooks of links the system deletes, and of links
    /// that end within a day ([`warn_expiring`](Self::warn_expiring)).
    pub fn with_webhooks(mut self, webhooks: WebhookService) -> Self {
        self.webhooks = Some(webhooks);
        self
    }

    async fn deleted_by_system(&self, link: &Link, deleted: bool) -> bool {
        if deleted && let Some(w) = &self.webhooks {
            w.notify_quietly(link, WebhookEvent::LinkDeletedBySystem, None, Some(reason_name(ended_by(link)))).await;
        }
        deleted
    }

    /// Tells the webhooks that want it of every link (at most `batch`) that
    /// ends within 24 hours of now, once per end date: the local in-process
    /// sweep's part (in AWS `library-worker`'s scheduled sweep calls
    /// [`WebhookService::warn_expiring`] on the link records).
    pub async fn warn_expiring(&self, batch: u32) -> DomainResult<usize> {
        let Some(webhooks) = &self.webhooks else { return Ok(0) };
        webhooks.warn_expiring(self.links.as_ref(), batch).await
    }

    /// The time this service reads: what the sweep expires links against.
    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    /// The share token of a link, derived from its seed.
    pub fn token(&self, link: &Link) -> String {
        self.token_key.sign(link.token_seed.as_bytes())
    }

    /// The share URL of a link.
    pub fn url(&self, link: &Link) -> String {
        let mut url = String::with_capacity(self.public_base_url.len() + 3 + 43);
        url.push_str(&self.public_base_url);
        url.push_str("/s/");
        self.token_key.sign_into(link.token_seed.as_bytes(), &mut url);
        url
    }

    fn require_enterprise(actor: &Actor) -> DomainResult<()> {
        if actor.account.plan == Plan::Enterprise { Ok(()) } else { Err(DomainError::PlanRequired) }
    }

    /// Names the target and checks the caller may manage its links: not
    /// visible is `NotFound`, visible without `manage` is `Forbidden`. Also
    /// says where the target hangs (what a new link's create is conditional on).
    async fn require_manage(&self, actor: &Actor, target: &Target) -> DomainResult<(TargetSummary, Placement)> {
        let (summary, chain) =
            self.describe(actor.account.id, target).await?.ok_or(DomainError::NotFound(what(target)))?;
        access::require(self.catalog.as_ref(), actor, target, &chain, Permission::Manage).await?;
        Ok((summary, placement_of(target, &chain)))
    }

    /// The target's summary and folder chain, if it exists in `account` (see [`locate`]).
    async fn describe(
        &self,
        account: AccountId,
        target: &Target,
    ) -> DomainResult<Option<(TargetSummary, Vec<Folder>)>> {
        locate(self.catalog.as_ref(), account, target).await
    }

    fn view(&self, link: &Link, target: TargetSummary, now: DateTime<Utc>) -> LinkView {
        LinkView {
            id: link.id,
            url: self.url(link),
            target,
            state: link.state(now),
            valid_from: link.valid_from,
            valid_until: link.valid_until,
            password_protected: link.password_hash.is_some(),
            expose_unpublished: link.expose_unpublished,
            hide_identifying_metadata: link.hide_identifying_metadata,
            preview_only: link.preview_only,
            max_downloads: link.max_downloads,
            max_sessions: link.max_sessions,
            created_by: link.created_by,
            created_at: link.created_at,
            updated_at: link.updated_at,
            under_attack: None,
            activity: None,
        }
    }

    /// Creates a link within the per-target and per-account limits.
    pub async fn create(&self, actor: &Actor, new: NewLink) -> DomainResult<LinkView> {
        Self::require_enterprise(actor)?;
        let now = self.clock.now();
        check_window(new.valid_from, new.valid_until, now, true)?;
        check_expose(actor, &new.target, new.expose_unpublished)?;
        check_usage_limit("max_downloads", new.max_downloads)?;
        check_usage_limit("max_sessions", new.max_sessions)?;
        let (mut target, placement) = self.require_manage(actor, &new.target).await?;
        let password_hash = match &new.password {
            Some(p) => Some(passwords::hash(p).await?),
            None => None,
        };
        let mut seed = [0u8; 16];
        rand::rng().fill_bytes(&mut seed);
        let token_seed = URL_SAFE_NO_PAD.encode(seed);
        let mut link = Link {
            id: LinkId::new(),
            account_id: actor.account.id,
            target: new.target,
            token_hash: String::new(),
            token_seed,
            valid_from: new.valid_from,
            valid_until: new.valid_until,
            password_hash,
            password_version: 0,
            expose_unpublished: new.expose_unpublished,
            hide_identifying_metadata: new
                .hide_identifying_metadata
                .unwrap_or(actor.account.link_defaults.hide_identifying_metadata),
            preview_only: new.preview_only,
            created_by: actor.user.id,
            created_at: now,
            updated_at: now,
            revision: 0,
            placement: Some(placement),
            max_downloads: new.max_downloads,
            max_sessions: new.max_sessions,
            exhausted_at: None,
        };
        link.token_hash = token_hash(&self.token(&link));
        let changes = LinkChanges {
            valid_from: link.valid_from.map(|t| ValueChange { from: None, to: Some(t) }),
            valid_until: link.valid_until.map(|t| ValueChange { from: None, to: Some(t) }),
            password: link.password_hash.as_ref().map(|_| PasswordChange::Set),
            expose_unpublished: link.expose_unpublished.then_some(ValueChange { from: false, to: true }),
            hide_identifying_metadata: link.hide_identifying_metadata.then_some(ValueChange { from: false, to: true }),
            preview_only: link.preview_only.then_some(ValueChange { from: false, to: true }),
            max_downloads: link.max_downloads.map(|m| ValueChange { from: None, to: Some(m) }),
            max_sessions: link.max_sessions.map(|m| ValueChange { from: None, to: Some(m) }),
        };
        let audit = entry(&link, AuditActor::User { user_id: actor.user.id }, AuditAction::Created, changes, now);
        let limits = LinkLimits { per_target: LINKS_PER_TARGET, per_account: actor.account.link_limit };
        // Expired links count until they are deleted: when one stands in the
        // way, it is expired now (deleted and audited), and the create retried.
        for _ in 0..RETRIES {
            match self.links.create_link(&link, limits, &audit).await {
                Err(StoreError::LimitReached { scope, limit }) => {
                    let in_the_way = match scope {
                        LimitScope::Target => ExpiredScope::Target(link.target),
                        LimitScope::Account => ExpiredScope::Account(link.account_id),
                    };
                    let expired = self.links.expired_links(in_the_way, self.clock.now(), 100).await?;
                    if expired.is_empty() {
                        return Err(DomainError::LimitReached { scope, limit });
                    }
                    for old in &expired {
                        self.expire(old).await?;
                    }
                }
                // The target moved or went since it was checked: check again
                // where it is now (a gone target is `NotFound`).
                Err(StoreError::Conflict("link target")) => {
                    let (summary, placement) = self.require_manage(actor, &new.target).await?;
                    target = summary;
                    link.placement = Some(placement);
                }
                Err(e) => return Err(e.into()),
                Ok(()) => return Ok(self.view(&link, target, now)),
            }
        }
        Err(DomainError::Conflict { code: "busy", message: "links are being changed by others; try again".into() })
    }

    /// Deletes an expired link, on the record as done by the system because
    /// it expired. `false` if it was already gone.
    pub async fn expire(&self, link: &Link) -> DomainResult<bool> {
        let actor = AuditActor::System { reason: ended_by(link) };
        let audit = entry(link, actor, AuditAction::Deleted, LinkChanges::default(), self.clock.now());
        let deleted = self.links.delete_link(link.id, &audit).await?;
        Ok(self.deleted_by_system(link, deleted).await)
    }

    /// Records that the storage's own expiry (DynamoDB's TTL) removed `link`,
    /// releasing its slots exactly once, and tells the webhooks that want
    /// it (`link.deleted_by_system`, `expired` or `exhausted`): what the
    /// audit-stream function does for each such removal. `false` if the
    /// release was done already — a record delivered again, after a run
    /// that may have died before the webhooks' deliveries were all written:
    /// they are written again, each once ([`WebhookService::notify_keyed`]).
    pub async fn removed_by_storage(&self, link: &Link) -> DomainResult<bool> {
        let released = self.release_removed(link).await?;
        self.tell_removed(link).await?;
        Ok(released)
    }

    /// The local server's stand-in for DynamoDB's TTL: removes up to `batch`
    /// links that expired by `now`, each released and told to webhooks as
    /// the audit-stream function does for a TTL removal
    /// ([`removed_by_storage`](Self::removed_by_storage)), but told only by
    /// the run that removed it (a link someone else deleted meanwhile is
    /// theirs to tell). Returns how many.
    pub async fn expire_due(&self, now: DateTime<Utc>, batch: u32) -> DomainResult<usize> {
        let mut removed = 0;
        for link in self.links.expired_links(ExpiredScope::All, now, batch).await? {
            if self.release_removed(&link).await? {
                removed += 1;
                if let Err(e) = self.tell_removed(&link).await {
                    tracing::warn!(link = %link.id, error = %e, "webhook event not recorded");
                }
            }
        }
        Ok(removed)
    }

    /// Deletes `link` if it is still stored, releases what it held and
    /// records its deletion by the system, once (`false` if done before).
    async fn release_removed(&self, link: &Link) -> DomainResult<bool> {
        let actor = AuditActor::System { reason: ended_by(link) };
        let audit = entry(link, actor, AuditAction::Deleted, LinkChanges::default(), self.clock.now());
        Ok(self.links.release_removed(link, &audit).await?)
    }

    /// Tells the webhooks that want it that the system deleted `link` at
    /// its end, once however often it is called.
    async fn tell_removed(&self, link: &Link) -> DomainResult<()> {
        let Some(w) = &self.webhooks else { return Ok(()) };
        let key = format!("deleted_by_system:{}", link.id);
        w.notify_keyed(link, WebhookEvent::LinkDeletedBySystem, &key, Some(reason_name(ended_by(link)))).await
    }

    /// Runs the links' cascade of a delete or move of `scope` (see
    /// [`cascade`]): what the catalog stream's handler does for each removal
    /// or move it sees.
    pub async fn cascade(&self, account: AccountId, scope: Target, reason: SystemReason) -> DomainResult<usize> {
        let (catalog, links, now) = (self.catalog.as_ref(), self.links.as_ref(), self.clock.now());
        cascade(catalog, links, self.webhooks.as_ref(), account, scope, reason, now).await
    }

    /// The local server's stand-in for the catalog stream's cascades (what
    /// re-runs them in AWS when a request died half-way): deletes the links of
    /// every account whose target is gone or no longer where the link's
    /// placement says, on the record as done by the system. Returns how many.
    pub async fn reap_orphans(&self) -> DomainResult<usize> {
        let mut reaped = 0;
        let mut accounts = PageRequest::first(100);
        loop {
            let page = self.catalog.list_accounts(&accounts).await?;
            for account in &page.items {
                reaped += self.reap_orphans_of(account.id).await?;
            }
            match page.next {
                Some(next) => accounts.cursor = Some(next),
                None => return Ok(reaped),
            }
        }
    }

    async fn reap_orphans_of(&self, account: AccountId) -> DomainResult<usize> {
        let query = LinkQuery { kind: None, state: None, newest_first: false, now: self.clock.now() };
        let mut page = PageRequest::first(200);
        let mut orphans = Vec::new();
        let mut placements: std::collections::HashMap<Target, Option<Placement>> = std::collections::HashMap::new();
        loop {
            let links = self.links.links_of_account(account, &query, &page).await?;
            for link in links.items {
                if let std::collections::hash_map::Entry::Vacant(slot) = placements.entry(link.target) {
                    let found = self.describe(account, &link.target).await?;
                    slot.insert(found.map(|(_, chain)| placement_of(&link.target, &chain)));
                }
                match &placements[&link.target] {
                    None => orphans.push((link, SystemReason::TargetDeleted)),
                    Some(now_at) if link.placement.as_ref().is_some_and(|p| p != now_at) => {
                        orphans.push((link, SystemReason::TargetMoved))
                    }
                    Some(_) => {}
                }
            }
            match links.next {
                Some(next) => page.cursor = Some(next),
                None => break,
            }
        }
        let mut reaped = 0;
        for (link, reason) in orphans {
            let audit = entry(
                &link,
                AuditActor::System { reason },
                AuditAction::Deleted,
                LinkChanges::default(),
                self.clock.now(),
            );
            let deleted = self.links.delete_link(link.id, &audit).await?;
            reaped += usize::from(self.deleted_by_system(&link, deleted).await);
        }
        Ok(reaped)
    }

    /// The links of one file, folder or collection.
    pub async fn list_for_target(&self, actor: &Actor, target: Target) -> DomainResult<Vec<LinkView>> {
        Self::require_enterprise(actor)?;
        let (summary, _) = self.require_manage(actor, &target).await?;
        let now = self.clock.now();
        let links = self.links.links_of_target(target).await?;
        Ok(links
            .iter()
            .filter(|l| l.account_id == actor.account.id)
            .map(|l| self.view(l, summary.clone(), now))
            .collect())
    }

    /// Every link of the account (the settings page): not for restricted or view-only users.
    pub async fn list_account(
        &self,
        actor: &Actor,
        kind: Option<TargetKind>,
        state: Option<LinkState>,
        opened: Option<OpenedFilter>,
        newest_first: bool,
        page: &PageRequest,
    ) -> DomainResult<Page<LinkView>> {
        Self::require_enterprise(actor)?;
        if actor.role_level() != Some(Permission::Manage) {
            return Err(DomainError::Forbidden(
                "the account's list of links is for administrators, developers and full-access users".into(),
            ));
        }
        let now = self.clock.now();
        // An exhausted link ended when its limit was reached: stored, it is
        // an expired one, told apart here (which thins the page like `opened`).
        let stored_state = state.map(|s| if s == LinkState::Exhausted { LinkState::Expired } else { s });
        let query = LinkQuery { kind, state: stored_state, newest_first, now };
        let mut page = self.links.links_of_account(actor.account.id, &query, page).await?;
        if let Some(wanted) = state {
            page.items.retain(|l| l.state(now) == wanted);
        }
        // The filter on visits thins each page of the list (a page may hold
        // fewer than `limit` links, even none, while `next` says more follow).
        let mut activity = std::collections::HashMap::new();
        if let Some(opened) = opened {
            let ids: Vec<LinkId> = page.items.iter().map(|l| l.id).collect();
            activity.extend(self.visitors.links_activity(&ids).await?);
            page.items.retain(|l| {
                let last = activity.get(&l.id).and_then(|a: &LinkActivity| a.last_access);
                match opened {
                    OpenedFilter::Never => last.is_none(),
                    OpenedFilter::Since(since) => last.is_some_and(|t| t >= since),
                }
            });
        }
        // Several links share a target (up to 5 each): each target is
        // described once a page, all of them with a few batched reads.
        let targets: Vec<Target> = page.items.iter().map(|l| l.target).collect();
        let described = locate_many(self.catalog.as_ref(), actor.account.id, &targets).await?;
        let items = page
            .items
            .iter()
            .map(|link| {
                let summary = match described.get(&link.target) {
                    Some(Some((summary, _))) => summary.clone(),
                    _ => gone_target(&link.target),
                };
                let mut view = self.view(link, summary, now);
                if opened.is_some() {
                    view.activity = Some(activity.get(&link.id).cloned().unwrap_or_default());
                }
                view
            })
            .collect();
        Ok(Page { items, next: page.next })
    }

    /// A link of the caller's account whose target they may manage. A link
    /// whose target is gone (its cascade not run yet, or interrupted) stays
    /// reachable by those who manage the whole library, so that it can
    /// always be deleted; its summary then has no name.
    async fn load(&self, actor: &Actor, id: LinkId) -> DomainResult<(Link, TargetSummary)> {
        Self::require_enterprise(actor)?;
        let link = match self.links.link(id).await? {
            Some(l) if l.account_id == actor.account.id => l,
            _ => return Err(DomainError::NotFound("link")),
        };
        match self.describe(actor.account.id, &link.target).await? {
            Some((summary, chain)) => {
                access::require(self.catalog.as_ref(), actor, &link.target, &chain, Permission::Manage).await.map_err(
                    |e| match e {
                        DomainError::NotFound(_) => DomainError::NotFound("link"),
                        other => other,
                    },
                )?;
                Ok((link, summary))
            }
            None if actor.role_level() == Some(Permission::Manage) => {
                let summary = gone_target(&link.target);
                Ok((link, summary))
            }
            None => Err(DomainError::NotFound("link")),
        }
    }

    /// One link.
    pub async fn get(&self, actor: &Actor, id: LinkId) -> DomainResult<LinkView> {
        let (link, summary) = self.load(actor, id).await?;
        let now = self.clock.now();
        let limits = super::throttle::GuessLimits::default();
        let mut view = self.view(&link, summary, now);
        view.activity = Some(self.visitors.link_activity(link.id).await?);
        if link.password_hash.is_some() {
            view.under_attack =
                Some(super::public::guessing_slowed(self.visitors.as_ref(), &limits, &link, now).await?);
        }
        Ok(view)
    }

    /// Changes a link's options; its URL stays the same.
    pub async fn update(&self, actor: &Actor, id: LinkId, patch: LinkPatch) -> DomainResult<LinkView> {
        let new_hash = match &patch.password {
            Some(Some(p)) => Some(passwords::hash(p).await?),
            _ => None,
        };
        check_usage_limit("max_downloads", patch.max_downloads.flatten())?;
        check_usage_limit("max_sessions", patch.max_sessions.flatten())?;
        for _ in 0..RETRIES {
            let (mut link, summary) = self.load(actor, id).await?;
            if summary.name.is_none() {
                return Err(DomainError::Conflict {
                    code: "link_target_gone",
                    message: "the item this link shared is gone; the link can only be deleted".into(),
                });
            }
            let now = self.clock.now();
            match link.state(now) {
                LinkState::Expired => {
                    return Err(DomainError::Conflict {
                        code: "link_expired",
                        message: "this link has expired and cannot be changed; create a new one".into(),
                    });
                }
                LinkState::Exhausted => {
                    return Err(DomainError::Conflict {
                        code: "link_exhausted",
                        message: "this link reached its limit and cannot be changed; create a new one".into(),
                    });
                }
                _ => {}
            }
            let mut changes = LinkChanges::default();
            if let Some(from) = patch.valid_from
                && from != link.valid_from
            {
                changes.valid_from = Some(ValueChange { from: link.valid_from, to: from });
                link.valid_from = from;
            }
            if let Some(until) = patch.valid_until
                && until != link.valid_until
            {
                changes.valid_until = Some(ValueChange { from: link.valid_until, to: until });
                link.valid_until = until;
            }
            check_window(link.valid_from, link.valid_until, now, changes.valid_until.is_some())?;
            if let Some(expose) = patch.expose_unpublished
                && expose != link.expose_unpublished
            {
                check_expose(actor, &link.target, expose)?;
                changes.expose_unpublished = Some(ValueChange { from: link.expose_unpublished, to: expose });
                link.expose_unpublished = expose;
            }
            if let Some(hide) = patch.hide_identifying_metadata
                && hide != link.hide_identifying_metadata
            {
                changes.hide_identifying_metadata =
                    Some(ValueChange { from: link.hide_identifying_metadata, to: hide });
                link.hide_identifying_metadata = hide;
            }
            if let Some(preview_only) = patch.preview_only
                && preview_only != link.preview_only
            {
                changes.preview_only = Some(ValueChange { from: link.preview_only, to: preview_only });
                link.preview_only = preview_only;
            }
            match (&patch.password, link.password_hash.is_some()) {
                (Some(Some(_)), had) => {
                    changes.password = Some(if had { PasswordChange::Changed } else { PasswordChange::Set });
                    link.password_hash = new_hash.clone();
                    link.password_version += 1;
                }
                (Some(None), true) => {
                    changes.password = Some(PasswordChange::Removed);
                    link.password_hash = None;
                    link.password_version += 1;
                }
                _ => {}
            }
            let mut reached = false;
            for (what, wanted) in [("downloads", patch.max_downloads), ("sessions", patch.max_sessions)] {
                let current = super::public::usage_limit(&link, what);
                let Some(wanted) = wanted.filter(|w| *w != current) else { continue };
                let change = Some(ValueChange { from: current, to: wanted });
                if what == "downloads" {
                    (changes.max_downloads, link.max_downloads) = (change, wanted);
                } else {
                    (changes.max_sessions, link.max_sessions) = (change, wanted);
                }
                // Uses already counted at or above the new limit end the link now.
                if let Some(max) = wanted {
                    reached |= self.visitors.count(&super::public::usage_key(&link, what)).await? >= max;
                }
            }
            if reached {
                let until = link.valid_until.map_or(now, |u| u.min(now));
                if link.valid_until != Some(until) {
                    changes.valid_until = Some(ValueChange { from: link.valid_until, to: Some(until) });
                }
                link.valid_until = Some(until);
                link.exhausted_at = Some(now);
            }
            if changes == LinkChanges::default() {
                return Ok(self.view(&link, summary, now));
            }
            link.updated_at = now;
            let audit = entry_at_revision(&link, link.revision + 1, actor, AuditAction::Updated, changes, now);
            match self.links.replace_link(&link, &audit).await {
                Ok(stored) => return Ok(self.view(&stored, summary, now)),
                Err(StoreError::Conflict(_)) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(DomainError::Conflict { code: "busy", message: "the link is being changed by others; try again".into() })
    }

    /// Deletes a link.
    pub async fn delete(&self, actor: &Actor, id: LinkId) -> DomainResult<()> {
        let (link, _) = self.load(actor, id).await?;
        let audit = entry(
            &link,
            AuditActor::User { user_id: actor.user.id },
            AuditAction::Deleted,
            LinkChanges::default(),
            self.clock.now(),
        );
        if self.links.delete_link(id, &audit).await? { Ok(()) } else { Err(DomainError::NotFound("link")) }
    }

    /// A link's activity log, newest first: for those who may manage the link.
    pub async fn activity(&self, actor: &Actor, id: LinkId, page: &PageRequest) -> DomainResult<Page<ActivityEntry>> {
        let (link, _) = self.load(actor, id).await?;
        Ok(self.visitors.activity_log(link.id, self.clock.now(), page).await?)
    }

    /// The audit log of the account's links (administrators and full-access users).
    pub async fn audit(&self, actor: &Actor, query: &AuditQuery, page: &PageRequest) -> DomainResult<Page<AuditEntry>> {
        Self::require_enterprise(actor)?;
        if !matches!(actor.user.role, Role::Admin | Role::FullAccess) {
            return Err(DomainError::Forbidden("the audit log is for administrators and full-access users".into()));
        }
        Ok(self.links.audit_entries(actor.account.id, query, page).await?)
    }
}

/// What [`locate`] says of each of `targets` (repeats allowed), read in
/// batches: the files at once, the folders at once, then the folders above
/// them a level at a time — a few round trips for a page of links, where
/// one [`locate`] each would take one or more apiece.
pub async fn locate_many(
    catalog: &dyn Catalog,
    account: AccountId,
    targets: &[Target],
) -> DomainResult<HashMap<Target, Option<(TargetSummary, Vec<Folder>)>>> {
    let mut file_ids = Vec::new();
    let mut folder_ids = Vec::new();
    let mut found = HashMap::with_capacity(targets.len());
    for target in targets {
        if found.insert(*target, None).is_some() {
            continue;
        }
        match target {
            Target::File(id) => file_ids.push(*id),
            Target::Folder(id) => folder_ids.push(*id),
            Target::Collection(_) => {}
        }
    }
    let files: HashMap<FileId, FilePlace> = catalog
        .file_places(&file_ids)
        .await?
        .into_iter()
        .filter(|f| f.account_id == account)
        .map(|f| (f.id, f))
        .collect();
    // Every folder on the way up, fetched a level at a time.
    let mut folders: HashMap<FolderId, Folder> = HashMap::new();
    let mut wanted: Vec<FolderId> =
        folder_ids.iter().copied().chain(files.values().filter_map(|f| f.folder_id)).collect();
    for _ in 0..=MAX_FOLDER_DEPTH {
        wanted.retain(|id| !folders.contains_key(id));
        wanted.sort_unstable();
        wanted.dedup();
        if wanted.is_empty() {
            break;
        }
        let level = catalog.folders_by_ids(&wanted).await?;
        wanted = level.iter().filter_map(|f| f.parent_id).collect();
        folders.extend(level.into_iter().map(|f| (f.id, f)));
    }
    let path_of = |chain: &[Folder], leaf: &str| {
        let mut parts: Vec<&str> = chain.iter().rev().map(|f| f.name.as_str()).collect();
        parts.push(leaf);
        format!("/{}", parts.join("/"))
    };
    // The chain above `start` from what was read; `None` if a folder is gone.
    let chain_above = |start: Option<FolderId>| {
        let mut chain = Vec::new();
        let mut next = start;
        while let Some(id) = next {
            let folder = folders.get(&id)?;
            if chain.len() >= MAX_FOLDER_DEPTH {
                return Some(Err(id));
            }
            next = folder.parent_id;
            chain.push(folder.clone());
        }
        Some(Ok(chain))
    };
    for (target, slot) in found.iter_mut() {
        let located = match target {
            Target::File(id) => files.get(id).and_then(|f| {
                chain_above(f.folder_id).map(|chain| chain.map(|c| (f.name.clone(), Some(path_of(&c, &f.name)), c)))
            }),
            Target::Folder(id) => folders.get(id).filter(|f| f.account_id == account).and_then(|f| {
                chain_above(f.parent_id).map(|chain| {
                    chain.map(|mut c| {
                        let path = path_of(&c, &f.name);
                        c.insert(0, f.clone());
                        (f.name.clone(), Some(path), c)
                    })
                })
            }),
            Target::Collection(_) => {
                *slot = locate(catalog, account, target).await?;
                continue;
            }
        };
        *slot = match located {
            None => None,
            Some(Err(deep)) => return Err(too_deep(deep)),
            Some(Ok((name, path, chain))) => {
                Some((TargetSummary { kind: target.kind(), id: target.uuid(), name: Some(name), path }, chain))
            }
        };
    }
    Ok(found)
}

/// A target's summary and folder chain, if it exists in `account`. The
/// chain is the folders above a file, a folder itself then those above it,
/// nothing for a collection (as access checks take it). A folder that
/// vanished on the way up reads as the target being gone.
pub async fn locate(
    catalog: &dyn Catalog,
    account: AccountId,
    target: &Target,
) -> DomainResult<Option<(TargetSummary, Vec<Folder>)>> {
    let path_of = |chain: &[Folder], leaf: &str| {
        let mut parts: Vec<&str> = chain.iter().rev().map(|f| f.name.as_str()).collect();
        parts.push(leaf);
        format!("/{}", parts.join("/"))
    };
    let chain_above = |start| async move {
        match access::folder_chain(catalog, start).await {
            Ok(chain) => Ok(Some(chain)),
            Err(DomainError::NotFound(_)) => Ok(None),
            Err(e) => Err(e),
        }
    };
    let found = match target {
        Target::File(id) => match catalog.file(*id).await? {
            Some(f) if f.account_id == account => {
                chain_above(f.folder_id).await?.map(|chain| (f.name.clone(), Some(path_of(&chain, &f.name)), chain))
            }
            _ => None,
        },
        Target::Folder(id) => match catalog.folder(*id).await? {
            Some(f) if f.account_id == account => chain_above(f.parent_id).await?.map(|mut chain| {
                let path = path_of(&chain, &f.name);
                chain.insert(0, f.clone());
                (f.name.clone(), Some(path), chain)
            }),
            _ => None,
        },
        Target::Collection(id) => match catalog.collection(*id).await? {
            Some(col) if col.account_id == account => Some((col.name, None, Vec::new())),
            _ => None,
        },
    };
    Ok(found.map(|(name, path, chain)| {
        (TargetSummary { kind: target.kind(), id: target.uuid(), name: Some(name), path }, chain)
    }))
}

/// Deletes the links of `account` that a delete or move of `scope` left
/// stale, each on the record as done by the system for `reason`; returns
/// how many. If `scope` is gone, that is every link within it; if it moved,
/// those within it made before the move (whose placement says it was
/// elsewhere) — a link made since, on its new place, stays. Safe to repeat
/// and to run late (the catalog stream's retries): it judges by where
/// things are now.
pub async fn cascade(
    catalog: &dyn Catalog,
    links: &dyn LinkRecords,
    webhooks: Option<&WebhookService>,
    account: AccountId,
    scope: Target,
    reason: SystemReason,
    now: DateTime<Utc>,
) -> DomainResult<usize> {
    let now_at = locate(catalog, account, &scope).await?.map(|(_, chain)| placement_of(&scope, &chain));
    let mut dropped = 0;
    for link in links.links_within(account, scope).await? {
        if now_at.as_ref().is_some_and(|at| still_placed(&link, &scope, at)) {
            continue;
        }
        let actor = AuditActor::System { reason };
        let audit = entry(&link, actor, AuditAction::Deleted, LinkChanges::default(), now);
        if links.delete_link(link.id, &audit).await? {
            dropped += 1;
            if let Some(w) = webhooks {
                w.notify_quietly(&link, WebhookEvent::LinkDeletedBySystem, None, Some(reason_name(reason))).await;
            }
        }
    }
    Ok(dropped)
}

/// Whether `link`, within `scope`, was made where `scope` is now
/// (`scope_at`): its placement agrees from `scope` upwards.
fn still_placed(link: &Link, scope: &Target, scope_at: &Placement) -> bool {
    let Some(placement) = &link.placement else { return false };
    if link.target == *scope {
        return placement == scope_at;
    }
    let Target::Folder(folder) = scope else { return false };
    match placement.0.iter().position(|f| f == folder) {
        Some(i) => placement.0[i + 1..] == scope_at.0[..],
        None => false,
    }
}

/// How a link whose target is gone names it: kind and id, no name or path.
fn gone_target(target: &Target) -> TargetSummary {
    TargetSummary { kind: target.kind(), id: target.uuid(), name: None, path: None }
}

/// Where a target hangs, from its chain as [`LinkService::describe`] reads it.
fn placement_of(target: &Target, chain: &[Folder]) -> Placement {
    match target {
        Target::File(_) => Placement::of(chain),
        Target::Folder(_) => Placement::of(chain.get(1..).unwrap_or_default()),
        Target::Collection(_) => Placement::default(),
    }
}

/// A system reason as webhooks name it (the audit log's word).
fn reason_name(reason: SystemReason) -> &'static str {
    match reason {
        SystemReason::Expired => "expired",
        SystemReason::Exhausted => "exhausted",
        SystemReason::TargetDeleted => "target_deleted",
        SystemReason::TargetMoved => "target_moved",
    }
}

fn what(target: &Target) -> &'static str {
    match target.kind() {
        TargetKind::File => "file",
        TargetKind::Folder => "folder",
        TargetKind::Collection => "collection",
    }
}

/// `valid_until` must come after `valid_from`, and (when being set) lie in the future.
/// Why a link that ended is deleted: its window closed, or a limit was reached.
fn ended_by(link: &Link) -> SystemReason {
    if link.exhausted_at.is_some() { SystemReason::Exhausted } else { SystemReason::Expired }
}

fn check_window(
    from: Option<DateTime<Utc>>,
    until: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
    until_is_new: bool,
) -> DomainResult<()> {
    if let (Some(f), Some(u)) = (from, until)
        && u <= f
    {
        return Err(DomainError::invalid("valid_until", "valid_until must be after valid_from"));
    }
    if until_is_new && until.is_some_and(|u| u <= now) {
        return Err(DomainError::invalid("valid_until", "valid_until must be in the future"));
    }
    Ok(())
}

/// Exposing drafts is for folder and collection links, on accounts with drafts.
fn check_expose(actor: &Actor, target: &Target, expose: bool) -> DomainResult<()> {
    if !expose {
        return Ok(());
    }
    if target.kind() == TargetKind::File {
        return Err(DomainError::invalid(
            "expose_unpublished",
            "expose_unpublished applies to folder and collection links only; a file link works whatever the file's state",
        ));
    }
    if !actor.account.drafts_enabled {
        return Err(DomainError::invalid("expose_unpublished", "the account's draft-assets feature is off"));
    }
    Ok(())
}

/// An audit entry whose id makes recording the same change twice harmless.
pub fn entry(
    link: &Link,
    actor: AuditActor,
    action: AuditAction,
    changes: LinkChanges,
    at: DateTime<Utc>,
) -> AuditEntry {
    let id = match action {
        AuditAction::Deleted => format!("{}:deleted", link.id),
        _ => format!("{}:{:010}", link.id, link.revision),
    };
    AuditEntry { id, account_id: link.account_id, at, actor, action, link_id: link.id, target: link.target, changes }
}

fn entry_at_revision(
    link: &Link,
    revision: u64,
    actor: &Actor,
    action: AuditAction,
    changes: LinkChanges,
    at: DateTime<Utc>,
) -> AuditEntry {
    let mut e = entry(link, AuditActor::User { user_id: actor.user.id }, action, changes, at);
    e.id = format!("{}:{:010}", link.id, revision);
    e
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;

    #[test]
    fn windows_must_be_ordered_and_end_in_the_future() {
        let now = Utc::now();
        let (past, soon, later) = (now - Duration::hours(1), now + Duration::hours(1), now + Duration::hours(2));
        assert!(check_window(None, None, now, true).is_ok());
        assert!(check_window(Some(past), Some(soon), now, true).is_ok());
        assert!(check_window(Some(later), Some(soon), now, true).is_err());
        assert!(check_window(Some(soon), Some(soon), now, true).is_err());
        assert!(check_window(None, Some(past), now, true).is_err());
        assert!(check_window(None, Some(past), now, false).is_ok(), "an unchanged end is not re-judged");
    }

    #[test]
    fn a_link_is_scheduled_active_then_expired() {
        let now = Utc::now();
        let mut link = Link {
            id: LinkId::new(),
            account_id: AccountId::new(),
            target: Target::File(FileId::new()),
            token_hash: String::new(),
            token_seed: String::new(),
            valid_from: Some(now + Duration::minutes(1)),
            valid_until: Some(now + Duration::minutes(2)),
            password_hash: None,
            password_version: 0,
            expose_unpublished: false,
            hide_identifying_metadata: false,
            preview_only: false,
            created_by: UserId::new(),
            created_at: now,
            updated_at: now,
            revision: 0,
            placement: None,
            max_downloads: None,
            max_sessions: None,
            exhausted_at: None,
        };
        assert_eq!(link.state(now), LinkState::Scheduled);
        assert_eq!(link.state(now + Duration::seconds(90)), LinkState::Active);
        assert_eq!(link.state(now + Duration::minutes(2)), LinkState::Expired);
        link.valid_from = None;
        link.valid_until = None;
        assert_eq!(link.state(now), LinkState::Active);
    }

    #[test]
    fn tokens_are_long_url_safe_and_hash_to_hex() {
        let key = SecretKey::generate();
        let token = key.sign(b"seed");
        assert!(token.len() >= 22 && token.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
        assert_eq!(token_hash(&token).len(), 64);
        assert_ne!(token_hash(&token), token_hash(&key.sign(b"seed2")));
    }
}
