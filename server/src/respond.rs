//! Building responses: JSON bodies, ETags and conditional GETs.

use std::hash::{DefaultHasher, Hasher};

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{HeaderMap, HeaderValue, CONTENT_TYPE, ETAG, IF_NONE_MATCH};
use hyper::{Response, StatusCode};

pub type HttpResponse = Response<Full<Bytes>>;

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

/// The ETag of a stored document: its version, which the database never
/// reuses (one sequence for every document kind).
pub fn version_etag(version: i64) -> String {
    format!("\"v{version}\"")
}

/// The ETag of a composed body (a page of cards): a hash of its bytes.
pub fn content_etag(body: &[u8]) -> String {
    let mut hasher = DefaultHasher::new();
    hasher.write(body);
    format!("\"h{:016x}\"", hasher.finish())
}

/// 200 with the document and its ETag, or 304 with no body when the
/// request's If-None-Match already names that ETag.
pub fn document(request_headers: &HeaderMap, body: Bytes, etag: String) -> HttpResponse {
    let etag_value = HeaderValue::from_str(&etag).expect("etags are ASCII");
    let mut response = if if_none_match(request_headers, &etag) {
        empty(StatusCode::NOT_MODIFIED)
    } else {
        json(StatusCode::OK, body)
    };
    response.headers_mut().insert(ETAG, etag_value);
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
    fn content_etags_follow_content() {
        assert_eq!(content_etag(b"[1]"), content_etag(b"[1]"));
        assert_ne!(content_etag(b"[1]"), content_etag(b"[2]"));
    }
}
