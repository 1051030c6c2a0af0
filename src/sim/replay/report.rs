//! The replay's result as data: the versioned JSON document (`--format json`), from which
//! the human timeline is printed too.

use crate::check::{CheckedPlan, GatePolicy};
use crate::lower::{self, AlertRule, Condition, Rhs, RuleKind};
use crate::prom::DEFAULT_LOOKBACK_MS;
use crate::prom::{Origin, Semantics};
use crate::sim::evaluator::{Evaluator, Event, HoldOutcome, Schedule, Verdict};
use crate::sim::trace::inputs::Inputs;
use crate::sim::trace::time::format_rfc3339;
use serde::Serialize;

/// Where a replay runs, in absolute Unix milliseconds: t=0, the end, the trace's first
/// and last samples, and whether `--start` / `--end` were given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    pub zero: i64,
    pub end: i64,
    pub first_sample: i64,
    pub last_sample: i64,
    pub start_given: bool,
    pub end_given: bool,
}

/// The replay's result: the JSON document, and what the human timeline prints.
#[derive(Debug, Clone, Serialize)]
pub struct ReplayReport {
    /// Always `plan-replay`.
    pub(crate) format: &'static str,
    /// 3 (2 had no `gate_policy` nor `watch_ms`, and `promoted` when the last phase
    /// began; 3 watches the last phase: `completed` when its watch ends, `held`).
    pub(crate) version: u32,
    pub(crate) plan: String,
    pub(crate) trace: String,
    /// `prometheus2` or `prometheus3`.
    pub(crate) semantics: &'static str,
    /// t=0 (the release's start) as RFC 3339 and Unix milliseconds: `--start`, or the
    /// trace's first sample (never rounded).
    pub(crate) start: String,
    pub(crate) start_unix_ms: i64,
    /// `flag` (`--start`) or `first_sample`.
    pub(crate) start_from: &'static str,
    /// The end of the replay, from t=0 and as RFC 3339: `--end`, or the last sample.
    pub(crate) end_ms: i64,
    pub(crate) end: String,
    /// `flag` (`--end`) or `last_sample`.
    pub(crate) end_from: &'static str,
    /// The trace's first sample, from t=0 (0 or less: samples before t=0 feed the first
    /// windows).
    pub(crate) trace_start_ms: i64,
    /// The last sample of the trace, from t=0.
    pub(crate) trace_end_ms: i64,
    /// When the last sample's series go stale (the last sample plus Prometheus' 5m
    /// lookback), from t=0: past it a series has no value.
    pub(crate) stale_from_ms: i64,
    pub(crate) evaluation_interval_ms: i64,
    /// The evaluation grid: Unix times `evaluation_offset_ms + k * evaluation_interval_ms`,
    /// as Prometheus places a rule group's evaluations.
    pub(crate) evaluation_offset_ms: i64,
    /// The first and last evaluations, from t=0 (none when the replay is shorter than the
    /// gap to the first grid time).
    pub(crate) first_evaluation_ms: Option<i64>,
    pub(crate) last_evaluation_ms: Option<i64>,
    /// Rule evaluations run (each evaluates every rule once).
    pub(crate) evaluations: u64,
    /// Each phase's start, from t=0: when it began, or (not yet begun) its nominal length
    /// after the one before.
    pub(crate) phases: Vec<PhaseOut>,
    /// What a gate failing at its phase's end does: `{on_failure, max_hold, after_max_hold,
    /// text}` (`text` in words: `roll back at once`, `hold up to 1d, then roll back`).
    pub(crate) gate_policy: GatePolicy,
    /// How long the last phase is watched before the release completes.
    pub(crate) watch_ms: i64,
    /// Where each metric's values came from.
    pub(crate) metrics: Vec<MetricOut>,
    /// Series no rule reads (often a label typo), at most 20.
    pub(crate) unused_series: Vec<String>,
    pub(crate) unused_series_total: usize,
    /// Selectors of queries computed from raw series that match no series of the trace:
    /// `metric (track): selector`.
    pub(crate) unmatched_selectors: Vec<String>,
    /// Rules the trace cannot evaluate, and why (the silent-canary rule without `up`):
    /// they are listed but never hold.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(crate) not_evaluated: Vec<String>,
    pub(crate) rules: Vec<RuleOut>,
    /// Per metric a rule reads, in plan order, its values at the evaluations (every
    /// `step_ms` from `first_ms`), what the rules compared: the charts of `--report`.
    pub(crate) series: Vec<SeriesOut>,
    /// In time order; per rule, the first 10,000 transitions (see
    /// [`RuleOut::transitions_omitted`]).
    pub(crate) events: Vec<EventOut>,
    pub(crate) verdict: VerdictOut,
    /// Phases held past their end (`on_failure: hold`), in time order.
    pub(crate) holds: Vec<HoldOut>,
    /// Gates firing when their phase ended: the phase could not have advanced.
    pub(crate) gate_failures: Vec<GateFailureOut>,
    /// Rules that started firing after the verdict, each with its first such firing: what
    /// would have happened had the release gone on.
    pub(crate) after_verdict: Vec<AfterVerdictOut>,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct PhaseOut {
    pub(crate) name: String,
    pub(crate) traffic: String,
    pub(crate) starts_ms: i64,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct MetricOut {
    pub(crate) name: String,
    pub(crate) canary: Origin,
    /// Only for metrics compared with the stable version.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) stable: Option<Origin>,
}

/// A metric's values over the replay, as the rules read them (null: no value, or NaN).
#[derive(Debug, Clone, Serialize)]
pub(crate) struct SeriesOut {
    pub(crate) metric: String,
    /// `ratio`, `milliseconds`, `seconds`, `bytes`, `count` or `per_second`.
    pub(crate) unit: &'static str,
    /// The first evaluation, from t=0, and the time between two values: the evaluation
    /// interval, or a multiple of it when the replay has more than
    /// [`MAX_REPLAY_SERIES_POINTS`](crate::limits::MAX_REPLAY_SERIES_POINTS) evaluations.
    pub(crate) first_ms: i64,
    pub(crate) step_ms: i64,
    pub(crate) canary: Vec<Option<f64>>,
    /// Only for metrics compared with the stable version.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) stable: Option<Vec<Option<f64>>>,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct RuleOut {
    pub(crate) alert: String,
    /// `rollback`, `gate` or `no_data`.
    pub(crate) kind: &'static str,
    pub(crate) summary: String,
    /// The metric it reads (its `series`), and its comparison: `op` (`<`, `<=`, `>`,
    /// `>=`) against `threshold`, or against `stable_factor` times the stable value (and
    /// then, with a `floor`, `op` against it too); all null for a no-data or silent rule.
    pub(crate) metric: String,
    pub(crate) op: Option<&'static str>,
    pub(crate) threshold: Option<f64>,
    pub(crate) stable_factor: Option<f64>,
    pub(crate) floor: Option<f64>,
    pub(crate) for_ms: u64,
    pub(crate) first_pending_ms: Option<i64>,
    pub(crate) first_firing_ms: Option<i64>,
    /// How many times it started firing.
    pub(crate) fired: usize,
    /// Transitions past the first 10,000 of this rule, counted but not listed in
    /// `events` (a flapping alert over a long trace).
    pub(crate) transitions_omitted: u64,
    /// The last omitted transition's time, when some are.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) last_omitted_ms: Option<i64>,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct EventOut {
    pub(crate) at_ms: i64,
    pub(crate) time: String,
    /// `phase_started`, `pending`, `firing`, `cleared` (pending, then false before `for`
    /// elapsed), `resolved` (was firing), `gate_failed`.
    pub(crate) event: &'static str,
    pub(crate) phase: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) alert: Option<String>,
    /// For `firing`: when the alert became pending.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) active_since_ms: Option<i64>,
    /// After the verdict: what would have happened had the release gone on.
    pub(crate) after_verdict: bool,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct VerdictOut {
    /// `rolled_back`, `held`, `completed` or `running` (the replay ended first).
    pub(crate) outcome: &'static str,
    /// Why: `rule` (a rollback rule fired), `gate_at_phase_end` (a gate firing when its
    /// phase's duration was up), `hold_limit` (a hold's `max_hold` was up), `watch_ended`
    /// (the last phase's watch ended), `trace_ended`.
    pub(crate) reason: &'static str,
    pub(crate) at_ms: i64,
    pub(crate) time: String,
    pub(crate) phase: String,
    /// The rollback rule that fired.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) alert: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) summary: Option<String>,
}

/// A phase held past its end by the gate policy.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct HoldOut {
    pub(crate) phase: String,
    pub(crate) from_ms: i64,
    /// None: still held when the replay ended.
    pub(crate) to_ms: Option<i64>,
    /// `advanced` (its gates passed), `rolled_back` or `stayed` (the longest hold was
    /// up), `running` (still held at the end of the replay).
    pub(crate) outcome: &'static str,
    pub(crate) after_verdict: bool,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct GateFailureOut {
    pub(crate) phase: String,
    pub(crate) alert: String,
    pub(crate) at_ms: i64,
    /// After the verdict: the phase would not have advanced had the release gone on.
    pub(crate) after_verdict: bool,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct AfterVerdictOut {
    pub(crate) alert: String,
    /// `rollback`, `gate` or `no_data`.
    pub(crate) kind: &'static str,
    pub(crate) summary: String,
    /// Its first firing after the verdict.
    pub(crate) at_ms: i64,
    pub(crate) time: String,
    pub(crate) phase: String,
}

/// Where the replay ran: its file, its span, the evaluation grid (interval, offset, first
/// evaluation from t=0), how many evaluations ran, under which semantics.
pub(super) struct Frame<'a> {
    pub(super) file: &'a str,
    pub(super) span: Span,
    pub(super) ei: i64,
    pub(super) offset: i64,
    pub(super) first_evaluation: i64,
    pub(super) evaluations: u64,
    pub(super) semantics: Semantics,
    pub(super) series: Vec<SeriesOut>,
}

fn kind(k: RuleKind) -> &'static str {
    match k {
        RuleKind::Rollback => "rollback",
        RuleKind::Gate => "gate",
        RuleKind::NoData => "no_data",
    }
}

#[allow(clippy::too_many_arguments)]
pub(super) fn report(
    plan: &CheckedPlan,
    rules: &[AlertRule],
    schedule: &Schedule,
    ev: &Evaluator<'_>,
    inputs: &Inputs<'_>,
    verdict: Option<Verdict>,
    f: Frame<'_>,
) -> ReplayReport {
    let phase_name = |p: usize| {
        plan.phases
            .get(p)
            .map_or_else(String::new, |x| x.name.clone())
    };
    let zero = f.span.zero;
    let end = f.span.end - zero;
    let time = |ms: i64| format_rfc3339(zero + ms);
    let last_phase = plan.phases.len().saturating_sub(1);
    // After the verdict: recorded after the evaluator reached it, but for what fired in
    // the same evaluation as a rollback rule (at the same moment, not after it).
    let verdict_event = ev.verdict_event().unwrap_or(usize::MAX);
    let by_rule_at = match verdict {
        Some(Verdict::RolledBack { ts, rule, .. }) if rules[rule].kind != RuleKind::Gate => {
            Some(ts)
        }
        _ => None,
    };
    let recorded = ev.events();
    let after = |i: usize| i >= verdict_event && by_rule_at.is_none_or(|v| recorded[i].ts() > v);
    let mut rule_out: Vec<RuleOut> = rules
        .iter()
        .map(|r| RuleOut {
            alert: r.alert.clone(),
            kind: kind(r.kind),
            summary: r.summary.clone(),
            metric: plan
                .metrics
                .get(r.metric)
                .map_or_else(String::new, |m| m.name.clone()),
            op: match r.condition {
                Condition::Compare { op, .. } => Some(op.as_str()),
                _ => None,
            },
            threshold: match r.condition {
                Condition::Compare {
                    rhs: Rhs::Value(v), ..
                } => Some(v),
                _ => None,
            },
            stable_factor: match r.condition {
                Condition::Compare {
                    rhs: Rhs::StableTimes { factor, .. },
                    ..
                } => Some(factor),
                _ => None,
            },
            floor: match r.condition {
                Condition::Compare {
                    rhs: Rhs::StableTimes { also, .. },
                    ..
                } => also.map(|(_, v)| v),
                _ => None,
            },
            for_ms: r.for_ms,
            first_pending_ms: None,
            first_firing_ms: None,
            fired: 0,
            transitions_omitted: 0,
            last_omitted_ms: None,
        })
        .collect();
    for (i, r) in rule_out.iter_mut().enumerate() {
        let log = ev.rule_log(i);
        r.fired = log.fired;
        r.transitions_omitted = log.omitted;
        r.last_omitted_ms = log.last_omitted_ts;
    }
    let mut events = Vec::new();
    let mut gate_failures = Vec::new();
    let mut after_verdict: Vec<AfterVerdictOut> = Vec::new();
    let mut holds: Vec<HoldOut> = Vec::new();
    for (i, e) in recorded.iter().enumerate() {
        let (at, name, phase, rule, since) = match *e {
            Event::PhaseStarted { ts, phase } => (ts, "phase_started", phase, None, None),
            Event::Pending { ts, rule, phase } => {
                rule_out[rule].first_pending_ms.get_or_insert(ts);
                (ts, "pending", phase, Some(rule), None)
            }
            Event::Firing {
                ts,
                rule,
                phase,
                active_at,
            } => {
                rule_out[rule].first_firing_ms.get_or_insert(ts);
                if after(i) && !after_verdict.iter().any(|a| a.alert == rules[rule].alert) {
                    after_verdict.push(AfterVerdictOut {
                        alert: rules[rule].alert.clone(),
                        kind: kind(rules[rule].kind),
                        summary: rules[rule].summary.clone(),
                        at_ms: ts,
                        time: time(ts),
                        phase: phase_name(phase),
                    });
                }
                (ts, "firing", phase, Some(rule), Some(active_at))
            }
            Event::Cleared { ts, rule, phase } => (ts, "cleared", phase, Some(rule), None),
            Event::Resolved { ts, rule, phase } => (ts, "resolved", phase, Some(rule), None),
            Event::HoldStarted { ts, phase } => {
                holds.push(HoldOut {
                    phase: phase_name(phase),
                    from_ms: ts,
                    to_ms: None,
                    outcome: "running",
                    after_verdict: after(i),
                });
                (ts, "hold_started", phase, None, None)
            }
            Event::HoldEnded { ts, phase, outcome } => {
                if let Some(h) = holds.last_mut() {
                    h.to_ms = Some(ts);
                    h.outcome = match outcome {
                        HoldOutcome::Advanced => "advanced",
                        HoldOutcome::RolledBack => "rolled_back",
                        HoldOutcome::Stayed => "stayed",
                    };
                }
                (ts, "hold_ended", phase, None, None)
            }
            Event::GateFailed { ts, rule, phase } => {
                gate_failures.push(GateFailureOut {
                    phase: phase_name(phase),
                    alert: rules[rule].alert.clone(),
                    at_ms: ts,
                    after_verdict: after(i),
                });
                (ts, "gate_failed", phase, Some(rule), None)
            }
        };
        events.push(EventOut {
            at_ms: at,
            time: time(at),
            event: name,
            phase: phase_name(phase),
            alert: rule.map(|r| rules[r].alert.clone()),
            active_since_ms: since,
            after_verdict: after(i),
        });
    }
    let verdict = match verdict {
        Some(Verdict::RolledBack { ts, phase, rule }) => VerdictOut {
            reason: match rules[rule].kind {
                RuleKind::Gate if holds.iter().any(|h| h.outcome == "rolled_back") => "hold_limit",
                RuleKind::Gate => "gate_at_phase_end",
                _ => "rule",
            },
            outcome: "rolled_back",
            at_ms: ts,
            time: time(ts),
            phase: phase_name(phase),
            alert: Some(rules[rule].alert.clone()),
            summary: Some(rules[rule].summary.clone()),
        },
        Some(Verdict::Held { ts, phase, .. }) => VerdictOut {
            reason: "hold_limit",
            outcome: "held",
            at_ms: ts,
            time: time(ts),
            phase: phase_name(phase),
            alert: None,
            summary: None,
        },
        Some(Verdict::Completed { ts, .. }) => VerdictOut {
            reason: "watch_ended",
            outcome: "completed",
            at_ms: ts,
            time: time(ts),
            phase: phase_name(last_phase),
            alert: None,
            summary: None,
        },
        None => VerdictOut {
            reason: "trace_ended",
            outcome: "running",
            at_ms: end,
            time: time(end),
            phase: phase_name(ev.phase()),
            alert: None,
            summary: None,
        },
    };
    let metrics = plan
        .metrics
        .iter()
        .enumerate()
        .filter(|(mi, _)| rules.iter().any(|r| r.reads(*mi)))
        .map(|(mi, m)| {
            let [c, s] = inputs.origin(mi);
            let stable = lower::tracks_needed(rules, mi)
                .contains(&crate::promql::Track::Stable)
                .then_some(s);
            MetricOut {
                name: m.name.clone(),
                canary: c,
                stable,
            }
        })
        .collect();
    let unused: Vec<String> = inputs.unused().map(|s| s.display()).collect();
    let last_evaluation =
        (f.evaluations > 0).then(|| f.first_evaluation + (f.evaluations as i64 - 1) * f.ei);
    ReplayReport {
        format: "plan-replay",
        version: 3,
        plan: plan.name.clone(),
        trace: f.file.to_string(),
        semantics: match f.semantics {
            Semantics::Prometheus2 => "prometheus2",
            Semantics::Prometheus3 => "prometheus3",
        },
        start: format_rfc3339(zero),
        start_unix_ms: zero,
        start_from: if f.span.start_given {
            "flag"
        } else {
            "first_sample"
        },
        end_ms: end,
        end: time(end),
        end_from: if f.span.end_given {
            "flag"
        } else {
            "last_sample"
        },
        trace_start_ms: f.span.first_sample - zero,
        trace_end_ms: f.span.last_sample - zero,
        stale_from_ms: f.span.last_sample - zero + DEFAULT_LOOKBACK_MS,
        evaluation_interval_ms: f.ei,
        evaluation_offset_ms: f.offset,
        first_evaluation_ms: (f.evaluations > 0).then_some(f.first_evaluation),
        last_evaluation_ms: last_evaluation,
        evaluations: f.evaluations,
        phases: {
            // A phase that began starts when it did; a later one its nominal length after
            // the one before (a hold moves them all).
            let mut shift = 0;
            plan.phases
                .iter()
                .zip(&schedule.starts)
                .enumerate()
                .map(|(k, (p, &nominal))| {
                    if let Some(&began) = ev.starts().get(k) {
                        shift = began - nominal;
                    }
                    PhaseOut {
                        name: p.name.clone(),
                        traffic: p.traffic.to_string(),
                        starts_ms: nominal + shift,
                    }
                })
                .collect()
        },
        gate_policy: plan.gate_policy,
        watch_ms: plan.watch.millis() as i64,
        metrics,
        unused_series_total: unused.len(),
        unused_series: unused.into_iter().take(20).collect(),
        unmatched_selectors: inputs.unmatched(plan),
        not_evaluated: Vec::new(),
        rules: rule_out,
        series: f.series,
        events,
        verdict,
        gate_failures,
        holds,
        after_verdict,
    }
}
