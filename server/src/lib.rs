//! The Atelier Products API as a CQRS service on PostgreSQL.
//!
//! Writes go to the primary's normalized write model, through one SQL
//! function per endpoint; triggers there keep per-product JSON documents
//! (the read model) in step, in the same transaction; logical replication
//! streams only those documents to the read replicas; GETs return the stored
//! bytes from a replica, unparsed. The SQL in `sql/` is the design: read it
//! first.
//!
//! The public face is small: build an [`App`] from a [`Config`], then run it
//! until a shutdown future completes.
//!
//! Modules, in the order a request meets them. Imports point one way:
//! `http` → `auth`, `read`/`write` → `db`, `cache`; `state`, `config`, `error` and
//! `metrics` are shared below them.
//! - `startup`: [`App::build`] binds, builds pools, starts background work;
//!   [`App::run_until_stopped`] serves.
//! - `http`: the accept loop and graceful shutdown (`server`), the endpoint
//!   table (`routes`), one `match` from endpoint to handler (`dispatch`),
//!   request bodies (`body`), the query string (`query`), responses and
//!   ETags (`respond`), and the operational endpoints (`ops`).
//! - `auth`: bearer tokens (held in memory, reloaded from the primary) and
//!   the limiter of failed attempts; `http` asks it before any handler.
//! - `read`: the GET handlers; replica choice and failover, read-your-writes
//!   (`replicas`), the hedge budget (`hedges`); raw stored bytes (`document`).
//! - `write`: the transaction envelope and retries (`mod`), typed inputs
//!   (`input`), one file per resource (`products`, `styles`, `skus`,
//!   `related`), and idempotency keys (`idempotency`).
//! - `cache`: documents and list pages in memory (`map`, `documents`),
//!   kept fresh by the replicas' change notices (`feed`, `notice`, `listen`).
//! - `db`: the connection pools: the primary, and one per replica.
//! - `admission`: the queue in front of the databases (CoDel, adaptive
//!   LIFO): how many requests use them at once, how long the rest wait.
//! - `state`: what every handler can reach; `config`: the settings,
//!   one section per part, each declared in that part's `settings.rs`;
//!   `error`: the error type and its response classes; `metrics`:
//!   counters and histograms; `numbers`: ids, pages and counts as text.

mod admission;
mod auth;
mod cache;
mod config;
mod db;
mod error;
mod http;
mod metrics;
mod numbers;
mod read;
mod startup;
mod state;
mod write;

pub use config::{
    AdmissionSettings, AuthSettings, CacheSettings, Config, ConfigError, DatabaseUrls, HttpSettings, PoolSettings,
    ReadSettings, WriteSettings,
};
pub use startup::{App, StartupError};
