//! Building responses: JSON bodies, documents with ETags and conditional
//! GETs, write answers with `X-Read-After`, and errors with their JSON body.

use std::collections::BTreeMap;

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{
    HeaderMap, HeaderName, HeaderValue, ALLOW, CONTENT_TYPE, ETAG, IF_NONE_MATCH, LOCATION, RETRY_AFTER,
    WWW_AUTHENTICATE,
};
use hyper::{Response, StatusCode};
use serde::Serialize;

use crate::error::ApiError;
use crate::read::Document;
use crate::write::{Outcome, Written};

pub type HttpResponse = Response<Full<Bytes>>;

/// The header a write's answer carries and a GET may send back.
pub const READ_AFTER: HeaderName = HeaderName::from_static("x-read-after");
/// The node that answered a read or write: `replica1`, `primary`, ...
pub const SERVED_BY: HeaderName = HeaderName::from_static("x-served-by");
/// Every answer's request id (the client's, or a new one).
pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Seconds a client is told to wait after a 503.
const RETRY_AFTER_SECONDS: HeaderValue = HeaderValue::from_static("1");

/// A JSON response with the given status.
pub fn json(status: StatusCode, body: impl Into<Bytes>) -> HttpResponse {
    let mut response = Response::new(Full::new(body.into()));
    *response.status_mut() = status;
    response.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

/// An empty response (204, 304).
pub fn empty(status: StatusCode) -> HttpResponse {
    let mut response = Response::new(Full::new(Bytes::new()));
    *response.status_mut() = status;
    response
}

/// 200 with the document and its ETag, or 304 with no body when the
/// request's If-None-Match already names that ETag.
pub fn document(request_headers: &HeaderMap, document: Document) -> Result<HttpResponse, ApiError> {
    let etag = HeaderValue::from_str(&document.etag).map_err(|_| ApiError::internal("ETag is not a header value"))?;
    let mut response = if if_none_match(request_headers, &document.etag) {
        empty(StatusCode::NOT_MODIFIED)
    } else {
        json(StatusCode::OK, document.body)
    };
    response.headers_mut().insert(ETAG, etag);
    if let Some(node) = document.served_by {
        response.headers_mut().insert(SERVED_BY, HeaderValue::from_static(node));
    }
    Ok(response)
}

/// A write's answer: its status and body, `Location` when it created
/// something addressable, and the `X-Read-After` token.
pub fn written(written: Written) -> Result<HttpResponse, ApiError> {
    let mut response = match written.outcome {
        Outcome::Deleted => empty(StatusCode::NO_CONTENT),
        Outcome::Updated => json(StatusCode::OK, written.body),
        Outcome::Created => json(StatusCode::CREATED, written.body),
    };
    let headers = response.headers_mut();
    headers.insert(SERVED_BY, HeaderValue::from_static("primary"));
    let token = HeaderValue::from_str(&written.read_after.to_string())
        .map_err(|_| ApiError::internal("read-after token is not a header value"))?;
    headers.insert(READ_AFTER, token);
    if let Some(location) = written.location {
        let location =
            HeaderValue::from_str(&location).map_err(|_| ApiError::internal("location is not a header value"))?;
        headers.insert(LOCATION, location);
    }
    Ok(response)
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: &'a str,
    message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    fields: Option<&'a BTreeMap<String, String>>,
}

/// The response for an error: its status, `{"error","message"}` (with
/// `fields` on 422), `Allow` on 405, `WWW-Authenticate` on 401 and 403
/// (RFC 6750's error codes), and `Retry-After` on 429 and 503.
pub fn error(error: ApiError) -> HttpResponse {
    let fields = match &error {
        ApiError::Unprocessable { fields, .. } => Some(fields),
        _ => None,
    };
    let body = ErrorBody { error: error.code(), message: error.public_message(), fields };
    let mut response = json(error.status(), serde_json::to_vec(&body).unwrap_or_default());
    let headers = response.headers_mut();
    match &error {
        ApiError::MethodNotAllowed { allow } => {
            if let Ok(allow) = HeaderValue::from_str(allow) {
                headers.insert(ALLOW, allow);
            }
        }
        crate::error::unavailable!() => {
            headers.insert(RETRY_AFTER, RETRY_AFTER_SECONDS);
        }
        ApiError::Unauthorized { presented } => {
            let challenge = match presented {
                false => HeaderValue::from_static("Bearer realm=\"atelier\""),
                true => HeaderValue::from_static("Bearer realm=\"atelier\", error=\"invalid_token\""),
            };
            headers.insert(WWW_AUTHENTICATE, challenge);
        }
        ApiError::Forbidden { scope } => {
            let challenge = format!("Bearer realm=\"atelier\", error=\"insufficient_scope\", scope=\"{scope}\"");
            if let Ok(challenge) = HeaderValue::from_str(&challenge) {
                headers.insert(WWW_AUTHENTICATE, challenge);
            }
        }
        ApiError::TooManyRequests { retry_after } => {
            // Whole seconds, rounded up: never "0", which invites a retry now.
            let seconds = retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0);
            headers.insert(RETRY_AFTER, HeaderValue::from(seconds.max(1)));
        }
        _ => {}
    }
    response
}

/// 503 with `Retry-After`, for operational endpoints that report rather
/// than fail.
pub fn with_retry_after(mut response: HttpResponse) -> HttpResponse {
    response.headers_mut().insert(RETRY_AFTER, RETRY_AFTER_SECONDS);
    response
}

/// Does If-None-Match match `etag`? Weak comparison, as RFC 9110 asks for
/// GET: `W/` prefixes are ignored; `*` matches anything.
fn if_none_match(headers: &HeaderMap, etag: &str) -> bool {
    headers.get_all(IF_NONE_MATCH).iter().filter_map(|v| v.to_str().ok()).any(|value| {
        value.split(',').map(str::trim).any(|tag| tag == "*" || tag.strip_prefix("W/").unwrap_or(tag) == etag)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(value: &str) -> HeaderMap {
        let mut map = HeaderMap::new();
        map.insert(IF_NONE_MATCH, HeaderValue::from_str(value).unwrap());
        map
    }

    #[test]
    fn if_none_match_lists_and_weak_tags() {
        assert!(if_none_match(&headers("\"v7\""), "\"v7\""));
        assert!(if_none_match(&headers("\"v1\", W/\"v7\""), "\"v7\""));
        assert!(if_none_match(&headers("*"), "\"v7\""));
        assert!(!if_none_match(&headers("\"v70\""), "\"v7\""));
        assert!(!if_none_match(&HeaderMap::new(), "\"v7\""));
    }

    #[test]
    fn errors_carry_their_headers_and_no_internals() {
        let response = error(ApiError::Unavailable("port 5432 refused".into()));
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(response.headers()[RETRY_AFTER], "1");
        let response = error(ApiError::MethodNotAllowed { allow: "GET, HEAD".into() });
        assert_eq!(response.headers()[ALLOW], "GET, HEAD");
        let response = error(ApiError::Unauthorized { presented: false });
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(response.headers()[WWW_AUTHENTICATE], "Bearer realm=\"atelier\"");
        let response = error(ApiError::Forbidden { scope: "stock:write" });
        assert_eq!(response.status(), StatusCode::FORBIDDEN);
        assert!(response.headers()[WWW_AUTHENTICATE].to_str().unwrap().contains("scope=\"stock:write\""));
        let response = error(ApiError::TooManyRequests { retry_after: std::time::Duration::from_millis(9_200) });
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(response.headers()[RETRY_AFTER], "10");
    }
}
