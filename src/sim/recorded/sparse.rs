//! Recorded trials drawn only where `rate()` reads: the fast path of `--baseline` for runs
//! whose rules read only rates of whole counters (request counters, histogram buckets),
//! each instance's own counters (CPU) and gauges, built-in or through custom queries.
//!
//! A full recorded trial ([`super::trial`]) writes every scrape of every series and reads
//! them with the plan's queries. When every metric a rule reads is a ratio of two rates, a
//! rate, an increase or a quantile of bucket rates over counters thinned from the
//! recording, an average of each instance's CPU `rate()`, or a gauge read at an instant,
//! most of that work reads nothing: `rate()` of a counter that never resets reads a
//! window's first and last samples and how many lie between, which the scrape grid says.
//! A sparse trial therefore:
//! - **Draws per span.** It thins each counter once per *span* between the scrapes a
//!   window can start or end on: the last scrape at or before each evaluation, the one
//!   after it (the first of a window a whole number of evaluation intervals long), and
//!   the first of each other window. A sum of binomial thinnings at one share is the
//!   binomial thinning of the sum, so this is the full trial's law; where a phase starts
//!   inside a span, its scrapes are thinned per share.
//! - **Nested counters within their parents' events** ([`Nest`]): a child's canary count
//!   of a run at one share is hypergeometric given its parent's, the full trial's law
//!   summed over the run's scrapes; split scrape by scrape, the parent's events holding a
//!   child event, its other events and the child's events beyond the parent's each share
//!   out their canary events on their own. Such a counter has one parent series, which is
//!   nested in none and holds no other counter a query reads; anything else needs full
//!   trials.
//! - **Draws per bucket.** A histogram is thinned per bucket interval, as on a full
//!   trial. (The synthetic model merges the buckets no threshold tells apart; here the
//!   draws would then depend on the rules' thresholds, and a tune's settings, its
//!   refining pass or two compared plans would no longer draw alike.)
//! - **Faults per piece.** A fault acts on a span at once when its intensity, the blast
//!   radius' share and the crash are the same at each of its scrapes (again a binomial of
//!   a sum). Where they change inside a span, where a failure series may be born in it,
//!   and always under a `load` fault (whose intensity follows each scrape's canary
//!   requests), the span's canary counts are split scrape by scrape (a multivariate
//!   hypergeometric draw, exact given the span's) and the fault acts scrape by scrape, as
//!   on a full trial. A fault's `series` effects (events per request, an `of` counter's
//!   share, a split) move a piece's counts with the full trial's function
//!   ([`shift_carrying`]), the events nested in them with them: each move is
//!   a thinning or a binomial or Poisson gain, which add up over a piece's scrapes; a
//!   piece where a child has more events than its parent at some scrape, or where a
//!   counter may be born, is split scrape by scrape first.
//! - **Adds each instance's own counters** (CPU's busy seconds), which are not thinned,
//!   scrape by scrape as the full trial adds them: the same sums, a canary instance's from
//!   the first scrape that finds it running, moved by a `cpu_usage` fault.
//! - **Reads gauges as recorded**, at the scrape an instant selector finds, moved by the
//!   fault at that scrape's time (a `memory_usage` leak); a gauge a `load` fault moves
//!   needs a full trial, as its move follows each scrape's requests.
//! - **Reads through the plan's queries.** The values come from the queries the full
//!   trial runs ([`Query::value_over`]), through a [`Reader`] that extrapolates from the
//!   stored first and last samples of each window: the same sums, `or vector(0)` and
//!   quantiles, and for a custom query the same engine, which reads its series through
//!   the reader too (so it may read them only through `rate()`, `increase()` and instant
//!   selectors, without `offset`: [`Query::reads_edges_only`]).
//!
//! The thinning draws depend on the blocks, the shares and the span ends, none of which
//! depends on the fault: a faulty trial and its healthy twin share them, as full trials
//! do. The span ends depend on the evaluation interval and on the windows that are not
//! whole numbers of it ([`RecordedModel::draw_shape`]): two plans compared trial by trial
//! share their draws only when those agree. Splits and fault effects draw from streams of
//! their own. The blocks are drawn in the full trial's order, so a trial replays the same
//! stretches of the recording either way.
//!
//! [`Sparse::of`] decides once per run whether every trial can be sparse, or says why not
//! (the report names it); the full trial is the reference it is tested against
//! (`sparse/tests.rs`).
//!
//! [`Query::value_over`]: crate::prom::Query::value_over
//! [`Query::reads_edges_only`]: crate::prom::Query::reads_edges_only

use super::effects::{Bounds, binomial, busy_moved, mean_intensity, move_by, shift_gauge};
use super::nested::hypergeometric;
use super::rows::Replayed;
use super::trial::{UP, shift_carrying};
use super::values::Values;
use super::{FailTo, RecordedModel, Role};
use crate::prom::query::{Cur, Reader};
use crate::prom::{DEFAULT_LOOKBACK_MS, Sample, Semantics};
use crate::promql::{MetricExpr, Track};
use crate::sim::evaluator::{Columns, Schedule};
use crate::sim::outcomes::RuleSet;
use crate::sim::scenario::FaultKind;
use crate::sim::synth::draw::{self, FailRate};
use crate::sim::synth::{Exposure, FaultModel, Faults, QueryFailure};
use rand::SeedableRng;
use rand::rngs::Xoshiro256PlusPlus;

#[cfg(test)]
mod tests;

/// Xored into a trial's seed for the stream of its splits (the full trial has none).
const SPLIT_SALT: u64 = 0x5b11_7500_0000_0005;

/// A series with no sample yet.
const UNBORN: i64 = i64::MAX;

/// What a sparse trial draws and keeps: decided once per run.
#[derive(Debug, Clone)]
pub(crate) struct Sparse {
    /// The counters thinned whole (channels, in channel order).
    counters: Vec<usize>,
    /// Per counter: its slots (canary, stable).
    counter_slots: Vec<[usize; 2]>,
    /// Per counter: where a fault's failures of its answered requests go (a slot).
    fail_to: Vec<Option<usize>>,
    /// Per counter: None, or whether it counts failed requests, for one of the requests.
    requests: Vec<Option<bool>>,
    /// The histograms thinned per bucket interval.
    histograms: Vec<Buckets>,
    /// The nested counters, each thinned within its parent's canary events.
    nests: Vec<Nest>,
    /// The canary's own failure series (a slot each), which the full trial writes as
    /// templates beyond the recording's.
    extras: Vec<usize>,
    /// Per template: its slot (None: a sparse trial keeps no value of it).
    slot_of: Vec<Option<usize>>,
    /// Per template of a gauge a query reads at an instant: its channel, read from the
    /// recording when the query runs.
    gauge_of: Vec<Option<usize>>,
    /// Per slot: whether it is the canary's, and whether its series is born at its first
    /// event (else its first sample is 0, at scrape 0).
    slots: Vec<(bool, bool)>,
    /// Each instance's own counters (CPU), not thinned.
    own: Vec<Own>,
    /// Per slot: whether its value is a sum of recorded increases ([`Trial::real`]), not
    /// a count of events.
    real: Vec<bool>,
    /// Thinning streams: per counter, then per bucket of each histogram, the channel whose
    /// stream draws it.
    streams: Vec<usize>,
    eval_ms: i64,
    /// Windows read that are not whole numbers of evaluation intervals.
    odd_windows: Vec<i64>,
    /// Values kept per slot: enough scrapes for the longest window, a power of two.
    ring: usize,
    /// The canary's share of each phase, prepared for thinning.
    shares: Vec<FailRate>,
}

/// A counter of an instance's own (CPU's busy seconds): each track's own path through
/// the recording, not thinned; a canary instance's from the first scrape that finds it
/// running.
#[derive(Debug, Clone)]
struct Own {
    channel: usize,
    /// Its slots: the canary instance's, and the stable version's (None: a copy, a canary
    /// instance beyond the recording's, whose stable series is the original's).
    canary: usize,
    stable: Option<usize>,
    /// The recording's mean busy seconds per second, which a fault's `cpu_usage` moves
    /// the canary's from.
    mean: Option<f64>,
}

/// A counter nested in another's events ([`super::nested`]): their units (counters).
/// Per run of scrapes at one share, of the parent's `P` events `K` went to the canary;
/// the child's events within the parent's, `min(n, P)` at each scrape, are any of them
/// alike, so the canary's share of them is Hypergeometric(`P`, `K`, their sum), the rest
/// thinned on their own: the full trial's law, which draws the same per scrape (a
/// binomial thinning at one share picks its events uniformly, whatever the scrape).
#[derive(Debug, Clone, Copy)]
struct Nest {
    child: usize,
    parent: usize,
}

/// A histogram thinned per bucket interval.
#[derive(Debug, Clone)]
struct Buckets {
    /// Its index among the model's histograms.
    hist: usize,
    /// Per bucket (in `le` order): its slots (canary, stable).
    slots: Vec<[usize; 2]>,
}

impl Sparse {
    /// What sparse trials of `m` draw, or why some metric a rule reads needs full trials
    /// (a sentence for the report): a custom query over raw samples; a counter that is
    /// not whole, each instance's own and modelled under `baseline.series`, nested other
    /// than in one series ([`Nest`]) or missing at some grid point of the recording; a
    /// gauge a `load` fault moves. Every request counter must be such a counter too (a
    /// fault's failures, load and blast radius read them), and so must every counter a
    /// full trial thins when a fault has `series` effects. `eval_ms` and the windows set
    /// the spans.
    pub(super) fn of(
        m: &RecordedModel<'_>,
        plan: &crate::check::CheckedPlan,
        (scenarios, eval_ms): (&crate::sim::scenario::Scenarios, i64),
    ) -> Result<Sparse, String> {
        let rec = m.rec;
        let modelled = |name: &str| scenarios.baseline.series.iter().any(|s| s.name == name);
        let shown = |c: usize| super::shown(&rec.series[m.channels[c].rec]);
        // Why channel `c` is not a counter a sparse trial can draw whole (None: it is):
        // the series, and what it is.
        let unfit = |c: usize| -> Option<(String, &str)> {
            let ch = &m.channels[c];
            let r = &rec.series[ch.rec];
            let what = match ch.role {
                Role::Own if !r.counter => "is a gauge a scenario's `load` fault moves",
                Role::Own if modelled(&r.name) => {
                    "is each instance's own counter, modelled under the scenario file's `baseline.series`"
                }
                Role::Traffic { whole: false } => "has increases that are not whole numbers",
                Role::Traffic { .. } if ch.instance.is_some() || ch.copy => {
                    "is each instance's own series"
                }
                _ if rec.coverage(ch.rec, &m.gaps) < 1.0 => {
                    "misses some grid points of the recording"
                }
                _ => return None,
            };
            Some((shown(c), what))
        };
        // Every request counter: a fault's failures, load and blast radius read them.
        let mut counters: Vec<usize> = m.requests.iter().map(|&(c, _)| c).collect();
        if let Some((name, what)) = counters.iter().find_map(|&c| unfit(c)) {
            return Err(format!("the request counter `{name}` {what}"));
        }
        let read_metrics: Vec<usize> = (0..plan.metrics.len())
            .filter(|&mi| m.reads.iter().flatten().any(|r| r[mi]))
            .collect();
        // A copy's stable series is its original's.
        let owner = |t: usize| {
            m.channels
                .iter()
                .position(|ch| ch.canary == t || (ch.stable == t && !ch.copy))
        };
        // A gauge is read as recorded (`up` falls to 0 with a crash), moved by the fault
        // at the scrape read, but a `load` fault's, which follows each scrape's requests.
        let load_moved = load_moved_gauges(m, plan, scenarios);
        let mut own_channels: Vec<usize> = Vec::new();
        let mut gauge_of = vec![None; m.templates.len()];
        let mut in_hist = vec![false; m.histograms.len()];
        // Which templates the rules' queries read, each one a counter's, a cell's or a
        // gauge's.
        for &mi in &read_metrics {
            let metric = &plan.metrics[mi].name;
            let Some(pair) = m.queries[mi].as_ref() else {
                return Err(format!("`{metric}` has no query on the recording"));
            };
            for q in pair {
                if !q.reads_edges_only() {
                    return Err(format!(
                        "`{metric}`'s query reads raw samples (a range function other than `rate()` and `increase()`, or an `offset`)"
                    ));
                }
                let ranged = q.ranged_reads();
                for t in q.reads() {
                    if m.extras().contains(&t) {
                        continue;
                    }
                    let Some(c) = owner(t) else {
                        return Err(format!("`{metric}` reads a series of no recorded one"));
                    };
                    let r = &rec.series[m.channels[c].rec];
                    if !r.counter && ranged.binary_search(&t).is_ok() {
                        // `rate()` of a gauge reads every sample (a fall is a reset).
                        return Err(format!(
                            "`{metric}` takes a rate of `{}`, which the recording holds as a gauge (its name has no counter's suffix: `_total`, `_count`, `_sum` or `_bucket`)",
                            super::shown(r)
                        ));
                    }
                    if gauge_of[t].is_some() {
                        continue;
                    }
                    if m.channels[c].role == Role::Own && !r.counter && !load_moved[t] {
                        gauge_of[t] = Some(c);
                        continue;
                    }
                    if m.channels[c].role == Role::Own && r.counter {
                        if let Some((name, what)) = unfit(c) {
                            return Err(format!("`{metric}` reads `{name}`, which {what}"));
                        }
                        if !own_channels.contains(&c) {
                            own_channels.push(c);
                        }
                        continue;
                    }
                    if let Some((name, what)) = unfit(c) {
                        return Err(format!("`{metric}` reads `{name}`, which {what}"));
                    }
                    match m.histograms.iter().position(|h| h.channels.contains(&c)) {
                        Some(h) => in_hist[h] = true,
                        None if !counters.contains(&c) => counters.push(c),
                        None => {}
                    }
                }
            }
        }
        // A fault's `series` effects move the canary's counters together (a share reads its
        // parent's events, a split all its values): every counter the full trial thins.
        let faults = || scenarios.scenarios.iter().filter_map(|s| s.fault.as_ref());
        if faults().any(|f| !f.series.is_empty()) {
            for (c, ch) in m.channels.iter().enumerate() {
                let thinned = ch.live && matches!(ch.role, Role::Traffic { .. });
                if !thinned || m.in_histogram[c] || counters.contains(&c) {
                    continue;
                }
                if let Some((name, what)) = unfit(c) {
                    return Err(format!(
                        "a scenario's `series` effect moves `{name}`, which {what}"
                    ));
                }
                counters.push(c);
            }
        }
        // Nested counters ([`super::nested`]), thinned within their parent's events: each in
        // one series, which is nested in none and holds no other counter a query reads.
        let mut nested: Vec<(usize, usize)> = Vec::new();
        for n in &m.nested {
            if !counters.contains(&n.child) {
                continue;
            }
            let child = shown(n.child);
            let &[p] = &n.parent[..] else {
                return Err(format!(
                    "`{child}` is nested in several series' events together"
                ));
            };
            let parent = shown(p);
            if m.channels[p].nested {
                return Err(format!(
                    "`{child}` is nested in `{parent}`, itself nested in another counter"
                ));
            }
            if let Some(&(other, _)) = nested.iter().find(|&&(_, q)| q == p) {
                let other = shown(other);
                return Err(format!(
                    "`{child}` and `{other}` are both nested in `{parent}`"
                ));
            }
            if let Some((name, what)) = unfit(p) {
                return Err(format!("`{child}` is nested in `{name}`, which {what}"));
            }
            if !counters.contains(&p) {
                counters.push(p);
            }
            nested.push((n.child, p));
        }
        counters.sort_unstable();
        let unit = |c: usize| counters.iter().position(|&x| x == c).expect("a counter");
        let nests: Vec<Nest> = nested
            .iter()
            .map(|&(child, parent)| Nest {
                child: unit(child),
                parent: unit(parent),
            })
            .collect();
        if counters.is_empty() {
            return Err(format!(
                "the recording has no request counter (`{}`) and no rule reads another counter",
                crate::check::REQUESTS
            ));
        }
        let read_hists: Vec<usize> = (0..m.histograms.len()).filter(|&h| in_hist[h]).collect();
        for &h in &read_hists {
            if let Some((name, what)) = m.histograms[h].channels.iter().find_map(|&c| unfit(c)) {
                return Err(format!("the histogram bucket `{name}` {what}"));
            }
        }
        let mut slots = Vec::new();
        let mut slot_of = vec![None; m.templates.len()];
        let mut slot = |t: usize, canary: bool, late: bool| {
            slot_of[t] = Some(slots.len());
            slots.push((canary, late));
            slots.len() - 1
        };
        let counter_slots: Vec<[usize; 2]> = counters
            .iter()
            .map(|&c| {
                let ch = &m.channels[c];
                [
                    slot(ch.canary, true, ch.born_late),
                    slot(ch.stable, false, false),
                ]
            })
            .collect();
        let extras: Vec<usize> = m.extras().map(|t| slot(t, true, m.failures_late)).collect();
        own_channels.sort_unstable();
        let own: Vec<Own> = own_channels
            .iter()
            .map(|&c| {
                let ch = &m.channels[c];
                Own {
                    channel: c,
                    canary: slot(ch.canary, true, false),
                    stable: (!ch.copy).then(|| slot(ch.stable, false, false)),
                    mean: m.levels.cpu_mean(c),
                }
            })
            .collect();
        let histograms: Vec<Buckets> = read_hists
            .iter()
            .map(|&h| Buckets {
                hist: h,
                slots: m.histograms[h]
                    .channels
                    .iter()
                    .map(|&c| {
                        let ch = &m.channels[c];
                        [slot(ch.canary, true, false), slot(ch.stable, false, false)]
                    })
                    .collect(),
            })
            .collect();
        let fail_to = counters
            .iter()
            .map(|&c| match m.failures_to[c]? {
                FailTo::Channel(c2) => slot_of[m.channels[c2].canary],
                FailTo::Extra(t) => slot_of[t],
            })
            .collect();
        let requests = counters
            .iter()
            .map(|&c| m.requests.iter().find(|r| r.0 == c).map(|r| r.1))
            .collect();
        let mut streams = counters.clone();
        for b in &histograms {
            streams.extend(&m.histograms[b.hist].channels);
        }
        let mut windows: Vec<i64> = Vec::new();
        for &mi in &read_metrics {
            let mut ws = match &plan.metrics[mi].expr {
                MetricExpr::RateRatio { window, .. }
                | MetricExpr::Rate { window, .. }
                | MetricExpr::Increase { window, .. }
                | MetricExpr::Quantile { window, .. }
                | MetricExpr::AvgRate { window, .. } => vec![window.millis() as i64],
                // Read at an instant: no window.
                _ => Vec::new(),
            };
            // A custom query's own ranges.
            ws.extend(
                m.queries[mi]
                    .iter()
                    .flatten()
                    .flat_map(|q| q.custom_ranges()),
            );
            for w in ws {
                if w % eval_ms != 0 && !windows.contains(&w) {
                    windows.push(w);
                }
            }
        }
        let step = rec.step_ms;
        let ring = ((m.horizon_ms / step) as usize + 4).next_power_of_two();
        let mut real = vec![false; slots.len()];
        for o in &own {
            real[o.canary] = true;
            o.stable.into_iter().for_each(|s| real[s] = true);
        }
        Ok(Sparse {
            own,
            nests,
            real,
            counters,
            counter_slots,
            fail_to,
            requests,
            histograms,
            extras,
            slot_of,
            gauge_of,
            slots,
            streams,
            eval_ms,
            odd_windows: windows,
            ring,
            shares: m.canary_share.iter().map(|&p| FailRate::new(p)).collect(),
        })
    }

    /// What the draws depend on beyond the recording, the seed and the phases
    /// ([`RecordedModel::draw_shape`]).
    pub(super) fn shape(&self) -> (i64, Vec<i64>) {
        let mut odd = self.odd_windows.clone();
        odd.sort_unstable();
        (self.eval_ms, odd)
    }

    /// Whether a span must end at scrape `j` (`j >= 1`): a window of some evaluation can
    /// start or end on it.
    fn cut(&self, m: &RecordedModel<'_>, offset_ms: i64, j: i64) -> bool {
        let (step, eval) = (m.rec.step_ms, self.eval_ms);
        let t = |j: i64| m.scrape_time(j, offset_ms);
        // The last scrape at or before an evaluation: `t(j) <= k · eval < t(j + 1)`.
        let last = |j: i64| {
            let k = ceil_div(t(j), eval).max(0);
            k * eval < t(j) + step
        };
        if last(j) || last(j - 1) {
            return true;
        }
        let (before, at) = (t(j - 1), t(j));
        self.odd_windows.iter().any(|&w| match m.semantics {
            // The first scrape after `k · eval - w`.
            Semantics::Prometheus3 => {
                let k = ceil_div(before + w, eval);
                k >= 0 && k * eval - w < at
            }
            // The first scrape at or after it.
            Semantics::Prometheus2 => {
                let k = (at + w).div_euclid(eval);
                k >= 0 && k * eval - w > before
            }
        })
    }
}

/// Per template, whether some scenario's `load` fault moves it as a gauge: the series the
/// built-in memory metric reads (`memory_usage`), those of the custom metrics it moves
/// (`metrics`), and a modelled gauge whose `mean` it moves. (Other faults' moves depend
/// only on the time: a read shifts the recorded value, [`shift_gauge`].)
fn load_moved_gauges(
    m: &RecordedModel<'_>,
    plan: &crate::check::CheckedPlan,
    scenarios: &crate::sim::scenario::Scenarios,
) -> Vec<bool> {
    let mut moved = vec![false; m.templates.len()];
    let mut mark = |mi: usize| {
        for q in m.queries.get(mi).into_iter().flatten().flatten() {
            for t in q.reads() {
                moved[t] = true;
            }
        }
    };
    let load = |f: &&crate::sim::scenario::Fault| matches!(f.kind, FaultKind::Load { .. });
    let faults = || {
        scenarios
            .scenarios
            .iter()
            .filter_map(|s| s.fault.as_ref())
            .filter(load)
    };
    for f in faults() {
        let memory = plan.metrics.iter().position(|x| x.name == "memory_usage");
        if let Some(mi) = memory.filter(|_| f.memory_usage.is_some()) {
            mark(mi);
        }
        f.metrics.iter().for_each(|&(mi, _)| mark(mi));
    }
    for f in faults() {
        for e in f.series.iter().filter(|e| e.mean.is_some()) {
            let name = &scenarios.baseline.series[e.series].name;
            for (t, tpl) in m.templates.iter().enumerate() {
                moved[t] |= tpl.name == *name;
            }
        }
    }
    moved
}

/// `ceil(a / b)` for `b > 0`.
fn ceil_div(a: i64, b: i64) -> i64 {
    -((-a).div_euclid(b))
}

/// One sparse trial.
#[derive(Clone)]
struct Trial {
    /// The blocks of the service's traffic and the stable version's gauges (map 0) and
    /// of the canary's first instance (map 1), drawn in turn as the full trial draws them.
    blocks: Xoshiro256PlusPlus,
    /// The blocks of canary instance `k` (map `1 + k`), from `k = 1`.
    instance_blocks: Vec<Xoshiro256PlusPlus>,
    /// Block starts drawn so far, per map.
    starts: Vec<Vec<usize>>,
    /// Per thinning stream ([`Sparse::streams`]).
    thin: Vec<Xoshiro256PlusPlus>,
    fault: Xoshiro256PlusPlus,
    split: Xoshiro256PlusPlus,
    /// Per slot: its counter's value now (an own counter's in `real`).
    totals: Vec<u64>,
    real: Vec<f64>,
    /// Per slot: the scrape of its first sample ([`UNBORN`]: none yet).
    born: Vec<i64>,
    /// Per slot, `ring` entries: (scrape, value) at the ends of the pieces drawn.
    ring: Vec<(i64, f64)>,
    /// The last scrape drawn.
    drawn: i64,
    offset_ms: i64,
    /// The canary's first scrape after a crash (none from then on).
    down: i64,
    exposure: Exposure,
    /// The first evaluation a custom query failed at, as Prometheus would fail it.
    failure: Option<QueryFailure>,
}

/// A stretch of scrapes a fault acts on at once, and what it holds: per unit (counter,
/// bucket interval), the recorded events and the canary's.
#[derive(Default)]
struct Piece {
    /// Scrapes `(from, to]`.
    from: i64,
    to: i64,
    recorded: Vec<u64>,
    canary: Vec<u64>,
    /// The fault's intensity, the blast radius' share and the crash at its scrapes (None:
    /// no fault).
    key: Option<(u64, u64, bool)>,
}

/// Scratch space for one span.
#[derive(Default)]
struct Scratch {
    /// Per scrape of the span: its share, and per unit (counter, bucket interval) its
    /// recorded events.
    share: Vec<f64>,
    events: Vec<u64>,
    /// Per scrape of the span and unit: the canary's thinned events (a run of scrapes at
    /// one share has its count on its first scrape and `u64::MAX`, none, on the others,
    /// until [`split`] shares it out).
    canary: Vec<u64>,
    /// Per scrape of the span and nest, on a run's first scrape: the canary's child events
    /// inside its parent's.
    inside: Vec<u64>,
    /// Whether some nest's child has more events than its parent at a scrape of the span.
    beyond: bool,
    /// Per channel: the canary's counts of a piece a `series` effect moves (NaN: none),
    /// and before it moved them.
    channels: Vec<f64>,
    before: Vec<f64>,
    /// Per scrape: the fault's intensity, the blast radius' share of it, whether the
    /// canary is down.
    keys: Vec<(u64, u64, bool)>,
    piece: Piece,
    /// A histogram's canary requests per bucket interval before a latency move.
    drawn: Vec<u64>,
    moved: Vec<u64>,
    /// The windows of the evaluation being read ([`Window::edges`]).
    edges: Vec<Edges>,
}

/// The batch's sparse trials, one lane each.
pub(crate) struct SparseLanes<'m, 'r> {
    model: &'m RecordedModel<'r>,
    sparse: &'m Sparse,
    faults: &'m FaultModel<'m>,
    trials: Vec<Trial>,
    queries: Vec<Option<[crate::prom::Query; 2]>>,
    values: Values,
    scratch: Scratch,
}

impl<'m, 'r> SparseLanes<'m, 'r> {
    /// The trials seeded by `seeds`, their scrapes `offset_ms` before each evaluation.
    pub(crate) fn new(
        model: &'m RecordedModel<'r>,
        sparse: &'m Sparse,
        faults: &'m FaultModel<'m>,
        seeds: &[u64],
        offset_ms: i64,
    ) -> Self {
        let offset_ms = offset_ms.rem_euclid(model.rec.step_ms);
        let mut lanes = Self::empty_of(model, sparse, faults, seeds.len());
        let n = sparse.slots.len();
        let maps = 1 + model.instances.iter().copied().max().unwrap_or(1).max(1);
        lanes.trials = seeds
            .iter()
            .map(|&seed| {
                let [b, t, f] = super::trial::SALTS.map(|s| seed ^ s);
                let mut trial = Trial {
                    blocks: Xoshiro256PlusPlus::seed_from_u64(b),
                    instance_blocks: (2..maps)
                        .map(|map| {
                            let salt = super::trial::INSTANCE_SALT.wrapping_mul(map as u64);
                            Xoshiro256PlusPlus::seed_from_u64(b ^ salt)
                        })
                        .collect(),
                    starts: vec![Vec::new(); maps],
                    thin: sparse
                        .streams
                        .iter()
                        .map(|&c| Xoshiro256PlusPlus::seed_from_u64(t ^ model.channels[c].salt))
                        .collect(),
                    fault: Xoshiro256PlusPlus::seed_from_u64(f),
                    split: Xoshiro256PlusPlus::seed_from_u64(seed ^ SPLIT_SALT),
                    totals: vec![0; n],
                    real: vec![0.0; n],
                    born: vec![UNBORN; n],
                    ring: vec![(-1, 0.0); n * sparse.ring],
                    drawn: 0,
                    offset_ms,
                    down: i64::MAX,
                    exposure: Exposure::default(),
                    failure: None,
                };
                // Scrape 0: every counter at 0, but those born at their first event.
                trial.point(model, 0, 0);
                // A canary instance's own counters from the first scrape that finds it
                // running ([`span`]).
                let joining: Vec<usize> = sparse.own.iter().map(|o| o.canary).collect();
                for (s, &(_, late)) in sparse.slots.iter().enumerate() {
                    if !late && !joining.contains(&s) {
                        trial.born[s] = 0;
                        trial.ring[s * sparse.ring] = (0, 0.0);
                    }
                }
                trial
            })
            .collect();
        lanes
    }

    fn empty_of(
        model: &'m RecordedModel<'r>,
        sparse: &'m Sparse,
        faults: &'m FaultModel<'m>,
        width: usize,
    ) -> Self {
        SparseLanes {
            model,
            sparse,
            faults,
            trials: Vec::with_capacity(width),
            queries: model.queries.clone(),
            values: Values::new(model.queries.len(), width),
            scratch: Scratch::default(),
        }
    }

    /// An empty batch with room for `width` lanes, which [`adopt`](Self::adopt) fills.
    pub(crate) fn empty(&self, width: usize) -> Self {
        Self::empty_of(self.model, self.sparse, self.faults, width)
    }

    pub(crate) fn values(&self) -> Columns<'_> {
        self.values.columns()
    }

    pub(crate) fn exposure(&self, l: usize) -> &Exposure {
        &self.trials[l].exposure
    }

    pub(crate) fn query_failure(&self, l: usize) -> Option<&QueryFailure> {
        self.trials[l].failure.as_ref()
    }

    pub(crate) fn swap_remove(&mut self, l: usize) {
        let from = self.trials.len() - 1;
        self.trials.swap_remove(l);
        self.values.swap_remove(l, from);
    }

    pub(crate) fn adopt(&mut self, from: &SparseLanes<'_, '_>, l: usize) {
        let to = self.trials.len();
        self.trials.push(from.trials[l].clone());
        self.values.adopt(to, &from.values, l);
    }

    /// Draws every trial's spans up to `ts` and computes there the metric values an
    /// evaluation running `set` reads.
    pub(crate) fn advance(&mut self, ts: i64, schedule: &Schedule, set: RuleSet) {
        let (m, sp, faults) = (self.model, self.sparse, self.faults);
        let reads = &m.reads[usize::from(set == RuleSet::RollbacksAndGates)];
        let step = m.rec.step_ms;
        for (l, trial) in self.trials.iter_mut().enumerate() {
            let last = (ts + trial.offset_ms).div_euclid(step);
            while trial.drawn < last {
                let mut to = trial.drawn + 1;
                while to < last && !sp.cut(m, trial.offset_ms, to) {
                    to += 1;
                }
                span(
                    (m, sp, faults, schedule),
                    trial,
                    (trial.drawn, to),
                    &mut self.scratch,
                );
                trial.drawn = to;
            }
            let mut reader = Window {
                m,
                sp,
                faults,
                trial,
                schedule,
                edges: std::mem::take(&mut self.scratch.edges),
            };
            let mut failure = None;
            for (mi, q) in self.queries.iter_mut().enumerate() {
                let Some(pair) = q else { continue };
                for (ti, (q, track)) in pair
                    .iter_mut()
                    .zip([Track::Canary, Track::Stable])
                    .enumerate()
                {
                    if !reads[ti][mi] {
                        continue;
                    }
                    // A custom query fails where Prometheus would (as on a full trial).
                    let v = q
                        .value_over(&mut reader, ts, m.semantics)
                        .unwrap_or_else(|e| {
                            failure.get_or_insert(QueryFailure {
                                metric: mi,
                                track,
                                at: ts,
                                message: e.message,
                            });
                            None
                        });
                    self.values.set((mi, ti), l, v);
                }
            }
            self.scratch.edges = reader.edges;
            self.scratch.edges.clear();
            if trial.failure.is_none() {
                trial.failure = failure;
            }
        }
    }
}

impl Trial {
    /// The grid point scrape `j` replays in block map `map` (0: the service's), drawing
    /// the blocks as the full trial does: maps 0 and 1 draw from one stream, map 1's
    /// block right after map 0's, because each of the full trial's scrapes reads both.
    fn point(&mut self, m: &RecordedModel<'_>, map: usize, j: i64) -> Replayed {
        let len = m.blocks.len;
        let (b, q) = if j == 0 {
            (0, None)
        } else {
            (((j - 1) as usize) / len, Some((j - 1) as usize % len))
        };
        let shared = map <= 1;
        while self.starts[map].len() <= b {
            if shared {
                for m01 in 0..2 {
                    let next = self.starts[m01].len();
                    let s = m.blocks.draw(next, &mut self.blocks);
                    self.starts[m01].push(s);
                }
            } else {
                let next = self.starts[map].len();
                let s = m.blocks.draw(next, &mut self.instance_blocks[map - 2]);
                self.starts[map].push(s);
            }
        }
        let start = self.starts[map][b];
        Replayed {
            point: q.map_or(start - 1, |q| start + q),
            first: q.map_or(start - 1, |_| start),
        }
    }

    /// Records every slot's value at scrape `j` (the canary's only while it is up).
    fn keep(&mut self, sp: &Sparse, j: i64) {
        let cap = sp.ring;
        let at = (j as usize) & (cap - 1);
        for (s, &(canary, _)) in sp.slots.iter().enumerate() {
            if (canary && j >= self.down) || self.born[s] == UNBORN {
                continue;
            }
            self.ring[s * cap + at] = (j, self.value(sp, s));
        }
    }

    /// Slot `s`'s value now.
    fn value(&self, sp: &Sparse, s: usize) -> f64 {
        if sp.real[s] {
            self.real[s]
        } else {
            self.totals[s] as f64
        }
    }
}

/// The units a span is drawn in: the counters, then each histogram's bucket intervals.
fn units(sp: &Sparse) -> usize {
    sp.counters.len() + sp.histograms.iter().map(|b| b.slots.len()).sum::<usize>()
}

/// Draws scrapes `(a, b]` of `trial`.
fn span(
    (m, sp, faults, schedule): (&RecordedModel<'_>, &Sparse, &FaultModel<'_>, &Schedule),
    trial: &mut Trial,
    (a, b): (i64, i64),
    s: &mut Scratch,
) {
    let len = (b - a) as usize;
    let nu = units(sp);
    let offset_ms = trial.offset_ms;
    let t = |j: i64| m.scrape_time(j, offset_ms);
    if a == 0 {
        // Scrape 0 finds the first phase's canary instances, their counters at 0.
        let running = m.instances[schedule.scraped_phase(t(0))];
        for o in &sp.own {
            if m.channels[o.channel].instance.is_none_or(|k| k < running) {
                trial.born[o.canary] = 0;
                trial.ring[o.canary * sp.ring] = (0, 0.0);
            }
        }
    }
    // Per scrape: its share (one for the span unless a phase starts inside it) and its
    // recorded events per unit.
    let (ta, tb) = (t(a), t(b));
    let one_phase = schedule.phase_at(ta) == schedule.phase_at(tb - 1);
    s.share.clear();
    s.events.clear();
    s.events.resize(len * nu, 0);
    for r in 0..len {
        let j = a + 1 + r as i64;
        let p = trial.point(m, 0, j);
        s.share.push(if one_phase {
            m.canary_share[schedule.phase_at(ta)]
        } else {
            super::trial::mean_share(m, schedule, (t(j - 1), t(j)))
        });
        let row = &mut s.events[r * nu..(r + 1) * nu];
        for (u, &c) in sp.counters.iter().enumerate() {
            row[u] = events(m.rows.get(m.channels[c].rec, p));
        }
        // A histogram's requests per bucket interval, repaired as the full trial repairs
        // a bucket whose increase is below a lower one's.
        let mut u = sp.counters.len();
        for h in &sp.histograms {
            let mut below = 0.0f64;
            for &c in &m.histograms[h.hist].channels {
                let inc = m.rows.get(m.channels[c].rec, p);
                row[u] = events((inc - below).max(0.0));
                below = below.max(inc);
                u += 1;
            }
        }
    }
    // Thinned per run of scrapes at one share; the counts kept on the run's first scrape
    // (`u64::MAX` on the others) until a split needs them per scrape.
    s.canary.clear();
    s.canary.resize(len * nu, u64::MAX);
    s.inside.clear();
    s.inside.resize(len * sp.nests.len(), 0);
    s.beyond = false;
    let mut i = 0;
    while i < len {
        let mut e = i + 1;
        while e < len && s.share[e].to_bits() == s.share[i].to_bits() {
            e += 1;
        }
        let phase = schedule.phase_at(t(a + 1 + i as i64) - 1);
        let rate = match sp.shares.get(phase) {
            Some(r) if r.p.to_bits() == s.share[i].to_bits() => *r,
            _ => FailRate::new(s.share[i]),
        };
        for u in (0..nu).filter(|&u| !sp.nests.iter().any(|n| n.child == u)) {
            let n: u64 = (i..e).map(|r| s.events[r * nu + u]).sum();
            s.canary[i * nu + u] = draw::binomial(&mut trial.thin[u], n, &rate);
        }
        for (k, n) in sp.nests.iter().enumerate() {
            let (mut total, mut within, mut beyond) = (0, 0, 0);
            for r in i..e {
                let (c, p) = (s.events[r * nu + n.child], s.events[r * nu + n.parent]);
                total += p;
                within += c.min(p);
                beyond += c - c.min(p);
            }
            s.beyond |= beyond > 0;
            let rng = &mut trial.thin[n.child];
            let inside = hypergeometric(rng, total, s.canary[i * nu + n.parent], within);
            let outside = if beyond > 0 {
                binomial(rng, beyond, s.share[i])
            } else {
                0
            };
            s.canary[i * nu + n.child] = inside + outside;
            s.inside[i * sp.nests.len() + k] = inside;
        }
        i = e;
    }
    // Where the fault, the blast radius or the crash change inside the span, or a failure
    // series may be born in it, it is drawn scrape by scrape.
    let fault = faults.fault();
    s.keys.clear();
    if let Some(f) = fault {
        let from = f.onset_ms;
        for j in a + 1..=b {
            let (t0, t1) = (t(j - 1), t(j));
            let intensity = mean_intensity(faults, (t0, t1), 0.0);
            let share = if from < t1 {
                (t1 - from.max(t0)) as f64 / (t1 - t0) as f64
            } else {
                -1.0
            };
            let down = f.kind == FaultKind::Crash && t1 >= f.onset_ms;
            s.keys.push((intensity.to_bits(), share.to_bits(), down));
        }
    }
    let load = fault.is_some_and(|f| matches!(f.kind, FaultKind::Load { .. }));
    let moves_failures = fault.is_some_and(|f| f.error_rate.is_some())
        && s.keys.iter().any(|k| f64::from_bits(k.0) > 0.0 && !k.2);
    let thinned = |u: usize| -> u64 {
        (0..len)
            .map(|r| s.canary[r * nu + u])
            .filter(|&k| k != u64::MAX)
            .sum()
    };
    // A `series` effect may add events to a counter not yet born, and moves a child with
    // its parent scrape by scrape where some scrape has more of the child's events than
    // of the parent's ([`super::nested::carry`]).
    let moves_series = fault.is_some_and(|f| !f.series.is_empty())
        && s.keys.iter().any(|k| f64::from_bits(k.0) > 0.0 && !k.2);
    let births = sp.counter_slots.iter().enumerate().any(|(u, sl)| {
        let unborn = trial.born[sl[0]] == UNBORN;
        unborn && (thinned(u) > 0 || moves_failures && is_target(sp, sl[0]) || moves_series)
    }) || (moves_failures && sp.extras.iter().any(|&x| trial.born[x] == UNBORN));
    let mixed = s.keys.windows(2).any(|k| k[0] != k[1]);
    if len > 1 && (load || mixed || births || moves_series && s.beyond) {
        split(sp, trial, len, s);
        for r in 0..len {
            let j = a + 1 + r as i64;
            fill_piece(sp, s, (r, r + 1), (j - 1, j));
            piece((m, sp, faults, schedule), trial, s);
        }
    } else {
        fill_piece(sp, s, (0, len), (a, b));
        piece((m, sp, faults, schedule), trial, s);
    }
}

/// A recorded increase as a count (whole, by the model's choice of counters).
fn events(v: f64) -> u64 {
    debug_assert!(!v.is_nan(), "a complete series");
    if v.is_nan() { 0 } else { v as u64 }
}

/// Whether slot `s` receives a fault's failures.
fn is_target(sp: &Sparse, s: usize) -> bool {
    sp.fail_to.contains(&Some(s))
}

/// Splits each run's thinned events among its scrapes (a multivariate hypergeometric draw,
/// in proportion to each scrape's recorded events), so that `s.canary` holds each scrape's.
fn split(sp: &Sparse, trial: &mut Trial, len: usize, s: &mut Scratch) {
    let nu = units(sp);
    let mut i = 0;
    while i < len {
        let mut e = i + 1;
        while e < len && s.canary[e * nu] == u64::MAX {
            e += 1;
        }
        let nested = |u: usize| sp.nests.iter().any(|n| n.child == u || n.parent == u);
        for u in (0..nu).filter(|&u| !nested(u)) {
            let mut left = s.canary[i * nu + u];
            let mut total: u64 = (i..e).map(|r| s.events[r * nu + u]).sum();
            for r in i..e {
                let n = s.events[r * nu + u];
                let k = hypergeometric(&mut trial.split, total, left, n);
                s.canary[r * nu + u] = k;
                left -= k;
                total -= n;
            }
        }
        // A nest's parent events are those holding a child event (`min(n, P)` a scrape)
        // and the others; the child's events are those inside the parent's and those
        // beyond. Each of the three shares its canary events out on its own, and a scrape's
        // parent count is its first two parts, its child count the first and the last.
        for (k, n) in sp.nests.iter().enumerate() {
            let inside = s.inside[i * sp.nests.len() + k];
            let (child, parent) = (s.canary[i * nu + n.child], s.canary[i * nu + n.parent]);
            let parts = |r: usize| {
                let (c, p) = (s.events[r * nu + n.child], s.events[r * nu + n.parent]);
                [c.min(p), p - c.min(p), c - c.min(p)]
            };
            let mut left = [inside, parent - inside, child - inside];
            let mut total = [0; 3];
            for r in i..e {
                total.iter_mut().zip(parts(r)).for_each(|(t, x)| *t += x);
            }
            for r in i..e {
                let mut got = [0; 3];
                for (x, n) in parts(r).into_iter().enumerate() {
                    got[x] = hypergeometric(&mut trial.split, total[x], left[x], n);
                    left[x] -= got[x];
                    total[x] -= n;
                }
                s.canary[r * nu + n.parent] = got[0] + got[1];
                s.canary[r * nu + n.child] = got[0] + got[2];
            }
        }
        i = e;
    }
}

/// Sets `s.piece` to scrapes `rows` of the span (its scrapes `(from, to]`), their events
/// summed.
fn fill_piece(sp: &Sparse, s: &mut Scratch, (r0, r1): (usize, usize), (from, to): (i64, i64)) {
    let nu = units(sp);
    let p = &mut s.piece;
    p.from = from;
    p.to = to;
    p.recorded.clear();
    p.recorded.resize(nu, 0);
    p.canary.clear();
    p.canary.resize(nu, 0);
    for r in r0..r1 {
        for u in 0..nu {
            p.recorded[u] += s.events[r * nu + u];
            let k = s.canary[r * nu + u];
            if k != u64::MAX {
                p.canary[u] += k;
            }
        }
    }
    p.key = s.keys.get(r0).copied();
}

/// Applies the fault to `s.piece` (scrapes a fault acts on alike) and adds it to the
/// trial's counters, in the full trial's order: latency moves, failures, blast radius.
fn piece(
    (m, sp, faults, schedule): (&RecordedModel<'_>, &Sparse, &FaultModel<'_>, &Schedule),
    trial: &mut Trial,
    s: &mut Scratch,
) {
    let p = &mut s.piece;
    let nc = sp.counters.len();
    let step_s = (p.to - p.from) as f64 * m.rec.step_ms as f64 / 1000.0;
    let (t0, t1) = (
        m.scrape_time(p.from, trial.offset_ms),
        m.scrape_time(p.to, trial.offset_ms),
    );
    let fault = faults.fault();
    let requests = |canary: &[u64], failed: bool| -> u64 {
        sp.requests
            .iter()
            .zip(canary)
            .filter(|(r, _)| r.is_some_and(|f| !failed || f))
            .map(|(_, &k)| k)
            .sum()
    };
    let (intensity, share, crashed) = match (fault, p.key) {
        (Some(f), Some((i, sh, down))) => {
            let i = if matches!(f.kind, FaultKind::Load { .. }) {
                mean_intensity(faults, (t0, t1), requests(&p.canary, false) as f64 / step_s)
            } else {
                f64::from_bits(i)
            };
            (i, f64::from_bits(sh), down)
        }
        _ => (0.0, -1.0, false),
    };
    let affected = fault.map_or(0.0, |f| f.affected());
    // The stable version's: what thinning left it, before the fault moves the canary's.
    for (u, sl) in sp.counter_slots.iter().enumerate() {
        trial.totals[sl[1]] += p.recorded[u] - p.canary[u];
    }
    let mut u = nc;
    for h in &sp.histograms {
        let mut stable = 0;
        for sl in &h.slots {
            stable += p.recorded[u] - p.canary[u];
            trial.totals[sl[1]] += stable;
            u += 1;
        }
    }
    // A `series` effect moves the canary's counters per channel as the full trial moves a
    // scrape's, and the events nested in them with them: a piece's counts are its scrapes'
    // sums, and each move (a thinning, a binomial or Poisson gain) adds up over them.
    if fault.is_some_and(|f| !f.series.is_empty()) && intensity > 0.0 {
        s.channels.clear();
        s.channels.resize(m.channels.len(), f64::NAN);
        for (u, &c) in sp.counters.iter().enumerate() {
            s.channels[c] = p.canary[u] as f64;
        }
        let span = (intensity, requests(&p.canary, false) as f64);
        let vectors = (&mut s.before, &mut s.channels[..]);
        shift_carrying((m, faults), (t0, t1), span, vectors, &mut trial.fault);
        for (u, &c) in sp.counters.iter().enumerate() {
            p.canary[u] = s.channels[c] as u64;
        }
    }
    // Latency: the canary's requests moved across its buckets.
    if let Some(f) =
        fault.filter(|f| intensity > 0.0 && (f.latency_factor.is_some() || f.tail_share.is_some()))
    {
        let factor = 1.0 + intensity * (f.latency_factor.unwrap_or(1.0) - 1.0);
        let tail = intensity * f.tail_share.unwrap_or(0.0);
        let mut u = nc;
        for h in &sp.histograms {
            let k = h.slots.len();
            let counts = &mut p.canary[u..u + k];
            s.drawn.clear();
            s.drawn.extend_from_slice(counts);
            let bounds: &Bounds = &m.histograms[h.hist].les;
            for (i, &n) in s.drawn.iter().enumerate() {
                let a = binomial(&mut trial.fault, n, affected);
                let slow = binomial(&mut trial.fault, a, tail);
                move_by(
                    &mut trial.fault,
                    counts,
                    bounds,
                    (i, slow),
                    factor * m.tail_factor,
                );
                move_by(&mut trial.fault, counts, bounds, (i, a - slow), factor);
            }
            u += k;
        }
    }
    // Failures, moved from the answered requests to their failure series.
    s.moved.clear();
    s.moved.resize(sp.slots.len(), 0);
    if let Some(e) = fault
        .and_then(|f| f.error_rate)
        .filter(|_| intensity > 0.0 && !crashed)
    {
        let pf = m.failure_share;
        if pf < e && pf < 1.0 {
            let q = affected * intensity * (e - pf) / (1.0 - pf);
            for u in 0..nc {
                let Some(to) = sp.fail_to[u] else { continue };
                let k = binomial(&mut trial.fault, p.canary[u], q);
                p.canary[u] -= k;
                match sp.counter_slots.iter().position(|sl| sl[0] == to) {
                    Some(u2) => p.canary[u2] += k,
                    None => s.moved[to] += k,
                }
            }
        }
    }
    // The blast radius: the canary's requests from the fault's first showing.
    if let Some(f) = fault {
        let from = match f.kind {
            FaultKind::Load { .. } if intensity > 0.0 => {
                *trial.exposure.first_active.get_or_insert(t0)
            }
            FaultKind::Load { .. } => trial.exposure.first_active.unwrap_or(i64::MAX),
            _ => *trial.exposure.first_active.get_or_insert(f.onset_ms),
        };
        if from < t1 {
            let moved: u64 = s.moved.iter().sum();
            let total = requests(&p.canary, false) + moved;
            let failed = if crashed {
                total
            } else {
                requests(&p.canary, true) + moved
            };
            // Scrapes whose share of the blast radius differs are pieces of their own.
            let frac = if matches!(f.kind, FaultKind::Load { .. }) {
                (t1 - from.max(t0)) as f64 / (t1 - t0) as f64
            } else {
                share
            };
            let fa = binomial(&mut trial.fault, failed, frac);
            let ok = binomial(&mut trial.fault, total - failed, frac);
            trial.exposure.requests += fa + ok;
            trial.exposure.failed += fa;
        }
    }
    if crashed {
        trial.down = trial.down.min(p.from + 1);
    }
    let cpu = fault.and_then(|f| f.cpu_usage);
    own_counters(
        (m, sp, schedule),
        trial,
        (p.from, p.to),
        (cpu, intensity * affected),
    );
    // The canary's counters (kept up to its crash).
    for (u, sl) in sp.counter_slots.iter().enumerate() {
        trial.totals[sl[0]] += p.canary[u];
    }
    for (x, &k) in s.moved.iter().enumerate().filter(|(_, k)| **k > 0) {
        trial.totals[x] += k;
    }
    let mut u = nc;
    for h in &sp.histograms {
        let mut canary = 0;
        for sl in &h.slots {
            canary += p.canary[u];
            trial.totals[sl[0]] += canary;
            u += 1;
        }
    }
    // A series born at its first event has its first sample at the first scrape whose
    // value is above 0 (a piece of one scrape, wherever one may be born).
    for (slot, &(canary, late)) in sp.slots.iter().enumerate() {
        if late
            && canary
            && trial.born[slot] == UNBORN
            && trial.totals[slot] > 0
            && p.to < trial.down
        {
            debug_assert_eq!(p.to - p.from, 1, "a birth in a piece of one scrape");
            trial.born[slot] = p.to;
        }
    }
    trial.keep(sp, p.to);
}

/// Adds scrapes `(from, to]` to each instance's own counters (CPU), scrape by scrape in
/// the full trial's order (the same sums): the stable version's recorded increases, and
/// each canary instance's on its own blocks while it runs (a joining one's first sample
/// 0, a new process's), moved to a fault's `cpu_usage` `level` at `s` (the piece's
/// intensity times the affected share), until a crash.
fn own_counters(
    (m, sp, schedule): (&RecordedModel<'_>, &Sparse, &Schedule),
    trial: &mut Trial,
    (from, to): (i64, i64),
    (level, s): (Option<f64>, f64),
) {
    if sp.own.is_empty() {
        return;
    }
    let off = trial.offset_ms;
    let level = level.filter(|_| s > 0.0);
    for j in from + 1..=to {
        let (t0, t) = (m.scrape_time(j - 1, off), m.scrape_time(j, off));
        let running = m.instances[schedule.scraped_phase(t)];
        let service = trial.point(m, 0, j);
        for o in &sp.own {
            let ch = &m.channels[o.channel];
            if let Some(st) = o.stable {
                let v = m.rows.get(ch.rec, service);
                debug_assert!(!v.is_nan(), "a complete series");
                trial.real[st] += v;
            }
            if j >= trial.down || ch.instance.is_some_and(|k| k >= running) {
                continue;
            }
            let k = ch.instance.unwrap_or(0);
            let mut v = m.rows.get(ch.rec, trial.point(m, 1 + k, j));
            debug_assert!(!v.is_nan(), "a complete series");
            if let (Some(level), Some(mean)) = (level, o.mean) {
                v = busy_moved(v, s, (level, mean), (t - t0) as f64 / 1000.0);
            }
            let c = o.canary;
            if trial.born[c] != UNBORN {
                trial.real[c] += v;
                continue;
            }
            // Its first sample: a joining instance is a new process, from 0.
            trial.born[c] = j;
            if k == 0 {
                trial.real[c] += v;
            }
            trial.ring[c * sp.ring + (j as usize & (sp.ring - 1))] = (j, trial.real[c]);
        }
    }
}

/// A sparse trial's windows, read by the plan's queries.
struct Window<'a, 'r> {
    m: &'a RecordedModel<'r>,
    sp: &'a Sparse,
    faults: &'a FaultModel<'a>,
    trial: &'a mut Trial,
    schedule: &'a Schedule,
    /// The windows read at this evaluation so far.
    edges: Vec<Edges>,
}

/// A window's extrapolation, for every series whose first and last samples in it are at
/// the same scrapes: Prometheus' factor without the zero clamp, and when the clamp acts.
#[derive(Debug, Clone, Copy)]
struct Edges {
    /// The window's length, `rate()` or `increase()`, its first and last scrape.
    key: (i64, bool, i64, i64),
    factor: f64,
    /// Seconds between the first and last sample, and from the window's start to the
    /// first (as the threshold test leaves it under 3.x, which tests before clamping).
    sampled_s: f64,
    gap_s: f64,
}

impl Edges {
    fn new(key: (i64, bool, i64, i64), (t0, t1): (i64, i64), ts: i64, sem: Semantics) -> Edges {
        let (w, is_rate, first, last) = key;
        let intervals = (last - first) as usize;
        let sampled_s = (t1 - t0) as f64 / 1000.0;
        let raw = (t0 - (ts - w)) as f64 / 1000.0;
        let gap_s = match sem {
            Semantics::Prometheus2 => raw,
            Semantics::Prometheus3 if raw >= sampled_s / intervals as f64 * 1.1 => {
                sampled_s / intervals as f64 / 2.0
            }
            Semantics::Prometheus3 => raw,
        };
        // Without the clamp (not a counter), the factor times a change of 1.
        let factor = crate::prom::rate::extrapolate(
            Sample::new(t0, 0.0),
            Sample::new(t1, 1.0),
            intervals,
            1.0,
            ts - w,
            ts,
            false,
            is_rate,
            sem,
        )
        .unwrap_or(f64::NAN);
        Edges {
            key,
            factor,
            sampled_s,
            gap_s,
        }
    }
}

impl Reader for Window<'_, '_> {
    fn extrapolated(
        &mut self,
        c: &mut Cur,
        (ts, w): (i64, i64),
        is_rate: bool,
        sem: Semantics,
    ) -> Option<f64> {
        let (m, sp, trial) = (self.m, self.sp, &*self.trial);
        let s = sp.slot_of[c.series]?;
        let born = trial.born[s];
        if born == UNBORN {
            return None;
        }
        let (step, off) = (m.rec.step_ms, trial.offset_ms);
        let mut last = (ts + off).div_euclid(step);
        if sp.slots[s].0 {
            last = last.min(trial.down - 1);
        }
        let first = match sem {
            Semantics::Prometheus3 => (ts - w + off).div_euclid(step) + 1,
            Semantics::Prometheus2 => ceil_div(ts - w + off, step),
        }
        .max(born)
        .max(0);
        if last <= first {
            return None;
        }
        let at = |j: i64| {
            let (kept, v) = trial.ring[s * sp.ring + (j as usize & (sp.ring - 1))];
            debug_assert_eq!(kept, j, "a value kept at a window's edge");
            Sample::new(m.scrape_time(j, off), v)
        };
        let (a, b) = (at(first), at(last));
        let delta = b.v - a.v;
        let exact = || {
            crate::prom::rate::extrapolate(
                a,
                b,
                (last - first) as usize,
                delta,
                ts - w,
                ts,
                true,
                is_rate,
                sem,
            )
        };
        // Every series of a window with the same first and last scrape has the same
        // extrapolation factor, but for the zero clamp: worked out once per window.
        let edges = match self
            .edges
            .iter()
            .find(|e| e.key == (w, is_rate, first, last))
        {
            Some(e) => *e,
            None => {
                let e = Edges::new((w, is_rate, first, last), (a.t, b.t), ts, sem);
                self.edges.push(e);
                e
            }
        };
        if delta <= 0.0 || edges.sampled_s * a.v >= edges.gap_s * delta * (1.0 + 1e-9) {
            let fast = delta * edges.factor;
            debug_assert_eq!(Some(fast.to_bits()), exact().map(f64::to_bits));
            return Some(fast);
        }
        exact()
    }

    /// A sparse trial keeps no raw window: its queries read none
    /// ([`crate::prom::engine::Bound::reads_edges_only`]).
    fn samples(&mut self, _: &mut Cur, _: (i64, i64), _: Semantics) -> Option<&[Sample]> {
        None
    }

    /// A gauge as recorded: the newest sample within the lookback, walking back over the
    /// scrapes its series has none at (a gap, an instance not running yet). A crashed
    /// canary's `up` is 0; its other series end with a staleness marker.
    fn instant(&mut self, c: &mut Cur, ts: i64, sem: Semantics) -> Option<f64> {
        let (m, sp) = (self.m, self.sp);
        let Some(ch) = sp.gauge_of[c.series] else {
            // A counter read at an instant: its value at the last scrape.
            let s = sp.slot_of[c.series]?;
            let trial = &*self.trial;
            let last = (ts + trial.offset_ms).div_euclid(m.rec.step_ms);
            // A crashed canary's series end with a staleness marker.
            if sp.slots[s].0 && trial.down <= last {
                return None;
            }
            let t = m.scrape_time(last, trial.offset_ms);
            let within = match sem {
                Semantics::Prometheus3 => t > ts - DEFAULT_LOOKBACK_MS,
                Semantics::Prometheus2 => t >= ts - DEFAULT_LOOKBACK_MS,
            };
            // Not born yet: no sample.
            if trial.born[s] > last || !within {
                return None;
            }
            let (kept, v) = trial.ring[s * sp.ring + (last as usize & (sp.ring - 1))];
            debug_assert_eq!(kept, last, "a value kept at an evaluation's scrape");
            return Some(v);
        };
        let channel = &m.channels[ch];
        let canary = c.series == channel.canary;
        let up = m.rec.series[channel.rec].name == UP;
        let off = self.trial.offset_ms;
        let last = (ts + off).div_euclid(m.rec.step_ms);
        if canary && self.trial.down <= last && !up {
            return None;
        }
        let mut j = last;
        while j >= 0 {
            let t = m.scrape_time(j, off);
            let within = match sem {
                Semantics::Prometheus3 => t > ts - DEFAULT_LOOKBACK_MS,
                Semantics::Prometheus2 => t >= ts - DEFAULT_LOOKBACK_MS,
            };
            if !within {
                return None;
            }
            let runs = !canary
                || channel
                    .instance
                    .is_none_or(|k| k < m.instances[self.schedule.scraped_phase(t)]);
            if runs {
                if canary && j >= self.trial.down {
                    return Some(0.0);
                }
                let map = if canary {
                    1 + channel.instance.unwrap_or(0)
                } else {
                    0
                };
                let v = m.rows.get(channel.rec, self.trial.point(m, map, j));
                if v.is_nan() {
                    j -= 1;
                    continue;
                }
                // Moved by the fault at this scrape's time (a memory limit read at the
                // same scrape of the same instance).
                let faults = self.faults;
                return Some(match faults.fault().filter(|_| canary) {
                    Some(f) => {
                        let intensity = faults.intensity(faults.level_at(t, 0.0));
                        let trial = &mut *self.trial;
                        shift_gauge(&m.levels, f, intensity, (ch, v), |d| {
                            let other = &m.channels[d];
                            m.rows.get(
                                other.rec,
                                trial.point(m, 1 + other.instance.unwrap_or(0), j),
                            )
                        })
                    }
                    None => v,
                });
            }
            j -= 1;
        }
        None
    }
}
