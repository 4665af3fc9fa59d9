//! The document cache (server/src/cache/): byte-identical answers, fresh
//! after every kind of write, never ahead of the replica it reads, emptied
//! when a listener is lost, and never left holding an old version under
//! concurrent writes and reads.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::helpers::{
    app, assert_golden, catalog_lock, create_product, get, metric, query, request, request_to, send, spawn_server,
    subscription, sync_replicas, test_config, with_db, Response,
};

/// How long a change may take to reach a cache (replication, then the
/// replica's notice); generous for a loaded 2-core machine.
const FRESH_WITHIN: Duration = Duration::from_secs(10);

fn get_from(addr: SocketAddr, path: &str) -> Response {
    request_to(addr, "GET", path, &[], None)
}

/// Polls until `poll` gives a value; after FRESH_WITHIN, panics saying
/// `what` never happened, with the last poll's account of why.
fn wait_for<T>(what: &str, mut poll: impl FnMut() -> Result<T, String>) -> T {
    let started = Instant::now();
    loop {
        match poll() {
            Ok(value) => return value,
            Err(why) => assert!(started.elapsed() < FRESH_WITHIN, "{what}: {why}"),
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// `wait_for` a condition.
fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    wait_for(what, || if done() { Ok(()) } else { Err("still not".into()) })
}

/// GETs `path` until the answer comes from the cache (a first read fills
/// it); returns that answer.
fn cached(addr: SocketAddr, path: &str) -> Response {
    wait_for(&format!("{path} never came from the cache"), || {
        let response = get_from(addr, path);
        if response.header("x-served-by") == Some("cache") {
            Ok(response)
        } else {
            Err(response.text().into())
        }
    })
}

/// GETs `path` until `fresh` holds for the body; panics after FRESH_WITHIN.
fn eventually(addr: SocketAddr, path: &str, what: &str, fresh: impl Fn(&str) -> bool) -> Response {
    wait_for(&format!("{path} never showed {what}"), || {
        let response = get_from(addr, path);
        if response.status == 200 && fresh(response.text()) {
            Ok(response)
        } else {
            Err(response.text().into())
        }
    })
}

/// The version behind a document's ETag ("v123").
fn version(response: &Response) -> i64 {
    let etag = response.header("etag").expect("documents carry an ETag");
    etag.trim_matches('"').trim_start_matches('v').parse().unwrap_or_else(|_| panic!("ETag {etag}"))
}

#[test]
fn goldens_are_byte_identical_from_the_cache() {
    let _catalog = catalog_lock();
    let addr = app().addr;
    for (path, golden) in [
        ("/products?page=1&count=3", "products_page1_count3.json"),
        ("/products", "products_default.json"),
        ("/products?page=2&count=2", "products_page2_count2.json"),
        ("/products/1", "product_1.json"),
        ("/products/2", "product_2.json"),
        ("/products/3", "product_3.json"),
        ("/products/1/styles", "styles_1.json"),
        ("/products/2/styles", "styles_2.json"),
        ("/products/3/styles", "styles_3.json"),
    ] {
        let answer = cached(addr, path);
        assert_eq!(answer.status, 200);
        assert_eq!(answer.header("content-type"), Some("application/json"), "{path}");
        assert_golden(golden, &answer.body);
        // The ETag is the stored one, and a matching If-None-Match is 304.
        let etag = answer.header("etag").unwrap().to_string();
        let again = request("GET", path, &[("If-None-Match", &etag)], None);
        assert_eq!(again.status, 304, "{path}");
    }
    assert_eq!(cached(addr, "/products/1/related").text(), "[2,3]");
}

#[test]
fn every_cached_route_serves_the_new_bytes_after_a_write() {
    let _catalog = catalog_lock();
    let addr = app().addr;
    let id = create_product("Cached Cap");
    sync_replicas();
    let detail = format!("/products/{id}");
    let styles = format!("/products/{id}/styles");
    let related = format!("/products/{id}/related");
    let total: i64 = query(&app().primary, "select count(*) from product")[0].get(0);
    // The last page of 1: this product's card alone.
    let page = format!("/products?page={total}&count=1");
    for path in [&detail, &styles, &related, &page] {
        cached(addr, path);
    }
    // The page may have been kept (past the end) before the product was
    // made; its card's notice drops it, a moment after the replicas apply.
    wait_until("the last page, from the cache, shows the new product", || {
        cached(addr, &page).text().contains("Cached Cap")
    });

    assert_eq!(send("PATCH", &detail, &json!({"name": "Cached Beret"})).status, 200);
    let style = json!({"name": "Felt", "original_price": "12", "sale_price": null, "default?": true,
                       "photos": [], "skus": [{"size": "M", "quantity": 3}]});
    assert_eq!(send("POST", &styles, &style).status, 201);
    assert_eq!(send("PUT", &related, &json!([1, 2])).status, 200);
    // No token: the cache must hear of the changes by itself.
    eventually(addr, &detail, "the new name", |body| body.contains("\"name\":\"Cached Beret\""));
    eventually(addr, &styles, "the new style", |body| body.contains("\"name\":\"Felt\""));
    eventually(addr, &related, "the new related list", |body| body == "[1,2]");
    eventually(addr, &page, "the renamed card", |body| body.contains("Cached Beret"));
    // And what it serves now is what it keeps serving.
    assert!(cached(addr, &detail).text().contains("Cached Beret"));

    assert_eq!(request("DELETE", &detail, &[], None).status, 204);
    wait_until("a deleted product stayed in the cache", || get(&detail).status == 404);
    eventually(addr, &page, "the page without the product", |body| !body.contains("Cached Beret"));
}

#[test]
fn a_server_reading_a_stopped_replica_serves_nothing_newer_than_it_has() {
    let _catalog = catalog_lock();
    let app = app();
    // A server that reads replica1 alone.
    let mut config = test_config();
    config.databases.replica_urls.truncate(1);
    config.read.fallback_primary = false;
    let addr = spawn_server(config);
    let id = create_product("Frozen Fleece");
    sync_replicas();
    let path = format!("/products/{id}");
    let before = cached(addr, &path);

    let replica1 = &app.replicas[0];
    let sub = subscription(replica1);
    query(replica1, &format!("alter subscription {sub} disable"));
    let patched = send("PATCH", &path, &json!({"name": "Thawed Fleece"}));
    assert_eq!(patched.status, 200);
    // replica2 has the change; replica1 does not.
    wait_until("replica2 never applied the change", || {
        query(&app.replicas[1], &format!("select doc from product_detail where product_id = {id}"))[0]
            .get::<_, String>(0)
            .contains("Thawed")
    });
    for _ in 0..20 {
        let answer = get_from(addr, &path);
        assert_eq!(answer.body, before.body, "nothing newer than replica1 has: {}", answer.text());
        std::thread::sleep(Duration::from_millis(10));
    }
    query(replica1, &format!("alter subscription {sub} enable"));
    eventually(addr, &path, "the change once replica1 applied it", |body| body.contains("Thawed Fleece"));
    request("DELETE", &path, &[], None);
}

#[test]
fn a_lost_listener_empties_the_cache_until_it_listens_again() {
    let _catalog = catalog_lock();
    let app = app();
    let mut config = test_config();
    config.cache.listener_timeout = Duration::from_millis(200);
    let addr = spawn_server(config);
    // Both listeners connected (each connect forgets too), then a hit.
    let up = |replica: &str| metric(addr, &format!("atelier_cache_listener_up{{replica=\"{replica}\"}}")) == 1.0;
    wait_until("the listeners never connected", || up("replica1") && up("replica2"));
    cached(addr, "/products/1");
    let forgets = metric(addr, "atelier_cache_forgets_total");
    // Cut every change listener on replica1 (the shared app's too, which
    // only makes it forget).
    let cut: i64 = query(
        &app.replicas[0],
        // offset 0 keeps the filter ahead of the terminate.
        "select count(*) filter (where pg_terminate_backend(pid))
         from (select pid from pg_stat_activity where application_name = 'atelier-listen' offset 0) listeners",
    )[0]
    .get(0);
    assert!(cut >= 1, "the server listens on replica1");
    wait_until("the cache did not notice its listener was gone", || {
        metric(addr, "atelier_cache_forgets_total") > forgets
    });
    // Emptied (only this test reads through this server): nothing is
    // held, and the next read goes to a replica.
    assert_eq!(metric(addr, "atelier_cache_slots"), 0.0, "nothing is held");
    let after = get_from(addr, "/products/1");
    assert_eq!(after.status, 200);
    assert_ne!(after.header("x-served-by"), Some("cache"), "the cache was emptied");
    // It listens again, and the cache is in use again.
    wait_until("the listener never came back", || up("replica1"));
    cached(addr, "/products/1");
}

/// Writers change one product's detail in bursts while readers read it
/// through a server whose only replica is replica1, and every fill lands
/// late (a fault-injection delay), so notices overtake fills all the time.
/// Before each GET a reader notes the version replica1 has; the answer may
/// lag it only by the time a notice takes (a repeated GET catches up).
/// After each burst, once the fills under way have landed, the server must
/// serve the last version: a fill that landed after a newer notice would
/// leave an older one in the cache for good.
#[test]
fn under_concurrent_writes_and_reads_no_served_version_stays_older_than_the_replica() {
    const WRITERS: usize = 3;
    const READERS: usize = 3;
    const BURSTS: usize = 6;
    const WRITES: usize = 8;
    const FILL_DELAY_MS: u64 = 15;
    let _catalog = catalog_lock();
    let app = app();
    let mut config = test_config();
    config.databases.replica_urls.truncate(1);
    config.faults.cache_fill_delay = Duration::from_millis(FILL_DELAY_MS);
    let addr = spawn_server(config);
    let id = create_product("Racing Robe");
    sync_replicas();
    let path = format!("/products/{id}");
    let replica1 = app.replicas[0].clone();
    let on_replica = |replica: &str| -> i64 {
        query(replica, &format!("select version from product_detail where product_id = {id}"))[0].get(0)
    };
    let done = std::sync::atomic::AtomicBool::new(false);
    let (served_from_cache, lagged) = std::thread::scope(|scope| {
        let readers: Vec<_> = (0..READERS)
            .map(|_| {
                let (path, replica1, done) = (&path, &replica1, &done);
                scope.spawn(move || {
                    with_db(replica1, async |replica| {
                        let (mut from_cache, mut lagged) = (0, 0);
                        // Bounded: stops with the writers, or after this many.
                        for _ in 0..20_000 {
                            if done.load(std::sync::atomic::Ordering::Relaxed) {
                                break;
                            }
                            let sql = "select version from product_detail where product_id = $1";
                            let on_replica: i64 = replica.query_one(sql, &[&id]).await.unwrap().get(0);
                            let mut answer = get_from(addr, path);
                            from_cache += usize::from(answer.header("x-served-by") == Some("cache"));
                            if version(&answer) < on_replica {
                                lagged += 1;
                                wait_for(
                                    &format!("an older version served for good: replica1 has v{on_replica}"),
                                    || {
                                        answer = get_from(addr, path);
                                        match version(&answer) {
                                            served if served >= on_replica => Ok(()),
                                            served => Err(format!("served v{served}")),
                                        }
                                    },
                                );
                            }
                        }
                        (from_cache, lagged)
                    })
                })
            })
            .collect();
        for burst in 0..BURSTS {
            std::thread::scope(|writers| {
                for w in 0..WRITERS {
                    let path = &path;
                    writers.spawn(move || {
                        for n in 0..WRITES {
                            let answer = send("PATCH", path, &json!({"slogan": format!("{burst}-{w}-{n}")}));
                            assert_eq!(answer.status, 200, "{}", answer.text());
                        }
                    });
                }
            });
            sync_replicas();
            let last = on_replica(&replica1);
            wait_until(&format!("burst {burst}: v{last} never came"), || version(&get_from(addr, &path)) == last);
            // Fills under way land; none may bring back an older version.
            std::thread::sleep(Duration::from_millis(FILL_DELAY_MS * 4));
            for _ in 0..5 {
                let served = version(&get_from(addr, &path));
                assert_eq!(served, last, "burst {burst}: an older version came back after the last one");
            }
        }
        done.store(true, std::sync::atomic::Ordering::Relaxed);
        readers.into_iter().map(|r| r.join().unwrap()).fold((0, 0), |(c, l), (rc, rl)| (c + rc, l + rl))
    });
    eprintln!("{served_from_cache} reads from the cache; {lagged} behind by a notice");
    assert!(served_from_cache > 0, "the cache took part");
    assert_eq!(version(&cached(addr, &path)), on_replica(&replica1), "the cache holds the last version");
    request("DELETE", &path, &[], None);
}

/// Every page of the list, as one string, from the server at `addr`.
fn all_pages(addr: SocketAddr, count: usize) -> String {
    let mut pages = String::new();
    for page in 1.. {
        let answer = get_from(addr, &format!("/products?page={page}&count={count}"));
        assert_eq!(answer.status, 200);
        if answer.text() == "[]" {
            return pages;
        }
        pages.push_str(answer.text());
        pages.push('\n');
    }
    unreachable!()
}

/// The position index (cache/positions.rs) answers exactly the pages
/// `products_page()` does, before and after products appear and go.
#[test]
fn the_position_index_pages_like_the_database() {
    let _catalog = catalog_lock();
    let app = app();
    let mut indexed = test_config();
    indexed.cache.cache_bytes = 0;
    let indexed = spawn_server(indexed);
    let mut plain = test_config();
    plain.cache.cache_bytes = 0;
    plain.cache.position_index = false;
    let plain = spawn_server(plain);
    let usable = |addr| metric(addr, "atelier_position_index_usable") == 1.0;
    wait_until("the index never loaded", || usable(indexed));
    assert!(get_from(plain, "/metrics").text().find("atelier_position_index").is_none(), "off means off");
    assert_eq!(all_pages(indexed, 3), all_pages(plain, 3));

    // Two products at the end and a card renamed; then the first of the
    // two goes, which moves the second's position; then the second.
    let added: Vec<i64> = query(
        &app.primary,
        "insert into product (name, slogan, description, category, default_price)
         values ('Wedged Wrap', 's', 'd', 'c', 1), ('Tail Tunic', 's', 'd', 'c', 1) returning id",
    )
    .iter()
    .map(|row| row.get(0))
    .collect();
    let name: String = query(&app.primary, "select name from product where id = 2")[0].get(0);
    // Failure or not, the shared fixture is left as it was found: product
    // 2's name (the goldens show it) and no added product.
    let _restore = Restore { primary: app.primary.clone(), added: added.clone(), name };
    query(&app.primary, "update product set name = 'Renamed ' || name where id = 2");
    let same_pages = |what: &str| {
        sync_replicas();
        let expected = all_pages(plain, 3);
        wait_for(&format!("{what}: the index never caught up"), || match all_pages(indexed, 3) {
            pages if pages == expected => Ok(()),
            pages => Err(pages),
        });
        expected
    };
    let pages = same_pages("two added, one renamed");
    assert!(pages.contains("Wedged Wrap") && pages.contains("Tail Tunic") && pages.contains("Renamed"));
    query(&app.primary, &format!("delete from product where id = {}", added[0]));
    query(&app.primary, "update product set name = substr(name, 9) where id = 2");
    let pages = same_pages("the first gone");
    assert!(!pages.contains("Wedged Wrap") && pages.contains("Tail Tunic"));
    query(&app.primary, &format!("delete from product where id = {}", added[1]));
    same_pages("both gone");
    assert!(usable(indexed), "served from the index throughout");
}

/// Puts the shared catalog back when a test that changed it ends, however
/// it ends (errors are ignored: it runs during a panic too).
struct Restore {
    primary: String,
    added: Vec<i64>,
    name: String,
}

impl Drop for Restore {
    fn drop(&mut self) {
        let Ok(runtime) = tokio::runtime::Builder::new_current_thread().enable_all().build() else { return };
        runtime.block_on(async {
            let Ok(client) = atelier_tools::connect(&self.primary).await else { return };
            let _ = client.execute("update product set name = $1 where id = 2 and name <> $1", &[&self.name]).await;
            let _ = client.execute("delete from product where id = any($1)", &[&self.added]).await;
        });
    }
}
