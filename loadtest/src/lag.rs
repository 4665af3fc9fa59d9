//! Replication lag while a load runs: how long after a commit on the
//! primary each replica has applied it.
//!
//! Every `interval` the sampler bumps the heartbeat on the primary (a
//! replicated commit that queues behind whatever the load committed just
//! before it), notes when the commit returned, and polls each replica every
//! `POLL` until it shows the new beat. The lag of that beat on a replica is
//! the time from the primary's answer to the first poll that saw it: exact
//! to within one poll interval plus a round trip. One beat is in flight at a
//! time, so a lagging replica is sampled less often, never more.

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use atelier_tools::{connect, provision, ToolResult};
use futures_util::future::join_all;

use crate::stats::percentile;

/// How often a replica is asked whether it has the beat yet.
const POLL: Duration = Duration::from_millis(2);
/// A beat a replica has not shown after this long is recorded at this lag.
const BEAT_TIMEOUT: Duration = Duration::from_secs(30);

/// The lags seen on each replica, in microseconds.
pub struct LagReport {
    pub replicas: Vec<(String, Vec<u64>)>,
}

impl fmt::Display for LagReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "| replica | beats | p50 ms | p99 ms | max ms |\n|---|---:|---:|---:|---:|")?;
        for (name, lags) in &self.replicas {
            let mut sorted = lags.clone();
            sorted.sort_unstable();
            let ms = |us: u64| us as f64 / 1000.0;
            writeln!(
                f,
                "| {name} | {} | {:.1} | {:.1} | {:.1} |",
                sorted.len(),
                ms(percentile(&sorted, 50.0)),
                ms(percentile(&sorted, 99.0)),
                ms(sorted.last().copied().unwrap_or(0))
            )?;
        }
        Ok(())
    }
}

/// Samples lag every `interval` until `stop` is set.
pub async fn sample(
    primary_url: String,
    replica_urls: Vec<String>,
    interval: Duration,
    stop: Arc<AtomicBool>,
) -> ToolResult<LagReport> {
    let primary = connect(&primary_url).await?;
    let mut replicas = Vec::new();
    for url in &replica_urls {
        replicas.push(connect(url).await?);
    }
    let mut lags: Vec<Vec<u64>> = vec![Vec::new(); replicas.len()];
    while !stop.load(Ordering::Relaxed) {
        let next = Instant::now() + interval;
        let beat = provision::bump_heartbeat(&primary).await?;
        let committed = Instant::now();
        let waits = replicas.iter().map(|replica| async move {
            loop {
                let seen = provision::heartbeat_seen(replica).await?;
                if seen.is_some_and(|seen| seen >= beat) || committed.elapsed() > BEAT_TIMEOUT {
                    return Ok::<_, atelier_tools::ToolError>(committed.elapsed());
                }
                tokio::time::sleep(POLL).await;
            }
        });
        let seen = join_all(waits).await;
        for (lag, replica_lags) in seen.into_iter().zip(&mut lags) {
            replica_lags.push(u64::try_from(lag?.as_micros()).unwrap_or(u64::MAX));
        }
        tokio::time::sleep_until(next.into()).await;
    }
    let names = (1..=replica_urls.len()).map(|i| format!("replica{i}"));
    Ok(LagReport { replicas: names.zip(lags).collect() })
}
