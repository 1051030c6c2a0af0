//! Where each character of a YAML string value sits in the text.
//!
//! A finding about part of a string (a PromQL query's unmatched `)`, a selector without
//! `track="$track"`) knows a byte range in the *decoded* value; the span index knows only
//! where the scalar starts. This module re-scans the scalar's raw text from that start,
//! decoding it as the YAML scanner does for each style (plain, single-quoted with `''`,
//! double-quoted with escapes, literal `|` and folded `>` with their indentation, line
//! folding and chomping), and records for every decoded byte the source byte it came from.
//!
//! The decoded text is compared with the value as it goes: at the first character that
//! differs (a style this scan does not model, such as an explicit indentation indicator,
//! or a start that is not the scalar's), it gives up, and the finding stays at the
//! scalar's start. A wrong position is worse than a coarse one.

/// For each byte of `value`, and one past its end, the byte offset in `text` of the source
/// character that produced it; `start` is the byte offset where the span index placed the
/// scalar (its first character, or for a block scalar its header or first content line).
/// None when the re-scan does not reproduce `value` exactly.
pub(crate) fn source_offsets(text: &str, start: usize, value: &str) -> Option<Vec<usize>> {
    if start > text.len() || !text.is_char_boundary(start) {
        return None;
    }
    let mut out = Emit {
        value,
        matched: 0,
        map: Vec::with_capacity(value.len() + 1),
        end: start,
    };
    if value.is_empty() {
        out.map.push(start);
        return Some(out.map);
    }
    let rest = &text[start..];
    let done = match rest.chars().next() {
        Some('\'') => flow(text, start + 1, Style::Single, &mut out),
        Some('"') => flow(text, start + 1, Style::Double, &mut out),
        Some('|' | '>') => block(text, start, &mut out),
        _ => match block_header_before(text, start) {
            Some(h) => block(text, h, &mut out),
            None => flow(text, start, Style::Plain, &mut out),
        },
    };
    if done && out.matched == value.len() {
        out.map.push(out.end);
        Some(out.map)
    } else {
        None
    }
}

/// The decoded characters so far, checked against the value.
struct Emit<'v> {
    value: &'v str,
    /// Bytes of `value` reproduced so far.
    matched: usize,
    map: Vec<usize>,
    /// The source offset just past the last character emitted.
    end: usize,
}

#[derive(Debug, PartialEq, Eq)]
enum Step {
    More,
    Complete,
    Mismatch,
}

impl Emit<'_> {
    /// Emits `c`, produced by the source character(s) at `src..src_end`.
    fn push(&mut self, c: char, src: usize, src_end: usize) -> Step {
        if self.matched >= self.value.len() {
            return Step::Complete;
        }
        if !self.value[self.matched..].starts_with(c) {
            return Step::Mismatch;
        }
        for _ in 0..c.len_utf8() {
            self.map.push(src);
        }
        self.matched += c.len_utf8();
        self.end = src_end;
        if self.matched == self.value.len() {
            Step::Complete
        } else {
            Step::More
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Style {
    Plain,
    Single,
    Double,
}

fn is_blank(c: char) -> bool {
    c == ' ' || c == '\t'
}

/// A plain or quoted scalar from `from` (just after the opening quote): line breaks fold to
/// a space (or, across empty lines, to one `\n` per empty line), whitespace around a break
/// is dropped. Returns true when the value was reproduced in full.
fn flow(text: &str, from: usize, style: Style, out: &mut Emit) -> bool {
    let bytes = text.as_bytes();
    let mut i = from;
    // Blanks seen but not yet known to be content (they are dropped before a line break).
    let mut pending: Vec<(char, usize)> = Vec::new();
    while i < text.len() {
        let Some(c) = text[i..].chars().next() else {
            return false;
        };
        let next = i + c.len_utf8();
        if c == '\r' || c == '\n' {
            pending.clear();
            // The breaks: this one, then one per following blank-only line.
            let mut breaks = vec![i];
            let mut j = skip_break(bytes, i);
            loop {
                let mut k = j;
                while k < bytes.len() && (bytes[k] == b' ' || bytes[k] == b'\t') {
                    k += 1;
                }
                if k < bytes.len() && (bytes[k] == b'\n' || bytes[k] == b'\r') {
                    breaks.push(k);
                    j = skip_break(bytes, k);
                } else {
                    j = k;
                    break;
                }
            }
            let step = if breaks.len() == 1 {
                out.push(' ', i, i + 1)
            } else {
                let mut s = Step::More;
                for &b in &breaks[1..] {
                    s = out.push('\n', b, b + 1);
                    if s != Step::More {
                        break;
                    }
                }
                s
            };
            match step {
                Step::More => {}
                Step::Complete => return true,
                Step::Mismatch => return false,
            }
            i = j;
            continue;
        }
        if is_blank(c) {
            pending.push((c, i));
            i = next;
            continue;
        }
        // A content character (or a quote, escape): first the blanks before it.
        let closing = match style {
            Style::Single => c == '\'' && !text[next..].starts_with('\''),
            Style::Double => c == '"',
            Style::Plain => false,
        };
        if closing {
            for (b, at) in pending.drain(..) {
                match out.push(b, at, at + 1) {
                    Step::More => {}
                    Step::Complete => return true,
                    Step::Mismatch => return false,
                }
            }
            return out.matched == out.value.len();
        }
        for (b, at) in pending.drain(..) {
            match out.push(b, at, at + 1) {
                Step::More => {}
                Step::Complete => return true,
                Step::Mismatch => return false,
            }
        }
        let (decoded, end) = match (style, c) {
            (Style::Single, '\'') => (Some('\''), next + 1),
            (Style::Double, '\\') => match escape(text, next) {
                Escape::Char(d, end) => (Some(d), end),
                Escape::LineBreak(end) => {
                    // An escaped line break: nothing, and the next line's indentation goes.
                    let mut k = end;
                    while k < bytes.len() && (bytes[k] == b' ' || bytes[k] == b'\t') {
                        k += 1;
                    }
                    i = k;
                    continue;
                }
                Escape::Invalid => return false,
            },
            _ => (Some(c), next),
        };
        if let Some(d) = decoded {
            match out.push(d, i, end) {
                Step::More => {}
                Step::Complete => return true,
                Step::Mismatch => return false,
            }
        }
        i = end;
    }
    false
}

/// Past the line break at `i` (`\n`, `\r\n` or `\r`).
fn skip_break(bytes: &[u8], i: usize) -> usize {
    if bytes[i] == b'\r' && bytes.get(i + 1) == Some(&b'\n') {
        i + 2
    } else {
        i + 1
    }
}

enum Escape {
    /// The character and the offset past the escape.
    Char(char, usize),
    /// `\` at the end of a line; the offset past the break.
    LineBreak(usize),
    Invalid,
}

/// The escape whose letter is at `at` (just after the backslash).
fn escape(text: &str, at: usize) -> Escape {
    let Some(e) = text[at..].chars().next() else {
        return Escape::Invalid;
    };
    let simple = match e {
        '0' => Some('\0'),
        'a' => Some('\x07'),
        'b' => Some('\x08'),
        't' | '\t' => Some('\t'),
        'n' => Some('\n'),
        'v' => Some('\x0b'),
        'f' => Some('\x0c'),
        'r' => Some('\r'),
        'e' => Some('\x1b'),
        ' ' => Some(' '),
        '"' => Some('"'),
        '/' => Some('/'),
        '\\' => Some('\\'),
        'N' => Some('\u{85}'),
        '_' => Some('\u{a0}'),
        'L' => Some('\u{2028}'),
        'P' => Some('\u{2029}'),
        _ => None,
    };
    if let Some(c) = simple {
        return Escape::Char(c, at + e.len_utf8());
    }
    if e == '\n' || e == '\r' {
        return Escape::LineBreak(skip_break(text.as_bytes(), at));
    }
    let digits = match e {
        'x' => 2,
        'u' => 4,
        'U' => 8,
        _ => return Escape::Invalid,
    };
    let hex = text.get(at + 1..at + 1 + digits);
    match hex
        .and_then(|h| u32::from_str_radix(h, 16).ok())
        .and_then(char::from_u32)
    {
        Some(c) => Escape::Char(c, at + 1 + digits),
        None => Escape::Invalid,
    }
}

/// The offset of the block scalar header (`|`, `>-`, ...) that a scalar starting at `start`
/// belongs to: the span index places a block scalar at its first content line. None when
/// the text before `start` on its line is not blank or the previous non-blank line does not
/// end with a header.
fn block_header_before(text: &str, start: usize) -> Option<usize> {
    let line_start = text[..start].rfind('\n').map_or(0, |i| i + 1);
    if !text[line_start..start].chars().all(is_blank) {
        return None;
    }
    let mut end = line_start.checked_sub(1)?;
    loop {
        let s = text[..end].rfind('\n').map_or(0, |i| i + 1);
        let line = text[s..end].trim_end_matches('\r');
        if line.trim().is_empty() {
            end = s.checked_sub(1)?;
            continue;
        }
        // Drop a trailing comment: ` #` starts one outside quotes; a header has none.
        let code = match line.find(" #") {
            Some(c) => &line[..c],
            None => line,
        };
        let code = code.trim_end();
        let token_at = code.rfind(is_blank).map_or(0, |i| i + 1);
        let token = &code[token_at..];
        let mut chars = token.chars();
        if !matches!(chars.next(), Some('|' | '>')) {
            return None;
        }
        if !chars.all(|c| c == '-' || c == '+' || c.is_ascii_digit()) {
            return None;
        }
        return Some(s + token_at);
    }
}

/// A literal (`|`) or folded (`>`) block scalar whose header is at `header`.
fn block(text: &str, header: usize, out: &mut Emit) -> bool {
    let bytes = text.as_bytes();
    let literal = bytes[header] == b'|';
    let mut i = header + 1;
    while i < bytes.len() && matches!(bytes[i], b'-' | b'+' | b'0'..=b'9') {
        if bytes[i].is_ascii_digit() {
            // An explicit indentation, relative to the parent's: not modelled.
            return false;
        }
        i += 1;
    }
    // The content starts on the next line.
    let Some(nl) = text[i..].find('\n') else {
        return false;
    };
    let mut pos = i + nl + 1;
    // Lines: (content start, content end, line end); an empty line has start == end.
    let mut lines: Vec<(usize, usize, usize)> = Vec::new();
    let mut indent: Option<usize> = None;
    while pos < text.len() {
        let line_end = text[pos..].find('\n').map_or(text.len(), |n| pos + n);
        let raw_end = if line_end > pos && bytes[line_end - 1] == b'\r' {
            line_end - 1
        } else {
            line_end
        };
        let spaces = bytes[pos..raw_end]
            .iter()
            .take_while(|&&b| b == b' ')
            .count();
        let blank = spaces == raw_end - pos;
        match indent {
            None if blank => lines.push((raw_end, raw_end, line_end)),
            None => {
                indent = Some(spaces);
                lines.push((pos + spaces, raw_end, line_end));
            }
            Some(n) if blank => {
                let s = (pos + n).min(raw_end);
                lines.push((s, raw_end, line_end));
            }
            Some(n) if spaces < n => break,
            Some(n) => lines.push((pos + n, raw_end, line_end)),
        }
        pos = line_end + 1;
    }
    let emit_line = |out: &mut Emit, s: usize, e: usize| -> Step {
        for (k, c) in text[s..e].char_indices() {
            let step = out.push(c, s + k, s + k + c.len_utf8());
            if step != Step::More {
                return step;
            }
        }
        Step::More
    };
    macro_rules! emit {
        ($step:expr) => {
            match $step {
                Step::More => {}
                Step::Complete => return true,
                Step::Mismatch => return false,
            }
        };
    }
    if literal {
        for &(s, e, le) in &lines {
            emit!(emit_line(out, s, e));
            emit!(out.push('\n', e.min(le), le + 1));
        }
        return false;
    }
    // Folded: a break between two lines of text at the base indentation becomes a space
    // (or is dropped before empty lines); around more-indented lines breaks are kept.
    let mut last: Option<(bool, usize)> = None;
    let mut empties: Vec<usize> = Vec::new();
    for &(s, e, _) in &lines {
        if s == e {
            empties.push(e);
            continue;
        }
        let more = matches!(bytes[s], b' ' | b'\t');
        match last {
            None => {
                for &b in &empties {
                    emit!(out.push('\n', b, b + 1));
                }
            }
            Some((prev_more, prev_end)) => {
                let folds = !prev_more && !more;
                if !folds || empties.is_empty() {
                    emit!(out.push(if folds { ' ' } else { '\n' }, prev_end, prev_end + 1));
                }
                for &b in &empties {
                    emit!(out.push('\n', b, b + 1));
                }
            }
        }
        empties.clear();
        emit!(emit_line(out, s, e));
        last = Some((more, e));
    }
    if let Some((_, e)) = last {
        emit!(out.push('\n', e, e + 1));
        for &b in &empties {
            emit!(out.push('\n', b, b + 1));
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::source_offsets;

    /// Parses `doc` (a mapping with key `q`) and returns the value of `q` and, for each
    /// `needle` occurrence in the value, the source text at its mapped offset.
    fn check(doc: &str, needle: &str) -> (String, usize) {
        let v: yaml_serde::Value = yaml_serde::from_str(doc).unwrap();
        let value = v["q"].as_str().unwrap().to_string();
        // The span index places the value where yaml_rust2's scanner does.
        let (spans, _) = super::super::spans::index(doc);
        let pos = spans.find("/q", false).unwrap();
        let line_start: usize = doc
            .split_inclusive('\n')
            .take(pos.line - 1)
            .map(str::len)
            .sum();
        let start = line_start
            + doc[line_start..]
                .char_indices()
                .nth(pos.col - 1)
                .map_or(doc.len() - line_start, |(i, _)| i);
        let map = source_offsets(doc, start, &value).unwrap_or_else(|| {
            panic!("no map for {value:?} in {doc:?}");
        });
        assert_eq!(map.len(), value.len() + 1);
        let at = value.find(needle).unwrap();
        let src = map[at];
        assert!(
            doc[src..].starts_with(needle),
            "{needle:?} mapped to {:?} in {doc:?}",
            &doc[src..]
        );
        (value, src)
    }

    #[test]
    fn plain_single_line() {
        check("q: sum(rate(x[5m])) # note\n", "rate");
    }

    #[test]
    fn plain_multi_line() {
        let (v, _) = check("q: sum(\n  rate(x[5m])\n\n  ) / 2\nz: 1\n", ")");
        assert_eq!(v, "sum( rate(x[5m])\n) / 2");
        check("q: sum(\n  rate(x[5m])\n\n  ) / 2\nz: 1\n", "/ 2");
    }

    #[test]
    fn single_quoted() {
        check("q: 'x{a=''b''} + y'\n", "+ y");
        check("q: 'x{a=''b''}\n   + y'\n", "+ y");
    }

    #[test]
    fn double_quoted_with_escapes() {
        check("q: \"x{a=\\\"b\\\"} \\t+ y\"\n", "+ y");
        check("q: \"x{a=\\u0062} + y\"\n", "+ y");
        check("q: \"sum(x) \\\n    / z\"\n", "/ z");
        check("q: \"sum(x)\n\n    / z\"\n", "/ z");
    }

    #[test]
    fn literal_block() {
        check("k: 1\nq: |\n  sum(x)\n    / z\n", "/ z");
        check("q: |-\n\n  sum(x)\n  / z\nr: 2\n", "/ z");
        check("q: |+\n  sum(x)\n  / z\n\nr: 2\n", "/ z");
    }

    #[test]
    fn folded_block() {
        check("q: >-\n  sum(x)\n  / z\n", "/ z");
        check("q: >\n  sum(x)\n\n  / z\n", "/ z");
        check("q: >-\n  sum(x)\n    / y\n  / z\n", "/ z");
        check("q: >- # a comment\n  sum(x)\n  / z\n", "/ z");
    }

    /// A document the span index cannot read but the value parser can: no position for
    /// the value, rather than the document's start taken for it.
    #[test]
    fn an_unindexed_value_has_no_position() {
        let (spans, _) = super::super::spans::index("q: \"\"#\n");
        assert_eq!(spans.value_at("/q"), None);
    }

    #[test]
    fn mismatch_gives_none() {
        assert_eq!(source_offsets("q: abc\n", 3, "abd"), None);
        assert_eq!(source_offsets("q: |2\n    abc\n", 3, "  abc\n"), None);
        assert!(source_offsets("q: abc\n", 99, "abc").is_none());
    }

    proptest::proptest! {
        #![proptest_config(proptest::test_runner::Config {
            failure_persistence: None,
            ..proptest::test_runner::Config::default()
        })]
        /// Any query, written in any style the YAML parser reads back to it, maps every byte
        /// into the scalar, in order; the parse adapter's error lands inside it too; and a
        /// start anywhere in any text never panics.
        #[test]
        fn maps_any_query_in_any_style(
            q in "[a-z(){}\\[\\]\"'$=~!,:. 0-9+*/#\\\\é\t\n-]{0,40}",
            start in 0usize..200,
        ) {
            let single = format!("q: '{}'\n", q.replace('\'', "''"));
            let double = format!("q: {}\n", serde_json::to_string(&q).unwrap());
            let literal = format!("q: |-\n{}\n", q.lines().map(|l| format!("  {l}")).collect::<Vec<_>>().join("\n"));
            let folded = format!("q: >-\n{}\n", q.lines().map(|l| format!("  {l}")).collect::<Vec<_>>().join("\n"));
            let plain = format!("q: {q}\n");
            for doc in [single, double, literal, folded, plain] {
                let _ = source_offsets(&doc, start.min(doc.len()), &q);
                let Ok(v) = yaml_serde::from_str::<yaml_serde::Value>(&doc) else { continue };
                let Some(value) = v.get("q").and_then(|v| v.as_str()) else { continue };
                let (spans, _) = super::super::spans::index(&doc);
                // Exactly `/q`: where the span index could not read the document (`""#`,
                // which the value parser takes), `find` falls back to the document's start.
                let Some(pos) = spans.value_at("/q") else { continue };
                let line_start: usize = doc.split_inclusive('\n').take(pos.line - 1).map(str::len).sum();
                let Some(at) = doc[line_start..].char_indices().nth(pos.col - 1).map(|(i, _)| line_start + i) else { continue };
                let Some(map) = source_offsets(&doc, at, value) else { continue };
                proptest::prop_assert_eq!(map.len(), value.len() + 1);
                proptest::prop_assert!(map.windows(2).all(|w| w[0] <= w[1]), "{:?}", map);
                proptest::prop_assert!(map.iter().all(|&o| o >= 3 && o <= doc.len()));
                let vars = crate::prom::parse::Vars { service: "web", track: "canary", window: "5m" };
                if let Err(e) = crate::prom::parse::parse(value, vars) {
                    proptest::prop_assert!(e.range.end <= value.len());
                    proptest::prop_assert!(map[e.range.start] <= doc.len());
                }
            }
        }
    }

    #[test]
    fn utf8() {
        check("q: 'é{a=\"ü\"} / z'\n", "/ z");
    }
}
