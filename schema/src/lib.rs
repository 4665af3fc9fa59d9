//! The Rust face of `sql/`, shared by the service and the tools so that each
//! fact about the database is written down once:
//!
//! - `migrations`: the SQL files as refinery-style versions, and which node
//!   role (primary or replica) gets which;
//! - `tables`: the write-model and read-model tables and the document kinds;
//! - `statements`: every statement the service sends, so that `atelier
//!   explain` plans exactly what the handlers run;
//! - `Money`: cents, sent to PostgreSQL as a binary `numeric(12,2)`;
//! - `roles`: the login roles and what each is for;
//! - `tokens`: the bearer tokens writes need (scopes, shape, hash);
//! - `local`: where the local cluster's nodes listen;
//! - `connect`: one host of a multi-host URL at a time, each with a
//!   deadline on its whole handshake (a frozen node must not stall it).
//!
//! The design itself is the SQL: read `sql/write_schema.sql` first.

pub mod connect;
pub mod local;
pub mod migrations;
mod money;
pub mod roles;
pub mod statements;
pub mod tables;
pub mod tokens;

pub use migrations::Role;
pub use money::Money;
pub use tables::DocumentKind;
