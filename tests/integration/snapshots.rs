//! Golden snapshots of what `plan simulate` prints, human and JSON, for fixed seeds and
//! small trial counts, and of replays of the recorded traces in `simulations/traces/`. They
//! pin the numbers byte for byte, so a refactor or an optimisation that claims "same
//! numbers" is checked rather than trusted; the same run at 1 and 2 threads must print the
//! same bytes too. `UPDATE_GOLDEN=1` rewrites them after an intended change.

use crate::golden;
use crate::support::*;

/// (snapshot name, arguments after `plan simulate`).
const CASES: &[(&str, &[&str])] = &[
    (
        "lawsker.txt",
        &[
            "plans/lawsker.yaml",
            "--scenarios",
            "simulations/lawsker.yaml",
            "--trials",
            "64",
            "--seed",
            "7",
        ],
    ),
    (
        "lawsker.json",
        &[
            "plans/lawsker.yaml",
            "--scenarios",
            "simulations/lawsker.yaml",
            "--trials",
            "64",
            "--seed",
            "7",
            "--format",
            "json",
        ],
    ),
    (
        "lawsker-prometheus2.json",
        &[
            "plans/lawsker.yaml",
            "--scenarios",
            "simulations/lawsker.yaml",
            "--trials",
            "64",
            "--seed",
            "7",
            "--semantics",
            "prometheus2",
            "--format",
            "json",
        ],
    ),
    (
        "lawsker-tuning.json",
        &[
            "plans/lawsker.yaml",
            "--scenarios",
            "simulations/lawsker-tuning.yaml",
            "--trials",
            "64",
            "--seed",
            "3",
            "--format",
            "json",
        ],
    ),
    (
        "admin-console-fault-timing.json",
        &[
            "plans/admin-console.yaml",
            "--scenarios",
            "simulations/fault-timing.yaml",
            "--trials",
            "64",
            "--seed",
            "3",
            "--format",
            "json",
        ],
    ),
    (
        "checkout.json",
        &[
            "plans/checkout.yaml",
            "--scenarios",
            "simulations/checkout.yaml",
            "--trials",
            "64",
            "--seed",
            "5",
            "--format",
            "json",
        ],
    ),
    (
        "admin-console.json",
        &[
            "plans/admin-console.yaml",
            "--trials",
            "64",
            "--seed",
            "5",
            "--format",
            "json",
        ],
    ),
    (
        "replay-error-spike.txt",
        &[
            "plans/lawsker.yaml",
            "--trace",
            "simulations/traces/error-spike.csv",
        ],
    ),
    (
        "replay-error-spike.json",
        &[
            "plans/lawsker.yaml",
            "--trace",
            "simulations/traces/error-spike.csv",
            "--format",
            "json",
        ],
    ),
    (
        "replay-recorded-healthy.txt",
        &[
            "plans/lawsker.yaml",
            "--trace",
            "simulations/traces/recorded-healthy.json",
        ],
    ),
    (
        "replay-recorded-healthy.json",
        &[
            "plans/lawsker.yaml",
            "--trace",
            "simulations/traces/recorded-healthy.json",
            "--format",
            "json",
        ],
    ),
];

#[test]
fn simulate_and_replay_print_their_snapshots() {
    let dir = root().join("tests/snapshots");
    let mut failures = Vec::new();
    for (name, args) in CASES {
        let run = |jobs: &str| {
            plan()
                .arg("simulate")
                .args(*args)
                .args(["--jobs", jobs])
                .expect(0)
                .stdout
        };
        let out = run("2");
        golden::compare(&dir.join(name), &out, &mut failures);
        if !args.contains(&"--trace") {
            assert_eq!(run("1"), out, "{name}: the same bytes at 1 and 2 threads");
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// The Lawsker plan under `on_failure: hold` (up to 6h, then stay held): what Monte Carlo
/// prints about holds (trials that held, how each hold ended, how long, trials that ended
/// held), pinned like the others, at 1 and 2 threads.
#[test]
fn simulate_under_a_hold_prints_its_snapshot() {
    let dir = temp_dir("snapshot-hold");
    let lawsker = std::fs::read_to_string(root().join("plans/lawsker.yaml")).unwrap();
    let scenarios = root().join("simulations/lawsker.yaml");
    let text = lawsker.replace(
        "scenarios: ../simulations/lawsker.yaml",
        &format!("scenarios: {}", scenarios.display()),
    ) + "\ngate_policy: { on_failure: hold, max_hold: 6h, after_max_hold: stay }\n";
    let plan_file = dir.join("lawsker-hold.yaml");
    std::fs::write(&plan_file, text).unwrap();
    let run = |jobs: &str| {
        plan()
            .arg("simulate")
            .arg(&plan_file)
            .args(["--scenarios", "simulations/lawsker.yaml"])
            .args(["--trials", "200", "--seed", "7", "--jobs", jobs])
            .expect(0)
            .stdout
    };
    let out = run("2");
    assert_eq!(run("1"), out, "the same bytes at 1 and 2 threads");
    assert!(out.contains("held a phase"), "{out}");
    let mut failures = Vec::new();
    golden::compare(
        &root().join("tests/snapshots/lawsker-hold.txt"),
        &out,
        &mut failures,
    );
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
