//! JMeter results (a CSV `.jtl` with its header line) summarised per
//! sampler label: requests, throughput, mean, p50, p95, p99, max, error rate.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use atelier_tools::{ToolError, ToolResult};

use crate::stats::percentile;

#[derive(Debug, Clone, PartialEq)]
pub struct GroupSummary {
    pub label: String,
    pub requests: u64,
    pub throughput_rps: f64,
    pub mean_ms: f64,
    pub p50_ms: u64,
    pub p95_ms: u64,
    pub p99_ms: u64,
    pub max_ms: u64,
    pub error_rate: f64,
}

/// Splits one CSV line, honouring double quotes ("" is a quote inside).
pub fn split_csv_line(line: &str) -> Vec<String> {
    let mut fields = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                field.push('"');
                chars.next();
            }
            ('"', _) => quoted = !quoted,
            (',', false) => fields.push(std::mem::take(&mut field)),
            (c, _) => field.push(c),
        }
    }
    fields.push(field);
    fields
}

/// Summarises the text of a .jtl file, one group per label, in label order.
pub fn summarise(text: &str) -> ToolResult<Vec<GroupSummary>> {
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    let header = split_csv_line(lines.next().ok_or_else(|| ToolError::msg("empty results file"))?);
    let column = |name: &str| {
        header.iter().position(|h| h == name).ok_or_else(|| {
            ToolError::msg(format!("results file has no {name} column (run JMeter with print_field_names=true)"))
        })
    };
    let (ts, elapsed, label, success) =
        (column("timeStamp")?, column("elapsed")?, column("label")?, column("success")?);
    struct Group {
        elapsed: Vec<u64>,
        errors: u64,
        first_start: u64,
        last_end: u64,
    }
    let mut groups: BTreeMap<String, Group> = BTreeMap::new();
    for (n, line) in lines.enumerate() {
        let fields = split_csv_line(line);
        let get = |i: usize| fields.get(i).map(String::as_str).unwrap_or("");
        let parse = |i: usize| {
            get(i).parse::<u64>().map_err(|_| ToolError::msg(format!("line {}: bad number {:?}", n + 2, get(i))))
        };
        let (start, took) = (parse(ts)?, parse(elapsed)?);
        let group = groups.entry(get(label).to_string()).or_insert(Group {
            elapsed: Vec::new(),
            errors: 0,
            first_start: u64::MAX,
            last_end: 0,
        });
        group.elapsed.push(took);
        group.errors += u64::from(get(success) != "true");
        group.first_start = group.first_start.min(start);
        group.last_end = group.last_end.max(start + took);
    }
    Ok(groups
        .into_iter()
        .map(|(label, mut g)| {
            g.elapsed.sort_unstable();
            let n = g.elapsed.len() as u64;
            let seconds = (g.last_end.saturating_sub(g.first_start)) as f64 / 1000.0;
            GroupSummary {
                label,
                requests: n,
                throughput_rps: n as f64 / seconds.max(0.001),
                mean_ms: g.elapsed.iter().sum::<u64>() as f64 / n.max(1) as f64,
                p50_ms: percentile(&g.elapsed, 50.0),
                p95_ms: percentile(&g.elapsed, 95.0),
                p99_ms: percentile(&g.elapsed, 99.0),
                max_ms: g.elapsed.last().copied().unwrap_or(0),
                error_rate: g.errors as f64 / n.max(1) as f64,
            }
        })
        .collect())
}

/// The summary as a Markdown table.
pub fn table(groups: &[GroupSummary]) -> String {
    let mut out = String::from(
        "| group | requests | throughput rps | mean ms | p50 ms | p95 ms | p99 ms | max ms | errors |\n\
         |---|---:|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for g in groups {
        let _ = writeln!(
            out,
            "| {} | {} | {:.1} | {:.2} | {} | {} | {} | {} | {:.2}% |",
            g.label,
            g.requests,
            g.throughput_rps,
            g.mean_ms,
            g.p50_ms,
            g.p95_ms,
            g.p99_ms,
            g.max_ms,
            g.error_rate * 100.0
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoted_fields_keep_their_commas() {
        assert_eq!(split_csv_line("1,\"a,b\",\"say \"\"hi\"\"\",,x"), vec!["1", "a,b", "say \"hi\"", "", "x"]);
    }

    #[test]
    fn summarises_per_label() {
        let jtl = "timeStamp,elapsed,label,responseCode,responseMessage,threadName,success\n\
                   1000,10,GET product,200,OK,t1,true\n\
                   1010,20,GET product,200,\"OK, fine\",t1,true\n\
                   1020,30,GET product,500,err,t2,false\n\
                   1030,40,GET product,200,OK,t2,true\n\
                   2000,5,POST movement,409,Conflict,t3,true\n";
        let groups = summarise(jtl).unwrap();
        assert_eq!(groups.len(), 2);
        let g = &groups[0];
        assert_eq!(g.label, "GET product");
        assert_eq!((g.requests, g.p50_ms, g.p95_ms, g.p99_ms, g.max_ms), (4, 20, 40, 40, 40));
        assert_eq!(g.mean_ms, 25.0);
        assert_eq!(g.error_rate, 0.25);
        // 4 requests between 1000 ms and 1070 ms.
        assert!((g.throughput_rps - 4.0 / 0.070).abs() < 1e-6);
        assert_eq!(groups[1].error_rate, 0.0);
        assert!(table(&groups).contains("| GET product | 4 | 57.1 | 25.00 | 20 | 40 | 40 | 40 | 25.00% |"));
    }

    #[test]
    fn missing_header_column_is_an_error() {
        assert!(summarise("a,b\n1,2\n").is_err());
    }
}
