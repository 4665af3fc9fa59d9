//! The position index: every product id with a list card, in order, so that
//! GET /products turns a page into an id range here and asks a replica for
//! one index range scan (`PRODUCT_CARDS_BETWEEN`) instead of summing counts
//! (`products_page()`).
//!
//! Freshness comes the way the cache's does: card notices that add or
//! remove a product update the ids. The ids are (re)loaded from a replica
//! whenever the listeners change (one connects or is lost) or a "*" notice
//! says changes went unlisted. While a load runs, notices are queued and
//! replayed, in order, onto the loaded ids: each one is "this id is there"
//! or "this id is gone", so replaying notices of changes the load already
//! saw changes nothing, and those it did not see are applied. Until a load
//! has finished the index is not usable and the route falls back to
//! `products_page()`.

use std::sync::Mutex;

use atelier_schema::statements;
use tokio::sync::Notify;

use super::notice::Op;
use crate::db::Node;

#[derive(Default)]
struct Inner {
    /// Sorted, no duplicates.
    ids: Vec<i64>,
    usable: bool,
    loading: bool,
    /// Notices that came while loading: (product, there).
    queued: Vec<(i64, bool)>,
    /// A new load is wanted (set while loading: load again after).
    stale: bool,
}

#[derive(Default)]
pub(crate) struct Positions {
    inner: Mutex<Inner>,
    wake: Notify,
    loads: std::sync::atomic::AtomicU64,
}

/// Where a page is, by the index.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum PageSpan {
    /// The cards with ids first ..= last.
    Ids(i64, i64),
    /// Past the last product.
    PastTheEnd,
}

impl Positions {
    fn inner(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The ids of positions offset+1 ..= offset+count; None while the index
    /// is not usable.
    pub fn page(&self, offset: i64, count: i32) -> Option<PageSpan> {
        let inner = self.inner();
        if !inner.usable {
            return None;
        }
        let start = usize::try_from(offset).ok().filter(|start| *start < inner.ids.len());
        let Some(start) = start else { return Some(PageSpan::PastTheEnd) };
        let count = usize::try_from(count).unwrap_or(0).max(1);
        let last = start.saturating_add(count - 1).min(inner.ids.len() - 1);
        Some(PageSpan::Ids(inner.ids[start], inner.ids[last]))
    }

    /// A card notice.
    pub fn apply(&self, product: i64, op: Op) {
        let there = op != Op::Deleted;
        let mut inner = self.inner();
        if inner.loading {
            inner.queued.push((product, there));
        } else if inner.usable {
            set(&mut inner.ids, product, there);
        }
    }

    /// Unusable until a new load finishes; wakes the loader.
    pub fn invalidate(&self) {
        let mut inner = self.inner();
        inner.usable = false;
        inner.stale = true;
        drop(inner);
        self.wake.notify_one();
    }

    /// Loads the ids whenever they are stale, from the first of `replicas`
    /// that `listened` says is listened to; runs for the life of the server.
    pub async fn keep_loaded(
        &self,
        replicas: &[Node],
        listened: impl Fn(&str) -> bool,
        within: std::time::Duration,
        retry_after: std::time::Duration,
    ) {
        loop {
            self.wake.notified().await;
            loop {
                {
                    let mut inner = self.inner();
                    if !inner.stale {
                        break;
                    }
                    inner.stale = false;
                    inner.loading = true;
                    inner.queued.clear();
                }
                let source = replicas.iter().find(|replica| listened(replica.name) && !replica.is_ejected());
                let loaded = match source {
                    Some(replica) => tokio::time::timeout(within, load(replica)).await.ok().flatten(),
                    None => None,
                };
                if !self.install(loaded) {
                    tracing::debug!("position index could not load; retrying");
                    tokio::time::sleep(retry_after).await;
                }
            }
        }
    }
}

impl Positions {
    /// Ends a load: installs `loaded` with the notices queued meanwhile
    /// replayed onto it, or marks the index stale again. False when the
    /// load failed.
    fn install(&self, loaded: Option<Vec<i64>>) -> bool {
        let mut inner = self.inner();
        inner.loading = false;
        let Some(mut ids) = loaded else {
            inner.usable = false;
            inner.stale = true;
            return false;
        };
        for (product, there) in std::mem::take(&mut inner.queued) {
            set(&mut ids, product, there);
        }
        inner.ids = ids;
        // Usable unless something made it stale meanwhile (then the loader
        // loads again).
        inner.usable = !inner.stale;
        self.loads.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        tracing::info!(products = inner.ids.len(), "position index loaded");
        true
    }

    /// Its metrics: loads, products indexed, usable.
    pub fn expose(&self, out: &mut atelier_exposition::Exposition) {
        let inner = self.inner();
        out.counter("atelier_position_index_loads", "Times the position index was loaded from a replica.")
            .count(Vec::new(), self.loads.load(std::sync::atomic::Ordering::Relaxed));
        out.gauge("atelier_position_index_products", "Product ids in the position index.")
            .integer(Vec::new(), inner.ids.len());
        out.gauge("atelier_position_index_usable", "1 while GET /products reads id ranges from the index.")
            .integer(Vec::new(), i64::from(inner.usable));
    }
}

/// Every card's product id, from `replica`.
async fn load(replica: &Node) -> Option<Vec<i64>> {
    let mut connection = replica.checkout(std::time::Duration::from_secs(1)).await.ok()?;
    connection
        .exchange(async |client| {
            let statement = client.prepare_cached(statements::PRODUCT_IDS).await?;
            let rows = client.query(&statement, &[]).await?;
            let ids: Result<Vec<i64>, _> = rows.iter().map(|row| row.try_get::<_, i64>(0)).collect();
            Ok(ids?)
        })
        .await
        .ok()
}

/// Puts `product` in the sorted `ids` or takes it out.
fn set(ids: &mut Vec<i64>, product: i64, there: bool) {
    match (ids.binary_search(&product), there) {
        (Err(at), true) => ids.insert(at, product),
        (Ok(at), false) => {
            ids.remove(at);
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn loaded(ids: Vec<i64>) -> Positions {
        let positions = Positions::default();
        {
            let mut inner = positions.inner();
            inner.ids = ids;
            inner.usable = true;
        }
        positions
    }

    #[test]
    fn pages_are_id_spans() {
        let positions = loaded(vec![2, 3, 5, 8, 13]);
        assert_eq!(positions.page(0, 2), Some(PageSpan::Ids(2, 3)));
        assert_eq!(positions.page(2, 5), Some(PageSpan::Ids(5, 13)));
        assert_eq!(positions.page(4, 1), Some(PageSpan::Ids(13, 13)));
        assert_eq!(positions.page(5, 1), Some(PageSpan::PastTheEnd));
        assert_eq!(positions.page(i64::MAX, 1000), Some(PageSpan::PastTheEnd));
        positions.apply(4, Op::Inserted);
        positions.apply(3, Op::Deleted);
        positions.apply(5, Op::Updated);
        assert_eq!(positions.page(0, 3), Some(PageSpan::Ids(2, 5)));
        positions.invalidate();
        assert_eq!(positions.page(0, 3), None, "not usable until loaded");
    }

    #[test]
    fn notices_during_a_load_are_replayed_in_order() {
        let mut ids = vec![1, 2, 3];
        // Each notice says "there" or "gone"; replayed in order, one the
        // load already saw changes nothing.
        for (product, there) in [(2, true), (3, false), (9, true), (9, false), (10, true), (1, false)] {
            set(&mut ids, product, there);
        }
        assert_eq!(ids, [2, 10]);
    }
}
