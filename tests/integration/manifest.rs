//! `manifest.json` and `RUNBOOK.md` of `plan render`: the manifest's steps match the plan
//! and name files that exist, its check commands pass with the real promtool and amtool,
//! the runbook states every phase and rule in human units, and its links resolve when a
//! real GitHub-flavoured Markdown renderer (cmark-gfm) turns it into HTML.

use crate::support::*;
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

const PLAN: &str = "plans/lawsker.yaml";

fn manifest(dir: &Path) -> Value {
    let text = std::fs::read_to_string(dir.join("manifest.json")).expect("manifest.json");
    assert!(text.ends_with("}\n"), "manifest.json ends with one newline");
    serde_json::from_str(&text).expect("manifest.json is JSON")
}

fn runbook(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("RUNBOOK.md")).expect("RUNBOOK.md")
}

fn s(v: &Value) -> &str {
    v.as_str()
        .unwrap_or_else(|| panic!("expected a string, found {v}"))
}

fn arr(v: &Value) -> &Vec<Value> {
    v.as_array()
        .unwrap_or_else(|| panic!("expected an array, found {v}"))
}

#[test]
fn manifest_lists_every_phase_then_rollback_and_promotion() {
    let dir = render(PLAN);
    let m = manifest(&dir);
    assert_eq!(m["schema_version"], 2);
    assert!(
        s(&m["generated_by"]).contains(PLAN),
        "{}",
        m["generated_by"]
    );
    assert_eq!(m["plan"], "lawsker");
    assert_eq!(m["release"]["from"], "v1.0.0");
    assert_eq!(m["release"]["to"], "v1.1.0");
    assert_eq!(m["service"]["name"], "backend");
    assert_eq!(m["service"]["canary"], "backend-canary");
    assert_eq!(m["service"]["canary_image"], "lawsker/backend:v1.1.0");

    let steps = arr(&m["steps"]);
    let names: Vec<&str> = steps.iter().map(|st| s(&st["name"])).collect();
    assert_eq!(
        names,
        [
            "alpha",
            "beta",
            "gamma",
            "production",
            "rollback",
            "promotion"
        ]
    );
    let kinds: Vec<&str> = steps.iter().map(|st| s(&st["kind"])).collect();
    assert_eq!(
        kinds,
        ["phase", "phase", "phase", "phase", "rollback", "promotion"]
    );

    // Shares, as numbers and as text; the rollback sends nothing to the new version, the
    // promotion everything.
    let shares: Vec<f64> = steps
        .iter()
        .map(|st| st["traffic"]["percent"].as_f64().expect("percent"))
        .collect();
    assert_eq!(shares, [5.0, 20.0, 50.0, 100.0, 0.0, 100.0]);
    assert_eq!(steps[0]["traffic"]["text"], "5%");
    assert_eq!(steps[2]["traffic"]["text"], "50%");

    // Minimum durations: 24h, 48h, 72h; the last phase's is its watch (24h by default:
    // it states no duration); none for rollback and promotion.
    let secs: Vec<Option<u64>> = steps
        .iter()
        .map(|st| st["min_duration"]["seconds"].as_u64())
        .collect();
    assert_eq!(
        secs,
        [
            Some(86_400),
            Some(172_800),
            Some(259_200),
            Some(86_400),
            None,
            None
        ]
    );
    assert_eq!(steps[0]["min_duration"]["text"], "1d");
    assert_eq!(steps[3]["min_duration"]["text"], m["watch"]["text"]);
    assert_eq!(m["watch"]["default"], true);
    assert!(steps[4]["min_duration"].is_null());

    // Targeted groups, with their parsed conditions and stated shares.
    let groups = |i: usize| -> Vec<&str> {
        arr(&steps[i]["groups"])
            .iter()
            .map(|g| s(&g["name"]))
            .collect()
    };
    assert_eq!(groups(0), ["internal"]);
    assert_eq!(groups(1), ["internal", "beta_users"]);
    assert_eq!(groups(2), ["internal", "beta_users", "regular_users"]);
    let beta = &steps[1]["groups"][1];
    assert_eq!(
        beta["rule"],
        "user_type == lawyer and last_login >= 7 days and case_count >= 10"
    );
    assert_eq!(beta["traffic"]["text"], "8%");
    let last_login = &beta["conditions"][1];
    assert_eq!(last_login["attribute"], "last_login");
    assert_eq!(last_login["comparison"], ">=");
    assert_eq!(last_login["value"]["seconds"], 604_800);
    assert_eq!(beta["conditions"][2]["value"], 10);
    assert_eq!(
        steps[0]["groups"][0]["rule"],
        "user_type == admin or user_type == internal_tester"
    );
    // 5% split + 1% internal outside it: 5 + 1 × 0.95 = 5.95%.
    assert_eq!(steps[0]["expected_request_share"]["text"], "5.95%");
    assert_eq!(arr(&steps[4]["groups"]).len(), 0);
}

#[test]
fn manifest_states_gates_and_rollback_rules_in_the_metrics_units() {
    let dir = render(PLAN);
    let m = manifest(&dir);
    for st in arr(&m["steps"]).iter().take(4) {
        let gates = arr(&st["gates"]);
        assert_eq!(
            gates.len(),
            9,
            "{}: every gate watches every phase",
            st["name"]
        );
        let gate = |metric: &str| {
            gates
                .iter()
                .find(|g| g["metric"] == metric)
                .unwrap_or_else(|| panic!("gate {metric}"))
        };
        let e = gate("error_rate");
        assert_eq!(e["comparison"], "<");
        assert_eq!(e["threshold"]["kind"], "absolute");
        assert_eq!(e["threshold"]["value"], 0.05);
        assert_eq!(e["threshold"]["text"], "5%");
        assert_eq!(e["written"], "< 5%");
        assert_eq!(e["runbook"], "RUNBOOK.md#gate-error_rate");
        let p95 = gate("response_time_p95");
        assert_eq!(p95["unit"], "milliseconds");
        assert_eq!(p95["threshold"]["value"], 3000);
        assert_eq!(p95["threshold"]["text"], "3s");
        let conv = gate("conversion_rate");
        assert_eq!(conv["comparison"], ">=");
        assert_eq!(conv["threshold"]["kind"], "relative_to_stable");
        assert_eq!(conv["threshold"]["factor"], 0.95);

        let rules = arr(&st["rollback_rules"]);
        let summary: Vec<(&str, &str, f64, u64)> = rules
            .iter()
            .map(|r| {
                (
                    s(&r["id"]),
                    s(&r["comparison"]),
                    r["threshold"]["value"].as_f64().expect("value"),
                    r["for"]["seconds"].as_u64().expect("for"),
                )
            })
            .collect();
        assert_eq!(
            summary,
            [
                ("error_rate", ">", 0.1, 300),
                ("response_time_p95", ">", 5000.0, 600),
                ("availability", "<", 0.99, 300),
            ]
        );
        assert_eq!(rules[1]["summary"], "response_time_p95 > 5s for 10m");
        assert_eq!(rules[0]["alert"], "CanaryRollbackErrorRate");
        assert_eq!(rules[2]["runbook"], "RUNBOOK.md#rollback-availability");
    }
    for st in &arr(&m["steps"])[4..] {
        assert!(arr(&st["gates"]).is_empty() && arr(&st["rollback_rules"]).is_empty());
    }
    // The alert index agrees with the per-step rules and has a runbook link for each.
    let alerts = arr(&m["alerts"]);
    assert_eq!(
        alerts.len(),
        3 + 1 + 9 + 9,
        "rollbacks, the silent canary, gates, no-data rules"
    );
    assert!(
        alerts
            .iter()
            .any(|a| a["alert"] == "CanaryRollbackSilentCanary"
                && a["severity"] == "critical"
                && a["runbook"] == "RUNBOOK.md#rollback-silent_canary")
    );
    assert_eq!(m["silent_canary"]["for"]["text"], "5m");
    assert_eq!(m["silent_canary"]["default"], true);
    assert!(
        arr(&m["steps"])[..4]
            .iter()
            .all(|st| st["silent_canary"] == true)
    );
    assert!(alerts.iter().any(|a| a["alert"] == "CanaryNoDataErrorRate"
        && a["runbook"] == "RUNBOOK.md#no-data-error_rate"));
    assert_eq!(m["notifications"]["routes"]["critical"][2], "sms");
}

/// Every artifact a step names exists in the rendered folder, and every file a command
/// names (run from the `--out` folder) does too.
#[test]
fn manifest_artifacts_and_command_paths_exist() {
    let dir = render(PLAN);
    let out = dir.parent().expect("the --out folder");
    let m = manifest(&dir);
    assert_eq!(m["paths"]["commands"], "..");
    let steps = arr(&m["steps"]);
    let expected = |name: &str, kind: &str| -> Vec<String> {
        let mut v = vec![
            format!("nginx/{name}.conf"),
            format!("compose/{name}.override.yml"),
        ];
        if kind == "phase" {
            v.push(format!("prometheus/{name}.rules.yml"));
        }
        v
    };
    let mut named = BTreeSet::new();
    for st in steps {
        let arts: Vec<String> = arr(&st["artifacts"])
            .iter()
            .map(|a| s(a).to_string())
            .collect();
        assert_eq!(arts, expected(s(&st["name"]), s(&st["kind"])));
        for a in &arts {
            assert!(dir.join(a).is_file(), "{a} is named but not rendered");
            named.insert(a.clone());
        }
        let cmds = arr(&st["commands"]);
        assert!(
            cmds.iter().any(|c| s(&c["run"]).ends_with(" up -d")),
            "{}: a compose up",
            st["name"]
        );
        for c in cmds {
            let run = s(&c["run"]);
            assert!(!s(&c["description"]).is_empty());
            for word in run.split_whitespace() {
                if let Some(rel) = word.strip_prefix("lawsker/") {
                    assert!(dir.join(rel).is_file(), "`{run}` names missing {word}");
                    named.insert(rel.to_string());
                }
            }
            if run.starts_with("docker compose") {
                assert!(
                    run.starts_with(&format!(
                        "docker compose -f docker-compose.yml -f lawsker/compose/{}.override.yml ",
                        s(&st["name"])
                    )),
                    "{run}"
                );
            }
        }
    }
    for a in arr(&m["preparation"]["artifacts"]) {
        assert!(dir.join(s(a)).is_file(), "{a} is named but not rendered");
    }
    assert!(named.contains("nginx/rollback.conf"));
    assert!(named.contains("compose/promotion.override.yml"));
    assert!(out.join("lawsker").join("manifest.json").is_file());
}

/// Where plans/lawsker.yaml publishes its runbook (`monitoring.runbook_url`).
const RUNBOOK_URL: &str = "https://docs.lawsker.com/releases/lawsker/RUNBOOK.md";

/// The alerts a step's gates and rollback rules name are the ones its Prometheus rule file
/// defines, and their `runbook_url` annotations point where the manifest says, under the
/// plan's published runbook.
#[test]
fn manifest_alerts_match_the_prometheus_rules() {
    let dir = render(PLAN);
    let m = manifest(&dir);
    for st in arr(&m["steps"]).iter().filter(|st| st["kind"] == "phase") {
        let file = dir.join(format!("prometheus/{}.rules.yml", s(&st["name"])));
        let text = std::fs::read_to_string(&file).expect("rules file");
        let doc: yaml_serde::Value = yaml_serde::from_str(&text).expect("rules YAML");
        let mut urls = std::collections::BTreeMap::new();
        for g in doc["groups"].as_sequence().expect("groups") {
            for r in g["rules"].as_sequence().expect("rules") {
                if let Some(a) = r["alert"].as_str() {
                    let url = r["annotations"]["runbook_url"].as_str().unwrap_or_default();
                    urls.insert(a.to_string(), url.to_string());
                }
            }
        }
        let named: Vec<&Value> = arr(&st["gates"])
            .iter()
            .chain(arr(&st["rollback_rules"]))
            .collect();
        assert_eq!(named.len(), 9 + 3);
        for x in named {
            let alert = s(&x["alert"]);
            let url = urls
                .get(alert)
                .unwrap_or_else(|| panic!("{alert} is not in {}", file.display()));
            let anchor = s(&x["runbook"])
                .strip_prefix("RUNBOOK.md#")
                .expect("a runbook anchor");
            assert_eq!(
                url,
                &format!("{RUNBOOK_URL}#{anchor}"),
                "{alert}'s runbook_url"
            );
        }
    }
}

/// The preparation commands are what the runbook tells people to run before the first
/// phase; run the promtool and amtool ones for real, where the manifest says to.
#[test]
fn manifest_preparation_checks_pass_with_the_real_tools() {
    let (Some(_), Some(_)) = (tool("promtool"), tool("amtool")) else {
        return;
    };
    let dir = render(PLAN);
    let out = dir.parent().expect("the --out folder");
    let m = manifest(&dir);
    let mut ran = 0;
    for c in arr(&m["preparation"]["commands"]) {
        let run = s(&c["run"]);
        let words: Vec<&str> = run.split_whitespace().collect();
        if !matches!(words[0], "promtool" | "amtool") {
            continue;
        }
        let o = Command::new(words[0])
            .args(&words[1..])
            .current_dir(out)
            .output()
            .expect("tool runs");
        assert!(
            o.status.success(),
            "`{run}` failed:\n{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        ran += 1;
    }
    assert_eq!(
        ran,
        4 * 2 + 1,
        "check and test per phase, and the Alertmanager config"
    );
}

#[test]
fn runbook_states_phases_gates_and_rules_in_human_units() {
    let dir = render(PLAN);
    let rb = runbook(&dir);
    assert_eq!(
        rb.lines().next(),
        Some("<!-- generated by plan from plans/lawsker.yaml; do not edit -->")
    );
    for phase in [
        "Phase 1 of 4: alpha (5%)",
        "Phase 2 of 4: beta (20%)",
        "Phase 3 of 4: gamma (50%)",
        "Phase 4 of 4: production (100%)",
    ] {
        assert!(rb.contains(phase), "missing {phase}");
    }
    for (anchor, text) in [
        ("rollback-error_rate", "error_rate > 10% for 5m"),
        (
            "rollback-response_time_p95",
            "response_time_p95 > 5s for 10m",
        ),
        ("rollback-availability", "availability < 99% for 5m"),
        ("gate-error_rate", "error_rate < 5%"),
        ("gate-response_time_p95", "response_time_p95 < 3s"),
        ("gate-availability", "availability > 99.5%"),
        ("gate-conversion_rate", "conversion_rate >= 95% of stable"),
    ] {
        let heading = rb
            .lines()
            .find(|l| l.starts_with("### ") && l.contains(&format!("<a id=\"{anchor}\">")))
            .unwrap_or_else(|| panic!("no heading with anchor {anchor}"));
        assert!(heading.contains(text), "{heading} should say {text}");
    }
    // Who is told of a rollback, who gets the canary, and the commands.
    let rule = section(&rb, "rollback-error_rate");
    assert!(rule.contains("CanaryRollbackErrorRate"));
    assert!(rule.contains("#deployment-support"));
    assert!(rule.contains("tech-support@lawsker.com"));
    assert!(rule.contains("SMS"));
    let alpha = section(&rb, "phase-alpha");
    assert!(alpha.contains("`user_type == admin` or `user_type == internal_tester`"));
    assert!(alpha.contains("1d (24 hours)"));
    assert!(alpha.contains(
        "docker compose -f docker-compose.yml -f lawsker/compose/alpha.override.yml up -d"
    ));
    assert!(alpha.contains("nginx -s reload"));
    assert!(alpha.contains("curl -fsS --max-time 30 -X POST http://localhost:9090/-/reload"));
    // The secrets Alertmanager reads are listed where it is set up.
    let prep = section(&rb, "preparation");
    for f in ["slack-api-url", "smtp-password", "sms-token"] {
        assert!(
            prep.contains(&format!("`/etc/alertmanager/secrets/{f}`")),
            "{prep}"
        );
    }
    let back = section(&rb, "rolling-back");
    for step in [
        "Switch traffic back and stop the canary",
        "Check",
        "Recover data",
        "Notify",
        "Analyse",
    ] {
        assert!(
            back.contains(&format!("**{step}")),
            "rollback flow misses {step}"
        );
    }
    // The runbook speaks English; only the plan's own words (its metric descriptions here)
    // keep the language they were written in.
    let mut own = rb.clone();
    for d in [
        "Share of feedback submissions that are bug reports (用户反馈 Bug报告)",
        "Share of started core flows that complete (转化率)",
    ] {
        assert!(
            own.contains(d),
            "the plan's description {d} is kept as written"
        );
        own = own.replace(d, "");
    }
    let cjk: Vec<&str> = own
        .lines()
        .filter(|l| l.chars().any(|c| ('\u{3000}'..='\u{9fff}').contains(&c)))
        .collect();
    assert!(cjk.is_empty(), "untranslated text in RUNBOOK.md: {cjk:#?}");
    assert!(back.contains("lawsker/compose/rollback.override.yml up -d"));
    assert!(section(&rb, "promotion").contains("lawsker/compose/promotion.override.yml up -d"));
}

/// The text from the heading with `anchor` to the next heading of the same or a higher
/// level (lines inside fenced code blocks are not headings: shell comments start with `#`).
fn section(rb: &str, anchor: &str) -> String {
    let tag = format!("<a id=\"{anchor}\"></a>");
    let mut lines = rb
        .lines()
        .skip_while(|l| !(l.starts_with('#') && l.contains(&tag)));
    let first = lines
        .next()
        .unwrap_or_else(|| panic!("no section {anchor}"));
    let level = first.chars().take_while(|&c| c == '#').count();
    let mut out = vec![first];
    let mut fenced = false;
    for l in lines {
        if l.trim_start().starts_with("```") {
            fenced = !fenced;
        }
        let hashes = l.chars().take_while(|&c| c == '#').count();
        if !fenced && (1..=level).contains(&hashes) && l[hashes..].starts_with(' ') {
            break;
        }
        out.push(l);
    }
    out.join("\n")
}

/// Renders Markdown to HTML with GitHub's renderer, raw HTML kept (as GitHub keeps `<a id>`).
fn to_html(md: &str) -> Option<String> {
    let cmark = tool("cmark-gfm")?;
    let mut child = Command::new(cmark)
        .args([
            "--unsafe",
            "-e",
            "table",
            "-e",
            "strikethrough",
            "-e",
            "autolink",
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("cmark-gfm runs");
    use std::io::Write;
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(md.as_bytes())
        .expect("write");
    let out = child.wait_with_output().expect("cmark-gfm output");
    assert!(out.status.success());
    Some(String::from_utf8(out.stdout).expect("utf-8 HTML"))
}

fn attr_values(html: &str, attr: &str) -> Vec<String> {
    let pat = format!("{attr}=\"");
    html.match_indices(&pat)
        .map(|(i, _)| {
            let rest = &html[i + pat.len()..];
            rest[..rest.find('"').expect("closing quote")].to_string()
        })
        .collect()
}

#[test]
fn runbook_links_resolve_in_github_markdown() {
    let dir = render(PLAN);
    let rb = runbook(&dir);
    let Some(html) = to_html(&rb) else { return };
    let ids: BTreeSet<String> = attr_values(&html, "id").into_iter().collect();
    let links: Vec<String> = attr_values(&html, "href")
        .into_iter()
        .filter_map(|h| h.strip_prefix('#').map(str::to_string))
        .collect();
    assert!(
        links.len() > 30,
        "the runbook links its sections: {links:?}"
    );
    for l in &links {
        assert!(ids.contains(l), "link #{l} has no target");
    }
    // Every alert's runbook link lands, by the manifest's anchor and by the alert's name.
    let m = manifest(&dir);
    for a in arr(&m["alerts"]) {
        let anchor = s(&a["runbook"]).strip_prefix("RUNBOOK.md#").expect("link");
        assert!(ids.contains(anchor), "alert link #{anchor} has no target");
        assert!(ids.contains(&s(&a["alert"]).to_ascii_lowercase()));
    }
    // The phase table is a real table with one row per phase.
    assert_eq!(html.matches("<tr>").count(), 1 + 4, "{html}");
    // The header comment survives as a comment, not as text.
    assert!(html.starts_with("<!-- generated by plan"));
}

/// Every alert of every example plan links a section its RUNBOOK.md defines: the
/// fragment of each rules file's `runbook_url` is an `id` in the runbook's HTML, as
/// GitHub's renderer makes it; with `monitoring.runbook_url` the link is absolute.
#[test]
fn every_alert_links_a_runbook_section_that_exists() {
    for p in all_plans() {
        let dir = render(&p);
        let Some(html) = to_html(&runbook(&dir)) else {
            return;
        };
        let ids: BTreeSet<String> = attr_values(&html, "id").into_iter().collect();
        let plan_text = std::fs::read_to_string(root().join(&p)).expect("plan");
        let base = plan_text
            .lines()
            .find_map(|l| l.trim().strip_prefix("runbook_url: "))
            .map(str::to_string);
        let mut links = 0;
        for e in std::fs::read_dir(dir.join("prometheus"))
            .expect("prometheus/")
            .flatten()
        {
            let text = std::fs::read_to_string(e.path()).expect("rules or tests");
            if !e.file_name().to_string_lossy().ends_with(".rules.yml") {
                continue;
            }
            let doc: yaml_serde::Value = yaml_serde::from_str(&text).expect("YAML");
            for r in doc["groups"][0]["rules"].as_sequence().expect("rules") {
                let Some(url) = r["annotations"]["runbook_url"].as_str() else {
                    continue;
                };
                let (page, anchor) = url.split_once('#').expect("a fragment");
                let want = base
                    .as_deref()
                    .map_or("RUNBOOK.md", |b| b.split('#').next().unwrap_or(b));
                assert_eq!(page, want, "{p}: {url}");
                assert!(
                    ids.contains(anchor),
                    "{p}: {url} has no target in RUNBOOK.md"
                );
                links += 1;
            }
        }
        assert!(links > 0, "{p} has alerts");
    }
}

/// User text cannot inject Markdown or HTML: a metric description full of markup renders
/// as the same text.
#[test]
fn runbook_escapes_user_text() {
    let hostile = r"<script>x</script> *bold* _it_ [l](javascript:x) | `c` $m$ &amp; ~s~ \x";
    let text = std::fs::read_to_string(root().join(PLAN)).expect("plan");
    let needle =
        "description: Share of feedback submissions that are bug reports (用户反馈 Bug报告)";
    assert!(text.contains(needle));
    let text = text.replace(
        needle,
        &format!("description: '{}'", hostile.replace('\'', "''")),
    );
    let work = temp_dir("runbook-escape");
    let file = work.join("hostile.yaml");
    std::fs::write(&file, text).expect("write plan");
    plan()
        .args(["render"])
        .arg(&file)
        .arg("--out")
        .arg(work.join("out"))
        .expect(0);
    let rb = runbook(&work.join("out").join("lawsker"));
    assert!(!rb.contains("<script>"), "raw HTML leaked into RUNBOOK.md");
    let Some(html) = to_html(&rb) else { return };
    assert!(!html.contains("<script>"));
    assert!(!html.contains("<strong>bold</strong>") && !html.contains("<em>it</em>"));
    assert!(!html.contains("href=\"javascript:x\""));
    assert!(html.contains(
        "&lt;script&gt;x&lt;/script&gt; *bold* _it_ [l](javascript:x) | `c` $m$ &amp;amp; ~s~ \\x"
    ));
}

#[test]
fn manifest_and_runbook_are_deterministic() {
    let a = render(PLAN);
    let b = render(PLAN);
    for f in ["manifest.json", "RUNBOOK.md"] {
        let x = std::fs::read(a.join(f)).expect(f);
        let y = std::fs::read(b.join(f)).expect(f);
        assert!(x == y, "{f} differs between two renders");
    }
}

/// A plan that holds a phase whose gates fail (12h at most, then stays held) and watches
/// its last phase 2d: `plan validate` accepts it cleanly, and the manifest and the runbook
/// state the policy and the watch, with links that resolve.
const HOLD_PLAN: &str = r##"name: held
release:
  from: v1.0.0
  to: v1.1.0
service:
  name: web
  image: example/web
  port: 8080
routing:
  listen: 80
  sticky:
    cookie: sid
phases:
  - name: canary
    traffic: 10%
    duration: 6h
  - name: full
    traffic: 100%
    duration: 2d
notifications:
  slack:
    channel: "#releases"
    api_url_file: /etc/secrets/slack
monitoring:
  runbook_url: https://wiki.example.com/RUNBOOK.md
gates:
  error_rate: "< 2%"
gate_policy:
  on_failure: hold
  max_hold: 12h
  after_max_hold: stay
rollback_conditions:
  - metric: error_rate
    threshold: 5%
    duration: 5m
"##;

#[test]
fn a_hold_policy_and_the_watch_are_stated_in_the_manifest_and_the_runbook() {
    let dir = temp_dir("hold-plan");
    let file = write(&dir, "held.yaml", HOLD_PLAN);
    let v = plan()
        .args(["validate", "--deny-warnings"])
        .arg(&file)
        .expect(0);
    assert!(!v.stderr.contains("warning["), "{}", v.stderr);
    let out = dir.join("out");
    plan()
        .args(["render"])
        .arg(&file)
        .arg("--out")
        .arg(&out)
        .expect(0);
    let out = out.join("held");
    let m = manifest(&out);
    assert_eq!(m["gate_policy"]["on_failure"], "hold");
    assert_eq!(m["gate_policy"]["max_hold"]["seconds"], 43_200);
    assert_eq!(m["gate_policy"]["max_hold"]["text"], "12h");
    assert_eq!(m["gate_policy"]["after_max_hold"], "stay");
    assert_eq!(m["watch"]["phase"], "full");
    assert_eq!(m["watch"]["seconds"], 172_800);
    assert_eq!(m["watch"]["default"], false);
    let last = arr(&m["steps"])
        .iter()
        .rfind(|st| st["kind"] == "phase")
        .expect("a phase");
    assert_eq!(last["min_duration"]["seconds"], 172_800);

    let rb = runbook(&out);
    let canary = section(&rb, "phase-canary");
    assert!(
        canary.contains("**If a gate is firing when the phase's 6h is up,** the phase is held"),
        "{canary}"
    );
    assert!(
        canary.contains("held 12h (12 hours, `max_hold`)"),
        "{canary}"
    );
    assert!(
        canary.contains("it stays held (`after_max_hold: stay`)"),
        "{canary}"
    );
    let full = section(&rb, "phase-full");
    assert!(
        full.contains("**Watch:** 2d (48 hours) from the moment"),
        "{full}"
    );
    assert!(full.contains("the release is complete"), "{full}");
    assert!(!full.contains("Advance to"), "{full}");
    assert!(section(&rb, "gates").contains("the phase is held"));
    assert!(section(&rb, "overview").contains("watched 2d, then complete"));
    let Some(html) = to_html(&rb) else { return };
    let ids: BTreeSet<String> = attr_values(&html, "id").into_iter().collect();
    for l in attr_values(&html, "href") {
        if let Some(l) = l.strip_prefix('#') {
            assert!(ids.contains(l), "link #{l} has no target");
        }
    }
}

/// By default a failed gate rolls back at once, and the last phase, stating no duration,
/// is watched 24h.
#[test]
fn the_default_policy_rolls_back_and_watches_a_day() {
    let dir = render(PLAN);
    let m = manifest(&dir);
    assert_eq!(
        m["gate_policy"],
        serde_json::json!({"on_failure": "rollback"})
    );
    assert_eq!(
        m["watch"],
        serde_json::json!({"phase": "production", "text": "1d", "seconds": 86_400, "default": true})
    );
    let rb = runbook(&dir);
    assert!(section(&rb, "phase-alpha").contains(
        "**If a gate is firing when the phase's 1d is up,** the release is [rolled \
         back](#rolling-back) at once"
    ));
    let last = section(&rb, "phase-production");
    assert!(
        last.contains(
            "**Watch:** 1d (24 hours, the default: the plan states no `duration` for it)"
        ),
        "{last}"
    );
    assert!(section(&rb, "promotion").contains("watch of 1d has ended without a rollback"));
}
