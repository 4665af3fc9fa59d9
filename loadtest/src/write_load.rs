//! The write load: the brief's "load the database" step. Each of
//! `concurrency` clients sends its next stock movement when the last one
//! answered (closed loop, as the brief's client did), over its own
//! keep-alive connection.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use atelier_tools::{ToolError, ToolResult};

use crate::client::{Connection, Server};
use crate::ids::LoadIds;
use crate::stats::Recorder;
use crate::stress::Target;

/// The write load: `events` stock movements through the API from
/// `concurrency` clients, each on its own keep-alive connection (closed
/// loop: the brief's client, which rewards low-latency POSTs).
pub async fn write_load(
    server: &Server,
    ids: Arc<Vec<LoadIds>>,
    events: u64,
    concurrency: usize,
) -> ToolResult<WriteLoadReport> {
    let next = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..concurrency.max(1) {
        let (ids, next, server) = (ids.clone(), next.clone(), server.clone());
        let mut connection = Connection::open(&server).await?;
        tasks.spawn(async move {
            let mut recorder = Recorder::default();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= events {
                    return recorder;
                }
                let (method, path, body) = Target::Movement.request(&ids[(i as usize) % ids.len()]);
                let sent = Instant::now();
                let status = connection.send(&method, &path, body).await;
                recorder.record(sent.elapsed(), status);
                if status.is_none() {
                    match Connection::open(&server).await {
                        Ok(fresh) => connection = fresh,
                        Err(_) => return recorder,
                    }
                }
            }
        });
    }
    let mut all = Recorder::default();
    while let Some(done) = tasks.join_next().await {
        all.merge(done.map_err(|e| ToolError::msg(format!("client task: {e}")))?);
    }
    Ok(WriteLoadReport { recorder: all, took: started.elapsed() })
}

/// A finished write load: every answer, and how long it took.
pub struct WriteLoadReport {
    pub recorder: Recorder,
    pub took: Duration,
}

impl WriteLoadReport {
    /// Requests that got no answer or one that is not a correct answer to a
    /// movement (201, or 409 for a refused sale).
    pub fn errors(&self) -> u64 {
        self.recorder.errors(Target::Movement.ok_statuses())
    }
}

impl fmt::Display for WriteLoadReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.recorder.summary();
        let seconds = self.took.as_secs_f64();
        writeln!(f, "statuses: {}", self.recorder.statuses())?;
        write!(
            f,
            "{} requests in {seconds:.1} s: {:.0} requests/s; latency ms mean {:.2} p50 {:.2} p95 {:.2} p99 {:.2} max {:.2}; errors {}",
            s.count,
            s.count as f64 / seconds.max(0.001),
            s.mean_us as f64 / 1e3,
            s.p50_us as f64 / 1e3,
            s.p95_us as f64 / 1e3,
            s.p99_us as f64 / 1e3,
            s.max_us as f64 / 1e3,
            self.errors()
        )
    }
}
