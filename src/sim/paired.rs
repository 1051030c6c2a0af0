//! Differences over paired trials, with honest 95% intervals: trial `t` of two runs
//! compared (`plan simulate A B`) is one pair, so a difference is judged by how the pairs
//! differ, not by two independent samples (which would throw away what common random
//! numbers buy: most pairs agree, and only the ones that differ carry information).
//!
//! - A difference of two proportions over the same trials: Newcombe's (1998) method 10,
//!   the square-and-add of the two Wilson intervals corrected for the pairs' correlation
//!   (his φ, continuity-corrected as published), which keeps its coverage where the Wald
//!   interval of McNemar's difference fails: few discordant pairs, rates near 0 or 1.
//! - A difference of means (times to catch, requests served): the mean of the per-pair
//!   differences with Student's t interval.

use super::stats::Proportion;
use serde::Serialize;
use statrs::distribution::{ContinuousCDF, StudentsT};

/// The 95% two-sided normal quantile.
const Z: f64 = 1.959_963_984_540_054;

/// `B - A` for a yes/no figure counted over the same trials in two runs.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub(crate) struct PairedProportion {
    pub(crate) a: Proportion,
    pub(crate) b: Proportion,
    /// The pairs where only A said yes, and where only B did.
    pub(crate) only_a: u64,
    pub(crate) only_b: u64,
    /// `b - a`, with its 95% interval (NaN without trials).
    pub(crate) difference: f64,
    pub(crate) ci95: [f64; 2],
}

impl PairedProportion {
    /// From the four kinds of pair: both yes, only A, only B, neither.
    pub(crate) fn new(both: u64, only_a: u64, only_b: u64, neither: u64) -> PairedProportion {
        let n = both + only_a + only_b + neither;
        let a = Proportion::new(both + only_a, n);
        let b = Proportion::new(both + only_b, n);
        if n == 0 {
            return PairedProportion {
                a,
                b,
                only_a,
                only_b,
                difference: f64::NAN,
                ci95: [-1.0, 1.0],
            };
        }
        let (pa, pb) = (a.probability, b.probability);
        let ([la, ua], [lb, ub]) = (a.ci95, b.ci95);
        // φ of the 2x2 table, its numerator moved toward 0 by n/2 (Newcombe's correction).
        let (yes_a, no_a) = ((both + only_a) as f64, (only_b + neither) as f64);
        let (yes_b, no_b) = ((both + only_b) as f64, (only_a + neither) as f64);
        let margins = yes_a * no_a * yes_b * no_b;
        let cross = both as f64 * neither as f64 - only_a as f64 * only_b as f64;
        let half = n as f64 / 2.0;
        let corrected = if cross > half {
            cross - half
        } else if cross < 0.0 {
            cross
        } else {
            0.0
        };
        let phi = if margins > 0.0 {
            corrected / margins.sqrt()
        } else {
            0.0
        };
        let spread = |x: f64, y: f64| (x * x - 2.0 * phi * x * y + y * y).max(0.0).sqrt();
        let d = pb - pa;
        PairedProportion {
            a,
            b,
            only_a,
            only_b,
            difference: d,
            ci95: [
                (d - spread(pb - lb, ua - pa)).max(-1.0),
                (d + spread(ub - pb, pa - la)).min(1.0),
            ],
        }
    }
}

/// `B - A` for a number measured in both runs of the same trials, over the pairs where
/// both have it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub(crate) struct PairedMean {
    pub(crate) pairs: u64,
    pub(crate) a: f64,
    pub(crate) b: f64,
    /// Mean of `b - a` over the pairs, with its 95% interval (None under two pairs).
    pub(crate) difference: f64,
    pub(crate) ci95: Option<[f64; 2]>,
}

impl PairedMean {
    /// From the pairs `(a, b)`.
    pub(crate) fn new(pairs: &[(f64, f64)]) -> PairedMean {
        let n = pairs.len() as f64;
        let mean = |f: &dyn Fn(&(f64, f64)) -> f64| pairs.iter().map(f).sum::<f64>() / n;
        let (a, b) = (mean(&|p| p.0), mean(&|p| p.1));
        let d = mean(&|p| p.1 - p.0);
        let ci95 = (pairs.len() >= 2).then(|| {
            let var = pairs.iter().map(|p| (p.1 - p.0 - d).powi(2)).sum::<f64>() / (n - 1.0);
            let t = StudentsT::new(0.0, 1.0, n - 1.0).map_or(Z, |t| t.inverse_cdf(0.975));
            let half = t * (var / n).sqrt();
            [d - half, d + half]
        });
        PairedMean {
            pairs: pairs.len() as u64,
            a,
            b,
            difference: d,
            ci95,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Agresti's presidential-approval table (1,600 people asked twice: 794 approved both
    /// times, 150 only the first, 86 only the second, 570 neither; here "A" is the first
    /// survey): the difference is -0.04, and at this size Newcombe's interval lies within
    /// 0.0005 of the Wald interval of McNemar's difference, (-0.0587, -0.0213).
    #[test]
    fn a_large_table_agrees_with_wald() {
        let p = PairedProportion::new(794, 150, 86, 570);
        assert!((p.difference + 0.04).abs() < 1e-12);
        let n = 1600.0_f64;
        let (pa, pb) = (150.0 / n, 86.0 / n);
        let half = Z * ((pa + pb - (pa - pb).powi(2)) / n).sqrt();
        assert!(
            (p.ci95[0] - (-0.04 - half)).abs() < 5e-4,
            "{:?} {half}",
            p.ci95
        );
        assert!(
            (p.ci95[1] - (-0.04 + half)).abs() < 5e-4,
            "{:?} {half}",
            p.ci95
        );
    }

    #[test]
    fn paired_intervals_are_sound() {
        for (both, a, b, neither) in [
            (0, 0, 0, 100),
            (100, 0, 0, 0),
            (3, 0, 40, 57),
            (0, 1, 0, 1999),
            (500, 20, 5, 475),
            (0, 0, 0, 0),
        ] {
            let p = PairedProportion::new(both, a, b, neither);
            let swapped = PairedProportion::new(both, b, a, neither);
            if both + a + b + neither == 0 {
                assert!(p.difference.is_nan());
                continue;
            }
            // Contains the estimate, within [-1, 1], and swapping the runs flips it.
            assert!(
                p.ci95[0] <= p.difference && p.difference <= p.ci95[1],
                "{p:?}"
            );
            assert!(-1.0 <= p.ci95[0] && p.ci95[1] <= 1.0);
            assert!(
                (swapped.ci95[0] + p.ci95[1]).abs() < 1e-12,
                "{p:?} {swapped:?}"
            );
            // Agreeing pairs make it no wider than for independent samples (φ = 0).
            let ([la, ua], [lb, ub]) = (p.a.ci95, p.b.ci95);
            let (pa, pb) = (p.a.probability, p.b.probability);
            let independent = (pb - lb).hypot(ua - pa) + (ub - pb).hypot(pa - la);
            assert!(p.ci95[1] - p.ci95[0] <= independent + 1e-12, "{p:?}");
        }
        // No discordant pair among many: the difference is 0 and its interval tight.
        let same = PairedProportion::new(300, 0, 0, 1700);
        assert_eq!(same.difference, 0.0);
        assert!(same.ci95[1] - same.ci95[0] < 0.01, "{same:?}");
    }

    #[test]
    fn paired_means_use_the_differences() {
        // A constant shift is known exactly, however spread the values are.
        let pairs: Vec<(f64, f64)> = (0..50)
            .map(|i| (i as f64 * 10.0, i as f64 * 10.0 + 3.0))
            .collect();
        let m = PairedMean::new(&pairs);
        assert_eq!(m.difference, 3.0);
        assert_eq!(m.ci95, Some([3.0, 3.0]));
        // Differences 1, 2, 3: mean 2, sd 1, t(2) = 4.303.
        let m = PairedMean::new(&[(0.0, 1.0), (0.0, 2.0), (0.0, 3.0)]);
        let [lo, hi] = m.ci95.unwrap();
        assert!(
            (lo - (2.0 - 4.302_652_7 / 3f64.sqrt())).abs() < 1e-6,
            "{lo}"
        );
        assert!(
            (hi - (2.0 + 4.302_652_7 / 3f64.sqrt())).abs() < 1e-6,
            "{hi}"
        );
        assert_eq!(PairedMean::new(&[(1.0, 2.0)]).ci95, None);
    }
}
