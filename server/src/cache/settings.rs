//! The document cache's bound, the position index, and how long a change
//! listener may go unheard.

use std::time::Duration;

use clap::Args;

use crate::config::{millis, whole, HOUR_MS};

#[derive(Args, Debug, Clone)]
pub struct CacheSettings {
    // 64 MiB fits a small instance beside PostgreSQL, and holds the
    // benchmark's hot set (the detail and styles documents of 9,000
    // products: 30 MB, plus 128 bytes of bookkeeping each). At most 1 TiB.
    /// Bytes of product documents and list pages this server keeps in
    /// memory, fresh by the replicas' change notices; 0 turns the cache off.
    #[arg(long, env = "ATELIER_CACHE_BYTES", default_value = "67108864", value_parser = whole::<usize>(0, 1 << 40))]
    pub cache_bytes: usize,

    /// Keep every product id in list order in memory (fresh by the
    /// replicas' card notices), so GET /products reads one id range.
    #[arg(long, env = "ATELIER_POSITION_INDEX", default_value_t = true, action = clap::ArgAction::Set)]
    pub position_index: bool,

    // Also the heartbeat's interval and the pause before reconnecting.
    /// Heartbeat deadline (ms) of each replica's change listener; a
    /// listener lost makes the cache forget everything.
    #[arg(value_name = "MS", long = "cache-listener-timeout-ms", env = "ATELIER_CACHE_LISTENER_TIMEOUT_MS", default_value = "1000",
          value_parser = millis(1, HOUR_MS))]
    pub listener_timeout: Duration,
}
