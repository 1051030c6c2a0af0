//! Gauges that drift: a gauge's noise is an Ornstein-Uhlenbeck process, so that memory,
//! connection pools and business ratios wander slowly around their level as real ones do,
//! instead of taking a fresh independent value at every scrape.
//!
//! The noise `x` is stationary with unit variance; between two draws `d` apart it moves as
//! `x' = ρ·x + √(1-ρ²)·z` with `ρ = exp(-d/τ)` and `z` a fresh standard normal: the exact
//! transition of the process, for any gap, so a draw may come after evaluations that read
//! nothing (the reads a trial skips do not change the law). The first draw is `z` itself
//! (the stationary law), and with `τ = 0` every draw is `z`: one standard normal a draw,
//! as before, so a trial takes the same random numbers either way and a scenario file that
//! sets `time_constant: 0s` gives the numbers the simulator gave before gauges drifted.

/// One gauge's noise in one trial: its last value, and when it was drawn.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Noise {
    /// The scrape time of the last draw (None: not drawn yet).
    at: Option<i64>,
    x: f64,
}

impl Noise {
    pub(crate) const FRESH: Noise = Noise { at: None, x: 0.0 };

    /// The noise at scrape time `t` (not before the last draw's) for a gauge with time
    /// constant `tau_ms`, given a fresh standard normal `z`.
    #[inline]
    pub(crate) fn at(&mut self, t: i64, tau_ms: i64, z: f64) -> f64 {
        self.x = match self.at {
            Some(last) if tau_ms > 0 => {
                let rho = (-((t - last) as f64) / tau_ms as f64).exp();
                rho * self.x + (1.0 - rho * rho).sqrt() * z
            }
            _ => z,
        };
        self.at = Some(t);
        self.x
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{RngExt, SeedableRng, rngs::Xoshiro256PlusPlus};
    use rand_distr::StandardNormal;

    #[test]
    fn without_a_time_constant_every_draw_is_the_fresh_normal() {
        let mut n = Noise::FRESH;
        for (t, z) in [(0, 0.3), (15_000, -1.7), (15_000, 2.5), (900_000, -0.0)] {
            assert_eq!(n.at(t, 0, z).to_bits(), z.to_bits());
        }
    }

    /// The process is stationary with unit variance, and scrapes `d` apart correlate as
    /// `exp(-d/τ)`, whether drawn at every scrape or only now and then.
    #[test]
    fn scrapes_apart_correlate_as_the_time_constant_says() {
        let tau = 600_000;
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(7);
        for step in [15_000i64, 300_000] {
            let (mut n, mut prev) = (Noise::FRESH, None);
            let (mut sx, mut sxx, mut sxy, mut pairs) = (0.0, 0.0, 0.0, 0.0);
            for i in 0..200_000 {
                let x = n.at(i * step, tau, rng.sample(StandardNormal));
                sx += x;
                sxx += x * x;
                if let Some(p) = prev {
                    sxy += x * p;
                    pairs += 1.0;
                }
                prev = Some(x);
            }
            let count = 200_000.0;
            let (mean, var) = (sx / count, sxx / count);
            let rho = (-(step as f64) / tau as f64).exp();
            assert!(mean.abs() < 0.05, "{step}: mean {mean}");
            assert!((var - 1.0).abs() < 0.03, "{step}: variance {var}");
            assert!(
                (sxy / pairs - rho).abs() < 0.02,
                "{step}: lag correlation {} against {rho}",
                sxy / pairs
            );
        }
    }
}
