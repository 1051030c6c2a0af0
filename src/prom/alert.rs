//! The state machine of one alert (one label set of an alerting rule), as
//! `AlertingRule.Eval` in rules/alerting.go drives it.
//!
//! At each evaluation `ts` the rule's expression either returns the label set
//! (condition true) or not:
//! - true, no active alert: a new *pending* alert with `active_at = ts`; an active
//!   (pending or firing) alert keeps its `active_at`;
//! - a pending alert fires at the first evaluation where `ts - active_at >= for`
//!   (so `for: 0` fires in the evaluation that created it);
//! - false: a pending alert is deleted at once (the `for` clock restarts at the next
//!   true evaluation); a firing alert is resolved, unless `keep_firing_for > 0`: then
//!   the first false evaluation stamps `keep_firing_since = ts` and the alert stays
//!   firing while `ts - keep_firing_since < keep_firing_for`; a true evaluation clears
//!   the stamp. (The clock starts at the first evaluation that misses, not at the last
//!   one that matched.)
//! - a resolved alert that matches again starts over as a new pending alert.
//!
//! 2.42 and 3.x behave the same here (`keep_firing_for` arrived in 2.42). Not
//! modelled: restoring `for` state after a restart, and 3.x's demotion of a firing
//! alert to pending when a reload raises `for`.

/// The timing parameters of an alerting rule, in milliseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct AlertTiming {
    /// The rule's `for`: how long an alert stays pending before it fires.
    pub(crate) for_ms: i64,
    /// The rule's `keep_firing_for`: how long a firing alert outlives its condition.
    pub(crate) keep_firing_for_ms: i64,
}

/// Where one alert stands after an evaluation.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) enum Status {
    /// No active alert (never active, pending dropped, or resolved).
    #[default]
    Inactive,
    /// Condition true since `active_at`, `for` not yet elapsed.
    Pending {
        /// Evaluation time that created the alert.
        active_at: i64,
    },
    /// Firing since `fired_at`.
    Firing {
        /// Evaluation time that created the alert.
        active_at: i64,
        /// Evaluation time at which it started firing.
        fired_at: i64,
    },
}

impl Status {
    /// Whether the alert is firing.
    #[inline]
    pub(crate) const fn is_firing(&self) -> bool {
        matches!(self, Status::Firing { .. })
    }

    /// Whether the alert is pending.
    #[cfg(test)]
    pub(crate) const fn is_pending(&self) -> bool {
        matches!(self, Status::Pending { .. })
    }
}

/// The evolving state of one alert of a rule.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct AlertState {
    rule: AlertTiming,
    status: Status,
    keep_firing_since: Option<i64>,
    resolved_at: Option<i64>,
}

impl AlertState {
    /// An inactive alert of `rule`.
    #[inline]
    pub(crate) const fn new(rule: AlertTiming) -> Self {
        Self {
            rule,
            status: Status::Inactive,
            keep_firing_since: None,
            resolved_at: None,
        }
    }

    /// The rule this alert follows.
    #[inline]
    pub(crate) const fn rule(&self) -> AlertTiming {
        self.rule
    }

    /// The status after the latest evaluation.
    #[inline]
    pub(crate) const fn status(&self) -> Status {
        self.status
    }

    /// When the alert last went from firing to resolved, if it did since it last
    /// became active.
    #[cfg(test)]
    pub(crate) const fn resolved_at(&self) -> Option<i64> {
        self.resolved_at
    }

    /// While firing only through `keep_firing_for`: the first evaluation that
    /// missed the condition.
    #[cfg(test)]
    pub(crate) const fn keep_firing_since(&self) -> Option<i64> {
        self.keep_firing_since
    }

    /// Applies one evaluation at `ts` (non-decreasing across calls) whose
    /// expression did (`condition_true`) or did not return this label set, and
    /// returns the new status.
    #[inline]
    pub(crate) fn step(&mut self, ts: i64, condition_true: bool) -> Status {
        if condition_true {
            if self.status == Status::Inactive {
                self.status = Status::Pending { active_at: ts };
                self.resolved_at = None;
            }
            self.keep_firing_since = None;
        } else {
            match self.status {
                Status::Inactive => return self.status,
                Status::Pending { .. } => {
                    // Deleted without ever firing: nothing is resolved.
                    self.status = Status::Inactive;
                    return self.status;
                }
                Status::Firing { .. } => {
                    let keep_firing = self.rule.keep_firing_for_ms > 0 && {
                        let since = *self.keep_firing_since.get_or_insert(ts);
                        ts - since < self.rule.keep_firing_for_ms
                    };
                    if !keep_firing {
                        self.status = Status::Inactive;
                        self.resolved_at = Some(ts);
                        self.keep_firing_since = None;
                        return self.status;
                    }
                }
            }
        }
        if let Status::Pending { active_at } = self.status
            && ts - active_at >= self.rule.for_ms
        {
            self.status = Status::Firing {
                active_at,
                fired_at: ts,
            };
        }
        self.status
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::prom::Semantics;
    use crate::prom::compare::{CmpOp, condition};
    use crate::prom::sample::Sample;
    use crate::prom::select::select_instant;

    const MIN: i64 = 60_000;

    fn rule(for_min: i64, keep_min: i64) -> AlertTiming {
        AlertTiming {
            for_ms: for_min * MIN,
            keep_firing_for_ms: keep_min * MIN,
        }
    }

    /// Runs `cond` (one bool per evaluation, `ei` apart from t=0) and returns the
    /// statuses.
    fn run(r: AlertTiming, ei: i64, cond: &[bool]) -> Vec<Status> {
        let mut a = AlertState::new(r);
        cond.iter()
            .enumerate()
            .map(|(i, &c)| a.step(i as i64 * ei, c))
            .collect()
    }

    #[test]
    fn reference_example_pending_at_5m_firing_at_10m() {
        // x = 0x4 1x10 at 1m, rule x > 0.5, for: 5m, evaluation every 1m.
        let x: Vec<Sample> = (0..15)
            .map(|i| Sample::new(i * MIN, if i < 5 { 0.0 } else { 1.0 }))
            .collect();
        for sem in [Semantics::Prometheus2, Semantics::Prometheus3] {
            let mut a = AlertState::new(rule(5, 0));
            for i in 0..=14 {
                let ts = i * MIN;
                let v = select_instant(&x, ts, sem).map(|s| s.v);
                let st = a.step(ts, condition(v, CmpOp::Gt, 0.5));
                match i {
                    0..=4 => assert_eq!(st, Status::Inactive),
                    5..=9 => assert_eq!(st, Status::Pending { active_at: 5 * MIN }),
                    _ => assert_eq!(
                        st,
                        Status::Firing {
                            active_at: 5 * MIN,
                            fired_at: 10 * MIN
                        }
                    ),
                }
            }
        }
    }

    #[test]
    fn for_zero_fires_in_the_creating_evaluation() {
        let s = run(rule(0, 0), MIN, &[false, true]);
        assert_eq!(
            s[1],
            Status::Firing {
                active_at: MIN,
                fired_at: MIN
            }
        );
    }

    #[test]
    fn coarse_evaluation_interval_fires_late() {
        // ei 2m, for 5m: true from t=0; 0,2,4 pending, fires at 6m.
        let s = run(rule(5, 0), 2 * MIN, &[true; 5]);
        assert!(s[..3].iter().all(Status::is_pending));
        assert_eq!(
            s[3],
            Status::Firing {
                active_at: 0,
                fired_at: 6 * MIN
            }
        );
    }

    #[test]
    fn one_false_evaluation_resets_pending() {
        let mut c = vec![true; 4];
        c.push(false);
        c.extend([true; 6]);
        let s = run(rule(5, 0), MIN, &c);
        assert_eq!(s[3], Status::Pending { active_at: 0 });
        assert_eq!(s[4], Status::Inactive);
        assert_eq!(s[5], Status::Pending { active_at: 5 * MIN });
        assert!(s[9].is_pending());
        assert_eq!(
            s[10],
            Status::Firing {
                active_at: 5 * MIN,
                fired_at: 10 * MIN
            }
        );
    }

    #[test]
    fn firing_resolves_on_first_false_without_keep_firing_for() {
        let mut a = AlertState::new(rule(1, 0));
        a.step(0, true);
        assert!(a.step(MIN, true).is_firing());
        assert_eq!(a.step(2 * MIN, false), Status::Inactive);
        assert_eq!(a.resolved_at(), Some(2 * MIN));
        // Re-triggering starts a new pending alert.
        assert_eq!(
            a.step(3 * MIN, true),
            Status::Pending { active_at: 3 * MIN }
        );
        assert_eq!(a.resolved_at(), None);
    }

    #[test]
    fn keep_firing_for_counts_from_the_first_missed_evaluation() {
        // for 0, keep_firing_for 3m: true at 0, false from 1m on.
        let mut c = vec![true];
        c.extend([false; 6]);
        let s = run(rule(0, 3), MIN, &c);
        let firing = Status::Firing {
            active_at: 0,
            fired_at: 0,
        };
        // Missed at 1m (since=1m): 1m,2m,3m are < 3m after it; 4m is not.
        assert_eq!(&s[..4], &[firing; 4]);
        assert_eq!(s[4], Status::Inactive);
        assert_eq!(s[6], Status::Inactive);
    }

    #[test]
    fn keep_firing_since_is_cleared_by_a_true_evaluation() {
        let mut a = AlertState::new(rule(0, 2));
        a.step(0, true);
        a.step(MIN, false);
        assert_eq!(a.keep_firing_since(), Some(MIN));
        a.step(2 * MIN, true);
        assert_eq!(a.keep_firing_since(), None);
        // A fresh grace period: missed at 3m, still firing at 4m, resolved at 5m.
        assert!(a.step(3 * MIN, false).is_firing());
        assert!(a.step(4 * MIN, false).is_firing());
        assert_eq!(a.step(5 * MIN, false), Status::Inactive);
        assert_eq!(a.resolved_at(), Some(5 * MIN));
    }

    #[test]
    fn keep_firing_for_does_not_protect_pending() {
        let s = run(rule(5, 10), MIN, &[true, true, false, true]);
        assert_eq!(s[2], Status::Inactive);
        assert_eq!(s[3], Status::Pending { active_at: 3 * MIN });
    }

    #[test]
    fn absent_and_never_active_stays_inactive() {
        let s = run(rule(1, 1), MIN, &[false; 3]);
        assert!(s.iter().all(|s| *s == Status::Inactive));
    }
}
