//! Sparse trials against full ones ([`super::super::trial`], the reference).
//!
//! - At a 100% share the thinning draws nothing, so a sparse trial and a full one replay
//!   the same blocks into the same counts: every value each evaluation reads must be the
//!   same, bit for bit, on both tracks, including where the canary's failure series is
//!   born late, where a crash stops its series, where `up` has gaps, under both
//!   semantics and at every scrape offset.
//! - At a canary share the two draw differently (per span, not per scrape), from the same
//!   law: the rollback, detection and blast radius tallies of every fault kind must agree
//!   within chance.

use crate::lower::LoweredPlan;
use crate::prom::{Sample, Semantics, Series};
use crate::sim::montecarlo::{self, Settings, Slice, Tally};
use crate::sim::outcomes::RuleSet;
use crate::sim::recorded::{Baseline, RecordedLanes, RecordedModel, Recording, SparseLanes};
use crate::sim::scenario::{self, Scenarios};
use crate::sim::synth::{FaultModel, Model};
use crate::sim::trace::Trace;
use crate::source::{Kind, Source};
use rand::rngs::Xoshiro256PlusPlus;
use rand::{RngExt, SeedableRng};

/// Two days of 15s scrapes: requests with a daily cycle, failures in bursts (none for
/// hours at a time, so that a failure series is born late), a latency histogram, and `up`
/// with a few missing scrapes.
fn recording() -> Recording {
    Recording::new(vec![("r.csv".into(), Trace { series: series() })]).expect("a recording")
}

/// [`recording`] with two instances' CPU counters and memory (in use, and a limit), each
/// instance drifting on its own.
fn instance_recording() -> Recording {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(11);
    let mut all = series();
    for instance in ["a:8080", "b:8080"] {
        let labels = vec![("instance".to_string(), instance.to_string())];
        let (mut busy, mut used) = (0.0, 4.0e8);
        let (mut cpu, mut memory, mut limit) = (Vec::new(), Vec::new(), Vec::new());
        for p in 0..2 * 5760 {
            let t = 1_714_521_600_000 + p as i64 * 15_000;
            busy += 15.0 * (0.3 + 0.2 * rng.random::<f64>());
            used = (used + 2.0e6 * (rng.random::<f64>() - 0.5)).clamp(1.0e8, 9.0e8);
            cpu.push(Sample::new(t, busy));
            memory.push(Sample::new(t, used));
            limit.push(Sample::new(t, 1.0e9));
        }
        for (name, samples) in [
            ("process_cpu_seconds_total", cpu),
            ("container_memory_working_set_bytes", memory),
            ("container_spec_memory_limit_bytes", limit),
        ] {
            all.push(Series {
                name: name.into(),
                labels: labels.clone(),
                samples,
                line: 1,
                column: 1,
            });
        }
    }
    Recording::new(vec![("r.csv".into(), Trace { series: all })]).expect("a recording")
}

/// The series of [`recording`].
fn series() -> Vec<Series> {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(7);
    let les = ["0.1", "0.25", "0.5", "1", "2.5", "5", "+Inf"];
    let points = 2 * 5760;
    let (mut ok, mut failed) = (0.0, 0.0);
    let mut buckets = vec![0.0; les.len()];
    let (mut s_ok, mut s_failed, mut s_up) = (Vec::new(), Vec::new(), Vec::new());
    let mut s_buckets = vec![Vec::new(); les.len()];
    for p in 0..points {
        let t = 1_714_521_600_000 + p as i64 * 15_000;
        let hour = (p / 240) % 24;
        let n = 100 + (hour as u64 * 7) % 60 + rng.random_range(0..20u64);
        let bad_hour = hour % 6 == 5;
        let f = if bad_hour {
            rng.random_range(0..4u64)
        } else {
            0
        };
        ok += (n - f) as f64;
        failed += f as f64;
        let mut below = 0;
        for (i, b) in buckets.iter_mut().enumerate() {
            // Latency cells of 60%, 20%, 10%, 5%, 3%, 1.5%, the rest above 5s.
            let share = [0.6, 0.8, 0.9, 0.95, 0.98, 0.995, 1.0][i];
            let k = ((n as f64 * share) as u64).max(below);
            *b += k as f64;
            below = k;
        }
        s_ok.push(Sample::new(t, ok));
        s_failed.push(Sample::new(t, failed));
        if p % 997 != 500 {
            s_up.push(Sample::new(t, 1.0));
        }
        for (i, b) in buckets.iter().enumerate() {
            s_buckets[i].push(Sample::new(t, *b));
        }
    }
    let series = |name: &str, labels: &[(&str, &str)], samples: Vec<Sample>| Series {
        name: name.into(),
        labels: labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        samples,
        line: 1,
        column: 1,
    };
    let mut all = vec![
        series("http_requests_total", &[("code", "200")], s_ok),
        series("http_requests_total", &[("code", "500")], s_failed),
        series("up", &[], s_up),
    ];
    for (le, s) in les.iter().zip(s_buckets) {
        all.push(series(
            "http_request_duration_seconds_bucket",
            &[("le", le)],
            s,
        ));
    }
    all
}

/// A plan of `phases`, with rollback rules on the error rate and p95 (`p95` its
/// condition) and a gate on availability, over 2m windows.
fn plan(phases: &str, p95: &str) -> LoweredPlan {
    plan_over("2m", phases, p95)
}

/// [`plan`] over windows of `window`.
fn plan_over(window: &str, phases: &str, p95: &str) -> LoweredPlan {
    plan_of(
        ("sparse", window, phases),
        &format!(
            "gates:
  availability: \"> 99%\"
rollback_conditions:
  - {{ metric: error_rate, threshold: 1%, duration: 1m }}
  - {{ metric: response_time_p95, threshold: \"{p95}\", duration: 2m }}
"
        ),
    )
}

/// The plan `name` of `phases` over windows of `window` at 8 requests per second, with
/// `rest` (its metrics, gates and rules), which must be valid.
fn plan_of((name, window, phases): (&str, &str, &str), rest: &str) -> LoweredPlan {
    compiled(format!(
        "name: {name}
release: {{ from: v1, to: v2 }}
service: {{ name: app, image: acme/app, port: 8080 }}
routing: {{ listen: 80, sticky: {{ cookie: uid }} }}
monitoring: {{ window: {window} }}
traffic: {{ requests_per_second: 8 }}
phases:
{phases}
{rest}"
    ))
}

/// The plan `text`, which must be valid.
fn compiled(text: String) -> LoweredPlan {
    let compiled = crate::pipeline::compile(Source::new("plan.yaml".into(), text));
    compiled
        .plan
        .unwrap_or_else(|| panic!("{:?}", compiled.findings))
}

fn scenarios(plan: &LoweredPlan, text: &str) -> Scenarios {
    let source = Source::new("scenarios.yaml".into(), text.into()).holding(Kind::Scenarios);
    let basis = scenario::Basis::Recorded {
        requests_per_second: Some(8.0),
    };
    let (s, findings) = scenario::load_on(&source, &plan.plan, &|p| p.to_string(), basis);
    s.unwrap_or_else(|| panic!("scenarios load: {findings:?}"))
}

/// Runs trials `seeds` of every scenario of `sc` as full and as sparse trials, under both
/// semantics and at every scrape offset class, evaluating every `eval_ms` for `hours`, and
/// requires the values of `metrics` (both tracks), the query failures and (at a 100%
/// share, where thinning draws nothing) the blast radius to be the same, bit for bit;
/// `each` sees the full trial's values at every evaluation. Returns how many values were
/// compared and how many were present.
fn same_as_full(
    (rec, lowered, sc): (&Recording, &LoweredPlan, &Scenarios),
    (seeds, hours, metrics): (&[u64], i64, &[usize]),
    mut each: impl FnMut(crate::sim::evaluator::Columns<'_>),
) -> (usize, usize) {
    let (mut compared, mut present) = (0, 0);
    for sem in [Semantics::Prometheus3, Semantics::Prometheus2] {
        let models = Model::classes(&lowered.plan, sc, &lowered.rules, sem);
        assert!(models.len() > 1, "several scrape offsets");
        for model in &models {
            let rm = Baseline::of(rec, None).model(&lowered.plan, &lowered.rules, model);
            let sparse = rm
                .sparse()
                .unwrap_or_else(|| panic!("{:?}", rm.sparse.as_ref().err()));
            for s in &sc.scenarios {
                let faults = FaultModel::new(model, s.fault.as_ref());
                let mut full = RecordedLanes::new(&rm, &faults, seeds, model.scrape_offset_ms);
                let mut lean =
                    SparseLanes::new(&rm, sparse, &faults, seeds, model.scrape_offset_ms);
                let mut ts = 0;
                while ts <= hours * 3_600_000 {
                    full.advance(ts, &model.schedule, RuleSet::RollbacksAndGates);
                    lean.advance(ts, &model.schedule, RuleSet::RollbacksAndGates);
                    let (a, b) = (full.values(), lean.values());
                    let w = a.width;
                    for &mi in metrics {
                        for i in 2 * mi * w..(2 * mi + 2) * w {
                            let (x, y) = (a.data[i], b.data[i]);
                            assert_eq!(
                                x.map(f64::to_bits),
                                y.map(f64::to_bits),
                                "{} at {ts} ({sem:?}, offset {}): metric {mi}, value {i}: full {x:?}, sparse {y:?}",
                                s.name,
                                model.scrape_offset_ms
                            );
                            compared += 1;
                            present += usize::from(x.is_some());
                        }
                    }
                    each(a);
                    ts += model.eval_ms;
                }
                for l in 0..seeds.len() {
                    let failure = |f: Option<&crate::sim::synth::QueryFailure>| {
                        f.map(|f| (f.metric, f.at, f.message.clone()))
                    };
                    assert_eq!(
                        failure(full.query_failure(l)),
                        failure(lean.query_failure(l))
                    );
                    if model.canary_share.iter().any(|&p| p < 1.0) {
                        continue;
                    }
                    let (x, y) = (full.exposure(l), lean.exposure(l));
                    assert_eq!(
                        (x.first_active, x.requests, x.failed),
                        (y.first_active, y.requests, y.failed),
                        "{}: exposure",
                        s.name
                    );
                }
            }
        }
    }
    (compared, present)
}

/// The index of metric `name` of `plan`.
fn metric(plan: &LoweredPlan, name: &str) -> usize {
    let metrics = &plan.plan.metrics;
    metrics.iter().position(|m| m.name == name).expect(name)
}

#[test]
fn at_a_full_share_sparse_trials_read_what_full_trials_read() {
    let rec = recording();
    // One phase at 100%: thinning draws nothing.
    let lowered = plan("  - { name: all, traffic: 100%, duration: 3h }", "1500");
    let file = "trials: 4
traffic: { requests_per_second: 8, start_hour: 3 }
exposition: { scrape_offset: random }
scenarios:
  - name: healthy
  - name: crash
    fault: { kind: crash, onset: 95m }
";
    let sc = scenarios(&lowered, file);
    let error_rate = metric(&lowered, "error_rate");
    let every: Vec<usize> = (0..lowered.plan.metrics.len()).collect();
    let mut born_late = 0;
    let (compared, present) = same_as_full((&rec, &lowered, &sc), (&[3, 5, 8], 3, &every), |a| {
        // The canary's error rate before its failure series is born.
        born_late += usize::from(a.data[2 * error_rate * a.width] == Some(0.0));
    });
    assert!(
        present > compared / 3,
        "{present} of {compared} values present"
    );
    assert!(born_late > 0, "no evaluation read an unborn failure series");
}

/// Each instance's own CPU counter and a memory gauge a fault moves are drawn without
/// thinning: at any share, sparse and full trials read the same values of them, bit for
/// bit, as canary instances join with their phases (four replicas: one, two, then four
/// canary instances), under a CPU fault, a memory leak and a crash.
#[test]
fn own_counters_and_moved_gauges_read_as_on_full_trials() {
    let rec = instance_recording();
    let text = "name: own
release: { from: v1, to: v2 }
service: { name: app, image: acme/app, port: 8080, replicas: 4 }
routing: { listen: 80, sticky: { cookie: uid } }
monitoring: { window: 2m }
traffic: { requests_per_second: 8 }
phases:
  - { name: one, traffic: 25%, duration: 40m }
  - { name: two, traffic: 50%, duration: 40m }
  - { name: all, traffic: 100%, duration: 40m }
gates:
  memory_usage: \"< 95%\"
rollback_conditions:
  - { metric: error_rate, threshold: 5%, duration: 1m }
  - { metric: cpu_usage, threshold: 45%, duration: 2m }
";
    let lowered = compiled(text.into());
    let file = "trials: 4
traffic: { requests_per_second: 8, start_hour: 3 }
scenarios:
  - name: healthy
  - name: cpu
    fault: { kind: step, onset: 30m, cpu_usage: 70% }
  - name: idle
    fault: { kind: leak, onset: 50m, ramp: 30m, cpu_usage: 5% }
  - name: memory
    fault: { kind: leak, onset: 10m, ramp: 1h, memory_usage: 90% }
  - name: crash
    fault: { kind: crash, onset: 65m }
";
    let sc = scenarios(&lowered, file);
    let (cpu, memory) = (
        metric(&lowered, "cpu_usage"),
        metric(&lowered, "memory_usage"),
    );
    let mut moved = 0;
    let (compared, present) =
        same_as_full((&rec, &lowered, &sc), (&[3, 5], 2, &[cpu, memory]), |a| {
            // The memory leak's canary above any healthy instance's 90%.
            moved += usize::from(a.data[2 * memory * a.width].is_some_and(|v| v > 0.9));
        });
    // The stable track's values are not read.
    assert!(
        present > compared / 3,
        "{present} of {compared} values present"
    );
    assert!(moved > 0, "the memory leak moved nothing");
}

/// Custom queries that read their series through `rate()`, `increase()` (over a window of
/// 90s, not a whole number of evaluation intervals) and instant selectors (`up`, and the
/// canary's failure counter, which has no sample before its first failure) run on sparse
/// trials, through the same engine: at a 100% share every value they read is the full
/// trial's, and so is every failure (none here: `plan validate` refuses what would fail).
#[test]
fn custom_queries_over_edges_read_as_on_full_trials() {
    let rec = recording();
    let sel = "service=\\\"$service\\\",track=\\\"$track\\\"";
    let text = format!(
        "name: custom
release: {{ from: v1, to: v2 }}
service: {{ name: app, image: acme/app, port: 8080 }}
routing: {{ listen: 80, sticky: {{ cookie: uid }} }}
monitoring: {{ window: 2m }}
traffic: {{ requests_per_second: 8 }}
phases:
  - {{ name: all, traffic: 100%, duration: 3h }}
metrics:
  served:
    query: \"sum(rate(http_requests_total{{{sel}}}[$window]))\"
    unit: per_second
    bad: low
  failing:
    query: \"sum(increase(http_requests_total{{{sel},code=\\\"500\\\"}}[90s])) / sum(increase(http_requests_total{{{sel}}}[90s]))\"
    unit: ratio
    bad: high
  slow:
    query: \"histogram_quantile(0.9, sum by (le) (rate(http_request_duration_seconds_bucket{{{sel}}}[$window])))\"
    unit: seconds
    bad: high
  targets:
    query: \"count(up{{{sel}}} == 1)\"
    unit: count
    bad: low
  failed_so_far:
    query: \"sum(http_requests_total{{{sel},code=\\\"500\\\"}}) or vector(0)\"
    unit: count
    bad: high
rollback_conditions:
  - {{ metric: served, threshold: 1, duration: 1m }}
  - {{ metric: failing, threshold: 2%, duration: 1m }}
  - {{ metric: slow, threshold: 3s, duration: 2m }}
  - {{ metric: targets, threshold: 1, duration: 1m }}
  - {{ metric: failed_so_far, threshold: 1000, duration: 1m }}
"
    );
    let lowered = compiled(text);
    let file = "trials: 4
traffic: { requests_per_second: 8, start_hour: 3 }
scenarios:
  - name: healthy
  - name: crash
    fault: { kind: crash, onset: 95m }
";
    let sc = scenarios(&lowered, file);
    let every: Vec<usize> = (0..lowered.plan.metrics.len()).collect();
    let (compared, present) = same_as_full((&rec, &lowered, &sc), (&[3, 5], 3, &every), |_| {});
    assert!(
        present > compared / 3,
        "{present} of {compared} values present"
    );
}

/// A plan of one phase at 100% whose one rollback rule reads custom metric `name`, the
/// query `query` in `unit` (bad when high, over 0.5).
fn one_metric(name: &str, query: &str, unit: &str) -> LoweredPlan {
    let phases = "  - { name: all, traffic: 100%, duration: 3h }";
    plan_of(
        ("one", "2m", phases),
        &format!(
            "metrics:
  {name}:
    query: \"{query}\"
    unit: {unit}
    bad: high
rollback_conditions:
  - {{ metric: {name}, threshold: 0.5, duration: 1m }}
"
        ),
    )
}

/// A custom query that reads raw samples, or takes a rate of a gauge (every sample: a
/// fall is a reset), needs full trials, and the reason names it.
#[test]
fn a_custom_query_over_raw_samples_runs_full_trials() {
    let rec = recording();
    let reason = |query: &str| {
        let lowered = one_metric("flaps", query, "count");
        let sc = scenarios(&lowered, "scenarios:\n  - name: healthy\n");
        let models = Model::classes(&lowered.plan, &sc, &lowered.rules, Semantics::Prometheus3);
        let rm = Baseline::of(&rec, None).model(&lowered.plan, &lowered.rules, &models[0]);
        rm.sparse.err()
    };
    let sel = "service=\\\"$service\\\",track=\\\"$track\\\"";
    assert_eq!(
        reason(&format!("sum(rate(up{{{sel}}}[$window]))")).as_deref(),
        Some(
            "`flaps` takes a rate of `up`, which the recording holds as a gauge (its name has no counter's suffix: `_total`, `_count`, `_sum` or `_bucket`)"
        )
    );
    assert_eq!(
        reason(&format!("sum(changes(up{{{sel}}}[$window]))")).as_deref(),
        Some(
            "`flaps`'s query reads raw samples (a range function other than `rate()` and `increase()`, or an `offset`)"
        )
    );
    assert_eq!(reason(&format!("sum(up{{{sel}}})")), None);
}

/// A faulty scenario of every kind on a two-phase plan.
const FAULTS: &str = "trials: 1000
traffic: { requests_per_second: 8, start_hour: 3 }
scenarios:
  - name: healthy
  - name: step
    fault: { kind: step, onset: 20m, error_rate: 2% }
  - name: bursts
    fault: { kind: bursts, onset: 10m, every: 7m, lasting: 50s, error_rate: 5% }
  - name: partial
    fault: { kind: partial, onset: 25m, users: 30%, error_rate: 4% }
  - name: slow
    fault: { kind: leak, onset: 5m, ramp: 40m, latency_factor: 6 }
  - name: tail
    fault: { kind: step, onset: 30m, tail_share: 10% }
  - name: crash
    fault: { kind: crash, onset: 47m }
  - name: load
    fault: { kind: load, onset: 0s, above_rps: 3, error_rate: 3%, latency_factor: 2 }
";

/// The two-proportion z statistic of `a` and `b` out of `n` each.
fn z(a: u64, b: u64, n: u64) -> f64 {
    let (p1, p2) = (a as f64 / n as f64, b as f64 / n as f64);
    let p = (p1 + p2) / 2.0;
    let se = (p * (1.0 - p) * 2.0 / n as f64).sqrt();
    if se == 0.0 { 0.0 } else { (p1 - p2) / se }
}

fn tallies(rm: &RecordedModel<'_>, lowered: &LoweredPlan, sc: &Scenarios) -> Vec<Tally> {
    let settings = Settings {
        seed: 21,
        jobs: 2,
        trials: 1000,
        semantics: Semantics::Prometheus3,
        slice: Slice::WHOLE,
    };
    montecarlo::run_on_recording(lowered, sc, settings, rm, &mut |_, _| {})
        .results
        .into_iter()
        .map(|r| r.tally)
        .collect()
}

#[test]
fn at_a_canary_share_sparse_trials_draw_the_full_trials_law() {
    let rec = recording();
    let lowered = plan(
        "  - { name: canary, traffic: 30%, duration: 40m }\n  - { name: all, traffic: 100%, duration: 20m }",
        "1500",
    );
    let sc = scenarios(&lowered, FAULTS);
    let models = Model::classes(&lowered.plan, &sc, &lowered.rules, Semantics::Prometheus3);
    let mut rm = Baseline::of(&rec, None).model(&lowered.plan, &lowered.rules, &models[0]);
    assert!(rm.sparse().is_some());
    let lean = tallies(&rm, &lowered, &sc);
    rm.sparse = Err(String::new());
    let full = tallies(&rm, &lowered, &sc);
    same_law(&sc, &full, &lean);
}

/// Requires the tallies of full and sparse trials of each scenario of `sc` to agree within
/// chance (rollbacks, false rollbacks, catches, the blast radius), and at least six of
/// them to lie between 5% and 95%, where they can tell.
fn same_law(sc: &Scenarios, full: &[Tally], lean: &[Tally]) {
    let mut moving = 0;
    for ((s, a), b) in sc.scenarios.iter().zip(full).zip(lean) {
        let n = a.trials;
        assert_eq!(n, b.trials);
        for (what, x, y) in [
            ("rollbacks", a.rollbacks, b.rollbacks),
            ("false rollbacks", a.false_rollbacks, b.false_rollbacks),
            ("caught", a.caught, b.caught),
        ] {
            assert!(
                z(x, y, n).abs() < 4.0,
                "{} {what}: full {x}, sparse {y} of {n}",
                s.name
            );
            moving += usize::from(x > n / 20 && x < n - n / 20);
        }
        // The blast radius, per trial: within a few standard errors of the full trials'.
        let (ea, eb) = (a.exposed_requests as f64, b.exposed_requests as f64);
        assert!(
            (ea - eb).abs() <= 0.1 * ea.max(eb) + 200.0,
            "{}: exposed requests full {ea}, sparse {eb}",
            s.name
        );
    }
    assert!(moving >= 6, "too few tallies between 5% and 95%: {moving}");
}

#[test]
fn spans_end_where_a_window_can_start_or_end() {
    let rec = recording();
    let lowered = plan(
        "  - { name: all, traffic: 100%, duration: 1h }",
        "2x stable",
    );
    let sc = scenarios(&lowered, "scenarios:\n  - name: healthy\n");
    let models = Model::classes(&lowered.plan, &sc, &lowered.rules, Semantics::Prometheus3);
    let rm = Baseline::of(&rec, None).model(&lowered.plan, &lowered.rules, &models[0]);
    let sparse = rm.sparse().expect("sparse");
    // 15s scrapes, 1m evaluations, 2m windows: the last scrape at or before each
    // evaluation and the one after it.
    for offset in [0, 5_000, 14_999] {
        let cuts: Vec<i64> = (1..=12).filter(|&j| sparse.cut(&rm, offset, j)).collect();
        let want: Vec<i64> = (1..=12)
            .filter(|&j| {
                let last = |j: i64| {
                    (0..5).any(|k| {
                        rm.scrape_time(j, offset) <= k * 60_000
                            && k * 60_000 < rm.scrape_time(j + 1, offset)
                    })
                };
                last(j) || last(j - 1)
            })
            .collect();
        assert_eq!(cuts, want, "offset {offset}");
        assert_eq!(cuts.len(), 6, "two a minute: {cuts:?}");
    }
}

#[test]
fn a_window_of_no_whole_evaluation_intervals_ends_spans_where_it_starts() {
    let rec = recording();
    let lowered = plan_over(
        "90s",
        "  - { name: all, traffic: 100%, duration: 1h }",
        "1500",
    );
    let sc = scenarios(&lowered, "scenarios:\n  - name: healthy\n");
    let models = Model::classes(&lowered.plan, &sc, &lowered.rules, Semantics::Prometheus3);
    let rm = Baseline::of(&rec, None).model(&lowered.plan, &lowered.rules, &models[0]);
    let sparse = rm.sparse().expect("sparse");
    assert_eq!(rm.draw_shape(), Some((60_000, vec![90_000])));
    // Scrapes every 15s from 0: the last at or before each minute (4, 8, 12), the one
    // after it (1, 5, 9), and the first after each minute less 90s (45s, 105s, 165s: 3, 7,
    // 11).
    let cuts: Vec<i64> = (1..=12).filter(|&j| sparse.cut(&rm, 0, j)).collect();
    assert_eq!(cuts, [1, 3, 4, 5, 7, 8, 9, 11, 12]);
}

/// [`recording`] with a business flow (started by half the requests, nine in ten
/// completed, a completion now and then counted a scrape late: more completions than
/// starts at that scrape) and feedback split by type (one in ten a bug report); and
/// counters of half of the started flows (`paid`), of the completed ones (`reviewed`) and
/// of the feedback (`answered`).
fn business_recording() -> Recording {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(13);
    let mut all = series();
    let requests = |p: usize| {
        let ok = &all[0].samples;
        let failed = &all[1].samples;
        let total = |p: usize| ok[p].v + failed[p].v;
        if p == 0 {
            total(0)
        } else {
            total(p) - total(p - 1)
        }
    };
    let incs: Vec<f64> = (0..all[0].samples.len()).map(requests).collect();
    let (mut started, mut completed, mut bugs, mut other) = (0.0, 0.0, 0.0, 0.0);
    let (mut paid, mut reviewed, mut answered) = (0.0, 0.0, 0.0);
    let mut out: [Vec<Sample>; 7] = Default::default();
    let mut coin = Xoshiro256PlusPlus::seed_from_u64(17);
    let mut half = |n: f64| (0..n as u64).filter(|_| coin.random::<bool>()).count() as f64;
    for (p, &n) in incs.iter().enumerate() {
        let t = all[0].samples[p].t;
        let s = (0..n as u64).filter(|_| rng.random::<f64>() < 0.5).count() as f64;
        let mut c = (0..s as u64).filter(|_| rng.random::<f64>() < 0.9).count() as f64;
        if p % 50 == 7 {
            c = s + 2.0;
        }
        let f = (0..n as u64).filter(|_| rng.random::<f64>() < 0.05).count();
        let b = (0..f).filter(|_| rng.random::<f64>() < 0.1).count() as f64;
        started += s;
        completed += c;
        bugs += b;
        other += f as f64 - b;
        paid += half(s);
        reviewed += half(c);
        answered += half(f as f64);
        let values = [started, completed, bugs, other, paid, reviewed, answered];
        for (series, v) in out.iter_mut().zip(values) {
            series.push(Sample::new(t, v));
        }
    }
    let [s, c, b, o, p, r, a] = out;
    for (name, label, samples) in [
        ("business_flow_started_total", None, s),
        ("business_flow_completed_total", None, c),
        ("feedback_submissions_total", Some("bug"), b),
        ("feedback_submissions_total", Some("other"), o),
        ("business_flow_paid_total", None, p),
        ("business_flow_reviewed_total", None, r),
        ("feedback_answered_total", None, a),
    ] {
        all.push(Series {
            name: name.into(),
            labels: label
                .map(|v| vec![("type".to_string(), v.to_string())])
                .unwrap_or_default(),
            samples,
            line: 1,
            column: 1,
        });
    }
    Recording::new(vec![("r.csv".into(), Trace { series: all })]).expect("a recording")
}

/// A plan of `phases` with Lawsker's two custom metrics over [`business_recording`]'s
/// counters: a conversion rate (completed flows over started ones, nested) and a bug
/// report rate (a split's value over the counter), each with a rollback rule.
fn business_plan(phases: &str) -> LoweredPlan {
    let sel = "service=\\\"$service\\\",track=\\\"$track\\\"";
    plan_of(
        ("business", "2m", phases),
        &format!(
            "metrics:
  conversion_rate:
    query: \"sum(rate(business_flow_completed_total{{{sel}}}[$window])) / sum(rate(business_flow_started_total{{{sel}}}[$window]))\"
    unit: ratio
    bad: low
  bug_report_rate:
    query: \"sum(rate(feedback_submissions_total{{{sel},type=\\\"bug\\\"}}[$window])) / sum(rate(feedback_submissions_total{{{sel}}}[$window]))\"
    unit: ratio
    bad: high
rollback_conditions:
  - {{ metric: error_rate, threshold: 5%, duration: 1m }}
  - {{ metric: conversion_rate, threshold: 84%, duration: 1m }}
  - {{ metric: bug_report_rate, threshold: 25%, duration: 1m }}
"
        ),
    )
}

/// The scenario file's models of [`business_recording`]'s counters.
const BUSINESS_SERIES: &str = "baseline:
  series:
    business_flow_started_total: { counter: { per_request: 50% } }
    business_flow_completed_total: { counter: { of: business_flow_started_total, share: 90% } }
    feedback_submissions_total: { counter: { per_request: 5% }, split: { type: { bug: 10%, other: 90% } } }
";

/// Counters nested in others (completed flows within started ones, with scrapes where
/// more complete than start) and counters modelled under `baseline.series` (with a split
/// born at its first event on the canary) run on sparse trials: at a 100% share, where
/// thinning draws nothing, every value the custom queries read is the full trial's.
#[test]
fn nested_and_modelled_counters_read_as_on_full_trials() {
    let rec = business_recording();
    let lowered = business_plan("  - { name: all, traffic: 100%, duration: 3h }");
    let file = format!(
        "trials: 4
traffic: {{ requests_per_second: 8, start_hour: 3 }}
{BUSINESS_SERIES}scenarios:
  - name: healthy
  - name: crash
    fault: {{ kind: crash, onset: 95m }}
"
    );
    let sc = scenarios(&lowered, &file);
    let every: Vec<usize> = (0..lowered.plan.metrics.len()).collect();
    let (compared, present) = same_as_full((&rec, &lowered, &sc), (&[3, 5], 3, &every), |_| {});
    assert!(
        present > compared / 3,
        "{present} of {compared} values present"
    );
}

/// At a canary share, nested counters drawn per span (the child within its parent's
/// canary events) and a fault's `series` effects applied per piece draw the full trials'
/// law: a flow that breaks (a share down, the parent's events up or down carrying their
/// children), a split that moves, and more failures.
#[test]
fn nested_counters_and_series_effects_draw_the_full_trials_law() {
    let rec = business_recording();
    let lowered = business_plan(
        "  - { name: canary, traffic: 30%, duration: 40m }\n  - { name: all, traffic: 100%, duration: 20m }",
    );
    let file = format!(
        "trials: 1000
traffic: {{ requests_per_second: 8, start_hour: 3 }}
{BUSINESS_SERIES}scenarios:
  - name: healthy
  - name: broken-flow
    fault: {{ kind: step, onset: 20m, series: {{ business_flow_completed_total: {{ share: 84% }} }} }}
  - name: fixed-flow
    fault: {{ kind: bursts, onset: 5m, every: 9m, lasting: 2m, series: {{ business_flow_completed_total: {{ share: 97% }} }} }}
  - name: fewer-flows
    fault: {{ kind: step, onset: 10m, series: {{ business_flow_started_total: {{ per_request: 20% }} }} }}
  - name: more-flows
    fault: {{ kind: leak, onset: 10m, ramp: 20m, series: {{ business_flow_started_total: {{ per_request: 90% }} }} }}
  - name: bugs
    fault: {{ kind: step, onset: 15m, series: {{ feedback_submissions_total: {{ split: {{ type: {{ bug: 22%, other: 78% }} }} }} }} }}
  - name: errors
    fault: {{ kind: partial, onset: 25m, users: 30%, error_rate: 4% }}
  - name: load
    fault: {{ kind: load, onset: 0s, above_rps: 1, error_rate: 1%, series: {{ business_flow_completed_total: {{ share: 88% }} }} }}
"
    );
    let sc = scenarios(&lowered, &file);
    let models = Model::classes(&lowered.plan, &sc, &lowered.rules, Semantics::Prometheus3);
    let mut rm = Baseline::of(&rec, None).model(&lowered.plan, &lowered.rules, &models[0]);
    assert!(rm.sparse().is_some(), "{:?}", rm.sparse.as_ref().err());
    let lean = tallies(&rm, &lowered, &sc);
    rm.sparse = Err(String::new());
    let full = tallies(&rm, &lowered, &sc);
    same_law(&sc, &full, &lean);
}

/// A counter nested in several series' events together, two counters nested in one, or
/// one nested in a nested counter, needs full trials, and the reason names it.
#[test]
fn counters_nested_other_than_in_one_series_run_full_trials() {
    let rec = business_recording();
    let reason = |query: &str| {
        let lowered = one_metric("flow", query, "ratio");
        let file = format!(
            "{BUSINESS_SERIES}    business_flow_paid_total: {{ counter: {{ of: business_flow_started_total, share: 50% }} }}
    business_flow_reviewed_total: {{ counter: {{ of: business_flow_completed_total, share: 50% }} }}
    feedback_answered_total: {{ counter: {{ of: feedback_submissions_total, share: 50% }} }}
scenarios:
  - name: healthy
"
        );
        let sc = scenarios(&lowered, &file);
        let models = Model::classes(&lowered.plan, &sc, &lowered.rules, Semantics::Prometheus3);
        let rm = Baseline::of(&rec, None).model(&lowered.plan, &lowered.rules, &models[0]);
        rm.sparse.err()
    };
    let rate = |name: &str| {
        format!("sum(rate({name}{{service=\\\"$service\\\",track=\\\"$track\\\"}}[$window]))")
    };
    let (started, completed) = (
        rate("business_flow_started_total"),
        rate("business_flow_completed_total"),
    );
    let (paid, reviewed) = (
        rate("business_flow_paid_total"),
        rate("business_flow_reviewed_total"),
    );
    let (answered, feedback) = (
        rate("feedback_answered_total"),
        rate("feedback_submissions_total"),
    );
    assert_eq!(reason(&format!("{completed} / {started}")), None);
    assert_eq!(
        reason(&format!("{answered} / {feedback}")).as_deref(),
        Some("`feedback_answered_total` is nested in several series' events together")
    );
    assert_eq!(
        reason(&format!("({completed} + {paid}) / {started}")).as_deref(),
        Some(
            "`business_flow_paid_total` and `business_flow_completed_total` are both nested in `business_flow_started_total`"
        )
    );
    assert_eq!(
        reason(&format!(
            "{reviewed} / {completed} * {completed} / {started}"
        ))
        .as_deref(),
        Some(
            "`business_flow_reviewed_total` is nested in `business_flow_completed_total`, itself nested in another counter"
        )
    );
}
