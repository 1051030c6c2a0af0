//! Exact instants: a fault that begins between two scrapes shows in the Monte Carlo from
//! that instant, not from a scrape or a span's middle. With traffic so heavy that the
//! error ratio has no noise to speak of, every trial rolls back at the evaluation at which
//! the project's replay of the same counters, drawn without noise, rolls back: the time to
//! catch is the same in every trial and equal to the replay's, for onsets all over the
//! scrape interval (just before and just after the middle of a span included).

use crate::proof_support::promtool_timelines;
use crate::simulate::test_plan;
use crate::support::{self, plan, scenario, simulate_json as json, write};
use std::fmt::Write as _;
use std::path::Path;

pub(crate) const AVAILABILITY_2M: &str = "{ metric: availability, threshold: 99%, duration: 2m }";

/// Onsets in milliseconds: on a scrape, one second either side of a 45s span's middle
/// (the default grid draws the span from 40m15s to 41m in one piece), just after a scrape,
/// and on no second at all.
const ONSETS: [i64; 5] = [2_400_000, 2_437_000, 2_438_000, 2_416_000, 2_452_500];

/// The trace of [`support::failing_canary_csv`] for `onset_ms`, on the aligned grid; with
/// `born`, its failure series starts at its first failure
/// ([`support::failing_canary_csv_born`]).
fn trace(dir: &Path, onset_ms: i64, born: bool) -> String {
    let csv = if born {
        support::failing_canary_csv_born(0, 0, onset_ms)
    } else {
        support::failing_canary_csv(0, 0, onset_ms)
    };
    let path = write(dir, &format!("onset-{onset_ms}-{born}.csv"), &csv);
    path.to_str().unwrap().to_string()
}

#[test]
fn a_fault_between_scrapes_is_caught_when_the_replay_of_its_counters_catches_it() {
    caught_as_replayed(false);
}

/// The same with the failure series created at the canary's first failure
/// (`exposition.failures_from: first_failure`, the default): the service has no failure
/// before the onset, so the `code="500"` series' first sample is the first scrape after
/// it, holding every failure since. `rate()` does not count the failures before that
/// sample: every trial rolls back when the replay of counters exposed that way does, and
/// never sooner than with the series pre-initialised (for some onsets, later).
#[test]
fn a_failure_series_born_at_the_first_failure_is_caught_when_its_replay_catches_it() {
    let born = caught_as_replayed(true);
    let from_start = caught_as_replayed(false);
    eprintln!("seconds to catch, born: {born:?}; from the start: {from_start:?}");
    for (b, s) in born.iter().zip(&from_start) {
        assert!(b >= s, "{b} against {s}");
    }
    assert!(born.iter().zip(&from_start).any(|(b, s)| b > s));
}

/// Runs the Monte Carlo on a 100% failure at each of [`ONSETS`] (the failure series born
/// at the first failure or not, as `born`) and checks that it rolls back when the replay
/// of the same counters does, and (born or not) when promtool fires on them; returns the
/// seconds to catch, per semantics and onset.
fn caught_as_replayed(born: bool) -> Vec<f64> {
    let dir = support::temp_dir(if born { "instants-born" } else { "instants" });
    // One canary phase at 50% for 2h: availability below 99% for 2m rolls back.
    let p = test_plan(&dir, "instants", "50%", "2h", "{}", &[AVAILABILITY_2M]);
    let p = p.to_str().unwrap();
    let from = if born {
        "first_failure"
    } else {
        "release_start"
    };
    let mut scenarios = format!(
        "trials: 20\ntraffic: {{ requests_per_second: 20000, daily_amplitude: 0 }}\n\
         baseline: {{ error_rate: 0% }}\nexposition: {{ scrape_offset: 0s, failures_from: {from} }}\n\
         scenarios:\n  - name: healthy\n",
    );
    for onset in ONSETS {
        writeln!(
            scenarios,
            "  - name: at-{onset}\n    fault: {{ kind: step, onset: {onset}ms, error_rate: 100% }}"
        )
        .unwrap();
    }
    let sc = write(&dir, "scenarios.yaml", &scenarios);
    let rec = write(&dir, "healthy.csv", &healthy_recording());
    let mut all = Vec::new();
    for semantics in ["prometheus3", "prometheus2"] {
        let run = |more: &[&str]| {
            let args = [
                p,
                "--scenarios",
                sc.to_str().unwrap(),
                "--semantics",
                semantics,
            ];
            json(&[&args[..], more].concat())
        };
        // The synthetic model, and trials built from a recording of the same healthy
        // service (its `code="500"` series recorded from the start): the canary is a new
        // process, whose failure series follows `failures_from` in both.
        let (mc, recorded) = (run(&[]), run(&["--baseline", rec.to_str().unwrap()]));
        let mut caught_after = Vec::new();
        for onset in ONSETS {
            let replay = json(&[
                p,
                "--trace",
                &trace(&dir, onset, born),
                "--semantics",
                semantics,
            ]);
            assert_eq!(replay["verdict"]["outcome"], "rolled_back", "{replay:#}");
            let want = (replay["verdict"]["at_ms"].as_i64().unwrap() - onset) as f64 / 1000.0;
            let name = format!("at-{onset}");
            for (model, report) in [("synthetic", &mc), ("recorded", &recorded)] {
                let s = scenario(report, &name);
                assert_eq!(
                    s["caught"]["count"], 20,
                    "{model} {semantics} {name}: {s:#}"
                );
                for q in ["median", "p90", "p99"] {
                    assert_eq!(
                        s["time_to_catch_seconds"][q], want,
                        "{model} {semantics} {name} {q}: the replay rolls back {want} s after the onset"
                    );
                }
            }
            caught_after.push(want);
        }
        // One second later, one second sooner: the same evaluation.
        assert_eq!(caught_after[1] - caught_after[2], 1.0, "{caught_after:?}");
        all.extend(caught_after);
    }
    // Prometheus 2.42 itself, on the same counters: promtool fires the rule when the replay
    // (and so the Monte Carlo) rolls back.
    let Some(promtool) = support::tool("promtool") else {
        return all;
    };
    let out = dir.join("out");
    plan().args(["render", p, "--out"]).arg(&out).expect(0);
    let rules = out.join("instants/prometheus/canary.rules.yml");
    for onset in ONSETS {
        let replay = json(&[
            p,
            "--trace",
            &trace(&dir, onset, born),
            "--semantics",
            "prometheus2",
        ]);
        let at = replay["verdict"]["at_ms"].as_i64().unwrap();
        let fired = promtool_first_firing(&promtool, &dir, &rules, (onset, born));
        assert_eq!(
            fired,
            Some(at),
            "onset {onset} ms: promtool against the replay"
        );
    }
    all
}

/// Three hours of the service at 20,000 requests a second, none failing, scraped every
/// 15 s: `code="200"` and `code="500"` (recorded from the start), and `up`.
fn healthy_recording() -> String {
    let start = 1_714_521_600i64;
    let mut out = String::from("timestamp,series,labels,value\n");
    for i in 0..=720i64 {
        let t = start + 15 * i;
        writeln!(out, "{t},http_requests_total,code=200,{}", 300_000 * i).unwrap();
        writeln!(out, "{t},http_requests_total,code=500,0").unwrap();
        writeln!(out, "{t},up,,1").unwrap();
    }
    out
}

/// When promtool first fires `CanaryRollbackAvailability` over [`trace`]'s counters in the
/// first hour (with `born`, the failure series missing before its first failure).
fn promtool_first_firing(
    promtool: &Path,
    dir: &Path,
    rules: &Path,
    (onset_ms, born): (i64, bool),
) -> Option<i64> {
    let values = |f: &dyn Fn(i64) -> Option<f64>| {
        (0..=240i64)
            .map(|j| f(j * 15_000).map_or("_".to_string(), |v| format!("{v}")))
            .collect::<Vec<_>>()
            .join(" ")
    };
    let failed = |t: i64| 100.0 * (t - onset_ms).max(0) as f64 / 1000.0;
    let answered = |t: i64| t as f64 / 10.0 - failed(t);
    let labels = r#"service="app",track="canary""#;
    let mut test = format!(
        "rule_files: ['{}']\nevaluation_interval: 1m\ntests:\n- name: trace-0\n  interval: 15s\n  input_series:\n",
        rules.display()
    );
    for (series, v) in [
        (
            format!("http_requests_total{{{labels},code=\"200\"}}"),
            values(&|t| Some(answered(t))),
        ),
        (
            format!("http_requests_total{{{labels},code=\"500\"}}"),
            values(&|t| (!born || t > onset_ms).then(|| failed(t))),
        ),
        (format!("up{{{labels}}}"), values(&|_| Some(1.0))),
    ] {
        writeln!(test, "  - series: '{series}'\n    values: '{v}'").unwrap();
    }
    writeln!(test, "  alert_rule_test:").unwrap();
    for minute in 0..=60 {
        writeln!(
            test,
            "  - {{eval_time: {minute}m, alertname: CanaryRollbackAvailability, exp_alerts: []}}"
        )
        .unwrap();
    }
    let file = write(dir, &format!("promtool-{onset_ms}-{born}.yml"), &test);
    let alerts = ["CanaryRollbackAvailability".to_string()];
    let timelines = promtool_timelines(promtool, &file, &alerts);
    timelines.get(&(0, 0)).and_then(|t| t.iter().min().copied())
}
