//! The read side: the four GET endpoints, served from the replicas.
//!
//! Each handler answers from the document cache when it holds the
//! document (`cache`), else runs one prepared statement that returns the
//! stored bytes, offers them to the cache, and answers them with their
//! ETag; the HTTP layer sends them as the body.
//! Where the statement runs, and within what deadlines, is `replicas`'
//! business: fewest-in-flight replica first, hedged and failed over, the
//! primary's copy of the read model when no replica answers, and the
//! primary for a read-your-writes request no replica has caught up with.
//!
//! - `replicas`: where a read runs;
//! - `batch`: misses of one document kind read together, one statement a slot;
//! - `hedges`: how many second attempts may start.

pub(crate) mod batch;
mod hedges;
mod replicas;
mod settings;
pub(crate) use hedges::HedgeBudget;
pub use settings::ReadSettings;

pub use replicas::revive_ejected;

use std::hash::{DefaultHasher, Hasher};

use atelier_schema::{statements, DocumentKind};
use bytes::Bytes;
use hyper::header::HeaderValue;
use postgres_types::PgLsn;

use crate::cache::{Answer, Cached, ChangeFeed, Fresh, PageSpan};
use crate::db::{RawSlice, RawText};
use crate::error::ApiError;
use crate::state::AppState;

/// `X-Served-By` of an answer from this server's document cache.
pub const CACHE_NODE: &str = "cache";

/// A document to send: its bytes as stored, its strong ETag, and the node
/// that served it (None when no database was asked).
pub struct Document {
    pub body: Bytes,
    pub etag: String,
    pub served_by: Option<&'static str>,
}

impl Document {
    /// A document the cache held, marked `X-Served-By: cache`.
    fn from_cache(hit: Cached) -> Document {
        Document { body: hit.body, etag: hit.etag, served_by: Some(CACHE_NODE) }
    }

    /// A page past the last product: `[]`, asked of no database.
    fn past_the_end() -> Document {
        Document::with_content_etag(Bytes::from_static(b"[]"), None)
    }

    /// A composed body (a page of cards) with an ETag hashed from its bytes.
    pub fn with_content_etag(body: Bytes, served_by: Option<&'static str>) -> Document {
        let mut hasher = DefaultHasher::new();
        hasher.write(&body);
        Document { etag: format!("\"h{:016x}\"", hasher.finish()), body, served_by }
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

/// A page of GET /products: its number (from 1) and its size (from 1, at
/// most ATELIER_PAGE_COUNT_MAX), as the HTTP layer parsed them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page {
    pub number: i64,
    pub count: u32,
}

/// GET /products?page=P&count=C
pub async fn product_list(state: &AppState, page: Page, read_after: Option<ReadAfter>) -> Result<Document, ApiError> {
    let Page { number: page, count } = page;
    // Positions past i64 are certainly past the end.
    let Some(offset) = (page - 1).checked_mul(i64::from(count)) else {
        return Ok(Document::past_the_end());
    };
    // At most page_count_max, which the configuration keeps within i32.
    let count = i32::try_from(count).map_err(|_| ApiError::BadRequest("count is too large".into()))?;
    let cache = cache_for(state, read_after);
    // The position index turns the page into an id range: one index range
    // scan. Without it (off, loading, or a read-your-writes request, which
    // the index may lag), the database finds the positions.
    let read = || async move {
        let (body, node) = match cache.and_then(|cache| cache.page_span(offset, count)) {
            Some(PageSpan::PastTheEnd) => return Ok(fresh(Document::past_the_end(), 0)),
            Some(PageSpan::Ids(first, last)) => {
                let answered =
                    replicas::query(state, None, statements::PRODUCT_CARDS_BETWEEN, &[&first, &last]).await?;
                (cards_array(&answered.rows)?, answered.node)
            }
            None => {
                let answered = replicas::query(state, read_after, statements::PRODUCT_PAGE, &[&offset, &count]).await?;
                let node = answered.node;
                let row = answered.row().ok_or_else(|| ApiError::internal("products_page returned no row"))?;
                let RawText(body) = row.try_get(0)?;
                (body, node)
            }
        };
        Ok::<_, ApiError>(fresh(Document::with_content_etag(body, Some(node)), 0))
    };
    let answer = match cache.and_then(ChangeFeed::documents) {
        Some(documents) => documents.read_page(offset, count, read).await?,
        None => Answer::Fresh(Box::pin(read()).await?),
    };
    Ok(Document::from(answer))
}

/// Stored cards, in id order, as one JSON array: the bytes joined with
/// commas and bracketed (what `products_page()` builds in SQL; joining here
/// spares the replica an ordered aggregate, about a fifth of its work).
fn cards_array(rows: &[tokio_postgres::Row]) -> Result<Bytes, ApiError> {
    let mut body = bytes::BytesMut::with_capacity(2 + rows.len() * 512);
    body.extend_from_slice(b"[");
    for (i, row) in rows.iter().enumerate() {
        if i > 0 {
            body.extend_from_slice(b",");
        }
        let RawSlice(card) = row.try_get(0)?;
        body.extend_from_slice(card);
    }
    body.extend_from_slice(b"]");
    Ok(body.freeze())
}

/// The cache, when it is on and may answer this read: a read-your-writes
/// request is never answered from memory (the cache may lag its token).
fn cache_for(state: &AppState, read_after: Option<ReadAfter>) -> Option<&ChangeFeed> {
    state.cache.as_deref().filter(|_| read_after.is_none())
}

/// A document just read, at `version`, as the cache takes it.
fn fresh(document: Document, version: i64) -> Fresh {
    Fresh { body: document.body, etag: document.etag, version, node: document.served_by }
}

impl From<Answer> for Document {
    fn from(answer: Answer) -> Document {
        match answer {
            Answer::Cached(hit) => Document::from_cache(hit),
            Answer::Fresh(read) => Document { body: read.body, etag: read.etag, served_by: read.node },
        }
    }
}

/// GET /products/:id, /products/:id/styles, /products/:id/related
pub async fn product_document(
    state: &AppState,
    kind: DocumentKind,
    id: i64,
    read_after: Option<ReadAfter>,
) -> Result<Document, ApiError> {
    let read = || async move {
        // In the next batch of this kind, or alone (read/batch.rs).
        let batch::Fetched { body, version, node } = batch::read(state, kind, id, read_after).await?;
        // The version changes whenever the bytes do and is never reused
        // (one sequence for every document kind).
        let etag = format!("\"v{version}\"");
        Ok::<_, ApiError>(fresh(Document { body, etag, served_by: Some(node) }, version))
    };
    let answer = match cache_for(state, read_after).and_then(ChangeFeed::documents) {
        Some(documents) => documents.read_document((kind, id), read).await?,
        None => Answer::Fresh(Box::pin(read()).await?),
    };
    Ok(Document::from(answer))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_etags_follow_content() {
        let etag = |body: &'static [u8]| Document::with_content_etag(Bytes::from_static(body), None).etag;
        assert_eq!(etag(b"[1]"), etag(b"[1]"));
        assert_ne!(etag(b"[1]"), etag(b"[2]"));
    }
}
