//! How writes are bounded in time, and how stock movements are batched.

use std::time::Duration;

use clap::Args;

use crate::config::{micros, millis, whole, HOUR_MS};

#[derive(Args, Debug, Clone)]
pub struct WriteSettings {
    // Then 503 with the outcome unknown: the client retries with the same
    // Idempotency-Key.
    /// Deadline (ms) of a whole write, retries included; then 503.
    #[arg(value_name = "MS", id = "write_deadline", long = "write-deadline-ms", env = "ATELIER_WRITE_DEADLINE_MS", default_value = "1000",
          value_parser = millis(1, HOUR_MS))]
    pub deadline: Duration,

    /// Stock movements (without Idempotency-Key) sent together in one
    /// transaction at most (write/batch.rs); 1: each alone.
    #[arg(long, env = "ATELIER_MOVEMENT_BATCH_MAX", default_value = "64", value_parser = whole::<usize>(1, 10_000))]
    pub movement_batch_max: usize,

    // While they run, new movements queue and leave together in the next
    // one (natural batching). Each holds a primary connection while its
    // batch runs: more lanes than the write pool's connections wait for one.
    /// Batches of movements in flight at once (each takes one primary connection).
    #[arg(long, env = "ATELIER_MOVEMENT_BATCH_LANES", default_value = "4", value_parser = whole::<usize>(1, 10_000))]
    pub movement_batch_lanes: usize,

    // 0: a batch leaves at once, no added latency when it is quiet.
    /// Microseconds a batch waits for more movements after its first; 0: none.
    #[arg(value_name = "US", long = "movement-batch-wait-us", env = "ATELIER_MOVEMENT_BATCH_WAIT_US", default_value = "0",
          value_parser = micros(0, 1_000_000))]
    pub movement_batch_wait: Duration,

    // write/batch_limit.rs: when batches run slow, fewer movements go in
    // each, so one that misses the write deadline fails few. A tenth of the
    // deadline: warm batches of the maximum take a few milliseconds
    // (docs/benchmarks.md), so only a slow primary or cold documents bring
    // the limit down. At most the write deadline (Config::validate).
    /// Milliseconds a batch of movements is sized to run in: slow batches
    /// shrink the next ones (at most ATELIER_MOVEMENT_BATCH_MAX).
    #[arg(value_name = "MS", long = "movement-batch-target-ms", env = "ATELIER_MOVEMENT_BATCH_TARGET_MS", default_value = "100",
          value_parser = millis(1, HOUR_MS))]
    pub movement_batch_target: Duration,
}
