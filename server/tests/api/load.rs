//! The bulk loader at a size CI can afford: deterministic, refuses to
//! overwrite by accident, and leaves a read model that the consistency check
//! finds identical on the primary and both replicas.

use std::time::Duration;

use atelier::generate::Catalog;
use atelier::load::Money;
use atelier::{check, load, provision};

use crate::helpers::{app, with_db};

const LOAD_DB: &str = "atelier_load_test";

/// md5 over every stored document, in id order, on one node.
async fn fingerprint(url: &str) -> String {
    let client = atelier::tool::connect(url).await.unwrap();
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
        let (primary, replicas) = provision::local(LOAD_DB, true).await.unwrap();
        let small = Catalog { seed: 7, products: 400 };
        let report = load::load(&primary, &replicas, small, false).await.unwrap();
        assert_eq!(report.tables[0], ("product", 400, report.tables[0].2));
        let first = fingerprint(&primary).await;

        // Consistency: rebuilt documents equal the stored ones everywhere.
        provision::wait_for_replicas(&primary, &replicas, Duration::from_secs(60)).await.unwrap();
        assert_eq!(check::check(&primary, &replicas).await.unwrap(), vec![]);
        for replica in &replicas {
            assert_eq!(fingerprint(replica).await, first, "replica matches primary");
        }

        // A second load without --replace is refused and changes nothing.
        let refused = load::load(&primary, &replicas, Catalog { seed: 8, products: 50 }, false).await;
        assert!(refused.is_err());
        assert_eq!(fingerprint(&primary).await, first);

        // Another seed gives another catalog; the same seed gives it back.
        load::load(&primary, &replicas, Catalog { seed: 8, products: 400 }, true).await.unwrap();
        assert_ne!(fingerprint(&primary).await, first);
        load::load(&primary, &replicas, small, true).await.unwrap();
        assert_eq!(fingerprint(&primary).await, first);
        for replica in &replicas {
            assert_eq!(fingerprint(replica).await, first, "replica matches after replace");
        }

        // Stock: every sku's quantity is the sum of its ledger.
        let client = atelier::tool::connect(&primary).await.unwrap();
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
        c.batch_execute("update product_related set doc = '[999]' where product_id = 6").await.unwrap();
    });
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let drift = runtime.block_on(check::check(&app.primary, &app.replicas)).unwrap();
    with_db(replica, async |c| {
        c.batch_execute("update product_related set doc = '[]' where product_id = 6").await.unwrap();
    });
    assert!(
        drift
            .iter()
            .any(|d| d.node == "replica2" && d.kind == "related" && d.product_id == 6 && d.problem == "different"),
        "{drift:?}"
    );
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
