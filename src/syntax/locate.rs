//! From pointers to positions: every finding of a file, whatever stage found it, placed at
//! its line and column through the document's span index and put in source order.
//!
//! It lives with the span index because only this stage knows where values sit in the
//! text; the findings themselves ([`Diagnostic`]) and their rendering stay below it.

use super::spans::Spans;
use crate::diagnostic::{Diagnostic, Located, Pos};
use crate::source::Source;

/// Resolves each diagnostic's position (explicit, else through the span index, else the
/// nearest enclosing value that has a span, else the file's start) and sorts them by
/// position, errors before warnings at the same place.
pub(crate) fn locate(
    source: &Source,
    spans: Option<&Spans>,
    diags: Vec<Diagnostic>,
) -> Vec<Located> {
    let mut out: Vec<Located> = diags
        .into_iter()
        .map(|d| {
            let pos = d
                .pos
                .or_else(|| spans.and_then(|s| s.find(&d.pointer, d.at_key)))
                .unwrap_or(Pos { line: 1, col: 1 });
            Located {
                file: source.name.clone(),
                line: pos.line,
                column: pos.col,
                pointer: d.pointer,
                severity: d.severity,
                code: d.code,
                message: d.message,
                hint: d.hint,
            }
        })
        .collect();
    out.sort_by(|a, b| (a.line, a.column, b.severity).cmp(&(b.line, b.column, a.severity)));
    out
}
