//! Runs the plan's lowered alerting rules over time, exactly as Prometheus would, and
//! walks the release through its phases: the part of a simulation that does not care where
//! the metric values come from (a recorded trace or a synthetic trial).
//!
//! Phase changes swap the rules file (each phase's file carries its own `phase` label), and
//! Prometheus keeps alert state across a reload only for rules of the same file, group,
//! name and labels; so at every phase boundary every pending or firing alert starts over.
//!
//! The release's course: a phase's gates are checked when its `duration` is up (at the
//! first evaluation at or after it, on their state after the evaluation before); if one
//! fires the gate policy rolls the release back at once, or holds the phase, checking at
//! every evaluation until none fires (the next phase starts then) or the longest hold is
//! up (then rolls back, or stays held). The last phase (100%) is watched for its
//! `duration` (default 24h) with its rollback rules running; then the release is complete.
//!
//! That logic (what ends a phase, what a firing rule does, how the release ends) is in one
//! place, `phase_ended` and `rule_firing` with `decide`: the first verdict stands. The
//! evaluator keeps evaluating every rule after it, phases advancing at their nominal
//! length, so a replay shows what would have happened had the release gone on.
//!
//! Monte Carlo trials, which only need the outcome, run [`crate::sim::outcomes`] instead:
//! the same rules for a whole batch, skipping what cannot change the outcome (its unit
//! test checks it against this evaluator).

use crate::check::{CheckedPlan, GatePolicy};
use crate::limits::MAX_REPLAY_TRANSITIONS_PER_RULE;
use crate::lower::{AlertRule, RuleKind};
use crate::model::AfterMaxHold;
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

/// The release's course as the plan states it, in milliseconds from its start: when each
/// phase starts if none is held, when the watch of the last phase (100%) ends, and what a
/// failed gate does. A running trial keeps its own copy and moves it as its phases are
/// held ([`hold`](Self::hold), [`resume`](Self::resume)).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Schedule {
    /// Start of each phase: as the plan states them, or as a trial's holds moved them
    /// ([`UNKNOWN`] for the phases after a held one).
    pub(crate) starts: Vec<i64>,
    /// The end of the last phase's watch: the release is complete ([`UNKNOWN`] while a
    /// phase is held).
    pub(crate) end: i64,
    pub(crate) gate_policy: GatePolicy,
    /// How long each phase runs before its end is checked (the last phase: its watch).
    lengths: Vec<i64>,
}

/// When a phase after a held one starts: not known until the hold ends.
pub(crate) const UNKNOWN: i64 = i64::MAX;

impl Schedule {
    pub(crate) fn new(plan: &CheckedPlan) -> Schedule {
        let mut lengths: Vec<i64> = plan
            .phases
            .iter()
            .map(|p| p.duration.map_or(0, |d| d.millis() as i64))
            .collect();
        if let Some(last) = lengths.last_mut() {
            *last = plan.watch.millis() as i64;
        }
        let mut schedule = Schedule {
            starts: vec![0; lengths.len()],
            end: 0,
            gate_policy: plan.gate_policy,
            lengths,
        };
        schedule.resume(0, 0);
        schedule
    }

    /// A schedule whose phases start at `starts` (each a day long), for unit tests.
    #[cfg(test)]
    pub(crate) fn for_tests(starts: Vec<i64>) -> Schedule {
        let lengths = vec![86_400_000; starts.len()];
        Schedule {
            end: starts.last().map_or(0, |s| s + 86_400_000),
            starts,
            gate_policy: GatePolicy::Rollback,
            lengths,
        }
    }

    /// Phase `phase` is held past its end: the later phases start when the hold ends.
    pub(crate) fn hold(&mut self, phase: usize) {
        for s in &mut self.starts[phase + 1..] {
            *s = UNKNOWN;
        }
        self.end = UNKNOWN;
    }

    /// Phase `phase` starts at `at`; the later ones follow at their planned lengths.
    pub(crate) fn resume(&mut self, phase: usize, at: i64) {
        let mut t = at;
        for (s, len) in self.starts[phase..].iter_mut().zip(&self.lengths[phase..]) {
            *s = t;
            t += len;
        }
        self.end = t;
    }

    /// The latest a release can end: the end of its watch with every phase but the last
    /// held as long as the gate policy allows.
    pub(crate) fn latest_end(&self) -> i64 {
        let held = match self.gate_policy {
            GatePolicy::Rollback => 0,
            GatePolicy::Hold { max, .. } => max.millis() as i64,
        };
        let phases = self.starts.len().saturating_sub(1) as i64;
        self.end.saturating_add(held.saturating_mul(phases))
    }

    /// When phase `phase` ends if it is not held: its start plus its length (the last
    /// phase: the end of its watch).
    pub(crate) fn end_of(&self, phase: usize) -> i64 {
        self.starts[phase].saturating_add(self.lengths[phase])
    }

    /// How long phase `phase` runs before its end is checked (the last phase: its watch).
    pub(crate) fn length(&self, phase: usize) -> i64 {
        self.lengths[phase]
    }

    /// The phase running at `ts`.
    pub(crate) fn phase_at(&self, ts: i64) -> usize {
        self.starts.partition_point(|&s| s <= ts).saturating_sub(1)
    }

    /// The phase whose instances a scrape at `t` finds running: the phase at `t`, but for
    /// one starting at `t` itself, whose new instances start then and are first scraped
    /// after it.
    pub(crate) fn scraped_phase(&self, t: i64) -> usize {
        self.phase_at(t - 1)
    }

    /// Whether `phase` is the last (100%).
    pub(crate) fn is_last(&self, phase: usize) -> bool {
        phase + 1 == self.starts.len()
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
    /// The phase's gates failed at its end and the gate policy holds it: from now on the
    /// gates are checked at every evaluation.
    HoldStarted {
        ts: i64,
        phase: usize,
    },
    /// The hold ended at `ts`, as `outcome` says.
    HoldEnded {
        ts: i64,
        phase: usize,
        outcome: HoldOutcome,
    },
}

/// How a hold ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HoldOutcome {
    /// Its gates passed (or, after the verdict, the release went on): the next phase
    /// started.
    Advanced,
    /// The longest hold was up: rolled back.
    RolledBack,
    /// The longest hold was up: held until someone decides.
    Stayed,
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
            | Event::GateFailed { ts, .. }
            | Event::HoldStarted { ts, .. }
            | Event::HoldEnded { ts, .. } => ts,
        }
    }
}

/// How a release ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Rolled back at `ts`, in `phase`, by `rule`: a rollback rule that fired, or a gate
    /// that failed at the phase's end (by the gate policy; the first failing in plan
    /// order).
    RolledBack { ts: i64, phase: usize, rule: usize },
    /// Its gates still failed when the longest hold was up (`after_max_hold: stay`): held
    /// in `phase`, still at `ts`, waiting for someone to decide.
    Held { ts: i64, phase: usize },
    /// Reached its last phase (100%) at `full_at` and was watched until `ts` without a
    /// rollback: complete.
    Completed { ts: i64, full_at: i64 },
}

impl Verdict {
    /// When the release was rolled back, whatever the cause; None when it was not. What a
    /// faulty trial's healthy twin is compared by (`sim::montecarlo`).
    pub(crate) fn rolled_back_at(&self) -> Option<i64> {
        match *self {
            Verdict::RolledBack { ts, .. } => Some(ts),
            Verdict::Held { .. } | Verdict::Completed { .. } => None,
        }
    }

    /// When the release ended.
    pub(crate) fn ts(&self) -> i64 {
        match *self {
            Verdict::RolledBack { ts, .. }
            | Verdict::Held { ts, .. }
            | Verdict::Completed { ts, .. } => ts,
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
    /// Per rule, the labels that tell its active alert from the rule's others (see
    /// [`Evaluator::evaluate_alerts`]).
    alert_labels: Vec<Vec<(String, String)>>,
    phase: usize,
    /// Recorded only when asked for (the replay), never in Monte Carlo trials.
    events: Option<Vec<Event>>,
    /// Per rule, when recording.
    logs: Vec<RuleLog>,
    verdict: Option<Verdict>,
    /// (phase, rule) of every gate that was firing when its phase ended.
    gate_failures: Vec<(usize, usize)>,
    /// When each phase began, so far (a hold delays the later ones).
    starts: Vec<i64>,
    /// When the running phase's hold began, while it is held.
    held_since: Option<i64>,
    /// The last phase's watch is over: nothing moves any more.
    over: bool,
    /// The latest evaluation's time.
    last_ts: Option<i64>,
    /// How many events had been recorded when the verdict was reached: those after it are
    /// what would have happened had the release gone on.
    verdict_event: Option<usize>,
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
            alert_labels: vec![Vec::new(); rules.len()],
            phase: 0,
            events,
            logs: if record_events {
                vec![RuleLog::default(); rules.len()]
            } else {
                Vec::new()
            },
            verdict: None,
            gate_failures: Vec::new(),
            starts: vec![0],
            held_since: None,
            over: false,
            last_ts: None,
            verdict_event: None,
        }
    }

    pub(crate) fn phase(&self) -> usize {
        self.phase
    }

    pub(crate) fn verdict(&self) -> Option<Verdict> {
        self.verdict
    }

    /// When each phase began, so far.
    pub(crate) fn starts(&self) -> &[i64] {
        &self.starts
    }

    /// The index in [`events`](Self::events) of the first event after the verdict.
    pub(crate) fn verdict_event(&self) -> Option<usize> {
        self.verdict_event
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

    /// Moves the release on at evaluation time `ts`, before that evaluation: when the
    /// running phase's length is up, its gates decide by the gate policy whether it
    /// advances, holds or rolls back (`phase_ended`); the end of the last phase's watch
    /// completes the release. A new phase starts every alert over (a new rules file).
    /// After the verdict phases advance at their nominal length (no hold), so a replay
    /// shows what would have happened had the release gone on. Returns the verdict, once
    /// there is one.
    pub(crate) fn enter(&mut self, ts: i64) -> Option<Verdict> {
        while !self.over {
            let start = self.starts[self.phase];
            let end = start + self.schedule.length(self.phase);
            if ts < end {
                break;
            }
            if self.schedule.is_last(self.phase) {
                self.over = true;
                self.decide(Verdict::Completed {
                    ts: end,
                    full_at: start,
                });
                break;
            }
            match self.phase_ended(ts, end) {
                Some(next_start) => self.begin(next_start),
                None => break,
            }
        }
        self.verdict
    }

    /// Starts the next phase at `ts`.
    fn begin(&mut self, ts: i64) {
        for i in 0..self.rules.len() {
            self.states[i] = AlertState::new(self.states[i].rule());
        }
        self.phase += 1;
        self.starts.push(ts);
        self.held_since = None;
        self.push(Event::PhaseStarted {
            ts,
            phase: self.phase,
        });
    }

    /// One rule evaluation at `ts` (call [`enter`](Self::enter) first) of values without
    /// labels of their own (as Monte Carlo's). Every rule is evaluated, after the verdict
    /// too; returns the verdict, once there is one.
    #[cfg(test)]
    pub(crate) fn evaluate(&mut self, ts: i64, values: &Values) -> Option<Verdict> {
        self.evaluate_alerts(ts, |r| {
            let (canary, stable) = values[r.metric];
            let count = r.guard.and_then(|g| values[g.count].0);
            (r.condition.holds(canary, stable) && r.guard_passes(count)).then_some(&[][..])
        })
    }

    /// One rule evaluation at `ts` (call [`enter`](Self::enter) first), where each rule's
    /// expression may return alerts with labels of their own (a custom query's, see
    /// `prom::Query::own_labels`): `alert(rule)` is the one it returns, as those labels, or
    /// None. Prometheus keys alerts by their labels (rules/alerting.go): when they change,
    /// the active alert is resolved (or cleared) and another one starts pending, its `for`
    /// from zero. Every rule is evaluated, after the verdict too; returns the verdict, once
    /// there is one.
    pub(crate) fn evaluate_alerts<'l>(
        &mut self,
        ts: i64,
        alert: impl Fn(&AlertRule) -> Option<&'l [(String, String)]>,
    ) -> Option<Verdict> {
        self.last_ts = Some(ts);
        let rules = self.rules;
        for (i, r) in rules.iter().enumerate() {
            let returned = if r.runs_in(self.phase) {
                alert(r)
            } else {
                None
            };
            if let Some(labels) = returned
                && self.alert_labels[i] != labels
            {
                let before = self.states[i].status();
                if before != Status::Inactive {
                    // The other alert: its condition is false now.
                    let after = self.states[i].step(ts, false);
                    self.transition(ts, i, before, after);
                }
                self.alert_labels[i] = labels.to_vec();
            }
            let before = self.states[i].status();
            let after = self.states[i].step(ts, returned.is_some());
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
    // happened had the release gone on): `phase_ended` and `rule_firing` with `decide`.

    /// The running phase's length was up at `end` and the release checks its gates at
    /// evaluation `ts` (the first at or after `end`, or a later one while held). Returns
    /// when the next phase starts, or None while the phase is held.
    fn phase_ended(&mut self, ts: i64, end: i64) -> Option<i64> {
        let phase = self.phase;
        let failing: Vec<usize> = (0..self.rules.len())
            .filter(|&i| {
                self.rules[i].kind == RuleKind::Gate && self.states[i].status().is_firing()
            })
            .collect();
        // The next phase starts at the phase's nominal end; after a hold, at the evaluation
        // at which its gates were found to pass (the latest).
        let next = match self.held_since {
            Some(_) => self.last_ts.unwrap_or(ts).max(end),
            None => end,
        };
        let advanced = |ev: &mut Self| {
            if ev.held_since.is_some() {
                ev.push(Event::HoldEnded {
                    ts: next,
                    phase,
                    outcome: HoldOutcome::Advanced,
                });
            }
            Some(next)
        };
        let Some(&first) = failing.first() else {
            return advanced(self);
        };
        if self.held_since.is_none() {
            for &i in &failing {
                if self.verdict.is_none() {
                    self.gate_failures.push((phase, i));
                }
                self.push(Event::GateFailed {
                    ts: end,
                    rule: i,
                    phase,
                });
            }
        }
        if self.verdict.is_some() {
            return advanced(self);
        }
        let rolled_back = Verdict::RolledBack {
            ts,
            phase,
            rule: first,
        };
        match self.schedule.gate_policy {
            GatePolicy::Rollback => {
                self.decide(rolled_back);
                Some(end)
            }
            GatePolicy::Hold { max, then } => {
                let since = *self.held_since.get_or_insert(ts);
                if since == ts {
                    self.push(Event::HoldStarted { ts, phase });
                }
                if ts - since < max.millis() as i64 {
                    return None;
                }
                let (outcome, verdict) = match then {
                    AfterMaxHold::Rollback => (HoldOutcome::RolledBack, rolled_back),
                    AfterMaxHold::Stay => (HoldOutcome::Stayed, Verdict::Held { ts, phase }),
                };
                self.push(Event::HoldEnded { ts, phase, outcome });
                self.decide(verdict);
                Some(ts)
            }
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
            self.verdict_event = Some(self.events().len());
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
