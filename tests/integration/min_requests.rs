//! `min_requests`, the minimum-traffic guard of a rollback condition, at the release level
//! through the real binary: at thin traffic the guard keeps one failed request in a thin
//! window from rolling a healthy release back, in Monte Carlo and in the replay of a trace.

use crate::simulate::{closed_form_rollback, closed_form_run, test_plan, wilson};
use crate::support::{self, plan, write};
use serde_json::Value;

/// The healthy scenario's rollbacks (all false) of `plan simulate` on `plan_file`.
fn healthy_rollbacks(plan_file: &std::path::Path, scenarios: &std::path::Path) -> (u64, u64) {
    let done = plan()
        .arg("simulate")
        .arg(plan_file)
        .args(["--scenarios", scenarios.to_str().unwrap()])
        .args(["--trials", "300", "--seed", "7", "--format", "json"])
        .expect(0);
    let v: Value = serde_json::from_str(&done.stdout).expect("the report is JSON");
    let h = v["scenarios"]
        .as_array()
        .expect("scenarios")
        .iter()
        .find(|s| s["name"] == "healthy")
        .expect("healthy");
    (
        h["rollback"]["count"].as_u64().expect("count"),
        h["trials"].as_u64().unwrap_or(300),
    )
}

#[test]
fn a_guard_lowers_the_false_rollback_rate_at_thin_traffic() {
    let dir = support::temp_dir("min-requests-sim");
    // 2 req/s, 5% to the canary for 3h: about 30 requests per 5m window, where a healthy
    // 2% error rate puts one or two failures (3-7%) past a 5% threshold often.
    let scenarios = write(
        &dir,
        "thin.yaml",
        "traffic: { requests_per_second: 2, daily_amplitude: 0 }\nbaseline: { error_rate: 2% }\nscenarios:\n  - name: healthy\n",
    );
    let rule = "metric: error_rate, threshold: 5%, duration: 5m";
    let bare = test_plan(
        &dir,
        "bare",
        "5%",
        "3h",
        "{ window: 5m }",
        &[&format!("{{ {rule} }}")],
    );
    let guarded = test_plan(
        &dir,
        "guarded",
        "5%",
        "3h",
        "{ window: 5m }",
        &[&format!("{{ {rule}, min_requests: 60 }}")],
    );
    let (without, n) = healthy_rollbacks(&bare, &scenarios);
    let (with, _) = healthy_rollbacks(&guarded, &scenarios);
    eprintln!(
        "false rollbacks of {n} healthy releases: {without} without the guard, {with} with it"
    );
    assert!(
        without * 5 > n,
        "thin traffic rolls many healthy releases back: {without} of {n}"
    );
    assert!(
        with * 10 < without,
        "the guard keeps most of them: {with} of {n} against {without}"
    );
}

/// The closed form of `simulate`'s `false_rollback_rate_matches_the_closed_form`, with a
/// guard: a window rolls back only when it holds at least N requests (Prometheus 2's
/// windows on this grid hold exactly the requests of their five minutes, so `increase()`
/// is the count itself) and more than the threshold of them fail.
#[test]
fn a_guarded_false_rollback_rate_matches_the_closed_form() {
    let dir = support::temp_dir("min-requests-closed");
    let threshold = 0.0631;
    let guard = 205u64;
    // mu = 200 requests per window, so the guard passes about a third of the windows.
    let (p, sc) = closed_form_run(
        &dir,
        &format!("threshold: {threshold}, min_requests: {guard}"),
    );
    let trials = 4000u64;
    let done = plan()
        .arg("simulate")
        .arg(&p)
        .args(["--scenarios", sc.to_str().unwrap()])
        .args([
            "--trials",
            &trials.to_string(),
            "--semantics",
            "prometheus2",
        ])
        .args(["--seed", "2024", "--format", "json"])
        .expect(0);
    let r: Value = serde_json::from_str(&done.stdout).expect("the report is JSON");
    let h = &r["scenarios"][0];
    assert_eq!(h["name"], "healthy");
    let (expected, q) = closed_form_rollback(threshold, guard);
    let count = h["rollback"]["count"].as_u64().unwrap();
    let (lo, hi) = wilson(count, trials, 3.290_526_731_491_926);
    eprintln!(
        "closed form with min_requests {guard}: {expected:.4} (per window {q:.4}); Monte Carlo {count} of {trials}, 99.9% [{lo:.4}, {hi:.4}]"
    );
    assert!(
        (0.02..0.6).contains(&expected),
        "the test's parameters should give a visible probability: {expected}"
    );
    assert!(
        lo <= expected && expected <= hi,
        "closed form {expected} outside the 99.9% Wilson interval [{lo}, {hi}]"
    );
}

/// A plan whose 5% error-rate rule counts only windows of 100 requests or more.
fn guarded_plan(dir: &std::path::Path) -> std::path::PathBuf {
    test_plan(
        dir,
        "guarded",
        "5%",
        "3h",
        "{ window: 5m, silent_canary: off }",
        &["{ metric: error_rate, threshold: 5%, duration: 5m, min_requests: 100 }"],
    )
}

/// A CSV trace of the canary: `requests` per minute of which `errors` fail, for `minutes`.
fn trace(dir: &std::path::Path, requests: u64, errors: u64, minutes: u64) -> std::path::PathBuf {
    let mut csv = String::from("timestamp,series,labels,value\n");
    for m in 0..=minutes {
        let t = format!("2024-05-01T{:02}:{:02}:00Z", 12 + m / 60, m % 60);
        for (code, n) in [("200", requests - errors), ("500", errors)] {
            csv.push_str(&format!(
                "{t},http_requests_total,service=app;track=canary;code={code},{}\n",
                n * m
            ));
        }
    }
    let p = dir.join(format!("trace-{requests}-{errors}.csv"));
    std::fs::write(&p, csv).expect("write trace");
    p
}

#[test]
fn the_replay_rolls_back_only_where_the_window_holds_enough_requests() {
    let dir = support::temp_dir("min-requests-replay");
    let p = guarded_plan(&dir);
    let outcome = |trace: &std::path::Path| {
        let done = plan()
            .arg("simulate")
            .arg(&p)
            .args(["--trace", trace.to_str().unwrap(), "--format", "json"])
            .expect(0);
        let v: Value = serde_json::from_str(&done.stdout).expect("the report is JSON");
        v["verdict"]["outcome"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    };
    // 10% errors at 10 requests a minute (50 per window): held back by the guard.
    assert_eq!(outcome(&trace(&dir, 10, 1, 40)), "running");
    // The same share at 40 a minute (200 per window): rolled back.
    assert_eq!(outcome(&trace(&dir, 40, 4, 40)), "rolled_back");
}

#[test]
fn a_trace_without_request_counts_cannot_replay_a_guarded_rule() {
    let dir = support::temp_dir("min-requests-unreadable");
    let p = guarded_plan(&dir);
    let mut csv = String::from("timestamp,series,labels,value\n");
    for m in 0..=20u64 {
        csv.push_str(&format!(
            "2024-05-01T12:{m:02}:00Z,service_track:error_rate:ratio_rate5m,track=canary,0.2\n"
        ));
    }
    let t = dir.join("recorded.csv");
    std::fs::write(&t, csv).expect("write trace");
    let done = plan()
        .arg("simulate")
        .arg(&p)
        .args(["--trace", t.to_str().unwrap()])
        .expect(1);
    assert!(
        done.stderr.contains("guard-unreadable") && done.stderr.contains("min_requests: 100"),
        "{}",
        done.stderr
    );
}
