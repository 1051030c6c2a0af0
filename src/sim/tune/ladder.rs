//! Many settings of one alert rule watched at once over one trial: every threshold of a
//! ladder, at every `for` duration, in a few operations per evaluation rather than one
//! alert state per setting.
//!
//! The thresholds of a ladder are ordered easiest first: whenever a value satisfies the
//! rule's comparison at one threshold, it satisfies it at every easier one (`> 5%` holds
//! wherever `> 10%` does). So one evaluation is summed up by *how many* thresholds hold,
//! `k`, found by bisection with the rule's own comparison ([`Condition::holds`]), and
//! threshold `j` holds exactly when `k > j`. An alert with `for: F` fires at the first
//! evaluation that ends a run of `ceil(F / interval) + 1` evaluations at which its
//! condition held, counted from the phase's start (a new phase starts every alert over).
//! [`Watches`] keeps, per threshold, when its current run began.
//!
//! A rule's `min_requests` guards add a dimension: at an evaluation the guard levels the
//! request count passes are a prefix of them ([`super::guards::passing`]), and below a
//! guard the rule does not hold at all, so each guard level has its own [`Watches`], fed
//! the same `k` where it passes and 0 where it does not ([`push_guarded`]).
//!
//! The unit tests check this against the alert states the simulator steps
//! ([`crate::prom::AlertState`]), which are themselves checked against Prometheus.

use crate::lower::{Condition, Rhs};
use crate::model::Op;

/// A tuned rule's comparison at each threshold of its ladder, easiest first.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Ladder {
    /// The rule's conditions, one per threshold, easiest first.
    pub(crate) conditions: Vec<Condition>,
}

impl Ladder {
    /// The ladder of `op` against the values `levels` (in any order): absolute thresholds
    /// (`rhs` a value) or factors of the stable track (`rhs` relative, its floor kept).
    pub(crate) fn new(op: Op, rhs: Rhs, mut levels: Vec<f64>) -> Ladder {
        // Easiest first: the lowest threshold of a `>` rule, the highest of a `<` rule.
        levels.sort_by(|a, b| a.total_cmp(b));
        if matches!(op, Op::Lt | Op::Le) {
            levels.reverse();
        }
        levels.dedup();
        let conditions = levels
            .into_iter()
            .map(|level| Condition::Compare {
                op,
                rhs: match rhs {
                    Rhs::Value(_) => Rhs::Value(level),
                    Rhs::StableTimes { also, .. } => Rhs::StableTimes {
                        factor: level,
                        also,
                    },
                },
            })
            .collect();
        Ladder { conditions }
    }

    pub(crate) fn len(&self) -> usize {
        self.conditions.len()
    }

    /// How many thresholds hold for these values: the thresholds `..k` do, the others do
    /// not. None when the order does not hold for them (a factor of a negative stable
    /// value makes the highest factor the easiest): the ladder cannot sum them up.
    #[inline]
    pub(crate) fn holding(&self, canary: Option<f64>, stable: Option<f64>) -> Option<u16> {
        let c = &self.conditions;
        let holds = |j: usize| c[j].holds(canary, stable);
        let (mut lo, mut hi) = (0, c.len());
        while lo < hi {
            let mid = (lo + hi) / 2;
            if holds(mid) { lo = mid + 1 } else { hi = mid }
        }
        let relative = matches!(
            c.first(),
            Some(Condition::Compare {
                rhs: Rhs::StableTimes { .. },
                ..
            })
        );
        if relative && stable.is_some_and(|s| s < 0.0) {
            return None;
        }
        Some(lo as u16)
    }
}

/// Evaluations an alert's condition must hold in a row for it to fire with `for_ms`, at
/// one evaluation every `eval_ms`: the first, and then until `for` has passed.
pub(crate) fn run_needed(for_ms: u64, eval_ms: i64) -> u32 {
    (for_ms.div_ceil(eval_ms.max(1) as u64) + 1) as u32
}

/// One knob's alerts in every trial of a batch, at every threshold and `for`: per trial,
/// how many thresholds hold now (`k`) and since which evaluation each of them has held.
/// An easier threshold has held at least as long as a harder one, so the thresholds whose
/// alert fires with some `for` are the first few, and each `for` keeps how many of them
/// have fired so far.
#[derive(Debug, Clone)]
pub(crate) struct Watches {
    levels: usize,
    /// Per `for`: evaluations in a row that fire it ([`run_needed`]).
    needs: Vec<u32>,
    /// Per trial: thresholds holding at its latest evaluation.
    k: Vec<u16>,
    /// Per trial: its latest evaluation.
    last: Vec<u32>,
    /// Per trial and threshold (below `k`): the evaluation its run began.
    starts: Vec<u32>,
    /// Per trial and `for`: thresholds whose alert has fired.
    fired: Vec<u16>,
}

impl Watches {
    /// `trials` trials of a knob of `levels` thresholds, at `needs` runs.
    pub(crate) fn new(trials: usize, levels: usize, needs: Vec<u32>) -> Watches {
        Watches {
            levels,
            k: vec![0; trials],
            last: vec![0; trials],
            starts: vec![0; trials * levels],
            fired: vec![0; trials * needs.len()],
            needs,
        }
    }

    /// A new phase for trial `t`: every alert starts over.
    #[inline]
    pub(crate) fn reset(&mut self, t: usize) {
        self.k[t] = 0;
    }

    /// Trial `t`'s evaluation number `at` (one more than its previous), at which `k`
    /// thresholds hold; `fire(for, threshold)` hears of each alert that fires for the
    /// first time.
    #[inline]
    pub(crate) fn push(&mut self, t: usize, at: u32, k: u16, mut fire: impl FnMut(usize, u16)) {
        let old = self.k[t];
        let starts = &mut self.starts[t * self.levels..(t + 1) * self.levels];
        for s in &mut starts[usize::from(old)..usize::from(k.max(old))] {
            *s = at;
        }
        self.k[t] = k;
        self.last[t] = at;
        if k == 0 {
            return;
        }
        let fors = self.needs.len();
        for (f, (fired, &need)) in self.fired[t * fors..(t + 1) * fors]
            .iter_mut()
            .zip(&self.needs)
            .enumerate()
        {
            while *fired < k && at + 1 - starts[usize::from(*fired)] >= need {
                fire(f, *fired);
                *fired += 1;
            }
        }
    }

    /// How many thresholds' alerts with the `for` numbered `f` are firing after trial
    /// `t`'s latest evaluation.
    pub(crate) fn firing(&self, t: usize, f: usize) -> u16 {
        let starts = &self.starts[t * self.levels..][..usize::from(self.k[t])];
        let need = self.needs[f];
        starts.partition_point(|&s| self.last[t] + 1 - s >= need) as u16
    }
}

/// One evaluation of a guarded knob's watches (one [`Watches`] per guard level): trial
/// `t`'s evaluation `at`, at which `k` thresholds hold and the first `passing` guard levels
/// pass; `fire(guard, for, threshold)` hears of each alert that fires for the first time.
#[inline]
pub(crate) fn push_guarded(
    watches: &mut [Watches],
    (t, at, k, passing): (usize, u32, u16, usize),
    mut fire: impl FnMut(usize, usize, u16),
) {
    for (g, w) in watches.iter_mut().enumerate() {
        let k = if g < passing { k } else { 0 };
        w.push(t, at, k, |f, level| fire(g, f, level));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::prom::{AlertState, AlertTiming};
    use proptest::prelude::*;

    fn alert(for_ms: u64) -> AlertState {
        AlertState::new(AlertTiming {
            for_ms: for_ms as i64,
            keep_firing_for_ms: 0,
        })
    }

    proptest! {
        /// Over random runs of values, with phase starts between them, a window says
        /// exactly which thresholds' alerts are firing, at every `for`, as an alert state
        /// per threshold does.
        #[test]
        fn a_window_agrees_with_an_alert_state_per_threshold(
            values in proptest::collection::vec(
                prop_oneof![Just(None), (0u8..12).prop_map(|v| Some(f64::from(v)))], 1..120),
            resets in proptest::collection::vec(0usize..120, 0..4),
            for_steps in 0u64..6,
            eval_ms in prop_oneof![Just(15_000i64), Just(60_000)],
            odd in any::<bool>(),
            op in prop_oneof![Just(Op::Gt), Just(Op::Ge), Just(Op::Lt), Just(Op::Le)],
        ) {
            // A `for` on the grid, or a little past it.
            let for_ms = for_steps * eval_ms as u64 + if odd && for_steps > 0 { 1_000 } else { 0 };
            let ladder = Ladder::new(op, Rhs::Value(0.0), (0..12).map(f64::from).collect());
            let mut watches = Watches::new(1, ladder.len(), vec![run_needed(for_ms, eval_ms)]);
            let mut fired = 0u16;
            let mut states: Vec<AlertState> = (0..ladder.len()).map(|_| alert(for_ms)).collect();
            for (i, v) in values.iter().enumerate() {
                let ts = i as i64 * eval_ms;
                if resets.contains(&i) {
                    watches.reset(0);
                    states.iter_mut().for_each(|s| *s = alert(for_ms));
                }
                let k = ladder.holding(*v, None).expect("absolute");
                watches.push(0, i as u32, k, |f, level| {
                    assert_eq!((f, level), (0, fired));
                    fired += 1;
                });
                for (j, s) in states.iter_mut().enumerate() {
                    let holds = ladder.conditions[j].holds(*v, None);
                    prop_assert_eq!(holds, j < usize::from(k));
                    s.step(ts, holds);
                    prop_assert_eq!(
                        s.status().is_firing(),
                        j < usize::from(watches.firing(0, 0)),
                        "threshold {} at {}", j, ts
                    );
                    // Every alert that has fired so far was heard of.
                    if s.status().is_firing() {
                        prop_assert!(j < usize::from(fired));
                    }
                }
            }
        }
    }

    proptest! {
        /// With guards: per guard level its own watches, fed the thresholds holding where
        /// the request count passes the guard and none where it does not, say exactly which
        /// alerts fire, as an alert state per guard and threshold does whose condition is
        /// the threshold's and the guard's (`MinRequests::passes`; no guard always passes).
        #[test]
        fn guarded_watches_agree_with_an_alert_state_per_guard_and_threshold(
            steps in proptest::collection::vec(
                (
                    prop_oneof![Just(None), (0u8..8).prop_map(|v| Some(f64::from(v)))],
                    prop_oneof![Just(None), Just(Some(f64::NAN)), (0u16..60).prop_map(|c| Some(f64::from(c)))],
                ),
                1..100,
            ),
            mins in proptest::collection::btree_set(1u64..60, 0..4),
            unguarded in any::<bool>(),
            resets in proptest::collection::vec(0usize..100, 0..3),
            for_steps in 0u64..4,
        ) {
            let eval_ms = 60_000i64;
            let for_ms = for_steps * eval_ms as u64;
            let levels: Vec<Option<u64>> = unguarded
                .then_some(None)
                .into_iter()
                .chain(mins.iter().map(|&m| Some(m)))
                .collect();
            prop_assume!(!levels.is_empty());
            let ladder = Ladder::new(Op::Gt, Rhs::Value(0.0), (0..8).map(f64::from).collect());
            let need = vec![run_needed(for_ms, eval_ms)];
            let mut watches: Vec<Watches> = levels
                .iter()
                .map(|_| Watches::new(1, ladder.len(), need.clone()))
                .collect();
            let fresh = || -> Vec<Vec<AlertState>> {
                levels
                    .iter()
                    .map(|_| (0..ladder.len()).map(|_| alert(for_ms)).collect())
                    .collect()
            };
            let mut states = fresh();
            let mut heard = vec![0u16; levels.len()];
            for (i, &(v, count)) in steps.iter().enumerate() {
                if resets.contains(&i) {
                    watches.iter_mut().for_each(|w| w.reset(0));
                    states = fresh();
                }
                let passing = super::super::guards::passing(&levels, count);
                let k = ladder.holding(v, None).expect("absolute");
                push_guarded(&mut watches, (0, i as u32, k, passing), |g, f, level| {
                    assert_eq!((f, level), (0, heard[g]));
                    heard[g] += 1;
                });
                for (g, level_states) in states.iter_mut().enumerate() {
                    let passes = levels[g].is_none_or(|min| {
                        crate::check::MinRequests { count: 0, min }.passes(count)
                    });
                    for (j, s) in level_states.iter_mut().enumerate() {
                        let holds = ladder.conditions[j].holds(v, None) && passes;
                        s.step(i as i64 * eval_ms, holds);
                        prop_assert_eq!(
                            s.status().is_firing(),
                            j < usize::from(watches[g].firing(0, 0)),
                            "guard {:?}, threshold {} at step {}", levels[g], j, i
                        );
                        if s.status().is_firing() {
                            prop_assert!(j < usize::from(heard[g]));
                        }
                    }
                }
            }
        }
    }

    /// A factor of the stable track orders its thresholds as long as the stable value is
    /// not negative; below zero the ladder says it cannot.
    #[test]
    fn relative_thresholds_need_a_stable_value_of_at_least_zero() {
        let rhs = Rhs::StableTimes {
            factor: 2.0,
            also: Some((Op::Gt, 0.01)),
        };
        let ladder = Ladder::new(Op::Gt, rhs, vec![3.0, 1.5, 2.0]);
        assert_eq!(ladder.holding(Some(0.05), Some(0.02)), Some(2));
        assert_eq!(ladder.holding(Some(0.005), Some(0.001)), Some(0));
        assert_eq!(ladder.holding(None, Some(0.02)), Some(0));
        assert_eq!(ladder.holding(Some(0.05), Some(-0.02)), None);
    }
}
