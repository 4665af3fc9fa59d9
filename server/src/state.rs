//! What every request handler can reach: the configuration, the database
//! nodes, the metrics, the in-flight limit, request ids, and the access
//! log's channel. Built once by `App::build` and shared behind an `Arc`.

use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::{mpsc, Semaphore};

use crate::config::Config;
use crate::db::Pools;
use crate::metrics::Metrics;

pub(crate) struct AppState {
    pub config: Config,
    pub pools: Pools,
    pub metrics: Metrics,
    /// Slots for requests in flight (`ATELIER_INFLIGHT_MAX`).
    pub inflight: Semaphore,
    /// Lines for the access log's writer; None when it is off.
    pub access_log: Option<mpsc::Sender<String>>,
    pub request_ids: RequestIds,
}

/// Request ids: a prefix random per process and a counter, e.g.
/// `5f3a9c21-1042`: unique across servers behind one balancer, and cheap.
pub(crate) struct RequestIds {
    prefix: u32,
    next: AtomicU64,
}

impl RequestIds {
    pub fn new() -> RequestIds {
        let random = std::collections::hash_map::RandomState::new().build_hasher().finish();
        RequestIds { prefix: random as u32, next: AtomicU64::new(1) }
    }

    pub fn next(&self) -> String {
        format!("{:08x}-{}", self.prefix, self.next.fetch_add(1, Ordering::Relaxed))
    }
}
