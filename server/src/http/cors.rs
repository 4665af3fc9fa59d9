//! CORS, so storefronts can call the API straight from the browser (with an
//! `Authorization` header, as the public API required; its value is
//! ignored). Every route answers a preflight `OPTIONS` with 204; every
//! response names the allowed origin and exposes the headers a client
//! needs to read. Origins come from `ATELIER_CORS_ORIGINS`: `*` (the
//! default) allows any; otherwise only the listed ones get
//! `Access-Control-Allow-Origin`, so a browser on any other origin refuses
//! to use the answer.

use hyper::header::{
    HeaderMap, HeaderValue, ACCESS_CONTROL_ALLOW_HEADERS, ACCESS_CONTROL_ALLOW_METHODS, ACCESS_CONTROL_ALLOW_ORIGIN,
    ACCESS_CONTROL_EXPOSE_HEADERS, ACCESS_CONTROL_MAX_AGE, ALLOW, VARY,
};
use hyper::StatusCode;

use crate::config::Config;
use crate::http::respond::{self, HttpResponse};
use crate::http::routes::Resource;

/// Request headers a browser may send: the contract's list.
const ALLOW_HEADERS: HeaderValue =
    HeaderValue::from_static("Authorization, Content-Type, Idempotency-Key, If-None-Match, X-Read-After, X-Request-Id");
/// Response headers a browser's script may read beyond the safelisted ones.
const EXPOSE_HEADERS: HeaderValue =
    HeaderValue::from_static("ETag, Location, X-Read-After, Retry-After, X-Request-Id, X-Served-By");
/// How long a browser may cache a preflight's answer: ten minutes spares a
/// storefront one OPTIONS per request without pinning a policy for long.
const MAX_AGE_SECONDS: HeaderValue = HeaderValue::from_static("600");

/// The value of `Access-Control-Allow-Origin` for a request from `origin`,
/// or None when that origin is not allowed.
fn allowed_origin(config: &Config, origin: Option<&HeaderValue>) -> Option<HeaderValue> {
    if config.cors_origins.iter().any(|o| o == "*") {
        return Some(HeaderValue::from_static("*"));
    }
    let origin = origin?;
    let text = origin.to_str().ok()?;
    config.cors_origins.iter().any(|o| o.eq_ignore_ascii_case(text)).then(|| origin.clone())
}

/// Adds the CORS headers to any response.
pub fn decorate(config: &Config, origin: Option<&HeaderValue>, response: &mut HttpResponse) {
    let headers: &mut HeaderMap = response.headers_mut();
    if !config.cors_origins.iter().any(|o| o == "*") {
        // The answer depends on the request's origin: caches must know.
        headers.append(VARY, HeaderValue::from_static("Origin"));
    }
    if let Some(allowed) = allowed_origin(config, origin) {
        headers.insert(ACCESS_CONTROL_ALLOW_ORIGIN, allowed);
        headers.insert(ACCESS_CONTROL_EXPOSE_HEADERS, EXPOSE_HEADERS);
    }
}

/// The answer to `OPTIONS` on a route: 204 with the methods it allows and
/// the headers a browser may send (`decorate` adds the origin).
pub fn preflight(resource: Resource) -> HttpResponse {
    let mut response = respond::empty(StatusCode::NO_CONTENT);
    let methods = format!("{}, OPTIONS", resource.allow());
    if let Ok(methods) = HeaderValue::from_str(&methods) {
        response.headers_mut().insert(ACCESS_CONTROL_ALLOW_METHODS, methods.clone());
        response.headers_mut().insert(ALLOW, methods);
    }
    response.headers_mut().insert(ACCESS_CONTROL_ALLOW_HEADERS, ALLOW_HEADERS);
    response.headers_mut().insert(ACCESS_CONTROL_MAX_AGE, MAX_AGE_SECONDS);
    response
}
