//! `plan tune`: the thresholds, `for` durations and gate levels that meet a false-rollback
//! budget with the best detection, found over one set of simulated trials.
//!
//! Every setting is judged on the same trials (common random numbers): the traffic is
//! drawn once per trial ([`sweep`]) and each setting reads it ([`score`]), so the
//! differences between settings are the settings', not the noise's, and a setting costs
//! a few comparisons per evaluation ([`ladder`]) rather than a simulation. The search
//! ([`search`]) then walks from the calmest setting towards more sensitive ones, one
//! knob ([`space`]) at a time.
//!
//! The figures of a setting are those `plan simulate` gives for the plan with that setting
//! on the same seed (a test runs both): the fast path is checked against the reference.

pub(crate) mod edits;
pub(crate) mod ladder;
pub(crate) mod report;
pub(crate) mod score;
pub(crate) mod search;
pub(crate) mod space;
pub(crate) mod sweep;
pub(crate) mod written;

use crate::lower::LoweredPlan;
use crate::sim::montecarlo::{self, Settings};
use crate::sim::scenario::Scenarios;
use report::Report;
use space::{Knob, Ranges, Variant};
use space::{apply, current};
use sweep::Stop;

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
}

/// A tune's report, and the settings behind it.
pub(crate) struct Tuned {
    pub(crate) report: Report,
    pub(crate) knobs: Vec<Knob>,
    pub(crate) recommended: Option<Vec<Variant>>,
}

/// Tunes `lowered` on `scenarios` (named `file`).
pub(crate) fn tune(
    lowered: &LoweredPlan,
    (scenarios, file): (&Scenarios, &str),
    settings: Settings,
    ask: &Ask<'_>,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<Tuned, TuneError> {
    let (plan, rules) = (&lowered.plan, &lowered.rules);
    if scenarios.scenarios.iter().all(|s| s.fault.is_none()) {
        return Err(TuneError::NoFault);
    }
    let knobs = space::knobs(plan, rules, ask.ranges).map_err(TuneError::Usage)?;
    let sweep =
        sweep::run(lowered, scenarios, knobs, settings, progress).map_err(TuneError::Stop)?;
    let knobs = &sweep.knobs;
    let names: Vec<String> = scenarios
        .scenarios
        .iter()
        .filter(|s| s.fault.is_some())
        .map(|s| s.name.clone())
        .collect();
    let here = search::Point {
        setting: current(knobs),
        figures: sweep.figures(&current(knobs), rules),
    };
    let best = search::best_within(&sweep, rules, ask.budget);
    let frontier = search::frontier(&sweep, rules, ask.budget);
    let point = |p: &search::Point| report::point(plan, rules, knobs, &names, p);
    let check = match (&best, ask.check_seed) {
        (Ok(best), Some(seed)) => Some(check(
            lowered, scenarios, settings, knobs, best, seed, ask.budget,
        )),
        _ => None,
    };
    let report = Report {
        schema_version: 1,
        plan: plan.name.clone(),
        scenarios: file.to_string(),
        seed: settings.seed,
        trials: settings.trials,
        semantics: settings.semantics.name(),
        max_false_rollback: ask.budget,
        settings_tried: sweep.width,
        rules: report::rules(plan, rules, knobs, best.as_ref().ok()),
        faulty_scenarios: names.clone(),
        current: point(&here),
        recommended: best.as_ref().ok().map(point),
        calmest: best.as_ref().err().map(point),
        distance: report::distance(&here.figures, &frontier),
        frontier: frontier.iter().map(point).collect(),
        check,
        edits: Vec::new(),
    };
    Ok(Tuned {
        report,
        recommended: best.ok().map(|p| p.setting),
        knobs: sweep.knobs,
    })
}

/// The recommended setting, simulated by `plan simulate`'s own run on fresh trials.
fn check(
    lowered: &LoweredPlan,
    scenarios: &Scenarios,
    settings: Settings,
    knobs: &[Knob],
    best: &search::Point,
    seed: u64,
    budget: f64,
) -> report::Check {
    let tuned = apply(lowered, knobs, &best.setting);
    let run = montecarlo::run(
        &tuned,
        scenarios,
        Settings { seed, ..settings },
        &mut |_, _| {},
    );
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
    let false_rollback = crate::sim::stats::Proportion::new(healthy.0, healthy.1);
    report::Check {
        seed,
        within_budget: false_rollback.ci95[1] <= budget,
        false_rollback,
        per_scenario: report::check_figures(&names, &faulty),
    }
}

#[cfg(test)]
mod tests;
