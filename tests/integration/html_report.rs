//! `--report FILE.html` (issue 19): the HTML report of a Monte Carlo run, a tune and a
//! replay of the Lawsker plan, opened in a real headless Chromium (gated like the other
//! real tools: SKIPPED without it, unless `PLAN_CONFORMANCE=require`). Each page must load
//! with no console message (the report has no script: any message is an error), draw
//! every chart with data marks of non-zero size, and show in its tables exactly the
//! numbers of the `--format json` document of the same run; a screenshot of each is kept
//! in the test's folder. Also: the same run gives the same bytes, the default run's page is
//! under 2 MB, and hostile strings cannot inject markup.

use crate::support::{self, Done, plan, temp_dir, tool};
use regex::Regex;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Runs `plan` with `args` plus `--format json --report OUT`; its document and the page.
fn run_with_report(args: &[&str], out: &Path, code: i32) -> (Value, String, Done) {
    let done = plan()
        .args(args)
        .args(["--format", "json", "--report"])
        .arg(out)
        .expect(code);
    let doc: Value = serde_json::from_str(&done.stdout).expect("the JSON document");
    let html = std::fs::read_to_string(out).expect("the report was written");
    (doc, html, done)
}

/// Chromium's headless run of `page` with `extra` flags: its stdout and stderr. Killed
/// (failing the test) after a minute.
fn chromium(bin: &Path, page: &Path, extra: &[&str]) -> (String, String) {
    let profile = temp_dir("chromium-profile");
    let mut child = Command::new(bin)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--enable-logging=stderr",
            "--v=0",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(extra)
        .arg(format!("file://{}", page.display()))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("chromium starts");
    let start = Instant::now();
    // Read both pipes on threads, so that a chatty Chromium never blocks on a full pipe.
    let mut so = child.stdout.take().expect("stdout");
    let mut se = child.stderr.take().expect("stderr");
    let t_out = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = std::io::Read::read_to_string(&mut so, &mut s);
        s
    });
    let t_err = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = std::io::Read::read_to_string(&mut se, &mut s);
        s
    });
    loop {
        if child.try_wait().expect("wait for chromium").is_some() {
            break;
        }
        if start.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("chromium took over a minute on {}", page.display());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = std::fs::remove_dir_all(&profile);
    (t_out.join().unwrap(), t_err.join().unwrap())
}

/// What the browser made of a page.
struct Browsed {
    dom: String,
    console: Vec<String>,
    screenshot: PathBuf,
}

fn browse(bin: &Path, page: &Path) -> Browsed {
    let (dom, err) = chromium(bin, page, &["--dump-dom"]);
    let shot = page.with_extension("png");
    let (_, err2) = chromium(
        bin,
        page,
        &[
            &format!("--screenshot={}", shot.display()),
            "--window-size=1000,3000",
        ],
    );
    // Chromium logs every console message (errors, failed loads, CSP violations) as
    // `INFO:CONSOLE(...)` / `:CONSOLE:` lines on stderr.
    let console = err
        .lines()
        .chain(err2.lines())
        .filter(|l| l.contains(":CONSOLE"))
        .map(str::to_string)
        .collect();
    Browsed {
        dom,
        console,
        screenshot: shot,
    }
}

fn unescape(s: &str) -> String {
    s.replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

fn attr(tag: &str, name: &str) -> Option<f64> {
    let re = Regex::new(&format!(r#"\s{name}="([^"]*)""#)).unwrap();
    re.captures(tag).and_then(|c| c[1].parse().ok())
}

/// Whether a data mark (an element of class `mark`) has a non-zero size.
fn drawn(tag: &str) -> bool {
    let name = tag[1..].split([' ', '>']).next().unwrap_or("");
    match name {
        "rect" => {
            attr(tag, "width").is_some_and(|w| w > 0.0)
                && attr(tag, "height").is_some_and(|h| h > 0.0)
        }
        "circle" => attr(tag, "r").is_some_and(|r| r > 0.0),
        "polyline" | "polygon" => {
            let re = Regex::new(r#"\spoints="([^"]*)""#).unwrap();
            let Some(c) = re.captures(tag) else {
                return false;
            };
            let pts: Vec<(f64, f64)> = c[1]
                .split_whitespace()
                .filter_map(|p| {
                    let (x, y) = p.split_once(',')?;
                    Some((x.parse().ok()?, y.parse().ok()?))
                })
                .collect();
            let span = |f: fn(&(f64, f64)) -> f64| {
                let v: Vec<f64> = pts.iter().map(f).collect();
                v.iter().copied().fold(f64::MIN, f64::max)
                    - v.iter().copied().fold(f64::MAX, f64::min)
            };
            pts.len() >= 2 && (span(|p| p.0) > 0.0 || span(|p| p.1) > 0.0)
        }
        _ => false,
    }
}

/// Every chart of the page (as the browser parsed it) and its drawn data marks: fails
/// naming a chart without any.
fn charts_are_drawn(dom: &str) -> usize {
    let chart = Regex::new(r#"(?s)<svg class="chart"(.*?)</svg>"#).unwrap();
    let mark =
        Regex::new(r#"<(rect|circle|polyline|polygon)\s[^>]*class="[^"]*\bmark\b[^"]*"[^>]*>"#)
            .unwrap();
    let label = Regex::new(r#"aria-label="([^"]*)""#).unwrap();
    let mut n = 0;
    for c in chart.find_iter(dom) {
        let svg = c.as_str();
        let name = label
            .captures(svg)
            .map_or("?".to_string(), |l| unescape(&l[1]));
        let drawn_marks = mark.find_iter(svg).filter(|m| drawn(m.as_str())).count();
        assert!(
            drawn_marks > 0,
            "chart `{name}` has no drawn data mark:\n{svg}"
        );
        n += 1;
    }
    n
}

/// Every number cell of the page's tables against the document: the value at its pointer,
/// and the text it shows. Returns how many cells were checked.
fn tables_match(dom: &str, doc: &Value) -> usize {
    let cell = Regex::new(r#"<td data-path="([^"]*)" data-value="([^"]*)">([^<]*)</td>"#).unwrap();
    let mut n = 0;
    for c in cell.captures_iter(dom) {
        let (path, raw, shown) = (unescape(&c[1]), unescape(&c[2]), unescape(&c[3]));
        let in_doc = doc
            .pointer(&path)
            .unwrap_or_else(|| panic!("table cell {path} is not in the JSON document"));
        let value: Value = serde_json::from_str(&raw).expect("data-value is JSON");
        assert_eq!(
            &value, in_doc,
            "table cell {path}: {raw}, the document has {in_doc}"
        );
        let Some(v) = in_doc.as_f64() else {
            assert_eq!(shown, "n/a", "{path}");
            continue;
        };
        if let Some(p) = shown.strip_suffix('%') {
            let p: f64 = p.parse().unwrap_or_else(|_| panic!("{path}: `{shown}`"));
            assert!(
                (p - v * 100.0).abs() <= 0.051,
                "table cell {path} shows {shown}, the document has {v}"
            );
        } else if let Ok(k) = shown.parse::<f64>() {
            assert_eq!(
                k, v,
                "table cell {path} shows {shown}, the document has {v}"
            );
        }
        n += 1;
    }
    n
}

/// The checks every page must pass in the browser: returns (charts, number cells).
fn check_in_browser(bin: &Path, page: &Path, doc: &Value) -> (usize, usize) {
    let b = browse(bin, page);
    assert!(
        b.console.is_empty(),
        "{} logged to the console:\n{}",
        page.display(),
        b.console.join("\n")
    );
    assert!(b.dom.contains("</html>"), "no DOM for {}", page.display());
    let charts = charts_are_drawn(&b.dom);
    let cells = tables_match(&b.dom, doc);
    let png = std::fs::read(&b.screenshot).expect("a screenshot");
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "not a PNG");
    let (w, h) = (
        u32::from_be_bytes(png[16..20].try_into().unwrap()),
        u32::from_be_bytes(png[20..24].try_into().unwrap()),
    );
    assert_eq!((w, h), (1000, 3000), "screenshot size");
    // A blank page of this size is a few kilobytes; a page of charts far more.
    assert!(
        png.len() > 40_000,
        "a near-empty screenshot: {} bytes",
        png.len()
    );
    eprintln!(
        "{}: {charts} charts, {cells} number cells, screenshot {} ({} bytes)",
        page.display(),
        b.screenshot.display(),
        png.len()
    );
    (charts, cells)
}

/// The default Monte Carlo run of the Lawsker plan: under 2 MB, and right in the browser.
#[test]
fn monte_carlo_report_opens_in_chromium() {
    let dir = temp_dir("html-mc");
    let page = dir.join("simulate.html");
    let (doc, html, _) = run_with_report(&["simulate", "plans/lawsker.yaml"], &page, 0);
    assert_eq!(doc["trials_per_scenario"], 2000, "the default run");
    assert!(html.len() < 2_000_000, "{} bytes", html.len());
    assert!(
        html.contains("Seed") && html.contains("prometheus3") && html.contains("v1.0.0 → v1.1.0")
    );
    // The exposition assumed, as the text report states it.
    assert!(
        html.contains("Exposition")
            && html.contains("request counters per status code, each extrapolated on its own")
            && html.contains("CPU and targets up per instance (their max, sum, average and count)")
            && html.contains("1, 1, 2, 4 by phase"),
        "{html}"
    );
    let Some(bin) = tool("chromium") else { return };
    let scenarios = doc["scenarios"].as_array().unwrap().len();
    let (charts, cells) = check_in_browser(&bin, &page, &doc);
    // Outcomes per scenario, time to catch, rollbacks by phase and by rule.
    assert_eq!(charts, scenarios + 3);
    assert!(cells > 20 * scenarios, "{cells} number cells");
}

#[test]
fn tune_report_opens_in_chromium() {
    let dir = temp_dir("html-tune");
    let page = dir.join("tune.html");
    let (doc, _, _) = run_with_report(
        &[
            "tune",
            "plans/lawsker.yaml",
            "--trials",
            "120",
            "--max-false-rollback",
            "5%",
            "--no-check",
        ],
        &page,
        0,
    );
    assert!(doc["recommended"].is_object(), "{doc:#}");
    let Some(bin) = tool("chromium") else { return };
    let (charts, cells) = check_in_browser(&bin, &page, &doc);
    assert_eq!(charts, 1, "the trade-off");
    assert!(cells >= 16, "{cells} number cells");
}

/// A trace that rolls back: a chart per rule the trace gives values for.
#[test]
fn replay_report_opens_in_chromium() {
    let dir = temp_dir("html-replay");
    let page = dir.join("replay.html");
    let trace = support::root().join("simulations/traces/error-spike.csv");
    let (doc, html, _) = run_with_report(
        &[
            "simulate",
            "plans/lawsker.yaml",
            "--trace",
            trace.to_str().unwrap(),
        ],
        &page,
        0,
    );
    assert_eq!(doc["verdict"]["outcome"], "rolled_back");
    assert!(html.contains("CanaryRollbackAvailability"));
    let Some(bin) = tool("chromium") else { return };
    let (charts, cells) = check_in_browser(&bin, &page, &doc);
    assert!(charts >= 4, "{charts} charts");
    assert!(cells > 100, "{cells} number cells");
}

/// The same run twice: the same bytes.
#[test]
fn reports_are_deterministic() {
    let dir = temp_dir("html-same");
    let trace = support::root().join("simulations/traces/error-spike.csv");
    let runs: [&[&str]; 2] = [
        &["simulate", "plans/lawsker.yaml", "--trials", "60"],
        &[
            "simulate",
            "plans/lawsker.yaml",
            "--trace",
            trace.to_str().unwrap(),
        ],
    ];
    for (i, args) in runs.iter().enumerate() {
        let (a, b) = (
            dir.join(format!("{i}a.html")),
            dir.join(format!("{i}b.html")),
        );
        run_with_report(args, &a, 0);
        // Another thread count: the same numbers, so the same page.
        let more: Vec<&str> = args.iter().copied().chain(["--jobs", "1"]).collect();
        run_with_report(&more, &b, 0);
        assert!(
            std::fs::read(&a).unwrap() == std::fs::read(&b).unwrap(),
            "{args:?}: two runs wrote different pages"
        );
    }
}

/// Strings from the scenario file (its descriptions and its name) and the trace's name
/// full of markup: shown as text, never as markup; no script anywhere in the page.
#[test]
fn hostile_strings_are_escaped() {
    let hostile = r#"<script>alert(1)</script>"'&amp;</svg><img src=x onerror=alert(2)>"#;
    let dir = temp_dir("html-hostile");
    let text = std::fs::read_to_string(support::root().join("simulations/lawsker.yaml")).unwrap();
    let needle = "description: The new version behaves exactly like the old one";
    assert!(text.contains(needle));
    let text = text.replace(
        needle,
        &format!("description: '{}'", hostile.replace('\'', "''")),
    );
    let scenarios = support::write(&dir, "s<script>\"'&.yaml", &text);
    let page = dir.join("mc.html");
    let (doc, html, _) = run_with_report(
        &[
            "simulate",
            "plans/lawsker.yaml",
            "--trials",
            "20",
            "--scenarios",
            scenarios.to_str().unwrap(),
        ],
        &page,
        0,
    );
    assert_eq!(doc["scenarios"][0]["description"], hostile);
    let trace = dir.join("t<script>\"'&.csv");
    std::fs::copy(
        support::root().join("simulations/traces/error-spike.csv"),
        &trace,
    )
    .unwrap();
    let replay = dir.join("replay.html");
    let (replay_doc, replay_html, _) = run_with_report(
        &[
            "simulate",
            "plans/lawsker.yaml",
            "--trace",
            trace.to_str().unwrap(),
        ],
        &replay,
        0,
    );
    for h in [&html, &replay_html] {
        assert!(!h.contains("<script"), "a script tag in the page");
        assert!(!h.contains("<img"), "an injected tag in the page");
        assert!(!h.contains("s<script>\"'&.yaml") && !h.contains("t<script>\"'&.csv"));
    }
    assert!(html.contains(
        "&lt;script&gt;alert(1)&lt;/script&gt;&quot;&#39;&amp;amp;&lt;/svg&gt;&lt;img src=x onerror=alert(2)&gt;"
    ));
    assert!(html.contains("s&lt;script&gt;&quot;&#39;&amp;.yaml"));
    assert!(replay_html.contains("t&lt;script&gt;&quot;&#39;&amp;.csv"));
    let Some(bin) = tool("chromium") else { return };
    for (p, d) in [(&page, &doc), (&replay, &replay_doc)] {
        let b = browse(&bin, p);
        assert!(b.console.is_empty(), "{}", b.console.join("\n"));
        assert!(
            !b.dom.contains("<script") && !b.dom.contains("<img"),
            "markup got in"
        );
        tables_match(&b.dom, d);
    }
}

/// A report that cannot be written: a clear error naming the path (exit 2), the results
/// printed all the same, and nothing left beside it.
#[test]
fn an_unwritable_report_is_an_error_naming_its_path() {
    let dir = temp_dir("html-unwritable");
    let page = dir.join("no-such-folder").join("r.html");
    let done = plan()
        .args([
            "simulate",
            "plans/lawsker.yaml",
            "--trials",
            "5",
            "--report",
        ])
        .arg(&page)
        .expect(2);
    assert!(done.stdout.contains("lawsker"), "{}", done.stdout);
    assert!(
        done.stderr
            .contains(&format!("cannot write the report {}", page.display())),
        "{}",
        done.stderr
    );
    // A folder in the way.
    let done = plan()
        .args([
            "simulate",
            "plans/lawsker.yaml",
            "--trials",
            "5",
            "--report",
        ])
        .arg(&dir)
        .expect(2);
    assert!(done.stderr.contains("it is a folder"), "{}", done.stderr);
    assert_eq!(
        std::fs::read_dir(&dir).unwrap().count(),
        0,
        "a temporary file was left"
    );
    // With --shard or a second plan: a usage error.
    plan()
        .args([
            "simulate",
            "plans/lawsker.yaml",
            "--shard",
            "1/2",
            "--report",
            "x.html",
        ])
        .expect(2);
    plan()
        .args([
            "simulate",
            "plans/lawsker.yaml",
            "plans/lawsker.yaml",
            "--report",
            "x.html",
        ])
        .expect(2);
}
