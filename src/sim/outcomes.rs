//! Outcome-only evaluation of a lock-step batch of Monte Carlo trials, one lane per trial.
//!
//! A trial only reports rollbacks and the gates failing at phase ends, so its evaluation
//! skips what cannot change either: no-data rules never run, and a gate runs only from the
//! last evaluation at which a run of true conditions could still make it fire by the
//! phase's end (its `for` before the phase's last evaluation, [`gates_from`]). An alert's
//! state depends only on the current run of evaluations at which its condition held, so
//! the gate failures are exactly those of evaluating every rule at every step.
//!
//! The batch shares its phase and the rules that run at each evaluation, so those are
//! decided once per evaluation; each rule then steps every lane's alert in one loop. A
//! trial's verdict and gate failures are those of the full [`Evaluator`] (a unit test
//! compares them).
//!
//! [`Evaluator`]: crate::sim::evaluator::Evaluator

use crate::lower::{AlertRule, Condition, Rhs, RuleKind};
use crate::model::Op;
use crate::prom::{AlertState, Status};
use crate::sim::evaluator::{Columns, Schedule, Verdict, alert_state};

/// Which rules an outcome-only evaluation runs at some evaluation time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RuleSet {
    /// Rollback rules only.
    Rollbacks,
    /// Rollback rules and gates.
    RollbacksAndGates,
}

impl RuleSet {
    /// The kinds of rule in the set.
    pub(crate) fn kinds(self) -> &'static [RuleKind] {
        match self {
            RuleSet::Rollbacks => &[RuleKind::Rollback],
            RuleSet::RollbacksAndGates => &[RuleKind::Rollback, RuleKind::Gate],
        }
    }
}

/// Per phase, the first evaluation (on the grid of `eval_ms` from 0) from which a run of
/// true gate conditions could still make a gate fire by the phase's end: its `for`
/// before the phase's last evaluation. `i64::MAX` for the last phase, or without gates.
pub(crate) fn gates_from(rules: &[AlertRule], schedule: &Schedule, eval_ms: i64) -> Vec<i64> {
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

/// The lanes that have a verdict, with it, in lane order.
pub(crate) fn decided(verdicts: &[Option<Verdict>]) -> impl Iterator<Item = (usize, Verdict)> + '_ {
    verdicts
        .iter()
        .enumerate()
        .filter_map(|(l, v)| v.map(|v| (l, v)))
}

/// The indices of the rules of `kinds`, in plan order.
fn of_kinds(rules: &[AlertRule], kinds: &[RuleKind]) -> Vec<usize> {
    (0..rules.len())
        .filter(|&i| kinds.contains(&rules[i].kind))
        .collect()
}

/// The alert states and outcomes of a batch's lanes.
pub(crate) struct Outcomes<'a> {
    rules: &'a [AlertRule],
    schedule: &'a Schedule,
    /// The phase every lane is in.
    phase: usize,
    /// Per phase, the first evaluation at which gates run ([`gates_from`]).
    gates_from: Vec<i64>,
    /// The rules that run: rollback rules only; rollback rules and gates.
    runs: [Vec<usize>; 2],
    live: usize,
    width: usize,
    /// Per rule, per lane (rows of `width`).
    states: Vec<AlertState>,
    /// Per lane, (phase, rule) of every gate that was firing when its phase ended.
    gate_failures: Vec<Vec<(usize, usize)>>,
    /// Per lane, the verdict of the latest evaluation.
    verdicts: Vec<Option<Verdict>>,
    /// Rule evaluations run, over all lanes.
    evaluated: u64,
}

impl<'a> Outcomes<'a> {
    /// `lanes` trials evaluated every `eval_ms` from 0, under a gate policy that rolls back
    /// at once (a hold would take lanes out of lock step; `sim::montecarlo` refuses it).
    pub(crate) fn new(
        rules: &'a [AlertRule],
        schedule: &'a Schedule,
        eval_ms: i64,
        lanes: usize,
    ) -> Self {
        Outcomes {
            rules,
            schedule,
            phase: 0,
            gates_from: gates_from(rules, schedule, eval_ms),
            runs: [
                of_kinds(rules, RuleSet::Rollbacks.kinds()),
                of_kinds(rules, RuleSet::RollbacksAndGates.kinds()),
            ],
            live: lanes,
            width: lanes,
            states: rules
                .iter()
                .flat_map(|r| std::iter::repeat_n(alert_state(r), lanes))
                .collect(),
            gate_failures: vec![Vec::new(); lanes],
            verdicts: vec![None; lanes],
            evaluated: 0,
        }
    }

    /// The phase every lane is in.
    pub(crate) fn phase(&self) -> usize {
        self.phase
    }

    /// Lane `l`'s gates that were firing when their phase ended.
    pub(crate) fn gate_failures(&self, l: usize) -> &[(usize, usize)] {
        &self.gate_failures[l]
    }

    /// Rule evaluations run so far, over all lanes.
    pub(crate) fn evaluated(&self) -> u64 {
        self.evaluated
    }

    /// Which rules [`evaluate`](Self::evaluate) runs at `ts`.
    pub(crate) fn rule_set(&self, ts: i64) -> RuleSet {
        if ts < self.gates_from[self.phase] {
            RuleSet::Rollbacks
        } else {
            RuleSet::RollbacksAndGates
        }
    }

    /// Drops lane `l`: the last lane takes its place.
    pub(crate) fn swap_remove(&mut self, l: usize) {
        self.live -= 1;
        let from = self.live;
        self.gate_failures.swap(l, from);
        self.verdicts[l] = self.verdicts[from];
        for row in self.states.chunks_exact_mut(self.width) {
            row[l] = row[from];
        }
    }

    /// Moves the release on at `ts`, before that evaluation, when a phase's length is up
    /// (every lane's at once: no lane is ever held, see [`Outcomes::new`]): gates firing at
    /// the end of the old phase are recorded and roll their lanes back, alert states start
    /// over; the end of the last phase's watch completes every lane. Returns each lane's
    /// verdict when something ended, None in the common case.
    pub(crate) fn enter(&mut self, ts: i64) -> Option<&[Option<Verdict>]> {
        let schedule = self.schedule;
        if ts < schedule.end_of(self.phase) {
            return None;
        }
        let n = self.live;
        self.verdicts[..n].fill(None);
        while ts >= schedule.end_of(self.phase) {
            if schedule.is_last(self.phase) {
                let full_at = schedule.starts[self.phase];
                // A lane a gate rolled back in this same step keeps that verdict.
                for v in self.verdicts[..n].iter_mut().filter(|v| v.is_none()) {
                    *v = Some(Verdict::Completed {
                        ts: schedule.end,
                        full_at,
                    });
                }
                break;
            }
            let phase = self.phase;
            for (i, r) in self.rules.iter().enumerate() {
                let row = &mut self.states[i * self.width..i * self.width + n];
                for (l, s) in row.iter_mut().enumerate() {
                    if r.kind == RuleKind::Gate && s.status().is_firing() {
                        self.gate_failures[l].push((phase, i));
                        // The first failing gate, in plan order, rolls the lane back.
                        if self.verdicts[l].is_none() {
                            self.verdicts[l] = Some(Verdict::RolledBack { ts, phase, rule: i });
                        }
                    }
                    *s = alert_state(r);
                }
            }
            self.phase += 1;
        }
        Some(&self.verdicts[..n])
    }

    /// One evaluation at `ts` of every lane's rules (call [`enter`](Self::enter) first) on
    /// the lanes' `values`. Returns each lane's verdict: rolled back if a rollback rule
    /// fired.
    pub(crate) fn evaluate(&mut self, ts: i64, values: Columns<'_>) -> &[Option<Verdict>] {
        let (n, w, phase) = (self.live, self.width, self.phase);
        let runs = &self.runs[usize::from(self.rule_set(ts) == RuleSet::RollbacksAndGates)];
        self.evaluated += (runs.len() * n) as u64;
        let verdicts = &mut self.verdicts[..n];
        verdicts.fill(None);
        for &i in runs {
            let r = &self.rules[i];
            let row = &mut self.states[i * w..i * w + n];
            let at = (ts, phase, i);
            let lanes = (&mut *row, &mut *verdicts);
            // A rule left out of this phase's rules file holds nowhere.
            if !r.runs_in(phase) {
                step_rule(lanes, values, at, r, |_, _| false);
                continue;
            }
            // The comparison is chosen once per rule, not once per lane.
            match r.condition {
                Condition::Compare {
                    op,
                    rhs: Rhs::Value(v),
                } => match op {
                    Op::Lt => step_rule(lanes, values, at, r, |c, _| {
                        c.is_some_and(|c| Op::Lt.holds(c, v))
                    }),
                    Op::Le => step_rule(lanes, values, at, r, |c, _| {
                        c.is_some_and(|c| Op::Le.holds(c, v))
                    }),
                    Op::Gt => step_rule(lanes, values, at, r, |c, _| {
                        c.is_some_and(|c| Op::Gt.holds(c, v))
                    }),
                    Op::Ge => step_rule(lanes, values, at, r, |c, _| {
                        c.is_some_and(|c| Op::Ge.holds(c, v))
                    }),
                },
                _ => step_rule(lanes, values, at, r, |c, s| r.condition.holds(c, s)),
            }
        }
        &self.verdicts[..n]
    }
}

/// Steps rule `rule` (index `i`) of every lane, whose states are `row`, at `ts` in
/// `phase`, its condition being `holds`; a rollback rule that fires sets the lane's
/// verdict unless an earlier rule did.
#[inline(always)]
fn step_rule(
    (row, verdicts): (&mut [AlertState], &mut [Option<Verdict>]),
    values: Columns<'_>,
    (ts, phase, i): (i64, usize, usize),
    rule: &AlertRule,
    holds: impl Fn(Option<f64>, Option<f64>) -> bool,
) {
    let rollback = rule.kind == RuleKind::Rollback;
    let n = row.len();
    let (canary, stable) = (
        values.of(rule.metric, false, n),
        values.of(rule.metric, true, n),
    );
    for (((s, &canary), &stable), verdict) in row
        .iter_mut()
        .zip(canary)
        .zip(stable)
        .zip(verdicts.iter_mut())
    {
        let holds = holds(canary, stable);
        // The usual case: nothing to do.
        if !holds && s.status() == Status::Inactive {
            continue;
        }
        let after = s.step(ts, holds);
        if rollback && after.is_firing() && verdict.is_none() {
            *verdict = Some(Verdict::RolledBack { ts, phase, rule: i });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::CheckedPlan;
    use crate::lower;
    use crate::sim::evaluator::Evaluator;
    use rand::rngs::Xoshiro256PlusPlus;
    use rand::{RngExt, SeedableRng};

    /// An example plan of `plans/`.
    fn plan(name: &str) -> CheckedPlan {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("plans")
            .join(name);
        crate::pipeline::compile_file(&path)
            .expect("example plan loads")
            .plan
            .expect("example plan is valid")
            .plan
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
    fn pick(rng: &mut Xoshiro256PlusPlus) -> (Option<f64>, Option<f64>) {
        let mut one = || CANDIDATES[rng.random_range(0..CANDIDATES.len())];
        (one(), one())
    }

    /// The rules of `plan` without its rollback rules: every run then reaches promotion,
    /// through every gate check.
    fn without_rollbacks(rules: &[AlertRule]) -> Vec<AlertRule> {
        rules
            .iter()
            .filter(|r| r.kind != RuleKind::Rollback)
            .cloned()
            .collect()
    }

    /// What the batch's runs ended with: rollbacks by a rule, completions, gate failures,
    /// rollbacks by a gate.
    #[derive(Default)]
    struct Seen(usize, usize, usize, usize);

    /// Runs `lanes` trials of sticky random values (changing about every half hour) both
    /// through their own evaluators and through one batch, checking that every lane ends
    /// as its own evaluator does.
    fn compare(rules: &[AlertRule], plan: &CheckedPlan, lanes: usize, seed: u64, seen: &mut Seen) {
        let schedule = Schedule::new(plan);
        let eval_ms = plan.monitoring.evaluation_interval.millis() as i64;
        let metrics = plan.metrics.len();
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
        let mut values: Vec<Vec<(Option<f64>, Option<f64>)>> = (0..lanes)
            .map(|_| (0..metrics).map(|_| pick(&mut rng)).collect())
            .collect();
        let mut solo: Vec<Evaluator<'_>> = (0..lanes)
            .map(|_| Evaluator::new(rules, &schedule, false))
            .collect();
        let mut batch = Outcomes::new(rules, &schedule, eval_ms, lanes);
        // Lane -> trial.
        let mut trial: Vec<usize> = (0..lanes).collect();
        let mut ended: Vec<(usize, Verdict)> = Vec::new();
        let mut ts = 0;
        while !trial.is_empty() {
            // A phase's end first (its failing gates, the watch's end), then the evaluation
            // of the lanes still running.
            for entering in [true, false] {
                ended.clear();
                if entering {
                    for &t in &trial {
                        solo[t].enter(ts);
                    }
                    if let Some(verdicts) = batch.enter(ts) {
                        ended.extend(decided(verdicts));
                    }
                } else if !trial.is_empty() {
                    let width = trial.len();
                    let mut columns = vec![None; 2 * metrics * width];
                    for (l, &t) in trial.iter().enumerate() {
                        for (m, v) in values[t].iter_mut().enumerate() {
                            if rng.random_range(0..30) == 0 {
                                *v = pick(&mut rng);
                            }
                            columns[2 * m * width + l] = v.0;
                            columns[(2 * m + 1) * width + l] = v.1;
                        }
                        solo[t].evaluate(ts, &values[t]);
                    }
                    let columns = Columns {
                        data: &columns,
                        width,
                    };
                    let verdicts = batch.evaluate(ts, columns);
                    ended.extend(decided(verdicts));
                }
                for (l, &t) in trial.iter().enumerate() {
                    let expected = ended.iter().find(|&&(e, _)| e == l).map(|&(_, v)| v);
                    assert_eq!(solo[t].verdict(), expected, "trial {t} at {ts}");
                }
                for &(l, v) in ended.iter().rev() {
                    let e = &solo[trial[l]];
                    assert_eq!(batch.gate_failures(l), e.gate_failures());
                    assert_eq!(batch.phase(), e.phase());
                    match v {
                        Verdict::RolledBack { rule, .. } if rules[rule].kind == RuleKind::Gate => {
                            seen.3 += 1;
                        }
                        Verdict::RolledBack { .. } => seen.0 += 1,
                        Verdict::Completed { .. } | Verdict::Held { .. } => seen.1 += 1,
                    }
                    seen.2 += e.gate_failures().len();
                    batch.swap_remove(l);
                    trial.swap_remove(l);
                }
            }
            ts += eval_ms;
        }
    }

    /// Every lane of a batch ends as a full evaluation of every rule at every step does,
    /// whatever the order in which lanes leave the batch.
    #[test]
    fn a_batch_ends_each_lane_as_its_own_evaluator_does() {
        let mut seen = Seen::default();
        for name in ["lawsker.yaml", "checkout.yaml", "minimal.yaml"] {
            let plan = plan(name);
            let all = lower::alert_rules(&plan);
            let no_rollbacks = without_rollbacks(&all);
            for (seed, rules) in [&all, &no_rollbacks].into_iter().enumerate() {
                compare(rules, &plan, 24, seed as u64, &mut seen);
            }
        }
        let Seen(rollbacks, completions, gate_failures, gate_rollbacks) = seen;
        assert!(rollbacks > 10, "{rollbacks} rollbacks");
        assert!(completions > 10, "{completions} completions");
        assert!(gate_failures > 10, "{gate_failures} gate failures");
        assert!(gate_rollbacks > 10, "{gate_rollbacks} rollbacks by a gate");
    }
}
