//! Reading a trace file for a replay (CSV or Prometheus JSON, detected from its first
//! non-blank line) within the trace limits, and keeping a way back to the text of any of
//! its lines, so that an error can show the line it is about.

use crate::input::{self, ReadError, human_bytes};
use crate::limits::{MAX_TRACE_BYTES, MAX_TRACE_JSON_BYTES, MAX_TRACE_LINE_BYTES};
use crate::sim::trace::{TOO_LARGE_HINT, Trace, TraceError, csv, promjson};
use std::io::{BufRead, BufReader, Read};
use std::path::Path;

/// Why a replay could not run.
#[derive(Debug, Clone, PartialEq)]
pub enum ReplayError {
    /// The trace file could not be read (exit 2).
    Io { file: String, reason: String },
    /// The trace is not a valid trace for this plan (exit 1).
    Trace {
        file: String,
        line: usize,
        column: usize,
        message: String,
        hint: Option<String>,
        /// The offending line's text, for the caret display.
        text: Option<String>,
    },
    /// `--start`, `--end` or `--evaluation-offset` do not fit the trace or the plan
    /// (exit 2).
    Bounds {
        file: String,
        message: String,
        hint: String,
    },
    /// A custom query fails at some evaluation of this trace, as Prometheus would fail it
    /// (exit 1).
    Query {
        file: String,
        message: String,
        hint: String,
    },
    /// A rule's `min_requests` guard has no request count in the trace (exit 1).
    Guard {
        file: String,
        message: String,
        hint: String,
    },
}

impl ReplayError {
    pub(crate) fn from_trace(file: &str, lines: &Lines, e: TraceError) -> ReplayError {
        let line_text = lines.line(e.line);
        ReplayError::Trace {
            file: file.to_string(),
            line: e.line,
            column: e.column,
            message: e.message,
            hint: e.hint,
            // Very long lines (a one-line JSON export) are not worth echoing.
            text: line_text.filter(|l| l.len() <= 400),
        }
    }
}

/// Where the text of a trace's line can be found again, to show it under an error.
pub enum Lines {
    /// The whole text is in memory (a JSON trace, or a test).
    Text(String),
    /// A CSV trace, read line by line from this regular file: read again up to the line.
    File(std::path::PathBuf),
    /// Only this line (its number, its text) is at hand.
    One(usize, String),
    /// A pipe or device: what was read is gone.
    Gone,
}

impl Lines {
    /// Line `n` (1-based), without its line break.
    fn line(&self, n: usize) -> Option<String> {
        let line = match self {
            Lines::Text(text) => text.split('\n').nth(n.checked_sub(1)?)?.to_string(),
            Lines::File(path) => {
                let opened = input::open(path, MAX_TRACE_BYTES).ok()?;
                let mut r = BufReader::new(opened.file);
                let mut buf = Vec::new();
                for _ in 0..n {
                    buf.clear();
                    let read = (&mut r)
                        .take(MAX_TRACE_LINE_BYTES)
                        .read_until(b'\n', &mut buf)
                        .ok()?;
                    if read == 0 {
                        return None;
                    }
                }
                String::from_utf8(buf).ok()?
            }
            Lines::One(at, text) if *at == n => text.clone(),
            Lines::One(..) | Lines::Gone => return None,
        };
        Some(
            line.trim_end_matches('\n')
                .trim_end_matches('\r')
                .to_string(),
        )
    }
}

/// Reads a trace file (CSV or Prometheus JSON, detected from its first non-blank line)
/// within the trace limits: a CSV trace line by line (never whole in memory, so devices
/// and pipes are bounded too), a JSON one whole, refused before reading when its length
/// is known to be over [`MAX_TRACE_JSON_BYTES`].
pub fn load(path: &Path) -> Result<(Trace, Lines), ReplayError> {
    let file = path.display().to_string();
    let io = |e: std::io::Error| ReplayError::Io {
        file: file.clone(),
        reason: match e.kind() {
            std::io::ErrorKind::NotFound => "no such file".into(),
            std::io::ErrorKind::PermissionDenied => "permission denied".into(),
            _ => e.to_string(),
        },
    };
    let at = |line: usize, column: usize, message: String, hint: &str| ReplayError::Trace {
        file: file.clone(),
        line,
        column,
        message,
        hint: Some(hint.to_string()),
        text: None,
    };
    let opened = input::open(path, MAX_TRACE_BYTES).map_err(|e| match e {
        ReadError::Io(e) => io(e),
        ReadError::Directory => ReplayError::Io {
            file: file.clone(),
            reason: "is a directory; give the trace file itself".into(),
        },
        ReadError::TooLarge { limit, size } => at(
            1,
            1,
            format!(
                "the trace is {} bytes, over the limit of {} for a trace",
                size.unwrap_or(limit),
                human_bytes(limit)
            ),
            TOO_LARGE_HINT,
        ),
    })?;
    let lines = if opened.len.is_some() {
        Lines::File(path.to_path_buf())
    } else {
        Lines::Gone
    };
    let mut r = BufReader::new(opened.file.take(MAX_TRACE_BYTES + 1));
    let mut csv = csv::Reader::default();
    // The blank lines before the first other one, kept in case the file is JSON.
    let mut head: Vec<u8> = Vec::new();
    let mut buf = Vec::new();
    let mut line_no = 0;
    let mut read = 0u64;
    let mut decided = false;
    loop {
        buf.clear();
        let n = (&mut r)
            .take(MAX_TRACE_LINE_BYTES + 1)
            .read_until(b'\n', &mut buf)
            .map_err(io)?;
        if n == 0 {
            break;
        }
        line_no += 1;
        read += n as u64;
        if !decided {
            let first = buf
                .strip_prefix("\u{feff}".as_bytes())
                .unwrap_or(&buf)
                .iter()
                .find(|b| !b.is_ascii_whitespace());
            match first {
                None => head.extend_from_slice(&buf),
                Some(b'{' | b'[') => {
                    head.extend_from_slice(&buf);
                    // What the buffer read ahead, then the rest of the file.
                    head.extend_from_slice(r.buffer());
                    return load_json(&file, opened.len, head, r.into_inner());
                }
                Some(_) => decided = true,
            }
        }
        if read > MAX_TRACE_BYTES {
            return Err(at(
                line_no,
                1,
                format!(
                    "the trace holds more than {}, the limit for a trace (read as a stream: a device or a pipe)",
                    human_bytes(MAX_TRACE_BYTES)
                ),
                TOO_LARGE_HINT,
            ));
        }
        if n as u64 > MAX_TRACE_LINE_BYTES {
            return Err(at(
                line_no,
                1,
                format!(
                    "line {line_no} is longer than {MAX_TRACE_LINE_BYTES} bytes, the limit for a line of a CSV trace"
                ),
                "a CSV trace holds one sample per line, of a few dozen bytes; check that this is a trace file",
            ));
        }
        let text = std::str::from_utf8(&buf).map_err(|e| {
            let valid = &buf[..e.valid_up_to()];
            let column = String::from_utf8_lossy(valid).chars().count() + 1;
            at(
                line_no,
                column,
                "not UTF-8 text".into(),
                "save the trace as UTF-8",
            )
        })?;
        csv.line(line_no, text).map_err(|e| {
            ReplayError::from_trace(&file, &Lines::One(line_no, text.to_string()), e)
        })?;
    }
    let t = csv
        .finish()
        .map_err(|e| ReplayError::from_trace(&file, &lines, e))?;
    Ok((t, lines))
}

/// The rest of a JSON trace whose first `head` bytes were read: read whole, parsed.
fn load_json(
    file: &str,
    len: Option<u64>,
    mut head: Vec<u8>,
    rest: impl Read,
) -> Result<(Trace, Lines), ReplayError> {
    let too_large = |size: String| {
        ReplayError::Trace {
        file: file.to_string(),
        line: 1,
        column: 1,
        message: format!(
            "the JSON trace {size}, over the limit of {} for a JSON trace (which is read whole)",
            human_bytes(MAX_TRACE_JSON_BYTES)
        ),
        hint: Some(
            "export a shorter time range, or write the trace as CSV (read line by line, up to 1 GiB)"
                .into(),
        ),
        text: None,
    }
    };
    if let Some(len) = len.filter(|&l| l > MAX_TRACE_JSON_BYTES) {
        return Err(too_large(format!("is {len} bytes")));
    }
    if let Some(len) = len {
        head.reserve_exact((len as usize).saturating_sub(head.len()));
    }
    let room = (MAX_TRACE_JSON_BYTES + 1).saturating_sub(head.len() as u64);
    rest.take(room)
        .read_to_end(&mut head)
        .map_err(|e| ReplayError::Io {
            file: file.to_string(),
            reason: e.to_string(),
        })?;
    if head.len() as u64 > MAX_TRACE_JSON_BYTES {
        return Err(too_large(
            "holds more than that (read as a stream: a device or a pipe)".into(),
        ));
    }
    let text = String::from_utf8(head).map_err(|e| {
        let valid = &e.as_bytes()[..e.utf8_error().valid_up_to()];
        let line = valid.iter().filter(|&&b| b == b'\n').count() + 1;
        let start = valid.iter().rposition(|&b| b == b'\n').map_or(0, |p| p + 1);
        let column = String::from_utf8_lossy(&valid[start..]).chars().count() + 1;
        ReplayError::Trace {
            file: file.to_string(),
            line,
            column,
            message: "not UTF-8 text".into(),
            hint: Some("save the trace as UTF-8".into()),
            text: None,
        }
    })?;
    let parsed = promjson::parse(&text);
    let lines = Lines::Text(text);
    let t = parsed.map_err(|e| ReplayError::from_trace(file, &lines, e))?;
    Ok((t, lines))
}
