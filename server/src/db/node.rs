//! One database node as the service sees it: its pool, and its health, so
//! that a slow or dead node is skipped instead of waited for.
//!
//! - `in_flight` counts this node's requests now running; reads go to the
//!   replica with the fewest, so a slow replica gets less.
//! - `failures` counts consecutive failed or timed-out attempts; at the
//!   configured number the node is ejected (skipped by reads) and probed in
//!   the background until it answers again.
//! - A `Checkout` is a pooled connection in use. If it is dropped while an
//!   exchange is under way (a deadline expired, a hedge lost), the
//!   connection may still have a query running on it, so it is taken out of
//!   the pool rather than handed to the next request.
//! - A connection is never opened only within one request's deadline: a
//!   request gives up after its attempt deadline, but opening a connection
//!   can take longer than that on a loaded machine, and cut-off opens never
//!   finish, so a drained pool would stay empty. Whenever a connection
//!   leaves the pool, or a checkout timed out opening one, `refill` opens
//!   one in the background with the pool's full connect timeout.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use deadpool_postgres::{Object, Pool, PoolError, TimeoutType, Timeouts};

use crate::error::ApiError;

/// Why no connection was checked out.
pub(crate) enum CheckoutError {
    /// Every connection of this server's pool was in use for the whole wait
    /// (or opening one took it all).
    Busy,
    /// The node refused, failed or timed out opening a connection.
    Node(ApiError),
}

impl From<CheckoutError> for ApiError {
    fn from(error: CheckoutError) -> ApiError {
        match error {
            CheckoutError::Busy => ApiError::Busy("every pooled connection stayed busy".into()),
            CheckoutError::Node(error) => error,
        }
    }
}

/// A database node: the primary or one replica.
pub(crate) struct Node {
    /// "primary", "replica1", ...: in logs, /readyz, /metrics, X-Served-By.
    pub name: &'static str,
    pub pool: Pool,
    in_flight: AtomicUsize,
    failures: AtomicU32,
    ejected: AtomicBool,
    /// Background opens under way (see the module comment).
    refilling: Arc<AtomicUsize>,
    /// Shared, pipelined connections for reads, when configured.
    pub pipelines: Option<super::Pipelines>,
}

/// Counts a request on a node while it lives (reads that do not check out a
/// pooled connection).
pub(crate) struct InFlight<'a>(&'a Node);

impl<'a> InFlight<'a> {
    pub fn new(node: &'a Node) -> InFlight<'a> {
        node.in_flight.fetch_add(1, Ordering::Relaxed);
        InFlight(node)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Background opens at once per node.
const REFILLS_MAX: usize = 4;

impl Node {
    pub fn new(name: &'static str, pool: Pool) -> Node {
        Node {
            name,
            pool,
            in_flight: AtomicUsize::new(0),
            failures: AtomicU32::new(0),
            ejected: AtomicBool::new(false),
            refilling: Arc::new(AtomicUsize::new(0)),
            pipelines: None,
        }
    }

    /// A pooled connection, waiting for a free one and opening a new one
    /// each at most `within`.
    pub async fn checkout(&self, within: Duration) -> Result<Checkout<'_>, CheckoutError> {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        // The guard exists before the wait, so a cancelled wait still
        // decrements in_flight.
        let mut checkout = Checkout { node: self, client: None, busy: false };
        let timeouts = Timeouts { wait: Some(within), create: Some(within), recycle: Some(within) };
        match self.pool.timeout_get(&timeouts).await {
            Ok(client) => {
                checkout.client = Some(client);
                Ok(checkout)
            }
            // Every pooled connection was busy, or opening one took the whole
            // wait: this server is saturated, which says nothing certain
            // about the node (a stuck node shows in the exchanges on the
            // connections it already has, and in hedges it loses).
            Err(PoolError::Timeout(TimeoutType::Wait)) => Err(CheckoutError::Busy),
            Err(PoolError::Timeout(TimeoutType::Create)) => {
                self.refill();
                Err(CheckoutError::Busy)
            }
            Err(error) => Err(CheckoutError::Node(ApiError::from(error))),
        }
    }

    /// Opens up to `count` connections now (best effort, within `within`),
    /// so the first requests do not pay for them, or time out opening them
    /// under a burst.
    pub async fn warm(&self, count: usize, within: Duration) {
        let checkouts = (0..count).map(|_| self.checkout(within));
        let opened = futures_util::future::join_all(checkouts).await;
        drop(opened);
    }

    /// Opens a connection in the background, with the pool's own (full)
    /// timeouts, and leaves it idle in the pool. At most REFILLS_MAX at
    /// once; nothing when the pool is full or no runtime is running.
    pub fn refill(&self) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else { return };
        let status = self.pool.status();
        if status.size >= status.max_size {
            return;
        }
        if self.refilling.fetch_add(1, Ordering::Relaxed) >= REFILLS_MAX {
            self.refilling.fetch_sub(1, Ordering::Relaxed);
            return;
        }
        let (pool, refilling) = (self.pool.clone(), self.refilling.clone());
        runtime.spawn(async move {
            drop(pool.get().await);
            refilling.fetch_sub(1, Ordering::Relaxed);
        });
    }

    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Relaxed)
    }

    pub fn is_ejected(&self) -> bool {
        self.ejected.load(Ordering::Relaxed)
    }

    /// An attempt answered: the node is healthy.
    pub fn record_success(&self) {
        self.failures.store(0, Ordering::Relaxed);
        self.ejected.store(false, Ordering::Relaxed);
    }

    /// An attempt failed or timed out. Returns true if this failure ejected
    /// the node.
    pub fn record_failure(&self, eject_after: u32) -> bool {
        let failures = self.failures.fetch_add(1, Ordering::Relaxed) + 1;
        failures >= eject_after && !self.ejected.swap(true, Ordering::Relaxed)
    }
}

/// A connection checked out of a node's pool.
pub(crate) struct Checkout<'a> {
    node: &'a Node,
    client: Option<Object>,
    /// An exchange with the server is under way.
    busy: bool,
}

impl Checkout<'_> {
    /// Runs one exchange with the server. If the returned future is dropped
    /// before it completes, the connection leaves the pool with the guard.
    pub async fn exchange<T>(
        &mut self,
        f: impl AsyncFnOnce(&mut Object) -> Result<T, ApiError>,
    ) -> Result<T, ApiError> {
        // A checkout holds its connection from checkout() until it is dropped.
        let Some(client) = self.client.as_mut() else {
            return Err(ApiError::internal("a checkout without its connection"));
        };
        self.busy = true;
        let result = f(client).await;
        self.busy = false;
        result
    }
}

impl Drop for Checkout<'_> {
    fn drop(&mut self) {
        self.node.in_flight.fetch_sub(1, Ordering::Relaxed);
        if self.busy {
            if let Some(client) = self.client.take() {
                // Detach it from the pool: it closes when dropped here,
                // and another is opened in the background.
                drop(Object::take(client));
                self.node.refill();
            }
        }
    }
}
