//! After a failover: is a replica's read model still a copy of the new
//! primary's? And if not, make it one.
//!
//! A replica streams from a permanent logical slot that Patroni keeps on
//! the standby, so it carries on across a failover without a new copy. One
//! hole remains in PostgreSQL 15 (Patroni issue 1749): if the primary dies
//! just after sending a transaction to a subscriber and before the standby
//! has it, the subscriber has applied a write the new primary never made,
//! and then skips the new primary's transactions up to the position it
//! had reached. What that leaves is documents that differ from the new
//! primary's, or an apply worker stuck on a duplicate key.
//!
//! So a reconciliation runs once per new timeline of the primary (each
//! promotion starts one, also Patroni's restart of a crashed primary in
//! place, which cannot have the hole but costs only a comparison): wait
//! for the replica to catch up and compare every document (`check`). Writes
//! go on meanwhile, so a difference found that way may only be a document
//! written since; each one is therefore read again on the primary, then on
//! the replica once it has caught up past that read, then on the primary
//! once more. The replica's copy equal to the primary's: consistent. The
//! primary's unchanged across that window and the replica's still different:
//! damaged. The primary's changed: still being written, compared again on
//! the next pass; a document that never stops changing heals by itself,
//! since every write replaces the whole document on the replica. Damage,
//! or a replica that cannot catch up (its apply worker stuck on a row the
//! new primary wrote again), is repaired by a fenced re-copy
//! (`provision::resync`) of that replica.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use atelier_schema::DocumentKind;
use tokio_postgres::Client;

use crate::check::check;
use crate::db::{connect, ToolResult};
use crate::provision::{self, redact, Slot};

mod ledger;
pub use ledger::Ledger;

/// Comparisons of the documents that still change, before they are left to
/// heal by their own writes.
pub const PASSES: usize = 5;

/// What a reconciliation found and did.
#[derive(Debug)]
pub enum Outcome {
    /// No document damaged; `changing` were still being written at the last
    /// pass (and so heal by themselves).
    Consistent { differing: usize, changing: usize },
    /// Damaged documents, or a replica that could not catch up, and the
    /// replica was copied afresh; `after` is what is damaged then (none
    /// when the copy is exact).
    Resynced { reason: String, after: usize },
}

/// One thing compared: a document (its kind's table and product id) or a
/// paging count (block or superblock number).
type Item = (&'static str, i64);

/// The node that answers a primary URL, as one connection to it sees it.
#[derive(Debug, Clone)]
pub struct Leader {
    /// Its address as the hosts of a URL name it; None over a Unix socket
    /// (one host, nothing to reorder).
    pub address: Option<String>,
    /// Its timeline: the first 8 hex digits of its current WAL file's name.
    /// Each promotion starts a new one.
    pub timeline: u32,
}

/// Asks the node that answers `primary_url` (any role may) who it is.
pub async fn leader(primary_url: &str) -> ToolResult<Leader> {
    let client = connect(primary_url).await?;
    let row = client.query_one("select host(inet_server_addr()), pg_walfile_name(pg_current_wal_lsn())", &[]).await?;
    let file: String = row.get(1);
    let timeline = u32::from_str_radix(file.get(..8).unwrap_or_default(), 16)
        .map_err(|_| crate::ToolError::msg(format!("not a WAL file name: {file}")))?;
    Ok(Leader { address: row.get(0), timeline })
}

impl Leader {
    /// `url` with this node first in its host list (unchanged for one host,
    /// or a URI), so that every connection made with it reaches this node
    /// at once, not after a frozen node's timeout.
    pub fn first_in(&self, url: &str) -> String {
        self.address.as_deref().and_then(|address| leader_first(url, address)).unwrap_or_else(|| url.to_string())
    }
}

/// What the comparison of one replica came to.
enum Verdict {
    /// Damaged items, with one named for the log.
    Damaged(usize, String),
    /// It did not catch up with the primary.
    Behind(String),
    Clean {
        differing: usize,
        changing: usize,
    },
}

/// Reconciles the replica at `replica_url` (a superuser: a re-copy
/// subscribes again) with the primary at `primary_url` (the replicator or
/// the owner). A re-copy keeps the subscription's connection string and,
/// with `Slot::Existing`, the permanent slot.
pub async fn reconcile(primary_url: &str, replica_url: &str, slot: Slot, timeout: Duration) -> ToolResult<Outcome> {
    let started = Instant::now();
    let reason = match compare(primary_url, replica_url, timeout).await? {
        Verdict::Clean { differing, changing } => return Ok(Outcome::Consistent { differing, changing }),
        Verdict::Damaged(count, example) => format!("{count} damaged, e.g. {example}"),
        Verdict::Behind(error) => format!("it did not catch up: {error}"),
    };
    tracing::warn!(replica = %redact(replica_url), %reason, "re-copying the replica's read model");
    let left = timeout.saturating_sub(started.elapsed()).max(Duration::from_secs(60));
    let replicas = [replica_url.to_string()];
    provision::resync(primary_url, &replicas, None, slot, left).await?;
    let after = match compare(primary_url, replica_url, left).await? {
        Verdict::Clean { .. } => 0,
        Verdict::Damaged(count, _) => count,
        Verdict::Behind(error) => return Err(crate::ToolError::msg(format!("after the re-copy: {error}"))),
    };
    Ok(Outcome::Resynced { reason, after })
}

async fn compare(primary_url: &str, replica_url: &str, timeout: Duration) -> ToolResult<Verdict> {
    let replicas = [replica_url.to_string()];
    let started = Instant::now();
    if let Err(error) = catch_up(primary_url, replica_url, timeout).await {
        return Ok(Verdict::Behind(error.to_string()));
    }
    let mut pending: BTreeSet<Item> = check(primary_url, &replicas)
        .await?
        .into_iter()
        .filter(|d| d.node != "primary")
        .map(|d| (item_table(d.kind, d.problem), d.product_id))
        .collect();
    let differing = pending.len();
    let primary = connect(primary_url).await?;
    let replica = connect(replica_url).await?;
    for _ in 0..PASSES {
        if pending.is_empty() {
            break;
        }
        let before = values(&primary, &pending).await?;
        let left = timeout.saturating_sub(started.elapsed());
        if let Err(error) = catch_up(primary_url, replica_url, left).await {
            return Ok(Verdict::Behind(error.to_string()));
        }
        let copy = values(&replica, &pending).await?;
        let after = values(&primary, &pending).await?;
        let mut damaged = Vec::new();
        let mut changing = BTreeSet::new();
        for item in &pending {
            let (was, is, copied) = (before.get(item), after.get(item), copy.get(item));
            if copied == was {
                continue;
            }
            if was == is {
                damaged.push(*item);
            } else {
                changing.insert(*item);
            }
        }
        if let Some((table, id)) = damaged.first() {
            return Ok(Verdict::Damaged(damaged.len(), format!("{table} {id}")));
        }
        pending = changing;
    }
    Ok(Verdict::Clean { differing, changing: pending.len() })
}

/// Waits until the replica has applied everything the primary committed
/// before this call, pointing a stalled subscription at the leader while it
/// waits (a failover can stall it at any moment, not only before a run).
async fn catch_up(primary_url: &str, replica_url: &str, timeout: Duration) -> ToolResult<()> {
    let replicas = [replica_url.to_string()];
    let started = Instant::now();
    loop {
        for change in follow_leader(&leader(primary_url).await?, replica_url).await? {
            tracing::info!("{change}");
        }
        let left = timeout.saturating_sub(started.elapsed());
        let attempt = left.min(STALL + Duration::from_secs(5));
        match provision::wait_for_replicas(primary_url, &replicas, attempt).await {
            Ok(()) => return Ok(()),
            Err(error) if attempt >= left => return Err(error),
            Err(_) => {}
        }
    }
}

/// The table an item of `check`'s report lives in.
fn item_table(kind: &'static str, problem: &'static str) -> &'static str {
    match (kind, problem) {
        ("paging", "superblock count") => "product_page_superblock",
        ("paging", _) => "product_page_block",
        _ => DocumentKind::ALL.iter().find(|k| k.name() == kind).map_or(kind, |k| k.table()),
    }
}

/// Each item's value on one node (an md5 of the document, or the count),
/// absent items left out.
async fn values(client: &Client, items: &BTreeSet<Item>) -> ToolResult<BTreeMap<Item, String>> {
    let mut by_table: BTreeMap<&'static str, Vec<i64>> = BTreeMap::new();
    for (table, id) in items {
        by_table.entry(table).or_default().push(*id);
    }
    let mut out = BTreeMap::new();
    for (table, ids) in by_table {
        // `table` is one of our own fixed names (item_table), never input.
        let sql = match table {
            "product_page_block" => {
                "select block_no, live::text from product_page_block where block_no = any($1)".to_string()
            }
            "product_page_superblock" => {
                "select superblock_no, live::text from product_page_superblock where superblock_no = any($1)"
                    .to_string()
            }
            _ => format!("select product_id, md5(doc) from {table} where product_id = any($1)"),
        };
        for row in client.query(&sql, &[&ids]).await? {
            out.insert((table, row.get::<_, i64>(0)), row.get::<_, String>(1));
        }
    }
    Ok(out)
}

/// How long a subscription may go without a message from its publisher
/// (whose WAL sender sends one at least every wal_sender_timeout / 2, 5 s
/// on a Patroni node) before it counts as stalled.
pub const STALL: Duration = Duration::from_secs(15);

/// Keeps a replica's subscriptions pointed at the leader. PostgreSQL 15's
/// apply worker connects without libpq's connect_timeout (it polls the
/// connection itself), so with a multi-host connection string it waits on
/// the first host for as long as that host's kernel keeps the connection
/// open (a frozen node: until it thaws) or TCP keeps trying (a cut-off
/// node: about two minutes), and never tries the next. So when a
/// subscription has heard nothing for `STALL`, and its first host is not
/// the `leader`, its connection string is rewritten with the leader's host
/// first, and the worker restarted. Returns what it changed, for the log.
pub async fn follow_leader(leader: &Leader, replica_url: &str) -> ToolResult<Vec<String>> {
    let Some(leader) = leader.address.as_deref() else { return Ok(Vec::new()) }; // a Unix socket: one host
    let replica = connect(replica_url).await?;
    let rows = replica
        .query(
            "select s.subname::text, s.subconninfo,
                    coalesce(extract(epoch from now() - max(w.last_msg_receipt_time))::float8, 1e9)
             from pg_subscription s
             left join pg_stat_subscription w on w.subid = s.oid
             where s.subdbid = (select oid from pg_database where datname = current_database()) and s.subenabled
             group by 1, 2",
            &[],
        )
        .await?;
    let mut changed = Vec::new();
    for row in rows {
        let (name, conninfo, silent): (String, String, f64) = (row.get(0), row.get(1), row.get(2));
        if silent < STALL.as_secs_f64() {
            continue;
        }
        let Some(reordered) = leader_first(&conninfo, leader) else { continue };
        let sql =
            format!("alter subscription {} connection {}", provision::ident(&name)?, provision::literal(&reordered));
        replica.batch_execute(&sql).await?;
        // A worker stuck connecting does not notice the change: end it,
        // and the launcher starts one with the new string.
        replica
            .execute(
                "select pg_terminate_backend(w.pid) from pg_stat_subscription w
                 join pg_subscription s on s.oid = w.subid where s.subname = $1 and w.pid is not null",
                &[&name],
            )
            .await?;
        changed.push(format!("subscription {name} heard nothing for {silent:.0} s; {leader} leads, now tried first"));
    }
    Ok(changed)
}

/// `conninfo` (libpq keyword=value) with `leader` first in its host list
/// (and its port first, when each host has its own), or None when it is
/// first already or not listed.
pub fn leader_first(conninfo: &str, leader: &str) -> Option<String> {
    let mut pairs = parse_conninfo(conninfo)?;
    let list = |pairs: &[(String, String)], key: &str| {
        pairs.iter().find(|(k, _)| k == key).map(|(_, v)| v.split(',').map(str::to_string).collect::<Vec<_>>())
    };
    let hosts = list(&pairs, "host")?;
    let at = hosts.iter().position(|h| h == leader)?;
    if at == 0 {
        return None;
    }
    let to_front = |items: &[String]| {
        let mut items = items.to_vec();
        let item = items.remove(at);
        items.insert(0, item);
        items.join(",")
    };
    let ports = list(&pairs, "port").filter(|p| p.len() == hosts.len());
    for (key, value) in &mut pairs {
        if key == "host" {
            *value = to_front(&hosts);
        } else if let (true, Some(ports)) = (key == "port", &ports) {
            *value = to_front(ports);
        }
    }
    Some(pairs.iter().map(|(k, v)| format!("{k}={}", quote_conninfo_value(v))).collect::<Vec<_>>().join(" "))
}

/// libpq's keyword=value syntax: values bare, or in single quotes with \'
/// and \\ escapes. None when it is not that syntax (a URI).
fn parse_conninfo(text: &str) -> Option<Vec<(String, String)>> {
    let mut pairs = Vec::new();
    let mut chars = text.chars().peekable();
    let skip_spaces =
        |chars: &mut std::iter::Peekable<std::str::Chars>| while chars.next_if(|c| c.is_whitespace()).is_some() {};
    loop {
        skip_spaces(&mut chars);
        if chars.peek().is_none() {
            return Some(pairs);
        }
        let key: String = std::iter::from_fn(|| chars.next_if(|c| *c != '=' && !c.is_whitespace())).collect();
        skip_spaces(&mut chars);
        if chars.next() != Some('=') || key.is_empty() {
            return None;
        }
        skip_spaces(&mut chars);
        let mut value = String::new();
        if chars.peek() == Some(&'\'') {
            chars.next();
            loop {
                match chars.next()? {
                    '\\' => value.push(chars.next()?),
                    '\'' => break,
                    c => value.push(c),
                }
            }
        } else {
            while let Some(c) = chars.next_if(|c| !c.is_whitespace()) {
                if c == '\\' {
                    value.push(chars.next()?);
                } else {
                    value.push(c);
                }
            }
        }
        pairs.push((key, value));
    }
}

fn quote_conninfo_value(value: &str) -> String {
    if !value.is_empty() && !value.chars().any(|c| c.is_whitespace() || c == '\'' || c == '\\') {
        return value.to_string();
    }
    format!("'{}'", value.replace('\\', "\\\\").replace('\'', "\\'"))
}

#[cfg(test)]
mod tests {
    use super::leader_first;

    #[test]
    fn the_leader_moves_to_the_front_of_the_host_list() {
        let info = "host=10.0.1.10,10.0.4.10 port=5432 user=atelier_replicator dbname=atelier connect_timeout=10 \
                    target_session_attrs=read-write password=s3cr3t";
        assert_eq!(
            leader_first(info, "10.0.4.10").unwrap(),
            "host=10.0.4.10,10.0.1.10 port=5432 user=atelier_replicator dbname=atelier connect_timeout=10 \
             target_session_attrs=read-write password=s3cr3t"
        );
        assert_eq!(leader_first(info, "10.0.1.10"), None, "first already");
        assert_eq!(leader_first(info, "10.9.9.9"), None, "not listed");
        let per_host = "host=a,b,c port=1,2,3 password='a b\\'c'";
        assert_eq!(leader_first(per_host, "c").unwrap(), r"host=c,a,b port=3,1,2 password='a b\'c'");
        assert_eq!(leader_first("postgres://a,b/db", "b"), None, "a URI is left alone");
    }
}
