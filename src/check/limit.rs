//! A gate's or rollback condition's threshold as a [`Limit`]: converted into its metric's
//! unit, and warned about when it compares with stable without a floor. Also the range of
//! values each unit can take and its words in messages, which the gate and rollback checks
//! share.

use super::checked::{Limit, Metric};
use crate::diagnostic::Diagnostic;
use crate::model::{Amount, Bad, Op, Threshold, Unit};

/// A threshold in its metric's unit, with the absolute comparison that goes with a relative
/// one (`also`, in the rule's own sense: see [`Limit`]). None when an amount does not fit
/// the unit (reported at `pointer`).
pub(super) fn from_threshold(
    t: &Threshold,
    also: Option<(Op, Amount)>,
    m: &Metric,
    pointer: &str,
    f: &mut Vec<Diagnostic>,
) -> Option<Limit> {
    let mut in_unit = |a: Amount| match a.in_unit(m.unit) {
        Ok(v) => Some(v),
        Err(why) => {
            f.push(
                Diagnostic::error(
                    "threshold-unit",
                    pointer.to_string(),
                    format!("`{a}` does not fit `{}`: {why}", m.name),
                )
                .with_hint(range_hint(m.unit)),
            );
            None
        }
    };
    match *t {
        Threshold::Relative { factor, .. } => {
            let also = match also {
                Some((op, a)) => Some((op, in_unit(a)?)),
                None => None,
            };
            Some(Limit::RelativeToStable { factor, also })
        }
        Threshold::Absolute(a) => in_unit(a).map(Limit::Absolute),
    }
}

/// A comparison with stable, on a metric that is bad when high, without a floor: a factor of
/// nothing is nothing, so while stable has no errors the canary's first one crosses it.
/// `fix` writes the rule with a floor, for the hint.
pub(super) fn floorless(
    limit: Limit,
    m: &Metric,
    pointer: &str,
    what: &str,
    advice: &str,
    fix: impl Fn(f64) -> String,
) -> Option<Diagnostic> {
    let Limit::RelativeToStable { also: None, .. } = limit else {
        return None;
    };
    (m.bad == Bad::High).then(|| {
        let example = match m.unit {
            Unit::Ratio => fix(0.01),
            _ => "a floor in the metric's unit".to_string(),
        };
        Diagnostic::warning(
            "relative-without-floor",
            pointer.to_string(),
            format!("{what} has no floor: while stable's `{}` is 0, the canary's first event crosses it", m.name),
        )
        .with_hint(format!("{advice}, e.g. {example}"))
    })
}

/// How to write a value of `unit`, for hints.
pub(super) fn range_hint(unit: Unit) -> &'static str {
    match unit {
        Unit::Ratio => "a ratio lies between 0 and 1: write `0.1` or `10%`",
        Unit::Milliseconds => "a latency in milliseconds: write `5000` or `5s`",
        Unit::Seconds => "a latency in seconds: write `5` or `5s`",
        Unit::Bytes => "a size in bytes: write `536870912` or `512MiB`",
        Unit::Count | Unit::PerSecond => "a number zero or above",
    }
}

/// The kind of value a unit measures, for messages: "a ratio is never below 0".
pub(super) fn noun(unit: Unit) -> &'static str {
    match unit {
        Unit::Ratio => "a ratio",
        Unit::Milliseconds | Unit::Seconds => "a latency",
        Unit::Bytes => "a size",
        Unit::Count => "a count",
        Unit::PerSecond => "a rate",
    }
}

/// The largest value of `unit`: 1 for a ratio, none for the others. (None is below 0.)
pub(super) fn max_of(unit: Unit) -> f64 {
    if unit == Unit::Ratio {
        1.0
    } else {
        f64::INFINITY
    }
}
