//! The tune report (`plan tune --report FILE.html`), drawn from the tune's JSON document:
//! the trade-off between false rollbacks and faults caught (each setting the document
//! gives, with its 95% intervals as whiskers; the frontier drawn; the plan's own setting
//! and the recommended one marked; the budget), and the tables of the settings and rules.

use super::chart::{Axis, Plot};
use super::doc::At;
use super::escape::esc;
use super::format::{duration, pct, pct_tick};
use super::page::{About, Table, figure, num, page, proportion, td, th};
use super::svg::Shape;
use serde_json::Value;

/// A setting the chart shows: its role, its place in the document, its marker.
struct Shown<'a> {
    role: String,
    at: At<'a>,
    shape: Shape,
    class: &'static str,
    labelled: bool,
}

/// The page of a tune's document `doc`.
pub(crate) fn tune(doc: &Value, about: &About) -> String {
    let d = At::root(doc);
    let header = [
        ("Plan", d.get("plan").str().to_string()),
        ("Release", about.release.clone()),
        (
            "Run",
            format!(
                "tune, {} trials per scenario, {} settings of single rules",
                d.get("trials").raw(),
                d.get("settings_tried").raw()
            ),
        ),
        ("Seed", d.get("seed").raw()),
        ("Semantics", d.get("semantics").str().to_string()),
        ("Scenarios", d.get("scenarios").str().to_string()),
        ("Traffic", super::montecarlo::traffic(&d)),
        (
            "Budget",
            format!(
                "at most {} false rollbacks (upper end of the 95% interval)",
                pct(d.get("max_false_rollback").f64().unwrap_or(f64::NAN))
            ),
        ),
        ("Tool", about.tool.clone()),
    ];
    let mut shown: Vec<Shown<'_>> = Vec::new();
    for (i, c) in d.get("candidates").items().into_iter().enumerate() {
        shown.push(Shown {
            role: format!("candidate {}", i + 1),
            at: c,
            shape: Shape::Circle,
            class: "mark dot s5",
            labelled: false,
        });
    }
    for (i, f) in d.get("frontier").items().into_iter().enumerate() {
        shown.push(Shown {
            role: format!("frontier setting {}", i + 1),
            at: f,
            shape: Shape::Circle,
            class: "mark dot s0",
            labelled: false,
        });
    }
    for (i, w) in d.get("per_window").items().into_iter().enumerate() {
        shown.push(Shown {
            role: format!("best of window {}", i + 1),
            at: w.get("best"),
            shape: Shape::Triangle,
            class: "mark dot s2",
            labelled: false,
        });
    }
    if d.get("refinement").exists() {
        shown.push(Shown {
            role: "coarse recommendation".into(),
            at: d.get("refinement").get("coarse"),
            shape: Shape::Triangle,
            class: "mark dot s4",
            labelled: false,
        });
    }
    if d.get("calmest").exists() {
        shown.push(Shown {
            role: "calmest".into(),
            at: d.get("calmest"),
            shape: Shape::Square,
            class: "mark dot s7",
            labelled: true,
        });
    }
    shown.push(Shown {
        role: "current".into(),
        at: d.get("current"),
        shape: Shape::Diamond,
        class: "mark dot s1",
        labelled: true,
    });
    if d.get("recommended").exists() {
        shown.push(Shown {
            role: "recommended".into(),
            at: d.get("recommended"),
            shape: Shape::Square,
            class: "mark dot s3",
            labelled: true,
        });
    }
    let mut body = String::from("<h2>Trade-off</h2>\n");
    body += &figure(
        "False rollbacks (healthy releases rolled back) against faults caught, each setting on the same trials, with 95% intervals; the dashed line is the frontier (the best setting at each false-rollback level), the dotted line the budget.",
        &chart(&d, &shown),
        &settings_table(&shown),
    );
    body += &rules_table(&d);
    body += &scenarios_table(&d);
    if d.get("check").exists() {
        let c = d.get("check");
        let mut t = Table::new(
            &format!(
                "Check of the recommended setting on fresh trials (seed {})",
                c.get("seed").raw()
            ),
            &["figure", "share", "95% low", "95% high", "trials"],
        );
        for (label, key) in [("false rollback", "false_rollback"), ("caught", "caught")] {
            let mut cells = vec![th(label)];
            cells.extend(proportion(&c.get(key)));
            t.row(&cells);
        }
        body += "<h2>Check</h2>\n";
        body += &format!(
            "<p>{}</p>",
            if c.get("within_budget").bool() {
                "Within the budget on fresh trials."
            } else {
                "Over the budget on fresh trials: not recommended; tune with more trials."
            }
        );
        body += &t.finish();
    }
    page(
        &format!("Tuning of {}", d.get("plan").str()),
        &header,
        &body,
    )
}

fn chart(d: &At<'_>, shown: &[Shown<'_>]) -> String {
    let fig = |s: &Shown<'_>, k: &str, i: usize| s.at.get(k).get("ci95").idx(i).f64();
    let xmax = shown
        .iter()
        .filter_map(|s| fig(s, "false_rollback", 1))
        .chain(d.get("max_false_rollback").f64())
        .fold(0.0, f64::max);
    let x = Axis::linear(
        "false rollbacks, share of healthy releases (%)",
        0.0,
        (xmax * 1.15).max(0.01),
        pct_tick,
    );
    let y = Axis::linear(
        "faults caught, share of faulty trials (%)",
        0.0,
        1.0,
        pct_tick,
    );
    let mut p = Plot::new(
        "Trade-off between false rollbacks and faults caught",
        420.0,
        x,
        y,
    );
    if let Some(b) = d.get("max_false_rollback").f64() {
        p.vline(b, "budget", "budget", 0);
    }
    let frontier: Vec<(f64, Option<f64>)> = d
        .get("frontier")
        .items()
        .iter()
        .filter_map(|f| {
            Some((
                f.get("false_rollback").get("probability").f64()?,
                f.get("caught").get("probability").f64(),
            ))
        })
        .collect();
    if frontier.len() > 1 {
        p.line(&frontier, "frontier", "frontier");
    }
    for s in shown {
        let fr = s.at.get("false_rollback");
        let c = s.at.get("caught");
        let v = |a: &At<'_>, k: usize| a.get("ci95").idx(k).f64().unwrap_or(0.0);
        let (x, y) = (
            fr.get("probability").f64().unwrap_or(0.0),
            c.get("probability").f64().unwrap_or(0.0),
        );
        let tip = format!(
            "{}: false rollback {} [{}, {}], caught {} [{}, {}]; {}",
            s.role,
            pct(x),
            pct(v(&fr, 0)),
            pct(v(&fr, 1)),
            pct(y),
            pct(v(&c, 0)),
            pct(v(&c, 1)),
            setting(&s.at)
        );
        p.point(
            (x, y),
            (v(&fr, 0), v(&fr, 1), v(&c, 0), v(&c, 1)),
            s.shape,
            s.class,
            &tip,
        );
        if s.labelled {
            p.label((x, y), &s.role);
        }
    }
    let mut seen: Vec<&str> = Vec::new();
    for s in shown {
        let kind = s
            .role
            .trim_end_matches(|c: char| c.is_ascii_digit())
            .trim_end();
        if !seen.contains(&kind) {
            seen.push(kind);
            p.legend(kind, s.class.trim_start_matches("mark "), Some(s.shape));
        }
    }
    if frontier.len() > 1 {
        p.legend("frontier", "frontier", None);
    }
    p.finish()
}

/// A setting as people read it: each rule's, joined.
fn setting(at: &At<'_>) -> String {
    at.get("setting")
        .items()
        .iter()
        .map(|s| s.str().to_string())
        .collect::<Vec<_>>()
        .join("; ")
}

fn settings_table(shown: &[Shown<'_>]) -> String {
    let mut t = Table::new(
        "Settings on the chart",
        &[
            "setting",
            "false rollback",
            "95% low",
            "95% high",
            "healthy trials rolled back",
            "caught",
            "95% low",
            "95% high",
            "faulty trials caught",
            "mean time to catch",
        ],
    );
    for s in shown {
        let mut cells = vec![th(&s.role)];
        cells.extend(proportion(&s.at.get("false_rollback")));
        cells.extend(proportion(&s.at.get("caught")));
        cells.push(num(&s.at.get("mean_time_to_catch_s"), duration));
        t.row(&cells);
    }
    let mut rules = String::from("<details><summary>Each setting's rules</summary><dl>");
    for s in shown {
        rules += &format!("<dt>{}</dt>", esc(&s.role));
        for r in s.at.get("setting").items() {
            rules += &format!("<dd>{}</dd>", esc(r.str()));
        }
    }
    t.finish() + &rules + "</dl></details>"
}

fn rules_table(d: &At<'_>) -> String {
    let mut t = Table::new(
        "Rules: as the plan states them, and as recommended",
        &["rule", "kind", "tuned", "current", "recommended"],
    );
    for r in d.get("rules").items() {
        t.row(&[
            th(r.get("target").str()),
            td(r.get("kind").str()),
            td(if r.get("tuned").bool() { "yes" } else { "kept" }),
            td(r.get("current").str()),
            td(r.get("recommended").str()),
        ]);
    }
    "<h2>Rules</h2>\n".to_string() + &t.finish()
}

fn scenarios_table(d: &At<'_>) -> String {
    let cur = d.get("current").get("per_scenario").items();
    let rec = d.get("recommended").get("per_scenario");
    let mut t = Table::new(
        "Caught per faulty scenario, today and recommended",
        &[
            "scenario",
            "caught today",
            "95% low",
            "95% high",
            "trials",
            "caught recommended",
            "95% low",
            "95% high",
            "trials",
        ],
    );
    for (i, c) in cur.iter().enumerate() {
        let mut cells = vec![th(c.get("scenario").str())];
        cells.extend(proportion(&c.get("caught")));
        if rec.exists() {
            cells.extend(proportion(&rec.idx(i).get("caught")));
        }
        t.row(&cells);
    }
    format!("<h2>{}</h2>\n", esc("Per scenario")) + &t.finish()
}
