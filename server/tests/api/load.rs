//! The bulk loader at a size CI can afford: deterministic, refuses to
//! overwrite by accident, and leaves a read model that the consistency check
//! finds identical on the primary and both replicas.

use std::time::Duration;

use atelier_schema::Money;
use atelier_tools::generate::Catalog;
use atelier_tools::load::{LoadOptions, Source};
use atelier_tools::{check, cluster, connect, load, provision};

use crate::helpers::{app, local_cluster, with_db};

const LOAD_DB: &str = "atelier_load_test";

const FRESH: LoadOptions = LoadOptions { replace: false, connections: 2 };
const REPLACE: LoadOptions = LoadOptions { replace: true, connections: 2 };

/// md5 over every write-model row (ids included), on the primary.
async fn write_model_fingerprint(url: &str) -> String {
    let client = connect(url).await.unwrap();
    let sql = "select md5(string_agg(r, '|' order by r)) from (
                 select p::text r from product p union all select f::text from feature f union all
                 select s::text from style s union all select ph::text from photo ph union all
                 select k::text from sku k union all select m::text from stock_movement m union all
                 select x::text from related_product x) t";
    client.query_one(sql, &[]).await.unwrap().get(0)
}

/// md5 over every stored document, in id order, on one node.
async fn fingerprint(url: &str) -> String {
    let client = connect(url).await.unwrap();
    let sql = "select md5(string_agg(d, '' order by k, id)) from (
                 select 1 k, product_id id, doc d from product_card union all
                 select 2, product_id, doc from product_detail union all
                 select 3, product_id, doc from product_styles union all
                 select 4, product_id, doc from product_related) t";
    client.query_one(sql, &[]).await.unwrap().get(0)
}

#[test]
fn bulk_load_is_deterministic_guarded_and_consistent() {
    app(); // the cluster is up
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    runtime.block_on(async {
        let (primary, replicas) = cluster::provision_local(local_cluster(), LOAD_DB, true).await.unwrap();
        let small = Catalog { seed: 7, products: 400 };
        let report = load::load(&primary, &replicas, Source::Generated(small), FRESH).await.unwrap();
        assert_eq!(report.tables[0], ("product".to_string(), 400));
        assert_eq!(report.tables.len(), 7, "every write-model table is counted");
        assert!(report.disk_bytes.len() == 3 && report.disk_bytes.iter().all(|(_, b)| *b > 0));
        let first = fingerprint(&primary).await;

        // Consistency: rebuilt documents equal the stored ones everywhere.
        provision::wait_for_replicas(&primary, &replicas, Duration::from_secs(60)).await.unwrap();
        assert_eq!(check::check(&primary, &replicas).await.unwrap(), vec![]);
        for replica in &replicas {
            assert_eq!(fingerprint(replica).await, first, "replica matches primary");
        }

        // A second load without --replace is refused and changes nothing.
        let refused = load::load(&primary, &replicas, Source::Generated(Catalog { seed: 8, products: 50 }), FRESH).await;
        assert!(refused.is_err());
        assert_eq!(fingerprint(&primary).await, first);

        // Another seed gives another catalog; the same seed gives it back.
        load::load(&primary, &replicas, Source::Generated(Catalog { seed: 8, products: 400 }), REPLACE).await.unwrap();
        assert_ne!(fingerprint(&primary).await, first);
        load::load(&primary, &replicas, Source::Generated(small), REPLACE).await.unwrap();
        assert_eq!(fingerprint(&primary).await, first);
        let write_model = write_model_fingerprint(&primary).await;

        // CSV round trip: the same seed written to files and loaded from
        // them gives the same database as the direct load.
        let dir = std::env::temp_dir().join(format!("atelier-csv-{}", std::process::id()));
        atelier_tools::csv::write(small, &dir).unwrap();
        load::load(&primary, &replicas, Source::Csv(dir.clone()), REPLACE).await.unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(write_model_fingerprint(&primary).await, write_model, "CSV load equals direct load");
        assert_eq!(fingerprint(&primary).await, first);
        assert_eq!(check::check(&primary, &replicas).await.unwrap(), vec![]);

        // Secondary indexes are back after the load, and the load is complete.
        let client = connect(&primary).await.unwrap();
        let indexes: i64 = client
            .query_one("select count(*) from pg_indexes where indexname in ('photo_style_id_idx', 'sku_style_id_idx', 'style_one_default_per_product')", &[])
            .await
            .unwrap()
            .get(0);
        assert_eq!(indexes, 3);
        let state: String = client.query_one("select state from bulk_load", &[]).await.unwrap().get(0);
        assert_eq!(state, "complete");
        for replica in &replicas {
            assert_eq!(fingerprint(replica).await, first, "replica matches after replace");
        }

        // Stock: every sku's quantity is the sum of its ledger.
        let client = connect(&primary).await.unwrap();
        let bad: i64 = client
            .query_one(
                "select count(*) from sku k where k.quantity <> coalesce((select sum(delta) from stock_movement m where m.sku_id = k.id), 0)",
                &[],
            )
            .await
            .unwrap()
            .get(0);
        assert_eq!(bad, 0);
    });
}

#[test]
fn the_consistency_check_finds_drift() {
    let _catalog = crate::helpers::catalog_lock();
    let app = app();
    // Tamper with one replica's copy of a document, then put it back.
    let replica = &app.replicas[1];
    with_db(replica, async |c| {
        c.batch_execute(
            "update product_related set doc = '[999]' where product_id = 6;
             update product_page_block set live = live + 1 where block_no = 0",
        )
        .await
        .unwrap();
    });
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let drift = runtime.block_on(check::check(&app.primary, &app.replicas)).unwrap();
    with_db(replica, async |c| {
        c.batch_execute(
            "update product_related set doc = '[]' where product_id = 6;
             update product_page_block set live = live - 1 where block_no = 0",
        )
        .await
        .unwrap();
    });
    assert!(
        drift
            .iter()
            .any(|d| d.node == "replica2" && d.kind == "related" && d.product_id == 6 && d.problem == "different"),
        "{drift:?}"
    );
    assert!(drift
        .iter()
        .any(|d| d.node == "replica2" && d.kind == "paging" && d.product_id == 0 && d.problem == "block count"));
    assert!(drift
        .iter()
        .any(|d| d.node == "replica2" && d.kind == "paging" && d.product_id == 0 && d.problem == "superblock count"));
}

#[test]
fn money_encodes_as_binary_numeric() {
    let app = app();
    with_db(&app.primary, async |c| {
        for (cents, text) in [
            (0, "0.00"),
            (5, "0.05"),
            (99, "0.99"),
            (100, "1.00"),
            (14_000, "140.00"),
            (1_234_567, "12345.67"),
            (100_000_000, "1000000.00"),
            (-250, "-2.50"),
        ] {
            let got: String = c.query_one("select $1::numeric::text", &[&Money(cents)]).await.unwrap().get(0);
            assert_eq!(got, text, "{cents} cents");
        }
    });
}
