//! The access log: one line per request on standard output, in logfmt:
//!
//! ```text
//! access request_id=5f3a9c21-1042 method=GET route=/products/:id status=200 latency_us=812 node=replica1
//! ```
//!
//! The request path only formats the line and hands it to a bounded
//! channel; a thread of its own writes lines out in batches, at most
//! GATHER after they were sent. A line that
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
/// How long lines gather after a batch that did not fill (CHANNEL_LINES
/// holds 10 ms of a million requests a second).
const GATHER: Duration = Duration::from_millis(10);

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

/// Writes lines to standard output until every sender is gone: each batch
/// in one write (standard output is line-buffered, which would make a
/// system call of every line). After a batch that did not fill, the writer
/// lets lines gather for GATHER: a sender that finds no writer waiting on
/// the channel wakes none, where a wake per request cost the request path
/// more than formatting its line (docs/benchmarks.md, issue 26).
pub fn write_lines(mut lines: mpsc::Receiver<String>) {
    let stdout = std::io::stdout();
    let mut batch = Vec::with_capacity(BATCH_LINES * 128);
    while let Some(first) = lines.blocking_recv() {
        batch.extend_from_slice(first.as_bytes());
        let mut taken = 1;
        while taken < BATCH_LINES {
            match lines.try_recv() {
                Ok(line) => batch.extend_from_slice(line.as_bytes()),
                Err(_) => break,
            }
            taken += 1;
        }
        {
            let mut out = stdout.lock();
            let _ = out.write_all(&batch);
            let _ = out.flush();
        }
        batch.clear();
        if taken < BATCH_LINES {
            std::thread::sleep(GATHER);
        }
    }
}
