//! Simulation scenarios: the traffic and healthy behaviour of the service and the faults a
//! bad canary may show. Read from a YAML file (or the built-in `simulations/default.yaml`)
//! in the plan's stages: YAML with positions, the schema `schemas/scenarios.schema.json`
//! ([`schema`]), the file as written ([`spec`]), then checked against the plan it simulates
//! ([`resolve`]). Findings are diagnostics like a plan's, located at line and column.

mod resolve;
mod schema;
mod series;
mod spec;
pub(crate) mod unmodelled;

use crate::check::CheckedPlan;
use crate::diagnostic::{Diagnostic, Located};
use crate::source::Source;
use crate::syntax::{Spans, locate};
use std::collections::BTreeMap;

pub(crate) use schema::SCENARIOS_SCHEMA;
pub(crate) use series::{SeriesEffect, SeriesKind, SeriesModel};
pub(crate) use unmodelled::UNMODELLED_METRIC;

pub(crate) const DEFAULT_SCENARIOS: &str = include_str!("../../simulations/default.yaml");
pub(crate) const DEFAULT_TRIALS: u64 = 2000;

/// Where a JSON pointer into the plan is, for messages that name a rule's line from
/// another file: `plans/lawsker.yaml:102:3`.
pub(crate) type Place<'a> = &'a dyn Fn(&str) -> String;

/// The Prometheus client libraries' default latency buckets, in seconds.
pub(crate) const DEFAULT_BUCKETS: [f64; 11] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// How slowly a gauge's noise drifts when the file does not say: ten minutes, about how
/// long memory, connection pools and business ratios take to move most of the way from
/// one level to the next. Fresh draws at every scrape (`0s`) make a gauge rule with a
/// `for` of several minutes all but unable to fire, where real gauges stay high for a
/// while once they are high.
pub(crate) const DEFAULT_TIME_CONSTANT_MS: i64 = 600_000;

/// How much failures cluster when the file does not say: the failure probability of every
/// request in a cluster ([`DEFAULT_ERROR_CLUSTERING_TIME_CONSTANT_MS`]) is multiplied by a
/// Gamma variate of mean 1 and this coefficient of variation. Production error ratios move
/// from minute to minute far more than independent failures allow (a bad pod, a slow
/// dependency, one client's retries):
/// at a traffic where the sampling noise is negligible, minutes at a third of the mean
/// ratio and at twice it are both common. 0.5 puts 90% of the clusters between 0.34x and
/// 1.94x the mean: modest next to the bursts real services show, so false-rollback rates
/// are no longer understated by independence without assuming a noisy service.
pub(crate) const DEFAULT_ERROR_CLUSTERING: f64 = 0.5;

/// How long a cluster of errors lasts on average: its multiplier holds for an exponential
/// time of this mean (wall-clock time, so that the clustering a rule sees does not depend
/// on the evaluation interval). A minute: a bad pod, a slow dependency or one client's
/// retries come and go within minutes, and a 5m window averages about five clusters.
pub(crate) const DEFAULT_ERROR_CLUSTERING_TIME_CONSTANT_MS: i64 = 60_000;

/// How much of the clustering the two versions share when the file does not say: the
/// correlation of their multipliers at one instant. A slow dependency, a database hiccup
/// or one client's retries hit both versions at once; a bad pod or node hits one. Half and
/// half: a rule comparing the canary with the stable version then cancels the shared half,
/// as it would in production, where with nothing shared it fires on clusters of the
/// canary alone.
pub(crate) const DEFAULT_ERROR_CLUSTERING_SHARED: f64 = 0.5;

/// A gauge's healthy level and per-scrape noise (standard deviation), in its own unit, and
/// how slowly the noise drifts: an Ornstein-Uhlenbeck process with time constant
/// `time_constant_ms` (two scrapes `d` apart correlate as `exp(-d / time_constant)`;
/// 0: every scrape's noise is a fresh draw). CPU is a counter and does not drift.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Gauge {
    pub(crate) mean: f64,
    pub(crate) noise: f64,
    pub(crate) time_constant_ms: i64,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Traffic {
    pub(crate) requests_per_second: f64,
    pub(crate) daily_amplitude: f64,
    pub(crate) overdispersion: f64,
    /// The coefficient of variation of the Gamma multiplier of every request's failure
    /// probability, per trial and track (0: failures independent).
    pub(crate) error_clustering: f64,
    /// The mean time a multiplier holds before the next is drawn.
    pub(crate) error_clustering_time_constant_ms: i64,
    /// The correlation of the two tracks' multipliers at one instant: the share of the
    /// clustering common to both versions.
    pub(crate) error_clustering_shared: f64,
    pub(crate) start_hour: u32,
    pub(crate) users_per_day: Option<u64>,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Behaviour {
    pub(crate) error_rate: f64,
    /// Median of the latency body, seconds.
    pub(crate) median: f64,
    pub(crate) sigma: f64,
    pub(crate) tail_share: f64,
    pub(crate) tail_factor: f64,
    /// Finite bucket bounds in seconds, ascending (+Inf is implied).
    pub(crate) buckets: Vec<f64>,
    /// Each instance's CPU (its noise per scrape span; it does not drift).
    pub(crate) cpu: Gauge,
    /// The share of an instance's CPU noise variance that the track's instances have in
    /// common (the correlation of two instances' noise in one span).
    pub(crate) cpu_shared: f64,
    pub(crate) memory: Gauge,
    pub(crate) db_connections: Gauge,
    pub(crate) redis_memory: Gauge,
    pub(crate) custom: BTreeMap<String, Gauge>,
    /// The raw series custom queries read (`baseline.series`), parents first.
    pub(crate) series: Vec<SeriesModel>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum FaultKind {
    Step,
    Leak {
        ramp_ms: i64,
    },
    Bursts {
        every_ms: i64,
        lasting_ms: i64,
    },
    Load {
        above_rps: f64,
    },
    Partial {
        users: f64,
    },
    /// The canary stops answering at onset, for good: no scrape succeeds (its `up` is 0,
    /// its series end) and NGINX answers every request routed to it with a 502.
    Crash,
}

/// A fault on the canary. Effects left `None` stay at the baseline.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Fault {
    pub(crate) kind: FaultKind,
    pub(crate) onset_ms: i64,
    pub(crate) error_rate: Option<f64>,
    pub(crate) latency_factor: Option<f64>,
    pub(crate) tail_share: Option<f64>,
    pub(crate) memory_usage: Option<f64>,
    pub(crate) cpu_usage: Option<f64>,
    /// Custom metrics the fault moves: (index into `CheckedPlan::metrics`, the canary's
    /// level at full effect), in the order written.
    pub(crate) metrics: Vec<(usize, f64)>,
    /// Modelled series the fault moves on the canary, in the order written.
    pub(crate) series: Vec<SeriesEffect>,
}

impl Fault {
    /// A fault of `kind` from `onset_ms` with no effect yet: tests set the ones they need
    /// (the scenario loader refuses a fault without one: `fault-without-effect`).
    #[cfg(test)]
    pub(crate) fn bare(kind: FaultKind, onset_ms: i64) -> Fault {
        Fault {
            kind,
            onset_ms,
            error_rate: None,
            latency_factor: None,
            tail_share: None,
            memory_usage: None,
            cpu_usage: None,
            metrics: Vec::new(),
            series: Vec::new(),
        }
    }

    /// The fault's intensity at `t` (0 = none, 1 = full) for a canary serving `canary_rps`,
    /// before any per-user split (`partial` affects a share of users at full intensity).
    #[inline]
    pub(crate) fn intensity(&self, t: i64, canary_rps: f64) -> f64 {
        if t < self.onset_ms {
            return 0.0;
        }
        let since = t - self.onset_ms;
        match self.kind {
            FaultKind::Step | FaultKind::Partial { .. } | FaultKind::Crash => 1.0,
            FaultKind::Leak { ramp_ms } => (since as f64 / ramp_ms as f64).min(1.0),
            FaultKind::Bursts {
                every_ms,
                lasting_ms,
            } => f64::from(u8::from(since % every_ms < lasting_ms)),
            FaultKind::Load { above_rps } => f64::from(u8::from(canary_rps > above_rps)),
        }
    }

    /// The share of the canary's requests the fault can touch.
    pub(crate) fn affected(&self) -> f64 {
        match self.kind {
            FaultKind::Partial { users } => users,
            _ => 1.0,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Scenario {
    pub(crate) name: String,
    pub(crate) description: String,
    pub(crate) fault: Option<Fault>,
}

/// How the service exposes its request counters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Exposition {
    /// One request counter per status code (answered, failed), each extrapolated on its
    /// own by `rate()`; false: one counter of every request.
    pub(crate) per_code: bool,
    /// When a track's failure counter (`code="500"`) first has a sample, per code.
    pub(crate) failures_from: FailuresFrom,
    /// Whether each value of a counter's `split` first has a sample at the first scrape
    /// after its first event (`exposition.split_from: first_event`), as a client library
    /// creates a label set at its first increment; else from the release's start.
    pub(crate) split_born_late: bool,
    /// Whether each track's memory and DB connection gauges come from one instance per
    /// replica (`exposition.instances: replicas`: the stable version's `service.replicas`,
    /// the canary's [`CheckedPlan::canary_replicas`] in each phase; [`Self::instances`]), each
    /// drifting on its own, the track's value their max (memory) or sum (connections), and
    /// its `targets_up` their count, as the rendered rules compute them; else from one
    /// instance per track.
    pub(crate) per_instance: bool,
    /// Whether each of those instances also has request counters of its own
    /// (`exposition.request_counters: per_instance`, the default; only with
    /// [`Self::per_instance`]), serving an equal part of its track's requests; else a
    /// track's requests are one set of counters.
    pub(crate) requests_per_instance: bool,
    /// How long after a scrape each rule evaluation comes (below the scrape interval):
    /// scrape `j` is at `j · scrape_interval - scrape_offset_ms`. None: drawn per trial
    /// ([`Exposition::offsets_ms`]).
    pub(crate) scrape_offset_ms: Option<i64>,
}

/// When a track's per-code failure series first exists (`exposition.failures_from`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FailuresFrom {
    /// At the first scrape after its first failure, holding the failures counted by then:
    /// a client library creates a label set at its first increment.
    FirstFailure,
    /// From the release's start at 0 (the service pre-initialises the label set).
    ReleaseStart,
}

impl FailuresFrom {
    pub(crate) fn name(self) -> &'static str {
        match self {
            FailuresFrom::FirstFailure => "first_failure",
            FailuresFrom::ReleaseStart => "release_start",
        }
    }
}

impl Exposition {
    /// Whether a track's failure series is born at its first failure: per code, unless
    /// pre-initialised (one counter of every request exists from the start).
    pub(crate) fn births(&self) -> bool {
        self.per_code && self.failures_from == FailuresFrom::FirstFailure
    }
}

/// The offset classes of a run whose scrape offset is drawn per trial (fewer when the
/// scrape interval has fewer milliseconds).
pub(crate) const OFFSET_CLASSES: i64 = 8;

impl Exposition {
    /// Per phase of `plan`, the instances the canary and the stable track run, as
    /// `[canary, stable]`: their replicas under `instances: replicas`, else one each
    /// ([`Exposition::per_instance`]).
    pub(crate) fn instances(&self, plan: &CheckedPlan) -> Vec<[u32; 2]> {
        (0..plan.phases.len())
            .map(|i| {
                if self.per_instance {
                    [plan.canary_replicas(i), plan.service.replicas]
                } else {
                    [1, 1]
                }
            })
            .collect()
    }

    /// The scrape offset of each of a run's offset classes, trial `t` being in class
    /// `t mod len`: the fixed offset alone; drawn per trial, the midpoints of
    /// [`OFFSET_CLASSES`] equal strata of the scrape interval (whole milliseconds, rounded
    /// down), a stratified draw of an offset uniform over the interval. Trial `t` of every
    /// scenario is in the same class, so healthy twins keep their common numbers.
    pub(crate) fn offsets_ms(&self, scrape_ms: i64) -> Vec<i64> {
        match self.scrape_offset_ms {
            Some(o) => vec![o],
            None => {
                let scrape_ms = scrape_ms.max(1);
                let k = OFFSET_CLASSES.min(scrape_ms);
                (0..k).map(|c| (2 * c + 1) * scrape_ms / (2 * k)).collect()
            }
        }
    }
}

/// Everything a Monte Carlo run needs besides the plan.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Scenarios {
    pub(crate) trials: u64,
    pub(crate) traffic: Traffic,
    pub(crate) baseline: Behaviour,
    pub(crate) exposition: Exposition,
    pub(crate) scenarios: Vec<Scenario>,
    /// On a recording: the settings the file states that only the synthetic model uses
    /// (the recording's traffic and healthy levels take their place), as dotted keys in
    /// the file's order, for the report to name.
    pub(crate) unused_on_recording: Vec<String>,
}

/// A scenario file read as far as it goes without a plan: YAML, schema, the typed file.
pub(crate) struct ScenarioFile {
    pub(crate) spans: Option<Spans>,
    /// The findings that do not depend on the plan (syntax, schema).
    pub(crate) findings: Vec<Diagnostic>,
    /// Present when there is no such finding.
    spec: Option<spec::FileSpec>,
    /// The built-in scenarios: their findings about the plan are placed in the plan.
    builtin: bool,
    /// What the trials are built from, which decides what the file must give.
    basis: Basis,
}

/// What a run's trials are built from, which decides what a scenario file must give.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Basis {
    /// The synthetic model: every metric a rule reads needs a model, and the request rate
    /// is the scenario file's, else the plan's.
    Synthetic,
    /// A recording (`--baseline`): the plan's metrics need no model (the recording gives
    /// their series), and the request rate is the recording's, the one the trials have
    /// (None: it records no requests; then the file's, else the plan's, which only the
    /// report and the thin-traffic warnings read).
    Recorded { requests_per_second: Option<f64> },
}

/// Reads a scenario file (or the built-in default) up to the point where it needs a plan.
pub(crate) fn read(source: &Source) -> ScenarioFile {
    let doc = match crate::syntax::parse(source) {
        Ok(doc) => doc,
        Err((spans, findings)) => {
            return ScenarioFile {
                spans: Some(spans),
                findings,
                spec: None,
                builtin: false,
                basis: Basis::Synthetic,
            };
        }
    };
    let findings = schema::check(&doc.value);
    if !findings.is_empty() {
        return ScenarioFile {
            spans: Some(doc.spans),
            findings,
            spec: None,
            builtin: false,
            basis: Basis::Synthetic,
        };
    }
    match serde_json::from_value(doc.value) {
        Ok(spec) => ScenarioFile {
            spans: Some(doc.spans),
            findings,
            spec: Some(spec),
            builtin: false,
            basis: Basis::Synthetic,
        },
        Err(e) => ScenarioFile {
            spans: Some(doc.spans),
            findings: vec![
                Diagnostic::error(
                    "model",
                    "",
                    format!("the scenario file passed the schema but could not be read: {e}"),
                )
                .with_hint("this is a bug in plan; please report it with the scenario file"),
            ],
            spec: None,
            builtin: false,
            basis: Basis::Synthetic,
        },
    }
}

/// The built-in scenarios (`simulations/default.yaml`, embedded), read like a file.
/// Its findings about the plan's custom metrics ([`UNMODELLED_METRIC`]) point into the
/// plan; any other into the returned source.
pub(crate) fn builtin() -> (Source, ScenarioFile) {
    let source = Source::new("<built-in scenarios>".into(), DEFAULT_SCENARIOS.into())
        .holding(crate::source::Kind::Scenarios);
    let file = ScenarioFile {
        builtin: true,
        ..read(&source)
    };
    (source, file)
}

impl ScenarioFile {
    /// The same file, read for trials built from `basis`.
    pub(crate) fn on(self, basis: Basis) -> ScenarioFile {
        ScenarioFile { basis, ..self }
    }

    /// The scenarios for `plan`, when nothing is wrong, and the findings of checking the
    /// file against it (not those of [`read`]); nothing when the file did not read. The
    /// findings point into the file, except the built-in scenarios' missing models, which
    /// point into the plan ([`builtin`]); `place` names the plan's lines.
    pub(crate) fn against(
        &self,
        plan: &CheckedPlan,
        place: Place<'_>,
    ) -> (Option<Scenarios>, Vec<Diagnostic>) {
        match &self.spec {
            Some(spec) => resolve::resolve(spec, plan, place, (self.builtin, self.basis)),
            None => (None, Vec::new()),
        }
    }
}

/// Reads a scenario file and checks it against `plan`: the scenarios when no finding is
/// an error, and every finding, located and in source order.
#[cfg(test)]
pub(crate) fn load(
    source: &Source,
    plan: &CheckedPlan,
    place: Place<'_>,
) -> (Option<Scenarios>, Vec<Located>) {
    load_on(source, plan, place, Basis::Synthetic)
}

/// `load` (the synthetic model's) for trials built from `basis`.
pub(crate) fn load_on(
    source: &Source,
    plan: &CheckedPlan,
    place: Place<'_>,
    basis: Basis,
) -> (Option<Scenarios>, Vec<Located>) {
    load_file(read(source).on(basis), source, plan, place)
}

fn load_file(
    file: ScenarioFile,
    source: &Source,
    plan: &CheckedPlan,
    place: Place<'_>,
) -> (Option<Scenarios>, Vec<Located>) {
    let (scenarios, more) = file.against(plan, place);
    let mut findings = file.findings;
    findings.extend(more);
    (scenarios, locate(source, file.spans.as_ref(), findings))
}
