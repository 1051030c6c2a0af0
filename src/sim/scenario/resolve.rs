//! A scenario file checked against the plan it simulates, with defaults filled in: every
//! name it uses must be the plan's (custom metrics, phases), every fault must change
//! something, use only its kind's parameters and start before the release is promoted.
//! Every finding is collected before the file is refused.

use super::spec::{
    FailuresFromSpec, FaultSpec, FileSpec, GaugeSpec, InstancesSpec, KindSpec, Ratio,
    RequestCountersSpec, ScrapeOffset, Span, SplitFromSpec,
};
use super::{Basis, Exposition, FailuresFrom, Place, Scenarios, Traffic};
use super::{
    Behaviour, DEFAULT_BUCKETS, DEFAULT_ERROR_CLUSTERING, DEFAULT_ERROR_CLUSTERING_SHARED,
    DEFAULT_ERROR_CLUSTERING_TIME_CONSTANT_MS, DEFAULT_TIME_CONSTANT_MS, DEFAULT_TRIALS, Fault,
    FaultKind, Gauge, Scenario,
};
use crate::check::{CheckedPlan, REQUESTS, builtin};
use crate::diagnostic::Diagnostic;
use crate::limits::MAX_REQUESTS_PER_SECOND;
use crate::model::{Duration, Unit, trim};
use crate::pointer;
use crate::sim::evaluator::Schedule;
use crate::suggest::nearest;
use std::collections::BTreeMap;

/// The healthy service when the file does not say.
const DEFAULT_ERROR_RATE: f64 = 0.005;
const DEFAULT_MEDIAN_S: f64 = 0.12;
const DEFAULT_SIGMA: f64 = 0.6;
const DEFAULT_TAIL_SHARE: f64 = 0.01;
const DEFAULT_TAIL_FACTOR: f64 = 8.0;
const DEFAULT_CPU: Gauge = Gauge {
    mean: 0.35,
    noise: 0.03,
    time_constant_ms: 0,
};
/// Half of each instance's CPU noise is its track's: CPU follows the load, which the
/// instances behind one balancer share; garbage collection, neighbours and an uneven
/// balance are each instance's own.
const DEFAULT_CPU_SHARED: f64 = 0.5;
const DEFAULT_MEMORY: Gauge = Gauge {
    mean: 0.55,
    noise: 0.01,
    time_constant_ms: DEFAULT_TIME_CONSTANT_MS,
};
const DEFAULT_DB: Gauge = Gauge {
    mean: 30.0,
    noise: 4.0,
    time_constant_ms: DEFAULT_TIME_CONSTANT_MS,
};
const DEFAULT_REDIS: Gauge = Gauge {
    mean: 0.5,
    noise: 0.01,
    time_constant_ms: DEFAULT_TIME_CONSTANT_MS,
};

/// Resolves `spec` against `plan`: the scenarios, when no finding is an error, and every
/// finding either way. `place` says where a pointer into the plan is (`plan.yaml:12:3`);
/// `builtin` is set for the built-in scenarios, whose missing models are reported at the
/// plan's lines (nobody can edit the built-in file); `basis` says what the trials are built
/// from, and so where the request rate comes from.
pub(crate) fn resolve(
    spec: &FileSpec,
    plan: &CheckedPlan,
    place: Place<'_>,
    (builtin, basis): (bool, Basis),
) -> (Option<Scenarios>, Vec<Diagnostic>) {
    let mut f = Vec::new();
    let recorded = matches!(basis, Basis::Recorded { .. });
    let stated = spec
        .traffic
        .requests_per_second
        .or(plan.traffic.requests_per_second);
    // On a recording the trials' rate is the recording's, whatever the files state.
    let rps = match basis {
        Basis::Recorded {
            requests_per_second: Some(r),
        } => Some(r),
        _ => stated,
    };
    match (rps, basis) {
        (None, Basis::Synthetic) => f.push(
            Diagnostic::error(
                "no-request-rate",
                "",
                format!(
                    "the simulation needs a request rate, and neither the plan `{}` nor the scenario file states one",
                    plan.name
                ),
            )
            .with_hint("add `traffic: {requests_per_second: N}` to the plan, or to the scenario file"),
        ),
        (None, Basis::Recorded { .. }) => f.push(
            Diagnostic::error(
                "no-request-rate",
                "",
                format!(
                    "the simulation needs a request rate, and the recording has no request (`{REQUESTS}`) to take it from, and neither the plan `{}` nor the scenario file states one",
                    plan.name
                ),
            )
            .with_hint(format!("add the service's `{REQUESTS}` series to the recording (its rate is the trials' request rate), or `traffic: {{requests_per_second: N}}` to the plan or to the scenario file")),
        ),
        (Some(r), Basis::Recorded { .. }) if !r.is_finite() || r > MAX_REQUESTS_PER_SECOND => f.push(
            Diagnostic::error(
                "out-of-range",
                "",
                format!(
                    "the recording's `{REQUESTS}` come at {} req/s, over the {} a simulation takes",
                    trim(r),
                    trim(MAX_REQUESTS_PER_SECOND)
                ),
            )
            .with_hint("record one service's requests, as increases of its counter at each step"),
        ),
        _ => {}
    }
    let scrape_ms = plan.monitoring.scrape_interval.millis() as i64;
    let fixed_offset = match spec.exposition.scrape_offset {
        Some(ScrapeOffset::Fixed(o)) => Some(o.0),
        Some(ScrapeOffset::Random) | None => None,
    };
    if let Some(offset) = fixed_offset.filter(|&o| o >= scrape_ms) {
        f.push(
            Diagnostic::error(
                "scrape-offset-too-long",
                "/exposition/scrape_offset",
                format!(
                    "an evaluation {}s after a scrape is at or past the next scrape: the plan `{}` scrapes every {}",
                    trim(offset as f64 / 1000.0),
                    plan.name,
                    plan.monitoring.scrape_interval
                ),
            )
            .with_hint("give an offset from `0s` to under the scrape interval"),
        );
    }
    if spec.exposition.instances == Some(InstancesSpec::One)
        && spec.exposition.request_counters == Some(RequestCountersSpec::PerInstance)
    {
        f.push(
            Diagnostic::error(
                "conflicting-exposition",
                "/exposition/request_counters",
                "request counters per instance need the instances of `instances: replicas`; with `instances: one` each track has one set",
            )
            .with_hint("remove `instances: one` to count requests per replica, or write `request_counters: per_track`"),
        );
    }
    let baseline = behaviour(spec, plan, &mut f);
    let written_series: Vec<String> = spec.baseline.series.keys().cloned().collect();
    // Series models refused (their errors are reported): what reads them is not also
    // reported as unmodelled.
    let refused: &[String] = if baseline.series.is_empty() {
        &written_series
    } else {
        &[]
    };
    if !recorded {
        f.extend(super::unmodelled::check(
            plan,
            &spec.baseline.metrics,
            (&baseline.series, refused),
            place,
            builtin,
        ));
    }
    let mut names = BTreeMap::new();
    let mut scenarios = Vec::new();
    for (i, s) in spec.scenarios.iter().enumerate() {
        if let Some(first) = names.insert(s.name.as_str(), i) {
            f.push(
                Diagnostic::error(
                    "duplicate-scenario",
                    format!("/scenarios/{i}/name"),
                    format!(
                        "scenario `{}` is already defined (scenarios[{first}])",
                        s.name
                    ),
                )
                .with_hint("give each scenario its own name: the report tells them apart by it"),
            );
        }
        let fault = s.fault.as_ref().and_then(|fs| {
            fault(
                fs,
                &format!("/scenarios/{i}/fault"),
                (&baseline, &written_series),
                (plan, recorded),
                &mut f,
            )
        });
        scenarios.push(Scenario {
            name: s.name.clone(),
            description: s.description.clone().unwrap_or_default(),
            fault,
        });
    }
    let resolved = match rps {
        Some(rps) if !f.iter().any(Diagnostic::is_error) => Some(Scenarios {
            trials: spec.trials.unwrap_or(DEFAULT_TRIALS),
            traffic: Traffic {
                requests_per_second: rps,
                daily_amplitude: spec.traffic.daily_amplitude.unwrap_or(0.5),
                overdispersion: spec.traffic.overdispersion.unwrap_or(0.0),
                error_clustering: spec
                    .traffic
                    .error_clustering
                    .unwrap_or(DEFAULT_ERROR_CLUSTERING),
                error_clustering_time_constant_ms: spec
                    .traffic
                    .error_clustering_time_constant
                    .map_or(DEFAULT_ERROR_CLUSTERING_TIME_CONSTANT_MS, |t| t.0),
                error_clustering_shared: spec
                    .traffic
                    .error_clustering_shared
                    .unwrap_or(DEFAULT_ERROR_CLUSTERING_SHARED),
                start_hour: spec.traffic.start_hour.unwrap_or(10),
                users_per_day: plan.traffic.users_per_day,
            },
            baseline,
            exposition: Exposition {
                per_code: spec.exposition.per_code.unwrap_or(true),
                // Client libraries create a label set at its first increment.
                failures_from: match spec.exposition.failures_from {
                    Some(FailuresFromSpec::ReleaseStart) => FailuresFrom::ReleaseStart,
                    Some(FailuresFromSpec::FirstFailure) | None => FailuresFrom::FirstFailure,
                },
                split_born_late: spec.exposition.split_from != Some(SplitFromSpec::ReleaseStart),
                // Each replica exports its own gauges.
                per_instance: spec.exposition.instances != Some(InstancesSpec::One),
                // And its own request counters.
                requests_per_instance: spec.exposition.instances != Some(InstancesSpec::One)
                    && spec.exposition.request_counters != Some(RequestCountersSpec::PerTrack),
                // Prometheus spreads its targets' scrapes and its rule groups'
                // evaluations over their intervals: by default the offset is drawn per
                // trial, uniform over the scrape interval.
                scrape_offset_ms: fixed_offset,
            },
            scenarios,
            unused_on_recording: match basis {
                Basis::Recorded {
                    requests_per_second,
                } => unused_on_recording(spec, requests_per_second.is_some()),
                Basis::Synthetic => Vec::new(),
            },
        }),
        _ => None,
    };
    (resolved, f)
}

/// The settings `spec` states that trials on a recording do not use: the synthetic
/// traffic (the recording's rate, when it records requests, and its cycle, bursts and
/// clusters), the healthy service's levels, and the levels of the series models (the
/// recording's own series give them). What they do use: the faults, `start_hour`,
/// `latency.tail_factor` (a tail fault's slow requests), a series model's `of` and `split`
/// label (nesting, and the label sets created by their first event) and `exposition` but
/// `per_code`.
fn unused_on_recording(spec: &FileSpec, records_requests: bool) -> Vec<String> {
    let (t, b) = (&spec.traffic, &spec.baseline);
    let mut keys: Vec<String> = [
        (
            "traffic.requests_per_second",
            records_requests && t.requests_per_second.is_some(),
        ),
        ("traffic.daily_amplitude", t.daily_amplitude.is_some()),
        ("traffic.overdispersion", t.overdispersion.is_some()),
        ("traffic.error_clustering", t.error_clustering.is_some()),
        (
            "traffic.error_clustering_time_constant",
            t.error_clustering_time_constant.is_some(),
        ),
        (
            "traffic.error_clustering_shared",
            t.error_clustering_shared.is_some(),
        ),
        ("baseline.error_rate", b.error_rate.is_some()),
        ("baseline.latency.median", b.latency.median.is_some()),
        ("baseline.latency.sigma", b.latency.sigma.is_some()),
        (
            "baseline.latency.tail_share",
            b.latency.tail_share.is_some(),
        ),
        ("baseline.buckets", b.buckets.is_some()),
        ("baseline.cpu_usage", b.cpu_usage.is_some()),
        ("baseline.memory_usage", b.memory_usage.is_some()),
        ("baseline.db_connections", b.db_connections.is_some()),
        (
            "baseline.redis_memory_usage",
            b.redis_memory_usage.is_some(),
        ),
        ("baseline.metrics", !b.metrics.is_empty()),
        (
            "exposition.request_counters",
            spec.exposition.request_counters.is_some(),
        ),
    ]
    .into_iter()
    .filter(|&(_, set)| set)
    .map(|(key, _)| key.to_string())
    .collect();
    for (name, model) in &b.series {
        let at = |field: &str| format!("baseline.series.{name}.{field}");
        if let Some(c) = &model.counter {
            keys.extend(c.per_request.map(|_| at("counter.per_request")));
            keys.extend(c.share.map(|_| at("counter.share")));
        }
        if model.split.is_some() {
            keys.push(at("split (its shares)"));
        }
        if model.gauge.is_some() {
            keys.push(at("gauge"));
        }
        if model.histogram.is_some() {
            keys.push(at("histogram"));
        }
    }
    if spec.exposition.per_code.is_some() {
        keys.push("exposition.per_code".into());
    }
    keys
}

fn gauge(g: Option<&GaugeSpec>, default: Gauge) -> Gauge {
    g.map_or(default, |g| Gauge {
        mean: g.mean.0,
        noise: noise_of(g.mean, g.noise),
        time_constant_ms: g.time_constant.map_or(default.time_constant_ms, |t| t.0),
    })
}

/// A gauge's noise: as stated, else 5% of its mean.
fn noise_of(mean: Ratio, noise: Option<Ratio>) -> f64 {
    noise.map_or(mean.0.abs() * 0.05, |n| n.0)
}

/// The healthy service; its custom metrics must be the plan's.
fn behaviour(spec: &FileSpec, plan: &CheckedPlan, f: &mut Vec<Diagnostic>) -> Behaviour {
    let b = &spec.baseline;
    let buckets = b
        .buckets
        .clone()
        .unwrap_or_else(|| DEFAULT_BUCKETS.to_vec());
    if let Some(i) = (1..buckets.len()).find(|&i| buckets[i] <= buckets[i - 1]) {
        f.push(
            Diagnostic::error(
                "buckets-out-of-order",
                format!("/baseline/buckets/{i}"),
                format!(
                    "bucket bound {} is not above the one before it ({})",
                    trim(buckets[i]),
                    trim(buckets[i - 1])
                ),
            )
            .with_hint("list the bounds in increasing order, each once, as Prometheus client libraries require"),
        );
    }
    let custom_names: Vec<String> = plan
        .metrics
        .iter()
        .filter(|m| m.is_custom())
        .map(|m| m.name.clone())
        .collect();
    let mut custom = BTreeMap::new();
    for (name, g) in &b.metrics {
        let at = format!("/baseline/metrics/{}", pointer::escape(name));
        match plan.metrics.iter().find(|m| &m.name == name) {
            Some(m) if m.is_custom() => {
                if m.unit == Unit::Ratio && g.mean.0 > 1.0 {
                    f.push(
                        Diagnostic::error(
                            "out-of-range",
                            format!("{at}/mean"),
                            format!(
                                "`{name}` is a ratio in the plan `{}`, so its mean cannot be {}",
                                plan.name,
                                trim(g.mean.0)
                            ),
                        )
                        .with_hint("write a ratio from 0 to 1, such as `0.08` or `8%`"),
                    );
                }
                if m.unit == Unit::Ratio && g.noise.is_some_and(|n| n.0 > 1.0) {
                    f.push(
                        Diagnostic::error(
                            "out-of-range",
                            format!("{at}/noise"),
                            format!(
                                "`{name}` is a ratio in the plan `{}`, so a noise of {} would spread it far past 0 and 1",
                                plan.name,
                                trim(g.noise.map_or(0.0, |n| n.0))
                            ),
                        )
                        .with_hint("write the standard deviation of one scrape's value as a ratio, such as `0.01` or `1%`"),
                    );
                }
                custom.insert(
                    name.clone(),
                    gauge(
                        Some(g),
                        Gauge {
                            mean: 0.0,
                            noise: 0.0,
                            time_constant_ms: DEFAULT_TIME_CONSTANT_MS,
                        },
                    ),
                );
            }
            _ => f.push(metric_not_custom(name, &at, &custom_names, plan, false)),
        }
    }
    Behaviour {
        error_rate: b.error_rate.map_or(DEFAULT_ERROR_RATE, |r| r.0),
        median: b
            .latency
            .median
            .map_or(DEFAULT_MEDIAN_S, |Span(ms)| ms as f64 / 1000.0),
        sigma: b.latency.sigma.unwrap_or(DEFAULT_SIGMA),
        tail_share: b.latency.tail_share.map_or(DEFAULT_TAIL_SHARE, |r| r.0),
        tail_factor: b.latency.tail_factor.unwrap_or(DEFAULT_TAIL_FACTOR),
        buckets,
        cpu: b.cpu_usage.as_ref().map_or(DEFAULT_CPU, |c| Gauge {
            mean: c.mean.0,
            noise: noise_of(c.mean, c.noise),
            time_constant_ms: 0,
        }),
        cpu_shared: (b.cpu_usage.as_ref())
            .and_then(|c| c.shared)
            .map_or(DEFAULT_CPU_SHARED, |s| s.0),
        memory: gauge(b.memory_usage.as_ref(), DEFAULT_MEMORY),
        db_connections: gauge(b.db_connections.as_ref(), DEFAULT_DB),
        redis_memory: gauge(b.redis_memory_usage.as_ref(), DEFAULT_REDIS),
        custom,
        series: super::series::models(&b.series, f),
    }
}

/// A name under `baseline.metrics` (or a fault's `metrics`, when `in_fault`) that is not a
/// custom metric the plan's rules read: a built-in (set under its own key) or an unknown
/// name.
fn metric_not_custom(
    name: &str,
    at: &str,
    custom: &[String],
    plan: &CheckedPlan,
    in_fault: bool,
) -> Diagnostic {
    if let Some(b) = builtin(name)
        && in_fault
    {
        let own = match b.name {
            "error_rate" | "availability" => "give the fault an `error_rate`",
            "response_time_p95" => "give the fault a `latency_factor` or a `tail_share`",
            "cpu_usage" => "give the fault a `cpu_usage`",
            "memory_usage" => "give the fault a `memory_usage`",
            other => {
                return Diagnostic::error(
                    "builtin-metric",
                    at,
                    format!("`{other}` is a built-in metric, and no fault of the simulator moves it"),
                )
                .at_key()
                .with_hint("faults move the error rate, latency, CPU, memory and the plan's custom metrics; remove this entry");
            }
        };
        return Diagnostic::error(
            "builtin-metric",
            at,
            format!(
                "`{name}` is a built-in metric; a fault's `metrics` are the plan's custom metrics"
            ),
        )
        .at_key()
        .with_hint(own);
    }
    if let Some(b) = builtin(name) {
        let own = match b.name {
            "error_rate" | "availability" => {
                "`baseline.error_rate` (availability is its complement)"
            }
            "response_time_p95" => {
                "`baseline.latency` (the p95 follows from the latency distribution)"
            }
            "throughput" => "`traffic.requests_per_second`",
            "cpu_usage" => "`baseline.cpu_usage`",
            "memory_usage" => "`baseline.memory_usage`",
            "db_connections" => "`baseline.db_connections`",
            _ => "`baseline.redis_memory_usage`",
        };
        return Diagnostic::error(
            "builtin-metric",
            at,
            format!(
                "`{name}` is a built-in metric; `baseline.metrics` is for the plan's custom metrics"
            ),
        )
        .at_key()
        .with_hint(format!("set it with {own}"));
    }
    let d = Diagnostic::error(
        "unknown-metric",
        at,
        format!(
            "unknown metric `{name}`: no gate or rollback condition of the plan `{}` reads a custom metric of that name",
            plan.name
        ),
    )
    .at_key();
    match nearest(name, custom) {
        Some(n) => d.with_hint(format!("did you mean `{n}`?")),
        None if custom.is_empty() => d.with_hint(format!(
            "the plan `{}` reads no custom metric; remove this entry",
            plan.name
        )),
        None => d.with_hint(format!(
            "the custom metrics its rules read: {}",
            custom.join(", ")
        )),
    }
}

/// The custom metrics a fault moves (`at/metrics`), each one the plan's and within its
/// unit; what is wrong is recorded in `f`. On a recording (`recorded`) a metric needs no
/// healthy model: the recording gives its level.
fn fault_metrics(
    fs: &FaultSpec,
    at: &str,
    base: &Behaviour,
    (plan, recorded): (&CheckedPlan, bool),
    f: &mut Vec<Diagnostic>,
) -> Vec<(usize, f64)> {
    let custom: Vec<String> = plan
        .metrics
        .iter()
        .filter(|m| m.is_custom())
        .map(|m| m.name.clone())
        .collect();
    let mut out = Vec::new();
    for (name, level) in &fs.metrics {
        let here = format!("{at}/metrics/{}", pointer::escape(name));
        let Some(i) = plan
            .metrics
            .iter()
            .position(|m| &m.name == name && m.is_custom())
        else {
            f.push(metric_not_custom(name, &here, &custom, plan, true));
            continue;
        };
        if plan.metrics[i].unit == Unit::Ratio && level.0 > 1.0 {
            f.push(
                Diagnostic::error(
                    "out-of-range",
                    here,
                    format!(
                        "`{name}` is a ratio in the plan `{}`, so the fault cannot take it to {}",
                        plan.name,
                        trim(level.0)
                    ),
                )
                .with_hint("write the level at the fault's full effect as a ratio from 0 to 1, such as `0.4` or `40%`"),
            );
            continue;
        }
        // Without a healthy model the metric is reported as unmodelled.
        if recorded || base.custom.contains_key(name) {
            out.push((i, level.0));
        }
    }
    out
}

/// A duration for messages, in Prometheus syntax.
fn show_ms(ms: i64) -> String {
    match u64::try_from(ms).ok().map(Duration::from_millis) {
        Some(Some(d)) => d.to_string(),
        Some(None) if ms == 0 => "0s".into(),
        _ => format!("{ms}ms"),
    }
}

/// Resolves one fault (at `at`), or records why it cannot be simulated as written.
fn fault(
    fs: &FaultSpec,
    at: &str,
    (base, written): (&Behaviour, &[String]),
    (plan, recorded): (&CheckedPlan, bool),
    f: &mut Vec<Diagnostic>,
) -> Option<Fault> {
    let errors_before = f.iter().filter(|d| d.is_error()).count();
    let kind_name = fs.kind.name();
    // The schema requires each kind's own parameters; those of another kind would be
    // silently ignored.
    let parameters = [
        ("ramp", fs.ramp.is_some(), KindSpec::Leak),
        ("every", fs.every.is_some(), KindSpec::Bursts),
        ("lasting", fs.lasting.is_some(), KindSpec::Bursts),
        ("above_rps", fs.above_rps.is_some(), KindSpec::Load),
        ("users", fs.users.is_some(), KindSpec::Partial),
    ];
    for (key, given, owner) in parameters {
        if given && fs.kind != owner {
            f.push(
                Diagnostic::error(
                    "unused-parameter",
                    format!("{at}/{key}"),
                    format!("`{key}` has no effect on a `{kind_name}` fault"),
                )
                .at_key()
                .with_hint(format!(
                    "`{key}` belongs to `{}` faults: remove it, or write `kind: {}`",
                    owner.name(),
                    owner.name()
                )),
            );
        }
    }
    let span = |s: Option<Span>| s.map_or(0, |Span(ms)| ms);
    let kind = match fs.kind {
        KindSpec::Step => FaultKind::Step,
        KindSpec::Leak => FaultKind::Leak {
            ramp_ms: span(fs.ramp),
        },
        KindSpec::Bursts => {
            let (every_ms, lasting_ms) = (span(fs.every), span(fs.lasting));
            if lasting_ms >= every_ms {
                f.push(
                    Diagnostic::error(
                        "out-of-range",
                        format!("{at}/lasting"),
                        format!(
                            "bursts lasting {} every {} never end",
                            show_ms(lasting_ms),
                            show_ms(every_ms)
                        ),
                    )
                    .with_hint("make `lasting` shorter than `every`, or write `kind: step` for a fault that never lets up"),
                );
            }
            FaultKind::Bursts {
                every_ms,
                lasting_ms,
            }
        }
        KindSpec::Load => FaultKind::Load {
            above_rps: fs.above_rps.unwrap_or_default(),
        },
        KindSpec::Partial => FaultKind::Partial {
            users: fs.users.map_or(0.0, |r| r.0),
        },
        KindSpec::Crash => FaultKind::Crash,
    };
    let schedule = Schedule::new(plan);
    let mut onset_ms = fs.onset.map_or(0, |o| o.0);
    let mut from = String::new();
    // Where `onset` is measured from: 0, or the start of the fault's `phase`.
    let mut origin = 0;
    let mut onset_known = true;
    if let Some(phase) = &fs.phase {
        match plan.phases.iter().position(|q| &q.name == phase) {
            Some(i) => {
                onset_ms += schedule.starts[i];
                origin = schedule.starts[i];
                from = format!(" from the start of `{phase}`");
            }
            None => {
                onset_known = false;
                let names: Vec<String> = plan.phases.iter().map(|q| q.name.clone()).collect();
                let d = Diagnostic::error(
                    "unknown-phase",
                    format!("{at}/phase"),
                    format!("the plan `{}` has no phase `{phase}`", plan.name),
                );
                f.push(match nearest(phase, &names) {
                    Some(n) => d.with_hint(format!("did you mean `{n}`?")),
                    None => d.with_hint(format!("its phases: {}", names.join(", "))),
                });
            }
        }
    }
    let end = schedule.end;
    if onset_known && onset_ms >= end {
        let last = plan.phases.last().map_or("", |p| p.name.as_str());
        let pointer = if fs.onset.is_some() {
            format!("{at}/onset")
        } else if fs.phase.is_some() {
            format!("{at}/phase")
        } else {
            at.to_string()
        };
        f.push(
            Diagnostic::warning(
                "onset-after-release",
                pointer,
                format!(
                    "the fault starts at {}{from}, when the plan `{}` has already completed the release (at {}, the end of the {} watch of `{last}`): the canary never shows it",
                    show_ms(fs.onset.map_or(0, |o| o.0)),
                    plan.name,
                    show_ms(end),
                    plan.watch,
                ),
            )
            .with_hint(format!(
                "start the fault before {}{from}, or measure its `onset` from an earlier phase",
                show_ms(end - origin)
            )),
        );
    }
    let r = |v: Option<super::spec::Ratio>| v.map(|r| r.0);
    let fault = Fault {
        kind,
        onset_ms,
        error_rate: r(fs.error_rate),
        latency_factor: fs.latency_factor,
        tail_share: r(fs.tail_share),
        memory_usage: r(fs.memory_usage),
        cpu_usage: r(fs.cpu_usage),
        metrics: fault_metrics(fs, at, base, (plan, recorded), f),
        series: Vec::new(),
    };
    let errors = f.len();
    let (series, series_given) = super::series::effects(&fs.series, at, (&base.series, written), f);
    // Refused models (`written` but none resolved) leave the effects unknown, not absent.
    let series_wrong = f.len() > errors
        || (!fs.series.is_empty() && base.series.is_empty() && !written.is_empty());
    let fault = Fault { series, ..fault };
    let mut effects: Vec<(String, Option<f64>, f64)> = vec![
        ("error_rate".into(), fault.error_rate, base.error_rate),
        ("latency_factor".into(), fault.latency_factor, 1.0),
        ("tail_share".into(), fault.tail_share, base.tail_share),
        ("memory_usage".into(), fault.memory_usage, base.memory.mean),
        ("cpu_usage".into(), fault.cpu_usage, base.cpu.mean),
    ];
    // A custom metric's level, against its healthy mean. A name without a model is an
    // error already: whether the fault changes anything is then not known.
    let unmodelled = series_wrong || fs.metrics.keys().any(|n| !base.custom.contains_key(n));
    for (name, level) in &fs.metrics {
        let healthy = base.custom.get(name).map_or(f64::NAN, |g| g.mean);
        effects.push((
            format!("metrics/{}", pointer::escape(name)),
            Some(level.0),
            healthy,
        ));
    }
    effects.extend(series_given);
    let given: Vec<&str> = effects
        .iter()
        .filter(|(_, v, _)| v.is_some())
        .map(|(k, _, _)| k.as_str())
        .collect();
    if fault.kind == FaultKind::Crash {
        // A crashed canary serves nothing: every effect would be ignored.
        for key in &given {
            f.push(
                Diagnostic::error(
                    "unused-parameter",
                    format!("{at}/{key}"),
                    format!("`{key}` has no effect on a `crash` fault: the canary serves nothing, NGINX answers its users with 502s"),
                )
                .at_key()
                .with_hint("remove it; a crash needs only `onset` (and `phase`)"),
            );
        }
    } else if given.is_empty() && !series_wrong {
        f.push(
            Diagnostic::error("fault-without-effect", at, "the fault changes nothing")
                .with_hint("give at least one of `error_rate`, `latency_factor`, `tail_share`, `memory_usage`, `cpu_usage`, `metrics`, `series`"),
        );
    } else if !unmodelled
        && effects
            .iter()
            .all(|(_, v, base)| v.is_none_or(|v| v == *base))
    {
        f.push(
            Diagnostic::error(
                "fault-without-effect",
                format!("{at}/{}", given[0]),
                format!(
                    "the fault changes nothing: {} the healthy service's",
                    if given.len() == 1 {
                        format!("`{}` is", given[0].replace('/', "."))
                    } else {
                        "every effect it gives is".to_string()
                    }
                ),
            )
            .with_hint("give the value at the fault's full effect (`latency_factor: 1` and the baseline's own values change nothing)"),
        );
    }
    if matches!(fault.kind, FaultKind::Partial { users } if users == 0.0) {
        f.push(
            Diagnostic::error(
                "fault-without-effect",
                format!("{at}/users"),
                "the fault affects none of the canary's users",
            )
            .with_hint("give the share of users affected, such as `users: 20%`"),
        );
    }
    (f.iter().filter(|d| d.is_error()).count() == errors_before).then_some(fault)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::{Kind, Source};

    /// A plan with phases `a` (1h), `b` (2h) and `full`, promoted at 3h; its rules read
    /// `cpu_usage` through a query of its own (so it is custom here) and `signups`.
    fn plan() -> CheckedPlan {
        let text = concat!(
            "name: t\nrelease: { from: v1, to: v2 }\n",
            "service: { name: app, image: acme/app, port: 8080 }\n",
            "routing: { listen: 80, sticky: { cookie: uid } }\n",
            "traffic: { requests_per_second: 40 }\n",
            "phases:\n",
            "  - { name: a, traffic: 5%, duration: 1h }\n",
            "  - { name: b, traffic: 20%, duration: 2h }\n",
            "  - { name: full, traffic: 100% }\n",
            "metrics:\n",
            "  cpu_usage: { query: 'avg(rate(cpu_seconds_total{track=\"$track\"}[$window]))' }\n",
            "  signups: { query: 'sum(rate(signups_total{track=\"$track\"}[$window]))', unit: ratio, bad: low }\n",
            "rollback_conditions:\n",
            "  - { metric: cpu_usage, threshold: 0.9, duration: 5m }\n",
            "  - { metric: signups, threshold: 0.01, duration: 5m }\n",
        );
        let c = crate::pipeline::compile(Source::new("t.yaml".into(), text.into()));
        c.plan
            .unwrap_or_else(|| panic!("test plan: {:?}", c.findings))
            .plan
    }

    /// Models of the test plan's two custom metrics.
    const MODELS: &str =
        "baseline:\n  metrics:\n    cpu_usage: { mean: 0.4 }\n    signups: { mean: 2% }\n";

    /// Checks `yaml` against the test plan; a file without `baseline` gets [`MODELS`].
    fn run(yaml: &str) -> (Option<Scenarios>, Vec<Diagnostic>) {
        let yaml = if yaml.starts_with("baseline") {
            yaml.to_string()
        } else {
            format!("{MODELS}{yaml}")
        };
        let source = Source::new("s.yaml".into(), yaml).holding(Kind::Scenarios);
        let file = super::super::read(&source);
        assert!(file.findings.is_empty(), "{:?}", file.findings);
        file.against(&plan(), &|p| format!("t.yaml{p}"))
    }

    fn codes(f: &[Diagnostic]) -> Vec<(&'static str, &str)> {
        f.iter().map(|d| (d.code, d.pointer.as_str())).collect()
    }

    /// Series models come out parents first, whatever the order written, with their
    /// splits; a fault's effects name them by index. The test plan's `signups` reads
    /// `signups_total`: modelled, it needs no gauge model.
    #[test]
    fn series_models_parents_first_and_fault_effects() {
        use crate::sim::scenario::{SeriesKind, SeriesModel};
        let (s, f) = run(concat!(
            "baseline:\n  metrics:\n    cpu_usage: { mean: 0.4 }\n  series:\n",
            "    signups_total: { counter: { of: visits_total, share: 2% }, split: { plan: { free: 90%, paid: 10% } } }\n",
            "    visits_total: { counter: { per_request: 0.5 } }\n",
            "scenarios:\n  - name: h\n",
            "  - name: x\n    fault: { kind: step, onset: 30m, series: { signups_total: { share: 1%, split: { plan: { free: 95%, paid: 5% } } } } }\n",
        ));
        assert!(f.is_empty(), "{f:?}");
        let s = s.expect("resolved");
        let names: Vec<&str> = s.baseline.series.iter().map(|m| m.name.as_str()).collect();
        assert_eq!(names, ["visits_total", "signups_total"]);
        let SeriesModel { kind, split, .. } = &s.baseline.series[1];
        assert_eq!(
            *kind,
            SeriesKind::Of {
                parent: 0,
                share: 0.02
            }
        );
        assert_eq!(
            split.as_ref().map(|s| s.shares.clone()),
            Some(vec![0.9, 0.1])
        );
        let fault = s.scenarios[1].fault.as_ref().expect("a fault");
        assert_eq!(fault.series.len(), 1);
        assert_eq!(fault.series[0].series, 1);
        assert_eq!(fault.series[0].share, Some(0.01));
        assert_eq!(fault.series[0].split, Some(vec![0.95, 0.05]));
        let plan = plan();
        let sources = crate::sim::synth::sources(&plan, &s);
        assert!(
            sources.iter().any(|src| matches!(
                src,
                crate::sim::synth::SyntheticMetric::Query {
                    slot: 0,
                    reads: 0b11
                }
            )),
            "{sources:?}"
        );
    }

    #[test]
    fn defaults_and_onsets_from_a_phase() {
        let (s, f) = run(
            "scenarios:\n  - name: h\n  - name: x\n    fault: { kind: step, phase: b, onset: 30m, error_rate: 5% }\n",
        );
        assert!(f.is_empty(), "{f:?}");
        let s = s.expect("resolved");
        assert_eq!(s.trials, DEFAULT_TRIALS);
        assert_eq!(s.traffic.requests_per_second, 40.0);
        assert_eq!(s.baseline.error_rate, DEFAULT_ERROR_RATE);
        assert_eq!(s.baseline.buckets, DEFAULT_BUCKETS.to_vec());
        let fault = s.scenarios[1].fault.as_ref().expect("fault");
        assert_eq!(fault.onset_ms, 3_600_000 + 1_800_000);
        assert_eq!(fault.error_rate, Some(0.05));
    }

    /// A built-in whose query the plan overrides is a custom metric: `baseline.metrics` is
    /// where its level goes. Built-ins the plan does not override, and unknown names, are not.
    #[test]
    fn custom_metrics_are_the_ones_the_plan_reads_with_its_own_query() {
        let (s, f) = run(
            "baseline:\n  metrics:\n    cpu_usage: { mean: 0.4 }\n    signups: { mean: 2%, noise: 0.5% }\nscenarios:\n  - name: h\n",
        );
        assert!(f.is_empty(), "{f:?}");
        let custom = s.expect("resolved").baseline.custom;
        assert_eq!(
            custom["cpu_usage"],
            Gauge {
                mean: 0.4,
                noise: 0.4 * 0.05,
                time_constant_ms: DEFAULT_TIME_CONSTANT_MS,
            }
        );
        assert_eq!(
            custom["signups"],
            Gauge {
                mean: 0.02,
                noise: 0.005,
                time_constant_ms: DEFAULT_TIME_CONSTANT_MS,
            }
        );
        let (s, f) = run(
            "baseline:\n  metrics:\n    error_rate: { mean: 1% }\n    signup: { mean: 1 }\n    signups: { mean: 2 }\nscenarios:\n  - name: h\n",
        );
        assert!(s.is_none());
        assert_eq!(
            codes(&f),
            [
                ("builtin-metric", "/baseline/metrics/error_rate"),
                ("unknown-metric", "/baseline/metrics/signup"),
                ("out-of-range", "/baseline/metrics/signups/mean"),
                ("unmodelled-metric", "/baseline/metrics"),
            ]
        );
        assert_eq!(f[1].hint.as_deref(), Some("did you mean `signups`?"));
        assert!(f[3].message.contains("`cpu_usage`"), "{}", f[3].message);
    }

    /// A custom metric a rule reads and the file does not model is an error naming the
    /// metric and the rule at its line in the plan; a near name written instead is named.
    #[test]
    fn every_custom_metric_a_rule_reads_needs_a_model() {
        let (s, f) =
            run("baseline:\n  metrics:\n    signup: { mean: 2% }\nscenarios:\n  - name: h\n");
        assert!(s.is_none());
        assert_eq!(
            codes(&f),
            [
                ("unknown-metric", "/baseline/metrics/signup"),
                ("unmodelled-metric", "/baseline/metrics"),
                ("unmodelled-metric", "/baseline/metrics"),
            ]
        );
        assert!(
            f[1].message.contains("`cpu_usage`")
                && f[1].message.contains(
                    "rollback condition `cpu_usage` (`0.9`, t.yaml/rollback_conditions/0)"
                ),
            "{}",
            f[1].message
        );
        assert_eq!(
            f[2].hint.as_deref(),
            Some("did you mean `signups` where `signup` is written under `baseline.metrics`?")
        );
        // The built-in scenarios place the finding at the first rule that reads the metric.
        let (s, f) = super::super::builtin()
            .1
            .against(&plan(), &|p| format!("t.yaml{p}"));
        assert!(s.is_none());
        assert_eq!(
            codes(&f)[..2],
            [
                ("unmodelled-metric", "/rollback_conditions/0"),
                ("unmodelled-metric", "/rollback_conditions/1"),
            ]
        );
        assert!(
            f[0].hint
                .as_deref()
                .is_some_and(|h| h.contains("--scenarios FILE"))
        );
    }

    /// Every finding of every scenario is collected, not just the first.
    #[test]
    fn every_finding_at_once() {
        let (s, f) = run(
            "baseline: { buckets: [1, 0.5] }\nscenarios:\n  - name: h\n  - name: h\n\
             - name: x\n    fault: { kind: step, phase: bb, ramp: 1h }\n\
             - name: y\n    fault: { kind: bursts, every: 1m, lasting: 1m, error_rate: 5% }\n"
                .replace("\n- ", "\n  - ")
                .as_str(),
        );
        assert!(s.is_none());
        assert_eq!(
            codes(&f),
            [
                ("buckets-out-of-order", "/baseline/buckets/1"),
                ("unmodelled-metric", "/baseline"),
                ("unmodelled-metric", "/baseline"),
                ("duplicate-scenario", "/scenarios/1/name"),
                ("unused-parameter", "/scenarios/2/fault/ramp"),
                ("unknown-phase", "/scenarios/2/fault/phase"),
                ("fault-without-effect", "/scenarios/2/fault"),
                ("out-of-range", "/scenarios/3/fault/lasting"),
            ]
        );
    }

    /// The release is complete when its last phase's watch ends (it starts at 3h here and
    /// is watched the default 24h): a fault from then on never reaches the canary, which
    /// is a warning; one a millisecond earlier is fine, as is one in the watch.
    #[test]
    fn onset_at_the_end_of_the_watch_is_after_the_release() {
        for (fault, warned) in [
            (
                "{ kind: step, onset: 26h59m59s999ms, error_rate: 5% }",
                false,
            ),
            ("{ kind: step, onset: 27h, error_rate: 5% }", true),
            ("{ kind: step, phase: b, onset: 26h, error_rate: 5% }", true),
            ("{ kind: step, phase: full, error_rate: 5% }", false),
            (
                "{ kind: step, phase: full, onset: 1d, error_rate: 5% }",
                true,
            ),
            (
                "{ kind: load, above_rps: 1, onset: 28h, error_rate: 5% }",
                true,
            ),
        ] {
            let (s, f) = run(&format!("scenarios:\n  - name: x\n    fault: {fault}\n"));
            assert!(s.is_some(), "{fault}: a warning only");
            assert_eq!(
                codes(&f).iter().any(|(c, _)| *c == "onset-after-release"),
                warned,
                "{fault}: {f:?}"
            );
        }
    }

    /// A fault whose every effect is the healthy service's changes nothing.
    #[test]
    fn effects_equal_to_the_baseline_change_nothing() {
        for (fault, nothing) in [
            ("{ kind: step, error_rate: 0.5% }", true),
            ("{ kind: step, latency_factor: 1, tail_share: 1% }", true),
            ("{ kind: step, cpu_usage: 35%, memory_usage: 55% }", true),
            ("{ kind: step, latency_factor: 1, tail_share: 2% }", false),
            ("{ kind: partial, users: 0%, error_rate: 5% }", true),
            ("{ kind: partial, users: 1%, error_rate: 5% }", false),
        ] {
            let (_, f) = run(&format!("scenarios:\n  - name: x\n    fault: {fault}\n"));
            assert_eq!(
                codes(&f).iter().any(|(c, _)| *c == "fault-without-effect"),
                nothing,
                "{fault}: {f:?}"
            );
        }
    }
}
