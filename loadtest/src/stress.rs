//! The stepped stress test: for each route, fixed arrival rates (open
//! loop), a Markdown table and an SVG plot of p99 latency against rate.
//!
//! Why our own open-loop generator: only crates.io and Debian are reachable
//! from where this was built, and Debian's `wrk` is closed loop, which lets
//! a slow server slow the client down and hide its latency. The generator
//! here schedules request i at start + i/rate whatever the server does, and
//! measures each latency from that scheduled time (so queueing behind a slow
//! response counts, as in wrk2). JMeter remains the tool for the brief's
//! thread-group test (`jmeter/`).

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use atelier_tools::ToolResult;
use bytes::Bytes;
use hyper::Method;

use crate::client::{Connection, Server};
use crate::ids::LoadIds;
use crate::stats::{Recorder, Summary};

/// Most connections the open-loop generator opens; a request that finds all
/// busy waits, and that wait counts in its latency.
pub const STEP_CONNECTIONS_MAX: usize = 512;

/// What a generator sends: one route of the API, with ids and a body.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    List,
    Product,
    Styles,
    Related,
    Movement,
}

impl Target {
    pub const ALL: [Target; 5] = [Target::List, Target::Product, Target::Styles, Target::Related, Target::Movement];

    /// The short names the command line uses.
    pub fn parse(name: &str) -> Option<Target> {
        Some(match name {
            "list" => Target::List,
            "product" => Target::Product,
            "styles" => Target::Styles,
            "related" => Target::Related,
            "movement" => Target::Movement,
            _ => return None,
        })
    }

    pub fn label(self) -> &'static str {
        match self {
            Target::List => "GET /products?page&count=5",
            Target::Product => "GET /products/:id",
            Target::Styles => "GET /products/:id/styles",
            Target::Related => "GET /products/:id/related",
            Target::Movement => "POST /skus/:id/movements",
        }
    }

    /// Statuses that are correct answers: a refused sale (409) is one.
    pub fn ok_statuses(self) -> &'static [u16] {
        match self {
            Target::Movement => &[201, 409],
            _ => &[200],
        }
    }

    pub fn request(self, ids: &LoadIds) -> (Method, String, Option<Bytes>) {
        let LoadIds { product_id: product, sku_id: sku, delta } = *ids;
        match self {
            // The page holding that product (ids are nearly dense), so list
            // pages share the last-10% bias.
            Target::List => (Method::GET, format!("/products?page={}&count=5", (product - 1) / 5 + 1), None),
            Target::Product => (Method::GET, format!("/products/{product}"), None),
            Target::Styles => (Method::GET, format!("/products/{product}/styles"), None),
            Target::Related => (Method::GET, format!("/products/{product}/related"), None),
            Target::Movement => (
                Method::POST,
                format!("/skus/{sku}/movements"),
                Some(Bytes::from(format!("{{\"delta\":{delta},\"reason\":\"load test\"}}"))),
            ),
        }
    }
}

/// One step of the stepped test.
#[derive(Debug, Clone)]
pub struct StepResult {
    pub route: Target,
    pub target_rps: u32,
    pub achieved_rps: f64,
    pub summary: Summary,
    pub error_rate: f64,
    /// Answers by status ("200: 998, 503: 2").
    pub statuses: String,
    /// GETs sent again on a new connection because the kept-alive one they
    /// went out on had been closed by the server (see `send_with_retry`).
    pub stale_retries: u64,
}

impl std::fmt::Display for StepResult {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:<28} {:>6} rps target {:>9.1} achieved  p99 {:>8.2} ms  errors {:.2}% ({})",
            self.route.label(),
            self.target_rps,
            self.achieved_rps,
            self.summary.p99_us as f64 / 1e3,
            self.error_rate * 100.0,
            self.statuses
        )?;
        if self.stale_retries > 0 {
            write!(f, "  stale keep-alive retries {}", self.stale_retries)?;
        }
        Ok(())
    }
}

/// Open loop: request i is due at start + i/rate; it takes an idle
/// connection (or opens one, up to STEP_CONNECTIONS_MAX, or waits), and its
/// latency runs from when it was due to when its response ended.
pub async fn open_loop_step(
    server: &Server,
    ids: Arc<Vec<LoadIds>>,
    route: Target,
    rate: u32,
    duration: Duration,
) -> ToolResult<StepResult> {
    let total = (f64::from(rate) * duration.as_secs_f64()).round().max(1.0) as u64;
    let idle: Arc<Mutex<Vec<Connection>>> = Arc::default();
    let open = Arc::new(tokio::sync::Semaphore::new(STEP_CONNECTIONS_MAX));
    let recorder: Arc<Mutex<Recorder>> = Arc::default();
    let stale_retries = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..total {
        let due = started + Duration::from_secs_f64(i as f64 / f64::from(rate));
        tokio::time::sleep_until(due.into()).await;
        let (ids, idle, open, recorder) = (ids.clone(), idle.clone(), open.clone(), recorder.clone());
        let (stale_retries, server) = (stale_retries.clone(), server.clone());
        tasks.spawn(async move {
            let permit = open.acquire_owned().await.expect("semaphore open");
            let pooled = idle.lock().expect("idle lock").pop();
            let (method, path, body) = route.request(&ids[(i as usize) % ids.len()]);
            let (status, connection, retried) = send_with_retry(&server, pooled, &method, &path, body).await;
            if let Some(c) = connection {
                idle.lock().expect("idle lock").push(c);
            }
            if retried {
                stale_retries.fetch_add(1, Ordering::Relaxed);
            }
            recorder.lock().expect("recorder lock").record(due.elapsed(), status);
            drop(permit);
        });
    }
    while tasks.join_next().await.is_some() {}
    let elapsed = started.elapsed();
    let recorder = std::mem::take(&mut *recorder.lock().expect("recorder lock"));
    let errors = recorder.errors(route.ok_statuses());
    let summary = recorder.summary();
    let statuses = recorder.statuses();
    Ok(StepResult {
        statuses,
        stale_retries: stale_retries.load(Ordering::Relaxed),
        route,
        target_rps: rate,
        achieved_rps: summary.count as f64 / elapsed.as_secs_f64(),
        error_rate: errors as f64 / summary.count.max(1) as f64,
        summary,
    })
}

/// Sends one request on `pooled` (a kept-alive connection) or on a new
/// one. A GET that fails on a kept-alive connection before any answer is
/// sent once more on a new connection, as browsers and HTTP libraries do
/// (RFC 9112, 9.3.1): a server or balancer may close an idle connection at
/// the moment a request goes out (nginx does on every reload), and that race
/// is the client's to absorb, not an error of the service. A failure on a
/// new connection, or of a POST, is an error. Returns the status, the
/// connection to keep (if it still works) and whether it retried.
async fn send_with_retry(
    server: &Server,
    pooled: Option<Connection>,
    method: &Method,
    path: &str,
    body: Option<Bytes>,
) -> (Option<u16>, Option<Connection>, bool) {
    if let Some(mut c) = pooled {
        match c.send(method, path, body.clone()).await {
            Some(status) => return (Some(status), Some(c), false),
            None if *method != Method::GET => return (None, None, false),
            None => {}
        }
        let (status, connection) = send_fresh(server, method, path, body).await;
        return (status, connection, true);
    }
    let (status, connection) = send_fresh(server, method, path, body).await;
    (status, connection, false)
}

async fn send_fresh(
    server: &Server,
    method: &Method,
    path: &str,
    body: Option<Bytes>,
) -> (Option<u16>, Option<Connection>) {
    let Ok(mut c) = Connection::open(server).await else { return (None, None) };
    match c.send(method, path, body).await {
        Some(status) => (Some(status), Some(c)),
        None => (None, None),
    }
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
    for (i, route) in Target::ALL.iter().enumerate() {
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
    fn table_and_plot_render() {
        let step = |route, rate, p99| StepResult {
            route,
            target_rps: rate,
            achieved_rps: f64::from(rate),
            summary: Summary { count: 10, mean_us: 500, p50_us: 400, p95_us: 800, p99_us: p99, max_us: 2000 },
            error_rate: 0.0,
            statuses: "200: 10".into(),
            stale_retries: 0,
        };
        let results = vec![step(Target::Product, 1, 900), step(Target::Product, 1000, 4_000)];
        let table = step_table(&results);
        assert!(table.contains("| GET /products/:id | 1000 | 1000.0 | 0.40 | 0.80 | 4.00 | 2.00 | 0.00% |"), "{table}");
        let svg = step_plot_svg(&results);
        assert!(svg.starts_with("<svg") && svg.contains("<polyline") && svg.trim_end().ends_with("</svg>"));
    }

    /// A server that answers one request per connection, keep-alive
    /// promised, then closes it: the next request on that connection finds
    /// it closed, as after an nginx reload.
    async fn one_answer_per_connection() -> Server {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let mut buf = [0u8; 4096];
                    let _ = stream.read(&mut buf).await;
                    let _ = stream.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok").await;
                    // Long enough for the client to pool the connection.
                    tokio::time::sleep(Duration::from_millis(50)).await;
                });
            }
        });
        Server::new(addr, None)
    }

    #[tokio::test]
    async fn a_get_on_a_closed_kept_alive_connection_is_sent_again_once() {
        let addr = one_answer_per_connection().await;
        let (status, kept, retried) = send_with_retry(&addr, None, &Method::GET, "/a", None).await;
        assert_eq!((status, retried), (Some(200), false));
        tokio::time::sleep(Duration::from_millis(200)).await;
        let (status, _, retried) = send_with_retry(&addr, kept, &Method::GET, "/b", None).await;
        assert_eq!((status, retried), (Some(200), true), "the stale connection's GET goes out again");
    }

    #[tokio::test]
    async fn a_post_on_a_closed_connection_is_an_error_not_a_retry() {
        let addr = one_answer_per_connection().await;
        let (_, kept, _) = send_with_retry(&addr, None, &Method::GET, "/a", None).await;
        tokio::time::sleep(Duration::from_millis(200)).await;
        let body = Some(Bytes::from_static(b"{}"));
        let (status, _, retried) = send_with_retry(&addr, kept, &Method::POST, "/m", body).await;
        assert_eq!((status, retried), (None, false), "a POST is never sent twice by the generator");
    }
}
