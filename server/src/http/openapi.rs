//! GET /openapi.json: the whole contract as an OpenAPI 3.1 document
//! (`openapi.json`, built into the binary), which schemathesis checks
//! against the running server in the test command.

use bytes::Bytes;
use hyper::header::{HeaderMap, HeaderValue, CONTENT_TYPE};

use crate::error::ApiError;
use crate::http::respond::{self, HttpResponse};
use crate::read::Document;

const OPENAPI: &[u8] = include_bytes!("openapi.json");

pub fn document(request_headers: &HeaderMap) -> Result<HttpResponse, ApiError> {
    let mut response =
        respond::document(request_headers, Document::with_content_etag(Bytes::from_static(OPENAPI), None))?;
    response.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    Ok(response)
}
