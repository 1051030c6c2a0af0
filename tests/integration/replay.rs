//! `plan simulate --trace`: the replay of one recorded trace, through the binary. Expected
//! times are worked out by hand in each test from the trace.

use crate::support::{self, plan};
use std::fmt::Write as _;
use std::path::Path;

/// Which Prometheus the replay follows (`--semantics`).
#[derive(Clone, Copy)]
enum Semantics {
    Prometheus2,
    Prometheus3,
}

impl Semantics {
    fn flag(self) -> &'static str {
        match self {
            Semantics::Prometheus2 => "prometheus2",
            Semantics::Prometheus3 => "prometheus3",
        }
    }
}

/// `plan simulate plans/lawsker.yaml --trace PATH`, with `extra` flags.
fn replay(path: &Path, sem: Semantics, extra: &[&str]) -> support::Done {
    plan()
        .args([
            "simulate",
            "plans/lawsker.yaml",
            "--semantics",
            sem.flag(),
            "--trace",
        ])
        .arg(path)
        .args(extra)
        .run()
}

/// The replay's timeline (exit 0).
fn timeline(path: &Path, sem: Semantics) -> String {
    let done = replay(path, sem, &[]);
    assert_eq!(done.code, 0, "{}", done.stderr);
    done.stdout
}

/// The replay's JSON document (exit 0).
fn json(path: &Path, sem: Semantics) -> serde_json::Value {
    let done = replay(path, sem, &["--format", "json"]);
    assert_eq!(done.code, 0, "{}", done.stderr);
    serde_json::from_str(&done.stdout).expect("JSON document")
}

#[test]
fn error_spike_rolls_back_through_availability_first() {
    // 150 requests per 15s interval, from +10m 30 of them fail. With Prometheus 3's
    // (ts-5m, ts] window the ratio covers 19 intervals: availability < 99% as soon as one
    // bad interval is in (+10m15s, so the +11m evaluation), firing 5m later at +16m;
    // error_rate > 10% needs 10 bad intervals (+12m30s → +13m), firing at +18m. 2.42's
    // closed window (20 intervals) gives the same evaluations.
    let path = support::root().join("simulations/traces/error-spike.csv");
    for sem in [Semantics::Prometheus3, Semantics::Prometheus2] {
        let doc = json(&path, sem);
        assert_eq!(doc["format"], "plan-replay");
        assert_eq!(doc["version"], 1);
        assert_eq!(doc["start"], "2024-05-01T12:00:00Z");
        assert_eq!(doc["verdict"]["outcome"], "rolled_back");
        assert_eq!(doc["verdict"]["alert"], "CanaryRollbackAvailability");
        assert_eq!(doc["verdict"]["at_ms"], 16 * 60_000);
        assert_eq!(doc["verdict"]["phase"], "alpha");
        let rule = |name: &str| {
            doc["rules"]
                .as_array()
                .unwrap()
                .iter()
                .find(|r| r["alert"] == name)
                .unwrap()
                .clone()
        };
        assert_eq!(
            rule("CanaryRollbackAvailability")["first_pending_ms"],
            11 * 60_000
        );
        assert_eq!(
            rule("CanaryRollbackErrorRate")["first_pending_ms"],
            13 * 60_000
        );
        // Stopped at the verdict, before the error-rate rule could fire.
        assert_eq!(
            rule("CanaryRollbackErrorRate")["first_firing_ms"],
            serde_json::Value::Null
        );
        // No latency series: its no-data rule is pending from t=0 and fires after 5m.
        assert_eq!(
            rule("CanaryNoDataResponseTimeP95")["first_firing_ms"],
            5 * 60_000
        );
        let metrics = doc["metrics"].as_array().unwrap();
        assert_eq!(metrics[0]["name"], "error_rate");
        assert_eq!(metrics[0]["canary"]["raw"]["series"], 2);
    }
    let text = timeline(&path, Semantics::Prometheus3);
    assert!(text.contains("Verdict: ROLLED BACK at +16m (2024-05-01T12:16:00Z) in phase alpha: CanaryRollbackAvailability fired"), "{text}");
    assert!(text.contains("CanaryRollbackAvailability"), "{text}");
}

#[test]
fn recorded_healthy_json_keeps_running() {
    let path = support::root().join("simulations/traces/recorded-healthy.json");
    let doc = json(&path, Semantics::Prometheus3);
    assert_eq!(doc["verdict"]["outcome"], "running");
    assert_eq!(doc["verdict"]["at_ms"], 30 * 60_000);
    assert_eq!(doc["evaluations"], 31);
    assert!(
        doc["rules"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["fired"] == 0),
        "{doc}"
    );
    assert_eq!(doc["unused_series_total"], 0);
    let conv = doc["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == "conversion_rate")
        .unwrap();
    assert!(
        conv["stable"]["recorded"]["series"]
            .as_str()
            .unwrap()
            .contains("track=\"stable\"")
    );
}

/// A healthy week of recorded values at 1m: the release walks through every phase and
/// is promoted when production starts (24h + 48h + 72h).
#[test]
fn a_healthy_week_is_promoted_after_six_days() {
    let dir = support::temp_dir("replay-week");
    let path = dir.join("week.csv");
    let mut s = String::from("timestamp,series,labels,value\n");
    let levels = [
        ("error_rate", 0.01),
        ("response_time_p95", 900.0),
        ("availability", 0.999),
        ("cpu_usage", 0.3),
        ("memory_usage", 0.5),
        ("db_connections", 20.0),
        ("redis_memory_usage", 0.2),
        ("bug_report_rate", 0.02),
    ];
    for i in 0..=7 * 24 * 60 {
        let t = 1_714_521_600 + i * 60;
        for (m, v) in levels {
            let _ = writeln!(s, "{t},{m},track=canary,{v}");
        }
        let _ = writeln!(s, "{t},conversion_rate,track=canary,0.96");
        let _ = writeln!(s, "{t},conversion_rate,track=stable,0.97");
    }
    std::fs::write(&path, s).unwrap();
    let doc = json(&path, Semantics::Prometheus3);
    assert_eq!(doc["verdict"]["outcome"], "promoted");
    assert_eq!(doc["verdict"]["at_ms"], 144 * 3_600_000i64);
    assert_eq!(doc["verdict"]["phase"], "production");
    let started: Vec<&str> = doc["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["event"] == "phase_started")
        .map(|e| e["phase"].as_str().unwrap())
        .collect();
    assert_eq!(started, ["alpha", "beta", "gamma", "production"]);
    assert!(doc["gate_failures"].as_array().unwrap().is_empty());
}

#[test]
fn a_gate_firing_at_the_end_of_a_phase_is_reported() {
    // db_connections at 85 (gate: < 80) during the last 10 minutes of alpha (24h).
    let dir = support::temp_dir("replay-gate");
    let path = dir.join("gate.csv");
    let mut s = String::new();
    for i in 0..=(24 * 60 + 5) {
        let t = i * 60;
        let db = if i >= 24 * 60 - 10 { 85 } else { 20 };
        let _ = writeln!(s, "{t},db_connections,track=canary,{db}");
    }
    std::fs::write(&path, s).unwrap();
    let doc = json(&path, Semantics::Prometheus3);
    let fails = doc["gate_failures"].as_array().unwrap();
    assert_eq!(fails.len(), 1, "{doc:#}");
    assert_eq!(fails[0]["alert"], "CanaryGateDbConnections");
    assert_eq!(fails[0]["phase"], "alpha");
    assert_eq!(fails[0]["at_ms"], 24 * 3_600_000i64);
    let text = timeline(&path, Semantics::Prometheus3);
    assert!(
        text.contains(
            "Gate failed: CanaryGateDbConnections was firing when phase alpha ended at +1d"
        ),
        "{text}"
    );
}

#[test]
fn bad_traces_point_at_the_line_and_column() {
    let dir = support::temp_dir("replay-bad");
    let cases: [(&str, &str, usize, usize, &str); 5] = [
        (
            "a.csv",
            "timestamp,series,labels,value\n0,error_rate,track=canary,0.1\n60,error_rate,track=canary,lots\n",
            3,
            28,
            "not a sample value",
        ),
        (
            "b.csv",
            "0,error_rate,track=canary;bad-label=1,0.1\n",
            1,
            27,
            "not a label name",
        ),
        (
            "c.csv",
            "0,error_rate,track=canary,1\n0,service_track:error_rate:ratio_rate5m,track=canary,2\n",
            2,
            3,
            "two series give `error_rate`",
        ),
        (
            "d.json",
            "{\"status\":\"success\",\"data\":{\"resultType\":\"matrix\",\"result\":[\n  {\"metric\":{\"job\":\"x\"},\"values\":[]}]}}\n",
            2,
            13,
            "no `__name__`",
        ),
        ("e.csv", "# only a comment\n", 1, 1, "no samples"),
    ];
    for (name, text, line, column, msg) in cases {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        let done = replay(&p, Semantics::Prometheus3, &[]);
        assert_eq!(done.code, 1, "{}", done.stderr);
        let head = format!("{}:{line}:{column}: error[trace]:", p.display());
        assert!(done.stderr.starts_with(&head), "{name}: {}", done.stderr);
        assert!(done.stderr.contains(msg), "{name}: {}", done.stderr);
    }
    let done = replay(&dir.join("missing.csv"), Semantics::Prometheus3, &[]);
    assert_eq!(done.code, 2, "{}", done.stderr);
    assert!(done.stderr.contains("no such file"), "{}", done.stderr);
}

/// A trace that is not one is shown as a plan's findings are (`file:line:col`, the line,
/// the field underlined, the hint), exit 1: golden files in `tests/invalid-traces/`, each
/// `NAME.csv` or `NAME.json` with its expected stderr in `NAME.EXT.stderr`.
#[test]
fn trace_errors_are_shown_as_plan_findings_are() {
    let dir = support::root().join("tests/invalid-traces");
    let mut failures = Vec::new();
    let mut traces: Vec<_> = std::fs::read_dir(&dir)
        .expect("tests/invalid-traces")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| !n.ends_with(".stderr"))
        .collect();
    traces.sort();
    assert!(traces.len() >= 3, "fixtures: {traces:?}");
    for name in traces {
        let rel = format!("tests/invalid-traces/{name}");
        let done = replay(Path::new(&rel), Semantics::Prometheus3, &[]);
        if done.code != 1 || !done.stdout.is_empty() {
            failures.push(format!(
                "{rel}: exit {}, stdout {:?}",
                done.code, done.stdout
            ));
        }
        crate::golden::compare(
            &dir.join(format!("{name}.stderr")),
            &done.stderr,
            &mut failures,
        );
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The thin-traffic warning at a scenario file's rate is a located finding, shown by the
/// same renderer as the plan's own (golden: `tests/warnings/thin-traffic.stderr`).
#[test]
fn thin_traffic_at_the_simulated_rate_is_a_located_warning() {
    let done = plan()
        .args([
            "simulate",
            "plans/checkout.yaml",
            "--scenarios",
            "tests/warnings/thin-traffic.yaml",
            "--trials",
            "4",
        ])
        .run();
    assert_eq!(done.code, 0, "{}", done.stderr);
    let mut failures = Vec::new();
    crate::golden::compare(
        &support::root().join("tests/warnings/thin-traffic.stderr"),
        &done.stderr,
        &mut failures,
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
