//! A map with a byte budget and a CLOCK sweep: what the document cache
//! keeps its documents and pages in. It knows bytes and recency, nothing of
//! versions (documents.rs holds those rules).

use std::collections::{HashMap, VecDeque};
use std::hash::Hash;
use std::sync::{Mutex, MutexGuard};

use bytes::Bytes;

/// Bookkeeping per slot beyond its body and ETag: the map entry, the key in
/// the sweep queue, the slot itself (measured roughly, rounded up).
pub(super) const SLOT_OVERHEAD_BYTES: usize = 128;

/// A document as the cache hands it out.
pub(crate) struct Cached {
    pub body: Bytes,
    pub etag: String,
}

pub(super) struct Slot {
    /// Newest version a notice or fill has named (0: pages, which have none).
    pub seen: i64,
    /// The product's document went away at version `seen`.
    pub gone: bool,
    pub entry: Option<Entry>,
    /// Read since the sweep last passed.
    referenced: bool,
}

pub(super) struct Entry {
    pub body: Bytes,
    pub etag: String,
    pub version: i64,
}

impl Slot {
    pub fn bytes(&self) -> usize {
        SLOT_OVERHEAD_BYTES + self.entry.as_ref().map_or(0, |e| e.body.len() + e.etag.len())
    }
}

pub(super) struct ByteMap<K> {
    pub map: HashMap<K, Slot>,
    /// Every key of `map`, in sweep order.
    pub clock: VecDeque<K>,
    pub bytes: usize,
    pub budget: usize,
}

impl<K: Hash + Eq + Copy> ByteMap<K> {
    pub fn new(budget: usize) -> ByteMap<K> {
        ByteMap { map: HashMap::new(), clock: VecDeque::new(), bytes: 0, budget }
    }

    /// Whether a body and ETag this size could be held at all.
    pub fn fits(&self, body: &Bytes, etag: &str) -> bool {
        body.len() + etag.len() + SLOT_OVERHEAD_BYTES <= self.budget
    }

    /// Applies `change` to `key`'s slot (made empty, remembering `seen`,
    /// if there is none), keeping the byte count.
    pub fn update(&mut self, key: K, seen: i64, change: impl FnOnce(&mut Slot)) {
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
    pub fn sweep(&mut self) -> (u64, bool) {
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

    /// Empties the map; whether it held anything.
    pub fn clear(&mut self) -> bool {
        let had = !self.map.is_empty();
        self.map.clear();
        self.clock.clear();
        self.bytes = 0;
        had
    }

    /// The entry held for `key`, marked as read.
    pub fn get(&mut self, key: &K) -> Option<Cached> {
        let slot = self.map.get_mut(key)?;
        let entry = slot.entry.as_ref()?;
        slot.referenced = true;
        Some(Cached { body: entry.body.clone(), etag: entry.etag.clone() })
    }
}

pub(super) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock cannot leave a map inconsistent in a
    // way that serves wrong bytes (the worst is a wrong byte count), so a
    // poisoned lock is used as it is.
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}
