//! A fault's effects on the canary's recorded traffic, one scrape span at a time.
//!
//! The recording says how many requests a span holds, not when: they are taken as spread
//! evenly over it, so a fault whose intensity changes inside the span (an onset, a burst's
//! edge, a leak's step) touches each request with the span's mean intensity
//! ([`mean_intensity`]), the same law as drawing each request's time.
//!
//! - **Failures.** A fault's `error_rate` is the canary's error rate at full effect, as in
//!   the synthetic model: where the recording's failure share `p` (over all of it) is below
//!   it, each answered request of the affected users fails with probability
//!   `intensity · (error_rate - p) / (1 - p)`, so that a request fails with probability
//!   `p + intensity · (error_rate - p)` where the recording's failures are those of
//!   independent requests failing with `p`: the synthetic model's law.
//! - **Latency.** An affected request's latency is multiplied by `1 + intensity ·
//!   (latency_factor - 1)`, and a further share `intensity · tail_share` of them by the
//!   baseline's `tail_factor` too. Within its bucket interval a request's latency is
//!   taken as uniform, so the multiplied latency falls in each interval in proportion to
//!   the overlap ([`move_by`]); requests above the last finite bound stay there.

use crate::sim::synth::Faults;
use rand::rngs::Xoshiro256PlusPlus;
use rand_distr::{Binomial, Distribution};

/// The fault's mean intensity over `(t0, t1]` for a canary serving `canary_rps`.
pub(super) fn mean_intensity(f: &dyn Faults, (t0, t1): (i64, i64), canary_rps: f64) -> f64 {
    let mut sum = 0.0;
    let mut a = t0;
    while a < t1 {
        let b = f.next_change(a).filter(|&c| c > a && c < t1).unwrap_or(t1);
        sum += f.intensity(f.level_at(a, canary_rps)) * (b - a) as f64;
        a = b;
    }
    sum / (t1 - t0) as f64
}

/// A Binomial(`n`, `p`) draw (0 for an empty or impossible one).
pub(super) fn binomial(rng: &mut Xoshiro256PlusPlus, n: u64, p: f64) -> u64 {
    if n == 0 || p <= 0.0 {
        return 0;
    }
    if p >= 1.0 {
        return n;
    }
    Binomial::new(n, p).map_or(0, |b| b.sample(rng))
}

/// Moves `m` requests out of interval `k` of `counts` (intervals `(les[k-1], les[k]]`,
/// from 0; the last above every finite bound) to where their latency times `factor`
/// falls, each latency log-uniform within its interval (uniform in the first, from 0):
/// latencies spread over orders of magnitude, and a bucket's requests crowd towards its
/// lower bound where the density falls, as a lognormal's does above its median.
pub(super) fn move_by(
    rng: &mut Xoshiro256PlusPlus,
    counts: &mut [u64],
    les: &[f64],
    (k, m): (usize, u64),
    factor: f64,
) {
    let last = les.len() - 1;
    if m == 0 || k == last || factor == 1.0 {
        return;
    }
    let lo = if k == 0 { 0.0 } else { les[k - 1].max(0.0) };
    let hi = les[k];
    // Positions within the interval: log-scale where it has a positive lower bound.
    let log = lo > 0.0;
    let at = |x: f64| if log { x.ln() } else { x };
    let (a, b) = (at(lo * factor), at(hi * factor));
    let width = b - a;
    if width.partial_cmp(&0.0) != Some(std::cmp::Ordering::Greater) {
        return;
    }
    counts[k] -= m;
    let mut left = m;
    let mut mass = 1.0;
    for i in 0..=last {
        if left == 0 {
            break;
        }
        let ilo = if i == 0 {
            f64::NEG_INFINITY
        } else {
            at(les[i - 1])
        };
        let ihi = at(les[i]);
        let overlap = (b.min(ihi) - a.max(ilo)).max(0.0) / width;
        if overlap <= 0.0 {
            continue;
        }
        let n = if i == last || overlap >= mass {
            left
        } else {
            binomial(rng, left, overlap / mass)
        };
        counts[i] += n;
        left -= n;
        mass -= overlap;
    }
    counts[last] += left;
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn doubling_moves_requests_in_proportion_to_the_overlap() {
        // (0, 0.1], (0.1, 0.2], (0.2, 0.4], +Inf. Doubling (0.1, 0.2] gives (0.2, 0.4].
        let les = [0.1, 0.2, 0.4, f64::INFINITY];
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(3);
        let mut counts = [0, 1000, 0, 0];
        move_by(&mut rng, &mut counts, &les, (1, 1000), 2.0);
        assert_eq!(counts, [0, 0, 1000, 0]);
        // Tripling (0, 0.1] (uniform from 0) gives (0, 0.3]: a third in (0, 0.1], a third
        // in (0.1, 0.2] and a third in (0.2, 0.3].
        let mut counts = [30_000, 0, 0, 0];
        move_by(&mut rng, &mut counts, &les, (0, 30_000), 3.0);
        assert_eq!(counts.iter().sum::<u64>(), 30_000);
        for &c in &counts[..3] {
            assert!((c as f64 - 10_000.0).abs() < 400.0, "{counts:?}");
        }
        assert_eq!(counts[3], 0);
        // Log-uniform in (0.2, 0.4]: tripled, (0.6, 1.2], all above 0.4.
        let mut counts = [0, 0, 50, 0];
        move_by(&mut rng, &mut counts, &les, (2, 50), 3.0);
        assert_eq!(counts, [0, 0, 0, 50]);
        // Log-uniform in (0.1, 0.2]: times 1.5 gives (0.15, 0.3]; (0.15, 0.2] holds
        // ln(0.2/0.15)/ln 2 = 41.5% of it.
        let mut counts = [0, 20_000, 0, 0];
        move_by(&mut rng, &mut counts, &les, (1, 20_000), 1.5);
        let share = counts[1] as f64 / 20_000.0;
        assert!(
            (share - (0.2f64 / 0.15).ln() / 2f64.ln()).abs() < 0.015,
            "{counts:?}"
        );
        // Past the last finite bound: +Inf.
        let mut counts = [0, 0, 100, 0];
        move_by(&mut rng, &mut counts, &les, (2, 100), 10.0);
        assert_eq!(counts, [0, 0, 0, 100]);
    }
}
