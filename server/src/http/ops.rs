//! The operational endpoints: /healthz, /readyz and /metrics.

use std::time::Duration;

use atelier_schema::statements;
use bytes::Bytes;
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::StatusCode;
use postgres_types::PgLsn;

use futures_util::future::join_all;

use atelier_exposition::{labels, Exposition};

use crate::db::Node;
use crate::http::respond::{self, HttpResponse};
use crate::state::AppState;

/// How long each health probe may take.
const PROBE_TIMEOUT: Duration = Duration::from_secs(1);

/// GET /healthz: 200 while the process is up.
pub fn healthz() -> HttpResponse {
    respond::json(StatusCode::OK, Bytes::from_static(b"{\"status\":\"up\"}"))
}

/// GET /readyz: 200 when the primary and at least one replica answer, that
/// replica's subscription not known to hold no tables; it names the node that answers as
/// the primary (after a failover, the new one).
pub async fn readyz(state: &AppState) -> HttpResponse {
    let ((primary, replicas), node) =
        tokio::join!(health(state), probe::<String>(&state.pools.primary, statements::PRIMARY_NODE));
    // Writes answer 503 until the live tokens have been loaded once: a
    // balancer should not send this server traffic before then.
    let tokens = state.auth.held();
    // A replica known to be subscribed to no tables does not count; one
    // whose schema predates the question (no V12 yet) still does.
    let ready = primary.is_some() && replicas.iter().any(|r| r.up && r.subscribed != Some(false)) && tokens.is_some();
    let body = serde_json::json!({
        "ready": ready,
        "primary": { "up": primary.is_some(), "node": node },
        "tokens": { "loaded": tokens.is_some(), "live": tokens.unwrap_or(0) },
        "replicas": replicas.iter().map(|r| serde_json::json!({
            "name": r.name, "up": r.up, "subscribed": r.subscribed, "lag_bytes": r.lag_bytes,
        })).collect::<Vec<_>>(),
    });
    let status = if ready { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    let response = respond::json(status, serde_json::to_vec(&body).unwrap_or_default());
    if ready {
        response
    } else {
        respond::with_retry_after(response)
    }
}

/// GET /metrics: request counters and latencies, admission, pool use,
/// the cache, replica lag. Each part adds its families; one renderer
/// (atelier_exposition) writes the text.
pub async fn metrics(state: &AppState) -> HttpResponse {
    let mut out = Exposition::default();
    state.metrics.expose(&mut out);
    let mut in_flight = out.gauge("atelier_node_in_flight", "Requests running on a database node now.");
    for node in state.pools.all() {
        in_flight.integer(labels([("node", node.name)]), node.in_flight());
    }
    expose_admission(state, &mut out);
    out.gauge(
        "atelier_movement_batch_limit",
        "Most stock movements the next batch may take (smaller after slow batches).",
    )
    .integer(Vec::new(), state.movements.limit());
    let mut rotation =
        out.gauge("atelier_replica_in_rotation", "1 when reads are sent to the replica, 0 while it is ejected.");
    for replica in &state.pools.replicas {
        rotation.integer(labels([("replica", replica.name)]), i64::from(!replica.is_ejected()));
    }
    let statuses: Vec<_> = state.pools.all().map(|pool| (pool.name, pool.pool.status())).collect();
    let mut connections = out.gauge("atelier_pool_connections", "Pooled connections by pool and state.");
    for (name, status) in &statuses {
        connections.integer(labels([("pool", name), ("state", "open")]), status.size);
        connections.integer(labels([("pool", name), ("state", "idle")]), status.available);
        connections.integer(labels([("pool", name), ("state", "max")]), status.max_size);
    }
    let mut waiting = out.gauge("atelier_pool_waiting", "Requests waiting for a pooled connection.");
    for (name, status) in &statuses {
        waiting.integer(labels([("pool", name)]), status.waiting);
    }
    if let Some(cache) = &state.cache {
        cache.expose(&mut out);
    }
    // Both probes of every node at once: a stuck node costs one probe
    // timeout, not two.
    let queues = join_all(state.pools.replicas.iter().map(|r| probe::<f64>(r, statements::REPLICA_NOTICE_QUEUE_USAGE)));
    let ((_, replicas), queues) = tokio::join!(health(state), queues);
    let mut usage = out.gauge(
        "atelier_replica_notice_queue_usage",
        "Share of the replica's NOTIFY queue in use (0-1); at 1 its change triggers fail and replication stops.",
    );
    for (replica, queue) in state.pools.replicas.iter().zip(queues) {
        if let Some(queue) = queue {
            usage.float(labels([("replica", replica.name)]), queue);
        }
    }
    let mut up = out.gauge("atelier_replica_up", "1 when the replica answered the health probe.");
    for replica in &replicas {
        up.integer(labels([("replica", replica.name)]), i64::from(replica.up));
    }
    let mut lag = out.gauge("atelier_replica_lag_bytes", "Primary WAL bytes since the replica's last applied commit.");
    for replica in &replicas {
        if let Some(bytes) = replica.lag_bytes {
            lag.integer(labels([("replica", replica.name)]), bytes);
        }
    }
    let mut subscribed = out.gauge(
        "atelier_replica_subscribed",
        "1 when the replica's subscription holds the read model's tables, 0 when it holds none (it will stay empty: re-provision it).",
    );
    for replica in &replicas {
        if let Some(holds) = replica.subscribed {
            subscribed.integer(labels([("replica", replica.name)]), i64::from(holds));
        }
    }
    let mut response = respond::json(StatusCode::OK, out.render());
    response.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static(atelier_exposition::CONTENT_TYPE));
    response
}

/// One replica as /readyz and /metrics report it.
struct ReplicaHealth {
    name: &'static str,
    up: bool,
    /// Whether its subscription holds any table; None when unknown (it
    /// did not answer).
    subscribed: Option<bool>,
    lag_bytes: Option<u64>,
}

/// Probes the primary and every replica at once (so a stuck node costs one
/// probe timeout, not one each): up, and each replica's lag in bytes of
/// the primary's WAL since the last commit it applied (it also counts WAL
/// the primary wrote for things that are not replicated).
async fn health(state: &AppState) -> (Option<PgLsn>, Vec<ReplicaHealth>) {
    let primary = probe::<PgLsn>(&state.pools.primary, statements::PRIMARY_WAL_LSN);
    let replicas =
        join_all(state.pools.replicas.iter().map(|r| probe::<Option<PgLsn>>(r, statements::REPLICA_APPLIED_LSN)));
    let subscribed = join_all(state.pools.replicas.iter().map(|r| probe::<bool>(r, statements::REPLICA_SUBSCRIBED)));
    let (primary_lsn, applied, subscribed) = tokio::join!(primary, replicas, subscribed);
    let replicas = state
        .pools
        .replicas
        .iter()
        .zip(applied.into_iter().zip(subscribed))
        .map(|(replica, (applied, subscribed))| {
            let up = applied.is_some();
            let lag_bytes = match (primary_lsn, applied.flatten()) {
                (Some(p), Some(r)) => Some(u64::from(p).saturating_sub(u64::from(r))),
                _ => None,
            };
            ReplicaHealth { name: replica.name, up, subscribed, lag_bytes }
        })
        .collect();
    (primary_lsn, replicas)
}

async fn probe<T: for<'a> tokio_postgres::types::FromSql<'a>>(node: &Node, sql: &str) -> Option<T> {
    let attempt = async {
        let mut connection = node.checkout(PROBE_TIMEOUT).await?;
        connection
            .exchange(async |client| {
                let statement = client.prepare_cached(sql).await?;
                Ok(client.query_one(&statement, &[]).await?.try_get(0)?)
            })
            .await
    };
    tokio::time::timeout(PROBE_TIMEOUT, attempt).await.ok()?.ok()
}

/// The admission queues (admission.rs): their delay histograms, refusals by
/// reason, and their state now, labelled queue="read" or "write".
fn expose_admission(state: &AppState, out: &mut Exposition) {
    let queues = [("read", &state.reads), ("write", &state.writes)];
    let reports = queues.map(|(queue, admission)| (queue, admission.report()));
    let mut delay =
        out.histogram("atelier_admission_queue_seconds", "How long admitted requests waited for a database slot.");
    for (queue, report) in &reports {
        delay.observed(labels([("queue", queue)]), report.buckets.clone(), report.sum_seconds, report.count);
    }
    let mut refused =
        out.counter("atelier_admission_refused", "Requests refused a database slot (503), by queue and reason.");
    for (queue, report) in &reports {
        refused.count(labels([("queue", queue), ("reason", "timeout")]), report.refused_timeout);
        refused.count(labels([("queue", queue), ("reason", "queue_full")]), report.refused_full);
    }
    let gauges: [(&'static str, &'static str, Reading); 4] = [
        (
            "atelier_admission_limit",
            "Requests that may use the databases at once (ATELIER_READ_INFLIGHT_MAX, ATELIER_WRITE_INFLIGHT_MAX).",
            |a| a.limit(),
        ),
        ("atelier_admission_in_use", "Database slots taken now.", |a| a.occupancy().0),
        ("atelier_admission_waiting", "Requests waiting for a database slot now.", |a| a.occupancy().1),
        (
            "atelier_admission_overloaded",
            "1 while the queue stands above its target (CoDel): waits are short, newest first.",
            |a| usize::from(a.overloaded()),
        ),
    ];
    for (name, help, value) in gauges {
        let mut family = out.gauge(name, help);
        for (queue, admission) in queues {
            family.integer(labels([("queue", queue)]), value(admission));
        }
    }
}

/// One of an admission queue's gauges, read now.
type Reading = fn(&crate::admission::Admission) -> usize;
