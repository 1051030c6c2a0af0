//! Monte Carlo on a recorded baseline (`plan simulate PLAN --baseline RECORDING`): each
//! trial is built from a recording of the healthy service instead of the synthetic model,
//! then read by the plan's own queries ([`Query`], the evaluator the replays use) and run
//! through the same release logic, gates, twins and tallies as a synthetic trial. What
//! follows is a *full* trial; a run whose rules read only rates of whole counters and
//! gauges no fault moves draws *sparse* trials instead, of the same law ([`sparse`]).
//!
//! How a trial is built, scrape by scrape (the recording's step is the scrape interval;
//! scrape `j` at `j · step - scrape_offset`, scrape 0 with every counter at 0):
//! - **Which stretch.** A block bootstrap ([`blocks`]): blocks of consecutive grid points,
//!   each from a random start, at its time of day when the recording covers a day.
//!   The service's traffic and the stable version's own series follow one draw of
//!   blocks; the canary's own series (gauges, CPU) others, one draw per canary instance.
//! - **Traffic, thinned.** A counter of requests or events (every counter but CPU, which
//!   a per-instance `avg(rate())` reads) is the whole service's: each of a span's events
//!   goes to the canary with the canary's share over the span (the phase's, averaged over
//!   the span where a phase starts inside it: events are taken as spread evenly over
//!   their span), a binomial draw; the stable track gets the rest. A histogram is thinned
//!   per bucket interval (disjoint sets of requests), then cumulated again. A counter whose
//!   increases are not whole numbers (a `_sum`) is split in proportion. A counter whose
//!   events are some of another's (completed checkouts of started ones: declared by the
//!   scenario file's `of`, or inferred from the recording) is thinned after its parent,
//!   each event going to the track its parent event went to ([`nested`]).
//! - **Gauges and CPU** are each track's own path through the recording: per-instance
//!   levels do not scale with traffic. The canary runs its phase's instances, each a
//!   recorded instance's memory, DB connections, CPU and `up` on blocks of its own
//!   ([`instances`]).
//! - **Faults, on top, on the canary** ([`effects`]): extra failures drawn per answered
//!   request (moved to a `code="500"` series), latencies multiplied by moving requests
//!   across buckets, a crash ending the canary's series, and gauge shifts: `memory_usage`,
//!   a custom metric's gauge (`metrics`) and a modelled gauge's `mean` move the canary's
//!   own recorded path by `intensity · affected · (level - the recording's mean of the
//!   series)` at each scrape, keeping the recording's own fluctuations around the moved
//!   level; `cpu_usage` adds that many busy seconds per second to the canary's CPU
//!   counter; a `per_request` counter's events per request scale its canary events. So
//!   every built-in fault kind and effect works on a recording; what has no clear meaning
//!   on one (a custom metric read through a counter or a ratio, an `of` counter's share, a
//!   split, a histogram's buckets) is refused by [`unsupported`], naming the effect's line.
//!
//! Random numbers: streams per trial, seeded from the trial's seed: the blocks, the
//! thinning of each series (its own stream, salted with its name and labels, so that the
//! recording's other series do not move its draws; a nested counter's draws depend on its
//! parent's thinning, both read by the plan's queries), and the fault's draws. Series no query
//! reads are left out of the trials (but requests, whose load and blast radius a fault
//! reads). A faulty trial's healthy twin draws the same blocks and
//! the same thinning, whatever the fault: the numbers stay common after the onset too, and
//! only the fault's own draws differ. Gauge and CPU shifts draw nothing; events per
//! request moved draw from the fault's stream.

mod blocks;
mod channel;
mod effects;
mod instances;
mod nested;
pub(crate) mod recording;
mod rows;
mod sparse;
mod trial;
mod values;

use effects::Bounds;
pub(crate) use effects::Refused;
pub(crate) use nested::Nesting;
pub(crate) use recording::Recording;
pub(crate) use sparse::{Sparse, SparseLanes};
pub(crate) use trial::RecordedLanes;

use crate::check::{Builtin, CheckedPlan, REQUESTS, builtin};
use crate::lower::AlertRule;
use crate::prom::quantile::parse_le;
use crate::prom::{Query, Semantics, Series, engine};
use crate::promql::{MetricExpr, Track};
use crate::sim::outcomes::RuleSet;
use crate::sim::scenario::{Basis, FailuresFrom, Fault, Scenarios};
use crate::sim::synth::{Model, SyntheticMetric, fault_moves};
use blocks::Blocks;
use channel::{Channel, Role};

/// The default block: an hour keeps a gauge's drift, a slow hour and an error burst
/// whole, and a week holds 168 of them per time of day to draw from.
pub(crate) const DEFAULT_BLOCK_MS: i64 = 3_600_000;

/// Below this much recording to draw each block from, trials share too little of it.
const MIN_POOL_MS: i64 = 6 * 3_600_000;

/// A recording and the block length its trials are drawn in (`--baseline`, `--block`):
/// what a run on a recording needs besides the plan, which builds its [`RecordedModel`].
#[derive(Clone, Copy)]
pub(crate) struct Baseline<'r> {
    pub(crate) rec: &'r Recording,
    pub(crate) block_ms: i64,
    /// Why every trial must be a full one whatever the plan reads (None: sparse trials
    /// where they serve): two plans compared on one recording share their draws only when
    /// both run the same kind of trial.
    full_because: Option<&'static str>,
}

impl<'r> Baseline<'r> {
    /// `rec` in blocks of `block_ms` (`--block`), else of [`DEFAULT_BLOCK_MS`].
    pub(crate) fn of(rec: &'r Recording, block_ms: Option<i64>) -> Baseline<'r> {
        Baseline {
            rec,
            block_ms: block_ms.unwrap_or(DEFAULT_BLOCK_MS),
            full_because: None,
        }
    }

    /// The same recording, every trial a full one, `why`.
    pub(crate) fn full(self, why: &'static str) -> Baseline<'r> {
        Baseline {
            full_because: Some(why),
            ..self
        }
    }

    /// The trials' model for `plan`'s `rules` ([`RecordedModel::new`]).
    pub(crate) fn model(
        self,
        plan: &CheckedPlan,
        rules: &[AlertRule],
        model: &Model<'_>,
    ) -> RecordedModel<'r> {
        let mut m = RecordedModel::new(plan, rules, self.rec, model, self.block_ms);
        if let Some(why) = self.full_because {
            m.sparse = Err(why.to_string());
        }
        m
    }

    /// What the scenarios are read for: trials built from this recording, at its rate.
    pub(crate) fn basis(self) -> Basis {
        Basis::Recorded {
            requests_per_second: self.requests_per_second(),
        }
    }

    /// The recording's mean rate of [`REQUESTS`] per second (None: it has none).
    pub(crate) fn requests_per_second(self) -> Option<f64> {
        let rec = self.rec;
        let all = Requests::of(rec).all;
        let span_s = (rec.points.saturating_sub(1)) as f64 * rec.step_ms as f64 / 1000.0;
        (all > 0.0 && span_s > 0.0).then(|| all / span_s)
    }
}

/// The recording's [`REQUESTS`]: all of them, and those whose `code` is 5xx.
struct Requests {
    all: f64,
    failed: f64,
}

impl Requests {
    fn of(rec: &Recording) -> Requests {
        let mut r = Requests {
            all: 0.0,
            failed: 0.0,
        };
        for s in rec.series.iter().filter(|s| s.name == REQUESTS) {
            let sum = s.total();
            r.all += sum;
            if is_failure(s) {
                r.failed += sum;
            }
        }
        r
    }

    /// The share of failed requests (0 without any).
    fn failure_share(&self) -> f64 {
        if self.all > 0.0 {
            self.failed / self.all
        } else {
            0.0
        }
    }
}

/// Where an answered request's failure is counted: a recorded channel's canary series, or
/// a series of the canary's own (`code="500"` where the recording has none).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FailTo {
    Channel(usize),
    Extra(usize),
}

/// A histogram of the recording: its bucket channels in `le` order (+Inf last).
#[derive(Debug, Clone)]
struct Histogram {
    channels: Vec<usize>,
    les: Bounds,
}

/// Everything the trials of a run share.
pub(crate) struct RecordedModel<'r> {
    rec: &'r Recording,
    blocks: Blocks,
    semantics: Semantics,
    /// The series trials write, without samples: per recorded series its canary then its
    /// stable copy, then the canary instances' copies ([`instances`]), then the
    /// `code="500"` series failures are moved to.
    templates: Vec<Series>,
    channels: Vec<Channel>,
    /// Channels that are histograms' buckets (thinned per interval, not one by one).
    histograms: Vec<Histogram>,
    in_histogram: Vec<bool>,
    /// Per channel of answered requests: where the canary's extra failures go.
    failures_to: Vec<Option<FailTo>>,
    /// The channels of [`REQUESTS`], and whether each counts failures (`code` 5xx).
    requests: Vec<(usize, bool)>,
    /// Per plan metric: its query for each track (None: no rule reads it).
    queries: Vec<Option<[Query; 2]>>,
    /// Per rule set (rollbacks; rollbacks and gates), per track: whether an evaluation
    /// running that set reads each metric. The others are left as they were, as the
    /// synthetic lanes leave what their [`crate::sim::synth::Demand`] does not ask for.
    reads: [[Vec<bool>; 2]; 2],
    /// The farthest back a query reads from its evaluation time.
    horizon_ms: i64,
    /// The canary's share in each phase.
    canary_share: Vec<f64>,
    tail_factor: f64,
    /// The recording's share of failed requests (`code` 5xx of [`REQUESTS`]).
    failure_share: f64,
    /// The block length asked for (`--block`).
    block_asked_ms: i64,
    /// Bucket series (`_bucket` with `le`) that make no histogram: no `+Inf`, or counts
    /// that are not whole.
    broken_histograms: Vec<String>,
    /// The levels a fault's gauge and event effects move the canary's series from.
    levels: effects::Levels,
    /// Whether the canary's failure series first have a sample at their first failure
    /// (`exposition.failures_from: first_failure`), not at the release's start.
    failures_late: bool,
    /// The recording's gaps ([`Recording::gaps`]), which no block replays.
    gaps: Vec<std::ops::Range<usize>>,
    /// The counters whose events are some of others', parents first.
    nested: Vec<nested::Nested>,
    /// Per nesting, the recording's events of the child per event of its parents (at
    /// most 1): what a parent event a fault adds brings of the child's.
    per_parent: Vec<f64>,
    /// The canary's instances in each phase
    /// ([`crate::sim::scenario::Exposition::instances`]).
    instances: Vec<usize>,
    /// Per name of a series of one instance's own, the recording's instances of it (the
    /// `instance` label, with a cAdvisor container's own label), sorted: canary instance
    /// `k` reads the `k mod n`-th ([`instances::per_instance`]).
    instance_keys: std::collections::BTreeMap<String, Vec<String>>,
    /// The stable version's instances, and whether they are its replicas (else one).
    stable_instances: (u32, bool),
    /// Where the templates of the canary's own failures start ([`Self::extras`]).
    extras_from: usize,
    /// The recorded values trials read, by grid point.
    rows: rows::Rows,
    /// What sparse trials draw, when the rules read only what they serve, or why every
    /// trial is a full one ([`RecordedLanes`]).
    sparse: Result<Sparse, String>,
    /// The scenario file's settings these trials do not use
    /// ([`Scenarios::unused_on_recording`]).
    unused: Vec<String>,
}

/// What the report says of the recording.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Described {
    pub(crate) files: Vec<String>,
    pub(crate) step_ms: i64,
    pub(crate) span_ms: i64,
    pub(crate) block_ms: i64,
    pub(crate) day_matched: bool,
    pub(crate) days: usize,
    /// How much of the recording a block can start in: the grid points it may start at
    /// ([`Blocks::pool`]), as a duration.
    pub(crate) pool_ms: i64,
    pub(crate) series_read: usize,
    pub(crate) series_unread: Vec<String>,
    /// The counters thinned inside others ([`nested`]).
    pub(crate) nested: Vec<Nesting>,
    pub(crate) warnings: Vec<String>,
    /// Metrics a rule reads that no series of the recording gives: `name (track)`.
    pub(crate) missing: Vec<String>,
    /// Selectors of a query a rule reads that match no recorded series (the query reads
    /// others): each says which.
    pub(crate) unmatched: Vec<String>,
    /// What makes the recording unusable for this plan, each saying what to do.
    pub(crate) problems: Vec<String>,
    /// How many instances the recording has of the series of one instance's own (the most
    /// of any one name; None: no rule reads such series).
    pub(crate) instances: Option<usize>,
    /// Why the trials are full ones, every scrape of every series (None: sparse trials).
    pub(crate) full_because: Option<String>,
    /// The scenario file's settings the trials do not use.
    pub(crate) unused: Vec<String>,
}

/// The fault effects of `scenarios` no trial on `model`'s recording can carry.
pub(crate) fn unsupported(
    model: &RecordedModel<'_>,
    plan: &CheckedPlan,
    scenarios: &Scenarios,
) -> Vec<Refused> {
    let mut out = model.levels.refused(plan, scenarios);
    // Two shares moved where one counter's events nest in the other's: the inner one
    // would be moved on parent events the outer move has not reached yet.
    for (i, s) in scenarios.scenarios.iter().enumerate() {
        let Some(f) = &s.fault else { continue };
        let moved: Vec<(usize, Vec<usize>)> = f
            .series
            .iter()
            .filter(|e| e.share.is_some())
            .map(|e| (e.series, model.levels.share_channels(e.series)))
            .collect();
        for (inner, channels) in &moved {
            let outer = moved.iter().find(|(o, outer)| {
                o != inner
                    && channels
                        .iter()
                        .any(|&c| nested::within(&model.nested, c, outer))
            });
            let Some((o, _)) = outer else { continue };
            let models = &scenarios.baseline.series;
            let (name, outer) = (&models[*inner].name, &models[*o].name);
            out.push(effects::Refused {
                scenario: i,
                key: format!("series/{}/share", crate::pointer::escape(name)),
                message: format!(
                    "scenario `{}` moves `{name}`'s `share` and `{outer}`'s, and `{name}` counts some of `{outer}`'s events: a trial built from a recording cannot yet move both shares at once",
                    s.name
                ),
                hint: format!("run this scenario without --baseline, or move one of the two shares (a move of `{outer}`'s carries to the events nested in it)"),
            });
        }
    }
    // Failures move from answered requests to their `code="500"` series: without a
    // `code` label there is nowhere to move them, and the fault would do nothing.
    if model.failures_to.iter().all(Option::is_none) {
        for (i, s) in scenarios.scenarios.iter().enumerate() {
            if s.fault.as_ref().is_some_and(|f| f.error_rate.is_some()) {
                out.push(effects::Refused {
                    scenario: i,
                    key: "error_rate".into(),
                    message: format!(
                        "scenario `{}` sets `error_rate`, but no `{REQUESTS}` series of the recording has a `code` label other than 5xx: a recorded trial moves the canary's failures from its answered requests to their `code=\"500\"` series, and here it has none to move them from",
                        s.name
                    ),
                    hint: format!(
                        "record `{REQUESTS}` with its `code` label (as client libraries export it), or run this scenario without --baseline"
                    ),
                });
            }
        }
    }
    out
}

impl<'r> RecordedModel<'r> {
    /// The trials' model for `plan`'s `rules` over `rec`, blocks of `block_ms`.
    pub(crate) fn new(
        plan: &CheckedPlan,
        rules: &[AlertRule],
        rec: &'r Recording,
        model: &Model<'_>,
        block_ms: i64,
    ) -> RecordedModel<'r> {
        let scenarios = model.scenarios;
        // Busy-seconds counters, each instance's own (not thinned with the traffic): what an
        // `avg(rate())` reads, and what the CPU metric reads, its query overridden or not.
        let cpu_names: Vec<String> = plan
            .metrics
            .iter()
            .flat_map(|m| match &m.expr {
                MetricExpr::AvgRate { sel, .. } => vec![sel.metric.clone()],
                _ if builtin(&m.name).is_some_and(|b| b.kind == Builtin::CpuUsage) => {
                    instances::selected_names(m, Track::Canary)
                }
                _ => Vec::new(),
            })
            .collect();
        let mut templates = Vec::new();
        let mut channels = Vec::new();
        let with = |r: &recording::Recorded, track: Track, code: Option<&str>| {
            let mut labels = r.labels.clone();
            if let Some(code) = code {
                labels.retain(|(k, _)| k != "code");
                labels.push(("code".into(), code.into()));
            }
            labels.push(("service".into(), plan.service.name.clone()));
            labels.push(("track".into(), track.as_str().into()));
            labels.sort();
            Series {
                name: r.name.clone(),
                labels,
                samples: Vec::new(),
                line: r.line,
                column: r.column,
            }
        };
        let failures_late = scenarios.exposition.failures_from == FailuresFrom::FirstFailure;
        // A recorded counter modelled with a `split` whose label it carries: one of the
        // label sets the canary's client library creates at their first increment.
        let split_child = |r: &recording::Recorded| {
            scenarios.exposition.split_born_late
                && r.counter
                && scenarios.baseline.series.iter().any(|m| {
                    m.name == r.name
                        && m.histogram.is_none()
                        && m.split
                            .as_ref()
                            .is_some_and(|s| r.labels.iter().any(|(k, _)| *k == s.label))
                })
        };
        for (i, r) in rec.series.iter().enumerate() {
            let role = if r.counter && !cpu_names.contains(&r.name) {
                Role::Traffic { whole: r.whole }
            } else {
                Role::Own
            };
            channels.push(Channel {
                rec: i,
                role,
                canary: templates.len(),
                stable: templates.len() + 1,
                live: r.name == REQUESTS,
                salt: fnv1a(display(r).as_bytes()),
                born_late: (failures_late && r.name == REQUESTS && is_failure(r)) || split_child(r),
                nested: false,
                instance: None,
                copy: false,
            });
            templates.push(with(r, Track::Canary, None));
            templates.push(with(r, Track::Stable, None));
        }
        let runs = scenarios.exposition.instances(plan);
        let canary_instances: Vec<usize> = runs.iter().map(|c| c[0] as usize).collect();
        let stable_instances = runs.first().map_or(1, |c| c[1]);
        let instance_keys =
            instances::per_instance(plan, rec, &canary_instances, &mut channels, &mut templates);
        // Answered requests' failures go to the `code="500"` series of the same labels,
        // made for the canary when the recording has none.
        let extras_from = templates.len();
        let mut failures_to = vec![None; channels.len()];
        for (c, ch) in channels.iter().enumerate() {
            let r = &rec.series[ch.rec];
            let code = r
                .labels
                .iter()
                .find(|(k, _)| k == "code")
                .map(|(_, v)| v.as_str());
            if r.name != REQUESTS || code.is_none_or(|c| c.starts_with('5')) {
                continue;
            }
            let target = with(r, Track::Canary, Some("500"));
            let same = |t: &Series| t.name == target.name && t.labels == target.labels;
            failures_to[c] = Some(
                match channels.iter().position(|ch| same(&templates[ch.canary])) {
                    Some(c2) => FailTo::Channel(c2),
                    None => FailTo::Extra(match templates.iter().position(same) {
                        Some(at) => at,
                        None => {
                            templates.push(target);
                            templates.len() - 1
                        }
                    }),
                },
            );
        }
        let requests = channels
            .iter()
            .enumerate()
            .filter(|(_, ch)| rec.series[ch.rec].name == REQUESTS)
            .map(|(c, ch)| (c, is_failure(&rec.series[ch.rec])))
            .collect();
        let (histograms, broken_histograms) = histograms(rec, &channels);
        let mut in_histogram = vec![false; channels.len()];
        for h in &histograms {
            for &c in &h.channels {
                in_histogram[c] = true;
            }
        }
        let mut horizon_ms = 0;
        let queries: Vec<Option<[Query; 2]>> = plan
            .metrics
            .iter()
            .enumerate()
            .map(|(mi, m)| {
                rules.iter().any(|r| r.reads(mi)).then(|| {
                    [Track::Canary, Track::Stable].map(|track| {
                        if let Ok(p) = engine::program(&m.expr.promql(Some(track))) {
                            for (_, reach) in p.selectors() {
                                horizon_ms = horizon_ms.max(reach);
                            }
                        }
                        Query::raw(&m.expr, track, &templates)
                    })
                })
            })
            .collect();
        let read = read_templates(&queries, templates.len());
        for ch in &mut channels {
            ch.live |= read[ch.canary] || read[ch.stable];
        }
        let nested = nested::nesting(
            rec,
            &channels,
            &in_histogram,
            &queries,
            &scenarios.baseline.series,
        );
        for n in &nested {
            channels[n.child].nested = true;
        }
        let events = |c: usize| rec.series[channels[c].rec].total();
        let per_parent = nested
            .iter()
            .map(|n| {
                let parents: f64 = n.parent.iter().map(|&p| events(p)).sum();
                if parents > 0.0 {
                    (events(n.child) / parents).min(1.0)
                } else {
                    0.0
                }
            })
            .collect();
        let reads = [RuleSet::Rollbacks, RuleSet::RollbacksAndGates].map(|set| {
            [false, true].map(|stable| {
                (0..plan.metrics.len())
                    .map(|mi| {
                        rules.iter().any(|r| {
                            set.kinds().contains(&r.kind)
                                && r.reads(mi)
                                && (!stable || (r.metric == mi && r.condition.uses_stable()))
                        })
                    })
                    .collect()
            })
        });
        let levels =
            effects::Levels::new(plan, scenarios, (rec, rec.step_ms), &channels, &templates);
        let step = rec.step_ms;
        let gaps = rec.gaps();
        let buckets: Vec<&[usize]> = histograms.iter().map(|h| h.channels.as_slice()).collect();
        let rows = rows::Rows::new(rec, &channels, &buckets, &nested);
        let mut recorded = RecordedModel {
            rec,
            blocks: Blocks::new(
                (block_ms / step).max(1) as usize,
                (rec.points, step, rec.start_ms),
                scenarios.traffic.start_hour,
                &gaps,
            ),
            semantics: model.semantics,
            templates,
            channels,
            histograms,
            in_histogram,
            failures_to,
            requests,
            queries,
            reads,
            horizon_ms,
            canary_share: model.canary_share.clone(),
            tail_factor: scenarios.baseline.tail_factor,
            failure_share: Requests::of(rec).failure_share(),
            block_asked_ms: block_ms,
            broken_histograms,
            levels,
            failures_late,
            gaps,
            nested,
            per_parent,
            instances: canary_instances,
            instance_keys,
            stable_instances: (stable_instances, scenarios.exposition.per_instance),
            extras_from,
            rows,
            sparse: Err(String::new()),
            unused: scenarios.unused_on_recording.clone(),
        };
        recorded.sparse = Sparse::of(&recorded, plan, (scenarios, model.eval_ms));
        recorded
    }

    /// What sparse trials draw, when every trial of this run can be one.
    pub(crate) fn sparse(&self) -> Option<&Sparse> {
        self.sparse.as_ref().ok()
    }

    /// Why every trial is a full one (None: sparse trials).
    pub(crate) fn full_because(&self) -> Option<String> {
        self.sparse.as_ref().err().cloned()
    }

    /// What a trial's draws depend on beyond the recording, the seed and the phases: None
    /// for full trials (nothing else); for sparse ones, where their spans end (the
    /// evaluation interval, the windows that are not whole evaluation intervals). Two runs
    /// with the same shape draw the same traffic in trial `t`.
    pub(crate) fn draw_shape(&self) -> Option<(i64, Vec<i64>)> {
        self.sparse.as_ref().ok().map(Sparse::shape)
    }

    /// What the report says of the recording, and its warnings: `release_ms` the longest
    /// a trial runs, `scrape_ms` the plan's scrape interval.
    pub(crate) fn describe(
        &self,
        plan: &CheckedPlan,
        release_ms: i64,
        scrape_ms: i64,
    ) -> Described {
        let mut missing = Vec::new();
        let mut unmatched = Vec::new();
        let mut unpaired = Vec::new();
        for (mi, pair) in self.queries.iter().enumerate() {
            let Some(pair) = pair else { continue };
            for (q, track) in pair.iter().zip([Track::Canary, Track::Stable]) {
                if q.reads().is_empty() {
                    let m = &plan.metrics[mi];
                    if let Some(why) = self.unpaired(m, track) {
                        // The stable track's series pair as the canary's.
                        unpaired.push(why);
                        break;
                    }
                    let names = instances::selected_names(m, track);
                    let from = match names.as_slice() {
                        [] => String::new(),
                        names => format!(
                            ", read from {}",
                            names
                                .iter()
                                .map(|n| format!("`{n}`"))
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    };
                    missing.push(format!("`{}` ({}{from})", m.name, track.as_str()));
                    continue;
                }
                // A selector no recorded series matches leaves its part of the query out
                // of every trial (a `code` the recording labels `status`).
                let m = &plan.metrics[mi];
                let text = m.expr.promql(Some(track));
                let Ok(program) = engine::program(&text) else {
                    continue;
                };
                let before = unmatched.len();
                let unmatched_here = engine::unmatched(&program, &self.templates)
                    .into_iter()
                    .filter(|(_, sel)| !no_such_code(sel, &self.templates));
                for (nth, sel) in unmatched_here {
                    let shown = shown_selector(&text, sel, nth);
                    unmatched.push(format!(
                        "the selector `{shown}` of `{}` ({}) matches no series of the recording",
                        m.name,
                        track.as_str()
                    ));
                }
                // The stable track's selectors are the canary's with another track.
                if unmatched.len() > before {
                    break;
                }
            }
        }
        let read = read_templates(&self.queries, self.templates.len());
        // A recorded series (not a canary instance's copy of one) some query reads.
        let used = |c: &Channel| !c.copy && (read[c.canary] || read[c.stable]);
        let rec = self.rec;
        let mut warnings = Vec::new();
        if rec.span_ms() < release_ms {
            warnings.push(format!(
                "the recording spans {}, less than the {} a trial may run: each trial replays parts of it more than once",
                human(rec.span_ms()),
                human(release_ms)
            ));
        }
        let mut problems = Vec::new();
        let block_ms = self.blocks.len as i64 * rec.step_ms;
        if self.block_asked_ms < rec.step_ms || self.block_asked_ms > rec.span_ms() {
            problems.push(format!(
                "a block of {} does not fit a recording of {} every {}: give `--block` from one step to the recording's span (an hour or more keeps its correlations)",
                human(self.block_asked_ms),
                human(rec.span_ms()),
                human(rec.step_ms)
            ));
        }
        if block_ms != self.block_asked_ms && problems.is_empty() {
            warnings.push(format!(
                "blocks are whole steps of the recording: `--block {}` is taken as {}",
                human(self.block_asked_ms),
                human(block_ms)
            ));
        }
        if self.blocks.len == 1 && problems.is_empty() {
            warnings.push(
                "blocks of one step keep none of the recording's correlations (bursts, drifts, slow hours): every scrape is drawn on its own; give `--block` of an hour or more".into(),
            );
        }
        for c in self.channels.iter().filter(|c| used(c)) {
            let r = &rec.series[c.rec];
            if r.step_ms != rec.step_ms && r.step_ms != 0 {
                problems.push(format!(
                    "{} (from {}:{}:{}) is sampled every {}, the recording every {}: export every series at one step (`--step`)",
                    shown(r),
                    rec.files.get(r.file).map_or("", String::as_str),
                    r.line,
                    r.column,
                    human(r.step_ms),
                    human(rec.step_ms)
                ));
            }
        }
        let read_name = |name: &str| {
            self.channels
                .iter()
                .any(|c| used(c) && rec.series[c.rec].name == name)
        };
        for name in self.broken_histograms.iter().filter(|n| read_name(n)) {
            problems.push(format!(
                "the histogram `{name}` has no `le=\"+Inf\"` bucket, or a bucket whose increase is not a whole count: export every bucket of it, `+Inf` included"
            ));
        }
        let mut gaps: Vec<(String, f64, bool)> = self
            .channels
            .iter()
            .filter(|c| used(c))
            .map(|c| {
                let k = rec.coverage(c.rec, &self.gaps);
                (shown(&rec.series[c.rec]), k, c.instance.is_some())
            })
            .filter(|&(_, k, _)| k < 1.0)
            .collect();
        gaps.sort_by(|a, b| a.1.total_cmp(&b.1));
        if !gaps.is_empty() {
            let listed: Vec<String> = gaps
                .iter()
                .take(5)
                .map(|(s, k, _)| format!("{s} {:.1}%", 100.0 * k))
                .collect();
            // Instances that come and go (rescheduled pods) leave the canary's without
            // samples where theirs have none.
            let instances = if gaps.iter().any(|g| g.2) {
                "; a canary instance replays one recorded instance (the `k mod n`-th of each series' `instance` values) and misses where it does, so record a fixed set of instances (`instance` values that last the whole recording)"
            } else {
                ""
            };
            warnings.push(format!(
                "{} series the rules read miss grid points ({}{}): a trial replays a missing point as a failed scrape (a silent canary, a gap in a rate), so export without gaps, or trim the recording to where every series is present{instances}",
                gaps.len(),
                listed.join(", "),
                if gaps.len() > 5 { ", ..." } else { "" }
            ));
        }
        self.gap_notes((block_ms, release_ms), &mut warnings, &mut problems);
        let pool = self.blocks.pool();
        let pool_ms = pool as i64 * rec.step_ms;
        if pool_ms < MIN_POOL_MS {
            let (all, free) = self.blocks.starts();
            let from = match self.blocks.day_matched() {
                true => format!(
                    ", within {} of their time of day on {} day{}",
                    human(self.blocks.shift() as i64 * rec.step_ms),
                    self.blocks.days(),
                    if self.blocks.days() == 1 { "" } else { "s" }
                ),
                false => String::new(),
            };
            let left = if free < all { ", gaps left out" } else { "" };
            let shorter = if !self.blocks.day_matched() && block_ms > pool_ms {
                ", or give a shorter `--block`"
            } else {
                ""
            };
            warnings.push(format!(
                "blocks can start at only {pool} grid point{} of the recording ({} of it{from}{left}): the trials replay much the same stretches, whose own chance moves them all alike, so the intervals understate the uncertainty; record more days (a week or more){shorter}",
                if pool == 1 { "" } else { "s" },
                human(pool_ms)
            ));
        }
        if !self.blocks.day_matched() {
            warnings.push(if 86_400_000 % rec.step_ms != 0 {
                format!(
                    "the recording's step ({}) does not divide a day: blocks are drawn at any time of day, so a daily cycle is not kept",
                    human(rec.step_ms)
                )
            } else {
                let fits = rec.span_ms() - 86_400_000;
                format!(
                    "blocks are drawn at any time of day, so a daily cycle is not kept: a block of {} is drawn at its time of day from a recording that spans a day and a block ({}), and this one spans {}; {}",
                    human(block_ms),
                    human(86_400_000 + block_ms),
                    human(rec.span_ms()),
                    if fits >= rec.step_ms {
                        format!("a `--block` of at most {} keeps it", human(fits))
                    } else {
                        "record more than a day".into()
                    }
                )
            });
        }
        // Only where a rule reads some instance's own series.
        let read_keys: std::collections::BTreeMap<String, Vec<String>> = (self.instance_keys)
            .iter()
            .filter(|(name, _)| read_name(name))
            .map(|(name, keys)| (name.clone(), keys.clone()))
            .collect();
        let instances = read_keys.values().map(Vec::len).max();
        let (runs, per_replica) = self.stable_instances;
        warnings.extend(instances::stable_note(&read_keys, runs, per_replica));
        if rec.step_ms != scrape_ms {
            warnings.push(format!(
                "the recording's step ({}) is not the plan's scrape interval ({}): trials scrape at the recording's step",
                human(rec.step_ms),
                human(scrape_ms)
            ));
        }
        Described {
            files: rec.files.clone(),
            step_ms: rec.step_ms,
            span_ms: rec.span_ms(),
            block_ms,
            day_matched: self.blocks.day_matched(),
            days: self.blocks.days(),
            pool_ms,
            series_read: self.channels.iter().filter(|c| used(c)).count(),
            series_unread: self
                .channels
                .iter()
                .filter(|c| !c.copy && !used(c))
                .map(|c| shown(&rec.series[c.rec]))
                .collect(),
            nested: self
                .nested
                .iter()
                .map(|n| n.described(|c| shown(&rec.series[self.channels[c].rec])))
                .collect(),
            warnings,
            missing,
            unmatched,
            problems: unpaired.into_iter().chain(problems).collect(),
            instances,
            full_because: self.full_because(),
            unused: self.unused.clone(),
        }
    }

    /// Why metric `m`'s query on `track` reads no series though each of its selectors
    /// matches some (None when one matches none): its operator pairs series by their
    /// labels, and the recording's differ.
    fn unpaired(&self, m: &crate::check::Metric, track: Track) -> Option<String> {
        let text = m.expr.promql(Some(track));
        let program = engine::program(&text).ok()?;
        let selectors = program.selectors();
        if selectors.is_empty() || !engine::unmatched(&program, &self.templates).is_empty() {
            return None;
        }
        // Per selector, the label names of the series it matches (but those a trial sets).
        let keys: Vec<(String, std::collections::BTreeSet<&str>)> = selectors
            .iter()
            .enumerate()
            .map(|(i, (sel, _))| {
                let nth = selectors[..i]
                    .iter()
                    .filter(|(o, _)| o.name == sel.name)
                    .count();
                let keys = self
                    .templates
                    .iter()
                    .filter(|t| sel.matches(&t.name, &t.labels))
                    .flat_map(|t| t.labels.iter().map(|(k, _)| k.as_str()))
                    .filter(|k| !recording::TRIAL_LABELS.contains(k))
                    .collect();
                (shown_selector(&text, sel, nth).to_string(), keys)
            })
            .collect();
        let all: std::collections::BTreeSet<&str> =
            keys.iter().flat_map(|(_, k)| k.iter().copied()).collect();
        let quoted = |ks: &mut dyn Iterator<Item = &&str>| {
            ks.map(|k| format!("`{k}`")).collect::<Vec<_>>().join(", ")
        };
        let differ = quoted(
            &mut all
                .iter()
                .filter(|k| keys.iter().any(|(_, ks)| !ks.contains(*k))),
        );
        let each: Vec<String> = keys
            .iter()
            .map(|(shown, ks)| match ks.len() {
                0 => format!("`{shown}` has no label of its own"),
                _ => format!("`{shown}` has {}", quoted(&mut ks.iter())),
            })
            .collect();
        Some(format!(
            "`{}` reads series the recording has, but its query pairs them by their labels and none pair up: {}; export them with the same labels{}",
            m.name,
            each.join(", "),
            match differ.as_str() {
                "" => String::new(),
                d => format!(" (they differ in {d})"),
            }
        ))
    }

    /// The warning on the recording's gaps (what they leave out of the block starts), or
    /// the problem when they leave under a block's worth of starts; and the times of day
    /// at which a gap on every day leaves no start to match.
    fn gap_notes(
        &self,
        (block_ms, release_ms): (i64, i64),
        warnings: &mut Vec<String>,
        problems: &mut Vec<String>,
    ) {
        if self.gaps.is_empty() {
            return;
        }
        let rec = self.rec;
        let at = |p: usize| {
            crate::sim::trace::time::format_rfc3339(rec.start_ms + p as i64 * rec.step_ms)
        };
        let listed: Vec<String> = self
            .gaps
            .iter()
            .take(3)
            .map(|g| {
                // The points before it at which every series only repeats its last sample.
                let lead = g.clone().take_while(|&p| rec.repeats(p)).count();
                if lead == g.len() {
                    return format!(
                        "from {} to the end ({}), where every series repeats its last sample (the recorder stopped before the export did)",
                        at(g.start),
                        human(lead as i64 * rec.step_ms)
                    );
                }
                let empty = match g.len() - lead {
                    1 => format!("at {} ({})", at(g.start + lead), human(rec.step_ms)),
                    n => format!(
                        "from {} to {} ({})",
                        at(g.start + lead),
                        at(g.end - 1),
                        human(n as i64 * rec.step_ms)
                    ),
                };
                match lead {
                    0 => empty,
                    n => format!(
                        "{empty}, after {} in which every series repeats its last sample (a range query's answer for up to 5m after the last scrape)",
                        human(n as i64 * rec.step_ms)
                    ),
                }
            })
            .collect();
        let missing: usize = self
            .gaps
            .iter()
            .map(|g| g.clone().filter(|&p| !rec.repeats(p)).count())
            .sum();
        let gaps = match self.gaps.len() {
            1 => format!("no series of the recording has a new sample {}", listed[0]),
            n => format!(
                "no series of the recording has a new sample {}{}, {} in all",
                listed.join(", "),
                if n > 3 {
                    format!(
                        " and in {} more gap{}",
                        n - 3,
                        if n == 4 { "" } else { "s" }
                    )
                } else {
                    String::new()
                },
                human(missing as i64 * rec.step_ms)
            ),
        };
        let (all, free) = self.blocks.starts();
        let share = |n: usize| human(n as i64 * rec.step_ms);
        if free < self.blocks.len {
            problems.push(format!(
                "{gaps}: blocks of {} that replay none of them can start in only {} of the recording, under a block's length, too little to draw from; record a stretch without them, or a longer one",
                human(block_ms),
                share(free)
            ));
            return;
        }
        warnings.push(format!(
            "{gaps}: the recorder was down, not the service (replayed, the canary would go silent), so blocks of {} that would replay them are left out: {} of the recording's {} of block starts ({:.1}%)",
            human(block_ms),
            share(all - free),
            share(all),
            100.0 * (all - free) as f64 / all as f64
        ));
        let blocks = (release_ms / block_ms.max(1)).max(0) as usize + 2;
        let times: Vec<String> = self
            .blocks
            .unmatched(blocks)
            .into_iter()
            .map(|p| {
                let ms = (rec.start_ms + p as i64 * rec.step_ms).rem_euclid(86_400_000) / 1000;
                format!("{:02}:{:02}:{:02}", ms / 3600, ms / 60 % 60, ms % 60)
            })
            .collect();
        if !times.is_empty() {
            warnings.push(format!(
                "the gaps leave no block start near {} UTC on any day: the blocks a trial replays from then are drawn at any time of day",
                times.join(", ")
            ));
        }
    }

    /// Whether `fault` moves what the canary's query of metric `mi` reads (`source`: the
    /// metric's synthetic model): what moves it in the synthetic model, or a recorded
    /// series the fault changes: requests and their failures under an `error_rate`,
    /// histogram buckets under a latency effect, a series a `series` effect names. A rule
    /// on such a metric that rolls a faulty trial back has caught the fault.
    pub(crate) fn moves(
        &self,
        scenarios: &Scenarios,
        (fault, mi, source): (&Fault, usize, SyntheticMetric),
    ) -> bool {
        if fault_moves(fault, mi, source) {
            return true;
        }
        let Some([canary, _]) = &self.queries[mi] else {
            return false;
        };
        let latency = fault.latency_factor.is_some() || fault.tail_share.is_some();
        canary.reads().into_iter().any(|t| {
            let channel = (self.channels.iter()).position(|ch| ch.canary == t || ch.stable == t);
            let requests = channel.is_some_and(|c| self.requests.iter().any(|&(r, _)| r == c));
            (fault.error_rate.is_some() && (requests || self.extras().contains(&t)))
                || (latency && channel.is_some_and(|c| self.in_histogram[c]))
                || fault.series.iter().any(|e| {
                    scenarios
                        .baseline
                        .series
                        .get(e.series)
                        .is_some_and(|m| m.name == self.templates[t].name)
                })
        })
    }

    /// The templates of the canary's own failures (after the channels' two each and the
    /// copies' one).
    fn extras(&self) -> std::ops::Range<usize> {
        self.extras_from..self.templates.len()
    }

    /// Scrape `j`'s time (relative ms), the scrapes coming `offset_ms` before each
    /// evaluation.
    fn scrape_time(&self, j: i64, offset_ms: i64) -> i64 {
        j * self.rec.step_ms - offset_ms
    }
}

/// Whether a request series counts failures (a 5xx `code`).
fn is_failure(r: &recording::Recorded) -> bool {
    r.labels
        .iter()
        .any(|(k, v)| k == "code" && v.starts_with('5'))
}

/// Whether `sel` matches none of `templates` only through its `code` matcher, among
/// series that carry a `code` label: the recording has its status codes, and none of
/// these (a recording without failures has no 5xx series; a query's `or vector(0)` or its
/// sum reads that as no such request), which is not a label the recording lacks.
fn no_such_code(sel: &engine::Selector, templates: &[Series]) -> bool {
    if !sel.matchers.or_matchers.is_empty() {
        return false;
    }
    let mut without = sel.clone();
    without.matchers.matchers.retain(|m| m.name != "code");
    let mut hits = templates
        .iter()
        .filter(|t| without.matches(&t.name, &t.labels))
        .peekable();
    hits.peek().is_some() && hits.all(|t| t.labels.iter().any(|(k, _)| k == "code"))
}

/// Per template (of `count`), whether one of `queries` reads it.
fn read_templates(queries: &[Option<[Query; 2]>], count: usize) -> Vec<bool> {
    let mut read = vec![false; count];
    for pair in queries.iter().flatten() {
        for q in pair {
            for i in q.reads() {
                read[i] = true;
            }
        }
    }
    read
}

/// 64-bit FNV-1a of `bytes`.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// A recorded series as PromQL writes it.
/// A recorded series as the report writes it: [`display`] without the braces of a series
/// with no labels, as Prometheus writes one.
fn shown(r: &recording::Recorded) -> String {
    let name = display(r);
    match name.strip_suffix("{}") {
        Some(bare) => bare.to_string(),
        None => name,
    }
}

fn display(r: &recording::Recorded) -> String {
    Series {
        name: r.name.clone(),
        labels: r.labels.clone(),
        samples: Vec::new(),
        line: r.line,
        column: r.column,
    }
    .display()
}

/// A duration as the plan writes them (`1d23h59m45s`).
fn human(ms: i64) -> String {
    crate::model::Duration::from_millis(ms.max(0) as u64)
        .map_or_else(|| "0s".into(), |d| d.to_string())
}

/// Selector `sel` of query `text` as written there (its `nth` of that name), for
/// messages; its name where it cannot be found.
fn shown_selector<'t>(text: &'t str, sel: &'t engine::Selector, nth: usize) -> &'t str {
    let name = sel.name.as_deref().unwrap_or("");
    crate::prom::parse::locate_selector(text, name, nth).map_or(name, |r| &text[r])
}

/// The recording's histograms: bucket counters (`_bucket` with a numeric `le`) grouped by
/// their other labels, in `le` order; and the names of those that make none (no `+Inf`
/// bucket, or an increase that is not a whole count).
fn histograms(rec: &Recording, channels: &[Channel]) -> (Vec<Histogram>, Vec<String>) {
    // (name, labels but `le`, (le, channel) per bucket)
    type Group = (String, Vec<(String, String)>, Vec<(f64, usize)>);
    let mut groups: Vec<Group> = Vec::new();
    for (c, ch) in channels.iter().enumerate() {
        let r = &rec.series[ch.rec];
        if !r.name.ends_with("_bucket") || !matches!(ch.role, Role::Traffic { .. }) {
            continue;
        }
        let Some(le) = r
            .labels
            .iter()
            .find(|(k, _)| k == "le")
            .and_then(|(_, v)| parse_le(v))
        else {
            continue;
        };
        let rest: Vec<(String, String)> = r
            .labels
            .iter()
            .filter(|(k, _)| k != "le")
            .cloned()
            .collect();
        match groups
            .iter_mut()
            .find(|(n, l, _)| *n == r.name && *l == rest)
        {
            Some(g) => g.2.push((le, c)),
            None => groups.push((r.name.clone(), rest, vec![(le, c)])),
        }
    }
    let (mut good, mut broken) = (Vec::new(), Vec::new());
    for (name, _, mut b) in groups {
        b.sort_by(|x, y| x.0.total_cmp(&y.0));
        let whole = b
            .iter()
            .all(|&(_, c)| matches!(channels[c].role, Role::Traffic { whole: true }));
        if whole && b.last().is_some_and(|x| x.0 == f64::INFINITY) {
            good.push(Histogram {
                les: Bounds::new(b.iter().map(|x| x.0).collect()),
                channels: b.iter().map(|x| x.1).collect(),
            });
        } else if !broken.contains(&name) {
            broken.push(name);
        }
    }
    (good, broken)
}
