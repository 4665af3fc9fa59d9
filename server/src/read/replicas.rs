//! Where a read runs: any replica, round-robin, moving on from one that is
//! unreachable; or, for a read-your-writes request, a replica that has
//! applied the write, else the primary's copy of the read model.

use std::time::{Duration, Instant};

use atelier_schema::statements;
use postgres_types::ToSql;

use crate::db::NamedPool;
use crate::error::{is_unavailable, ApiError};
use crate::read::ReadAfter;
use crate::state::AppState;

/// How often a read-your-writes request re-asks the replicas.
const READ_AFTER_POLL: Duration = Duration::from_millis(2);

/// Runs a read statement where this request should read.
pub async fn query_one(
    state: &AppState,
    read_after: Option<ReadAfter>,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
) -> Result<Option<tokio_postgres::Row>, ApiError> {
    if let Some(token) = read_after {
        let pool = caught_up(state, token).await;
        return query_on(pool, sql, params).await;
    }
    let mut last = ApiError::Unavailable("no read replica is configured".into());
    for replica in state.pools.replica_order() {
        match query_on(replica, sql, params).await {
            Err(error) if is_unavailable(&error) => {
                state.metrics.replica_failover();
                last = error;
            }
            other => return other,
        }
    }
    Err(last)
}

/// A replica that has applied the write behind `token`, waiting for one up
/// to the configured time; then the primary, which holds the same read
/// model and has certainly applied it.
async fn caught_up(state: &AppState, ReadAfter(lsn): ReadAfter) -> &NamedPool {
    let deadline = Instant::now() + state.config.read_after_wait();
    loop {
        for replica in state.pools.replica_order() {
            if has_applied(replica, lsn).await {
                return replica;
            }
        }
        if Instant::now() + READ_AFTER_POLL > deadline {
            state.metrics.read_after_fallback();
            return &state.pools.primary;
        }
        tokio::time::sleep(READ_AFTER_POLL).await;
    }
}

async fn has_applied(replica: &NamedPool, lsn: postgres_types::PgLsn) -> bool {
    let answer = async {
        let client = replica.pool.get().await.ok()?;
        let statement = client.prepare_cached(statements::REPLICA_HAS_APPLIED).await.ok()?;
        client.query_one(&statement, &[&lsn]).await.ok()?.try_get::<_, bool>(0).ok()
    };
    answer.await == Some(true)
}

async fn query_on(
    pool: &NamedPool,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
) -> Result<Option<tokio_postgres::Row>, ApiError> {
    let client = pool.pool.get().await?;
    let statement = client.prepare_cached(sql).await?;
    Ok(client.query_opt(&statement, params).await?)
}
