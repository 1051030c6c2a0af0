//! The proof against Prometheus itself: many random and edge-case traces are replayed by the
//! simulator (`Semantics::Prometheus2`) and, as `promtool test rules` unit tests, by
//! promtool 2.42 over the rules file `plan render` wrote for the first phase. For every
//! trace, every alerting rule and every evaluation, both must agree on whether the alert
//! fires; in particular the first firing evaluations are equal.
//!
//! Method: one unit-test file holds one test group per trace, and each group expects *no*
//! alert for every rule at every evaluation (`exp_alerts: []`). promtool then reports a
//! failure exactly where an alert fires ("name: trace-7, alertname: X, time: 17m"), so one
//! promtool run yields the whole firing timeline of every rule of every trace.
//!
//! The plan is Lawsker's with two more rollback conditions that have a minimum-traffic
//! guard (`min_requests`, [`GUARDS`]): one counts the request counter, one the latency
//! histogram's `_count`, so guarded rules are proven too, request counts exactly at the
//! guard included.
//!
//! Traces cover both levels: raw series (request counters with resets, gaps, staleness
//! markers and counters starting at zero or mid-way; latency histogram buckets; CPU counter;
//! memory/db/redis gauges) and recorded series (values exactly at thresholds, NaN, runs that
//! stop one evaluation before `for` elapses, gaps longer than the 5m lookback). Sums here
//! never add more than two series, whose order Prometheus does not fix (see
//! `prom::query`).

use crate::proof_support::{
    Comparison, MIN, Rng, SeriesSpec, TraceSpec, Val, compare, counter, differing, holes, lbl,
    plain, promtool_group, promtool_timelines, segments, write_trace, yaml_single,
};
use crate::support;
use plan::lower::LoweredPlan;
use plan::prom::Semantics;
use plan::sim::replay;
use plan::sim::splitmix::SplitMix64;
use plan::sim::trace;
use std::collections::BTreeMap;

fn canary(extra: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut l = lbl(&[("service", "backend"), ("track", "canary")]);
    l.extend(lbl(extra));
    l
}

fn raw_trace(rng: &mut Rng, k: usize) -> TraceSpec {
    let step_ms = rng.pick(&[15_000i64, 30_000, 60_000]);
    let per_min = (MIN / step_ms) as usize;
    let minutes = 35 + rng.below(30) as usize;
    let n = minutes * per_min + 1;
    let mut series = Vec::new();
    let (p_gap, p_stale, p_long) = match k % 4 {
        0 => (0.0, 0.0, 0.0),
        1 => (0.05, 0.0, 0.0),
        2 => (0.03, 0.02, 0.0),
        _ => (0.02, 0.01, 0.03),
    };
    let p_reset = if k.is_multiple_of(3) { 0.0 } else { 0.02 };

    // Requests: per-step totals and error shares that hit the thresholds exactly.
    let mut ok = Vec::with_capacity(n);
    let mut err = Vec::with_capacity(n);
    for len in segments(rng, n, per_min) {
        let total: f64 = rng.pick(&[0.0, 20.0, 40.0, 100.0, 100.0, 200.0]);
        let share = rng.pick(&[0.0, 0.005, 0.01, 0.05, 0.1, 0.1, 0.15, 0.5, 1.0]);
        let e = (total * share).round();
        for _ in 0..len {
            ok.push(total - e);
            err.push(e);
        }
    }
    let start = if rng.chance(0.5) {
        0.0
    } else {
        rng.below(5000) as f64
    };
    let mut v200 = counter(rng, &ok, start, p_reset);
    let start500 = if start == 0.0 {
        0.0
    } else {
        rng.below(50) as f64
    };
    let mut v500 = counter(rng, &err, start500, p_reset);
    holes(rng, &mut v200, p_gap, p_stale, p_long);
    holes(rng, &mut v500, p_gap, p_stale, p_long);
    series.push(plain(
        "http_requests_total",
        canary(&[("code", "200")]),
        v200,
    ));
    series.push(plain(
        "http_requests_total",
        canary(&[("code", "500")]),
        v500,
    ));

    // Latency buckets: per-step counts spread over the bounds by regime.
    let les = ["0.1", "0.5", "1", "2.5", "5", "10", "+Inf"];
    let mut count = Vec::new();
    let mut per_bucket: Vec<Vec<f64>> = vec![Vec::with_capacity(n); les.len()];
    for len in segments(rng, n, per_min) {
        // Non-cumulative counts per bucket for one step.
        let spread: [f64; 7] = match rng.below(5) {
            0 => [60.0, 30.0, 5.0, 3.0, 2.0, 0.0, 0.0],
            1 => [10.0, 20.0, 20.0, 20.0, 20.0, 5.0, 5.0],
            2 => [0.0, 10.0, 20.0, 30.0, 35.0, 5.0, 0.0],
            3 => [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0],
            _ => [5.0, 5.0, 5.0, 5.0, 10.0, 40.0, 30.0],
        };
        for _ in 0..len {
            let mut cum = 0.0;
            for (b, s) in spread.iter().enumerate() {
                cum += s;
                per_bucket[b].push(cum);
            }
        }
    }
    let restart_at: Vec<usize> = (1..n)
        .filter(|_| p_reset > 0.0 && rng.chance(0.01))
        .collect();
    for (b, le) in les.iter().enumerate() {
        let mut c = 0.0;
        let mut vals: Vec<Option<Val>> = Vec::with_capacity(n);
        for (i, d) in per_bucket[b].iter().enumerate() {
            if restart_at.contains(&i) {
                c = 0.0;
            }
            if i > 0 {
                c += d;
            }
            vals.push(Some(Val::Num(c)));
        }
        if k % 4 == 1 {
            holes(rng, &mut vals, 0.02, 0.0, 0.0);
        }
        if *le == "+Inf" {
            count = vals.clone();
        }
        series.push(plain(
            "http_request_duration_seconds_bucket",
            canary(&[("le", le)]),
            vals,
        ));
    }
    // The histogram's count, which a guard on the latency reads: its `+Inf` bucket.
    series.push(plain(
        "http_request_duration_seconds_count",
        canary(&[]),
        count,
    ));

    // CPU: one instance's counter.
    let step_s = step_ms as f64 / 1000.0;
    let mut cpu_inc = Vec::with_capacity(n);
    for len in segments(rng, n, per_min) {
        let u = rng.pick(&[0.25, 0.5, 0.8, 0.8, 0.95, 1.5]);
        cpu_inc.extend(std::iter::repeat_n(u * step_s, len));
    }
    let mut cpu = counter(rng, &cpu_inc, 100.0, p_reset / 2.0);
    holes(rng, &mut cpu, p_gap, p_stale, 0.0);
    series.push(plain(
        "process_cpu_seconds_total",
        canary(&[("instance", "a")]),
        cpu,
    ));

    // Gauges: memory (two instances, max of ratios), db connections (sum of two), redis.
    let gauge = |rng: &mut Rng, levels: &[f64]| -> Vec<Option<Val>> {
        let mut out = Vec::with_capacity(n);
        for len in segments(rng, n, per_min) {
            let v = rng.pick(levels);
            out.extend(std::iter::repeat_n(Some(Val::Num(v)), len));
        }
        out
    };
    for inst in ["a", "b"] {
        let mut used = gauge(rng, &[500.0, 850.0, 900.0, 900.0, 950.0]);
        holes(rng, &mut used, p_gap, p_stale, p_long);
        series.push(plain(
            "container_memory_working_set_bytes",
            canary(&[("instance", inst)]),
            used,
        ));
        series.push(plain(
            "container_spec_memory_limit_bytes",
            canary(&[("instance", inst)]),
            vec![Some(Val::Num(1000.0)); n],
        ));
        let mut db = gauge(rng, &[10.0, 39.5, 40.0, 40.0, 41.0, 60.0]);
        holes(rng, &mut db, p_gap, p_stale, p_long);
        series.push(plain(
            "db_connections_in_use",
            canary(&[("instance", inst)]),
            db,
        ));
    }
    let mut redis = gauge(rng, &[0.3, 0.9, 0.95]);
    holes(rng, &mut redis, p_gap, 0.0, 0.0);
    series.push(plain("redis_memory_used_bytes", canary(&[]), redis));
    series.push(plain(
        "redis_memory_max_bytes",
        canary(&[]),
        vec![Some(Val::Num(1.0)); n],
    ));

    // Decoys no rule reads: the stable track, another service.
    series.push(plain(
        "http_requests_total",
        lbl(&[("code", "500"), ("service", "backend"), ("track", "stable")]),
        vec![Some(Val::Num(1e6)); n],
    ));
    series.push(plain(
        "http_requests_total",
        lbl(&[("code", "500"), ("service", "other"), ("track", "canary")]),
        vec![Some(Val::Num(7.0)); n],
    ));

    // Custom metrics as recorded series in half of the traces.
    if k.is_multiple_of(2) {
        series.extend(recorded_series(
            rng,
            n,
            per_min,
            true,
            &["bug_report_rate", "conversion_rate"],
        ));
    }
    TraceSpec {
        step_ms,
        n,
        series,
        raw: true,
    }
}

/// (metric, recorded name, levels to draw from; NaN sometimes).
const RECORDED: [(&str, &str, &[f64]); 11] = [
    (
        "error_rate",
        "service_track:error_rate:ratio_rate5m",
        &[0.0, 0.01, 0.05, 0.05, 0.07, 0.1, 0.1, 0.2],
    ),
    (
        "response_time_p95",
        "service_track:response_time_p95:p95_rate5m",
        &[
            120.0, 2999.0, 3000.0, 4000.0, 5000.0, 5000.0, 5001.0, 9000.0,
        ],
    ),
    (
        "availability",
        "service_track:availability:ratio_rate5m",
        &[1.0, 0.999, 0.995, 0.995, 0.99, 0.99, 0.98],
    ),
    (
        "cpu_usage",
        "service_track:cpu_usage:avg_rate5m",
        &[0.2, 0.79, 0.8, 0.8, 0.9],
    ),
    (
        "memory_usage",
        "service_track:memory_usage:max_ratio",
        &[0.5, 0.9, 0.9, 0.95],
    ),
    (
        "db_connections",
        "service_track:db_connections:sum",
        &[10.0, 79.0, 80.0, 80.0, 95.0],
    ),
    (
        "redis_memory_usage",
        "service_track:redis_memory_usage:max_ratio",
        &[0.1, 0.9, 0.9, 0.99],
    ),
    (
        "bug_report_rate",
        "service_track:bug_report_rate:query",
        &[0.0, 0.1, 0.2, 0.2, 0.3],
    ),
    (
        "conversion_rate",
        "service_track:conversion_rate:query",
        &[0.5, 0.855, 0.9, 0.95, 1.0],
    ),
    // The request counts the guards read (`min_requests` 100 and 50, see `GUARDS`).
    (
        "http_requests",
        "service_track:http_requests:increase5m",
        &[0.0, 50.0, 99.5, 100.0, 100.0, 150.0, 1000.0],
    ),
    (
        "http_request_duration_seconds_count",
        "service_track:http_request_duration_seconds_count:increase5m",
        &[0.0, 25.0, 49.9, 50.0, 50.0, 80.0, 500.0],
    ),
];

fn recorded_series(
    rng: &mut Rng,
    n: usize,
    per_min: usize,
    nan: bool,
    only: &[&str],
) -> Vec<SeriesSpec> {
    let mut out = Vec::new();
    for (metric, rec, levels) in RECORDED {
        if !only.is_empty() && !only.contains(&metric) {
            continue;
        }
        let tracks: &[&str] = if metric == "conversion_rate" {
            &["canary", "stable"]
        } else {
            &["canary"]
        };
        for track in tracks {
            let mut values = Vec::with_capacity(n);
            for len in segments(rng, n, per_min) {
                let v = if nan && rng.chance(0.05) {
                    f64::NAN
                } else if *track == "stable" {
                    rng.pick(&[0.9, 1.0, 1.0])
                } else {
                    rng.pick(levels)
                };
                values.extend(std::iter::repeat_n(Some(Val::Num(v)), len));
            }
            let short = rng.chance(0.3);
            out.push(SeriesSpec {
                name: rec.into(),
                labels: lbl(&[
                    ("plan", "lawsker"),
                    ("service", "backend"),
                    ("track", track),
                ]),
                csv_name: if short { metric.into() } else { rec.into() },
                csv_labels: if short {
                    lbl(&[("track", track)])
                } else {
                    lbl(&[
                        ("plan", "lawsker"),
                        ("service", "backend"),
                        ("track", track),
                    ])
                },
                values,
            });
        }
    }
    out
}

fn recorded_trace(rng: &mut Rng, k: usize) -> TraceSpec {
    let step_ms = rng.pick(&[30_000i64, 60_000, 60_000, 120_000]);
    let per_min = ((MIN / step_ms) as usize).max(1);
    let minutes = 35 + rng.below(30) as usize;
    let n = (minutes as i64 * MIN / step_ms) as usize + 1;
    let mut series = recorded_series(rng, n, per_min, !k.is_multiple_of(3), &[]);
    if k % 4 == 3 {
        // Flapping exactly around `for` (5m): bad for 5 evaluations, good for one, bad for 6.
        let s = series
            .iter_mut()
            .find(|s| s.csv_name.contains("error_rate"))
            .expect("error_rate");
        let bad = [0.2; 1];
        let pattern: Vec<f64> = [
            &[0.0; 3][..],
            &[bad[0]; 5],
            &[0.0; 1],
            &[bad[0]; 6],
            &[0.0; 2],
        ]
        .concat();
        let per = (MIN / step_ms).max(1) as usize;
        for (j, v) in pattern.iter().enumerate() {
            for x in 0..per {
                if let Some(slot) = s.values.get_mut(j * per + x) {
                    *slot = Some(Val::Num(*v));
                }
            }
        }
    }
    for s in &mut series {
        let p = if k.is_multiple_of(2) { 0.0 } else { 0.04 };
        holes(
            rng,
            &mut s.values,
            p,
            p / 2.0,
            if k.is_multiple_of(5) { 0.03 } else { 0.0 },
        );
    }
    TraceSpec {
        step_ms,
        n,
        series,
        raw: false,
    }
}

/// Rollback conditions with a minimum-traffic guard, added to the Lawsker plan so that the
/// proof covers guarded rules beside its own: one on the request counter, one on the
/// latency histogram's `_count`.
const GUARDS: &str = "rollback_conditions:
  - { id: error_rate_guarded, metric: error_rate, threshold: 5%, duration: 2m, min_requests: 100 }
  - { id: latency_guarded, metric: response_time_p95, threshold: 3s, duration: 5m, min_requests: 50 }
";

/// The Lawsker plan with [`GUARDS`], written to a folder of its own (its scenario file
/// named by absolute path), and compiled.
fn lawsker() -> (std::path::PathBuf, LoweredPlan) {
    let root = support::root();
    let text = std::fs::read_to_string(root.join("plans/lawsker.yaml"))
        .expect("plan file")
        .replacen("rollback_conditions:\n", GUARDS, 1)
        .replace(
            "../simulations/lawsker.yaml",
            &root.join("simulations/lawsker.yaml").display().to_string(),
        );
    let path = support::temp_dir("proof-plan").join("lawsker.yaml");
    std::fs::write(&path, text).expect("write the plan");
    let c = plan::pipeline::compile_file(&path).expect("plan file");
    let lowered = c.plan.expect("lawsker with guards compiles");
    assert_eq!(
        lowered.rules.iter().filter(|r| r.guard.is_some()).count(),
        2,
        "the guards are in"
    );
    (path, lowered)
}

#[test]
fn simulator_fires_exactly_when_promtool_does() {
    let Some(promtool) = support::tool("promtool") else {
        return;
    };
    let started = std::time::Instant::now();
    let (plan_file, lowered) = lawsker();
    let (plan, rules) = (&lowered.plan, &lowered.rules);
    let alerts: Vec<String> = rules.iter().map(|r| r.alert.clone()).collect();
    let ei = plan.monitoring.evaluation_interval.millis() as i64;
    let out = support::render(&plan_file.display().to_string());
    let first_phase = &plan.phases[0].name;
    let rules_file = out
        .join("prometheus")
        .join(format!("{first_phase}.rules.yml"));
    assert!(rules_file.is_file(), "{} rendered", rules_file.display());
    let first_phase_ms = plan.phases[0]
        .duration
        .map_or(i64::MAX, |d| d.millis() as i64);

    let dir = support::temp_dir("proof");
    let mut rng = Rng(SplitMix64::new(0x5EED_CAFE));
    let traces = 64;
    let mut test_yaml = format!(
        "rule_files:\n- {}\nevaluation_interval: {}s\ntests:\n",
        yaml_single(&rules_file.display().to_string()),
        ei / 1000
    );
    // The simulator's view: (trace, rule) → firing evaluation times.
    let mut expected: BTreeMap<(usize, usize), Vec<i64>> = BTreeMap::new();
    let mut raw_count = 0;
    let mut control: BTreeMap<(usize, usize), Vec<i64>> = BTreeMap::new();
    // The guarded rules without their guards: where these fire and the guarded do not,
    // the guard held a rule back (the proof must see that happen).
    let unguarded: Vec<plan::lower::AlertRule> = rules
        .iter()
        .cloned()
        .map(|mut r| {
            r.guard = None;
            r
        })
        .collect();
    let mut held_back = 0;
    for k in 0..traces {
        let spec = if k % 2 == 0 {
            raw_trace(&mut rng, k / 2)
        } else {
            recorded_trace(&mut rng, k / 2)
        };
        raw_count += spec.raw as usize;
        let end = (spec.n as i64 - 1) * spec.step_ms;
        let until = end / ei * ei;
        assert!(until < first_phase_ms, "traces stay within the first phase");
        let (file, text) = write_trace(&dir, k, &spec);
        let (mut tr, _) = replay::load(&file).unwrap_or_else(|e| panic!("trace {k} loads: {e:?}"));
        let span = replay::align(&mut tr, &replay::Options::default()).expect("aligned");
        assert_eq!(span.zero, 0, "trace {k} starts at t=0");
        let firing = replay::firing_per_rule(plan, rules, &tr, Semantics::Prometheus2, until)
            .expect("replays");
        // Control: Prometheus 3's windows must disagree with promtool 2.42 somewhere, or
        // the comparison would not be able to tell versions apart.
        let p3 = replay::firing_per_rule(plan, rules, &tr, Semantics::Prometheus3, until)
            .expect("replays");
        for (ri, f) in p3.iter().enumerate() {
            control.insert((k, ri), f.clone());
        }
        let bare = replay::firing_per_rule(plan, &unguarded, &tr, Semantics::Prometheus2, until)
            .expect("replays");
        held_back += (0..rules.len())
            .filter(|&ri| rules[ri].guard.is_some() && bare[ri] != firing[ri])
            .count();
        for (ri, f) in firing.iter().enumerate() {
            expected.insert((k, ri), f.clone());
        }
        // The phase-aware replay agrees: its verdict is the first rollback rule to fire.
        let report = replay::run(
            plan,
            rules,
            &mut trace::parse(&text).expect("parses"),
            "t",
            &replay::Options {
                semantics: Semantics::Prometheus2,
                ..replay::Options::default()
            },
        )
        .expect("replay runs");
        // The report as its JSON document shows it.
        let report = serde_json::to_value(&report).expect("the report serialises");
        let verdict = &report["verdict"];
        // These traces have no `up`: the replay leaves the silent-canary rule out and says
        // so (promtool, over one phase's file, fires it on `absent`).
        let skipped = |r: &plan::lower::AlertRule| {
            r.alert == "CanaryRollbackSilentCanary"
                && report["not_evaluated"].as_array().is_some_and(|n| {
                    n.iter()
                        .any(|x| x.as_str().is_some_and(|x| x.starts_with(r.alert.as_str())))
                })
        };
        let first_rollback = rules
            .iter()
            .enumerate()
            .filter(|(_, r)| r.kind == plan::lower::RuleKind::Rollback && !skipped(r))
            .filter_map(|(ri, _)| firing[ri].first().map(|&t| (t, ri)))
            .min();
        match first_rollback {
            Some((t, ri)) => {
                assert_eq!(verdict["outcome"], "rolled_back", "trace {k}");
                assert_eq!(verdict["at_ms"], t, "trace {k}");
                assert_eq!(verdict["alert"], rules[ri].alert.as_str(), "trace {k}");
            }
            None => assert_eq!(verdict["outcome"], "running", "trace {k}"),
        }
        // The timeline goes on past the verdict: every rule's first firing over the whole
        // trace is promtool's, the verdict's rule included.
        for (ri, r) in report["rules"]
            .as_array()
            .expect("rules")
            .iter()
            .enumerate()
        {
            // A rule the replay did not evaluate (no `up` in the trace) never fires there.
            let expected = firing[ri].first().copied().filter(|_| !skipped(&rules[ri]));
            assert_eq!(
                r["first_firing_ms"].as_i64(),
                expected,
                "trace {k} rule {}",
                r["alert"]
            );
        }
        test_yaml.push_str(&promtool_group(
            &format!("trace-{k}"),
            &spec,
            &alerts,
            until,
            ei,
        ));
    }
    let test_file = dir.join("proof.test.yml");
    std::fs::write(&test_file, &test_yaml).expect("write test file");
    let got = promtool_timelines(&promtool, &test_file, &alerts);
    eprintln!(
        "proof: promtool ran in {:.1}s",
        started.elapsed().as_secs_f64()
    );

    let Comparison {
        mismatches,
        fired_rules,
        firing_evals,
    } = compare(&expected, &got, &alerts);
    eprintln!(
        "proof: {traces} traces ({raw_count} raw, {} recorded), {} rules, {} firing evaluations compared, {} rules fired at least once, {} mismatches, {:.1}s",
        traces - raw_count,
        alerts.len(),
        firing_evals,
        fired_rules.len(),
        mismatches.len(),
        started.elapsed().as_secs_f64()
    );
    let p3_differs = differing(&control, &got);
    eprintln!(
        "proof: control: with Prometheus 3 semantics {p3_differs} (trace, rule) timelines differ from promtool 2.42"
    );
    assert!(
        p3_differs > 0,
        "the proof cannot tell Prometheus 2.42 from 3.x semantics"
    );
    assert!(
        mismatches.is_empty(),
        "simulator and promtool disagree:\n{}",
        mismatches.join("\n")
    );
    // The guards must have mattered, and every guarded rule fired somewhere.
    eprintln!("proof: guards held a rule back in {held_back} (trace, rule) timelines");
    assert!(held_back > 0, "no guard ever held a rule back");
    for (ri, r) in rules.iter().enumerate() {
        if r.guard.is_some() {
            assert!(fired_rules.contains(&ri), "{} never fired", r.alert);
        }
    }
    // The traces are worth something only if most rules fire somewhere.
    assert!(
        fired_rules.len() >= alerts.len() - 2,
        "only {} of {} rules ever fired",
        fired_rules.len(),
        alerts.len()
    );
}
