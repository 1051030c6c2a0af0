//! `plan release` driving a rendered host-target plan through its phases with the commands
//! its manifest lists: real `promtool`, `install`, `nginx` (a prefix of the test's own,
//! reloaded for real) and `curl`, and a small fake Prometheus that loads the installed
//! rules file at each reload and reports its alerting rules through `/api/v1/rules`, with
//! the states the test sets. What is checked is the release as a whole: which files are in
//! place after each verb, what a verb refuses and why, the state and history it keeps, the
//! audit log, the lock, a re-rendered plan, a damaged state, and a step finished after an
//! interrupted one.

use crate::support::*;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long each phase lasts (longer than the 3 s rate window, as validate requires).
const PHASE: Duration = Duration::from_secs(4);

/// A fake Prometheus on loopback: `POST /-/reload` reads the rules file (as Prometheus
/// does), `GET /api/v1/rules` answers its alerting rules, each `inactive` unless the test
/// set another state.
struct FakePrometheus {
    addr: SocketAddr,
    shared: Arc<Mutex<Shared>>,
}

#[derive(Default)]
struct Shared {
    /// The alerting rules loaded at the last reload: (name, labels).
    loaded: Vec<(String, BTreeMap<String, String>)>,
    reloads: usize,
    states: BTreeMap<String, String>,
}

impl FakePrometheus {
    fn start(rules_file: PathBuf) -> FakePrometheus {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the fake Prometheus");
        let addr = listener.local_addr().expect("local addr");
        let shared = Arc::new(Mutex::new(Shared::default()));
        let s = Arc::clone(&shared);
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let mut reader = BufReader::new(&stream);
                let mut first = String::new();
                if reader.read_line(&mut first).is_err() {
                    continue;
                }
                // Headers, then any body (curl's POST has none).
                let mut len = 0usize;
                loop {
                    let mut h = String::new();
                    if reader.read_line(&mut h).unwrap_or(0) == 0 || h.trim().is_empty() {
                        break;
                    }
                    if let Some(v) = h.to_ascii_lowercase().strip_prefix("content-length:") {
                        len = v.trim().parse().unwrap_or(0);
                    }
                }
                let mut body = vec![0; len];
                let _ = reader.read_exact(&mut body);
                let answer = {
                    let mut sh = s.lock().unwrap();
                    if first.starts_with("POST /-/reload") {
                        sh.reloads += 1;
                        sh.loaded = read_rules(&rules_file);
                        String::new()
                    } else if first.starts_with("GET /api/v1/rules") {
                        let rules: Vec<Value> = sh
                            .loaded
                            .iter()
                            .map(|(name, labels)| {
                                json!({
                                    "name": name,
                                    "type": "alerting",
                                    "labels": labels,
                                    "state": sh.states.get(name).map_or("inactive", String::as_str),
                                    "health": "ok",
                                    "lastError": "",
                                })
                            })
                            .collect();
                        json!({"status": "success", "data": {"groups": [{"name": "g", "rules": rules}]}})
                            .to_string()
                    } else {
                        "not found".into()
                    }
                };
                let _ = (&stream).write_all(
                    format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{answer}",
                        answer.len()
                    )
                    .as_bytes(),
                );
            }
        });
        FakePrometheus { addr, shared }
    }

    fn set(&self, alert: &str, state: &str) {
        self.shared
            .lock()
            .unwrap()
            .states
            .insert(alert.into(), state.into());
    }

    fn clear(&self) {
        self.shared.lock().unwrap().states.clear();
    }

    fn reloads(&self) -> usize {
        self.shared.lock().unwrap().reloads
    }

    /// The phases whose rules are loaded.
    fn phases(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .shared
            .lock()
            .unwrap()
            .loaded
            .iter()
            .filter_map(|(_, l)| l.get("phase").cloned())
            .collect();
        v.sort();
        v.dedup();
        v
    }
}

/// The alerting rules of a rules file, as Prometheus loads them; none when it is absent.
fn read_rules(path: &Path) -> Vec<(String, BTreeMap<String, String>)> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return Vec::new();
    };
    let doc: Value = yaml_serde::from_str(&text).expect("a rules file");
    let mut out = Vec::new();
    for g in doc["groups"].as_array().into_iter().flatten() {
        for r in g["rules"].as_array().into_iter().flatten() {
            if let Some(name) = r["alert"].as_str() {
                let labels = r["labels"]
                    .as_object()
                    .map(|m| {
                        m.iter()
                            .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                            .collect()
                    })
                    .unwrap_or_default();
                out.push((name.to_string(), labels));
            }
        }
    }
    out
}

/// A running NGINX in the test's prefix, stopped when dropped.
struct Nginx {
    argv: Vec<String>,
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = std::process::Command::new(&self.argv[0])
            .args(&self.argv[1..])
            .args(["-s", "stop"])
            .output();
    }
}

/// The test's release host: a plan rendered into `out/`, NGINX and the fake Prometheus.
struct Host {
    dir: PathBuf,
    plan_file: PathBuf,
    rendered: PathBuf,
    nginx_conf: PathBuf,
    rules_file: PathBuf,
    prometheus: FakePrometheus,
    _nginx: Nginx,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .expect("bind a free port")
        .local_addr()
        .expect("local addr")
        .port()
}

impl Host {
    /// None when NGINX, promtool or curl is not installed (and not required).
    fn new(name: &str) -> Option<Host> {
        let nginx = tool("nginx")?;
        tool("promtool")?;
        tool("curl")?;
        let dir = temp_dir(name);
        let prefix = dir.join("nginx");
        std::fs::create_dir_all(prefix.join("conf.d")).unwrap();
        std::fs::create_dir_all(dir.join("rules")).unwrap();
        let nginx_conf = prefix.join("conf.d/drill.conf");
        let rules_file = dir.join("rules/drill.rules.yml");
        let p = prefix.display();
        std::fs::write(
            prefix.join("nginx.conf"),
            format!(
                "pid {p}/nginx.pid;\nerror_log {p}/error.log warn;\nevents {{ worker_connections 64; }}\nhttp {{\n    access_log off;\n    client_body_temp_path {p}/client_body_temp;\n    proxy_temp_path {p}/proxy_temp;\n    fastcgi_temp_path {p}/fastcgi_temp;\n    uwsgi_temp_path {p}/uwsgi_temp;\n    scgi_temp_path {p}/scgi_temp;\n    include {};\n}}\n",
                nginx_conf.display()
            ),
        )
        .unwrap();
        // NGINX starts with an empty drop-in: nothing of the plan is in place yet.
        std::fs::write(&nginx_conf, "").unwrap();
        let argv: Vec<String> = vec![
            nginx.display().to_string(),
            "-p".into(),
            format!("{}/", prefix.display()),
            "-e".into(),
            format!("{}/error.log", prefix.display()),
            "-c".into(),
            "nginx.conf".into(),
        ];
        let started = std::process::Command::new(&argv[0])
            .args(&argv[1..])
            .output()
            .expect("nginx runs");
        assert!(
            started.status.success(),
            "nginx starts: {}",
            String::from_utf8_lossy(&started.stderr)
        );
        let nginx = Nginx { argv };
        let prometheus = FakePrometheus::start(rules_file.clone());
        let plan_file = dir.join("drill.yaml");
        std::fs::write(
            &plan_file,
            format!(
                "name: drill
release: {{ from: v1.0.0, to: v1.1.0 }}
service: {{ name: app, image: example/app, port: {service} }}
routing:
  listen: {listen}
  sticky: {{ cookie: uid }}
  resolver: 127.0.0.1:53
monitoring:
  evaluation_interval: 1s
  scrape_interval: 1s
  window: 3s
phases:
  - {{ name: alpha, traffic: 10%, duration: {secs}s }}
  - {{ name: beta, traffic: 50%, duration: {secs}s }}
  - {{ name: full, traffic: 100%, duration: {secs}s }}
gates:
  error_rate: \"< 5%\"
rollback_conditions:
  - {{ metric: error_rate, threshold: 10%, duration: 2s }}
deployment:
  target: host
  prometheus: http://{prom}
  nginx: [{nginx}]
  nginx_conf: {conf}
  rules_file: {rules}
",
                service = free_port(),
                listen = free_port(),
                secs = PHASE.as_secs(),
                prom = prometheus.addr,
                nginx = nginx.argv.join(", "),
                conf = nginx_conf.display(),
                rules = rules_file.display(),
            ),
        )
        .unwrap();
        let out = dir.join("out");
        plan()
            .args(["render"])
            .arg(&plan_file)
            .arg("--out")
            .arg(&out)
            .expect(0);
        Some(Host {
            rendered: out.join("drill"),
            dir,
            plan_file,
            nginx_conf,
            rules_file,
            prometheus,
            _nginx: nginx,
        })
    }

    fn release(&self, args: &[&str]) -> Done {
        plan()
            .arg("release")
            .arg(args[0])
            .arg(&self.rendered)
            .args(&args[1..])
            .env("USER", "tester")
            .run()
    }

    fn state(&self) -> Value {
        let text = std::fs::read_to_string(self.state_dir().join("state.json")).expect("state");
        serde_json::from_str(&text).expect("state is JSON")
    }

    fn state_dir(&self) -> PathBuf {
        self.dir.join("out/.plan-release/drill")
    }

    fn audit(&self) -> Vec<Value> {
        std::fs::read_to_string(self.state_dir().join("audit.jsonl"))
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).expect("an audit line is JSON"))
            .collect()
    }

    /// The step whose files are in place: NGINX's drop-in is the rendered `<step>.conf`,
    /// and the rules file the phase's (absent after rollback or promotion).
    fn assert_in_place(&self, step: &str, phase_rules: bool) {
        let rendered =
            std::fs::read_to_string(self.rendered.join(format!("nginx/{step}.conf"))).unwrap();
        assert_eq!(
            std::fs::read_to_string(&self.nginx_conf).unwrap(),
            rendered,
            "NGINX's drop-in is {step}.conf"
        );
        if phase_rules {
            let rules =
                std::fs::read_to_string(self.rendered.join(format!("prometheus/{step}.rules.yml")))
                    .unwrap();
            assert_eq!(std::fs::read_to_string(&self.rules_file).unwrap(), rules);
            assert_eq!(self.prometheus.phases(), vec![step.to_string()]);
        } else {
            assert!(!self.rules_file.exists(), "the canary's rules are removed");
            assert!(
                self.prometheus.phases().is_empty(),
                "Prometheus has none left"
            );
        }
    }
}

/// Waits until the phase entered at `since` has run its duration.
fn wait_phase(since: Instant) {
    let left = (PHASE + Duration::from_millis(300)).saturating_sub(since.elapsed());
    std::thread::sleep(left);
}

#[test]
fn release_runs_phase_by_phase_as_prometheus_allows() {
    let Some(h) = Host::new("release-phases") else {
        return;
    };
    let d = h.release(&["status"]);
    assert_eq!(d.code, 0, "{}", d.stderr);
    assert!(d.stdout.contains("not started"), "{}", d.stdout);
    let d = h.release(&["next"]);
    assert_eq!(d.code, 1);
    assert!(d.stderr.contains("has not started"), "{}", d.stderr);

    // A dry run prints the commands and changes nothing.
    let d = h.release(&["start", "--dry-run"]);
    assert_eq!(d.code, 0, "{}", d.stderr);
    assert!(d.stdout.contains("would apply step alpha"), "{}", d.stdout);
    assert!(d.stdout.contains("nginx/alpha.conf"), "{}", d.stdout);
    assert!(!h.state_dir().join("state.json").exists());
    assert_eq!(std::fs::read_to_string(&h.nginx_conf).unwrap(), "");
    assert_eq!(h.prometheus.reloads(), 0);

    let d = h.release(&["start"]);
    assert_eq!(d.code, 0, "{}\n{}", d.stdout, d.stderr);
    let alpha_at = Instant::now();
    h.assert_in_place("alpha", true);
    assert_eq!(
        h.state()["at"],
        json!({"kind": "phase", "index": 0, "name": "alpha"})
    );
    // A second start changes nothing.
    let reloads = h.prometheus.reloads();
    let d = h.release(&["start"]);
    assert_eq!(d.code, 0);
    assert!(d.stdout.contains("already in phase alpha"), "{}", d.stdout);
    assert_eq!(h.prometheus.reloads(), reloads, "nothing was run again");

    // Too early, and with a gate pending: `next` waits and says why.
    h.prometheus.set("CanaryGateErrorRate", "pending");
    let d = h.release(&["next"]);
    assert_eq!(d.code, 1);
    assert!(d.stderr.contains("minimum duration"), "{}", d.stderr);
    assert!(
        d.stderr.contains("CanaryGateErrorRate is pending"),
        "{}",
        d.stderr
    );
    wait_phase(alpha_at);
    let d = h.release(&["next"]);
    assert_eq!(d.code, 1);
    assert!(!d.stderr.contains("minimum duration"), "{}", d.stderr);
    assert!(
        d.stderr.contains("CanaryGateErrorRate is pending"),
        "{}",
        d.stderr
    );
    // A gate still firing when the phase's time is up: the plan's policy says roll back.
    h.prometheus.set("CanaryGateErrorRate", "firing");
    let d = h.release(&["next"]);
    assert_eq!(d.code, 1);
    assert!(d.stderr.contains("gate policy"), "{}", d.stderr);
    assert!(d.stderr.contains("`plan release rollback`"), "{}", d.stderr);
    h.assert_in_place("alpha", true);
    // `--force` needs a reason.
    assert_eq!(h.release(&["next", "--force"]).code, 2);
    h.prometheus.clear();

    // Another driver holds the release: refused, nothing run.
    {
        let lock = std::fs::OpenOptions::new()
            .write(true)
            .open(h.state_dir().join("lock"))
            .unwrap();
        lock.try_lock().expect("the test takes the lock");
        let d = h.release(&["next"]);
        assert_eq!(d.code, 1);
        assert!(d.stderr.contains("another `plan release`"), "{}", d.stderr);
        h.assert_in_place("alpha", true);
        let last = h.audit().pop().expect("the refusal is in the audit log");
        assert_eq!(last["outcome"], "refused");
        assert!(
            last["detail"].as_str().unwrap().contains("locked"),
            "{last}"
        );
    }

    let d = h.release(&["next"]);
    assert_eq!(d.code, 0, "{}\n{}", d.stdout, d.stderr);
    let beta_at = Instant::now();
    h.assert_in_place("beta", true);
    let d = h.release(&["complete"]);
    assert_eq!(d.code, 1);
    assert!(
        d.stderr.contains("`next` leads to the last phase"),
        "{}",
        d.stderr
    );

    // A rollback alert firing holds `next` back even with the phase's time run.
    wait_phase(beta_at);
    h.prometheus.set("CanaryRollbackErrorRate", "firing");
    let d = h.release(&["next"]);
    assert_eq!(d.code, 1);
    assert!(
        d.stderr.contains("the release should roll back"),
        "{}",
        d.stderr
    );
    let d = h.release(&["status"]);
    assert!(d.stdout.contains("in phase beta (2 of 3)"), "{}", d.stdout);
    assert!(d.stdout.contains("CanaryRollbackErrorRate"), "{}", d.stdout);
    assert!(d.stdout.contains("next: waits"), "{}", d.stdout);

    // The plan re-rendered half-way: `next` refuses, a rollback goes ahead.
    std::fs::write(
        h.plan_file.as_path(),
        std::fs::read_to_string(&h.plan_file)
            .unwrap()
            .replace("threshold: 10%", "threshold: 20%"),
    )
    .unwrap();
    plan()
        .arg("render")
        .arg(&h.plan_file)
        .arg("--out")
        .arg(h.dir.join("out"))
        .expect(0);
    h.prometheus.clear();
    let d = h.release(&["next"]);
    assert_eq!(d.code, 1);
    assert!(
        d.stderr.contains("changed since the release started"),
        "{}",
        d.stderr
    );
    let d = h.release(&[
        "rollback",
        "--reason",
        "drill: error rate [x](javascript:alert(1)) <b>",
    ]);
    assert_eq!(d.code, 0, "{}\n{}", d.stdout, d.stderr);
    assert!(
        d.stdout.contains("note: the rendered files changed"),
        "{}",
        d.stdout
    );
    h.assert_in_place("rollback", false);
    let d = h.release(&["rollback"]);
    assert_eq!(d.code, 0);
    assert!(d.stdout.contains("already rolled back"), "{}", d.stdout);
    let d = h.release(&["start"]);
    assert_eq!(d.code, 1);
    assert!(d.stderr.contains("move"), "{}", d.stderr);

    // The story.
    let d = h.release(&["report"]);
    assert_eq!(d.code, 0);
    for s in [
        "| start |",
        "| next |",
        "| rollback |",
        "drill\\: error rate \\[x\\](javascript\\:alert(1)) &lt;b&gt;",
        "tester",
    ] {
        assert!(d.stdout.contains(s), "report has {s}:\n{}", d.stdout);
    }
    // Invisible characters are refused as a reason.
    assert_eq!(
        h.release(&["rollback", "--reason", "gnp\u{202E}exe"]).code,
        2
    );
    let d = h.release(&["report", "--format", "json"]);
    let report: Value = serde_json::from_str(&d.stdout).expect("JSON report");
    let verbs: Vec<&str> = report["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["verb"].as_str().unwrap())
        .collect();
    assert_eq!(verbs, ["start", "next", "rollback"]);
    assert_eq!(report["outcome"], "rolled back");

    // Every verb is in the audit log, refusals included.
    let audit = h.audit();
    let outcomes: Vec<(String, String)> = audit
        .iter()
        .map(|e| {
            (
                e["verb"].as_str().unwrap().to_string(),
                e["outcome"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    for want in [
        ("next", "refused"),
        ("start", "done"),
        ("start", "unchanged"),
        ("next", "done"),
        ("rollback", "done"),
        ("rollback", "unchanged"),
        ("start", "refused"),
    ] {
        assert!(
            outcomes.contains(&(want.0.to_string(), want.1.to_string())),
            "audit has {want:?}: {outcomes:?}"
        );
    }
    assert!(audit.iter().all(|e| e["by"] == "tester"));
}

#[test]
fn release_completes_after_the_last_phase_watch() {
    let Some(h) = Host::new("release-complete") else {
        return;
    };
    assert_eq!(h.release(&["start"]).code, 0);
    let mut at = Instant::now();
    for phase in ["beta", "full"] {
        wait_phase(at);
        let d = h.release(&["next"]);
        assert_eq!(d.code, 0, "{}\n{}", d.stdout, d.stderr);
        at = Instant::now();
        h.assert_in_place(phase, true);
    }
    let d = h.release(&["next"]);
    assert_eq!(d.code, 1);
    assert!(d.stderr.contains("is the last"), "{}", d.stderr);
    let d = h.release(&["complete"]);
    assert_eq!(d.code, 1);
    assert!(d.stderr.contains("watch"), "{}", d.stderr);
    // The last phase's gates only warn: a gate pending does not hold the promotion.
    h.prometheus.set("CanaryGateErrorRate", "firing");
    wait_phase(at);
    let d = h.release(&["complete"]);
    assert_eq!(d.code, 0, "{}\n{}", d.stdout, d.stderr);
    h.assert_in_place("promotion", false);
    assert_eq!(h.state()["at"], json!({"kind": "completed"}));
    let d = h.release(&["rollback"]);
    assert_eq!(d.code, 1);
    assert!(
        d.stderr.contains("is the stable version now"),
        "{}",
        d.stderr
    );
}

#[test]
fn release_finishes_an_interrupted_step_and_refuses_a_damaged_state() {
    let Some(h) = Host::new("release-resume") else {
        return;
    };
    assert_eq!(h.release(&["start"]).code, 0);
    let at = Instant::now();
    // The rules folder disappears: the step stops at its fifth command, half applied.
    std::fs::remove_dir_all(h.rules_file.parent().unwrap()).unwrap();
    wait_phase(at);
    // (The phase's rules are still loaded in Prometheus, so the gates hold.)
    let d = h.release(&["next", "--reason", "beta on schedule"]);
    assert_eq!(d.code, 1, "{}", d.stdout);
    assert!(d.stderr.contains("step beta stopped"), "{}", d.stderr);
    assert!(d.stderr.contains("half-way"), "{}", d.stderr);
    let audit = h.audit();
    assert!(
        audit.iter().any(|e| e["outcome"] == "begun"),
        "the step's start is logged"
    );
    assert_eq!(audit.last().unwrap()["outcome"], "failed");
    assert_eq!(h.state()["applying"]["step"], "beta");
    let d = h.release(&["status"]);
    assert!(d.stdout.contains("interrupted: step beta"), "{}", d.stdout);
    // Fixed: the next verb finishes the step, and does no more.
    std::fs::create_dir_all(h.rules_file.parent().unwrap()).unwrap();
    let d = h.release(&["next"]);
    assert_eq!(d.code, 0, "{}\n{}", d.stdout, d.stderr);
    assert!(d.stdout.contains("finishing it first"), "{}", d.stdout);
    h.assert_in_place("beta", true);
    assert_eq!(h.state()["at"]["name"], "beta");
    assert!(h.state()["applying"].is_null());
    assert!(h.audit().iter().any(|e| e["outcome"] == "resumed"));
    // The history keeps the reason of whoever began the step, and who finished it.
    let event = h.state()["history"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert_eq!(event["reason"], "beta on schedule");
    assert!(
        event["detail"].to_string().contains("finished by tester"),
        "{event}"
    );

    // A state edited into a phase the plan does not have: refused, no panic.
    let state = h.state_dir().join("state.json");
    let text = std::fs::read_to_string(&state).unwrap();
    std::fs::write(&state, text.replacen("\"index\": 1", "\"index\": 7", 1)).unwrap();
    for verb in ["status", "next", "rollback"] {
        let d = h.release(&[verb]);
        assert_eq!(d.code, 1, "{verb}: {}{}", d.stdout, d.stderr);
        assert!(
            d.stderr.contains("is not a phase of plan drill"),
            "{verb}: {}",
            d.stderr
        );
    }
    // A deleted state beside an audit log that shows a release: not started over.
    std::fs::remove_file(&state).unwrap();
    let d = h.release(&["start"]);
    assert_eq!(d.code, 1);
    assert!(
        d.stderr.contains("is missing, but the audit log"),
        "{}",
        d.stderr
    );
    // A state file cut short: every verb refuses, naming the line and column.
    std::fs::write(&state, &text[..text.len() / 2]).unwrap();
    for verb in ["next", "rollback", "status"] {
        let d = h.release(&[verb]);
        assert_eq!(d.code, 1, "{verb}");
        assert!(
            d.stderr.contains("state.json:") && d.stderr.contains("not a release state"),
            "{verb}: {}",
            d.stderr
        );
    }
    h.assert_in_place("beta", true);
    // Edited by hand into another shape: refused the same way.
    std::fs::write(
        &state,
        text.replace("\"kind\": \"phase\"", "\"kind\": \"party\""),
    )
    .unwrap();
    let d = h.release(&["rollback"]);
    assert_eq!(d.code, 1);
    assert!(d.stderr.contains("not a release state"), "{}", d.stderr);
    let refused = h
        .audit()
        .iter()
        .filter(|e| {
            e["outcome"] == "refused"
                && e["detail"]
                    .as_str()
                    .unwrap()
                    .contains("not a release state")
        })
        .count();
    assert!(refused >= 3, "the refusals are in the audit log");
}

/// Under docker compose (no daemon here) a dry run shows the commands the manifest lists
/// for the step, in order, and those the runbook shows; nothing is written.
#[test]
fn dry_run_shows_the_manifests_commands_and_changes_nothing() {
    let rendered = render("plans/lawsker.yaml");
    let manifest: Value =
        serde_json::from_str(&std::fs::read_to_string(rendered.join("manifest.json")).unwrap())
            .unwrap();
    let runbook = std::fs::read_to_string(rendered.join("RUNBOOK.md")).unwrap();
    let d = plan()
        .args(["release", "start", "--dry-run"])
        .arg(&rendered)
        .expect(0);
    let alpha = &manifest["steps"][0];
    assert_eq!(alpha["name"], "alpha");
    let mut at = 0;
    for c in alpha["commands"].as_array().unwrap() {
        let run = c["run"].as_str().unwrap();
        let found = d.stdout[at..]
            .find(run)
            .unwrap_or_else(|| panic!("`{run}` in order in:\n{}", d.stdout));
        at += found + run.len();
        assert!(runbook.contains(run), "the runbook shows `{run}`");
    }
    assert!(
        !rendered.parent().unwrap().join(".plan-release").exists(),
        "a dry run writes nothing"
    );
}
