//! `plan simulate A B`: two plans on the same trials, every figure as B - A over the pairs.

use crate::support::{plan, root, temp_dir, write};
use serde_json::Value;

fn compare(a: &str, b: &str, extra: &[&str]) -> Value {
    let out = plan()
        .args(["simulate", a, b, "--format", "json", "--trials", "60"])
        .args(extra)
        .expect(0);
    serde_json::from_str(&out.stdout).unwrap()
}

/// The comparison for people.
fn compare_text(a: &str, b: &str, extra: &[&str]) -> String {
    plan()
        .args(["simulate", a, b, "--trials", "60"])
        .args(extra)
        .expect(0)
        .stdout
}

fn count(v: &Value) -> u64 {
    v.as_u64().unwrap()
}

#[test]
fn a_plan_against_itself_differs_in_no_trial() {
    let r = compare("plans/lawsker.yaml", "plans/lawsker.yaml", &[]);
    assert_eq!(r["common_model"], true);
    for sc in r["scenarios"].as_array().unwrap() {
        for figure in ["rolled_back", "false_rollback", "caught", "escaped"] {
            let f = &sc[figure];
            if f.is_null() {
                continue;
            }
            assert_eq!(count(&f["only_a"]) + count(&f["only_b"]), 0, "{sc}");
            assert_eq!(f["difference"], 0.0, "{sc}");
        }
        for figure in ["time_to_catch_seconds", "exposed_requests"] {
            if !sc[figure].is_null() {
                assert_eq!(sc[figure]["difference"], 0.0, "{sc}");
            }
        }
    }
    // Each side's own report is the plan's `plan simulate` report, number for number.
    let own: Value = serde_json::from_str(
        &plan()
            .args([
                "simulate",
                "plans/lawsker.yaml",
                "--format",
                "json",
                "--trials",
                "60",
            ])
            .expect(0)
            .stdout,
    )
    .unwrap();
    assert_eq!(r["reports"][0], own);
    assert_eq!(r["reports"][1], own);
}

#[test]
fn a_looser_rule_rolls_back_only_where_the_plan_did() {
    // Lawsker's availability rule, loosened from 99% to 95%: on the same trials, no healthy
    // release rolls back that the plan as written left alone, and the pairs show it.
    let dir = temp_dir("compare-looser");
    let text = std::fs::read_to_string(root().join("plans/lawsker.yaml")).unwrap();
    let looser = text
        .replace("threshold: 0.99       # 99%", "threshold: 0.95")
        // Another description is the same metric: the draws stay common.
        .replace("(转化率)", "(conversion)");
    assert_ne!(looser, text, "the rule to loosen is in the plan");
    let scenarios = root().join("simulations/lawsker.yaml");
    let b = write(&dir, "looser.yaml", &looser);
    let r = compare(
        "plans/lawsker.yaml",
        b.to_str().unwrap(),
        &["--scenarios", scenarios.to_str().unwrap()],
    );
    assert_eq!(r["common_model"], true);
    assert_eq!(r["common_draws"], true);
    let healthy = &r["scenarios"][0];
    assert_eq!(healthy["faulty"], false);
    let rb = &healthy["rolled_back"];
    assert_eq!(count(&rb["only_b"]), 0, "{rb}");
    assert!(count(&rb["only_a"]) > 10, "{rb}");
    let [lo, hi] = [
        rb["ci95"][0].as_f64().unwrap(),
        rb["ci95"][1].as_f64().unwrap(),
    ];
    let d = rb["difference"].as_f64().unwrap();
    assert!(lo <= d && d <= hi && hi < 0.0, "{rb}");
    // Each side's figures are its own report's.
    for (side, report) in [("a", 0), ("b", 1)] {
        let own = &r["reports"][report]["scenarios"][0]["false_rollback"]["count"];
        assert_eq!(&rb[side]["count"], own, "{side}");
    }
    // People read the same figures.
    let text = compare_text(
        "plans/lawsker.yaml",
        b.to_str().unwrap(),
        &["--scenarios", scenarios.to_str().unwrap()],
    );
    assert!(text.contains("false rollback"), "{text}");
    assert!(
        text.contains(&format!("({} only in A, 0 only in B)", rb["only_a"])),
        "{text}"
    );
}

/// A plan that runs twice the replicas draws its memory and DB connections from twice the
/// instances (`exposition.instances: replicas`), so its trials take other numbers: the
/// pairs are paired by seed only. With one instance per track they are common again.
#[test]
fn other_replicas_draw_other_gauges() {
    let dir = temp_dir("compare-replicas");
    let text = std::fs::read_to_string(root().join("plans/lawsker.yaml")).unwrap();
    let doubled = text.replace("replicas: 4 ", "replicas: 8 ");
    assert_ne!(doubled, text, "the replicas are in the plan");
    let b = write(&dir, "doubled.yaml", &doubled);
    let scenarios = std::fs::read_to_string(root().join("simulations/lawsker.yaml")).unwrap();
    for (instances, common) in [("replicas", false), ("one", true)] {
        let file = write(
            &dir,
            "scenarios.yaml",
            &format!("exposition: {{ instances: {instances} }}\n{scenarios}"),
        );
        let r = compare(
            "plans/lawsker.yaml",
            b.to_str().unwrap(),
            &["--scenarios", file.to_str().unwrap()],
        );
        assert_eq!(r["common_model"], true, "{instances}");
        assert_eq!(r["common_draws"], common, "{instances}");
    }
}

#[test]
fn plans_on_other_scenarios_are_not_compared() {
    // Lawsker names its scenario file; checkout runs the built-in ones.
    let out = plan()
        .args([
            "simulate",
            "plans/lawsker.yaml",
            "plans/checkout.yaml",
            "--trials",
            "5",
        ])
        .expect(2);
    assert!(
        out.stderr
            .contains("a comparison runs both plans on the same scenarios")
            && out.stderr.contains("--scenarios FILE"),
        "{}",
        out.stderr
    );
    assert!(out.stdout.is_empty());
    // On one scenario file, plans with other metrics are compared, each on its own model,
    // and the report says so.
    let dir = temp_dir("compare-metrics");
    let text = std::fs::read_to_string(root().join("plans/lawsker.yaml")).unwrap();
    let other = text.replace(
        "business_flow_completed_total{service=\"$service\",track=\"$track\"}[$window]",
        "business_flow_completed_total{service=\"$service\",track=\"$track\"}[10m]",
    );
    assert_ne!(other, text);
    let b = write(&dir, "other.yaml", &other);
    let scenarios = root().join("simulations/lawsker.yaml");
    let r = compare(
        "plans/lawsker.yaml",
        b.to_str().unwrap(),
        &["--scenarios", scenarios.to_str().unwrap()],
    );
    assert_eq!(r["common_model"], false);
    let text = compare_text(
        "plans/lawsker.yaml",
        b.to_str().unwrap(),
        &["--scenarios", scenarios.to_str().unwrap()],
    );
    assert!(text.contains("each is drawn by its own model"), "{text}");
    plan()
        .args([
            "simulate",
            "plans/lawsker.yaml",
            "plans/lawsker.yaml",
            "--shard",
            "1/2",
        ])
        .expect(2);
}
