//! `plan tune` against answers known in advance: a closed-form frontier, the Lawsker
//! plan's budget met on fresh trials, the same numbers at any thread count, and the
//! errors a user meets. All runs drive the real binary.

use crate::simulate::{test_plan, wilson};
use crate::support::{self, plan, write};
use serde_json::Value;
use statrs::distribution::{Binomial, Discrete, DiscreteCDF, Poisson};

/// Runs `plan tune` with `--format json`, expecting `code`.
fn tune(args: &[&str], code: i32) -> Value {
    let done = plan()
        .arg("tune")
        .args(args)
        .args(["--format", "json"])
        .expect(code);
    serde_json::from_str(&done.stdout).expect("the report is JSON")
}

/// `plan` run in `dir` with `args` and `--format json`: its document.
fn json_in(dir: &std::path::Path, args: &[&str]) -> Value {
    let done = plan()
        .cwd(dir)
        .args(args)
        .args(["--format", "json"])
        .expect(0);
    serde_json::from_str(&done.stdout).expect("the report is JSON")
}

const Z999: f64 = 3.290_526_731_491_926;

/// Per window, the probability that its error ratio is above `threshold`: requests
/// ~ Poisson(mu), errors ~ Binomial(requests, p), the ratio compared as the simulator does.
fn above(mu: f64, p: f64, threshold: f64) -> f64 {
    let pois = Poisson::new(mu).unwrap();
    (1..2000u64)
        .map(|n| {
            // The least error count whose ratio is above the threshold.
            let least = (0..=n)
                .find(|&e| e as f64 / n as f64 > threshold)
                .unwrap_or(n + 1);
            let tail = if least == 0 {
                1.0
            } else {
                1.0 - Binomial::new(p, n).unwrap().cdf(least - 1)
            };
            pois.pmf(n) * tail
        })
        .sum()
}

/// The probability that an alert with a `for` of `need - 1` windows fires at some window,
/// window `k` being above the threshold with probability `q[k]`, independently.
fn fires(q: &[f64], need: usize) -> f64 {
    // state[j]: the current run of windows above is j long (j < need), not yet fired.
    let mut state = vec![0.0; need];
    state[0] = 1.0;
    for &qk in q {
        let mut next = vec![0.0; need];
        for (j, &s) in state.iter().enumerate() {
            next[0] += s * (1.0 - qk);
            if j + 1 < need {
                next[j + 1] += s * qk;
            }
        }
        state = next;
    }
    1.0 - state.iter().sum::<f64>()
}

/// Closed form (the setting of `simulate`'s closed-form test: 2.42 semantics, 5m windows
/// evaluated every 5m, so windows are disjoint and a window's error ratio is exactly
/// errors/requests, failures independent): one error-ratio rule, its threshold and `for` tuned. Every frontier
/// point's false-rollback count is within the 99.9% interval of its exact probability; its
/// caught count lies between the exact probability of rolling back after the onset less the
/// twin's exact false-rollback probability (a catch needs the twin not to have rolled back)
/// and that probability; the recommended setting's exact false-rollback probability is
/// within the budget, and no setting comfortably within it detects more.
#[test]
fn the_frontier_matches_the_closed_form() {
    let dir = support::temp_dir("tune-closed");
    let p = test_plan(
        &dir,
        "closed",
        "50%",
        "60m",
        "{ evaluation_interval: 5m, window: 5m }",
        &["{ metric: error_rate, threshold: 0.0631, duration: 5m }"],
    );
    let text = std::fs::read_to_string(&p).unwrap().replace(
        "{ name: full, traffic: 100% }",
        "{ name: full, traffic: 100%, duration: 5m }",
    );
    std::fs::write(&p, text).unwrap();
    let (p_healthy, p_fault) = (0.05, 0.09);
    let sc = write(
        &dir,
        "flat.yaml",
        "traffic: { requests_per_second: 1.3333333333333333, daily_amplitude: 0, error_clustering: 0 }\nbaseline: { error_rate: 5% }\n\
         scenarios:\n  - name: healthy\n  - name: worse\n    fault: { kind: step, onset: 5m, error_rate: 9% }\n",
    );
    let trials = 3000u64;
    let budget = 0.05;
    let r = tune(
        &[
            p.to_str().unwrap(),
            "--scenarios",
            sc.to_str().unwrap(),
            "--trials",
            &trials.to_string(),
            "--semantics",
            "prometheus2",
            "--vary",
            "error_rate.threshold=5.7%..10.3%",
            "--vary",
            "error_rate.duration=0s..5m",
            "--max-false-rollback",
            "5%",
            "--no-check",
            "--refine",
        ],
        0,
    );
    let mu = 1.333_333_333_333_333_3 * 0.5 * 300.0;
    // Windows at 5m..55m in the canary phase; with `for: 0s` the one at 60m too (it reads
    // the canary's last window, in the new phase, whose alerts start over).
    let exact = |threshold: f64, for_s: f64| -> (f64, f64) {
        // No threshold is a ratio the simulator could meet exactly.
        let pois = Poisson::new(mu).unwrap();
        let ties: f64 = (1..2000u64)
            .filter(|&n| ((threshold * n as f64).round() - threshold * n as f64).abs() < 1e-9)
            .map(|n| pois.pmf(n))
            .sum();
        assert!(ties < 1e-6, "{threshold}: ties {ties}");
        let (windows, need) = if for_s == 0.0 { (12, 1) } else { (11, 2) };
        let (qh, qf) = (
            above(mu, p_healthy, threshold),
            above(mu, p_fault, threshold),
        );
        let healthy = fires(&vec![qh; windows], need);
        let mut q = vec![qf; windows];
        q[0] = qh;
        (healthy, fires(&q, need))
    };
    let frontier = r["frontier"].as_array().unwrap();
    assert!(
        frontier.len() >= 3,
        "a frontier of one point tests little: {frontier:#?}"
    );
    let count = |v: &Value| v["count"].as_u64().unwrap();
    for point in frontier {
        let (threshold, for_s) = (
            point["thresholds"][0].as_f64().unwrap(),
            point["fors_s"][0].as_f64().unwrap(),
        );
        let (healthy, detected) = exact(threshold, for_s);
        let (lo, hi) = wilson(count(&point["false_rollback"]), trials, Z999);
        assert!(
            lo <= healthy && healthy <= hi,
            "{threshold} for {for_s}s: false rollback exact {healthy}, 99.9% [{lo}, {hi}]"
        );
        let (lo, hi) = wilson(count(&point["caught"]), trials, Z999);
        assert!(
            lo <= detected && detected - healthy <= hi,
            "{threshold} for {for_s}s: caught 99.9% [{lo}, {hi}], exact detection {detected}, less the twin's {healthy}"
        );
    }
    let rec = &r["recommended"];
    let (rec_healthy, rec_detected) = exact(
        rec["thresholds"][0].as_f64().unwrap(),
        rec["fors_s"][0].as_f64().unwrap(),
    );
    assert!(rec_healthy <= budget, "recommended: exact {rec_healthy}");
    // The refining pass (finer thresholds and `for`s around the coarse recommendation, on
    // the same trials): its recommendation catches no fewer of the same trials than the
    // coarse one, is within the exact probabilities' tolerance as every frontier point is,
    // and detects, exactly, no less than the coarse one but for the trials' noise.
    let refinement = &r["refinement"];
    assert!(
        !refinement.is_null(),
        "the coarse recommendation is refined: {r:#}"
    );
    let coarse = &refinement["coarse"];
    assert_eq!(coarse["pass"], "coarse");
    assert!(
        count(&rec["caught"]) >= count(&coarse["caught"]),
        "{refinement:#}"
    );
    assert!(coarse["false_rollback"]["ci95"][1].as_f64().unwrap() <= budget);
    let (lo, hi) = wilson(count(&rec["false_rollback"]), trials, Z999);
    assert!(
        lo <= rec_healthy && rec_healthy <= hi,
        "recommended: [{lo}, {hi}], exact {rec_healthy}"
    );
    let (lo, hi) = wilson(count(&rec["caught"]), trials, Z999);
    assert!(
        lo <= rec_detected && rec_detected - rec_healthy <= hi,
        "recommended caught [{lo}, {hi}], exact {rec_detected}"
    );
    let (_, coarse_detected) = exact(
        coarse["thresholds"][0].as_f64().unwrap(),
        coarse["fors_s"][0].as_f64().unwrap(),
    );
    assert!(
        rec_detected >= coarse_detected - 0.02,
        "refined detects {rec_detected}, coarse {coarse_detected}"
    );
    // Every frontier point of the refined pass lies among the frontier checked above.
    assert!(
        frontier
            .iter()
            .all(|p| p["pass"] == "coarse" || p["pass"] == "refined")
    );
    let rule = &r["rules"][0];
    let best = rule["fors_s"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|f| {
            let f = f.as_f64().unwrap();
            (0..9).map(move |i| (0.057 * (0.103f64 / 0.057).powf(f64::from(i) / 8.0), f))
        })
        .map(|(t, f)| exact(t, f))
        .filter(|&(h, _)| h <= 0.6 * budget)
        .map(|(_, d)| d)
        .fold(0.0, f64::max);
    assert!(
        rec_detected >= best - 0.02,
        "recommended detects {rec_detected}, a setting well within the budget {best}"
    );
}

/// The Lawsker plan at a few hundred trials: a recommended setting within a 5% budget on
/// the tune's trials and on the check's fresh ones, every rule reported, today's figures
/// beside the recommended ones.
#[test]
fn lawsker_is_tuned_within_the_budget() {
    let r = tune(
        &[
            "plans/lawsker.yaml",
            "--trials",
            "150",
            "--max-false-rollback",
            "5%",
        ],
        0,
    );
    let rec = &r["recommended"];
    assert!(
        rec["false_rollback"]["ci95"][1].as_f64().unwrap() <= 0.05,
        "{rec:#}"
    );
    assert!(
        r["check"]["within_budget"].as_bool().unwrap(),
        "{:#}",
        r["check"]
    );
    assert_eq!(r["check"]["seed"], 2);
    let rules = r["rules"].as_array().unwrap();
    assert_eq!(
        rules.len(),
        13,
        "3 rollback conditions, the silent canary, 9 gates"
    );
    assert_eq!(rec["setting"].as_array().unwrap().len(), rules.len());
    let names: Vec<&str> = r["faulty_scenarios"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect();
    assert_eq!(names.len(), 8);
    // Today's setting rolls back most healthy releases; the recommended one catches more.
    let cur = &r["current"];
    assert!(cur["false_rollback"]["probability"].as_f64().unwrap() > 0.5);
    assert!(rec["caught"]["count"].as_u64().unwrap() > cur["caught"]["count"].as_u64().unwrap());
}

/// Same seed, same report, at any thread count.
#[test]
fn a_tune_does_not_depend_on_the_thread_count() {
    let args = [
        "plans/lawsker.yaml",
        "--trials",
        "40",
        "--max-false-rollback",
        "20%",
    ];
    let one = tune(&[&args[..], &["--jobs", "1"]].concat(), 0);
    let three = tune(&[&args[..], &["--jobs", "3"]].concat(), 0);
    assert_eq!(one, three);
}

/// What a user gets wrong: each is an error that says what to write, and nothing on stdout.
#[test]
fn bad_requests_are_refused_with_what_to_write() {
    let cases: [(&[&str], i32, &str); 13] = [
        (
            &["--vary", "eror_rate.threshold=1%..5%"],
            2,
            "`eror_rate` is not a rule of the plan",
        ),
        (
            &["--vary", "error_rate.threshold=1s..5s"],
            2,
            "a duration fits only a latency metric",
        ),
        (
            &["--vary", "error_rate.limit=1%..5%"],
            2,
            "`limit` is not a part of a rule",
        ),
        (
            &["--vary", "gates.error_rate.duration=1m..5m"],
            2,
            "a gate's `for` is the monitoring window",
        ),
        (
            &["--keep", "nothing"],
            2,
            "`nothing` is not a rule of the plan; tunable rules: error_rate, response_time_p95, availability, gates.error_rate",
        ),
        (
            &["--max-false-rollback", "150%"],
            2,
            "`150%` is not above 0% and at most 100%",
        ),
        (&["--max-false-rollback", "0"], 2, "`0` is not above 0%"),
        (
            &["--max-false-rollback", "1"],
            2,
            "`1` reads as 100% of releases; write a percentage (`1%`)",
        ),
        (
            &[
                "--keep",
                "error_rate",
                "--vary",
                "error_rate.threshold=1%..5%",
            ],
            2,
            "`error_rate` is both varied and kept",
        ),
        (
            &["--vary", "error_rate.threshold=10%..1%"],
            2,
            "give the smaller end first (`1%..10%`)",
        ),
        (
            &["--vary", "error_rate.threshold=1..10"],
            2,
            "its thresholds are at most 100%",
        ),
        (
            &[
                "--keep",
                "error_rate",
                "--keep",
                "response_time_p95",
                "--keep",
                "availability",
                "--keep",
                "gates",
            ],
            2,
            "nothing to tune: every rule is kept as written",
        ),
        // Two trials cannot show a rate within 1%.
        (
            &[],
            2,
            "with 2 healthy trials even no false rollback at all has an upper 95% bound of 65.8%",
        ),
    ];
    for (args, code, says) in cases {
        let done = plan()
            .args(["tune", "plans/lawsker.yaml", "--trials", "2"])
            .args(args)
            .expect(code);
        assert!(done.stderr.contains(says), "{args:?}: {}", done.stderr);
        assert_eq!(done.stdout, "", "{args:?}");
    }
}

/// Scenarios without a fault have nothing to catch; a budget nothing meets says how close
/// the calmest setting comes.
#[test]
fn a_tune_without_an_answer_says_why() {
    let dir = support::temp_dir("tune-no-answer");
    let healthy = write(&dir, "healthy.yaml", "scenarios:\n  - name: healthy\n");
    let done = plan()
        .args([
            "tune",
            "plans/admin-console.yaml",
            "--trials",
            "2",
            "--scenarios",
        ])
        .arg(&healthy)
        .expect(1);
    assert!(
        done.stderr.contains("has no faulty scenario"),
        "{}",
        done.stderr
    );
    // The availability gate kept as written rolls back about one healthy release in seven.
    let done = plan()
        .args([
            "tune",
            "plans/lawsker.yaml",
            "--trials",
            "200",
            "--max-false-rollback",
            "5%",
        ])
        .args(["--keep", "gates.availability", "--no-check"])
        .expect(1);
    assert!(
        done.stdout.contains("no setting meets the budget"),
        "{}",
        done.stdout
    );
    assert!(
        done.stderr
            .contains("no setting keeps false rollbacks within 5.0%"),
        "{}",
        done.stderr
    );
}

/// `--write` on every example plan: only lines of tuned scalars change, every comment and
/// key stays where it was, and the tuned plan validates. Without `--write` the same change
/// is printed and the file is left alone.
#[test]
fn write_round_trips_every_example_plan() {
    let root = support::root();
    let dir = support::temp_dir("tune-write");
    // The minimal plan states no request rate, and the built-in scenarios none either.
    let minimal = write(
        &dir,
        "minimal-scenarios.yaml",
        "traffic: { requests_per_second: 50 }\nscenarios:\n  - name: healthy\n  - name: errors\n    fault: { kind: step, onset: 1h, error_rate: 20% }\n",
    );
    let cases = [
        ("lawsker.yaml", root.join("simulations/lawsker.yaml")),
        ("checkout.yaml", root.join("simulations/checkout.yaml")),
        ("admin-console.yaml", root.join("simulations/default.yaml")),
        ("minimal.yaml", minimal),
    ];
    let listed: Vec<String> = std::fs::read_dir(root.join("plans"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".yaml"))
        .collect();
    for name in &listed {
        assert!(
            cases.iter().any(|(c, _)| c == name),
            "plans/{name}: add it here"
        );
    }
    let mut edited = 0;
    for (name, scenarios) in cases {
        let original = std::fs::read_to_string(root.join("plans").join(name)).unwrap();
        let path = dir.join(name);
        std::fs::write(&path, &original).unwrap();
        let args = vec![
            "tune".to_string(),
            path.to_str().unwrap().to_string(),
            "--trials".into(),
            "25".into(),
            "--max-false-rollback".into(),
            "40%".into(),
            "--no-check".into(),
            "--scenarios".into(),
            scenarios.to_str().unwrap().to_string(),
        ];
        // Printed, not written.
        let shown = plan().args(&args).args(["--format", "json"]).expect(0);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), original, "{name}");
        let r: Value = serde_json::from_str(&shown.stdout).unwrap();
        let edits = r["edits"].as_array().unwrap();
        // Written.
        let done = plan()
            .args(&args)
            .args(["--write", "--format", "json"])
            .expect(0);
        let w: Value = serde_json::from_str(&done.stdout).unwrap();
        assert_eq!(w["written"], true, "{name}");
        assert_eq!(r["written"], false, "{name}");
        let tuned = std::fs::read_to_string(&path).unwrap();
        // A `min_requests` line may come or go (a guard added or dropped); every other
        // line stays where it was.
        let guard = |l: &&str| l.trim_start().starts_with("min_requests:");
        let (old, new): (Vec<&str>, Vec<&str>) = (
            original.lines().filter(|l| !guard(l)).collect(),
            tuned.lines().filter(|l| !guard(l)).collect(),
        );
        assert_eq!(old.len(), new.len(), "{name}: lines added or removed");
        let changed: Vec<usize> = (0..old.len()).filter(|&i| old[i] != new[i]).collect();
        let guards_changed = edits
            .iter()
            .filter(|e| {
                [&e["from"], &e["to"]]
                    .iter()
                    .any(|x| x.as_str().is_some_and(|l| guard(&l)))
            })
            .count();
        assert_eq!(
            changed.len() + guards_changed,
            edits.len(),
            "{name}: the printed change is the written one"
        );
        for e in &edits[..] {
            // A guard line added is indented as its condition's keys are.
            if let (Value::Null, Some(to)) = (&e["from"], e["to"].as_str()) {
                assert!(to.starts_with("    min_requests: "), "{name}: {to}");
            }
        }
        for &i in &changed {
            let (a, b) = (old[i], new[i]);
            // The key, and any comment after the value, are as they were.
            let key = |l: &str| l.split(':').next().unwrap().to_string();
            let comment = |l: &str| l.find(" #").map(|c| l[c..].trim().to_string());
            assert_eq!(key(a), key(b), "{name}:{}", i + 1);
            assert_eq!(comment(a), comment(b), "{name}:{}", i + 1);
            let key = key(a);
            let key = key.trim().trim_start_matches("- ");
            let tunable = ["threshold", "duration"].contains(&key)
                || r["rules"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|x| x["target"] == format!("gates.{key}"));
            assert!(tunable, "{name}:{}: `{a}` is not a tuned scalar", i + 1);
        }
        plan().args(["validate", path.to_str().unwrap()]).expect(0);
        edited += changed.len() + guards_changed;
    }
    assert!(edited >= 4, "the tunes changed only {edited} lines");
}

/// `--write` writes through a link to the file it names, and leaves a read-only plan alone.
#[test]
fn write_follows_links_and_respects_read_only_plans() {
    use std::os::unix::fs::{PermissionsExt, symlink};
    let dir = support::temp_dir("tune-write-link");
    let scenarios = write(
        &dir,
        "s.yaml",
        "traffic: { requests_per_second: 50 }\nscenarios:\n  - name: healthy\n  - name: errors\n    fault: { kind: step, onset: 1h, error_rate: 20% }\n",
    );
    let original = std::fs::read_to_string(support::root().join("plans/minimal.yaml")).unwrap();
    // Rolling back at 0.6% errors, against a healthy 0.5%: a tune changes that.
    let original = original.replace("threshold: 5%", "threshold: 0.6%");
    let real = write(&dir, "real.yaml", &original);
    let link = dir.join("link.yaml");
    symlink(&real, &link).unwrap();
    let run = |path: &std::path::Path| {
        plan()
            .args([
                "tune",
                path.to_str().unwrap(),
                "--trials",
                "30",
                "--max-false-rollback",
                "30%",
            ])
            .args([
                "--no-check",
                "--write",
                "--scenarios",
                scenarios.to_str().unwrap(),
            ])
    };
    run(&link).expect(0);
    assert!(
        std::fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink()
    );
    let tuned = std::fs::read_to_string(&real).unwrap();
    assert_ne!(
        tuned, original,
        "the tune changed nothing: the test tests little"
    );
    std::fs::set_permissions(&real, std::fs::Permissions::from_mode(0o444)).unwrap();
    std::fs::write(&real, &original).ok(); // as root the bits do not stop a write
    let before = std::fs::read_to_string(&real).unwrap();
    let done = run(&real).expect(1);
    assert!(
        done.stderr.contains("the plan is read-only"),
        "{}",
        done.stderr
    );
    assert_eq!(std::fs::read_to_string(&real).unwrap(), before);
}

/// The diff a tune printed in `stdout`, applied by `git apply` in `dir`: the file `name`
/// then.
fn git_apply(dir: &std::path::Path, stdout: &str, name: &str) -> String {
    let patch = &stdout[stdout.find("--- a/").expect("a diff")..];
    write(dir, "change.diff", patch);
    let applied = std::process::Command::new("git")
        .current_dir(dir)
        .args(["apply", "change.diff"])
        .status()
        .expect("git runs");
    assert!(applied.success(), "git apply refused:\n{patch}");
    std::fs::read_to_string(dir.join(name)).unwrap()
}

/// `--vary window=...`: each rate window is the plan with it written in, swept on the same
/// seeds; a window the plan cannot take is said and not tried; the recommended window is
/// written under `monitoring:` (inserted when the plan states none), and the printed
/// change is exactly what `--write` writes (`git apply` takes it).
#[test]
fn the_rate_window_is_tuned_as_a_plan_of_its_own() {
    let dir = support::temp_dir("tune-window");
    // The minimal plan, with a gate: a gate fires after the window, so no window may be as
    // long as a phase it gates.
    let original = std::fs::read_to_string(support::root().join("plans/minimal.yaml"))
        .unwrap()
        .replace(
            "rollback_conditions:",
            "gates:\n  error_rate: \"< 10%\"\n\nrollback_conditions:",
        );
    assert!(original.contains("gates:") && !original.contains("window:"));
    write(&dir, "minimal.yaml", &original);
    write(
        &dir,
        "s.yaml",
        "traffic: { requests_per_second: 5, error_clustering: 0 }\nbaseline: { error_rate: 3% }\nscenarios:\n  - name: healthy\n  - name: errors\n    fault: { kind: step, onset: 20m, error_rate: 8% }\n",
    );
    // Thin, noisy traffic: the plan's 5m window rolls back too many healthy releases at
    // its threshold (kept), and only a longer window meets the budget.
    let args = [
        "tune",
        "minimal.yaml",
        "--scenarios",
        "s.yaml",
        "--trials",
        "300",
        "--max-false-rollback",
        "8%",
        "--no-check",
        "--keep",
        "error_rate",
        "--keep",
        "gates",
        "--vary",
        "window=10m..1h",
    ];
    let shown = plan().cwd(&dir).args(args).expect(0);
    // A 1h window is not shorter than the 1h canary phase: its gates could never fail it.
    assert!(
        shown
            .stderr
            .contains("note: the rate window 1h: phase `canary` lasts 1h"),
        "{}",
        shown.stderr
    );
    let r = json_in(&dir, &args);
    let windows: Vec<f64> = r["windows_s"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w.as_f64().unwrap())
        .collect();
    assert_eq!(windows, [300.0, 600.0, 900.0, 1200.0, 1800.0, 2700.0]);
    assert_eq!(r["current"]["window_s"], 300.0);
    assert!(r["current"]["false_rollback"]["ci95"][1].as_f64().unwrap() > 0.08);
    let chosen = r["recommended"]["window_s"].as_f64().unwrap();
    assert!(windows[1..].contains(&chosen), "{chosen}");
    assert!(
        r["recommended"]["false_rollback"]["ci95"][1]
            .as_f64()
            .unwrap()
            <= 0.08
    );
    // Each window's best on its own, the recommended among them.
    let per_window = r["per_window"].as_array().unwrap();
    assert_eq!(per_window.len(), windows.len());
    assert!(per_window.iter().any(|w| w["best"]["window_s"] == chosen));
    // The printed change, applied, is the plan `--write` writes.
    let by_patch = git_apply(&dir, &shown.stdout, "minimal.yaml");
    write(&dir, "minimal.yaml", &original);
    plan().cwd(&dir).args(args).arg("--write").expect(0);
    let written = std::fs::read_to_string(dir.join("minimal.yaml")).unwrap();
    assert_eq!(by_patch, written);
    let window_line = format!(
        "monitoring:\n  window: {}m\n",
        (chosen / 60.0).round() as u64
    );
    assert!(written.contains(&window_line), "{written}");
    assert_eq!(written.lines().count(), original.lines().count() + 1);
    plan()
        .cwd(&dir)
        .args(["validate", "minimal.yaml"])
        .expect(0);
    // With CRLF line ends, no newline at the end and no `monitoring:` (added at the end),
    // the same: the diff keeps each line's ending and marks the last line's, and `--write`
    // ends its lines as the file does.
    let runbook =
        "monitoring:\n  runbook_url: https://wiki.example.com/releases/minimal/RUNBOOK.md\n";
    assert!(original.contains(runbook));
    let crlf = original.replace(runbook, "").replace('\n', "\r\n");
    let crlf = crlf.trim_end_matches("\r\n");
    write(&dir, "minimal.yaml", crlf);
    let shown = plan().cwd(&dir).args(args).expect(0);
    assert!(shown.stdout.contains("\\ No newline at end of file"));
    let by_patch = git_apply(&dir, &shown.stdout, "minimal.yaml");
    write(&dir, "minimal.yaml", crlf);
    plan().cwd(&dir).args(args).arg("--write").expect(0);
    let written = std::fs::read_to_string(dir.join("minimal.yaml")).unwrap();
    assert_eq!(by_patch, written);
    assert!(
        written.contains(&window_line.replace('\n', "\r\n")),
        "{written:?}"
    );
    assert!(!written.replace("\r\n", "").contains('\n'), "{written:?}");
    // Ranges that leave nothing to try, or too much, are refused with what to do.
    write(&dir, "minimal.yaml", &original);
    for (range, says) in [
        (
            "window=5m..5m",
            "no window from 5m to 5m but the plan's own",
        ),
        ("window=1m..1d", "more than the 6 one tune tries"),
        ("window=15m..5m", "runs backwards"),
        ("window=soon..5m", "`soon` is not a duration"),
    ] {
        let out = plan()
            .cwd(&dir)
            .args([
                "tune",
                "minimal.yaml",
                "--scenarios",
                "s.yaml",
                "--vary",
                range,
            ])
            .expect(2);
        assert!(out.stderr.contains(says), "{range}: {}", out.stderr);
    }
}

/// A thin canary (2% of 2 requests a second: about 12 requests per 5m window, where one
/// failure is 8% and crosses the 5% threshold): the thin-traffic check flags the rule, so
/// the tune tries its `min_requests` by default. With short `for`s only, the budget takes a
/// guard: the recommended one is written as a new key of the condition, indented as its
/// keys are (comments and every other line kept), the plan validates, and `plan simulate`
/// of it on other trials stays within the budget.
#[test]
fn a_thin_canary_gets_a_guard() {
    let dir = support::temp_dir("tune-guard");
    let original = "# A thin canary.\nname: thin\nrelease: { from: v1, to: v2 }\nservice: { name: app, image: acme/app, port: 8080 }\n\
                    routing: { listen: 80, sticky: { cookie: uid } }\n\nphases:\n  - name: canary\n    traffic: 2%\n    duration: 2h\n\
                    \x20 - name: full\n    traffic: 100%\n    duration: 2h\n\nrollback_conditions:\n  - metric: error_rate   # the only rule\n\
                    \x20   threshold: 5%\n    duration: 5m\n\n# the end\n";
    write(&dir, "thin.yaml", original);
    write(
        &dir,
        "s.yaml",
        "traffic: { requests_per_second: 2, error_clustering: 0 }\nbaseline: { error_rate: 0.5% }\nscenarios:\n  - name: healthy\n  - name: errors\n    fault: { kind: step, onset: 30m, error_rate: 10% }\n",
    );
    let args = [
        "tune",
        "thin.yaml",
        "--scenarios",
        "s.yaml",
        "--trials",
        "300",
        "--max-false-rollback",
        "5%",
        "--vary",
        "error_rate.duration=0s..2m",
        // The threshold kept: a guard, not a higher threshold, is what calms the thin canary.
        "--vary",
        "error_rate.threshold=5%..5%",
    ];
    let r = json_in(&dir, &args);
    assert_eq!(r["schema_version"], 6);
    let rule = &r["rules"][0];
    assert_eq!(rule["target"], "error_rate");
    // No guard, then round numbers up to above the guard that covers every window (21).
    let tried = rule["min_requests_tried"].as_array().unwrap();
    assert_eq!(tried[0], Value::Null);
    assert!(tried.len() >= 4 && tried.len() <= 6, "{tried:?}");
    assert!(tried.last().unwrap().as_u64().unwrap() > 21, "{tried:?}");
    let guard = rule["recommended_min_requests"]
        .as_u64()
        .unwrap_or_else(|| panic!("a guard is recommended: {r:#}"));
    assert_eq!(r["recommended"]["min_requests"][0], guard);
    assert!(
        r["current"]["false_rollback"]["ci95"][1].as_f64().unwrap() > 0.05,
        "today's setting is over the budget: the test tests little"
    );
    // Written: one line added after `duration`, every other line as it was.
    let shown = plan().cwd(&dir).args(args).expect(0);
    assert!(
        shown
            .stdout
            .contains(&format!("with at least {guard} requests per 5m window"))
    );
    let by_patch = git_apply(&dir, &shown.stdout, "thin.yaml");
    write(&dir, "thin.yaml", original);
    plan().cwd(&dir).args(args).arg("--write").expect(0);
    let written = std::fs::read_to_string(dir.join("thin.yaml")).unwrap();
    assert_eq!(by_patch, written, "the printed change is the written one");
    assert!(
        written.contains(&format!(
            "\n    duration: 0s\n    min_requests: {guard}\n\n# the end\n"
        )) || written.contains(&format!(
            "\n    duration: 1m\n    min_requests: {guard}\n\n# the end\n"
        )) || written.contains(&format!(
            "\n    duration: 2m\n    min_requests: {guard}\n\n# the end\n"
        )) || written.contains(&format!(
            "\n    duration: 5m\n    min_requests: {guard}\n\n# the end\n"
        )),
        "{written}"
    );
    assert_eq!(written.lines().count(), original.lines().count() + 1);
    let kept: Vec<&str> = original
        .lines()
        .filter(|l| !l.contains("threshold:") && !l.contains("duration: 5m"))
        .collect();
    for l in kept {
        assert!(written.lines().any(|w| w == l), "`{l}` is gone:\n{written}");
    }
    plan().cwd(&dir).args(["validate", "thin.yaml"]).expect(0);
    // Fresh trials: within the budget.
    let done = plan()
        .cwd(&dir)
        .args([
            "simulate",
            "thin.yaml",
            "--scenarios",
            "s.yaml",
            "--trials",
            "1000",
        ])
        .args(["--seed", "77", "--format", "json"])
        .expect(0);
    let sim: Value = serde_json::from_str(&done.stdout).unwrap();
    let healthy = sim["scenarios"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "healthy")
        .unwrap();
    let upper = healthy["false_rollback"]["ci95"][1].as_f64().unwrap();
    assert!(upper <= 0.05, "{:#}", healthy["false_rollback"]);
    // And a tune of the guarded plan keeps the guard, or says why not: the plan's own
    // guard is among those tried.
    let again = plan()
        .cwd(&dir)
        .args(args)
        .args(["--format", "json", "--no-check"])
        .expect(0);
    let again: Value = serde_json::from_str(&again.stdout).unwrap();
    assert!(
        again["rules"][0]["min_requests_tried"]
            .as_array()
            .unwrap()
            .contains(&Value::from(guard))
    );
}

/// `--vary ID.min_requests=A..B`: whole numbers of requests, the smaller first, on a rule
/// that can have a guard; each mistake is said naming the argument.
#[test]
fn bad_guard_ranges_are_refused_naming_the_argument() {
    let cases: [(&str, &str); 7] = [
        (
            "error_rate.min_requests=1.5..100",
            "`1.5` is not a number of requests",
        ),
        (
            "error_rate.min_requests=0..100",
            "`0` is not a number of requests",
        ),
        (
            "error_rate.min_requests=many..100",
            "`many` is not a number of requests",
        ),
        (
            "error_rate.min_requests=500..100",
            "give the smaller end first (`100..500`)",
        ),
        ("error_rate.min_requests=100", "the range is FROM..TO"),
        (
            "gates.error_rate.min_requests=10..100",
            "a gate has no `min_requests`",
        ),
        (
            "silent_canary.min_requests=10..100",
            "`silent_canary` cannot have `min_requests`",
        ),
    ];
    for (vary, says) in cases {
        let done = plan()
            .args([
                "tune",
                "plans/lawsker.yaml",
                "--trials",
                "2",
                "--vary",
                vary,
            ])
            .expect(2);
        assert!(done.stderr.contains(says), "{vary}: {}", done.stderr);
        assert!(
            done.stderr.contains(vary.split('=').next().unwrap()),
            "{vary}: {}",
            done.stderr
        );
        assert_eq!(done.stdout, "", "{vary}");
    }
    // A metric not counted in requests cannot be guarded.
    let dir = support::temp_dir("tune-guard-bad");
    let p = crate::simulate::test_plan(
        &dir,
        "cpu",
        "10%",
        "1h",
        "{}",
        &["{ metric: cpu_usage, threshold: 90%, duration: 5m }"],
    );
    let done = plan()
        .args(["tune", p.to_str().unwrap(), "--trials", "2"])
        .args(["--vary", "cpu_usage.min_requests=10..100"])
        .expect(2);
    assert!(
        done.stderr
            .contains("`cpu_usage` cannot have `min_requests`"),
        "{}",
        done.stderr
    );
}

/// A plan with one error-rate rule, 10% for 2h then 100% for 1h.
const FAST: &str = "name: fast\nrelease: { from: v1, to: v2 }\nservice: { name: app, image: acme/app, port: 8080 }\n\
                    routing: { listen: 80, sticky: { cookie: uid } }\nphases:\n  - name: canary\n    traffic: 10%\n    duration: 2h\n\
                    \x20 - name: full\n    traffic: 100%\n    duration: 1h\nrollback_conditions:\n  - metric: error_rate\n    threshold: 5%\n    duration: 5m\n";

/// The plan's own setting is kept only when nothing within the budget beats it: one that
/// rolls back 11 of 400 healthy trials and catches later than a setting that rolls back
/// none is replaced; and a tuned plan, tuned again on the same trials, is kept as it is.
#[test]
fn the_plans_own_setting_is_kept_only_when_nothing_beats_it() {
    let dir = support::temp_dir("tune-own");
    write(&dir, "fast.yaml", FAST);
    write(
        &dir,
        "s.yaml",
        "traffic: { requests_per_second: 1 }\nbaseline: { error_rate: 1% }\nscenarios:\n  - name: healthy\n  - name: errors\n    fault: { kind: step, onset: 30m, error_rate: 30% }\n",
    );
    let args = [
        "tune",
        "fast.yaml",
        "--scenarios",
        "s.yaml",
        "--trials",
        "400",
        "--max-false-rollback",
        "5%",
    ];
    let r = json_in(&dir, &args);
    let figure = |p: &Value, k: &str| p[k]["count"].as_u64().unwrap();
    let time = |p: &Value| p["mean_time_to_catch_s"].as_f64().unwrap();
    let (now, rec) = (&r["current"], &r["recommended"]);
    assert!(
        figure(now, "false_rollback") > figure(rec, "false_rollback")
            && figure(now, "caught") <= figure(rec, "caught")
            && time(now) > time(rec),
        "the plan's own setting is beaten on every count, and was kept: {r:#}"
    );
    plan().cwd(&dir).args(args).arg("--write").expect(0);
    let again = plan().cwd(&dir).args(args).expect(0).stdout;
    assert!(
        again.contains("the plan already has the recommended setting"),
        "{again}"
    );
}

/// When a calmer setting catches every faulty trial the recommendation catches, the
/// recommendation's extra false rollbacks buy only speed: the report says so, in JSON
/// (`trade`: that setting on the frontier, the points spent, the seconds gained) and in
/// text, with the figures of the settings it compares.
#[test]
fn a_recommendation_that_spends_its_budget_on_speed_says_so() {
    let dir = support::temp_dir("tune-trade");
    write(&dir, "fast.yaml", FAST);
    write(
        &dir,
        "s.yaml",
        // A fault a lower threshold catches half an hour sooner, at the cost of a few
        // healthy trials.
        "traffic: { requests_per_second: 5 }\nbaseline: { error_rate: 1% }\nscenarios:\n  - name: healthy\n  - name: errors\n    fault: { kind: step, onset: 30m, error_rate: 4% }\n",
    );
    let args = [
        "tune",
        "fast.yaml",
        "--scenarios",
        "s.yaml",
        "--trials",
        "1000",
        "--max-false-rollback",
        "10%",
    ];
    let report = || json_in(&dir, &args);
    let r = report();
    let rec = &r["recommended"];
    let trade = &r["trade"];
    let calmer = &r["frontier"][trade["frontier_index"].as_u64().expect("a trade") as usize];
    let count = |p: &Value, k: &str| p[k]["count"].as_u64().unwrap();
    assert!(
        count(calmer, "false_rollback") < count(rec, "false_rollback"),
        "{r:#}"
    );
    assert!(count(calmer, "caught") >= count(rec, "caught"), "{r:#}");
    let prob = |p: &Value| p["false_rollback"]["probability"].as_f64().unwrap();
    let points = trade["false_rollback_points"].as_f64().unwrap();
    assert!((points - 100.0 * (prob(rec) - prob(calmer))).abs() < 1e-9 && points > 0.0);
    let time = |p: &Value| p["mean_time_to_catch_s"].as_f64().unwrap();
    let sooner = trade["sooner_s"].as_f64().unwrap();
    assert!(
        (sooner - (time(calmer) - time(rec))).abs() < 1e-9 && sooner > 0.0,
        "{r:#}"
    );
    let shown = plan().cwd(&dir).args(args).expect(0).stdout;
    assert!(
        shown.contains(&format!(
            "the recommendation spends {points:.2} points more of them to catch"
        )),
        "{shown}"
    );
    // Where no calmer setting catches as many (here the recommendation has no false
    // rollback), there is no trade.
    write(
        &dir,
        "s.yaml",
        "traffic: { requests_per_second: 2 }\nbaseline: { error_rate: 1% }\nscenarios:\n  - name: healthy\n  - name: errors\n    fault: { kind: step, onset: 30m, error_rate: 30% }\n",
    );
    let r = report();
    assert_eq!(r["recommended"]["false_rollback"]["count"], 0);
    assert!(r["trade"].is_null(), "{r:#}");
    assert!(
        !plan()
            .cwd(&dir)
            .args(args)
            .expect(0)
            .stdout
            .contains("the trade")
    );
}
