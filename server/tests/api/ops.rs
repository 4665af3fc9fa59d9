//! Operational endpoints.

use crate::helpers::get;

#[test]
fn healthz_is_200() {
    assert_eq!(get("/healthz").status, 200);
}

#[test]
fn readyz_reports_primary_and_both_replicas() {
    let response = get("/readyz");
    assert_eq!(response.status, 200, "{}", response.text());
    let body = response.json();
    assert_eq!(body["ready"], true);
    assert_eq!(body["primary"]["up"], true);
    let replicas = body["replicas"].as_array().unwrap();
    assert_eq!(replicas.len(), 2);
    assert!(replicas.iter().all(|r| r["up"] == true && r["lag_bytes"].is_number()));
}

#[test]
fn metrics_count_requests_by_route_and_status() {
    get("/products/1");
    get("/products/abc");
    let text = get("/metrics").text().to_string();
    assert!(text.contains("atelier_requests_total{route=\"/products/:id\",status=\"200\"}"), "{text}");
    assert!(text.contains("atelier_request_duration_seconds_bucket{route=\"/products/:id\",le=\"+Inf\"}"));
    assert!(text.contains("atelier_pool_connections{pool=\"replica1\",state=\"max\"} 16"));
    assert!(text.contains("atelier_replica_up{replica=\"replica2\"} 1"));
}
