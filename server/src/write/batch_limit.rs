//! How many movements the next batch may take, from how long batches take.
//!
//! A batch that misses the write deadline fails every movement in it, so a
//! slow batch fails far more requests than a slow single write would (the
//! first JMeter run on a cold 1,000,000-product catalog lost 84 movements
//! that way: three batches of about 28 whose documents were rebuilt from
//! disk). The limit keeps a batch's expected run time within
//! `ATELIER_MOVEMENT_BATCH_TARGET_MS`, a fraction of the deadline:
//!
//! - each finished batch gives a cost per movement (its time over its
//!   size); the estimate takes a higher cost at once and a lower one a
//!   quarter at a time, so the limit falls at the first slow batch and
//!   rises over several fast ones;
//! - the limit is the target over that cost, between 1 and
//!   `ATELIER_MOVEMENT_BATCH_MAX`, and at most twice the limit before it,
//!   so after a start or a slow spell the batches grow 8, 16, 32… as
//!   they prove fast, instead of jumping to the maximum.
//!
//! The lanes share one limit; they update it without a lock (a lost update
//! only delays a step of this estimate).

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::time::Duration;

/// The limit before any batch has been measured: small enough that a first
/// batch on cold caches stays far inside the deadline.
const LIMIT_INITIAL: usize = 8;

pub(crate) struct BatchLimit {
    target: Duration,
    max: usize,
    limit: AtomicUsize,
    /// Nanoseconds per movement, as estimated; 0 before the first batch.
    cost_ns: AtomicU64,
}

impl BatchLimit {
    pub fn new(target: Duration, max: usize) -> BatchLimit {
        let max = max.max(1);
        BatchLimit { target, max, limit: AtomicUsize::new(LIMIT_INITIAL.min(max)), cost_ns: AtomicU64::new(0) }
    }

    /// The most movements the next batch may take.
    pub fn get(&self) -> usize {
        self.limit.load(Relaxed)
    }

    /// A batch of `size` movements took `took` (from its door to its
    /// answer, or to its deadline when it missed it).
    pub fn observe(&self, size: usize, took: Duration) {
        if size == 0 {
            return;
        }
        let sample = u64::try_from(took.as_nanos() / size as u128).unwrap_or(u64::MAX).max(1);
        let before = self.cost_ns.load(Relaxed);
        let cost = if before == 0 || sample >= before { sample } else { before - (before - sample) / 4 };
        self.cost_ns.store(cost, Relaxed);
        let fits = usize::try_from(self.target.as_nanos() / u128::from(cost)).unwrap_or(usize::MAX);
        let grown = self.get().saturating_mul(2);
        self.limit.store(fits.min(grown).clamp(1, self.max), Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn starts_small_and_doubles_while_batches_are_fast() {
        let limit = BatchLimit::new(100 * MS, 64);
        assert_eq!(limit.get(), 8);
        // 0.5 ms a movement: 200 would fit, but the limit only doubles.
        for expected in [16, 32, 64, 64] {
            limit.observe(limit.get(), limit.get() as u32 * MS / 2);
            assert_eq!(limit.get(), expected);
        }
    }

    #[test]
    fn one_slow_batch_shrinks_the_limit_to_what_fits_the_target() {
        let limit = BatchLimit::new(100 * MS, 64);
        for _ in 0..4 {
            limit.observe(limit.get(), MS);
        }
        assert_eq!(limit.get(), 64);
        // 28 movements in 900 ms (cold documents): 32 ms each, 3 fit.
        limit.observe(28, 900 * MS);
        assert_eq!(limit.get(), 3);
    }

    #[test]
    fn the_limit_recovers_over_several_fast_batches_not_one() {
        let limit = BatchLimit::new(100 * MS, 64);
        limit.observe(8, 8 * 40 * MS); // 40 ms a movement: 2 fit
        assert_eq!(limit.get(), 2);
        limit.observe(2, 2 * MS); // 1 ms: the estimate falls a quarter of the way
        assert_eq!(limit.get(), 3, "30.25 ms a movement: 3 fit");
        let mut steps = 1;
        while limit.get() < 64 {
            limit.observe(limit.get(), limit.get() as u32 * MS);
            steps += 1;
            assert!(steps < 30, "the limit came back: {}", limit.get());
        }
        assert!(steps > 3, "it took {steps} fast batches to come back");
    }

    #[test]
    fn stays_within_one_and_the_maximum() {
        let limit = BatchLimit::new(10 * MS, 4);
        assert_eq!(limit.get(), 4, "the maximum caps the initial limit");
        limit.observe(4, 40 * Duration::from_secs(1));
        assert_eq!(limit.get(), 1);
        limit.observe(0, Duration::ZERO);
        assert_eq!(limit.get(), 1, "an empty batch tells nothing");
        for _ in 0..40 {
            limit.observe(1, Duration::from_nanos(1));
        }
        assert_eq!(limit.get(), 4);
    }
}
