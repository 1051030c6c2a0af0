//! The search over settings, on the sweep's trials.
//!
//! What a release engineer asks, in order: at most this many healthy releases rolled back
//! (the false-rollback budget, met by the upper end of the 95% interval, not by the
//! estimate), then as many faulty releases caught as possible (summed over the faulty
//! scenarios, each weighing the same), then caught sooner, then fewer requests served by
//! the bad version. A setting is better than another in that order.
//!
//! The walk starts from the calmest setting (every tuned knob at its hardest threshold
//! and longest `for`) and takes, at each step, the single-knob change that gives the best
//! setting within the budget, until no change gives a better one. One step weighs every
//! variant of every knob; a variant costs one comparison per trial, because the first
//! firing among the other knobs is found once per knob ([`Sweep::moves`]). Last, each
//! knob that makes no difference goes back to the plan's own setting. The frontier
//! is the best setting at each of a ladder of budgets, less the dominated ones.

use super::score::{End, Key};
use super::space::Variant;
use super::sweep::{NEVER, Pass, Sweep};
use crate::lower::RuleKind;
use crate::sim::stats::Proportion;

/// What a setting gives, summed over the sweep's trials.
#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct Figures {
    /// Trials of the fault-free scenarios, and those that rolled back.
    pub(crate) healthy: u64,
    pub(crate) false_rollbacks: u64,
    /// Per faulty scenario of the file, in order.
    pub(crate) faulty: Vec<Faulty>,
}

/// A faulty scenario's figures under a setting.
#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct Faulty {
    pub(crate) trials: u64,
    /// Caught, as `plan simulate` counts it (against the healthy twin).
    pub(crate) caught: u64,
    /// Reached 100% with the fault begun.
    pub(crate) escaped: u64,
    /// Over the caught trials: the times from onset to rollback, in ms.
    pub(crate) catch_ms: i64,
    /// Requests the canary served from the onset until rollback or the end, over all trials.
    pub(crate) exposed: u64,
}

impl Figures {
    pub(crate) fn false_rollback(&self) -> Proportion {
        Proportion::new(self.false_rollbacks, self.healthy)
    }

    /// The upper end of the false-rollback rate's 95% interval.
    pub(crate) fn false_upper(&self) -> f64 {
        self.false_rollback().ci95[1]
    }

    pub(crate) fn caught(&self) -> u64 {
        self.faulty.iter().map(|f| f.caught).sum()
    }

    fn faulty_trials(&self) -> u64 {
        self.faulty.iter().map(|f| f.trials).sum()
    }

    /// Caught over all faulty trials.
    pub(crate) fn detection(&self) -> Proportion {
        Proportion::new(self.caught(), self.faulty_trials())
    }

    /// Mean time from onset to a caught rollback, in ms.
    pub(crate) fn mean_catch_ms(&self) -> Option<f64> {
        let caught = self.caught();
        (caught > 0)
            .then(|| self.faulty.iter().map(|f| f.catch_ms as f64).sum::<f64>() / caught as f64)
    }

    /// Mean requests served by the bad version per faulty trial.
    pub(crate) fn mean_exposed(&self) -> f64 {
        let n = self.faulty_trials().max(1);
        self.faulty.iter().map(|f| f.exposed as f64).sum::<f64>() / n as f64
    }

    /// Over the caught trials, the times from onset to rollback (ms).
    fn catch_ms(&self) -> i64 {
        self.faulty.iter().map(|f| f.catch_ms).sum()
    }

    /// Over all faulty trials, the requests served from the onset.
    fn exposed(&self) -> u64 {
        self.faulty.iter().map(|f| f.exposed).sum()
    }

    /// Whether `self` is better than `other` in the order of the module header (the
    /// budget aside).
    pub(crate) fn better_than(&self, other: &Figures) -> bool {
        let key = |f: &Figures| {
            (
                std::cmp::Reverse(f.caught()),
                f.catch_ms(),
                f.exposed(),
                f.false_rollbacks,
            )
        };
        key(self) < key(other)
    }
}

impl Sweep {
    /// Whether run `r`'s trials are the healthy releases a budget counts: the file's
    /// fault-free scenarios, or the extra twin pass that stands for the one it lacks.
    fn counts_as_healthy(&self, r: usize) -> bool {
        let file_has_healthy = self.runs[..self.in_file].iter().any(|x| !x.faulty);
        !self.runs[r].faulty && (r < self.in_file || !file_has_healthy)
    }

    /// A setting's figures, given each trial's first firing: each trial's end and
    /// whether it is a catch decided as `Sweep::tally` (in tests) decides them for the reference.
    fn figures_by(&self, first: impl Fn(usize, usize) -> Option<Key>) -> Figures {
        let end = |r: usize, t: usize| -> End { self.end_from(&self.runs[r], t, first(r, t)) };
        let twins = self.twins_by(&first);
        let mut out = Figures::default();
        for (r, run) in self.runs.iter().enumerate() {
            if !run.faulty {
                if self.counts_as_healthy(r) {
                    for t in 0..run.trials.len() {
                        out.healthy += 1;
                        out.false_rollbacks += u64::from(end(r, t).is_false());
                    }
                }
                continue;
            }
            let mut f = Faulty::default();
            for t in 0..run.trials.len() {
                let e = end(r, t);
                f.trials += 1;
                f.exposed += e.exposed;
                f.escaped += u64::from(e.escaped());
                let twin = twins.get(t).copied().unwrap_or(i64::MAX);
                if let Some(ms) = e.caught(twin, &run.moves) {
                    f.caught += 1;
                    f.catch_ms += ms;
                }
            }
            out.faulty.push(f);
        }
        out
    }

    /// Per knob, the healthy trials it rolled back first under `setting`.
    pub(crate) fn first_rules(&self, setting: &[Variant]) -> Vec<u64> {
        let columns = self.columns(setting);
        let mut out = vec![0; self.knobs.len()];
        for (r, run) in self.runs.iter().enumerate() {
            if !self.counts_as_healthy(r) {
                continue;
            }
            for t in 0..run.trials.len() {
                let first = self.first_among(r, t, &columns, None);
                if let Some((_, _, _, c)) = first {
                    let k = columns.iter().position(|&x| x == c).unwrap_or(0);
                    out[k] += 1;
                }
            }
        }
        out
    }

    /// The figures of `setting`.
    pub(crate) fn figures(&self, setting: &[Variant]) -> Figures {
        let columns = self.columns(setting);
        self.figures_by(|r, t| self.first_among(r, t, &columns, None))
    }

    /// The figures of `setting` with knob `ki` at each of its variants, in order.
    pub(crate) fn moves(&self, setting: &[Variant], ki: usize) -> Vec<Figures> {
        let columns = self.columns(setting);
        let others: Vec<Vec<Option<Key>>> = (0..self.runs.len())
            .map(|r| {
                (0..self.runs[r].trials.len())
                    .map(|t| self.first_among(r, t, &columns, Some(ki)))
                    .collect()
            })
            .collect();
        let knob = &self.knobs[ki];
        let rule = knob.rule;
        let by_rule = knob.kind != RuleKind::Gate;
        (0..knob.variants())
            .map(|v| {
                let c = self.offsets[ki] + v;
                self.figures_by(|r, t| {
                    let at = self.runs[r].fires[t * self.width + c];
                    let mine = (at != NEVER).then_some((at, by_rule, rule, c));
                    match (others[r][t], mine) {
                        (Some(a), Some(b)) => Some(a.min(b)),
                        (a, b) => a.or(b),
                    }
                })
            })
            .collect()
    }
}

/// A setting and its figures.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Point {
    /// The plan (rate window) it is a setting of: [`Sweep::window`].
    pub(crate) window: usize,
    /// The pass whose sweep it is a setting of (its variants index that sweep's knobs).
    pub(crate) pass: Pass,
    pub(crate) setting: Vec<Variant>,
    pub(crate) figures: Figures,
}

/// The best setting whose false-rollback rate's upper 95% bound is at most `budget`;
/// Err with the calmest setting when even that one is over it.
pub(crate) fn best_within(sweep: &Sweep, budget: f64) -> Result<Point, Point> {
    let setting: Vec<Variant> = sweep.knobs.iter().map(|k| k.calmest()).collect();
    let figures = sweep.figures(&setting);
    let at = Point {
        window: sweep.window,
        pass: sweep.pass,
        setting,
        figures,
    };
    if at.figures.false_upper() > budget {
        return Err(at);
    }
    Ok(climb(sweep, budget, at))
}

/// The walk of [`best_within`] from `at`, a setting within `budget`: single-knob changes
/// while one gives a better setting within it, then each knob back to the plan's own where
/// that is as good. Never worse than `at` (a change is taken only when better; a knob goes
/// back only when as good).
pub(crate) fn climb(sweep: &Sweep, budget: f64, mut at: Point) -> Point {
    debug_assert!(at.figures.false_upper() <= budget);
    loop {
        let mut best: Option<(usize, usize, Figures)> = None;
        for (ki, k) in sweep.knobs.iter().enumerate() {
            if !k.tuned() {
                continue;
            }
            for (v, f) in sweep.moves(&at.setting, ki).into_iter().enumerate() {
                let fits = f.false_upper() <= budget;
                let beats = best.as_ref().map_or(&at.figures, |b| &b.2);
                if fits && f.better_than(beats) {
                    best = Some((ki, v, f));
                }
            }
        }
        let Some((ki, v, figures)) = best else {
            return back_to_the_plan(sweep, budget, at);
        };
        at.setting[ki] = sweep.knobs[ki].variant(v);
        at.figures = figures;
    }
}

/// `best` with each knob, in plan order, put back as the plan wrote it wherever that
/// stays within the budget and catches as many, as soon, with no more requests served by
/// the bad version: a rule that makes no difference is left as its authors chose it.
fn back_to_the_plan(sweep: &Sweep, budget: f64, mut best: Point) -> Point {
    for (ki, k) in sweep.knobs.iter().enumerate() {
        if best.setting[ki] == k.current {
            continue;
        }
        let mut setting = best.setting.clone();
        setting[ki] = k.current;
        let f = sweep.figures(&setting);
        let b = &best.figures;
        let fits = f.false_upper() <= budget;
        if fits
            && f.caught() >= b.caught()
            && f.catch_ms() <= b.catch_ms()
            && f.exposed() <= b.exposed()
        {
            best = Point {
                setting,
                figures: f,
                ..best
            };
        }
    }
    best
}

/// The budgets at which the frontier is drawn, besides the user's.
const FRONTIER_BUDGETS: [f64; 9] = [0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.35, 0.5];

/// The best setting (`best(budget)`, as [`best_within`]) at each budget of a ladder and at
/// `budget`, less those another one dominates (no more false rollbacks and at least as
/// many caught, one of them strictly), by increasing false rollbacks.
pub(crate) fn frontier(budget: f64, best: impl Fn(f64) -> Option<Point>) -> Vec<Point> {
    let mut points: Vec<Point> = FRONTIER_BUDGETS
        .iter()
        .chain([&budget])
        .filter_map(|&b| best(b))
        .collect();
    points.sort_by_key(|p| {
        (
            p.figures.false_rollbacks,
            std::cmp::Reverse(p.figures.caught()),
        )
    });
    points.dedup_by(|a, b| (a.window, &a.setting) == (b.window, &b.setting));
    let dominated = |p: &Point, q: &Point| {
        let (a, b) = (&p.figures, &q.figures);
        b.false_rollbacks <= a.false_rollbacks
            && b.caught() >= a.caught()
            && (b.false_rollbacks < a.false_rollbacks || b.caught() > a.caught())
    };
    let kept: Vec<bool> = points
        .iter()
        .map(|p| !points.iter().any(|q| dominated(p, q)))
        .collect();
    points
        .into_iter()
        .zip(kept)
        .filter_map(|(p, k)| k.then_some(p))
        .collect()
}
