//! The metrics that gates and rollback conditions name: the custom definitions checked, and
//! each name resolved once to a [`Metric`] (a built-in's defaults, overridden by what the
//! plan defines under `metrics:`), with its query for one track.

use super::catalog::{BUILTINS, builtin};
use super::checked::{Metric, Monitoring};
use super::query;
use crate::diagnostic::Diagnostic;
use crate::model::Plan;
use crate::prom::parse::Vars;
use crate::promql::MetricExpr;
use crate::suggest::nearest;

/// Checks the plan's own metric definitions: a custom metric states its unit and bad
/// direction, and every query is PromQL that tells canary from stable and gives one value
/// per track ([`query`]).
pub(super) fn check_definitions(plan: &Plan, monitoring: &Monitoring, f: &mut Vec<Diagnostic>) {
    for (name, def) in &plan.metrics {
        let at = format!("/metrics/{name}");
        let is_builtin = builtin(name).is_some();
        if !is_builtin {
            for (field, missing) in [("unit", def.unit.is_none()), ("bad", def.bad.is_none())] {
                if missing {
                    f.push(
                        Diagnostic::error(
                            "custom-metric-incomplete",
                            at.clone(),
                            format!("custom metric `{name}` needs `{field}`"),
                        )
                        .at_key()
                        .with_hint(if field == "unit" {
                            "e.g. `unit: ratio`"
                        } else {
                            "`bad: high` (like an error rate) or `bad: low` (like availability)"
                        }),
                    );
                }
            }
        }
        let window = monitoring.window.to_string();
        let vars = Vars {
            service: &plan.service.name,
            track: "canary",
            window: &window,
        };
        query::check(name, &format!("{at}/query"), &def.query, vars, f);
    }
}

/// The metrics resolved so far, in first-use order; rules name them by index.
pub(super) struct MetricTable<'p> {
    plan: &'p Plan,
    monitoring: &'p Monitoring,
    metrics: Vec<Metric>,
}

impl<'p> MetricTable<'p> {
    pub(super) fn new(plan: &'p Plan, monitoring: &'p Monitoring) -> MetricTable<'p> {
        MetricTable {
            plan,
            monitoring,
            metrics: Vec::new(),
        }
    }

    /// The index of metric `name`, resolved on its first use. None when it does not
    /// resolve: an unknown name is reported at `pointer` (at the key when `at_key`); a
    /// custom metric defined without its unit or bad direction was reported already.
    pub(super) fn index(
        &mut self,
        name: &str,
        pointer: String,
        at_key: bool,
        f: &mut Vec<Diagnostic>,
    ) -> Option<usize> {
        if let Some(i) = self.metrics.iter().position(|m| m.name == name) {
            return Some(i);
        }
        match resolve(self.plan, name, self.monitoring) {
            Some(m) => {
                self.metrics.push(m);
                Some(self.metrics.len() - 1)
            }
            // Defined but incomplete: `custom-metric-incomplete` already says so.
            None if self.plan.metrics.contains_key(name) => None,
            None => {
                f.push(unknown_metric(self.plan, name, pointer, at_key));
                None
            }
        }
    }

    pub(super) fn into_metrics(self) -> Vec<Metric> {
        self.metrics
    }
}

fn unknown_metric(plan: &Plan, name: &str, pointer: String, at_key: bool) -> Diagnostic {
    let mut known: Vec<String> = BUILTINS.iter().map(|b| b.name.to_string()).collect();
    known.extend(plan.metrics.keys().cloned());
    let mut d = Diagnostic::error(
        "unknown-metric",
        pointer,
        format!("unknown metric `{name}`"),
    );
    if at_key {
        d = d.at_key();
    }
    match nearest(name, &known) {
        Some(n) => d.with_hint(format!("did you mean `{n}`?")),
        None => d.with_hint(format!(
            "built-in metrics: {}; or define it under `metrics:`",
            BUILTINS
                .iter()
                .map(|b| b.name)
                .collect::<Vec<_>>()
                .join(", ")
        )),
    }
}

/// The metric `name` stands for: a built-in with the plan's overrides, or a custom metric
/// that states its unit and bad direction. `$service` and `$window` in a custom query are
/// filled in; `$track` stays for each track.
fn resolve(plan: &Plan, name: &str, monitoring: &Monitoring) -> Option<Metric> {
    let custom_expr = |q: &str| {
        MetricExpr::Custom(
            q.replace("$service", &plan.service.name)
                .replace("$window", &monitoring.window.to_string()),
        )
    };
    let metric = match (builtin(name), plan.metrics.get(name)) {
        (Some(b), None) => Metric {
            name: name.to_string(),
            description: b.description.into(),
            unit: b.unit,
            bad: b.bad,
            expr: b.expr(&plan.service.name, monitoring.window),
            builtin: Some(b.kind),
            query: None,
        },
        (Some(b), Some(c)) => Metric {
            name: name.to_string(),
            description: c
                .description
                .clone()
                .unwrap_or_else(|| b.description.into()),
            unit: c.unit.unwrap_or(b.unit),
            bad: c.bad.unwrap_or(b.bad),
            expr: custom_expr(&c.query),
            builtin: None,
            query: Some(c.query.clone()),
        },
        (None, Some(c)) => Metric {
            name: name.to_string(),
            description: c.description.clone().unwrap_or_default(),
            unit: c.unit?,
            bad: c.bad?,
            expr: custom_expr(&c.query),
            builtin: None,
            query: Some(c.query.clone()),
        },
        (None, None) => return None,
    };
    Some(metric)
}
