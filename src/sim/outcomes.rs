//! Outcome-only evaluation of a lock-step batch of Monte Carlo trials, one lane per trial.
//!
//! A trial only reports rollbacks and the gates failing at phase ends, so its evaluation
//! skips what cannot change either: no-data rules never run, and a gate runs only from the
//! last evaluation at which a run of true conditions could still make it fire by the
//! phase's end (its `for` before the phase's last evaluation, [`gates_from`]), and at every
//! evaluation of a held phase. An alert's
//! state depends only on the current run of evaluations at which its condition held, so
//! the gate failures are exactly those of evaluating every rule at every step.
//!
//! The batch shares its phase, its phases' starts and the rules that run at each
//! evaluation, so those are decided once per evaluation; each rule then steps every lane's
//! alert in one loop. Under a gate policy that holds, a phase's end can send some lanes on
//! another course (held while the rest advance, or the reverse): [`Outcomes::enter`] says
//! which part, and `sim::batch` moves them to a batch of their own. A trial's verdict,
//! gate failures, holds and phase starts are those of the full [`Evaluator`] (a unit test
//! compares them).
//!
//! [`Evaluator`]: crate::sim::evaluator::Evaluator

use crate::check::GatePolicy;
use crate::lower::{AlertRule, Condition, Rhs, RuleKind};
use crate::model::AfterMaxHold;
use crate::model::Op;
use crate::prom::{AlertState, Status};
use crate::sim::evaluator::{Columns, HoldOutcome, Schedule, UNKNOWN, Verdict, alert_state};

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
/// A held phase runs its gates at every evaluation from then on (its end is past).
pub(crate) fn gates_from(rules: &[AlertRule], schedule: &Schedule, eval_ms: i64) -> Vec<i64> {
    let eval_ms = eval_ms.max(1);
    let gate_for = rules
        .iter()
        .filter(|r| r.kind == RuleKind::Gate)
        .map(|r| r.for_ms as i64)
        .max();
    (0..schedule.starts.len())
        .map(|k| match gate_for {
            Some(f) if !schedule.is_last(k) && schedule.starts[k] < UNKNOWN => {
                // The phase's last evaluation, then back by `for`, down to the grid.
                let last = (schedule.end_of(k) - 1).div_euclid(eval_ms) * eval_ms;
                (last - f).div_euclid(eval_ms) * eval_ms
            }
            _ => i64::MAX,
        })
        .collect()
}

/// Where a batch of trials is in the release, as far as what it draws depends on it: when
/// each phase starts, and from when each runs its gates ([`gates_from`]).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Progress<'o> {
    pub(crate) schedule: &'o Schedule,
    pub(crate) gates_from: &'o [i64],
}

impl Progress<'_> {
    /// Whether the gates run at some evaluation at a time in `[from, to]`: in each phase
    /// from its [`gates_from`] until the next phase starts (a held phase's never does).
    pub(crate) fn gates_run_between(&self, from: i64, to: i64) -> bool {
        let starts = &self.schedule.starts;
        (0..starts.len()).any(|k| {
            let next = starts.get(k + 1).copied().unwrap_or(UNKNOWN);
            from < next && self.gates_from[k] <= to
        })
    }
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

/// What a phase's end did to a lane ([`Outcomes::enter`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fate {
    /// It goes on with the rest of the batch.
    Goes,
    /// Its gates send it on another course than the batch's (held while the batch
    /// advances, or advancing while the batch stays held): it moves to the batch
    /// [`Outcomes::parting`] makes.
    Parts,
    /// The release ended.
    Ends(Verdict),
}

/// One hold of a phase: from the evaluation at which its gates first failed at its end,
/// to the moment it ended, and how.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Hold {
    pub(crate) phase: usize,
    pub(crate) from: i64,
    pub(crate) to: i64,
    pub(crate) outcome: HoldOutcome,
}

/// Where a batch's lanes are in the release: the phase, its hold, and the schedule their
/// holds have moved. Every lane of a batch shares it; a phase's end can part the lanes
/// into two courses.
#[derive(Debug, Clone, PartialEq)]
struct Course {
    phase: usize,
    /// When the running phase's hold began, while it is held.
    held_since: Option<i64>,
    schedule: Schedule,
}

/// The alert states and outcomes of a batch's lanes.
pub(crate) struct Outcomes<'a> {
    rules: &'a [AlertRule],
    eval_ms: i64,
    course: Course,
    /// The course of the lanes the latest [`enter`](Self::enter) parted.
    other: Option<Course>,
    /// The latest evaluation time at which a held phase checked its gates.
    checked: Option<i64>,
    /// Per phase, the first evaluation at which gates run ([`gates_from`]).
    gates_from: Vec<i64>,
    /// The rules that run: rollback rules only; rollback rules and gates (less the rules
    /// set aside by [`watch_only`](Self::watch_only)).
    runs: [Vec<usize>; 2],
    live: usize,
    width: usize,
    /// Per rule, per lane (rows of `width`).
    states: Vec<AlertState>,
    /// Per lane, (phase, rule) of every gate that was firing when its phase ended.
    gate_failures: Vec<Vec<(usize, usize)>>,
    /// Per lane, the holds that ended.
    holds: Vec<Vec<Hold>>,
    /// Per lane, the verdict of the latest evaluation.
    verdicts: Vec<Option<Verdict>>,
    /// Per lane, what the latest phase's end did to it.
    fates: Vec<Fate>,
    /// Rule evaluations run, over all lanes.
    evaluated: u64,
}

impl<'a> Outcomes<'a> {
    /// `lanes` trials evaluated every `eval_ms` from 0 on `schedule`.
    pub(crate) fn new(
        rules: &'a [AlertRule],
        schedule: &Schedule,
        eval_ms: i64,
        lanes: usize,
    ) -> Self {
        let mut o = Outcomes::empty(
            rules,
            eval_ms,
            Course {
                phase: 0,
                held_since: None,
                schedule: schedule.clone(),
            },
            lanes,
        );
        o.live = lanes;
        o
    }

    /// A batch with room for `width` lanes and none yet, on `course`.
    fn empty(rules: &'a [AlertRule], eval_ms: i64, course: Course, width: usize) -> Self {
        Outcomes {
            rules,
            eval_ms,
            gates_from: gates_from(rules, &course.schedule, eval_ms),
            course,
            other: None,
            checked: None,
            runs: [
                of_kinds(rules, RuleSet::Rollbacks.kinds()),
                of_kinds(rules, RuleSet::RollbacksAndGates.kinds()),
            ],
            live: 0,
            width,
            states: rules
                .iter()
                .flat_map(|r| std::iter::repeat_n(alert_state(r), width))
                .collect(),
            gate_failures: vec![Vec::new(); width],
            holds: vec![Vec::new(); width],
            verdicts: vec![None; width],
            fates: vec![Fate::Goes; width],
            evaluated: 0,
        }
    }

    /// The phase every lane is in.
    pub(crate) fn phase(&self) -> usize {
        self.course.phase
    }

    /// The schedule as the lanes' holds have moved it: every phase's start so far (the
    /// later ones as planned from the running phase's start, or [`UNKNOWN`] while held).
    pub(crate) fn schedule(&self) -> &Schedule {
        &self.course.schedule
    }

    /// Where the lanes are in the release: their schedule, and when their gates run.
    pub(crate) fn progress(&self) -> Progress<'_> {
        Progress {
            schedule: &self.course.schedule,
            gates_from: &self.gates_from,
        }
    }

    /// When the running phase's hold began, while it is held.
    pub(crate) fn held_since(&self) -> Option<i64> {
        self.course.held_since
    }

    /// Lane `l`'s gates that were firing when their phase ended.
    pub(crate) fn gate_failures(&self, l: usize) -> &[(usize, usize)] {
        &self.gate_failures[l]
    }

    /// Lane `l`'s holds that ended.
    pub(crate) fn holds(&self, l: usize) -> &[Hold] {
        &self.holds[l]
    }

    /// Rule evaluations run so far, over all lanes.
    pub(crate) fn evaluated(&self) -> u64 {
        self.evaluated
    }

    /// Which rules [`evaluate`](Self::evaluate) runs at `ts`.
    pub(crate) fn rule_set(&self, ts: i64) -> RuleSet {
        if ts < self.gates_from[self.course.phase] {
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
        self.holds.swap(l, from);
        self.verdicts[l] = self.verdicts[from];
        self.fates[l] = self.fates[from];
        for row in self.states.chunks_exact_mut(self.width) {
            row[l] = row[from];
        }
    }

    /// An empty batch, with room for `width` lanes, on the course of the lanes the latest
    /// [`enter`](Self::enter) parted (those of [`Fate::Parts`]: [`adopt`](Self::adopt)
    /// takes them).
    pub(crate) fn parting(&self, width: usize) -> Outcomes<'a> {
        let course = self.other.clone().expect("lanes parted");
        let mut o = Outcomes::empty(self.rules, self.eval_ms, course, width);
        o.checked = self.checked;
        o.runs = self.runs.clone();
        o
    }

    /// Sets aside the rules `rules` (indices): they no longer run here, so none of them
    /// rolls a lane back or fails a phase, while which rules *would* run at each evaluation
    /// ([`rule_set`](Self::rule_set), and so what the lanes compute) stays as before.
    /// `plan tune` watches them itself, many thresholds at once, over trials that the rules
    /// it tunes do not end.
    pub(crate) fn watch_only(&mut self, rules: &[usize]) {
        for run in &mut self.runs {
            run.retain(|i| !rules.contains(i));
        }
    }

    /// Takes lane `l` of `from` as its last lane (a lane of [`Fate::Parts`]).
    pub(crate) fn adopt(&mut self, from: &mut Outcomes<'_>, l: usize) {
        let to = self.live;
        self.live += 1;
        self.gate_failures[to] = std::mem::take(&mut from.gate_failures[l]);
        self.holds[to] = std::mem::take(&mut from.holds[l]);
        for (row, src) in self
            .states
            .chunks_exact_mut(self.width)
            .zip(from.states.chunks_exact(from.width))
        {
            row[to] = src[l];
        }
    }

    /// Moves the release on at `ts`, before that evaluation: when the running phase's
    /// length is up, or while it is held, its gates decide by the gate policy (as
    /// [`Evaluator::enter`] does for one trial) whether each lane's release advances, holds
    /// or rolls back; the end of the last phase's watch completes every lane. A new phase
    /// starts every alert over. Returns what happened to each lane when something did
    /// (None in the common case, and once nothing more happens at `ts`): lanes whose gates
    /// take them on another course than the batch's part ([`Fate::Parts`]), which the
    /// caller moves to a batch of their own; call again at the same `ts` until None.
    ///
    /// [`Evaluator::enter`]: crate::sim::evaluator::Evaluator::enter
    pub(crate) fn enter(&mut self, ts: i64) -> Option<&[Fate]> {
        let n = self.live;
        if n == 0 {
            return None;
        }
        let phase = self.course.phase;
        let schedule = &self.course.schedule;
        let end = schedule.end_of(phase);
        let held = self.course.held_since;
        if held.is_none() && ts < end || held.is_some() && self.checked == Some(ts) {
            return None;
        }
        self.fates[..n].fill(Fate::Goes);
        if held.is_none() && schedule.is_last(phase) {
            let done = Verdict::Completed {
                ts: end,
                full_at: schedule.starts[phase],
            };
            self.fates[..n].fill(Fate::Ends(done));
            return Some(&self.fates[..n]);
        }
        // Per lane, the first gate firing (in plan order), recorded as a failure at the
        // phase's end (not again while it is held).
        let mut failing = vec![None; n];
        for (i, r) in self.rules.iter().enumerate() {
            if r.kind != RuleKind::Gate {
                continue;
            }
            let row = &self.states[i * self.width..i * self.width + n];
            for (l, s) in row.iter().enumerate() {
                if s.status().is_firing() {
                    if held.is_none() {
                        self.gate_failures[l].push((phase, i));
                    }
                    failing[l].get_or_insert(i);
                }
            }
        }
        // Each lane's course from here: advance, (stay) held, or end.
        let next = match held {
            Some(_) => (ts - self.eval_ms).max(end),
            None => end,
        };
        let mut advance = self.course.clone();
        advance.phase += 1;
        advance.held_since = None;
        advance.schedule.resume(phase + 1, next);
        let mut hold = self.course.clone();
        hold.held_since.get_or_insert(ts);
        hold.schedule.hold(phase);
        let mut advancing = vec![false; n];
        for l in 0..n {
            let Some(rule) = failing[l] else {
                advancing[l] = true;
                if let Some(from) = held {
                    self.holds[l].push(Hold {
                        phase,
                        from,
                        to: next,
                        outcome: HoldOutcome::Advanced,
                    });
                }
                continue;
            };
            let rolled_back = Verdict::RolledBack { ts, phase, rule };
            self.fates[l] = match self.course.schedule.gate_policy {
                GatePolicy::Rollback => Fate::Ends(rolled_back),
                GatePolicy::Hold { max, then } => {
                    let since = held.unwrap_or(ts);
                    if ts - since < max.millis() as i64 {
                        continue;
                    }
                    let (outcome, verdict) = match then {
                        AfterMaxHold::Rollback => (HoldOutcome::RolledBack, rolled_back),
                        AfterMaxHold::Stay => (HoldOutcome::Stayed, Verdict::Held { ts, phase }),
                    };
                    self.holds[l].push(Hold {
                        phase,
                        from: since,
                        to: ts,
                        outcome,
                    });
                    Fate::Ends(verdict)
                }
            };
        }
        // The batch takes the course of most of its running lanes; the others part.
        let running = |adv: bool| {
            (0..n)
                .filter(|&l| self.fates[l] == Fate::Goes && advancing[l] == adv)
                .count()
        };
        let batch_advances = running(true) >= running(false);
        for (l, &advances) in advancing.iter().enumerate() {
            if self.fates[l] == Fate::Goes && advances != batch_advances {
                self.fates[l] = Fate::Parts;
            }
            // A lane that advances starts every alert over (a new rules file).
            if advances {
                for (i, r) in self.rules.iter().enumerate() {
                    self.states[i * self.width + l] = alert_state(r);
                }
            }
        }
        let (mine, other) = if batch_advances {
            (advance, hold)
        } else {
            (hold, advance)
        };
        if mine.schedule != self.course.schedule {
            self.gates_from = gates_from(self.rules, &mine.schedule, self.eval_ms);
        }
        self.course = mine;
        self.other = Some(other);
        if self.course.held_since.is_some()
            || self.other.as_ref().is_some_and(|o| o.held_since.is_some())
        {
            self.checked = Some(ts);
        }
        Some(&self.fates[..n])
    }

    /// One evaluation at `ts` of every lane's rules (call [`enter`](Self::enter) first) on
    /// the lanes' `values`. Returns each lane's verdict: rolled back if a rollback rule
    /// fired.
    pub(crate) fn evaluate(&mut self, ts: i64, values: Columns<'_>) -> &[Option<Verdict>] {
        let (n, w, phase) = (self.live, self.width, self.course.phase);
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
                step_rule(lanes, values, at, r, |_, _, _| false);
                continue;
            }
            // A guarded rule holds where its comparison does and the lane's request count
            // passes the guard.
            if let Some(g) = r.guard {
                let counts = values.of(g.count, false, n);
                step_rule(lanes, values, at, r, |l, c, s| {
                    g.passes(counts[l]) && r.condition.holds(c, s)
                });
                continue;
            }
            // The comparison is chosen once per rule, not once per lane.
            match r.condition {
                Condition::Compare {
                    op,
                    rhs: Rhs::Value(v),
                } => match op {
                    Op::Lt => step_rule(lanes, values, at, r, |_, c, _| {
                        c.is_some_and(|c| Op::Lt.holds(c, v))
                    }),
                    Op::Le => step_rule(lanes, values, at, r, |_, c, _| {
                        c.is_some_and(|c| Op::Le.holds(c, v))
                    }),
                    Op::Gt => step_rule(lanes, values, at, r, |_, c, _| {
                        c.is_some_and(|c| Op::Gt.holds(c, v))
                    }),
                    Op::Ge => step_rule(lanes, values, at, r, |_, c, _| {
                        c.is_some_and(|c| Op::Ge.holds(c, v))
                    }),
                },
                _ => step_rule(lanes, values, at, r, |_, c, s| r.condition.holds(c, s)),
            }
        }
        &self.verdicts[..n]
    }
}

/// Steps rule `rule` (index `i`) of every lane, whose states are `row`, at `ts` in
/// `phase`, its condition being `holds(lane, canary, stable)`; a rollback rule that fires
/// sets the lane's verdict unless an earlier rule did.
#[inline(always)]
fn step_rule(
    (row, verdicts): (&mut [AlertState], &mut [Option<Verdict>]),
    values: Columns<'_>,
    (ts, phase, i): (i64, usize, usize),
    rule: &AlertRule,
    holds: impl Fn(usize, Option<f64>, Option<f64>) -> bool,
) {
    let rollback = rule.kind == RuleKind::Rollback;
    let n = row.len();
    let (canary, stable) = (
        values.of(rule.metric, false, n),
        values.of(rule.metric, true, n),
    );
    for (l, (((s, &canary), &stable), verdict)) in row
        .iter_mut()
        .zip(canary)
        .zip(stable)
        .zip(verdicts.iter_mut())
        .enumerate()
    {
        let holds = holds(l, canary, stable);
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
    use crate::sim::evaluator::{Evaluator, Event};
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
    /// rollbacks by a gate, lanes that parted, holds that ended.
    #[derive(Default)]
    struct Seen(usize, usize, usize, usize, usize, usize);

    /// A batch's lanes that have had the same course, with their trials.
    struct Group<'a> {
        outcomes: Outcomes<'a>,
        trial_of: Vec<usize>,
    }

    /// Runs `lanes` trials of sticky random values (changing about every half hour) both
    /// through their own evaluators and through one batch (parting into groups as
    /// `sim::batch` does), checking that every lane ends as its own evaluator does.
    fn compare(rules: &[AlertRule], plan: &CheckedPlan, lanes: usize, seed: u64, seen: &mut Seen) {
        let schedule = Schedule::new(plan);
        let eval_ms = plan.monitoring.evaluation_interval.millis() as i64;
        let metrics = plan.metrics.len();
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
        let mut values: Vec<Vec<(Option<f64>, Option<f64>)>> = (0..lanes)
            .map(|_| (0..metrics).map(|_| pick(&mut rng)).collect())
            .collect();
        let mut solo: Vec<Evaluator<'_>> = (0..lanes)
            .map(|_| Evaluator::new(rules, &schedule, true))
            .collect();
        let mut done = vec![false; lanes];
        let mut groups = vec![Group {
            outcomes: Outcomes::new(rules, &schedule, eval_ms, lanes),
            trial_of: (0..lanes).collect(),
        }];
        let mut ts = 0;
        while !groups.is_empty() {
            let mut ended: Vec<(usize, Verdict)> = Vec::new();
            // Each lane's phase ends first (its failing gates, holds, the watch's end)...
            for e in &mut solo {
                e.enter(ts);
            }
            let mut g = 0;
            while g < groups.len() {
                while let Some(fates) = groups[g].outcomes.enter(ts) {
                    let fates = fates.to_vec();
                    let parting = fates.iter().filter(|&&f| f == Fate::Parts).count();
                    let mut new = (parting > 0).then(|| Group {
                        outcomes: groups[g].outcomes.parting(parting),
                        trial_of: Vec::new(),
                    });
                    let group = &mut groups[g];
                    for (l, &fate) in fates.iter().enumerate().rev() {
                        match fate {
                            Fate::Goes => continue,
                            Fate::Ends(v) => {
                                ended.push((group.trial_of[l], v));
                                check_end(
                                    &group.outcomes,
                                    l,
                                    &solo[group.trial_of[l]],
                                    rules,
                                    v,
                                    seen,
                                );
                            }
                            Fate::Parts => {
                                let new = new.as_mut().expect("parting");
                                new.outcomes.adopt(&mut group.outcomes, l);
                                new.trial_of.push(group.trial_of[l]);
                                seen.4 += 1;
                            }
                        }
                        group.outcomes.swap_remove(l);
                        group.trial_of.swap_remove(l);
                    }
                    groups.extend(new);
                }
                g += 1;
            }
            // ... then the evaluation of the lanes still running.
            for group in &mut groups {
                let width = group.trial_of.len();
                if width == 0 {
                    continue;
                }
                let mut columns = vec![None; 2 * metrics * width];
                for (l, &t) in group.trial_of.iter().enumerate() {
                    for (m, v) in values[t].iter_mut().enumerate() {
                        if rng.random_range(0..30) == 0 {
                            *v = pick(&mut rng);
                        }
                        columns[2 * m * width + l] = v.0;
                        columns[(2 * m + 1) * width + l] = v.1;
                    }
                    solo[t].evaluate(ts, &values[t]);
                    assert_eq!(
                        solo[t].phase(),
                        group.outcomes.phase(),
                        "trial {t} at {ts}: phase"
                    );
                    assert_eq!(
                        solo[t].starts(),
                        &group.outcomes.schedule().starts[..=solo[t].phase()],
                        "trial {t} at {ts}: phase starts"
                    );
                }
                let columns = Columns {
                    data: &columns,
                    width,
                };
                let verdicts: Vec<_> = decided(group.outcomes.evaluate(ts, columns)).collect();
                for &(l, v) in verdicts.iter().rev() {
                    let t = group.trial_of[l];
                    ended.push((t, v));
                    check_end(&group.outcomes, l, &solo[t], rules, v, seen);
                    group.outcomes.swap_remove(l);
                    group.trial_of.swap_remove(l);
                }
            }
            groups.retain(|g| !g.trial_of.is_empty());
            // Every lane that ended did so as its own evaluator, at the same time; the
            // others have no verdict yet.
            for t in 0..lanes {
                if done[t] {
                    continue;
                }
                let batch = ended.iter().find(|&&(e, _)| e == t).map(|&(_, v)| v);
                assert_eq!(solo[t].verdict(), batch, "trial {t} at {ts}");
                done[t] = batch.is_some();
            }
            ts += eval_ms;
        }
    }

    /// Lane `l` of `outcomes` ended with `v`: its gate failures and holds are its
    /// evaluator's.
    fn check_end(
        outcomes: &Outcomes<'_>,
        l: usize,
        e: &Evaluator<'_>,
        rules: &[AlertRule],
        v: Verdict,
        seen: &mut Seen,
    ) {
        assert_eq!(outcomes.gate_failures(l), e.gate_failures());
        let holds: Vec<(i64, i64, HoldOutcome)> = outcomes
            .holds(l)
            .iter()
            .map(|h| (h.from, h.to, h.outcome))
            .collect();
        // The evaluator's holds that ended before its verdict.
        let mut expected = Vec::new();
        let mut from = None;
        for ev in &e.events()[..e.verdict_event().unwrap_or(0)] {
            match *ev {
                Event::HoldStarted { ts, .. } => from = Some(ts),
                Event::HoldEnded { ts, outcome, .. } => {
                    expected.push((from.take().expect("a hold began"), ts, outcome));
                }
                _ => {}
            }
        }
        assert_eq!(holds, expected, "holds");
        match v {
            Verdict::RolledBack { rule, .. } if rules[rule].kind == RuleKind::Gate => {
                seen.3 += 1;
            }
            Verdict::RolledBack { .. } => seen.0 += 1,
            Verdict::Completed { .. } | Verdict::Held { .. } => seen.1 += 1,
        }
        seen.2 += e.gate_failures().len();
        seen.5 += holds.len();
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
        let Seen(rollbacks, completions, gate_failures, gate_rollbacks, _, _) = seen;
        assert!(rollbacks > 10, "{rollbacks} rollbacks");
        assert!(completions > 10, "{completions} completions");
        assert!(gate_failures > 10, "{gate_failures} gate failures");
        assert!(gate_rollbacks > 10, "{gate_rollbacks} rollbacks by a gate");
    }

    /// Under a gate policy that holds, lanes part from their batch when their gates send
    /// them on another course, and every lane still ends as its own evaluator does: the
    /// same verdict at the same time, the same phase starts, gate failures and holds.
    #[test]
    fn held_lanes_part_and_end_as_their_own_evaluators_do() {
        let mut seen = Seen::default();
        let minutes = |m: u64| crate::model::Duration::from_millis(m * 60_000).expect("positive");
        for name in ["lawsker.yaml", "checkout.yaml"] {
            for (max, then) in [
                (minutes(10), AfterMaxHold::Rollback),
                (minutes(180), AfterMaxHold::Stay),
                (minutes(45), AfterMaxHold::Stay),
            ] {
                let mut plan = plan(name);
                plan.gate_policy = GatePolicy::Hold { max, then };
                let all = lower::alert_rules(&plan);
                let no_rollbacks = without_rollbacks(&all);
                for (seed, rules) in [&all, &no_rollbacks].into_iter().enumerate() {
                    compare(rules, &plan, 32, 7 + seed as u64, &mut seen);
                }
            }
        }
        let Seen(rollbacks, completions, gate_failures, gate_rollbacks, parted, holds) = seen;
        assert!(rollbacks > 10, "{rollbacks} rollbacks");
        assert!(completions > 10, "{completions} completions or held");
        assert!(gate_failures > 10, "{gate_failures} gate failures");
        assert!(
            gate_rollbacks > 3,
            "{gate_rollbacks} rollbacks at the longest hold"
        );
        assert!(parted > 10, "{parted} lanes parted");
        assert!(holds > 10, "{holds} holds ended");
    }
}
