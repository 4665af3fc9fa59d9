//! Load tests against a running server: `atelier export-ids`, `write-load`,
//! `stress`, `jtl-summary`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::commands::AdminUrls;
use atelier_loadtest::client::Server;
use atelier_loadtest::stress::{self, Target};
use atelier_loadtest::{ids, jtl, lag, write_load};
use atelier_tools::cluster::LocalCluster;
use atelier_tools::generate::DEFAULT_SEED;
use atelier_tools::secrets::TOKEN_VAR;
use atelier_tools::{ToolError, ToolResult};

/// Ids the generators draw from: enough to spread load over many rows.
const GENERATOR_IDS: usize = 100_000;

#[derive(clap::Args)]
pub struct ExportIdsArgs {
    #[command(flatten)]
    databases: AdminUrls,
    #[arg(long, default_value = "jmeter/ids.csv")]
    out: PathBuf,
    #[arg(long, default_value_t = 100_000)]
    rows: usize,
    #[arg(long, default_value_t = DEFAULT_SEED)]
    seed: u64,
}

#[derive(clap::Args)]
pub struct WriteLoadArgs {
    #[command(flatten)]
    databases: AdminUrls,
    /// The running server.
    #[arg(long, default_value = "127.0.0.1:3000")]
    server: SocketAddr,
    #[arg(long, default_value_t = 500_000)]
    events: u64,
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// Only restocks (each delta made positive), so that no movement is
    /// refused: the same transaction as the pgbench ceiling
    /// (scripts/bench-movements.sh).
    #[arg(long)]
    restock_only: bool,
    /// How often replication lag is sampled during the load; 0 turns the
    /// sampler off.
    #[arg(long, default_value_t = 50)]
    lag_interval_ms: u64,
}

#[derive(clap::Args)]
pub struct StressArgs {
    #[command(flatten)]
    databases: AdminUrls,
    #[arg(long, default_value = "127.0.0.1:3000")]
    server: SocketAddr,
    /// Target requests per second, one step each.
    #[arg(long, value_delimiter = ',', default_value = "1,10,100,1000,10000")]
    rates: Vec<u32>,
    /// Seconds per step (at least 1 request per step).
    #[arg(long, default_value_t = 10)]
    step_seconds: u64,
    /// Where stress.md and stress.svg are written.
    #[arg(long, default_value = "out")]
    out_dir: PathBuf,
    /// Routes to test: list, product, styles, related, movement.
    #[arg(long, value_delimiter = ',', default_value = "list,product,styles,related,movement")]
    routes: Vec<String>,
    /// Exit 1 if any request of any step failed (no answer, or a status
    /// that is not a correct answer for its route).
    #[arg(long)]
    fail_on_error: bool,
}

#[derive(clap::Args)]
pub struct JtlSummaryArgs {
    file: PathBuf,
    /// Exit 1 if any request failed.
    #[arg(long)]
    fail_on_error: bool,
}

pub async fn export_ids(args: ExportIdsArgs) -> ToolResult<()> {
    let rows = ids::export_ids(&args.databases.primary_url, args.rows, args.seed).await?;
    std::fs::write(&args.out, ids::csv(&rows))?;
    println!("wrote {} ids to {}", rows.len(), args.out.display());
    Ok(())
}

pub async fn write_load(args: WriteLoadArgs) -> ToolResult<()> {
    let mut rows = ids::export_ids(&args.databases.primary_url, GENERATOR_IDS, DEFAULT_SEED).await?;
    if args.restock_only {
        rows.iter_mut().for_each(|row| row.delta = row.delta.abs());
    }
    println!("sending {} stock movements from {} clients to {}", args.events, args.concurrency, args.server);
    let stop = Arc::new(AtomicBool::new(false));
    let sampler = (args.lag_interval_ms > 0).then(|| {
        let interval = Duration::from_millis(args.lag_interval_ms);
        let (primary, replicas) = (args.databases.primary_url.clone(), args.databases.replica_urls.to_vec());
        tokio::spawn(lag::sample(primary, replicas, interval, stop.clone()))
    });
    let report =
        write_load::write_load(&tools_server(args.server)?, Arc::new(rows), args.events, args.concurrency).await;
    stop.store(true, Ordering::Relaxed);
    let report = report?;
    println!("{report}");
    if let Some(sampler) = sampler {
        let lag = sampler.await.map_err(|e| ToolError::msg(format!("lag sampler: {e}")))??;
        println!("replication lag during the load (commit on the primary to applied on the replica):\n{lag}");
    }
    match report.errors() {
        0 => Ok(()),
        errors => Err(ToolError::msg(format!("{errors} requests failed"))),
    }
}

pub async fn stress(args: StressArgs) -> ToolResult<()> {
    let targets: Vec<Target> = args
        .routes
        .iter()
        .map(|name| Target::parse(name).ok_or_else(|| ToolError::msg(format!("unknown route {name:?}"))))
        .collect::<Result<_, _>>()?;
    let ids = Arc::new(ids::export_ids(&args.databases.primary_url, GENERATOR_IDS, DEFAULT_SEED).await?);
    let server = tools_server(args.server)?;
    let mut results = Vec::new();
    for target in targets {
        for rate in &args.rates {
            let step_time = Duration::from_secs(args.step_seconds);
            let step = stress::open_loop_step(&server, ids.clone(), target, *rate, step_time).await?;
            println!("{step}");
            results.push(step);
        }
    }
    std::fs::create_dir_all(&args.out_dir)?;
    let table = stress::step_table(&results);
    std::fs::write(args.out_dir.join("stress.md"), &table)?;
    std::fs::write(args.out_dir.join("stress.svg"), stress::step_plot_svg(&results))?;
    println!("\n{table}\nwrote {0}/stress.md and {0}/stress.svg", args.out_dir.display());
    if args.fail_on_error && results.iter().any(|r| r.error_rate > 0.0) {
        return Err(ToolError::msg("some requests failed"));
    }
    Ok(())
}

/// The server at `addr` with the token the tools write with: `ATELIER_TOKEN`
/// from the environment, else the local cluster's development token
/// (secrets.env). Never a flag: a token on a command line shows in `ps`
/// and in shell history.
fn tools_server(addr: SocketAddr) -> ToolResult<Server> {
    let token = match std::env::var(TOKEN_VAR) {
        Ok(token) if !token.trim().is_empty() => Some(token.trim().to_string()),
        _ => LocalCluster::existing_secrets()?.and_then(|secrets| secrets.token().map(str::to_string)),
    };
    if token.is_none() {
        println!("note: no {TOKEN_VAR} and no local cluster token; writes will be refused (401)");
    }
    Ok(Server::new(addr, token))
}

pub fn jtl_summary(args: JtlSummaryArgs) -> ToolResult<()> {
    let text = std::fs::read_to_string(&args.file)?;
    let groups = jtl::summarise(&text)?;
    print!("{}", jtl::table(&groups));
    if groups.is_empty() {
        return Err(ToolError::msg("the results file holds no samples"));
    }
    if args.fail_on_error && groups.iter().any(|g| g.error_rate > 0.0) {
        return Err(ToolError::msg("some requests failed"));
    }
    Ok(())
}
