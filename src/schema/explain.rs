//! Schema violations explained to people. A compiled validator reports a keyword that
//! failed at an instance path; a person needs the value's line, what was expected there (the
//! schema's `x-expected` text or description) and, for a misspelt key or value, the nearest
//! known one. Each finding gets a stable code (`unknown-key`, `wrong-type`, `bad-duration`,
//! ...) that the golden tests and users' scripts rely on.
//!
//! One [`Explainer`] serves the plan schema and one the scenario files' schema.

use super::lookup::{deref, expected, known_keys, node_for, owner_of, property_description};
use crate::diagnostic::Diagnostic;
use crate::pointer;
use crate::suggest::nearest;
use jsonschema::ValidationError;
use jsonschema::error::{TypeKind, ValidationErrorKind};
use serde_json::Value;
use std::collections::HashSet;

/// What turns a compiled validator's errors into findings for people: the schema as data
/// (its keys, `x-expected` texts and descriptions), what a whole document of it is called,
/// and the parsers behind its custom formats.
pub(crate) struct Explainer {
    /// The schema as data, parsed only when there is a violation to explain (a valid
    /// document, what a pre-commit hook sees, never pays for it).
    pub(crate) root: fn() -> &'static Value,
    /// The whole document in messages: `the plan`, `the scenario file`.
    pub(crate) document: &'static str,
    /// Checks a string in one of the schema's custom formats; `Err` is the message.
    pub(crate) format: fn(&str, &str) -> Result<(), String>,
}

impl Explainer {
    /// Rephrases every violation of `doc` that `errors` reports (the compiled validator's
    /// `iter_errors(doc)`), one finding per value.
    pub(crate) fn explain<'a>(
        &self,
        doc: &Value,
        errors: impl Iterator<Item = ValidationError<'a>>,
    ) -> Vec<Diagnostic> {
        let mut out = Vec::new();
        for e in errors {
            let root = (self.root)();
            let pointer = e.instance_path().as_str();
            // The compiled validator reports a key refused by `propertyNames` as the string
            // check's own error: the key is its instance, the object's path its path.
            let refused_key = e.instance().as_str().is_some_and(|key| {
                doc.pointer(pointer)
                    .and_then(Value::as_object)
                    .is_some_and(|o| o.contains_key(key))
            });
            if refused_key {
                out.push(bad_name(root, pointer, e.instance()));
                continue;
            }
            let violation = Violation {
                root,
                owner: owner_of(root, e.schema_path().as_str()),
                document: self.document,
                format: self.format,
                pointer,
                instance: e.instance(),
            };
            out.extend(violation.describe(e.kind()));
        }
        drop_suggested_missing_keys(&mut out);
        drop_second_failures(&mut out);
        for d in &mut out {
            if d.hint.is_none() {
                d.hint = fallback_hint((self.root)(), &d.pointer);
            }
        }
        out
    }
}

/// A misspelt required key is reported once, as the unknown key with its suggestion: drops
/// the `missing-key` finding for a key that an `unknown-key` hint already suggests.
fn drop_suggested_missing_keys(out: &mut Vec<Diagnostic>) {
    let suggested: Vec<(String, String)> = out
        .iter()
        .filter(|d| d.code == "unknown-key")
        .filter_map(|d| {
            let parent = &d.pointer[..d.pointer.rfind('/')?];
            let hint = d.hint.as_deref()?;
            let key = hint.strip_prefix("did you mean `")?.strip_suffix("`?")?;
            Some((parent.to_string(), key.to_string()))
        })
        .collect();
    out.retain(|d| {
        d.code != "missing-key"
            || !suggested
                .iter()
                .any(|(p, k)| *p == d.pointer && d.message.contains(&format!("`{k}`")))
    });
}

/// The same value failing two keywords (say `pattern` and `maxLength`, or `pattern` and
/// `format: uri`) is one finding: the first.
fn drop_second_failures(out: &mut Vec<Diagnostic>) {
    let mut seen = HashSet::new();
    out.retain(|d| {
        let code = if d.code == "bad-format" {
            "bad-value"
        } else {
            d.code
        };
        seen.insert((d.pointer.clone(), code))
    });
}

/// What the schema says about the value at `pointer`: its expected form, else its
/// description (the one beside it in its parent's `properties` first).
fn fallback_hint(root: &Value, pointer: &str) -> Option<String> {
    let node = node_for(root, pointer)?;
    if let Some(x) = node.get("x-expected").and_then(Value::as_str) {
        return Some(format!("expected {x}"));
    }
    let beside = pointer.rfind('/').and_then(|cut| {
        property_description(
            root,
            &pointer[..cut],
            &pointer::unescape(&pointer[cut + 1..]),
        )
    });
    let desc = beside.or_else(|| {
        node.get("description")
            .and_then(Value::as_str)
            .map(str::to_string)
    })?;
    let key = pointer.rsplit('/').next().unwrap_or_default();
    Some(
        if key.is_empty() || key.chars().all(|c| c.is_ascii_digit()) {
            desc
        } else {
            format!("`{}`: {desc}", pointer::unescape(key))
        },
    )
}

/// A key that `propertyNames` refuses, reported at the key. (The compiled validator
/// reports it as the string check's error, never as `PropertyNames`.)
fn bad_name(root: &Value, pointer: &str, key: &Value) -> Diagnostic {
    let name = show(key);
    let names = node_for(root, pointer)
        .and_then(|node| node.get("propertyNames"))
        .and_then(|n| deref(root, n));
    let x = expected(names, root).unwrap_or_else(|| "a name".into());
    let too_long = names
        .and_then(|n| n.get("maxLength"))
        .and_then(Value::as_u64)
        .filter(|&max| name.chars().count() as u64 > max);
    let message = match too_long {
        Some(max) => format!("the name `{name}` is longer than {max} characters"),
        None => format!("`{name}` is not a valid name"),
    };
    Diagnostic::error(
        "bad-name",
        format!("{pointer}/{}", pointer::escape(&name)),
        message,
    )
    .at_key()
    .with_hint(format!("expected {x}"))
}

/// One failed keyword at one value, with what the schema says there.
struct Violation<'a> {
    root: &'a Value,
    /// The schema object holding the failed keyword.
    owner: Option<&'a Value>,
    /// The whole document in messages.
    document: &'a str,
    format: fn(&str, &str) -> Result<(), String>,
    pointer: &'a str,
    instance: &'a Value,
}

impl Violation<'_> {
    fn describe(&self, kind: &ValidationErrorKind) -> Vec<Diagnostic> {
        use ValidationErrorKind as K;
        match kind {
            K::AdditionalProperties { unexpected } => self.unknown_keys(unexpected),
            K::Required { property } => vec![self.missing_key(property)],
            K::Type { kind } => vec![self.wrong_type(kind)],
            K::Format { format } => vec![self.bad_format(format)],
            K::Pattern { .. } | K::Not { .. } | K::MinLength { .. } => {
                vec![self.not_allowed(None)]
            }
            K::MaxLength { limit } => vec![self.not_allowed(Some(*limit))],
            K::Enum { options } => vec![self.not_one_of(options)],
            K::Minimum { limit } => vec![self.too_small(limit, false)],
            K::ExclusiveMinimum { limit } => vec![self.too_small(limit, true)],
            K::Maximum { limit } | K::ExclusiveMaximum { limit } => vec![self.too_large(limit)],
            K::MinItems { limit } => vec![self.too_few(*limit)],
            K::MaxItems { limit } => vec![self.too_many(*limit)],
            K::MinProperties { .. } | K::MaxProperties { .. } => vec![self.not_one_key()],
            K::Constant { expected_value } => vec![self.not_the_constant(expected_value)],
            K::UniqueItems => vec![self.duplicate_item()],
            other => vec![self.error(
                "schema",
                format!("invalid value `{}` ({other:?})", show(self.instance)),
            )],
        }
    }

    /// A finding about the value itself.
    fn error(&self, code: &'static str, message: String) -> Diagnostic {
        Diagnostic::error(code, self.pointer.to_string(), message)
    }

    /// Where `pointer` points, for messages.
    fn place(&self, pointer: &str) -> String {
        pointer::human(pointer, self.document)
    }

    /// `d` with the owner's `x-expected` text as its hint, when it has one.
    fn with_expected(&self, d: Diagnostic) -> Diagnostic {
        match expected(self.owner, self.root) {
            Some(x) => d.with_hint(format!("expected {x}")),
            None => d,
        }
    }

    /// One finding per key, at the key, with the nearest known key or the list of them.
    fn unknown_keys(&self, unexpected: &[String]) -> Vec<Diagnostic> {
        let known = known_keys(self.root, self.pointer);
        unexpected
            .iter()
            .map(|k| {
                let d = Diagnostic::error(
                    "unknown-key",
                    format!("{}/{}", self.pointer, pointer::escape(k)),
                    format!("unknown key `{k}` in {}", self.place(self.pointer)),
                )
                .at_key();
                match nearest(k, &known) {
                    Some(n) => d.with_hint(format!("did you mean `{n}`?")),
                    None if !known.is_empty() => {
                        d.with_hint(format!("known keys here: {}", known.join(", ")))
                    }
                    None => d,
                }
            })
            .collect()
    }

    fn missing_key(&self, property: &Value) -> Diagnostic {
        let p = property.as_str().unwrap_or_default();
        let d = self.error(
            "missing-key",
            format!("missing required key `{p}` in {}", self.place(self.pointer)),
        );
        match property_description(self.root, self.pointer, p) {
            Some(desc) => d.with_hint(format!("`{p}`: {desc}")),
            None => d,
        }
    }

    fn wrong_type(&self, kind: &TypeKind) -> Diagnostic {
        let want = match kind {
            TypeKind::Single(t) => t.to_string(),
            TypeKind::Multiple(ts) => ts
                .iter()
                .map(|t| t.to_string())
                .collect::<Vec<_>>()
                .join(" or "),
        };
        self.with_expected(self.error(
            "wrong-type",
            format!(
                "expected {}, found {}",
                article(&want),
                json_type(self.instance)
            ),
        ))
    }

    /// A custom format's own message (the model's parser says what is wrong), else a
    /// generic one; the code names the format.
    fn bad_format(&self, format: &str) -> Diagnostic {
        let message = match self.instance.as_str().map(|s| (self.format)(format, s)) {
            Some(Err(m)) => m,
            _ => format!("`{}` is not a valid {format}", show(self.instance)),
        };
        let code = match format {
            "predicate" => "bad-predicate",
            "duration" | "for-duration" | "offset" | "scrape-offset" => "bad-duration",
            "share" => "bad-share",
            "threshold" => "bad-threshold",
            "gate" => "bad-gate",
            _ => "bad-format",
        };
        self.with_expected(self.error(code, message))
    }

    /// A string the schema's `pattern`, `not` or length refuses; `max_length` when it is
    /// too long.
    fn not_allowed(&self, max_length: Option<u64>) -> Diagnostic {
        let message = match max_length {
            Some(limit) => format!("value is longer than {limit} characters"),
            None => format!("`{}` is not allowed here", show(self.instance)),
        };
        self.with_expected(self.error("bad-value", message))
    }

    fn not_one_of(&self, options: &Value) -> Diagnostic {
        let opts: Vec<String> = options.as_array().into_iter().flatten().map(show).collect();
        let d = self.error(
            "bad-value",
            format!(
                "`{}` is not one of: {}",
                show(self.instance),
                opts.join(", ")
            ),
        );
        if let Some(n) = self.instance.as_str().and_then(|s| nearest(s, &opts)) {
            d.with_hint(format!("did you mean `{n}`?"))
        } else if let Some(h) = fallback_hint(self.root, self.pointer) {
            d.with_hint(h)
        } else {
            d
        }
    }

    fn too_small(&self, limit: &Value, exclusive: bool) -> Diagnostic {
        let message = if exclusive {
            format!(
                "{} is too small: it must be above {limit}",
                show(self.instance)
            )
        } else {
            format!(
                "{} is too small: the minimum is {limit}",
                show(self.instance)
            )
        };
        self.error("out-of-range", message)
    }

    fn too_large(&self, limit: &Value) -> Diagnostic {
        self.error(
            "out-of-range",
            format!(
                "{} is too large: the maximum is {limit}",
                show(self.instance)
            ),
        )
    }

    fn too_few(&self, limit: u64) -> Diagnostic {
        self.error(
            "too-few",
            format!(
                "{} needs at least {limit} item{}",
                self.place(self.pointer),
                if limit == 1 { "" } else { "s" }
            ),
        )
    }

    fn too_many(&self, limit: u64) -> Diagnostic {
        self.error(
            "too-many",
            format!(
                "{} has {} items; at most {limit} are allowed",
                self.place(self.pointer),
                self.instance.as_array().map_or(0, Vec::len)
            ),
        )
    }

    /// A mapping that must set exactly one of its keys (a user-group condition, a sticky
    /// choice) sets none or several.
    fn not_one_key(&self) -> Diagnostic {
        let known = known_keys(self.root, self.pointer);
        if self.pointer.starts_with("/user_groups/") {
            let n = self.instance.as_object().map_or(0, serde_json::Map::len);
            self.error("one-of", format!("this condition has {n} `attribute: predicate` pairs; a condition is exactly one"))
                .with_hint("put each pair on its own `- ` line: conditions on different attributes must all hold, on the same attribute any one")
        } else if known.is_empty() {
            self.error("one-of", "has the wrong number of entries".to_string())
        } else {
            let set = match self.instance.as_object() {
                Some(m) if !m.is_empty() => m
                    .keys()
                    .map(|k| format!("`{k}`"))
                    .collect::<Vec<_>>()
                    .join(" and "),
                _ => "none".to_string(),
            };
            self.error(
                "one-of",
                format!(
                    "{} sets {set}; set exactly one of: {}",
                    self.place(self.pointer),
                    known.join(", ")
                ),
            )
        }
    }

    fn not_the_constant(&self, expected_value: &Value) -> Diagnostic {
        let key = self.pointer.rsplit('/').next().unwrap_or_default();
        self.error(
            "bad-value",
            format!(
                "`{key}` can only be `{expected_value}`, not `{}`",
                show(self.instance)
            ),
        )
        .with_hint(if key == "client_address" {
            "write `client_address: true`, or use `cookie:` or `header:` instead".to_string()
        } else {
            format!("write `{key}: {expected_value}` or remove it")
        })
    }

    /// The first item listed twice, at that item.
    fn duplicate_item(&self) -> Diagnostic {
        let items = self.instance.as_array().map_or(&[][..], Vec::as_slice);
        match (1..items.len()).find(|&i| items[..i].contains(&items[i])) {
            Some(i) => Diagnostic::error(
                "duplicate-item",
                format!("{}/{i}", self.pointer),
                format!(
                    "`{}` is listed twice in {}",
                    show(&items[i]),
                    self.place(self.pointer)
                ),
            )
            .with_hint("remove the repeated item"),
            None => self.error("duplicate-item", "lists the same item twice".into()),
        }
    }
}

/// A JSON type in the plan's words: `a mapping`, `a list`, `nothing (null)`.
fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "nothing (null)",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}

/// A value as quoted in a message: control characters escaped, whole numbers as digits, at
/// most 60 characters.
fn show(v: &Value) -> String {
    let s = match v {
        Value::String(s) if s.chars().any(char::is_control) => {
            s.chars().flat_map(char::escape_default).collect()
        }
        Value::String(s) => s.clone(),
        // A whole number written as a float (`1e16`, `1e8`) reads best as digits.
        Value::Number(n) if n.is_f64() => match n.as_f64() {
            Some(f) if f.fract() == 0.0 && f.abs() < 1e21 => format!("{f:.0}"),
            _ => n.to_string(),
        },
        other => other.to_string(),
    };
    if s.chars().count() > 60 {
        format!("{}…", s.chars().take(60).collect::<String>())
    } else {
        s
    }
}

/// A JSON Schema type name in the plan's words, with its article: `a mapping`, `an integer`.
fn article(t: &str) -> String {
    let t = match t {
        "object" => "mapping",
        "array" => "list",
        other => other,
    };
    let t = t.replace("object", "mapping").replace("array", "list");
    if t.starts_with(['a', 'e', 'i', 'o', 'u']) {
        format!("an {t}")
    } else {
        format!("a {t}")
    }
}
