//! The consistency check: rebuild every document from the write model (the
//! *_source views, the same shaping the triggers use) and compare it with
//! the stored documents on the primary and on every replica.
//!
//! It also recounts the paging blocks and superblocks from the cards.
//!
//! Comparing a million documents row by row over the wire would be slow, so
//! each side first hashes blocks of 1024 products (md5 of the md5s in id
//! order); only blocks whose hashes differ are compared product by product.

use std::collections::BTreeMap;
use std::fmt;

use atelier_schema::DocumentKind;
use tokio_postgres::Client;

use crate::db::{connect, ToolResult};

/// One difference between the rebuilt and a stored document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Drift {
    pub node: String,
    /// A document kind's name, or "paging".
    pub kind: &'static str,
    pub product_id: i64,
    /// "missing", "unexpected" or "different"; for kind "paging",
    /// "block count" or "superblock count" (product_id is then the block or
    /// superblock number).
    pub problem: &'static str,
}

impl fmt::Display for Drift {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:<9} {:<8} product {:>10}: {}", self.node, self.kind, self.product_id, self.problem)
    }
}

/// Paging counts that disagree with the cards they count, on one node.
const PAGING_DRIFT_SQL: &str = "
    select 'block count', coalesce(c.block_no, p.block_no)
    from (select product_id / 1024 as block_no, count(*) as live from product_card group by 1) c
    full join product_page_block p on p.block_no = c.block_no
    where coalesce(c.live, 0) <> coalesce(p.live, 0)
    union all
    select 'superblock count', coalesce(c.superblock_no, p.superblock_no)
    from (select block_no / 64 as superblock_no, sum(live) as live from product_page_block group by 1) c
    full join product_page_superblock p on p.superblock_no = c.superblock_no
    where coalesce(c.live, 0) <> coalesce(p.live, 0)";

/// Runs the check; an empty result means no drift anywhere. Replicas are
/// compared as they are: call `provision::wait_for_replicas` first.
///
/// Each node is read in one snapshot (a repeatable-read, read-only
/// transaction), so the primary's rebuilt and stored documents are read at
/// one moment: writes running meanwhile are not drift on the primary. A
/// replica is read at its own moment, which may trail the primary's; for
/// an exact answer on every node, check while nothing writes.
pub async fn check(primary_url: &str, replica_urls: &[String]) -> ToolResult<Vec<Drift>> {
    let mut nodes: Vec<(String, Client)> = vec![("primary".to_string(), connect(primary_url).await?)];
    for (i, url) in replica_urls.iter().enumerate() {
        nodes.push((format!("replica{}", i + 1), connect(url).await?));
    }
    for (_, client) in &nodes {
        client.batch_execute("begin isolation level repeatable read read only").await?;
    }
    // The primary rebuilds the documents (from the *_source views) and is
    // also the first node whose stored documents are compared.
    let primary = &nodes[0].1;
    let mut drift = Vec::new();
    for kind in DocumentKind::ALL {
        let (source, stored) = (kind.source_view(), kind.table());
        let expected = block_hashes(primary, source).await?;
        for (node, client) in &nodes {
            let actual = block_hashes(client, stored).await?;
            let blocks: Vec<i64> = expected
                .iter()
                .filter(|(block, hash)| actual.get(*block) != Some(*hash))
                .map(|(block, _)| *block)
                .chain(actual.keys().filter(|block| !expected.contains_key(*block)).copied())
                .collect();
            for block in blocks {
                let want = doc_hashes(primary, source, block).await?;
                let have = doc_hashes(client, stored, block).await?;
                for (id, hash) in &want {
                    match have.get(id) {
                        None => drift.push(Drift {
                            node: node.clone(),
                            kind: kind.name(),
                            product_id: *id,
                            problem: "missing",
                        }),
                        Some(h) if h != hash => drift.push(Drift {
                            node: node.clone(),
                            kind: kind.name(),
                            product_id: *id,
                            problem: "different",
                        }),
                        Some(_) => {}
                    }
                }
                for id in have.keys().filter(|id| !want.contains_key(id)) {
                    drift.push(Drift { node: node.clone(), kind: kind.name(), product_id: *id, problem: "unexpected" });
                }
            }
        }
    }
    for (node, client) in &nodes {
        for row in client.query(PAGING_DRIFT_SQL, &[]).await? {
            let problem = if row.get::<_, &str>(0) == "block count" { "block count" } else { "superblock count" };
            drift.push(Drift { node: node.clone(), kind: "paging", product_id: row.get(1), problem });
        }
        client.batch_execute("commit").await?;
    }
    Ok(drift)
}

/// block number → md5 of the documents' md5s in id order.
async fn block_hashes(client: &Client, relation: &str) -> ToolResult<BTreeMap<i64, String>> {
    // `relation` is one of our own fixed names, never user input.
    let sql = format!(
        "select product_id / 1024, md5(string_agg(md5(doc), '' order by product_id)) from {relation} group by 1"
    );
    Ok(client.query(&sql, &[]).await?.iter().map(|row| (row.get(0), row.get(1))).collect())
}

/// product id → md5 of its document, for one block.
async fn doc_hashes(client: &Client, relation: &str, block: i64) -> ToolResult<BTreeMap<i64, String>> {
    let sql = format!(
        "select product_id, md5(doc) from {relation} where product_id >= $1::bigint * 1024 and product_id < ($1::bigint + 1) * 1024"
    );
    Ok(client.query(&sql, &[&block]).await?.iter().map(|row| (row.get(0), row.get(1))).collect())
}
