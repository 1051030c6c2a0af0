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
