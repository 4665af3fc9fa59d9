//! Atelier's operational tools: clients of the database (and, for the load
//! tests, of the service), never part of it. The `atelier` command calls
//! them; the integration tests use them to stand up and check the cluster.
//!
//! - `db`: the tools' error type and a plain (unpooled) connection;
//! - `wait`: polling until a condition holds or a deadline passes;
//! - `provision`: migrations (refinery), publication, subscriptions, and
//!   waiting for replicas, for any primary and replicas;
//! - `cluster`: the local cluster (initdb, pg_ctl), and provisioning it;
//! - `generate`: the seeded catalog, walked as rows with their ids;
//! - `layout`: the loaded tables as COPY columns and CSV files;
//! - `load`: the phased bulk load (binary COPY or CSV) and replica resync;
//! - `csv`: the catalog as CSV files in the public Atelier layout;
//! - `backup`: pgBackRest: the local cluster's archive settings, running
//!   pgbackrest, and the backup report for Prometheus;
//! - `check`: rebuilt versus stored documents on every node;
//! - `reconcile`: after a failover, a replica checked against the new
//!   primary, and copied afresh if it differs;
//! - `tokens`: issuing, listing and revoking the service's bearer tokens;
//! - `secrets`: the local cluster's passwords and development token;
//! - `explain`: EXPLAIN (ANALYZE, BUFFERS) of every statement the API runs.

pub mod backup;
pub mod check;
pub mod cluster;
pub mod csv;
pub mod db;
pub mod explain;
pub mod generate;
pub mod layout;
pub mod load;
pub mod provision;
pub mod reconcile;
pub mod secrets;
pub mod tokens;
pub mod wait;

pub use db::{connect, ToolError, ToolResult};
