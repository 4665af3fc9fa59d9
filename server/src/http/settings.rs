//! The HTTP layer's settings: where it listens, how many connections it
//! serves, how big a body may be, how long a client may take, which
//! browsers and balancers it trusts, whether it logs each request.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use clap::Args;

use crate::config::{millis, whole, HOUR_MS};

#[derive(Args, Debug, Clone)]
pub struct HttpSettings {
    /// Address the HTTP server binds.
    #[arg(long, env = "ATELIER_LISTEN", default_value = "127.0.0.1:3000")]
    pub listen: SocketAddr,

    /// Address of the operations listener, which serves only /healthz,
    /// /readyz and /metrics (with its own connection limit); unset: none,
    /// and those endpoints answer on the public listener only. A fleet
    /// binds it on the host's private address for Prometheus.
    #[arg(long, env = "ATELIER_OPS_LISTEN")]
    pub ops_listen: Option<SocketAddr>,

    // A scraper or two and the balancer's health checks need a handful.
    /// Most connections the operations listener serves at once (apart from
    /// ATELIER_CONNECTIONS_MAX); further ones wait in its listen backlog.
    #[arg(long, env = "ATELIER_OPS_CONNECTIONS_MAX", default_value = "16", value_parser = whole::<usize>(1, 10_000))]
    pub ops_connections_max: usize,

    // The contract fixes 64 KiB.
    /// Largest request body accepted, in bytes; larger is 413.
    #[arg(long, env = "ATELIER_BODY_BYTES_MAX", default_value = "65536", value_parser = whole::<usize>(1, 64 << 20))]
    pub body_bytes_max: usize,

    // Slow-loris protection.
    /// A client that has not sent its request headers in this long (ms)
    /// is disconnected.
    #[arg(value_name = "MS", long = "header-read-timeout-ms", env = "ATELIER_HEADER_READ_TIMEOUT_MS", default_value = "10000",
          value_parser = millis(1, HOUR_MS))]
    pub header_read_timeout: Duration,

    // Bounds memory under a connection flood; further clients wait in the
    // listen backlog.
    /// Most connections served at once.
    #[arg(long, env = "ATELIER_CONNECTIONS_MAX", default_value = "10000",
          value_parser = whole::<usize>(1, tokio::sync::Semaphore::MAX_PERMITS as u64))]
    pub connections_max: usize,

    /// Origins a browser may call the API from (CORS), comma-separated, or
    /// `*` for any. Listed origins are compared whole: scheme, host and
    /// port, e.g. `https://shop.example,http://localhost:8080`.
    #[arg(long, env = "ATELIER_CORS_ORIGINS", value_delimiter = ',', default_value = "*")]
    pub cors_origins: Vec<String>,

    /// After SIGTERM or ctrl-c: how long (ms) requests in flight may take
    /// to finish before the server exits anyway.
    #[arg(value_name = "MS", long = "shutdown-grace-ms", env = "ATELIER_SHUTDOWN_GRACE_MS", default_value = "10000",
          value_parser = millis(0, HOUR_MS))]
    pub shutdown_grace: Duration,

    /// One line per request on standard output: request id, method, route,
    /// status, latency, and the node that answered. `false` turns it off.
    #[arg(long, env = "ATELIER_ACCESS_LOG", default_value_t = true, action = clap::ArgAction::Set)]
    pub access_log: bool,

    /// Addresses of the balancers in front of this server, comma-separated:
    /// for a connection from one of them, the client is the last address in
    /// `X-Forwarded-For` (what the balancer saw). Empty (the default): the
    /// connection's own address, and `X-Forwarded-For` is ignored.
    #[arg(long, env = "ATELIER_TRUSTED_PROXIES", value_delimiter = ',')]
    pub trusted_proxies: Vec<IpAddr>,
}
