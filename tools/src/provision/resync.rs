//! Taking replicas off the primary and putting them back: detaching and
//! re-attaching their subscriptions around a bulk load, slots a replica
//! lost, a resync from scratch (fenced from reads until it has caught up),
//! and dropping a subscription with a bounded wait for its slot.

use std::time::Duration;

use atelier_schema::roles;
use atelier_schema::tables::READ_MODEL_TABLES;

use super::*;
use crate::db::{connect, ToolError, ToolResult};
use crate::wait;

/// A replica's subscription, remembered while it is detached for a bulk load.
pub struct Detached {
    pub replica_url: String,
    pub name: String,
    pub conninfo: String,
    pub slot: Slot,
}

/// Drops every replica's subscription (and so its slot on the primary), so
/// that a bulk load is not decoded and streamed change by change; returns
/// what `attach` needs to subscribe again.
pub async fn detach(replica_urls: &[String]) -> ToolResult<Vec<Detached>> {
    let mut detached = Vec::new();
    for url in replica_urls {
        let client = connect(url).await?;
        for (name, conninfo) in subscriptions(&client).await? {
            drop_subscription(&client, &name).await?;
            detached.push(Detached { replica_url: url.clone(), name, conninfo, slot: Slot::Create });
        }
    }
    Ok(detached)
}

/// This database's subscriptions on a replica: name and connection string.
pub(super) async fn subscriptions(client: &tokio_postgres::Client) -> ToolResult<Vec<(String, String)>> {
    let rows = client
        .query(
            "select subname::text, subconninfo from pg_subscription
             where subdbid = (select oid from pg_database where datname = current_database())",
            &[],
        )
        .await?;
    Ok(rows.iter().map(|row| (row.get(0), row.get(1))).collect())
}

/// Empties each detached replica's read model and subscribes it again with
/// an initial copy (parallel COPY per table, far faster than replaying the
/// load's WAL), then waits until every table is synchronised and caught up.
pub async fn attach(primary_url: &str, detached: &[Detached], timeout: Duration) -> ToolResult<()> {
    let started = std::time::Instant::now();
    for d in detached {
        let client = connect(&d.replica_url).await?;
        client.batch_execute(&format!("truncate {}", READ_MODEL_TABLES.join(", "))).await?;
        subscribe(&d.replica_url, &d.conninfo, &d.name, d.slot).await?;
    }
    for d in detached {
        let client = connect(&d.replica_url).await?;
        let synced = wait::until(timeout.saturating_sub(started.elapsed()), SYNC_POLL_INTERVAL, async || {
            let syncing: i64 = client
                .query_one(
                    "select count(*) from pg_subscription_rel r join pg_subscription s on s.oid = r.srsubid
                     where s.subname = $1 and r.srsubstate <> 'r'",
                    &[&d.name],
                )
                .await?
                .get(0);
            Ok((syncing == 0).then_some(()))
        })
        .await?;
        if synced.is_none() {
            return Err(ToolError::msg(format!(
                "replica {} is still copying after {timeout:?}",
                redact(&d.replica_url)
            )));
        }
    }
    let urls: Vec<String> = detached.iter().map(|d| d.replica_url.clone()).collect();
    wait_for_replicas(primary_url, &urls, timeout.saturating_sub(started.elapsed())).await
}

/// Replication slots of this database the primary has given up on
/// (`wal_status = 'lost'`): their subscribers can never catch up.
pub async fn lost_slots(primary_url: &str) -> ToolResult<i64> {
    let client = connect(primary_url).await?;
    let row = client
        .query_one(
            "select count(*) from pg_replication_slots where database = current_database() and wal_status = 'lost'",
            &[],
        )
        .await?;
    Ok(row.get(0))
}

/// Points every replica at a (new or restored) primary and copies its read
/// model afresh: each replica's subscriptions in this database are dropped
/// (their slots too, when the old publisher still answers; else the slot is
/// let go, and max_slot_wal_keep_size bounds what it keeps there), the
/// replica's read model is emptied, and it subscribes under the same name
/// (`atelier_replica<N>` when it had none) to the primary at
/// `primary_conninfo` (as the replicas reach it), with an initial copy.
/// Returns once every replica has caught up with `primary_url`.
///
/// While a replica copies, its read model is incomplete, so it is fenced:
/// the service's reader may not connect to that database (CONNECT revoked
/// from PUBLIC, its sessions ended), the service ejects the replica and
/// reads the others or the primary, and the fence lifts once the replica
/// has caught up. Replicas are resynced one at a time, so the others keep
/// serving. If this is interrupted, run it again: it lifts the fence.
///
/// `primary_conninfo` None keeps each subscription's own connection string.
/// With `Slot::Existing` (a Patroni cluster's permanent slot) the slot on
/// the primary is kept and the new subscription uses it: the copy's own
/// snapshot decides where each table's changes start, so a slot behind
/// it loses nothing and repeats nothing.
pub async fn resync(
    primary_url: &str,
    replica_urls: &[String],
    primary_conninfo: Option<&str>,
    slot: Slot,
    timeout: Duration,
) -> ToolResult<()> {
    let primary = connect(primary_url).await?;
    for (i, url) in replica_urls.iter().enumerate() {
        let client = connect(url).await?;
        let old = subscriptions(&client).await?;
        for (name, _) in &old {
            match slot {
                Slot::Create => drop_subscription(&client, name).await?,
                Slot::Existing => drop_subscription_keeping_slot(&client, name).await?,
            }
        }
        let (name, old_conninfo) =
            old.into_iter().next().unwrap_or_else(|| (format!("atelier_replica{}", i + 1), String::new()));
        let conninfo = primary_conninfo.map_or(old_conninfo, str::to_string);
        if conninfo.is_empty() {
            return Err(ToolError::msg(format!(
                "{} has no subscription to take a connection string from",
                redact(url)
            )));
        }
        if slot == Slot::Create {
            // A slot of that name left on the new primary (a restored copy
            // of the old one carries none; a primary this replica left
            // does) would make the new subscription fail.
            primary
                .execute(
                    "select pg_drop_replication_slot(slot_name) from pg_replication_slots
                     where slot_name = $1 and not active",
                    &[&name],
                )
                .await?;
        }
        fence(&client, true).await?;
        let one = [Detached { replica_url: url.clone(), name, conninfo, slot }];
        let attached = attach(primary_url, &one, timeout).await;
        fence(&client, false).await?;
        attached?;
    }
    Ok(())
}

/// Drops a subscription but not its slot on the publisher.
async fn drop_subscription_keeping_slot(client: &tokio_postgres::Client, name: &str) -> ToolResult<()> {
    let name = ident(name)?;
    client
        .batch_execute(&format!("alter subscription {name} disable; alter subscription {name} set (slot_name = none)"))
        .await?;
    client.batch_execute(&format!("drop subscription {name}")).await?;
    Ok(())
}

/// Fences (or un-fences) a replica's database from the service's reader:
/// no new connections (CONNECT is PUBLIC's by default), and the reader's
/// sessions ended so its pool reconnects, and fails, at once. The tools
/// connect as a superuser or the owner, which keep their access.
///
/// The revoke is committed on its own before any session is ended: sent in
/// one batch with the terminations it would be one implicit transaction,
/// and the pool's instant reconnects would pass the CONNECT check against
/// the catalog as it was, then read the tables while they are emptied. A
/// connection that checked CONNECT just before the commit can also show in
/// `pg_stat_activity` only a moment later, so the sessions are looked for
/// after a pause, and again after each pass that ended some, until a pass
/// finds none.
async fn fence(client: &tokio_postgres::Client, on: bool) -> ToolResult<()> {
    let db: String = client.query_one("select current_database()::text", &[]).await?.get(0);
    let db = ident(&db)?;
    if !on {
        client.batch_execute(&format!("grant connect on database {db} to public")).await?;
        return Ok(());
    }
    client.batch_execute(&format!("revoke connect on database {db} from public")).await?;
    // Even a first pass that finds no session comes after a pause: a
    // connection may be between its check and pg_stat_activity right now.
    tokio::time::sleep(FENCE_SETTLE).await;
    let settled = wait::until(FENCE_TIMEOUT, FENCE_SETTLE, async || {
        let ended: i64 = client
            .query_one(
                "select count(pg_terminate_backend(pid)) from pg_stat_activity
                 where datname = current_database() and usename = $1",
                &[&roles::READER],
            )
            .await?
            .get(0);
        Ok((ended == 0).then_some(()))
    })
    .await?;
    settled
        .ok_or_else(|| ToolError::msg(format!("the reader's sessions were still coming back after {FENCE_TIMEOUT:?}")))
}

/// How long a fence waits between ending the reader's sessions and looking
/// again: longer than a connection takes from its CONNECT check to showing
/// in `pg_stat_activity` on a busy host.
const FENCE_SETTLE: Duration = Duration::from_millis(200);

/// How long a fence may take to find the reader gone.
const FENCE_TIMEOUT: Duration = Duration::from_secs(10);

/// How long dropping a subscription may spend reaching its old publisher
/// to drop the slot there.
const DROP_SLOT_TIMEOUT: &str = "10s";

/// Drops a subscription and its slot on the publisher; when the publisher
/// cannot be reached in time, lets the slot go and drops the subscription.
pub(super) async fn drop_subscription(client: &tokio_postgres::Client, name: &str) -> ToolResult<()> {
    let name = ident(name)?;
    client.batch_execute(&format!("alter subscription {name} disable")).await?;
    // The publisher's WAL sender for it takes a moment to stop after the
    // disable; until then its slot is "active" and cannot be dropped.
    let mut last_error = String::new();
    let dropped = wait::until(Duration::from_secs(10), SYNC_POLL_INTERVAL, async || {
        // One statement per call: several in one would be a transaction
        // block, where DROP SUBSCRIPTION may not run.
        client.batch_execute(&format!("set statement_timeout = '{DROP_SLOT_TIMEOUT}'")).await?;
        let attempt = client.batch_execute(&format!("drop subscription {name}")).await;
        client.batch_execute("reset statement_timeout").await?;
        match attempt {
            Ok(()) => Ok(Some(true)),
            Err(error) => {
                last_error = error.as_db_error().map_or_else(|| error.to_string(), |db| db.message().to_string());
                // Active: try again. Anything else (unreachable): give up on the slot.
                Ok((!last_error.contains("is active")).then_some(false))
            }
        }
    })
    .await?;
    if dropped != Some(true) {
        tracing::warn!(subscription = name, error = %last_error, "the old publisher did not drop its slot; leaving the slot there");
        client.batch_execute(&format!("alter subscription {name} set (slot_name = none)")).await?;
        client.batch_execute(&format!("drop subscription {name}")).await?;
    }
    Ok(())
}
