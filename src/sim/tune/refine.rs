//! The second, refining pass of `plan tune`: finer settings around the coarse
//! recommendation, on the same trials.
//!
//! The coarse grid ([`super::space`]) steps thresholds by √2 and `for` among a few round
//! durations, so its recommendation can sit up to a factor √2 from a better setting.
//! After the coarse search, each knob the recommendation actually changed (tuned, not
//! back at the plan's own) gets a finer ladder around its recommended setting:
//!
//! - **thresholds**: the recommended one and the geometric midpoints between it and its
//!   neighbouring coarse levels, on the distance from the metric's neutral value as the
//!   coarse ladder is built ([`super::space::neutral`]): a step of 2^(1/4) ≈ 1.19 on the
//!   default ladder, halving the coarse step's log-distance. Finer steps (2^(1/8)) would
//!   differ by less than the trials tell apart at the usual few thousand trials, and more
//!   settings only add to the winner's luck (see the check in [`super`]). The levels are
//!   rounded as the coarse ones are (three significant digits of the distance, then
//!   [`super::written::canonical`]), and the plan's own level is kept;
//! - **`for`**: the recommended one and the round durations people write between it and
//!   its neighbouring coarse durations (`30s`, `90s`, `3m`, `4m`, `7m`, `12m`, `20m`,
//!   `45m`, ...), those an evaluation interval can honour;
//! - **guards**: the recommended `min_requests` and the round number of the 1-1.5-2-3-5-7
//!   series nearest the geometric midpoint to each neighbouring coarse guard.
//!
//! Every other knob is fixed at the coarse recommendation (which is the plan's own
//! setting for them). The plan's own setting and the coarse recommendation are among the
//! variants, and the refined search starts from the coarse recommendation and only takes
//! a change that is better ([`super::search::climb`]): on the same trials the refined
//! result is never worse than the coarse one.
//!
//! **The same trials.** The refined sweep draws each trial from the same seed, and what a
//! trial draws depends on the model, which depends on the latency thresholds of the rules
//! it is built for (the histogram buckets it tracks, [`crate::sim::synth`]). So the
//! refining pass builds its model for the coarse pass's rules (every coarse threshold)
//! plus its own, and drops a refined latency threshold whose buckets the coarse model
//! does not track: its model tracks exactly the coarse model's buckets, and the coarse
//! recommendation's figures are identical in both passes (a test asserts it; were they
//! not, the refinement is dropped).
//!
//! **Why not racing.** A sequential scheme that drops candidates as trials accrue pays
//! where each candidate costs a simulation. Here a candidate costs a comparison per
//! evaluation of a trial that is drawn once for all of them (common random numbers): the
//! draw is the cost, and it is the same for 10 candidates as for 400. Racing would save
//! little of it, and would cost the exactness of comparing every candidate on every
//! trial. What stops the dominated candidates is the choice of what to refine: only the
//! knobs the coarse search changed, only around its recommendation, one sweep of a few
//! dozen variants. That sweep still redraws every trial, so it costs about what the
//! coarse sweep costs (measured with `benches/tune.sh` on Lawsker: the default tune from
//! 34.5 s to 43.7 s wall at 2 threads; the one-rule command from 1.68x to 3.28x one
//! `plan simulate`, being two sweeps now). Keeping the coarse pass's draws to reuse them
//! would take each trial's metric values at every evaluation in memory (20,000 trials of
//! thousands of evaluations of a dozen metrics: gigabytes, by that estimate).

use super::ladder::Ladder;
use super::search::{self, Point};
use super::space::{self, Knob, Variant};
use super::sweep::{self, Pass, Stop, Sweep};
use crate::lower::{AlertRule, Condition, LoweredPlan, Rhs};
use crate::sim::montecarlo::Settings;
use crate::sim::recorded::Baseline;
use crate::sim::scenario::Scenarios;
use crate::sim::synth::Model;

/// Round `for` durations (ms) between the coarse ones ([`space::FORS_MS`]), and beyond
/// them for a `--vary` range.
const ROUND_FORS_MS: [u64; 15] = [
    15_000, 30_000, 45_000, 90_000, 180_000, 240_000, 420_000, 720_000, 1_200_000, 2_700_000,
    3_600_000, 5_400_000, 7_200_000, 10_800_000, 14_400_000,
];

/// The round guards' mantissas.
const GUARD_MANTISSAS: [f64; 6] = [1.0, 1.5, 2.0, 3.0, 5.0, 7.0];

/// The refining pass's outcome.
pub(crate) struct Refined {
    pub(crate) sweep: Sweep,
    /// The coarse recommendation, a setting of the coarse sweep.
    pub(crate) coarse: Point,
    /// The coarse recommendation, as a setting of the refined sweep.
    pub(crate) start: Point,
    /// The best setting within the budget, from `start`.
    pub(crate) best: Point,
    /// The knobs (indices) refined.
    pub(crate) refined: Vec<usize>,
}

/// The knobs to refine around `rec` (a setting of `coarse`): those it changed.
pub(crate) fn changed(coarse: &[Knob], rec: &[Variant]) -> Vec<usize> {
    coarse
        .iter()
        .zip(rec)
        .enumerate()
        .filter(|(_, (k, v))| k.tuned() && **v != k.current)
        .map(|(i, _)| i)
        .collect()
}

/// The refined knobs around `rec`, a setting of the `coarse` knobs of `lowered` (the tune's
/// copy of the plan): the knobs `refine` name get the finer ladders of the module header,
/// the others only their setting in `rec` (their own). `keeps(level)` says whether a
/// threshold of a rule leaves the model's draws as they are.
pub(crate) fn knobs(
    lowered: &LoweredPlan,
    coarse: &[Knob],
    rec: &[Variant],
    refine: &[usize],
    keeps: &mut dyn FnMut(&AlertRule) -> bool,
) -> Vec<Knob> {
    let eval = lowered.plan.monitoring.evaluation_interval.millis();
    coarse
        .iter()
        .zip(rec)
        .enumerate()
        .map(|(ki, (k, &v))| {
            if !refine.contains(&ki) {
                return fixed(k, v);
            }
            let rule = &lowered.rules[k.rule];
            let own_level = space::level_of(&rule.condition).unwrap_or(f64::NAN);
            let ladder = match rule.condition {
                Condition::Compare { op, rhs } if k.ladder.len() > 1 => {
                    let unit = lowered.plan.metrics[rule.metric].unit;
                    let neutral = space::neutral(op, unit, matches!(rhs, Rhs::StableTimes { .. }));
                    let at = k.level(v);
                    let mut levels = vec![at, own_level];
                    for n in neighbours(k.ladder.len(), v.level) {
                        let Some(mid) = midpoint(at, k.level(Variant { level: n, ..v }), neutral)
                        else {
                            continue;
                        };
                        let mid = match &k.written {
                            Some(w) => super::written::canonical(w, mid, unit),
                            None => mid,
                        };
                        let mut r = rule.clone();
                        r.condition = Ladder::new(op, rhs, vec![mid]).conditions[0];
                        if keeps(&r) {
                            levels.push(mid);
                        }
                    }
                    Ladder::new(op, rhs, levels)
                }
                _ => Ladder {
                    conditions: vec![k.ladder.conditions[v.level]],
                },
            };
            let level = ladder
                .conditions
                .iter()
                .position(|c| *c == rule.condition)
                .unwrap_or(0);
            let mut fors = vec![k.fors[v.for_], rule.for_ms];
            if k.fors.len() > 1 {
                for n in neighbours(k.fors.len(), v.for_) {
                    let (a, b) = (k.fors[v.for_].min(k.fors[n]), k.fors[v.for_].max(k.fors[n]));
                    fors.extend(
                        ROUND_FORS_MS
                            .iter()
                            .copied()
                            .filter(|&f| f > a && f < b && f >= eval),
                    );
                }
            }
            fors.sort_unstable();
            fors.dedup();
            let own_guard = rule.guard.map(|g| g.min);
            let mut guards = vec![k.guards[v.guard], own_guard];
            if let Some(at) = k.guards[v.guard] {
                for n in neighbours(k.guards.len(), v.guard) {
                    guards.extend(
                        k.guards[n]
                            .and_then(|other| round_guard(at, other))
                            .map(Some),
                    );
                }
            }
            // No guard first, then ascending minimums ([`super::guards::Levels`]).
            guards.sort_unstable();
            guards.dedup();
            Knob {
                current: Variant {
                    guard: guards.iter().position(|&g| g == own_guard).unwrap_or(0),
                    for_: fors.iter().position(|&f| f == rule.for_ms).unwrap_or(0),
                    level,
                },
                ladder,
                fors,
                guards,
                ..k.clone()
            }
        })
        .collect()
}

/// Knob `k` held at its variant `v`.
fn fixed(k: &Knob, v: Variant) -> Knob {
    Knob {
        ladder: Ladder {
            conditions: vec![k.ladder.conditions[v.level]],
        },
        fors: vec![k.fors[v.for_]],
        guards: vec![k.guards[v.guard]],
        current: Variant {
            guard: 0,
            for_: 0,
            level: 0,
        },
        ..k.clone()
    }
}

/// The indices next to `i` among `0..len`.
fn neighbours(len: usize, i: usize) -> impl Iterator<Item = usize> {
    [i.checked_sub(1), Some(i + 1).filter(|&j| j < len)]
        .into_iter()
        .flatten()
}

/// The level between `a` and `b`: the geometric mean of their distances from `neutral`
/// when they lie on the same side of it, else their mean; its distance rounded to three
/// significant digits as the coarse levels are. None when the rounding leaves nothing
/// strictly between.
fn midpoint(a: f64, b: f64, neutral: f64) -> Option<f64> {
    let (da, db) = (a - neutral, b - neutral);
    let d = if da * db > 0.0 {
        da.signum() * (da * db).sqrt()
    } else {
        (da + db) / 2.0
    };
    let m = neutral + space::round_sig(d, 3);
    (m > a.min(b) && m < a.max(b)).then_some(m)
}

/// The round guard (1, 1.5, 2, 3, 5, 7 times a power of ten) strictly between `a` and `b`
/// nearest their geometric mean, if any.
fn round_guard(a: u64, b: u64) -> Option<u64> {
    let (lo, hi) = (a.min(b), a.max(b));
    let mid = ((lo.max(1) as f64) * hi as f64).sqrt();
    let mut best: Option<u64> = None;
    for e in 0..10 {
        for m in GUARD_MANTISSAS {
            let g = (m * 10f64.powi(e)).round() as u64;
            if g <= lo || g >= hi {
                continue;
            }
            let off = |x: u64| (x as f64 / mid).ln().abs();
            if best.is_none_or(|b| off(g) < off(b)) {
                best = Some(g);
            }
        }
    }
    best
}

/// Refines `coarse`, the recommendation within `budget` of `sweep` (the coarse pass over
/// the plan `lowered`), on the same trials; None when it changed no knob, or when the
/// refined sweep would not give the coarse recommendation its coarse figures.
pub(crate) fn run(
    (lowered, sweep): (&LoweredPlan, &Sweep),
    (scenarios, baseline): (&Scenarios, Option<Baseline<'_>>),
    coarse: &Point,
    budget: f64,
    settings: Settings,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<Option<Refined>, Stop> {
    let refine = changed(&sweep.knobs, &coarse.setting);
    if refine.is_empty() {
        return Ok(None);
    }
    let (knobs, model_rules) =
        space_of(lowered, &sweep.knobs, &coarse.setting, scenarios, settings);
    let mut refined = sweep::run_for(
        lowered,
        (scenarios, baseline),
        knobs,
        &model_rules,
        settings,
        progress,
    )?;
    refined.window = sweep.window;
    refined.pass = Pass::Refined;
    let setting = start(&sweep.knobs, &refined.knobs, &coarse.setting);
    let start = Point {
        window: sweep.window,
        pass: Pass::Refined,
        figures: refined.figures(&setting),
        setting,
    };
    if start.figures != coarse.figures {
        debug_assert_eq!(start.figures, coarse.figures, "the same trials");
        return Ok(None);
    }
    let best = search::climb(&refined, budget, start.clone());
    Ok(Some(Refined {
        sweep: refined,
        coarse: coarse.clone(),
        start,
        best,
        refined: refine,
    }))
}

/// The refined knobs around `rec` (a setting of `coarse`) and the rules their model is
/// built for: the coarse pass's, and theirs, which track no bucket the coarse model does
/// not (see the module header).
pub(crate) fn space_of(
    lowered: &LoweredPlan,
    coarse: &[Knob],
    rec: &[Variant],
    scenarios: &Scenarios,
    settings: Settings,
) -> (Vec<Knob>, Vec<AlertRule>) {
    let refine = changed(coarse, rec);
    let base = space::model_rules(lowered, coarse);
    let model = |rules: &[AlertRule]| {
        Model::new(&lowered.plan, scenarios, rules, settings.semantics)
            .latency_bounds()
            .to_vec()
    };
    let bounds = model(&base);
    let mut keeps = |r: &AlertRule| {
        let mut with = base.clone();
        with.push(r.clone());
        model(&with) == bounds
    };
    let knobs = knobs(lowered, coarse, rec, &refine, &mut keeps);
    let mut rules = base.clone();
    rules.extend(space::model_rules(lowered, &knobs));
    (knobs, rules)
}

/// `rec`, a setting of the `coarse` knobs, as a setting of the `refined` ones (which hold
/// each of its variants).
pub(crate) fn start(coarse: &[Knob], refined: &[Knob], rec: &[Variant]) -> Vec<Variant> {
    coarse
        .iter()
        .zip(refined)
        .zip(rec)
        .map(|((c, r), &v)| {
            let find = |found: Option<usize>| found.expect("the coarse setting is refined too");
            Variant {
                level: find(
                    r.ladder
                        .conditions
                        .iter()
                        .position(|x| *x == c.ladder.conditions[v.level]),
                ),
                for_: find(r.fors.iter().position(|&f| f == c.fors[v.for_])),
                guard: find(r.guards.iter().position(|&g| g == c.guards[v.guard])),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn midpoints_halve_the_coarse_step() {
        // 10% and its neighbours 7.07% and 14.1%: 8.41% and 11.9%.
        assert_eq!(midpoint(0.1, 0.0707, 0.0), Some(0.0841));
        assert_eq!(midpoint(0.1, 0.141, 0.0), Some(0.119));
        // 99% availability (neutral 100%): 98.59% between 99% and 98%.
        let m = midpoint(0.99, 0.98, 1.0).expect("between");
        assert!((m - 0.9859).abs() < 1e-12, "{m}");
        // Nothing strictly between once rounded.
        assert_eq!(midpoint(0.1, 0.1001, 0.0), None);
    }

    #[test]
    fn round_guards_between() {
        assert_eq!(round_guard(20, 50), Some(30));
        assert_eq!(round_guard(50, 100), Some(70));
        assert_eq!(round_guard(100, 200), Some(150));
        assert_eq!(round_guard(1, 2), None);
    }
}
