//! The recommended setting as edits of the plan file: only the tuned scalars change, each
//! written the way its author wrote the old one (`10%` stays a percentage, `0.1` a bare
//! number, `5s` a duration, `2x stable and above 1%` keeps its floor, a gate keeps its
//! comparison), and everything else is kept byte for byte ([`crate::syntax::edit`]). The
//! edited plan must compile and lower to exactly the rules that were simulated.

use super::report::LineEdit;
use super::space::{Knob, Variant};
use crate::check::CheckedPlan;
use crate::lower::{AlertRule, LoweredPlan, RuleKind};
use crate::model::{Amount, Duration, Threshold, Unit, trim};
use crate::source::Source;
use crate::syntax::edit::Edit;
use serde_json::Value as Json;

/// The edits that write `setting` into the plan whose value is `doc`.
pub(crate) fn edits(
    doc: &Json,
    plan: &CheckedPlan,
    rules: &[AlertRule],
    knobs: &[Knob],
    setting: &[Variant],
) -> Result<Vec<Edit>, String> {
    let mut out = Vec::new();
    for (k, &v) in knobs.iter().zip(setting) {
        if v == k.current {
            continue;
        }
        let rule = &rules[k.rule];
        let unit = plan.metrics[rule.metric].unit;
        let level = k.level(v);
        match rule.kind {
            RuleKind::Gate => {
                let pointer = format!("/gates/{}", escape(&rule.id));
                let old = doc
                    .pointer(&pointer)
                    .and_then(Json::as_str)
                    .ok_or_else(|| format!("{pointer} is not a gate in the file"))?;
                let rest = crate::model::split_op(old)
                    .map(|(_, rest)| rest)
                    .ok_or_else(|| format!("{pointer}: `{old}` has no comparison"))?;
                let op = &old[..old.len() - rest.len()];
                // A gate relative to stable may add a level that is healthy too: kept.
                let text = match rest.split_once(" or ") {
                    Some((head, also)) => {
                        format!("{op}{} or {also}", written_like(head, level, unit)?)
                    }
                    None => format!("{op}{}", written_like(rest, level, unit)?),
                };
                out.push(Edit { text, pointer });
            }
            _ => {
                let items = doc
                    .pointer("/rollback_conditions")
                    .and_then(Json::as_array)
                    .ok_or("the file has no rollback_conditions")?;
                let i = items
                    .iter()
                    .position(|c| {
                        c.get("id")
                            .or_else(|| c.get("metric"))
                            .and_then(Json::as_str)
                            == Some(rule.id.as_str())
                    })
                    .ok_or_else(|| format!("no rollback condition `{}` in the file", rule.id))?;
                if v.level != k.current.level {
                    let pointer = format!("/rollback_conditions/{i}/threshold");
                    let text = match &items[i]["threshold"] {
                        Json::String(old) => written_like(old, level, unit)?,
                        _ => trim(level),
                    };
                    out.push(Edit { pointer, text });
                }
                if v.for_ != k.current.for_ {
                    out.push(Edit {
                        pointer: format!("/rollback_conditions/{i}/duration"),
                        text: show_for(k.fors[v.for_]),
                    });
                }
            }
        }
    }
    Ok(out)
}

/// The plan file `source` with `setting` written in, and its changed lines (number, old,
/// new). Err when it cannot be written safely, or the edited plan would not compile to
/// the rules that were simulated.
pub(crate) fn rewrite(
    source: &Source,
    lowered: &LoweredPlan,
    knobs: &[Knob],
    setting: &[Variant],
) -> Result<(String, Vec<LineEdit>), String> {
    let doc = crate::syntax::parse(source).map_err(|_| "the plan no longer parses".to_string())?;
    let edits = edits(&doc.value, &lowered.plan, &lowered.rules, knobs, setting)?;
    let text = crate::syntax::edit::replace_scalars(source, &doc, &edits)?;
    let compiled = crate::pipeline::compile(Source::new(source.name.clone(), text.clone()));
    let Some(tuned) = compiled.plan else {
        return Err("the edited plan does not validate".into());
    };
    let want = super::apply(lowered, knobs, setting);
    let same =
        tuned.rules.len() == want.rules.len()
            && tuned.rules.iter().zip(&want.rules).all(|(a, b)| {
                a.condition == b.condition && a.for_ms == b.for_ms && a.kind == b.kind
            });
    if !same {
        return Err("the edited plan does not compile to the tuned rules".into());
    }
    let changed = source
        .text
        .lines()
        .zip(text.lines())
        .enumerate()
        .filter(|(_, (a, b))| a != b)
        .map(|(i, (a, b))| LineEdit {
            line: i + 1,
            from: a.to_string(),
            to: b.to_string(),
        })
        .collect();
    Ok((text, changed))
}

/// A `for` in Prometheus syntax, `0s` for none.
pub(crate) fn show_for(ms: u64) -> String {
    Duration::from_millis(ms).map_or("0s".into(), |d| d.to_string())
}

/// The threshold as a plan written like `written` (a rollback threshold, or a gate with
/// its comparison) would state `level`: what the written text reads back as, so that a
/// tuned plan compares with exactly the levels that were simulated (`5%` reads as 5/100,
/// which need not be the level computed on the way).
pub(crate) fn canonical(written: &str, level: f64, unit: Unit) -> f64 {
    let rest = crate::model::split_op(written).map_or(written, |(_, rest)| rest);
    let head = rest.split_once(" or ").map_or(rest, |(head, _)| head);
    let back = written_like(head, level, unit)
        .ok()
        .and_then(|t| match Threshold::parse(&t) {
            Ok(Threshold::Absolute(a)) => a.in_unit(unit).ok(),
            Ok(Threshold::Relative { factor, .. }) => Some(factor),
            Err(_) => None,
        });
    back.unwrap_or(level)
}

/// `level` (in the metric's unit, or a factor of stable) written in the form of `old`.
fn written_like(old: &str, level: f64, unit: Unit) -> Result<String, String> {
    let t = Threshold::parse(old.trim()).map_err(|e| format!("`{old}`: {e}"))?;
    Ok(match t {
        Threshold::Absolute(a) => match a {
            Amount::Number(_) => trim(level),
            Amount::Percent(_) => format!("{}%", trim(level * 100.0)),
            Amount::Millis(_) => {
                let ms = match unit {
                    Unit::Seconds => level * 1000.0,
                    _ => level,
                };
                Amount::Millis(ms.round() as u64).to_string()
            }
            Amount::Bytes(_) => Amount::Bytes(level.round()).to_string(),
        },
        Threshold::Relative { percent, .. } => {
            let factor = if percent {
                format!("{}% of stable", trim(level * 100.0))
            } else {
                format!("{}x stable", trim(level))
            };
            match old.split_once(" and ") {
                Some((_, floor)) => format!("{factor} and {floor}"),
                None => factor,
            }
        }
    })
}

/// A JSON pointer token.
fn escape(s: &str) -> String {
    s.replace('~', "~0").replace('/', "~1")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_level_is_written_as_the_old_one_was() {
        assert_eq!(written_like("10%", 0.05, Unit::Ratio).unwrap(), "5%");
        assert_eq!(written_like("0.1", 0.05, Unit::Ratio).unwrap(), "0.05");
        assert_eq!(
            written_like("5s", 625.0, Unit::Milliseconds).unwrap(),
            "625ms"
        );
        assert_eq!(written_like("3s", 24.0, Unit::Seconds).unwrap(), "24s");
        assert_eq!(
            written_like("2x stable and above 1%", 3.0, Unit::Ratio).unwrap(),
            "3x stable and above 1%"
        );
        assert_eq!(
            written_like("95% of stable", 0.8, Unit::Ratio).unwrap(),
            "80% of stable"
        );
    }
}
