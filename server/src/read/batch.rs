//! Document reads in batches: a product document the cache does not hold
//! (`GET /products/:id`, `/styles`, `/related`, without `X-Read-After`) is
//! queued here by kind, and the misses that arrive while a batch waits at
//! the read door leave with it as one statement, `... where product_id =
//! any($1)` (schema's `product_documents`).
//!
//! Why: under the brief's JMeter plan at 1,000,000 products four reads in
//! five miss the cache, and each miss waited ~40 ms at the door for one of
//! the 8 read slots while the replicas, on cores shared with the load
//! generator, answered one primary-key lookup per slot at a time
//! (docs/benchmarks.md). A statement costs a replica a bind, an executor
//! start, a commit and a flush whatever it returns, and a wake-up on a
//! saturated machine; thirty-two ids in one statement cost little more
//! than one. So the slots stay 8 and each carries up to
//! `ATELIER_READ_BATCH_MAX` documents.
//!
//! The lanes: each kind has `ATELIER_READ_INFLIGHT_MAX` workers on one
//! bounded queue. A worker takes the first read waiting, then its slot at
//! the door (where it waits like any read, refused like any read), and only
//! then every read queued behind it, up to the batch limit (refused with
//! it, when the door refuses it). When it is
//! quiet a read leaves alone at once, so a batch adds no wait; under load
//! the batches grow by themselves while the slots are taken. The batch
//! runs as any read does (`replicas::admitted`: hedged, failed over,
//! within the read deadline), its attempts' deadline in proportion to its
//! size (`ATELIER_READ_BATCH_ATTEMPT_TIMEOUT_MS` for a full batch), and
//! each read gets its own row, or 404 when
//! its product has none, or the batch's error.
//!
//! The rules of the cache hold unchanged: each read takes its cache
//! ticket before it is queued, and a batch's statement starts only after
//! it has taken its reads, so it starts after every ticket. A read whose
//! client stopped waiting is left out. A read that finds the queue full
//! reads alone (`replicas::query`), through the door as before. A read
//! waits for its batch at most what it could have waited alone
//! (`ATELIER_QUEUE_WAIT_MS` and `ATELIER_READ_DEADLINE_MS`), then 503.
//! The door sees batches: the read queue's delay histogram and refusals
//! count batches, `atelier_requests_shed` counts requests.
//! `ATELIER_READ_BATCH_MAX=1` turns batching off.

use std::collections::HashMap;
use std::sync::Arc;

use atelier_schema::{statements, DocumentKind};
use bytes::Bytes;
use tokio::sync::{mpsc, oneshot, Mutex};

use super::{replicas, ReadAfter};
use crate::db::RawText;
use crate::error::ApiError;
use crate::metrics::Counter;
use crate::state::AppState;

/// One product's document, as a batch read it.
pub(crate) struct Fetched {
    pub body: Bytes,
    pub version: i64,
    pub node: &'static str,
}

/// One read waiting for its batch, and where its answer goes.
struct Pending {
    id: i64,
    reply: oneshot::Sender<Result<Fetched, ApiError>>,
}

/// The queues' sending ends, in `AppState` (empty when batching is off).
pub(crate) struct ReadBatches {
    queues: Vec<(DocumentKind, mpsc::Sender<Pending>)>,
}

/// The receiving ends, for `run`.
pub(crate) struct BatchQueues(Vec<(DocumentKind, mpsc::Receiver<Pending>)>);

impl ReadBatches {
    /// The queues for `config` (none when the batch limit is 1). Each holds
    /// four full batches per lane; a read that finds its queue full reads
    /// alone.
    pub fn new(config: &crate::config::Config) -> (ReadBatches, Option<BatchQueues>) {
        let max = config.read.batch_max;
        if max <= 1 {
            return (ReadBatches { queues: Vec::new() }, None);
        }
        let capacity = max.saturating_mul(config.admission.read_inflight_max).saturating_mul(4).max(1);
        // A queue for each kind read one product at a time.
        let (senders, receivers) = DocumentKind::ALL
            .into_iter()
            .filter(|kind| statements::product_documents(*kind).is_some())
            .map(|kind| {
                let (sender, receiver) = mpsc::channel(capacity);
                ((kind, sender), (kind, receiver))
            })
            .unzip();
        (ReadBatches { queues: senders }, Some(BatchQueues(receivers)))
    }

    fn queue(&self, kind: DocumentKind) -> Option<&mpsc::Sender<Pending>> {
        self.queues.iter().find(|(k, _)| *k == kind).map(|(_, queue)| queue)
    }
}

/// `kind`'s document of product `id`: in the next batch of its kind, or
/// alone when batching is off, the queue is full, or the read must follow
/// `read_after` (a read-your-writes request chooses its own node).
pub(crate) async fn read(
    state: &AppState,
    kind: DocumentKind,
    id: i64,
    read_after: Option<ReadAfter>,
) -> Result<Fetched, ApiError> {
    let queue = state.batches.queue(kind).filter(|_| read_after.is_none());
    let (reply, answer) = oneshot::channel();
    match queue.map(|queue| queue.try_send(Pending { id, reply })) {
        // Bounded as a read alone is: its wait at the door, then its read.
        Some(Ok(())) => {
            match tokio::time::timeout(state.config.admission.queue_wait + state.config.read.deadline, answer).await {
                Ok(answered) => {
                    answered.map_err(|_| ApiError::Unavailable("the read's batch ended without an answer".into()))?
                }
                Err(_) => {
                    state.metrics.count(Counter::Shed);
                    Err(ApiError::Busy("the read's batch did not start in time".into()))
                }
            }
        }
        // Off, full, or closed (the server is stopping): read alone.
        _ => alone(state, kind, id, read_after).await,
    }
}

/// One document read on its own, through the door.
async fn alone(
    state: &AppState,
    kind: DocumentKind,
    id: i64,
    read_after: Option<ReadAfter>,
) -> Result<Fetched, ApiError> {
    let sql = statements::product_document(kind)
        .ok_or_else(|| ApiError::internal(format!("{} documents are not read one by one", kind.name())))?;
    let answered = replicas::query(state, read_after, sql, &[&id]).await?;
    let node = answered.node;
    let row = answered.row().ok_or_else(|| ApiError::NotFound(format!("product {id} not found")))?;
    let RawText(body) = row.try_get(0)?;
    Ok(Fetched { body, version: row.try_get(1)?, node })
}

/// The lanes: `ATELIER_READ_INFLIGHT_MAX` per kind, until the server stops
/// (aborting this task aborts them: a `JoinSet` aborts its tasks when
/// dropped).
pub(crate) async fn run(state: Arc<AppState>, queues: BatchQueues) {
    let lanes = state.config.admission.read_inflight_max;
    let mut workers = tokio::task::JoinSet::new();
    for (kind, receiver) in queues.0 {
        let receiver = Arc::new(Mutex::new(receiver));
        for _ in 0..lanes {
            workers.spawn(lane(state.clone(), kind, receiver.clone()));
        }
    }
    while workers.join_next().await.is_some() {}
}

async fn lane(state: Arc<AppState>, kind: DocumentKind, queue: Arc<Mutex<mpsc::Receiver<Pending>>>) {
    let Some(sql) = statements::product_documents(kind) else { return };
    loop {
        // The lock is held only while a lane waits for the first read: a
        // lane that cannot take it below knows the queue was empty.
        let Some(first) = queue.lock().await.recv().await else { return };
        let admitted = state.reads.admit(&state.metrics).await;
        let mut batch = vec![first];
        if let Ok(mut waiting) = queue.try_lock() {
            while batch.len() < state.config.read.batch_max {
                match waiting.try_recv() {
                    Ok(pending) => batch.push(pending),
                    Err(_) => break,
                }
            }
        }
        let slot = match admitted {
            Ok(slot) => slot,
            // Refused at the door: so is every read queued behind the
            // first (they would wait as long), each counted as shed.
            Err(error) => {
                state.metrics.count_n(Counter::Shed, batch.len() as u64 - 1);
                answer(batch, Err(error));
                continue;
            }
        };
        // Those whose client stopped waiting need no answer.
        batch.retain(|p| !p.reply.is_closed());
        if batch.is_empty() {
            continue;
        }
        state.metrics.count(Counter::ReadBatch);
        state.metrics.count_n(Counter::ReadBatched, batch.len() as u64);
        let ids: Vec<i64> = batch.iter().map(|p| p.id).collect();
        let attempt_timeout = state.config.read.attempt_timeout_for(ids.len());
        let answered = replicas::admitted(&state, None, attempt_timeout, sql, &[&ids]).await;
        drop(slot);
        answer(batch, answered);
    }
}

/// Sends each read of `batch` its row, a 404, or the batch's error.
fn answer(batch: Vec<Pending>, answered: Result<replicas::Answered, ApiError>) {
    let (node, found) = match answered.and_then(|answered| Ok((answered.node, by_id(&answered.rows)?))) {
        Ok(found) => found,
        Err(error) => {
            for pending in batch {
                let _ = pending.reply.send(Err(error.clone()));
            }
            return;
        }
    };
    for Pending { id, reply } in batch {
        let answer = match found.get(&id) {
            Some((body, version)) => Ok(Fetched { body: body.clone(), version: *version, node }),
            None => Err(ApiError::NotFound(format!("product {id} not found"))),
        };
        let _ = reply.send(answer);
    }
}

/// A batch's rows (id, document, version) by id.
fn by_id(rows: &[tokio_postgres::Row]) -> Result<HashMap<i64, (Bytes, i64)>, ApiError> {
    rows.iter()
        .map(|row| {
            let RawText(body) = row.try_get(1)?;
            Ok((row.try_get(0)?, (body, row.try_get(2)?)))
        })
        .collect()
}
