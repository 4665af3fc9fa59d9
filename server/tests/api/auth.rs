//! Only a token holder may write: every write route refuses a missing,
//! unknown, malformed or revoked token (401) and a token of the wrong scope
//! (403), and nothing of the refused write reaches the database; reads stay
//! public (a junk `Authorization` is ignored) unless the catalog is made
//! private; failed attempts from one address are refused with 429 past
//! their burst while other addresses are unaffected. Each test runs a
//! server of its own: the shared app's limiter must never see these
//! failures (they would lock 127.0.0.1 out of every other test's writes).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use atelier_schema::tokens::Scope;
use atelier_server::Config;
use atelier_tools::tokens;
use serde_json::json;

use crate::helpers::{
    app, bearer, catalog_lock, create_product, get, query, request, request_raw, send, spawn_stoppable_server,
    test_config, with_db, Response, StoppableServer, JSON,
};

/// Issues a token with `scopes` in the test database.
fn issue(name: &str, scopes: &[Scope]) -> String {
    with_db(&app().primary, async |_| tokens::create(&app().primary, name, scopes).await.expect("token issued").1)
}

/// A server of the test's own, small (the primary's connection slots are
/// shared by every server the suite starts), stopped when dropped.
struct Own(Option<StoppableServer>);

impl Own {
    fn start(mut config: Config) -> Own {
        config.pools.write_pool_size = 2;
        config.pools.read_pool_size = 1;
        config.pools.read_pipeline_connections = 1;
        config.cache.cache_bytes = 0;
        Own(Some(spawn_stoppable_server(config)))
    }

    fn addr(&self) -> SocketAddr {
        self.0.as_ref().map(|s| s.addr).expect("running")
    }
}

impl Drop for Own {
    fn drop(&mut self) {
        if let Some(server) = self.0.take() {
            let _ = server.stop.send(());
            let _ = server.thread.join();
        }
    }
}

/// A server of its own that reloads tokens every 100 ms.
fn server(burst: u32) -> Own {
    let mut config = test_config();
    config.auth.token_reload = Duration::from_millis(100);
    config.auth.failures_burst = burst;
    Own::start(config)
}

/// A product of the test's own with a style, a sku and a related list.
struct Fixture {
    product: i64,
    style: i64,
    sku: i64,
}

fn fixture() -> Fixture {
    let product = create_product("Auth Fixture");
    let style = send(
        "POST",
        &format!("/products/{product}/styles"),
        &json!({"name": "S", "original_price": "5",
        "photos": [{"thumbnail_url": "t", "url": "u"}], "skus": [{"size": "M", "quantity": 4}]}),
    );
    assert_eq!(style.status, 201, "{}", style.text());
    let style_id = style.json()["style_id"].as_i64().unwrap();
    let sku: i64 = query(&app().primary, &format!("select id from sku where style_id = {style_id}"))[0].get(0);
    let related = send("PUT", &format!("/products/{product}/related"), &json!([1]));
    assert_eq!(related.status, 200, "{}", related.text());
    Fixture { product, style: style_id, sku }
}

/// Everything the write model holds for the fixture's product, and how many
/// products bear the name a refused POST would create.
fn snapshot(f: &Fixture) -> String {
    let p = f.product;
    let sql = format!(
        "select concat_ws(' | ',
            (select row(name, slogan, description, category, default_price)::text from product where id = {p}),
            (select string_agg(row(feature, value)::text, ',' order by id) from feature where product_id = {p}),
            (select string_agg(row(id, name, original_price, sale_price, is_default)::text, ',' order by id)
               from style where product_id = {p}),
            (select string_agg(row(ph.id, ph.url)::text, ',' order by ph.id)
               from photo ph join style s on s.id = ph.style_id where s.product_id = {p}),
            (select string_agg(row(k.id, k.size)::text, ',' order by k.id)
               from sku k join style s on s.id = k.style_id where s.product_id = {p}),
            (select string_agg(row(m.id, m.delta)::text, ',' order by m.id)
               from stock_movement m join sku k on k.id = m.sku_id join style s on s.id = k.style_id
               where s.product_id = {p}),
            (select string_agg(related_product_id::text, ',' order by id) from related_product where product_id = {p}),
            (select count(*)::text from product where name = 'Refused Create'))"
    );
    query(&app().primary, &sql)[0].get(0)
}

/// Every write route, with a body that would succeed, and the scope it needs.
fn writes(f: &Fixture) -> Vec<(&'static str, String, Option<serde_json::Value>, Scope)> {
    let product = json!({"name": "Refused Create", "slogan": "s", "description": "d", "category": "c",
        "default_price": "1"});
    let style = json!({"name": "Refused", "original_price": "1"});
    vec![
        ("POST", "/products".into(), Some(product.clone()), Scope::CatalogWrite),
        ("PUT", format!("/products/{}", f.product), Some(product), Scope::CatalogWrite),
        ("PATCH", format!("/products/{}", f.product), Some(json!({"slogan": "refused"})), Scope::CatalogWrite),
        ("POST", format!("/products/{}/styles", f.product), Some(style.clone()), Scope::CatalogWrite),
        ("PUT", format!("/styles/{}", f.style), Some(style), Scope::CatalogWrite),
        ("POST", format!("/styles/{}/skus", f.style), Some(json!({"size": "XL", "quantity": 1})), Scope::CatalogWrite),
        ("PUT", format!("/products/{}/related", f.product), Some(json!([2, 3])), Scope::CatalogWrite),
        ("POST", format!("/skus/{}/movements", f.sku), Some(json!({"delta": -1})), Scope::StockWrite),
        ("DELETE", format!("/skus/{}", f.sku), None, Scope::CatalogWrite),
        ("DELETE", format!("/styles/{}", f.style), None, Scope::CatalogWrite),
        ("DELETE", format!("/products/{}", f.product), None, Scope::CatalogWrite),
    ]
}

fn write_with(
    addr: SocketAddr,
    method: &str,
    path: &str,
    body: &Option<serde_json::Value>,
    auth: Option<&str>,
) -> Response {
    let text = body.as_ref().map(|b| b.to_string());
    let mut headers = vec![JSON];
    if let Some(auth) = auth {
        headers.push(("Authorization", auth));
    }
    request_raw(addr, method, path, &headers, text.as_deref().map(str::as_bytes))
}

fn assert_refused(response: &Response, status: u16, code: &str, what: &str) {
    assert_eq!(response.status, status, "{what}: {}", response.text());
    assert_eq!(response.json()["error"], code, "{what}");
    if status == 401 {
        let challenge = response.header("www-authenticate").unwrap_or_default();
        assert!(challenge.starts_with("Bearer"), "{what}: WWW-Authenticate {challenge:?}");
    }
}

#[test]
fn every_write_refuses_a_missing_wrong_revoked_or_underscoped_token_and_writes_nothing() {
    let _catalog = catalog_lock();
    let stock_only = issue("auth test: checkout", &[Scope::StockWrite]);
    let catalog_only = issue("auth test: back office", &[Scope::CatalogWrite]);
    let reader = issue("auth test: reader", &[Scope::Read]);
    let revoked = issue("auth test: revoked", &[Scope::CatalogWrite, Scope::StockWrite]);
    let own = server(1_000_000);
    let addr = own.addr();
    let f = fixture();
    let before = snapshot(&f);
    let unknown = format!("Bearer {}", tokens::generate());
    for (method, path, body, scope) in writes(&f) {
        let what = format!("{method} {path}");
        assert_refused(
            &write_with(addr, method, &path, &body, None),
            401,
            "unauthorized",
            &format!("{what}, no token"),
        );
        assert_refused(&write_with(addr, method, &path, &body, Some(&unknown)), 401, "unauthorized", &what);
        for junk in ["Bearer", "Bearer not-a-token", "Basic dXNlcjpwYXNz", "atl_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"] {
            let r = write_with(addr, method, &path, &body, Some(junk));
            assert_refused(&r, 401, "unauthorized", &format!("{what} with {junk:?}"));
        }
        let wrong = match scope {
            Scope::StockWrite => &catalog_only,
            _ => &stock_only,
        };
        let r = write_with(addr, method, &path, &body, Some(&bearer(wrong)));
        assert_refused(&r, 403, "forbidden", &format!("{what} with the wrong scope"));
        assert!(r.header("www-authenticate").unwrap_or_default().contains(scope.name()), "{what} names its scope");
        let r = write_with(addr, method, &path, &body, Some(&bearer(&reader)));
        assert_refused(&r, 403, "forbidden", &format!("{what} with a read token"));
    }
    assert_eq!(snapshot(&f), before, "no refused write changed anything");
    // Revoked: refused within the reload bound (100 ms; allow for a loaded
    // machine), on every route.
    let (method, path, body, _) = &writes(&f)[2];
    let ok = write_with(addr, method, path, body, Some(&bearer(&revoked)));
    assert_eq!(ok.status, 200, "the token works before it is revoked: {}", ok.text());
    let ids = with_db(&app().primary, async |_| tokens::revoke(&app().primary, &revoked[..12]).await.unwrap());
    assert_eq!(ids.len(), 1, "revoked by its hint");
    let revoked_at = Instant::now();
    while write_with(
        addr,
        "PATCH",
        &format!("/products/{}", f.product),
        &Some(json!({"slogan": "revoked?"})),
        Some(&bearer(&revoked)),
    )
    .status
        != 401
    {
        assert!(revoked_at.elapsed() < Duration::from_secs(5), "a revoked token still works after 5 s");
        std::thread::sleep(Duration::from_millis(20));
    }
    let refused_within = revoked_at.elapsed();
    // The PATCHes that went through before the revocation took effect
    // changed the slogan: this is the state to keep from here on.
    let before = snapshot(&f);
    for (method, path, body, _) in writes(&f) {
        let r = write_with(addr, method, &path, &body, Some(&bearer(&revoked)));
        assert_refused(&r, 401, "unauthorized", &format!("{method} {path} with a revoked token"));
    }
    assert_eq!(snapshot(&f), before, "no refused write changed anything");
    println!("revoked token refused after {refused_within:?} (reload every 100 ms)");
    // And the right scopes do write: the checkout's movement, the back
    // office's delete.
    let sale = write_with(
        addr,
        "POST",
        &format!("/skus/{}/movements", f.sku),
        &Some(json!({"delta": -1})),
        Some(&bearer(&stock_only)),
    );
    assert_eq!(sale.status, 201, "{}", sale.text());
    let gone = write_with(addr, "DELETE", &format!("/products/{}", f.product), &None, Some(&bearer(&catalog_only)));
    assert_eq!(gone.status, 204, "{}", gone.text());
}

#[test]
fn reads_ignore_any_authorization_unless_the_catalog_is_private() {
    for junk in ["Bearer dummy", "a-fec-client-api-key", "Basic Zm9vOmJhcg=="] {
        let r = request_raw(app().addr, "GET", "/products/1", &[("Authorization", junk)], None);
        assert_eq!(r.status, 200, "public read with {junk:?}: {}", r.text());
    }
    assert_eq!(get("/products/1/styles").status, 200);
    let reader = issue("auth test: private reader", &[Scope::Read]);
    let checkout = issue("auth test: private checkout", &[Scope::StockWrite]);
    let mut config = test_config();
    config.auth.read_requires_token = true;
    config.auth.failures_burst = 1_000_000;
    let own = Own::start(config);
    let addr = own.addr();
    for path in ["/products/1", "/products/1/styles", "/products/1/related", "/products?count=2"] {
        let anonymous = request_raw(addr, "GET", path, &[], None);
        assert_refused(&anonymous, 401, "unauthorized", &format!("private {path}"));
        let junk = request_raw(addr, "GET", path, &[("Authorization", "Bearer dummy")], None);
        assert_refused(&junk, 401, "unauthorized", &format!("private {path} with a dummy token"));
        for token in [&reader, &checkout] {
            let r = request_raw(addr, "GET", path, &[("Authorization", &bearer(token))], None);
            assert_eq!(r.status, 200, "{path}: {}", r.text());
        }
    }
    let health = request_raw(addr, "GET", "/readyz", &[], None);
    assert_eq!(health.status, 200, "operational endpoints never need a token");
}

#[test]
fn failed_attempts_from_one_address_are_refused_past_the_burst_and_other_addresses_still_write() {
    let _catalog = catalog_lock();
    let good = issue("auth test: limiter", &[Scope::StockWrite]);
    // A sku of the test's own: the shared fixture's stock is in goldens.
    let f = fixture();
    let mut config = test_config();
    config.auth.failures_burst = 5;
    // One try back a minute: the loop below cannot earn one, however slow
    // the machine.
    config.auth.failures_per_minute = 1;
    config.http.trusted_proxies = vec!["127.0.0.1".parse().unwrap()];
    let own = Own::start(config);
    let addr = own.addr();
    let path = format!("/skus/{}/movements", f.sku);
    let restock = Some(json!({"delta": 1, "reason": "auth test"}));
    let send_as = |client: &str, auth: &str| {
        let text = restock.as_ref().unwrap().to_string();
        request_raw(
            addr,
            "POST",
            &path,
            &[JSON, ("Authorization", auth), ("X-Forwarded-For", client)],
            Some(text.as_bytes()),
        )
    };
    let attacker = "203.0.113.9";
    for i in 0..5 {
        let r = send_as(attacker, &format!("Bearer {}", tokens::generate()));
        assert_refused(&r, 401, "unauthorized", &format!("guess {i}"));
    }
    for i in 0..20 {
        let r = send_as(attacker, &format!("Bearer {}", tokens::generate()));
        assert_refused(&r, 429, "too_many_requests", &format!("guess {} past the burst", 5 + i));
        let wait: u64 = r.header("retry-after").expect("429 says how long to wait").parse().unwrap();
        assert!((1..=60).contains(&wait), "Retry-After {wait}");
    }
    // Refused before the token is looked at: even a good one waits.
    assert_eq!(send_as(attacker, &bearer(&good)).status, 429);
    // Another client, and the balancer's own address, are unaffected.
    let r = send_as("203.0.113.10", &bearer(&good));
    assert_eq!(r.status, 201, "another address writes: {}", r.text());
    let text = restock.as_ref().unwrap().to_string();
    let direct = request_raw(addr, "POST", &path, &[JSON, ("Authorization", &bearer(&good))], Some(text.as_bytes()));
    assert_eq!(direct.status, 201, "{}", direct.text());
    let metrics = request_raw(addr, "GET", "/metrics", &[], None).text().to_string();
    let value = |name: &str| -> u64 {
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{name} ")))
            .unwrap_or_else(|| panic!("{name}"))
            .parse()
            .unwrap()
    };
    assert_eq!(value("atelier_auth_invalid_total"), 5);
    assert_eq!(value("atelier_auth_limited_total"), 21);
    assert!(metrics.contains("status=\"429\"} 21"), "429s counted by route");
    assert!(!metrics.contains(&good), "no token in the metrics");
    assert_eq!(request("DELETE", &format!("/products/{}", f.product), &[], None).status, 204);
}
