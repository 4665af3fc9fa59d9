//! The document cache: per-product documents and list pages held in memory,
//! kept fresh by the replicas themselves, never by a time to live.
//!
//! Every replica announces each document change it applies (kind, product,
//! version; sql/read_notices.sql), and this server listens to every replica
//! it reads (`listen`). The rules, each against a race:
//!
//! - **Newest seen wins.** Each product document has a slot holding the
//!   newest version any notice has named (`seen`), with or without bytes.
//!   A notice drops bytes older than it names; a fill is kept only if its
//!   version is at least `seen`. So a fill that read version N never lands
//!   after the notice of N+1 (it is refused, whichever came first), and a
//!   replica that lags behind another cannot put back what the other has
//!   already replaced.
//! - **Only what a listener covers.** A fill is kept only when it came from
//!   a replica whose listener is connected now. When a listener is lost,
//!   or connects (notices sent before it listened are lost), the whole
//!   cache is forgotten and the `epoch` moves on, which refuses every fill
//!   that began before. A server therefore never serves a document older
//!   than its replicas have applied, except for the time a notice takes to
//!   arrive, or for as long as a lagging replica lags (as it would serve
//!   without a cache).
//! - **List pages** depend on many cards. Any card notice forgets every
//!   page and moves the `page_generation`, which refuses page fills that
//!   began before it. (Coarse on purpose: a card that appears or goes moves
//!   every later page, and a page does not say which ids it holds.)
//! - `X-Read-After` reads never come from the cache (`read/`).
//! - Bounded by `ATELIER_CACHE_BYTES`: bodies, ETags and a fixed cost per
//!   slot. Over the bound, a CLOCK sweep evicts what was not read since the
//!   sweep last passed it (an approximation of least recently used).
//!   Evicting a slot that remembered a version moves the epoch, as
//!   forgetting does.
//!
//! The same notices keep the position index (`positions`) of GET /products
//! fresh; it works with the document cache off (`ATELIER_CACHE_BYTES=0`) and
//! can be turned off alone (`ATELIER_POSITION_INDEX=false`).
//!
//! `notice`: the notices; `listen`: the connections that receive them.

mod listen;
mod notice;
mod positions;
mod settings;
pub use settings::CacheSettings;

pub use listen::listen_to_replicas;
pub(crate) use positions::{PageSpan, Positions};

use std::collections::{HashMap, VecDeque};
use std::hash::Hash;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed, Ordering::SeqCst};
use std::sync::{Mutex, MutexGuard};

use atelier_exposition::{labels, Exposition};
use atelier_schema::DocumentKind;
use bytes::Bytes;

use notice::{Notice, Op};

/// Shards of the product documents, each with its own lock and share of
/// the budget.
const SHARDS: usize = 16;
/// Bookkeeping per slot beyond its body and ETag: the map entry, the key in
/// the sweep queue, the slot itself (measured roughly, rounded up).
const SLOT_OVERHEAD_BYTES: usize = 128;
/// List pages get this fraction (1/n) of the budget.
const PAGE_SHARE: usize = 8;

/// A product's document of one kind.
pub(crate) type DocKey = (DocumentKind, i64);

/// A document as the cache hands it out.
pub(crate) struct Cached {
    pub body: Bytes,
    pub etag: String,
}

/// Taken before a read whose answer may be kept; see `keep_*`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ticket {
    epoch: u64,
    page_generation: u64,
}

pub(crate) struct DocumentCache {
    /// Documents and pages are kept (ATELIER_CACHE_BYTES > 0).
    keeps_documents: bool,
    /// The position index, when on.
    pub positions: Option<Positions>,
    documents: Box<[Mutex<Shard<DocKey>>]>,
    pages: Mutex<Shard<(i64, i32)>>,
    epoch: AtomicU64,
    page_generation: AtomicU64,
    /// One per replica, in the pools' order: is its listener connected?
    listeners: Vec<(&'static str, AtomicBool)>,
    stats: Stats,
}

#[derive(Default)]
struct Stats {
    hits: AtomicU64,
    misses: AtomicU64,
    fills: AtomicU64,
    refused: AtomicU64,
    invalidations: AtomicU64,
    evictions: AtomicU64,
    forgets: AtomicU64,
    notices: AtomicU64,
}

struct Slot {
    /// Newest version a notice or fill has named (0: pages, which have none).
    seen: i64,
    /// The product's document went away at version `seen`.
    gone: bool,
    entry: Option<Entry>,
    /// Read since the sweep last passed.
    referenced: bool,
}

struct Entry {
    body: Bytes,
    etag: String,
    version: i64,
}

impl Slot {
    fn bytes(&self) -> usize {
        SLOT_OVERHEAD_BYTES + self.entry.as_ref().map_or(0, |e| e.body.len() + e.etag.len())
    }
}

/// A map with a byte budget and a CLOCK sweep.
struct Shard<K> {
    map: HashMap<K, Slot>,
    /// Every key of `map`, in sweep order.
    clock: VecDeque<K>,
    bytes: usize,
    budget: usize,
}

impl<K: Hash + Eq + Copy> Shard<K> {
    fn new(budget: usize) -> Shard<K> {
        Shard { map: HashMap::new(), clock: VecDeque::new(), bytes: 0, budget }
    }

    /// Applies `change` to `key`'s slot (made empty, remembering `seen`,
    /// if there is none), keeping the byte count.
    fn update(&mut self, key: K, seen: i64, change: impl FnOnce(&mut Slot)) {
        let slot = match self.map.get_mut(&key) {
            Some(slot) => slot,
            None => {
                self.clock.push_back(key);
                self.bytes += SLOT_OVERHEAD_BYTES;
                self.map.entry(key).or_insert(Slot { seen, gone: false, entry: None, referenced: false })
            }
        };
        let before = slot.bytes();
        change(slot);
        self.bytes = self.bytes + slot.bytes() - before;
    }

    /// Evicts until within budget; returns (slots evicted, whether any of
    /// them remembered a version).
    fn sweep(&mut self) -> (u64, bool) {
        let (mut evicted, mut forgot_versions) = (0, false);
        while self.bytes > self.budget {
            let Some(key) = self.clock.pop_front() else { break };
            let Some(slot) = self.map.get_mut(&key) else { continue };
            if slot.referenced {
                slot.referenced = false;
                self.clock.push_back(key);
                continue;
            }
            if let Some(slot) = self.map.remove(&key) {
                self.bytes -= slot.bytes();
                evicted += 1;
                forgot_versions |= slot.seen > 0;
            }
        }
        (evicted, forgot_versions)
    }

    fn clear(&mut self) -> bool {
        let had = !self.map.is_empty();
        self.map.clear();
        self.clock.clear();
        self.bytes = 0;
        had
    }

    fn get(&mut self, key: &K) -> Option<Cached> {
        let slot = self.map.get_mut(key)?;
        let entry = slot.entry.as_ref()?;
        slot.referenced = true;
        Some(Cached { body: entry.body.clone(), etag: entry.etag.clone() })
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock cannot leave a shard inconsistent in
    // a way that serves wrong bytes (the worst is a wrong byte count), so
    // a poisoned lock is used as it is.
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl DocumentCache {
    /// A cache of at most `bytes` (0: documents are not kept), with the
    /// position index or not, for a server reading `replicas`; None when
    /// neither is on (nothing needs to listen).
    pub fn new(bytes: usize, positions: bool, replicas: &[&'static str]) -> Option<DocumentCache> {
        if bytes == 0 && !positions {
            return None;
        }
        let pages = bytes / PAGE_SHARE;
        let per_shard = (bytes - pages) / SHARDS;
        Some(DocumentCache {
            keeps_documents: bytes > 0,
            positions: positions.then(Positions::default),
            documents: (0..SHARDS).map(|_| Mutex::new(Shard::new(per_shard))).collect(),
            pages: Mutex::new(Shard::new(pages)),
            epoch: AtomicU64::new(0),
            page_generation: AtomicU64::new(0),
            listeners: replicas.iter().map(|name| (*name, AtomicBool::new(false))).collect(),
            stats: Stats::default(),
        })
    }

    fn shard(&self, (kind, product): DocKey) -> &Mutex<Shard<DocKey>> {
        let mixed = (product as u64 ^ kind as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        &self.documents[(mixed >> 60) as usize % SHARDS]
    }

    fn counted(&self, found: Option<Cached>) -> Option<Cached> {
        let counter = if found.is_some() { &self.stats.hits } else { &self.stats.misses };
        counter.fetch_add(1, Relaxed);
        found
    }

    pub fn document(&self, key: DocKey) -> Option<Cached> {
        if !self.keeps_documents {
            return None;
        }
        self.counted(lock(self.shard(key)).get(&key))
    }

    pub fn page(&self, offset: i64, count: i32) -> Option<Cached> {
        if !self.keeps_documents {
            return None;
        }
        self.counted(lock(&self.pages).get(&(offset, count)))
    }

    /// Where a page is, by the position index; None when it is off or not
    /// loaded.
    pub fn page_span(&self, offset: i64, count: i32) -> Option<PageSpan> {
        self.positions.as_ref()?.page(offset, count)
    }

    /// Is `replica`'s listener connected?
    pub fn is_listening(&self, replica: &str) -> bool {
        self.listeners.iter().any(|(name, live)| *name == replica && live.load(SeqCst))
    }

    /// Taken before the read whose answer is offered to `keep_*`.
    pub fn ticket(&self) -> Ticket {
        Ticket { epoch: self.epoch.load(SeqCst), page_generation: self.page_generation.load(SeqCst) }
    }

    /// May an answer read under `ticket` from `node` be kept?
    fn may_keep(&self, ticket: Ticket, node: &str) -> bool {
        self.keeps_documents && self.is_listening(node) && self.epoch.load(SeqCst) == ticket.epoch
    }

    /// Offers a product document `node` answered for a read that took
    /// `ticket` before it started.
    pub fn keep_document(&self, ticket: Ticket, node: &str, key: DocKey, version: i64, body: &Bytes, etag: &str) {
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
        if body.len() + etag.len() + SLOT_OVERHEAD_BYTES > shard.budget {
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
    pub fn keep_page(&self, ticket: Ticket, node: &str, offset: i64, count: i32, body: &Bytes, etag: &str) {
        let mut pages = lock(&self.pages);
        if !self.may_keep(ticket, node) || self.page_generation.load(SeqCst) != ticket.page_generation {
            self.stats.refused.fetch_add(1, Relaxed);
            return;
        }
        if body.len() + etag.len() + SLOT_OVERHEAD_BYTES > pages.budget {
            return;
        }
        pages.update((offset, count), 0, |slot| {
            slot.entry = Some(Entry { body: body.clone(), etag: etag.to_string(), version: 0 });
        });
        self.stats.fills.fetch_add(1, Relaxed);
        self.sweep(&mut pages);
    }

    fn sweep<K: Hash + Eq + Copy>(&self, shard: &mut Shard<K>) {
        let (evicted, forgot_versions) = shard.sweep();
        self.stats.evictions.fetch_add(evicted, Relaxed);
        if forgot_versions {
            self.epoch.fetch_add(1, SeqCst);
        }
    }

    /// Takes in one notice from a replica.
    pub fn apply(&self, notice: Notice) {
        self.stats.notices.fetch_add(1, Relaxed);
        match notice {
            Notice::Everything => self.forget_everything(),
            Notice::Changed { kind: DocumentKind::Card, product, op, .. } => {
                if let Some(positions) = &self.positions {
                    positions.apply(product, op);
                }
                self.page_generation.fetch_add(1, SeqCst);
                if lock(&self.pages).clear() {
                    self.stats.invalidations.fetch_add(1, Relaxed);
                }
            }
            Notice::Changed { kind, product, version, op } => {
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
        }
    }

    /// Forgets every document and page, refuses every fill under way, and
    /// has the position index loaded again.
    pub fn forget_everything(&self) {
        if let Some(positions) = &self.positions {
            positions.invalidate();
        }
        self.epoch.fetch_add(1, SeqCst);
        self.page_generation.fetch_add(1, SeqCst);
        for shard in self.documents.iter() {
            lock(shard).clear();
        }
        lock(&self.pages).clear();
        self.stats.forgets.fetch_add(1, Relaxed);
    }

    /// A replica's listener connected (after LISTEN) or was lost. Either
    /// way the cache forgets everything: while it was not listening,
    /// notices went unheard.
    pub fn set_listening(&self, replica: &str, live: bool) {
        for (name, flag) in &self.listeners {
            if *name == replica {
                flag.store(live, SeqCst);
            }
        }
        self.forget_everything();
    }

    /// Its metrics: counters, bytes and slots held, listeners, and the
    /// position index.
    pub fn expose(&self, out: &mut Exposition) {
        if let Some(positions) = &self.positions {
            positions.expose(out);
        }
        let counters = [
            ("atelier_cache_hits", &self.stats.hits, "GETs answered from the document cache."),
            ("atelier_cache_misses", &self.stats.misses, "Cacheable GETs the document cache did not hold."),
            ("atelier_cache_fills", &self.stats.fills, "Documents and pages put in the cache after a read."),
            (
                "atelier_cache_fills_refused",
                &self.stats.refused,
                "Reads not kept: older than a notice, or begun before a forget.",
            ),
            (
                "atelier_cache_invalidations",
                &self.stats.invalidations,
                "Cached documents or page sets dropped by a notice.",
            ),
            ("atelier_cache_evictions", &self.stats.evictions, "Slots evicted to stay within ATELIER_CACHE_BYTES."),
            (
                "atelier_cache_forgets",
                &self.stats.forgets,
                "Times the whole cache was forgotten (listener lost or connected, '*').",
            ),
            ("atelier_cache_notices", &self.stats.notices, "Change notices received from the replicas."),
        ];
        for (name, value, help) in counters {
            out.counter(name, help).count(Vec::new(), value.load(Relaxed));
        }
        let (mut bytes, mut slots) = (0, 0);
        for shard in self.documents.iter() {
            let shard = lock(shard);
            bytes += shard.bytes;
            slots += shard.map.len();
        }
        let pages = lock(&self.pages);
        bytes += pages.bytes;
        slots += pages.map.len();
        drop(pages);
        let whole = |n: usize| i64::try_from(n).unwrap_or(i64::MAX);
        out.gauge("atelier_cache_bytes", "Bytes the document cache holds (bodies, ETags, bookkeeping).")
            .integer(Vec::new(), whole(bytes));
        out.gauge("atelier_cache_slots", "Documents, pages and remembered versions held.")
            .integer(Vec::new(), whole(slots));
        let mut up = out.gauge("atelier_cache_listener_up", "1 while the replica's change listener is connected.");
        for (name, live) in &self.listeners {
            up.integer(labels([("replica", name)]), i64::from(live.load(Relaxed)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const R1: &str = "replica1";
    const R2: &str = "replica2";
    const STYLES: DocumentKind = DocumentKind::Styles;

    fn listening_cache(bytes: usize) -> DocumentCache {
        let cache = DocumentCache::new(bytes, false, &[R1, R2]).unwrap();
        cache.set_listening(R1, true);
        cache.set_listening(R2, true);
        cache
    }

    fn keep(cache: &DocumentCache, ticket: Ticket, node: &str, product: i64, version: i64) {
        let body = Bytes::from(format!("doc {product} v{version}"));
        cache.keep_document(ticket, node, (STYLES, product), version, &body, &format!("\"v{version}\""));
    }

    fn held(cache: &DocumentCache, product: i64) -> Option<String> {
        cache.document((STYLES, product)).map(|hit| String::from_utf8(hit.body.to_vec()).unwrap())
    }

    fn changed(product: i64, version: i64, op: Op) -> Notice {
        Notice::Changed { kind: STYLES, product, version, op }
    }

    #[test]
    fn keeps_and_serves_what_a_listened_replica_answered() {
        let cache = listening_cache(1 << 20);
        assert_eq!(held(&cache, 1), None);
        keep(&cache, cache.ticket(), R1, 1, 10);
        assert_eq!(held(&cache, 1).as_deref(), Some("doc 1 v10"));
        assert_eq!(cache.document((STYLES, 1)).unwrap().etag, "\"v10\"");
        // Another kind of the same product is another document.
        assert!(cache.document((DocumentKind::Detail, 1)).is_none());
        assert_eq!(cache.stats.hits.load(Relaxed), 2);
    }

    #[test]
    fn a_fill_that_read_an_older_version_never_lands_after_the_newer_notice() {
        let cache = listening_cache(1 << 20);
        // The fill reads version 10, the notice of 11 is processed, then
        // the fill tries to land.
        let ticket = cache.ticket();
        cache.apply(changed(1, 11, Op::Updated));
        keep(&cache, ticket, R1, 1, 10);
        assert_eq!(held(&cache, 1), None, "refused: older than the notice");
        // A lagging replica read afterwards is refused as well.
        keep(&cache, cache.ticket(), R2, 1, 10);
        assert_eq!(held(&cache, 1), None);
        keep(&cache, cache.ticket(), R1, 1, 11);
        assert_eq!(held(&cache, 1).as_deref(), Some("doc 1 v11"));
        // The notice of 12 drops 11; an older notice arriving late does not.
        cache.apply(changed(1, 12, Op::Updated));
        assert_eq!(held(&cache, 1), None);
        keep(&cache, cache.ticket(), R1, 1, 12);
        cache.apply(changed(1, 11, Op::Updated));
        assert_eq!(held(&cache, 1).as_deref(), Some("doc 1 v12"));
    }

    #[test]
    fn a_newer_fill_is_kept_before_its_notice_and_survives_it() {
        let cache = listening_cache(1 << 20);
        keep(&cache, cache.ticket(), R1, 1, 10);
        keep(&cache, cache.ticket(), R1, 1, 11);
        assert_eq!(held(&cache, 1).as_deref(), Some("doc 1 v11"));
        keep(&cache, cache.ticket(), R2, 1, 10);
        assert_eq!(held(&cache, 1).as_deref(), Some("doc 1 v11"), "an older fill never replaces a newer");
        cache.apply(changed(1, 11, Op::Updated));
        assert_eq!(held(&cache, 1).as_deref(), Some("doc 1 v11"));
    }

    #[test]
    fn a_deleted_document_is_never_put_back_by_a_lagging_replica() {
        let cache = listening_cache(1 << 20);
        keep(&cache, cache.ticket(), R1, 1, 10);
        cache.apply(changed(1, 10, Op::Deleted));
        assert_eq!(held(&cache, 1), None);
        keep(&cache, cache.ticket(), R2, 1, 10);
        assert_eq!(held(&cache, 1), None);
    }

    #[test]
    fn only_listened_replicas_fill_and_losing_a_listener_forgets_everything() {
        let cache = DocumentCache::new(1 << 20, false, &[R1, R2]).unwrap();
        keep(&cache, cache.ticket(), R1, 1, 10);
        assert_eq!(held(&cache, 1), None, "no listener yet");
        cache.set_listening(R1, true);
        keep(&cache, cache.ticket(), R2, 1, 10);
        assert_eq!(held(&cache, 1), None, "replica2 is not listened to");
        keep(&cache, cache.ticket(), "primary", 1, 10);
        assert_eq!(held(&cache, 1), None, "the primary announces nothing");
        keep(&cache, cache.ticket(), R1, 1, 10);
        assert_eq!(held(&cache, 1).as_deref(), Some("doc 1 v10"));
        // A fill under way when the listener goes is refused, even if the
        // listener is back by the time it lands.
        let ticket = cache.ticket();
        cache.set_listening(R1, false);
        assert_eq!(held(&cache, 1), None, "forgotten");
        cache.set_listening(R1, true);
        keep(&cache, ticket, R1, 2, 10);
        assert_eq!(held(&cache, 2), None);
    }

    #[test]
    fn pages_go_with_any_card_notice_and_fills_begun_before_it_are_refused() {
        let cache = listening_cache(1 << 20);
        let page = Bytes::from_static(b"[{\"id\":1}]");
        cache.keep_page(cache.ticket(), R1, 0, 5, &page, "\"h1\"");
        assert_eq!(cache.page(0, 5).unwrap().body, page);
        assert!(cache.page(5, 5).is_none());
        let ticket = cache.ticket();
        cache.apply(Notice::Changed { kind: DocumentKind::Card, product: 900, version: 3, op: Op::Inserted });
        assert!(cache.page(0, 5).is_none());
        cache.keep_page(ticket, R1, 0, 5, &page, "\"h1\"");
        assert!(cache.page(0, 5).is_none());
        // "*" forgets documents and pages.
        cache.keep_page(cache.ticket(), R1, 0, 5, &page, "\"h1\"");
        keep(&cache, cache.ticket(), R1, 1, 10);
        cache.apply(Notice::Everything);
        assert!(cache.page(0, 5).is_none());
        assert_eq!(held(&cache, 1), None);
    }

    #[test]
    fn stays_within_its_bytes_and_keeps_what_is_read() {
        let bytes = 64 * 1024;
        let cache = listening_cache(bytes);
        keep(&cache, cache.ticket(), R1, 0, 1);
        for product in 1..5_000 {
            assert!(held(&cache, 0).is_some(), "read every time, so never evicted (at {product})");
            keep(&cache, cache.ticket(), R1, product, 1);
        }
        let total: usize = cache.documents.iter().map(|s| lock(s).bytes).sum();
        assert!(total <= bytes, "{total} bytes held");
        assert!(cache.stats.evictions.load(Relaxed) > 4_000);
        // The byte count matches the slots held.
        for shard in cache.documents.iter() {
            let shard = lock(shard);
            assert_eq!(shard.bytes, shard.map.values().map(Slot::bytes).sum::<usize>());
            assert_eq!(shard.clock.len(), shard.map.len());
        }
    }

    #[test]
    fn documents_off_at_zero_bytes() {
        assert!(DocumentCache::new(0, false, &[R1]).is_none());
        let positions_only = DocumentCache::new(0, true, &[R1]).unwrap();
        positions_only.set_listening(R1, true);
        keep(&positions_only, positions_only.ticket(), R1, 1, 10);
        assert_eq!(held(&positions_only, 1), None, "documents are not kept");
    }
}
