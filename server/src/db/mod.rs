//! Connection pools: one to the primary (writes, and the read-your-writes
//! fallback) and one per read replica. Every statement goes through
//! `prepare_cached`, so it is prepared once per pooled connection.

use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use postgres_types::{FromSql, Type};
use tokio_postgres::NoTls;

use crate::config::{Config, ConfigError};

/// A named pool, so logs, /readyz and /metrics can say which node.
pub(crate) struct NamedPool {
    pub name: String,
    pub pool: Pool,
}

pub(crate) struct Pools {
    pub primary: NamedPool,
    pub replicas: Vec<NamedPool>,
    /// Round-robin cursor over `replicas`.
    next_replica: AtomicUsize,
}

impl Pools {
    /// Builds the pools; no connection is opened until first use.
    pub fn new(config: &Config) -> Result<Pools, ConfigError> {
        let primary = NamedPool {
            name: "primary".into(),
            pool: build_pool(&config.databases.primary_url, config.write_pool_size, config)?,
        };
        let replicas = config
            .databases
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
            .collect::<Result<Vec<_>, ConfigError>>()?;
        Ok(Pools { primary, replicas, next_replica: AtomicUsize::new(0) })
    }

    /// The replicas in the order this request should try them: round-robin
    /// start, then the others as fallbacks.
    pub fn replica_order(&self) -> impl Iterator<Item = &NamedPool> {
        let n = self.replicas.len().max(1);
        let start = self.next_replica.fetch_add(1, Ordering::Relaxed) % n;
        self.replicas.iter().cycle().skip(start).take(self.replicas.len())
    }

    /// Every pool, primary first.
    pub fn all(&self) -> impl Iterator<Item = &NamedPool> {
        std::iter::once(&self.primary).chain(&self.replicas)
    }
}

fn build_pool(url: &str, size: usize, config: &Config) -> Result<Pool, ConfigError> {
    let mut pg: tokio_postgres::Config =
        url.parse().map_err(|e| ConfigError::new(format!("bad connection string {url:?}: {e}")))?;
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
        .map_err(|e| ConfigError::new(format!("pool: {e}")))
}

/// The bytes of a `text` or `json` column exactly as PostgreSQL sent them:
/// no UTF-8 check, no JSON parse, no re-serialisation. Stored documents and
/// the write functions' answers become HTTP bodies as they are.
pub(crate) struct RawText(pub Bytes);

impl<'a> FromSql<'a> for RawText {
    fn from_sql(_: &Type, raw: &'a [u8]) -> Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        Ok(RawText(Bytes::copy_from_slice(raw)))
    }

    fn accepts(ty: &Type) -> bool {
        matches!(*ty, Type::TEXT | Type::VARCHAR | Type::JSON)
    }
}
