//! The four read endpoints, byte for byte against golden files, including
//! every odd case of the contract.

use crate::helpers::{assert_golden, catalog_lock, get, request};

#[test]
fn product_list_pages_match_golden() {
    let _catalog = catalog_lock();
    let first = get("/products?page=1&count=3");
    assert_eq!(first.status, 200);
    assert_eq!(first.header("content-type"), Some("application/json"));
    assert_golden("products_page1_count3.json", &first.body);
    // Defaults are page 1, count 5.
    assert_golden("products_default.json", &get("/products").body);
    // Page 2 of size 2 is positions 3 and 4.
    assert_golden("products_page2_count2.json", &get("/products?page=2&count=2").body);
}

#[test]
fn page_past_the_end_is_an_empty_array() {
    for path in ["/products?page=100000&count=1000", "/products?page=9223372036854775807&count=1000"] {
        let response = get(path);
        assert_eq!(response.status, 200, "{path}");
        assert_eq!(response.text(), "[]", "{path}");
    }
}

#[test]
fn product_detail_matches_golden() {
    assert_golden("product_1.json", &get("/products/1").body); // features, one null value
    assert_golden("product_2.json", &get("/products/2").body); // no features: []
    assert_golden("product_3.json", &get("/products/3").body); // escaped quotes, 40.50
}

#[test]
fn product_styles_match_golden() {
    // Default style with photos and skus; a sale style with no photos and no skus.
    assert_golden("styles_1.json", &get("/products/1/styles").body);
    // No styles at all.
    assert_golden("styles_2.json", &get("/products/2/styles").body);
    // Photos but no skus.
    assert_golden("styles_3.json", &get("/products/3/styles").body);
}

#[test]
fn related_matches_golden() {
    assert_eq!(get("/products/1/related").text(), "[2,3]");
    assert_eq!(get("/products/2/related").text(), "[]");
    assert_eq!(get("/products/3/related").text(), "[1]");
}

#[test]
fn contract_types_hold() {
    let styles = get("/products/1/styles").json();
    assert!(styles["product_id"].is_string(), "product_id is a string");
    let style = &styles["results"][0];
    assert!(style["style_id"].is_number());
    assert_eq!(style["default?"], serde_json::json!(true));
    assert!(style["sale_price"].is_null());
    assert_eq!(style["original_price"], "140.00");
    assert_eq!(style["skus"]["37"]["quantity"], 8);
    assert_eq!(styles["results"][1]["photos"], serde_json::json!([{"thumbnail_url": null, "url": null}]));
    assert_eq!(styles["results"][1]["skus"], serde_json::json!({}));
    let card = &get("/products?page=1&count=1").json()[0];
    assert_eq!(card["default_price"], "140.00");
    assert_eq!(card["created_at"], "2026-01-02T03:04:05.000Z");
}

#[test]
fn etag_and_if_none_match_give_304() {
    for path in ["/products/1", "/products/1/styles", "/products/1/related", "/products?page=1&count=2"] {
        let first = get(path);
        let etag = first.header("etag").unwrap_or_else(|| panic!("{path} has an ETag")).to_string();
        let again = request("GET", path, &[("If-None-Match", &etag)], None);
        assert_eq!(again.status, 304, "{path}");
        assert!(again.body.is_empty(), "304 has no body");
        assert_eq!(again.header("etag"), Some(etag.as_str()));
        let other = request("GET", path, &[("If-None-Match", "\"v0\"")], None);
        assert_eq!(other.status, 200, "{path}");
        assert_eq!(other.body, first.body);
    }
}

#[test]
fn head_answers_like_get_without_a_body() {
    let response = request("HEAD", "/products/1", &[], None);
    assert_eq!(response.status, 200);
    assert!(response.body.is_empty());
    assert_eq!(response.header("content-length"), Some(get("/products/1").body.len().to_string().as_str()));
}
