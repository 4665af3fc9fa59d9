//! The read side: the four GET endpoints, served from the replicas.
//!
//! Each handler runs one prepared statement that returns the stored bytes,
//! and sends them as the body. The replicas are tried in round-robin order;
//! one that is unreachable is skipped. A request carrying `X-Read-After`
//! waits (briefly) for a replica that has applied that position, or reads the
//! primary's copy of the read model.

use std::time::{Duration, Instant};

use bytes::Bytes;
use hyper::header::HeaderMap;
use postgres_types::{PgLsn, ToSql};

use crate::db::NamedPool;
use crate::document::Document;
use crate::error::{is_unavailable, ApiError};
use crate::respond::{self, HttpResponse};
use crate::routes::parse_positive;
use crate::server::AppState;

/// The request header carrying a write's read-after token.
pub const READ_AFTER_HEADER: &str = "x-read-after";

pub const PAGE_SQL: &str = "select products_page($1, $2)";
pub const DETAIL_SQL: &str = "select doc, version from api_product_detail where product_id = $1";
pub const STYLES_SQL: &str = "select doc, version from api_product_styles where product_id = $1";
pub const RELATED_SQL: &str = "select doc, version from api_product_related where product_id = $1";
pub const APPLIED_SQL: &str = "select coalesce(read_model_applied_lsn() >= $1, false)";

/// How often a read-your-writes request re-asks the replicas.
const READ_AFTER_POLL: Duration = Duration::from_millis(2);

/// Which per-product document a GET wants.
#[derive(Clone, Copy)]
pub enum Kind {
    Detail,
    Styles,
    Related,
}

impl Kind {
    fn sql(self) -> &'static str {
        match self {
            Kind::Detail => DETAIL_SQL,
            Kind::Styles => STYLES_SQL,
            Kind::Related => RELATED_SQL,
        }
    }
}

/// GET /products?page=P&count=C
pub async fn product_list(
    state: &AppState,
    query: Option<&str>,
    headers: &HeaderMap,
) -> Result<HttpResponse, ApiError> {
    let (page, count) = paging(query, state.config.page_count_max)?;
    // Positions past i64 are certainly past the end.
    let Some(offset) = (page - 1).checked_mul(i64::from(count)) else {
        return Ok(respond::document(headers, Bytes::from_static(b"[]"), respond::content_etag(b"[]")));
    };
    let count = i32::try_from(count).expect("count is at most page_count_max, a u32 bounded by config");
    let pool = choose(state, headers).await?;
    let row = query_one_of(state, pool, PAGE_SQL, &[&offset, &count]).await?;
    let Some(row) = row else {
        return Err(ApiError::internal("products_page returned no row"));
    };
    let Document(body) = row.try_get(0).map_err(|e| ApiError::internal(e.to_string()))?;
    let etag = respond::content_etag(&body);
    Ok(respond::document(headers, body, etag))
}

/// GET /products/:id, /products/:id/styles, /products/:id/related
pub async fn product_document(
    state: &AppState,
    kind: Kind,
    id: i64,
    headers: &HeaderMap,
) -> Result<HttpResponse, ApiError> {
    let pool = choose(state, headers).await?;
    let row = query_one_of(state, pool, kind.sql(), &[&id]).await?;
    let Some(row) = row else {
        return Err(ApiError::NotFound(format!("product {id} not found")));
    };
    let Document(body) = row.try_get(0).map_err(|e| ApiError::internal(e.to_string()))?;
    let version: i64 = row.try_get(1).map_err(|e| ApiError::internal(e.to_string()))?;
    Ok(respond::document(headers, body, respond::version_etag(version)))
}

/// Parses `page` and `count`: positive integers, count at most `count_max`.
/// Other parameters are ignored; a repeated parameter's last value wins.
pub fn paging(query: Option<&str>, count_max: u32) -> Result<(i64, u32), ApiError> {
    let (mut page, mut count) = (1_i64, 5_u32);
    for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        match key {
            "page" => {
                page = parse_positive(value)
                    .ok_or_else(|| ApiError::BadRequest(format!("page must be a positive integer, got {value:?}")))?;
            }
            "count" => {
                count = parse_positive(value)
                    .filter(|c| *c <= i64::from(count_max))
                    .and_then(|c| u32::try_from(c).ok())
                    .ok_or_else(|| {
                        ApiError::BadRequest(format!("count must be an integer from 1 to {count_max}, got {value:?}"))
                    })?;
            }
            _ => {}
        }
    }
    Ok((page, count))
}

/// Where this GET reads: `None` means "any replica, round-robin"; a
/// read-after token may instead pick one replica that has caught up, or the
/// primary.
async fn choose<'a>(state: &'a AppState, headers: &HeaderMap) -> Result<Option<&'a NamedPool>, ApiError> {
    let Some(token) = headers.get(READ_AFTER_HEADER) else {
        return Ok(None);
    };
    let lsn: PgLsn = token
        .to_str()
        .ok()
        .and_then(|t| t.parse().ok())
        .ok_or_else(|| ApiError::BadRequest("malformed X-Read-After token".into()))?;
    let deadline = Instant::now() + Duration::from_millis(state.config.read_after_wait_ms);
    loop {
        for replica in state.pools.replica_order() {
            if replica_has_applied(replica, lsn).await {
                return Ok(Some(replica));
            }
        }
        if Instant::now() + READ_AFTER_POLL > deadline {
            state.metrics.read_after_fallback();
            return Ok(Some(&state.pools.primary));
        }
        tokio::time::sleep(READ_AFTER_POLL).await;
    }
}

async fn replica_has_applied(replica: &NamedPool, lsn: PgLsn) -> bool {
    let Ok(client) = replica.pool.get().await else {
        return false;
    };
    let Ok(statement) = client.prepare_cached(APPLIED_SQL).await else {
        return false;
    };
    matches!(client.query_one(&statement, &[&lsn]).await.map(|row| row.get::<_, bool>(0)), Ok(true))
}

/// Runs a read statement on `chosen`, or on the replicas in round-robin
/// order, moving to the next replica when one is unreachable.
async fn query_one_of(
    state: &AppState,
    chosen: Option<&NamedPool>,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
) -> Result<Option<tokio_postgres::Row>, ApiError> {
    if let Some(pool) = chosen {
        return query_one(pool, sql, params).await;
    }
    let mut last = ApiError::Unavailable("no read replica is configured".into());
    for replica in state.pools.replica_order() {
        match query_one(replica, sql, params).await {
            Err(error) if is_unavailable(&error) => {
                state.metrics.replica_failover();
                last = error;
            }
            other => return other,
        }
    }
    Err(last)
}

async fn query_one(
    pool: &NamedPool,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
) -> Result<Option<tokio_postgres::Row>, ApiError> {
    let client = pool.pool.get().await?;
    let statement = client.prepare_cached(sql).await?;
    Ok(client.query_opt(&statement, params).await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paging_defaults_and_bounds() {
        assert_eq!(paging(None, 1000).unwrap(), (1, 5));
        assert_eq!(paging(Some("page=3&count=10"), 1000).unwrap(), (3, 10));
        assert_eq!(paging(Some("count=1000&other=x"), 1000).unwrap(), (1, 1000));
        for bad in ["page=0", "page=-1", "page=", "count=0", "count=1001", "count=abc", "page=1.5", "count"] {
            assert!(matches!(paging(Some(bad), 1000), Err(ApiError::BadRequest(_))), "{bad}");
        }
    }
}
