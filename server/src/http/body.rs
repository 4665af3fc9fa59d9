//! Request bodies of writes: `Content-Type`, the size limit, JSON, and the
//! `Idempotency-Key` header.

use bytes::Bytes;
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::header::{CONTENT_LENGTH, CONTENT_TYPE};
use hyper::{HeaderMap, Request};
use serde_json::Value;

use crate::error::ApiError;

/// Longest Idempotency-Key accepted (the column's limit).
const IDEMPOTENCY_KEY_CHARS_MAX: usize = 255;

/// A write's body: the bytes as sent (for the idempotency fingerprint) and
/// the JSON they hold.
pub struct JsonBody {
    pub raw: Bytes,
    pub value: Value,
}

/// Checks Content-Type (415) and size (413, before reading when the length
/// is declared), reads the body, and parses it as JSON (400).
pub async fn read_json(request: Request<Incoming>, bytes_max: usize) -> Result<JsonBody, ApiError> {
    let is_json = request
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.split(';').next().unwrap_or("").trim().eq_ignore_ascii_case("application/json"))
        .unwrap_or(false);
    if !is_json {
        return Err(ApiError::UnsupportedMediaType);
    }
    let declared = request.headers().get(CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<usize>().ok());
    if declared.is_some_and(|n| n > bytes_max) {
        return Err(ApiError::PayloadTooLarge(bytes_max));
    }
    let raw = Limited::new(request.into_body(), bytes_max).collect().await.map_err(|error| {
        if error.downcast_ref::<http_body_util::LengthLimitError>().is_some() {
            ApiError::PayloadTooLarge(bytes_max)
        } else {
            ApiError::BadRequest("could not read the request body".into())
        }
    })?;
    let raw = raw.to_bytes();
    let value = serde_json::from_slice(&raw).map_err(|e| ApiError::BadRequest(format!("malformed JSON: {e}")))?;
    Ok(JsonBody { raw, value })
}

/// The `Idempotency-Key` header: visible ASCII, 1 to 255 characters.
pub fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(value) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    let key = value.to_str().map_err(|_| ApiError::BadRequest("Idempotency-Key must be visible ASCII".into()))?;
    if key.is_empty() || key.len() > IDEMPOTENCY_KEY_CHARS_MAX {
        return Err(ApiError::BadRequest("Idempotency-Key must be 1 to 255 characters".into()));
    }
    Ok(Some(key.to_string()))
}
