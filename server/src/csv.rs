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

use crate::generate::{photo_url, thumbnail_url, Catalog, Product};
use crate::load::Table;
use crate::tool::ToolResult;

const HEADERS: [(Table, &str); 6] = [
    (Table::Product, "id,name,slogan,description,category,default_price,created_at,updated_at"),
    (Table::Feature, "id,product_id,feature,value"),
    (Table::Style, "id,productId,name,sale_price,original_price,default_style"),
    (Table::Photo, "id,styleId,url,thumbnail_url"),
    (Table::Sku, "id,styleId,size,quantity"),
    (Table::Related, "id,current_product_id,related_product_id"),
];

/// Writes the catalog's six CSV files into `dir`; returns rows per file.
pub fn write(catalog: Catalog, dir: &Path) -> ToolResult<Vec<(&'static str, u64)>> {
    std::fs::create_dir_all(dir)?;
    let mut files = Vec::new();
    for (table, header) in HEADERS {
        let mut out = BufWriter::with_capacity(1 << 20, File::create(dir.join(table.csv_file()))?);
        writeln!(out, "{header}")?;
        files.push((table, out, 0_u64));
    }
    let (mut feature_id, mut style_id, mut photo_id, mut sku_id, mut related_id) = (0, 0, 0, 0, 0);
    for product in catalog.iter() {
        for (table, out, rows) in files.iter_mut() {
            match table {
                Table::Product => {
                    write_product(out, &product)?;
                    *rows += 1;
                }
                Table::Feature => {
                    for (feature, value) in &product.features {
                        feature_id += 1;
                        writeln!(
                            out,
                            "{feature_id},{},{},{}",
                            product.id,
                            quote(feature),
                            value.map_or("null".into(), quote)
                        )?;
                        *rows += 1;
                    }
                }
                Table::Related => {
                    for related in &product.related {
                        related_id += 1;
                        writeln!(out, "{related_id},{},{related}", product.id)?;
                        *rows += 1;
                    }
                }
                Table::Style | Table::Photo | Table::Sku => {
                    let mut style = style_id;
                    for s in &product.styles {
                        style += 1;
                        if *table == Table::Style {
                            let sale = s.sale_price_cents.map_or("null".to_string(), cents);
                            let default = u8::from(s.is_default);
                            writeln!(
                                out,
                                "{style},{},{},{sale},{},{default}",
                                product.id,
                                quote(&s.name),
                                cents(s.original_price_cents)
                            )?;
                            *rows += 1;
                        } else if *table == Table::Photo {
                            for image in &s.photos {
                                photo_id += 1;
                                writeln!(
                                    out,
                                    "{photo_id},{style},{},{}",
                                    quote(&photo_url(*image)),
                                    quote(&thumbnail_url(*image))
                                )?;
                                *rows += 1;
                            }
                        } else {
                            for (size, quantity) in &s.skus {
                                sku_id += 1;
                                writeln!(out, "{sku_id},{style},{},{quantity}", quote(size))?;
                                *rows += 1;
                            }
                        }
                    }
                }
            }
        }
        style_id += product.styles.len() as i64;
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
