//! The plan's limits, rules and groups in words, for people: the runbook prints them and
//! the manifest carries them beside the numbers (`text`, `summary`, `rule`), so both say
//! the same thing.

use crate::check::{CheckedPlan, GateRule, Group, Limit, Metric, RollbackRule};
use crate::lower::{AlertRule, RuleKind};
use crate::model::{Comparison, Condition, Unit, trim};

/// A value of `unit` for people: `5%`, `3s`, `250ms`, `512MiB`, `80`.
pub(crate) fn value_text(unit: Unit, v: f64) -> String {
    match unit {
        Unit::Milliseconds if v.abs() >= 1000.0 => format!("{}s", trim(v / 1000.0)),
        Unit::Seconds if v.abs() < 1.0 && v != 0.0 => format!("{}ms", trim(v * 1000.0)),
        Unit::Bytes => {
            const IEC: [(&str, f64); 4] = [
                ("TiB", 1024.0 * 1024.0 * 1024.0 * 1024.0),
                ("GiB", 1024.0 * 1024.0 * 1024.0),
                ("MiB", 1024.0 * 1024.0),
                ("KiB", 1024.0),
            ];
            IEC.iter().find(|(_, size)| v.abs() >= *size).map_or_else(
                || format!("{} bytes", trim(v)),
                |(u, size)| format!("{}{u}", trim(v / size)),
            )
        }
        _ => unit.show(v),
    }
}

/// A factor of the stable version's value: `95% of stable` below 1, `1.5x stable` above.
fn relative_text(f: f64) -> String {
    if f < 1.0 {
        format!("{}% of stable", trim(f * 100.0))
    } else {
        format!("{}x stable", trim(f))
    }
}

/// A limit for people; `joiner` ties a comparison with stable to its absolute level: `or`
/// on a gate's healthy side (`1.5x stable or <= 1%`), `and` on the bad side (`3x stable and
/// > 1%`).
pub(crate) fn limit_text(l: Limit, m: &Metric, joiner: &str) -> String {
    match l {
        Limit::Absolute(v) => value_text(m.unit, v),
        Limit::RelativeToStable { factor, also: None } => relative_text(factor),
        Limit::RelativeToStable {
            factor,
            also: Some((op, v)),
        } => format!(
            "{} {joiner} {} {}",
            relative_text(factor),
            op.as_str(),
            value_text(m.unit, v)
        ),
    }
}

/// A rollback rule: `error_rate > 10% for 5m`, `error_rate > 5% for 5m with at least 100
/// requests per 5m window`.
pub(crate) fn rollback_text(plan: &CheckedPlan, r: &RollbackRule) -> String {
    let m = &plan.metrics[r.metric];
    format!(
        "{} {} {} for {}{}",
        m.name,
        r.bad_op(m).as_str(),
        limit_text(r.limit, m, "and"),
        r.for_,
        r.min_requests
            .map(|g| crate::lower::show_guard(g, plan.monitoring.window))
            .unwrap_or_default()
    )
}

/// A gate: `response_time_p95 < 3s`.
pub(crate) fn gate_text(plan: &CheckedPlan, g: &GateRule) -> String {
    let m = &plan.metrics[g.metric];
    format!(
        "{} {} {}",
        m.name,
        g.op.as_str(),
        limit_text(g.limit, m, "or")
    )
}

/// What an alert says, in the metric's units: `error_rate > 10% for 5m`,
/// `error_rate >= 5% for 5m (gate: < 5%)`, `the canary reports no value for error_rate`.
pub(crate) fn alert_summary(plan: &CheckedPlan, r: &AlertRule) -> String {
    let m = &plan.metrics[r.metric];
    match r.kind {
        RuleKind::Rollback => plan
            .rollbacks
            .iter()
            .find(|x| x.id == r.id)
            .map_or_else(|| r.summary.clone(), |x| rollback_text(plan, x)),
        RuleKind::Gate => plan
            .gates
            .iter()
            .find(|g| g.metric == r.metric)
            .map_or_else(
                || r.summary.clone(),
                |g| {
                    format!(
                        "{} {} {} for {} (gate: {})",
                        m.name,
                        g.op.negate().as_str(),
                        limit_text(g.alert_limit(), m, "and"),
                        plan.monitoring.window,
                        g.written
                    )
                },
            ),
        RuleKind::NoData => r.summary.clone(),
    }
}

/// A group condition's comparison: `==`, `!=`, `<`, `<=`, `>`, `>=`.
pub(crate) fn comparison_symbol(c: Comparison) -> &'static str {
    match c {
        Comparison::Eq => "==",
        Comparison::Ne => "!=",
        Comparison::Ord(op) => op.as_str(),
    }
}

/// One group condition: `user_type == admin`, `last_login >= 7 days`.
pub(crate) fn group_condition_text(c: &Condition) -> String {
    format!(
        "{} {} {}",
        c.attribute,
        comparison_symbol(c.predicate.comparison),
        c.predicate.operand
    )
}

/// A group's membership rule: conditions on one attribute are alternatives, different
/// attributes must all hold: `(a == x or a == y) and b >= 10`. `wrap` formats each
/// condition (identity for JSON, a code span for Markdown).
pub(crate) fn group_rule_text(g: &Group, wrap: impl Fn(&str) -> String) -> String {
    let mut attrs: Vec<&str> = Vec::new();
    for c in &g.conditions {
        if !attrs.contains(&c.attribute.as_str()) {
            attrs.push(&c.attribute);
        }
    }
    let parts: Vec<String> = attrs
        .iter()
        .map(|a| {
            let alts: Vec<String> = g
                .conditions
                .iter()
                .filter(|c| c.attribute == *a)
                .map(|c| wrap(&group_condition_text(c)))
                .collect();
            if alts.len() > 1 && attrs.len() > 1 {
                format!("({})", alts.join(" or "))
            } else {
                alts.join(" or ")
            }
        })
        .collect();
    parts.join(" and ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_in_their_units() {
        assert_eq!(value_text(Unit::Ratio, 0.05), "5%");
        assert_eq!(value_text(Unit::Ratio, 0.995), "99.5%");
        assert_eq!(value_text(Unit::Milliseconds, 3000.0), "3s");
        assert_eq!(value_text(Unit::Milliseconds, 250.0), "250ms");
        assert_eq!(value_text(Unit::Seconds, 0.25), "250ms");
        assert_eq!(value_text(Unit::Seconds, 3.0), "3s");
        assert_eq!(value_text(Unit::Bytes, 512.0 * 1024.0 * 1024.0), "512MiB");
        assert_eq!(value_text(Unit::Bytes, 100.0), "100 bytes");
        assert_eq!(value_text(Unit::Count, 80.0), "80");
        assert_eq!(relative_text(0.95), "95% of stable");
        assert_eq!(relative_text(2.0), "2x stable");
    }
}
