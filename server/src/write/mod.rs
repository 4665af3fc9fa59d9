//! The write side: every write endpoint of the contract, on the primary.
//!
//! A write is one call of one `api_*` SQL function (sql/write_api.sql),
//! which holds the rules and answers the response body. Each resource's
//! file (`products`, `styles`, `skus`, `related`) parses a request body into
//! a typed value (with `input`) and says which function it calls with which
//! parameters; this module runs it:
//!
//! - without an `Idempotency-Key`, the call runs as one autocommit
//!   statement, pipelined with the query for the primary's WAL position on
//!   the same connection, so a write costs one round trip;
//! - with a key, the key's claim, the call and the stored answer commit in
//!   one transaction (`idempotency`);
//! - a deadlock or serialization failure rolled the whole write back, so it
//!   is run again, a bounded number of times.
//!
//! Stock movements without a key are batched (`batch`): the movements that
//! arrive together are one call of one function, in one transaction.
//!
//! The answer carries `X-Read-After`: the WAL position right after the
//! commit, which a replica has passed once it has applied this write.

pub mod batch;
mod batch_limit;
mod settings;
pub use settings::WriteSettings;
pub mod idempotency;
pub(crate) mod input;
pub mod products;
pub mod related;
pub mod skus;
pub mod styles;

use std::future::Future;
use std::time::Duration;

use atelier_schema::statements;
use bytes::Bytes;
use deadpool_postgres::GenericClient;
use postgres_types::{PgLsn, ToSql};
use tokio_postgres::Row;

use crate::db::RawText;
use crate::error::ApiError;
use crate::metrics::Counter;
use crate::state::AppState;
pub use idempotency::Idempotency;

/// The parameters of a write function call, owned by the call.
pub type Params = Vec<Box<dyn ToSql + Sync + Send>>;

/// A parsed write request.
pub trait Write: Sync {
    /// The function call it makes (from `atelier_schema::statements`).
    const STATEMENT: &'static str;
    /// Its parameters, in the order of the statement's placeholders.
    fn params(&self) -> Params;
    /// The answer, from the row the function returned.
    fn answer(&self, row: &Row) -> Result<Answer, ApiError>;
}

/// What a DELETE by id removes: products, styles and skus differ only in
/// the function they call.
pub trait Deletable {
    const STATEMENT: &'static str;
}

/// DELETE of one `T` by id: `204`, or the function's own `404`.
pub struct Delete<T>(i64, std::marker::PhantomData<fn() -> T>);

impl<T> Delete<T> {
    pub fn new(id: i64) -> Delete<T> {
        Delete(id, std::marker::PhantomData)
    }
}

impl<T: Deletable> Write for Delete<T> {
    const STATEMENT: &'static str = T::STATEMENT;

    fn params(&self) -> Params {
        vec![Box::new(self.0)]
    }

    fn answer(&self, _: &Row) -> Result<Answer, ApiError> {
        Ok(Answer::no_content())
    }
}

/// What a committed write did; `http/` says it with a status (200, 201,
/// 204). An idempotency key remembers it as that number (`stored`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Changed, and the body is the resource as it is now.
    Updated,
    /// Made, and the body is the new resource.
    Created,
    /// Deleted: no body.
    Deleted,
}

impl Outcome {
    const ALL: [Outcome; 3] = [Outcome::Updated, Outcome::Created, Outcome::Deleted];

    /// How an idempotency key stores it: the status its answer had.
    pub fn stored(self) -> i16 {
        match self {
            Outcome::Updated => 200,
            Outcome::Created => 201,
            Outcome::Deleted => 204,
        }
    }

    /// The outcome an idempotency key stored, if it is one.
    pub fn from_stored(stored: i16) -> Option<Outcome> {
        Outcome::ALL.into_iter().find(|outcome| outcome.stored() == stored)
    }
}

/// A write's answer before headers: what it did, the body, and `Location`
/// when it created something addressable.
pub struct Answer {
    pub outcome: Outcome,
    pub body: Bytes,
    pub location: Option<String>,
}

impl Answer {
    pub fn ok(body: Bytes) -> Answer {
        Answer { outcome: Outcome::Updated, body, location: None }
    }

    pub fn created(body: Bytes, location: Option<String>) -> Answer {
        Answer { outcome: Outcome::Created, body, location }
    }

    pub fn no_content() -> Answer {
        Answer { outcome: Outcome::Deleted, body: Bytes::new(), location: None }
    }
}

/// A committed write's answer and its read-after token.
pub struct Written {
    pub outcome: Outcome,
    pub body: Bytes,
    pub location: Option<String>,
    pub read_after: PgLsn,
}

/// Attempts of one write when the database reports a deadlock or a
/// serialization failure, before the client gets 503. The write functions
/// lock in one order, so these are rare; a few attempts are plenty.
const WRITE_ATTEMPTS_MAX: u32 = 5;

/// Runs `write` on the primary, with its idempotency key if it has one,
/// within the write deadline (`within_deadline`).
pub async fn execute<W: Write>(
    state: &AppState,
    write: &W,
    idempotency: Option<&Idempotency>,
) -> Result<Written, ApiError> {
    within_deadline(state, || async move {
        match idempotency {
            None => attempt_alone(state, write).await,
            Some(key) => idempotency::attempt(state, write, key).await,
        }
    })
    .await
}

/// The envelope of every write (a single one, or a batch of movements):
/// `attempt`, run again after a deadlock or serialization failure, within
/// the write deadline. The queue at the door comes first: a write waits for
/// a slot at most half its deadline (the write queue's bound,
/// AdmissionSettings::write), then gets what is left of it: a client hears
/// within the deadline, whatever the primary does (docs/api.md). When the deadline passes the outcome is unknown (the primary may
/// still commit what it was sent), so the answer says to retry with the
/// same Idempotency-Key, which applies it at most once.
pub(crate) async fn within_deadline<T, F: Future<Output = Result<T, ApiError>>>(
    state: &AppState,
    attempt: impl Fn() -> F,
) -> Result<T, ApiError> {
    let deadline = state.config.write.deadline;
    let arrived = std::time::Instant::now();
    let _slot = state.writes.admit(&state.metrics).await?;
    let left = deadline.saturating_sub(arrived.elapsed()).max(deadline / 2);
    tokio::time::timeout(left, retrying(state, attempt)).await.unwrap_or_else(|_| {
        state.metrics.count(Counter::WriteDeadlineExpiry);
        Err(ApiError::OutcomeUnknown("the primary did not answer within the write deadline".into()))
    })
}

/// `attempt` until it does not report contention, at most
/// WRITE_ATTEMPTS_MAX times (it rolled back whole, so it can run again).
async fn retrying<T, F: Future<Output = Result<T, ApiError>>>(
    state: &AppState,
    attempt: impl Fn() -> F,
) -> Result<T, ApiError> {
    let mut attempts = 1;
    loop {
        match attempt().await {
            Err(ApiError::Contention(detail)) if attempts < WRITE_ATTEMPTS_MAX => {
                tracing::debug!(%detail, attempts, "write retried");
                state.metrics.count(Counter::WriteRetry);
                tokio::time::sleep(retry_backoff(attempts)).await;
                attempts += 1;
            }
            other => return other,
        }
    }
}

/// One attempt of a write without a key: the call in autocommit and the WAL
/// position after it, pipelined. Both statements are prepared first, so the
/// call is sent before the position query and commits before it runs.
async fn attempt_alone<W: Write>(state: &AppState, write: &W) -> Result<Written, ApiError> {
    let mut connection = state.pools.primary.checkout(state.config.write.deadline).await?;
    connection
        .exchange(async |client| {
            let call = client.prepare_cached(W::STATEMENT).await?;
            let position = client.prepare_cached(statements::PRIMARY_WAL_INSERT_LSN).await?;
            let params = write.params();
            let params = as_refs(&params);
            let (row, lsn) = tokio::join!(client.query_one(&call, &params), client.query_one(&position, &[]));
            let answer = write.answer(&row?)?;
            Ok(written(answer, lsn?.try_get(0)?))
        })
        .await
}

/// Runs the write's call on `client` (a connection or a transaction).
async fn call<W: Write>(client: &impl GenericClient, write: &W) -> Result<Answer, ApiError> {
    let statement = client.prepare_cached(W::STATEMENT).await?;
    let params = write.params();
    let row = client.query_one(&statement, &as_refs(&params)).await?;
    write.answer(&row)
}

/// The primary's WAL position now (after a commit).
async fn wal_position(client: &impl GenericClient) -> Result<PgLsn, ApiError> {
    let statement = client.prepare_cached(statements::PRIMARY_WAL_INSERT_LSN).await?;
    Ok(client.query_one(&statement, &[]).await?.try_get(0)?)
}

fn written(answer: Answer, read_after: PgLsn) -> Written {
    Written { outcome: answer.outcome, body: answer.body, location: answer.location, read_after }
}

fn as_refs(params: &Params) -> Vec<&(dyn ToSql + Sync)> {
    params.iter().map(|p| p.as_ref() as &(dyn ToSql + Sync)).collect()
}

/// A short, growing, jittered pause before attempt `attempt + 1`, so two
/// writers that collided do not collide again in step.
fn retry_backoff(attempt: u32) -> Duration {
    use std::hash::{BuildHasher, Hasher};
    let jitter_us = std::collections::hash_map::RandomState::new().build_hasher().finish() % 1000;
    Duration::from_micros(u64::from(attempt) * 1000 + jitter_us)
}

/// A response body a write function returned, as it is.
fn body_of(row: &Row, column: usize) -> Result<Bytes, ApiError> {
    let body: Option<RawText> = row.try_get(column)?;
    body.map(|RawText(bytes)| bytes).ok_or_else(|| ApiError::internal("a write function answered no body"))
}

#[cfg(test)]
mod outcome_tests {
    use super::Outcome;

    #[test]
    fn a_stored_outcome_reads_back_as_itself_and_nothing_else_reads() {
        for outcome in Outcome::ALL {
            assert_eq!(Outcome::from_stored(outcome.stored()), Some(outcome));
        }
        // The statuses stored before outcomes existed are these numbers.
        assert_eq!(Outcome::ALL.map(Outcome::stored), [200, 201, 204]);
        assert_eq!(Outcome::from_stored(500), None);
    }
}
