//! The catalog's data: `atelier load`, `generate`, `check`, `explain`.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::commands::AdminUrls;
use atelier_schema::DocumentKind;
use atelier_tools::generate::{Catalog, DEFAULT_SEED, FULL_SIZE_PRODUCTS};
use atelier_tools::load::{self, LoadOptions, Source};
use atelier_tools::{check, csv, explain, provision, ToolError, ToolResult};

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
