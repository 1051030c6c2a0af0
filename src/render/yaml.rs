//! Block-style YAML text for the typed structures the renderers build (compose overrides,
//! Prometheus rules and their unit tests, the Alertmanager config).
//!
//! A structure is serialised once, through serde, into a JSON value (fields in declaration
//! order), and written here. Why not a YAML library's emitter: `plan render` runs in
//! pre-commit hooks and CI, and the event-based emitter was a fifth of its time. Writing
//! the text here also puts every quoting decision in one place:
//!
//! - A string is written plain only when every YAML 1.1 and 1.2 reader takes it back as
//!   that same string: letters, digits and `_./-@`, not starting with a digit, `-` or `.`,
//!   and not a word that a reader resolves to something else (`true`, `no`, `null`, `~`,
//!   …), or a Prometheus duration (`30s`). Everything else is double-quoted, with escapes for `"`, `\`, every control
//!   character and the characters YAML treats as line breaks or byte-order marks (U+0085,
//!   U+2028, U+2029, U+FEFF), so no value can end its scalar or start a new key.
//! - Numbers, booleans and null are written as serde_json writes them (valid YAML).
//! - Empty mappings and sequences are `{}` and `[]`; sequences under a key are indented.

use serde::Serialize;
use serde_json::Value;
use std::fmt::Write;

/// The YAML text of `value`, ending in a newline.
pub fn to_string<T: Serialize + ?Sized>(value: &T) -> Result<String, serde_json::Error> {
    let value = serde_json::to_value(value)?;
    let mut out = String::with_capacity(4096);
    match &value {
        Value::Object(m) if !m.is_empty() => write_map(&mut out, m, 0),
        Value::Array(a) if !a.is_empty() => write_seq(&mut out, a, 0),
        v => {
            write_scalar(&mut out, v);
            out.push('\n');
        }
    }
    Ok(out)
}

fn indent(out: &mut String, n: usize) {
    out.extend(std::iter::repeat_n(' ', n));
}

/// Whether `v` is written on its key's or dash's own line.
fn inline(v: &Value) -> bool {
    match v {
        Value::Object(m) => m.is_empty(),
        Value::Array(a) => a.is_empty(),
        _ => true,
    }
}

/// A mapping's entries, each line at `at` spaces (the first one's indent already written
/// by the caller when it follows a dash).
fn write_map(out: &mut String, m: &serde_json::Map<String, Value>, at: usize) {
    for (i, (k, v)) in m.iter().enumerate() {
        if i > 0 {
            indent(out, at);
        }
        write_str(out, k);
        out.push(':');
        write_nested(out, v, at);
    }
}

/// A sequence's items, each `- ` at `at` spaces (the first one's indent already written).
fn write_seq(out: &mut String, a: &[Value], at: usize) {
    for (i, v) in a.iter().enumerate() {
        if i > 0 {
            indent(out, at);
        }
        out.push_str("- ");
        match v {
            Value::Object(m) if !m.is_empty() => write_map(out, m, at + 2),
            Value::Array(a) if !a.is_empty() => write_seq(out, a, at + 2),
            v => {
                write_scalar(out, v);
                out.push('\n');
            }
        }
    }
}

/// What follows `key:` for a mapping at `at` spaces.
fn write_nested(out: &mut String, v: &Value, at: usize) {
    if inline(v) {
        out.push(' ');
        write_scalar(out, v);
        out.push('\n');
        return;
    }
    out.push('\n');
    indent(out, at + 2);
    match v {
        Value::Object(m) => write_map(out, m, at + 2),
        Value::Array(a) => write_seq(out, a, at + 2),
        _ => unreachable!("scalars are inline"),
    }
}

fn write_scalar(out: &mut String, v: &Value) {
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => {
            let _ = write!(out, "{n}");
        }
        Value::String(s) => write_str(out, s),
        Value::Object(_) => out.push_str("{}"),
        Value::Array(_) => out.push_str("[]"),
    }
}

/// Words that some YAML reader (1.1 or 1.2) resolves to a boolean or null.
const RESERVED: [&str; 22] = [
    "y", "Y", "yes", "Yes", "YES", "n", "N", "no", "No", "NO", "true", "True", "TRUE", "false",
    "False", "FALSE", "on", "On", "ON", "off", "Off", "OFF",
];

/// Whether `s` is a Prometheus-style duration (`30s`, `1h30m`): plain, though it starts with
/// a digit, since no YAML reader takes it for a number or a date.
fn duration_like(s: &str) -> bool {
    let mut rest = s;
    while !rest.is_empty() {
        let digits = rest.len() - rest.trim_start_matches(|c: char| c.is_ascii_digit()).len();
        if digits == 0 {
            return false;
        }
        rest = &rest[digits..];
        let Some(unit) = ["ms", "s", "m", "h", "d", "w", "y"]
            .into_iter()
            .find(|u| rest.starts_with(u))
        else {
            return false;
        };
        rest = &rest[unit.len()..];
    }
    !s.is_empty()
}

fn plain(s: &str) -> bool {
    let Some(first) = s.chars().next() else {
        return false;
    };
    if first.is_ascii_digit() {
        return duration_like(s);
    }
    (first.is_ascii_alphabetic() || first == '_' || first == '/')
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "_./-@".contains(c))
        && !RESERVED.contains(&s)
        && !matches!(s, "null" | "Null" | "NULL")
}

fn write_str(out: &mut String, s: &str) {
    if plain(s) {
        out.push_str(s);
        return;
    }
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            '\u{85}' => out.push_str("\\N"),
            '\u{2028}' => out.push_str("\\L"),
            '\u{2029}' => out.push_str("\\P"),
            '\u{feff}' => out.push_str("\\uFEFF"),
            c if c.is_control() => {
                let _ = write!(out, "\\x{:02X}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn round_trip(v: &Value) {
        let text = to_string(v).unwrap();
        let back: Value =
            serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("{e}: not YAML:\n{text}"));
        assert_eq!(&back, v, "YAML was:\n{text}");
    }

    #[test]
    fn layout() {
        let v = serde_json::json!({
            "groups": [{"name": "a", "rules": [{"record": "x:y", "expr": "sum(rate(z[5m]))"}]}],
            "empty": {}, "none": [], "num": 3, "f": 0.1, "t": true, "nil": null,
            "nested": [[1, 2], []],
        });
        assert_eq!(
            to_string(&v).unwrap(),
            "groups:\n  - name: a\n    rules:\n      - record: \"x:y\"\n        expr: \"sum(rate(z[5m]))\"\n\
             empty: {}\nnone: []\nnum: 3\nf: 0.1\nt: true\nnil: null\nnested:\n  - - 1\n    - 2\n  - []\n"
        );
        round_trip(&v);
    }

    #[test]
    fn words_and_numbers_stay_strings() {
        for s in [
            "yes",
            "No",
            "on",
            "OFF",
            "y",
            "n",
            "true",
            "False",
            "null",
            "~",
            "",
            " ",
            "1",
            "1.5",
            "1e5",
            "0x1F",
            "0o17",
            "1_000",
            "2001-12-14",
            "1:20",
            ".inf",
            "-.inf",
            ".nan",
            "-",
            "- a",
            "? a",
            "a: b",
            "a #b",
            "#",
            "&a",
            "*a",
            "!tag",
            "|",
            ">",
            "%",
            "@",
            "`",
            "{}",
            "[]",
            "'",
            "\"",
            "a\nb",
            "\u{85}",
            "\u{2028}",
            "\u{2029}",
            "\u{feff}x",
            "\u{7f}",
            "\u{9f}",
            "\t",
            "\r\n",
            "é",
            "金丝雀",
            "30s",
            "1h30m",
            "5m",
            "1e5s",
        ] {
            round_trip(&Value::String(s.to_string()));
            round_trip(&serde_json::json!({ s: s }));
        }
    }

    #[test]
    fn hostile_values_round_trip() {
        for s in crate::render::hostile::corpus() {
            round_trip(&serde_json::json!({ "k": [s.clone(), { s.clone(): s }] }));
        }
    }

    proptest! {
        #[test]
        fn any_string_round_trips(s in "\\PC*|[ -~\\n\\t]{0,12}") {
            round_trip(&serde_json::json!({ "a": [{ s.clone(): s.clone() }, s] }));
        }
    }
}
