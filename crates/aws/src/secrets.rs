//! The signing keys and the origin secret from Secrets Manager, read once
//! per process (a Lambda container reads them at its cold start and keeps
//! them).
//!
//! A key secret holds either the JSON of `keys.json` (see
//! [`SigningKeys::from_json`]) or, as `infra/template.yaml` creates it, one
//! generated master key `{"master_key": "..."}` from which every key is
//! derived (CloudFormation can generate only one random value per secret).
//! Each function reads only the secret of the keys it uses, and takes only
//! those keys from it: `links-api` (and the other dashboard functions) the
//! link-token key from the dashboard secret, `public-api` the visitor-session
//! key from its own secret — so a function's secret yields no other's key.
//!
//! The origin secret holds `{"current": "...", "previous": "..."}` (the
//! previous value only during a rotation): the header value CloudFront adds.

use aws_sdk_secretsmanager::Client;
use aws_sdk_secretsmanager::error::DisplayErrorContext;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use publinks_domain::signing::SigningKeys;
use sha2::Sha256;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use tokio::sync::OnceCell;

/// A generated master key must carry at least 256 bits: 43 characters of the
/// 62 that the template lets Secrets Manager use.
const MIN_MASTER_KEY_CHARS: usize = 43;

/// Why the signing keys could not be had.
#[derive(Debug, thiserror::Error)]
pub enum SecretsError {
    /// Secrets Manager did not answer with the secret (missing, no permission, network).
    #[error("cannot read the secret {secret_id}: {message}")]
    Fetch { secret_id: String, message: String },
    /// The secret has no string value (a binary secret).
    #[error("the secret {secret_id} has no string value")]
    NotText { secret_id: String },
    /// The secret's JSON is not signing keys.
    #[error("the secret {secret_id} does not hold signing keys: {reason}")]
    Invalid { secret_id: String, reason: String },
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Generated {
    master_key: String,
}

/// One key per purpose from the master key: HMAC-SHA256(master, purpose),
/// for every purpose [`SigningKeys`] has (read off its JSON shape, so a key
/// added there is derived here too).
fn derive(master: &str) -> Result<SigningKeys, String> {
    if master.chars().count() < MIN_MASTER_KEY_CHARS {
        return Err(format!("master_key must have at least {MIN_MASTER_KEY_CHARS} characters"));
    }
    let shape = serde_json::to_value(SigningKeys::generate()).map_err(|e| e.to_string())?;
    let purposes = shape.as_object().ok_or("signing keys are not a JSON object")?.keys();
    let derived: serde_json::Map<String, serde_json::Value> = purposes
        .map(|purpose| {
            let mut mac = Hmac::<Sha256>::new_from_slice(master.as_bytes()).expect("HMAC takes keys of any length");
            mac.update(b"publinks signing key v1: ");
            mac.update(purpose.as_bytes());
            (purpose.clone(), serde_json::Value::String(STANDARD.encode(mac.finalize().into_bytes())))
        })
        .collect();
    SigningKeys::from_json(&serde_json::Value::Object(derived).to_string())
}

/// Parses a secret's value: the `keys.json` shape, or a generated master key.
pub fn parse_signing_keys(text: &str) -> Result<SigningKeys, String> {
    match SigningKeys::from_json(text) {
        Ok(keys) => Ok(keys),
        Err(as_keys) => match serde_json::from_str::<Generated>(text) {
            Ok(generated) => derive(&generated.master_key),
            Err(_) => Err(as_keys),
        },
    }
}

/// A secret's text.
async fn read_text(client: &Client, secret_id: &str) -> Result<String, SecretsError> {
    let out = client.get_secret_value().secret_id(secret_id).send().await.map_err(|e| SecretsError::Fetch {
        secret_id: secret_id.to_string(),
        message: DisplayErrorContext(e).to_string(),
    })?;
    out.secret_string().map(str::to_string).ok_or_else(|| SecretsError::NotText { secret_id: secret_id.to_string() })
}

async fn fetch(client: &Client, secret_id: &str) -> Result<SigningKeys, SecretsError> {
    let text = read_text(client, secret_id).await?;
    parse_signing_keys(&text).map_err(|reason| SecretsError::Invalid { secret_id: secret_id.to_string(), reason })
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct OriginSecretText {
    current: String,
    #[serde(default)]
    previous: Option<String>,
}

/// Parses the origin secret's value, `{"current": "...", "previous": "..."}`,
/// into the values accepted now: the current one, then the previous one if
/// any (what makes a value strong enough is `publinks_http::origin`'s rule).
pub fn parse_origin_secrets(text: &str) -> Result<Vec<String>, String> {
    let parsed: OriginSecretText =
        serde_json::from_str(text).map_err(|_| "expected {\"current\": \"...\", \"previous\": \"...\"}".to_string())?;
    if parsed.current.trim().is_empty() {
        return Err("current must not be empty".into());
    }
    Ok([Some(parsed.current), parsed.previous].into_iter().flatten().collect())
}

/// The origin secret values in `secret_id`, read once at a cold start (a
/// rotation reaches a function with its next cold start: see `infra/README.md`).
pub async fn load_origin_secrets(client: &Client, secret_id: &str) -> Result<Vec<String>, SecretsError> {
    let text = read_text(client, secret_id).await?;
    parse_origin_secrets(&text).map_err(|reason| SecretsError::Invalid { secret_id: secret_id.to_string(), reason })
}

/// The keys of each secret read so far in this process.
fn cache() -> &'static Mutex<HashMap<String, Arc<OnceCell<SigningKeys>>>> {
    static CACHE: OnceLock<Mutex<HashMap<String, Arc<OnceCell<SigningKeys>>>>> = OnceLock::new();
    CACHE.get_or_init(Default::default)
}

/// The signing keys in `secret_id`, read from Secrets Manager the first time
/// and from memory afterwards (concurrent first callers share one read; a
/// failed read is not remembered, so the next call tries again).
pub async fn load_signing_keys(client: &Client, secret_id: &str) -> Result<SigningKeys, SecretsError> {
    let cell = {
        let mut cache = cache().lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        cache.entry(secret_id.to_string()).or_default().clone()
    };
    cell.get_or_try_init(|| fetch(client, secret_id)).await.cloned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generated_master_key_yields_three_distinct_stable_keys() {
        let master = "a".repeat(20) + &"B7".repeat(22);
        let text = format!("{{\"master_key\": \"{master}\"}}");
        let keys = parse_signing_keys(&text).unwrap();
        let again = parse_signing_keys(&text).unwrap();
        assert_eq!(keys.jwt, again.jwt);
        assert_ne!(keys.jwt, keys.urls);
        assert_ne!(keys.urls, keys.visitor_sessions);
        assert_eq!(keys.jwt.expose().len(), 32);
    }

    #[test]
    fn the_keys_json_shape_is_read_as_it_is() {
        let keys = SigningKeys::generate();
        let parsed = parse_signing_keys(&serde_json::to_string(&keys).unwrap()).unwrap();
        assert_eq!(parsed.visitor_sessions, keys.visitor_sessions);
    }

    #[test]
    fn the_origin_secret_has_a_current_and_maybe_a_previous_value() {
        let (current, previous) = ("c".repeat(64), "p".repeat(64));
        let both = parse_origin_secrets(&format!(r#"{{"current": "{current}", "previous": "{previous}"}}"#)).unwrap();
        assert_eq!(both, [current.clone(), previous]);
        let one = parse_origin_secrets(&format!(r#"{{"current": "{current}"}}"#)).unwrap();
        assert_eq!(one, std::slice::from_ref(&current));
        assert!(parse_origin_secrets(r#"{"current": ""}"#).is_err());
        assert!(parse_origin_secrets(&format!(r#"{{"master_key": "{current}"}}"#)).is_err());
    }

    #[test]
    fn weak_or_foreign_secrets_are_refused() {
        assert!(parse_signing_keys("{\"master_key\": \"short\"}").is_err());
        assert!(parse_signing_keys("{\"password\": \"hunter2\"}").is_err());
        assert!(parse_signing_keys("not json").is_err());
    }
}
