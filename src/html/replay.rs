//! The replay report (`plan simulate --trace T --report FILE.html`), drawn from the
//! replay's JSON document: per rule (rollback rules and gates), the value of its metric at
//! each evaluation with its threshold, the bands where the rule was pending and firing,
//! the phase boundaries and the verdict; then the rules and every value as tables.

use super::chart::{Axis, Plot};
use super::doc::At;
use super::escape::esc;
use super::format::{offset_ms, short, unit_title, value};
use super::page::{About, Table, figure, num, page, td, th};
use serde_json::Value;

/// Rows of a metric's table of values at most (the document keeps them all).
const MAX_TABLE_ROWS: usize = 2_000;

/// The page of a replay's document `doc`.
pub(crate) fn replay(doc: &Value, about: &About) -> String {
    let d = At::root(doc);
    let v = d.get("verdict");
    let header = [
        ("Plan", d.get("plan").str().to_string()),
        ("Release", about.release.clone()),
        ("Run", "replay of a recorded trace".to_string()),
        ("Trace", d.get("trace").str().to_string()),
        (
            "Span",
            format!("{} to {}", d.get("start").str(), d.get("end").str()),
        ),
        ("Semantics", d.get("semantics").str().to_string()),
        ("Tool", about.tool.clone()),
    ];
    let mut body = format!(
        "<h2>Verdict</h2>\n<p class=\"verdict-box\"><strong>{}</strong> at {} ({}) in phase {}{}.</p>\n",
        esc(&v.get("outcome").str().replace('_', " ")),
        esc(&offset_ms(v.get("at_ms").f64().unwrap_or(0.0))),
        esc(v.get("time").str()),
        esc(v.get("phase").str()),
        if v.get("alert").exists() {
            format!(
                ": {} fired ({})",
                esc(v.get("alert").str()),
                esc(v.get("summary").str())
            )
        } else {
            format!(" ({})", esc(&v.get("reason").str().replace('_', " ")))
        }
    );
    body += &rules_table(&d);
    body += "<h2>Rules over time</h2>\n<p class=\"note\">The metric at each evaluation (solid; the stable version's dotted where the rule compares with it), the threshold (dashed), the rule pending (light hatching) and firing (dark hatching), the phases' starts (dotted) and the verdict (bold).</p>\n";
    for (i, r) in d.get("rules").items().iter().enumerate() {
        if r.get("kind").str() == "no_data" {
            continue;
        }
        body += &rule_chart(&d, r, i);
    }
    body += &values_tables(&d);
    page(
        &format!("Replay of {}", d.get("plan").str()),
        &header,
        &body,
    )
}

fn rules_table(d: &At<'_>) -> String {
    let mut t = Table::new(
        "Rules: when each was first pending and firing",
        &[
            "alert",
            "kind",
            "rule",
            "first pending (from start)",
            "first firing (from start)",
            "times fired",
        ],
    );
    for r in d.get("rules").items() {
        t.row(&[
            th(r.get("alert").str()),
            td(r.get("kind").str()),
            td(r.get("summary").str()),
            num(&r.get("first_pending_ms"), offset_ms),
            num(&r.get("first_firing_ms"), offset_ms),
            num(&r.get("fired"), |v| format!("{v}")),
        ]);
    }
    "<h2>Rules</h2>\n".to_string() + &t.finish()
}

/// The series of metric `name`.
fn series<'a>(d: &At<'a>, name: &str) -> Option<At<'a>> {
    d.get("series")
        .items()
        .into_iter()
        .find(|s| s.get("metric").str() == name)
}

/// The times (ms from the start) of a series' values, and the values of `track`.
fn points(s: &At<'_>, track: &str) -> Vec<(f64, Option<f64>)> {
    let first = s.get("first_ms").f64().unwrap_or(0.0);
    let step = s.get("step_ms").f64().unwrap_or(1.0);
    s.get(track)
        .items()
        .iter()
        .enumerate()
        .map(|(k, v)| (first + k as f64 * step, v.f64()))
        .collect()
}

/// The spans (ms from the start) where `alert` was pending, and firing, from the events.
/// Spans of time (ms from the start, from and to).
type Spans = Vec<(f64, f64)>;

fn states(d: &At<'_>, alert: &str, end: f64) -> (Spans, Spans) {
    let (mut pending, mut firing) = (Vec::new(), Vec::new());
    let (mut since_p, mut since_f): (Option<f64>, Option<f64>) = (None, None);
    for e in d.get("events").items() {
        if e.get("alert").str() != alert {
            continue;
        }
        let at = e.get("at_ms").f64().unwrap_or(0.0);
        match e.get("event").str() {
            "pending" => since_p = Some(at),
            "firing" => {
                if let Some(p) = since_p.take() {
                    pending.push((p, at));
                }
                since_f = Some(at);
            }
            "cleared" => {
                if let Some(p) = since_p.take() {
                    pending.push((p, at));
                }
            }
            "resolved" => {
                if let Some(f) = since_f.take() {
                    firing.push((f, at));
                }
            }
            _ => {}
        }
    }
    pending.extend(since_p.map(|p| (p, end)));
    firing.extend(since_f.map(|f| (f, end)));
    (pending, firing)
}

fn rule_chart(d: &At<'_>, r: &At<'_>, i: usize) -> String {
    let alert = r.get("alert").str();
    let metric = r.get("metric").str();
    let Some(s) = series(d, metric) else {
        return String::new();
    };
    let unit = s.get("unit").str();
    let canary = points(&s, "canary");
    if !canary.iter().any(|p| p.1.is_some_and(f64::is_finite)) {
        return format!(
            "<h3 id=\"rule-{i}\">{}</h3><p>{}: the trace gives no value of {} to draw.</p>\n",
            esc(alert),
            esc(r.get("summary").str()),
            esc(metric)
        );
    }
    let factor = r.get("stable_factor").f64();
    let stable = factor.map(|_| points(&s, "stable"));
    // The threshold at each evaluation: a number, or the factor times the stable value.
    let threshold: Vec<(f64, Option<f64>)> = match (r.get("threshold").f64(), factor, &stable) {
        (Some(v), _, _) => canary.iter().map(|&(t, _)| (t, Some(v))).collect(),
        (None, Some(f), Some(st)) => st.iter().map(|&(t, v)| (t, v.map(|v| v * f))).collect(),
        _ => Vec::new(),
    };
    let end = d.get("end_ms").f64().unwrap_or(0.0);
    let start = d.get("trace_start_ms").f64().unwrap_or(0.0).min(0.0);
    let scale = if unit == "ratio" { 100.0 } else { 1.0 };
    let all = canary
        .iter()
        .chain(threshold.iter())
        .chain(stable.iter().flatten())
        .filter_map(|p| p.1)
        .filter(|v| v.is_finite());
    let (lo, hi) = all.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
        (a.min(v * scale), b.max(v * scale))
    });
    let (lo, hi) = if lo.is_finite() {
        (lo.min(0.0), hi)
    } else {
        (0.0, 1.0)
    };
    let pad = ((hi - lo) * 0.08).max(1e-9);
    // The time axis in minutes, hours or days, as the replay's length reads best.
    let (per, name) = match end - start {
        span if span > 3.0 * 86_400_000.0 => (86_400_000.0, "days"),
        span if span > 3.0 * 3_600_000.0 => (3_600_000.0, "hours"),
        _ => (60_000.0, "minutes"),
    };
    let x = Axis::linear(
        &format!("time from the release's start ({name})"),
        start / per,
        (end / per).max(start / per + 1.0),
        short,
    );
    let y = Axis::linear(
        &format!("{metric} ({})", unit_title(unit)),
        lo,
        hi + pad,
        short,
    );
    let mut p = Plot::new(&format!("{alert}: {metric} over time"), 300.0, x, y);
    let m = |pts: &[(f64, Option<f64>)]| -> Vec<(f64, Option<f64>)> {
        pts.iter()
            .map(|&(t, v)| (t / per, v.map(|v| v * scale)))
            .collect()
    };
    let (pending, firing) = states(d, alert, end);
    for (a, b) in &pending {
        let tip = format!(
            "{alert} pending from {} to {}",
            offset_ms(*a),
            offset_ms(*b)
        );
        p.band(a / per, b / per, "mark pending", &tip);
    }
    for (a, b) in &firing {
        let tip = format!("{alert} firing from {} to {}", offset_ms(*a), offset_ms(*b));
        p.band(a / per, b / per, "mark firing", &tip);
    }
    for ph in d.get("phases").items() {
        let at = ph.get("starts_ms").f64().unwrap_or(0.0);
        if at <= end {
            p.vline(at / per, "phase", ph.get("name").str(), 0);
        }
    }
    let v = d.get("verdict");
    if let Some(at) = v
        .get("at_ms")
        .f64()
        .filter(|_| v.get("outcome").str() != "running")
    {
        let what = v.get("outcome").str().replace('_', " ");
        p.vline(at / per, "verdict", &format!("verdict: {what}"), 1);
    }
    if !threshold.is_empty() {
        p.line(
            &m(&threshold),
            "threshold",
            &format!("threshold: {}", r.get("summary").str()),
        );
    }
    if let Some(st) = &stable {
        p.line(&m(st), "mark line s2", &format!("{metric}, stable version"));
        p.legend(&format!("{metric} (stable)"), "line s2", None);
    }
    p.line(&m(&canary), "mark line s0", &format!("{metric}, canary"));
    p.legend(&format!("{metric} (canary)"), "line s0", None);
    if !threshold.is_empty() {
        p.legend("threshold", "threshold", None);
    }
    p.legend("pending", "pending", None);
    p.legend("firing", "firing", None);
    let first = |k: &str| {
        r.get(k)
            .f64()
            .map_or_else(|| "never".to_string(), offset_ms)
    };
    let cap = format!(
        "{alert} ({}, {}): first pending {}, first firing {}.",
        r.get("kind").str(),
        r.get("summary").str(),
        first("first_pending_ms"),
        first("first_firing_ms")
    );
    let mut t = Table::new(
        &format!("{alert}: pending and firing"),
        &["state", "from (from start)", "to (from start)"],
    );
    for (name, spans) in [("pending", &pending), ("firing", &firing)] {
        for (a, b) in spans.iter() {
            t.row(&[td(name), td(&offset_ms(*a)), td(&offset_ms(*b))]);
        }
    }
    format!("<h3 id=\"rule-{i}\">{}</h3>", esc(alert)) + &figure(&cap, &p.finish(), &t.finish())
}

/// Every metric's values, one table each (collapsed: they are long).
fn values_tables(d: &At<'_>) -> String {
    let mut out = String::from("<h2>Values</h2>\n");
    for s in d.get("series").items() {
        let metric = s.get("metric").str();
        let unit = s.get("unit").str();
        let has_stable = s.get("stable").exists();
        let mut head = vec!["time from start", "canary"];
        if has_stable {
            head.push("stable");
        }
        let mut t = Table::new(&format!("{metric}: values at each evaluation"), &head);
        let canary = s.get("canary").items();
        let first = s.get("first_ms").f64().unwrap_or(0.0);
        let step = s.get("step_ms").f64().unwrap_or(1.0);
        for (k, c) in canary.iter().enumerate().take(MAX_TABLE_ROWS) {
            let mut cells = vec![
                th(&offset_ms(first + k as f64 * step)),
                num(c, |v| value(v, unit)),
            ];
            if has_stable {
                cells.push(num(&s.get("stable").idx(k), |v| value(v, unit)));
            }
            t.row(&cells);
        }
        out += &format!(
            "<details><summary>{} ({} values)</summary>{}</details>\n",
            esc(metric),
            canary.len(),
            t.finish()
        );
    }
    out
}
