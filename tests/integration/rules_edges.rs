//! The rendered rules at the edges real services reach first, proven by `promtool test
//! rules` on hand-written series (the generated tests cover thresholds; these cover what
//! client libraries and exporters really expose), and by the replay on the same series:
//! - a healthy canary that has not failed yet has no `code="5xx"` series: its error rate is
//!   0 and no no-data alert fires;
//! - a canary that fails every request has no `code="2xx"` series: its availability is 0
//!   and the availability rollback fires;
//! - a container without a memory limit (`container_spec_memory_limit_bytes` 0) is left out
//!   of `memory_usage` instead of reading as an infinite share; a limited one still counts.

use crate::support::*;

const HEALTHY: &str = "http_requests_total{code=\"200\",service=\"backend\",track=\"canary\"}";
const FAILING: &str = "http_requests_total{code=\"500\",service=\"backend\",track=\"canary\"}";

/// Runs `promtool test rules` on `test` (YAML) beside the rules of `plan_file`'s rendered
/// `prometheus/` folder; panics with promtool's words on failure.
fn promtool_test_of(plan_file: &str, test: &str, what: &str) {
    let Some(bin) = tool("promtool") else { return };
    let dir = render(plan_file).join("prometheus");
    std::fs::write(dir.join("edge.test.yml"), test).expect("write test");
    let (ok, out) = crate::promtool::promtool(&bin, &dir, &["test", "rules", "edge.test.yml"]);
    assert!(ok, "{what}:\n{out}\n--- test:\n{test}");
}

/// [`promtool_test_of`] lawsker's rules.
fn promtool_test(test: &str, what: &str) {
    promtool_test_of("plans/lawsker.yaml", test, what);
}

/// A promtool test of lawsker's alpha rules: `series` (name, values) scraped every 15s,
/// then `checks` (already indented as items of the test's list).
fn test_file(series: &[(&str, &str)], checks: &str) -> String {
    let mut s = String::from(
        "rule_files: [alpha.rules.yml]\nevaluation_interval: 1m\ntests:\n  - interval: 15s\n    input_series:\n",
    );
    for (name, values) in series {
        s.push_str(&format!(
            "      - series: '{name}'\n        values: '{values}'\n"
        ));
    }
    s.push_str(checks);
    s
}

#[test]
fn a_canary_without_errors_yet_has_an_error_rate_of_zero() {
    let test = test_file(
        &[(HEALTHY, "0+600x120")],
        r#"    promql_expr_test:
      - expr: service_track:error_rate:ratio_rate5m
        eval_time: 20m
        exp_samples:
          - labels: 'service_track:error_rate:ratio_rate5m{plan="lawsker",service="backend",track="canary"}'
            value: 0
      - expr: service_track:availability:ratio_rate5m
        eval_time: 20m
        exp_samples:
          - labels: 'service_track:availability:ratio_rate5m{plan="lawsker",service="backend",track="canary"}'
            value: 1
    alert_rule_test:
      - eval_time: 25m
        alertname: CanaryNoDataErrorRate
        exp_alerts: []
      - eval_time: 25m
        alertname: CanaryNoDataAvailability
        exp_alerts: []
      - eval_time: 25m
        alertname: CanaryRollbackErrorRate
        exp_alerts: []
"#,
    );
    promtool_test(&test, "healthy canary without a 5xx series");
}

#[test]
fn a_canary_failing_every_request_rolls_back_on_availability() {
    let Some(_) = tool("promtool") else { return };
    // The availability rollback fires once the rate window has two samples of the 500s
    // series and then stays below 99% for its `for` (5m).
    let rules =
        std::fs::read_to_string(render("plans/lawsker.yaml").join("prometheus/alpha.rules.yml"))
            .unwrap();
    assert!(rules.contains("alert: CanaryRollbackAvailability"));
    let test = test_file(
        &[(FAILING, "0+600x120")],
        r#"    promql_expr_test:
      - expr: service_track:availability:ratio_rate5m
        eval_time: 20m
        exp_samples:
          - labels: 'service_track:availability:ratio_rate5m{plan="lawsker",service="backend",track="canary"}'
            value: 0
      - expr: service_track:error_rate:ratio_rate5m
        eval_time: 20m
        exp_samples:
          - labels: 'service_track:error_rate:ratio_rate5m{plan="lawsker",service="backend",track="canary"}'
            value: 1
    alert_rule_test:
      - eval_time: 10m
        alertname: CanaryNoDataAvailability
        exp_alerts: []
"#,
    );
    promtool_test(&test, "canary failing every request");
    let firing = test_file(
        &[(FAILING, "0+600x120")],
        r#"    promql_expr_test:
      - expr: count(ALERTS{alertname="CanaryRollbackAvailability",alertstate="firing"})
        eval_time: 20m
        exp_samples:
          - labels: '{}'
            value: 1
"#,
    );
    promtool_test(&firing, "the availability rollback fires");
}

#[test]
fn a_container_without_a_memory_limit_is_left_out_of_memory_usage() {
    let limited =
        "container_spec_memory_limit_bytes{service=\"backend\",track=\"canary\",pod=\"a\"}";
    let used_limited =
        "container_memory_working_set_bytes{service=\"backend\",track=\"canary\",pod=\"a\"}";
    let unlimited =
        "container_spec_memory_limit_bytes{service=\"backend\",track=\"canary\",pod=\"b\"}";
    let used_unlimited =
        "container_memory_working_set_bytes{service=\"backend\",track=\"canary\",pod=\"b\"}";
    let test = test_file(
        &[
            (limited, "1000x40"),
            (used_limited, "250x40"),
            (unlimited, "0x40"),
            (used_unlimited, "900x40"),
        ],
        r#"    promql_expr_test:
      - expr: service_track:memory_usage:max_ratio
        eval_time: 5m
        exp_samples:
          - labels: 'service_track:memory_usage:max_ratio{plan="lawsker",service="backend",track="canary"}'
            value: 0.25
"#,
    );
    promtool_test(&test, "a container without a memory limit");
    // With no limited container at all there is no value (and the no-data warning says so),
    // never +Inf.
    let test = test_file(
        &[(unlimited, "0x40"), (used_unlimited, "900x40")],
        r#"    promql_expr_test:
      - expr: service_track:memory_usage:max_ratio
        eval_time: 5m
        exp_samples: []
"#,
    );
    promtool_test(&test, "no container with a memory limit");
}

/// The replay computes the same values from the same series.
#[test]
fn the_replay_agrees_on_the_edges() {
    let dir = temp_dir("rules-edges-replay");
    let trace = dir.join("trace.csv");
    let mut csv = String::from("timestamp,series,labels,value\n");
    for i in 0..=120u64 {
        let t = i * 15;
        csv.push_str(&format!(
            "{t},http_requests_total,code=200;service=backend;track=canary,{}\n",
            i * 600
        ));
        csv.push_str(&format!(
            "{t},container_spec_memory_limit_bytes,pod=b;service=backend;track=canary,0\n"
        ));
        csv.push_str(&format!(
            "{t},container_memory_working_set_bytes,pod=b;service=backend;track=canary,900\n"
        ));
    }
    std::fs::write(&trace, csv).unwrap();
    let done = plan()
        .args([
            "simulate",
            "plans/lawsker.yaml",
            "--format",
            "json",
            "--trace",
        ])
        .arg(&trace)
        .expect(0);
    let report: serde_json::Value = serde_json::from_str(&done.stdout).expect("JSON");
    let fired: Vec<&str> = report["rules"]
        .as_array()
        .expect("rules")
        .iter()
        .filter(|r| !r["first_firing_ms"].is_null())
        .filter_map(|r| r["alert"].as_str())
        .collect();
    assert!(
        !fired.contains(&"CanaryNoDataErrorRate") && !fired.contains(&"CanaryNoDataAvailability"),
        "a healthy canary without 5xx series fired {fired:?}\n{}",
        done.stdout
    );
    assert!(
        fired.contains(&"CanaryNoDataMemoryUsage"),
        "memory_usage without any limit has no value: {fired:?}"
    );
}

/// A comparison with stable has a floor: while stable has no failed request, checkout's
/// `2x stable and above 1%` stays silent on a canary failing 0.5% of requests (which `2x
/// stable` alone would roll back) and fires at 3%.
#[test]
fn a_relative_rule_with_a_floor_ignores_a_stable_without_errors() {
    let rules =
        std::fs::read_to_string(render("plans/checkout.yaml").join("prometheus/early.rules.yml"))
            .unwrap();
    assert!(
        rules.contains("> 0.01\""),
        "the floor is in the rule:\n{rules}"
    );
    let stable = "http_requests_total{code=\"200\",service=\"checkout\",track=\"stable\"}";
    let ok = "http_requests_total{code=\"200\",service=\"checkout\",track=\"canary\"}";
    let failed = "http_requests_total{code=\"500\",service=\"checkout\",track=\"canary\"}";
    for (failed_per_1000, firing) in [(5, false), (30, true)] {
        let expected = if firing {
            "\n          - labels: '{}'\n            value: 1"
        } else {
            " []"
        };
        let test = format!(
            "rule_files: [early.rules.yml]\nevaluation_interval: 30s\ntests:\n  - interval: 15s\n    input_series:\n      - series: '{stable}'\n        values: '0+1000x120'\n      - series: '{ok}'\n        values: '0+{}x120'\n      - series: '{failed}'\n        values: '0+{failed_per_1000}x120'\n    promql_expr_test:\n      - expr: count(ALERTS{{alertname=\"CanaryRollbackErrorRate\",alertstate=\"firing\"}})\n        eval_time: 20m\n        exp_samples:{expected}\n",
            1000 - failed_per_1000
        );
        promtool_test_of(
            "plans/checkout.yaml",
            &test,
            &format!("{failed_per_1000} failed per 1000 (firing: {firing})"),
        );
    }
}
