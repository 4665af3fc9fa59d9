//! The least-privilege roles (sql/roles.sql, sql/read_access.sql,
//! sql/write_access.sql): what each may and may not do, and where each may
//! log in. The rest of the suite already runs the service as the writer
//! and reader roles only; these tests prove the boundaries hold.

use atelier_schema::local;
use atelier_schema::roles::{OWNER, READER, REPLICATOR, WRITER};
use atelier_tools::connect;

use crate::helpers::{app, catalog_lock, local_cluster, request, TEST_DB};

/// A connection as `role` to `node`, with the local cluster's password.
fn url(node: local::Node, role: &str) -> String {
    local_cluster().secrets().expect("secrets").fill(&node.url_as(TEST_DB, role))
}

fn primary(role: &str) -> String {
    url(local::primary(), role)
}

fn replica(role: &str) -> String {
    url(local::replicas()[0], role)
}

/// Runs each statement as its own call and returns the SQLSTATE of each
/// failure ("ok" when it succeeded).
fn outcomes(url: &str, statements: &[&str]) -> Vec<String> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let client = connect(url).await.unwrap_or_else(|e| panic!("{url}: {e}"));
        let mut out = Vec::new();
        for sql in statements {
            // Each in a rolled-back transaction, so a statement that was
            // wrongly allowed changes nothing.
            client.batch_execute("begin").await.unwrap();
            let result = client.batch_execute(sql).await;
            client.batch_execute("rollback").await.unwrap();
            out.push(match result {
                Ok(()) => "ok".to_string(),
                Err(e) => e.code().map(|c| c.code().to_string()).unwrap_or_else(|| e.to_string()),
            });
        }
        out
    })
}

/// Whether `url` can log in at all.
fn can_log_in(url: &str) -> Result<(), String> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async { connect(url).await.map(drop).map_err(|e| format!("{e:?}")) })
}

const DENIED: &str = "42501";

#[test]
fn no_role_of_ours_is_a_superuser_or_can_make_roles_or_databases() {
    app();
    let rows = crate::helpers::query(
        &app().primary,
        "select rolname, rolsuper, rolcreaterole, rolcreatedb, rolreplication
         from pg_roles where rolname like 'atelier\\_%' order by rolname",
    );
    let roles: Vec<(String, bool, bool, bool, bool)> =
        rows.iter().map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4))).collect();
    let names: Vec<&str> = roles.iter().map(|r| r.0.as_str()).collect();
    assert_eq!(names, [OWNER, READER, REPLICATOR, WRITER]);
    for (name, superuser, createrole, createdb, replication) in &roles {
        assert!(!superuser && !createrole && !createdb, "{name} has too much");
        assert_eq!(*replication, name == REPLICATOR, "{name}: replication only for the replicator");
    }
}

#[test]
fn the_writer_writes_through_the_functions_and_cannot_run_ddl_or_read_secrets() {
    // It records a movement and rewrites a product: documents change, so it
    // holds the catalog as every writing test does.
    let _catalog = catalog_lock();
    let sku: i64 = crate::helpers::query(&app().primary, "select min(id) from sku")[0].get(0);
    let allowed = outcomes(
        &primary(WRITER),
        &[
            &format!("select api_record_movement({sku}, 1, 'roles test')"),
            "update product set slogan = slogan where id = (select min(id) from product)",
            "select doc from api_product_detail limit 1",
        ],
    );
    assert_eq!(allowed, ["ok", "ok", "ok"], "the writer's own work");
    let denied = outcomes(
        &primary(WRITER),
        &[
            "drop table product",
            "create table intruder (id int)",
            "alter table product add column x int",
            "truncate product",
            "select rolpassword from pg_authid",
            "select * from product_detail",
            "update product_styles set doc = '{}'",
            "delete from product_card",
            "select build_docs('card', 1, 2)",
            "select refresh_card(array[1]::bigint[])",
            "create role intruder",
        ],
    );
    assert!(denied.iter().all(|c| c == DENIED), "the writer was allowed something: {denied:?}");
}

#[test]
fn the_reader_reads_the_api_views_only_and_changes_nothing() {
    app();
    for url in local::replicas().iter().map(|node| url(*node, READER)) {
        let allowed = outcomes(
            &url,
            &[
                "select doc from api_product_styles limit 1",
                "select products_page(0, 5)",
                "select read_model_applied_lsn()",
            ],
        );
        assert_eq!(allowed, ["ok", "ok", "ok"], "what GETs need");
        let denied = outcomes(
            &url,
            &[
                "select * from product_card",
                "insert into product_card (product_id, doc, version) values (-1, '{}', 1)",
                "update product_styles set doc = '{}'",
                "delete from product_related",
                "drop view api_product_detail",
                "create table intruder (id int)",
                "select rolpassword from pg_authid",
            ],
        );
        assert!(denied.iter().all(|c| c == DENIED), "the reader was allowed something: {denied:?}");
    }
}

#[test]
fn the_replicator_sees_the_published_tables_and_not_the_write_model() {
    app();
    let outcome = outcomes(
        &primary(REPLICATOR),
        &[
            "select count(*) from product_styles",
            "select count(*) from product",
            "select count(*) from sku",
            // What `atelier reconcile` needs from a replica host: the
            // documents as the write model builds them, and the heartbeat.
            "select md5(string_agg(doc, '')) from product_styles_source",
            "select md5(string_agg(doc, '')) from product_card_source",
            "select md5(string_agg(doc, '')) from product_detail_source",
            "select md5(string_agg(doc, '')) from product_related_source",
            "update replication_heartbeat set beat = beat + 1 where id = 1",
            "update replication_heartbeat set id = id where id = 1",
            "delete from product_styles",
        ],
    );
    assert_eq!(outcome, ["ok", DENIED, DENIED, "ok", "ok", "ok", "ok", "ok", DENIED, DENIED]);
}

#[test]
fn each_role_logs_in_only_where_it_has_business() {
    app();
    for (url, expected) in [
        (primary(WRITER), true),
        (primary(OWNER), true),
        (primary(REPLICATOR), true),
        (primary(READER), false),
        (replica(READER), true),
        (replica(OWNER), true),
        (replica(WRITER), false),
        (replica(REPLICATOR), false),
    ] {
        let result = can_log_in(&url);
        assert_eq!(result.is_ok(), expected, "{}: {result:?}", atelier_tools::provision::redact(&url));
    }
    let wrong = primary(WRITER).replace("password=", "password=wrong");
    assert!(can_log_in(&wrong).is_err(), "a wrong password is refused");
}

#[test]
fn the_service_runs_end_to_end_as_its_roles() {
    // The suite's server was configured with the writer and reader URLs
    // only; a write and the read after it prove both pools work.
    // It adds a product, which tests that count documents must not see.
    let _catalog = crate::helpers::catalog_lock();
    let created = request(
        "POST",
        "/products",
        &[("Content-Type", "application/json")],
        Some(r#"{"name":"Role test","slogan":"s","description":"d","category":"c","default_price":"1.00"}"#.as_bytes()),
    );
    assert_eq!(created.status, 201, "{}", created.text());
    let token = created.header("x-read-after").expect("a write answers with its position").to_string();
    let id = created.json()["id"].as_i64().expect("id");
    let read = request("GET", &format!("/products/{id}"), &[("X-Read-After", token.as_str())], None);
    assert_eq!(read.status, 200);
    assert!(read.text().contains("Role test"));
    let users: Vec<String> = crate::helpers::query(
        &app().primary,
        "select distinct usename::text from pg_stat_activity where application_name = 'atelier' and datname = current_database() order by 1",
    )
    .iter()
    .map(|r| r.get(0))
    .collect();
    assert!(users.iter().all(|u| u != "postgres"), "the service never logs in as a superuser: {users:?}");
    assert!(users.contains(&WRITER.to_string()), "{users:?}");
}
