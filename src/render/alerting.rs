//! The lowered rules in Prometheus' terms: the recorded series each rule reads, the
//! alerting expression, the alert's labels, and numbers written as PromQL reads them back.
//! The rules file (`prometheus`) prints them and the promtool tests (`promtool_tests`)
//! expect them, so both read this module and neither the other.

use crate::check::CheckedPlan;
use crate::lower::{self, AlertRule, Condition, Rhs, RuleKind};
use crate::promql::{MatchOp, Matcher, Selector, Track};
use std::collections::BTreeMap;

/// Every recorded series the rules read: (metric index, track), metrics in plan order,
/// the canary before the stable. A guard's request count is the canary's only.
pub(crate) fn recorded(plan: &CheckedPlan, rules: &[AlertRule]) -> Vec<(usize, Track)> {
    let mut metrics: Vec<usize> = rules
        .iter()
        .flat_map(|r| std::iter::once(r.metric).chain(r.guard.map(|g| g.count)))
        .collect();
    metrics.sort_unstable();
    metrics.dedup();
    metrics
        .into_iter()
        .filter(|&mi| mi < plan.metrics.len())
        .flat_map(|mi| {
            lower::tracks_needed(rules, mi)
                .into_iter()
                .map(move |t| (mi, t))
        })
        .collect()
}

/// The selector of one track's recorded series of `metric`:
/// `service_track:error_rate:ratio_rate5m{plan="lawsker",service="backend",track="canary"}`.
///
/// It names the service too, so that both branches of a no-data rule (`absent(...)`, whose
/// labels come from the selector's equality matchers, and the NaN check, which keeps the
/// series' labels) give the alert the same labels.
pub(crate) fn record_selector(plan: &CheckedPlan, metric: usize, track: Track) -> String {
    let eq = |label: &str, value: &str| Matcher {
        label: label.into(),
        op: MatchOp::Eq,
        value: value.into(),
    };
    Selector {
        metric: lower::record_name(&plan.metrics[metric]),
        matchers: vec![
            eq("plan", &plan.name),
            eq("service", &plan.service.name),
            eq("track", track.as_str()),
        ],
    }
    .promql(track.as_str())
}

/// The alerting expression of a lowered rule.
///
/// A relative rule matches the two tracks with `ignoring(track) group_left`: plain
/// one-to-one matching would drop the `track` label from the result (and so from the
/// alert), `group_left` keeps the canary's labels. Its floor is a second comparison of the
/// canary joined with `and`, which keeps the series (same labels) only where both hold.
///
/// A guard (`min_requests`) keeps the comparison's result only where the canary's recorded
/// request count is at least N: `(<comparison>) and on(plan, service, track) (<count> >=
/// N)`. Both sides are recorded series with exactly those labels, so `on` matches the
/// canary's one to one, and `and` keeps the left-hand side's value and labels: the alert
/// is the unguarded one's, present only where the guard passes.
pub(crate) fn alert_expr(plan: &CheckedPlan, r: &AlertRule) -> String {
    let expr = comparison_expr(plan, r);
    match r.guard {
        None => expr,
        Some(g) => format!(
            "({expr}) and on(plan, service, track) ({} >= {})",
            record_selector(plan, g.count, Track::Canary),
            g.min
        ),
    }
}

/// The alerting expression of a lowered rule without its guard.
fn comparison_expr(plan: &CheckedPlan, r: &AlertRule) -> String {
    let canary = record_selector(plan, r.metric, Track::Canary);
    match r.condition {
        Condition::Compare {
            op,
            rhs: Rhs::Value(v),
        } => format!("{canary} {} {}", op.as_str(), float_literal(v)),
        Condition::Compare {
            op,
            rhs: Rhs::StableTimes { factor, also },
        } => {
            let relative = format!(
                "{canary} {} ignoring(track) group_left() ({} * {})",
                op.as_str(),
                float_literal(factor),
                record_selector(plan, r.metric, Track::Stable)
            );
            match also {
                None => relative,
                Some((o, v)) => format!(
                    "{relative} and {canary} {} {}",
                    o.as_str(),
                    float_literal(v)
                ),
            }
        }
        // `x != x` holds only for NaN (0/0 when there is no traffic).
        Condition::Missing => format!("absent({canary}) or ({canary} != {canary})"),
        // No target listed (`absent`, e.g. a container gone from DNS-based discovery), or
        // none answering its scrape (`up` 0: the target is listed, the process is not
        // there). Reads `up` alone, never the request counters, whose labelled series
        // appear only at a first request (a healthy canary may have no `code="5xx"` yet).
        Condition::Silent => format!("absent({canary}) or {canary} == 0"),
    }
}

/// A float as a PromQL number literal that Go's `strconv.ParseFloat` reads back as the
/// very same f64: Rust prints the shortest representation that round-trips, in plain
/// decimal; very large or small numbers use the (also round-tripping) exponent form.
pub(crate) fn float_literal(v: f64) -> String {
    if v.is_nan() {
        return "NaN".into();
    }
    if v.is_infinite() {
        return if v > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        };
    }
    let plain = format!("{v}");
    if plain.len() <= 24 {
        plain
    } else {
        format!("{v:e}")
    }
}

/// The labels of a rule's alerts in phase `phase` (as written, before template escaping).
pub(crate) fn rule_labels(
    plan: &CheckedPlan,
    r: &AlertRule,
    phase: &str,
) -> BTreeMap<&'static str, String> {
    let mut l = BTreeMap::from([
        ("severity", r.severity().to_string()),
        ("plan", plan.name.clone()),
        ("phase", phase.to_string()),
        ("release", plan.release.to.to_string()),
        ("rule_id", r.id.clone()),
        ("kind", kind_label(r.kind).to_string()),
    ]);
    if r.kind == RuleKind::Rollback {
        l.insert("action", "rollback".into());
    }
    l
}

/// The `kind` label: `rollback`, `gate` or `no_data`.
pub(crate) fn kind_label(k: RuleKind) -> &'static str {
    match k {
        RuleKind::Rollback => "rollback",
        RuleKind::Gate => "gate",
        RuleKind::NoData => "no_data",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_round_trip() {
        for v in [
            0.1,
            0.95,
            5000.0,
            1e-7,
            1e300,
            -2.5,
            0.30000000000000004,
            123456789.125,
            f64::MIN_POSITIVE,
            f64::MAX,
        ] {
            let s = float_literal(v);
            assert_eq!(s.parse::<f64>().unwrap().to_bits(), v.to_bits(), "{s}");
            assert!(s.len() <= 24, "{s}");
        }
        assert_eq!(float_literal(0.1), "0.1");
        assert_eq!(float_literal(5000.0), "5000");
    }
}
