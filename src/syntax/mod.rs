//! Stage 1: source text → YAML value (as JSON, the schema's data model) plus a span index.
//!
//! YAML that JSON cannot hold (non-string keys, NaN, several documents) is rejected here,
//! as are duplicate keys and alias expansions past `yaml_serde`'s limits.

mod spans;

pub use spans::{Spans, escape_token};

use crate::diagnostic::{Diagnostic, Pos};
use crate::source::Source;
use serde_json::Value as Json;
use serde_yaml::Value as Yaml;

/// A parsed plan document: its value and where each part of it sits in the text.
#[derive(Debug, Clone)]
pub struct Document {
    pub value: Json,
    pub spans: Spans,
}

/// Parses `source` into a [`Document`], or every syntax-level finding.
pub fn parse(source: &Source) -> Result<Document, (Spans, Vec<Diagnostic>)> {
    let (spans, duplicates) = spans::index(&source.text);
    if !duplicates.is_empty() {
        return Err((spans, duplicates));
    }
    let yaml: Yaml = match serde_yaml::from_str(&source.text) {
        Ok(v) => v,
        Err(e) => return Err((spans, vec![yaml_error(&e)])),
    };
    let mut diags = Vec::new();
    let value = to_json(yaml, String::new(), &mut diags);
    if !value.is_object() && diags.is_empty() {
        diags.push(
            Diagnostic::error(
                "not-a-mapping",
                "",
                "a plan must be a mapping of keys such as `name:` and `phases:`",
            )
            .with_hint("start from plans/minimal.yaml"),
        );
    }
    if diags.is_empty() {
        Ok(Document { value, spans })
    } else {
        Err((spans, diags))
    }
}

fn yaml_error(e: &serde_yaml::Error) -> Diagnostic {
    let msg = e.to_string();
    // yaml_serde appends " at line L column C"; the position is reported separately.
    let msg = match msg.find(" at line ") {
        Some(i) => msg[..i].to_string(),
        None => msg,
    };
    let (code, hint) = if msg.contains("repetition limit") || msg.contains("recursion limit") {
        (
            "yaml-too-deep",
            "the document expands beyond the parser's limits (aliases repeated or nesting too deep); write the values out instead of nesting aliases",
        )
    } else if msg.contains("more than one document") {
        (
            "yaml-multiple-documents",
            "a plan file holds one YAML document; remove the extra `---`",
        )
    } else {
        (
            "yaml-syntax",
            "check indentation, quotes and brackets around this point",
        )
    };
    let pos = e.location().map_or(Pos { line: 1, col: 1 }, |l| Pos {
        line: l.line(),
        col: l.column(),
    });
    Diagnostic::error(code, "", format!("invalid YAML: {msg}"))
        .at_pos(pos)
        .with_hint(hint)
}

fn to_json(v: Yaml, pointer: String, diags: &mut Vec<Diagnostic>) -> Json {
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
                .map(|(i, v)| to_json(v, format!("{pointer}/{i}"), diags))
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
                        diags.push(
                            Diagnostic::error(
                                "yaml-complex-key",
                                pointer.clone(),
                                format!(
                                    "a mapping key must be a plain name, found {}",
                                    kind(&other)
                                ),
                            )
                            .with_hint("use a plain word as the key"),
                        );
                        continue;
                    }
                };
                let child = format!("{pointer}/{}", escape_token(&key));
                out.insert(key, to_json(v, child, diags));
            }
            Json::Object(out)
        }
        Yaml::Tagged(t) => {
            diags.push(
                Diagnostic::error(
                    "yaml-tag",
                    pointer.clone(),
                    format!("YAML tag `{}` is not supported in a plan", t.tag),
                )
                .with_hint("remove the `!tag`"),
            );
            to_json(t.value, pointer, diags)
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
