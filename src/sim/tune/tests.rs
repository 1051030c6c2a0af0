//! The fast path against the reference: a setting's figures read off the sweep are the
//! figures `plan simulate` gives for the plan with that setting, trial for trial; with
//! `min_requests` guards tried, for the plan file with the setting written in as
//! `--write` writes it (guards added, changed and removed), compiled again.

use super::space::{Knob, Part, Ranges, Variant, Vary, knobs, model_rules};
use super::sweep::{self, Sweep};
use super::*;
use super::{refine, search};
use crate::check::GatePolicy;
use crate::model::{AfterMaxHold, Duration};
use crate::prom::Semantics;
use crate::sim::montecarlo::{self, Settings, Tally};
use crate::sim::scenario::{self, Scenarios};
use crate::source::Source;
use std::path::Path;

fn lowered(name: &str) -> LoweredPlan {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    crate::pipeline::compile_file(&root.join("plans").join(name))
        .expect("example plan loads")
        .plan
        .expect("example plan is valid")
}

fn scenarios(plan: &LoweredPlan, file: &str) -> Scenarios {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let source =
        Source::load_as(&root.join(file), crate::source::Kind::Scenarios).expect("readable");
    scenario::load(&source, &plan.plan, &|p| p.to_string())
        .0
        .unwrap_or_else(|| panic!("{file} loads"))
}

fn settings(trials: u64, jobs: usize) -> Settings {
    Settings {
        slice: crate::sim::montecarlo::Slice::WHOLE,
        seed: 7,
        jobs,
        trials,
        semantics: Semantics::Prometheus3,
    }
}

/// The fields of a tally the sweep counts.
fn counted(t: &Tally) -> Tally {
    Tally {
        trials: t.trials,
        rollbacks: t.rollbacks,
        false_rollbacks: t.false_rollbacks,
        detected: t.detected,
        caught: t.caught,
        rolled_back_anyway: t.rolled_back_anyway,
        twin_not_yet: t.twin_not_yet,
        gate_rollbacks: t.gate_rollbacks,
        escaped: t.escaped,
        completed: t.completed,
        missed: t.missed,
        fault_after_release: t.fault_after_release,
        held: t.held,
        first_rule: t.first_rule.clone(),
        caught_by_rule: t.caught_by_rule.clone(),
        anyway_by_rule: t.anyway_by_rule.clone(),
        detect_steps: t.detect_steps.clone(),
        exposed_requests: t.exposed_requests,
        ..Tally::default()
    }
}

/// Settings that differ from the plan's in every way a knob can: all calmest, all most
/// sensitive, and mixes.
fn settings_of(knobs: &[Knob]) -> Vec<Vec<Variant>> {
    let calm: Vec<Variant> = knobs.iter().map(Knob::calmest).collect();
    let keen: Vec<Variant> = knobs
        .iter()
        .map(|_| Variant {
            guard: 0,
            for_: 0,
            level: 0,
        })
        .collect();
    // The keenest thresholds behind each guard: where a guard matters most.
    let guarded = |g: usize| -> Vec<Variant> {
        knobs
            .iter()
            .map(|k| Variant {
                guard: g.min(k.guards.len() - 1),
                for_: 0,
                level: 0,
            })
            .collect()
    };
    let mixed = |pick: usize| -> Vec<Variant> {
        knobs
            .iter()
            .enumerate()
            .map(|(i, k)| k.variant((i * 7 + pick * 13) % k.variants()))
            .collect()
    };
    let mut out = vec![current(knobs), calm, keen, mixed(1), mixed(2), mixed(5)];
    let most = knobs.iter().map(|k| k.guards.len()).max().unwrap_or(1);
    out.extend((1..most).map(guarded));
    out
}

fn agrees(lowered: &LoweredPlan, scenarios: &Scenarios, trials: u64) -> Sweep {
    agrees_with(lowered, scenarios, trials, &Ranges::default(), None)
}

/// [`agrees`] with `ranges`; with the plan's file `source`, each setting's reference is that
/// file with the setting written in ([`super::edits::rewrite`]) and compiled again.
fn agrees_with(
    lowered: &LoweredPlan,
    scenarios: &Scenarios,
    trials: u64,
    ranges: &Ranges,
    source: Option<&Source>,
) -> Sweep {
    let rps = scenarios.traffic.requests_per_second;
    let space = knobs(lowered, ranges, rps).expect("knobs");
    let (base, knobs) = (&space.lowered, &space.knobs);
    assert!(knobs.iter().any(Knob::tuned));
    let sweep = sweep::run(
        base,
        (scenarios, None),
        knobs.clone(),
        settings(trials, 3),
        &mut |_, _| {},
    )
    .expect("ordered");
    let model = model_rules(base, knobs);
    agrees_on(
        (lowered, base, scenarios, trials),
        &sweep,
        &model,
        settings_of(knobs),
        source,
    );
    sweep
}

/// Each of `settings` of `sweep` (over `base`, the tune's copy of `lowered`, its model
/// built for `model`): its figures are those of simulating the plan with it (written into
/// `source` and compiled again, when given) on the model built for the same rules.
fn agrees_on(
    (lowered, base, scenarios, trials): (&LoweredPlan, &LoweredPlan, &Scenarios, u64),
    sweep: &Sweep,
    model: &[crate::lower::AlertRule],
    settings_list: Vec<Vec<Variant>>,
    source: Option<&Source>,
) {
    let knobs = &sweep.knobs;
    for setting in settings_list {
        let plan = match source {
            Some(source) => {
                let windowed = window::Windowed {
                    window_ms: lowered.plan.monitoring.window.millis(),
                    source: source.clone(),
                    lowered: lowered.clone(),
                };
                let written = edits::rewrite(source, &windowed, base, knobs, &setting)
                    .unwrap_or_else(|e| panic!("{setting:?} is written: {e}"));
                crate::pipeline::compile(Source::new(source.name.clone(), written.text))
                    .plan
                    .expect("the written plan is valid")
            }
            None => apply(base, knobs, &setting),
        };
        let reference = montecarlo::run_recorded(
            &plan,
            (scenarios, None),
            settings(trials, 2),
            model,
            &mut |_, _| {},
        );
        let columns = sweep.columns(&setting);
        let twins = sweep.twin_rollbacks(&columns);
        for (si, r) in reference.results.iter().enumerate() {
            let fast = sweep.tally(si, &columns, &twins, &lowered.rules);
            assert_eq!(
                counted(&fast),
                counted(&r.tally),
                "scenario {} under {setting:?}",
                r.scenario.name
            );
        }
        // The search's figures are the reference's counts.
        let figures = sweep.figures(&setting);
        let healthy: Vec<&Tally> = match reference.twins.as_ref().filter(|t| t.scenario.is_none()) {
            Some(extra) => vec![&extra.tally],
            None => reference
                .results
                .iter()
                .filter(|r| r.scenario.fault.is_none())
                .map(|r| &r.tally)
                .collect(),
        };
        assert_eq!(
            figures.healthy,
            healthy.iter().map(|t| t.trials).sum::<u64>()
        );
        assert_eq!(
            figures.false_rollbacks,
            healthy.iter().map(|t| t.false_rollbacks).sum::<u64>()
        );
        let faulty: Vec<&Tally> = reference
            .results
            .iter()
            .filter(|r| r.scenario.fault.is_some())
            .map(|r| &r.tally)
            .collect();
        assert_eq!(figures.faulty.len(), faulty.len());
        for (f, t) in figures.faulty.iter().zip(faulty) {
            assert_eq!(
                (f.trials, f.caught, f.escaped, f.exposed),
                (t.trials, t.caught, t.escaped, t.exposed_requests)
            );
        }
        // And a knob's moves are the figures of each of its variants.
        let ki = sweep
            .knobs
            .iter()
            .position(Knob::tuned)
            .expect("a tuned knob");
        let moves = sweep.moves(&setting, ki);
        for v in [
            0,
            sweep.knobs[ki].variants() / 2,
            sweep.knobs[ki].variants() - 1,
        ] {
            let mut other = setting.clone();
            other[ki] = sweep.knobs[ki].variant(v);
            assert_eq!(moves[v], sweep.figures(&other), "variant {v}");
        }
    }
}

/// Lawsker's plan and scenarios, every rollback rule and gate tuned, under settings from
/// the calmest to the most sensitive.
#[test]
fn a_settings_figures_are_those_of_simulating_it() {
    let plan = lowered("lawsker.yaml");
    let s = scenarios(&plan, "simulations/lawsker.yaml");
    let sweep = agrees(&plan, &s, 40);
    // Not vacuous: the settings roll back, catch and miss.
    let knobs = &sweep.knobs;
    let keen: Vec<usize> = sweep.columns(
        &knobs
            .iter()
            .map(|_| Variant {
                guard: 0,
                for_: 0,
                level: 0,
            })
            .collect::<Vec<_>>(),
    );
    let calm = sweep.columns(&knobs.iter().map(Knob::calmest).collect::<Vec<_>>());
    let healthy = |c: &[usize]| {
        let twins = sweep.twin_rollbacks(c);
        sweep.tally(0, c, &twins, &plan.rules).false_rollbacks
    };
    assert_eq!(healthy(&keen), 40);
    assert!(healthy(&calm) < 40);
}

/// Under a gate policy that holds, gates stay as written and move the course; the rules
/// still agree.
#[test]
fn rules_agree_when_gates_hold_phases() {
    let mut plan = lowered("lawsker.yaml");
    plan.plan.gate_policy = GatePolicy::Hold {
        max: Duration::from_millis(4 * 3_600_000).expect("positive"),
        then: AfterMaxHold::Stay,
    };
    let s = scenarios(&plan, "simulations/lawsker.yaml");
    let sweep = agrees(&plan, &s, 30);
    assert!(
        sweep
            .knobs
            .iter()
            .all(|k| k.kind != crate::lower::RuleKind::Gate)
    );
}

/// The checkout plan (relative thresholds, a silent-canary rule) and the fault-timing
/// scenarios.
#[test]
fn relative_rules_agree() {
    let plan = lowered("checkout.yaml");
    let s = scenarios(&plan, "simulations/checkout.yaml");
    agrees(&plan, &s, 30);
}

/// The sweep's numbers do not depend on the thread count.
#[test]
fn the_sweep_does_not_depend_on_threads() {
    let plan = lowered("lawsker.yaml");
    let s = scenarios(&plan, "simulations/lawsker.yaml");
    let k = knobs(&plan, &Ranges::default(), s.traffic.requests_per_second).expect("knobs");
    let a = sweep::run(
        &k.lowered,
        (&s, None),
        k.knobs.clone(),
        settings(25, 1),
        &mut |_, _| {},
    )
    .expect("ordered");
    let b = sweep::run(
        &k.lowered,
        (&s, None),
        k.knobs,
        settings(25, 4),
        &mut |_, _| {},
    )
    .expect("ordered");
    for (x, y) in a.runs.iter().zip(&b.runs) {
        assert_eq!(x.fires, y.fires);
        assert_eq!(x.exposed, y.exposed);
    }
}

/// Lawsker's plan with `min_requests` guards near the canary's requests per window in its
/// first phase (so that they hold some evaluations back and not others): the guards stay
/// as written, and every setting's figures are still those of simulating it.
#[test]
fn guarded_rules_agree() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(root.join("plans/lawsker.yaml"))
        .expect("readable")
        .replace(
            "threshold: 0.1        # 10%\n    duration: \"5m\"",
            "threshold: 0.1\n    duration: \"5m\"\n    min_requests: 300",
        )
        .replace(
            "threshold: 0.99       # 99%\n    duration: \"5m\"",
            "threshold: 0.99\n    duration: \"5m\"\n    min_requests: 800",
        );
    assert_eq!(text.matches("min_requests").count(), 2, "the guards are in");
    let source = Source::new(
        root.join("plans/lawsker-guarded.yaml")
            .display()
            .to_string(),
        text,
    );
    let plan = crate::pipeline::compile(source.clone())
        .plan
        .expect("the guarded plan is valid");
    let s = scenarios(&plan, "simulations/lawsker.yaml");
    let sweep = agrees(&plan, &s, 30);
    assert!(
        sweep
            .knobs
            .iter()
            .filter(|k| k.tuned())
            .any(|k| plan.rules[k.rule].guard.is_some()),
        "a guarded rule is tuned"
    );
    // Its `error_rate` guard tried from 100 to 1000 (300 its own; none too): the plan file
    // with each setting written in, the guard changed or its line removed, simulates to
    // the sweep's figures; `availability` keeps its 800.
    let ranges = Ranges {
        vary: vec![vary("error_rate", Part::MinRequests(100, 1000))],
        keep: Vec::new(),
    };
    let sweep = agrees_with(&plan, &s, 30, &ranges, Some(&source));
    let guards = |id: &str| {
        let k = sweep.knobs.iter().find(|k| plan.rules[k.rule].id == id);
        k.map(|k| k.guards.clone())
    };
    assert_eq!(
        guards("error_rate"),
        Some(vec![
            None,
            Some(100),
            Some(200),
            Some(300),
            Some(500),
            Some(1000)
        ])
    );
    assert_eq!(guards("availability"), Some(vec![Some(800)]));
}

fn vary(target: &str, part: Part) -> Vary {
    Vary {
        target: target.into(),
        part,
    }
}

/// Lawsker's plan, which states no guard, with guards tried on `error_rate` and
/// `response_time_p95` around the canary's 700 requests per window in its first phase:
/// the request counts are appended to the tune's copy of the plan only, and every
/// setting's figures are those of the plan file with it written in (each guard a line
/// added), simulated.
#[test]
fn guards_tried_agree_with_the_plan_written_with_them() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let source = Source::load(&root.join("plans/lawsker.yaml")).expect("readable");
    let plan = lowered("lawsker.yaml");
    let s = scenarios(&plan, "simulations/lawsker.yaml");
    let ranges = Ranges {
        vary: vec![
            vary("error_rate", Part::MinRequests(200, 2000)),
            vary("response_time_p95", Part::MinRequests(500, 1000)),
        ],
        keep: vec!["gates".into()],
    };
    let sweep = agrees_with(&plan, &s, 30, &ranges, Some(&source));
    let knob = |id: &str| {
        sweep
            .knobs
            .iter()
            .find(|k| plan.rules[k.rule].id == id)
            .expect("a knob")
    };
    assert_eq!(
        knob("error_rate").guards,
        [None, Some(200), Some(500), Some(1000), Some(2000)]
    );
    assert_eq!(
        knob("response_time_p95").guards,
        [None, Some(500), Some(1000)]
    );
    // Two request counts (the request counter's and the histogram's), on the tune's copy.
    let space = knobs(&plan, &ranges, s.traffic.requests_per_second).expect("knobs");
    assert_eq!(
        space.lowered.plan.metrics.len(),
        plan.plan.metrics.len() + 2
    );
    // Not vacuous: a guard of 2000 (above the ~700 requests of a first-phase window) keeps
    // a keen `error_rate` (its second threshold, no `for`) from some rollbacks that the
    // unguarded one makes (the other rollback rules at their hardest, so that they do not
    // roll those trials back anyway; the keenest threshold rolls them back in the next
    // phase instead).
    let k = knob("error_rate");
    let ki = sweep
        .knobs
        .iter()
        .position(|x| x.rule == k.rule)
        .expect("knob");
    let at = |guard: usize| {
        let mut setting = current(&sweep.knobs);
        for (s, knob) in setting.iter_mut().zip(&sweep.knobs) {
            if knob.kind == crate::lower::RuleKind::Rollback {
                (s.level, s.for_) = (knob.ladder.len() - 1, knob.fors.len() - 1);
            }
        }
        setting[ki] = Variant {
            guard,
            for_: 0,
            level: 1,
        };
        sweep.figures(&setting).false_rollbacks
    };
    assert!(at(4) < at(0), "{} vs {}", at(4), at(0));
}

/// The refining pass on Lawsker's plan (every rule and gate; `response_time_p95` a latency
/// rule, whose thresholds decide the buckets a trial draws): it tracks the coarse model's
/// buckets, the coarse recommendation's figures are identical in both passes, the refined
/// recommendation is no worse, and every refined setting tried (the recommendation among
/// them) simulates, written into the plan file, to its figures.
#[test]
fn the_refined_pass_agrees_and_keeps_the_coarse_figures() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let source = Source::load(&root.join("plans/lawsker.yaml")).expect("readable");
    let plan = lowered("lawsker.yaml");
    let s = scenarios(&plan, "simulations/lawsker.yaml");
    let trials = 30;
    let space = knobs(&plan, &Ranges::default(), s.traffic.requests_per_second).expect("knobs");
    let coarse = sweep::run(
        &space.lowered,
        (&s, None),
        space.knobs.clone(),
        settings(trials, 3),
        &mut |_, _| {},
    )
    .expect("ordered");
    let budget = 0.3;
    let rec = search::best_within(&coarse, budget).expect("within the budget");
    let changed = refine::changed(&coarse.knobs, &rec.setting);
    assert!(
        changed
            .iter()
            .any(|&ki| space.lowered.rules[coarse.knobs[ki].rule].id == "response_time_p95"),
        "the latency rule is refined: {changed:?}"
    );
    let refined = refine::run(
        (&space.lowered, &coarse),
        (&s, None),
        &rec,
        budget,
        settings(trials, 2),
        &mut |_, _| {},
    )
    .expect("ordered")
    .expect("the coarse recommendation changed rules, and keeps its figures");
    // The same model: the coarse one's buckets.
    let (knobs_r, model) = refine::space_of(
        &space.lowered,
        &coarse.knobs,
        &rec.setting,
        &s,
        settings(trials, 2),
    );
    let bounds = |rules: &[crate::lower::AlertRule]| {
        crate::sim::synth::Model::new(&space.lowered.plan, &s, rules, Semantics::Prometheus3)
            .latency_bounds()
            .to_vec()
    };
    assert_eq!(
        bounds(&model),
        bounds(&model_rules(&space.lowered, &space.knobs))
    );
    assert_eq!(knobs_r.len(), refined.sweep.knobs.len());
    // Finer levels than the coarse ones were tried.
    assert!(
        refined
            .refined
            .iter()
            .all(|&ki| refined.sweep.knobs[ki].variants() > 1)
    );
    // The coarse recommendation, read off the refined sweep: the coarse figures, exactly.
    assert_eq!(refined.start.figures, rec.figures);
    assert_eq!(
        refined.sweep.figures(&refine::start(
            &coarse.knobs,
            &refined.sweep.knobs,
            &rec.setting
        )),
        rec.figures
    );
    // Never worse, within the budget.
    let best = &refined.best;
    assert!(best.figures.false_upper() <= budget);
    assert!(!rec.figures.better_than(&best.figures));
    // Every refined setting tried agrees with simulating the plan written with it.
    let mut tried = settings_of(&refined.sweep.knobs);
    tried.push(best.setting.clone());
    tried.push(refined.start.setting.clone());
    agrees_on(
        (&plan, &space.lowered, &s, trials),
        &refined.sweep,
        &model,
        tried,
        Some(&source),
    );
}
