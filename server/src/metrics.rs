//! Request metrics, kept in arrays of atomics:
//! recording a request takes no lock and allocates nothing. Routes are
//! slots numbered by the HTTP layer's route table, which hands its labels
//! to `Metrics::new`; the last slot counts paths that matched no route.

use atelier_exposition::{labels, Exposition};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

/// Every status the server sends; any other is counted in the last slot
/// (the 0) and rendered as status="other".
const STATUSES: [u16; 17] = [200, 201, 204, 304, 400, 401, 403, 404, 405, 409, 413, 415, 422, 429, 500, 503, 0];
/// Latency histogram bucket upper bounds, in seconds.
const BUCKETS_SECONDS: [f64; 12] = [0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0];

#[derive(Default)]
struct RouteStats {
    by_status: [AtomicU64; STATUSES.len()],
    buckets: [AtomicU64; BUCKETS_SECONDS.len()],
    count: AtomicU64,
    sum_micros: AtomicU64,
}

/// The service's event counters: name and help of each, in /metrics order.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Counter {
    NotModified,
    DocumentsSent,
    ReadAfterFallback,
    ReadRetry,
    ReadHedge,
    ReadHedgeSkipped,
    ReadAttemptTimeout,
    PoolWaitTimeout,
    ReadDeadlineExpiry,
    ReadFallbackPrimary,
    ReplicaEjected,
    ReplicaRevived,
    WriteRetry,
    WriteDeadlineExpiry,
    MovementBatch,
    MovementBatched,
    ReadBatch,
    ReadBatched,
    Shed,
    AccessLogDropped,
    AuthMissing,
    AuthInvalid,
    AuthForbidden,
    AuthLimited,
}

impl Counter {
    const ALL: [Counter; 24] = [
        Counter::NotModified,
        Counter::DocumentsSent,
        Counter::ReadAfterFallback,
        Counter::ReadRetry,
        Counter::ReadHedge,
        Counter::ReadHedgeSkipped,
        Counter::ReadAttemptTimeout,
        Counter::PoolWaitTimeout,
        Counter::ReadDeadlineExpiry,
        Counter::ReadFallbackPrimary,
        Counter::ReplicaEjected,
        Counter::ReplicaRevived,
        Counter::WriteRetry,
        Counter::WriteDeadlineExpiry,
        Counter::MovementBatch,
        Counter::MovementBatched,
        Counter::ReadBatch,
        Counter::ReadBatched,
        Counter::Shed,
        Counter::AccessLogDropped,
        Counter::AuthMissing,
        Counter::AuthInvalid,
        Counter::AuthForbidden,
        Counter::AuthLimited,
    ];

    fn describe(self) -> (&'static str, &'static str) {
        match self {
            Counter::NotModified => {
                ("atelier_etag_hits", "Catalog GETs answered 304 because If-None-Match matched (client cache hits).")
            }
            Counter::DocumentsSent => {
                ("atelier_etag_misses", "Catalog GETs answered 200 with the document (client cache misses).")
            }
            Counter::ReadAfterFallback => (
                "atelier_read_after_fallbacks",
                "Read-your-writes GETs served from the primary because no replica caught up in time.",
            ),
            Counter::ReadRetry => {
                ("atelier_read_retries", "Read attempts started on another replica after one failed or timed out.")
            }
            Counter::ReadHedgeSkipped => (
                "atelier_read_hedges_skipped",
                "Hedges not started: over the hedge budget, or the server saturated (slowness that is ours).",
            ),
            Counter::ReadHedge => {
                ("atelier_read_hedges", "Second read attempts started because the first was slow (hedges).")
            }
            Counter::ReadAttemptTimeout => (
                "atelier_read_attempt_timeouts",
                "Read attempts that missed their deadline (ATELIER_READ_ATTEMPT_TIMEOUT_MS, a batch's longer).",
            ),
            Counter::PoolWaitTimeout => (
                "atelier_pool_wait_timeouts",
                "Attempts that found every pooled connection busy for their whole deadline.",
            ),
            Counter::ReadDeadlineExpiry => {
                ("atelier_read_deadline_expiries", "Reads that missed ATELIER_READ_DEADLINE_MS (answered 503).")
            }
            Counter::ReadFallbackPrimary => (
                "atelier_read_fallbacks",
                "Reads sent to the primary's copy of the read model because no replica answered.",
            ),
            Counter::ReplicaEjected => ("atelier_replica_ejections", "Replicas taken out of rotation."),
            Counter::ReplicaRevived => {
                ("atelier_replica_revivals", "Ejected replicas put back after answering a probe.")
            }
            Counter::WriteRetry => {
                ("atelier_write_retries", "Write transactions run again after a deadlock or serialization failure.")
            }
            Counter::WriteDeadlineExpiry => (
                "atelier_write_deadline_expiries",
                "Writes that missed ATELIER_WRITE_DEADLINE_MS (answered 503, outcome unknown).",
            ),
            Counter::MovementBatch => (
                "atelier_movement_batches",
                "Batches of stock movements sent to the primary as one transaction (write/batch.rs).",
            ),
            Counter::MovementBatched => (
                "atelier_movements_batched",
                "Stock movements sent in those batches (divided by the batches: the mean batch size).",
            ),
            Counter::ReadBatch => (
                "atelier_read_batches",
                "Statements that read product documents in a batch, one read slot each (read/batch.rs).",
            ),
            Counter::ReadBatched => (
                "atelier_reads_batched",
                "Product documents read in those batches (divided by the batches: the mean batch size).",
            ),
            Counter::Shed => {
                ("atelier_requests_shed", "Requests answered 503 because the admission queue did not admit them.")
            }
            Counter::AccessLogDropped => {
                ("atelier_access_log_dropped", "Access log lines dropped because the writer fell behind.")
            }
            Counter::AuthMissing => {
                ("atelier_auth_missing", "Requests refused 401 because they carried no bearer token.")
            }
            Counter::AuthInvalid => (
                "atelier_auth_invalid",
                "Requests refused 401 because their token is not live (wrong, revoked, malformed).",
            ),
            Counter::AuthForbidden => {
                ("atelier_auth_forbidden", "Requests refused 403: a live token without the scope needed.")
            }
            Counter::AuthLimited => {
                ("atelier_auth_limited", "Requests refused 429: too many failed authentications from their address.")
            }
        }
    }
}

pub(crate) struct Metrics {
    /// Labels of the route slots, "unmatched" last.
    labels: Vec<&'static str>,
    routes: Vec<RouteStats>,
    counters: [AtomicU64; Counter::ALL.len()],
}

impl Metrics {
    /// Metrics for routes labelled `labels` (slot i is `labels[i]`).
    pub fn new(labels: &[&'static str]) -> Metrics {
        let labels: Vec<&'static str> = labels.iter().copied().chain(["unmatched"]).collect();
        Metrics { routes: labels.iter().map(|_| RouteStats::default()).collect(), labels, counters: Default::default() }
    }

    /// Counts one event.
    pub fn count(&self, counter: Counter) {
        self.count_n(counter, 1);
    }

    /// Counts `n` events at once.
    pub fn count_n(&self, counter: Counter, n: u64) {
        self.counters[counter as usize].fetch_add(n, Relaxed);
    }

    /// Counts one request of route slot `route` (None: no route matched);
    /// `document_read` when it was a GET of a catalog document, the only
    /// requests the ETag hit and miss counters count.
    pub fn record(&self, route: Option<usize>, status: u16, elapsed: Duration, document_read: bool) {
        let unmatched = self.routes.len() - 1;
        let stats = &self.routes[route.filter(|r| *r < unmatched).unwrap_or(unmatched)];
        let s = STATUSES.iter().position(|x| *x == status).unwrap_or(STATUSES.len() - 1);
        stats.by_status[s].fetch_add(1, Relaxed);
        let seconds = elapsed.as_secs_f64();
        if let Some(b) = BUCKETS_SECONDS.iter().position(|upper| seconds <= *upper) {
            stats.buckets[b].fetch_add(1, Relaxed);
        }
        stats.count.fetch_add(1, Relaxed);
        stats.sum_micros.fetch_add(u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX), Relaxed);
        match status {
            304 if document_read => self.count(Counter::NotModified),
            200 if document_read => self.count(Counter::DocumentsSent),
            _ => {}
        }
    }

    /// The request metrics: by route and status, latency by route, and the
    /// event counters. Pool and replica gauges are added by the caller,
    /// which knows the pools.
    pub fn expose(&self, out: &mut Exposition) {
        let mut requests = out.counter("atelier_requests", "HTTP requests by route and status.");
        for (route, stats) in self.labels.iter().zip(&self.routes) {
            for (status, n) in STATUSES.iter().zip(&stats.by_status) {
                let n = n.load(Relaxed);
                if n > 0 {
                    let status = if *status == 0 { "other".to_string() } else { status.to_string() };
                    requests.count(vec![("route", route.to_string()), ("status", status)], n);
                }
            }
        }
        let mut durations =
            out.histogram("atelier_request_duration_seconds", "Time from request to response, by route.");
        for (route, stats) in self.labels.iter().zip(&self.routes) {
            let count = stats.count.load(Relaxed);
            if count == 0 {
                continue;
            }
            let buckets = BUCKETS_SECONDS.iter().zip(&stats.buckets).map(|(upper, n)| (*upper, n.load(Relaxed)));
            let sum = stats.sum_micros.load(Relaxed) as f64 / 1e6;
            durations.observed(labels([("route", route)]), buckets.collect(), sum, count);
        }
        for counter in Counter::ALL {
            let (name, help) = counter.describe();
            out.counter(name, help).count(Vec::new(), self.counters[counter as usize].load(Relaxed));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counts_and_cumulative_buckets() {
        let m = Metrics::new(&["/products", "/products/:id"]);
        m.record(Some(1), 200, Duration::from_micros(700), true);
        m.record(Some(1), 404, Duration::from_millis(3), true);
        m.record(None, 404, Duration::from_micros(10), false);
        m.record(Some(0), 200, Duration::from_micros(10), false);
        m.record(Some(0), 304, Duration::from_micros(10), false);
        m.record(Some(1), 304, Duration::from_millis(3), true);
        m.record(Some(1), 299, Duration::from_millis(3), true);
        let mut exposition = Exposition::default();
        m.expose(&mut exposition);
        let out = exposition.render();
        assert!(out.contains("atelier_requests_total{route=\"/products/:id\",status=\"200\"} 1\n"));
        assert!(out.contains("atelier_requests_total{route=\"unmatched\",status=\"404\"} 1\n"));
        assert!(out.contains("atelier_request_duration_seconds_bucket{route=\"/products/:id\",le=\"0.001\"} 1\n"));
        assert!(out.contains("atelier_request_duration_seconds_bucket{route=\"/products/:id\",le=\"0.005\"} 4\n"));
        assert!(out.contains("atelier_request_duration_seconds_count{route=\"/products/:id\"} 4\n"));
        assert!(out.contains("atelier_requests_total{route=\"/products/:id\",status=\"other\"} 1\n"));
        // Only the document reads count as ETag hits and misses.
        assert!(out.contains("atelier_etag_misses_total 1\n"), "{out}");
        assert!(out.contains("atelier_etag_hits_total 1\n"), "{out}");
    }
}
