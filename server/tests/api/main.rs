//! Integration tests against the real thing: the local cluster (a primary
//! and two logical replicas, started by the project's own tooling), a fresh
//! database `atelier_test`, and the server on an ephemeral port.
//!
//! One test binary, one file per area; `helpers` owns the set-up.

mod auth;
mod batching;
mod browser;
mod cache;
mod concurrency;
mod cors;
mod helpers;
mod load;
mod model;
mod ops;
mod read_errors;
mod reads;
mod replication;
mod roles;
mod writes;
mod writes_racing;
