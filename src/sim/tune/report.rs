//! What `plan tune` reports: one document, printed for people or as JSON (the same
//! numbers), built once from the sweep, the search and the check.

use super::search::{Figures, Point};
use super::space::target;
use super::space::{Knob, Variant};
use super::written::{restate, show_for};
use crate::check::CheckedPlan;
use crate::lower::{AlertRule, Condition, RuleKind, show_rhs};
use crate::model::{Amount, Threshold, trim};
use crate::sim::stats::Proportion;
use serde::Serialize;

/// The layout of [`Report`]: 2 added the rate window (`windows_s`, each point's
/// `window_s`) and insertions among the edits (`from: null`); 3 the `min_requests` guards
/// (each point's `min_requests`, each rule's `min_requests_tried` and
/// `recommended_min_requests`) and deleted lines among the edits (`to: null`); 4 the
/// refining pass (each point's `pass`, `refinement`); 5 the `candidates`; 6 the `trade`.
pub(crate) const SCHEMA_VERSION: u32 = 6;

/// The tune's document.
#[derive(Debug, Serialize)]
pub(crate) struct Report {
    pub(crate) schema_version: u32,
    pub(crate) plan: String,
    pub(crate) scenarios: String,
    pub(crate) seed: u64,
    pub(crate) trials: u64,
    pub(crate) semantics: &'static str,
    /// The false-rollback budget: the upper end of the rate's 95% interval.
    pub(crate) max_false_rollback: f64,
    /// Settings tried per rule, all on the same trials (over every window).
    pub(crate) settings_tried: usize,
    /// The rate windows tried, the plan's own first (`--vary window=...`; else only it).
    pub(crate) windows_s: Vec<f64>,
    /// With more than one window: per window (in `windows_s`' order), its best setting
    /// within the budget, or its calmest when none meets it.
    pub(crate) per_window: Vec<WindowBest>,
    pub(crate) rules: Vec<RuleReport>,
    pub(crate) faulty_scenarios: Vec<String>,
    pub(crate) current: PointReport,
    /// None when no setting meets the budget.
    pub(crate) recommended: Option<PointReport>,
    /// The calmest setting, when no setting meets the budget: how close it comes.
    pub(crate) calmest: Option<PointReport>,
    /// The refining pass around the coarse recommendation, when it changed some rule.
    pub(crate) refinement: Option<Refinement>,
    pub(crate) frontier: Vec<PointReport>,
    /// Every setting the search found best at one of the frontier's budgets (in either
    /// pass), dominated or not, by increasing false rollbacks: the frontier is those that
    /// no other beats.
    pub(crate) candidates: Vec<PointReport>,
    /// How far the plan's own setting is from the frontier.
    pub(crate) distance: Distance,
    /// When a calmer frontier setting catches as many faulty trials as the recommended
    /// one: what the recommendation's extra false rollbacks buy (only speed).
    pub(crate) trade: Option<Trade>,
    /// The recommended setting simulated afresh.
    pub(crate) check: Option<Check>,
    /// Settings recommended first whose check was over the budget, each replaced by the
    /// best setting within a tighter budget on the tune's trials.
    pub(crate) set_aside: Vec<SetAside>,
    /// The plan file's lines that the recommended setting changes.
    pub(crate) edits: Vec<LineEdit>,
    /// Whether they were written into the plan (`--write`).
    pub(crate) written: bool,
    /// With `--baseline`: the recording every trial was built from.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) recording: Option<crate::sim::report::RecordingAssumptions>,
}

/// The refining pass ([`super::refine`]).
#[derive(Debug, Serialize)]
pub(crate) struct Refinement {
    /// The rules refined: those the coarse recommendation changed.
    pub(crate) rules: Vec<String>,
    /// The refined sweep's settings of single rules.
    pub(crate) settings_tried: usize,
    /// The coarse recommendation it started from (same trials, same figures).
    pub(crate) coarse: PointReport,
    /// Whether the recommendation is a refined setting, better than the coarse one.
    pub(crate) improved: bool,
}

/// A window's best setting on its own.
#[derive(Debug, Serialize)]
pub(crate) struct WindowBest {
    /// Whether it meets the budget (else it is the window's calmest setting).
    pub(crate) within_budget: bool,
    pub(crate) best: PointReport,
}

/// A setting whose check failed.
#[derive(Debug, Serialize)]
pub(crate) struct SetAside {
    /// The budget it met on the tune's trials.
    pub(crate) tune_budget: f64,
    pub(crate) setting: Vec<String>,
    pub(crate) check_false_rollback: Proportion,
}

/// One changed line of the plan file (`from` the old line, `to` the new one), lines
/// inserted before old line `line` (`from` None; `to` the new lines, joined by newlines),
/// or a deleted line (`to` None).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct LineEdit {
    pub(crate) line: usize,
    pub(crate) from: Option<String>,
    pub(crate) to: Option<String>,
}

/// A tuned (or kept) rule.
#[derive(Debug, Serialize)]
pub(crate) struct RuleReport {
    /// `error_rate`, or `gates.availability`.
    pub(crate) target: String,
    pub(crate) kind: &'static str,
    pub(crate) tuned: bool,
    pub(crate) thresholds: usize,
    pub(crate) fors_s: Vec<f64>,
    pub(crate) current: String,
    /// Its recommended setting, as people read it, and as numbers.
    pub(crate) recommended: Option<String>,
    pub(crate) recommended_threshold: Option<f64>,
    pub(crate) recommended_for_s: Option<f64>,
    /// The `min_requests` guards tried (null: no guard), the plan's own among them; one
    /// when the guard is not searched.
    pub(crate) min_requests_tried: Vec<Option<u64>>,
    /// The recommended guard (null: none, or nothing recommended).
    pub(crate) recommended_min_requests: Option<u64>,
    /// The thresholds tried, easiest first, as the plan would state them.
    pub(crate) tried: Vec<String>,
    /// Whether the recommended threshold is the easiest or the hardest tried: the best
    /// may lie beyond (`--vary` widens the range).
    pub(crate) at_edge: bool,
    /// Healthy trials this rule rolled back under the calmest setting, when no setting
    /// meets the budget.
    pub(crate) calmest_false_rollbacks: Option<u64>,
}

/// A setting's figures on the tune's trials.
#[derive(Debug, Serialize)]
pub(crate) struct PointReport {
    /// The rate window of the plan it is a setting of.
    pub(crate) window_s: f64,
    /// The pass it comes from: `coarse` (the default grid) or `refined`.
    pub(crate) pass: &'static str,
    /// Per rule, in the order of `rules`: as people read it, and as numbers (the
    /// threshold, or the factor of stable; the `for` in seconds).
    pub(crate) setting: Vec<String>,
    pub(crate) thresholds: Vec<f64>,
    pub(crate) fors_s: Vec<f64>,
    /// Per rule, its `min_requests` guard (null: none).
    pub(crate) min_requests: Vec<Option<u64>>,
    pub(crate) false_rollback: Proportion,
    /// Over every faulty trial.
    pub(crate) caught: Proportion,
    pub(crate) per_scenario: Vec<ScenarioFigures>,
    pub(crate) mean_time_to_catch_s: Option<f64>,
    pub(crate) mean_requests_exposed: f64,
}

#[derive(Debug, Serialize)]
pub(crate) struct ScenarioFigures {
    pub(crate) scenario: String,
    pub(crate) caught: Proportion,
    pub(crate) escaped: Proportion,
    /// Mean time from the fault's onset to a caught rollback (None in a check).
    pub(crate) mean_time_to_catch_s: Option<f64>,
}

/// The plan's setting against the frontier.
#[derive(Debug, Serialize)]
pub(crate) struct Distance {
    /// The most caught by a frontier setting with no more false rollbacks than today.
    pub(crate) caught_at_same_false_rollback: Option<Proportion>,
    /// The fewest false rollbacks of a frontier setting that catches as many as today.
    pub(crate) false_rollback_at_same_caught: Option<Proportion>,
}

/// What the recommendation spends its extra false rollbacks on, against the calmest
/// frontier setting that catches as many faulty trials: only catching sooner.
#[derive(Debug, Serialize)]
pub(crate) struct Trade {
    /// That setting's index in `frontier`.
    pub(crate) frontier_index: usize,
    /// The recommendation's false rollbacks minus that setting's, in percentage points.
    pub(crate) false_rollback_points: f64,
    /// How much sooner the recommendation catches on average (over the trials each
    /// catches; negative: later).
    pub(crate) sooner_s: Option<f64>,
}

/// The trade of `recommended` against the calmest `frontier` setting that catches as many
/// faulty trials with fewer false rollbacks; None when no such setting exists (then every
/// false rollback the recommendation allows buys trials caught).
pub(crate) fn trade(recommended: &PointReport, frontier: &[PointReport]) -> Option<Trade> {
    let (i, calmer) = frontier
        .iter()
        .enumerate()
        .filter(|(_, p)| {
            p.caught.count >= recommended.caught.count
                && p.false_rollback.count < recommended.false_rollback.count
        })
        .min_by_key(|(_, p)| p.false_rollback.count)?;
    Some(Trade {
        frontier_index: i,
        false_rollback_points: 100.0
            * (recommended.false_rollback.probability - calmer.false_rollback.probability),
        sooner_s: calmer
            .mean_time_to_catch_s
            .zip(recommended.mean_time_to_catch_s)
            .map(|(c, r)| c - r),
    })
}

/// The recommended setting re-simulated by `plan simulate`'s own run with another seed.
#[derive(Debug, Serialize)]
pub(crate) struct Check {
    pub(crate) seed: u64,
    pub(crate) false_rollback: Proportion,
    /// Over every faulty trial.
    pub(crate) caught: Proportion,
    pub(crate) within_budget: bool,
    pub(crate) per_scenario: Vec<ScenarioFigures>,
}

/// A knob's variant as people read it: `error_rate > 10% for 5m`; a gate as written,
/// on its healthy side (`availability > 99.5%`).
pub(crate) fn show(plan: &CheckedPlan, rules: &[AlertRule], knob: &Knob, v: Variant) -> String {
    let rule = &rules[knob.rule];
    let m = &plan.metrics[rule.metric];
    let condition = knob.ladder.conditions[v.level];
    let Condition::Compare { op, rhs } = condition else {
        return rule.summary.clone();
    };
    // As the plan writes it, at this level; a bare number in the metric's unit (`0.1`)
    // reads better as the unit shows it (`10%`).
    let bare = |w: &str| {
        matches!(
            Threshold::parse(w.trim()),
            Ok(Threshold::Absolute(Amount::Number(_)))
        )
    };
    let written = knob
        .written
        .as_deref()
        .filter(|w| rule.kind == RuleKind::Gate || !bare(w))
        .and_then(|w| restate(w, knob.level(v), m.unit).ok());
    match rule.kind {
        RuleKind::Gate => match written {
            Some(w) => format!("{} {w}", m.name),
            None => format!("{} {} {}", m.name, op.negate().as_str(), show_rhs(rhs, m)),
        },
        _ => format!(
            "{} {} {} for {}{}",
            m.name,
            op.as_str(),
            written.unwrap_or_else(|| show_rhs(rhs, m)),
            show_for(knob.fors[v.for_]),
            // A guard counts over the plan's window.
            knob.guard(v)
                .map(|g| crate::lower::show_guard(g, plan.monitoring.window))
                .unwrap_or_default()
        ),
    }
}

/// A point's report: a setting of `plan` (whose rate window is `window_ms`).
pub(crate) fn point(
    (plan, rules): (&CheckedPlan, &[AlertRule]),
    knobs: &[Knob],
    names: &[String],
    p: &Point,
    window_ms: u64,
) -> PointReport {
    let f = &p.figures;
    let pairs = || knobs.iter().zip(&p.setting);
    PointReport {
        window_s: window_ms as f64 / 1000.0,
        pass: p.pass.name(),
        setting: pairs().map(|(k, &v)| show(plan, rules, k, v)).collect(),
        thresholds: pairs().map(|(k, &v)| k.level(v)).collect(),
        fors_s: pairs()
            .map(|(k, &v)| k.fors[v.for_] as f64 / 1000.0)
            .collect(),
        min_requests: pairs().map(|(k, &v)| k.guards[v.guard]).collect(),
        false_rollback: f.false_rollback(),
        caught: f.detection(),
        per_scenario: names
            .iter()
            .zip(&f.faulty)
            .map(|(n, x)| ScenarioFigures {
                scenario: n.clone(),
                caught: Proportion::new(x.caught, x.trials),
                escaped: Proportion::new(x.escaped, x.trials),
                mean_time_to_catch_s: (x.caught > 0)
                    .then(|| x.catch_ms as f64 / x.caught as f64 / 1000.0),
            })
            .collect(),
        mean_time_to_catch_s: f.mean_catch_ms().map(|ms| ms / 1000.0),
        mean_requests_exposed: f.mean_exposed(),
    }
}

/// The rules' part of the report: as the plan states them (`plan`, with its `knobs`),
/// and as recommended, of the plan with the recommended window (`tuned`, with its knobs:
/// a gate's `for` is the window).
pub(crate) fn rules(
    (plan, rules): (&CheckedPlan, &[AlertRule]),
    knobs: &[Knob],
    tuned: ((&CheckedPlan, &[AlertRule]), &[Knob]),
    recommended: Option<&Point>,
) -> Vec<RuleReport> {
    let ((tuned_plan, tuned_rules), tuned_knobs) = tuned;
    knobs
        .iter()
        .enumerate()
        .map(|(i, k)| {
            let rec = recommended.map(|p| p.setting[i]);
            RuleReport {
                target: target(&rules[k.rule]),
                kind: match k.kind {
                    RuleKind::Gate => "gate",
                    _ => "rollback",
                },
                tuned: k.tuned(),
                thresholds: k.ladder.len(),
                fors_s: k.fors.iter().map(|&f| f as f64 / 1000.0).collect(),
                current: show(plan, rules, k, k.current),
                recommended: rec.map(|v| show(tuned_plan, tuned_rules, &tuned_knobs[i], v)),
                recommended_threshold: rec.map(|v| tuned_knobs[i].level(v)),
                recommended_for_s: rec.map(|v| tuned_knobs[i].fors[v.for_] as f64 / 1000.0),
                min_requests_tried: k.guards.clone(),
                recommended_min_requests: rec.and_then(|v| tuned_knobs[i].guards[v.guard]),
                tried: (0..k.ladder.len())
                    .map(|level| {
                        let v = Variant { level, ..k.current };
                        show(plan, rules, k, v)
                    })
                    .collect(),
                // By value: the recommended knob may be the refined one, whose ladder lies
                // within this one's.
                at_edge: rec.is_some_and(|v| {
                    let level = tuned_knobs[i].level(v);
                    let at = |l: usize| {
                        k.level(Variant {
                            level: l,
                            ..k.current
                        }) == level
                    };
                    k.tuned()
                        && k.ladder.len() > 1
                        && tuned_knobs[i].ladder.conditions[v.level]
                            != k.ladder.conditions[k.current.level]
                        && (at(0) || at(k.ladder.len() - 1))
                }),
                calmest_false_rollbacks: None,
            }
        })
        .collect()
}

/// How far `current` is from the frontier.
pub(crate) fn distance(current: &Figures, frontier: &[Point]) -> Distance {
    Distance {
        caught_at_same_false_rollback: frontier
            .iter()
            .filter(|p| p.figures.false_rollbacks <= current.false_rollbacks)
            .max_by_key(|p| p.figures.caught())
            .map(|p| p.figures.detection()),
        false_rollback_at_same_caught: frontier
            .iter()
            .filter(|p| p.figures.caught() >= current.caught())
            .min_by_key(|p| p.figures.false_rollbacks)
            .map(|p| p.figures.false_rollback()),
    }
}

/// A check's per-scenario figures.
pub(crate) fn check_figures(names: &[String], caught: &[(u64, u64, u64)]) -> Vec<ScenarioFigures> {
    names
        .iter()
        .zip(caught)
        .map(|(n, &(c, e, t))| ScenarioFigures {
            scenario: n.clone(),
            caught: Proportion::new(c, t),
            escaped: Proportion::new(e, t),
            mean_time_to_catch_s: None,
        })
        .collect()
}

fn pct(p: &Proportion) -> String {
    format!(
        "{} [{}, {}]",
        percent(p.probability),
        percent(p.ci95[0]),
        percent(p.ci95[1])
    )
}

pub(crate) fn percent(v: f64) -> String {
    if v.is_nan() {
        return "-".into();
    }
    let x = v * 100.0;
    if x == 0.0 || x == 100.0 {
        format!("{}%", trim(x))
    } else if x < 1.0 {
        format!("{:.2}%", x)
    } else {
        format!("{:.1}%", x)
    }
}

/// A rate window (in seconds, as the report keeps it) as the plan writes it.
fn window(s: f64) -> String {
    super::window::show((s * 1000.0).round() as u64)
}

fn duration_s(s: Option<f64>) -> String {
    match s {
        None => "-".into(),
        Some(s) if s < 120.0 => format!("{:.0}s", s),
        Some(s) if s < 7200.0 => format!("{:.1}m", s / 60.0),
        Some(s) => format!("{:.1}h", s / 3600.0),
    }
}

/// The report for people.
pub(crate) fn text(r: &Report) -> String {
    let mut s = String::new();
    let tuned = r.rules.iter().filter(|x| x.tuned).count();
    s += &format!(
        "plan `{}`: tuned {} of {} rules over {} ({} trials per scenario, seed {}, {}); {} settings of single rules, each on the same trials\n",
        r.plan,
        tuned,
        r.rules.len(),
        r.scenarios,
        r.trials,
        r.seed,
        r.semantics,
        r.settings_tried
    );
    if let Some(rec) = &r.recording {
        s += "trials built from a recording of the healthy service (--baseline):\n";
        s += &crate::sim::report::recording_lines(rec);
    }
    s += &format!(
        "budget: at most {} of healthy releases rolled back (the upper end of the 95% interval)\n",
        percent(r.max_false_rollback)
    );
    let windows = r.windows_s.len() > 1;
    if windows {
        let shown: Vec<String> = r.windows_s.iter().map(|&w| window(w)).collect();
        s += &format!(
            "rate windows: {} (as the plan runs now), {}, each with every setting above, on the same trials\n",
            shown[0],
            shown[1..].join(", ")
        );
    }
    s += "\n";
    let row = |name: &str, p: &PointReport| {
        format!(
            "  {:<13} {:<27} {:<27} {:>9} {:>12.0}\n",
            name,
            pct(&p.false_rollback),
            pct(&p.caught),
            duration_s(p.mean_time_to_catch_s),
            p.mean_requests_exposed
        )
    };
    s += &format!(
        "  {:<13} {:<27} {:<27} {:>9} {:>12}\n",
        "", "false rollback", "caught (faulty scenarios)", "to catch*", "requests*"
    );
    s += &row("current", &r.current);
    if let Some(rec) = &r.recommended {
        s += &row("recommended", rec);
    }
    if let Some(calm) = &r.calmest {
        s += &row("calmest", calm);
    }
    if let Some(f) = r.refinement.as_ref().filter(|f| f.improved) {
        s += &row("  (coarse)", &f.coarse);
    }
    s += "  (*to catch: mean time from the fault's onset to a caught rollback, over the caught trials, which differ between settings: compare per scenario below; requests: mean requests the canary served from the fault's onset until rollback or the end, per faulty trial)\n";
    if let Some(f) = &r.refinement {
        s += &format!(
            "refined: {} around the coarse recommendation ({} settings, same trials): {}\n",
            f.rules.join(", "),
            f.settings_tried,
            if f.improved {
                "a finer setting is better (recommended; the coarse one beside it)"
            } else {
                "the coarse recommendation stays"
            }
        );
    }
    let Some(rec) = &r.recommended else {
        s += &format!(
            "\nno setting meets the budget: even the calmest{} rolls back {} of healthy releases.\n",
            match &r.calmest {
                Some(c) if windows => format!(" (with the window {})", window(c.window_s)),
                _ => String::new(),
            },
            r.calmest
                .as_ref()
                .map_or("-".into(), |c| pct(&c.false_rollback))
        );
        let mut by: Vec<&RuleReport> = r
            .rules
            .iter()
            .filter(|x| x.calmest_false_rollbacks.is_some_and(|n| n > 0))
            .collect();
        by.sort_by_key(|x| std::cmp::Reverse(x.calmest_false_rollbacks));
        for x in by {
            let n = x.calmest_false_rollbacks.unwrap_or(0);
            let what = if x.tuned {
                format!(
                    "at its calmest tried, `{}`: widen its range with `--vary {}.threshold=...`",
                    x.tried.last().map_or("", String::as_str),
                    x.target
                )
            } else {
                format!("kept as written (`{}`)", x.current)
            };
            s += &format!(
                "  {} rolled back {n} healthy trials first, {what}\n",
                x.target
            );
        }
        return s;
    };
    s += "\nrecommended setting:\n";
    let width = r.rules.iter().map(|x| x.current.len()).max().unwrap_or(0);
    if windows {
        let (from, to) = (window(r.current.window_s), window(rec.window_s));
        let label = format!("monitoring.window {from}");
        s += &format!(
            "  {label:<width$}  {}\n",
            if from == to {
                "(unchanged)".to_string()
            } else {
                format!(
                    "-> {to}  (every rate reads it, and the gates and the silent-canary rule fire after it: their `for` becomes {to} too)"
                )
            }
        );
    }
    for rule in &r.rules {
        let to = rule.recommended.as_deref().unwrap_or("");
        let mark = if !rule.tuned {
            "(kept)"
        } else if to == rule.current {
            "(unchanged)"
        } else {
            "->"
        };
        let edge = if rule.at_edge {
            "  (the end of the range tried: the best may lie beyond; widen it with --vary)"
        } else {
            ""
        };
        let shown = if mark == "->" { to } else { "" };
        s += &format!(
            "  {:<width$}  {}{}\n",
            rule.current,
            if shown.is_empty() {
                mark.to_string()
            } else {
                format!("{mark} {shown}")
            },
            edge
        );
    }
    s += "\ncaught, and mean time to catch, per faulty scenario:\n";
    s += &format!("  {:<18} {:<36} {:<36}\n", "", "current", "recommended");
    let cell = |f: &ScenarioFigures| {
        format!(
            "{:<26} {:>8}",
            pct(&f.caught),
            duration_s(f.mean_time_to_catch_s)
        )
    };
    for (c, x) in r.current.per_scenario.iter().zip(&rec.per_scenario) {
        // Fewer caught than today, beyond both intervals: said, not hidden in the table.
        let fewer = x.caught.ci95[1] < c.caught.ci95[0];
        s += &format!(
            "  {:<18} {:<36} {:<36}{}\n",
            c.scenario,
            cell(c),
            cell(x),
            if fewer {
                "  fewer caught than today"
            } else {
                ""
            }
        );
    }
    if !r.per_window.is_empty() {
        s += "\nbest per rate window (a longer window counts more requests, so it fires on noise less, and later):\n";
        for w in &r.per_window {
            let p = &w.best;
            s += &format!(
                "  {} {:>4}  false rollback {:<27} caught {:<27} to catch {}{}\n",
                if p.window_s == rec.window_s { "*" } else { " " },
                window(p.window_s),
                pct(&p.false_rollback),
                pct(&p.caught),
                duration_s(p.mean_time_to_catch_s),
                if w.within_budget {
                    ""
                } else {
                    "  (over the budget at its calmest)"
                }
            );
        }
    }
    s += "\nfrontier (the best setting at each false-rollback level; * recommended):\n";
    for p in &r.frontier {
        let same = p.setting == rec.setting && p.window_s == rec.window_s;
        let star = if same { "*" } else { " " };
        s += &format!(
            "  {} false rollback {:<27} caught {:<27} to catch {}{}\n",
            star,
            pct(&p.false_rollback),
            pct(&p.caught),
            duration_s(p.mean_time_to_catch_s),
            if windows {
                format!("  (window {})", window(p.window_s))
            } else {
                String::new()
            }
        );
    }
    if let Some(t) = &r.trade {
        let calmer = &r.frontier[t.frontier_index];
        s += &format!(
            "the trade: a setting with {} false rollbacks catches as many ({}); the recommendation spends {:.2} points more of them{}\n",
            pct(&calmer.false_rollback),
            pct(&calmer.caught),
            t.false_rollback_points,
            match t.sooner_s {
                Some(d) if d > 0.0 =>
                    format!(" to catch {} sooner on average", duration_s(Some(d))),
                Some(d) if d < 0.0 =>
                    format!(", and catches {} later on average", duration_s(Some(-d))),
                _ => String::new(),
            }
        );
    }
    if let Some(c) = &r.distance.caught_at_same_false_rollback {
        s += &format!(
            "today's setting ({} false rollbacks, {} caught): with no more false rollbacks, the frontier catches {}",
            percent(r.current.false_rollback.probability),
            percent(r.current.caught.probability),
            pct(c)
        );
        if let Some(f) = &r.distance.false_rollback_at_same_caught {
            s += &format!(
                "; catching as many as today takes only {} false rollbacks",
                pct(f)
            );
        }
        s += "\n";
    }
    for a in &r.set_aside {
        s += &format!(
            "\nset aside: the best setting within {} on the tune's trials rolled back {} of fresh healthy trials (over the budget); tried a tighter budget",
            percent(a.tune_budget),
            pct(&a.check_false_rollback)
        );
    }
    if !r.set_aside.is_empty() {
        s += "\n";
    }
    if let Some(c) = &r.check {
        s += &format!(
            "\ncheck: `plan simulate` of the recommended setting with seed {} (fresh trials): false rollback {}, caught {}; {}\n",
            c.seed,
            pct(&c.false_rollback),
            pct(&c.caught),
            if c.within_budget {
                "within the budget"
            } else {
                "OVER THE BUDGET (the tune's trials were lucky for it): not recommended; run with more --trials"
            }
        );
    }
    s
}
