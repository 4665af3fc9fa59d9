//! The one place Atelier's metrics become Prometheus text.
//!
//! The service records on its hot path with plain atomics (no lock, no
//! allocation: measured). At scrape time each part copies what it measures
//! into an [`Exposition`], a list of families of samples, and
//! [`Exposition::render`] hands that list to prometheus-client, whose
//! encoder writes the Prometheus text format (version 0.0.4). The server's
//! `/metrics`, the backup report and the reconcile ledger (node_exporter
//! textfiles) all render through here.
//!
//! Counter families are named without `_total`: the encoder appends it, as
//! the format requires.

use std::fmt;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;

/// The `Content-Type` of what [`Exposition::render`] writes.
pub const CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

/// Labels of one sample: name and value pairs, in the order written.
pub type Labels = Vec<(&'static str, String)>;

/// One sample's value.
#[derive(Debug, Clone, PartialEq)]
enum Value {
    Counter(u64),
    /// Whole gauges are written without a decimal point (`1`, not `1.0`).
    Integer(i64),
    Float(f64),
    /// Per-bucket counts (not cumulative) by upper bound; the encoder adds
    /// them up and writes the `+Inf` bucket from `count`.
    Histogram {
        buckets: Vec<(f64, u64)>,
        sum: f64,
        count: u64,
    },
}

#[derive(Debug)]
struct Family {
    name: &'static str,
    help: &'static str,
    kind: MetricType,
    samples: Vec<(Labels, Value)>,
}

/// Families of samples in the order they are added (a family's help and
/// type are written even when it has no sample yet).
#[derive(Debug, Default)]
pub struct Exposition {
    families: Vec<Family>,
}

/// A family being filled; add its samples.
pub struct FamilyWriter<'a> {
    family: &'a mut Family,
}

impl Exposition {
    /// A counter family, `name` without `_total`.
    pub fn counter(&mut self, name: &'static str, help: &'static str) -> FamilyWriter<'_> {
        debug_assert!(!name.ends_with("_total"), "{name}: the encoder appends _total");
        self.family(name, help, MetricType::Counter)
    }

    /// A gauge family.
    pub fn gauge(&mut self, name: &'static str, help: &'static str) -> FamilyWriter<'_> {
        self.family(name, help, MetricType::Gauge)
    }

    /// A histogram family.
    pub fn histogram(&mut self, name: &'static str, help: &'static str) -> FamilyWriter<'_> {
        self.family(name, help, MetricType::Histogram)
    }

    fn family(&mut self, name: &'static str, help: &'static str, kind: MetricType) -> FamilyWriter<'_> {
        self.families.push(Family { name, help, kind, samples: Vec::new() });
        FamilyWriter { family: self.families.last_mut().expect("just pushed") }
    }

    /// The families as Prometheus text (version 0.0.4).
    pub fn render(self) -> String {
        let mut registry = Registry::default();
        registry.register_collector(Box::new(Families(self.families)));
        let mut out = String::with_capacity(16 * 1024);
        // Writing to a String cannot fail; an encoder error would be a
        // family this module built wrongly, and the text so far is kept.
        let _ = prometheus_client::encoding::prometheus_text::encode(&mut out, &registry);
        out
    }
}

impl FamilyWriter<'_> {
    /// A counter's sample (in a counter family).
    pub fn count(&mut self, labels: Labels, value: u64) -> &mut Self {
        self.push(labels, Value::Counter(value))
    }

    /// A whole gauge sample, of any integer type (one beyond i64 is
    /// written as i64's largest; no count here comes near it).
    pub fn integer(&mut self, labels: Labels, value: impl TryInto<i64>) -> &mut Self {
        self.push(labels, Value::Integer(value.try_into().unwrap_or(i64::MAX)))
    }

    /// A fractional gauge sample.
    pub fn float(&mut self, labels: Labels, value: f64) -> &mut Self {
        self.push(labels, Value::Float(value))
    }

    /// A histogram's sample: per-bucket counts by upper bound (each count
    /// is of that bucket alone), the sum and the count of observations.
    pub fn observed(&mut self, labels: Labels, buckets: Vec<(f64, u64)>, sum: f64, count: u64) -> &mut Self {
        self.push(labels, Value::Histogram { buckets, sum, count })
    }

    fn push(&mut self, labels: Labels, value: Value) -> &mut Self {
        let fits = matches!(
            (self.family.kind, &value),
            (MetricType::Counter, Value::Counter(_))
                | (MetricType::Gauge, Value::Integer(_) | Value::Float(_))
                | (MetricType::Histogram, Value::Histogram { .. })
        );
        debug_assert!(fits, "{}: a {:?} sample in a {:?} family", self.family.name, value, self.family.kind);
        if fits {
            self.family.samples.push((labels, value));
        }
        self
    }
}

/// The families as prometheus-client's collector.
#[derive(Debug)]
struct Families(Vec<Family>);

impl Collector for Families {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), fmt::Error> {
        for family in &self.0 {
            let mut metric = encoder.encode_descriptor(family.name, family.help, None, family.kind)?;
            for (labels, value) in &family.samples {
                let sample = metric.encode_family(labels)?;
                match value {
                    Value::Counter(n) => ConstCounter::new(*n).encode(sample)?,
                    Value::Integer(n) => ConstGauge::new(*n).encode(sample)?,
                    // A whole value is written whole (`890`, not `890.0`),
                    // as the text these replaced wrote it.
                    Value::Float(x) if x.fract() == 0.0 && x.abs() < 9e15 => {
                        ConstGauge::new(*x as i64).encode(sample)?
                    }
                    Value::Float(x) => ConstGauge::new(*x).encode(sample)?,
                    Value::Histogram { buckets, sum, count } => {
                        let mut sample = sample;
                        sample.encode_histogram::<Labels>(*sum, *count, buckets, None)?
                    }
                }
            }
        }
        Ok(())
    }
}

/// Labels from pairs: `labels([("route", r), ("status", s)])`.
pub fn labels<const N: usize>(pairs: [(&'static str, &str); N]) -> Labels {
    pairs.into_iter().map(|(k, v)| (k, v.to_string())).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_the_prometheus_text_format() {
        let mut e = Exposition::default();
        e.counter("atelier_things", "Things counted.")
            .count(labels([("route", "/a\"b")]), 3)
            .count(labels([("route", "/c")]), 0);
        e.gauge("atelier_up", "Up or not.").integer(Vec::new(), 1);
        e.gauge("atelier_share", "A share.")
            .float(labels([("replica", "r1")]), 0.25)
            .float(labels([("replica", "r2")]), 890.0);
        e.gauge("atelier_empty", "Nothing yet.");
        e.histogram("atelier_wait_seconds", "Waits.").observed(
            labels([("queue", "read")]),
            vec![(0.001, 2), (0.01, 1)],
            0.0125,
            4,
        );
        let text = e.render();
        let expected = "\
# HELP atelier_things_total Things counted.
# TYPE atelier_things_total counter
atelier_things_total{route=\"/a\\\"b\"} 3
atelier_things_total{route=\"/c\"} 0
# HELP atelier_up Up or not.
# TYPE atelier_up gauge
atelier_up 1
# HELP atelier_share A share.
# TYPE atelier_share gauge
atelier_share{replica=\"r1\"} 0.25
atelier_share{replica=\"r2\"} 890
# HELP atelier_empty Nothing yet.
# TYPE atelier_empty gauge
# HELP atelier_wait_seconds Waits.
# TYPE atelier_wait_seconds histogram
atelier_wait_seconds_bucket{queue=\"read\",le=\"0.001\"} 2
atelier_wait_seconds_bucket{queue=\"read\",le=\"0.01\"} 3
atelier_wait_seconds_bucket{queue=\"read\",le=\"+Inf\"} 4
atelier_wait_seconds_sum{queue=\"read\"} 0.0125
atelier_wait_seconds_count{queue=\"read\"} 4
";
        assert_eq!(text, expected);
    }
}
