//! `atelier cluster up|status|down [--reset]`.

use std::path::PathBuf;

use atelier_schema::local;
use atelier_tools::cluster::{self, LocalCluster};
use atelier_tools::{ToolError, ToolResult};
use clap::ValueEnum;

#[derive(clap::Args)]
pub struct ClusterCommand {
    #[arg(value_enum)]
    action: Action,
    #[command(flatten)]
    cluster: ClusterArgs,
}

#[derive(clap::Args)]
pub struct ClusterArgs {
    /// Where the local cluster keeps its data (default: ./.cluster).
    #[arg(long, env = "ATELIER_CLUSTER_DIR")]
    pub cluster_dir: Option<PathBuf>,
    /// The catalog database created on every node.
    #[arg(long, env = "ATELIER_DATABASE", default_value = local::DATABASE)]
    pub database: String,
    /// With `cluster up`: drop and re-create the catalog database on every
    /// node (after a schema change during development). Deletes its data.
    #[arg(long)]
    pub reset: bool,
}

#[derive(Clone, Copy, ValueEnum)]
enum Action {
    Up,
    Status,
    Down,
}

impl ClusterArgs {
    pub fn local_cluster(&self) -> ToolResult<LocalCluster> {
        LocalCluster::discover(&std::env::current_dir()?, self.cluster_dir.clone())
    }
}

pub async fn run(command: ClusterCommand) -> ToolResult<()> {
    let args = command.cluster;
    let handle = args.local_cluster()?;
    match command.action {
        Action::Up => {
            handle.up()?;
            let (primary, replicas) = cluster::provision_local(&handle, &args.database, args.reset).await?;
            println!("primary   {primary}");
            for replica in replicas {
                println!("replica   {replica}");
            }
            Ok(())
        }
        Action::Status => {
            if handle.status()? {
                Ok(())
            } else {
                Err(ToolError::msg("not every node is running; run `atelier cluster up`"))
            }
        }
        Action::Down => handle.down(),
    }
}
