//! Reading a plan file (or a scenario file) into memory, with the limits that keep a
//! pre-commit hook safe: a size cap (on what is read, so devices and pipes are bounded
//! too), UTF-8 only, no directories, no empty files.
//!
//! A `Source` also gives the text of line N, for the excerpt under a finding, and knows
//! which kind of file it holds, so that its diagnostics name it.

use crate::input::{ReadError, human_bytes, read_capped};
use crate::limits::MAX_PLAN_BYTES;
use std::fmt;
use std::path::Path;

/// A plan file's (or scenario file's) text and the name it is reported under.
#[derive(Debug, Clone)]
pub struct Source {
    /// The path as the user gave it, used in every diagnostic.
    pub(crate) name: String,
    pub(crate) text: String,
    pub(crate) kind: Kind,
    line_starts: Vec<usize>,
}

/// What a file holds, for the words of its diagnostics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Plan,
    Scenarios,
}

impl Kind {
    /// What one such file is called: `plan`, `scenario file`.
    pub(crate) fn noun(self) -> &'static str {
        match self {
            Kind::Plan => "plan",
            Kind::Scenarios => "scenario file",
        }
    }

    /// The file itself: `plan file`, `scenario file`.
    pub(crate) fn file(self) -> &'static str {
        match self {
            Kind::Plan => "plan file",
            Kind::Scenarios => "scenario file",
        }
    }

    /// The example to start from.
    pub(crate) fn example(self) -> &'static str {
        match self {
            Kind::Plan => "plans/minimal.yaml",
            Kind::Scenarios => "simulations/default.yaml",
        }
    }
}

/// Why a file could not be read as a plan's text.
#[derive(Debug)]
pub struct LoadError {
    pub(crate) name: String,
    pub(crate) kind: LoadErrorKind,
    /// The stable code diagnostics show: `io`, `unreadable` or `file-too-large`.
    pub(crate) code: &'static str,
    pub(crate) reason: String,
    pub(crate) hint: &'static str,
    /// 1-based line and column of the problem, where there is one (invalid UTF-8).
    pub(crate) line: usize,
    pub(crate) column: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LoadErrorKind {
    /// The file could not be opened or read (missing, permission, directory): exit 2.
    Io,
    /// The file was read but is not usable text: the plan is invalid (exit 1).
    Content,
}

impl LoadError {
    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    pub(crate) fn is_io(&self) -> bool {
        self.kind == LoadErrorKind::Io
    }

    fn new(name: &str, kind: LoadErrorKind, reason: String, hint: &'static str) -> LoadError {
        LoadError {
            name: name.to_string(),
            kind,
            code: match kind {
                LoadErrorKind::Io => "io",
                LoadErrorKind::Content => "unreadable",
            },
            reason,
            hint,
            line: 1,
            column: 1,
        }
    }
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.name, self.reason)
    }
}

impl Source {
    /// Reads the plan at `path`, refusing directories, more than [`MAX_PLAN_BYTES`]
    /// (devices and pipes included: at most one byte past the limit is read), non-UTF-8 and
    /// empty files.
    pub(crate) fn load(path: &Path) -> Result<Source, LoadError> {
        Source::load_as(path, Kind::Plan)
    }

    /// Reads `path` as a file of `kind`, with the same limits as a plan.
    pub(crate) fn load_as(path: &Path, kind: Kind) -> Result<Source, LoadError> {
        let name = path.display().to_string();
        let (bytes, is_fifo) = match read_capped(path, MAX_PLAN_BYTES) {
            Ok(read) => read,
            Err(ReadError::Io(e)) => {
                let (reason, hint) = describe_io(&e);
                return Err(LoadError::new(&name, LoadErrorKind::Io, reason, hint));
            }
            Err(ReadError::Directory) => {
                return Err(LoadError::new(
                    &name,
                    LoadErrorKind::Io,
                    format!("is a directory, not a {}", kind.file()),
                    match kind {
                        Kind::Plan => "give the plan files themselves, e.g. `plans/*.yaml`",
                        Kind::Scenarios => {
                            "give the scenario file itself, e.g. `simulations/lawsker-tuning.yaml`"
                        }
                    },
                ));
            }
            Err(ReadError::TooLarge { size, .. }) => return Err(too_large(&name, size, kind)),
        };
        if is_fifo && bytes.is_empty() {
            return Err(LoadError::new(
                &name,
                LoadErrorKind::Io,
                "is a named pipe and nothing was written to it (no writer was connected)".into(),
                match kind {
                    Kind::Plan => {
                        "start the command that writes the plan into the pipe first, or give the plan file itself"
                    }
                    Kind::Scenarios => {
                        "start the command that writes the scenarios into the pipe first, or give the scenario file itself"
                    }
                },
            ));
        }
        Source::from_bytes_as(name, bytes, kind)
    }

    /// Builds a plan's source from bytes already in memory (standard input, tests).
    pub fn from_bytes(name: String, bytes: Vec<u8>) -> Result<Source, LoadError> {
        Source::from_bytes_as(name, bytes, Kind::Plan)
    }

    fn from_bytes_as(name: String, bytes: Vec<u8>, kind: Kind) -> Result<Source, LoadError> {
        if bytes.len() as u64 > MAX_PLAN_BYTES {
            return Err(too_large(&name, Some(bytes.len() as u64), kind));
        }
        let text = match String::from_utf8(bytes) {
            Ok(text) => text,
            Err(e) => {
                let at = e.utf8_error().valid_up_to();
                let valid = &e.as_bytes()[..at];
                let line_start = valid.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
                let mut err = LoadError::new(
                    &name,
                    LoadErrorKind::Content,
                    format!(
                        "not UTF-8 text: invalid byte 0x{:02x} (byte offset {at})",
                        e.as_bytes()[at]
                    ),
                    match kind {
                        Kind::Plan => "save the plan as UTF-8",
                        Kind::Scenarios => "save the scenario file as UTF-8",
                    },
                );
                err.line = valid.iter().filter(|&&b| b == b'\n').count() + 1;
                err.column = String::from_utf8_lossy(&valid[line_start..])
                    .chars()
                    .count()
                    + 1;
                return Err(err);
            }
        };
        if text.trim().is_empty() {
            return Err(LoadError::new(
                &name,
                LoadErrorKind::Content,
                "file is empty".into(),
                match kind {
                    Kind::Plan => {
                        "a plan needs at least `name`, `release`, `service`, `routing` and `phases`; start from plans/minimal.yaml"
                    }
                    Kind::Scenarios => {
                        "a scenario file needs at least `scenarios:`, a list of named scenarios; start from simulations/default.yaml"
                    }
                },
            ));
        }
        Ok(Source::new(name, text).holding(kind))
    }

    /// A plan's source from text in memory, reported under `name`.
    pub fn new(name: String, text: String) -> Source {
        let mut line_starts = vec![0];
        line_starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        Source {
            name,
            text,
            kind: Kind::Plan,
            line_starts,
        }
    }

    /// The same text, read as a file of `kind`.
    pub(crate) fn holding(mut self, kind: Kind) -> Source {
        self.kind = kind;
        self
    }

    /// The byte offset of a 1-based line and (character) column, when the text has it.
    pub(crate) fn offset(&self, line: usize, col: usize) -> Option<usize> {
        let start = *self.line_starts.get(line.checked_sub(1)?)?;
        let rest = &self.text[start..];
        let col = col.checked_sub(1)?;
        match rest.char_indices().nth(col) {
            Some((i, _)) => Some(start + i),
            None if rest.chars().count() == col => Some(self.text.len()),
            None => None,
        }
    }

    /// The 1-based line and (character) column of byte `offset`.
    pub(crate) fn line_col(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.text.len());
        let line = self.line_starts.partition_point(|&s| s <= offset).max(1);
        let start = self.line_starts[line - 1];
        let col = self
            .text
            .get(start..offset)
            .map_or(0, |t| t.chars().count())
            + 1;
        (line, col)
    }

    /// The text of 1-based line `line`, without its line break.
    pub(crate) fn line(&self, line: usize) -> Option<&str> {
        let start = *self.line_starts.get(line.checked_sub(1)?)?;
        let end = self
            .line_starts
            .get(line)
            .map_or(self.text.len(), |&e| e - 1);
        Some(self.text[start..end].trim_end_matches('\r'))
    }
}

/// `len` is the file's length when known; a device or pipe is refused once reading passes
/// the limit.
fn too_large(name: &str, len: Option<u64>, kind: Kind) -> LoadError {
    let size = match len {
        Some(len) => format!("file is {len} bytes"),
        None => "file holds more than that (read as a stream: a device or a pipe)".into(),
    };
    let mut e = LoadError::new(
        name,
        LoadErrorKind::Content,
        format!(
            "over the limit of {} for a {}: {size}",
            human_bytes(MAX_PLAN_BYTES),
            kind.noun()
        ),
        match kind {
            Kind::Plan => {
                "a plan is a hand-written file of a few kilobytes; check that this is the right file"
            }
            Kind::Scenarios => {
                "a scenario file is a hand-written file of a few kilobytes; check that this is the right file"
            }
        },
    );
    e.code = "file-too-large";
    e
}

fn describe_io(e: &std::io::Error) -> (String, &'static str) {
    match e.kind() {
        std::io::ErrorKind::NotFound => ("no such file".into(), "check the path"),
        std::io::ErrorKind::PermissionDenied => {
            ("permission denied".into(), "check the file's permissions")
        }
        _ => (e.to_string(), "check that the file can be read"),
    }
}
