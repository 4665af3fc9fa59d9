//! The documents' freshness rules (the module comment of cache/mod.rs says
//! each against which race): product documents and list pages kept in
//! byte-bounded maps, a fill kept only when no notice has overtaken it and
//! its replica is listened to, and one `read_*` each that the read handlers
//! call: from memory, else from their read, kept when the rules allow.

use std::future::Future;
use std::hash::Hash;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use atelier_exposition::Exposition;
use atelier_schema::DocumentKind;
use bytes::Bytes;

use super::feed::Listeners;
use super::map::{lock, ByteMap, Cached, Entry};
use super::notice::Op;

/// Shards of the product documents, each with its own lock and share of
/// the budget.
const SHARDS: usize = 16;
/// List pages get this fraction (1/n) of the budget.
const PAGE_SHARE: usize = 8;

/// A product's document of one kind.
pub(crate) type DocKey = (DocumentKind, i64);

/// Taken before a read whose answer may be kept.
#[derive(Debug, Clone, Copy)]
pub(super) struct Ticket {
    epoch: u64,
    page_generation: u64,
}

/// What a read found in the database: the bytes, their ETag, the
/// document's version (0 for pages) and the node that answered (None: no
/// node, e.g. a page past the end, which is never kept).
pub(crate) struct Fresh {
    pub body: Bytes,
    pub etag: String,
    pub version: i64,
    pub node: Option<&'static str>,
}

/// An answer: from memory, or just read.
pub(crate) enum Answer {
    Cached(Cached),
    Fresh(Fresh),
}

pub(crate) struct Documents {
    listeners: Arc<Listeners>,
    shards: Box<[Mutex<ByteMap<DocKey>>]>,
    pages: Mutex<ByteMap<(i64, i32)>>,
    epoch: AtomicU64,
    page_generation: AtomicU64,
    pub(super) stats: Stats,
    /// The race tests' pause between a read and its fill (feature `faults`).
    fill_delay: Duration,
}

#[derive(Default)]
pub(super) struct Stats {
    pub hits: AtomicU64,
    pub misses: AtomicU64,
    pub fills: AtomicU64,
    pub refused: AtomicU64,
    pub invalidations: AtomicU64,
    pub evictions: AtomicU64,
}

impl Documents {
    /// Documents and pages within `bytes` (more than 0), filled only from
    /// replicas `listeners` says are listened to.
    pub(super) fn new(bytes: usize, listeners: Arc<Listeners>, fill_delay: Duration) -> Documents {
        let pages = bytes / PAGE_SHARE;
        let per_shard = (bytes - pages) / SHARDS;
        Documents {
            listeners,
            shards: (0..SHARDS).map(|_| Mutex::new(ByteMap::new(per_shard))).collect(),
            pages: Mutex::new(ByteMap::new(pages)),
            epoch: AtomicU64::new(0),
            page_generation: AtomicU64::new(0),
            stats: Stats::default(),
            fill_delay,
        }
    }

    /// `key`'s document from memory, else from the future `read` makes,
    /// whose answer is kept when the rules allow (`read` is not called
    /// before the ticket is taken, and not at all on a hit).
    ///
    /// `read` is called rather than given as a future, and its future is
    /// boxed, so that a hit never builds a database read: the future of a
    /// read is kilobytes, and every request's future is moved whole into
    /// its connection (ARCHITECTURE.md, "Request futures stay small").
    pub async fn read_document<E, F: Future<Output = Result<Fresh, E>>>(
        &self,
        key: DocKey,
        read: impl FnOnce() -> F,
    ) -> Result<Answer, E> {
        if let Some(hit) = self.document(key) {
            return Ok(Answer::Cached(hit));
        }
        let ticket = self.ticket();
        let fresh = Box::pin(read()).await?;
        if let Some(node) = fresh.node {
            self.pause_before_fill().await;
            self.keep_document(ticket, node, key, fresh.version, &fresh.body, &fresh.etag);
        }
        Ok(Answer::Fresh(fresh))
    }

    /// The list page at `offset` of `count` cards, as `read_document`.
    pub async fn read_page<E, F: Future<Output = Result<Fresh, E>>>(
        &self,
        offset: i64,
        count: i32,
        read: impl FnOnce() -> F,
    ) -> Result<Answer, E> {
        if let Some(hit) = self.page(offset, count) {
            return Ok(Answer::Cached(hit));
        }
        let ticket = self.ticket();
        let fresh = Box::pin(read()).await?;
        if let Some(node) = fresh.node {
            self.pause_before_fill().await;
            self.keep_page(ticket, node, offset, count, &fresh.body, &fresh.etag);
        }
        Ok(Answer::Fresh(fresh))
    }

    async fn pause_before_fill(&self) {
        if !self.fill_delay.is_zero() {
            tokio::time::sleep(self.fill_delay).await;
        }
    }

    fn shard(&self, (kind, product): DocKey) -> &Mutex<ByteMap<DocKey>> {
        let mixed = (product as u64 ^ kind as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        &self.shards[(mixed >> 60) as usize % SHARDS]
    }

    fn counted(&self, found: Option<Cached>) -> Option<Cached> {
        let counter = if found.is_some() { &self.stats.hits } else { &self.stats.misses };
        counter.fetch_add(1, Relaxed);
        found
    }

    pub(super) fn document(&self, key: DocKey) -> Option<Cached> {
        self.counted(lock(self.shard(key)).get(&key))
    }

    pub(super) fn page(&self, offset: i64, count: i32) -> Option<Cached> {
        self.counted(lock(&self.pages).get(&(offset, count)))
    }

    /// Taken before the read whose answer is offered to `keep_*`.
    pub(super) fn ticket(&self) -> Ticket {
        Ticket { epoch: self.epoch.load(SeqCst), page_generation: self.page_generation.load(SeqCst) }
    }

    /// May an answer read under `ticket` from `node` be kept?
    fn may_keep(&self, ticket: Ticket, node: &str) -> bool {
        self.listeners.is_listening(node) && self.epoch.load(SeqCst) == ticket.epoch
    }

    /// Offers a product document `node` answered for a read that took
    /// `ticket` before it started.
    pub(super) fn keep_document(
        &self,
        ticket: Ticket,
        node: &str,
        key: DocKey,
        version: i64,
        body: &Bytes,
        etag: &str,
    ) {
        let mut shard = lock(self.shard(key));
        // Checked under the shard's lock: forgetting moves the epoch first
        // and then takes each lock, so a fill either sees the new epoch or
        // is forgotten with the rest.
        if !self.may_keep(ticket, node) {
            self.stats.refused.fetch_add(1, Relaxed);
            return;
        }
        if let Some(slot) = shard.map.get(&key) {
            let stale = version < slot.seen || (slot.gone && version <= slot.seen);
            if stale || slot.entry.as_ref().is_some_and(|e| e.version >= version) {
                self.stats.refused.fetch_add(u64::from(stale), Relaxed);
                return;
            }
        }
        if !shard.fits(body, etag) {
            return;
        }
        shard.update(key, version, |slot| {
            slot.seen = slot.seen.max(version);
            slot.entry = Some(Entry { body: body.clone(), etag: etag.to_string(), version });
        });
        self.stats.fills.fetch_add(1, Relaxed);
        self.sweep(&mut shard);
    }

    /// Offers a list page, as `keep_document`.
    pub(super) fn keep_page(&self, ticket: Ticket, node: &str, offset: i64, count: i32, body: &Bytes, etag: &str) {
        let mut pages = lock(&self.pages);
        if !self.may_keep(ticket, node) || self.page_generation.load(SeqCst) != ticket.page_generation {
            self.stats.refused.fetch_add(1, Relaxed);
            return;
        }
        if !pages.fits(body, etag) {
            return;
        }
        pages.update((offset, count), 0, |slot| {
            slot.entry = Some(Entry { body: body.clone(), etag: etag.to_string(), version: 0 });
        });
        self.stats.fills.fetch_add(1, Relaxed);
        self.sweep(&mut pages);
    }

    fn sweep<K: Hash + Eq + Copy>(&self, map: &mut ByteMap<K>) {
        let (evicted, forgot_versions) = map.sweep();
        self.stats.evictions.fetch_add(evicted, Relaxed);
        if forgot_versions {
            self.epoch.fetch_add(1, SeqCst);
        }
    }

    /// A replica applied version `version` of `kind` of `product` (`op`).
    pub(super) fn changed(&self, kind: DocumentKind, product: i64, version: i64, op: Op) {
        let key = (kind, product);
        let mut shard = lock(self.shard(key));
        let mut dropped = false;
        shard.update(key, version, |slot| {
            slot.seen = slot.seen.max(version);
            slot.gone |= op == Op::Deleted;
            let older = |e: &Entry| e.version < version || (op == Op::Deleted && e.version <= version);
            if slot.entry.as_ref().is_some_and(older) {
                slot.entry = None;
                dropped = true;
            }
        });
        self.stats.invalidations.fetch_add(u64::from(dropped), Relaxed);
        self.sweep(&mut shard);
    }

    /// A card changed: every page goes, and page fills begun before refused.
    pub(super) fn cards_changed(&self) {
        self.page_generation.fetch_add(1, SeqCst);
        if lock(&self.pages).clear() {
            self.stats.invalidations.fetch_add(1, Relaxed);
        }
    }

    /// Forgets every document and page and refuses every fill under way.
    pub(super) fn forget(&self) {
        self.epoch.fetch_add(1, SeqCst);
        self.page_generation.fetch_add(1, SeqCst);
        for shard in self.shards.iter() {
            lock(shard).clear();
        }
        lock(&self.pages).clear();
    }

    /// (bytes, slots) held now.
    pub(super) fn held(&self) -> (usize, usize) {
        let (mut bytes, mut slots) = (0, 0);
        for shard in self.shards.iter() {
            let shard = lock(shard);
            bytes += shard.bytes;
            slots += shard.map.len();
        }
        let pages = lock(&self.pages);
        (bytes + pages.bytes, slots + pages.map.len())
    }

    #[cfg(test)]
    pub(super) fn shards(&self) -> &[Mutex<ByteMap<DocKey>>] {
        &self.shards
    }
}

/// The documents' counters, zero while they are off (the rest of the
/// cache's families are the feed's).
pub(super) fn expose(documents: Option<&Documents>, out: &mut Exposition) {
    let zero = Stats::default();
    let stats = documents.map_or(&zero, |d| &d.stats);
    {
        let counters = [
            ("atelier_cache_hits", &stats.hits, "GETs answered from the document cache."),
            ("atelier_cache_misses", &stats.misses, "Cacheable GETs the document cache did not hold."),
            ("atelier_cache_fills", &stats.fills, "Documents and pages put in the cache after a read."),
            (
                "atelier_cache_fills_refused",
                &stats.refused,
                "Reads not kept: older than a notice, or begun before a forget.",
            ),
            ("atelier_cache_invalidations", &stats.invalidations, "Cached documents or page sets dropped by a notice."),
            ("atelier_cache_evictions", &stats.evictions, "Slots evicted to stay within ATELIER_CACHE_BYTES."),
        ];
        for (name, value, help) in counters {
            out.counter(name, help).count(Vec::new(), value.load(Relaxed));
        }
    }
}
