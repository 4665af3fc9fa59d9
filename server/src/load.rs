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

use std::collections::VecDeque;
use std::error::Error;
use std::future::Future;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::{BufMut, Bytes, BytesMut};
use futures_util::SinkExt;
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use postgres_types::{to_sql_checked, IsNull, ToSql, Type};
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::Client;

use crate::check::KINDS;
use crate::generate::{photo_url, thumbnail_url, Catalog};
use crate::provision::{self, ident};
use crate::tool::{connect, ToolError, ToolResult};

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

    pub fn print(&self) {
        println!("rows per table:");
        for (table, rows) in &self.tables {
            println!("  {table:<16} {rows:>12}");
        }
        println!("seconds per phase:");
        for (phase, took) in &self.phases {
            println!("  {phase:<16} {:>9.1} s", took.as_secs_f64());
        }
        println!("bytes on disk:");
        for (node, bytes) in &self.disk_bytes {
            println!("  {node:<16} {:>9.1} MiB", *bytes as f64 / 1_048_576.0);
        }
        let seconds = self.total.as_secs_f64();
        println!(
            "total: {} rows in {seconds:.1} s, {:.0} rows/s overall",
            self.rows(),
            self.rows() as f64 / seconds.max(0.001)
        );
    }
}

/// Cents, sent to PostgreSQL as a binary `numeric` with two decimals.
#[derive(Debug, Clone, Copy)]
pub struct Money(pub i64);

impl ToSql for Money {
    fn to_sql(&self, _: &Type, out: &mut BytesMut) -> Result<IsNull, Box<dyn Error + Sync + Send>> {
        // numeric's binary form: digit count, weight of the first digit (in
        // powers of 10000), sign, display scale, then base-10000 digits.
        let negative = self.0 < 0;
        let cents = self.0.unsigned_abs();
        let mut integer = cents / 100;
        let fraction = (cents % 100) as i16 * 100;
        let mut digits: Vec<i16> = Vec::new();
        while integer > 0 {
            digits.push((integer % 10_000) as i16);
            integer /= 10_000;
        }
        digits.reverse();
        // A value below 1 starts at the fraction: weight -1.
        let weight = digits.len() as i16 - 1;
        if fraction != 0 {
            digits.push(fraction);
        }
        while digits.last() == Some(&0) {
            digits.pop();
        }
        out.put_i16(digits.len() as i16);
        out.put_i16(if digits.is_empty() { 0 } else { weight });
        out.put_u16(if negative { 0x4000 } else { 0 });
        out.put_i16(2);
        for digit in digits {
            out.put_i16(digit);
        }
        Ok(IsNull::No)
    }

    fn accepts(ty: &Type) -> bool {
        *ty == Type::NUMERIC
    }

    to_sql_checked!();
}

/// The write-model tables a load fills, in the order of `Table`.
pub const WRITE_TABLES: [&str; 7] =
    ["product", "feature", "style", "photo", "sku", "stock_movement", "related_product"];

/// The tables COPY fills (the ledger is derived from skus in SQL).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Table {
    Product,
    Feature,
    Style,
    Photo,
    Sku,
    Related,
}

impl Table {
    /// Largest first, so the long COPYs start early.
    const ALL: [Table; 6] = [Table::Photo, Table::Sku, Table::Style, Table::Related, Table::Feature, Table::Product];

    pub fn name(self) -> &'static str {
        match self {
            Table::Product => "product",
            Table::Feature => "feature",
            Table::Style => "style",
            Table::Photo => "photo",
            Table::Sku => "sku",
            Table::Related => "related_product",
        }
    }

    /// The CSV file of the public Atelier layout.
    pub fn csv_file(self) -> &'static str {
        match self {
            Table::Product => "product.csv",
            Table::Feature => "features.csv",
            Table::Style => "styles.csv",
            Table::Photo => "photos.csv",
            Table::Sku => "skus.csv",
            Table::Related => "related.csv",
        }
    }

    /// Target columns, in the order of the binary rows and of the CSV
    /// columns (the public layout's names differ: productId, styleId,
    /// default_style, current_product_id).
    fn columns(self) -> &'static str {
        match self {
            Table::Product => "id, name, slogan, description, category, default_price, created_at, updated_at",
            Table::Feature => "id, product_id, feature, value",
            Table::Style => "id, product_id, name, sale_price, original_price, is_default",
            Table::Photo => "id, style_id, url, thumbnail_url",
            Table::Sku => "id, style_id, size, quantity",
            Table::Related => "id, product_id, related_product_id",
        }
    }

    fn types(self) -> &'static [Type] {
        match self {
            Table::Product => &[
                Type::INT8,
                Type::TEXT,
                Type::TEXT,
                Type::TEXT,
                Type::TEXT,
                Type::NUMERIC,
                Type::TIMESTAMPTZ,
                Type::TIMESTAMPTZ,
            ],
            Table::Feature | Table::Photo => &[Type::INT8, Type::INT8, Type::TEXT, Type::TEXT],
            Table::Style => &[Type::INT8, Type::INT8, Type::TEXT, Type::NUMERIC, Type::NUMERIC, Type::BOOL],
            Table::Sku => &[Type::INT8, Type::INT8, Type::TEXT, Type::INT8],
            Table::Related => &[Type::INT8, Type::INT8, Type::INT8],
        }
    }
}

/// Products per read-model build statement: small enough for a smooth
/// progress bar and even sharing between connections, large enough that
/// statement overhead does not matter.
const BUILD_CHUNK_IDS: i64 = 10_000;
/// CSV bytes per COPY message.
const CSV_CHUNK_BYTES: usize = 256 * 1024;

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
    let jobs: Vec<Table> = Table::ALL.to_vec();
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
    counts.sort_by_key(|(table, _)| WRITE_TABLES.iter().position(|t| t == table));
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
        admin
            .batch_execute(
                "truncate product, feature, style, photo, sku, stock_movement, related_product, idempotency_key,
                          product_card, product_detail, product_styles, product_related, product_page_block,
                          product_page_superblock
                 restart identity",
            )
            .await?;
        let tables: Vec<String> = WRITE_TABLES.iter().map(|t| t.to_string()).collect();
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
        for kind in KINDS {
            jobs.push((kind, start, end));
        }
        start = end + 1;
    }
    let bar = bars.add(ProgressBar::new((count as u64) * KINDS.len() as u64));
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

/// Streams one table of a generated catalog with binary COPY.
async fn copy_generated(client: &Client, catalog: Catalog, table: Table, bars: &MultiProgress) -> ToolResult<u64> {
    let sink =
        client.copy_in(&format!("copy {} ({}) from stdin (format binary)", table.name(), table.columns())).await?;
    let writer = BinaryCopyInWriter::new(sink, table.types());
    let mut writer = std::pin::pin!(writer);
    let bar = product_bar(bars, table, catalog.products as u64);
    let started = Instant::now();
    let mut ids = Ids::default();
    let mut rows = 0_u64;
    for product in catalog.iter() {
        let at = timestamp(product.created_at);
        match table {
            Table::Product => {
                writer
                    .as_mut()
                    .write(&[
                        &product.id,
                        &product.name,
                        &product.slogan,
                        &product.description,
                        &product.category,
                        &Money(product.default_price_cents),
                        &at,
                        &at,
                    ])
                    .await?;
                rows += 1;
            }
            Table::Feature => {
                for (feature, value) in &product.features {
                    ids.feature += 1;
                    writer.as_mut().write(&[&ids.feature, &product.id, feature, value]).await?;
                    rows += 1;
                }
            }
            Table::Related => {
                for related in &product.related {
                    ids.related += 1;
                    writer.as_mut().write(&[&ids.related, &product.id, related]).await?;
                    rows += 1;
                }
            }
            Table::Style | Table::Photo | Table::Sku => {
                for style in &product.styles {
                    ids.style += 1;
                    if table == Table::Style {
                        writer
                            .as_mut()
                            .write(&[
                                &ids.style,
                                &product.id,
                                &style.name,
                                &style.sale_price_cents.map(Money),
                                &Money(style.original_price_cents),
                                &style.is_default,
                            ])
                            .await?;
                        rows += 1;
                    } else if table == Table::Photo {
                        for image in &style.photos {
                            ids.photo += 1;
                            writer
                                .as_mut()
                                .write(&[&ids.photo, &ids.style, &photo_url(*image), &thumbnail_url(*image)])
                                .await?;
                            rows += 1;
                        }
                    } else {
                        for (size, quantity) in &style.skus {
                            ids.sku += 1;
                            writer.as_mut().write(&[&ids.sku, &ids.style, size, quantity]).await?;
                            rows += 1;
                        }
                    }
                }
            }
        }
        if product.id % 4096 == 0 {
            tick(&bar, product.id as u64, rows, started);
        }
    }
    writer.finish().await?;
    bar.finish_and_clear();
    Ok(rows)
}

/// Streams one CSV file with text COPY. The product file may carry
/// created_at and updated_at as two extra columns (ours does, so a CSV
/// load equals a direct load); the public layout's six columns get now().
async fn copy_csv(client: &Client, dir: &Path, table: Table, bars: &MultiProgress) -> ToolResult<u64> {
    let path = dir.join(table.csv_file());
    let mut file = std::fs::File::open(&path).map_err(|e| ToolError::msg(format!("{}: {e}", path.display())))?;
    let size = file.metadata()?.len();
    let mut columns = table.columns().to_string();
    if table == Table::Product {
        let mut head = String::new();
        std::io::BufRead::read_line(&mut std::io::BufReader::new(std::fs::File::open(&path)?), &mut head)?;
        if head.trim_end().split(',').count() == 6 {
            columns = "id, name, slogan, description, category, default_price".to_string();
        }
    }
    let sql = format!("copy {} ({columns}) from stdin (format csv, header true, null 'null')", table.name());
    let sink = client.copy_in::<_, Bytes>(&sql).await?;
    let mut sink = std::pin::pin!(sink);
    let bar = bars.add(ProgressBar::new(size));
    bar.set_style(bar_style("bytes"));
    bar.set_prefix(table.name());
    let mut buffer = vec![0_u8; CSV_CHUNK_BYTES];
    loop {
        let n = file.read(&mut buffer)?;
        if n == 0 {
            break;
        }
        sink.send(Bytes::copy_from_slice(&buffer[..n])).await?;
        bar.inc(n as u64);
    }
    let rows = sink.as_mut().finish().await?;
    bar.finish_and_clear();
    Ok(rows)
}

/// Runs `jobs` on `workers` connections to `url`, each worker taking the
/// next job when it is done with one. Stops at the first error.
async fn in_parallel<T, F, Fut>(url: &str, workers: usize, jobs: Vec<T>, run: F) -> ToolResult<()>
where
    T: Send + 'static,
    F: Fn(Arc<Client>, T) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ToolResult<()>> + Send,
{
    let queue = Arc::new(Mutex::new(VecDeque::from(jobs)));
    let run = Arc::new(run);
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..workers.max(1) {
        let client = Arc::new(connect(url).await?);
        let (queue, run) = (queue.clone(), run.clone());
        tasks.spawn(async move {
            loop {
                let job = queue.lock().expect("job queue lock").pop_front();
                let Some(job) = job else { return Ok(()) };
                run(client.clone(), job).await?;
            }
        });
    }
    while let Some(done) = tasks.join_next().await {
        let result: ToolResult<()> = done.map_err(|e| ToolError::msg(format!("load worker failed: {e}")))?;
        if let Err(error) = result {
            tasks.abort_all();
            return Err(error);
        }
    }
    Ok(())
}

/// The last id used in each child table, as the walk over products goes.
#[derive(Default, Clone, Copy)]
struct Ids {
    feature: i64,
    style: i64,
    photo: i64,
    sku: i64,
    related: i64,
}

fn timestamp(seconds: i64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(seconds.max(0) as u64)
}

fn bar_style(unit: &str) -> ProgressStyle {
    ProgressStyle::with_template(&format!(
        "{{prefix:>16}} [{{bar:30}}] {{pos}}/{{len}} {unit} {{msg}} {{per_sec}} eta {{eta}}"
    ))
    .expect("static template")
    .progress_chars("=> ")
}

fn product_bar(bars: &MultiProgress, table: Table, products: u64) -> ProgressBar {
    let bar = bars.add(ProgressBar::new(products));
    bar.set_style(bar_style("products"));
    bar.set_prefix(table.name());
    bar
}

fn tick(bar: &ProgressBar, position: u64, rows: u64, started: Instant) {
    bar.set_position(position);
    let rate = rows as f64 / started.elapsed().as_secs_f64().max(0.001);
    bar.set_message(format!("({rows} rows, {rate:.0} rows/s)"));
}

fn spinner(bars: &MultiProgress, prefix: &'static str, message: &str) -> ProgressBar {
    let bar = bars.add(ProgressBar::new_spinner());
    bar.set_style(ProgressStyle::with_template("{prefix:>16} {spinner} {msg} {elapsed}").expect("static template"));
    bar.set_prefix(prefix);
    bar.set_message(message.to_string());
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}
