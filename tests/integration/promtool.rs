//! The generated Prometheus rules and their unit tests, run through the real `promtool`
//! (2.42 here): every rules file passes `promtool check rules`, every generated test file
//! passes `promtool test rules`, and the tests are sharp: moving an expected firing one
//! evaluation earlier, or expecting silence at the firing evaluation, makes promtool fail.

use crate::support::*;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Runs promtool with `args` in `dir`; returns (success, stdout + stderr).
pub(crate) fn promtool(bin: &Path, dir: &Path, args: &[&str]) -> (bool, String) {
    let out = Command::new(bin)
        .args(args)
        .current_dir(dir)
        .output()
        .expect("promtool runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// The files of `dir` whose name ends with `suffix`, sorted.
fn files(dir: &Path, suffix: &str) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .expect("prometheus/ exists")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(suffix))
        .collect();
    v.sort();
    v
}

/// Checks and tests every rules file under a rendered plan's `prometheus/`.
fn check_and_test(bin: &Path, plan_dir: &Path, label: &str) {
    let dir = plan_dir.join("prometheus");
    let rules = files(&dir, ".rules.yml");
    let tests = files(&dir, ".test.yml");
    assert!(!rules.is_empty(), "{label}: no rules files");
    assert_eq!(
        rules.len(),
        tests.len(),
        "{label}: one test file per rules file"
    );
    for f in &rules {
        let (ok, out) = promtool(bin, &dir, &["check", "rules", f]);
        assert!(ok, "{label}: promtool check rules {f}:\n{out}");
    }
    for f in &tests {
        let text = std::fs::read_to_string(dir.join(f)).unwrap();
        assert!(
            !text.contains("not tested"),
            "{label}: {f} leaves rules untested:\n{text}"
        );
        let (ok, out) = promtool(bin, &dir, &["test", "rules", f]);
        assert!(ok, "{label}: promtool test rules {f}:\n{out}");
        assert!(out.contains("SUCCESS"), "{label}: {f}:\n{out}");
    }
}

#[test]
fn promtool_checks_and_passes_every_plan() {
    let Some(bin) = tool("promtool") else { return };
    for p in all_plans() {
        check_and_test(&bin, &render(&p), &p);
    }
}

#[test]
fn rules_files_differ_between_phases_only_by_phase() {
    let dir = render("plans/lawsker.yaml").join("prometheus");
    let alpha = std::fs::read_to_string(dir.join("alpha.rules.yml")).unwrap();
    let beta = std::fs::read_to_string(dir.join("beta.rules.yml")).unwrap();
    assert_ne!(alpha, beta);
    let as_beta = alpha
        .replace("phase: alpha", "phase: beta")
        .replace("phase `alpha`", "phase `beta`")
        .replace("alpha.rules.yml", "beta.rules.yml")
        .replace("alpha.test.yml", "beta.test.yml");
    assert_eq!(as_beta, beta);
    assert!(!dir.join("rollback.rules.yml").exists());
    assert!(!dir.join("promotion.rules.yml").exists());
}

/// Milliseconds of a promtool duration (`0s`, `16m`, `1h30s`).
fn ms(s: &str) -> u64 {
    plan::model::parse_millis(s).unwrap_or_else(|e| panic!("{e}"))
}

fn dur(ms: u64) -> String {
    plan::model::Duration::from_millis(ms).map_or_else(|| "0s".into(), |d| d.to_string())
}

/// Writes a test file holding only `group` (a copy of one generated test group with one
/// change) and runs promtool on it.
fn run_group(
    bin: &Path,
    dir: &Path,
    file: &yaml_serde::Value,
    group: yaml_serde::Value,
) -> (bool, String) {
    let mut f = file.clone();
    f["tests"] = yaml_serde::Value::Sequence(vec![group]);
    let path = dir.join("mutant.test.yml");
    std::fs::write(&path, yaml_serde::to_string(&f).unwrap()).unwrap();
    promtool(bin, dir, &["test", "rules", "mutant.test.yml"])
}

#[test]
fn generated_tests_fail_when_the_firing_time_moves() {
    let Some(bin) = tool("promtool") else { return };
    let dir = render("plans/lawsker.yaml").join("prometheus");
    let text = std::fs::read_to_string(dir.join("alpha.test.yml")).unwrap();
    let file: yaml_serde::Value = yaml_serde::from_str(&text).unwrap();
    let ei = ms(file["evaluation_interval"].as_str().unwrap());
    let groups = file["tests"].as_sequence().unwrap().clone();
    let mut checked = 0;
    for g in &groups {
        let cases = g["alert_rule_test"].as_sequence().unwrap();
        let firing = cases
            .iter()
            .position(|c| !c["exp_alerts"].as_sequence().unwrap().is_empty());
        let Some(fi) = firing else { continue };
        let alert = cases[fi]["alertname"].as_str().unwrap().to_string();
        let fire = ms(cases[fi]["eval_time"].as_str().unwrap());
        assert!(fire >= ei, "{alert} fires at {fire}ms");
        let quiet = cases
            .iter()
            .position(|c| c["exp_alerts"].as_sequence().unwrap().is_empty())
            .expect("a no-alert case before the firing one");
        assert_eq!(
            ms(cases[quiet]["eval_time"].as_str().unwrap()),
            fire - ei,
            "{alert}: the quiet case is one evaluation before the firing one"
        );

        // The firing expected one evaluation earlier: the alert is only pending then.
        let mut early = g.clone();
        early["alert_rule_test"][fi]["eval_time"] = dur(fire - ei).into();
        let (ok, out) = run_group(&bin, &dir, &file, early);
        assert!(
            !ok,
            "{alert}: promtool accepted a firing one evaluation early"
        );
        assert!(
            out.contains(&format!("alertname: {alert}, time: {}", dur(fire - ei))),
            "{alert}: unexpected failure:\n{out}"
        );

        // Silence expected at the firing evaluation: the alert fires then.
        let mut late = g.clone();
        late["alert_rule_test"][quiet]["eval_time"] = dur(fire).into();
        let (ok, out) = run_group(&bin, &dir, &file, late);
        assert!(
            !ok,
            "{alert}: promtool accepted no alert at the firing evaluation"
        );
        assert!(
            out.contains(&format!("alertname: {alert}")),
            "{alert}:\n{out}"
        );
        checked += 1;
    }
    let rules = file["tests"]
        .as_sequence()
        .unwrap()
        .iter()
        .filter(|t| t["name"].as_str().is_some_and(|n| n.starts_with("Canary")))
        .count();
    assert_eq!(checked, rules, "every alert's test was mutated");
    assert!(checked >= 21, "lawsker has 21 alerts, {checked} checked");
}

/// A plan exercising what lawsker does not: a 30s evaluation interval, a 2m window,
/// relative thresholds on built-in metrics, throughput, `>=`/`<=` gates, a runbook URL with
/// a fragment, and template braces in a metric's description.
const VARIANT: &str = r##"name: checkout
release: { from: "2.3.0", to: "2.4.0" }
service: { name: checkout-api, image: shop/checkout, port: 8080, replicas: 2 }
routing: { listen: 80, sticky: { cookie: uid } }
monitoring:
  evaluation_interval: 30s
  window: 2m
  runbook_url: https://wiki.example.com/runbooks/checkout#top
phases:
  - { name: one, traffic: 10%, duration: 1h }
  - { name: two, traffic: 100% }
metrics:
  queue_delay:
    description: "Queue delay {{ not a template }} per job, {{ template \"x\" . }} {{$value}} $value {{- end }}"
    query: max(queue_delay_seconds{service="$service",track="$track"})
    unit: seconds
    bad: high
gates:
  error_rate: "<= 2x stable"
  throughput: "> 5"
  response_time_p95: "<= 800ms"
  availability: ">= 99%"
  queue_delay: "< 2s"
rollback_conditions:
  - { metric: error_rate, threshold: 0.2, duration: 3m }
  - { metric: queue_delay, threshold: 10s, duration: 90s }
  - { metric: cpu_usage, threshold: "3x stable", duration: 2m }
notifications:
  slack: { channel: "#checkout", api_url_file: /etc/alertmanager/slack }
"##;

#[test]
fn promtool_passes_a_variant_plan() {
    let Some(bin) = tool("promtool") else { return };
    let dir: PathBuf = temp_dir("promtool-variant");
    std::fs::write(dir.join("checkout.yaml"), VARIANT).unwrap();
    plan()
        .args(["render", "checkout.yaml", "--out", "out"])
        .cwd(&dir)
        .expect(0);
    let out = dir.join("out/checkout");
    check_and_test(&bin, &out, "variant");
    let rules = std::fs::read_to_string(out.join("prometheus/one.rules.yml")).unwrap();
    assert!(rules.contains("https://wiki.example.com/runbooks/checkout#gate-error_rate"));
    assert!(rules.contains("ignoring(track) group_left() (2 * service_track:error_rate"));
    // Prometheus templates annotations: the braces reach it escaped as a template literal.
    let doc: yaml_serde::Value = yaml_serde::from_str(&rules).unwrap();
    let escaped = doc["groups"]
        .as_sequence()
        .unwrap()
        .iter()
        .flat_map(|g| g["rules"].as_sequence().unwrap())
        .filter_map(|r| r["annotations"]["description"].as_str())
        .any(|d| d.contains(r#"{{"{{"}} not a template }}"#));
    assert!(escaped, "{rules}");
}

/// The value formats of the alerts' summaries (`plan::render::humanize`) print what
/// Prometheus' template functions print, for awkward values too: ties, rounding across a
/// power of ten, prefixes at their bounds, tiny and huge numbers, negatives, infinities.
/// One alerting rule per value (`vector(v)`, firing at once), whose summary is the format's
/// template; promtool compares the rendered summary with the text `expand` predicts.
#[test]
fn value_formats_print_what_prometheus_prints() {
    use plan::render::humanize::ValueFormat;
    let Some(bin) = tool("promtool") else { return };
    let formats = [
        ValueFormat::Percentage,
        ValueFormat::Milliseconds,
        ValueFormat::Seconds,
        ValueFormat::Bytes,
        ValueFormat::Number,
        ValueFormat::PerSecond,
    ];
    let values = [
        0.0,
        1.0,
        0.19999999999999998,
        0.9800000000000001,
        0.995,
        0.99995,
        0.123456,
        0.5,
        1.5,
        2.5,
        12.5,
        59.99,
        90.0,
        999.5,
        1023.0,
        1024.0,
        1234.5,
        9999.5,
        12345.0,
        86461.5,
        1234567.0,
        536870912.0,
        0.0001234,
        0.00001234,
        1e-9,
        1e30,
        -2.71239,
        -61.0,
        f64::INFINITY,
        f64::NEG_INFINITY,
    ];
    let mut rules = String::from("groups:\n  - name: formats\n    rules:\n");
    let mut tests = String::from(
        "rule_files: [formats.rules.yml]\nevaluation_interval: 1m\ntests:\n  - interval: 1m\n    \
         input_series: []\n    alert_rule_test:\n",
    );
    let q = |s: &str| serde_json::to_string(s).unwrap();
    for (fi, f) in formats.iter().enumerate() {
        for (vi, v) in values.iter().enumerate() {
            let name = format!("F{fi}V{vi}");
            let lit = if v.is_infinite() {
                if *v > 0.0 {
                    "+Inf".into()
                } else {
                    "-Inf".into()
                }
            } else {
                format!("{v:e}")
            };
            rules.push_str(&format!(
                "      - alert: {name}\n        expr: vector({lit})\n        annotations:\n          \
                 summary: {}\n",
                q(f.template())
            ));
            tests.push_str(&format!(
                "      - eval_time: 0m\n        alertname: {name}\n        exp_alerts:\n          \
                 - exp_labels: {{}}\n            exp_annotations:\n              summary: {}\n",
                q(&f.expand(*v))
            ));
        }
    }
    let dir = temp_dir("value-formats");
    std::fs::write(dir.join("formats.rules.yml"), rules).unwrap();
    std::fs::write(dir.join("formats.test.yml"), tests).unwrap();
    let (ok, out) = promtool(&bin, &dir, &["test", "rules", "formats.test.yml"]);
    assert!(ok && out.contains("SUCCESS"), "{out}");
}

/// `duration: 0s` is Prometheus' `for: 0`: the rendered alert has no `for`, and promtool
/// sees it fire at the first evaluation where its condition holds. The generated test
/// pins the recorded error ratio below the threshold one evaluation before the firing one
/// and above it at the firing one, so "fires at once" is checked, not assumed.
#[test]
fn a_rollback_rule_with_for_zero_fires_at_the_first_evaluation_past_its_threshold() {
    let Some(bin) = tool("promtool") else { return };
    let dir: PathBuf = temp_dir("promtool-for-zero");
    let text = std::fs::read_to_string(root().join("plans/minimal.yaml"))
        .unwrap()
        .replace("    duration: 5m", "    duration: 0s");
    assert!(text.contains("duration: 0s"));
    std::fs::write(dir.join("minimal.yaml"), text).unwrap();
    plan()
        .args(["render", "minimal.yaml", "--out", "out"])
        .cwd(&dir)
        .expect(0);
    let out = dir.join("out/minimal");
    check_and_test(&bin, &out, "for: 0");
    let rules = std::fs::read_to_string(out.join("prometheus/canary.rules.yml")).unwrap();
    let doc: yaml_serde::Value = yaml_serde::from_str(&rules).unwrap();
    let alert = doc["groups"]
        .as_sequence()
        .unwrap()
        .iter()
        .flat_map(|g| g["rules"].as_sequence().unwrap())
        .find(|r| r["alert"].as_str() == Some("CanaryRollbackErrorRate"))
        .expect("the rollback alert")
        .clone();
    assert!(alert.get("for").is_none(), "{alert:?}");
    let test = std::fs::read_to_string(out.join("prometheus/canary.test.yml")).unwrap();
    let file: yaml_serde::Value = yaml_serde::from_str(&test).unwrap();
    let group = file["tests"]
        .as_sequence()
        .unwrap()
        .iter()
        .find(|g| {
            g["name"]
                .as_str()
                .is_some_and(|n| n.starts_with("CanaryRollbackErrorRate:"))
        })
        .expect("the rollback rule's test")
        .clone();
    let cases = group["alert_rule_test"].as_sequence().unwrap();
    let at = |c: &yaml_serde::Value| ms(c["eval_time"].as_str().unwrap());
    let fire = cases
        .iter()
        .find(|c| !c["exp_alerts"].as_sequence().unwrap().is_empty())
        .map(at)
        .expect("a firing case");
    let quiet = cases
        .iter()
        .find(|c| c["exp_alerts"].as_sequence().unwrap().is_empty())
        .map(at)
        .expect("a quiet case");
    assert_eq!(quiet + 60_000, fire, "quiet one evaluation before firing");
    let value_at = |t: u64| {
        group["promql_expr_test"]
            .as_sequence()
            .unwrap()
            .iter()
            .find(|e| ms(e["eval_time"].as_str().unwrap()) == t)
            .map(|e| e["exp_samples"][0]["value"].as_f64().unwrap())
            .unwrap_or_else(|| panic!("the error ratio at {t}ms"))
    };
    assert!(value_at(quiet) <= 0.05, "below the threshold while quiet");
    assert!(value_at(fire) > 0.05, "past the threshold when it fires");
}
