//! The catalog's data: `atelier load`, `generate`, `check`, `reconcile`,
//! `explain`.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::commands::AdminUrls;
use atelier_schema::DocumentKind;
use atelier_tools::generate::{Catalog, DEFAULT_SEED, FULL_SIZE_PRODUCTS};
use atelier_tools::load::{self, LoadOptions, Source};
use atelier_tools::{check, csv, explain, provision, reconcile, ToolError, ToolResult};

/// How long `check` waits for the replicas to catch up before comparing.
const CHECK_CATCH_UP_TIMEOUT: Duration = Duration::from_secs(120);
/// Differences `check` prints (it counts them all).
const CHECK_LINES_MAX: usize = 100;

#[derive(clap::Args)]
struct CatalogArgs {
    /// Number of products (the full Atelier size by default).
    #[arg(long, default_value_t = FULL_SIZE_PRODUCTS)]
    products: i64,
    /// Generator seed: the same seed and size give the same catalog.
    #[arg(long, default_value_t = DEFAULT_SEED)]
    seed: u64,
}

impl CatalogArgs {
    fn catalog(&self) -> Catalog {
        Catalog { seed: self.seed, products: self.products }
    }
}

#[derive(clap::Args)]
pub struct LoadArgs {
    #[command(flatten)]
    databases: AdminUrls,
    #[command(flatten)]
    catalog: CatalogArgs,
    /// Load these CSV files (as `atelier generate` writes them) instead of
    /// generating rows.
    #[arg(long)]
    csv: Option<PathBuf>,
    /// Replace the catalog already there.
    #[arg(long)]
    replace: bool,
    /// Connections working at once; one per core is right.
    #[arg(long, env = "ATELIER_LOAD_CONNECTIONS", default_value_t = 2)]
    connections: usize,
}

#[derive(clap::Args)]
pub struct GenerateArgs {
    #[command(flatten)]
    catalog: CatalogArgs,
    /// Directory for product.csv, features.csv, styles.csv, photos.csv,
    /// skus.csv and related.csv.
    #[arg(long)]
    csv: PathBuf,
}

#[derive(clap::Args)]
pub struct CheckArgs {
    #[command(flatten)]
    databases: AdminUrls,
}

#[derive(clap::Args)]
pub struct ExplainArgs {
    #[command(flatten)]
    databases: AdminUrls,
    /// Print only the execution-time table, not the plans.
    #[arg(long)]
    summary: bool,
}

pub async fn load(args: LoadArgs) -> ToolResult<()> {
    let source = match args.csv {
        Some(dir) => Source::Csv(dir),
        None => Source::Generated(args.catalog.catalog()),
    };
    let options = LoadOptions { replace: args.replace, connections: args.connections };
    load_and_report(&args.databases.primary_url, &args.databases.replica_urls, source, options).await
}

pub async fn load_and_report(
    primary: &str,
    replicas: &[String],
    source: Source,
    options: LoadOptions,
) -> ToolResult<()> {
    println!("loading {source:?} with {} connections", options.connections);
    let report = load::load(primary, replicas, source, options).await?;
    println!("{report}");
    Ok(())
}

pub fn generate(args: GenerateArgs) -> ToolResult<()> {
    let started = Instant::now();
    let counts = csv::write(args.catalog.catalog(), &args.csv)?;
    for (file, rows) in &counts {
        println!("  {file:<14} {rows:>12} rows");
    }
    println!("wrote {} in {:.1} s", args.csv.display(), started.elapsed().as_secs_f64());
    Ok(())
}

pub async fn check(args: CheckArgs) -> ToolResult<()> {
    let db = args.databases;
    let started = Instant::now();
    provision::wait_for_replicas(&db.primary_url, &db.replica_urls, CHECK_CATCH_UP_TIMEOUT).await?;
    let drift = check::check(&db.primary_url, &db.replica_urls).await?;
    for d in drift.iter().take(CHECK_LINES_MAX) {
        println!("{d}");
    }
    println!(
        "checked {} document kinds on {} nodes in {:.2} s: {} differences",
        DocumentKind::ALL.len(),
        1 + db.replica_urls.len(),
        started.elapsed().as_secs_f64(),
        drift.len()
    );
    if drift.is_empty() {
        Ok(())
    } else {
        Err(ToolError::msg("the read model has drifted from the write model"))
    }
}

pub async fn explain(args: ExplainArgs) -> ToolResult<()> {
    let db = args.databases;
    let replica = db.replica_urls.first().ok_or_else(|| ToolError::msg("no replica configured"))?;
    let plans = explain::explain(&db.primary_url, replica).await?;
    if !args.summary {
        for plan in &plans {
            println!("{plan}");
        }
    }
    print!("{}", explain::summary_table(&plans));
    Ok(())
}

#[derive(clap::Args)]
pub struct ReconcileArgs {
    /// The primary (the owner; with a multi-host URL and
    /// target_session_attrs=read-write, whichever node leads) and this
    /// replica (a superuser: a re-copy subscribes again), one URL.
    #[command(flatten)]
    databases: AdminUrls,
    /// The reconciliation ledger: a Prometheus text file with the counts by
    /// result and the primary timeline last reconciled. Without it, every
    /// run reconciles.
    #[arg(long, env = "ATELIER_RECONCILE_STATE")]
    state: Option<PathBuf>,
    /// The replica streams from a Patroni cluster's permanent slot: a
    /// re-copy keeps the slot instead of creating one.
    #[arg(long)]
    keep_slot: bool,
    /// How long catching up and a re-copy may take.
    #[arg(long, default_value_t = 600)]
    timeout_s: u64,
}

/// `atelier reconcile`: every run, point a stalled subscription at the
/// leader; once per new primary timeline (each promotion starts one),
/// compare the replica with the primary and re-copy it if it is damaged
/// (tools/src/reconcile.rs says why it can be). Prints one line of
/// what it found; exits 1 if it could not finish.
pub async fn reconcile(args: ReconcileArgs) -> ToolResult<()> {
    let db = args.databases;
    let [replica] = &db.replica_urls[..] else {
        return Err(ToolError::msg("reconcile takes exactly one replica URL: the replica it runs beside"));
    };
    let mut ledger = match &args.state {
        Some(path) => reconcile::Ledger::parse(&std::fs::read_to_string(path).unwrap_or_default()),
        None => reconcile::Ledger::default(),
    };
    // One question to the primary: who leads, and on which timeline. The
    // leader then goes first in the primary's URL, so every connection of
    // this run reaches it at once, not after a frozen node's timeout.
    let leader = reconcile::leader(&db.primary_url).await?;
    let timeline = leader.timeline;
    let db = AdminUrls { primary_url: leader.first_in(&db.primary_url), ..db.clone() };
    // Every run: a subscription stuck on a node that no longer leads is
    // pointed at the one that does (reconcile::follow_leader says why).
    for change in reconcile::follow_leader(&leader, replica).await? {
        println!("reconcile: {change}");
    }
    if args.state.is_some() {
        match ledger.timeline {
            // First run beside a replica just copied: nothing to compare
            // with yet; remember where the primary is.
            None => {
                ledger.timeline = Some(timeline);
                println!("reconcile: primary on timeline {timeline}; recorded");
                return save(args.state.as_deref(), &ledger);
            }
            Some(done) if done >= timeline => return Ok(()),
            Some(_) => {}
        }
    }
    let started = Instant::now();
    let slot = if args.keep_slot { provision::Slot::Existing } else { provision::Slot::Create };
    let outcome = reconcile::reconcile(&db.primary_url, replica, slot, Duration::from_secs(args.timeout_s)).await;
    let result = match outcome {
        Ok(reconcile::Outcome::Consistent { differing, changing }) => {
            ledger.consistent += 1;
            println!(
                "reconcile: primary timeline {timeline}: the replica is consistent ({differing} documents differed \
                 while written, {changing} still changing, {:.1} s)",
                started.elapsed().as_secs_f64()
            );
            Ok(())
        }
        Ok(reconcile::Outcome::Resynced { reason, after }) => {
            ledger.resynced += 1;
            println!(
                "reconcile: primary timeline {timeline}: re-copied the replica ({reason}); {after} damaged after, {:.1} s",
                started.elapsed().as_secs_f64()
            );
            if after == 0 {
                Ok(())
            } else {
                Err(ToolError::msg("the replica still differs after a re-copy"))
            }
        }
        Err(error) => Err(error),
    };
    match &result {
        Ok(()) => ledger.timeline = Some(timeline),
        // The timeline stays as it was, so the next run tries again.
        Err(error) => {
            ledger.failed += 1;
            println!("reconcile: primary timeline {timeline}: failed: {error}");
        }
    }
    save(args.state.as_deref(), &ledger)?;
    result
}

/// Writes the ledger whole (a temporary file renamed), so a reader never
/// sees half of it.
fn save(path: Option<&std::path::Path>, ledger: &reconcile::Ledger) -> ToolResult<()> {
    let Some(path) = path else { return Ok(()) };
    let partial = path.with_extension("partial");
    std::fs::write(&partial, ledger.render())?;
    std::fs::rename(&partial, path)?;
    Ok(())
}
