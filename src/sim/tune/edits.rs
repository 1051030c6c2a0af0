//! The recommended setting as edits of the plan file: only the tuned scalars change, each
//! written the way its author wrote the old one (`10%` stays a percentage, `0.1` a bare
//! number, `5s` a duration, `2x stable and above 1%` keeps its floor, a gate keeps its
//! comparison), and everything else is kept byte for byte ([`crate::syntax::edit`]). A
//! `min_requests` guard changed is its scalar edited; added, a `min_requests: N` line after
//! the condition's last key, indented as its keys are; dropped, its line deleted (a
//! condition written in flow style, `- { ... }`, is refused rather than rewritten). The
//! edited plan must compile and lower to exactly the rules that were simulated.

use super::report::LineEdit;
use super::space::{Knob, Variant};
use super::window::Windowed;
use super::written::{restate, show_for, written_like};
use crate::check::CheckedPlan;
use crate::lower::{AlertRule, RuleKind};
use crate::model::trim;
use crate::source::Source;
use crate::syntax::edit::{Edit, remove_key, set_item_key};
use serde_json::Value as Json;

/// A rollback condition's `min_requests` to set (Some) or drop (None), the condition's
/// pointer (`/rollback_conditions/0`).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct GuardEdit {
    pub(crate) item: String,
    pub(crate) min: Option<u64>,
}

/// The edits that write `setting` into the plan whose value is `doc`: scalars replaced,
/// and guards set or dropped.
pub(crate) fn edits(
    doc: &Json,
    plan: &CheckedPlan,
    rules: &[AlertRule],
    knobs: &[Knob],
    setting: &[Variant],
) -> Result<(Vec<Edit>, Vec<GuardEdit>), String> {
    let mut out = Vec::new();
    let mut guards = Vec::new();
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
                if v.guard != k.current.guard {
                    guards.push(GuardEdit {
                        item: format!("/rollback_conditions/{i}"),
                        min: k.guards[v.guard],
                    });
                }
            }
        }
    }
    Ok((out, guards))
}

/// `source` with `guards` made, one after the other, each read back.
fn write_guards(source: &Source, guards: &[GuardEdit]) -> Result<String, String> {
    let mut text = source.text.clone();
    for g in guards {
        let now = Source::new(source.name.clone(), text.clone()).holding(source.kind);
        let doc =
            crate::syntax::parse(&now).map_err(|_| "the plan no longer parses".to_string())?;
        text = match g.min {
            Some(min) => set_item_key(&now, &doc, &g.item, "min_requests", &min.to_string())?.0,
            None => remove_key(&now, &doc, &format!("{}/min_requests", g.item))?.0,
        };
    }
    Ok(text)
}

/// The plan file `original` with `setting` of `plan` (the plan file with the rate window
/// of the setting written in, [`super::window`]) written in. Err when it cannot be
/// written safely, or the edited plan would not compile to the rules (and window) that
/// were simulated.
/// (`lowered`: that plan as the tune ran it, with the request counts of the guards it
/// tried, [`super::space::Space`].)
pub(crate) fn rewrite(
    original: &Source,
    plan: &Windowed,
    lowered: &crate::lower::LoweredPlan,
    knobs: &[Knob],
    setting: &[Variant],
) -> Result<Rewritten, String> {
    let source = &plan.source;
    let doc = crate::syntax::parse(source).map_err(|_| "the plan no longer parses".to_string())?;
    let (edits, guards) = edits(&doc.value, &lowered.plan, &lowered.rules, knobs, setting)?;
    let scalars = crate::syntax::edit::replace_scalars(source, &doc, &edits)?;
    let text = write_guards(
        &Source::new(source.name.clone(), scalars).holding(source.kind),
        &guards,
    )?;
    let compiled = crate::pipeline::compile(Source::new(source.name.clone(), text.clone()));
    let Some(tuned) = compiled.plan else {
        return Err("the edited plan does not validate".into());
    };
    let want = super::space::apply(lowered, knobs, setting);
    // A guard is the same when it asks as many requests of the same count.
    let guard = |p: &crate::lower::LoweredPlan, r: &AlertRule| {
        r.guard
            .map(|g| (g.min, p.plan.metrics[g.count].expr.clone()))
    };
    let same = tuned.rules.len() == want.rules.len()
        && tuned.rules.iter().zip(&want.rules).all(|(a, b)| {
            a.condition == b.condition
                && a.for_ms == b.for_ms
                && a.kind == b.kind
                && guard(&tuned, a) == guard(&want, b)
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
    let changed = changed_lines(&original.text, &text);
    Ok(Rewritten {
        text,
        changed,
        warnings,
    })
}

/// The lines of `new` that differ from `old`, by the longest common run of lines: each
/// run of old lines replaced by new ones pairs them line by line, the new lines left over
/// inserted before the next old line, the old ones left over deleted. (Plan files are a
/// few hundred lines: the quadratic table is small.)
fn changed_lines(old: &str, new: &str) -> Vec<LineEdit> {
    let (a, b): (Vec<&str>, Vec<&str>) = (old.lines().collect(), new.lines().collect());
    let (n, m) = (a.len(), b.len());
    // common[i][j]: the longest common subsequence of a[i..] and b[j..].
    let mut common = vec![vec![0u32; m + 1]; n + 1];
    for i in (0..n).rev() {
        for j in (0..m).rev() {
            common[i][j] = if a[i] == b[j] {
                common[i + 1][j + 1] + 1
            } else {
                common[i + 1][j].max(common[i][j + 1])
            };
        }
    }
    let mut out = Vec::new();
    let (mut i, mut j) = (0, 0);
    while i < n || j < m {
        if i < n && j < m && a[i] == b[j] {
            i += 1;
            j += 1;
            continue;
        }
        // A run of differences: the old lines and new lines until the next common one.
        let (i0, j0) = (i, j);
        while (i < n || j < m) && !(i < n && j < m && a[i] == b[j]) {
            if j < m && (i == n || common[i][j + 1] >= common[i + 1][j]) {
                j += 1;
            } else {
                i += 1;
            }
        }
        let (gone, added) = (&a[i0..i], &b[j0..j]);
        let paired = gone.len().min(added.len());
        for k in 0..paired {
            out.push(LineEdit {
                line: i0 + k + 1,
                from: Some(gone[k].to_string()),
                to: Some(added[k].to_string()),
            });
        }
        for (k, g) in gone.iter().enumerate().skip(paired) {
            out.push(LineEdit {
                line: i0 + k + 1,
                from: Some(g.to_string()),
                to: None,
            });
        }
        if added.len() > paired {
            out.push(LineEdit {
                line: i0 + paired + 1,
                from: None,
                to: Some(added[paired..].join("\n")),
            });
        }
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
    fn changed_lines_follow_insertions_and_deletions() {
        let shown = |old: &str, new: &str| -> Vec<(usize, Option<String>, Option<String>)> {
            changed_lines(old, new)
                .into_iter()
                .map(|e| (e.line, e.from, e.to))
                .collect()
        };
        let s = |x: &str| Some(x.to_string());
        assert_eq!(
            shown(
                "a: 1\nm:\n  x: 1\nb: 2\n",
                "a: 3\nm:\n  w: 5m\n  x: 1\nb: 4\n"
            ),
            [
                (1, s("a: 1"), s("a: 3")),
                (3, None, s("  w: 5m")),
                (4, s("b: 2"), s("b: 4")),
            ]
        );
        // Added at the end.
        assert_eq!(
            shown("a: 1\n", "a: 1\nm:\n  w: 5m\n"),
            [(2, None, s("m:\n  w: 5m"))]
        );
        // In place.
        assert_eq!(
            shown("a: 1\nb: 2\n", "a: 1\nb: 5\n"),
            [(2, s("b: 2"), s("b: 5"))]
        );
        // A line deleted, another changed.
        assert_eq!(
            shown("- a: 1\n  g: 5\n  b: 2\nc: 3\n", "- a: 1\n  b: 2\nc: 4\n"),
            [(2, s("  g: 5"), None), (4, s("c: 3"), s("c: 4"))]
        );
        assert!(shown("a\nb\n", "a\nb\n").is_empty());
    }

    /// Every example plan, each guardable rollback condition's guard added (or changed),
    /// then removed: only `min_requests` lines come and go, every comment and every other
    /// key stays in its order, and the plan compiles to the rules with those guards.
    #[test]
    fn guards_round_trip_on_every_example_plan() {
        use super::super::space::{Part, Ranges, Vary, knobs};
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("plans");
        let mut written = 0;
        for entry in std::fs::read_dir(&root).expect("plans") {
            let path = entry.expect("entry").path();
            if path.extension().and_then(|e| e.to_str()) != Some("yaml") {
                continue;
            }
            let source = Source::load(&path).expect("readable");
            let lowered = crate::pipeline::compile(source.clone())
                .plan
                .expect("example plan is valid");
            let guardable: Vec<String> = lowered
                .plan
                .rollbacks
                .iter()
                .filter(|r| crate::check::request_count(&lowered.plan.metrics[r.metric]).is_ok())
                .map(|r| r.id.clone())
                .collect();
            let ranges = Ranges {
                vary: guardable
                    .iter()
                    .map(|id| Vary {
                        target: id.clone(),
                        part: Part::MinRequests(7, 7),
                    })
                    .collect(),
                keep: Vec::new(),
            };
            let space = knobs(&lowered, &ranges, 10.0).expect("knobs");
            let windowed = Windowed {
                window_ms: lowered.plan.monitoring.window.millis(),
                source: source.clone(),
                lowered: lowered.clone(),
            };
            // Every guardable knob at 7 requests, then at no guard.
            for min in [Some(7), None] {
                let setting: Vec<Variant> = space
                    .knobs
                    .iter()
                    .map(|k| Variant {
                        guard: k
                            .guards
                            .iter()
                            .position(|&g| g == min)
                            .unwrap_or(k.current.guard),
                        ..k.current
                    })
                    .collect();
                let r = rewrite(&source, &windowed, &space.lowered, &space.knobs, &setting)
                    .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                let others = |t: &str| -> Vec<String> {
                    t.lines()
                        .filter(|l| !l.trim_start().starts_with("min_requests:"))
                        .map(str::to_string)
                        .collect()
                };
                // Comments, keys and their order: every line but the guards' as it was.
                assert_eq!(others(&r.text), others(&source.text), "{}", path.display());
                let guards = r
                    .text
                    .lines()
                    .filter(|l| l.trim_start().starts_with("min_requests:"))
                    .count();
                let expected = match min {
                    Some(_) => guardable.len(),
                    None => 0,
                };
                assert_eq!(guards, expected, "{}:\n{}", path.display(), r.text);
                let compiled = crate::pipeline::compile(Source::new(source.name.clone(), r.text));
                let tuned = compiled.plan.expect("the edited plan is valid");
                for id in &guardable {
                    let rule = tuned.rules.iter().find(|x| &x.id == id).expect("the rule");
                    assert_eq!(rule.guard.map(|g| g.min), min, "{}: {id}", path.display());
                }
                written += r.changed.len();
            }
        }
        assert!(written >= 4, "only {written} lines changed");
    }
}
