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
//! promotion starts one; a crashed primary restarted in place keeps its
//! own and needs none, as it never sent what it had not flushed): wait
//! for the replica to catch up, compare every document (`check`), and
//! compare again after catching up again while any differ, since writes
//! go on meanwhile; a difference that stays through every pass, or a
//! replica that cannot catch up, is repaired by a fenced re-copy
//! (`provision::resync`) of that replica.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use crate::check::{check, Drift};
use crate::db::{connect, ToolResult};
use crate::provision::{self, redact, Slot};

/// Comparisons before a difference counts as real: each after the replica
/// has caught up again, so that a document written meanwhile is not one.
pub const PASSES: usize = 5;
/// The pause between passes.
const PASS_PAUSE: Duration = Duration::from_millis(300);

/// What a reconciliation found and did.
#[derive(Debug)]
pub enum Outcome {
    /// Every document equal (after at most `PASSES` comparisons).
    Consistent { passes: usize },
    /// Documents stayed different (or the replica could not catch up), and
    /// the replica was copied afresh; `after` is what a check found then
    /// (empty when the copy is exact).
    Resynced { reason: String, after: Vec<Drift> },
}

/// The primary's timeline: the first 8 hex digits of its current WAL file's
/// name. Each promotion starts a new one; any role may ask.
pub async fn primary_timeline(primary_url: &str) -> ToolResult<u32> {
    let client = connect(primary_url).await?;
    let file: String = client.query_one("select pg_walfile_name(pg_current_wal_lsn())", &[]).await?.get(0);
    u32::from_str_radix(file.get(..8).unwrap_or_default(), 16)
        .map_err(|_| crate::ToolError::msg(format!("not a WAL file name: {file}")))
}

/// Reconciles the replica at `replica_url` (a superuser: a re-copy
/// subscribes again) with the primary at `primary_url` (the owner).
/// A re-copy keeps the subscription's connection string and, with
/// `Slot::Existing`, the permanent slot.
pub async fn reconcile(primary_url: &str, replica_url: &str, slot: Slot, timeout: Duration) -> ToolResult<Outcome> {
    let replicas = [replica_url.to_string()];
    let started = Instant::now();
    let mut lasting: Option<BTreeSet<(&'static str, i64, &'static str)>> = None;
    let mut reason = None;
    for pass in 1..=PASSES {
        let left = timeout.saturating_sub(started.elapsed());
        if let Err(error) = provision::wait_for_replicas(primary_url, &replicas, left).await {
            reason = Some(format!("it did not catch up: {error}"));
            break;
        }
        let found: BTreeSet<_> = check(primary_url, &replicas)
            .await?
            .into_iter()
            .filter(|d| d.node != "primary")
            .map(|d| (d.kind, d.product_id, d.problem))
            .collect();
        let still: BTreeSet<_> = match lasting.take() {
            None => found,
            Some(before) => before.intersection(&found).copied().collect(),
        };
        if still.is_empty() {
            return Ok(Outcome::Consistent { passes: pass });
        }
        if pass == PASSES {
            let first = still.iter().next().map(|(k, id, p)| format!(", e.g. {k} of product {id} {p}"));
            reason = Some(format!(
                "{} documents differed in all {PASSES} comparisons{}",
                still.len(),
                first.unwrap_or_default()
            ));
        }
        lasting = Some(still);
        tokio::time::sleep(PASS_PAUSE).await;
    }
    let reason = reason.unwrap_or_default();
    tracing::warn!(replica = %redact(replica_url), %reason, "re-copying the replica's read model");
    let left = timeout.saturating_sub(started.elapsed()).max(Duration::from_secs(60));
    provision::resync(primary_url, &replicas, None, slot, left).await?;
    let after = check(primary_url, &replicas).await?.into_iter().filter(|d| d.node != "primary").collect();
    Ok(Outcome::Resynced { reason, after })
}

/// What the reconciliations of one replica have done, kept as a Prometheus
/// text file (node_exporter's textfile collector reads it): counts by
/// result, and the primary timeline last reconciled.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Ledger {
    pub timeline: Option<u32>,
    pub consistent: u64,
    pub resynced: u64,
    pub failed: u64,
}

impl Ledger {
    /// Reads a ledger written by `render`; lines it does not know are
    /// ignored, so a missing or foreign file is an empty ledger.
    pub fn parse(text: &str) -> Ledger {
        let mut ledger = Ledger::default();
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let Some((name, value)) = line.rsplit_once(' ') else { continue };
            match name {
                "atelier_reconcile_timeline" => ledger.timeline = value.parse().ok(),
                r#"atelier_reconcile_total{result="consistent"}"# => ledger.consistent = value.parse().unwrap_or(0),
                r#"atelier_reconcile_total{result="resynced"}"# => ledger.resynced = value.parse().unwrap_or(0),
                r#"atelier_reconcile_total{result="failed"}"# => ledger.failed = value.parse().unwrap_or(0),
                _ => {}
            }
        }
        ledger
    }

    pub fn render(&self) -> String {
        let mut out = String::from(
            "# HELP atelier_reconcile_total Reconciliations of this replica with a new primary timeline, by result.\n\
             # TYPE atelier_reconcile_total counter\n",
        );
        for (result, count) in [("consistent", self.consistent), ("resynced", self.resynced), ("failed", self.failed)] {
            out.push_str(&format!("atelier_reconcile_total{{result=\"{result}\"}} {count}\n"));
        }
        if let Some(timeline) = self.timeline {
            out.push_str(
                "# HELP atelier_reconcile_timeline The primary's timeline this replica was last reconciled with.\n\
                 # TYPE atelier_reconcile_timeline gauge\n",
            );
            out.push_str(&format!("atelier_reconcile_timeline {timeline}\n"));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::Ledger;

    #[test]
    fn a_ledger_reads_back_what_it_wrote() {
        let ledger = Ledger { timeline: Some(7), consistent: 3, resynced: 1, failed: 2 };
        assert_eq!(Ledger::parse(&ledger.render()), ledger);
        assert_eq!(Ledger::parse(""), Ledger::default());
        assert_eq!(Ledger::parse("garbage\natelier_reconcile_timeline x\n").timeline, None);
    }
}
