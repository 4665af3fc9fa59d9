//! `atelier migrate` and `atelier replicate`: schema and replication on any
//! primary and replicas.

use crate::commands::AdminUrls;
use atelier_schema::Role;
use atelier_tools::{provision, ToolResult};
use clap::ValueEnum;

#[derive(clap::Args)]
pub struct MigrateArgs {
    #[arg(long, value_enum)]
    role: RoleArg,
    /// Connection string of the database to migrate.
    #[arg(long, env = "ATELIER_MIGRATE_URL")]
    url: String,
}

#[derive(Clone, Copy, ValueEnum)]
enum RoleArg {
    Primary,
    Replica,
}

#[derive(clap::Args)]
pub struct ReplicateArgs {
    #[command(flatten)]
    databases: AdminUrls,
    /// How the replicas reach the primary, when not as --primary-url does.
    #[arg(long, env = "ATELIER_PRIMARY_URL_FROM_REPLICAS")]
    primary_url_from_replicas: Option<String>,
}

pub async fn migrate(args: MigrateArgs) -> ToolResult<()> {
    let role = match args.role {
        RoleArg::Primary => Role::Primary,
        RoleArg::Replica => Role::Replica,
    };
    provision::migrate(&args.url, role).await?;
    println!("migrated {} as {role}", provision::redact(&args.url));
    Ok(())
}

pub async fn replicate(args: ReplicateArgs) -> ToolResult<()> {
    let db = args.databases;
    provision::ensure_publication(&db.primary_url).await?;
    let from_replicas = args.primary_url_from_replicas.unwrap_or_else(|| db.primary_url.clone());
    for (i, url) in db.replica_urls.iter().enumerate() {
        provision::ensure_subscription(url, &from_replicas, &format!("atelier_replica{}", i + 1)).await?;
        println!("replica{} subscribed: {}", i + 1, provision::redact(url));
    }
    Ok(())
}
