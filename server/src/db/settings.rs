//! Where the databases are, as whom the service logs in, and how its pools
//! are sized and bounded in time.

use std::time::Duration;

use atelier_schema::local;
use clap::Args;

use crate::config::{millis, whole, HOUR_MS};

/// Upper bound of each pool: PostgreSQL's own connection limit is far lower.
const POOL_SIZE_MAX: u64 = 10_000;

/// Where the databases are, and as whom the service logs in: the writer
/// role on the primary, the reader role on every replica (sql/roles.sql).
/// Never a superuser. The defaults name the local cluster's roles without
/// their passwords; `atelier serve` adds those from the cluster's
/// secrets.env.
#[derive(Args, Debug, Clone)]
pub struct DatabaseUrls {
    /// libpq-style connection string of the primary (write model), as the
    /// writer role.
    #[arg(long, env = "ATELIER_PRIMARY_URL", default_value_t = local::service_primary_url(local::DATABASE))]
    pub primary_url: String,

    /// Comma-separated connection strings, one per read replica, as the
    /// reader role.
    #[arg(long, env = "ATELIER_REPLICA_URLS", value_delimiter = ',',
          default_values_t = local::service_replica_urls(local::DATABASE))]
    pub replica_urls: Vec<String>,
}

impl DatabaseUrls {
    /// Database `dbname` on the local cluster's nodes, as the service's
    /// roles (passwords not included).
    pub fn local(dbname: &str) -> DatabaseUrls {
        DatabaseUrls {
            primary_url: local::service_primary_url(dbname),
            replica_urls: local::service_replica_urls(dbname),
        }
    }
}

#[derive(Args, Debug, Clone)]
pub struct PoolSettings {
    // Writes are short transactions; 16 keeps two cores busy without
    // queueing inside PostgreSQL.
    /// Connections to the primary.
    #[arg(long, env = "ATELIER_WRITE_POOL_SIZE", default_value = "16", value_parser = whole::<usize>(1, POOL_SIZE_MAX))]
    pub write_pool_size: usize,

    // Reads are single index lookups, so a few connections saturate a
    // replica; more only add backends competing for the cores. Measured on
    // this 2-core machine, closed loop at 64 connections, cache off: 16 per
    // replica served 4,600-4,800 styles GETs/s with p99 120-170 ms, 4 served
    // 18,000-19,100/s with p99 7 ms, 2 served 18,600/s (docs/benchmarks.md).
    /// Pooled connections to each replica: reads use them when pipelining
    /// is off; health probes and the position index's loads always do.
    #[arg(long, env = "ATELIER_READ_POOL_SIZE", default_value = "4", value_parser = whole::<usize>(1, POOL_SIZE_MAX))]
    pub read_pool_size: usize,

    // Reads share this many connections per replica and are pipelined on
    // them (tokio-postgres sends concurrent statements back to back).
    // Measured here, closed loop at 64 connections, cache off, styles:
    // pooled (4 per replica) 15,300-16,500 req/s; 1 shared 24,000; 2 shared
    // 23,400-27,900; 4 shared 21,500 (docs/benchmarks.md).
    /// Shared connections per replica on which concurrent reads are
    /// pipelined, instead of one pooled connection per read; 0: pooled.
    #[arg(long, env = "ATELIER_READ_PIPELINE_CONNECTIONS", default_value = "2",
          value_parser = whole::<usize>(0, POOL_SIZE_MAX))]
    pub read_pipeline_connections: usize,

    /// How long (ms) a request waits for a free pooled connection before it
    /// is answered 503 with Retry-After.
    #[arg(value_name = "MS", long = "pool-wait-ms", env = "ATELIER_POOL_WAIT_MS", default_value = "2000", value_parser = millis(1, HOUR_MS))]
    pub pool_wait: Duration,

    /// How long (ms) opening a new database connection may take.
    #[arg(value_name = "MS", long = "connect-timeout-ms", env = "ATELIER_CONNECT_TIMEOUT_MS", default_value = "3000",
          value_parser = millis(1, HOUR_MS))]
    pub connect_timeout: Duration,

    // Not 0: that would mean "no timeout" to PostgreSQL.
    /// PostgreSQL statement_timeout (ms) for every pooled connection.
    #[arg(value_name = "MS", long = "statement-timeout-ms", env = "ATELIER_STATEMENT_TIMEOUT_MS", default_value = "5000",
          value_parser = millis(1, HOUR_MS))]
    pub statement_timeout: Duration,
}
