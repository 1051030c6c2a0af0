//! The test file's shape: the structures promtool reads (`rule_files`, `tests` with
//! `input_series`, `alert_rule_test` and `promql_expr_test`), a phase's expected alerts
//! (labels and annotations as Prometheus renders them), and promtool's series notation.

use super::series::{Fed, slots};
use crate::check::CheckedPlan;
use crate::lower::AlertRule;
use crate::prom::Series;
use crate::promql::{MatchOp, Matcher, Selector, Track};
use crate::render::alerting::{float_literal, rule_labels};
use crate::render::annotations::{PhaseEnd, annotations};
use crate::render::yaml;
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Write;

#[derive(Serialize)]
struct TestFile<'a> {
    rule_files: Vec<String>,
    evaluation_interval: String,
    tests: Vec<TestGroup<'a>>,
}

#[derive(Serialize)]
struct TestGroup<'a> {
    name: &'a str,
    interval: &'a str,
    input_series: &'a [InputSeries],
    alert_rule_test: Vec<AlertTest<'a>>,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    promql_expr_test: &'a [ExprTest],
}

#[derive(Serialize)]
pub(super) struct InputSeries {
    series: String,
    values: String,
}

#[derive(Serialize)]
struct AlertTest<'a> {
    eval_time: &'a str,
    alertname: &'a str,
    exp_alerts: &'a [ExpAlert],
}

#[derive(Serialize)]
struct ExpAlert {
    exp_labels: BTreeMap<String, String>,
    exp_annotations: BTreeMap<String, String>,
}

#[derive(Serialize)]
pub(super) struct ExprTest {
    pub(super) expr: String,
    pub(super) eval_time: String,
    pub(super) exp_samples: Vec<ExpSample>,
}

#[derive(Serialize)]
pub(super) struct ExpSample {
    pub(super) labels: String,
    pub(super) value: f64,
}

/// One test group, phase apart: its alert checks name rules, whose expected alert each
/// phase fills in.
pub(super) struct Group {
    pub(super) name: String,
    pub(super) interval: String,
    pub(super) input_series: Vec<InputSeries>,
    pub(super) checks: Vec<Check>,
    pub(super) promql_expr_test: Vec<ExprTest>,
}

/// An `alert_rule_test` case: rule `rule` (an index into the rules) at `eval_time`,
/// firing (with the alert's value then, which its summary prints) or silent.
pub(super) struct Check {
    pub(super) eval_time: String,
    pub(super) rule: usize,
    pub(super) fires: Option<f64>,
}

/// The YAML of the unit-test file of phase `phase` (its name), testing the sibling file
/// `<phase>.rules.yml`, from the phase-independent test groups.
pub(super) fn body(
    plan: &CheckedPlan,
    rules: &[AlertRule],
    groups: &[Group],
    phase: &str,
    end: PhaseEnd,
) -> String {
    // Only firing checks need their expected alert.
    let expected: Vec<Vec<Option<ExpAlert>>> = groups
        .iter()
        .map(|g| {
            g.checks
                .iter()
                .map(|c| {
                    c.fires
                        .map(|v| expected_alert(plan, &rules[c.rule], phase, end, v))
                })
                .collect()
        })
        .collect();
    let tests = groups
        .iter()
        .zip(&expected)
        .map(|(g, exp)| TestGroup {
            name: &g.name,
            interval: &g.interval,
            input_series: &g.input_series,
            alert_rule_test: g
                .checks
                .iter()
                .zip(exp)
                .map(|(c, e)| AlertTest {
                    eval_time: &c.eval_time,
                    alertname: &rules[c.rule].alert,
                    exp_alerts: e.as_slice(),
                })
                .collect(),
            promql_expr_test: &g.promql_expr_test,
        })
        .collect();
    let file = TestFile {
        rule_files: vec![format!("{phase}.rules.yml")],
        evaluation_interval: plan.monitoring.evaluation_interval.to_string(),
        tests,
    };
    yaml::to_string(&file).unwrap_or_default()
}

/// The firing alert of `r` in phase `phase` whose value is `value`: the series' labels
/// (plan, service, track) and the rule's, and the annotations as Prometheus renders them.
fn expected_alert(
    plan: &CheckedPlan,
    r: &AlertRule,
    phase: &str,
    end: PhaseEnd,
    value: f64,
) -> ExpAlert {
    let mut labels: BTreeMap<String, String> = BTreeMap::from([
        ("plan".to_string(), plan.name.clone()),
        ("service".to_string(), plan.service.name.clone()),
        ("track".to_string(), Track::Canary.as_str().to_string()),
    ]);
    for (k, v) in rule_labels(plan, r, phase) {
        labels.insert(k.to_string(), v);
    }
    ExpAlert {
        exp_labels: labels,
        exp_annotations: annotations(plan, r, phase, end)
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.expand(value)))
            .collect(),
    }
}

/// The `input_series` of a test: each series' selector and its values in promtool's
/// notation.
pub(super) fn input_series(fed: &Fed, step: i64) -> Vec<InputSeries> {
    fed.series
        .iter()
        .map(|s| InputSeries {
            series: promql(s),
            values: notation(&slots(s, step, fed.slots)),
        })
        .collect()
}

/// The series' selector, for `input_series`.
fn promql(s: &Series) -> String {
    Selector {
        metric: s.name.clone(),
        matchers: s
            .labels
            .iter()
            .map(|(l, v)| Matcher {
                label: l.clone(),
                op: MatchOp::Eq,
                value: v.clone(),
            })
            .collect(),
    }
    .promql("")
}

/// `promtool`'s series notation: `a+bxn` for runs of integers in arithmetic progression
/// (expanded by repeated addition, exact for integers), `axn` for repeats, `_` / `_xn` for
/// missing samples, otherwise each value in full.
fn notation(values: &[Option<f64>]) -> String {
    let int = |v: f64| v.fract() == 0.0 && v.abs() < 9.0e15;
    let mut out = String::with_capacity(8 * values.len());
    let mut i = 0;
    while i < values.len() {
        if i > 0 {
            out.push(' ');
        }
        let mut j = i + 1;
        match values[i] {
            None => {
                while j < values.len() && values[j].is_none() {
                    j += 1;
                }
                out.push('_');
                if j - i > 1 {
                    let _ = write!(out, "x{}", j - i);
                }
            }
            Some(a) => {
                let step = match values.get(j) {
                    Some(Some(b)) if int(a) && int(*b) => *b - a,
                    _ => 0.0,
                };
                while j < values.len()
                    && values[j].is_some_and(|v| {
                        let want = a + step * (j - i) as f64;
                        v.to_bits() == want.to_bits() && (step == 0.0 || int(v))
                    })
                {
                    j += 1;
                }
                let n = j - i - 1;
                out.push_str(&float_literal(a));
                if n > 0 {
                    if step > 0.0 {
                        out.push('+');
                    }
                    if step != 0.0 {
                        out.push_str(&float_literal(step));
                    }
                    let _ = write!(out, "x{n}");
                }
            }
        }
        i = j;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::series::new_series;
    use super::*;

    #[test]
    fn notation_compresses_exactly() {
        let v = |xs: &[f64]| xs.iter().map(|x| Some(*x)).collect::<Vec<_>>();
        assert_eq!(notation(&v(&[0.0, 10.0, 20.0, 30.0])), "0+10x3");
        assert_eq!(notation(&v(&[5.0, 5.0, 5.0])), "5x2");
        assert_eq!(notation(&v(&[0.45, 0.45, 0.9])), "0.45x1 0.9");
        assert_eq!(notation(&v(&[30.0, 20.0, 10.0])), "30-10x2");
        assert_eq!(
            notation(&[Some(1.0), None, None, Some(2.0), None]),
            "1 _x2 2 _"
        );
        assert_eq!(
            notation(&v(&[0.1, 0.2, 0.30000000000000004])),
            "0.1 0.2 0.30000000000000004"
        );
    }

    #[test]
    fn slots_give_back_the_values() {
        let vals = vec![Some(1.0), None, Some(3.0), None];
        let s = new_series("x", BTreeMap::new(), vals.clone(), 1000);
        assert_eq!(slots(&s, 1000, 4), vals);
        assert_eq!(notation(&slots(&s, 1000, 4)), "1 _ 3 _");
    }
}
