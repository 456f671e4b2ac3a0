//! Only CloudFront reaches `public-api`. The distribution adds a secret
//! header to every request it forwards ([`ORIGIN_HEADER`], its value kept in
//! Secrets Manager); [`guard`] refuses any request without an accepted value
//! before a handler runs, and marks the others [`ViaCloudFront`], the one
//! thing that lets the viewer address CloudFront reports be trusted.
//!
//! Rotation: two values are accepted at once, the current and the previous
//! one (`infra/README.md`, "The origin secret", has the steps). The local
//! server has no CloudFront in front of it and no guard: it never trusts the
//! viewer-address header.

use super::ApiError;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};
use std::sync::Arc;
use subtle::ConstantTimeEq;

/// The header CloudFront adds to each request it forwards to `public-api`.
pub const ORIGIN_HEADER: &str = "x-publinks-origin";

/// The header with the viewer's address and port, set by CloudFront.
pub const VIEWER_ADDRESS_HEADER: &str = "cloudfront-viewer-address";
/// The header CloudFront puts the viewer's country in (ISO 3166-1 alpha-2);
/// believed, like the address, only behind the origin guard.
pub const VIEWER_COUNTRY_HEADER: &str = "cloudfront-viewer-country";

/// Shortest origin secret accepted: a guess must be hopeless.
pub const MIN_SECRET_CHARS: usize = 32;

/// The values of [`ORIGIN_HEADER`] accepted now: the current one and, during
/// a rotation, the previous one. Kept as SHA-256 digests, compared in
/// constant time.
#[derive(Clone)]
pub struct OriginSecrets {
    digests: Arc<Vec<[u8; 32]>>,
}

impl std::fmt::Debug for OriginSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "OriginSecrets({} accepted)", self.digests.len())
    }
}

impl OriginSecrets {
    /// Accepts each of `values` (empty ones are skipped); refuses none at all
    /// or one shorter than [`MIN_SECRET_CHARS`].
    pub fn new<I, S>(values: I) -> Result<Self, String>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut digests = Vec::new();
        for value in values {
            let value = value.as_ref().trim();
            if value.is_empty() {
                continue;
            }
            if value.chars().count() < MIN_SECRET_CHARS {
                return Err(format!("an origin secret must have at least {MIN_SECRET_CHARS} characters"));
            }
            digests.push(Sha256::digest(value.as_bytes()).into());
        }
        if digests.is_empty() {
            return Err("no origin secret to accept".into());
        }
        Ok(OriginSecrets { digests: Arc::new(digests) })
    }

    /// Whether `value` is one of the accepted secrets. Every accepted value
    /// is compared, each in constant time, whatever matches.
    pub fn accepts(&self, value: &[u8]) -> bool {
        let digest: [u8; 32] = Sha256::digest(value).into();
        self.digests.iter().fold(subtle::Choice::from(0), |found, d| found | d.ct_eq(&digest)).into()
    }
}

/// Marks a request that came through the distribution: its
/// [`VIEWER_ADDRESS_HEADER`] is CloudFront's, not the caller's.
#[derive(Clone, Copy, Debug)]
pub struct ViaCloudFront;

/// Refuses (403) a request without an accepted origin secret before any
/// work; lets the others through, marked [`ViaCloudFront`], without the
/// secret header.
pub async fn guard(State(secrets): State<OriginSecrets>, mut request: Request, next: Next) -> Response {
    let accepted = request.headers().get(ORIGIN_HEADER).is_some_and(|v| secrets.accepts(v.as_bytes()));
    if !accepted {
        let refusal = ApiError::new(
            StatusCode::FORBIDDEN,
            "origin_refused",
            "this address is reached through its share URL only",
        );
        return refusal.into_response();
    }
    request.headers_mut().remove(ORIGIN_HEADER);
    request.extensions_mut().insert(ViaCloudFront);
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn current_and_previous_are_accepted_and_nothing_else() {
        let (current, previous) = ("c".repeat(40), "p".repeat(40));
        let secrets = OriginSecrets::new([current.as_str(), previous.as_str(), ""]).unwrap();
        assert!(secrets.accepts(current.as_bytes()));
        assert!(secrets.accepts(previous.as_bytes()));
        assert!(!secrets.accepts(b""));
        assert!(!secrets.accepts(&current.as_bytes()[..39]));
        assert!(!secrets.accepts(format!("{current}x").as_bytes()));
        assert!(!format!("{secrets:?}").contains(&current), "secrets never print");
    }

    #[test]
    fn short_or_missing_secrets_are_refused() {
        assert!(OriginSecrets::new(["short"]).is_err());
        assert!(OriginSecrets::new(["", " "]).is_err());
        assert!(OriginSecrets::new(Vec::<String>::new()).is_err());
    }
}
