//! Checks of one rollback condition against its metric and the rest of the plan: its id is
//! unique, its floor looks the metric's bad way, its amounts fit the unit, it can trigger
//! and can hold, it is not stricter than the metric's gate, and every phase outlasts it.

use super::checked::{GateRule, Limit, Metric, Phase, RollbackRule};
use super::limit::{self, max_of, noun, range_hint};
use crate::diagnostic::Diagnostic;
use crate::model::{Amount, Bad, Op, Plan, RollbackCondition, Threshold, Unit};

/// What a rollback condition is checked against: the plan (its phases as written, for
/// pointers), the checked phases, the resolved metrics and the checked gates.
pub(super) struct Context<'a> {
    pub(super) plan: &'a Plan,
    pub(super) phases: &'a [Phase],
    pub(super) metrics: &'a [Metric],
    pub(super) gates: &'a [GateRule],
}

impl Context<'_> {
    /// The rule for condition number `i` (`rc`) on metric number `metric`, or None when a
    /// check fails (reported in `f`, as are warnings). `earlier`: the rules of the
    /// conditions before it.
    pub(super) fn check(
        &self,
        earlier: &[RollbackRule],
        metric: usize,
        i: usize,
        rc: &RollbackCondition,
        f: &mut Vec<Diagnostic>,
    ) -> Option<RollbackRule> {
        let m = &self.metrics[metric];
        let pointer = format!("/rollback_conditions/{i}/threshold");
        let id = rc.id.clone().unwrap_or_else(|| rc.metric.clone());
        if let Some(j) = earlier.iter().position(|r| r.id == id) {
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
        let past = match floor(rc, m, bad_op, &pointer) {
            Ok(past) => past,
            Err(d) => {
                f.push(d);
                return None;
            }
        };
        let limit = limit::from_threshold(&rc.threshold, past, m, &pointer, f)?;
        f.extend(limit::floorless(
            limit,
            m,
            &pointer,
            &format!("rollback when {} > {}", rc.metric, rc.threshold),
            "add the level the canary must also pass",
            |level| format!("`{} and above {}`", rc.threshold, Unit::Ratio.show(level)),
        ));
        if let Limit::Absolute(v) = limit {
            if let Some(d) = out_of_range(rc, m, v, &pointer) {
                f.push(d);
                return None;
            }
            f.extend(latency_looks_like_seconds(rc, m, v, &pointer));
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
                        show(limit, m.unit)
                    ),
                )
                .with_hint(if m.bad == Bad::High {
                    "for a metric that is bad when high, roll back above stable: e.g. `2x stable`"
                } else {
                    "for a metric that is bad when low, roll back below stable: e.g. `80% of stable`"
                }),
            );
        }
        if let Some(g) = self.gates.iter().find(|g| g.metric == metric)
            && stricter(bad_op, limit, g.limit)
        {
            f.push(
                Diagnostic::warning("rollback-stricter-than-gate", pointer, format!(
                    "rollback when {} {} {} is stricter than its gate `{}`: it rolls back releases the gate calls healthy",
                    rc.metric, bad_op.as_str(), show(limit, m.unit), g.written
                ))
                .with_hint("a rollback threshold is usually looser than the gate (gates hold a phase, rollbacks abort it)"),
            );
        }
        self.phases_shorter_than(rc, &id, f);
        Some(RollbackRule {
            id,
            metric,
            limit,
            for_: rc.duration,
            written: rc.threshold.to_string(),
            // Set with the request counts ([`super::min_requests`]).
            min_requests: None,
        })
    }

    /// Every phase shorter than the condition's duration: the rule cannot fire in it.
    fn phases_shorter_than(&self, rc: &RollbackCondition, id: &str, f: &mut Vec<Diagnostic>) {
        for p in self.phases {
            if let Some(d) = p.duration
                && d.millis() < rc.duration.millis()
            {
                let pi = self
                    .plan
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
    }
}

/// The level a comparison with stable must also pass (`… and above 1%`), as a comparison
/// in the metric's bad direction `bad_op`; an error when it looks the other way.
fn floor(
    rc: &RollbackCondition,
    m: &Metric,
    bad_op: Op,
    pointer: &str,
) -> Result<Option<(Op, Amount)>, Diagnostic> {
    let Threshold::Relative {
        past: Some((side, amount)),
        ..
    } = rc.threshold
    else {
        return Ok(None);
    };
    if side == m.bad {
        return Ok(Some((bad_op, amount)));
    }
    let (wrote, want) = match m.bad {
        Bad::High => ("below", "above"),
        Bad::Low => ("above", "below"),
    };
    Err(Diagnostic::error(
        "floor-direction",
        pointer.to_string(),
        format!(
            "`{}` is bad when {}, so the canary must also be {want} the amount, not {wrote} it",
            rc.metric,
            if m.bad == Bad::High { "high" } else { "low" }
        ),
    )
    .with_hint(format!("write `… and {want} {amount}`")))
}

/// An absolute threshold `v` that no value of the metric's unit is past (the rule never
/// triggers) or that every value is past (it always does).
fn out_of_range(rc: &RollbackCondition, m: &Metric, v: f64, pointer: &str) -> Option<Diagnostic> {
    let message = if let Some(why) = never_triggers(m.unit, m.bad, v) {
        format!("rollback on `{}` can never trigger: {why}", rc.metric)
    } else if let Some(why) = always_triggers(m.unit, m.bad, v) {
        format!("rollback on `{}` would always trigger: {why}", rc.metric)
    } else {
        return None;
    };
    Some(
        Diagnostic::error("impossible-threshold", pointer.to_string(), message).with_hint(
            percent_slip(m.unit, &rc.threshold, v)
                .unwrap_or_else(|| range_hint(m.unit).to_string()),
        ),
    )
}

/// A latency threshold in milliseconds written as a bare number below 10: seconds meant.
fn latency_looks_like_seconds(
    rc: &RollbackCondition,
    m: &Metric,
    v: f64,
    pointer: &str,
) -> Option<Diagnostic> {
    (m.unit == Unit::Milliseconds
        && matches!(rc.threshold, Threshold::Absolute(Amount::Number(_)))
        && v > 0.0
        && v < 10.0)
        .then(|| {
            Diagnostic::warning(
                "latency-looks-like-seconds",
                pointer.to_string(),
                format!("threshold `{v}` is {v} milliseconds for `{}`", rc.metric),
            )
            .with_hint(format!(
                "a bare number is in milliseconds here; if you meant seconds write `{v}s`"
            ))
        })
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

fn never_triggers(unit: Unit, bad: Bad, v: f64) -> Option<String> {
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

fn always_triggers(unit: Unit, bad: Bad, v: f64) -> Option<String> {
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

/// A limit in the metric's unit, for messages: `10%`, `2x stable and > 1%`.
fn show(l: Limit, unit: Unit) -> String {
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
