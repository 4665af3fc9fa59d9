//! Stock movements in batches: `POST /skus/:id/movements` without an
//! `Idempotency-Key` is queued here, and the movements that arrive while
//! earlier batches are in flight leave together as one call of
//! `api_record_movements` (sql/write_batch.sql): one transaction, one
//! commit, each touched product's documents rebuilt once. A commit costs
//! far more of the primary's CPU than a movement's statements
//! (docs/benchmarks.md), so fewer commits is what raises the rate.
//!
//! `ATELIER_MOVEMENT_BATCH_LANES` workers take batches off one queue. A
//! worker takes the first movement waiting and every other one queued
//! behind it, up to the batch limit (then, if
//! `ATELIER_MOVEMENT_BATCH_WAIT_US` is set and the batch is not full, it
//! waits that long for more). When it is quiet each movement leaves alone
//! at once; under load the batches grow by themselves. The limit is
//! `ATELIER_MOVEMENT_BATCH_MAX` at most, and smaller when batches run slow
//! (`batch_limit`), so that one slow batch cannot fail dozens of
//! movements at its deadline.
//!
//! Each request keeps its own answer: its status (201, 404 or 409), its
//! body, and the batch's `X-Read-After`, sent only after the batch
//! committed. A batch that fails as a whole (the primary down, the write
//! deadline passed) fails each of its requests the same way; one whose
//! outcome is unknown says so to every request in it. A request whose
//! client has stopped waiting is left out of the next batch (it was told
//! the outcome is unknown, so not applying it is within what it was told).
//! Movements with an `Idempotency-Key` go the single-write way
//! (`write::execute`), where the key's claim commits with the movement.
//! `ATELIER_MOVEMENT_BATCH_MAX=1` turns batching off.

use std::sync::Arc;

use atelier_schema::statements;
use bytes::Bytes;
use tokio::sync::{mpsc, oneshot, Mutex};

use crate::error::ApiError;
use crate::metrics::Counter;
use crate::state::AppState;
use crate::write::batch_limit::BatchLimit;
use crate::write::skus::RecordMovement;
use crate::write::{written, Answer, Written};

/// One movement waiting for its batch, and where its answer goes.
struct Pending {
    movement: RecordMovement,
    reply: oneshot::Sender<Result<Written, ApiError>>,
}

/// The queue's sending end, in `AppState`; `None` when batching is off.
/// And the batch limit the workers share.
pub(crate) struct Movements {
    queue: Option<mpsc::Sender<Pending>>,
    limit: BatchLimit,
}

/// The queue's receiving end, for `run`.
pub(crate) struct MovementQueue(mpsc::Receiver<Pending>);

impl Movements {
    /// The queue for `config`'s batch size (none when it is 1). It holds at
    /// most a full batch per lane, four times over; a movement that finds
    /// it full waits within its deadline.
    pub fn new(config: &crate::config::Config) -> (Movements, Option<MovementQueue>) {
        let limit = BatchLimit::new(config.write.movement_batch_target, config.write.movement_batch_max);
        if config.write.movement_batch_max <= 1 {
            return (Movements { queue: None, limit }, None);
        }
        let (sender, receiver) = mpsc::channel(config.write.movement_batch_max * config.write.movement_batch_lanes * 4);
        (Movements { queue: Some(sender), limit }, Some(MovementQueue(receiver)))
    }

    /// The most movements the next batch may take (for /metrics).
    pub fn limit(&self) -> usize {
        self.limit.get()
    }
}

/// Records `movement`: in the next batch, or alone when batching is off.
pub(crate) async fn record(state: &AppState, movement: RecordMovement) -> Result<Written, ApiError> {
    let Some(queue) = &state.movements.queue else {
        return super::execute(state, &movement, None).await;
    };
    // The same bound as a single write: the wait at the door (here, the
    // queue and the batch's own admission) and the write, within the
    // write deadline.
    let limit = state.config.write.deadline;
    let (reply, answer) = oneshot::channel();
    let waited = tokio::time::timeout(limit, async {
        queue
            .send(Pending { movement, reply })
            .await
            .map_err(|_| ApiError::Unavailable("the movement queue is closed (the server is stopping)".into()))?;
        answer.await.map_err(|_| ApiError::OutcomeUnknown("the movement's batch ended without an answer".into()))?
    })
    .await;
    waited.unwrap_or_else(|_| {
        state.metrics.count(Counter::WriteDeadlineExpiry);
        Err(ApiError::OutcomeUnknown("the primary did not answer within the write deadline".into()))
    })
}

/// The batch workers: `ATELIER_MOVEMENT_BATCH_LANES` of them on one queue,
/// until the server stops.
pub(crate) async fn run(state: Arc<AppState>, queue: MovementQueue) {
    let queue = Arc::new(Mutex::new(queue.0));
    let workers: Vec<_> = (0..state.config.write.movement_batch_lanes)
        .map(|_| tokio::spawn(work(state.clone(), queue.clone())))
        .collect();
    for worker in workers {
        let _ = worker.await;
    }
}

async fn work(state: Arc<AppState>, queue: Arc<Mutex<mpsc::Receiver<Pending>>>) {
    while let Some(mut batch) = next_batch(&state, &queue).await {
        // Those whose client stopped waiting were told "outcome unknown".
        batch.retain(|p| !p.reply.is_closed());
        if batch.is_empty() {
            continue;
        }
        state.metrics.count(Counter::MovementBatch);
        state.metrics.count_n(Counter::MovementBatched, batch.len() as u64);
        let movements: Vec<&RecordMovement> = batch.iter().map(|p| &p.movement).collect();
        let started = std::time::Instant::now();
        let outcome = execute(&state, &movements).await;
        // A batch that failed fast (the primary refused it, or is gone)
        // says nothing of how long a batch takes; one whose outcome is
        // unknown (its deadline passed, or its connection was lost) does,
        // as a lower bound.
        if matches!(outcome, Ok(_) | Err(ApiError::OutcomeUnknown(_))) {
            state.movements.limit.observe(movements.len(), started.elapsed());
        }
        match outcome {
            Ok(answers) => {
                for (pending, answer) in batch.into_iter().zip(answers) {
                    let _ = pending.reply.send(answer);
                }
            }
            Err(error) => {
                for pending in batch {
                    let _ = pending.reply.send(Err(error.clone()));
                }
            }
        }
    }
}

/// The first movement waiting and those queued behind it, up to a batch.
async fn next_batch(state: &AppState, queue: &Mutex<mpsc::Receiver<Pending>>) -> Option<Vec<Pending>> {
    let mut queue = queue.lock().await;
    let mut batch = vec![queue.recv().await?];
    let max = state.movements.limit.get();
    while batch.len() < max {
        match queue.try_recv() {
            Ok(pending) => batch.push(pending),
            Err(_) => break,
        }
    }
    let wait = state.config.write.movement_batch_wait;
    if !wait.is_zero() {
        let until = tokio::time::Instant::now() + wait;
        while batch.len() < max {
            match tokio::time::timeout_at(until, queue.recv()).await {
                Ok(Some(pending)) => batch.push(pending),
                _ => break,
            }
        }
    }
    Some(batch)
}

/// One batch on the primary, in the envelope of a single write
/// (`write::within_deadline`: a slot at the door, the deadline, the whole
/// batch run again after a deadlock, since it rolled back whole). The
/// answers are in the batch's order.
async fn execute(state: &AppState, movements: &[&RecordMovement]) -> Result<Vec<Result<Written, ApiError>>, ApiError> {
    super::within_deadline(state, || attempt_batch(state, movements)).await
}

/// The batch's call and the WAL position after its commit, pipelined on
/// one connection (as a single write without a key).
async fn attempt_batch(
    state: &AppState,
    movements: &[&RecordMovement],
) -> Result<Vec<Result<Written, ApiError>>, ApiError> {
    let skus: Vec<i64> = movements.iter().map(|m| m.sku_id).collect();
    let deltas: Vec<i64> = movements.iter().map(|m| m.delta).collect();
    let reasons: Vec<Option<&str>> = movements.iter().map(|m| m.reason.as_deref()).collect();
    let mut connection = state.pools.primary.checkout(state.config.write.deadline).await?;
    connection
        .exchange(async |client| {
            let call = client.prepare_cached(statements::RECORD_MOVEMENTS).await?;
            let position = client.prepare_cached(statements::PRIMARY_WAL_INSERT_LSN).await?;
            let params: [&(dyn postgres_types::ToSql + Sync); 3] = [&skus, &deltas, &reasons];
            let (rows, lsn) = tokio::join!(client.query(&call, &params), client.query_one(&position, &[]));
            let (rows, read_after) = (rows?, lsn?.try_get(0)?);
            if rows.len() != movements.len() {
                return Err(ApiError::internal(format!(
                    "api_record_movements answered {} rows for {} movements",
                    rows.len(),
                    movements.len()
                )));
            }
            rows.iter()
                .map(|row| {
                    let status: i16 = row.try_get(0)?;
                    let body: String = row.try_get(1)?;
                    Ok(match status {
                        201 => Ok(written(Answer::created(Bytes::from(body), None), read_after)),
                        404 => Err(ApiError::NotFound(body)),
                        409 => Err(ApiError::Conflict(body)),
                        other => Err(ApiError::internal(format!("api_record_movements answered status {other}"))),
                    })
                })
                .collect()
        })
        .await
}
