//! Nothing unmodelled: every custom metric that a gate or rollback condition of the plan
//! reads needs a model under the scenario file's `baseline.metrics` (built-in metrics have
//! defaults). Without one the metric would have no value in any trial, its rules would
//! never fire, and the report would count them as rules that held: a false "0%" that looks
//! right. So the run stops before any trial, naming the metric, each rule that reads it
//! (with its line in the plan) and where in the scenario file the model goes.

use super::Place;
use super::spec::GaugeSpec;
use crate::check::CheckedPlan;
use crate::diagnostic::Diagnostic;
use crate::model::Unit;
use crate::pointer;
use crate::suggest::nearest;
use indexmap::IndexMap;

/// The code of the finding: a custom metric without a model.
pub(crate) const UNMODELLED_METRIC: &str = "unmodelled-metric";

/// A rule of the plan that reads a metric: its pointer in the plan, how people know it and
/// its threshold as written.
struct Reader {
    pointer: String,
    what: String,
    written: String,
}

/// The gates and rollback conditions of `plan` that read metric `m`, in the plan's order
/// (rollback conditions first, as they are written first in the report).
fn readers(plan: &CheckedPlan, m: usize) -> Vec<Reader> {
    let name = &plan.metrics[m].name;
    let mut out: Vec<Reader> = plan
        .rollbacks
        .iter()
        .enumerate()
        .filter(|(_, r)| r.metric == m)
        .map(|(i, r)| Reader {
            pointer: format!("/rollback_conditions/{i}"),
            what: format!("the rollback condition `{}`", r.id),
            written: r.written.clone(),
        })
        .collect();
    out.extend(plan.gates.iter().filter(|g| g.metric == m).map(|g| Reader {
        pointer: format!("/gates/{}", pointer::escape(name)),
        what: format!("the gate `{name}`"),
        written: g.written.clone(),
    }));
    out
}

/// What to write for a metric's model, in its unit.
fn example(name: &str, unit: Unit) -> String {
    let (mean, noise) = match unit {
        Unit::Ratio => ("LEVEL%", "SPREAD%"),
        _ => ("LEVEL", "SPREAD"),
    };
    format!("`{name}: {{ mean: {mean}, noise: {noise} }}`")
}

/// One finding per custom metric of `plan` that `metrics` (the file's `baseline.metrics`)
/// leaves without a model. In a file it is placed where the model goes; for the built-in
/// scenarios, at the first rule that reads the metric.
pub(super) fn check(
    plan: &CheckedPlan,
    metrics: &IndexMap<String, GaugeSpec>,
    place: Place<'_>,
    builtin: bool,
) -> Vec<Diagnostic> {
    let written: Vec<String> = metrics.keys().cloned().collect();
    let mut f = Vec::new();
    for (i, m) in plan.metrics.iter().enumerate() {
        // `targets_up` with its query overridden is still the targets up: the simulator
        // models it (1, or 0 after a crash), as it does the built-in one.
        if m.builtin.is_some() || m.name == "targets_up" || metrics.contains_key(&m.name) {
            continue;
        }
        let readers = readers(plan, i);
        let read_by = readers
            .iter()
            .map(|r| format!("{} (`{}`, {})", r.what, r.written, place(&r.pointer)))
            .collect::<Vec<_>>()
            .join(" and ");
        let unit = m.unit.name();
        let model = example(&m.name, m.unit);
        let d = if builtin {
            let at = readers.first().map_or(String::new(), |r| r.pointer.clone());
            Diagnostic::error(
                UNMODELLED_METRIC,
                at,
                format!(
                    "the custom metric `{}` has no model in the built-in scenarios (they model only the built-in metrics), so {read_by} could never fire",
                    m.name
                ),
            )
            .with_hint(format!(
                "give `plan simulate` a scenario file that models it, `--scenarios FILE`: start from simulations/default.yaml and add under `baseline:` `metrics:` {model}, its healthy mean and per-scrape noise in its unit ({unit})"
            ))
        } else {
            let at = if metrics.is_empty() {
                "/baseline".to_string()
            } else {
                "/baseline/metrics".to_string()
            };
            let d = Diagnostic::error(
                UNMODELLED_METRIC,
                at,
                format!(
                    "the custom metric `{}` of the plan `{}` has no model in this scenario file, so {read_by} could never fire",
                    m.name, plan.name
                ),
            )
            .at_key();
            match nearest(&m.name, &written) {
                Some(near) => d.with_hint(format!(
                    "did you mean `{}` where `{near}` is written under `baseline.metrics`?",
                    m.name
                )),
                None => d.with_hint(format!(
                    "add under `baseline:` `metrics:` {model}, its healthy mean and per-scrape noise in its unit ({unit})"
                )),
            }
        };
        f.push(d);
    }
    f
}
