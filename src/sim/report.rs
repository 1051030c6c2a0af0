//! The Monte Carlo report: per scenario, the rollback probability with its 95% interval,
//! per phase and per first-firing rule; for healthy scenarios that is the false-rollback
//! rate; for faulty ones detection, escape, time to detect and blast radius. Printed for
//! people or as a versioned JSON document (`schema_version` 1, described in README.md).

use crate::check::CheckedPlan;
use crate::lower::{AlertRule, RuleKind};
use crate::model::Duration;
use crate::sim::montecarlo::{ScenarioResult, Settings, Tally};
use crate::sim::prom::Semantics;
use crate::sim::scenario::Scenarios;
use crate::sim::stats::Proportion;
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Write;

pub const REPORT_SCHEMA_VERSION: u32 = 1;

#[derive(Serialize)]
pub struct Report {
    pub schema_version: u32,
    pub plan: String,
    pub seed: u64,
    pub trials_per_scenario: u64,
    pub semantics: &'static str,
    pub evaluation_interval_seconds: f64,
    pub requests_per_second: f64,
    pub scenarios: Vec<ScenarioReport>,
}

#[derive(Serialize)]
pub struct ScenarioReport {
    pub name: String,
    pub description: String,
    pub faulty: bool,
    pub trials: u64,
    /// Any rollback, true or false.
    pub rollback: Proportion,
    /// Rollbacks of a healthy release, or before the fault began.
    pub false_rollback: Proportion,
    /// Rollbacks at or after the fault's onset (faulty scenarios).
    pub detection: Option<Proportion>,
    /// Promoted to 100% with the fault active (faulty scenarios).
    pub escape: Option<Proportion>,
    /// Trials whose fault began only after promotion: the canary never saw it.
    pub fault_after_promotion: u64,
    pub rollbacks_by_phase: BTreeMap<String, u64>,
    pub first_rule: BTreeMap<String, u64>,
    pub time_to_detect_seconds: Option<Quantiles>,
    pub blast_radius: Option<BlastRadius>,
    /// Per phase: gates failing when the phase ended, as a share of trials reaching its end.
    pub gate_failures: BTreeMap<String, BTreeMap<String, u64>>,
    pub evaluations: u64,
}

#[derive(Serialize)]
pub struct Quantiles {
    pub median: f64,
    pub p90: f64,
    pub p99: f64,
}

/// Means per trial.
#[derive(Serialize)]
pub struct BlastRadius {
    pub requests: f64,
    pub failed_requests: f64,
    pub users: Option<f64>,
}

pub fn build(plan: &CheckedPlan, rules: &[AlertRule], scenarios: &Scenarios, settings: &Settings, results: &[ScenarioResult<'_>]) -> Report {
    let eval_s = plan.monitoring.evaluation_interval.seconds();
    Report {
        schema_version: REPORT_SCHEMA_VERSION,
        plan: plan.name.clone(),
        seed: settings.seed,
        trials_per_scenario: settings.trials.unwrap_or(scenarios.trials),
        semantics: match settings.semantics {
            Semantics::Prometheus2 => "prometheus2",
            Semantics::Prometheus3 => "prometheus3",
        },
        evaluation_interval_seconds: eval_s,
        requests_per_second: scenarios.traffic.requests_per_second,
        scenarios: results.iter().map(|r| scenario(plan, rules, scenarios, r, eval_s)).collect(),
    }
}

fn scenario(plan: &CheckedPlan, rules: &[AlertRule], scenarios: &Scenarios, r: &ScenarioResult<'_>, eval_s: f64) -> ScenarioReport {
    let t: &Tally = &r.tally;
    let faulty = r.scenario.fault.is_some();
    let n = t.trials;
    let q = |p: f64| t.detect_steps.quantile(p).map_or(f64::NAN, |s| s as f64 * eval_s);
    let named = |counts: &[u64], names: &dyn Fn(usize) -> String| -> BTreeMap<String, u64> {
        counts.iter().enumerate().filter(|(_, c)| **c > 0).map(|(i, c)| (names(i), *c)).collect()
    };
    let mut gate_failures: BTreeMap<String, BTreeMap<String, u64>> = BTreeMap::new();
    for (i, &c) in t.gate_failures.iter().enumerate() {
        if c > 0 {
            let (phase, rule) = (i / rules.len(), i % rules.len());
            if rules[rule].kind == RuleKind::Gate {
                gate_failures.entry(plan.phases[phase].name.clone()).or_default().insert(rules[rule].id.clone(), c);
            }
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
        rollbacks_by_phase: named(&t.rollbacks_by_phase, &|i| plan.phases[i].name.clone()),
        first_rule: named(&t.first_rule, &|i| rules[i].id.clone()),
        time_to_detect_seconds: (t.detect_steps.total() > 0).then(|| Quantiles { median: q(0.5), p90: q(0.9), p99: q(0.99) }),
        blast_radius: (faulty && n > 0).then(|| BlastRadius {
            requests: t.exposed_requests as f64 / n as f64,
            failed_requests: t.exposed_failed as f64 / n as f64,
            users: scenarios.traffic.users_per_day.map(|_| t.exposed_users as f64 / n as f64),
        }),
        gate_failures,
        evaluations: t.evaluations,
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
    format!("{:>7} [{}, {}]  ({} of {}, ±{} MC error)", pct(p.probability), pct(p.ci95[0]), pct(p.ci95[1]), p.count, p.trials, pct(p.std_error))
}

fn dur(s: f64) -> String {
    if s.is_nan() {
        return "n/a".into();
    }
    Duration::from_millis((s * 1000.0).round() as u64).map_or_else(|| "0s".into(), |d| d.to_string())
}

fn counts(m: &BTreeMap<String, u64>, order: &[String]) -> String {
    order.iter().filter_map(|k| m.get(k).map(|c| format!("{k} {c}"))).collect::<Vec<_>>().join(", ")
}

/// The report for people.
pub fn human(r: &Report, plan: &CheckedPlan, rules: &[AlertRule]) -> String {
    let mut s = String::new();
    let phases: Vec<String> = plan.phases.iter().map(|p| p.name.clone()).collect();
    let rule_ids: Vec<String> = rules.iter().map(|r| r.id.clone()).collect();
    let _ = writeln!(
        s,
        "plan `{}`: {} scenario{} x {} trials, seed {}, {} semantics, {} req/s, evaluation every {}",
        r.plan,
        r.scenarios.len(),
        if r.scenarios.len() == 1 { "" } else { "s" },
        r.trials_per_scenario,
        r.seed,
        if r.semantics == "prometheus2" { "Prometheus 2" } else { "Prometheus 3" },
        crate::model::trim(r.requests_per_second),
        plan.monitoring.evaluation_interval,
    );
    for sc in &r.scenarios {
        let _ = writeln!(s, "\n{}{}", sc.name, if sc.description.is_empty() { String::new() } else { format!(": {}", sc.description) });
        if sc.faulty {
            if let Some(d) = &sc.detection {
                let _ = writeln!(s, "  detected         {}", prop(d));
            }
            if let Some(e) = &sc.escape {
                let _ = writeln!(s, "  escaped to 100%  {}", prop(e));
            }
            let _ = writeln!(s, "  false rollback   {}", prop(&sc.false_rollback));
            if let Some(q) = &sc.time_to_detect_seconds {
                let _ = writeln!(s, "  time to detect   median {}, p90 {}, p99 {}", dur(q.median), dur(q.p90), dur(q.p99));
            }
            if let Some(b) = &sc.blast_radius {
                let users = b.users.map_or(String::new(), |u| format!(", ~{u:.0} users"));
                let _ = writeln!(s, "  blast radius     {:.0} requests ({:.0} failed) served by the bad version{users}", b.requests, b.failed_requests);
            }
            if sc.fault_after_promotion > 0 {
                let _ = writeln!(s, "  note             in {} trials the fault began after promotion", sc.fault_after_promotion);
            }
        } else {
            let _ = writeln!(s, "  false rollback   {}", prop(&sc.false_rollback));
        }
        if sc.rollback.count > 0 {
            let _ = writeln!(s, "  rolled back in   {}", counts(&sc.rollbacks_by_phase, &phases));
            let _ = writeln!(s, "  first rule       {}", counts(&sc.first_rule, &rule_ids));
        }
        for p in &phases {
            if let Some(g) = sc.gate_failures.get(p) {
                let list: Vec<String> = g.iter().map(|(k, v)| format!("{k} {}", pct(*v as f64 / sc.trials as f64))).collect();
                let _ = writeln!(s, "  gates failing at the end of {p}: {}", list.join(", "));
            }
        }
    }
    s
}
