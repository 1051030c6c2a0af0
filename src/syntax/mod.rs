//! Stage 1: source text → YAML value (as JSON, the schema's data model) plus a span index.
//!
//! YAML that JSON cannot hold (non-string keys, NaN, several documents) is rejected here,
//! as are duplicate keys and alias expansions past `yaml_serde`'s limits. The span index
//! also places every later stage's findings at their line and column ([`locate()`]).

pub(crate) mod edit;
mod locate;
mod scalar;
mod spans;

pub(crate) use locate::locate;
pub use spans::Spans;

use crate::diagnostic::{Diagnostic, Pos};
use crate::pointer;
use crate::source::{Kind, Source};
use serde_json::Value as Json;
use yaml_serde::Value as Yaml;

/// A parsed plan document: its value and where each part of it sits in the text.
#[derive(Debug, Clone)]
pub struct Document {
    pub value: Json,
    pub(crate) spans: Spans,
}

/// Parses `source` into a [`Document`], or every syntax-level finding.
pub fn parse(source: &Source) -> Result<Document, (Spans, Vec<Diagnostic>)> {
    let (spans, duplicates) = spans::index(&source.text);
    if !duplicates.is_empty() {
        return Err((spans, duplicates));
    }
    let yaml: Yaml = match yaml_serde::from_str(&source.text) {
        Ok(v) => v,
        Err(e) => {
            let d = yaml_error(&e, &source.text, &spans, source.kind);
            return Err((spans, vec![d]));
        }
    };
    let mut diags = Vec::new();
    let mut odd_keys = spans.odd_keys.iter().copied();
    let value = to_json(yaml, String::new(), &mut diags, &mut odd_keys, source.kind);
    if value.is_null() && diags.is_empty() {
        diags.push(
            Diagnostic::error(
                "not-a-mapping",
                "",
                match source.kind {
                    Kind::Plan => "the file holds no plan, only comments or blank lines",
                    Kind::Scenarios => "the file holds no scenarios, only comments or blank lines",
                },
            )
            .with_hint(format!("start from {}", source.kind.example())),
        );
    } else if !value.is_object() && diags.is_empty() {
        diags.push(
            Diagnostic::error(
                "not-a-mapping",
                "",
                format!(
                    "a {} must be a mapping of keys such as {}, not {}",
                    source.kind.noun(),
                    match source.kind {
                        Kind::Plan => "`name:` and `phases:`",
                        Kind::Scenarios => "`traffic:` and `scenarios:`",
                    },
                    json_kind(&value)
                ),
            )
            .with_hint(format!("start from {}", source.kind.example())),
        );
    }
    if diags.is_empty() {
        Ok(Document { value, spans })
    } else {
        Err((spans, diags))
    }
}

fn json_kind(v: &Json) -> &'static str {
    match v {
        Json::Array(_) => "a list",
        Json::String(_) => "a single string",
        Json::Number(_) => "a single number",
        Json::Bool(_) => "a single boolean",
        _ => "a value",
    }
}

/// The line of the second document's `---` (the first marker after some content).
fn second_document(text: &str) -> Option<Pos> {
    let mut content = false;
    for (i, line) in text.lines().enumerate() {
        let t = line.trim_end();
        if t == "---" || t.starts_with("--- ") || t == "..." {
            if content {
                return Some(Pos {
                    line: i + 1,
                    col: 1,
                });
            }
        } else if !t.trim_start().is_empty() && !t.trim_start().starts_with('#') {
            content = true;
        }
    }
    None
}

fn yaml_error(e: &yaml_serde::Error, text: &str, spans: &Spans, kind: Kind) -> Diagnostic {
    let msg = e.to_string();
    // yaml_serde appends " at line L column C"; the position is reported separately.
    let msg = match msg.find(" at line ") {
        Some(i) => msg[..i].to_string(),
        None => msg,
    };
    let located = e.location().map(|l| Pos {
        line: l.line(),
        col: l.column(),
    });
    let (code, msg, hint, pos) = if msg.contains("repetition limit") {
        (
            "yaml-too-deep",
            "invalid YAML: its aliases expand past the parser's limit (an \"alias bomb\")"
                .to_string(),
            format!(
                "a {} needs no aliases nested like this; write the values out",
                kind.noun()
            ),
            spans.first_alias.or(located),
        )
    } else if msg.contains("recursion limit") {
        (
            "yaml-too-deep",
            "invalid YAML: nested deeper than the parser's limit".to_string(),
            format!(
                "a {} is only a few levels deep; look for runaway brackets or indentation",
                kind.noun()
            ),
            located,
        )
    } else if msg.contains("more than one document") {
        (
            "yaml-multiple-documents",
            "invalid YAML: the file holds more than one document".to_string(),
            format!(
                "a {} holds one YAML document; remove the `---` and what follows, or split it into two files",
                kind.file()
            ),
            second_document(text).or(located),
        )
    } else if msg.contains("unexpected end of stream") {
        (
            "yaml-syntax",
            format!("invalid YAML: {msg}"),
            "the file ended inside a quoted string, a `[...]` list or a `{...}` mapping; look above for the one left open"
                .to_string(),
            located,
        )
    } else {
        (
            "yaml-syntax",
            format!("invalid YAML: {msg}"),
            "check indentation, quotes and brackets around this point".to_string(),
            located,
        )
    };
    Diagnostic::error(code, "", msg)
        .at_pos(pos.unwrap_or(Pos { line: 1, col: 1 }))
        .with_hint(hint)
}

/// Converts a YAML value to JSON. `odd_keys` yields, in document order, the positions of the
/// keys the span index saw as non-scalar or null, so each complex key is reported where it is.
fn to_json(
    v: Yaml,
    pointer: String,
    diags: &mut Vec<Diagnostic>,
    odd_keys: &mut dyn Iterator<Item = Pos>,
    file: Kind,
) -> Json {
    match v {
        Yaml::Null => Json::Null,
        Yaml::Bool(b) => Json::Bool(b),
        Yaml::Number(n) => {
            if let Some(i) = n.as_i64() {
                Json::from(i)
            } else if let Some(u) = n.as_u64() {
                Json::from(u)
            } else {
                let f = n.as_f64().unwrap_or(f64::NAN);
                serde_json::Number::from_f64(f)
                    .map(Json::Number)
                    .unwrap_or_else(|| {
                        diags.push(
                            Diagnostic::error(
                                "yaml-not-finite",
                                pointer.clone(),
                                format!("`{n}` is not a finite number"),
                            )
                            .with_hint("write a finite number"),
                        );
                        Json::Null
                    })
            }
        }
        Yaml::String(s) => Json::String(s),
        Yaml::Sequence(items) => Json::Array(
            items
                .into_iter()
                .enumerate()
                .map(|(i, v)| to_json(v, format!("{pointer}/{i}"), diags, odd_keys, file))
                .collect(),
        ),
        Yaml::Mapping(map) => {
            let mut out = serde_json::Map::with_capacity(map.len());
            for (k, v) in map {
                let key = match k {
                    Yaml::String(s) => s,
                    Yaml::Number(n) => n.to_string(),
                    Yaml::Bool(b) => b.to_string(),
                    other => {
                        let mut d = Diagnostic::error(
                            "yaml-complex-key",
                            pointer.clone(),
                            format!("a mapping key must be a plain name, found {}", kind(&other)),
                        )
                        .with_hint("use a plain word as the key, such as `beta_users:`");
                        if let Some(p) = odd_keys.next() {
                            d = d.at_pos(p);
                        }
                        diags.push(d);
                        // The span index skips what is inside a complex key but indexes its
                        // value: walk the value so later odd keys keep their positions.
                        let _ = to_json(v, pointer.clone(), &mut Vec::new(), odd_keys, file);
                        continue;
                    }
                };
                let child = format!("{pointer}/{}", pointer::escape(&key));
                out.insert(key, to_json(v, child, diags, odd_keys, file));
            }
            Json::Object(out)
        }
        Yaml::Tagged(t) => {
            diags.push(
                Diagnostic::error(
                    "yaml-tag",
                    pointer.clone(),
                    format!("YAML tag `{}` is not supported in a {}", t.tag, file.noun()),
                )
                .with_hint("remove the `!tag`"),
            );
            to_json(t.value, pointer, diags, odd_keys, file)
        }
    }
}

fn kind(v: &Yaml) -> &'static str {
    match v {
        Yaml::Null => "null",
        Yaml::Sequence(_) => "a list",
        Yaml::Mapping(_) => "a mapping",
        _ => "a value",
    }
}
