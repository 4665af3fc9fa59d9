//! Backups of the write model with pgBackRest (Debian's `pgbackrest`): the
//! primary's WAL is archived continuously (`archive_command` runs
//! `pgbackrest archive-push`) and base backups are taken on a schedule, so
//! the primary can be restored to the latest commit or to any time since
//! the oldest retained full backup.
//!
//! This module owns three things:
//! - the local cluster's pgBackRest configuration (`<cluster>/pgbackrest.conf`,
//!   repository in `<cluster>/backup`) and the archive settings its primary
//!   includes (`archive.conf` in the primary's data directory);
//! - running pgbackrest, as the `postgres` user when we are root, on the
//!   local cluster or with a host's `/etc/pgbackrest/pgbackrest.conf`;
//! - the backup report for Prometheus (`report.rs`): the newest good backup's age and
//!   size (`pgbackrest info --output=json`) and the archiver's state
//!   (`pg_stat_archiver`, and the WAL segments still waiting to be pushed).
//!
//! On a fleet, deploy/primary.sh writes the same settings for its host.

use std::fmt::Write as _;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

mod report;
pub use report::BackupReport;

use crate::cluster::{path_str, LocalCluster};
use crate::db::{connect, ToolError, ToolResult};

/// The stanza: pgBackRest's name for the one PostgreSQL cluster it backs up.
pub const STANZA: &str = "atelier";
/// Seconds after which a quiet primary switches WAL segments anyway, so
/// that a commit reaches the repository within this long: the most a total
/// loss of the primary (disk and all) can lose.
pub const ARCHIVE_TIMEOUT_S: u32 = 60;
/// Full backups the local cluster keeps (older ones, and the WAL only they
/// need, are expired after each backup).
const LOCAL_RETENTION_FULL: u32 = 2;
/// The line of the primary's postgresql.conf that reads archive.conf.
const INCLUDE_ARCHIVE: &str = "include_if_exists 'archive.conf'";
/// The host default configuration file, used when no other is given.
pub const HOST_CONFIG: &str = "/etc/pgbackrest/pgbackrest.conf";

/// Whether the `pgbackrest` command is installed.
pub fn installed() -> bool {
    Command::new("pgbackrest").arg("version").output().is_ok_and(|out| out.status.success())
}

/// The archive settings of a primary whose pgBackRest configuration is
/// `config`; archiving off when pgbackrest is not installed.
pub fn archive_settings(config: &Path, socket_dir: &Path, enabled: bool) -> String {
    let mut text = String::from(
        "# Written by `atelier cluster up` on every start (tools/src/backup.rs); edits are lost.\n\
         # The socket is for pgbackrest, which reaches PostgreSQL only that way.\n",
    );
    let _ = writeln!(text, "unix_socket_directories = '{}'", socket_dir.display());
    if enabled {
        let _ = writeln!(text, "archive_mode = on");
        let _ = writeln!(
            text,
            "archive_command = 'pgbackrest --config={} --stanza={STANZA} archive-push %p'",
            config.display()
        );
        let _ = writeln!(text, "archive_timeout = {ARCHIVE_TIMEOUT_S}");
    } else {
        text.push_str("# pgbackrest is not installed: no WAL archive, no backups.\narchive_mode = off\n");
    }
    text
}

impl LocalCluster {
    /// The local cluster's pgBackRest configuration file.
    pub fn backup_config(&self) -> PathBuf {
        self.dir.join("pgbackrest.conf")
    }

    /// The repository: beside the data directories, never inside one, so
    /// that removing a node's data leaves its backups.
    pub fn backup_repo(&self) -> PathBuf {
        self.dir.join("backup")
    }

    /// Where the primary's Unix socket lives (for pgbackrest only; the
    /// service and the tools use TCP on loopback).
    pub fn socket_dir(&self) -> PathBuf {
        self.dir.join("run")
    }

    /// Writes pgbackrest.conf and the primary's archive.conf (which its
    /// postgresql.conf includes). Returns true when archive.conf changed,
    /// so a running primary must restart to pick it up (archive_mode).
    pub(crate) fn write_backup_files(&self, primary_data: &Path, enabled: bool) -> ToolResult<bool> {
        let state = self.dir.join("pgbackrest");
        for dir in [self.backup_repo(), self.socket_dir(), state.clone(), state.join("log")] {
            std::fs::create_dir_all(&dir)?;
            // The repository holds the whole write model: the server's user only.
            std::fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o700))?;
            self.give_to_server(&dir)?;
        }
        let port = atelier_schema::local::primary().port;
        let conf = format!(
            "# Written by `atelier cluster up` (tools/src/backup.rs); edits are lost.\n\
             [global]\n\
             repo1-path={repo}\n\
             repo1-retention-full={LOCAL_RETENTION_FULL}\n\
             log-path={state}/log\n\
             lock-path={state}/lock\n\
             spool-path={state}/spool\n\
             log-level-console=warn\n\
             log-level-file=info\n\
             compress-type=zst\n\
             start-fast=y\n\
             \n\
             [{STANZA}]\n\
             pg1-path={data}\n\
             pg1-port={port}\n\
             pg1-socket-path={socket}\n\
             pg1-user=postgres\n",
            repo = self.backup_repo().display(),
            state = state.display(),
            data = primary_data.display(),
            socket = self.socket_dir().display(),
        );
        write_owned(self, &self.backup_config(), &conf)?;
        let settings = archive_settings(&self.backup_config(), &self.socket_dir(), enabled);
        let path = primary_data.join("archive.conf");
        let mut changed = std::fs::read_to_string(&path).map_or(true, |old| old != settings);
        if changed {
            write_owned(self, &path, &settings)?;
        }
        // Last in postgresql.conf, so these settings win (a cluster made
        // before backups gets the line on its next `up`).
        let main = primary_data.join("postgresql.conf");
        let text = std::fs::read_to_string(&main)?;
        if !text.contains(INCLUDE_ARCHIVE) {
            use std::io::Write;
            std::fs::OpenOptions::new()
                .append(true)
                .open(&main)?
                .write_all(format!("{INCLUDE_ARCHIVE}\n").as_bytes())?;
            changed = true;
        }
        Ok(changed)
    }

    /// Runs pgbackrest with the local cluster's configuration.
    pub fn pgbackrest(&self, args: &[&str]) -> ToolResult<Output> {
        run_pgbackrest(&self.backup_config(), self.server_user(), args)
    }

    /// Restores the newest backup (and the WAL after it) into `to`, an
    /// empty or new directory, up to `target` (a time PostgreSQL parses,
    /// e.g. `2026-12-02 10:00:00.123+00`) or, without one, to the end of the
    /// archive; starts it on loopback `port` and waits until it has
    /// promoted itself and takes writes. The copy's archiving is off, so
    /// it never pushes into the repository of the primary it came from.
    /// Returns how long the restore and the recovery took.
    pub async fn restore(&self, to: &Path, target: Option<&str>, port: u16) -> ToolResult<Restored> {
        if to.join("PG_VERSION").exists() {
            return Err(ToolError::msg(format!(
                "{} already holds a data directory: restore into an empty one",
                to.display()
            )));
        }
        std::fs::create_dir_all(to)?;
        std::fs::set_permissions(to, std::os::unix::fs::PermissionsExt::from_mode(0o700))?;
        self.give_to_server(to)?;
        let started = std::time::Instant::now();
        let mut args = vec!["restore".to_string(), format!("--pg1-path={}", to.display()), "--archive-mode=off".into()];
        if let Some(target) = target {
            args.extend(["--type=time".into(), format!("--target={target}"), "--target-action=promote".into()]);
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        checked(self.pgbackrest(&args)?, "restore")?;
        let copied = started.elapsed();
        let log = to.with_extension("log");
        let out = self.pg_ctl(&[
            "-D",
            path_str(to)?,
            "-l",
            path_str(&log)?,
            "-o",
            &format!("-p {port}"),
            "-w",
            "-t",
            "300",
            "start",
        ])?;
        if !out.status.success() {
            return Err(ToolError::msg(format!(
                "the restored copy did not start: {} (see {})",
                String::from_utf8_lossy(&out.stderr),
                log.display()
            )));
        }
        let url = format!("host=127.0.0.1 port={port} user=postgres dbname=postgres");
        let promoted = crate::wait::until(Duration::from_secs(600), Duration::from_millis(50), async || {
            let Ok(client) = connect(&url).await else { return Ok(None) };
            let recovering: bool = client.query_one("select pg_is_in_recovery()", &[]).await?.get(0);
            Ok((!recovering).then_some(()))
        })
        .await?;
        if promoted.is_none() {
            return Err(ToolError::msg(format!("the restored copy is still recovering (see {})", log.display())));
        }
        Ok(Restored { copied, ready: started.elapsed(), log })
    }

    /// Creates the stanza (idempotent: an existing, matching one is kept).
    pub(crate) fn stanza_create(&self) -> ToolResult<()> {
        checked(self.pgbackrest(&["stanza-create"])?, "stanza-create")?;
        Ok(())
    }
}

/// What a restore took.
pub struct Restored {
    /// Copying the backup's files out of the repository.
    pub copied: Duration,
    /// From the start of the restore until the copy took writes (files,
    /// WAL replay and promotion).
    pub ready: Duration,
    /// The restored server's log.
    pub log: PathBuf,
}

fn write_owned(cluster: &LocalCluster, path: &Path, text: &str) -> ToolResult<()> {
    std::fs::write(path, text).map_err(|e| ToolError::msg(format!("cannot write {}: {e}", path.display())))?;
    cluster.give_to_server(path)
}

/// Runs `pgbackrest --config=<config> --stanza=atelier <args>`, as the
/// PostgreSQL server's user (`run_as`) when given.
pub fn run_pgbackrest(config: &Path, run_as: Option<(u32, u32)>, args: &[&str]) -> ToolResult<Output> {
    let mut cmd = Command::new("pgbackrest");
    cmd.arg(format!("--config={}", config.display())).arg(format!("--stanza={STANZA}")).args(args);
    if let Some((uid, gid)) = run_as {
        cmd.uid(uid).gid(gid);
    }
    cmd.output().map_err(|e| {
        ToolError::msg(format!(
            "cannot run pgbackrest ({e}); install it with `apt-get install pgbackrest` (scripts/ensure-postgres.sh does)"
        ))
    })
}

/// The output of a pgbackrest run that must succeed.
pub fn checked(out: Output, what: &str) -> ToolResult<String> {
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(ToolError::msg(format!(
            "pgbackrest {what} failed: {}{}",
            String::from_utf8_lossy(&out.stderr),
            String::from_utf8_lossy(&out.stdout)
        )))
    }
}

/// Ends the primary's current WAL segment now (as `archive_timeout` would
/// on a quiet primary) and waits until that segment is in the repository
/// (`pg_stat_archiver`); returns its name and how long it took. `None` when
/// it was not archived within `timeout`. Needs a superuser.
pub async fn archive_now(primary_url: &str, timeout: Duration) -> ToolResult<(String, Option<Duration>)> {
    let client = connect(primary_url).await?;
    let segment: String = client.query_one("select pg_walfile_name(pg_switch_wal())", &[]).await?.get(0);
    let started = std::time::Instant::now();
    // Segment names of one timeline sort as their positions do.
    let archived = crate::wait::until(timeout, Duration::from_millis(50), async || {
        let row =
            client.query_one("select coalesce(last_archived_wal, '') >= $1 from pg_stat_archiver", &[&segment]).await?;
        Ok(row.get::<_, bool>(0).then(|| started.elapsed()))
    })
    .await?;
    Ok((segment, archived))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn archive_settings_name_the_config_and_bound_the_timeout() {
        let on = archive_settings(Path::new("/c/pgbackrest.conf"), Path::new("/c/run"), true);
        assert!(on.contains("archive_mode = on\n"));
        assert!(on.contains("--config=/c/pgbackrest.conf --stanza=atelier archive-push %p"));
        assert!(on.contains("archive_timeout = 60\n"));
        assert!(on.contains("unix_socket_directories = '/c/run'"));
        let off = archive_settings(Path::new("/c/pgbackrest.conf"), Path::new("/c/run"), false);
        assert!(off.contains("archive_mode = off\n"));
    }
}
