//! Estimates with honest uncertainty: Wilson score intervals for proportions and exact
//! quantiles from integer histograms (which also keep memory flat in the number of trials).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// A proportion `k / n` with its 95% Wilson interval and Monte Carlo standard error.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub(crate) struct Proportion {
    pub(crate) count: u64,
    pub(crate) trials: u64,
    pub(crate) probability: f64,
    pub(crate) ci95: [f64; 2],
    pub(crate) std_error: f64,
}

impl Proportion {
    pub(crate) fn new(count: u64, trials: u64) -> Proportion {
        if trials == 0 {
            return Proportion {
                count,
                trials,
                probability: f64::NAN,
                ci95: [0.0, 1.0],
                std_error: f64::NAN,
            };
        }
        let n = trials as f64;
        let p = count as f64 / n;
        let z = 1.959_963_984_540_054_f64;
        let z2 = z * z;
        let denom = 1.0 + z2 / n;
        let centre = (p + z2 / (2.0 * n)) / denom;
        let half = z * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt() / denom;
        let lo = if count == 0 {
            0.0
        } else {
            (centre - half).max(0.0)
        };
        let hi = if count == trials {
            1.0
        } else {
            (centre + half).min(1.0)
        };
        Proportion {
            count,
            trials,
            probability: p,
            ci95: [lo, hi],
            std_error: (p * (1.0 - p) / n).sqrt(),
        }
    }
}

/// Counts of integer values (e.g. detection times in milliseconds); quantiles are exact.
/// Only the values seen are stored, so memory grows with the distinct values (at most one
/// per evaluation of a release), not with their size. Stored (in a shard's tallies) as
/// `[value, count]` pairs, its total recomputed when read.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(into = "Vec<(usize, u64)>", from = "Vec<(usize, u64)>")]
pub(crate) struct Histogram {
    counts: BTreeMap<usize, u64>,
    total: u64,
}

impl From<Histogram> for Vec<(usize, u64)> {
    fn from(h: Histogram) -> Self {
        h.counts.into_iter().collect()
    }
}

impl From<Vec<(usize, u64)>> for Histogram {
    fn from(pairs: Vec<(usize, u64)>) -> Self {
        let mut h = Histogram::default();
        for (v, c) in pairs {
            let n = h.counts.entry(v).or_default();
            *n = n.saturating_add(c);
            h.total = h.total.saturating_add(c);
        }
        h
    }
}

impl Histogram {
    pub(crate) fn add(&mut self, v: usize) {
        *self.counts.entry(v).or_default() += 1;
        self.total += 1;
    }

    pub(crate) fn merge(&mut self, other: &Histogram) {
        for (&v, &c) in &other.counts {
            *self.counts.entry(v).or_default() += c;
        }
        self.total += other.total;
    }

    pub(crate) fn total(&self) -> u64 {
        self.total
    }

    /// The largest value counted.
    pub(crate) fn max(&self) -> Option<usize> {
        self.counts.keys().next_back().copied()
    }

    /// The smallest value with at least `q` of the mass at or below it (nearest rank).
    pub(crate) fn quantile(&self, q: f64) -> Option<usize> {
        if self.total == 0 {
            return None;
        }
        let rank = ((q * self.total as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (&v, &c) in &self.counts {
            seen += c;
            if seen >= rank {
                return Some(v);
            }
        }
        None
    }
}

/// Test support for closed-form checks of Monte Carlo rates.
#[cfg(test)]
impl Proportion {
    /// Prints the rate beside `expected` and panics unless `expected` lies in the 95%
    /// interval; `what` names the rate (and anything that helps read a failure).
    pub(crate) fn assert_covers(&self, expected: f64, what: &str) {
        let shown = format!(
            "{what}: {} of {} ({:.4}, 95% {:.4}..{:.4}); closed form {expected:.4}",
            self.count, self.trials, self.probability, self.ci95[0], self.ci95[1]
        );
        eprintln!("{shown}");
        assert!(
            self.ci95[0] <= expected && expected <= self.ci95[1],
            "{shown}"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wilson_matches_known_values() {
        let p = Proportion::new(0, 2000);
        assert_eq!(p.ci95[0], 0.0);
        // Zero events in n trials: the upper bound is about 3.84/n.
        assert!((p.ci95[1] - 0.00192).abs() < 1e-4, "{:?}", p.ci95);
        let p = Proportion::new(50, 100);
        assert!((p.ci95[0] - 0.4038).abs() < 1e-3 && (p.ci95[1] - 0.5962).abs() < 1e-3);
    }

    #[test]
    fn quantiles_are_nearest_rank() {
        let mut h = Histogram::default();
        for v in 1..=100 {
            h.add(v);
        }
        assert_eq!(h.quantile(0.5), Some(50));
        assert_eq!(h.quantile(0.9), Some(90));
        assert_eq!(h.quantile(0.99), Some(99));
        let mut far = Histogram::default();
        far.add(usize::MAX);
        far.add(3);
        far.merge(&h);
        assert_eq!(far.total(), 102);
        assert_eq!(far.quantile(0.0), Some(1));
        assert_eq!(far.quantile(1.0), Some(usize::MAX));
    }
}
