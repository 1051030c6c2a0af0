//! The recommended setting as edits of the plan file: only the tuned scalars change, each
//! written the way its author wrote the old one (`10%` stays a percentage, `0.1` a bare
//! number, `5s` a duration, `2x stable and above 1%` keeps its floor, a gate keeps its
//! comparison), and everything else is kept byte for byte ([`crate::syntax::edit`]). The
//! edited plan must compile and lower to exactly the rules that were simulated.

use super::report::LineEdit;
use super::space::{Knob, Variant};
use super::written::{restate, show_for, written_like};
use crate::check::CheckedPlan;
use crate::lower::{AlertRule, LoweredPlan, RuleKind};
use crate::model::trim;
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

/// The plan file `source` with `setting` written in. Err when it cannot be written safely, or the edited plan would not compile to
/// the rules that were simulated.
pub(crate) fn rewrite(
    source: &Source,
    lowered: &LoweredPlan,
    knobs: &[Knob],
    setting: &[Variant],
) -> Result<Rewritten, String> {
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
            });
    if !same {
        return Err("the edited plan does not compile to the tuned rules".into());
    }
    // What `plan validate` says of the tuned plan that it did not say of the plan.
    let before = crate::pipeline::compile(source.clone());
    let said = |l: &crate::diagnostic::Located| (l.code, l.message.clone());
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
    Ok(Rewritten {
        text,
        changed,
        warnings,
    })
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
