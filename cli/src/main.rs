//! `atelier`: the service and its tools behind one command. This file only
//! parses the command line and hands each subcommand to its module in
//! `commands/`, which calls the libraries and prints their reports.

mod commands;

use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};
use tracing_subscriber::EnvFilter;

use commands::{backup, cluster, data, loadtest, schema, serve, token};

#[derive(Parser)]
#[command(name = "atelier", version, about = "The Atelier Products API: CQRS on PostgreSQL with logical read replicas")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Start the local cluster, load demo data if it is empty, and serve.
    Up(serve::UpArgs),
    /// Serve the HTTP API.
    Serve(serve::ServeArgs),
    /// Control the local cluster (a primary and two replicas on loopback).
    Cluster(cluster::ClusterCommand),
    /// Apply the schema migrations (refinery) to one database.
    Migrate(schema::MigrateArgs),
    /// Publish the read model on a primary and subscribe replicas to it.
    Replicate(schema::ReplicateArgs),
    /// Backups of the primary with pgBackRest: take one, list them, report
    /// their age and the WAL archive's state for Prometheus.
    Backup(backup::BackupCommand),
    /// Issue, list and revoke the bearer tokens writes need.
    Token(token::TokenCommand),
    /// Bulk-load a catalog into the primary (generated, or from CSV files),
    /// build the read model, and bring every replica up to date.
    Load(data::LoadArgs),
    /// Write a generated catalog as CSV files in the public Atelier layout.
    Generate(data::GenerateArgs),
    /// Rebuild every document from the write model and compare it with the
    /// primary's and every replica's stored documents; exit 1 on any drift.
    Check(data::CheckArgs),
    /// After a failover (a new primary timeline): compare one replica with
    /// the primary and copy it afresh if it differs; counts kept in a
    /// Prometheus text file.
    Reconcile(data::ReconcileArgs),
    /// EXPLAIN (ANALYZE, BUFFERS) of every API statement on the primary and
    /// the first replica, for ids in the last 10% and the deepest page.
    Explain(data::ExplainArgs),
    /// Export ids for load tests (product_id,sku_id,delta), biased to the
    /// last 10% of products and skus, as the JMeter plan reads them.
    ExportIds(loadtest::ExportIdsArgs),
    /// Send stock movements through the HTTP API from concurrent clients
    /// (closed loop) and report throughput and latency percentiles.
    WriteLoad(loadtest::WriteLoadArgs),
    /// Stepped stress test: fixed arrival rates per route (open loop); prints
    /// a table and writes it with a latency-versus-rate SVG plot.
    Stress(loadtest::StressArgs),
    /// Summarise a JMeter results file (.jtl, CSV with header) per group.
    JtlSummary(loadtest::JtlSummaryArgs),
}

/// The command line, parsed. clap names the flag of a value it refuses; a
/// service's settings usually come from the environment, so the error also
/// names the flag's variable.
fn parse() -> Cli {
    Cli::try_parse().unwrap_or_else(|error| {
        let flag = match error.get(clap::error::ContextKind::InvalidArg) {
            Some(clap::error::ContextValue::String(arg)) => arg.split(' ').next().map(str::to_string),
            _ => None,
        };
        let variable = flag.and_then(|flag| variable_of(&Cli::command(), flag.trim_start_matches("--")));
        let mut text = error.render().to_string();
        if let (Some(variable), Some(end)) = (variable, text.find('\n')) {
            text.insert_str(end, &format!(" (the flag, or the variable {variable})"));
        }
        eprint!("{text}");
        std::process::exit(error.exit_code())
    })
}

/// The environment variable of flag `--long` in `command` or any subcommand.
fn variable_of(command: &clap::Command, long: &str) -> Option<String> {
    command
        .get_arguments()
        .find(|arg| arg.get_long() == Some(long))
        .and_then(|arg| arg.get_env())
        .map(|env| env.to_string_lossy().into_owned())
        .or_else(|| command.get_subcommands().find_map(|sub| variable_of(sub, long)))
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_env("ATELIER_LOG").unwrap_or_else(|_| EnvFilter::new("info")))
        .with_target(false)
        .init();
    let cli = parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("atelier: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Up(args) => serve::up(args).await,
            Command::Serve(args) => serve::serve(args).await,
            Command::Cluster(args) => cluster::run(args).await,
            Command::Migrate(args) => schema::migrate(args).await,
            Command::Replicate(args) => schema::replicate(args).await,
            Command::Token(args) => token::run(args).await,
            Command::Backup(args) => backup::run(args).await,
            Command::Load(args) => data::load(args).await,
            Command::Generate(args) => data::generate(args),
            Command::Check(args) => data::check(args).await,
            Command::Reconcile(args) => data::reconcile(args).await,
            Command::Explain(args) => data::explain(args).await,
            Command::ExportIds(args) => loadtest::export_ids(args).await,
            Command::WriteLoad(args) => loadtest::write_load(args).await,
            Command::Stress(args) => loadtest::stress(args).await,
            Command::JtlSummary(args) => loadtest::jtl_summary(args),
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("atelier: {error}");
            ExitCode::FAILURE
        }
    }
}
