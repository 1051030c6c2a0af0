//! Checks of one gate against its metric: it calls the healthy side healthy, its `or …`
//! looks the same way, its amounts fit the metric's unit, it can both hold and fail, and a
//! latency in milliseconds is not seconds written without their unit.

use super::checked::{GateRule, Limit, Metric};
use super::limit::{self, max_of, noun, range_hint};
use crate::diagnostic::Diagnostic;
use crate::model::{Amount, Bad, Gate, Op, Threshold, Unit};

/// The rule for gate `name` on metric number `metric` (`m`), or None when a check fails
/// (reported in `f`, as are warnings).
pub(super) fn check(
    name: &str,
    gate: &Gate,
    metric: usize,
    m: &Metric,
    f: &mut Vec<Diagnostic>,
) -> Option<GateRule> {
    let pointer = format!("/gates/{name}");
    if gate.op.healthy_side() == m.bad {
        f.push(
            Diagnostic::error(
                "gate-backwards",
                pointer.clone(),
                format!(
                    "gate `{name}: \"{gate}\"` calls the bad side healthy: {name} is bad when {}",
                    if m.bad == Bad::High { "high" } else { "low" }
                ),
            )
            .with_hint(format!(
                "write `{} …`",
                if m.bad == Bad::High { "<" } else { ">" }
            )),
        );
        return None;
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
        return None;
    }
    let limit = limit::from_threshold(&gate.threshold, gate.or, m, &pointer, f)?;
    f.extend(limit::floorless(
        limit,
        m,
        &pointer,
        &format!("gate `{name}: \"{gate}\"`"),
        "add a level that is healthy whatever stable does",
        |level| {
            format!(
                "`{gate} or {} {}`",
                gate.op.as_str(),
                Unit::Ratio.show(level)
            )
        },
    ));
    if let Limit::Absolute(v) = limit {
        if let Some(why) = never_holds(m.unit, gate.op, v) {
            f.push(
                Diagnostic::error(
                    "impossible-gate",
                    pointer,
                    format!("gate `{name}: \"{gate}\"` can never hold: {why}"),
                )
                .with_hint(range_hint(m.unit)),
            );
            return None;
        }
        if let Some(why) = always_holds(m.unit, gate.op, v) {
            f.push(
                Diagnostic::error(
                    "gate-always-holds",
                    pointer,
                    format!("gate `{name}: \"{gate}\"` can never fail: {why}"),
                )
                .with_hint(range_hint(m.unit)),
            );
            return None;
        }
        if m.unit == Unit::Milliseconds
            && matches!(gate.threshold, Threshold::Absolute(Amount::Number(_)))
            && v > 0.0
            && v < 10.0
        {
            f.push(
                Diagnostic::warning(
                    "latency-looks-like-seconds",
                    pointer,
                    format!("gate `{name}: \"{gate}\"` allows {v} milliseconds"),
                )
                .with_hint(format!(
                    "a bare number is in milliseconds here; if you meant seconds write `{} {v}s`",
                    gate.op.as_str()
                )),
            );
        }
    }
    Some(GateRule {
        metric,
        op: gate.op,
        limit,
        written: gate.to_string(),
    })
}

/// Why `value op v` is false for every value of `unit`.
fn never_holds(unit: Unit, op: Op, v: f64) -> Option<String> {
    let max = max_of(unit);
    match op {
        Op::Gt if v >= max => Some(format!("{} is at most {}", noun(unit), unit.show(max))),
        Op::Ge if v > max => Some(format!("{} is at most {}", noun(unit), unit.show(max))),
        Op::Lt if v <= 0.0 => Some(format!("{} is never below 0", noun(unit))),
        Op::Le if v < 0.0 => Some(format!("{} is never below 0", noun(unit))),
        _ => None,
    }
}

/// Why `value op v` is true for every value of `unit`.
fn always_holds(unit: Unit, op: Op, v: f64) -> Option<String> {
    let max = max_of(unit);
    match op {
        Op::Lt if v > max => Some(format!("{} is at most {}", noun(unit), unit.show(max))),
        Op::Le if v >= max => Some(format!("{} is at most {}", noun(unit), unit.show(max))),
        Op::Gt if v < 0.0 => Some(format!("{} is never below 0", noun(unit))),
        Op::Ge if v <= 0.0 => Some(format!("{} is never below 0", noun(unit))),
        _ => None,
    }
}
