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
    let map = source_offsets(&source.text, source.offset(start.line, start.col)?, value)?;
    let at = *map.get(from)?;
    let (line, col) = source.line_col(at);
    let pos = Pos { line, col };
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

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn located(doc: &str, range: std::ops::Range<usize>) -> Located {
        let source = Source::new("t.yaml".into(), doc.to_string());
        let (spans, _) = super::super::spans::index(doc);
        let v: yaml_serde::Value = yaml_serde::from_str(doc).unwrap();
        let value = v["q"].as_str().unwrap();
        let d = Diagnostic::error("c", "/q", "m").at_offset(value, range);
        locate(&source, Some(&spans), vec![d]).remove(0)
    }

    #[test]
    fn places_a_token_inside_each_style() {
        // `b` of `a / b`, and its width.
        for (doc, line, col) in [
            ("q: a / bb\n", 1, 8),
            ("q: 'a / bb'\n", 1, 9),
            ("q: \"a\\t/ bb\"\n", 1, 10),
            ("q: >-\n  a\n  / bb\n", 3, 5),
            ("q: |\n  a\n  / bb\n", 3, 5),
            ("q: a\n  / bb\n", 2, 5),
        ] {
            let v: yaml_serde::Value = yaml_serde::from_str(doc).unwrap();
            let at = v["q"].as_str().unwrap().find("bb").unwrap();
            let l = located(doc, at..at + 2);
            assert_eq!((l.line, l.column, l.width), (line, col, Some(2)), "{doc:?}");
        }
    }

    #[test]
    fn falls_back_to_the_scalar_when_the_value_differs() {
        let source = Source::new("t.yaml".into(), "q: abc\n".into());
        let (spans, _) = super::super::spans::index(&source.text);
        let d = Diagnostic::error("c", "/q", "m").at_offset("xyz", 1..2);
        let l = locate(&source, Some(&spans), vec![d]).remove(0);
        assert_eq!((l.line, l.column, l.width), (1, 4, None));
    }

    proptest! {
        #![proptest_config(ProptestConfig { failure_persistence: None, ..ProptestConfig::default() })]
        /// Any text, any value, any range: a position inside the file, never a panic.
        #[test]
        fn never_panics(
            text in "[a-z:'\"|>\\- \\n\\\\é#]{0,60}",
            value in "[a-z'\" \\né]{0,20}",
            from in 0usize..30,
            len in 0usize..30,
        ) {
            let source = Source::new("t.yaml".into(), text.clone());
            let (spans, _) = super::super::spans::index(&text);
            let d = Diagnostic::error("c", "/q", "m").at_offset(&value, from..from + len);
            let l = locate(&source, Some(&spans), vec![d]).remove(0);
            prop_assert!(l.line >= 1 && l.line <= text.lines().count().max(1) + 1);
        }
    }
}
