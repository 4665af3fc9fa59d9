//! Stock movements through the batcher (server/src/write/batch.rs), forced
//! into large batches: one lane, and each batch waits for more movements
//! before it leaves. Every other test runs the server's defaults, where the
//! batcher is on too and batches form only under load.

use std::net::SocketAddr;
use std::sync::OnceLock;

use serde_json::{json, Value};

use crate::helpers::{
    app, catalog_lock, create_product, ledger, metric, query, request_to, send, spawn_server, test_config,
};

/// A server whose movements wait up to 300 ms to fill batches of up to 500
/// on one lane: movements sent together are batched together.
fn batching_server() -> SocketAddr {
    static SERVER: OnceLock<SocketAddr> = OnceLock::new();
    *SERVER.get_or_init(|| {
        app(); // the test database, migrated, with the test token
        let mut config = test_config();
        config.write.movement_batch_max = 500;
        config.write.movement_batch_lanes = 1;
        config.write.movement_batch_wait = std::time::Duration::from_micros(300_000);
        spawn_server(config)
    })
}

fn post_to(addr: SocketAddr, path: &str, body: &Value, headers: &[(&str, &str)]) -> (u16, Value) {
    let mut all = vec![("Content-Type", "application/json")];
    all.extend_from_slice(headers);
    let response = request_to(addr, "POST", path, &all, Some(body.to_string().as_bytes()));
    let body = if response.text().is_empty() { Value::Null } else { response.json() };
    (response.status, body)
}

/// A product with one style of skus with these quantities; their ids.
fn skus_with(quantities: &[i64]) -> Vec<i64> {
    let id = create_product("Batched");
    let skus: Vec<Value> =
        quantities.iter().enumerate().map(|(i, q)| json!({"size": format!("S{i}"), "quantity": q})).collect();
    let style =
        send("POST", &format!("/products/{id}/styles"), &json!({"name": "B", "original_price": 1, "skus": skus}));
    assert_eq!(style.status, 201, "{}", style.text());
    let mut ids: Vec<i64> = style.json()["skus"].as_object().unwrap().keys().map(|k| k.parse().unwrap()).collect();
    ids.sort();
    ids
}

/// (quantity, sum of the ledger) of a sku on the primary.
fn quantity_and_ledger(sku: i64) -> (i64, i64) {
    let row = &query(
        &app().primary,
        &format!("select quantity, (select coalesce(sum(delta), 0) from stock_movement where sku_id = {sku})::bigint from sku where id = {sku}"),
    )[0];
    (row.get(0), row.get(1))
}

/// (batches, movements batched) so far.
fn batch_counts(addr: SocketAddr) -> (f64, f64) {
    (metric(addr, "atelier_movement_batches_total"), metric(addr, "atelier_movements_batched_total"))
}

#[test]
fn racing_sales_in_large_batches_sell_exactly_the_stock() {
    let _catalog = catalog_lock();
    let addr = batching_server();
    let skus = skus_with(&[10, 15]);
    let before = batch_counts(addr);
    let handles: Vec<_> = (0..60)
        .map(|i| {
            let sku = skus[i % 2];
            std::thread::spawn(move || {
                post_to(addr, &format!("/skus/{sku}/movements"), &json!({"delta": -1, "reason": "sale"}), &[])
            })
        })
        .collect();
    let answers: Vec<(u16, Value)> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    let after = batch_counts(addr);
    assert_eq!(after.1 - before.1, 60.0, "every movement went through the batcher");
    assert!(after.0 - before.0 < 30.0, "movements sent together were batched: {before:?} -> {after:?}");
    for (n, &sku) in skus.iter().enumerate() {
        let stock = [10, 15][n];
        let mine: Vec<&(u16, Value)> = answers.iter().enumerate().filter(|(i, _)| i % 2 == n).map(|(_, a)| a).collect();
        let sold: Vec<i64> =
            mine.iter().filter(|(s, _)| *s == 201).map(|(_, b)| b["quantity"].as_i64().unwrap()).collect();
        assert_eq!(sold.len(), stock, "sku {sku}: exactly its stock sold: {mine:?}");
        assert_eq!(mine.iter().filter(|(s, _)| *s == 409).count(), 30 - stock, "the rest refused: {mine:?}");
        let mut left = sold.clone();
        left.sort();
        assert_eq!(left, (0..stock as i64).collect::<Vec<_>>(), "each sale answered its own new quantity");
        assert_eq!(quantity_and_ledger(sku), (0, 0), "sku {sku}: quantity and ledger agree");
    }
}

#[test]
fn a_batch_mixing_refused_unknown_and_valid_movements() {
    let _catalog = catalog_lock();
    let addr = batching_server();
    let skus = skus_with(&[5, 5]);
    let (a, b) = (skus[0], skus[1]);
    let items = [
        (a, 3, 201u16),        // 5 -> 8
        (b, -100, 409),        // refused: b has 5
        (987_654_321, 1, 404), // no such sku
        (b, -5, 201),          // 5 -> 0
        (a, -9, 409),          // refused: a has 8
        (a, -8, 201),          // 8 -> 0
    ];
    let before = batch_counts(addr);
    let handles: Vec<_> = items
        .iter()
        .enumerate()
        .map(|(i, &(sku, delta, _))| {
            std::thread::spawn(move || {
                // In order within the batch's wait, so the batch holds them as listed.
                std::thread::sleep(std::time::Duration::from_millis(20 * i as u64));
                post_to(addr, &format!("/skus/{sku}/movements"), &json!({"delta": delta}), &[])
            })
        })
        .collect();
    let answers: Vec<(u16, Value)> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    let after = batch_counts(addr);
    assert_eq!(after.0 - before.0, 1.0, "the six movements were one batch");
    for ((sku, delta, want), (status, body)) in items.iter().zip(&answers) {
        assert_eq!(status, want, "sku {sku} delta {delta}: {body}");
        match want {
            201 => assert_eq!(body["sku_id"], json!(sku), "{body}"),
            404 => assert_eq!(body["error"], "not_found", "{body}"),
            _ => assert_eq!(body["error"], "conflict", "{body}"),
        }
    }
    assert_eq!(answers[0].1["quantity"], 8);
    assert_eq!(answers[3].1["quantity"], 0);
    assert_eq!(answers[5].1["quantity"], 0);
    // Only the valid ones are in the ledger (after each sku's initial stock).
    assert_eq!(ledger(a).len(), 3);
    assert_eq!(ledger(b).len(), 2);
    assert_eq!(quantity_and_ledger(a), (0, 0));
    assert_eq!(quantity_and_ledger(b), (0, 0));
}

#[test]
fn an_idempotency_key_applies_a_movement_once_within_and_across_batches() {
    let _catalog = catalog_lock();
    let addr = batching_server();
    let sku = skus_with(&[4])[0];
    let key = format!("batch-key-{sku}");
    // The same key eight times at once, among unkeyed movements that batch.
    let handles: Vec<_> = (0..16)
        .map(|i| {
            let key = key.clone();
            std::thread::spawn(move || {
                let headers: Vec<(&str, &str)> = if i % 2 == 0 { vec![("Idempotency-Key", &key)] } else { vec![] };
                let answer = post_to(addr, &format!("/skus/{sku}/movements"), &json!({"delta": 1}), &headers);
                (i % 2 == 0, answer)
            })
        })
        .collect();
    let answers: Vec<(bool, (u16, Value))> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    let keyed: Vec<&(u16, Value)> = answers.iter().filter(|(k, _)| *k).map(|(_, a)| a).collect();
    assert!(keyed.iter().all(|a| a.0 == 201 && a.1 == keyed[0].1), "one answer for one key: {keyed:?}");
    // Again, later, in a batch of its own: the same first answer.
    let again = post_to(addr, &format!("/skus/{sku}/movements"), &json!({"delta": 1}), &[("Idempotency-Key", &key)]);
    assert_eq!(again, (201, keyed[0].1.clone()));
    // The initial stock, the keyed movement once, the eight unkeyed ones.
    assert_eq!(ledger(sku).len(), 1 + 1 + 8);
    assert_eq!(quantity_and_ledger(sku), (4 + 1 + 8, 4 + 1 + 8));
}

#[test]
fn batching_off_sends_each_movement_alone() {
    app(); // the test database, migrated, with the test token
    let mut config = test_config();
    config.write.movement_batch_max = 1;
    let addr = spawn_server(config);
    // Held throughout: a movement rebuilds a document, which tests that
    // count document versions must not see.
    let _catalog = catalog_lock();
    let sku = skus_with(&[3])[0];
    let (status, body) = post_to(addr, &format!("/skus/{sku}/movements"), &json!({"delta": -2}), &[]);
    assert_eq!((status, body), (201, json!({"sku_id": sku, "quantity": 1})));
    assert_eq!(batch_counts(addr), (0.0, 0.0), "no batch was made");
}
