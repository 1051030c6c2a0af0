//! Monte Carlo: many synthetic trials per scenario, in parallel, with results that do not
//! depend on the thread count. Each trial is seeded from (seed, scenario, trial index)
//! alone and every aggregate is an integer sum, so any split of trials over threads gives
//! the same numbers. Nothing per trial is kept beyond a few counters and histogram bins.

use crate::check::CheckedPlan;
use crate::lower::{self, AlertRule, RuleKind};
use crate::sim::evaluator::{Evaluator, Schedule, Verdict};
use crate::sim::prom::Semantics;
use crate::sim::scenario::{Scenario, Scenarios};
use crate::sim::stats::Histogram;
use crate::sim::synth::{Model, Trial};
use rand::SeedableRng;
use rand::rngs::Xoshiro256PlusPlus;
use std::sync::atomic::{AtomicU64, Ordering};

/// How to run.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    pub seed: u64,
    pub jobs: usize,
    /// Overrides the scenario file's trial count.
    pub trials: Option<u64>,
    pub semantics: Semantics,
}

/// Integer tallies of one scenario's trials.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Tally {
    pub trials: u64,
    pub rollbacks: u64,
    /// Rollbacks before the fault's onset (or with no fault): false rollbacks.
    pub false_rollbacks: u64,
    /// Rollbacks at or after onset.
    pub detected: u64,
    /// Promoted although the fault was active before promotion.
    pub escaped: u64,
    /// Trials in which the fault began only after promotion (the canary never saw it).
    pub fault_after_promotion: u64,
    pub rollbacks_by_phase: Vec<u64>,
    pub false_by_phase: Vec<u64>,
    pub first_rule: Vec<u64>,
    /// Time from onset to rollback, in evaluation intervals.
    pub detect_steps: Histogram,
    pub exposed_requests: u64,
    pub exposed_failed: u64,
    pub exposed_users: u64,
    /// Per (phase, rule): trials in which the gate was failing when the phase ended.
    pub gate_failures: Vec<u64>,
    /// Rule evaluations performed (for speed figures).
    pub evaluations: u64,
}

impl Tally {
    fn new(phases: usize, rules: usize) -> Tally {
        Tally {
            rollbacks_by_phase: vec![0; phases],
            false_by_phase: vec![0; phases],
            first_rule: vec![0; rules],
            gate_failures: vec![0; phases * rules],
            ..Tally::default()
        }
    }

    fn merge(&mut self, o: &Tally) {
        self.trials += o.trials;
        self.rollbacks += o.rollbacks;
        self.false_rollbacks += o.false_rollbacks;
        self.detected += o.detected;
        self.escaped += o.escaped;
        self.fault_after_promotion += o.fault_after_promotion;
        for (a, b) in [(&mut self.rollbacks_by_phase, &o.rollbacks_by_phase), (&mut self.false_by_phase, &o.false_by_phase), (&mut self.first_rule, &o.first_rule), (&mut self.gate_failures, &o.gate_failures)] {
            for (x, y) in a.iter_mut().zip(b) {
                *x += y;
            }
        }
        self.detect_steps.merge(&o.detect_steps);
        self.exposed_requests += o.exposed_requests;
        self.exposed_failed += o.exposed_failed;
        self.exposed_users += o.exposed_users;
        self.evaluations += o.evaluations;
    }
}

/// The result of one scenario.
pub struct ScenarioResult<'s> {
    pub scenario: &'s Scenario,
    pub tally: Tally,
}

/// A trial's seed: SplitMix64 over (seed, scenario, trial), so that trials are independent
/// of each other and of how they are scheduled.
pub fn trial_seed(seed: u64, scenario: u64, trial: u64) -> u64 {
    let mut z = seed ^ scenario.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ trial.wrapping_mul(0xD1B5_4A32_D192_ED03);
    for _ in 0..2 {
        z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut x = z;
        x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z = x ^ (x >> 31);
    }
    z
}

/// Which metrics each rule set needs on the stable track.
fn stable_needed(plan: &CheckedPlan, rules: &[AlertRule]) -> Vec<bool> {
    (0..plan.metrics.len()).map(|m| rules.iter().any(|r| r.metric == m && r.condition.uses_stable())).collect()
}

/// Runs every scenario; `progress(done, total)` is called from the calling thread now and
/// then.
pub fn run<'s>(plan: &CheckedPlan, scenarios: &'s Scenarios, settings: Settings, progress: &mut dyn FnMut(u64, u64)) -> Vec<ScenarioResult<'s>> {
    let rules = lower::alert_rules(plan);
    let schedule = Schedule::new(plan);
    let model = Model::new(plan, scenarios, stable_needed(plan, &rules), settings.semantics);
    let trials = settings.trials.unwrap_or(scenarios.trials);
    let total = trials * scenarios.scenarios.len() as u64;
    let done = AtomicU64::new(0);
    let mut results = Vec::new();
    for (si, scenario) in scenarios.scenarios.iter().enumerate() {
        let next = AtomicU64::new(0);
        let jobs = settings.jobs.max(1);
        let tally = std::thread::scope(|s| {
            let workers: Vec<_> = (0..jobs)
                .map(|_| {
                    s.spawn(|| {
                        let mut t = Tally::new(plan.phases.len(), rules.len());
                        loop {
                            let start = next.fetch_add(8, Ordering::Relaxed);
                            if start >= trials {
                                break;
                            }
                            for trial in start..(start + 8).min(trials) {
                                run_trial(plan, &rules, &schedule, &model, scenario, trial_seed(settings.seed, si as u64, trial), &mut t);
                            }
                            done.fetch_add((start + 8).min(trials) - start, Ordering::Relaxed);
                        }
                        t
                    })
                })
                .collect();
            let mut last = u64::MAX;
            while workers.iter().any(|w| !w.is_finished()) {
                let d = done.load(Ordering::Relaxed);
                if d != last {
                    progress(d, total);
                    last = d;
                }
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            let mut tally = Tally::new(plan.phases.len(), rules.len());
            for w in workers {
                // A worker panic is a bug; surface it rather than report partial numbers.
                tally.merge(&w.join().expect("simulation worker"));
            }
            tally
        });
        results.push(ScenarioResult { scenario, tally });
    }
    progress(total, total);
    results
}

fn run_trial(plan: &CheckedPlan, rules: &[AlertRule], schedule: &Schedule, model: &Model<'_>, scenario: &Scenario, seed: u64, t: &mut Tally) {
    let rng = Xoshiro256PlusPlus::seed_from_u64(seed);
    let fault = scenario.fault.as_ref();
    let mut trial = Trial::new(model, fault, rng);
    let mut ev = Evaluator::new(rules, schedule, false);
    let eval_ms = model.eval_ms;
    let mut ts = 0i64;
    let verdict = loop {
        if let Some(v) = ev.enter(ts) {
            break v;
        }
        let values = trial.values_at(ts);
        t.evaluations += rules.len() as u64;
        if let Some(v) = ev.evaluate(ts, values) {
            break v;
        }
        ts += eval_ms;
    };
    t.trials += 1;
    for &(phase, rule) in ev.gate_failures() {
        t.gate_failures[phase * rules.len() + rule] += 1;
    }
    let onset = fault.map(|f| f.onset_ms);
    let end = match verdict {
        Verdict::RolledBack { ts, phase, rule } => {
            t.rollbacks += 1;
            t.rollbacks_by_phase[phase] += 1;
            t.first_rule[rule] += 1;
            match onset {
                Some(o) if ts >= o => {
                    t.detected += 1;
                    t.detect_steps.add(((ts - o) / eval_ms) as usize);
                }
                _ => {
                    t.false_rollbacks += 1;
                    t.false_by_phase[phase] += 1;
                }
            }
            ts
        }
        Verdict::Promoted { ts } => {
            match onset {
                Some(o) if o < ts => t.escaped += 1,
                Some(_) => t.fault_after_promotion += 1,
                None => {}
            }
            ts
        }
    };
    t.exposed_requests += trial.exposure.requests;
    t.exposed_failed += trial.exposure.failed;
    if let (Some(o), Some(users)) = (onset, model.scenarios.traffic.users_per_day)
        && end > o
    {
        // Users seen by the canary while the fault was on: its user share (cohorts are
        // nested, so the latest phase's share covers the earlier ones) times the users
        // who visit in that time, with one visit a day as a Poisson process.
        let share = model.canary_share[model.phase_at(end - 1)];
        let days = (end - o) as f64 / 86_400_000.0;
        t.exposed_users += (users as f64 * share * (1.0 - (-days).exp()) / (1.0 - (-1.0f64).exp()).min(1.0)).round() as u64;
    }
    let _ = (plan, RuleKind::Rollback);
}
