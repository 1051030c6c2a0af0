//! The release driver's drill (issue 20), live on loopback with the real programs and no
//! Docker daemon: the stack of `drill.rs` (two stub services found by name, real NGINX on
//! the wrapper conf, real Prometheus, real Alertmanager, sticky users), but nothing is
//! installed by hand once the release starts. The plan's `deployment: {target: host}`
//! points at that stack, and the real `plan` binary drives it: `plan release start` and
//! `next` run the manifest's commands (NGINX file, `nginx -t`, `nginx -s reload`, rules
//! file, Prometheus reload), and `plan release serve`, a real process, receives the
//! rendered Alertmanager config's webhook and rolls back.
//!
//! The story, and what each step proves:
//!
//! 1. `start`: the phase's share of users (30%) is on the canary, each user sticky.
//! 2. The canary answers 10% errors: the error-rate gate (`< 5%`) fails, the rollback rule
//!    (20%) does not. Once the phase's duration is up, `next` is refused and names the gate
//!    as Prometheus reports it. The canary is restored; once the gate alert clears, `next`
//!    advances (the plan's `gate_policy` is `hold`, so a gate failing at the phase's end
//!    holds the phase instead of asking for a rollback).
//! 3. In the second phase (100%, watched by the rollback rules) the canary fails half its
//!    requests: Prometheus fires `CanaryRollbackErrorRate`, Alertmanager posts it to
//!    `serve`, the driver rolls back, and NGINX sends no user to the canary within
//!    [`ALERT_TO_ZERO`] of the firing evaluation.
//! 4. The same webhook posted again changes nothing (state byte-identical, audit
//!    `unchanged`); `report` tells the story (start, next, the rollback by `alertmanager`
//!    with the alert's name), and its JSON parses.
//!
//! Why two phases and not three: the fault's part needs a phase with rollback rules after
//! `next`, and the last phase has them (its watch). Rolling back from 100% is also the
//! hardest case for the 0% measurement: every user moves, not a share of them.
//!
//! Every process is stopped by a guard when dropped (`serve` by SIGTERM first, and checked
//! to stop by itself); everything listens on 127.0.0.0/8.

use crate::alertmanager_live::{Alertmanager, Sink};
use crate::dns::FakeDns;
use crate::drill::{
    CANARY_IP, SHARE, STABLE_IP, canary_scrape_phase, check_split, programs, prometheus_yml,
    render_plan, samples,
};
use crate::drill_stack::*;
use crate::support::*;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// Requests per second through NGINX, and distinct users.
const RATE: f64 = 120.0;
const USERS: u32 = 1500;
/// The first phase's minimum duration, in seconds: long enough to see the split, fail the
/// gate (5s rate window + 5s `for`) and still be failing it when the time is up.
const CANARY_SECONDS: u64 = 20;
/// The error ratio that fails the gate (`< 5%`) but not the rollback rule (20%).
const GATE_FAULT: f64 = 0.10;
/// The error ratio that rolls back.
const ROLLBACK_FAULT: f64 = 0.5;
/// From Prometheus' firing evaluation of the rollback alert to NGINX sending no user to the
/// canary. What it covers: Prometheus sends the firing alert to Alertmanager at that
/// evaluation (1s interval); the plan-release route has `group_wait: 0s`, so Alertmanager
/// posts at once; `serve` runs the rollback step (install, `nginx -t`, `nginx -s reload`,
/// `rm`, `curl` to Prometheus: well under a second each); NGINX's old workers finish the
/// requests in flight. A few seconds in practice; 15 s leaves room for a loaded 2-core
/// machine without hiding a lost webhook (Alertmanager's next try is `group_interval`
/// 10s later, on top of everything else).
const ALERT_TO_ZERO: Duration = Duration::from_secs(15);
/// The bearer token `serve` and Alertmanager share.
const TOKEN: &str = "drill-token-0123456789abcdef";

/// The drill's plan: two phases (30% for [`CANARY_SECONDS`], then 100%), gates and rollback
/// conditions on the built-in request metrics, second-long timings, the host deployment
/// pointing at the drill's NGINX, Prometheus and rules folder, and `serve` on `serve`.
struct PlanAt<'a> {
    listen: u16,
    port: u16,
    dns: SocketAddr,
    sms: SocketAddr,
    prometheus: SocketAddr,
    serve: SocketAddr,
    nginx: &'a [String],
    dir: &'a Path,
}

fn drill_plan(p: &PlanAt) -> String {
    let d = p.dir.display();
    let nginx = p
        .nginx
        .iter()
        .map(|w| format!("{w:?}"))
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        r#"# The release driver's drill (tests/integration/drill_release.rs).
name: drill
release: {{ from: v1, to: v2 }}
service: {{ name: backend, image: example/backend, port: {port} }}
routing:
  listen: {listen}
  listen_address: 127.0.0.1
  access_log: {d}/nginx/access.log
  sticky: {{ cookie: drill_uid }}
  resolver: "{dns}"
traffic: {{ requests_per_second: {RATE} }}
monitoring:
  evaluation_interval: 1s
  scrape_interval: 1s
  window: 5s
  runbook_url: https://drill.example.com/releases/drill/RUNBOOK.md
phases:
  - {{ name: canary, traffic: {share}%, duration: {CANARY_SECONDS}s }}
  - {{ name: full, traffic: 100% }}
gates:
  error_rate: "< 5%"
  response_time_p95: "< 500ms"
gate_policy: {{ on_failure: hold }}
rollback_conditions:
  - {{ metric: error_rate, threshold: 20%, duration: 3s }}
  - {{ metric: response_time_p95, threshold: 2s, duration: 3s }}
notifications:
  sms: {{ webhook_url: "http://{sms}/v1/alerts" }}
deployment:
  target: host
  prometheus: http://{prometheus}
  nginx: [{nginx}]
  nginx_conf: {d}/nginx/site.conf
  rules_file: {d}/rules/drill.rules.yml
  automatic_rollback: {{ listen: "{serve}", token_file: {d}/token }}
"#,
        port = p.port,
        listen = p.listen,
        dns = p.dns,
        sms = p.sms,
        prometheus = p.prometheus,
        serve = p.serve,
        share = (SHARE * 100.0).round(),
    )
}

/// `plan release serve` as a real process, stopped when dropped (SIGTERM, then SIGKILL).
struct Serve {
    proc: Proc,
    addr: SocketAddr,
}

impl Serve {
    /// Starts it on the rendered folder (it listens where the plan says) and waits for it.
    fn start(rendered: &Path, addr: SocketAddr, log: PathBuf) -> Serve {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_plan"));
        cmd.args(["release", "serve"]).arg(rendered);
        let mut proc = Proc::spawn("plan release serve", cmd, log);
        poll(
            Duration::from_secs(10),
            Duration::from_millis(20),
            "plan release serve listening",
            String::new,
            || {
                if let Some(status) = proc.exited() {
                    panic!("plan release serve exited ({status}):\n{}", proc.log());
                }
                proc.log()
                    .contains(&format!("listening on http://{addr}"))
                    .then_some(())
            },
        );
        Serve { proc, addr }
    }

    /// SIGTERM, and waits for it to stop by itself; whether it exited 0.
    fn stop(&mut self) -> bool {
        self.proc.signal(libc::SIGTERM);
        poll(
            Duration::from_secs(10),
            Duration::from_millis(20),
            "plan release serve stopping on SIGTERM",
            String::new,
            || self.proc.exited(),
        )
        .success()
    }
}

/// One request with headers; (status, body).
fn post(addr: SocketAddr, path: &str, headers: &[String], body: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(5))
        .unwrap_or_else(|e| panic!("connect to {addr}: {e}"));
    s.set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    let mut head = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for h in headers {
        head += &format!("{h}\r\n");
    }
    head += "\r\n";
    s.write_all(head.as_bytes())
        .and_then(|()| s.write_all(body.as_bytes()))
        .expect("send the request");
    let mut text = String::new();
    let _ = s.read_to_string(&mut text);
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no HTTP answer: {text:?}"));
    let body = text.split_once("\r\n\r\n").map_or("", |x| x.1).to_string();
    (status, body)
}

/// The drill's stack: stopped in the order of its fields (users, `serve`, the programs,
/// the services).
struct Stack {
    load: LoadGen,
    serve: Option<Serve>,
    prom: Prometheus,
    nginx: Nginx,
    am: Alertmanager,
    _sms: Sink,
    _dns: FakeDns,
    stable: Stub,
    canary: Stub,
    dir: PathBuf,
    /// The plan's rendered folder, `OUT/drill`.
    out: PathBuf,
}

impl Stack {
    fn start(nginx_bin: &Path, prom_bin: &Path, am_bin: &Path) -> Stack {
        let dir = temp_dir("drill-release");
        for d in ["rules", "nginx", "am", "prometheus"] {
            std::fs::create_dir_all(dir.join(d)).expect("drill folders");
        }
        let (stable, canary) = stub_pair(STABLE_IP, CANARY_IP);
        stable.set_latency(Duration::from_millis(2));
        canary.set_latency(Duration::from_millis(2));
        let dns = FakeDns::start(&[("backend", STABLE_IP), ("backend-canary", CANARY_IP)]);
        let sms = Sink::start();
        let token = write(&dir, "token", &format!("{TOKEN}\n"));
        std::fs::set_permissions(&token, std::os::unix::fs::PermissionsExt::from_mode(0o600))
            .expect("token mode");
        // Prometheus first (the plan names its address), sending alerts nowhere until
        // Alertmanager, which runs the rendered config, is up.
        let nowhere = SocketAddr::from(([127, 0, 0, 1], free_port()));
        let config = write(
            &dir.join("prometheus"),
            "prometheus.yml",
            &prometheus_yml(&dir, stable.addr, canary.addr, nowhere),
        );
        let prom = Prometheus::start(prom_bin, &config, &dir.join("prometheus"));
        let listen = SocketAddr::from(([127, 0, 0, 1], free_port()));
        let serve_addr = SocketAddr::from(([127, 0, 0, 1], free_port()));
        let ngx = dir.join("nginx");
        let nginx_argv: Vec<String> = [
            nginx_bin.display().to_string(),
            "-p".into(),
            ngx.display().to_string(),
            "-e".into(),
            ngx.join("error.log").display().to_string(),
            "-c".into(),
            ngx.join("nginx.conf").display().to_string(),
        ]
        .into();
        let plan_file = write(
            &dir,
            "drill.yaml",
            &drill_plan(&PlanAt {
                listen: listen.port(),
                port: stable.addr.port(),
                dns: dns.addr,
                sms: sms.addr,
                prometheus: prom.addr,
                serve: serve_addr,
                nginx: &nginx_argv,
                dir: &dir,
            }),
        );
        let out = render_plan(&plan_file, &dir);
        let am = Alertmanager::start(
            am_bin,
            &out.join("alertmanager/alertmanager.yml"),
            &dir.join("am"),
        );
        write(
            &dir.join("prometheus"),
            "prometheus.yml",
            &prometheus_yml(&dir, stable.addr, canary.addr, am.addr),
        );
        prom.reload();
        // Before the release every user is on v1: the rollback step's file is that state.
        // `Nginx::start` writes the wrapper conf the plan's `nginx` argv names.
        let site = ngx.join("site.conf");
        std::fs::copy(out.join("nginx/rollback.conf"), &site).expect("the pre-release site");
        let nginx = Nginx::start(nginx_bin, &ngx, &site, listen);
        assert_eq!(nginx.conf, ngx.join("nginx.conf"));
        let serve = Serve::start(&out, serve_addr, dir.join("serve.log"));
        let load = LoadGen::start(listen, "drill_uid", USERS, 2, RATE);
        Stack {
            load,
            serve: Some(serve),
            prom,
            nginx,
            am,
            _sms: sms,
            _dns: dns,
            stable,
            canary,
            dir,
            out,
        }
    }

    fn state_file(&self) -> PathBuf {
        self.dir.join("out/.plan-release/drill/state.json")
    }

    fn state(&self) -> serde_json::Value {
        let text = std::fs::read_to_string(self.state_file()).expect("state.json");
        serde_json::from_str(&text).expect("state JSON")
    }

    fn audit(&self) -> Vec<serde_json::Value> {
        std::fs::read_to_string(self.dir.join("out/.plan-release/drill/audit.jsonl"))
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).expect("one JSON object a line"))
            .collect()
    }

    /// `plan release VERB OUT/drill --by drill`.
    fn release(&self, verb: &str) -> Done {
        plan()
            .args(["release", verb])
            .arg(&self.out)
            .args(["--by", "drill"])
            .timeout(Duration::from_secs(60))
            .run()
    }

    /// What Prometheus says now of `alert`: its state (`inactive` when it has no active
    /// alert), from `/api/v1/rules`, the endpoint the driver judges from.
    fn rule_state(&self, alert: &str) -> String {
        let groups = self.prom.api("/api/v1/rules");
        groups["groups"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|g| g["rules"].as_array().cloned().unwrap_or_default())
            .find(|r| r["name"] == alert)
            .and_then(|r| r["state"].as_str().map(str::to_string))
            .unwrap_or_else(|| "absent".into())
    }

    /// Waits until `alert` is in `state` per Prometheus' rules API.
    fn wait_rule(&self, alert: &str, state: &str, limit: Duration) {
        poll(
            limit,
            Duration::from_millis(200),
            &format!("{alert} {state}"),
            || self.prom.proc.log(),
            || (self.rule_state(alert) == state).then_some(()),
        );
    }

    /// The responses sent from `since` (Unix ms) on.
    fn hits_since(&self, since: i64) -> Vec<Hit> {
        self.load
            .hits()
            .into_iter()
            .filter(|h| h.at_ms >= since)
            .collect()
    }
}

/// The first evaluation at which Prometheus had `alert` of `phase` in `state`, from its
/// `ALERTS` series (Unix ms), and the series' labels.
fn first_alert_sample(
    prom: &Prometheus,
    alert: &str,
    phase: &str,
    state: &str,
) -> Option<(i64, serde_json::Value)> {
    samples(
        prom,
        &format!("ALERTS{{alertname=\"{alert}\",phase=\"{phase}\",alertstate=\"{state}\"}}[5m]"),
        unix_ms(),
    )
    .into_iter()
    .filter_map(|(labels, v)| Some((v.first()?.0, labels)))
    .min_by_key(|x| x.0)
}

/// The webhook Alertmanager sent `serve` for `alert`, rebuilt from Alertmanager's own API
/// (payload version 4: the alert's labels, annotations, times and fingerprint as
/// Alertmanager holds them, the route's receiver and group).
fn webhook_again(am: &Alertmanager, alert: &str) -> Option<String> {
    let (status, body) = http(
        am.addr,
        "GET",
        &format!(
            "/api/v2/alerts?filter={}",
            urlencode(&format!("alertname=\"{alert}\""))
        ),
        "",
    )
    .expect("Alertmanager's alerts API");
    assert_eq!(status, 200, "{body}");
    let alerts: serde_json::Value = serde_json::from_str(&body).expect("alerts JSON");
    let a = alerts.as_array().and_then(|v| v.first())?;
    let labels = a["labels"].clone();
    let payload = serde_json::json!({
        "version": "4",
        "groupKey": "{}/{plan=\"drill\"}/{action=\"rollback\"}:{phase=\"full\", plan=\"drill\"}",
        "truncatedAlerts": 0,
        "status": "firing",
        "receiver": "plan-release",
        "groupLabels": {"plan": labels["plan"], "phase": labels["phase"]},
        "commonLabels": labels,
        "commonAnnotations": a["annotations"],
        "externalURL": format!("http://{}", am.addr),
        "alerts": [{
            "status": "firing",
            "labels": labels,
            "annotations": a["annotations"],
            "startsAt": a["startsAt"],
            "endsAt": "0001-01-01T00:00:00Z",
            "generatorURL": a["generatorURL"],
            "fingerprint": a["fingerprint"],
        }]
    });
    Some(payload.to_string())
}

/// The share of `hits` answered by the canary.
fn canary_share(hits: &[Hit]) -> f64 {
    let c = hits
        .iter()
        .filter(|h| h.track.as_deref() == Some("canary"))
        .count();
    c as f64 / hits.len().max(1) as f64
}

#[test]
fn drill_release_driver_start_gate_next_rollback_by_alertmanager_and_report() {
    let Some((nginx_bin, prom_bin, am_bin)) = programs() else {
        return;
    };
    // The steps' commands the driver runs by name, from PATH.
    let (Some(_), Some(_)) = (tool("promtool"), tool("curl")) else {
        return;
    };
    let _one = one_drill_at_a_time();
    let t0 = Instant::now();
    let mut s = Stack::start(&nginx_bin, &prom_bin, &am_bin);
    // A release starts on a watched service: Prometheus has scraped both tracks a few
    // times. Started at once, a fresh Prometheus without the canary's `up` yet fired the
    // silent-canary rollback (`absent(...)`, `for: 5s`) 5 s into the phase, once in three
    // runs, and `serve` rightly rolled back.
    canary_scrape_phase(&s.prom);
    eprintln!("drill-release: stack up and scraped in {:?}", t0.elapsed());

    // 1. start: the phase's share of users on the canary, stickily.
    let done = s.release("start");
    assert_eq!(done.code, 0, "start: {}{}", done.stdout, done.stderr);
    let started = unix_ms();
    assert_eq!(s.state()["at"]["name"], "canary", "{}", s.state());
    let since = s.state()["since_ms"].as_i64().expect("since_ms");
    // The requests sent once the reload has replaced NGINX's workers (a second's margin:
    // the old workers finish the requests they hold, then close their connections).
    std::thread::sleep(Duration::from_secs(9));
    let split: Vec<Hit> = s
        .hits_since(started + 1000)
        .into_iter()
        .filter(|h| h.at_ms < unix_ms() - 200)
        .collect();
    let (users, share) = check_split(&split);
    eprintln!(
        "drill-release: start: {users} users, {:.1}% on the canary (phase: {:.0}%)",
        share * 100.0,
        SHARE * 100.0
    );
    for alert in ["CanaryRollbackErrorRate", "CanaryGateErrorRate"] {
        assert_eq!(
            s.rule_state(alert),
            "inactive",
            "{alert} on a healthy canary"
        );
    }

    // 2. A gate fails, no rollback rule does: `next` is refused once the phase's time is up,
    // naming the gate; restored, `next` advances once the gate clears.
    s.canary.set_fault(GATE_FAULT);
    s.wait_rule("CanaryGateErrorRate", "firing", Duration::from_secs(30));
    let due = since + CANARY_SECONDS as i64 * 1000 + 500;
    while unix_ms() < due {
        assert_eq!(
            s.rule_state("CanaryRollbackErrorRate"),
            "inactive",
            "10% errors trip no rollback rule"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    assert_eq!(s.rule_state("CanaryGateErrorRate"), "firing");
    let refused = s.release("next");
    let said = format!("{}{}", refused.stdout, refused.stderr);
    eprintln!("drill-release: next while the gate fails:\n{said}");
    assert_ne!(refused.code, 0, "next refused while the gate fails: {said}");
    assert!(said.contains("CanaryGateErrorRate is firing"), "{said}");
    assert!(
        !said.contains("minimum duration"),
        "the phase's time is up, only the gate holds it: {said}"
    );
    assert_eq!(s.state()["at"]["name"], "canary");
    s.canary.set_fault(0.0);
    let restored = unix_ms();
    let advanced = poll(
        Duration::from_secs(30),
        Duration::from_millis(1000),
        "next advancing once the gate clears",
        || s.audit().last().map(|e| e.to_string()).unwrap_or_default(),
        || {
            let done = s.release("next");
            (done.code == 0).then(unix_ms)
        },
    );
    eprintln!(
        "drill-release: canary restored; next advanced {} ms later",
        advanced - restored
    );
    assert_eq!(s.state()["at"]["name"], "full", "{}", s.state());
    // Every user on the canary once the reload has taken.
    poll(
        Duration::from_secs(15),
        Duration::from_millis(200),
        "every user on the canary in phase full",
        || s.nginx.error_log(),
        || {
            let after = s.hits_since(advanced + 1000);
            (after.len() >= 200 && canary_share(&after) == 1.0).then_some(())
        },
    );
    s.wait_rule(
        "CanaryRollbackErrorRate",
        "inactive",
        Duration::from_secs(15),
    );

    // 3. The fault: Prometheus fires the rollback, Alertmanager posts it to `serve`, which
    // rolls back; NGINX sends nobody to the canary within ALERT_TO_ZERO of the firing.
    s.canary.set_fault(ROLLBACK_FAULT);
    let fault_ms = unix_ms();
    poll(
        Duration::from_secs(60),
        Duration::from_millis(100),
        "the release rolled back by serve",
        || {
            format!(
                "serve:\n{}\nAlertmanager:\n{}",
                s.serve.as_ref().map(|v| v.proc.log()).unwrap_or_default(),
                s.am.log()
            )
        },
        || (s.state()["at"]["kind"] == "rolled_back").then_some(()),
    );
    let rolled_back_seen = unix_ms();
    // The last request NGINX sent to the canary, once 200 in a row have gone to stable.
    let last_canary = poll(
        Duration::from_secs(30),
        Duration::from_millis(100),
        "200 requests in a row on stable after the rollback",
        || s.nginx.error_log(),
        || {
            let after = s.hits_since(fault_ms);
            let last = after
                .iter()
                .rposition(|h| h.track.as_deref() != Some("stable"))?;
            (after.len() - last > 200).then(|| after[last].at_ms)
        },
    );
    let (firing_ms, labels) =
        first_alert_sample(&s.prom, "CanaryRollbackErrorRate", "full", "firing")
            .expect("CanaryRollbackErrorRate firing in ALERTS");
    let (pending_ms, _) = first_alert_sample(&s.prom, "CanaryRollbackErrorRate", "full", "pending")
        .expect("CanaryRollbackErrorRate pending in ALERTS");
    assert_eq!(labels["action"], "rollback", "{labels}");
    let to_zero = Duration::from_millis((last_canary - firing_ms).max(0) as u64);
    eprintln!(
        "drill-release: fault at {fault_ms}; rollback alert pending at {pending_ms} (+{} ms), firing at {firing_ms} (+{} ms); state rolled back seen at +{} ms; last request to the canary sent at +{} ms: {to_zero:?} from firing to 0% (bound {ALERT_TO_ZERO:?})",
        pending_ms - fault_ms,
        firing_ms - fault_ms,
        rolled_back_seen - fault_ms,
        last_canary - fault_ms
    );
    assert!(
        to_zero <= ALERT_TO_ZERO,
        "NGINX still sent users to the canary {to_zero:?} after the rollback alert fired"
    );
    let st = s.state();
    let event = st["history"]
        .as_array()
        .and_then(|h| h.last())
        .expect("history")
        .clone();
    assert_eq!(event["by"], "alertmanager", "{event}");
    assert!(
        event["reason"]
            .as_str()
            .unwrap_or("")
            .contains("CanaryRollbackErrorRate"),
        "{event}"
    );
    let site = std::fs::read_to_string(s.dir.join("nginx/site.conf")).expect("site file");
    let rollback_conf =
        std::fs::read_to_string(s.out.join("nginx/rollback.conf")).expect("rollback.conf");
    assert_eq!(site, rollback_conf, "the rollback's NGINX file is in place");
    assert!(
        !s.dir.join("rules/drill.rules.yml").exists(),
        "the canary's rules are removed"
    );

    // 4. The same webhook again: 200, nothing changes.
    let payload = webhook_again(&s.am, "CanaryRollbackErrorRate").unwrap_or_else(|| {
        panic!(
            "Alertmanager no longer holds CanaryRollbackErrorRate\n{}",
            s.am.log()
        )
    });
    let before = std::fs::read(s.state_file()).expect("state.json");
    let serve_addr = s.serve.as_ref().expect("serve").addr;
    let (status, text) = post(
        serve_addr,
        "/alerts",
        &[format!("Authorization: Bearer {TOKEN}")],
        &payload,
    );
    assert_eq!(status, 200, "{text}");
    assert!(text.contains("already rolled back"), "{text}");
    assert_eq!(
        std::fs::read(s.state_file()).expect("state.json"),
        before,
        "the state is byte for byte the same"
    );
    let last = s.audit().pop().expect("audit entries");
    assert_eq!(last["outcome"], "unchanged", "{last}");

    // 5. The report tells the story.
    let md = plan()
        .args(["release", "report"])
        .arg(&s.out)
        .expect(0)
        .stdout;
    eprintln!("drill-release: report:\n{md}");
    assert!(md.contains("The release is rolled back"), "{md}");
    for (verb, by) in [
        ("start", "drill"),
        ("next", "drill"),
        ("rollback", "alertmanager"),
    ] {
        assert!(
            md.lines()
                .any(|l| l.contains(&format!("| {verb} |")) && l.contains(&format!("| {by} |"))),
            "the report's steps name `{verb}` by {by}:\n{md}"
        );
    }
    assert!(md.contains("CanaryRollbackErrorRate"), "{md}");
    let json = plan()
        .args(["release", "report"])
        .arg(&s.out)
        .args(["--format", "json"])
        .expect(0)
        .stdout;
    let doc: serde_json::Value = serde_json::from_str(&json).expect("the report's JSON");
    let verbs: Vec<&str> = doc["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .filter_map(|e| e["verb"].as_str())
        .collect();
    assert_eq!(verbs, ["start", "next", "rollback"], "{doc:#}");

    // NGINX's access log saw all three files, each request with its plan, step and track.
    let access = std::fs::read_to_string(s.dir.join("nginx/access.log")).unwrap_or_default();
    for step in [
        "step=canary track=canary",
        "step=canary track=stable",
        "step=full track=canary",
        "step=rollback track=stable",
    ] {
        assert!(
            access.contains(&format!("plan=drill {step}")),
            "no `{step}` in the access log"
        );
    }

    // Every process stops: the users, then `serve` by SIGTERM (checked), then the rest by
    // their guards.
    s.load.stop();
    let mut serve = s.serve.take().expect("serve");
    assert!(
        serve.stop(),
        "serve exits 0 on SIGTERM:\n{}",
        serve.proc.log()
    );
    eprintln!(
        "drill-release: stable served {:?}, canary {:?}; done in {:?}",
        s.stable.served(),
        s.canary.served(),
        t0.elapsed()
    );
}
