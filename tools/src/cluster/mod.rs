//! The local cluster: one primary and two read replicas run from the
//! machine's PostgreSQL server binaries, in a data directory inside the
//! project (`.cluster/`, ignored by git), on loopback ports.
//!
//! PostgreSQL refuses to run as root, so when `atelier` runs as root every
//! server command runs as the unprivileged `postgres` user instead.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use atelier_schema::local::{self, Node, NODES};
use atelier_schema::tokens::Scope;
use atelier_schema::{roles, Role};

mod host;
use host::{find_server_binaries, locate};
pub use host::{fnv1a, server_user};

use crate::backup;
use crate::db::{ToolError, ToolResult};
use crate::provision;
use crate::secrets::Secrets;

/// Appended to every node's postgresql.conf at initdb time.
const PRIMARY_CONF: &str = include_str!("../../../replication/primary.conf");
const REPLICA_CONF: &str = include_str!("../../../replication/replica.conf");
/// How long provisioning waits for the replicas' initial copy.
const CATCH_UP_TIMEOUT: Duration = Duration::from_secs(120);

/// A handle on the local cluster's directory and the server binaries.
pub struct LocalCluster {
    pub dir: PathBuf,
    bin: PathBuf,
    /// (uid, gid) to run the server as, when we are root.
    run_as: Option<(u32, u32)>,
}

impl LocalCluster {
    /// Finds the server binaries and decides where data lives: `dir` if
    /// given (ATELIER_CLUSTER_DIR), else `<project>/.cluster`. When running as
    /// root and the `postgres` user cannot reach that directory (a checkout
    /// under /root, say), data goes to /var/tmp/atelier-cluster-<hash> instead.
    pub fn discover(project_root: &Path, dir: Option<PathBuf>) -> ToolResult<LocalCluster> {
        let bin = find_server_binaries()?;
        let run_as = server_user()?;
        let dir = locate(project_root, dir, run_as);
        Ok(LocalCluster { dir, bin, run_as })
    }

    /// The secrets (role passwords, development token) of the local
    /// cluster set up from the current directory, or in
    /// `ATELIER_CLUSTER_DIR`, if there is one; needs no server binaries, so
    /// `atelier serve` and the load tools can look on any machine.
    pub fn existing_secrets() -> ToolResult<Option<Secrets>> {
        let dir = std::env::var_os("ATELIER_CLUSTER_DIR").map(Into::into);
        let run_as = server_user().ok().flatten();
        Secrets::read(&Secrets::file(&locate(&std::env::current_dir()?, dir, run_as)))
    }

    /// The role passwords, generated on first use.
    pub fn secrets(&self) -> ToolResult<Secrets> {
        self.prepare_dir()?;
        Secrets::load_or_create(&self.dir)
    }

    /// What the service connects to for database `dbname`: the writer on
    /// the primary and the reader on each replica, with their passwords.
    pub fn service_urls(&self, dbname: &str) -> ToolResult<(String, Vec<String>)> {
        let secrets = self.secrets()?;
        let primary = secrets.fill(&local::service_primary_url(dbname));
        let replicas = local::service_replica_urls(dbname).iter().map(|url| secrets.fill(url)).collect();
        Ok((primary, replicas))
    }

    /// Initialises (first time) and starts every node that is not running.
    /// Idempotent: running nodes are left alone.
    pub fn up(&self) -> ToolResult<()> {
        self.prepare_dir()?;
        let backups = backup::installed();
        for node in NODES {
            let data = self.data_dir(node);
            if !data.join("PG_VERSION").exists() {
                self.initdb(node)?;
            }
            self.write_hba(node)?;
            // The primary archives its WAL with pgbackrest; archive_mode
            // takes a restart, so a running primary whose settings changed
            // (a cluster made before backups, or pgbackrest just installed)
            // restarts once.
            let restart =
                node.role == Role::Primary && self.write_backup_files(&data, backups)? && self.is_running(node)?;
            if restart {
                let out = self.pg_ctl(&["-D", path_str(&data)?, "-m", "fast", "-w", "-t", "60", "restart"])?;
                if !out.status.success() {
                    return Err(ToolError::msg(format!(
                        "{} did not restart with its archive settings: {}",
                        node.name,
                        String::from_utf8_lossy(&out.stderr)
                    )));
                }
                println!("{:<9} restarted with its archive settings", node.name);
                continue;
            }
            if self.is_running(node)? {
                // Picks up pg_hba.conf as written just now.
                self.pg_ctl(&["-D", path_str(&data)?, "reload"])?;
                println!("{:<9} already running on 127.0.0.1:{}", node.name, node.port);
                continue;
            }
            let log = self.dir.join(format!("{}.log", node.name));
            let out = self.pg_ctl(&["-D", path_str(&data)?, "-l", path_str(&log)?, "-w", "-t", "60", "start"])?;
            if !out.status.success() {
                let tail = std::fs::read_to_string(&log).unwrap_or_default();
                let tail: Vec<&str> = tail.lines().rev().take(15).collect();
                return Err(ToolError::msg(format!(
                    "{} did not start (is port {} taken?).\n{}\nlast lines of {}:\n{}",
                    node.name,
                    node.port,
                    String::from_utf8_lossy(&out.stderr),
                    log.display(),
                    tail.into_iter().rev().collect::<Vec<_>>().join("\n")
                )));
            }
            println!("{:<9} started on 127.0.0.1:{} (data {})", node.name, node.port, data.display());
        }
        if backups {
            self.stanza_create()?;
        } else {
            println!("backups   off: pgbackrest is not installed (scripts/ensure-postgres.sh installs it)");
        }
        Ok(())
    }

    /// Stops every node (fast shutdown). Data stays for the next `up`.
    pub fn down(&self) -> ToolResult<()> {
        for node in NODES {
            if !self.is_running(node)? {
                println!("{:<9} not running", node.name);
                continue;
            }
            self.stop_node(node, false)?;
            println!("{:<9} stopped", node.name);
        }
        Ok(())
    }

    /// One line per node: running or not, and where.
    pub fn status(&self) -> ToolResult<bool> {
        let mut all = true;
        for node in NODES {
            let running = self.is_running(node)?;
            all &= running;
            println!(
                "{:<9} {:<8} port {}  data {}",
                node.name,
                if running { "running" } else { "stopped" },
                node.port,
                self.data_dir(node).display()
            );
        }
        Ok(all)
    }

    /// Stops one node: `immediate` is a crash (no checkpoint, the next start
    /// recovers), else a fast shutdown. `up` starts it again.
    pub fn stop_node(&self, node: Node, immediate: bool) -> ToolResult<()> {
        let data = self.data_dir(node);
        let mode = if immediate { "immediate" } else { "fast" };
        let out = self.pg_ctl(&["-D", path_str(&data)?, "-m", mode, "-w", "stop"])?;
        if !out.status.success() {
            return Err(ToolError::msg(format!(
                "{} did not stop: {}",
                node.name,
                String::from_utf8_lossy(&out.stderr)
            )));
        }
        Ok(())
    }

    /// Every process of a running node: the postmaster and its children
    /// (backends, WAL senders, apply workers...). Fault tests stop and
    /// continue them all to freeze the whole server, as a stuck disk or a
    /// paused VM would.
    pub fn processes(&self, node: Node) -> ToolResult<Vec<u32>> {
        let pid_file = self.data_dir(node).join("postmaster.pid");
        let text = std::fs::read_to_string(&pid_file)
            .map_err(|e| ToolError::msg(format!("{} is not running ({}: {e})", node.name, pid_file.display())))?;
        let postmaster: u32 = text
            .lines()
            .next()
            .and_then(|l| l.trim().parse().ok())
            .ok_or_else(|| ToolError::msg(format!("{}: no pid in {}", node.name, pid_file.display())))?;
        let mut pids = vec![postmaster];
        for entry in std::fs::read_dir("/proc")?.flatten() {
            let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else { continue };
            // /proc/<pid>/stat: "pid (comm) state ppid ...": the ppid is the
            // second field after the closing parenthesis.
            let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else { continue };
            let ppid = stat.rsplit_once(')').and_then(|(_, rest)| rest.split_whitespace().nth(1)?.parse::<u32>().ok());
            if ppid == Some(postmaster) {
                pids.push(pid);
            }
        }
        Ok(pids)
    }

    pub fn data_dir(&self, node: Node) -> PathBuf {
        self.dir.join(node.name)
    }

    pub fn is_running(&self, node: Node) -> ToolResult<bool> {
        let data = self.data_dir(node);
        if !data.join("PG_VERSION").exists() {
            return Ok(false);
        }
        // pg_ctl status: 0 running, 3 not running, 4 no accessible data dir.
        Ok(self.pg_ctl(&["-D", path_str(&data)?, "status"])?.status.success())
    }

    fn prepare_dir(&self) -> ToolResult<()> {
        std::fs::create_dir_all(&self.dir)
            .map_err(|e| ToolError::msg(format!("cannot create {}: {e}", self.dir.display())))?;
        self.give_to_server(&self.dir)
    }

    /// Who the servers (and pgbackrest) run as: Some((uid, gid)) of
    /// `postgres` when we are root, None when we run them as ourselves.
    pub fn server_user(&self) -> Option<(u32, u32)> {
        self.run_as
    }

    /// Hands a file or directory we made to the server's user.
    pub(crate) fn give_to_server(&self, path: &Path) -> ToolResult<()> {
        if let Some((uid, gid)) = self.run_as {
            std::os::unix::fs::chown(path, Some(uid), Some(gid))?;
        }
        Ok(())
    }

    /// Who may connect to `node`, and how (written on every `up`): the
    /// operator's `postgres` superuser is trusted on loopback (this is one
    /// machine's cluster, like a laptop's own PostgreSQL); every role of the
    /// service logs in with its password (SCRAM-SHA-256), and only where it
    /// has business: the writer and the replicator on the primary only, the
    /// reader on the replicas only.
    fn write_hba(&self, node: Node) -> ToolResult<()> {
        let service_roles = match node.role {
            Role::Primary => [roles::OWNER, roles::WRITER, roles::REPLICATOR].join(","),
            Role::Replica => [roles::OWNER, roles::READER].join(","),
        };
        // The primary's socket (in the cluster's own run/ directory) is for
        // pgbackrest, which runs as the server's user.
        let hba = format!(
            "# Written by `atelier cluster up` on every start; edits are lost.\n\
             # TYPE  DATABASE  USER  ADDRESS  METHOD\n\
             local   all       postgres                trust\n\
             host    all       postgres  127.0.0.1/32  trust\n\
             host    all       {service_roles}  127.0.0.1/32  scram-sha-256\n"
        );
        let path = self.data_dir(node).join("pg_hba.conf");
        std::fs::write(&path, hba).map_err(|e| ToolError::msg(format!("cannot write {}: {e}", path.display())))?;
        self.give_to_server(&path)
    }

    fn initdb(&self, node: Node) -> ToolResult<()> {
        let data = self.data_dir(node);
        let out = self
            .run("initdb", &["-D", path_str(&data)?, "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-locale"])?;
        if !out.status.success() {
            return Err(ToolError::msg(format!(
                "initdb for {} failed: {}",
                node.name,
                String::from_utf8_lossy(&out.stderr)
            )));
        }
        let role_conf = match node.role {
            Role::Primary => PRIMARY_CONF,
            Role::Replica => REPLICA_CONF,
        };
        // Loopback only, no Unix socket (its default directory may not be
        // writable by us), and trust auth: this cluster is for one machine.
        // 300 connections: the integration tests run many servers at once,
        // each with its pools, and a full run peaked at about 210 backends
        // on the primary (at 200, a test now and then found it full).
        let conf = format!(
            "\n# --- added by atelier cluster up ---\nlisten_addresses = '127.0.0.1'\nport = {}\n\
             unix_socket_directories = ''\nmax_connections = 300\nshared_buffers = 256MB\n{role_conf}",
            node.port
        );
        use std::io::Write;
        let mut file = std::fs::OpenOptions::new().append(true).open(data.join("postgresql.conf"))?;
        file.write_all(conf.as_bytes())?;
        println!("{:<9} initialised in {}", node.name, data.display());
        Ok(())
    }

    pub(crate) fn pg_ctl(&self, args: &[&str]) -> ToolResult<Output> {
        self.run("pg_ctl", args)
    }

    /// Runs a server binary, as `postgres` when we are root.
    fn run(&self, program: &str, args: &[&str]) -> ToolResult<Output> {
        let mut cmd = Command::new(self.bin.join(program));
        cmd.args(args).current_dir(&self.dir).env("LC_ALL", "C");
        if let Some((uid, gid)) = self.run_as {
            cmd.uid(uid).gid(gid).env("HOME", &self.dir);
        }
        cmd.output().map_err(|e| ToolError::msg(format!("cannot run {program}: {e}")))
    }
}

pub(crate) fn path_str(path: &Path) -> ToolResult<&str> {
    path.to_str().ok_or_else(|| ToolError::msg(format!("path is not UTF-8: {}", path.display())))
}

/// Creates (or, with `fresh`, re-creates) database `dbname` on every node
/// of the local cluster: the roles with their passwords first, then the
/// database owned by the owner role and migrated as that role, then each
/// replica's subscription, which logs in to the primary as the replication
/// role. Idempotent without `fresh`. A database left by an older version
/// (not owned by the owner role) is re-created. Returns the primary's and
/// replicas' URLs for tools (the operator's superuser).
/// The development token (secrets.env) is registered in the database too.
pub async fn provision_local(cluster: &LocalCluster, dbname: &str, fresh: bool) -> ToolResult<(String, Vec<String>)> {
    provision::ident(dbname)?;
    let secrets = cluster.secrets()?;
    let primary = local::primary();
    let mut fresh = fresh;
    for node in NODES {
        provision::ensure_roles(&node.url("postgres"), &secrets.pairs()).await?;
        let owner = provision::database_owner(&node.url("postgres"), dbname).await?;
        if owner.is_some_and(|owner| owner != roles::OWNER) && !fresh {
            println!("re-creating database {dbname}: it predates the least-privilege roles (its data is lost)");
            fresh = true;
        }
    }
    if fresh {
        for replica in local::replicas() {
            provision::drop_replica_database(&replica.url("postgres"), &replica.url(dbname), dbname).await?;
        }
        provision::drop_primary_database(&primary.url("postgres"), dbname).await?;
    }
    for node in NODES {
        provision::ensure_database(&node.url("postgres"), dbname).await?;
        provision::grant_catalog_access(&node.url(dbname)).await?;
        provision::migrate(&secrets.fill(&node.url_as(dbname, roles::OWNER)), node.role).await?;
    }
    provision::ensure_publication(&primary.url(dbname)).await?;
    if let Some(token) = secrets.token() {
        crate::tokens::register(&primary.url(dbname), DEVELOPMENT_TOKEN_NAME, token, &Scope::ALL).await?;
    }
    let from_replicas = secrets.fill(&primary.url_as(dbname, roles::REPLICATOR));
    for replica in local::replicas() {
        let sub_name = format!("atelier_{dbname}_{}", replica.name);
        provision::ensure_subscription(&replica.url(dbname), &from_replicas, &sub_name).await?;
    }
    let replica_urls = local::replica_urls(dbname);
    // A slot that fell more than max_slot_wal_keep_size behind is lost for
    // good (a huge load in another catalog of this cluster can do it: every
    // slot decodes all of the cluster's WAL): copy the replicas afresh.
    if provision::lost_slots(&primary.url(dbname)).await? > 0 {
        println!("replicas of {dbname} lost their slots (max_slot_wal_keep_size): resyncing them");
        provision::resync(
            &primary.url(dbname),
            &replica_urls,
            Some(&from_replicas),
            provision::Slot::Create,
            CATCH_UP_TIMEOUT,
        )
        .await?;
    }
    provision::wait_for_replicas(&primary.url(dbname), &replica_urls, CATCH_UP_TIMEOUT).await?;
    Ok((primary.url(dbname), replica_urls))
}

/// The name the local cluster's development token is stored under.
pub const DEVELOPMENT_TOKEN_NAME: &str = "local development (secrets.env)";
