//! One module per group of subcommands: its flags, and what it prints.

pub mod cluster;
pub mod data;
pub mod loadtest;
pub mod schema;
pub mod serve;
