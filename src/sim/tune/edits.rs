//! The recommended setting as edits of the plan file: only the tuned scalars change, each
//! written the way its author wrote the old one (`10%` stays a percentage, `0.1` a bare
//! number, `5s` a duration, `2x stable and above 1%` keeps its floor, a gate keeps its
//! comparison), and everything else is kept byte for byte ([`crate::syntax::edit`]). The
//! edited plan must compile and lower to exactly the rules that were simulated.

use super::report::LineEdit;
use super::space::{Knob, Variant};
use super::window::Windowed;
use super::written::{restate, show_for, written_like};
use crate::check::CheckedPlan;
use crate::lower::{AlertRule, RuleKind};
use crate::model::trim;
use crate::source::Source;
use crate::syntax::edit::{Edit, Placed};
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
                let text = restate(old, level, unit)?;
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

/// The plan file `original` with `setting` of `plan` (the plan file with the rate window
/// of the setting written in, [`super::window`]) written in. Err when it cannot be
/// written safely, or the edited plan would not compile to the rules (and window) that
/// were simulated.
pub(crate) fn rewrite(
    original: &Source,
    plan: &Windowed,
    knobs: &[Knob],
    setting: &[Variant],
) -> Result<Rewritten, String> {
    let (source, lowered) = (&plan.source, &plan.lowered);
    let doc = crate::syntax::parse(source).map_err(|_| "the plan no longer parses".to_string())?;
    let edits = edits(&doc.value, &lowered.plan, &lowered.rules, knobs, setting)?;
    let text = crate::syntax::edit::replace_scalars(source, &doc, &edits)?;
    let compiled = crate::pipeline::compile(Source::new(source.name.clone(), text.clone()));
    let Some(tuned) = compiled.plan else {
        return Err("the edited plan does not validate".into());
    };
    let want = super::space::apply(lowered, knobs, setting);
    let same =
        tuned.rules.len() == want.rules.len()
            && tuned.rules.iter().zip(&want.rules).all(|(a, b)| {
                a.condition == b.condition && a.for_ms == b.for_ms && a.kind == b.kind
            })
            && tuned.plan.monitoring.window == lowered.plan.monitoring.window;
    if !same {
        return Err("the edited plan does not compile to the tuned rules".into());
    }
    // What `plan validate` says of the tuned plan that it did not say of the plan.
    let before = crate::pipeline::compile(original.clone());
    // The same finding at the same place: a warning whose message names the new value is
    // not new.
    let said = |l: &crate::diagnostic::Located| (l.code, l.pointer.clone());
    let old: Vec<_> = before.findings.iter().map(said).collect();
    let warnings = compiled
        .findings
        .iter()
        .filter(|l| !old.contains(&said(l)))
        .map(|l| {
            format!(
                "{}:{}: warning[{}]: {}",
                l.line, l.column, l.code, l.message
            )
        })
        .collect();
    let changed = changed_lines(&original.text, &text, plan.placed);
    Ok(Rewritten {
        text,
        changed,
        warnings,
    })
}

/// The lines of `new` that differ from `old`: the same lines, but for lines inserted
/// where the window was written (`placed`), each other line edited in place.
fn changed_lines(old: &str, new: &str, placed: Option<Placed>) -> Vec<LineEdit> {
    let new: Vec<&str> = new.lines().collect();
    let (before, inserted) = match placed {
        Some(Placed::Inserted { before, lines }) => (before, lines),
        _ => (usize::MAX, 0),
    };
    let mut out = Vec::new();
    let mut at = 0;
    for (i, from) in old.lines().chain(std::iter::once("")).enumerate() {
        let line = i + 1;
        if line == before {
            out.push(LineEdit {
                line,
                from: None,
                to: new[at..at + inserted].join("\n"),
            });
            at += inserted;
        }
        if i == old.lines().count() {
            break;
        }
        if new.get(at).is_some_and(|to| *to != from) {
            out.push(LineEdit {
                line,
                from: Some(from.to_string()),
                to: new[at].to_string(),
            });
        }
        at += 1;
    }
    out
}

/// The plan file with a setting written in.
pub(crate) struct Rewritten {
    pub(crate) text: String,
    /// Its changed lines.
    pub(crate) changed: Vec<LineEdit>,
    /// The warnings `plan validate` gives it and did not give the plan (a rollback now
    /// stricter than a gate, say), as `line:column: warning[code]: message`.
    pub(crate) warnings: Vec<String>,
}

/// A JSON pointer token.
fn escape(s: &str) -> String {
    s.replace('~', "~0").replace('/', "~1")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changed_lines_follow_an_insertion() {
        let old = "a: 1\nm:\n  x: 1\nb: 2\n";
        let new = "a: 3\nm:\n  w: 5m\n  x: 1\nb: 4\n";
        let placed = Some(Placed::Inserted {
            before: 3,
            lines: 1,
        });
        let shown: Vec<(usize, Option<String>, String)> = changed_lines(old, new, placed)
            .into_iter()
            .map(|e| (e.line, e.from, e.to))
            .collect();
        assert_eq!(
            shown,
            [
                (1, Some("a: 1".into()), "a: 3".into()),
                (3, None, "  w: 5m".into()),
                (4, Some("b: 2".into()), "b: 4".into()),
            ]
        );
        // Added at the end.
        let end = changed_lines(
            "a: 1\n",
            "a: 1\nm:\n  w: 5m\n",
            Some(Placed::Inserted {
                before: 2,
                lines: 2,
            }),
        );
        assert_eq!(end.len(), 1);
        assert_eq!((end[0].line, end[0].from.is_none()), (2, true));
        assert_eq!(end[0].to, "m:\n  w: 5m");
        // In place.
        let same = changed_lines(
            "a: 1\nb: 2\n",
            "a: 1\nb: 5\n",
            Some(Placed::Replaced { line: 2 }),
        );
        assert_eq!(same.len(), 1);
        assert_eq!(same[0].line, 2);
    }
}
