//! `plan simulate --baseline RECORDING` (issue 17): trials built from a recording of the
//! healthy service. A recording drawn here from the synthetic model's own law, fed back,
//! must give the synthetic run's rates; a daily cycle in the recording must reach the
//! trials at its time of day; what a recording cannot give is refused, naming it.

use crate::support::{Done, plan, scenario, simulate_json as json, temp_dir, write};
use rand::SeedableRng;
use rand::rngs::Xoshiro256PlusPlus;
use rand_distr::{Binomial, Distribution, Poisson};
use std::fmt::Write as _;
use std::path::Path;

/// One canary phase of 20% for 1h, then 100% watched 30m; one rollback rule on the error
/// rate over 2m.
const PLAN: &str = "name: boot
release: { from: v1, to: v2 }
service: { name: app, image: acme/app, port: 8080 }
routing: { listen: 80, sticky: { cookie: uid } }
monitoring: { window: 2m }
traffic: { requests_per_second: 20 }
phases:
  - { name: canary, traffic: 20%, duration: 1h }
  - { name: full, traffic: 100%, duration: 30m }
rollback_conditions:
  - { metric: error_rate, threshold: 2%, duration: 1m }
";

/// The synthetic model of the recording below: flat 20 req/s, 1% failing independently.
const SCENARIOS: &str = "trials: 600
traffic: { requests_per_second: 20, daily_amplitude: 0, start_hour: 13, error_clustering: 0 }
baseline: { error_rate: 1% }
scenarios:
  - name: healthy
  - name: errors
    fault: { kind: step, onset: 20m, error_rate: 3% }
";

/// A recording of `hours` of 15s scrapes from 2024-05-01T00:00Z: Poisson requests at
/// `rps(hour of day)` a second, each failing with `fail(hour of day)`, as
/// `http_requests_total{code="200"}` and `{code="500"}` (and `up`).
fn recording(hours: u64, seed: u64, rps: impl Fn(u64) -> f64, fail: impl Fn(u64) -> f64) -> String {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
    let start = 1_714_521_600u64;
    let (mut ok, mut failed) = (0u64, 0u64);
    let mut out = String::from("timestamp,series,labels,value\n");
    for i in 0..hours * 240 {
        let t = start + 15 * i;
        if i > 0 {
            let hour = (t / 3600) % 24;
            let n = Poisson::new(rps(hour) * 15.0).unwrap().sample(&mut rng) as u64;
            let f = Binomial::new(n, fail(hour)).unwrap().sample(&mut rng);
            ok += n - f;
            failed += f;
        }
        writeln!(out, "{t},http_requests_total,code=200,{ok}").unwrap();
        writeln!(out, "{t},http_requests_total,code=500,{failed}").unwrap();
        writeln!(out, "{t},up,,1").unwrap();
    }
    out
}

/// `recording` with lines added after each scrape's `up` line: `more(scrape)` gives them
/// as `series,labels,value` (scrape 0 the first), at that scrape's time.
fn with_lines(recording: &str, mut more: impl FnMut(u64) -> Vec<String>) -> String {
    let mut out = String::new();
    let mut scrape = 0;
    for line in recording.lines() {
        writeln!(out, "{line}").unwrap();
        if let Some(t) = line.strip_suffix(",up,,1") {
            for m in more(scrape) {
                writeln!(out, "{t},{m}").unwrap();
            }
            scrape += 1;
        }
    }
    out
}

/// Probability and count of `what` in scenario `name`.
fn rate(report: &serde_json::Value, name: &str, what: &str) -> (f64, f64) {
    let p = &scenario(report, name)[what];
    (
        p["probability"].as_f64().unwrap(),
        p["trials"].as_f64().unwrap(),
    )
}

/// The two-proportion z statistic.
fn z((p1, n1): (f64, f64), (p2, n2): (f64, f64)) -> f64 {
    let p = (p1 * n1 + p2 * n2) / (n1 + n2);
    let se = (p * (1.0 - p) * (1.0 / n1 + 1.0 / n2)).sqrt();
    if se == 0.0 { 0.0 } else { (p1 - p2) / se }
}

fn files(dir: &Path, rec: &str) -> (String, String, String) {
    (
        write(dir, "plan.yaml", PLAN).display().to_string(),
        write(dir, "scenarios.yaml", SCENARIOS)
            .display()
            .to_string(),
        write(dir, "recording.csv", rec).display().to_string(),
    )
}

/// Two weeks of the synthetic model's healthy service, bootstrapped in 1h blocks at their
/// time of day: the scrapes are independent, so block bootstrap is valid, and the false
/// rollbacks and the catches must be those of the synthetic run on the same model, within
/// chance. (Trials share the recording: with two days, each block would come from two
/// hours of it, whose own chance moves every trial alike.)
#[test]
fn a_recording_of_the_synthetic_model_gives_the_synthetic_rates() {
    let dir = temp_dir("baseline-bootstrap");
    let rec = recording(14 * 24, 11, |_| 20.0, |_| 0.01);
    let (plan_file, sc, rec) = files(&dir, &rec);
    let synthetic = json(&[&plan_file, "--scenarios", &sc]);
    let recorded = json(&[&plan_file, "--scenarios", &sc, "--baseline", &rec]);
    let a = &recorded["assumptions"]["recording"];
    assert_eq!(a["step_seconds"], 15.0);
    assert_eq!(a["block_seconds"], 3600.0);
    assert_eq!(a["time_of_day_matched"], true);
    assert_eq!(a["days"], 14);
    for (name, what) in [("healthy", "false_rollback"), ("errors", "caught")] {
        let (s, r) = (rate(&synthetic, name, what), rate(&recorded, name, what));
        assert!(
            z(s, r).abs() < 4.0,
            "{name} {what}: synthetic {} and recorded {} differ (z = {:.1})",
            s.0,
            r.0,
            z(s, r)
        );
    }
    // The rates are not trivial: both tell something.
    let healthy = rate(&recorded, "healthy", "false_rollback").0;
    assert!(
        (0.05..0.95).contains(&healthy),
        "healthy false rollback {healthy}"
    );
    let caught = rate(&recorded, "errors", "caught").0;
    assert!((0.3..1.0).contains(&caught), "caught {caught}");
}

/// A recording whose failures come from 14:00 to 15:00 UTC each day, three days long.
/// Blocks are drawn within half an hour of their time of day: a release starting at 14:00
/// meets them in its canary phase (14:00 to 15:00) every time; one starting at 16:00 ends
/// (17:30) before the next 14:00 and never meets them.
#[test]
fn a_daily_cycle_in_the_recording_reaches_the_trials_at_its_time_of_day() {
    let dir = temp_dir("baseline-daily");
    let rec = recording(72, 5, |_| 20.0, |h| if h == 14 { 0.2 } else { 0.001 });
    let (plan_file, _, rec) = files(&dir, &rec);
    let run = |start: u32| {
        let sc = write(
            &dir,
            &format!("daily-{start}.yaml"),
            &format!(
                "trials: 100\ntraffic: {{ start_hour: {start} }}\nscenarios:\n  - name: healthy\n"
            ),
        );
        let r = json(&[
            &plan_file,
            "--scenarios",
            sc.to_str().unwrap(),
            "--baseline",
            &rec,
        ]);
        (
            rate(&r, "healthy", "false_rollback").0,
            r["scenarios"][0]["rollbacks_by_phase"].clone(),
        )
    };
    let (at_14, phases) = run(14);
    assert_eq!(at_14, 1.0, "the 14:00 failures are in the canary phase");
    assert_eq!(phases["canary"], 100, "{phases}");
    let (at_16, _) = run(16);
    assert_eq!(
        at_16, 0.0,
        "from 16:00 the release ends before the next 14:00"
    );
}

/// A metric the recording does not give and a recording off its grid are refused, each
/// naming what is wrong (a fault effect it cannot carry: [`gauge_faults_move_the_canarys_own_recorded_gauges`]).
#[test]
fn what_a_recording_cannot_give_is_refused() {
    let dir = temp_dir("baseline-refused");
    let (plan_file, _, _) = files(&dir, &recording(2, 1, |_| 20.0, |_| 0.01));
    let no_errors = write(
        &dir,
        "up-only.csv",
        "timestamp,series,labels,value\n0,up,,1\n15,up,,1\n30,up,,1\n",
    );
    let out = plan()
        .args(["simulate", &plan_file, "--baseline"])
        .arg(&no_errors)
        .expect(2);
    assert!(
        out.stderr
            .contains("no series of the recording gives `error_rate` (canary, read from `http_requests_total`)"),
        "{}",
        out.stderr
    );
    let off = write(
        &dir,
        "off.csv",
        "timestamp,series,labels,value\n0,up,,1\n15,up,,1\n30,up,,1\n40,up,,1\n",
    );
    let out = plan()
        .args(["simulate", &plan_file, "--baseline"])
        .arg(&off)
        .expect(1);
    assert!(
        out.stderr.contains("off the recording's 15 s grid"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("off.csv"), "{}", out.stderr);
    // Memory in use per instance and one limit without: both are there, but a division
    // pairs series by their labels, and none pair up.
    let memory_plan = write(
        &dir,
        "memory.yaml",
        &format!("{PLAN}gates: {{ memory_usage: \"< 90%\" }}\n"),
    );
    let unpaired = write(
        &dir,
        "unpaired.csv",
        &with_lines(&recording(2, 1, |_| 20.0, |_| 0.01), |_| {
            vec![
                "container_memory_working_set_bytes,instance=a,5e8".into(),
                "container_spec_memory_limit_bytes,,1e9".into(),
            ]
        }),
    );
    let out = plan()
        .args(["simulate", memory_plan.to_str().unwrap(), "--baseline"])
        .arg(&unpaired)
        .expect(2);
    assert!(
        out.stderr.contains(
            "`memory_usage` reads series the recording has, but its query pairs them by their labels and none pair up"
        ) && out.stderr.contains("export them with the same labels (they differ in `instance`)"),
        "{}",
        out.stderr
    );
}

/// `plan validate --baseline` reads scenario files as `plan simulate --baseline` does: a
/// file that states no request rate is valid on a recording of requests (and not without
/// one), and what the recording cannot give or carry is named as the simulation names
/// it: a metric no recorded series gives (at the plan, once), a fault effect (at its
/// line); without `--scenarios`, the scenarios the simulation would read (the built-in
/// ones here). A plan's own scenario file is read on the recording only when no
/// `--scenarios` file takes its place.
#[test]
fn validate_reads_scenario_files_for_a_recording_as_simulate_does() {
    let dir = temp_dir("baseline-validate");
    let no_rate = PLAN.replace("traffic: { requests_per_second: 20 }\n", "");
    let plan_file = write(&dir, "plan.yaml", &no_rate).display().to_string();
    let rec = write(&dir, "recording.csv", &recording(2, 1, |_| 20.0, |_| 0.01))
        .display()
        .to_string();
    let sc = write(
        &dir,
        "faults.yaml",
        "scenarios:\n  - name: healthy\n  - name: errors\n    fault: { kind: step, onset: 20m, error_rate: 3% }\n",
    )
    .display()
    .to_string();
    let out = plan()
        .args(["validate", &plan_file, "--scenarios", &sc])
        .expect(1);
    assert!(
        out.stderr
            .contains("faults.yaml:1:1: error[no-request-rate]"),
        "{}",
        out.stderr
    );
    plan()
        .args([
            "validate",
            &plan_file,
            "--scenarios",
            &sc,
            "--baseline",
            &rec,
        ])
        .expect(0);
    let up_only = write(
        &dir,
        "up-only.csv",
        "timestamp,series,labels,value\n0,up,,1\n15,up,,1\n30,up,,1\n",
    );
    let rated = write(&dir, "rated.yaml", PLAN).display().to_string();
    let out = plan()
        .args(["validate", &rated, "--scenarios", &sc, "--baseline"])
        .arg(&up_only)
        .expect(1);
    assert!(
        out.stderr.contains("rated.yaml:1:1: error[recording-series]")
            && out.stderr.contains(
                "no series of the recording gives `error_rate` (canary, read from `http_requests_total`)"
            ),
        "{}",
        out.stderr
    );
    // Without a scenario file, a plan that names none is checked on the built-in
    // scenarios, as `plan simulate PLAN --baseline` runs them; with two, a finding at
    // the plan is given once.
    let out = plan()
        .args(["validate", &rated, "--baseline"])
        .arg(&up_only)
        .expect(1);
    assert!(
        out.stderr
            .contains("rated.yaml:1:1: error[recording-series]"),
        "{}",
        out.stderr
    );
    let again = write(&dir, "again.yaml", "scenarios:\n  - name: healthy\n")
        .display()
        .to_string();
    let out = plan()
        .args(["validate", &rated, "--baseline"])
        .arg(&up_only)
        .args(["--scenarios", &sc, &again])
        .expect(1);
    assert_eq!(
        out.stderr.matches("error[recording-series]").count(),
        1,
        "{}",
        out.stderr
    );
    plan()
        .args([
            "validate",
            &rated,
            "--baseline",
            &rec,
            "--block",
            "10m",
            "--scenarios",
            &sc,
        ])
        .expect(0);
    let gauges = write(&dir, "gauges.yaml", GAUGE_PLAN).display().to_string();
    let gauge_rec = write(&dir, "gauges.csv", &gauge_recording(21))
        .display()
        .to_string();
    let refused = write(&dir, "refused.yaml", JOBS_MOVED);
    let out = plan()
        .args(["validate", &gauges, "--baseline", &gauge_rec, "--scenarios"])
        .arg(&refused)
        .expect(1);
    assert!(
        out.stderr.contains("refused.yaml:6:")
            && out
                .stderr
                .contains("error[unrecorded-effect]: scenario `jobs` moves `jobs_per_second`"),
        "{}",
        out.stderr
    );
    // A plan's own file, with an effect a recording cannot carry: an error when it is
    // what the simulation would read, not when `--scenarios` takes its place.
    write(
        &dir,
        "named.yaml",
        "baseline:\n  metrics:\n    queue_depth: { mean: 10, noise: 2 }\n    jobs_per_second: { mean: 2, noise: 0.1 }\n\
         scenarios:\n  - name: jobs\n    fault: { kind: step, onset: 10m, metrics: { jobs_per_second: 1 } }\n",
    );
    let naming = write(
        &dir,
        "naming.yaml",
        &format!("{GAUGE_PLAN}simulation: {{ scenarios: named.yaml }}\n"),
    )
    .display()
    .to_string();
    plan().args(["validate", &naming]).expect(0);
    let out = plan()
        .args(["validate", &naming, "--baseline", &gauge_rec])
        .expect(1);
    assert!(
        out.stderr.contains("named.yaml:7:")
            && out
                .stderr
                .contains("error[unrecorded-effect]: scenario `jobs` moves `jobs_per_second`"),
        "{}",
        out.stderr
    );
    let fine = write(&dir, "fine.yaml", "scenarios:\n  - name: healthy\n");
    plan()
        .args(["validate", &naming, "--baseline", &gauge_rec, "--scenarios"])
        .arg(&fine)
        .expect(0);
    // Read for synthetic trials, the same file lacks the models the recording gives.
    let out = plan()
        .args(["validate", &gauges, "--scenarios"])
        .arg(&refused)
        .expect(1);
    assert!(
        out.stderr.contains("error[unmodelled-metric]")
            && !out.stderr.contains("unrecorded-effect"),
        "{}",
        out.stderr
    );
}

/// A recorded counter modelled with a `split` is a set of label sets the canary's client
/// library creates at their first increment (`exposition.split_from: first_event`, the
/// default): a rule that rolls back as soon as the canary's `type="bug"` series exists
/// fires at the first evaluation when the series is there from the release's start, and
/// only once a bug report has reached the canary when it is created by it. The recording
/// has one bug report an hour (and 20 req/s, a feedback of another type every scrape);
/// the canary gets each with its phase's share (20% for an hour, then all of them for 30
/// minutes), so in some trials none reaches it.
#[test]
fn a_recorded_split_value_is_created_on_the_canary_by_its_first_event() {
    let dir = temp_dir("baseline-split-births");
    let plan_file = write(
        &dir,
        "plan.yaml",
        &PLAN.replace(
            "rollback_conditions:\n  - { metric: error_rate, threshold: 2%, duration: 1m }\n",
            "metrics:\n  bugs_seen:\n    query: count(feedback_total{service=\"$service\",track=\"$track\",type=\"bug\"})\n    \
             unit: count\n    bad: high\nrollback_conditions:\n  - { metric: bugs_seen, threshold: 0.5, duration: 0s }\n",
        ),
    )
    .display()
    .to_string();
    let (mut bugs, mut other) = (0, 0);
    let rec = with_lines(&recording(48, 3, |_| 20.0, |_| 0.0), |scrape| {
        bugs += u64::from(scrape > 0 && scrape % 240 == 120);
        other += u64::from(scrape > 0);
        vec![
            format!("feedback_total,type=bug,{bugs}"),
            format!("feedback_total,type=other,{other}"),
        ]
    });
    let rec = write(&dir, "recording.csv", &rec).display().to_string();
    let scenarios = |from: &str| {
        write(
            &dir,
            &format!("{from}.yaml"),
            &format!(
                "trials: 200\nexposition: {{ split_from: {from} }}\nbaseline:\n  series:\n    \
                 feedback_total: {{ counter: {{ per_request: 0.3% }}, split: {{ type: {{ bug: 1%, other: 99% }} }} }}\n\
                 scenarios:\n  - name: healthy\n"
            ),
        )
        .display()
        .to_string()
    };
    let run = |from: &str| {
        json(&[
            &plan_file,
            "--scenarios",
            &scenarios(from),
            "--baseline",
            &rec,
        ])
    };
    let from_start = run("release_start");
    assert_eq!(
        from_start["assumptions"]["exposition"]["split_from"],
        "release_start"
    );
    assert_eq!(rate(&from_start, "healthy", "false_rollback").0, 1.0);
    let born = run("first_event");
    assert_eq!(
        born["assumptions"]["exposition"]["split_from"],
        "first_event"
    );
    let (p, _) = rate(&born, "healthy", "false_rollback");
    eprintln!("created by the first bug report: rolled back in {p} of the trials");
    assert!(0.2 < p && p < 0.9, "{}", scenario(&born, "healthy"));
}

/// A fault's `split` on a recording moves the canary's events between the values: the
/// recording's feedback is 8% bug reports (20 a second), a rule rolls back on a bug share
/// over 20% for a minute, and a fault giving bug reports half the feedback from 10m is
/// caught at the second evaluation after the onset (the first reads a window half moved,
/// about 29%, and the rule's minute runs from there): 120 s. The healthy 8% is some ten
/// standard deviations under 20% over a 2-minute window at 20% (480 events), and never
/// rolls back.
#[test]
fn a_recorded_split_moves_between_its_values() {
    let dir = temp_dir("baseline-split-moved");
    let plan_file = write(
        &dir,
        "plan.yaml",
        &PLAN.replace(
            "rollback_conditions:\n  - { metric: error_rate, threshold: 2%, duration: 1m }\n",
            "metrics:\n  bug_share:\n    query: >-\n      sum(rate(feedback_total{service=\"$service\",track=\"$track\",type=\"bug\"}[$window]))\n      \
             / sum(rate(feedback_total{service=\"$service\",track=\"$track\"}[$window]))\n    \
             unit: ratio\n    bad: high\nrollback_conditions:\n  - { metric: bug_share, threshold: 20%, duration: 1m }\n",
        ),
    )
    .display()
    .to_string();
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(41);
    let (mut bugs, mut other) = (0u64, 0u64);
    let rec = with_lines(&recording(48, 4, |_| 20.0, |_| 0.0), |scrape| {
        if scrape > 0 {
            let n = Poisson::new(300.0).unwrap().sample(&mut rng) as u64;
            let b = Binomial::new(n, 0.08).unwrap().sample(&mut rng);
            bugs += b;
            other += n - b;
        }
        vec![
            format!("feedback_total,type=bug,{bugs}"),
            format!("feedback_total,type=other,{other}"),
        ]
    });
    let rec = write(&dir, "recording.csv", &rec).display().to_string();
    let sc = write(
        &dir,
        "scenarios.yaml",
        "trials: 200\nbaseline:\n  series:\n    feedback_total: { counter: { per_request: 1 }, split: { type: { bug: 8%, other: 92% } } }\n\
         scenarios:\n  - name: healthy\n  - name: bugs\n    \
         fault: { kind: step, onset: 10m, series: { feedback_total: { split: { type: { bug: 50%, other: 50% } } } } }\n",
    )
    .display()
    .to_string();
    let r = json(&[&plan_file, "--scenarios", &sc, "--baseline", &rec]);
    assert_eq!(rate(&r, "healthy", "false_rollback").0, 0.0, "{r:#}");
    let s = scenario(&r, "bugs");
    assert_eq!(rate(&r, "bugs", "caught").0, 1.0, "{s}");
    assert_eq!(s["time_to_catch_seconds"]["median"], 120.0, "{s}");
}

/// The same seed gives the same bytes at any thread count.
#[test]
fn a_recorded_run_does_not_depend_on_the_thread_count() {
    let dir = temp_dir("baseline-jobs");
    let (plan_file, sc, rec) = files(&dir, &recording(6, 3, |_| 20.0, |_| 0.01));
    let run = |jobs: &str| {
        plan()
            .args([
                "simulate",
                &plan_file,
                "--scenarios",
                &sc,
                "--baseline",
                &rec,
            ])
            .args(["--trials", "50", "--format", "json", "--jobs", jobs])
            .expect(0)
            .stdout
    };
    assert_eq!(run("1"), run("3"));
    // The HTML report says where the trials' traffic came from.
    let page = dir.join("report.html");
    plan()
        .args([
            "simulate",
            &plan_file,
            "--scenarios",
            &sc,
            "--baseline",
            &rec,
        ])
        .args(["--trials", "5", "--report"])
        .arg(&page)
        .expect(0);
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(html.contains("built from the recording"), "{html}");
    // And how the recorded series are read, as the text report states it.
    assert!(
        html.contains("the recording&#39;s own series, the canary&#39;s failure series"),
        "{html}"
    );
}

/// Series of the recording that no query reads are left out of the trials, and do not
/// change the draws of those that are read: each channel thins with its own stream.
#[test]
fn series_no_query_reads_do_not_change_the_answers() {
    let dir = temp_dir("baseline-unread");
    let base = recording(6, 3, |_| 20.0, |_| 0.01);
    // The same recording, with a counter and a gauge nothing reads between its series.
    let more = with_lines(&base, |i| {
        vec![
            format!("jobs_total,,{}", 7 * i),
            format!("open_files,,{}", 40 + i % 3),
        ]
    });
    let (plan_file, sc, rec) = files(&dir, &base);
    let rec_more = write(&dir, "more.csv", &more).display().to_string();
    let run = |rec: &str| {
        json(&[
            &plan_file,
            "--scenarios",
            &sc,
            "--baseline",
            rec,
            "--trials",
            "80",
        ])
    };
    let (a, b) = (run(&rec), run(&rec_more));
    assert_eq!(a["scenarios"], b["scenarios"]);
    let unread = &b["assumptions"]["recording"]["series_unread"];
    assert!(unread.to_string().contains("jobs_total"), "{unread}");
    assert!(unread.to_string().contains("open_files"), "{unread}");
    // The errors scenario is caught in some trials and not others: the comparison is not
    // between two constant answers.
    let caught = rate(&a, "errors", "caught").0;
    assert!(caught > 0.0 && caught < 1.0, "{caught}");
}

/// Recordings as exports give them: pieces of one series over time in several files are
/// joined (the same numbers as one file); a series' own gap is named with how much of it
/// is there; a series at another step and a block that does not fit are refused.
#[test]
fn recordings_in_pieces_with_gaps_or_at_two_steps_are_joined_flagged_or_refused() {
    let dir = temp_dir("baseline-pieces");
    let whole = recording(12, 9, |_| 20.0, |_| 0.01);
    let (plan_file, sc, rec) = files(&dir, &whole);
    let cut = 1_714_521_600 + 6 * 3600;
    let time = |l: &str| l.split(',').next().unwrap().parse::<u64>().unwrap();
    let (mut first, mut second) = (
        String::from("timestamp,series,labels,value\n"),
        String::new(),
    );
    let (mut gap, mut two_steps) = (first.clone(), first.clone());
    for l in whole.lines().skip(1) {
        let t = time(l);
        let piece = if t < cut { &mut first } else { &mut second };
        piece.push_str(l);
        piece.push('\n');
        // `up` alone missing for 10 minutes: the service's scrape, not the recorder.
        if !((cut..cut + 600).contains(&t) && l.contains(",up,")) {
            gap.push_str(l);
            gap.push('\n');
        }
        if !(l.contains("code=500") && t % 30 != 0) {
            two_steps.push_str(l);
            two_steps.push('\n');
        }
    }
    let run = |recs: &[&str], extra: &[&str], code: i32| {
        let mut r = plan().args(["simulate", &plan_file, "--scenarios", &sc, "--trials", "40"]);
        for f in recs {
            r = r.args(["--baseline", f]);
        }
        r.args(extra).args(["--format", "json"]).expect(code)
    };
    let a = write(&dir, "first.csv", &first);
    let b = write(&dir, "second.csv", &second);
    let joined = run(&[a.to_str().unwrap(), b.to_str().unwrap()], &[], 0).stdout;
    let one = run(&[&rec], &[], 0).stdout;
    let numbers = |j: &str| {
        let mut v: serde_json::Value = serde_json::from_str(j).unwrap();
        v["assumptions"]["recording"]["files"] = serde_json::Value::Null;
        v
    };
    assert_eq!(numbers(&joined), numbers(&one));
    let g = write(&dir, "gap.csv", &gap);
    let out = run(&[g.to_str().unwrap()], &[], 0);
    assert!(out.stderr.contains("miss grid points"), "{}", out.stderr);
    assert!(out.stderr.contains("up 98.6%"), "{}", out.stderr);
    assert!(
        !out.stderr
            .contains("no series of the recording has a new sample")
    );
    let t = write(&dir, "two-steps.csv", &two_steps);
    let out = run(&[t.to_str().unwrap()], &[], 2);
    assert!(
        out.stderr
            .contains("http_requests_total{code=\"500\"} (from ")
            && out
                .stderr
                .contains("two-steps.csv:3:12) is sampled every 30s, the recording every 15s"),
        "{}",
        out.stderr
    );
    let out = run(&[&rec], &["--block", "1s"], 2);
    assert!(
        out.stderr.contains("a block of 1s does not fit"),
        "{}",
        out.stderr
    );
}

/// `recording` without the scrapes of `hours` of day within `[from, to)` seconds after
/// midnight on each of `days` (days from its start): the recorder down, no series there.
fn without(recording: &str, days: &[u64], (from, to): (u64, u64)) -> String {
    let start = 1_714_521_600u64;
    let mut out = String::new();
    for (i, l) in recording.lines().enumerate() {
        if i > 0 {
            let t = l.split(',').next().unwrap().parse::<u64>().unwrap() - start;
            if days.contains(&(t / 86_400)) && (from..to).contains(&(t % 86_400)) {
                continue;
            }
        }
        out.push_str(l);
        out.push('\n');
    }
    out
}

/// `recording` with the scrapes of `[from, to)` seconds after midnight on each of `days`
/// repeating each series' last sample before them: what a range query's export shows for
/// up to 5 minutes after the recorder's last scrape.
fn frozen(recording: &str, days: &[u64], (from, to): (u64, u64)) -> String {
    let start = 1_714_521_600u64;
    let mut last: std::collections::HashMap<String, String> = Default::default();
    let mut out = String::new();
    for (i, l) in recording.lines().enumerate() {
        let mut line = l.to_string();
        if i > 0 {
            let t = l.split(',').next().unwrap().parse::<u64>().unwrap() - start;
            let (key, value) = l.split_once(',').unwrap().1.rsplit_once(',').unwrap();
            if days.contains(&(t / 86_400)) && (from..to).contains(&(t % 86_400)) {
                line = format!("{},{key},{}", t + start, last[key]);
            } else {
                last.insert(key.to_string(), value.to_string());
            }
        }
        out.push_str(&line);
        out.push('\n');
    }
    out
}

/// A gap in every series at once (the recorder down for 20 minutes, at 13:20 on four days
/// of seven, while the releases start at 13:00) is no scrape of the service: replayed,
/// the canary would go silent and its counters jump by 20 minutes of requests. Blocks
/// holding one are left out, so the healthy false rollbacks are those of the recording
/// without the gaps, within chance (they were 69% against 24% when the gaps were
/// replayed), and the report says what was left out, naming the gaps' times.
#[test]
fn a_gap_in_every_series_is_left_out_of_the_blocks_and_named() {
    let dir = temp_dir("baseline-recorder-gap");
    let whole = recording(7 * 24, 21, |_| 20.0, |_| 0.01);
    let gappy = without(&whole, &[1, 2, 4, 5], (13 * 3600 + 1200, 13 * 3600 + 2400));
    let (plan_file, _, rec) = files(&dir, &whole);
    let sc = write(
        &dir,
        "healthy.yaml",
        "trials: 300\ntraffic: { start_hour: 13 }\nscenarios:\n  - name: healthy\n",
    );
    let sc = sc.to_str().unwrap();
    let g = write(&dir, "gappy.csv", &gappy);
    let g = g.to_str().unwrap();
    let without_gaps = json(&[&plan_file, "--scenarios", sc, "--baseline", &rec]);
    let with_gaps = json(&[&plan_file, "--scenarios", sc, "--baseline", g]);
    let (a, b) = (
        rate(&without_gaps, "healthy", "false_rollback"),
        rate(&with_gaps, "healthy", "false_rollback"),
    );
    assert!(
        z(b, a) < 3.0,
        "with the gaps {} against {} without (z = {:.1})",
        b.0,
        a.0,
        z(b, a)
    );
    assert!(
        without_gaps["assumptions"]["recording"]["warnings"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    let warnings = &with_gaps["assumptions"]["recording"]["warnings"];
    assert_eq!(warnings.as_array().unwrap().len(), 2, "{warnings}");
    // The release's first block, at 13:00 (within 30m), replays 13:20 to 13:40 on the four
    // days with a gap: it is drawn from the other three.
    assert_eq!(
        warnings[1],
        "blocks can start at only 723 grid points of the recording (3h45s of it, within 30m of \
         their time of day on 3 days, gaps left out): the trials replay much the same \
         stretches, whose own chance moves them all alike, so the intervals understate the \
         uncertainty; record more days (a week or more)"
    );
    // Four gaps of 80 scrapes each leave out 80 + 240 starts of 1h blocks each.
    assert_eq!(
        warnings[0],
        "no series of the recording has a new sample from 2024-05-02T13:20:00Z to 2024-05-02T13:39:45Z (20m), \
         from 2024-05-03T13:20:00Z to 2024-05-03T13:39:45Z (20m), from 2024-05-05T13:20:00Z to \
         2024-05-05T13:39:45Z (20m) and in 1 more gap, 1h20m in all: the recorder was down, not the \
         service (replayed, the canary would go silent), so blocks of 1h that would replay them are \
         left out: 5h20m of the recording's 6d23h of block starts (3.2%)"
    );
    // In the text report, and on stderr.
    let out = plan()
        .args(["simulate", &plan_file, "--scenarios", sc, "--baseline", g])
        .args(["--trials", "20"])
        .expect(0);
    assert!(
        out.stdout.contains(
            "  warning        no series of the recording has a new sample from 2024-05-02T13:20:00Z"
        ),
        "{}",
        out.stdout
    );
    assert!(
        out.stderr.contains(
            "note: no series of the recording has a new sample from 2024-05-02T13:20:00Z"
        ),
        "{}",
        out.stderr
    );
    // Exported by range queries, each gap shows first as 5 minutes of the last samples
    // repeated: left out with it (5 more minutes of starts each), and named.
    let first_warning = |name: &str, csv: &str| {
        let file = write(&dir, name, csv);
        let r = json(&[
            &plan_file,
            "--scenarios",
            sc,
            "--baseline",
            file.to_str().unwrap(),
        ]);
        r["assumptions"]["recording"]["warnings"][0].clone()
    };
    let exported = frozen(&gappy, &[1, 2, 4, 5], (13 * 3600 + 900, 13 * 3600 + 1200));
    let warning = first_warning("exported.csv", &exported);
    let text = warning.as_str().unwrap();
    assert!(
        text.starts_with(
            "no series of the recording has a new sample from 2024-05-02T13:20:00Z to 2024-05-02T13:39:45Z (20m), \
             after 5m in which every series repeats its last sample"
        ) && text.contains("1h20m in all")
            && text.ends_with("left out: 5h40m of the recording's 6d23h of block starts (3.4%)"),
        "{warning}"
    );
    // The recorder stopped 3 minutes before the export's end: its last samples repeated.
    let stopped = frozen(&whole, &[6], (86_400 - 180, 86_400));
    let warning = first_warning("stopped.csv", &stopped);
    assert!(
        warning.as_str().unwrap().starts_with(
            "no series of the recording has a new sample from 2024-05-07T23:57:00Z to the end (3m), \
             where every series repeats its last sample (the recorder stopped before the export did)"
        ),
        "{warning}"
    );
    // Gaps that leave under a block to start from are refused, naming the file.
    let short = recording(12, 4, |_| 20.0, |_| 0.01);
    let cut = write(
        &dir,
        "cut.csv",
        &without(&short, &[0], (6 * 3600, 6 * 3600 + 600)),
    );
    let out = plan()
        .args(["simulate", &plan_file, "--scenarios", sc, "--baseline"])
        .arg(cut.to_str().unwrap())
        .args(["--block", "6h"])
        .expect(2);
    assert!(
        out.stderr.contains("cut.csv: no series of the recording has a new sample from 2024-05-01T06:00:00Z to 2024-05-01T06:09:45Z (10m): blocks of 6h that replay none of them can start in only 0s of the recording, under a block's length"),
        "{}",
        out.stderr
    );
}

/// A counter missing alone for a while (the `code="500"` series absent from 12:00 to
/// 13:30:30 on the first of two days) has its next increase span the gap. A trial replays
/// it only where its block replays the gap too: after points from elsewhere it would be a
/// burst of 90 minutes of failures in one scrape, which the service never had. With a
/// block of one scrape, every point is replayed after points from elsewhere (at its time
/// of day: this one in the third scrape of an evaluation interval, so that the burst is
/// in two evaluations' windows with a sample before it, as the rule's `for: 1m` needs), and
/// the recording must give the same trials as one whose failures in the gap never happened
/// (its later values less them): healthy false rollbacks were 51.3% against 22.0% when the
/// bursts were replayed.
#[test]
fn a_gap_in_one_series_is_no_burst_of_its_events() {
    let dir = temp_dir("baseline-series-gap");
    let whole = recording(48, 23, |_| 20.0, |_| 0.01);
    let start = 1_714_521_600u64;
    let in_gap = |l: &str| {
        let t = l.split(',').next().unwrap().parse::<u64>().unwrap() - start;
        l.contains("code=500") && (12 * 3600..13 * 3600 + 1830).contains(&t)
    };
    // `quiet`: the gap's failures taken out of the counter, from the gap on.
    let (mut missing, mut quiet) = (String::new(), String::new());
    let (mut before, mut taken) = (0u64, 0u64);
    for (i, l) in whole.lines().enumerate() {
        if i == 0 || !l.contains("code=500") {
            writeln!(missing, "{l}").unwrap();
            writeln!(quiet, "{l}").unwrap();
            continue;
        }
        let (key, v) = l.rsplit_once(',').unwrap();
        let v: u64 = v.parse().unwrap();
        if in_gap(l) {
            taken += v - before;
        } else {
            writeln!(missing, "{l}").unwrap();
            writeln!(quiet, "{key},{}", v - taken).unwrap();
        }
        before = v;
    }
    let (plan_file, _, _) = files(&dir, &whole);
    let sc = write(
        &dir,
        "healthy.yaml",
        "trials: 300\ntraffic: { start_hour: 13 }\nscenarios:\n  - name: healthy\n",
    );
    let sc = sc.to_str().unwrap();
    let run = |name: &str, rec: &str| {
        let f = write(&dir, name, rec);
        let args = [
            &plan_file,
            "--scenarios",
            sc,
            "--baseline",
            f.to_str().unwrap(),
        ];
        let report = json(&[&args[..], &["--block", "15s"]].concat());
        rate(&report, "healthy", "false_rollback")
    };
    let (a, b) = (run("quiet.csv", &quiet), run("missing.csv", &missing));
    assert_eq!(b, a, "with the gap's failures {b:?}, without them {a:?}");
}

/// `PLAN` with 4 replicas, its canary phase split in two: `quarter` (25%, one canary
/// instance) and `most` (75%, three). `before_rules` goes before its rollback conditions,
/// and `rule` replaces its one rule.
fn four_replicas(before_rules: &str, rule: &str) -> String {
    PLAN.replace("port: 8080 }", "port: 8080, replicas: 4 }")
        .replace(
            "  - { name: canary, traffic: 20%, duration: 1h }\n",
            "  - { name: quarter, traffic: 25%, duration: 1h }\n  - { name: most, traffic: 75%, duration: 1h }\n",
        )
        .replace("rollback_conditions:", &format!("{before_rules}\nrollback_conditions:"))
        .replace("{ metric: error_rate, threshold: 2%, duration: 1m }", rule)
}

/// A rule that never fires.
const NEVER: &str = "{ metric: error_rate, threshold: 99%, duration: 1m }";

/// The report of `trials` healthy trials of `plan` on recording `rec`, each track's
/// instances as `exposition.instances: instances` says.
fn healthy_on(
    dir: &Path,
    (plan, rec): (&str, &str),
    trials: u64,
    instances: &str,
) -> serde_json::Value {
    let sc = write(
        dir,
        "scenarios.yaml",
        &format!(
            "trials: {trials}\nexposition: {{ instances: {instances} }}\nscenarios:\n  - name: healthy\n"
        ),
    );
    json(&[plan, "--scenarios", sc.to_str().unwrap(), "--baseline", rec])
}

/// The canary runs its phases' instances on a recording, each a recorded instance's own
/// series: with 4 replicas, one at 25% and three at 75% (as the rendered compose files
/// start them). The recording has two instances, `a` holding 30 DB connections and `b`
/// 50, so the canary's sum is `a`'s 30 at 25% (passing a gate `db_connections < 60`, where
/// the two recorded instances' 80 would fail it) and `a`, `b` and a copy of `a` at 75%:
/// 110, failing it in every healthy trial. Under `exposition.instances: one` the canary
/// runs `a` alone and every trial completes. Either way the report says the stable
/// version's instances are the recording's two, not the plan's four (or one).
#[test]
fn a_recorded_canary_runs_its_phases_instances() {
    let dir = temp_dir("baseline-instances");
    let rec = with_lines(&recording(12, 3, |_| 20.0, |_| 0.01), |_| {
        vec![
            "db_connections_in_use,instance=a:9000,30".into(),
            "db_connections_in_use,instance=b:9000,50".into(),
        ]
    });
    let rec = write(&dir, "recording.csv", &rec).display().to_string();
    let plan_file = write(
        &dir,
        "plan.yaml",
        &four_replicas("gates: { db_connections: \"< 60\" }", NEVER),
    )
    .display()
    .to_string();
    let trials = 40;
    let run = |instances: &str| healthy_on(&dir, (&plan_file, &rec), trials, instances);
    let stable_note = |r: &serde_json::Value| -> Vec<String> {
        (r["assumptions"]["recording"]["warnings"]
            .as_array()
            .unwrap()
            .iter())
        .filter_map(|w| w.as_str())
        .filter(|w| w.contains("instances"))
        .map(String::from)
        .collect()
    };
    let r = run("replicas");
    assert_eq!(
        r["assumptions"]["exposition"]["instances"],
        serde_json::json!({ "model": "replicas", "stable": 2, "canary": [1, 3, 4] })
    );
    // At 25% the canary's one instance has its connections (30), whatever other series
    // the recording has without an `instance` (its `up`): a rule on more than 25 rolls
    // back there, where a missing series would pass.
    let over_25 = write(
        &dir,
        "over-25.yaml",
        &four_replicas(
            "",
            "{ metric: db_connections, threshold: 25, duration: 1m }",
        ),
    );
    let o = healthy_on(&dir, (over_25.to_str().unwrap(), &rec), 10, "replicas");
    assert_eq!(
        o["scenarios"][0]["rollbacks_by_phase"],
        serde_json::json!({ "quarter": 10 }),
        "{:#}",
        o["scenarios"][0]
    );
    let gates = &r["scenarios"][0]["gate_failures"];
    assert!(gates.get("quarter").is_none(), "{gates:#}");
    assert_eq!(
        gates["most"]["failing"]["db_connections"], trials,
        "{gates:#}"
    );
    assert_eq!(r["scenarios"][0]["completed"]["count"], 0, "{r:#}");
    let w = stable_note(&r);
    assert!(
        w.len() == 1
            && w[0].contains("`db_connections_in_use`: 2 (`a:9000`, `b:9000`)")
            && w[0].contains("while it runs `service.replicas` 4"),
        "{w:?}"
    );
    let one = run("one");
    assert_eq!(
        one["assumptions"]["exposition"]["instances"]["canary"],
        serde_json::json!([1, 1, 1])
    );
    assert_eq!(one["scenarios"][0]["completed"]["count"], trials, "{one:#}");
    let w = stable_note(&one);
    assert!(
        w.len() == 1 && w[0].contains("`exposition.instances: one` takes each track to run one"),
        "{w:?}"
    );
    // A plan that overrides the built-in's query (here with its own) still reads each
    // instance's connections through it: the same gate failures.
    let own_query = four_replicas(
        "metrics:\n  db_connections: { query: 'sum(db_connections_in_use{service=\"$service\",track=\"$track\"})' }\ngates: { db_connections: \"< 60\" }",
        NEVER,
    );
    let own_query = write(&dir, "own-query.yaml", &own_query);
    let r = healthy_on(
        &dir,
        (own_query.to_str().unwrap(), &rec),
        trials,
        "replicas",
    );
    let gates = &r["scenarios"][0]["gate_failures"];
    assert!(gates.get("quarter").is_none(), "{gates:#}");
    assert_eq!(
        gates["most"]["failing"]["db_connections"], trials,
        "{gates:#}"
    );
}

/// A container's memory in use and its limit are one instance's, whichever of them the
/// recording has for more containers: three containers in use, two with a limit (the third
/// has none, as cAdvisor reports an unlimited one). Counting the containers whose use and
/// limit pair (the memory metric's query overridden), the canary's 4 instances at 100% of
/// 4 replicas are the three recorded containers and a copy of the first, 3 with a limit,
/// so a rule on more than 2.5 rolls back there in every trial (a copy whose use and limit
/// copied different containers paired with nothing: 2).
#[test]
fn a_containers_memory_in_use_and_limit_stay_one_instance() {
    let dir = temp_dir("baseline-instances-limit");
    let rec = with_lines(&recording(12, 7, |_| 20.0, |_| 0.01), |_| {
        let mut lines = Vec::new();
        for (name, limit) in [("app-1", true), ("app-2", true), ("app-3", false)] {
            let labels = format!("{{instance=\"cadvisor:8080\", name=\"{name}\"}}");
            lines.push(format!("container_memory_working_set_bytes,{labels},5e8"));
            if limit {
                lines.push(format!("container_spec_memory_limit_bytes,{labels},1e9"));
            }
        }
        lines
    });
    let rec = write(&dir, "recording.csv", &rec).display().to_string();
    let plan = four_replicas(
        "metrics:\n  memory_usage: { query: 'count(container_memory_working_set_bytes{service=\"$service\",track=\"$track\"} / container_spec_memory_limit_bytes{service=\"$service\",track=\"$track\"})', unit: count, bad: high }",
        "{ metric: memory_usage, threshold: 2.5, duration: 1m }",
    );
    let plan = write(&dir, "plan.yaml", &plan);
    let r = healthy_on(&dir, (plan.to_str().unwrap(), &rec), 10, "replicas");
    let s = &r["scenarios"][0];
    assert_eq!(
        s["rollbacks_by_phase"],
        serde_json::json!({ "full": 10 }),
        "{s:#}"
    );
}

/// cAdvisor exports every container's memory from one target, its containers told apart by
/// `name` (Docker) or `pod` (Kubernetes), not by `instance`: a recording of two containers
/// at 50% and 70% of their limit has two instances, and a canary at 50% of 2 replicas runs
/// one of them, whose memory (50%) passes a gate `memory_usage < 60%` in every trial. A
/// custom metric reading one recorded gauge directly moves on every canary instance, the
/// copies included: the least DB connections over the canary's two instances at 100%,
/// moved to 100 from the recorded 30 at 70 minutes, is caught.
#[test]
fn cadvisor_containers_are_instances_and_custom_gauges_move_on_each() {
    let dir = temp_dir("baseline-instances-cadvisor");
    let rec = with_lines(&recording(12, 7, |_| 20.0, |_| 0.01), |_| {
        let mut lines = vec!["db_connections_in_use,,30".to_string()];
        for (name, used) in [("app-1", 5e8), ("app-2", 7e8)] {
            let labels = format!("{{instance=\"cadvisor:8080\", name=\"{name}\"}}");
            lines.push(format!(
                "container_memory_working_set_bytes,{labels},{used}"
            ));
            lines.push(format!(
                "container_spec_memory_limit_bytes,{labels},1000000000"
            ));
        }
        lines
    });
    let rec = write(&dir, "recording.csv", &rec).display().to_string();
    let plan_file = write(
        &dir,
        "plan.yaml",
        &PLAN
            .replace("port: 8080 }", "port: 8080, replicas: 2 }")
            .replace("traffic: 20%", "traffic: 50%")
            .replace(
                "rollback_conditions:",
                "metrics:\n  fewest:\n    description: Fewest connections of an instance\n    query: min(db_connections_in_use{service=\"$service\",track=\"$track\"})\n    unit: count\n    bad: high\ngates: { memory_usage: \"< 60%\" }\nrollback_conditions:\n  - { metric: fewest, threshold: 80, duration: 1m }",
            )
            .replace("threshold: 2%", "threshold: 99%"),
    )
    .display()
    .to_string();
    let sc = write(
        &dir,
        "scenarios.yaml",
        "trials: 20\nscenarios:\n  - name: healthy\n  - name: pool\n    fault: { kind: step, onset: 70m, metrics: { fewest: 100 } }\n",
    );
    let r = json(&[
        &plan_file,
        "--scenarios",
        sc.to_str().unwrap(),
        "--baseline",
        &rec,
    ]);
    assert_eq!(
        r["assumptions"]["recording"]["instances"], 2,
        "{:#}",
        r["assumptions"]
    );
    let healthy = scenario(&r, "healthy");
    assert!(
        healthy["gate_failures"].get("canary").is_none(),
        "{healthy:#}"
    );
    assert_eq!(healthy["completed"]["count"], 20, "{healthy:#}");
    assert_eq!(
        rate(&r, "pool", "caught").0,
        1.0,
        "{:#}",
        scenario(&r, "pool")
    );
    // A copy is a container of its own, under its own `name` as well as its own
    // `instance`: counted by name (the memory metric's query overridden), the canary's
    // containers are 1 at 25% and 3 at 75% of 4 replicas, failing a gate `< 3` there.
    let by_name = four_replicas(
        "metrics:\n  memory_usage: { query: 'count(sum by (name) (container_memory_working_set_bytes{service=\"$service\",track=\"$track\"}))', unit: count, bad: high }\ngates: { memory_usage: \"< 3\" }",
        NEVER,
    );
    let by_name = write(&dir, "by-name.yaml", &by_name);
    let r = healthy_on(&dir, (by_name.to_str().unwrap(), &rec), 10, "replicas");
    let s = &r["scenarios"][0];
    assert_eq!(
        s["rollbacks_by_phase"],
        serde_json::json!({ "most": 10 }),
        "{s:#}"
    );
    // Under that query nothing recorded is the memory a fault's `memory_usage` would move:
    // refused at its line, not run as a fault that does nothing.
    let out = refused(
        &dir,
        (by_name.to_str().unwrap(), &rec),
        (
            "moved.yaml",
            "scenarios:\n  - name: leak\n    fault: { kind: step, onset: 10m, memory_usage: 90% }\n",
        ),
    );
    assert!(
        out.stderr.contains("moved.yaml:3:")
            && out
                .stderr
                .contains("sets `memory_usage`, but no recorded series of it can be moved"),
        "{}",
        out.stderr
    );
}

/// Instances that come and go (a pod rescheduled halfway through the recording, under a new
/// `instance`) leave each recorded instance's series with gaps, which a canary instance
/// replaying one of them inherits: the report says so and what to record instead.
#[test]
fn recorded_instances_that_come_and_go_are_named() {
    let dir = temp_dir("baseline-instances-churn");
    let rec = with_lines(&recording(12, 3, |_| 20.0, |_| 0.01), |j| {
        let pod = if j < 1440 { "a:9000" } else { "c:9000" };
        vec![format!("db_connections_in_use,instance={pod},30")]
    });
    let rec = write(&dir, "recording.csv", &rec).display().to_string();
    let plan_file = write(
        &dir,
        "plan.yaml",
        &PLAN.replace(
            "rollback_conditions:",
            "gates: { db_connections: \"< 60\" }\nrollback_conditions:",
        ),
    )
    .display()
    .to_string();
    let r = healthy_on(&dir, (&plan_file, &rec), 5, "replicas");
    let warnings = r["assumptions"]["recording"]["warnings"].to_string();
    assert!(
        warnings.contains("db_connections_in_use{instance=\\\"a:9000\\\"} 50.0%")
            && warnings.contains("a canary instance replays one recorded instance"),
        "{warnings}"
    );
}

/// What each instance exports on a recording is its own, and the rendered `avg` and `max`
/// read as many canary instances as the phase runs: recorded instance `a` busy 0.3 of a
/// second per second at half its memory limit, `b` 0.5 at 70%. With 4 replicas the canary
/// runs `a` at 25% (CPU 0.3, passing a rule `cpu_usage > 0.35`) and `a`, `b` and a copy
/// of `a` at 75%, joining at its start: CPU 0.367 once their counters have two samples in
/// the window, so every healthy trial rolls back in that phase, by that rule (memory's max,
/// 70%, would fail the gate `memory_usage < 60%` at the phase's end). Under `instances:
/// one` the canary runs `a` alone and every trial completes.
#[test]
fn recorded_canary_instances_average_and_max_as_the_phase_runs_them() {
    let dir = temp_dir("baseline-instances-cpu");
    let rec = with_lines(&recording(12, 5, |_| 20.0, |_| 0.01), |j| {
        [("a:9000", 0.3, 5e8), ("b:9000", 0.5, 7e8)]
            .iter()
            .flat_map(|&(i, busy, used)| {
                [
                    format!(
                        "process_cpu_seconds_total,instance={i},{}",
                        busy * 15.0 * j as f64
                    ),
                    format!("container_memory_working_set_bytes,instance={i},{used}"),
                    format!("container_spec_memory_limit_bytes,instance={i},1000000000"),
                ]
            })
            .collect()
    });
    let rec = write(&dir, "recording.csv", &rec).display().to_string();
    let plan_file = write(
        &dir,
        "plan.yaml",
        &four_replicas(
            "gates: { memory_usage: \"< 60%\" }",
            "{ metric: cpu_usage, threshold: 0.35, duration: 2m }",
        ),
    )
    .display()
    .to_string();
    let trials = 40;
    let run = |instances: &str| healthy_on(&dir, (&plan_file, &rec), trials, instances);
    let r = run("replicas");
    let s = &r["scenarios"][0];
    assert_eq!(
        s["rollbacks_by_phase"],
        serde_json::json!({ "most": trials }),
        "{s:#}"
    );
    assert_eq!(s["rule_rollback"]["count"], trials, "{s:#}");
    let one = run("one");
    assert_eq!(one["scenarios"][0]["completed"]["count"], trials, "{one:#}");
}

/// The warnings on how blocks are drawn say what is so, with the numbers: a block as long
/// as the recording can start at one grid point only (not "drawn from 15s of it"); a week
/// is under a day and a block of 6d12h, and a block of 5d keeps the time of day.
#[test]
fn the_block_warnings_give_the_numbers_that_hold() {
    let dir = temp_dir("baseline-block-warnings");
    let (plan_file, _, half_day) = files(&dir, &recording(12, 3, |_| 20.0, |_| 0.01));
    let sc = write(
        &dir,
        "healthy.yaml",
        "trials: 10\ntraffic: { start_hour: 13 }\nscenarios:\n  - name: healthy\n",
    );
    let sc = sc.to_str().unwrap();
    let warnings = |rec: &str, block: &str| {
        let r = json(&[
            &plan_file,
            "--scenarios",
            sc,
            "--baseline",
            rec,
            "--block",
            block,
        ]);
        let a = &r["assumptions"]["recording"];
        (
            a["time_of_day_matched"].as_bool().unwrap(),
            a["warnings"]
                .as_array()
                .unwrap()
                .iter()
                .map(|w| w.as_str().unwrap().to_string())
                .collect::<Vec<_>>(),
        )
    };
    let (matched, w) = warnings(&half_day, "11h59m45s");
    assert!(!matched);
    assert!(
        w.contains(&"blocks can start at only 1 grid point of the recording (15s of it): the trials replay much the same stretches, whose own chance moves them all alike, so the intervals understate the uncertainty; record more days (a week or more), or give a shorter `--block`".to_string()),
        "{w:?}"
    );
    assert!(
        w.contains(&"blocks are drawn at any time of day, so a daily cycle is not kept: a block of 11h59m45s is drawn at its time of day from a recording that spans a day and a block (1d11h59m45s), and this one spans 11h59m45s; record more than a day".to_string()),
        "{w:?}"
    );
    let week = write(&dir, "week.csv", &recording(7 * 24, 3, |_| 20.0, |_| 0.01));
    let week = week.to_str().unwrap();
    let (matched, w) = warnings(week, "6d12h");
    assert!(!matched);
    assert!(
        w.contains(&"blocks are drawn at any time of day, so a daily cycle is not kept: a block of 6d12h is drawn at its time of day from a recording that spans a day and a block (1w12h), and this one spans 6d23h59m45s; a `--block` of at most 5d23h59m45s keeps it".to_string()),
        "{w:?}"
    );
    assert!(!w.iter().any(|w| w.contains("less than a day")), "{w:?}");
    let (matched, w) = warnings(week, "5d");
    assert!(matched, "{w:?}");
    assert!(!w.iter().any(|w| w.contains("any time of day")), "{w:?}");
}

/// A plan whose rules read the built-in memory and CPU metrics, a custom gauge and a
/// custom rate (which a fault's `metrics` cannot move on a recording).
const GAUGE_PLAN: &str = "name: gauges
release: { from: v1, to: v2 }
service: { name: app, image: acme/app, port: 8080 }
routing: { listen: 80, sticky: { cookie: uid } }
monitoring: { window: 2m, evaluation_interval: 1m }
traffic: { requests_per_second: 20 }
phases:
  - { name: canary, traffic: 20%, duration: 1h }
  - { name: full, traffic: 100%, duration: 30m }
metrics:
  queue_depth:
    description: Jobs waiting
    query: max(queue_depth{service=\"$service\",track=\"$track\"})
    unit: count
    bad: high
  jobs_per_second:
    description: Jobs done per second
    query: sum(rate(jobs_total{service=\"$service\",track=\"$track\"}[$window]))
    unit: per_second
    bad: low
rollback_conditions:
  - { metric: memory_usage, threshold: 80%, duration: 2m }
  - { metric: cpu_usage, threshold: 0.7, duration: 1m }
  - { metric: queue_depth, threshold: 50, duration: 1m }
  - { metric: jobs_per_second, threshold: 0.1, duration: 1m }
";

/// `plan simulate PLAN --baseline RECORDING` on the scenarios `text` written to `name` in
/// `dir`: refused (exit 1).
fn refused(dir: &Path, (plan_file, rec): (&str, &str), (name, text): (&str, &str)) -> Done {
    let file = write(dir, name, text);
    plan()
        .args(["simulate", plan_file, "--baseline", rec, "--scenarios"])
        .arg(&file)
        .expect(1)
}

/// A fault moving [`GAUGE_PLAN`]'s `jobs_per_second`, read through a counter's rate: no
/// recorded trial can carry it.
const JOBS_MOVED: &str = "scenarios:\n  - name: jobs\n    fault:\n      kind: step\n      onset: 10m\n      metrics: { jobs_per_second: 1 }\n";

/// Two days of 15s scrapes of one instance: 20 req/s (0.1% failing), memory at half its
/// 1 GB limit give or take 0.4%, CPU busy 0.28 to 0.32 of a second per second, a queue
/// of 7 to 13 jobs and 2 jobs done a second.
fn gauge_recording(seed: u64) -> String {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
    let uniform = |rng: &mut Xoshiro256PlusPlus, lo: f64, hi: f64| {
        rand_distr::Uniform::new(lo, hi).unwrap().sample(rng)
    };
    let start = 1_714_521_600u64;
    let (mut ok, mut failed, mut cpu, mut jobs) = (0u64, 0u64, 0.0f64, 0u64);
    let mut out = String::from("timestamp,series,labels,value\n");
    for i in 0..48 * 240u64 {
        let t = start + 15 * i;
        if i > 0 {
            let n = Poisson::new(300.0).unwrap().sample(&mut rng) as u64;
            let f = Binomial::new(n, 0.001).unwrap().sample(&mut rng);
            ok += n - f;
            failed += f;
            cpu += 15.0 * uniform(&mut rng, 0.28, 0.32);
            jobs += Poisson::new(30.0).unwrap().sample(&mut rng) as u64;
        }
        let used = 5e8 + uniform(&mut rng, -4e6, 4e6);
        let queue = uniform(&mut rng, 7.0, 13.0);
        writeln!(out, "{t},http_requests_total,code=200,{ok}").unwrap();
        writeln!(out, "{t},http_requests_total,code=500,{failed}").unwrap();
        writeln!(out, "{t},up,,1").unwrap();
        writeln!(out, "{t},container_memory_working_set_bytes,,{used}").unwrap();
        writeln!(out, "{t},container_spec_memory_limit_bytes,,1000000000").unwrap();
        writeln!(out, "{t},process_cpu_seconds_total,,{cpu}").unwrap();
        writeln!(out, "{t},queue_depth,,{queue}").unwrap();
        writeln!(out, "{t},jobs_total,,{jobs}").unwrap();
    }
    out
}

/// Gauge faults on a recording move the canary's own recorded paths, each caught when its
/// rule should be and when, by hand:
/// - a memory leak to 90% over 30 minutes (30 one-minute steps of the evaluation interval,
///   level `k` from `k - 1` minutes after the onset): the usage `0.5 + k/30 · 0.4 ± 0.004`
///   first passes 80% at `k = 23` (22/30 gives at most 0.7973, 23/30 at least 0.8027), at
///   scrapes from 22 minutes after the onset; the first evaluation that reads one is a
///   minute later (its scrapes come before it), and the rule's `for: 2m` rolls back at 25
///   minutes, 1,500 s, in every trial;
/// - CPU stepped to 90%: `rate()` over 2 minutes reads only stepped spans from the second
///   evaluation after the onset (the first holds at most 59 s of 105 s moved: at most
///   `0.3 + 0.6 · 59/105 + 0.02 < 0.7`), and `for: 1m` rolls back at 180 s; stepped to 60%
///   it stays under 0.7 and is never caught;
/// - the queue moved to 100 (from its recorded mean 10 by 90): over 50 from the first
///   scrape after the onset, read by the next evaluation, rolled back 2 minutes in.
///
/// The healthy scenario, and every faulty trial's healthy twin, never roll back. An effect
/// of no clear meaning on a recording (a custom metric read through a counter's rate) is
/// refused at its line, naming the metrics a recording can move.
#[test]
fn gauge_faults_move_the_canarys_own_recorded_gauges() {
    let dir = temp_dir("baseline-gauges");
    let plan_file = write(&dir, "plan.yaml", GAUGE_PLAN).display().to_string();
    let rec = write(&dir, "recording.csv", &gauge_recording(21))
        .display()
        .to_string();
    let sc = write(
        &dir,
        "scenarios.yaml",
        "trials: 200
scenarios:
  - name: healthy
  - name: leak
    fault: { kind: leak, onset: 10m, ramp: 30m, memory_usage: 90% }
  - name: cpu
    fault: { kind: step, onset: 10m, cpu_usage: 90% }
  - name: cpu-under
    fault: { kind: step, onset: 10m, cpu_usage: 60% }
  - name: queue
    fault: { kind: step, onset: 10m, metrics: { queue_depth: 100 } }
",
    )
    .display()
    .to_string();
    let r = json(&[&plan_file, "--scenarios", &sc, "--baseline", &rec]);
    assert_eq!(rate(&r, "healthy", "false_rollback").0, 0.0);
    // The synthetic model's count of its query metrics' evaluations: not on a recording.
    assert!(scenario(&r, "queue")["query_steps"].is_null(), "{r:#}");
    assert_eq!(
        r["twins"]["false_rollback"]["probability"], 0.0,
        "{}",
        r["twins"]
    );
    for (name, seconds) in [("leak", 1500.0), ("cpu", 180.0), ("queue", 120.0)] {
        let s = scenario(&r, name);
        assert_eq!(rate(&r, name, "caught").0, 1.0, "{name}: {s}");
        assert_eq!(rate(&r, name, "rolled_back_anyway").0, 0.0, "{name}: {s}");
        for q in ["median", "p99"] {
            assert_eq!(
                s["time_to_catch_seconds"][q], seconds,
                "{name} {q}: {}",
                s["time_to_catch_seconds"]
            );
        }
    }
    assert_eq!(
        rate(&r, "cpu-under", "rollback").0,
        0.0,
        "{}",
        scenario(&r, "cpu-under")
    );
    let out = refused(&dir, (&plan_file, &rec), ("refused.yaml", JOBS_MOVED));
    assert!(
        out.stderr.contains("refused.yaml:6:")
            && out
                .stderr
                .contains("scenario `jobs` moves `jobs_per_second`")
            && out
                .stderr
                .contains("of this plan's custom metrics, it can move `queue_depth`"),
        "{}",
        out.stderr
    );
}

/// `series` effects on a recording: a modelled gauge's `mean` shifts the recorded gauge of
/// its name (the queue to 100, caught as the custom metric's shift is: 120 s); a
/// `per_request` counter's events per request scale the canary's events (the recording's
/// 2 jobs per 20 requests, 0.1, cut to 0.01: the canary's 0.4 jobs a second fall to 0.04,
/// under the rule's 0.1 once the 2-minute window holds only cut spans, the second
/// evaluation after the onset, then `for: 1m`: 180 s; raised to 0.2 it never rolls back).
/// An `of` counter's share the recording has no counter of is refused at its line, saying
/// why.
#[test]
fn series_effects_move_recorded_gauges_and_events_per_request() {
    let dir = temp_dir("baseline-series");
    let plan_file = write(&dir, "plan.yaml", GAUGE_PLAN).display().to_string();
    let rec = write(&dir, "recording.csv", &gauge_recording(22))
        .display()
        .to_string();
    let models = "baseline:
  series:
    queue_depth: { gauge: { mean: 10, noise: 2 } }
    jobs_total: { counter: { per_request: 0.1 } }
    failed_jobs_total: { counter: { of: jobs_total, share: 1% } }
";
    let sc = write(
        &dir,
        "scenarios.yaml",
        &format!(
            "trials: 200
{models}scenarios:
  - name: healthy
  - name: queue
    fault: {{ kind: step, onset: 10m, series: {{ queue_depth: {{ mean: 100 }} }} }}
  - name: fewer-jobs
    fault: {{ kind: step, onset: 10m, series: {{ jobs_total: {{ per_request: 0.01 }} }} }}
  - name: more-jobs
    fault: {{ kind: step, onset: 10m, series: {{ jobs_total: {{ per_request: 0.2 }} }} }}
"
        ),
    )
    .display()
    .to_string();
    let r = json(&[&plan_file, "--scenarios", &sc, "--baseline", &rec]);
    assert_eq!(rate(&r, "healthy", "false_rollback").0, 0.0);
    // The synthetic model's count of its query metrics' evaluations: not on a recording.
    assert!(scenario(&r, "queue")["query_steps"].is_null(), "{r:#}");
    for (name, seconds) in [("queue", 120.0), ("fewer-jobs", 180.0)] {
        let s = scenario(&r, name);
        assert_eq!(rate(&r, name, "caught").0, 1.0, "{name}: {s}");
        assert_eq!(s["time_to_catch_seconds"]["median"], seconds, "{name}: {s}");
    }
    assert_eq!(
        rate(&r, "more-jobs", "rollback").0,
        0.0,
        "{}",
        scenario(&r, "more-jobs")
    );
    let out = refused(
        &dir,
        (&plan_file, &rec),
        (
            "refused.yaml",
            &format!(
                "{models}scenarios:\n  - name: failing\n    fault:\n      kind: step\n      onset: 10m\n      series: {{ failed_jobs_total: {{ share: 50% }} }}\n"
            ),
        ),
    );
    assert!(
        out.stderr.contains("refused.yaml:11:")
            && out.stderr.contains("moves `failed_jobs_total`'s `share`")
            && out
                .stderr
                .contains("the recording has no counter `failed_jobs_total`"),
        "{}",
        out.stderr
    );
}

/// An `of` counter's share moved on a recording: the recording's tasks (20 a second)
/// complete 97% of the time (`tasks_done_total` counts some of `tasks_total`'s events,
/// declared by its `of`). A completion ratio under 80% over 2 minutes for a minute rolls
/// back: cut to 41%, the first evaluation after the onset reads a window about half cut
/// (some 69%) and the next fires, 120 s after the onset. Raised to 100%, every task the
/// canary fails to complete is completed, and a rule on a ratio above 99.9% catches it,
/// which on the healthy 97% needs every one of some 480 tasks a window to complete
/// (0.97^480, about 4e-7).
#[test]
fn an_of_counters_share_moves_on_a_recording() {
    let dir = temp_dir("baseline-share");
    let ratio = |range: &str| {
        format!(
            "    query: >-\n      sum(rate(tasks_done_total{{service=\"$service\",track=\"$track\"}}[{range}]))\n      \
             / sum(rate(tasks_total{{service=\"$service\",track=\"$track\"}}[{range}]))\n    unit: ratio\n"
        )
    };
    let plan_file = write(
        &dir,
        "plan.yaml",
        &GAUGE_PLAN.replace(
            "rollback_conditions:\n",
            &format!(
                "  completion:\n{}    bad: low\n  all_complete:\n{}    bad: high\n  half_done:\n{}    bad: low\n  \
                 checked:\n    query: >-\n      sum(rate(tasks_checked_total{{service=\"$service\",track=\"$track\"}}[$window]))\n      \
                 / sum(rate(tasks_done_total{{service=\"$service\",track=\"$track\"}}[$window]))\n    unit: ratio\n    bad: low\n\
                 rollback_conditions:\n  - {{ metric: completion, threshold: 80%, duration: 1m }}\n  \
                 - {{ metric: all_complete, threshold: 99.9%, duration: 1m }}\n  \
                 - {{ metric: half_done, threshold: 60%, duration: 1m }}\n  \
                 - {{ metric: checked, threshold: 10%, duration: 1m }}\n",
                ratio("$window"),
                ratio("$window"),
                ratio("$window")
            ),
        ),
    )
    .display()
    .to_string();
    // Each scrape's tasks, 97% of them done (a stream of their own), half the done ones
    // checked (another), after its `up`.
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(77);
    let mut checks = Xoshiro256PlusPlus::seed_from_u64(78);
    let (mut tasks, mut done, mut checked) = (0u64, 0u64, 0u64);
    let rec = with_lines(&gauge_recording(23), |scrape| {
        if scrape > 0 {
            let n = Poisson::new(300.0).unwrap().sample(&mut rng) as u64;
            tasks += n;
            let d = Binomial::new(n, 0.97).unwrap().sample(&mut rng);
            done += d;
            checked += Binomial::new(d, 0.5).unwrap().sample(&mut checks);
        }
        vec![
            format!("tasks_total,,{tasks}"),
            format!("tasks_done_total,,{done}"),
            format!("tasks_checked_total,,{checked}"),
        ]
    });
    let rec = write(&dir, "recording.csv", &rec).display().to_string();
    let models = "baseline:
  series:
    queue_depth: { gauge: { mean: 10, noise: 2 } }
    jobs_total: { counter: { per_request: 0.1 } }
    tasks_total: { counter: { per_request: 1 } }
    tasks_done_total: { counter: { of: tasks_total, share: 97% } }
    tasks_checked_total: { counter: { of: tasks_done_total, share: 50% } }
";
    let sc = write(
        &dir,
        "scenarios.yaml",
        &format!(
            "trials: 200
{models}scenarios:
  - name: healthy
  - name: stuck
    fault: {{ kind: step, onset: 10m, series: {{ tasks_done_total: {{ share: 41% }} }} }}
  - name: all-done
    fault: {{ kind: step, onset: 10m, series: {{ tasks_done_total: {{ share: 100% }} }} }}
"
        ),
    )
    .display()
    .to_string();
    let r = json(&[&plan_file, "--scenarios", &sc, "--baseline", &rec]);
    assert_eq!(rate(&r, "healthy", "false_rollback").0, 0.0, "{r:#}");
    for name in ["stuck", "all-done"] {
        let s = scenario(&r, name);
        assert_eq!(rate(&r, name, "caught").0, 1.0, "{name}: {s}");
    }
    assert_eq!(
        scenario(&r, "stuck")["time_to_catch_seconds"]["median"],
        120.0
    );
    // Fewer or more tasks per request take or bring their completions with them (the
    // recording's 97% of the added ones): the ratio stays at 97%, and neither rule fires
    // but by the chance of a window whose tasks all complete (halved, some 240 a window:
    // 0.97^240, about 7e-4 an evaluation). Moved alone, the completions would stay: half
    // the tasks would give a ratio near 194%, twice as many one near 48%, each caught in
    // every trial.
    let moved = write(
        &dir,
        "moved.yaml",
        &format!(
            "trials: 200\n{models}scenarios:\n  - name: fewer\n    fault: {{ kind: step, onset: 10m, series: {{ tasks_total: {{ per_request: 0.5 }} }} }}\n  \
             - name: more\n    fault: {{ kind: step, onset: 10m, series: {{ tasks_total: {{ per_request: 2 }} }} }}\n"
        ),
    )
    .display()
    .to_string();
    let r = json(&[&plan_file, "--scenarios", &moved, "--baseline", &rec]);
    for name in ["fewer", "more"] {
        assert!(
            rate(&r, name, "rollback").0 <= 0.05,
            "{name}: {}",
            scenario(&r, name)
        );
    }
    // Twice the tasks and a share moved with them, in either order of the fault's keys:
    // the share is of the tasks the canary then has. Cut to 50%, the ratio falls to 50%
    // (under the 60% rule; a share cut before the added tasks brought their 97% would
    // leave some 73%); raised to 100%, it reaches 100% (topped up before the added tasks
    // brought theirs, some 98.5%).
    let both = |order: [&str; 2], share: &str| {
        let [a, b] = order.map(|k| match k {
            "tasks" => "tasks_total: { per_request: 2 }".to_string(),
            _ => format!("tasks_done_total: {{ share: {share} }}"),
        });
        format!("    fault: {{ kind: step, onset: 10m, series: {{ {a}, {b} }} }}\n")
    };
    let mut text = format!("trials: 200\n{models}scenarios:\n");
    for (share, rule) in [("50%", "half_done"), ("100%", "all_complete")] {
        for order in [["tasks", "done"], ["done", "tasks"]] {
            write!(
                text,
                "  - name: {rule}-{}-first\n{}",
                order[0],
                both(order, share)
            )
            .unwrap();
        }
    }
    let both_file = write(&dir, "both.yaml", &text).display().to_string();
    // Without the 80% rule, which a ratio of 73% would fire too.
    let plan_text = std::fs::read_to_string(&plan_file).unwrap();
    let two_rules = write(
        &dir,
        "two-rules.yaml",
        &plan_text.replace(
            "  - { metric: completion, threshold: 80%, duration: 1m }\n",
            "",
        ),
    )
    .display()
    .to_string();
    let r = json(&[&two_rules, "--scenarios", &both_file, "--baseline", &rec]);
    for rule in ["half_done", "all_complete"] {
        for first in ["tasks", "done"] {
            let name = format!("{rule}-{first}-first");
            let s = scenario(&r, &name);
            assert_eq!(rate(&r, &name, "caught").0, 1.0, "{name}: {s}");
            assert!(
                s["by_rule"][rule]["caught"]["count"].as_f64() > Some(0.0),
                "{name}: {s}"
            );
        }
    }
    // Two shares, one counter's nested in the other's: refused, naming both.
    let out = refused(
        &dir,
        (&plan_file, &rec),
        (
            "chained.yaml",
            &format!(
                "{models}scenarios:\n  - name: chained\n    fault:\n      kind: step\n      onset: 10m\n      series: {{ tasks_done_total: {{ share: 50% }}, tasks_checked_total: {{ share: 10% }} }}\n"
            ),
        ),
    );
    assert!(
        out.stderr.contains("chained.yaml:13:")
            && out.stderr.contains(
                "moves `tasks_checked_total`'s `share` and `tasks_done_total`'s, and `tasks_checked_total` counts some of `tasks_done_total`'s events"
            ),
        "{}",
        out.stderr
    );
}

/// `plan tune --baseline`: every setting is judged on the recorded trials `plan simulate
/// --baseline` runs with the same seed. The plan as written, and the recommended setting
/// written into the plan, get from the tune the very counts a simulation of them gives;
/// the report names the recording.
#[test]
fn a_tune_on_a_recording_judges_each_setting_as_simulate_does() {
    let dir = temp_dir("baseline-tune");
    let (plan_file, sc, rec) = files(&dir, &recording(72, 5, |_| 20.0, |_| 0.01));
    let tuned_file = dir.join("tuned.yaml");
    std::fs::copy(&plan_file, &tuned_file).unwrap();
    let tuned_file = tuned_file.display().to_string();
    let out = plan()
        .args(["tune", &tuned_file, "--scenarios", &sc, "--baseline", &rec])
        .args(["--trials", "150", "--max-false-rollback", "5%", "--write"])
        .args(["--format", "json"])
        .expect(0)
        .stdout;
    let tune: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(tune["recording"]["files"][0], rec.as_str(), "{tune:#}");
    assert_eq!(tune["written"], true);
    let simulated = |file: &str| {
        json(&[
            file,
            "--scenarios",
            &sc,
            "--baseline",
            &rec,
            "--trials",
            "150",
        ])
    };
    let count = |v: &serde_json::Value| v["count"].as_u64().unwrap();
    for (point, file) in [("current", &plan_file), ("recommended", &tuned_file)] {
        let (p, s) = (&tune[point], simulated(file));
        assert_eq!(
            count(&p["false_rollback"]),
            count(&scenario(&s, "healthy")["false_rollback"]),
            "{point}: {p:#}"
        );
        assert_eq!(
            count(&p["caught"]),
            count(&scenario(&s, "errors")["caught"]),
            "{point}: {p:#}"
        );
    }
    // The tune moved the rule, and its setting is within the budget on fresh trials too.
    assert_ne!(tune["current"]["setting"], tune["recommended"]["setting"]);
    assert_eq!(tune["check"]["within_budget"], true, "{:#}", tune["check"]);
    // Its HTML report says where the trials' traffic came from.
    let page = dir.join("tune.html");
    plan()
        .args(["tune", &plan_file, "--scenarios", &sc, "--baseline", &rec])
        .args([
            "--trials",
            "20",
            "--max-false-rollback",
            "20%",
            "--no-check",
            "--report",
        ])
        .arg(&page)
        .expect(0);
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(html.contains("built from the recording"), "{html}");
}

/// Trials drawn only where a window can start or end (sparse: rules that read rates of the
/// request counter) draw otherwise than full ones (a rule on a custom query), and their
/// spans end where the plan evaluates: a comparison says when its pairs share no draws.
#[test]
fn compared_plans_on_a_recording_share_their_draws_sparse_or_full() {
    let dir = temp_dir("baseline-compare-shape");
    let (plan_file, sc, rec) = files(&dir, &recording(24, 5, |_| 20.0, |_| 0.01));
    let compare = |other: &str| -> serde_json::Value {
        let b = write(&dir, "b.yaml", other).display().to_string();
        let out = plan()
            .args(["simulate", &plan_file, &b, "--scenarios", &sc])
            .args(["--baseline", &rec, "--trials", "5", "--format", "json"])
            .expect(0)
            .stdout;
        serde_json::from_str(&out).unwrap()
    };
    let common = |other: &str| compare(other)["common_draws"].clone();
    // Another threshold: the same sparse draws.
    assert_eq!(
        common(&PLAN.replace("threshold: 2%", "threshold: 3%")),
        true
    );
    // Evaluated every 30s, sparse spans would end elsewhere: both run full trials.
    let faster = PLAN.replace(
        "monitoring: { window: 2m }",
        "monitoring: { window: 2m, evaluation_interval: 30s }",
    );
    assert_eq!(common(&faster), true);
    // A custom query: sparse trials over `rate()`; over raw samples (`irate()`) it needs
    // full trials, and then both run them.
    let custom = |f: &str| {
        format!(
            "{PLAN}  - {{ metric: served, threshold: 100000, duration: 1m }}
metrics:
  served:
    query: sum({f}(http_requests_total{{service=\"$service\",track=\"$track\"}}[$window]))
    unit: per_second
    bad: high
"
        )
    };
    assert_eq!(common(&custom("rate")), true);
    assert_eq!(common(&custom("irate")), true);
    // Each side's report says which trials it ran, and why full ones.
    let cmp = compare(&custom("irate"));
    let kind = |i: usize| cmp["reports"][i]["assumptions"]["recording"]["trials"].clone();
    assert_eq!(
        kind(0),
        serde_json::json!({"kind": "full", "because": "the other plan needs full trials, or its sparse trials end their spans elsewhere, and full trials share their draws"})
    );
    assert_eq!(kind(1)["kind"], "full");
    assert!(
        kind(1)["because"]
            .as_str()
            .unwrap()
            .starts_with("`served`'s query reads raw samples")
    );
}

/// The report says which recorded trials ran, and why full ones (the two kinds give other
/// numbers at a seed, and sparse ones are several times faster), and which of the scenario
/// file's settings the recording replaces.
#[test]
fn the_report_names_the_kind_of_recorded_trial_and_the_settings_it_does_not_use() {
    let dir = temp_dir("baseline-trial-kind");
    let (plan_file, sc, rec) = files(&dir, &recording(24, 5, |_| 20.0, |_| 0.01));
    let run = |plan_file: &str, format: &str| {
        plan()
            .args([
                "simulate",
                plan_file,
                "--scenarios",
                &sc,
                "--baseline",
                &rec,
            ])
            .args(["--trials", "3", "--format", format])
            .expect(0)
            .stdout
    };
    let json = |plan_file: &str| -> serde_json::Value {
        let v: serde_json::Value = serde_json::from_str(&run(plan_file, "json")).unwrap();
        v["assumptions"]["recording"]["trials"].clone()
    };
    assert_eq!(json(&plan_file), serde_json::json!({"kind": "sparse"}));
    let human = run(&plan_file, "human");
    assert!(human.contains(
        "trials         sparse: drawn only at the scrapes a rate window starts or ends on"
    ),);
    // The synthetic settings the scenario file states, which the recording replaces.
    assert!(human.contains(
        "not used       traffic.requests_per_second, traffic.daily_amplitude, traffic.error_clustering,\n                 baseline.error_rate\n                 (the scenario file's: the recording's traffic and levels take their place)"
    ), "{human}");
    let v: serde_json::Value = serde_json::from_str(&run(&plan_file, "json")).unwrap();
    assert_eq!(
        v["assumptions"]["recording"]["unused_settings"],
        serde_json::json!([
            "traffic.requests_per_second",
            "traffic.daily_amplitude",
            "traffic.error_clustering",
            "baseline.error_rate"
        ])
    );
    let custom = format!(
        "{PLAN}  - {{ metric: served, threshold: 100000, duration: 1m }}
metrics:
  served:
    query: sum(irate(http_requests_total{{service=\"$service\",track=\"$track\"}}[$window]))
    unit: per_second
    bad: high
"
    );
    let custom = write(&dir, "custom.yaml", &custom).display().to_string();
    assert_eq!(
        json(&custom),
        serde_json::json!({"kind": "full", "because": "`served`'s query reads raw samples (a range function other than `rate()` and `increase()`, or an `offset`)"})
    );
    let human = run(&custom, "human");
    let words = human.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(
        words.contains(
            "trials full, every scrape of every series: `served`'s query reads raw samples (a range function other than `rate()` and `increase()`, or an `offset`) (sparse trials, several times faster, draw only at the scrapes a rate window starts or ends on)"
        ),
        "{human}"
    );
    // Wrapped at 100 columns.
    let line = human.lines().find(|l| l.starts_with("  trials ")).unwrap();
    assert!(line.chars().count() <= 100, "{line}");
}

/// `plan simulate A B --baseline`: both plans run on the same recorded trials. Each side's
/// figures are its own `plan simulate --baseline` run's, and a stricter rule rolls back
/// wherever the plan as written does, and more often.
#[test]
fn two_plans_compared_on_a_recording_share_its_trials() {
    let dir = temp_dir("baseline-compare");
    let (plan_file, sc, rec) = files(&dir, &recording(72, 9, |_| 20.0, |_| 0.01));
    let strict = write(
        &dir,
        "strict.yaml",
        &PLAN.replace("threshold: 2%", "threshold: 1.5%"),
    );
    let strict = strict.display().to_string();
    let out = plan()
        .args(["simulate", &plan_file, &strict, "--scenarios", &sc])
        .args(["--baseline", &rec, "--trials", "120", "--format", "json"])
        .expect(0)
        .stdout;
    let cmp: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(cmp["common_draws"], true, "{cmp:#}");
    let count = |v: &serde_json::Value| v["count"].as_u64().unwrap();
    for (side, file) in [(0, &plan_file), (1, &strict)] {
        let own = json(&[
            file,
            "--scenarios",
            &sc,
            "--baseline",
            &rec,
            "--trials",
            "120",
        ]);
        let report = &cmp["reports"][side];
        assert_eq!(report["assumptions"]["recording"]["files"][0], rec.as_str());
        for (name, what) in [("healthy", "false_rollback"), ("errors", "caught")] {
            assert_eq!(
                count(&scenario(report, name)[what]),
                count(&scenario(&own, name)[what]),
                "side {side}: {name} {what}"
            );
        }
    }
    // On the same trials, the stricter rule fires wherever the other does, and more often.
    let rolled_back =
        |side: usize, name: &str| count(&scenario(&cmp["reports"][side], name)["rollback"]);
    for name in ["healthy", "errors"] {
        let (a, b) = (rolled_back(0, name), rolled_back(1, name));
        assert!(b >= a, "{name}: {b} vs {a}");
    }
    assert!(rolled_back(1, "healthy") > rolled_back(0, "healthy"));
    // The text says where the trials came from.
    let text = plan()
        .args(["simulate", &plan_file, &strict, "--scenarios", &sc])
        .args(["--baseline", &rec, "--trials", "5"])
        .expect(0)
        .stdout;
    assert!(text.contains("built from the recording"), "{text}");
    // Another number of replicas runs other canary instances, each on blocks of its own:
    // the draws are no longer common.
    let wider = write(
        &dir,
        "wider.yaml",
        &PLAN.replace("port: 8080 }", "port: 8080, replicas: 2 }"),
    );
    let out = plan()
        .args([
            "simulate",
            &plan_file,
            wider.to_str().unwrap(),
            "--scenarios",
            &sc,
        ])
        .args(["--baseline", &rec, "--trials", "5", "--format", "json"])
        .expect(0)
        .stdout;
    let cmp: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(cmp["common_draws"], false, "{cmp:#}");
}

/// Shards of a run on a recording merge into the unsharded run's report, byte for byte
/// (the recording's part of it included, though the merge does not read the recording);
/// a shard of a run on another recording is refused, naming it.
#[test]
fn shards_of_a_recorded_run_merge_into_its_report() {
    let dir = temp_dir("baseline-shards");
    let (plan_file, sc, rec) = files(&dir, &recording(12, 4, |_| 20.0, |_| 0.01));
    let other = write(&dir, "other.csv", &recording(12, 5, |_| 20.0, |_| 0.01));
    let other = other.display().to_string();
    let run = |rec: &str| -> Vec<String> {
        vec![
            "simulate".into(),
            plan_file.clone(),
            "--scenarios".into(),
            sc.clone(),
            "--baseline".into(),
            rec.into(),
            "--trials".into(),
            "23".into(),
        ]
    };
    let whole = plan()
        .args(run(&rec))
        .args(["--format", "json"])
        .expect(0)
        .stdout;
    let shard = |rec: &str, k: u64, n: u64| {
        let out = plan()
            .args(run(rec))
            .args([
                "--shard",
                &format!("{k}/{n}"),
                "--jobs",
                &(1 + k % 2).to_string(),
            ])
            .expect(0);
        write(&dir, &format!("{k}-{n}-{}.json", rec.len()), &out.stdout)
    };
    for n in [1, 2, 3] {
        let paths: Vec<_> = (1..=n).map(|k| shard(&rec, k, n)).collect();
        let merged = plan()
            .arg("merge")
            .args(&paths)
            .args(["--format", "json"])
            .expect(0)
            .stdout;
        assert_eq!(merged, whole, "{n} shards");
    }
    // The same recording by another path is the same run.
    let copy = write(&dir, "copy.csv", &std::fs::read_to_string(&rec).unwrap());
    let paths = [shard(&rec, 1, 2), shard(&copy.display().to_string(), 2, 2)];
    let merged = plan()
        .arg("merge")
        .args(&paths)
        .args(["--format", "json"])
        .expect(0)
        .stdout;
    assert_eq!(merged, whole, "the recording copied");
    // Another block is another run, and the refusal says so.
    let blocks = plan()
        .args(run(&rec))
        .args(["--shard", "2/2", "--block", "30m"])
        .expect(0);
    let blocks = write(&dir, "block.json", &blocks.stdout);
    let out = plan()
        .arg("merge")
        .arg(shard(&rec, 1, 2))
        .arg(&blocks)
        .expect(1);
    assert!(out.stderr.contains("block (--block)"), "{}", out.stderr);
    let mixed = [shard(&rec, 1, 2), shard(&other, 2, 2)];
    let out = plan().arg("merge").args(&mixed).expect(1);
    assert!(
        out.stderr.contains("recording (--baseline)"),
        "{}",
        out.stderr
    );
}

/// On a recording, a custom query over the request counters is moved by an error fault
/// like the built-in error rate: its rollbacks after the onset count as caught. A
/// recording whose requests carry no `code` label cannot take an error fault, and a
/// selector of the plan that matches no recorded series is refused, naming it.
#[test]
fn custom_queries_on_recorded_series_catch_and_what_cannot_match_is_refused() {
    let dir = temp_dir("baseline-custom");
    let plan_text = PLAN.replace(
        "rollback_conditions:\n  - { metric: error_rate, threshold: 2%, duration: 1m }\n",
        "metrics:
  err5xx:
    query: >-
      sum(rate(http_requests_total{service=\"$service\",track=\"$track\",code=~\"5..\"}[$window]))
      / sum(rate(http_requests_total{service=\"$service\",track=\"$track\"}[$window]))
    unit: ratio
    bad: high
rollback_conditions:
  - { metric: err5xx, threshold: 2%, duration: 1m }
",
    );
    assert!(plan_text.contains("err5xx"));
    let (_, sc, rec) = files(&dir, &recording(48, 2, |_| 20.0, |_| 0.01));
    let plan_file = write(&dir, "custom.yaml", &plan_text).display().to_string();
    let report = json(&[
        &plan_file,
        "--scenarios",
        &sc,
        "--baseline",
        &rec,
        "--trials",
        "60",
    ]);
    let (caught, _) = rate(&report, "errors", "caught");
    let (anyway, _) = rate(&report, "errors", "rolled_back_anyway");
    assert!(caught > 0.5, "caught {caught}, rolled back anyway {anyway}");
    // Requests labelled `status`: the error fault has no `code="500"` to move failures to,
    // and the built-in error rate's `code=~"5.."` matches nothing.
    let status = write(
        &dir,
        "status.csv",
        &std::fs::read_to_string(&rec)
            .unwrap()
            .replace(",code=", ",status="),
    );
    let out = plan()
        .args(["simulate", &plan_file, "--scenarios", &sc, "--baseline"])
        .arg(&status)
        .expect(2);
    assert!(
        out.stderr.contains("the selector `http_requests_total{")
            && out.stderr.contains("matches no series of the recording"),
        "{}",
        out.stderr
    );
    // A plan that reads `status` runs on it, but its error fault is refused at its line.
    let by_status = write(
        &dir,
        "status.yaml",
        &plan_text.replace("code=~", "status=~"),
    );
    let out = plan()
        .args(["simulate"])
        .arg(&by_status)
        .args(["--scenarios", &sc, "--baseline"])
        .arg(&status)
        .expect(1);
    assert!(
        out.stderr.contains("error[unrecorded-effect]")
            && out.stderr.contains("has a `code` label"),
        "{}",
        out.stderr
    );
    // A recording without failures, whose requests have their `code` but no 5xx series:
    // no such request, not a label the recording lacks. It runs, the healthy service never
    // rolls back, and the fault's failures (in a `code="500"` series of the canary's own)
    // are caught.
    let clean: String = recording(48, 2, |_| 20.0, |_| 0.0)
        .lines()
        .filter(|l| !l.contains("code=500"))
        .map(|l| format!("{l}\n"))
        .collect();
    let clean = write(&dir, "clean.csv", &clean);
    let builtin = write(&dir, "builtin.yaml", PLAN).display().to_string();
    for plan_file in [&plan_file, &builtin] {
        let report = json(&[
            plan_file,
            "--scenarios",
            &sc,
            "--baseline",
            clean.to_str().unwrap(),
            "--trials",
            "40",
        ]);
        assert_eq!(
            rate(&report, "healthy", "false_rollback").0,
            0.0,
            "{plan_file}"
        );
        assert_eq!(rate(&report, "errors", "caught").0, 1.0, "{plan_file}");
    }
}

/// A recording of two versions (or services) at once cannot be told apart once a trial
/// sets `track` and `service` itself: refused at the line, saying what to export.
#[test]
fn a_recording_of_two_versions_at_once_is_refused() {
    let dir = temp_dir("baseline-tracks");
    let (plan_file, _, _) = files(&dir, &recording(1, 1, |_| 20.0, |_| 0.01));
    let mut csv = String::from("timestamp,series,labels,value\n");
    for i in 0..20 {
        for track in ["canary", "stable"] {
            csv += &format!("{},up,track={track},1\n", 1_714_521_600 + 15 * i);
        }
    }
    let both = write(&dir, "both.csv", &csv);
    let out = plan()
        .args(["simulate", &plan_file, "--baseline"])
        .arg(&both)
        .expect(1);
    assert!(
        out.stderr.contains("both.csv:3:")
            && out
                .stderr
                .contains("for {track=\"canary\"} and for {track=\"stable\"} at once")
            && out.stderr.contains("export only the stable version"),
        "{}",
        out.stderr
    );
}

/// A plan and scenario file that state no request rate: the synthetic model has none to
/// draw requests at and refuses them, naming what to do; on a recording the rate is the
/// recording's (its `http_requests_total` over its span), whatever the plan states, so
/// `simulate`, `tune` and a sharded run's merge all run, at it. What only the synthetic
/// model uses is left out of the report's assumptions.
#[test]
fn a_recording_gives_the_request_rate_the_plan_and_scenarios_leave_out() {
    let dir = temp_dir("baseline-rate");
    let text = recording(12, 6, |_| 20.0, |_| 0.01);
    let rateless = PLAN.replace("traffic: { requests_per_second: 20 }\n", "");
    let plan_file = write(&dir, "plan.yaml", &rateless).display().to_string();
    let sc = SCENARIOS.replace("requests_per_second: 20, ", "");
    let sc = write(&dir, "scenarios.yaml", &sc).display().to_string();
    let rec = write(&dir, "recording.csv", &text).display().to_string();
    // Without a recording: refused, saying where to state one.
    let out = plan()
        .args(["simulate", &plan_file, "--scenarios", &sc])
        .expect(1);
    assert!(
        out.stderr.contains("error[no-request-rate]")
            && out.stderr.contains("`traffic: {requests_per_second: N}`"),
        "{}",
        out.stderr
    );
    // The recording's rate: every request it counts over its span (12 h of 15 s steps).
    let last: Vec<u64> = text
        .lines()
        .rev()
        .filter(|l| l.contains("http_requests_total"))
        .take(2)
        .map(|l| l.rsplit(',').next().unwrap().parse().unwrap())
        .collect();
    let want = (last[0] + last[1]) as f64 / ((12 * 240 - 1) * 15) as f64;
    assert!((want - 20.0).abs() < 0.2, "{want}");
    let args = ["--scenarios", &sc, "--baseline", &rec, "--trials", "30"];
    let recorded = json(&[&[plan_file.as_str()][..], &args].concat());
    assert_eq!(recorded["requests_per_second"].as_f64(), Some(want));
    let a = &recorded["assumptions"];
    assert_eq!(a["traffic"]["requests_per_second"].as_f64(), Some(want));
    assert_eq!(a["traffic"]["start_hour"], 13);
    for gone in [
        &a["metrics"],
        &a["traffic"]["daily_amplitude"],
        &a["traffic"]["overdispersion"],
        &a["traffic"]["error_clustering"],
        &a["exposition"]["per_code"],
    ] {
        assert!(gone.is_null(), "{a:#}");
    }
    // When the canary's failure series first has a sample: used on a recording too.
    assert_eq!(a["exposition"]["failures_from"], "first_failure");
    // A rate the plan states changes nothing on a recording: the same bytes.
    let stated = write(
        &dir,
        "stated.yaml",
        &rateless.replace("phases:", "traffic: { requests_per_second: 2 }\nphases:"),
    );
    let stated = json(&[&[stated.to_str().unwrap()][..], &args].concat());
    assert_eq!(stated, recorded);
    // A tune runs at the recording's rate, its figures those of simulate.
    let out = plan()
        .args(["tune", &plan_file])
        .args(args)
        .args([
            "--max-false-rollback",
            "50%",
            "--no-check",
            "--format",
            "json",
        ])
        .expect(0)
        .stdout;
    let tune: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        tune["current"]["false_rollback"]["count"],
        scenario(&recorded, "healthy")["false_rollback"]["count"],
        "{tune:#}"
    );
    // Two shards merge into the unsharded report, the rate carried in the shards.
    let whole = plan()
        .args(["simulate", &plan_file])
        .args(args)
        .args(["--format", "json"])
        .expect(0)
        .stdout;
    let shards: Vec<_> = (1..=2)
        .map(|k| {
            let out = plan()
                .args(["simulate", &plan_file])
                .args(args)
                .args(["--shard", &format!("{k}/2")])
                .expect(0);
            write(&dir, &format!("shard-{k}.json"), &out.stdout)
        })
        .collect();
    std::fs::remove_file(&rec).unwrap();
    let merged = plan()
        .arg("merge")
        .args(&shards)
        .args(["--format", "json"])
        .expect(0)
        .stdout;
    assert_eq!(merged, whole);
}

/// A recording without requests gives no rate: with none stated either, the run is
/// refused, saying to record the requests or to state a rate.
#[test]
fn a_recording_without_requests_and_no_rate_stated_is_refused() {
    let dir = temp_dir("baseline-no-rate");
    let mut text = String::from("timestamp,series,labels,value\n");
    for i in 0..2 * 240 {
        writeln!(text, "{},up,,1", 1_714_521_600 + 15 * i).unwrap();
    }
    let rec = write(&dir, "up.csv", &text).display().to_string();
    let rateless = PLAN.replace("traffic: { requests_per_second: 20 }\n", "");
    let plan_file = write(&dir, "plan.yaml", &rateless).display().to_string();
    let sc = SCENARIOS.replace("requests_per_second: 20, ", "");
    let sc = write(&dir, "scenarios.yaml", &sc).display().to_string();
    let out = plan()
        .args([
            "simulate",
            &plan_file,
            "--scenarios",
            &sc,
            "--baseline",
            &rec,
        ])
        .expect(1);
    assert!(
        out.stderr.contains("error[no-request-rate]")
            && out
                .stderr
                .contains("add the service's `http_requests_total` series to the recording"),
        "{}",
        out.stderr
    );
}

/// `hours` of 15 s scrapes of 20 requests a second, 30% of which start a checkout and 90%
/// of those complete it in the same scrape: every completed checkout is a started one.
fn checkouts(hours: u64, seed: u64) -> String {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
    let start = 1_714_521_600u64;
    let (mut ok, mut started, mut completed) = (0u64, 0u64, 0u64);
    let mut out = String::from("timestamp,series,labels,value\n");
    for i in 0..hours * 240 {
        let t = start + 15 * i;
        if i > 0 {
            let n = Poisson::new(300.0).unwrap().sample(&mut rng) as u64;
            let s = Binomial::new(n, 0.3).unwrap().sample(&mut rng);
            ok += n;
            started += s;
            completed += Binomial::new(s, 0.9).unwrap().sample(&mut rng);
        }
        writeln!(out, "{t},http_requests_total,code=200,{ok}").unwrap();
        writeln!(out, "{t},checkout_started_total,,{started}").unwrap();
        writeln!(out, "{t},checkout_completed_total,,{completed}").unwrap();
        writeln!(out, "{t},up,,1").unwrap();
    }
    out
}

/// Nested counters (issue: thinned apart, the canary completed more checkouts than it
/// started): a completed checkout goes to the track its started one went to, so the
/// canary's `completed / started` never passes 100%, whether the nesting is inferred from
/// the recording or declared by the scenario file's `of`; a file that models the completed
/// checkouts as `per_request` (their own events) thins them apart, and the ratio passes
/// 100% in most trials. On the same recording a rule on the ratio falling under 85% (a
/// drop of the canary's 90%) rolls back fewer healthy releases nested than thinned apart.
#[test]
fn nested_counters_follow_their_parent_events_to_one_track() {
    let dir = temp_dir("baseline-nested");
    let rec = write(&dir, "checkouts.csv", &checkouts(72, 4))
        .display()
        .to_string();
    let conversion = |bad: &str, unit: &str, rule: &str| {
        PLAN.replace(
            "rollback_conditions:\n  - { metric: error_rate, threshold: 2%, duration: 1m }\n",
            &format!(
                "metrics:
  conversion:
    query: >-
      sum(rate(checkout_completed_total{{service=\"$service\",track=\"$track\"}}[$window]))
      / sum(rate(checkout_started_total{{service=\"$service\",track=\"$track\"}}[$window]))
    unit: {unit}
    bad: {bad}
rollback_conditions:
  - {rule}
"
            ),
        )
    };
    // Over 100% (a count: a ratio's threshold stops at 100%), at any one evaluation.
    let over = write(
        &dir,
        "over.yaml",
        &conversion(
            "high",
            "count",
            "{ metric: conversion, threshold: 1.0, duration: 0s }",
        ),
    )
    .display()
    .to_string();
    let under = write(
        &dir,
        "under.yaml",
        &conversion(
            "low",
            "ratio",
            "{ metric: conversion, threshold: 85%, duration: 1m }",
        ),
    )
    .display()
    .to_string();
    let healthy = "trials: 200\ntraffic: { start_hour: 13 }\n";
    let models = |completed: &str| {
        format!(
            "{healthy}baseline:\n  series:\n    checkout_started_total: {{ counter: {{ per_request: 30% }} }}\n    checkout_completed_total: {{ counter: {completed} }}\nscenarios:\n  - name: healthy\n"
        )
    };
    let files = [
        (
            "inferred",
            format!("{healthy}scenarios:\n  - name: healthy\n"),
        ),
        (
            "declared",
            models("{ of: checkout_started_total, share: 90% }"),
        ),
        ("apart", models("{ per_request: 27% }")),
    ];
    let mut over_rates = Vec::new();
    for (known, text) in &files {
        let sc = write(&dir, &format!("{known}.yaml"), text)
            .display()
            .to_string();
        let report = json(&[&over, "--scenarios", &sc, "--baseline", &rec]);
        let nested = &report["assumptions"]["recording"]["nested"];
        if *known == "apart" {
            assert_eq!(nested, &serde_json::json!([]), "{known}");
        } else {
            assert_eq!(
                nested,
                &serde_json::json!([{
                    "series": "checkout_completed_total",
                    "within": ["checkout_started_total"],
                    "known": known,
                }]),
                "{known}"
            );
        }
        over_rates.push(rate(&report, "healthy", "false_rollback").0);
    }
    assert_eq!(over_rates[..2], [0.0, 0.0], "{over_rates:?}");
    assert!(over_rates[2] > 0.5, "{over_rates:?}");
    // A rule on a drop of the ratio: the noise thinning apart adds rolls back more.
    let under_rates: Vec<f64> = [&files[0], &files[2]]
        .iter()
        .map(|(known, _)| {
            let sc = dir.join(format!("{known}.yaml")).display().to_string();
            let report = json(&[&under, "--scenarios", &sc, "--baseline", &rec]);
            rate(&report, "healthy", "false_rollback").0
        })
        .collect();
    assert!(
        under_rates[0] + 0.2 < under_rates[1],
        "nested {} against apart {}",
        under_rates[0],
        under_rates[1]
    );
    // A fault halving the parent's events per request takes the child's with it while
    // the two are nested: the canary completes no checkout it did not start, and the
    // ratio never passes 100%. Modelled apart, its completions outnumber its starts.
    let fault = "  - name: fewer-starts\n    fault:\n      kind: step\n      onset: 10m\n      series: { checkout_started_total: { per_request: 15% } }\n";
    for (known, text) in &files[1..] {
        let sc = write(
            &dir,
            &format!("{known}-fault.yaml"),
            &format!("{text}{fault}"),
        )
        .display()
        .to_string();
        let report = json(&[&over, "--scenarios", &sc, "--baseline", &rec]);
        let rolled_back = rate(&report, "fewer-starts", "rollback").0;
        match *known {
            "declared" => assert_eq!(rolled_back, 0.0, "{}", scenario(&report, "fewer-starts")),
            _ => assert_eq!(rolled_back, 1.0, "{}", scenario(&report, "fewer-starts")),
        }
    }
}
