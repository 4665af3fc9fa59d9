//! One module per group of subcommands: its flags, and what it prints.

pub mod cluster;
pub mod data;
pub mod loadtest;
pub mod schema;
pub mod serve;

use atelier_schema::local;

/// Where the tools connect: as a role that may change the schema and
/// bulk-load (the owner role on a fleet; the operator's own `postgres`
/// superuser on the local cluster, the default). The service never uses
/// these: it connects as the writer and reader roles (ATELIER_PRIMARY_URL,
/// ATELIER_REPLICA_URLS).
#[derive(clap::Args, Clone)]
pub struct AdminUrls {
    /// libpq-style connection string of the primary, for tools.
    #[arg(long, env = "ATELIER_ADMIN_PRIMARY_URL", default_value_t = local::primary_url(local::DATABASE))]
    pub primary_url: String,

    /// Comma-separated connection strings, one per read replica, for tools.
    #[arg(long, env = "ATELIER_ADMIN_REPLICA_URLS", value_delimiter = ',',
          default_values_t = local::replica_urls(local::DATABASE))]
    pub replica_urls: Vec<String>,
}
