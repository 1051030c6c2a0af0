//! What an alert says: its annotations (`summary` with the alert's current value in the
//! metric's unit, `description`, `action`, `runbook_url`), each held once as a `Text` that
//! gives both the Go template the rules file carries and the very string Prometheus renders
//! of it, which the promtool tests expect: the two cannot disagree.
//!
//! Annotations are Go templates to Prometheus: user text in them is written as template
//! literals (`template_literal`), and the one template of ours is the value's formatting
//! (`humanize`).

use super::anchors;
use super::humanize::ValueFormat;
use crate::check::{CheckedPlan, GatePolicy};
use crate::lower::{self, AlertRule, Condition, Rhs, RuleKind};
use crate::model::{AfterMaxHold, Duration};
use std::collections::BTreeMap;

/// An annotation's text: literal text (user text included) and, in a summary, the
/// alert's current value. One value gives both what the rules file says (a Prometheus
/// template, [`Text::template`]) and what Prometheus renders of it ([`Text::expand`], which
/// the promtool tests expect), so the two cannot disagree.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Text {
    parts: Vec<Part>,
}

#[derive(Debug, Clone, PartialEq)]
enum Part {
    Literal(String),
    Value(ValueFormat),
}

impl Text {
    fn literal(s: impl Into<String>) -> Text {
        Text {
            parts: vec![Part::Literal(s.into())],
        }
    }

    fn push(mut self, s: &str) -> Text {
        match self.parts.last_mut() {
            Some(Part::Literal(l)) => l.push_str(s),
            _ => self.parts.push(Part::Literal(s.to_string())),
        }
        self
    }

    fn value(mut self, f: ValueFormat) -> Text {
        self.parts.push(Part::Value(f));
        self
    }

    /// The Prometheus template: literal text escaped ([`template_literal`]), the value as
    /// its formatting template.
    pub(crate) fn template(&self) -> String {
        self.parts
            .iter()
            .map(|p| match p {
                Part::Literal(s) => template_literal(s),
                Part::Value(f) => f.template().to_string(),
            })
            .collect()
    }

    /// What Prometheus renders of [`Text::template`] for an alert whose value is `value`.
    pub(crate) fn expand(&self, value: f64) -> String {
        self.parts
            .iter()
            .map(|p| match p {
                Part::Literal(s) => s.clone(),
                Part::Value(f) => f.expand(value),
            })
            .collect()
    }
}

/// The annotations of a rule's alerts in phase `phase`; the phase is named once, in the
/// description.
///
/// - `summary`: one line with the current value, for titles and pages:
///   `error_rate is 20% (> 10% for 5m)`, `error_rate is 6% (>= 5% for 5m; gate: < 5%)`;
///   a no-data alert has no value (its expression's value is `absent()`'s 1 or NaN).
///   The value of a comparison is the canary's (PromQL keeps the left-hand side's).
/// - `description`: what happened, to whom, in which phase, with the metric's own
///   description.
/// - `action`: what the person on call does now (the `action` label is the machine's).
/// - `runbook_url`: the rule's section of the runbook ([`runbook_url`]).
pub(crate) fn annotations(
    plan: &CheckedPlan,
    r: &AlertRule,
    phase: &str,
    end: PhaseEnd,
) -> BTreeMap<&'static str, Text> {
    let m = &plan.metrics[r.metric];
    let canary = format!(
        "the canary {} of `{}` in phase `{phase}`",
        plan.release.to, plan.service.name
    );
    let window = Duration::from_millis(r.for_ms);
    let lasting = window.map(|d| format!(" for {d}")).unwrap_or_default();
    let what = if m.description.is_empty() {
        format!("`{}`", m.name)
    } else {
        format!("`{}` ({})", m.name, m.description)
    };
    let condition = comparison_text(plan, r);
    // ` with at least 100 requests per 5m window`, for a guarded rule.
    let guard = r
        .guard
        .map(|g| lower::show_guard(g, plan.monitoring.window))
        .unwrap_or_default();
    let is = |rest: String| {
        Text::literal(format!("{} is ", m.name))
            .value(ValueFormat::for_unit(m.unit))
            .push(&rest)
    };
    let (summary, description, action) = match r.kind {
        RuleKind::Rollback if r.is_silent_canary() => (
            Text::literal(format!(
                "the canary is silent: no scrape target up{lasting} (silent canary)"
            )),
            format!(
                "{} should be serving users, but none of its scrape targets has answered \
                 Prometheus{lasting} (`up` is 0, or no target is listed at all): it has \
                 crashed, hangs, or is gone. NGINX answers its users with 502s that no \
                 application metric counts, and every other rule watching it is blind.",
                capitalise(&canary)
            ),
            format!(
                "Roll the release back now: all traffic returns to the stable {}. Then look \
                 at the canary container's state and logs (exit code, OOM kill, restarts).",
                plan.release.from
            ),
        ),
        RuleKind::Rollback => (
            is(format!(" ({condition}{lasting}{guard})")),
            format!(
                "Rollback condition `{}` met by {canary}: {what} is {condition}{lasting}{guard}.",
                r.id
            ),
            format!(
                "Roll the release back now: all traffic returns to the stable {} and the \
                 canary stops. Find the cause afterwards.",
                plan.release.from
            ),
        ),
        RuleKind::Gate => (
            is(format!(
                " ({condition}{lasting}; gate: {})",
                gate_written(plan, r)
            )),
            format!("Gate on {what} violated by {canary}: it is {condition}{lasting}."),
            gate_action(plan, end),
        ),
        RuleKind::NoData => (
            Text::literal(r.summary.clone()),
            format!(
                "{} has reported no value for {what}{lasting}: the rules watching it cannot \
                 fire.",
                capitalise(&canary)
            ),
            "Check that the canary is up, scraped and receiving traffic; do not advance \
             while it reports no data."
                .to_string(),
        ),
    };
    BTreeMap::from([
        ("summary", summary),
        ("description", Text::literal(description)),
        ("action", Text::literal(action)),
        ("runbook_url", Text::literal(runbook_url(plan, r))),
    ])
}

/// How a phase ends, the one thing besides its name that its alerts say differently (a
/// gate's `action`): when its `duration` is up, or, the last phase (100%), not at all: it
/// is watched, then the release is complete.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PhaseEnd {
    Duration,
    Last,
}

impl PhaseEnd {
    /// How phase `i` of `plan` ends.
    pub(crate) fn of(plan: &CheckedPlan, i: usize) -> PhaseEnd {
        if i + 1 == plan.phases.len() {
            PhaseEnd::Last
        } else {
            PhaseEnd::Duration
        }
    }
}

/// What a firing gate means to the person on call, under the plan's `gate_policy`: in the
/// last phase (100%) gates only warn; elsewhere, still firing when the phase's duration is
/// up, it rolls the release back at once or holds the phase. Short: it is read in Slack
/// and SMS.
fn gate_action(plan: &CheckedPlan, end: PhaseEnd) -> String {
    if end == PhaseEnd::Last {
        return "At 100% gates only warn: keep watching; the rollback rules decide whether \
                the release rolls back."
            .to_string();
    }
    let when = "Do not advance while it fires. If it still fires when the phase's duration is up,";
    match plan.gate_policy {
        GatePolicy::Rollback => {
            format!("{when} the release rolls back: follow the runbook's rollback steps.")
        }
        GatePolicy::Hold { max, then } => {
            let after = match then {
                AfterMaxHold::Rollback => "then it rolls back: follow the runbook's rollback steps",
                AfterMaxHold::Stay => "then it stays held until someone decides",
            };
            format!(
                "{when} the phase is held, re-checked at every evaluation, and advances once \
                 no gate fires; at most {max}, {after}."
            )
        }
    }
}

/// The gate as the plan wrote it (`< 5%`), for a gate rule.
fn gate_written(plan: &CheckedPlan, r: &AlertRule) -> String {
    plan.gates
        .iter()
        .find(|g| g.metric == r.metric)
        .map_or_else(String::new, |g| g.written.clone())
}

/// `> 10%` or `< 0.95x stable`: the alert's comparison, for people.
fn comparison_text(plan: &CheckedPlan, r: &AlertRule) -> String {
    let m = &plan.metrics[r.metric];
    match r.condition {
        Condition::Compare {
            op,
            rhs: Rhs::Value(v),
        } => format!("{} {}", op.as_str(), m.unit.show(v)),
        Condition::Compare {
            op,
            rhs: rhs @ Rhs::StableTimes { .. },
        } => format!("{} {}", op.as_str(), lower::show_rhs(rhs, m)),
        Condition::Missing => "missing".into(),
        Condition::Silent => "silent".into(),
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
/// link.
pub(crate) fn runbook_url(plan: &CheckedPlan, r: &AlertRule) -> String {
    match &plan.monitoring.runbook_url {
        Some(base) => {
            let base = base.split('#').next().unwrap_or(base);
            format!("{base}#{}", anchors::anchor(r.kind, &r.id))
        }
        None => anchors::link(r),
    }
}

/// Text that Go templating prints unchanged: every `{{` becomes an action printing `{{`.
/// Prometheus templates alert labels and annotations, Alertmanager some of its settings.
pub(crate) fn template_literal(s: &str) -> String {
    s.replace("{{", "{{\"{{\"}}")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// How lawsker's phase `beta` ends.
    const BETA: PhaseEnd = PhaseEnd::Duration;

    fn lawsker_with(edit: impl FnOnce(&mut yaml_serde::Value)) -> CheckedPlan {
        let mut doc: yaml_serde::Value =
            yaml_serde::from_str(include_str!("../../plans/lawsker.yaml")).unwrap();
        edit(&mut doc);
        let src = crate::source::Source::new("t.yaml".into(), yaml_serde::to_string(&doc).unwrap());
        crate::pipeline::compile(src).plan.expect("valid").plan
    }

    #[test]
    fn summaries_give_the_value_in_the_metrics_unit() {
        let plan = lawsker_with(|_| {});
        let rules = lower::alert_rules(&plan);
        let summary = |alert: &str| {
            let r = rules.iter().find(|r| r.alert == alert).expect(alert);
            annotations(&plan, r, "beta", BETA)["summary"].clone()
        };
        let s = summary("CanaryRollbackErrorRate");
        assert_eq!(
            s.template(),
            "error_rate is {{ $value | humanizePercentage }} (> 10% for 5m)"
        );
        assert_eq!(s.expand(0.2345), "error_rate is 23.45% (> 10% for 5m)");
        let s = summary("CanaryRollbackResponseTimeP95");
        assert_eq!(
            s.expand(6543.2),
            "response_time_p95 is 6543ms (> 5000ms for 10m)"
        );
        let s = summary("CanaryGateConversionRate");
        assert_eq!(
            s.expand(0.5),
            "conversion_rate is 50% (< 0.95x stable for 5m; gate: >= 95% of stable)"
        );
        let s = summary("CanaryGateDbConnections");
        assert_eq!(
            s.expand(85.0),
            "db_connections is 85 (>= 80 for 5m; gate: < 80)"
        );
        // No data has no value to give.
        let s = summary("CanaryNoDataErrorRate");
        assert!(!s.template().contains("$value"));
        assert_eq!(
            s.expand(f64::NAN),
            "the canary reports no value for error_rate"
        );
    }

    #[test]
    fn gate_actions_follow_the_gate_policy_and_only_warn_at_full_traffic() {
        let action = |plan: &CheckedPlan, phase: &str| {
            let rules = lower::alert_rules(plan);
            let r = rules.iter().find(|r| r.kind == RuleKind::Gate).unwrap();
            let i = plan.phases.iter().position(|p| p.name == phase).unwrap();
            annotations(plan, r, phase, PhaseEnd::of(plan, i))["action"].expand(0.5)
        };
        let plan = lawsker_with(|_| {});
        let a = action(&plan, "beta");
        assert!(
            a.contains("when the phase's duration is up, the release rolls back"),
            "{a}"
        );
        assert!(!a.contains("held"), "{a}");
        let a = action(&plan, "production");
        assert!(a.starts_with("At 100% gates only warn"), "{a}");
        assert!(!a.contains("advance"), "{a}");
        let hold = |then: &str| {
            lawsker_with(|d| {
                d["gate_policy"] = yaml_serde::from_str(&format!(
                    "{{on_failure: hold, max_hold: 12h, after_max_hold: {then}}}"
                ))
                .unwrap();
            })
        };
        let a = action(&hold("rollback"), "alpha");
        assert!(
            a.contains("when the phase's duration is up, the phase is held"),
            "{a}"
        );
        assert!(a.contains("at most 12h, then it rolls back"), "{a}");
        let a = action(&hold("stay"), "gamma");
        assert!(
            a.contains("at most 12h, then it stays held until someone decides"),
            "{a}"
        );
        assert!(action(&hold("stay"), "production").starts_with("At 100% gates only warn"));
    }

    #[test]
    fn user_text_is_a_template_literal_and_expands_as_written() {
        let plan = lawsker_with(|d| {
            d["metrics"]["bug_report_rate"]["description"] =
                yaml_serde::Value::String("bugs {{ .x }} {{$value}}".into());
            d["gates"]["bug_report_rate"] = yaml_serde::Value::String("< 20%".into());
        });
        let rules = lower::alert_rules(&plan);
        let r = rules
            .iter()
            .find(|r| r.alert == "CanaryGateBugReportRate")
            .unwrap();
        let a = annotations(&plan, r, "beta", BETA);
        let d = &a["description"];
        assert!(
            d.template()
                .contains(r#"bugs {{"{{"}} .x }} {{"{{"}}$value}}"#)
        );
        assert!(d.expand(0.3).contains("bugs {{ .x }} {{$value}}"));
        // The summary's own template stays a template.
        assert!(
            a["summary"]
                .template()
                .contains("{{ $value | humanizePercentage }}")
        );
    }

    /// Every hostile description the schema lets through reaches Prometheus as a template
    /// literal: with the escapes and our value action taken out, no `{{` is left.
    #[test]
    fn hostile_descriptions_are_template_literals() {
        for v in crate::render::hostile::corpus() {
            let mut doc: yaml_serde::Value =
                yaml_serde::from_str(include_str!("../../plans/lawsker.yaml")).unwrap();
            doc["metrics"]["bug_report_rate"]["description"] = yaml_serde::Value::String(v.clone());
            let src =
                crate::source::Source::new("t.yaml".into(), yaml_serde::to_string(&doc).unwrap());
            let Some(lowered) = crate::pipeline::compile(src).plan else {
                continue;
            };
            let plan = &lowered.plan;
            for r in &lowered.rules {
                for (k, t) in annotations(plan, r, "beta", BETA) {
                    let left = t.template().replace(r#"{{"{{"}}"#, "").replace(
                        ValueFormat::for_unit(plan.metrics[r.metric].unit).template(),
                        "",
                    );
                    assert!(!left.contains("{{"), "{k} of {}: {left}", r.alert);
                    assert_eq!(
                        t.template().matches(r#"{{"{{"}}"#).count(),
                        t.expand(0.5).matches("{{").count()
                    );
                }
            }
        }
    }

    #[test]
    fn runbook_urls_use_the_published_runbook() {
        let plan = lawsker_with(|_| {});
        let rules = lower::alert_rules(&plan);
        assert_eq!(
            runbook_url(&plan, &rules[0]),
            "https://docs.lawsker.com/releases/lawsker/RUNBOOK.md#rollback-error_rate"
        );
        let plan = lawsker_with(|d| {
            d.as_mapping_mut().unwrap().remove("monitoring");
        });
        assert_eq!(
            runbook_url(&plan, &rules[0]),
            "RUNBOOK.md#rollback-error_rate"
        );
    }

    #[test]
    fn template_text_is_escaped() {
        assert_eq!(template_literal("a {{ b }}"), "a {{\"{{\"}} b }}");
        assert_eq!(template_literal("plain"), "plain");
    }
}
