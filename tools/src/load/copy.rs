//! The copy phase: one table's rows streamed into COPY, either generated
//! (binary rows, no file in between) or read from a CSV file.

use std::io::Read;
use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use atelier_schema::Money;
use bytes::Bytes;
use futures_util::SinkExt;
use indicatif::{MultiProgress, ProgressBar};
use postgres_types::Type;
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::Client;

use crate::db::{ToolError, ToolResult};
use crate::generate::{photo_url, thumbnail_url, Catalog, IdWalk};
use crate::layout::Table;
use crate::load::bar_style;

/// CSV bytes per COPY message.
const CSV_CHUNK_BYTES: usize = 256 * 1024;

/// The binary types of `table`'s columns, in `Table::columns` order.
fn binary_types(table: Table) -> &'static [Type] {
    match table {
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

/// Streams one table of a generated catalog with binary COPY.
pub async fn copy_generated(client: &Client, catalog: Catalog, table: Table, bars: &MultiProgress) -> ToolResult<u64> {
    let sink =
        client.copy_in(&format!("copy {} ({}) from stdin (format binary)", table.name(), table.columns())).await?;
    let writer = BinaryCopyInWriter::new(sink, binary_types(table));
    let mut writer = std::pin::pin!(writer);
    let bar = product_bar(bars, table, catalog.products as u64);
    let started = Instant::now();
    let mut walk = IdWalk::default();
    let mut rows = 0_u64;
    for product in catalog.iter() {
        let owned = walk.rows(&product);
        match table {
            Table::Product => {
                let at = timestamp(product.created_at);
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
                for f in &owned.features {
                    writer.as_mut().write(&[&f.id, &f.product_id, &f.feature, &f.value]).await?;
                }
                rows += owned.features.len() as u64;
            }
            Table::Style => {
                for s in &owned.styles {
                    let style = s.style;
                    writer
                        .as_mut()
                        .write(&[
                            &s.id,
                            &s.product_id,
                            &style.name,
                            &style.sale_price_cents.map(Money),
                            &Money(style.original_price_cents),
                            &style.is_default,
                        ])
                        .await?;
                }
                rows += owned.styles.len() as u64;
            }
            Table::Photo => {
                for p in &owned.photos {
                    writer.as_mut().write(&[&p.id, &p.style_id, &photo_url(p.image), &thumbnail_url(p.image)]).await?;
                }
                rows += owned.photos.len() as u64;
            }
            Table::Sku => {
                for k in &owned.skus {
                    writer.as_mut().write(&[&k.id, &k.style_id, &k.size, &k.quantity]).await?;
                }
                rows += owned.skus.len() as u64;
            }
            Table::Related => {
                for r in &owned.related {
                    writer.as_mut().write(&[&r.id, &r.product_id, &r.related_product_id]).await?;
                }
                rows += owned.related.len() as u64;
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
pub async fn copy_csv(client: &Client, dir: &Path, table: Table, bars: &MultiProgress) -> ToolResult<u64> {
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

fn timestamp(seconds: i64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(seconds.max(0) as u64)
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
