//! A small builder for running the `plan` binary, plus helpers for temporary folders and for
//! the external tools the conformance tests need.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// The repository root (where `plans/` lives).
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A `plan` invocation being built.
pub struct Run {
    cmd: Command,
    timeout: Option<Duration>,
}

/// Starts building a `plan` invocation, run from the repository root.
pub fn plan() -> Run {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_plan"));
    cmd.current_dir(root())
        .env("NO_COLOR", "1")
        .stdin(Stdio::null());
    Run { cmd, timeout: None }
}

/// What a finished invocation produced.
#[derive(Debug)]
pub struct Done {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn arg(mut self, a: impl AsRef<std::ffi::OsStr>) -> Run {
        self.cmd.arg(a);
        self
    }

    pub fn args<I, S>(mut self, a: I) -> Run
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        self.cmd.args(a);
        self
    }

    pub fn cwd(mut self, dir: impl AsRef<Path>) -> Run {
        self.cmd.current_dir(dir);
        self
    }

    pub fn env(mut self, k: &str, v: &str) -> Run {
        self.cmd.env(k, v);
        self
    }

    /// Limits the files plan writes to `bytes` (RLIMIT_FSIZE), with SIGXFSZ ignored: a
    /// write past it fails with EFBIG, as on a full disk, instead of killing plan.
    pub fn file_size_limit(mut self, bytes: u64) -> Run {
        use std::os::unix::process::CommandExt;
        // SAFETY: only async-signal-safe calls between fork and exec.
        unsafe {
            self.cmd.pre_exec(move || {
                let lim = libc::rlimit {
                    rlim_cur: bytes,
                    rlim_max: bytes,
                };
                if libc::setrlimit(libc::RLIMIT_FSIZE, &lim) != 0
                    || libc::signal(libc::SIGXFSZ, libc::SIG_IGN) == libc::SIG_ERR
                {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            })
        };
        self
    }

    /// Kills plan (and fails the test) if it runs longer than `limit`: for inputs that
    /// could make it hang.
    pub fn timeout(mut self, limit: Duration) -> Run {
        self.timeout = Some(limit);
        self
    }

    /// Standard input from this file (default: none).
    pub fn stdin_file(mut self, path: impl AsRef<Path>) -> Run {
        self.cmd
            .stdin(std::fs::File::open(path).expect("stdin file for plan"));
        self
    }

    /// Caps plan's address space at `bytes` (RLIMIT_AS): an allocation past it fails.
    pub fn memory_limit(mut self, bytes: u64) -> Run {
        use std::os::unix::process::CommandExt;
        // SAFETY: only setrlimit, which is async-signal-safe, runs between fork and exec.
        unsafe {
            self.cmd.pre_exec(move || {
                let lim = libc::rlimit {
                    rlim_cur: bytes,
                    rlim_max: bytes,
                };
                if libc::setrlimit(libc::RLIMIT_AS, &lim) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        self
    }

    /// Runs with its address space capped at `memory` bytes and killed after `timeout`, so
    /// a regression that runs away fails the test instead of taking the machine. Fails on a
    /// timeout, a panic, or any death by signal (an out-of-memory abort included).
    pub fn run_bounded(self, memory: u64, timeout: Duration) -> Done {
        let what = format!("{:?}", self.cmd);
        let done = self.memory_limit(memory).timeout(timeout).run();
        assert_ne!(
            done.code, -1,
            "plan died by a signal under a {memory}-byte memory cap: {what}\n{}",
            done.stderr
        );
        done
    }

    pub fn run(mut self) -> Done {
        let out: Output = match self.timeout {
            None => self.cmd.output().expect("the plan binary runs"),
            Some(limit) => {
                let child = self
                    .cmd
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .spawn()
                    .expect("the plan binary runs");
                let pid = child.id() as libc::pid_t;
                let (done, wait) = std::sync::mpsc::channel::<()>();
                let watchdog = std::thread::spawn(move || {
                    let timed_out = wait.recv_timeout(limit).is_err();
                    if timed_out {
                        // SAFETY: plain kill(2) of the child we started, not yet reaped.
                        unsafe { libc::kill(pid, libc::SIGKILL) };
                    }
                    timed_out
                });
                let out = child.wait_with_output().expect("plan runs");
                let _ = done.send(());
                let timed_out = watchdog.join().expect("watchdog");
                assert!(!timed_out, "plan ran longer than {limit:?} and was killed");
                out
            }
        };
        let done = Done {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        };
        assert_ne!(done.code, 101, "plan panicked:\n{}", done.stderr);
        done
    }

    /// Runs and asserts the exit code.
    pub fn expect(self, code: i32) -> Done {
        let done = self.run();
        assert_eq!(
            done.code, code,
            "unexpected exit code\nstdout:\n{}\nstderr:\n{}",
            done.stdout, done.stderr
        );
        done
    }
}

/// A fresh, empty folder for one test.
/// Writes `text` to `dir/name` and returns its path.
pub fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write test input");
    path
}

pub fn temp_dir(name: &str) -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!(
        "{name}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create temp dir");
    dir
}

/// The path of an external tool, or `None` (with a note) when it is not installed. With
/// `PLAN_CONFORMANCE=require` a missing tool fails the test instead.
pub fn tool(name: &str) -> Option<PathBuf> {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join(name))
            .find(|p| p.is_file())
    });
    if found.is_none() {
        if std::env::var("PLAN_CONFORMANCE").as_deref() == Ok("require") {
            panic!(
                "`{name}` is required (PLAN_CONFORMANCE=require) but not installed; see README.md"
            );
        }
        eprintln!(
            "SKIPPED: `{name}` is not installed; install it to run this conformance test (see README.md)"
        );
    }
    found
}

/// Renders `plan_file` into a fresh folder and returns the plan's output folder.
pub fn render(plan_file: &str) -> PathBuf {
    let out = temp_dir("render");
    plan()
        .args(["render", plan_file, "--out"])
        .arg(&out)
        .expect(0);
    let name = plan_name(plan_file);
    out.join(name)
}

/// The `name:` of a plan file in the repository.
pub fn plan_name(plan_file: &str) -> String {
    let text = std::fs::read_to_string(root().join(plan_file)).expect("plan file");
    text.lines()
        .find_map(|l| l.strip_prefix("name:"))
        .map(|n| n.trim().trim_matches('"').to_string())
        .expect("plan has a name")
}

/// Every plan file in `plans/`.
pub fn all_plans() -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(root().join("plans"))
        .expect("plans/")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".yaml") && !n.starts_with("docker-compose"))
        .map(|n| format!("plans/{n}"))
        .collect();
    v.sort();
    v
}

/// Lawsker's plan with the first `from` replaced by `to`, in `dir`.
pub fn lawsker_edited(dir: &Path, from: &str, to: &str) -> PathBuf {
    let text = std::fs::read_to_string(root().join("plans/lawsker.yaml")).unwrap();
    assert!(text.contains(from), "{from} is in the plan");
    write(dir, "lawsker.yaml", &text.replacen(from, to, 1))
}

/// `plan simulate ARGS --format json`, which must succeed, parsed.
pub fn simulate_json(args: &[&str]) -> serde_json::Value {
    let done = plan()
        .arg("simulate")
        .args(args)
        .args(["--format", "json"])
        .expect(0);
    serde_json::from_str(&done.stdout).expect("the report is JSON")
}

/// Scenario `name` of a Monte Carlo report.
pub fn scenario<'v>(report: &'v serde_json::Value, name: &str) -> &'v serde_json::Value {
    report["scenarios"]
        .as_array()
        .expect("scenarios")
        .iter()
        .find(|s| s["name"] == name)
        .unwrap_or_else(|| panic!("scenario {name}"))
}

/// A trace of the canary of service `app` without noise, as CSV: scrapes every 15s for an
/// hour, at `start_ms + j · 15s - offset_ms` (the first at or before the release's start
/// at `start_ms`), counting 100 requests a second from the start, every one failing from
/// `onset_ms` (after the start) on, per code (`200`, `500`), with `up` 1.
pub fn failing_canary_csv(start_ms: i64, offset_ms: i64, onset_ms: i64) -> String {
    use std::fmt::Write as _;
    let mut csv = String::from("timestamp,series,labels,value\n");
    let labels = "service=app;track=canary";
    for j in 0..=240i64 {
        let t = j * 15_000 - offset_ms;
        let served = t.max(0) as f64 / 10.0;
        let failed = (t - onset_ms).max(0) as f64 / 10.0;
        let at = (start_ms + t) as f64 / 1000.0;
        let answered = served - failed;
        writeln!(csv, "{at},http_requests_total,{labels};code=200,{answered}").unwrap();
        writeln!(csv, "{at},http_requests_total,{labels};code=500,{failed}").unwrap();
        writeln!(csv, "{at},up,{labels},1").unwrap();
    }
    csv
}

/// [`failing_canary_csv`] with the failure series created at the first failure, as client
/// libraries do: no `code=500` sample before the first scrape after `onset_ms`.
pub fn failing_canary_csv_born(start_ms: i64, offset_ms: i64, onset_ms: i64) -> String {
    failing_canary_csv(start_ms, offset_ms, onset_ms)
        .lines()
        .filter(|l| !l.ends_with(";code=500,0"))
        .map(|l| format!("{l}\n"))
        .collect()
}

/// The probability that, among `windows` independent windows each over a threshold with
/// probability `q`, two in a row are (a rule whose `for` spans two evaluations fires).
pub fn two_in_a_row(q: f64, windows: u32) -> f64 {
    // (the last window was under, the last was over), never two over in a row yet.
    let (mut under, mut over) = (1.0, 0.0);
    for _ in 0..windows {
        (under, over) = ((under + over) * (1.0 - q), under * q);
    }
    1.0 - (under + over)
}
