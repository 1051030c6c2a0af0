//! A small builder for running the `plan` binary, plus helpers for temporary folders and for
//! the external tools the conformance tests need.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

/// The repository root (where `plans/` lives).
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A `plan` invocation being built.
pub struct Run {
    cmd: Command,
}

/// Starts building a `plan` invocation, run from the repository root.
pub fn plan() -> Run {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_plan"));
    cmd.current_dir(root())
        .env("NO_COLOR", "1")
        .stdin(Stdio::null());
    Run { cmd }
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

    /// Standard input from this file (default: none).
    pub fn stdin_file(mut self, path: impl AsRef<Path>) -> Run {
        self.cmd
            .stdin(std::fs::File::open(path).expect("stdin file for plan"));
        self
    }

    /// Runs with its address space capped at `memory` bytes (RLIMIT_AS) and killed after
    /// `timeout`, so a regression that runs away fails the test instead of taking the
    /// machine. Fails on a timeout, a panic, or any death by signal (an out-of-memory
    /// abort included).
    pub fn run_bounded(mut self, memory: u64, timeout: std::time::Duration) -> Done {
        use std::io::Read;
        use std::os::unix::process::CommandExt;
        // SAFETY: only setrlimit, which is async-signal-safe, runs between fork and exec.
        unsafe {
            self.cmd.pre_exec(move || {
                let lim = libc::rlimit {
                    rlim_cur: memory,
                    rlim_max: memory,
                };
                if libc::setrlimit(libc::RLIMIT_AS, &lim) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let mut child = self
            .cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the plan binary runs");
        let drain = |mut r: Box<dyn Read + Send>| {
            std::thread::spawn(move || {
                let mut buf = Vec::new();
                let _ = r.read_to_end(&mut buf);
                String::from_utf8_lossy(&buf).into_owned()
            })
        };
        let out = drain(Box::new(child.stdout.take().expect("stdout")));
        let err = drain(Box::new(child.stderr.take().expect("stderr")));
        let started = std::time::Instant::now();
        let status = loop {
            if let Some(status) = child.try_wait().expect("wait for plan") {
                break status;
            }
            if started.elapsed() > timeout {
                let _ = child.kill();
                let _ = child.wait();
                panic!("plan ran longer than {timeout:?}: {:?}", self.cmd);
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        };
        let done = Done {
            code: status.code().unwrap_or(-1),
            stdout: out.join().expect("stdout reader"),
            stderr: err.join().expect("stderr reader"),
        };
        assert!(
            status.code().is_some(),
            "plan died ({status}) under a {memory}-byte memory cap: {:?}\n{}",
            self.cmd,
            done.stderr
        );
        assert_ne!(done.code, 101, "plan panicked:\n{}", done.stderr);
        done
    }

    pub fn run(mut self) -> Done {
        let out: Output = self.cmd.output().expect("the plan binary runs");
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
