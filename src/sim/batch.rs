//! A lock-step batch of Monte Carlo trials of one scenario: its trials advance together,
//! one evaluation at a time, sharing what depends only on the time ([`Clock`]), each with
//! its own random stream ([`Lanes`]) and alert states ([`Outcomes`]).
//!
//! Besides the time, the lock step shares the release's course: the phase, and when each
//! phase started. Under a gate policy that holds, a phase's end can send some trials on
//! another course than the rest (held while the rest advance, or advancing while the rest
//! stay held): they part into a group of their own, with its own clock forked from the
//! old one (the same ring slots) and its own outcomes. A group's trials have had the same
//! course so far, so what a group decides for them (which spans fall in which phase,
//! which rules run, what is drawn) depends only on each trial's own history, and a
//! trial's numbers still do not depend on its batch. Without holds a batch is one group.
//!
//! The trials come from the synthetic model ([`Lanes`], with its [`Clock`]) or from a
//! recording ([`RecordedLanes`]); the rest of the batch does not tell them apart.

use crate::lower::AlertRule;
use crate::sim::evaluator::{Columns, Schedule, Verdict};
use crate::sim::outcomes::{Fate, Outcomes, RuleSet, decided};
use crate::sim::recorded::{RecordedLanes, RecordedModel, SparseLanes};
use crate::sim::synth::{
    Clock, Demand, Exposure, FaultModel, Lanes, Model, Plans, QueryFailure, Streams,
};

/// What sees each group after its evaluation: the group, and the lanes to end (with their
/// verdicts), to which it may add.
pub(crate) type Inspect<'i> = dyn FnMut(&Group<'_, '_>, &mut Vec<(usize, Verdict)>) + 'i;

/// Where a group's trials come from: the synthetic model (its lanes and their clock), or a
/// recording.
// A batch holds a group or a few: their size does not matter, and boxing would add a
// pointer to every step.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Trials<'m, 'a> {
    Synthetic {
        clock: Clock<'m, 'a>,
        lanes: Lanes<'m, 'a>,
    },
    Recorded(RecordedLanes<'m, 'a>),
    /// From a recording, drawn only where the rules' rates read ([`SparseLanes`]).
    Sparse(SparseLanes<'m, 'a>),
}

impl Trials<'_, '_> {
    /// Every lane's metric values at the latest evaluation.
    pub(crate) fn values(&self) -> Columns<'_> {
        match self {
            Trials::Synthetic { lanes, .. } => lanes.values(),
            Trials::Recorded(r) => r.values(),
            Trials::Sparse(r) => r.values(),
        }
    }

    pub(crate) fn exposure(&self, l: usize) -> &Exposure {
        match self {
            Trials::Synthetic { lanes, .. } => lanes.exposure(l),
            Trials::Recorded(r) => r.exposure(l),
            Trials::Sparse(r) => r.exposure(l),
        }
    }

    /// The first query evaluation that failed in lane `l`'s trial, if one did.
    pub(crate) fn query_failure(&self, l: usize) -> Option<&QueryFailure> {
        match self {
            Trials::Synthetic { lanes, .. } => lanes.query_failure(l),
            Trials::Recorded(r) => r.query_failure(l),
            Trials::Sparse(r) => r.query_failure(l),
        }
    }

    /// Per query slot, the lane evaluations that computed it (synthetic query metrics).
    fn query_steps(&self) -> &[u64] {
        match self {
            Trials::Synthetic { lanes, .. } => lanes.query_steps(),
            Trials::Recorded(_) | Trials::Sparse(_) => &[],
        }
    }

    fn swap_remove(&mut self, l: usize) {
        match self {
            Trials::Synthetic { lanes, .. } => lanes.swap_remove(l),
            Trials::Recorded(r) => r.swap_remove(l),
            Trials::Sparse(r) => r.swap_remove(l),
        }
    }

    /// An empty copy with room for `width` lanes, at the same time.
    fn fork(&self, width: usize) -> Self {
        match self {
            Trials::Synthetic { clock, lanes } => Trials::Synthetic {
                clock: clock.fork(),
                lanes: lanes.empty(width),
            },
            Trials::Recorded(r) => Trials::Recorded(r.empty(width)),
            Trials::Sparse(r) => Trials::Sparse(r.empty(width)),
        }
    }

    fn adopt(&mut self, from: &Self, l: usize) {
        match (self, from) {
            (Trials::Synthetic { lanes, .. }, Trials::Synthetic { lanes: f, .. }) => {
                lanes.adopt(f, l)
            }
            (Trials::Recorded(r), Trials::Recorded(f)) => r.adopt(f, l),
            (Trials::Sparse(r), Trials::Sparse(f)) => r.adopt(f, l),
            _ => unreachable!("a group forks into its own kind"),
        }
    }
}

/// Trials that have had the same course so far, one lane each.
pub(crate) struct Group<'m, 'a> {
    pub(crate) lanes: Trials<'m, 'a>,
    pub(crate) outcomes: Outcomes<'m>,
    /// Lane -> trial (lanes move when a trial ends or parts).
    pub(crate) trial_of: Vec<u64>,
}

impl Group<'_, '_> {
    /// Drops lane `l`: the last lane takes its place.
    fn swap_remove(&mut self, l: usize) {
        self.lanes.swap_remove(l);
        self.outcomes.swap_remove(l);
        self.trial_of.swap_remove(l);
    }
}

/// A batch of trials of one scenario, in lock step.
pub(crate) struct Batch<'m, 'a> {
    groups: Vec<Group<'m, 'a>>,
    /// The spans' draw plans, shared by the groups' clocks.
    plans: Plans,
    /// Lane evaluations run (a lane at one evaluation time).
    steps: u64,
    /// Rule evaluations run, over the groups that are gone.
    evaluated: u64,
    /// Per query slot, lane evaluations that computed it, over the groups that are gone.
    query_steps: Vec<u64>,
    fates: Vec<Fate>,
    ended: Vec<(usize, Verdict)>,
}

impl<'m, 'a> Batch<'m, 'a> {
    /// The trials `trials`, seeded by `seeds`, on `schedule`: synthetic, or built from
    /// the recording of `recorded`.
    pub(crate) fn new(
        (model, faults, recorded): (
            &'m Model<'a>,
            &'m FaultModel<'m>,
            Option<&'m RecordedModel<'a>>,
        ),
        rules: &'m [AlertRule],
        schedule: &Schedule,
        trials: Vec<u64>,
        seeds: impl IntoIterator<Item = u64>,
    ) -> Self {
        let seeds: Vec<u64> = seeds.into_iter().collect();
        debug_assert_eq!(seeds.len(), trials.len());
        let lanes = match recorded {
            Some(r) => match r.sparse() {
                Some(sparse) => Trials::Sparse(SparseLanes::new(
                    r,
                    sparse,
                    faults,
                    &seeds,
                    model.scrape_offset_ms,
                )),
                None => Trials::Recorded(RecordedLanes::new(
                    r,
                    faults,
                    &seeds,
                    model.scrape_offset_ms,
                )),
            },
            None => Trials::Synthetic {
                clock: Clock::new(model, faults),
                lanes: Lanes::new(
                    model,
                    faults,
                    Streams::seeded(seeds.iter().copied()),
                    &seeds,
                ),
            },
        };
        let group = Group {
            outcomes: Outcomes::new(rules, schedule, model.eval_ms, seeds.len()),
            lanes,
            trial_of: trials,
        };
        Batch {
            groups: vec![group],
            plans: Plans::default(),
            steps: 0,
            evaluated: 0,
            query_steps: Vec::new(),
            fates: Vec::new(),
            ended: Vec::new(),
        }
    }

    /// Sets aside the rules `rules` before the first step ([`Outcomes::watch_only`]).
    pub(crate) fn watch_only(&mut self, rules: &[usize]) {
        for g in &mut self.groups {
            g.outcomes.watch_only(rules);
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.groups.is_empty()
    }

    /// Lane evaluations run so far.
    pub(crate) fn steps(&self) -> u64 {
        self.steps
    }

    /// Per query slot, lane evaluations that computed the query metric so far.
    pub(crate) fn query_steps(&self) -> Vec<u64> {
        let mut out = self.query_steps.clone();
        for g in &self.groups {
            add_into(&mut out, g.lanes.query_steps());
        }
        out
    }

    /// Rule evaluations run so far.
    pub(crate) fn evaluated(&self) -> u64 {
        self.evaluated
            + self
                .groups
                .iter()
                .map(|g| g.outcomes.evaluated())
                .sum::<u64>()
    }

    /// Evaluation time `ts` (every evaluation interval from 0, until the batch is empty):
    /// first the phases' ends, which end trials (a failing gate, the watch's end) or part
    /// them; then each group's evaluation, after which `inspect` sees the group (and may
    /// end more of its lanes, adding them with a verdict to the list it is given), and the
    /// trials whose rollback rule fired end. `finish(group, lane, verdict)` sees each trial
    /// that ends before it leaves.
    pub(crate) fn step(
        &mut self,
        ts: i64,
        demand: &dyn Fn(RuleSet) -> &'m Demand,
        finish: &mut dyn FnMut(&Group<'_, '_>, usize, Verdict),
        inspect: &mut Inspect<'_>,
    ) {
        // Groups that part are processed at `ts` too (their phase may end again).
        let mut g = 0;
        while g < self.groups.len() {
            while let Some(fates) = self.groups[g].outcomes.enter(ts) {
                self.fates.clear();
                self.fates.extend_from_slice(fates);
                let parting = self.fates.iter().filter(|&&f| f == Fate::Parts).count();
                let mut new = (parting > 0).then(|| {
                    let from = &self.groups[g];
                    Group {
                        lanes: from.lanes.fork(parting),
                        outcomes: from.outcomes.parting(parting),
                        trial_of: Vec::with_capacity(parting),
                    }
                });
                let group = &mut self.groups[g];
                // Walking down, the lane moved into a freed place has been seen already.
                for (l, &fate) in self.fates.iter().enumerate().rev() {
                    match fate {
                        Fate::Goes => continue,
                        Fate::Ends(v) => finish(group, l, v),
                        Fate::Parts => {
                            let new = new.as_mut().expect("a parting group");
                            new.lanes.adopt(&group.lanes, l);
                            new.outcomes.adopt(&mut group.outcomes, l);
                            new.trial_of.push(group.trial_of[l]);
                        }
                    }
                    group.swap_remove(l);
                }
                self.groups.extend(new);
            }
            g += 1;
        }
        for group in &mut self.groups {
            if group.trial_of.is_empty() {
                continue;
            }
            let progress = group.outcomes.progress();
            match &mut group.lanes {
                Trials::Synthetic { clock, lanes } => {
                    let step = clock.advance(ts, progress, &mut self.plans);
                    lanes.advance(
                        (step, &self.plans),
                        progress.schedule,
                        demand(group.outcomes.rule_set(ts)),
                    );
                }
                Trials::Recorded(r) => {
                    r.advance(ts, progress.schedule, group.outcomes.rule_set(ts))
                }
                Trials::Sparse(r) => r.advance(ts, progress.schedule, group.outcomes.rule_set(ts)),
            }
            self.steps += group.trial_of.len() as u64;
            self.ended.clear();
            self.ended
                .extend(decided(group.outcomes.evaluate(ts, group.lanes.values())));
            let decided = self.ended.len();
            inspect(group, &mut self.ended);
            if self.ended.len() > decided {
                // In lane order, a lane once, its own verdict first.
                self.ended.sort_by_key(|&(l, _)| l);
                self.ended.dedup_by_key(|&mut (l, _)| l);
            }
            for &(l, v) in self.ended.iter().rev() {
                finish(group, l, v);
                group.swap_remove(l);
            }
        }
        let (evaluated, query_steps) = (&mut self.evaluated, &mut self.query_steps);
        self.groups.retain(|g| {
            let keep = !g.trial_of.is_empty();
            if !keep {
                *evaluated += g.outcomes.evaluated();
                add_into(query_steps, g.lanes.query_steps());
            }
            keep
        });
    }
}

/// Adds `from` into `to` entry by entry, `to` growing to `from`'s length.
pub(crate) fn add_into(to: &mut Vec<u64>, from: &[u64]) {
    if to.len() < from.len() {
        to.resize(from.len(), 0);
    }
    for (a, b) in to.iter_mut().zip(from) {
        *a += b;
    }
}
