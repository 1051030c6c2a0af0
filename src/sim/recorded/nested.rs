//! Nested counters: a counter each of whose events is one of another counter's (every
//! completed checkout is a started one) goes to the track its parent event went to.
//!
//! A trial splits the whole service's events between the canary and the stable version.
//! Real traffic splitting routes a request (with sticky routing, a user) to one version,
//! and every event it causes goes with it: a checkout the canary completes is one the
//! canary started. Two such counters thinned apart do not know it: the canary's
//! `completed / started` passed 100% in every healthy trial of an hour at 20% (a checkout
//! flow of 90%, 90 checkouts a scrape), and a rule on the ratio's fall under 85% rolled
//! back 99.7% of healthy releases, against 28.8% in the synthetic model of the same law
//! and 29.5% nested (`tests/integration/baseline.rs`).
//!
//! **How a child is thinned.** Scrape by scrape, after its parent: of the parent's `P`
//! events in the span, `K` went to the canary; the child's `n <= P` events are `n` of the
//! parent's, which ones the recording does not say, so any `n` of them alike, and the
//! canary's share of them is Hypergeometric(`P`, `K`, `n`) ([`hypergeometric`]): never more
//! than the canary's parent events, nor the stable track's share more than its own. The
//! parent's `K` is Binomial(`P`, `s`) at the canary's share `s`, so the child's count alone
//! is Binomial(`n`, `s`), as when thinned on its own: a query reading one of the two sees
//! the same law as before, and only the two together move jointly (their canary counts
//! correlate by `sqrt(n / P)`). A span with more child events than parent ones (a
//! completion counted a scrape after its start) gives `P` of them so and thins the rest on
//! their own, binomially: still Binomial(`n`, `s`) alone. A parent may be several series
//! (their sum: a counter split by a label), and may itself be nested (parents first).
//!
//! **A fault's move.** A fault that adds or takes away the canary's parent events (events
//! per request, a share) moves the events nested in them too ([`carry`]): the canary does
//! not complete a checkout the fault never let start.
//!
//! **Which counter is nested in which.** Stated where the scenario file states it, and
//! otherwise read from the recording, among the counters a query reads (whole counts, not
//! histogram buckets, which are thinned per bucket interval):
//! - The scenario file's `baseline.series` models each series of the synthetic model, and
//!   its `of` counter counts a share of its parent's events in the same scrape: nested,
//!   exactly what a recording should keep. Its parent is every recorded series of the
//!   parent's name whose labels agree with the child's on the labels both have (the
//!   synthetic `of` counts its parent's events over the parent's split); where no query
//!   reads those, the parent's own parent (nested in one, so in the other). A counter the
//!   file models as `per_request` is its own events, nested in none.
//! - A counter the file does not model is nested in the counter a query reads with it
//!   (both in one query: a ratio) whose series (those whose labels agree) have, together,
//!   at least as many events at every grid point where both have an increase, and more in
//!   all; the one with the fewest events where several do. A recording of nested counters
//!   shows this at every point; other counters show it only by staying apart at every one
//!   of its points, and then a wrong nesting changes no series' law, only correlates the
//!   two by the share of events above. Series of one name are never nested in one another
//!   (a counter's label sets count different events).
//!
//! The report lists each nesting and how it is known (`assumptions.recording.nested`).
//! Draws: a child draws from its own thinning stream, as before, so the same seed gives
//! the same trials at any `--jobs`, and only series a query reads take part, so series no
//! query reads change no figure.

use super::channel::{Channel, Role};
use super::effects::{binomial, present_sum};
use super::recording::Recording;
use crate::prom::Query;
use crate::sim::scenario::{SeriesKind, SeriesModel};
use rand::RngExt;
use rand::rngs::Xoshiro256PlusPlus;
use rand_distr::{Distribution, Hypergeometric};

/// How a nesting is known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Known {
    /// The scenario file's `of`.
    Declared,
    /// The recording: never more events than the parent's at any point.
    Inferred,
}

/// A counter nested in others: its channel, the channels whose events together hold its
/// own, and how that is known.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Nested {
    pub(super) child: usize,
    pub(super) parent: Vec<usize>,
    pub(super) known: Known,
}

/// A nesting as the report gives it (`assumptions.recording.nested`).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub(crate) struct Nesting {
    /// The child series.
    pub(crate) series: String,
    /// The series whose events, together, hold its own.
    pub(crate) within: Vec<String>,
    /// `declared` (the scenario file's `of`) or `inferred` (from the recording).
    pub(crate) known: String,
}

impl Nested {
    /// What the report says of it (`show` writes a channel's series).
    pub(super) fn described(&self, show: impl Fn(usize) -> String) -> Nesting {
        Nesting {
            series: show(self.child),
            within: self.parent.iter().map(|&p| show(p)).collect(),
            known: match self.known {
                Known::Declared => "declared",
                Known::Inferred => "inferred",
            }
            .into(),
        }
    }
}

/// The nested counters among `channels` (`queries` the plan's, `models` the scenario
/// file's `baseline.series`), parents before their children.
pub(super) fn nesting(
    rec: &Recording,
    channels: &[Channel],
    in_histogram: &[bool],
    queries: &[Option<[Query; 2]>],
    models: &[SeriesModel],
) -> Vec<Nested> {
    let n = channels.len();
    // The channel a template is the canary or stable series of (none: a failure series).
    let mut of_template = std::collections::HashMap::new();
    for (c, ch) in channels.iter().enumerate() {
        of_template.entry(ch.canary).or_insert(c);
        of_template.entry(ch.stable).or_insert(c);
    }
    let channel_of = |t: usize| of_template.get(&t).copied();
    // Per query, the channels it reads.
    let read_by: Vec<Vec<usize>> = queries
        .iter()
        .flatten()
        .flat_map(|pair| pair.iter())
        .map(|q| {
            let mut cs: Vec<usize> = q.reads().into_iter().filter_map(channel_of).collect();
            cs.sort_unstable();
            cs.dedup();
            cs
        })
        .collect();
    let series = |c: usize| &rec.series[channels[c].rec];
    let total = |c: usize| series(c).total();
    let eligible: Vec<bool> = (0..n)
        .map(|c| {
            matches!(channels[c].role, Role::Traffic { whole: true })
                && !in_histogram[c]
                && read_by.iter().any(|r| r.contains(&c))
        })
        .collect();
    let agree = |a: usize, b: usize| {
        let (a, b) = (&series(a).labels, &series(b).labels);
        a.iter()
            .all(|(k, v)| b.iter().all(|(k2, v2)| k2 != k || v2 == v))
    };
    // The eligible series named `name` whose labels agree with `child`'s, among `among`.
    let group = |child: usize, name: &str, among: &mut dyn Iterator<Item = usize>| {
        among
            .filter(|&c| eligible[c] && series(c).name == name && agree(child, c))
            .collect::<Vec<usize>>()
    };
    let mut found = Vec::new();
    for x in (0..n).filter(|&c| eligible[c]) {
        let name = &series(x).name;
        let own = total(x);
        if own <= 0.0 {
            continue;
        }
        match models
            .iter()
            .find(|m| m.histogram.is_none() && m.name == *name)
        {
            Some(m) => {
                // Up the file's `of` chain to the nearest parent some query reads.
                let mut at = m.kind;
                while let SeriesKind::Of { parent, .. } = at {
                    let p = &models[parent];
                    let g = group(x, &p.name, &mut (0..n));
                    if !g.is_empty() {
                        found.push(Nested {
                            child: x,
                            parent: g,
                            known: Known::Declared,
                        });
                        break;
                    }
                    at = p.kind;
                }
            }
            None => {
                let mut with: Vec<usize> = read_by
                    .iter()
                    .filter(|r| r.contains(&x))
                    .flatten()
                    .copied()
                    .collect();
                with.sort_unstable();
                with.dedup();
                let mut names: Vec<&str> = Vec::new();
                for &c in &with {
                    let other = series(c).name.as_str();
                    if other != name && !names.contains(&other) {
                        names.push(other);
                    }
                }
                let mut best: Option<(f64, Vec<usize>)> = None;
                for other in names {
                    let g = group(x, other, &mut with.iter().copied());
                    let sum: f64 = g.iter().map(|&c| total(c)).sum();
                    if g.is_empty() || sum <= own || best.as_ref().is_some_and(|b| b.0 <= sum) {
                        continue;
                    }
                    if holds(rec, channels, x, &g) {
                        best = Some((sum, g));
                    }
                }
                if let Some((_, g)) = best {
                    found.push(Nested {
                        child: x,
                        parent: g,
                        known: Known::Inferred,
                    });
                }
            }
        }
    }
    order(found)
}

/// Whether `child`'s increase is at most `parent`'s together at every grid point where
/// all of them have one.
fn holds(rec: &Recording, channels: &[Channel], child: usize, parent: &[usize]) -> bool {
    let values = |c: usize| &rec.series[channels[c].rec].values;
    (0..rec.points).all(|i| {
        let x = values(child)[i];
        let p: f64 = parent.iter().map(|&c| values(c)[i]).sum();
        x.is_nan() || p.is_nan() || x <= p
    })
}

/// `found` with parents before their children; a nesting in a cycle (counters inferred
/// in each other) is dropped.
fn order(mut found: Vec<Nested>) -> Vec<Nested> {
    let mut out: Vec<Nested> = Vec::with_capacity(found.len());
    loop {
        let before = found.len();
        let mut i = 0;
        while i < found.len() {
            let ready = found[i]
                .parent
                .iter()
                .all(|p| !found.iter().any(|f| f.child == *p));
            if ready {
                out.push(found.remove(i));
            } else {
                i += 1;
            }
        }
        if found.len() == before {
            return out;
        }
    }
}

/// The canary's count of a child's `n` events whose parent, in the same span, had `total`
/// events, `canary` of them the canary's (`share` the canary's share of the span, for the
/// child events beyond the parent's).
pub(super) fn thin_nested(
    rng: &mut Xoshiro256PlusPlus,
    n: u64,
    (total, canary): (u64, u64),
    share: f64,
) -> u64 {
    let within = n.min(total);
    let k = hypergeometric(rng, total, canary.min(total), within);
    if within < n {
        k + binomial(rng, n - within, share)
    } else {
        k
    }
}

/// Whether channel `c`'s events are some of those of a channel in `outer`, directly or
/// through other nested counters.
pub(super) fn within(nested: &[Nested], c: usize, outer: &[usize]) -> bool {
    nested
        .iter()
        .filter(|n| n.child == c)
        .flat_map(|n| &n.parent)
        .any(|&p| outer.contains(&p) || within(nested, p, outer))
}

/// Carries a fault's move of the canary's events in a scrape span to the events nested in
/// them, nesting by nesting (parents first, so a grandchild follows its moved parent):
/// `before` and `canary` per channel, the span's increases before and after the fault
/// moved them (NaN: no sample); `per_parent` per nesting, the recording's child events
/// per parent event. When a child's parents' `P` events became `P'`: fewer, the child's
/// `n` events (any `n` of the `P`, as [`thin_nested`] takes them) keep those of the parent
/// events kept, Hypergeometric(`P`, `P'`, `n`), and any above `P` are kept with `P'/P`;
/// more, each added parent event brings one of the child's with `per_parent`, the law of
/// an `of` counter in the synthetic model.
pub(super) fn carry(
    (nested, per_parent): (&[Nested], &[f64]),
    before: &[f64],
    canary: &mut [f64],
    rng: &mut Xoshiro256PlusPlus,
) {
    for (n, &h) in nested.iter().zip(per_parent) {
        let sum = |v: &[f64]| present_sum(v, n.parent.iter().copied());
        let (was, now, k) = (sum(before), sum(canary), canary[n.child]);
        if was == now || k.is_nan() {
            continue;
        }
        canary[n.child] = if now < was {
            let (was, now, k) = (was as u64, now as u64, k as u64);
            let of_parents = k.min(was);
            let above = binomial(rng, k - of_parents, now as f64 / was as f64);
            (hypergeometric(rng, was, now, of_parents) + above) as f64
        } else {
            k + binomial(rng, (now - was) as u64, h) as f64
        };
    }
}

/// Below this mode `rand_distr`'s Hypergeometric inverts from a probability it computes
/// in a loop over the population (slow for a large parent); [`inverted`] starts from its
/// logarithm instead. At and above it both use the same exact rejection (H2PE).
const INVERSION_BELOW: f64 = 10.0;

/// How many of `n` of `total` items, drawn without replacement, are among `marked` of
/// them: Hypergeometric(`total`, `marked`, `n`), exact. `marked` and `n` at most `total`.
pub(super) fn hypergeometric(rng: &mut Xoshiro256PlusPlus, total: u64, marked: u64, n: u64) -> u64 {
    if n == 0 || marked == 0 {
        return 0;
    }
    if marked >= total {
        return n;
    }
    if n >= total {
        return marked;
    }
    // The unmarked, or the items not drawn, where they are fewer.
    if marked > total - marked {
        return n - hypergeometric(rng, total, total - marked, n);
    }
    if n > total - n {
        return marked - hypergeometric(rng, total, marked, total - n);
    }
    let mode = ((n + 1) as f64 * (marked + 1) as f64 / (total + 2) as f64).floor();
    if mode < INVERSION_BELOW {
        return inverted(rng, total, marked, n);
    }
    match Hypergeometric::new(total, marked, n) {
        Ok(h) => h.sample(rng),
        Err(_) => inverted(rng, total, marked, n),
    }
}

/// Hypergeometric(`total`, `marked`, `n`) by inversion from 0 (`marked`, `n` at most half
/// of `total`, so 0 is in its support): P(0) = C(total - marked, n) / C(total, n), from
/// log-factorials, then each next probability from the one before.
fn inverted(rng: &mut Xoshiro256PlusPlus, total: u64, marked: u64, n: u64) -> u64 {
    use crate::sim::synth::draw::ln_factorial;
    let (big, m, k) = (total as f64, marked as f64, n as f64);
    let rest = big - m;
    let mut p = (ln_factorial(total - marked) + ln_factorial(total - n)
        - ln_factorial(total)
        - ln_factorial(total - marked - n))
    .exp();
    let mut u: f64 = rng.random();
    let top = marked.min(n);
    let mut x = 0u64;
    while u > p && x < top {
        u -= p;
        let xf = x as f64;
        p *= (m - xf) * (k - xf) / ((xf + 1.0) * (rest - k + xf + 1.0));
        x += 1;
    }
    x
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    /// Mean and variance of `draws` against the closed form, each within `z` standard
    /// errors (the variance's from the fourth central moment of the draws).
    fn check(total: u64, marked: u64, n: u64, draws: usize, seed: u64) {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
        let xs: Vec<f64> = (0..draws)
            .map(|_| {
                let x = hypergeometric(&mut rng, total, marked, n);
                assert!(x <= marked.min(n) && n - x <= total - marked, "{x}");
                x as f64
            })
            .collect();
        let (nn, kk, big) = (n as f64, marked as f64, total as f64);
        let mean = nn * kk / big;
        let var = nn * kk / big * (1.0 - kk / big) * (big - nn) / (big - 1.0);
        let d = draws as f64;
        let m = xs.iter().sum::<f64>() / d;
        let v = xs.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (d - 1.0);
        let m4 = xs.iter().map(|x| (x - m).powi(4)).sum::<f64>() / d;
        let se_mean = (var / d).sqrt();
        let se_var = ((m4 - v * v) / d).sqrt();
        assert!(
            (m - mean).abs() < 5.0 * se_mean.max(1e-12),
            "HG({total}, {marked}, {n}): mean {m} against {mean} (se {se_mean})"
        );
        assert!(
            (v - var).abs() < 5.0 * se_var.max(1e-12),
            "HG({total}, {marked}, {n}): variance {v} against {var} (se {se_var})"
        );
    }

    #[test]
    fn hypergeometric_draws_have_the_closed_form_mean_and_variance() {
        for (i, &(total, marked, n)) in [
            // Inversion: small modes, either side of each symmetry.
            (100, 5, 90),
            (100, 95, 90),
            (1_000, 50, 10),
            (1_000, 950, 990),
            (3, 1, 2),
            // A parent of a million events and a rare child: inversion from Stirling's series.
            (1_000_000, 50_000, 40),
            // The rejection (modes of 10 and more), on both sides of each symmetry.
            (1_000, 200, 300),
            (1_000, 800, 700),
            (100_000, 5_000, 40_000),
            (90, 45, 87),
        ]
        .iter()
        .enumerate()
        {
            check(total, marked, n, 200_000, 17 + i as u64);
        }
    }

    #[test]
    fn hypergeometric_edges_are_exact() {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(1);
        assert_eq!(hypergeometric(&mut rng, 10, 0, 5), 0);
        assert_eq!(hypergeometric(&mut rng, 10, 10, 5), 5);
        assert_eq!(hypergeometric(&mut rng, 10, 4, 10), 4);
        assert_eq!(hypergeometric(&mut rng, 10, 4, 0), 0);
        assert_eq!(hypergeometric(&mut rng, 0, 0, 0), 0);
    }

    /// A parent thinned binomially and its child conditionally: the child never has more
    /// canary events than its parent, nor the stable track, and the child's count alone
    /// is Binomial(n, s), as when thinned on its own.
    #[test]
    fn a_child_thinned_on_its_parent_stays_inside_it_and_keeps_its_own_law() {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(5);
        let (parent, child, s) = (90u64, 81u64, 0.05);
        let draws = 200_000;
        let mut xs = Vec::with_capacity(draws);
        for _ in 0..draws {
            let k = binomial(&mut rng, parent, s);
            let c = thin_nested(&mut rng, child, (parent, k), s);
            assert!(c <= k && child - c <= parent - k);
            xs.push(c as f64);
        }
        let d = draws as f64;
        let m = xs.iter().sum::<f64>() / d;
        let v = xs.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (d - 1.0);
        let (mean, var) = (child as f64 * s, child as f64 * s * (1.0 - s));
        assert!((m - mean).abs() < 5.0 * (var / d).sqrt(), "{m} {mean}");
        assert!((v - var).abs() < 0.02 * var, "{v} {var}");
        // More child events than parent ones: the excess thinned on its own.
        let (mut sum, mut rng) = (0.0, Xoshiro256PlusPlus::seed_from_u64(6));
        for _ in 0..draws {
            let k = binomial(&mut rng, 10, s);
            let c = thin_nested(&mut rng, 30, (10, k), s);
            assert!(c <= k + 20);
            sum += c as f64;
        }
        let mean = 30.0 * s;
        let se = (30.0 * s * (1.0 - s) / d).sqrt();
        assert!((sum / d - mean).abs() < 5.0 * se, "{} {mean}", sum / d);
    }

    /// A parent's events moved carry to its child, and the child's to its own child:
    /// halved (100 of 200 kept), a child of 90 keeps Hypergeometric(200, 100, 90), mean 45,
    /// and a grandchild of 60 of those 90 keeps 60 · 45/90 on average; doubled (200 more),
    /// the child gains Binomial(200, 0.9), mean 180. A child beyond its parents' events
    /// keeps its excess with the parents' ratio. Unmoved parents leave the child alone.
    #[test]
    fn moved_parent_events_carry_their_children_with_them() {
        let nested = [
            Nested {
                child: 1,
                parent: vec![0],
                known: Known::Declared,
            },
            Nested {
                child: 2,
                parent: vec![1],
                known: Known::Declared,
            },
        ];
        let per_parent = [0.9, 2.0 / 3.0];
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(4);
        let before = [200.0, 90.0, 60.0];
        let d = 20_000.0;
        let (mut halved, mut doubled) = ([0.0; 2], [0.0; 2]);
        for _ in 0..d as u64 {
            let mut v = [100.0, 90.0, 60.0];
            carry((&nested, &per_parent), &before, &mut v, &mut rng);
            assert!(v[1] <= v[0] && v[2] <= v[1], "{v:?}");
            halved[0] += v[1];
            halved[1] += v[2];
            let mut v = [400.0, 90.0, 60.0];
            carry((&nested, &per_parent), &before, &mut v, &mut rng);
            doubled[0] += v[1];
            doubled[1] += v[2];
        }
        // Hypergeometric(200, 100, 90): variance 90 · 0.5 · 0.5 · 110/199, about 12.4.
        assert!(
            (halved[0] / d - 45.0).abs() < 5.0 * (12.4f64 / d).sqrt(),
            "{halved:?}"
        );
        assert!((halved[1] / d - 30.0).abs() < 0.15, "{halved:?}");
        // Binomial(200, 0.9): variance 18; the grandchild gains 2/3 of the child's gain.
        assert!(
            (doubled[0] / d - 270.0).abs() < 5.0 * (18.0f64 / d).sqrt(),
            "{doubled:?}"
        );
        assert!((doubled[1] / d - 180.0).abs() < 0.3, "{doubled:?}");
        let mut v = [100.0, 250.0, 60.0];
        carry(
            (&nested, &per_parent),
            &[200.0, 250.0, 60.0],
            &mut v,
            &mut rng,
        );
        assert!((100.0..=150.0).contains(&v[1]), "{v:?}");
        let mut v = [200.0, 90.0, 60.0];
        carry((&nested, &per_parent), &before, &mut v, &mut rng);
        assert_eq!(v, before);
    }
}
