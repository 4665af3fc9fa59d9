//! CSV files in the public Atelier column layout, for anyone to load with
//! `psql \copy` (or `atelier load --csv DIR`):
//!
//! | file | columns |
//! |---|---|
//! | product.csv | id,name,slogan,description,category,default_price,created_at,updated_at |
//! | features.csv | id,product_id,feature,value |
//! | styles.csv | id,productId,name,sale_price,original_price,default_style |
//! | photos.csv | id,styleId,url,thumbnail_url |
//! | skus.csv | id,styleId,size,quantity |
//! | related.csv | id,current_product_id,related_product_id |
//!
//! As in the public files, a missing value is written `null` (unquoted) and
//! `default_style` is 1 or 0. product.csv carries two columns the public
//! layout lacks, created_at and updated_at, so a CSV load reproduces a direct
//! load exactly; the loader also accepts the six-column public file.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

use crate::db::ToolResult;
use crate::generate::{photo_url, thumbnail_url, Catalog, IdWalk, Product};
use crate::layout::Table;

/// Writes the catalog's six CSV files into `dir`; returns rows per file.
pub fn write(catalog: Catalog, dir: &Path) -> ToolResult<Vec<(&'static str, u64)>> {
    std::fs::create_dir_all(dir)?;
    let mut files = Vec::new();
    for table in Table::ALL {
        let mut out = BufWriter::with_capacity(1 << 20, File::create(dir.join(table.csv_file()))?);
        writeln!(out, "{}", table.csv_header())?;
        files.push((table, out, 0_u64));
    }
    let mut walk = IdWalk::default();
    for product in catalog.iter() {
        let rows = walk.rows(&product);
        for (table, out, count) in files.iter_mut() {
            *count += match table {
                Table::Product => {
                    write_product(out, &product)?;
                    1
                }
                Table::Feature => {
                    for f in &rows.features {
                        let value = f.value.map_or("null".into(), quote);
                        writeln!(out, "{},{},{},{value}", f.id, f.product_id, quote(f.feature))?;
                    }
                    rows.features.len() as u64
                }
                Table::Style => {
                    for s in &rows.styles {
                        let style = s.style;
                        let sale = style.sale_price_cents.map_or("null".to_string(), cents);
                        let default = u8::from(style.is_default);
                        let original = cents(style.original_price_cents);
                        writeln!(out, "{},{},{},{sale},{original},{default}", s.id, s.product_id, quote(&style.name))?;
                    }
                    rows.styles.len() as u64
                }
                Table::Photo => {
                    for p in &rows.photos {
                        let (url, thumbnail) = (quote(&photo_url(p.image)), quote(&thumbnail_url(p.image)));
                        writeln!(out, "{},{},{url},{thumbnail}", p.id, p.style_id)?;
                    }
                    rows.photos.len() as u64
                }
                Table::Sku => {
                    for k in &rows.skus {
                        writeln!(out, "{},{},{},{}", k.id, k.style_id, quote(k.size), k.quantity)?;
                    }
                    rows.skus.len() as u64
                }
                Table::Related => {
                    for r in &rows.related {
                        writeln!(out, "{},{},{}", r.id, r.product_id, r.related_product_id)?;
                    }
                    rows.related.len() as u64
                }
            };
        }
    }
    let mut counts = Vec::new();
    for (table, mut out, rows) in files {
        out.flush()?;
        counts.push((table.csv_file(), rows));
    }
    Ok(counts)
}

fn write_product(out: &mut impl Write, p: &Product) -> std::io::Result<()> {
    let at = iso8601(p.created_at);
    writeln!(
        out,
        "{},{},{},{},{},{},{at},{at}",
        p.id,
        quote(&p.name),
        quote(&p.slogan),
        quote(&p.description),
        quote(p.category),
        cents(p.default_price_cents)
    )
}

/// A CSV field, always quoted (so the literal text "null" stays text).
fn quote(text: &str) -> String {
    format!("\"{}\"", text.replace('"', "\"\""))
}

fn cents(value: i64) -> String {
    format!("{}.{:02}", value / 100, value % 100)
}

/// Seconds since the epoch as UTC ISO-8601.
fn iso8601(seconds: i64) -> String {
    let days = seconds.div_euclid(86_400);
    let secs = seconds.rem_euclid(86_400);
    // Civil-from-days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z", secs / 3600, secs % 3600 / 60, secs % 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_and_fields() {
        assert_eq!(iso8601(0), "1970-01-01T00:00:00Z");
        assert_eq!(iso8601(1_767_225_600), "2026-01-01T00:00:00Z");
        assert_eq!(iso8601(1_709_210_096), "2024-02-29T12:34:56Z");
        assert_eq!(quote("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(cents(5), "0.05");
        assert_eq!(cents(14_000), "140.00");
    }
}
