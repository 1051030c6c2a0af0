//! `prometheus/<phase>.rules.yml`: the recording and alerting rules Prometheus evaluates
//! during one phase, with `prometheus/<phase>.test.yml`, their `promtool test rules` unit
//! tests ([`super::promtool_tests`]).
//!
//! Everything here is printed from the lowered rules ([`crate::lower::alert_rules`]), the
//! very values the simulator evaluates, so the deployed rules and the simulated ones cannot
//! drift. One rule group named after the plan: first one recording rule per metric and
//! track a rule reads (`service_track:<metric>:<operations>`), then one alerting rule per
//! lowered rule, comparing the canary's recorded series with a number or with the stable's.
//!
//! The files of all phases are identical except for the phase an alert names (its `phase`
//! label and its description); each phase's compose override mounts its own file. The
//! rollback and promotion steps have no rules: nothing is left to watch.

use super::{Artifact, header, promtool_tests, runbook};
use crate::check::CheckedPlan;
use crate::lower::{self, AlertRule, Condition, Rhs, RuleKind};
use crate::model::Duration;
use crate::promql::{MatchOp, Matcher, Selector, Track};
use serde::Serialize;
use std::collections::BTreeMap;

/// A rule file: `groups:`.
#[derive(Serialize)]
struct RuleFile {
    groups: Vec<RuleGroup>,
}

#[derive(Serialize)]
struct RuleGroup {
    name: String,
    interval: String,
    rules: Vec<Rule>,
}

#[derive(Serialize)]
#[serde(untagged)]
enum Rule {
    Record(RecordingRule),
    Alert(AlertingRule),
}

#[derive(Serialize)]
struct RecordingRule {
    record: String,
    expr: String,
    labels: BTreeMap<&'static str, String>,
}

#[derive(Serialize)]
struct AlertingRule {
    alert: String,
    expr: String,
    #[serde(rename = "for", skip_serializing_if = "Option::is_none")]
    for_: Option<String>,
    labels: BTreeMap<&'static str, String>,
    annotations: BTreeMap<&'static str, String>,
}

/// The rules file and the unit-test file of every phase.
pub fn render(plan: &CheckedPlan) -> Vec<Artifact> {
    let rules = lower::alert_rules(plan);
    let mut out = Vec::new();
    for (i, phase) in plan.phases.iter().enumerate() {
        let rules_file = format!("{}.rules.yml", phase.name);
        out.push(Artifact {
            path: format!("prometheus/{rules_file}"),
            contents: rules_yaml(plan, &rules, i),
        });
        out.push(Artifact {
            path: format!("prometheus/{}.test.yml", phase.name),
            contents: promtool_tests::render(plan, &rules, i, &rules_file),
        });
    }
    out
}

/// The rules file of phase `phase` (an index into `plan.phases`).
fn rules_yaml(plan: &CheckedPlan, rules: &[AlertRule], phase: usize) -> String {
    let mut group = Vec::new();
    for (mi, track) in recorded(plan, rules) {
        let m = &plan.metrics[mi];
        group.push(Rule::Record(RecordingRule {
            record: lower::record_name(m),
            expr: m.expr.promql(Some(track)),
            labels: BTreeMap::from([
                ("plan", plan.name.clone()),
                ("service", plan.service.name.clone()),
                ("track", track.as_str().to_string()),
            ]),
        }));
    }
    for r in rules {
        group.push(Rule::Alert(AlertingRule {
            alert: r.alert.clone(),
            expr: alert_expr(plan, r),
            for_: Duration::from_millis(r.for_ms).map(|d| d.to_string()),
            labels: rule_labels(plan, r, phase)
                .into_iter()
                .map(|(k, v)| (k, template_literal(&v)))
                .collect(),
            annotations: annotations(plan, r, phase)
                .into_iter()
                .map(|(k, v)| (k, template_literal(&v)))
                .collect(),
        }));
    }
    let file = RuleFile {
        groups: vec![RuleGroup {
            name: plan.name.clone(),
            interval: plan.monitoring.evaluation_interval.to_string(),
            rules: group,
        }],
    };
    let mut s = header(plan, "#");
    s.push_str(&format!(
        "# Prometheus rules of phase `{}`: recording rules per metric and track, then the\n\
         # alerting rules (rollback: critical; gate and no-data: warning).\n\
         # Check: promtool check rules {}.rules.yml; test: promtool test rules {}.test.yml\n",
        plan.phases[phase].name, plan.phases[phase].name, plan.phases[phase].name
    ));
    s.push_str(&serde_yaml::to_string(&file).unwrap_or_default());
    s
}

/// Every recorded series the rules read: (metric index, track), metrics in plan order,
/// the canary before the stable.
pub(crate) fn recorded(plan: &CheckedPlan, rules: &[AlertRule]) -> Vec<(usize, Track)> {
    let mut metrics: Vec<usize> = rules.iter().map(|r| r.metric).collect();
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
/// alert), `group_left` keeps the canary's labels.
pub(crate) fn alert_expr(plan: &CheckedPlan, r: &AlertRule) -> String {
    let canary = record_selector(plan, r.metric, Track::Canary);
    match r.condition {
        Condition::Compare {
            op,
            rhs: Rhs::Value(v),
        } => format!("{canary} {} {}", op.as_str(), float(v)),
        Condition::Compare {
            op,
            rhs: Rhs::StableTimes(f),
        } => format!(
            "{canary} {} ignoring(track) group_left() ({} * {})",
            op.as_str(),
            float(f),
            record_selector(plan, r.metric, Track::Stable)
        ),
        // `x != x` holds only for NaN (0/0 when there is no traffic).
        Condition::Missing => format!("absent({canary}) or ({canary} != {canary})"),
    }
}

/// A float as a PromQL number literal that Go's `strconv.ParseFloat` reads back as the
/// very same f64: Rust prints the shortest representation that round-trips, in plain
/// decimal; very large or small numbers use the (also round-tripping) exponent form.
pub(crate) fn float(v: f64) -> String {
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

/// The labels of a rule's alerts (as written, before template escaping).
pub(crate) fn rule_labels(
    plan: &CheckedPlan,
    r: &AlertRule,
    phase: usize,
) -> BTreeMap<&'static str, String> {
    let mut l = BTreeMap::from([
        ("severity", r.severity().to_string()),
        ("plan", plan.name.clone()),
        ("phase", plan.phases[phase].name.clone()),
        ("release", plan.release.to.to_string()),
        ("rule_id", r.id.clone()),
        ("kind", kind(r.kind).to_string()),
    ]);
    if r.kind == RuleKind::Rollback {
        l.insert("action", "rollback".into());
    }
    l
}

/// The `kind` label: `rollback`, `gate` or `no_data`.
pub(crate) fn kind(k: RuleKind) -> &'static str {
    match k {
        RuleKind::Rollback => "rollback",
        RuleKind::Gate => "gate",
        RuleKind::NoData => "no_data",
    }
}

/// The annotations of a rule's alerts (as written, before template escaping).
pub(crate) fn annotations(
    plan: &CheckedPlan,
    r: &AlertRule,
    phase: usize,
) -> BTreeMap<&'static str, String> {
    let m = &plan.metrics[r.metric];
    let phase_name = &plan.phases[phase].name;
    let canary = format!(
        "the canary {} of `{}` in phase `{phase_name}`",
        plan.release.to, plan.service.name
    );
    let lasting = Duration::from_millis(r.for_ms)
        .map(|d| format!(" for {d}"))
        .unwrap_or_default();
    let what = if m.description.is_empty() {
        format!("`{}`", m.name)
    } else {
        format!("`{}` ({})", m.name, m.description)
    };
    let description = match r.kind {
        RuleKind::Rollback => format!(
            "Rollback condition `{}` met by {canary}: {what} is {}{lasting}. Roll the release \
             back: all traffic returns to the stable {}.",
            r.id,
            condition_text(plan, r),
            plan.release.from
        ),
        RuleKind::Gate => format!(
            "Gate on {what} violated by {canary}: it is {}{lasting}. The phase may not \
             advance while this alert fires.",
            condition_text(plan, r)
        ),
        RuleKind::NoData => format!(
            "{} has reported no value for {what}{lasting}: the rules watching it cannot \
             fire. Check that the canary is up, scraped and receiving traffic.",
            capitalise(&canary)
        ),
    };
    BTreeMap::from([
        ("summary", r.summary.clone()),
        ("description", description),
        ("runbook_url", runbook_url(plan, r)),
    ])
}

/// `> 10%` or `< 0.95x stable`: the alert's comparison, for people.
fn condition_text(plan: &CheckedPlan, r: &AlertRule) -> String {
    let m = &plan.metrics[r.metric];
    match r.condition {
        Condition::Compare {
            op,
            rhs: Rhs::Value(v),
        } => format!("{} {}", op.as_str(), m.unit.show(v)),
        Condition::Compare {
            op,
            rhs: Rhs::StableTimes(f),
        } => format!("{} {}x stable", op.as_str(), crate::model::trim(f)),
        Condition::Missing => "missing".into(),
    }
}

fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    c.next().map_or_else(String::new, |f| {
        f.to_uppercase().collect::<String>() + c.as_str()
    })
}

/// The rule's section of the runbook: `plan.monitoring.runbook_url` with the runbook's
/// anchor for the rule (replacing any fragment), else the generated runbook's relative
/// link ([`runbook::link`]).
pub(crate) fn runbook_url(plan: &CheckedPlan, r: &AlertRule) -> String {
    match &plan.monitoring.runbook_url {
        Some(base) => {
            let base = base.split('#').next().unwrap_or(base);
            format!("{base}#{}", runbook::anchor(r.kind, &r.id))
        }
        None => runbook::link(r),
    }
}

/// Text that Prometheus' Go templating (applied to alert labels and annotations) prints
/// unchanged: every `{{` becomes an action printing `{{`.
pub(crate) fn template_literal(s: &str) -> String {
    s.replace("{{", "{{\"{{\"}}")
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
            let s = float(v);
            assert_eq!(s.parse::<f64>().unwrap().to_bits(), v.to_bits(), "{s}");
            assert!(s.len() <= 24, "{s}");
        }
        assert_eq!(float(0.1), "0.1");
        assert_eq!(float(5000.0), "5000");
    }

    #[test]
    fn template_text_is_escaped() {
        assert_eq!(template_literal("a {{ b }}"), "a {{\"{{\"}} b }}");
        assert_eq!(template_literal("plain"), "plain");
    }
}
