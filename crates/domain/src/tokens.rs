//! Signed tokens: the dashboard JWTs the local server issues and checks (in
//! Lambda, API Gateway's JWT authorizer checks the identity provider's), and
//! the visitor sessions of links with a password. HS256 only.

use crate::ids::UserId;
use crate::signing::SecretKey;
use chrono::Utc;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

/// The issuer and audience of locally signed dashboard tokens.
pub const LOCAL_ISSUER: &str = "publinks-local";
pub const LOCAL_AUDIENCE: &str = "publinks";

/// Why a request carries no usable identity.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AuthError {
    #[error("an Authorization: Bearer token is required")]
    Missing,
    #[error("the bearer token is not valid: {0}")]
    Invalid(String),
}

/// The claims publinks reads from a dashboard JWT.
#[derive(Debug, Serialize, Deserialize)]
pub struct Claims {
    pub sub: String,
    pub iss: String,
    pub aud: String,
    pub iat: i64,
    pub exp: i64,
}

/// The one algorithm publinks signs and checks its JWTs with (dashboard
/// tokens locally, visitor sessions everywhere): HS256, as `jsonwebtoken`'s
/// crypto provider, over the `hmac` crate. Built without `jsonwebtoken`'s
/// `rust_crypto` feature, which would bring RSA, ECDSA and EdDSA along.
mod hs256 {
    use hmac::{Hmac, Mac};
    use jsonwebtoken::crypto::{CryptoProvider, JwtSigner, JwtVerifier, KeyUtils};
    use jsonwebtoken::errors::{ErrorKind, Result};
    use jsonwebtoken::signature::{self, Signer, Verifier};
    use jsonwebtoken::{Algorithm, AlgorithmFamily, DecodingKey, EncodingKey};
    use sha2::Sha256;

    struct Hs256(Hmac<Sha256>);

    impl Hs256 {
        fn new(family: AlgorithmFamily, algorithm: &Algorithm, key: &[u8]) -> Result<Self> {
            if *algorithm != Algorithm::HS256 {
                return Err(ErrorKind::InvalidAlgorithm.into());
            }
            if family != AlgorithmFamily::Hmac {
                return Err(ErrorKind::InvalidKeyFormat.into());
            }
            Ok(Hs256(Hmac::new_from_slice(key).map_err(|_| ErrorKind::InvalidKeyFormat)?))
        }
    }

    impl Signer<Vec<u8>> for Hs256 {
        fn try_sign(&self, message: &[u8]) -> std::result::Result<Vec<u8>, signature::Error> {
            let mut mac = self.0.clone();
            mac.update(message);
            Ok(mac.finalize().into_bytes().to_vec())
        }
    }

    impl Verifier<Vec<u8>> for Hs256 {
        /// Constant-time, by `hmac`'s `verify_slice`.
        fn verify(&self, message: &[u8], tag: &Vec<u8>) -> std::result::Result<(), signature::Error> {
            let mut mac = self.0.clone();
            mac.update(message);
            mac.verify_slice(tag).map_err(signature::Error::from_source)
        }
    }

    impl JwtSigner for Hs256 {
        fn algorithm(&self) -> Algorithm {
            Algorithm::HS256
        }
    }

    impl JwtVerifier for Hs256 {
        fn algorithm(&self) -> Algorithm {
            Algorithm::HS256
        }
    }

    static PROVIDER: CryptoProvider = CryptoProvider {
        signer_factory: |algorithm, key: &EncodingKey| {
            Ok(Box::new(Hs256::new(key.family(), algorithm, key.as_bytes())?) as Box<dyn JwtSigner>)
        },
        verifier_factory: |algorithm, key: &DecodingKey| {
            Ok(Box::new(Hs256::new(key.family(), algorithm, key.try_get_as_bytes()?)?) as Box<dyn JwtVerifier>)
        },
        key_utils: KeyUtils::new_unimplemented(),
    };

    /// Installs the provider for this process (once; later calls do nothing).
    pub fn install() {
        static ONCE: std::sync::Once = std::sync::Once::new();
        ONCE.call_once(|| {
            let _ = PROVIDER.install_default();
        });
    }
}

/// Checks signature, issuer, audience and expiry of a local token.
pub fn verify(key: &SecretKey, token: &str) -> Result<Claims, AuthError> {
    hs256::install();
    let mut validation = Validation::new(Algorithm::HS256);
    validation.set_issuer(&[LOCAL_ISSUER]);
    validation.set_audience(&[LOCAL_AUDIENCE]);
    validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
    jsonwebtoken::decode::<Claims>(token, &DecodingKey::from_secret(key.expose()), &validation)
        .map(|data| data.claims)
        .map_err(|e| AuthError::Invalid(e.to_string()))
}

/// Signs a local dashboard token for `user`, valid for `ttl`.
pub fn issue(key: &SecretKey, user: UserId, ttl: std::time::Duration) -> String {
    hs256::install();
    let now = Utc::now().timestamp();
    let claims = Claims {
        sub: user.to_string(),
        iss: LOCAL_ISSUER.into(),
        aud: LOCAL_AUDIENCE.into(),
        iat: now,
        exp: now + ttl.as_secs() as i64,
    };
    jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &EncodingKey::from_secret(key.expose()))
        .expect("HS256 signing cannot fail")
}

/// The audience of visitor-session tokens: never valid as a dashboard token.
pub const VISITOR_AUDIENCE: &str = "publinks-visitor";

/// A visitor's session with one link: issued after a correct password (or on
/// first visit of an unprotected link), bound to the link and the password's
/// version, so changing or removing the password ends it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VisitorClaims {
    /// The session id: downloads are listed per session.
    pub sub: String,
    pub aud: String,
    /// The link id.
    pub lnk: String,
    /// The link's password version when the session began.
    pub pwv: u32,
    pub exp: i64,
}

/// Signs a visitor session.
pub fn issue_visitor(key: &SecretKey, claims: &VisitorClaims) -> String {
    hs256::install();
    jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &EncodingKey::from_secret(key.expose()))
        .expect("HS256 signing cannot fail")
}

/// Checks a visitor session's signature, audience and expiry.
pub fn verify_visitor(key: &SecretKey, token: &str) -> Option<VisitorClaims> {
    hs256::install();
    let mut validation = Validation::new(Algorithm::HS256);
    validation.set_audience(&[VISITOR_AUDIENCE]);
    validation.set_required_spec_claims(&["exp", "aud", "sub"]);
    jsonwebtoken::decode::<VisitorClaims>(token, &DecodingKey::from_secret(key.expose()), &validation)
        .ok()
        .map(|d| d.claims)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn forged_and_expired_tokens_do_not_verify() {
        let key = SecretKey::generate();
        let user = UserId::new();
        assert_eq!(verify(&key, &issue(&key, user, Duration::from_secs(60))).unwrap().sub, user.to_string());
        let forged = issue(&SecretKey::generate(), user, Duration::from_secs(60));
        assert!(matches!(verify(&key, &forged), Err(AuthError::Invalid(_))));
        let now = Utc::now().timestamp();
        let expired = Claims {
            sub: user.to_string(),
            iss: LOCAL_ISSUER.into(),
            aud: LOCAL_AUDIENCE.into(),
            iat: now - 7200,
            exp: now - 3600,
        };
        hs256::install();
        let token =
            jsonwebtoken::encode(&Header::new(Algorithm::HS256), &expired, &EncodingKey::from_secret(key.expose()))
                .unwrap();
        assert!(matches!(verify(&key, &token), Err(AuthError::Invalid(_))));
    }

    #[test]
    fn only_hs256_is_spoken() {
        use base64::Engine;
        let key = SecretKey::generate();
        let good = issue(&key, UserId::new(), Duration::from_secs(60));
        let (_, rest) = good.split_once('.').unwrap();
        let b64 = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
        for alg in ["none", "HS512", "RS256", "ES256"] {
            let forged = format!("{}.{rest}", b64(&format!(r#"{{"alg":"{alg}","typ":"JWT"}}"#)));
            assert!(verify(&key, &forged).is_err(), "{alg}");
        }
        let encoded = jsonwebtoken::encode(
            &Header::new(Algorithm::RS256),
            &serde_json::json!({}),
            &EncodingKey::from_secret(key.expose()),
        );
        assert!(encoded.is_err(), "nothing but HS256 is signed either");
    }
}
