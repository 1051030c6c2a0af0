//! Poisson draws by table inversion, for a mean that a whole batch of trials shares.
//!
//! Trials run in lock step ([`super::Clock`]) draw each span's counts with the same mean, so
//! one table of the Poisson CDF serves every trial of the batch: a draw is then one uniform,
//! a guide-table lookup and, on average, about one comparison (Chen and Asau's indexed
//! search), where a rejection sampler pays a logarithm and two uniforms. The answer is the
//! inversion `min{k : u < F(k)}`, the same count any inversion of the same `u` gives.
//!
//! The search runs on the uniform's 53 bits as an integer `x` (`u = x / 2^53`): with each
//! CDF entry stored as the integer `ceil(F(k) * 2^53)`, `u < F(k)` exactly when `x` is
//! below it, and the guide entry is `x`'s top bits (the guide's length is a power of two),
//! so the draw takes no floating point and no rounding can start the search past the
//! answer.
//!
//! The probabilities are built outward from the mode by the ratios `p(k+1)/p(k) = μ/(k+1)`
//! and normalised by their sum, so no `exp` or `ln Γ` is taken; the table stops where a
//! probability falls below 1e-20 of the mode's, a mass the 53-bit uniform cannot resolve.

/// Relative probability at which the table stops, on each side of the mode.
const CUTOFF: f64 = 1e-20;

/// `2^53`: the uniforms' integers are below it.
const ONE: f64 = (1u64 << 53) as f64;

/// The Poisson CDF for one mean, with a guide table for indexed search.
#[derive(Debug, Clone, Default)]
pub(crate) struct PoissonTable {
    /// The smallest count in the table.
    lo: u64,
    /// `cdf[i]` is `P(X <= lo + i)`; the last entry is exactly 1.
    cdf: Vec<f64>,
    /// `above[i]` is `ceil(cdf[i] * 2^53)`: the smallest 53-bit integer `x` for which the
    /// uniform `x / 2^53` is not below `cdf[i]`.
    above: Vec<u64>,
    /// `guide[g]` is the entry that answers the smallest `x` with `x >> shift == g`
    /// (the power of two at or above the table's length is the guide's), with its bound
    /// and the next entry's at hand: the usual draw reads one place and takes no branch.
    guide: Vec<Guide>,
    shift: u32,
}

impl PoissonTable {
    /// Rebuilds the table for mean `mu` (positive and finite), reusing its storage.
    pub(crate) fn fill(&mut self, mu: f64) {
        debug_assert!(mu > 0.0 && mu.is_finite());
        let mode = mu.floor() as u64;
        let inv_mu = 1.0 / mu;
        let cdf = &mut self.cdf;
        cdf.clear();
        // Below the mode, walking down (reversed afterwards).
        let (mut w, mut k) = (1.0f64, mode);
        cdf.push(w);
        while k > 0 {
            w *= k as f64 * inv_mu;
            if w < CUTOFF {
                break;
            }
            k -= 1;
            cdf.push(w);
        }
        self.lo = k;
        cdf.reverse();
        // Above the mode.
        let (mut w, mut k) = (1.0f64, mode);
        loop {
            k += 1;
            w *= mu / k as f64;
            if w < CUTOFF {
                break;
            }
            cdf.push(w);
        }
        let mut sum = 0.0;
        for c in cdf.iter_mut() {
            sum += *c;
            *c = sum;
        }
        let inv = 1.0 / sum;
        for c in cdf.iter_mut() {
            *c *= inv;
        }
        // Every uniform in [0, 1) is below the last entry.
        if let Some(last) = cdf.last_mut() {
            *last = 1.0;
        }
        // `c * 2^53` is exact (a power of two), and at most 2^53.
        self.above.clear();
        self.above.extend(cdf.iter().map(|&c| ceil(c * ONE)));
        let g = cdf.len().next_power_of_two() as u64;
        self.shift = 53 - g.trailing_zeros();
        // Entry `i` is the answer for the buckets whose first `x` (`j << shift`) lies in
        // [above[i - 1], above[i]): those from the last one's end to ceil(above[i] / 2^shift).
        self.guide.clear();
        let round_up = (1u64 << self.shift) - 1;
        for (i, &above) in self.above.iter().enumerate() {
            let end = ((above + round_up) >> self.shift) as usize;
            if end > self.guide.len() {
                let entry = Guide {
                    above,
                    // The last entry's bound is above every `x`.
                    next: self.above.get(i + 1).copied().unwrap_or(above),
                    count: self.lo + i as u64,
                };
                self.guide.resize(end, entry);
            }
        }
        debug_assert_eq!(self.guide.len() as u64, g);
    }

    /// The count whose CDF interval holds the uniform `x / 2^53` (`x` below 2^53).
    #[inline]
    pub(crate) fn sample(&self, x: u64) -> u64 {
        debug_assert!(x < 1 << 53);
        let g = self.guide[(x >> self.shift) as usize];
        if x < g.next {
            return g.count + u64::from(x >= g.above);
        }
        self.search((g.count - self.lo) as usize + 2, x)
    }

    /// The answer for `x` from entry `i` on.
    #[cold]
    #[inline(never)]
    fn search(&self, mut i: usize, x: u64) -> u64 {
        while self.above[i] <= x {
            i += 1;
        }
        self.lo + i as u64
    }

    /// The number of entries (the cost of a fill).
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.cdf.len()
    }
}

/// A guide entry: the count an entry of the table answers, its bound, and the next
/// entry's bound (a bucket rarely holds two).
#[derive(Debug, Clone, Copy, Default)]
struct Guide {
    above: u64,
    next: u64,
    count: u64,
}

/// `v.ceil()` for `0 <= v <= 2^53`, as an integer: truncated, plus one if that lost a
/// fraction (`f64::ceil` is a library call on baseline x86-64; the conversions through
/// `i64` are one instruction each, and exact in this range).
#[inline(always)]
fn ceil(v: f64) -> u64 {
    let t = v as i64;
    (t + i64::from((t as f64) < v)) as u64
}

/// The tables a batch of trials draws from, kept while their means recur (a mean holds
/// for a block of the daily cycle).
#[derive(Debug, Default)]
pub(crate) struct Pool {
    /// The bits of each kept table's mean.
    means: Vec<u64>,
    /// The tables; those past `means.len()` are spare storage.
    tables: Vec<PoissonTable>,
}

impl Pool {
    /// Forgets every table (keeps their storage).
    pub(crate) fn clear(&mut self) {
        self.means.clear();
    }

    /// The index of the table for `mu`, built unless the pool has it.
    pub(crate) fn build(&mut self, mu: f64) -> usize {
        let bits = mu.to_bits();
        if let Some(i) = self.means.iter().position(|&b| b == bits) {
            return i;
        }
        let i = self.means.len();
        if i == self.tables.len() {
            self.tables.push(PoissonTable::default());
        }
        self.tables[i].fill(mu);
        self.means.push(bits);
        i
    }

    #[inline]
    pub(crate) fn get(&self, i: usize) -> &PoissonTable {
        &self.tables[i]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use statrs::distribution::{Discrete, DiscreteCDF, Poisson};

    #[test]
    fn the_table_is_the_poisson_cdf() {
        let mut t = PoissonTable::default();
        for mu in [1.0, 1.5, 6.2, 36.0, 107.9, 1200.0, 2999.0] {
            t.fill(mu);
            let d = Poisson::new(mu).unwrap();
            for (i, &c) in t.cdf.iter().enumerate() {
                let k = t.lo + i as u64;
                let want = d.cdf(k);
                assert!((c - want).abs() < 1e-10, "mu {mu}, k {k}: {c} vs {want}");
            }
            // What lies outside the table has no mass a uniform can reach.
            assert!(t.lo == 0 || d.cdf(t.lo - 1) < 1e-17, "mu {mu}: below");
            assert!(d.pmf(t.lo + t.len() as u64) < 1e-18, "mu {mu}: above");
        }
    }

    #[test]
    fn ceil_is_f64_ceil() {
        let mut rng = rand::rngs::Xoshiro256PlusPlus::seed_from_u64(4);
        let edges = [
            0.0,
            0.5,
            1.0,
            1.0 + f64::EPSILON,
            2.5,
            ONE - 0.5,
            ONE - 1.0,
            ONE,
        ];
        let random = (0..100_000).map(|_| (rng.next_u64() >> 11) as f64 / ONE);
        for v in edges.into_iter().chain(random.map(|c| c * ONE)) {
            assert_eq!(ceil(v), v.ceil() as u64, "{v}");
        }
    }

    #[test]
    fn sampling_inverts_the_cdf() {
        let mut t = PoissonTable::default();
        let mut rng = rand::rngs::Xoshiro256PlusPlus::seed_from_u64(3);
        for mu in [1.0, 3.3, 48.0, 900.5, 2999.0] {
            t.fill(mu);
            // The inversion in floating point, by a linear search.
            let invert = |x: u64| {
                let u = x as f64 / ONE;
                t.lo + t.cdf.iter().position(|&c| u < c).unwrap() as u64
            };
            // At each entry's boundary and just below it.
            for i in 0..t.cdf.len() - 1 {
                let x = (t.cdf[i] * ONE).ceil() as u64;
                if x < 1 << 53 {
                    assert_eq!(t.sample(x), invert(x), "mu {mu} at F({i})");
                }
                if x > 0 {
                    assert_eq!(t.sample(x - 1), invert(x - 1), "mu {mu} below F({i})");
                }
            }
            // At the guide buckets' edges, and anywhere.
            for j in 0..t.guide.len() as u64 {
                let first = j << t.shift;
                for x in [first.saturating_sub(1), first, first + 1] {
                    assert_eq!(t.sample(x), invert(x), "mu {mu} at guide {j}");
                }
            }
            for _ in 0..20_000 {
                let x = rng.next_u64() >> 11;
                assert_eq!(t.sample(x), invert(x), "mu {mu}, x {x}");
            }
            assert_eq!(t.sample(0), t.lo);
            // The largest uniform lands on the first count whose CDF rounds to 1.
            let top = (1 << 53) - 1;
            assert_eq!(t.sample(top), invert(top));
        }
    }
}
