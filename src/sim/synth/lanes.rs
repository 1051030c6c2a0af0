//! The trials of a lock-step batch as lanes: every per-trial quantity is a column with one
//! entry per trial, and each stage of an evaluation (a span's draws, the ring writes, the
//! `rate()`s, the metric values) runs as one loop over the lanes. What a stage depends on
//! besides the lane (which draw, which cell, which window) is decided once per stage
//! instead of once per trial, and the loops run over contiguous memory.
//!
//! Each lane keeps its own random stream ([`Streams`], stepped across the lanes at once
//! where a stage takes one uniform each) and draws in the same order as a trial run on its
//! own (stage by stage, every lane's draws come in that order), so a trial's numbers do
//! not depend on its batch. A finished trial leaves the batch by moving the last lane into
//! its place.

use super::clock::{Facts, Plans, Span, Tick, Window, plan_track, tracks};
use super::clusters::{Cluster, SharedClusters, TrackClusters, clustered_failures, one_counter};
use super::draw::{self, ClassDraw, Mix, Target};
use super::drift::Noise;
use super::series::{QueryFailure, SeriesLane, SeriesSim};
use super::streams::Streams;
use super::table::Pool;
use super::{
    Bursts, Demand, Exposure, FaultModel, Model, SeriesSet, SyntheticMetric, UNBORN,
    birth_in_piece, birth_pending, count,
};
use crate::prom::engine::Bound;
use crate::prom::summation::Agg;
use crate::prom::{self, Bucket, Sample};
use crate::promql::Track;
use crate::sim::evaluator::{Columns, Schedule};
use rand::RngExt;
use rand_distr::Distribution;

/// One track's series in every lane: counters now, and the ring of samples a window may
/// still read (row per ring slot, a column per lane).
struct TrackLanes {
    track: Track,
    series: SeriesSet,
    /// Its request counters: one set per instance it may run
    /// ([`Model::request_instances`]), or one for the track.
    counters: Vec<CounterLanes>,
    /// Busy seconds of each instance (`cpu` per lane: [`Lanes::cpu`]), from its first
    /// sample on.
    cpu_seconds: Vec<f64>,
    /// Per instance, the scrape of its CPU counter's first sample (0 at the release's start
    /// or, for a canary instance joining later, the first scrape after its phase's start,
    /// where its counter is 0: [`super::cpu_part`]); [`UNBORN`] until it runs. The same
    /// for every lane of a batch (they share their course).
    joined: Vec<i64>,
    /// Per slot and lane, each instance's busy seconds.
    ring_cpu: Vec<f64>,
    /// Memory, DB connections, Redis memory at the latest evaluation's scrape.
    gauges: [Vec<f64>; 3],
}

/// One set of request counters in every lane (an instance's, or a track's counted as
/// one): its counters now, and the ring of samples a window may still read (row per ring
/// slot, a column per lane).
struct CounterLanes {
    requests: Vec<u64>,
    errors: Vec<u64>,
    /// Requests per latency cell so far (not cumulative), `cells` per lane.
    cells: Vec<u64>,
    ring_requests: Vec<u64>,
    ring_errors: Vec<u64>,
    /// Per slot and lane, `cells` cumulative bucket counts (finite buckets, then +Inf).
    ring_buckets: Vec<u64>,
    /// Under births, per lane, the failure series' first sample: (scrape, value), the
    /// scrape [`UNBORN`] until the first failure ([`birth_in_piece`]).
    born: Vec<(i64, u64)>,
    /// At least the latest birth scrape of any lane ([`UNBORN`] while some lane may be
    /// unborn): once every birth is settled and outside the windows, the lanes skip them.
    latest_birth: i64,
    /// The scrape of its first sample, every counter at 0: 0, or a joining instance's
    /// first scrape ([`Model::serving`]); [`UNBORN`] until it serves. The same for every
    /// lane of a batch (they share their course).
    joined: i64,
}

impl CounterLanes {
    /// Room for `width` lanes of `cells` latency cells and `cap` ring slots.
    fn new(width: usize, cells: usize, cap: usize, joined: i64) -> CounterLanes {
        CounterLanes {
            requests: vec![0; width],
            errors: vec![0; width],
            cells: vec![0; width * cells],
            ring_requests: vec![0; cap * width],
            ring_errors: vec![0; cap * width],
            ring_buckets: vec![0; cap * width * cells],
            born: vec![(UNBORN, 0); width],
            latest_birth: UNBORN,
            joined,
        }
    }

    /// Moves lane `from`'s entries to lane `to` (`w` lanes a row, `cells` per lane).
    fn move_lane(&mut self, w: usize, cells: usize, (from, to): (usize, usize)) {
        self.requests[to] = self.requests[from];
        self.errors[to] = self.errors[from];
        self.born[to] = self.born[from];
        move_lane(&mut self.cells, w, cells, from, to);
        move_lane(&mut self.ring_requests, w, 1, from, to);
        move_lane(&mut self.ring_errors, w, 1, from, to);
        move_lane(&mut self.ring_buckets, w, cells, from, to);
    }

    /// Takes lane `l` of `f` (rows of `fw` lanes) as lane `to` (rows of `w`).
    fn adopt(
        &mut self,
        (f, fw): (&CounterLanes, usize),
        w: usize,
        k: usize,
        (l, to): (usize, usize),
    ) {
        self.requests[to] = f.requests[l];
        self.errors[to] = f.errors[l];
        self.born[to] = f.born[l];
        self.latest_birth = self.latest_birth.max(f.born[l].0);
        self.joined = self.joined.min(f.joined);
        copy_lane((&f.cells, fw), (&mut self.cells, w), k, (l, to));
        copy_lane(
            (&f.ring_requests, fw),
            (&mut self.ring_requests, w),
            1,
            (l, to),
        );
        copy_lane((&f.ring_errors, fw), (&mut self.ring_errors, w), 1, (l, to));
        copy_lane(
            (&f.ring_buckets, fw),
            (&mut self.ring_buckets, w),
            k,
            (l, to),
        );
    }

    /// Takes the latest birth of lanes `..n` ([`CounterLanes::latest_birth`]).
    fn settle_births(&mut self, n: usize) {
        self.latest_birth = self.born[..n].iter().map(|b| b.0).max().unwrap_or(UNBORN);
    }

    /// Records lanes `..n`'s counters in ring slot `s` (`w` lanes a row, `k` cells a lane).
    #[inline]
    fn write(&mut self, s: usize, w: usize, n: usize, k: usize) {
        let row = s * w;
        self.ring_requests[row..row + n].copy_from_slice(&self.requests[..n]);
        self.ring_errors[row..row + n].copy_from_slice(&self.errors[..n]);
        if k > 0 {
            let dst = &mut self.ring_buckets[row * k..(row + n) * k];
            for (d, c) in dst.chunks_exact_mut(k).zip(self.cells.chunks_exact(k)) {
                let mut below = 0;
                for (d, &c) in d.iter_mut().zip(c) {
                    below += c;
                    *d = below;
                }
            }
        }
    }
}

/// A gauge's noise row among its track's ([`noise_row`]).
#[derive(Clone, Copy)]
enum Row {
    /// Memory of instance `i`.
    Memory(usize),
    /// DB connections of instance `i`.
    Db(usize),
    Redis,
    /// Custom metric `mi`.
    Metric(usize),
}

/// What one span adds to a track, per lane: requests and failed requests.
struct SpanCounts {
    requests: Vec<u64>,
    failed: Vec<u64>,
    /// Per lane, each serving instance's requests and failed requests (lane by lane).
    each_requests: Vec<u64>,
    each_failed: Vec<u64>,
    /// One lane's failure series' first samples, an instance's each.
    each_born: Vec<(i64, u64)>,
    /// One class's counts.
    drawn: Vec<u64>,
    /// One uniform's bits per lane, for the draws that take exactly one
    /// ([`Streams::bits`]).
    bits: Vec<u64>,
}

/// The batch's trials, one lane each.
pub(crate) struct Lanes<'m, 'a> {
    model: &'m Model<'a>,
    faults: &'m FaultModel<'m>,
    /// Lanes in use (the first `live` of every column).
    live: usize,
    /// Lanes allocated: the stride of every column.
    width: usize,
    /// Latency cells per lane (0 when no histogram is kept).
    cells: usize,
    /// CPU counters per lane and track: one per instance a track may run, none when no rule
    /// reads CPU.
    cpu: usize,
    rng: Streams,
    /// The Gamma rate multiplier of the current evaluation interval.
    burst: Vec<f64>,
    /// Under error clustering, each lane's current cluster: a row of `width` lanes per
    /// track.
    cluster: Vec<Cluster>,
    /// Under error clustering with a shared part, per live lane, its trial's shared
    /// clusters (empty otherwise).
    shared: Vec<SharedClusters>,
    exposure: Vec<Exposure>,
    /// Whether the fault has shown in some lane (until then no lane counts exposure).
    shown: bool,
    tracks: Vec<TrackLanes>,
    /// The metric values, column by column ([`Columns`]).
    values: Vec<Option<f64>>,
    /// The drifting noise of the gauges ([`super::drift`]): rows of `width` lanes, per track
    /// ([`noise_row`]) memory and DB connections per instance, Redis memory, then one per
    /// metric (used by custom metrics).
    noise: Vec<Noise>,
    /// Per lane, the facts of the span being drawn, when they depend on the lane's rate.
    facts: Vec<Facts>,
    span: SpanCounts,
    /// Per lane, the window's `rate()` of requests, errors, successes and CPU seconds
    /// (when the window has two samples).
    rates: [Vec<f64>; 4],
    /// A lane's draws, when each plans its own (under overdispersion).
    scratch_draws: Vec<ClassDraw>,
    quantile: Vec<Bucket>,
    /// Per live lane, its simulated series when some metric is a query over them
    /// ([`super::series`]; empty otherwise).
    series: Vec<SeriesLane>,
    /// The query metrics' queries, bound to a track's series (rewound for each lane).
    bounds: Vec<[Bound; 2]>,
    /// Per query slot, the lane evaluations that computed it.
    query_steps: Vec<u64>,
}

impl<'m, 'a> Lanes<'m, 'a> {
    /// A batch of one lane per random stream in `rng`.
    /// `seeds` are the trials' seeds (their series draw from streams of their own).
    pub(crate) fn new(
        model: &'m Model<'a>,
        faults: &'m FaultModel<'m>,
        rng: Streams,
        seeds: &[u64],
    ) -> Self {
        let live = rng.count();
        let mut lanes = Lanes::with(model, faults, rng, live);
        if let Some(sim) = &model.series {
            lanes.series = seeds.iter().map(|&s| sim.lane(s)).collect();
        }
        if let Some(c) = &model.clustering {
            let clustered = lanes.tracks.iter().filter(|t| t.series.errors);
            lanes.shared = seeds
                .iter()
                .filter_map(|&s| c.shared(s, clustered.clone().map(|t| t.track)))
                .collect();
        }
        lanes
    }

    /// An empty batch with room for `width` lanes, which [`adopt`](Self::adopt) fills.
    pub(crate) fn empty(&self, width: usize) -> Self {
        Lanes::with(self.model, self.faults, Streams::zeroed(width), 0)
    }

    /// A batch of room for one lane per stream of `rng`, the first `live` in use.
    fn with(model: &'m Model<'a>, faults: &'m FaultModel<'m>, rng: Streams, live: usize) -> Self {
        let width = rng.count();
        let k = model.bounds.len() + 1;
        let cells = if model.reads_latency() { k } else { 0 };
        let cap = model.ring_capacity;
        let cpu = cpu_counters(model);
        let sets = model
            .request_sets(Track::Canary)
            .max(model.request_sets(Track::Stable));
        let tracks = tracks(model)
            .into_iter()
            .map(|(track, series)| TrackLanes {
                track,
                series,
                counters: (0..model.request_sets(track))
                    .map(|i| {
                        let joined = if i < model.request_instances(track, 0) {
                            0
                        } else {
                            UNBORN
                        };
                        CounterLanes::new(width, cells, cap, joined)
                    })
                    .collect(),
                cpu_seconds: vec![0.0; width * cpu],
                joined: (0..cpu)
                    .map(|k| {
                        if k < model.instances(track, 0) {
                            0
                        } else {
                            UNBORN
                        }
                    })
                    .collect(),
                ring_cpu: vec![0.0; cap * width * cpu],
                gauges: std::array::from_fn(|_| vec![0.0; width]),
            })
            .collect::<Vec<_>>();
        let metrics = model.sources.len();
        let noise = vec![Noise::FRESH; tracks.len() * rows_per_track(model) * width];
        Lanes {
            model,
            faults,
            live,
            width,
            cells,
            cpu,
            rng,
            burst: vec![1.0; width],
            cluster: vec![Cluster::NONE; tracks.len() * width],
            shared: Vec::new(),
            exposure: vec![Exposure::default(); width],
            shown: false,
            tracks,
            values: vec![None; 2 * metrics * width],
            noise,
            facts: Vec::with_capacity(width),
            span: SpanCounts {
                requests: vec![0; width],
                failed: vec![0; width],
                each_requests: vec![0; width * sets],
                each_failed: vec![0; width * sets],
                each_born: Vec::with_capacity(sets),
                drawn: vec![0; width],
                bits: vec![0; width],
            },
            rates: std::array::from_fn(|_| vec![0.0; width]),
            scratch_draws: Vec::new(),
            quantile: Vec::with_capacity(k),
            series: Vec::with_capacity(if model.series.is_some() { width } else { 0 }),
            bounds: model.series.as_ref().map_or(Vec::new(), SeriesSim::bounds),
            query_steps: vec![0; model.series.as_ref().map_or(0, |s| s.bounds_len())],
        }
    }

    /// An upper bound on the memory one lane's rings and gauge noise take (both tracks):
    /// what grows with `window / scrape_interval` and with the replicas, so that batches
    /// can be sized to a memory budget.
    pub(crate) fn ring_bytes_per_lane(model: &Model<'_>) -> usize {
        let cells = if model.reads_latency() {
            model.bounds.len() + 1
        } else {
            0
        };
        // Per track and slot: requests, errors and the latency cells per set of request
        // counters, CPU seconds per instance; per track, a noise per instance of each
        // per-instance gauge.
        let sets = model.request_sets(Track::Canary) + model.request_sets(Track::Stable);
        model.ring_capacity * (sets * (2 + cells) + 2 * cpu_counters(model)) * 8
            + 2 * rows_per_track(model) * std::mem::size_of::<Noise>()
    }

    /// Every lane's metric values at the latest evaluation.
    pub(crate) fn values(&self) -> Columns<'_> {
        Columns {
            data: &self.values,
            width: self.width,
        }
    }

    pub(crate) fn exposure(&self, l: usize) -> &Exposure {
        &self.exposure[l]
    }

    /// Drops lane `l`: the last lane takes its place.
    pub(crate) fn swap_remove(&mut self, l: usize) {
        debug_assert!(l < self.live);
        self.live -= 1;
        let (from, w) = (self.live, self.width);
        if from == l {
            self.series.truncate(from);
            self.shared.truncate(from);
            return;
        }
        self.rng.swap(from, l);
        if !self.series.is_empty() {
            self.series.swap_remove(l);
        }
        if !self.shared.is_empty() {
            self.shared.swap_remove(l);
        }
        self.burst[l] = self.burst[from];
        self.exposure[l] = self.exposure[from];
        move_lane(&mut self.cluster, w, 1, from, l);
        move_lane(&mut self.values, w, 1, from, l);
        move_lane(&mut self.noise, w, 1, from, l);
        for t in &mut self.tracks {
            let joined = t.joined();
            for c in &mut t.counters[..joined] {
                c.move_lane(w, self.cells, (from, l));
            }
            move_lane(&mut t.cpu_seconds, w, self.cpu, from, l);
            move_lane(&mut t.ring_cpu, w, self.cpu, from, l);
            for g in &mut t.gauges {
                g[l] = g[from];
            }
        }
    }

    /// Takes lane `l` of `from` as its last lane: its stream, counters, samples and values,
    /// in the same ring slots (the batches' clocks forked at the same time).
    pub(crate) fn adopt(&mut self, from: &Lanes<'_, '_>, l: usize) {
        let to = self.live;
        debug_assert!(to < self.width && l < from.live);
        self.live += 1;
        let (fw, w) = (from.width, self.width);
        self.rng.copy_lane(&from.rng, l, to);
        if let Some(s) = from.series.get(l) {
            debug_assert_eq!(self.series.len(), to);
            self.series.push(s.clone());
        }
        if let Some(s) = from.shared.get(l) {
            debug_assert_eq!(self.shared.len(), to);
            self.shared.push(s.clone());
        }
        self.burst[to] = from.burst[l];
        copy_lane((&from.cluster, fw), (&mut self.cluster, w), 1, (l, to));
        self.exposure[to] = from.exposure[l];
        self.shown |= from.exposure[l].first_active.is_some();
        copy_lane((&from.values, fw), (&mut self.values, w), 1, (l, to));
        copy_lane((&from.noise, fw), (&mut self.noise, w), 1, (l, to));
        for (t, f) in self.tracks.iter_mut().zip(&from.tracks) {
            for (c, fc) in t.counters.iter_mut().zip(&f.counters) {
                c.adopt((fc, fw), w, self.cells, (l, to));
            }
            let c = self.cpu;
            copy_lane((&f.cpu_seconds, fw), (&mut t.cpu_seconds, w), c, (l, to));
            for (j, &fj) in t.joined.iter_mut().zip(&f.joined) {
                *j = (*j).min(fj);
            }
            copy_lane((&f.ring_cpu, fw), (&mut t.ring_cpu, w), c, (l, to));
            for (g, fg) in t.gauges.iter_mut().zip(&f.gauges) {
                g[to] = fg[l];
            }
        }
    }

    /// Computes every lane's metric values at `step`'s evaluation time; only the metrics in
    /// `demand` asks for are computed (the others keep older values).
    pub(crate) fn advance(
        &mut self,
        (step, plans): (&Tick, &Plans),
        schedule: &Schedule,
        demand: &Demand,
    ) {
        let m = self.model;
        if let Bursts::Gamma(gamma) = &m.bursts {
            for (l, b) in self.burst[..self.live].iter_mut().enumerate() {
                *b = gamma.sample(&mut self.rng.lane(l));
            }
        }
        for span in &step.spans {
            self.generate(plans, span);
        }
        self.draw_gauges(step, demand);
        for ti in 0..self.tracks.len() {
            self.track_values(ti, step, demand);
        }
        self.query_values(step.ts, schedule, demand);
    }

    /// The first query evaluation that failed in lane `l`'s trial, if one did.
    pub(crate) fn query_failure(&self, l: usize) -> Option<&QueryFailure> {
        self.series.get(l).and_then(SeriesLane::failure)
    }

    /// Per query slot, the lane evaluations that computed it so far.
    pub(crate) fn query_steps(&self) -> &[u64] {
        &self.query_steps
    }

    /// Computes the query metrics `demand` reads at `ts` in every lane: advances the
    /// lane's series (canary, then stable) and evaluates the queries over them.
    fn query_values(&mut self, ts: i64, schedule: &Schedule, demand: &Demand) {
        let (m, faults, n, w) = (self.model, self.faults, self.live, self.width);
        let Some(sim) = &m.series else { return };
        for (side, track) in [(0, Track::Canary), (1, Track::Stable)] {
            let wanted = &demand.queries[side];
            if wanted.is_empty() {
                continue;
            }
            // Every lane of a group has drawn alike so far: one plan serves them all.
            let mut plan = None;
            for l in 0..n {
                let done = self.series[l].done(track);
                let p = match plan.take() {
                    Some(p) if super::series::plan_done(&p) == done => p,
                    _ => sim.plan((m, faults), schedule, (track, done), ts),
                };
                sim.advance(faults, &mut self.series[l], &p);
                plan = Some(p);
                for &(mi, slot) in wanted {
                    self.values[(2 * mi + side) * w + l] = SeriesSim::value(
                        &mut self.bounds,
                        (slot, mi, track),
                        &mut self.series[l],
                        ts,
                        m.semantics,
                    );
                }
            }
            for &(_, slot) in wanted {
                self.query_steps[slot] += n as u64;
            }
        }
    }

    /// Draws what happened in `span` in every lane and records the samples at its end.
    fn generate(&mut self, plans: &Plans, span: &Span) {
        let (m, n) = (self.model, self.live);
        if span.facts.is_none() {
            self.facts.clear();
            let share = m.canary_share[span.phase];
            for &b in &self.burst[..n] {
                let level = self.faults.level_at(span.mid, span.rps * b * share);
                self.facts
                    .push(Facts::new(m, self.faults, span.t0, span.t1, level));
            }
        }
        let facts = |facts: &[Facts], l: usize| span.facts.unwrap_or_else(|| facts[l]);
        match span.facts {
            Some(Facts { shows: None, .. }) => {}
            Some(Facts {
                shows: Some(shows), ..
            }) => {
                for e in &mut self.exposure[..n] {
                    e.first_active.get_or_insert(shows);
                }
                self.shown = true;
            }
            None => {
                for (l, e) in self.exposure[..n].iter_mut().enumerate() {
                    if e.first_active.is_none() {
                        e.first_active = self.facts[l].shows;
                        self.shown |= e.first_active.is_some();
                    }
                }
            }
        }
        for ti in 0..self.tracks.len() {
            let t = &mut self.tracks[ti];
            let canary = t.track == Track::Canary;
            let r = t.series;
            if r.requests {
                // Each serving instance an equal part of the track's requests, lane by
                // lane in the reference's order: every instance's kinds of request, then
                // their failures.
                let serving = span.serving[usize::from(!canary)];
                // An instance joining here (the piece starts at its first scrape) has its
                // counters' first sample, 0, there.
                for cs in &mut t.counters[..serving] {
                    if cs.joined == UNBORN {
                        cs.joined = m.last_scrape(span.t0);
                    }
                }
                let k = self.cells;
                let counts = &mut self.span;
                for (i, cs) in t.counters[..serving].iter_mut().enumerate() {
                    match (&span.draws, span.facts) {
                        (Some(ranges), Some(f)) => draw_shared(
                            (&mut self.rng, n),
                            &plans.draws[ranges[ti].clone()],
                            self.faults.mix(t.track, f.level),
                            &plans.pool,
                            (&mut cs.cells, k),
                            counts,
                        ),
                        _ => {
                            for l in 0..n {
                                let f = facts(&self.facts, l);
                                self.scratch_draws.clear();
                                let mix = self.faults.mix(t.track, f.level);
                                plan_track(
                                    &mut self.scratch_draws,
                                    m,
                                    span,
                                    (t.track, r),
                                    span.rps * self.burst[l],
                                    mix,
                                    None,
                                );
                                (counts.requests[l], counts.failed[l]) = draw::draw_span(
                                    &mut self.rng.lane(l),
                                    &self.scratch_draws,
                                    mix,
                                    &plans.pool,
                                    &mut cs.cells[l * k..(l + 1) * k],
                                );
                            }
                        }
                    }
                    if serving > 1 {
                        for l in 0..n {
                            counts.each_requests[l * serving + i] = counts.requests[l];
                            counts.each_failed[l * serving + i] = counts.failed[l];
                        }
                    }
                }
                // Lane `l`'s instance `i` at `l * serving + i` (one set: the lane's own).
                let (requests, failed) = if serving == 1 {
                    (&counts.requests[..n], &mut counts.failed[..n])
                } else {
                    let each = ..n * serving;
                    (&counts.each_requests[each], &mut counts.each_failed[each])
                };
                let born = &mut counts.each_born;
                // A track without traffic in the span (the stable one at 100%) draws no
                // cluster, as in the reference.
                let served = span.rps * m.track_share(t.track, span.phase) > 0.0;
                let clustering = m.clustering.as_ref().filter(|_| r.errors && served);
                if let Some(c) = clustering {
                    // The span's failures, from its requests (the kinds left them out), and
                    // with them the failure series' births.
                    let row = ti * self.width..ti * self.width + n;
                    for (l, own) in self.cluster[row].iter_mut().enumerate() {
                        let level = facts(&self.facts, l).level;
                        let p_at = |g| self.faults.clustered_fail(t.track, level, g);
                        let clusters = TrackClusters {
                            own,
                            shared: self.shared.get_mut(l).map(|s| (s, t.track)),
                        };
                        let each = l * serving..(l + 1) * serving;
                        let (requests, failed) = (&requests[each.clone()], &mut failed[each]);
                        let rng = &mut self.rng.lane(l);
                        let span_t = (span.t0, span.t1);
                        if let ([cs], [requests], [failed]) =
                            (&mut t.counters[..serving], requests, &mut *failed)
                        {
                            // One set: as one counter, its birth in place.
                            let births = m.births.then_some((m, &mut cs.born[l]));
                            *failed =
                                one_counter(c, rng, span_t, *requests, (clusters, p_at), births);
                            continue;
                        }
                        born.clear();
                        born.extend(t.counters[..serving].iter().map(|cs| cs.born[l]));
                        let births = m.births.then_some((m, &mut born[..]));
                        clustered_failures(
                            c,
                            rng,
                            span_t,
                            (requests, failed),
                            (clusters, p_at),
                            births,
                        );
                        for (cs, &b) in t.counters.iter_mut().zip(born.iter()) {
                            cs.born[l] = b;
                        }
                    }
                    if m.births {
                        for cs in &mut t.counters[..serving] {
                            cs.settle_births(n);
                        }
                    }
                } else if m.births
                    && r.errors
                    && (t.counters[..serving].iter())
                        .any(|cs| birth_pending(m, (cs.latest_birth, 0), span.t0))
                {
                    // The failure series' births: drawn only in the span that holds them.
                    for l in 0..n {
                        let rng = &mut self.rng.lane(l);
                        for (i, cs) in t.counters[..serving].iter_mut().enumerate() {
                            let (failed, born) = (failed[l * serving + i], &mut cs.born[l]);
                            if failed > 0 && birth_pending(m, *born, span.t0) {
                                birth_in_piece(m, rng, (span.t0, span.t1), failed, born);
                            }
                        }
                    }
                    for cs in &mut t.counters[..serving] {
                        cs.settle_births(n);
                    }
                }
                if let [cs] = &mut t.counters[..serving] {
                    for ((r, e), (&n, &f)) in (cs.requests.iter_mut().zip(&mut cs.errors))
                        .zip(requests.iter().zip(failed.iter()))
                    {
                        *r += n;
                        *e += f;
                    }
                } else {
                    for (i, cs) in t.counters[..serving].iter_mut().enumerate() {
                        for l in 0..n {
                            cs.requests[l] += requests[l * serving + i];
                            cs.errors[l] += failed[l * serving + i];
                        }
                    }
                }
                if canary && self.shown {
                    for (l, e) in self.exposure[..n].iter_mut().enumerate() {
                        if e.first_active.is_some_and(|a| span.mid >= a) {
                            let each = l * serving..(l + 1) * serving;
                            e.requests += requests[each.clone()].iter().sum::<u64>();
                            e.failed += failed[each].iter().sum::<u64>();
                        }
                    }
                }
            }
            if r.cpu {
                // CPU is a counter of busy seconds, drawn where some rule can read it and
                // advanced by its mean elsewhere.
                self.draw_cpu(ti, span);
            }
            if let Some(slot) = span.slot {
                self.tracks[ti].write(slot, self.width, n, (self.cells, self.cpu));
            }
        }
    }

    /// Advances the CPU counter of each instance track `ti` runs over `span`, lane by lane
    /// (in each, the track's shared noise first where it has one, then instance by
    /// instance: [`super::cpu_noise`]): with noise where a rule can read it, by each
    /// lane's own mean elsewhere. An instance joining in `span`'s phase (the span starting
    /// the phase) counts from the first scrape after that start ([`super::cpu_part`]).
    fn draw_cpu(&mut self, ti: usize, span: &Span) {
        let (m, c) = (self.model, self.cpu);
        let base = &m.scenarios.baseline;
        let t = &mut self.tracks[ti];
        let canary = t.track == Track::Canary;
        let running = m.instances(t.track, span.phase);
        for j in &mut t.joined[..running] {
            if *j == UNBORN {
                *j = m.scrape_after(span.t0);
            }
        }
        let part = |j: i64| super::cpu_part(m, (span.t0, span.t1), j);
        let counting = t.joined[..running]
            .iter()
            .filter(|&&j| part(j).is_some())
            .count();
        let shared = base.cpu_shared;
        let draws_shared = span.cpu_read && counting > 1 && shared > 0.0;
        for l in 0..self.live {
            let cpu = if canary {
                span.facts.unwrap_or_else(|| self.facts[l]).canary_cpu
            } else {
                base.cpu.mean
            };
            let rng = &mut self.rng.lane(l);
            let z0 = draws_shared.then(|| rng.sample(rand_distr::StandardNormal));
            for (k, &j) in t.joined[..running].iter().enumerate() {
                let Some(dt) = part(j) else { continue };
                t.cpu_seconds[l * c + k] += if span.cpu_read {
                    let z: f64 = rng.sample(rand_distr::StandardNormal);
                    let noise = super::cpu_noise(shared, z0, z);
                    (cpu + base.cpu.noise * noise).max(0.0) * dt
                } else {
                    cpu * dt
                };
            }
        }
    }

    /// Draws the gauges read at the evaluation's own scrape (those `demand` reads), each
    /// with its drifting noise ([`super::drift`]): memory and DB connections per instance
    /// of the track at that scrape (their max and their sum), Redis memory once.
    fn draw_gauges(&mut self, step: &Tick, demand: &Demand) {
        if demand.series.iter().all(|r| !(r.memory || r.db || r.redis)) {
            return;
        }
        let (m, w) = (self.model, self.width);
        let base = &m.scenarios.baseline;
        let share = m.canary_share[step.phase];
        let scrape = m.scrape_time(m.last_scrape(step.ts));
        for l in 0..self.live {
            let rng = &mut self.rng.lane(l);
            let canary_rps = m.total_rps(step.ts) * self.burst[l] * share;
            // The gauge is the scrape's: the fault as it was then.
            let intensity = self.faults.at(scrape, canary_rps);
            for (ti, t) in self.tracks.iter_mut().enumerate() {
                let r = demand.series[usize::from(t.track != Track::Canary)];
                if !(r.memory || r.db || r.redis) {
                    continue;
                }
                let drift = &mut self.noise;
                let lift = match (t.track, self.faults.fault) {
                    (Track::Canary, Some(f)) if intensity > 0.0 => {
                        f.memory_usage.map_or(0.0, |target| {
                            intensity * f.affected() * (target - base.memory.mean)
                        })
                    }
                    _ => 0.0,
                };
                let mut noise = |row: Row, tau: i64| {
                    let z = rng.sample::<f64, _>(rand_distr::StandardNormal);
                    drift[noise_row(m, w, ti, row) + l].at(scrape, tau, z)
                };
                let (mem, db, redis) = (&base.memory, &base.db_connections, &base.redis_memory);
                let instances = m.instances(t.track, step.scrape_phase);
                if r.memory {
                    t.gauges[0][l] = (0..instances)
                        .map(|i| {
                            mem.mean
                                + lift
                                + mem.noise * noise(Row::Memory(i), mem.time_constant_ms)
                        })
                        .fold(f64::NEG_INFINITY, f64::max);
                }
                if r.db {
                    t.gauges[1][l] = (0..instances)
                        .map(|i| {
                            let x = noise(Row::Db(i), db.time_constant_ms);
                            (db.mean + db.noise * x).max(0.0).round()
                        })
                        .sum();
                }
                if r.redis {
                    let x = noise(Row::Redis, redis.time_constant_ms);
                    t.gauges[2][l] = redis.mean + redis.noise * x;
                }
            }
        }
    }

    /// Fills every lane's values of track `ti` at `step`'s time.
    fn track_values(&mut self, ti: usize, step: &Tick, demand: &Demand) {
        let (m, n, w, k) = (self.model, self.live, self.width, self.cells);
        let t = &self.tracks[ti];
        let canary = t.track == Track::Canary;
        let side = usize::from(!canary);
        let series = demand.series[side];
        // A crashed canary's windows end at its last sample.
        let w_of = match (canary, &step.canary_window) {
            (true, Some(cw)) => cw,
            _ => &step.window,
        };
        // Without two samples in the window there is no `rate()` at all; with them, every
        // `rate()` has a value.
        let window = w_of.factor.zip(w_of.ends).map(|(factor, ends)| Rate {
            model: m,
            ts: step.ts,
            w: w_of,
            factor,
            ends,
        });
        let [requests, errors, ok, cpu] = &mut self.rates;
        // Per code, the rules' sum over the request counter adds the two codes' rates, each
        // extrapolated on its own, when the failures are drawn: not the total's own rate.
        let by_code = m.scenarios.exposition.per_code && series.errors;
        let single = t.counters.len() == 1;
        let cs = &t.counters[0];
        if let (Some(window), false) = (&window, single)
            && (series.requests || series.errors)
        {
            for l in 0..n {
                let r = set_rates(window, &t.counters[..t.joined()], (w, l), m.births);
                errors[l] = r.errors.unwrap_or(0.0);
                ok[l] = r.ok.unwrap_or(f64::NAN);
                let all = if by_code { r.by_code } else { r.all };
                requests[l] = all.unwrap_or(f64::NAN);
            }
        }
        if let (Some(window), true) = (&window, single) {
            let ends = window.ends;
            if series.requests && !by_code {
                let (a, b) = rows(&cs.ring_requests, ends, w, n);
                for ((r, &a), &b) in requests[..n].iter_mut().zip(a).zip(b) {
                    *r = window.rate(count(a), count(b));
                }
            }
            if series.errors {
                let (ra, rb) = rows(&cs.ring_requests, ends, w, n);
                let (ea, eb) = rows(&cs.ring_errors, ends, w, n);
                for l in 0..n {
                    errors[l] = window.rate(count(ea[l]), count(eb[l]));
                    ok[l] = window.rate(count(ra[l] - ea[l]), count(rb[l] - eb[l]));
                }
                if m.births && cs.latest_birth > window.w.first_j {
                    // A failure series born after the window's first sample starts at its
                    // birth; without two samples in the window it has no `rate()`, and
                    // adds nothing to a sum (the error ratio's `or vector(0)` reads 0).
                    for l in 0..n {
                        if let Some(first) = window.born(cs.born[l]) {
                            errors[l] = first.map_or(0.0, |f| window.rate_from(f, count(eb[l])));
                        }
                    }
                }
                if by_code {
                    for l in 0..n {
                        requests[l] = errors[l] + ok[l];
                    }
                }
            }
        }
        if let Some(window) = &window {
            let ends = window.ends;
            if series.cpu {
                // `avg(rate())` over the instances with two samples in the window: one
                // that joined inside it from its first sample (0) on.
                let c = self.cpu;
                let (a, b) = (&t.ring_cpu[ends.0 * w * c..], &t.ring_cpu[ends.1 * w * c..]);
                for (l, r) in cpu[..n].iter_mut().enumerate() {
                    let mut avg = Agg::default();
                    for (k, &j) in t.joined.iter().enumerate().filter(|(_, j)| **j != UNBORN) {
                        let (a, b) = (a[l * c + k], b[l * c + k]);
                        if let Some(rate) = window.rate_since((j, 0), a, b) {
                            avg.add_avg(rate, m.semantics);
                        }
                    }
                    *r = avg.avg(m.semantics).unwrap_or(f64::NAN);
                }
            }
        }
        let (values, w) = (&mut self.values, self.width);
        let has_window = window.is_some();
        let births = m.births;
        for &(mi, source) in &demand.metrics[side] {
            let (requests, errors, ok, cpu) = (&*requests, &*errors, &*ok, &*cpu);
            match source {
                SyntheticMetric::ErrorRate => fill(values, w, n, 2 * mi + side, |l| {
                    has_window.then(|| errors[l] / requests[l])
                }),
                SyntheticMetric::Availability => fill(values, w, n, 2 * mi + side, |l| {
                    has_window.then(|| ok[l] / requests[l])
                }),
                SyntheticMetric::Throughput => fill(values, w, n, 2 * mi + side, |l| {
                    has_window.then(|| requests[l])
                }),
                // Only guarded rules read it: `increase()` in full, lane by lane.
                SyntheticMetric::Requests { by_code } if !single => {
                    fill(values, w, n, 2 * mi + side, |l| {
                        let win = window.as_ref()?;
                        let sets = &t.counters[..t.joined()];
                        sets_increase(win, sets, (w, l), (births, by_code), m.semantics)
                    })
                }
                SyntheticMetric::Requests { by_code } => {
                    let window = window.as_ref();
                    let ends = window.map(|win| rows(&cs.ring_requests, win.ends, w, n));
                    let failed = window.map(|win| rows(&cs.ring_errors, win.ends, w, n));
                    fill(values, w, n, 2 * mi + side, |l| {
                        let (win, (a, b)) = window.zip(ends)?;
                        Some(match failed.filter(|_| by_code) {
                            Some((ea, eb)) => {
                                let ok = win.increase(count(a[l] - ea[l]), count(b[l] - eb[l]));
                                // A failure series born in the window adds its own
                                // increase, or nothing without two samples there.
                                let failed = match births.then(|| win.born(cs.born[l])).flatten() {
                                    None => Some(win.increase(count(ea[l]), count(eb[l]))),
                                    Some(first) => {
                                        first.map(|f| win.extrapolated_from(f, count(eb[l]), false))
                                    }
                                };
                                failed.map_or(ok, |e| e + ok)
                            }
                            None => win.increase(count(a[l]), count(b[l])),
                        })
                    })
                }
                SyntheticMetric::Cpu => {
                    fill(values, w, n, 2 * mi + side, |l| has_window.then(|| cpu[l]))
                }
                SyntheticMetric::Latency { q, scale } if !single => {
                    let quantile = &mut self.quantile;
                    fill(values, w, n, 2 * mi + side, |l| {
                        let window = window.as_ref()?;
                        let sets = (&t.counters[..t.joined()], m.les.as_slice());
                        sets_quantile(window, sets, (w, l, k), quantile, (q, m.semantics))
                            .map(|v| v * scale)
                    });
                }
                SyntheticMetric::Latency { q, scale } => {
                    let quantile = &mut self.quantile;
                    let clean_q = m.les_increase && (0.0..=1.0).contains(&q);
                    fill(values, w, n, 2 * mi + side, |l| {
                        let window = window.as_ref()?;
                        let (f, e) = window.ends;
                        let (first, last) = (
                            &cs.ring_buckets[(f * w + l) * k..(f * w + l + 1) * k],
                            &cs.ring_buckets[(e * w + l) * k..(e * w + l + 1) * k],
                        );
                        // Every bucket's rate is `delta * factor` (the usual case): the
                        // buckets are as Prometheus' repairs would leave them. Increases
                        // below 2^36 differ by more than 3.x's tolerance. One clamp check
                        // covers every bucket: a higher one's first sample is no smaller
                        // and its increase no larger than the lowest's first sample and
                        // the `+Inf` bucket's increase (the counts above a bound form a
                        // counter too), and both sides of the check are monotone in them,
                        // in floating point as well (exact integers, monotone rounding).
                        let total = last[k - 1] - first[k - 1];
                        if clean_q
                            && total < 1 << 36
                            && window.clamp_free(count(first[0]), count(total))
                        {
                            let bucket = |i: usize| {
                                let delta = count(last[i]) - count(first[i]);
                                Bucket::new(m.les[i], delta * window.factor)
                            };
                            return Some(
                                prom::quantile::quantile_of_clean_by(q, k, bucket) * scale,
                            );
                        }
                        let mut clean = clean_q && total < 1 << 36;
                        quantile.resize(k, Bucket::new(0.0, 0.0));
                        for (((q, &a), &b), &le) in
                            quantile.iter_mut().zip(first).zip(last).zip(&m.les)
                        {
                            let (a, b) = (count(a), count(b));
                            let r = match window.fast(a, b) {
                                Some(r) => r,
                                None => {
                                    clean = false;
                                    window.exact(a, b)
                                }
                            };
                            *q = Bucket::new(le, r);
                        }
                        Some(
                            if clean {
                                prom::quantile::quantile_of_clean(q, quantile)
                            } else {
                                prom::histogram_quantile(q, quantile, m.semantics)
                            } * scale,
                        )
                    });
                }
                SyntheticMetric::Memory => {
                    fill(values, w, n, 2 * mi + side, |l| Some(t.gauges[0][l]))
                }
                SyntheticMetric::DbConnections => {
                    fill(values, w, n, 2 * mi + side, |l| Some(t.gauges[1][l]))
                }
                SyntheticMetric::Redis => {
                    fill(values, w, n, 2 * mi + side, |l| Some(t.gauges[2][l]))
                }
                SyntheticMetric::Custom {
                    mean,
                    noise,
                    max,
                    time_constant_ms,
                } => {
                    let (rng, faults, burst) = (&mut self.rng, self.faults, &self.burst);
                    let moved = canary && faults.moves_custom(mi);
                    let share = m.canary_share[step.phase];
                    let rps = m.total_rps(step.ts);
                    let scrape = m.scrape_time(m.last_scrape(step.ts));
                    let row = noise_row(m, w, ti, Row::Metric(mi));
                    let drift = &mut self.noise[row..row + n];
                    fill(values, w, n, 2 * mi + side, |l| {
                        let fresh: f64 = rng.lane(l).sample(rand_distr::StandardNormal);
                        let z = drift[l].at(scrape, time_constant_ms, fresh);
                        let intensity = if moved {
                            faults.at(scrape, rps * burst[l] * share)
                        } else {
                            0.0
                        };
                        Some(faults.custom_value(mi, t.track, intensity, (mean, noise, max), z))
                    });
                }
                // Computed from the series after every track's other values.
                SyntheticMetric::Query { .. } => {}
                // `sum(up)`: the track's instances at the scrape, none once crashed.
                SyntheticMetric::Up => {
                    let up = if canary && self.faults.down_at(step.ts, m) {
                        0.0
                    } else {
                        m.instances(t.track, step.scrape_phase) as f64
                    };
                    fill(values, w, n, 2 * mi + side, |_| Some(up));
                }
                SyntheticMetric::Absent => fill(values, w, n, 2 * mi + side, |_| None),
            }
        }
        // A crashed canary's instant series are stale: its gauges have no value (drawn all
        // the same, so that every trial takes the same random numbers).
        if canary && self.faults.down_at(step.ts, m) {
            for &(mi, source) in &demand.metrics[side] {
                if matches!(
                    source,
                    SyntheticMetric::Memory
                        | SyntheticMetric::DbConnections
                        | SyntheticMetric::Redis
                        | SyntheticMetric::Custom { .. }
                ) {
                    fill(values, w, n, 2 * mi + side, |_| None);
                }
            }
        }
    }
}

impl TrackLanes {
    /// The sets of request counters that have served in some lane: a prefix (instances
    /// join in order, and a set stays joined). The others hold 0 in every lane and slot,
    /// and no window reads them, so they need no writes, moves or reads.
    fn joined(&self) -> usize {
        self.counters.partition_point(|cs| cs.joined != UNBORN)
    }

    /// Records lanes `..n`'s counters in ring slot `s` (`w` lanes a row, `k` cells and `cpu`
    /// CPU counters a lane).
    #[inline]
    fn write(&mut self, s: usize, w: usize, n: usize, (k, cpu): (usize, usize)) {
        let joined = self.joined();
        for c in &mut self.counters[..joined] {
            c.write(s, w, n, k);
        }
        let row = s * w;
        self.ring_cpu[row * cpu..(row + n) * cpu].copy_from_slice(&self.cpu_seconds[..n * cpu]);
    }
}

/// One lane's request rates over sets of request counters (per instance), each series
/// extrapolated on its own and added up in Prometheus' order: the answered requests', the
/// failed ones', every code's (the answered requests' series and then the failed ones', by
/// their labels, `code` first) and the one counters' (where requests are not per code).
struct SetRates {
    ok: Option<f64>,
    errors: Option<f64>,
    by_code: Option<f64>,
    all: Option<f64>,
}

/// The first sample of a set's series in `window`, as [`Rate::born`] takes it: its failure
/// series' birth under `births`, else the set's own first sample (0 at `joined`).
fn first_sample(cs: &CounterLanes, l: usize, failures: bool, births: bool) -> (i64, u64) {
    if failures && births {
        cs.born[l]
    } else {
        (cs.joined, 0)
    }
}

/// Lane `l`'s (rows of `w` lanes) rates over `sets`, in the window.
#[inline(never)]
fn set_rates(
    window: &Rate,
    sets: &[CounterLanes],
    (w, l): (usize, usize),
    births: bool,
) -> SetRates {
    let sem = window.model.semantics;
    let (f, e) = window.ends;
    let (a, b) = (f * w + l, e * w + l);
    let rate = |first, a: u64, b: u64| window.rate_since(first, count(a), count(b));
    let (mut ok, mut errors, mut all) = (Agg::default(), Agg::default(), Agg::default());
    for cs in sets {
        let joined = first_sample(cs, l, false, births);
        let (ra, rb) = (cs.ring_requests[a], cs.ring_requests[b]);
        let (ea, eb) = (cs.ring_errors[a], cs.ring_errors[b]);
        if let Some(v) = rate(joined, ra - ea, rb - eb) {
            ok.add_sum(v, sem);
        }
        if let Some(v) = rate(joined, ra, rb) {
            all.add_sum(v, sem);
        }
    }
    // Every code's: the answered requests' sum, then each failure series in turn.
    let mut by_code = ok;
    for cs in sets {
        let (ea, eb) = (cs.ring_errors[a], cs.ring_errors[b]);
        if let Some(v) = rate(first_sample(cs, l, true, births), ea, eb) {
            errors.add_sum(v, sem);
            by_code.add_sum(v, sem);
        }
    }
    SetRates {
        ok: ok.sum(),
        errors: errors.sum(),
        by_code: by_code.sum(),
        all: all.sum(),
    }
}

/// `sum(increase(...))` over `sets` in lane `l` (rows of `w` lanes): per code, the answered
/// requests' series and then the failed ones'; else each set's one counter.
#[inline(never)]
fn sets_increase(
    window: &Rate,
    sets: &[CounterLanes],
    (w, l): (usize, usize),
    (births, by_code): (bool, bool),
    sem: prom::Semantics,
) -> Option<f64> {
    let (f, e) = window.ends;
    let (a, b) = (f * w + l, e * w + l);
    let increase = |first, a: u64, b: u64| window.increase_since(first, count(a), count(b));
    let mut sum = Agg::default();
    let mut add = |v: Option<f64>| {
        if let Some(v) = v {
            sum.add_sum(v, sem);
        }
    };
    if by_code {
        for cs in sets {
            let (ok_a, ok_b) = (
                cs.ring_requests[a] - cs.ring_errors[a],
                cs.ring_requests[b] - cs.ring_errors[b],
            );
            add(increase(first_sample(cs, l, false, births), ok_a, ok_b));
        }
        for cs in sets {
            add(increase(
                first_sample(cs, l, true, births),
                cs.ring_errors[a],
                cs.ring_errors[b],
            ));
        }
    } else {
        for cs in sets {
            add(increase(
                first_sample(cs, l, false, births),
                cs.ring_requests[a],
                cs.ring_requests[b],
            ));
        }
    }
    sum.sum()
}

/// `histogram_quantile(q, sum by (le) (rate(..._bucket[..])))` over `sets` in lane `l`
/// (rows of `w` lanes, `k` buckets a lane): per bound, the sets' buckets added up; None
/// when no set has two samples in the window.
#[inline(never)]
fn sets_quantile(
    window: &Rate,
    (sets, les): (&[CounterLanes], &[f64]),
    (w, l, k): (usize, usize, usize),
    buckets: &mut Vec<Bucket>,
    (q, sem): (f64, prom::Semantics),
) -> Option<f64> {
    let (f, e) = window.ends;
    buckets.clear();
    for (i, &le) in les.iter().enumerate().take(k) {
        let mut sum = Agg::default();
        for cs in sets {
            let (a, b) = (
                cs.ring_buckets[(f * w + l) * k + i],
                cs.ring_buckets[(e * w + l) * k + i],
            );
            if let Some(v) = window.rate_since((cs.joined, 0), count(a), count(b)) {
                sum.add_sum(v, sem);
            }
        }
        buckets.push(Bucket::new(le, sum.sum()?));
    }
    Some(prom::histogram_quantile(q, buckets, sem))
}

/// The rows of slots `f` and `e` (lanes `..n` of rows of `w`).
#[inline(always)]
fn rows<T>(v: &[T], (f, e): (usize, usize), w: usize, n: usize) -> (&[T], &[T]) {
    (&v[f * w..f * w + n], &v[e * w..e * w + n])
}

/// Sets column `c` of `values` (rows of `w` lanes) in lanes `..n` to `v(lane)`.
#[inline(always)]
fn fill(
    values: &mut [Option<f64>],
    w: usize,
    n: usize,
    c: usize,
    v: impl FnMut(usize) -> Option<f64>,
) {
    for (slot, v) in values[c * w..c * w + n].iter_mut().zip((0..n).map(v)) {
        *slot = v;
    }
}

/// Draws a span whose plan every lane shares, class by class across lanes `..n` (each
/// lane's draws in the order [`draw::draw_span`] takes them), into `counts` and the
/// lanes' cells (`k` per lane).
fn draw_shared(
    (rngs, n): (&mut Streams, usize),
    draws: &[ClassDraw],
    mix: &Mix,
    pool: &Pool,
    (lane_cells, k): (&mut [u64], usize),
    counts: &mut SpanCounts,
) {
    let (requests, failed) = (&mut counts.requests[..n], &mut counts.failed[..n]);
    requests.fill(0);
    failed.fill(0);
    let drawn = &mut counts.drawn[..n];
    for d in draws {
        d.draw.sample_each(rngs, &mut counts.bits[..n], pool, drawn);
        match d.target {
            Target::Kind(kind) => {
                for (r, &m) in requests.iter_mut().zip(&*drawn) {
                    *r += m;
                }
                if kind.failed {
                    for (f, &m) in failed.iter_mut().zip(&*drawn) {
                        *f += m;
                    }
                }
                if k > 0 {
                    for (c, &m) in lane_cells.chunks_exact_mut(k).zip(&*drawn) {
                        c[kind.cell] += m;
                    }
                }
            }
            // Each lane's rare requests, classified one by one.
            Target::Minor(from) => {
                for l in 0..n {
                    for _ in 0..drawn[l] {
                        let kind = mix.minor_kind(from, draw::uniform(&mut rngs.lane(l)));
                        requests[l] += 1;
                        failed[l] += u64::from(kind.failed);
                        if k > 0 {
                            lane_cells[l * k + kind.cell] += 1;
                        }
                    }
                }
            }
        }
    }
}

/// Copies lane `from`'s entries of `src` (`k` per lane, rows of `sw` lanes) to lane `to`
/// of `dst` (rows of `dw` lanes).
fn copy_lane<T: Copy>(
    (src, sw): (&[T], usize),
    (dst, dw): (&mut [T], usize),
    k: usize,
    (from, to): (usize, usize),
) {
    if k == 0 || sw == 0 || dw == 0 {
        return;
    }
    for (d, s) in dst.chunks_exact_mut(dw * k).zip(src.chunks_exact(sw * k)) {
        d[to * k..(to + 1) * k].copy_from_slice(&s[from * k..(from + 1) * k]);
    }
}

/// The first entry of the noise row of track `ti`'s gauge `row` in a batch `w` lanes wide:
/// per track, memory's rows (one per instance it may have), DB connections', Redis memory's,
/// then one per metric.
fn noise_row(m: &Model<'_>, w: usize, ti: usize, row: Row) -> usize {
    let n = m.max_instances();
    let r = match row {
        Row::Memory(i) => i,
        Row::Db(i) => n + i,
        Row::Redis => 2 * n,
        Row::Metric(mi) => 2 * n + 1 + mi,
    };
    (ti * rows_per_track(m) + r) * w
}

/// How many noise rows each track has ([`noise_row`]).
fn rows_per_track(m: &Model<'_>) -> usize {
    2 * m.max_instances() + 1 + m.sources.len()
}

/// The CPU counters a lane keeps per track: one per instance a track may run, none when no
/// rule reads CPU.
fn cpu_counters(m: &Model<'_>) -> usize {
    if tracks(m).iter().any(|(_, series)| series.cpu) {
        m.max_instances()
    } else {
        0
    }
}

/// Moves lane `from`'s entries (`k` per lane, rows of `w` lanes) to lane `to`.
fn move_lane<T: Copy>(v: &mut [T], w: usize, k: usize, from: usize, to: usize) {
    if k == 0 {
        return;
    }
    for row in v.chunks_exact_mut(w * k) {
        row.copy_within(from * k..(from + 1) * k, to * k);
    }
}

/// The `rate()` of a counter over a step's window, given its first and last sample, when
/// the window holds at least two samples (so that every `rate()` has a value).
struct Rate<'s> {
    model: &'s Model<'s>,
    ts: i64,
    w: &'s Window,
    factor: f64,
    /// The slots of the window's first and last sample.
    ends: (usize, usize),
}

/// A failure series' first sample in a window that it is born inside of, on or after
/// the window's second scrape.
#[derive(Debug, Clone, Copy)]
struct Birth {
    t: i64,
    v: f64,
    /// Scrape intervals from it to the window's last sample.
    intervals: usize,
}

impl Rate<'_> {
    /// Where a failure series whose first sample is `(b, v)` ([`birth_in_piece`]) starts
    /// in this window: None when at or before the window's first sample (it reads the
    /// ring's samples); Some(None) when it has fewer than two samples in the window (no
    /// `rate()`); else its first sample.
    #[inline(always)]
    fn born(&self, (b, v): (i64, u64)) -> Option<Option<Birth>> {
        let w = self.w;
        if b <= w.first_j {
            return None;
        }
        Some((b < w.last_j).then(|| Birth {
            t: self.model.scrape_time(b),
            v: count(v),
            intervals: (w.last_j - b) as usize,
        }))
    }

    /// The `rate()` of a counter whose first sample is `first` ([`Rate::born`]) and whose
    /// samples at the window's ends (where it has them) are `a` and `b`: None when it has
    /// fewer than two samples in the window.
    #[inline(always)]
    fn rate_since(&self, first: (i64, u64), a: f64, b: f64) -> Option<f64> {
        match self.born(first) {
            None => Some(self.rate(a, b)),
            Some(None) => None,
            Some(Some(first)) => Some(self.rate_from(first, b)),
        }
    }

    /// `increase()` of the same counter as [`Rate::rate_since`].
    fn increase_since(&self, first: (i64, u64), a: f64, b: f64) -> Option<f64> {
        match self.born(first) {
            None => Some(self.increase(a, b)),
            Some(None) => None,
            Some(Some(first)) => Some(self.extrapolated_from(first, b, false)),
        }
    }

    /// The `rate()` of a failure series born at `first` in the window, whose last sample
    /// is `last`: Prometheus' extrapolation in full (once per trial and track at most in
    /// each window length's worth of evaluations).
    #[cold]
    #[inline(never)]
    fn rate_from(&self, first: Birth, last: f64) -> f64 {
        self.extrapolated_from(first, last, true)
    }

    /// `rate()` (`is_rate`) or `increase()` of a failure series born at `first`.
    fn extrapolated_from(&self, first: Birth, last: f64, is_rate: bool) -> f64 {
        let (w, m) = (self.w, self.model);
        prom::rate::extrapolate(
            Sample::new(first.t, first.v),
            Sample::new(w.last_t, last),
            first.intervals,
            last - first.v,
            self.ts - m.window_ms,
            self.ts,
            true,
            is_rate,
            m.semantics,
        )
        .unwrap_or(f64::NAN)
    }

    /// The `rate()` of a counter whose first and last sample in the window are `first`
    /// and `last`.
    #[inline(always)]
    fn rate(&self, first: f64, last: f64) -> f64 {
        match self.fast(first, last) {
            Some(r) => r,
            None => self.exact(first, last),
        }
    }

    /// `delta * factor`, when that is the `rate()` ([`clamp_free`](Self::clamp_free));
    /// anywhere near the boundary this gives None.
    #[inline(always)]
    fn fast(&self, first: f64, last: f64) -> Option<f64> {
        let delta = last - first;
        let fast = self.clamp_free(first, delta).then_some(delta * self.factor);
        debug_assert!(fast.is_none_or(|f| f.to_bits() == self.exact(first, last).to_bits()));
        fast
    }

    /// Whether the `rate()` of a counter whose first sample in the window is `first` and
    /// which increases by `delta` is bit for bit `delta * factor`: unless the counter's zero
    /// clamp shortens the start gap (see [`Window`]). The clamp cannot act when the
    /// counter's extrapolated zero lies at or before the window's start, i.e. when
    /// `sampled * first / delta >= first.t - start` (here with a margin).
    #[inline(always)]
    fn clamp_free(&self, first: f64, delta: f64) -> bool {
        let w = self.w;
        delta <= 0.0 || w.sampled_s * first >= w.gap_s * delta * (1.0 + 1e-9)
    }

    /// `increase()` of the same counter: Prometheus' extrapolation in full, without the
    /// division by the range (so not `rate() * range`, which may differ in the last bit).
    #[inline]
    fn increase(&self, first: f64, last: f64) -> f64 {
        self.extrapolated(first, last, false)
    }

    /// Prometheus' extrapolation in full.
    #[cold]
    #[inline(never)]
    fn exact(&self, first: f64, last: f64) -> f64 {
        self.extrapolated(first, last, true)
    }

    /// `rate()` (`is_rate`) or `increase()` of the counter from `first` to `last` over this
    /// window.
    #[inline(always)]
    fn extrapolated(&self, first: f64, last: f64, is_rate: bool) -> f64 {
        let (w, m) = (self.w, self.model);
        prom::rate::extrapolate(
            Sample::new(w.first_t, first),
            Sample::new(w.last_t, last),
            w.intervals,
            last - first,
            self.ts - m.window_ms,
            self.ts,
            true,
            is_rate,
            m.semantics,
        )
        // Two samples or more always give a value.
        .unwrap_or(f64::NAN)
    }
}
