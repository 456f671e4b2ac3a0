//! Account webhooks: HTTPS endpoints an administrator registers to be told
//! of link events. Each event becomes one *delivery* per webhook that wants
//! it, stored before anything is sent, signed (HMAC-SHA256 over
//! `{timestamp}.{body}`, sent as `Publinks-Signature: t=…,v1=…`), and tried
//! again with exponential backoff for a day. Sending goes through a port
//! ([`WebhookTransport`]); which addresses may be reached is decided here
//! ([`address_refused`]), on the addresses the endpoint resolves to at each
//! attempt, so that a name cannot be pointed at the private network after it
//! was accepted.

use crate::access::Actor;
use crate::clock::Clock;
use crate::ids::{AccountId, DeliveryId, LinkId, UserId, WebhookId};
use crate::model::{Link, LinkState, Role, Target};
use crate::store::{EndPosition, LimitStore, LinkStore, Slot, StoreError, StoreResult};
use crate::{DomainError, DomainResult};
use async_trait::async_trait;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Duration, Utc};
use hmac::{Hmac, Mac};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::{Arc, Mutex};

/// What a webhook may be told of.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[repr(u8)]
pub enum WebhookEvent {
    /// A visitor opened the link for the first time (its page, or its JSON).
    #[serde(rename = "link.first_opened")]
    LinkFirstOpened,
    /// The link's `max_downloads` or `max_sessions` was reached: it ended.
    #[serde(rename = "link.limit_reached")]
    LinkLimitReached,
    /// The link ends within 24 hours (told once per end date).
    #[serde(rename = "link.expires_soon")]
    LinkExpiresSoon,
    /// The system deleted the link: it expired or was exhausted, or its
    /// target was deleted or moved.
    #[serde(rename = "link.deleted_by_system")]
    LinkDeletedBySystem,
    /// Wrong passwords from many networks are being slowed down (told at
    /// most once per link an hour, however long the guessing lasts).
    #[serde(rename = "link.under_attack")]
    LinkUnderAttack,
}

/// An account's webhook as stored. The secret signs its deliveries.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Webhook {
    pub id: WebhookId,
    pub account_id: AccountId,
    /// `https://…` (the local server also takes `http://` to a loopback address).
    pub url: String,
    pub secret: String,
    pub events: Vec<WebhookEvent>,
    pub created_by: UserId,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Optimistic-concurrency revision: bumped on every write.
    pub revision: u64,
}

/// Where a delivery stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryState {
    /// Not yet answered with a 2xx; tried again at `next_attempt_at`.
    Pending,
    /// The endpoint answered with a 2xx.
    Delivered,
    /// Given up: a day of attempts failed, or the webhook was deleted.
    Failed,
}

/// One event for one webhook, and how sending it went. The body is kept as
/// sent (and signed) so that every attempt sends the same bytes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Delivery {
    pub id: DeliveryId,
    pub webhook_id: WebhookId,
    #[schema(value_type = String, format = Uuid)]
    pub account_id: AccountId,
    pub event: WebhookEvent,
    /// The JSON sent: the event's id, type, time and link (never a token,
    /// password or address).
    pub body: String,
    pub created_at: DateTime<Utc>,
    pub state: DeliveryState,
    /// Attempts made so far.
    pub attempts: u32,
    /// The HTTP status of the last attempt, if the endpoint answered.
    pub last_status: Option<u16>,
    /// Why the last attempt failed, if it did.
    pub last_error: Option<String>,
    pub last_attempt_at: Option<DateTime<Utc>>,
    /// When it is tried again (pending deliveries only).
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// Recorded by a process that hands nothing to a queue (the AWS stream
    /// function): no message will come for it, so the next sweep makes its
    /// first attempt instead of waiting for it to be overdue.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    #[schema(ignore)]
    pub unqueued: bool,
    #[serde(default)]
    #[schema(ignore)]
    pub revision: u64,
}

/// A new webhook, as an administrator asks for it. The server makes the
/// secret and shows it once, in the answer.
#[derive(Clone, Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewWebhook {
    /// `https://host[:port]/path`; no user name or password in it.
    #[schema(max_length = 2048)]
    pub url: String,
    /// At least one.
    pub events: Vec<WebhookEvent>,
}

/// Changes to a webhook: an absent field stays.
#[derive(Clone, Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookPatch {
    #[schema(max_length = 2048)]
    pub url: Option<String>,
    pub events: Option<Vec<WebhookEvent>>,
    /// `true`: a new secret replaces the old one at once, shown once in the answer.
    #[serde(default)]
    pub rotate_secret: bool,
}

/// A webhook as an administrator sees it: the secret only when it was just made.
#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
pub struct WebhookView {
    pub id: WebhookId,
    pub url: String,
    pub events: Vec<WebhookEvent>,
    /// Only in the answer that made it (creation, `rotate_secret`): keep it,
    /// it is not shown again.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// The most webhooks an account may have.
pub const MAX_WEBHOOKS: usize = 10;

/// How long a delivery is tried before it is given up.
pub fn retry_window() -> Duration {
    Duration::hours(24)
}

/// The wait after `attempts` failed attempts: 30 s, doubling, at most 4 hours
/// (about 14 attempts in a day).
pub fn backoff(attempts: u32) -> Duration {
    let doublings = attempts.saturating_sub(1).min(16);
    Duration::seconds(30 * (1i64 << doublings)).min(Duration::hours(4))
}

/// The header that carries a delivery's signature.
pub const SIGNATURE_HEADER: &str = "Publinks-Signature";

/// How far a signature's time may be from the receiver's clock.
pub const SIGNATURE_TOLERANCE_SECONDS: i64 = 300;

fn mac(secret: &str, timestamp: i64, body: &str) -> Hmac<Sha256> {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes keys of any length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body.as_bytes());
    mac
}

/// The signature header's value for `body` sent at `timestamp` (Unix
/// seconds): `t={timestamp},v1={hex HMAC-SHA256 of "{timestamp}.{body}"}`.
pub fn signature(secret: &str, timestamp: i64, body: &str) -> String {
    format!("t={timestamp},v1={}", hex::encode(mac(secret, timestamp, body).finalize().into_bytes()))
}

/// What a receiver checks: a `v1` signature of `body` under `secret`, made
/// within the tolerance of `now` (constant-time comparison).
pub fn verify_signature(secret: &str, header: &str, body: &str, now: DateTime<Utc>) -> bool {
    let mut timestamp = None;
    let mut signatures = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", t)) => timestamp = t.parse::<i64>().ok(),
            Some(("v1", v)) => signatures.extend(hex::decode(v).ok()),
            _ => {}
        }
    }
    let Some(timestamp) = timestamp else { return false };
    if (now.timestamp() - timestamp).abs() > SIGNATURE_TOLERANCE_SECONDS {
        return false;
    }
    signatures.iter().any(|s| mac(secret, timestamp, body).verify_slice(s).is_ok())
}

/// Which addresses an endpoint may resolve to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AddressPolicy {
    /// Public internet addresses only (AWS): no private, loopback,
    /// link-local (the metadata service), unique-local or other special ones.
    PublicOnly,
    /// As `PublicOnly`, and loopback too, over plain HTTP as well (the local
    /// server, whose tests receive deliveries on the same machine).
    AllowLoopback,
}

/// Why `ip` may not be sent to under `policy`, or `None` if it may.
pub fn address_refused(ip: IpAddr, policy: AddressPolicy) -> Option<&'static str> {
    if ip.is_loopback() || ip.to_canonical().is_loopback() {
        return (policy == AddressPolicy::PublicOnly).then_some("a loopback address");
    }
    match ip {
        IpAddr::V4(v4) => v4_refused(v4),
        IpAddr::V6(v6) => v6_refused(v6),
    }
}

fn v4_refused(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, c, _] = ip.octets();
    if ip.is_private() {
        Some("a private address")
    } else if ip.is_link_local() {
        Some("a link-local address (the metadata service's among them)")
    } else if a == 100 && (64..128).contains(&b) {
        Some("a shared (carrier-grade NAT) address")
    } else if ip.is_unspecified() || a == 0 {
        Some("an unspecified address")
    } else if ip.is_multicast() || ip.is_broadcast() || a >= 240 {
        Some("a multicast, broadcast or reserved address")
    } else if ip.is_documentation() || (a == 198 && (b & 0xfe) == 18) || (a == 192 && b == 0 && c == 0) {
        Some("a documentation, benchmarking or protocol address")
    } else {
        None
    }
}

fn v6_refused(ip: Ipv6Addr) -> Option<&'static str> {
    let s = ip.segments();
    // Addresses that carry an IPv4 address: judged by it.
    if let Some(v4) = ip.to_ipv4_mapped() {
        return v4_refused(v4);
    }
    if s[0] == 0x64 && s[1] == 0xff9b && s[2..6] == [0, 0, 0, 0] {
        return v4_refused(Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8));
    }
    if s[0] == 0x2002 {
        return v4_refused(Ipv4Addr::new((s[1] >> 8) as u8, s[1] as u8, (s[2] >> 8) as u8, s[2] as u8));
    }
    if ip.is_unspecified() || s[..6] == [0, 0, 0, 0, 0, 0] {
        Some("an unspecified or IPv4-compatible address")
    } else if (s[0] & 0xfe00) == 0xfc00 {
        Some("a unique-local address")
    } else if (s[0] & 0xffc0) == 0xfe80 || (s[0] & 0xffc0) == 0xfec0 {
        Some("a link-local address")
    } else if ip.is_multicast() {
        Some("a multicast address")
    } else if s[0] == 0x2001 && s[1] == 0x0db8 {
        Some("a documentation address")
    } else {
        None
    }
}

/// A webhook's URL, taken apart.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoint {
    /// `https` (or `http`, to loopback under [`AddressPolicy::AllowLoopback`]).
    pub scheme: String,
    /// The name or address to resolve (no brackets around IPv6).
    pub host: String,
    pub port: u16,
    /// The path and query to POST to.
    pub path: String,
}

/// Parses a webhook URL under `policy`: HTTPS (or HTTP to a loopback host
/// locally), no user information, no fragment; an address literal is judged
/// at once, a name at each attempt after it resolves.
pub fn endpoint(url: &str, policy: AddressPolicy) -> DomainResult<Endpoint> {
    let invalid = |m: &str| DomainError::invalid("url", m.to_string());
    if url.len() > 2048 {
        return Err(invalid("url is longer than 2048 characters"));
    }
    let parsed = url::Url::parse(url).map_err(|e| invalid(&format!("url is not a URL: {e}")))?;
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(invalid("url may not carry a user name or password"));
    }
    if parsed.fragment().is_some() {
        return Err(invalid("url may not carry a fragment"));
    }
    let (host, literal) = match parsed.host() {
        Some(url::Host::Domain(d)) => (d.to_string(), None),
        Some(url::Host::Ipv4(ip)) => (ip.to_string(), Some(IpAddr::V4(ip))),
        Some(url::Host::Ipv6(ip)) => (ip.to_string(), Some(IpAddr::V6(ip))),
        None => return Err(invalid("url has no host")),
    };
    let loopback_name = host.eq_ignore_ascii_case("localhost") || literal.is_some_and(|ip| ip.is_loopback());
    match parsed.scheme() {
        "https" => {}
        "http" if policy == AddressPolicy::AllowLoopback && loopback_name => {}
        _ => return Err(invalid("url must start with https://")),
    }
    if let Some(ip) = literal
        && let Some(why) = address_refused(ip, policy)
    {
        return Err(invalid(&format!("url points at {why}, which webhooks may not reach")));
    }
    let port = parsed.port_or_known_default().ok_or_else(|| invalid("url has no port"))?;
    let mut path = parsed.path().to_string();
    if let Some(q) = parsed.query() {
        path.push('?');
        path.push_str(q);
    }
    Ok(Endpoint { scheme: parsed.scheme().to_string(), host, port, path })
}

/// The addresses `endpoint` resolves to now, if every one of them may be
/// reached under `policy`; otherwise why not. Any refused address refuses
/// the endpoint: a name that also resolves inside the network is not trusted
/// with its other addresses. Run at creation and before every attempt (a
/// name can be pointed elsewhere after it was accepted).
pub async fn reachable_addresses(
    transport: &dyn WebhookTransport,
    endpoint: &Endpoint,
    policy: AddressPolicy,
) -> Result<Vec<IpAddr>, String> {
    let addresses = match endpoint.host.parse::<IpAddr>() {
        Ok(ip) => vec![ip],
        Err(_) => transport.resolve(&endpoint.host, endpoint.port).await?,
    };
    if addresses.is_empty() {
        return Err(format!("{} resolves to no address", endpoint.host));
    }
    if let Some(why) = addresses.iter().find_map(|ip| address_refused(*ip, policy)) {
        return Err(format!("{} resolves to {why}, which webhooks may not reach", endpoint.host));
    }
    Ok(addresses)
}

/// How one attempt went.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Attempt {
    /// The endpoint answered with this status (redirects are not followed).
    Answered(u16),
    /// No answer: why (refused address, DNS, connection, TLS, timeout).
    Failed(String),
}

/// Sends a delivery's bytes. Adapters connect only to the address they are
/// given (already judged), never follow redirects, and give up after a
/// short timeout.
#[async_trait]
pub trait WebhookTransport: Send + Sync {
    /// The addresses `host` resolves to now.
    async fn resolve(&self, host: &str, port: u16) -> Result<Vec<IpAddr>, String>;
    /// POSTs `body` (JSON) to `endpoint` through `ip`, with `headers`.
    async fn post(&self, endpoint: &Endpoint, ip: IpAddr, headers: &[(&str, String)], body: &str) -> Attempt;
}

/// Where webhooks and their deliveries are kept.
#[async_trait]
pub trait WebhookStore: Send + Sync {
    /// Stores a new webhook if its account has fewer than `max_per_account`
    /// (`false`, and nothing written, otherwise), checked and written at once
    /// so that concurrent inserts cannot both take the last place.
    async fn insert_webhook(&self, hook: &Webhook, max_per_account: usize) -> StoreResult<bool>;
    async fn webhook(&self, id: WebhookId) -> StoreResult<Option<Webhook>>;
    /// Replaces a webhook if its revision is still `hook.revision`
    /// (`Conflict` otherwise); the stored record has it bumped.
    async fn replace_webhook(&self, hook: &Webhook) -> StoreResult<Webhook>;
    /// Deletes a webhook of `account`, giving its place under the account's
    /// cap back; `false` if it was not there.
    async fn delete_webhook(&self, id: WebhookId, account: AccountId) -> StoreResult<bool>;
    /// The account's webhooks, oldest first (at most [`MAX_WEBHOOKS`] and a few).
    async fn webhooks_of_account(&self, account: AccountId) -> StoreResult<Vec<Webhook>>;
    async fn insert_delivery(&self, delivery: &Delivery) -> StoreResult<()>;
    async fn delivery(&self, id: DeliveryId) -> StoreResult<Option<Delivery>>;
    /// Replaces a delivery if its revision is still `delivery.revision`
    /// (`Conflict` otherwise: another worker took it).
    async fn replace_delivery(&self, delivery: &Delivery) -> StoreResult<Delivery>;
    /// A webhook's latest deliveries, newest first.
    async fn deliveries_of_webhook(&self, webhook: WebhookId, limit: u32) -> StoreResult<Vec<Delivery>>;
    /// Pending deliveries whose next attempt is at or before `now`, soonest first.
    async fn due_deliveries(&self, now: DateTime<Utc>, limit: u32) -> StoreResult<Vec<Delivery>>;
}

/// Hands a new or retried delivery to what sends it: the in-process worker
/// locally, a queue in AWS. `at` is when it is due.
#[async_trait]
pub trait DeliveryQueue: Send + Sync {
    async fn schedule(&self, delivery: DeliveryId, at: DateTime<Utc>) -> StoreResult<()>;
}

/// How long a claimed delivery attempt is its claimer's alone: far longer
/// than an attempt takes (10 s at most), shorter than the sweep's wait
/// before it takes up an overdue delivery (10 minutes).
pub const ATTEMPT_LEASE: Duration = Duration::minutes(5);

/// An event told at most once per `key` (a slot taken before anything is
/// sent), remembered until `until` (kept a day longer).
#[derive(Clone, Debug)]
pub struct Once {
    pub key: String,
    pub until: DateTime<Utc>,
}

/// Each account's webhooks as this process last read them, and when.
type SubscriptionCache = std::collections::HashMap<AccountId, (DateTime<Utc>, Vec<Webhook>)>;

/// How long a process trusts its copy of an account's webhooks before it
/// reads them again (events on the visitors' path look there first).
const SUBSCRIPTIONS_TTL_SECONDS: i64 = 60;

/// Webhooks: managed by administrators, notified by the other services,
/// delivered by the worker.
#[derive(Clone)]
pub struct WebhookService {
    catalog: Arc<dyn crate::store::Catalog>,
    store: Arc<dyn WebhookStore>,
    limits: Arc<dyn LimitStore>,
    /// How deliveries are sent and handed on; `None` in a process that only
    /// records them ([`recording_only`](Self::recording_only)).
    sender: Option<Sender>,
    policy: AddressPolicy,
    clock: Arc<dyn Clock>,
    cache: Arc<Mutex<SubscriptionCache>>,
}

impl std::fmt::Debug for WebhookService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookService").field("policy", &self.policy).finish_non_exhaustive()
    }
}

/// What sends deliveries, and what it hands new and retried ones to.
#[derive(Clone)]
struct Sender {
    transport: Arc<dyn WebhookTransport>,
    queue: Arc<dyn DeliveryQueue>,
}

/// The JSON a delivery sends.
#[derive(Serialize)]
struct Body<'a> {
    id: DeliveryId,
    #[serde(rename = "type")]
    event: WebhookEvent,
    created_at: DateTime<Utc>,
    data: EventData<'a>,
}

/// What an event says of its link: ids and times only.
#[derive(Serialize)]
struct EventData<'a> {
    account_id: AccountId,
    link_id: LinkId,
    target: &'a Target,
    valid_until: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'a str>,
}

impl WebhookService {
    /// A service over `store`, sending through `transport` under `policy`.
    pub fn new(
        catalog: Arc<dyn crate::store::Catalog>,
        store: Arc<dyn WebhookStore>,
        limits: Arc<dyn LimitStore>,
        transport: Arc<dyn WebhookTransport>,
        queue: Arc<dyn DeliveryQueue>,
        policy: AddressPolicy,
        clock: Arc<dyn Clock>,
    ) -> Self {
        let sender = Some(Sender { transport, queue });
        WebhookService { catalog, store, limits, sender, policy, clock, cache: Arc::default() }
    }

    /// A service that records deliveries and sends none, for a process with
    /// no queue and no HTTP client (the AWS stream function): its
    /// deliveries are marked [`unqueued`](Delivery::unqueued), and the
    /// scheduled sweep ([`deliver_overdue`](Self::deliver_overdue)) makes them.
    pub fn recording_only(
        catalog: Arc<dyn crate::store::Catalog>,
        store: Arc<dyn WebhookStore>,
        limits: Arc<dyn LimitStore>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        let policy = AddressPolicy::PublicOnly;
        WebhookService { catalog, store, limits, sender: None, policy, clock, cache: Arc::default() }
    }

    fn sender(&self) -> DomainResult<&Sender> {
        self.sender.as_ref().ok_or_else(|| {
            DomainError::Store(StoreError::Backend("this process records webhook deliveries and sends none".into()))
        })
    }

    /// Refuses a URL that is malformed or reaches an address the policy refuses now.
    async fn check_url(&self, url: &str) -> DomainResult<()> {
        let target = endpoint(url, self.policy)?;
        reachable_addresses(self.sender()?.transport.as_ref(), &target, self.policy)
            .await
            .map_err(|why| DomainError::invalid("url", format!("url: {why}")))?;
        Ok(())
    }

    fn require_admin(actor: &Actor) -> DomainResult<()> {
        if actor.user.role != Role::Admin {
            return Err(DomainError::Forbidden("webhooks are for administrators".into()));
        }
        Ok(())
    }

    fn check_events(events: &[WebhookEvent]) -> DomainResult<Vec<WebhookEvent>> {
        let mut events = events.to_vec();
        events.dedup();
        if events.is_empty() {
            return Err(DomainError::invalid("events", "events must name at least one event"));
        }
        Ok(events)
    }

    fn new_secret() -> String {
        let mut bytes = [0u8; 32];
        rand::rng().fill_bytes(&mut bytes);
        format!("whsec_{}", URL_SAFE_NO_PAD.encode(bytes))
    }

    fn view(hook: &Webhook, secret: bool) -> WebhookView {
        WebhookView {
            id: hook.id,
            url: hook.url.clone(),
            events: hook.events.clone(),
            secret: secret.then(|| hook.secret.clone()),
            created_at: hook.created_at,
            updated_at: hook.updated_at,
        }
    }

    async fn load(&self, actor: &Actor, id: WebhookId) -> DomainResult<Webhook> {
        Self::require_admin(actor)?;
        match self.store.webhook(id).await? {
            Some(h) if h.account_id == actor.account.id => Ok(h),
            _ => Err(DomainError::NotFound("webhook")),
        }
    }

    /// Forgets this process's copy of the account's webhooks, and keeps the
    /// account's summary of the events they want: `adding` joins it at once;
    /// after a change or delete it is read again from the webhooks (a
    /// summary that says too much costs only a read of the list).
    async fn changed(&self, account: AccountId, adding: &[WebhookEvent], recount: bool) -> DomainResult<()> {
        self.cache.lock().expect("cache lock").remove(&account);
        let mut wanted: Vec<WebhookEvent> = adding.to_vec();
        if recount {
            for hook in self.store.webhooks_of_account(account).await? {
                wanted.extend(hook.events);
            }
        }
        crate::library::retry_on_conflict(|| {
            let wanted = wanted.clone();
            async move {
                let mut current = self.catalog.account(account).await?.ok_or(DomainError::NotFound("account"))?;
                let mut events = if recount { wanted } else { [current.webhook_events.clone(), wanted].concat() };
                events.sort_by_key(|e| *e as u8);
                events.dedup();
                if events == current.webhook_events {
                    return Ok(());
                }
                current.webhook_events = events;
                self.catalog.replace_account(&current).await?;
                Ok(())
            }
        })
        .await
    }

    /// Registers a webhook; its secret is in this answer only.
    pub async fn create(&self, actor: &Actor, new: NewWebhook) -> DomainResult<WebhookView> {
        Self::require_admin(actor)?;
        let events = Self::check_events(&new.events)?;
        self.check_url(&new.url).await?;
        let now = self.clock.now();
        let hook = Webhook {
            id: WebhookId::new(),
            account_id: actor.account.id,
            url: new.url,
            secret: Self::new_secret(),
            events,
            created_by: actor.user.id,
            created_at: now,
            updated_at: now,
            revision: 0,
        };
        if !self.store.insert_webhook(&hook, MAX_WEBHOOKS).await? {
            return Err(DomainError::Conflict {
                code: "webhook_limit",
                message: format!("an account may have at most {MAX_WEBHOOKS} webhooks"),
            });
        }
        self.changed(actor.account.id, &hook.events, false).await?;
        Ok(Self::view(&hook, true))
    }

    /// The account's webhooks (without secrets).
    pub async fn list(&self, actor: &Actor) -> DomainResult<Vec<WebhookView>> {
        Self::require_admin(actor)?;
        Ok(self.store.webhooks_of_account(actor.account.id).await?.iter().map(|h| Self::view(h, false)).collect())
    }

    /// One webhook (without its secret).
    pub async fn get(&self, actor: &Actor, id: WebhookId) -> DomainResult<WebhookView> {
        Ok(Self::view(&self.load(actor, id).await?, false))
    }

    /// Changes a webhook's URL or events, or gives it a new secret (shown in this answer only).
    pub async fn update(&self, actor: &Actor, id: WebhookId, patch: WebhookPatch) -> DomainResult<WebhookView> {
        Self::require_admin(actor)?;
        let events = patch.events.as_deref().map(Self::check_events).transpose()?;
        if let Some(url) = &patch.url {
            self.check_url(url).await?;
        }
        for _ in 0..8 {
            let mut hook = self.load(actor, id).await?;
            if let Some(url) = &patch.url {
                hook.url = url.clone();
            }
            if let Some(events) = &events {
                hook.events = events.clone();
            }
            if patch.rotate_secret {
                hook.secret = Self::new_secret();
            }
            hook.updated_at = self.clock.now();
            match self.store.replace_webhook(&hook).await {
                Ok(stored) => {
                    self.changed(actor.account.id, &stored.events, events.is_some()).await?;
                    return Ok(Self::view(&stored, patch.rotate_secret));
                }
                Err(StoreError::Conflict(_)) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(DomainError::Conflict { code: "busy", message: "the webhook is being changed by others; try again".into() })
    }

    /// Deletes a webhook; its pending deliveries are given up when their turn comes.
    pub async fn delete(&self, actor: &Actor, id: WebhookId) -> DomainResult<()> {
        self.load(actor, id).await?;
        self.store.delete_webhook(id, actor.account.id).await?;
        self.changed(actor.account.id, &[], true).await?;
        Ok(())
    }

    /// A webhook's latest deliveries (at most `limit`), newest first.
    pub async fn deliveries(&self, actor: &Actor, id: WebhookId, limit: u32) -> DomainResult<Vec<Delivery>> {
        self.load(actor, id).await?;
        Ok(self.store.deliveries_of_webhook(id, limit).await?)
    }

    /// The account's webhooks, from this process's copy while it is fresh.
    async fn subscribers(&self, account: AccountId, event: WebhookEvent) -> DomainResult<Vec<Webhook>> {
        let now = self.clock.now();
        let cached = self.cache.lock().expect("cache lock").get(&account).cloned();
        let hooks = match cached {
            Some((read, hooks)) if now - read < Duration::seconds(SUBSCRIPTIONS_TTL_SECONDS) => hooks,
            _ => {
                let hooks = self.store.webhooks_of_account(account).await?;
                self.cache.lock().expect("cache lock").insert(account, (now, hooks.clone()));
                hooks
            }
        };
        Ok(hooks.into_iter().filter(|h| h.events.contains(&event)).collect())
    }

    /// Tells the account's webhooks that want it of `event` on `link`, at
    /// most once per `once` key (`None`: every time): a delivery per
    /// webhook, stored, then handed to the queue. Nothing is read or written
    /// for an account without such a webhook, beyond the cached list.
    pub async fn notify(
        &self,
        link: &Link,
        event: WebhookEvent,
        once: Option<Once>,
        reason: Option<&str>,
    ) -> DomainResult<()> {
        let hooks = self.subscribers(link.account_id, event).await?;
        if hooks.is_empty() {
            return Ok(());
        }
        if let Some(Once { key, until }) = once {
            let slot = Slot { holder: "webhook".into(), until };
            if !self.limits.take_slot(&format!("webhook:{key}"), &slot, None).await? {
                return Ok(());
            }
        }
        self.record(link, event, reason, &hooks, |_| DeliveryId::new()).await
    }

    /// Tells the account's webhooks that want it of `event` on `link` once
    /// per `key`, however often it is called and wherever an earlier call
    /// stopped: each webhook's delivery has an id made from `key` and the
    /// webhook's, and is written only if absent. For callers that may run
    /// again after a failure (a stream record delivered again): a slot
    /// taken first would lose the event if the writes after it failed.
    pub async fn notify_keyed(
        &self,
        link: &Link,
        event: WebhookEvent,
        key: &str,
        reason: Option<&str>,
    ) -> DomainResult<()> {
        let hooks = self.subscribers(link.account_id, event).await?;
        self.record(link, event, reason, &hooks, |hook| keyed_delivery_id(key, hook)).await
    }

    /// Stores a delivery of `event` per webhook of `hooks`, each with the id
    /// `id_for` gives it (one already stored is left as it is), and hands
    /// each new one to the queue (or, without one, marks it for the sweep).
    async fn record(
        &self,
        link: &Link,
        event: WebhookEvent,
        reason: Option<&str>,
        hooks: &[Webhook],
        id_for: impl Fn(WebhookId) -> DeliveryId,
    ) -> DomainResult<()> {
        let now = self.clock.now();
        for hook in hooks {
            let id = id_for(hook.id);
            let body = Body {
                id,
                event,
                created_at: now,
                data: EventData {
                    account_id: link.account_id,
                    link_id: link.id,
                    target: &link.target,
                    valid_until: link.valid_until,
                    reason,
                },
            };
            let delivery = Delivery {
                id,
                webhook_id: hook.id,
                account_id: hook.account_id,
                event,
                body: serde_json::to_string(&body)
                    .map_err(|e| DomainError::Store(StoreError::Backend(e.to_string())))?,
                created_at: now,
                state: DeliveryState::Pending,
                attempts: 0,
                last_status: None,
                last_error: None,
                last_attempt_at: None,
                next_attempt_at: Some(now),
                unqueued: self.sender.is_none(),
                revision: 0,
            };
            match self.store.insert_delivery(&delivery).await {
                Ok(()) => {}
                Err(StoreError::AlreadyExists(_)) => continue,
                Err(e) => return Err(e.into()),
            }
            if let Some(sender) = &self.sender {
                sender.queue.schedule(id, now).await?;
            }
        }
        Ok(())
    }

    /// [`notify`](Self::notify) where the event is a side effect: its
    /// failure is logged, never the visitor's or the system's request's.
    pub async fn notify_quietly(&self, link: &Link, event: WebhookEvent, once: Option<Once>, reason: Option<&str>) {
        if let Err(e) = self.notify(link, event, once, reason).await {
            tracing::warn!(link = %link.id, ?event, error = %e, "webhook event not recorded");
        }
    }

    /// Makes one attempt at delivery `id` if it is due: signs and sends it,
    /// then records how it went and when it is tried again (rescheduling it).
    /// Returns the delivery as recorded, or `None` if it was not due, gone
    /// or taken by another worker.
    pub async fn attempt(&self, id: DeliveryId) -> DomainResult<Option<Delivery>> {
        let sender = self.sender()?;
        let Some(mut delivery) = self.store.delivery(id).await? else { return Ok(None) };
        let now = self.clock.now();
        if delivery.state != DeliveryState::Pending {
            return Ok(None);
        }
        if let Some(at) = delivery.next_attempt_at.filter(|at| *at > now) {
            // Woken early (a queue's longest delay is shorter than the backoff): again later.
            sender.queue.schedule(id, at).await?;
            return Ok(None);
        }
        if !self.claim_attempt(id, delivery.attempts + 1, now).await? {
            return Ok(None);
        }
        let hook = self.store.webhook(delivery.webhook_id).await?;
        let outcome = match &hook {
            None => Attempt::Failed("the webhook was deleted".into()),
            Some(hook) => Self::send(sender, self.policy, hook, &delivery, now).await,
        };
        delivery.attempts += 1;
        delivery.last_attempt_at = Some(now);
        // Its retries, if any, go through this process's queue.
        delivery.unqueued = false;
        let (status, error) = match &outcome {
            Attempt::Answered(status) => (Some(*status), None),
            Attempt::Failed(why) => (None, Some(why.clone())),
        };
        delivery.last_status = status;
        delivery.last_error = error;
        let next = now + backoff(delivery.attempts);
        (delivery.state, delivery.next_attempt_at) = match outcome {
            Attempt::Answered(s) if (200..300).contains(&s) => (DeliveryState::Delivered, None),
            _ if hook.is_none() || next > delivery.created_at + retry_window() => (DeliveryState::Failed, None),
            _ => (DeliveryState::Pending, Some(next)),
        };
        match self.store.replace_delivery(&delivery).await {
            Ok(stored) => {
                if let Some(at) = stored.next_attempt_at {
                    sender.queue.schedule(stored.id, at).await?;
                }
                Ok(Some(stored))
            }
            Err(StoreError::Conflict(_)) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Takes attempt number `attempt` of delivery `id` for this call, before
    /// anything is sent: of a queue message and a sweep (or two sweeps)
    /// that find the same delivery due at once, one sends it. A claim whose
    /// maker never recorded its outcome (a process that stopped) may be
    /// taken over once [`ATTEMPT_LEASE`] has passed.
    async fn claim_attempt(&self, id: DeliveryId, attempt: u32, now: DateTime<Utc>) -> DomainResult<bool> {
        let key = format!("webhook-attempt:{id}:{attempt}");
        let slot = Slot { holder: uuid::Uuid::new_v4().to_string(), until: now + ATTEMPT_LEASE };
        if self.limits.take_slot(&key, &slot, None).await? {
            return Ok(true);
        }
        match self.limits.slot(&key).await? {
            None => Ok(self.limits.take_slot(&key, &slot, None).await?),
            Some(held) if held.until <= now => Ok(self.limits.take_slot(&key, &slot, Some(&held.holder)).await?),
            Some(_) => Ok(false),
        }
    }

    async fn send(
        sender: &Sender,
        policy: AddressPolicy,
        hook: &Webhook,
        delivery: &Delivery,
        now: DateTime<Utc>,
    ) -> Attempt {
        let target = match endpoint(&hook.url, policy) {
            Ok(t) => t,
            Err(e) => return Attempt::Failed(e.to_string()),
        };
        let addresses = match reachable_addresses(sender.transport.as_ref(), &target, policy).await {
            Ok(a) => a,
            Err(why) => return Attempt::Failed(why),
        };
        let headers = [
            (SIGNATURE_HEADER, signature(&hook.secret, now.timestamp(), &delivery.body)),
            ("Publinks-Event", event_name(delivery.event)),
            ("Publinks-Delivery", delivery.id.to_string()),
        ];
        sender.transport.post(&target, addresses[0], &headers, &delivery.body).await
    }

    /// Whether some delivery still waits for an attempt (now or later): the
    /// local worker polls only then.
    pub async fn any_pending(&self) -> DomainResult<bool> {
        let far = self.clock.now() + retry_window() + Duration::days(1);
        Ok(!self.store.due_deliveries(far, 1).await?.is_empty())
    }

    /// Attempts every delivery due at `now` (at most `limit`): the local
    /// worker's and the tests' sweep. Returns how many were attempted.
    pub async fn deliver_due(&self, limit: u32) -> DomainResult<usize> {
        self.deliver_overdue(Duration::zero(), limit).await
    }

    /// Attempts, at most `limit` of them, the deliveries that were due `by`
    /// ago or earlier and those due now that no queue message will come for
    /// ([`unqueued`](Delivery::unqueued)): the scheduled sweep in AWS, which
    /// leaves the queue the deliveries whose message may still be on its way,
    /// takes up those whose message was lost, and makes those the stream
    /// function recorded. It reads up to `4 × limit` due deliveries, soonest
    /// first, to find them among those left to the queue. Returns how many
    /// were attempted.
    pub async fn deliver_overdue(&self, by: Duration, limit: u32) -> DomainResult<usize> {
        let now = self.clock.now();
        let overdue = now - by;
        let due = self.store.due_deliveries(now, limit.saturating_mul(4)).await?;
        let taken = due.into_iter().filter(|d| d.unqueued || d.next_attempt_at.is_some_and(|at| at <= overdue));
        let mut attempted = 0;
        for d in taken.take(limit as usize) {
            attempted += usize::from(self.attempt(d.id).await?.is_some());
        }
        Ok(attempted)
    }

    /// Tells the webhooks that want it of every link in `links` that ends
    /// within 24 hours of now, once per end date (a slot per link and end
    /// date, so that overlapping sweeps tell it once), reading the window
    /// `batch` links at a time to its end. Returns how many active links
    /// were found ending.
    pub async fn warn_expiring(&self, links: &dyn LinkStore, batch: u32) -> DomainResult<usize> {
        let now = self.clock.now();
        let (mut after, until) = (EndPosition::after(now), now + Duration::hours(24));
        let mut warned = 0;
        loop {
            let page = links.links_ending_between(after, until, batch.max(1)).await?;
            for link in &page {
                if link.state(now) != LinkState::Active {
                    continue;
                }
                let Some(until) = link.valid_until else { continue };
                let once = Once { key: format!("expires_soon:{}:{}", link.id, until.timestamp()), until };
                self.notify(link, WebhookEvent::LinkExpiresSoon, Some(once), None).await?;
                warned += 1;
            }
            match page.last().and_then(EndPosition::after_link) {
                Some(next) if page.len() >= batch.max(1) as usize => after = next,
                _ => return Ok(warned),
            }
        }
    }
}

/// The id of `webhook`'s delivery of the event named `key`: the same for
/// every call with the same two (a UUID of the SHA-256 of both), so that a
/// second write of it is refused ([`WebhookService::notify_keyed`]).
fn keyed_delivery_id(key: &str, webhook: WebhookId) -> DeliveryId {
    let digest = <Sha256 as sha2::Digest>::digest(format!("{key}\n{webhook}").as_bytes());
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    DeliveryId(uuid::Builder::from_custom_bytes(bytes).into_uuid())
}

/// The event's name as it appears in bodies and the `Publinks-Event` header
/// (its serialised form).
pub fn event_name(event: WebhookEvent) -> String {
    serde_json::to_value(event).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(ip: &str) -> bool {
        address_refused(ip.parse().unwrap(), AddressPolicy::PublicOnly).is_some()
    }

    #[test]
    fn only_public_addresses_are_reached_in_aws() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "255.255.255.255",
            "224.0.0.1",
            "198.18.0.1",
            "192.0.0.8",
            "::1",
            "::",
            "fc00::1",
            "fd12:3456::1",
            "fe80::1",
            "ff02::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "64:ff9b::a00:1",
            "2002:a00:1::1",
            "fd00:ec2::254",
            "2001:db8::1",
        ] {
            assert!(refused(ip), "{ip} must be refused");
        }
        for ip in ["93.184.215.14", "8.8.8.8", "172.32.0.1", "100.128.0.1", "2606:4700::1111", "::ffff:8.8.8.8"] {
            assert!(!refused(ip), "{ip} is public");
        }
        let local = |ip: &str| address_refused(ip.parse().unwrap(), AddressPolicy::AllowLoopback);
        assert_eq!(local("127.0.0.1"), None);
        assert_eq!(local("::1"), None);
        assert!(local("169.254.169.254").is_some() && local("10.0.0.1").is_some());
    }

    #[test]
    fn urls_are_https_without_credentials_or_refused_literals() {
        let aws = AddressPolicy::PublicOnly;
        let ok = endpoint("https://hooks.example.com:8443/in?x=1", aws).unwrap();
        assert_eq!((ok.host.as_str(), ok.port, ok.path.as_str()), ("hooks.example.com", 8443, "/in?x=1"));
        for bad in [
            "http://hooks.example.com/",
            "https://user:pw@hooks.example.com/",
            "https://169.254.169.254/latest/meta-data",
            "https://[::1]/",
            "https://10.0.0.5/",
            "ftp://hooks.example.com/",
            "not a url",
        ] {
            assert!(endpoint(bad, aws).is_err(), "{bad}");
        }
        let local = AddressPolicy::AllowLoopback;
        assert_eq!(endpoint("http://127.0.0.1:9000/hook", local).unwrap().port, 9000);
        assert!(endpoint("http://hooks.example.com/", local).is_err(), "plain HTTP only to loopback");
        assert!(endpoint("https://192.168.0.2/", local).is_err());
    }

    #[test]
    fn signatures_verify_only_with_the_secret_the_body_and_a_fresh_time() {
        let now = Utc::now();
        let header = signature("whsec_a", now.timestamp(), "{\"x\":1}");
        assert!(header.starts_with(&format!("t={},v1=", now.timestamp())));
        assert!(verify_signature("whsec_a", &header, "{\"x\":1}", now));
        assert!(!verify_signature("whsec_b", &header, "{\"x\":1}", now));
        assert!(!verify_signature("whsec_a", &header, "{\"x\":2}", now));
        assert!(!verify_signature("whsec_a", &header, "{\"x\":1}", now + Duration::minutes(6)));
        // The known answer: HMAC-SHA256("key", "1.body").
        assert_eq!(
            signature("key", 1, "body"),
            "t=1,v1=91b5374b153842ad05b2c4eab9349b8321b14703165bd3fb8b034dfb8be98ae5"
        );
    }

    /// A resolver that answers what a test scripted (a name pointed at the
    /// metadata service after it was accepted, say).
    struct Scripted(Vec<IpAddr>);

    #[async_trait]
    impl WebhookTransport for Scripted {
        async fn resolve(&self, _host: &str, _port: u16) -> Result<Vec<IpAddr>, String> {
            Ok(self.0.clone())
        }
        async fn post(&self, _: &Endpoint, _: IpAddr, _: &[(&str, String)], _: &str) -> Attempt {
            Attempt::Answered(200)
        }
    }

    #[tokio::test]
    async fn names_are_judged_by_every_address_they_resolve_to() {
        let aws = AddressPolicy::PublicOnly;
        let hook = endpoint("https://hooks.example.com/in", aws).unwrap();
        let public: IpAddr = "93.184.215.14".parse().unwrap();
        assert_eq!(reachable_addresses(&Scripted(vec![public]), &hook, aws).await, Ok(vec![public]));
        let rebound = Scripted(vec![public, "169.254.169.254".parse().unwrap()]);
        let refused = reachable_addresses(&rebound, &hook, aws).await.unwrap_err();
        assert!(refused.contains("link-local"), "{refused}");
        assert!(reachable_addresses(&Scripted(vec![]), &hook, aws).await.is_err());
        let loopback = Scripted(vec!["127.0.0.1".parse().unwrap()]);
        assert!(reachable_addresses(&loopback, &hook, aws).await.is_err());
        assert!(reachable_addresses(&loopback, &hook, AddressPolicy::AllowLoopback).await.is_ok());
    }

    #[test]
    fn backoff_doubles_to_four_hours_and_a_day_holds_about_fourteen_attempts() {
        assert_eq!(backoff(1), Duration::seconds(30));
        assert_eq!(backoff(2), Duration::minutes(1));
        assert_eq!(backoff(9), Duration::minutes(128));
        assert_eq!(backoff(40), Duration::hours(4));
        let (mut at, mut attempts) = (Duration::zero(), 0);
        while at <= retry_window() {
            attempts += 1;
            at += backoff(attempts);
        }
        assert_eq!(attempts, 14);
    }
}
