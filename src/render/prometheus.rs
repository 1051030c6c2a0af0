//! `prometheus/<phase>.rules.yml`, the recording and alerting rules Prometheus evaluates
//! during one phase, beside `prometheus/<phase>.test.yml`, their `promtool test rules` unit
//! tests (`promtool_tests`).
//!
//! One rule group named after the plan: first one recording rule per metric and track a
//! rule reads (`service_track:<metric>:<operations>`), then one alerting rule per lowered
//! rule (`lower::alert_rules`, the very rules the simulator evaluates, so the deployed rules
//! and the simulated ones cannot drift), as `alerting` and `annotations` write them.
//!
//! The files of all phases are identical except for the phase an alert names (its `phase`
//! label and its description), whether it is the last (where a gate's `action` says gates
//! only warn), and the silent-canary rule, which only phases that
//! send the canary users have; each phase's compose override mounts its own file. So the
//! YAML of both files is serialised once per set of phases alike in the last two and each
//! phase's name stamped into it ([`per_phase`]). The rollback and promotion steps have no rules: nothing is left to
//! watch.

use super::alerting::{alert_expr, recorded, rule_labels};
use super::annotations::{PhaseEnd, annotations, template_literal};
use super::artifact::{Artifact, header};
use super::{promtool_tests, yaml};
use crate::check::CheckedPlan;
use crate::lower::{self, AlertRule};
use crate::model::Duration;
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
pub(crate) fn render(plan: &CheckedPlan, rules: &[AlertRule]) -> Vec<Artifact> {
    // Phases that send the canary users have every rule; the others (0% and no group, if
    // any) all but the silent-canary rule. Within each set the files differ only by the
    // phase their alerts name and how it ends.
    let mut files: Vec<Option<[Artifact; 2]>> = plan.phases.iter().map(|_| None).collect();
    for serves in [true, false] {
        let phases: Vec<usize> = (0..plan.phases.len())
            .filter(|&i| plan.canary_serves(i) == serves)
            .collect();
        if phases.is_empty() {
            continue;
        }
        let rules: Vec<AlertRule> = rules
            .iter()
            .filter(|r| r.runs_in(phases[0]))
            .cloned()
            .collect();
        // The tests are the same for every phase but for the phase the alerts name and
        // how it ends.
        let tests = promtool_tests::Tests::new(plan, &rules);
        for end in [PhaseEnd::Duration, PhaseEnd::Last] {
            let alike: Vec<usize> = phases
                .iter()
                .copied()
                .filter(|&i| PhaseEnd::of(plan, i) == end)
                .collect();
            if alike.is_empty() {
                continue;
            }
            let names: Vec<&str> = alike
                .iter()
                .map(|&i| plan.phases[i].name.as_str())
                .collect();
            for (i, files_of) in alike
                .iter()
                .zip(render_phases(plan, &rules, &tests, &names, end))
            {
                files[*i] = Some(files_of);
            }
        }
    }
    files.into_iter().flatten().flatten().collect()
}

/// The rules and unit-test files of the phases named `names`, which all run `rules` and
/// end as `end`.
fn render_phases(
    plan: &CheckedPlan,
    rules: &[AlertRule],
    tests: &promtool_tests::Tests,
    names: &[&str],
    end: PhaseEnd,
) -> Vec<[Artifact; 2]> {
    // Each alerting rule names the phase twice: its `phase` label, its description.
    let rule_bodies = per_phase(names, 2 * rules.len(), |phase| {
        rules_body(plan, rules, phase, end)
    });
    let test_bodies = per_phase(names, tests.places(), |phase| tests.body(phase, end));
    let mut out = Vec::new();
    for ((phase, rules_yaml), tests_yaml) in names.iter().zip(rule_bodies).zip(test_bodies) {
        out.push([
            Artifact {
                path: format!("prometheus/{phase}.rules.yml"),
                contents: rules_header(plan, phase) + &rules_yaml,
            },
            Artifact {
                path: format!("prometheus/{phase}.test.yml"),
                contents: tests.header(phase) + &tests_yaml,
            },
        ]);
    }
    out
}

/// A string of the phase names' alphabet (`^[a-z][a-z0-9_-]*$`) that stands for the phase
/// while a body is serialised once.
const PHASE_STAMP: &str = "zq-phase-stamp-7f3a9c";

/// `serialise(phase)` for every phase, serialised once: `serialise(PHASE_STAMP)` with each
/// phase's name stamped in place of [`PHASE_STAMP`].
///
/// `places` is how many times `serialise` writes the phase it is given. Stamping gives
/// exactly what `serialise(name)` gives when (a) the stamp and the name are written alike:
/// both plain by the YAML writer's own rule (`yaml::plain`: a phase named `null` or `yes`
/// is quoted as a whole label value), made of characters that are never escaped, never
/// folded (the writer's width is unlimited) and never start a YAML indicator mid-string;
/// and (b) the stamp occurs nowhere but in those `places` (a user string could hold it:
/// then it occurs more often). Otherwise every phase is serialised on its own, which is
/// merely slower.
fn per_phase(phases: &[&str], places: usize, serialise: impl Fn(&str) -> String) -> Vec<String> {
    let plain = |name: &str| {
        !name.is_empty()
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
            && name.as_bytes()[0].is_ascii_lowercase()
            && yaml::plain(name)
    };
    if phases.len() > 1 && plain(PHASE_STAMP) && phases.iter().all(|p| plain(p)) {
        let body = serialise(PHASE_STAMP);
        let parts: Vec<&str> = body.split(PHASE_STAMP).collect();
        if parts.len() == places + 1 {
            return phases.iter().map(|p| parts.join(p)).collect();
        }
    }
    phases.iter().map(|p| serialise(p)).collect()
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

/// The YAML of the rules file of phase `phase` (its name), which ends as `end`.
fn rules_body(plan: &CheckedPlan, rules: &[AlertRule], phase: &str, end: PhaseEnd) -> String {
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
            annotations: annotations(plan, r, phase, end)
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
    yaml::to_string(&file).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

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
        yaml::to_string(&doc).unwrap()
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
        for odd in [
            "null", "true", "false", "1e3", "-a", "A", "yes", "no", "on", "off", "y", "n",
        ] {
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
            include_str!("../../plans/lawsker.yaml").into(),
        );
        let lowered = crate::pipeline::compile(src)
            .plan
            .expect("lawsker is valid");
        let (plan, rules) = (&lowered.plan, &lowered.rules);
        let tests = promtool_tests::Tests::new(plan, rules);
        // The stamp stands exactly where the phase goes: the fast path is taken.
        let rb = rules_body(plan, rules, PHASE_STAMP, PhaseEnd::Duration);
        assert_eq!(rb.matches(PHASE_STAMP).count(), 2 * rules.len());
        let tb = tests.body(PHASE_STAMP, PhaseEnd::Duration);
        assert_eq!(tb.matches(PHASE_STAMP).count(), tests.places());
        let out = render(plan, rules);
        for (i, phase) in plan.phases.iter().enumerate() {
            let p = phase.name.as_str();
            let end = PhaseEnd::of(plan, i);
            let get = |path: String| {
                out.iter()
                    .find(|a| a.path == path)
                    .map(|a| a.contents.clone())
                    .expect("rendered")
            };
            assert_eq!(
                get(format!("prometheus/{p}.rules.yml")),
                rules_header(plan, p) + &rules_body(plan, rules, p, end)
            );
            assert_eq!(
                get(format!("prometheus/{p}.test.yml")),
                tests.header(p) + &tests.body(p, end)
            );
        }
    }
}
