//! `plan tune`: the thresholds, `for` durations and gate levels that meet a false-rollback
//! budget with the best detection, found over one set of simulated trials.
//!
//! Every setting is judged on the same trials (common random numbers): the traffic is
//! drawn once per trial ([`sweep`]) and each setting reads it ([`score`]), so the
//! differences between settings are the settings', not the noise's, and a setting costs
//! a few comparisons per evaluation ([`ladder`]) rather than a simulation. The search
//! ([`search`]) then walks from the calmest setting towards more sensitive ones, one
//! knob ([`space`]) at a time.
//!
//! The figures of a setting are those `plan simulate` gives for the plan with that setting
//! on the same seed (a test runs both): the fast path is checked against the reference.

pub(crate) mod ladder;
pub(crate) mod score;
pub(crate) mod search;
pub(crate) mod space;
pub(crate) mod sweep;

use crate::lower::LoweredPlan;
use space::{Knob, Variant};

/// The plan with `setting` (one variant per knob) in place of its own thresholds.
pub(crate) fn apply(lowered: &LoweredPlan, knobs: &[Knob], setting: &[Variant]) -> LoweredPlan {
    let mut out = lowered.clone();
    for (k, &v) in knobs.iter().zip(setting) {
        k.apply(&mut out.rules[k.rule], v);
    }
    out
}

/// The rules a tune's model is built for: the plan's, and one per threshold of every
/// ladder, so that the model tells apart every threshold the tune tries (what a trial
/// draws depends on it: see [`crate::sim::synth::Model::new`]).
pub(crate) fn model_rules(lowered: &LoweredPlan, knobs: &[Knob]) -> Vec<crate::lower::AlertRule> {
    let mut rules = lowered.rules.clone();
    for k in knobs {
        for c in &k.ladder.conditions {
            let mut r = lowered.rules[k.rule].clone();
            r.condition = *c;
            rules.push(r);
        }
    }
    rules
}

/// The plan's own setting.
pub(crate) fn current(knobs: &[Knob]) -> Vec<Variant> {
    knobs.iter().map(|k| k.current).collect()
}

#[cfg(test)]
mod tests;
