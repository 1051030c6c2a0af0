//! From pointers to positions: every finding of a file, whatever stage found it, placed at
//! its line and column through the document's span index and put in source order.
//!
//! It lives with the span index because only this stage knows where values sit in the
//! text; the findings themselves ([`Diagnostic`]) and their rendering stay below it. A
//! finding about part of a string value (a token of a query) is placed inside the scalar
//! by re-scanning its raw text ([`super::scalar`]).

use super::scalar::source_offsets;
use super::spans::Spans;
use crate::diagnostic::{Diagnostic, Located, Place, Pos, Within};

const FILE_START: Pos = Pos { line: 1, col: 1 };
use crate::source::Source;

/// Resolves each diagnostic's position (explicit, else inside its string value, else
/// through the span index, else the nearest enclosing value that has a span, else the
/// file's start) and sorts them by position, errors before warnings at the same place.
pub(crate) fn locate(
    source: &Source,
    spans: Option<&Spans>,
    diags: Vec<Diagnostic>,
) -> Vec<Located> {
    let mut out: Vec<Located> = diags
        .into_iter()
        .map(|d| {
            let (pos, width) = match (&d.place, spans) {
                (Some(Place::At(p)), _) => (*p, None),
                (Some(Place::Within(w)), Some(s)) if !d.at_key => {
                    match s
                        .value_at(&d.pointer)
                        .and_then(|start| inside_string(source, start, w))
                    {
                        Some((pos, width)) => (pos, Some(width)),
                        None => (s.find(&d.pointer, false).unwrap_or(FILE_START), None),
                    }
                }
                _ => (
                    spans
                        .and_then(|s| s.find(&d.pointer, d.at_key))
                        .unwrap_or(FILE_START),
                    None,
                ),
            };
            Located {
                file: source.name.clone(),
                line: pos.line,
                column: pos.col,
                pointer: d.pointer,
                severity: d.severity,
                code: d.code,
                message: d.message,
                hint: d.hint,
                width,
            }
        })
        .collect();
    out.sort_by(|a, b| (a.line, a.column, b.severity).cmp(&(b.line, b.column, a.severity)));
    out
}

/// The position of `w.range` inside the scalar that starts at `start`, and how many
/// characters of that line it covers (at least one; a range that runs onto the next line is
/// underlined to the end of its first line). None when the scalar cannot be re-scanned.
fn inside_string(source: &Source, start: Pos, w: &Within) -> Option<(Pos, usize)> {
    let value = w.value.as_str();
    let (from, to) = (w.range.start, w.range.end.max(w.range.start));
    if to > value.len() || !value.is_char_boundary(from) || !value.is_char_boundary(to) {
        return None;
    }
    let map = source_offsets(&source.text, source.offset(start)?, value)?;
    let at = *map.get(from)?;
    let pos = source.pos(at);
    let width = if to > from {
        // The last character of the range, through its end in the source.
        let last = value[..to]
            .char_indices()
            .next_back()
            .map_or(from, |(i, _)| i);
        let last_src = *map.get(last)?;
        let last_end = source.text[last_src..]
            .chars()
            .next()
            .map_or(last_src, |c| last_src + c.len_utf8());
        let end = match source.text[at..].find('\n') {
            Some(nl) => last_end.min(at + nl),
            None => last_end,
        };
        source
            .text
            .get(at..end.max(at))
            .map_or(1, |t| t.chars().count())
            .max(1)
    } else {
        1
    };
    Some((pos, width))
}
