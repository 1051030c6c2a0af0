//! Findings about a plan or a scenario file, and the one place they are turned into text.
//!
//! Every stage reports `Diagnostic`s that carry a stable code, the JSON pointer of the value
//! they are about and, where the YAML stage knows it, the exact position. The YAML stage
//! then places each at its line and column (a `Located` finding, which is also the JSON
//! output), so the other stages never deal with positions.

use crate::source::Source;
use serde::Serialize;
use std::fmt::Write as _;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Warning,
    Error,
}

/// A 1-based line and column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Pos {
    pub(crate) line: usize,
    pub(crate) col: usize,
}

/// One finding. `code` is stable: scripts and suppressions may rely on it.
#[derive(Debug, Clone, PartialEq)]
pub struct Diagnostic {
    pub(crate) severity: Severity,
    pub(crate) code: &'static str,
    pub(crate) message: String,
    /// JSON pointer of the value concerned ("" for the whole document).
    pub(crate) pointer: String,
    /// Where exactly, when more is known than the pointer: a position set by the YAML
    /// stage (which knows positions that no pointer reaches), or a part of the string value
    /// at `pointer`.
    pub(crate) place: Option<Place>,
    /// Point at the key rather than the value (unknown keys, duplicate keys).
    pub(crate) at_key: bool,
    pub(crate) hint: Option<String>,
}

/// See [`Diagnostic::place`].
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Place {
    At(Pos),
    /// The YAML stage places the finding at that part's line and column inside the scalar
    /// (see [`Diagnostic::at_offset`]).
    Within(Box<Within>),
}

/// A byte range of a string value, and the value itself (to check the re-scan of the
/// scalar against).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Within {
    pub(crate) range: std::ops::Range<usize>,
    pub(crate) value: String,
}

impl Diagnostic {
    pub(crate) fn error(
        code: &'static str,
        pointer: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Diagnostic {
            severity: Severity::Error,
            code,
            message: message.into(),
            pointer: pointer.into(),
            place: None,
            at_key: false,
            hint: None,
        }
    }

    pub(crate) fn warning(
        code: &'static str,
        pointer: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Diagnostic {
            severity: Severity::Warning,
            ..Diagnostic::error(code, pointer, message)
        }
    }

    pub(crate) fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    pub(crate) fn at_pos(mut self, pos: Pos) -> Self {
        self.place = Some(Place::At(pos));
        self
    }

    /// Points at bytes `range` of `value`, the decoded string at the pointer (a token of a
    /// query): the YAML stage maps them to the line and column inside the scalar, or keeps
    /// the scalar's start when it cannot.
    pub(crate) fn at_offset(mut self, value: &str, range: std::ops::Range<usize>) -> Self {
        self.place = Some(Place::Within(Box::new(Within {
            range,
            value: value.to_string(),
        })));
        self
    }

    pub(crate) fn at_key(mut self) -> Self {
        self.at_key = true;
        self
    }

    pub(crate) fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

/// One finding placed at its line and column: what `plan validate` prints, as text or JSON.
#[derive(Debug, Clone, Serialize)]
pub struct Located {
    pub(crate) file: String,
    pub(crate) line: usize,
    pub(crate) column: usize,
    pub(crate) pointer: String,
    pub severity: Severity,
    pub(crate) code: &'static str,
    pub(crate) message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) hint: Option<String>,
    /// How many characters from the column to underline, when the finding knows (a token
    /// inside a string); otherwise the token at the column is measured.
    #[serde(skip)]
    pub(crate) width: Option<usize>,
}

/// `path:line:col: error[code]: message`, the source line with the token at the column
/// underlined, then the hint.
pub fn render_human(source: Option<&Source>, d: &Located, color: bool) -> String {
    let line = source.and_then(|src| src.line(d.line));
    render(
        line.map(|text| {
            let width = match d.width {
                Some(w) => w
                    .min(
                        text.chars()
                            .count()
                            .saturating_sub(d.column.saturating_sub(1)),
                    )
                    .max(1),
                None => marker_width(text, d.column),
            };
            (text, width)
        }),
        d,
        color,
    )
}

/// The same display for a finding in a line of a recorded trace (CSV or JSON), whose
/// text the caller keeps: the field or value at the column is underlined.
pub(crate) fn render_trace_finding(line: Option<&str>, d: &Located, color: bool) -> String {
    render(
        line.map(|text| (text, field_width(text, d.column))),
        d,
        color,
    )
}

/// The one renderer: the heading, then `line` (its text, and how many characters from the
/// column to underline), then the hint.
fn render(line: Option<(&str, usize)>, d: &Located, color: bool) -> String {
    let (sev, paint) = match d.severity {
        Severity::Error => ("error", "\x1b[1;31m"),
        Severity::Warning => ("warning", "\x1b[1;33m"),
    };
    let (on, off, bold, blue) = if color {
        (paint, "\x1b[0m", "\x1b[1m", "\x1b[1;34m")
    } else {
        ("", "", "", "")
    };
    let mut s = format!(
        "{bold}{}:{}:{}:{off} {on}{sev}[{}]{off}{bold}: {}{off}\n",
        d.file, d.line, d.column, d.code, d.message
    );
    if let Some((text, width)) = line {
        let gutter = d.line.to_string();
        let pad = " ".repeat(gutter.len());
        let caret_at: String = text
            .chars()
            .take(d.column.saturating_sub(1))
            .map(|c| if c == '\t' { '\t' } else { ' ' })
            .collect();
        let _ = writeln!(s, "{blue}{pad} |{off}");
        let _ = writeln!(s, "{blue}{gutter} |{off} {text}");
        let _ = writeln!(
            s,
            "{blue}{pad} |{off} {caret_at}{on}{}{off}",
            "^".repeat(width)
        );
    }
    if let Some(hint) = &d.hint {
        let _ = writeln!(s, "  = hint: {hint}");
    }
    s
}

/// Underlines the CSV field or JSON value starting at `col`: a quoted string to its
/// closing quote, anything else to the next separator.
fn field_width(line: &str, col: usize) -> usize {
    let rest: Vec<char> = line.chars().skip(col.saturating_sub(1)).collect();
    let end = match rest.first() {
        None => return 1,
        Some('"') => rest
            .iter()
            .skip(1)
            .position(|&c| c == '"')
            .map_or(rest.len(), |p| p + 2),
        Some(_) => rest
            .iter()
            .position(|&c| matches!(c, ',' | ']' | '}'))
            .unwrap_or(rest.len()),
    };
    let trimmed = rest[..end]
        .iter()
        .rposition(|c| !c.is_whitespace())
        .map_or(0, |p| p + 1);
    trimmed.max(1)
}

/// Underlines the token starting at `col`: a quoted string to its closing quote, a flow
/// list or mapping to its closing bracket, a key to its colon, a block value to the end of
/// the line (before a comment), and an item inside a flow collection to the next separator.
fn marker_width(line: &str, col: usize) -> usize {
    let chars: Vec<char> = line.chars().collect();
    let start = col.saturating_sub(1).min(chars.len());
    let rest = &chars[start..];
    let Some(&first) = rest.first() else { return 1 };
    let close = match first {
        '"' | '\'' => Some(first),
        '[' => Some(']'),
        '{' => Some('}'),
        _ => None,
    };
    if let Some(close) = close {
        return rest
            .iter()
            .skip(1)
            .position(|&c| c == close)
            .map_or(rest.len(), |p| p + 2);
    }
    // Inside a flow collection when an unclosed `[` or `{` precedes the token.
    let depth = chars[..start].iter().fold(0i32, |d, &c| match c {
        '[' | '{' => d + 1,
        ']' | '}' => d - 1,
        _ => d,
    });
    let end = if depth > 0 {
        rest.iter()
            .position(|&c| c == ',' || c == ']' || c == '}')
            .unwrap_or(rest.len())
    } else {
        // A plain scalar runs to the end of the line or to ` #`; a key stops at `: `.
        let mut end = rest.len();
        for i in 0..rest.len() {
            let next = rest.get(i + 1).copied();
            if rest[i] == '#' && i > 0 && rest[i - 1] == ' ' {
                end = i;
                break;
            }
            if rest[i] == ':' && (next.is_none() || next == Some(' ')) {
                end = i;
                break;
            }
        }
        end
    };
    let trimmed = rest[..end]
        .iter()
        .rposition(|c| !c.is_whitespace())
        .map_or(0, |p| p + 1);
    trimmed.max(1)
}
