//! The access log: one line per request on standard output, in logfmt:
//!
//! ```text
//! access request_id=5f3a9c21-1042 method=GET route=/products/:id status=200 latency_us=812 node=replica1
//! ```
//!
//! The request path only formats the line and hands it to a bounded
//! channel; a thread of its own writes lines out in batches. A line that
//! finds the channel full is dropped and counted
//! (`atelier_access_log_dropped_total`), so logging never slows a request.

use std::io::Write;
use std::time::Duration;

use tokio::sync::mpsc;

use crate::metrics::Counter;
use crate::state::AppState;

/// Lines waiting for the writer; at 10,000 requests/s, a second's worth.
pub const CHANNEL_LINES: usize = 10_000;
/// Lines written per batch at most.
const BATCH_LINES: usize = 512;

/// One request's line.
pub struct Line<'a> {
    pub request_id: &'a str,
    pub method: &'a str,
    pub route: &'a str,
    pub status: u16,
    pub latency: Duration,
    pub node: &'a str,
}

pub fn record(state: &AppState, line: Line<'_>) {
    let Some(sender) = &state.access_log else { return };
    let text = format!(
        "access request_id={} method={} route={} status={} latency_us={} node={}\n",
        line.request_id,
        line.method,
        line.route,
        line.status,
        line.latency.as_micros(),
        line.node
    );
    if sender.try_send(text).is_err() {
        state.metrics.count(Counter::AccessLogDropped);
    }
}

/// Writes lines to standard output until every sender is gone.
pub fn write_lines(mut lines: mpsc::Receiver<String>) {
    let stdout = std::io::stdout();
    while let Some(first) = lines.blocking_recv() {
        let mut out = stdout.lock();
        let _ = out.write_all(first.as_bytes());
        for _ in 0..BATCH_LINES {
            match lines.try_recv() {
                Ok(line) => {
                    let _ = out.write_all(line.as_bytes());
                }
                Err(_) => break,
            }
        }
        let _ = out.flush();
    }
}
