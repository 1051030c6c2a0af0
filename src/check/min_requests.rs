//! The minimum-traffic guard of a rollback condition (`min_requests: N`): the rule counts
//! only at evaluations where the canary served at least N requests in the rate window.
//!
//! The guard needs to know which counter holds the requests a metric's rate is computed
//! from, so it is only allowed on the built-in request metrics with their default queries:
//! `error_rate` and `availability` (the request counter, `http_requests_total`) and
//! `response_time_p95` (the latency histogram's `_count`). Anything else is an error at
//! the `min_requests` line: a gauge (CPU, memory, connections) is not counted in requests,
//! throughput is a request rate (a guard would silence a rule on low throughput exactly
//! when throughput is low), and an overriding or custom query reads series plan cannot
//! tell the requests of.
//!
//! Each guard reads a metric of its own, appended to the plan's metrics: the canary's
//! `sum(increase(counter[window]))`, recorded like every metric
//! (`service_track:http_requests:increase5m`), so that the rules file, the promtool tests,
//! the replay and the Monte Carlo all read one value.

use super::catalog::Builtin;
use super::checked::{Metric, MinRequests, RollbackRule};
use crate::diagnostic::Diagnostic;
use crate::model::{Bad, Plan, Unit};
use crate::promql::{MetricExpr, Selector};

/// Sets the guard of every rollback rule whose condition states `min_requests`, adding the
/// request counts they read to `metrics` (one per counter, after the plan's own).
/// `written_at`: each rule's index among the plan's rollback conditions. A condition whose
/// metric is not counted in requests is an error, and its rule keeps no guard.
pub(super) fn guards(
    plan: &Plan,
    metrics: &mut Vec<Metric>,
    rules: &mut [RollbackRule],
    written_at: &[usize],
    f: &mut Vec<Diagnostic>,
) {
    for (r, &i) in rules.iter_mut().zip(written_at) {
        let Some(min) = plan.rollback_conditions[i].min_requests else {
            continue;
        };
        let m = &metrics[r.metric];
        match request_count(m) {
            Ok(count) => {
                let index = match metrics.iter().position(|c| c.name == count.name && c.expr == count.expr) {
                    Some(k) => k,
                    None => {
                        metrics.push(count);
                        metrics.len() - 1
                    }
                };
                r.min_requests = Some(MinRequests { count: index, min });
            }
            Err(why) => f.push(
                Diagnostic::error(
                    "min-requests-metric",
                    format!("/rollback_conditions/{i}/min_requests"),
                    format!("`min_requests` counts the canary's requests, but `{}` {why}", m.name),
                )
                .with_hint(
                    "remove `min_requests`, or guard a condition on `error_rate`, `availability` or `response_time_p95` (with their built-in queries)",
                ),
            ),
        }
    }
}

/// The request count a guard on `m` reads, or why `m` has none. `plan tune` builds the
/// count of a guard it tries the same way ([`crate::sim::tune::guards`]).
pub(crate) fn request_count(m: &Metric) -> Result<Metric, String> {
    let (sel, window) = match (m.builtin, &m.expr) {
        (
            Some(Builtin::ErrorRate | Builtin::Availability),
            MetricExpr::RateRatio { den, window, .. },
        ) => (den.clone(), *window),
        (Some(Builtin::ResponseTimeP95), MetricExpr::Quantile { sel, window, .. }) => {
            let name = sel.metric.strip_suffix("_bucket").unwrap_or(&sel.metric);
            (
                Selector {
                    metric: format!("{name}_count"),
                    matchers: sel.matchers.clone(),
                },
                *window,
            )
        }
        (Some(Builtin::Throughput), _) => {
            return Err("is a request rate: a guard would keep a rule on low throughput from firing exactly when throughput is low".into());
        }
        (Some(Builtin::CpuUsage), _) => {
            return Err(
                "is CPU time, not computed from requests: the guard would have nothing to count"
                    .into(),
            );
        }
        (Some(_), _) => {
            return Err(
                "is a gauge, not computed from requests: the guard would have nothing to count"
                    .into(),
            );
        }
        (None, _) => {
            return Err(
                "has its own query, so plan cannot tell which series count its requests".into(),
            );
        }
    };
    let name = sel
        .metric
        .strip_suffix("_total")
        .unwrap_or(&sel.metric)
        .to_string();
    Ok(Metric {
        description: format!(
            "Requests the canary served in the rate window (`{}`), for `min_requests`",
            sel.metric
        ),
        name,
        unit: Unit::Count,
        bad: Bad::Low,
        expr: MetricExpr::Increase { sel, window },
        builtin: None,
        query: None,
    })
}
