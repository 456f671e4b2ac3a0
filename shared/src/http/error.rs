//! [`ApiError`]: the one error body of every endpoint, and the one mapping
//! from domain errors to HTTP statuses.

use crate::domain::DomainError;
use crate::store::StoreError;
use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

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
}

#[derive(Serialize)]
struct Body<'a> {
    error: Detail<'a>,
}

#[derive(Serialize)]
struct Detail<'a> {
    code: &'a str,
    message: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    field: Option<&'a str>,
}

impl ApiError {
    /// An error with no field.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError { status, code, message: message.into(), field: None, retry_after: None }
    }

    /// Names the field at fault.
    pub fn with_field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
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
            DomainError::ArchiveTooLarge { message } => {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "archive_too_large", message)
            }
            DomainError::TooManyArchives { message, retry_after } => ApiError {
                retry_after: Some(retry_after),
                ..ApiError::new(StatusCode::TOO_MANY_REQUESTS, "too_many_archives", message)
            },
            DomainError::ArchiveNotReady { status: crate::domain::model::ArchiveStatus::Expired } => {
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
            StoreError::InvalidCursor => {
                ApiError::new(StatusCode::BAD_REQUEST, "invalid_cursor", "the pagination cursor is not valid")
                    .with_field("cursor")
            }
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

fn limit_reached(scope: crate::store::LimitScope, limit: u32) -> ApiError {
    use crate::store::LimitScope;
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
        let body = Body { error: Detail { code: self.code, message: &self.message, field: self.field.as_deref() } };
        let mut response = (self.status, Json(body)).into_response();
        if let Some(secs) = self.retry_after {
            response.headers_mut().insert(axum::http::header::RETRY_AFTER, secs.into());
        }
        response
    }
}

/// Shorthand for handler results.
pub type ApiResult<T> = Result<T, ApiError>;
