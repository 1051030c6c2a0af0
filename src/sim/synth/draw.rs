//! Exact samplers for the Monte Carlo hot loop: Poisson counts and histogram cells.
//!
//! A trial draws tens of thousands of counts, each with a mean that changes every time (the
//! request rate follows the daily cycle), so setup cost matters as much as sampling cost.
//! Every sampler here is exact (inversion walks the true CDF; rejection accepts with the
//! true probability mass function):
//!
//! - A mean that every trial of a lock-step batch shares, from 1 to [`TABLE_UP_TO`]: one
//!   inversion table per mean, shared by the batch while the mean recurs
//!   ([`table`](super::table)).
//! - Otherwise, mean < 10: inversion by sequential search from 0; mean ≥ 10: Hörmann's
//!   PTRS (transformed rejection with squeeze, 1993), as NumPy draws it, with the squeeze's
//!   divisions multiplied out.
//! - Histogram cells of a Poisson stream ([`Cells`]): independent Poisson counts per cell
//!   (thinning); the smallest cells share one count, placed request by request.
//!
//! The unit tests compare each sampler's frequencies with `statrs`' probability mass
//! functions (chi-square, fixed seeds).

use super::table::Pool;
use rand::Rng;

/// A uniform double in [0, 1) from the top 53 bits (converted through `i64`: one
/// instruction on baseline x86-64, where `u64` takes several, and the same value).
#[inline]
pub fn uniform<R: Rng + ?Sized>(rng: &mut R) -> f64 {
    ((rng.next_u64() >> 11) as i64) as f64 * (1.0 / (1u64 << 53) as f64)
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

/// Poisson(`mu`); 0 for `mu <= 0` or NaN.
#[cfg(test)]
pub fn poisson<R: Rng + ?Sized>(rng: &mut R, mu: f64) -> u64 {
    if mu.is_nan() || mu <= 0.0 {
        0
    } else if mu < 10.0 {
        poisson_inversion(rng, mu, None)
    } else {
        ptrs(rng, mu, mu.sqrt(), mu.ln())
    }
}

/// The smallest shared mean drawn from a table ([`Draw::of`]); below, inversion from 0 is
/// as quick (it mostly stops at 0 without an `exp`).
const TABLE_FROM: f64 = 1.0;

/// The largest mean drawn from a table: about 1,000 entries to fill, which a batch of
/// trials repays; beyond, each trial's rejection draw is cheaper.
pub const TABLE_UP_TO: f64 = 3000.0;

/// How one Poisson count is drawn.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Draw {
    Zero,
    /// Inversion from 0 (mean below 10), with `e^-mean` when a batch shares the mean
    /// (else it is computed in the rare draw that needs it).
    Inversion {
        mu: f64,
        p0: Option<f64>,
    },
    /// Inversion by a table of the pool shared by a batch.
    Table(usize),
    /// PTRS (mean at least 10).
    Rejection(f64),
}

impl Draw {
    /// How to draw Poisson(`mu`) (NaN or not positive: 0), with a table of `pool` if the
    /// mean is shared by a batch and a table pays.
    pub fn of(mu: f64, pool: Option<&mut Pool>) -> Draw {
        let shared = pool.is_some();
        if mu.is_nan() || mu <= 0.0 {
            Draw::Zero
        } else if let Some(pool) = pool.filter(|_| (TABLE_FROM..=TABLE_UP_TO).contains(&mu)) {
            Draw::Table(pool.build(mu))
        } else if mu < 10.0 {
            Draw::Inversion {
                mu,
                p0: shared.then(|| (-mu).exp()),
            }
        } else {
            Draw::Rejection(mu)
        }
    }

    /// The common cases inline; the rejection sampler out of line (it would keep this from
    /// being inlined into the draw loop).
    #[inline(always)]
    pub fn sample<R: Rng + ?Sized>(self, rng: &mut R, pool: &Pool) -> u64 {
        match self {
            Draw::Zero => 0,
            Draw::Table(i) => pool.get(i).sample(uniform(rng)),
            Draw::Inversion { mu, p0 } => poisson_inversion(rng, mu, p0),
            Draw::Rejection(mu) => rejection(rng, mu),
        }
    }
}

/// Poisson(`mu`), `0 < mu < 10`, given `p0 = e^-mu` if known: inversion by sequential
/// search from 0.
#[inline(always)]
fn poisson_inversion<R: Rng + ?Sized>(rng: &mut R, mu: f64, p0: Option<f64>) -> u64 {
    let u = uniform(rng);
    // `e^-mu > 1 - mu`, so below `1 - mu` the walk would stop at 0 without its `exp`. Their
    // gap, about `mu²/2`, is far above the last bit of either for `mu > 1e-6`, so the
    // answer is the walk's, bit for bit (most small cells' draws end here).
    if mu > 1e-6 && u <= 1.0 - mu {
        return 0;
    }
    inversion_walk(rng, mu, p0, u)
}

/// The walk of [`poisson_inversion`] for the uniform `u`.
#[inline(never)]
fn inversion_walk<R: Rng + ?Sized>(rng: &mut R, mu: f64, p0: Option<f64>, mut u: f64) -> u64 {
    let p0 = p0.unwrap_or_else(|| (-mu).exp());
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

/// PTRS for a mean used once.
#[inline(never)]
fn rejection<R: Rng + ?Sized>(rng: &mut R, mu: f64) -> u64 {
    ptrs(rng, mu, mu.sqrt(), mu.ln())
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

/// The cells of a histogram that a Poisson stream of requests falls into, each request
/// independently with fixed probabilities.
///
/// A thinned Poisson process splits into independent Poisson processes, so the counts are
/// independent Poisson(`λ·p_k`) draws (the same joint law as a Poisson total split by a
/// multinomial, at a fraction of the cost). Cells are taken in decreasing probability; the
/// smallest ones, together at most [`MINOR_MASS`] of the probability, are drawn as one
/// Poisson count whose requests are then placed one by one (usually none or a few).
#[derive(Debug, Clone, PartialEq)]
pub struct Cells {
    /// The large cells: (cell index, its fraction).
    major: Vec<(usize, f64)>,
    /// The small cells' fraction together.
    minor: f64,
    /// The small cells: (cell index, cumulative probability within the group), the last
    /// at exactly 1.
    minor_cdf: Vec<(usize, f64)>,
}

/// Where the requests of one of a [`Cells`]' classes go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// Cell `k`.
    Cell(usize),
    /// The small cells, request by request ([`Cells::place_minor`]).
    Minor,
    /// No histogram is kept.
    Nowhere,
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
            .map(|&k| (k, share(clean(probs[k]))))
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
            minor: share(tail),
            minor_cdf,
        }
    }

    /// The classes a span's requests are drawn in, in a fixed order, with their fractions:
    /// each large cell, then the small cells together.
    pub fn classes(&self) -> impl Iterator<Item = (Target, f64)> + '_ {
        let minor = (!self.minor_cdf.is_empty()).then_some((Target::Minor, self.minor));
        self.major
            .iter()
            .map(|&(k, p)| (Target::Cell(k), p))
            .chain(minor)
    }

    /// Places `m` requests of the small cells one by one into `counts`.
    #[inline]
    pub fn place_minor<R: Rng + ?Sized>(&self, rng: &mut R, m: u64, counts: &mut [u64]) {
        for _ in 0..m {
            let u = uniform(rng);
            let i = self
                .minor_cdf
                .iter()
                .position(|&(_, c)| u < c)
                .unwrap_or(self.minor_cdf.len() - 1);
            counts[self.minor_cdf[i].0] += 1;
        }
    }
}

/// One class of a span's requests: where they go, and how its successful and its failed
/// requests are drawn (independent Poisson counts: each request fails independently, a
/// thinning of the class's stream).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ClassDraw {
    pub target: Target,
    pub ok: Draw,
    pub failed: Draw,
}

/// Appends to `out` how to draw a span of Poisson(`mu`) requests: split over `cells` if a
/// histogram is kept, and into successes and failures (failure probability `fail`) if
/// failures are counted. `pool` builds tables when the span is shared by a batch.
pub fn plan_span(
    out: &mut Vec<ClassDraw>,
    mu: f64,
    cells: Option<&Cells>,
    fail: Option<f64>,
    mut pool: Option<&mut Pool>,
) {
    let whole = [(Target::Nowhere, 1.0)];
    let classes: &mut dyn Iterator<Item = (Target, f64)> = match cells {
        Some(c) => &mut c.classes(),
        None => &mut whole.into_iter(),
    };
    for (target, p) in classes {
        let (ok, failed) = match fail {
            Some(e) => (
                Draw::of(mu * p * (1.0 - e), pool.as_deref_mut()),
                Draw::of(mu * p * e, pool.as_deref_mut()),
            ),
            None => (Draw::of(mu * p, pool.as_deref_mut()), Draw::Zero),
        };
        out.push(ClassDraw { target, ok, failed });
    }
}

/// Draws a span planned by [`plan_span`], adding each cell's requests to `counts`;
/// returns (requests, failed requests).
#[inline]
pub fn draw_span<R: Rng + ?Sized>(
    rng: &mut R,
    draws: &[ClassDraw],
    cells: &Cells,
    pool: &Pool,
    counts: &mut [u64],
) -> (u64, u64) {
    let (mut n, mut failed) = (0, 0);
    for d in draws {
        let bad = d.failed.sample(rng, pool);
        let all = d.ok.sample(rng, pool) + bad;
        match d.target {
            Target::Cell(k) => counts[k] += all,
            Target::Minor => cells.place_minor(rng, all, counts),
            Target::Nowhere => {}
        }
        n += all;
        failed += bad;
    }
    (n, failed)
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
    fn table_draws_match_the_pmf() {
        for (i, mu) in [1.0, 2.5, 9.99, 10.0, 37.5, 1800.0, TABLE_UP_TO]
            .into_iter()
            .enumerate()
        {
            let mut rng = Xoshiro256PlusPlus::seed_from_u64(31 + i as u64);
            let mut pool = Pool::default();
            let draw = Draw::of(mu, Some(&mut pool));
            assert!(matches!(draw, Draw::Table(_)), "{mu}: {draw:?}");
            let draws: Vec<u64> = (0..200_000).map(|_| draw.sample(&mut rng, &pool)).collect();
            let d = statrs::distribution::Poisson::new(mu).unwrap();
            let p = gof(&draws, |k| d.pmf(k));
            assert!(p > 1e-4, "table Poisson({mu}): chi-square p-value {p}");
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
        let (mu, fail) = (300.0, 0.05);
        // Shared by a batch (tables) and per trial (inversion and rejection): seeds differ.
        for (seed, shared) in [(7, false), (8, true)] {
            cells_check(&cells, &probs, total, mu, fail, seed, shared);
        }
    }

    fn cells_check(
        cells: &Cells,
        probs: &[f64],
        total: f64,
        mu: f64,
        fail: f64,
        seed: u64,
        shared: bool,
    ) {
        let mut pool = Pool::default();
        let mut plan = Vec::new();
        plan_span(
            &mut plan,
            mu,
            Some(cells),
            Some(fail),
            shared.then_some(&mut pool),
        );
        assert_eq!(
            plan.iter().any(|d| matches!(d.ok, Draw::Table(_))),
            shared,
            "{plan:?}"
        );
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
        let trials = 100_000;
        let mut per_cell = vec![Vec::with_capacity(trials); probs.len()];
        let mut totals = Vec::with_capacity(trials);
        let mut failures = Vec::with_capacity(trials);
        for _ in 0..trials {
            let mut counts = vec![0u64; probs.len()];
            let (n, failed) = draw_span(&mut rng, &plan, cells, &pool, &mut counts);
            assert_eq!(counts.iter().sum::<u64>(), n);
            assert!(failed <= n);
            for (k, c) in counts.iter().enumerate() {
                per_cell[k].push(*c);
            }
            totals.push(n);
            failures.push(failed);
        }
        let d = statrs::distribution::Poisson::new(mu * fail).unwrap();
        let pv = gof(&failures, |x| d.pmf(x));
        assert!(pv > 1e-4, "failures: chi-square p-value {pv}");
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
