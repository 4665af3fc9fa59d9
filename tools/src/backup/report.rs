//! The backup report for Prometheus: the newest good backup's age and size
//! (`pgbackrest info --output=json`) and the archiver's state
//! (`pg_stat_archiver`, and the WAL segments still waiting to be pushed).

use atelier_exposition::{labels, Exposition, Labels};
use serde::Deserialize;

use crate::db::{connect, ToolError, ToolResult};

/// One stanza of `pgbackrest info --output=json`: only what the report uses.
#[derive(Debug, Deserialize)]
struct StanzaInfo {
    status: InfoStatus,
    #[serde(default)]
    backup: Vec<BackupInfo>,
}

#[derive(Debug, Deserialize)]
struct InfoStatus {
    code: i64,
    message: String,
}

#[derive(Debug, Deserialize)]
struct BackupInfo {
    #[serde(rename = "type")]
    kind: String,
    timestamp: Timestamps,
    info: SizeInfo,
    #[serde(default)]
    error: bool,
}

#[derive(Debug, Deserialize)]
struct Timestamps {
    stop: i64,
}

#[derive(Debug, Deserialize)]
struct SizeInfo {
    size: i64,
    repository: RepoSize,
}

#[derive(Debug, Deserialize)]
struct RepoSize {
    delta: i64,
}

/// What the backup report says, read at one moment.
#[derive(Debug, Default, PartialEq)]
pub struct BackupReport {
    /// pgbackrest's stanza status (0 = ok) and its message.
    pub status_code: i64,
    pub status_message: String,
    /// The newest good (not errored) backup of each type: (type, stop time
    /// as Unix seconds, database size, bytes it added to the repository).
    pub newest: Vec<(String, i64, i64, i64)>,
    /// Good backups in the repository.
    pub backups: usize,
    /// pg_stat_archiver: segments pushed and failed since the stats reset,
    /// and when the last of each happened (Unix seconds).
    pub archived_count: i64,
    pub failed_count: i64,
    pub last_archived: Option<f64>,
    pub last_failed: Option<f64>,
    /// WAL segments finished but not yet pushed (`.ready` files).
    pub ready_segments: i64,
    /// When the report was read (Unix seconds).
    pub now: f64,
}

impl BackupReport {
    /// Reads the report: `info_json` from `pgbackrest info --output=json`,
    /// the archiver's state from the primary at `primary_url` (a superuser
    /// or a pg_monitor member: the `.ready` count needs it).
    pub async fn read(info_json: &str, primary_url: &str) -> ToolResult<BackupReport> {
        let mut report = BackupReport::from_info(info_json)?;
        let client = connect(primary_url).await?;
        let row = client
            .query_one(
                "select archived_count, failed_count,
                        extract(epoch from last_archived_time)::float8,
                        extract(epoch from last_failed_time)::float8,
                        (select count(*) from pg_ls_archive_statusdir() where name like '%.ready'),
                        extract(epoch from now())::float8
                 from pg_stat_archiver",
                &[],
            )
            .await?;
        report.archived_count = row.get(0);
        report.failed_count = row.get(1);
        report.last_archived = row.get(2);
        report.last_failed = row.get(3);
        report.ready_segments = row.get(4);
        report.now = row.get(5);
        Ok(report)
    }

    /// The pgbackrest half of the report.
    pub fn from_info(info_json: &str) -> ToolResult<BackupReport> {
        let stanzas: Vec<StanzaInfo> = serde_json::from_str(info_json)
            .map_err(|e| ToolError::msg(format!("cannot read `pgbackrest info --output=json`: {e}")))?;
        let stanza = stanzas.into_iter().next().ok_or_else(|| ToolError::msg("pgbackrest info: no stanza"))?;
        let good: Vec<&BackupInfo> = stanza.backup.iter().filter(|b| !b.error).collect();
        let mut newest: Vec<(String, i64, i64, i64)> = Vec::new();
        for kind in ["full", "diff", "incr"] {
            if let Some(b) = good.iter().filter(|b| b.kind == kind).max_by_key(|b| b.timestamp.stop) {
                newest.push((kind.to_string(), b.timestamp.stop, b.info.size, b.info.repository.delta));
            }
        }
        Ok(BackupReport {
            status_code: stanza.status.code,
            status_message: stanza.status.message,
            newest,
            backups: good.len(),
            ..BackupReport::default()
        })
    }

    /// Seconds since the newest good backup of any type finished.
    pub fn newest_age(&self) -> Option<f64> {
        self.newest.iter().map(|(_, stop, _, _)| *stop).max().map(|stop| self.now - stop as f64)
    }

    /// Whether the archiver's last attempt failed.
    pub fn archive_failing(&self) -> bool {
        match (self.last_failed, self.last_archived) {
            (Some(failed), Some(archived)) => failed > archived,
            (Some(_), None) => true,
            _ => false,
        }
    }

    /// The report in Prometheus' text format (for node_exporter's textfile
    /// collector, or scraped from a file by any agent).
    pub fn prometheus(&self) -> String {
        let mut out = Exposition::default();
        let by_type = |value: fn(&(String, i64, i64, i64), f64) -> f64| -> Samples {
            self.newest.iter().map(|newest| (labels([("type", &newest.0)]), value(newest, self.now))).collect()
        };
        let gauges: [(&'static str, &'static str, Samples); 9] = [
            (
                "atelier_backup_status_ok",
                "1 when pgbackrest reports the stanza ok (code 0), else 0.",
                vec![(Vec::new(), f64::from(u8::from(self.status_code == 0)))],
            ),
            ("atelier_backup_count", "Good backups in the repository.", vec![(Vec::new(), self.backups as f64)]),
            (
                "atelier_backup_newest_age_seconds",
                "Seconds since the newest good backup of each type finished.",
                by_type(|(_, stop, _, _), now| now - *stop as f64),
            ),
            (
                "atelier_backup_newest_size_bytes",
                "Database size of the newest good backup of each type.",
                by_type(|(_, _, size, _), _| *size as f64),
            ),
            (
                "atelier_backup_newest_repository_bytes",
                "Bytes the newest good backup of each type added to the repository (compressed).",
                by_type(|(_, _, _, delta), _| *delta as f64),
            ),
            (
                "atelier_archive_failing",
                "1 when the last archive_command attempt failed (pg_stat_archiver), else 0.",
                vec![(Vec::new(), f64::from(u8::from(self.archive_failing())))],
            ),
            (
                "atelier_archive_failed_segments",
                "WAL segments whose archiving failed since the statistics were reset.",
                vec![(Vec::new(), self.failed_count as f64)],
            ),
            (
                "atelier_archive_archived_segments",
                "WAL segments archived since the statistics were reset.",
                vec![(Vec::new(), self.archived_count as f64)],
            ),
            (
                "atelier_archive_ready_segments",
                "Finished WAL segments not yet in the repository.",
                vec![(Vec::new(), self.ready_segments as f64)],
            ),
        ];
        for (name, help, samples) in gauges {
            let mut family = out.gauge(name, help);
            for (labels, value) in samples {
                family.float(labels, value);
            }
        }
        if let Some(archived) = self.last_archived {
            out.gauge(
                "atelier_archive_last_success_age_seconds",
                "Seconds since a WAL segment last reached the repository.",
            )
            .float(Vec::new(), self.now - archived);
        }
        out.render()
    }
}

/// A gauge's samples: labels and value.
type Samples = Vec<(Labels, f64)>;

#[cfg(test)]
mod tests {
    use super::*;

    /// The shape pgbackrest 2.45 prints (trimmed), with one errored backup
    /// that must not count as good.
    const INFO: &str = r#"[{"name":"atelier","status":{"code":0,"message":"ok"},
      "backup":[
        {"type":"full","timestamp":{"start":100,"stop":110},"info":{"size":1000,"delta":1000,"repository":{"size":300,"delta":300}},"error":false},
        {"type":"diff","timestamp":{"start":200,"stop":205},"info":{"size":1100,"delta":100,"repository":{"size":320,"delta":40}},"error":false},
        {"type":"full","timestamp":{"start":300,"stop":310},"info":{"size":1200,"delta":1200,"repository":{"size":350,"delta":350}},"error":true}
      ]}]"#;

    #[test]
    fn the_report_counts_only_good_backups() {
        let mut report = BackupReport::from_info(INFO).unwrap();
        report.now = 1000.0;
        assert_eq!(report.backups, 2);
        assert_eq!(report.newest, vec![("full".into(), 110, 1000, 300), ("diff".into(), 205, 1100, 40)]);
        assert_eq!(report.newest_age(), Some(795.0));
        let text = report.prometheus();
        assert!(text.contains("atelier_backup_newest_age_seconds{type=\"full\"} 890\n"), "{text}");
        assert!(text.contains("atelier_backup_status_ok 1\n"), "{text}");
        assert!(text.contains("atelier_backup_count 2\n"), "{text}");
    }

    #[test]
    fn an_empty_stanza_has_no_newest_backup() {
        let report = BackupReport::from_info(
            r#"[{"name":"atelier","status":{"code":2,"message":"no valid backups"},"backup":[]}]"#,
        )
        .unwrap();
        assert_eq!(report.newest_age(), None);
        assert!(report.prometheus().contains("atelier_backup_status_ok 0\n"));
    }

    #[test]
    fn a_failure_after_the_last_success_is_failing() {
        let mut report = BackupReport { last_archived: Some(10.0), last_failed: Some(20.0), ..Default::default() };
        assert!(report.archive_failing());
        report.last_archived = Some(30.0);
        assert!(!report.archive_failing());
        report.last_archived = None;
        assert!(report.archive_failing());
    }
}
