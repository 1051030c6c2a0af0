//! Custom metrics computed by their own query from simulated raw series (a scenario file's
//! `baseline.series`), with the project's PromQL engine: the query text is the one
//! `plan render` writes (`MetricExpr::promql` for the track), so the Monte Carlo reads the
//! series as Prometheus would, empty windows (`0/0` is NaN, and no NaN comparison holds)
//! and steps of one event included.
//!
//! The model. Every series carries `service` (the plan's) and `track`, and a `split`
//! label where it has one. Scrapes are on the plan's scrape grid from the release's start
//! (scrape 0, every counter at 0), except that each value of a counter's `split` is by
//! default created by its first event (`exposition.split_from`), as client libraries
//! create a label set: its first sample is at the first scrape after that event, holding
//! the events counted by then, and before it the series has no sample (nor a staleness
//! marker). A scrape interval `(t0, t1]` is drawn piece by piece,
//! cut wherever the rate, the share or (on the canary, when the fault moves a series) the
//! fault's level changes ([`super::instants`]); in a piece with `mid` its middle, the
//! track's mean request count is `μ = rps(mid) · share · (b - a)`: the daily cycle's rate
//! (its ten-minute staircase) and the track's share of the phase running then (the
//! overdispersion multiplier is not applied: the series follow the mean traffic; nor is
//! error clustering: a series' shares are as stated). Then,
//! per piece, models in order (parents first):
//! - a `per_request` counter `r` gains Poisson(`μ · r`) events;
//! - an `of` counter with share `p` gains Binomial(`n`, `p`) events, `n` its parent's gain
//!   in the same interval;
//! - a counter with a `split` shares its gain among its values: a multinomial (sequential
//!   binomials, in the values' order);
//! - a gauge is `mean + noise · x` at each scrape it is recorded at (not clamped), `x` its
//!   drifting noise ([`super::drift`]);
//! - a histogram (`per_request` observations) puts each observation in one bucket
//!   interval (a multinomial over the intervals, as sequential binomials in bound order,
//!   the rest above the last bound); its `NAME_bucket{le}` counters count those at or below
//!   each bound, `le="+Inf"` and `NAME_count` all of them.
//!
//! A fault moves a parameter of a series on the canary from its healthy level `h` to
//! `h + affected · intensity · (level - h)` (`affected` is a partial fault's share of users;
//! the intensity is the fault's in the piece, for a `load` fault at the canary's mean
//! rate; a gauge's at its scrape is the last piece's).
//! A crashed canary records nothing from its first failed scrape on, where each of its
//! series gets a staleness marker.
//!
//! Speed without approximation: a query at `ts` reads no sample older than its reach `H`
//! (the longest `offset` plus range, or plus the 5-minute lookback of an instant selector,
//! over its selectors), so a trial simulates its series only when an evaluation reads one
//! of their metrics, and then records only the scrapes at or after `ts - H`. The intervals
//! before them are drawn together, grouped by the fault's intensity level (each group's
//! parameters are constant): Poisson counts add up, and the thinning and splitting of a
//! sum within one group is the sum of the intervals' thinnings and splittings, so the
//! counters' values at the first recorded scrape have exactly their law. The samples a
//! later evaluation cannot read are dropped.
//!
//! Random numbers: each trial's series draw from their own stream
//! (`Xoshiro256PlusPlus::seed_from_u64(seed ^ SERIES_SALT)`, `seed` the trial's), so that
//! the lanes' streams keep their order. At each evaluation that reads a query metric on
//! some track, the canary then the stable track (each if read) is advanced to `ts`: the
//! folded groups in increasing level, then each recorded scrape in time order; in each,
//! the models in order: a counter's or histogram's Poisson or binomial draw (none for a
//! mean or a count of 0), then its split's or its buckets' binomials (none once no event is
//! left); a gauge's standard normal at a recorded scrape. The same code serves the lanes and the reference trials.

use super::drift::Noise;
use super::instants::{Faults, Traffic};
use crate::check::CheckedPlan;
use crate::diagnostic::Diagnostic;
use crate::prom::engine::{self, Bound};
use crate::prom::quantile::format_le;
use crate::prom::{Sample, Semantics, Series};
use crate::promql::Track;
use crate::sim::evaluator::Schedule;
use crate::sim::scenario::unmodelled::query_series;
use crate::sim::scenario::{Scenarios, SeriesKind, SeriesModel};
use rand::SeedableRng;
use rand::rngs::Xoshiro256PlusPlus;
use rand_distr::{Binomial, Distribution, Poisson, StandardNormal};

/// Xored into a trial's seed to seed its series' stream.
pub(crate) const SERIES_SALT: u64 = 0x5e71_e5c0_ffee_d00d;

/// The most series models a scenario file may have (a query's models are a bit set).
pub(crate) const MAX_SERIES_MODELS: usize = 64;

/// What every trial of a run shares: the models, each track's series (names and labels),
/// and the queries bound to them.
pub(crate) struct SeriesSim {
    models: Vec<SeriesModel>,
    /// Per model, the first of its series in a track's list (one, or one per split value).
    first: Vec<usize>,
    /// Per track (canary, stable), its series without samples, in model order.
    templates: [Vec<Series>; 2],
    /// Per series (in a track's order), whether it first has a sample at the first scrape
    /// after its first event: a split value's, under `exposition.split_from: first_event`.
    born_late: Vec<bool>,
    /// Per query slot: the plan metric, and its query bound to each track's series.
    queries: Vec<(usize, [Bound; 2])>,
    /// The longest a query reaches back from its evaluation time.
    horizon_ms: i64,
    scrape_ms: i64,
    /// Scrape `j` is at `j · scrape_ms - scrape_offset_ms` ([`super::Model::scrape_time`]).
    scrape_offset_ms: i64,
}

/// Per track (canary, stable), the series `models` give, without samples, in model order.
fn templates(plan: &CheckedPlan, models: &[SeriesModel], semantics: Semantics) -> [Vec<Series>; 2] {
    [Track::Canary, Track::Stable].map(|track| {
        let mut list = Vec::new();
        for m in models {
            let base = vec![
                ("service".to_string(), plan.service.name.clone()),
                ("track".to_string(), track.as_str().to_string()),
            ];
            match (&m.histogram, &m.split) {
                (Some(h), _) => {
                    let bucket = format!("{}_bucket", m.name);
                    for &b in h.bounds.iter().chain([&f64::INFINITY]) {
                        let le = format_le(b, semantics);
                        list.push(series(&bucket, &base, Some(("le", &le))));
                    }
                    list.push(series(&format!("{}_count", m.name), &base, None));
                }
                (None, Some(s)) => {
                    for v in &s.values {
                        list.push(series(&m.name, &base, Some((&s.label, v))));
                    }
                }
                (None, None) => list.push(series(&m.name, &base, None)),
            }
        }
        list
    })
}

/// Where a query metric's selector matches none of the series the scenarios model (a
/// label value, a split label or an `le` the models do not give): its metric would be
/// computed from nothing in every trial, and its rules could never fire. One error per
/// such selector, placed on it in the plan's query. `queries`: the plan metrics computed
/// from series.
pub(crate) fn unmatched_selectors(
    plan: &CheckedPlan,
    models: &[SeriesModel],
    queries: &[usize],
    semantics: Semantics,
) -> Vec<Diagnostic> {
    if queries.is_empty() {
        return Vec::new();
    }
    let templates = templates(plan, models, semantics);
    let le_note = match semantics {
        Semantics::Prometheus2 => " (`le` as Prometheus 2.x stores it: `1` in 2.x, `1.0` from 3.0)",
        Semantics::Prometheus3 => " (`le` as Prometheus 3.x stores it: `1` in 2.x, `1.0` from 3.0)",
    };
    let mut f = Vec::new();
    for &m in queries {
        let Some(template) = &plan.metrics[m].query else {
            continue;
        };
        let name = &plan.metrics[m].name;
        let before = f.len();
        for (ti, track) in [Track::Canary, Track::Stable].into_iter().enumerate() {
            let Ok(program) = engine::program(&plan.metrics[m].expr.promql(Some(track))) else {
                continue;
            };
            for (nth, sel) in engine::unmatched(&program, &templates[ti]) {
                let metric = sel.name.as_deref().unwrap_or("");
                let modelled: Vec<String> = templates[ti]
                    .iter()
                    .filter(|s| s.name == metric)
                    .map(|s| format!("`{}`", s.display()))
                    .collect();
                let range = crate::prom::parse::locate_selector(template, metric, nth)
                    .unwrap_or(0..template.len());
                let le = sel.matchers.matchers.iter().any(|m| m.name == "le");
                f.push(
                    Diagnostic::error(
                        "series-unmatched",
                        format!("/metrics/{}/query", crate::pointer::escape(name)),
                        format!(
                            "the selector `{}` in the query of `{name}` matches none of the series the scenarios model for the {} track, so `{name}` would be computed from nothing in every trial and its rules could never fire",
                            &template[range.clone()],
                            track.as_str()
                        ),
                    )
                    .at_offset(template, range)
                    .with_hint(if modelled.is_empty() {
                        format!("model `{metric}` under `baseline.series` in the scenario file")
                    } else {
                        format!(
                            "the modelled series of `{metric}` are {}{}; make the selector's labels match one of them, or change the model's `split`",
                            modelled.join(", "),
                            if le { le_note } else { "" }
                        )
                    }),
                );
            }
            // The stable track's selectors are the canary's with another track: one
            // finding for both, unless only the stable's fail.
            if f.len() > before {
                break;
            }
        }
    }
    f
}

/// A series of `name` with labels `base` and `extra`, without samples.
fn series(name: &str, base: &[(String, String)], extra: Option<(&str, &str)>) -> Series {
    let mut labels = base.to_vec();
    labels.extend(extra.map(|(l, v)| (l.to_string(), v.to_string())));
    labels.sort();
    Series {
        name: name.to_string(),
        labels,
        samples: Vec::new(),
        line: 0,
        column: 0,
    }
}

/// The models a query reads (its series' and their ancestors'), as a bit set.
fn reads_mask(names: &[String], models: &[SeriesModel]) -> u64 {
    let mut mask = 0u64;
    for n in names {
        let mut at = models.iter().position(|m| m.gives(n));
        while let Some(i) = at {
            mask |= 1 << i;
            at = match models[i].kind {
                SeriesKind::Of { parent, .. } => Some(parent),
                _ => None,
            };
        }
    }
    mask
}

/// Whether a custom metric whose query is `expr` (read by the rules, without a gauge
/// model) is computed from series: when `scenarios` models every series its query reads.
/// Then the models it reads, as a bit set (with their ancestors).
pub(crate) fn query_reads(expr: &crate::promql::MetricExpr, scenarios: &Scenarios) -> Option<u64> {
    let models = &scenarios.baseline.series;
    if models.len() > MAX_SERIES_MODELS
        || !crate::sim::scenario::unmodelled::series_modelled(expr, models)
    {
        return None;
    }
    let (_, names) = query_series(expr)?;
    Some(reads_mask(&names, models))
}

impl SeriesSim {
    /// The series and queries of `plan`'s query metrics `slots` (plan metric indices, in
    /// slot order); None when there are none.
    pub(crate) fn new(
        plan: &CheckedPlan,
        scenarios: &Scenarios,
        slots: Vec<usize>,
        (scrape_ms, scrape_offset_ms, semantics): (i64, i64, Semantics),
    ) -> Option<SeriesSim> {
        if slots.is_empty() {
            return None;
        }
        let models = scenarios.baseline.series.clone();
        let mut first = Vec::with_capacity(models.len());
        let templates = templates(plan, &models, semantics);
        let mut born_late = Vec::new();
        for m in &models {
            first.push(born_late.len());
            let late = scenarios.exposition.split_born_late
                && m.split.is_some()
                && m.histogram.is_none()
                && !matches!(m.kind, SeriesKind::Gauge(_));
            born_late.extend(std::iter::repeat_n(late, m.width()));
        }
        let mut horizon_ms = 0;
        let mut queries = Vec::new();
        for m in slots {
            let expr = &plan.metrics[m].expr;
            let bound = [Track::Canary, Track::Stable].map(|track| {
                // The metric is a query metric only when its query compiles.
                let program = engine::program(&expr.promql(Some(track)))
                    .unwrap_or(engine::Expr::Number(f64::NAN));
                for (_, reach) in program.selectors() {
                    horizon_ms = horizon_ms.max(reach);
                }
                Bound::new(&program, &templates[usize::from(track == Track::Stable)])
            });
            queries.push((m, bound));
        }
        Some(SeriesSim {
            models,
            first,
            templates,
            born_late,
            queries,
            horizon_ms,
            scrape_ms,
            scrape_offset_ms,
        })
    }

    /// Each query slot's bound queries (canary, stable), for one simulator's own use.
    pub(crate) fn bounds(&self) -> Vec<[Bound; 2]> {
        self.queries.iter().map(|(_, b)| b.clone()).collect()
    }

    /// The number of query slots.
    pub(crate) fn bounds_len(&self) -> usize {
        self.queries.len()
    }

    /// A trial's series before the release starts.
    pub(crate) fn lane(&self, seed: u64) -> SeriesLane {
        SeriesLane {
            failure: None,
            rng: Xoshiro256PlusPlus::seed_from_u64(seed ^ SERIES_SALT),
            gains: vec![0; self.models.len()],
            tracks: std::array::from_fn(|t| TrackState {
                done: -1,
                counts: vec![0; self.templates[t].len()],
                series: self.templates[t].clone(),
                noise: vec![Noise::FRESH; self.templates[t].len()],
            }),
        }
    }

    /// What advancing `track` from scrape `done` to evaluation time `ts` draws, the release
    /// having run on `schedule` (shared by every trial at the same point).
    pub(crate) fn plan(
        &self,
        (model, faults): (&dyn Traffic, &dyn Faults),
        schedule: &Schedule,
        (track, done): (Track, i64),
        ts: i64,
    ) -> Advance {
        let (s, offset) = (self.scrape_ms, self.scrape_offset_ms);
        let time = |j: i64| j * s - offset;
        let last = (ts + offset).div_euclid(s);
        // The first scrape some query at `ts` can read.
        let first_read = (ts - self.horizon_ms + offset + s - 1).div_euclid(s).max(0);
        // Only a fault that moves some series tells its levels apart: otherwise every
        // interval is drawn as the healthy twin draws it, number for number.
        let moves = faults.fault().is_some_and(|f| !f.series.is_empty());
        let mut folded: Vec<(usize, f64)> = Vec::new();
        let mut scrapes = Vec::new();
        let mut parts = Vec::new();
        for j in done + 1..=last {
            let first_part = parts.len();
            if j > 0 {
                // The interval's pieces ([`super::instants`]): one, unless the rate, the
                // share or the fault's level changes inside it.
                // Scrape 0 may come before the release's start: requests begin at 0.
                let (t0, t1) = (time(j - 1).max(0), time(j));
                let cut_by = (moves && track == Track::Canary).then_some(faults);
                super::instants::pieces((t0, t1), (model, cut_by, schedule), |a, b| {
                    let mid = (a + b) / 2;
                    let share = model.canary_share(schedule.phase_at(mid));
                    let rps = model.mean_rps(mid);
                    let seconds = (b - a) as f64 / 1000.0;
                    parts.push(match track {
                        Track::Canary if moves => {
                            (faults.level_at(mid, rps * share), rps * share * seconds)
                        }
                        Track::Canary => (0, rps * share * seconds),
                        Track::Stable => (0, rps * (1.0 - share) * seconds),
                    });
                });
            } else {
                parts.push((0, 0.0));
            }
            if j < first_read {
                for (level, mu) in parts.drain(first_part..) {
                    match folded.iter_mut().find(|(l, _)| *l == level) {
                        Some((_, m)) => *m += mu,
                        None => folded.push((level, mu)),
                    }
                }
            } else {
                scrapes.push(Scrape {
                    t: time(j),
                    parts: first_part..parts.len(),
                    stale: track == Track::Canary && faults.down_from() == Some(j),
                    down: track == Track::Canary && faults.down_from().is_some_and(|d| j > d),
                });
            }
        }
        folded.sort_by_key(|&(l, _)| l);
        Advance {
            track,
            done,
            to: last.max(done),
            keep_from: ts - self.horizon_ms,
            folded,
            scrapes,
            parts,
        }
    }

    /// Advances one trial's `lane` as `plan` says (`plan.done` must be its track's).
    pub(crate) fn advance(&self, faults: &dyn Faults, lane: &mut SeriesLane, plan: &Advance) {
        let ti = usize::from(plan.track == Track::Stable);
        let SeriesLane {
            rng, tracks, gains, ..
        } = lane;
        let state = &mut tracks[ti];
        debug_assert_eq!(state.done, plan.done);
        for &(level, mu) in &plan.folded {
            self.draw(faults, (plan.track, level), mu, rng, state, gains);
        }
        for sc in &plan.scrapes {
            let parts = &plan.parts[sc.parts.clone()];
            for &(level, mu) in parts {
                self.draw(faults, (plan.track, level), mu, rng, state, gains);
            }
            let level = parts.last().map_or(0, |&(level, _)| level);
            if sc.down {
                continue;
            }
            for (i, m) in self.models.iter().enumerate() {
                let from = self.first[i];
                for k in from..from + m.width() {
                    if self.born_late[k] && state.counts[k] == 0 {
                        // Not created yet: no sample, nor a staleness marker.
                        continue;
                    }
                    let v = match m.kind {
                        _ if sc.stale => crate::prom::STALE_NAN,
                        SeriesKind::Gauge(g) => {
                            let mean =
                                self.param(faults, (plan.track, level), i, g.mean, |e| e.mean);
                            let z: f64 = StandardNormal.sample(rng);
                            mean + g.noise * state.noise[k].at(sc.t, g.time_constant_ms, z)
                        }
                        _ => state.counts[k] as f64,
                    };
                    state.series[k].samples.push(Sample::new(sc.t, v));
                }
            }
        }
        for s in &mut state.series {
            let old = s.samples.partition_point(|x| x.t < plan.keep_from);
            s.samples.drain(..old);
        }
        state.done = plan.to;
    }

    /// Draws the models' gains over intervals of the track's mean request count `mu` at
    /// the fault's level `level`, into the counters.
    fn draw(
        &self,
        faults: &dyn Faults,
        at: (Track, usize),
        mu: f64,
        rng: &mut Xoshiro256PlusPlus,
        state: &mut TrackState,
        gains: &mut [u64],
    ) {
        for (i, m) in self.models.iter().enumerate() {
            gains[i] = match m.kind {
                SeriesKind::PerRequest(r) => {
                    let r = self.param(faults, at, i, r, |e| e.per_request);
                    poisson(rng, mu * r)
                }
                SeriesKind::Of { parent, share } => {
                    let p = self.param(faults, at, i, share, |e| e.share);
                    binomial(rng, gains[parent], p)
                }
                SeriesKind::Gauge(_) => 0,
            };
            let from = self.first[i];
            match (&m.histogram, &m.split) {
                (Some(h), _) => {
                    // Each observation falls in one bucket interval: sequential binomials
                    // over the intervals in bound order, the rest above the last bound.
                    let n = h.cumulative.len();
                    let (mut left, mut below, mut at_or_below) = (gains[i], 0.0, 0u64);
                    for k in 0..n {
                        let cdf = self
                            .nth_param(faults, (at, i, k), h.cumulative[k], |e| e.buckets.as_ref());
                        let p = if below < 1.0 {
                            ((cdf - below) / (1.0 - below)).clamp(0.0, 1.0)
                        } else {
                            0.0
                        };
                        let c = binomial(rng, left, p);
                        left -= c;
                        at_or_below += c;
                        below = below.max(cdf);
                        state.counts[from + k] += at_or_below;
                    }
                    state.counts[from + n] += gains[i];
                    state.counts[from + n + 1] += gains[i];
                }
                (None, None) => state.counts[from] += gains[i],
                (None, Some(s)) => {
                    let mut left = gains[i];
                    let mut mass = 1.0;
                    let n = s.values.len();
                    for k in 0..n {
                        let share =
                            self.nth_param(faults, (at, i, k), s.shares[k], |e| e.split.as_ref());
                        let c = if k + 1 == n {
                            left
                        } else {
                            let c =
                                binomial(rng, left, if mass > 0.0 { share / mass } else { 0.0 });
                            mass -= share;
                            c
                        };
                        state.counts[from + k] += c;
                        left -= c;
                    }
                }
            }
        }
    }

    /// A parameter of model `i` at the fault's `level` on `track`: `healthy` moved toward
    /// the fault's level for it (`pick`), if it gives one.
    fn param(
        &self,
        faults: &dyn Faults,
        (track, level): (Track, usize),
        i: usize,
        healthy: f64,
        pick: impl Fn(&crate::sim::scenario::SeriesEffect) -> Option<f64>,
    ) -> f64 {
        let Some(f) = faults
            .fault()
            .filter(|_| track == Track::Canary && level > 0)
        else {
            return healthy;
        };
        match f.series.iter().find(|e| e.series == i).and_then(&pick) {
            Some(target) => healthy + f.affected() * faults.intensity(level) * (target - healthy),
            None => healthy,
        }
    }

    /// Entry `k` of a list parameter of model `i` (a split's shares, a histogram's
    /// cumulative shares: `pick`) at the fault's level.
    fn nth_param(
        &self,
        faults: &dyn Faults,
        (at, i, k): ((Track, usize), usize, usize),
        healthy: f64,
        pick: fn(&crate::sim::scenario::SeriesEffect) -> Option<&Vec<f64>>,
    ) -> f64 {
        self.param(faults, at, i, healthy, |e| {
            pick(e).and_then(|v| v.get(k).copied())
        })
    }

    /// The value of query `slot` (the query of metric `metric`) on `track` at `ts` over
    /// `lane`'s series (advanced to `ts`), with `bounds` (from [`bounds`](Self::bounds)).
    /// A query that fails as Prometheus would fail it (several series, many-to-many
    /// matching, ...) has no value, and the lane keeps its first failure: the run reports
    /// it and gives no figures ([`SeriesLane::failure`]).
    pub(crate) fn value(
        bounds: &mut [[Bound; 2]],
        (slot, metric, track): (usize, usize, Track),
        lane: &mut SeriesLane,
        ts: i64,
        sem: Semantics,
    ) -> Option<f64> {
        let ti = usize::from(track == Track::Stable);
        let bound = &mut bounds[slot][ti];
        bound.rewind();
        match bound.value_at(&lane.tracks[ti].series, ts, sem) {
            Ok(v) => v,
            Err(e) => {
                lane.failure.get_or_insert_with(|| {
                    Box::new(QueryFailure {
                        metric,
                        track,
                        at: ts,
                        message: e.message,
                    })
                });
                None
            }
        }
    }
}

/// One trial's series: its stream, and per track its counters and the samples a query
/// can still read.
#[derive(Debug, Clone)]
pub(crate) struct SeriesLane {
    rng: Xoshiro256PlusPlus,
    tracks: [TrackState; 2],
    /// Scratch: each model's gain in the interval being drawn.
    gains: Vec<u64>,
    /// The trial's first query evaluation that failed.
    failure: Option<Box<QueryFailure>>,
}

/// A query evaluation that failed in a trial, as Prometheus would fail it: the simulated
/// series do not give the one value per track the plan compares.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub(crate) struct QueryFailure {
    /// The metric (index into the plan's metrics).
    pub(crate) metric: usize,
    pub(crate) track: Track,
    /// The evaluation time, from the release's start (ms).
    pub(crate) at: i64,
    /// Prometheus' message, or why the result is not one series.
    pub(crate) message: String,
}

impl SeriesLane {
    /// The trial's first query evaluation that failed, if one did.
    pub(crate) fn failure(&self) -> Option<&QueryFailure> {
        self.failure.as_deref()
    }

    /// The scrape `track` has been drawn up to (-1: none yet).
    pub(crate) fn done(&self, track: Track) -> i64 {
        self.tracks[usize::from(track == Track::Stable)].done
    }
}

#[derive(Debug, Clone)]
struct TrackState {
    /// The scrape the counters are at (-1: before scrape 0).
    done: i64,
    /// Per series (in the template's order), its counter's value.
    counts: Vec<u64>,
    series: Vec<Series>,
    /// Per series, a gauge's drifting noise ([`super::drift`]).
    noise: Vec<Noise>,
}

/// What advancing a track from scrape `done` to scrape `to` draws: the intervals no query
/// can read, grouped by fault level (summed means), then the recorded scrapes.
#[derive(Debug, Clone)]
pub(crate) struct Advance {
    track: Track,
    done: i64,
    to: i64,
    /// Samples older than this are dropped.
    keep_from: i64,
    folded: Vec<(usize, f64)>,
    scrapes: Vec<Scrape>,
    /// The recorded scrapes' intervals, piece by piece: (fault level, mean request count).
    parts: Vec<(usize, f64)>,
}

/// The scrape an advance starts from.
pub(crate) fn plan_done(a: &Advance) -> i64 {
    a.done
}

#[derive(Debug, Clone)]
struct Scrape {
    t: i64,
    /// Its interval's pieces in [`Advance::parts`]; the last one's level holds at the scrape.
    parts: std::ops::Range<usize>,
    /// The canary's first failed scrape: a staleness marker.
    stale: bool,
    /// A later failed scrape: nothing recorded.
    down: bool,
}

/// A Poisson count of mean `mean` (0 without a draw when the mean is not positive).
fn poisson(rng: &mut Xoshiro256PlusPlus, mean: f64) -> u64 {
    if mean <= 0.0 || !mean.is_finite() {
        return 0;
    }
    // The schema's bounds keep means far below the sampler's limit (1.8e19).
    Poisson::new(mean.min(Poisson::<f64>::MAX_LAMBDA)).map_or(0, |p| p.sample(rng) as u64)
}

/// A binomial count of `n` trials of probability `p` (no draw when `n` is 0).
fn binomial(rng: &mut Xoshiro256PlusPlus, n: u64, p: f64) -> u64 {
    if n == 0 || p <= 0.0 {
        return 0;
    }
    if p >= 1.0 {
        return n;
    }
    Binomial::new(n, p).map_or(0, |b| b.sample(rng))
}

#[cfg(test)]
mod tests {
    use crate::prom::Semantics;
    use crate::sim::montecarlo::{self, Settings};
    use crate::sim::scenario;
    use crate::source::{Kind, Source};

    /// One hour at 5% (the canary serves 1 request per second), then an hour at 100%.
    /// `completion` is the share of started flows that complete, over one-minute windows;
    /// the rollback rule fires at the first evaluation where it is below 50%.
    const PLAN: &str = concat!(
        "name: t\nrelease: { from: v1, to: v2 }\n",
        "service: { name: app, image: acme/app, port: 8080 }\n",
        "routing: { listen: 80, sticky: { cookie: uid } }\n",
        "traffic: { requests_per_second: 20 }\n",
        "monitoring: { scrape_interval: 15s, evaluation_interval: 1m, window: 1m }\n",
        "phases:\n",
        "  - { name: a, traffic: 5%, duration: 1h }\n",
        "  - { name: full, traffic: 100%, duration: 1h }\n",
        "metrics:\n",
        "  completion:\n",
        "    query: >-\n",
        "      sum(rate(flow_done_total{service=\"$service\",track=\"$track\"}[$window]))\n",
        "      / sum(rate(flow_started_total{service=\"$service\",track=\"$track\"}[$window]))\n",
        "    unit: ratio\n",
        "    bad: low\n",
        "rollback_conditions:\n",
        "  - { metric: completion, threshold: 0.5, duration: 0s }\n",
    );

    /// Flows start at one a minute on the canary (1/60 per request); 97% complete.
    const PER_REQUEST: f64 = 0.016_666_7;
    const SHARE: f64 = 0.97;

    fn scenarios(trials: u64) -> String {
        format!(
            "trials: {trials}\ntraffic: {{ daily_amplitude: 0 }}\nexposition: {{ scrape_offset: 0s }}\nbaseline:\n  series:\n    \
             flow_started_total: {{ counter: {{ per_request: {PER_REQUEST} }} }}\n    \
             flow_done_total: {{ counter: {{ of: flow_started_total, share: {SHARE} }} }}\n\
             scenarios:\n  - name: healthy\n"
        )
    }

    /// The test plan `plan` compiled, and the scenario file `scenarios` loaded against it.
    fn load(plan: &str, scenarios: String) -> (crate::lower::LoweredPlan, scenario::Scenarios) {
        let source = Source::new("t.yaml".into(), plan.into());
        let lowered = crate::pipeline::compile(source)
            .plan
            .expect("the test plan is valid");
        let file = Source::new("s.yaml".into(), scenarios).holding(Kind::Scenarios);
        let (s, findings) = scenario::load(&file, &lowered.plan, &|p| p.to_string());
        (lowered, s.unwrap_or_else(|| panic!("{findings:?}")))
    }

    /// P(X = k) for X ~ Poisson(`mean`), computed in logs.
    fn poisson_pmf(k: u64, mean: f64) -> f64 {
        let ln_fact: f64 = (1..=k).map(|i| (i as f64).ln()).sum();
        (k as f64 * mean.ln() - mean - ln_fact).exp()
    }

    /// P(X < n/2) for X ~ Binomial(n, p).
    fn binomial_below_half(n: u64, p: f64) -> f64 {
        let mut sum = 0.0;
        let mut choose = 1.0;
        for k in 0..=n {
            if k > 0 {
                choose *= (n - k + 1) as f64 / k as f64;
            }
            if 2 * k < n {
                sum += choose * p.powi(k as i32) * (1.0 - p).powi((n - k) as i32);
            }
        }
        sum
    }

    /// The closed form, on the grid whose scrapes fall on the evaluations (`scrape_offset:
    /// 0s`): in Prometheus 2.42 a one-minute window on the 15-second grid holds
    /// the samples at both of its ends, so each `rate()` is its counter's increase over
    /// the minute divided by 60 (no extrapolation), and the ratio is exactly
    /// completed/started over that minute: started ~ Poisson(λ), λ = 1 rps · 1/60 · 60 s,
    /// completed ~ Binomial(started, 97%). An empty window is 0/0 = NaN, and NaN < 0.5 is
    /// false. The windows of successive evaluations cover disjoint minutes, so the rule
    /// fires by the end of the hour at 5% (the evaluations at 1m ... 60m read it; at 100%
    /// a window holds some 20 flows and fires with probability below 1e-12) with
    /// probability 1 - (1 - q)^60, q = Σ_{n ≥ 1} P(started = n) P(completed < n/2).
    #[test]
    fn a_low_rate_ratio_fires_as_the_closed_form_says() {
        let trials = 6000;
        let (lowered, s) = load(PLAN, scenarios(trials));
        let lambda = 20.0 * 0.05 * PER_REQUEST * 60.0;
        let q: f64 = (1..200)
            .map(|n| poisson_pmf(n, lambda) * binomial_below_half(n, SHARE))
            .sum();
        let expected = 1.0 - (1.0 - q).powi(60);
        // Without the NaN rule (an empty window firing) it would be nearly certain.
        assert!(
            expected < 0.8 && q + (-lambda).exp() > 0.3,
            "{q} {expected}"
        );
        let mut tallies = Vec::new();
        for jobs in [1, 2] {
            let settings = Settings {
                slice: crate::sim::montecarlo::Slice::WHOLE,
                seed: 7,
                jobs,
                trials,
                semantics: Semantics::Prometheus2,
            };
            let run = montecarlo::run(&lowered, &s, settings, &mut |_, _| {});
            let t = &run.results[0].tally;
            tallies.push((t.rollbacks, t.steps, t.query_steps.clone()));
        }
        assert_eq!(tallies[0], tallies[1], "the same numbers at any --jobs");
        let (rollbacks, _, query_steps) = &tallies[0];
        assert!(query_steps[0] > trials * 60, "{query_steps:?}");
        crate::sim::stats::Proportion::new(*rollbacks, trials)
            .assert_covers(expected, &format!("2.42: rolled back (q = {q:.5})"));
    }

    /// [`PLAN`] with the median of a histogram instead of the completion ratio: it rolls
    /// back at the first evaluation where the median is above 1s.
    fn histogram_plan() -> String {
        let query = "      histogram_quantile(0.5, sum by (le) (rate(job_seconds_bucket{service=\"$service\",track=\"$track\"}[$window])))\n";
        let head = &PLAN[..PLAN.find("metrics:\n").expect("metrics")];
        format!(
            "{head}metrics:\n  job_p50:\n    query: >-\n{query}    unit: seconds\n    bad: high\n\
             rollback_conditions:\n  - {{ metric: job_p50, threshold: 1, duration: 0s }}\n"
        )
    }

    /// Jobs run at one a minute on the canary; 95% take at most 1s, all at most 2s.
    const AT_MOST_1S: f64 = 0.95;

    /// The closed form for a histogram, as for the ratio: in 2.42 each one-minute window's
    /// buckets are their counters' increases over the minute (divided by 60), `n` jobs of
    /// which `c ~ Binomial(n, 95%)` took at most 1s. `histogram_quantile(0.5)` ranks at
    /// `n/2`: within the first bucket (at most 1s) when `c ≥ n/2`, else interpolated in
    /// `(1s, 2s]`, above the threshold; an empty window is NaN (no observations), which
    /// fires nothing. So each evaluation fires with `q = Σ_{n ≥ 1} P(n) P(c < n/2)`,
    /// independently over the hour's disjoint windows.
    #[test]
    fn a_low_rate_histogram_quantile_fires_as_the_closed_form_says() {
        let trials = 6000;
        let (lowered, s) = load(
            &histogram_plan(),
            format!(
                "trials: {trials}\ntraffic: {{ daily_amplitude: 0 }}\nexposition: {{ scrape_offset: 0s }}\nbaseline:\n  series:\n    \
                 job_seconds: {{ histogram: {{ per_request: {PER_REQUEST}, buckets: {{ 1: {AT_MOST_1S}, 2: 1 }} }} }}\n\
                 scenarios:\n  - name: healthy\n"
            ),
        );
        let lambda = 20.0 * 0.05 * PER_REQUEST * 60.0;
        let q: f64 = (1..200)
            .map(|n| poisson_pmf(n, lambda) * binomial_below_half(n, AT_MOST_1S))
            .sum();
        let expected = 1.0 - (1.0 - q).powi(60);
        assert!(0.2 < expected && expected < 0.9, "{q} {expected}");
        let mut tallies = Vec::new();
        for jobs in [1, 2] {
            let settings = Settings {
                slice: crate::sim::montecarlo::Slice::WHOLE,
                seed: 5,
                jobs,
                trials,
                semantics: Semantics::Prometheus2,
            };
            let run = montecarlo::run(&lowered, &s, settings, &mut |_, _| {});
            assert!(run.query_failure().is_none());
            let t = &run.results[0].tally;
            tallies.push((t.rollbacks, t.query_steps.clone()));
        }
        assert_eq!(tallies[0], tallies[1], "the same numbers at any --jobs");
        crate::sim::stats::Proportion::new(tallies[0].0, trials).assert_covers(
            expected,
            &format!("2.42 histogram: rolled back (q = {q:.5})"),
        );
    }

    /// [`PLAN`] reading whether the canary's `type="bug"` feedback series exists: the
    /// rollback rule fires at the first evaluation whose instant selector finds it.
    fn presence_plan() -> String {
        let query =
            "      count(feedback_total{service=\"$service\",track=\"$track\",type=\"bug\"})\n";
        let head = &PLAN[..PLAN.find("metrics:\n").expect("metrics")];
        format!(
            "{head}metrics:\n  bugs_seen:\n    query: >-\n{query}    unit: count\n    bad: high\n\
             rollback_conditions:\n  - {{ metric: bugs_seen, threshold: 0.5, duration: 0s }}\n"
        )
    }

    /// A split value's series created by its first event (`exposition.split_from`), on
    /// the grid whose scrapes fall on the evaluations: a bug report comes at 1/3600 a
    /// second on the canary at 5% (1 req/s, 1/360 of requests send feedback, 10% of it a
    /// bug), and the series exists from the first scrape after the first one. The
    /// evaluations of the hour at 5% run at 1m ... 59m (the one at 60m is the next
    /// phase's), each seeing the scrapes up to its own time, so the rule fires in that
    /// phase exactly when the first bug report comes within 59 minutes: `1 - exp(-59/60)`.
    /// Created at the release's start, the series is there at the first evaluation, and
    /// every trial rolls back then.
    #[test]
    fn a_split_value_created_by_its_first_event_is_found_as_the_closed_form_says() {
        let trials = 6000;
        let scenarios = |from: &str| {
            format!(
                "trials: {trials}\ntraffic: {{ daily_amplitude: 0 }}\n\
                 exposition: {{ scrape_offset: 0s, split_from: {from} }}\nbaseline:\n  series:\n    \
                 feedback_total: {{ counter: {{ per_request: 0.0027778 }}, split: {{ type: {{ bug: 10%, other: 90% }} }} }}\n\
                 scenarios:\n  - name: healthy\n"
            )
        };
        let run = |from: &str| {
            let (lowered, s) = load(&presence_plan(), scenarios(from));
            let settings = Settings {
                slice: crate::sim::montecarlo::Slice::WHOLE,
                seed: 3,
                jobs: 2,
                trials,
                semantics: Semantics::Prometheus3,
            };
            let run = montecarlo::run(&lowered, &s, settings, &mut |_, _| {});
            assert!(run.query_failure().is_none());
            run.results[0].tally.clone()
        };
        let lambda: f64 = 20.0 * 0.05 * 0.0027778 * 0.1;
        let expected = 1.0 - (-lambda * 59.0 * 60.0).exp();
        let born = run("first_event");
        crate::sim::stats::Proportion::new(born.rollbacks_by_phase[0], trials)
            .assert_covers(expected, "first event: rolled back at 5%");
        let from_start = run("release_start");
        assert_eq!(from_start.rollbacks_by_phase[0], trials);
    }

    /// Prometheus 3's `rate()` of a counter whose samples in the window `(ts - 60s, ts]`
    /// are `v` at `ts - 45s`, ..., `ts` (15 s apart), written out from its extrapolation
    /// rule: 15 s before the first sample are added (less than 1.1 intervals), unless the
    /// counter would reach zero sooner going back.
    fn rate3(v: &[f64; 4]) -> f64 {
        let (sampled, mut to_start) = (45.0, 15.0);
        let delta = v[3] - v[0];
        if delta > 0.0 {
            let to_zero = sampled * (v[0] / delta);
            if to_zero < to_start {
                to_start = to_zero;
            }
        }
        delta * (sampled + to_start) / sampled / 60.0
    }

    /// A uniform in [0, 1) from a SplitMix64 state (independent of the simulator's
    /// generators).
    fn uniform(state: &mut u64) -> f64 {
        *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = *state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
    }

    /// The brute-force reference in Prometheus 3 (where the zero clamp of the
    /// extrapolation can act on the first minutes' small counts, so no closed form is
    /// exact): `trials` plain trials of the hour at 5%, every scrape drawn (Poisson by
    /// inversion, each flow completing by a coin toss), each evaluation's two `rate()`s
    /// computed by [`rate3`]; the share of trials in which some evaluation from 1m to 60m
    /// finds completed/started below 50% (NaN, an empty window, is not below anything).
    fn brute_force_3(trials: u64) -> u64 {
        let mut state = 0x5eed_u64;
        let mean = 20.0 * 0.05 * PER_REQUEST * 15.0;
        let mut fired = 0;
        for _ in 0..trials {
            let (mut started, mut done) = (vec![0.0; 241], vec![0.0; 241]);
            for j in 1..=240 {
                let (mut n, mut p, u) = (0u64, (-mean).exp(), uniform(&mut state));
                let mut cdf = p;
                while u >= cdf {
                    n += 1;
                    p *= mean / n as f64;
                    cdf += p;
                }
                let completed = (0..n).filter(|_| uniform(&mut state) < SHARE).count();
                started[j] = started[j - 1] + n as f64;
                done[j] = done[j - 1] + completed as f64;
            }
            let window = |c: &[f64], e: usize| [c[e - 3], c[e - 2], c[e - 1], c[e]];
            if (1..=60).any(|m| {
                let e = 4 * m;
                rate3(&window(&done, e)) / rate3(&window(&started, e)) < 0.5
            }) {
                fired += 1;
            }
        }
        fired
    }

    /// The same plan in Prometheus 3 against [`brute_force_3`]: the two estimates agree
    /// within their combined 95% interval.
    #[test]
    fn a_low_rate_ratio_fires_as_a_brute_force_reference_says() {
        let trials = 6000;
        let (lowered, s) = load(PLAN, scenarios(trials));
        let settings = Settings {
            slice: crate::sim::montecarlo::Slice::WHOLE,
            seed: 11,
            jobs: 2,
            trials,
            semantics: Semantics::Prometheus3,
        };
        let run = montecarlo::run(&lowered, &s, settings, &mut |_, _| {});
        let got = crate::sim::stats::Proportion::new(run.results[0].tally.rollbacks, trials);
        let reference_trials = 40_000;
        let want =
            crate::sim::stats::Proportion::new(brute_force_3(reference_trials), reference_trials);
        let spread = 1.96 * got.std_error.hypot(want.std_error);
        eprintln!(
            "3.x: rolled back {:.4} ± {:.4}; brute force {:.4} ± {:.4}",
            got.probability,
            1.96 * got.std_error,
            want.probability,
            1.96 * want.std_error
        );
        assert!(
            (got.probability - want.probability).abs() <= spread,
            "Monte Carlo {:.4}, brute force {:.4}: more than {spread:.4} apart",
            got.probability,
            want.probability
        );
    }
}
