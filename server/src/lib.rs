//! Atelier: the Atelier Products API as a CQRS service on PostgreSQL.
//!
//! Writes go to the primary's normalized write model; triggers there keep
//! per-product JSON documents (the read model) in step, in the same
//! transaction; logical replication streams only those documents to the
//! read replicas; GETs return the stored bytes from a replica.
//!
//! Modules, roughly in the order a request meets them:
//! - `config`: every setting and limit, from flags and environment.
//! - `server`: the accept loop, dispatch, /healthz, /readyz, /metrics.
//! - `routes`: paths, ids, and which methods each path allows.
//! - `read`: the four GET endpoints, replica choice, read-your-writes.
//! - `write`: the write endpoints on the primary.
//! - `respond`: JSON responses, ETags, conditional GETs.
//! - `document`: stored document bytes straight from a row.
//! - `error`: the error type and its mapping to status codes.
//! - `db`: the connection pools (primary, one per replica).
//! - `metrics`: request counters and latency histograms.
//!
//! Tooling:
//! - `cluster`: the local primary and two replicas (initdb, pg_ctl).
//! - `provision`: migrations (refinery), publication, subscriptions.
//! - `generate`: the seeded catalog generator.
//! - `load`: bulk load (binary COPY or CSV), read-model build, replica resync.
//! - `csv`: the catalog as CSV files in the public Atelier layout.
//! - `check`: rebuilt versus stored documents, on every node.
//! - `loadgen`: write load, open-loop stepped test, JMeter id export.
//! - `jtl`: JMeter results summarised per group.
//! - `explain`: EXPLAIN (ANALYZE, BUFFERS) of every API query.
//! - `tool`: the tools' error type and plain connections.

pub mod check;
pub mod cluster;
pub mod config;
pub mod csv;
pub mod db;
pub mod document;
pub mod error;
pub mod explain;
pub mod generate;
pub mod jtl;
pub mod load;
pub mod loadgen;
pub mod metrics;
pub mod provision;
pub mod read;
pub mod respond;
pub mod routes;
pub mod server;
pub mod tool;
pub mod write;
