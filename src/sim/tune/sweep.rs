//! The one pass over the trials that every setting of a tune reads: each trial is drawn
//! once, as `plan simulate` draws it (the same seed, the same streams), and every setting
//! of every knob watches it.
//!
//! The watched rules are set aside from the trial's own evaluation
//! ([`crate::sim::outcomes::Outcomes::watch_only`]), so no setting ends a trial: it runs
//! until the release completes (or the gates kept as written end it). That is sound
//! because a rollback rule's setting does not change the release's course before it fires
//! (the course depends on the gates alone), nor what is drawn (which depends on the
//! course and the fault, not on the rules: the same metrics are computed at the same
//! evaluations). Under the gate policy `rollback` the same holds for a gate's threshold:
//! a gate only ends a trial, at a phase's end. So a trial under any setting is the pass's
//! trial cut at the first moment one of the setting's rules fires (or a gate of it fails
//! its phase): the pass keeps, per trial and setting of each knob, that first moment and
//! the requests the canary had served since the fault's onset by then. (What is drawn
//! depends on the model, which is built for every threshold tried: the latency buckets a
//! trial tracks are those its thresholds tell apart.) The same holds for a rule's
//! `min_requests` guard: it only decides whether the rule counts at an evaluation, from a
//! request count every setting reads alike ([`super::guards`]).
//!
//! A trial stops early once every setting of some knob has fired: under any setting it
//! had ended by then. A knob kept as written has one setting, so a one-rule sweep stops
//! about where `plan simulate` stops.

use super::guards;
use super::ladder::{Watches, push_guarded, run_needed};
use super::space::Knob;
use super::space::Variant;
use crate::lower::{LoweredPlan, RuleKind};
use crate::sim::batch::{Batch, Group};
use crate::sim::evaluator::{UNKNOWN, Verdict};
use crate::sim::montecarlo::{
    Chunk, Demands, RECORDED_BATCH, Settings, chunks, extra_twin, moved_rules, needs_extra_twins,
    sharing, trial_seed,
};
use crate::sim::outcomes::RuleSet;
use crate::sim::recorded::{Baseline, RecordedModel};
use crate::sim::scenario::{FaultKind, Scenario, Scenarios};
use crate::sim::synth::{FaultModel, Lanes, Model, QueryFailure};
use std::cell::RefCell;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// No firing: the setting never ended the trial.
pub(crate) const NEVER: u32 = u32::MAX;

/// How a trial of the pass ended, the watched rules aside.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Trial {
    /// Completed, or ended by what was kept as written (a gate under `hold`); or cut
    /// short (`cut`), when every setting of some knob had fired: under any setting the
    /// trial had ended by then, so how it would have gone on matters to none.
    pub(crate) end: Verdict,
    pub(crate) cut: bool,
    /// When the fault began (a `load` fault: first showed), None without one; `i64::MAX`
    /// for a `load` fault that never showed.
    pub(crate) onset: Option<i64>,
    /// The evaluation after whose draws the onset was known: 0 but for a `load` fault,
    /// whose onset is only known once the load was drawn ([`NEVER`] if it never was). A
    /// rollback before then ended the trial before its fault showed.
    pub(crate) onset_seen: u32,
    /// Requests the canary served from the onset to the end.
    pub(crate) exposed: u64,
    /// When the last phase (100%) started, [`UNKNOWN`] if the trial never reached it.
    pub(crate) full_at: i64,
}

/// One scenario's pass.
pub(crate) struct Run {
    /// Whether the scenario has a fault.
    pub(crate) faulty: bool,
    pub(crate) trials: Vec<Trial>,
    /// Per trial, per variant (all knobs' variants in a row): the evaluation (a multiple
    /// of the evaluation interval) at which it first fired, or a gate of it failed its
    /// phase; [`NEVER`].
    pub(crate) fires: Vec<u32>,
    /// Per trial and variant, as `fires`: the requests the canary had served since the
    /// fault's onset by then (saturating). Faulty scenarios only.
    pub(crate) exposed: Vec<u32>,
    /// Per rule: whether the fault can move its metric.
    pub(crate) moves: Vec<bool>,
    /// The unit of detection times ([`crate::sim::montecarlo::detect_unit`]).
    #[cfg(test)]
    pub(crate) detect_unit_ms: i64,
}

/// The pass over every scenario (the file's, then the extra twin pass if one is needed).
pub(crate) struct Sweep {
    pub(crate) knobs: Vec<Knob>,
    /// Per knob, its first variant's place in a trial's row.
    pub(crate) offsets: Vec<usize>,
    /// Variants per trial row.
    pub(crate) width: usize,
    pub(crate) runs: Vec<Run>,
    /// The run whose trials are the healthy twins, when some scenario is faulty.
    pub(crate) twin: Option<usize>,
    /// How many of `runs` are the scenario file's.
    pub(crate) in_file: usize,
    pub(crate) eval_ms: i64,
    /// The plan's phases.
    pub(crate) phases: usize,
    /// Which of the tune's plans (one per rate window tried) it ran: 0 for the plan as
    /// written.
    pub(crate) window: usize,
    /// Which of the tune's passes it is.
    pub(crate) pass: Pass,
}

/// The tune's passes over the trials: the coarse grid, then the refinement around the
/// coarse recommendation ([`super::refine`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Pass {
    Coarse,
    Refined,
}

impl Pass {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Pass::Coarse => "coarse",
            Pass::Refined => "refined",
        }
    }
}

/// Why a sweep gives no figures.
#[derive(Debug, Clone)]
pub(crate) enum Stop {
    /// A relative rule (index into the lowered rules) met a negative stable value, for
    /// which the ladder cannot order its thresholds (see
    /// [`super::ladder::Ladder::holding`]).
    Disordered { rule: usize },
    /// A query had no single value: the scenario (by name), the lowest trial, the failure
    /// (as [`crate::sim::montecarlo::MonteCarlo::query_failure`]).
    Query(String, u64, QueryFailure),
}

/// Runs the pass. Its numbers do not depend on `settings.jobs`.
pub(crate) fn run(
    lowered: &LoweredPlan,
    (scenarios, baseline): (&Scenarios, Option<Baseline<'_>>),
    knobs: Vec<Knob>,
    settings: Settings,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<Sweep, Stop> {
    let model = super::space::model_rules(lowered, &knobs);
    run_for(
        lowered,
        (scenarios, baseline),
        knobs,
        &model,
        settings,
        progress,
    )
}

/// [`run`] with the model built for `model_rules` (at least
/// [`super::space::model_rules`] of these knobs): the refining pass builds it for the
/// coarse pass's thresholds too, so that its trials draw what the coarse pass's drew
/// ([`super::refine`]). Trials are built from `baseline` when given, as `plan simulate
/// --baseline` builds them.
pub(crate) fn run_for(
    lowered: &LoweredPlan,
    (scenarios, baseline): (&Scenarios, Option<Baseline<'_>>),
    knobs: Vec<Knob>,
    model_rules: &[crate::lower::AlertRule],
    settings: Settings,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<Sweep, Stop> {
    let (plan, rules) = (&lowered.plan, &lowered.rules);
    // One model per offset class (trial `t` runs on class `t mod len`), as a simulation
    // runs them; what does not depend on the offset comes from the first.
    let models = Model::classes(plan, scenarios, model_rules, settings.semantics);
    let model = &models[0];
    let extra = extra_twin();
    let mut runs: Vec<&Scenario> = scenarios.scenarios.iter().collect();
    if needs_extra_twins(scenarios) {
        runs.push(&extra);
    }
    let any_faulty = runs.iter().any(|s| s.fault.is_some());
    let twin = runs
        .iter()
        .position(|s| s.fault.is_none())
        .filter(|_| any_faulty);
    let faults: Vec<Vec<FaultModel<'_>>> = runs
        .iter()
        .map(|s| FaultModel::classes(&models, s.fault.as_ref()))
        .collect();
    let mut offsets = Vec::with_capacity(knobs.len());
    let mut width = 0;
    for k in &knobs {
        offsets.push(width);
        width += k.variants();
    }
    let watched: Vec<usize> = knobs.iter().map(|k| k.rule).collect();
    let (batch, jobs) = sharing(Lanes::ring_bytes_per_lane(model), settings.jobs);
    let recorded = baseline.map(|b| b.model(plan, model_rules, model));
    // A recorded trial keeps its own series: small batches keep memory flat.
    let batch = if recorded.is_some() {
        RECORDED_BATCH
    } else {
        batch
    };
    // The metrics every setting reads: each guard's request count too.
    let demands: Vec<Demands> = models
        .iter()
        .map(|m| Demands::new(m, model_rules))
        .collect();
    let job = Job {
        models: &models,
        faults: &faults,
        runs: &runs,
        lowered,
        knobs: &knobs,
        offsets: &offsets,
        width,
        watched: &watched,
        demands: &demands,
        recorded: recorded.as_ref(),
        seed: settings.seed,
    };
    let trials = settings.trials;
    let chunks = chunks(0..trials, models.len(), batch);
    let per_run = chunks.len() as u64;
    let total = per_run * runs.len() as u64;
    let next = AtomicU64::new(0);
    let done = AtomicU64::new(0);
    let pieces: Mutex<Vec<(usize, Chunk, Piece)>> = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        let workers: Vec<_> = (0..jobs)
            .map(|_| {
                s.spawn(|| {
                    loop {
                        let c = next.fetch_add(1, Ordering::Relaxed);
                        if c >= total {
                            break;
                        }
                        let (si, chunk) = ((c / per_run) as usize, chunks[(c % per_run) as usize]);
                        let piece = job.batch(si, chunk);
                        pieces
                            .lock()
                            .expect("sweep results")
                            .push((si, chunk, piece));
                        done.fetch_add(chunk.count, Ordering::Relaxed);
                    }
                })
            })
            .collect();
        let all = trials * runs.len() as u64;
        let mut last = u64::MAX;
        while workers.iter().any(|w| !w.is_finished()) {
            let d = done.load(Ordering::Relaxed);
            if d != last {
                progress(d, all);
                last = d;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        for w in workers {
            // A worker panic is a bug; surface it rather than report partial numbers.
            w.join().expect("tune worker");
        }
        progress(all, all);
    });
    let mut pieces = pieces.into_inner().expect("sweep results");
    pieces.sort_by_key(|&(si, chunk, _)| (si, chunk.class, chunk.first));
    if let Some(rule) = pieces.iter().filter_map(|(_, _, p)| p.disordered).min() {
        return Err(Stop::Disordered { rule });
    }
    // The first scenario (in the file's order) where a query failed, its lowest trial.
    if let Some((si, (trial, f))) = pieces
        .iter()
        .filter_map(|(si, _, p)| p.query_failure.clone().map(|q| (*si, q)))
        .min_by_key(|(si, (trial, _))| (*si, *trial))
    {
        return Err(Stop::Query(runs[si].name.clone(), trial, f));
    }
    let n = trials as usize;
    let mut out: Vec<Run> = runs
        .iter()
        .map(|&s| Run {
            faulty: s.fault.is_some(),
            trials: Vec::with_capacity(n),
            fires: vec![NEVER; n * width],
            exposed: if s.fault.is_some() {
                vec![0; n * width]
            } else {
                Vec::new()
            },
            moves: moved_rules(model, recorded.as_ref().map(|r| (r, scenarios)), s, rules),
            #[cfg(test)]
            detect_unit_ms: crate::sim::montecarlo::detect_unit(model, s),
        })
        .collect();
    // Each batch's trials to their places: the batches are the offset classes' trials.
    let mut ended: Vec<Vec<Option<Trial>>> = runs.iter().map(|_| vec![None; n]).collect();
    for (si, chunk, p) in pieces {
        let run = &mut out[si];
        for (i, (trial, t)) in chunk.trials().zip(p.trials).enumerate() {
            let (row, at) = (i * width, trial as usize * width);
            ended[si][trial as usize] = Some(t);
            run.fires[at..at + width].copy_from_slice(&p.fires[row..row + width]);
            if !p.exposed.is_empty() {
                run.exposed[at..at + width].copy_from_slice(&p.exposed[row..row + width]);
            }
        }
    }
    for (run, ended) in out.iter_mut().zip(ended) {
        run.trials = ended
            .into_iter()
            .map(|t| t.expect("every trial runs"))
            .collect();
    }
    Ok(Sweep {
        knobs,
        offsets,
        width,
        runs: out,
        twin,
        in_file: scenarios.scenarios.len(),
        eval_ms: model.eval_ms,
        phases: plan.phases.len(),
        window: 0,
        pass: Pass::Coarse,
    })
}

/// What one batch of trials gives.
struct Piece {
    trials: Vec<Trial>,
    fires: Vec<u32>,
    exposed: Vec<u32>,
    disordered: Option<usize>,
    query_failure: Option<(u64, QueryFailure)>,
}

/// Everything a worker reads.
struct Job<'r, 's> {
    /// Per offset class, its model; per scenario of `runs`, per class, its faults.
    models: &'r [Model<'s>],
    faults: &'r [Vec<FaultModel<'r>>],
    runs: &'r [&'s Scenario],
    lowered: &'r LoweredPlan,
    knobs: &'r [Knob],
    offsets: &'r [usize],
    width: usize,
    watched: &'r [usize],
    /// Per offset class.
    demands: &'r [Demands],
    /// The recording trials are built from, if any.
    recorded: Option<&'r RecordedModel<'r>>,
    seed: u64,
}

/// A batch's watches and what they recorded.
struct Records<'k> {
    knobs: &'k [Knob],
    offsets: &'k [usize],
    width: usize,
    /// Per knob and guard level.
    watches: Vec<Vec<Watches>>,
    /// Per trial: the phase of its latest evaluation.
    phase: Vec<usize>,
    /// Per trial: requests served since the onset, as of its latest evaluation.
    served: Vec<u64>,
    /// Per trial: [`Trial::onset_seen`].
    onset_seen: Vec<u32>,
    /// Per trial and knob: how many of the knob's variants have fired.
    recorded: Vec<u32>,
    /// Per trial: whether every variant of some knob has fired (the trial can stop).
    decided: Vec<bool>,
    /// Per trial, once it ended.
    trials: Vec<Option<Trial>>,
    fires: Vec<u32>,
    /// Empty for a fault-free scenario.
    exposed: Vec<u32>,
    disordered: Option<usize>,
    /// The lowest trial whose query failed, and how.
    query_failure: Option<(u64, QueryFailure)>,
}

impl Records<'_> {
    /// Trial `t`'s variant at `i` (in the batch's rows) of knob `ki` first fired at
    /// evaluation `at`, `served` requests after the onset.
    #[inline]
    fn record(&mut self, t: usize, ki: usize, i: usize, at: u32, served: u64) {
        debug_assert_eq!(self.fires[i], NEVER);
        self.fires[i] = at;
        if let Some(e) = self.exposed.get_mut(i) {
            *e = served.min(u64::from(u32::MAX)) as u32;
        }
        let n = &mut self.recorded[t * self.knobs.len() + ki];
        *n += 1;
        if *n as usize == self.knobs[ki].variants() {
            self.decided[t] = true;
        }
    }

    /// Trial `t` is in `phase` at evaluation `at`: if its phase changed, each watched gate
    /// that was firing at the old one's last evaluation failed it (at the requests served
    /// by then), and every alert starts over.
    fn enter(&mut self, t: usize, phase: usize, at: u32) {
        if self.phase[t] == phase {
            return;
        }
        self.phase[t] = phase;
        let served = self.served[t];
        let knobs = self.knobs;
        for (ki, k) in knobs.iter().enumerate() {
            if k.kind == RuleKind::Gate {
                // Gates fail their phase at most once: the trial ended there. (A gate has
                // no guard and one `for`.)
                let row = t * self.width + self.offsets[ki];
                for level in 0..self.watches[ki][0].firing(t, 0) {
                    let i = row + usize::from(level);
                    if self.fires[i] == NEVER {
                        self.record(t, ki, i, at, served);
                    }
                }
            }
            for w in &mut self.watches[ki] {
                w.reset(t);
            }
        }
    }
}

impl Job<'_, '_> {
    fn batch(&self, si: usize, chunk: Chunk) -> Piece {
        let model = &self.models[chunk.class];
        let eval_ms = model.eval_ms;
        let trials: Vec<u64> = chunk.trials().collect();
        let n = trials.len();
        let seeds: Vec<u64> = trials.iter().map(|&i| trial_seed(self.seed, i)).collect();
        let fault = self.runs[si].fault.as_ref();
        let load = fault.is_some_and(|f| matches!(f.kind, FaultKind::Load { .. }));
        let records = RefCell::new(Records {
            knobs: self.knobs,
            offsets: self.offsets,
            width: self.width,
            watches: self
                .knobs
                .iter()
                .map(|k| {
                    let needs: Vec<u32> = k.fors.iter().map(|&f| run_needed(f, eval_ms)).collect();
                    (0..k.guards.len())
                        .map(|_| Watches::new(n, k.ladder.len(), needs.clone()))
                        .collect()
                })
                .collect(),
            phase: vec![0; n],
            served: vec![0; n],
            onset_seen: vec![if load { NEVER } else { 0 }; n],
            recorded: vec![0; n * self.knobs.len()],
            decided: vec![false; n],
            trials: vec![None; n],
            fires: vec![NEVER; n * self.width],
            exposed: if fault.is_some() {
                vec![0u32; n * self.width]
            } else {
                Vec::new()
            },
            disordered: None,
            query_failure: None,
        });
        let rules = &self.lowered.rules;
        let last_phase = self.lowered.plan.phases.len() - 1;
        let mut batch = Batch::new(
            (model, &self.faults[si][chunk.class], self.recorded),
            rules,
            &model.schedule,
            trials,
            seeds,
        );
        batch.watch_only(self.watched);
        let demands = &self.demands[chunk.class];
        let mut ts = 0i64;
        while !batch.is_empty() {
            let at = (ts / eval_ms) as u32;
            batch.step(
                ts,
                &|set| demands.of(set),
                &mut |group: &Group<'_, '_>, lane, verdict: Verdict| {
                    let rec = &mut *records.borrow_mut();
                    let t = chunk.place(group.trial_of[lane]);
                    let schedule = group.outcomes.schedule();
                    // A phase that ended with no evaluation after it (a watch of length
                    // 0): its gates judge it at its end.
                    let ended_in = match verdict {
                        Verdict::Completed { .. } => last_phase,
                        Verdict::RolledBack { phase, .. } | Verdict::Held { phase, .. } => phase,
                    };
                    let phase = rec.phase[t];
                    if phase < ended_in {
                        let end = schedule.starts[phase + 1];
                        rec.enter(t, ended_in, (end + eval_ms - 1).div_euclid(eval_ms) as u32);
                    }
                    if let Some(f) = group.lanes.query_failure(lane) {
                        let trial = group.trial_of[lane];
                        if rec.query_failure.as_ref().is_none_or(|(t, _)| trial < *t) {
                            rec.query_failure = Some((trial, f.clone()));
                        }
                    }
                    let exposure = group.lanes.exposure(lane);
                    let onset = fault.map(|f| match f.kind {
                        FaultKind::Load { .. } => exposure.first_active.unwrap_or(i64::MAX),
                        _ => f.onset_ms,
                    });
                    rec.trials[t] = Some(Trial {
                        end: verdict,
                        cut: rec.decided[t],
                        onset,
                        onset_seen: rec.onset_seen[t],
                        exposed: exposure.requests,
                        full_at: schedule.starts[last_phase],
                    });
                },
                &mut |group: &Group<'_, '_>, ended: &mut Vec<(usize, Verdict)>| {
                    let rec = &mut *records.borrow_mut();
                    let phase = group.outcomes.phase();
                    let gates_run = group.outcomes.rule_set(ts) == RuleSet::RollbacksAndGates;
                    let values = group.lanes.values();
                    let lanes = group.trial_of.len();
                    let trial = |l: usize| chunk.place(group.trial_of[l]);
                    for l in 0..lanes {
                        rec.enter(trial(l), phase, at);
                    }
                    let knobs = rec.knobs;
                    for (ki, knob) in knobs.iter().enumerate() {
                        let gate = knob.kind == RuleKind::Gate;
                        if gate && !gates_run {
                            continue;
                        }
                        let r = &rules[knob.rule];
                        let canary = values.of(r.metric, false, lanes);
                        let stable = values.of(r.metric, true, lanes);
                        // The guard levels the request count passes (a prefix); at the
                        // others no threshold holds.
                        let counts = knob.count.map(|c| values.of(c, false, lanes));
                        let runs = r.runs_in(phase);
                        for l in 0..lanes {
                            let t = trial(l);
                            let passing = match runs {
                                true => guards::passing(&knob.guards, counts.and_then(|c| c[l])),
                                false => 0,
                            };
                            let k = match (passing > 0)
                                .then(|| knob.ladder.holding(canary[l], stable[l]))
                            {
                                None => 0,
                                Some(Some(k)) => k,
                                Some(None) => {
                                    rec.disordered.get_or_insert(knob.rule);
                                    0
                                }
                            };
                            if gate {
                                // A gate only counts at its phase's end.
                                rec.watches[ki][0].push(t, at, k, |_, _| {});
                                continue;
                            }
                            let row = t * rec.width + rec.offsets[ki];
                            let served = group.lanes.exposure(l).requests;
                            let mut fired = Vec::new();
                            push_guarded(
                                &mut rec.watches[ki],
                                (t, at, k, passing),
                                |guard, for_, level| {
                                    let level = usize::from(level);
                                    fired.push(row + knob.index(Variant { guard, for_, level }));
                                },
                            );
                            for i in fired {
                                rec.record(t, ki, i, at, served);
                            }
                        }
                    }
                    for l in 0..lanes {
                        let t = trial(l);
                        let exposure = group.lanes.exposure(l);
                        rec.served[t] = exposure.requests;
                        if rec.onset_seen[t] == NEVER && exposure.first_active.is_some() {
                            rec.onset_seen[t] = at;
                        }
                        // Every setting of some knob has ended it: no need to go on.
                        if rec.decided[t] {
                            ended.push((l, Verdict::Held { ts, phase }));
                        }
                    }
                },
            );
            ts += eval_ms;
        }
        let rec = records.into_inner();
        Piece {
            trials: rec
                .trials
                .into_iter()
                .map(|t| t.expect("every trial ends"))
                .collect(),
            fires: rec.fires,
            exposed: rec.exposed,
            disordered: rec.disordered,
            query_failure: rec.query_failure,
        }
    }
}

/// Whether a trial of the pass reached 100% by `ts`.
pub(crate) fn full_by(trial: &Trial, ts: i64) -> bool {
    trial.full_at != UNKNOWN && ts >= trial.full_at
}
