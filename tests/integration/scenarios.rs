//! Scenario files as first-class input, through the real binary: `plan validate PLAN
//! --scenarios FILE` and `plan simulate PLAN --scenarios FILE` report every finding of a
//! scenario file at once, located at line and column, with a stable code and a hint.
//!
//! Golden files: `tests/invalid-scenarios/NAME.yaml` is run as `plan validate PLAN
//! --scenarios tests/invalid-scenarios/NAME.yaml`, where PLAN is `plans/lawsker.yaml` unless
//! the fixture's second line says `# against: PATH`; its human output must equal
//! `NAME.stderr` byte for byte. The first line states the exit code by hand (`# exit 1:
//! what this file gets wrong`). Regenerate after a deliberate change with
//!
//! ```text
//! UPDATE_GOLDEN=1 cargo test --test integration scenarios
//! ```
//!
//! and review every changed file by eye.

use crate::golden;
use crate::support::*;
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::Command;

/// Every code a scenario file can get, each covered by at least one golden. `model` (a
/// schema/model gap, a bug by definition) cannot be reached from any input; the codes of
/// reading a file and of YAML are the plan's (`tests/invalid/` covers them all), two of
/// them here to show they reach scenario files too.
const ALL_CODES: &[&str] = &[
    // reading the file, YAML
    "io",
    "yaml-syntax",
    "duplicate-key",
    "not-a-mapping",
    // schema
    "unknown-key",
    "missing-key",
    "wrong-type",
    "bad-duration",
    "bad-value",
    "out-of-range",
    "too-few",
    "too-many",
    // against the plan
    "no-request-rate",
    "unknown-metric",
    "builtin-metric",
    "unknown-phase",
    "unused-parameter",
    "fault-without-effect",
    "buckets-out-of-order",
    "duplicate-scenario",
    "conflicting-exposition",
    "onset-after-release",
    "unmodelled-metric",
    "scrape-offset-too-long",
    // series models
    "series-model",
    "series-cycle",
    "split-shares",
    "unknown-series",
    "series-effect",
    "gauge-over-series",
];

/// Fixtures that cannot state their exit code in a comment: (name, exit code).
const SPECIAL: &[(&str, i32)] = &[
    // No `missing.yaml` exists; only its golden does.
    ("missing", 2),
];

fn fixtures_dir() -> PathBuf {
    root().join("tests/invalid-scenarios")
}

/// The fixture's exit code (its first line) and the plan it is checked against.
fn header(name: &str) -> (i32, String) {
    let default_plan = "plans/lawsker.yaml".to_string();
    if let Some((_, c)) = SPECIAL.iter().find(|(n, _)| *n == name) {
        return (*c, default_plan);
    }
    let path = fixtures_dir().join(format!("{name}.yaml"));
    let text = std::fs::read_to_string(&path).expect("fixture");
    let mut lines = text.lines();
    let code = lines
        .next()
        .and_then(golden::stated_exit_code)
        .unwrap_or_else(|| panic!("{name}: the first line must be `# exit N: what is wrong`"));
    let plan = lines
        .next()
        .and_then(|l| l.strip_prefix("# against: "))
        .map_or(default_plan, str::to_string);
    (code, plan)
}

/// Every line of human output but the closing `N errors, M warnings in K files`.
fn without_summary(stderr: &str) -> &str {
    let body = stderr.strip_suffix('\n').unwrap_or(stderr);
    match body.rfind('\n') {
        Some(i) if body[i + 1..].contains(" warning") => &stderr[..=i],
        _ => "",
    }
}

#[test]
fn invalid_scenario_files_match_their_goldens() {
    let dir = fixtures_dir();
    let names = golden::fixture_names(&dir);
    assert!(names.len() >= 20, "only {} fixtures", names.len());
    let (mut failures, mut seen_codes) = (Vec::new(), BTreeSet::new());
    for name in &names {
        let (code, against) = header(name);
        let rel = format!("tests/invalid-scenarios/{name}.yaml");
        let d = plan()
            .args(["validate", &against, "--scenarios", &rel])
            .run();
        if d.code != code {
            failures.push(format!(
                "{name}: exit {} instead of {code}\n{}",
                d.code, d.stderr
            ));
        }
        assert_eq!(d.stdout, "", "{name}: human output goes to stderr only");
        golden::compare(
            &dir.join(format!("{name}.stderr")),
            &d.stderr,
            &mut failures,
        );
        if code == 0 {
            plan()
                .args(["validate", "--deny-warnings", &against, "--scenarios", &rel])
                .expect(1);
        }
        // Every finding names the scenario file, a line and a column.
        golden::assert_located(name, &d.stderr, &rel);
        // The same findings in one JSON array, each naming its file and saying what to do.
        let json = plan()
            .args([
                "validate",
                "--format",
                "json",
                &against,
                "--scenarios",
                &rel,
            ])
            .expect(code);
        let v: serde_json::Value = serde_json::from_str(&json.stdout)
            .unwrap_or_else(|e| panic!("{name}: --format json is not JSON ({e})"));
        let findings = v.as_array().expect("an array of findings");
        assert!(!findings.is_empty(), "{name}: no finding");
        for f in findings {
            assert_eq!(f["file"], rel.as_str(), "{name}: {f}");
            seen_codes.insert(f["code"].as_str().expect("code").to_string());
            if f["hint"].as_str().is_none_or(str::is_empty) {
                failures.push(format!("{name}: finding without a hint: {f}"));
            }
        }
        // `plan simulate` refuses the file with the same findings, before running a trial.
        if name != "missing" {
            let sim = plan()
                .args(["simulate", &against, "--scenarios", &rel, "--trials", "1"])
                .run();
            assert_eq!(sim.code, code, "{name}: simulate\n{}", sim.stderr);
            assert_eq!(
                without_summary(&sim.stderr),
                without_summary(&d.stderr),
                "{name}: simulate and validate report the same"
            );
            assert_eq!(sim.stdout.is_empty(), code != 0, "{name}: {}", sim.stdout);
        }
    }
    golden::assert_codes_covered(&seen_codes, ALL_CODES);
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// The example scenario files are clean against the plans they are written for, one at a
/// time and all at once; and against them they add nothing to `plan validate`'s output. A
/// file that models a plan's custom metrics is written for that plan alone.
#[test]
fn every_example_scenario_file_validates_against_its_plans() {
    let plans_of = |file: &str| -> &[&str] {
        match file {
            "simulations/lawsker.yaml"
            | "simulations/lawsker-tuning.yaml"
            | "simulations/lawsker-baseline.yaml" => &["plans/lawsker.yaml"],
            "simulations/checkout.yaml" => &["plans/checkout.yaml"],
            "simulations/default.yaml" | "simulations/fault-timing.yaml" => {
                &["plans/admin-console.yaml"]
            }
            other => panic!("{other}: say which plans it is for"),
        }
    };
    let mut files: Vec<String> = std::fs::read_dir(root().join("simulations"))
        .expect("simulations/")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".yaml"))
        .map(|n| format!("simulations/{n}"))
        .collect();
    files.sort();
    assert!(files.len() >= 5, "{files:?}");
    for f in &files {
        let text = std::fs::read_to_string(root().join(f)).expect("example");
        assert!(
            text.starts_with("# yaml-language-server: $schema=../schemas/scenarios.schema.json\n"),
            "{f} must start with the yaml-language-server schema comment"
        );
        for p in plans_of(f) {
            // The file adds no finding (the plan may have warnings of its own).
            let d = plan().args(["validate", p, "--scenarios", f]).expect(0);
            assert!(!d.stderr.contains(f.as_str()), "{f}: {}", d.stderr);
        }
    }
    let lawsker = [
        "simulations/lawsker.yaml",
        "simulations/lawsker-tuning.yaml",
    ];
    let d = plan()
        .args([
            "validate",
            "--deny-warnings",
            "plans/lawsker.yaml",
            "--scenarios",
        ])
        .args(lawsker)
        .expect(0);
    assert_eq!(d.stderr, "");
    let json = plan()
        .args([
            "validate",
            "--format",
            "json",
            "plans/lawsker.yaml",
            "--scenarios",
        ])
        .args(lawsker)
        .expect(0);
    assert_eq!(json.stdout.trim(), "[]");
}

/// A scenario file checked against several plans: each plan-dependent finding names its
/// plan, and a finding that does not depend on the plan comes once.
#[test]
fn against_several_plans_each_finding_names_its_plan() {
    let dir = temp_dir("scenarios-several");
    let file = dir.join("s.yaml");
    std::fs::write(
        &file,
        "baseline:\n  buckets: [0.5, 0.1]\n  metrics:\n    bug_report_rate: { mean: 8% }\n    conversion_rate: { mean: 62% }\nscenarios:\n  - name: healthy\n",
    )
    .expect("write");
    let d = plan()
        .args([
            "validate",
            "plans/lawsker.yaml",
            "plans/checkout.yaml",
            "--scenarios",
        ])
        .arg(&file)
        .expect(1);
    assert_eq!(
        d.stderr.matches("error[buckets-out-of-order]").count(),
        1,
        "{}",
        d.stderr
    );
    assert_eq!(
        d.stderr.matches("error[unknown-metric]").count(),
        2,
        "{}",
        d.stderr
    );
    // Checkout's own custom metrics have no model here; lawsker's have theirs.
    assert_eq!(
        d.stderr.matches("error[unmodelled-metric]").count(),
        2,
        "{}",
        d.stderr
    );
    assert!(d.stderr.contains("the plan `checkout-api`"), "{}", d.stderr);
    assert!(!d.stderr.contains("the plan `lawsker`"), "{}", d.stderr);
    // Each plan's own scenario file (`simulation.scenarios`) is checked too, and is valid.
    assert!(
        d.stderr.ends_with("5 errors, 0 warnings in 5 files\n"),
        "{}",
        d.stderr
    );
}

/// Plan findings and scenario findings share one JSON array and one exit code, the worst.
#[test]
fn json_holds_plan_and_scenario_findings_together() {
    let d = plan()
        .args([
            "validate",
            "--format",
            "json",
            "tests/invalid/unknown-key.yaml",
            "plans/lawsker.yaml",
            "--scenarios",
            "tests/invalid-scenarios/unknown-phase.yaml",
        ])
        .expect(1);
    let v: serde_json::Value = serde_json::from_str(&d.stdout).expect("JSON");
    let files: BTreeSet<&str> = v
        .as_array()
        .expect("array")
        .iter()
        .map(|f| f["file"].as_str().expect("file"))
        .collect();
    assert_eq!(
        files,
        BTreeSet::from([
            "tests/invalid/unknown-key.yaml",
            "tests/invalid-scenarios/unknown-phase.yaml"
        ])
    );
    // A scenario file that cannot be read is an I/O error, as for a plan: exit 2.
    plan()
        .args([
            "validate",
            "plans/lawsker.yaml",
            "--scenarios",
            "simulations",
        ])
        .expect(2);
}

/// With `--scenarios`, the plan's own findings print exactly as without it.
#[test]
fn plan_findings_are_unchanged_by_scenarios() {
    let alone = plan()
        .args(["validate", "tests/invalid/unknown-key.yaml"])
        .expect(1);
    let with = plan()
        .args([
            "validate",
            "tests/invalid/unknown-key.yaml",
            "--scenarios",
            "simulations/default.yaml",
        ])
        .expect(1);
    let summary_at = alone.stderr.trim_end().rfind('\n').expect("summary line");
    assert_eq!(
        with.stderr[..summary_at],
        alone.stderr[..summary_at],
        "{}",
        with.stderr
    );
    assert!(with.stderr.ends_with(" in 2 files\n"), "{}", with.stderr);
}

/// Runs `plan` with at most 1 GiB of address space and 60 s of wall-clock time, so that a
/// scenario file that makes it run unbounded fails the test instead of taking the machine.
fn bounded(args: &[&str]) -> Done {
    let out = Command::new("timeout")
        .args(["-s", "KILL", "60", "prlimit", "--as=1073741824", "--"])
        .arg(env!("CARGO_BIN_EXE_plan"))
        .args(args)
        .current_dir(root())
        .env("NO_COLOR", "1")
        .output()
        .expect("timeout and prlimit run");
    Done {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// What made a simulation run forever or answer wrongly is refused before it starts: a
/// trial count past the limit, a request rate at which counts lose their precision, and a
/// duration that wrapped to a negative onset.
#[test]
fn unbounded_scenario_files_are_refused_before_simulating() {
    let dir = temp_dir("scenarios-unbounded");
    for (name, text, expected) in [
        (
            "trials.yaml",
            "trials: 1000001\nscenarios:\n  - name: healthy\n",
            "1000001 is too large: the maximum is 1000000",
        ),
        (
            "rate.yaml",
            "traffic: { requests_per_second: 1e16 }\nscenarios:\n  - name: spike\n    fault: { kind: step, error_rate: 1% }\n",
            "10000000000000000 is too large: the maximum is 10000000",
        ),
        (
            "wrap.yaml",
            "scenarios:\n  - name: late\n    fault: { kind: step, onset: 500000000y, error_rate: 20% }\n",
            "`500000000y` is longer than a year",
        ),
    ] {
        let file = dir.join(name);
        std::fs::write(&file, text).expect("write");
        let file = file.to_str().expect("utf-8 path");
        let d = bounded(&["simulate", "plans/lawsker.yaml", "--scenarios", file]);
        assert_eq!(d.code, 1, "{name}: {}", d.stderr);
        assert!(d.stderr.contains(expected), "{name}: {}", d.stderr);
        assert_eq!(d.stdout, "", "{name}: no report");
    }
    // At the limits themselves the file is accepted.
    let file = dir.join("edge.yaml");
    std::fs::write(
        &file,
        "trials: 1000000\ntraffic: { requests_per_second: 10000000 }\nbaseline: { metrics: { bug_report_rate: { mean: 8% }, conversion_rate: { mean: 62% } } }\nscenarios:\n  - name: late\n    fault: { kind: leak, onset: 0s, ramp: 1y, error_rate: 20% }\n",
    )
    .expect("write");
    let file = file.to_str().expect("utf-8 path");
    let d = bounded(&["validate", "plans/lawsker.yaml", "--scenarios", file]);
    assert_eq!(d.code, 0, "{}", d.stderr);
}

/// The built-in scenarios are checked like a file: against a plan too short for their
/// faults they warn (and still run), naming the built-in file.
#[test]
fn built_in_scenarios_warn_about_faults_after_promotion() {
    let dir = temp_dir("scenarios-short");
    let p = dir.join("short.yaml");
    let text = std::fs::read_to_string(root().join("plans/minimal.yaml"))
        .expect("minimal plan")
        .replace(
            "name: minimal",
            "name: short\ntraffic: { requests_per_second: 50 }",
        )
        .replace(
            "    traffic: 100%\n",
            "    traffic: 100%\n    duration: 1h\n",
        );
    std::fs::write(&p, text).expect("write");
    let d = plan()
        .args(["simulate", p.to_str().expect("path"), "--trials", "2"])
        .expect(0);
    assert!(
        d.stderr.contains("<built-in scenarios>:15:33: warning[onset-after-release]: the fault starts at 6h, when the plan `short` has already completed the release (at 2h, the end of the 1h watch of `full`)"),
        "{}",
        d.stderr
    );
    assert!(
        d.stdout
            .contains("the fault began after the release completed"),
        "{}",
        d.stdout
    );
}

/// The `plan-validate-scenarios` hook, run as pre-commit runs it (entry, then args, then
/// the staged files that match): with the plan given in `args` it checks the scenario
/// files against it; with its default `args` it is a usage error, never a misread file.
#[test]
fn pre_commit_hook_checks_staged_scenario_files_against_the_plan() {
    let text = std::fs::read_to_string(root().join(".pre-commit-hooks.yaml")).expect("hooks");
    let hooks: Vec<serde_json::Value> = yaml_serde::from_str(&text).expect("hooks YAML");
    let hook = hooks
        .iter()
        .find(|h| h["id"] == "plan-validate-scenarios")
        .expect("the scenario hook");
    let entry: Vec<&str> = hook["entry"].as_str().expect("entry").split(' ').collect();
    assert_eq!(entry[0], "plan");
    let default_args: Vec<&str> = hook["args"]
        .as_array()
        .expect("args")
        .iter()
        .map(|a| a.as_str().expect("arg"))
        .collect();
    let pattern = hook["files"].as_str().expect("files");
    assert_eq!(pattern, r"^simulations/.*\.ya?ml$");
    let staged = [
        "simulations/lawsker.yaml",
        "simulations/lawsker-tuning.yaml",
    ];
    let run = |args: &[&str], files: &[&str]| plan().args(&entry[1..]).args(args).args(files).run();
    let d = run(&["plans/lawsker.yaml", "--scenarios"], &staged);
    assert_eq!((d.code, d.stderr.as_str()), (0, ""));
    let bad = run(
        &["plans/lawsker.yaml", "--scenarios"],
        &["tests/invalid-scenarios/unknown-phase.yaml"],
    );
    assert_eq!(bad.code, 1, "{}", bad.stderr);
    let unset = run(&default_args, &staged);
    assert_eq!(unset.code, 2, "{}", unset.stderr);
    assert!(unset.stderr.contains("<FILES>"), "{}", unset.stderr);
}
