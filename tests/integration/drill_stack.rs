//! The live stack of the release drill (`drill.rs`), on loopback only, every piece stopped
//! when dropped (also when the test panics):
//!
//! - [`Stub`]: a stable or canary HTTP service (std threads), answering 200, or 5xx at a
//!   set ratio once switched to a fault, after an optional latency, and serving `/metrics`
//!   in Prometheus' text format with the series the plan's built-in metrics read: the
//!   request counter per status code (each code's series created at its first request, as
//!   client libraries do) and the request-duration histogram. `service` and `track` are
//!   not exported: Prometheus' scrape config adds them as target labels, as a compose
//!   deployment does from the containers' `io.plan.track` label.
//! - [`Prometheus`] and [`Nginx`]: the real programs as child processes ([`Proc`]: SIGTERM,
//!   then SIGKILL), with their data, logs and temporary files in the test's folder.
//! - [`LoadGen`]: distinct users, each with its own sticky cookie, sending requests through
//!   NGINX at a steady rate and recording which track answered them.
//! - [`http`]: the small HTTP/1.0 client the test reads Prometheus' API with (HTTP/1.0, so
//!   Go's server sends the body whole, never chunked).
//!
//! The pieces are separate so that the release driver's drill can reuse them: point the
//! Alertmanager webhook at `plan release serve`, swap NGINX's site file and [`Nginx::reload`].

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Now, in Unix milliseconds.
pub fn unix_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_millis() as i64
}

/// Polls `f` every `every` until it gives a value, or panics with `what` (and `log()`)
/// after `limit`.
pub fn poll<T>(
    limit: Duration,
    every: Duration,
    what: &str,
    log: impl Fn() -> String,
    mut f: impl FnMut() -> Option<T>,
) -> T {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: not within {limit:?}\n{}",
            log()
        );
        std::thread::sleep(every);
    }
}

/// The live drills run one at a time: two Prometheus servers, two NGINX and the load on two
/// cores would make evaluations late, and the replay proof needs every one on time.
pub fn one_drill_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    static LIVE: Mutex<()> = Mutex::new(());
    // A drill that panicked leaves the lock poisoned; its stack is stopped all the same.
    LIVE.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

// ----------------------------------------------------------------------------------------
// Stub services

/// Upper bounds of the request-duration histogram: the Go client's default buckets.
const BUCKETS: [f64; 11] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// What a stub has served, as its `/metrics` shows it.
#[derive(Default)]
struct Served {
    by_code: BTreeMap<u16, u64>,
    /// Observations at or below each of [`BUCKETS`] (cumulative), then the count and sum.
    buckets: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
    /// Requests served in fault mode, for the exact error ratio.
    faulty: u64,
}

struct StubState {
    track: &'static str,
    /// The share of requests answered 500, in millionths (0: healthy).
    fault_ppm: AtomicU32,
    /// Time spent on each request before answering, in microseconds.
    latency_us: AtomicU64,
    served: Mutex<Served>,
}

/// A stable or canary service on its own loopback address (see the module's header).
pub struct Stub {
    pub addr: SocketAddr,
    state: Arc<StubState>,
    stop: Arc<AtomicBool>,
}

impl Stub {
    /// Serves `track` on `listener` (already bound, so the caller picked the address).
    pub fn serve(track: &'static str, listener: TcpListener) -> Stub {
        let addr = listener.local_addr().expect("stub address");
        let state = Arc::new(StubState {
            track,
            fault_ppm: AtomicU32::new(0),
            latency_us: AtomicU64::new(0),
            served: Mutex::new(Served::default()),
        });
        let stop = Arc::new(AtomicBool::new(false));
        let (s, st) = (state.clone(), stop.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if st.load(Ordering::Relaxed) {
                    return;
                }
                let Ok(conn) = conn else { continue };
                let s = s.clone();
                std::thread::spawn(move || serve_connection(&s, conn));
            }
        });
        Stub { addr, state, stop }
    }

    /// From now on, answers `ratio` of requests (0 to 1) with a 500, evenly spread.
    pub fn set_fault(&self, ratio: f64) {
        let ppm = (ratio.clamp(0.0, 1.0) * 1e6).round() as u32;
        self.state.fault_ppm.store(ppm, Ordering::SeqCst);
    }

    /// From now on, takes `latency` to answer each request.
    pub fn set_latency(&self, latency: Duration) {
        self.state
            .latency_us
            .store(latency.as_micros() as u64, Ordering::SeqCst);
    }

    /// Requests answered so far, by status code.
    pub fn served(&self) -> BTreeMap<u16, u64> {
        self.state
            .served
            .lock()
            .expect("stub state")
            .by_code
            .clone()
    }
}

impl Drop for Stub {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // Wake the accept loop so that it sees the flag.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_millis(200));
    }
}

/// Binds the stable and the canary on two loopback addresses with one port (as two
/// containers of one service expose the same port), retrying when the port is taken on
/// the second address.
pub fn stub_pair(stable_ip: Ipv4Addr, canary_ip: Ipv4Addr) -> (Stub, Stub) {
    for _ in 0..20 {
        let first = TcpListener::bind((stable_ip, 0)).expect("bind the stable stub");
        let port = first.local_addr().expect("port").port();
        if let Ok(second) = TcpListener::bind((canary_ip, port)) {
            return (Stub::serve("stable", first), Stub::serve("canary", second));
        }
    }
    panic!("no port free on both {stable_ip} and {canary_ip}");
}

/// One keep-alive connection: requests until the peer closes or stays silent for 10 s.
fn serve_connection(state: &StubState, conn: TcpStream) {
    let _ = conn.set_read_timeout(Some(Duration::from_secs(10)));
    let _ = conn.set_nodelay(true);
    let mut reader = BufReader::new(&conn);
    loop {
        let Some(path) = read_request_head(&mut reader) else {
            return;
        };
        let started = Instant::now();
        let (status, ctype, body) = if path == "/metrics" {
            (200, "text/plain; version=0.0.4", metrics_text(state))
        } else {
            let status = answer_status(state);
            let latency = state.latency_us.load(Ordering::Relaxed);
            if latency > 0 {
                std::thread::sleep(Duration::from_micros(latency));
            }
            record(state, status, started.elapsed().as_secs_f64());
            (status, "text/plain", state.track.to_string())
        };
        let reason = if status == 200 {
            "OK"
        } else {
            "Internal Server Error"
        };
        let head = format!(
            "HTTP/1.1 {status} {reason}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        if (&conn)
            .write_all(format!("{head}{body}").as_bytes())
            .is_err()
        {
            return;
        }
    }
}

/// Reads a request's line and headers (the stubs take no bodies); its path, or `None` at
/// the end of the connection.
fn read_request_head(r: &mut impl BufRead) -> Option<String> {
    let mut line = String::new();
    if r.read_line(&mut line).ok()? == 0 {
        return None;
    }
    let path = line.split(' ').nth(1)?.to_string();
    loop {
        line.clear();
        if r.read_line(&mut line).ok()? == 0 {
            return None;
        }
        if line.trim_end().is_empty() {
            return Some(path);
        }
    }
}

/// 500 for the requests that keep the faulty share exact (the n-th request fails when
/// `floor(n * ratio)` grows), 200 otherwise.
fn answer_status(state: &StubState) -> u16 {
    let ppm = u64::from(state.fault_ppm.load(Ordering::SeqCst));
    if ppm == 0 {
        return 200;
    }
    let mut s = state.served.lock().expect("stub state");
    s.faulty += 1;
    if s.faulty * ppm / 1_000_000 > (s.faulty - 1) * ppm / 1_000_000 {
        500
    } else {
        200
    }
}

fn record(state: &StubState, status: u16, seconds: f64) {
    let mut s = state.served.lock().expect("stub state");
    *s.by_code.entry(status).or_default() += 1;
    for (i, le) in BUCKETS.iter().enumerate() {
        if seconds <= *le {
            s.buckets[i] += 1;
        }
    }
    s.count += 1;
    s.sum += seconds;
}

/// The exposition: the counter per code seen so far, and the histogram (present from the
/// start, as a registered unlabelled histogram is).
fn metrics_text(state: &StubState) -> String {
    let s = state.served.lock().expect("stub state");
    let mut out = String::from(
        "# HELP http_requests_total Requests served, by status code.\n# TYPE http_requests_total counter\n",
    );
    for (code, n) in &s.by_code {
        out.push_str(&format!("http_requests_total{{code=\"{code}\"}} {n}\n"));
    }
    out.push_str(
        "# HELP http_request_duration_seconds Time to answer a request.\n# TYPE http_request_duration_seconds histogram\n",
    );
    for (le, n) in BUCKETS.iter().zip(s.buckets) {
        out.push_str(&format!(
            "http_request_duration_seconds_bucket{{le=\"{le}\"}} {n}\n"
        ));
    }
    out.push_str(&format!(
        "http_request_duration_seconds_bucket{{le=\"+Inf\"}} {c}\nhttp_request_duration_seconds_sum {}\nhttp_request_duration_seconds_count {c}\n",
        s.sum,
        c = s.count
    ));
    out
}

// ----------------------------------------------------------------------------------------
// Child processes

/// A real program run by the test, with its output in a log file; stopped when dropped:
/// SIGTERM (Prometheus flushes, NGINX closes its sockets), SIGKILL after 10 s.
pub struct Proc {
    child: Child,
    pub name: &'static str,
    pub log: PathBuf,
}

impl Proc {
    pub fn spawn(name: &'static str, mut cmd: Command, log: PathBuf) -> Proc {
        let out = std::fs::File::create(&log).expect("log file");
        let child = cmd
            .stdin(Stdio::null())
            .stdout(out.try_clone().expect("log file"))
            .stderr(out)
            .spawn()
            .unwrap_or_else(|e| panic!("{name} starts: {e}"));
        Proc { child, name, log }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The exit status, if it has exited.
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    pub fn signal(&self, sig: libc::c_int) {
        // SAFETY: kill(2) of our own child, not yet reaped (it is reaped only in drop).
        unsafe { libc::kill(self.child.id() as libc::pid_t, sig) };
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if self.exited().is_some() {
            return;
        }
        self.signal(libc::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if self.exited().is_some() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A free TCP port on 127.0.0.1 (free when asked: a program that then fails to bind it is
/// started again by its caller).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

// ----------------------------------------------------------------------------------------
// Prometheus

/// A running Prometheus server with its lifecycle API on (`/-/reload`).
pub struct Prometheus {
    pub proc: Proc,
    pub addr: SocketAddr,
}

impl Prometheus {
    /// Starts `bin` on `config` with its data in `dir/data`, and waits until it is ready.
    pub fn start(bin: &Path, config: &Path, dir: &Path) -> Prometheus {
        for attempt in 0..3 {
            let addr = SocketAddr::from(([127, 0, 0, 1], free_port()));
            let mut cmd = Command::new(bin);
            cmd.arg(format!("--config.file={}", config.display()))
                .arg(format!(
                    "--storage.tsdb.path={}",
                    dir.join("data").display()
                ))
                .arg(format!("--web.listen-address={addr}"))
                .arg("--web.enable-lifecycle")
                .current_dir(dir);
            let log = dir.join(format!("prometheus-{attempt}.log"));
            let mut p = Prometheus {
                proc: Proc::spawn("prometheus", cmd, log),
                addr,
            };
            let log_file = p.proc.log.clone();
            let ready = poll(
                Duration::from_secs(60),
                Duration::from_millis(100),
                "Prometheus ready",
                || std::fs::read_to_string(&log_file).unwrap_or_default(),
                || {
                    if p.proc.exited().is_some() {
                        return Some(false);
                    }
                    let ok = http(addr, "GET", "/-/ready", "").is_some_and(|(s, _)| s == 200);
                    ok.then_some(true)
                },
            );
            if ready {
                return p;
            }
            eprintln!("Prometheus exited at start:\n{}", p.proc.log());
        }
        panic!("Prometheus did not start");
    }

    /// `GET` an API path; the `data` of a successful answer.
    pub fn api(&self, path: &str) -> serde_json::Value {
        let (status, body) = http(self.addr, "GET", path, "")
            .unwrap_or_else(|| panic!("GET {path} failed\n{}", self.proc.log()));
        let doc: serde_json::Value = serde_json::from_str(&body)
            .unwrap_or_else(|e| panic!("GET {path}: not JSON ({e}): {body}"));
        assert!(
            status == 200 && doc["status"] == "success",
            "GET {path}: {status} {body}"
        );
        doc["data"].clone()
    }

    /// An instant query at `time_ms` (Unix ms).
    pub fn query(&self, promql: &str, time_ms: i64) -> serde_json::Value {
        self.api(&format!(
            "/api/v1/query?query={}&time={}",
            urlencode(promql),
            seconds(time_ms)
        ))
    }

    /// The whole API answer of an instant query (what `plan simulate --trace` reads).
    pub fn query_raw(&self, promql: &str, time_ms: i64) -> String {
        let path = format!(
            "/api/v1/query?query={}&time={}",
            urlencode(promql),
            seconds(time_ms)
        );
        let (status, body) = http(self.addr, "GET", &path, "").expect("query");
        assert_eq!(status, 200, "{body}");
        body
    }

    /// Reloads the configuration and rule files, as the manifest's step does.
    pub fn reload(&self) {
        let (status, body) = http(self.addr, "POST", "/-/reload", "")
            .unwrap_or_else(|| panic!("POST /-/reload failed\n{}", self.proc.log()));
        assert_eq!(status, 200, "reload: {body}\n{}", self.proc.log());
    }
}

/// Unix ms as the seconds Prometheus' API takes (`1714564800.250`).
pub fn seconds(ms: i64) -> String {
    format!("{}.{:03}", ms.div_euclid(1000), ms.rem_euclid(1000))
}

/// Percent-encodes everything but RFC 3986's unreserved characters.
pub fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// One HTTP/1.0 request: the status and body, or `None` on any failure.
pub fn http(addr: SocketAddr, method: &str, path: &str, body: &str) -> Option<(u16, String)> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(20))).ok()?;
    write!(
        s,
        "{method} {path} HTTP/1.0\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    let status = text.split(' ').nth(1)?.parse().ok()?;
    let (_, body) = text.split_once("\r\n\r\n")?;
    Some((status, body.to_string()))
}

// ----------------------------------------------------------------------------------------
// NGINX

/// NGINX in the foreground, on a wrapper `nginx.conf` that includes one site
/// file; everything it writes stays in its folder.
pub struct Nginx {
    pub proc: Proc,
    pub dir: PathBuf,
    pub conf: PathBuf,
    bin: PathBuf,
}

impl Nginx {
    /// Checks (`nginx -t`) and starts `bin` on `site` (a file of the `http` context), and
    /// waits until `listen` accepts connections.
    pub fn start(bin: &Path, dir: &Path, site: &Path, listen: SocketAddr) -> Nginx {
        let conf = dir.join("nginx.conf");
        std::fs::write(&conf, wrapper(dir, site)).expect("write nginx.conf");
        let n = Nginx {
            proc: Proc::spawn("nginx", nginx_cmd(bin, dir, &conf), dir.join("nginx.out")),
            dir: dir.to_path_buf(),
            conf,
            bin: bin.to_path_buf(),
        };
        n.check();
        let mut n = n;
        let error_log = dir.join("error.log");
        poll(
            Duration::from_secs(20),
            Duration::from_millis(20),
            "NGINX listening",
            || std::fs::read_to_string(&error_log).unwrap_or_default(),
            || {
                if let Some(status) = n.proc.exited() {
                    panic!("nginx exited ({status}):\n{}", n.error_log());
                }
                TcpStream::connect_timeout(&listen, Duration::from_millis(200))
                    .is_ok()
                    .then_some(())
            },
        );
        n
    }

    /// `nginx -t` on the wrapper and its site file, as a release step runs it first.
    pub fn check(&self) {
        let out = nginx_cmd(&self.bin, &self.dir, &self.conf)
            .arg("-t")
            .stdin(Stdio::null())
            .output()
            .expect("nginx -t runs");
        assert!(
            out.status.success(),
            "nginx -t refused the site file:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Re-reads the configuration after [`Nginx::check`]: SIGHUP to the master, as `nginx -s
    /// reload` sends it (new workers on the new file, old ones finish their requests).
    pub fn reload(&self) {
        self.check();
        self.proc.signal(libc::SIGHUP);
    }

    pub fn error_log(&self) -> String {
        std::fs::read_to_string(self.dir.join("error.log")).unwrap_or_default()
    }
}

fn nginx_cmd(bin: &Path, dir: &Path, conf: &Path) -> Command {
    let mut cmd = Command::new(bin);
    cmd.arg("-p")
        .arg(dir)
        .arg("-e")
        .arg(dir.join("error.log"))
        .arg("-c")
        .arg(conf);
    cmd
}

/// The main configuration around one `http`-context site file: in the foreground, with a
/// master process (so that a reload replaces the workers gracefully, as in production;
/// `master_process off` reconfigures in place and then stopped answering), pid, logs and
/// temporary files in `dir`.
fn wrapper(dir: &Path, site: &Path) -> String {
    let d = dir.display();
    let mut conf = format!(
        "daemon off;\npid {d}/nginx.pid;\nerror_log {d}/error.log warn;\n\
         events {{ worker_connections 1024; }}\nhttp {{\n"
    );
    for t in ["client_body", "proxy", "fastcgi", "uwsgi", "scgi"] {
        conf.push_str(&format!("    {t}_temp_path {d}/{t}_temp;\n"));
    }
    conf.push_str(&format!("    include {};\n}}\n", site.display()));
    conf
}

// ----------------------------------------------------------------------------------------
// Load generator

/// One response the load generator received.
#[derive(Debug, Clone)]
pub struct Hit {
    pub user: u32,
    /// When the request was sent, Unix ms.
    pub at_ms: i64,
    pub status: u16,
    /// `X-Release-Track`, NGINX's split.
    pub track: Option<String>,
    /// The body: the stub that answered (`stable` or `canary`).
    pub body: String,
}

/// Users `0..users`, spread over `threads` threads, each thread sending its users'
/// requests in turn over one keep-alive connection, at `rate` requests per second in all.
pub struct LoadGen {
    stop: Arc<AtomicBool>,
    hits: Arc<Mutex<Vec<Hit>>>,
    threads: Vec<JoinHandle<()>>,
}

impl LoadGen {
    pub fn start(target: SocketAddr, cookie: &str, users: u32, threads: u32, rate: f64) -> LoadGen {
        let stop = Arc::new(AtomicBool::new(false));
        let hits = Arc::new(Mutex::new(Vec::new()));
        let period = Duration::from_secs_f64(f64::from(threads) / rate);
        let threads = (0..threads)
            .map(|t| {
                let mine: Vec<u32> = (0..users).filter(|u| u % threads == t).collect();
                let (stop, hits, cookie) = (stop.clone(), hits.clone(), cookie.to_string());
                std::thread::spawn(move || user_loop(target, &cookie, &mine, period, &stop, &hits))
            })
            .collect();
        LoadGen {
            stop,
            hits,
            threads,
        }
    }

    /// The responses so far.
    pub fn hits(&self) -> Vec<Hit> {
        self.hits.lock().expect("hits").clone()
    }

    /// Stops the users and returns every response.
    pub fn stop(&mut self) -> Vec<Hit> {
        self.halt();
        self.hits()
    }

    fn halt(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

impl Drop for LoadGen {
    fn drop(&mut self) {
        self.halt();
    }
}

/// One thread's users, in turn, one request every `period` (on a fixed schedule: a late
/// request is not made up for by a burst).
fn user_loop(
    target: SocketAddr,
    cookie: &str,
    users: &[u32],
    period: Duration,
    stop: &AtomicBool,
    hits: &Mutex<Vec<Hit>>,
) {
    let mut conn: Option<BufReader<TcpStream>> = None;
    let mut next = Instant::now();
    for &user in users.iter().cycle() {
        if stop.load(Ordering::Relaxed) {
            return;
        }
        let now = Instant::now();
        if next > now {
            std::thread::sleep(next - now);
        }
        next = next.max(now) + period;
        let at_ms = unix_ms();
        let c = match conn.take() {
            Some(c) => c,
            None => match connect(target) {
                Some(c) => c,
                None => continue,
            },
        };
        if let Some((hit, keep)) = request(c, target, cookie, user, at_ms) {
            hits.lock().expect("hits").push(hit.0);
            if keep {
                conn = Some(hit.1);
            }
        }
    }
}

fn connect(target: SocketAddr) -> Option<BufReader<TcpStream>> {
    let s = TcpStream::connect_timeout(&target, Duration::from_secs(2)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    s.set_nodelay(true).ok()?;
    Some(BufReader::new(s))
}

type Answered = ((Hit, BufReader<TcpStream>), bool);

/// One request on `c`; the response and the connection, and whether it stays open.
fn request(
    mut c: BufReader<TcpStream>,
    target: SocketAddr,
    cookie: &str,
    user: u32,
    at_ms: i64,
) -> Option<Answered> {
    let req = format!(
        "GET /api/orders HTTP/1.1\r\nHost: {target}\r\nCookie: {cookie}=user-{user}\r\n\r\n"
    );
    c.get_mut().write_all(req.as_bytes()).ok()?;
    let mut line = String::new();
    c.read_line(&mut line).ok()?;
    let status: u16 = line.split(' ').nth(1)?.parse().ok()?;
    let (mut len, mut track, mut keep) = (0usize, None, true);
    loop {
        line.clear();
        c.read_line(&mut line).ok()?;
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        let (k, v) = l.split_once(':')?;
        let v = v.trim();
        match k.to_ascii_lowercase().as_str() {
            "content-length" => len = v.parse().ok()?,
            "x-release-track" => track = Some(v.to_string()),
            "connection" => keep = !v.eq_ignore_ascii_case("close"),
            "transfer-encoding" => {
                panic!("NGINX sent a {v} body; the load generator reads Content-Length only")
            }
            _ => {}
        }
    }
    let mut body = vec![0; len];
    c.read_exact(&mut body).ok()?;
    let hit = Hit {
        user,
        at_ms,
        status,
        track,
        body: String::from_utf8_lossy(&body).into_owned(),
    };
    Some(((hit, c), keep))
}
