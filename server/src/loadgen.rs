//! Load generation against a running server: the write load (the brief's
//! "load the database" step, closed loop) and the stepped stress test (open
//! loop at fixed arrival rates), plus the id file the JMeter plan reads.
//!
//! Why our own open-loop generator: the well-kept open-loop tools (wrk2,
//! vegeta, oha) are not packaged for this machine and only crates.io and
//! Debian are reachable; Debian's wrk is closed loop, which lets a slow server
//! slow the client down and hide its latency. The generator here schedules
//! request i at start + i/rate whatever the server does, and measures each
//! latency from that scheduled time (so queueing behind a slow response
//! counts, as in wrk2). JMeter remains the tool for the brief's thread-group
//! test (`jmeter/`).

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::{Method, Request};
use hyper_util::rt::TokioIo;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::net::TcpStream;

use crate::tool::{connect, ToolError, ToolResult};

/// Share of picked ids that come from the last tenth of the id range.
pub const LAST_TENTH_SHARE: f64 = 0.9;
/// Most connections the open-loop generator opens; a request that finds all
/// busy waits, and that wait counts in its latency.
pub const STEP_CONNECTIONS_MAX: usize = 512;

/// An id in [low, high], 90% of the time from the last 10% of the range.
pub fn biased_id(rng: &mut impl Rng, low: i64, high: i64) -> i64 {
    let span = (high - low + 1).max(1);
    let tenth = (span / 10).max(1);
    if rng.random_bool(LAST_TENTH_SHARE) {
        high - rng.random_range(0..tenth)
    } else {
        low + rng.random_range(0..span)
    }
}

/// Ids for load tests: product ids and sku ids that exist, biased to the
/// last 10% of each range, and a stock delta per row (sales of 1 to 3 and
/// restocks of 1 to 10, never 0), from the primary.
pub async fn export_ids(primary_url: &str, rows: usize, seed: u64) -> ToolResult<Vec<(i64, i64, i64)>> {
    let client = connect(primary_url).await?;
    let ranges = client
        .query_one(
            "select coalesce(min(id), 0), coalesce(max(id), 0), (select coalesce(min(id), 0) from sku),
                    (select coalesce(max(id), 0) from sku) from product",
            &[],
        )
        .await?;
    let (p_low, p_high, s_low, s_high): (i64, i64, i64, i64) =
        (ranges.get(0), ranges.get(1), ranges.get(2), ranges.get(3));
    if p_high == 0 || s_high == 0 {
        return Err(ToolError::msg("the catalog has no products or no skus; load some first"));
    }
    let mut rng = StdRng::seed_from_u64(seed);
    let mut out = Vec::with_capacity(rows);
    while out.len() < rows {
        let want = (rows - out.len()) * 2;
        let products: Vec<i64> = (0..want).map(|_| biased_id(&mut rng, p_low, p_high)).collect();
        let skus: Vec<i64> = (0..want).map(|_| biased_id(&mut rng, s_low, s_high)).collect();
        // Keep only ids that exist (deleted rows leave gaps).
        let found = client
            .query(
                "select p, s from unnest($1::bigint[], $2::bigint[]) with ordinality as t(p, s, n)
                 where exists (select 1 from product where id = p) and exists (select 1 from sku where id = s)
                 order by n",
                &[&products, &skus],
            )
            .await?;
        for row in found.iter().take(rows - out.len()) {
            let delta = if rng.random_bool(0.7) { -rng.random_range(1..=3) } else { rng.random_range(1..=10) };
            out.push((row.get(0), row.get(1), delta));
        }
    }
    Ok(out)
}

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

    pub fn summary(&mut self) -> Summary {
        self.latencies_us.sort_unstable();
        let l = &self.latencies_us;
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

/// One keep-alive HTTP/1.1 connection.
struct Connection {
    sender: SendRequest<Full<Bytes>>,
}

impl Connection {
    async fn open(addr: SocketAddr) -> ToolResult<Connection> {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| ToolError::msg(format!("handshake: {e}")))?;
        tokio::spawn(connection);
        Ok(Connection { sender })
    }

    /// Sends a request and reads the whole response; `None` on failure.
    async fn send(&mut self, method: &Method, path: &str, body: Option<Bytes>) -> Option<u16> {
        self.sender.ready().await.ok()?;
        let mut builder = Request::builder().method(method).uri(path).header("host", "atelier");
        if body.is_some() {
            builder = builder.header("content-type", "application/json");
        }
        let request = builder.body(Full::new(body.unwrap_or_default())).ok()?;
        let response = self.sender.send_request(request).await.ok()?;
        let status = response.status().as_u16();
        response.into_body().collect().await.ok()?;
        Some(status)
    }
}

/// A request the generators send: method, path, body.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Route {
    List,
    Product,
    Styles,
    Related,
    Movement,
}

impl Route {
    pub const ALL: [Route; 5] = [Route::List, Route::Product, Route::Styles, Route::Related, Route::Movement];

    /// The short names the command line uses.
    pub fn parse(name: &str) -> Option<Route> {
        Some(match name {
            "list" => Route::List,
            "product" => Route::Product,
            "styles" => Route::Styles,
            "related" => Route::Related,
            "movement" => Route::Movement,
            _ => return None,
        })
    }

    pub fn label(self) -> &'static str {
        match self {
            Route::List => "GET /products?page&count=5",
            Route::Product => "GET /products/:id",
            Route::Styles => "GET /products/:id/styles",
            Route::Related => "GET /products/:id/related",
            Route::Movement => "POST /skus/:id/movements",
        }
    }

    /// Statuses that are correct answers: a refused sale (409) is one.
    pub fn ok_statuses(self) -> &'static [u16] {
        match self {
            Route::Movement => &[201, 409],
            _ => &[200],
        }
    }

    fn request(self, ids: &(i64, i64, i64)) -> (Method, String, Option<Bytes>) {
        let (product, sku, delta) = *ids;
        match self {
            // The page holding that product (ids are nearly dense), so list
            // pages share the last-10% bias.
            Route::List => (Method::GET, format!("/products?page={}&count=5", (product - 1) / 5 + 1), None),
            Route::Product => (Method::GET, format!("/products/{product}"), None),
            Route::Styles => (Method::GET, format!("/products/{product}/styles"), None),
            Route::Related => (Method::GET, format!("/products/{product}/related"), None),
            Route::Movement => (
                Method::POST,
                format!("/skus/{sku}/movements"),
                Some(Bytes::from(format!("{{\"delta\":{delta},\"reason\":\"load test\"}}"))),
            ),
        }
    }
}

/// The write load: `events` stock movements through the API from
/// `concurrency` clients, each on its own keep-alive connection (closed
/// loop: the brief's client, which rewards low-latency POSTs).
pub async fn write_load(
    addr: SocketAddr,
    ids: Arc<Vec<(i64, i64, i64)>>,
    events: u64,
    concurrency: usize,
) -> ToolResult<(Recorder, Duration)> {
    let next = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..concurrency.max(1) {
        let (ids, next) = (ids.clone(), next.clone());
        let mut connection = Connection::open(addr).await?;
        tasks.spawn(async move {
            let mut recorder = Recorder::default();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= events {
                    return recorder;
                }
                let (method, path, body) = Route::Movement.request(&ids[(i as usize) % ids.len()]);
                let sent = Instant::now();
                let status = connection.send(&method, &path, body).await;
                recorder.record(sent.elapsed(), status);
                if status.is_none() {
                    match Connection::open(addr).await {
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
    Ok((all, started.elapsed()))
}

/// One step of the stepped test.
#[derive(Debug, Clone)]
pub struct StepResult {
    pub route: Route,
    pub target_rps: u32,
    pub achieved_rps: f64,
    pub summary: Summary,
    pub error_rate: f64,
}

/// Open loop: request i is due at start + i/rate; it takes an idle
/// connection (or opens one, up to STEP_CONNECTIONS_MAX, or waits), and its
/// latency runs from when it was due to when its response ended.
pub async fn open_loop_step(
    addr: SocketAddr,
    ids: Arc<Vec<(i64, i64, i64)>>,
    route: Route,
    rate: u32,
    duration: Duration,
) -> ToolResult<StepResult> {
    let total = (f64::from(rate) * duration.as_secs_f64()).round().max(1.0) as u64;
    let idle: Arc<Mutex<Vec<Connection>>> = Arc::default();
    let open = Arc::new(tokio::sync::Semaphore::new(STEP_CONNECTIONS_MAX));
    let recorder: Arc<Mutex<Recorder>> = Arc::default();
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..total {
        let due = started + Duration::from_secs_f64(i as f64 / f64::from(rate));
        tokio::time::sleep_until(due.into()).await;
        let (ids, idle, open, recorder) = (ids.clone(), idle.clone(), open.clone(), recorder.clone());
        tasks.spawn(async move {
            let permit = open.acquire_owned().await.expect("semaphore open");
            let pooled = idle.lock().expect("idle lock").pop();
            let connection = match pooled {
                Some(c) => Some(c),
                None => Connection::open(addr).await.ok(),
            };
            let (method, path, body) = route.request(&ids[(i as usize) % ids.len()]);
            let status = match connection {
                Some(mut c) => {
                    let status = c.send(&method, &path, body).await;
                    if status.is_some() {
                        idle.lock().expect("idle lock").push(c);
                    }
                    status
                }
                None => None,
            };
            recorder.lock().expect("recorder lock").record(due.elapsed(), status);
            drop(permit);
        });
    }
    while tasks.join_next().await.is_some() {}
    let elapsed = started.elapsed();
    let mut recorder = std::mem::take(&mut *recorder.lock().expect("recorder lock"));
    let errors = recorder.errors(route.ok_statuses());
    let summary = recorder.summary();
    Ok(StepResult {
        route,
        target_rps: rate,
        achieved_rps: summary.count as f64 / elapsed.as_secs_f64(),
        error_rate: errors as f64 / summary.count.max(1) as f64,
        summary,
    })
}

/// The stepped results as a Markdown table.
pub fn step_table(results: &[StepResult]) -> String {
    let mut out = String::from(
        "| route | target rps | achieved rps | p50 ms | p95 ms | p99 ms | max ms | errors |\n|---|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for r in results {
        let ms = |us: u64| us as f64 / 1000.0;
        let _ = writeln!(
            out,
            "| {} | {} | {:.1} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2}% |",
            r.route.label(),
            r.target_rps,
            r.achieved_rps,
            ms(r.summary.p50_us),
            ms(r.summary.p95_us),
            ms(r.summary.p99_us),
            ms(r.summary.max_us),
            r.error_rate * 100.0
        );
    }
    out
}

/// p99 latency against target rate, one line per route, log scales, as SVG.
pub fn step_plot_svg(results: &[StepResult]) -> String {
    let (width, height, left, bottom, top, right) = (720.0, 420.0, 70.0, 50.0, 30.0, 220.0);
    let plot_w = width - left - right;
    let plot_h = height - top - bottom;
    let rates: Vec<f64> = results.iter().map(|r| f64::from(r.target_rps).max(1.0)).collect();
    let (r_min, r_max) =
        (rates.iter().cloned().fold(f64::MAX, f64::min).log10(), rates.iter().cloned().fold(1.0, f64::max).log10());
    let lat = |us: u64| (us.max(100) as f64 / 1000.0).log10();
    let l_min = (0.1_f64).log10();
    let l_max = results.iter().map(|r| lat(r.summary.p99_us)).fold(1.0, f64::max).ceil();
    let x = |rate: f64| left + (rate.log10() - r_min) / (r_max - r_min).max(1e-9) * plot_w;
    let y = |l: f64| top + plot_h - (l - l_min) / (l_max - l_min) * plot_h;
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" font-family=\"sans-serif\" font-size=\"12\">\n\
         <rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n\
         <text x=\"{}\" y=\"18\" text-anchor=\"middle\" font-size=\"14\">p99 latency vs arrival rate (log-log)</text>\n\
         <line x1=\"{left}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"black\"/>\n<line x1=\"{left}\" y1=\"{top}\" x2=\"{left}\" y2=\"{}\" stroke=\"black\"/>\n",
        left + plot_w / 2.0,
        top + plot_h,
        left + plot_w,
        top + plot_h,
        top + plot_h
    );
    let mut rate = 10f64.powf(r_min);
    while rate <= 10f64.powf(r_max) * 1.001 {
        let _ = writeln!(
            svg,
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{rate}</text>",
            x(rate),
            top + plot_h + 18.0
        );
        rate *= 10.0;
    }
    let _ = writeln!(
        svg,
        "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">requests per second (target)</text>",
        left + plot_w / 2.0,
        height - 10.0
    );
    let mut decade = l_min;
    while decade <= l_max + 1e-9 {
        let _ = writeln!(
            svg,
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{} ms</text>",
            left - 6.0,
            y(decade) + 4.0,
            10f64.powf(decade)
        );
        let _ = writeln!(
            svg,
            "<line x1=\"{left}\" y1=\"{:.1}\" x2=\"{:.1}\" y2=\"{:.1}\" stroke=\"#ddd\"/>",
            y(decade),
            left + plot_w,
            y(decade)
        );
        decade += 1.0;
    }
    let colours = ["#9467bd", "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728"];
    for (i, route) in Route::ALL.iter().enumerate() {
        let points: Vec<String> = results
            .iter()
            .filter(|r| r.route == *route)
            .map(|r| format!("{:.1},{:.1}", x(f64::from(r.target_rps).max(1.0)), y(lat(r.summary.p99_us))))
            .collect();
        if points.is_empty() {
            continue;
        }
        let colour = colours[i % colours.len()];
        let _ = writeln!(
            svg,
            "<polyline fill=\"none\" stroke=\"{colour}\" stroke-width=\"2\" points=\"{}\"/>",
            points.join(" ")
        );
        let ly = top + 20.0 + i as f64 * 18.0;
        let _ = writeln!(
            svg,
            "<line x1=\"{:.1}\" y1=\"{ly:.1}\" x2=\"{:.1}\" y2=\"{ly:.1}\" stroke=\"{colour}\" stroke-width=\"2\"/>",
            left + plot_w + 10.0,
            left + plot_w + 30.0
        );
        let _ = writeln!(svg, "<text x=\"{:.1}\" y=\"{:.1}\">{}</text>", left + plot_w + 36.0, ly + 4.0, route.label());
    }
    svg.push_str("</svg>\n");
    svg
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

    #[test]
    fn biased_ids_favour_the_last_tenth() {
        let mut rng = StdRng::seed_from_u64(1);
        let ids: Vec<i64> = (0..10_000).map(|_| biased_id(&mut rng, 1, 1000)).collect();
        assert!(ids.iter().all(|id| (1..=1000).contains(id)));
        let last_tenth = ids.iter().filter(|id| **id > 900).count();
        assert!((9_000..9_400).contains(&last_tenth), "{last_tenth}");
    }

    #[test]
    fn table_and_plot_render() {
        let step = |route, rate, p99| StepResult {
            route,
            target_rps: rate,
            achieved_rps: f64::from(rate),
            summary: Summary { count: 10, mean_us: 500, p50_us: 400, p95_us: 800, p99_us: p99, max_us: 2000 },
            error_rate: 0.0,
        };
        let results = vec![step(Route::Product, 1, 900), step(Route::Product, 1000, 4_000)];
        let table = step_table(&results);
        assert!(table.contains("| GET /products/:id | 1000 | 1000.0 | 0.40 | 0.80 | 4.00 | 2.00 | 0.00% |"), "{table}");
        let svg = step_plot_svg(&results);
        assert!(svg.starts_with("<svg") && svg.contains("<polyline") && svg.trim_end().ends_with("</svg>"));
    }
}
