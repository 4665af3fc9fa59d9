//! Faults injected into the real cluster while the server runs: a replica
//! frozen (every process of that PostgreSQL server stopped with SIGSTOP, as
//! a stuck disk or a paused VM looks), both replicas frozen, the primary
//! frozen, the frozen first host of a multi-host primary URL (a Patroni
//! pair's), a replica killed and restarted, a flood of connections, more
//! requests than the server takes at once, and many cache misses at a
//! door slowed on purpose (read batches). Each test asserts the bounds the
//! service promises (with margins for a shared CI machine; the measured
//! figures are in docs/benchmarks.md), and leaves the cluster running with
//! `atelier check` clean.
//!
//! A binary of its own: freezing a server stops every database on it, and
//! cargo runs test binaries one after another, so no other test sees it. The
//! tests here run one at a time (`serial`).

#[path = "../api/helpers.rs"]
mod helpers;

// The tests, by what fails: a node frozen (frozen.rs); a node killed, more
// clients than the limit, a connection flood, misses read in batches
// (overload.rs).
mod frozen;
mod overload;

use std::net::{SocketAddr, TcpStream};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use atelier_loadtest::client::Server;
use atelier_loadtest::ids::{export_ids, LoadIds};
use atelier_loadtest::stress::{open_loop_step, StepResult, Target};
use atelier_schema::local::{self, Node};
use atelier_server::Config;
use atelier_tools::cluster::{self, LocalCluster};
use atelier_tools::generate::Catalog;
use atelier_tools::load::{self, LoadOptions, Source};
use atelier_tools::{check, connect, provision};

use helpers::{local_cluster, metric, query, request_to, service_urls, spawn_server, Response};

const FAULTS_DB: &str = "atelier_faults";
/// Products in the faults catalog: enough to spread reads over many rows.
const PRODUCTS: i64 = 500;

struct Cluster {
    local: &'static LocalCluster,
    primary: String,
    replicas: Vec<String>,
    ids: Arc<Vec<LoadIds>>,
}

/// The cluster with the faults catalog, set up once.
fn cluster() -> &'static Cluster {
    static CLUSTER: OnceLock<Cluster> = OnceLock::new();
    CLUSTER.get_or_init(|| {
        let local = local_cluster();
        local.up().expect("local cluster starts");
        runtime().block_on(async {
            let (primary, replicas) = cluster::provision_local(local, FAULTS_DB, true).await.expect("faults database");
            let catalog = Source::Generated(Catalog { seed: 11, products: PRODUCTS });
            load::load(&primary, &replicas, catalog, LoadOptions { replace: true, connections: 2 })
                .await
                .expect("faults catalog loads");
            let ids = Arc::new(export_ids(&primary, 5_000, 1).await.expect("ids"));
            Cluster { local, primary, replicas, ids }
        })
    })
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

/// One fault at a time.
fn serial() -> MutexGuard<'static, ()> {
    static SERIAL: Mutex<()> = Mutex::new(());
    SERIAL.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The service's defaults against the faults catalog, on a free port,
/// with the document cache off: these tests are about what the read path
/// does when a database is slow or gone, and a warm cache would answer
/// for it. The cache's own fault has its own test.
fn config() -> Config {
    cluster();
    let mut config = Config::defaults(service_urls(FAULTS_DB));
    config.http.listen = "127.0.0.1:0".parse().unwrap();
    config.http.access_log = false;
    config.cache.cache_bytes = 0;
    config
}

/// Every process of a node stopped (SIGSTOP) until dropped (SIGCONT).
struct Frozen {
    pids: Vec<u32>,
}

impl Frozen {
    fn node(node: Node) -> Frozen {
        // The postmaster comes first, so it forks nothing new once stopped;
        // a backend forked between listing and stopping (a pool opening a
        // connection in the background) is caught by listing again.
        let mut pids = cluster().local.processes(node).expect("node processes");
        signal("-STOP", &pids);
        loop {
            let late: Vec<u32> = cluster()
                .local
                .processes(node)
                .expect("node processes")
                .into_iter()
                .filter(|pid| !pids.contains(pid))
                .collect();
            if late.is_empty() {
                break;
            }
            signal("-STOP", &late);
            pids.extend(late);
        }
        Frozen { pids }
    }
}

impl Drop for Frozen {
    fn drop(&mut self) {
        signal("-CONT", &self.pids);
    }
}

/// Sends a signal to each process; one that has exited meanwhile (a
/// short-lived backend) is skipped. Never panics: it also runs in Drop.
fn signal(which: &str, pids: &[u32]) {
    for pid in pids {
        let _ = std::process::Command::new("kill")
            .arg(which)
            .arg(pid.to_string())
            .stderr(std::process::Stdio::null())
            .status();
    }
}

/// Open-loop load: `rate` requests a second for `seconds`.
fn load_for(addr: SocketAddr, target: Target, rate: u32, seconds: u64) -> StepResult {
    let server = Server::new(addr, Some(helpers::token().to_string()));
    runtime()
        .block_on(open_loop_step(&server, cluster().ids.clone(), target, rate, Duration::from_secs(seconds)))
        .expect("load runs")
}

/// Runs `fault` after `delay` on a thread of its own, while `main` runs.
fn during<T>(delay: Duration, fault: impl FnOnce() + Send + 'static, main: impl FnOnce() -> T) -> T {
    let injected = std::thread::spawn(move || {
        std::thread::sleep(delay);
        fault();
    });
    let result = main();
    injected.join().expect("fault thread");
    result
}

/// Waits until both replicas have applied everything, then requires the
/// read model to equal the write model on every node.
fn assert_clean() {
    let cluster = cluster();
    runtime().block_on(async {
        provision::wait_for_replicas(&cluster.primary, &cluster.replicas, Duration::from_secs(60))
            .await
            .expect("replicas catch up");
        let drift = check::check(&cluster.primary, &cluster.replicas).await.expect("check runs");
        assert!(drift.is_empty(), "the read model drifted: {drift:?}");
    });
}

fn timed(f: impl FnOnce() -> Response) -> (Response, Duration) {
    let started = Instant::now();
    let response = f();
    (response, started.elapsed())
}

/// A counter's value in /metrics.
/// The read path's counters that moved, for a failure message.
fn read_counters(addr: SocketAddr) -> String {
    let text = request_to(addr, "GET", "/metrics", &[], None).text().to_string();
    text.lines()
        .filter(|l| {
            l.starts_with("atelier_read_") || l.starts_with("atelier_replica_") || l.starts_with("atelier_pool_")
        })
        .filter(|l| !l.ends_with(" 0"))
        .collect::<Vec<_>>()
        .join("\n")
}
