//! The NGINX artifacts, proven by the real nginx: `nginx -t` accepts every rendered file of
//! every plan, and a live nginx running each file splits real requests as the plan says
//! (share within a binomial tolerance, sticky, nested from phase to phase, targeted groups,
//! force header both ways, client-address fallback, rollback, promotion, response headers,
//! access log). Everything runs on loopback, bounded in requests and time.

use crate::dns::FakeDns;
use crate::support::*;
use plan::check::CheckedPlan;
use plan::model::Sticky;
use plan::render::nginx::quoting::{map_key, quote};
use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

// ----------------------------------------------------------------------------------------
// Plans and rendered files

/// The checked plan, for the test's expectations (shares, groups, headers).
fn checked(plan_file: &Path) -> CheckedPlan {
    let compiled = plan::pipeline::compile_file(plan_file).expect("plan file readable");
    compiled.plan.expect("plan compiles").plan
}

/// `plan render`s the plan (the real binary) and returns its `nginx/` folder.
fn rendered_nginx(plan_file: &Path) -> PathBuf {
    let out = temp_dir("nginx-render");
    plan()
        .arg("render")
        .arg(plan_file)
        .arg("--out")
        .arg(&out)
        .expect(0);
    let dir = out.join(checked(plan_file).name).join("nginx");
    assert!(dir.is_dir(), "no nginx/ folder in {}", out.display());
    dir
}

/// A plan that exercises the corners: a dashed name, a sticky header, a group named like
/// `map`'s keywords, a 0% phase, a share with two decimals.
const EDGE_PLAN: &str = r#"
name: edge-case-plan
release: { from: "2024.1_rc-1", to: "2024.2" }
service: { name: web_app, image: example/web, port: 9000 }
routing:
  listen: 8080
  server_name: app.example.com
  sticky: { header: X-User-Id }
  group_header: X-Group
  trusted_networks: [192.0.2.0/24]
user_groups:
  default:
    - tier: "gold"
  include:
    - tier: "silver"
phases:
  - { name: dark-launch, traffic: 0%, groups: [default], duration: 1h }
  - { name: p1234, traffic: 12.34%, groups: [default, include], duration: 1h }
  - { name: full, traffic: 100% }
"#;

/// The other branches: split on the client address alone, no group or force header.
const ADDRESS_PLAN: &str = r#"
name: by-address
release: { from: v1, to: v2 }
service: { name: api, image: example/api, port: 80 }
routing:
  listen: 80
  sticky: { client_address: true }
phases:
  - { name: half, traffic: 50%, duration: 30m }
  - { name: all, traffic: 100% }
"#;

fn write_plan(name: &str, text: &str) -> PathBuf {
    let path = temp_dir("nginx-plan").join(format!("{name}.yaml"));
    std::fs::write(&path, text).expect("write plan");
    path
}

fn edge_plan_file() -> PathBuf {
    write_plan("edge-case-plan", EDGE_PLAN)
}

/// Every plan under test: the repository's plans and the two made here.
fn plan_files() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = all_plans().iter().map(|p| root().join(p)).collect();
    v.push(edge_plan_file());
    v.push(write_plan("by-address", ADDRESS_PLAN));
    v
}

// ----------------------------------------------------------------------------------------
// Running nginx

/// Loopback ports for one rendered file under test.
#[derive(Clone, Copy)]
struct Ports {
    listen: u16,
    stable: u16,
    canary: u16,
}

fn loopback(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// A resolver address for files that are only checked (`nginx -t` does not ask it).
fn no_dns() -> SocketAddr {
    loopback(53)
}

fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    l.local_addr().expect("local addr").port()
}

impl Ports {
    fn free() -> Ports {
        // Hold all three listeners at once so the ports differ.
        let ls: Vec<TcpListener> = (0..3)
            .map(|_| TcpListener::bind("127.0.0.1:0").expect("bind"))
            .collect();
        let p: Vec<u16> = ls.iter().map(|l| l.local_addr().unwrap().port()).collect();
        Ports {
            listen: p[0],
            stable: p[1],
            canary: p[2],
        }
    }
}

/// The rendered file as the test runs it: the services (compose names, which NGINX looks up
/// through `resolver`) keep their names but answer on the test's loopback ports, the
/// resolver is the test's DNS server (`dns`) with a 1 s cache instead of 10 s, `listen` a
/// loopback port and the access log a file in the test's folder. Everything else is left as
/// rendered.
fn test_variant(conf: &str, ports: Ports, log: &Path, dns: SocketAddr) -> String {
    let mut out = String::new();
    let mut rewrites = (0, 0, 0, 0, 0);
    let mut in_backend_map = false;
    for line in conf.lines() {
        let t = line.trim_start();
        let indent = &line[..line.len() - t.len()];
        if t.starts_with("map ") {
            in_backend_map = t.ends_with("_backend {");
        } else if t == "}" {
            in_backend_map = false;
        }
        let new = if let Some((head, host, _port)) = backend_value(t, in_backend_map) {
            let port = if host.ends_with("-canary") {
                rewrites.1 += 1;
                ports.canary
            } else {
                rewrites.0 += 1;
                ports.stable
            };
            format!("{indent}{head}\"{host}:{port}\";")
        } else if t.starts_with("listen ") {
            rewrites.2 += 1;
            format!("{indent}listen 127.0.0.1:{};", ports.listen)
        } else if let Some(rest) = t.strip_prefix("access_log ") {
            rewrites.3 += 1;
            let format = rest.rsplit(' ').next().expect("access_log has a format");
            format!("{indent}access_log {} {format}", log.display())
        } else if t.starts_with("resolver ") {
            rewrites.4 += 1;
            assert!(t.ends_with(" valid=10s;"), "{t}");
            format!("{indent}resolver {dns} valid=1s;")
        } else {
            line.to_string()
        };
        out.push_str(&new);
        out.push('\n');
    }
    assert_eq!(rewrites.0, 1, "one stable service:\n{conf}");
    assert!(rewrites.1 <= 1, "at most one canary service:\n{conf}");
    assert_eq!(
        (rewrites.2, rewrites.3, rewrites.4),
        (1, 1, 1),
        "one listen, one access_log, one resolver:\n{conf}"
    );
    out
}

/// A line giving a service's address, `set $…_backend "host:port";` or, inside the
/// backend map, `canary "host:port";`: (what precedes the value, host, port).
fn backend_value(line: &str, in_backend_map: bool) -> Option<(&str, &str, u16)> {
    let is_set = line.starts_with("set $") && line.contains("_backend ");
    if !is_set && !in_backend_map {
        return None;
    }
    let (head, value) = line.split_at(line.find('"')?);
    let (host, port) = value
        .strip_prefix('"')?
        .strip_suffix("\";")?
        .rsplit_once(':')?;
    Some((head, host, port.parse().ok()?))
}

/// A complete nginx.conf around one or more drop-ins, with everything nginx writes inside
/// `dir`, plus the two backends answering `stable` and `canary` on loopback.
///
/// Loopback clients may state the address NGINX should see them from in `X-Test-Client`
/// (the real-IP module), so that one test client can be a trusted network's client and an
/// outsider in turn.
fn wrapper(
    dir: &Path,
    includes: &[PathBuf],
    backends: &[(SocketAddr, &str)],
    live: bool,
) -> PathBuf {
    let d = dir.display();
    let mut conf = String::new();
    if live {
        conf.push_str("daemon off;\nmaster_process off;\n");
    }
    conf.push_str(&format!(
        "pid {d}/nginx.pid;\nerror_log {d}/error.log warn;\nevents {{ worker_connections 256; }}\nhttp {{\n    access_log off;\n    set_real_ip_from 127.0.0.0/8;\n    real_ip_header X-Test-Client;\n"
    ));
    for t in ["client_body", "proxy", "fastcgi", "uwsgi", "scgi"] {
        conf.push_str(&format!("    {t}_temp_path {d}/{t}_temp;\n"));
    }
    for inc in includes {
        conf.push_str(&format!("    include {};\n", inc.display()));
    }
    for (addr, body) in backends {
        conf.push_str(&format!(
            "    server {{ listen {addr}; access_log off; location / {{ return 200 \"{body}\"; }} }}\n"
        ));
    }
    conf.push_str("}\n");
    let path = dir.join("nginx.conf");
    std::fs::write(&path, conf).expect("write nginx.conf");
    path
}

fn nginx_command(nginx: &Path, dir: &Path, conf: &Path) -> Command {
    let mut cmd = Command::new(nginx);
    cmd.arg("-p")
        .arg(dir)
        .arg("-e")
        .arg(dir.join("error.log"))
        .arg("-c")
        .arg(conf);
    cmd
}

/// `nginx -t` on a wrapper; panics with nginx's own words when it refuses.
fn nginx_t(nginx: &Path, dir: &Path, conf: &Path, what: &str) {
    let out = nginx_command(nginx, dir, conf)
        .arg("-t")
        .stdin(Stdio::null())
        .output()
        .expect("nginx runs");
    assert!(
        out.status.success(),
        "nginx -t refused {what}:\n{}\n--- config:\n{}",
        String::from_utf8_lossy(&out.stderr),
        std::fs::read_to_string(conf).unwrap_or_default()
    );
}

/// A running nginx (foreground, one process), killed when dropped.
struct Nginx {
    child: Child,
    addr: SocketAddr,
    dir: PathBuf,
    /// The DNS server the rendered file's `resolver` asks (kept alive while nginx runs).
    _dns: Option<FakeDns>,
}

impl Nginx {
    /// Starts nginx on one rendered file, with both loopback backends.
    fn start(nginx: &Path, rendered: &Path) -> Nginx {
        let ports = Ports::free();
        let backends = [
            (loopback(ports.stable), "stable"),
            (loopback(ports.canary), "canary"),
        ];
        let dns = FakeDns::any(Ipv4Addr::LOCALHOST);
        Nginx::launch(nginx, rendered, ports, dns, &backends)
    }

    /// Starts nginx on one rendered file whose services `dns` resolves, with `backends`
    /// (address, body) served by the same nginx.
    fn launch(
        nginx: &Path,
        rendered: &Path,
        ports: Ports,
        dns: FakeDns,
        backends: &[(SocketAddr, &str)],
    ) -> Nginx {
        let dir = temp_dir("nginx-live");
        let conf = std::fs::read_to_string(rendered).expect("rendered file");
        let site = dir.join("site.conf");
        let variant = test_variant(&conf, ports, &dir.join("access.log"), dns.addr);
        std::fs::write(&site, variant).expect("write site.conf");
        let main = wrapper(&dir, &[site], backends, true);
        nginx_t(nginx, &dir, &main, &rendered.display().to_string());
        let child = nginx_command(nginx, &dir, &main)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nginx starts");
        let mut n = Nginx {
            child,
            addr: loopback(ports.listen),
            dir,
            _dns: Some(dns),
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect_timeout(&n.addr, Duration::from_millis(200)).is_err() {
            if let Ok(Some(status)) = n.child.try_wait() {
                panic!("nginx exited ({status}):\n{}", n.error_log());
            }
            assert!(Instant::now() < deadline, "nginx did not listen in 10 s");
            std::thread::sleep(Duration::from_millis(20));
        }
        n
    }

    fn error_log(&self) -> String {
        std::fs::read_to_string(self.dir.join("error.log")).unwrap_or_default()
    }

    fn access_log(&self) -> String {
        std::fs::read_to_string(self.dir.join("access.log")).unwrap_or_default()
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// ----------------------------------------------------------------------------------------
// A small HTTP/1.1 client: keep-alive connections, requests pipelined in batches.

/// One request: its extra headers.
type Request = Vec<(String, String)>;

#[derive(Debug, Clone, PartialEq, Eq)]
struct Response {
    status: u16,
    /// The backend that answered: `stable` or `canary`.
    body: String,
    track: Option<String>,
    version: Option<String>,
}

/// Requests per connection; under nginx's default `keepalive_requests` (1000).
const BATCH: usize = 250;

fn send_all(addr: SocketAddr, requests: &[Request]) -> Vec<Response> {
    let mut out = Vec::with_capacity(requests.len());
    for batch in requests.chunks(BATCH) {
        out.extend(send_batch(addr, batch));
    }
    out
}

fn send_batch(addr: SocketAddr, batch: &[Request]) -> Vec<Response> {
    let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    stream
        .set_write_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    stream.set_nodelay(true).unwrap();
    let mut text = String::new();
    for headers in batch {
        text.push_str("GET /api/health HTTP/1.1\r\nHost: app.example.com\r\n");
        for (k, v) in headers {
            text.push_str(&format!("{k}: {v}\r\n"));
        }
        text.push_str("\r\n");
    }
    (&stream).write_all(text.as_bytes()).expect("send requests");
    let mut reader = BufReader::new(&stream);
    batch
        .iter()
        .enumerate()
        .map(|(i, _)| read_response(&mut reader, i + 1 == batch.len()))
        .collect()
}

fn read_response(r: &mut impl BufRead, last: bool) -> Response {
    let mut line = String::new();
    r.read_line(&mut line).expect("status line");
    let status: u16 = line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad status line {line:?}"));
    let mut headers = BTreeMap::new();
    loop {
        line.clear();
        r.read_line(&mut line).expect("header line");
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        let (k, v) = l.split_once(':').expect("header has a colon");
        headers.insert(k.to_ascii_lowercase(), v.trim().to_string());
    }
    if !last {
        assert_ne!(
            headers.get("connection").map(String::as_str),
            Some("close"),
            "nginx closed a keep-alive connection early"
        );
    }
    let len: usize = headers
        .get("content-length")
        .and_then(|v| v.parse().ok())
        .expect("content-length");
    let mut body = vec![0; len];
    r.read_exact(&mut body).expect("body");
    Response {
        status,
        body: String::from_utf8_lossy(&body).into_owned(),
        track: headers.get("x-release-track").cloned(),
        version: headers.get("x-release-version").cloned(),
    }
}

fn h(k: &str, v: &str) -> (String, String) {
    (k.to_string(), v.to_string())
}

// ----------------------------------------------------------------------------------------
// The tests

/// `nginx -t` accepts every rendered file of every plan, alone; and one file of each plan
/// together in one nginx (their names do not collide).
#[test]
fn nginx_accepts_every_rendered_file() {
    let Some(nginx) = tool("nginx") else { return };
    let mut one_per_plan = Vec::new();
    let dir = temp_dir("nginx-t");
    for plan_file in plan_files() {
        let rendered = rendered_nginx(&plan_file);
        let p = checked(&plan_file);
        let mut names: Vec<String> = std::fs::read_dir(&rendered)
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        let mut expected: Vec<String> = p
            .phases
            .iter()
            .map(|ph| format!("{}.conf", ph.name))
            .collect();
        expected.extend(["promotion.conf".into(), "rollback.conf".into()]);
        expected.sort();
        assert_eq!(names, expected, "{}", plan_file.display());
        for name in &names {
            let conf = std::fs::read_to_string(rendered.join(name)).unwrap();
            assert!(
                conf.starts_with("# generated by plan from "),
                "{name} starts with the header:\n{conf}"
            );
            let case = temp_dir("nginx-t-case");
            let site = case.join("site.conf");
            let ports = Ports::free();
            let variant = test_variant(&conf, ports, &case.join("access.log"), no_dns());
            std::fs::write(&site, variant).unwrap();
            let main = wrapper(&case, std::slice::from_ref(&site), &[], false);
            nginx_t(&nginx, &case, &main, &format!("{}: {name}", p.name));
            if name == &names[0] {
                let together = dir.join(format!("{}.conf", p.name));
                std::fs::copy(&site, &together).unwrap();
                one_per_plan.push(together);
            }
        }
    }
    assert!(one_per_plan.len() >= 2);
    let main = wrapper(&dir, &one_per_plan, &[], false);
    nginx_t(&nginx, &dir, &main, "several plans together");
}

/// Rendering is deterministic and the files mention no canary where there is none.
#[test]
fn rendering_is_deterministic_and_rollback_names_no_canary() {
    for plan_file in plan_files() {
        let p = checked(&plan_file);
        let a = plan::render::nginx::render(&p);
        assert_eq!(a, plan::render::nginx::render(&p));
        for art in &a {
            let canary_host = format!("\"{}-canary:", p.service.name);
            let has_canary = art.contents.contains(&canary_host);
            let is_phase =
                !art.path.ends_with("/rollback.conf") && !art.path.ends_with("/promotion.conf");
            assert_eq!(has_canary, is_phase, "{}:\n{}", art.path, art.contents);
            assert!(
                !art.contents.contains("plan_render_refused"),
                "{}",
                art.contents
            );
        }
    }
}

/// What one phase's run measured.
struct PhaseRun {
    canary_users: BTreeSet<usize>,
    share: f64,
}

fn users(n: usize, offset: usize) -> Vec<String> {
    (offset..offset + n)
        .map(|i| format!("u{i:06}x{}", i * 7919 % 1000))
        .collect()
}

/// Sends one request per user (sticky cookie or header) with `extra` headers; returns
/// whether each landed on the canary, checking the response headers on the way.
fn on_canary(n: &Nginx, p: &CheckedPlan, ids: &[String], extra: &[(String, String)]) -> Vec<bool> {
    let reqs: Vec<Request> = ids
        .iter()
        .map(|id| {
            let mut r = vec![sticky(p, id)];
            r.extend(extra.iter().cloned());
            r
        })
        .collect();
    send_all(n.addr, &reqs)
        .into_iter()
        .map(|r| check_response(p, &r, false))
        .collect()
}

/// The header carrying user `id`: the sticky cookie or header.
fn sticky(p: &CheckedPlan, id: &str) -> (String, String) {
    match &p.routing.sticky {
        Sticky::Cookie(c) => h("Cookie", &format!("theme=dark; {c}={id}")),
        Sticky::Header(name) => h(name, id),
        Sticky::ClientAddress(_) => h("X-Ignored", id),
    }
}

/// The response is well-formed and its headers name the backend that answered; returns
/// whether that was the canary. `promoted`: the stable service runs the new version.
fn check_response(p: &CheckedPlan, r: &Response, promoted: bool) -> bool {
    assert_eq!(r.status, 200, "{r:?}");
    let canary = match r.body.as_str() {
        "canary" => true,
        "stable" => false,
        other => panic!("unexpected body {other:?}"),
    };
    let (track, version) = if canary {
        ("canary", &p.release.to)
    } else if promoted {
        ("stable", &p.release.to)
    } else {
        ("stable", &p.release.from)
    };
    assert_eq!(r.track.as_deref(), Some(track), "{r:?}");
    assert_eq!(r.version.as_deref(), Some(version.as_str()), "{r:?}");
    canary
}

/// Binomial tolerance: `k` canary users out of `n` lies within `sigmas` of share `p`.
fn assert_share(what: &str, k: usize, n: usize, p: f64, sigmas: f64) {
    let mean = n as f64 * p;
    let sd = (n as f64 * p * (1.0 - p)).sqrt();
    let got = k as f64;
    assert!(
        (got - mean).abs() <= sigmas * sd + 1e-9,
        "{what}: {k} of {n} on the canary, expected {mean:.0} ± {:.0} ({sigmas} sigma)",
        sigmas * sd
    );
}

fn run_phase(nginx: &Path, p: &CheckedPlan, dir: &Path, i: usize, ids: &[String]) -> PhaseRun {
    let phase = &p.phases[i];
    let n = Nginx::start(nginx, &dir.join(format!("{}.conf", phase.name)));
    let share = phase.traffic.fraction();

    // The split: one request per user.
    let first = on_canary(&n, p, ids, &[]);
    let canary_users: BTreeSet<usize> = (0..ids.len()).filter(|&u| first[u]).collect();
    let measured = canary_users.len() as f64 / ids.len() as f64;
    eprintln!(
        "nginx live: {} phase {}: {} of {} users on the canary = {:.2}% (plan: {})",
        p.name,
        phase.name,
        canary_users.len(),
        ids.len(),
        measured * 100.0,
        phase.traffic
    );
    assert_share(&phase.name, canary_users.len(), ids.len(), share, 4.5);

    // Sticky: a sample of users asks again, twice, and lands where it did.
    let sample: Vec<String> = ids.iter().step_by(7).cloned().collect();
    for _ in 0..2 {
        let again = on_canary(&n, p, &sample, &[]);
        for (j, &c) in again.iter().enumerate() {
            assert_eq!(c, first[j * 7], "{}: user {} moved", phase.name, sample[j]);
        }
    }

    // Targeted groups and the force header count only from the trusted networks: from a
    // trusted client they win over the split, from anyone else they change nothing.
    let some: Vec<String> = ids.iter().take(400).cloned().collect();
    let (trusted, outsider) = header_clients(p);
    if let Some(client) = trusted {
        let from = h("X-Test-Client", &client.to_string());
        // The split as seen from this address (it is the key when there is no sticky id).
        let split = on_canary(&n, p, &some, std::slice::from_ref(&from));
        if let Some(gh) = &p.routing.group_header {
            for (g, group) in p.groups.iter().enumerate() {
                let got = on_canary(&n, p, &some, &[from.clone(), h(gh, &group.name)]);
                for (j, &c) in got.iter().enumerate() {
                    let expected = phase.groups.contains(&g) || split[j];
                    assert_eq!(
                        c, expected,
                        "{}: group {} user {} from {client}",
                        phase.name, group.name, some[j]
                    );
                }
            }
            let got = on_canary(&n, p, &some, &[from.clone(), h(gh, "nobody_in_particular")]);
            assert_eq!(got, split, "{}: unknown group", phase.name);
        }
        if let Some(fh) = &p.routing.force_header {
            let targeted = phase
                .groups
                .first()
                .zip(p.routing.group_header.as_ref())
                .map(|(&g, gh)| h(gh, &p.groups[g].name));
            for (value, want) in [("canary", true), ("stable", false)] {
                let mut extra = vec![from.clone(), h(fh, value)];
                let got = on_canary(&n, p, &some, &extra);
                assert!(
                    got.iter().all(|&c| c == want),
                    "{}: {fh}: {value} from {client}",
                    phase.name
                );
                if let Some(t) = &targeted {
                    extra.push(t.clone());
                    let got = on_canary(&n, p, &some, &extra);
                    assert!(
                        got.iter().all(|&c| c == want),
                        "{}: {fh}: {value} with a targeted group",
                        phase.name
                    );
                }
            }
        }
    }
    if let Some(client) = outsider {
        let from = h("X-Test-Client", &client.to_string());
        let split = on_canary(&n, p, &some, std::slice::from_ref(&from));
        let mut tries: Vec<(String, String)> = Vec::new();
        if let Some(gh) = &p.routing.group_header {
            tries.extend(p.groups.iter().map(|g| h(gh, &g.name)));
        }
        if let Some(fh) = &p.routing.force_header {
            tries.extend([h(fh, "canary"), h(fh, "stable")]);
        }
        for header in tries {
            let got = on_canary(&n, p, &some, &[from.clone(), header.clone()]);
            assert_eq!(
                got, split,
                "{}: `{}: {}` from the untrusted {client} changed where users went",
                phase.name, header.0, header.1
            );
        }
    }

    // No sticky id: the client address decides (every request from 127.0.0.1 alike, and
    // where a user whose id is that address lands).
    if !matches!(p.routing.sticky, Sticky::ClientAddress(_)) {
        let bare = send_all(n.addr, &vec![Vec::new(); 300]);
        let bare: Vec<bool> = bare.iter().map(|r| check_response(p, r, false)).collect();
        assert!(
            bare.iter().all(|&c| c == bare[0]),
            "{}: no cookie, mixed",
            phase.name
        );
        let as_address = on_canary(&n, p, &["127.0.0.1".to_string()], &[]);
        assert_eq!(
            as_address[0], bare[0],
            "{}: the fallback key is the client address",
            phase.name
        );
        if let Sticky::Cookie(c) = &p.routing.sticky {
            let r = send_all(n.addr, &[vec![h("Cookie", &format!("{c}="))]]);
            assert_eq!(
                check_response(p, &r[0], false),
                bare[0],
                "empty cookie falls back"
            );
        }
    }

    // The access log records track and version for each proxied request.
    let log = n.access_log();
    drop(n);
    let tracked = |t: &str, v: &str| {
        log.lines()
            .filter(|l| l.contains(&format!("step={} track={t} version={v} ", phase.name)))
            .count()
    };
    let (c, s) = (
        tracked("canary", &p.release.to),
        tracked("stable", &p.release.from),
    );
    assert_eq!(
        c + s,
        log.lines().count(),
        "every line names a track:\n{}",
        &log[..log.len().min(2000)]
    );
    assert!(
        c >= canary_users.len(),
        "{}: {c} canary log lines",
        phase.name
    );
    if share < 1.0 {
        assert!(s > 0, "{}: no stable log line", phase.name);
    }

    PhaseRun {
        canary_users,
        share: measured,
    }
}

/// A client address in the plan's trusted networks (it sends the group and force headers
/// NGINX honours), and one outside all of them, when there is such an address.
fn header_clients(p: &CheckedPlan) -> (Option<IpAddr>, Option<IpAddr>) {
    let trusted = p.routing.trusted_networks.first().map(|n| n.first());
    let outsider = ["203.0.113.7", "2001:db8::7"]
        .into_iter()
        .map(|a| a.parse::<IpAddr>().expect("an address"))
        .find(|a| !p.routing.trusted_networks.iter().any(|n| n.contains(*a)));
    (trusted, outsider)
}

/// Rollback sends nobody to the canary (forced or targeted, from a trusted client);
/// promotion sends everybody to the new version, on the stable service.
fn run_single(nginx: &Path, p: &CheckedPlan, dir: &Path, step: &str, ids: &[String]) {
    let promoted = step == "promotion";
    let n = Nginx::start(nginx, &dir.join(format!("{step}.conf")));
    let mut extra: Vec<(String, String)> = Vec::new();
    if let Some(client) = header_clients(p).0 {
        extra.push(h("X-Test-Client", &client.to_string()));
    }
    if let Some(fh) = &p.routing.force_header {
        extra.push(h(fh, "canary"));
    }
    if let (Some(gh), Some(g)) = (&p.routing.group_header, p.groups.first()) {
        extra.push(h(gh, &g.name));
    }
    for extra in [Vec::new(), extra] {
        let reqs: Vec<Request> = ids
            .iter()
            .map(|id| {
                let mut r = vec![sticky(p, id)];
                r.extend(extra.iter().cloned());
                r
            })
            .collect();
        let got = send_all(n.addr, &reqs);
        assert_eq!(got.len(), ids.len());
        for r in &got {
            assert!(!check_response(p, r, promoted), "{step}: {r:?}");
        }
    }
    let log = n.access_log();
    drop(n);
    let version = if promoted {
        &p.release.to
    } else {
        &p.release.from
    };
    let want = format!("step={step} track=stable version={version} ");
    assert!(
        !log.is_empty() && log.lines().all(|l| l.contains(&want)),
        "{step}: access log lines must contain {want}"
    );
    eprintln!(
        "nginx live: {} {step}: {} requests, all on the stable service running {version}",
        p.name,
        ids.len() * 2
    );
}

/// The lawsker plan, live: every phase with 10,000 users, then rollback and promotion.
#[test]
fn nginx_splits_live_traffic_as_planned() {
    let Some(nginx) = tool("nginx") else { return };
    let started = Instant::now();
    let plan_file = root().join("plans/lawsker.yaml");
    let p = checked(&plan_file);
    let dir = rendered_nginx(&plan_file);
    let ids = users(10_000, 0);
    let runs: Vec<PhaseRun> = (0..p.phases.len())
        .map(|i| run_phase(&nginx, &p, &dir, i, &ids))
        .collect();
    // Nested: whoever was on the canary stays there as the share grows.
    for w in runs.windows(2) {
        let lost: Vec<_> = w[0].canary_users.difference(&w[1].canary_users).collect();
        assert!(
            lost.is_empty(),
            "{} users left the canary as the share grew",
            lost.len()
        );
        assert!(w[0].share <= w[1].share);
    }
    run_single(&nginx, &p, &dir, "rollback", &ids[..2000]);
    run_single(&nginx, &p, &dir, "promotion", &ids[..2000]);
    eprintln!("nginx live: lawsker took {:.1?}", started.elapsed());
}

/// The edge plan, live: a sticky header, a 0% phase with a targeted group named `default`,
/// a group named `include`, a 12.34% share, no force header.
#[test]
fn nginx_edge_plan_live() {
    let Some(nginx) = tool("nginx") else { return };
    let plan_file = edge_plan_file();
    let p = checked(&plan_file);
    let dir = rendered_nginx(&plan_file);
    let ids = users(4000, 50_000);
    let runs: Vec<PhaseRun> = (0..p.phases.len())
        .map(|i| run_phase(&nginx, &p, &dir, i, &ids))
        .collect();
    assert!(
        runs[0].canary_users.is_empty(),
        "0% sends no user to the canary"
    );
    assert_eq!(
        runs[2].canary_users.len(),
        ids.len(),
        "100% sends every user"
    );
    run_single(&nginx, &p, &dir, "rollback", &ids[..500]);
    run_single(&nginx, &p, &dir, "promotion", &ids[..500]);
}

/// The quoting functions against the real nginx: a `map` keyed by hostile values loads, and
/// each value (sent as a header) matches its own key and nothing else.
#[test]
fn nginx_reads_quoted_values_back_exactly() {
    let Some(nginx) = tool("nginx") else { return };
    let hostile = [
        "a\"b",
        "a;b",
        "}",
        "{",
        "x { return 500; }",
        "# not a comment",
        "a\\b",
        "\\\"",
        "it's",
        "default",
        "include",
        "hostnames",
        "volatile",
        "~.*",
        "\\default",
        "\"; } server { listen 1; #",
    ];
    let mut conf = String::from("map $http_x_probe $probe {\n");
    for (i, v) in hostile.iter().enumerate() {
        conf.push_str(&format!("    {} hit{i};\n", map_key(v).expect("quotable")));
    }
    conf.push_str("    default miss;\n}\n");
    let port = free_port();
    conf.push_str(&format!(
        "server {{ listen 127.0.0.1:{port}; location / {{ add_header X-Release-Track {} always; return 200 \"$probe\"; }} }}\n",
        quote("q;\"{}#").unwrap()
    ));
    for refused in ["$host", "a\nb", "é"] {
        assert!(quote(refused).is_err() && map_key(refused).is_err());
    }
    let dir = temp_dir("nginx-quote");
    let site = dir.join("site.conf");
    std::fs::write(&site, &conf).unwrap();
    let main = wrapper(&dir, &[site], &[], true);
    nginx_t(&nginx, &dir, &main, "hostile map keys");
    let child = nginx_command(&nginx, &dir, &main)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("nginx starts");
    let n = Nginx {
        child,
        addr: loopback(port),
        dir,
        _dns: None,
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect_timeout(&n.addr, Duration::from_millis(200)).is_err() {
        assert!(
            Instant::now() < deadline,
            "nginx did not start:\n{}",
            n.error_log()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut reqs: Vec<Request> = hostile.iter().map(|v| vec![h("X-Probe", v)]).collect();
    reqs.push(vec![h("X-Probe", "zzz")]);
    reqs.push(vec![h("X-Probe", "efault")]);
    let got = send_all(n.addr, &reqs);
    for (i, v) in hostile.iter().enumerate() {
        assert_eq!(got[i].body, format!("hit{i}"), "{v:?} matched another key");
        assert_eq!(got[i].track.as_deref(), Some("q;\"{}#"));
    }
    assert_eq!(got[hostile.len()].body, "miss");
    assert_eq!(got[hostile.len() + 1].body, "miss");
}

/// A name NGINX would have to hash: `len` characters of `[a-z]`, distinct per `seed`.
fn long_name(len: usize, seed: usize, alphabet: &str) -> String {
    let letters: Vec<char> = alphabet.chars().collect();
    (0..len)
        .map(|i| letters[(i * 7 + seed * 13 + i * i * seed) % letters.len()])
        .collect()
}

/// A plan whose every NGINX-facing name is as long as the schema allows.
fn longest_names_plan(seed: usize) -> String {
    let name = format!("l{}", long_name(31, seed, "abcdefghijklmnopqrstuvwxyz"));
    let group = |g: usize| {
        format!(
            "g{}",
            long_name(39, seed * 5 + g, "abcdefghijklmnopqrstuvwxyz")
        )
    };
    let label = |n: usize| long_name(63, seed + n, "abcdefghijklmnopqrstuvwxyz");
    let server_name = (0..4)
        .map(|i| {
            long_name(
                if i < 3 { 63 } else { 61 },
                seed + i,
                "abcdefghijklmnopqrstuvwxyz",
            )
        })
        .collect::<Vec<_>>()
        .join(".");
    format!(
        r#"
name: {name}
release: {{ from: v1, to: v2 }}
service: {{ name: s{service}, image: example/web, port: 9000 }}
routing:
  listen: 8080
  server_name: {server_name}
  sticky: {{ cookie: C{cookie} }}
  group_header: X{group_header}
  force_header: Y{force_header}
  trusted_networks: [10.0.0.0/8, "fd00::/8"]
user_groups:
  {g0}: [{{ tier: gold }}]
  {g1}: [{{ tier: silver }}]
  {g2}: [{{ tier: bronze }}]
phases:
  - {{ name: p{phase}, traffic: 10%, groups: [{g0}, {g1}, {g2}], duration: 1h }}
  - {{ name: full, traffic: 100% }}
"#,
        service = &label(1)[..54],
        cookie = &label(2)[..62],
        group_header = &label(3)[..62],
        force_header = &label(4)[..62],
        g0 = group(0),
        g1 = group(1),
        g2 = group(2),
        phase = &label(5)[..31],
    )
}

/// NGINX hashes variable names and `map` keys in buckets of 64 bytes by default, which hold
/// names of at most 46 characters: the longest plan, group, header, cookie and server names
/// the schema allows load, alone and four plans together.
#[test]
fn nginx_accepts_the_longest_names_the_schema_allows() {
    let Some(nginx) = tool("nginx") else { return };
    let dir = temp_dir("nginx-long");
    let mut together = Vec::new();
    for seed in 0..4 {
        let text = longest_names_plan(seed);
        let plan_file = write_plan(&format!("long-{seed}"), &text);
        plan().arg("validate").arg(&plan_file).expect(0);
        let p = checked(&plan_file);
        assert_eq!(p.name.len(), 32, "{}", p.name);
        assert!(p.groups.iter().all(|g| g.name.len() == 40));
        let rendered = rendered_nginx(&plan_file);
        let first = p.phases[0].name.as_str();
        for step in [first, "full", "rollback", "promotion"] {
            let conf = std::fs::read_to_string(rendered.join(format!("{step}.conf"))).unwrap();
            let case = temp_dir("nginx-long-case");
            let site = case.join("site.conf");
            let variant = test_variant(&conf, Ports::free(), &case.join("access.log"), no_dns());
            std::fs::write(&site, &variant).unwrap();
            nginx_t(
                &nginx,
                &case,
                &wrapper(&case, std::slice::from_ref(&site), &[], false),
                step,
            );
            if step == first {
                let copy = dir.join(format!("{seed}.conf"));
                std::fs::write(&copy, &variant).unwrap();
                together.push(copy);
            }
        }
    }
    nginx_t(
        &nginx,
        &dir,
        &wrapper(&dir, &together, &[], false),
        "four long plans together",
    );

    // One character more is refused by `plan validate`, at the line of the name.
    let text = longest_names_plan(0);
    let name = text.lines().find_map(|l| l.strip_prefix("name: ")).unwrap();
    let longer = text.replacen(&format!("name: {name}"), &format!("name: {name}z"), 1);
    let done = plan()
        .arg("validate")
        .arg(write_plan("long-name", &longer))
        .expect(1);
    assert!(
        done.stderr.contains(":2:7: error[bad-value]"),
        "{}",
        done.stderr
    );
    let group = text
        .lines()
        .find_map(|l| l.trim().strip_suffix(": [{ tier: gold }]"))
        .unwrap();
    let longer = text.replace(group, &format!("{group}z"));
    let done = plan()
        .arg("validate")
        .arg(write_plan("long-group", &longer))
        .expect(1);
    assert!(
        done.stderr.contains(":13:3: error[bad-name]: the name")
            && done.stderr.contains("is longer than 40 characters"),
        "{}",
        done.stderr
    );
}

/// A service restarted at a new address (a container recreated by compose) is reached at its
/// new address without a reload: NGINX asks the resolver again once the answer is older
/// than `valid`.
#[test]
fn nginx_follows_a_restarted_service_to_its_new_address() {
    let Some(nginx) = tool("nginx") else { return };
    let plan_file = root().join("plans/lawsker.yaml");
    let p = checked(&plan_file);
    let dir = rendered_nginx(&plan_file);
    let service = p.service.name.clone();
    let old = Ipv4Addr::new(127, 0, 0, 2);
    let new = Ipv4Addr::new(127, 0, 0, 3);
    let dns = FakeDns::start(&[(service.as_str(), old)]);
    let ports = Ports::free();
    let backends = [
        (SocketAddr::from((old, ports.stable)), "old"),
        (SocketAddr::from((new, ports.stable)), "new"),
    ];
    let n = Nginx::launch(&nginx, &dir.join("rollback.conf"), ports, dns, &backends);
    let bodies = |n: &Nginx| -> Vec<String> {
        send_all(n.addr, &vec![Vec::new(); 20])
            .into_iter()
            .map(|r| {
                assert_eq!(r.status, 200, "{r:?}\n{}", n.error_log());
                r.body
            })
            .collect()
    };
    assert!(bodies(&n).iter().all(|b| b == "old"));
    let asked = n._dns.as_ref().unwrap().queries();
    assert!(asked > 0, "nginx never asked the resolver");
    n._dns.as_ref().unwrap().set(&service, new);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let got = bodies(&n);
        if got.iter().all(|b| b == "new") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "still answered by the old address 10 s after the move: {got:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}
