//! Exact samplers for the Monte Carlo hot loop: Poisson, binomial and histogram counts.
//!
//! A trial draws tens of thousands of counts, each with parameters that change every time
//! (the request rate follows the daily cycle), so setup cost matters as much as sampling
//! cost. `rand_distr`'s binomial pays a `powf` per draw and its BTPE loops up to twenty
//! times in its acceptance step; these samplers are exact too (rejection methods accept with
//! the true probability mass function; inversion walks the true CDF) and cost a few
//! nanoseconds on their common path:
//!
//! - Poisson, mean < 10: inversion by sequential search from 0; otherwise Hörmann's PTRS
//!   (transformed rejection with squeeze, 1993), as NumPy draws it, with the squeeze's
//!   divisions multiplied out. A thinned mean (`λ·p`, [`Thinned`]) reuses the square root
//!   and logarithm of `λ` and of `p` ([`Mean`]).
//! - Binomial (p folded to ≤ 1/2), mean < 10: inversion (BINV, Kachitvichyanukul & Schmeiser
//!   1988) with `q^n` as `exp(n·ln(1-p))`; otherwise Hörmann's BTRS (1993), whose squeeze
//!   accepts about 85% of draws without a logarithm.
//! - Histogram cells of a Poisson stream ([`Cells`]): independent Poisson counts per cell
//!   (thinning); the smallest cells share one count, placed request by request.
//!
//! The unit tests compare each sampler's frequencies with `statrs`' probability mass
//! functions (chi-square, fixed seeds).

use rand::Rng;

/// A uniform double in [0, 1) from the top 53 bits.
#[inline]
pub fn uniform<R: Rng + ?Sized>(rng: &mut R) -> f64 {
    (rng.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
}

/// `1/k` for small `k`: the inversion walks multiply by it instead of dividing (a division
/// per step would be the walk's critical path).
static RECIPROCAL: [f64; 256] = {
    let mut t = [0.0; 256];
    let mut k = 1;
    while k < 256 {
        t[k] = 1.0 / k as f64;
        k += 1;
    }
    t
};

/// A Poisson mean prepared for several draws: `mu` with its square root and logarithm,
/// which Hörmann's PTRS needs. A span's mean is prepared once and thinned per latency
/// cell ([`Cells`]), so a cell's draw costs a multiplication instead of a `sqrt` and a
/// `ln`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Mean {
    mu: f64,
    sqrt: f64,
    ln: f64,
}

impl Mean {
    /// A mean of `mu` (NaN or negative: 0).
    #[inline]
    pub fn new(mu: f64) -> Mean {
        let mu = if mu > 0.0 { mu } else { 0.0 };
        Mean {
            mu,
            sqrt: mu.sqrt(),
            ln: mu.ln(),
        }
    }
}

/// Poisson(`mu`); 0 for `mu <= 0` or NaN.
#[inline]
pub fn poisson<R: Rng + ?Sized>(rng: &mut R, mu: f64) -> u64 {
    if mu.is_nan() || mu <= 0.0 {
        0
    } else if mu < 10.0 {
        poisson_inversion(rng, mu)
    } else {
        ptrs(rng, mu, mu.sqrt(), mu.ln())
    }
}

/// The fraction `p` of a Poisson process (a thinning: Poisson(`λ·p`) for any prepared
/// mean `λ`), with what PTRS needs of `p` computed once.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Thinned {
    p: f64,
    sqrt_p: f64,
    ln_p: f64,
}

impl Thinned {
    /// The fraction `p`, clamped to [0, 1] (NaN: 0).
    pub fn new(p: f64) -> Thinned {
        let p = if p.is_nan() { 0.0 } else { p.clamp(0.0, 1.0) };
        Thinned {
            p,
            sqrt_p: p.sqrt(),
            ln_p: p.ln(),
        }
    }

    /// Poisson(`mean · p`).
    #[inline]
    pub fn sample<R: Rng + ?Sized>(&self, rng: &mut R, mean: &Mean) -> u64 {
        let mu = mean.mu * self.p;
        if mu.is_nan() || mu <= 0.0 {
            return 0;
        }
        if mu < 10.0 {
            return poisson_inversion(rng, mu);
        }
        ptrs(rng, mu, mean.sqrt * self.sqrt_p, mean.ln + self.ln_p)
    }
}

/// Poisson(`mu`), `0 < mu < 10`: inversion by sequential search from 0.
#[inline]
fn poisson_inversion<R: Rng + ?Sized>(rng: &mut R, mu: f64) -> u64 {
    let mut u = uniform(rng);
    // `e^-mu > 1 - mu`, so below `1 - mu` the walk would stop at 0 without its `exp`. Their
    // gap, about `mu²/2`, is far above the last bit of either for `mu > 1e-6`, so the
    // answer is the walk's, bit for bit (most small cells' draws end here).
    if mu > 1e-6 && u <= 1.0 - mu {
        return 0;
    }
    let p0 = (-mu).exp();
    'draw: loop {
        let (mut x, mut p, mut f) = (0usize, p0, p0);
        while u > f {
            x += 1;
            // The CDF can stall just below 1 in floating point: start over.
            if x >= RECIPROCAL.len() {
                u = uniform(rng);
                continue 'draw;
            }
            p *= mu * RECIPROCAL[x];
            f += p;
        }
        return x as u64;
    }
}

/// Hörmann's PTRS for `mu >= 10`, given `sqrt(mu)` and `ln(mu)`.
#[inline]
fn ptrs<R: Rng + ?Sized>(rng: &mut R, mu: f64, sqrt_mu: f64, ln_mu: f64) -> u64 {
    let b = 0.931 + 2.53 * sqrt_mu;
    let a = -0.059 + 0.02483 * b;
    // `v <= vr` with `vr = 0.9277 - 3.6224 / (b - 2)`, multiplied out (b > 8.9 here).
    let (vr_scale, vr_bound) = (b - 2.0, 0.9277 * (b - 2.0) - 3.6224);
    loop {
        let u = uniform(rng) - 0.5;
        let v = uniform(rng);
        let us = 0.5 - u.abs();
        let x = (2.0 * a / us + b) * u + mu + 0.43;
        // floor(x) for x >= 0 is truncation; x < 0 (k < 0) is rejected.
        if x < 0.0 {
            continue;
        }
        let k = x as u64;
        if us >= 0.07 && v * vr_scale <= vr_bound {
            return k;
        }
        if us < 0.013 && v > us {
            continue;
        }
        let inv_alpha = 1.1239 + 1.1328 / (b - 3.4);
        let lhs = (v * inv_alpha / (a / (us * us) + b)).ln();
        if lhs <= -mu + k as f64 * ln_mu - ln_factorial(k) {
            return k;
        }
    }
}

/// Entries of the `ln(k!)` table.
const LN_FACTORIAL_TABLE: usize = 4096;

/// `ln(k!)`: a table below 4096 (so the rejection steps rarely take a logarithm), Stirling's
/// series above (truncation error below 1e-25).
#[inline]
fn ln_factorial(k: u64) -> f64 {
    static TABLE: std::sync::OnceLock<Vec<f64>> = std::sync::OnceLock::new();
    if (k as usize) < LN_FACTORIAL_TABLE {
        let t = TABLE.get_or_init(|| {
            let mut t = vec![0.0; LN_FACTORIAL_TABLE];
            for i in 1..LN_FACTORIAL_TABLE {
                t[i] = t[i - 1] + (i as f64).ln();
            }
            t
        });
        return t[k as usize];
    }
    let x = k as f64;
    let r = 1.0 / x;
    let r2 = r * r;
    (x + 0.5) * x.ln() - x
        + 0.5 * std::f64::consts::TAU.ln()
        + r * (1.0 / 12.0 - r2 * (1.0 / 360.0 - r2 / 1260.0))
}

/// A success probability prepared for repeated binomial draws: folded to at most 1/2,
/// with `ln(1 - p)` computed once.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Prob {
    p: f64,
    flipped: bool,
    /// `ln(1 - p)` (inversion's start) and `ln(p / (1 - p))` (rejection's test).
    ln_q: f64,
    ln_pq: f64,
}

impl Prob {
    pub fn new(p: f64) -> Prob {
        let p = if p.is_nan() { 0.0 } else { p.clamp(0.0, 1.0) };
        let flipped = p > 0.5;
        let p = if flipped { 1.0 - p } else { p };
        Prob {
            p,
            flipped,
            ln_q: (-p).ln_1p(),
            ln_pq: (p / (1.0 - p)).ln(),
        }
    }
}

/// A [`Prob`] with inversion's starting mass `(1 - p)^n`, computed as `exp(n·ln(1 - p))`
/// exactly as a draw would, for every `n` below a cap at which inversion runs (`n·p < 10`):
/// a draw with such an `n` then costs no `exp`, and gives the same count.
#[derive(Debug, Clone, PartialEq)]
pub struct Prepared {
    prob: Prob,
    start: Box<[f64]>,
}

impl Prepared {
    /// `cap` bounds the table's entries (0: no table).
    pub fn new(p: f64, cap: usize) -> Prepared {
        Prepared::of(Prob::new(p), cap)
    }

    fn of(prob: Prob, cap: usize) -> Prepared {
        let len = if prob.p > 0.0 {
            ((10.0 / prob.p).ceil().min(cap as f64) as usize).min(cap)
        } else {
            0
        };
        Prepared {
            prob,
            start: (0..len).map(|n| (n as f64 * prob.ln_q).exp()).collect(),
        }
    }

    /// Binomial(`n`, p).
    #[inline]
    pub fn sample<R: Rng + ?Sized>(&self, rng: &mut R, n: u64) -> u64 {
        binomial_with(rng, n, &self.prob, &self.start)
    }
}

/// Binomial(`n`, `p`); `p` outside (0, 1) gives 0 or `n`. For a `p` used once: the
/// logarithms a [`Prob`] prepares are computed only by the branch that needs them.
#[inline]
#[cfg(test)]
pub fn binomial<R: Rng + ?Sized>(rng: &mut R, n: u64, p: f64) -> u64 {
    if n == 0 || p.is_nan() || p <= 0.0 {
        return 0;
    }
    if p >= 1.0 {
        return n;
    }
    let flipped = p > 0.5;
    let pf = if flipped { 1.0 - p } else { p };
    let prob = if n as f64 * pf < 10.0 {
        Prob {
            p: pf,
            flipped,
            ln_q: (-pf).ln_1p(),
            ln_pq: f64::NAN,
        }
    } else {
        Prob {
            p: pf,
            flipped,
            ln_q: f64::NAN,
            ln_pq: (pf / (1.0 - pf)).ln(),
        }
    };
    binomial_prepared(rng, n, &prob)
}

/// Binomial(`n`, `prob`).
#[cfg(test)]
#[inline]
pub fn binomial_prepared<R: Rng + ?Sized>(rng: &mut R, n: u64, prob: &Prob) -> u64 {
    binomial_with(rng, n, prob, &[])
}

/// Binomial(`n`, `prob`), with inversion's start `(1 - p)^n` read from `start[n]` where
/// the table reaches.
#[inline]
fn binomial_with<R: Rng + ?Sized>(rng: &mut R, n: u64, prob: &Prob, start: &[f64]) -> u64 {
    if n == 0 || prob.p <= 0.0 {
        return if prob.flipped { n } else { 0 };
    }
    let x = if n as f64 * prob.p < 10.0 {
        let r0 = usize::try_from(n)
            .ok()
            .and_then(|i| start.get(i))
            .copied()
            .unwrap_or_else(|| (n as f64 * prob.ln_q).exp());
        binv(rng, n, prob, r0)
    } else {
        btrs(rng, n, prob)
    };
    if prob.flipped { n - x } else { x }
}

/// Inversion from 0 (mean below 10, so the walk is short).
#[inline]
fn binv<R: Rng + ?Sized>(rng: &mut R, n: u64, prob: &Prob, r0: f64) -> u64 {
    let p = prob.p;
    let q = 1.0 - p;
    let s = p / q;
    let a = (n as f64 + 1.0) * s;
    'draw: loop {
        let mut u = uniform(rng);
        let (mut x, mut r) = (0u64, r0);
        while u > r {
            u -= r;
            x += 1;
            if x > 110 || x > n {
                continue 'draw;
            }
            r *= a * RECIPROCAL[x as usize] - s;
        }
        return x;
    }
}

/// Hörmann's BTRS for `n·p >= 10`, `p <= 1/2`.
#[inline]
fn btrs<R: Rng + ?Sized>(rng: &mut R, n: u64, prob: &Prob) -> u64 {
    let p = prob.p;
    let nf = n as f64;
    let q = 1.0 - p;
    let spq = (nf * p * q).sqrt();
    let b = 1.15 + 2.53 * spq;
    let a = -0.0873 + 0.0248 * b + 0.01 * p;
    let c = nf * p + 0.5;
    // `v <= vr` with `vr = 0.92 - 4.2 / b`, multiplied out (b > 0).
    let vr_bound = 0.92 * b - 4.2;
    // The constants of the exact acceptance test, computed on first need.
    let mut slow: Option<(f64, f64, f64)> = None;
    loop {
        let u = uniform(rng) - 0.5;
        let v = uniform(rng);
        let us = 0.5 - u.abs();
        let x = (2.0 * a / us + b) * u + c;
        // floor(x) for x >= 0 is truncation (no libm call); x < 0 is outside the support.
        if !(0.0..nf + 1.0).contains(&x) {
            continue;
        }
        let ki = x as u64;
        if us >= 0.07 && v * b <= vr_bound {
            return ki;
        }
        let (alpha, m, h) = *slow.get_or_insert_with(|| {
            let m = ((nf + 1.0) * p) as u64;
            (
                (2.83 + 5.1 / b) * spq,
                m as f64,
                ln_factorial(m) + ln_factorial(n - m),
            )
        });
        let lv = (v * alpha / (a / (us * us) + b)).ln();
        if lv <= h - ln_factorial(ki) - ln_factorial(n - ki) + (ki as f64 - m) * prob.ln_pq {
            return ki;
        }
    }
}

/// The cells of a histogram that a Poisson stream of requests falls into, each request
/// independently with fixed probabilities, prepared for drawing one span's counts.
///
/// A thinned Poisson process splits into independent Poisson processes, so the counts
/// are independent Poisson(`λ·p_k`) draws (the same joint law as a Poisson total split by
/// a multinomial, at a fraction of the cost). Cells are taken in decreasing probability;
/// the smallest ones, together at most [`MINOR_MASS`] of the probability, are drawn as
/// one Poisson count whose requests are then placed one by one (usually none or a few).
#[derive(Debug, Clone, PartialEq)]
pub struct Cells {
    /// The large cells: (cell index, its fraction).
    major: Vec<(usize, Thinned)>,
    /// The small cells' fraction together.
    minor: Thinned,
    /// The small cells: (cell index, cumulative probability within the group), the last
    /// at exactly 1.
    minor_cdf: Vec<(usize, f64)>,
}

/// The most probability the one-by-one cells of [`Cells`] may hold together.
const MINOR_MASS: f64 = 0.01;

impl Cells {
    /// `probs[k]` is cell `k`'s probability (negative or NaN: 0); they need not sum to 1
    /// exactly.
    pub fn new(probs: &[f64]) -> Cells {
        let clean = |p: f64| if p > 0.0 { p } else { 0.0 };
        let mut order: Vec<usize> = (0..probs.len())
            .filter(|&k| clean(probs[k]) > 0.0)
            .collect();
        order.sort_by(|&a, &b| clean(probs[b]).total_cmp(&clean(probs[a])).then(a.cmp(&b)));
        let total: f64 = order.iter().map(|&k| clean(probs[k])).sum();
        // The longest tail of the order whose mass is at most MINOR_MASS of the total.
        let mut split = order.len();
        let mut tail = 0.0;
        while split > 0 && tail + clean(probs[order[split - 1]]) <= MINOR_MASS * total {
            split -= 1;
            tail += clean(probs[order[split]]);
        }
        let share = |p: f64| if total > 0.0 { p / total } else { 0.0 };
        let major = order[..split]
            .iter()
            .map(|&k| (k, Thinned::new(share(clean(probs[k])))))
            .collect();
        let mut acc = 0.0;
        let mut minor_cdf: Vec<(usize, f64)> = order[split..]
            .iter()
            .map(|&k| {
                acc += clean(probs[k]);
                (k, acc / tail)
            })
            .collect();
        if let Some(last) = minor_cdf.last_mut() {
            last.1 = 1.0;
        }
        Cells {
            major,
            minor: Thinned::new(share(tail)),
            minor_cdf,
        }
    }

    /// Adds one span's counts, for requests with mean `mean` in all, to `counts` (one
    /// entry per cell); returns how many requests there were.
    #[inline]
    pub fn sample<R: Rng + ?Sized>(&self, rng: &mut R, mean: f64, counts: &mut [u64]) -> u64 {
        let mean = Mean::new(mean);
        let mut n = 0;
        for &(k, ref cell) in &self.major {
            let x = cell.sample(rng, &mean);
            counts[k] += x;
            n += x;
        }
        if !self.minor_cdf.is_empty() {
            let m = self.minor.sample(rng, &mean);
            for _ in 0..m {
                let u = uniform(rng);
                let i = self
                    .minor_cdf
                    .iter()
                    .position(|&(_, c)| u < c)
                    .unwrap_or(self.minor_cdf.len() - 1);
                counts[self.minor_cdf[i].0] += 1;
            }
            n += m;
        }
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::Xoshiro256PlusPlus;
    use statrs::distribution::{ChiSquared, ContinuousCDF, Discrete};

    #[test]
    fn ln_factorial_matches_statrs() {
        for k in [
            0u64, 1, 2, 10, 170, 255, 256, 257, 1000, 4095, 4096, 4097, 123_456,
        ] {
            let (a, b) = (
                ln_factorial(k),
                statrs::function::factorial::ln_factorial(k),
            );
            assert!((a - b).abs() <= 1e-13 * b.abs().max(1.0), "{k}: {a} vs {b}");
        }
    }

    /// Chi-square goodness of fit of `draws` to `pmf`, pooling cells with expected count
    /// below 5; returns the p-value.
    fn gof(draws: &[u64], pmf: impl Fn(u64) -> f64) -> f64 {
        let n = draws.len() as f64;
        let max = *draws.iter().max().unwrap();
        let mut observed = vec![0f64; max as usize + 2];
        for &d in draws {
            observed[d as usize] += 1.0;
        }
        let (mut chi, mut cells) = (0.0, 0usize);
        let (mut o_acc, mut e_acc, mut e_total) = (0.0, 0.0, 0.0);
        for (k, o) in observed.iter().enumerate().take(max as usize + 1) {
            let e = pmf(k as u64) * n;
            e_total += e;
            o_acc += o;
            e_acc += e;
            if e_acc >= 5.0 {
                chi += (o_acc - e_acc).powi(2) / e_acc;
                cells += 1;
                o_acc = 0.0;
                e_acc = 0.0;
            }
        }
        // Everything beyond the largest draw.
        let rest = (n - e_total).max(0.0) + e_acc;
        if rest > 0.0 {
            chi += (o_acc - rest).powi(2) / rest;
            cells += 1;
        }
        1.0 - ChiSquared::new((cells - 1) as f64).unwrap().cdf(chi)
    }

    #[test]
    fn poisson_matches_its_pmf() {
        for (i, mu) in [0.3, 4.0, 9.99, 10.0, 37.5, 1800.0].into_iter().enumerate() {
            let mut rng = Xoshiro256PlusPlus::seed_from_u64(11 + i as u64);
            let draws: Vec<u64> = (0..200_000).map(|_| poisson(&mut rng, mu)).collect();
            let d = statrs::distribution::Poisson::new(mu).unwrap();
            let p = gof(&draws, |k| d.pmf(k));
            assert!(p > 1e-4, "Poisson({mu}): chi-square p-value {p}");
        }
    }

    #[test]
    fn thinned_poisson_matches_its_pmf() {
        // Both sides of the inversion/PTRS switch, from a prepared mean.
        for (i, (mu, p)) in [(400.0, 0.02), (400.0, 0.0249), (400.0, 0.025), (400.0, 0.7)]
            .into_iter()
            .enumerate()
        {
            let mut rng = Xoshiro256PlusPlus::seed_from_u64(31 + i as u64);
            let (mean, cell) = (Mean::new(mu), Thinned::new(p));
            let draws: Vec<u64> = (0..200_000).map(|_| cell.sample(&mut rng, &mean)).collect();
            let d = statrs::distribution::Poisson::new(mu * p).unwrap();
            let pv = gof(&draws, |k| d.pmf(k));
            assert!(pv > 1e-4, "Poisson({mu} x {p}): chi-square p-value {pv}");
        }
    }

    #[test]
    fn binomial_matches_its_pmf() {
        for (i, (n, pr)) in [
            (20, 0.3),
            (1000, 0.005),
            (36, 0.49),
            (1500, 0.31),
            (2000, 0.9),
            (40, 0.7),
            (5, 1e-9),
        ]
        .into_iter()
        .enumerate()
        {
            let mut rng = Xoshiro256PlusPlus::seed_from_u64(101 + i as u64);
            let draws: Vec<u64> = (0..200_000).map(|_| binomial(&mut rng, n, pr)).collect();
            assert!(draws.iter().all(|&d| d <= n));
            let d = statrs::distribution::Binomial::new(pr, n).unwrap();
            let p = gof(&draws, |k| d.pmf(k));
            assert!(p > 1e-4, "Binomial({n}, {pr}): chi-square p-value {p}");
        }
    }

    #[test]
    fn cells_are_independent_poisson_counts() {
        let probs = [
            0.0, 1e-7, 0.004, 0.07, 0.31, 0.49, 0.1, 0.015, 0.008, 0.002, 0.0009, 0.0000999,
        ];
        let total: f64 = probs.iter().sum();
        let cells = Cells::new(&probs);
        assert!(
            !cells.minor_cdf.is_empty(),
            "the test must reach the one-by-one cells"
        );
        let mu = 300.0;
        let mean = mu;
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(7);
        let trials = 100_000;
        let mut per_cell = vec![Vec::with_capacity(trials); probs.len()];
        let mut totals = Vec::with_capacity(trials);
        for _ in 0..trials {
            let mut counts = vec![0u64; probs.len()];
            let n = cells.sample(&mut rng, mean, &mut counts);
            assert_eq!(counts.iter().sum::<u64>(), n);
            for (k, c) in counts.iter().enumerate() {
                per_cell[k].push(*c);
            }
            totals.push(n);
        }
        assert!(
            per_cell[0].iter().all(|&c| c == 0),
            "an impossible cell got requests"
        );
        let d = statrs::distribution::Poisson::new(mu).unwrap();
        let pv = gof(&totals, |x| d.pmf(x));
        assert!(pv > 1e-4, "total: chi-square p-value {pv}");
        for k in [2, 3, 4, 5, 6, 8, 9, 10] {
            let d = statrs::distribution::Poisson::new(mu * probs[k] / total).unwrap();
            let pv = gof(&per_cell[k], |x| d.pmf(x));
            assert!(pv > 1e-4, "cell {k}: chi-square p-value {pv}");
        }
        // Independent cells: the sample correlation of two large cells and of a large and
        // a small one is within 4.5 standard errors (1/sqrt(trials)) of 0.
        let corr = |a: &[u64], b: &[u64]| {
            let n = a.len() as f64;
            let (ma, mb) = (
                a.iter().sum::<u64>() as f64 / n,
                b.iter().sum::<u64>() as f64 / n,
            );
            let (mut sab, mut saa, mut sbb) = (0.0, 0.0, 0.0);
            for (&x, &y) in a.iter().zip(b) {
                let (dx, dy) = (x as f64 - ma, y as f64 - mb);
                sab += dx * dy;
                saa += dx * dx;
                sbb += dy * dy;
            }
            sab / (saa * sbb).sqrt()
        };
        for (a, b) in [(4, 5), (5, 9), (9, 10)] {
            let r = corr(&per_cell[a], &per_cell[b]);
            assert!(
                r.abs() < 4.5 / (trials as f64).sqrt(),
                "cells {a} and {b}: correlation {r}"
            );
        }
    }
}
