//! Exact samplers for the Monte Carlo hot loop: Poisson and binomial counts and the kinds of
//! request.
//!
//! A trial draws tens of thousands of counts, each with a mean that changes every time (the
//! request rate follows the daily cycle), so setup cost matters as much as sampling cost.
//! Every sampler here is exact (inversion walks the true CDF; rejection accepts with the
//! true probability mass function):
//!
//! - A mean that every trial of a lock-step batch shares, from 1 to [`TABLE_UP_TO`]: one
//!   inversion table per mean, shared by the batch while the mean recurs
//!   ([`table`](super::table)).
//! - Otherwise, mean < 10: inversion by sequential search from 0 (for a shared mean, its
//!   first four steps without a branch, on the uniform's 53 bits as an integer); mean ≥
//!   10: Hörmann's PTRS (transformed rejection with squeeze, 1993), as NumPy draws it, with
//!   the squeeze's divisions multiplied out.
//! - Binomial counts: fewer than 10 expected, inversion from 0; else `rand_distr`'s BTPE
//!   for failures ([`failures`]), Hörmann's BTRS for a recording's thinning ([`binomial`]).
//! - The kinds of request of a Poisson stream ([`Mix`]: latency cell, failed or not):
//!   independent Poisson counts per kind (thinning); the rarest kinds of a span share one
//!   count, classified request by request.
//!
//! The unit tests compare each sampler's frequencies with `statrs`' probability mass
//! functions (chi-square, fixed seeds).

use super::streams::Streams;
use super::table::Pool;
use rand::Rng;

/// The top 53 bits of the generator's next output: the uniform `x / 2^53` in [0, 1) as
/// an integer (table inversion works on it as is).
#[inline(always)]
pub(crate) fn bits<R: Rng + ?Sized>(rng: &mut R) -> u64 {
    rng.next_u64() >> 11
}

/// The uniform double `x / 2^53` in [0, 1) of 53 bits `x` (converted through `i64`: one
/// instruction on baseline x86-64, where `u64` takes several, and the same value).
#[inline(always)]
pub(crate) fn unit(x: u64) -> f64 {
    (x as i64) as f64 * (1.0 / (1u64 << 53) as f64)
}

/// A uniform double in [0, 1) from the top 53 bits.
#[inline]
pub(crate) fn uniform<R: Rng + ?Sized>(rng: &mut R) -> f64 {
    unit(bits(rng))
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
pub(crate) fn poisson<R: Rng + ?Sized>(rng: &mut R, mu: f64) -> u64 {
    if mu.is_nan() || mu <= 0.0 {
        0
    } else if mu < 10.0 {
        poisson_inversion(rng, mu, None)
    } else {
        ptrs(rng, mu, mu.sqrt(), mu.ln())
    }
}

/// The smallest shared mean drawn from a table ([`Draw::of`]); below, inversion from 0 is
/// as quick (its first steps take no branch).
const TABLE_FROM: f64 = 1.0;

/// The largest mean drawn from a table: about 1,000 entries to fill, which a batch of
/// trials repays; beyond, each trial's rejection draw is cheaper.
pub(crate) const TABLE_UP_TO: f64 = 3000.0;

/// How one Poisson count is drawn.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Draw {
    Zero,
    /// Inversion from 0 (mean below 10), with the start of the CDF when a batch shares the
    /// mean (else it is computed in the draws that need it).
    Inversion {
        mu: f64,
        head: Option<Head>,
    },
    /// Inversion by a table of the pool shared by a batch.
    Table(usize),
    /// PTRS (mean at least 10).
    Rejection(f64),
}

impl Draw {
    /// How to draw Poisson(`mu`) (NaN or not positive: 0), with a table of `pool` if the
    /// mean is shared by a batch and a table pays.
    pub(crate) fn of(mu: f64, pool: Option<&mut Pool>) -> Draw {
        let shared = pool.is_some();
        if mu.is_nan() || mu <= 0.0 {
            Draw::Zero
        } else if let Some(pool) = pool.filter(|_| (TABLE_FROM..=TABLE_UP_TO).contains(&mu)) {
            Draw::Table(pool.build(mu))
        } else if mu < 10.0 {
            Draw::Inversion {
                mu,
                head: shared.then(|| Head::new(mu)),
            }
        } else {
            Draw::Rejection(mu)
        }
    }

    /// The common cases inline; the rejection sampler out of line (it would keep this from
    /// being inlined into the draw loop).
    #[inline(always)]
    pub(crate) fn sample<R: Rng + ?Sized>(self, rng: &mut R, pool: &Pool) -> u64 {
        match self {
            Draw::Zero => 0,
            Draw::Table(i) => pool.get(i).sample(bits(rng)),
            Draw::Inversion { mu, head } => poisson_inversion(rng, mu, head),
            Draw::Rejection(mu) => rejection(rng, mu),
        }
    }

    /// Draws once in each of the first `out.len()` lanes of `streams`, into `out` (`x` is
    /// scratch of the same length): the same draws as [`sample`](Self::sample) lane by
    /// lane. The choice of sampler is made once, and where a draw takes exactly one
    /// uniform, every lane's is drawn at once.
    #[inline]
    pub(crate) fn sample_each(
        self,
        streams: &mut Streams,
        x: &mut [u64],
        pool: &Pool,
        out: &mut [u64],
    ) {
        let n = out.len();
        match self {
            Draw::Zero => out.fill(0),
            Draw::Table(i) => {
                let table = pool.get(i);
                streams.bits(&mut x[..n]);
                for (m, &x) in out.iter_mut().zip(&x[..n]) {
                    *m = table.sample(x);
                }
            }
            Draw::Inversion { mu, head: Some(h) } => {
                streams.bits(&mut x[..n]);
                let mut walks = false;
                for (m, &x) in out.iter_mut().zip(&x[..n]) {
                    *m = h.count(x);
                    walks |= *m == 4;
                }
                if walks {
                    for (l, (m, &x)) in out.iter_mut().zip(&x[..n]).enumerate() {
                        if *m == 4 {
                            *m = inversion_walk(&mut streams.lane(l), mu, Some(h.f0), unit(x));
                        }
                    }
                }
            }
            Draw::Inversion { mu, head: None } => {
                for (l, m) in out.iter_mut().enumerate() {
                    *m = poisson_inversion(&mut streams.lane(l), mu, None);
                }
            }
            Draw::Rejection(mu) => {
                for (l, m) in out.iter_mut().enumerate() {
                    *m = rejection(&mut streams.lane(l), mu);
                }
            }
        }
    }
}

/// The start of a small mean's CDF, for the first steps of its inversion walk.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Head {
    /// F(0), where the walk starts.
    f0: f64,
    /// `floor(F(k) * 2^53)` for k from 0 to 3: the uniform `x / 2^53` is above F(k)
    /// exactly when `x` is above this.
    below: [u64; 4],
}

impl Head {
    /// The Poisson(`mu`) CDF at 0 to 3, summed as [`inversion_walk`] sums it.
    fn new(mu: f64) -> Head {
        let f0 = (-mu).exp();
        let (mut p, mut f) = (f0, 0.0);
        let mut below = [0; 4];
        for (x, b) in below.iter_mut().enumerate() {
            if x == 0 {
                f = p;
            } else {
                p *= mu * RECIPROCAL[x];
                f += p;
            }
            // Exact scaling by a power of two, then the floor.
            *b = (f * (1u64 << 53) as f64).floor() as u64;
        }
        Head { f0, below }
    }

    /// The first four steps of the walk for the uniform `x / 2^53`, without a branch
    /// each: how many of F(0)..F(3) lie below it, unless it is above them all (4: the
    /// walk goes on).
    #[inline(always)]
    fn count(&self, x: u64) -> u64 {
        let b = &self.below;
        u64::from(x > b[0]) + u64::from(x > b[1]) + u64::from(x > b[2]) + u64::from(x > b[3])
    }
}

/// Poisson(`mu`), `0 < mu < 10`, given its CDF at 0 to 3 if known: inversion by
/// sequential search from 0.
#[inline(always)]
fn poisson_inversion<R: Rng + ?Sized>(rng: &mut R, mu: f64, head: Option<Head>) -> u64 {
    let x = bits(rng);
    if let Some(h) = head {
        let c = h.count(x);
        return if c < 4 {
            c
        } else {
            inversion_walk(rng, mu, Some(h.f0), unit(x))
        };
    }
    let u = unit(x);
    // `e^-mu > 1 - mu`, so below `1 - mu` the walk would stop at 0 without its `exp`. Their
    // gap, about `mu²/2`, is far above the last bit of either for `mu > 1e-6`, so the
    // answer is the walk's, bit for bit (most small cells' draws end here).
    if mu > 1e-6 && u <= 1.0 - mu {
        return 0;
    }
    inversion_walk(rng, mu, None, u)
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
pub(crate) fn ln_factorial(k: u64) -> f64 {
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

/// What one request is: the latency cell it falls into (0 when no histogram is kept) and
/// whether it failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RequestKind {
    pub(crate) cell: usize,
    pub(crate) failed: bool,
}

/// The kinds of request a Poisson stream of requests splits into, each request
/// independently with fixed probabilities: its latency cell, and whether it failed.
///
/// A thinned Poisson process splits into independent Poisson processes, so the counts of
/// the kinds are independent Poisson(`λ·p_k`) draws (the same joint law as a Poisson
/// total split by a multinomial, with binomial failures, at a fraction of the cost). Kinds
/// are taken in decreasing probability; for a span of mean `λ`, the rarest ones, together
/// expecting at most [`MINOR_MEAN`] requests, are drawn as one Poisson count whose
/// requests are then classified one by one (usually none): with a low error rate, the
/// failures and the slow cells of a quiet span cost one draw between them, and a busy
/// span draws each kind on its own.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Mix {
    /// Every possible kind with its probability, in decreasing probability (ties in cell
    /// order, successes first).
    kinds: Vec<(RequestKind, f64)>,
    /// `tail[i]`: the probability of kinds `i..` together.
    tail: Vec<f64>,
}

/// The most requests a span's rare kinds may expect together ([`Mix`]): they are
/// classified one by one, so this bounds that work per span.
const MINOR_MEAN: f64 = 0.25;

impl Mix {
    /// Requests fall into cell `k` with probability `cells[k]` (None: no histogram is
    /// kept; negative or NaN: 0; they need not sum to 1 exactly) and fail independently
    /// with probability `fail` (None: failures are not counted).
    pub(crate) fn new(cells: Option<&[f64]>, fail: Option<f64>) -> Mix {
        let clean = |p: f64| if p > 0.0 { p } else { 0.0 };
        let cells = cells.unwrap_or(&[1.0]);
        let total: f64 = cells.iter().map(|&p| clean(p)).sum();
        let mut kinds: Vec<(RequestKind, f64)> = Vec::with_capacity(2 * cells.len());
        for (cell, &p) in cells.iter().enumerate() {
            let p = if total > 0.0 { clean(p) / total } else { 0.0 };
            let ok = RequestKind {
                cell,
                failed: false,
            };
            match fail.map(clean) {
                Some(e) => {
                    let e = e.min(1.0);
                    kinds.push((ok, p * (1.0 - e)));
                    kinds.push((RequestKind { cell, failed: true }, p * e));
                }
                None => kinds.push((ok, p)),
            }
        }
        kinds.retain(|&(_, p)| p > 0.0);
        kinds.sort_by(|a, b| b.1.total_cmp(&a.1));
        let mut tail = vec![0.0; kinds.len() + 1];
        for i in (0..kinds.len()).rev() {
            tail[i] = tail[i + 1] + kinds[i].1;
        }
        Mix { kinds, tail }
    }

    /// The classes a span of `mu` requests is drawn in, in a fixed order, with their
    /// fractions: each common kind, then the rare kinds together.
    fn classes(&self, mu: f64) -> impl Iterator<Item = (Target, f64)> + '_ {
        let n = self.kinds.len();
        // The longest tail expecting at most MINOR_MEAN requests; a lone kind is drawn on
        // its own.
        let split = match self.tail[..n].partition_point(|&t| mu * t > MINOR_MEAN) {
            s if n - s >= 2 => s,
            _ => n,
        };
        let minor = (split < n).then(|| (Target::Minor(split), self.tail[split]));
        self.kinds[..split]
            .iter()
            .map(|&(k, p)| (Target::Kind(k), p))
            .chain(minor)
    }

    /// The kind of a rare request of the group from kind `from` on, for the uniform `u`.
    #[inline]
    pub(crate) fn minor_kind(&self, from: usize, u: f64) -> RequestKind {
        let target = u * self.tail[from];
        let mut acc = 0.0;
        let group = &self.kinds[from..];
        for &(kind, p) in group {
            acc += p;
            if target < acc {
                return kind;
            }
        }
        // Rounding left `u` above the sum: the last kind.
        group.last().map_or(self.kinds[0].0, |&(kind, _)| kind)
    }
}

/// Where the requests of one class go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Target {
    /// All of one kind.
    Kind(RequestKind),
    /// The rare kinds from this index of the mix on, classified request by request
    /// ([`Mix::minor_kind`]).
    Minor(usize),
}

/// One class of a span's requests: where they go, and how their count is drawn.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct ClassDraw {
    pub(crate) target: Target,
    pub(crate) draw: Draw,
}

/// Appends to `out` how to draw a span of Poisson(`mu`) requests of `mix`. `pool` builds
/// tables when the span is shared by a batch.
pub(crate) fn plan_span(out: &mut Vec<ClassDraw>, mu: f64, mix: &Mix, mut pool: Option<&mut Pool>) {
    for (target, p) in mix.classes(mu) {
        out.push(ClassDraw {
            target,
            draw: Draw::of(mu * p, pool.as_deref_mut()),
        });
    }
}

/// Draws a span planned by [`plan_span`], adding each cell's requests to `counts` (empty
/// when no histogram is kept); returns (requests, failed requests).
#[inline]
pub(crate) fn draw_span<R: Rng + ?Sized>(
    rng: &mut R,
    draws: &[ClassDraw],
    mix: &Mix,
    pool: &Pool,
    counts: &mut [u64],
) -> (u64, u64) {
    let (mut n, mut failed) = (0, 0);
    let mut add = |kind: RequestKind, m: u64| {
        if let Some(c) = counts.get_mut(kind.cell) {
            *c += m;
        }
        n += m;
        if kind.failed {
            failed += m;
        }
    };
    for d in draws {
        let m = d.draw.sample(rng, pool);
        match d.target {
            Target::Kind(kind) => add(kind, m),
            Target::Minor(from) => {
                for _ in 0..m {
                    add(mix.minor_kind(from, uniform(rng)), 1);
                }
            }
        }
    }
    (n, failed)
}

/// A failure probability `p`, with what drawing failures at it needs ([`failures`]):
/// worked out once per trial and evaluation interval, as `p` holds that long.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct FailRate {
    pub(crate) p: f64,
    /// The rarer outcome's probability (`p`, or `1 - p` above one half), `ln(1 - rare)`
    /// and `rare / (1 - rare)`.
    rare: f64,
    flip: bool,
    ln_other: f64,
    odds: f64,
}

impl FailRate {
    pub(crate) fn new(p: f64) -> FailRate {
        let (rare, flip) = if p > 0.5 { (1.0 - p, true) } else { (p, false) };
        FailRate {
            p,
            rare,
            flip,
            ln_other: (-rare).ln_1p(),
            odds: rare / (1.0 - rare),
        }
    }
}

/// How many of `n` requests fail, each independently with probability `rate.p`:
/// Binomial(`n`, `p`), taking no random number when the answer is certain (`n` = 0, `p` =
/// 0 or 1). Under error clustering a span's failures are drawn so from its requests
/// (thinning a Poisson count by `p` gives the failures' Poisson count, the answered
/// requests' independent of it). The rarer outcome is drawn: fewer than 10 expected, by
/// inversion from 0 on one uniform (where a table cannot serve: each trial has its own
/// `p`); else by `rand_distr`'s BTPE rejection.
#[inline]
pub(crate) fn failures<R: Rng + ?Sized>(rng: &mut R, n: u64, rate: &FailRate) -> u64 {
    rarer_drawn(rng, n, rate, |rng, n, rate| {
        rand_distr::Binomial::new(n, rate.rare)
            .map_or(0, |b| rand_distr::Distribution::sample(&b, rng))
    })
}

/// Binomial(`n`, `rate.p`), as [`failures`] draws it but by Hörmann's BTRS ([`btrs`]) at
/// a mean of 10 or more, which takes no logarithm or power on most draws: about 45 ns a
/// draw against 80 for `rand_distr`'s BTPE, on the counts and shares of a recording's
/// thinning. ([`failures`] keeps BTPE, so that the synthetic model's figures stay as
/// they were.)
#[inline]
pub(crate) fn binomial<R: Rng + ?Sized>(rng: &mut R, n: u64, rate: &FailRate) -> u64 {
    rarer_drawn(rng, n, rate, btrs)
}

/// Binomial(`n`, `rate.p`) with no random number when the answer is certain, else the
/// rarer outcome drawn: by inversion below a mean of 10, by `large` above.
#[inline(always)]
fn rarer_drawn<R: Rng + ?Sized>(
    rng: &mut R,
    n: u64,
    rate: &FailRate,
    large: impl FnOnce(&mut R, u64, &FailRate) -> u64,
) -> u64 {
    if n == 0 || rate.p.is_nan() || rate.p <= 0.0 {
        return 0;
    }
    if rate.p >= 1.0 {
        return n;
    }
    let k = if n as f64 * rate.rare < 10.0 {
        binomial_inversion(rng, n, rate)
    } else {
        large(rng, n, rate)
    };
    if rate.flip { n - k } else { k }
}

/// Hörmann's BTRS (transformed rejection with squeeze, 1993) for Binomial(`n`, `p`), `p`
/// the rarer outcome's probability and `n p >= 10`. Most draws are accepted by the squeeze
/// on two uniforms and a square root; the rest compare with the log of the probability
/// mass function, through the `ln(k!)` table.
fn btrs<R: Rng + ?Sized>(rng: &mut R, n: u64, rate: &FailRate) -> u64 {
    let p = rate.rare;
    let spq = (n as f64 * p * (1.0 - p)).sqrt();
    let b = 1.15 + 2.53 * spq;
    let a = -0.0873 + 0.0248 * b + 0.01 * p;
    let c = n as f64 * p + 0.5;
    // `v <= vr` with `vr = 0.92 - 4.2 / b`, multiplied out (b > 9 here).
    let vr_bound = 0.92 * b - 4.2;
    loop {
        let u = uniform(rng) - 0.5;
        let v = uniform(rng);
        let us = 0.5 - u.abs();
        let x = (2.0 * a / us + b) * u + c;
        // floor(x) for x >= 0 is truncation; k < 0 or k > n is rejected.
        if !(0.0..n as f64 + 1.0).contains(&x) {
            continue;
        }
        let k = x as u64;
        if us >= 0.07 && v * b <= vr_bound {
            return k;
        }
        let alpha = (2.83 + 5.1 / b) * spq;
        let lhs = (v * alpha / (a / (us * us) + b)).ln();
        let m = ((n + 1) as f64 * p) as u64;
        let rhs = ln_factorial(m) + ln_factorial(n - m) - ln_factorial(k) - ln_factorial(n - k)
            + (k as f64 - m as f64) * rate.odds.ln();
        if lhs <= rhs {
            return k;
        }
    }
}

/// Binomial(`n`, `rate.rare`) by sequential search from 0.
#[inline]
fn binomial_inversion<R: Rng + ?Sized>(rng: &mut R, n: u64, rate: &FailRate) -> u64 {
    let x = n as f64 * rate.ln_other;
    let u = uniform(rng);
    // `e^x` is above its third-order Taylor polynomial for x < 0 (the next term is
    // positive); below that, less a margin far above the rounding of either, the walk
    // stops at 0 without the exponential: the same answer, bit for bit.
    if u <= 1.0 + x * (1.0 + x * (0.5 + x * (1.0 / 6.0))) - 1e-14 {
        return 0;
    }
    binomial_walk(rng, n, rate, u)
}

/// The walk of [`binomial_inversion`] for the uniform `u`.
#[inline(never)]
fn binomial_walk<R: Rng + ?Sized>(rng: &mut R, n: u64, rate: &FailRate, mut u: f64) -> u64 {
    let f0 = (n as f64 * rate.ln_other).exp();
    'draw: loop {
        let (mut k, mut f, mut cdf) = (0u64, f0, f0);
        while u > cdf {
            // The CDF can stall just below 1 in floating point: start over.
            if k >= n {
                u = uniform(rng);
                continue 'draw;
            }
            let next = (k + 1) as usize;
            let over = RECIPROCAL
                .get(next)
                .copied()
                .unwrap_or_else(|| 1.0 / next as f64);
            f *= rate.odds * (n - k) as f64 * over;
            k += 1;
            cdf += f;
        }
        return k;
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

    /// `draw`'s frequencies against `statrs`' binomial pmf, 200,000 draws per case, the
    /// streams seeded from `seed`.
    fn matches_binomial_pmf(
        draw: fn(&mut Xoshiro256PlusPlus, u64, &FailRate) -> u64,
        cases: &[(u64, f64)],
        seed: u64,
    ) {
        for (i, &(n, p)) in cases.iter().enumerate() {
            let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed + i as u64);
            let rate = FailRate::new(p);
            let draws: Vec<u64> = (0..200_000).map(|_| draw(&mut rng, n, &rate)).collect();
            assert!(draws.iter().all(|&k| k <= n));
            let d = statrs::distribution::Binomial::new(p, n).unwrap();
            let pv = gof(&draws, |k| d.pmf(k));
            assert!(pv > 1e-4, "Binomial({n}, {p}): chi-square p-value {pv}");
        }
    }

    #[test]
    fn binomial_matches_its_pmf() {
        // Inversion, BTRS (either way round, tiny and large), and a mean just below and
        // just above the switch.
        let cases = [
            (300, 0.02),
            (900, 0.05),
            (40, 0.25),
            (60, 0.5),
            (301, 0.5),
            (2000, 0.2),
            (5000, 0.93),
            (999, 0.01),
            (1001, 0.01),
            (100_000, 0.3),
        ];
        matches_binomial_pmf(binomial, &cases, 77);
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(1);
        assert_eq!(binomial(&mut rng, 0, &FailRate::new(0.3)), 0);
        assert_eq!(binomial(&mut rng, 10, &FailRate::new(0.0)), 0);
        assert_eq!(binomial(&mut rng, 10, &FailRate::new(1.0)), 10);
        assert_eq!(binomial(&mut rng, 10, &FailRate::new(f64::NAN)), 0);
    }

    #[test]
    fn failures_match_the_binomial_pmf() {
        // Inversion (a small mean, either way round), rejection, and a mean just below and
        // just above the switch.
        let cases = [
            (200, 0.005),
            (12, 0.93),
            (3, 0.4),
            (5000, 0.02),
            (999, 0.01),
            (1001, 0.01),
            (40, 0.6),
        ];
        matches_binomial_pmf(failures, &cases, 51);
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(1);
        assert_eq!(failures(&mut rng, 0, &FailRate::new(0.3)), 0);
        assert_eq!(failures(&mut rng, 10, &FailRate::new(0.0)), 0);
        assert_eq!(failures(&mut rng, 10, &FailRate::new(1.0)), 10);
        // The shortcut to 0 agrees with the walk for tiny and middling exponents.
        for (n, p) in [(1u64, 1e-9), (300, 0.003), (20, 0.2), (7, 0.5)] {
            let rate = FailRate::new(p);
            for i in 0..20_000u64 {
                let u = (i as f64 + 0.5) / 20_000.0;
                let walked = binomial_walk(&mut rng, n, &rate, u);
                let x = n as f64 * rate.ln_other;
                if u <= 1.0 + x * (1.0 + x * (0.5 + x * (1.0 / 6.0))) - 1e-14 {
                    assert_eq!(walked, 0, "n {n}, p {p}, u {u}");
                }
            }
        }
    }

    #[test]
    fn kinds_are_independent_poisson_counts() {
        let probs = [
            0.0, 1e-7, 0.004, 0.07, 0.31, 0.49, 0.1, 0.015, 0.008, 0.002, 0.0009, 0.0000999,
        ];
        let total: f64 = probs.iter().sum();
        let (mu, fail) = (300.0, 0.005);
        let mix = Mix::new(Some(&probs), Some(fail));
        let from = mix
            .classes(mu)
            .find_map(|(t, _)| match t {
                Target::Minor(from) => Some(from),
                Target::Kind(_) => None,
            })
            .expect("the test must reach the one-by-one kinds");
        assert!(
            mix.kinds[from..].iter().any(|(k, _)| k.failed)
                && mix.kinds[from..].iter().any(|(k, _)| !k.failed),
            "the one-by-one kinds must hold failed and successful ones: {mix:?}"
        );
        // Shared by a batch (tables) and per trial (inversion and rejection): seeds differ.
        for (seed, shared) in [(7, false), (8, true)] {
            kinds_check(&mix, &probs, total, mu, fail, seed, shared);
        }
    }

    fn kinds_check(
        mix: &Mix,
        probs: &[f64],
        total: f64,
        mu: f64,
        fail: f64,
        seed: u64,
        shared: bool,
    ) {
        let mut pool = Pool::default();
        let mut plan = Vec::new();
        plan_span(&mut plan, mu, mix, shared.then_some(&mut pool));
        assert_eq!(
            plan.iter().any(|d| matches!(d.draw, Draw::Table(_))),
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
            let (n, failed) = draw_span(&mut rng, &plan, mix, &pool, &mut counts);
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
        // Failures and successes are independent: failures are uncorrelated with the
        // successful requests.
        let ok: Vec<u64> = totals.iter().zip(&failures).map(|(n, f)| n - f).collect();
        let r = corr(&ok, &failures);
        assert!(
            r.abs() < 4.5 / (trials as f64).sqrt(),
            "successes and failures: correlation {r}"
        );
    }
}
