//! Schema and replication set-up for any primary and replicas, local or on
//! other hosts: migrations through refinery, the publication and
//! subscriptions, and waiting for the replicas to catch up. Nothing here
//! knows about the local cluster (`cluster` uses this, not the other way).
//! `resync.rs`: detaching, re-attaching and resyncing replicas.

use std::time::Duration;

use atelier_schema::migrations::{self, CATALOG_GRANTS_SQL, PUBLICATION_NAME, PUBLICATION_SQL, ROLES_SQL};
use atelier_schema::roles;
use atelier_schema::Role;
use refinery::{Migration, Runner};

use crate::db::{connect, ToolError, ToolResult};
use crate::wait;

mod resync;
pub use resync::{attach, detach, lost_slots, resync, Detached};
use resync::{drop_subscription, subscriptions};

/// How often the waits below look again.
const POLL_INTERVAL: Duration = Duration::from_millis(20);
/// How often a replica's initial copy is looked at (it takes seconds).
const SYNC_POLL_INTERVAL: Duration = Duration::from_millis(200);

/// The migrations for a role, as refinery runs them (see
/// `atelier_schema::migrations`).
pub fn migrations(role: Role) -> ToolResult<Vec<Migration>> {
    migrations::for_role(role)
        .map(|m| Migration::unapplied(&m.refinery_name(), m.sql).map_err(ToolError::from))
        .collect()
}

/// Writes the role's migrations into `dir` as the refinery CLI reads them
/// (`V<version>__<name>.sql`, the binary's own text), so `refinery migrate
/// -p DIR` applies exactly what `atelier migrate` would and either tool can
/// continue the other's history. Returns the file names written, in order.
pub fn write_refinery_dir(dir: &std::path::Path, role: Role) -> ToolResult<Vec<String>> {
    std::fs::create_dir_all(dir)?;
    let mut written = Vec::new();
    for m in migrations::for_role(role) {
        let file = format!("{}.sql", m.refinery_name());
        std::fs::write(dir.join(&file), m.sql)?;
        written.push(file);
    }
    Ok(written)
}

/// Applies the role's pending migrations to the database at `url`.
pub async fn migrate(url: &str, role: Role) -> ToolResult<()> {
    let mut client = connect(url).await?;
    let report = Runner::new(&migrations(role)?).set_abort_divergent(true).run_async(&mut client).await?;
    for migration in report.applied_migrations() {
        tracing::info!(role = %role, migration = %migration, "applied");
    }
    Ok(())
}

/// Creates or updates the login roles of `sql/roles.sql` through a
/// superuser connection at `admin_url`, setting each password given (a
/// role absent from `passwords` keeps the one it has).
pub async fn ensure_roles(admin_url: &str, passwords: &[(&str, &str)]) -> ToolResult<()> {
    let client = connect(admin_url).await?;
    let settings: Vec<String> = passwords
        .iter()
        .map(|(role, password)| format!("set {} = {};", roles::password_setting(role), literal(password)))
        .collect();
    // Session settings, reset afterwards so the secrets do not linger on
    // this connection.
    client.batch_execute(&settings.concat()).await?;
    client.batch_execute(ROLES_SQL).await?;
    client.batch_execute("reset all").await?;
    Ok(())
}

/// Creates database `dbname`, owned by the owner role, through the
/// maintenance database at `admin_url` unless it exists.
pub async fn ensure_database(admin_url: &str, dbname: &str) -> ToolResult<()> {
    let client = connect(admin_url).await?;
    let exists = client.query_opt("select 1 from pg_database where datname = $1", &[&dbname]).await?.is_some();
    if !exists {
        client.batch_execute(&format!("create database {} owner {}", ident(dbname)?, roles::OWNER)).await?;
    }
    Ok(())
}

/// The superuser's grants inside catalog database `db_url`
/// (`sql/catalog_grants.sql`). Idempotent.
pub async fn grant_catalog_access(db_url: &str) -> ToolResult<()> {
    connect(db_url).await?.batch_execute(CATALOG_GRANTS_SQL).await?;
    Ok(())
}

/// The owner of database `dbname`, if it exists.
pub async fn database_owner(admin_url: &str, dbname: &str) -> ToolResult<Option<String>> {
    let client = connect(admin_url).await?;
    let row = client
        .query_opt("select pg_get_userbyid(datdba)::text from pg_database where datname = $1", &[&dbname])
        .await?;
    Ok(row.map(|r| r.get(0)))
}

/// Drops database `dbname` on a replica (its subscriptions first, which also
/// drops their slots on the primary) through the maintenance database.
pub async fn drop_replica_database(admin_url: &str, db_url: &str, dbname: &str) -> ToolResult<()> {
    let admin = connect(admin_url).await?;
    if admin.query_opt("select 1 from pg_database where datname = $1", &[&dbname]).await?.is_none() {
        return Ok(());
    }
    let db = connect(db_url).await?;
    for (name, _) in subscriptions(&db).await? {
        // Its publisher may be gone (a restored copy the drill removed).
        drop_subscription(&db, &name).await?;
    }
    drop(db);
    admin.batch_execute(&format!("drop database if exists {} with (force)", ident(dbname)?)).await?;
    Ok(())
}

/// Drops database `dbname` on the primary, with any replication slot left
/// behind in it (a replica that vanished without dropping its subscription).
pub async fn drop_primary_database(admin_url: &str, dbname: &str) -> ToolResult<()> {
    let admin = connect(admin_url).await?;
    let released = wait::until(Duration::from_secs(30), SYNC_POLL_INTERVAL, async || {
        let slots =
            admin.query("select slot_name, active from pg_replication_slots where database = $1", &[&dbname]).await?;
        for slot in &slots {
            let (name, active): (String, bool) = (slot.get(0), slot.get(1));
            if !active {
                admin.execute("select pg_drop_replication_slot($1)", &[&name]).await?;
            }
        }
        Ok(slots.is_empty().then_some(()))
    })
    .await?;
    if released.is_none() {
        return Err(ToolError::msg(format!("replication slots of {dbname} are still in use")));
    }
    admin.batch_execute(&format!("drop database if exists {} with (force)", ident(dbname)?)).await?;
    Ok(())
}

/// Creates the publication on the primary unless it exists.
pub async fn ensure_publication(primary_url: &str) -> ToolResult<()> {
    let client = connect(primary_url).await?;
    let exists =
        client.query_opt("select 1 from pg_publication where pubname = $1", &[&PUBLICATION_NAME]).await?.is_some();
    if !exists {
        client.batch_execute(PUBLICATION_SQL).await?;
    }
    Ok(())
}

/// Subscribes the replica at `replica_url` to the primary, reached from the
/// replica as `primary_conninfo`, under subscription (and slot) name
/// `sub_name`, unless that subscription exists.
pub async fn ensure_subscription(replica_url: &str, primary_conninfo: &str, sub_name: &str) -> ToolResult<()> {
    subscribe(replica_url, primary_conninfo, sub_name, Slot::Create).await
}

/// Whether subscribing creates the slot on the primary, or uses the one
/// there: a Patroni cluster's permanent slot (deploy/patroni.sh), which
/// Patroni itself re-creates, and which must outlive any subscription.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Slot {
    Create,
    Existing,
}

async fn subscribe(replica_url: &str, primary_conninfo: &str, sub_name: &str, slot: Slot) -> ToolResult<()> {
    let client = connect(replica_url).await?;
    let exists = client.query_opt("select 1 from pg_subscription where subname = $1", &[&sub_name]).await?.is_some();
    if !exists {
        // CREATE SUBSCRIPTION takes no parameters; the name is checked by
        // ident() and the connection string is quoted as a literal. The SQL
        // mirrors replication/subscription.sql.
        client
            .batch_execute(&format!(
                "create subscription {} connection {} publication {PUBLICATION_NAME} \
                 with (copy_data = true, create_slot = {})",
                ident(sub_name)?,
                literal(primary_conninfo),
                slot == Slot::Create
            ))
            .await?;
    }
    Ok(())
}

/// Tables of this database's subscriptions whose initial copy is not done.
const TABLES_STILL_COPYING: &str = "select count(*) from pg_subscription_rel r
    join pg_subscription s on s.oid = r.srsubid
    where s.subdbid = (select oid from pg_database where datname = current_database())
      and r.srsubstate <> 'r'";

/// Bumps the replicated heartbeat row on the primary (a commit every
/// replica applies after everything committed before it) and returns the
/// new beat.
pub async fn bump_heartbeat(primary: &tokio_postgres::Client) -> ToolResult<i64> {
    Ok(primary
        .query_one("update replication_heartbeat set beat = beat + 1 where id = 1 returning beat", &[])
        .await?
        .get(0))
}

/// The last beat a replica has applied (None before its copy of the row).
pub async fn heartbeat_seen(replica: &tokio_postgres::Client) -> ToolResult<Option<i64>> {
    Ok(replica.query_opt("select beat from replication_heartbeat where id = 1", &[]).await?.map(|row| row.get(0)))
}

/// Bumps the heartbeat on the primary and waits until every replica shows
/// it, so that everything committed before this call is on every replica.
pub async fn wait_for_replicas(primary_url: &str, replica_urls: &[String], timeout: Duration) -> ToolResult<()> {
    let primary = connect(primary_url).await?;
    let beat = bump_heartbeat(&primary).await?;
    let started = std::time::Instant::now();
    for url in replica_urls {
        let replica = connect(url).await?;
        let mut seen: Option<i64> = None;
        let remaining = timeout.saturating_sub(started.elapsed());
        let caught_up = wait::until(remaining, POLL_INTERVAL, async || {
            // Every table's initial copy done too: the heartbeat's own copy
            // can finish before another table's has started.
            let copying: i64 = replica.query_one(TABLES_STILL_COPYING, &[]).await?.get(0);
            seen = heartbeat_seen(&replica).await?;
            Ok((copying == 0 && seen.is_some_and(|seen| seen >= beat)).then_some(()))
        })
        .await?;
        if caught_up.is_none() {
            return Err(ToolError::msg(format!(
                "replica {} has not caught up after {timeout:?} (heartbeat {seen:?}, want {beat})",
                redact(url)
            )));
        }
    }
    Ok(())
}

/// A SQL identifier we create: lowercase letters, digits and underscores
/// only, so it never needs quoting and can never inject.
pub fn ident(name: &str) -> ToolResult<&str> {
    let ok = !name.is_empty()
        && name.len() <= 63
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        && !name.as_bytes()[0].is_ascii_digit();
    if ok {
        Ok(name)
    } else {
        Err(ToolError::msg(format!("not a plain SQL name: {name:?} (use lowercase letters, digits, _)")))
    }
}

/// A SQL string literal.
pub fn literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// A connection string without its password, for messages.
pub fn redact(url: &str) -> String {
    url.split_whitespace()
        .map(|part| if part.starts_with("password=") { "password=***" } else { part })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What refinery's own loader (the one its CLI uses) reads back from the
    /// written directory is, migration for migration and checksum for
    /// checksum, what `atelier migrate` runs: a recipe that copied a fixed
    /// list of files would miss every migration added after it.
    #[test]
    fn the_refinery_directory_holds_every_migration_of_the_role() {
        for role in [Role::Primary, Role::Replica] {
            let dir = std::env::temp_dir().join(format!("atelier-refinery-{role}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            let written = write_refinery_dir(&dir, role).unwrap();
            let loaded = refinery::load_sql_migrations(&dir).unwrap();
            let embedded = migrations(role).unwrap();
            assert_eq!(loaded, embedded, "{role}");
            assert_eq!(written.len(), migrations::for_role(role).count());
            if role == Role::Replica {
                assert!(written.contains(&"V12__read_subscription.sql".to_string()), "{written:?}");
                assert!(!written.iter().any(|n| n.starts_with("V1__")), "replicas hold no write model: {written:?}");
            }
            std::fs::remove_dir_all(&dir).unwrap();
        }
    }
}
