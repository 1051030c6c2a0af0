//! The lock-step simulator against the reference, trial by trial.
//!
//! Small batches of every scenario of the example scenario files run through [`Clock`],
//! [`Lanes`] and [`Outcomes`] (as `sim::montecarlo` runs them) and through the reference,
//! which must agree on:
//! - every metric value each evaluation computes (those its running rules read, on both
//!   tracks), bit for bit: the latency quantile included, since both read the same tracked
//!   buckets (that merging them changes no comparison is `coarse`'s property test);
//! - each trial's outcome: its verdict (rolled back at which evaluation, in which phase,
//!   by which rule, or promoted when), the number of evaluations it ran, the phase it
//!   ended in, its gate failures and its exposure (when the fault first showed, the
//!   canary's requests and failures from then on);
//! - the tally `montecarlo::run` makes of the same trials (what it counts from outcomes
//!   and exposures), which ties the batch driven here to the one the command runs.
//!
//! A trial's values depend on every earlier draw of its stream, so a draw taken out of
//! order, a span drawn differently or a window read wrongly shows as a value that differs.

use super::{Trial, run_trial};
use crate::lower::{AlertRule, RuleKind};
use crate::prom::Semantics;
use crate::promql::Track;
use crate::sim::batch::{Batch, Group};
use crate::sim::evaluator::{HoldOutcome, Schedule, Verdict};
use crate::sim::montecarlo::{self, Settings, Tally, trial_seed};
use crate::sim::outcomes::RuleSet;
use crate::sim::scenario;
use crate::sim::synth::{Exposure, FaultModel, Model, SyntheticMetric, fault_moves};
use crate::source::{Kind, Source};
use std::path::Path;

/// Trials per scenario: one lock-step batch each.
const TRIALS: u64 = 5;

const SEED: u64 = 14;

/// What the comparisons covered, so that a vacuous pass shows.
#[derive(Debug, Default)]
struct Seen {
    rollbacks: usize,
    promotions: usize,
    /// Trials that ended held, and trials a rollback rule ended during a hold.
    held: usize,
    cut_short: usize,
    /// Holds whose gates passed before the longest hold was up.
    advanced: usize,
    gate_failures: usize,
    exposed: usize,
    /// Faulty trials whose rollback was compared with their healthy twin's.
    twin_comparisons: usize,
    /// Per kind of metric, the values compared that were present.
    values: std::collections::BTreeMap<&'static str, usize>,
}

/// A file of the repository, as `kind`.
fn file(path: &str, kind: Kind) -> Source {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    Source::load_as(&root.join(path), kind).expect("readable")
}

/// Runs each scenario file of `files` against `plan` in both semantics; panics at the
/// first difference.
fn check(plan: Source, files: &[Source], seen: &mut Seen) {
    let name = plan.name.clone();
    let lowered = crate::pipeline::compile(plan)
        .plan
        .unwrap_or_else(|| panic!("{name} is valid"));
    for file in files {
        let scenarios = scenario::load(file, &lowered.plan, &|p| p.to_string())
            .0
            .unwrap_or_else(|| panic!("{} loads", file.name));
        for semantics in [Semantics::Prometheus3, Semantics::Prometheus2] {
            let rules = &lowered.rules;
            // Trial t runs on offset class t mod len, as in `montecarlo::run`.
            let models = Model::classes(&lowered.plan, &scenarios, rules, semantics);
            let class = |t: usize| t % models.len();
            let model = &models[0];
            let schedule = Schedule::new(&lowered.plan);
            let settings = Settings {
                slice: crate::sim::montecarlo::Slice::WHOLE,
                seed: SEED,
                jobs: 1,
                trials: TRIALS,
                semantics,
            };
            let run = montecarlo::run(&lowered, &scenarios, settings, &mut |_, _| {});
            // Trial t of every scenario takes seed t; the fault-free reference trials are
            // the faulty ones' healthy twins.
            let seeds: Vec<u64> = (0..TRIALS).map(|t| trial_seed(SEED, t)).collect();
            let healthy = FaultModel::classes(&models, None);
            let twins: Vec<Trial> = seeds
                .iter()
                .enumerate()
                .map(|(t, &seed)| run_trial(&models[class(t)], &healthy[class(t)], rules, seed))
                .collect();
            for (si, s) in scenarios.scenarios.iter().enumerate() {
                let faults = FaultModel::classes(&models, s.fault.as_ref());
                let reference: Vec<Trial> = seeds
                    .iter()
                    .enumerate()
                    .map(|(t, &seed)| run_trial(&models[class(t)], &faults[class(t)], rules, seed))
                    .collect();
                let case = format!(
                    "{name} with {}, scenario `{}`, {semantics:?}",
                    file.name, s.name
                );
                // One lock-step batch per offset class, of its trials.
                for (c, (model, faults)) in models.iter().zip(&faults).enumerate() {
                    let batch = Shared {
                        model,
                        faults,
                        rules,
                        schedule: &schedule,
                        names: lowered
                            .plan
                            .metrics
                            .iter()
                            .map(|m| m.name.as_str())
                            .collect(),
                    };
                    let of_class = |t: &usize| class(*t) == c;
                    let trials: Vec<usize> = (0..seeds.len()).filter(of_class).collect();
                    if trials.is_empty() {
                        continue;
                    }
                    let seeds: Vec<u64> = trials.iter().map(|&t| seeds[t]).collect();
                    let reference: Vec<&Trial> = trials.iter().map(|&t| &reference[t]).collect();
                    if let Err(e) = batch.compare(&seeds, &reference, seen) {
                        panic!("{case}, offset class {c}: {e}");
                    }
                }
                let tally = tally(&reference, lowered.plan.phases.len(), rules);
                let got = &run.results[si].tally;
                assert_eq!(counted(got), counted(&tally), "{case}: tallies");
                if let Some(fault) = &s.fault {
                    let moves: Vec<bool> = rules
                        .iter()
                        .map(|r| fault_moves(fault, r.metric, model.sources[r.metric]))
                        .collect();
                    let expected = twin_counts(&reference, &twins, fault, &moves);
                    assert_eq!(twin_counted(got), expected, "{case}: twin comparisons");
                    seen.twin_comparisons += reference.len();
                }
            }
        }
    }
}

/// How a trial of a batch ended.
struct Ended {
    trial: usize,
    verdict: Verdict,
    /// When a rollback rule ended it during a hold: the hold's start.
    cut_short: Option<i64>,
    gate_failures: Vec<(usize, usize)>,
    exposure: Exposure,
}

/// What a batch of trials shares.
struct Shared<'b, 'a> {
    model: &'b Model<'a>,
    faults: &'b FaultModel<'b>,
    rules: &'b [AlertRule],
    schedule: &'b Schedule,
    /// The metrics' names, for messages.
    names: Vec<&'b str>,
}

impl Shared<'_, '_> {
    /// Runs the trials seeded by `seeds` as the lanes of one lock-step [`Batch`], as
    /// `sim::montecarlo` does, comparing each evaluation and outcome with `reference`.
    fn compare(&self, seeds: &[u64], reference: &[&Trial], seen: &mut Seen) -> Result<(), String> {
        let (model, rules) = (self.model, self.rules);
        let demand = |set: RuleSet| {
            model.demand(|m| {
                rules
                    .iter()
                    .any(|r| r.reads(m) && set.kinds().contains(&r.kind))
            })
        };
        let (rollbacks, rollbacks_and_gates) = (
            demand(RuleSet::Rollbacks),
            demand(RuleSet::RollbacksAndGates),
        );
        let mut batch = Batch::new(
            (model, self.faults, None),
            rules,
            self.schedule,
            (0..seeds.len() as u64).collect(),
            seeds.iter().copied(),
        );
        // Per trial, the evaluations run so far; the first difference found.
        let mut evaluated = vec![0; seeds.len()];
        let mut error: Option<String> = None;
        let mut ts = 0;
        while !batch.is_empty() && error.is_none() {
            let mut inspect = |group: &Group<'_, '_>, _: &mut Vec<(usize, Verdict)>| {
                let (values, n) = (group.lanes.values(), group.trial_of.len());
                for (l, &t) in group.trial_of.iter().enumerate() {
                    let t = t as usize;
                    if error.is_some() {
                        return;
                    }
                    let Some(expected) = reference[t].evaluations.get(evaluated[t]) else {
                        error = Some(format!("trial {t} evaluates at {ts}, the reference not"));
                        return;
                    };
                    if expected.ts != ts {
                        error = Some(format!(
                            "trial {t} evaluates at {ts}, the reference at {}",
                            expected.ts
                        ));
                        return;
                    }
                    for &(m, track, want) in &expected.values {
                        let got = values.of(m, track == Track::Stable, n)[l];
                        if got.map(f64::to_bits) != want.map(f64::to_bits) {
                            error = Some(format!(
                                "trial {t} at {ts}: `{}` on the {track:?} track is {got:?} in the \
                                 lanes, {want:?} in the reference",
                                self.names[m]
                            ));
                            return;
                        }
                        if want.is_some() {
                            *seen.values.entry(kind_of(model.sources[m])).or_default() += 1;
                        }
                    }
                    evaluated[t] += 1;
                }
            };
            let mut ended: Vec<Ended> = Vec::new();
            let advanced = &mut seen.advanced;
            let mut finish = |group: &Group<'_, '_>, l: usize, verdict: Verdict| {
                let o = &group.outcomes;
                *advanced += o
                    .holds(l)
                    .iter()
                    .filter(|h| h.outcome == HoldOutcome::Advanced)
                    .count();
                let by_rule = matches!(verdict, Verdict::RolledBack { rule, .. } if rules[rule].kind == RuleKind::Rollback);
                ended.push(Ended {
                    trial: group.trial_of[l] as usize,
                    verdict,
                    cut_short: o.held_since().filter(|_| by_rule),
                    gate_failures: o.gate_failures(l).to_vec(),
                    exposure: *group.lanes.exposure(l),
                });
            };
            batch.step(
                ts,
                &|set| match set {
                    RuleSet::Rollbacks => &rollbacks,
                    RuleSet::RollbacksAndGates => &rollbacks_and_gates,
                },
                &mut finish,
                &mut inspect,
            );
            for Ended {
                trial: t,
                verdict,
                cut_short,
                gate_failures,
                exposure,
            } in ended
            {
                let want = &reference[t];
                let got = (
                    verdict,
                    evaluated[t],
                    cut_short,
                    &gate_failures[..],
                    (exposure.first_active, exposure.requests, exposure.failed),
                );
                let expected = (
                    want.verdict,
                    want.evaluations.len(),
                    want.cut_short,
                    &want.gate_failures[..],
                    (
                        want.exposure.first_active,
                        want.exposure.requests,
                        want.exposure.failed,
                    ),
                );
                if got != expected {
                    return Err(format!(
                        "trial {t}: (verdict, evaluations, hold cut short, gate failures, exposure) \
                         is {got:?} in the lanes, {expected:?} in the reference"
                    ));
                }
                match verdict {
                    Verdict::RolledBack { .. } => seen.rollbacks += 1,
                    Verdict::Completed { .. } => seen.promotions += 1,
                    Verdict::Held { .. } => seen.held += 1,
                }
                seen.cut_short += usize::from(cut_short.is_some());
                seen.gate_failures += want.gate_failures.len();
                seen.exposed += usize::from(want.exposure.requests > 0);
            }
            ts += model.eval_ms;
        }
        error.map_or(Ok(()), Err)
    }
}

fn kind_of(source: SyntheticMetric) -> &'static str {
    match source {
        SyntheticMetric::ErrorRate => "error rate",
        SyntheticMetric::Availability => "availability",
        SyntheticMetric::Throughput => "throughput",
        SyntheticMetric::Requests { .. } => "request count",
        SyntheticMetric::Latency { .. } => "latency",
        SyntheticMetric::Cpu => "cpu",
        SyntheticMetric::Memory => "memory",
        SyntheticMetric::DbConnections => "db connections",
        SyntheticMetric::Redis => "redis",
        SyntheticMetric::Custom { .. } => "custom",
        SyntheticMetric::Query { .. } => "query",
        SyntheticMetric::Up => "targets up",
        SyntheticMetric::Absent => "absent",
    }
}

/// The tally of the reference's trials: what `montecarlo` counts from outcomes and
/// exposures alone.
fn tally(trials: &[Trial], phases: usize, rules_of: &[AlertRule]) -> Tally {
    let rules = rules_of.len();
    let mut t = Tally {
        trials: trials.len() as u64,
        rollbacks_by_phase: vec![0; phases],
        first_rule: vec![0; rules],
        completed_phase: vec![0; phases],
        gate_failures: vec![0; phases * rules],
        ..Tally::default()
    };
    for trial in trials {
        if let Verdict::RolledBack { phase, rule, .. } = trial.verdict {
            t.rollbacks += 1;
            t.rollbacks_by_phase[phase] += 1;
            t.first_rule[rule] += 1;
        }
        for &(phase, rule) in &trial.gate_failures {
            t.gate_failures[phase * rules + rule] += 1;
        }
        for c in &mut t.completed_phase
            [..montecarlo::phases_ended(trial.verdict, trial.cut_short.is_some(), rules_of, phases)]
        {
            *c += 1;
        }
        t.exposed_requests += trial.exposure.requests;
        t.exposed_failed += trial.exposure.failed;
        t.steps += trial.evaluations.len() as u64;
    }
    t
}

/// A faulty scenario's trials against their healthy twins, one trial at a time: (caught,
/// rolled back anyway, twin not yet rolled back, caught per rule, rolled back anyway per
/// rule); `moves`: per rule, whether the fault can move its metric.
fn twin_counts(
    trials: &[Trial],
    twins: &[Trial],
    fault: &scenario::Fault,
    moves: &[bool],
) -> (u64, u64, u64, Vec<u64>, Vec<u64>) {
    let rules = moves.len();
    let mut c = (0, 0, 0, vec![0; rules], vec![0; rules]);
    for (trial, twin) in trials.iter().zip(twins) {
        let onset = match fault.kind {
            scenario::FaultKind::Load { .. } => trial.exposure.first_active.unwrap_or(i64::MAX),
            _ => fault.onset_ms,
        };
        // Before the onset a faulty trial is its twin, draw for draw.
        let before = |t: &Trial| t.verdict.rolled_back_at().filter(|&ts| ts < onset);
        if before(trial).is_some() || before(twin).is_some() {
            assert_eq!(trial.verdict, twin.verdict, "a rollback before the onset");
        }
        let Verdict::RolledBack { ts, rule, .. } = trial.verdict else {
            continue;
        };
        let twin_by_then = twin.verdict.rolled_back_at().is_some_and(|t| t <= ts);
        let twin_later = ts >= onset && !twin_by_then;
        c.2 += u64::from(twin_later);
        if twin_later && moves[rule] {
            c.0 += 1;
            c.3[rule] += 1;
        } else {
            c.1 += 1;
            c.4[rule] += 1;
        }
    }
    c
}

fn twin_counted(t: &Tally) -> (u64, u64, u64, Vec<u64>, Vec<u64>) {
    (
        t.caught,
        t.rolled_back_anyway,
        t.twin_not_yet,
        t.caught_by_rule.clone(),
        t.anyway_by_rule.clone(),
    )
}

/// The counts of a tally that [`tally`] computes.
#[allow(clippy::type_complexity)]
fn counted(t: &Tally) -> (u64, u64, &[u64], &[u64], &[u64], &[u64], u64, u64, u64) {
    (
        t.trials,
        t.rollbacks,
        &t.rollbacks_by_phase,
        &t.first_rule,
        &t.completed_phase,
        &t.gate_failures,
        t.exposed_requests,
        t.exposed_failed,
        t.steps,
    )
}

#[test]
fn lawsker_lanes_compute_what_the_reference_computes() {
    let mut seen = Seen::default();
    let files = ["lawsker.yaml", "lawsker-tuning.yaml"];
    check(
        file("plans/lawsker.yaml", Kind::Plan),
        &files.map(|f| file(&format!("simulations/{f}"), Kind::Scenarios)),
        &mut seen,
    );
    eprintln!("{seen:?}");
}

#[test]
fn checkout_lanes_compute_what_the_reference_computes() {
    let mut seen = Seen::default();
    let files = ["checkout.yaml"];
    check(
        file("plans/checkout.yaml", Kind::Plan),
        &files.map(|f| file(&format!("simulations/{f}"), Kind::Scenarios)),
        &mut seen,
    );
    eprintln!("{seen:?}");
}

/// The checkout plan in one-hour phases, so that trials reach its 100% phase, where the
/// stable version serves nothing while its relative error rule still reads it, under
/// heavy error clustering (clusters end and are drawn afresh often): a track without
/// traffic draws no cluster in the lanes, as in the reference.
#[test]
fn checkout_at_100_percent_lanes_compute_what_the_reference_computes() {
    let checkout = file("plans/checkout.yaml", Kind::Plan);
    let text = checkout
        .text
        .replace("duration: 2h\n", "duration: 1h\n")
        .replace("duration: 1d\n", "duration: 1h\n")
        .replace("duration: 1d12h\n", "duration: 1h\n")
        .replace("duration: 2d\n", "duration: 1h\n");
    // Without its gates, which the staff phase's thin traffic fails.
    let gates = text.find("gates:\n").expect("gates");
    let rollbacks = text
        .find("rollback_conditions:")
        .expect("rollback conditions");
    let text = format!("{}{}", &text[..gates], &text[rollbacks..]);
    let scenarios = file("simulations/checkout.yaml", Kind::Scenarios);
    let clustered = format!(
        "traffic: {{ error_clustering: 0.3, error_clustering_time_constant: 10s }}\n{}",
        scenarios.text
    );
    let mut seen = Seen::default();
    check(
        Source::new("checkout (one-hour phases)".into(), text),
        &[Source::new("checkout (clustered)".into(), clustered).holding(Kind::Scenarios)],
        &mut seen,
    );
    eprintln!("{seen:?}");
    assert!(seen.promotions > 0, "{seen:?}");
}

#[test]
fn admin_console_lanes_compute_what_the_reference_computes() {
    let mut seen = Seen::default();
    check(
        file("plans/admin-console.yaml", Kind::Plan),
        &["default.yaml", "fault-timing.yaml"]
            .map(|f| file(&format!("simulations/{f}"), Kind::Scenarios)),
        &mut seen,
    );
    eprintln!("{seen:?}");
}

/// Every effect a fault can have (custom metrics too, up to their unit's bound), each kind
/// of fault, with and without overdispersion and error clustering.
const FAULTS: &str = "
trials: 4
traffic: { requests_per_second: 60, overdispersion: OVERDISPERSION, error_clustering: CLUSTERING, start_hour: 13 }
baseline:
  cpu_usage: { mean: 40%, noise: 5% }
  memory_usage: { mean: 60%, noise: 3% }
  metrics:
    bug_report_rate: { mean: 8%, noise: 2% }
    conversion_rate: { mean: 97%, noise: 1% }
scenarios:
  - name: healthy
  - name: cpu-and-memory
    fault: { kind: step, onset: 1h, cpu_usage: 90%, memory_usage: 95%, latency_factor: 3 }
  - name: hot-when-loaded
    fault: { kind: load, above_rps: 5, cpu_usage: 85%, memory_usage: 92% }
  - name: some-users
    fault: { kind: partial, onset: 30m, users: 30%, error_rate: 30%, cpu_usage: 70%, tail_share: 10% }
  - name: creeping
    fault: { kind: leak, onset: 20m, ramp: 3h, cpu_usage: 95%, memory_usage: 99%, latency_factor: 4 }
  - name: flapping
    fault: { kind: bursts, onset: 10m10s, every: 40m, lasting: 7m, error_rate: 50%, cpu_usage: 90% }
  - name: business-leak
    fault: { kind: leak, onset: 20m, ramp: 2h, metrics: { conversion_rate: 50%, bug_report_rate: 30% } }
  - name: business-some-users
    fault: { kind: partial, onset: 40m, users: 50%, metrics: { conversion_rate: 60% } }
  - name: business-when-loaded
    fault: { kind: load, above_rps: 5, metrics: { bug_report_rate: 100% } }
  - name: crashing
    fault: { kind: crash, onset: 25m10s }
  - name: between-scrapes
    fault: { kind: step, onset: 40m37s, error_rate: 40%, latency_factor: 2, cpu_usage: 60% }
  - name: dead-on-arrival
    fault: { kind: crash }
";

/// Lawsker's business metrics (and a job-duration histogram's p90, [`with_job_p90`]) as
/// queries over modelled series, with every kind of fault moving them (each parameter a
/// series model has, a split and buckets included), beside a gauge no query reads (drawn
/// all the same, in the stream's order).
const SERIES_FAULTS: &str = "
trials: 4
traffic: { requests_per_second: 60, overdispersion: OVERDISPERSION, error_clustering: CLUSTERING, start_hour: 13 }
baseline:
  series:
    business_flow_completed_total: { counter: { of: business_flow_started_total, share: 97% } }
    business_flow_started_total: { counter: { per_request: 2% } }
    feedback_submissions_total: { counter: { per_request: 0.5% }, split: { type: { bug: 8%, other: 92% } } }
    queue_depth: { gauge: { mean: 12, noise: 3 } }
    job_seconds: { histogram: { per_request: 4%, buckets: { 0.25: 50%, 0.5: 80%, 1: 95%, 2: 99% } } }
scenarios:
  - name: healthy
  - name: queue-grows
    fault: { kind: leak, onset: 30m, ramp: 1h, series: { queue_depth: { mean: 40 } }, error_rate: 2% }
  - name: business-leak
    fault: { kind: leak, onset: 20m, ramp: 2h, series: { business_flow_completed_total: { share: 50% }, feedback_submissions_total: { split: { type: { bug: 30%, other: 70% } } } } }
  - name: business-some-users
    fault: { kind: partial, onset: 40m, users: 50%, series: { business_flow_started_total: { per_request: 1% } } }
  - name: jobs-slow-down
    fault: { kind: leak, onset: 15m, ramp: 1h, series: { job_seconds: { per_request: 8%, buckets: { 0.25: 10%, 0.5: 30%, 1: 60%, 2: 90% } } } }
  - name: business-when-loaded
    fault: { kind: load, above_rps: 2, series: { feedback_submissions_total: { per_request: 3%, split: { type: { bug: 100%, other: 0% } } } } }
  - name: flapping
    fault: { kind: bursts, onset: 10m10s, every: 40m, lasting: 7m, error_rate: 50%, series: { business_flow_completed_total: { share: 10% } } }
  - name: crashing
    fault: { kind: crash, onset: 25m10s }
  - name: dead-on-arrival
    fault: { kind: crash }
";

/// [`SERIES_FAULTS`] with and without overdispersion (and error clustering).
fn series_files() -> [Source; 2] {
    [("0", "0"), ("0.4", "0.5")].map(|(o, c)| {
        let text = SERIES_FAULTS
            .replace("OVERDISPERSION", o)
            .replace("CLUSTERING", c);
        Source::new(format!("series faults ({o}, clustering {c})"), text).holding(Kind::Scenarios)
    })
}

/// Lawsker's custom metrics as queries over simulated series ([`SERIES_FAULTS`]), in
/// two-hour phases: on its own grid, on one whose evaluations fall between scrapes, and
/// with a gate policy that holds (trials part from their batch, and their series with
/// them): every query value and outcome is the reference's.
#[test]
fn series_lanes_compute_what_the_reference_computes() {
    let lawsker = file("plans/lawsker.yaml", Kind::Plan);
    let files = series_files();
    let mut seen = Seen::default();
    let plain = with_job_p90(&in_two_hour_phases(&lawsker.text));
    let unaligned = plain.replace(
        "monitoring:\n",
        "monitoring:\n  scrape_interval: 20s\n  evaluation_interval: 30s\n  window: 2m10s\n",
    );
    let held = plain.replace("bug_report_rate: \"< 20%\"", "bug_report_rate: \"< 9%\"")
        + "\ngate_policy:\n  on_failure: hold\n  max_hold: 40m\n  after_max_hold: stay\n";
    let held_rollback = held.replace("after_max_hold: stay", "after_max_hold: rollback");
    for (name, text) in [
        ("lawsker (two-hour phases)", plain.clone()),
        ("lawsker (unaligned grid)", unaligned),
        ("lawsker (bug reports held)", held),
        (
            "lawsker (bug reports held, then rolled back)",
            held_rollback,
        ),
    ] {
        check(Source::new(name.to_string(), text), &files, &mut seen);
    }
    eprintln!("{seen:?}");
    assert!(
        seen.values.get("query").copied().unwrap_or(0) > 1000,
        "{seen:?}"
    );
    assert!(seen.held > 3 && seen.advanced > 3, "{seen:?}");
}

/// [`FAULTS`] with independent failures, with clustered ones (the default), and with both
/// overdispersion and failures so clustered that a 50% error rate often becomes certain
/// (the cap at 1).
fn fault_files() -> [Source; 3] {
    [("0", "0"), ("0", "0.5"), ("0.4", "3")].map(|(o, c)| {
        let text = FAULTS.replace("OVERDISPERSION", o).replace("CLUSTERING", c);
        Source::new(format!("faults ({o}, clustering {c})"), text).holding(Kind::Scenarios)
    })
}

/// The Lawsker plan's text with a custom metric over a histogram, the p90 of jobs' durations
/// (modelled in [`SERIES_FAULTS`]), and a rollback condition on it.
fn with_job_p90(lawsker: &str) -> String {
    lawsker
        .replacen(
            "metrics:\n",
            "metrics:\n  job_p90:\n    query: histogram_quantile(0.9, sum by (le) (rate(job_seconds_bucket{service=\"$service\",track=\"$track\"}[$window])))\n    unit: seconds\n    bad: high\n",
            1,
        )
        .replacen(
            "rollback_conditions:\n",
            "rollback_conditions:\n  - { metric: job_p90, threshold: 1.5, duration: 2m }\n",
            1,
        )
}

/// The Lawsker plan's text with its phases two hours long.
fn in_two_hour_phases(lawsker: &str) -> String {
    lawsker
        .replace("duration: 24h", "duration: 2h")
        .replace("duration: 48h", "duration: 2h")
        .replace("duration: 72h", "duration: 2h")
}

/// The Lawsker plan in two-hour phases with 7 replicas (the canary runs 1, 2, 4 and 7
/// instances), its DB connections gate raised to match.
fn lawsker_with_seven_replicas() -> String {
    in_two_hour_phases(&file("plans/lawsker.yaml", Kind::Plan).text)
        .replace("replicas: 4 ", "replicas: 7 ")
        .replace("db_connections: \"< 80\"", "db_connections: \"< 300\"")
}

/// The Lawsker plan on grids whose evaluations fall between scrapes (every scrape is then
/// drawn, and windows hold a varying number of samples), in two-hour phases, with
/// [`FAULTS`]: a window of 8 scrapes (a power of two, which fills a ring sized for the
/// window exactly), and one that is not a whole number of scrapes.
#[test]
fn unaligned_lanes_compute_what_the_reference_computes() {
    let lawsker = file("plans/lawsker.yaml", Kind::Plan);
    let faults = fault_files();
    let mut seen = Seen::default();
    for (scrape, eval, window) in [("15s", "20s", "2m"), ("20s", "30s", "2m10s")] {
        let text = lawsker.text.replace(
            "monitoring:\n",
            &format!(
                "monitoring:\n  scrape_interval: {scrape}\n  evaluation_interval: {eval}\n  \
                     window: {window}\n"
            ),
        );
        let text = in_two_hour_phases(&text);
        let name = format!("lawsker (scrape {scrape}, evaluation {eval}, window {window})");
        check(Source::new(name, text), &faults, &mut seen);
    }
    eprintln!("{seen:?}");
}

/// The Lawsker plan with a gate policy that holds (a strict availability gate, so that
/// phases are held often), in two-hour phases, with [`FAULTS`]: trials whose gates fail
/// part from their batch, and every held trial's spans, values and outcome are the
/// reference's, which walks its own holds.
#[test]
fn held_lanes_compute_what_the_reference_computes() {
    let lawsker = file("plans/lawsker.yaml", Kind::Plan);
    let faults = fault_files();
    let mut seen = Seen::default();
    // The last: an availability rule nearly as strict as the gate but slower, which
    // fires during long holds.
    for (max, then, gate, rule) in [
        ("40m", "stay", "99.7%", ("0.99", "5m")),
        ("15m", "rollback", "99.7%", ("0.99", "5m")),
        ("3h", "stay", "99.5%", ("0.99", "5m")),
        ("3h", "rollback", "99.8%", ("0.997", "40m")),
    ] {
        let text = in_two_hour_phases(&lawsker.text)
            .replace(
                "threshold: 0.99       # 99%\n    duration: \"5m\"",
                &format!("threshold: {}\n    duration: \"{}\"", rule.0, rule.1),
            )
            .replace(
                "availability: \"> 99.5%\"",
                &format!("availability: \"> {gate}\""),
            )
            + &format!(
                "\ngate_policy:\n  on_failure: hold\n  max_hold: {max}\n  after_max_hold: {then}\n"
            );
        let name = format!("lawsker (availability gate {gate}, hold {max}, then {then})");
        check(Source::new(name, text), &faults, &mut seen);
    }
    eprintln!("{seen:?}");
    assert!(
        seen.cut_short > 3 && seen.held > 3 && seen.advanced > 10 && seen.promotions > 3,
        "{seen:?}"
    );
}

/// The Lawsker plan with `min_requests` guards near the canary's requests per window in
/// its first phases (so that they pass in some evaluations and not in others), in two-hour
/// phases, with [`FAULTS`], on the aligned grid and on one whose windows hold a varying
/// number of samples: every guard's `increase()` is the reference's, evaluation by
/// evaluation.
#[test]
fn guarded_lanes_compute_what_the_reference_computes() {
    let lawsker = file("plans/lawsker.yaml", Kind::Plan);
    let faults = fault_files();
    let mut seen = Seen::default();
    for grid in [
        "",
        "  scrape_interval: 20s\n  evaluation_interval: 30s\n  window: 2m10s\n",
    ] {
        let text = in_two_hour_phases(&lawsker.text)
            .replace(
                "threshold: 0.1        # 10%\n    duration: \"5m\"",
                "threshold: 0.1\n    duration: \"5m\"\n    min_requests: 900",
            )
            .replace(
                "threshold: 5000       # 5秒\n    duration: \"10m\"",
                "threshold: 5000\n    duration: \"10m\"\n    min_requests: 400",
            )
            .replace(
                "threshold: 0.99       # 99%\n    duration: \"5m\"",
                "threshold: 0.99\n    duration: \"5m\"\n    min_requests: 2000",
            )
            .replace("monitoring:\n", &format!("monitoring:\n{grid}"));
        assert_eq!(text.matches("min_requests").count(), 3, "the guards are in");
        check(
            Source::new(format!("lawsker guarded{grid}"), text),
            &faults,
            &mut seen,
        );
    }
    eprintln!("{seen:?}");
}

/// Scrapes 7s before each evaluation (`exposition.scrape_offset`): phase starts fall
/// between scrapes (spans cut there), scrape 0 comes before the release's start, and
/// Prometheus 2.42's closed windows hold no scrape at their start. With [`FAULTS`] and
/// the series of [`SERIES_FAULTS`], crashes off the grid included.
#[test]
fn offset_lanes_compute_what_the_reference_computes() {
    let lawsker = file("plans/lawsker.yaml", Kind::Plan);
    let two_hours = Source::new(
        "lawsker (two-hour phases)".to_string(),
        in_two_hour_phases(&lawsker.text),
    );
    let offset = |s: Source| {
        let text = format!("exposition: {{ scrape_offset: 7s }}\n{}", s.text);
        Source::new(format!("{} (scrapes 7s early)", s.name), text).holding(Kind::Scenarios)
    };
    let [_, faults, _] = fault_files();
    let [series, _] = series_files();
    let mut seen = Seen::default();
    check(two_hours, &[offset(faults)], &mut seen);
    let with_p90 = Source::new(
        "lawsker (job p90, two-hour phases)".to_string(),
        in_two_hour_phases(&with_job_p90(&lawsker.text)),
    );
    check(with_p90, &[offset(series)], &mut seen);
    eprintln!("{seen:?}");
}

/// The failure series born at a track's first failure (`exposition.failures_from`), with
/// failures so rare (0.1% of the canary's 3 requests a second in Lawsker's first phase)
/// that most trials' series are born minutes into the release, inside their windows (and
/// pre-initialised, for comparison), with [`FAULTS`]' effects on the aligned grid, on one
/// whose windows hold a varying number of samples, and with scrapes 7s early: each
/// window's first failure sample, its absence and the sums over codes without it are the
/// reference's, evaluation by evaluation.
#[test]
fn born_failure_series_lanes_compute_what_the_reference_computes() {
    let lawsker = file("plans/lawsker.yaml", Kind::Plan);
    let mut seen = Seen::default();
    let [independent, clustered, _] = fault_files();
    for (grid, offset) in [
        ("", "0s"),
        (
            "  scrape_interval: 20s\n  evaluation_interval: 30s\n  window: 2m10s\n",
            "0s",
        ),
        ("", "7s"),
    ] {
        let text = in_two_hour_phases(&lawsker.text)
            .replace("monitoring:\n", &format!("monitoring:\n{grid}"));
        let files: Vec<Source> = [&independent, &clustered]
            .into_iter()
            .flat_map(|f| {
                ["first_failure", "release_start"].map(|from| {
                    let text = format!(
                        "exposition: {{ scrape_offset: {offset}, failures_from: {from} }}\n{}",
                        f.text
                            .replace("baseline:\n", "baseline:\n  error_rate: 0.1%\n")
                    );
                    Source::new(format!("{} ({from}, scrapes {offset} early)", f.name), text)
                        .holding(Kind::Scenarios)
                })
            })
            .collect();
        check(
            Source::new(format!("lawsker{grid}"), text),
            &files,
            &mut seen,
        );
    }
    eprintln!("{seen:?}");
}

/// Per-instance gauges (`exposition.instances: replicas`): the Lawsker plan with 7 stable
/// replicas (the canary's 1, 2, 4 and 7 in its two-hour phases, changing at each phase's
/// start, between an evaluation and its scrape when scrapes come early), rollback rules
/// reading memory (the max over instances, also against the stable track's), DB
/// connections (their sum) and CPU (the average of the instances' `rate()`s, an instance
/// joining at its phase's first scrape) at every evaluation, with [`FAULTS`]' memory effects, on the
/// aligned grid and with scrapes 7s early, and with a memory gate that holds phases (held
/// trials part from their batch, their instances' noise with them): every gauge value and
/// outcome is the reference's.
#[test]
fn instance_gauges_lanes_compute_what_the_reference_computes() {
    let text = lawsker_with_seven_replicas()
        .replacen(
            "rollback_conditions:\n",
            "rollback_conditions:\n  \
             - { metric: memory_usage, threshold: 0.68, duration: 2m }\n  \
             - { id: memory_vs_stable, metric: memory_usage, threshold: 1.08x stable and above 62%, duration: 1m }\n  \
             - { metric: db_connections, threshold: 220, duration: 2m }\n  \
             - { metric: cpu_usage, threshold: 0.47, duration: 2m }\n",
            1,
        );
    let held = text.replace("memory_usage: \"< 90%\"", "memory_usage: \"< 62%\"")
        + "\ngate_policy:\n  on_failure: hold\n  max_hold: 40m\n  after_max_hold: stay\n";
    // A crashed canary left running (no silent-canary rule) into the phases that add
    // instances, whose CPU counters then join unscraped.
    let crashed = text.replace("monitoring:\n", "monitoring:\n  silent_canary: off\n");
    let [_, faults, _] = fault_files();
    let mut seen = Seen::default();
    for (offset, name, plan) in [
        ("0s", "lawsker (7 replicas)", &text),
        ("7s", "lawsker (7 replicas)", &text),
        ("0s", "lawsker (7 replicas, memory gate held)", &held),
        ("0s", "lawsker (7 replicas, silent canary off)", &crashed),
    ] {
        let scenarios = Source::new(
            format!("{} (scrapes {offset} early)", faults.name),
            format!("exposition: {{ scrape_offset: {offset} }}\n{}", faults.text),
        )
        .holding(Kind::Scenarios);
        check(
            Source::new(name.to_string(), plan.clone()),
            &[scenarios],
            &mut seen,
        );
    }
    eprintln!("{seen:?}");
    assert!(seen.held > 3 && seen.advanced > 3, "{seen:?}");
    assert!(
        seen.values.get("memory").copied().unwrap_or(0) > 1000,
        "{seen:?}"
    );
    assert!(
        seen.values.get("db connections").copied().unwrap_or(0) > 1000,
        "{seen:?}"
    );
    assert!(
        seen.values.get("cpu").copied().unwrap_or(0) > 1000,
        "{seen:?}"
    );
}

/// Request counters per instance, in the reference: a canary instance
/// joining with its phase serves from its first scrape on, where its counters are 0, and
/// until then the instances before serve the new phase's share. At 4,000 requests a second
/// the throughput's mean over a few trials is its expectation within a few requests a
/// second, which the scrape grid gives in closed form. With scrapes on the evaluations
/// (offset 0s), 15s scrapes and a 5m window, a minute after a phase starts at `J` the
/// window `(J - 240s, J + 60s]` holds an instance that ran before from `J - 225s` to
/// `J + 60s` (285s sampled, extrapolated to 300s) and a joining one from `J + 15s`, which
/// Prometheus does not extrapolate below its zero. Per track (one counter) every request
/// counts `300/285` times.
#[test]
fn per_instance_request_counters_read_a_joining_instance_from_its_first_scrape() {
    let lawsker = file("plans/lawsker.yaml", Kind::Plan);
    let text = in_two_hour_phases(&lawsker.text).replacen(
        "rollback_conditions:\n",
        "rollback_conditions:\n  - { metric: throughput, threshold: 0.001, duration: 1m }\n",
        1,
    );
    let lowered = crate::pipeline::compile(Source::new("lawsker".into(), text))
        .plan
        .expect("valid");
    let scenarios = Source::new(
        "4,000 requests a second".into(),
        "exposition: { scrape_offset: 0s }
traffic: { requests_per_second: 4000, daily_amplitude: 0, error_clustering: 0 }
baseline:
  error_rate: 0.1%
  metrics:
    bug_report_rate: { mean: 8%, noise: 2% }
    conversion_rate: { mean: 97%, noise: 1% }
scenarios:
  - name: healthy
"
        .into(),
    )
    .holding(Kind::Scenarios);
    let scenarios = scenario::load(&scenarios, &lowered.plan, &|p| p.to_string())
        .0
        .expect("loads");
    let rules = &lowered.rules;
    // The mean throughput over the trials at each of `at`, per instance or per track.
    let mean_at = |per_instance: bool, at: &[i64]| -> Vec<f64> {
        let mut models = Model::classes(&lowered.plan, &scenarios, rules, Semantics::Prometheus3);
        assert_eq!(models.len(), 1, "one fixed offset");
        models[0].per_instance_requests = per_instance;
        let faults = FaultModel::classes(&models, None);
        let throughput = (models[0].sources.iter())
            .position(|&s| s == SyntheticMetric::Throughput)
            .expect("read");
        let mut sums = vec![0.0; at.len()];
        let trials = 8;
        for t in 0..trials {
            let trial = run_trial(&models[0], &faults[0], rules, trial_seed(SEED, t));
            for (sum, &ts) in sums.iter_mut().zip(at) {
                let e = (trial.evaluations.iter().find(|e| e.ts == ts))
                    .unwrap_or_else(|| panic!("trial {t} evaluates at {ts}: {:?}", trial.verdict));
                let v = e
                    .values
                    .iter()
                    .find(|v| v.0 == throughput && v.1 == Track::Canary);
                *sum += v.and_then(|v| v.2).expect("a throughput");
            }
        }
        sums.iter().map(|s| s / trials as f64).collect()
    };
    let (hour, minute) = (3_600_000, 60_000);
    // A minute into gamma (one instance to two) and into production (two to four), and ten
    // minutes into each.
    let at = [
        4 * hour + minute,
        4 * hour + 10 * minute,
        6 * hour + minute,
        6 * hour + 10 * minute,
    ];
    let r = 4000.0;
    // The canary's shares in beta, gamma and production (the phase's traffic and its
    // groups'), serving one, two and four instances.
    let [beta, gamma, production] = {
        let share = &Model::classes(&lowered.plan, &scenarios, rules, Semantics::Prometheus3)[0]
            .canary_share;
        [share[1], share[2], share[3]]
    };
    // Gamma: the instance before serves beta's share until J, then gamma's alone for 15s,
    // then half of it.
    let gamma_before = r * (beta * 225.0 + gamma * 15.0 + gamma / 2.0 * 45.0);
    let gamma_joiner = r * gamma / 2.0 * 45.0;
    // Production: each of the two before serves half of gamma's share, then half of
    // production's for 15s, then a quarter.
    let production_before =
        2.0 * r * (gamma / 2.0 * 225.0 + production / 2.0 * 15.0 + production / 4.0 * 45.0);
    let production_joiners = 2.0 * r * production / 4.0 * 45.0;
    let per_instance = [
        gamma_before / 285.0 + gamma_joiner / 300.0,
        gamma * r,
        production_before / 285.0 + production_joiners / 300.0,
        production * r,
    ];
    let per_track = [
        (gamma_before + gamma_joiner) / 285.0,
        gamma * r,
        (production_before + production_joiners) / 285.0,
        production * r,
    ];
    for (per, expected) in [(false, per_track), (true, per_instance)] {
        let got = mean_at(per, &at);
        for ((&ts, &got), &want) in at.iter().zip(&got).zip(&expected) {
            // The mean of 8 trials: a standard error of about 1 request a second.
            assert!(
                (got - want).abs() < 4.0,
                "per instance {per}, at {ts}: {got} against {want}"
            );
        }
    }
    // The two differ where a joining instance's window is cut short.
    assert!(per_track[0] - per_instance[0] > 7.0 && per_track[2] - per_instance[2] > 15.0);
}

/// Request counters per instance: Lawsker with 7 replicas (the canary runs 1, 2, 4 and 7
/// instances), every fault of [`FAULTS`], under error clustering and overdispersion, a
/// scrape offset off the evaluations, and births; and one set per track
/// (`request_counters: per_track`, no longer the default, its lanes' own path).
#[test]
fn per_instance_request_counters_lanes_compute_what_the_reference_computes() {
    let text = lawsker_with_seven_replicas().replacen(
        "rollback_conditions:\n",
        "rollback_conditions:\n  - { metric: throughput, threshold: 0.5, duration: 2m }\n",
        1,
    );
    let mut seen = Seen::default();
    for (offset, counters) in [
        ("0s", "per_instance"),
        ("7s", "per_instance"),
        ("7s", "per_track"),
    ] {
        let files: Vec<Source> = fault_files()
            .into_iter()
            .map(|f| {
                Source::new(
                    format!("{} (scrapes {offset} early, requests {counters})", f.name),
                    format!(
                        "exposition: {{ scrape_offset: {offset}, request_counters: {counters} }}\n{}",
                        f.text
                    ),
                )
                .holding(Kind::Scenarios)
            })
            .collect();
        check(
            Source::new("lawsker (7 replicas)".to_string(), text.clone()),
            &files,
            &mut seen,
        );
    }
    eprintln!("{seen:?}");
    assert!(
        seen.rollbacks > 10 && seen.promotions > 0 && seen.twin_comparisons > 100,
        "{seen:?}"
    );
}
