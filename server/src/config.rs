//! Server configuration: one struct, read from flags and environment, with
//! defaults that work against the local cluster (`atelier cluster up`).
//! Every limit the server enforces is here, named with its unit last; each
//! default is a named constant, used both by the flag and by `Config::new`.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::time::Duration;

use atelier_schema::local;
use clap::Args;

/// Address the HTTP server binds by default: loopback, port 3000.
pub const LISTEN_DEFAULT: SocketAddr = SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 3000));
/// The contract fixes 64 KiB.
pub const BODY_BYTES_MAX_DEFAULT: usize = 64 * 1024;
/// The contract fixes 1000.
pub const PAGE_COUNT_MAX_DEFAULT: u32 = 1000;
/// Replication on one machine catches up in a few milliseconds, so 100 ms
/// covers bursts without making clients wait long.
pub const READ_AFTER_WAIT_MS_DEFAULT: u64 = 100;
/// Slow-loris protection: time to send the request headers.
pub const HEADER_READ_TIMEOUT_MS_DEFAULT: u64 = 10_000;
/// Bounds memory under a connection flood; further clients wait in the
/// listen backlog.
pub const CONNECTIONS_MAX_DEFAULT: usize = 10_000;
/// Time in-flight requests get to finish after a shutdown signal.
pub const SHUTDOWN_GRACE_MS_DEFAULT: u64 = 10_000;
/// Writes are short transactions; 16 keeps two cores busy without queueing
/// inside PostgreSQL.
pub const WRITE_POOL_SIZE_DEFAULT: usize = 16;
/// Reads are single index lookups, so a few connections saturate a replica;
/// more only add backends competing for the cores. Measured on this 2-core
/// machine, closed loop at 64 connections, cache off: 16 per replica served
/// 4,600-4,800 styles GETs/s with p99 120-170 ms, 4 served 18,000-19,100/s
/// with p99 7 ms, 2 served 18,600/s (docs/benchmarks.md).
pub const READ_POOL_SIZE_DEFAULT: usize = 4;
/// Reads share this many connections per replica and are pipelined on them
/// (tokio-postgres sends concurrent statements back to back). Measured here,
/// closed loop at 64 connections, cache off, styles: pooled (4 per replica)
/// 15,300-16,500 req/s; 1 shared 24,000; 2 shared 23,400-27,900; 4 shared
/// 21,500 (docs/benchmarks.md). 0 reads on pooled connections.
pub const READ_PIPELINE_CONNECTIONS_DEFAULT: usize = 2;
pub const POOL_WAIT_MS_DEFAULT: u64 = 2_000;
/// One read attempt on one node (pool wait and query). A replica answers a
/// primary-key lookup in well under a millisecond; 40 ms means "stuck".
pub const READ_ATTEMPT_TIMEOUT_MS_DEFAULT: u64 = 40;
/// When an attempt has not answered in this long, a second one starts on
/// another replica and the first answer wins (0: no hedging). Above the
/// p99 of a healthy read here, so hedges are rare when all is well.
pub const READ_HEDGE_AFTER_MS_DEFAULT: u64 = 15;
/// Hedges are at most this percentage of reads, and none start while the
/// server is saturated: a hedge is for one slow replica, not for load.
pub const READ_HEDGE_PERCENT_MAX_DEFAULT: u32 = 5;
/// A whole read, every attempt and the fallback included, before 503.
/// Starts after the read queue (no deadline runs while a read waits for a
/// slot). 200 ms left a few reads a run of the brief's JMeter plan whose
/// two replica attempts missed 40 ms on the saturated cores and whose
/// fallback to the primary then missed it; 500 none (docs/benchmarks.md).
pub const READ_DEADLINE_MS_DEFAULT: u64 = 500;
/// A whole write, its retries included, before 503 (outcome unknown: the
/// client retries with the same Idempotency-Key).
pub const WRITE_DEADLINE_MS_DEFAULT: u64 = 1_000;
/// Stock movements sent to the primary as one transaction at most
/// (write/batch.rs); 1 sends each alone, as every other write is.
pub const MOVEMENT_BATCH_MAX_DEFAULT: usize = 64;
const MOVEMENT_BATCH_MAX_MAX: usize = 10_000;
/// Batches of movements in flight at once: while they are, new movements
/// queue and leave together in the next one (natural batching).
pub const MOVEMENT_BATCH_LANES_DEFAULT: usize = 4;
/// How long a batch waits for more movements after its first, when fewer
/// than the maximum are queued; 0: it leaves at once (no added latency
/// when it is quiet).
pub const MOVEMENT_BATCH_WAIT_US_DEFAULT: u64 = 0;
/// The run time a batch is sized for (write/batch_limit.rs): when batches
/// run slow, fewer movements go in each, so one that misses the write
/// deadline fails few. A tenth of the deadline: warm batches of the
/// maximum take a few milliseconds (docs/benchmarks.md), so only a slow
/// primary or cold documents bring the limit down.
pub const MOVEMENT_BATCH_TARGET_MS_DEFAULT: u64 = 100;
/// Consecutive failed or timed-out attempts before a replica is ejected.
pub const EJECT_AFTER_FAILURES_DEFAULT: u32 = 3;
/// How often an ejected replica is probed to bring it back.
pub const PROBE_INTERVAL_MS_DEFAULT: u64 = 500;
/// Reads using the replicas at once; the rest wait in the read queue
/// (admission.rs), where no deadline runs. Two replicas with two pipelined
/// connections each: 8 keeps them busy, and more only queue inside
/// PostgreSQL while the 40 ms attempt deadlines run, which ejects healthy
/// replicas and pushes reads to the primary. Measured with the brief's
/// JMeter plan on this 2-core machine (docs/benchmarks.md): 128 (one
/// shared limit) 1.8% errors; 16 a few deadline expiries; 8 none.
pub const READ_INFLIGHT_MAX_DEFAULT: usize = 8;
/// Writes using the primary at once: its write pool. Writes wait first
/// come, first served, for at most their deadline, and are never refused
/// by CoDel: a checkout's movement is worth waiting for, and the writers
/// of one product serialise on its lock anyway. (8 measured fewer errors
/// in the brief's JMeter plan, but the 32 racing writers of the
/// concurrency test then waited past their deadlines: docs/benchmarks.md.)
pub const WRITE_INFLIGHT_MAX_DEFAULT: usize = WRITE_POOL_SIZE_DEFAULT;
/// The longest a request waits for a slot while the queue drains: long
/// enough for a burst of closed-loop clients (the brief's JMeter plan keeps
/// 320 busy, and its reads waited up to 1 s at the door on this 2-core
/// machine), short against a storefront client's timeout.
pub const QUEUE_WAIT_MS_DEFAULT: u64 = 5_000;
/// CoDel's target: when the shortest wait over a whole interval stays
/// above it, the queue is standing (overload): newcomers wait at most this
/// long, newest first. 320 closed-loop clients on this machine's two cores
/// (JMeter and three PostgreSQL servers on the same cores) stand at up to
/// a few hundred ms, up to 1 s at times: 100, 300 and 500 refused some of
/// them (500: 0 to 145 refusals a run, every one a waiter starved by the
/// LIFO order); 1 s none (docs/benchmarks.md). A closed-loop client
/// refused only asks again, so refusing it buys no capacity.
pub const QUEUE_TARGET_MS_DEFAULT: u64 = 1_000;
/// CoDel's interval: how long a queue must stand before it is overload.
pub const QUEUE_INTERVAL_MS_DEFAULT: u64 = 1_000;
/// Requests that may wait at once; beyond it one is refused at once.
pub const QUEUE_MAX_DEFAULT: usize = 20_000;
pub const CONNECT_TIMEOUT_MS_DEFAULT: u64 = 3_000;
/// The document cache's bound: 64 MiB fits a small instance beside
/// PostgreSQL, and holds the benchmark's hot set (the detail and styles
/// documents of 9,000 products: 30 MB, plus 128 bytes of bookkeeping each).
pub const CACHE_BYTES_DEFAULT: usize = 64 * 1024 * 1024;
/// A change listener whose heartbeat goes unanswered this long is lost
/// (the cache forgets everything); also its heartbeat interval and its
/// pause before reconnecting.
pub const CACHE_LISTENER_TIMEOUT_MS_DEFAULT: u64 = 1_000;
/// Upper bound of the cache: 1 TiB, far beyond any machine this runs on.
const CACHE_BYTES_MAX: usize = 1 << 40;
pub const STATEMENT_TIMEOUT_MS_DEFAULT: u64 = 5_000;
/// How often each server reloads the live tokens from the primary: the
/// bound on how long a revoked token still works (and a new one does not
/// yet). One indexed read of a small table every 2 s is nothing.
pub const TOKEN_RELOAD_MS_DEFAULT: u64 = 2_000;
/// Live tokens a server holds; a deployment has a handful (one per back
/// office, checkout service, operator).
pub const TOKENS_MAX_DEFAULT: usize = 10_000;
/// Failed authentications an address may make back to back, then one
/// more every 60 / AUTH_FAILURES_PER_MINUTE seconds (429 meanwhile).
/// Generous for a person mistyping, and makes guessing a 190-bit token
/// pointless.
pub const AUTH_FAILURES_BURST_DEFAULT: u32 = 20;
pub const AUTH_FAILURES_PER_MINUTE_DEFAULT: u32 = 6;
/// Client addresses whose failures are tracked at once (about 64 bytes
/// each: 100,000 is 6 MB).
pub const AUTH_CLIENTS_MAX_DEFAULT: usize = 100_000;

/// Upper bound of every duration setting: an hour is longer than any wait
/// this service should make, and keeps `now + duration` far from overflow.
const DURATION_MS_MAX: u64 = 3_600_000;
/// Upper bound of each pool: PostgreSQL's own connection limit is far lower.
const POOL_SIZE_MAX: usize = 10_000;

#[derive(Args, Debug, Clone)]
pub struct Config {
    /// Address the HTTP server binds.
    #[arg(long, env = "ATELIER_LISTEN", default_value_t = LISTEN_DEFAULT)]
    pub listen: SocketAddr,

    /// Address of the operations listener, which serves only /healthz, /readyz
    /// and /metrics (with its own connection limit); unset: none, and
    /// those endpoints answer on the public listener only. A fleet binds
    /// it on the host's private address for Prometheus and the balancer.
    #[arg(long, env = "ATELIER_OPS_LISTEN")]
    pub ops_listen: Option<SocketAddr>,

    #[command(flatten)]
    pub databases: DatabaseUrls,

    /// Connections to the primary.
    #[arg(long, env = "ATELIER_WRITE_POOL_SIZE", default_value_t = WRITE_POOL_SIZE_DEFAULT)]
    pub write_pool_size: usize,

    /// Pooled connections to each replica: reads use them when pipelining
    /// is off; health probes and the position index's loads always do.
    #[arg(long, env = "ATELIER_READ_POOL_SIZE", default_value_t = READ_POOL_SIZE_DEFAULT)]
    pub read_pool_size: usize,

    /// Shared connections per replica on which concurrent reads are
    /// pipelined, instead of one pooled connection per read; 0: pooled.
    #[arg(long, env = "ATELIER_READ_PIPELINE_CONNECTIONS", default_value_t = READ_PIPELINE_CONNECTIONS_DEFAULT)]
    pub read_pipeline_connections: usize,

    /// Deadline of one read attempt on one node, pool wait included; a
    /// replica that misses it is counted as failing and another is tried.
    #[arg(long, env = "ATELIER_READ_ATTEMPT_TIMEOUT_MS", default_value_t = READ_ATTEMPT_TIMEOUT_MS_DEFAULT)]
    pub read_attempt_timeout_ms: u64,

    /// Start a second (hedged) read on another replica when the first has
    /// not answered in this long; 0 turns hedging off.
    #[arg(long, env = "ATELIER_READ_HEDGE_AFTER_MS", default_value_t = READ_HEDGE_AFTER_MS_DEFAULT)]
    pub read_hedge_after_ms: u64,

    /// Hedged reads at most this percentage of all reads (0-100).
    #[arg(long, env = "ATELIER_READ_HEDGE_PERCENT_MAX", default_value_t = READ_HEDGE_PERCENT_MAX_DEFAULT)]
    pub read_hedge_percent_max: u32,

    /// Deadline of a whole read (attempts, hedges, fallback); then 503.
    #[arg(long, env = "ATELIER_READ_DEADLINE_MS", default_value_t = READ_DEADLINE_MS_DEFAULT)]
    pub read_deadline_ms: u64,

    /// When no replica answers in time, read the primary's copy of the read
    /// model (marked `X-Served-By: primary`). `false`: answer 503 instead.
    #[arg(long, env = "ATELIER_READ_FALLBACK_PRIMARY", default_value_t = true, action = clap::ArgAction::Set)]
    pub read_fallback_primary: bool,

    /// Deadline of a whole write, retries included; then 503.
    #[arg(long, env = "ATELIER_WRITE_DEADLINE_MS", default_value_t = WRITE_DEADLINE_MS_DEFAULT)]
    pub write_deadline_ms: u64,

    /// Stock movements (without Idempotency-Key) sent together in one
    /// transaction at most; 1: each alone.
    #[arg(long, env = "ATELIER_MOVEMENT_BATCH_MAX", default_value_t = MOVEMENT_BATCH_MAX_DEFAULT)]
    pub movement_batch_max: usize,

    /// Batches of movements in flight at once (each takes one primary connection).
    #[arg(long, env = "ATELIER_MOVEMENT_BATCH_LANES", default_value_t = MOVEMENT_BATCH_LANES_DEFAULT)]
    pub movement_batch_lanes: usize,

    /// Microseconds a batch waits for more movements after its first; 0: none.
    #[arg(long, env = "ATELIER_MOVEMENT_BATCH_WAIT_US", default_value_t = MOVEMENT_BATCH_WAIT_US_DEFAULT)]
    pub movement_batch_wait_us: u64,

    /// Milliseconds a batch of movements is sized to run in: slow batches
    /// shrink the next ones (at most ATELIER_MOVEMENT_BATCH_MAX).
    #[arg(long, env = "ATELIER_MOVEMENT_BATCH_TARGET_MS", default_value_t = MOVEMENT_BATCH_TARGET_MS_DEFAULT)]
    pub movement_batch_target_ms: u64,

    /// Consecutive failed or timed-out attempts before a replica is taken
    /// out of rotation (then probed until it answers).
    #[arg(long, env = "ATELIER_EJECT_AFTER_FAILURES", default_value_t = EJECT_AFTER_FAILURES_DEFAULT)]
    pub eject_after_failures: u32,

    /// How often an ejected replica is probed.
    #[arg(long, env = "ATELIER_PROBE_INTERVAL_MS", default_value_t = PROBE_INTERVAL_MS_DEFAULT)]
    pub probe_interval_ms: u64,

    /// Reads using the replicas (or the primary's read model) at once;
    /// answers from memory (the cache, the page, operations) never take a slot.
    #[arg(long, env = "ATELIER_READ_INFLIGHT_MAX", default_value_t = READ_INFLIGHT_MAX_DEFAULT)]
    pub read_inflight_max: usize,

    /// Writes using the primary at once; the rest wait in the write queue.
    #[arg(long, env = "ATELIER_WRITE_INFLIGHT_MAX", default_value_t = WRITE_INFLIGHT_MAX_DEFAULT)]
    pub write_inflight_max: usize,

    /// The longest a request waits for a slot while the queue drains; then 503.
    #[arg(long, env = "ATELIER_QUEUE_WAIT_MS", default_value_t = QUEUE_WAIT_MS_DEFAULT)]
    pub queue_wait_ms: u64,

    /// CoDel's target: a queue whose shortest wait stays above it for a
    /// whole interval is overloaded (newcomers wait at most this, newest first).
    #[arg(long, env = "ATELIER_QUEUE_TARGET_MS", default_value_t = QUEUE_TARGET_MS_DEFAULT)]
    pub queue_target_ms: u64,

    /// CoDel's interval: how long a queue must stand before it counts as overload.
    #[arg(long, env = "ATELIER_QUEUE_INTERVAL_MS", default_value_t = QUEUE_INTERVAL_MS_DEFAULT)]
    pub queue_interval_ms: u64,

    /// Requests that may wait for a slot at once; more are refused at once.
    #[arg(long, env = "ATELIER_QUEUE_MAX", default_value_t = QUEUE_MAX_DEFAULT)]
    pub queue_max: usize,

    /// One line per request on standard output: request id, method, route,
    /// status, latency, and the node that answered. `false` turns it off.
    #[arg(long, env = "ATELIER_ACCESS_LOG", default_value_t = true, action = clap::ArgAction::Set)]
    pub access_log: bool,

    /// How long a request waits for a free pooled connection before it is
    /// answered 503 with Retry-After.
    #[arg(long, env = "ATELIER_POOL_WAIT_MS", default_value_t = POOL_WAIT_MS_DEFAULT)]
    pub pool_wait_ms: u64,

    /// How long opening a new database connection may take.
    #[arg(long, env = "ATELIER_CONNECT_TIMEOUT_MS", default_value_t = CONNECT_TIMEOUT_MS_DEFAULT)]
    pub connect_timeout_ms: u64,

    /// PostgreSQL statement_timeout for every pooled connection.
    #[arg(long, env = "ATELIER_STATEMENT_TIMEOUT_MS", default_value_t = STATEMENT_TIMEOUT_MS_DEFAULT)]
    pub statement_timeout_ms: u64,

    /// Largest request body accepted, in bytes; larger is 413.
    #[arg(long, env = "ATELIER_BODY_BYTES_MAX", default_value_t = BODY_BYTES_MAX_DEFAULT)]
    pub body_bytes_max: usize,

    /// Largest `count` accepted by GET /products.
    #[arg(long, env = "ATELIER_PAGE_COUNT_MAX", default_value_t = PAGE_COUNT_MAX_DEFAULT)]
    pub page_count_max: u32,

    /// How long a read-your-writes GET waits for a replica to reach the
    /// client's `X-Read-After` position before it reads the primary's read
    /// model instead.
    #[arg(long, env = "ATELIER_READ_AFTER_WAIT_MS", default_value_t = READ_AFTER_WAIT_MS_DEFAULT)]
    pub read_after_wait_ms: u64,

    /// A client that has not sent its request headers in this long is
    /// disconnected.
    #[arg(long, env = "ATELIER_HEADER_READ_TIMEOUT_MS", default_value_t = HEADER_READ_TIMEOUT_MS_DEFAULT)]
    pub header_read_timeout_ms: u64,

    /// Most connections served at once.
    #[arg(long, env = "ATELIER_CONNECTIONS_MAX", default_value_t = CONNECTIONS_MAX_DEFAULT)]
    pub connections_max: usize,

    /// Origins a browser may call the API from (CORS), comma-separated, or
    /// `*` for any. Listed origins are compared whole: scheme, host and port,
    /// e.g. `https://shop.example,http://localhost:8080`.
    #[arg(long, env = "ATELIER_CORS_ORIGINS", value_delimiter = ',', default_value = "*")]
    pub cors_origins: Vec<String>,

    /// After SIGTERM or ctrl-c: how long requests in flight may take to
    /// finish before the server exits anyway.
    #[arg(long, env = "ATELIER_SHUTDOWN_GRACE_MS", default_value_t = SHUTDOWN_GRACE_MS_DEFAULT)]
    pub shutdown_grace_ms: u64,

    /// Bytes of product documents and list pages this server keeps in
    /// memory, fresh by the replicas' change notices; 0 turns the cache off.
    #[arg(long, env = "ATELIER_CACHE_BYTES", default_value_t = CACHE_BYTES_DEFAULT)]
    pub cache_bytes: usize,

    /// Keep every product id in list order in memory (fresh by the
    /// replicas' card notices), so GET /products reads one id range.
    #[arg(long, env = "ATELIER_POSITION_INDEX", default_value_t = true, action = clap::ArgAction::Set)]
    pub position_index: bool,

    /// Heartbeat deadline (and interval) of each replica's change
    /// listener; a listener lost makes the cache forget everything.
    #[arg(long, env = "ATELIER_CACHE_LISTENER_TIMEOUT_MS", default_value_t = CACHE_LISTENER_TIMEOUT_MS_DEFAULT)]
    pub cache_listener_timeout_ms: u64,

    /// Reads need a token with the `read` scope (either write scope implies
    /// it): a private catalog. `false` (the default): reads are public and
    /// ignore any `Authorization` header.
    #[arg(long, env = "ATELIER_READ_REQUIRES_TOKEN", default_value_t = false, action = clap::ArgAction::Set)]
    pub read_requires_token: bool,

    /// How often the live tokens are reloaded from the primary: a token
    /// revoked (or issued) takes effect within this long.
    #[arg(long, env = "ATELIER_TOKEN_RELOAD_MS", default_value_t = TOKEN_RELOAD_MS_DEFAULT)]
    pub token_reload_ms: u64,

    /// Most live tokens a server holds.
    #[arg(long, env = "ATELIER_TOKENS_MAX", default_value_t = TOKENS_MAX_DEFAULT)]
    pub tokens_max: usize,

    /// Failed authentications (401) one client address may make back to
    /// back before it gets 429.
    #[arg(long, env = "ATELIER_AUTH_FAILURES_BURST", default_value_t = AUTH_FAILURES_BURST_DEFAULT)]
    pub auth_failures_burst: u32,

    /// Tries an address earns back per minute after its burst.
    #[arg(long, env = "ATELIER_AUTH_FAILURES_PER_MINUTE", default_value_t = AUTH_FAILURES_PER_MINUTE_DEFAULT)]
    pub auth_failures_per_minute: u32,

    /// Client addresses whose failed authentications are tracked at once.
    #[arg(long, env = "ATELIER_AUTH_CLIENTS_MAX", default_value_t = AUTH_CLIENTS_MAX_DEFAULT)]
    pub auth_clients_max: usize,

    /// Addresses of the balancers in front of this server, comma-separated:
    /// for a connection from one of them, the client is the last address in
    /// `X-Forwarded-For` (what the balancer saw). Empty (the default): the
    /// connection's own address, and `X-Forwarded-For` is ignored.
    #[arg(long, env = "ATELIER_TRUSTED_PROXIES", value_delimiter = ',')]
    pub trusted_proxies: Vec<std::net::IpAddr>,

    /// Fault injection for the admission tests: every read holds its slot
    /// this long before it runs, as a slow database would. 0 in service.
    #[arg(long, env = "ATELIER_TEST_DB_DELAY_MS", default_value_t = 0, hide = true)]
    pub test_db_delay_ms: u64,

    /// Fault injection for the race tests: wait this long between reading
    /// a document and offering it to the cache, which widens the window in
    /// which a newer version's notice can overtake the fill. 0 in service.
    #[arg(long, env = "ATELIER_TEST_CACHE_FILL_DELAY_MS", default_value_t = 0, hide = true)]
    pub test_cache_fill_delay_ms: u64,
}

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

/// A setting that cannot work, said plainly at start-up.
#[derive(Debug, thiserror::Error)]
#[error("configuration: {0}")]
pub struct ConfigError(String);

impl ConfigError {
    pub(crate) fn new(problem: String) -> ConfigError {
        ConfigError(problem)
    }
}

impl Config {
    /// Every limit at its default, against `databases`.
    pub fn new(databases: DatabaseUrls) -> Config {
        Config {
            listen: LISTEN_DEFAULT,
            ops_listen: None,
            databases,
            write_pool_size: WRITE_POOL_SIZE_DEFAULT,
            read_pool_size: READ_POOL_SIZE_DEFAULT,
            read_pipeline_connections: READ_PIPELINE_CONNECTIONS_DEFAULT,
            pool_wait_ms: POOL_WAIT_MS_DEFAULT,
            connect_timeout_ms: CONNECT_TIMEOUT_MS_DEFAULT,
            statement_timeout_ms: STATEMENT_TIMEOUT_MS_DEFAULT,
            body_bytes_max: BODY_BYTES_MAX_DEFAULT,
            page_count_max: PAGE_COUNT_MAX_DEFAULT,
            read_after_wait_ms: READ_AFTER_WAIT_MS_DEFAULT,
            header_read_timeout_ms: HEADER_READ_TIMEOUT_MS_DEFAULT,
            connections_max: CONNECTIONS_MAX_DEFAULT,
            cors_origins: vec!["*".to_string()],
            shutdown_grace_ms: SHUTDOWN_GRACE_MS_DEFAULT,
            read_attempt_timeout_ms: READ_ATTEMPT_TIMEOUT_MS_DEFAULT,
            read_hedge_after_ms: READ_HEDGE_AFTER_MS_DEFAULT,
            read_hedge_percent_max: READ_HEDGE_PERCENT_MAX_DEFAULT,
            read_deadline_ms: READ_DEADLINE_MS_DEFAULT,
            read_fallback_primary: true,
            write_deadline_ms: WRITE_DEADLINE_MS_DEFAULT,
            movement_batch_max: MOVEMENT_BATCH_MAX_DEFAULT,
            movement_batch_lanes: MOVEMENT_BATCH_LANES_DEFAULT,
            movement_batch_wait_us: MOVEMENT_BATCH_WAIT_US_DEFAULT,
            movement_batch_target_ms: MOVEMENT_BATCH_TARGET_MS_DEFAULT,
            eject_after_failures: EJECT_AFTER_FAILURES_DEFAULT,
            probe_interval_ms: PROBE_INTERVAL_MS_DEFAULT,
            read_inflight_max: READ_INFLIGHT_MAX_DEFAULT,
            write_inflight_max: WRITE_INFLIGHT_MAX_DEFAULT,
            queue_wait_ms: QUEUE_WAIT_MS_DEFAULT,
            queue_target_ms: QUEUE_TARGET_MS_DEFAULT,
            queue_interval_ms: QUEUE_INTERVAL_MS_DEFAULT,
            queue_max: QUEUE_MAX_DEFAULT,
            test_db_delay_ms: 0,
            access_log: true,
            cache_bytes: CACHE_BYTES_DEFAULT,
            position_index: true,
            cache_listener_timeout_ms: CACHE_LISTENER_TIMEOUT_MS_DEFAULT,
            read_requires_token: false,
            token_reload_ms: TOKEN_RELOAD_MS_DEFAULT,
            tokens_max: TOKENS_MAX_DEFAULT,
            auth_failures_burst: AUTH_FAILURES_BURST_DEFAULT,
            auth_failures_per_minute: AUTH_FAILURES_PER_MINUTE_DEFAULT,
            auth_clients_max: AUTH_CLIENTS_MAX_DEFAULT,
            trusted_proxies: Vec::new(),
            test_cache_fill_delay_ms: 0,
        }
    }

    /// Checks every bounded value, so that no setting can make a request
    /// panic or a wait overflow later.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let within = |name: &str, value: u64, low: u64, high: u64| {
            if (low..=high).contains(&value) {
                Ok(())
            } else {
                Err(ConfigError(format!("{name} is {value}; it must be from {low} to {high}")))
            }
        };
        within("ATELIER_WRITE_POOL_SIZE", self.write_pool_size as u64, 1, POOL_SIZE_MAX as u64)?;
        within("ATELIER_READ_POOL_SIZE", self.read_pool_size as u64, 1, POOL_SIZE_MAX as u64)?;
        within("ATELIER_READ_PIPELINE_CONNECTIONS", self.read_pipeline_connections as u64, 0, POOL_SIZE_MAX as u64)?;
        within("ATELIER_POOL_WAIT_MS", self.pool_wait_ms, 1, DURATION_MS_MAX)?;
        within("ATELIER_CONNECT_TIMEOUT_MS", self.connect_timeout_ms, 1, DURATION_MS_MAX)?;
        // 0 would mean "no timeout" to PostgreSQL.
        within("ATELIER_STATEMENT_TIMEOUT_MS", self.statement_timeout_ms, 1, DURATION_MS_MAX)?;
        within("ATELIER_BODY_BYTES_MAX", self.body_bytes_max as u64, 1, 64 * 1024 * 1024)?;
        // products_page() takes the count as a PostgreSQL integer.
        within("ATELIER_PAGE_COUNT_MAX", u64::from(self.page_count_max), 1, i32::MAX as u64)?;
        within("ATELIER_READ_AFTER_WAIT_MS", self.read_after_wait_ms, 0, DURATION_MS_MAX)?;
        within("ATELIER_HEADER_READ_TIMEOUT_MS", self.header_read_timeout_ms, 1, DURATION_MS_MAX)?;
        within("ATELIER_CONNECTIONS_MAX", self.connections_max as u64, 1, tokio::sync::Semaphore::MAX_PERMITS as u64)?;
        within("ATELIER_SHUTDOWN_GRACE_MS", self.shutdown_grace_ms, 0, DURATION_MS_MAX)?;
        within("ATELIER_READ_ATTEMPT_TIMEOUT_MS", self.read_attempt_timeout_ms, 1, DURATION_MS_MAX)?;
        within("ATELIER_READ_HEDGE_AFTER_MS", self.read_hedge_after_ms, 0, DURATION_MS_MAX)?;
        within("ATELIER_READ_HEDGE_PERCENT_MAX", u64::from(self.read_hedge_percent_max), 0, 100)?;
        within("ATELIER_READ_DEADLINE_MS", self.read_deadline_ms, 1, DURATION_MS_MAX)?;
        within("ATELIER_WRITE_DEADLINE_MS", self.write_deadline_ms, 1, DURATION_MS_MAX)?;
        within("ATELIER_MOVEMENT_BATCH_MAX", self.movement_batch_max as u64, 1, MOVEMENT_BATCH_MAX_MAX as u64)?;
        // Each lane holds a primary connection while its batch runs (more
        // lanes than the write pool's connections wait for one).
        within("ATELIER_MOVEMENT_BATCH_LANES", self.movement_batch_lanes as u64, 1, POOL_SIZE_MAX as u64)?;
        within("ATELIER_MOVEMENT_BATCH_WAIT_US", self.movement_batch_wait_us, 0, 1_000_000)?;
        within("ATELIER_MOVEMENT_BATCH_TARGET_MS", self.movement_batch_target_ms, 1, self.write_deadline_ms)?;
        within("ATELIER_EJECT_AFTER_FAILURES", u64::from(self.eject_after_failures), 1, 1_000_000)?;
        within("ATELIER_PROBE_INTERVAL_MS", self.probe_interval_ms, 1, DURATION_MS_MAX)?;
        within("ATELIER_READ_INFLIGHT_MAX", self.read_inflight_max as u64, 1, 1_000_000)?;
        within("ATELIER_WRITE_INFLIGHT_MAX", self.write_inflight_max as u64, 1, 1_000_000)?;
        within("ATELIER_QUEUE_WAIT_MS", self.queue_wait_ms, 0, DURATION_MS_MAX)?;
        within("ATELIER_QUEUE_TARGET_MS", self.queue_target_ms, 0, DURATION_MS_MAX)?;
        within("ATELIER_QUEUE_INTERVAL_MS", self.queue_interval_ms, 1, DURATION_MS_MAX)?;
        within("ATELIER_QUEUE_MAX", self.queue_max as u64, 0, 100_000_000)?;
        within("ATELIER_TEST_DB_DELAY_MS", self.test_db_delay_ms, 0, DURATION_MS_MAX)?;
        within("ATELIER_CACHE_BYTES", self.cache_bytes as u64, 0, CACHE_BYTES_MAX as u64)?;
        within("ATELIER_CACHE_LISTENER_TIMEOUT_MS", self.cache_listener_timeout_ms, 1, DURATION_MS_MAX)?;
        within("ATELIER_TOKEN_RELOAD_MS", self.token_reload_ms, 1, DURATION_MS_MAX)?;
        within("ATELIER_TOKENS_MAX", self.tokens_max as u64, 1, 10_000_000)?;
        within("ATELIER_AUTH_FAILURES_BURST", u64::from(self.auth_failures_burst), 1, 1_000_000)?;
        within("ATELIER_AUTH_FAILURES_PER_MINUTE", u64::from(self.auth_failures_per_minute), 1, 6_000_000)?;
        within("ATELIER_AUTH_CLIENTS_MAX", self.auth_clients_max as u64, 1, 100_000_000)?;
        within("ATELIER_TEST_CACHE_FILL_DELAY_MS", self.test_cache_fill_delay_ms, 0, DURATION_MS_MAX)?;
        for url in std::iter::once(&self.databases.primary_url).chain(&self.databases.replica_urls) {
            url.parse::<tokio_postgres::Config>()
                .map_err(|e| ConfigError(format!("bad connection string {url:?}: {e}")))?;
        }
        for origin in &self.cors_origins {
            if origin != "*" && hyper::header::HeaderValue::from_str(origin).is_err() {
                return Err(ConfigError(format!("ATELIER_CORS_ORIGINS holds {origin:?}, which is not a header value")));
            }
        }
        if self.databases.replica_urls.iter().all(|url| url.trim().is_empty()) {
            return Err(ConfigError("ATELIER_REPLICA_URLS names no replica".into()));
        }
        Ok(())
    }

    pub fn pool_wait(&self) -> Duration {
        Duration::from_millis(self.pool_wait_ms)
    }

    pub fn connect_timeout(&self) -> Duration {
        Duration::from_millis(self.connect_timeout_ms)
    }

    pub fn read_after_wait(&self) -> Duration {
        Duration::from_millis(self.read_after_wait_ms)
    }

    pub fn header_read_timeout(&self) -> Duration {
        Duration::from_millis(self.header_read_timeout_ms)
    }

    pub fn shutdown_grace(&self) -> Duration {
        Duration::from_millis(self.shutdown_grace_ms)
    }

    pub fn read_attempt_timeout(&self) -> Duration {
        Duration::from_millis(self.read_attempt_timeout_ms)
    }

    /// None when hedging is off.
    pub fn read_hedge_after(&self) -> Option<Duration> {
        (self.read_hedge_after_ms > 0).then(|| Duration::from_millis(self.read_hedge_after_ms))
    }

    pub fn read_deadline(&self) -> Duration {
        Duration::from_millis(self.read_deadline_ms)
    }

    pub fn statement_timeout(&self) -> Duration {
        Duration::from_millis(self.statement_timeout_ms)
    }

    pub fn write_deadline(&self) -> Duration {
        Duration::from_millis(self.write_deadline_ms)
    }

    pub fn movement_batch_wait(&self) -> Duration {
        Duration::from_micros(self.movement_batch_wait_us)
    }

    pub fn movement_batch_target(&self) -> Duration {
        Duration::from_millis(self.movement_batch_target_ms)
    }

    pub fn probe_interval(&self) -> Duration {
        Duration::from_millis(self.probe_interval_ms)
    }

    pub fn cache_listener_timeout(&self) -> Duration {
        Duration::from_millis(self.cache_listener_timeout_ms)
    }

    pub fn token_reload(&self) -> Duration {
        Duration::from_millis(self.token_reload_ms)
    }

    /// The read queue's settings: CoDel with `ATELIER_QUEUE_TARGET_MS`.
    pub(crate) fn read_admission(&self) -> crate::admission::Settings {
        crate::admission::Settings {
            limit: self.read_inflight_max,
            target: Duration::from_millis(self.queue_target_ms),
            interval: Duration::from_millis(self.queue_interval_ms),
            wait_max: Duration::from_millis(self.queue_wait_ms),
            queue_max: self.queue_max,
        }
    }

    /// The write queue's: first come, first served, never refused for a
    /// standing queue (its waits are bounded by the write deadline).
    pub(crate) fn write_admission(&self) -> crate::admission::Settings {
        crate::admission::Settings {
            limit: self.write_inflight_max,
            target: Duration::MAX,
            interval: Duration::from_millis(self.queue_interval_ms),
            wait_max: self.write_deadline(),
            queue_max: self.queue_max,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_bounds_are_checked() {
        let config = Config::new(DatabaseUrls::local("atelier"));
        config.validate().unwrap();
        let mut bad = config.clone();
        bad.page_count_max = u32::MAX;
        assert!(bad.validate().unwrap_err().to_string().contains("ATELIER_PAGE_COUNT_MAX"));
        let mut bad = config.clone();
        bad.read_after_wait_ms = u64::MAX;
        assert!(bad.validate().is_err());
        let mut bad = config.clone();
        bad.connections_max = usize::MAX;
        assert!(bad.validate().is_err());
        let mut bad = config.clone();
        bad.cache_bytes = usize::MAX;
        assert!(bad.validate().unwrap_err().to_string().contains("ATELIER_CACHE_BYTES"));
        let mut bad = config.clone();
        bad.write_pool_size = 0;
        assert!(bad.validate().is_err());
        for (name, change) in [
            ("ATELIER_MOVEMENT_BATCH_MAX", (|c: &mut Config| c.movement_batch_max = 0) as fn(&mut Config)),
            ("ATELIER_MOVEMENT_BATCH_LANES", |c: &mut Config| c.movement_batch_lanes = 0),
            ("ATELIER_MOVEMENT_BATCH_WAIT_US", |c: &mut Config| c.movement_batch_wait_us = 2_000_000),
            ("ATELIER_MOVEMENT_BATCH_TARGET_MS", |c: &mut Config| c.movement_batch_target_ms = 0),
            ("ATELIER_MOVEMENT_BATCH_TARGET_MS", |c: &mut Config| c.movement_batch_target_ms = 5_000),
        ] {
            let mut bad = config.clone();
            change(&mut bad);
            assert!(bad.validate().unwrap_err().to_string().contains(name), "{name}");
        }
        let mut bad = config;
        bad.databases.replica_urls = vec![String::new()];
        assert!(bad.validate().is_err());
    }
}
