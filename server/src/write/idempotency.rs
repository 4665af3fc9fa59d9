//! Idempotent POSTs: the first answer to each `Idempotency-Key` is stored in
//! the same transaction as the write it describes, so a retry either finds
//! the committed answer or waits on the key's row lock until the first try
//! commits or rolls back (see `idempotency_key` in sql/write_schema.sql).
//! Only successful answers are stored: a write that failed rolled back its
//! claim too, so the client may retry with the same key.

use std::sync::Arc;
use std::time::Duration;

use atelier_schema::statements;
use bytes::Bytes;
use deadpool_postgres::GenericClient;

use crate::error::ApiError;
use crate::state::AppState;
use crate::write::{call, wal_position, written, Answer, Outcome, Write, Written};

/// How long a key is remembered: clients retry within minutes; a day
/// covers retries across a deploy or an outage.
pub const RETENTION_HOURS: i32 = 24;
/// How often expired keys are deleted.
const PURGE_INTERVAL: Duration = Duration::from_secs(600);

/// A POST's key, and what makes two POSTs "the same request" for it: the
/// method, the path and the body's bytes.
pub struct Idempotency {
    key: String,
    fingerprint: String,
}

impl Idempotency {
    pub fn new(key: String, method: &str, path: &str, body: &[u8]) -> Idempotency {
        let fingerprint = format!("{method} {path}\n{}", String::from_utf8_lossy(body));
        Idempotency { key, fingerprint }
    }
}

/// One attempt of a keyed write: claim the key, then replay its stored
/// answer or run the write and store its answer, all in one transaction.
pub async fn attempt<W: Write>(state: &AppState, write: &W, key: &Idempotency) -> Result<Written, ApiError> {
    let mut connection = state.pools.primary.checkout(state.config.write.deadline).await?;
    connection
        .exchange(async |client| {
            let tx = client.transaction().await?;
            let answer = match claim(&tx, key).await? {
                Some(replayed) => replayed,
                None => {
                    let answer = call(&tx, write).await?;
                    remember(&tx, &key.key, &answer).await?;
                    answer
                }
            };
            tx.commit().await?;
            Ok(written(answer, wal_position(&*client).await?))
        })
        .await
}

/// Claims the key (None: first use, do the write), or returns the committed
/// answer of an earlier request with the same key and fingerprint. The same
/// key with another request is 422.
async fn claim(tx: &impl GenericClient, key: &Idempotency) -> Result<Option<Answer>, ApiError> {
    let statement = tx.prepare_cached(statements::CLAIM_IDEMPOTENCY_KEY).await?;
    if tx.execute(&statement, &[&key.key, &key.fingerprint]).await? == 1 {
        return Ok(None);
    }
    let statement = tx.prepare_cached(statements::FIND_IDEMPOTENCY_KEY).await?;
    let row = tx
        .query_opt(&statement, &[&key.key, &key.fingerprint])
        .await?
        .ok_or_else(|| ApiError::Unavailable("idempotency key vanished; retry".into()))?;
    if !row.try_get::<_, bool>(0)? {
        return Err(ApiError::Unprocessable {
            message: "this Idempotency-Key was already used with a different request".into(),
            fields: [("Idempotency-Key".to_string(), "already used with a different body".to_string())].into(),
        });
    }
    let outcome = Outcome::from_stored(row.try_get(1)?)
        .ok_or_else(|| ApiError::internal("stored idempotent status is not an outcome"))?;
    let body: String = row.try_get(2)?;
    Ok(Some(Answer { outcome, body: Bytes::from(body), location: row.try_get(3)? }))
}

async fn remember(tx: &impl GenericClient, key: &str, answer: &Answer) -> Result<(), ApiError> {
    let statement = tx.prepare_cached(statements::REMEMBER_IDEMPOTENCY_KEY).await?;
    let body = String::from_utf8_lossy(&answer.body).into_owned();
    tx.execute(&statement, &[&key, &answer.outcome.stored(), &body, &answer.location]).await?;
    Ok(())
}

/// Deletes expired keys every `PURGE_INTERVAL`, for the life of the server.
pub async fn purge_expired_keys(state: Arc<AppState>) {
    let mut tick = tokio::time::interval(PURGE_INTERVAL);
    loop {
        tick.tick().await;
        match purge_once(&state).await {
            Ok(0) => {}
            Ok(deleted) => tracing::info!(deleted, "expired idempotency keys purged"),
            Err(error) => tracing::warn!(%error, "idempotency purge failed; tried again next interval"),
        }
    }
}

/// One purge, through the same deadline-bearing checkout as every request:
/// the checkout waits at most the write deadline, and the whole exchange is
/// abandoned (its connection leaves the pool) after the statement timeout
/// the server itself enforces on the delete, so a hung primary holds
/// neither this task nor a pooled connection for longer.
async fn purge_once(state: &AppState) -> Result<u64, ApiError> {
    let within = state.config.write.deadline + state.config.pools.statement_timeout;
    let purge = async {
        let mut connection = state.pools.primary.checkout(state.config.write.deadline).await?;
        connection
            .exchange(async |client| {
                let statement = client.prepare_cached(statements::PURGE_IDEMPOTENCY_KEYS).await?;
                Ok(client.execute(&statement, &[&RETENTION_HOURS]).await?)
            })
            .await
    };
    tokio::time::timeout(within, purge)
        .await
        .map_err(|_| ApiError::Unavailable("idempotency purge timed out".into()))?
}
