//! Who is calling. In Lambda, API Gateway's JWT authorizer has already checked
//! the token and hands over its claims; locally the server checks the same
//! kind of JWT itself with the key in its data directory. Either way the
//! result is a user id, and the user's role comes from the catalog.

use crate::ids::UserId;
use crate::signing::SecretKey;
use axum::http::request::Parts;
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

/// How the routers learn the caller's identity.
#[derive(Clone)]
pub enum Authenticator {
    /// Verify HS256 bearer JWTs with this key (the local server).
    LocalJwt(SecretKey),
    /// Trust the claims API Gateway's JWT authorizer attached (Lambda).
    ApiGatewayAuthorizer,
}

impl Authenticator {
    /// The user id the request is authenticated as.
    pub fn identify(&self, parts: &Parts) -> Result<UserId, AuthError> {
        let subject = match self {
            Authenticator::LocalJwt(key) => verify(key, bearer(parts)?)?.sub,
            Authenticator::ApiGatewayAuthorizer => authorizer_subject(parts).ok_or(AuthError::Missing)?,
        };
        subject.parse().map_err(|_| AuthError::Invalid("the subject is not a publinks user id".into()))
    }
}

fn bearer(parts: &Parts) -> Result<&str, AuthError> {
    let header = parts.headers.get(axum::http::header::AUTHORIZATION).ok_or(AuthError::Missing)?;
    let value = header.to_str().map_err(|_| AuthError::Invalid("the Authorization header is not text".into()))?;
    match value.split_once(' ') {
        Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() => Ok(token.trim()),
        _ => Err(AuthError::Invalid("expected 'Authorization: Bearer <token>'".into())),
    }
}

fn authorizer_subject(parts: &Parts) -> Option<String> {
    use lambda_http::request::RequestContext;
    match parts.extensions.get::<RequestContext>()? {
        RequestContext::ApiGatewayV2(ctx) => ctx.authorizer.as_ref()?.jwt.as_ref()?.claims.get("sub").cloned(),
        #[allow(unreachable_patterns)]
        _ => None,
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::Request;
    use std::time::Duration;

    fn parts(auth: Option<&str>) -> Parts {
        let mut req = Request::builder().uri("/api/me");
        if let Some(a) = auth {
            req = req.header("authorization", a);
        }
        req.body(()).unwrap().into_parts().0
    }

    #[test]
    fn a_local_token_identifies_its_user() {
        let key = SecretKey::generate();
        let user = UserId::new();
        let token = issue(&key, user, Duration::from_secs(60));
        let auth = Authenticator::LocalJwt(key);
        assert_eq!(auth.identify(&parts(Some(&format!("Bearer {token}")))), Ok(user));
    }

    #[test]
    fn missing_forged_and_expired_tokens_are_refused() {
        let key = SecretKey::generate();
        let auth = Authenticator::LocalJwt(key.clone());
        assert_eq!(auth.identify(&parts(None)), Err(AuthError::Missing));
        let forged = issue(&SecretKey::generate(), UserId::new(), Duration::from_secs(60));
        assert!(matches!(auth.identify(&parts(Some(&format!("Bearer {forged}")))), Err(AuthError::Invalid(_))));
        assert!(matches!(auth.identify(&parts(Some("Basic abc"))), Err(AuthError::Invalid(_))));
        let now = Utc::now().timestamp();
        let expired = Claims {
            sub: UserId::new().to_string(),
            iss: LOCAL_ISSUER.into(),
            aud: LOCAL_AUDIENCE.into(),
            iat: now - 7200,
            exp: now - 3600,
        };
        hs256::install();
        let token =
            jsonwebtoken::encode(&Header::new(Algorithm::HS256), &expired, &EncodingKey::from_secret(key.expose()))
                .unwrap();
        assert!(matches!(auth.identify(&parts(Some(&format!("Bearer {token}")))), Err(AuthError::Invalid(_))));
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

    #[test]
    fn in_lambda_the_authorizer_claims_name_the_user() {
        use lambda_http::aws_lambda_events::apigw::*;
        use lambda_http::request::RequestContext;
        let user = UserId::new();
        let mut jwt = ApiGatewayRequestAuthorizerJwtDescription::default();
        jwt.claims.insert("sub".into(), user.to_string());
        let mut authorizer = ApiGatewayRequestAuthorizer::default();
        authorizer.jwt = Some(jwt);
        let mut ctx = ApiGatewayV2httpRequestContext::default();
        ctx.authorizer = Some(authorizer);
        let mut p = parts(None);
        p.extensions.insert(RequestContext::ApiGatewayV2(ctx));
        assert_eq!(Authenticator::ApiGatewayAuthorizer.identify(&p), Ok(user));
        assert_eq!(Authenticator::ApiGatewayAuthorizer.identify(&parts(Some("Bearer x"))), Err(AuthError::Missing));
    }
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
