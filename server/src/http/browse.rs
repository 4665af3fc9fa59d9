//! GET /browse: the catalog browser, one static page of HTML and plain
//! JavaScript (`browse.html`) built into the binary. It uses only the
//! public API, from this origin or another one (`?api=`).

use bytes::Bytes;
use hyper::header::{HeaderMap, HeaderValue, CACHE_CONTROL, CONTENT_TYPE};

use crate::error::ApiError;
use crate::http::respond::{self, HttpResponse};
use crate::read::Document;

const PAGE: &[u8] = include_bytes!("browse.html");

pub fn page(request_headers: &HeaderMap) -> Result<HttpResponse, ApiError> {
    let document = Document::with_content_etag(Bytes::from_static(PAGE), None);
    let mut response = respond::document(request_headers, document)?;
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
    // Revalidate every time: the ETag makes that a 304 when nothing changed.
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    Ok(response)
}
