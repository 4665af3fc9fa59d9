//! `atelier migrate` and `atelier replicate`: schema and replication on any
//! primary and replicas.

use crate::commands::AdminUrls;
use atelier_schema::Role;
use atelier_tools::{provision, ToolError, ToolResult};
use clap::ValueEnum;
use std::time::Duration;

#[derive(clap::Args)]
pub struct MigrateArgs {
    #[arg(long, value_enum)]
    role: RoleArg,
    /// Connection string of the database to migrate.
    #[arg(long, env = "ATELIER_MIGRATE_URL", required_unless_present = "print_refinery")]
    url: Option<String>,
    /// Instead of migrating, write the role's migrations into this directory
    /// under refinery's file names, for `refinery migrate -p DIR`.
    #[arg(long, value_name = "DIR")]
    print_refinery: Option<std::path::PathBuf>,
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
    /// How the replicas reach the primary, when not as --primary-url does
    /// (as the replication role, with its password: set it in the
    /// environment, never on a command line).
    #[arg(long, env = "ATELIER_PRIMARY_URL_FROM_REPLICAS")]
    primary_url_from_replicas: Option<String>,
    /// Point every replica at this primary afresh, with a new copy of the
    /// read model (after a restore or a new primary): drop each replica's
    /// subscription, empty its read model, subscribe again. One replica at
    /// a time, each fenced from the service while it copies.
    #[arg(long)]
    resync: bool,
    /// How long each replica may take to copy and catch up, with --resync.
    #[arg(long, default_value = "600")]
    timeout_s: u64,
}

pub async fn migrate(args: MigrateArgs) -> ToolResult<()> {
    let role = match args.role {
        RoleArg::Primary => Role::Primary,
        RoleArg::Replica => Role::Replica,
    };
    if let Some(dir) = args.print_refinery {
        for file in provision::write_refinery_dir(&dir, role)? {
            println!("{}", dir.join(file).display());
        }
        return Ok(());
    }
    let Some(url) = args.url else {
        return Err(ToolError::Message("--url (or ATELIER_MIGRATE_URL) is required".into()));
    };
    provision::migrate(&url, role).await?;
    println!("migrated {} as {role}", provision::redact(&url));
    Ok(())
}

pub async fn replicate(args: ReplicateArgs) -> ToolResult<()> {
    let db = args.databases;
    provision::ensure_publication(&db.primary_url).await?;
    let from_replicas = args.primary_url_from_replicas.unwrap_or_else(|| db.primary_url.clone());
    if args.resync {
        let started = std::time::Instant::now();
        provision::resync(
            &db.primary_url,
            &db.replica_urls,
            Some(&from_replicas),
            provision::Slot::Create,
            Duration::from_secs(args.timeout_s),
        )
        .await?;
        println!(
            "{} replicas resynced from {} in {:.1} s",
            db.replica_urls.len(),
            provision::redact(&from_replicas),
            started.elapsed().as_secs_f64()
        );
        return Ok(());
    }
    for (i, url) in db.replica_urls.iter().enumerate() {
        provision::ensure_subscription(url, &from_replicas, &format!("atelier_replica{}", i + 1)).await?;
        println!("replica{} subscribed: {}", i + 1, provision::redact(url));
    }
    Ok(())
}
