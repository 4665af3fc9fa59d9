//! Connection pools: one to the primary (writes, and read-your-writes
//! fallback) and one per read replica. Every statement goes through
//! `prepare_cached`, so it is prepared once per pooled connection.

use std::sync::atomic::{AtomicUsize, Ordering};

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use tokio_postgres::NoTls;

use crate::config::DbConfig;
use crate::error::ApiError;

/// A named pool, so logs, /readyz and /metrics can say which node.
pub struct NamedPool {
    pub name: String,
    pub pool: Pool,
}

pub struct Pools {
    pub primary: NamedPool,
    pub replicas: Vec<NamedPool>,
    /// Round-robin cursor over `replicas`.
    next_replica: AtomicUsize,
}

impl Pools {
    /// Builds the pools; no connection is opened until first use, so the
    /// server starts even while a database is down (and answers 503).
    pub fn new(config: &DbConfig) -> Result<Pools, ApiError> {
        let primary = NamedPool {
            name: "primary".into(),
            pool: build_pool(&config.primary_url, config.write_pool_size, config)?,
        };
        let replicas = config
            .replica_urls
            .iter()
            .filter(|url| !url.trim().is_empty())
            .enumerate()
            .map(|(i, url)| {
                Ok(NamedPool {
                    name: format!("replica{}", i + 1),
                    pool: build_pool(url, config.read_pool_size, config)?,
                })
            })
            .collect::<Result<Vec<_>, ApiError>>()?;
        Ok(Pools { primary, replicas, next_replica: AtomicUsize::new(0) })
    }

    /// The replicas in the order this request should try them: round-robin
    /// start, then the others as fallbacks.
    pub fn replica_order(&self) -> impl Iterator<Item = &NamedPool> {
        let n = self.replicas.len().max(1);
        let start = self.next_replica.fetch_add(1, Ordering::Relaxed) % n;
        self.replicas.iter().cycle().skip(start).take(self.replicas.len())
    }
}

fn build_pool(url: &str, size: usize, config: &DbConfig) -> Result<Pool, ApiError> {
    let mut pg: tokio_postgres::Config =
        url.parse().map_err(|e| ApiError::internal(format!("bad connection string: {e}")))?;
    pg.connect_timeout(config.connect_timeout());
    pg.application_name("atelier");
    pg.options(format!("-c statement_timeout={}", config.statement_timeout_ms));
    let manager = Manager::from_config(pg, NoTls, ManagerConfig { recycling_method: RecyclingMethod::Fast });
    Pool::builder(manager)
        .max_size(size)
        .runtime(Runtime::Tokio1)
        .wait_timeout(Some(config.pool_wait()))
        .create_timeout(Some(config.connect_timeout()))
        .recycle_timeout(Some(config.connect_timeout()))
        .build()
        .map_err(|e| ApiError::internal(format!("pool: {e}")))
}
