//! `plan simulate A.yaml B.yaml`: two plans (a plan and its tuned version, two designs of
//! a release) run on the same trials, and every figure given as B − A over the pairs of
//! trials, with its interval ([`super::paired`]).
//!
//! Trial `t` of each scenario takes the same seed in both runs, so it draws the same
//! traffic and noise as long as what is drawn does not depend on the plans' differences.
//! What a trial draws depends on the thresholds its model must tell apart (the latency
//! buckets it tracks, [`crate::sim::synth::Model::new`]): when the plans define the same
//! metrics, both models are built for the rules of both, and the draws are common until
//! the plans' courses part (a gate holds one and not the other, a rule rolls one back).
//! When their metrics differ, each run is drawn by its own model: the pairs still give
//! valid intervals, only wider ones, and the report says so.
//!
//! Each plan's own figures are also given in full (its `plan simulate` report over these
//! trials: the same law as its own run, not the same numbers when the models differ).

use super::montecarlo::{self, MonteCarlo, Settings, TrialOutcome};
use super::paired::{PairedMean, PairedProportion};
use super::recorded::Baseline;
use super::report::{SimulationReport, TrialKind, pct, wrapped};
use super::scenario::Scenarios;
use super::synth::Model;
use crate::lower::LoweredPlan;
use serde::Serialize;
use std::fmt::Write;

pub(crate) const COMPARISON_SCHEMA_VERSION: u32 = 1;

/// One side of a comparison: the plan file as given, its plan, and the scenarios resolved
/// for it.
pub(crate) struct Side<'a> {
    pub(crate) file: String,
    pub(crate) lowered: &'a LoweredPlan,
    pub(crate) scenarios: &'a Scenarios,
}

/// Both runs, trial by trial.
pub(crate) struct Runs<'a> {
    pub(crate) a: MonteCarlo<'a>,
    pub(crate) b: MonteCarlo<'a>,
    /// Whether both were drawn by models built for both plans' rules.
    pub(crate) common_model: bool,
    /// Whether, moreover, the plans model the same traffic, so trial `t` draws the same
    /// numbers in both until their courses part.
    pub(crate) common_draws: bool,
    /// On a recording, why each side ran full trials (None: sparse ones, or no recording):
    /// what its report states, which its own model's reads alone would not say.
    pub(crate) full_because: [Option<String>; 2],
}

/// Runs both plans on the same trials (built from `baseline` when given); `progress(done,
/// total)` over both.
pub(crate) fn run<'a>(
    (a, b): (&Side<'a>, &Side<'a>),
    baseline: Option<Baseline<'_>>,
    settings: Settings,
    progress: &mut dyn FnMut(u64, u64),
) -> Runs<'a> {
    let common_model = same_metrics(a.lowered, b.lowered);
    let union: Vec<_> = a
        .lowered
        .rules
        .iter()
        .chain(&b.lowered.rules)
        .cloned()
        .collect();
    let rules = |s: &Side<'_>| {
        if common_model {
            union.clone()
        } else {
            s.lowered.rules.clone()
        }
    };
    // A full recorded trial's draws (blocks, thinning, the fault's) do not depend on the
    // plan's metrics or rules: only on the scrapes and the phases' shares. A sparse one's
    // depend on where its spans end too, and the two kinds draw differently: unless both
    // plans run sparse trials with the same span ends, both run full ones.
    let recorded = |s: &Side<'_>, base: Baseline<'_>| {
        let rules = rules(s);
        let model = Model::new(&s.lowered.plan, s.scenarios, &rules, settings.semantics);
        let m = base.model(&s.lowered.plan, &rules, &model);
        (m.draw_shape(), m.full_because())
    };
    const FORCED: &str = "the other plan needs full trials, or its sparse trials end their spans elsewhere, and full trials share their draws";
    let own = [a, b].map(|s| baseline.map(|b| recorded(s, b)));
    let alike = own[0].as_ref().map(|o| &o.0) == own[1].as_ref().map(|o| &o.0);
    let baseline = baseline.map(|base| if alike { base } else { base.full(FORCED) });
    // A side that could run sparse trials alone says why it did not.
    let full_because =
        own.map(|o| o.and_then(|(_, why)| why.or_else(|| (!alike).then(|| FORCED.into()))));
    let mut first = |d: u64, t: u64| progress(d, 2 * t);
    let ra = montecarlo::run_recorded(
        a.lowered,
        (a.scenarios, baseline),
        settings,
        &rules(a),
        &mut first,
    );
    let mut second = |d: u64, t: u64| progress(t + d, 2 * t);
    let rb = montecarlo::run_recorded(
        b.lowered,
        (b.scenarios, baseline),
        settings,
        &rules(b),
        &mut second,
    );
    let common_draws =
        (common_model || baseline.is_some()) && same_traffic(a, b, baseline.is_some());
    Runs {
        a: ra,
        b: rb,
        common_model,
        common_draws,
        full_because,
    }
}

/// Whether both sides model the same traffic: the same scrapes, evaluations and window,
/// the same canary share and length of every phase, the same instances of the gauges per
/// instance, and the same scenario traffic and baseline (a scenario file without a request
/// rate takes the plan's). Trials built from a recording (`recorded`) take their traffic
/// and gauges from it: then only the scrapes, the phases and the canary's instances count
/// here (and where a sparse trial's spans end, which [`run`] compares).
fn same_traffic(a: &Side<'_>, b: &Side<'_>, recorded: bool) -> bool {
    let shown = |s: &Side<'_>| {
        let p = &s.lowered.plan;
        let m = &p.monitoring;
        let phases: Vec<_> = (0..p.phases.len())
            .map(|i| (p.canary_request_share(i), p.phases[i].duration))
            .collect();
        format!(
            "{:?}",
            (
                (
                    m.scrape_interval,
                    (!recorded).then_some((m.evaluation_interval, m.window)),
                ),
                phases,
                // On a recording, the canary's instances (its stable version's are the
                // recording's).
                recorded.then(|| {
                    let runs = s.scenarios.exposition.instances(p);
                    runs.iter().map(|c| c[0]).collect::<Vec<_>>()
                }),
                (!recorded).then(|| {
                    (
                        &s.scenarios.traffic,
                        &s.scenarios.baseline,
                        s.scenarios.exposition.instances(p),
                    )
                })
            )
        )
    };
    shown(a) == shown(b)
}

/// Whether the plans define the same metrics, in the same order: rules index their
/// metric, so only then is the union of their rules meaningful to one model. Compared by
/// what a metric computes (Debug shows every field of it), not by its description.
fn same_metrics(a: &LoweredPlan, b: &LoweredPlan) -> bool {
    let computed = |l: &LoweredPlan| {
        l.plan
            .metrics
            .iter()
            .map(|m| format!("{:?}", (&m.name, m.unit, m.bad, &m.expr, m.builtin)))
            .collect::<Vec<_>>()
    };
    computed(a) == computed(b)
}

#[derive(Serialize)]
pub(crate) struct ComparisonReport {
    pub(crate) schema_version: u32,
    pub(crate) a: PlanRef,
    pub(crate) b: PlanRef,
    pub(crate) seed: u64,
    pub(crate) trials_per_scenario: u64,
    pub(crate) semantics: &'static str,
    pub(crate) scenario_file: String,
    /// Whether both runs were drawn by one model (the plans define the same metrics).
    pub(crate) common_model: bool,
    /// Whether, moreover, they model the same traffic: trial `t` draws the same numbers
    /// in both until the plans' courses part.
    pub(crate) common_draws: bool,
    pub(crate) scenarios: Vec<ScenarioComparison>,
    /// Each plan's own report over these trials.
    pub(crate) reports: [SimulationReport; 2],
}

#[derive(Serialize)]
pub(crate) struct PlanRef {
    pub(crate) file: String,
    pub(crate) plan: String,
}

/// One scenario's figures, B − A over its pairs of trials.
#[derive(Serialize)]
pub(crate) struct ScenarioComparison {
    pub(crate) scenario: String,
    pub(crate) faulty: bool,
    /// Rolled back, for any reason (fault-free: every rollback is a false one).
    pub(crate) rolled_back: PairedProportion,
    /// Faulty scenarios: rolled back before the fault's onset.
    pub(crate) false_rollback: Option<PairedProportion>,
    pub(crate) caught: Option<PairedProportion>,
    pub(crate) escaped: Option<PairedProportion>,
    /// Over the pairs caught in both runs.
    pub(crate) time_to_catch_seconds: Option<PairedMean>,
    /// Requests the canary served from the onset until the trial ended, over every pair.
    pub(crate) exposed_requests: Option<PairedMean>,
}

/// The comparison of `runs`, with each plan's own report (`reports`, A then B).
pub(crate) fn report(
    (a, b): (&Side<'_>, &Side<'_>),
    runs: &Runs<'_>,
    settings: &Settings,
    scenario_file: &str,
    reports: [SimulationReport; 2],
) -> ComparisonReport {
    let scenarios = runs
        .a
        .results
        .iter()
        .zip(&runs.a.trials)
        .zip(&runs.b.trials)
        .map(|((r, ta), tb)| scenario(&r.scenario.name, r.scenario.fault.is_some(), ta, tb))
        .collect();
    ComparisonReport {
        schema_version: COMPARISON_SCHEMA_VERSION,
        a: PlanRef {
            file: a.file.clone(),
            plan: a.lowered.plan.name.clone(),
        },
        b: PlanRef {
            file: b.file.clone(),
            plan: b.lowered.plan.name.clone(),
        },
        seed: settings.seed,
        trials_per_scenario: settings.trials,
        semantics: settings.semantics.name(),
        scenario_file: scenario_file.to_string(),
        common_model: runs.common_model,
        common_draws: runs.common_draws,
        scenarios,
        reports,
    }
}

/// One scenario's pairs, trial `t` of A with trial `t` of B.
fn scenario(
    name: &str,
    faulty: bool,
    a: &[TrialOutcome],
    b: &[TrialOutcome],
) -> ScenarioComparison {
    let pairs = || a.iter().zip(b);
    let paired = |yes: fn(&TrialOutcome) -> bool| {
        let mut n = [0u64; 4];
        for (x, y) in pairs() {
            n[usize::from(!yes(x)) * 2 + usize::from(!yes(y))] += 1;
        }
        // [both, only A, only B, neither]
        PairedProportion::new(n[0], n[1], n[2], n[3])
    };
    let faulty_only = |p: PairedProportion| faulty.then_some(p);
    let caught_both: Vec<(f64, f64)> = pairs()
        .filter(|(x, y)| x.caught && y.caught)
        .map(|(x, y)| (x.catch_ms as f64 / 1000.0, y.catch_ms as f64 / 1000.0))
        .collect();
    let exposed: Vec<(f64, f64)> = pairs()
        .map(|(x, y)| (x.exposed as f64, y.exposed as f64))
        .collect();
    ScenarioComparison {
        scenario: name.to_string(),
        faulty,
        rolled_back: paired(|o| o.rolled_back),
        false_rollback: faulty_only(paired(|o| o.false_rollback)),
        caught: faulty_only(paired(|o| o.caught)),
        escaped: faulty_only(paired(|o| o.escaped)),
        time_to_catch_seconds: (faulty && !caught_both.is_empty())
            .then(|| PairedMean::new(&caught_both)),
        exposed_requests: (faulty && !exposed.is_empty()).then(|| PairedMean::new(&exposed)),
    }
}

/// The comparison for people: per scenario, A, B and B − A with its interval.
pub(crate) fn text(r: &ComparisonReport) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "A: {} (plan `{}`)\nB: {} (plan `{}`)\n{} trials per scenario, the same in both (seed {}, {}, scenarios: {})",
        r.a.file,
        r.a.plan,
        r.b.file,
        r.b.plan,
        r.trials_per_scenario,
        r.seed,
        r.semantics,
        r.scenario_file
    );
    if let Some(rec) = &r.reports[0].assumptions.recording {
        let _ = writeln!(
            s,
            "Every trial is built from the recording {} (--baseline), the same in both.",
            rec.files.join(", ")
        );
        // Which kind of trial both sides ran, and why full ones.
        let kinds: Vec<_> = r
            .reports
            .iter()
            .filter_map(|x| x.assumptions.recording.as_ref()?.trials.as_ref())
            .collect();
        match kinds.as_slice() {
            [TrialKind::Sparse, TrialKind::Sparse] => {
                let _ = writeln!(s, "Both run sparse trials.");
            }
            kinds => {
                for (side, kind) in ["A", "B"].iter().zip(kinds) {
                    if let TrialKind::Full { because } = kind {
                        s.push_str(&wrapped(
                            "",
                            &format!("{side} runs full trials: {because}."),
                        ));
                    }
                }
            }
        }
    }
    let _ = writeln!(
        s,
        "{}",
        match (r.common_model, r.common_draws) {
            (_, true) =>
                "Trial t of each scenario draws the same traffic in A and B until their courses part, so each\ndifference is judged over the pairs of trials (95% intervals).",
            (true, false) =>
                "The plans model different traffic (scrapes, evaluations, window, phase shares, replicas or\nrequest rate): trials are paired by seed, but their draws may differ, so the intervals are\nwider than for two settings of one plan (95% intervals).",
            (false, _) =>
                "The plans define different metrics, so each is drawn by its own model: trials are paired by\nseed, but their draws are not common, and the intervals are wider than for two settings of one\nplan (95% intervals).",
        }
    );
    let width = r
        .scenarios
        .iter()
        .map(|sc| sc.scenario.chars().count())
        .max()
        .unwrap_or(0)
        .max("scenario".len())
        + 2;
    let label = 25;
    let _ = writeln!(
        s,
        "\n  {:width$}{:<label$}{:>9}{:>9}   B - A [95% interval]",
        "scenario", "", "A", "B"
    );
    for sc in &r.scenarios {
        let mut name = sc.scenario.clone();
        let mut line = |text: &str, a: String, b: String, d: String| {
            let _ = writeln!(s, "  {name:width$}{text:<label$}{a:>9}{b:>9}   {d}");
            name.clear();
        };
        let prop = |p: &PairedProportion| {
            (
                pct(p.a.probability),
                pct(p.b.probability),
                format!(
                    "{} pts [{}, {}]  ({} only in A, {} only in B)",
                    points(p.difference),
                    points(p.ci95[0]),
                    points(p.ci95[1]),
                    p.only_a,
                    p.only_b
                ),
            )
        };
        let mut figure = |label: &str, p: &PairedProportion| {
            let (a, b, d) = prop(p);
            line(label, a, b, d);
        };
        if !sc.faulty {
            figure("false rollback", &sc.rolled_back);
            continue;
        }
        for (label, p) in [
            ("caught", &sc.caught),
            ("escaped to 100%", &sc.escaped),
            ("rolled back pre-onset", &sc.false_rollback),
        ] {
            if let Some(p) = p {
                figure(label, p);
            }
        }
        if let Some(m) = &sc.time_to_catch_seconds {
            let d = match m.ci95 {
                Some([lo, hi]) => format!(
                    "{} [{}, {}]  (over {} trials caught in both)",
                    signed(m.difference, dur),
                    signed(lo, dur),
                    signed(hi, dur),
                    m.pairs
                ),
                None => format!("{}  (one trial caught in both)", signed(m.difference, dur)),
            };
            line("mean time to catch", dur(m.a), dur(m.b), d);
        }
        if let Some(m) = &sc.exposed_requests {
            let count = |v: f64| format!("{v:.0}");
            let d = match m.ci95 {
                Some([lo, hi]) => format!(
                    "{} [{}, {}]",
                    signed(m.difference, count),
                    signed(lo, count),
                    signed(hi, count)
                ),
                None => signed(m.difference, count),
            };
            line("mean served after onset", count(m.a), count(m.b), d);
        }
    }
    let _ = writeln!(
        s,
        "\n  (percentage points; caught, escaped and rolled back before the fault's onset as `plan simulate`\n   counts them, each plan against its own healthy twin; means over the pairs: time to catch over\n   the trials caught in both, requests the canary served from the onset until the trial ended\n   over all; the intervals of rates are Newcombe's paired ones, a little wide even when no pair\n   differs; `--format json` gives each plan's full report)"
    );
    s
}

/// A difference of rates in percentage points, signed.
fn points(d: f64) -> String {
    if d.is_nan() {
        return "n/a".into();
    }
    let v = d * 100.0;
    let v = if v.abs() < 0.005 { 0.0 } else { v };
    format!("{v:+.2}")
}

/// A time for a table: whole seconds, in its two largest units (`5m58s`, `2d22h`; `1h`,
/// not `1h0m`).
fn dur(seconds: f64) -> String {
    if seconds.is_nan() {
        return "n/a".into();
    }
    let total = seconds.round() as u64;
    let units = [("d", 86_400), ("h", 3_600), ("m", 60), ("s", 1)];
    let Some(first) = units.iter().position(|&(_, size)| total >= size) else {
        return "0s".into();
    };
    let (unit, size) = units[first];
    let mut s = format!("{}{unit}", total / size);
    if let Some(&(next, next_size)) = units.get(first + 1)
        && (total % size) / next_size > 0
    {
        s += &format!("{}{next}", (total % size) / next_size);
    }
    s
}

/// A signed difference shown by `show` on its size.
fn signed(d: f64, show: impl Fn(f64) -> String) -> String {
    if d < 0.0 {
        format!("-{}", show(-d))
    } else {
        format!("+{}", show(d))
    }
}
