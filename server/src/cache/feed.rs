//! The change feed: the replicas' notices (`listen`) fanned out to the
//! documents and to the position index, and which replicas are listened
//! to now. A listener that connects or is lost makes both forget what they
//! hold (notices went unheard meanwhile); the position index then loads
//! again, from a listened replica.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed, Ordering::SeqCst};
use std::sync::Arc;
use std::time::Duration;

use atelier_exposition::{labels, Exposition};
use atelier_schema::DocumentKind;

use super::documents::{self, Documents};
use super::notice::Notice;
use super::positions::{PageSpan, Positions};
use crate::db::Node;

/// One per replica, in the pools' order: is its change listener connected?
pub(super) struct Listeners(Vec<(&'static str, AtomicBool)>);

impl Listeners {
    pub fn is_listening(&self, replica: &str) -> bool {
        self.0.iter().any(|(name, live)| *name == replica && live.load(SeqCst))
    }
}

pub(crate) struct ChangeFeed {
    listeners: Arc<Listeners>,
    documents: Option<Documents>,
    positions: Option<Positions>,
    notices: AtomicU64,
    forgets: AtomicU64,
}

impl ChangeFeed {
    /// A feed for a server reading `replicas`, to documents within `bytes`
    /// (0: none kept) and the position index (or not); None when neither is
    /// on (nothing needs to listen). `fill_delay`: the race tests' pause.
    pub fn new(bytes: usize, positions: bool, replicas: &[&'static str], fill_delay: Duration) -> Option<ChangeFeed> {
        if bytes == 0 && !positions {
            return None;
        }
        let listeners = Arc::new(Listeners(replicas.iter().map(|name| (*name, AtomicBool::new(false))).collect()));
        Some(ChangeFeed {
            documents: (bytes > 0).then(|| Documents::new(bytes, listeners.clone(), fill_delay)),
            positions: positions.then(Positions::default),
            listeners,
            notices: AtomicU64::new(0),
            forgets: AtomicU64::new(0),
        })
    }

    /// The documents, when they are kept.
    pub fn documents(&self) -> Option<&Documents> {
        self.documents.as_ref()
    }

    /// Where a page is, by the position index; None when it is off or not
    /// loaded.
    pub fn page_span(&self, offset: i64, count: i32) -> Option<PageSpan> {
        self.positions.as_ref()?.page(offset, count)
    }

    /// Is `replica`'s listener connected?
    pub fn is_listening(&self, replica: &str) -> bool {
        self.listeners.is_listening(replica)
    }

    /// Takes in one notice from a replica.
    pub fn apply(&self, notice: Notice) {
        self.notices.fetch_add(1, Relaxed);
        match notice {
            Notice::Everything => self.forget_everything(),
            Notice::Changed { kind: DocumentKind::Card, product, op, .. } => {
                if let Some(positions) = &self.positions {
                    positions.apply(product, op);
                }
                if let Some(documents) = &self.documents {
                    documents.cards_changed();
                }
            }
            Notice::Changed { kind, product, version, op } => {
                if let Some(documents) = &self.documents {
                    documents.changed(kind, product, version, op);
                }
            }
        }
    }

    /// Forgets every document and page, refuses every fill under way, and
    /// has the position index loaded again.
    pub fn forget_everything(&self) {
        if let Some(positions) = &self.positions {
            positions.invalidate();
        }
        if let Some(documents) = &self.documents {
            documents.forget();
        }
        self.forgets.fetch_add(1, Relaxed);
    }

    /// A replica's listener connected (after LISTEN) or was lost. Either
    /// way everything is forgotten: while it was not listening, notices
    /// went unheard.
    pub fn set_listening(&self, replica: &str, live: bool) {
        for (name, flag) in &self.listeners.0 {
            if *name == replica {
                flag.store(live, SeqCst);
            }
        }
        self.forget_everything();
    }

    /// Keeps the position index loaded from `replicas` whose listener is
    /// connected (each load bounded by `within`), until the server stops;
    /// returns at once when the index is off.
    pub async fn keep_positions(&self, replicas: &[Node], within: Duration, listener_timeout: Duration) {
        let Some(positions) = &self.positions else { return };
        let listened = |name: &str| self.is_listening(name);
        positions.keep_loaded(replicas, listened, within, listener_timeout).await;
    }

    /// Its metrics: the position index, the documents' counters, notices
    /// and forgets, bytes and slots held, listeners.
    pub fn expose(&self, out: &mut Exposition) {
        if let Some(positions) = &self.positions {
            positions.expose(out);
        }
        documents::expose(self.documents.as_ref(), out);
        out.counter("atelier_cache_forgets", "Times the whole cache was forgotten (listener lost or connected, '*').")
            .count(Vec::new(), self.forgets.load(Relaxed));
        out.counter("atelier_cache_notices", "Change notices received from the replicas.")
            .count(Vec::new(), self.notices.load(Relaxed));
        let (bytes, slots) = self.documents.as_ref().map_or((0, 0), Documents::held);
        out.gauge("atelier_cache_bytes", "Bytes the document cache holds (bodies, ETags, bookkeeping).")
            .integer(Vec::new(), bytes);
        out.gauge("atelier_cache_slots", "Documents, pages and remembered versions held.").integer(Vec::new(), slots);
        let mut up = out.gauge("atelier_cache_listener_up", "1 while the replica's change listener is connected.");
        for (name, live) in &self.listeners.0 {
            up.integer(labels([("replica", name)]), i64::from(live.load(Relaxed)));
        }
    }
}
