//! Synthetic traffic for Monte Carlo trials, scraped and evaluated with Prometheus'
//! semantics.
//!
//! Each track's request counters (per status code) are one series per instance
//! (`exposition.request_counters: per_instance`, the default), each serving an equal part
//! of the track's requests from its first scrape on ([`Model::serving`]), added up by the
//! rules' sums, or with `per_track` one series; its memory and DB connection gauges, CPU
//! counters and scrape targets are one per instance (`exposition.instances`:
//! [`Model::instances`]). Requests arrive as a Poisson process whose rate follows a daily
//! cycle in ten-minute steps ([`BLOCK_MS`]; optionally Gamma-overdispersed per evaluation
//! interval); the canary receives the phase's share plus
//! its targeted groups' share; each request fails independently with the error rate, or
//! under error clustering with the error rate times a multiplier of mean 1 per trial and
//! track, a jump process partly shared by the two tracks ([`clusters`]; capped at 1;
//! bursty errors, a Cox process);
//! latencies come from a lognormal body with a heavy tail and are recorded into the
//! histogram buckets (a multinomial split of the requests); CPU is a counter of busy
//! seconds per instance (advanced by its mean where no rule can read it; an instance
//! joining with its phase counts from its first scrape, [`cpu_part`]), averaged as
//! `avg(rate())`; the other gauges drift around
//! their level as Ornstein-Uhlenbeck processes ([`drift`]), drawn at the scrape of each
//! evaluation that reads them. Counters start at 0 at the start of the release, except
//! that per status code a track's failure counter (`code="500"`) is by default created by
//! its first failure, as client libraries do (`exposition.failures_from`): its first
//! sample is at the first scrape after that failure and already holds the failures counted
//! by then ([`birth_in_piece`]), and until it has two samples in a window its `rate()` has
//! no value: a sum over codes is then the answered requests', and the error ratio
//! `(sum(rate(5xx)) or vector(0)) / sum(rate(all))` as the plan renders it is 0.
//!
//! Speed without approximation:
//! - `rate()` only reads the first and last sample of each window (synthetic counters never
//!   reset), so counts are drawn only for the spans between the scrapes that some window
//!   starts or ends on (two per evaluation with the default 15s/1m/5m grid), and the number
//!   of samples in a window, which the extrapolation needs, follows from the scrape grid.
//!   The values are then exactly what Prometheus computes from the full scrape series.
//! - Only what some rule reads is drawn: the stable track only when a rule compares with a
//!   stable value that is simulated, latency buckets only when a rule reads a quantile,
//!   each gauge only when a rule reads it. Of the latency buckets, only those around the
//!   rules' thresholds are tracked ([`coarse`]): every comparison comes out as on the
//!   full histogram.
//! - Counts use the exact samplers of [`draw`]. A track's requests split into kinds
//!   (latency cell, failed or not) whose counts are independent Poisson draws (the request
//!   stream thinned by each kind's probability, prepared once per scenario and fault level
//!   in [`FaultModel`]): the same joint law as a Poisson total split by a multinomial with
//!   binomial failures, for a fraction of the cost. A span's rarest kinds share one count,
//!   classified request by request ([`draw::Mix`]). Under error clustering the kinds
//!   leave failures out (their means stay the batch's, and so do their tables) and each
//!   trial's failures are drawn from its span's requests at its own rate, a binomial per
//!   cluster the span meets ([`clustered_failures`](clusters::clustered_failures)).
//! - A scenario's trials run in lock-step batches ([`Clock`]): what depends only on the
//!   time (the spans to draw, their means, the windows' grid) is worked out once per
//!   evaluation for the whole batch, and a mean the batch shares is drawn from one
//!   inversion table ([`table`]). The trials are the lanes of [`Lanes`]: each stage of an
//!   evaluation runs as one loop over them. Each trial keeps its own random stream, so its
//!   numbers do not depend on the rest of its batch.
//! - An evaluation computes only the values its rules read ([`Demand`]): a Monte Carlo
//!   trial's gates run only near the end of each phase (and while it is held), so most
//!   evaluations compute only what the rollback rules read (a gauge's drift is drawn
//!   exactly over any gap between two reads). Likewise
//!   CPU, a counter read only through its windows, is drawn only in the spans such a window
//!   can cover ([`Model::reads_cpu_between`]).
//! - The samples a window may still need live in a fixed ring buffer; nothing is allocated
//!   per evaluation.
//!
//! Modelling choices worth knowing: a `leak` fault grows in equal steps, one per evaluation
//! interval (at most 4,096 steps over its ramp), so its latency distribution can be
//! prepared in advance; every other fault is either off or at full intensity. A fault's
//! changes (onset, a burst's edges, a leak's steps), phase starts and the daily cycle's
//! steps take effect at their exact instants, between scrapes too ([`instants`]).

mod clock;
mod clusters;
mod coarse;
pub(crate) mod draw;
mod drift;
mod instants;
mod lanes;
#[cfg(test)]
mod reference;
mod series;
mod streams;
mod table;

use crate::check::{Builtin, CheckedPlan};
use crate::limits::{MAX_GAUGE_VALUE, MAX_REQUESTS_PER_SECOND, MAX_SCENARIOS};
use crate::lower::{AlertRule, Condition, Rhs, RuleKind};
use crate::prom::Semantics;
use crate::promql::{MetricExpr, Track};
use crate::sim::evaluator::{Schedule, UNKNOWN};
use crate::sim::outcomes::Progress;
use crate::sim::scenario::{Fault, FaultKind, Scenarios};
pub(crate) use clock::{Clock, Plans};
pub(crate) use clusters::Clustering;
use draw::Mix;
pub(crate) use instants::Faults;
pub(crate) use lanes::Lanes;
use rand_distr::Gamma;
pub(crate) use series::QueryFailure;
use statrs::function::erf::erfc;
pub(crate) use streams::Streams;

/// How one plan metric is produced in a synthetic trial.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum SyntheticMetric {
    ErrorRate,
    Availability,
    Throughput,
    Latency {
        q: f64,
        scale: f64,
    },
    Cpu,
    Memory,
    DbConnections,
    Redis,
    /// A custom metric with a stated healthy level: `mean + noise · x` at each scrape, `x`
    /// its drifting noise ([`drift`]; moved on the canary by a fault that names it), kept
    /// within `0..=max` (1 for a ratio).
    Custom {
        mean: f64,
        noise: f64,
        max: f64,
        time_constant_ms: i64,
    },
    /// A custom metric computed by its own query from simulated series
    /// ([`series`]): query `slot` of [`series::SeriesSim`], reading the series models in
    /// the bit set `reads` (and their ancestors).
    Query {
        slot: usize,
        reads: u64,
    },
    /// The requests a track served in the rate window, `increase()` of its request
    /// counter (a `min_requests` guard's count; a latency histogram's `_count` counts the
    /// same requests, each request being observed once): summed over the per-code
    /// counters' own increases when `by_code` (the request counter, exposed per code).
    Requests {
        by_code: bool,
    },
    /// The canary's scrape targets that answered their last scrape (`targets_up`): 1,
    /// or 0 once a `crash` fault has made its scrapes fail.
    Up,
    /// Not simulated: always absent.
    Absent,
}

/// Which synthetic series a track must produce.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct SeriesSet {
    requests: bool,
    errors: bool,
    latency: bool,
    cpu: bool,
    memory: bool,
    db: bool,
    redis: bool,
}

impl SeriesSet {
    /// The series `sources` read; with `per_code`, a sum over the request counter's codes
    /// needs the failures drawn too.
    fn of<'s>(sources: impl Iterator<Item = &'s SyntheticMetric>, per_code: bool) -> SeriesSet {
        let mut r = SeriesSet::default();
        for s in sources {
            match *s {
                SyntheticMetric::ErrorRate | SyntheticMetric::Availability => {
                    r.requests = true;
                    r.errors = true;
                }
                SyntheticMetric::Throughput => {
                    r.requests = true;
                    r.errors |= per_code;
                }
                SyntheticMetric::Requests { by_code } => {
                    r.requests = true;
                    r.errors |= by_code;
                }
                SyntheticMetric::Latency { .. } => {
                    r.requests = true;
                    r.latency = true;
                }
                SyntheticMetric::Cpu => r.cpu = true,
                SyntheticMetric::Memory => r.memory = true,
                SyntheticMetric::DbConnections => r.db = true,
                SyntheticMetric::Redis => r.redis = true,
                SyntheticMetric::Custom { .. }
                | SyntheticMetric::Query { .. }
                | SyntheticMetric::Up
                | SyntheticMetric::Absent => {}
            }
        }
        r
    }

    fn any(&self) -> bool {
        *self != SeriesSet::default()
    }
}

/// Which metric values an evaluation reads (the others are left as they were), and so
/// which series it computes from the samples.
#[derive(Debug, Clone)]
pub(crate) struct Demand {
    /// Per track (canary, stable): the metrics computed, with their sources, in order.
    metrics: [Vec<(usize, SyntheticMetric)>; 2],
    /// The series the canary's and the stable track's values are computed from.
    series: [SeriesSet; 2],
    /// Per track, the query metrics computed: (metric, query slot).
    queries: [Vec<(usize, usize)>; 2],
}

/// The daily cycle is a staircase of blocks this long: the request rate holds for ten
/// minutes at a time (a jump of at most 4.4% of the amplitude between blocks), so a batch
/// of trials draws with the same means for many evaluations and one inversion table per
/// mean serves them all ([`table`]).
const BLOCK_MS: i64 = 600_000;

const DAY_MS: i64 = 86_400_000;

/// What every trial of one run shares: the grid, the shares per phase, the metric sources.
pub(crate) struct Model<'a> {
    pub(crate) semantics: Semantics,
    pub(crate) scrape_ms: i64,
    /// How long after a scrape each evaluation comes ([`Model::scrape_time`]).
    pub(crate) scrape_offset_ms: i64,
    pub(crate) eval_ms: i64,
    pub(crate) window_ms: i64,
    /// Scrape indices whose samples some window reads, as residues modulo `period`
    /// (None: every scrape is read).
    needed: Option<(i64, [i64; 2])>,
    pub(crate) sources: Vec<SyntheticMetric>,
    /// Metrics whose stable value some rule reads and the simulation produces.
    pub(crate) stable_needed: Vec<bool>,
    canary_series: SeriesSet,
    /// None: no rule reads a simulated stable value, so the stable track is not simulated.
    stable_series: Option<SeriesSet>,
    /// The canary's share of requests in each phase.
    pub(crate) canary_share: Vec<f64>,
    /// Per phase, the instances the canary and the stable track run, which their gauges
    /// per instance and their targets come from
    /// ([`crate::sim::scenario::Exposition::per_instance`]; never fewer in a later phase:
    /// the plan's traffic never falls).
    instances: Vec<[usize; 2]>,
    /// The release's course as planned (a trial's holds move its own copy).
    pub(crate) schedule: Schedule,
    pub(crate) scenarios: &'a Scenarios,
    /// The finite latency bucket bounds a trial tracks ([`coarse`]).
    bounds: Vec<f64>,
    /// `bounds`, then `+Inf`: the `le` of each tracked bucket.
    les: Vec<f64>,
    /// Whether `les` strictly increase (they do unless the plan repeats a bucket).
    les_increase: bool,
    /// The healthy latency distribution's CDF at each of `bounds`.
    base_cdf: Vec<f64>,
    /// Samples a track keeps: enough for one window plus the span being drawn, rounded up
    /// to a power of two (the ring's slots wrap by a mask).
    ring_capacity: usize,
    /// The daily cycle's rate in each of a day's [`BLOCK_MS`] blocks.
    rps_blocks: Vec<f64>,
    /// Which evaluations read CPU.
    cpu_readers: CpuReaders,
    /// How the request rate varies from one evaluation to the next around the daily cycle.
    bursts: Bursts,
    /// Error clustering (None: failures are independent, and drawn as kinds of request).
    clustering: Option<Clustering>,
    /// Whether some scenario of the run has a fault: every trial's canary then counts its
    /// requests and failures ([`Model::track_series`]).
    counts_exposure: bool,
    /// The series and queries of the query metrics, if any.
    series: Option<series::SeriesSim>,
    /// Whether a track's failure series is born at its first failure
    /// ([`crate::sim::scenario::Exposition::births`]).
    births: bool,
    /// Whether each instance a track runs ([`Model::instances`]) has request counters of
    /// its own, serving an equal part of the track's requests from its first scrape on
    /// ([`Model::serving`]); else the track's requests are one set of counters.
    per_instance_requests: bool,
}

/// A track's failure series not born yet: [`birth_in_piece`]'s scrape.
pub(super) const UNBORN: i64 = i64::MAX;

/// One instance's CPU noise in a piece, in standard deviations: its own standard normal
/// `z`, mixed with the track's `z0` where several instances count in the piece and some of
/// the noise is shared (`baseline.cpu_usage.shared`, the instances' correlation): `z0` is
/// drawn before the instances' own (none where one instance counts, as with one instance
/// per track, or where nothing is shared).
pub(super) fn cpu_noise(shared: f64, z0: Option<f64>, z: f64) -> f64 {
    match z0 {
        Some(z0) => shared.sqrt() * z0 + (1.0 - shared).sqrt() * z,
        None => z,
    }
}

/// The seconds of the piece from `t0` to `t1` that the CPU counter of an instance whose
/// first sample is at scrape `first` counts: those from that scrape on, none before it (a
/// canary instance joining at its phase's start `J` has its first sample, 0, at the first
/// scrape after `J`; a scrape at `J` itself still sees the phase before, as an evaluation
/// there does); None when it counts none.
pub(super) fn cpu_part(m: &Model<'_>, (t0, t1): (i64, i64), first: i64) -> Option<f64> {
    let from = t0.max(m.scrape_time(first));
    (from < t1).then(|| (t1 - from) as f64 / 1000.0)
}

/// Whether a failure series whose first sample is `born` ([`birth_in_piece`]) may be born
/// in a piece starting at `t0`: unborn, or born at a scrape after it (where a birth in
/// the piece puts it, so it stays so through the piece).
#[inline]
pub(super) fn birth_pending(m: &Model<'_>, born: (i64, u64), t0: i64) -> bool {
    born.0 == UNBORN || m.scrape_time(born.0) > t0
}

/// Under `births`, what the `failed` failures a track drew in the piece `(t0, t1]` of a
/// span tell about its failure series' first sample `born` = (scrape, value), scrape
/// [`UNBORN`] while it has none. Within a piece the rate, share and fault level hold, so
/// its failures fall at independent uniform times (also under error clustering: a
/// uniform thinning of uniform requests). The first sample is at the first scrape at or
/// after the first failure and holds every failure up to it: split the piece's failures
/// between the scrape intervals it crosses, in turn (the multinomial by length, drawn as
/// binomials), up to the first that holds some. When that one ends with the piece before
/// its scrape, the later pieces add their failures up to it (a binomial by length where
/// a piece passes it). Only the span holding the birth draws anything: once per trial and
/// track, one binomial or a few.
#[inline(never)]
pub(super) fn birth_in_piece<R: rand::Rng + ?Sized>(
    m: &Model<'_>,
    rng: &mut R,
    (t0, t1): (i64, i64),
    failed: u64,
    born: &mut (i64, u64),
) {
    if failed == 0 || t1 <= t0 {
        return;
    }
    let share = |a: i64, c: i64| draw::FailRate::new((c - a) as f64 / (t1 - a) as f64);
    if born.0 != UNBORN {
        let at = m.scrape_time(born.0);
        if at > t0 {
            born.1 += if t1 <= at {
                failed
            } else {
                draw::failures(rng, failed, &share(t0, at))
            };
        }
        return;
    }
    let mut a = t0;
    loop {
        let j = m.last_scrape(a) + 1;
        let c = m.scrape_time(j).min(t1);
        let here = if c >= t1 {
            failed
        } else {
            draw::failures(rng, failed, &share(a, c))
        };
        if here > 0 {
            *born = (j, here);
            return;
        }
        a = c;
    }
}

/// The request rate's variation around the daily cycle, per trial and evaluation interval.
enum Bursts {
    /// None: the trials of a batch draw with the same means, from shared tables.
    Steady,
    /// A Gamma-distributed multiplier of mean 1 (overdispersion): each trial draws its own
    /// and plans its own draws.
    Gamma(Gamma<f64>),
}

/// The scale of the latency metric's quantile (1 when no metric reads one).
fn latency_scale(sources: &[SyntheticMetric]) -> f64 {
    sources
        .iter()
        .find_map(|s| match s {
            SyntheticMetric::Latency { scale, .. } => Some(*scale),
            _ => None,
        })
        .unwrap_or(1.0)
}

/// The constants the latency metric is compared with by `rules`; None when one of them
/// compares it with something else (the stable track's value).
fn latency_thresholds(sources: &[SyntheticMetric], rules: &[AlertRule]) -> Option<Vec<f64>> {
    let mut thresholds = Vec::new();
    for r in rules {
        if !matches!(sources.get(r.metric), Some(SyntheticMetric::Latency { .. })) {
            continue;
        }
        match r.condition {
            Condition::Compare {
                rhs: Rhs::Value(v), ..
            } => thresholds.push(v),
            Condition::Compare { .. } => return None,
            // "No value" does not depend on where the quantile lies.
            Condition::Missing | Condition::Silent => {}
        }
    }
    Some(thresholds)
}

/// Where a selector of a metric computed from series matches none of the series the
/// scenarios model ([`series::unmatched_selectors`]).
pub(crate) fn unmatched_selectors(
    plan: &CheckedPlan,
    scenarios: &Scenarios,
    semantics: Semantics,
) -> Vec<crate::diagnostic::Diagnostic> {
    let queries: Vec<usize> = sources(plan, scenarios)
        .iter()
        .enumerate()
        .filter(|(_, s)| matches!(s, SyntheticMetric::Query { .. }))
        .map(|(m, _)| m)
        .collect();
    series::unmatched_selectors(plan, &scenarios.baseline.series, &queries, semantics)
}

/// The scrape offset of each offset class of a run of `plan`.
pub(crate) fn scrape_offsets(plan: &CheckedPlan, scenarios: &Scenarios) -> Vec<i64> {
    let scrape_ms = plan.monitoring.scrape_interval.millis() as i64;
    scenarios.exposition.offsets_ms(scrape_ms)
}

/// How each of the plan's metrics is produced in a synthetic trial, in plan order (what
/// the report states as assumed).
pub(crate) fn sources(plan: &CheckedPlan, scenarios: &Scenarios) -> Vec<SyntheticMetric> {
    let mut slots = 0;
    plan.metrics
        .iter()
        .map(|m| match (m.builtin, &m.expr) {
            (Some(Builtin::ErrorRate), _) => SyntheticMetric::ErrorRate,
            (Some(Builtin::Availability), _) => SyntheticMetric::Availability,
            (Some(Builtin::Throughput), _) => SyntheticMetric::Throughput,
            (Some(Builtin::ResponseTimeP95), MetricExpr::Quantile { q, scale, .. }) => {
                SyntheticMetric::Latency {
                    q: *q,
                    scale: *scale,
                }
            }
            (Some(Builtin::CpuUsage), _) => SyntheticMetric::Cpu,
            (Some(Builtin::MemoryUsage), _) => SyntheticMetric::Memory,
            (Some(Builtin::DbConnections), _) => SyntheticMetric::DbConnections,
            (Some(Builtin::RedisMemoryUsage), _) => SyntheticMetric::Redis,
            (Some(Builtin::TargetsUp), _) => SyntheticMetric::Up,
            // A guard's request count: the request counter the model draws, per code unless
            // it counts a histogram's observations (`_count`, one series).
            _ if m.is_request_count() => SyntheticMetric::Requests {
                by_code: scenarios.exposition.per_code
                    && matches!(&m.expr, MetricExpr::Increase { sel, .. } if !sel.metric.ends_with("_count")),
            },
            // An overridden query still counts the targets up: the crash model drives it,
            // as it drives the built-in one.
            _ if m.name == "targets_up" => SyntheticMetric::Up,
            // A gauge model of the metric itself comes first; else its query over the
            // modelled series.
            _ => match scenarios.baseline.custom.get(&m.name) {
                Some(g) => SyntheticMetric::Custom {
                    mean: g.mean,
                    noise: g.noise,
                    time_constant_ms: g.time_constant_ms,
                    max: if m.unit == crate::model::Unit::Ratio {
                        1.0
                    } else {
                        f64::INFINITY
                    },
                },
                None => match series::query_reads(&m.expr, scenarios) {
                    Some(reads) => {
                        slots += 1;
                        SyntheticMetric::Query {
                            slot: slots - 1,
                            reads,
                        }
                    }
                    None => SyntheticMetric::Absent,
                },
            },
        })
        .collect()
}

fn lognormal_cdf(x: f64, median: f64, sigma: f64) -> f64 {
    0.5 * erfc(-(x.ln() - median.ln()) / (sigma * std::f64::consts::SQRT_2))
}

impl Model<'_> {
    /// What each track must produce: the canary (its requests and failures always, when
    /// some scenario of the run has a fault, for the blast radius), and the stable track if
    /// some rule reads it. The same for every scenario of a run, faulty or not: a faulty
    /// trial and its healthy twin (`sim::montecarlo`) then take the same random numbers
    /// until the fault first changes a draw.
    fn track_series(&self) -> (SeriesSet, Option<SeriesSet>) {
        let canary = SeriesSet {
            requests: self.canary_series.requests || self.counts_exposure,
            errors: self.canary_series.errors || self.counts_exposure,
            ..self.canary_series
        };
        (canary, self.stable_series)
    }
}

impl<'a> Model<'a> {
    /// The model for simulating `rules` (those a trial evaluates) on `plan`, at the run's
    /// first offset class: all of the run's trials when the scrape offset is fixed, else
    /// those of [`Model::classes`]' first (what does not depend on the offset is the same
    /// in every class).
    pub(crate) fn new(
        plan: &CheckedPlan,
        scenarios: &'a Scenarios,
        rules: &[AlertRule],
        semantics: Semantics,
    ) -> Model<'a> {
        let offset = scrape_offsets(plan, scenarios)[0];
        Model::at(plan, scenarios, rules, semantics, offset)
    }

    /// One model per offset class of the run ([`crate::sim::scenario::Exposition::offsets_ms`]):
    /// trial `t` runs on the one at `t mod len`.
    pub(crate) fn classes(
        plan: &CheckedPlan,
        scenarios: &'a Scenarios,
        rules: &[AlertRule],
        semantics: Semantics,
    ) -> Vec<Model<'a>> {
        scrape_offsets(plan, scenarios)
            .into_iter()
            .map(|offset| Model::at(plan, scenarios, rules, semantics, offset))
            .collect()
    }

    /// The model whose scrapes come `scrape_offset_ms` before each evaluation.
    fn at(
        plan: &CheckedPlan,
        scenarios: &'a Scenarios,
        rules: &[AlertRule],
        semantics: Semantics,
        scrape_offset_ms: i64,
    ) -> Model<'a> {
        // The scenario file's bounds, on which exact counts and finite draws rest.
        let b = &scenarios.baseline;
        debug_assert!(scenarios.traffic.requests_per_second <= MAX_REQUESTS_PER_SECOND);
        debug_assert!(scenarios.scenarios.len() <= MAX_SCENARIOS);
        debug_assert!(
            [b.cpu, b.memory, b.db_connections, b.redis_memory]
                .iter()
                .chain(b.custom.values())
                .all(|g| g.mean <= MAX_GAUGE_VALUE && g.noise <= MAX_GAUGE_VALUE)
        );
        let scrape_ms = (plan.monitoring.scrape_interval.millis() as i64).max(1);
        let eval_ms = (plan.monitoring.evaluation_interval.millis() as i64).max(1);
        let window_ms = plan.monitoring.window.millis() as i64;
        let needed = (eval_ms % scrape_ms == 0 && window_ms % scrape_ms == 0).then(|| {
            let period = eval_ms / scrape_ms;
            let w = window_ms / scrape_ms;
            // Window (ts-w, ts] in Prometheus 3 starts at the scrape after ts-w; [ts-w, ts]
            // in 2.42 at ts-w itself when a scrape falls there (no offset), else at the
            // next. An evaluation's own latest scrape is always on the grid's residue 0.
            let first = match semantics {
                Semantics::Prometheus2 if scrape_offset_ms == 0 => (-w).rem_euclid(period),
                _ => (1 - w).rem_euclid(period),
            };
            (period, [0, first])
        });
        let sources = sources(plan, scenarios);
        let slots = sources
            .iter()
            .enumerate()
            .filter(|(_, s)| matches!(s, SyntheticMetric::Query { .. }))
            .map(|(m, _)| m)
            .collect();
        let series = series::SeriesSim::new(
            plan,
            scenarios,
            slots,
            (scrape_ms, scrape_offset_ms, semantics),
        );
        let stable_needed: Vec<bool> = sources
            .iter()
            .enumerate()
            .map(|(m, s)| {
                *s != SyntheticMetric::Absent
                    && rules
                        .iter()
                        .any(|r| r.metric == m && r.condition.uses_stable())
            })
            .collect();
        let per_code = scenarios.exposition.per_code;
        let canary_series = SeriesSet::of(sources.iter(), per_code);
        let stable_series = Some(SeriesSet::of(
            sources
                .iter()
                .zip(&stable_needed)
                .filter(|(_, n)| **n)
                .map(|(s, _)| s),
            per_code,
        ))
        .filter(|r| r.any() || stable_needed.iter().any(|&n| n));
        let canary_share = (0..plan.phases.len())
            .map(|i| plan.canary_request_share(i))
            .collect();
        let instances = scenarios
            .exposition
            .instances(plan)
            .into_iter()
            .map(|counts| counts.map(|r| r as usize))
            .collect();
        let base = &scenarios.baseline;
        let bounds = coarse::kept_bounds(
            &base.buckets,
            latency_scale(&sources),
            latency_thresholds(&sources, rules).as_deref(),
        );
        let base_cdf = bounds
            .iter()
            .map(|&le| {
                (1.0 - base.tail_share) * lognormal_cdf(le, base.median, base.sigma)
                    + base.tail_share
                        * lognormal_cdf(le, base.median * base.tail_factor, base.sigma)
            })
            .collect();
        let ring_capacity = ((window_ms / scrape_ms) as usize + 3).next_power_of_two();
        // CPU is read wherever a rollback rule reads it, else by gates only from their
        // start in each phase (see [`crate::sim::outcomes`]); under a gate policy that
        // holds, a phase's end is not known in advance, and gates run from its start.
        let reads_cpu = |kind: RuleKind| {
            rules
                .iter()
                .any(|r| r.kind == kind && sources.get(r.metric) == Some(&SyntheticMetric::Cpu))
        };
        let schedule = Schedule::new(plan);
        let cpu_readers = if reads_cpu(RuleKind::Rollback) {
            CpuReaders::Every
        } else if reads_cpu(RuleKind::Gate) {
            CpuReaders::Gates
        } else {
            CpuReaders::None
        };
        let mut model = Model {
            semantics,
            scrape_ms,
            scrape_offset_ms,
            eval_ms,
            window_ms,
            needed,
            sources,
            stable_needed,
            canary_series,
            stable_series,
            canary_share,
            instances,
            schedule,
            scenarios,
            les: bounds.iter().copied().chain([f64::INFINITY]).collect(),
            les_increase: bounds.windows(2).all(|w| w[0] < w[1])
                && bounds.last().is_none_or(|&b| b < f64::INFINITY),
            bounds,
            base_cdf,
            ring_capacity,
            cpu_readers,
            rps_blocks: Vec::new(),
            counts_exposure: scenarios.scenarios.iter().any(|s| s.fault.is_some()),
            series,
            births: scenarios.exposition.births(),
            per_instance_requests: scenarios.exposition.requests_per_instance,
            // The scenario file keeps the overdispersion within (0, 5]: the Gamma's
            // parameters are then always valid.
            bursts: match scenarios.traffic.overdispersion.powi(2) {
                cv2 if cv2 > 0.0 => {
                    Gamma::new(1.0 / cv2, cv2).map_or(Bursts::Steady, Bursts::Gamma)
                }
                _ => Bursts::Steady,
            },
            // Likewise within (0, 5].
            clustering: Clustering::new(
                scenarios.traffic.error_clustering,
                scenarios.traffic.error_clustering_shared,
                scenarios.traffic.error_clustering_time_constant_ms,
            ),
        };
        model.rps_blocks = (0..DAY_MS / BLOCK_MS)
            .map(|b| model.cycle_rps(b * BLOCK_MS + BLOCK_MS / 2))
            .collect();
        model
    }

    /// When scrape `j` happens: every scrape interval, each evaluation (on the grid of the
    /// evaluation interval from 0) coming `scrape_offset_ms` after one. Scrape 0, at or
    /// before the release's start, has every counter at 0.
    #[inline]
    pub(crate) fn scrape_time(&self, j: i64) -> i64 {
        j * self.scrape_ms - self.scrape_offset_ms
    }

    /// The first scrape after `t`.
    pub(super) fn scrape_after(&self, t: i64) -> i64 {
        self.last_scrape(t) + 1
    }

    /// The last scrape at or before `t`.
    #[inline]
    pub(crate) fn last_scrape(&self, t: i64) -> i64 {
        (t + self.scrape_offset_ms).div_euclid(self.scrape_ms)
    }

    /// The first scrape whose sample a window ending at `ts` holds, by the semantics'
    /// range selection (`(ts - window, ts]` in Prometheus 3, closed in 2.42), at least 0.
    pub(crate) fn first_scrape_in_window(&self, ts: i64) -> i64 {
        let start = ts - self.window_ms;
        match self.semantics {
            Semantics::Prometheus3 => self.last_scrape(start) + 1,
            Semantics::Prometheus2 => self.last_scrape(start - 1) + 1,
        }
        .max(0)
    }

    /// The whole service's request rate at `t`, per second: the daily cycle's rate at the
    /// middle of `t`'s block.
    #[inline]
    fn total_rps(&self, t: i64) -> f64 {
        self.rps_blocks[(t.rem_euclid(DAY_MS) / BLOCK_MS) as usize]
    }

    /// The daily cycle at time `t` of the day, per second (peak at 15:00).
    fn cycle_rps(&self, t: i64) -> f64 {
        let tr = &self.scenarios.traffic;
        if tr.daily_amplitude == 0.0 {
            return tr.requests_per_second;
        }
        let hour = f64::from(tr.start_hour) + t as f64 / 3_600_000.0;
        let phase = (hour - 9.0) / 24.0 * std::f64::consts::TAU;
        tr.requests_per_second * (1.0 + tr.daily_amplitude * phase.sin())
    }

    /// The values an evaluation reads: the metrics for which `read(metric)` holds.
    pub(crate) fn demand(&self, read: impl Fn(usize) -> bool) -> Demand {
        let metrics: Vec<bool> = (0..self.sources.len()).map(read).collect();
        let of = |stable: bool| {
            SeriesSet::of(
                self.sources
                    .iter()
                    .enumerate()
                    .filter(|&(i, _)| metrics[i] && (!stable || self.stable_needed[i]))
                    .map(|(_, s)| s),
                self.scenarios.exposition.per_code,
            )
        };
        let computed = |stable: bool| {
            (0..self.sources.len())
                .filter(|&i| metrics[i] && (!stable || self.stable_needed[i]))
                .map(|i| (i, self.sources[i]))
                .collect()
        };
        let metrics = [computed(false), computed(true)];
        let queries = metrics
            .each_ref()
            .map(|ms: &Vec<(usize, SyntheticMetric)>| {
                ms.iter()
                    .filter_map(|&(mi, s)| match s {
                        SyntheticMetric::Query { slot, .. } => Some((mi, slot)),
                        _ => None,
                    })
                    .collect()
            });
        Demand {
            series: [of(false), of(true)],
            metrics,
            queries,
        }
    }

    /// Whether some evaluation at a time in `[from, to]` reads CPU, the release being where
    /// `progress` says. A span `(t0, t1]` of the busy-seconds counter is inside the window
    /// of an evaluation at `ts` only if `t1 <= ts <= t0 + window`; the increments of every
    /// other span are read by nothing (the counter's level enters `rate()` only through
    /// its zero clamp, which a counter advanced by its mean keeps far away), so they are
    /// not drawn. (A phase's end cannot make a span drawn before it read: such a span's
    /// window reaches the phase's last evaluation, which runs its gates.)
    pub(crate) fn reads_cpu_between(&self, from: i64, to: i64, progress: Progress<'_>) -> bool {
        match self.cpu_readers {
            CpuReaders::None => false,
            CpuReaders::Every => true,
            CpuReaders::Gates => progress.gates_run_between(from, to),
        }
    }

    /// The finite latency bucket bounds a trial tracks: what the model draws depends on
    /// them, and they depend on the rules' latency thresholds ([`coarse`]).
    pub(crate) fn latency_bounds(&self) -> &[f64] {
        &self.bounds
    }

    /// The share of the service's requests `track` serves in `phase`.
    #[inline]
    pub(super) fn track_share(&self, track: Track, phase: usize) -> f64 {
        match track {
            Track::Canary => self.canary_share[phase],
            Track::Stable => 1.0 - self.canary_share[phase],
        }
    }

    /// How many instances `track` runs in `phase` for its gauges per instance (memory, DB
    /// connections) and its targets: its replicas then, or 1
    /// ([`crate::sim::scenario::Exposition::per_instance`]).
    pub(super) fn instances(&self, track: Track, phase: usize) -> usize {
        self.instances[phase][usize::from(track == Track::Stable)]
    }

    /// How many sets of request counters `track` has in `phase`: one per instance under
    /// [`Model::per_instance_requests`], else one.
    pub(super) fn request_instances(&self, track: Track, phase: usize) -> usize {
        if self.per_instance_requests {
            self.instances(track, phase)
        } else {
            1
        }
    }

    /// How many sets of request counters `track` may have: its most instances under
    /// [`Model::per_instance_requests`], else one.
    pub(super) fn request_sets(&self, track: Track) -> usize {
        self.request_instances(track, self.instances.len() - 1)
    }

    /// How many instances of `track` serve its requests at `t` (in the piece that starts
    /// there), each an equal part: those the latest scrape at or before `t` found. An
    /// instance joining with its phase serves from its first scrape on, where its counters
    /// are 0 (as its CPU counter's: [`cpu_part`]); until then the instances before serve
    /// the new phase's share.
    pub(super) fn serving(&self, track: Track, t: i64, schedule: &Schedule) -> usize {
        let scrape = self.scrape_time(self.last_scrape(t));
        self.request_instances(track, schedule.scraped_phase(scrape))
    }

    /// The most instances any track has in any phase.
    pub(super) fn max_instances(&self) -> usize {
        // The stable track's count holds in every phase, and the canary's never exceeds it.
        self.instances.last().map_or(1, |i| i[0].max(i[1]))
    }

    /// Whether the simulation needs the latency histogram.
    pub(crate) fn reads_latency(&self) -> bool {
        self.canary_series.latency || self.stable_series.is_some_and(|r| r.latency)
    }
}

impl instants::Traffic for Model<'_> {
    fn canary_share(&self, phase: usize) -> f64 {
        self.canary_share[phase]
    }

    fn mean_rps(&self, t: i64) -> f64 {
        self.total_rps(t)
    }

    fn next_rate_change(&self, t: i64) -> Option<i64> {
        (self.scenarios.traffic.daily_amplitude != 0.0)
            .then(|| (t.div_euclid(BLOCK_MS) + 1) * BLOCK_MS)
    }

    fn serving(&self, t: i64, schedule: &Schedule) -> [usize; 2] {
        if !self.per_instance_requests {
            return [1, 1];
        }
        [Track::Canary, Track::Stable].map(|track| Model::serving(self, track, t, schedule))
    }

    fn join_scrape(&self, t: i64, schedule: &Schedule) -> Option<i64> {
        if !self.per_instance_requests {
            return None;
        }
        (schedule.starts.iter())
            .filter(|&&s| s != UNKNOWN)
            .map(|&s| self.scrape_time(self.scrape_after(s)))
            .find(|&j| j > t)
    }
}

impl instants::Faults for FaultModel<'_> {
    fn fault(&self) -> Option<&Fault> {
        self.fault
    }

    fn level_at(&self, t: i64, canary_rps: f64) -> usize {
        FaultModel::level_at(self, t, canary_rps)
    }

    fn intensity(&self, level: usize) -> f64 {
        FaultModel::intensity(self, level)
    }

    fn down_from(&self) -> Option<i64> {
        self.down_from
    }

    fn next_change(&self, t: i64) -> Option<i64> {
        self.fault
            .and_then(|f| next_fault_change(f, t, self.leak_steps))
    }
}

/// The first instant after `t` at which `fault`'s level changes (a leak in `leak_steps`
/// steps), not counting a `load` fault's, which follows the request rate.
fn next_fault_change(fault: &Fault, t: i64, leak_steps: i64) -> Option<i64> {
    let onset = fault.onset_ms;
    if t < onset {
        return Some(onset);
    }
    let since = t - onset;
    match fault.kind {
        FaultKind::Step | FaultKind::Partial { .. } | FaultKind::Crash | FaultKind::Load { .. } => {
            None
        }
        FaultKind::Bursts {
            every_ms,
            lasting_ms,
        } => {
            let into = since % every_ms;
            let start = t - into;
            Some(if into < lasting_ms {
                start + lasting_ms
            } else {
                start + every_ms
            })
        }
        FaultKind::Leak { ramp_ms } => {
            // Level k + 1 holds from `ceil(k · ramp / steps)` after the onset (as
            // [`FaultModel::level_at`] counts), full from the last step on.
            let (ramp, steps) = (i128::from(ramp_ms.max(1)), i128::from(leak_steps));
            let k = i128::from(since) * steps / ramp + 1;
            (k < steps).then(|| onset + ((k * ramp + steps - 1) / steps) as i64)
        }
    }
}

/// Which evaluations read CPU.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CpuReaders {
    None,
    /// Every one: a rollback rule reads it.
    Every,
    /// Those that run the gates ([`crate::sim::outcomes::gates_from`]): a gate reads it.
    Gates,
}

/// What one scenario's trials share: its fault, and the kinds of request (latency cell,
/// failed or not) the service produces at each of the fault's levels, prepared once.
#[derive(Clone)]
pub(crate) struct FaultModel<'m> {
    fault: Option<&'m Fault>,
    /// For a `crash`: the first scrape (index on the scrape grid) that fails, the first at
    /// or after its onset. From it on the canary has no new sample, its `up` is 0 and its
    /// gauges are stale.
    pub(super) down_from: Option<i64>,
    /// For a `leak`: the number of equal steps of its ramp.
    leak_steps: i64,
    /// Per intensity level (0: healthy; `leak_steps`: full), the canary's requests.
    canary: Vec<Mix>,
    /// The stable track's requests (the healthy service).
    stable: Mix,
    /// Under error clustering, the failure probability of a request at each level on the
    /// canary, and on the stable track: the kinds of request then leave failures out, and
    /// a span's failures are drawn from its requests afterwards ([`draw::failures`]).
    canary_fail: Vec<f64>,
    stable_fail: f64,
    /// Per metric, how far the fault moves a custom metric on the canary at full intensity
    /// (its level minus the healthy mean, times the share of users affected); 0 elsewhere.
    custom_lift: Vec<f64>,
    /// Whether the fault changes what a span draws (the canary's kinds of request or its
    /// CPU): only then is a span cut where its level changes ([`instants`]), so a span's
    /// draws stay the healthy twin's wherever they can.
    moves_draws: bool,
}

/// Whether `fault` can move the canary's value of plan metric `metric`, produced as
/// `source`: the metrics its effects change (an `error_rate` moves the error rate and
/// availability, a latency effect the latency quantile, `memory_usage` and `cpu_usage`
/// their gauges, `metrics` the custom metrics it names, a crash the targets up). Nothing
/// moves throughput, the request count of a guard or the other gauges.
pub(crate) fn fault_moves(fault: &Fault, metric: usize, source: SyntheticMetric) -> bool {
    match source {
        SyntheticMetric::ErrorRate | SyntheticMetric::Availability => fault.error_rate.is_some(),
        SyntheticMetric::Latency { .. } => {
            fault.latency_factor.is_some() || fault.tail_share.is_some()
        }
        SyntheticMetric::Memory => fault.memory_usage.is_some(),
        SyntheticMetric::Cpu => fault.cpu_usage.is_some(),
        SyntheticMetric::Custom { .. } => fault.metrics.iter().any(|&(m, _)| m == metric),
        // On a recording a fault's `metrics` name custom metrics without a model too.
        SyntheticMetric::Query { reads, .. } => {
            fault
                .series
                .iter()
                .any(|e| e.series < 64 && reads >> e.series & 1 == 1)
                || fault.metrics.iter().any(|&(m, _)| m == metric)
        }
        SyntheticMetric::Absent => fault.metrics.iter().any(|&(m, _)| m == metric),
        // A crash stops the canary's series: the targets go down; what its other series
        // read afterwards are its samples from before.
        SyntheticMetric::Up => fault.kind == FaultKind::Crash,
        SyntheticMetric::Throughput
        | SyntheticMetric::Requests { .. }
        | SyntheticMetric::DbConnections
        | SyntheticMetric::Redis => false,
    }
}

/// [`FaultModel::down_from`] on `model`'s scrape grid.
fn down_from(model: &Model<'_>, fault: Option<&Fault>) -> Option<i64> {
    fault
        .filter(|f| f.kind == FaultKind::Crash)
        .map(|f| model.last_scrape(f.onset_ms.max(0) - 1) + 1)
}

/// The most steps a leak's ramp is cut into.
const MAX_LEAK_STEPS: i64 = 4096;

impl<'m> FaultModel<'m> {
    /// [`FaultModel::new`] on each of a run's offset classes ([`Model::classes`]): prepared
    /// once, since only the scrape at which a crash first fails depends on the offset.
    pub(crate) fn classes(models: &[Model<'_>], fault: Option<&'m Fault>) -> Vec<FaultModel<'m>> {
        let Some(first) = models.first() else {
            return Vec::new();
        };
        let prepared = FaultModel::new(first, fault);
        models
            .iter()
            .map(|m| FaultModel {
                down_from: down_from(m, fault),
                ..prepared.clone()
            })
            .collect()
    }

    pub(crate) fn new(model: &Model<'_>, fault: Option<&'m Fault>) -> FaultModel<'m> {
        let leak_steps = match fault.map(|f| f.kind) {
            Some(FaultKind::Leak { ramp_ms }) => {
                ((ramp_ms + model.eval_ms - 1) / model.eval_ms).clamp(1, MAX_LEAK_STEPS)
            }
            _ => 1,
        };
        let moves_latency =
            fault.is_some_and(|f| f.latency_factor.is_some() || f.tail_share.is_some());
        let base = &model.scenarios.baseline;
        let probs_at = |intensity: f64| -> Vec<f64> {
            let cdf: Vec<f64> = match (fault, moves_latency && intensity > 0.0) {
                (Some(f), true) => {
                    let lf = 1.0 + intensity * (f.latency_factor.unwrap_or(1.0) - 1.0);
                    let share = base.tail_share
                        + intensity * (f.tail_share.unwrap_or(base.tail_share) - base.tail_share);
                    let affected = f.affected();
                    model
                        .bounds
                        .iter()
                        .zip(&model.base_cdf)
                        .map(|(&le, &healthy)| {
                            let bad = (1.0 - share)
                                * lognormal_cdf(le, base.median * lf, base.sigma)
                                + share
                                    * lognormal_cdf(
                                        le,
                                        base.median * lf * base.tail_factor,
                                        base.sigma,
                                    );
                            (1.0 - affected) * healthy + affected * bad
                        })
                        .collect()
                }
                _ => model.base_cdf.clone(),
            };
            // Cell k holds requests in (le[k-1], le[k]]; the last cell is above every
            // finite bound.
            let mut prev = 0.0;
            let mut probs: Vec<f64> = cdf
                .iter()
                .map(|&c| {
                    let p = (c - prev).max(0.0);
                    prev = prev.max(c);
                    p
                })
                .collect();
            probs.push((1.0 - prev).max(0.0));
            probs
        };
        let crash = fault.is_some_and(|f| f.kind == FaultKind::Crash);
        let fail_at = |level: i64| match fault.and_then(|f| f.error_rate.map(|e| (f, e))) {
            // Every request routed to a crashed canary fails at NGINX (502).
            _ if crash && level > 0 => 1.0,
            Some((f, e)) if level > 0 => {
                let intensity = level as f64 / leak_steps as f64;
                let affected = f.affected();
                (1.0 - affected) * base.error_rate
                    + affected * (base.error_rate + intensity * (e - base.error_rate))
            }
            _ => base.error_rate,
        };
        let healthy = probs_at(0.0);
        let clustered = model.clustering.is_some();
        let mix = |reads: SeriesSet, level: i64| {
            let probs =
                (moves_latency && level > 0).then(|| probs_at(level as f64 / leak_steps as f64));
            Mix::new(
                reads.latency.then(|| probs.as_deref().unwrap_or(&healthy)),
                (reads.errors && !clustered).then(|| fail_at(level)),
            )
        };
        let (canary, stable) = model.track_series();
        let mut custom_lift = vec![0.0; model.sources.len()];
        for &(i, level) in fault.map_or(&[][..], |f| &f.metrics) {
            if let (Some(f), Some(SyntheticMetric::Custom { mean, .. })) =
                (fault, model.sources.get(i))
            {
                custom_lift[i] = f.affected() * (level - mean);
            }
        }
        let canary: Vec<Mix> = (0..=leak_steps).map(|level| mix(canary, level)).collect();
        let canary_fail: Vec<f64> = if clustered {
            (0..=leak_steps).map(fail_at).collect()
        } else {
            Vec::new()
        };
        let moves_draws = fault.is_some_and(|f| f.cpu_usage.is_some())
            || canary.iter().any(|m| *m != canary[0])
            || canary_fail.iter().any(|&p| p != canary_fail[0]);
        FaultModel {
            fault,
            down_from: down_from(model, fault),
            leak_steps,
            canary,
            stable: mix(stable.unwrap_or_default(), 0),
            canary_fail,
            stable_fail: fail_at(0),
            custom_lift,
            moves_draws,
        }
    }

    /// The value of custom metric `mi` on `track` at a scrape: its healthy `mean`, moved
    /// by the fault at `intensity` (on the canary), plus `noise` times the standard normal
    /// `z`, within `0..=max`.
    #[inline]
    fn custom_value(
        &self,
        mi: usize,
        track: Track,
        intensity: f64,
        (mean, noise, max): (f64, f64, f64),
        z: f64,
    ) -> f64 {
        let lift = match track {
            Track::Canary if intensity > 0.0 => intensity * self.custom_lift[mi],
            _ => 0.0,
        };
        (mean + lift + noise * z).clamp(0.0, max)
    }

    /// Whether the fault moves custom metric `mi`.
    #[inline]
    fn moves_custom(&self, mi: usize) -> bool {
        self.custom_lift.get(mi).is_some_and(|&l| l != 0.0)
    }

    /// Whether the canary's scrape target is down at evaluation time `ts`: the latest
    /// scrape at or before it failed (a `crash`), so its `up` reads 0 and its instant
    /// series are stale.
    #[inline]
    pub(super) fn down_at(&self, ts: i64, model: &Model<'_>) -> bool {
        self.down_from.is_some_and(|j| model.last_scrape(ts) >= j)
    }

    /// The fault, to cut spans by, when it changes what a span draws.
    pub(super) fn cuts_spans(&self) -> Option<&dyn instants::Faults> {
        self.moves_draws.then_some(self as &dyn instants::Faults)
    }

    /// The last scrape whose sample a `crash`ed canary has, if it crashed (-1: none).
    #[inline]
    pub(super) fn last_sample(&self) -> Option<i64> {
        self.down_from.map(|j| j - 1)
    }

    /// The requests of `track` at the fault's intensity `level`.
    #[inline]
    fn mix(&self, track: Track, level: usize) -> &Mix {
        match track {
            Track::Canary => &self.canary[level],
            Track::Stable => &self.stable,
        }
    }

    /// Under error clustering, the failure probability of a request of `track` at the
    /// fault's `level` in a cluster whose multiplier is `g`: the level's
    /// probability times `g`, at most 1 (a certain failure, a crash's, stays certain).
    #[inline]
    fn clustered_fail(&self, track: Track, level: usize, g: f64) -> f64 {
        let p = match track {
            Track::Canary => self.canary_fail[level],
            Track::Stable => self.stable_fail,
        };
        if p >= 1.0 { 1.0 } else { (p * g).min(1.0) }
    }

    /// The fault's intensity level at `t` for a canary serving `canary_rps` (0: off;
    /// `leak_steps`: full).
    #[inline]
    fn level_at(&self, t: i64, canary_rps: f64) -> usize {
        let Some(f) = self.fault else { return 0 };
        if t < f.onset_ms {
            return 0;
        }
        match f.kind {
            FaultKind::Leak { ramp_ms } => {
                // Full from the ramp's end; before it ⌊since · steps / ramp⌋ + 1 (at most
                // `steps`, as since < ramp), in 64 bits unless the product could overflow.
                let (since, ramp, steps) = (t - f.onset_ms, ramp_ms.max(1), self.leak_steps);
                if since >= ramp {
                    return steps as usize;
                }
                let level = match since.checked_mul(steps) {
                    Some(p) => p / ramp,
                    None => (i128::from(since) * i128::from(steps) / i128::from(ramp)) as i64,
                };
                level as usize + 1
            }
            _ => usize::from(f.intensity(t, canary_rps) > 0.0),
        }
    }

    /// The fault's intensity at `t` for a canary serving `canary_rps`.
    #[inline]
    fn at(&self, t: i64, canary_rps: f64) -> f64 {
        self.intensity(self.level_at(t, canary_rps))
    }

    /// The intensity of `level`.
    #[inline]
    fn intensity(&self, level: usize) -> f64 {
        if level == 0 {
            0.0
        } else {
            level as f64 / self.leak_steps as f64
        }
    }
}

/// A count as a float: through `i64`, one instruction where `u64` takes several on
/// baseline x86-64, and the same value (counts stay far below 2^63).
#[inline(always)]
fn count(n: u64) -> f64 {
    n as i64 as f64
}

/// What a trial reports for its blast radius.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Exposure {
    /// When the fault first showed on the canary: its onset, or for a `load` fault the
    /// start of the first piece of a span ([`instants`]) in which the canary's load was
    /// above the limit.
    pub(crate) first_active: Option<i64>,
    /// Requests the canary served from then on.
    pub(crate) requests: u64,
    /// Of those, the ones that failed.
    pub(crate) failed: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `f`'s levels (a leak in `leak_steps` steps), without the kinds of request.
    fn bare_model(f: &Fault, leak_steps: i64) -> FaultModel<'_> {
        FaultModel {
            fault: Some(f),
            down_from: None,
            leak_steps,
            canary: Vec::new(),
            stable: Mix::new(None, None),
            canary_fail: Vec::new(),
            stable_fail: 0.0,
            custom_lift: Vec::new(),
            moves_draws: true,
        }
    }

    #[test]
    fn leak_levels_grow_in_steps_of_one_evaluation() {
        // A 10-minute ramp at a 1-minute evaluation interval: ten steps.
        let f = Fault {
            error_rate: Some(0.5),
            ..Fault::bare(FaultKind::Leak { ramp_ms: 600_000 }, 60_000)
        };
        let fm = bare_model(&f, 10);
        assert_eq!(fm.at(59_999, 1.0), 0.0);
        assert_eq!(fm.at(60_000, 1.0), 0.1);
        assert_eq!(fm.at(60_000 + 59_999, 1.0), 0.1);
        assert_eq!(fm.at(120_000, 1.0), 0.2);
        assert_eq!(fm.at(60_000 + 600_000, 1.0), 1.0);
        assert_eq!(fm.at(10_000_000, 1.0), 1.0);
    }

    /// The instants at which spans are cut for a fault are exactly those at which its
    /// level changes, millisecond by millisecond, for leaks whose steps fall on no grid.
    #[test]
    fn a_fault_changes_level_exactly_at_its_cut_instants() {
        let kinds = [
            FaultKind::Leak { ramp_ms: 7_001 },
            FaultKind::Leak { ramp_ms: 1_000 },
            FaultKind::Bursts {
                every_ms: 1_700,
                lasting_ms: 300,
            },
            FaultKind::Step,
        ];
        for kind in kinds {
            for (onset_ms, leak_steps) in [(0, 7), (1_234, 3), (999, 1)] {
                let f = Fault {
                    error_rate: Some(0.5),
                    ..Fault::bare(kind, onset_ms)
                };
                let fm = bare_model(&f, leak_steps);
                let mut changes = Vec::new();
                for t in 1..12_000 {
                    if fm.level_at(t, 1.0) != fm.level_at(t - 1, 1.0) {
                        changes.push(t);
                    }
                }
                let mut cuts = Vec::new();
                let mut t = 0;
                while let Some(c) = next_fault_change(&f, t, leak_steps).filter(|&c| c < 12_000) {
                    assert!(c > t, "{kind:?}: {c} after {t}");
                    if fm.level_at(c, 1.0) != fm.level_at(c - 1, 1.0) {
                        cuts.push(c);
                    }
                    t = c;
                }
                assert_eq!(
                    cuts, changes,
                    "{kind:?} from {onset_ms} in {leak_steps} steps"
                );
            }
        }
    }

    /// Per-instance gauges (`exposition.instances`), with a closed form: 4 stable replicas,
    /// so the canary runs 2 instances in an hour at 50%, then 4 at 100%. With
    /// `time_constant: 0s` each evaluation's scrape draws every instance's memory afresh
    /// (mean 50%, noise 10%), and the rule `memory_usage > 50% + c · 10%` with no `for`
    /// fires at an evaluation where the max over instances is above: in the hour's 60
    /// evaluations (0m ... 59m) with probability `1 - Φ(c)^(k · 60)`, `k` the instances, 2
    /// by default and 1 with `instances: one`, the same draws as before instances.
    #[test]
    fn memory_is_the_max_over_the_instances_as_the_closed_form_says() {
        use crate::sim::montecarlo::{self, Settings, Slice};
        use crate::source::{Kind, Source};
        let c: f64 = 2.3;
        let plan = format!(
            "name: t\nrelease: {{ from: v1, to: v2 }}\n\
             service: {{ name: app, image: acme/app, port: 8080, replicas: 4 }}\n\
             routing: {{ listen: 80, sticky: {{ cookie: uid }} }}\n\
             traffic: {{ requests_per_second: 20 }}\n\
             phases:\n  - {{ name: half, traffic: 50%, duration: 1h }}\n  \
             - {{ name: full, traffic: 100%, duration: 1h }}\n\
             rollback_conditions:\n  - {{ metric: memory_usage, threshold: {}, duration: 0s }}\n",
            0.5 + c * 0.1
        );
        let lowered = crate::pipeline::compile(Source::new("t.yaml".into(), plan))
            .plan
            .expect("the test plan is valid");
        let trials = 40000;
        let run = |instances: &str| {
            let text = format!(
                "trials: {trials}\nexposition: {{ instances: {instances} }}\nbaseline:\n  \
                 memory_usage: {{ mean: 50%, noise: 10%, time_constant: 0s }}\n\
                 scenarios:\n  - name: healthy\n"
            );
            let file = Source::new("s.yaml".into(), text).holding(Kind::Scenarios);
            let (s, findings) =
                crate::sim::scenario::load(&file, &lowered.plan, &|p| p.to_string());
            let s = s.unwrap_or_else(|| panic!("{findings:?}"));
            let settings = Settings {
                slice: Slice::WHOLE,
                seed: 5,
                jobs: 2,
                trials,
                semantics: Semantics::Prometheus3,
            };
            let run = montecarlo::run(&lowered, &s, settings, &mut |_, _| {});
            run.results[0].tally.rollbacks_by_phase[0]
        };
        let below = 1.0 - 0.5 * erfc(c / std::f64::consts::SQRT_2);
        for (instances, k) in [("one", 1), ("replicas", 2)] {
            let expected = 1.0 - below.powi(k * 60);
            crate::sim::stats::Proportion::new(run(instances), trials)
                .assert_covers(expected, &format!("{instances}: rolled back at 50%"));
        }
    }

    /// CPU per instance (`exposition.instances`), with closed forms, on the aligned grid
    /// (15s scrapes, 1m evaluations, 5m windows: a window's spans between the scrapes some
    /// window starts or ends on are five of 45s and four of 15s, 285s in all). 4 stable
    /// replicas: the canary runs 2 instances at 50% from the start, then 4 at 100% from
    /// 10m. Each instance's busy seconds per span are `(μ + σz)·dt`, so one instance's
    /// `rate()` over a whole window has the standard deviation `σ·√(5·45² + 4·15²)/285 =
    /// σ·105/285`, and `avg()` over `k` instances, whose noise in a span has the
    /// correlation `ρ` (`shared`), that times `√(ρ + (1 - ρ)/k)`: at 9m, `k` is 2 (1
    /// under `instances: one`), `ρ` 0 or the default 50%. At 11m the two instances that
    /// joined at 10m have their first sample (0) at 10m15s, so each one's `rate()` is its 45 seconds' increase over the 5m
    /// range (the zero clamp stops the extrapolation at that sample): the canary's average
    /// is `μ·(2 + 2·45/300)/4` in expectation, where one instance per track has no dip.
    #[test]
    fn cpu_averages_the_instances_as_the_closed_forms_say() {
        use crate::source::{Kind, Source};
        let (mean, noise) = (0.4, 0.1);
        let plan = "name: t\nrelease: { from: v1, to: v2 }\n\
             service: { name: app, image: acme/app, port: 8080, replicas: 4 }\n\
             routing: { listen: 80, sticky: { cookie: uid } }\n\
             traffic: { requests_per_second: 20 }\n\
             phases:\n  - { name: half, traffic: 50%, duration: 10m }\n  \
             - { name: full, traffic: 100%, duration: 10m }\n\
             rollback_conditions:\n  - { metric: cpu_usage, threshold: 0.99, duration: 0s }\n";
        let lowered = crate::pipeline::compile(Source::new("t.yaml".into(), plan.into()))
            .plan
            .expect("the test plan is valid");
        let trials = 4000u64;
        // Per trial, the canary's CPU at 9m and at 11m.
        let run = |instances: &str, shared: &str| -> Vec<(f64, f64)> {
            let text = format!(
                "trials: {trials}\ntraffic: {{ daily_amplitude: 0 }}\n\
                 exposition: {{ instances: {instances}, scrape_offset: 0s }}\nbaseline:\n  \
                 cpu_usage: {{ mean: {mean}, noise: {noise}{shared} }}\nscenarios:\n  - name: healthy\n"
            );
            let file = Source::new("s.yaml".into(), text).holding(Kind::Scenarios);
            let (s, findings) =
                crate::sim::scenario::load(&file, &lowered.plan, &|p| p.to_string());
            let s = s.unwrap_or_else(|| panic!("{findings:?}"));
            let model = Model::new(&lowered.plan, &s, &lowered.rules, Semantics::Prometheus3);
            let faults = FaultModel::new(&model, None);
            let cpu = lowered
                .plan
                .metrics
                .iter()
                .position(|m| m.name == "cpu_usage");
            (0..trials)
                .map(|seed| {
                    let trial = reference::run_trial(&model, &faults, &lowered.rules, seed);
                    let at = |ts: i64| {
                        let e = trial.evaluations.iter().find(|e| e.ts == ts).expect("ran");
                        e.values
                            .iter()
                            .find(|&&(mi, t, _)| Some(mi) == cpu && t == Track::Canary)
                            .and_then(|&(_, _, v)| v)
                            .expect("the canary's CPU")
                    };
                    (at(540_000), at(660_000))
                })
                .collect()
        };
        let spread = |xs: &[f64]| {
            let n = xs.len() as f64;
            let m = xs.iter().sum::<f64>() / n;
            (
                m,
                (xs.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (n - 1.0)).sqrt(),
            )
        };
        let one_sd = noise * 105.0 / 285.0;
        let dip = mean * (2.0 + 2.0 * 45.0 / 300.0) / 4.0;
        for (instances, shared, k, rho, dip) in [
            ("one", "", 1.0, 0.0, mean),
            ("replicas", ", shared: 0%", 2.0, 0.0, dip),
            ("replicas", "", 2.0, 0.5, dip),
        ] {
            let values = run(instances, shared);
            let (m9, sd9) = spread(&values.iter().map(|v| v.0).collect::<Vec<_>>());
            let (m11, sd11) = spread(&values.iter().map(|v| v.1).collect::<Vec<_>>());
            let sd = one_sd * f64::sqrt(rho + (1.0 - rho) / k);
            eprintln!(
                "{instances}{shared}: 9m {m9} sd {sd9} (closed {sd}); 11m {m11} sd {sd11} (closed mean {dip})"
            );
            // The spread of a sample standard deviation is about sd/√(2n): 1.1% here.
            assert!(
                (sd9 / sd - 1.0).abs() < 0.04,
                "{instances}: sd {sd9} at 9m, {sd} closed"
            );
            let se = sd / (trials as f64).sqrt();
            assert!((m9 - mean).abs() < 4.0 * se, "{instances}: mean {m9} at 9m");
            // At 11m the mean's standard error is at most the one instance's.
            let se11 = sd11 / (trials as f64).sqrt();
            assert!(
                (m11 - dip).abs() < 4.0 * se11,
                "{instances}: {m11} at 11m, {dip} closed"
            );
        }
    }
}
