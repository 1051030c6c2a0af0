//! `plan tune`: the thresholds, `for` durations, `min_requests` guards and gate levels that
//! meet a false-rollback budget with the best detection, found over one set of simulated
//! trials.
//!
//! Every setting is judged on the same trials (common random numbers): the traffic is
//! drawn once per trial ([`sweep`]) and each setting reads it ([`score`]), so the
//! differences between settings are the settings', not the noise's, and a setting costs
//! a few comparisons per evaluation ([`ladder`]) rather than a simulation. The search
//! ([`search`]) then walks from the calmest setting towards more sensitive ones, one
//! knob ([`space`]) at a time. A second pass ([`refine`]) sweeps finer settings around
//! that coarse recommendation, on the same trials, and searches on from it.
//!
//! The figures of a setting are those `plan simulate` gives for the plan with that setting
//! on the same seed (a test runs both): the fast path is checked against the reference.

pub(crate) mod edits;
pub(crate) mod guards;
pub(crate) mod ladder;
pub(crate) mod refine;
pub(crate) mod report;
pub(crate) mod score;
pub(crate) mod search;
pub(crate) mod space;
pub(crate) mod sweep;
pub(crate) mod window;
pub(crate) mod written;

use crate::lower::LoweredPlan;
use crate::sim::montecarlo::{self, Settings};
use crate::sim::recorded::Baseline;
use crate::sim::scenario::Scenarios;
use crate::sim::stats::Proportion;
use crate::sim::synth::Model;
use report::Report;
use space::{Knob, Ranges, Variant};
use space::{apply, current};
use sweep::{Pass, Stop, Sweep};
use window::Windowed;

/// How many settings a failed check sets aside before it gives up.
const CHECK_RETRIES: usize = 3;

/// Why a tune gives no report.
#[derive(Debug)]
pub(crate) enum TuneError {
    /// A `--vary` or `--keep` that does not fit the plan.
    Usage(String),
    /// The scenarios have no faulty scenario: nothing to detect.
    NoFault,
    /// The sweep stopped.
    Stop(Stop),
}

/// What a tune is asked.
pub(crate) struct Ask<'a> {
    pub(crate) ranges: &'a Ranges,
    /// The false-rollback budget (upper 95% bound).
    pub(crate) budget: f64,
    /// The seed of the check run, None for no check.
    pub(crate) check_seed: Option<u64>,
    /// Run the refining pass ([`refine`]) after the coarse search: one more sweep.
    pub(crate) refine: bool,
    /// The recording every trial is built from (`--baseline`), instead of the synthetic
    /// traffic.
    pub(crate) baseline: Option<Baseline<'a>>,
}

/// A tune's report, and the setting it recommends.
pub(crate) struct Tuned {
    pub(crate) report: Report,
    pub(crate) recommended: Option<Recommended>,
}

/// The recommended setting: of which of the tune's plans (rate windows), and of its knobs.
pub(crate) struct Recommended {
    pub(crate) window: usize,
    /// That plan as the tune ran it: with the request counts of the guards it tried
    /// ([`space::Space`]).
    pub(crate) lowered: LoweredPlan,
    pub(crate) knobs: Vec<Knob>,
    pub(crate) setting: Vec<Variant>,
}

/// Tunes `plans` (the plan as written, then the same plan with other rate windows, see
/// [`window`]) on `scenarios` (named `file`).
pub(crate) fn tune(
    plans: &[Windowed],
    (scenarios, file): (&Scenarios, &str),
    settings: Settings,
    ask: &Ask<'_>,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<Tuned, TuneError> {
    if scenarios.scenarios.iter().all(|s| s.fault.is_none()) {
        return Err(TuneError::NoFault);
    }
    // Each plan's knobs, at the request rate the trials have (a recording's own, when
    // they are built from one: the scenarios were read at it).
    let rps = scenarios.traffic.requests_per_second;
    let source = (scenarios, ask.baseline);
    let mut spaces = Vec::with_capacity(plans.len());
    for w in plans {
        spaces.push(space::knobs(&w.lowered, ask.ranges, rps).map_err(TuneError::Usage)?);
    }
    let lowered = &spaces[0].lowered;
    let (plan, rules) = (&lowered.plan, &lowered.rules);
    if plans.len() == 1 && !spaces[0].knobs.iter().any(Knob::tuned) {
        return Err(TuneError::Usage(
            "nothing to tune: every rule is kept as written".into(),
        ));
    }
    // Enough healthy trials that the budget can be met at all.
    let healthy_runs = scenarios
        .scenarios
        .iter()
        .filter(|s| s.fault.is_none())
        .count()
        .max(1);
    let healthy = settings.trials * healthy_runs as u64;
    let best_bound = Proportion::new(0, healthy).ci95[1];
    if best_bound > ask.budget {
        // Wilson's upper bound with no event is z²/(n + z²).
        let z2 = 1.959_963_984_540_054_f64.powi(2);
        let needed = (z2 * (1.0 - ask.budget) / ask.budget).ceil() as u64;
        let per_scenario = needed.div_ceil(healthy_runs as u64);
        return Err(TuneError::Usage(format!(
            "with {healthy} healthy trials even no false rollback at all has an upper 95% bound of {}, above the budget of {}: use `--trials {per_scenario}` or more, or a budget of at least {}",
            report::percent(best_bound),
            report::percent(ask.budget),
            report::percent(best_bound)
        )));
    }
    // One sweep per window, on the same seeds; the plan as written first.
    // The refining pass, when asked, is one more sweep.
    let count = plans.len() as u64 + u64::from(ask.refine);
    let mut sweeps = Vec::with_capacity(plans.len());
    for (wi, w) in spaces.iter().enumerate() {
        let mut part = |d: u64, t: u64| progress(wi as u64 * t + d, count * t);
        let mut sweep = sweep::run(&w.lowered, source, w.knobs.clone(), settings, &mut part)
            .map_err(TuneError::Stop)?;
        sweep.window = wi;
        sweeps.push(sweep);
    }
    let names: Vec<String> = scenarios
        .scenarios
        .iter()
        .filter(|s| s.fault.is_some())
        .map(|s| s.name.clone())
        .collect();
    let here = search::Point {
        window: 0,
        pass: Pass::Coarse,
        setting: current(&sweeps[0].knobs),
        figures: sweeps[0].figures(&current(&sweeps[0].knobs)),
    };
    // The best within a budget over every window (the plan's own on a tie); Err with the
    // calmest of all when none meets it.
    let best_within = |budget: f64| {
        let mut best: Option<search::Point> = None;
        let mut calmest: Option<search::Point> = None;
        for sweep in &sweeps {
            match search::best_within(sweep, budget) {
                Ok(p) => {
                    if best
                        .as_ref()
                        .is_none_or(|b| p.figures.better_than(&b.figures))
                    {
                        best = Some(p);
                    }
                }
                Err(c) => {
                    let calmer =
                        |b: &search::Point| c.figures.false_rollbacks < b.figures.false_rollbacks;
                    if calmest.as_ref().is_none_or(calmer) {
                        calmest = Some(c);
                    }
                }
            }
        }
        best.ok_or_else(|| calmest.expect("a sweep per plan"))
    };
    // The plan's own setting, when it fits and the best found is no better in the search's
    // order (catches no more, no sooner, with no fewer false rollbacks): no change that
    // gains nothing, and none that catches fewer (the search's path may miss the plan's
    // own setting).
    let choose = |budget: f64| {
        best_within(budget).map(|b| {
            let fits = here.figures.false_upper() <= budget;
            if fits && !b.figures.better_than(&here.figures) {
                here.clone()
            } else {
                b
            }
        })
    };
    // The coarse recommendation, refined on the same trials: the refinement's point when
    // it is a better setting, else the coarse one.
    let mut refine_at = |b: search::Point,
                         budget: f64|
     -> Result<(search::Point, Option<refine::Refined>), TuneError> {
        if !ask.refine {
            return Ok((b, None));
        }
        let mut part = |d: u64, t: u64| progress((count - 1) * t + d, count * t);
        let r = refine::run(
            (&spaces[b.window].lowered, &sweeps[b.window]),
            source,
            &b,
            budget,
            settings,
            &mut part,
        )
        .map_err(TuneError::Stop)?;
        Ok(match r {
            Some(r) if r.best.setting != r.start.setting => (r.best.clone(), Some(r)),
            r => (b, r),
        })
    };
    let mut best = choose(ask.budget);
    let mut refined = None;
    if let Ok(b) = best {
        let (p, r) = refine_at(b, ask.budget)?;
        best = Ok(p);
        refined = r;
    }
    // The coarse recommendation the refinement started from.
    let mut coarse_best = refined.as_ref().map(|r: &refine::Refined| r.coarse.clone());
    // What each window can do on its own: the trade-off a window makes.
    let per_window: Vec<(bool, search::Point)> = match sweeps.len() {
        1 => Vec::new(),
        _ => sweeps
            .iter()
            .map(|sw| match search::best_within(sw, ask.budget) {
                Ok(p) => (true, p),
                Err(p) => (false, p),
            })
            .collect(),
    };
    // At each budget the better of the coarse pass's best and the refined sweep's (and at
    // the user's, the recommendation): never worse than the coarse frontier.
    // Every setting found best at some budget, in either pass: the candidates, the
    // dominated ones too.
    let weighed = std::cell::RefCell::new(Vec::new());
    let frontier = search::frontier(ask.budget, |budget| {
        let coarse = best_within(budget).ok();
        let finer = refined
            .as_ref()
            .and_then(|r| search::best_within(&r.sweep, budget).ok());
        let recommended = (budget == ask.budget).then(|| best.clone().ok()).flatten();
        let found: Vec<search::Point> =
            [coarse, finer, recommended].into_iter().flatten().collect();
        weighed.borrow_mut().extend(found.iter().cloned());
        found.into_iter().reduce(|a, b| {
            if b.figures.better_than(&a.figures) {
                b
            } else {
                a
            }
        })
    });
    let point = |p: &search::Point, refined: &Option<refine::Refined>| {
        let w = &spaces[p.window].lowered;
        report::point(
            (&w.plan, &w.rules),
            &sweep_of(&sweeps, refined, p).knobs,
            &names,
            p,
            plans[p.window].window_ms,
        )
    };
    let distance = report::distance(&here.figures, &frontier);
    let mut frontier_report: Vec<report::PointReport> =
        frontier.iter().map(|p| point(p, &refined)).collect();
    // The same setting reached in both passes.
    frontier_report.dedup_by(|a, b| (a.window_s, &a.setting) == (b.window_s, &b.setting));
    let mut candidates: Vec<search::Point> = Vec::new();
    for p in weighed.into_inner() {
        if !candidates
            .iter()
            .any(|c| (c.window, &c.setting) == (p.window, &p.setting))
        {
            candidates.push(p);
        }
    }
    candidates.sort_by_key(|p| {
        (
            p.figures.false_rollbacks,
            std::cmp::Reverse(p.figures.caught()),
        )
    });
    let candidates_report: Vec<report::PointReport> =
        candidates.iter().map(|p| point(p, &refined)).collect();
    // The best of many settings on the same trials is the luckiest too: a setting whose
    // check on fresh trials is over the budget is set aside for the best one within a
    // tighter budget on the tune's trials, a few times.
    let mut check_run = None;
    let mut set_aside = Vec::new();
    if let Some(seed) = ask.check_seed {
        let mut budget = ask.budget;
        while let Ok(b) = &best {
            let tuned = apply(
                &spaces[b.window].lowered,
                &sweep_of(&sweeps, &refined, b).knobs,
                &b.setting,
            );
            let c = check(&tuned, source, settings, seed, ask.budget);
            // A tighter budget than the trials can show, or than any setting meets, has
            // nothing to offer: this setting stays, with its failed check.
            let tighter = (!c.within_budget && set_aside.len() < CHECK_RETRIES)
                .then_some(budget * 0.75)
                .filter(|&t| t >= best_bound)
                .and_then(|t| choose(t).ok().map(|p| (t, p)));
            let Some((t, next)) = tighter else {
                check_run = Some(c);
                break;
            };
            set_aside.push(report::SetAside {
                tune_budget: budget,
                setting: point(b, &refined).setting,
                check_false_rollback: c.false_rollback,
            });
            budget = t;
            let (p, r) = refine_at(next, t)?;
            coarse_best = r.as_ref().map(|r| r.coarse.clone());
            refined = r;
            best = Ok(p);
        }
    }
    let check = check_run;
    let at = |p: &Result<search::Point, search::Point>| match p {
        Ok(p) | Err(p) => p.window,
    };
    let shown = at(&best);
    let shown_knobs = match &best {
        Ok(p) => &sweep_of(&sweeps, &refined, p).knobs,
        Err(_) => &sweeps[shown].knobs,
    };
    let mut rules_report = report::rules(
        (plan, rules),
        &sweeps[0].knobs,
        (
            (&spaces[shown].lowered.plan, &spaces[shown].lowered.rules),
            shown_knobs,
        ),
        best.as_ref().ok(),
    );
    // No setting meets the budget: which rules roll back the healthy trials even then.
    if let Err(calm) = &best {
        for (rr, n) in rules_report
            .iter_mut()
            .zip(sweeps[calm.window].first_rules(&calm.setting))
        {
            rr.calmest_false_rollbacks = Some(n);
        }
    }
    let report = Report {
        schema_version: report::SCHEMA_VERSION,
        plan: plan.name.clone(),
        scenarios: file.to_string(),
        seed: settings.seed,
        trials: settings.trials,
        semantics: settings.semantics.name(),
        max_false_rollback: ask.budget,
        settings_tried: sweeps.iter().map(|s| s.width).sum(),
        windows_s: plans.iter().map(|w| w.window_ms as f64 / 1000.0).collect(),
        per_window: per_window
            .iter()
            .map(|(within_budget, p)| report::WindowBest {
                within_budget: *within_budget,
                best: point(p, &refined),
            })
            .collect(),
        rules: rules_report,
        faulty_scenarios: names.clone(),
        current: point(&here, &refined),
        recommended: best.as_ref().ok().map(|p| point(p, &refined)),
        calmest: best.as_ref().err().map(|p| point(p, &refined)),
        refinement: refined
            .as_ref()
            .zip(coarse_best.as_ref())
            .map(|(r, c)| report::Refinement {
                rules: r
                    .refined
                    .iter()
                    .map(|&ki| space::target(&rules[r.sweep.knobs[ki].rule]))
                    .collect(),
                settings_tried: r.sweep.width,
                coarse: point(c, &refined),
                improved: best.as_ref().is_ok_and(|b| b.pass == Pass::Refined),
            }),
        distance,
        trade: best
            .as_ref()
            .ok()
            .and_then(|p| report::trade(&point(p, &refined), &frontier_report)),
        frontier: frontier_report,
        candidates: candidates_report,
        check,
        set_aside,
        edits: Vec::new(),
        written: false,
        recording: None,
    };
    let recommended = best.ok().map(|p| Recommended {
        window: p.window,
        lowered: spaces.swap_remove(p.window).lowered,
        knobs: match (p.pass, refined) {
            (Pass::Refined, Some(r)) => r.sweep.knobs,
            _ => sweeps.swap_remove(p.window).knobs,
        },
        setting: p.setting,
    });
    Ok(Tuned {
        report,
        recommended,
    })
}

/// The sweep a point is a setting of: its window's coarse sweep, or the refinement's.
fn sweep_of<'s>(
    sweeps: &'s [Sweep],
    refined: &'s Option<refine::Refined>,
    p: &search::Point,
) -> &'s Sweep {
    match (p.pass, refined) {
        (Pass::Refined, Some(r)) => &r.sweep,
        _ => &sweeps[p.window],
    }
}

/// The recommended setting (`tuned`: the plan with it), simulated by `plan simulate`'s own
/// run on fresh trials.
fn check(
    tuned: &LoweredPlan,
    (scenarios, baseline): (&Scenarios, Option<Baseline<'_>>),
    settings: Settings,
    seed: u64,
    budget: f64,
) -> report::Check {
    let settings = Settings { seed, ..settings };
    let run = match baseline {
        Some(b) => {
            let model = Model::new(&tuned.plan, scenarios, &tuned.rules, settings.semantics);
            let recorded = b.model(&tuned.plan, &tuned.rules, &model);
            montecarlo::run_on_recording(tuned, scenarios, settings, &recorded, &mut |_, _| {})
        }
        None => montecarlo::run(tuned, scenarios, settings, &mut |_, _| {}),
    };
    let mut healthy = (0, 0);
    let mut faulty = Vec::new();
    let mut names = Vec::new();
    for r in &run.results {
        let t = &r.tally;
        if r.scenario.fault.is_none() {
            healthy.0 += t.false_rollbacks;
            healthy.1 += t.trials;
        } else {
            faulty.push((t.caught, t.escaped, t.trials));
            names.push(r.scenario.name.clone());
        }
    }
    if healthy.1 == 0
        && let Some(tw) = &run.twins
    {
        healthy = (tw.tally.false_rollbacks, tw.tally.trials);
    }
    let false_rollback = Proportion::new(healthy.0, healthy.1);
    let caught = Proportion::new(
        faulty.iter().map(|f| f.0).sum(),
        faulty.iter().map(|f| f.2).sum(),
    );
    report::Check {
        seed,
        caught,
        within_budget: false_rollback.ci95[1] <= budget,
        false_rollback,
        per_scenario: report::check_figures(&names, &faulty),
    }
}

#[cfg(test)]
mod tests;
