//! The rendered Alertmanager configuration run by a real Alertmanager (0.25 here, the
//! Debian package's `prometheus-alertmanager`, or an upstream `alertmanager` binary) on
//! loopback, with the Slack webhook and the SMS gateway served by this test.
//!
//! The lawsker plan is rendered as it is, but for where things are: the Slack webhook URL
//! file, the SMS gateway's URL and token file, and the SMTP server point into this test
//! (the SMTP listener drops every connection, so email fails fast and stays local). No
//! timing is shortened: the critical routes' own `group_wait` (10s) is waited for.
//!
//! The alert posted is the one Prometheus raises: the labels and annotations that the
//! generated promtool test of `CanaryRollbackErrorRate` expects at its firing evaluation
//! (which `promtool test rules` proves Prometheus renders). A second alert carries hostile
//! annotations and a relative runbook path. Then the test checks what Slack and the SMS
//! gateway receive: the summary with the value, the description, the action and a
//! clickable runbook link whose anchor RUNBOOK.md defines; Slack's markup escaped; the
//! gateway's `Authorization: Bearer` read from the credentials file.

use crate::support::*;
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

/// How long notifications may take: the routes' 10s `group_wait`, with room for a loaded
/// machine.
const NOTIFY_TIMEOUT: Duration = Duration::from_secs(90);

/// One request the fake Slack or SMS endpoint received.
#[derive(Debug)]
pub(crate) struct Received {
    pub(crate) path: String,
    /// Header names in lowercase.
    pub(crate) headers: BTreeMap<String, String>,
    pub(crate) body: String,
}

/// An HTTP endpoint on loopback that answers every POST with 200 and hands the request to
/// the test.
pub(crate) struct Sink {
    pub(crate) addr: SocketAddr,
    rx: Receiver<Received>,
}

impl Sink {
    pub(crate) fn start() -> Sink {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the fake endpoint");
        let addr = listener.local_addr().expect("local addr");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                match read_request(&stream) {
                    Some(r) => {
                        let _ = (&stream).write_all(
                            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok",
                        );
                        if tx.send(r).is_err() {
                            return;
                        }
                    }
                    None => continue,
                }
            }
        });
        Sink { addr, rx }
    }

    /// The next `n` requests, or a panic naming what arrived when time runs out.
    pub(crate) fn take(&self, n: usize, what: &str, am: &Alertmanager) -> Vec<Received> {
        let deadline = Instant::now() + NOTIFY_TIMEOUT;
        let mut got = Vec::new();
        while got.len() < n {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(left) {
                Ok(r) => got.push(r),
                Err(_) => panic!(
                    "{what}: {} of {n} requests in {NOTIFY_TIMEOUT:?}: {got:#?}\nAlertmanager's log:\n{}",
                    got.len(),
                    am.log()
                ),
            }
        }
        got
    }
}

/// One HTTP/1.1 request with a `Content-Length` body (Alertmanager sends no other kind).
fn read_request(stream: &TcpStream) -> Option<Received> {
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .ok()?;
    let mut r = BufReader::new(stream);
    let mut line = String::new();
    r.read_line(&mut line).ok()?;
    let path = line.split(' ').nth(1)?.to_string();
    let mut headers = BTreeMap::new();
    loop {
        line.clear();
        r.read_line(&mut line).ok()?;
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        let (k, v) = l.split_once(':')?;
        headers.insert(k.to_ascii_lowercase(), v.trim().to_string());
    }
    let len: usize = headers.get("content-length")?.parse().ok()?;
    let mut body = vec![0; len];
    r.read_exact(&mut body).ok()?;
    Some(Received {
        path,
        headers,
        body: String::from_utf8(body).ok()?,
    })
}

/// An SMTP server that is not: it drops every connection, so the email integration fails
/// at once, on loopback.
pub(crate) fn smtp_black_hole() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("local addr").port();
    std::thread::spawn(move || for _ in listener.incoming() {});
    port
}

/// A running Alertmanager, killed when dropped.
pub(crate) struct Alertmanager {
    child: Child,
    pub(crate) addr: SocketAddr,
    log: PathBuf,
}

impl Alertmanager {
    /// Starts `bin` on `config` and waits until it is ready. A port taken between choosing
    /// it and Alertmanager binding it makes Alertmanager exit: then another one is tried.
    pub(crate) fn start(bin: &Path, config: &Path, dir: &Path) -> Alertmanager {
        for attempt in 0..3 {
            let port = TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .expect("a free port")
                .port();
            let addr = SocketAddr::from(([127, 0, 0, 1], port));
            let log = dir.join(format!("alertmanager-{attempt}.log"));
            let out = std::fs::File::create(&log).expect("log file");
            let child = Command::new(bin)
                .arg(format!("--config.file={}", config.display()))
                .arg(format!("--storage.path={}", dir.join("data").display()))
                .arg(format!("--web.listen-address={addr}"))
                // No cluster: nothing else is bound, no peers are sought.
                .arg("--cluster.listen-address=")
                .stdin(Stdio::null())
                .stdout(out.try_clone().expect("log file"))
                .stderr(out)
                .spawn()
                .expect("alertmanager starts");
            let mut am = Alertmanager { child, addr, log };
            let deadline = Instant::now() + Duration::from_secs(30);
            loop {
                if let Ok(Some(_)) = am.child.try_wait() {
                    break;
                }
                if http(addr, "GET", "/-/ready", "").is_some_and(|(status, _)| status == 200) {
                    return am;
                }
                assert!(
                    Instant::now() < deadline,
                    "Alertmanager not ready in 30 s:\n{}",
                    am.log()
                );
                std::thread::sleep(Duration::from_millis(100));
            }
            eprintln!(
                "Alertmanager exited at start (attempt {attempt}):\n{}",
                am.log()
            );
        }
        panic!("Alertmanager did not start");
    }

    pub(crate) fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Posts alerts to `/api/v2/alerts`, as Prometheus does.
    fn post_alerts(&self, alerts: &serde_json::Value) {
        let body = alerts.to_string();
        let (status, text) = http(self.addr, "POST", "/api/v2/alerts", &body)
            .unwrap_or_else(|| panic!("POST /api/v2/alerts failed:\n{}", self.log()));
        assert_eq!(status, 200, "POST /api/v2/alerts: {text}");
    }
}

impl Drop for Alertmanager {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One request with `Connection: close`; the status and body, or `None` on any failure.
fn http(addr: SocketAddr, method: &str, path: &str, body: &str) -> Option<(u16, String)> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    let status = text.split(' ').nth(1)?.parse().ok()?;
    let body = text
        .split_once("\r\n\r\n")
        .map_or("", |(_, b)| b)
        .to_string();
    Some((status, body))
}

/// Replaces `from` in `text`, which must hold it.
fn swap(text: &str, from: &str, to: &str) -> String {
    assert!(
        text.contains(from),
        "plans/lawsker.yaml no longer has `{from}`"
    );
    text.replace(from, to)
}

/// The labels (with `alertname`) and annotations the generated promtool test expects of
/// `alert` when it fires in `phase`.
fn promtool_expected(out: &Path, phase: &str, alert: &str) -> serde_json::Value {
    let text = std::fs::read_to_string(out.join(format!("prometheus/{phase}.test.yml")))
        .expect("test file");
    let doc: yaml_serde::Value = yaml_serde::from_str(&text).expect("test YAML");
    let exp = doc["tests"]
        .as_sequence()
        .expect("tests")
        .iter()
        .flat_map(|g| g["alert_rule_test"].as_sequence().expect("cases"))
        .filter(|c| c["alertname"].as_str() == Some(alert))
        .find_map(|c| c["exp_alerts"].as_sequence().and_then(|a| a.first()))
        .unwrap_or_else(|| panic!("no firing test of {alert}"));
    let mut labels: serde_json::Value =
        serde_json::to_value(&exp["exp_labels"]).expect("labels as JSON");
    labels["alertname"] = alert.into();
    serde_json::json!({
        "labels": labels,
        "annotations": serde_json::to_value(&exp["exp_annotations"]).expect("annotations"),
        "generatorURL": "http://prometheus:9090/graph",
    })
}

/// Slack's escaping of text.
fn slack_escaped(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn json(body: &str) -> serde_json::Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"))
}

#[test]
fn alertmanager_delivers_actionable_slack_and_sms_messages() {
    let Some(bin) = which("alertmanager").or_else(|| tool("prometheus-alertmanager")) else {
        return;
    };
    let dir = temp_dir("am-live");
    let slack = Sink::start();
    let sms = Sink::start();
    let smtp = smtp_black_hole();
    let slack_url_file = dir.join("slack-api-url");
    let token_file = dir.join("sms-token");
    std::fs::write(
        &slack_url_file,
        format!("http://{}/slack/T0/B0\n", slack.addr),
    )
    .unwrap();
    std::fs::write(&token_file, "sms-token-5f2e9\n").unwrap();
    for f in [&slack_url_file, &token_file] {
        assert!(
            f.to_str().is_some_and(|s| s
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "._/-".contains(c))),
            "the temporary folder's path {} is not a plan's secret file path",
            f.display()
        );
    }
    let text = std::fs::read_to_string(root().join("plans/lawsker.yaml")).unwrap();
    let text = swap(
        &text,
        "api_url_file: /etc/alertmanager/secrets/slack-api-url",
        &format!("api_url_file: {}", slack_url_file.display()),
    );
    let text = swap(
        &text,
        "webhook_url: https://sms-gateway.lawsker.com/v1/alerts",
        &format!("webhook_url: http://{}/v1/alerts", sms.addr),
    );
    let text = swap(
        &text,
        "credentials_file: /etc/alertmanager/secrets/sms-token",
        &format!("credentials_file: {}", token_file.display()),
    );
    let text = swap(
        &text,
        "smarthost: smtp.lawsker.com:587",
        &format!("smarthost: 127.0.0.1:{smtp}"),
    );
    // The scenario file the plan names is beside the original, not this copy.
    let text = swap(
        &text,
        "scenarios: ../simulations/lawsker.yaml",
        &format!(
            "scenarios: {}",
            root().join("simulations/lawsker.yaml").display()
        ),
    );
    let plan_file = dir.join("lawsker.yaml");
    std::fs::write(&plan_file, text).unwrap();
    plan()
        .args(["validate", "--deny-warnings"])
        .arg(&plan_file)
        .expect(0);
    plan()
        .arg("render")
        .arg(&plan_file)
        .arg("--out")
        .arg(dir.join("out"))
        .expect(0);
    let out = dir.join("out/lawsker");
    let config = out.join("alertmanager/alertmanager.yml");

    let am = Alertmanager::start(&bin, &config, &dir);
    // The rollback alert as Prometheus raises it, and a hostile one in another group.
    let rollback = promtool_expected(&out, "beta", "CanaryRollbackErrorRate");
    let hostile = serde_json::json!({
        "labels": {
            "alertname": "CanaryRollbackProbe", "plan": "lawsker", "phase": "gamma",
            "severity": "critical", "kind": "rollback", "release": "v1.1.0",
        },
        "annotations": {
            "summary": "<!channel> & <@U123> {{ .Status }} <https://evil.example|click>",
            "description": "*bold* `code` </a> &amp;",
            "action": "{{ template \"slack.default.title\" . }}",
            "runbook_url": "RUNBOOK.md#rollback-probe",
        },
    });
    am.post_alerts(&serde_json::json!([rollback, hostile]));

    let mut posts = slack.take(2, "Slack", &am);
    let mut pages = sms.take(2, "SMS gateway", &am);
    let phase_of = |body: &serde_json::Value| body["attachments"][0]["title"].to_string();
    posts.sort_by_key(|r| phase_of(&json(&r.body)).contains("gamma"));
    pages.sort_by_key(|r| json(&r.body)["groupLabels"]["phase"] == "gamma");

    // Slack: the rollback alert, ready to act on.
    let a = &rollback["annotations"];
    let ann = |k: &str| a[k].as_str().unwrap_or_else(|| panic!("annotation {k}"));
    let summary = ann("summary");
    assert!(
        regex::Regex::new(r"^error_rate is [0-9.]+% \(> 10% for 5m\)$")
            .unwrap()
            .is_match(summary),
        "the summary gives the value: {summary}"
    );
    let runbook = ann("runbook_url");
    assert_eq!(
        runbook,
        "https://docs.lawsker.com/releases/lawsker/RUNBOOK.md#rollback-error_rate"
    );
    let rb = std::fs::read_to_string(out.join("RUNBOOK.md")).unwrap();
    assert!(rb.contains("<a id=\"rollback-error_rate\"></a>"));
    let post = &posts[0];
    assert_eq!(post.path, "/slack/T0/B0", "the URL read from api_url_file");
    let body = json(&post.body);
    eprintln!("Slack payload of the rollback alert:\n{}", post.body);
    assert_eq!(body["channel"], "#deployment-support");
    let att = &body["attachments"][0];
    assert_eq!(
        att["title"],
        "[FIRING:1] CanaryRollbackErrorRate | plan lawsker, phase beta, release v1.1.0"
    );
    assert_eq!(att["color"], "danger");
    assert_eq!(
        att["text"].as_str().expect("text"),
        format!(
            "*CanaryRollbackErrorRate*: {}\n{}\n*Action:* {}\n*Runbook:* <{runbook}>\n",
            slack_escaped(summary),
            slack_escaped(ann("description")),
            slack_escaped(ann("action")),
        )
    );
    assert!(
        att["fallback"]
            .as_str()
            .unwrap()
            .ends_with(&slack_escaped(summary))
    );
    assert!(
        att["mrkdwn_in"]
            .as_array()
            .unwrap()
            .contains(&"text".into())
    );

    // Slack: hostile text arrives inert, a relative runbook path is shown, not linked.
    let text = json(&posts[1].body)["attachments"][0]["text"]
        .as_str()
        .expect("text")
        .to_string();
    assert!(
        text.contains(
            "&lt;!channel&gt; &amp; &lt;@U123&gt; {{ .Status }} &lt;https://evil.example|click&gt;"
        ),
        "{text}"
    );
    assert!(
        text.contains("*bold* `code` &lt;/a&gt; &amp;amp;"),
        "{text}"
    );
    assert!(
        text.contains("*Action:* {{ template \"slack.default.title\" . }}"),
        "{text}"
    );
    assert!(
        text.contains("*Runbook:* `RUNBOOK.md#rollback-probe` (a path in the rendered output"),
        "{text}"
    );
    for forbidden in ["<!channel>", "<@U123>", "<https://evil", "FIRING"] {
        assert!(!text.contains(forbidden), "{forbidden} in {text}");
    }

    // SMS: the gateway gets the token from the credentials file and the alert's texts.
    for page in &pages {
        assert_eq!(page.path, "/v1/alerts");
        assert_eq!(
            page.headers.get("authorization").map(String::as_str),
            Some("Bearer sms-token-5f2e9"),
            "{page:?}"
        );
    }
    let page = json(&pages[0].body);
    assert_eq!(page["receiver"], "sms");
    assert_eq!(page["version"], "4");
    assert_eq!(page["alerts"][0]["annotations"]["summary"], summary);
    assert_eq!(page["alerts"][0]["annotations"]["runbook_url"], runbook);
    assert_eq!(page["alerts"][0]["labels"]["action"], "rollback");
}

/// The path of `name` on `PATH`, if any (no note, no failure: a fallback name follows).
pub(crate) fn which(name: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}
