//! Test set-up: once per test binary, start (or find) the local cluster,
//! re-create database `atelier_test` on every node, load the fixture, and
//! run the server on port 0 on a thread of its own. Tests talk to it with a
//! tiny blocking HTTP client and to the databases with plain connections.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::Duration;

// The HTTP client, in a file of its own (beside this one, also for the
// faults binary, which includes this file by path).
#[path = "client.rs"]
mod client;
pub use client::{request_raw, Response};

use atelier_server::{App, Config, DatabaseUrls};
use atelier_tools::cluster::{self, LocalCluster};
use atelier_tools::{connect, provision};

pub const TEST_DB: &str = "atelier_test";
const FIXTURE: &str = include_str!("../fixtures/catalog.sql");

pub struct TestApp {
    pub addr: SocketAddr,
    pub primary: String,
    pub replicas: Vec<String>,
}

static APP: OnceLock<TestApp> = OnceLock::new();
/// Held by tests that add or remove products, and by tests whose answers
/// depend on the whole product list, so they do not see each other's rows.
static CATALOG: Mutex<()> = Mutex::new(());

pub fn catalog_lock() -> MutexGuard<'static, ()> {
    CATALOG.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

pub fn project_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("server/ has a parent")
}

/// The local cluster, found once (`up` is the caller's).
pub fn local_cluster() -> &'static LocalCluster {
    static LOCAL: OnceLock<LocalCluster> = OnceLock::new();
    LOCAL.get_or_init(|| {
        LocalCluster::discover(project_root(), std::env::var_os("ATELIER_CLUSTER_DIR").map(Into::into))
            .expect("PostgreSQL server binaries")
    })
}

/// What the service connects to for `dbname`: the writer and reader roles
/// with the local cluster's passwords, as `atelier serve` does.
pub fn service_urls(dbname: &str) -> DatabaseUrls {
    let (primary_url, replica_urls) = local_cluster().service_urls(dbname).expect("role passwords");
    DatabaseUrls { primary_url, replica_urls }
}

/// The shared test app, started on first use.
pub fn app() -> &'static TestApp {
    APP.get_or_init(|| {
        let cluster = local_cluster();
        cluster.up().expect("local cluster starts");
        let (sender, receiver) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
            runtime.block_on(async move {
                let (primary, replicas) =
                    cluster::provision_local(cluster, TEST_DB, true).await.expect("test database provisioned");
                connect(&primary).await.unwrap().batch_execute(FIXTURE).await.expect("fixture loads");
                provision::wait_for_replicas(&primary, &replicas, Duration::from_secs(60)).await.unwrap();
                let app = App::build(test_config()).await.unwrap();
                sender.send(TestApp { addr: app.address(), primary, replicas }).unwrap();
                app.run_until_stopped(std::future::pending()).await;
            });
        });
        let app = receiver.recv_timeout(Duration::from_secs(180)).expect("test app started");
        wait_ready(app.addr);
        app
    })
}

/// The service's defaults against the test database, on a free port.
pub fn test_config() -> Config {
    let mut config = Config::defaults(service_urls(TEST_DB));
    config.http.listen = "127.0.0.1:0".parse().expect("literal address");
    // The access log writes to the process's stdout, which the test harness
    // does not capture; its own test turns it on.
    config.http.access_log = false;
    config
}

/// How long a fresh server may take to become ready: its first connections
/// to a freshly started cluster, on a loaded 2-core machine, take a while.
const READY_WITHIN: Duration = Duration::from_secs(30);

/// Waits until the server at `addr` answers /readyz with 200, as a balancer
/// would before sending it traffic: a server whose pools are still cold
/// answers its first reads 503 within its deadlines, which is right for it
/// and wrong for a test that means to test something else.
pub fn wait_ready(addr: SocketAddr) {
    let started = std::time::Instant::now();
    while request_to(addr, "GET", "/readyz", &[], None).status != 200 {
        assert!(started.elapsed() < READY_WITHIN, "the server on {addr} is not ready after {READY_WITHIN:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Starts another server with `config` on its own thread and waits until it
/// is ready; returns its address.
pub fn spawn_server(config: Config) -> SocketAddr {
    let addr = spawn_unready_server(config);
    wait_ready(addr);
    addr
}

/// Starts another server with `config` on its own thread; returns its
/// address at once (for servers whose databases are meant to be gone).
pub fn spawn_unready_server(config: Config) -> SocketAddr {
    start_server(config, std::future::pending()).0 .0
}

/// A server on its own thread that runs until `stop` is sent; `thread`
/// ends when the server has returned.
pub struct StoppableServer {
    pub addr: SocketAddr,
    /// The operations listener's address, when the config sets one.
    pub ops: Option<SocketAddr>,
    pub stop: tokio::sync::oneshot::Sender<()>,
    pub thread: std::thread::JoinHandle<()>,
}

pub fn spawn_stoppable_server(config: Config) -> StoppableServer {
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let ((addr, ops), thread) = start_server(config, async {
        let _ = stopped.await;
    });
    wait_ready(addr);
    StoppableServer { addr, ops, stop, thread }
}

/// Builds a server from `config` on a thread of its own (one worker) that
/// runs it until `until` completes; returns its addresses (public, operations)
/// once it listens.
fn start_server(
    config: Config,
    until: impl std::future::Future<Output = ()> + Send + 'static,
) -> ((SocketAddr, Option<SocketAddr>), std::thread::JoinHandle<()>) {
    let (sender, receiver) = std::sync::mpsc::channel();
    let thread = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
        runtime.block_on(async move {
            let app = App::build(config).await.unwrap();
            sender.send((app.address(), app.ops_address())).unwrap();
            app.run_until_stopped(until).await;
        });
    });
    (receiver.recv_timeout(Duration::from_secs(10)).expect("server started"), thread)
}

/// Sends one request to the shared test app.
pub fn request(method: &str, path: &str, headers: &[(&str, &str)], body: Option<&[u8]>) -> Response {
    request_to(app().addr, method, path, headers, body)
}

/// The local cluster's development token (every scope), which
/// `provision_local` registers in the test database: the tests write as a
/// shop that holds it.
pub fn token() -> &'static str {
    static TOKEN: OnceLock<String> = OnceLock::new();
    TOKEN.get_or_init(|| {
        local_cluster().secrets().expect("secrets.env").token().expect("a development token").to_string()
    })
}

/// `Authorization: Bearer <token>`.
pub fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

/// Sends one request on a fresh connection to `addr` and reads the whole
/// response. A write that names no `Authorization` of its own carries the
/// development token (tests of authentication use `request_raw`).
pub fn request_to(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
) -> Response {
    let is_write = matches!(method, "POST" | "PUT" | "PATCH" | "DELETE");
    if is_write && !headers.iter().any(|(name, _)| name.eq_ignore_ascii_case("authorization")) {
        let authorization = bearer(token());
        let mut with_token = headers.to_vec();
        with_token.push(("Authorization", &authorization));
        return request_raw(addr, method, path, &with_token, body);
    }
    request_raw(addr, method, path, headers, body)
}

/// A sku's ledger on the primary, oldest first: (delta, reason).
pub fn ledger(sku_id: i64) -> Vec<(i64, String)> {
    query(
        &app().primary,
        &format!("select delta, coalesce(reason, '') from stock_movement where sku_id = {sku_id} order by id"),
    )
    .iter()
    .map(|r| (r.get(0), r.get(1)))
    .collect()
}

/// The value of a metric of the server at `addr`: `name` is the whole
/// series, labels included (`atelier_replica_up{replica="replica1"}`).
pub fn metric(addr: SocketAddr, name: &str) -> f64 {
    let text = request_to(addr, "GET", "/metrics", &[], None).text().to_string();
    text.lines()
        .find_map(|line| line.strip_prefix(name).and_then(|rest| rest.strip_prefix(' ')))
        .and_then(|value| value.parse().ok())
        .unwrap_or_else(|| panic!("/metrics has no {name}"))
}

pub fn get(path: &str) -> Response {
    request("GET", path, &[], None)
}

/// The header of a JSON request body.
pub const JSON: (&str, &str) = ("Content-Type", "application/json");

/// Sends a JSON body to the shared test app.
pub fn send(method: &str, path: &str, body: &serde_json::Value) -> Response {
    request(method, path, &[JSON], Some(body.to_string().as_bytes()))
}

/// A product body with two features, one of them without a value.
pub fn product_body(name: &str) -> serde_json::Value {
    serde_json::json!({"name": name, "slogan": "s", "description": "d", "category": "Tests", "default_price": "10.5",
           "features": [{"feature": "Sole", "value": "Rubber"}, {"feature": "Lace", "value": null}]})
}

/// Creates a product through the API and returns its id.
pub fn create_product(name: &str) -> i64 {
    let response = send("POST", "/products", &product_body(name));
    assert_eq!(response.status, 201, "{}", response.text());
    response.json()["id"].as_i64().expect("a created product has an id")
}

/// The name of the subscription of `replica` (a connection string) in its
/// database.
pub fn subscription(replica: &str) -> String {
    query(
        replica,
        "select subname::text from pg_subscription
         where subdbid = (select oid from pg_database where datname = current_database())",
    )[0]
    .get(0)
}

/// Runs `f` with a connection to `url` on a throwaway runtime.
pub fn with_db<T>(url: &str, f: impl AsyncFnOnce(&tokio_postgres::Client) -> T) -> T {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let client = connect(url).await.expect("database connection");
        f(&client).await
    })
}

/// Runs SQL on the primary (or any node) and returns the rows.
pub fn query(url: &str, sql: &str) -> Vec<tokio_postgres::Row> {
    with_db(url, async |c| c.query(sql, &[]).await.unwrap_or_else(|e| panic!("{sql}: {e:?}")))
}

/// Waits until both replicas have applied everything the primary committed,
/// and the shared app's document cache has heard every change they
/// announced before that (a cached document is dropped by the replicas'
/// notice, which follows their commit by a moment).
pub fn sync_replicas() {
    let app = app();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime
        .block_on(provision::wait_for_replicas(&app.primary, &app.replicas, Duration::from_secs(30)))
        .expect("replicas catch up");
    sync_cache();
}

/// The sentinel's way to know the cache is caught up: with a sentinel
/// product's document held in the cache, change it and wait until a GET
/// no longer answers the held bytes. Only the replicas' notice of that
/// change drops them (nothing evicts in a test-sized cache), and each
/// replica announces in commit order, so every change committed before it
/// has been heard too.
fn sync_cache() {
    static SENTINEL: OnceLock<i64> = OnceLock::new();
    static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let app = app();
    let id = *SENTINEL.get_or_init(|| {
        query(
            &app.primary,
            "insert into product (name, slogan, description, category, default_price)
             values ('Sync Sentinel', '0', 'Helps the tests know the cache has caught up', 'Tests', 1) returning id",
        )[0]
        .get(0)
    });
    let path = format!("/products/{id}");
    let started = std::time::Instant::now();
    let within = Duration::from_secs(30);
    // Held: the server answers it from the cache.
    while get(&path).header("x-served-by") != Some("cache") {
        assert!(started.elapsed() < within, "the cache never held {path}");
        std::thread::sleep(Duration::from_millis(5));
    }
    let held = get(&path).body;
    let bumped: i64 = query(
        &app.primary,
        &format!("update product set slogan = (slogan::bigint + 1)::text where id = {id} returning slogan::bigint"),
    )[0]
    .get(0);
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime
        .block_on(provision::wait_for_replicas(&app.primary, &app.replicas, Duration::from_secs(30)))
        .expect("replicas catch up");
    while get(&path).body == held {
        assert!(started.elapsed() < within, "the cache never heard of slogan {bumped} of {path}");
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Compares `actual` with golden file `name` in tests/golden/, byte for
/// byte. With UPDATE_GOLDEN=1 the file is rewritten instead.
pub fn assert_golden(name: &str, actual: &[u8]) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden").join(name);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read(&path).unwrap_or_else(|e| panic!("golden {}: {e}", path.display()));
    assert!(
        expected == actual,
        "golden {name} differs\nexpected: {}\nactual:   {}",
        String::from_utf8_lossy(&expected),
        String::from_utf8_lossy(actual)
    );
}
