//! Stage 2: the JSON Schema check. `schemas/plan.schema.json` is the one source of truth for
//! a plan's structure; it is compiled into Rust when `plan` is built, and its custom formats
//! (`duration`, `share`, `threshold`, `gate`, `predicate`) are checked by the same parsers
//! that build the typed model, so the schema and the model cannot disagree on a scalar.
//!
//! Errors are rephrased for people: each points at the offending value's line, names what
//! was expected (the schema's `x-expected` text) and, for an unknown key, the nearest known
//! one.

use crate::diagnostic::Diagnostic;
use crate::model::{Duration, Gate, Network, Predicate, Resolver, Share, Threshold};
use crate::syntax::escape_token;
use jsonschema::ValidationError;
use jsonschema::error::{TypeKind, ValidationErrorKind};
use serde_json::Value;
use std::sync::OnceLock;

/// The plan schema's text, as shipped.
pub const PLAN_SCHEMA: &str = include_str!("../schemas/plan.schema.json");

/// The plan schema, compiled into Rust when `plan` is built: a start-up pays nothing for
/// it (compiling it at run time took 2 to 4 ms of every `plan validate`). Draft 7: every
/// keyword the schema uses, and the dialect editors' YAML support knows best. The custom
/// formats call the parsers that build the typed model.
#[jsonschema::validator(
    path = "schemas/plan.schema.json",
    draft = Draft7,
    validate_formats = true,
    formats = {
        "duration" => crate::schema::is_duration,
        "share" => crate::schema::is_share,
        "threshold" => crate::schema::is_threshold,
        "gate" => crate::schema::is_gate,
        "predicate" => crate::schema::is_predicate,
        "network" => crate::schema::is_network,
        "resolver" => crate::schema::is_resolver,
    },
    pattern_options = { engine = regex },
    methods = { is_valid = false, validate = false, iter_errors = true },
)]
struct PlanSchema;

/// Parses a scalar format; `Err` carries the message shown to the user.
fn format_check(format: &str, s: &str) -> Result<(), String> {
    match format {
        "duration" => Duration::parse(s).map(drop),
        "share" => Share::parse(s).map(drop),
        "threshold" => Threshold::parse(s).map(drop),
        "gate" => Gate::parse(s).map(drop),
        "predicate" => Predicate::parse(s).map(drop),
        "network" => Network::parse(s).map(drop),
        "resolver" => Resolver::parse(s).map(drop),
        _ => Ok(()),
    }
}

fn is_duration(s: &str) -> bool {
    format_check("duration", s).is_ok()
}

fn is_share(s: &str) -> bool {
    format_check("share", s).is_ok()
}

fn is_threshold(s: &str) -> bool {
    format_check("threshold", s).is_ok()
}

fn is_gate(s: &str) -> bool {
    format_check("gate", s).is_ok()
}

fn is_predicate(s: &str) -> bool {
    format_check("predicate", s).is_ok()
}

fn is_network(s: &str) -> bool {
    format_check("network", s).is_ok()
}

fn is_resolver(s: &str) -> bool {
    format_check("resolver", s).is_ok()
}

/// The schema as data, read only to explain a violation (its `x-expected` texts, its keys).
fn schema_value() -> &'static Value {
    static SCHEMA: OnceLock<Value> = OnceLock::new();
    SCHEMA.get_or_init(|| serde_json::from_str(PLAN_SCHEMA).expect("the embedded schema is JSON"))
}

/// The plan schema, as [`Explainer`] reads it.
fn plan_explainer() -> Explainer {
    Explainer {
        root: schema_value,
        document: "the plan",
        format: format_check,
    }
}

/// Checks `doc` against the plan schema and returns every violation.
pub fn check(doc: &Value) -> Vec<Diagnostic> {
    plan_explainer().explain(doc, PlanSchema::iter_errors(doc))
}

/// What turns a compiled validator's errors into findings for people: the schema as data
/// (its keys, `x-expected` texts and descriptions), what a whole document of it is called,
/// and the parsers behind its custom formats. One for the plan schema, one for the
/// scenario files' schema.
pub struct Explainer {
    /// The schema as data, parsed only when there is a violation to explain (a valid
    /// document, what a pre-commit hook sees, never pays for it).
    pub root: fn() -> &'static Value,
    /// The whole document in messages: `the plan`, `the scenario file`.
    pub document: &'static str,
    /// Checks a string in one of the schema's custom formats; `Err` is the message.
    pub format: fn(&str, &str) -> Result<(), String>,
}

impl Explainer {
    /// Rephrases every violation of `doc` that `errors` reports (the compiled validator's
    /// `iter_errors(doc)`).
    pub fn explain<'a>(
        &self,
        doc: &Value,
        errors: impl Iterator<Item = ValidationError<'a>>,
    ) -> Vec<Diagnostic> {
        let mut out = Vec::new();
        for e in errors {
            let schema = (self.root)();
            let pointer = e.instance_path().as_str().to_string();
            // The compiled validator reports a key refused by `propertyNames` as the string
            // check's own error: the key is its instance, the object's path its path.
            let refused_key = e.instance().as_str().is_some_and(|key| {
                doc.pointer(&pointer)
                    .and_then(Value::as_object)
                    .is_some_and(|o| o.contains_key(key))
            });
            if refused_key {
                out.push(bad_name(schema, &pointer, e.instance()));
                continue;
            }
            let owner = owner_of(schema, e.schema_path().as_str());
            out.extend(self.describe(owner, &pointer, e.instance(), e.kind()));
        }
        // A misspelt required key is reported once, as the unknown key with its suggestion.
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
        // The same value failing two keywords (say `pattern` and `maxLength`, or `pattern`
        // and `format: uri`) is one finding: the first.
        let mut seen = std::collections::HashSet::new();
        out.retain(|d| {
            let code = if d.code == "bad-format" {
                "bad-value"
            } else {
                d.code
            };
            seen.insert((d.pointer.clone(), code))
        });
        for d in &mut out {
            if d.hint.is_none() {
                d.hint = fallback_hint((self.root)(), &d.pointer);
            }
        }
        out
    }
}

/// What the schema says about the value at `pointer`: its expected form, else its
/// description.
fn fallback_hint(root: &Value, pointer: &str) -> Option<String> {
    let node = schema_for(root, pointer)?;
    if let Some(x) = node.get("x-expected").and_then(Value::as_str) {
        return Some(format!("expected {x}"));
    }
    let desc = parent_description(root, pointer).or_else(|| {
        node.get("description")
            .and_then(Value::as_str)
            .map(str::to_string)
    })?;
    let key = pointer.rsplit('/').next().unwrap_or_default();
    Some(
        if key.is_empty() || key.chars().all(|c| c.is_ascii_digit()) {
            desc
        } else {
            format!("`{}`: {desc}", key.replace("~1", "/").replace("~0", "~"))
        },
    )
}

/// The description written beside a `$ref` in the parent's `properties` (the referenced
/// definition's own description is more generic).
fn parent_description(root: &Value, pointer: &str) -> Option<String> {
    let cut = pointer.rfind('/')?;
    let key = pointer[cut + 1..].replace("~1", "/").replace("~0", "~");
    schema_for(root, &pointer[..cut])?
        .get("properties")?
        .get(&key)?
        .get("description")
        .and_then(Value::as_str)
        .map(str::to_string)
}

/// The schema object that owns the failing keyword: the keyword location minus its last
/// segment, followed through local `$ref`s.
fn owner_of<'a>(schema: &'a Value, keyword_path: &str) -> Option<&'a Value> {
    let owner_path = &keyword_path[..keyword_path.rfind('/')?];
    let mut node = schema;
    for raw in owner_path.split('/').skip(1) {
        let seg = raw.replace("~1", "/").replace("~0", "~");
        node = match node {
            Value::Object(m) => m.get(&seg)?,
            Value::Array(a) => a.get(seg.parse::<usize>().ok()?)?,
            _ => return None,
        };
        if seg == "$ref" {
            node = schema.pointer(node.as_str()?.strip_prefix('#')?)?;
        }
    }
    Some(node)
}

fn expected(schema_node: Option<&Value>, root: &Value) -> Option<String> {
    let n = schema_node?;
    let n = match n.get("$ref").and_then(Value::as_str) {
        Some(r) => root.pointer(r.strip_prefix('#')?)?,
        None => n,
    };
    n.get("x-expected")
        .and_then(Value::as_str)
        .map(str::to_string)
}

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

/// Where in the plan a key lives, for messages: `phases[1]`, `the plan`.
pub(crate) fn context(pointer: &str) -> String {
    context_in(pointer, "the plan")
}

/// Where in a document a key lives, for messages: `phases[1]`, or `whole` for the document
/// itself.
fn context_in(pointer: &str, whole: &str) -> String {
    if pointer.is_empty() {
        return whole.into();
    }
    let mut s = String::new();
    for seg in pointer.split('/').skip(1) {
        if seg.chars().all(|c| c.is_ascii_digit()) {
            s.push_str(&format!("[{seg}]"));
        } else {
            if !s.is_empty() {
                s.push('.');
            }
            s.push_str(&seg.replace("~1", "/").replace("~0", "~"));
        }
    }
    format!("`{s}`")
}

impl Explainer {
    fn describe(
        &self,
        owner: Option<&Value>,
        pointer: &str,
        instance: &Value,
        kind: &ValidationErrorKind,
    ) -> Vec<Diagnostic> {
        let root = (self.root)();
        let context = |pointer: &str| context_in(pointer, self.document);
        let d = |msg: String| Diagnostic::error("schema", pointer.to_string(), msg);
        match kind {
            ValidationErrorKind::AdditionalProperties { unexpected } => {
                let known: Vec<String> = owner_properties(root, pointer);
                unexpected
                    .iter()
                    .map(|k| {
                        let mut diag = Diagnostic::error(
                            "unknown-key",
                            format!("{pointer}/{}", escape_token(k)),
                            format!("unknown key `{k}` in {}", context(pointer)),
                        )
                        .at_key();
                        diag = match nearest(k, &known) {
                            Some(n) => diag.with_hint(format!("did you mean `{n}`?")),
                            None if !known.is_empty() => {
                                diag.with_hint(format!("known keys here: {}", known.join(", ")))
                            }
                            None => diag,
                        };
                        diag
                    })
                    .collect()
            }
            ValidationErrorKind::Required { property } => {
                let p = property.as_str().unwrap_or_default();
                let desc = property_description(root, pointer, p);
                let mut diag = Diagnostic::error(
                    "missing-key",
                    pointer.to_string(),
                    format!("missing required key `{p}` in {}", context(pointer)),
                );
                if let Some(desc) = desc {
                    diag = diag.with_hint(format!("`{p}`: {desc}"));
                }
                vec![diag]
            }
            ValidationErrorKind::Type { kind } => {
                let want = match kind {
                    TypeKind::Single(t) => t.to_string(),
                    TypeKind::Multiple(ts) => ts
                        .iter()
                        .map(|t| t.to_string())
                        .collect::<Vec<_>>()
                        .join(" or "),
                };
                let mut diag = d(format!(
                    "expected {}, found {}",
                    article(&want),
                    json_type(instance)
                ))
                .with_code("wrong-type");
                if let Some(x) = expected(owner, root) {
                    diag = diag.with_hint(format!("expected {x}"));
                }
                vec![diag]
            }
            ValidationErrorKind::Format { format } => {
                let msg = match instance.as_str().map(|s| (self.format)(format, s)) {
                    Some(Err(m)) => m,
                    _ => format!("`{}` is not a valid {format}", show(instance)),
                };
                let mut diag = d(msg).with_code(match format.as_str() {
                    "predicate" => "bad-predicate",
                    "duration" | "offset" => "bad-duration",
                    "share" => "bad-share",
                    "threshold" => "bad-threshold",
                    "gate" => "bad-gate",
                    _ => "bad-format",
                });
                if let Some(x) = expected(owner, root) {
                    diag = diag.with_hint(format!("expected {x}"));
                }
                vec![diag]
            }
            ValidationErrorKind::Pattern { .. }
            | ValidationErrorKind::Not { .. }
            | ValidationErrorKind::MaxLength { .. }
            | ValidationErrorKind::MinLength { .. } => {
                let mut diag =
                    d(format!("`{}` is not allowed here", show(instance))).with_code("bad-value");
                if let ValidationErrorKind::MaxLength { limit } = kind {
                    diag.message = format!("value is longer than {limit} characters");
                }
                if let Some(x) = expected(owner, root) {
                    diag = diag.with_hint(format!("expected {x}"));
                }
                vec![diag]
            }
            ValidationErrorKind::Enum { options } => {
                let opts: Vec<String> =
                    options.as_array().into_iter().flatten().map(show).collect();
                let mut diag = d(format!(
                    "`{}` is not one of: {}",
                    show(instance),
                    opts.join(", ")
                ))
                .with_code("bad-value");
                if let Some(n) = instance.as_str().and_then(|s| nearest(s, &opts)) {
                    diag = diag.with_hint(format!("did you mean `{n}`?"));
                } else if let Some(h) = fallback_hint(root, pointer) {
                    diag = diag.with_hint(h);
                }
                vec![diag]
            }
            ValidationErrorKind::Minimum { limit }
            | ValidationErrorKind::ExclusiveMinimum { limit } => {
                let msg = if matches!(kind, ValidationErrorKind::ExclusiveMinimum { .. }) {
                    format!("{} is too small: it must be above {limit}", show(instance))
                } else {
                    format!("{} is too small: the minimum is {limit}", show(instance))
                };
                vec![d(msg).with_code("out-of-range")]
            }
            ValidationErrorKind::Maximum { limit }
            | ValidationErrorKind::ExclusiveMaximum { limit } => {
                vec![
                    d(format!(
                        "{} is too large: the maximum is {limit}",
                        show(instance)
                    ))
                    .with_code("out-of-range"),
                ]
            }
            ValidationErrorKind::MinItems { limit } => {
                vec![
                    d(format!(
                        "{} needs at least {limit} item{}",
                        context(pointer),
                        if *limit == 1 { "" } else { "s" }
                    ))
                    .with_code("too-few"),
                ]
            }
            ValidationErrorKind::MaxItems { limit } => {
                vec![
                    d(format!(
                        "{} has {} items; at most {limit} are allowed",
                        context(pointer),
                        instance.as_array().map_or(0, Vec::len)
                    ))
                    .with_code("too-many"),
                ]
            }
            ValidationErrorKind::MinProperties { .. }
            | ValidationErrorKind::MaxProperties { .. } => {
                let known = owner_properties(root, pointer);
                let diag = if pointer.starts_with("/user_groups/") {
                    let n = instance.as_object().map_or(0, serde_json::Map::len);
                    d(format!("this condition has {n} `attribute: predicate` pairs; a condition is exactly one"))
                    .with_hint("put each pair on its own `- ` line: conditions on different attributes must all hold, on the same attribute any one")
                } else if known.is_empty() {
                    d("has the wrong number of entries".to_string())
                } else {
                    d(format!(
                        "{} sets {}; set exactly one of: {}",
                        context(pointer),
                        instance.as_object().map_or_else(
                            || "none".to_string(),
                            |m| {
                                if m.is_empty() {
                                    "none".to_string()
                                } else {
                                    m.keys()
                                        .map(|k| format!("`{k}`"))
                                        .collect::<Vec<_>>()
                                        .join(" and ")
                                }
                            }
                        ),
                        known.join(", ")
                    ))
                };
                vec![diag.with_code("one-of")]
            }
            ValidationErrorKind::Constant { expected_value } => {
                let key = pointer.rsplit('/').next().unwrap_or_default();
                vec![
                    d(format!(
                        "`{key}` can only be `{expected_value}`, not `{}`",
                        show(instance)
                    ))
                    .with_code("bad-value")
                    .with_hint(if key == "client_address" {
                        "write `client_address: true`, or use `cookie:` or `header:` instead"
                            .to_string()
                    } else {
                        format!("write `{key}: {expected_value}` or remove it")
                    }),
                ]
            }
            ValidationErrorKind::UniqueItems => {
                let items = instance.as_array().cloned().unwrap_or_default();
                let dup = (1..items.len()).find(|&i| items[..i].contains(&items[i]));
                match dup {
                    Some(i) => vec![
                        Diagnostic::error(
                            "duplicate-item",
                            format!("{pointer}/{i}"),
                            format!(
                                "`{}` is listed twice in {}",
                                show(&items[i]),
                                context(pointer)
                            ),
                        )
                        .with_hint("remove the repeated item"),
                    ],
                    None => vec![d("lists the same item twice".into()).with_code("duplicate-item")],
                }
            }
            other => vec![d(format!("invalid value `{}` ({other:?})", show(instance)))],
        }
    }
}

/// A key that `propertyNames` refuses, reported at the key. (The compiled validator
/// reports it as the string check's error, never as `PropertyNames`; see [`check`].)
fn bad_name(root: &Value, pointer: &str, key: &Value) -> Diagnostic {
    let name = show(key);
    // The owner's `propertyNames` schema, through its `$ref`.
    let names = schema_for(root, pointer)
        .and_then(|node| node.get("propertyNames"))
        .and_then(|n| match n.get("$ref").and_then(Value::as_str) {
            Some(r) => root.pointer(r.strip_prefix('#')?),
            None => Some(n),
        });
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
        format!("{pointer}/{}", escape_token(&name)),
        message,
    )
    .at_key()
    .with_hint(format!("expected {x}"))
}

trait WithCode {
    fn with_code(self, code: &'static str) -> Self;
}

impl WithCode for Diagnostic {
    fn with_code(mut self, code: &'static str) -> Self {
        self.code = code;
        self
    }
}

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

/// The schema node describing the instance at `pointer`, found by walking the document path
/// through `properties`, `items` and `additionalProperties` (and local `$ref`s).
fn schema_for<'a>(root: &'a Value, pointer: &str) -> Option<&'a Value> {
    let deref = |n: &'a Value| -> Option<&'a Value> {
        match n.get("$ref").and_then(Value::as_str) {
            Some(r) => root.pointer(r.strip_prefix('#')?),
            None => Some(n),
        }
    };
    let mut node = deref(root)?;
    for raw in pointer.split('/').skip(1) {
        let seg = raw.replace("~1", "/").replace("~0", "~");
        let next = node
            .get("properties")
            .and_then(|p| p.get(&seg))
            .or_else(|| node.get("items"))
            .or_else(|| node.get("additionalProperties").filter(|a| a.is_object()))?;
        node = deref(next)?;
    }
    Some(node)
}

fn owner_properties(root: &Value, pointer: &str) -> Vec<String> {
    schema_for(root, pointer)
        .and_then(|n| n.get("properties"))
        .and_then(Value::as_object)
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default()
}

fn property_description(root: &Value, pointer: &str, prop: &str) -> Option<String> {
    let node = schema_for(root, pointer)?.get("properties")?.get(prop)?;
    node.get("description")
        .and_then(Value::as_str)
        .map(str::to_string)
}

/// The known name closest to `word`, if close enough to be a likely typo.
pub fn nearest(word: &str, known: &[String]) -> Option<String> {
    known
        .iter()
        .map(|k| (levenshtein(&word.to_lowercase(), &k.to_lowercase()), k))
        .filter(|(d, k)| *d <= (k.chars().count().max(word.chars().count()) / 3).max(1))
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k.clone())
}

fn levenshtein(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, &cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != cb)).min(row[j] + 1).min(cur + 1);
            prev = cur;
        }
    }
    row[b.len()]
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// `doc` and variants of it that break it in one place each: an unknown key in every
    /// object, every string turned into a number, every other scalar into a string, every
    /// list emptied. For comparing two validators of one schema.
    pub(crate) fn variants(doc: &Value) -> Vec<Value> {
        fn walk(node: &Value, path: &mut Vec<String>, root: &Value, out: &mut Vec<Value>) {
            let pointer: String = path
                .iter()
                .map(|p| format!("/{}", escape_token(p)))
                .collect();
            let mut with = |f: &dyn Fn(&mut Value)| {
                let mut v = root.clone();
                if let Some(at) = v.pointer_mut(&pointer) {
                    f(at);
                    out.push(v);
                }
            };
            match node {
                Value::Object(map) => {
                    with(&|at| {
                        if let Some(o) = at.as_object_mut() {
                            o.insert("zz_unknown".into(), Value::from(1));
                        }
                    });
                    for (k, child) in map {
                        path.push(k.clone());
                        walk(child, path, root, out);
                        path.pop();
                    }
                }
                Value::Array(items) => {
                    with(&|at| *at = Value::Array(Vec::new()));
                    for (i, child) in items.iter().enumerate() {
                        path.push(i.to_string());
                        walk(child, path, root, out);
                        path.pop();
                    }
                }
                Value::String(_) => with(&|at| *at = Value::from(12345)),
                _ => with(&|at| *at = Value::from("x")),
            }
        }
        let mut out = vec![doc.clone()];
        walk(doc, &mut Vec::new(), doc, &mut out);
        out
    }

    /// The sorted, distinct instance paths of `errors`.
    pub(crate) fn places<'a>(
        errors: impl Iterator<Item = jsonschema::ValidationError<'a>>,
    ) -> Vec<String> {
        let mut v: Vec<String> = errors
            .map(|e| e.instance_path().as_str().to_string())
            .collect();
        v.sort();
        v.dedup();
        v
    }

    #[test]
    fn nearest_key() {
        let known: Vec<String> = ["traffic", "groups", "duration", "name"]
            .map(String::from)
            .to_vec();
        assert_eq!(nearest("trafic", &known).as_deref(), Some("traffic"));
        assert_eq!(nearest("duraton", &known).as_deref(), Some("duration"));
        assert_eq!(nearest("zzz", &known), None);
    }

    /// The validator generated at build time refuses exactly the values, at exactly the
    /// places, that the `jsonschema` run-time compiler does (which also checks the schema
    /// against the draft-07 meta-schema), over every plan and invalid fixture and the
    /// variants that break each in one place.
    #[test]
    fn the_compiled_schema_agrees_with_the_run_time_compiler() {
        let mut options = jsonschema::options()
            .with_draft(jsonschema::Draft::Draft7)
            .should_validate_formats(true);
        for name in [
            "duration",
            "share",
            "threshold",
            "gate",
            "predicate",
            "network",
            "resolver",
        ] {
            options = options.with_format(name, move |s: &str| format_check(name, s).is_ok());
        }
        let run_time = options
            .build(schema_value())
            .expect("a valid draft-07 schema");
        let mut files: Vec<_> = ["plans", "tests/invalid"]
            .iter()
            .flat_map(|d| std::fs::read_dir(d).expect("fixtures"))
            .map(|e| e.expect("entry").path())
            .filter(|p| p.extension().is_some_and(|e| e == "yaml") && p.is_file())
            .collect();
        files.sort();
        let (mut valid, mut invalid) = (0, 0);
        for path in &files {
            let Ok(source) = crate::source::Source::load(path) else {
                continue;
            };
            let Ok(doc) = crate::syntax::parse(&source) else {
                continue;
            };
            for v in variants(&doc.value) {
                let expected = places(run_time.iter_errors(&v));
                let got = places(PlanSchema::iter_errors(&v));
                assert_eq!(got, expected, "{}: {v}", path.display());
                if expected.is_empty() {
                    valid += 1;
                } else {
                    invalid += 1;
                }
            }
        }
        assert!(
            valid >= 4 && invalid >= 1000,
            "{valid} valid, {invalid} invalid"
        );
    }

    /// The schema states the same request-rate limit as [`crate::limits`].
    #[test]
    fn the_schema_caps_the_request_rate_at_the_limit() {
        let max = schema_value()
            .pointer("/properties/traffic/properties/requests_per_second/maximum")
            .and_then(Value::as_f64);
        assert_eq!(max, Some(crate::limits::MAX_REQUESTS_PER_SECOND));
    }
}
