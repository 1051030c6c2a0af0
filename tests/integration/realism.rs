//! The Monte Carlo's realism options (issue 17): each moves the numbers the way production
//! would, by the right amount where a closed form exists, and with every option at zero the
//! simulator prints what it printed before the options existed.

use crate::instants::AVAILABILITY_2M;
use crate::simulate::{closed_form_rollback, closed_form_run, test_plan};
use crate::support::{self, root, scenario, simulate_json as json, write};
use serde_json::Value;
use statrs::distribution::{Binomial, Discrete, DiscreteCDF, Poisson};
use statrs::function::erf::erfc;

/// Every value `want` has is in `got`, equal (objects may gain keys; arrays match in full).
fn contains(got: &Value, want: &Value, at: &str) -> Result<(), String> {
    match (got, want) {
        (Value::Object(g), Value::Object(w)) => w.iter().try_for_each(|(k, wv)| {
            let gv = g.get(k).ok_or(format!("{at}/{k}: missing"))?;
            contains(gv, wv, &format!("{at}/{k}"))
        }),
        (Value::Array(g), Value::Array(w)) if g.len() == w.len() => g
            .iter()
            .zip(w)
            .enumerate()
            .try_for_each(|(i, (gv, wv))| contains(gv, wv, &format!("{at}/{i}"))),
        _ if got == want => Ok(()),
        _ => Err(format!("{at}: {got} where it was {want}")),
    }
}

/// `tests/realism/zero.yaml` sets every realism option to zero; `zero.json` is what
/// `plan simulate` printed for that file, without the options, before they existed
/// (commit 0152a24).
#[test]
fn every_realism_option_at_zero_gives_the_numbers_from_before() {
    let dir = root().join("tests/realism");
    let got = json(&[
        "plans/lawsker.yaml",
        "--scenarios",
        "tests/realism/zero.yaml",
    ]);
    let want: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("zero.json")).unwrap()).unwrap();
    let mut want = want;
    // Only the report's format version may have moved on.
    want.as_object_mut().unwrap().remove("schema_version");
    if let Err(e) = contains(&got, &want, "") {
        panic!("the numbers moved: {e}");
    }
}

/// A plan whose one canary phase ends with a memory gate (`< 90%`) over a 1m window: the
/// gate fails at the phase's end when memory was at 90% or more at both of the last two
/// evaluations before it (pending, then firing after its `for` of 1m).
const GATED: &str = "name: drift
release: { from: v1, to: v2 }
service: { name: app, image: acme/app, port: 8080 }
routing: { listen: 80, sticky: { cookie: uid } }
monitoring: { window: 1m }
phases:
  - { name: canary, traffic: 50%, duration: 1h }
  - { name: full, traffic: 100%, duration: 10m }
gates:
  memory_usage: \"< 90%\"
rollback_conditions:
  - { metric: error_rate, threshold: 99%, duration: 5m }
";

/// `P(X > c, Y > c)` for standard normals of correlation `rho`: the integral over `x > c`
/// of `φ(x) · Q((c - ρx) / √(1-ρ²))`, by Simpson's rule.
fn both_above(c: f64, rho: f64) -> f64 {
    let q = |z: f64| 0.5 * erfc(z / std::f64::consts::SQRT_2);
    if rho == 0.0 {
        return q(c) * q(c);
    }
    let phi = |x: f64| (-0.5 * x * x).exp() / (2.0 * std::f64::consts::PI).sqrt();
    let f = |x: f64| phi(x) * q((c - rho * x) / (1.0 - rho * rho).sqrt());
    let (n, h) = (20_000, 12.0 / 20_000.0);
    let mut sum = f(c) + f(c + 12.0);
    for i in 1..n {
        sum += f(c + i as f64 * h) * if i % 2 == 1 { 4.0 } else { 2.0 };
    }
    sum * h / 3.0
}

/// Drifting gauges: with memory at 88% ± 2% (the gate's 90% one standard deviation up),
/// the two evaluations a minute apart that decide the gate are above it together with the
/// bivariate normal probability for their correlation `exp(-1m / time_constant)`: 2.5% when
/// every scrape is drawn afresh, about 5x that with the default 10m drift.
#[test]
fn a_drifting_gauge_fails_a_gate_as_often_as_its_correlation_says() {
    let dir = support::temp_dir("realism-drift");
    let p = write(&dir, "drift.yaml", GATED);
    let trials = 4000;
    for (tau, tau_s) in [("0s", 0.0), ("2m", 120.0), ("10m", 600.0), (DEFAULT, 600.0)] {
        let memory = if tau == DEFAULT {
            "{ mean: 88%, noise: 2% }".to_string()
        } else {
            format!("{{ mean: 88%, noise: 2%, time_constant: {tau} }}")
        };
        let sc = write(
            &dir,
            "scenarios.yaml",
            &format!(
                "trials: {trials}\ntraffic: {{ requests_per_second: 100 }}\nbaseline: {{ memory_usage: {memory} }}\nscenarios:\n  - name: healthy\n"
            ),
        );
        let r = json(&[p.to_str().unwrap(), "--scenarios", sc.to_str().unwrap()]);
        let gates = &r["scenarios"][0]["gate_failures"]["canary"];
        assert_eq!(gates["completed"], trials, "{gates:#}");
        let failed = gates["failing"]["memory_usage"].as_f64().unwrap_or(0.0);
        let rho = if tau_s == 0.0 {
            0.0
        } else {
            (-60.0_f64 / tau_s).exp()
        };
        let want = both_above(1.0, rho);
        let got = failed / f64::from(trials);
        let se = (want * (1.0 - want) / f64::from(trials)).sqrt();
        assert!(
            (got - want).abs() < 4.0 * se,
            "time constant {tau}: the gate failed in {got} of the trials, {want} expected (±{se})"
        );
    }
}

/// The scenario file without a `time_constant`: the default.
const DEFAULT: &str = "default";

/// A plan of 4 replicas: `phases` (each line a phase), then 10 minutes at 100%; one `gate`,
/// and a rollback rule that never fires.
fn four_replicas(phases: &str, gate: &str) -> String {
    format!(
        "name: replicas\nrelease: {{ from: v1, to: v2 }}\n\
         service: {{ name: app, image: acme/app, port: 8080, replicas: 4 }}\n\
         routing: {{ listen: 80, sticky: {{ cookie: uid }} }}\n\
         phases:\n{phases}  - {{ name: full, traffic: 100%, duration: 10m }}\n\
         gates:\n  {gate}\n\
         rollback_conditions:\n  - {{ metric: error_rate, threshold: 99%, duration: 5m }}\n"
    )
}

/// Per-instance gauges (`exposition.instances`): with 4 stable replicas the canary runs one
/// instance at 25% and three at 75% (as the rendered compose files start them), each
/// holding 30 ± 1 DB connections. The gate `db_connections < 80` reads their sum, as the
/// rendered rule does: about 30 passes at the first phase's end, about 90 fails at the
/// second's, in every healthy trial. With `instances: one` (one instance per track, as
/// before) every trial completes.
#[test]
fn a_sum_over_instances_fails_a_gate_one_instance_passes() {
    let dir = support::temp_dir("realism-instances");
    let p = write(
        &dir,
        "pool.yaml",
        &four_replicas(
            "  - { name: quarter, traffic: 25%, duration: 1h }\n  \
             - { name: most, traffic: 75%, duration: 1h }\n",
            "db_connections: \"< 80\"",
        ),
    );
    let trials = 200;
    let run = |instances: &str| {
        let sc = write(
            &dir,
            "scenarios.yaml",
            &format!(
                "trials: {trials}\nexposition: {{ instances: {instances} }}\ntraffic: {{ requests_per_second: 100 }}\n\
                 baseline: {{ db_connections: {{ mean: 30, noise: 1 }} }}\nscenarios:\n  - name: healthy\n"
            ),
        );
        json(&[p.to_str().unwrap(), "--scenarios", sc.to_str().unwrap()])
    };
    let r = run("replicas");
    assert_eq!(
        r["assumptions"]["exposition"]["instances"],
        serde_json::json!({ "model": "replicas", "stable": 4, "canary": [1, 3, 4] })
    );
    let gates = &r["scenarios"][0]["gate_failures"];
    // Only the phases where some gate failed are listed.
    assert!(gates.get("quarter").is_none(), "{gates:#}");
    assert_eq!(
        gates["most"]["failing"]["db_connections"], trials,
        "{gates:#}"
    );
    assert_eq!(r["scenarios"][0]["completed"]["count"], 0, "{r:#}");
    let one = run("one");
    assert_eq!(
        one["assumptions"]["exposition"]["instances"]["canary"],
        serde_json::json!([1, 1, 1])
    );
    assert_eq!(one["scenarios"][0]["completed"]["count"], trials, "{one:#}");
}

/// CPU per instance (`exposition.instances`): `cpu_usage` averages the instances' `rate()`s,
/// as the rendered `avg(rate(...))` does. A canary at 50% of 4 replicas runs two, so with
/// their noise independent (`shared: 0%`) its CPU noise is one instance's over √2: a gate
/// `cpu_usage < 43%` at 40% ± 10% fails less than half as often as with one instance per
/// track. (The default's closed form, half the noise shared, is `synth`'s unit test.)
#[test]
fn cpu_averages_the_instances_noise() {
    let dir = support::temp_dir("realism-cpu-noise");
    let p = write(
        &dir,
        "cpu.yaml",
        &four_replicas(
            "  - { name: half, traffic: 50%, duration: 1h }\n",
            "cpu_usage: \"< 43%\"",
        ),
    );
    let failing = |instances: &str| {
        let sc = write(
            &dir,
            "scenarios.yaml",
            &format!(
                "trials: 2000\nexposition: {{ instances: {instances} }}\ntraffic: {{ requests_per_second: 20 }}\n\
                 baseline: {{ cpu_usage: {{ mean: 40%, noise: 10%, shared: 0% }} }}\nscenarios:\n  - name: healthy\n"
            ),
        );
        let r = json(&[p.to_str().unwrap(), "--scenarios", sc.to_str().unwrap()]);
        r["scenarios"][0]["gate_failures"]["half"]["failing"]["cpu_usage"]
            .as_u64()
            .unwrap_or(0)
    };
    let (two, one) = (failing("replicas"), failing("one"));
    assert!(two > 0 && 2 * two < one, "two instances {two}, one {one}");
}

/// A canary instance joining with its phase has its CPU counter's first sample, 0, at the
/// phase's first scrape, so for a window's length its `rate()` covers only its part of the
/// window (Prometheus stops extrapolating at a counter's zero), and the canary's average
/// dips. On the aligned grid (15s, 1m, 5m), CPU at 40% (noise 0.5%) steps to 70% as the
/// canary goes from two instances (50% of 4 replicas) to four (100%), at 10m; a rule
/// `cpu_usage > 60%` without `for`:
/// - with one instance per track, at 14m its window (9m, 14m] holds 45s at 40% and 240s at
///   70% (65.3%): caught 240s after the onset;
/// - with instances, the two joining at 10m15s read 225s at 70% over the 5m range (52.5%),
///   so the average is 58.9% and the rule waits for 15m (68.3%): 300s.
#[test]
fn joining_instances_dip_the_canary_cpu() {
    let dir = support::temp_dir("realism-cpu-join");
    let p = write(
        &dir,
        "join.yaml",
        "name: join\nrelease: { from: v1, to: v2 }\n\
         service: { name: app, image: acme/app, port: 8080, replicas: 4 }\n\
         routing: { listen: 80, sticky: { cookie: uid } }\n\
         traffic: { requests_per_second: 20 }\n\
         phases:\n  - { name: half, traffic: 50%, duration: 10m }\n  \
         - { name: full, traffic: 100%, duration: 10m }\n\
         rollback_conditions:\n  - { metric: cpu_usage, threshold: 60%, duration: 0s }\n",
    );
    for (instances, seconds) in [("one", 240.0), ("replicas", 300.0)] {
        let sc = write(
            &dir,
            "scenarios.yaml",
            &format!(
                "trials: 100\nexposition: {{ instances: {instances}, scrape_offset: 0s }}\n\
                 baseline: {{ cpu_usage: {{ mean: 40%, noise: 0.5% }} }}\nscenarios:\n  \
                 - name: healthy\n  - name: hot\n    fault: {{ kind: step, onset: 10m, cpu_usage: 70% }}\n"
            ),
        );
        let r = json(&[p.to_str().unwrap(), "--scenarios", sc.to_str().unwrap()]);
        let hot = &r["scenarios"][1];
        assert_eq!(hot["caught"]["count"], 100, "{instances}: {hot:#}");
        assert_eq!(
            hot["time_to_catch_seconds"],
            serde_json::json!({ "median": seconds, "p90": seconds, "p99": seconds }),
            "{instances}"
        );
        assert_eq!(
            r["scenarios"][0]["rollback"]["count"], 0,
            "{instances}: {r:#}"
        );
    }
}

/// `targets_up` is `sum(up)` over the track's targets, one per instance: a canary at 50% of
/// 4 replicas runs two, so a gate `targets_up >= 2` passes in every trial; with one
/// instance per track it fails in every trial.
#[test]
fn targets_up_counts_the_instances() {
    let dir = support::temp_dir("realism-targets");
    let p = write(
        &dir,
        "up.yaml",
        &four_replicas(
            "  - { name: half, traffic: 50%, duration: 1h }\n",
            "targets_up: \">= 2\"",
        ),
    );
    for (instances, completed) in [("replicas", 100), ("one", 0)] {
        let sc = write(
            &dir,
            "scenarios.yaml",
            &format!(
                "trials: 100\nexposition: {{ instances: {instances} }}\ntraffic: {{ requests_per_second: 100 }}\n\
                 scenarios:\n  - name: healthy\n"
            ),
        );
        let r = json(&[p.to_str().unwrap(), "--scenarios", sc.to_str().unwrap()]);
        assert_eq!(
            r["scenarios"][0]["completed"]["count"], completed,
            "{instances}: {r:#}"
        );
    }
}

/// Per-code counters: every failed request from 10m on. Ten minutes in, the failed
/// requests' counter starts from 0 in the window while the answered ones' does not, so
/// Prometheus extrapolates the two differently and the error rate at 11m is 20.2% summed
/// over the codes, 20.0% over one counter of every request. With a threshold of 20.1%
/// the rule turns pending at 11m per code (firing at 12m), at 12m over one counter: the
/// Monte Carlo, at a traffic so heavy that the ratio has no noise to speak of, rolls back
/// in every trial when the project's replay of the per-code counters does (the replay
/// engine is proven against promtool in `proof.rs`), and a minute later with
/// `per_code: false`.
#[test]
fn per_code_counters_give_the_error_rate_prometheus_computes() {
    let dir = support::temp_dir("realism-codes");
    let rule = "{ metric: error_rate, threshold: 20.1%, duration: 1m }";
    let p = test_plan(&dir, "codes", "50%", "2h", "{}", &[rule]);
    let p = p.to_str().unwrap();
    let trace = write(
        &dir,
        "codes.csv",
        &support::failing_canary_csv(0, 0, 600_000),
    );
    for semantics in ["prometheus3", "prometheus2"] {
        let replay = json(&[
            p,
            "--trace",
            trace.to_str().unwrap(),
            "--semantics",
            semantics,
        ]);
        let at = replay["verdict"]["at_ms"].as_i64().expect("rolled back");
        let caught = |per_code: bool| {
            let sc = write(
                &dir,
                "codes-scenarios.yaml",
                &format!(
                    "trials: 20\ntraffic: {{ requests_per_second: 200000, daily_amplitude: 0 }}\n\
                     baseline: {{ error_rate: 0% }}\nexposition: {{ per_code: {per_code}, failures_from: release_start, scrape_offset: 0s }}\n\
                     scenarios:\n  - name: healthy\n  - name: outage\n    fault: {{ kind: step, onset: 10m, error_rate: 100% }}\n"
                ),
            );
            let r = json(&[
                p,
                "--scenarios",
                sc.to_str().unwrap(),
                "--semantics",
                semantics,
            ]);
            let s = &r["scenarios"][1];
            assert_eq!(s["caught"]["count"], 20, "{s:#}");
            let median = &s["time_to_catch_seconds"]["median"];
            assert_eq!(median, &s["time_to_catch_seconds"]["p99"], "{s:#}");
            median.as_f64().unwrap()
        };
        let want = (at - 600_000) as f64 / 1000.0;
        assert_eq!(caught(true), want, "{semantics}: per code, as the replay");
        if semantics == "prometheus3" {
            assert_eq!(want, 120.0);
            assert_eq!(caught(false), 180.0, "one counter: a minute later");
        }
    }
}

/// Scrapes that do not line up with evaluations (`exposition.scrape_offset`): with every
/// scrape 7s before an evaluation, the Monte Carlo rolls back when the project's replay of
/// the same counters, scraped at those instants, does, under both semantics, for onsets
/// on and off the grid. (Prometheus 2.42's closed windows no longer hold a scrape at their
/// very start, so they hold as many samples as 3.x's.)
#[test]
fn offset_scrapes_roll_back_when_the_replay_of_offset_scrapes_does() {
    let dir = support::temp_dir("realism-offset");
    let p = test_plan(&dir, "offset", "50%", "2h", "{}", &[AVAILABILITY_2M]);
    let p = p.to_str().unwrap();
    // The release starts at a whole minute of Unix time, so the replay's evaluations (on
    // the minute) are the Monte Carlo's.
    let base: i64 = 1_714_521_600_000;
    let onsets = [2_400_000i64, 2_437_000, 2_438_000, 2_452_500];
    let mut scenarios = String::from(
        "trials: 20\ntraffic: { requests_per_second: 20000, daily_amplitude: 0 }\n\
         baseline: { error_rate: 0% }\nexposition: { scrape_offset: 7s, failures_from: release_start }\nscenarios:\n  - name: healthy\n",
    );
    for onset in onsets {
        scenarios += &format!(
            "  - name: at-{onset}\n    fault: {{ kind: step, onset: {onset}ms, error_rate: 100% }}\n"
        );
    }
    let sc = write(&dir, "offset-scenarios.yaml", &scenarios);
    for semantics in ["prometheus3", "prometheus2"] {
        let mc = json(&[
            p,
            "--scenarios",
            sc.to_str().unwrap(),
            "--semantics",
            semantics,
        ]);
        for onset in onsets {
            // Scrape j at j * 15s - 7s from the release's start, counting from the start.
            let csv = support::failing_canary_csv(base, 7_000, onset);
            let trace = write(&dir, &format!("offset-{onset}.csv"), &csv);
            let start = format!("{}", base / 1000);
            let replay = json(&[
                p,
                "--trace",
                trace.to_str().unwrap(),
                "--start",
                &start,
                "--semantics",
                semantics,
            ]);
            let at = replay["verdict"]["at_ms"].as_i64().expect("rolled back");
            let want = (at - onset) as f64 / 1000.0;
            let name = format!("at-{onset}");
            let s = scenario(&mc, &name);
            assert_eq!(s["caught"]["count"], 20, "{semantics} {name}: {s:#}");
            for q in ["median", "p99"] {
                assert_eq!(
                    s["time_to_catch_seconds"][q], want,
                    "{semantics} {name} {q}: the replay of offset scrapes rolls back {want} s after the onset"
                );
            }
        }
    }
}

/// The rollback probability of [`closed_form_run`] with `threshold` under error clustering
/// of coefficient of variation `c`, shared by `rho` with the stable version, and time
/// constant `tau_s`, by an independent model of the clusters: the canary's multiplier is
/// the product of two Gamma variates of mean 1 (squared coefficients of variation
/// `rho c^2`, the shared one, and `c^2 (1 - rho) / (1 + rho c^2)`, its own), each held for
/// an exponential time of mean `tau_s`, then drawn afresh. Given the multipliers' path, a
/// request at a uniform time in a window fails with the window's mean probability, so the
/// window's failures are a binomial at that mean, and the windows are independent: the
/// rule fires with the two-in-a-row probability of the windows' chances to be over the
/// threshold. Its mean over `paths` paths is returned, with its standard error.
fn clustered_rollback(threshold: f64, (c, rho): (f64, f64), tau_s: f64, paths: u32) -> (f64, f64) {
    use rand::SeedableRng;
    use rand_distr::{Distribution, Exp1, Gamma};
    let pois = Poisson::new(1.333_333_333_333_333_3 * 0.5 * 300.0).unwrap();
    let over = |p: f64| -> f64 {
        (1..800u64)
            .map(|n| (n, pois.pmf(n)))
            .filter(|&(_, w)| w > 1e-17)
            .map(|(n, w)| {
                let above = if p >= 1.0 {
                    1.0
                } else {
                    // errors / n > threshold  <=>  errors > floor(threshold * n)
                    let b = Binomial::new(p, n).unwrap();
                    1.0 - b.cdf((threshold * n as f64).floor() as u64)
                };
                w * above
            })
            .sum()
    };
    if c == 0.0 {
        return (support::two_in_a_row(over(0.05), 11), 0.0);
    }
    // `over` on a grid of probabilities, read between its points.
    const GRID: usize = 2000;
    let table: Vec<f64> = (0..=GRID).map(|i| over(i as f64 / GRID as f64)).collect();
    let over_at = |p: f64| {
        let x = p.clamp(0.0, 1.0) * GRID as f64;
        let i = (x.floor() as usize).min(GRID - 1);
        table[i] + (x - i as f64) * (table[i + 1] - table[i])
    };
    let (shared, own) = (rho * c * c, c * c * (1.0 - rho) / (1.0 + rho * c * c));
    let gammas: Vec<_> = [shared, own]
        .into_iter()
        .filter(|&v| v > 0.0)
        .map(|v| Gamma::new(1.0 / v, v).unwrap())
        .collect();
    let mut rng = rand::rngs::Xoshiro256PlusPlus::seed_from_u64(17);
    let (mut sum, mut sum2) = (0.0, 0.0);
    for _ in 0..paths {
        // The windows (5(k-1)m, 5k m], k = 1..=11: each one's mean failure probability.
        // Each factor's (multiplier, until when it holds).
        let mut t = 0.0f64;
        let mut factors: Vec<(f64, f64)> = gammas
            .iter()
            .map(|g| {
                (
                    g.sample(&mut rng),
                    tau_s * Distribution::<f64>::sample(&Exp1, &mut rng),
                )
            })
            .collect();
        let (mut under, mut over2) = (1.0, 0.0);
        for k in 1..=11 {
            let end = 300.0 * f64::from(k);
            let mut weighted = 0.0;
            while t < end {
                let b = factors.iter().map(|f| f.1).fold(end, f64::min);
                let g: f64 = factors.iter().map(|f| f.0).product();
                weighted += (b - t) * (0.05 * g).min(1.0);
                t = b;
                for (f, gamma) in factors.iter_mut().zip(&gammas) {
                    if f.1 <= t {
                        let e: f64 = Exp1.sample(&mut rng);
                        *f = (gamma.sample(&mut rng), t + e * tau_s);
                    }
                }
            }
            let q = over_at(weighted / 300.0);
            (under, over2) = ((under + over2) * (1.0 - q), under * q);
        }
        let fired = 1.0 - (under + over2);
        (sum, sum2) = (sum + fired, sum2 + fired * fired);
    }
    let mean = sum / f64::from(paths);
    let se = ((sum2 / f64::from(paths) - mean * mean) / f64::from(paths)).sqrt();
    (mean, se)
}

/// Clustered errors (`traffic.error_clustering`, `error_clustering_time_constant`): in the
/// case of [`closed_form_run`] (disjoint 5m windows, one per evaluation interval; a rule
/// firing on two windows over 6.31% errors in a row), with one counter of every request
/// and scrapes on the evaluations, so that a window's error rate is exactly its failures
/// over its requests: healthy releases roll back more often as failures cluster more, and
/// as clusters last longer, as often as [`clustered_rollback`]'s independent model of the
/// clusters says (within 4 standard errors of both).
#[test]
fn clustered_errors_roll_back_healthy_releases_as_often_as_an_independent_model_says() {
    let dir = support::temp_dir("realism-clustering");
    let threshold = 0.0631;
    let (p, _) = closed_form_run(&dir, &format!("threshold: {threshold}"));
    let trials = 4000u64;
    // Without clustering it is the independent closed form.
    let (independent, _) = closed_form_rollback(threshold, 1);
    assert!((clustered_rollback(threshold, (0.0, 0.5), 60.0, 1).0 - independent).abs() < 1e-12);
    let mut last: Option<(f64, f64)> = None;
    // The shared part (`error_clustering_shared`, 0.5 by default) changes the canary's
    // path too: a product of two jump processes is not one. The last setting has none.
    let settings = [
        (0.0, "1m", 0.5),
        (0.3, "1m", 0.5),
        (0.6, "1m", 0.5),
        (0.6, "10m", 0.5),
    ];
    for (i, (c, tau, rho)) in settings.into_iter().chain([(0.6, "10m", 0.0)]).enumerate() {
        let sc = write(
            &dir,
            "clustered.yaml",
            &format!(
                "trials: {trials}\ntraffic: {{ requests_per_second: 1.3333333333333333, daily_amplitude: 0, error_clustering: {c}, error_clustering_time_constant: {tau}, error_clustering_shared: {rho} }}\n\
                 exposition: {{ per_code: false, scrape_offset: 0s }}\nbaseline: {{ error_rate: 5% }}\nscenarios:\n  - name: healthy\n"
            ),
        );
        let r = json(&[
            p.to_str().unwrap(),
            "--scenarios",
            sc.to_str().unwrap(),
            "--semantics",
            "prometheus2",
            "--seed",
            "2024",
        ]);
        let traffic = &r["assumptions"]["traffic"];
        assert_eq!(traffic["error_clustering"], c);
        let tau_s = if tau == "1m" { 60.0 } else { 600.0 };
        let stated = &traffic["error_clustering_time_constant_seconds"];
        assert_eq!(stated.as_f64(), (c > 0.0).then_some(tau_s), "{traffic}");
        let stated = &traffic["error_clustering_shared"];
        assert_eq!(stated.as_f64(), (c > 0.0).then_some(rho), "{traffic}");
        let got = scenario(&r, "healthy")["false_rollback"]["probability"]
            .as_f64()
            .unwrap();
        let (want, model_se) = clustered_rollback(threshold, (c, rho), tau_s, 40_000);
        let se = (want * (1.0 - want) / trials as f64 + model_se * model_se).sqrt();
        eprintln!(
            "clustering {c}, {tau}, shared {rho}: model {want:.4} (±{model_se:.4}), Monte Carlo {got:.4} (±{se:.4})"
        );
        assert!(
            (got - want).abs() < 4.0 * se,
            "clustering {c}, {tau}, shared {rho}: healthy releases rolled back in {got} of the trials, {want} expected (±{se})"
        );
        if i >= settings.len() {
            continue;
        }
        if let Some((got_before, want_before)) = last {
            assert!(
                want > want_before + 0.03 && got > got_before,
                "clustering {c}, {tau}: the rate should rise, from {got_before} ({want_before} by the model) to {got} ({want})"
            );
        }
        last = Some((got, want));
    }
}

/// What the two versions share of the clustering (`error_clustering_shared`) cancels in a
/// rule comparing the canary with the stable version: with a canary and a stable serving
/// 3,000 requests each per 5m window, a rule on an error rate over 1.5x stable's almost
/// never fires on independent failures (the ratio's sampling noise is a tenth); under
/// clustering it fires on the canary's own clusters, the less the more the two share, and
/// not at all beyond sampling noise when they move as one.
#[test]
fn shared_clusters_cancel_in_a_rule_relative_to_stable() {
    let dir = support::temp_dir("realism-shared-clusters");
    let (p, _) = closed_form_run(&dir, "threshold: 1.5x stable");
    let trials = 1000u64;
    let rate = |clustering: &str| {
        let sc = write(
            &dir,
            "shared.yaml",
            &format!(
                "trials: {trials}\ntraffic: {{ requests_per_second: 20, daily_amplitude: 0, {clustering} }}\n\
                 baseline: {{ error_rate: 5% }}\nscenarios:\n  - name: healthy\n"
            ),
        );
        let r = json(&[p.to_str().unwrap(), "--scenarios", sc.to_str().unwrap()]);
        let got = scenario(&r, "healthy")["false_rollback"]["probability"]
            .as_f64()
            .unwrap();
        eprintln!("{clustering}: {got}");
        got
    };
    let independent = rate("error_clustering: 0");
    let [apart, half, as_one] = [0.0, 0.5, 1.0].map(|rho| {
        rate(&format!(
            "error_clustering: 0.6, error_clustering_shared: {rho}"
        ))
    });
    let se = |p: f64| {
        (p * (1.0 - p) / trials as f64)
            .sqrt()
            .max(0.5 / trials as f64)
    };
    assert!(independent <= 0.01, "independent failures: {independent}");
    assert!(
        apart > half + 4.0 * se(apart).hypot(se(half)),
        "nothing shared {apart}, half {half}"
    );
    assert!(
        half > as_one + 4.0 * se(half).hypot(se(as_one)),
        "half shared {half}, all {as_one}"
    );
    assert!(as_one <= 0.01, "all shared: {as_one}");
}

/// The scrape offset drawn per trial (`scrape_offset: random`, the default) is the average
/// over the eight fixed offsets it stratifies: a total failure's time to catch, the same
/// in every trial at a fixed offset, is in a run drawn per trial each class's time in
/// equal shares (trial `t` at the midpoint of stratum `t mod 8` of the scrape interval).
#[test]
fn a_per_trial_offset_mixes_the_fixed_offsets_times_to_catch() {
    let dir = support::temp_dir("realism-random-offset");
    let p = test_plan(&dir, "random-offset", "50%", "2h", "{}", &[AVAILABILITY_2M]);
    let p = p.to_str().unwrap();
    let file = |name: &str, trials: u64, offset: &str| {
        let text = format!(
            "trials: {trials}\ntraffic: {{ requests_per_second: 20000, daily_amplitude: 0 }}\n\
             baseline: {{ error_rate: 0% }}\nexposition: {{ scrape_offset: {offset} }}\nscenarios:\n  \
             - name: healthy\n  - name: failure\n    fault: {{ kind: step, onset: 2437s, error_rate: 100% }}\n"
        );
        write(&dir, name, &text)
    };
    let catch = |report: &Value| -> Vec<f64> {
        scenario(report, "failure")["time_to_catch_cdf"]
            .as_array()
            .expect("a cdf")
            .iter()
            .map(|c| c["seconds"].as_f64().unwrap())
            .collect()
    };
    // Per class: the time to catch at its offset, fixed.
    let mut times = Vec::new();
    for k in 0..8i64 {
        let offset = (2 * k + 1) * 15_000 / 16;
        let sc = file(&format!("fixed-{k}.yaml"), 4, &format!("{offset}ms"));
        let mc = json(&[p, "--scenarios", sc.to_str().unwrap()]);
        let t = catch(&mc);
        assert!(t.iter().all(|&s| s == t[0]), "{offset} ms: {t:?}");
        times.push(t[0]);
    }
    let trials = 160;
    let sc = file("random.yaml", trials, "random");
    let mc = json(&[p, "--scenarios", sc.to_str().unwrap()]);
    let s = scenario(&mc, "failure");
    assert_eq!(s["caught"]["count"], trials, "{s:#}");
    assert_eq!(
        mc["assumptions"]["exposition"]["scrape_offset"],
        "per trial"
    );
    assert_eq!(mc["assumptions"]["exposition"]["offset_classes"], 8);
    // Twenty trials per class: the nearest-rank quantiles of the eight times, twenty each.
    let mut mixed: Vec<f64> = times.iter().flat_map(|&t| [t; 20]).collect();
    mixed.sort_by(f64::total_cmp);
    let want: Vec<f64> = (1..=20)
        .map(|i| {
            let rank = (f64::from(i) / 20.0 * trials as f64).ceil() as usize;
            mixed[rank.max(1) - 1]
        })
        .collect();
    assert_eq!(catch(&mc), want, "the fixed offsets' times: {times:?}");
}

/// With the scrape offset drawn per trial no scrape falls on a window's start, so
/// Prometheus 2.42's closed windows hold the samples 3.x's hold and both give the same
/// figures, every one of them, as real 2.x users see them; only an aligned grid (`0s`)
/// tells them apart (whose rollback rates may still coincide: other figures differ).
#[test]
fn a_per_trial_offset_gives_prometheus2_the_figures_of_3x() {
    let dir = support::temp_dir("realism-random-offset-p2");
    let lawsker = std::fs::read_to_string(root().join("simulations/lawsker.yaml")).unwrap();
    let healthy = |offset: &str| {
        let head = lawsker.split("scenarios:").next().unwrap();
        let text = format!(
            "{}exposition: {{ scrape_offset: {offset} }}\nscenarios:\n  - name: healthy\n",
            head.replace("trials: 2000", "trials: 400")
        );
        write(&dir, &format!("healthy-{offset}.yaml"), &text)
    };
    let figures = |offset: &str, semantics: &str| {
        let sc = healthy(offset);
        let mc = json(&[
            "plans/lawsker.yaml",
            "--scenarios",
            sc.to_str().unwrap(),
            "--semantics",
            semantics,
        ]);
        scenario(&mc, "healthy").clone()
    };
    assert_eq!(
        figures("random", "prometheus2"),
        figures("random", "prometheus3")
    );
    assert_ne!(figures("0s", "prometheus2"), figures("0s", "prometheus3"));
}
