//! Extractors whose every rejection is an [`ApiError`] with a JSON body that
//! names what is wrong: a malformed request never gets a plain-text answer.

use super::{ApiError, AppState};
use axum::extract::rejection::{BytesRejection, PathRejection};
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
            // The position is the parser's business: the field is named instead.
            let position = format!(" at line {} column {}", inner.line(), inner.column());
            let text = inner.to_string();
            let text = text.strip_suffix(&position).unwrap_or(&text);
            let err =
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_field", value_problem(field.as_deref(), text));
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

/// A deserializer's complaint about a value, for people: a number that does
/// not fit its field says so with the field's bounds; anything else loses
/// the input it quotes ([`without_input`]). Prefixed with the field's name.
fn value_problem(field: Option<&str>, message: &str) -> String {
    let named = |text: String| match field {
        Some(f) if text.starts_with("must ") => format!("{f} {text}"),
        Some(f) => format!("{f}: {text}"),
        None => text,
    };
    let Some((min, max)) = integer_bounds(message) else {
        return named(without_input(message));
    };
    let fractional = message
        .split('`')
        .nth(1)
        .and_then(|n| n.parse::<f64>().ok())
        .is_some_and(|n| n.fract() != 0.0 && n.abs() < 1e15);
    let name = field.unwrap_or("the value");
    if fractional {
        format!("{name} must be a whole number from {min} to {max}")
    } else {
        format!("{name} is out of range: it must be a whole number from {min} to {max}")
    }
}

/// The bounds of the integer type a message says was expected, when the
/// value given was a number of the wrong kind or size (serde's `invalid
/// type: floating point …, expected u32`, `invalid value: integer …`, or a
/// query parser's `number too large to fit in target type`).
fn integer_bounds(message: &str) -> Option<(String, String)> {
    let about_a_number = message.starts_with("invalid type: floating point")
        || message.starts_with("invalid value: integer")
        || message.contains("number too large")
        || message.contains("number too small");
    if !about_a_number {
        return None;
    }
    let expected = message.rsplit("expected ").next()?.trim();
    let bounds = |min: i128, max: i128| Some((min.to_string(), max.to_string()));
    match expected {
        "u8" => bounds(0, u8::MAX.into()),
        "u16" => bounds(0, u16::MAX.into()),
        "u32" => bounds(0, u32::MAX.into()),
        "u64" | "usize" => bounds(0, u64::MAX.into()),
        "i8" => bounds(i8::MIN.into(), i8::MAX.into()),
        "i16" => bounds(i16::MIN.into(), i16::MAX.into()),
        "i32" => bounds(i32::MIN.into(), i32::MAX.into()),
        "i64" | "isize" => bounds(i64::MIN.into(), i64::MAX.into()),
        _ => None,
    }
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

/// Query parameters. Every problem with one — unknown, unparsable, out of
/// range — is one answer: 400 `invalid_query`, `field` naming the parameter
/// ([`ApiError::invalid_query`]).
pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        parse_query(parts.uri.query().unwrap_or_default()).map(ApiQuery)
    }
}

/// Parses a query string, naming the parameter at fault.
pub fn parse_query<T: DeserializeOwned>(query: &str) -> Result<T, ApiError> {
    let de = serde_urlencoded::Deserializer::new(form_urlencoded::parse(query.as_bytes()));
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let message = e.into_inner().to_string();
        let field = (path != ".").then_some(path);
        ApiError::invalid_query(field.as_deref(), &value_problem(field.as_deref(), &message))
    })
}

/// A whole number in a query string, from `MIN` to `MAX`: anything else
/// (not a number, a fraction, out of range) is refused with those bounds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QueryNumber<const MIN: u32, const MAX: u32>(pub u32);

impl<'de, const MIN: u32, const MAX: u32> serde::Deserialize<'de> for QueryNumber<MIN, MAX> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor<const MIN: u32, const MAX: u32>;
        impl<const MIN: u32, const MAX: u32> serde::de::Visitor<'_> for Visitor<MIN, MAX> {
            type Value = QueryNumber<MIN, MAX>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                write!(f, "a whole number from {MIN} to {MAX}")
            }
            fn visit_u64<E: serde::de::Error>(self, n: u64) -> Result<Self::Value, E> {
                match u32::try_from(n) {
                    Ok(n) if (MIN..=MAX).contains(&n) => Ok(QueryNumber(n)),
                    _ => Err(E::custom(format!("must be a whole number from {MIN} to {MAX}"))),
                }
            }
            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<Self::Value, E> {
                let digits = !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
                // Any run of digits is a number, however long: too big is out of range.
                let n = if digits { s.parse::<u64>().unwrap_or(u64::MAX) } else { u64::MAX };
                self.visit_u64(n)
            }
        }
        d.deserialize_any(Visitor::<MIN, MAX>)
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
    fn query_errors_are_one_rule_naming_the_parameter() {
        #[derive(serde::Deserialize, Debug)]
        #[serde(deny_unknown_fields)]
        #[allow(dead_code)]
        struct Query {
            limit: Option<QueryNumber<1, 200>>,
            kind: Option<publinks_domain::model::TargetKind>,
            id: Option<uuid::Uuid>,
        }
        for (query, field, says) in [
            ("limit=0", "limit", "limit must be a whole number from 1 to 200"),
            ("limit=201", "limit", "from 1 to 200"),
            ("limit=123456789012345678901234567890", "limit", "from 1 to 200"),
            ("limit=1.5", "limit", "from 1 to 200"),
            ("limit=%3Cimg%3E", "limit", "from 1 to 200"),
            ("kind=%3Cimg%3E", "kind", "kind: unknown variant"),
            ("id=%3Cimg%3E", "id", "id: "),
            ("foo=%3Cimg%3E", "foo", "unknown field"),
        ] {
            let err = parse_query::<Query>(query).unwrap_err();
            assert_eq!(
                (err.status, err.code, err.field.as_deref()),
                (StatusCode::BAD_REQUEST, "invalid_query", Some(field)),
                "{query}"
            );
            assert!(err.message.contains(says), "{query}: {}", err.message);
            assert!(!err.message.contains("img") && !err.message.contains("deserialize"), "{query}: {}", err.message);
        }
        assert_eq!(parse_query::<Query>("limit=200&kind=file").unwrap().limit, Some(QueryNumber(200)));
    }

    #[test]
    fn numbers_too_big_for_their_field_are_out_of_range_with_its_bounds() {
        #[derive(serde::Deserialize, Debug)]
        #[allow(dead_code)]
        struct Body {
            x: Option<u32>,
            size: Option<u64>,
        }
        for (body, field, says) in [
            (
                r#"{"x": 123456789012345678901234567890}"#,
                "x",
                "x is out of range: it must be a whole number from 0 to 4294967295",
            ),
            (r#"{"x": -1}"#, "x", "x is out of range: it must be a whole number from 0 to 4294967295"),
            (r#"{"x": 1.5}"#, "x", "x must be a whole number from 0 to 4294967295"),
            (r#"{"size": 123456789012345678901234567890}"#, "size", "from 0 to 18446744073709551615"),
        ] {
            let err = parse_json::<Body>(body.as_bytes()).unwrap_err();
            assert_eq!((err.status, err.field.as_deref()), (StatusCode::UNPROCESSABLE_ENTITY, Some(field)));
            assert!(err.message.contains(says), "{body}: {}", err.message);
            assert!(!err.message.contains("floating") && !err.message.contains("line 1"), "{}", err.message);
        }
    }

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
