//! Which strings the YAML writer writes plain, and how it quotes the others: a string is
//! plain only when every YAML 1.1 and 1.2 reader takes it back as that same string
//! (docker-compose 1.29 reads YAML 1.1, where `yes`, `on`, `1_0` or `1:30` are not strings;
//! Prometheus and Alertmanager read YAML 1.2).

use std::fmt::Write;

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

/// Whether `s` is written plain (unquoted): only when every YAML 1.1 and 1.2 reader takes
/// it back as that same string.
pub(crate) fn plain(s: &str) -> bool {
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

pub(super) fn write_str(out: &mut String, s: &str) {
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
    use super::super::to_string;
    use proptest::prelude::*;
    use serde_json::Value;

    fn round_trip(v: &Value) {
        let text = to_string(v).unwrap();
        let back: Value =
            yaml_serde::from_str(&text).unwrap_or_else(|e| panic!("{e}: not YAML:\n{text}"));
        assert_eq!(&back, v, "YAML was:\n{text}");
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
