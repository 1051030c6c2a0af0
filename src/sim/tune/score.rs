//! A setting's figures, read off the sweep: each trial ends at the first moment one of the
//! setting's rules fires or one of its gates fails a phase (the rule first in plan order
//! when several do at once, a phase's gates before the evaluation that follows), else as
//! the pass ended it. The tallies are those `plan simulate` counts for the plan with that
//! setting (a test runs both), so caught and rolled back anyway mean the same here.

use super::space::Variant;
use super::sweep::{NEVER, Run, Sweep, Trial, full_by};
#[cfg(test)]
use crate::lower::AlertRule;
use crate::lower::RuleKind;
use crate::sim::evaluator::Verdict;
#[cfg(test)]
use crate::sim::montecarlo::Tally;

/// The first firing of a trial: (evaluation, by a rule rather than a gate, rule index,
/// column); the least is the first, as `plan simulate` decides.
pub(crate) type Key = (u32, bool, usize, usize);

/// How a trial ended under a setting.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct End {
    /// When: the evaluation time of a rollback or of the pass's end.
    pub(crate) ts: i64,
    /// When the fault began, as known by then (a `load` fault that had not shown yet:
    /// `i64::MAX`); None without a fault.
    pub(crate) onset: Option<i64>,
    /// The rule that rolled it back, if one did.
    pub(crate) rule: Option<usize>,
    /// Whether it reached 100% by then.
    pub(crate) full: bool,
    /// Requests served since the fault's onset by then.
    pub(crate) exposed: u64,
    /// Whether it completed (rather than rolled back or stayed held).
    pub(crate) completed: bool,
}

impl End {
    /// When it rolled back, `i64::MAX` if it did not: a twin's time, for the faulty
    /// trials that compare with it.
    pub(crate) fn rollback_ts(&self) -> i64 {
        if self.rule.is_some() {
            self.ts
        } else {
            i64::MAX
        }
    }

    /// Whether it rolled back before the fault began (or without a fault).
    pub(crate) fn is_false(&self) -> bool {
        self.rule.is_some() && self.onset.is_none_or(|o| self.ts < o)
    }

    /// When a faulty trial's rollback is a catch (see [`crate::sim::montecarlo`]): after
    /// the onset, its twin (which rolled back at `twin`) not yet rolled back, by a rule
    /// whose metric the fault moves (`moves`, per rule). Some(time from onset to
    /// rollback) if caught.
    pub(crate) fn caught(&self, twin: i64, moves: &[bool]) -> Option<i64> {
        let (rule, onset) = (self.rule?, self.onset?);
        (self.ts >= onset && twin > self.ts && moves[rule]).then_some(self.ts - onset)
    }

    /// Whether the faulty version served everyone while its fault showed.
    pub(crate) fn escaped(&self) -> bool {
        self.full && self.onset.is_some_and(|o| o < self.ts)
    }
}

impl Sweep {
    /// Per knob, the place of its variant under `setting` in a trial's row.
    pub(crate) fn columns(&self, setting: &[Variant]) -> Vec<usize> {
        self.knobs
            .iter()
            .zip(&self.offsets)
            .zip(setting)
            .map(|((k, o), &v)| o + k.index(v))
            .collect()
    }

    /// The first firing in trial `t` of run `r` among the knobs at `columns`, but `skip`.
    pub(crate) fn first_among(
        &self,
        r: usize,
        t: usize,
        columns: &[usize],
        skip: Option<usize>,
    ) -> Option<Key> {
        let row = &self.runs[r].fires[t * self.width..(t + 1) * self.width];
        let mut first: Option<Key> = None;
        for (ki, &c) in columns.iter().enumerate() {
            if Some(ki) == skip || row[c] == NEVER {
                continue;
            }
            let knob = &self.knobs[ki];
            let key = (row[c], knob.kind != RuleKind::Gate, knob.rule, c);
            if first.is_none_or(|f| key < f) {
                first = Some(key);
            }
        }
        first
    }

    /// How trial `t` of run `r` ended with the variants at `columns`.
    #[cfg(test)]
    pub(crate) fn end(&self, r: usize, t: usize, columns: &[usize]) -> End {
        self.end_from(&self.runs[r], t, self.first_among(r, t, columns, None))
    }

    /// How trial `t` of `run` ended, its first firing being `first`.
    pub(crate) fn end_from(&self, run: &Run, t: usize, first: Option<Key>) -> End {
        let trial: &Trial = &run.trials[t];
        if let Some((at, by_rule, rule, c)) = first {
            let ts = i64::from(at) * self.eval_ms;
            // A rule reads the draws up to its evaluation; a gate judges its phase before.
            let seen = if by_rule {
                trial.onset_seen <= at
            } else {
                trial.onset_seen < at
            };
            return End {
                ts,
                onset: trial.onset.map(|o| if seen { o } else { i64::MAX }),
                rule: Some(rule),
                // A gate fails the phase before 100%, never the last one.
                full: by_rule && full_by(trial, ts),
                exposed: run
                    .exposed
                    .get(t * self.width + c)
                    .map_or(0, |&e| u64::from(e)),
                completed: false,
            };
        }
        // A trial cut short had every setting of some knob fire before.
        debug_assert!(!trial.cut, "a cut trial without a firing");
        let (rule, full, completed) = match trial.end {
            Verdict::RolledBack { rule, phase, .. } => {
                (Some(rule), phase + 1 == self.phases, false)
            }
            Verdict::Held { phase, .. } => (None, phase + 1 == self.phases, false),
            Verdict::Completed { .. } => (None, true, true),
        };
        End {
            ts: trial.end.ts(),
            onset: trial.onset,
            rule,
            full,
            exposed: trial.exposed,
            completed,
        }
    }

    /// Per trial of the twins' run, when it rolled back under `columns` (`i64::MAX`:
    /// never).
    #[cfg(test)]
    pub(crate) fn twin_rollbacks(&self, columns: &[usize]) -> Vec<i64> {
        self.twins_by(|r, t| self.first_among(r, t, columns, None))
    }

    /// Per trial of the twins' run, when it rolled back, given each trial's first firing.
    pub(crate) fn twins_by(&self, first: impl Fn(usize, usize) -> Option<Key>) -> Vec<i64> {
        let Some(twin) = self.twin else {
            return Vec::new();
        };
        (0..self.runs[twin].trials.len())
            .map(|t| {
                self.end_from(&self.runs[twin], t, first(twin, t))
                    .rollback_ts()
            })
            .collect()
    }

    /// Run `si`'s tally under `columns`, as `plan simulate` counts it: the counts of
    /// outcomes, the rollbacks' first rules, the times to catch and the requests exposed
    /// (the rest of a [`Tally`] is left empty). The reference for [`Sweep::figures`]'s
    /// counts, which decide with the same [`End`] methods.
    #[cfg(test)]
    pub(crate) fn tally(
        &self,
        si: usize,
        columns: &[usize],
        twins: &[i64],
        rules: &[AlertRule],
    ) -> Tally {
        let run = &self.runs[si];
        let mut tally = Tally::new(self.phases, rules.len());
        for t in 0..run.trials.len() {
            let e = self.end(si, t, columns);
            tally.trials += 1;
            tally.exposed_requests += e.exposed;
            let onset = e.onset;
            if let Some(rule) = e.rule {
                tally.rollbacks += 1;
                tally.gate_rollbacks += u64::from(rules[rule].kind == RuleKind::Gate);
                tally.first_rule[rule] += 1;
                if e.is_false() {
                    tally.false_rollbacks += 1;
                } else {
                    tally.detected += 1;
                }
                if let (Some(o), Some(&twin)) = (onset, twins.get(t)) {
                    tally.twin_not_yet += u64::from(e.ts >= o && twin > e.ts);
                    if let Some(ms) = e.caught(twin, &run.moves) {
                        tally.caught += 1;
                        tally.caught_by_rule[rule] += 1;
                        tally.detect_steps.add((ms / run.detect_unit_ms) as usize);
                    } else {
                        tally.rolled_back_anyway += 1;
                        tally.anyway_by_rule[rule] += 1;
                    }
                }
            } else if e.completed {
                tally.completed += 1;
                match onset {
                    Some(o) if o < e.ts => tally.missed += 1,
                    Some(_) => tally.fault_after_release += 1,
                    None => {}
                }
            } else {
                tally.held += 1;
            }
            tally.escaped += u64::from(e.escaped());
        }
        tally
    }
}
