//! The scenario files' JSON Schema, `schemas/scenarios.schema.json`: compiled into Rust when
//! `plan` is built, as the plan schema is, and explained to people by the same
//! [`Explainer`] (line and column, stable codes, `x-expected` hints, did-you-mean for
//! unknown keys). Its two duration formats are checked by the parsers that read the
//! durations, so the schema and the simulation cannot disagree on one.

use crate::diagnostic::Diagnostic;
use crate::limits::MAX_SCENARIO_DURATION_MS;
use crate::model::parse_millis;
use crate::schema::Explainer;
use serde_json::Value;
use std::sync::OnceLock;

/// The scenario schema's text, as shipped (`plan schema --scenarios` prints it).
pub(crate) const SCENARIOS_SCHEMA: &str = include_str!("../../../schemas/scenarios.schema.json");

#[jsonschema::validator(
    path = "schemas/scenarios.schema.json",
    draft = Draft7,
    validate_formats = true,
    formats = {
        "duration" => crate::sim::scenario::schema::is_duration,
        "offset" => crate::sim::scenario::schema::is_offset,
        "scrape-offset" => crate::sim::scenario::schema::is_scrape_offset,
    },
    pattern_options = { engine = regex },
    methods = { is_valid = false, validate = false, iter_errors = true },
)]
struct ScenarioSchema;

/// Milliseconds of a scenario file's duration: positive (`ramp`, `every`, `lasting`, a
/// latency `median`) or, for an `offset` (a fault's `onset`), zero too; never past
/// [`MAX_SCENARIO_DURATION_MS`].
pub(crate) fn millis(s: &str, zero_allowed: bool) -> Result<u64, String> {
    let ms = parse_millis(s)?;
    if ms == 0 && !zero_allowed {
        return Err(format!("`{s}` is zero; a duration must be positive"));
    }
    if ms > MAX_SCENARIO_DURATION_MS {
        return Err(format!(
            "`{s}` is longer than a year (`1y`), the longest duration a scenario file takes"
        ));
    }
    Ok(ms)
}

fn format_check(format: &str, s: &str) -> Result<(), String> {
    match format {
        "duration" => millis(s, false).map(drop),
        "offset" => millis(s, true).map(drop),
        // `exposition.scrape_offset`: drawn per trial, or fixed.
        "scrape-offset" if s == "random" => Ok(()),
        "scrape-offset" => millis(s, true).map(drop),
        _ => Ok(()),
    }
}

fn is_duration(s: &str) -> bool {
    format_check("duration", s).is_ok()
}

fn is_offset(s: &str) -> bool {
    format_check("offset", s).is_ok()
}

fn is_scrape_offset(s: &str) -> bool {
    format_check("scrape-offset", s).is_ok()
}

/// The schema as data, read only to explain a violation.
fn schema_value() -> &'static Value {
    static SCHEMA: OnceLock<Value> = OnceLock::new();
    SCHEMA.get_or_init(|| {
        serde_json::from_str(SCENARIOS_SCHEMA).expect("the embedded schema is JSON")
    })
}

/// Checks a scenario document against the schema and returns every violation.
pub(crate) fn check(doc: &Value) -> Vec<Diagnostic> {
    Explainer {
        root: schema_value,
        document: "the scenario file",
        format: format_check,
    }
    .explain(doc, ScenarioSchema::iter_errors(doc))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::limits::{MAX_GAUGE_VALUE, MAX_REQUESTS_PER_SECOND, MAX_SCENARIOS, MAX_TRIALS};
    use crate::schema::tests::{places, variants};

    /// The validator generated at build time agrees with the `jsonschema` run-time compiler
    /// (which also checks the schema against the draft-07 meta-schema) on every example in
    /// `simulations/`, every fixture in `tests/invalid-scenarios/` and the variants that
    /// break each in one place.
    #[test]
    fn the_compiled_schema_agrees_with_the_run_time_compiler() {
        let mut options = jsonschema::options()
            .with_draft(jsonschema::Draft::Draft7)
            .should_validate_formats(true);
        for name in ["duration", "offset", "scrape-offset"] {
            options = options.with_format(name, move |s: &str| format_check(name, s).is_ok());
        }
        let run_time = options
            .build(schema_value())
            .expect("a valid draft-07 schema");
        let mut files: Vec<_> = ["simulations", "tests/invalid-scenarios"]
            .iter()
            .flat_map(|d| std::fs::read_dir(d).expect("examples"))
            .map(|e| e.expect("entry").path())
            .filter(|p| p.extension().is_some_and(|e| e == "yaml") && p.is_file())
            .collect();
        files.sort();
        let mut checked = 0;
        for path in &files {
            let Ok(source) = crate::source::Source::load_as(path, crate::source::Kind::Scenarios)
            else {
                continue;
            };
            let Ok(doc) = crate::syntax::parse(&source) else {
                continue;
            };
            for v in variants(&doc.value) {
                let expected = places(run_time.iter_errors(&v));
                let got = places(ScenarioSchema::iter_errors(&v));
                assert_eq!(got, expected, "{}: {v}", path.display());
                checked += usize::from(!expected.is_empty());
            }
        }
        assert!(checked >= 300, "only {checked} invalid variants");
    }

    /// The limits the schema states are the ones the code enforces.
    #[test]
    fn the_schema_states_the_limits() {
        let s = schema_value();
        let at = |p: &str| s.pointer(p).and_then(Value::as_f64).expect(p);
        assert_eq!(at("/properties/trials/maximum"), MAX_TRIALS as f64);
        assert_eq!(
            at("/properties/traffic/properties/requests_per_second/maximum"),
            MAX_REQUESTS_PER_SECOND
        );
        assert_eq!(
            at("/$defs/fault/properties/above_rps/maximum"),
            MAX_REQUESTS_PER_SECOND
        );
        assert_eq!(at("/properties/scenarios/maxItems"), MAX_SCENARIOS as f64);
        assert_eq!(at("/$defs/amount/maximum"), MAX_GAUGE_VALUE);
        assert_eq!(
            at("/$defs/behaviour/properties/buckets/items/maximum"),
            (MAX_SCENARIO_DURATION_MS / 1000) as f64
        );
    }

    #[test]
    fn durations_are_bounded_and_never_wrap() {
        assert_eq!(millis("1y", false), Ok(MAX_SCENARIO_DURATION_MS));
        assert_eq!(millis("0s", true), Ok(0));
        assert!(millis("0s", false).unwrap_err().contains("zero"));
        for long in ["1y1ms", "53w", "500000000y", "999999999999d"] {
            assert!(millis(long, true).is_err(), "{long}");
        }
        assert!(millis("1h30", true).is_err());
    }
}
