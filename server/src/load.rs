//! Bulk load: generated rows streamed into the primary with binary COPY,
//! then the read model built set-based by the same SQL the triggers use.
//!
//! The whole load is one transaction: a failure at any point leaves the old
//! data as it was. Triggers (and foreign-key checks, whose ids the generator
//! guarantees) are off for the COPY through `session_replication_role`.

use std::error::Error;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::{BufMut, BytesMut};
use postgres_types::{to_sql_checked, IsNull, ToSql, Type};
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::Transaction;

use crate::generate::{Catalog, Product};
use crate::provision;
use crate::tool::{connect, ToolError, ToolResult};

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
        let weight = digits.len() as i16 - 1;
        if fraction != 0 {
            digits.push(fraction);
        }
        // Leading zero digits are not allowed: a value below 1 starts at the
        // fraction, weight -1.
        let weight = if digits.is_empty() || weight < 0 { -1 } else { weight };
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

/// Row counts of one load, per table, in load order.
pub struct LoadReport {
    pub tables: Vec<(&'static str, u64, Duration)>,
    pub read_model: Duration,
    pub replicas: Duration,
}

const TABLES: [(&str, &str, &[Type]); 7] = [
    (
        "product",
        "product (id, name, slogan, description, category, default_price, created_at, updated_at)",
        &[
            Type::INT8,
            Type::TEXT,
            Type::TEXT,
            Type::TEXT,
            Type::TEXT,
            Type::NUMERIC,
            Type::TIMESTAMPTZ,
            Type::TIMESTAMPTZ,
        ],
    ),
    ("feature", "feature (id, product_id, feature, value)", &[Type::INT8, Type::INT8, Type::TEXT, Type::TEXT]),
    (
        "style",
        "style (id, product_id, name, original_price, sale_price, is_default)",
        &[Type::INT8, Type::INT8, Type::TEXT, Type::NUMERIC, Type::NUMERIC, Type::BOOL],
    ),
    ("photo", "photo (id, style_id, thumbnail_url, url)", &[Type::INT8, Type::INT8, Type::TEXT, Type::TEXT]),
    ("sku", "sku (id, style_id, size, quantity)", &[Type::INT8, Type::INT8, Type::TEXT, Type::INT8]),
    (
        "stock_movement",
        "stock_movement (id, sku_id, delta, reason, created_at)",
        &[Type::INT8, Type::INT8, Type::INT8, Type::TEXT, Type::TIMESTAMPTZ],
    ),
    ("related_product", "related_product (id, product_id, related_product_id)", &[Type::INT8, Type::INT8, Type::INT8]),
];

/// Loads `catalog` into the primary and waits for every replica.
/// Refuses a database that already has products unless `replace`.
pub async fn load(
    primary_url: &str,
    replica_urls: &[String],
    catalog: Catalog,
    replace: bool,
) -> ToolResult<LoadReport> {
    let mut client = connect(primary_url).await?;
    let tx = client.transaction().await?;
    let existing: i64 = tx.query_one("select count(*) from product", &[]).await?.get(0);
    if existing > 0 && !replace {
        return Err(ToolError::msg(format!(
            "the primary already holds {existing} products; pass --replace to replace them (nothing was changed)"
        )));
    }
    tx.batch_execute(
        "truncate product, feature, style, photo, sku, stock_movement, related_product cascade;
         set local session_replication_role = replica;",
    )
    .await?;
    let mut tables = Vec::new();
    for (index, (table, columns, types)) in TABLES.iter().enumerate() {
        let started = Instant::now();
        let rows = copy_table(&tx, catalog, index, columns, types).await?;
        tables.push((*table, rows, started.elapsed()));
    }
    let started = Instant::now();
    tx.batch_execute(
        "set local session_replication_role = origin;
         select reset_identity_sequences();
         select rebuild_all_docs();",
    )
    .await?;
    tx.commit().await?;
    let read_model = started.elapsed();
    let started = Instant::now();
    provision::wait_for_replicas(primary_url, replica_urls, Duration::from_secs(600)).await?;
    Ok(LoadReport { tables, read_model, replicas: started.elapsed() })
}

/// Streams table number `index` of TABLES for the whole catalog.
async fn copy_table(
    tx: &Transaction<'_>,
    catalog: Catalog,
    index: usize,
    columns: &str,
    types: &[Type],
) -> ToolResult<u64> {
    let sink = tx.copy_in(&format!("copy {columns} from stdin (format binary)")).await?;
    let writer = BinaryCopyInWriter::new(sink, types);
    let mut writer = std::pin::pin!(writer);
    let mut ids = Ids::default();
    let mut rows = 0_u64;
    for product in catalog.iter() {
        let at = timestamp(product.created_at);
        let start = ids;
        ids.advance(&product);
        match index {
            0 => {
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
            1 => {
                for (i, (feature, value)) in product.features.iter().enumerate() {
                    writer.as_mut().write(&[&(start.feature + i as i64 + 1), &product.id, feature, value]).await?;
                    rows += 1;
                }
            }
            2..=5 => rows += copy_style_rows(writer.as_mut(), &product, start, index, at).await?,
            _ => {
                for (i, related) in product.related.iter().enumerate() {
                    writer.as_mut().write(&[&(start.related + i as i64 + 1), &product.id, related]).await?;
                    rows += 1;
                }
            }
        }
    }
    writer.finish().await?;
    Ok(rows)
}

/// Rows of style, photo, sku or stock_movement for one product.
async fn copy_style_rows(
    mut writer: std::pin::Pin<&mut BinaryCopyInWriter>,
    product: &Product,
    start: Ids,
    index: usize,
    at: SystemTime,
) -> ToolResult<u64> {
    let mut ids = start;
    let mut rows = 0;
    for style in &product.styles {
        ids.style += 1;
        match index {
            2 => {
                writer
                    .as_mut()
                    .write(&[
                        &ids.style,
                        &product.id,
                        &style.name,
                        &Money(style.original_price_cents),
                        &style.sale_price_cents.map(Money),
                        &style.is_default,
                    ])
                    .await?;
                rows += 1;
            }
            3 => {
                for (thumbnail, url) in &style.photos {
                    ids.photo += 1;
                    writer.as_mut().write(&[&ids.photo, &ids.style, thumbnail, url]).await?;
                    rows += 1;
                }
            }
            _ => {
                for (size, quantity) in &style.skus {
                    ids.sku += 1;
                    if index == 4 {
                        writer.as_mut().write(&[&ids.sku, &ids.style, size, quantity]).await?;
                        rows += 1;
                    } else if *quantity != 0 {
                        // The ledger's first movement is the initial stock.
                        ids.movement += 1;
                        writer.as_mut().write(&[&ids.movement, &ids.sku, quantity, &"initial stock", &at]).await?;
                        rows += 1;
                    }
                }
            }
        }
    }
    Ok(rows)
}

/// The last id used in each child table, as the walk over products goes.
#[derive(Default, Clone, Copy)]
pub struct Ids {
    pub feature: i64,
    pub style: i64,
    pub photo: i64,
    pub sku: i64,
    pub movement: i64,
    pub related: i64,
}

impl Ids {
    /// Moves past every row of `product`.
    pub fn advance(&mut self, product: &Product) {
        self.feature += product.features.len() as i64;
        self.related += product.related.len() as i64;
        for style in &product.styles {
            self.style += 1;
            self.photo += style.photos.len() as i64;
            self.sku += style.skus.len() as i64;
            self.movement += style.skus.iter().filter(|(_, q)| *q != 0).count() as i64;
        }
    }
}

fn timestamp(seconds: i64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(seconds.max(0) as u64)
}
