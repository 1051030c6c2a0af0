//! The Monte Carlo report: per scenario, the rollback probability with its 95% interval,
//! per phase and per first-firing rollback rule; for healthy scenarios that is the
//! false-rollback rate; for faulty ones detection, escape, time to detect and blast radius.
//! Printed for people or as a versioned JSON document.
//!
//! # JSON, `schema_version` 2
//! Top level: `plan`, `seed`, `trials_per_scenario`, `semantics` (`prometheus2` |
//! `prometheus3`), `evaluation_interval_seconds`, `requests_per_second`, `totals`
//! (`trials`, `evaluation_steps`, `rule_evaluations`) and `scenarios`, in file order, each:
//! - `rollback`, `false_rollback`, `detection`, `escape`: a proportion `{count, trials,
//!   probability, ci95: [lo, hi] (Wilson), std_error}` (Monte Carlo standard error);
//!   `detection` and `escape` only for faulty scenarios. `rollback = false_rollback +
//!   detection`; a trial is exactly one of false rollback, detection, escape, or
//!   `fault_after_promotion` (the fault began after the release reached 100%), or, for a
//!   healthy scenario, promoted.
//! - `rollbacks_by_phase`: phase name → rollbacks in that phase, in phase order.
//! - `first_rule`: rollback rule id → trials it rolled back (the first rollback rule in plan
//!   order to fire); gates and no-data rules never roll back, so they never appear.
//! - `time_to_detect_seconds`: `{median, p90, p99}` of rollback time minus onset over
//!   detected trials (nearest rank, exact). For a `load` fault the onset is when the
//!   canary's load first went above the limit in that trial; a trial where it never did
//!   counts in `fault_after_promotion`.
//! - `blast_radius` (faulty): means per trial, from onset to rollback or promotion:
//!   `requests` served by the canary, `failed_requests` among them (baseline failures
//!   included), `users` exposed (an expectation from the traffic model when the plan states
//!   `traffic.users_per_day`; see `montecarlo`'s module header for the formula and its
//!   assumptions).
//! - `gate_failures`: phase → `{completed, failing: {gate id → trials}}`: of the trials
//!   that reached the end of the phase, how many had the gate firing at that moment.
//! - `evaluation_steps`, `rule_evaluations`: work done, for speed figures (a trial runs its
//!   rollback rules at every step, its gates only where they can still fail a phase, and no
//!   no-data rules: they change neither the verdict nor the gate failures).
//!
//! Version 1 keyed `first_rule` by rule index order including gates (so a rollback rule
//! sharing an id with a gate was printed once per rule), counted gate failures against all
//! trials, rounded time to detect down to the evaluation grid, and exposed users only in
//! the phase at rollback.

use crate::check::CheckedPlan;
use crate::lower::{AlertRule, RuleKind};
use crate::model::Duration;
use crate::prom::Semantics;
use crate::sim::montecarlo::{ScenarioResult, Settings, Tally};
use crate::sim::scenario::Scenarios;
use crate::sim::stats::Proportion;
use indexmap::IndexMap;
use serde::Serialize;
use std::fmt::Write;

pub(crate) const REPORT_SCHEMA_VERSION: u32 = 2;

#[derive(Serialize)]
pub(crate) struct SimulationReport {
    pub(crate) schema_version: u32,
    pub(crate) plan: String,
    pub(crate) seed: u64,
    pub(crate) trials_per_scenario: u64,
    pub(crate) semantics: &'static str,
    pub(crate) evaluation_interval_seconds: f64,
    pub(crate) requests_per_second: f64,
    pub(crate) totals: Totals,
    pub(crate) scenarios: Vec<ScenarioReport>,
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
    /// Rollbacks at or after the fault's onset (faulty scenarios).
    pub(crate) detection: Option<Proportion>,
    /// Promoted to 100% with the fault active (faulty scenarios).
    pub(crate) escape: Option<Proportion>,
    /// Trials whose fault began only after promotion: the canary never saw it.
    pub(crate) fault_after_promotion: u64,
    pub(crate) rollbacks_by_phase: IndexMap<String, u64>,
    pub(crate) first_rule: IndexMap<String, u64>,
    pub(crate) time_to_detect_seconds: Option<Quantiles>,
    pub(crate) blast_radius: Option<BlastRadius>,
    pub(crate) gate_failures: IndexMap<String, GateFailures>,
    pub(crate) evaluation_steps: u64,
    pub(crate) rule_evaluations: u64,
}

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

pub(crate) fn build(
    plan: &CheckedPlan,
    rules: &[AlertRule],
    scenarios: &Scenarios,
    settings: &Settings,
    results: &[ScenarioResult<'_>],
) -> SimulationReport {
    let eval_s = plan.monitoring.evaluation_interval.seconds();
    let scenarios_out: Vec<ScenarioReport> = results
        .iter()
        .map(|r| scenario(plan, rules, scenarios, r))
        .collect();
    SimulationReport {
        schema_version: REPORT_SCHEMA_VERSION,
        plan: plan.name.clone(),
        seed: settings.seed,
        trials_per_scenario: settings.trials,
        semantics: match settings.semantics {
            Semantics::Prometheus2 => "prometheus2",
            Semantics::Prometheus3 => "prometheus3",
        },
        evaluation_interval_seconds: eval_s,
        requests_per_second: scenarios.traffic.requests_per_second,
        totals: Totals {
            trials: scenarios_out.iter().map(|s| s.trials).sum(),
            evaluation_steps: scenarios_out.iter().map(|s| s.evaluation_steps).sum(),
            rule_evaluations: scenarios_out.iter().map(|s| s.rule_evaluations).sum(),
        },
        scenarios: scenarios_out,
    }
}

fn scenario(
    plan: &CheckedPlan,
    rules: &[AlertRule],
    scenarios: &Scenarios,
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
    let mut first_rule = IndexMap::new();
    for (rule, &c) in rules.iter().zip(&t.first_rule) {
        if rule.kind == RuleKind::Rollback && c > 0 {
            *first_rule.entry(rule.id.clone()).or_insert(0) += c;
        }
    }
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
        detection: faulty.then(|| Proportion::new(t.detected, n)),
        escape: faulty.then(|| Proportion::new(t.escaped, n)),
        fault_after_promotion: t.fault_after_promotion,
        rollbacks_by_phase,
        first_rule,
        time_to_detect_seconds: (t.detect_steps.total() > 0).then(|| Quantiles {
            median: q(0.5),
            p90: q(0.9),
            p99: q(0.99),
        }),
        blast_radius: (faulty && n > 0).then(|| BlastRadius {
            requests: t.exposed_requests as f64 / n as f64,
            failed_requests: t.exposed_failed as f64 / n as f64,
            users: scenarios
                .traffic
                .users_per_day
                .map(|_| t.exposed_milli_users as f64 / 1000.0 / n as f64),
        }),
        gate_failures,
        evaluation_steps: t.steps,
        rule_evaluations: t.evaluations,
    }
}

fn pct(p: f64) -> String {
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

fn dur(s: f64) -> String {
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

/// The report for people, printed from the report's data alone.
pub(crate) fn text(r: &SimulationReport) -> String {
    let mut s = String::new();
    let _ =
        writeln!(
            s,
            "plan `{}`: {} scenario{} x {} trials, seed {}, {} semantics, {} req/s, evaluation every {}",
            r.plan,
            r.scenarios.len(),
            if r.scenarios.len() == 1 { "" } else { "s" },
            r.trials_per_scenario,
            r.seed,
            if r.semantics == "prometheus2" {
                "Prometheus 2"
            } else {
                "Prometheus 3"
            },
            crate::model::trim(r.requests_per_second),
            crate::model::Duration::from_millis(
                (r.evaluation_interval_seconds * 1000.0).round() as u64
            )
            .map_or_else(String::new, |d| d.to_string()),
        );
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
        if sc.faulty {
            if let Some(d) = &sc.detection {
                let _ = writeln!(s, "  detected         {}", prop(d));
            }
            if let Some(e) = &sc.escape {
                let _ = writeln!(s, "  escaped to 100%  {}", prop(e));
            }
            let _ = writeln!(s, "  false rollback   {}", prop(&sc.false_rollback));
            if let Some(q) = &sc.time_to_detect_seconds {
                let _ = writeln!(
                    s,
                    "  time to detect   median {}, p90 {}, p99 {}",
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
                    "  blast radius     {:.0} requests ({:.0} failed) served by the bad version{users}",
                    b.requests, b.failed_requests
                );
            }
            if sc.fault_after_promotion > 0 {
                let _ = writeln!(
                    s,
                    "  note             in {} trials the fault began after promotion",
                    sc.fault_after_promotion
                );
            }
        } else {
            let _ = writeln!(s, "  false rollback   {}", prop(&sc.false_rollback));
        }
        if sc.rollback.count > 0 {
            let _ = writeln!(s, "  rolled back in   {}", counts(&sc.rollbacks_by_phase));
            let _ = writeln!(s, "  first rule       {}", counts(&sc.first_rule));
        }
        for (p, g) in &sc.gate_failures {
            let list: Vec<String> = g
                .failing
                .iter()
                .map(|(k, v)| format!("{k} {}", pct(*v as f64 / g.completed.max(1) as f64)))
                .collect();
            let _ = writeln!(
                s,
                "  gates failing at the end of {p} (of {} trials reaching it): {}",
                g.completed,
                list.join(", ")
            );
        }
    }
    let _ = writeln!(
        s,
        "\n{} trials, {} evaluation steps, {} rule evaluations",
        r.totals.trials, r.totals.evaluation_steps, r.totals.rule_evaluations
    );
    s
}
