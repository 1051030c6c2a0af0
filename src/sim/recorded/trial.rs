//! The trials of a lock-step batch on a recorded baseline: each lane is one trial with its
//! own series, written scrape by scrape up to each evaluation and read by the plan's
//! queries, with the same interface as the synthetic lanes so that [`crate::sim::batch`]
//! runs both alike.

use super::channel::Channel;
use super::effects::{binomial, mean_intensity, move_by, shift_first, shift_own, shift_shares};
use super::nested::{carry, thin_nested};
use super::rows::Replayed;
use super::values::Values;
use super::{FailTo, RecordedModel, Role};
use crate::prom::{STALE_NAN, Sample, Series};
use crate::promql::Track;
use crate::sim::evaluator::{Columns, Schedule};
use crate::sim::outcomes::RuleSet;
use crate::sim::scenario::FaultKind;
use crate::sim::synth::draw::{self, FailRate};
use crate::sim::synth::{Exposure, FaultModel, Faults, QueryFailure};
use rand::SeedableRng;
use rand::rngs::Xoshiro256PlusPlus;

/// Xored into a trial's seed for its streams: blocks, thinning (each channel's mixed with
/// its own salt as well), the fault's draws.
pub(super) const SALTS: [u64; 3] = [
    0xb10c_b007_5742_0001,
    0x7411_0e55_0dd5_0002,
    0xfa17_ed9e_0000_0003,
];

/// Xored into a trial's block seed, times the map, for the blocks of canary instances
/// beyond the first ([`Trial::point`]).
pub(super) const INSTANCE_SALT: u64 = 0x1a57_a9ce_0000_0004;

/// The series Prometheus writes for each target's scrapes.
pub(super) const UP: &str = "up";

#[derive(Clone)]
struct Trial {
    /// The blocks of the service's traffic and the stable version's own series (map 0) and
    /// of the canary's first instance and its series of no instance (map 1).
    blocks: Xoshiro256PlusPlus,
    /// The blocks of canary instance `k` (map `1 + k`), from `k = 1`.
    instance_blocks: Vec<Xoshiro256PlusPlus>,
    /// Per channel, its thinning stream.
    thin: Vec<Xoshiro256PlusPlus>,
    fault: Xoshiro256PlusPlus,
    /// Block starts drawn so far, per map: the service's (traffic, the stable track's own
    /// series), then each canary instance's own series' (the first's also its series of no
    /// instance).
    starts: Vec<Vec<usize>>,
    series: Vec<Series>,
    /// Per template: its counter's value, and whether the series exists yet.
    totals: Vec<f64>,
    born: Vec<bool>,
    queries: Vec<Option<[crate::prom::Query; 2]>>,
    /// How long before each evaluation its scrapes come (the trial's offset class's).
    offset_ms: i64,
    /// The next scrape to write.
    next: i64,
    /// Scrapes written since the samples no query can read were last dropped.
    since_prune: i64,
    down: bool,
    exposure: Exposure,
    failure: Option<QueryFailure>,
}

/// Per scrape, what each channel adds to each track (NaN: no sample).
#[derive(Default)]
struct Scratch {
    canary: Vec<f64>,
    stable: Vec<f64>,
    /// Per template: what moved failures add to it.
    moved: Vec<f64>,
    intervals: Vec<u64>,
    out: Vec<u64>,
    /// The canary's interval counts before a latency fault moves them.
    drawn: Vec<u64>,
    /// Per channel, the canary's increase before a fault moved it.
    before: Vec<f64>,
    /// Per canary instance running, the grid point its own series read.
    own: Vec<Replayed>,
}

/// The batch's trials, one lane each.
pub(crate) struct RecordedLanes<'m, 'r> {
    model: &'m RecordedModel<'r>,
    faults: &'m FaultModel<'m>,
    trials: Vec<Trial>,
    values: Values,
    scratch: Scratch,
}

impl<'m, 'r> RecordedLanes<'m, 'r> {
    /// The trials seeded by `seeds`, their scrapes `offset_ms` before each evaluation (cut
    /// to under the recording's step).
    pub(crate) fn new(
        model: &'m RecordedModel<'r>,
        faults: &'m FaultModel<'m>,
        seeds: &[u64],
        offset_ms: i64,
    ) -> Self {
        let offset_ms = offset_ms.rem_euclid(model.rec.step_ms);
        let mut lanes = Self::empty_of(model, faults, seeds.len());
        // Block maps: the service's, then one per canary instance it ever runs.
        let maps = 1 + model.instances.iter().copied().max().unwrap_or(1).max(1);
        lanes.trials = seeds
            .iter()
            .map(|&seed| {
                let [b, t, f] = SALTS.map(|s| seed ^ s);
                Trial {
                    blocks: Xoshiro256PlusPlus::seed_from_u64(b),
                    instance_blocks: (2..maps)
                        .map(|map| {
                            let salt = INSTANCE_SALT.wrapping_mul(map as u64);
                            Xoshiro256PlusPlus::seed_from_u64(b ^ salt)
                        })
                        .collect(),
                    thin: model
                        .channels
                        .iter()
                        .map(|ch| Xoshiro256PlusPlus::seed_from_u64(t ^ ch.salt))
                        .collect(),
                    fault: Xoshiro256PlusPlus::seed_from_u64(f),
                    starts: vec![Vec::new(); maps],
                    series: model.templates.clone(),
                    totals: vec![0.0; model.templates.len()],
                    born: vec![false; model.templates.len()],
                    queries: model.queries.clone(),
                    offset_ms,
                    next: 0,
                    since_prune: 0,
                    down: false,
                    exposure: Exposure::default(),
                    failure: None,
                }
            })
            .collect();
        lanes
    }

    fn empty_of(model: &'m RecordedModel<'r>, faults: &'m FaultModel<'m>, width: usize) -> Self {
        RecordedLanes {
            model,
            faults,
            trials: Vec::with_capacity(width),
            values: Values::new(model.queries.len(), width),
            scratch: Scratch::default(),
        }
    }

    /// An empty batch with room for `width` lanes, which [`adopt`](Self::adopt) fills.
    pub(crate) fn empty(&self, width: usize) -> Self {
        Self::empty_of(self.model, self.faults, width)
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

    pub(crate) fn adopt(&mut self, from: &RecordedLanes<'_, '_>, l: usize) {
        let to = self.trials.len();
        self.trials.push(from.trials[l].clone());
        self.values.adopt(to, &from.values, l);
    }

    /// Writes every trial's scrapes up to `ts` and computes there the metric values an
    /// evaluation running `set` reads.
    pub(crate) fn advance(&mut self, ts: i64, schedule: &Schedule, set: RuleSet) {
        let (m, faults) = (self.model, self.faults);
        let reads = &m.reads[usize::from(set == RuleSet::RollbacksAndGates)];
        for (l, trial) in self.trials.iter_mut().enumerate() {
            while m.scrape_time(trial.next, trial.offset_ms) <= ts {
                scrape(m, faults, schedule, trial, &mut self.scratch);
            }
            trial.prune(m, ts);
            for (mi, q) in trial.queries.iter_mut().enumerate() {
                let Some(pair) = q else { continue };
                for (ti, track) in [Track::Canary, Track::Stable].into_iter().enumerate() {
                    if !reads[ti][mi] {
                        continue;
                    }
                    let v = match pair[ti].at(&trial.series, ts, m.semantics) {
                        Ok(v) => v,
                        Err(e) => {
                            trial.failure.get_or_insert(QueryFailure {
                                metric: mi,
                                track,
                                at: ts,
                                message: e.message,
                            });
                            None
                        }
                    };
                    self.values.set((mi, ti), l, v);
                }
            }
        }
    }
}

impl Trial {
    /// Drops the samples no query can read any more, now and then.
    fn prune(&mut self, m: &RecordedModel<'_>, ts: i64) {
        let keep = m.horizon_ms + 2 * m.rec.step_ms;
        if self.since_prune * m.rec.step_ms < 4 * keep {
            return;
        }
        self.since_prune = 0;
        for s in &mut self.series {
            let old = s.samples.partition_point(|x| x.t < ts - keep);
            s.samples.drain(..old);
        }
        // The queries' cursors pointed into the samples dropped.
        self.queries = m.queries.clone();
    }

    /// The recording's grid point scrape `j` reads in block map `map`.
    fn point(&mut self, m: &RecordedModel<'_>, map: usize, j: i64) -> Replayed {
        let len = m.blocks.len;
        // Scrape 0 reads the point before block 0's first: one block covers scrapes
        // 0..=len, then each next one `len` more.
        let (b, q) = if j == 0 {
            (0, None)
        } else {
            (((j - 1) as usize) / len, Some((j - 1) as usize % len))
        };
        while self.starts[map].len() <= b {
            let next = self.starts[map].len();
            let rng = match map {
                0 | 1 => &mut self.blocks,
                _ => &mut self.instance_blocks[map - 2],
            };
            let s = m.blocks.draw(next, rng);
            self.starts[map].push(s);
        }
        let start = self.starts[map][b];
        Replayed {
            point: q.map_or(start - 1, |q| start + q),
            first: q.map_or(start - 1, |_| start),
        }
    }
}

/// The canary's mean share of requests over `(t0, t1]`.
pub(super) fn mean_share(m: &RecordedModel<'_>, schedule: &Schedule, (t0, t1): (i64, i64)) -> f64 {
    let mut sum = 0.0;
    let mut a = t0;
    while a < t1 {
        let phase = schedule.phase_at(a);
        let b = schedule
            .starts
            .get(phase + 1)
            .copied()
            .filter(|&s| s > a && s < t1)
            .unwrap_or(t1);
        sum += m.canary_share[phase] * (b - a) as f64;
        a = b;
    }
    sum / (t1 - t0) as f64
}

/// Moves the canary's increases over the scrape span `(t0, t]` (`canary`, per channel) by
/// the fault, its mean intensity over the span and the canary's requests in it `span`:
/// events per request, then shares of the parent events the canary then has; each time,
/// the events nested in those moved go with them ([`carry`]). `before` is scratch space.
pub(super) fn shift_carrying(
    (m, faults): (&RecordedModel<'_>, &FaultModel<'_>),
    (t0, t): (i64, i64),
    span: (f64, f64),
    (before, canary): (&mut Vec<f64>, &mut [f64]),
    rng: &mut Xoshiro256PlusPlus,
) {
    let mut carrying =
        |rng: &mut Xoshiro256PlusPlus, shift: &dyn Fn(&mut Xoshiro256PlusPlus, &mut [f64])| {
            before.clear();
            before.extend_from_slice(canary);
            shift(rng, canary);
            carry((&m.nested, &m.per_parent), before, canary, rng);
        };
    carrying(rng, &|rng, canary| {
        shift_own((&m.levels, faults), (t0, t), span, rng, canary)
    });
    carrying(rng, &|rng, canary| {
        shift_shares((&m.levels, faults), span.0, rng, canary)
    });
}

/// Writes trial's next scrape.
fn scrape(
    m: &RecordedModel<'_>,
    faults: &FaultModel<'_>,
    schedule: &Schedule,
    trial: &mut Trial,
    scratch: &mut Scratch,
) {
    let j = trial.next;
    trial.next += 1;
    trial.since_prune += 1;
    let t = m.scrape_time(j, trial.offset_ms);
    let rec = m.rec;
    let n = m.channels.len();
    // The canary instances the scrape finds running (they only join; one joining with a
    // phase is first scraped after its start).
    let running = m.instances[schedule.scraped_phase(t)];
    let runs = |ch: &Channel| ch.instance.is_none_or(|k| k < running);
    let service = trial.point(m, 0, j);
    scratch.own.clear();
    for k in 0..running.max(1) {
        scratch.own.push(trial.point(m, 1 + k, j));
    }
    let own_of = |ch: &Channel| scratch.own[ch.instance.unwrap_or(0)];
    if j == 0 {
        // Counters start at 0 (but those born at their first event); gauges at their
        // value.
        for ch in m.channels.iter().filter(|ch| ch.live) {
            let r = &rec.series[ch.rec];
            let late = ch.born_late.then_some(ch.canary);
            let canary = runs(ch).then(|| (ch.canary, own_of(ch)));
            let stable = (!ch.copy).then_some((ch.stable, service));
            for (tpl, at) in canary.into_iter().chain(stable) {
                let v = if r.counter {
                    0.0
                } else {
                    m.rows.get(ch.rec, at)
                };
                if !v.is_nan() && late != Some(tpl) {
                    trial.series[tpl].samples.push(Sample { t, v });
                    trial.born[tpl] = true;
                }
            }
        }
        if !m.failures_late {
            for tpl in m.extras() {
                push(trial, tpl, t, 0.0, (true, false));
            }
        }
        shift_first((&m.levels, faults), &m.channels, t, &mut trial.series);
        return;
    }
    let t0 = m.scrape_time(j - 1, trial.offset_ms);
    let share = mean_share(m, schedule, (t0, t));
    let thin = FailRate::new(share);
    scratch.canary.clear();
    scratch.stable.clear();
    scratch.moved.clear();
    scratch.moved.resize(m.templates.len(), 0.0);
    for (c, ch) in m.channels.iter().enumerate() {
        let (cv, sv) = match ch.role {
            _ if !ch.live => (f64::NAN, f64::NAN),
            Role::Own => (
                if runs(ch) {
                    m.rows.get(ch.rec, own_of(ch))
                } else {
                    f64::NAN
                },
                if ch.copy {
                    f64::NAN
                } else {
                    m.rows.get(ch.rec, service)
                },
            ),
            Role::Traffic { .. } if m.in_histogram[c] => (0.0, 0.0),
            // Thinned below, once its parent is.
            Role::Traffic { .. } if ch.nested => (f64::NAN, f64::NAN),
            Role::Traffic { whole } => {
                let inc = m.rows.get(ch.rec, service);
                if inc.is_nan() {
                    (f64::NAN, f64::NAN)
                } else if whole {
                    let k = draw::binomial(&mut trial.thin[c], inc as u64, &thin) as f64;
                    (k, inc - k)
                } else {
                    (inc * share, inc * (1.0 - share))
                }
            }
        };
        scratch.canary.push(cv);
        scratch.stable.push(sv);
    }
    // Nested counters, parents first: each event goes where its parent event went.
    for nest in &m.nested {
        let inc = |c: usize| m.rows.get(m.channels[c].rec, service);
        let n = inc(nest.child);
        if n.is_nan() {
            continue;
        }
        let (total, canary) = nest
            .parent
            .iter()
            .fold((0.0, 0.0), |(t, k), &p| (t + inc(p), k + scratch.canary[p]));
        let rng = &mut trial.thin[nest.child];
        let k = if total.is_nan() || canary.is_nan() {
            // A parent without a sample this scrape: the child is thinned on its own.
            draw::binomial(rng, n as u64, &thin)
        } else {
            thin_nested(rng, n as u64, (total as u64, canary as u64), share)
        } as f64;
        scratch.canary[nest.child] = k;
        scratch.stable[nest.child] = n - k;
    }
    // Histograms: thinned per bucket interval, the canary's moved by a latency fault.
    let fault = faults.fault();
    let requests = |s: &Scratch, failed: bool| -> f64 {
        m.requests
            .iter()
            .filter(|&&(_, is_failure)| !failed || is_failure)
            .map(|&(c, _)| s.canary[c])
            .filter(|v| !v.is_nan())
            .sum::<f64>()
    };
    let step_s = rec.step_ms as f64 / 1000.0;
    let intensity = fault.map_or(0.0, |_| {
        mean_intensity(faults, (t0, t), requests(scratch, false) / step_s)
    });
    let affected = fault.map_or(0.0, |f| f.affected());
    if fault.is_some() {
        let span = (intensity, requests(scratch, false));
        let vectors = (&mut scratch.before, &mut scratch.canary[..]);
        shift_carrying((m, faults), (t0, t), span, vectors, &mut trial.fault);
    }
    for h in &m.histograms {
        let inc = |c: usize| m.rows.get(m.channels[c].rec, service);
        let live = h.channels.iter().any(|&c| m.channels[c].live);
        if !live || h.channels.iter().any(|&c| inc(c).is_nan()) {
            for &c in &h.channels {
                scratch.canary[c] = f64::NAN;
                scratch.stable[c] = f64::NAN;
            }
            continue;
        }
        // Per bucket interval: the canary's requests in `out`, the stable track's left in
        // `intervals`.
        scratch.intervals.clear();
        scratch.out.clear();
        let mut below = 0.0f64;
        for &c in &h.channels {
            let n = (inc(c) - below).max(0.0) as u64;
            below = below.max(inc(c));
            let k = draw::binomial(&mut trial.thin[c], n, &thin);
            scratch.out.push(k);
            scratch.intervals.push(n - k);
        }
        if let Some(f) = fault
            .filter(|f| intensity > 0.0 && (f.latency_factor.is_some() || f.tail_share.is_some()))
        {
            let factor = 1.0 + intensity * (f.latency_factor.unwrap_or(1.0) - 1.0);
            let tail = intensity * f.tail_share.unwrap_or(0.0);
            scratch.drawn.clear();
            scratch.drawn.extend_from_slice(&scratch.out);
            for (k, &n) in scratch.drawn.iter().enumerate() {
                let a = binomial(&mut trial.fault, n, affected);
                let slow = binomial(&mut trial.fault, a, tail);
                move_by(
                    &mut trial.fault,
                    &mut scratch.out,
                    &h.les,
                    (k, slow),
                    factor * m.tail_factor,
                );
                move_by(
                    &mut trial.fault,
                    &mut scratch.out,
                    &h.les,
                    (k, a - slow),
                    factor,
                );
            }
        }
        let (mut cc, mut cs) = (0u64, 0u64);
        for (i, &c) in h.channels.iter().enumerate() {
            cc += scratch.out[i];
            cs += scratch.intervals[i];
            scratch.canary[c] = cc as f64;
            scratch.stable[c] = cs as f64;
        }
    }
    // Failures, moved from the answered requests' series to their `code="500"` series.
    // A crashed canary's first failed scrape is its first at or after the onset.
    let crashed = fault.is_some_and(|f| f.kind == FaultKind::Crash && t >= f.onset_ms);
    if let Some(e) = fault
        .and_then(|f| f.error_rate)
        .filter(|_| intensity > 0.0 && !crashed)
    {
        let p = m.failure_share;
        if p < e && p < 1.0 {
            let q = affected * intensity * (e - p) / (1.0 - p);
            for c in 0..n {
                let (Some(to), v) = (m.failures_to[c], scratch.canary[c]) else {
                    continue;
                };
                if v.is_nan() {
                    continue;
                }
                let k = binomial(&mut trial.fault, v as u64, q) as f64;
                scratch.canary[c] -= k;
                match to {
                    // A failed series without a sample this scrape still counts them.
                    FailTo::Channel(c2) if scratch.canary[c2].is_nan() => scratch.canary[c2] = k,
                    FailTo::Channel(c2) => scratch.canary[c2] += k,
                    FailTo::Extra(tpl) => scratch.moved[tpl] += k,
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
        if from < t {
            let total = requests(scratch, false) + scratch.moved.iter().sum::<f64>();
            let failed = if crashed {
                total
            } else {
                requests(scratch, true) + scratch.moved.iter().sum::<f64>()
            };
            let frac = (t - from.max(t0)) as f64 / (t - t0) as f64;
            let fa = binomial(&mut trial.fault, failed as u64, frac);
            let ok = binomial(&mut trial.fault, (total - failed).max(0.0) as u64, frac);
            trial.exposure.requests += fa + ok;
            trial.exposure.failed += fa;
        }
    }
    // The samples. A crashed canary's series end with a staleness marker.
    let first_down = crashed && !trial.down;
    trial.down |= crashed;
    for (c, ch) in m.channels.iter().enumerate() {
        let r = &rec.series[ch.rec];
        for (tpl, v, canary) in [
            (ch.canary, scratch.canary[c], true),
            (ch.stable, scratch.stable[c], false),
        ] {
            match () {
                // Prometheus records a failed scrape as `up` 0.
                _ if canary && trial.down && r.name == UP => {
                    if runs(ch) {
                        push(trial, tpl, t, 0.0, (false, false))
                    }
                }
                _ if canary && trial.down => {}
                // A canary instance joining at its phase is a new process: its counter
                // (CPU) starts at 0.
                _ if canary && joins(ch, trial.born[tpl]) && r.counter && !v.is_nan() => {
                    push(trial, tpl, t, 0.0, (true, false))
                }
                _ => push(trial, tpl, t, v, (r.counter, canary && ch.born_late)),
            }
        }
    }
    // Series of the canary's own failures exist from their first event, as client
    // libraries create them (or from the release's start, `failures_from: release_start`).
    for tpl in m.extras() {
        let k = scratch.moved[tpl];
        if !trial.down {
            push(trial, tpl, t, k, (true, m.failures_late));
        }
    }
    if first_down {
        for (tpl, s) in trial.series.iter_mut().enumerate() {
            let canary = m.templates[tpl].label("track") == Track::Canary.as_str();
            if canary && trial.born[tpl] && s.name != UP {
                s.samples.push(Sample { t, v: STALE_NAN });
            }
        }
    }
}

/// Whether `ch`'s canary series, `born` or not yet, is a canary instance's joining after
/// the release's start (the first runs from it).
fn joins(ch: &Channel, born: bool) -> bool {
    !born && ch.instance.is_some_and(|k| k > 0)
}

/// Adds one sample to template `tpl`: `v` a counter's increase or a gauge's value (NaN:
/// none this scrape); `born_late`: a counter whose series exists from its first event.
fn push(trial: &mut Trial, tpl: usize, t: i64, v: f64, (counter, born_late): (bool, bool)) {
    if v.is_nan() {
        return;
    }
    let value = if counter {
        trial.totals[tpl] += v;
        trial.totals[tpl]
    } else {
        v
    };
    if born_late && !trial.born[tpl] && value == 0.0 {
        return;
    }
    trial.born[tpl] = true;
    trial.series[tpl].samples.push(Sample { t, v: value });
}
