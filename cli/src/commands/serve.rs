//! `atelier serve` and `atelier up`.

use atelier_schema::local;
use atelier_server::{App, Config};
use atelier_tools::cluster::{self, LocalCluster};
use atelier_tools::generate::{Catalog, DEFAULT_SEED, DEMO_PRODUCTS};
use atelier_tools::load::{LoadOptions, Source};
use atelier_tools::secrets::{has_password, Secrets};
use atelier_tools::{connect, ToolError, ToolResult};

use crate::commands::cluster::ClusterArgs;
use crate::commands::data::load_and_report;

#[derive(clap::Args)]
pub struct ServeArgs {
    #[command(flatten)]
    config: Config,
}

#[derive(clap::Args)]
pub struct UpArgs {
    #[command(flatten)]
    config: Config,
    #[command(flatten)]
    cluster: ClusterArgs,
}

/// Connections the demo load uses: one per core of a small machine.
const DEMO_LOAD_CONNECTIONS: usize = 2;

pub async fn serve(args: ServeArgs) -> ToolResult<()> {
    let mut config = args.config;
    // Only a URL without a password sends us looking for the local
    // cluster's; a deployed server is given all of them and never looks.
    let urls = &config.databases;
    if std::iter::once(&urls.primary_url).chain(&urls.replica_urls).any(|url| !has_password(url)) {
        if let Some(secrets) = LocalCluster::existing_secrets()? {
            fill_passwords(&mut config, &secrets);
        }
    }
    run(config).await
}

/// Adds the local cluster's passwords to URLs that name one of its roles
/// and carry no password (the defaults do).
fn fill_passwords(config: &mut Config, secrets: &Secrets) {
    let urls = &mut config.databases;
    urls.primary_url = secrets.fill(&urls.primary_url);
    for url in &mut urls.replica_urls {
        *url = secrets.fill(url);
    }
}

/// The local cluster up, demo data in an empty catalog, then serve.
pub async fn up(args: UpArgs) -> ToolResult<()> {
    let local = args.cluster.local_cluster()?;
    local.up()?;
    let (primary, replicas) = cluster::provision_local(&local, &args.cluster.database, false).await?;
    let products: i64 = connect(&primary).await?.query_one("select count(*) from product", &[]).await?.get(0);
    if products == 0 {
        let demo = Source::Generated(Catalog { seed: DEFAULT_SEED, products: DEMO_PRODUCTS });
        let options = LoadOptions { replace: false, connections: DEMO_LOAD_CONNECTIONS };
        load_and_report(&primary, &replicas, demo, options).await?;
    } else {
        println!("catalog already holds {products} products; not loading demo data");
    }
    if args.cluster.database != local::DATABASE {
        println!(
            "note: serving the URLs configured (ATELIER_PRIMARY_URL, ATELIER_REPLICA_URLS), not {}",
            args.cluster.database
        );
    }
    let mut config = args.config;
    let secrets = local.secrets()?;
    fill_passwords(&mut config, &secrets);
    if let Some(token) = secrets.token() {
        println!("development token (every scope; also in {}):", Secrets::file(&local.dir).display());
        println!("  {token}");
        println!("  writes: curl -i -X POST -H 'Authorization: Bearer {token}' -H 'Content-Type: application/json' \\");
        println!(
            "          -d '{{\"delta\": 5, \"reason\": \"restock\"}}' http://{}/skus/1/movements",
            config.http.listen
        );
    }
    run(config).await
}

async fn run(config: Config) -> ToolResult<()> {
    let app = App::build(config).await.map_err(|e| ToolError::msg(e.to_string()))?;
    let address = app.address();
    println!("atelier listening on http://{address}");
    if let Some(ops) = app.ops_address() {
        println!("  operations (/healthz, /readyz, /metrics only) on http://{ops}");
    }
    println!("  try: curl -i 'http://{address}/products?page=1&count=3'");
    println!("       curl -i http://{address}/products/1");
    println!("       curl -i http://{address}/products/1/styles");
    println!("       curl -i http://{address}/products/1/related");
    println!("       curl -i http://{address}/readyz");
    app.run_until_stopped(stop_signal()).await;
    println!("stopped");
    Ok(())
}

/// Completes on ctrl-c or SIGTERM (what systemd and `kill` send).
async fn stop_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut terminate) => {
                tokio::select! {
                    _ = interrupt => {}
                    _ = terminate.recv() => {}
                }
            }
            Err(_) => {
                let _ = interrupt.await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = interrupt.await;
    }
    println!("shutting down: finishing requests in flight");
}
