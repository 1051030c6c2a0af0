//! The simulator's limits, through the real binary: flags out of range are usage errors,
//! plans whose Prometheus settings or phases would make a run unbounded are refused at the
//! line that says so, and what the limits allow runs in bounded memory (each run under an
//! address-space cap and a CPU-time cap, so a regression fails instead of taking the
//! machine).

use crate::support::*;
use std::cell::Cell;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A plan with `monitoring` and phase durations of our choosing.
fn plan_with(monitoring: &str, first: &str, second: &str) -> String {
    format!(
        r##"name: bounded
release: {{ from: v1, to: v2 }}
service: {{ name: web, image: example/web, port: 8080 }}
routing: {{ listen: 80, sticky: {{ cookie: sid }} }}
traffic: {{ requests_per_second: 50 }}
monitoring: {monitoring}
phases:
  - {{ name: canary, traffic: 10%, duration: {first} }}
  - {{ name: half, traffic: 50%, duration: {second} }}
  - {{ name: full, traffic: 100% }}
rollback_conditions:
  - {{ metric: error_rate, threshold: 10%, duration: 5m }}
  - {{ metric: response_time_p95, threshold: 2s, duration: 5m }}
notifications:
  slack: {{ channel: "#releases", api_url_file: /etc/secrets/slack }}
"##
    )
}

/// Runs `plan args` with at most `mib` MiB of address space and `cpu_s` seconds of CPU;
/// returns (exit code, stderr). A run killed by a limit has no exit code (-1).
fn capped(args: &[&str], mib: u64, cpu_s: u64) -> (i32, String) {
    let out = Command::new("prlimit")
        .arg(format!("--as={}", mib << 20))
        .arg(format!("--cpu={cpu_s}"))
        .arg(env!("CARGO_BIN_EXE_plan"))
        .args(args)
        .current_dir(root())
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .output()
        .expect("prlimit runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn thread_and_trial_counts_out_of_range_are_usage_errors() {
    for (flag, value) in [
        ("--jobs", "0"),
        ("--jobs", "257"),
        ("--jobs", "100000"),
        ("--trials", "0"),
        ("--trials", "1000001"),
        ("--trials", "18446744073709551615"),
    ] {
        let done = plan()
            .args(["simulate", "plans/lawsker.yaml", flag, value])
            .expect(2);
        assert!(
            done.stderr.contains(flag) && done.stderr.contains("not in"),
            "{flag} {value}:\n{}",
            done.stderr
        );
    }
    let done = plan()
        .args([
            "simulate",
            "plans/lawsker.yaml",
            "--scenarios",
            "simulations/lawsker.yaml",
            "--jobs",
            "256",
            "--trials",
            "1",
        ])
        .expect(0);
    assert!(done.stdout.contains("lawsker"));
}

#[test]
fn unbounded_settings_are_refused_at_their_line() {
    let dir = temp_dir("limits-simulate");
    let cases = [
        (
            "{ window: 30d }",
            "24h",
            "24h",
            ":6:23: error[out-of-range]",
        ),
        (
            "{ window: 3650d }",
            "24h",
            "24h",
            ":6:23: error[out-of-range]",
        ),
        (
            "{ scrape_interval: 1ms }",
            "24h",
            "24h",
            ":6:32: error[out-of-range]",
        ),
        (
            "{ evaluation_interval: 1ms }",
            "24h",
            "24h",
            ":6:36: error[out-of-range]",
        ),
        (
            "{ evaluation_interval: 2h }",
            "24h",
            "24h",
            ":6:36: error[out-of-range]",
        ),
        (
            "{ window: 20s }",
            "24h",
            "24h",
            ":6:23: error[window-too-short]",
        ),
        ("{}", "1000d", "24h", ":8:45: error[out-of-range]"),
        ("{}", "24h", "91d", ":9:43: error[out-of-range]"),
    ];
    for (monitoring, first, second, want) in cases {
        let file = write(&dir, "plan.yaml", &plan_with(monitoring, first, second));
        for cmd in ["validate", "simulate"] {
            let done = plan().arg(cmd).arg(&file).expect(1);
            assert!(
                done.stderr.contains(want),
                "{cmd} with monitoring {monitoring}, phases {first}/{second}: want {want}\n{}",
                done.stderr
            );
        }
    }
    let rate = plan_with("{}", "24h", "24h")
        .replace("requests_per_second: 50", "requests_per_second: 1e16");
    let done = plan()
        .arg("validate")
        .arg(write(&dir, "rate.yaml", &rate))
        .expect(1);
    assert!(
        done.stderr.contains(":5:33: error[out-of-range]") && done.stderr.contains("10000000"),
        "{}",
        done.stderr
    );
}

/// The longest window at the shortest scrape interval the limits allow: 86,400 samples a
/// window. Batches shrink to fit the memory budget instead of allocating gigabytes.
#[test]
fn the_longest_window_at_the_shortest_scrape_runs_in_bounded_memory() {
    let dir = temp_dir("limits-window");
    let text = plan_with("{ window: 24h, scrape_interval: 1s }", "2d", "2d");
    let file = write(&dir, "plan.yaml", &text);
    let path = file.to_string_lossy().into_owned();
    let started = Instant::now();
    let (code, stderr) = capped(
        &["simulate", &path, "--trials", "8", "--jobs", "2"],
        1024,
        120,
    );
    assert_eq!(code, 0, "{stderr}");
    eprintln!("24h window at 1s: {:.1?}", started.elapsed());
}

/// A fault whose onset is off the evaluation grid by a millisecond and that is caught hours
/// later: detection times are exact to the millisecond, kept without a slot per
/// millisecond (which took 400 MB for 4 trials here).
#[test]
fn an_onset_off_the_grid_keeps_detection_times_in_bounded_memory() {
    let dir = temp_dir("limits-onset");
    let scenarios = write(
        &dir,
        "scenarios.yaml",
        r#"trials: 4
baseline:
  metrics: { bug_report_rate: { mean: 8% }, conversion_rate: { mean: 62% } }
scenarios:
  - name: slow-leak
    fault: { kind: leak, onset: 1ms, ramp: 5d, error_rate: 2% }
"#,
    );
    let scenarios = scenarios.to_string_lossy().into_owned();
    let args = [
        "simulate",
        "plans/lawsker.yaml",
        "--format",
        "json",
        "--scenarios",
        &scenarios,
    ];
    let (code, stderr) = capped(&args, 256, 60);
    assert_eq!(code, 0, "{stderr}");
    let done = plan().args(args).expect(0);
    let report: serde_json::Value = serde_json::from_str(&done.stdout).expect("JSON");
    let ttd = &report["scenarios"][0]["time_to_catch_seconds"];
    // Detected at an evaluation on the minute grid, hours after the onset at 1 ms.
    let median = ttd["median"].as_f64().expect("a median");
    assert!(median > 3600.0, "{ttd}");
    let off_grid = (median + 0.001).rem_euclid(60.0);
    assert!(
        off_grid < 1e-6 || 60.0 - off_grid < 1e-6,
        "median {median} s is not a whole number of minutes after the onset: {ttd}"
    );
}

/// A run that may take long says so before it starts, with what would make it shorter.
#[test]
fn a_long_run_says_so_before_it_starts() {
    let dir = temp_dir("limits-long");
    let text = plan_with("{}", "90d", "90d");
    let file = write(&dir, "plan.yaml", &text);
    let mut child = Command::new(env!("CARGO_BIN_EXE_plan"))
        .args(["simulate", "--trials", "1000000", "--jobs", "1"])
        .arg(&file)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("plan starts");
    let stderr = child.stderr.take().expect("stderr");
    let reader = std::thread::spawn(move || {
        BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
            .find(|l| l.starts_with("note: "))
            .unwrap_or_default()
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    while !reader.is_finished() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
    let first = reader.join().expect("reader");
    assert!(
        first.starts_with("note: this run evaluates up to ")
            && first.contains("hours on 1 thread")
            && first.contains("--trials"),
        "{first:?}"
    );
}

/// Fuzz-style: plans with Prometheus settings, phase lengths and request rates drawn from
/// far past the limits on both sides, and a fault whose onset is off every grid. Each is
/// either refused by `plan validate` (exit 1, at a line) or simulated to the end under a
/// memory and CPU cap, with a report that adds up.
#[test]
fn extreme_settings_are_refused_or_simulated_in_bounded_memory() {
    use proptest::prelude::*;
    use proptest::test_runner::{Config, TestRunner};
    let dir = temp_dir("limits-fuzz");
    // Mostly values inside the limits (so that runs happen), some past them on either side.
    fn pick<T: Clone + std::fmt::Debug + 'static>(ok: &[T], past: &[T]) -> BoxedStrategy<T> {
        prop_oneof![
            4 => prop::sample::select(ok.to_vec()),
            1 => prop::sample::select(past.to_vec()),
        ]
        .boxed()
    }
    let strategy = (
        pick(&["1s", "7s", "15s", "1m"], &["500ms", "2h"]),
        pick(&["1s", "10s", "1m", "1h"], &["500ms", "2h"]),
        pick(&["2m", "5m", "1h", "24h"], &["1s", "25h", "30d"]),
        pick(&["1m", "1h", "1d", "90d"], &["91d", "1000d"]),
        pick(&[0.001, 1.0, 40.0, 1e5, 1e7], &[1.1e7, 1e16]),
        0u64..3_600_000,
    );
    let mut runner = TestRunner::new(Config {
        cases: 100,
        failure_persistence: None,
        ..Config::default()
    });
    let (refused, simulated) = (Cell::new(0), Cell::new(0));
    runner
        .run(&strategy, |(scrape, eval, window, phase, rps, onset_ms)| {
            let monitoring =
                format!("{{ scrape_interval: {scrape}, evaluation_interval: {eval}, window: {window} }}");
            let text = plan_with(&monitoring, phase, "1h")
                .replace("requests_per_second: 50", &format!("requests_per_second: {rps:e}"))
                .replace("duration: 5m }", "duration: 1m }");
            let file = write(&dir, "plan.yaml", &text);
            let validated = plan().arg("validate").arg(&file).run();
            prop_assert!(
                validated.code == 0 || validated.code == 1,
                "{text}\n{}",
                validated.stderr
            );
            if validated.code == 1 {
                prop_assert!(validated.stderr.contains("plan.yaml:"), "{}", validated.stderr);
                refused.set(refused.get() + 1);
                return Ok(());
            }
            // Keep the accepted runs short: skip those whose release is long at a fine
            // evaluation interval (the long-run note covers them).
            let eval_ms = match eval {
                "500ms" => 500,
                "1s" => 1_000,
                "10s" => 10_000,
                "1m" => 60_000,
                _ => 3_600_000,
            };
            let phase_ms: u64 = match phase {
                "1m" => 60_000,
                "1h" => 3_600_000,
                "1d" => 86_400_000,
                _ => 90 * 86_400_000,
            };
            if (phase_ms + 3_600_000) / eval_ms > 20_000 {
                return Ok(());
            }
            let scenarios = write(
                &dir,
                "scenarios.yaml",
                &format!(
                    "trials: 3\nscenarios:\n  - name: healthy\n  - name: outage\n    fault: {{ kind: step, onset: {}ms, error_rate: 30% }}\n",
                    onset_ms + 1
                ),
            );
            let out = Command::new("prlimit")
                .arg(format!("--as={}", 1u64 << 30))
                .arg("--cpu=120")
                .arg(env!("CARGO_BIN_EXE_plan"))
                .args(["simulate", "--format", "json", "--jobs", "2", "--scenarios"])
                .arg(&scenarios)
                .arg(&file)
                .stdin(Stdio::null())
                .output()
                .expect("prlimit runs");
            let stderr = String::from_utf8_lossy(&out.stderr);
            prop_assert_eq!(out.status.code(), Some(0), "{}\n{}", text, stderr);
            let report: serde_json::Value =
                serde_json::from_slice(&out.stdout).expect("a JSON report");
            for s in report["scenarios"].as_array().expect("scenarios") {
                let trials = s["trials"].as_u64().expect("trials");
                prop_assert_eq!(trials, 3);
                let rolled = s["rollback"]["count"].as_u64().unwrap_or(0);
                prop_assert!(rolled <= trials, "{s}");
                if let Some(b) = s.get("blast_radius").filter(|b| !b.is_null()) {
                    let served = b["requests"].as_f64().unwrap_or(0.0);
                    let failed = b["failed_requests"].as_f64().unwrap_or(0.0);
                    prop_assert!(failed <= served, "more failures than requests: {s}");
                }
            }
            simulated.set(simulated.get() + 1);
            Ok(())
        })
        .unwrap();
    let (refused, simulated) = (refused.get(), simulated.get());
    eprintln!("extreme settings: {refused} refused, {simulated} simulated");
    assert!(
        refused > 0 && simulated > 0,
        "{refused} refused, {simulated} simulated"
    );
}
