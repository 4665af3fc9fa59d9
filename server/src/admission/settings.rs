//! How many requests use the databases at once, and how the rest wait.

use std::time::Duration;

use clap::Args;

use super::Settings;
use crate::config::{millis, whole, HOUR_MS};

#[derive(Args, Debug, Clone)]
pub struct AdmissionSettings {
    // The rest wait in the read queue, where no deadline runs. Two
    // replicas with two pipelined connections each: 8 keeps them busy, and
    // more only queue inside PostgreSQL while the 40 ms attempt deadlines
    // run, which ejects healthy replicas and pushes reads to the primary.
    // Measured with the brief's JMeter plan on this 2-core machine
    // (docs/benchmarks.md): 128 (one shared limit) 1.8% errors; 16 a few
    // deadline expiries; 8 none.
    /// Reads using the replicas (or the primary's read model) at once;
    /// answers from memory (the cache, the page, operations) never take a slot.
    #[arg(long, env = "ATELIER_READ_INFLIGHT_MAX", default_value = "8", value_parser = whole::<usize>(1, 1_000_000))]
    pub read_inflight_max: usize,

    // The write pool's size. Writes wait first come, first served, for at
    // most their deadline, and are never refused by CoDel: a checkout's
    // movement is worth waiting for, and the writers of one product
    // serialise on its lock anyway. (8 measured fewer errors in the brief's
    // JMeter plan, but the 32 racing writers of the concurrency test then
    // waited past their deadlines: docs/benchmarks.md.)
    /// Writes using the primary at once; the rest wait in the write queue.
    #[arg(long, env = "ATELIER_WRITE_INFLIGHT_MAX", default_value = "16", value_parser = whole::<usize>(1, 1_000_000))]
    pub write_inflight_max: usize,

    // Long enough for a burst of closed-loop clients (the brief's JMeter
    // plan keeps 320 busy, and its reads waited up to 1 s at the door on
    // this 2-core machine), short against a storefront client's timeout.
    /// The longest (ms) a request waits for a slot while the queue drains; then 503.
    #[arg(value_name = "MS", long = "queue-wait-ms", env = "ATELIER_QUEUE_WAIT_MS", default_value = "5000", value_parser = millis(0, HOUR_MS))]
    pub queue_wait: Duration,

    // When the shortest wait over a whole interval stays above it, the
    // queue is standing (overload): newcomers wait at most this long,
    // newest first. 320 closed-loop clients on this machine's two cores
    // (JMeter and three PostgreSQL servers on the same cores) stand at up
    // to a few hundred ms, up to 1 s at times: 100, 300 and 500 refused some
    // of them (500: 0 to 145 refusals a run, every one a waiter starved by
    // the LIFO order); 1 s none (docs/benchmarks.md). A closed-loop client
    // refused only asks again, so refusing it buys no capacity.
    /// CoDel's target (ms): a queue whose shortest wait stays above it for a
    /// whole interval is overloaded (newcomers wait at most this, newest first).
    #[arg(value_name = "MS", long = "queue-target-ms", env = "ATELIER_QUEUE_TARGET_MS", default_value = "1000",
          value_parser = millis(0, HOUR_MS))]
    pub queue_target: Duration,

    /// CoDel's interval (ms): how long a queue must stand before it counts as overload.
    #[arg(value_name = "MS", long = "queue-interval-ms", env = "ATELIER_QUEUE_INTERVAL_MS", default_value = "1000",
          value_parser = millis(1, HOUR_MS))]
    pub queue_interval: Duration,

    /// Requests that may wait for a slot at once; more are refused at once.
    #[arg(long, env = "ATELIER_QUEUE_MAX", default_value = "20000", value_parser = whole::<usize>(0, 100_000_000))]
    pub queue_max: usize,
}

impl AdmissionSettings {
    /// The read queue's settings: CoDel with ATELIER_QUEUE_TARGET_MS.
    pub(crate) fn read(&self) -> Settings {
        Settings {
            limit: self.read_inflight_max,
            target: self.queue_target,
            interval: self.queue_interval,
            wait_max: self.queue_wait,
            queue_max: self.queue_max,
        }
    }

    /// The write queue's: first come, first served, never refused for a
    /// standing queue; a write waits at most half its deadline, so that
    /// the wait and the write together fit in `write_deadline`
    /// (write::within_deadline).
    pub(crate) fn write(&self, write_deadline: Duration) -> Settings {
        Settings {
            limit: self.write_inflight_max,
            target: Duration::MAX,
            interval: self.queue_interval,
            wait_max: write_deadline / 2,
            queue_max: self.queue_max,
        }
    }
}
