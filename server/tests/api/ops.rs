//! Operational endpoints, and stopping the server.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use crate::helpers::{app, assert_golden, get, request_to, spawn_stoppable_server, test_config};

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
    // The test servers reach the local cluster's primary over TCP.
    let port = atelier_schema::local::primary().port;
    assert_eq!(body["primary"]["node"], format!("127.0.0.1:{port}"), "{body}");
    assert_eq!(body["tokens"]["loaded"], true, "ready only once the tokens are loaded");
    assert!(body["tokens"]["live"].as_u64().unwrap() >= 1, "the development token at least");
    let replicas = body["replicas"].as_array().unwrap();
    assert_eq!(replicas.len(), 2);
    assert!(replicas.iter().all(|r| r["up"] == true && r["subscribed"] == true && r["lag_bytes"].is_number()));
}

#[test]
fn metrics_count_requests_by_route_and_status() {
    get("/products/1");
    get("/products/abc");
    let text = get("/metrics").text().to_string();
    assert!(text.contains("atelier_requests_total{route=\"/products/:id\",status=\"200\"}"), "{text}");
    assert!(text.contains("atelier_request_duration_seconds_bucket{route=\"/products/:id\",le=\"+Inf\"}"));
    let max =
        format!("atelier_pool_connections{{pool=\"replica1\",state=\"max\"}} {}", test_config().pools.read_pool_size);
    assert!(text.contains(&max), "{max}");
    assert!(text.contains("atelier_replica_up{replica=\"replica2\"} 1"));
    assert!(text.contains("atelier_replica_subscribed{replica=\"replica1\"} 1"), "{text}");
    assert!(text.contains("atelier_replica_notice_queue_usage{replica=\"replica1\"} 0"), "{text}");
}

/// The operations listener serves the operational endpoints and nothing else,
/// and keeps serving them while the public listener is at its connection
/// limit (its connections are its own, and bounded by their own limit).
#[test]
fn the_ops_listener_serves_only_the_operational_endpoints_and_is_not_crowded_out() {
    app();
    let mut config = test_config();
    config.http.ops_listen = Some("127.0.0.1:0".parse().unwrap());
    config.http.connections_max = 1;
    config.http.ops_connections_max = 2;
    // Small pools: the test cluster's connections are shared by every test.
    (config.pools.write_pool_size, config.pools.read_pool_size) = (1, 1);
    let server = spawn_stoppable_server(config);
    let (addr, ops) = (server.addr, server.ops.expect("the config sets ops_listen"));
    // The public listener's one connection, held open and idle.
    let held = TcpStream::connect(addr).unwrap();
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(Duration::from_millis(500))).unwrap();
    stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: test\r\n\r\n").unwrap();
    let mut byte = [0u8; 1];
    assert!(stream.read(&mut byte).is_err(), "a second public connection waits while the first is held");
    let metrics = request_to(ops, "GET", "/metrics", &[], None);
    assert_eq!(metrics.status, 200);
    assert_eq!(metrics.header("content-type"), Some("text/plain; version=0.0.4; charset=utf-8"));
    assert!(metrics.text().contains("# TYPE atelier_requests_total counter\n"), "{}", metrics.text());
    assert_eq!(request_to(ops, "GET", "/readyz", &[], None).status, 200);
    assert_eq!(request_to(ops, "GET", "/healthz", &[], None).status, 200);
    // Nothing else: not the catalog, not the contract, not a write.
    let product = request_to(ops, "GET", "/products/1", &[], None);
    assert_eq!(product.status, 404);
    assert!(product.text().contains("operations listener"), "{}", product.text());
    assert_eq!(request_to(ops, "GET", "/openapi.json", &[], None).status, 404);
    assert_eq!(request_to(ops, "POST", "/products", &[], Some(b"{}")).status, 404);
    assert_eq!(request_to(ops, "POST", "/metrics", &[], None).status, 405);
    // Its own limit (ATELIER_OPS_CONNECTIONS_MAX, 2 here): with both its
    // connections held, a third waits, and is answered once they close.
    let ops_held: Vec<TcpStream> = (0..2).map(|_| TcpStream::connect(ops).unwrap()).collect();
    let mut third = TcpStream::connect(ops).unwrap();
    third.set_read_timeout(Some(Duration::from_millis(500))).unwrap();
    third.write_all(b"GET /healthz HTTP/1.1\r\nHost: test\r\n\r\n").unwrap();
    assert!(third.read(&mut byte).is_err(), "a third operations connection waits while two are held");
    drop(ops_held);
    third.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    assert_eq!(third.read(&mut byte).ok(), Some(1), "answered once the held connections closed");
    drop(held);
    server.stop.send(()).unwrap();
    server.thread.join().unwrap();
}

#[test]
fn shutdown_lets_the_request_in_flight_finish() {
    app(); // the test database exists
    let mut config = test_config();
    // A read-your-writes GET whose position no replica will reach waits
    // this long before it reads the primary: a slow request on demand.
    config.read.after_wait = Duration::from_millis(1_500);
    config.http.shutdown_grace = Duration::from_millis(5_000);
    let server = spawn_stoppable_server(config);
    let mut stream = TcpStream::connect(server.addr).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    stream.write_all(b"GET /products/1 HTTP/1.1\r\nHost: test\r\nX-Read-After: FFFFFFF/FFFFFFFF\r\n\r\n").unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let signalled = Instant::now();
    server.stop.send(()).unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).unwrap();
    let text = String::from_utf8(raw).unwrap();
    assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
    let (_, body) = text.split_once("\r\n\r\n").unwrap();
    assert_golden("product_1.json", body.as_bytes());
    assert!(signalled.elapsed() >= Duration::from_millis(900), "the request ran its course after the signal");
    // The server has stopped: it returns, and accepts nobody new.
    server.thread.join().unwrap();
    assert!(TcpStream::connect(server.addr).is_err(), "still listening after shutdown");
}

/// A replica whose subscription holds no tables (PostgreSQL 15 makes one,
/// with only a WARNING, when the publication does not exist yet) stays
/// empty for ever: /readyz must not call a server that reads only it
/// ready, and says why.
#[test]
fn a_replica_subscribed_to_no_tables_is_not_ready() {
    app();
    let replica = atelier_schema::local::replicas()[1];
    let db = "atelier_no_tables";
    let admin = replica.url("postgres");
    crate::helpers::query(&admin, &format!("drop database if exists {db} with (force)"));
    crate::helpers::query(&admin, &format!("create database {db}"));
    let url = replica.url(db);
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime
        .block_on(atelier_tools::provision::migrate(&url, atelier_schema::Role::Replica))
        .expect("replica migrations");
    // connect = false: a subscription that never asked the publisher for
    // its tables, as one made before the publication existed ends up.
    crate::helpers::query(
        &url,
        "create subscription atelier_no_tables connection 'host=127.0.0.1 port=1 dbname=none' \
         publication atelier_read_model with (connect = false)",
    );
    let secrets = crate::helpers::local_cluster().secrets().unwrap();
    let mut config = test_config();
    config.databases.replica_urls = vec![secrets.fill(&replica.url_as(db, atelier_schema::roles::READER))];
    let addr = crate::helpers::spawn_unready_server(config);
    // Once its pools answer, the replica is up, and still not ready.
    let waiting = Instant::now();
    let body = loop {
        let response = crate::helpers::request_to(addr, "GET", "/readyz", &[], None);
        let body = response.json();
        if body["replicas"][0]["up"] == true && body["primary"]["up"] == true {
            assert_eq!(response.status, 503, "{body}");
            break body;
        }
        assert!(waiting.elapsed() < Duration::from_secs(30), "the replica never answered: {body}");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(body["ready"], false, "{body}");
    assert_eq!(body["replicas"][0]["subscribed"], false, "{body}");
    let metrics = crate::helpers::request_to(addr, "GET", "/metrics", &[], None);
    assert!(metrics.text().contains("atelier_replica_subscribed{replica=\"replica1\"} 0"), "{}", metrics.text());
    crate::helpers::query(&url, "alter subscription atelier_no_tables set (slot_name = none)");
    crate::helpers::query(&url, "drop subscription atelier_no_tables");
    crate::helpers::query(&admin, &format!("drop database {db} with (force)"));
}

/// Every metric deploy/monitoring/'s alert rules and Grafana dashboard name
/// is one the service's /metrics, the backup report or the reconcile
/// ledger (the textfiles node_exporter serves) exports: a metric renamed
/// here without its rule would leave an alert that never fires.
#[test]
fn the_monitoring_names_only_metrics_that_are_exported() {
    use atelier_tools::backup::BackupReport;
    use atelier_tools::reconcile::Ledger;
    use std::collections::{BTreeSet, HashSet};

    let service = get("/metrics").text().to_string();
    let backup =
        BackupReport { newest: vec![("full".into(), 1, 1, 1)], last_archived: Some(1.0), ..Default::default() };
    let ledger = Ledger { timeline: Some(1), ..Default::default() };
    let mut exported = HashSet::new();
    for text in [service, backup.prometheus(), ledger.render()] {
        for line in text.lines() {
            let Some(described) = line.strip_prefix("# TYPE ") else { continue };
            let (name, kind) = described.split_once(' ').expect("# TYPE name kind");
            exported.insert(name.to_string());
            if kind == "histogram" {
                exported.extend(["_bucket", "_sum", "_count"].map(|part| format!("{name}{part}")));
            }
        }
    }
    let monitoring = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/monitoring");
    let read = |file: &str| std::fs::read_to_string(monitoring.join(file)).expect("deploy/monitoring/ file");
    let names = |text: &str| -> BTreeSet<String> {
        let is_name = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_';
        let mut found = BTreeSet::new();
        let mut rest = text;
        while let Some(at) = rest.find("atelier_") {
            let before = rest[..at].chars().next_back();
            let name: String = rest[at..].chars().take_while(|c| is_name(*c)).collect();
            if !before.is_some_and(|c| is_name(c) || c.is_ascii_alphabetic()) {
                found.insert(name.clone());
            }
            rest = &rest[at + name.len()..];
        }
        found
    };
    let (alerts, dashboard) = (names(&read("alerts.yml")), names(&read("grafana-dashboard.json")));
    assert!(alerts.len() >= 10 && dashboard.len() >= 20, "too few names found: {alerts:?} {dashboard:?}");
    let unknown: Vec<&String> = alerts.iter().chain(&dashboard).filter(|name| !exported.contains(*name)).collect();
    assert!(unknown.is_empty(), "named in deploy/monitoring/ but not exported: {unknown:?}");
    // The alerts the operators were promised.
    for promised in [
        "atelier_replica_lag_bytes",
        "atelier_replica_notice_queue_usage",
        "atelier_admission_refused_total",
        "atelier_write_deadline_expiries_total",
        "atelier_backup_newest_age_seconds",
    ] {
        assert!(alerts.contains(promised), "no alert rule on {promised}");
    }
}
