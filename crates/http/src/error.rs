//! [`ApiError`]: the one error body of every endpoint, and the one mapping
//! from domain errors to HTTP statuses.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use publinks_domain::DomainError;
use publinks_domain::store::StoreError;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa::openapi::RefOr;
use utoipa::openapi::Response as OpenApiResponse;

/// An error as the client sees it:
/// `{"error": {"code": "...", "message": "...", "field": "..."}}`.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    /// Machine-readable, stable: clients branch on this.
    pub code: &'static str,
    /// For people; never contains internal details.
    pub message: String,
    /// The request field at fault, where there is one.
    pub field: Option<String>,
    /// Seconds to wait before trying again (sent as `Retry-After`).
    pub retry_after: Option<u64>,
    /// The limit that refused a request, where one did.
    pub limit: Option<&'static str>,
}

/// The body of every error response, whatever the endpoint or status.
#[derive(Serialize, ToSchema)]
pub struct ErrorBody<'a> {
    pub error: ErrorDetail<'a>,
}

/// What went wrong, for programs (`code`) and for people (`message`).
#[derive(Serialize, ToSchema)]
pub struct ErrorDetail<'a> {
    /// Machine-readable and stable: clients branch on it. Each error response
    /// of this document lists the codes it carries.
    #[schema(example = "invalid_field")]
    pub code: &'a str,
    /// For people; never contains internal details.
    #[schema(example = "name must not contain '/' or '\\'")]
    pub message: &'a str,
    /// The request field at fault, where there is one: a path into the JSON
    /// body (`target.id`), or the name of a path or query parameter.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(example = "name")]
    pub field: Option<&'a str>,
    /// On a 429 `too_many_archives`: the limit that refused the request —
    /// `open_per_session`, `open_per_network`, `per_link_hourly` or
    /// `per_account_hourly`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(example = "open_per_session")]
    pub limit: Option<&'a str>,
}

impl ApiError {
    /// An error with no field.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError { status, code, message: message.into(), field: None, retry_after: None, limit: None }
    }

    /// Names the field at fault.
    pub fn with_field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }

    /// The one answer to a bad query string (400 `invalid_query`): an
    /// unknown or unparsable parameter, a value out of range, a cursor this
    /// API did not give. `field` names the parameter; the message says what
    /// is expected, without repeating what was sent.
    pub fn invalid_query(field: Option<&str>, message: &str) -> Self {
        let err = Self::new(StatusCode::BAD_REQUEST, "invalid_query", message);
        match field {
            Some(f) => err.with_field(f),
            None => err,
        }
    }

    /// A domain refusal of a value that came in the query string: the query
    /// rule's 400 rather than a body's 422.
    pub fn in_query(e: DomainError) -> Self {
        match e {
            DomainError::Invalid { field, message } => Self::invalid_query(Some(&field), &message),
            other => other.into(),
        }
    }

    /// A path that matches no route.
    pub fn no_route() -> Self {
        Self::new(StatusCode::NOT_FOUND, "no_route", "no such endpoint")
    }

    /// A route that exists, called with the wrong method.
    pub fn method_not_allowed() -> Self {
        Self::new(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed", "this endpoint does not take that method")
    }

    /// Something broke on our side; the details are in the log, not the response.
    pub fn internal() -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "something went wrong on our side")
    }
}

impl From<DomainError> for ApiError {
    fn from(e: DomainError) -> Self {
        match e {
            DomainError::NotFound(what) => {
                ApiError::new(StatusCode::NOT_FOUND, "not_found", format!("{what} not found"))
            }
            DomainError::Forbidden(message) => ApiError::new(StatusCode::FORBIDDEN, "forbidden", message),
            DomainError::Invalid { field, message } => {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_field", message).with_field(field)
            }
            DomainError::Conflict { code, message } => ApiError::new(StatusCode::CONFLICT, code, message),
            DomainError::PlanRequired => ApiError::new(
                StatusCode::FORBIDDEN,
                "enterprise_plan_required",
                "public links are a feature of the enterprise plan; this account does not have it",
            ),
            DomainError::LimitReached { scope, limit } => limit_reached(scope, limit),
            DomainError::LinkUnavailable => ApiError::new(
                StatusCode::NOT_FOUND,
                "link_unavailable",
                "this link does not exist, has expired or was removed",
            ),
            e @ DomainError::LinkScheduled { .. } => {
                ApiError::new(StatusCode::FORBIDDEN, "link_not_yet_active", e.to_string())
            }
            e @ DomainError::PasswordRequired => {
                ApiError::new(StatusCode::UNAUTHORIZED, "password_required", e.to_string())
            }
            e @ DomainError::WrongPassword => {
                ApiError::new(StatusCode::UNAUTHORIZED, "wrong_password", e.to_string()).with_field("password")
            }
            e @ DomainError::Throttled { retry_after } => ApiError {
                retry_after: Some(retry_after),
                ..ApiError::new(StatusCode::TOO_MANY_REQUESTS, "too_many_attempts", e.to_string())
            },
            e @ DomainError::SessionRequired => {
                ApiError::new(StatusCode::UNAUTHORIZED, "session_required", e.to_string())
            }
            e @ DomainError::DownloadsForbidden => {
                ApiError::new(StatusCode::FORBIDDEN, "downloads_forbidden", e.to_string())
            }
            DomainError::ArchiveTooLarge { message } => {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "archive_too_large", message)
            }
            DomainError::TooManyArchives { limit, message, retry_after } => ApiError {
                retry_after: Some(retry_after),
                limit: Some(limit.code()),
                ..ApiError::new(StatusCode::TOO_MANY_REQUESTS, "too_many_archives", message)
            },
            DomainError::ArchiveOutdated { changed, .. } => ApiError::new(
                StatusCode::GONE,
                "archive_outdated",
                format!(
                    "{changed} file{} of this archive changed or {} no longer shared since it was made; ask for a new one",
                    if changed == 1 { "" } else { "s" },
                    if changed == 1 { "is" } else { "are" }
                ),
            ),
            DomainError::ArchiveNotReady { status: publinks_domain::model::ArchiveStatus::Expired } => {
                ApiError::new(StatusCode::GONE, "archive_expired", "this archive has expired; ask for it again")
            }
            DomainError::ArchiveNotReady { .. } => {
                ApiError::new(StatusCode::CONFLICT, "archive_not_ready", "this archive is not ready yet")
            }
            DomainError::Store(e) => e.into(),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::AlreadyExists(what) => {
                ApiError::new(StatusCode::CONFLICT, "already_exists", format!("{what} already exists"))
            }
            StoreError::NotFound(what) => {
                ApiError::new(StatusCode::NOT_FOUND, "not_found", format!("{what} not found"))
            }
            StoreError::Conflict(what) => {
                ApiError::new(StatusCode::CONFLICT, "busy", format!("{what} is being changed by others; try again"))
            }
            StoreError::NameTaken { .. } => ApiError::new(
                StatusCode::CONFLICT,
                "name_taken",
                "a file or folder with this name is already there (names are compared ignoring case)",
            ),
            StoreError::InvalidCursor => ApiError::invalid_query(
                Some("cursor"),
                "cursor is not one this API gave: pass the next_cursor of the previous page, or leave it out",
            ),
            StoreError::LimitReached { scope, limit } => limit_reached(scope, limit),
            StoreError::Backend(detail) => {
                tracing::error!(%detail, "storage backend failed");
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "storage_unavailable",
                    "storage is unavailable; try again",
                )
            }
            StoreError::Corrupt(detail) => {
                tracing::error!(%detail, "stored data is corrupt");
                ApiError::internal()
            }
        }
    }
}

fn limit_reached(scope: publinks_domain::store::LimitScope, limit: u32) -> ApiError {
    use publinks_domain::store::LimitScope;
    let (code, message) = match scope {
        LimitScope::Target => {
            ("target_link_limit", format!("this item already has {limit} public links, the most it may have"))
        }
        LimitScope::Account => {
            ("account_link_limit", format!("this account already has {limit} public links, the most it may have"))
        }
    };
    ApiError::new(StatusCode::CONFLICT, code, message)
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code,
                message: &self.message,
                field: self.field.as_deref(),
                limit: self.limit,
            },
        };
        let mut response = (self.status, Json(body)).into_response();
        if let Some(secs) = self.retry_after {
            response.headers_mut().insert(axum::http::header::RETRY_AFTER, secs.into());
        }
        response
    }
}

/// Shorthand for handler results.
pub type ApiResult<T> = Result<T, ApiError>;

/// Declares the error responses of the OpenAPI document: each a type to name
/// in `#[utoipa::path(responses(...))]` (`(status = 404, response = NotFound)`),
/// each documented once under `components.responses` with the codes it
/// carries, all with the [`ErrorBody`] schema.
macro_rules! error_responses {
    ($($(#[$doc:meta])* $name:ident $([$with:ident])?: $description:literal;)*) => {
        $(
            $(#[$doc])*
            pub struct $name;

            impl<'r> utoipa::ToResponse<'r> for $name {
                fn response() -> (&'r str, RefOr<OpenApiResponse>) {
                    let response = error_response($description);
                    $(let response = $with(response);)?
                    (stringify!($name), response.into())
                }
            }
        )*

        /// Every error response, for `components.responses`.
        pub fn error_responses() -> Vec<(&'static str, RefOr<OpenApiResponse>)> {
            vec![$(<$name as utoipa::ToResponse>::response()),*]
        }
    };
}

error_responses! {
    /// 400: the request could not be read.
    BadRequest: "The request is malformed. Codes: `malformed_json` (the body is not JSON), \
        `unreadable_body`, `invalid_path` (a path parameter, named in `field`), `invalid_query` \
        (any problem with a query parameter, named in `field`: unknown, unparsable, out of range \
        such as a `limit` outside 1-200, or a `cursor` that is not a `next_cursor` this API gave).";
    /// 401 on the dashboard APIs.
    Unauthenticated: "No valid bearer token, or its user no longer exists. Code: `unauthenticated`.";
    /// 401 through a share link.
    SessionRequired: "The link has a password and the request carries no valid visitor session \
        (`password_required`), or the password is wrong (`wrong_password`, field `password`), or \
        an archive is asked for without a session to give it to (`session_required`). \
        Start a session with `POST /s/{token}/api/session`.";
    /// 403 on the dashboard APIs.
    Forbidden: "The caller may see the item but not do this (`forbidden`, the message names the \
        permission needed), or public links need the enterprise plan (`enterprise_plan_required`).";
    /// 403 through a share link.
    LinkNotYetActive: "The link's validity window has not opened yet; the message says when it \
        opens. Code: `link_not_yet_active`.";
    /// 403 through a share link on a route that hands out originals or ZIPs.
    DownloadsForbidden: "The link shows previews only: originals and ZIPs are not handed out \
        through it (`downloads_forbidden`), or its validity window has not opened yet \
        (`link_not_yet_active`).";
    /// 404 on the dashboard APIs.
    NotFound: "No such item in the caller's account, or one the caller may not see: both look \
        the same. Code: `not_found`.";
    /// 404 through a share link.
    LinkNotFound: "The link does not exist, has expired or was removed (`link_unavailable`, the \
        same answer for all three), or the item is not part of what it shares (`not_found`).";
    /// 409: the request is valid but clashes with what is stored.
    Conflict: "The request clashes with the current state. Codes: `already_exists`, `name_taken` (a file \
        or folder in that folder has the name, compared ignoring case and Unicode form; the message \
        names it), \
        `folder_cycle`, `own_role`, `own_user`, `already_in_collection`, `too_many_comments`, \
        `upload_expired`, `upload_incomplete`, `upload_size_mismatch`, `upload_failed`, `upload_changed`, \
        `link_target_gone`, `target_link_limit`, \
        `account_link_limit`, `link_expired`, `archive_not_ready`, `logo_is_watermark` (the logo cannot be \
        removed while it is the watermark), `busy` (changed by others meanwhile: try again).";
    /// 410: an archive that has expired, or (visitors) that is out of date.
    ArchiveExpired: "The archive's lifetime is over and it was removed (`archive_expired`), or \
        (through a link) files in it changed, moved or are no longer shared since it was made \
        (`archive_outdated`): ask for a new one.";
    /// 413: the body is over the limit.
    PayloadTooLarge: "The request body is over 256 KiB. Code: `payload_too_large`.";
    /// 415: the body is not declared as JSON.
    UnsupportedMediaType: "The body is not sent as `Content-Type: application/json`. \
        Code: `unsupported_media_type`.";
    /// 422: a value is wrong.
    Unprocessable: "A value is wrong, missing or unknown; `field` names it (`invalid_field`), or \
        an archive would hold more files or bytes than allowed (`archive_too_large`).";
    /// 429: too many password attempts.
    TooManyRequests [with_retry_after]: "Too many password attempts for this link, from this network or from \
        everywhere (`too_many_attempts`), or too many archives in the making or built this hour \
        (`too_many_archives`, with `limit` naming the limit); try again after `Retry-After` seconds.";
    /// 503: storage did not answer.
    StorageUnavailable: "Storage is unavailable for a moment; try again. Code: `storage_unavailable`.";
}

fn error_response(description: &str) -> OpenApiResponse {
    let json = utoipa::openapi::ContentBuilder::new().schema(Some(utoipa::openapi::Ref::from_schema_name("ErrorBody")));
    utoipa::openapi::ResponseBuilder::new().description(description).content("application/json", json.build()).build()
}

fn with_retry_after(mut response: OpenApiResponse) -> OpenApiResponse {
    use utoipa::openapi::{HeaderBuilder, ObjectBuilder, Type};
    let seconds = ObjectBuilder::new().schema_type(Type::Integer).minimum(Some(0));
    let header =
        HeaderBuilder::new().schema(Some(seconds)).description(Some("Seconds to wait before the next attempt."));
    response.headers.insert("Retry-After".into(), header.build().into());
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use publinks_domain::archives::ArchiveLimit;

    #[tokio::test]
    async fn a_refused_archive_names_its_limit_and_when_to_come_back() {
        let refusal = DomainError::TooManyArchives {
            limit: ArchiveLimit::PerLinkHourly,
            message: "this link has prepared 30 archives this hour".into(),
            retry_after: 1234,
        };
        let response = ApiError::from(refusal).into_response();
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(response.headers()[axum::http::header::RETRY_AFTER], "1234");
        let body = axum::body::to_bytes(response.into_body(), 10_000).await.unwrap();
        let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(body["error"]["code"], "too_many_archives");
        assert_eq!(body["error"]["limit"], "per_link_hourly");
        let other = ApiError::from(DomainError::NotFound("file")).into_response();
        let body = axum::body::to_bytes(other.into_body(), 10_000).await.unwrap();
        assert!(!String::from_utf8_lossy(&body).contains("limit"), "only refusals by a limit carry one");
    }
}
