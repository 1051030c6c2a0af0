//! Unit tests of the engine on small hand-made series; the proof against promtool itself
//! is in the integration tests (`proof`).

use super::*;
use crate::prom::Sample;

const MIN: i64 = 60_000;

fn series(name: &str, labels: &[(&str, &str)], values: &[f64]) -> Series {
    let mut l: Vec<(String, String)> = labels
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    l.sort();
    Series {
        name: name.into(),
        labels: l,
        samples: values
            .iter()
            .enumerate()
            .map(|(i, v)| Sample::new(i as i64 * MIN, *v))
            .collect(),
        line: 0,
        column: 0,
    }
}

fn eval(query: &str, s: &[Series], ts: i64) -> Result<Vec<(String, f64)>, String> {
    let expr = program(query)?;
    let mut b = Bound::new(&expr, s);
    b.vector_at(s, ts, Semantics::Prometheus3)
        .map_err(|e| e.message)
}

fn traffic() -> Vec<Series> {
    vec![
        series(
            "req_total",
            &[("code", "200"), ("track", "canary")],
            &[0., 60., 120., 180., 240., 300.],
        ),
        series(
            "req_total",
            &[("code", "500"), ("track", "canary")],
            &[0., 6., 12., 18., 24., 30.],
        ),
        series(
            "req_total",
            &[("code", "200"), ("track", "stable")],
            &[0., 600., 1200., 1800., 2400., 3000.],
        ),
    ]
}

#[test]
fn a_ratio_of_two_counters() {
    let s = traffic();
    let q = r#"sum(rate(req_total{track="canary",code="500"}[5m])) / sum(rate(req_total{track="canary"}[5m]))"#;
    let v = eval(q, &s, 5 * MIN).unwrap();
    assert_eq!(v.len(), 1);
    assert!((v[0].1 - 30.0 / 330.0).abs() < 1e-12, "{v:?}");
}

#[test]
fn grouping_and_matching() {
    let s = traffic();
    let by = eval("sum by (track) (req_total)", &s, 5 * MIN).unwrap();
    assert_eq!(
        by,
        vec![
            ("{track=\"canary\"}".into(), 330.0),
            ("{track=\"stable\"}".into(), 3000.0)
        ]
    );
    let without = eval("max without (code) (req_total)", &s, 5 * MIN).unwrap();
    assert_eq!(without.len(), 2);
    let count = eval("count(req_total)", &s, 5 * MIN).unwrap();
    assert_eq!(count, vec![("{}".into(), 3.0)]);
    // One-to-one on track: two canary series on the left, one on the right.
    let err = eval(
        r#"req_total / on (track) req_total{code="200"}"#,
        &s,
        5 * MIN,
    )
    .unwrap_err();
    assert!(
        err.contains("many-to-one matching must be explicit"),
        "{err}"
    );
    let grouped = eval(
        r#"req_total / on (track) group_left req_total{code="200"}"#,
        &s,
        5 * MIN,
    )
    .unwrap();
    assert_eq!(grouped.len(), 3);
    assert!(grouped.contains(&("{code=\"500\", track=\"canary\"}".into(), 0.1)));
}

#[test]
fn set_operators_and_comparisons() {
    let s = traffic();
    let and = eval(
        r#"req_total > 100 and on (track) req_total{code="500"}"#,
        &s,
        5 * MIN,
    )
    .unwrap();
    assert_eq!(
        and,
        vec![("req_total{code=\"200\", track=\"canary\"}".into(), 300.0)]
    );
    let or = eval(r#"sum(req_total{track="none"}) or vector(0)"#, &s, 5 * MIN).unwrap();
    assert_eq!(or, vec![("{}".into(), 0.0)]);
    let unless = eval(r#"req_total unless req_total{code="500"}"#, &s, 5 * MIN).unwrap();
    assert_eq!(unless.len(), 2);
    let b = eval(r#"req_total{code="500"} > bool 100"#, &s, 5 * MIN).unwrap();
    assert_eq!(b, vec![("{code=\"500\", track=\"canary\"}".into(), 0.0)]);
    let scalar_left = eval(r#"100 < req_total{code="500"}"#, &s, 5 * MIN).unwrap();
    assert!(scalar_left.is_empty());
}

#[test]
fn functions_of_ranges_and_offsets() {
    let s = traffic();
    let c = r#"req_total{code="500",track="canary"}"#;
    let inc = eval(&format!("increase({c}[5m])"), &s, 5 * MIN).unwrap();
    assert!((inc[0].1 - 30.0).abs() < 1e-9, "{inc:?}");
    let irate = eval(&format!("irate({c}[5m])"), &s, 5 * MIN).unwrap();
    assert_eq!(irate[0].1, 0.1);
    let avg = eval(&format!("avg_over_time({c}[2m])"), &s, 5 * MIN).unwrap();
    assert_eq!(avg[0].1, 27.0);
    let off = eval(&format!("{c} offset 2m"), &s, 5 * MIN).unwrap();
    assert_eq!(off[0].1, 18.0);
    let last = eval(&format!("last_over_time({c}[5m])"), &s, 5 * MIN).unwrap();
    assert!(
        last[0].0.starts_with("req_total"),
        "last_over_time keeps the name"
    );
    let absent = eval(r#"absent(nothing{track="canary",a=~"x"})"#, &s, 5 * MIN).unwrap();
    assert_eq!(absent, vec![("{track=\"canary\"}".into(), 1.0)]);
    let t = eval("time()", &s, 5 * MIN).unwrap();
    assert_eq!(t[0].1, 300.0);
    let clamp = eval(&format!("clamp({c}, 0, 10)"), &s, 5 * MIN).unwrap();
    assert_eq!(clamp[0].1, 10.0);
    let top = eval("topk(1, req_total)", &s, 5 * MIN).unwrap();
    assert_eq!(top[0].1, 3000.0);
    let q = eval("quantile(0.5, req_total)", &s, 5 * MIN).unwrap();
    assert_eq!(q[0].1, 300.0);
}

#[test]
fn histogram_quantile_over_buckets() {
    let s = vec![
        series("lat_bucket", &[("le", "0.1")], &[0., 50., 100.]),
        series("lat_bucket", &[("le", "1")], &[0., 90., 180.]),
        series("lat_bucket", &[("le", "+Inf")], &[0., 100., 200.]),
    ];
    let v = eval(
        "histogram_quantile(0.5, sum by (le) (rate(lat_bucket[2m])))",
        &s,
        2 * MIN,
    )
    .unwrap();
    assert_eq!(v.len(), 1);
    assert!((v[0].1 - 0.1).abs() < 1e-12, "{v:?}");
}

#[test]
fn outside_the_subset_is_refused_by_name() {
    let e = program("predict_linear(x[5m], 60)").unwrap_err();
    assert!(e.contains("`predict_linear`"), "{e}");
    assert!(
        program("rate(x[5m:1m])")
            .unwrap_err()
            .contains("a subquery inside `rate`")
    );
    assert!(program("stddev(x)").unwrap_err().contains("`stddev`"));
    assert!(program("x @ 100").unwrap_err().contains("`@`"));
}

#[test]
fn a_query_of_many_series_is_an_error_for_a_rule() {
    let s = traffic();
    let expr = program("req_total").unwrap();
    let mut b = Bound::new(&expr, &s);
    let e = b.value_at(&s, 5 * MIN, Semantics::Prometheus3).unwrap_err();
    assert!(e.message.contains("returns 3 series"), "{}", e.message);
    assert_eq!(b.reads(), vec![0, 1, 2]);
}

/// A tiny deterministic generator for the random traces below.
struct Rng(crate::sim::splitmix::SplitMix64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0.next_u64() % n
    }
    fn chance(&mut self, p: f64) -> bool {
        (self.0.next_u64() >> 11) as f64 / (1u64 << 53) as f64 <= p
    }
}

/// Random raw series for every built-in metric, on both tracks: request counters per code,
/// latency buckets, CPU counters and gauges per instance, `up`; with counter resets,
/// counters starting at zero or mid-way, gaps, staleness markers and NaN, on a random
/// scrape interval.
fn random_trace(rng: &mut Rng, n: usize) -> Vec<Series> {
    let step = [10_000, 15_000, 30_000, 60_000][rng.below(4) as usize];
    let mut out = Vec::new();
    let mut push = |rng: &mut Rng, name: &str, labels: Vec<(&str, &str)>, counter: bool| {
        let mut l: Vec<(String, String)> = labels
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        l.sort();
        let mut v = if rng.chance(0.5) {
            0.0
        } else {
            rng.below(1000) as f64
        };
        let mut samples = Vec::new();
        for i in 0..n {
            let t = i as i64 * step
                + if rng.chance(0.2) {
                    rng.below(3000) as i64
                } else {
                    0
                };
            if counter {
                if rng.chance(0.03) {
                    v = 0.0;
                }
                v += rng.below(50) as f64;
            } else {
                v = rng.below(100) as f64;
            }
            let x = if rng.chance(0.04) {
                continue;
            } else if rng.chance(0.03) {
                crate::prom::STALE_NAN
            } else if rng.chance(0.01) {
                f64::NAN
            } else {
                v
            };
            samples.push(Sample::new(t, x));
        }
        out.push(Series {
            name: name.into(),
            labels: l,
            samples,
            line: 0,
            column: 0,
        });
    };
    for track in ["canary", "stable"] {
        let base = |extra: Vec<(&'static str, &'static str)>| {
            let mut l = vec![("service", "backend"), ("track", track)];
            l.extend(extra);
            l
        };
        for code in ["200", "500", "503"] {
            if rng.chance(0.8) {
                push(rng, "http_requests_total", base(vec![("code", code)]), true);
            }
        }
        for le in ["0.1", "0.5", "1", "+Inf"] {
            if rng.chance(0.9) {
                push(
                    rng,
                    "http_request_duration_seconds_bucket",
                    base(vec![("le", le)]),
                    true,
                );
            }
        }
        for inst in ["a", "b"] {
            push(
                rng,
                "process_cpu_seconds_total",
                base(vec![("instance", inst)]),
                true,
            );
            push(
                rng,
                "container_memory_working_set_bytes",
                base(vec![("instance", inst)]),
                false,
            );
            if rng.chance(0.8) {
                push(
                    rng,
                    "container_spec_memory_limit_bytes",
                    base(vec![("instance", inst)]),
                    false,
                );
            }
            push(
                rng,
                "db_connections_in_use",
                base(vec![("instance", inst)]),
                false,
            );
            push(
                rng,
                "redis_memory_used_bytes",
                base(vec![("instance", inst)]),
                false,
            );
            push(
                rng,
                "redis_memory_max_bytes",
                base(vec![("instance", inst)]),
                false,
            );
            push(rng, "up", base(vec![("instance", inst)]), false);
        }
    }
    out
}

fn same(a: Option<f64>, b: Option<f64>) -> bool {
    match (a, b) {
        (None, None) => true,
        (Some(x), Some(y)) => x.to_bits() == y.to_bits() || (x.is_nan() && y.is_nan()),
        _ => false,
    }
}

/// The engine, reading the very PromQL `plan render` writes for each built-in metric,
/// computes bit for bit what the structured evaluator computes (which the `proof`
/// integration test holds against promtool 2.42), in both semantics: an independent check
/// of the engine on every function, aggregation and operator the built-in queries use, and
/// of its 3.x mode.
#[test]
fn the_engine_computes_the_built_in_queries_as_their_structured_evaluator_does() {
    use crate::check::BUILTINS;
    use crate::model::Duration;
    use crate::prom::Query;
    use crate::promql::Track;
    let mut rng = Rng(crate::sim::splitmix::SplitMix64::new(0xE161_7E57));
    let (mut compared, mut valued) = (0, 0);
    for trial in 0..60 {
        let n = 40 + rng.below(40) as usize;
        let series = random_trace(&mut rng, n);
        let window = Duration::parse(["1m", "2m", "5m"][trial % 3]).unwrap();
        for b in BUILTINS.iter() {
            let expr = b.expr("backend", window);
            for track in [Track::Canary, Track::Stable] {
                let text = expr.promql(Some(track));
                let program = program(&text).unwrap_or_else(|e| panic!("{text}: {e}"));
                for sem in [Semantics::Prometheus2, Semantics::Prometheus3] {
                    let mut structured = Query::raw(&expr, track, &series);
                    let mut engine = Bound::new(&program, &series);
                    let mut ts = 0;
                    while ts < n as i64 * 60_000 {
                        let want = structured.at(&series, ts, sem).unwrap();
                        let got = engine.value_at(&series, ts, sem);
                        // `max` of several instances' ratios is one series; a failed
                        // evaluation (duplicate label sets) cannot happen on these series.
                        let got = got.unwrap_or_else(|e| panic!("{text} at {ts}: {}", e.message));
                        assert!(
                            same(want, got),
                            "trial {trial}, {sem:?}, {text} at {ts}: structured {want:?}, engine {got:?}"
                        );
                        compared += 1;
                        valued += want.is_some_and(|v| !v.is_nan()) as usize;
                        ts += 15_000 + rng.below(2) as i64 * 7_000;
                    }
                }
            }
        }
    }
    assert!(compared > 100_000, "{compared} comparisons");
    assert!(
        valued * 5 > compared * 2,
        "{valued} of {compared} have a value"
    );
}

/// Random queries over random series never panic the engine, whatever they compute.
#[test]
fn random_queries_never_panic() {
    let mut rng = Rng(crate::sim::splitmix::SplitMix64::new(7));
    let series = random_trace(&mut rng, 30);
    let atoms = [
        "http_requests_total",
        "rate(http_requests_total[1m])",
        "irate(up[5m] offset 1m)",
        "changes(up[2m])",
        "resets(http_requests_total[5m])",
        "avg_over_time(up[3m])",
        "quantile_over_time(0.3, up[3m])",
        "stddev_over_time(up[3m])",
        "absent(nothing)",
        "absent_over_time(up[1m])",
        "vector(time())",
        "histogram_quantile(0.9, rate(http_request_duration_seconds_bucket[2m]))",
        "clamp(up, 1, 0)",
        "-up",
    ];
    let aggs = ["sum", "avg", "min", "max", "count"];
    let ops = [
        "+", "/", "%", "^", "> bool", "<", "and", "or", "unless", "== bool",
    ];
    let mut ran = 0;
    for _ in 0..3000 {
        let mut q = atoms[rng.below(atoms.len() as u64) as usize].to_string();
        for _ in 0..rng.below(3) {
            let other = atoms[rng.below(atoms.len() as u64) as usize];
            let op = ops[rng.below(ops.len() as u64) as usize];
            q = match rng.below(4) {
                0 => format!("{}({q})", aggs[rng.below(aggs.len() as u64) as usize]),
                1 => format!("topk(2, {q})"),
                2 => format!("({q}) {op} on(track) group_left {other}"),
                _ => format!("({q}) {op} ({other})"),
            };
        }
        let Ok(expr) = program(&q) else { continue };
        let mut b = Bound::new(&expr, &series);
        for ts in (0..30).map(|i| i * 20_000) {
            let _ = b.value_at(&series, ts, Semantics::Prometheus3);
        }
        ran += 1;
    }
    assert!(ran > 1000, "{ran} queries ran");
}

#[test]
fn the_element_returned_is_known_by_its_labels() {
    // Prometheus keys a rule's alerts by their labels: the replay must know which element
    // a query returned (found by the custom-query proof against promtool: an
    // `increase(x{instance="a"}[5m])` going from absent to NaN is another alert of the
    // no-data rule, whose `for` starts over).
    let s = vec![
        series("q", &[("instance", "a")], &[5., 1., f64::NAN]),
        series("q", &[("instance", "b")], &[3., 4., 2.]),
    ];
    let expr = program("topk(1, q)").unwrap();
    let mut b = Bound::new(&expr, &s);
    let returned = |b: &mut Bound, ts: i64| {
        let v = b.value_at(&s, ts, Semantics::Prometheus2).unwrap();
        (v, b.last().map(|i| b.slots()[i].clone()))
    };
    let instance = |i: &str| {
        Some(vec![
            ("__name__".to_string(), "q".to_string()),
            ("instance".to_string(), i.to_string()),
        ])
    };
    assert_eq!(returned(&mut b, 0), (Some(5.0), instance("a")));
    assert_eq!(returned(&mut b, MIN), (Some(4.0), instance("b")));
    // NaN is the lowest for topk.
    assert_eq!(returned(&mut b, 2 * MIN), (Some(2.0), instance("b")));
    // Nothing returned: no element; a scalar has no labels either.
    let none = program("q{instance=\"c\"}").unwrap();
    let mut b = Bound::new(&none, &s);
    assert_eq!(returned(&mut b, 0), (None, None));
    let scalar = program("scalar(q{instance=\"a\"})").unwrap();
    let mut b = Bound::new(&scalar, &s);
    assert_eq!(returned(&mut b, 0), (Some(5.0), None));
}
