//! Runs the plan's lowered alerting rules over time, exactly as Prometheus would, and
//! walks the release through its phases: the part of a simulation that does not care where
//! the metric values come from (a recorded trace or a synthetic trial).
//!
//! Phase changes swap the rules file (each phase's file carries its own `phase` label), and
//! Prometheus keeps alert state across a reload only for rules of the same file, group,
//! name and labels; so at every phase boundary every pending or firing alert starts over.
//! A release that reaches its last phase (100%) is promoted.
//!
//! The release's logic (what ends a phase, what a firing rule does, how the release ends)
//! is in one place, `phase_ended`, `phase_began` and `rule_firing` with `decide`: the first
//! verdict stands. The evaluator keeps evaluating every rule after it, phases following the
//! schedule, so a replay shows what would have happened had the release gone on.
//!
//! Monte Carlo trials, which only need the outcome, run [`crate::sim::outcomes`] instead:
//! the same rules for a whole batch, skipping what cannot change the outcome (its unit
//! test checks it against this evaluator).

use crate::check::CheckedPlan;
use crate::limits::MAX_REPLAY_TRANSITIONS_PER_RULE;
use crate::lower::{AlertRule, RuleKind};
use crate::prom::{self, AlertState, Status};

/// The metric values of one evaluation, per metric index: (canary, stable).
pub(crate) type Values = [(Option<f64>, Option<f64>)];

/// The metric values of one evaluation of a batch of trials, column by column: the
/// canary's values of metric `m` in row `2m`, the stable track's in row `2m + 1`, each row
/// `width` lanes long.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Columns<'v> {
    pub(crate) data: &'v [Option<f64>],
    pub(crate) width: usize,
}

impl<'v> Columns<'v> {
    /// Metric `metric`'s values on the canary (`stable` false) or the stable track, for
    /// lanes `..n`.
    #[inline]
    pub(crate) fn of(&self, metric: usize, stable: bool, n: usize) -> &'v [Option<f64>] {
        let row = (2 * metric + usize::from(stable)) * self.width;
        &self.data[row..row + n]
    }
}

/// When each phase starts, in milliseconds from the start of the release.
#[derive(Debug, Clone)]
pub(crate) struct Schedule {
    /// Start of each phase; the last phase (100%) has no end.
    pub(crate) starts: Vec<i64>,
}

impl Schedule {
    pub(crate) fn new(plan: &CheckedPlan) -> Schedule {
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
    pub(crate) fn promotion_at(&self) -> i64 {
        *self.starts.last().unwrap_or(&0)
    }

    /// The phase running at `ts`.
    pub(crate) fn phase_at(&self, ts: i64) -> usize {
        self.starts.partition_point(|&s| s <= ts).saturating_sub(1)
    }
}

/// Something that happened to a rule or the release, for the replay timeline.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Event {
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

impl Event {
    /// When it happened.
    pub(crate) fn ts(&self) -> i64 {
        match *self {
            Event::PhaseStarted { ts, .. }
            | Event::Pending { ts, .. }
            | Event::Firing { ts, .. }
            | Event::Cleared { ts, .. }
            | Event::Resolved { ts, .. }
            | Event::GateFailed { ts, .. } => ts,
        }
    }
}

/// How a release ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// A rollback rule fired at `ts`, in `phase`.
    RolledBack { ts: i64, phase: usize, rule: usize },
    /// The release reached its last phase at `ts`.
    Promoted { ts: i64 },
}

impl Verdict {
    /// When the release was rolled back, whatever the cause; None when it was not. What a
    /// faulty trial's healthy twin is compared by (`sim::montecarlo`).
    pub(crate) fn rolled_back_at(&self) -> Option<i64> {
        match *self {
            Verdict::RolledBack { ts, .. } => Some(ts),
            Verdict::Promoted { .. } => None,
        }
    }
}

/// One rule's transitions in a replay: how many times it started firing, and those not
/// recorded past [`MAX_REPLAY_TRANSITIONS_PER_RULE`] (how many, and the last one's time).
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct RuleLog {
    pub(crate) fired: usize,
    pub(crate) recorded: usize,
    pub(crate) omitted: u64,
    pub(crate) last_omitted_ts: Option<i64>,
}

pub(crate) struct Evaluator<'a> {
    rules: &'a [AlertRule],
    schedule: &'a Schedule,
    states: Vec<AlertState>,
    phase: usize,
    /// Recorded only when asked for (the replay), never in Monte Carlo trials.
    events: Option<Vec<Event>>,
    /// Per rule, when recording.
    logs: Vec<RuleLog>,
    verdict: Option<Verdict>,
    /// (phase, rule) of every gate that was firing when its phase ended.
    gate_failures: Vec<(usize, usize)>,
}

/// A fresh, inactive Prometheus alert for a lowered rule (no `keep_firing_for`: the rules
/// `plan render` emits do not set it).
pub(crate) fn alert_state(rule: &AlertRule) -> AlertState {
    AlertState::new(prom::AlertTiming {
        for_ms: rule.for_ms as i64,
        keep_firing_for_ms: 0,
    })
}

impl<'a> Evaluator<'a> {
    pub(crate) fn new(rules: &'a [AlertRule], schedule: &'a Schedule, record_events: bool) -> Self {
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
            logs: if record_events {
                vec![RuleLog::default(); rules.len()]
            } else {
                Vec::new()
            },
            verdict: None,
            gate_failures: Vec::new(),
        }
    }

    pub(crate) fn phase(&self) -> usize {
        self.phase
    }

    pub(crate) fn verdict(&self) -> Option<Verdict> {
        self.verdict
    }

    #[cfg(test)]
    pub(crate) fn gate_failures(&self) -> &[(usize, usize)] {
        &self.gate_failures
    }

    pub(crate) fn events(&self) -> &[Event] {
        self.events.as_deref().unwrap_or(&[])
    }

    /// Rule `rule`'s log (default when events are not recorded).
    pub(crate) fn rule_log(&self, rule: usize) -> RuleLog {
        self.logs.get(rule).cloned().unwrap_or_default()
    }

    /// Moves to the phase running at `ts`, if it changed: every pending or firing alert
    /// starts over (a new rules file), and the release's logic hears of each phase that
    /// ended and began ([`Self::phase_ended`], [`Self::phase_began`]). Phases keep following
    /// the schedule after the verdict, so a replay can show what would have happened had
    /// the release gone on. Returns the verdict, once there is one.
    pub(crate) fn enter(&mut self, ts: i64) -> Option<Verdict> {
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
        if phase == self.phase {
            return self.verdict;
        }
        self.phase_ended(self.phase);
        for i in 0..self.rules.len() {
            self.states[i] = AlertState::new(self.states[i].rule());
        }
        self.phase = phase;
        self.push(Event::PhaseStarted {
            ts: self.schedule.starts[phase],
            phase,
        });
        self.phase_began(phase);
        self.verdict
    }

    /// One rule evaluation at `ts` (call [`enter`](Self::enter) first). Every rule is
    /// evaluated, after the verdict too; returns the verdict, once there is one.
    #[inline]
    pub(crate) fn evaluate(&mut self, ts: i64, values: &Values) -> Option<Verdict> {
        for i in 0..self.rules.len() {
            let r = &self.rules[i];
            let (canary, stable) = values[r.metric];
            let before = self.states[i].status();
            let holds = r.runs_in(self.phase) && r.condition.holds(canary, stable);
            let after = self.states[i].step(ts, holds);
            if before != after {
                self.transition(ts, i, before, after);
            }
            if after.is_firing() {
                self.rule_firing(ts, i);
            }
        }
        self.verdict
    }

    // The release's logic: how it moves through its phases and how it ends. The one place
    // that decides the verdict (the first decision stands; later ones are what would have
    // happened had the release gone on). A gate policy (hold, roll back) or a watched last
    // phase changes these three methods only.

    /// Phase `ended` is over: gates firing now could not let it advance. Recorded; today
    /// the release advances anyway.
    fn phase_ended(&mut self, ended: usize) {
        let end = self.schedule.starts[ended + 1];
        for (i, r) in self.rules.iter().enumerate() {
            if r.kind == RuleKind::Gate && self.states[i].status().is_firing() {
                if self.verdict.is_none() {
                    self.gate_failures.push((ended, i));
                }
                self.push(Event::GateFailed {
                    ts: end,
                    rule: i,
                    phase: ended,
                });
            }
        }
    }

    /// Phase `phase` began: reaching the last one (100%) promotes the release.
    fn phase_began(&mut self, phase: usize) {
        if phase + 1 == self.schedule.starts.len() {
            self.decide(Verdict::Promoted {
                ts: self.schedule.starts[phase],
            });
        }
    }

    /// Rule `rule` is firing at `ts`: a rollback rule rolls the release back.
    fn rule_firing(&mut self, ts: i64, rule: usize) {
        if self.rules[rule].kind == RuleKind::Rollback {
            self.decide(Verdict::RolledBack {
                ts,
                phase: self.phase,
                rule,
            });
        }
    }

    /// The first verdict stands.
    fn decide(&mut self, v: Verdict) {
        if self.verdict.is_none() {
            self.verdict = Some(v);
        }
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
            self.push_transition(rule, Event::Pending { ts, rule, phase });
        }
        if let Event::Firing { .. } = ev {
            self.logs[rule].fired += 1;
        }
        self.push_transition(rule, ev);
    }

    /// Records a transition of `rule`, or counts it past the limit.
    fn push_transition(&mut self, rule: usize, e: Event) {
        let log = &mut self.logs[rule];
        if log.recorded < MAX_REPLAY_TRANSITIONS_PER_RULE {
            log.recorded += 1;
            self.push(e);
        } else {
            log.omitted += 1;
            log.last_omitted_ts = Some(e.ts());
        }
    }

    fn push(&mut self, e: Event) {
        if let Some(ev) = self.events.as_mut() {
            ev.push(e);
        }
    }
}
