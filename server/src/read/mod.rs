//! The read side: the four GET endpoints, served from the replicas.
//!
//! Each handler runs one prepared statement that returns the stored bytes,
//! and answers them with their ETag; the HTTP layer sends them as the body.
//! The replicas are tried in round-robin order; one that is unreachable is
//! skipped. A request carrying `X-Read-After` waits (briefly) for a replica
//! that has applied that position, or reads the primary's copy of the read
//! model.
//!
//! - `paging`: `page` and `count`;
//! - `replicas`: where a read runs.

mod paging;
mod replicas;

use std::hash::{DefaultHasher, Hasher};

use atelier_schema::{statements, DocumentKind};
use bytes::Bytes;
use hyper::header::HeaderValue;
use postgres_types::PgLsn;

use crate::db::RawText;
use crate::error::ApiError;
use crate::state::AppState;

/// A document to send: its bytes as stored, and its strong ETag.
pub struct Document {
    pub body: Bytes,
    pub etag: String,
}

impl Document {
    /// A composed body (a page of cards) with an ETag hashed from its bytes.
    pub fn with_content_etag(body: Bytes) -> Document {
        let mut hasher = DefaultHasher::new();
        hasher.write(&body);
        Document { etag: format!("\"h{:016x}\"", hasher.finish()), body }
    }
}

/// A write's `X-Read-After` token: the primary's WAL position after that
/// write committed. Opaque to clients.
#[derive(Debug, Clone, Copy)]
pub struct ReadAfter(PgLsn);

impl ReadAfter {
    pub fn parse(value: &HeaderValue) -> Result<ReadAfter, ApiError> {
        value
            .to_str()
            .ok()
            .and_then(|t| t.parse().ok())
            .map(ReadAfter)
            .ok_or_else(|| ApiError::BadRequest("malformed X-Read-After token".into()))
    }
}

/// GET /products?page=P&count=C
pub async fn product_list(
    state: &AppState,
    query: Option<&str>,
    read_after: Option<ReadAfter>,
) -> Result<Document, ApiError> {
    let (page, count) = paging::paging(query, state.config.page_count_max)?;
    // Positions past i64 are certainly past the end.
    let Some(offset) = (page - 1).checked_mul(i64::from(count)) else {
        return Ok(Document::with_content_etag(Bytes::from_static(b"[]")));
    };
    // At most page_count_max, which the configuration keeps within i32.
    let count = i32::try_from(count).map_err(|_| ApiError::BadRequest("count is too large".into()))?;
    let row = replicas::query_one(state, read_after, statements::PRODUCT_PAGE, &[&offset, &count])
        .await?
        .ok_or_else(|| ApiError::internal("products_page returned no row"))?;
    let RawText(body) = row.try_get(0)?;
    Ok(Document::with_content_etag(body))
}

/// GET /products/:id, /products/:id/styles, /products/:id/related
pub async fn product_document(
    state: &AppState,
    kind: DocumentKind,
    id: i64,
    read_after: Option<ReadAfter>,
) -> Result<Document, ApiError> {
    let sql = statements::product_document(kind)
        .ok_or_else(|| ApiError::internal(format!("{} documents are not read one by one", kind.name())))?;
    let Some(row) = replicas::query_one(state, read_after, sql, &[&id]).await? else {
        return Err(ApiError::NotFound(format!("product {id} not found")));
    };
    let RawText(body) = row.try_get(0)?;
    let version: i64 = row.try_get(1)?;
    // The version changes whenever the bytes do and is never reused (one
    // sequence for every document kind).
    Ok(Document { body, etag: format!("\"v{version}\"") })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_etags_follow_content() {
        let etag = |body: &'static [u8]| Document::with_content_etag(Bytes::from_static(body)).etag;
        assert_eq!(etag(b"[1]"), etag(b"[1]"));
        assert_ne!(etag(b"[1]"), etag(b"[2]"));
    }
}
