//! The plan metrics' values at each evaluation of a trace. Each metric and track reads one
//! of two levels of the trace:
//! - **recorded**: a series named after the metric's recorded series
//!   (`service_track:error_rate:ratio_rate5m`) or simply the metric (`error_rate`), with a
//!   `track` label (`canary`/`stable`); `plan` and `service` labels, when present, must name
//!   this plan and its service;
//! - **raw**: the series behind a built-in metric's query (`http_requests_total`,
//!   `http_request_duration_seconds_bucket`, gauges...), matched by the query's own
//!   selectors and evaluated by [`Query`].
//!
//! A recorded series wins over raw ones for the same metric and track. A custom metric (its
//! own PromQL, or a built-in metric's overriding query) reads its raw series through the
//! PromQL engine, from the very text of its recording rule. A metric with neither is
//! absent: its comparisons are false and its no-data rule fires, as in Prometheus.

use super::{Series, Trace, TraceError};
use crate::check::CheckedPlan;
use crate::lower::{self, AlertRule};
use crate::prom::engine::EvalError;
use crate::prom::{Origin, Query, Semantics};
use crate::promql::Track;
use crate::sim::evaluator::Values;

/// A metric's query that Prometheus would fail to evaluate at some time (a custom query
/// returning two series, or matching two series one-to-one): its recording rule would
/// record nothing, which no replay may quietly read as "no data".
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct QueryFailed {
    pub(crate) metric: usize,
    pub(crate) track: Track,
    /// The evaluation time (relative ms).
    pub(crate) at: i64,
    pub(crate) message: String,
}

/// The metric values of a trace at successive evaluations.
pub(crate) struct Inputs<'t> {
    trace: &'t Trace,
    semantics: Semantics,
    /// Per metric: (canary, stable).
    sources: Vec<[Query; 2]>,
    values: Vec<(Option<f64>, Option<f64>)>,
    used: Vec<bool>,
}

impl<'t> Inputs<'t> {
    /// Resolves every metric a rule reads, for the tracks it reads. Errors when two
    /// recorded series claim the same metric and track.
    pub(crate) fn new(
        plan: &CheckedPlan,
        rules: &[AlertRule],
        trace: &'t Trace,
        semantics: Semantics,
    ) -> Result<Inputs<'t>, TraceError> {
        let mut used = vec![false; trace.series.len()];
        let mut sources = Vec::with_capacity(plan.metrics.len());
        for mi in 0..plan.metrics.len() {
            let read = rules.iter().any(|r| r.reads(mi));
            let tracks = if read {
                lower::tracks_needed(rules, mi)
            } else {
                Vec::new()
            };
            let mut pair = [Query::absent(), Query::absent()];
            for track in tracks {
                let slot = match track {
                    Track::Canary => 0,
                    Track::Stable => 1,
                };
                pair[slot] = resolve(plan, mi, track, trace, &mut used)?;
            }
            sources.push(pair);
        }
        Ok(Inputs {
            trace,
            semantics,
            values: vec![(None, None); plan.metrics.len()],
            sources,
            used,
        })
    }

    /// Where metric `mi`'s values come from, per track (canary, stable).
    pub(crate) fn origin(&self, mi: usize) -> [Origin; 2] {
        let series = &self.trace.series;
        [
            self.sources[mi][0].origin(series),
            self.sources[mi][1].origin(series),
        ]
    }

    /// The selectors of `plan`'s custom and overriding queries computed from raw series
    /// that match no series of the trace, per metric and track (`conversion_rate
    /// (canary): business_flow_started_total{...}`): a missing series or a label typo,
    /// which leaves the metric without data where Prometheus would have some.
    pub(crate) fn unmatched(&self, plan: &CheckedPlan) -> Vec<String> {
        let mut out = Vec::new();
        for (mi, m) in plan.metrics.iter().enumerate() {
            if !m.is_custom() {
                continue;
            }
            for (ti, track) in [Track::Canary, Track::Stable].into_iter().enumerate() {
                if !matches!(self.origin(mi)[ti], Origin::Raw { .. }) {
                    continue;
                }
                let Ok(program) = crate::prom::engine::program(&m.expr.promql(Some(track))) else {
                    continue;
                };
                for (_, sel) in crate::prom::engine::unmatched(&program, &self.trace.series) {
                    out.push(format!("{} ({}): {}", m.name, track.as_str(), sel.text()));
                }
            }
        }
        out
    }

    /// Series of the trace that no metric reads (a typo in a label is the usual cause).
    pub(crate) fn unused(&self) -> impl Iterator<Item = &Series> {
        self.trace
            .series
            .iter()
            .zip(&self.used)
            .filter(|(_, u)| !**u)
            .map(|(s, _)| s)
    }

    /// The values at evaluation time `ts` (non-decreasing across calls; relative ms, as
    /// the trace's samples). Fails where Prometheus would fail a custom query's evaluation
    /// (see [`QueryFailed`]).
    pub(crate) fn values_at(&mut self, ts: i64) -> Result<&Values, QueryFailed> {
        let sem = self.semantics;
        let series = &self.trace.series;
        for (mi, pair) in self.sources.iter_mut().enumerate() {
            let failed = |track: Track| {
                move |e: EvalError| QueryFailed {
                    metric: mi,
                    track,
                    at: ts,
                    message: e.message,
                }
            };
            let c = pair[0].at(series, ts, sem).map_err(failed(Track::Canary))?;
            let s = pair[1].at(series, ts, sem).map_err(failed(Track::Stable))?;
            self.values[mi] = (c, s);
        }
        Ok(&self.values)
    }

    /// The alert rule `r`'s expression returns at the latest evaluation
    /// ([`Inputs::values_at`]): the labels that tell it from the rule's other alerts
    /// (empty but for custom queries whose result keeps labels of its own), or None when
    /// its condition is false.
    pub(crate) fn alert(&self, r: &AlertRule) -> Option<&[(String, String)]> {
        // A guard below its minimum: the expression returns nothing.
        if !r.guard_passes(r.guard.and_then(|g| self.values[g.count].0)) {
            return None;
        }
        let (canary, stable) = self.values[r.metric];
        let [c, s] = &self.sources[r.metric];
        r.condition
            .alert(canary, stable, [c.own_labels(), s.own_labels()])
    }
}

fn resolve(
    plan: &CheckedPlan,
    mi: usize,
    track: Track,
    trace: &Trace,
    used: &mut [bool],
) -> Result<Query, TraceError> {
    let m = &plan.metrics[mi];
    let recorded = lower::record_name(m);
    let mut found: Option<usize> = None;
    for (i, s) in trace.series.iter().enumerate() {
        let named = s.name == recorded || s.name == m.name;
        let ok = |k: &str, want: &str| {
            let v = s.label(k);
            v.is_empty() || v == want
        };
        if named
            && s.label("track") == track.as_str()
            && ok("plan", &plan.name)
            && ok("service", &plan.service.name)
        {
            if let Some(first) = found {
                return Err(TraceError::new(
                    s.line,
                    s.column,
                    format!(
                        "two series give `{}` of the {} track: {} (line {}) and {}",
                        m.name,
                        track.as_str(),
                        trace.series[first].display(),
                        trace.series[first].line,
                        s.display()
                    ),
                )
                .hint("keep one recorded series per metric and track, or tell them apart with the `plan` or `service` label"));
            }
            found = Some(i);
        }
    }
    if let Some(i) = found {
        used[i] = true;
        return Ok(Query::recorded(i));
    }
    let query = Query::raw(&m.expr, track, &trace.series);
    for i in query.reads() {
        used[i] = true;
    }
    Ok(query)
}
