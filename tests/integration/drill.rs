//! The release drill, live on loopback with the real programs and no Docker daemon: a plan
//! with second-long timings is rendered by `plan render`, and its files run as rendered:
//! NGINX splits users between a stable and a canary stub (found by name through the
//! plan's `resolver`, the test's DNS server), a real Prometheus scrapes both and loads the
//! phase's rules file through its reload endpoint (as the manifest's step does), a real
//! Alertmanager runs the rendered alertmanager.yml and pages the SMS gateway (a sink here).
//!
//! What it shows: the phase's share of users reaches the canary, stickily; while the canary
//! is healthy no rollback alert fires; once the canary fails half its requests Prometheus
//! fires the rendered rollback alert and Alertmanager delivers it with its plan, phase and
//! `action: rollback`. Then the live counterpart of the promtool proof: the drill's raw
//! series, exported from Prometheus' API and replayed by `plan simulate --trace`, give every
//! rule's pending and firing moments exactly as Prometheus had them.
//!
//! The rendered NGINX file runs as rendered, byte for byte: the plan keeps the site on
//! loopback (`routing.listen_address`) and its access log in the drill's folder
//! (`routing.access_log`).
//!
//! Here the rendered files are installed by hand, so that the phase's first evaluation is
//! known for the replay. The release driver's own drill, where `plan release` installs them
//! and `plan release serve` rolls back on Alertmanager's webhook, is `drill_release.rs`.

use crate::alertmanager_live::{Alertmanager, Sink, which};
use crate::dns::FakeDns;
use crate::drill_stack::*;
use crate::support::*;
use std::collections::{BTreeMap, BTreeSet};
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Where the two services answer: two loopback addresses, one port, as two containers.
pub(crate) const STABLE_IP: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 2);
pub(crate) const CANARY_IP: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 3);

/// The canary's share in the drill's phase.
pub(crate) const SHARE: f64 = 0.30;
/// Requests per second through NGINX, and distinct users.
const RATE: f64 = 120.0;
const USERS: u32 = 1500;
/// How long the healthy canary is watched before the fault (the rate window, the longest
/// `for` and some margin, several times over).
const HEALTHY: Duration = Duration::from_secs(15);
/// The canary's error ratio once faulty.
const FAULT: f64 = 0.5;
/// The evaluation interval, in ms (the plan's `evaluation_interval: 1s`).
const INTERVAL_MS: i64 = 1000;

/// The drill's plan: one 30% phase, gates and rollback conditions on the built-in request
/// metrics, second-long timings (the schema's minimum interval is 1s; the window holds
/// five scrapes; each `for` is at least the evaluation interval), the SMS gateway at `sms`.
fn drill_plan(listen: u16, port: u16, dns: SocketAddr, sms: SocketAddr, log: &Path) -> String {
    let log = log.display();
    format!(
        r#"# The release drill (tests/integration/drill.rs): second-long timings.
name: drill
release: {{ from: v1, to: v2 }}
service: {{ name: backend, image: example/backend, port: {port} }}
routing:
  listen: {listen}
  listen_address: 127.0.0.1
  access_log: {log}
  sticky: {{ cookie: drill_uid }}
  resolver: "{dns}"
traffic: {{ requests_per_second: {RATE} }}
monitoring:
  evaluation_interval: 1s
  scrape_interval: 1s
  window: 5s
  runbook_url: https://drill.example.com/releases/drill/RUNBOOK.md
phases:
  - {{ name: canary, traffic: 30%, duration: 10m }}
  - {{ name: full, traffic: 100% }}
gates:
  error_rate: "< 5%"
  response_time_p95: "< 500ms"
rollback_conditions:
  - {{ metric: error_rate, threshold: 20%, duration: 3s }}
  - {{ metric: response_time_p95, threshold: 2s, duration: 3s }}
notifications:
  sms: {{ webhook_url: "http://{sms}/v1/alerts" }}
"#
    )
}

/// Prometheus' configuration as a deployment writes it: both services scraped every
/// second with `service` and `track` as target labels, the phase's rules from `rules/`,
/// alerts to the drill's Alertmanager.
pub(crate) fn prometheus_yml(
    dir: &Path,
    stable: SocketAddr,
    canary: SocketAddr,
    am: SocketAddr,
) -> String {
    format!(
        r#"global:
  scrape_interval: 1s
  scrape_timeout: 900ms
  evaluation_interval: 1s
rule_files: ["{rules}/*.yml"]
alerting:
  alertmanagers:
    - static_configs: [{{ targets: ["{am}"] }}]
scrape_configs:
  - job_name: drill
    static_configs:
      - targets: ["{stable}"]
        labels: {{ service: backend, track: stable }}
      - targets: ["{canary}"]
        labels: {{ service: backend, track: canary }}
"#,
        rules = dir.join("rules").display()
    )
}

/// The samples of the series `promql` selects, as (labels, [(Unix ms, value)]), from an
/// instant query of a range selector at `at_ms` (raw samples).
pub(crate) fn samples(
    prom: &Prometheus,
    promql: &str,
    at_ms: i64,
) -> Vec<(serde_json::Value, Vec<(i64, f64)>)> {
    let data = prom.query(promql, at_ms);
    data["result"]
        .as_array()
        .expect("a matrix")
        .iter()
        .map(|s| {
            let values = s["values"]
                .as_array()
                .expect("values")
                .iter()
                .map(|v| {
                    let t = v[0].as_f64().expect("time");
                    let x: f64 = v[1].as_str().expect("value").parse().expect("number");
                    ((t * 1000.0).round() as i64, x)
                })
                .collect();
            (s["metric"].clone(), values)
        })
        .collect()
}

/// When the canary's scrapes happen within each second, in ms: its `up` samples' times
/// modulo the interval (Prometheus keeps a target's scrapes on a fixed offset).
pub(crate) fn canary_scrape_phase(prom: &Prometheus) -> i64 {
    poll(
        Duration::from_secs(30),
        Duration::from_millis(250),
        "three scrapes of each service",
        || prom.proc.log(),
        || {
            let up = samples(prom, "up{job=\"drill\"}[10s]", unix_ms());
            let ok = up.len() == 2
                && up
                    .iter()
                    .all(|(_, v)| v.len() >= 3 && v.iter().all(|s| s.1 == 1.0));
            if !ok {
                return None;
            }
            let (_, v) = up.iter().find(|(m, _)| m["track"] == "canary")?;
            Some(v.last()?.0.rem_euclid(INTERVAL_MS))
        },
    )
}

/// How the phase's rules were loaded: the first evaluation (t=0 of the replay) and the
/// group's evaluation offset, in ms.
struct PhaseStart {
    start_ms: i64,
    offset_ms: i64,
    /// Whether the canary's scrapes land far enough from the evaluations that no
    /// evaluation can run before a scrape it should see is stored (see [`start_phase`]).
    clear_of_scrapes: bool,
}

/// Starts the phase as its step does: the phase's rules file goes into Prometheus' rules
/// folder and Prometheus reloads. The group's first evaluation is the replay's t=0.
///
/// A scrape's samples carry its start time but are stored a few ms later; an evaluation
/// that runs in between does not see them, though its range includes them. The replay
/// sees every sample in range, so for an exact comparison the canary's scrapes must not
/// fall just before the evaluations. Prometheus places a group's evaluations at an offset
/// from a hash of its name and file, so when they fall within [`RACE_MS`] after the
/// canary's scrapes the rules are loaded again under another file name (a new group, a new
/// offset, and a fresh start), up to four times.
fn start_phase(prom: &Prometheus, rules: &Path, dir: &Path, scrape_ms: i64) -> PhaseStart {
    let rules_dir = dir.join("rules");
    let mut clear = false;
    let mut start = (0, 0);
    for attempt in 0..4 {
        for old in std::fs::read_dir(&rules_dir).expect("rules dir").flatten() {
            std::fs::remove_file(old.path()).expect("remove the rules of an earlier attempt");
        }
        let name = match attempt {
            0 => "drill.rules.yml".to_string(),
            n => format!("drill-{n}.rules.yml"),
        };
        let file = rules_dir.join(name);
        std::fs::copy(rules, &file).expect("install the phase's rules");
        let asked = unix_ms();
        prom.reload();
        start = first_evaluation(prom, asked, unix_ms());
        let gap = (start.1 - scrape_ms).rem_euclid(INTERVAL_MS);
        clear = gap > RACE_MS && gap < INTERVAL_MS - 10;
        eprintln!(
            "drill: rules loaded as {}: first evaluation at {}, offset {} ms, canary scrapes at +{scrape_ms} ms ({gap} ms before each evaluation){}",
            file.display(),
            start.0,
            start.1,
            if clear {
                ""
            } else {
                ": too close, loading again"
            }
        );
        if clear {
            break;
        }
    }
    PhaseStart {
        start_ms: start.0,
        offset_ms: start.1,
        clear_of_scrapes: clear,
    }
}

/// How long before an evaluation a scrape may still be in flight: a scrape of a loopback
/// stub is stored within a few ms, 150 ms covers a loaded machine.
const RACE_MS: i64 = 150;

/// The first evaluation of the group loaded after `asked` (Unix ms, before the reload
/// request; `loaded`, after it returned), and its offset: the first sample of its canary
/// `targets_up` recording rule, which every evaluation writes (the canary is up). The API's
/// `lastEvaluation` is the wall-clock start of an evaluation, not its timestamp, so the
/// samples tell. A group replaced by the reload has stopped once the reload returns, so
/// samples after `loaded` are the new group's, and give its offset.
fn first_evaluation(prom: &Prometheus, asked: i64, loaded: i64) -> (i64, i64) {
    poll(
        Duration::from_secs(30),
        Duration::from_millis(100),
        "the phase's rule group evaluated",
        || prom.proc.log(),
        || {
            let now = unix_ms();
            let times: Vec<i64> = samples(
                prom,
                "service_track:targets_up:sum{plan=\"drill\",track=\"canary\"}[60s]",
                now,
            )
            .into_iter()
            .flat_map(|(_, v)| v.into_iter().map(|s| s.0))
            .collect();
            let offset = times.iter().find(|t| **t > loaded)?.rem_euclid(INTERVAL_MS);
            let first = times
                .iter()
                .filter(|t| **t >= asked && t.rem_euclid(INTERVAL_MS) == offset)
                .min()?;
            Some((*first, offset))
        },
    )
}

/// The rollback alerts Prometheus has active now (pending or firing), as `name state`.
fn active_rollbacks(prom: &Prometheus) -> Vec<String> {
    prom.api("/api/v1/alerts")["alerts"]
        .as_array()
        .expect("alerts")
        .iter()
        .filter(|a| a["labels"]["action"] == "rollback")
        .map(|a| format!("{} {}", a["labels"]["alertname"], a["state"]))
        .collect()
}

/// Each alert's state at each evaluation from `ps.start_ms` to `end`, from Prometheus'
/// `ALERTS` series (a sample per evaluation while pending or firing), as transitions:
/// (Unix ms, alert, `pending` | `firing` | `cleared` | `resolved`).
fn prometheus_transitions(
    prom: &Prometheus,
    ps: &PhaseStart,
    end: i64,
) -> Vec<(i64, String, String)> {
    let span = end - ps.start_ms + 1000;
    let evals = evaluations(prom, ps, end);
    let mut state: BTreeMap<(String, i64), String> = BTreeMap::new();
    for (m, values) in samples(prom, &format!("ALERTS[{span}ms]"), end) {
        let name = m["alertname"].as_str().expect("alertname").to_string();
        let st = m["alertstate"].as_str().expect("alertstate").to_string();
        for (t, _) in values {
            if evals.contains(&t) {
                state.insert((name.clone(), t), st.clone());
            }
        }
    }
    let names: BTreeSet<String> = state.keys().map(|k| k.0.clone()).collect();
    let mut out = Vec::new();
    for name in names {
        let mut was = "inactive";
        for &t in &evals {
            let now = state
                .get(&(name.clone(), t))
                .map_or("inactive", String::as_str);
            let event = match (was, now) {
                ("inactive", "pending") => Some("pending"),
                ("inactive" | "pending", "firing") => Some("firing"),
                ("pending", "inactive") => Some("cleared"),
                ("firing", "inactive") => Some("resolved"),
                _ => None,
            };
            if let Some(e) = event {
                out.push((t, name.clone(), e.to_string()));
            }
            was = if now == "inactive" { "inactive" } else { now };
        }
    }
    out.sort();
    out
}

/// Prometheus' evaluations of the phase's group from its start to `end`: every grid time,
/// checked against the recording rule's samples (a missed evaluation would make the
/// comparison meaningless, so it fails the test, saying so).
fn evaluations(prom: &Prometheus, ps: &PhaseStart, end: i64) -> Vec<i64> {
    let span = end - ps.start_ms + 1000;
    let recorded: BTreeSet<i64> = samples(
        prom,
        &format!("service_track:targets_up:sum{{plan=\"drill\",track=\"canary\"}}[{span}ms]"),
        end,
    )
    .into_iter()
    .flat_map(|(_, v)| v.into_iter().map(|s| s.0))
    .filter(|t| *t >= ps.start_ms && t.rem_euclid(INTERVAL_MS) == ps.offset_ms)
    .collect();
    let grid: Vec<i64> = (ps.start_ms..=end).step_by(INTERVAL_MS as usize).collect();
    let missing: Vec<&i64> = grid.iter().filter(|t| !recorded.contains(t)).collect();
    assert!(
        missing.is_empty(),
        "Prometheus skipped evaluations at {missing:?} (an overloaded machine): the replay evaluates every one, so the two cannot be compared"
    );
    grid
}

/// The replay's transitions from its JSON report, in absolute Unix ms.
fn replay_transitions(report: &serde_json::Value, end: i64) -> Vec<(i64, String, String)> {
    let zero = report["start_unix_ms"].as_i64().expect("start_unix_ms");
    let mut out: Vec<(i64, String, String)> = report["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter(|e| {
            matches!(
                e["event"].as_str(),
                Some("pending" | "firing" | "cleared" | "resolved")
            )
        })
        .map(|e| {
            (
                zero + e["at_ms"].as_i64().expect("at_ms"),
                e["alert"].as_str().expect("alert").to_string(),
                e["event"].as_str().expect("event").to_string(),
            )
        })
        .filter(|e| e.0 <= end)
        .collect();
    out.sort();
    out
}

/// The raw series every rule reads (request counters, latency histogram, `up`), as
/// Prometheus' API returns them for an instant query of a range selector at `end`.
fn export_trace(prom: &Prometheus, since: i64, end: i64) -> String {
    let span = end - since;
    prom.query_raw(
        &format!(
            "{{job=\"drill\",__name__=~\"http_requests_total|http_request_duration_seconds_(bucket|count|sum)|up\"}}[{span}ms]"
        ),
        end,
    )
}

/// `plan simulate --trace` of the drill's data, in 2.42's semantics (the Prometheus run
/// here), on Prometheus' evaluation grid, from the phase's first evaluation.
fn replay(plan_file: &Path, trace: &Path, ps: &PhaseStart, end: i64) -> serde_json::Value {
    let done = plan()
        .args(["simulate"])
        .arg(plan_file)
        .arg("--trace")
        .arg(trace)
        .args(["--semantics", "prometheus2", "--format", "json"])
        .arg("--start")
        .arg(seconds(ps.start_ms))
        .arg("--end")
        .arg(seconds(end))
        .arg("--evaluation-offset")
        .arg(format!("{}ms", ps.offset_ms))
        .timeout(Duration::from_secs(60))
        .run();
    assert!(
        done.code == 0,
        "plan simulate --trace failed ({}):\n{}",
        done.code,
        done.stderr
    );
    serde_json::from_str(&done.stdout).expect("the replay's JSON")
}

/// Checks the users' split: every user stays on one track, the backend that answered is
/// the track NGINX named, and the canary's share of users is the phase's, within 4.5
/// binomial standard deviations.
pub(crate) fn check_split(hits: &[Hit]) -> (usize, f64) {
    let mut by_user: BTreeMap<u32, BTreeSet<String>> = BTreeMap::new();
    for h in hits {
        let track = h
            .track
            .clone()
            .unwrap_or_else(|| panic!("no X-Release-Track: {h:?}"));
        assert_eq!(
            h.body, track,
            "the backend that answered is the track NGINX chose: {h:?}"
        );
        by_user.entry(h.user).or_default().insert(track);
    }
    let moved: Vec<_> = by_user.iter().filter(|(_, t)| t.len() > 1).collect();
    assert!(moved.is_empty(), "users moved between tracks: {moved:?}");
    let n = by_user.len();
    let canary = by_user.values().filter(|t| t.contains("canary")).count();
    let share = canary as f64 / n as f64;
    let sd = (SHARE * (1.0 - SHARE) / n as f64).sqrt();
    assert!(
        (share - SHARE).abs() <= 4.5 * sd,
        "{canary} of {n} users on the canary ({:.1}%), expected {:.0}% ± {:.1} pts",
        share * 100.0,
        SHARE * 100.0,
        450.0 * sd
    );
    (n, share)
}

/// The programs the drill runs, or `None` (skipped, or failed under
/// `PLAN_CONFORMANCE=require`) when one is missing.
pub(crate) fn programs() -> Option<(PathBuf, PathBuf, PathBuf)> {
    let nginx = tool("nginx")?;
    let prometheus = tool("prometheus")?;
    let am = which("alertmanager").or_else(|| tool("prometheus-alertmanager"))?;
    Some((nginx, prometheus, am))
}

/// The drill's stack, started in order and stopped in the order of its fields: the users
/// first, then the programs, then the services.
struct Drill {
    load: LoadGen,
    prom: Prometheus,
    prom_started: i64,
    nginx: Nginx,
    am: Alertmanager,
    sms: Sink,
    _dns: FakeDns,
    stable: Stub,
    canary: Stub,
    dir: PathBuf,
    /// The plan's rendered folder.
    out: PathBuf,
    plan_file: PathBuf,
    /// The site file NGINX includes: the rendered step's file.
    site_file: PathBuf,
}

impl Drill {
    /// The services, the plan rendered for them, Alertmanager, NGINX, the users and
    /// Prometheus (without rules: the phase has not started).
    fn start(nginx_bin: &Path, prom_bin: &Path, am_bin: &Path) -> Drill {
        let dir = temp_dir("drill");
        for d in ["rules", "nginx", "am", "prometheus"] {
            std::fs::create_dir_all(dir.join(d)).expect("drill folders");
        }
        // The services, found by name as in compose: `backend` and `backend-canary`.
        let (stable, canary) = stub_pair(STABLE_IP, CANARY_IP);
        stable.set_latency(Duration::from_millis(2));
        canary.set_latency(Duration::from_millis(2));
        let dns = FakeDns::start(&[("backend", STABLE_IP), ("backend-canary", CANARY_IP)]);
        let sms = Sink::start();
        let listen = SocketAddr::from(([127, 0, 0, 1], free_port()));
        let plan_file = write(
            &dir,
            "drill.yaml",
            &drill_plan(
                listen.port(),
                stable.addr.port(),
                dns.addr,
                sms.addr,
                &dir.join("nginx/access.log"),
            ),
        );
        let out = render_plan(&plan_file, &dir);
        let am = Alertmanager::start(
            am_bin,
            &out.join("alertmanager/alertmanager.yml"),
            &dir.join("am"),
        );
        let site_file = dir.join("nginx/site.conf");
        install_site(&out, "canary", &site_file);
        let nginx = Nginx::start(nginx_bin, &dir.join("nginx"), &site_file, listen);
        let load = LoadGen::start(listen, "drill_uid", USERS, 2, RATE);
        let config = write(
            &dir.join("prometheus"),
            "prometheus.yml",
            &prometheus_yml(&dir, stable.addr, canary.addr, am.addr),
        );
        let prom = Prometheus::start(prom_bin, &config, &dir.join("prometheus"));
        Drill {
            load,
            prom,
            prom_started: unix_ms(),
            nginx,
            am,
            sms,
            _dns: dns,
            stable,
            canary,
            dir,
            out,
            plan_file,
            site_file,
        }
    }

    /// Watches the healthy canary from the phase's start for [`HEALTHY`]: no rollback
    /// alert, pending or firing, and every request answered 200.
    fn watch_healthy(&self, ps: &PhaseStart) {
        let until = ps.start_ms + HEALTHY.as_millis() as i64;
        while unix_ms() < until {
            let active = active_rollbacks(&self.prom);
            assert!(
                active.is_empty(),
                "rollback alerts on a healthy canary: {active:?}"
            );
            std::thread::sleep(Duration::from_millis(250));
        }
        let hits = self.load.hits();
        assert!(
            hits.iter().all(|h| h.status == 200),
            "a healthy stack answers 200: {:?}",
            hits.iter().find(|h| h.status != 200)
        );
    }

    /// Switches the canary to its fault and waits for Prometheus to fire the rollback:
    /// when the fault began, and the alert's `activeAt` (Unix ms).
    fn fault_until_firing(&self) -> (i64, i64) {
        self.canary.set_fault(FAULT);
        let fault_ms = unix_ms();
        let active_at = poll(
            Duration::from_secs(60),
            Duration::from_millis(100),
            "CanaryRollbackErrorRate firing",
            || self.prom.proc.log(),
            || {
                self.prom.api("/api/v1/alerts")["alerts"]
                    .as_array()?
                    .iter()
                    .find(|a| {
                        a["labels"]["alertname"] == "CanaryRollbackErrorRate"
                            && a["state"] == "firing"
                    })
                    .and_then(|a| a["activeAt"].as_str()?.parse::<jiff::Timestamp>().ok())
            },
        );
        (fault_ms, active_at.as_millisecond())
    }

    /// Waits for Alertmanager to page the SMS gateway with the rollback alert (its labels
    /// say which plan, phase and action); when it arrived.
    fn check_page(&self) -> i64 {
        let page = self.sms.take(1, "SMS gateway", &self.am).remove(0);
        let paged_ms = unix_ms();
        let body: serde_json::Value = serde_json::from_str(&page.body).expect("webhook JSON");
        assert_eq!(body["status"], "firing", "{body}");
        let alerts = body["alerts"].as_array().expect("alerts");
        assert!(
            alerts
                .iter()
                .all(|a| a["labels"]["alertname"] == "CanaryRollbackErrorRate"),
            "only the error-rate rollback pages: {body}"
        );
        for (k, v) in [
            ("plan", "drill"),
            ("phase", "canary"),
            ("action", "rollback"),
            ("severity", "critical"),
        ] {
            assert_eq!(alerts[0]["labels"][k], v, "label {k}: {body}");
        }
        paged_ms
    }

    /// Puts the rendered rollback file in the phase file's place, checks and reloads NGINX,
    /// and waits until 200 requests in a row (a few dozen users who were on the canary
    /// among them) are answered by stable. When it reloaded (Unix ms), and how long after
    /// it the last request reached the canary.
    fn roll_back_nginx(&self) -> (i64, i64) {
        install_site(&self.out, "rollback", &self.site_file);
        let swapped = unix_ms();
        self.nginx.reload();
        let last_canary = poll(
            Duration::from_secs(20),
            Duration::from_millis(50),
            "every user on stable after the rollback reload",
            || self.nginx.error_log(),
            || {
                let after: Vec<Hit> = self
                    .load
                    .hits()
                    .into_iter()
                    .filter(|h| h.at_ms >= swapped)
                    .collect();
                let last = after
                    .iter()
                    .rposition(|h| h.track.as_deref() != Some("stable"));
                let run = after.len() - last.map_or(0, |i| i + 1);
                (run >= 200).then(|| last.map_or(swapped, |i| after[i].at_ms))
            },
        );
        (swapped, last_canary - swapped)
    }

    /// The access log names the plan, the step and the track of every request.
    fn check_access_log(&self) {
        let access = std::fs::read_to_string(self.dir.join("nginx/access.log")).unwrap_or_default();
        for step in [
            "step=canary track=canary",
            "step=canary track=stable",
            "step=rollback track=stable",
        ] {
            assert!(
                access.contains(&format!("plan=drill {step}")),
                "the access log names the plan, step and track: no `{step}`"
            );
        }
    }
}

/// `plan validate --deny-warnings` and `plan render` of the drill's plan; its rendered
/// folder.
pub(crate) fn render_plan(plan_file: &Path, dir: &Path) -> PathBuf {
    plan()
        .args(["validate", "--deny-warnings"])
        .arg(plan_file)
        .expect(0);
    plan()
        .arg("render")
        .arg(plan_file)
        .arg("--out")
        .arg(dir.join("out"))
        .expect(0);
    dir.join("out/drill")
}

/// Puts the rendered NGINX file of `step`, as rendered, where NGINX reads it.
fn install_site(out: &Path, step: &str, site: &Path) {
    std::fs::copy(out.join(format!("nginx/{step}.conf")), site)
        .unwrap_or_else(|e| panic!("nginx/{step}.conf: {e}"));
}

/// The rollback rule's first firing in the replay, in Unix ms.
fn replay_firing(report: &serde_json::Value, ps: &PhaseStart) -> i64 {
    report["rules"]
        .as_array()
        .expect("rules")
        .iter()
        .find(|r| r["alert"] == "CanaryRollbackErrorRate")
        .and_then(|r| r["first_firing_ms"].as_i64())
        .map(|t| t + ps.start_ms)
        .unwrap_or_else(|| panic!("the replay never fires the rollback: {report:#}"))
}

/// The first `event` of `alert` among transitions.
fn first(transitions: &[(i64, String, String)], alert: &str, event: &str) -> Option<i64> {
    transitions
        .iter()
        .find(|(_, a, e)| a == alert && e == event)
        .map(|t| t.0)
}

#[test]
fn drill_canary_split_rollback_alert_and_replay() {
    let Some((nginx_bin, prom_bin, am_bin)) = programs() else {
        return;
    };
    let _one = one_drill_at_a_time();
    let t0 = std::time::Instant::now();
    let mut drill = Drill::start(&nginx_bin, &prom_bin, &am_bin);
    let scrape_ms = canary_scrape_phase(&drill.prom);
    let rules = drill.out.join("prometheus/canary.rules.yml");
    let ps = start_phase(&drill.prom, &rules, &drill.dir, scrape_ms);
    eprintln!("drill: phase started {:?} into the test", t0.elapsed());

    drill.watch_healthy(&ps);
    let (fault_ms, active_ms) = drill.fault_until_firing();
    let firing_seen = unix_ms();
    let paged_ms = drill.check_page();
    // What the driver will do on that page, by hand here.
    let (swapped_ms, lag_ms) = drill.roll_back_nginx();
    drill.check_access_log();

    // Prometheus' transitions from the phase's start to a few evaluations past the firing
    // (already evaluated: the page came a group_wait later), and the replay's.
    let end = ps.start_ms + ((firing_seen - ps.start_ms) / INTERVAL_MS + 3) * INTERVAL_MS;
    poll(
        Duration::from_secs(30),
        Duration::from_millis(200),
        "Prometheus evaluated past the end of the comparison",
        || drill.prom.proc.log(),
        || (unix_ms() > end + 500).then_some(()),
    );
    let live = prometheus_transitions(&drill.prom, &ps, end);
    let firing_ms = first(&live, "CanaryRollbackErrorRate", "firing").expect("firing in ALERTS");
    let trace = write(
        &drill.dir,
        "trace.json",
        &export_trace(&drill.prom, drill.prom_started - 1000, end),
    );
    let report = replay(&drill.plan_file, &trace, &ps, end);
    let replayed = replay_transitions(&report, end);
    let replay_firing = replay_firing(&report, &ps);
    // Every selector read the exported series, and every rule was evaluated (the
    // silent-canary rule reads `up`).
    assert_eq!(
        report["unmatched_selectors"],
        serde_json::json!([]),
        "{report:#}"
    );
    assert!(report.get("not_evaluated").is_none(), "{report:#}");

    let hits = drill.load.stop();
    let before: Vec<Hit> = hits.into_iter().filter(|h| h.at_ms < swapped_ms).collect();
    let (users, share) = check_split(&before);
    eprintln!(
        "drill: {users} users, {:.1}% on the canary; stable served {:?}, canary {:?}",
        share * 100.0,
        drill.stable.served(),
        drill.canary.served()
    );
    eprintln!(
        "drill: fault at {fault_ms}; rollback alert pending at {active_ms}, firing at {firing_ms} ({} ms after the fault), paged {} ms after firing; the replay fires at {replay_firing}",
        firing_ms - fault_ms,
        paged_ms - firing_ms
    );
    eprintln!(
        "drill: NGINX reloaded on the rollback file {} ms after the page; every request on stable {lag_ms} ms after the reload",
        swapped_ms - paged_ms
    );
    eprintln!(
        "drill: Prometheus' transitions: {live:?}\ndrill: replay's transitions: {replayed:?}"
    );
    assert_eq!(
        Some(active_ms),
        first(&live, "CanaryRollbackErrorRate", "pending"),
        "the API's activeAt is the evaluation ALERTS went pending at"
    );
    if ps.clear_of_scrapes {
        assert_eq!(
            replay_firing, firing_ms,
            "the replay fires the rollback when Prometheus did"
        );
        assert_eq!(
            replayed, live,
            "every rule's transitions, replayed and live"
        );
    } else {
        // Four loads all put the evaluations just after the canary's scrapes: an
        // evaluation may have missed a scrape still being stored, which the replay sees.
        assert!(
            (replay_firing - firing_ms).abs() <= INTERVAL_MS,
            "the replay fires within one evaluation of Prometheus: {replay_firing} vs {firing_ms}"
        );
    }
    assert_eq!(
        report["verdict"]["outcome"], "rolled_back",
        "{:#}",
        report["verdict"]
    );
    assert_eq!(report["verdict"]["alert"], "CanaryRollbackErrorRate");
    eprintln!("drill: done in {:?}", t0.elapsed());
}
