//! Who may read, how fresh the live tokens are, and how failed
//! authentications are limited.

use std::time::Duration;

use clap::Args;

use crate::config::{millis, whole, HOUR_MS};

#[derive(Args, Debug, Clone)]
pub struct AuthSettings {
    /// Reads need a token with the `read` scope (either write scope implies
    /// it): a private catalog. `false` (the default): reads are public and
    /// ignore any `Authorization` header.
    #[arg(long, env = "ATELIER_READ_REQUIRES_TOKEN", default_value_t = false, action = clap::ArgAction::Set)]
    pub read_requires_token: bool,

    // One indexed read of a small table every 2 s is nothing.
    /// How often (ms) the live tokens are reloaded from the primary: a
    /// token revoked (or issued) takes effect within this long.
    #[arg(value_name = "MS", long = "token-reload-ms", env = "ATELIER_TOKEN_RELOAD_MS", default_value = "2000",
          value_parser = millis(1, HOUR_MS))]
    pub token_reload: Duration,

    // A deployment has a handful (one per back office, checkout service,
    // operator).
    /// Most live tokens a server holds.
    #[arg(long, env = "ATELIER_TOKENS_MAX", default_value = "10000", value_parser = whole::<usize>(1, 10_000_000))]
    pub tokens_max: usize,

    // Generous for a person mistyping, and makes guessing a 190-bit token
    // pointless.
    /// Failed authentications (401) one client address may make back to
    /// back before it gets 429.
    #[arg(long = "auth-failures-burst", env = "ATELIER_AUTH_FAILURES_BURST", default_value = "20",
          value_parser = whole::<u32>(1, 1_000_000))]
    pub failures_burst: u32,

    /// Tries an address earns back per minute after its burst.
    #[arg(long = "auth-failures-per-minute", env = "ATELIER_AUTH_FAILURES_PER_MINUTE", default_value = "6",
          value_parser = whole::<u32>(1, 6_000_000))]
    pub failures_per_minute: u32,

    // About 64 bytes each: 100,000 is 6 MB.
    /// Client addresses whose failed authentications are tracked at once.
    #[arg(long = "auth-clients-max", env = "ATELIER_AUTH_CLIENTS_MAX", default_value = "100000",
          value_parser = whole::<usize>(1, 100_000_000))]
    pub clients_max: usize,
}
