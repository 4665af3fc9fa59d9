//! Ids for load tests: products and skus that exist, biased to the last 10%
//! of each range (where a table without the right indexes is slowest), with
//! a stock delta per row. The JMeter plan reads them from a CSV file.

use atelier_tools::{connect, ToolError, ToolResult};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Share of picked ids that come from the last tenth of the id range.
pub const LAST_TENTH_SHARE: f64 = 0.9;
/// An id in [low, high], 90% of the time from the last 10% of the range.
pub fn biased_id(rng: &mut impl Rng, low: i64, high: i64) -> i64 {
    let span = (high - low + 1).max(1);
    let tenth = (span / 10).max(1);
    if rng.random_bool(LAST_TENTH_SHARE) {
        high - rng.random_range(0..tenth)
    } else {
        low + rng.random_range(0..span)
    }
}

/// One row of load-test ids: a product, a sku, and a stock change for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoadIds {
    pub product_id: i64,
    pub sku_id: i64,
    pub delta: i64,
}

/// The CSV file the JMeter plan reads (header `product_id,sku_id,delta`).
pub fn csv(ids: &[LoadIds]) -> String {
    let mut text = String::from("product_id,sku_id,delta\n");
    for i in ids {
        text.push_str(&format!("{},{},{}\n", i.product_id, i.sku_id, i.delta));
    }
    text
}

/// Ids for load tests: product ids and sku ids that exist, biased to the
/// last 10% of each range, and a stock delta per row (sales of 1 to 3 and
/// restocks of 1 to 10, never 0), from the primary.
pub async fn export_ids(primary_url: &str, rows: usize, seed: u64) -> ToolResult<Vec<LoadIds>> {
    let client = connect(primary_url).await?;
    let ranges = client
        .query_one(
            "select coalesce(min(id), 0), coalesce(max(id), 0), (select coalesce(min(id), 0) from sku),
                    (select coalesce(max(id), 0) from sku) from product",
            &[],
        )
        .await?;
    let (p_low, p_high, s_low, s_high): (i64, i64, i64, i64) =
        (ranges.get(0), ranges.get(1), ranges.get(2), ranges.get(3));
    if p_high == 0 || s_high == 0 {
        return Err(ToolError::msg("the catalog has no products or no skus; load some first"));
    }
    let mut rng = StdRng::seed_from_u64(seed);
    let mut out = Vec::with_capacity(rows);
    while out.len() < rows {
        let want = (rows - out.len()) * 2;
        let products: Vec<i64> = (0..want).map(|_| biased_id(&mut rng, p_low, p_high)).collect();
        let skus: Vec<i64> = (0..want).map(|_| biased_id(&mut rng, s_low, s_high)).collect();
        // Keep only ids that exist (deleted rows leave gaps).
        let found = client
            .query(
                "select p, s from unnest($1::bigint[], $2::bigint[]) with ordinality as t(p, s, n)
                 where exists (select 1 from product where id = p) and exists (select 1 from sku where id = s)
                 order by n",
                &[&products, &skus],
            )
            .await?;
        for row in found.iter().take(rows - out.len()) {
            let delta = if rng.random_bool(0.7) { -rng.random_range(1..=3) } else { rng.random_range(1..=10) };
            out.push(LoadIds { product_id: row.get(0), sku_id: row.get(1), delta });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn biased_ids_favour_the_last_tenth() {
        let mut rng = StdRng::seed_from_u64(1);
        let ids: Vec<i64> = (0..10_000).map(|_| biased_id(&mut rng, 1, 1000)).collect();
        assert!(ids.iter().all(|id| (1..=1000).contains(id)));
        let last_tenth = ids.iter().filter(|id| **id > 900).count();
        assert!((9_000..9_400).contains(&last_tenth), "{last_tenth}");
    }
}
