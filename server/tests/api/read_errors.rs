//! Every read error case of the contract, with its JSON error body.

use crate::helpers::{get, request, request_to, spawn_server, test_config, Response};

fn assert_error(response: &Response, status: u16, code: &str) {
    assert_eq!(response.status, status, "{}", response.text());
    assert_eq!(response.header("content-type"), Some("application/json"));
    let body = response.json();
    assert_eq!(body["error"], code);
    assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()));
    assert!(body.get("fields").is_none(), "fields only on validation errors");
}

#[test]
fn malformed_ids_are_400() {
    for id in ["abc", "0", "-1", "1.5", "%20", "9223372036854775808", "99999999999999999999999"] {
        for suffix in ["", "/styles", "/related"] {
            assert_error(&get(&format!("/products/{id}{suffix}")), 400, "bad_request");
        }
    }
}

#[test]
fn largest_id_is_well_formed_but_unknown() {
    assert_error(&get("/products/9223372036854775807"), 404, "not_found");
}

#[test]
fn unknown_products_are_404() {
    for suffix in ["", "/styles", "/related"] {
        assert_error(&get(&format!("/products/987654321{suffix}")), 404, "not_found");
    }
}

#[test]
fn bad_page_and_count_are_400() {
    for query in ["page=0", "page=-2", "page=x", "page=", "count=0", "count=-5", "count=2.5", "count=1e3"] {
        assert_error(&get(&format!("/products?{query}")), 400, "bad_request");
    }
    assert_eq!(get("/products?count=1000").status, 200, "count 1000 is the limit, allowed");
}

#[test]
fn a_count_above_the_maximum_is_served_as_the_maximum() {
    // Storefronts ask for count=1011 to cache a whole small catalog.
    let most = get("/products?count=1000");
    for count in ["1011", "5000", "99999999999999999999999"] {
        let clamped = get(&format!("/products?count={count}"));
        assert_eq!(clamped.status, 200, "count={count}");
        assert_eq!(clamped.body, most.body, "count={count} is served as 1000");
    }
    // With a smaller maximum configured, the clamp is visible in the answer.
    let mut config = test_config();
    config.read.page_count_max = 2;
    let small = spawn_server(config);
    let page = request_to(small, "GET", "/products?page=1&count=3", &[], None).json();
    let ids: Vec<i64> = page.as_array().unwrap().iter().map(|card| card["id"].as_i64().unwrap()).collect();
    assert_eq!(ids, [1, 2]);
    let second = request_to(small, "GET", "/products?page=2&count=1011", &[], None).json();
    assert_eq!(second[0]["id"], 3, "page 2 of size 2 starts at position 3");
}

#[test]
fn unknown_routes_are_404() {
    for path in ["/", "/product", "/products/1/reviews", "/products/1/styles/2", "/cart"] {
        assert_error(&get(path), 404, "not_found");
    }
}

#[test]
fn wrong_methods_are_405_with_allow() {
    let cases = [
        ("DELETE", "/products", "GET, HEAD, POST"),
        ("POST", "/products/1", "GET, HEAD, PUT, PATCH, DELETE"),
        ("DELETE", "/products/1/styles", "GET, HEAD, POST"),
        ("POST", "/products/1/related", "GET, HEAD, PUT"),
        ("GET", "/styles/1", "PUT, DELETE"),
        ("GET", "/skus/1/movements", "POST"),
        ("POST", "/healthz", "GET, HEAD"),
    ];
    for (method, path, allow) in cases {
        let response = request(method, path, &[], None);
        assert_error(&response, 405, "method_not_allowed");
        assert_eq!(response.header("allow"), Some(allow), "{method} {path}");
    }
}
