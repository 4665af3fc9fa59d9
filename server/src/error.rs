//! The one error type of the request path. Each variant is a response class
//! of the contract (`http::respond::error` renders it); database and pool
//! errors become 503 (unreachable, timed out, contended) or a logged 500,
//! and never show their details to the client. The write functions' own
//! SQLSTATEs (sql/write_api.sql) become 404, 409 and 422.

use std::collections::BTreeMap;

use hyper::StatusCode;
use tokio_postgres::error::SqlState;

/// The 503 class as one pattern: the variants a retry may cure, which
/// answer `503` with `Retry-After`. A macro so that the matches using it
/// stay exhaustive.
macro_rules! unavailable {
    () => {
        $crate::error::ApiError::Unavailable(_)
            | $crate::error::ApiError::Busy(_)
            | $crate::error::ApiError::Contention(_)
            | $crate::error::ApiError::OutcomeUnknown(_)
    };
}
pub(crate) use unavailable;

#[derive(Clone, Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    /// No token, or one that is not live (401, `WWW-Authenticate:
    /// Bearer`); `presented`: a token was sent (and was wrong).
    #[error("{}", if *presented { "the bearer token is not valid (revoked, mistyped or never issued)" } else { "this request needs Authorization: Bearer <token>" })]
    Unauthorized { presented: bool },
    /// A live token without the scope the request needs (403).
    #[error("the token does not have the {scope} scope this request needs")]
    Forbidden { scope: &'static str },
    /// Too many failed authentications from this client (429).
    #[error("too many failed authentications from this address; retry after {} s", retry_after.as_secs().max(1))]
    TooManyRequests { retry_after: std::time::Duration },
    #[error("{0}")]
    NotFound(String),
    #[error("method not allowed")]
    MethodNotAllowed { allow: String },
    #[error("{0}")]
    Conflict(String),
    #[error("request body is larger than {0} bytes")]
    PayloadTooLarge(usize),
    #[error("writes must be sent with Content-Type: application/json")]
    UnsupportedMediaType,
    #[error("{message}")]
    Unprocessable { message: String, fields: BTreeMap<String, String> },
    #[error("{0}")]
    Unavailable(String),
    /// This server is saturated (no pooled connection came free in time):
    /// 503 like Unavailable, but no database is at fault.
    #[error("{0}")]
    Busy(String),
    /// A write whose outcome is unknown: the primary did not answer in time
    /// and may still apply it. Said to the client (retry with the same
    /// Idempotency-Key).
    #[error("{0}")]
    OutcomeUnknown(String),
    /// A deadlock or serialization failure: the transaction was rolled back
    /// and may simply be run again. Writes retry it; a client sees it only
    /// as a 503 when the retries run out.
    #[error("{0}")]
    Contention(String),
    /// A bug or an unexpected database error: logged, never shown.
    #[error("internal error: {0}")]
    Internal(String),
}

impl ApiError {
    pub fn internal(detail: impl Into<String>) -> ApiError {
        ApiError::Internal(detail.into())
    }

    /// A 422 naming one field.
    pub fn field(field: &str, problem: &str) -> ApiError {
        let mut fields = BTreeMap::new();
        fields.insert(field.to_string(), problem.to_string());
        ApiError::Unprocessable { message: format!("{field} {problem}"), fields }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized { .. } => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden { .. } => StatusCode::FORBIDDEN,
            ApiError::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::Unprocessable { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            unavailable!() => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The contract's error code for the JSON body.
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::BadRequest(_) => "bad_request",
            ApiError::Unauthorized { .. } => "unauthorized",
            ApiError::Forbidden { .. } => "forbidden",
            ApiError::TooManyRequests { .. } => "too_many_requests",
            ApiError::NotFound(_) => "not_found",
            ApiError::MethodNotAllowed { .. } => "method_not_allowed",
            ApiError::Conflict(_) => "conflict",
            ApiError::PayloadTooLarge(_) => "payload_too_large",
            ApiError::UnsupportedMediaType => "unsupported_media_type",
            ApiError::Unprocessable { .. } => "validation_failed",
            unavailable!() => "unavailable",
            ApiError::Internal(_) => "internal",
        }
    }

    /// The message a client may see: internal details are logged here and
    /// replaced by a fixed text.
    pub fn public_message(&self) -> String {
        match self {
            ApiError::Internal(detail) => {
                tracing::error!(%detail, "internal error");
                "internal server error".to_string()
            }
            ApiError::Unavailable(detail) | ApiError::Busy(detail) | ApiError::Contention(detail) => {
                tracing::warn!(%detail, "unavailable");
                "the service is temporarily unavailable; retry shortly".to_string()
            }
            ApiError::OutcomeUnknown(detail) => {
                tracing::warn!(%detail, "write outcome unknown");
                "the database did not answer in time: the write may or may not have been applied; \
                 retry it with the same Idempotency-Key to apply it exactly once"
                    .to_string()
            }
            other => other.to_string(),
        }
    }
}

impl ApiError {
    /// A connection could not be opened: that node is unavailable to us,
    /// whatever the reason the server gave (down, refusing logins, or
    /// fenced while `atelier replicate --resync` copies it, which denies
    /// CONNECT): the next node is worth trying.
    pub fn connecting(error: tokio_postgres::Error) -> ApiError {
        ApiError::Unavailable(format!("cannot connect: {error}"))
    }
}

impl From<deadpool_postgres::PoolError> for ApiError {
    fn from(error: deadpool_postgres::PoolError) -> ApiError {
        match error {
            // The pool's backend errors come from opening connections.
            deadpool_postgres::PoolError::Backend(e) => ApiError::connecting(e),
            other => ApiError::Unavailable(format!("pool: {other}")),
        }
    }
}

impl From<tokio_postgres::Error> for ApiError {
    fn from(error: tokio_postgres::Error) -> ApiError {
        if error.is_closed() {
            return ApiError::Unavailable(format!("connection closed: {error}"));
        }
        let Some(code) = error.code() else {
            // No SQLSTATE: an I/O or protocol failure talking to the server.
            return ApiError::Unavailable(format!("database unreachable: {error}"));
        };
        // The write functions' own codes (sql/write_api.sql): their messages
        // are written for clients.
        if let Some(db) = error.as_db_error() {
            match code.code() {
                "AT404" => return ApiError::NotFound(db.message().to_string()),
                "AT409" => return ApiError::Conflict(db.message().to_string()),
                "AT422" => {
                    let field = db.column().unwrap_or("body").to_string();
                    let problem = db.message().strip_prefix(field.as_str()).unwrap_or(db.message()).trim().to_string();
                    return ApiError::Unprocessable {
                        message: db.message().to_string(),
                        fields: [(field, problem)].into(),
                    };
                }
                _ => {}
            }
        }
        match *code {
            SqlState::T_R_SERIALIZATION_FAILURE | SqlState::T_R_DEADLOCK_DETECTED => {
                ApiError::Contention(format!("database contention: {error}"))
            }
            SqlState::QUERY_CANCELED
            | SqlState::ADMIN_SHUTDOWN
            | SqlState::CANNOT_CONNECT_NOW
            | SqlState::TOO_MANY_CONNECTIONS
            | SqlState::READ_ONLY_SQL_TRANSACTION => ApiError::Unavailable(format!("database busy: {error}")),
            // A row a write referred to vanished under a concurrent delete.
            SqlState::FOREIGN_KEY_VIOLATION => ApiError::NotFound("a referenced resource does not exist".into()),
            // Something unique was taken (not reachable through the write
            // functions, which serialise writers of one product).
            SqlState::UNIQUE_VIOLATION => ApiError::Conflict("conflicting state; retry".into()),
            SqlState::CHECK_VIOLATION
            | SqlState::NUMERIC_VALUE_OUT_OF_RANGE
            | SqlState::STRING_DATA_RIGHT_TRUNCATION => {
                ApiError::Unprocessable { message: "a value is out of range".into(), fields: Default::default() }
            }
            _ => ApiError::Internal(format!("database: {error}")),
        }
    }
}

/// The 503 class: the service could not answer now, and a retry may
/// succeed (it carries `Retry-After`). Also: is this error worth trying on
/// another replica?
pub fn is_unavailable(error: &ApiError) -> bool {
    matches!(error, unavailable!())
}
