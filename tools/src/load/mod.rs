//! Bulk load at Atelier scale: a generated catalog (binary COPY, no file in
//! between) or CSV files in the public Atelier layout, into the primary;
//! then the read model, built set-based by the same SQL views the triggers
//! use; then every replica brought up to date.
//!
//! Phases, each with a progress bar and a time in the summary:
//! 1. detach: drop each replica's subscription, so the load is not decoded
//!    and streamed row by row (re-attached in phase 7, also on failure);
//! 2. prepare: mark the load as running (table `bulk_load`), empty the
//!    tables, drop secondary indexes after recording their definitions;
//! 3. copy: one COPY per table, `connections` at a time, triggers and
//!    foreign-key checks off (`session_replication_role = replica`);
//! 4. ledger: each sku's initial quantity becomes its first movement (the
//!    API's definition, `initial_stock_movement`), in parallel id ranges;
//! 5. indexes: the recorded definitions, rebuilt on the loaded data;
//! 6. read model: `build_docs(kind, first, last)` for id ranges in parallel,
//!    then page blocks and statistics; the load is marked complete;
//! 7. replicas: subscribe again with an initial copy, wait until caught up.
//!
//! A failure leaves `bulk_load.state = 'loading'`; every later load and
//! `atelier check` say to run `atelier load --replace` again. Dropped index
//! definitions survive in `bulk_load` and are restored by the next load.

mod copy;
mod parallel;

use std::fmt;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use atelier_schema::tables::{PAGING_TABLES, WRITE_MODEL_TABLES};
use atelier_schema::DocumentKind;
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use tokio_postgres::Client;

use crate::db::{connect, ToolError, ToolResult};
use crate::generate::Catalog;
use crate::layout::Table;
use crate::provision::{self, ident};
use copy::{copy_csv, copy_generated};
use parallel::in_parallel;

/// The order the copy phase takes the tables in: largest first, so the long
/// COPYs start early.
const COPY_ORDER: [Table; 6] = [Table::Photo, Table::Sku, Table::Style, Table::Related, Table::Feature, Table::Product];

/// Where the rows come from.
#[derive(Clone, Debug)]
pub enum Source {
    Generated(Catalog),
    /// A directory of CSV files as `atelier generate --csv` writes them.
    Csv(PathBuf),
}

#[derive(Clone, Copy, Debug)]
pub struct LoadOptions {
    /// Replace a catalog that is already there.
    pub replace: bool,
    /// Connections working at once in the copy, index and read-model
    /// phases. One per core keeps PostgreSQL busy without thrashing.
    pub connections: usize,
}

pub struct LoadReport {
    /// Rows per write-model table.
    pub tables: Vec<(String, u64)>,
    pub phases: Vec<(&'static str, Duration)>,
    /// Database size on the primary and each replica after the load.
    pub disk_bytes: Vec<(String, i64)>,
    pub total: Duration,
}

impl LoadReport {
    pub fn rows(&self) -> u64 {
        self.tables.iter().map(|(_, n)| n).sum()
    }
}

impl fmt::Display for LoadReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "rows per table:")?;
        for (table, rows) in &self.tables {
            writeln!(f, "  {table:<16} {rows:>12}")?;
        }
        writeln!(f, "seconds per phase:")?;
        for (phase, took) in &self.phases {
            writeln!(f, "  {phase:<16} {:>9.1} s", took.as_secs_f64())?;
        }
        writeln!(f, "bytes on disk:")?;
        for (node, bytes) in &self.disk_bytes {
            writeln!(f, "  {node:<16} {:>9.1} MiB", *bytes as f64 / 1_048_576.0)?;
        }
        let seconds = self.total.as_secs_f64();
        write!(
            f,
            "total: {} rows in {seconds:.1} s, {:.0} rows/s overall",
            self.rows(),
            self.rows() as f64 / seconds.max(0.001)
        )
    }
}

/// Products per read-model build statement: small enough for a smooth
/// progress bar and even sharing between connections, large enough that
/// statement overhead does not matter.
const BUILD_CHUNK_IDS: i64 = 10_000;

/// Loads `source` into the primary and brings every replica up to date.
pub async fn load(
    primary_url: &str,
    replica_urls: &[String],
    source: Source,
    options: LoadOptions,
) -> ToolResult<LoadReport> {
    let started = Instant::now();
    let bars = MultiProgress::new();
    let admin = connect(primary_url).await?;
    restore_indexes(&admin, primary_url, options.connections).await?;
    let existing: i64 = admin.query_one("select count(*) from product", &[]).await?.get(0);
    let unfinished = admin.query_opt("select 1 from bulk_load where state = 'loading'", &[]).await?.is_some();
    if (existing > 0 || unfinished) && !options.replace {
        return Err(ToolError::msg(if unfinished {
            "an earlier bulk load did not finish; run the load again with --replace (nothing was changed)".to_string()
        } else {
            format!(
                "the primary already holds {existing} products; pass --replace to replace them (nothing was changed)"
            )
        }));
    }
    let mut phases = Vec::new();

    let phase = Instant::now();
    let detached = provision::detach(replica_urls).await?;
    phases.push(("detach replicas", phase.elapsed()));

    let loaded = load_primary(&admin, primary_url, &source, options, &bars, &mut phases).await;

    let phase = Instant::now();
    let busy = spinner(&bars, "replicas", "initial copy of the read model");
    let attached = provision::attach(primary_url, &detached, Duration::from_secs(3600)).await;
    busy.finish_and_clear();
    phases.push(("replicas", phase.elapsed()));
    let tables = loaded?;
    attached?;

    let mut disk_bytes = Vec::new();
    for (name, url) in std::iter::once(("primary".to_string(), primary_url.to_string()))
        .chain(replica_urls.iter().enumerate().map(|(i, u)| (format!("replica{}", i + 1), u.clone())))
    {
        let client = connect(&url).await?;
        disk_bytes.push((name, client.query_one("select pg_database_size(current_database())", &[]).await?.get(0)));
    }
    Ok(LoadReport { tables, phases, disk_bytes, total: started.elapsed() })
}

/// Phases 2 to 6, on the primary.
async fn load_primary(
    admin: &Client,
    primary_url: &str,
    source: &Source,
    options: LoadOptions,
    bars: &MultiProgress,
    phases: &mut Vec<(&'static str, Duration)>,
) -> ToolResult<Vec<(String, u64)>> {
    let products = match source {
        Source::Generated(catalog) => Some(catalog.products),
        Source::Csv(_) => None,
    };

    let phase = Instant::now();
    let indexes = prepare(admin, products).await?;
    phases.push(("prepare", phase.elapsed()));

    let phase = Instant::now();
    let counts: Arc<Mutex<Vec<(String, u64)>>> = Arc::default();
    let jobs: Vec<Table> = COPY_ORDER.to_vec();
    let (source, bars_for_copy, counts_for_copy) = (source.clone(), bars.clone(), counts.clone());
    in_parallel(primary_url, options.connections, jobs, move |client, table| {
        let (source, bars, counts) = (source.clone(), bars_for_copy.clone(), counts_for_copy.clone());
        async move {
            client.batch_execute("set session_replication_role = replica").await?;
            let rows = match &source {
                Source::Generated(catalog) => copy_generated(&client, *catalog, table, &bars).await?,
                Source::Csv(dir) => copy_csv(&client, dir, table, &bars).await?,
            };
            counts.lock().expect("counts lock").push((table.name().to_string(), rows));
            Ok(())
        }
    })
    .await?;
    phases.push(("copy", phase.elapsed()));

    let phase = Instant::now();
    let movements = open_ledgers(admin, primary_url, options.connections, bars).await?;
    admin.batch_execute("select reset_identity_sequences()").await?;
    counts.lock().expect("counts lock").push(("stock_movement".to_string(), movements));
    phases.push(("ledger", phase.elapsed()));

    let phase = Instant::now();
    let busy = spinner(bars, "indexes", &format!("{} secondary indexes", indexes.len()));
    create_indexes(primary_url, options.connections, indexes).await?;
    admin.batch_execute("update bulk_load set dropped_indexes = '{}' where id = 1").await?;
    busy.finish_and_clear();
    phases.push(("indexes", phase.elapsed()));

    let phase = Instant::now();
    build_read_model(admin, primary_url, options.connections, bars).await?;
    phases.push(("read model", phase.elapsed()));

    let phase = Instant::now();
    let busy = spinner(bars, "analyze", "planner statistics");
    admin.batch_execute("analyze").await?;
    admin.batch_execute("update bulk_load set state = 'complete', finished_at = now() where id = 1").await?;
    busy.finish_and_clear();
    phases.push(("analyze", phase.elapsed()));

    let mut counts = counts.lock().expect("counts lock").clone();
    counts.sort_by_key(|(table, _)| WRITE_MODEL_TABLES.iter().position(|t| t == table));
    Ok(counts)
}

/// Marks the load as running, empties every table, and drops the secondary
/// indexes of the write model, recording their definitions first. One
/// transaction: either all of it happens or none.
async fn prepare(admin: &Client, products: Option<i64>) -> ToolResult<Vec<String>> {
    admin.batch_execute("begin").await?;
    let result = async {
        admin
            .execute(
                "insert into bulk_load (id, state, products) values (1, 'loading', $1)
                 on conflict (id) do update set state = 'loading', products = $1, started_at = now(), finished_at = null",
                &[&products],
            )
            .await?;
        // Everything but the heartbeat, whose one row the replicas follow.
        let emptied: Vec<&str> = WRITE_MODEL_TABLES
            .into_iter()
            .chain(["idempotency_key"])
            .chain(DocumentKind::ALL.map(DocumentKind::table))
            .chain(PAGING_TABLES)
            .collect();
        admin.batch_execute(&format!("truncate {} restart identity", emptied.join(", "))).await?;
        let tables: Vec<String> = WRITE_MODEL_TABLES.iter().map(|t| t.to_string()).collect();
        let rows = admin
            .query(
                "select c.relname::text, pg_get_indexdef(i.indexrelid)
                 from pg_index i
                 join pg_class c on c.oid = i.indexrelid
                 join pg_class t on t.oid = i.indrelid
                 where t.relname = any($1) and t.relnamespace = 'public'::regnamespace
                   and not exists (select 1 from pg_constraint k where k.conindid = i.indexrelid)",
                &[&tables],
            )
            .await?;
        let definitions: Vec<String> = rows.iter().map(|r| r.get(1)).collect();
        admin.execute("update bulk_load set dropped_indexes = dropped_indexes || $1 where id = 1", &[&definitions]).await?;
        for row in &rows {
            let name: String = row.get(0);
            admin.batch_execute(&format!("drop index {}", ident(&name)?)).await?;
        }
        Ok::<_, ToolError>(definitions)
    }
    .await;
    match result {
        Ok(definitions) => {
            admin.batch_execute("commit").await?;
            Ok(definitions)
        }
        Err(error) => {
            admin.batch_execute("rollback").await?;
            Err(error)
        }
    }
}

/// Puts back indexes an interrupted load dropped.
async fn restore_indexes(admin: &Client, primary_url: &str, connections: usize) -> ToolResult<()> {
    let Some(row) = admin.query_opt("select dropped_indexes from bulk_load where id = 1", &[]).await? else {
        return Ok(());
    };
    let definitions: Vec<String> = row.get(0);
    if !definitions.is_empty() {
        eprintln!("restoring {} indexes dropped by an interrupted load", definitions.len());
        create_indexes(primary_url, connections, definitions).await?;
        admin.batch_execute("update bulk_load set dropped_indexes = '{}' where id = 1").await?;
    }
    Ok(())
}

async fn create_indexes(primary_url: &str, connections: usize, definitions: Vec<String>) -> ToolResult<()> {
    in_parallel(primary_url, connections, definitions, |client, definition| async move {
        let definition = definition.replacen("CREATE UNIQUE INDEX ", "CREATE UNIQUE INDEX IF NOT EXISTS ", 1).replacen(
            "CREATE INDEX ",
            "CREATE INDEX IF NOT EXISTS ",
            1,
        );
        client.batch_execute("set maintenance_work_mem = '256MB'").await?;
        client.batch_execute(&definition).await?;
        Ok(())
    })
    .await
}

/// Skus per ledger statement (see BUILD_CHUNK_IDS).
const LEDGER_CHUNK_IDS: i64 = 200_000;

/// The ledger phase: every sku's opening movement, from the same definition
/// the API uses (the view `initial_stock_movement`), in sku id ranges on
/// several connections. A movement's id is its sku's id, so the ledger is
/// the same row for row however the ranges interleave.
async fn open_ledgers(admin: &Client, primary_url: &str, connections: usize, bars: &MultiProgress) -> ToolResult<u64> {
    let row = admin.query_one("select coalesce(min(id), 1), coalesce(max(id), 0) from sku", &[]).await?;
    let (first, last): (i64, i64) = (row.get(0), row.get(1));
    let ranges: Vec<(i64, i64)> = (first..=last)
        .step_by(LEDGER_CHUNK_IDS as usize)
        .map(|start| (start, (start + LEDGER_CHUNK_IDS - 1).min(last)))
        .collect();
    let bar = bars.add(ProgressBar::new((last - first + 1).max(0) as u64));
    bar.set_style(bar_style("skus"));
    bar.set_prefix("ledger");
    let opened = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let (progress, total) = (bar.clone(), opened.clone());
    in_parallel(primary_url, connections, ranges, move |client, (start, end)| {
        let (progress, total) = (progress.clone(), total.clone());
        async move {
            // Triggers off: a bulk load builds the read model afterwards.
            client.batch_execute("set session_replication_role = replica").await?;
            let rows = client
                .execute(
                    "insert into stock_movement (id, sku_id, delta, reason, created_at) overriding system value
                     select sku_id, sku_id, delta, reason, product_created_at from initial_stock_movement
                     where sku_id between $1 and $2",
                    &[&start, &end],
                )
                .await?;
            total.fetch_add(rows, std::sync::atomic::Ordering::Relaxed);
            progress.inc((end - start + 1) as u64);
            Ok(())
        }
    })
    .await?;
    bar.finish_and_clear();
    Ok(opened.load(std::sync::atomic::Ordering::Relaxed))
}

/// Every document of every product, in id ranges, on several connections.
async fn build_read_model(
    admin: &Client,
    primary_url: &str,
    connections: usize,
    bars: &MultiProgress,
) -> ToolResult<()> {
    let row = admin.query_one("select coalesce(min(id), 1), coalesce(max(id), 0), count(*) from product", &[]).await?;
    let (first, last, count): (i64, i64, i64) = (row.get(0), row.get(1), row.get(2));
    let mut jobs = Vec::new();
    let mut start = first;
    while start <= last {
        let end = (start + BUILD_CHUNK_IDS - 1).min(last);
        for kind in DocumentKind::ALL {
            jobs.push((kind.name(), start, end));
        }
        start = end + 1;
    }
    let bar = bars.add(ProgressBar::new((count as u64) * DocumentKind::ALL.len() as u64));
    bar.set_style(bar_style("documents"));
    bar.set_prefix("read model");
    let progress = bar.clone();
    in_parallel(primary_url, connections, jobs, move |client, (kind, start, end)| {
        let progress = progress.clone();
        async move {
            let built: i64 = client.query_one("select build_docs($1, $2, $3)", &[&kind, &start, &end]).await?.get(0);
            progress.inc(built as u64);
            Ok(())
        }
    })
    .await?;
    bar.finish_and_clear();
    admin.batch_execute("select rebuild_page_blocks()").await?;
    Ok(())
}

pub(crate) fn bar_style(unit: &str) -> ProgressStyle {
    ProgressStyle::with_template(&format!(
        "{{prefix:>16}} [{{bar:30}}] {{pos}}/{{len}} {unit} {{msg}} {{per_sec}} eta {{eta}}"
    ))
    .expect("static template")
    .progress_chars("=> ")
}

fn spinner(bars: &MultiProgress, prefix: &'static str, message: &str) -> ProgressBar {
    let bar = bars.add(ProgressBar::new_spinner());
    bar.set_style(ProgressStyle::with_template("{prefix:>16} {spinner} {msg} {elapsed}").expect("static template"));
    bar.set_prefix(prefix);
    bar.set_message(message.to_string());
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}
