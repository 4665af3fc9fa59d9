//! CORS, so storefronts can call the API straight from the browser, as
//! Express's `cors()` lets them by default: every path, known or not,
//! answers a preflight `OPTIONS` with 204 and allows whatever request
//! headers the preflight asks for (`Authorization`, which FEC clients send
//! on reads and writes need, and the `Cache-Control`, `Pragma` or
//! `X-Requested-With` some storefronts add); every response names the
//! allowed origin and exposes the headers a client needs to read. Origins
//! come from `ATELIER_CORS_ORIGINS`: `*` (the
//! default) allows any; otherwise only the listed ones get
//! `Access-Control-Allow-Origin`, so a browser on any other origin refuses
//! to use the answer.

use hyper::header::{
    HeaderMap, HeaderValue, ACCESS_CONTROL_ALLOW_HEADERS, ACCESS_CONTROL_ALLOW_METHODS, ACCESS_CONTROL_ALLOW_ORIGIN,
    ACCESS_CONTROL_EXPOSE_HEADERS, ACCESS_CONTROL_MAX_AGE, ACCESS_CONTROL_REQUEST_HEADERS, ALLOW, VARY,
};
use hyper::StatusCode;

use crate::config::Config;
use crate::http::respond::{self, HttpResponse};
use crate::http::routes::Resource;

/// The methods a preflight to a path the service does not serve is told
/// (Express's default list): the request that follows gets its JSON 404,
/// which the browser then lets the page read.
const ANY_METHODS: HeaderValue = HeaderValue::from_static("GET, HEAD, PUT, PATCH, POST, DELETE, OPTIONS");
/// Response headers a browser's script may read beyond the safelisted ones.
const EXPOSE_HEADERS: HeaderValue =
    HeaderValue::from_static("ETag, Location, X-Read-After, Retry-After, X-Request-Id, X-Served-By");
/// How long a browser may cache a preflight's answer: ten minutes spares a
/// storefront one OPTIONS per request without pinning a policy for long.
const MAX_AGE_SECONDS: HeaderValue = HeaderValue::from_static("600");

/// The value of `Access-Control-Allow-Origin` for a request from `origin`,
/// or None when that origin is not allowed.
fn allowed_origin(config: &Config, origin: Option<&HeaderValue>) -> Option<HeaderValue> {
    if config.http.cors_origins.iter().any(|o| o == "*") {
        return Some(HeaderValue::from_static("*"));
    }
    let origin = origin?;
    let text = origin.to_str().ok()?;
    config.http.cors_origins.iter().any(|o| o.eq_ignore_ascii_case(text)).then(|| origin.clone())
}

/// Adds the CORS headers to any response.
pub fn decorate(config: &Config, origin: Option<&HeaderValue>, response: &mut HttpResponse) {
    let headers: &mut HeaderMap = response.headers_mut();
    if !config.http.cors_origins.iter().any(|o| o == "*") {
        // The answer depends on the request's origin: caches must know
        // (one Vary line, after what a preflight already varies on).
        let vary = match headers.get(VARY).and_then(|v| v.to_str().ok()) {
            Some(earlier) => HeaderValue::from_str(&format!("{earlier}, Origin")).ok(),
            None => Some(HeaderValue::from_static("Origin")),
        };
        if let Some(vary) = vary {
            headers.insert(VARY, vary);
        }
    }
    if let Some(allowed) = allowed_origin(config, origin) {
        headers.insert(ACCESS_CONTROL_ALLOW_ORIGIN, allowed);
        headers.insert(ACCESS_CONTROL_EXPOSE_HEADERS, EXPOSE_HEADERS);
    }
}

/// The answer to `OPTIONS` on any path: 204 with the methods the route
/// allows (every method for a path we do not serve) and, echoed, the
/// request headers the preflight asked for (`decorate` adds the origin,
/// which is what actually gates a browser).
pub fn preflight(resource: Option<Resource>, request: &HeaderMap) -> HttpResponse {
    let mut response = respond::empty(StatusCode::NO_CONTENT);
    let headers = response.headers_mut();
    match resource.map(|resource| HeaderValue::from_str(&format!("{}, OPTIONS", resource.allow()))) {
        Some(Ok(methods)) => {
            headers.insert(ACCESS_CONTROL_ALLOW_METHODS, methods.clone());
            headers.insert(ALLOW, methods);
        }
        _ => {
            headers.insert(ACCESS_CONTROL_ALLOW_METHODS, ANY_METHODS);
        }
    }
    if let Some(asked) = request.get(ACCESS_CONTROL_REQUEST_HEADERS) {
        headers.insert(ACCESS_CONTROL_ALLOW_HEADERS, asked.clone());
    }
    // The answer depends on what was asked: shared caches must know.
    headers.append(VARY, HeaderValue::from_static("Access-Control-Request-Headers"));
    headers.insert(ACCESS_CONTROL_MAX_AGE, MAX_AGE_SECONDS);
    response
}
