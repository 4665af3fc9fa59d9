//! Server configuration: one struct, read from flags and environment, with
//! defaults that work against the local cluster (`atelier cluster up`).
//! Every limit the server enforces is here, named with its unit last.

use std::net::SocketAddr;
use std::time::Duration;

use clap::Args;

/// Where the local cluster listens by default (see `cluster.rs`).
pub const LOCAL_PRIMARY_URL: &str = "host=127.0.0.1 port=54320 user=postgres dbname=atelier";
pub const LOCAL_REPLICA_URLS: &str = "host=127.0.0.1 port=54321 user=postgres dbname=atelier,\
                                      host=127.0.0.1 port=54322 user=postgres dbname=atelier";

#[derive(Args, Debug, Clone)]
pub struct ServerConfig {
    /// Address the HTTP server binds.
    #[arg(long, env = "ATELIER_LISTEN", default_value = "127.0.0.1:3000")]
    pub listen: SocketAddr,

    #[command(flatten)]
    pub db: DbConfig,

    /// Largest request body accepted, in bytes; larger is 413. The contract
    /// fixes 64 KiB.
    #[arg(long, env = "ATELIER_BODY_BYTES_MAX", default_value_t = 64 * 1024)]
    pub body_bytes_max: usize,

    /// Largest `count` accepted by GET /products; the contract fixes 1000.
    #[arg(long, env = "ATELIER_PAGE_COUNT_MAX", default_value_t = 1000)]
    pub page_count_max: u32,

    /// How long a read-your-writes GET waits for a replica to reach the
    /// client's `X-Read-After` position before it reads the primary's read
    /// model instead. Replication on one machine catches up in a few
    /// milliseconds, so 100 ms covers bursts without making clients wait long.
    #[arg(long, env = "ATELIER_READ_AFTER_WAIT_MS", default_value_t = 100)]
    pub read_after_wait_ms: u64,

    /// A client that has not sent its request headers in this long is
    /// disconnected (slow-loris protection).
    #[arg(long, env = "ATELIER_HEADER_READ_TIMEOUT_MS", default_value_t = 10_000)]
    pub header_read_timeout_ms: u64,

    /// Most connections served at once; further clients wait in the
    /// listen backlog. Bounds memory under a connection flood.
    #[arg(long, env = "ATELIER_CONNECTIONS_MAX", default_value_t = 10_000)]
    pub connections_max: usize,
}

/// Database connections: the primary, the replicas, and pool limits.
#[derive(Args, Debug, Clone)]
pub struct DbConfig {
    /// libpq-style connection string of the primary (write model).
    #[arg(long, env = "ATELIER_PRIMARY_URL", default_value = LOCAL_PRIMARY_URL)]
    pub primary_url: String,

    /// Comma-separated connection strings, one per read replica.
    #[arg(long, env = "ATELIER_REPLICA_URLS", default_value = LOCAL_REPLICA_URLS, value_delimiter = ',')]
    pub replica_urls: Vec<String>,

    /// Connections to the primary. Writes are short transactions; 16 keeps
    /// two cores busy without queueing inside PostgreSQL.
    #[arg(long, env = "ATELIER_WRITE_POOL_SIZE", default_value_t = 16)]
    pub write_pool_size: usize,

    /// Connections to each replica. Reads are single index lookups, so a
    /// few connections per core saturate a replica.
    #[arg(long, env = "ATELIER_READ_POOL_SIZE", default_value_t = 16)]
    pub read_pool_size: usize,

    /// How long a request waits for a free pooled connection before it is
    /// answered 503 with Retry-After.
    #[arg(long, env = "ATELIER_POOL_WAIT_MS", default_value_t = 2_000)]
    pub pool_wait_ms: u64,

    /// How long opening a new database connection may take.
    #[arg(long, env = "ATELIER_CONNECT_TIMEOUT_MS", default_value_t = 3_000)]
    pub connect_timeout_ms: u64,

    /// PostgreSQL statement_timeout for every pooled connection.
    #[arg(long, env = "ATELIER_STATEMENT_TIMEOUT_MS", default_value_t = 5_000)]
    pub statement_timeout_ms: u64,
}

impl DbConfig {
    pub fn pool_wait(&self) -> Duration {
        Duration::from_millis(self.pool_wait_ms)
    }

    pub fn connect_timeout(&self) -> Duration {
        Duration::from_millis(self.connect_timeout_ms)
    }

    /// The local cluster's defaults with another database name (tests use
    /// their own database).
    pub fn local(dbname: &str) -> DbConfig {
        let swap = |url: &str| url.replace("dbname=atelier", &format!("dbname={dbname}"));
        DbConfig {
            primary_url: swap(LOCAL_PRIMARY_URL),
            replica_urls: LOCAL_REPLICA_URLS.split(',').map(swap).collect(),
            write_pool_size: 16,
            read_pool_size: 16,
            pool_wait_ms: 2_000,
            connect_timeout_ms: 3_000,
            statement_timeout_ms: 5_000,
        }
    }
}

impl ServerConfig {
    /// Defaults for a server on an ephemeral port against `db` (tests).
    pub fn for_tests(db: DbConfig) -> ServerConfig {
        ServerConfig {
            listen: "127.0.0.1:0".parse().expect("literal address"),
            db,
            body_bytes_max: 64 * 1024,
            page_count_max: 1000,
            read_after_wait_ms: 100,
            header_read_timeout_ms: 10_000,
            connections_max: 10_000,
        }
    }
}
