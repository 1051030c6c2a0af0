//! Checks of metrics, gates and rollback conditions: every reference resolves, thresholds
//! fit their metric's unit and can both trigger and hold, rollback rules are not stricter
//! than gates, and phases outlast the rules that watch them.

use super::catalog::{BUILTINS, Builtin, builtin};
use super::checked::{CheckedPlan, GateRule, Limit, Metric, Monitoring, Phase, RollbackRule};
use crate::diagnostic::Diagnostic;
use crate::model::{Amount, Bad, Op, Plan, Threshold, Unit};
use crate::promql::MetricExpr;
use crate::suggest::nearest;

pub fn rules(
    plan: &Plan,
    monitoring: &Monitoring,
    phases: &[Phase],
    f: &mut Vec<Diagnostic>,
) -> (Vec<Metric>, Vec<GateRule>, Vec<RollbackRule>) {
    custom_metric_checks(plan, f);
    let mut metrics: Vec<Metric> = Vec::new();
    let mut metric_index =
        |name: &str, pointer: String, at_key: bool, f: &mut Vec<Diagnostic>| -> Option<usize> {
            if let Some(i) = metrics.iter().position(|m| m.name == name) {
                return Some(i);
            }
            match resolve_metric(plan, name, monitoring) {
                Some(m) => {
                    metrics.push(m);
                    Some(metrics.len() - 1)
                }
                // Defined but incomplete: `custom-metric-incomplete` already says so.
                None if plan.metrics.contains_key(name) => None,
                None => {
                    let mut known: Vec<String> =
                        BUILTINS.iter().map(|b| b.name.to_string()).collect();
                    known.extend(plan.metrics.keys().cloned());
                    let mut d = Diagnostic::error(
                        "unknown-metric",
                        pointer,
                        format!("unknown metric `{name}`"),
                    );
                    if at_key {
                        d = d.at_key();
                    }
                    d = match nearest(name, &known) {
                        Some(n) => d.with_hint(format!("did you mean `{n}`?")),
                        None => d.with_hint(format!(
                            "built-in metrics: {}; or define it under `metrics:`",
                            BUILTINS
                                .iter()
                                .map(|b| b.name)
                                .collect::<Vec<_>>()
                                .join(", ")
                        )),
                    };
                    f.push(d);
                    None
                }
            }
        };

    let mut gates = Vec::new();
    for (name, gate) in &plan.gates {
        let pointer = format!("/gates/{name}");
        let Some(mi) = metric_index(name, pointer.clone(), true, f) else {
            continue;
        };
        let _ = &mi;
        gates.push((mi, name, gate, pointer));
    }
    let mut rollbacks = Vec::new();
    for (i, rc) in plan.rollback_conditions.iter().enumerate() {
        let Some(mi) = metric_index(
            &rc.metric,
            format!("/rollback_conditions/{i}/metric"),
            false,
            f,
        ) else {
            continue;
        };
        rollbacks.push((mi, i, rc));
    }

    let mut gate_rules = Vec::new();
    for (mi, name, gate, pointer) in gates {
        let m = &metrics[mi];
        if gate.op.healthy_side() == m.bad {
            f.push(
                Diagnostic::error("gate-backwards", pointer.clone(), format!("gate `{name}: \"{gate}\"` calls the bad side healthy: {name} is bad when {}", if m.bad == Bad::High { "high" } else { "low" }))
                    .with_hint(format!("write `{} …`", if m.bad == Bad::High { "<" } else { ">" })),
            );
            continue;
        }
        if let Some((op, _)) = gate.or
            && op.healthy_side() != gate.op.healthy_side()
        {
            f.push(
                Diagnostic::error(
                    "floor-direction",
                    pointer.clone(),
                    format!(
                        "gate `{name}: \"{gate}\"`: its `or {} …` looks the other way from `{} …`",
                        op.as_str(),
                        gate.op.as_str()
                    ),
                )
                .with_hint(format!(
                    "both comparisons name the healthy side: write `or {} …`",
                    gate.op.as_str()
                )),
            );
            continue;
        }
        let Some(limit) = limit(&gate.threshold, gate.or, m, &pointer, f) else {
            continue;
        };
        if let Some(d) = floorless(
            limit,
            m,
            &pointer,
            &format!("gate `{name}: \"{gate}\"`"),
            "add a level that is healthy whatever stable does",
            |f| format!("`{gate} or {} {}`", gate.op.as_str(), Unit::Ratio.show(f)),
        ) {
            f.push(d);
        }
        if let Limit::Absolute(v) = limit
            && let Some(why) = gate_never_holds(m.unit, gate.op, v)
        {
            f.push(
                Diagnostic::error(
                    "impossible-gate",
                    pointer.clone(),
                    format!("gate `{name}: \"{gate}\"` can never hold: {why}"),
                )
                .with_hint(range_hint(m.unit)),
            );
            continue;
        }
        if let Limit::Absolute(v) = limit
            && let Some(why) = gate_always_holds(m.unit, gate.op, v)
        {
            f.push(
                Diagnostic::error(
                    "gate-always-holds",
                    pointer.clone(),
                    format!("gate `{name}: \"{gate}\"` can never fail: {why}"),
                )
                .with_hint(range_hint(m.unit)),
            );
            continue;
        }
        if m.unit == Unit::Milliseconds
            && let Limit::Absolute(v) = limit
            && matches!(gate.threshold, Threshold::Absolute(Amount::Number(_)))
            && v > 0.0
            && v < 10.0
        {
            f.push(
                Diagnostic::warning(
                    "latency-looks-like-seconds",
                    pointer.clone(),
                    format!("gate `{name}: \"{gate}\"` allows {v} milliseconds"),
                )
                .with_hint(format!(
                    "a bare number is in milliseconds here; if you meant seconds write `{} {v}s`",
                    gate.op.as_str()
                )),
            );
        }
        gate_rules.push(GateRule {
            metric: mi,
            op: gate.op,
            limit,
            written: gate.to_string(),
        });
    }

    let mut rules: Vec<RollbackRule> = Vec::new();
    for (mi, i, rc) in rollbacks {
        let m = &metrics[mi];
        let pointer = format!("/rollback_conditions/{i}/threshold");
        let id = rc.id.clone().unwrap_or_else(|| rc.metric.clone());
        if let Some(j) = rules.iter().position(|r| r.id == id) {
            f.push(
                Diagnostic::error(
                    "duplicate-rule-id",
                    format!("/rollback_conditions/{i}"),
                    format!(
                        "two rollback conditions have the id `{id}` (also rollback_conditions[{j}])"
                    ),
                )
                .with_hint("give each condition on the same metric its own `id:`"),
            );
        }
        let bad_op = if m.bad == Bad::High { Op::Gt } else { Op::Lt };
        let past = match rc.threshold {
            Threshold::Relative {
                past: Some((side, amount)),
                ..
            } => {
                if side != m.bad {
                    let (wrote, want) = match m.bad {
                        Bad::High => ("below", "above"),
                        Bad::Low => ("above", "below"),
                    };
                    f.push(
                        Diagnostic::error(
                            "floor-direction",
                            pointer.clone(),
                            format!(
                                "`{}` is bad when {}, so the canary must also be {want} the amount, not {wrote} it",
                                rc.metric,
                                if m.bad == Bad::High { "high" } else { "low" }
                            ),
                        )
                        .with_hint(format!("write `… and {want} {amount}`")),
                    );
                    continue;
                }
                Some((bad_op, amount))
            }
            _ => None,
        };
        let Some(limit) = limit(&rc.threshold, past, m, &pointer, f) else {
            continue;
        };
        if let Some(d) = floorless(
            limit,
            m,
            &pointer,
            &format!("rollback when {} > {}", rc.metric, rc.threshold),
            "add the level the canary must also pass",
            |f| format!("`{} and above {}`", rc.threshold, Unit::Ratio.show(f)),
        ) {
            f.push(d);
        }
        if let Limit::Absolute(v) = limit {
            if let Some(why) = rule_never_triggers(m.unit, m.bad, v) {
                f.push(
                    Diagnostic::error(
                        "impossible-threshold",
                        pointer.clone(),
                        format!("rollback on `{}` can never trigger: {why}", rc.metric),
                    )
                    .with_hint(
                        percent_slip(m.unit, &rc.threshold, v)
                            .unwrap_or_else(|| range_hint(m.unit).to_string()),
                    ),
                );
                continue;
            }
            if let Some(why) = rule_always_triggers(m.unit, m.bad, v) {
                f.push(
                    Diagnostic::error(
                        "impossible-threshold",
                        pointer.clone(),
                        format!("rollback on `{}` would always trigger: {why}", rc.metric),
                    )
                    .with_hint(
                        percent_slip(m.unit, &rc.threshold, v)
                            .unwrap_or_else(|| range_hint(m.unit).to_string()),
                    ),
                );
                continue;
            }
            if m.unit == Unit::Milliseconds
                && matches!(rc.threshold, Threshold::Absolute(Amount::Number(_)))
                && v > 0.0
                && v < 10.0
            {
                f.push(
                    Diagnostic::warning(
                        "latency-looks-like-seconds",
                        pointer.clone(),
                        format!("threshold `{v}` is {v} milliseconds for `{}`", rc.metric),
                    )
                    .with_hint(format!(
                        "a bare number is in milliseconds here; if you meant seconds write `{v}s`"
                    )),
                );
            }
        }
        if let Limit::RelativeToStable { factor, .. } = limit
            && let Some(why) = fires_when_better(m.bad, factor)
        {
            f.push(
                Diagnostic::warning(
                    "rollback-fires-when-better",
                    pointer.clone(),
                    format!(
                        "rollback when {} {} {} fires while the canary {why} than stable",
                        rc.metric,
                        bad_op.as_str(),
                        show_limit(limit, m.unit)
                    ),
                )
                .with_hint(if m.bad == Bad::High {
                    "for a metric that is bad when high, roll back above stable: e.g. `2x stable`"
                } else {
                    "for a metric that is bad when low, roll back below stable: e.g. `80% of stable`"
                }),
            );
        }
        if let Some(g) = gate_rules.iter().find(|g| g.metric == mi)
            && stricter(bad_op, limit, g.limit)
        {
            f.push(
                Diagnostic::warning("rollback-stricter-than-gate", pointer.clone(), format!(
                    "rollback when {} {} {} is stricter than its gate `{}`: it rolls back releases the gate calls healthy",
                    rc.metric, bad_op.as_str(), show_limit(limit, m.unit), g.written
                ))
                .with_hint("a rollback threshold is usually looser than the gate (gates hold a phase, rollbacks abort it)"),
            );
        }
        for p in phases {
            if let Some(d) = p.duration
                && d < rc.duration
            {
                let pi = plan
                    .phases
                    .iter()
                    .position(|q| q.name == p.name)
                    .unwrap_or(0);
                f.push(
                    Diagnostic::error("phase-shorter-than-rule", format!("/phases/{pi}/duration"), format!(
                        "phase `{}` lasts {d}, shorter than the {} that rollback rule `{id}` needs before it can fire",
                        p.name, rc.duration
                    ))
                    .with_hint("lengthen the phase or shorten the condition's `duration`"),
                );
            }
        }
        rules.push(RollbackRule {
            id,
            metric: mi,
            limit,
            for_: rc.duration,
            written: rc.threshold.to_string(),
        });
    }
    (metrics, gate_rules, rules)
}

fn custom_metric_checks(plan: &Plan, f: &mut Vec<Diagnostic>) {
    for (name, def) in &plan.metrics {
        let at = format!("/metrics/{name}");
        let is_builtin = builtin(name).is_some();
        if !is_builtin {
            for (field, missing) in [("unit", def.unit.is_none()), ("bad", def.bad.is_none())] {
                if missing {
                    f.push(
                        Diagnostic::error(
                            "custom-metric-incomplete",
                            at.clone(),
                            format!("custom metric `{name}` needs `{field}`"),
                        )
                        .at_key()
                        .with_hint(if field == "unit" {
                            "e.g. `unit: ratio`"
                        } else {
                            "`bad: high` (like an error rate) or `bad: low` (like availability)"
                        }),
                    );
                }
            }
        }
        if !def.query.contains("$track") {
            f.push(
                Diagnostic::error("query-without-track", format!("{at}/query"), format!("the query of `{name}` never mentions `$track`, so canary and stable cannot be told apart"))
                    .with_hint("filter its series with `track=\"$track\"`"),
            );
        }
    }
}

fn resolve_metric(plan: &Plan, name: &str, monitoring: &Monitoring) -> Option<Metric> {
    let custom_expr = |q: &str| {
        MetricExpr::Custom(
            q.replace("$service", &plan.service.name)
                .replace("$window", &monitoring.window.to_string()),
        )
    };
    let metric = match (builtin(name), plan.metrics.get(name)) {
        (Some(b), None) => Metric {
            name: name.to_string(),
            description: b.description.into(),
            unit: b.unit,
            bad: b.bad,
            expr: b.expr(&plan.service.name, monitoring.window),
            builtin: Some(b.kind),
        },
        (Some(b), Some(c)) => Metric {
            name: name.to_string(),
            description: c
                .description
                .clone()
                .unwrap_or_else(|| b.description.into()),
            unit: c.unit.unwrap_or(b.unit),
            bad: c.bad.unwrap_or(b.bad),
            expr: custom_expr(&c.query),
            builtin: None,
        },
        (None, Some(c)) => Metric {
            name: name.to_string(),
            description: c.description.clone().unwrap_or_default(),
            unit: c.unit?,
            bad: c.bad?,
            expr: custom_expr(&c.query),
            builtin: None,
        },
        (None, None) => return None,
    };
    Some(metric)
}

/// A threshold in its metric's unit, with the absolute comparison that goes with a relative
/// one (`also`, in the rule's own sense: see [`Limit`]).
fn limit(
    t: &Threshold,
    also: Option<(Op, Amount)>,
    m: &Metric,
    pointer: &str,
    f: &mut Vec<Diagnostic>,
) -> Option<Limit> {
    let mut in_unit = |a: Amount| match a.in_unit(m.unit) {
        Ok(v) => Some(v),
        Err(why) => {
            f.push(
                Diagnostic::error(
                    "threshold-unit",
                    pointer.to_string(),
                    format!("`{a}` does not fit `{}`: {why}", m.name),
                )
                .with_hint(range_hint(m.unit)),
            );
            None
        }
    };
    match *t {
        Threshold::Relative { factor, .. } => {
            let also = match also {
                Some((op, a)) => Some((op, in_unit(a)?)),
                None => None,
            };
            Some(Limit::RelativeToStable { factor, also })
        }
        Threshold::Absolute(a) => in_unit(a).map(Limit::Absolute),
    }
}

/// A comparison with stable, on a metric that is bad when high, without a floor: a factor of
/// nothing is nothing, so while stable has no errors the canary's first one crosses it.
/// `fix` writes the rule with a floor, for the hint.
fn floorless(
    limit: Limit,
    m: &Metric,
    pointer: &str,
    what: &str,
    advice: &str,
    fix: impl Fn(f64) -> String,
) -> Option<Diagnostic> {
    let Limit::RelativeToStable { also: None, .. } = limit else {
        return None;
    };
    (m.bad == Bad::High).then(|| {
        let example = match m.unit {
            Unit::Ratio => fix(0.01),
            _ => "a floor in the metric's unit".to_string(),
        };
        Diagnostic::warning(
            "relative-without-floor",
            pointer.to_string(),
            format!("{what} has no floor: while stable's `{}` is 0, the canary's first event crosses it", m.name),
        )
        .with_hint(format!("{advice}, e.g. {example}"))
    })
}

fn range_hint(unit: Unit) -> &'static str {
    match unit {
        Unit::Ratio => "a ratio lies between 0 and 1: write `0.1` or `10%`",
        Unit::Milliseconds => "a latency in milliseconds: write `5000` or `5s`",
        Unit::Seconds => "a latency in seconds: write `5` or `5s`",
        Unit::Bytes => "a size in bytes: write `536870912` or `512MiB`",
        Unit::Count | Unit::PerSecond => "a number zero or above",
    }
}

/// The kind of value a unit measures, for messages: "a ratio is never below 0".
fn noun(unit: Unit) -> &'static str {
    match unit {
        Unit::Ratio => "a ratio",
        Unit::Milliseconds | Unit::Seconds => "a latency",
        Unit::Bytes => "a size",
        Unit::Count => "a count",
        Unit::PerSecond => "a rate",
    }
}

/// A ratio written as a whole percentage without `%` (`99` for 99%): the likely fix.
fn percent_slip(unit: Unit, t: &Threshold, v: f64) -> Option<String> {
    (unit == Unit::Ratio
        && matches!(t, Threshold::Absolute(Amount::Number(_)))
        && v > 1.0
        && v <= 100.0)
        .then(|| {
            format!(
                "a ratio is a number from 0 to 1; did you mean `{}%` (or `{}`)?",
                crate::model::trim(v),
                crate::model::trim(v / 100.0)
            )
        })
}

fn max_of(unit: Unit) -> f64 {
    if unit == Unit::Ratio {
        1.0
    } else {
        f64::INFINITY
    }
}

fn rule_never_triggers(unit: Unit, bad: Bad, v: f64) -> Option<String> {
    match bad {
        Bad::High if v >= max_of(unit) => Some(format!(
            "{} never exceeds {}",
            noun(unit),
            unit.show(max_of(unit))
        )),
        Bad::Low if v <= 0.0 => Some(format!("{} is never below 0", noun(unit))),
        _ => None,
    }
}

fn rule_always_triggers(unit: Unit, bad: Bad, v: f64) -> Option<String> {
    match bad {
        Bad::High if v < 0.0 => Some(format!(
            "{} is never below 0, so it always exceeds {}",
            noun(unit),
            unit.show(v)
        )),
        Bad::Low if v > max_of(unit) => Some(format!(
            "{} never exceeds {}, so it is always below {}",
            noun(unit),
            unit.show(max_of(unit)),
            unit.show(v)
        )),
        _ => None,
    }
}

fn gate_never_holds(unit: Unit, op: Op, v: f64) -> Option<String> {
    let max = max_of(unit);
    match op {
        Op::Gt if v >= max => Some(format!("{} is at most {}", noun(unit), unit.show(max))),
        Op::Ge if v > max => Some(format!("{} is at most {}", noun(unit), unit.show(max))),
        Op::Lt if v <= 0.0 => Some(format!("{} is never below 0", noun(unit))),
        Op::Le if v < 0.0 => Some(format!("{} is never below 0", noun(unit))),
        _ => None,
    }
}

fn gate_always_holds(unit: Unit, op: Op, v: f64) -> Option<String> {
    let max = max_of(unit);
    match op {
        Op::Lt if v > max => Some(format!("{} is at most {}", noun(unit), unit.show(max))),
        Op::Le if v >= max => Some(format!("{} is at most {}", noun(unit), unit.show(max))),
        Op::Gt if v < 0.0 => Some(format!("{} is never below 0", noun(unit))),
        Op::Ge if v <= 0.0 => Some(format!("{} is never below 0", noun(unit))),
        _ => None,
    }
}

/// Why a relative rollback rule fires on a canary that is doing better than stable: a
/// factor below 1 on a metric bad when high (or above 1 on one bad when low).
fn fires_when_better(bad: Bad, factor: f64) -> Option<&'static str> {
    match bad {
        Bad::High if factor < 1.0 => Some("is still lower (better)"),
        Bad::Low if factor > 1.0 => Some("is still higher (better)"),
        _ => None,
    }
}

/// Whether a rollback rule (`value bad_op r` is bad) fires on values the gate (`g`) accepts.
fn stricter(bad_op: Op, r: Limit, g: Limit) -> bool {
    match (r, g) {
        (Limit::Absolute(r), Limit::Absolute(g))
        | (Limit::RelativeToStable { factor: r, .. }, Limit::RelativeToStable { factor: g, .. }) => {
            match bad_op {
                Op::Gt | Op::Ge => r < g,
                Op::Lt | Op::Le => r > g,
            }
        }
        _ => false,
    }
}

fn show_limit(l: Limit, unit: Unit) -> String {
    match l {
        Limit::Absolute(v) => unit.show(v),
        Limit::RelativeToStable { factor, also } => {
            let mut s = format!("{}x stable", crate::model::trim(factor));
            if let Some((op, v)) = also {
                s.push_str(&format!(" and {} {}", op.as_str(), unit.show(v)));
            }
            s
        }
    }
}

/// Thin traffic: at a phase's share, one failed request in one window already crosses a
/// rollback threshold on a request ratio, so noise alone can roll the release back.
/// `plan validate` runs this with the plan's stated rate, `plan simulate` with the rate it
/// simulates.
pub fn thin_traffic(plan: &CheckedPlan, rps: f64) -> Vec<Diagnostic> {
    let window = plan.monitoring.window;
    let mut out = Vec::new();
    for (i, r) in plan.rollbacks.iter().enumerate() {
        let m = &plan.metrics[r.metric];
        // A comparison with stable crosses at its floor while stable has no failed request.
        let t = match r.limit {
            Limit::Absolute(t)
            | Limit::RelativeToStable {
                also: Some((_, t)), ..
            } => t,
            Limit::RelativeToStable { also: None, .. } => continue,
        };
        let error_threshold = match m.builtin {
            Some(Builtin::ErrorRate) => t,
            Some(Builtin::Availability) => 1.0 - t,
            _ => continue,
        };
        for (pi, p) in plan.phases.iter().enumerate() {
            if p.traffic == crate::model::Share::FULL {
                continue;
            }
            let n = rps * plan.canary_request_share(pi) * window.seconds();
            if n > 0.0 && 1.0 / n > error_threshold {
                out.push(
                    Diagnostic::warning("thin-traffic", format!("/rollback_conditions/{i}/threshold"), format!(
                        "in phase `{}` the canary gets about {n:.0} requests per {window} window, so one failed request ({:.1}% of them) already crosses the `{}` threshold of {}",
                        p.name, 100.0 / n, m.name, Unit::Ratio.show(t)
                    ))
                    .with_hint("run `plan simulate` to see the false-rollback rate; consider a longer window, a minimum request count, or a larger first phase"),
                );
                break;
            }
        }
    }
    out
}
