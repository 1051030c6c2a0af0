//! A readable reference for the lock-step simulator: one trial at a time, in plain loops,
//! keeping every scraped sample of every series and reading them with the Prometheus
//! engine (`crate::prom`'s range selection, `rate` and `histogram_quantile`), as Prometheus
//! would. No batch, no clock, no ring, no `rate()` factor, no shared plans: what [`Clock`]
//! and [`Lanes`] optimise is done here the long way, and the test beside it
//! (`reference/tests.rs`) requires both to produce the same numbers.
//!
//! What it shares with the simulator is the model, not the machinery: [`Model`] (the grid,
//! the shares per phase, the daily cycle, the tracked latency buckets, which spans' CPU
//! some rule can read), [`FaultModel`] (each fault level's kinds of request), the
//! alert-rule semantics, the gate schedule (`sim::outcomes::gates_from`), and the exact
//! samplers of [`draw`] (`plan_span`, `draw_span`) and [`table`](super::table), whose
//! equality with plain inversion and with their probability mass functions is
//! unit-tested there. Those fix which random numbers a trial takes; none of them is what
//! the lanes add (columns of streams, shared span plans, vectorised draws, the window
//! factor, rings, the lane moves). Its stream is `rand`'s own `Xoshiro256PlusPlus`, not
//! [`Streams`](super::Streams).
//!
//! # The order in which a trial draws its random numbers
//!
//! A trial's stream is `Xoshiro256PlusPlus::seed_from_u64(seed)`, `seed` the trial's
//! (`sim::montecarlo::trial_seed`). At each evaluation time `ts` (0, then every
//! evaluation interval, until the release ends; the evaluation at which a failing gate
//! rolls it back, a hold's limit ends it, or its last phase's watch ends, draws nothing),
//! in this order:
//!
//! 1. Under overdispersion, one Gamma variate: the request rate's multiplier until the next
//!    evaluation.
//! 2. The scrape spans up to `ts`'s scrape, oldest first. A span ends at each scrape that
//!    some evaluation's window starts or ends on (with the evaluation interval and the
//!    window whole numbers of scrape intervals; otherwise at every scrape): `rate()` reads
//!    nothing else, so a span's requests are drawn as one count; a span that holds a change
//!    of rate, share or fault level is drawn piece by piece ([`instants`]), each piece as
//!    a span of its own (its CPU noise too; with requests counted per instance, a span is
//!    also cut at a joining instance's first scrape, where the serving instances change).
//!    In each span, the canary, then the stable track (when some rule reads a simulated
//!    stable value), takes (with requests counted per instance, the classes of each
//!    serving instance in turn, each at its equal part of the mean, then their failures:
//!    births instance by instance, or under error clustering part by part, each part's
//!    clusters and then each instance whose birth is pending, then the others' binomials):
//!    - when it counts requests and its rate is positive, each class of the span's
//!      requests ([`draw::plan_span`]: every kind of request, latency cell and failed or
//!      not, in decreasing probability, then the rare kinds together): its Poisson count,
//!      by table inversion (one uniform) for a mean from 1 to 3,000 when the trials share
//!      their means (no overdispersion), else by inversion from 0 below 10 (one uniform;
//!      more in the rare restart) and by PTRS above (pairs of uniforms); then one
//!      uniform per rare request, to classify it; then, when its failure series is created
//!      at its first failure (`exposition.failures_from`) and not yet born, or born at a
//!      scrape still after the piece's start, and the piece has failures: the binomials of
//!      [`birth_in_piece`] (where the first failure falls, or how many fall before the
//!      birth scrape). Under error clustering the kinds leave failures out, and the
//!      piece's failures are drawn from its requests by [`clustered_failures`], over the
//!      parts of the piece between the ends of the track's own clusters and the trial's
//!      shared ones: where the track's own cluster has ended by a part's start, a Gamma
//!      variate (its multiplier) and an exponential one (its length) (none when all of the
//!      clustering is shared; the shared clusters draw from a stream of their own,
//!      `seed ^` the shared salt, in time order whichever track reads them first). While
//!      the failure series' birth may fall in the piece, per part: unless the part ends
//!      the piece, a binomial of the requests left (its share by length); a binomial of its
//!      failures; the binomials of [`birth_in_piece`] for the part. Otherwise one binomial
//!      of the piece's failures at the mean probability over its parts
//!      ([`draw::failures`]: by inversion from 0 on one uniform, more in the rare restart,
//!      when fewer than 10 of the rarer outcome are expected, else by BTPE; none when
//!      certain);
//!    - when it has CPU counters and some evaluation that reads CPU can read the span
//!      ([`Model::reads_cpu_between`]): where more than one instance counts some of the
//!      piece and some of the noise is shared, one standard normal, the track's; then per
//!      instance it runs in the piece's phase that counts some of the piece ([`cpu_part`]:
//!      from its first sample on), in instance order, one standard normal: its busy
//!      seconds' noise ([`cpu_noise`] mixes the two).
//! 3. The gauges the evaluation's rules read, the canary's then the stable track's, each
//!    in the order memory, DB connections, Redis memory: one standard normal each, for
//!    memory and DB connections one per instance of the track at the evaluation's scrape
//!    (`Model::instances`), in instance order.
//! 4. The metric values, the canary's then the stable track's, in metric order: one
//!    standard normal for each custom metric read (also when a `crash` has made it stale).
//!
//! The series of query metrics ([`super::series`]) draw from a stream of their own
//! (`seed ^ SERIES_SALT`), at each evaluation that reads a query metric: the canary's, then
//! the stable track's, in the order that module's header gives.
//!
//! Under births, a failure series' samples are those from its birth scrape on, none below
//! its first sample's value: the only sample inside a span that a window can start on.
//!
//! A `crash` fault's canary has no sample from its first failed scrape on (the first at or
//! after the onset): its `rate()`s read its earlier samples while the window holds two,
//! its gauges and custom metrics are absent, its `targets_up` is 0, and a span ends at its
//! last sample. Its requests are still drawn (all failed: NGINX's 502s, for the blast
//! radius).
//!
//! The rules an evaluation runs, and so what it reads, are the rollback rules, and the
//! gates from their `for` before the phase's end on (`gates_from`, on the trial's own
//! schedule), which includes every evaluation of a held phase. Under a gate policy that
//! holds, a trial walks its own holds (as `sim::evaluator` does): its later phases, and
//! so the share of each span and which evaluations read CPU, move with them.
//!
//! [`Clock`]: super::Clock
//! [`Lanes`]: super::Lanes

mod tests;

use super::clusters::{Cluster, SharedClusters, TrackClusters, clustered_failures};
use super::draw;
use super::drift::Noise;
use super::series::{SeriesLane, SeriesSim};
use super::table::Pool;
use super::{
    BLOCK_MS, Bursts, Exposure, FaultModel, Model, SeriesSet, SyntheticMetric, UNBORN,
    birth_in_piece, cpu_noise, cpu_part, instants,
};
use crate::check::GatePolicy;
use crate::lower::{AlertRule, RuleKind};
use crate::model::AfterMaxHold;
use crate::prom::engine::Bound;
use crate::prom::summation::Agg;
use crate::prom::{self, Bucket, Sample};
use crate::promql::Track;
use crate::sim::evaluator::{Schedule, Verdict, alert_state};
use crate::sim::outcomes::{Progress, gates_from};
use crate::sim::scenario::FaultKind;
use rand::rngs::Xoshiro256PlusPlus;
use rand::{RngExt, SeedableRng};
use rand_distr::{Distribution, StandardNormal};
use std::collections::HashMap;

/// What one trial did.
#[derive(Debug)]
pub struct Trial {
    /// Every evaluation it ran, in time order.
    pub evaluations: Vec<Evaluation>,
    pub verdict: Verdict,
    /// (phase, rule) of every gate that was firing when its phase ended.
    pub gate_failures: Vec<(usize, usize)>,
    /// When a rollback rule ended it during a hold: the hold's start.
    pub cut_short: Option<i64>,
    pub exposure: Exposure,
}

/// The metric values one evaluation computed: those its rules read.
#[derive(Debug)]
pub struct Evaluation {
    pub ts: i64,
    /// (metric, track, value): the canary's in metric order, then the stable track's.
    pub values: Vec<(usize, Track, Option<f64>)>,
}

/// One track of a trial: its counters now, and every sample scraped from them so far.
struct TrackSeries {
    track: Track,
    series: SeriesSet,
    /// Its request counters: one set per instance it may run
    /// ([`Model::request_instances`]), or one for the track.
    counters: Vec<Counters>,
    /// Per instance the track may run, its busy seconds from its first sample on.
    cpu_seconds: Vec<f64>,
    /// Per instance, the scrape of its CPU counter's first sample ([`UNBORN`] until it
    /// runs): scrape 0, or the first scrape after the start of the phase a canary instance
    /// joins in ([`cpu_part`]).
    cpu_joined: Vec<i64>,
    /// Per instance, its CPU counter's samples.
    scraped_cpu: Vec<Vec<Sample>>,
    /// Memory, DB connections and Redis memory at the latest evaluation that read them.
    memory: f64,
    db_connections: f64,
    redis_memory: f64,
    /// Each gauge's drifting noise ([`super::drift`]), by gauge.
    noise: HashMap<Gauge, Noise>,
    /// Under error clustering, its current cluster.
    cluster: Cluster,
}

/// One instance's request counters (or a track's, counted as one), and every sample
/// scraped from them since its first.
struct Counters {
    requests: u64,
    errors: u64,
    /// Requests so far per tracked latency cell (empty without a histogram).
    cells: Vec<u64>,
    /// The scrape of its first sample, every counter at 0 ([`UNBORN`] until it serves):
    /// scrape 0, or a joining instance's first scrape ([`Model::serving`]).
    joined: i64,
    /// One sample per scrape from `joined` on.
    scraped_requests: Vec<Sample>,
    scraped_errors: Vec<Sample>,
    /// The counter of successful requests (requests minus errors).
    scraped_successes: Vec<Sample>,
    /// Per tracked bucket (`Model::les`), its cumulative counter.
    scraped_buckets: Vec<Vec<Sample>>,
    /// Under births (`exposition.failures_from: first_failure`), the failure series' first
    /// sample: (scrape, value), the scrape [`UNBORN`] until the first failure. Its samples
    /// are then `scraped_errors` from that scrape on, none lower than that value (inside
    /// the span that holds the birth, the plateau is at the birth's value).
    born: (i64, u64),
}

impl Counters {
    fn new(cells: usize) -> Counters {
        Counters {
            requests: 0,
            errors: 0,
            cells: vec![0; cells],
            joined: UNBORN,
            scraped_requests: Vec::new(),
            scraped_errors: Vec::new(),
            scraped_successes: Vec::new(),
            scraped_buckets: vec![Vec::new(); cells],
            born: (UNBORN, 0),
        }
    }

    fn forget_samples(&mut self) {
        self.scraped_requests.clear();
        self.scraped_errors.clear();
        self.scraped_successes.clear();
        for b in &mut self.scraped_buckets {
            b.clear();
        }
    }

    /// Records its counters as scraped at `t`.
    fn scrape(&mut self, t: i64, requests: bool) {
        if requests {
            self.scraped_requests
                .push(Sample::new(t, self.requests as f64));
            self.scraped_errors.push(Sample::new(t, self.errors as f64));
            self.scraped_successes
                .push(Sample::new(t, (self.requests - self.errors) as f64));
        }
        let mut cumulative = 0;
        for (bucket, &cell) in self.scraped_buckets.iter_mut().zip(&self.cells) {
            cumulative += cell;
            bucket.push(Sample::new(t, cumulative as f64));
        }
    }
}

/// A gauge whose noise drifts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Gauge {
    /// Memory of instance `i`.
    Memory(usize),
    /// DB connections of instance `i`.
    DbConnections(usize),
    Redis,
    /// Custom metric `mi`.
    Custom(usize),
}

impl TrackSeries {
    /// A track whose first scrape (scrape 0), every counter at 0, is at `first_scrape`,
    /// running `running` of its `instances` then, `serving` of its `counters` sets of
    /// request counters.
    fn new(
        (track, series): (Track, SeriesSet),
        buckets: usize,
        first_scrape: i64,
        (running, instances): (usize, usize),
        (serving, counters): (usize, usize),
    ) -> TrackSeries {
        let cells = if series.latency { buckets } else { 0 };
        let mut t = TrackSeries {
            track,
            series,
            counters: (0..counters).map(|_| Counters::new(cells)).collect(),
            cpu_seconds: vec![0.0; instances],
            cpu_joined: vec![UNBORN; instances],
            scraped_cpu: vec![Vec::new(); instances],
            memory: 0.0,
            db_connections: 0.0,
            redis_memory: 0.0,
            noise: HashMap::new(),
            cluster: Cluster::NONE,
        };
        t.scrape((0, first_scrape), (running, serving));
        t
    }

    /// Drops every sample scraped so far.
    fn forget_samples(&mut self) {
        for c in &mut self.counters {
            c.forget_samples();
        }
        for s in &mut self.scraped_cpu {
            s.clear();
        }
    }

    /// Records every counter the track produces as scraped at scrape `j`, at `t`, where it
    /// runs `running` instances and `serving` sets of request counters (those not yet
    /// running join: their counters' first sample, 0).
    fn scrape(&mut self, (j, t): (i64, i64), (running, serving): (usize, usize)) {
        for c in &mut self.counters[..serving] {
            if c.joined == UNBORN {
                c.joined = j;
            }
        }
        for c in self.counters.iter_mut().filter(|c| c.joined <= j) {
            c.scrape(t, self.series.requests);
        }
        if self.series.cpu {
            for k in 0..running {
                if self.cpu_joined[k] == UNBORN {
                    self.cpu_joined[k] = j;
                }
            }
            for ((s, &v), &from) in self
                .scraped_cpu
                .iter_mut()
                .zip(&self.cpu_seconds)
                .zip(&self.cpu_joined)
            {
                if from <= j {
                    s.push(Sample::new(t, v));
                }
            }
        }
    }
}

/// Simulates one trial, seeded with `seed`, of the scenario whose faults are `faults`.
pub fn run_trial(
    model: &Model<'_>,
    faults: &FaultModel<'_>,
    rules: &[AlertRule],
    seed: u64,
) -> Trial {
    Reference::new(model, faults, rules, seed).run()
}

/// A trial in progress.
struct Reference<'r, 'a> {
    model: &'r Model<'a>,
    faults: &'r FaultModel<'r>,
    rules: &'r [AlertRule],
    /// The release's course as this trial's holds have moved it.
    schedule: Schedule,
    /// Per phase, from when it runs its gates (`sim::outcomes::gates_from`).
    gates_from: Vec<i64>,
    rng: Xoshiro256PlusPlus,
    /// Whether a span ends at scrape `j` (see the module header).
    span_ends: Vec<bool>,
    /// The canary, then the stable track if it is simulated.
    tracks: Vec<TrackSeries>,
    exposure: Exposure,
    /// The inversion tables of the means drawn recently, when the trials of a batch would
    /// share them (no overdispersion).
    pool: Pool,
    /// The latest scrape drawn up to, and the one its span started at.
    scraped: i64,
    span_start: i64,
    /// Requests are drawn up to here: the latest evaluation, or a scrape after it.
    drawn_to: i64,
    /// The query metrics' series, and their queries.
    series: Option<SeriesLane>,
    /// Under error clustering with a shared part, the trial's shared clusters.
    shared: Option<SharedClusters>,
    bounds: Vec<[Bound; 2]>,
}

impl<'r, 'a> Reference<'r, 'a> {
    fn new(
        model: &'r Model<'a>,
        faults: &'r FaultModel<'r>,
        rules: &'r [AlertRule],
        seed: u64,
    ) -> Self {
        // Which series each track produces: the canary counts its requests and failures
        // whenever some scenario of the run has a fault (for the blast radius), so that a
        // faulty trial and its healthy twin draw alike.
        let canary = SeriesSet {
            requests: model.canary_series.requests || model.counts_exposure,
            errors: model.canary_series.errors || model.counts_exposure,
            ..model.canary_series
        };
        let buckets = model.les.len();
        let first = model.scrape_time(0);
        let instances = |track| (model.instances(track, 0), model.max_instances());
        let counters = |track| (model.request_instances(track, 0), model.request_sets(track));
        let mut canary = TrackSeries::new(
            (Track::Canary, canary),
            buckets,
            first,
            instances(Track::Canary),
            counters(Track::Canary),
        );
        if faults.down_from == Some(0) {
            // Crashed from the start: not even the first scrape succeeds.
            canary.forget_samples();
        }
        let mut tracks = vec![canary];
        if let Some(stable) = model.stable_series {
            tracks.push(TrackSeries::new(
                (Track::Stable, stable),
                buckets,
                first,
                instances(Track::Stable),
                counters(Track::Stable),
            ));
        }
        let schedule = model.schedule.clone();
        let mut span_ends = span_ends(model, schedule.latest_end());
        // A crashed canary's last sample ends a span: its windows end there.
        if let Some(e) = faults
            .last_sample()
            .filter(|&l| l > 0)
            .and_then(|l| span_ends.get_mut(l as usize))
        {
            *e = true;
        }
        let clustered = tracks.iter().filter(|t| t.series.errors).map(|t| t.track);
        let shared = model
            .clustering
            .as_ref()
            .and_then(|c| c.shared(seed, clustered));
        Reference {
            model,
            faults,
            rules,
            gates_from: gates_from(rules, &schedule, model.eval_ms),
            schedule,
            rng: Xoshiro256PlusPlus::seed_from_u64(seed),
            span_ends,
            tracks,
            exposure: Exposure::default(),
            pool: Pool::default(),
            scraped: 0,
            span_start: 0,
            drawn_to: 0,
            series: model.series.as_ref().map(|sim| sim.lane(seed)),
            shared,
            bounds: model.series.as_ref().map_or(Vec::new(), SeriesSim::bounds),
        }
    }

    fn run(mut self) -> Trial {
        let (m, rules) = (self.model, self.rules);
        let mut alerts: Vec<_> = rules.iter().map(alert_state).collect();
        let mut gate_failures = Vec::new();
        let mut evaluations = Vec::new();
        let mut phase = 0;
        // When the running phase's hold began, while it is held.
        let mut held_since: Option<i64> = None;
        let mut cut_short = None;
        let mut ts = 0;
        let verdict = 'trial: loop {
            // The running phase's end (several may end before one evaluation): its gates,
            // on their state after the evaluation before, decide whether the release
            // advances (every alert starts over), holds or rolls back. A held phase checks
            // them at every evaluation; the next phase starts at the latest evaluation,
            // at which they passed.
            loop {
                let end = self.schedule.end_of(phase);
                if held_since.is_none() && ts < end {
                    break;
                }
                if held_since.is_none() && self.schedule.is_last(phase) {
                    break 'trial Verdict::Completed {
                        ts: end,
                        full_at: self.schedule.starts[phase],
                    };
                }
                let mut failing = None;
                for (i, (rule, alert)) in rules.iter().zip(&alerts).enumerate() {
                    if rule.kind == RuleKind::Gate && alert.status().is_firing() {
                        if held_since.is_none() {
                            gate_failures.push((phase, i));
                        }
                        failing.get_or_insert(i);
                    }
                }
                let Some(rule) = failing else {
                    let next = match held_since {
                        Some(_) => (ts - m.eval_ms).max(end),
                        None => end,
                    };
                    phase += 1;
                    held_since = None;
                    self.schedule.resume(phase, next);
                    for (alert, rule) in alerts.iter_mut().zip(rules) {
                        *alert = alert_state(rule);
                    }
                    continue;
                };
                let rolled_back = Verdict::RolledBack { ts, phase, rule };
                match self.schedule.gate_policy {
                    GatePolicy::Rollback => break 'trial rolled_back,
                    GatePolicy::Hold { max, then } => {
                        let since = *held_since.get_or_insert(ts);
                        self.schedule.hold(phase);
                        if ts - since < max.millis() as i64 {
                            break;
                        }
                        break 'trial match then {
                            AfterMaxHold::Rollback => rolled_back,
                            AfterMaxHold::Stay => Verdict::Held { ts, phase },
                        };
                    }
                }
            }
            // When each phase runs its gates, as its holds have moved them.
            self.gates_from = gates_from(rules, &self.schedule, m.eval_ms);
            let running: Vec<usize> = (0..rules.len())
                .filter(|&i| match rules[i].kind {
                    RuleKind::Rollback => true,
                    RuleKind::Gate => ts >= self.gates_from[phase],
                    RuleKind::NoData => false,
                })
                .collect();
            let values = self.evaluate(ts, &running);
            let mut rolled_back = None;
            for &i in &running {
                let rule = &rules[i];
                let value = |track| {
                    values
                        .iter()
                        .find(|&&(mi, t, _)| mi == rule.metric && t == track)
                        .and_then(|&(_, _, v)| v)
                };
                let count = rule.guard.and_then(|g| {
                    values
                        .iter()
                        .find(|&&(mi, t, _)| mi == g.count && t == Track::Canary)
                        .and_then(|&(_, _, v)| v)
                });
                let holds = rule.runs_in(phase)
                    && rule
                        .condition
                        .holds(value(Track::Canary), value(Track::Stable))
                    && rule.guard_passes(count);
                let status = alerts[i].step(ts, holds);
                if rule.kind == RuleKind::Rollback && status.is_firing() && rolled_back.is_none() {
                    rolled_back = Some(Verdict::RolledBack { ts, phase, rule: i });
                }
            }
            evaluations.push(Evaluation { ts, values });
            if let Some(v) = rolled_back {
                cut_short = held_since;
                break v;
            }
            ts += m.eval_ms;
        };
        Trial {
            evaluations,
            verdict,
            gate_failures,
            cut_short,
            exposure: self.exposure,
        }
    }

    /// Draws everything up to `ts` and returns the values of the metrics the `running`
    /// rules read.
    fn evaluate(&mut self, ts: i64, running: &[usize]) -> Vec<(usize, Track, Option<f64>)> {
        let m = self.model;
        let burst = match &m.bursts {
            Bursts::Gamma(gamma) => gamma.sample(&mut self.rng),
            Bursts::Steady => 1.0,
        };
        // A table depends on its mean alone, and means recur within a block of the daily
        // cycle: the tables are kept that long.
        if ts % BLOCK_MS == 0 {
            self.pool.clear();
        }
        for j in self.scraped + 1..=m.last_scrape(ts) {
            if self.span_ends[j as usize] {
                let span = (m.scrape_time(self.span_start), m.scrape_time(j));
                self.draw_span((self.drawn_to, span.1), span, burst);
                self.drawn_to = span.1;
                self.span_start = j;
            }
            // Inside a span the counters keep the value they had at its start: no window
            // starts or ends there, so no `rate()` reads those samples' values. A crashed
            // canary's scrapes fail: it has no sample from then on.
            let down = self.faults.down_from.is_some_and(|d| j >= d);
            let phase = self.schedule.scraped_phase(m.scrape_time(j));
            for t in &mut self.tracks {
                if !(down && t.track == Track::Canary) {
                    let serving = m.request_instances(t.track, phase);
                    t.scrape(
                        (j, m.scrape_time(j)),
                        (m.instances(t.track, phase), serving),
                    );
                }
            }
            self.scraped = j;
        }
        // The requests between the latest scrape and the evaluation (scrapes offset from
        // evaluations), in a run that has a fault: drawn now, so that a rollback here counts
        // them in the blast radius, and recorded at the next scrape.
        if self.drawn_to < ts && m.counts_exposure {
            let from = self.span_start;
            let span = (m.scrape_time(from), m.scrape_time(from + 1));
            self.draw_span((self.drawn_to, ts), span, burst);
            self.drawn_to = ts;
        }
        // What the running rules read: per track, the metrics in order (the stable track's
        // only where a rule compares with it).
        let reads: Vec<Vec<usize>> = self
            .tracks
            .iter()
            .map(|t| {
                (0..m.sources.len())
                    .filter(|&mi| running.iter().any(|&i| self.rules[i].reads(mi)))
                    .filter(|&mi| t.track == Track::Canary || m.stable_needed[mi])
                    .collect()
            })
            .collect();
        self.draw_gauges(ts, burst, &reads);
        if let (Some(sim), Some(lane)) = (&m.series, self.series.as_mut()) {
            for (t, read) in self.tracks.iter().zip(&reads) {
                if read
                    .iter()
                    .any(|&mi| matches!(m.sources[mi], SyntheticMetric::Query { .. }))
                {
                    let at = (t.track, lane.done(t.track));
                    let plan = sim.plan((m, self.faults), &self.schedule, at, ts);
                    sim.advance(self.faults, lane, &plan);
                }
            }
        }
        let mut values = Vec::new();
        for (ti, read) in reads.iter().enumerate() {
            for &mi in read {
                let v = self.value(ti, mi, ts, burst);
                values.push((mi, self.tracks[ti].track, v));
            }
        }
        values
    }

    /// Draws the requests and CPU seconds of every track from `t0` to `t1` (the span of
    /// scrapes from `from` to `to`, or its part up to or from an evaluation between them),
    /// the whole service's request rate multiplied by `burst`: piece by piece where a
    /// parameter changes inside it ([`instants`]).
    fn draw_span(&mut self, (t0, t1): (i64, i64), (from, to): (i64, i64), burst: f64) {
        let m = self.model;
        let progress = Progress {
            schedule: &self.schedule,
            gates_from: &self.gates_from,
        };
        // Which evaluations can read the busy seconds: those of the scrape span `from` to
        // `to` this is (part of).
        let cpu_read = m.reads_cpu_between(to, from + m.window_ms, progress);
        let mut cuts = Vec::new();
        instants::pieces(
            (t0, t1),
            (m, self.faults.cuts_spans(), &self.schedule),
            |a, b| cuts.push((a, b)),
        );
        for (a, b) in cuts {
            self.draw_piece(a, b, burst, cpu_read);
        }
    }

    /// Draws one piece of a span: its parameters are those at its middle.
    fn draw_piece(&mut self, t0: i64, t1: i64, burst: f64, cpu_read: bool) {
        let (m, faults) = (self.model, self.faults);
        let base = &m.scenarios.baseline;
        let mid = (t0 + t1) / 2;
        let seconds = (t1 - t0) as f64 / 1000.0;
        let phase = self.schedule.phase_at(mid);
        let share = m.canary_share[phase];
        let rps = m.total_rps(mid) * burst;
        let level = faults.level_at(mid, rps * share);
        let intensity = faults.intensity(level);
        // When the fault first shows: its onset, or for a `load` fault the start of the
        // first span in which the canary's load is over the limit.
        if self.exposure.first_active.is_none() {
            self.exposure.first_active = faults.fault.and_then(|f| match f.kind {
                FaultKind::Load { .. } => (intensity > 0.0).then_some(t0),
                _ => (t1 > f.onset_ms).then_some(f.onset_ms),
            });
        }
        let canary_cpu = match faults.fault.filter(|_| intensity > 0.0) {
            Some(f) => f.cpu_usage.map_or(base.cpu.mean, |target| {
                base.cpu.mean + intensity * f.affected() * (target - base.cpu.mean)
            }),
            None => base.cpu.mean,
        };
        let shared = matches!(m.bursts, Bursts::Steady);
        let mut plan = Vec::new();
        for t in &mut self.tracks {
            let canary = t.track == Track::Canary;
            let track_rps = if canary {
                rps * share
            } else {
                rps * (1.0 - share)
            };
            if t.series.requests && track_rps > 0.0 {
                // Each serving instance an equal part of the track's requests, in order:
                // every instance's kinds of request, then their failures.
                let mix = faults.mix(t.track, level);
                let serving = m.serving(t.track, t0, &self.schedule);
                let counters = &mut t.counters[..serving];
                plan.clear();
                let mu = track_rps * seconds / serving as f64;
                draw::plan_span(&mut plan, mu, mix, shared.then_some(&mut self.pool));
                let (mut n, mut failed) = (vec![0; serving], vec![0; serving]);
                for (i, c) in counters.iter_mut().enumerate() {
                    (n[i], failed[i]) =
                        draw::draw_span(&mut self.rng, &plan, mix, &self.pool, &mut c.cells);
                }
                let mut born: Vec<_> = counters.iter().map(|c| c.born).collect();
                match m.clustering.as_ref().filter(|_| t.series.errors) {
                    Some(c) => {
                        let p_at = |g| faults.clustered_fail(t.track, level, g);
                        let clusters = TrackClusters {
                            own: &mut t.cluster,
                            shared: self.shared.as_mut().map(|s| (s, t.track)),
                        };
                        clustered_failures(
                            c,
                            &mut self.rng,
                            (t0, t1),
                            (&n, &mut failed),
                            (clusters, p_at),
                            m.births.then_some((m, &mut born[..])),
                        );
                    }
                    None if m.births && t.series.errors => {
                        for (&f, born) in failed.iter().zip(&mut born) {
                            birth_in_piece(m, &mut self.rng, (t0, t1), f, born);
                        }
                    }
                    None => {}
                }
                for (i, c) in counters.iter_mut().enumerate() {
                    c.requests += n[i];
                    c.errors += failed[i];
                    c.born = born[i];
                    if canary && self.exposure.first_active.is_some_and(|a| mid >= a) {
                        self.exposure.requests += n[i];
                        self.exposure.failed += failed[i];
                    }
                }
            }
            if t.series.cpu {
                // Each instance running, from its first sample: one not yet scraped joins
                // at the first scrape after this piece's start (the piece starts its phase).
                let mean = if canary { canary_cpu } else { base.cpu.mean };
                let running = m.instances(t.track, phase);
                for j in &mut t.cpu_joined[..running] {
                    // Also where no scrape records it (a crashed canary's).
                    if *j == UNBORN {
                        *j = m.scrape_after(t0);
                    }
                }
                let parts: Vec<Option<f64>> = (t.cpu_joined[..running].iter())
                    .map(|&j| cpu_part(m, (t0, t1), j))
                    .collect();
                let counting = parts.iter().flatten().count();
                let shared = base.cpu_shared;
                let z0 = (cpu_read && counting > 1 && shared > 0.0)
                    .then(|| self.rng.sample::<f64, _>(StandardNormal));
                for (k, seconds) in parts.into_iter().enumerate() {
                    let Some(seconds) = seconds else { continue };
                    t.cpu_seconds[k] += if cpu_read {
                        let z: f64 = self.rng.sample(StandardNormal);
                        let noise = cpu_noise(shared, z0, z);
                        (mean + base.cpu.noise * noise).max(0.0) * seconds
                    } else {
                        mean * seconds
                    };
                }
            }
        }
    }

    /// Draws the gauges at `ts` that `reads` (per track, the metrics read) reads.
    fn draw_gauges(&mut self, ts: i64, burst: f64, reads: &[Vec<usize>]) {
        let m = self.model;
        let base = &m.scenarios.baseline;
        let share = m.canary_share[self.schedule.phase_at(ts)];
        let scrape = m.scrape_time(m.last_scrape(ts));
        // The gauges are the scrape's: the fault as it was then.
        let intensity = self.faults.at(scrape, m.total_rps(ts) * burst * share);
        for (t, read) in self.tracks.iter_mut().zip(reads) {
            let reads = |source| read.iter().any(|&mi| m.sources[mi] == source);
            let lift = match self.faults.fault {
                Some(f) if t.track == Track::Canary && intensity > 0.0 => {
                    f.memory_usage.map_or(0.0, |target| {
                        intensity * f.affected() * (target - base.memory.mean)
                    })
                }
                _ => 0.0,
            };
            let mut noise = |gauge: Gauge, tau: i64| {
                let z: f64 = self.rng.sample(StandardNormal);
                let n = t.noise.entry(gauge).or_insert(Noise::FRESH);
                n.at(scrape, tau, z)
            };
            let (mem, db, redis) = (&base.memory, &base.db_connections, &base.redis_memory);
            // The track's instances at the scrape, each with its own noise: memory is
            // their max, DB connections their sum.
            let instances = m.instances(t.track, self.schedule.scraped_phase(scrape));
            if reads(SyntheticMetric::Memory) {
                let mut max = f64::NEG_INFINITY;
                for i in 0..instances {
                    let x = noise(Gauge::Memory(i), mem.time_constant_ms);
                    max = max.max(mem.mean + lift + mem.noise * x);
                }
                t.memory = max;
            }
            if reads(SyntheticMetric::DbConnections) {
                let mut sum = 0.0;
                for i in 0..instances {
                    let x = noise(Gauge::DbConnections(i), db.time_constant_ms);
                    sum += (db.mean + db.noise * x).max(0.0).round();
                }
                t.db_connections = sum;
            }
            if reads(SyntheticMetric::Redis) {
                let x = noise(Gauge::Redis, redis.time_constant_ms);
                t.redis_memory = redis.mean + redis.noise * x;
            }
        }
    }

    /// The value at `ts` of metric `mi` on track `ti`, the request rate multiplied by
    /// `burst`. A crashed canary's targets are down: its `up` is 0 and its instant series
    /// (gauges, custom metrics) are stale, while its `rate()`s read what it was scraped for
    /// before.
    fn value(&mut self, ti: usize, mi: usize, ts: i64, burst: f64) -> Option<f64> {
        let source = self.model.sources[mi];
        let down = self.tracks[ti].track == Track::Canary && self.faults.down_at(ts, self.model);
        let v = self.scraped_value(ti, mi, ts, burst);
        match source {
            // `sum(up)`: the track's instances at the scrape, none once crashed.
            SyntheticMetric::Up => Some(if down {
                0.0
            } else {
                let m = self.model;
                let phase = self
                    .schedule
                    .scraped_phase(m.scrape_time(m.last_scrape(ts)));
                m.instances(self.tracks[ti].track, phase) as f64
            }),
            SyntheticMetric::Memory
            | SyntheticMetric::DbConnections
            | SyntheticMetric::Redis
            | SyntheticMetric::Custom { .. }
                if down =>
            {
                None
            }
            _ => v,
        }
    }

    /// The value at `ts` of metric `mi` on track `ti`, from its samples.
    fn scraped_value(&mut self, ti: usize, mi: usize, ts: i64, burst: f64) -> Option<f64> {
        let m = self.model;
        let source = m.sources[mi];
        if let (SyntheticMetric::Query { slot, .. }, Some(lane)) = (source, &mut self.series) {
            let track = self.tracks[ti].track;
            return SeriesSim::value(&mut self.bounds, (slot, mi, track), lane, ts, m.semantics);
        }
        let t = &self.tracks[ti];
        let (range, semantics) = (m.window_ms, m.semantics);
        let rate = |window: &[Sample]| prom::rate(window, ts, range, semantics);
        let increase = |window: &[Sample]| prom::rate::increase(window, ts, range, semantics);
        // `sum()` over the series with a value (none: no value), in Prometheus' order.
        let sum = |values: &mut dyn Iterator<Item = Option<f64>>| {
            let mut agg = Agg::default();
            for v in values.flatten() {
                agg.add_sum(v, semantics);
            }
            agg.sum()
        };
        // Each set of counters' range vectors, from its first sample on; its failure
        // series', under births, from its first failure's scrape on (none before).
        let errors: Vec<Vec<Sample>> = (t.counters.iter())
            .map(|c| match c.born {
                _ if !m.births => self.window(&c.scraped_errors, ts, Some(c.joined)).to_vec(),
                (UNBORN, _) => Vec::new(),
                (b, v) => {
                    let from = c.scraped_errors.partition_point(|s| m.last_scrape(s.t) < b);
                    self.window(&c.scraped_errors[from..], ts, Some(b))
                        .iter()
                        .map(|s| Sample::new(s.t, s.v.max(v as f64)))
                        .collect()
                }
            })
            .collect();
        let successes =
            || (t.counters.iter()).map(|c| self.window(&c.scraped_successes, ts, Some(c.joined)));
        let errors_rate = sum(&mut errors.iter().map(|w| rate(w)));
        let ok_rate = sum(&mut successes().map(rate));
        // `sum(rate(http_requests_total[..]))`: per code, the answered requests' counters
        // and then the failed ones' (by their labels, `code` first), each extrapolated on
        // its own (a series without two samples in the window adds nothing); else each
        // instance's one counter.
        let all_codes = || {
            if m.scenarios.exposition.per_code {
                let ok = successes().map(rate);
                sum(&mut ok.chain(errors.iter().map(|w| rate(w))))
            } else {
                sum(&mut (t.counters.iter())
                    .map(|c| rate(self.window(&c.scraped_requests, ts, Some(c.joined)))))
            }
        };
        match source {
            // `(sum(rate(5xx)) or vector(0)) / sum(rate(all))`: no failure series is none
            // failed yet.
            SyntheticMetric::ErrorRate => {
                prom::ratio(Some(errors_rate.unwrap_or(0.0)), all_codes())
            }
            SyntheticMetric::Availability => prom::ratio(ok_rate, all_codes()),
            SyntheticMetric::Throughput => all_codes(),
            SyntheticMetric::Requests { by_code: true } => {
                let ok = successes().map(increase);
                sum(&mut ok.chain(errors.iter().map(|w| increase(w))))
            }
            SyntheticMetric::Requests { by_code: false } => sum(&mut (t.counters.iter())
                .map(|c| increase(self.window(&c.scraped_requests, ts, Some(c.joined))))),
            // `avg(rate())` over the instances, each read from its first sample on.
            SyntheticMetric::Cpu => {
                let mut avg = Agg::default();
                for (samples, &from) in t.scraped_cpu.iter().zip(&t.cpu_joined) {
                    let window = self.window(samples, ts, Some(from));
                    if let Some(r) = prom::rate(window, ts, m.window_ms, m.semantics) {
                        avg.add_avg(r, m.semantics);
                    }
                }
                avg.avg(m.semantics)
            }
            // `histogram_quantile(q, sum by (le) (rate(..._bucket[..])))`: per bound, the
            // instances' buckets added up (an instance's buckets have their samples alike).
            SyntheticMetric::Latency { q, scale } => {
                let mut buckets = Vec::new();
                for (i, &le) in self.model.les.iter().enumerate() {
                    let mut per_instance = (t.counters.iter())
                        .map(|c| rate(self.window(&c.scraped_buckets[i], ts, Some(c.joined))));
                    buckets.push(Bucket::new(le, sum(&mut per_instance)?));
                }
                Some(prom::histogram_quantile(q, &mut buckets, self.model.semantics) * scale)
            }
            SyntheticMetric::Memory => Some(t.memory),
            SyntheticMetric::DbConnections => Some(t.db_connections),
            SyntheticMetric::Redis => Some(t.redis_memory),
            SyntheticMetric::Custom {
                mean,
                noise,
                max,
                time_constant_ms,
            } => {
                let fresh: f64 = self.rng.sample(StandardNormal);
                let scrape = m.scrape_time(m.last_scrape(ts));
                let z = self.tracks[ti]
                    .noise
                    .entry(Gauge::Custom(mi))
                    .or_insert(Noise::FRESH)
                    .at(scrape, time_constant_ms, fresh);
                let share = m.canary_share[self.schedule.phase_at(ts)];
                let intensity = self.faults.at(scrape, m.total_rps(ts) * burst * share);
                let track = self.tracks[ti].track;
                Some(
                    self.faults
                        .custom_value(mi, track, intensity, (mean, noise, max), z),
                )
            }
            SyntheticMetric::Query { .. } | SyntheticMetric::Up | SyntheticMetric::Absent => None,
        }
    }

    /// The range vector at `ts` of the counter whose samples are `samples`.
    fn window<'s>(&self, samples: &'s [Sample], ts: i64, birth: Option<i64>) -> &'s [Sample] {
        let m = self.model;
        let window = prom::select::select_range(samples, ts, m.window_ms, m.semantics);
        // Only drawn samples can start or end a window (else the plateaus inside spans
        // would be read), and a failure series' first sample (scrape `birth`).
        for s in [window.first(), window.last()].into_iter().flatten() {
            let j = m.last_scrape(s.t);
            assert!(
                self.span_ends[j as usize] || Some(j) == birth,
                "the window at {ts} reads the undrawn sample at {}",
                s.t
            );
        }
        window
    }
}

/// Per scrape index, whether a span ends there: the scrapes on which the window of some
/// evaluation up to `promotion` (and beyond, for the spans drawn before it) starts or ends,
/// as Prometheus' range selection finds them; every scrape when the evaluations' windows
/// do not fall on the same scrapes each time (an evaluation interval or a window that is
/// not a whole number of scrape intervals), as the lanes then draw them all.
fn span_ends(model: &Model<'_>, end: i64) -> Vec<bool> {
    let (scrape, eval, window) = (model.scrape_ms, model.eval_ms, model.window_ms);
    let last = (end + window + eval).div_euclid(scrape) + 1;
    if eval % scrape != 0 || window % scrape != 0 {
        return vec![true; last as usize + 1];
    }
    let grid: Vec<Sample> = (0..=last)
        .map(|j| Sample::new(model.scrape_time(j), 0.0))
        .collect();
    let mut ends = vec![false; grid.len()];
    for ts in (0..=end + window).step_by(eval as usize) {
        let read = prom::select::select_range(&grid, ts, window, model.semantics);
        for s in [read.first(), read.last()].into_iter().flatten() {
            ends[model.last_scrape(s.t) as usize] = true;
        }
    }
    ends
}
