//! Who is calling. In Lambda, API Gateway's JWT authorizer has already checked
//! the token and hands over its claims; locally the server checks the same
//! kind of JWT itself with the key in its data directory. Either way the
//! result is a user id, and the user's role comes from the catalog.

use axum::http::request::Parts;
use publinks_domain::ids::UserId;
use publinks_domain::signing::SecretKey;
use publinks_domain::tokens::{AuthError, verify};

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

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::Request;
    use publinks_domain::tokens::issue;
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
    fn missing_and_forged_tokens_are_refused() {
        let key = SecretKey::generate();
        let auth = Authenticator::LocalJwt(key.clone());
        assert_eq!(auth.identify(&parts(None)), Err(AuthError::Missing));
        let forged = issue(&SecretKey::generate(), UserId::new(), Duration::from_secs(60));
        assert!(matches!(auth.identify(&parts(Some(&format!("Bearer {forged}")))), Err(AuthError::Invalid(_))));
        assert!(matches!(auth.identify(&parts(Some("Basic abc"))), Err(AuthError::Invalid(_))));
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
