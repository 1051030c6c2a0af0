//! Monte Carlo: many synthetic trials per scenario, in parallel, with results that do not
//! depend on the thread count. Each trial is seeded from (seed, trial index) alone and
//! every aggregate is an integer sum, so any split of trials over threads gives the same
//! numbers. Per trial, only its healthy twin's first rollback time is kept (8 bytes a
//! trial, 8 MB at [`MAX_TRIALS`]); everything else is a few counters and histogram bins.
//!
//! # Healthy twins (common random numbers)
//! Trial `t` of every scenario of a run takes the same seed, so trial `t` of a fault-free
//! scenario is the **healthy twin** of trial `t` of each faulty one: the same traffic, the
//! same noise, draw for draw, until the fault first changes a draw (every synthetic draw
//! before that, the kinds of request of a span, the samplers and the number of uniforms
//! each takes, depends only on the fault's level, which is 0 until the onset; the canary
//! counts its requests and failures in every scenario of a run that has a fault). The
//! twins are the trials of the scenario file's first fault-free scenario, run first;
//! without one, an extra fault-free pass runs first and is reported as the twins. A
//! faulty trial's rollback at `ts` is then:
//! - **caught** when it came at or after the fault's onset and the twin had not rolled
//!   back by `ts` (the twin's first rollback, by any cause, is later or never): the fault
//!   made the difference;
//! - **rolled back anyway** otherwise: the healthy release would have rolled back by then
//!   too (a rollback before the onset is always one: the twin is the same trial there).
//!
//! The numbers stay common until the fault first changes a span's draws; from then on a
//! faulty trial draws afresh, with the same law as its twin but not the same numbers,
//! even for the series its fault cannot move (a latency fault changes the kinds of
//! request, so the failures are drawn again too). Fully common numbers would give such a
//! series, and so a rule that reads only it, exactly the twin's values: that rule would
//! have fired in the twin at the same moment. So a rollback by a rule whose metric the
//! fault cannot move ([`fault_moves`]) counts as rolled back anyway, as it would with
//! fully common numbers, rather than as a catch by chance; `twin_not_yet` keeps the twin
//! comparison alone.
//!
//! A faulty trial is exactly one of caught, rolled back anyway, missed (completed with the
//! fault), held (the longest hold was up, `after_max_hold: stay`), or none of them (the
//! fault began after the release completed); escaped counts across them. "Rolled back after onset" (caught, plus the
//! rolled-back-anyway trials whose rollback came after the onset) is kept as a raw figure.
//!
//! Work is shared out in batches of trials across all scenarios at once, so no thread waits
//! at a scenario boundary, but for one: the twins' pass ends before the others start
//! (they read its rollback times). A batch's trials run in lock step ([`Batch`]), sharing
//! what depends only on time and on their course through the phases; each keeps its own
//! random stream.
//!
//! A trial evaluates only what its outcome depends on ([`crate::sim::outcomes`]): rollback rules at
//! every evaluation, gates over the last `for` of each phase and while it is held, no-data
//! rules never.
//!
//! # What a trial counts
//! - A **rollback** is the first evaluation at which a rollback rule fires, or a gate
//!   failing at its phase's end; it is *false*
//!   when it comes before the fault's onset (or there is no fault), a *detection* otherwise.
//!   The rule that fired is the **first rule** (when several fire in the same evaluation,
//!   the first in plan order).
//! - **Escape**: the release reached its last phase (100%) and the fault began before the
//!   release ended, before 100% or during the watch (whatever the watch then did): the
//!   faulty version served everyone; **missed**: it completed the watch with the fault
//!   begun, never rolled back.
//! - **The release's course** follows the gate policy: a gate firing when its phase's
//!   length is up rolls the trial back (`rollback`, as the first failing gate in plan
//!   order), or holds the phase (`hold`: the gates are checked at every evaluation; the
//!   next phase starts at the first at which none fires, every later phase moving with
//!   it; when the longest hold is up the trial rolls back, or ends **held**). Each hold
//!   is counted with its length and how it ended. The last phase is watched for the
//!   plan's `watch` with its rollback rules running, then the trial is complete.
//! - **Time to catch**: rollback time minus onset, exactly, over caught trials
//!   (evaluations are on the grid; the onset need not be).
//! - **Blast radius**, from the fault's onset until rollback or the end of the last
//!   phase's watch: the requests the canary served and, of those, the
//!   ones that failed (baseline failures included), both counted exactly in the trial; and
//!   the **users exposed**, an expectation computed from the traffic model, not drawn:
//!   the plan's `users_per_day` distinct users a day come from a population in which each
//!   user visits as a Poisson process of one visit a day (so the population is
//!   `users_per_day / (1 - e^-1)`); the canary's users are the phase's share of them, and
//!   cohorts are nested (a user who joins the canary stays on it); a cohort that joined at
//!   phase start `s_k` with share increment `Δ_k` contributes
//!   `population · Δ_k · (1 - e^-d_k)`, `d_k` the days from `max(onset, s_k)` to the end.
//!   It assumes every user sends the same share of requests and that groups are not
//!   correlated with visit frequency. For a `partial` fault it counts every canary user,
//!   not only the affected share.
//! - **Gate failures**: per phase, the trials in which a gate alert was firing at the end of
//!   the phase, out of the trials that reached the phase's end.

use crate::check::CheckedPlan;
use crate::limits::{MAX_SCENARIOS, MAX_TRIALS};
use crate::lower::{AlertRule, LoweredPlan, RuleKind};
use crate::prom::Semantics;
use crate::sim::batch::add_into;
use crate::sim::batch::{Batch, Group};
use crate::sim::evaluator::{HoldOutcome, Schedule, Verdict};
use crate::sim::outcomes::{Hold, RuleSet};
use crate::sim::recorded::{Baseline, RecordedModel};
use crate::sim::scenario::{FaultKind, Scenario, Scenarios};
use crate::sim::splitmix::SplitMix64;
use crate::sim::stats::Histogram;
use crate::sim::synth::{Demand, FaultModel, Lanes, Model, QueryFailure, fault_moves};
use serde::{Deserialize, Serialize};
use std::ops::Range;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

/// How to run.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Settings {
    pub(crate) seed: u64,
    /// Worker threads, at least 1.
    pub(crate) jobs: usize,
    /// Trials per scenario (`--trials`, else the scenario file's).
    pub(crate) trials: u64,
    pub(crate) semantics: Semantics,
    /// Which of them this run takes (`--shard`); every other setting is the whole run's.
    pub(crate) slice: Slice,
}

/// Which trials a run takes: the `index`-th (from 0) of `count` contiguous slices of a
/// scenario's trials, the same slice of every scenario. A trial's numbers depend only on
/// (seed, trial index), and a faulty trial reads only its own twin, of the same index: so
/// a slice's tallies are exactly its trials' part of the whole run's, and the slices'
/// tallies add up to the whole run's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Slice {
    index: u64,
    count: u64,
}

impl Slice {
    /// Every trial.
    pub(crate) const WHOLE: Slice = Slice { index: 0, count: 1 };

    /// The `index`-th of `count` slices; None unless `index < count`.
    pub(crate) fn new(index: u64, count: u64) -> Option<Slice> {
        (index < count).then_some(Slice { index, count })
    }

    pub(crate) fn index(self) -> u64 {
        self.index
    }

    pub(crate) fn count(self) -> u64 {
        self.count
    }

    /// The slice's trials out of `total`: as even as whole trials allow, in order.
    pub(crate) fn trials(self, total: u64) -> std::ops::Range<u64> {
        let at = |k: u64| (u128::from(total) * u128::from(k) / u128::from(self.count)) as u64;
        at(self.index)..at(self.index + 1)
    }
}

/// Integer tallies of one scenario's trials.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct Tally {
    pub(crate) trials: u64,
    pub(crate) rollbacks: u64,
    /// Rollbacks before the fault's onset (or with no fault): false rollbacks.
    pub(crate) false_rollbacks: u64,
    /// Rollbacks at or after onset (the raw figure: caught or not).
    pub(crate) detected: u64,
    /// Rollbacks at or after onset whose healthy twin had not rolled back by then, by a
    /// rule whose metric the fault can move (see the module header).
    pub(crate) caught: u64,
    /// Rollbacks whose healthy twin had rolled back by then (faulty scenarios): every
    /// rollback of a faulty trial that is not caught.
    pub(crate) rolled_back_anyway: u64,
    /// Rollbacks at or after onset whose twin had not rolled back by then, whatever the
    /// rule: the twin comparison alone, before a rule the fault cannot move is counted as
    /// rolling back anyway (`caught` is these, less those).
    pub(crate) twin_not_yet: u64,
    /// Rollbacks by a gate failing at its phase's end (the gate policy); counted in
    /// `rollbacks` too.
    pub(crate) gate_rollbacks: u64,
    /// Faulty trials that reached the last phase (100%) and whose fault began before the
    /// release ended (before 100% or during the watch), whether or not the watch then
    /// rolled them back: the faulty version served everyone.
    pub(crate) escaped: u64,
    /// Trials watched through the last phase without a rollback: the release completed.
    pub(crate) completed: u64,
    /// Completed although the fault had begun: nothing caught it.
    pub(crate) missed: u64,
    /// Trials in which the fault began only after the watch ended (nothing saw it).
    pub(crate) fault_after_release: u64,
    /// Trials whose gates still failed when the longest hold was up, with the gate policy
    /// `after_max_hold: stay`: held, waiting for someone to decide.
    pub(crate) held: u64,
    /// Trials that held some phase at least once (gate policy `on_failure: hold`).
    pub(crate) held_trials: u64,
    /// Holds, by how they ended: the gates passed and the release went on; the longest
    /// hold was up and the release rolled back, or stayed held; a rollback rule fired
    /// during the hold.
    pub(crate) holds_advanced: u64,
    pub(crate) holds_rolled_back: u64,
    pub(crate) holds_stayed: u64,
    pub(crate) holds_cut_short: u64,
    /// Every hold's length, in evaluation intervals.
    pub(crate) hold_steps: Histogram,
    pub(crate) rollbacks_by_phase: Vec<u64>,
    pub(crate) false_by_phase: Vec<u64>,
    /// Per rule (index into the lowered rules; only rollback rules ever count).
    pub(crate) first_rule: Vec<u64>,
    /// Per rule, as `first_rule`: the caught rollbacks and the rolled-back-anyway ones.
    pub(crate) caught_by_rule: Vec<u64>,
    pub(crate) anyway_by_rule: Vec<u64>,
    /// Time from onset to a caught rollback, exactly, in units of the scenario's
    /// [`ScenarioResult::detect_unit_ms`].
    pub(crate) detect_steps: Histogram,
    pub(crate) exposed_requests: u64,
    pub(crate) exposed_failed: u64,
    /// Users exposed, in thousandths (rounded per trial, so sums stay integers).
    pub(crate) exposed_milli_users: u64,
    /// Per phase: trials that reached the end of the phase (entered the next one).
    pub(crate) completed_phase: Vec<u64>,
    /// Per (phase, rule): trials in which the gate was failing when the phase ended.
    pub(crate) gate_failures: Vec<u64>,
    /// Evaluation steps (timestamps evaluated).
    pub(crate) steps: u64,
    /// Rule evaluations run (rollback rules at every step; gates only where they can still
    /// fail a phase; no-data rules never: see [`crate::sim::outcomes`]).
    pub(crate) evaluations: u64,
    /// Per query slot ([`crate::sim::synth::SyntheticMetric::Query`]): lane evaluations
    /// that computed the query metric from its series.
    pub(crate) query_steps: Vec<u64>,
    /// The lowest trial whose query evaluation failed, and its first failure: the run then
    /// gives no figures (see [`MonteCarlo::query_failure`]).
    pub(crate) query_failure: Option<(u64, QueryFailure)>,
}

impl Tally {
    pub(crate) fn new(phases: usize, rules: usize) -> Tally {
        Tally {
            rollbacks_by_phase: vec![0; phases],
            false_by_phase: vec![0; phases],
            first_rule: vec![0; rules],
            caught_by_rule: vec![0; rules],
            anyway_by_rule: vec![0; rules],
            completed_phase: vec![0; phases],
            gate_failures: vec![0; phases * rules],
            ..Tally::default()
        }
    }

    /// Ok when it could be the tally of `trials` trials (those of `slice`) of a plan of
    /// `shape`, its detection times counted in units of `unit_ms`: read from a shard
    /// (`plan merge`), it is checked before it is added up. Every count of trials is at most
    /// the trials, the counts that add up to another do, the histograms hold what they
    /// count, and the sums of large numbers (requests, steps) stay far from overflowing
    /// when the shards of a run at [`MAX_TRIALS`] are added.
    pub(crate) fn plausible(
        &self,
        trials: u64,
        slice: &Range<u64>,
        shape: &Shape,
        unit_ms: i64,
    ) -> Result<(), String> {
        let fail = |why: &str| Err(why.to_string());
        let per_phase = [
            &self.rollbacks_by_phase,
            &self.false_by_phase,
            &self.completed_phase,
        ];
        let per_rule = [&self.first_rule, &self.caught_by_rule, &self.anyway_by_rule];
        if !(per_phase.iter().all(|v| v.len() == shape.phases)
            && per_rule.iter().all(|v| v.len() == shape.rules)
            && self.gate_failures.len() == shape.phases * shape.rules
            && self.query_steps.len() <= shape.metrics)
        {
            return fail("its phases, rules or metrics are not the plan's");
        }
        if self.trials != trials {
            return Err(format!(
                "it counts {} trials, not its slice's {trials}",
                self.trials
            ));
        }
        let counts = [
            self.rollbacks,
            self.false_rollbacks,
            self.detected,
            self.caught,
            self.rolled_back_anyway,
            self.twin_not_yet,
            self.gate_rollbacks,
            self.escaped,
            self.completed,
            self.missed,
            self.fault_after_release,
            self.held,
            self.held_trials,
        ];
        let each = per_phase
            .iter()
            .chain(&per_rule)
            .flat_map(|v| v.iter())
            .chain(&self.gate_failures);
        if counts.iter().chain(each).any(|&c| c > trials) {
            return fail("a count is above its trials");
        }
        let sum = |v: &[u64]| v.iter().try_fold(0u64, |a, &b| a.checked_add(b));
        let adds_up = [
            (sum(&self.first_rule), self.rollbacks),
            (sum(&self.rollbacks_by_phase), self.rollbacks),
            (sum(&self.false_by_phase), self.false_rollbacks),
            (sum(&self.caught_by_rule), self.caught),
            (sum(&self.anyway_by_rule), self.rolled_back_anyway),
            (Some(self.detect_steps.total()), self.caught),
        ];
        if adds_up.iter().any(|&(s, total)| s != Some(total))
            || self.rollbacks + self.completed + self.held != trials
            || self.detected + self.false_rollbacks != self.rollbacks
        {
            return fail("its counts do not add up");
        }
        let holds = [
            self.holds_advanced,
            self.holds_rolled_back,
            self.holds_stayed,
            self.holds_cut_short,
        ];
        let most_holds = trials.saturating_mul(shape.phases as u64);
        if holds.iter().any(|&h| h > most_holds)
            || holds.iter().sum::<u64>() != self.hold_steps.total()
        {
            return fail("its holds do not add up");
        }
        // Times: within a century, so that steps times their unit stay far inside i64.
        let century = 100 * 365 * 86_400_000u64;
        let within = |h: &Histogram, unit: i64| {
            h.max()
                .is_none_or(|v| (v as u128) * (unit.max(1) as u128) <= u128::from(century))
        };
        if !within(&self.detect_steps, unit_ms) || !within(&self.hold_steps, shape.eval_ms) {
            return fail("a time is beyond any release");
        }
        // Per trial, at most an even share of u64 over every trial of every scenario.
        let per_trial = u64::MAX / (MAX_TRIALS * (MAX_SCENARIOS as u64 + 1));
        let large = [
            self.exposed_requests,
            self.exposed_failed,
            self.exposed_milli_users,
            self.steps,
            self.evaluations,
        ];
        let most = trials.saturating_mul(per_trial);
        if large.iter().chain(&self.query_steps).any(|&v| v > most)
            || self.exposed_failed > self.exposed_requests
        {
            return fail("a total is beyond what its trials can serve");
        }
        if let Some((trial, f)) = &self.query_failure
            && (!slice.contains(trial) || f.metric >= shape.metrics)
        {
            return fail("its failed query is not one of its trials' or of the plan's");
        }
        Ok(())
    }

    pub(crate) fn merge(&mut self, o: &Tally) {
        self.trials += o.trials;
        self.rollbacks += o.rollbacks;
        self.false_rollbacks += o.false_rollbacks;
        self.detected += o.detected;
        self.caught += o.caught;
        self.rolled_back_anyway += o.rolled_back_anyway;
        self.twin_not_yet += o.twin_not_yet;
        self.gate_rollbacks += o.gate_rollbacks;
        self.escaped += o.escaped;
        self.completed += o.completed;
        self.missed += o.missed;
        self.fault_after_release += o.fault_after_release;
        self.held += o.held;
        self.held_trials += o.held_trials;
        self.holds_advanced += o.holds_advanced;
        self.holds_rolled_back += o.holds_rolled_back;
        self.holds_stayed += o.holds_stayed;
        self.holds_cut_short += o.holds_cut_short;
        self.hold_steps.merge(&o.hold_steps);
        for (a, b) in [
            (&mut self.rollbacks_by_phase, &o.rollbacks_by_phase),
            (&mut self.false_by_phase, &o.false_by_phase),
            (&mut self.first_rule, &o.first_rule),
            (&mut self.caught_by_rule, &o.caught_by_rule),
            (&mut self.anyway_by_rule, &o.anyway_by_rule),
            (&mut self.completed_phase, &o.completed_phase),
            (&mut self.gate_failures, &o.gate_failures),
        ] {
            for (x, y) in a.iter_mut().zip(b) {
                *x += y;
            }
        }
        self.detect_steps.merge(&o.detect_steps);
        self.exposed_requests += o.exposed_requests;
        self.exposed_failed += o.exposed_failed;
        self.exposed_milli_users += o.exposed_milli_users;
        self.steps += o.steps;
        self.evaluations += o.evaluations;
        add_into(&mut self.query_steps, &o.query_steps);
        if let Some((trial, f)) = &o.query_failure {
            self.note_query_failure(*trial, f);
        }
    }

    /// Keeps the failure of the lowest trial, so that the one reported does not depend on
    /// how trials were batched or spread over threads.
    fn note_query_failure(&mut self, trial: u64, f: &QueryFailure) {
        if self.query_failure.as_ref().is_none_or(|(t, _)| trial < *t) {
            self.query_failure = Some((trial, f.clone()));
        }
    }
}

/// The result of one scenario.
pub(crate) struct ScenarioResult<'s> {
    pub(crate) scenario: &'s Scenario,
    pub(crate) tally: Tally,
    /// The unit of `tally.detect_steps`: the greatest common divisor of the evaluation
    /// interval, the scrape interval and the onset, so every detection time is a whole
    /// number of units.
    pub(crate) detect_unit_ms: i64,
}

/// What a plan's tallies are sized by: checked when a tally comes from a shard.
pub(crate) struct Shape {
    pub(crate) phases: usize,
    pub(crate) rules: usize,
    pub(crate) metrics: usize,
    pub(crate) eval_ms: i64,
}

/// How one trial ended, kept per trial only when runs are compared trial by trial
/// (`plan simulate A B`): the figures a comparison pairs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct TrialOutcome {
    pub(crate) rolled_back: bool,
    /// Rolled back before the fault's onset, or without a fault.
    pub(crate) false_rollback: bool,
    /// Caught (see the module header); then `catch_ms` is the time from the onset.
    pub(crate) caught: bool,
    pub(crate) catch_ms: i64,
    pub(crate) escaped: bool,
    /// Requests the canary served from the fault's onset until the trial ended.
    pub(crate) exposed: u64,
}

/// A trial's seed: SplitMix64 over (seed, trial), so that trials are independent of each
/// other and of how they are scheduled. Not over the scenario: trial `t` of every scenario
/// takes the same numbers, which makes a fault-free trial the healthy twin of the faulty
/// ones (see the module header).
pub(crate) fn trial_seed(seed: u64, trial: u64) -> u64 {
    let mixed = seed ^ trial.wrapping_mul(0xD1B5_4A32_D192_ED03);
    SplitMix64::new(SplitMix64::new(mixed).next_u64()).next_u64()
}

/// Where a run's healthy twins come from.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Twins {
    /// The scenario file's fault-free scenario whose trials they are (index); None: an
    /// extra fault-free pass of the same trials, not in the file.
    pub(crate) scenario: Option<usize>,
    /// The twins' own tally (every rollback of theirs is a false rollback).
    pub(crate) tally: Tally,
}

/// What a Monte Carlo run gives: one result per scenario, in file order, and the twins.
pub(crate) struct MonteCarlo<'s> {
    pub(crate) results: Vec<ScenarioResult<'s>>,
    /// Per scenario of `results`, per trial of the run's slice: how it ended; empty unless
    /// asked for ([`run_recorded`]).
    pub(crate) trials: Vec<Vec<TrialOutcome>>,
    /// None when the file has no faulty scenario (nothing is compared with a twin).
    pub(crate) twins: Option<Twins>,
}

impl<'s> MonteCarlo<'s> {
    /// The first query evaluation that failed: in the first scenario (in the file's order,
    /// the extra twin pass last) where one failed, its lowest trial. The run's figures are
    /// then wrong (a rule compared nothing where Prometheus would have failed the rule),
    /// so none are given.
    pub(crate) fn query_failure(&self) -> Option<(&str, u64, &QueryFailure)> {
        let twins = self.twins.iter().filter(|t| t.scenario.is_none());
        self.results
            .iter()
            .map(|r| (r.scenario.name.as_str(), &r.tally))
            .chain(twins.map(|t| ("healthy twin", &t.tally)))
            .find_map(|(name, t)| t.query_failure.as_ref().map(|(trial, f)| (name, *trial, f)))
    }
}

/// Whether the run needs an extra fault-free pass for the twins: some scenario is faulty
/// and none is fault-free.
pub(crate) fn needs_extra_twins(scenarios: &Scenarios) -> bool {
    let faulty = |s: &Scenario| s.fault.is_some();
    scenarios.scenarios.iter().any(faulty) && scenarios.scenarios.iter().all(faulty)
}

/// No rollback: a twin that was promoted.
const NEVER: i64 = i64::MAX;

/// The metric values an outcome-only evaluation computes, for each set of rules it runs.
pub(crate) struct Demands {
    rollbacks: Demand,
    rollbacks_and_gates: Demand,
}

impl Demands {
    pub(crate) fn new(model: &Model<'_>, rules: &[AlertRule]) -> Demands {
        let read_by = |set: RuleSet| {
            model.demand(|m| {
                rules
                    .iter()
                    .any(|r| r.reads(m) && set.kinds().contains(&r.kind))
            })
        };
        Demands {
            rollbacks: read_by(RuleSet::Rollbacks),
            rollbacks_and_gates: read_by(RuleSet::RollbacksAndGates),
        }
    }

    pub(crate) fn of(&self, set: RuleSet) -> &Demand {
        match set {
            RuleSet::Rollbacks => &self.rollbacks,
            RuleSet::RollbacksAndGates => &self.rollbacks_and_gates,
        }
    }
}

/// Trials per unit of work handed to a thread: one lock-step batch, at most.
const BATCH: u64 = 1024;

/// The memory all live batches' sample rings may take together. A long window sampled
/// often (`24h` at `1s`: 86,400 samples) needs megabytes per trial: batches then hold fewer
/// trials, and fewer threads run at once, so memory stays bounded whatever the plan.
const RING_MEMORY: usize = 256 << 20;

/// One lock-step batch: `count` trials of one offset class, `first`, `first + step`, …
/// (`step` the run's number of offset classes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Chunk {
    pub(crate) class: usize,
    pub(crate) first: u64,
    pub(crate) count: u64,
    pub(crate) step: u64,
}

impl Chunk {
    pub(crate) fn trials(self) -> impl Iterator<Item = u64> {
        (0..self.count).map(move |i| self.first + i * self.step)
    }

    /// The place of `trial`, one of its trials, in the batch.
    #[inline]
    pub(crate) fn place(self, trial: u64) -> usize {
        ((trial - self.first) / self.step) as usize
    }
}

/// A run's lock-step batches of `trials`: per offset class (trial `t` is in class `t mod
/// classes`, [`Model::classes`]), its trials in order, at most `batch` at a time. With one
/// class, the trials in order, `batch` at a time.
pub(crate) fn chunks(trials: Range<u64>, classes: usize, batch: u64) -> Vec<Chunk> {
    let (step, batch) = (classes.max(1) as u64, batch.max(1));
    let mut out = Vec::new();
    for class in 0..step {
        let first = trials.start + (class + step - trials.start % step) % step;
        let count = trials.end.saturating_sub(first).div_ceil(step);
        for i in (0..count).step_by(batch as usize) {
            out.push(Chunk {
                class: class as usize,
                first: first + i * step,
                count: batch.min(count - i),
                step,
            });
        }
    }
    out
}

/// How a run is shared out: trials per batch and threads, from the memory a trial's rings
/// take (`per_lane` bytes). Neither changes a number (see [`run_batched`]).
pub(crate) fn sharing(per_lane: usize, jobs: usize) -> (u64, usize) {
    let lanes = (RING_MEMORY / per_lane.max(1)).max(1);
    let threads = jobs.clamp(1, lanes);
    let batch = (lanes / threads).clamp(1, BATCH as usize) as u64;
    (batch, threads)
}

/// The most work a run can take: every trial runs every evaluation of its release until
/// the end of its last phase's watch (every phase held as long as the gate policy allows),
/// unless a rollback ends it first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Work {
    pub(crate) trials: u64,
    pub(crate) evaluations_per_trial: u64,
    /// The most sets of request counters the two tracks run at once: one per instance
    /// (the stable version's replicas and the canary's most), or one per track. A
    /// synthetic step's cost grows with them.
    pub(crate) counter_sets: u64,
}

impl Work {
    pub(crate) fn of(plan: &CheckedPlan, scenarios: &Scenarios, settings: &Settings) -> Work {
        let schedule = Schedule::new(plan);
        let eval = plan.monitoring.evaluation_interval.millis();
        Work {
            trials: settings.slice.trials(settings.trials).count() as u64
                * (scenarios.scenarios.len() as u64 + u64::from(needs_extra_twins(scenarios))),
            evaluations_per_trial: schedule.latest_end() as u64 / eval + 1,
            counter_sets: if scenarios.exposition.requests_per_instance {
                let canary = (0..plan.phases.len()).map(|i| plan.canary_replicas(i));
                u64::from(plan.service.replicas.max(1) + canary.max().unwrap_or(1))
            } else {
                2
            },
        }
    }

    pub(crate) fn steps(&self) -> u64 {
        self.trials.saturating_mul(self.evaluations_per_trial)
    }
}

/// Everything a worker reads.
struct Job<'r, 's> {
    plan: &'r CheckedPlan,
    rules: &'r [AlertRule],
    schedule: &'r Schedule,
    /// Per offset class, its model; per scenario of `runs`, per class, its faults.
    models: &'r [Model<'s>],
    faults: &'r [Vec<FaultModel<'r>>],
    /// The recording trials are built from (`--baseline`), if any.
    recorded: Option<&'r RecordedModel<'s>>,
    /// What runs: the file's scenarios, then the extra twin pass, if any.
    runs: &'r [&'s Scenario],
    users_per_day: Option<u64>,
    /// The index in `runs` of the twins' scenario.
    twin: usize,
    /// Per trial of `trials` (from its first), its twin's first rollback time ([`NEVER`]):
    /// written by the twins' pass, read by the faulty scenarios' pass, which starts after
    /// it ended.
    twin_rollbacks: &'r [AtomicI64],
    /// Per scenario of `runs`, per rule: whether its fault can move the rule's metric.
    moves: &'r [Vec<bool>],
    /// The trials of each scenario that run.
    trials: Range<u64>,
    /// The lock-step batches of each scenario's trials.
    chunks: &'r [Chunk],
    seed: u64,
    /// Per scenario: the unit of detection times.
    units: &'r [i64],
    /// Per offset class.
    demands: &'r [Demands],
    /// Whether each trial's [`TrialOutcome`] is kept.
    record: bool,
}

/// What a worker gives: one tally per scenario of `runs`, and the outcomes of its trials
/// (scenario, trial) when they are kept.
type Worked = (Vec<Tally>, Vec<(usize, u64, TrialOutcome)>);

impl Job<'_, '_> {
    /// Runs batches of the scenarios `pass` (indices into `runs`) taken from `next` until
    /// none is left; returns one tally per scenario of `runs`.
    fn work(&self, pass: &[usize], next: &AtomicU64, done: &AtomicU64) -> Worked {
        let batches_per_scenario = self.chunks.len() as u64;
        let total_batches = batches_per_scenario * pass.len() as u64;
        let mut tallies: Vec<Tally> = self
            .runs
            .iter()
            .map(|_| Tally::new(self.plan.phases.len(), self.rules.len()))
            .collect();
        let mut outcomes = Vec::new();
        loop {
            let c = next.fetch_add(1, Ordering::Relaxed);
            if c >= total_batches {
                break;
            }
            let si = pass[(c / batches_per_scenario) as usize];
            let chunk = self.chunks[(c % batches_per_scenario) as usize];
            self.run_batch(si, chunk, &mut tallies[si], &mut outcomes);
            done.fetch_add(chunk.count, Ordering::Relaxed);
        }
        (tallies, outcomes)
    }

    /// Runs the trials of `chunk` of scenario `si` in lock step (see [`Batch`]): each
    /// keeps its own random stream, so its numbers do not depend on the others in the batch.
    fn run_batch(
        &self,
        si: usize,
        chunk: Chunk,
        t: &mut Tally,
        outcomes: &mut Vec<(usize, u64, TrialOutcome)>,
    ) {
        let model = &self.models[chunk.class];
        let trials: Vec<u64> = chunk.trials().collect();
        let seeds: Vec<u64> = trials.iter().map(|&i| trial_seed(self.seed, i)).collect();
        let mut batch = Batch::new(
            (model, &self.faults[si][chunk.class], self.recorded),
            self.rules,
            self.schedule,
            trials,
            seeds,
        );
        let demands = &self.demands[chunk.class];
        let mut ts = 0i64;
        while !batch.is_empty() {
            batch.step(
                ts,
                &|set| demands.of(set),
                &mut |group, lane, verdict| {
                    let o = self.finish(si, group, lane, verdict, t);
                    if self.record {
                        outcomes.push((si, group.trial_of[lane], o));
                    }
                },
                &mut |_, _| {},
            );
            ts += model.eval_ms;
        }
        t.steps += batch.steps();
        t.evaluations += batch.evaluated();
        add_into(&mut t.query_steps, &batch.query_steps());
    }

    /// Adds finished trial `trial` of scenario `si` (in `lane`) to the tally, and says how
    /// it ended; a twin's first rollback time is recorded for the faulty trials that
    /// compare with it.
    fn finish(
        &self,
        si: usize,
        group: &Group<'_, '_>,
        lane: usize,
        verdict: Verdict,
        t: &mut Tally,
    ) -> TrialOutcome {
        let mut out = TrialOutcome::default();
        let (model, rules) = (&self.models[0], self.rules);
        let (outcomes, trial) = (&group.outcomes, group.trial_of[lane]);
        let exposure = group.lanes.exposure(lane);
        let fault = self.runs[si].fault.as_ref();
        // Kept only when some scenario is faulty.
        let twin = self
            .twin_rollbacks
            .get((trial - self.trials.start) as usize);
        if let Some(twin) = twin.filter(|_| si == self.twin) {
            twin.store(verdict.rolled_back_at().unwrap_or(NEVER), Ordering::Relaxed);
        }
        t.trials += 1;
        if let Some(f) = group.lanes.query_failure(lane) {
            t.note_query_failure(trial, f);
        }
        for &(phase, rule) in outcomes.gate_failures(lane) {
            t.gate_failures[phase * rules.len() + rule] += 1;
        }
        // Its holds, the one a rollback rule cut short included.
        let by_rule = matches!(verdict, Verdict::RolledBack { rule, .. } if rules[rule].kind == RuleKind::Rollback);
        let cut_short = outcomes.held_since().filter(|_| by_rule).map(|from| Hold {
            phase: outcomes.phase(),
            from,
            to: verdict.ts(),
            outcome: HoldOutcome::RolledBack,
        });
        let ended = phases_ended(verdict, cut_short.is_some(), rules, self.plan.phases.len());
        for c in &mut t.completed_phase[..ended] {
            *c += 1;
        }
        let holds = outcomes.holds(lane);
        t.held_trials += u64::from(!holds.is_empty() || cut_short.is_some());
        for h in holds.iter().chain(&cut_short) {
            t.hold_steps.add(((h.to - h.from) / model.eval_ms) as usize);
            match h.outcome {
                HoldOutcome::Advanced => t.holds_advanced += 1,
                HoldOutcome::RolledBack if cut_short.is_some() => t.holds_cut_short += 1,
                HoldOutcome::RolledBack => t.holds_rolled_back += 1,
                HoldOutcome::Stayed => t.holds_stayed += 1,
            }
        }
        // A load-triggered fault begins when the load first exceeds its limit; a trial in
        // which it never did counts as the fault beginning after the release ended.
        let onset = fault.map(|f| match f.kind {
            FaultKind::Load { .. } => exposure.first_active.unwrap_or(i64::MAX),
            _ => f.onset_ms,
        });
        let end = match verdict {
            Verdict::RolledBack { ts, phase, rule } => {
                t.rollbacks += 1;
                out.rolled_back = true;
                t.gate_rollbacks += u64::from(rules[rule].kind == RuleKind::Gate);
                t.rollbacks_by_phase[phase] += 1;
                t.first_rule[rule] += 1;
                match onset {
                    Some(o) if ts >= o => t.detected += 1,
                    _ => {
                        t.false_rollbacks += 1;
                        t.false_by_phase[phase] += 1;
                        out.false_rollback = true;
                    }
                }
                if let (Some(o), Some(twin)) = (onset, twin) {
                    // The twins' pass ended before this one started.
                    let twin_later = ts >= o && twin.load(Ordering::Relaxed) > ts;
                    t.twin_not_yet += u64::from(twin_later);
                    if twin_later && self.moves[si][rule] {
                        t.caught += 1;
                        t.caught_by_rule[rule] += 1;
                        out.caught = true;
                        out.catch_ms = ts - o;
                        t.detect_steps.add(((ts - o) / self.units[si]) as usize);
                    } else {
                        t.rolled_back_anyway += 1;
                        t.anyway_by_rule[rule] += 1;
                    }
                }
                ts
            }
            Verdict::Completed { ts, .. } => {
                t.completed += 1;
                match onset {
                    Some(o) if o < ts => t.missed += 1,
                    Some(_) => t.fault_after_release += 1,
                    None => {}
                }
                ts
            }
            Verdict::Held { ts, .. } => {
                t.held += 1;
                ts
            }
        };
        let reached_full = match verdict {
            Verdict::RolledBack { phase, .. } | Verdict::Held { phase, .. } => {
                self.schedule.is_last(phase)
            }
            Verdict::Completed { .. } => true,
        };
        // The faulty version served everyone while its fault showed: it reached 100%, and
        // the fault began before the release ended (before 100%, or during the watch).
        if reached_full && onset.is_some_and(|o| o < verdict.ts()) {
            t.escaped += 1;
            out.escaped = true;
        }
        out.exposed = exposure.requests;
        t.exposed_requests += exposure.requests;
        t.exposed_failed += exposure.failed;
        if let (Some(o), Some(users)) = (onset.filter(|&o| o < i64::MAX), self.users_per_day) {
            // The phases it served in: up to the one it ended in.
            let last = match verdict {
                Verdict::RolledBack { phase, .. } | Verdict::Held { phase, .. } => phase,
                Verdict::Completed { .. } => self.plan.phases.len() - 1,
            };
            let starts = &outcomes.schedule().starts[..=last];
            t.exposed_milli_users +=
                (users_exposed(model, starts, users as f64, o, end) * 1000.0).round() as u64;
        }
        out
    }
}

/// How many phases a trial that ended with `verdict` saw the end of: the phases before
/// the one it ended in, and that one too when it ended at or past its end (a failing gate,
/// a hold that ended the release, a rule firing while it was `held`).
pub(crate) fn phases_ended(
    verdict: Verdict,
    held: bool,
    rules: &[AlertRule],
    phases: usize,
) -> usize {
    match verdict {
        Verdict::RolledBack { phase, rule, .. } if rules[rule].kind == RuleKind::Gate => phase + 1,
        Verdict::RolledBack { phase, .. } if held => phase + 1,
        Verdict::RolledBack { phase, .. } => phase,
        Verdict::Held { phase, .. } => phase + 1,
        Verdict::Completed { .. } => phases - 1,
    }
}

/// Expected distinct users served by the canary between `onset` and `end`, its phases
/// having started at `starts` (see the module header for the model).
pub(crate) fn users_exposed(
    model: &Model<'_>,
    starts: &[i64],
    users_per_day: f64,
    onset: i64,
    end: i64,
) -> f64 {
    if end <= onset {
        return 0.0;
    }
    let population = users_per_day / (1.0 - (-1.0f64).exp());
    let mut exposed = 0.0;
    let mut share_before = 0.0f64;
    for (k, &start) in starts.iter().enumerate() {
        if start >= end {
            break;
        }
        let share = model.canary_share[k].max(share_before);
        let joined = share - share_before;
        share_before = share;
        let days = (end - onset.max(start)) as f64 / 86_400_000.0;
        exposed += population * joined * (1.0 - (-days).exp());
    }
    exposed
}

/// Trials per batch on a recording.
pub(crate) const RECORDED_BATCH: u64 = 16;

/// Runs every scenario, the twins first; `progress(done, total)` is called from the
/// calling thread now and then.
pub(crate) fn run<'s>(
    lowered: &LoweredPlan,
    scenarios: &'s Scenarios,
    settings: Settings,
    progress: &mut dyn FnMut(u64, u64),
) -> MonteCarlo<'s> {
    run_batched(lowered, scenarios, settings, (None, None), progress)
}

/// [`run`] with every trial built from `recording` (`--baseline`) instead of the
/// synthetic model, in blocks of `block_ms`.
pub(crate) fn run_on_recording<'s>(
    lowered: &LoweredPlan,
    scenarios: &'s Scenarios,
    settings: Settings,
    recorded: &RecordedModel<'_>,
    progress: &mut dyn FnMut(u64, u64),
) -> MonteCarlo<'s> {
    run_batched(
        lowered,
        scenarios,
        settings,
        (None, Some(recorded)),
        progress,
    )
}

/// [`run`] on the model built for `model_rules`, a superset of the plan's rules: what a
/// trial draws depends on the thresholds its model must tell apart ([`Model::new`]), so
/// runs compared trial by trial (`plan tune`, `plan simulate A B`) are drawn by models
/// that tell apart the thresholds of all. Keeps every trial's [`TrialOutcome`]. Trials
/// are built from `baseline` when given.
pub(crate) fn run_recorded<'s>(
    lowered: &LoweredPlan,
    (scenarios, baseline): (&'s Scenarios, Option<Baseline<'_>>),
    settings: Settings,
    model_rules: &[AlertRule],
    progress: &mut dyn FnMut(u64, u64),
) -> MonteCarlo<'s> {
    let models = Model::classes(&lowered.plan, scenarios, model_rules, settings.semantics);
    let recorded = baseline.map(|b| b.model(&lowered.plan, model_rules, &models[0]));
    run_on(
        lowered,
        scenarios,
        settings,
        (&models, recorded.as_ref()),
        (None, true),
        progress,
    )
}

/// [`run`] with `batch` trials per lock-step batch, or as many as the memory budget allows
/// ([`sharing`]; the numbers do not depend on it), built from `recorded` when given.
fn run_batched<'s>(
    lowered: &LoweredPlan,
    scenarios: &'s Scenarios,
    settings: Settings,
    (batch, recorded): (Option<u64>, Option<&RecordedModel<'_>>),
    progress: &mut dyn FnMut(u64, u64),
) -> MonteCarlo<'s> {
    let models = Model::classes(&lowered.plan, scenarios, &lowered.rules, settings.semantics);
    run_on(
        lowered,
        scenarios,
        settings,
        (&models, recorded),
        (batch, false),
        progress,
    )
}

/// [`run_batched`] on `models` (one per offset class; trials built from `recorded` when
/// given), keeping each trial's outcome when `record`.
fn run_on<'s>(
    lowered: &LoweredPlan,
    scenarios: &'s Scenarios,
    settings: Settings,
    (models, recorded): (&[Model<'_>], Option<&RecordedModel<'_>>),
    (batch, record): (Option<u64>, bool),
    progress: &mut dyn FnMut(u64, u64),
) -> MonteCarlo<'s> {
    let (plan, rules) = (&lowered.plan, &lowered.rules);
    // What does not depend on the scrape offset, from the first class.
    let model = &models[0];
    let (fitting, jobs) = sharing(Lanes::ring_bytes_per_lane(model), settings.jobs);
    // A recorded trial keeps its own series: small batches keep memory flat.
    let fitting = if recorded.is_some() {
        RECORDED_BATCH
    } else {
        fitting
    };
    let batch = batch.unwrap_or(fitting);
    // The file's scenarios, then the extra twin pass when there is no fault-free one.
    let extra = extra_twin();
    let mut runs: Vec<&Scenario> = scenarios.scenarios.iter().collect();
    if needs_extra_twins(scenarios) {
        runs.push(&extra);
    }
    let any_faulty = runs.iter().any(|s| s.fault.is_some());
    // Some whenever a scenario is faulty.
    let twin = runs.iter().position(|s| s.fault.is_none());
    let faults: Vec<Vec<FaultModel<'_>>> = runs
        .iter()
        .map(|s| FaultModel::classes(models, s.fault.as_ref()))
        .collect();
    let trials = settings.slice.trials(settings.trials);
    let passes: [Vec<usize>; 2] = [
        twin.into_iter().collect(),
        (0..scenarios.scenarios.len())
            .filter(|&i| Some(i) != twin)
            .collect(),
    ];
    let total = (trials.end - trials.start) * passes.iter().map(|p| p.len() as u64).sum::<u64>();
    let units: Vec<i64> = runs.iter().map(|s| detect_unit(model, s)).collect();
    let demands: Vec<Demands> = models.iter().map(|m| Demands::new(m, rules)).collect();
    // Only a run with a faulty scenario reads its twins.
    let twin_rollbacks: Vec<AtomicI64> = if any_faulty {
        trials.clone().map(|_| AtomicI64::new(NEVER)).collect()
    } else {
        Vec::new()
    };
    let moves: Vec<Vec<bool>> = runs
        .iter()
        .map(|s| moved_rules(model, recorded.map(|r| (r, scenarios)), s, rules))
        .collect();
    let job = Job {
        moves: &moves,
        plan,
        rules,
        schedule: &model.schedule,
        models,
        faults: &faults,
        recorded,
        runs: &runs,
        users_per_day: scenarios.traffic.users_per_day,
        twin: twin.filter(|_| any_faulty).unwrap_or(usize::MAX),
        twin_rollbacks: &twin_rollbacks,
        trials: trials.clone(),
        chunks: &chunks(trials.clone(), models.len(), batch),
        seed: settings.seed,
        units: &units,
        demands: &demands,
        record,
    };
    let done = AtomicU64::new(0);
    let mut tallies: Vec<Tally> = runs
        .iter()
        .map(|_| Tally::new(plan.phases.len(), rules.len()))
        .collect();
    let slice_len = (trials.end - trials.start) as usize;
    let mut outcomes: Vec<Vec<TrialOutcome>> = runs
        .iter()
        .map(|_| {
            if record {
                vec![TrialOutcome::default(); slice_len]
            } else {
                Vec::new()
            }
        })
        .collect();
    // The twins' pass ends before the faulty scenarios' starts: they read its times.
    for pass in passes.iter().filter(|p| !p.is_empty()) {
        let next = AtomicU64::new(0);
        std::thread::scope(|s| {
            let workers: Vec<_> = (0..jobs)
                .map(|_| s.spawn(|| job.work(pass, &next, &done)))
                .collect();
            let mut last = u64::MAX;
            while workers.iter().any(|w| !w.is_finished()) {
                let d = done.load(Ordering::Relaxed);
                if d != last {
                    progress(d, total);
                    last = d;
                }
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            for w in workers {
                // A worker panic is a bug; surface it rather than report partial numbers.
                let (worked, trials_ended) = w.join().expect("simulation worker");
                for (acc, t) in tallies.iter_mut().zip(worked) {
                    acc.merge(&t);
                }
                for (si, trial, o) in trials_ended {
                    outcomes[si][(trial - trials.start) as usize] = o;
                }
            }
        });
    }
    progress(total, total);
    let twins = twin.filter(|_| any_faulty).map(|twin| Twins {
        scenario: (twin < scenarios.scenarios.len()).then_some(twin),
        tally: tallies[twin].clone(),
    });
    tallies.truncate(scenarios.scenarios.len());
    outcomes.truncate(scenarios.scenarios.len());
    let results = scenarios
        .scenarios
        .iter()
        .zip(tallies)
        .zip(units)
        .map(|((scenario, tally), detect_unit_ms)| ScenarioResult {
            scenario,
            tally,
            detect_unit_ms,
        })
        .collect();
    MonteCarlo {
        results,
        trials: outcomes,
        twins,
    }
}

/// Per rule: whether the scenario's fault can move the rule's metric.
/// On a recording (`recorded`, with its scenarios), also the rules on what the fault moves
/// in its series ([`RecordedModel::moves`]).
pub(crate) fn moved_rules(
    model: &Model<'_>,
    recorded: Option<(&RecordedModel<'_>, &Scenarios)>,
    s: &Scenario,
    rules: &[AlertRule],
) -> Vec<bool> {
    rules
        .iter()
        .map(|r| {
            s.fault.as_ref().is_some_and(|f| {
                let moved = (f, r.metric, model.sources[r.metric]);
                match recorded {
                    Some((rec, scenarios)) => rec.moves(scenarios, moved),
                    None => fault_moves(moved.0, moved.1, moved.2),
                }
            })
        })
        .collect()
}

/// The scenario that stands for a twin pass that is not in the scenario file.
pub(crate) fn extra_twin() -> Scenario {
    Scenario {
        name: "healthy twin".into(),
        description: String::new(),
        fault: None,
    }
}

fn gcd(a: i64, b: i64) -> i64 {
    if b == 0 { a.abs() } else { gcd(b, a % b) }
}

/// The unit in which a scenario's detection times are whole numbers.
pub(crate) fn detect_unit(model: &Model<'_>, s: &Scenario) -> i64 {
    detect_unit_of(model.eval_ms, model.scrape_ms, s)
}

/// [`detect_unit`] from the plan's evaluation and scrape intervals.
pub(crate) fn detect_unit_of(eval_ms: i64, scrape_ms: i64, s: &Scenario) -> i64 {
    let mut u = gcd(eval_ms, scrape_ms.max(1));
    if let Some(f) = &s.fault
        && !matches!(f.kind, FaultKind::Load { .. })
    {
        u = gcd(u, f.onset_ms);
    }
    u.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::GatePolicy;
    use crate::sim::scenario;
    use crate::source::Source;
    use std::path::Path;

    /// Lock-step batches share only what depends on time and on their trials' course: a
    /// trial's numbers, and so every tally, are the same whatever the batch it runs in,
    /// under a gate policy that holds too (held trials part into groups of their own).
    #[test]
    fn a_trials_numbers_do_not_depend_on_its_batch() {
        for policy in [GatePolicy::Rollback, hold()] {
            let mut lowered = lowered("lawsker.yaml");
            lowered.plan.gate_policy = policy;
            batches_agree(&lowered);
        }
    }

    /// A gate policy that holds up to 4h, then stays held.
    fn hold() -> GatePolicy {
        GatePolicy::Hold {
            max: crate::model::Duration::from_millis(4 * 3_600_000).expect("positive"),
            then: crate::model::AfterMaxHold::Stay,
        }
    }

    fn batches_agree(lowered: &LoweredPlan) {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let plan = &lowered.plan;
        // The built-in scenarios, and a file with overdispersion (trials plan their own draws).
        for file in [
            "simulations/lawsker.yaml",
            "simulations/lawsker-tuning.yaml",
        ] {
            let source = Source::load_as(&root.join(file), crate::source::Kind::Scenarios)
                .expect("readable");
            let scenarios = scenario::load(&source, plan, &|p| p.to_string())
                .0
                .unwrap_or_else(|| panic!("{file} loads"));
            let settings = Settings {
                slice: crate::sim::montecarlo::Slice::WHOLE,
                seed: 11,
                jobs: 2,
                trials: 10,
                semantics: Semantics::Prometheus3,
            };
            let tallies = |batch| -> Vec<Tally> {
                run_batched(lowered, &scenarios, settings, (batch, None), &mut |_, _| {})
                    .results
                    .into_iter()
                    .map(|r| r.tally)
                    .collect()
            };
            let whole = tallies(Some(BATCH));
            assert!(whole.iter().any(|t| t.rollbacks > 0), "{file}: no rollback");
            assert_eq!(tallies(Some(1)), whole, "{file}: one trial per batch");
            assert_eq!(tallies(Some(3)), whole, "{file}: batches of 3");
            assert_eq!(
                tallies(None),
                whole,
                "{file}: batches sized to the memory budget"
            );
        }
    }

    /// The example plan `name`, lowered.
    fn lowered(name: &str) -> LoweredPlan {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        crate::pipeline::compile_file(&root.join("plans").join(name))
            .expect("example plan loads")
            .plan
            .expect("example plan is valid")
    }

    /// The traffic and baseline of Lawsker's scenario file (the built-in scenarios and
    /// models of its custom metrics), with `scenarios`.
    fn with_scenarios(plan: &LoweredPlan, scenarios: Vec<Scenario>) -> Scenarios {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let source = Source::load_as(
            &root.join("simulations/lawsker.yaml"),
            crate::source::Kind::Scenarios,
        )
        .expect("readable");
        let mut s = scenario::load(&source, &plan.plan, &|p| p.to_string())
            .0
            .expect("Lawsker's scenarios load");
        s.scenarios = scenarios;
        s
    }

    fn healthy() -> Scenario {
        Scenario {
            name: "healthy".into(),
            description: String::new(),
            fault: None,
        }
    }

    /// A fault of `kind` from `onset_ms` that changes nothing (the scenario loader refuses
    /// one: `fault-without-effect`).
    fn no_op(kind: FaultKind, onset_ms: i64) -> Scenario {
        Scenario {
            name: format!("no-op {kind:?}"),
            description: String::new(),
            fault: Some(crate::sim::scenario::Fault::bare(kind, onset_ms)),
        }
    }

    fn settings(trials: u64, jobs: usize) -> Settings {
        Settings {
            slice: crate::sim::montecarlo::Slice::WHOLE,
            seed: 5,
            jobs,
            trials,
            semantics: Semantics::Prometheus3,
        }
    }

    /// The twin construction: a fault that changes nothing is never caught, and its
    /// trials roll back anyway exactly as often as the healthy ones roll back at all (the
    /// same count, not within intervals), whether the twins are the file's fault-free
    /// scenario or an extra pass, at any thread count, under either gate policy.
    #[test]
    fn a_fault_that_changes_nothing_is_never_caught() {
        for policy in [GatePolicy::Rollback, hold()] {
            let mut plan = lowered("lawsker.yaml");
            plan.plan.gate_policy = policy;
            a_fault_that_changes_nothing_is_never_caught_with(&plan);
        }
    }

    fn a_fault_that_changes_nothing_is_never_caught_with(plan: &LoweredPlan) {
        // Onsets early enough that most of the rollbacks come after them.
        let kinds = [
            (FaultKind::Step, 60_000),
            (FaultKind::Leak { ramp_ms: 7_200_000 }, 120_000),
            (
                FaultKind::Bursts {
                    every_ms: 3_600_000,
                    lasting_ms: 600_000,
                },
                0,
            ),
            (FaultKind::Partial { users: 0.2 }, 30_000),
        ];
        let faulty: Vec<Scenario> = kinds.iter().map(|&(k, o)| no_op(k, o)).collect();
        let with_healthy = with_scenarios(
            plan,
            std::iter::once(healthy()).chain(faulty.clone()).collect(),
        );
        let without = with_scenarios(plan, faulty);
        for jobs in [1, 3] {
            let run = run(plan, &with_healthy, settings(120, jobs), &mut |_, _| {});
            let twins = run.twins.expect("a faulty scenario has twins");
            assert_eq!(twins.scenario, Some(0));
            let healthy = &run.results[0].tally;
            assert_eq!(&twins.tally, healthy);
            assert!(healthy.false_rollbacks > 40, "{}", healthy.false_rollbacks);
            for r in &run.results[1..] {
                let t = &r.tally;
                let name = &r.scenario.name;
                assert_eq!(t.caught, 0, "{name}");
                // The twin comparison alone: the trials are their twins, draw for draw.
                assert_eq!(t.twin_not_yet, 0, "{name}");
                assert_eq!(t.rolled_back_anyway, healthy.false_rollbacks, "{name}");
                assert_eq!(t.anyway_by_rule, healthy.first_rule, "{name}");
                assert_eq!(t.rollbacks_by_phase, healthy.rollbacks_by_phase, "{name}");
                // Not vacuous: most rollbacks came after the onset.
                assert!(t.detected * 2 > t.rollbacks, "{name}: {}", t.detected);
                assert_eq!(t.detect_steps.total(), 0, "{name}");
                // And they held as their twins did.
                assert_eq!(t.held_trials, healthy.held_trials, "{name}");
                assert_eq!(t.hold_steps, healthy.hold_steps, "{name}");
            }
            if matches!(plan.plan.gate_policy, GatePolicy::Hold { .. }) {
                // Not vacuous: some trials held (most roll back within the first phase).
                assert!(healthy.held_trials >= 3, "{}", healthy.held_trials);
            }
            // A gate fails a phase only in trials that reached its end.
            let rules = plan.rules.len();
            for r in &run.results {
                let t = &r.tally;
                for (i, &failed) in t.gate_failures.iter().enumerate() {
                    assert!(
                        failed <= t.completed_phase[i / rules],
                        "{}",
                        r.scenario.name
                    );
                }
            }
            // Without a fault-free scenario an extra pass gives the same twins.
            let extra = super::run(plan, &without, settings(120, jobs), &mut |_, _| {});
            let twins = extra.twins.expect("twins");
            assert_eq!(twins.scenario, None);
            assert_eq!(&twins.tally, healthy);
            for (a, b) in extra.results.iter().zip(&run.results[1..]) {
                assert_eq!(a.tally, b.tally, "{}", a.scenario.name);
            }
        }
    }

    /// A scrape offset drawn per trial (the default): trial `t` runs exactly as it runs with
    /// its class's offset fixed (`t mod 8`, the midpoint of that eighth of the scrape
    /// interval), its healthy twin too, at any thread count; so the run's figures are the
    /// classes' average of the fixed-offset figures, trial for trial.
    #[test]
    fn a_per_trial_offset_runs_each_trial_at_its_class_offset() {
        let plan = lowered("lawsker.yaml");
        let mut fault = no_op(FaultKind::Step, 1_800_000);
        if let Some(f) = &mut fault.fault {
            f.error_rate = Some(0.03);
        }
        let scenarios = with_scenarios(&plan, vec![healthy(), fault]);
        assert_eq!(scenarios.exposition.scrape_offset_ms, None, "the default");
        let offsets = scenarios.exposition.offsets_ms(15_000);
        assert_eq!(offsets.len(), 8);
        assert_eq!((offsets[0], offsets[1], offsets[7]), (937, 2812, 14062));
        let trials = 40u64;
        let rules = &plan.rules;
        // Each trial's outcome, per scenario; the tallies.
        let run = |s: &Scenarios, jobs| {
            let r = run_recorded(
                &plan,
                (s, None),
                settings(trials, jobs),
                rules,
                &mut |_, _| {},
            );
            let tallies: Vec<Tally> = r.results.iter().map(|r| r.tally.clone()).collect();
            (r.trials, tallies)
        };
        let (outcomes, tallies) = run(&scenarios, 1);
        for jobs in [2, 3] {
            assert_eq!(
                run(&scenarios, jobs),
                (outcomes.clone(), tallies.clone()),
                "{jobs} jobs"
            );
        }
        let (mut caught, mut rolled_back) = (0, 0);
        for (class, &offset) in offsets.iter().enumerate() {
            let mut fixed = scenarios.clone();
            fixed.exposition.scrape_offset_ms = Some(offset);
            let (fixed, _) = run(&fixed, 2);
            for (si, outcomes) in outcomes.iter().enumerate() {
                for t in (class..trials as usize).step_by(offsets.len()) {
                    assert_eq!(
                        outcomes[t], fixed[si][t],
                        "scenario {si}, trial {t} at {offset} ms"
                    );
                    caught += u64::from(outcomes[t].caught);
                    rolled_back += u64::from(outcomes[t].rolled_back);
                }
            }
        }
        let t = &tallies[1];
        assert_eq!(
            caught, t.caught,
            "every trial compared once, the twins in their classes"
        );
        assert!(t.caught > 5 && rolled_back > 20, "{t:?}");
    }

    /// A strong fault from the first minutes is caught in nearly every trial: its healthy
    /// twin has almost never rolled back by then.
    #[test]
    fn a_strong_fault_is_caught() {
        let plan = lowered("lawsker.yaml");
        let mut strong = no_op(FaultKind::Step, 60_000);
        if let Some(f) = &mut strong.fault {
            f.error_rate = Some(0.6);
        }
        let scenarios = with_scenarios(&plan, vec![strong]);
        let run = run(&plan, &scenarios, settings(400, 2), &mut |_, _| {});
        let t = &run.results[0].tally;
        assert!(t.caught >= 392, "caught {} of 400", t.caught);
        assert_eq!(t.caught + t.rolled_back_anyway, t.rollbacks);
        assert_eq!(t.escaped, 0);
        assert_eq!(t.detect_steps.total(), t.caught);
    }

    proptest::proptest! {
        #![proptest_config(proptest::test_runner::Config { failure_persistence: None, ..Default::default() })]

        /// The slices of a run are its trials, each once, in order, as even as whole
        /// trials allow.
        #[test]
        fn slices_partition_the_trials(total in 0u64..=crate::limits::MAX_TRIALS, count in 1u64..=crate::limits::MAX_SHARDS) {
            let mut next = 0;
            for k in 0..count {
                let r = Slice::new(k, count).unwrap().trials(total);
                proptest::prop_assert_eq!(r.start, next);
                let len = r.end - r.start;
                proptest::prop_assert!(len == total / count || len == total / count + 1);
                next = r.end;
            }
            proptest::prop_assert_eq!(next, total);
            proptest::prop_assert!(Slice::new(count, count).is_none());
        }
    }

    /// Batches and threads fit the ring memory budget (one lane at the least), and runs
    /// with small rings keep full batches on every thread.
    #[test]
    fn sharing_fits_the_memory_budget() {
        assert_eq!(sharing(4_608, 2), (BATCH, 2));
        assert_eq!(sharing(4_608, 256), (227, 256));
        for per_lane in [1, 4_608, 1 << 20, 19 << 20, 300 << 20] {
            for jobs in [1, 2, 3, 64, 256] {
                let (batch, threads) = sharing(per_lane, jobs);
                assert!((1..=BATCH).contains(&batch) && (1..=jobs).contains(&threads));
                let live = batch as usize * threads * per_lane;
                assert!(
                    live <= RING_MEMORY || (batch, threads) == (1, 1),
                    "{per_lane} B a lane, {jobs} jobs: {batch} x {threads}"
                );
            }
        }
    }
}
