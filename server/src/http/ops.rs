//! The operational endpoints: /healthz, /readyz and /metrics.

use std::fmt::Write as _;
use std::time::Duration;

use atelier_schema::statements;
use bytes::Bytes;
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::StatusCode;
use postgres_types::PgLsn;

use futures_util::future::join_all;

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

/// GET /metrics: request counters and latencies, pool use, replica lag.
pub async fn metrics(state: &AppState) -> HttpResponse {
    let mut out = String::with_capacity(16 * 1024);
    state.metrics.render(&mut out);
    out.push_str("# HELP atelier_pool_connections Pooled connections by pool and state.\n");
    out.push_str("# TYPE atelier_pool_connections gauge\n");
    out.push_str("# HELP atelier_pool_waiting Requests waiting for a pooled connection.\n");
    out.push_str("# TYPE atelier_pool_waiting gauge\n");
    out.push_str("# HELP atelier_node_in_flight Requests running on a database node now.\n");
    out.push_str("# TYPE atelier_node_in_flight gauge\n");
    out.push_str("# HELP atelier_replica_in_rotation 1 when reads are sent to the replica, 0 while it is ejected.\n");
    out.push_str("# TYPE atelier_replica_in_rotation gauge\n");
    for node in state.pools.all() {
        let _ = writeln!(out, "atelier_node_in_flight{{node=\"{}\"}} {}", node.name, node.in_flight());
    }
    render_admission(state, &mut out);
    out.push_str("# HELP atelier_movement_batch_limit Most stock movements the next batch may take (smaller after slow batches).\n");
    out.push_str("# TYPE atelier_movement_batch_limit gauge\n");
    let _ = writeln!(out, "atelier_movement_batch_limit {}", state.movements.limit());
    for replica in &state.pools.replicas {
        let in_rotation = u8::from(!replica.is_ejected());
        let _ = writeln!(out, "atelier_replica_in_rotation{{replica=\"{}\"}} {in_rotation}", replica.name);
    }
    for pool in state.pools.all() {
        let status = pool.pool.status();
        let name = &pool.name;
        let _ = writeln!(out, "atelier_pool_connections{{pool=\"{name}\",state=\"open\"}} {}", status.size);
        let _ = writeln!(out, "atelier_pool_connections{{pool=\"{name}\",state=\"idle\"}} {}", status.available);
        let _ = writeln!(out, "atelier_pool_connections{{pool=\"{name}\",state=\"max\"}} {}", status.max_size);
        let _ = writeln!(out, "atelier_pool_waiting{{pool=\"{name}\"}} {}", status.waiting);
    }
    if let Some(cache) = &state.cache {
        cache.render(&mut out);
    }
    // Both probes of every node at once: a stuck node costs one probe
    // timeout, not two.
    let queues = join_all(state.pools.replicas.iter().map(|r| probe::<f64>(r, statements::REPLICA_NOTICE_QUEUE_USAGE)));
    let ((_, replicas), queues) = tokio::join!(health(state), queues);
    out.push_str("# HELP atelier_replica_notice_queue_usage Share of the replica's NOTIFY queue in use (0-1); at 1 its change triggers fail and replication stops.\n");
    out.push_str("# TYPE atelier_replica_notice_queue_usage gauge\n");
    for (replica, usage) in state.pools.replicas.iter().zip(queues) {
        if let Some(usage) = usage {
            let _ = writeln!(out, "atelier_replica_notice_queue_usage{{replica=\"{}\"}} {usage}", replica.name);
        }
    }
    out.push_str("# HELP atelier_replica_up 1 when the replica answered the health probe.\n");
    out.push_str("# TYPE atelier_replica_up gauge\n");
    out.push_str("# HELP atelier_replica_lag_bytes Primary WAL bytes since the replica's last applied commit.\n");
    out.push_str("# TYPE atelier_replica_lag_bytes gauge\n");
    out.push_str("# HELP atelier_replica_subscribed 1 when the replica's subscription holds the read model's tables, 0 when it holds none (it will stay empty: re-provision it).\n");
    out.push_str("# TYPE atelier_replica_subscribed gauge\n");
    for replica in replicas {
        let _ = writeln!(out, "atelier_replica_up{{replica=\"{}\"}} {}", replica.name, u8::from(replica.up));
        if let Some(subscribed) = replica.subscribed {
            let _ =
                writeln!(out, "atelier_replica_subscribed{{replica=\"{}\"}} {}", replica.name, u8::from(subscribed));
        }
        if let Some(lag) = replica.lag_bytes {
            let _ = writeln!(out, "atelier_replica_lag_bytes{{replica=\"{}\"}} {lag}", replica.name);
        }
    }
    let mut response = respond::json(StatusCode::OK, out);
    response.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("text/plain; version=0.0.4"));
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
fn render_admission(state: &AppState, out: &mut String) {
    let queues = [("read", &state.reads), ("write", &state.writes)];
    let reports = queues.map(|(queue, admission)| (queue, admission.report()));
    let section = |out: &mut String, name: &str, kind: &str, help: &str| {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
    };
    section(
        out,
        "atelier_admission_queue_seconds",
        "histogram",
        "How long admitted requests waited for a database slot.",
    );
    for (queue, report) in &reports {
        for (bound, count) in crate::admission::DELAY_BUCKETS_SECONDS.iter().zip(&report.cumulative) {
            let _ = writeln!(out, "atelier_admission_queue_seconds_bucket{{queue=\"{queue}\",le=\"{bound}\"}} {count}");
        }
        let total = report.cumulative.last().copied().unwrap_or(0);
        let _ = writeln!(out, "atelier_admission_queue_seconds_bucket{{queue=\"{queue}\",le=\"+Inf\"}} {total}");
        let _ = writeln!(out, "atelier_admission_queue_seconds_sum{{queue=\"{queue}\"}} {}", report.sum_seconds);
        let _ = writeln!(out, "atelier_admission_queue_seconds_count{{queue=\"{queue}\"}} {total}");
    }
    section(
        out,
        "atelier_admission_refused_total",
        "counter",
        "Requests refused a database slot (503), by queue and reason.",
    );
    for (queue, report) in &reports {
        let _ = writeln!(
            out,
            "atelier_admission_refused_total{{queue=\"{queue}\",reason=\"timeout\"}} {}",
            report.refused_timeout
        );
        let _ = writeln!(
            out,
            "atelier_admission_refused_total{{queue=\"{queue}\",reason=\"queue_full\"}} {}",
            report.refused_full
        );
    }
    section(
        out,
        "atelier_admission_limit",
        "gauge",
        "Requests that may use the databases at once (ATELIER_READ_INFLIGHT_MAX, ATELIER_WRITE_INFLIGHT_MAX).",
    );
    section(out, "atelier_admission_in_use", "gauge", "Database slots taken now.");
    section(out, "atelier_admission_waiting", "gauge", "Requests waiting for a database slot now.");
    section(
        out,
        "atelier_admission_overloaded",
        "gauge",
        "1 while the queue stands above its target (CoDel): waits are short, newest first.",
    );
    for (queue, admission) in queues {
        let (in_use, waiting) = admission.occupancy();
        let _ = writeln!(out, "atelier_admission_limit{{queue=\"{queue}\"}} {}", admission.limit());
        let _ = writeln!(out, "atelier_admission_in_use{{queue=\"{queue}\"}} {in_use}");
        let _ = writeln!(out, "atelier_admission_waiting{{queue=\"{queue}\"}} {waiting}");
        let _ = writeln!(out, "atelier_admission_overloaded{{queue=\"{queue}\"}} {}", u8::from(admission.overloaded()));
    }
}
