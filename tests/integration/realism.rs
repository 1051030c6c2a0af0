//! The Monte Carlo's realism options (issue 17): each moves the numbers the way production
//! would, by the right amount where a closed form exists, and with every option at zero the
//! simulator prints what it printed before the options existed.

use crate::support::{self, plan, root, write};
use serde_json::Value;
use statrs::function::erf::erfc;

fn json(args: &[&str]) -> Value {
    let done = plan()
        .arg("simulate")
        .args(args)
        .args(["--format", "json"])
        .expect(0);
    serde_json::from_str(&done.stdout).expect("the report is JSON")
}

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
