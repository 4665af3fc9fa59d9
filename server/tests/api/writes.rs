//! The write side through the API: every endpoint's success and error
//! classes (writes_racing.rs: writes under races, retries and outages).

use serde_json::{json, Value};

use crate::helpers::{
    app, catalog_lock, create_product, get, ledger, product_body, query, request, send, Response, JSON,
};

/// GET with the write's read-after token.
pub(crate) fn get_after(path: &str, write: &Response) -> Response {
    let token = write.header("x-read-after").expect("writes carry X-Read-After").to_string();
    request("GET", path, &[("X-Read-After", &token)], None)
}

pub(crate) fn assert_422(response: &Response, field: &str) {
    assert_eq!(response.status, 422, "{}", response.text());
    let body = response.json();
    assert_eq!(body["error"], "validation_failed");
    assert!(body["fields"][field].is_string(), "fields names {field}: {body}");
}

/// A list page's ETag follows that page's content: a write that changes a
/// card on the page gives it a new ETag, and the old one never earns a 304.
/// (A constant ETag on every list page would pass every other test.)
#[test]
fn a_list_page_etag_changes_with_its_content_and_a_changed_page_is_never_304() {
    let _catalog = catalog_lock();
    let page1 = get("/products?page=1&count=3");
    for other in ["/products?page=2&count=3", "/products?page=1&count=2"] {
        assert_ne!(get(other).header("etag"), page1.header("etag"), "{other} has an ETag of its own");
    }
    let created = send("POST", "/products", &product_body("Etag Parka"));
    let id = created.json()["id"].as_i64().unwrap();
    // The page of one card that holds it.
    let position: i64 = query(&app().primary, &format!("select count(*) from product where id <= {id}"))[0].get(0);
    let path = format!("/products?page={position}&count=1");
    let before = get_after(&path, &created);
    assert_eq!(before.json()[0]["id"], id);
    let etag = before.header("etag").expect("list pages have an ETag").to_string();

    let patched = send("PATCH", &format!("/products/{id}"), &json!({"slogan": "A new slogan"}));
    assert_eq!(patched.status, 200, "{}", patched.text());
    let token = patched.header("x-read-after").unwrap().to_string();
    let after = request("GET", &path, &[("X-Read-After", &token), ("If-None-Match", &etag)], None);
    assert_eq!(after.status, 200, "the page changed: no 304 for its old ETag");
    assert_eq!(after.json()[0]["slogan"], "A new slogan");
    let new_etag = after.header("etag").unwrap().to_string();
    assert_ne!(new_etag, etag);
    let again = request("GET", &path, &[("X-Read-After", &token), ("If-None-Match", &new_etag)], None);
    assert_eq!(again.status, 304, "the new ETag revalidates");

    let deleted = request("DELETE", &format!("/products/{id}"), &[], None);
    assert_eq!(deleted.status, 204);
    let token = deleted.header("x-read-after").unwrap().to_string();
    let gone = request("GET", &path, &[("X-Read-After", &token), ("If-None-Match", &new_etag)], None);
    assert_eq!(gone.status, 200, "the card left the page: no 304");
    assert_ne!(gone.header("etag"), Some(new_etag.as_str()));
}

#[test]
fn product_crud() {
    let _catalog = catalog_lock();
    let created = send("POST", "/products", &product_body("Crud Coat"));
    assert_eq!(created.status, 201);
    let id = created.json()["id"].as_i64().unwrap();
    assert_eq!(created.header("location"), Some(format!("/products/{id}").as_str()));
    assert_eq!(created.json()["default_price"], "10.50");
    assert_eq!(
        created.json()["features"],
        json!([{"feature": "Sole", "value": "Rubber"}, {"feature": "Lace", "value": null}])
    );
    // The body is the product exactly as GET shows it.
    assert_eq!(get_after(&format!("/products/{id}"), &created).body, created.body);
    assert_eq!(
        get_after(&format!("/products/{id}/styles"), &created).text(),
        format!("{{\"product_id\":\"{id}\",\"results\":[]}}")
    );

    let patched = send("PATCH", &format!("/products/{id}"), &json!({"slogan": "Patched", "default_price": 3}));
    assert_eq!(patched.status, 200, "{}", patched.text());
    assert_eq!(patched.json()["slogan"], "Patched");
    assert_eq!(patched.json()["name"], "Crud Coat");
    assert_eq!(patched.json()["default_price"], "3.00");
    assert_eq!(patched.json()["features"].as_array().unwrap().len(), 2, "PATCH without features keeps them");
    // A field a PATCH sets follows the rules it follows on create.
    assert_422(&send("PATCH", &format!("/products/{id}"), &json!({"category": ""})), "category");
    assert_422(&send("PATCH", &format!("/products/{id}"), &json!({"name": "  "})), "name");
    assert_422(&send("PATCH", &format!("/products/{id}"), &json!({"default_price": null})), "default_price");

    let put = send(
        "PUT",
        &format!("/products/{id}"),
        &json!({"name": "Put Coat", "slogan": "x", "description": "y", "category": "z", "default_price": "0"}),
    );
    assert_eq!(put.status, 200, "{}", put.text());
    assert_eq!(put.json()["features"], json!([]), "PUT without features clears them");
    assert_eq!(get_after(&format!("/products/{id}"), &put).json()["name"], "Put Coat");

    let deleted = request("DELETE", &format!("/products/{id}"), &[], None);
    assert_eq!(deleted.status, 204);
    assert_eq!(get_after(&format!("/products/{id}"), &deleted).status, 404);
    assert_eq!(request("DELETE", &format!("/products/{id}"), &[], None).status, 404);
    assert_eq!(send("PUT", &format!("/products/{id}"), &product_body("x")).status, 404);
    assert_eq!(send("PATCH", &format!("/products/{id}"), &json!({})).status, 404);
}

#[test]
fn product_validation() {
    let _catalog = catalog_lock();
    let mut missing = product_body("x");
    missing.as_object_mut().unwrap().remove("name");
    assert_422(&send("POST", "/products", &missing), "name");
    for bad in [json!("-1"), json!(-1), json!("1.234"), json!("abc"), json!(true), json!("1."), json!("1e3")] {
        let mut body = product_body("x");
        body["default_price"] = bad.clone();
        assert_422(&send("POST", "/products", &body), "default_price");
    }
    let mut long = product_body(&"n".repeat(256));
    assert_422(&send("POST", "/products", &long), "name");
    long = product_body("ok");
    long["description"] = json!("d".repeat(2049));
    assert_422(&send("POST", "/products", &long), "description");
    let mut wrong = product_body("x");
    wrong["features"] = json!([{"feature": 5}]);
    assert_422(&send("POST", "/products", &wrong), "features[0].feature");
    assert_eq!(send("POST", "/products", &json!([1])).status, 422);
    // 255 characters (not bytes) is allowed.
    assert_eq!(send("POST", "/products", &product_body(&"é".repeat(255))).status, 201);
}

#[test]
fn transport_errors() {
    let _catalog = catalog_lock();
    let malformed = request("POST", "/products", &[JSON], Some(b"{\"name\": "));
    assert_eq!(malformed.status, 400);
    assert_eq!(malformed.json()["error"], "bad_request");
    let no_type = request("POST", "/products", &[], Some(product_body("x").to_string().as_bytes()));
    assert_eq!(no_type.status, 415);
    let text = request("POST", "/products", &[("Content-Type", "text/plain")], Some(b"{}"));
    assert_eq!(text.status, 415);
    let mut big = product_body("x");
    big["description"] = json!("d".repeat(70 * 1024));
    assert_eq!(send("POST", "/products", &big).status, 413);
    assert_eq!(send("POST", "/products/abc/styles", &json!({})).status, 400);
    assert_eq!(send("POST", "/styles/987654321/skus", &json!({"size": "M", "quantity": 1})).status, 404);
    assert_eq!(send("POST", "/skus/987654321/movements", &json!({"delta": 1})).status, 404);
    assert_eq!(request("DELETE", "/styles/987654321", &[], None).status, 404);
    assert_eq!(request("DELETE", "/skus/987654321", &[], None).status, 404);
}

#[test]
fn styles_skus_and_defaults() {
    let _catalog = catalog_lock();
    let id = create_product("Style Host");
    let first = send(
        "POST",
        &format!("/products/{id}/styles"),
        &json!({"name": "Red", "original_price": 20, "sale_price": "15.5", "default?": true,
                "photos": [{"thumbnail_url": "t1", "url": "u1"}, {"thumbnail_url": null, "url": "u2"}],
                "skus": [{"size": "S", "quantity": 3}, {"size": "M", "quantity": 0}]}),
    );
    assert_eq!(first.status, 201, "{}", first.text());
    let style = first.json();
    let style_id = style["style_id"].as_i64().unwrap();
    assert_eq!(style["sale_price"], "15.50");
    assert_eq!(style["default?"], true);
    assert_eq!(style["photos"], json!([{"thumbnail_url": "t1", "url": "u1"}, {"thumbnail_url": null, "url": "u2"}]));
    assert_eq!(style["skus"].as_object().unwrap().len(), 2);
    for (sku, fields) in style["skus"].as_object().unwrap() {
        let quantity = fields["quantity"].as_i64().unwrap();
        let expected = if quantity == 0 { vec![] } else { vec![(quantity, "initial stock".to_string())] };
        assert_eq!(ledger(sku.parse().unwrap()), expected, "sku {sku} opens its ledger");
    }

    // A second default style takes over: only one default per product.
    let second = send(
        "POST",
        &format!("/products/{id}/styles"),
        &json!({"name": "Blue", "original_price": "20", "default?": true}),
    );
    assert_eq!(second.status, 201);
    assert_eq!(second.json()["photos"], json!([{"thumbnail_url": null, "url": null}]));
    let styles = get_after(&format!("/products/{id}/styles"), &second).json();
    let defaults: Vec<bool> =
        styles["results"].as_array().unwrap().iter().map(|s| s["default?"].as_bool().unwrap()).collect();
    assert_eq!(defaults, vec![false, true]);

    // PUT replaces fields and photos, leaves skus alone.
    let put = send(
        "PUT",
        &format!("/styles/{style_id}"),
        &json!({"name": "Crimson", "original_price": "21", "default?": true,
        "photos": [{"thumbnail_url": "t9", "url": "u9"}]}),
    );
    assert_eq!(put.status, 200, "{}", put.text());
    assert_eq!(put.json()["name"], "Crimson");
    assert_eq!(put.json()["sale_price"], Value::Null);
    assert_eq!(put.json()["photos"], json!([{"thumbnail_url": "t9", "url": "u9"}]));
    assert_eq!(put.json()["skus"].as_object().unwrap().len(), 2);
    assert_422(
        &send("PUT", &format!("/styles/{style_id}"), &json!({"name": "x", "original_price": "-2"})),
        "original_price",
    );

    let sku = send("POST", &format!("/styles/{style_id}/skus"), &json!({"size": "XL", "quantity": 5}));
    assert_eq!(sku.status, 201);
    let sku_id = sku.json()["sku_id"].as_i64().unwrap();
    assert_eq!(sku.json(), json!({"sku_id": sku_id, "size": "XL", "quantity": 5}));
    // The initial quantity is the first movement of the sku's ledger.
    assert_eq!(ledger(sku_id), vec![(5, "initial stock".to_string())]);
    assert_422(&send("POST", &format!("/styles/{style_id}/skus"), &json!({"size": "XL", "quantity": -1})), "quantity");
    let styles = get_after(&format!("/products/{id}/styles"), &sku).json();
    assert_eq!(styles["results"][0]["skus"][sku_id.to_string()]["quantity"], 5);

    let sku_gone = request("DELETE", &format!("/skus/{sku_id}"), &[], None);
    assert_eq!(sku_gone.status, 204);
    let styles = get_after(&format!("/products/{id}/styles"), &sku_gone).json();
    assert!(styles["results"][0]["skus"].get(sku_id.to_string()).is_none(), "the sku is gone: {styles}");
    assert_eq!(styles["results"][0]["skus"].as_object().unwrap().len(), 2, "the other skus stay");
    assert!(ledger(sku_id).is_empty(), "its ledger went with it");
    assert_eq!(request("DELETE", &format!("/skus/{sku_id}"), &[], None).status, 404);
    let gone = request("DELETE", &format!("/styles/{style_id}"), &[], None);
    assert_eq!(gone.status, 204);
    let styles = get_after(&format!("/products/{id}/styles"), &gone).json();
    assert_eq!(styles["results"].as_array().unwrap().len(), 1);
    assert_eq!(styles["results"][0]["name"], "Blue", "the other style stays");
    assert_eq!(
        request("PUT", &format!("/styles/{style_id}"), &[JSON], Some(b"{\"name\":\"x\",\"original_price\":1}")).status,
        404
    );
}

#[test]
fn related_lists() {
    let _catalog = catalog_lock();
    let a = create_product("Rel A");
    let b = create_product("Rel B");
    let c = create_product("Rel C");
    let put = send("PUT", &format!("/products/{a}/related"), &json!([c, b, c]));
    assert_eq!(put.status, 200, "{}", put.text());
    assert_eq!(put.text(), format!("[{c},{b}]"));
    assert_422(&send("PUT", &format!("/products/{a}/related"), &json!([a])), "related[0]");
    assert_422(&send("PUT", &format!("/products/{a}/related"), &json!([b, 987654321])), "related[1]");
    assert_422(&send("PUT", &format!("/products/{a}/related"), &json!(["x"])), "related[0]");
    // Deleting a product removes it from every related list.
    let deleted = request("DELETE", &format!("/products/{c}"), &[], None);
    assert_eq!(get_after(&format!("/products/{a}/related"), &deleted).text(), format!("[{b}]"));
    for id in [a, b] {
        request("DELETE", &format!("/products/{id}"), &[], None);
    }
}
