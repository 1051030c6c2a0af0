//! The silent-canary rule (`monitoring.silent_canary`) end to end: a canary that crashes is
//! rolled back within a bound worked out from the plan's intervals, in every Monte Carlo
//! trial and in a replayed trace; a healthy canary that has never failed a request (so has
//! no `code="5xx"` series) never trips it.
//!
//! The bound: a crash at `onset` fails the first scrape at or after it; the first
//! evaluation at or after that scrape sees `up` 0 and the alert turns pending; it fires
//! `for` later (rounded up to the evaluation grid). So the rollback comes at most one scrape
//! interval + one evaluation interval + `for` after the onset (plus the time to the next
//! phase if the crash comes just before a phase change, which restarts every `for`).

use crate::support::{self, plan, scenario, simulate_json as simulate, write};
use serde_json::Value;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// A plan with one canary phase at 50% for 2h, then everyone; an error-rate rule far from
/// any healthy value; `monitoring` as given.
fn test_plan(dir: &Path, name: &str, monitoring: &str) -> PathBuf {
    let rule = "{ metric: error_rate, threshold: 95%, duration: 5m }";
    crate::simulate::test_plan(dir, name, "50%", "2h", monitoring, &[rule])
}

const CRASHES: &str = "trials: 100
traffic: { requests_per_second: 1000, daily_amplitude: 0 }
baseline: { error_rate: 0.5% }
scenarios:
  - name: healthy
  - name: on-the-grid
    fault: { kind: crash, onset: 20m }
  - name: off-the-grid
    fault: { kind: crash, onset: 20m7s }
  - name: just-after-a-scrape
    fault: { kind: crash, onset: 20m1s }
";

/// The exact rollback time of a crash at `onset_ms` (from the onset): first failed scrape
/// (scrapes half an interval before the evaluations, the scenario files' default), next
/// evaluation, then `for` on the evaluation grid.
fn expected_detection_ms(onset_ms: i64, scrape_ms: i64, eval_ms: i64, for_ms: i64) -> i64 {
    let up = |t: i64, m: i64| (t + m - 1) / m * m;
    let offset = scrape_ms / 2;
    let failed = up(onset_ms + offset, scrape_ms) - offset;
    let pending = up(failed, eval_ms);
    let fires = pending + up(for_ms, eval_ms);
    fires - onset_ms
}

#[test]
fn a_crash_is_caught_within_scrape_plus_evaluation_plus_for_in_every_trial() {
    let dir = support::temp_dir("silent-mc");
    let sc = write(&dir, "crashes.yaml", CRASHES);
    // Defaults (scrape 15s, evaluation 1m, window 5m: `silent_canary` 5m), and a plan's own
    // setting on other grids.
    for (name, monitoring, scrape, eval, for_) in [
        ("defaults", "{}", 15_000, 60_000, 300_000),
        (
            "tuned",
            "{ scrape_interval: 10s, evaluation_interval: 30s, window: 2m, silent_canary: 3m }",
            10_000,
            30_000,
            180_000,
        ),
    ] {
        let p = test_plan(&dir, name, monitoring);
        for semantics in ["prometheus3", "prometheus2"] {
            let r = simulate(&[
                p.to_str().unwrap(),
                "--scenarios",
                sc.to_str().unwrap(),
                "--semantics",
                semantics,
            ]);
            let h = scenario(&r, "healthy");
            assert_eq!(h["rollback"]["count"], 0, "{name} {semantics}: {h:#}");
            for (s, onset) in [
                ("on-the-grid", 1_200_000),
                ("off-the-grid", 1_207_000),
                ("just-after-a-scrape", 1_201_000),
            ] {
                let f = scenario(&r, s);
                let case = format!("{name} {semantics} {s}");
                assert_eq!(f["caught"]["count"], 100, "{case}: {f:#}");
                assert_eq!(f["false_rollback"]["count"], 0, "{case}");
                assert_eq!(f["first_rule"]["silent_canary"], 100, "{case}: {f:#}");
                let want = expected_detection_ms(onset, scrape, eval, for_);
                assert!(want <= scrape + eval + for_, "{case}: the bound");
                for q in ["median", "p90", "p99"] {
                    assert_eq!(
                        f["time_to_catch_seconds"][q],
                        want as f64 / 1000.0,
                        "{case} {q}: {f:#}"
                    );
                }
                // Every request routed to the crashed canary failed (NGINX's 502s): about
                // 500 a second from the onset to the rollback.
                assert_eq!(
                    f["blast_radius"]["failed_requests"], f["blast_radius"]["requests"],
                    "{case}"
                );
                // The blast radius counts whole scrape spans (those whose middle is past the
                // onset), so it is exact to within one evaluation interval's requests.
                let req = f["blast_radius"]["requests"].as_f64().unwrap();
                let mean = 500.0 * want as f64 / 1000.0;
                let slack = 0.02 * mean + 500.0 * eval as f64 / 1000.0;
                assert!((req - mean).abs() < slack, "{case}: {req} vs {mean}");
            }
        }
    }
}

#[test]
fn a_healthy_canary_without_any_error_never_looks_silent() {
    // No 5xx at all (so no `code="5xx"` series), and so little traffic that most windows
    // of the canary hold no request: the rule reads `up`, never the request counters.
    let dir = support::temp_dir("silent-healthy");
    let sc = write(
        &dir,
        "quiet-scenarios.yaml",
        "trials: 300\ntraffic: { requests_per_second: 0.2 }\nbaseline: { error_rate: 0 }\n\
         scenarios:\n  - name: healthy\n",
    );
    let p = test_plan(&dir, "quiet", "{ silent_canary: 2m }");
    let r = simulate(&[p.to_str().unwrap(), "--scenarios", sc.to_str().unwrap()]);
    let h = scenario(&r, "healthy");
    assert_eq!(h["rollback"]["trials"], 300);
    assert_eq!(h["rollback"]["count"], 0, "{h:#}");
}

#[test]
fn silent_canary_off_leaves_a_crash_to_the_no_data_warnings() {
    let dir = support::temp_dir("silent-off");
    let sc = write(&dir, "crashes.yaml", CRASHES);
    let p = test_plan(&dir, "off", "{ silent_canary: off }");
    let r = simulate(&[p.to_str().unwrap(), "--scenarios", sc.to_str().unwrap()]);
    let f = scenario(&r, "on-the-grid");
    assert_eq!(f["rolled_back_after_onset"]["count"], 0, "{f:#}");
}

/// A CSV trace of the plan `app`: both tracks' `up` and request counters every 15s for
/// 40 minutes, 100 requests per interval and no failure (no `code="500"` series); the
/// canary's stop at `stop_s` as `how` says.
fn trace(dir: &Path, name: &str, stop_s: i64, how: &str) -> PathBuf {
    let mut csv = String::from("timestamp,series,labels,value\n");
    for i in 0..=160i64 {
        let t = i * 15;
        for track in ["canary", "stable"] {
            let canary = track == "canary";
            let after = canary && t >= stop_s;
            let (up, count) = match how {
                _ if !after => ("1".to_string(), Some(100 * i)),
                // The target is listed but down: `up` 0, the other series stale.
                "down" => (
                    "0".to_string(),
                    (t == stop_s).then_some(-1), // -1: a staleness marker
                ),
                // The target vanished (DNS-based discovery): nothing at all.
                _ => continue,
            };
            writeln!(csv, "{t},up,service=app;track={track},{up}").unwrap();
            match count {
                Some(-1) => writeln!(
                    csv,
                    "{t},http_requests_total,service=app;track={track};code=200,stale"
                )
                .unwrap(),
                Some(c) => writeln!(
                    csv,
                    "{t},http_requests_total,service=app;track={track};code=200,{c}"
                )
                .unwrap(),
                None => {}
            }
        }
    }
    write(dir, name, &csv)
}

fn replay(p: &Path, t: &Path) -> Value {
    let done = plan()
        .arg("simulate")
        .arg(p)
        .arg("--trace")
        .arg(t)
        .args(["--format", "json"])
        .run();
    assert_eq!(done.code, 0, "{}", done.stderr);
    serde_json::from_str(&done.stdout).expect("JSON document")
}

#[test]
fn a_replayed_trace_whose_canary_stops_rolls_back() {
    let dir = support::temp_dir("silent-replay");
    let p = test_plan(&dir, "app", "{}");
    // Down at 10m: the evaluation at 10m sees `up` 0; fires 5m later.
    let down = replay(&p, &trace(&dir, "down.csv", 600, "down"));
    assert_eq!(down["verdict"]["outcome"], "rolled_back", "{down:#}");
    assert_eq!(down["verdict"]["alert"], "CanaryRollbackSilentCanary");
    assert_eq!(down["verdict"]["at_ms"], 15 * 60_000);
    // Vanished at 10m, without staleness markers: the last `up` (9m45s) is seen until the
    // 5m lookback passes it, so `up` is absent from the 15m evaluation; fires at 20m.
    let gone = replay(&p, &trace(&dir, "gone.csv", 600, "gone"));
    assert_eq!(gone["verdict"]["outcome"], "rolled_back", "{gone:#}");
    assert_eq!(gone["verdict"]["alert"], "CanaryRollbackSilentCanary");
    assert_eq!(gone["verdict"]["at_ms"], 20 * 60_000);
    // The same trace with a healthy canary throughout: still running when it ends.
    let healthy = replay(&p, &trace(&dir, "healthy.csv", 1_000_000, "down"));
    assert_eq!(healthy["verdict"]["outcome"], "running", "{healthy:#}");
}

#[test]
fn a_trace_without_up_says_the_silent_canary_rule_was_not_evaluated() {
    let dir = support::temp_dir("silent-no-up");
    let p = test_plan(&dir, "app", "{}");
    let t = write(
        &dir,
        "no-up.csv",
        "0,http_requests_total,service=app;track=canary;code=200,0\n\
         1800,http_requests_total,service=app;track=canary;code=200,18000\n",
    );
    let done = plan().arg("simulate").arg(&p).arg("--trace").arg(&t).run();
    assert_eq!(done.code, 0, "{}", done.stderr);
    assert!(
        done.stdout.contains("not evaluated: CanaryRollbackSilentCanary (silent canary): the trace has no `up` series"),
        "{}",
        done.stdout
    );
    let doc = replay(&p, &t);
    assert_eq!(doc["verdict"]["outcome"], "running", "{doc:#}");
    assert_eq!(doc["not_evaluated"].as_array().map(Vec::len), Some(1));
}

/// The silent-canary alert, labelled exactly as lawsker's alpha rules file labels it,
/// reaches the critical receivers (Slack, email and SMS), as every rollback does.
#[test]
fn alertmanager_routes_the_silent_canary_alert_as_a_critical_rollback() {
    let Some(amtool) = support::tool("amtool") else {
        return;
    };
    let out = support::render("plans/lawsker.yaml");
    let rules: yaml_serde::Value = yaml_serde::from_str(
        &std::fs::read_to_string(out.join("prometheus/alpha.rules.yml")).unwrap(),
    )
    .unwrap();
    let rule = rules["groups"][0]["rules"]
        .as_sequence()
        .unwrap()
        .iter()
        .find(|r| r["alert"].as_str() == Some("CanaryRollbackSilentCanary"))
        .expect("the silent-canary rule is in alpha's rules file");
    let mut labels: Vec<String> = rule["labels"]
        .as_mapping()
        .unwrap()
        .iter()
        .map(|(k, v)| format!("{}={}", k.as_str().unwrap(), v.as_str().unwrap()))
        .collect();
    labels.push("alertname=CanaryRollbackSilentCanary".into());
    assert!(
        labels.contains(&"severity=critical".to_string()),
        "{labels:?}"
    );
    assert!(
        labels.contains(&"action=rollback".to_string()),
        "{labels:?}"
    );
    let o = std::process::Command::new(amtool)
        .args(["config", "routes", "test", "--config.file"])
        .arg(out.join("alertmanager/alertmanager.yml"))
        .args(&labels)
        .output()
        .expect("amtool runs");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let mut got: Vec<String> = String::from_utf8_lossy(&o.stdout)
        .trim()
        .split(',')
        .map(|s| s.trim().to_string())
        .collect();
    got.sort();
    assert_eq!(got, ["email", "slack", "sms"]);
}

/// A dark phase (0%, no group) sends the canary nobody: its rules file has no silent-canary
/// rule (promtool still passes it) and the simulator does not evaluate it there. A canary
/// that crashes in the dark is rolled back once the next phase sends it users: at that
/// phase's start + `for`.
#[test]
fn a_dark_phase_has_no_silent_canary_rule_and_the_next_phase_catches_the_crash() {
    let dir = support::temp_dir("silent-dark");
    let p = write(
        &dir,
        "dark.yaml",
        "name: dark\nrelease: { from: v1, to: v2 }\nservice: { name: app, image: acme/app, port: 8080 }\n\
         routing: { listen: 80, sticky: { cookie: uid } }\n\
         phases:\n  - { name: dark, traffic: 0%, duration: 1h }\n  - { name: canary, traffic: 50%, duration: 2h }\n  - { name: full, traffic: 100% }\n\
         rollback_conditions:\n  - { metric: error_rate, threshold: 95%, duration: 5m }\n",
    );
    let out = dir.join("out");
    plan()
        .args(["render"])
        .arg(&p)
        .arg("--out")
        .arg(&out)
        .expect(0);
    let rules = |phase: &str| {
        std::fs::read_to_string(out.join(format!("dark/prometheus/{phase}.rules.yml"))).unwrap()
    };
    assert!(!rules("dark").contains("CanaryRollbackSilentCanary"));
    assert!(!rules("dark").contains("targets_up"));
    assert!(rules("canary").contains("CanaryRollbackSilentCanary"));
    assert!(rules("full").contains("CanaryRollbackSilentCanary"));
    let manifest: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("dark/manifest.json")).unwrap())
            .unwrap();
    assert_eq!(manifest["steps"][0]["silent_canary"], false);
    assert_eq!(manifest["steps"][1]["silent_canary"], true);
    if let Some(promtool) = support::tool("promtool") {
        for phase in ["dark", "canary", "full"] {
            let o = std::process::Command::new(&promtool)
                .args(["test", "rules", &format!("{phase}.test.yml")])
                .current_dir(out.join("dark/prometheus"))
                .output()
                .expect("promtool runs");
            assert!(
                o.status.success(),
                "{phase}: {}{}",
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            );
        }
    }
    let sc = write(
        &dir,
        "dark-crash.yaml",
        "trials: 50\ntraffic: { requests_per_second: 1000, daily_amplitude: 0 }\n\
         baseline: { error_rate: 0.5% }\nscenarios:\n  - name: crash-in-the-dark\n    fault: { kind: crash, onset: 20m }\n",
    );
    let r = simulate(&[p.to_str().unwrap(), "--scenarios", sc.to_str().unwrap()]);
    let f = scenario(&r, "crash-in-the-dark");
    assert_eq!(f["caught"]["count"], 50, "{f:#}");
    assert_eq!(f["first_rule"]["silent_canary"], 50, "{f:#}");
    assert_eq!(f["rollbacks_by_phase"]["canary"], 50, "{f:#}");
    // Pending at 1h (the canary phase's first evaluation), firing at 1h5m: 45m after onset.
    assert_eq!(f["time_to_catch_seconds"]["p99"], 2700.0, "{f:#}");
}

/// A plan whose targets carry other labels overrides `targets_up`'s query: the rule reads
/// the plan's query, and the simulator still models it (1, 0 once crashed), never as a
/// metric without data that would roll back every release.
#[test]
fn an_overridden_targets_up_query_is_still_simulated() {
    let dir = support::temp_dir("silent-override");
    let base = test_plan(&dir, "custom", "{}");
    let text = std::fs::read_to_string(&base).unwrap()
        + "metrics:\n  targets_up:\n    query: sum(up{job=\"$service-$track\"})\n";
    let p = write(&dir, "custom.yaml", &text);
    let sc = write(&dir, "crashes.yaml", CRASHES);
    let r = simulate(&[p.to_str().unwrap(), "--scenarios", sc.to_str().unwrap()]);
    assert_eq!(scenario(&r, "healthy")["rollback"]["count"], 0, "{r:#}");
    assert_eq!(
        scenario(&r, "on-the-grid")["first_rule"]["silent_canary"],
        100
    );
    plan()
        .args(["render"])
        .arg(&p)
        .arg("--out")
        .arg(dir.join("out"))
        .expect(0);
    let text = std::fs::read_to_string(dir.join("out/custom/prometheus/canary.rules.yml")).unwrap();
    assert!(text.contains(r#"sum(up{job=\"app-canary\"})"#), "{text}");
}
