//! The ledger of one replica's reconciliations: a node_exporter textfile.

/// What the reconciliations of one replica have done, kept as a Prometheus
/// text file (node_exporter's textfile collector reads it): counts by
/// result, and the primary timeline last reconciled.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Ledger {
    pub timeline: Option<u32>,
    pub consistent: u64,
    pub resynced: u64,
    pub failed: u64,
}

impl Ledger {
    /// Reads a ledger written by `render`; lines it does not know are
    /// ignored, so a missing or foreign file is an empty ledger.
    pub fn parse(text: &str) -> Ledger {
        let mut ledger = Ledger::default();
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let Some((name, value)) = line.rsplit_once(' ') else { continue };
            match name {
                "atelier_reconcile_timeline" => ledger.timeline = value.parse().ok(),
                r#"atelier_reconcile_total{result="consistent"}"# => ledger.consistent = value.parse().unwrap_or(0),
                r#"atelier_reconcile_total{result="resynced"}"# => ledger.resynced = value.parse().unwrap_or(0),
                r#"atelier_reconcile_total{result="failed"}"# => ledger.failed = value.parse().unwrap_or(0),
                _ => {}
            }
        }
        ledger
    }

    pub fn render(&self) -> String {
        let mut out = atelier_exposition::Exposition::default();
        let mut total =
            out.counter("atelier_reconcile", "Reconciliations of this replica with a new primary timeline, by result.");
        for (result, count) in [("consistent", self.consistent), ("resynced", self.resynced), ("failed", self.failed)] {
            total.count(atelier_exposition::labels([("result", result)]), count);
        }
        if let Some(timeline) = self.timeline {
            out.gauge("atelier_reconcile_timeline", "The primary's timeline this replica was last reconciled with.")
                .integer(Vec::new(), timeline);
        }
        out.render()
    }
}

#[cfg(test)]
mod tests {
    use super::Ledger;

    #[test]
    fn a_ledger_reads_back_what_it_wrote() {
        let ledger = Ledger { timeline: Some(7), consistent: 3, resynced: 1, failed: 2 };
        assert_eq!(Ledger::parse(&ledger.render()), ledger);
        assert_eq!(Ledger::parse(""), Ledger::default());
        assert_eq!(Ledger::parse("garbage\natelier_reconcile_timeline x\n").timeline, None);
    }
}
