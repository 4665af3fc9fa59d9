//! The HTTP server: accept loop, per-request dispatch, and the operational
//! endpoints (/healthz, /readyz, /metrics).

use std::fmt::Write as _;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use crate::config::ServerConfig;
use crate::db::Pools;
use crate::error::ApiError;
use crate::metrics::Metrics;
use crate::read::{self, Kind};
use crate::respond::{self, HttpResponse};
use crate::routes::Route;
use crate::write;

/// What every request handler can reach.
pub struct AppState {
    pub config: ServerConfig,
    pub pools: Pools,
    pub metrics: Metrics,
}

impl AppState {
    pub fn new(config: ServerConfig) -> Result<Arc<AppState>, ApiError> {
        let pools = Pools::new(&config.db)?;
        Ok(Arc::new(AppState { config, pools, metrics: Metrics::default() }))
    }
}

/// Serves HTTP/1.1 on `listener` until `shutdown` completes; then stops
/// accepting and returns (connections in flight finish on their own tasks).
pub async fn run(listener: TcpListener, state: Arc<AppState>, shutdown: impl Future<Output = ()>) {
    let connections = Arc::new(Semaphore::new(state.config.connections_max));
    let header_timeout = Duration::from_millis(state.config.header_read_timeout_ms);
    let purge = tokio::spawn(write::purge_idempotency_keys(state.clone()));
    let _stop_purge = AbortOnDrop(purge);
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            _ = &mut shutdown => return,
            permit = connections.clone().acquire_owned() => permit.expect("semaphore never closed"),
        };
        let stream = tokio::select! {
            _ = &mut shutdown => return,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(error) => {
                    // Out of file descriptors and the like: back off briefly.
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let state = state.clone();
        tokio::spawn(async move {
            let service = service_fn(move |request| {
                let state = state.clone();
                async move { Ok::<_, std::convert::Infallible>(handle(&state, request).await) }
            });
            let served = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(header_timeout)
                .serve_connection(TokioIo::new(stream), service)
                .await;
            if let Err(error) = served {
                tracing::debug!(%error, "connection ended with an error");
            }
            drop(permit);
        });
    }
}

/// Aborts a background task when the server stops.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// One request, start to finish: route, dispatch, turn errors into their
/// response, record metrics.
pub async fn handle(state: &AppState, request: Request<Incoming>) -> HttpResponse {
    let started = Instant::now();
    let route = Route::parse(request.uri().path());
    let label = route.as_ref().ok().map(|r| r.label());
    let response = match route {
        Ok(route) => dispatch(state, route, request).await.unwrap_or_else(ApiError::into_response),
        Err(error) => error.into_response(),
    };
    state.metrics.record(label, response.status().as_u16(), started.elapsed());
    response
}

async fn dispatch(state: &AppState, route: Route, request: Request<Incoming>) -> Result<HttpResponse, ApiError> {
    let method = request.method().clone();
    let is_get = method == Method::GET || method == Method::HEAD;
    let headers = request.headers();
    match (route, is_get) {
        (Route::Products, true) => read::product_list(state, request.uri().query(), headers).await,
        (Route::Product(id), true) => read::product_document(state, Kind::Detail, id, headers).await,
        (Route::ProductStyles(id), true) => read::product_document(state, Kind::Styles, id, headers).await,
        (Route::ProductRelated(id), true) => read::product_document(state, Kind::Related, id, headers).await,
        (Route::Healthz, true) => Ok(respond::json(StatusCode::OK, Bytes::from_static(b"{\"status\":\"up\"}"))),
        (Route::Readyz, true) => readyz(state).await,
        (Route::Metrics, true) => metrics(state).await,
        _ if route.allow().split(", ").any(|m| m == method.as_str()) => write::dispatch(state, route, request).await,
        _ => Err(ApiError::MethodNotAllowed { allow: route.allow() }),
    }
}

/// Replica lag as /readyz and /metrics report it.
struct ReplicaHealth {
    name: String,
    up: bool,
    lag_bytes: Option<i64>,
}

/// How long each health probe may take.
const PROBE_TIMEOUT: Duration = Duration::from_secs(1);

/// Probes the primary and every replica: up, and each replica's lag in
/// bytes of the primary's WAL since the last commit it applied (it also
/// counts WAL the primary wrote for things that are not replicated).
async fn health(state: &AppState) -> (Option<String>, Vec<ReplicaHealth>) {
    let primary_lsn: Option<String> = probe(&state.pools.primary.pool, "select pg_current_wal_lsn()::text").await;
    let mut replicas = Vec::new();
    for replica in &state.pools.replicas {
        let applied: Option<Option<String>> = probe(&replica.pool, "select read_model_applied_lsn()::text").await;
        let up = applied.is_some();
        let lag_bytes = match (&primary_lsn, applied.flatten()) {
            (Some(p), Some(r)) => lsn_bytes(p).zip(lsn_bytes(&r)).map(|(p, r)| (p - r).max(0)),
            _ => None,
        };
        replicas.push(ReplicaHealth { name: replica.name.clone(), up, lag_bytes });
    }
    (primary_lsn, replicas)
}

async fn probe<T: for<'a> tokio_postgres::types::FromSql<'a>>(pool: &deadpool_postgres::Pool, sql: &str) -> Option<T> {
    let attempt = async {
        let client = pool.get().await.ok()?;
        let statement = client.prepare_cached(sql).await.ok()?;
        client.query_one(&statement, &[]).await.ok()?.try_get(0).ok()
    };
    tokio::time::timeout(PROBE_TIMEOUT, attempt).await.ok().flatten()
}

fn lsn_bytes(text: &str) -> Option<i64> {
    let (hi, lo) = text.split_once('/')?;
    let value = (u64::from_str_radix(hi, 16).ok()? << 32) | u64::from_str_radix(lo, 16).ok()?;
    i64::try_from(value).ok()
}

/// GET /readyz: 200 when the primary and at least one replica answer.
async fn readyz(state: &AppState) -> Result<HttpResponse, ApiError> {
    let (primary, replicas) = health(state).await;
    let ready = primary.is_some() && replicas.iter().any(|r| r.up);
    let body = serde_json::json!({
        "ready": ready,
        "primary": { "up": primary.is_some() },
        "replicas": replicas.iter().map(|r| serde_json::json!({
            "name": r.name, "up": r.up, "lag_bytes": r.lag_bytes,
        })).collect::<Vec<_>>(),
    });
    let status = if ready { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    let mut response = respond::json(status, serde_json::to_vec(&body).unwrap_or_default());
    if !ready {
        response.headers_mut().insert(hyper::header::RETRY_AFTER, hyper::header::HeaderValue::from_static("1"));
    }
    Ok(response)
}

/// GET /metrics: request counters and latencies, pool use, replica lag.
async fn metrics(state: &AppState) -> Result<HttpResponse, ApiError> {
    let mut out = String::with_capacity(16 * 1024);
    state.metrics.render(&mut out);
    out.push_str("# HELP atelier_pool_connections Pooled connections by pool and state.\n");
    out.push_str("# TYPE atelier_pool_connections gauge\n");
    out.push_str("# HELP atelier_pool_waiting Requests waiting for a pooled connection.\n");
    out.push_str("# TYPE atelier_pool_waiting gauge\n");
    for pool in std::iter::once(&state.pools.primary).chain(&state.pools.replicas) {
        let status = pool.pool.status();
        let name = &pool.name;
        let _ = writeln!(out, "atelier_pool_connections{{pool=\"{name}\",state=\"open\"}} {}", status.size);
        let _ = writeln!(out, "atelier_pool_connections{{pool=\"{name}\",state=\"idle\"}} {}", status.available);
        let _ = writeln!(out, "atelier_pool_connections{{pool=\"{name}\",state=\"max\"}} {}", status.max_size);
        let _ = writeln!(out, "atelier_pool_waiting{{pool=\"{name}\"}} {}", status.waiting);
    }
    let (_, replicas) = health(state).await;
    out.push_str("# HELP atelier_replica_up 1 when the replica answered the health probe.\n");
    out.push_str("# TYPE atelier_replica_up gauge\n");
    out.push_str("# HELP atelier_replica_lag_bytes Primary WAL bytes since the replica's last applied commit.\n");
    out.push_str("# TYPE atelier_replica_lag_bytes gauge\n");
    for replica in replicas {
        let _ = writeln!(out, "atelier_replica_up{{replica=\"{}\"}} {}", replica.name, u8::from(replica.up));
        if let Some(lag) = replica.lag_bytes {
            let _ = writeln!(out, "atelier_replica_lag_bytes{{replica=\"{}\"}} {lag}", replica.name);
        }
    }
    let mut response = Response::new(Full::new(Bytes::from(out)));
    response
        .headers_mut()
        .insert(hyper::header::CONTENT_TYPE, hyper::header::HeaderValue::from_static("text/plain; version=0.0.4"));
    Ok(response)
}
