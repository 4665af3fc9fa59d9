//! `atelier backup run|info|metrics`: pgBackRest on the local cluster's
//! primary (its `.cluster/pgbackrest.conf`) or on a primary host
//! (`/etc/pgbackrest/pgbackrest.conf`, written by deploy/primary.sh).
//! pgbackrest runs as the `postgres` user when we are root, as it must.

use std::path::PathBuf;
use std::time::Duration;

use atelier_schema::local;
use atelier_tools::backup::{self, BackupReport};
use atelier_tools::cluster::LocalCluster;
use atelier_tools::{ToolError, ToolResult};
use clap::{Args, Subcommand, ValueEnum};

#[derive(Args)]
pub struct BackupCommand {
    #[command(subcommand)]
    action: Action,
    /// pgBackRest configuration file. Default: the local cluster's, when
    /// there is one, else /etc/pgbackrest/pgbackrest.conf (a primary host).
    #[arg(long, env = "ATELIER_PGBACKREST_CONFIG", global = true)]
    config: Option<PathBuf>,
    /// Where the local cluster keeps its data (default: ./.cluster).
    #[arg(long, env = "ATELIER_CLUSTER_DIR", global = true)]
    cluster_dir: Option<PathBuf>,
}

#[derive(Subcommand)]
enum Action {
    /// Take a backup now; older backups past the retention expire after it.
    Run {
        #[arg(long = "type", value_enum, default_value = "full")]
        kind: Kind,
    },
    /// What the repository holds (`pgbackrest info`).
    Info,
    /// Local cluster: restore the newest backup into a new directory, up
    /// to a time or to the end of the WAL archive, and start it on a spare
    /// loopback port (a primary's copy, archiving off). On a host, restore
    /// with pgbackrest itself: docs/operations.md.
    Restore {
        /// The new data directory (must not hold one).
        #[arg(long)]
        to: PathBuf,
        /// Recover up to this time (e.g. "2026-12-02 10:00:00+00");
        /// default: every archived commit.
        #[arg(long)]
        target_time: Option<String>,
        /// The loopback port the restored copy listens on.
        #[arg(long, default_value_t = 54329)]
        port: u16,
    },
    /// End the primary's current WAL segment now and wait until it is in
    /// the repository; exits 1 when it is not within --timeout-s. Prints
    /// how long it took.
    ArchiveNow {
        /// Connection string of the primary, as a superuser.
        #[arg(long, env = "ATELIER_ADMIN_PRIMARY_URL", default_value_t = local::primary_url("postgres"))]
        primary_url: String,
        #[arg(long, default_value_t = 60)]
        timeout_s: u64,
    },
    /// The backup report in Prometheus' text format: on standard output, or
    /// written atomically to --textfile (for node_exporter's textfile
    /// collector; deploy/primary.sh runs this every minute).
    Metrics {
        /// Connection string of the primary, as a superuser or a pg_monitor
        /// member (for pg_stat_archiver).
        #[arg(long, env = "ATELIER_ADMIN_PRIMARY_URL", default_value_t = local::primary_url("postgres"))]
        primary_url: String,
        #[arg(long)]
        textfile: Option<PathBuf>,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum Kind {
    /// Every file.
    Full,
    /// What changed since the last full backup.
    Diff,
    /// What changed since the last backup of any type.
    Incr,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Full => "full",
            Kind::Diff => "diff",
            Kind::Incr => "incr",
        }
    }
}

pub async fn run(command: BackupCommand) -> ToolResult<()> {
    let BackupCommand { action, config, cluster_dir } = command;
    match action {
        Action::Run { kind } => {
            let pgbackrest = Pgbackrest::find(config, cluster_dir)?;
            let started = std::time::Instant::now();
            pgbackrest.run(&["backup", &format!("--type={}", kind.name())], "backup")?;
            let report = BackupReport::from_info(&pgbackrest.run(&["info", "--output=json"], "info")?)?;
            let newest = report.newest.iter().find(|(k, ..)| k == kind.name());
            let (size, delta) = newest.map_or((0, 0), |(_, _, size, delta)| (*size, *delta));
            println!(
                "{} backup done in {:.1} s: database {:.1} MiB, {:.1} MiB added to the repository; {} good backups kept",
                kind.name(),
                started.elapsed().as_secs_f64(),
                mib(size),
                mib(delta),
                report.backups
            );
        }
        Action::Info => print!("{}", Pgbackrest::find(config, cluster_dir)?.run(&["info"], "info")?),
        Action::Restore { to, target_time, port } => {
            let cluster = LocalCluster::discover(&std::env::current_dir()?, cluster_dir)?;
            let restored = cluster.restore(&to, target_time.as_deref(), port).await?;
            println!(
                "restored into {} in {:.1} s (files {:.1} s); taking writes on 127.0.0.1:{port}; log {}",
                to.display(),
                restored.ready.as_secs_f64(),
                restored.copied.as_secs_f64(),
                restored.log.display()
            );
        }
        Action::ArchiveNow { primary_url, timeout_s } => {
            let (segment, archived) = backup::archive_now(&primary_url, Duration::from_secs(timeout_s)).await?;
            let Some(took) = archived else {
                return Err(ToolError::msg(format!("WAL segment {segment} was not archived within {timeout_s} s")));
            };
            println!("WAL segment {segment} reached the repository {} ms after the switch", took.as_millis());
        }
        Action::Metrics { primary_url, textfile } => {
            let info = Pgbackrest::find(config, cluster_dir)?.run(&["info", "--output=json"], "info")?;
            let text = BackupReport::read(&info, &primary_url).await?.prometheus();
            match textfile {
                None => print!("{text}"),
                Some(path) => {
                    // Written beside and renamed, so a reader never sees half a file.
                    let tmp = path.with_extension("prom.tmp");
                    std::fs::write(&tmp, &text)
                        .map_err(|e| ToolError::msg(format!("cannot write {}: {e}", tmp.display())))?;
                    std::fs::rename(&tmp, &path)?;
                }
            }
        }
    }
    Ok(())
}

/// pgbackrest with the configuration to use, run as the user it must run as.
struct Pgbackrest {
    config: PathBuf,
    run_as: Option<(u32, u32)>,
}

impl Pgbackrest {
    /// `config` if given, else the local cluster's when it has one, else
    /// the host's.
    fn find(config: Option<PathBuf>, cluster_dir: Option<PathBuf>) -> ToolResult<Pgbackrest> {
        let cluster = LocalCluster::discover(&std::env::current_dir()?, cluster_dir).ok();
        let config = match (config, &cluster) {
            (Some(config), _) => config,
            (None, Some(cluster)) if cluster.backup_config().exists() => cluster.backup_config(),
            _ => PathBuf::from(backup::HOST_CONFIG),
        };
        if !config.exists() {
            return Err(ToolError::msg(format!(
                "no pgBackRest configuration at {}: run `atelier cluster up` (local) or deploy/primary.sh (a host)",
                config.display()
            )));
        }
        let run_as = match cluster {
            Some(cluster) => cluster.server_user(),
            None => atelier_tools::cluster::server_user()?,
        };
        Ok(Pgbackrest { config, run_as })
    }

    /// The output of `pgbackrest <args>`, which must succeed.
    fn run(&self, args: &[&str], what: &str) -> ToolResult<String> {
        backup::checked(backup::run_pgbackrest(&self.config, self.run_as, args)?, what)
    }
}

fn mib(bytes: i64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}
