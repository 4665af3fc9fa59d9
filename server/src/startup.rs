//! Start-up and the run loop, in the manner of zero2prod's `startup.rs`:
//! `App::build` validates the configuration, binds the listener, builds the
//! pools (no connection opens until first use, so the server starts while a
//! database is down and answers 503); `run_until_stopped` starts the
//! background work and serves until the shutdown future completes, then
//! lets requests in flight finish.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;

use crate::config::{Config, ConfigError};
use crate::db::Pools;
use crate::http;
use crate::metrics::Metrics;
use crate::state::AppState;
use crate::write::idempotency;

/// The service, bound and ready to serve.
pub struct App {
    listener: TcpListener,
    state: Arc<AppState>,
}

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("cannot listen on {address}: {source}")]
    Bind { address: SocketAddr, source: std::io::Error },
}

impl App {
    /// Validates `config`, binds `config.listen` (port 0 picks a free port)
    /// and builds the pools.
    pub async fn build(config: Config) -> Result<App, StartupError> {
        config.validate()?;
        let listener = TcpListener::bind(config.listen)
            .await
            .map_err(|source| StartupError::Bind { address: config.listen, source })?;
        let pools = Pools::new(&config)?;
        let state = Arc::new(AppState { config, pools, metrics: Metrics::new(http::ROUTE_LABELS) });
        Ok(App { listener, state })
    }

    /// The address the server listens on.
    pub fn address(&self) -> SocketAddr {
        self.listener.local_addr().unwrap_or(self.state.config.listen)
    }

    /// Serves until `shutdown` completes; then stops accepting, gives
    /// requests in flight up to the configured grace period, and returns.
    pub async fn run_until_stopped(self, shutdown: impl Future<Output = ()>) {
        let purge = tokio::spawn(idempotency::purge_expired_keys(self.state.clone()));
        http::serve(self.listener, self.state, shutdown).await;
        purge.abort();
    }
}
