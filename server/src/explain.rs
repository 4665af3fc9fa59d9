//! `EXPLAIN (ANALYZE, BUFFERS)` of every query the API runs, with ids from
//! the last 10% of products, on the primary and on a replica. Reads are the
//! handlers' own statement text; writes run inside a transaction that is
//! rolled back, so nothing changes. `sql/explain.sql` is the same for psql.

use tokio_postgres::Client;

use crate::read::{APPLIED_SQL, DETAIL_SQL, PAGE_SQL, RELATED_SQL, STYLES_SQL};
use crate::tool::{connect, ToolResult};

/// One explained statement and its execution time.
pub struct Plan {
    pub node: String,
    pub name: String,
    pub execution_ms: f64,
    pub text: String,
}

/// Ids to explain with: a product and a sku in the last 10% of their tables,
/// and the deepest page of 5.
struct Sample {
    product: i64,
    sku: i64,
    deepest_offset: i64,
}

async fn sample(primary: &Client) -> ToolResult<Sample> {
    let row = primary
        .query_one(
            "select (select id from product order by id desc offset (select count(*) / 20 from product) limit 1),
                    (select id from sku order by id desc offset (select count(*) / 20 from sku) limit 1),
                    greatest(((select count(*) from product) - 1) / 5 * 5, 0)",
            &[],
        )
        .await?;
    Ok(Sample {
        product: row.get::<_, Option<i64>>(0).unwrap_or(1),
        sku: row.get::<_, Option<i64>>(1).unwrap_or(1),
        deepest_offset: row.get(2),
    })
}

/// The read statements with their parameters written in (ids are integers
/// we chose; this is a tool, not a request handler).
fn read_statements(s: &Sample) -> Vec<(String, String)> {
    let bind = |sql: &str, args: &[String]| {
        args.iter().enumerate().rev().fold(sql.to_string(), |q, (i, a)| q.replace(&format!("${}", i + 1), a))
    };
    let p = s.product.to_string();
    vec![
        ("GET /products (page 1)".into(), bind(PAGE_SQL, &["0".into(), "5".into()])),
        (
            format!("GET /products (deepest page, offset {})", s.deepest_offset),
            bind(PAGE_SQL, &[s.deepest_offset.to_string(), "5".into()]),
        ),
        (
            "GET /products?count=1000 (deepest 1000)".into(),
            bind(PAGE_SQL, &[(s.deepest_offset - 995).max(0).to_string(), "1000".into()]),
        ),
        (format!("GET /products/{p}"), bind(DETAIL_SQL, std::slice::from_ref(&p))),
        (format!("GET /products/{p}/styles"), bind(STYLES_SQL, std::slice::from_ref(&p))),
        (format!("GET /products/{p}/related"), bind(RELATED_SQL, std::slice::from_ref(&p))),
        ("read-your-writes probe".into(), bind(APPLIED_SQL, &["'0/0'::pg_lsn".into()])),
    ]
}

/// Representative writes, run and rolled back.
fn write_statements(s: &Sample) -> Vec<(String, String)> {
    let (p, k) = (s.product, s.sku);
    vec![
        (format!("POST /skus/{k}/movements (update)"), format!("update sku set quantity = quantity + 1 where id = {k} and quantity + 1 >= 0 returning quantity")),
        (format!("POST /skus/{k}/movements (ledger)"), format!("insert into stock_movement (sku_id, delta, reason) values ({k}, 1, 'explain')")),
        ("POST /products".into(), "insert into product (name, slogan, description, category, default_price) values ('Explain', 's', 'd', 'c', 1) returning id".into()),
        (format!("PATCH /products/{p}"), format!("update product set name = 'Explained', updated_at = now() where id = {p}")),
        (format!("PUT /products/{p}/related"), format!("delete from related_product where product_id = {p}")),
        (format!("DELETE /products/{p}"), format!("delete from product where id = {p}")),
    ]
}

async fn explain_one(client: &Client, node: &str, name: String, sql: &str, warm: bool) -> ToolResult<Plan> {
    if warm {
        // Once unexplained first: PL/pgSQL caches its plans per connection,
        // as on the server's pooled connections.
        client.query(sql, &[]).await?;
    }
    let rows = client.query(&format!("explain (analyze, buffers) {sql}"), &[]).await?;
    let text: Vec<String> = rows.iter().map(|r| r.get(0)).collect();
    let execution_ms = text
        .iter()
        .find_map(|l| l.trim().strip_prefix("Execution Time: ")?.strip_suffix(" ms")?.parse().ok())
        .unwrap_or(f64::NAN);
    Ok(Plan { node: node.to_string(), name, execution_ms, text: text.join("\n") })
}

/// Explains every API query on the primary and on `replica_url`.
pub async fn explain(primary_url: &str, replica_url: &str) -> ToolResult<Vec<Plan>> {
    let primary = connect(primary_url).await?;
    let replica = connect(replica_url).await?;
    let s = sample(&primary).await?;
    let mut plans = Vec::new();
    for (name, sql) in read_statements(&s) {
        plans.push(explain_one(&replica, "replica", name.clone(), &sql, true).await?);
        plans.push(explain_one(&primary, "primary", name, &sql, true).await?);
    }
    primary.batch_execute("begin").await?;
    for (name, sql) in write_statements(&s) {
        let plan = explain_one(&primary, "primary", name, &sql, false).await;
        if plan.is_err() {
            primary.batch_execute("rollback").await?;
        }
        plans.push(plan?);
    }
    primary.batch_execute("rollback").await?;
    Ok(plans)
}
