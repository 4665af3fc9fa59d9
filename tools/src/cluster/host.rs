//! What this machine gives the local cluster: the PostgreSQL server
//! binaries, the user they run as (`postgres` when we are root: PostgreSQL
//! refuses to run as root), and where the cluster's directory can live.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::db::{ToolError, ToolResult};

/// The PostgreSQL server binaries: ATELIER_PG_BIN, else the newest
/// /usr/lib/postgresql/<version>/bin (Debian and Ubuntu), else `pg_config
/// --bindir`.
pub(super) fn find_server_binaries() -> ToolResult<PathBuf> {
    if let Some(dir) = std::env::var_os("ATELIER_PG_BIN") {
        let dir = PathBuf::from(dir);
        if dir.join("postgres").exists() {
            return Ok(dir);
        }
        return Err(ToolError::msg(format!("ATELIER_PG_BIN={} has no postgres binary", dir.display())));
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let version: u32 = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("postgres").exists().then_some((version, bin))
        })
        .collect();
    versions.sort();
    if let Some((version, bin)) = versions.pop() {
        if version >= 15 {
            return Ok(bin);
        }
    }
    if let Ok(out) = Command::new("pg_config").arg("--bindir").output() {
        let bin = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        if out.status.success() && bin.join("postgres").exists() {
            return Ok(bin);
        }
    }
    Err(ToolError::msg(
        "PostgreSQL 15 or newer server binaries were not found.\n\
         On Debian or Ubuntu install them with:\n    sudo apt-get update && sudo apt-get install -y postgresql-15\n\
         (scripts/test.sh and scripts/run.sh do this for you), or point ATELIER_PG_BIN at the directory holding `postgres`.",
    ))
}

/// Who runs the servers: the `postgres` user when we are root, else we.
pub fn server_user() -> ToolResult<Option<(u32, u32)>> {
    if unsafe { libc::geteuid() } == 0 {
        postgres_user().map(Some)
    } else {
        Ok(None)
    }
}

/// uid and gid of the `postgres` user, which runs the servers when we are root.
fn postgres_user() -> ToolResult<(u32, u32)> {
    // SAFETY: getpwnam returns a pointer into static storage or null; we copy
    // the two integers out at once and use it from this thread only.
    let pw = unsafe { libc::getpwnam(c"postgres".as_ptr()) };
    if pw.is_null() {
        return Err(ToolError::msg(
            "running as root, but there is no `postgres` user to run PostgreSQL as \
             (PostgreSQL refuses to run as root). Install postgresql-15, which creates it, \
             or run atelier as an unprivileged user.",
        ));
    }
    let (uid, gid) = unsafe { ((*pw).pw_uid, (*pw).pw_gid) };
    Ok((uid, gid))
}

/// The cluster's directory: `dir` if given (ATELIER_CLUSTER_DIR), else
/// `<project>/.cluster`, or under /var/tmp when running as root and the
/// server user cannot reach the project (a checkout under /root, say).
pub(super) fn locate(project_root: &Path, dir: Option<PathBuf>, run_as: Option<(u32, u32)>) -> PathBuf {
    if let Some(dir) = dir {
        return dir;
    }
    let reachable = match run_as {
        None => true,
        Some((uid, gid)) => {
            Command::new("test").arg("-x").arg(project_root).uid(uid).gid(gid).status().is_ok_and(|s| s.success())
        }
    };
    if reachable {
        project_root.join(".cluster")
    } else {
        PathBuf::from(format!("/var/tmp/atelier-cluster-{:016x}", fnv1a(project_root.as_os_str().as_encoded_bytes())))
    }
}

/// FNV-1a, 64-bit: a stable short name for a directory.
pub fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3))
}
