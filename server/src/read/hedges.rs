//! The hedge budget: how many second read attempts may start.

use std::sync::atomic::{AtomicI64, Ordering};

/// Hedged reads as a bounded share of all reads (a token bucket): each
/// read earns `percent` hundredths of a hedge, a hedge spends one whole.
/// Without a bound, hedging feeds on itself under load: slow reads start
/// second reads, which make every read slower (measured: 118,835 hedges in
/// 70 s and most requests failed at a rate served cleanly before).
pub(crate) struct HedgeBudget {
    percent: i64,
    /// Hundredths of a hedge saved up, at most `BURST` hedges' worth.
    tokens: AtomicI64,
}

impl HedgeBudget {
    /// Hedges that may start back to back after a quiet spell.
    const BURST: i64 = 20;

    pub fn new(percent: u32) -> HedgeBudget {
        HedgeBudget { percent: i64::from(percent), tokens: AtomicI64::new(HedgeBudget::BURST * 100) }
    }

    /// A read started.
    pub fn earn(&self) {
        let cap = HedgeBudget::BURST * 100;
        if self.tokens.load(Ordering::Relaxed) < cap {
            self.tokens.fetch_add(self.percent, Ordering::Relaxed);
        }
    }

    /// Takes one hedge from the budget if there is one.
    pub fn spend(&self) -> bool {
        if self.tokens.fetch_sub(100, Ordering::Relaxed) >= 100 {
            true
        } else {
            self.tokens.fetch_add(100, Ordering::Relaxed);
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hedge_budget_is_a_burst_then_a_share_of_reads() {
        let budget = HedgeBudget::new(5);
        for i in 0..HedgeBudget::BURST {
            assert!(budget.spend(), "hedge {i} of the burst");
        }
        assert!(!budget.spend(), "the burst is spent");
        // 5% of reads: one hedge per 20 reads, not sooner.
        for _ in 0..19 {
            budget.earn();
        }
        assert!(!budget.spend(), "19 reads do not pay for a hedge");
        budget.earn();
        assert!(budget.spend(), "the 20th read does");
        assert!(!budget.spend());
        // Quiet reads refill at most the burst.
        for _ in 0..10_000 {
            budget.earn();
        }
        let spent = (0..1_000).take_while(|_| budget.spend()).count();
        assert_eq!(spent as i64, HedgeBudget::BURST, "saved up to the burst, no more");
    }
}
