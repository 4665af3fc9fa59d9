//! `atelier`: the server and its tools. Thin: parses the command line and
//! calls into the library.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use tracing_subscriber::EnvFilter;

use atelier::cluster::{LocalCluster, Role};
use atelier::config::{DbConfig, ServerConfig};
use atelier::generate::{Catalog, DEFAULT_SEED, DEMO_PRODUCTS, FULL_SIZE_PRODUCTS};
use atelier::load::{LoadOptions, Source};
use atelier::tool::ToolResult;
use atelier::{load, provision, server};

#[derive(Parser)]
#[command(name = "atelier", version, about = "The Atelier Products API: CQRS on PostgreSQL with logical read replicas")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Start the local cluster, load demo data if it is empty, and serve.
    Up {
        #[command(flatten)]
        server: ServerConfig,
        #[command(flatten)]
        cluster: ClusterArgs,
    },
    /// Serve the HTTP API.
    Serve {
        #[command(flatten)]
        server: ServerConfig,
    },
    /// Control the local cluster (a primary and two replicas on loopback).
    Cluster {
        #[arg(value_enum)]
        action: ClusterAction,
        #[command(flatten)]
        cluster: ClusterArgs,
    },
    /// Apply the schema migrations (refinery) to one database.
    Migrate {
        #[arg(long, value_enum)]
        role: RoleArg,
        /// Connection string of the database to migrate.
        #[arg(long, env = "ATELIER_MIGRATE_URL")]
        url: String,
    },
    /// Publish the read model on a primary and subscribe replicas to it.
    Replicate {
        #[command(flatten)]
        db: DbConfig,
        /// How the replicas reach the primary, when not as --primary-url does.
        #[arg(long, env = "ATELIER_PRIMARY_URL_FROM_REPLICAS")]
        primary_url_from_replicas: Option<String>,
    },
    /// Bulk-load a catalog into the primary (generated, or from CSV files),
    /// build the read model, and bring every replica up to date.
    Load {
        #[command(flatten)]
        db: DbConfig,
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
    },
    /// Write a generated catalog as CSV files in the public Atelier layout.
    Generate {
        #[command(flatten)]
        catalog: CatalogArgs,
        /// Directory for product.csv, features.csv, styles.csv, photos.csv,
        /// skus.csv and related.csv.
        #[arg(long)]
        csv: PathBuf,
    },
    /// Export ids for load tests (product_id,sku_id,delta), biased to the
    /// last 10% of products and skus, as the JMeter plan reads them.
    ExportIds {
        #[command(flatten)]
        db: DbConfig,
        #[arg(long, default_value = "jmeter/ids.csv")]
        out: PathBuf,
        #[arg(long, default_value_t = 100_000)]
        rows: usize,
        #[arg(long, default_value_t = DEFAULT_SEED)]
        seed: u64,
    },
    /// Send stock movements through the HTTP API from concurrent clients
    /// (closed loop) and report throughput and latency percentiles.
    WriteLoad {
        #[command(flatten)]
        db: DbConfig,
        /// The running server.
        #[arg(long, default_value = "127.0.0.1:3000")]
        server: std::net::SocketAddr,
        #[arg(long, default_value_t = 500_000)]
        events: u64,
        #[arg(long, default_value_t = 64)]
        concurrency: usize,
    },
    /// Stepped stress test: fixed arrival rates per route (open loop); prints
    /// a table and writes it with a latency-versus-rate SVG plot.
    Stress {
        #[command(flatten)]
        db: DbConfig,
        #[arg(long, default_value = "127.0.0.1:3000")]
        server: std::net::SocketAddr,
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
    },
    /// Summarise a JMeter results file (.jtl, CSV with header) per group.
    JtlSummary {
        file: PathBuf,
        /// Exit 1 if any request failed.
        #[arg(long)]
        fail_on_error: bool,
    },
    /// EXPLAIN (ANALYZE, BUFFERS) of every API query on the primary and the
    /// first replica, for ids in the last 10% and the deepest page.
    Explain {
        #[command(flatten)]
        db: DbConfig,
        /// Print only the execution-time table, not the plans.
        #[arg(long)]
        summary: bool,
    },
    /// Rebuild every document from the write model and compare it with the
    /// primary's and every replica's stored documents; exit 1 on any drift.
    Check {
        #[command(flatten)]
        db: DbConfig,
    },
}

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
struct ClusterArgs {
    /// Where the local cluster keeps its data (default: ./.cluster).
    #[arg(long, env = "ATELIER_CLUSTER_DIR")]
    cluster_dir: Option<PathBuf>,
    /// The catalog database created on every node.
    #[arg(long, env = "ATELIER_DATABASE", default_value = "atelier")]
    database: String,
    /// With `cluster up`: drop and re-create the catalog database on every
    /// node (after a schema change during development). Deletes its data.
    #[arg(long)]
    reset: bool,
}

#[derive(Clone, Copy, ValueEnum)]
enum ClusterAction {
    Up,
    Status,
    Down,
}

#[derive(Clone, Copy, ValueEnum)]
enum RoleArg {
    Primary,
    Replica,
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_env("ATELIER_LOG").unwrap_or_else(|_| EnvFilter::new("info")))
        .with_target(false)
        .init();
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("tokio runtime");
    match runtime.block_on(run(cli.command)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("atelier: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn run(command: Command) -> ToolResult<()> {
    match command {
        Command::Up { server, cluster } => {
            let cluster_handle = LocalCluster::discover(&std::env::current_dir()?, cluster.cluster_dir)?;
            cluster_handle.up()?;
            let (primary, replicas) = provision::local(&cluster.database, false).await?;
            let products: i64 =
                atelier::tool::connect(&primary).await?.query_one("select count(*) from product", &[]).await?.get(0);
            if products == 0 {
                let demo = Source::Generated(Catalog { seed: DEFAULT_SEED, products: DEMO_PRODUCTS });
                load_and_report(&primary, &replicas, demo, LoadOptions { replace: false, connections: 2 }).await?;
            } else {
                println!("catalog already holds {products} products; not loading demo data");
            }
            serve(server).await
        }
        Command::Serve { server } => serve(server).await,
        Command::Cluster { action, cluster } => {
            let handle = LocalCluster::discover(&std::env::current_dir()?, cluster.cluster_dir)?;
            match action {
                ClusterAction::Up => {
                    handle.up()?;
                    let (primary, replicas) = provision::local(&cluster.database, cluster.reset).await?;
                    println!("primary   {primary}");
                    for replica in replicas {
                        println!("replica   {replica}");
                    }
                    Ok(())
                }
                ClusterAction::Status => {
                    if handle.status()? {
                        Ok(())
                    } else {
                        Err(atelier::tool::ToolError::msg("not every node is running; run `atelier cluster up`"))
                    }
                }
                ClusterAction::Down => handle.down(),
            }
        }
        Command::Migrate { role, url } => {
            let role = match role {
                RoleArg::Primary => Role::Primary,
                RoleArg::Replica => Role::Replica,
            };
            provision::migrate(&url, role).await?;
            println!("migrated {} as {role}", provision::redact(&url));
            Ok(())
        }
        Command::Replicate { db, primary_url_from_replicas } => {
            provision::ensure_publication(&db.primary_url).await?;
            let from_replicas = primary_url_from_replicas.unwrap_or_else(|| db.primary_url.clone());
            for (i, url) in db.replica_urls.iter().enumerate() {
                provision::ensure_subscription(url, &from_replicas, &format!("atelier_replica{}", i + 1)).await?;
                println!("replica{} subscribed: {}", i + 1, provision::redact(url));
            }
            Ok(())
        }
        Command::Check { db } => {
            let started = std::time::Instant::now();
            provision::wait_for_replicas(&db.primary_url, &db.replica_urls, std::time::Duration::from_secs(120))
                .await?;
            let drift = atelier::check::check(&db.primary_url, &db.replica_urls).await?;
            for d in drift.iter().take(100) {
                println!("{:<9} {:<8} product {:>10}: {}", d.node, d.kind, d.product_id, d.problem);
            }
            println!(
                "checked {} document kinds on {} nodes in {:.2} s: {} differences",
                atelier::check::KINDS.len(),
                1 + db.replica_urls.len(),
                started.elapsed().as_secs_f64(),
                drift.len()
            );
            if drift.is_empty() {
                Ok(())
            } else {
                Err(atelier::tool::ToolError::msg("the read model has drifted from the write model"))
            }
        }
        Command::Load { db, catalog, csv, replace, connections } => {
            let source = match csv {
                Some(dir) => Source::Csv(dir),
                None => Source::Generated(catalog.catalog()),
            };
            load_and_report(&db.primary_url, &db.replica_urls, source, LoadOptions { replace, connections }).await
        }
        Command::ExportIds { db, out, rows, seed } => {
            let ids = atelier::loadgen::export_ids(&db.primary_url, rows, seed).await?;
            let mut text = String::from("product_id,sku_id,delta\n");
            for (p, k, d) in &ids {
                text.push_str(&format!("{p},{k},{d}\n"));
            }
            std::fs::write(&out, text)?;
            println!("wrote {} ids to {}", ids.len(), out.display());
            Ok(())
        }
        Command::WriteLoad { db, server, events, concurrency } => {
            let ids = std::sync::Arc::new(atelier::loadgen::export_ids(&db.primary_url, 100_000, DEFAULT_SEED).await?);
            println!("sending {events} stock movements from {concurrency} clients to {server}");
            let (mut recorder, took) = atelier::loadgen::write_load(server, ids, events, concurrency).await?;
            let errors = recorder.errors(atelier::loadgen::Route::Movement.ok_statuses());
            let s = recorder.summary();
            println!("statuses: {}", recorder.statuses());
            println!(
                "{} requests in {:.1} s: {:.0} requests/s; latency ms mean {:.2} p50 {:.2} p95 {:.2} p99 {:.2} max {:.2}; errors {errors}",
                s.count,
                took.as_secs_f64(),
                s.count as f64 / took.as_secs_f64(),
                s.mean_us as f64 / 1e3,
                s.p50_us as f64 / 1e3,
                s.p95_us as f64 / 1e3,
                s.p99_us as f64 / 1e3,
                s.max_us as f64 / 1e3
            );
            if errors > 0 {
                return Err(atelier::tool::ToolError::msg(format!("{errors} requests failed")));
            }
            Ok(())
        }
        Command::Stress { db, server, rates, step_seconds, out_dir, routes } => {
            use atelier::loadgen::{open_loop_step, step_plot_svg, step_table, Route};
            let chosen: Vec<Route> = routes
                .iter()
                .map(|name| {
                    Route::parse(name).ok_or_else(|| atelier::tool::ToolError::msg(format!("unknown route {name:?}")))
                })
                .collect::<Result<_, _>>()?;
            let ids = std::sync::Arc::new(atelier::loadgen::export_ids(&db.primary_url, 100_000, DEFAULT_SEED).await?);
            let mut results = Vec::new();
            for route in chosen {
                for rate in &rates {
                    let step =
                        open_loop_step(server, ids.clone(), route, *rate, std::time::Duration::from_secs(step_seconds))
                            .await?;
                    println!(
                        "{:<28} {:>6} rps target {:>9.1} achieved  p99 {:>8.2} ms  errors {:.2}%",
                        route.label(),
                        rate,
                        step.achieved_rps,
                        step.summary.p99_us as f64 / 1e3,
                        step.error_rate * 100.0
                    );
                    results.push(step);
                }
            }
            std::fs::create_dir_all(&out_dir)?;
            let table = step_table(&results);
            std::fs::write(out_dir.join("stress.md"), &table)?;
            std::fs::write(out_dir.join("stress.svg"), step_plot_svg(&results))?;
            println!("\n{table}\nwrote {0}/stress.md and {0}/stress.svg", out_dir.display());
            Ok(())
        }
        Command::JtlSummary { file, fail_on_error } => {
            let text = std::fs::read_to_string(&file)?;
            let groups = atelier::jtl::summarise(&text)?;
            print!("{}", atelier::jtl::table(&groups));
            if fail_on_error && groups.iter().any(|g| g.error_rate > 0.0) {
                return Err(atelier::tool::ToolError::msg("some requests failed"));
            }
            if groups.is_empty() {
                return Err(atelier::tool::ToolError::msg("the results file holds no samples"));
            }
            Ok(())
        }
        Command::Explain { db, summary } => {
            let replica =
                db.replica_urls.first().ok_or_else(|| atelier::tool::ToolError::msg("no replica configured"))?;
            let plans = atelier::explain::explain(&db.primary_url, replica).await?;
            if !summary {
                for plan in &plans {
                    println!("== {} on {}\n{}\n", plan.name, plan.node, plan.text);
                }
            }
            println!("| query | node | execution ms |\n|---|---|---:|");
            for plan in &plans {
                println!("| {} | {} | {:.3} |", plan.name, plan.node, plan.execution_ms);
            }
            Ok(())
        }
        Command::Generate { catalog, csv } => {
            let started = std::time::Instant::now();
            let counts = atelier::csv::write(catalog.catalog(), &csv)?;
            for (file, rows) in &counts {
                println!("  {file:<14} {rows:>12} rows");
            }
            println!("wrote {} in {:.1} s", csv.display(), started.elapsed().as_secs_f64());
            Ok(())
        }
    }
}

async fn load_and_report(primary: &str, replicas: &[String], source: Source, options: LoadOptions) -> ToolResult<()> {
    println!("loading {source:?} with {} connections", options.connections);
    let report = load::load(primary, replicas, source, options).await?;
    report.print();
    Ok(())
}

async fn serve(config: ServerConfig) -> ToolResult<()> {
    let listener = tokio::net::TcpListener::bind(config.listen).await?;
    let address = listener.local_addr()?;
    let state = server::AppState::new(config).map_err(|e| atelier::tool::ToolError::msg(e.to_string()))?;
    println!("atelier listening on http://{address}");
    println!("  try: curl -i 'http://{address}/products?page=1&count=3'");
    println!("       curl -i http://{address}/products/1");
    println!("       curl -i http://{address}/products/1/styles");
    println!("       curl -i http://{address}/products/1/related");
    println!("       curl -i http://{address}/readyz");
    let shutdown = async {
        let _ = tokio::signal::ctrl_c().await;
        println!("shutting down");
    };
    server::run(listener, state, shutdown).await;
    Ok(())
}
