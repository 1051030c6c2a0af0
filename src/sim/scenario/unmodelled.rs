//! Nothing unmodelled: every custom metric that a gate or rollback condition of the plan
//! reads needs a model (built-in metrics have defaults): either of the metric itself, a
//! gauge under the scenario file's `baseline.metrics`, or of every series its query reads,
//! under `baseline.series` (the simulator then evaluates the query over them). Without one the metric would have no value in any trial, its rules would
//! never fire, and the report would count them as rules that held: a false "0%" that looks
//! right. So the run stops before any trial, naming the metric, each rule that reads it
//! (with its line in the plan) and where in the scenario file the model goes.

use super::spec::GaugeSpec;
use super::{Place, SeriesModel};
use crate::check::CheckedPlan;
use crate::diagnostic::Diagnostic;
use crate::model::Unit;
use crate::pointer;
use crate::prom::engine;
use crate::promql::{MetricExpr, Track};
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

/// The metric names a custom query reads (on the canary), in source order, each once; None
/// when the query is not one the engine evaluates (`plan validate` reports it) or selects
/// series without naming them (`{__name__=~"..."}`), so that its series cannot be known.
pub(crate) fn query_series(expr: &MetricExpr) -> Option<(engine::Expr, Vec<String>)> {
    let MetricExpr::Custom(_) = expr else {
        return None;
    };
    let program = engine::program(&expr.promql(Some(Track::Canary))).ok()?;
    let mut names: Vec<String> = Vec::new();
    for (sel, _) in program.selectors() {
        let name = sel.name.clone()?;
        if !names.contains(&name) {
            names.push(name);
        }
    }
    Some((program, names))
}

/// Whether the query of a custom metric reads only series that `series` models (and at
/// least one).
pub(crate) fn series_modelled(expr: &MetricExpr, series: &[SeriesModel]) -> bool {
    query_series(expr).is_some_and(|(_, names)| {
        !names.is_empty() && names.iter().all(|n| series.iter().any(|m| m.gives(n)))
    })
}

/// Whether the query of `expr` reads only series written under `refused` (models refused
/// for errors of their own, already reported), a histogram's `_bucket` and `_count`
/// included.
fn reads_only(expr: &MetricExpr, refused: &[String]) -> bool {
    let written = |n: &str| {
        refused.iter().any(|w| {
            n.strip_prefix(w.as_str())
                .is_some_and(|rest| matches!(rest, "" | "_bucket" | "_count"))
        })
    };
    !refused.is_empty()
        && query_series(expr).is_some_and(|(_, names)| names.iter().all(|n| written(n)))
}

/// One finding per custom metric of `plan` that `metrics` (the file's `baseline.metrics`)
/// and `series` (its `baseline.series`) leave without a model. In a file it is placed where the model goes; for the built-in
/// scenarios, at the first rule that reads the metric.
pub(super) fn check(
    plan: &CheckedPlan,
    metrics: &IndexMap<String, GaugeSpec>,
    (series, refused): (&[SeriesModel], &[String]),
    place: Place<'_>,
    builtin: bool,
) -> Vec<Diagnostic> {
    let written: Vec<String> = metrics.keys().cloned().collect();
    let mut f = Vec::new();
    for (i, m) in plan.metrics.iter().enumerate() {
        if metrics.contains_key(&m.name) && series_modelled(&m.expr, series) {
            f.push(
                Diagnostic::warning(
                    "gauge-over-series",
                    format!("/baseline/metrics/{}", pointer::escape(&m.name)),
                    format!(
                        "`{}` has a gauge model here and every series its query reads is modelled under `baseline.series`: the gauge wins, so the query is not evaluated and faults that move those series do not move `{}`",
                        m.name, m.name
                    ),
                )
                .at_key()
                .with_hint("remove the gauge model to compute the metric from its series, or remove the series models it makes unused"),
            );
        }
        // `targets_up` with its query overridden is still the targets up: the simulator
        // models it (1, or 0 after a crash), as it does the built-in one.
        if !m.is_custom()
            || m.name == "targets_up"
            || metrics.contains_key(&m.name)
            || series_modelled(&m.expr, series)
            || reads_only(&m.expr, refused)
        {
            continue;
        }
        // The series its query reads that have no model (when it names them).
        let missing: Vec<String> = query_series(&m.expr)
            .map(|(_, names)| {
                names
                    .into_iter()
                    .filter(|n| !series.iter().any(|s| s.gives(n)))
                    .collect()
            })
            .unwrap_or_default();
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
                "give `plan simulate` a scenario file that models it, `--scenarios FILE`: start from simulations/default.yaml and add under `baseline:` `series:` a model of each series its query reads{}, or `metrics:` {model}, its healthy mean and per-scrape noise in its unit ({unit})",
                names_of(&missing)
            ))
        } else {
            let at = if !series.is_empty() && !missing.is_empty() {
                "/baseline/series".to_string()
            } else if metrics.is_empty() {
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
                None if !missing.is_empty() => d.with_hint(format!(
                    "model each series its query reads under `baseline:` `series:`{}: `NAME: {{ counter: {{ per_request: RATIO }} }}`, `{{ counter: {{ of: OTHER, share: RATIO }} }}` or `{{ gauge: {{ mean: LEVEL, noise: SPREAD }} }}`{}; or give the metric itself a gauge model under `metrics:` {model}",
                    names_of(&missing),
                    histogram_advice(&missing)
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

/// For series named as a classic histogram's (`NAME_bucket`, `NAME_count`), how to model
/// the histogram; else nothing.
fn histogram_advice(missing: &[String]) -> String {
    let histograms: Vec<&str> = missing
        .iter()
        .filter_map(|n| {
            n.strip_suffix("_bucket")
                .or_else(|| n.strip_suffix("_count"))
        })
        .collect();
    match histograms.first() {
        Some(h) => format!(
            "; `{h}_bucket` and `{h}_count` come from one histogram model, `{h}: {{ histogram: {{ per_request: RATIO, buckets: {{ BOUND: SHARE, ... }} }} }}`"
        ),
        None => String::new(),
    }
}

/// ` (a, b)` naming the series without a model, or nothing.
fn names_of(missing: &[String]) -> String {
    if missing.is_empty() {
        String::new()
    } else {
        format!(
            " (no model yet: {})",
            missing
                .iter()
                .map(|n| format!("`{n}`"))
                .collect::<Vec<_>>()
                .join(", ")
        )
    }
}
