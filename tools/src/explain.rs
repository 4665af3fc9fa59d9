//! `EXPLAIN (ANALYZE, BUFFERS)` of every statement the API runs, with ids
//! from the last 10% of products, on the primary and on a replica. The
//! statements are the service's own texts (`atelier_schema::statements`);
//! writes (one function call each, so their plans show only the call, and
//! their time includes the triggers' rebuilds) run inside a transaction that
//! is rolled back, so nothing changes. `sql/explain.sql` is the same for psql.

use std::fmt;

use atelier_schema::statements::{self as sql};
use tokio_postgres::Client;

use crate::db::{connect, ToolResult};

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
    let p = s.product.to_string();
    vec![
        ("GET /products (page 1)".into(), bind(sql::PRODUCT_PAGE, &["0".into(), "5".into()])),
        (
            format!("GET /products by id range (the position index), 5 cards from {p}"),
            bind(sql::PRODUCT_CARDS_BETWEEN, &[p.clone(), format!("{p} + 4")]),
        ),
        (
            format!("GET /products (deepest page, offset {})", s.deepest_offset),
            bind(sql::PRODUCT_PAGE, &[s.deepest_offset.to_string(), "5".into()]),
        ),
        (
            "GET /products?count=1000 (deepest 1000)".into(),
            bind(sql::PRODUCT_PAGE, &[(s.deepest_offset - 995).max(0).to_string(), "1000".into()]),
        ),
        (format!("GET /products/{p}"), bind(sql::PRODUCT_DETAIL, std::slice::from_ref(&p))),
        (format!("GET /products/{p}/styles"), bind(sql::PRODUCT_STYLES, std::slice::from_ref(&p))),
        (format!("GET /products/{p}/related"), bind(sql::PRODUCT_RELATED, std::slice::from_ref(&p))),
        (
            format!("GET /products/:id/styles, a read batch of 32 from {p}"),
            bind(sql::PRODUCT_STYLES_MANY, &[format!("array(select generate_series({p}::bigint, {p} + 31))")]),
        ),
        ("read-your-writes probe".into(), bind(sql::REPLICA_HAS_APPLIED, &["'0/0'::pg_lsn".into()])),
    ]
}

/// Writes `sql` with its parameters written in (values we chose; this is a
/// tool, not a request handler). Later placeholders first, so $1 does not
/// eat the start of $10.
fn bind(sql: &str, args: &[String]) -> String {
    args.iter().enumerate().rev().fold(sql.to_string(), |q, (i, a)| q.replace(&format!("${}", i + 1), a))
}

/// Representative writes (the service's function calls), run and rolled back.
fn write_statements(s: &Sample) -> Vec<(String, String)> {
    let (p, k) = (s.product.to_string(), s.sku.to_string());
    let text = |t: &str| format!("'{t}'");
    let nothing = "null".to_string();
    let no_text = "'{}'::text[]".to_string();
    vec![
        (format!("POST /skus/{k}/movements"), bind(sql::RECORD_MOVEMENT, &[k.clone(), "1".into(), text("explain")])),
        (
            "POST /products".into(),
            bind(
                sql::CREATE_PRODUCT,
                &[text("Explain"), text("s"), text("d"), text("c"), "1".into(), no_text.clone(), no_text],
            ),
        ),
        (
            format!("PATCH /products/{p}"),
            bind(
                sql::UPDATE_PRODUCT,
                &[
                    p.clone(),
                    text("Explained"),
                    nothing.clone(),
                    nothing.clone(),
                    nothing.clone(),
                    nothing.clone(),
                    nothing.clone(),
                    nothing,
                ],
            ),
        ),
        (format!("PUT /products/{p}/related"), bind(sql::PUT_RELATED, &[p.clone(), "'{}'::bigint[]".into()])),
        (format!("DELETE /products/{p}"), bind(sql::DELETE_PRODUCT, std::slice::from_ref(&p))),
    ]
}

/// How a statement is run once before it is explained: PL/pgSQL caches its
/// plans per connection, as on the server's pooled connections, so a first
/// call would mostly measure planning.
#[derive(Clone, Copy)]
enum Warm {
    /// Run it once as it is (reads).
    Run,
    /// Run it once inside a savepoint that is rolled back (writes, whose
    /// second run must find the same state as the first).
    RunAndUndo,
}

async fn explain_one(client: &Client, node: &str, name: String, sql: &str, warm: Warm) -> ToolResult<Plan> {
    match warm {
        Warm::Run => {
            client.query(sql, &[]).await?;
        }
        Warm::RunAndUndo => {
            client.batch_execute("savepoint warm").await?;
            client.query(sql, &[]).await?;
            client.batch_execute("rollback to savepoint warm").await?;
        }
    }
    let rows = client.query(&format!("explain (analyze, buffers) {sql}"), &[]).await?;
    let text: Vec<String> = rows.iter().map(|r| r.get(0)).collect();
    let execution_ms = text
        .iter()
        .find_map(|l| l.trim().strip_prefix("Execution Time: ")?.strip_suffix(" ms")?.parse().ok())
        .unwrap_or(f64::NAN);
    Ok(Plan { node: node.to_string(), name, execution_ms, text: text.join("\n") })
}

impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "== {} on {}\n{}\n", self.name, self.node, self.text)
    }
}

/// The execution times as a Markdown table.
pub fn summary_table(plans: &[Plan]) -> String {
    let mut out = String::from("| query | node | execution ms |\n|---|---|---:|\n");
    for plan in plans {
        out.push_str(&format!("| {} | {} | {:.3} |\n", plan.name, plan.node, plan.execution_ms));
    }
    out
}

/// Explains every API query on the primary and on `replica_url`.
pub async fn explain(primary_url: &str, replica_url: &str) -> ToolResult<Vec<Plan>> {
    let primary = connect(primary_url).await?;
    let replica = connect(replica_url).await?;
    let s = sample(&primary).await?;
    let mut plans = Vec::new();
    for (name, sql) in read_statements(&s) {
        plans.push(explain_one(&replica, "replica", name.clone(), &sql, Warm::Run).await?);
        plans.push(explain_one(&primary, "primary", name, &sql, Warm::Run).await?);
    }
    primary.batch_execute("begin").await?;
    for (name, sql) in write_statements(&s) {
        let plan = explain_one(&primary, "primary", name, &sql, Warm::RunAndUndo).await;
        if plan.is_err() {
            primary.batch_execute("rollback").await?;
        }
        plans.push(plan?);
    }
    primary.batch_execute("rollback").await?;
    Ok(plans)
}
