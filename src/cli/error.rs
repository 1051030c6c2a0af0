//! Why a command did not succeed, and the one place that picks the exit code: 0 success;
//! 1 invalid input or a failed check; 2 a usage error or a file that cannot be read or
//! written.

use super::terminal::{color, plural};
use crate::diagnostic::{Located, Severity, render_trace_finding};
use crate::render::write::{Drift, WriteError};
use crate::sim::replay::ReplayError;

pub(super) const EXIT_OK: i32 = 0;
pub(super) const EXIT_INVALID: i32 = 1;
pub(super) const EXIT_USAGE: i32 = 2;

/// Why a command did not succeed: what its message needs, and its exit code.
#[derive(Debug)]
pub(super) enum Error {
    /// Findings about the input were printed as they were found; `unreadable` when a file
    /// could not be read at all.
    Findings { unreadable: bool },
    /// Two plans of one `render` share a name: their files would overwrite each other.
    SameName(String),
    /// `render --check`: what differs from the disk.
    Drift(Vec<Drift>),
    /// `render` could not write (nothing was changed, unless it says otherwise).
    Write(WriteError),
    /// A replay's trace could not be read, or is not a trace for this plan.
    Replay(ReplayError),
    /// A flag that does not fit the plan (`tune --vary`): what is wrong and what to write.
    Usage(String),
    /// A tune that has no answer: why.
    Tune(String),
    /// Shards that do not make one run, or a shard that cannot be read as one.
    Shard(String),
    /// `plan release` refused or failed: why, and what to do.
    Release(String),
    /// The HTML report (`--report`) could not be written: its path, and why.
    Report { path: String, message: String },
}

impl Error {
    pub(super) fn exit_code(&self) -> i32 {
        match self {
            Error::Findings { unreadable: true } => EXIT_USAGE,
            Error::Findings { unreadable: false } | Error::SameName(_) | Error::Drift(_) => {
                EXIT_INVALID
            }
            Error::Write(_) | Error::Usage(_) | Error::Report { .. } => EXIT_USAGE,
            Error::Tune(_) | Error::Shard(_) | Error::Release(_) => EXIT_INVALID,
            Error::Replay(ReplayError::Io { .. } | ReplayError::Bounds { .. }) => EXIT_USAGE,
            Error::Replay(
                ReplayError::Trace { .. } | ReplayError::Query { .. } | ReplayError::Guard { .. },
            ) => EXIT_INVALID,
        }
    }

    /// The message for people (empty for findings, printed already).
    pub(super) fn text(&self) -> String {
        match self {
            Error::Findings { .. } => String::new(),
            Error::SameName(name) => format!(
                "error: two plans are named `{name}`; their files would overwrite each other\n"
            ),
            Error::Drift(drift) => drift_text(drift),
            Error::Write(e) => format!("error: {e}\n"),
            Error::Replay(e) => replay_error_text(e, color()),
            Error::Usage(e) | Error::Tune(e) | Error::Shard(e) | Error::Release(e) => {
                format!("error: {e}\n")
            }
            Error::Report { path, message } => format!(
                "error: cannot write the report {path}: {message}; the results above stand, and no report was written there\n"
            ),
        }
    }
}

/// What `--check` found, and what to do about it.
fn drift_text(drift: &[Drift]) -> String {
    let mut s: String = drift.iter().map(|d| format!("{d}\n")).collect();
    let foreign = drift
        .iter()
        .filter(|d| matches!(d, Drift::Foreign(_)))
        .count();
    let outdated = drift.len() - foreign;
    if outdated > 0 {
        s.push_str(&format!(
            "{outdated} file{} out of date; run `plan render` to update\n",
            plural(outdated)
        ));
    }
    if foreign > 0 {
        s.push_str(&format!(
            "{foreign} entr{} plan did not write, which `plan render` would stop on; move {} out of the plan's folder\n",
            if foreign == 1 { "y" } else { "ies" },
            if foreign == 1 { "it" } else { "them" }
        ));
    }
    s
}

/// A replay's error, shown as the findings of a plan are.
fn replay_error_text(e: &ReplayError, color: bool) -> String {
    let finding = |file: &str, line, column, code, message: &str, hint: &Option<String>| Located {
        file: file.to_string(),
        line,
        column,
        pointer: String::new(),
        severity: Severity::Error,
        code,
        message: message.to_string(),
        hint: hint.clone(),
        width: None,
    };
    match e {
        ReplayError::Io { file, reason } => {
            render_trace_finding(None, &finding(file, 1, 1, "io", reason, &None), color)
        }
        ReplayError::Bounds {
            file,
            message,
            hint,
        } => file_error("replay-range", file, message, hint, color),
        ReplayError::Query {
            file,
            message,
            hint,
        } => file_error("query-failed", file, message, hint, color),
        ReplayError::Guard {
            file,
            message,
            hint,
        } => file_error("guard-unreadable", file, message, hint, color),
        ReplayError::Trace {
            file,
            line,
            column,
            message,
            hint,
            text,
        } => render_trace_finding(
            text.as_deref(),
            &finding(file, *line, *column, "trace", message, hint),
            color,
        ),
    }
}

/// An error about a whole file (no line to show): `error[code]: file: message` and its hint.
fn file_error(code: &str, file: &str, message: &str, hint: &str, color: bool) -> String {
    let (on, off) = if color {
        ("\x1b[1;31m", "\x1b[0m")
    } else {
        ("", "")
    };
    format!("{on}error[{code}]{off}: {file}: {message}\n  = hint: {hint}\n")
}
