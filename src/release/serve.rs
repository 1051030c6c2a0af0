//! `plan release serve`: the automatic rollback. A small HTTP service on the plan's
//! `deployment.automatic_rollback.listen` (loopback by default) that receives
//! Alertmanager's webhooks and rolls the release back with the manifest's rollback step
//! when a rollback alert of this release's current phase fires; and that exposes the
//! release's feedback counts to Prometheus.
//!
//! - `POST /alerts` (Alertmanager, `Authorization: Bearer <token>`): the alerts that count
//!   ([`webhook`]) roll the release back through [`act_locked`], once; a repeated webhook
//!   finds it rolled back and changes nothing. Alerts that do not count are logged as
//!   `ignored` with the reason.
//! - `GET /metrics`: `feedback_submissions_total` ([`feedback`]); no token (counts only).
//! - `GET /healthz`: `ok`.
//!
//! Answers: 200 handled (rolled back, already rolled back, or every alert ignored), 400 a
//! malformed request or payload, 401 a missing or wrong token, 404/405 another path or
//! method, 408 a request not received within [`REQUEST_TIME`], 411 a body without
//! `Content-Length`, 413 a body over [`MAX_BODY`], 429 over the rate limit, 431 an
//! oversized head, 500 the rollback ran and failed (Alertmanager retries 5xx answers, and
//! the step is recorded as begun, so the retry finishes it), 503 the release's lock not
//! taken in time or too many connections (retried too). Alertmanager treats other 4xx as
//! final; a firing alert is sent again at its route's `repeat_interval` anyway.
//!
//! What it never does: run anything a request names (the only action is the manifest's
//! rollback step), read a body before the token is checked, keep a connection open (one
//! request each), or let a flood fill the disk (refusals are logged through a [`Throttle`]).
//! One webhook is handled at a time, under the release's lock, from reading the state to
//! recording the rollback. SIGINT and SIGTERM stop it after the request in hand; a rollback
//! under way finishes first (in a terminal, Ctrl-C also reaches the command running then:
//! the step is recorded as begun, and the next verb finishes it).

use super::audit;
use super::feedback;
use super::http::{self, Refused, Request};
use super::lock;
use super::manifest::Rendered;
use super::rate::Bucket;
use super::state::{At, Dir, State};
use super::throttle::{Say, Throttle};
use super::time::now_ms;
use super::token::{self, Token};
use super::webhook::{self, Expect, clean};
use super::{Ask, LOCK_WAIT, Outcome, Verb, act_locked, state_dir};
use std::io::{BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// The largest body read (a webhook of many alerts is a few tens of kilobytes).
pub(crate) const MAX_BODY: usize = 1 << 20;

/// How long a client has to send its whole request.
pub(crate) const REQUEST_TIME: Duration = Duration::from_secs(10);

/// How long one read or write on a connection may wait.
const IO_TIME: Duration = Duration::from_secs(5);

/// Requests a second on average, and the burst allowed.
const RATE: f64 = 10.0;
const BURST: f64 = 20.0;

/// Connections handled at once; more get 503 at once.
const MAX_CONNECTIONS: usize = 32;

/// After an answer to a request whose body was not read, how long and how much of it is
/// read and dropped, so the client sees the answer rather than a reset connection.
const LINGER_TIME: Duration = Duration::from_secs(2);
const LINGER_BYTES: u64 = 64 << 20;

/// Ignored alerts named one by one in a log entry.
const IGNORED_SHOWN: usize = 20;

/// Set by SIGINT or SIGTERM.
static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    STOP.store(true, Ordering::SeqCst);
}

/// What `plan release serve` is given.
#[derive(Debug, Clone)]
pub(crate) struct Options {
    pub(crate) dir: PathBuf,
    /// Instead of the plan's `listen` (tests; port 0 picks a free port).
    pub(crate) listen: Option<SocketAddr>,
}

struct Service {
    rendered: Rendered,
    sdir: Dir,
    token: Token,
    bucket: Mutex<Bucket>,
    throttle: Mutex<Throttle>,
    /// One webhook at a time.
    acting: Mutex<()>,
    active: AtomicUsize,
}

/// Runs the service until SIGINT or SIGTERM. Errors are why it could not start.
pub(crate) fn serve(opts: &Options) -> Result<(), String> {
    let rendered = Rendered::read(&opts.dir)?;
    let Some(auto) = rendered.manifest.deployment.automatic_rollback.clone() else {
        return Err(format!(
            "plan {} asks for no automatic rollback: add `deployment.automatic_rollback` (with its `token_file`) to the plan and render it again",
            rendered.manifest.plan
        ));
    };
    let token = token::read(Path::new(&auto.token_file))?;
    let listen = match opts.listen {
        Some(a) => a,
        None => auto.listen.parse::<SocketAddr>().map_err(|e| {
            format!(
                "the manifest's listen address `{}` is not an address ({e}); render the plan again",
                auto.listen
            )
        })?,
    };
    let sdir = state_dir(&rendered);
    sdir.create()?;
    let listener =
        TcpListener::bind(listen).map_err(|e| format!("cannot listen on {listen}: {e}"))?;
    let bound = listener.local_addr().map_err(|e| e.to_string())?;
    listener
        .set_nonblocking(true)
        .map_err(|e| format!("{bound}: {e}"))?;
    // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
    unsafe {
        let handler = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
        libc::signal(libc::SIGINT, handler);
        libc::signal(libc::SIGTERM, handler);
    }
    let now = Instant::now();
    let service = Arc::new(Service {
        rendered,
        sdir,
        token,
        bucket: Mutex::new(Bucket::new(RATE, BURST, now)),
        throttle: Mutex::new(Throttle::default()),
        acting: Mutex::new(()),
        active: AtomicUsize::new(0),
    });
    let plan = service.rendered.manifest.plan.clone();
    service.audit(
        "serve",
        "plan release serve",
        "started",
        &format!("listening on {bound} for the rollback alerts of plan {plan}"),
    );
    say(&format!(
        "listening on http://{bound} (POST /alerts for Alertmanager, GET /metrics for Prometheus) for plan {plan}; the rendered Alertmanager config posts to {}",
        auto.url
    ));
    let mut last_tick = Instant::now();
    while !STOP.load(Ordering::SeqCst) {
        match listener.accept() {
            Ok((stream, peer)) => accept(&service, stream, peer),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => {
                // Out of file descriptors and the like: wait, and go on listening.
                say(&format!("accept: {e}"));
                std::thread::sleep(Duration::from_millis(200));
            }
        }
        if last_tick.elapsed() >= Duration::from_secs(1) {
            last_tick = Instant::now();
            service.flush_counted(false);
        }
    }
    say("stopping: finishing the requests in hand");
    while service.active.load(Ordering::SeqCst) > 0 {
        std::thread::sleep(Duration::from_millis(20));
    }
    service.flush_counted(true);
    service.audit("serve", "plan release serve", "stopped", "on a signal");
    say("stopped");
    Ok(())
}

/// One line for the operator.
fn say(line: &str) {
    let _ = writeln!(std::io::stdout().lock(), "{line}");
}

/// Hands a connection to a thread of its own, or answers 503 when too many are open.
fn accept(service: &Arc<Service>, stream: TcpStream, peer: SocketAddr) {
    let ok = stream.set_nonblocking(false).is_ok()
        && stream.set_read_timeout(Some(IO_TIME)).is_ok()
        && stream.set_write_timeout(Some(IO_TIME)).is_ok();
    if !ok {
        return;
    }
    if service.active.fetch_add(1, Ordering::SeqCst) >= MAX_CONNECTIONS {
        service.active.fetch_sub(1, Ordering::SeqCst);
        let mut stream = stream;
        service.refuse(
            &mut stream,
            peer,
            None,
            &refusal(503, "too many connections at once"),
        );
        return;
    }
    let s = Arc::clone(service);
    let spawned = std::thread::Builder::new()
        .name("plan-release-serve".into())
        .spawn(move || {
            let mut stream = stream;
            s.handle(&mut stream, peer);
            s.active.fetch_sub(1, Ordering::SeqCst);
        });
    if spawned.is_err() {
        service.active.fetch_sub(1, Ordering::SeqCst);
    }
}

fn refusal(status: u16, why: impl Into<String>) -> Refused {
    Refused {
        status,
        why: why.into(),
    }
}

/// What a request is, for the log: `POST /alerts`.
fn what(req: &Request) -> String {
    format!("{} {}", clean(&req.method), clean(&req.path))
}

impl Service {
    fn audit(&self, verb: &str, by: &str, outcome: &str, detail: &str) {
        let entry = audit::Entry {
            at_ms: now_ms(),
            verb,
            by,
            outcome,
            detail,
        };
        if let Err(e) = audit::append(&self.sdir.audit_file(), &entry) {
            say(&format!("warning: {e}"));
        }
    }

    /// Logs what the throttle counted and did not log, once its window is over (or now).
    fn flush_counted(&self, now: bool) {
        let summary = self
            .throttle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .summary(now_ms(), now);
        if let Some(s) = summary {
            say(&s);
            self.audit("webhook", "plan release serve", "refusals_counted", &s);
        }
    }

    /// Answers `r` and logs it (through the throttle), then drops what the client still
    /// sends for a moment, so it reads the answer.
    fn refuse(&self, stream: &mut TcpStream, peer: SocketAddr, req: Option<&Request>, r: &Refused) {
        let mut extra: Vec<(&str, &str)> = Vec::new();
        match r.status {
            401 => extra.push(("WWW-Authenticate", "Bearer")),
            405 => extra.push(("Allow", "POST")),
            429 => extra.push(("Retry-After", "1")),
            503 => extra.push(("Retry-After", "5")),
            _ => {}
        }
        let _ = http::respond(
            stream,
            r.status,
            "text/plain; charset=utf-8",
            &extra,
            &format!("{}\n", r.why),
        );
        self.flush_counted(false);
        let now = now_ms();
        let say_it = self
            .throttle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .refusal(&r.status.to_string(), now);
        if say_it == Say::Log {
            let detail = format!(
                "{} {}{}",
                r.status,
                r.why,
                req.map_or_else(String::new, |q| format!(" ({})", what(q)))
            );
            say(&format!("refused {peer}: {detail}"));
            self.audit("webhook", &format!("http {peer}"), "refused", &detail);
        }
        linger(stream);
    }

    fn handle(&self, stream: &mut TcpStream, peer: SocketAddr) {
        let deadline = Instant::now() + REQUEST_TIME;
        let allowed = self
            .bucket
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take(Instant::now());
        if !allowed {
            let r = refusal(
                429,
                format!("more than {RATE} requests a second (bursts of {BURST}): slow down"),
            );
            self.refuse(stream, peer, None, &r);
            return;
        }
        let Ok(read_half) = stream.try_clone() else {
            return;
        };
        let mut reader = BufReader::new(read_half);
        let mut req = match http::read_head(&mut reader, deadline) {
            Ok(r) => r,
            Err(r) => return self.refuse(stream, peer, None, &r),
        };
        let answer = match (req.method.as_str(), req.path.as_str()) {
            ("GET", "/healthz") => Ok((200, "text/plain; charset=utf-8", "ok\n".to_string())),
            ("GET", "/metrics") => feedback::load(&self.sdir)
                .map(|f| {
                    (
                        200,
                        "text/plain; version=0.0.4; charset=utf-8",
                        feedback::metrics(&self.rendered.manifest.service.name, &f),
                    )
                })
                .map_err(|e| refusal(500, e)),
            ("POST", "/alerts") => {
                if !self.token.accepts(req.header("authorization")) {
                    Err(refusal(
                        401,
                        "a missing or wrong bearer token: nothing was applied",
                    ))
                } else {
                    match http::read_body(&mut req, &mut reader, stream, MAX_BODY, deadline) {
                        Err(r) => Err(r),
                        Ok(()) => self.webhook(&req.body),
                    }
                }
            }
            (_, "/alerts") => Err(refusal(405, "POST alerts here")),
            _ => Err(refusal(404, "no such path (POST /alerts, GET /metrics)")),
        };
        match answer {
            Ok((status, content_type, body)) => {
                let _ = http::respond(stream, status, content_type, &[], &body);
                let _ = stream.shutdown(Shutdown::Write);
            }
            Err(r) => self.refuse(stream, peer, Some(&req), &r),
        }
    }

    /// An authenticated webhook: which alerts count, and the rollback if any does.
    fn webhook(&self, body: &[u8]) -> Result<(u16, &'static str, String), Refused> {
        const TEXT: &str = "text/plain; charset=utf-8";
        let payload = webhook::parse(body).map_err(|e| refusal(400, e))?;
        let _one = self.acting.lock().unwrap_or_else(PoisonError::into_inner);
        let _lock = lock::take(&self.sdir.lock_file(), LOCK_WAIT).map_err(|e| {
            refusal(
                503,
                format!("{e}; nothing was applied (Alertmanager will send it again)"),
            )
        })?;
        let state = super::load_state(&self.rendered, &self.sdir, now_ms()).map_err(|e| {
            refusal(
                500,
                format!("{e}\nnothing was applied: roll back by hand (`plan release rollback`)"),
            )
        })?;
        let expect = expect(&self.rendered, state.as_ref());
        let d = webhook::decide(&payload, &expect);
        if !d.ignored.is_empty() {
            let mut lines: Vec<String> = d
                .ignored
                .iter()
                .take(IGNORED_SHOWN)
                .map(|(a, why)| format!("{}: {why}", a.describe()))
                .collect();
            if d.ignored.len() > IGNORED_SHOWN {
                lines.push(format!("and {} more", d.ignored.len() - IGNORED_SHOWN));
            }
            let detail = lines.join("; ");
            say(&format!("ignored: {detail}"));
            self.audit("webhook", "alertmanager", "ignored", &detail);
        }
        if d.counted.is_empty() {
            return Ok((
                200,
                TEXT,
                format!(
                    "ignored {} alert(s): none is a firing rollback alert of this release's phase\n",
                    d.ignored.len()
                ),
            ));
        }
        let mut names: Vec<&str> = d.counted.iter().map(|a| a.alertname.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        let ask = Ask {
            by: "alertmanager".into(),
            reason: Some(format!(
                "rollback alert{} firing: {}",
                if names.len() == 1 { "" } else { "s" },
                names.join(", ")
            )),
            force: false,
            dry_run: false,
            detail: d.counted.iter().map(webhook::Seen::describe).collect(),
        };
        let mut out = Vec::new();
        let result = act_locked(&self.rendered, Verb::Rollback, &ask, now_ms(), &mut out);
        let told = String::from_utf8_lossy(&out);
        for line in told.lines() {
            say(line);
        }
        match result {
            Ok(Outcome::Unchanged) => Ok((
                200,
                TEXT,
                "the release is already rolled back: nothing changed\n".into(),
            )),
            Ok(_) => Ok((200, TEXT, format!("rolled back ({})\n", names.join(", ")))),
            Err(r) => {
                say(&format!("the rollback failed: {}", r.why));
                Err(refusal(500, format!("the rollback failed: {}", r.why)))
            }
        }
    }
}

/// Which phases' alerts count, given the release's state.
fn expect(rendered: &Rendered, state: Option<&State>) -> Expect {
    let m = &rendered.manifest;
    let mut e = Expect {
        plan: m.plan.clone(),
        release: m.release.to.clone(),
        phases: Vec::new(),
        no_phase: String::new(),
    };
    let phase = |at: &At| match at {
        At::Phase { name, .. } => Some(name.clone()),
        _ => None,
    };
    let Some(s) = state else {
        e.no_phase = "the release has not started: there is nothing to roll back".into();
        return e;
    };
    match &s.at {
        At::Phase { name, .. } => e.phases.push(name.clone()),
        At::NotStarted => {
            e.no_phase = "the release has not started: there is nothing to roll back".into();
        }
        At::RolledBack => {
            // The phase the rollback left: a repeated webhook finds the rollback done.
            e.phases.extend(
                s.history
                    .iter()
                    .rev()
                    .find(|ev| ev.to == At::RolledBack)
                    .and_then(|ev| ev.from.as_ref().and_then(phase)),
            );
            e.no_phase = "the release is rolled back".into();
        }
        At::Completed => {
            e.no_phase = format!(
                "the release is completed: {} is the stable version",
                m.release.to
            );
        }
    }
    // A step being applied leads to a phase whose rules may be loaded already.
    if let Some(a) = &s.applying
        && let Some(p) = phase(&a.to)
        && !e.phases.contains(&p)
    {
        e.phases.push(p);
    }
    e
}

/// After an answer: stop sending, then read and drop what the client still sends, for a
/// moment, so closing does not reset the connection before the client reads the answer.
fn linger(stream: &mut TcpStream) {
    let _ = stream.shutdown(Shutdown::Write);
    let _ = stream.set_read_timeout(Some(Duration::from_millis(200)));
    let start = Instant::now();
    let mut seen = 0u64;
    let mut buf = [0u8; 16 << 10];
    while start.elapsed() < LINGER_TIME && seen < LINGER_BYTES {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => seen += n as u64,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => break,
        }
    }
}
