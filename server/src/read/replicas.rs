//! Where a read runs, and how long it may take.
//!
//! A read never waits on a stuck replica:
//! - each attempt on a node has a deadline (`ATELIER_READ_ATTEMPT_TIMEOUT_MS`,
//!   longer for a read batch: `ATELIER_READ_BATCH_ATTEMPT_TIMEOUT_MS`);
//!   one that misses it, or fails, counts against the node and the read
//!   moves on to the next replica;
//! - replicas are tried fewest-in-flight first, ejected ones not at all;
//! - when an attempt is slow, a second one starts on another replica
//!   (`ATELIER_READ_HEDGE_AFTER_MS`) and the first answer wins; hedges are
//!   a bounded share of reads (`ATELIER_READ_HEDGE_PERCENT_MAX`) and none
//!   start while this server is saturated, when slowness is our own;
//! - when no replica answers, the primary's copy of the read model answers
//!   (`ATELIER_READ_FALLBACK_PRIMARY`), marked `X-Served-By: primary`; as
//!   the last resort it may take whatever is left of the read's deadline,
//!   not just one attempt's (a primary busy with a burst of writes, or
//!   opening a connection on a loaded machine, still answers in time);
//! - the whole read is bounded (`ATELIER_READ_DEADLINE_MS`): then 503.
//!
//! A request carrying `X-Read-After` first waits (up to
//! `ATELIER_READ_AFTER_WAIT_MS`) for a replica that has applied that
//! position, or reads the primary, which certainly has.

use std::sync::Arc;
use std::time::{Duration, Instant};

use atelier_schema::statements;
use futures_util::stream::{FuturesUnordered, StreamExt};
use postgres_types::{PgLsn, ToSql};
use tokio_postgres::Row;

use crate::db::{CheckoutError, InFlight, Node};
use crate::error::{is_unavailable, ApiError};
use crate::metrics::Counter;
use crate::read::ReadAfter;
use crate::state::AppState;

/// How often a read-your-writes request re-asks the replicas.
const READ_AFTER_POLL: Duration = Duration::from_millis(2);

/// The rows of a read and the node that answered.
pub struct Answered {
    pub rows: Vec<Row>,
    pub node: &'static str,
}

impl Answered {
    /// The first row, if any (most reads return one row or none).
    pub fn row(mut self) -> Option<Row> {
        (!self.rows.is_empty()).then(|| self.rows.swap_remove(0))
    }
}

/// Runs a read statement where this request should read, within its
/// deadlines.
pub async fn query(
    state: &AppState,
    read_after: Option<ReadAfter>,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
) -> Result<Answered, ApiError> {
    // The queue at the door: no deadline of this read runs while it waits.
    let _slot = state.reads.admit(&state.metrics).await?;
    admitted(state, read_after, state.config.read.attempt_timeout, sql, params).await
}

/// `query` for a read that already holds its slot at the door (a read
/// batch, which takes its slot before it knows its ids, and whose replica
/// attempts have deadlines of their own: `batch`).
pub(super) async fn admitted(
    state: &AppState,
    read_after: Option<ReadAfter>,
    attempt_timeout: Duration,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
) -> Result<Answered, ApiError> {
    #[cfg(feature = "faults")]
    if !state.config.faults.db_delay.is_zero() {
        tokio::time::sleep(state.config.faults.db_delay).await;
    }
    let nodes = match read_after {
        None => None,
        Some(token) => Some(caught_up(state, token).await),
    };
    // The read's own deadline starts once a node is chosen (the wait for a
    // caught-up replica has a bound of its own).
    let until = Instant::now() + state.config.read.deadline;
    let read = async {
        match nodes {
            None => from_replicas(state, until, attempt_timeout, sql, params).await,
            Some(Some(node)) => match attempt(state, node, state.config.read.attempt_timeout, sql, params).await {
                Ok(rows) => Ok(Answered { rows, node: node.name }),
                Err(error) if is_unavailable(&error) => from_primary(state, until, sql, params, error).await,
                Err(error) => Err(error),
            },
            Some(None) => {
                state.metrics.count(Counter::ReadAfterFallback);
                let rows = attempt(state, &state.pools.primary, remaining(until), sql, params).await?;
                Ok(Answered { rows, node: state.pools.primary.name })
            }
        }
    };
    tokio::time::timeout(state.config.read.deadline, read).await.unwrap_or_else(|_| {
        state.metrics.count(Counter::ReadDeadlineExpiry);
        Err(ApiError::Unavailable("no database answered the read in time".into()))
    })
}

/// The replicas, hedged and failed over, then the primary.
async fn from_replicas(
    state: &AppState,
    until: Instant,
    attempt_timeout: Duration,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
) -> Result<Answered, ApiError> {
    let mut candidates = state.pools.read_candidates().into_iter();
    let mut running = FuturesUnordered::new();
    // Attempts started, in order, with whether they have finished.
    let mut started: Vec<(&Node, bool)> = Vec::new();
    let mut last = ApiError::Unavailable("no read replica is in rotation".into());
    // This server is saturated when its admission queue stands, or half
    // its slots or more are taken: then slowness is our own, not a
    // replica's, so no hedge starts and a busy pool ends the read (below).
    let saturated = state.reads.saturated();
    if let Some(node) = candidates.next() {
        started.push((node, false));
        running.push(attempt_on(state, node, attempt_timeout, sql, params));
    }
    state.hedges.earn();
    let mut hedge_after = state.config.read.hedging();
    while !running.is_empty() {
        let can_hedge = hedge_after.is_some() && candidates.len() > 0;
        let hedge = tokio::time::sleep(hedge_after.unwrap_or(Duration::MAX));
        tokio::select! {
            Some((node, result)) = running.next() => {
                if let Some(entry) = started.iter_mut().find(|(n, _)| std::ptr::eq(*n, node)) {
                    entry.1 = true;
                }
                match result {
                    Ok(rows) => {
                        // An attempt started earlier that has still not
                        // answered lost to this one: its replica is slow,
                        // which counts as a failure (a frozen replica is
                        // otherwise never ejected, its attempts always
                        // abandoned before their deadline).
                        let winner = started.iter().position(|(n, _)| std::ptr::eq(*n, node)).unwrap_or(0);
                        for (slow, _) in started[..winner].iter().filter(|(_, finished)| !finished) {
                            note_failure(state, slow, "lost a hedged read");
                        }
                        return Ok(Answered { rows, node: node.name });
                    }
                    // Every pooled connection busy while this server is
                    // saturated: the other replica's pool is as busy, and
                    // waiting there too only holds the slot longer; the
                    // primary would just take the overflow. Refused. (Busy
                    // pools on a server that is not saturated mean
                    // connections stuck or being reopened on a troubled
                    // node: on to the next replica, then the primary.)
                    Err(error @ ApiError::Busy(_)) if saturated => return Err(error),
                    Err(error) if is_unavailable(&error) => {
                        if let Some(next) = candidates.next() {
                            state.metrics.count(Counter::ReadRetry);
                            started.push((next, false));
                            running.push(attempt_on(state, next, attempt_timeout, sql, params));
                        }
                        last = error;
                    }
                    Err(error) => return Err(error),
                }
            },
            _ = hedge, if can_hedge => {
                if saturated || !state.hedges.spend() {
                    // No second attempt: the first keeps its deadline.
                    state.metrics.count(Counter::ReadHedgeSkipped);
                    hedge_after = None;
                } else if let Some(next) = candidates.next() {
                    state.metrics.count(Counter::ReadHedge);
                    started.push((next, false));
                    running.push(attempt_on(state, next, attempt_timeout, sql, params));
                }
            }
        }
    }
    // Every replica failed, timed out or is out of rotation: they are stuck
    // or gone, which is what the primary's copy is for.
    from_primary(state, until, sql, params, last).await
}

/// The primary's copy of the read model, when no replica answered; or the
/// replicas' error when that fallback is off.
async fn from_primary(
    state: &AppState,
    until: Instant,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
    replicas_error: ApiError,
) -> Result<Answered, ApiError> {
    if !state.config.read.fallback_primary {
        return Err(replicas_error);
    }
    state.metrics.count(Counter::ReadFallbackPrimary);
    let rows = attempt(state, &state.pools.primary, remaining(until), sql, params).await?;
    Ok(Answered { rows, node: state.pools.primary.name })
}

async fn attempt_on<'a>(
    state: &'a AppState,
    node: &'a Node,
    deadline: Duration,
    sql: &'a str,
    params: &'a [&'a (dyn ToSql + Sync)],
) -> (&'a Node, Result<Vec<Row>, ApiError>) {
    (node, attempt(state, node, deadline, sql, params).await)
}

/// What is left of a read's deadline (the outer timeout in `query_one`
/// enforces it; this bounds the last attempt's pool wait).
fn remaining(until: Instant) -> Duration {
    until.saturating_duration_since(Instant::now()).max(Duration::from_millis(1))
}

/// One attempt on one node, within `deadline`; its outcome counts
/// toward the node's health (and may eject a replica), except a wait for a
/// free pooled connection, which is this server's saturation, not the
/// node's fault.
async fn attempt(
    state: &AppState,
    node: &Node,
    deadline: Duration,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
) -> Result<Vec<Row>, ApiError> {
    let started = Instant::now();
    if let Some(pipelines) = &node.pipelines {
        let _in_flight = InFlight::new(node);
        let exchange = async {
            let pipeline = pipelines.get(deadline).await?;
            let statement = pipeline.statement(sql).await?;
            Ok(pipeline.client.query(&statement, params).await?)
        };
        return within_deadline(state, node, deadline, exchange).await;
    }
    let mut connection = match node.checkout(deadline).await {
        Ok(connection) => connection,
        Err(CheckoutError::Busy) => {
            state.metrics.count(Counter::PoolWaitTimeout);
            return Err(ApiError::Busy(format!("{}: every pooled connection stayed busy", node.name)));
        }
        Err(CheckoutError::Node(error)) => {
            note_failure(state, node, &error.to_string());
            return Err(error);
        }
    };
    let exchange = connection.exchange(async |client| {
        let statement = client.prepare_cached(sql).await?;
        Ok(client.query(&statement, params).await?)
    });
    within_deadline(state, node, deadline.saturating_sub(started.elapsed()), exchange).await
}

/// Runs one exchange with `node` for at most `left`, and counts its outcome
/// toward the node's health (a miss is a timeout and a failure).
async fn within_deadline(
    state: &AppState,
    node: &Node,
    left: Duration,
    exchange: impl std::future::Future<Output = Result<Vec<Row>, ApiError>>,
) -> Result<Vec<Row>, ApiError> {
    let mut timed_out = false;
    let result = tokio::time::timeout(left, exchange).await.unwrap_or_else(|_| {
        state.metrics.count(Counter::ReadAttemptTimeout);
        timed_out = true;
        Err(ApiError::Unavailable(format!("{} did not answer in time", node.name)))
    });
    match &result {
        // Slow, and no other replica in rotation: every replica slow at
        // once says more about this machine's load than about the node
        // (measured: under the brief's JMeter plan, ejecting the last slow
        // replica sent its reads to the busy primary, which failed some).
        // A node that errors, or that a faster replica beat, is ejected.
        Err(_) if timed_out && is_last_replica_in_rotation(state, node) => {}
        Err(error) if is_unavailable(error) => note_failure(state, node, &error.to_string()),
        _ => node.record_success(),
    }
    result
}

fn is_last_replica_in_rotation(state: &AppState, node: &Node) -> bool {
    let replicas = &state.pools.replicas;
    replicas.iter().any(|r| std::ptr::eq(r, node))
        && !replicas.iter().any(|r| !std::ptr::eq(r, node) && !r.is_ejected())
}

/// Counts a failure against `node`, ejecting it at the configured number.
fn note_failure(state: &AppState, node: &Node, why: &str) {
    if node.record_failure(state.config.read.eject_after_failures) {
        state.metrics.count(Counter::ReplicaEjected);
        tracing::warn!(node = node.name, why, "ejected from rotation until it answers again");
    }
}

/// A replica in rotation that has applied the write behind `token`, waiting
/// for one up to the configured time; None: read the primary, which holds
/// the same read model and has certainly applied it.
async fn caught_up(state: &AppState, ReadAfter(lsn): ReadAfter) -> Option<&Node> {
    let deadline = Instant::now() + state.config.read.after_wait;
    loop {
        for replica in state.pools.read_candidates() {
            if has_applied(state, replica, lsn).await {
                return Some(replica);
            }
        }
        if Instant::now() + READ_AFTER_POLL > deadline {
            return None;
        }
        tokio::time::sleep(READ_AFTER_POLL).await;
    }
}

async fn has_applied(state: &AppState, replica: &Node, lsn: PgLsn) -> bool {
    match attempt(state, replica, state.config.read.attempt_timeout, statements::REPLICA_HAS_APPLIED, &[&lsn]).await {
        Ok(rows) => rows.first().and_then(|row| row.try_get::<_, bool>(0).ok()).unwrap_or(false),
        _ => false,
    }
}

/// Probes every ejected replica each `ATELIER_PROBE_INTERVAL_MS`, and puts
/// one back in rotation as soon as it answers. Runs for the life of the
/// server.
pub async fn revive_ejected(state: Arc<AppState>) {
    let mut tick = tokio::time::interval(state.config.read.probe_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        for replica in state.pools.replicas.iter().filter(|r| r.is_ejected()) {
            let probe =
                attempt(&state, replica, state.config.read.attempt_timeout, statements::REPLICA_APPLIED_LSN, &[]).await;
            if probe.is_ok() {
                state.metrics.count(Counter::ReplicaRevived);
                tracing::info!(node = replica.name, "answered a probe: back in rotation");
            }
        }
    }
}
