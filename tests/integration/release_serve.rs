//! `plan release serve` as a real process on loopback, in front of a release of a
//! host-target plan whose commands are real and harmless: the real nginx (unprivileged
//! paths under a prefix folder, a wrapper nginx.conf including the installed file) and a
//! tiny stand-in for Prometheus answering `POST /-/reload` and `GET /api/v1/rules`.
//!
//! It shows: a valid rollback webhook rolls the release back (state, NGINX file, rules file)
//! within [`ROLLBACK_WITHIN`]; the same webhook again changes nothing; a wrong token gets 401,
//! forged plan, phase and release labels and a resolved alert are ignored, a 10 MB body gets
//! 413, malformed JSON 400, and none of them applies anything; a flood gets 429s and the
//! service answers afterwards; `feedback` counts what /metrics shows; every refusal is in
//! the audit log, the flood's as a count.

use crate::support::*;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long a valid webhook may take to roll the release back, answer included.
const ROLLBACK_WITHIN: Duration = Duration::from_secs(10);

const TOKEN: &str = "test-token-0123456789abcdef";

/// A stand-in for Prometheus: 200 to a reload, an empty rule list to the rules API.
fn fake_prometheus() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = l.local_addr().unwrap();
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { continue };
            let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
            let mut buf = [0u8; 4096];
            let n = s.read(&mut buf).unwrap_or(0);
            let head = String::from_utf8_lossy(&buf[..n]);
            let body = if head.starts_with("GET /api/v1/rules") {
                r#"{"status":"success","data":{"groups":[]}}"#
            } else {
                ""
            };
            let _ = write!(
                s,
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    addr
}

/// A running nginx (master and workers, in the foreground), stopped when dropped: SIGTERM
/// to the master, which stops its workers (SIGKILL would leave them running).
struct Nginx(Child);

impl Drop for Nginx {
    fn drop(&mut self) {
        // SAFETY: plain kill(2) of the child we started, not yet reaped.
        unsafe { libc::kill(self.0.id() as libc::pid_t, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A running `plan release serve`, stopped (SIGKILL) when dropped if not stopped before.
struct Serve {
    child: Child,
    addr: SocketAddr,
    log: PathBuf,
}

impl Serve {
    fn start(dir: &Path, t: &Path) -> Serve {
        let log = t.join("serve.log");
        let child = Command::new(env!("CARGO_BIN_EXE_plan"))
            .args(["release", "serve"])
            .arg(dir)
            .args(["--listen", "127.0.0.1:0"])
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&log).unwrap())
            .stderr(std::fs::File::create(t.join("serve.err")).unwrap())
            .spawn()
            .expect("plan release serve starts");
        let deadline = Instant::now() + Duration::from_secs(10);
        let addr = loop {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            if let Some(a) = text
                .split("listening on http://")
                .nth(1)
                .and_then(|r| r.split_whitespace().next())
            {
                break a.parse().expect("an address");
            }
            assert!(
                Instant::now() < deadline,
                "serve did not start: {text}{}",
                std::fs::read_to_string(t.join("serve.err")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        Serve { child, addr, log }
    }

    /// SIGTERM, and waits for it to stop by itself.
    fn stop(&mut self) -> std::process::ExitStatus {
        // SAFETY: plain kill(2) of the child we started, not yet reaped.
        unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                return s;
            }
            assert!(Instant::now() < deadline, "serve did not stop on SIGTERM");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One request on a fresh connection; (status, body). A write cut short (the service
/// answered before the body was sent) still reads the answer.
fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[&str],
    body: &[u8],
) -> (u16, String) {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: {}\r\n",
        body.len()
    );
    for h in headers {
        head.push_str(h);
        head.push_str("\r\n");
    }
    head.push_str("\r\n");
    let _ = s
        .write_all(head.as_bytes())
        .and_then(|()| s.write_all(body));
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    let text = String::from_utf8_lossy(&out).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no HTTP answer to {method} {path}: {text:?}"));
    let body = text
        .split_once("\r\n\r\n")
        .map_or("", |(_, b)| b)
        .to_string();
    (status, body)
}

fn bearer(t: &str) -> String {
    format!("Authorization: Bearer {t}")
}

/// A webhook (payload version 4) of one alert with `labels`.
fn webhook(status: &str, labels: &[(&str, &str)]) -> Vec<u8> {
    let labels: serde_json::Map<String, serde_json::Value> = labels
        .iter()
        .map(|(k, v)| ((*k).to_string(), serde_json::Value::from(*v)))
        .collect();
    serde_json::json!({
        "version": "4", "groupKey": "{}:{plan=\"drill\"}", "truncatedAlerts": 0,
        "status": status, "receiver": "plan-release",
        "groupLabels": {}, "commonLabels": labels, "commonAnnotations": {},
        "externalURL": "http://127.0.0.1:9093",
        "alerts": [{
            "status": status, "labels": labels, "annotations": {},
            "startsAt": "2026-05-01T12:00:00Z", "endsAt": "0001-01-01T00:00:00Z",
            "generatorURL": "http://127.0.0.1:9090/graph", "fingerprint": "0123456789abcdef"
        }]
    })
    .to_string()
    .into_bytes()
}

const ROLLBACK: &[(&str, &str)] = &[
    ("alertname", "CanaryRollbackErrorRate"),
    ("plan", "drill"),
    ("phase", "canary"),
    ("release", "v1.1.0"),
    ("action", "rollback"),
    ("kind", "rollback"),
    ("rule_id", "error-rate"),
    ("severity", "critical"),
];

fn forged(k: &str, v: &'static str) -> Vec<(&'static str, &'static str)> {
    ROLLBACK
        .iter()
        .map(|(a, b)| (*a, if *a == k { v } else { *b }))
        .collect()
}

fn state(out: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(out.join(".plan-release/drill/state.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn audit(out: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(out.join(".plan-release/drill/audit.jsonl"))
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object a line"))
        .collect()
}

#[test]
fn serve_rolls_back_on_alertmanagers_webhook_and_refuses_the_rest() {
    let (Some(nginx), Some(_), Some(_)) = (tool("nginx"), tool("promtool"), tool("curl")) else {
        return;
    };
    let t = temp_dir("release-serve");
    let ngx = t.join("ngx");
    std::fs::create_dir_all(&ngx).unwrap();
    std::fs::create_dir_all(t.join("rules")).unwrap();
    let site = ngx.join("site.conf");
    std::fs::write(&site, "").unwrap();
    let listen = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let d = ngx.display();
    let mut conf = format!(
        "daemon off;\npid {d}/nginx.pid;\nerror_log {d}/error.log warn;\nevents {{ worker_connections 64; }}\nhttp {{\n"
    );
    for tmp in ["client_body", "proxy", "fastcgi", "uwsgi", "scgi"] {
        conf += &format!("    {tmp}_temp_path {d}/{tmp}_temp;\n");
    }
    conf += &format!("    include {};\n}}\n", site.display());
    std::fs::write(ngx.join("nginx.conf"), conf).unwrap();
    let _nginx = Nginx(
        Command::new(&nginx)
            .arg("-p")
            .arg(format!("{d}/"))
            .args(["-c", "nginx.conf"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nginx starts"),
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while !ngx.join("nginx.pid").exists() {
        assert!(Instant::now() < deadline, "nginx did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    let prometheus = fake_prometheus();
    let token = write(&t, "token", &format!("{TOKEN}\n"));
    std::fs::set_permissions(&token, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let rules = t.join("rules/drill.rules.yml");
    let plan_file = write(
        &t,
        "drill.yaml",
        &format!(
            "name: drill
release: {{ from: v1.0.0, to: v1.1.0 }}
service: {{ name: web, image: example/web, port: 8080 }}
routing: {{ listen: {listen}, sticky: {{ cookie: uid }}, resolver: 127.0.0.1:53 }}
monitoring: {{ runbook_url: https://wiki.example.com/RUNBOOK.md }}
phases:
  - {{ name: canary, traffic: 10%, duration: 1h }}
  - {{ name: full, traffic: 100% }}
rollback_conditions:
  - {{ metric: error_rate, threshold: 5%, duration: 5m }}
deployment:
  target: host
  nginx: [nginx, -p, {d}/, -c, nginx.conf]
  nginx_conf: {}
  rules_file: {}
  prometheus: http://{prometheus}
  automatic_rollback: {{ token_file: {} }}
",
            site.display(),
            rules.display(),
            token.display()
        ),
    );
    let out = t.join("out");
    plan()
        .arg("render")
        .arg(&plan_file)
        .arg("--out")
        .arg(&out)
        .expect(0);
    let dir = out.join("drill");
    plan()
        .args(["release", "start"])
        .arg(&dir)
        .args(["--by", "test"])
        .expect(0);
    let canary_conf = std::fs::read_to_string(dir.join("nginx/canary.conf")).unwrap();
    assert_eq!(std::fs::read_to_string(&site).unwrap(), canary_conf);
    assert!(rules.exists());

    // A token file every user can read: the service does not start.
    std::fs::set_permissions(&token, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
    let refused = plan()
        .args(["release", "serve"])
        .arg(&dir)
        .timeout(Duration::from_secs(20))
        .run();
    assert_ne!(refused.code, 0);
    assert!(refused.stderr.contains("every user"), "{}", refused.stderr);
    std::fs::set_permissions(&token, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();

    let mut serve = Serve::start(&dir, &t);
    let a = serve.addr;
    let auth = bearer(TOKEN);
    let in_canary = |what: &str| {
        assert_eq!(
            state(&out)["at"]["kind"],
            "phase",
            "{what}: still in phase canary"
        );
        assert_eq!(
            std::fs::read_to_string(&site).unwrap(),
            canary_conf,
            "{what}"
        );
        assert!(rules.exists(), "{what}: the rules are in place");
    };

    // A wrong or missing token: 401, nothing applied, the body never read.
    let good = webhook("firing", ROLLBACK);
    assert_eq!(
        request(
            a,
            "POST",
            "/alerts",
            &[&bearer("wrong-token-0123456789ab")],
            &good
        )
        .0,
        401
    );
    assert_eq!(request(a, "POST", "/alerts", &[], &good).0, 401);
    in_canary("wrong token");

    // Forged labels and a resolved alert: 200, ignored with the reason, nothing applied.
    for (body, why) in [
        (
            webhook("firing", &forged("plan", "other")),
            "plan=\\\"other\\\"",
        ),
        (
            webhook("firing", &forged("phase", "full")),
            "phase=\\\"full\\\"",
        ),
        (
            webhook("firing", &forged("release", "v9.9.9")),
            "release=\\\"v9.9.9\\\"",
        ),
        (
            webhook("firing", &forged("action", "notify")),
            "not a rollback alert",
        ),
        (webhook("resolved", ROLLBACK), "not firing"),
    ] {
        let (status, text) = request(a, "POST", "/alerts", &[&auth], &body);
        assert_eq!(status, 200, "{text}");
        assert!(text.contains("ignored"), "{text}");
        let last = audit(&out).pop().unwrap();
        assert_eq!(last["outcome"], "ignored");
        assert!(last.to_string().contains(why), "{last} lacks {why}");
    }
    in_canary("forged labels");

    // A 10 MB body: 413; malformed JSON: 400; another payload version: 400.
    let big = vec![b'{'; 10 << 20];
    assert_eq!(request(a, "POST", "/alerts", &[&auth], &big).0, 413);
    assert_eq!(
        request(a, "POST", "/alerts", &[&auth], b"{\"version\": \"4\", ").0,
        400
    );
    assert_eq!(
        request(
            a,
            "POST",
            "/alerts",
            &[&auth],
            br#"{"version":"3","alerts":[]}"#
        )
        .0,
        400
    );
    assert_eq!(request(a, "GET", "/alerts", &[&auth], b"").0, 405);
    in_canary("oversized and malformed bodies");

    // Feedback counts what /metrics shows, every series there from the start.
    let metrics = || request(a, "GET", "/metrics", &[], b"").1;
    let series = |kind: &str| {
        format!("feedback_submissions_total{{service=\"web\",track=\"canary\",type=\"{kind}\"}}")
    };
    assert!(metrics().contains(&format!("{} 0\n", series("bug"))));
    for (kind, msg) in [
        ("bug", "<b>broken</b> | checkout"),
        ("bug", "slow"),
        ("praise", "nice"),
    ] {
        plan()
            .args(["release", "feedback"])
            .arg(&dir)
            .args(["--type", kind, "--message", msg, "--by", "support"])
            .expect(0);
    }
    let m = metrics();
    assert!(m.contains(&format!("{} 2\n", series("bug"))), "{m}");
    assert!(m.contains(&format!("{} 1\n", series("praise"))), "{m}");
    assert!(m.contains("track=\"stable\",type=\"bug\"} 0\n"), "{m}");

    // The valid webhook rolls the release back.
    let started = Instant::now();
    let (status, text) = request(a, "POST", "/alerts", &[&auth], &good);
    let took = started.elapsed();
    assert_eq!(status, 200, "{text}");
    assert!(text.contains("rolled back"), "{text}");
    assert!(took < ROLLBACK_WITHIN, "the rollback took {took:?}");
    let s = state(&out);
    assert_eq!(s["at"]["kind"], "rolled_back", "{s}");
    let rollback_conf = std::fs::read_to_string(dir.join("nginx/rollback.conf")).unwrap();
    assert_eq!(std::fs::read_to_string(&site).unwrap(), rollback_conf);
    assert!(!rules.exists(), "the canary's rules are removed");
    let event = s["history"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(event["by"], "alertmanager");
    assert!(
        event["reason"]
            .as_str()
            .unwrap()
            .contains("CanaryRollbackErrorRate"),
        "{event}"
    );
    assert_eq!(
        event["detail"][0],
        "CanaryRollbackErrorRate (rule_id=error-rate, phase=canary, startsAt=2026-05-01T12:00:00Z)"
    );

    // The same webhook again changes nothing.
    let before = std::fs::read_to_string(out.join(".plan-release/drill/state.json")).unwrap();
    let (status, text) = request(a, "POST", "/alerts", &[&auth], &good);
    assert_eq!(status, 200, "{text}");
    assert!(text.contains("already rolled back"), "{text}");
    let after = std::fs::read_to_string(out.join(".plan-release/drill/state.json")).unwrap();
    assert_eq!(before, after, "the state is untouched");
    assert_eq!(audit(&out).last().unwrap()["outcome"], "unchanged");

    // The report keeps the feedback, escaped.
    let report = plan()
        .args(["release", "report"])
        .arg(&dir)
        .expect(0)
        .stdout;
    assert!(
        report.contains("&lt;b&gt;broken&lt;/b&gt; \\| checkout"),
        "{report}"
    );
    assert!(!report.contains("<b>"), "{report}");

    // A flood: 429s, and the service answers once it is over.
    let codes: Vec<u16> = (0..200)
        .map(|_| request(a, "GET", "/healthz", &[], b"").0)
        .collect();
    let limited = codes.iter().filter(|c| **c == 429).count();
    assert!(limited > 100, "{limited} of 200 limited");
    assert!(codes.iter().all(|c| *c == 200 || *c == 429), "{codes:?}");
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(request(a, "GET", "/healthz", &[], b"").0, 200);

    // Stopped by SIGTERM, the flood's count is logged; every refusal is in the audit log.
    assert!(serve.stop().success());
    let log = audit(&out);
    let refused: Vec<String> = log
        .iter()
        .filter(|e| e["outcome"] == "refused" && e["verb"] == "webhook")
        .map(|e| e["detail"].as_str().unwrap().to_string())
        .collect();
    for code in ["401 ", "413 ", "400 ", "405 ", "429 "] {
        assert!(
            refused.iter().any(|d| d.starts_with(code)),
            "no {code}in {refused:#?}"
        );
    }
    assert_eq!(refused.iter().filter(|d| d.starts_with("401 ")).count(), 2);
    let counted: Vec<&serde_json::Value> = log
        .iter()
        .filter(|e| e["outcome"] == "refusals_counted")
        .collect();
    assert_eq!(counted.len(), 1, "{log:#?}");
    assert!(
        counted[0]["detail"].as_str().unwrap().contains("429 x"),
        "{}",
        counted[0]
    );
    assert!(
        log.len() < 80,
        "a flood does not fill the log: {} lines",
        log.len()
    );
    assert_eq!(log.last().unwrap()["outcome"], "stopped");
    assert!(
        std::fs::read_to_string(&serve.log)
            .unwrap()
            .contains("stopped"),
        "the service says it stopped"
    );
}
