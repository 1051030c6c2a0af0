//! `plan release status` and `plan release report`: where the release is and what
//! Prometheus says now; and its story, from the state's history, as Markdown for people
//! and JSON for tools. Both only read.

use super::feedback::{Feedback, Kind, Track};
use super::judge::{Ending, judge};
use super::manifest::Rendered;
use super::state::{At, State};
use super::time::{instant, span};
use serde::Serialize;
use std::fmt::Write;

/// Where the release is, in words.
fn where_(rendered: &Rendered, at: &At) -> String {
    at.describe(rendered.phases().len())
}

/// `status`: the state, the plan's rules as Prometheus has them, and what `next` or
/// `complete` would do now.
pub(crate) fn status(
    rendered: &Rendered,
    state: Option<&State>,
    busy: Option<&str>,
    now_ms: i64,
) -> String {
    let m = &rendered.manifest;
    let mut s = format!("plan {}: {} -> {}\n", m.plan, m.release.from, m.release.to);
    let Some(state) = state else {
        s += "not started: `plan release start` applies phase one\n";
        return s;
    };
    let _ = write!(
        s,
        "{} since {} ({})",
        where_(rendered, &state.at),
        instant(state.since_ms),
        span(now_ms - state.since_ms)
    );
    if let At::Phase { index, .. } = state.at {
        let _ = write!(
            s,
            ", {} of users on {}",
            rendered.phases()[index].traffic.text,
            m.release.to
        );
    }
    s.push('\n');
    if let (Some(a), Some(pid)) = (&state.applying, busy) {
        let _ = writeln!(
            s,
            "applying: step {} (`{}` by {} since {}), by process {pid} now",
            a.step,
            a.verb,
            a.by,
            instant(a.started_ms)
        );
    } else if let Some(a) = &state.applying {
        let _ = writeln!(
            s,
            "interrupted: step {} was being applied (`{}` by {} at {}); the next verb finishes it, or `rollback`",
            a.step,
            a.verb,
            a.by,
            instant(a.started_ms)
        );
    }
    let At::Phase { index, .. } = state.at else {
        return s;
    };
    let changed = super::digest::of(&rendered.dir).map_or(true, |d| d != state.rendered);
    let last = index + 1 == rendered.phases().len();
    let ending = if last { Ending::Complete } else { Ending::Next };
    let j = judge(rendered, index, state.since_ms, now_ms, ending);
    match &j.rules {
        Some(rules) => {
            let _ = writeln!(
                s,
                "Prometheus ({}), this phase's alerts:",
                m.deployment.prometheus
            );
            let width = rules.iter().map(|r| r.alert.len()).max().unwrap_or(0);
            for r in rules {
                let _ = writeln!(
                    s,
                    "  {:width$}  {:8}  {}{}",
                    r.alert,
                    r.kind,
                    r.state,
                    if r.health == "ok" {
                        String::new()
                    } else {
                        format!(" ({})", r.health)
                    }
                );
            }
        }
        None => s += "Prometheus could not be asked (see below)\n",
    }
    let verb = if last { "complete" } else { "next" };
    let mut j = j;
    if changed {
        j.blockers.push(
            "the rendered files changed since the release started (or cannot be read): restore them, or roll back".into(),
        );
    }
    if j.ready() {
        let _ = writeln!(
            s,
            "{verb}: ready ({})",
            if last {
                "promotes the release".to_string()
            } else {
                format!(
                    "phase {}, {}",
                    rendered.phases()[index + 1].name,
                    rendered.phases()[index + 1].traffic.text
                )
            }
        );
    } else {
        let _ = writeln!(s, "{verb}: waits");
        for b in &j.blockers {
            let _ = writeln!(s, "  - {b}");
        }
    }
    s
}

/// The report's JSON document.
#[derive(Serialize)]
struct ReportDoc<'a> {
    schema_version: u32,
    plan: &'a str,
    from: &'a str,
    to: &'a str,
    outcome: String,
    since: String,
    steps: Vec<StepDoc<'a>>,
    phases: Vec<PhaseDoc>,
    /// `plan release feedback`: the counts and the messages kept.
    feedback: &'a Feedback,
}

#[derive(Serialize)]
struct StepDoc<'a> {
    at: String,
    verb: &'a str,
    from: String,
    to: String,
    by: &'a str,
    reason: Option<&'a str>,
    forced: bool,
    detail: &'a [String],
}

#[derive(Serialize)]
struct PhaseDoc {
    phase: String,
    entered: String,
    left: Option<String>,
    seconds: i64,
}

fn doc<'a>(
    rendered: &'a Rendered,
    state: &'a State,
    feedback: &'a Feedback,
    now_ms: i64,
) -> ReportDoc<'a> {
    let m = &rendered.manifest;
    let steps = state
        .history
        .iter()
        .map(|e| StepDoc {
            at: instant(e.at_ms),
            verb: &e.verb,
            from: e
                .from
                .as_ref()
                .map_or_else(|| "not started".into(), |f| where_(rendered, f)),
            to: where_(rendered, &e.to),
            by: &e.by,
            reason: e.reason.as_deref(),
            forced: e.forced,
            detail: &e.detail,
        })
        .collect();
    let mut phases = Vec::new();
    for (i, e) in state.history.iter().enumerate() {
        if let At::Phase { name, .. } = &e.to {
            let left = state.history.get(i + 1).map(|n| n.at_ms);
            phases.push(PhaseDoc {
                phase: name.clone(),
                entered: instant(e.at_ms),
                left: left.map(instant),
                seconds: (left.unwrap_or(now_ms) - e.at_ms).max(0) / 1000,
            });
        }
    }
    ReportDoc {
        schema_version: 1,
        plan: &m.plan,
        from: &m.release.from,
        to: &m.release.to,
        outcome: where_(rendered, &state.at),
        since: instant(state.since_ms),
        steps,
        phases,
        feedback,
    }
}

/// `report --format json`.
pub(crate) fn json(rendered: &Rendered, state: &State, feedback: &Feedback, now_ms: i64) -> String {
    let mut s = serde_json::to_string_pretty(&doc(rendered, state, feedback, now_ms))
        .unwrap_or_else(|e| format!("{{\"error\": {:?}}}", e.to_string()));
    s.push('\n');
    s
}

/// A table cell that shows its text as written: no line breaks; `&`, `<` and `>` as
/// entities (no HTML); the characters that make Markdown links, emphasis, code, tables
/// and autolinks escaped with a backslash; invisible formatting characters (right-to-left
/// overrides, zero-width ones) shown as U+FFFD, so a name cannot read as another.
pub(crate) fn cell(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\n' | '\r' => out.push(' '),
            // Code, emphasis, links, tables, strike-through, and `:` against autolinks.
            '\\' | '`' | '*' | '_' | '[' | ']' | '|' | '~' | ':' => {
                out.push('\\');
                out.push(c);
            }
            c if is_invisible(c) => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

/// Characters that change how text displays without showing themselves: bidirectional
/// controls, zero-width characters, other controls.
pub(crate) fn is_invisible(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{2069}' | '\u{FEFF}' | '\u{061C}')
}

/// `report`: the release's story in Markdown.
pub(crate) fn markdown(
    rendered: &Rendered,
    state: &State,
    feedback: &Feedback,
    now_ms: i64,
) -> String {
    let d = doc(rendered, state, feedback, now_ms);
    let mut s = format!(
        "# Release of {}: {} -> {}\n\nThe release is {} (since {}).\n\n## Steps\n\n| when | verb | from | to | by | reason | notes |\n|---|---|---|---|---|---|---|\n",
        cell(d.plan),
        cell(d.from),
        cell(d.to),
        d.outcome,
        d.since
    );
    for e in &d.steps {
        let _ = writeln!(
            s,
            "| {} | {}{} | {} | {} | {} | {} | {} |",
            e.at,
            cell(e.verb),
            if e.forced { " (forced)" } else { "" },
            cell(&e.from),
            cell(&e.to),
            cell(e.by),
            cell(e.reason.unwrap_or("")),
            cell(&e.detail.join("; "))
        );
    }
    s += "\n## Time in each phase\n\n| phase | entered | left | time |\n|---|---|---|---|\n";
    for p in &d.phases {
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} |",
            cell(&p.phase),
            p.entered,
            p.left.as_deref().unwrap_or("(now)"),
            span(p.seconds * 1000)
        );
    }
    s += "\n## User feedback\n\n| type | canary | stable |\n|---|---|---|\n";
    for kind in [Kind::Bug, Kind::Praise] {
        let _ = writeln!(
            s,
            "| {} | {} | {} |",
            kind.name(),
            feedback.count(kind, Track::Canary),
            feedback.count(kind, Track::Stable)
        );
    }
    if !feedback.messages.is_empty() {
        s += "\n| when | type | track | by | message |\n|---|---|---|---|---|\n";
        for m in &feedback.messages {
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} | {} |",
                instant(m.at_ms),
                cell(&m.kind),
                cell(&m.track),
                cell(&m.by),
                cell(&m.text)
            );
        }
    }
    s
}
