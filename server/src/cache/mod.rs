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
//! The parts: `map` (a byte-bounded CLOCK map), `documents` (the rules
//! above, and the `read_*` the read handlers call), `feed` (notices fanned
//! out to the documents and the position index; which replicas are
//! listened to), `positions`, `notice` (the notices) and `listen` (the
//! connections that receive them).

mod documents;
mod feed;
mod listen;
mod map;
mod notice;
mod positions;
mod settings;

pub(crate) use documents::{Answer, Fresh};
pub(crate) use feed::ChangeFeed;
pub use listen::listen_to_replicas;
pub(crate) use map::Cached;
pub(crate) use positions::PageSpan;
pub use settings::CacheSettings;

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering::Relaxed;
    use std::time::Duration;

    use atelier_schema::DocumentKind;
    use bytes::Bytes;

    use super::documents::{Documents, Ticket};
    use super::map::{lock, Slot};
    use super::notice::{Notice, Op};
    use super::*;

    const R1: &str = "replica1";
    const R2: &str = "replica2";
    const STYLES: DocumentKind = DocumentKind::Styles;

    fn feed(bytes: usize, positions: bool, replicas: &[&'static str]) -> Option<ChangeFeed> {
        ChangeFeed::new(bytes, positions, replicas, Duration::ZERO)
    }

    fn listening_cache(bytes: usize) -> ChangeFeed {
        let cache = feed(bytes, false, &[R1, R2]).unwrap();
        cache.set_listening(R1, true);
        cache.set_listening(R2, true);
        cache
    }

    fn docs(cache: &ChangeFeed) -> &Documents {
        cache.documents().expect("documents are kept")
    }

    fn now(cache: &ChangeFeed) -> Ticket {
        docs(cache).ticket()
    }

    fn keep(cache: &ChangeFeed, ticket: Ticket, node: &str, product: i64, version: i64) {
        let body = Bytes::from(format!("doc {product} v{version}"));
        docs(cache).keep_document(ticket, node, (STYLES, product), version, &body, &format!("\"v{version}\""));
    }

    fn held(cache: &ChangeFeed, product: i64) -> Option<String> {
        docs(cache).document((STYLES, product)).map(|hit| String::from_utf8(hit.body.to_vec()).unwrap())
    }

    fn changed(product: i64, version: i64, op: Op) -> Notice {
        Notice::Changed { kind: STYLES, product, version, op }
    }

    #[test]
    fn keeps_and_serves_what_a_listened_replica_answered() {
        let cache = listening_cache(1 << 20);
        assert_eq!(held(&cache, 1), None);
        keep(&cache, now(&cache), R1, 1, 10);
        assert_eq!(held(&cache, 1).as_deref(), Some("doc 1 v10"));
        assert_eq!(docs(&cache).document((STYLES, 1)).unwrap().etag, "\"v10\"");
        // Another kind of the same product is another document.
        assert!(docs(&cache).document((DocumentKind::Detail, 1)).is_none());
        assert_eq!(docs(&cache).stats.hits.load(Relaxed), 2);
    }

    #[test]
    fn a_fill_that_read_an_older_version_never_lands_after_the_newer_notice() {
        let cache = listening_cache(1 << 20);
        // The fill reads version 10, the notice of 11 is processed, then
        // the fill tries to land.
        let ticket = now(&cache);
        cache.apply(changed(1, 11, Op::Updated));
        keep(&cache, ticket, R1, 1, 10);
        assert_eq!(held(&cache, 1), None, "refused: older than the notice");
        // A lagging replica read afterwards is refused as well.
        keep(&cache, now(&cache), R2, 1, 10);
        assert_eq!(held(&cache, 1), None);
        keep(&cache, now(&cache), R1, 1, 11);
        assert_eq!(held(&cache, 1).as_deref(), Some("doc 1 v11"));
        // The notice of 12 drops 11; an older notice arriving late does not.
        cache.apply(changed(1, 12, Op::Updated));
        assert_eq!(held(&cache, 1), None);
        keep(&cache, now(&cache), R1, 1, 12);
        cache.apply(changed(1, 11, Op::Updated));
        assert_eq!(held(&cache, 1).as_deref(), Some("doc 1 v12"));
    }

    #[test]
    fn a_newer_fill_is_kept_before_its_notice_and_survives_it() {
        let cache = listening_cache(1 << 20);
        keep(&cache, now(&cache), R1, 1, 10);
        keep(&cache, now(&cache), R1, 1, 11);
        assert_eq!(held(&cache, 1).as_deref(), Some("doc 1 v11"));
        keep(&cache, now(&cache), R2, 1, 10);
        assert_eq!(held(&cache, 1).as_deref(), Some("doc 1 v11"), "an older fill never replaces a newer");
        cache.apply(changed(1, 11, Op::Updated));
        assert_eq!(held(&cache, 1).as_deref(), Some("doc 1 v11"));
    }

    #[test]
    fn a_deleted_document_is_never_put_back_by_a_lagging_replica() {
        let cache = listening_cache(1 << 20);
        keep(&cache, now(&cache), R1, 1, 10);
        cache.apply(changed(1, 10, Op::Deleted));
        assert_eq!(held(&cache, 1), None);
        keep(&cache, now(&cache), R2, 1, 10);
        assert_eq!(held(&cache, 1), None);
    }

    #[test]
    fn only_listened_replicas_fill_and_losing_a_listener_forgets_everything() {
        let cache = feed(1 << 20, false, &[R1, R2]).unwrap();
        keep(&cache, now(&cache), R1, 1, 10);
        assert_eq!(held(&cache, 1), None, "no listener yet");
        cache.set_listening(R1, true);
        keep(&cache, now(&cache), R2, 1, 10);
        assert_eq!(held(&cache, 1), None, "replica2 is not listened to");
        keep(&cache, now(&cache), "primary", 1, 10);
        assert_eq!(held(&cache, 1), None, "the primary announces nothing");
        keep(&cache, now(&cache), R1, 1, 10);
        assert_eq!(held(&cache, 1).as_deref(), Some("doc 1 v10"));
        // A fill under way when the listener goes is refused, even if the
        // listener is back by the time it lands.
        let ticket = now(&cache);
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
        docs(&cache).keep_page(now(&cache), R1, 0, 5, &page, "\"h1\"");
        assert_eq!(docs(&cache).page(0, 5).unwrap().body, page);
        assert!(docs(&cache).page(5, 5).is_none());
        let ticket = now(&cache);
        cache.apply(Notice::Changed { kind: DocumentKind::Card, product: 900, version: 3, op: Op::Inserted });
        assert!(docs(&cache).page(0, 5).is_none());
        docs(&cache).keep_page(ticket, R1, 0, 5, &page, "\"h1\"");
        assert!(docs(&cache).page(0, 5).is_none());
        // "*" forgets documents and pages.
        docs(&cache).keep_page(now(&cache), R1, 0, 5, &page, "\"h1\"");
        keep(&cache, now(&cache), R1, 1, 10);
        cache.apply(Notice::Everything);
        assert!(docs(&cache).page(0, 5).is_none());
        assert_eq!(held(&cache, 1), None);
    }

    #[test]
    fn stays_within_its_bytes_and_keeps_what_is_read() {
        let bytes = 64 * 1024;
        let cache = listening_cache(bytes);
        keep(&cache, now(&cache), R1, 0, 1);
        for product in 1..5_000 {
            assert!(held(&cache, 0).is_some(), "read every time, so never evicted (at {product})");
            keep(&cache, now(&cache), R1, product, 1);
        }
        let total: usize = docs(&cache).shards().iter().map(|s| lock(s).bytes).sum();
        assert!(total <= bytes, "{total} bytes held");
        assert!(docs(&cache).stats.evictions.load(Relaxed) > 4_000);
        // The byte count matches the slots held.
        for shard in docs(&cache).shards().iter() {
            let shard = lock(shard);
            assert_eq!(shard.bytes, shard.map.values().map(Slot::bytes).sum::<usize>());
            assert_eq!(shard.clock.len(), shard.map.len());
        }
    }

    #[test]
    fn documents_off_at_zero_bytes() {
        assert!(feed(0, false, &[R1]).is_none());
        let positions_only = feed(0, true, &[R1]).unwrap();
        positions_only.set_listening(R1, true);
        assert!(positions_only.documents().is_none(), "documents are not kept");
        // Notices of every kind still arrive, for the position index.
        positions_only.apply(changed(1, 10, Op::Updated));
        positions_only.apply(Notice::Changed { kind: DocumentKind::Card, product: 1, version: 10, op: Op::Inserted });
    }

    #[tokio::test]
    async fn read_through_reads_once_then_answers_from_memory() {
        let cache = listening_cache(1 << 20);
        let fresh = |node| Fresh { body: Bytes::from_static(b"{}"), etag: "\"v3\"".into(), version: 3, node };
        let read = || async { Ok::<_, ()>(fresh(Some(R1))) };
        assert!(matches!(docs(&cache).read_document((STYLES, 1), read).await, Ok(Answer::Fresh(_))));
        // Held now: the second read is never started.
        let never = || async { unreachable!("a hit does not read") };
        match docs(&cache).read_document::<(), _>((STYLES, 1), never).await {
            Ok(Answer::Cached(hit)) => assert_eq!(hit.etag, "\"v3\""),
            _ => panic!("not answered from memory"),
        }
        // An answer no node gave (a page past the end) is not kept.
        let nowhere = || async { Ok::<_, ()>(fresh(None)) };
        assert!(matches!(docs(&cache).read_page(0, 5, nowhere).await, Ok(Answer::Fresh(_))));
        assert!(docs(&cache).page(0, 5).is_none());
        // An error is passed on and nothing is kept.
        assert!(docs(&cache).read_document((STYLES, 2), || async { Err::<Fresh, _>(()) }).await.is_err());
        assert_eq!(held(&cache, 2), None);
    }
}
