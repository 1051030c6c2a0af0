//! The Monte Carlo report: per scenario, the answer first (for a healthy scenario the
//! false-rollback rate; for a faulty one how often the fault was caught, how often the
//! release rolled back anyway, as its healthy twin did, and how often it escaped), then
//! the details (raw rollback figures, per phase and per rule, time to catch, blast radius,
//! gates), then what the run assumed (semantics, intervals, scenario file, the model of
//! each metric, seed and trials). Printed for people or as a versioned JSON document.
//!
//! # JSON, `schema_version` 5
//! Top level: `plan`, `seed`, `trials_per_scenario`, `semantics` (`prometheus2` |
//! `prometheus3`), `evaluation_interval_seconds`, `requests_per_second`, `assumptions`,
//! `twins`, `totals` (`trials`, `evaluation_steps`, `rule_evaluations`) and `scenarios`, in
//! file order. A proportion is `{count, trials, probability, ci95: [lo, hi] (Wilson),
//! std_error}` (Monte Carlo standard error).
//! - `assumptions`: `semantics`, `scrape_interval_seconds`,
//!   `evaluation_interval_seconds`, `window_seconds`, `seed`, `trials_per_scenario`,
//!   `scenario_file` (its path, or `<built-in scenarios>`), `traffic`
//!   (`requests_per_second`, `daily_amplitude`, `overdispersion`, `error_clustering`,
//!   `error_clustering_time_constant_seconds` (the mean length of a cluster) and
//!   `error_clustering_shared` (the correlation of the two versions' multipliers), only
//!   when errors cluster, `start_hour`, `users_per_day`), `gate_policy` (`{on_failure, max_hold: {text, seconds},
//!   after_max_hold, text}`, the hold's keys only for a hold, as the manifest and the
//!   replay give it), `watch_seconds` and
//!   `watch_default` (how long the last
//!   phase is watched, and whether the plan left it to the default), `exposition`
//!   (`per_code`: the request counters per status code; `failures_from`:
//!   `first_failure` or `release_start`, when a track's failure series first has a sample;
//!   `split_from`, present when a `baseline.series` counter has a `split`: `first_event` or
//!   `release_start`, when each of its values first has a sample; `instances`, present
//!   on a synthetic run whose rules read memory, DB connections or targets up (on a
//!   recording: those or CPU): `{model: replicas | one, stable, canary: [per phase]}`, the
//!   instances those come from (on a recording, `stable` is how many it has);
//!   `scrape_offset_seconds`: how
//!   long after a scrape each evaluation comes, when fixed; else `scrape_offset: "per
//!   trial"` and `offset_classes`, the strata of the scrape interval whose midpoints the
//!   trials take in turn), and `metrics`: per
//!   metric some rule reads, in plan order,
//!   `{metric, model, parameters}`: `model` one of `error_rate`, `availability`,
//!   `throughput`, `latency_quantile`, `cpu`, `memory`, `db_connections`, `redis_memory`,
//!   `custom_gauge`, `query_over_series` (its own query evaluated over series modelled
//!   under `baseline.series`; then `query` is the canary's query text, `series` lists
//!   those models described, and `series_models` as numbers: `{name, kind: counter |
//!   counter_of | gauge | histogram, per_request?, of?, share?, mean?, noise?,
//!   time_constant_seconds?, split?:
//!   {label: {value: share}}, buckets?: {bound: share at or below}}`), `not_modelled`
//!   (always absent: its rules never fire), `parameters` its baseline values by name
//!   (fractions, seconds, the gauge's unit; memory's and DB connections' per instance,
//!   `targets_up`'s `healthy` each target's `up`); with `--baseline` (trials built from a
//!   recording), `recording`: `{files, step_seconds, span_seconds, block_seconds,
//!   time_of_day_matched, days, draws_from_seconds (how much of the recording a block can
//!   start in: the grid points it may start at, gaps left out), series_read,
//!   series_unread: [series], nested: [{series, within: [series], known: declared |
//!   inferred}] (counters thinned inside others: each of their events goes to the track
//!   its parent event went to), warnings: [text], instances? (how many instances the
//!   recording has of the series each exports, when a rule reads memory, DB connections,
//!   CPU or targets up), trials: {kind: sparse | full, because? (full: what some rule
//!   reads that sparse trials cannot draw)} (which recorded trials ran: the same law,
//!   other numbers at a seed), unused_settings: [key] (what the scenario file states
//!   that only the synthetic model uses, as `traffic.daily_amplitude`)}`.
//!
//!   On a recording, what only the synthetic model uses is left out, not given and
//!   marked unused: `metrics` (the trials read the recording's own series),
//!   `traffic.daily_amplitude`, `overdispersion` and `error_clustering*` (its traffic is
//!   the recording's), `exposition.per_code` (so are its series; `failures_from` stays:
//!   it says when the canary's failure series first has a sample).
//!   What a recorded run does use stays: `traffic.requests_per_second` (then the
//!   recording's mean rate of `http_requests_total`, as the top level's; it sets the
//!   thin-traffic warnings and a tune's `min_requests` ranges), `start_hour` (where
//!   blocks are drawn from in the day), `users_per_day`, and the scrape offset.
//! - `twins` (present when a scenario is faulty): where the healthy twins come from,
//!   `{scenario: name | null (an extra fault-free pass of the same trials), false_rollback}`.
//! - Each scenario: `name`, `description`, `faulty`, `trials`;
//!   - `rollback` (any rollback) and `false_rollback` (before the fault's onset, or with no
//!     fault);
//!   - faulty only: `caught` (rolled back at or after the onset while the healthy twin, the
//!     same trial without the fault, had not rolled back by then, by a rule whose metric the
//!     fault can move: see `montecarlo`'s module header), `rolled_back_anyway`
//!     (rolled back, the twin too by then: every other rollback, those before the onset
//!     included), `missed` (completed, the last phase's watch over, with the fault active:
//!     never rolled back), `escape` (reached 100% with the fault begun, whatever the watch
//!     then did; a fault that began during the watch counts), and `rolled_back_after_onset` (the raw figure: caught, or rolled back
//!     anyway after the onset). A faulty trial is exactly one of caught, rolled back
//!     anyway, missed, `fault_after_release` (the fault began after the watch ended), or
//!     ended held (`holds.ended_held`);
//!     `rollback = caught + rolled_back_anyway = false_rollback + rolled_back_after_onset`.
//!   - `rule_rollback`: rollbacks by a rollback rule firing (`rollback` less
//!     `gate_rollback`).
//!   - `gate_rollback`: rollbacks by a gate failing at its phase's end, or at the end of
//!     its longest hold (of `rollback`);
//!     `completed`: trials watched through the last phase without a rollback.
//!   - `rollbacks_by_phase`: phase name → rollbacks in that phase, in phase order.
//!   - `first_rule`: rollback rule id → trials it rolled back (the first rollback rule in
//!     plan order to fire); `first_gate`: gate id → trials it rolled back (the first
//!     failing gate in plan order); no-data rules never roll back.
//!   - `by_rule`, `by_gate` (faulty): rollback rule or gate id → `{caught,
//!     rolled_back_anyway}` proportions of all trials, by what rolled the trial back.
//!   - `time_to_catch_seconds`: `{median, p90, p99}` of rollback time minus onset over
//!     caught trials (nearest rank, exact); `time_to_catch_cdf`: `[{share, seconds}]`,
//!     the same at shares 0.05, 0.10, ... 1 (empty when none was caught). For a `load` fault the onset is when the
//!     canary's load first went above the limit in that trial; a trial where it never did
//!     counts in `fault_after_release`.
//!   - `blast_radius` (faulty): means per trial, from onset to rollback or completion:
//!     `requests` served by the canary, `failed_requests` among them (baseline failures
//!     included), `users` exposed (an expectation from the traffic model when the plan
//!     states `traffic.users_per_day`; see `montecarlo`'s module header).
//!   - `gate_failures`: phase → `{completed, failing: {gate id → trials}}`: of the trials
//!     that reached the end of the phase, how many had the gate firing at that moment.
//!   - `holds` (null unless the gate policy is `on_failure: hold`): `held_a_phase` (trials
//!     that held some phase), `ended_held` (trials still held when `max_hold` was up, with
//!     `after_max_hold: stay`: neither rolled back nor complete; a faulty trial is then
//!     none of caught, rolled back anyway, missed or `fault_after_release`), `holds`
//!     (`{total, advanced, rolled_back_at_limit, stayed, rolled_back_by_rule}`: every hold
//!     by how it ended) and `length_seconds` (`{median, p90, p99}` over holds, on the
//!     evaluation grid).
//!   - `evaluation_steps`, `rule_evaluations`: work done, for speed figures (a trial runs
//!     its rollback rules at every step, its gates only where they can still fail a phase,
//!     and no no-data rules: they change neither the verdict nor the gate failures).
//!   - `query_steps` (only when some custom metric is computed by its query from series
//!     modelled under `baseline.series`, and not on a recording): metric → evaluations that computed it (one per
//!     trial, evaluation time and track: a metric compared with the stable track's counts
//!     twice), what such a metric costs.
//!
//! Version 4 had no `rule_rollback` nor `time_to_catch_cdf`.
//! Version 3 let a release whose gates failed advance anyway, ended trials when the last
//! phase began (`escape`: reached it with the fault; `fault_after_promotion`), and had no
//! gate rollbacks, `completed`, `missed` nor the policy and watch among the assumptions.
//! Version 2 called every rollback after the onset `detection` (noise included: a rule
//! that rolls back most healthy releases "detected" most faults) and measured time to
//! detect over those; seeds depended on the scenario, so faulty trials had no twins.
//! Version 1 keyed `first_rule` by rule index order including gates, counted gate failures
//! against all trials, rounded time to detect down to the evaluation grid, and exposed
//! users only in the phase at rollback.

use crate::check::{CheckedPlan, GatePolicy};
use crate::lower::{AlertRule, RuleKind};
use crate::model::{AfterMaxHold, Duration};
use crate::sim::montecarlo::{MonteCarlo, ScenarioResult, Settings, Tally};
use crate::sim::scenario::Scenarios;
use crate::sim::stats::Proportion;
use crate::sim::synth::{self, SyntheticMetric};
use indexmap::IndexMap;
use serde::Serialize;
use std::fmt::Write;

pub(crate) const REPORT_SCHEMA_VERSION: u32 = 5;

#[derive(Serialize)]
pub(crate) struct SimulationReport {
    pub(crate) schema_version: u32,
    pub(crate) plan: String,
    pub(crate) seed: u64,
    pub(crate) trials_per_scenario: u64,
    pub(crate) semantics: &'static str,
    pub(crate) evaluation_interval_seconds: f64,
    pub(crate) requests_per_second: f64,
    pub(crate) assumptions: Assumptions,
    pub(crate) twins: Option<TwinsReport>,
    pub(crate) totals: Totals,
    pub(crate) scenarios: Vec<ScenarioReport>,
}

/// What a run assumed, beside the plan itself.
#[derive(Serialize)]
pub(crate) struct Assumptions {
    pub(crate) semantics: &'static str,
    pub(crate) scrape_interval_seconds: f64,
    pub(crate) evaluation_interval_seconds: f64,
    pub(crate) window_seconds: f64,
    pub(crate) seed: u64,
    pub(crate) trials_per_scenario: u64,
    pub(crate) scenario_file: String,
    pub(crate) traffic: TrafficAssumed,
    /// What a gate failing at its phase's end does (as the replay and the manifest give it).
    pub(crate) gate_policy: GatePolicy,
    /// How long the last phase (100%) is watched before the release completes, and
    /// whether that is the default (the plan's last phase states no `duration`).
    pub(crate) watch_seconds: f64,
    pub(crate) watch_default: bool,
    /// How the service exposes its request counters (`per_code`).
    pub(crate) exposition: ExpositionAssumed,
    /// The synthetic model of each metric a rule reads; None on a recording, whose series
    /// the trials read instead.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) metrics: Option<Vec<MetricModel>>,
    /// With `--baseline`: the recording the trials were built from (then what the
    /// synthetic model alone uses is left out above; the faults were used).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) recording: Option<RecordingAssumptions>,
}

/// The recording of a `--baseline` run.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub(crate) struct RecordingAssumptions {
    pub(crate) files: Vec<String>,
    pub(crate) step_seconds: f64,
    pub(crate) span_seconds: f64,
    pub(crate) block_seconds: f64,
    /// Whether blocks were drawn at their time of day, and from how many days.
    pub(crate) time_of_day_matched: bool,
    pub(crate) days: usize,
    /// How much of the recording a block can start in (its grid points, as a duration).
    pub(crate) draws_from_seconds: f64,
    pub(crate) series_read: usize,
    /// Series of the recording no query read.
    pub(crate) series_unread: Vec<String>,
    /// Counters thinned inside others: each event goes to the track its parent event
    /// went to (absent from a shard written before it: none).
    #[serde(default)]
    pub(crate) nested: Vec<crate::sim::recorded::Nesting>,
    pub(crate) warnings: Vec<String>,
    /// The recording's instances of the series each instance exports (memory, DB
    /// connections, CPU, `up`), when a rule reads some: the stable version's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) instances: Option<usize>,
    /// Which trials ran: `sparse` (drawn only where a rate window starts or ends) or
    /// `full` (every scrape of every series); absent from a shard written before it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) trials: Option<TrialKind>,
    /// The scenario file's settings only the synthetic model uses, as dotted keys.
    #[serde(default)]
    pub(crate) unused_settings: Vec<String>,
}

/// Which recorded trials a run drew: the two kinds have the same law (a seed gives other
/// numbers on each); sparse ones are several times faster.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub(crate) enum TrialKind {
    Sparse,
    /// Why not sparse: what some rule reads.
    Full {
        because: String,
    },
}

impl RecordingAssumptions {
    pub(crate) fn of(d: &crate::sim::recorded::Described) -> RecordingAssumptions {
        RecordingAssumptions {
            files: d.files.clone(),
            step_seconds: d.step_ms as f64 / 1000.0,
            span_seconds: d.span_ms as f64 / 1000.0,
            block_seconds: d.block_ms as f64 / 1000.0,
            time_of_day_matched: d.day_matched,
            days: d.days,
            draws_from_seconds: d.pool_ms as f64 / 1000.0,
            series_read: d.series_read,
            series_unread: d.series_unread.clone(),
            nested: d.nested.clone(),
            warnings: d.warnings.clone(),
            instances: d.instances,
            unused_settings: d.unused.clone(),
            trials: Some(match &d.full_because {
                None => TrialKind::Sparse,
                Some(why) => TrialKind::Full {
                    because: why.clone(),
                },
            }),
        }
    }
}

/// `exposition.instances`, and the instances it gives each track.
#[derive(Serialize)]
pub(crate) struct InstancesAssumed {
    /// `replicas` or `one`.
    pub(crate) model: &'static str,
    pub(crate) stable: u32,
    /// Per phase, in plan order.
    pub(crate) canary: Vec<u32>,
}

impl InstancesAssumed {
    /// The instances of `scenarios`' exposition; on a recording of `recorded` instances,
    /// the stable version's are those.
    fn of(plan: &CheckedPlan, scenarios: &Scenarios, recorded: Option<usize>) -> InstancesAssumed {
        let e = &scenarios.exposition;
        let counts = e.instances(plan);
        InstancesAssumed {
            model: if e.per_instance { "replicas" } else { "one" },
            stable: recorded.map_or_else(
                || counts.first().map_or(1, |c| c[1]),
                |n| u32::try_from(n).unwrap_or(u32::MAX),
            ),
            canary: counts.iter().map(|c| c[0]).collect(),
        }
    }
}

#[derive(Serialize)]
pub(crate) struct ExpositionAssumed {
    /// None on a recording (here and below: the synthetic model's alone), whose own
    /// series the trials read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) per_code: Option<bool>,
    /// When a track's failure series first has a sample: `first_failure` or
    /// `release_start` (per code only; on a recording, the canary's).
    pub(crate) failures_from: &'static str,
    /// When each value of a modelled counter's `split` first has a sample: `first_event`
    /// or `release_start` (only when some counter of `baseline.series` has a split).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) split_from: Option<&'static str>,
    /// The instances memory and DB connections come from (synthetic trials whose rules
    /// read either).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) instances: Option<InstancesAssumed>,
    /// `per_instance` when each instance has request counters of its own, `per_track`
    /// when a track's requests are one set of counters (synthetic trials; absent on a
    /// recording, and in the documents of runs from before the choice).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) request_counters: Option<&'static str>,
    /// A fixed offset: how long after a scrape each evaluation comes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) scrape_offset_seconds: Option<f64>,
    /// Drawn per trial: `per trial`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) scrape_offset: Option<&'static str>,
    /// Drawn per trial: the strata of the scrape interval, trial `t` taking the midpoint
    /// of stratum `t mod offset_classes`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) offset_classes: Option<usize>,
}

impl ExpositionAssumed {
    /// What the trials assumed of the service's series, a line each: its counters and
    /// the scrape offset, its instances, its splits (`recorded`: the trials were built
    /// from a recording). The text report's `exposition` lines and the HTML report's.
    pub(crate) fn lines(&self, recorded: bool) -> Vec<String> {
        let offset = match (self.scrape_offset_seconds, self.offset_classes) {
            (Some(o), _) => format!("each evaluation {} after a scrape", secs(o)),
            (None, classes) => format!(
                "each evaluation a random time after a scrape, drawn per trial over the scrape interval ({} strata)",
                classes.unwrap_or(1)
            ),
        };
        let per_instance = self.request_counters == Some("per_instance");
        let counters = match (self.per_code, self.failures_from, per_instance) {
            (None, "release_start", _) => {
                "the recording's own series, the canary's failure series from the release's start"
            }
            (None, _, _) => {
                "the recording's own series, the canary's failure series from its first failure"
            }
            (Some(true), "release_start", false) => {
                "request counters per status code, each extrapolated on its own, both from the release's start"
            }
            (Some(true), "release_start", true) => {
                "request counters per status code, each extrapolated on its own, both from the instance's first sample"
            }
            (Some(true), _, false) => {
                "request counters per status code, each extrapolated on its own, the failures' from a track's first failure"
            }
            (Some(true), _, true) => {
                "request counters per status code, each extrapolated on its own, the failures' from an instance's first failure"
            }
            (Some(false), _, _) => "one counter of every request",
        };
        let mut lines = vec![format!("{counters}; {offset}")];
        match self.request_counters {
            Some("per_instance") => lines.push(
                "request counters per instance, added up by the rules' sums (an instance joining with its phase serves from its first scrape, its counters 0 there)"
                    .to_string(),
            ),
            Some(_) => lines.push(
                "request counters: one set per track (`request_counters: per_track`, or `instances: one`)"
                    .to_string(),
            ),
            None => {}
        }
        let by_phase = |i: &InstancesAssumed| {
            (i.canary.iter().map(u32::to_string))
                .collect::<Vec<_>>()
                .join(", ")
        };
        match &self.instances {
            Some(i) if recorded => {
                let canary = match i.model {
                    "one" => "one canary instance, a recorded instance's series on blocks of its own"
                        .to_string(),
                    _ => format!(
                        "the canary's {} by phase, each a recorded instance's series on blocks of its own",
                        by_phase(i)
                    ),
                };
                lines.push(format!(
                    "memory, DB connections, CPU and targets up per instance (their max, sum, average and count): the stable version's {} recorded, {canary}",
                    i.stable
                ));
            }
            Some(i) => lines.push(format!(
                "memory, DB connections, CPU and targets up {}",
                match i.model {
                    "one" => "from one instance per track".to_string(),
                    _ => format!(
                        "per instance (their max, sum, average and count): the stable version's {}, the canary's {} by phase",
                        i.stable,
                        by_phase(i)
                    ),
                }
            )),
            None => {}
        }
        if let Some(from) = self.split_from {
            lines.push(format!(
                "each value of a modelled counter's `split` {}",
                match from {
                    "release_start" => "from the release's start",
                    _ => "from its first event (the label set is created by its first increment)",
                }
            ));
        }
        lines
    }

    /// The assumptions as a run's JSON document states them (`assumptions.exposition`),
    /// for a report drawn from the document; None if it states none.
    pub(crate) fn from_json(v: &serde_json::Value) -> Option<ExpositionAssumed> {
        let word = |key: &str, known: &[&'static str]| {
            let w = v.get(key)?.as_str()?;
            known.iter().copied().find(|k| *k == w)
        };
        let instances = v.get("instances").map(|i| InstancesAssumed {
            model: if i.get("model").and_then(|m| m.as_str()) == Some("one") {
                "one"
            } else {
                "replicas"
            },
            stable: i
                .get("stable")
                .and_then(|n| n.as_u64())
                .map_or(0, |n| n as u32),
            canary: (i.get("canary").and_then(|c| c.as_array()))
                .map(|c| {
                    c.iter()
                        .filter_map(|n| n.as_u64())
                        .map(|n| n as u32)
                        .collect()
                })
                .unwrap_or_default(),
        });
        Some(ExpositionAssumed {
            per_code: v.get("per_code").and_then(|b| b.as_bool()),
            failures_from: word("failures_from", &["first_failure", "release_start"])?,
            split_from: word("split_from", &["first_event", "release_start"]),
            instances,
            request_counters: word("request_counters", &["per_instance", "per_track"]),
            scrape_offset_seconds: v.get("scrape_offset_seconds").and_then(|o| o.as_f64()),
            scrape_offset: word("scrape_offset", &["per trial"]),
            offset_classes: (v.get("offset_classes").and_then(|c| c.as_u64())).map(|c| c as usize),
        })
    }
}

#[derive(Serialize)]
pub(crate) struct TrafficAssumed {
    /// On a recording, the recording's.
    pub(crate) requests_per_second: f64,
    /// None on a recording (here and below: the synthetic model's alone), whose own
    /// traffic the trials have.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) daily_amplitude: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) overdispersion: Option<f64>,
    /// The coefficient of variation of the failure probability's multiplier per cluster
    /// (0: independent failures).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) error_clustering: Option<f64>,
    /// The mean length of a cluster, when errors cluster.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) error_clustering_time_constant_seconds: Option<f64>,
    /// The correlation of the two versions' multipliers at one instant, when errors
    /// cluster.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) error_clustering_shared: Option<f64>,
    pub(crate) start_hour: u32,
    pub(crate) users_per_day: Option<u64>,
}

/// How one metric that a rule reads is simulated.
#[derive(Serialize)]
pub(crate) struct MetricModel {
    pub(crate) metric: String,
    pub(crate) model: &'static str,
    pub(crate) parameters: IndexMap<&'static str, f64>,
    /// For `query_over_series`: each series model its query reads (and those they count
    /// a share of), described.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(crate) series: Vec<String>,
    /// For `query_over_series`: the query evaluated (the canary's text), and the same
    /// series models as numbers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) query: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(crate) series_models: Vec<SeriesModelOut>,
}

/// A series model as numbers: its kind and the parameters it has.
#[derive(Serialize)]
pub(crate) struct SeriesModelOut {
    pub(crate) name: String,
    /// `counter` (`per_request`), `counter_of` (`of`, `share`), `gauge` (`mean`, `noise`)
    /// or `histogram` (`per_request`, `buckets`: the share at or below each bound).
    pub(crate) kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) per_request: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) of: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) share: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) mean: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) noise: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) time_constant_seconds: Option<f64>,
    /// A split as the scenario file writes it: its label, and each value's share.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) split: Option<IndexMap<String, IndexMap<String, f64>>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) buckets: Option<IndexMap<String, f64>>,
}

impl SeriesModelOut {
    fn of(
        m: &crate::sim::scenario::SeriesModel,
        all: &[crate::sim::scenario::SeriesModel],
    ) -> Self {
        use crate::sim::scenario::SeriesKind;
        let mut out = SeriesModelOut {
            name: m.name.clone(),
            kind: "counter",
            per_request: None,
            of: None,
            share: None,
            mean: None,
            noise: None,
            time_constant_seconds: None,
            split: m.split.as_ref().map(|sp| {
                let shares = sp.values.iter().cloned().zip(sp.shares.iter().copied());
                IndexMap::from([(sp.label.clone(), shares.collect())])
            }),
            buckets: m.histogram.as_ref().map(|h| {
                h.les
                    .iter()
                    .cloned()
                    .zip(h.cumulative.iter().copied())
                    .collect()
            }),
        };
        match m.kind {
            SeriesKind::PerRequest(r) => {
                out.kind = if m.histogram.is_some() {
                    "histogram"
                } else {
                    "counter"
                };
                out.per_request = Some(r);
            }
            SeriesKind::Of { parent, share } => {
                out.kind = "counter_of";
                out.of = all.get(parent).map(|p| p.name.clone());
                out.share = Some(share);
            }
            SeriesKind::Gauge(g) => {
                out.kind = "gauge";
                out.mean = Some(g.mean);
                out.noise = Some(g.noise);
                out.time_constant_seconds = Some(g.time_constant_ms as f64 / 1000.0);
            }
        }
        out
    }
}

/// Where the healthy twins come from, and how often they rolled back.
#[derive(Serialize)]
pub(crate) struct TwinsReport {
    /// The fault-free scenario of the file; None: an extra fault-free pass.
    pub(crate) scenario: Option<String>,
    pub(crate) false_rollback: Proportion,
}

#[derive(Serialize)]
pub(crate) struct Totals {
    pub(crate) trials: u64,
    pub(crate) evaluation_steps: u64,
    pub(crate) rule_evaluations: u64,
}

#[derive(Serialize)]
pub(crate) struct ScenarioReport {
    pub(crate) name: String,
    pub(crate) description: String,
    pub(crate) faulty: bool,
    pub(crate) trials: u64,
    /// Any rollback, true or false.
    pub(crate) rollback: Proportion,
    /// Rollbacks of a healthy release, or before the fault began.
    pub(crate) false_rollback: Proportion,
    /// Rollbacks the fault made: at or after its onset, the healthy twin not rolled back
    /// by then (faulty scenarios).
    pub(crate) caught: Option<Proportion>,
    /// Rollbacks the healthy twin had made by then too (faulty scenarios).
    pub(crate) rolled_back_anyway: Option<Proportion>,
    /// Rolled back by a gate failing at its phase's end (the gate policy), of `rollback`.
    pub(crate) gate_rollback: Proportion,
    /// Rolled back by a rollback rule firing: `rollback` less `gate_rollback`.
    pub(crate) rule_rollback: Proportion,
    /// Watched through the last phase without a rollback: complete.
    pub(crate) completed: Proportion,
    /// Reached 100% with the fault begun, before 100% or during the watch (faulty
    /// scenarios), whatever the watch did then: the faulty version served everyone.
    pub(crate) escape: Option<Proportion>,
    /// Completed with the fault active: nothing caught it (faulty scenarios).
    pub(crate) missed: Option<Proportion>,
    /// Rollbacks at or after the fault's onset, caught or not: the raw figure (faulty
    /// scenarios).
    pub(crate) rolled_back_after_onset: Option<Proportion>,
    /// Trials whose fault began only after the watch ended: nothing saw it.
    pub(crate) fault_after_release: u64,
    pub(crate) rollbacks_by_phase: IndexMap<String, u64>,
    pub(crate) first_rule: IndexMap<String, u64>,
    /// Gate id → trials it rolled back, failing at a phase's end (the first failing gate
    /// in plan order).
    pub(crate) first_gate: IndexMap<String, u64>,
    /// Faulty scenarios: per rollback rule that rolled trials back.
    pub(crate) by_rule: IndexMap<String, RuleOutcome>,
    /// Faulty scenarios: per gate that rolled trials back.
    pub(crate) by_gate: IndexMap<String, RuleOutcome>,
    pub(crate) time_to_catch_seconds: Option<Quantiles>,
    /// The distribution of time to catch: for each share of the caught trials (0.05,
    /// 0.10, ... 1), the time by which that share was caught (nearest rank, as
    /// `time_to_catch_seconds`); empty when none was caught.
    pub(crate) time_to_catch_cdf: Vec<CdfPoint>,
    pub(crate) blast_radius: Option<BlastRadius>,
    pub(crate) gate_failures: IndexMap<String, GateFailures>,
    /// Holds, when the gate policy holds phases.
    pub(crate) holds: Option<HoldsReport>,
    pub(crate) evaluation_steps: u64,
    pub(crate) rule_evaluations: u64,
    /// Per custom metric computed by its query from simulated series: the lane
    /// evaluations that computed it (what such a metric costs; absent without one).
    #[serde(skip_serializing_if = "IndexMap::is_empty")]
    pub(crate) query_steps: IndexMap<String, u64>,
}

/// How the trials of a scenario held their phases (gate policy `on_failure: hold`).
#[derive(Serialize)]
pub(crate) struct HoldsReport {
    /// Trials that held some phase at least once.
    pub(crate) held_a_phase: Proportion,
    /// Trials still held when the longest hold was up (`after_max_hold: stay`): neither
    /// rolled back nor complete, waiting for someone to decide.
    pub(crate) ended_held: Proportion,
    /// Every hold, by how it ended.
    pub(crate) holds: HoldCounts,
    /// Over every hold (nearest rank, on the evaluation grid).
    pub(crate) length_seconds: Option<Quantiles>,
}

/// Holds by how they ended.
#[derive(Serialize)]
pub(crate) struct HoldCounts {
    pub(crate) total: u64,
    /// The gates passed: the next phase started.
    pub(crate) advanced: u64,
    /// The longest hold was up: rolled back (`after_max_hold: rollback`).
    pub(crate) rolled_back_at_limit: u64,
    /// The longest hold was up: stayed held (`after_max_hold: stay`).
    pub(crate) stayed: u64,
    /// A rollback rule fired during the hold.
    pub(crate) rolled_back_by_rule: u64,
}

/// A rule's rollbacks of a faulty scenario, as shares of all its trials.
#[derive(Serialize)]
pub(crate) struct RuleOutcome {
    pub(crate) caught: Proportion,
    pub(crate) rolled_back_anyway: Proportion,
}

/// One step of a distribution: `share` of the trials at or below `seconds`.
#[derive(Serialize)]
pub(crate) struct CdfPoint {
    pub(crate) share: f64,
    pub(crate) seconds: f64,
}

/// The shares a [`CdfPoint`] list gives: 5% to 100% by 5%.
const CDF_STEPS: u32 = 20;

#[derive(Serialize)]
pub(crate) struct Quantiles {
    pub(crate) median: f64,
    pub(crate) p90: f64,
    pub(crate) p99: f64,
}

/// Means per trial.
#[derive(Serialize)]
pub(crate) struct BlastRadius {
    pub(crate) requests: f64,
    pub(crate) failed_requests: f64,
    pub(crate) users: Option<f64>,
}

/// Gates firing at the end of one phase.
#[derive(Serialize)]
pub(crate) struct GateFailures {
    /// Trials that reached the end of the phase.
    pub(crate) completed: u64,
    /// Gate id → trials in which it was firing when the phase ended.
    pub(crate) failing: IndexMap<String, u64>,
}

/// The report of a run of the scenarios read from `scenario_file` (a path, or
/// `<built-in scenarios>`), its trials built from `recording` when given.
pub(crate) fn build(
    plan: &CheckedPlan,
    rules: &[AlertRule],
    (scenarios, scenario_file): (&Scenarios, &str),
    settings: &Settings,
    (run, recording): (&MonteCarlo<'_>, Option<RecordingAssumptions>),
) -> SimulationReport {
    // What only the synthetic model uses, left out on a recording.
    let synthetic = recording.is_none();
    let only = |v| synthetic.then_some(v);
    let clustered = synthetic && scenarios.traffic.error_clustering > 0.0;
    let eval_s = plan.monitoring.evaluation_interval.seconds();
    let scenarios_out: Vec<ScenarioReport> = run
        .results
        .iter()
        .map(|r| scenario(plan, rules, (scenarios, synthetic), r))
        .collect();
    let semantics = settings.semantics.name();
    let twins = run.twins.as_ref().map(|t| TwinsReport {
        scenario: t.scenario.map(|i| scenarios.scenarios[i].name.clone()),
        false_rollback: Proportion::new(t.tally.false_rollbacks, t.tally.trials),
    });
    let extra = run
        .twins
        .as_ref()
        .filter(|t| t.scenario.is_none())
        .map(|t| &t.tally);
    let tr = &scenarios.traffic;
    SimulationReport {
        schema_version: REPORT_SCHEMA_VERSION,
        plan: plan.name.clone(),
        seed: settings.seed,
        trials_per_scenario: settings.trials,
        semantics,
        evaluation_interval_seconds: eval_s,
        requests_per_second: tr.requests_per_second,
        assumptions: Assumptions {
            semantics,
            scrape_interval_seconds: plan.monitoring.scrape_interval.seconds(),
            evaluation_interval_seconds: eval_s,
            window_seconds: plan.monitoring.window.seconds(),
            seed: settings.seed,
            trials_per_scenario: settings.trials,
            scenario_file: scenario_file.to_string(),
            traffic: TrafficAssumed {
                requests_per_second: tr.requests_per_second,
                daily_amplitude: only(tr.daily_amplitude),
                overdispersion: only(tr.overdispersion),
                error_clustering: only(tr.error_clustering),
                error_clustering_time_constant_seconds: clustered
                    .then(|| tr.error_clustering_time_constant_ms as f64 / 1000.0),
                error_clustering_shared: clustered.then_some(tr.error_clustering_shared),
                start_hour: tr.start_hour,
                users_per_day: tr.users_per_day,
            },
            gate_policy: plan.gate_policy,
            watch_seconds: plan.watch.seconds(),
            watch_default: plan.watch_is_default(),
            exposition: ExpositionAssumed {
                per_code: synthetic.then_some(scenarios.exposition.per_code),
                failures_from: scenarios.exposition.failures_from.name(),
                split_from: scenarios
                    .baseline
                    .series
                    .iter()
                    .any(|m| m.split.is_some() && m.histogram.is_none())
                    .then_some(if scenarios.exposition.split_born_late {
                        "first_event"
                    } else {
                        "release_start"
                    }),
                instances: match &recording {
                    Some(r) => r
                        .instances
                        .map(|n| InstancesAssumed::of(plan, scenarios, Some(n))),
                    None => reads_instance_gauges(plan, rules, scenarios)
                        .then(|| InstancesAssumed::of(plan, scenarios, None)),
                },
                request_counters: synthetic.then_some(
                    match scenarios.exposition.requests_per_instance {
                        true => "per_instance",
                        false => "per_track",
                    },
                ),
                scrape_offset_seconds: scenarios
                    .exposition
                    .scrape_offset_ms
                    .map(|o| o as f64 / 1000.0),
                scrape_offset: scenarios
                    .exposition
                    .scrape_offset_ms
                    .is_none()
                    .then_some("per trial"),
                offset_classes: scenarios
                    .exposition
                    .scrape_offset_ms
                    .is_none()
                    .then(|| crate::sim::synth::scrape_offsets(plan, scenarios).len()),
            },
            metrics: synthetic.then(|| metric_models(plan, rules, scenarios)),
            recording,
        },
        twins,
        totals: Totals {
            trials: scenarios_out.iter().map(|s| s.trials).sum::<u64>()
                + extra.map_or(0, |t| t.trials),
            evaluation_steps: scenarios_out
                .iter()
                .map(|s| s.evaluation_steps)
                .sum::<u64>()
                + extra.map_or(0, |t| t.steps),
            rule_evaluations: scenarios_out
                .iter()
                .map(|s| s.rule_evaluations)
                .sum::<u64>()
                + extra.map_or(0, |t| t.evaluations),
        },
        scenarios: scenarios_out,
    }
}

/// Whether some rule reads what the instances make (memory, DB connections, targets up).
fn reads_instance_gauges(plan: &CheckedPlan, rules: &[AlertRule], scenarios: &Scenarios) -> bool {
    synth::sources(plan, scenarios)
        .into_iter()
        .enumerate()
        .any(|(i, source)| {
            matches!(
                source,
                SyntheticMetric::Memory | SyntheticMetric::DbConnections | SyntheticMetric::Up
            ) && rules.iter().any(|r| r.reads(i))
        })
}

/// The model of every metric some rule reads, in plan order.
fn metric_models(
    plan: &CheckedPlan,
    rules: &[AlertRule],
    scenarios: &Scenarios,
) -> Vec<MetricModel> {
    let b = &scenarios.baseline;
    let latency = || {
        IndexMap::from([
            ("median_seconds", b.median),
            ("sigma", b.sigma),
            ("tail_share", b.tail_share),
            ("tail_factor", b.tail_factor),
        ])
    };
    let gauge = |g: crate::sim::scenario::Gauge| {
        IndexMap::from([
            ("mean", g.mean),
            ("noise", g.noise),
            ("time_constant_seconds", g.time_constant_ms as f64 / 1000.0),
        ])
    };
    synth::sources(plan, scenarios)
        .into_iter()
        .enumerate()
        .filter(|(i, _)| rules.iter().any(|r| r.reads(*i)))
        .map(|(i, source)| {
            let (model, parameters) = match source {
                SyntheticMetric::ErrorRate => {
                    ("error_rate", IndexMap::from([("error_rate", b.error_rate)]))
                }
                SyntheticMetric::Availability => (
                    "availability",
                    IndexMap::from([("error_rate", b.error_rate)]),
                ),
                SyntheticMetric::Requests { .. } => (
                    "request_count",
                    IndexMap::from([(
                        "requests_per_second",
                        scenarios.traffic.requests_per_second,
                    )]),
                ),
                SyntheticMetric::Throughput => (
                    "throughput",
                    IndexMap::from([(
                        "requests_per_second",
                        scenarios.traffic.requests_per_second,
                    )]),
                ),
                SyntheticMetric::Latency { q, .. } => {
                    let mut p = IndexMap::from([("quantile", q)]);
                    p.extend(latency());
                    ("latency_quantile", p)
                }
                SyntheticMetric::Cpu => (
                    "cpu",
                    IndexMap::from([
                        ("mean", b.cpu.mean),
                        ("noise", b.cpu.noise),
                        ("shared", b.cpu_shared),
                    ]),
                ),
                SyntheticMetric::Memory => ("memory", gauge(b.memory)),
                SyntheticMetric::DbConnections => ("db_connections", gauge(b.db_connections)),
                SyntheticMetric::Redis => ("redis_memory", gauge(b.redis_memory)),
                SyntheticMetric::Custom {
                    mean,
                    noise,
                    time_constant_ms,
                    ..
                } => (
                    "custom_gauge",
                    IndexMap::from([
                        ("mean", mean),
                        ("noise", noise),
                        ("time_constant_seconds", time_constant_ms as f64 / 1000.0),
                    ]),
                ),
                SyntheticMetric::Query { .. } => ("query_over_series", IndexMap::new()),
                // Each target's `up`: the track's sum counts its instances
                // (`exposition.instances`).
                SyntheticMetric::Up => ("targets_up", IndexMap::from([("healthy", 1.0)])),
                SyntheticMetric::Absent => ("not_modelled", IndexMap::new()),
            };
            let read: Vec<&crate::sim::scenario::SeriesModel> = match source {
                SyntheticMetric::Query { reads, .. } => b
                    .series
                    .iter()
                    .enumerate()
                    .filter(|(k, _)| *k < 64 && reads >> k & 1 == 1)
                    .map(|(_, m)| m)
                    .collect(),
                _ => Vec::new(),
            };
            MetricModel {
                metric: plan.metrics[i].name.clone(),
                model,
                parameters,
                series: read.iter().map(|m| describe_series(m, &b.series)).collect(),
                query: matches!(source, SyntheticMetric::Query { .. }).then(|| {
                    plan.metrics[i]
                        .expr
                        .promql(Some(crate::promql::Track::Canary))
                }),
                series_models: read
                    .iter()
                    .map(|m| SeriesModelOut::of(m, &b.series))
                    .collect(),
            }
        })
        .collect()
}

/// Per rule id of `kind`: the trials it rolled back, and (faulty scenarios) how many of
/// those it caught and how many rolled back anyway, as shares of all trials.
fn first_and_by(
    rules: &[AlertRule],
    t: &Tally,
    faulty: bool,
    kind: RuleKind,
) -> (IndexMap<String, u64>, IndexMap<String, RuleOutcome>) {
    let n = t.trials;
    let mut first = IndexMap::new();
    let mut by: IndexMap<String, (u64, u64)> = IndexMap::new();
    for (i, rule) in rules.iter().enumerate() {
        if rule.kind != kind || t.first_rule[i] == 0 {
            continue;
        }
        *first.entry(rule.id.clone()).or_insert(0) += t.first_rule[i];
        if faulty {
            let e = by.entry(rule.id.clone()).or_insert((0, 0));
            e.0 += t.caught_by_rule[i];
            e.1 += t.anyway_by_rule[i];
        }
    }
    let by = by
        .into_iter()
        .map(|(id, (caught, anyway))| {
            (
                id,
                RuleOutcome {
                    caught: Proportion::new(caught, n),
                    rolled_back_anyway: Proportion::new(anyway, n),
                },
            )
        })
        .collect();
    (first, by)
}

/// The report of one scenario's trials (`synthetic`: of the synthetic model, whose query
/// metrics count their evaluations; a recorded trial's queries are all over series).
fn scenario(
    plan: &CheckedPlan,
    rules: &[AlertRule],
    (scenarios, synthetic): (&Scenarios, bool),
    r: &ScenarioResult<'_>,
) -> ScenarioReport {
    let t: &Tally = &r.tally;
    let faulty = r.scenario.fault.is_some();
    let n = t.trials;
    let unit_s = r.detect_unit_ms as f64 / 1000.0;
    let q = |p: f64| {
        t.detect_steps
            .quantile(p)
            .map_or(f64::NAN, |s| s as f64 * unit_s)
    };
    let rollbacks_by_phase = plan
        .phases
        .iter()
        .zip(&t.rollbacks_by_phase)
        .filter(|(_, c)| **c > 0)
        .map(|(p, c)| (p.name.clone(), *c))
        .collect();
    // Rules sharing an id count together; gates apart from rollback rules.
    let (first_rule, by_rule) = first_and_by(rules, t, faulty, RuleKind::Rollback);
    let (first_gate, by_gate) = first_and_by(rules, t, faulty, RuleKind::Gate);
    let mut gate_failures = IndexMap::new();
    for (pi, phase) in plan.phases.iter().enumerate() {
        let failing: IndexMap<String, u64> = rules
            .iter()
            .enumerate()
            .filter(|(_, rule)| rule.kind == RuleKind::Gate)
            .map(|(ri, rule)| (rule.id.clone(), t.gate_failures[pi * rules.len() + ri]))
            .filter(|(_, c)| *c > 0)
            .collect();
        if !failing.is_empty() {
            gate_failures.insert(
                phase.name.clone(),
                GateFailures {
                    completed: t.completed_phase[pi],
                    failing,
                },
            );
        }
    }
    ScenarioReport {
        name: r.scenario.name.clone(),
        description: r.scenario.description.clone(),
        faulty,
        trials: n,
        rollback: Proportion::new(t.rollbacks, n),
        false_rollback: Proportion::new(t.false_rollbacks, n),
        caught: faulty.then(|| Proportion::new(t.caught, n)),
        rolled_back_anyway: faulty.then(|| Proportion::new(t.rolled_back_anyway, n)),
        gate_rollback: Proportion::new(t.gate_rollbacks, n),
        rule_rollback: Proportion::new(t.rollbacks.saturating_sub(t.gate_rollbacks), n),
        completed: Proportion::new(t.completed, n),
        escape: faulty.then(|| Proportion::new(t.escaped, n)),
        missed: faulty.then(|| Proportion::new(t.missed, n)),
        rolled_back_after_onset: faulty.then(|| Proportion::new(t.detected, n)),
        fault_after_release: t.fault_after_release,
        rollbacks_by_phase,
        first_rule,
        first_gate,
        by_rule,
        by_gate,
        time_to_catch_seconds: (t.detect_steps.total() > 0).then(|| Quantiles {
            median: q(0.5),
            p90: q(0.9),
            p99: q(0.99),
        }),
        time_to_catch_cdf: if t.detect_steps.total() > 0 {
            (1..=CDF_STEPS)
                .map(|k| {
                    let share = f64::from(k) / f64::from(CDF_STEPS);
                    CdfPoint {
                        share,
                        seconds: q(share),
                    }
                })
                .collect()
        } else {
            Vec::new()
        },
        blast_radius: (faulty && n > 0).then(|| BlastRadius {
            requests: t.exposed_requests as f64 / n as f64,
            failed_requests: t.exposed_failed as f64 / n as f64,
            users: scenarios
                .traffic
                .users_per_day
                .map(|_| t.exposed_milli_users as f64 / 1000.0 / n as f64),
        }),
        gate_failures,
        holds: matches!(plan.gate_policy, GatePolicy::Hold { .. }).then(|| {
            let eval_s = plan.monitoring.evaluation_interval.millis() as f64 / 1000.0;
            let q = |p: f64| {
                t.hold_steps
                    .quantile(p)
                    .map_or(f64::NAN, |s| s as f64 * eval_s)
            };
            HoldsReport {
                held_a_phase: Proportion::new(t.held_trials, n),
                ended_held: Proportion::new(t.held, n),
                holds: HoldCounts {
                    total: t.hold_steps.total(),
                    advanced: t.holds_advanced,
                    rolled_back_at_limit: t.holds_rolled_back,
                    stayed: t.holds_stayed,
                    rolled_back_by_rule: t.holds_cut_short,
                },
                length_seconds: (t.hold_steps.total() > 0).then(|| Quantiles {
                    median: q(0.5),
                    p90: q(0.9),
                    p99: q(0.99),
                }),
            }
        }),
        evaluation_steps: t.steps,
        rule_evaluations: t.evaluations,
        query_steps: synth::sources(plan, scenarios)
            .iter()
            .filter(|_| synthetic)
            .zip(&plan.metrics)
            .filter_map(|(s, m)| match s {
                SyntheticMetric::Query { slot, .. } => Some((
                    m.name.clone(),
                    t.query_steps.get(*slot).copied().unwrap_or(0),
                )),
                _ => None,
            })
            .collect(),
    }
}

pub(crate) fn pct(p: f64) -> String {
    if p.is_nan() {
        return "n/a".into();
    }
    let v = p * 100.0;
    if v == 0.0 || v == 100.0 {
        format!("{v:.0}%")
    } else if v < 0.1 {
        format!("{v:.3}%")
    } else {
        format!("{v:.1}%")
    }
}

fn prop(p: &Proportion) -> String {
    format!(
        "{:>7} [{}, {}]  ({} of {}, ±{} MC error)",
        pct(p.probability),
        pct(p.ci95[0]),
        pct(p.ci95[1]),
        p.count,
        p.trials,
        pct(p.std_error)
    )
}

pub(crate) fn dur(s: f64) -> String {
    if s.is_nan() {
        return "n/a".into();
    }
    Duration::from_millis((s * 1000.0).round() as u64)
        .map_or_else(|| "0s".into(), |d| d.to_string())
}

fn counts(m: &IndexMap<String, u64>) -> String {
    m.iter()
        .map(|(k, c)| format!("{k} {c}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A proportion in brief: the estimate and its interval.
fn brief(p: &Proportion) -> String {
    format!(
        "{:>6} [{}, {}]",
        pct(p.probability),
        pct(p.ci95[0]),
        pct(p.ci95[1])
    )
}

/// A duration in seconds, as the plan writes durations.
fn secs(s: f64) -> String {
    dur(s)
}

/// A series model for people: `feedback_submissions_total: counter, 0.5% per request, split
/// by type (bug 8%, other 92%)`.
fn describe_series(
    m: &crate::sim::scenario::SeriesModel,
    all: &[crate::sim::scenario::SeriesModel],
) -> String {
    use crate::sim::scenario::SeriesKind;
    let num = crate::model::trim;
    let kind = match m.kind {
        SeriesKind::PerRequest(r) if m.histogram.is_some() => format!(
            "histogram, {} observations per request, buckets {}",
            num(r),
            m.histogram
                .iter()
                .flat_map(|h| h.les.iter().zip(&h.cumulative))
                .map(|(le, &c)| format!("≤{le} {}", pct(c)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        SeriesKind::PerRequest(r) => format!("counter, {} events per request", num(r)),
        SeriesKind::Of { parent, share } => format!(
            "counter, each event of {} counted with probability {}",
            all.get(parent).map_or("?", |p| p.name.as_str()),
            pct(share)
        ),
        SeriesKind::Gauge(g) if g.time_constant_ms > 0 => format!(
            "gauge, mean {}, noise {}, drifting with a time constant of {}",
            num(g.mean),
            num(g.noise),
            secs(g.time_constant_ms as f64 / 1000.0)
        ),
        SeriesKind::Gauge(g) => format!(
            "gauge, mean {}, noise {}, drawn afresh at every read",
            num(g.mean),
            num(g.noise)
        ),
    };
    match &m.split {
        Some(sp) => format!(
            "{}: {kind}, split by {} ({})",
            m.name,
            sp.label,
            sp.values
                .iter()
                .zip(&sp.shares)
                .map(|(v, &x)| format!("{v} {}", pct(x)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        None => format!("{}: {kind}", m.name),
    }
}

/// A metric's model, in words.
fn model_text(m: &MetricModel) -> String {
    let p = |k: &str| m.parameters.get(k).copied().unwrap_or(f64::NAN);
    let num = crate::model::trim;
    match m.model {
        "error_rate" | "availability" => format!(
            "Poisson requests; each fails with probability {} (baseline error_rate)",
            pct(p("error_rate"))
        ),
        "throughput" => format!(
            "Poisson requests around {} req/s (the traffic model)",
            num(p("requests_per_second"))
        ),
        "request_count" => format!(
            "the canary's requests in the rate window, increase() of its Poisson request counter around {} req/s (a `min_requests` guard reads it)",
            num(p("requests_per_second"))
        ),
        "latency_quantile" => format!(
            "quantile {} of a lognormal latency: median {}, sigma {}, {} of requests {}x slower (baseline latency), through the histogram's buckets",
            num(p("quantile")),
            dur(p("median_seconds")),
            num(p("sigma")),
            pct(p("tail_share")),
            num(p("tail_factor"))
        ),
        "cpu" => format!(
            "busy seconds per second of each instance (counters read through avg(rate())), mean {}, noise {} per instance and span of scrapes, {} of its variance common to a track's instances",
            num(p("mean")),
            num(p("noise")),
            pct(p("shared"))
        ),
        "not_modelled" => "NOT MODELLED: always absent, so the rules on it never fire".to_string(),
        "query_over_series" => format!(
            "its own query, evaluated over simulated series: {}",
            m.series.join("; ")
        ),
        "targets_up" => {
            "the canary's scrape targets up: one per instance it runs, or 0 once a crash makes its scrapes fail"
                .to_string()
        }
        kind => format!(
            "{} gauge, mean {}, noise {} (standard deviation per scrape), {}",
            kind.trim_end_matches("_gauge").replace('_', " "),
            num(p("mean")),
            num(p("noise")),
            match p("time_constant_seconds") {
                t if t > 0.0 => format!("drifting with a time constant of {}", secs(t)),
                _ => "drawn afresh at every read".to_string(),
            }
        ),
    }
}

/// The report for people, printed from the report's data alone: the answer per scenario
/// first, then the details, then what the run assumed.
/// A scenario's holds, for people, under `policy`.
fn hold_text(s: &mut String, h: &HoldsReport, policy: &GatePolicy) {
    let _ = writeln!(s, "  held a phase             {}", prop(&h.held_a_phase));
    let c = &h.holds;
    if c.total == 0 {
        return;
    }
    let max = match policy {
        GatePolicy::Hold { max, .. } => max.to_string(),
        GatePolicy::Rollback => "max_hold".into(),
    };
    let mut how = vec![format!("{} passed their gates and went on", c.advanced)];
    for (n, what) in [
        (
            c.rolled_back_at_limit,
            format!("rolled back when max_hold ({max}) ran out"),
        ),
        (
            c.stayed,
            format!("still held when max_hold ({max}) ran out, left for someone to decide"),
        ),
        (
            c.rolled_back_by_rule,
            "rolled back by a rule while held".into(),
        ),
    ] {
        if n > 0 {
            how.push(format!("{n} {what}"));
        }
    }
    let _ = writeln!(
        s,
        "    holds                  {} in {} trials: {}",
        c.total,
        h.held_a_phase.count,
        how.join(", ")
    );
    if let Some(q) = &h.length_seconds {
        let _ = writeln!(
            s,
            "    hold length            median {}, p90 {}, p99 {} (from the evaluation that found the gate failing)",
            dur(q.median),
            dur(q.p90),
            dur(q.p99)
        );
    }
    if h.ended_held.count > 0 {
        let _ = writeln!(s, "  ended held               {}", prop(&h.ended_held));
    }
}

pub(crate) fn text(r: &SimulationReport) -> String {
    let mut s = String::new();
    let a = &r.assumptions;
    let _ = writeln!(
        s,
        "plan `{}`: {} scenario{} x {} trials, seed {}",
        r.plan,
        r.scenarios.len(),
        if r.scenarios.len() == 1 { "" } else { "s" },
        r.trials_per_scenario,
        r.seed,
    );
    let _ = writeln!(s, "\nAnswers (95% intervals)");
    let width = r
        .scenarios
        .iter()
        .map(|sc| sc.name.chars().count())
        .max()
        .unwrap_or(0)
        + 2;
    for sc in &r.scenarios {
        let name = format!("{:width$}", sc.name);
        let blank = " ".repeat(width);
        match (&sc.caught, &sc.rolled_back_anyway, &sc.missed, &sc.escape) {
            (Some(c), Some(a), Some(m), Some(e)) => {
                let _ = writeln!(s, "  {name}caught              {}", brief(c));
                let _ = writeln!(s, "  {blank}rolled back anyway  {}", brief(a));
                let _ = writeln!(s, "  {blank}never rolled back   {}", brief(m));
                let _ = writeln!(s, "  {blank}escaped to 100%     {}", brief(e));
                if let Some(h) = sc.holds.as_ref().filter(|h| h.ended_held.count > 0) {
                    let _ = writeln!(s, "  {blank}ended held          {}", brief(&h.ended_held));
                }
            }
            _ => {
                let _ = writeln!(
                    s,
                    "  {name}false rollback      {}",
                    brief(&sc.false_rollback)
                );
                if sc.gate_rollback.count > 0 {
                    let _ = writeln!(
                        s,
                        "  {blank}  by a gate         {}",
                        brief(&sc.gate_rollback)
                    );
                }
                if let Some(h) = sc.holds.as_ref().filter(|h| h.ended_held.count > 0) {
                    let _ = writeln!(s, "  {blank}ended held          {}", brief(&h.ended_held));
                }
            }
        }
    }
    let any_ended_held = r
        .scenarios
        .iter()
        .any(|sc| sc.holds.as_ref().is_some_and(|h| h.ended_held.count > 0));
    if r.twins.is_some() {
        let _ = writeln!(
            s,
            "  (caught: rolled back after the fault began, by a rule reading a metric the fault \
             moves,\n   while its healthy twin, the same trial without the fault, had not rolled \
             back yet;\n   rolled back anyway: every other rollback (before the onset, by a rule reading no \
             metric\n   the fault moves, or with the healthy twin rolled back by then too); never rolled \
             back:\n   the release completed with the fault; escaped to 100%: the faulty version reached \
             100%\n   and its fault began before the release ended, before 100% or during the watch{})",
            if any_ended_held {
                ";\n   ended held: the longest hold ran out with a gate still failing and the plan says stay:\n   \
                 the release waits at that phase, short of 100%, for someone to decide"
            } else {
                ""
            }
        );
    }
    for sc in &r.scenarios {
        let _ = writeln!(
            s,
            "\n{}{}",
            sc.name,
            if sc.description.is_empty() {
                String::new()
            } else {
                format!(": {}", sc.description)
            }
        );
        if !sc.query_steps.is_empty() {
            let _ = writeln!(
                s,
                "  query steps              {}  (evaluations of each query over its series; a rule relative to stable reads both tracks)",
                sc.query_steps
                    .iter()
                    .map(|(m, n)| format!("{m} {n}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
        if let (Some(c), Some(a), Some(m), Some(e)) =
            (&sc.caught, &sc.rolled_back_anyway, &sc.missed, &sc.escape)
        {
            let _ = writeln!(s, "  caught                   {}", prop(c));
            let _ = writeln!(s, "  rolled back anyway       {}", prop(a));
            let _ = writeln!(s, "  never rolled back        {}", prop(m));
            let _ = writeln!(s, "  escaped to 100%          {}", prop(e));
            if let Some(raw) = &sc.rolled_back_after_onset {
                let _ = writeln!(s, "  raw: after onset         {}", prop(raw));
            }
            let _ = writeln!(s, "  raw: before onset        {}", prop(&sc.false_rollback));
            for (what, by) in [("rule", &sc.by_rule), ("gate", &sc.by_gate)] {
                for (id, o) in by {
                    let _ = writeln!(
                        s,
                        "  {what} {id}: caught {}, rolled back anyway {}",
                        brief(&o.caught).trim_start(),
                        brief(&o.rolled_back_anyway).trim_start()
                    );
                }
            }
            if let Some(q) = &sc.time_to_catch_seconds {
                let _ = writeln!(
                    s,
                    "  time to catch            median {}, p90 {}, p99 {} after onset",
                    dur(q.median),
                    dur(q.p90),
                    dur(q.p99)
                );
            }
            if let Some(b) = &sc.blast_radius {
                let users = b
                    .users
                    .map_or(String::new(), |u| format!(", ~{u:.0} users"));
                let _ = writeln!(
                    s,
                    "  blast radius             {:.0} requests ({:.0} failed) served by the bad version{users}, mean per trial",
                    b.requests, b.failed_requests
                );
            }
            if sc.fault_after_release > 0 {
                let _ = writeln!(
                    s,
                    "  note                     in {} trials the fault began after the release completed",
                    sc.fault_after_release
                );
            }
        } else {
            let _ = writeln!(s, "  false rollback           {}", prop(&sc.false_rollback));
            if sc.gate_rollback.count > 0 {
                let _ = writeln!(s, "    by a gate              {}", prop(&sc.gate_rollback));
            }
            let _ = writeln!(s, "  completed                {}", prop(&sc.completed));
        }
        if sc.rollback.count > 0 {
            let _ = writeln!(
                s,
                "  rolled back in           {}",
                counts(&sc.rollbacks_by_phase)
            );
            if !sc.first_rule.is_empty() {
                let _ = writeln!(s, "  first rule               {}", counts(&sc.first_rule));
            }
            if !sc.first_gate.is_empty() {
                let _ = writeln!(s, "  failing gate             {}", counts(&sc.first_gate));
            }
        }
        if let Some(h) = &sc.holds {
            hold_text(&mut s, h, &a.gate_policy);
        }
        for (p, g) in &sc.gate_failures {
            let list: Vec<String> = g
                .failing
                .iter()
                .map(|(k, v)| format!("{k} {}", pct(*v as f64 / g.completed.max(1) as f64)))
                .collect();
            let _ = writeln!(
                s,
                "  gates failing at the end of {p} (of {} trials reaching it{}): {}",
                g.completed,
                match a.gate_policy {
                    GatePolicy::Rollback => "",
                    GatePolicy::Hold { .. } => "; the phase then held",
                },
                list.join(", ")
            );
        }
    }
    let _ = writeln!(s, "\nAssumed");
    let _ = writeln!(
        s,
        "  semantics      {}",
        if a.semantics == "prometheus2" {
            "Prometheus 2 (range selections include the window's start)"
        } else {
            "Prometheus 3 (range selections exclude the window's start)"
        }
    );
    let _ = writeln!(
        s,
        "  intervals      scrape every {}, evaluation every {}, rate window {}",
        secs(a.scrape_interval_seconds),
        secs(a.evaluation_interval_seconds),
        secs(a.window_seconds)
    );
    for (i, line) in a.exposition.lines(a.recording.is_some()).iter().enumerate() {
        let head = if i == 0 {
            "  exposition     "
        } else {
            "                 "
        };
        let _ = writeln!(s, "{head}{line}");
    }
    if let Some(r) = &a.recording {
        s += &recording_lines(r);
    }
    let tr = &a.traffic;
    let users = tr
        .users_per_day
        .map_or(String::new(), |u| format!(", {u} users a day"));
    match (tr.daily_amplitude, tr.overdispersion, tr.error_clustering) {
        (Some(amplitude), Some(overdispersion), Some(clustering)) => {
            let _ = writeln!(
                s,
                "  traffic        {} req/s, daily swing ±{} with the release starting at {:02}:00, overdispersion {}{users}",
                crate::model::trim(tr.requests_per_second),
                pct(amplitude),
                tr.start_hour,
                crate::model::trim(overdispersion),
            );
            let _ = writeln!(
                s,
                "  errors         {}",
                if let (true, Some(length), Some(shared)) = (
                    clustering > 0.0,
                    tr.error_clustering_time_constant_seconds,
                    tr.error_clustering_shared,
                ) {
                    let cv = crate::model::trim(clustering);
                    let (multiplier, versions) = match shared {
                        0.0 => (
                            format!("a Gamma of mean 1 and CV {cv}, per trial and version,"),
                            "each version's its own (shared 0)".to_string(),
                        ),
                        1.0 => (
                            format!("a Gamma of mean 1 and CV {cv}, per trial,"),
                            "both versions' the same (shared 1)".to_string(),
                        ),
                        _ => (
                            format!(
                                "a multiplier of mean 1 and CV {cv} per trial and version, the product of a Gamma both versions share and one of its own, each"
                            ),
                            format!(
                                "the versions' multipliers correlate by {}",
                                crate::model::trim(shared)
                            ),
                        ),
                    };
                    format!(
                        "clustered: the failure probability times {multiplier} drawn afresh after an exponential time of mean {}; {versions}",
                        secs(length)
                    )
                } else {
                    "independent from request to request".to_string()
                }
            );
        }
        // On a recording: its own traffic, at its rate.
        _ => {
            let _ = writeln!(
                s,
                "  traffic        the recording's, {} req/s on average, the release starting at {:02}:00{users}",
                crate::model::trim(tr.requests_per_second),
                tr.start_hour,
            );
        }
    }
    let _ = writeln!(
        s,
        "  release        a gate failing at its phase's end {}; the last phase (100%) watched {}{}",
        match a.gate_policy {
            GatePolicy::Rollback => "rolls back at once".to_string(),
            GatePolicy::Hold { max, then } => format!(
                "holds the phase, re-checking at every evaluation, for up to {max}, then {}",
                match then {
                    AfterMaxHold::Rollback => "rolls back",
                    AfterMaxHold::Stay => "stays held",
                }
            ),
        },
        secs(a.watch_seconds),
        if a.watch_default {
            " (default: the plan's last phase has no `duration`)"
        } else {
            ""
        }
    );
    let _ = writeln!(
        s,
        "  scenarios      {}, {} trials each, seed {}",
        a.scenario_file, a.trials_per_scenario, a.seed
    );
    if let Some(t) = &r.twins {
        let _ = writeln!(
            s,
            "  healthy twins  {} (trial t of every scenario draws the same random numbers until its fault begins); false rollback {}",
            t.scenario.as_ref().map_or_else(
                || "an extra fault-free pass of the same trials".to_string(),
                |n| format!("the trials of `{n}`")
            ),
            brief(&t.false_rollback).trim_start()
        );
    }
    // A recorded trial's metrics are the recording's series: it has no models.
    for (i, m) in a.metrics.iter().flatten().enumerate() {
        let _ = writeln!(
            s,
            "  {}{}: {}",
            if i == 0 {
                "metrics        "
            } else {
                "               "
            },
            m.metric,
            model_text(m)
        );
    }
    let _ = writeln!(
        s,
        "\n{} trials, {} evaluation steps, {} rule evaluations",
        r.totals.trials, r.totals.evaluation_steps, r.totals.rule_evaluations
    );
    s
}

/// `text` after `head`, broken at spaces into lines of at most 100 characters (but a
/// word longer), the next ones indented as far as `head`.
pub(crate) fn wrapped(head: &str, text: &str) -> String {
    let indent = " ".repeat(head.chars().count());
    let mut out = String::new();
    let mut line = head.to_string();
    let mut empty = true;
    for word in text.split(' ') {
        if !empty && line.chars().count() + 1 + word.chars().count() > 100 {
            out.push_str(&line);
            out.push('\n');
            line.clone_from(&indent);
            empty = true;
        }
        if !empty {
            line.push(' ');
        }
        line.push_str(word);
        empty = false;
    }
    out.push_str(&line);
    out.push('\n');
    out
}

/// What a text report says of the recording its trials were built from (`--baseline`).
pub(crate) fn recording_lines(r: &RecordingAssumptions) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "  recording      {}: {} every {}, {} series read; blocks of {} {}",
        r.files.join(", "),
        secs(r.span_seconds),
        secs(r.step_seconds),
        r.series_read,
        secs(r.block_seconds),
        if r.time_of_day_matched {
            format!(
                "drawn at their time of day from {} day{} ({} of recording per block)",
                r.days,
                if r.days == 1 { "" } else { "s" },
                secs(r.draws_from_seconds)
            )
        } else {
            "drawn at any time of day".to_string()
        }
    );
    let _ = writeln!(
        s,
        "                 (the scenarios' faults, start hour and users are used, their traffic model and healthy levels are not;\n                 the intervals are for this recording: its own chance is not in them)"
    );
    if !r.unused_settings.is_empty() {
        s.push_str(&wrapped("  not used       ", &r.unused_settings.join(", ")));
        let _ = writeln!(
            s,
            "                 (the scenario file's: the recording's traffic and levels take their place)"
        );
    }
    for n in &r.nested {
        let _ = writeln!(
            s,
            "  nested         {} within {} ({}): each of its events goes to the track its parent event went to",
            n.series,
            n.within.join(" + "),
            if n.known == "declared" {
                "the scenario file's `of`"
            } else {
                "inferred: never more events at any point of the recording"
            }
        );
    }
    match &r.trials {
        Some(TrialKind::Sparse) => {
            let _ = writeln!(
                s,
                "  trials         sparse: drawn only at the scrapes a rate window starts or ends on"
            );
        }
        Some(TrialKind::Full { because }) => {
            let text = format!(
                "full, every scrape of every series: {because} (sparse trials, several times faster, draw only at the scrapes a rate window starts or ends on)"
            );
            s.push_str(&wrapped("  trials         ", &text));
        }
        None => {}
    }
    for w in &r.warnings {
        let _ = writeln!(s, "  warning        {w}");
    }
    s
}
