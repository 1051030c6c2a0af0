//! The Monte Carlo report (`plan simulate --report FILE.html`), drawn from the run's JSON
//! document (`--format json`): per scenario its outcomes with their 95% intervals; how time
//! to catch is spread in each faulty scenario; rollbacks by phase and by rule.

use super::chart::{Axis, Bar, Plot, Stack, bars, stacked};
use super::doc::At;
use super::format::{duration, pct, pct_tick};
use super::page::{About, Table, figure, num, page, proportion, th};
use crate::sim::report::ExpositionAssumed;
use serde_json::Value;

/// The page of a Monte Carlo run's document `doc`.
pub(crate) fn simulation(doc: &Value, about: &About) -> String {
    let d = At::root(doc);
    let a = d.get("assumptions");
    let header = [
        ("Plan", d.get("plan").str().to_string()),
        ("Release", about.release.clone()),
        (
            "Run",
            format!(
                "Monte Carlo, {} trials per scenario",
                d.get("trials_per_scenario").raw()
            ),
        ),
        ("Seed", d.get("seed").raw()),
        ("Semantics", d.get("semantics").str().to_string()),
        ("Scenarios", a.get("scenario_file").str().to_string()),
        ("Traffic", traffic(&a)),
        ("Exposition", exposition(&a)),
        ("Tool", about.tool.clone()),
    ];
    let scenarios = d.get("scenarios").items();
    let mut body = String::new();
    body += "<h2>Outcomes per scenario</h2>\n<p class=\"note\">Share of trials, with its 95% (Wilson) interval as whiskers. A faulty trial is caught (rolled back after the fault began, its healthy twin not), rolled back anyway (its twin rolled back too), missed, or its fault began after the release.</p>\n";
    for s in &scenarios {
        body += &outcomes(s);
    }
    body += &time_to_catch(&scenarios);
    body += &by_phase(&scenarios);
    body += &by_rule(&scenarios);
    page(
        &format!("Simulation of {}", d.get("plan").str()),
        &header,
        &body,
    )
}

/// Where the trials' traffic came from: the synthetic model, or a recording
/// (`--baseline`), with the warnings the run gave about it; `a` holds the document's
/// `recording`, if any (a simulation's assumptions, a tune's document).
pub(crate) fn traffic(a: &At<'_>) -> String {
    let r = a.get("recording");
    if !r.exists() {
        return "synthetic model".to_string();
    }
    let files: Vec<String> = r
        .get("files")
        .items()
        .iter()
        .map(|f| f.str().to_string())
        .collect();
    let dur = |key: &str| crate::sim::report::dur(r.get(key).f64().unwrap_or(f64::NAN));
    let mut out = format!(
        "built from the recording {} ({} of it every {}, blocks of {})",
        files.join(", "),
        dur("span_seconds"),
        dur("step_seconds"),
        dur("block_seconds")
    );
    for w in r.get("warnings").items() {
        out += "; warning: ";
        out += w.str();
    }
    out
}

/// How the trials took the service's series to be exposed, as the text report's
/// `exposition` lines say it; `a` holds the document's assumptions.
fn exposition(a: &At<'_>) -> String {
    (a.get("exposition").value())
        .and_then(ExpositionAssumed::from_json)
        .map_or_else(
            || "not stated".to_string(),
            |e| e.lines(a.get("recording").exists()).join("; "),
        )
}

/// The outcomes of one scenario, as bars and as a table.
fn outcomes(s: &At<'_>) -> String {
    let name = s.get("name").str();
    let faulty = s.get("faulty").bool();
    let mut rows: Vec<(&str, At<'_>, usize)> = vec![
        ("promoted", s.get("completed"), 2),
        ("rolled back by a rule", s.get("rule_rollback"), 3),
        ("rolled back by a gate", s.get("gate_rollback"), 1),
    ];
    if s.get("holds").exists() {
        rows.push(("held at the end", s.get("holds").get("ended_held"), 7));
    }
    if faulty {
        rows.push(("caught", s.get("caught"), 0));
        rows.push(("rolled back anyway", s.get("rolled_back_anyway"), 4));
        rows.push(("missed", s.get("missed"), 6));
        rows.push(("escaped to 100%", s.get("escape"), 5));
    } else {
        rows.push(("false rollback", s.get("false_rollback"), 4));
    }
    let bar_rows: Vec<Bar> = rows
        .iter()
        .map(|(label, p, c)| {
            let share = p.get("probability").f64().unwrap_or(0.0);
            let lo = p.get("ci95").idx(0).f64().unwrap_or(share);
            let hi = p.get("ci95").idx(1).f64().unwrap_or(share);
            Bar {
                label: (*label).to_string(),
                share,
                lo,
                hi,
                class: format!("s{c}"),
                tip: format!(
                    "{name}: {label} {} [{}, {}], {} of {} trials",
                    pct(share),
                    pct(lo),
                    pct(hi),
                    p.get("count").raw(),
                    p.get("trials").raw()
                ),
            }
        })
        .collect();
    let chart = bars(
        &format!("Outcomes of scenario {name}"),
        &bar_rows,
        "share of trials (%)",
    );
    let mut t = Table::new(
        &format!("Outcomes of scenario {name}"),
        &["outcome", "share", "95% low", "95% high", "trials"],
    );
    for (label, p, _) in &rows {
        let mut cells = vec![th(label)];
        cells.extend(proportion(p));
        t.row(&cells);
    }
    let mut cap = format!("{name}: {}", s.get("description").str());
    if faulty && s.get("time_to_catch_seconds").exists() {
        let q = s.get("time_to_catch_seconds");
        cap += &format!(
            " (time to catch: median {}, p90 {})",
            duration(q.get("median").f64().unwrap_or(f64::NAN)),
            duration(q.get("p90").f64().unwrap_or(f64::NAN))
        );
    }
    format!("<h3>{}</h3>", super::escape::esc(name)) + &figure(&cap, &chart, &t.finish())
}

/// Round durations for a log axis of seconds.
const TIME_TICKS: [f64; 14] = [
    1.0,
    10.0,
    60.0,
    300.0,
    900.0,
    3600.0,
    3.0 * 3600.0,
    6.0 * 3600.0,
    12.0 * 3600.0,
    86_400.0,
    2.0 * 86_400.0,
    7.0 * 86_400.0,
    14.0 * 86_400.0,
    30.0 * 86_400.0,
];

/// The distribution of time to catch per faulty scenario: a step line each.
fn time_to_catch(scenarios: &[At<'_>]) -> String {
    let caught: Vec<&At<'_>> = scenarios
        .iter()
        .filter(|s| !s.get("time_to_catch_cdf").items().is_empty())
        .collect();
    let mut s = String::from("<h2>Time to catch</h2>\n");
    if caught.is_empty() {
        return s + "<p>No trial was caught: there is no time to catch to show.</p>\n";
    }
    let times: Vec<f64> = caught
        .iter()
        .flat_map(|c| c.get("time_to_catch_cdf").items())
        .filter_map(|p| p.get("seconds").f64())
        .collect();
    let lo = times.iter().copied().fold(f64::INFINITY, f64::min).max(1.0);
    let hi = times.iter().copied().fold(0.0, f64::max).max(lo * 2.0);
    let x = Axis {
        title: "time from the fault's onset to the rollback (log scale)".into(),
        min: lo / 1.5,
        max: hi * 1.2,
        log: true,
        ticks: Some(TIME_TICKS.to_vec()),
        show: duration,
    };
    let y = Axis::linear("caught trials rolled back by then (%)", 0.0, 1.0, pct_tick);
    let mut p = Plot::new("Time to catch, per faulty scenario", 340.0, x, y);
    let mut t = Table::new(
        "Time to catch: by when each share of the caught trials was rolled back",
        &[
            &["share of caught trials"][..],
            &caught
                .iter()
                .map(|c| c.get("name").str())
                .collect::<Vec<_>>()[..],
        ]
        .concat(),
    );
    for (i, c) in caught.iter().enumerate() {
        let name = c.get("name").str();
        let pts: Vec<(f64, f64)> = c
            .get("time_to_catch_cdf")
            .items()
            .iter()
            .filter_map(|q| Some((q.get("seconds").f64()?, q.get("share").f64()?)))
            .collect();
        let class = format!("mark line s{}", i % 8);
        p.steps(lo / 1.5, &pts, &class, &format!("{name}: time to catch"));
        p.legend(name, &format!("line s{}", i % 8), None);
    }
    let rows = caught[0].get("time_to_catch_cdf").items().len();
    for k in 0..rows {
        let share = caught[0].get("time_to_catch_cdf").idx(k).get("share");
        let mut cells = vec![num(&share, pct)];
        for c in &caught {
            cells.push(num(
                &c.get("time_to_catch_cdf").idx(k).get("seconds"),
                duration,
            ));
        }
        t.row(&cells);
    }
    s += &figure(
        "Each line rises to 100% of the scenario's caught trials; further right is later (nearest rank, every 5%).",
        &p.finish(),
        &t.finish(),
    );
    s
}

/// Rollbacks by phase: a stacked bar per scenario.
fn by_phase(scenarios: &[At<'_>]) -> String {
    breakdown(
        scenarios,
        "Rollbacks by phase",
        "the phase the release was rolled back in",
        &["rollbacks_by_phase"],
    )
}

/// Rollbacks by the rule or gate that made them.
fn by_rule(scenarios: &[At<'_>]) -> String {
    breakdown(
        scenarios,
        "Rollbacks by rule",
        "the first rollback rule to fire, or the first gate failing at a phase's end",
        &["first_rule", "first_gate"],
    )
}

/// Trials per scenario split by the names of the maps `keys` (phase, rule or gate →
/// trials): a stacked bar per scenario, and a table of the counts.
fn breakdown(scenarios: &[At<'_>], title: &str, what: &str, keys: &[&str]) -> String {
    let mut names: Vec<String> = Vec::new();
    for s in scenarios {
        for k in keys {
            for (n, _) in s.get(k).entries() {
                let label = if *k == "first_gate" {
                    format!("gate {n}")
                } else {
                    n.to_string()
                };
                if !names.contains(&label) {
                    names.push(label);
                }
            }
        }
    }
    let mut out = format!("<h2>{}</h2>\n", super::escape::esc(title));
    if names.is_empty() {
        return out + "<p>No trial was rolled back.</p>\n";
    }
    let mut stacks = Vec::new();
    let mut head = vec!["scenario", "trials"];
    head.extend(names.iter().map(String::as_str));
    let mut t = Table::new(&format!("{title}: trials rolled back, by {what}"), &head);
    for s in scenarios {
        let trials = s.get("trials").f64().unwrap_or(0.0).max(1.0);
        let mut parts = Vec::new();
        let mut cells = vec![
            th(s.get("name").str()),
            num(&s.get("trials"), |v| format!("{v}")),
        ];
        for (i, n) in names.iter().enumerate() {
            let at = keys
                .iter()
                .map(|k| {
                    let key = if *k == "first_gate" {
                        n.strip_prefix("gate ").unwrap_or("\u{0}")
                    } else {
                        n.as_str()
                    };
                    s.get(k).get(key)
                })
                .find(At::exists);
            match at {
                Some(at) => {
                    let c = at.f64().unwrap_or(0.0);
                    parts.push((c / trials, n.clone(), i));
                    cells.push(num(&at, |v| format!("{v}")));
                }
                None => cells.push("<td class=\"n\">0</td>".into()),
            }
        }
        t.row(&cells);
        stacks.push(Stack {
            label: s.get("name").str().to_string(),
            parts,
        });
    }
    let chart = stacked(title, &stacks, &names, "share of trials rolled back (%)");
    out += &figure(
        &format!("Share of each scenario's trials rolled back, by {what}."),
        &chart,
        &t.finish(),
    );
    out
}
