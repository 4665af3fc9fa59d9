//! Request ids for answers that came without one.

use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};

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
