//! Latency and status accounting for a load run, and nearest-rank
//! percentiles (shared with the JMeter summariser).

use std::time::Duration;

/// Latencies and statuses of one run.
#[derive(Default)]
pub struct Recorder {
    latencies_us: Vec<u64>,
    statuses: std::collections::BTreeMap<u16, u64>,
    failures: u64,
}

impl Recorder {
    pub fn record(&mut self, latency: Duration, status: Option<u16>) {
        self.latencies_us.push(u64::try_from(latency.as_micros()).unwrap_or(u64::MAX));
        match status {
            Some(status) => *self.statuses.entry(status).or_default() += 1,
            None => self.failures += 1,
        }
    }

    pub fn merge(&mut self, other: Recorder) {
        self.latencies_us.extend(other.latencies_us);
        for (status, n) in other.statuses {
            *self.statuses.entry(status).or_default() += n;
        }
        self.failures += other.failures;
    }

    pub fn count(&self) -> u64 {
        self.latencies_us.len() as u64
    }

    /// Requests that failed: no response, or a status outside `ok`.
    pub fn errors(&self, ok: &[u16]) -> u64 {
        self.failures + self.statuses.iter().filter(|(s, _)| !ok.contains(s)).map(|(_, n)| n).sum::<u64>()
    }

    pub fn summary(&self) -> Summary {
        let mut sorted = self.latencies_us.clone();
        sorted.sort_unstable();
        let l = &sorted;
        Summary {
            count: l.len() as u64,
            p50_us: percentile(l, 50.0),
            p95_us: percentile(l, 95.0),
            p99_us: percentile(l, 99.0),
            max_us: l.last().copied().unwrap_or(0),
            mean_us: if l.is_empty() { 0 } else { l.iter().sum::<u64>() / l.len() as u64 },
        }
    }

    pub fn statuses(&self) -> String {
        let mut s: Vec<String> = self.statuses.iter().map(|(k, v)| format!("{k}: {v}")).collect();
        if self.failures > 0 {
            s.push(format!("no response: {}", self.failures));
        }
        s.join(", ")
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Summary {
    pub count: u64,
    pub mean_us: u64,
    pub p50_us: u64,
    pub p95_us: u64,
    pub p99_us: u64,
    pub max_us: u64,
}

/// Nearest-rank percentile of sorted values: the smallest value with at
/// least p% of the values at or below it.
pub fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let values: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile(&values, 50.0), 50);
        assert_eq!(percentile(&values, 95.0), 95);
        assert_eq!(percentile(&values, 99.0), 99);
        assert_eq!(percentile(&values, 100.0), 100);
        assert_eq!(percentile(&[7], 99.0), 7);
        assert_eq!(percentile(&[], 50.0), 0);
        assert_eq!(percentile(&[1, 2, 3], 50.0), 2);
        assert_eq!(percentile(&[1, 2, 3, 4], 50.0), 2);
    }

    #[test]
    fn recorder_counts_errors_by_allowed_status() {
        let mut r = Recorder::default();
        r.record(Duration::from_millis(1), Some(201));
        r.record(Duration::from_millis(3), Some(409));
        r.record(Duration::from_millis(2), Some(500));
        r.record(Duration::from_millis(9), None);
        assert_eq!(r.errors(&[201, 409]), 2);
        let s = r.summary();
        assert_eq!((s.count, s.p50_us, s.max_us, s.mean_us), (4, 2000, 9000, 3750));
    }
}
