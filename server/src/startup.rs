//! Start-up and the run loop, in the manner of zero2prod's `startup.rs`:
//! `App::build` validates the configuration, binds the listener, builds the
//! pools (no connection opens until first use, so the server starts while a
//! database is down and answers 503); `run_until_stopped` starts the
//! background work (the token reload, the idempotency purge, the prober
//! that brings ejected replicas back, the access log's writer, the cache's
//! change listeners) and serves until the shutdown future completes, then
//! lets requests in flight finish.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::{TcpListener, TcpSocket};
use tokio::sync::mpsc;

use crate::admission::Admission;
use crate::auth::{self, Authorizer};
use crate::cache::{self, ChangeFeed};
use crate::config::{Config, ConfigError};
use crate::db::Pools;
use crate::http::Listener;
use crate::http::RequestIds;
use crate::metrics::Metrics;
use crate::read::batch::{BatchQueues, ReadBatches};
use crate::read::HedgeBudget;
use crate::state::AppState;
use crate::write::batch::{self, MovementQueue, Movements};
use crate::write::idempotency;
use crate::{http, read};

/// The service, bound and ready to serve.
pub struct App {
    listener: TcpListener,
    /// The operations listener (ATELIER_OPS_LISTEN), if configured.
    ops: Option<TcpListener>,
    state: Arc<AppState>,
    access_log: Option<mpsc::Receiver<String>>,
    /// The movements' queue, for the batch workers (None: batching off).
    movement_queue: Option<MovementQueue>,
    /// The read batches' queues, for their lanes (None: batching off).
    read_queues: Option<BatchQueues>,
}

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("cannot listen on {address}: {source}")]
    Bind { address: SocketAddr, source: std::io::Error },
}

impl App {
    /// Validates `config`, binds `config.http.listen` (port 0 picks a free port)
    /// and builds the pools.
    pub async fn build(config: Config) -> Result<App, StartupError> {
        config.validate()?;
        let bind = |address: SocketAddr| listen(address).map_err(|source| StartupError::Bind { address, source });
        let listener = bind(config.http.listen)?;
        let ops = config.http.ops_listen.map(bind).transpose()?;
        let pools = Pools::new(&config)?;
        let replica_names: Vec<&'static str> = pools.replicas.iter().map(|r| r.name).collect();
        #[cfg(feature = "faults")]
        let fill_delay = config.faults.cache_fill_delay;
        #[cfg(not(feature = "faults"))]
        let fill_delay = std::time::Duration::ZERO;
        let cache = ChangeFeed::new(config.cache.cache_bytes, config.cache.position_index, &replica_names, fill_delay)
            .map(Arc::new);
        let (access_log, lines) = match config.http.access_log {
            true => {
                let (sender, receiver) = mpsc::channel(http::access_log::CHANNEL_LINES);
                (Some(sender), Some(receiver))
            }
            false => (None, None),
        };
        let (movements, movement_queue) = Movements::new(&config);
        let (batches, read_queues) = ReadBatches::new(&config);
        let state = Arc::new(AppState {
            auth: Authorizer::new(&config),
            reads: Admission::new(config.admission.read()),
            writes: Admission::new(config.admission.write(config.write.deadline)),
            hedges: HedgeBudget::new(config.read.hedge_percent_max),
            config,
            pools,
            metrics: Metrics::new(http::ROUTE_LABELS),
            access_log,
            request_ids: RequestIds::new(),
            cache,
            movements,
            batches,
        });
        Ok(App { listener, ops, state, access_log: lines, movement_queue, read_queues })
    }

    /// The address the server listens on.
    pub fn address(&self) -> SocketAddr {
        self.listener.local_addr().unwrap_or(self.state.config.http.listen)
    }

    /// The operations listener's address, when there is one.
    pub fn ops_address(&self) -> Option<SocketAddr> {
        self.ops.as_ref().and_then(|ops| ops.local_addr().ok())
    }

    /// Serves until `shutdown` completes; then stops accepting, gives
    /// requests in flight up to the configured grace period, and returns.
    pub async fn run_until_stopped(self, shutdown: impl Future<Output = ()>) {
        if let Some(lines) = self.access_log {
            std::thread::spawn(move || http::access_log::write_lines(lines));
        }
        let warm = tokio::spawn(warm_pools(self.state.clone()));
        let batches = self.movement_queue.map(|queue| tokio::spawn(batch::run(self.state.clone(), queue)));
        let read_lanes = self.read_queues.map(|queues| tokio::spawn(read::batch::run(self.state.clone(), queues)));
        let purge = tokio::spawn(idempotency::purge_expired_keys(self.state.clone()));
        let state = self.state.clone();
        let tokens =
            tokio::spawn(async move { auth::keep_loaded(&state.auth, &state.pools.primary, &state.config).await });
        let prober = tokio::spawn(read::revive_ejected(self.state.clone()));
        let listeners = self.state.cache.clone().map(|cache| {
            // The URLs were checked when the pools were built.
            let replicas = self.state.pools.replica_configs(&self.state.config).unwrap_or_default();
            tokio::spawn(cache::listen_to_replicas(cache, replicas, self.state.config.cache.listener_timeout))
        });
        // The position index (cache/positions.rs), loaded from listened replicas.
        let positions = self.state.cache.clone().map(|cache| {
            let state = self.state.clone();
            tokio::spawn(async move {
                let (within, retry) = (state.config.pools.statement_timeout, state.config.cache.listener_timeout);
                cache.keep_positions(&state.pools.replicas, within, retry).await;
            })
        });
        // The operations listener stops when the public one has: a balancer's
        // health checks see the draining server until the end.
        let (stopped, stop_ops) = tokio::sync::watch::channel(());
        let ops = self.ops.map(|listener| {
            let mut stop = stop_ops;
            tokio::spawn(http::serve(listener, Listener::Ops, self.state.clone(), async move {
                let _ = stop.changed().await;
            }))
        });
        http::serve(self.listener, Listener::Public, self.state, shutdown).await;
        drop(stopped);
        if let Some(ops) = ops {
            let _ = ops.await;
        }
        for task in listeners.into_iter().chain(positions).chain(batches).chain(read_lanes) {
            task.abort();
        }
        warm.abort();
        purge.abort();
        prober.abort();
        tokens.abort();
    }
}

/// Connections the kernel holds for the server before it accepts them. The
/// default of 128 drops the SYNs of a burst (the client retries a second
/// later); the kernel caps this at net.core.somaxconn.
const LISTEN_BACKLOG: u32 = 4096;

fn listen(address: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if address.is_ipv4() { TcpSocket::new_v4()? } else { TcpSocket::new_v6()? };
    socket.set_reuseaddr(true)?;
    socket.bind(address)?;
    socket.listen(LISTEN_BACKLOG)
}

/// How long warming a pool may take; a node that does not answer by then
/// is simply left cold (and handled as requests find it).
const WARM_WITHIN: std::time::Duration = std::time::Duration::from_secs(3);

/// Opens every pool's connections at start, concurrently.
async fn warm_pools(state: Arc<AppState>) {
    let primary = state.pools.primary.warm(state.config.pools.write_pool_size, WARM_WITHIN);
    let replicas = state.pools.replicas.iter().map(|r| r.warm(state.config.pools.read_pool_size, WARM_WITHIN));
    tokio::join!(primary, futures_util::future::join_all(replicas));
}
