//! `plan simulate --shard K/N` and `plan merge`: N shards merged give the unsharded run's
//! report byte for byte, and shards that are not the slices of one run are refused.

use crate::support::{plan, temp_dir, write};
use serde_json::Value;
use std::path::{Path, PathBuf};

/// The shards of a run of `args`, written to `dir`; their paths, last shard first (the
/// merge does not depend on the order).
fn shards(dir: &Path, args: &[&str], count: u64) -> Vec<PathBuf> {
    let mut paths: Vec<PathBuf> = (1..=count)
        .map(|k| {
            let out = plan()
                .arg("simulate")
                .args(args)
                .args(["--shard", &format!("{k}/{count}")])
                // Shards may run with any number of threads.
                .args(["--jobs", &(1 + k % 2).to_string()])
                .expect(0);
            write(dir, &format!("shard-{k}-of-{count}.json"), &out.stdout)
        })
        .collect();
    paths.reverse();
    paths
}

fn merge(paths: &[PathBuf], format: &str) -> String {
    plan()
        .arg("merge")
        .args(paths)
        .args(["--format", format])
        .expect(0)
        .stdout
}

#[test]
fn merged_shards_give_the_unsharded_report() {
    let dir = temp_dir("shard-same");
    let runs: [&[&str]; 3] = [
        // Twins from the file's healthy scenario; gates; custom metrics.
        &["plans/lawsker.yaml", "--trials", "23"],
        // Twins from an extra fault-free pass (every scenario is faulty), Prometheus 2.
        &[
            "plans/checkout.yaml",
            "--scenarios",
            "simulations/checkout.yaml",
            "--trials",
            "17",
            "--semantics",
            "prometheus2",
        ],
        &[
            "plans/admin-console.yaml",
            "--scenarios",
            "simulations/fault-timing.yaml",
            "--trials",
            "5",
            "--seed",
            "9",
        ],
    ];
    for args in runs {
        let whole_json = plan()
            .arg("simulate")
            .args(args)
            .args(["--format", "json"])
            .expect(0)
            .stdout;
        let whole_text = plan().arg("simulate").args(args).expect(0).stdout;
        // 7 shards of 5 trials: some slices are empty.
        for count in [1, 2, 3, 7] {
            let paths = shards(&dir, args, count);
            assert_eq!(
                merge(&paths, "json"),
                whole_json,
                "{args:?} in {count} shards"
            );
            assert_eq!(
                merge(&paths, "human"),
                whole_text,
                "{args:?} in {count} shards"
            );
        }
    }
}

/// `plan merge --report` draws the page `plan simulate --report` draws for the run
/// unsharded, byte for byte, and prints the same report beside it.
#[test]
fn merged_shards_draw_the_unsharded_page() {
    let dir = temp_dir("shard-page");
    let args = ["plans/lawsker.yaml", "--trials", "23"];
    let whole = dir.join("whole.html");
    let whole_text = plan()
        .arg("simulate")
        .args(args)
        .arg("--report")
        .arg(&whole)
        .expect(0)
        .stdout;
    let paths = shards(&dir, &args, 3);
    let merged = dir.join("merged.html");
    let merged_text = plan()
        .arg("merge")
        .args(&paths)
        .arg("--report")
        .arg(&merged)
        .expect(0)
        .stdout;
    assert_eq!(merged_text, whole_text);
    let page = std::fs::read(&merged).expect("the merge wrote the page");
    assert!(page.starts_with(b"<!DOCTYPE html>"), "not a page");
    assert!(
        page == std::fs::read(&whole).unwrap(),
        "the merged run's page differs from the unsharded run's"
    );
}

#[test]
fn shards_of_another_run_are_refused() {
    let dir = temp_dir("shard-refused");
    let base = ["plans/lawsker.yaml", "--trials", "6"];
    let three = shards(&dir, &base, 3);
    let [s3, s2, s1] = [&three[0], &three[1], &three[2]];
    let refused = |paths: &[&Path], code: i32, says: &[&str]| {
        let out = plan().arg("merge").args(paths).expect(code);
        for s in says {
            assert!(out.stderr.contains(s), "{s:?} not in\n{}", out.stderr);
        }
        assert!(out.stdout.is_empty(), "{}", out.stdout);
    };
    let other = |name: &str, args: &[&str]| {
        let out = plan()
            .arg("simulate")
            .args(args)
            .args(["--shard", "2/3"])
            .expect(0);
        write(&dir, name, &out.stdout)
    };
    let seed = other(
        "seed.json",
        &["plans/lawsker.yaml", "--trials", "6", "--seed", "5"],
    );
    refused(&[s1, &seed, s3], 1, &["seed.json", "its seed differs"]);
    let trials = other("trials.json", &["plans/lawsker.yaml", "--trials", "7"]);
    refused(&[s1, &trials, s3], 1, &["its trial count differs"]);
    let checkout = other("checkout.json", &["plans/checkout.yaml", "--trials", "6"]);
    refused(
        &[s1, &checkout, s3],
        1,
        &["checkout.json", "its plan differs"],
    );
    let semantics = other(
        "semantics.json",
        &[
            "plans/lawsker.yaml",
            "--trials",
            "6",
            "--semantics",
            "prometheus2",
        ],
    );
    refused(&[s1, &semantics, s3], 1, &["its semantics differs"]);
    refused(&[s1, s3], 1, &["shard 2/3 is missing"]);
    refused(&[s1, s2, s2, s3], 1, &["shard 2/3 is given twice"]);
    let four = shards(&dir, &base, 4);
    refused(&[s1, s2, s3, &four[0]], 1, &["its shard count differs"]);

    // Another build of plan: another version string.
    let text = std::fs::read_to_string(s2).unwrap();
    let version = serde_json::from_str::<Value>(&text).unwrap()["plan_version"]
        .as_str()
        .unwrap()
        .to_string();
    let older = write(
        &dir,
        "older.json",
        &text.replace(&version, "0.0.1+0000000000000000"),
    );
    refused(
        &[s1, &older, s3],
        1,
        &[
            "older.json: written by plan 0.0.1+0000000000000000",
            &version,
        ],
    );
    // A plan edited inside a shard is another plan.
    let edited = write(
        &dir,
        "edited.json",
        &text.replace("name: lawsker", "name: lawsker2"),
    );
    refused(&[s1, &edited, s3], 1, &["edited.json", "its plan differs"]);
    // Cut short, not a shard, missing.
    let cut = write(&dir, "cut.json", &text[..text.len() / 2]);
    refused(&[s1, &cut, s3], 1, &["cut.json:", "was it cut short?"]);
    let report = plan()
        .args([
            "simulate",
            "plans/lawsker.yaml",
            "--trials",
            "6",
            "--format",
            "json",
        ])
        .expect(0)
        .stdout;
    let report = write(&dir, "report.json", &report);
    refused(&[&report], 1, &["report.json: not a shard"]);
    refused(
        &[&dir.join("absent.json")],
        2,
        &["absent.json: cannot read the shard"],
    );
    // Tallies that cannot be a count of the shard's trials of its plan.
    let damaged = write(
        &dir,
        "damaged.json",
        &text.replacen("\"trials\": 2,", "\"trials\": 3,", 1),
    );
    refused(
        &[s1, &damaged, s3],
        1,
        &["damaged.json: a damaged shard", "rerun that shard"],
    );
    type Edit = fn(&mut Value);
    let edits: [(&str, &str, Edit); 5] = [
        ("caught.json", "a count is above its trials", |v| {
            v["results"][1]["tally"]["caught"] = (1u64 << 63).into();
        }),
        ("query.json", "its failed query is not", |v| {
            v["results"][1]["tally"]["query_failure"] =
                serde_json::json!([2, {"metric": 999, "track": "canary", "at": 0, "message": "x"}]);
        }),
        (
            "unit.json",
            "its scenarios are not its scenario file's",
            |v| {
                v["results"][1]["detect_unit_ms"] = (1u64 << 62).into();
            },
        ),
        ("twins.json", "its healthy twins are not", |v| {
            v["twins"] = Value::Null;
        }),
        (
            "served.json",
            "a total is beyond what its trials can serve",
            |v| {
                v["results"][1]["tally"]["exposed_requests"] = (1u64 << 63).into();
            },
        ),
    ];
    for (name, says, change) in edits {
        let mut v: Value = serde_json::from_str(&text).unwrap();
        change(&mut v);
        let edited = write(&dir, name, &v.to_string());
        refused(&[s1, &edited, s3], 1, &[name, "a damaged shard", says]);
    }
    let not_json = write(&dir, "plan.json", "name: lawsker\n");
    refused(&[&not_json], 1, &["plan.json:1:2:", "not JSON"]);
}

#[test]
fn shards_run_from_other_folders_are_one_run() {
    // The plan named by another path is the same plan: its text is compared, and the
    // report names the files as the first shard does.
    let dir = temp_dir("shard-paths");
    let whole = plan()
        .args([
            "simulate",
            "plans/lawsker.yaml",
            "--trials",
            "8",
            "--format",
            "json",
        ])
        .expect(0)
        .stdout;
    let absolute = crate::support::root().join("plans/lawsker.yaml");
    let shard = |plan_path: &str, k: &str| {
        plan()
            .args(["simulate", plan_path, "--trials", "8", "--shard", k])
            .expect(0)
            .stdout
    };
    let paths = [
        write(&dir, "a.json", &shard("plans/lawsker.yaml", "1/2")),
        write(&dir, "b.json", &shard(absolute.to_str().unwrap(), "2/2")),
    ];
    assert_eq!(merge(&paths, "json"), whole);
}

#[test]
fn shard_flags_are_checked() {
    for (shard, says) in [
        ("0/3", "shard 0 of 3 does not exist"),
        ("4/3", "shard 4 of 3 does not exist"),
        ("1/0", "the shard count 0 is not from 1 to 1000"),
        ("two", "is not a shard; write K/N"),
    ] {
        let out = plan()
            .args(["simulate", "plans/lawsker.yaml", "--shard", shard])
            .expect(2);
        assert!(out.stderr.contains(says), "{shard}: {}", out.stderr);
    }
    plan()
        .args([
            "simulate",
            "plans/lawsker.yaml",
            "--shard",
            "1/2",
            "--format",
            "json",
        ])
        .expect(2);
}
