//! Extractors whose every rejection is an [`ApiError`] with a JSON body that
//! names what is wrong: a malformed request never gets a plain-text answer.

use super::{ApiError, AppState};
use axum::extract::rejection::{BytesRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, OptionalFromRequest, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use publinks_domain::access::Actor;
use serde::de::DeserializeOwned;

/// A JSON body, parsed strictly; errors name the field at fault.
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        require_json(&req)?;
        parse_json(&read_body(req, state).await?).map(ApiJson)
    }
}

/// A JSON body that may be left out: an empty body is `None`.
impl<T: DeserializeOwned, S: Send + Sync> OptionalFromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Option<Self>, ApiError> {
        let declared_json = require_json(&req);
        let bytes = read_body(req, state).await?;
        if bytes.is_empty() {
            return Ok(None);
        }
        declared_json?;
        parse_json(&bytes).map(|v| Some(ApiJson(v)))
    }
}

/// Refuses a body not declared as JSON.
fn require_json(req: &Request) -> Result<(), ApiError> {
    let is_json = req
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|mime| {
            let mime = mime.trim().to_ascii_lowercase();
            mime == "application/json" || (mime.starts_with("application/") && mime.ends_with("+json"))
        })
        .unwrap_or(false);
    if is_json {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "send the body as JSON with Content-Type: application/json",
        ))
    }
}

/// The whole body, within the body limit.
async fn read_body<S: Send + Sync>(req: Request, state: &S) -> Result<axum::body::Bytes, ApiError> {
    axum::body::Bytes::from_request(req, state).await.map_err(|e: BytesRejection| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", "the request body is too large")
        } else {
            ApiError::new(StatusCode::BAD_REQUEST, "unreadable_body", "the request body could not be read")
        }
    })
}

/// Parses JSON text, telling syntax errors (400) from wrong values (422,
/// with the path of the field at fault).
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value: T = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if inner.is_syntax() || inner.is_eof() || inner.is_io() {
            ApiError::new(StatusCode::BAD_REQUEST, "malformed_json", format!("the body is not valid JSON: {inner}"))
        } else {
            let field = if path == "." { None } else { Some(path) };
            let message = match &field {
                Some(f) => format!("{f}: {}", without_input(&inner.to_string())),
                None => without_input(&inner.to_string()),
            };
            let err = ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_field", message);
            match field {
                Some(f) => err.with_field(f),
                None => err,
            }
        }
    })?;
    de.end().map_err(|e| {
        ApiError::new(StatusCode::BAD_REQUEST, "malformed_json", format!("the body is not valid JSON: {e}"))
    })?;
    Ok(value)
}

/// A parser's message without the values it quotes: serde and the id
/// parsers quote what they were given (`unknown field \`x\``, `invalid type:
/// string "x"`), and an error must not echo a request back. The field at
/// fault is named separately.
pub fn without_input(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut quote = None;
    for c in message.chars() {
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None if c == '`' || c == '"' => {
                quote = Some(c);
                out.push('…');
            }
            None => out.push(c),
        }
    }
    out.chars().take(300).collect()
}

/// Path parameters; a malformed id is a 400 naming the parameter.
pub struct ApiPath<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for ApiPath<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let names: Vec<String> = match axum::extract::RawPathParams::from_request_parts(parts, state).await {
            Ok(raw) => raw.iter().map(|(k, _)| k.to_string()).collect(),
            Err(_) => Vec::new(),
        };
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(p) => Ok(ApiPath(p.0)),
            Err(PathRejection::FailedToDeserializePathParams(e)) => {
                let kind = e.into_kind();
                let field = match &kind {
                    axum::extract::path::ErrorKind::ParseErrorAtKey { key, .. }
                    | axum::extract::path::ErrorKind::InvalidUtf8InPathParam { key } => Some(key.clone()),
                    _ if names.len() == 1 => Some(names[0].clone()),
                    _ => None,
                };
                let message = match &field {
                    Some(f) => format!("{f} in the path is not valid"),
                    None => format!("the path is not valid: {}", without_input(&kind.to_string())),
                };
                let err = ApiError::new(StatusCode::BAD_REQUEST, "invalid_path", message);
                Err(match field {
                    Some(f) => err.with_field(f),
                    None => err,
                })
            }
            Err(_) => Err(ApiError::new(StatusCode::BAD_REQUEST, "invalid_path", "the path is not valid")),
        }
    }
}

/// Query parameters; a bad one is a 400 naming the problem.
pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        axum::extract::Query::<T>::from_request_parts(parts, state).await.map(|q| ApiQuery(q.0)).map_err(
            |e: QueryRejection| {
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "invalid_query",
                    format!("the query string is not valid: {}", without_input(&e.body_text())),
                )
            },
        )
    }
}

/// The authenticated caller of a dashboard endpoint.
pub struct Caller(pub Actor);

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let user = state
            .auth
            .identify(parts)
            .map_err(|e| ApiError::new(StatusCode::UNAUTHORIZED, "unauthenticated", e.to_string()))?;
        match state.library.actor(user).await? {
            Some(actor) => Ok(Caller(actor)),
            None => Err(ApiError::new(StatusCode::UNAUTHORIZED, "unauthenticated", "the token's user does not exist")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_name_the_field_but_never_repeat_the_input() {
        #[derive(serde::Deserialize, Debug)]
        #[serde(deny_unknown_fields)]
        #[allow(dead_code)]
        struct Body {
            id: uuid::Uuid,
            count: u32,
        }
        for (body, field) in [
            (r#"{"id": "<img src=x>", "count": 1}"#, "id"),
            (r#"{"id": "3f2b1c2e-0000-4000-8000-000000000000", "count": "<img src=x>"}"#, "count"),
            (r#"{"id": "3f2b1c2e-0000-4000-8000-000000000000", "count": 4294967296}"#, "count"),
        ] {
            let err = parse_json::<Body>(body.as_bytes()).unwrap_err();
            assert_eq!((err.status, err.field.as_deref()), (StatusCode::UNPROCESSABLE_ENTITY, Some(field)));
            assert!(!err.message.contains("img") && !err.message.contains("4294967296"), "{}", err.message);
        }
        // An unknown field is named (that is the contract), its value never.
        let err = parse_json::<Body>(br#"{"extra": "<img src=x>"}"#).unwrap_err();
        assert_eq!(err.field.as_deref(), Some("extra"));
        assert!(!err.message.contains("img"), "{}", err.message);
        assert_eq!(without_input("unknown field `x`, expected `id`"), "unknown field …, expected …");
    }
}
