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
        assert_eq!(doc["version"], 3);
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
        // The timeline goes on past the verdict: the error-rate rule fires 2m later, and
        // is listed among what would have happened had the release gone on.
        assert_eq!(
            rule("CanaryRollbackErrorRate")["first_firing_ms"],
            18 * 60_000
        );
        let after: Vec<(&str, i64)> = doc["after_verdict"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| (a["alert"].as_str().unwrap(), a["at_ms"].as_i64().unwrap()))
            .collect();
        assert_eq!(
            after,
            [
                ("CanaryGateErrorRate", 17 * 60_000),
                ("CanaryRollbackErrorRate", 18 * 60_000)
            ]
        );
        for e in doc["events"].as_array().unwrap() {
            let at = e["at_ms"].as_i64().unwrap();
            assert_eq!(e["after_verdict"], at > 16 * 60_000, "{e}");
        }
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
    let separator = text
        .find("--- the verdict: rolled back by CanaryRollbackAvailability in phase alpha; what follows would have happened had the release gone on ---")
        .expect(&text);
    let later = text
        .find("+18m  2024-05-01T12:18:00Z  [alpha]  CanaryRollbackErrorRate        FIRING")
        .expect(&text);
    assert!(separator < later, "{text}");
    assert!(
        text.contains(
            "After the verdict, had the release gone on: 2 rules started firing up to +30m:"
        ),
        "{text}"
    );
}

/// A trace whose error spike starts 6 minutes before its last sample (problem 7 of issue
/// 15): 150 requests per 15s scrape, from +14m 30 of them fail, the last sample at +20m.
fn late_spike(dir: &Path) -> std::path::PathBuf {
    let path = dir.join("late.csv");
    let mut s = String::from("timestamp,series,labels,value\n");
    let (mut ok, mut bad) = (0, 0);
    for i in 0..=80 {
        if i > 56 {
            ok += 120;
            bad += 30;
        } else if i > 0 {
            ok += 150;
        }
        let t = 1_714_564_800 + i * 15;
        let _ = writeln!(
            s,
            "{t},http_requests_total,service=backend;track=canary;code=200,{ok}"
        );
        let _ = writeln!(
            s,
            "{t},http_requests_total,service=backend;track=canary;code=500,{bad}"
        );
    }
    std::fs::write(&path, s).unwrap();
    path
}

/// Problem 7: a rule that would fire after the trace's last sample is seen when `--end`
/// is later. availability < 99% is pending from +15m (one bad scrape in the window) and
/// fires at +20m, the last sample: the verdict. error_rate > 10% needs more than half of
/// the 5m window bad (12 of 20 intervals at +17m), so it fires at +22m, two minutes after
/// the last sample, while the window still holds the bad scrapes; by +25m the window is
/// empty and both resolve.
#[test]
fn a_rule_that_fires_after_the_last_sample_is_seen_with_end() {
    let dir = support::temp_dir("replay-late");
    let path = late_spike(&dir);
    let doc = json(&path, Semantics::Prometheus3);
    assert_eq!(doc["end_from"], "last_sample");
    assert_eq!(doc["end_ms"], 20 * 60_000);
    assert_eq!(doc["stale_from_ms"], 25 * 60_000);
    assert_eq!(doc["verdict"]["alert"], "CanaryRollbackAvailability");
    assert_eq!(doc["verdict"]["at_ms"], 20 * 60_000);
    assert!(
        doc["after_verdict"].as_array().unwrap().is_empty(),
        "{doc:#}"
    );
    let text = timeline(&path, Semantics::Prometheus3);
    assert!(
        text.contains("After the verdict: no other rule or gate started firing up to +20m."),
        "{text}"
    );

    for sem in [Semantics::Prometheus3, Semantics::Prometheus2] {
        let done = replay(
            &path,
            sem,
            &["--end", "2024-05-01T12:25:00Z", "--format", "json"],
        );
        assert_eq!(done.code, 0, "{}", done.stderr);
        let doc: serde_json::Value = serde_json::from_str(&done.stdout).unwrap();
        assert_eq!(doc["end_from"], "flag");
        assert_eq!(doc["end_ms"], 25 * 60_000);
        assert_eq!(doc["evaluations"], 26);
        assert_eq!(doc["verdict"]["at_ms"], 20 * 60_000);
        let error_rate: Vec<(i64, &str)> = doc["events"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["alert"] == "CanaryRollbackErrorRate")
            .map(|e| {
                (
                    e["at_ms"].as_i64().unwrap() / 60_000,
                    e["event"].as_str().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            error_rate,
            [(17, "pending"), (22, "firing"), (25, "resolved")],
            "{doc:#}"
        );
        // The error-rate gate (>= 5% for the 5m window) too, a minute earlier.
        let after: Vec<(&str, i64)> = doc["after_verdict"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| {
                (
                    a["alert"].as_str().unwrap(),
                    a["at_ms"].as_i64().unwrap() / 60_000,
                )
            })
            .collect();
        assert_eq!(
            after,
            [("CanaryGateErrorRate", 21), ("CanaryRollbackErrorRate", 22)]
        );
    }
    let done = replay(
        &path,
        Semantics::Prometheus3,
        &["--end", "2024-05-01T12:25:00Z"],
    );
    assert!(
        done.stdout
            .contains("  end: +25m (2024-05-01T12:25:00Z; --end)"),
        "{}",
        done.stdout
    );
    assert!(
        done.stdout.contains(
            "After the verdict, had the release gone on: 2 rules started firing up to +25m:\n        +21m  [alpha]  CanaryGateErrorRate      gate      error_rate >= 5% (gate: < 5%)\n        +22m  [alpha]  CanaryRollbackErrorRate  rollback  error_rate > 10% for 5m\n"
        ),
        "{}",
        done.stdout
    );
}

/// `--start` off the grid: t=0 is exactly the time given (phases count from it), and the
/// first evaluation is the next grid time, which the timeline states; `--evaluation-offset`
/// moves the grid as a rule group's hash offset does in Prometheus.
#[test]
fn start_is_never_rounded_and_the_grid_is_stated() {
    let path = support::root().join("simulations/traces/error-spike.csv");
    let done = replay(
        &path,
        Semantics::Prometheus3,
        &["--start", "2024-05-01T12:00:20Z", "--format", "json"],
    );
    assert_eq!(done.code, 0, "{}", done.stderr);
    let doc: serde_json::Value = serde_json::from_str(&done.stdout).unwrap();
    assert_eq!(doc["start"], "2024-05-01T12:00:20Z");
    assert_eq!(doc["start_from"], "flag");
    assert_eq!(doc["trace_start_ms"], -20_000);
    assert_eq!(doc["first_evaluation_ms"], 40_000);
    assert_eq!(doc["last_evaluation_ms"], 29 * 60_000 + 40_000);
    assert_eq!(doc["evaluations"], 30);
    // The same evaluations as from 12:00:00, so the same absolute firing time.
    assert_eq!(doc["verdict"]["time"], "2024-05-01T12:16:00Z");
    assert_eq!(doc["verdict"]["at_ms"], 15 * 60_000 + 40_000);
    let text = replay(&path, Semantics::Prometheus3, &["--start", "1714564820"]);
    assert_eq!(text.code, 0, "{}", text.stderr);
    for want in [
        "t=0, the release's start: 2024-05-01T12:00:20Z (--start)",
        "30 evaluations every 1m, from +40s to +29m40s, on Prometheus' grid: Unix times that are multiples of 1m",
        "the release starts between two evaluations: the first is 40s after it",
    ] {
        assert!(text.stdout.contains(want), "{want}\n{}", text.stdout);
    }
    // A group offset of 15s: evaluations at :15 of each minute.
    let done = replay(
        &path,
        Semantics::Prometheus3,
        &["--evaluation-offset", "15s", "--format", "json"],
    );
    assert_eq!(done.code, 0, "{}", done.stderr);
    let doc: serde_json::Value = serde_json::from_str(&done.stdout).unwrap();
    assert_eq!(doc["start"], "2024-05-01T12:00:00Z");
    assert_eq!(doc["evaluation_offset_ms"], 15_000);
    assert_eq!(doc["first_evaluation_ms"], 15_000);
    assert_eq!(doc["evaluations"], 30);
    // The error spike begins at +10m; the first bad scrape enters the window at +10m15s,
    // so the availability rule is pending at that very evaluation and fires 5m later.
    assert_eq!(doc["verdict"]["at_ms"], 15 * 60_000 + 15_000);
}

/// `--start` / `--end` that do not fit the trace are usage errors (exit 2) that say what
/// the trace holds; so are values that are not timestamps, and the flags without --trace.
#[test]
fn start_and_end_outside_the_trace_are_clear_errors() {
    let path = support::root().join("simulations/traces/error-spike.csv");
    let held = "the trace holds samples from 2024-05-01T12:00:00Z to 2024-05-01T12:30:00Z";
    let cases: [(&[&str], &str); 5] = [
        (
            &[
                "--start",
                "2024-05-01T12:20:00Z",
                "--end",
                "2024-05-01T12:10:00Z",
            ],
            "--end 2024-05-01T12:10:00Z is before the start, 2024-05-01T12:20:00Z",
        ),
        (
            &["--start", "2024-05-01T13:00:00Z"],
            "--start 2024-05-01T13:00:00Z is after the trace's last sample, at 2024-05-01T12:30:00Z",
        ),
        (
            &["--start", "2024-05-01T11:00:00Z"],
            "--start 2024-05-01T11:00:00Z is before the trace's first sample, at 2024-05-01T12:00:00Z",
        ),
        (
            &["--end", "2024-09-01T00:00:00Z"],
            "longer than the 92d a replay may span",
        ),
        (
            &["--evaluation-offset", "90s"],
            "--evaluation-offset 1m30s is not less than the plan's evaluation interval, 1m",
        ),
    ];
    for (args, message) in cases {
        let done = replay(&path, Semantics::Prometheus3, args);
        assert_eq!(done.code, 2, "{args:?}: {}", done.stderr);
        assert!(done.stdout.is_empty(), "{args:?}");
        assert!(
            done.stderr
                .starts_with(&format!("error[replay-range]: {}: ", path.display()))
                && done.stderr.lines().next().unwrap().contains(message),
            "{args:?}: {}",
            done.stderr
        );
        assert!(done.stderr.contains("= hint: "), "{}", done.stderr);
        if !args[0].starts_with("--evaluation") {
            assert!(done.stderr.contains(held), "{}", done.stderr);
        }
    }
    let done = replay(&path, Semantics::Prometheus3, &["--start", "yesterday"]);
    assert_eq!(done.code, 2);
    assert!(
        done.stderr.contains("`yesterday` is not a timestamp"),
        "{}",
        done.stderr
    );
    let done = plan()
        .args(["simulate", "plans/lawsker.yaml", "--end", "1714564800"])
        .run();
    assert_eq!(done.code, 2);
    assert!(done.stderr.contains("--trace"), "{}", done.stderr);
}

/// `duration: 0s` (Prometheus' `for: 0`) validates, and the replay fires the rule at the
/// first evaluation where the condition holds, pending and firing at once.
#[test]
fn a_rule_with_for_zero_fires_at_the_first_evaluation_past_its_threshold() {
    let dir = support::temp_dir("replay-for-zero");
    let text = std::fs::read_to_string(support::root().join("plans/lawsker.yaml"))
        .unwrap()
        .replacen("duration: \"5m\"", "duration: \"0s\"", 1);
    assert!(text.contains("threshold: 0.1        # 10%\n    duration: \"0s\""));
    let plan_file = dir.join("lawsker.yaml");
    std::fs::write(&plan_file, text).unwrap();
    plan().arg("validate").arg(&plan_file).expect(0);
    let trace = dir.join("t.csv");
    let mut s = String::new();
    for i in 0..=20 {
        let v = if i >= 7 { 0.2 } else { 0.01 };
        let _ = writeln!(s, "{},error_rate,track=canary,{v}", i * 60);
    }
    std::fs::write(&trace, s).unwrap();
    let done = plan()
        .args(["simulate"])
        .arg(&plan_file)
        .arg("--trace")
        .arg(&trace)
        .args(["--format", "json"])
        .run();
    assert_eq!(done.code, 0, "{}", done.stderr);
    let doc: serde_json::Value = serde_json::from_str(&done.stdout).unwrap();
    assert_eq!(doc["verdict"]["alert"], "CanaryRollbackErrorRate");
    assert_eq!(doc["verdict"]["at_ms"], 7 * 60_000);
    let rule = doc["rules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["alert"] == "CanaryRollbackErrorRate")
        .unwrap();
    assert_eq!(rule["for_ms"], 0);
    assert_eq!(rule["summary"], "error_rate > 10% for 0s");
    assert_eq!(rule["first_pending_ms"], 7 * 60_000);
    assert_eq!(rule["first_firing_ms"], 7 * 60_000);
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
fn a_healthy_week_completes_after_six_days_and_a_day_watched_at_full() {
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
    // Production begins at +6d and is watched 24h (the default): complete at +7d.
    assert_eq!(doc["verdict"]["outcome"], "completed");
    assert_eq!(doc["verdict"]["at_ms"], 168 * 3_600_000i64);
    assert_eq!(doc["watch_ms"], 24 * 3_600_000i64);
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
fn a_gate_firing_at_the_end_of_a_phase_rolls_the_release_back() {
    // db_connections at 85 (gate: < 80) during the last 10 minutes of alpha (24h): the gate
    // (for: 5m) fires at 23h55 and, under the default policy, rolls the release back when
    // alpha's 24h are up (issue 15, problem 1: it used to say PROMOTED beside it).
    let dir = support::temp_dir("replay-gate");
    let path = dir.join("gate.csv");
    std::fs::write(&path, db_trace(24 * 60 - 10, 24 * 60 + 5, 24 * 60 + 5)).unwrap();
    let doc = json(&path, Semantics::Prometheus3);
    let fails = doc["gate_failures"].as_array().unwrap();
    assert_eq!(fails.len(), 1, "{doc:#}");
    assert_eq!(fails[0]["alert"], "CanaryGateDbConnections");
    assert_eq!(fails[0]["phase"], "alpha");
    assert_eq!(fails[0]["at_ms"], 24 * 3_600_000i64);
    assert_eq!(doc["verdict"]["outcome"], "rolled_back");
    assert_eq!(doc["verdict"]["alert"], "CanaryGateDbConnections");
    assert_eq!(doc["verdict"]["reason"], "gate_at_phase_end");
    assert_eq!(doc["verdict"]["phase"], "alpha");
    assert_eq!(doc["verdict"]["at_ms"], 24 * 3_600_000i64);
    assert_eq!(doc["gate_policy"]["on_failure"], "rollback");
    let text = timeline(&path, Semantics::Prometheus3);
    assert!(
        text.contains(
            "Gate failed: CanaryGateDbConnections was firing when phase alpha's duration was up at +1d: it could not advance (roll back at once)."
        ),
        "{text}"
    );
    assert!(text.contains("Verdict: ROLLED BACK at +1d"), "{text}");
}

/// A trace of db_connections on the canary, one sample a minute up to minute `last`: 85
/// (past the gate's 80) from minute `from` until before minute `until`, 20 otherwise.
fn db_trace(from: i64, until: i64, last: i64) -> String {
    let mut s = String::new();
    for i in 0..=last {
        let db = if (from..until).contains(&i) { 85 } else { 20 };
        let _ = writeln!(s, "{},db_connections,track=canary,{db}", i * 60);
    }
    s
}

/// Lawsker's plan with `gate_policy` appended, in `dir`.
fn lawsker_with(dir: &Path, policy: &str) -> std::path::PathBuf {
    let text = std::fs::read_to_string(support::root().join("plans/lawsker.yaml")).unwrap();
    support::write(
        dir,
        "lawsker.yaml",
        &format!("{text}\ngate_policy: {policy}\n"),
    )
}

/// The replay of `trace` through `plan_path`, as its timeline.
fn timeline_with(plan_path: &Path, trace: &Path) -> String {
    let done = plan()
        .arg("simulate")
        .arg(plan_path)
        .arg("--trace")
        .arg(trace)
        .run();
    assert_eq!(done.code, 0, "{}", done.stderr);
    done.stdout
}

/// The replay of `trace` through `plan_path`, as JSON.
fn json_with(plan_path: &Path, trace: &Path) -> serde_json::Value {
    let done = plan()
        .arg("simulate")
        .arg(plan_path)
        .arg("--trace")
        .arg(trace)
        .args(["--format", "json"])
        .run();
    assert_eq!(done.code, 0, "{}", done.stderr);
    serde_json::from_str(&done.stdout).expect("JSON document")
}

#[test]
fn a_held_phase_advances_at_the_first_evaluation_its_gates_pass() {
    // The gate fires from 23h55 to 24h10m (db back to 20 at minute 1450): alpha is held at
    // +24h, the gate resolves at the +24h10m evaluation, and beta begins then.
    let dir = support::temp_dir("replay-hold");
    let p = lawsker_with(&dir, "{ on_failure: hold, max_hold: 1h }");
    let trace = support::write(
        &dir,
        "db.csv",
        &db_trace(24 * 60 - 10, 24 * 60 + 10, 24 * 60 + 40),
    );
    let doc = json_with(&p, &trace);
    assert_eq!(doc["gate_policy"]["on_failure"], "hold");
    assert_eq!(doc["gate_policy"]["max_hold"]["seconds"], 3600);
    assert_eq!(doc["gate_policy"]["text"], "hold up to 1h, then roll back");
    let ev = doc["events"].as_array().unwrap();
    let hold = ev
        .iter()
        .find(|e| e["event"] == "hold_started")
        .expect("a hold");
    assert_eq!(hold["at_ms"], 24 * 3_600_000i64);
    assert_eq!(hold["phase"], "alpha");
    let beta = ev
        .iter()
        .find(|e| e["event"] == "phase_started" && e["phase"] == "beta")
        .expect("beta began");
    assert_eq!(beta["at_ms"], (24 * 60 + 10) * 60_000i64);
    assert_eq!(doc["phases"][1]["starts_ms"], (24 * 60 + 10) * 60_000i64);
    // Later phases move with it.
    assert_eq!(doc["phases"][2]["starts_ms"], (72 * 60 + 10) * 60_000i64);
    assert_eq!(doc["verdict"]["outcome"], "running");
    let holds = doc["holds"].as_array().unwrap();
    assert_eq!(holds.len(), 1, "{holds:?}");
    assert_eq!(holds[0]["outcome"], "advanced");
    assert_eq!(holds[0]["from_ms"], 24 * 3_600_000i64);
    assert_eq!(holds[0]["to_ms"], (24 * 60 + 10) * 60_000i64);
    let text = timeline_with(&p, &trace);
    assert!(
        text.contains("Hold: phase alpha from +1d, held 10m, until its gates passed at +1d10m; the next phase began then."),
        "{text}"
    );
}

#[test]
fn a_hold_past_its_limit_rolls_back_or_stays() {
    // The gate keeps failing past +25h: the hold's hour is up at the +25h evaluation.
    let dir = support::temp_dir("replay-hold-limit");
    let trace = support::write(&dir, "db.csv", &db_trace(24 * 60 - 10, 26 * 60, 26 * 60));
    let p = lawsker_with(&dir, "{ on_failure: hold, max_hold: 1h }");
    let doc = json_with(&p, &trace);
    assert_eq!(
        doc["verdict"]["outcome"], "rolled_back",
        "{:#}",
        doc["verdict"]
    );
    assert_eq!(doc["verdict"]["alert"], "CanaryGateDbConnections");
    assert_eq!(doc["verdict"]["at_ms"], 25 * 3_600_000i64);
    let stay = support::temp_dir("replay-hold-stay");
    let p = lawsker_with(
        &stay,
        "{ on_failure: hold, max_hold: 1h, after_max_hold: stay }",
    );
    let doc = json_with(&p, &trace);
    assert_eq!(doc["verdict"]["outcome"], "held", "{:#}", doc["verdict"]);
    assert_eq!(doc["holds"][0]["outcome"], "stayed");
    assert_eq!(doc["verdict"]["phase"], "alpha");
    assert_eq!(doc["verdict"]["at_ms"], 25 * 3_600_000i64);
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

/// A trace of Lawsker's custom metrics as raw counters, one scrape every 15s for 30m:
/// the canary's core flows complete at 50% until +10m and at 20% after; bug reports are a
/// tenth of feedback throughout; the stable track stays at 50% and a tenth.
fn business_trace() -> String {
    let mut s = String::new();
    for i in 0..=120i64 {
        let t = i * 15;
        let completed = if i <= 40 { 5 * i } else { 200 + 2 * (i - 40) };
        for (track, scale, done) in [("canary", 1, completed), ("stable", 10, 50 * i)] {
            let l = format!("service=backend;track={track}");
            let _ = writeln!(s, "{t},business_flow_started_total,{l},{}", 10 * scale * i);
            let _ = writeln!(s, "{t},business_flow_completed_total,{l},{done}");
            let _ = writeln!(
                s,
                "{t},feedback_submissions_total,{l};type=bug,{}",
                scale * i
            );
            let _ = writeln!(
                s,
                "{t},feedback_submissions_total,{l};type=feature,{}",
                9 * scale * i
            );
        }
    }
    s
}

#[test]
fn custom_metrics_are_computed_from_their_raw_counters() {
    // conversion_rate's gate holds while the canary converts at least 95% as well as
    // stable (0.475). From +10m15s each 15s interval completes 2 flows instead of 5: at
    // +11m the window holds 4 such intervals (3.x: 19 intervals, 83/190 = 0.437; 2.42: 20
    // intervals, 88/200 = 0.44), at +10m none. bug_report_rate stays at 10%, under 20%.
    let dir = support::temp_dir("replay-custom");
    let trace = support::write(&dir, "business.csv", &business_trace());
    for sem in [Semantics::Prometheus3, Semantics::Prometheus2] {
        let doc = json(&trace, sem);
        let rule = |name: &str| {
            doc["rules"]
                .as_array()
                .unwrap()
                .iter()
                .find(|r| r["alert"] == name)
                .unwrap_or_else(|| panic!("{name} in {doc}"))
                .clone()
        };
        assert_eq!(
            rule("CanaryGateConversionRate")["first_pending_ms"],
            11 * 60_000
        );
        assert_eq!(
            rule("CanaryGateBugReportRate")["first_pending_ms"],
            serde_json::Value::Null
        );
        let metric = |name: &str| {
            doc["metrics"]
                .as_array()
                .unwrap()
                .iter()
                .find(|m| m["name"] == name)
                .unwrap_or_else(|| panic!("{name} in {doc}"))
                .clone()
        };
        for name in ["conversion_rate", "bug_report_rate"] {
            assert_eq!(metric(name)["canary"]["raw"]["series"], 2, "{name}");
        }
        // Only conversion_rate is compared with stable.
        assert_eq!(metric("conversion_rate")["stable"]["raw"]["series"], 2);
    }
}

#[test]
fn an_overridden_built_in_query_reads_separate_error_and_request_counters() {
    // error_rate as errors over requests, two counters: 150 requests per 15s, 30 errors
    // per 15s from +10m. `> 10%` needs 10 bad intervals in the window: pending at +13m,
    // firing 5m later.
    let dir = support::temp_dir("replay-override");
    let p = support::lawsker_edited(
        &dir,
        "\nmetrics:\n",
        "\nmetrics:\n  error_rate:\n    query: >-\n      sum(rate(http_errors_total{service=\"$service\",track=\"$track\"}[$window]))\n      / sum(rate(http_requests_total{service=\"$service\",track=\"$track\"}[$window]))\n",
    );
    let mut csv = String::new();
    for i in 0..=120i64 {
        let l = "service=backend;track=canary";
        let errors = 30 * (i - 40).max(0);
        let _ = writeln!(csv, "{},http_requests_total,{l},{}", i * 15, 150 * i);
        let _ = writeln!(csv, "{},http_errors_total,{l},{errors}", i * 15);
    }
    let trace = support::write(&dir, "errors.csv", &csv);
    let doc = json_with(&p, &trace);
    let rule = doc["rules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["alert"] == "CanaryRollbackErrorRate")
        .unwrap()
        .clone();
    assert_eq!(rule["first_pending_ms"], 13 * 60_000, "{doc}");
    assert_eq!(rule["first_firing_ms"], 18 * 60_000, "{doc}");
    let metrics = doc["metrics"].as_array().unwrap();
    let error_rate = metrics.iter().find(|m| m["name"] == "error_rate").unwrap();
    assert_eq!(error_rate["canary"]["raw"]["series"], 2);
}

/// Lawsker's `bug_report_rate` query, as the plan writes it.
pub(crate) const BUG_REPORT_RATE: &str = "sum(rate(feedback_submissions_total{service=\"$service\",track=\"$track\",type=\"bug\"}[$window]))\n      / sum(rate(feedback_submissions_total{service=\"$service\",track=\"$track\"}[$window]))";

/// A query that passes validate (each side is one series per track) but returns two
/// series: `or` keeps both sides, whose labels differ.
pub(crate) const TWO_SERIES: &str = "sum by (track) (rate(feedback_submissions_total{service=\"$service\",track=\"$track\",type=\"bug\"}[$window])) or sum by (service) (rate(feedback_submissions_total{service=\"$service\",track=\"$track\"}[$window]))";

#[test]
fn a_custom_query_returning_several_series_stops_the_replay() {
    // `sum by (track) (...) or sum by (service) (...)` passes validate (each side is one
    // series per track) but keeps both sides, whose labels differ: Prometheus would record
    // two series, and the plan's comparison would not know which to read.
    let dir = support::temp_dir("replay-two-series");
    let p = support::lawsker_edited(&dir, BUG_REPORT_RATE, TWO_SERIES);
    let trace = support::write(&dir, "business.csv", &business_trace());
    let done = plan()
        .arg("simulate")
        .arg(&p)
        .arg("--trace")
        .arg(&trace)
        .run();
    assert_eq!(done.code, 1, "{}", done.stderr);
    assert!(
        done.stderr.contains("error[query-failed]")
            && done.stderr.contains(
                "the query of `bug_report_rate` for the canary track has no single value at +1m"
            )
            && done.stderr.contains("the query returns 2 series"),
        "{}",
        done.stderr
    );
}

#[test]
fn a_custom_query_keeping_its_labels_is_another_alert_when_they_change() {
    // bug_report_rate as `max by (instance) (last_over_time(...))` of a gauge of instance
    // `a`: the result keeps the label `instance`. Scraped every 15s: 0.1 until +1m45s, nothing until +8m, then NaN. The no-data
    // rule (for 5m) finds it absent from +3m: `absent(...)`, an alert without `instance`;
    // then NaN from +8m: `x != x`, an alert with `instance="a"`, another one, whose `for`
    // starts over (promtool agrees; see `proof_custom`).
    let dir = support::temp_dir("replay-own-labels");
    let p = support::lawsker_edited(
        &dir,
        BUG_REPORT_RATE,
        "max by (instance) (last_over_time(bug_share{service=\"$service\",track=\"$track\",instance=\"a\"}[1m]))",
    );
    let mut csv = String::new();
    for i in 0..=120i64 {
        let l = "instance=a;service=backend;track=canary";
        match i {
            0..7 => {
                let _ = writeln!(csv, "{},bug_share,{l},0.1", i * 15);
            }
            7..32 => {}
            _ => {
                let _ = writeln!(csv, "{},bug_share,{l},NaN", i * 15);
            }
        }
    }
    let trace = support::write(&dir, "own-labels.csv", &csv);
    let doc = json_with(&p, &trace);
    let rule = doc["rules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["alert"] == "CanaryNoDataBugReportRate")
        .unwrap()
        .clone();
    assert_eq!(rule["first_pending_ms"], 3 * 60_000, "{doc}");
    assert_eq!(rule["first_firing_ms"], 13 * 60_000, "{doc}");
}

#[test]
fn a_query_selector_the_trace_has_no_series_for_is_named() {
    // The canary's flows-started counter is missing from the trace: conversion_rate reads
    // nothing on the canary (as Prometheus would), and the report says which selector.
    let dir = support::temp_dir("replay-unmatched");
    let trace: String = business_trace()
        .lines()
        .filter(|l| !l.contains("business_flow_started_total,service=backend;track=canary"))
        .map(|l| format!("{l}\n"))
        .collect();
    let trace = support::write(&dir, "business.csv", &trace);
    let done = plan()
        .arg("simulate")
        .arg(support::root().join("plans/lawsker.yaml"))
        .arg("--trace")
        .arg(&trace)
        .run();
    assert!(
        done.stdout.contains(
            "matches no series of the trace: conversion_rate (canary): business_flow_started_total{service=\"backend\",track=\"canary\"}"
        ),
        "{}",
        done.stdout
    );
    assert_eq!(
        done.stdout
            .matches("matches no series of the trace")
            .count(),
        1,
        "{}",
        done.stdout
    );
}

/// `--start`, `--end` and `--evaluation-offset` place a replay: with the Monte Carlo's
/// `--scenarios` or `--baseline` (which exclude `--trace`) they are refused, not ignored.
#[test]
fn the_replays_own_flags_are_refused_beside_a_monte_carlo() {
    for flag in [
        ["--start", "2024-05-01T12:00:00Z"],
        ["--end", "1"],
        ["--evaluation-offset", "50s"],
    ] {
        for other in [
            ["--scenarios", "simulations/lawsker.yaml"],
            ["--baseline", "simulations/traces/error-spike.csv"],
        ] {
            let done = plan()
                .args(["simulate", "plans/lawsker.yaml"])
                .args(other)
                .args(flag)
                .expect(2);
            assert!(
                done.stderr.contains("cannot be used with"),
                "{flag:?} with {other:?}: {}",
                done.stderr
            );
        }
    }
}
