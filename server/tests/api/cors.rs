//! CORS on every route (reads, writes, operations), on success and error
//! answers, with any origin allowed by default and a configured list that
//! refuses an unlisted origin.

use crate::helpers::{request, request_to, spawn_server, test_config, Response};

const SHOP: &str = "http://shop.example";

fn preflight(addr: Option<std::net::SocketAddr>, path: &str, method: &str, headers: &str, origin: &str) -> Response {
    let head =
        [("Origin", origin), ("Access-Control-Request-Method", method), ("Access-Control-Request-Headers", headers)];
    match addr {
        Some(addr) => request_to(addr, "OPTIONS", path, &head, None),
        None => request("OPTIONS", path, &head, None),
    }
}

fn listed(value: Option<&str>) -> Vec<String> {
    value.unwrap_or_default().split(',').map(|v| v.trim().to_ascii_lowercase()).collect()
}

#[test]
fn preflights_allow_every_route_its_methods_and_echo_the_headers_asked_for() {
    let cases = [
        ("/products/5", "GET", "GET"),
        ("/products", "POST", "POST"),
        ("/skus/3/movements", "POST", "POST"),
        ("/products/9/related", "PUT", "PUT"),
        ("/styles/2", "DELETE", "DELETE"),
        ("/healthz", "GET", "GET"),
    ];
    // What real storefronts ask for: the contract's headers, and the ones
    // some React clients add to every call.
    let asked = "authorization,content-type,idempotency-key,cache-control,pragma,x-requested-with";
    for (path, method, allowed) in cases {
        let r = preflight(None, path, method, asked, SHOP);
        assert_eq!(r.status, 204, "{path}: {}", r.text());
        assert!(r.body.is_empty());
        assert_eq!(r.header("access-control-allow-origin"), Some("*"), "{path}");
        assert!(listed(r.header("access-control-allow-methods")).contains(&allowed.to_ascii_lowercase()), "{path}");
        let allowed_headers = listed(r.header("access-control-allow-headers"));
        for header in asked.split(',') {
            assert!(allowed_headers.contains(&header.to_string()), "{path} allows {header}: {allowed_headers:?}");
        }
        assert!(r.header("access-control-max-age").is_some());
    }
    // Whatever a client invents is echoed too (Express's cors() default).
    let invented = preflight(None, "/products/1", "GET", "X-Storefront-Build", SHOP);
    assert_eq!(invented.header("access-control-allow-headers"), Some("X-Storefront-Build"));
    // A path we do not serve still answers the preflight, so the browser
    // lets the page read the JSON 404 that follows.
    let unknown = preflight(None, "/nowhere", "GET", "authorization,cache-control", SHOP);
    assert_eq!(unknown.status, 204, "{}", unknown.text());
    assert_eq!(unknown.header("access-control-allow-origin"), Some("*"));
    assert!(listed(unknown.header("access-control-allow-methods")).contains(&"get".to_string()));
    assert!(listed(unknown.header("access-control-allow-headers")).contains(&"cache-control".to_string()));
    let followed = request("GET", "/nowhere", &[("Origin", SHOP)], None);
    assert_eq!(followed.status, 404);
    assert_eq!(followed.header("access-control-allow-origin"), Some("*"));
    assert_eq!(followed.json()["error"], "not_found");
}

#[test]
fn every_answer_names_the_origin_and_exposes_what_clients_read() {
    let origin = [("Origin", SHOP)];
    let answers = [
        request("GET", "/products/1", &origin, None),
        request("GET", "/products?page=1&count=2", &origin, None),
        request("GET", "/products/abc", &origin, None),
        request("GET", "/products/987654321/styles", &origin, None),
        request("DELETE", "/products", &origin, None),
        request("POST", "/products", &[("Origin", SHOP), ("Content-Type", "application/json")], Some(b"{}")),
        request("GET", "/readyz", &origin, None),
        request("GET", "/browse", &origin, None),
    ];
    let statuses: Vec<u16> = answers.iter().map(|r| r.status).collect();
    assert_eq!(statuses, [200, 200, 400, 404, 405, 422, 200, 200]);
    for answer in &answers {
        assert_eq!(answer.header("access-control-allow-origin"), Some("*"), "{}", answer.status);
        let exposed = listed(answer.header("access-control-expose-headers"));
        for header in ["etag", "location", "x-read-after"] {
            assert!(exposed.contains(&header.to_string()), "{} exposes {header}", answer.status);
        }
    }
}

#[test]
fn a_configured_origin_list_refuses_unlisted_origins() {
    let mut config = test_config();
    config.http.cors_origins = vec![SHOP.to_string(), "http://localhost:8080".to_string()];
    let addr = spawn_server(config);
    let allowed = preflight(Some(addr), "/products/1", "GET", "authorization", SHOP);
    assert_eq!(allowed.status, 204);
    assert_eq!(allowed.header("access-control-allow-origin"), Some(SHOP));
    assert!(listed(allowed.header("vary")).contains(&"origin".to_string()));
    let refused = preflight(Some(addr), "/products/1", "GET", "authorization", "http://evil.example");
    assert_eq!(refused.header("access-control-allow-origin"), None, "no grant: the browser refuses");
    let unknown = preflight(Some(addr), "/nowhere", "GET", "authorization", "http://evil.example");
    assert_eq!(unknown.header("access-control-allow-origin"), None, "unlisted, on any path");
    let read = request_to(addr, "GET", "/products/1", &[("Origin", "http://evil.example")], None);
    assert_eq!(read.status, 200, "the server still answers; the browser will not show it to the page: {}", read.text());
    assert_eq!(read.header("access-control-allow-origin"), None);
    let other = request_to(addr, "GET", "/products/1", &[("Origin", "http://localhost:8080")], None);
    assert_eq!(other.header("access-control-allow-origin"), Some("http://localhost:8080"));
}
