//! The database nodes: the primary (writes, and the read fallbacks) and
//! every read replica, each with its pool and its health (`node`). Every
//! statement goes through `prepare_cached`, so it is prepared once per
//! pooled connection.

mod node;
mod pipeline;
mod settings;
pub use settings::{DatabaseUrls, PoolSettings};

use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use postgres_types::{FromSql, Type};

use crate::config::{Config, ConfigError};

pub(crate) use node::{CheckoutError, InFlight, Node};
pub(crate) use pipeline::Pipelines;

pub(crate) struct Pools {
    pub primary: Node,
    pub replicas: Vec<Node>,
    /// Rotates the order of equally loaded replicas.
    next_replica: AtomicUsize,
}

impl Pools {
    /// Builds the pools; no connection is opened until first use.
    pub fn new(config: &Config) -> Result<Pools, ConfigError> {
        let primary =
            Node::new("primary", build_pool(&config.databases.primary_url, config.pools.write_pool_size, config)?);
        let replicas = config
            .databases
            .replica_urls
            .iter()
            .filter(|url| !url.trim().is_empty())
            .enumerate()
            .map(|(i, url)| {
                // Names live as long as the server: leaked once, at start-up.
                let name: &'static str = Box::leak(format!("replica{}", i + 1).into_boxed_str());
                let mut node = Node::new(name, build_pool(url, config.pools.read_pool_size, config)?);
                if config.pools.read_pipeline_connections > 0 {
                    node.pipelines =
                        Some(Pipelines::new(node_config(url, config)?, config.pools.read_pipeline_connections));
                }
                Ok(node)
            })
            .collect::<Result<Vec<_>, ConfigError>>()?;
        Ok(Pools { primary, replicas, next_replica: AtomicUsize::new(0) })
    }

    /// The replicas a read should try, in order: those in rotation, fewest
    /// requests in flight first (a slow replica collects in-flight requests,
    /// so it gets less); equally loaded ones in rotating order. Ejected
    /// replicas are left out.
    pub fn read_candidates(&self) -> Vec<&Node> {
        let n = self.replicas.len().max(1);
        let start = self.next_replica.fetch_add(1, Ordering::Relaxed) % n;
        let mut candidates: Vec<(usize, usize, &Node)> = self
            .replicas
            .iter()
            .enumerate()
            .filter(|(_, node)| !node.is_ejected())
            .map(|(i, node)| (node.in_flight(), (i + n - start) % n, node))
            .collect();
        candidates.sort_by_key(|(in_flight, turn, _)| (*in_flight, *turn));
        candidates.into_iter().map(|(_, _, node)| node).collect()
    }

    /// Each replica's name and how to open a connection of its own to it
    /// (the cache's change listeners), in the pools' order.
    pub fn replica_configs(&self, config: &Config) -> Result<Vec<(&'static str, tokio_postgres::Config)>, ConfigError> {
        let urls = config.databases.replica_urls.iter().filter(|url| !url.trim().is_empty());
        self.replicas.iter().zip(urls).map(|(node, url)| Ok((node.name, node_config(url, config)?))).collect()
    }

    /// Every node, primary first.
    pub fn all(&self) -> impl Iterator<Item = &Node> {
        std::iter::once(&self.primary).chain(&self.replicas)
    }
}

/// How this server connects to the node at `url`: its connect timeout,
/// statement timeout and application name.
pub(crate) fn node_config(url: &str, config: &Config) -> Result<tokio_postgres::Config, ConfigError> {
    let mut pg: tokio_postgres::Config =
        url.parse().map_err(|e| ConfigError::new(format!("bad connection string {url:?}: {e}")))?;
    pg.connect_timeout(config.pools.connect_timeout);
    pg.application_name("atelier");
    pg.options(format!("-c statement_timeout={}", config.pools.statement_timeout.as_millis()));
    Ok(pg)
}

/// How much longer than every host's connect timeout the pool waits for a
/// new connection before it gives up itself.
const CREATE_TIMEOUT_SLACK: std::time::Duration = std::time::Duration::from_millis(500);

/// Opens the pools' connections host by host, each host's whole handshake
/// within `per_host` (atelier_schema::connect says why).
struct EachHost {
    per_host: std::time::Duration,
}

impl deadpool_postgres::Connect for EachHost {
    fn connect(
        &self,
        pg: &tokio_postgres::Config,
    ) -> futures_util::future::BoxFuture<
        '_,
        Result<(tokio_postgres::Client, tokio::task::JoinHandle<()>), tokio_postgres::Error>,
    > {
        let pg = pg.clone();
        Box::pin(async move {
            let (client, connection) = atelier_schema::connect::connect(&pg, self.per_host).await?;
            let driver = tokio::spawn(async move {
                if let Err(error) = connection.await {
                    tracing::debug!(%error, "pooled connection closed");
                }
            });
            Ok((client, driver))
        })
    }
}

fn build_pool(url: &str, size: usize, config: &Config) -> Result<Pool, ConfigError> {
    let pg = node_config(url, config)?;
    // The connect timeout applies to each host of a multi-host URL (a
    // Patroni cluster's nodes, tried in order until one takes writes), to
    // its whole handshake (EachHost), so opening a connection may take that
    // long per host: with one host cut off or frozen, a timeout of one
    // host's length would give up before the next. The pool's own timeout
    // is a backstop, a little longer than every host's.
    let hosts = u32::try_from(pg.get_hosts().len().max(1)).unwrap_or(u32::MAX);
    let create_timeout = config.pools.connect_timeout.saturating_mul(hosts) + CREATE_TIMEOUT_SLACK;
    let manager = Manager::from_connect(
        pg,
        EachHost { per_host: config.pools.connect_timeout },
        ManagerConfig { recycling_method: RecyclingMethod::Fast },
    );
    Pool::builder(manager)
        .max_size(size)
        .runtime(Runtime::Tokio1)
        .wait_timeout(Some(config.pools.pool_wait))
        .create_timeout(Some(create_timeout))
        .recycle_timeout(Some(config.pools.connect_timeout))
        .build()
        .map_err(|e| ConfigError::new(format!("pool: {e}")))
}

/// The bytes of a `text` or `json` column exactly as PostgreSQL sent them:
/// no UTF-8 check, no JSON parse, no re-serialisation. Stored documents and
/// the write functions' answers become HTTP bodies as they are.
pub(crate) struct RawText(pub Bytes);

impl<'a> FromSql<'a> for RawText {
    fn from_sql(ty: &Type, raw: &'a [u8]) -> Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        RawSlice::from_sql(ty, raw).map(|RawSlice(raw)| RawText(Bytes::copy_from_slice(raw)))
    }

    fn accepts(ty: &Type) -> bool {
        RawSlice::accepts(ty)
    }
}

/// `RawText` borrowed from the row, for bytes that are copied on at once
/// (list cards joined into one body).
pub(crate) struct RawSlice<'a>(pub &'a [u8]);

impl<'a> FromSql<'a> for RawSlice<'a> {
    fn from_sql(_: &Type, raw: &'a [u8]) -> Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        Ok(RawSlice(raw))
    }

    fn accepts(ty: &Type) -> bool {
        matches!(*ty, Type::TEXT | Type::VARCHAR | Type::JSON)
    }
}
