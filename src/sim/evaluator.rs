//! Runs the plan's lowered alerting rules over time, exactly as Prometheus would, and
//! walks the release through its phases: the part of a simulation that does not care where
//! the metric values come from (a recorded trace or a synthetic trial).
//!
//! Phase changes swap the rules file (each phase's file carries its own `phase` label), and
//! Prometheus keeps alert state across a reload only for rules of the same file, group,
//! name and labels; so at every phase boundary every pending or firing alert starts over.
//! A release that reaches its last phase (100%) is promoted.
//!
//! A Monte Carlo trial only reports rollbacks and the gates failing at phase ends, so its
//! evaluator ([`Evaluator::for_outcome`]) skips what cannot change either: no-data rules
//! never run, and a gate runs only from the last evaluation at which a run of true
//! conditions could still make it fire by the phase's end (its `for` before the phase's
//! last evaluation). An alert's state depends only on the current run of evaluations at
//! which its condition held, so the gate failures are exactly those of evaluating every
//! rule at every step.

use crate::check::CheckedPlan;
use crate::lower::{AlertRule, RuleKind};
use crate::sim::prom::{self, AlertState, Status};

/// The metric values of one evaluation, per metric index: (canary, stable).
pub type Values = [(Option<f64>, Option<f64>)];

/// The metric values of one evaluation of a batch of trials, column by column: the
/// canary's values of metric `m` in row `2m`, the stable track's in row `2m + 1`, each row
/// `width` lanes long.
#[derive(Debug, Clone, Copy)]
pub struct Columns<'v> {
    pub data: &'v [Option<f64>],
    pub width: usize,
}

impl<'v> Columns<'v> {
    /// Metric `metric`'s values on the canary (`stable` false) or the stable track, for
    /// lanes `..n`.
    #[inline]
    pub fn of(&self, metric: usize, stable: bool, n: usize) -> &'v [Option<f64>] {
        let row = (2 * metric + usize::from(stable)) * self.width;
        &self.data[row..row + n]
    }
}

/// When each phase starts, in milliseconds from the start of the release.
#[derive(Debug, Clone)]
pub struct Schedule {
    /// Start of each phase; the last phase (100%) has no end.
    pub starts: Vec<i64>,
}

impl Schedule {
    pub fn new(plan: &CheckedPlan) -> Schedule {
        let mut t = 0i64;
        let starts = plan
            .phases
            .iter()
            .map(|p| {
                let s = t;
                t += p.duration.map_or(0, |d| d.millis() as i64);
                s
            })
            .collect();
        Schedule { starts }
    }

    /// The time the last phase starts: reaching it means promotion.
    pub fn promotion_at(&self) -> i64 {
        *self.starts.last().unwrap_or(&0)
    }

    /// The phase running at `ts`.
    pub fn phase_at(&self, ts: i64) -> usize {
        self.starts.partition_point(|&s| s <= ts).saturating_sub(1)
    }
}

/// Something that happened to a rule or the release, for the replay timeline.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    PhaseStarted {
        ts: i64,
        phase: usize,
    },
    Pending {
        ts: i64,
        rule: usize,
        phase: usize,
    },
    Firing {
        ts: i64,
        rule: usize,
        phase: usize,
        active_at: i64,
    },
    /// A pending alert whose condition stopped holding before `for` elapsed.
    Cleared {
        ts: i64,
        rule: usize,
        phase: usize,
    },
    Resolved {
        ts: i64,
        rule: usize,
        phase: usize,
    },
    /// A gate alert was firing when its phase ended.
    GateFailed {
        ts: i64,
        rule: usize,
        phase: usize,
    },
}

/// How a release ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// A rollback rule fired at `ts`, in `phase`.
    RolledBack { ts: i64, phase: usize, rule: usize },
    /// The release reached its last phase at `ts`.
    Promoted { ts: i64 },
}

pub struct Evaluator<'a> {
    rules: &'a [AlertRule],
    schedule: &'a Schedule,
    states: Vec<AlertState>,
    phase: usize,
    /// Recorded only when asked for (the replay), never in Monte Carlo trials.
    events: Option<Vec<Event>>,
    verdict: Option<Verdict>,
    /// (phase, rule) of every gate that was firing when its phase ended.
    gate_failures: Vec<(usize, usize)>,
    /// Outcome-only evaluation: per phase, the first evaluation at which gates run (no-data
    /// rules never run). None: every rule runs at every evaluation.
    gates_from: Option<Vec<i64>>,
    /// Rule evaluations run so far.
    evaluated: u64,
    /// The rules [`evaluate`](Self::evaluate) runs, in plan order: every rule; rollback
    /// rules only; rollback rules and gates.
    runs: [Vec<usize>; 3],
}

/// Which rules an outcome-only evaluation runs at some evaluation time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Watch {
    /// Rollback rules only.
    Rollbacks,
    /// Rollback rules and gates.
    RollbacksAndGates,
}

impl Watch {
    /// The kinds of rule watched.
    pub fn kinds(self) -> &'static [RuleKind] {
        match self {
            Watch::Rollbacks => &[RuleKind::Rollback],
            Watch::RollbacksAndGates => &[RuleKind::Rollback, RuleKind::Gate],
        }
    }
}

/// Indices into [`Evaluator::runs`].
const EVERY_RULE: usize = 0;
const ROLLBACKS: usize = 1;
const ROLLBACKS_AND_GATES: usize = 2;

/// Per phase, the first evaluation (on the grid of `eval_ms` from 0) from which a run of
/// true gate conditions could still make a gate fire by the phase's end: its `for`
/// before the phase's last evaluation. `i64::MAX` for the last phase, or without gates.
pub fn gates_from(rules: &[AlertRule], schedule: &Schedule, eval_ms: i64) -> Vec<i64> {
    let eval_ms = eval_ms.max(1);
    let gate_for = rules
        .iter()
        .filter(|r| r.kind == RuleKind::Gate)
        .map(|r| r.for_ms as i64)
        .max();
    schedule
        .starts
        .windows(2)
        .map(|w| match gate_for {
            // The phase's last evaluation, then back by `for`, down to the grid.
            Some(f) if w[1] > w[0] => {
                let last = (w[1] - 1).div_euclid(eval_ms) * eval_ms;
                (last - f).div_euclid(eval_ms) * eval_ms
            }
            _ => i64::MAX,
        })
        .chain([i64::MAX])
        .collect()
}

/// The indices of the rules of `kinds`, in plan order.
pub fn of_kinds(rules: &[AlertRule], kinds: &[RuleKind]) -> Vec<usize> {
    (0..rules.len())
        .filter(|&i| kinds.contains(&rules[i].kind))
        .collect()
}

/// A fresh, inactive Prometheus alert for a lowered rule (no `keep_firing_for`: the rules
/// `plan render` emits do not set it).
pub fn alert_state(rule: &AlertRule) -> AlertState {
    AlertState::new(prom::AlertRule {
        for_ms: rule.for_ms as i64,
        keep_firing_for_ms: 0,
    })
}

impl<'a> Evaluator<'a> {
    pub fn new(rules: &'a [AlertRule], schedule: &'a Schedule, record_events: bool) -> Self {
        let states = rules.iter().map(alert_state).collect();
        let mut events = record_events.then(Vec::new);
        if let Some(ev) = events.as_mut() {
            ev.push(Event::PhaseStarted { ts: 0, phase: 0 });
        }
        Evaluator {
            rules,
            schedule,
            states,
            phase: 0,
            events,
            verdict: None,
            gate_failures: Vec::new(),
            gates_from: None,
            evaluated: 0,
            runs: [
                (0..rules.len()).collect(),
                of_kinds(rules, Watch::Rollbacks.kinds()),
                of_kinds(rules, Watch::RollbacksAndGates.kinds()),
            ],
        }
    }

    /// An evaluator that computes only the outcome (verdict and gate failures) of runs
    /// evaluated every `eval_ms` from 0, skipping the rule evaluations that cannot change it
    /// (see the module header). Call [`watch`](Self::watch) to know which metrics an
    /// evaluation reads.
    pub fn for_outcome(rules: &'a [AlertRule], schedule: &'a Schedule, eval_ms: i64) -> Self {
        Evaluator {
            gates_from: Some(gates_from(rules, schedule, eval_ms)),
            ..Evaluator::new(rules, schedule, false)
        }
    }

    /// Which rules [`evaluate`](Self::evaluate) runs at `ts` (every rule unless this is an
    /// outcome-only evaluator).
    #[inline]
    pub fn watch(&self, ts: i64) -> Watch {
        match self.runs_at(ts) {
            ROLLBACKS => Watch::Rollbacks,
            _ => Watch::RollbacksAndGates,
        }
    }

    /// Which of [`Evaluator::runs`] runs at `ts`.
    fn runs_at(&self, ts: i64) -> usize {
        match &self.gates_from {
            None => EVERY_RULE,
            Some(from) if ts < from[self.phase] => ROLLBACKS,
            Some(_) => ROLLBACKS_AND_GATES,
        }
    }

    pub fn phase(&self) -> usize {
        self.phase
    }

    pub fn verdict(&self) -> Option<Verdict> {
        self.verdict
    }

    pub fn gate_failures(&self) -> &[(usize, usize)] {
        &self.gate_failures
    }

    /// Rule evaluations run so far (an outcome-only evaluator skips some).
    pub fn evaluated(&self) -> u64 {
        self.evaluated
    }

    pub fn events(&self) -> &[Event] {
        self.events.as_deref().unwrap_or(&[])
    }

    pub fn status(&self, rule: usize) -> Status {
        self.states[rule].status()
    }

    /// Moves to the phase running at `ts`, if it changed: gates firing at the end of the
    /// old phase are recorded, alert state starts over, and reaching the last phase is a
    /// promotion. Returns the verdict if the release ended.
    pub fn enter(&mut self, ts: i64) -> Option<Verdict> {
        // Still before the next phase (the common case): nothing changes.
        if self
            .schedule
            .starts
            .get(self.phase + 1)
            .is_some_and(|&next| ts < next && ts >= self.schedule.starts[self.phase])
        {
            return self.verdict;
        }
        let phase = self.schedule.phase_at(ts);
        if phase == self.phase || self.verdict.is_some() {
            return self.verdict;
        }
        for (i, r) in self.rules.iter().enumerate() {
            if r.kind == RuleKind::Gate && self.states[i].status().is_firing() {
                let end = self.schedule.starts[self.phase + 1];
                self.gate_failures.push((self.phase, i));
                self.push(Event::GateFailed {
                    ts: end,
                    rule: i,
                    phase: self.phase,
                });
            }
            self.states[i] = AlertState::new(self.states[i].rule());
        }
        self.phase = phase;
        self.push(Event::PhaseStarted {
            ts: self.schedule.starts[phase],
            phase,
        });
        if phase + 1 == self.schedule.starts.len() {
            self.verdict = Some(Verdict::Promoted {
                ts: self.schedule.starts[phase],
            });
        }
        self.verdict
    }

    /// One rule evaluation at `ts` (call [`enter`](Self::enter) first). Returns the verdict
    /// once a rollback rule fires.
    #[inline]
    pub fn evaluate(&mut self, ts: i64, values: &Values) -> Option<Verdict> {
        if self.verdict.is_some() {
            return self.verdict;
        }
        let which = self.runs_at(ts);
        let runs = std::mem::take(&mut self.runs[which]);
        self.evaluated += runs.len() as u64;
        for &i in &runs {
            let r = &self.rules[i];
            let (canary, stable) = values[r.metric];
            let before = self.states[i].status();
            let after = self.states[i].step(ts, r.condition.holds(canary, stable));
            if before != after {
                self.transition(ts, i, before, after);
            }
            if r.kind == RuleKind::Rollback && after.is_firing() && self.verdict.is_none() {
                self.verdict = Some(Verdict::RolledBack {
                    ts,
                    phase: self.phase,
                    rule: i,
                });
            }
        }
        self.runs[which] = runs;
        self.verdict
    }

    fn transition(&mut self, ts: i64, rule: usize, before: Status, after: Status) {
        if self.events.is_none() {
            return;
        }
        let phase = self.phase;
        let ev = match (before, after) {
            (_, Status::Firing { active_at, .. }) if !before.is_firing() => Event::Firing {
                ts,
                rule,
                phase,
                active_at,
            },
            (Status::Inactive, Status::Pending { .. }) => Event::Pending { ts, rule, phase },
            (Status::Pending { .. }, Status::Inactive) => Event::Cleared { ts, rule, phase },
            (Status::Firing { .. }, Status::Inactive) => Event::Resolved { ts, rule, phase },
            _ => return,
        };
        // A rule that fires in the evaluation that makes it active (for: 0) was pending too.
        if let (Status::Inactive, Event::Firing { .. }) = (before, &ev) {
            self.push(Event::Pending { ts, rule, phase });
        }
        self.push(ev);
    }

    fn push(&mut self, e: Event) {
        if let Some(ev) = self.events.as_mut() {
            ev.push(e);
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::lower;
    use rand::rngs::Xoshiro256PlusPlus;
    use rand::{RngExt, SeedableRng};

    /// An example plan of `plans/`.
    pub(crate) fn plan(name: &str) -> CheckedPlan {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("plans")
            .join(name);
        crate::pipeline::compile_file(&path)
            .expect("example plan loads")
            .plan
            .expect("example plan is valid")
    }

    /// Metric values that exercise every rule: absent, NaN, and numbers on both sides of
    /// the example plans' thresholds.
    const CANDIDATES: [Option<f64>; 12] = [
        None,
        Some(f64::NAN),
        Some(0.0),
        Some(0.02),
        Some(0.07),
        Some(0.2),
        Some(0.85),
        Some(0.993),
        Some(1.0),
        Some(100.0),
        Some(4000.0),
        Some(1e9),
    ];

    /// A random (canary, stable) pair of [`CANDIDATES`].
    pub(crate) fn pick(rng: &mut Xoshiro256PlusPlus) -> (Option<f64>, Option<f64>) {
        let mut one = || CANDIDATES[rng.random_range(0..CANDIDATES.len())];
        (one(), one())
    }

    /// The rules of `plan` without its rollback rules: every run then reaches promotion,
    /// through every gate check.
    pub(crate) fn without_rollbacks(rules: &[AlertRule]) -> Vec<AlertRule> {
        rules
            .iter()
            .filter(|r| r.kind != RuleKind::Rollback)
            .cloned()
            .collect()
    }

    /// Runs `ev` every `eval_ms` over sticky random values until a verdict.
    fn run(mut ev: Evaluator<'_>, metrics: usize, eval_ms: i64, seed: u64) -> Evaluator<'_> {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
        let mut values: Vec<(Option<f64>, Option<f64>)> =
            (0..metrics).map(|_| pick(&mut rng)).collect();
        let mut ts = 0;
        loop {
            if ev.enter(ts).is_some() {
                return ev;
            }
            for v in &mut values {
                // Values hold for about half an hour, so gates stay failing past `for`.
                if rng.random_range(0..30) == 0 {
                    *v = pick(&mut rng);
                }
            }
            if ev.evaluate(ts, &values).is_some() {
                return ev;
            }
            ts += eval_ms;
        }
    }

    #[test]
    fn outcome_only_evaluation_has_the_full_outcome() {
        let mut gate_failures = 0;
        let mut rollbacks = 0;
        for name in ["lawsker.yaml", "checkout.yaml", "minimal.yaml"] {
            let plan = plan(name);
            let all = lower::alert_rules(&plan);
            let no_rollbacks = without_rollbacks(&all);
            let schedule = Schedule::new(&plan);
            let eval_ms = plan.monitoring.evaluation_interval.millis() as i64;
            for rules in [&all, &no_rollbacks] {
                for seed in 0..12 {
                    let full = run(
                        Evaluator::new(rules, &schedule, false),
                        plan.metrics.len(),
                        eval_ms,
                        seed,
                    );
                    let outcome = run(
                        Evaluator::for_outcome(rules, &schedule, eval_ms),
                        plan.metrics.len(),
                        eval_ms,
                        seed,
                    );
                    assert_eq!(full.verdict(), outcome.verdict(), "{name}, seed {seed}");
                    assert_eq!(
                        full.gate_failures(),
                        outcome.gate_failures(),
                        "{name}, seed {seed}"
                    );
                    gate_failures += full.gate_failures().len();
                    rollbacks +=
                        usize::from(matches!(full.verdict(), Some(Verdict::RolledBack { .. })));
                }
            }
        }
        // The comparison saw both kinds of outcome.
        assert!(gate_failures > 10, "{gate_failures} gate failures");
        assert!(rollbacks > 10, "{rollbacks} rollbacks");
    }
}
