//! Metrics, gates and rollback conditions, checked together. Every name a gate or a
//! rollback condition uses resolves to a metric first (built in, or defined under
//! `metrics:`); then each gate, and each rollback condition, is checked against its metric.
//!
//! The findings come in that order: the metric definitions, the unknown metrics (the gates'
//! before the rollback conditions'), the gates, the rollback conditions.

use super::checked::{GateRule, Limit, Metric, Monitoring, Phase, RollbackRule, SilentRule};
use super::metrics::{self, MetricTable};
use super::{gates, min_requests, rollbacks};
use crate::diagnostic::Diagnostic;
use crate::model::{Duration, Plan};

/// The metrics, gates and rollback rules of a plan, each rule naming its metric by index.
pub(super) struct Rules {
    /// Every metric a gate or rule uses, in first-use order, then the request counts of
    /// the rules' guards.
    pub(super) metrics: Vec<Metric>,
    pub(super) gates: Vec<GateRule>,
    pub(super) rollbacks: Vec<RollbackRule>,
    pub(super) silent_canary: Option<SilentRule>,
}

/// Checks the plan's metrics, gates and rollback conditions; what fails a check is left
/// out of the result and reported in `f`.
pub(super) fn rules(
    plan: &Plan,
    monitoring: &Monitoring,
    phases: &[Phase],
    f: &mut Vec<Diagnostic>,
) -> Rules {
    metrics::check_definitions(plan, monitoring, f);
    let mut table = MetricTable::new(plan, monitoring);
    let mut gated = Vec::new();
    for (name, gate) in &plan.gates {
        if let Some(metric) = table.index(name, format!("/gates/{name}"), true, f) {
            gated.push((metric, name, gate));
        }
    }
    let mut conditions = Vec::new();
    for (i, rc) in plan.rollback_conditions.iter().enumerate() {
        let pointer = format!("/rollback_conditions/{i}/metric");
        if let Some(metric) = table.index(&rc.metric, pointer, false, f) {
            conditions.push((metric, i, rc));
        }
    }
    // The silent-canary rule's id is taken: a rollback condition of that id would share
    // its alert name and runbook section.
    if monitoring.silent_canary.is_some() {
        for (i, rc) in plan.rollback_conditions.iter().enumerate() {
            let (id, key) = match &rc.id {
                Some(id) => (id.as_str(), "id"),
                None => (rc.metric.as_str(), "metric"),
            };
            if id == super::checked::SILENT_CANARY_ID {
                f.push(
                    Diagnostic::error(
                        "reserved-rule-id",
                        format!("/rollback_conditions/{i}/{key}"),
                        format!("the rule id `{id}` belongs to the silent-canary rule (`monitoring.silent_canary`)"),
                    )
                    .with_hint("give this condition another `id`, or set `monitoring.silent_canary: off`"),
                );
            }
        }
    }
    // The silent-canary rule's metric comes last, so that the plan's own keep their order.
    let silent_canary = monitoring.silent_canary.and_then(|after| {
        let pointer = "/monitoring/silent_canary".to_string();
        table
            .index("targets_up", pointer, false, f)
            .map(|metric| SilentRule {
                metric,
                after,
                default: monitoring.silent_canary_default,
            })
    });
    let metrics = table.into_metrics();

    let gate_rules: Vec<GateRule> = gated
        .into_iter()
        .filter_map(|(metric, name, gate)| gates::check(name, gate, metric, &metrics[metric], f))
        .collect();
    if !gate_rules.is_empty() {
        phases_shorter_than_gates(phases, monitoring.window, f);
    }

    let context = rollbacks::Context {
        plan,
        phases,
        metrics: &metrics,
        gates: &gate_rules,
    };
    let mut rollback_rules = Vec::new();
    let mut written_at = Vec::new();
    for (metric, i, rc) in conditions {
        if let Some(rule) = context.check(&rollback_rules, metric, i, rc, f) {
            rollback_rules.push(rule);
            written_at.push(i);
        }
    }
    stable_at_full_traffic(phases, &metrics, &rollback_rules, &written_at, f);
    let mut metrics = metrics;
    min_requests::guards(plan, &mut metrics, &mut rollback_rules, &written_at, f);
    Rules {
        metrics,
        gates: gate_rules,
        rollbacks: rollback_rules,
        silent_canary,
    }
}

/// A gate alert fires once its condition has held for the rate window (its `for`), and
/// every alert starts over with a phase: in a phase no longer than that its gates cannot
/// be firing when its `duration` is up, so they could never fail it, whatever the canary
/// does.
fn phases_shorter_than_gates(phases: &[Phase], window: Duration, f: &mut Vec<Diagnostic>) {
    for (pi, p) in phases.iter().enumerate() {
        if let Some(d) = p.duration
            && d.millis() <= window.millis()
            && pi + 1 < phases.len()
        {
            f.push(
                Diagnostic::error(
                    "phase-shorter-than-gate",
                    format!("/phases/{pi}/duration"),
                    format!(
                        "phase `{}` lasts {d}, no longer than the {window} (the rate window) a gate must fail for before it fires: its gates can never fail it",
                        p.name
                    ),
                )
                .with_hint("lengthen the phase well past `monitoring.window`, or shorten the window"),
            );
        }
    }
}

/// In the last phase (100%) the stable version serves no traffic, so a rollback condition
/// relative to it has nothing to compare with (Prometheus divides 0 by 0) and cannot fire
/// during the watch: a warning, unless an absolute condition on the same metric watches
/// it. `written_at`: each rule's index among the plan's rollback conditions.
fn stable_at_full_traffic(
    phases: &[Phase],
    metrics: &[Metric],
    rules: &[RollbackRule],
    written_at: &[usize],
    f: &mut Vec<Diagnostic>,
) {
    let Some(last) = phases.last() else {
        return;
    };
    for (r, &i) in rules.iter().zip(written_at) {
        let relative = matches!(r.limit, Limit::RelativeToStable { .. });
        let watched = rules
            .iter()
            .any(|o| o.metric == r.metric && matches!(o.limit, Limit::Absolute(_)));
        if relative && !watched {
            let m = &metrics[r.metric].name;
            f.push(
                Diagnostic::warning(
                    "stable-at-full-traffic",
                    format!("/rollback_conditions/{i}/threshold"),
                    format!(
                        "`{}` compares `{m}` with the stable version, which serves no traffic in the last phase `{}` (100%): it cannot fire while the full release is watched",
                        r.written, last.name
                    ),
                )
                .with_hint(format!(
                    "add a rollback condition with an absolute threshold on `{m}` (with its own `id`), which keeps watching at 100%"
                )),
            );
        }
    }
}
