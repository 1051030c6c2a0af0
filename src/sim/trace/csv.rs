//! The CSV trace format: one sample per line, `timestamp,series,labels,value`.
//!
//! ```text
//! # comments and blank lines are skipped; the header line is optional
//! timestamp,series,labels,value
//! 1714564800,http_requests_total,service=backend;track=canary;code=200,1200
//! 2024-05-01T12:00:15Z,http_requests_total,{service="backend",track="canary",code="500"},3
//! 1714564815,service_track:error_rate:ratio_rate5m,track=canary,0.0025
//! 1714564830,http_requests_total,service=backend;track=canary;code=200,stale
//! ```
//!
//! - `timestamp`: Unix seconds (`1714564800`, `1714564800.25`) or RFC 3339 with a zone
//!   (`2024-05-01T12:00:00Z`, `2024-05-01T14:00:00.250+02:00`); milliseconds are kept,
//!   finer digits rounded.
//! - `series`: the metric name, `[a-zA-Z_:][a-zA-Z0-9_:]*`.
//! - `labels`: empty, or `key=value` pairs separated by `;`, or PromQL braces
//!   `{key="value",...}`. In the `;` form a value is bare text (no `;`, `,`, `"`, `{`;
//!   spaces around it are trimmed) or a double-quoted string with Go escapes (`\"`, `\\`,
//!   `\n`, `\t`), which may hold any character. Labels with an empty value are dropped.
//! - `value`: a float (`0.25`, `1e-3`, `NaN`, `+Inf`, `-Inf`) or `stale`, a staleness
//!   marker (the series ends there, as when a target disappears).
//!
//! Any field may also be quoted the RFC 4180 way (`"..."`, with `""` for a quote), as
//! spreadsheet and `csv`-module writers do; a field with a comma (braces, quoted values
//! holding commas) must be, except that a `{...}` labels field is read to its closing brace.
//! Rows may come in any order; a series holds at most one sample per timestamp.

use super::builder::{
    Builder, TOO_LARGE_HINT, Trace, TraceError, is_label_name, is_metric_name, parse_value,
};
use super::time::parse_timestamp;
use std::collections::HashMap;

/// One field of a line: its text (unquoted) and where each of its bytes came from.
struct Field<'a> {
    text: std::borrow::Cow<'a, str>,
    /// Byte offset in the line of the field's first content byte.
    start: usize,
    /// For RFC 4180 quoted fields: the line offset of each content byte.
    map: Option<Vec<usize>>,
}

impl Field<'_> {
    fn offset(&self, i: usize) -> usize {
        match &self.map {
            Some(m) => m
                .get(i)
                .copied()
                .unwrap_or_else(|| m.last().map_or(self.start, |&x| x + 1)),
            None => self.start + i,
        }
    }
}

/// Reads a CSV trace held in memory.
pub(crate) fn parse(text: &str) -> Result<Trace, TraceError> {
    let mut r = Reader::default();
    for (n, line) in text.split('\n').enumerate() {
        r.line(n + 1, line)?;
    }
    r.finish()
}

/// Reads a CSV trace one line at a time, so a file need never be held whole.
#[derive(Default)]
pub(crate) struct Reader {
    b: Builder,
    /// (name, raw labels) → series index, so that repeated rows parse their labels once.
    seen: HashMap<(String, String), usize>,
    /// A header may be the first row; past it, no longer.
    header_passed: bool,
}

impl Reader {
    /// Takes line `line_no` (1-based), with or without its line break.
    pub(crate) fn line(&mut self, line_no: usize, raw: &str) -> Result<(), TraceError> {
        let raw = if line_no == 1 {
            raw.strip_prefix('\u{feff}').unwrap_or(raw)
        } else {
            raw
        };
        let raw = raw.strip_suffix('\n').unwrap_or(raw);
        let line = raw.strip_suffix('\r').unwrap_or(raw);
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            return Ok(());
        }
        let col = |off: usize| line[..off.min(line.len())].chars().count() + 1;
        let err = |off: usize, msg: String| TraceError::new(line_no, col(off), msg);
        let fields = split(line).map_err(|(off, m)| err(off, m))?;
        if !self.header_passed {
            self.header_passed = true;
            let names: Vec<String> = fields
                .iter()
                .map(|f| f.text.trim().to_ascii_lowercase())
                .collect();
            if names == ["timestamp", "series", "labels", "value"] {
                return Ok(());
            }
        }
        if fields.len() != 4 {
            let at = fields
                .get(4)
                .map_or(line.len(), |f| f.start.saturating_sub(1));
            return Err(err(
                at,
                format!(
                    "expected 4 fields (timestamp,series,labels,value), found {}",
                    fields.len()
                ),
            )
            .hint("a field holding a comma must be quoted: \"...\" with \"\" for a quote"));
        }
        let t = parse_timestamp(fields[0].text.trim()).map_err(|m| err(fields[0].start, m))?;
        let name = fields[1].text.trim();
        if !is_metric_name(name) {
            return Err(err(
                fields[1].start,
                format!("`{name}` is not a metric name ([a-zA-Z_:][a-zA-Z0-9_:]*)"),
            ));
        }
        let v = parse_value(fields[3].text.trim(), true).map_err(|m| err(fields[3].start, m))?;
        let key = (name.to_string(), fields[2].text.to_string());
        let i = match self.seen.get(&key) {
            Some(&i) => i,
            None => {
                let labels =
                    parse_labels(&fields[2].text).map_err(|(i, m)| err(fields[2].offset(i), m))?;
                let i = self
                    .b
                    .series_index(name, labels, line_no, col(fields[1].start))
                    .map_err(|m| err(fields[1].start, m).hint(TOO_LARGE_HINT))?;
                self.seen.insert(key, i);
                i
            }
        };
        let at = ((line_no as u64) << 32) | col(fields[0].start) as u64;
        self.b
            .push_at(i, t, v, at)
            .map_err(|m| err(fields[0].start, m).hint(TOO_LARGE_HINT))
    }

    /// The trace, once every line is read.
    pub(crate) fn finish(self) -> Result<Trace, TraceError> {
        self.b
            .finish(|at| ((at >> 32) as usize, (at & 0xffff_ffff) as usize))
    }
}

/// Splits a line into fields (see the module doc). Errors carry a byte offset.
fn split(line: &str) -> Result<Vec<Field<'_>>, (usize, String)> {
    let bytes = line.as_bytes();
    let mut out = Vec::with_capacity(4);
    let mut i = 0;
    loop {
        // Leading spaces before a quote or brace are allowed.
        let mut j = i;
        while j < bytes.len() && bytes[j] == b' ' {
            j += 1;
        }
        if j < bytes.len() && bytes[j] == b'"' {
            let mut content = String::new();
            let mut map = Vec::new();
            let mut k = j + 1;
            loop {
                match bytes.get(k) {
                    None => return Err((j, "unterminated quoted field".into())),
                    Some(b'"') if bytes.get(k + 1) == Some(&b'"') => {
                        content.push('"');
                        map.push(k);
                        k += 2;
                    }
                    Some(b'"') => {
                        k += 1;
                        break;
                    }
                    Some(_) => {
                        let ch = line[k..].chars().next().unwrap_or('\u{fffd}');
                        for x in 0..ch.len_utf8() {
                            map.push(k + x);
                        }
                        content.push(ch);
                        k += ch.len_utf8();
                    }
                }
            }
            while k < bytes.len() && bytes[k] == b' ' {
                k += 1;
            }
            out.push(Field {
                text: content.into(),
                start: j + 1,
                map: Some(map),
            });
            match bytes.get(k) {
                None => return Ok(out),
                Some(b',') => i = k + 1,
                Some(_) => return Err((k, "expected a comma after the quoted field".into())),
            }
        } else if out.len() == 2 && j < bytes.len() && bytes[j] == b'{' {
            let end = brace_end(line, j)?;
            out.push(Field {
                text: line[j..end].into(),
                start: j,
                map: None,
            });
            let mut k = end;
            while k < bytes.len() && bytes[k] == b' ' {
                k += 1;
            }
            match bytes.get(k) {
                None => return Ok(out),
                Some(b',') => i = k + 1,
                Some(_) => return Err((k, "expected a comma after the closing brace".into())),
            }
        } else {
            let end = line[i..].find(',').map_or(line.len(), |e| i + e);
            out.push(Field {
                text: line[i..end].into(),
                start: i,
                map: None,
            });
            if end == line.len() {
                return Ok(out);
            }
            i = end + 1;
        }
    }
}

/// The byte offset just past the `}` closing the brace at `open`, skipping quoted strings.
fn brace_end(line: &str, open: usize) -> Result<usize, (usize, String)> {
    let b = line.as_bytes();
    let mut k = open + 1;
    while k < b.len() {
        match b[k] {
            b'"' => {
                k += 1;
                while k < b.len() && b[k] != b'"' {
                    k += if b[k] == b'\\' { 2 } else { 1 };
                }
                if k >= b.len() {
                    return Err((open, "unterminated string in the labels".into()));
                }
            }
            b'}' => return Ok(k + 1),
            _ => {}
        }
        k += 1;
    }
    Err((open, "unclosed `{` in the labels".into()))
}

type LabelError = (usize, String);

/// Parses a labels field; errors carry a byte offset within the field text.
pub(crate) fn parse_labels(s: &str) -> Result<Vec<(String, String)>, LabelError> {
    let lead = s.len() - s.trim_start().len();
    let t = s.trim();
    let mut out: Vec<(String, String)> = Vec::new();
    let push = |k: String,
                v: String,
                at: usize,
                out: &mut Vec<(String, String)>|
     -> Result<(), LabelError> {
        if k == "__name__" {
            return Err((
                at,
                "`__name__` goes in the series field, not among the labels".into(),
            ));
        }
        if out.iter().any(|(x, _)| *x == k) {
            return Err((at, format!("label `{k}` is given twice")));
        }
        out.push((k, v));
        Ok(())
    };
    if t.is_empty() || t == "{}" {
        return Ok(out);
    }
    if t.starts_with('{') {
        // PromQL braces: {k="v", k2="v2"}
        let b = t.as_bytes();
        if !t.ends_with('}') {
            return Err((lead, "labels in braces must end with `}`".into()));
        }
        let mut i = 1;
        let end = b.len() - 1;
        loop {
            while i < end && b[i] == b' ' {
                i += 1;
            }
            if i >= end {
                break;
            }
            let ks = i;
            while i < end && b[i] != b'=' && b[i] != b' ' {
                i += 1;
            }
            let key = &t[ks..i];
            if !is_label_name(key) {
                return Err((
                    lead + ks,
                    format!("`{key}` is not a label name ([a-zA-Z_][a-zA-Z0-9_]*)"),
                ));
            }
            while i < end && b[i] == b' ' {
                i += 1;
            }
            if b.get(i) != Some(&b'=') || i >= end {
                return Err((lead + i, "expected `=` after the label name".into()));
            }
            i += 1;
            while i < end && b[i] == b' ' {
                i += 1;
            }
            if b.get(i) != Some(&b'"') || i >= end {
                return Err((lead + i, "expected a double-quoted label value".into()));
            }
            let (v, next) = unquote(t, i).map_err(|(o, m)| (lead + o, m))?;
            push(key.to_string(), v, lead + ks, &mut out)?;
            i = next;
            while i < end && b[i] == b' ' {
                i += 1;
            }
            if i < end {
                if b[i] != b',' {
                    return Err((lead + i, "expected `,` or `}` after the label value".into()));
                }
                i += 1;
            }
        }
        return Ok(out);
    }
    // key=value;key=value
    let b = s.as_bytes();
    let mut i = 0;
    while i <= b.len() {
        let ks = i;
        while i < b.len() && b[i] != b'=' && b[i] != b';' {
            i += 1;
        }
        let key_raw = &s[ks..i];
        let key = key_raw.trim();
        let key_at = ks + (key_raw.len() - key_raw.trim_start().len());
        if key.is_empty() && i >= b.len() {
            break;
        }
        if !is_label_name(key) {
            return Err((
                key_at,
                format!("`{key}` is not a label name ([a-zA-Z_][a-zA-Z0-9_]*)"),
            ));
        }
        if b.get(i) != Some(&b'=') {
            return Err((i, format!("expected `=` after label `{key}`")));
        }
        i += 1;
        while i < b.len() && b[i] == b' ' {
            i += 1;
        }
        let value = if b.get(i) == Some(&b'"') {
            let (v, next) = unquote(s, i)?;
            i = next;
            while i < b.len() && b[i] == b' ' {
                i += 1;
            }
            if i < b.len() && b[i] != b';' {
                return Err((i, "expected `;` after the quoted value".into()));
            }
            v
        } else {
            let vs = i;
            while i < b.len() && b[i] != b';' {
                if matches!(b[i], b'"' | b'{' | b'}' | b',') {
                    return Err((
                        i,
                        format!(
                            "`{}` in a bare label value: quote the value (\"...\")",
                            b[i] as char
                        ),
                    ));
                }
                i += 1;
            }
            s[vs..i].trim().to_string()
        };
        push(key.to_string(), value, key_at, &mut out)?;
        i += 1; // past ';'
    }
    Ok(out)
}

/// A Go-style double-quoted string starting at byte `at` of `s`: its value and the offset
/// just past the closing quote.
fn unquote(s: &str, at: usize) -> Result<(String, usize), LabelError> {
    let mut out = String::new();
    let mut chars = s[at + 1..].char_indices();
    while let Some((k, c)) = chars.next() {
        match c {
            '"' => return Ok((out, at + 1 + k + 1)),
            '\\' => match chars.next() {
                Some((_, 'n')) => out.push('\n'),
                Some((_, 't')) => out.push('\t'),
                Some((_, 'r')) => out.push('\r'),
                Some((_, e @ ('"' | '\\' | '\''))) => out.push(e),
                _ => {
                    return Err((
                        at + 1 + k,
                        "unknown escape in a quoted label value (use \\\" \\\\ \\n \\t)".into(),
                    ));
                }
            },
            c => out.push(c),
        }
    }
    Err((at, "unterminated quoted label value".into()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::prom::is_stale_nan;

    fn l(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn label_forms() {
        assert_eq!(parse_labels("").unwrap(), l(&[]));
        assert_eq!(parse_labels("{}").unwrap(), l(&[]));
        assert_eq!(
            parse_labels("a=1;b = x y ").unwrap(),
            l(&[("a", "1"), ("b", "x y")])
        );
        assert_eq!(
            parse_labels("a=\"x;y,\\\"z\"").unwrap(),
            l(&[("a", "x;y,\"z")])
        );
        assert_eq!(
            parse_labels("{a=\"1\", b=\"}\"}").unwrap(),
            l(&[("a", "1"), ("b", "}")])
        );
        assert_eq!(parse_labels("a=1;").unwrap(), l(&[("a", "1")]));
        assert!(parse_labels("a=1;a=2").is_err());
        assert!(parse_labels("__name__=x").is_err());
        assert!(parse_labels("a-b=1").is_err());
        assert!(parse_labels("a").is_err());
        assert!(parse_labels("a=\"x").is_err());
        assert!(parse_labels("a=x\"y").is_err());
        assert!(parse_labels("{a=1}").is_err());
    }

    #[test]
    fn reads_rows_in_any_order_and_both_label_forms() {
        let text = "timestamp,series,labels,value\n\
                    # comment\n\
                    60,x,a=1;b=2,2\n\
                    0,x,{b=\"2\",a=\"1\"},1\n\
                    \"120\",\"x\",\"a=\"\"1\"\";b=2\",stale\n\
                    0,y,,NaN\n";
        let t = parse(text).unwrap();
        assert_eq!(t.series.len(), 2);
        let x = &t.series[0];
        assert_eq!(x.name, "x");
        assert_eq!(x.labels, l(&[("a", "1"), ("b", "2")]));
        assert_eq!(x.samples.len(), 3);
        assert_eq!((x.samples[0].t, x.samples[0].v), (0, 1.0));
        assert_eq!(x.samples[1].t, 60_000);
        assert!(is_stale_nan(x.samples[2].v));
        assert!(t.series[1].samples[0].v.is_nan());
    }

    #[test]
    fn errors_point_at_line_and_column() {
        let e = parse("0,x,a=1,1\n60,x,a=1,one\n").unwrap_err();
        assert_eq!((e.line, e.column), (2, 10));
        let e = parse("0,x,a=1,1\n0,x,a=1,2\n").unwrap_err();
        assert_eq!((e.line, e.column), (2, 1));
        assert!(e.message.contains("line 1"), "{}", e.message);
        let e = parse("0,x,a=1\n").unwrap_err();
        assert_eq!(e.line, 1);
        let e = parse("0,x,a=1;9=2,1\n").unwrap_err();
        assert_eq!((e.line, e.column), (1, 9));
        let e = parse("0,x,\"a=\"\"1\"\";b-c=2\",1\n").unwrap_err();
        assert_eq!((e.line, e.column), (1, 14));
        let e = parse("yesterday,x,,1\n").unwrap_err();
        assert_eq!((e.line, e.column), (1, 1));
        let e = parse("0,5x,,1\n").unwrap_err();
        assert_eq!((e.line, e.column), (1, 3));
    }

    #[test]
    fn empty_label_values_are_dropped() {
        let t = parse("0,x,a=;b=1,1\n60,x,b=1,2\n").unwrap();
        assert_eq!(t.series.len(), 1);
        assert_eq!(t.series[0].samples.len(), 2);
    }
}
