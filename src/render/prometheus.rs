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
//! Every alert carries `summary` (with its current value, in the metric's unit),
//! `description`, `action` and `runbook_url` (`annotations`). Annotations are Go
//! templates to Prometheus: user text in them is written as template literals
//! (`template_literal`), and the one template of ours is the value's formatting
//! ([`super::humanize`]).
//!
//! The files of all phases are identical except for the phase an alert names (its `phase`
//! label and its description); each phase's compose override mounts its own file. So the
//! YAML of both files is serialised once per plan and each phase's name stamped into it
//! ([`per_phase`]; rendering is a whole-process benchmark, and YAML emission was most of
//! it). The rollback and promotion steps have no rules: nothing is left to watch.

use super::humanize::ValueFormat;
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
    // The tests are the same for every phase but for the phase the alerts name.
    let tests = promtool_tests::Tests::new(plan, &rules);
    let names: Vec<&str> = plan.phases.iter().map(|p| p.name.as_str()).collect();
    // Each alerting rule names the phase twice: its `phase` label, its description.
    let rule_bodies = per_phase(&names, 2 * rules.len(), |phase| {
        rules_body(plan, &rules, phase)
    });
    let test_bodies = per_phase(&names, tests.places(), |phase| tests.body(phase));
    let mut out = Vec::new();
    for ((phase, rules_yaml), tests_yaml) in names.iter().zip(rule_bodies).zip(test_bodies) {
        out.push(Artifact {
            path: format!("prometheus/{phase}.rules.yml"),
            contents: rules_header(plan, phase) + &rules_yaml,
        });
        out.push(Artifact {
            path: format!("prometheus/{phase}.test.yml"),
            contents: tests.header(phase) + &tests_yaml,
        });
    }
    out
}

/// A string of the phase names' alphabet (`^[a-z][a-z0-9_-]*$`) that stands for the phase
/// while a body is serialised once.
const PHASE_STAMP: &str = "zq-phase-stamp-7f3a9c";

/// `yaml(phase)` for every phase, serialised once: `yaml(PHASE_STAMP)` with each phase's
/// name stamped in place of [`PHASE_STAMP`].
///
/// `places` is how many times `yaml` writes the phase it is given. Stamping gives exactly
/// what `yaml(name)` gives when (a) the stamp and the name are written alike: both plain
/// YAML scalars (a phase named `null` or `yes` is quoted as a whole label value), made of
/// characters that are never escaped, never folded (the emitter's width is unlimited) and
/// never start a YAML indicator mid-string; and (b) the stamp occurs nowhere but in those
/// `places` (a user string could hold it: then it occurs more often). Otherwise every
/// phase is serialised on its own, which is merely slower.
pub(crate) fn per_phase(
    phases: &[&str],
    places: usize,
    yaml: impl Fn(&str) -> String,
) -> Vec<String> {
    let plain = |name: &str| {
        !name.is_empty()
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
            && name.as_bytes()[0].is_ascii_lowercase()
            && yaml_serde::to_string(name).is_ok_and(|s| s.strip_suffix('\n') == Some(name))
    };
    if phases.len() > 1 && plain(PHASE_STAMP) && phases.iter().all(|p| plain(p)) {
        let body = yaml(PHASE_STAMP);
        let parts: Vec<&str> = body.split(PHASE_STAMP).collect();
        if parts.len() == places + 1 {
            return phases.iter().map(|p| parts.join(p)).collect();
        }
    }
    phases.iter().map(|p| yaml(p)).collect()
}

/// The comment lines opening the rules file of phase `phase`.
fn rules_header(plan: &CheckedPlan, phase: &str) -> String {
    let mut s = header(plan, "#");
    s.push_str(&format!(
        "# Prometheus rules of phase `{phase}`: recording rules per metric and track, then the\n\
         # alerting rules (rollback: critical; gate and no-data: warning).\n\
         # Check: promtool check rules {phase}.rules.yml; test: promtool test rules {phase}.test.yml\n"
    ));
    s
}

/// The YAML of the rules file of phase `phase` (its name).
fn rules_body(plan: &CheckedPlan, rules: &[AlertRule], phase: &str) -> String {
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
                .map(|(k, v)| (k, v.template()))
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
    super::yaml::to_string(&file).unwrap_or_default()
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
/// alert), `group_left` keeps the canary's labels. Its floor is a second comparison of the
/// canary joined with `and`, which keeps the series (same labels) only where both hold.
pub(crate) fn alert_expr(plan: &CheckedPlan, r: &AlertRule) -> String {
    let canary = record_selector(plan, r.metric, Track::Canary);
    match r.condition {
        Condition::Compare {
            op,
            rhs: Rhs::Value(v),
        } => format!("{canary} {} {}", op.as_str(), float(v)),
        Condition::Compare {
            op,
            rhs: Rhs::StableTimes { factor, also },
        } => {
            let relative = format!(
                "{canary} {} ignoring(track) group_left() ({} * {})",
                op.as_str(),
                float(factor),
                record_selector(plan, r.metric, Track::Stable)
            );
            match also {
                None => relative,
                Some((o, v)) => format!("{relative} and {canary} {} {}", o.as_str(), float(v)),
            }
        }
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

/// The labels of a rule's alerts in phase `phase` (as written, before template escaping).
/// The phase is written once (see [`per_phase`]).
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

/// The annotations of a rule's alerts in phase `phase`. The phase is written once, in the
/// description (see [`per_phase`]).
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
    let condition = condition_text(plan, r);
    let is = |rest: String| {
        Text::literal(format!("{} is ", m.name))
            .value(ValueFormat::for_unit(m.unit))
            .push(&rest)
    };
    let (summary, description, action) = match r.kind {
        RuleKind::Rollback => (
            is(format!(" ({condition}{lasting})")),
            format!(
                "Rollback condition `{}` met by {canary}: {what} is {condition}{lasting}.",
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
            "Hold the phase: do not advance while this alert fires. Compare the canary with \
             stable; roll back by hand if it keeps getting worse."
                .to_string(),
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

/// The gate as the plan wrote it (`< 5%`), for a gate rule.
fn gate_written(plan: &CheckedPlan, r: &AlertRule) -> String {
    plan.gates
        .iter()
        .find(|g| g.metric == r.metric)
        .map_or_else(String::new, |g| g.written.clone())
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
            rhs: rhs @ Rhs::StableTimes { .. },
        } => format!("{} {}", op.as_str(), crate::lower::show_rhs(rhs, m)),
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

    /// A body naming the phase twice, as an alerting rule does: a whole label value and
    /// inside a longer string; `extra` is a user string.
    fn body(phase: &str, extra: &str) -> String {
        let doc = BTreeMap::from([
            ("phase", phase.to_string()),
            (
                "description",
                format!("Met by the canary in phase `{phase}`: roll back."),
            ),
            ("summary", extra.to_string()),
        ]);
        yaml_serde::to_string(&doc).unwrap()
    }

    /// `per_phase` of `body`, and how many bodies it serialised.
    fn stamped(phases: &[&str], extra: &str) -> (Vec<String>, usize) {
        let calls = std::cell::Cell::new(0);
        let out = per_phase(phases, 2, |p| {
            calls.set(calls.get() + 1);
            body(p, extra)
        });
        (out, calls.get())
    }

    #[test]
    fn phases_are_stamped_into_one_body() {
        let phases = ["alpha", "beta-2", "g_3", "x"];
        let (out, calls) = stamped(&phases, "error_rate > 10%");
        assert_eq!(calls, 1, "serialised once");
        for (p, got) in phases.iter().zip(&out) {
            assert_eq!(*got, body(p, "error_rate > 10%"));
        }
    }

    #[test]
    fn stamping_falls_back_when_it_could_differ() {
        // Names YAML reads as something else than a string are quoted as label values (or
        // are not phase names): each phase is serialised on its own.
        for odd in ["null", "true", "false", "1e3", "-a", "A"] {
            let (out, calls) = stamped(&["alpha", odd], "");
            assert_eq!(calls, 2, "{odd}");
            assert_eq!(out[1], body(odd, ""), "{odd}");
        }
        // Whichever path is taken, the result is phase-by-phase serialisation's.
        for name in [
            "nan", "yes", "no", "on", "off", "y", "n", "inf", "infinity", "x-1", "a_",
        ] {
            let (out, _) = stamped(&["alpha", name], "");
            assert_eq!(out[1], body(name, ""), "{name}");
        }
        // A user string holding the stamp: the stamped body is found out and dropped.
        let extra = format!("see {PHASE_STAMP}");
        let (out, calls) = stamped(&["alpha", "beta"], &extra);
        assert_eq!(calls, 1 + 2);
        assert_eq!(out[0], body("alpha", &extra));
        assert!(out[1].contains(PHASE_STAMP));
    }

    #[test]
    fn lawsker_is_stamped_and_equals_phase_by_phase_rendering() {
        let src = crate::source::Source::new(
            "plans/lawsker.yaml".into(),
            std::path::PathBuf::from("plans/lawsker.yaml"),
            include_str!("../../plans/lawsker.yaml").into(),
        );
        let plan = crate::pipeline::compile(src)
            .plan
            .expect("lawsker is valid");
        let rules = lower::alert_rules(&plan);
        let tests = promtool_tests::Tests::new(&plan, &rules);
        // The stamp stands exactly where the phase goes: the fast path is taken.
        let rb = rules_body(&plan, &rules, PHASE_STAMP);
        assert_eq!(rb.matches(PHASE_STAMP).count(), 2 * rules.len());
        let tb = tests.body(PHASE_STAMP);
        assert_eq!(tb.matches(PHASE_STAMP).count(), tests.places());
        let out = render(&plan);
        for phase in &plan.phases {
            let p = phase.name.as_str();
            let get = |path: String| {
                out.iter()
                    .find(|a| a.path == path)
                    .map(|a| a.contents.clone())
                    .expect("rendered")
            };
            assert_eq!(
                get(format!("prometheus/{p}.rules.yml")),
                rules_header(&plan, p) + &rules_body(&plan, &rules, p)
            );
            assert_eq!(
                get(format!("prometheus/{p}.test.yml")),
                tests.header(p) + &tests.body(p)
            );
        }
    }

    fn lawsker_with(edit: impl FnOnce(&mut yaml_serde::Value)) -> CheckedPlan {
        let mut doc: yaml_serde::Value =
            yaml_serde::from_str(include_str!("../../plans/lawsker.yaml")).unwrap();
        edit(&mut doc);
        let src = crate::source::Source::new(
            "t.yaml".into(),
            std::path::PathBuf::from("t.yaml"),
            yaml_serde::to_string(&doc).unwrap(),
        );
        crate::pipeline::compile(src).plan.expect("valid")
    }

    #[test]
    fn summaries_give_the_value_in_the_metrics_unit() {
        let plan = lawsker_with(|_| {});
        let rules = lower::alert_rules(&plan);
        let summary = |alert: &str| {
            let r = rules.iter().find(|r| r.alert == alert).expect(alert);
            annotations(&plan, r, "beta")["summary"].clone()
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
        let a = annotations(&plan, r, "beta");
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
            let src = crate::source::Source::new(
                "t.yaml".into(),
                std::path::PathBuf::from("t.yaml"),
                yaml_serde::to_string(&doc).unwrap(),
            );
            let Some(plan) = crate::pipeline::compile(src).plan else {
                continue;
            };
            for r in lower::alert_rules(&plan) {
                for (k, t) in annotations(&plan, &r, "beta") {
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
