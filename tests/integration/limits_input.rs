//! The limits on what `plan` reads (`src/limits.rs`), through the real binary, each run
//! under a memory cap and a timeout so that a regression fails here instead of taking the
//! machine: alias bombs, deep nesting, devices and pipes for plans, scenario files and
//! traces, huge traces, and a flapping trace's timeline. Every hostile input is generated
//! by the test.

use crate::support::*;
use std::path::Path;
use std::time::Duration;

/// Address space for one run: far above what any of these inputs needs when guarded
/// (a few tens of MB), far below what they take unguarded (gigabytes).
const MEMORY: u64 = 512 * 1024 * 1024;
const TIMEOUT: Duration = Duration::from_secs(60);

fn validate(file: &Path) -> Done {
    plan()
        .arg("validate")
        .arg(file)
        .run_bounded(MEMORY, TIMEOUT)
}

fn replay(trace: &Path, extra: &[&str]) -> Done {
    plan()
        .args(["simulate", "plans/lawsker.yaml", "--trace"])
        .arg(trace)
        .args(extra)
        .run_bounded(MEMORY, TIMEOUT)
}

/// `name: x` then a base list of `base` items and `levels` lists of `width` aliases to
/// the level below: `base * width^levels` values once expanded.
fn alias_bomb(base: usize, levels: usize, width: usize) -> String {
    let mut s = String::from("name: x\na0: &a0 [");
    s.push_str(&vec!["lol"; base].join(","));
    s.push_str("]\n");
    for l in 1..=levels {
        let refs = vec![format!("*a{}", l - 1); width].join(",");
        s.push_str(&format!("a{l}: &a{l} [{refs}]\n"));
    }
    s
}

/// The first finding's `file:line:col: error[code]` line.
fn first_error(stderr: &str) -> &str {
    stderr
        .lines()
        .find(|l| l.contains(": error["))
        .unwrap_or_else(|| panic!("no error in:\n{stderr}"))
}

#[test]
fn wide_alias_bombs_are_refused_at_the_alias_that_passes_the_limit() {
    let dir = temp_dir("limits-alias");
    // (base, levels, width): the 5 KB and 9.5 KB files (2 GB and 12.8 GB
    // unguarded), a classic billion laughs, and one wide level.
    for (base, levels, width, line) in [
        (1000, 5, 9, 5),
        (2000, 5, 9, 4),
        (10, 9, 10, 6),
        (60_000, 1, 2, 3),
    ] {
        let text = alias_bomb(base, levels, width);
        let p = write(&dir, &format!("bomb-{base}-{levels}-{width}.yaml"), &text);
        let d = validate(&p);
        assert_eq!(d.code, 1, "{}", d.stderr);
        let e = first_error(&d.stderr);
        assert!(e.contains("error[yaml-too-large]"), "{e}");
        assert!(e.contains("100000 values"), "{e}");
        assert!(e.contains(&format!(".yaml:{line}:")), "{e}");
        assert!(d.stderr.contains("alias bomb"), "{}", d.stderr);
    }
    // Under the limit, aliases are fine: the plan is then judged on its content.
    let p = write(&dir, "small.yaml", &alias_bomb(100, 2, 9));
    let d = validate(&p);
    assert_eq!(d.code, 1);
    assert!(!d.stderr.contains("yaml-too-large"), "{}", d.stderr);
}

#[test]
fn many_values_without_aliases_are_refused_too() {
    let dir = temp_dir("limits-values");
    let text = format!("name: x\nlist: [{}]\n", vec!["1"; 100_001].join(","));
    let d = validate(&write(&dir, "values.yaml", &text));
    assert_eq!(d.code, 1);
    let e = first_error(&d.stderr);
    assert!(e.contains("error[yaml-too-large]"), "{e}");
    assert!(e.contains("more than 100000 values"), "{e}");
}

#[test]
fn deep_nesting_is_refused_before_the_value_parser() {
    let dir = temp_dir("limits-deep");
    let flow = |open: &str, close: &str, n: usize| {
        format!("name: x\nrelease: {}1{}\n", open.repeat(n), close.repeat(n))
    };
    let block = |n: usize| {
        let mut s = String::from("name: x\n");
        for i in 0..n {
            s.push_str(&format!("{}k:\n", " ".repeat(i)));
        }
        s.push_str(&format!("{}1\n", " ".repeat(n)));
        s
    };
    let deep = [
        // 100 KB of flow nesting took 15 s in the value parser's scanner.
        ("flow-50000.yaml", flow("[", "]", 50_000)),
        ("flow-map-30000.yaml", flow("{a: ", "}", 30_000)),
        ("flow-300.yaml", flow("[", "]", 300)),
        ("flow-33.yaml", flow("[", "]", 33)),
        ("block-1000.yaml", block(1000)),
        ("block-40.yaml", block(40)),
    ];
    for (name, text) in &deep {
        let d = validate(&write(&dir, name, text));
        assert_eq!(d.code, 1, "{name}: {}", d.stderr);
        let e = first_error(&d.stderr);
        assert!(e.contains("error[yaml-too-deep]"), "{name}: {e}");
        assert!(e.contains("more than 32 levels"), "{name}: {e}");
    }
    // 32 levels are allowed (the value is then simply of the wrong type).
    let d = validate(&write(&dir, "flow-31.yaml", &flow("[", "]", 31)));
    assert_eq!(d.code, 1);
    assert!(!d.stderr.contains("yaml-too-deep"), "{}", d.stderr);
}

#[test]
fn scenario_files_get_the_same_guards() {
    let dir = temp_dir("limits-scenarios");
    let bomb = write(&dir, "bomb.yaml", &alias_bomb(1000, 5, 9));
    let deep = write(&dir, "deep.yaml", &format!("a: {}\n", "[".repeat(50_000)));
    for (file, code) in [(&bomb, "yaml-too-large"), (&deep, "yaml-too-deep")] {
        let d = plan()
            .args(["simulate", "plans/lawsker.yaml", "--scenarios"])
            .arg(file)
            .run_bounded(MEMORY, TIMEOUT);
        assert_eq!(d.code, 1, "{}", d.stderr);
        assert!(
            first_error(&d.stderr).contains(&format!("error[{code}]")),
            "{}",
            d.stderr
        );
    }
    let d = plan()
        .args(["simulate", "plans/lawsker.yaml", "--scenarios", "/dev/zero"])
        .run_bounded(MEMORY, TIMEOUT);
    assert_eq!(d.code, 1, "{}", d.stderr);
    assert!(
        d.stderr.contains("/dev/zero:1:1: error[file-too-large]"),
        "{}",
        d.stderr
    );
}

#[test]
fn devices_are_read_only_up_to_the_limit() {
    let d = validate(Path::new("/dev/zero"));
    assert_eq!(d.code, 1, "{}", d.stderr);
    assert!(
        d.stderr
            .contains("/dev/zero:1:1: error[file-too-large]: over the limit of 1 MiB"),
        "{}",
        d.stderr
    );
    assert!(d.stderr.contains("a device or a pipe"), "{}", d.stderr);
    // Random bytes: the first invalid UTF-8 byte, or the limit, whichever comes first.
    let d = validate(Path::new("/dev/urandom"));
    assert_eq!(d.code, 1, "{}", d.stderr);
    assert!(d.stderr.contains("/dev/urandom:"), "{}", d.stderr);
    // A /proc file reports a length of 0 but has content: it is read, not taken as empty.
    let d = validate(Path::new("/proc/self/status"));
    assert_eq!(d.code, 1);
    assert!(!d.stderr.contains("file is empty"), "{}", d.stderr);
    // A trace from a device: the first line passes the line limit.
    let d = replay(Path::new("/dev/zero"), &[]);
    assert_eq!(d.code, 1, "{}", d.stderr);
    assert!(
        d.stderr
            .contains("/dev/zero:1:1: error[trace]: line 1 is longer than 65536 bytes"),
        "{}",
        d.stderr
    );
}

#[test]
fn standard_input_and_pipes_are_read() {
    let d = plan()
        .args(["validate", "/dev/stdin"])
        .stdin_file(root().join("plans/minimal.yaml"))
        .run_bounded(MEMORY, TIMEOUT);
    assert_eq!(d.code, 0, "{}", d.stderr);
}

fn mkfifo(path: &Path) {
    let status = std::process::Command::new("mkfifo")
        .arg(path)
        .status()
        .expect("mkfifo runs");
    assert!(status.success());
}

#[test]
fn a_named_pipe_without_a_writer_is_an_error_not_a_hang() {
    let dir = temp_dir("limits-fifo");
    let fifo = dir.join("plan.fifo");
    mkfifo(&fifo);
    let d = validate(&fifo);
    assert_eq!(d.code, 2, "{}", d.stderr);
    assert!(
        d.stderr
            .contains("is a named pipe and nothing was written to it"),
        "{}",
        d.stderr
    );
    let d = replay(&fifo, &[]);
    assert_eq!(d.code, 1, "{}", d.stderr);
    assert!(
        d.stderr.contains("the trace holds no samples"),
        "{}",
        d.stderr
    );
}

#[test]
fn a_named_pipe_with_a_writer_is_read() {
    let dir = temp_dir("limits-fifo-writer");
    let fifo = dir.join("plan.fifo");
    mkfifo(&fifo);
    let writer = {
        let fifo = fifo.clone();
        std::thread::spawn(move || {
            // Opening for writing waits for the reader.
            let text = std::fs::read(root().join("plans/minimal.yaml")).unwrap();
            std::fs::write(&fifo, text).unwrap();
        })
    };
    // The writer may not have opened the pipe yet when `plan` opens it: retry until it
    // has been read (a reader that finds no writer reports it and exits at once).
    let started = std::time::Instant::now();
    loop {
        let d = validate(&fifo);
        if d.code == 0 {
            break;
        }
        assert!(d.stderr.contains("no writer was connected"), "{}", d.stderr);
        assert!(started.elapsed() < TIMEOUT, "the writer never connected");
        std::thread::sleep(Duration::from_millis(20));
    }
    writer.join().unwrap();
}

#[test]
fn huge_traces_are_refused_before_they_are_read() {
    let dir = temp_dir("limits-trace-size");
    // Sparse files: their length is known, so nothing is read.
    let csv = dir.join("huge.csv");
    let f = std::fs::File::create(&csv).unwrap();
    f.set_len(1024 * 1024 * 1024 + 1).unwrap();
    let d = replay(&csv, &[]);
    assert_eq!(d.code, 1, "{}", d.stderr);
    assert!(
        d.stderr.contains(
            "huge.csv:1:1: error[trace]: the trace is 1073741825 bytes, over the limit of 1 GiB"
        ),
        "{}",
        d.stderr
    );
    let json = dir.join("huge.json");
    std::fs::write(&json, "{\"status\":\"success\",\n").unwrap();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&json)
        .unwrap()
        .set_len(128 * 1024 * 1024 + 1)
        .unwrap();
    let d = replay(&json, &[]);
    assert_eq!(d.code, 1, "{}", d.stderr);
    assert!(
        d.stderr
            .contains("the JSON trace is 134217729 bytes, over the limit of 128 MiB"),
        "{}",
        d.stderr
    );
    assert!(d.stderr.contains("write the trace as CSV"), "{}", d.stderr);
}

#[test]
fn a_streamed_trace_stops_at_the_byte_limit() {
    // An endless pipe of comment lines: nothing to keep, so only the byte limit ends it.
    let dir = temp_dir("limits-trace-stream");
    let fifo = dir.join("trace.fifo");
    mkfifo(&fifo);
    let writer = {
        let fifo = fifo.clone();
        std::thread::spawn(move || {
            use std::io::Write;
            let mut f = std::fs::OpenOptions::new().write(true).open(&fifo).unwrap();
            let line = format!("#{}\n", "x".repeat(60_000));
            // Ends with a broken pipe once `plan` stops reading.
            while f.write_all(line.as_bytes()).is_ok() {}
        })
    };
    let started = std::time::Instant::now();
    let d = loop {
        let d = replay(&fifo, &[]);
        if !d.stderr.contains("no samples") {
            break d;
        }
        assert!(started.elapsed() < TIMEOUT, "the writer never connected");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(d.code, 1, "{}", d.stderr);
    assert!(
        d.stderr
            .contains("error[trace]: the trace holds more than 1 GiB, the limit for a trace"),
        "{}",
        d.stderr
    );
    writer.join().unwrap();
}

#[test]
fn traces_past_the_series_and_span_limits_are_refused_at_the_line() {
    let dir = temp_dir("limits-trace-shape");
    let mut text = String::from("timestamp,series,labels,value\n");
    for i in 0..10_001 {
        text.push_str(&format!("0,x,i={i},1\n"));
    }
    let d = replay(&write(&dir, "series.csv", &text), &[]);
    assert_eq!(d.code, 1, "{}", d.stderr);
    assert!(
        d.stderr
            .contains("series.csv:10002:3: error[trace]: the trace holds more than 10000 series"),
        "{}",
        d.stderr
    );
    // Two samples 93 days apart: over a quarter, the longest replay.
    let text = "0,error_rate,track=canary,0\n8035200,error_rate,track=canary,0\n";
    let d = replay(&write(&dir, "span.csv", text), &[]);
    assert_eq!(d.code, 1, "{}", d.stderr);
    assert!(
        d.stderr
            .contains("span.csv:2:1: error[trace]: the trace spans 93d"),
        "{}",
        d.stderr
    );
    assert!(
        d.stderr.contains("over the limit of 92 days"),
        "{}",
        d.stderr
    );
    let d = replay(&write(&dir, "long-line.csv", &"0".repeat(70_000)), &[]);
    assert_eq!(d.code, 1, "{}", d.stderr);
    assert!(d.stderr.contains("line 1 is longer than 65536 bytes"));
}

/// Recorded series for lawsker's three metrics, healthy, every 15 s for the 144 hours
/// past promotion (at 144 h), but reported only 10 minutes in every 30: each no-data rule goes
/// pending, firing and resolved again 288 times.
fn flapping_trace() -> String {
    let mut s = String::from("timestamp,series,labels,value\n");
    let start = 1_714_521_600; // 2024-05-01T00:00:00Z
    for i in 0..(145 * 240) {
        let t = start + i * 15;
        let in_cycle = (i * 15) % 1800;
        let (er, p95, av) = if in_cycle < 600 {
            ("0.001", "120", "0.999")
        } else if in_cycle < 615 {
            ("stale", "stale", "stale")
        } else {
            continue;
        };
        s.push_str(&format!("{t},error_rate,track=canary,{er}\n"));
        s.push_str(&format!("{t},response_time_p95,track=canary,{p95}\n"));
        s.push_str(&format!("{t},availability,track=canary,{av}\n"));
    }
    s
}

#[test]
fn a_flapping_alert_prints_a_bounded_timeline_and_the_json_has_every_transition() {
    let dir = temp_dir("limits-flapping");
    let trace = write(&dir, "flapping.csv", &flapping_trace());
    let d = replay(&trace, &[]);
    assert_eq!(d.code, 0, "{}", d.stderr);
    let lines = d.stdout.lines().count();
    assert!(lines < 400, "{lines} lines:\n{}", d.stdout);
    assert!(
        d.stdout.contains("more transitions of this rule, up to +"),
        "{}",
        d.stdout
    );
    assert!(
        d.stdout.contains("`--format json` lists every one"),
        "{}",
        d.stdout
    );
    // Production began at +6d; its 24h watch is not over when the trace ends at +6d1h.
    assert!(
        d.stdout.contains("Verdict: still RUNNING") && d.stdout.contains("in phase production"),
        "{}",
        d.stdout
    );
    let d = replay(&trace, &["--format", "json"]);
    assert_eq!(d.code, 0, "{}", d.stderr);
    let doc: serde_json::Value = serde_json::from_str(&d.stdout).expect("JSON");
    let rule = doc["rules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["alert"] == "CanaryNoDataErrorRate")
        .expect("the no-data rule");
    assert_eq!(rule["transitions_omitted"], 0);
    let fired = rule["fired"].as_u64().unwrap();
    assert!(fired > 200, "{rule}");
    let listed = doc["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["alert"] == "CanaryNoDataErrorRate" && e["event"] == "firing")
        .count() as u64;
    assert_eq!(listed, fired);
}

#[test]
fn past_the_recorded_transitions_a_rule_counts_the_rest() {
    // minimal.yaml with a 60-day canary phase, and an error rate that crosses its 5%
    // threshold at every other evaluation for 15 days: the rule goes pending and clears
    // about 21,600 times, never firing.
    let dir = temp_dir("limits-omitted");
    let text = std::fs::read_to_string(root().join("plans/minimal.yaml"))
        .unwrap()
        .replace("duration: 1h", "duration: 60d");
    let plan_file = write(&dir, "long.yaml", &text);
    let mut trace = String::from("timestamp,series,labels,value\n");
    for i in 0..(15 * 1440) {
        let v = if i % 2 == 0 { "0.1" } else { "0" };
        trace.push_str(&format!(
            "{},error_rate,track=canary,{v}\n",
            1_714_521_600 + i * 60
        ));
    }
    let trace = write(&dir, "flapping.csv", &trace);
    let run = |extra: &[&str]| {
        plan()
            .arg("simulate")
            .arg(&plan_file)
            .arg("--trace")
            .arg(&trace)
            .args(extra)
            .run_bounded(MEMORY, TIMEOUT)
    };
    let d = run(&[]);
    assert_eq!(d.code, 0, "{}", d.stderr);
    assert!(d.stdout.lines().count() < 100, "{}", d.stdout);
    assert!(
        d.stdout
            .contains("`--format json` lists the first 10000 and counts the rest"),
        "{}",
        d.stdout
    );
    assert!(d.stdout.contains("Verdict: still RUNNING"), "{}", d.stdout);
    let d = run(&["--format", "json"]);
    assert_eq!(d.code, 0, "{}", d.stderr);
    let doc: serde_json::Value = serde_json::from_str(&d.stdout).expect("JSON");
    let rule = &doc["rules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["kind"] == "rollback")
        .expect("the rollback rule")
        .clone();
    let listed = doc["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["alert"] == rule["alert"])
        .count() as u64;
    assert_eq!(listed, 10_000, "{rule}");
    let omitted = rule["transitions_omitted"].as_u64().unwrap();
    assert!(omitted > 10_000, "{rule}");
    // One transition per evaluation: pending, cleared, pending...
    assert_eq!(
        listed + omitted,
        doc["evaluations"].as_u64().unwrap(),
        "{rule}"
    );
    assert!(
        rule["last_omitted_ms"].as_i64().unwrap() > 14 * 86_400_000,
        "{rule}"
    );
}
