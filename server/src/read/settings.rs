//! How reads are served: each attempt's deadline, hedging, the whole
//! read's deadline and the primary fallback, read-your-writes' wait,
//! ejecting a failing replica, the largest read batch and the largest page.

use std::time::Duration;

use clap::Args;

use crate::config::{millis, whole, HOUR_MS};

#[derive(Args, Debug, Clone)]
pub struct ReadSettings {
    // A replica answers a primary-key lookup in well under a millisecond;
    // 40 ms means "stuck".
    /// Deadline (ms) of one read attempt on one node, pool wait included; a
    /// replica that misses it is counted as failing and another is tried.
    #[arg(value_name = "MS", long = "read-attempt-timeout-ms", env = "ATELIER_READ_ATTEMPT_TIMEOUT_MS", default_value = "40",
          value_parser = millis(1, HOUR_MS))]
    pub attempt_timeout: Duration,

    // Above the p99 of a healthy read here, so hedges are rare when all is
    // well.
    /// Start a second (hedged) read on another replica when the first has
    /// not answered in this long (ms); 0 turns hedging off.
    #[arg(value_name = "MS", long = "read-hedge-after-ms", env = "ATELIER_READ_HEDGE_AFTER_MS", default_value = "15",
          value_parser = millis(0, HOUR_MS))]
    pub hedge_after: Duration,

    // A hedge is for one slow replica, not for load: none start while the
    // server is saturated.
    /// Hedged reads at most this percentage of all reads (0-100).
    #[arg(long = "read-hedge-percent-max", env = "ATELIER_READ_HEDGE_PERCENT_MAX", default_value = "5",
          value_parser = whole::<u32>(0, 100))]
    pub hedge_percent_max: u32,

    // Starts after the read queue (no deadline runs while a read waits for
    // a slot). 200 ms left a few reads a run of the brief's JMeter plan
    // whose two replica attempts missed 40 ms on the saturated cores and
    // whose fallback to the primary then missed it; 500 none
    // (docs/benchmarks.md).
    /// Deadline (ms) of a whole read (attempts, hedges, fallback); then 503.
    #[arg(value_name = "MS", id = "read_deadline", long = "read-deadline-ms", env = "ATELIER_READ_DEADLINE_MS", default_value = "500",
          value_parser = millis(1, HOUR_MS))]
    pub deadline: Duration,

    /// When no replica answers in time, read the primary's copy of the read
    /// model (marked `X-Served-By: primary`). `false`: answer 503 instead.
    #[arg(long = "read-fallback-primary", env = "ATELIER_READ_FALLBACK_PRIMARY", default_value_t = true,
          action = clap::ArgAction::Set)]
    pub fallback_primary: bool,

    // Replication on one machine catches up in a few milliseconds, so
    // 100 ms covers bursts without making clients wait long.
    /// How long (ms) a read-your-writes GET waits for a replica to reach
    /// the client's `X-Read-After` position before it reads the primary's
    /// read model instead.
    #[arg(value_name = "MS", long = "read-after-wait-ms", env = "ATELIER_READ_AFTER_WAIT_MS", default_value = "100",
          value_parser = millis(0, HOUR_MS))]
    pub after_wait: Duration,

    /// Consecutive failed or timed-out attempts before a replica is taken
    /// out of rotation (then probed until it answers).
    #[arg(long, env = "ATELIER_EJECT_AFTER_FAILURES", default_value = "3", value_parser = whole::<u32>(1, 1_000_000))]
    pub eject_after_failures: u32,

    /// How often (ms) an ejected replica is probed.
    #[arg(value_name = "MS", long = "probe-interval-ms", env = "ATELIER_PROBE_INTERVAL_MS", default_value = "500",
          value_parser = millis(1, HOUR_MS))]
    pub probe_interval: Duration,

    // Misses that arrive while a batch waits at the read door leave with
    // it as one statement (read/batch.rs). 32 primary-key lookups cost a
    // replica little more than one (docs/benchmarks.md); a batch's attempt
    // has a deadline of its own (below).
    /// Most product documents of one kind read in one statement; 1 turns
    /// read batching off (each miss reads alone).
    #[arg(long, env = "ATELIER_READ_BATCH_MAX", default_value = "32", value_parser = whole::<usize>(1, 10_000))]
    pub batch_max: usize,

    // A batch is one statement for up to 32 documents: on a replica whose
    // cores are shared with the load it takes longer than one lookup, and
    // an attempt that misses its deadline is retried elsewhere and counts
    // against the replica. Under the brief's JMeter plan at 1M, 40 ms for
    // every batch left 223-636 attempts a run timed out and 49-178 reads
    // sent to the primary; 100 ms, 124-151 and 3-9 (docs/benchmarks.md).
    /// Deadline (ms) of one attempt of a full read batch
    /// (ATELIER_READ_BATCH_MAX documents); a smaller batch's lies in
    /// proportion between ATELIER_READ_ATTEMPT_TIMEOUT_MS (one document)
    /// and this.
    #[arg(value_name = "MS", long = "read-batch-attempt-timeout-ms", env = "ATELIER_READ_BATCH_ATTEMPT_TIMEOUT_MS",
          default_value = "100", value_parser = millis(1, HOUR_MS))]
    pub batch_attempt_timeout: Duration,

    // The contract fixes 1000; products_page() takes it as an integer.
    /// Largest `count` accepted by GET /products.
    #[arg(long, env = "ATELIER_PAGE_COUNT_MAX", default_value = "1000", value_parser = whole::<u32>(1, i32::MAX as u64))]
    pub page_count_max: u32,
}

impl ReadSettings {
    /// The deadline of one attempt of a read of `documents` documents: one
    /// document's, growing in proportion to a full batch's (never below
    /// one document's).
    pub fn attempt_timeout_for(&self, documents: usize) -> Duration {
        if documents <= 1 || self.batch_max <= 1 {
            return self.attempt_timeout;
        }
        let extra = self.batch_attempt_timeout.saturating_sub(self.attempt_timeout);
        let share = (documents.min(self.batch_max) - 1) as f64 / (self.batch_max - 1) as f64;
        self.attempt_timeout + extra.mul_f64(share)
    }

    /// When a hedge starts; None when hedging is off.
    pub fn hedging(&self) -> Option<Duration> {
        (!self.hedge_after.is_zero()).then_some(self.hedge_after)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use crate::config::Config;

    #[test]
    fn a_batch_attempt_deadline_grows_with_the_batch() {
        let mut read = Config::from_flags(&[]).expect("the defaults parse").read;
        read.attempt_timeout = Duration::from_millis(40);
        read.batch_attempt_timeout = Duration::from_millis(100);
        read.batch_max = 31;
        let ms = |read: &super::ReadSettings, n| read.attempt_timeout_for(n).as_millis();
        let sizes = [0, 1, 16, 31, 500].map(|n| ms(&read, n));
        assert_eq!(sizes, [40, 40, 70, 100, 100]);
        // Batching off, or a batch deadline below one read's: one read's.
        read.batch_max = 1;
        assert_eq!(ms(&read, 31), 40);
        read.batch_max = 31;
        read.batch_attempt_timeout = Duration::from_millis(10);
        assert_eq!(ms(&read, 31), 40);
    }
}
