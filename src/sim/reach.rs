//! Rules the simulation can never fire, found from the model before any trial runs: a
//! rule that cannot fire is a rule that "held" in every trial, and the report would count
//! it so. Each is a warning at the rule's threshold in the plan, saying why:
//!
//! - a latency quantile compared with a threshold at or above the histogram's largest
//!   finite bucket (`histogram_quantile` never returns more than that bound: a quantile in
//!   the `+Inf` bucket is reported as the largest finite bound);
//! - a custom metric whose model never reaches the threshold: without noise its value
//!   only moves between its healthy mean and the levels the scenarios' faults give it;
//!   with noise, when every scrape the rule needs in a row (its `for` at the evaluation
//!   interval) would have to be a draw so far out that no trial of the run is likely to
//!   see it (the chance is given).
//!
//! Gates are rules too: a gate that can never fail lets every phase advance whatever the
//! canary does.

use crate::check::{Builtin, CheckedPlan};
use crate::diagnostic::Diagnostic;
use crate::lower::{AlertRule, Condition, Rhs, RuleKind};
use crate::model::{Op, Unit, trim};
use crate::pointer;
use crate::promql::MetricExpr;
use crate::sim::scenario::{FaultKind, Scenarios};
use statrs::function::erf::erfc;

/// A per-trial chance of firing below this (over every trial of the run) is "never".
const NEGLIGIBLE: f64 = 1e-9;

/// Warnings for the rules of `rules` (rollbacks and gates) that cannot fire in any
/// scenario of `scenarios`, at their thresholds in the plan.
pub(crate) fn never_fires(
    plan: &CheckedPlan,
    rules: &[AlertRule],
    scenarios: &Scenarios,
    trials: u64,
) -> Vec<Diagnostic> {
    let eval_ms = plan.monitoring.evaluation_interval.millis().max(1);
    let release_ms: u64 = plan
        .phases
        .iter()
        .filter_map(|p| p.duration.map(|d| d.millis()))
        .sum();
    let evaluations = (release_ms / eval_ms).max(1) as f64;
    let mut out = Vec::new();
    for r in rules {
        if r.kind == RuleKind::NoData {
            continue;
        }
        let Condition::Compare { op, rhs } = r.condition else {
            continue;
        };
        let m = &plan.metrics[r.metric];
        let why = match (m.builtin, &m.expr) {
            (Some(Builtin::ResponseTimeP95), MetricExpr::Quantile { scale, .. }) => {
                latency_ceiling(op, rhs, scenarios, *scale, m.unit)
            }
            (None, _) => {
                // Consecutive evaluations that must all hold: the first, then every one
                // until `for` has passed.
                let runs = r.for_ms.div_ceil(eval_ms) + 1;
                custom_out_of_reach(plan, r, op, rhs, scenarios, runs, evaluations, trials)
            }
            _ => None,
        };
        let Some(why) = why else { continue };
        let (pointer, what) = match r.kind {
            RuleKind::Gate => (
                format!("/gates/{}", pointer::escape(&m.name)),
                format!("the gate on `{}` can never fail", m.name),
            ),
            _ => {
                let i = plan
                    .rollbacks
                    .iter()
                    .position(|x| x.id == r.id)
                    .unwrap_or(0);
                (
                    format!("/rollback_conditions/{i}/threshold"),
                    format!("the rollback condition `{}` can never fire", r.id),
                )
            }
        };
        out.push(
            Diagnostic::warning(
                "rule-cannot-fire",
                pointer,
                format!("{what} in this simulation: {why}"),
            )
            .with_hint(match m.builtin {
                Some(_) => "add buckets above the threshold (`baseline.buckets` in the scenario file, and in the service's histogram), or lower the threshold".to_string(),
                None => format!(
                    "model `{}` as it behaves (`baseline.metrics`), add a scenario whose fault moves it past the threshold (a fault's `metrics`), or revise the threshold",
                    m.name
                ),
            }),
        );
    }
    out
}

/// Why a latency quantile cannot be past `rhs`: the histogram tops out below it.
fn latency_ceiling(
    op: Op,
    rhs: Rhs,
    scenarios: &Scenarios,
    scale: f64,
    unit: Unit,
) -> Option<String> {
    let Rhs::Value(v) = rhs else { return None };
    let top = scenarios.baseline.buckets.last()? * scale;
    let never = match op {
        Op::Gt => v >= top,
        Op::Ge => v > top,
        Op::Lt | Op::Le => false,
    };
    never.then(|| {
        format!(
            "`histogram_quantile` never returns more than the largest finite bucket bound, {}, and the threshold is {}",
            unit.show(top),
            unit.show(v)
        )
    })
}

/// The lowest and highest level (before noise) the canary's custom metric takes in any
/// scenario: its healthy mean and each fault's level on it, at the share of users the
/// fault touches. The stable track stays at the mean.
fn levels(metric: usize, mean: f64, scenarios: &Scenarios) -> (f64, f64) {
    let mut lo_hi = (mean, mean);
    for s in &scenarios.scenarios {
        let Some(f) = &s.fault else { continue };
        for &(i, level) in &f.metrics {
            if i == metric {
                let affected = match f.kind {
                    FaultKind::Partial { users } => users,
                    _ => 1.0,
                };
                let at = mean + affected * (level - mean);
                lo_hi = (lo_hi.0.min(at), lo_hi.1.max(at));
            }
        }
    }
    lo_hi
}

/// The upper tail of the standard normal beyond `k`.
fn tail(k: f64) -> f64 {
    0.5 * erfc(k / std::f64::consts::SQRT_2)
}

/// Why a custom metric's rule cannot fire: the distance from the levels its model reaches
/// to the threshold, and, with noise, how unlikely `runs` such draws in a row are.
#[allow(clippy::too_many_arguments)]
fn custom_out_of_reach(
    plan: &CheckedPlan,
    r: &AlertRule,
    op: Op,
    rhs: Rhs,
    scenarios: &Scenarios,
    runs: u64,
    evaluations: f64,
    trials: u64,
) -> Option<String> {
    let m = &plan.metrics[r.metric];
    let g = scenarios.baseline.custom.get(&m.name)?;
    let (lo, hi) = levels(r.metric, g.mean, scenarios);
    let max = if m.unit == Unit::Ratio {
        1.0
    } else {
        f64::INFINITY
    };
    let high = matches!(op, Op::Gt | Op::Ge);
    // The condition as "canary minus the limit, past 0": its best level and its spread.
    let (gap, spread, limit) = match rhs {
        Rhs::Value(v) => {
            let best = if high { hi.min(max) } else { lo.max(0.0) };
            (
                if high { v - best } else { best - v },
                g.noise,
                m.unit.show(v),
            )
        }
        Rhs::StableTimes { factor, .. } => {
            let stable = factor * g.mean;
            let best = if high { hi } else { lo };
            (
                if high { stable - best } else { best - stable },
                g.noise * (1.0 + factor * factor).sqrt(),
                format!("{}x stable's {}", trim(factor), m.unit.show(g.mean)),
            )
        }
    };
    let levels = if lo == hi {
        format!("its model keeps it at {}", m.unit.show(lo))
    } else {
        format!(
            "its model moves it between {} and {}",
            m.unit.show(lo),
            m.unit.show(hi)
        )
    };
    let strict = matches!(op, Op::Gt | Op::Lt);
    if spread == 0.0 {
        let never = if strict { gap >= 0.0 } else { gap > 0.0 };
        return never.then(|| {
            format!(
                "`{}` has no noise and {levels}, never {} {limit}",
                m.name,
                op.as_str()
            )
        });
    }
    if gap <= 0.0 {
        return None;
    }
    let k = gap / spread;
    let per_trial = evaluations * tail(k).powf(runs as f64);
    (per_trial * trials as f64 <= NEGLIGIBLE).then(|| {
        format!(
            "{levels} with a noise of {}, and `{} {} {limit}` needs {runs} evaluation{} in a row each {:.1} standard deviations out (a chance {} per trial)",
            m.unit.show(g.noise),
            m.name,
            op.as_str(),
            if runs == 1 { "" } else { "s" },
            k,
            if per_trial < 1e-100 {
                "below 1e-100".to_string()
            } else {
                format!("of about {per_trial:.0e}")
            }
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The quantile reaches the largest finite bound itself (a rank in the `+Inf` bucket):
    /// `>` that bound never holds, `>=` it does.
    #[test]
    fn a_latency_threshold_at_the_top_bucket() {
        let source = crate::source::Source::new(
            "s.yaml".into(),
            "baseline: { buckets: [0.1, 1, 2.5] }\nscenarios:\n  - name: h\n".into(),
        )
        .holding(crate::source::Kind::Scenarios);
        let plan = crate::pipeline::compile_file(
            &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("plans/admin-console.yaml"),
        )
        .expect("example")
        .plan
        .expect("valid");
        let s = crate::sim::scenario::load(&source, &plan.plan, &|p| p.to_string())
            .0
            .expect("loads");
        let never = |op, v| latency_ceiling(op, Rhs::Value(v), &s, 1000.0, Unit::Milliseconds);
        assert!(never(Op::Gt, 2500.0).is_some());
        assert!(never(Op::Gt, 2499.0).is_none());
        assert!(never(Op::Ge, 2500.0).is_none());
        assert!(never(Op::Ge, 2500.5).is_some());
        assert!(never(Op::Lt, 1e9).is_none());
    }

    #[test]
    fn the_normal_tail() {
        assert!((tail(0.0) - 0.5).abs() < 1e-15);
        assert!((tail(1.959_963_984_540_054) - 0.025).abs() < 1e-9);
        assert!(tail(40.0) < 1e-300);
    }
}
