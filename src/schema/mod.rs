//! Stage 2: the JSON Schema check. `schemas/plan.schema.json` is the one source of truth for
//! a plan's structure; it is compiled into Rust when `plan` is built, and its custom formats
//! (`duration`, `share`, `threshold`, `gate`, `predicate`, `network`, `resolver`, `silent-canary`) are
//! checked by the same parsers that build the typed model, so the schema and the model
//! cannot disagree on a scalar.
//!
//! This file holds the compiled validator and the format checks; [`explain`] turns its
//! violations into findings for people (for the scenario files' schema too).

mod explain;
mod lookup;

pub(crate) use explain::Explainer;

use crate::diagnostic::Diagnostic;
use crate::model::{
    Duration, ForDuration, Gate, Network, Predicate, Resolver, Share, SilentCanary, Threshold,
};
use serde_json::Value;
use std::sync::OnceLock;

/// The plan schema's text, as shipped (`plan schema` prints it).
pub(crate) const PLAN_SCHEMA: &str = include_str!("../../schemas/plan.schema.json");

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
        "for-duration" => crate::schema::is_for_duration,
        "share" => crate::schema::is_share,
        "threshold" => crate::schema::is_threshold,
        "gate" => crate::schema::is_gate,
        "predicate" => crate::schema::is_predicate,
        "network" => crate::schema::is_network,
        "resolver" => crate::schema::is_resolver,
        "silent-canary" => crate::schema::is_silent_canary,
    },
    pattern_options = { engine = regex },
    methods = { is_valid = false, validate = false, iter_errors = true },
)]
struct PlanSchema;

/// Checks `doc` against the plan schema and returns every violation, explained.
pub(crate) fn check(doc: &Value) -> Vec<Diagnostic> {
    Explainer {
        root: schema_value,
        document: "the plan",
        format: format_check,
    }
    .explain(doc, PlanSchema::iter_errors(doc))
}

/// Parses a scalar format; `Err` carries the message shown to the user.
fn format_check(format: &str, s: &str) -> Result<(), String> {
    match format {
        "duration" => Duration::parse(s).map(drop),
        "for-duration" => ForDuration::parse(s).map(drop),
        "share" => Share::parse(s).map(drop),
        "threshold" => Threshold::parse(s).map(drop),
        "gate" => Gate::parse(s).map(drop),
        "predicate" => Predicate::parse(s).map(drop),
        "network" => Network::parse(s).map(drop),
        "resolver" => Resolver::parse(s).map(drop),
        "silent-canary" => SilentCanary::parse(s).map(drop),
        _ => Ok(()),
    }
}

fn is_duration(s: &str) -> bool {
    format_check("duration", s).is_ok()
}

fn is_for_duration(s: &str) -> bool {
    format_check("for-duration", s).is_ok()
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

fn is_silent_canary(s: &str) -> bool {
    format_check("silent-canary", s).is_ok()
}

/// The schema as data, read only to explain a violation (its `x-expected` texts, its keys).
fn schema_value() -> &'static Value {
    static SCHEMA: OnceLock<Value> = OnceLock::new();
    SCHEMA.get_or_init(|| serde_json::from_str(PLAN_SCHEMA).expect("the embedded schema is JSON"))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::pointer;

    /// `doc` and variants of it that break it in one place each: an unknown key in every
    /// object, every string turned into a number, every other scalar into a string, every
    /// list emptied. For comparing two validators of one schema.
    pub(crate) fn variants(doc: &Value) -> Vec<Value> {
        fn walk(node: &Value, path: &mut Vec<String>, root: &Value, out: &mut Vec<Value>) {
            let pointer: String = path
                .iter()
                .map(|p| format!("/{}", pointer::escape(p)))
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
            "for-duration",
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
            // Files that are not plans' text or YAML (some invalid fixtures) are skipped.
            let Ok(text) = std::fs::read_to_string(path) else {
                continue;
            };
            let Ok(doc) = yaml_serde::from_str::<Value>(&text) else {
                continue;
            };
            for v in variants(&doc) {
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
