//! `plan simulate FILE --trace TRACE`: one recorded trace replayed through the plan's
//! rules, phase by phase, with a timeline of everything each rule and gate did from the
//! release's start to the end of the replay, and how the release ended.
//!
//! Time: t=0 is the release's start (its first phase's rules loaded), `--start`
//! ([`Options::start_ms`]) or by default the trace's first sample, exactly (never
//! rounded). The replay ends at `--end` ([`Options::end_ms`]), by default the trace's last
//! sample; it may go past it: each series goes stale 5m after its last sample
//! (Prometheus' lookback), so rules that would fire once the data stops (no-data alerts,
//! ratios whose series vanish) show up when `--end` is later. Both must fall in the trace
//! (`--start` from its first to its last sample, `--end` after `--start`, at most
//! [`MAX_TRACE_SPAN_MS`] later); otherwise [`RunError::Bounds`] says why.
//!
//! The evaluation grid is Prometheus' own: a rule group is evaluated at the Unix times
//! that are multiples of its interval plus a fixed offset (Prometheus derives it from a
//! hash of the group's name and file, `Group.EvalTimestamp`); the replay uses offset 0 unless
//! [`Options::evaluation_offset_ms`] says otherwise. The first evaluation is the first
//! grid time at or after t=0 (so the first few seconds of the release may pass before it:
//! the timeline says so), then every interval up to `--end`, through [`Evaluator`],
//! exactly as for a Monte Carlo trial; samples before t=0 still feed the first windows.
//! (A real Prometheus that loads a rules file at t=0 first evaluates it at the next grid
//! time after the load.)
//!
//! The verdict is the first decision of the release's logic ([`Evaluator`]'s
//! `phase_ended` / `phase_began` / `rule_firing`): a rollback rule firing, or reaching the
//! last phase (promotion); with neither the release is still running at `--end`. The
//! timeline goes on past the verdict, phases following the schedule, so that the user
//! sees what else would have fired; events after it are marked so.
//!
//! Bounds: the trace is read within the limits of `src/limits.rs` (see [`load()`]); each
//! rule's first [`MAX_REPLAY_TRANSITIONS_PER_RULE`] transitions are recorded and the rest
//! counted, and the human timeline lists the first [`MAX_TIMELINE_TRANSITIONS_PER_RULE`]
//! of each rule, then one line saying how many more there are and where to find them. The
//! phases, the gate failures and the verdict are always shown.
//!
//! The JSON document (`--format json`) is `{"format":"plan-replay","version":2,...}`; see
//! [`ReplayReport`] for its fields. Times are milliseconds from t=0 (`*_ms`) plus, for events,
//! the absolute RFC 3339 time. Version 2 (t=0 no longer rounded, the timeline past the
//! verdict, `first_firing_ms` over the whole timeline) only grows by new fields.
//!
//! [`MAX_TRACE_SPAN_MS`]: crate::limits::MAX_TRACE_SPAN_MS
//! [`MAX_REPLAY_TRANSITIONS_PER_RULE`]: crate::limits::MAX_REPLAY_TRANSITIONS_PER_RULE
//! [`MAX_TIMELINE_TRANSITIONS_PER_RULE`]: crate::limits::MAX_TIMELINE_TRANSITIONS_PER_RULE

mod load;
mod report;
mod text;

pub use load::{ReplayError, load};
pub(crate) use report::ReplayReport;
pub(crate) use text::timeline;

use crate::check::CheckedPlan;
use crate::limits::{MAX_REPLAY_SERIES_POINTS, MAX_TRACE_SPAN_MS};
use crate::lower::AlertRule;
use crate::prom::{AlertState, Semantics};
use crate::sim::evaluator::{Evaluator, Schedule, alert_state};
use crate::sim::trace::Trace;
use crate::sim::trace::TraceError;
use crate::sim::trace::inputs::Inputs;
use crate::sim::trace::inputs::QueryFailed;
use crate::sim::trace::time::{format_rfc3339, offset};
pub use report::Span;
use report::{Frame, report};
use std::path::Path;

/// How to replay.
#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    pub semantics: Semantics,
    /// Absolute time (Unix ms) of t=0, the release's start; default: the trace's first
    /// sample.
    pub start_ms: Option<i64>,
    /// Absolute time (Unix ms) the replay ends; default: the trace's last sample.
    pub end_ms: Option<i64>,
    /// The evaluation grid's offset from the Unix-time multiples of the evaluation
    /// interval, from 0 to less than the interval.
    pub evaluation_offset_ms: i64,
}

/// Why a parsed trace could not be replayed.
#[derive(Debug, Clone, PartialEq)]
pub enum RunError {
    /// The trace is not a trace for this plan (at its line and column).
    Trace(TraceError),
    /// `--start`, `--end` or `--evaluation-offset` do not fit the trace or the plan: what is
    /// wrong, and what to do.
    Bounds { message: String, hint: String },
    /// A custom query fails at some evaluation, as Prometheus would fail it.
    Query { message: String, hint: String },
    /// A rule's `min_requests` guard reads a request count the trace does not hold: the
    /// rule could never fire, which the replay must not report as the plan's behaviour.
    Guard { message: String, hint: String },
}

impl RunError {
    fn query(plan: &CheckedPlan, e: QueryFailed) -> RunError {
        RunError::Query {
            message: format!(
                "the query of `{}` for the {} track has no single value at {}: {}",
                plan.metrics[e.metric].name,
                e.track.as_str(),
                offset(e.at),
                e.message
            ),
            hint: "the plan compares one value per track; make the query return one series per track (aggregate it, e.g. `sum(...)`), or check the trace's labels".into(),
        }
    }
}

impl From<TraceError> for RunError {
    fn from(e: TraceError) -> RunError {
        RunError::Trace(e)
    }
}

/// [`load()`] then [`run`].
pub fn replay_file(
    plan: &CheckedPlan,
    rules: &[AlertRule],
    path: &Path,
    opts: &Options,
) -> Result<ReplayReport, ReplayError> {
    let file = path.display().to_string();
    let (mut t, lines) = load(path)?;
    run(plan, rules, &mut t, &file, opts).map_err(|e| match e {
        RunError::Trace(e) => ReplayError::from_trace(&file, &lines, e),
        RunError::Bounds { message, hint } => ReplayError::Bounds {
            file: file.clone(),
            message,
            hint,
        },
        RunError::Query { message, hint } => ReplayError::Query {
            file: file.clone(),
            message,
            hint,
        },
        RunError::Guard { message, hint } => ReplayError::Guard {
            file: file.clone(),
            message,
            hint,
        },
    })
}

/// Checks `--start` and `--end` against the trace and shifts the trace so that t=0 is the
/// start of the release (see the module doc).
pub fn align(trace: &mut Trace, opts: &Options) -> Result<Span, RunError> {
    let Some((first, last)) = trace.span() else {
        return Err(TraceError::new(1, 1, "the trace holds no samples").into());
    };
    let bounds = |message: String, hint: &str| RunError::Bounds {
        message,
        hint: hint.to_string(),
    };
    let held = format!(
        "the trace holds samples from {} to {}",
        format_rfc3339(first),
        format_rfc3339(last)
    );
    let zero = opts.start_ms.unwrap_or(first);
    let end = opts.end_ms.unwrap_or(last);
    if zero < first {
        return Err(bounds(
            format!(
                "--start {} is before the trace's first sample, at {}: the replay would read no data before it",
                format_rfc3339(zero),
                format_rfc3339(first)
            ),
            &format!(
                "{held}; export the trace from an earlier time, or start at or after its first sample"
            ),
        ));
    }
    if zero > last {
        return Err(bounds(
            format!(
                "--start {} is after the trace's last sample, at {}",
                format_rfc3339(zero),
                format_rfc3339(last)
            ),
            &format!("{held}; start within it"),
        ));
    }
    if end < zero {
        return Err(bounds(
            format!(
                "--end {} is before the start, {}",
                format_rfc3339(end),
                format_rfc3339(zero)
            ),
            &format!("{held}; give an --end after --start"),
        ));
    }
    if end - zero > MAX_TRACE_SPAN_MS {
        return Err(bounds(
            format!(
                "--end {} is {} after the start, longer than the {} a replay may span",
                format_rfc3339(end),
                offset(end - zero).trim_start_matches('+'),
                offset(MAX_TRACE_SPAN_MS).trim_start_matches('+'),
            ),
            &format!(
                "{held}; series go stale 5m after their last sample, so an --end a little past it shows every rule"
            ),
        ));
    }
    trace.rebase(zero);
    Ok(Span {
        zero,
        end,
        first_sample: first,
        last_sample: last,
        start_given: opts.start_ms.is_some(),
        end_given: opts.end_ms.is_some(),
    })
}

/// The first time at or after `at` (absolute ms) on the evaluation grid of interval `ei`
/// and offset `offset`: Unix times `offset + k * ei`, as Prometheus places a rule group's
/// evaluations.
pub(crate) fn grid_at_or_after(at: i64, ei: i64, offset: i64) -> i64 {
    let k = (at - offset).div_euclid(ei);
    let t = offset + k * ei;
    if t < at { t + ei } else { t }
}

/// Runs the replay over a parsed trace (which is re-based to t=0).
pub fn run(
    plan: &CheckedPlan,
    rules: &[AlertRule],
    trace: &mut Trace,
    file: &str,
    opts: &Options,
) -> Result<ReplayReport, RunError> {
    let ei = plan.monitoring.evaluation_interval.millis() as i64;
    if !(0..ei).contains(&opts.evaluation_offset_ms) {
        return Err(RunError::Bounds {
            message: format!(
                "--evaluation-offset {} is not less than the plan's evaluation interval, {}",
                offset(opts.evaluation_offset_ms).trim_start_matches('+'),
                plan.monitoring.evaluation_interval
            ),
            hint: "give the offset of your rule group's evaluations past the multiples of the interval (its last evaluation time, modulo the interval)".into(),
        });
    }
    let span = align(trace, opts)?;
    let end = span.end - span.zero;
    let first_evaluation = grid_at_or_after(span.zero, ei, opts.evaluation_offset_ms) - span.zero;
    let trace: &Trace = trace;
    let schedule = Schedule::new(plan);
    let mut inputs = Inputs::new(plan, rules, trace, opts.semantics)?;
    guards_readable(plan, rules, &inputs)?;
    let not_evaluated = silent_canary_unreadable(plan, rules, trace);
    let idled: Vec<AlertRule>;
    let rules = if not_evaluated.is_some() {
        idled = rules
            .iter()
            .cloned()
            .map(|mut r| {
                if r.is_silent_canary() {
                    r.idle_phases = (0..plan.phases.len()).collect();
                }
                r
            })
            .collect();
        &idled[..]
    } else {
        rules
    };
    let mut ev = Evaluator::new(rules, &schedule, true);
    let mut evaluations = 0u64;
    let mut series = Series::new(plan, rules, first_evaluation, end, ei);
    let mut ts = first_evaluation;
    while ts <= end {
        ev.enter(ts);
        let values = inputs.values_at(ts).map_err(|e| RunError::query(plan, e))?;
        series.record(evaluations, values);
        evaluations += 1;
        ev.evaluate_alerts(ts, |r| inputs.alert(r));
        ts += ei;
    }
    let verdict = ev.verdict();
    let mut out = report(
        plan,
        rules,
        &schedule,
        &ev,
        &inputs,
        verdict,
        Frame {
            file,
            span,
            ei,
            offset: opts.evaluation_offset_ms,
            first_evaluation,
            evaluations,
            semantics: opts.semantics,
            series: series.out,
        },
    );
    out.not_evaluated.extend(not_evaluated);
    Ok(out)
}

/// The values the rules read, kept for the report's `series`: at most
/// [`MAX_REPLAY_SERIES_POINTS`] per metric, every `every`-th evaluation.
struct Series {
    /// The metrics kept, by index.
    kept: Vec<usize>,
    every: u64,
    out: Vec<report::SeriesOut>,
}

impl Series {
    fn new(plan: &CheckedPlan, rules: &[AlertRule], first: i64, end: i64, ei: i64) -> Series {
        let evaluations = if end < first {
            0
        } else {
            ((end - first) / ei) as u64 + 1
        };
        let every = evaluations.div_ceil(MAX_REPLAY_SERIES_POINTS as u64).max(1);
        let mut kept = Vec::new();
        let mut out = Vec::new();
        for (mi, m) in plan.metrics.iter().enumerate() {
            if !rules.iter().any(|r| r.reads(mi)) {
                continue;
            }
            let stable = rules
                .iter()
                .any(|r| r.metric == mi && r.condition.uses_stable());
            kept.push(mi);
            out.push(report::SeriesOut {
                metric: m.name.clone(),
                unit: m.unit.name(),
                first_ms: first,
                step_ms: ei * every as i64,
                canary: Vec::new(),
                stable: stable.then(Vec::new),
            });
        }
        Series { kept, every, out }
    }

    /// Keeps the values of evaluation number `k`, when it is one to keep.
    fn record(&mut self, k: u64, values: &crate::sim::evaluator::Values) {
        if !k.is_multiple_of(self.every) {
            return;
        }
        for (&mi, s) in self.kept.iter().zip(&mut self.out) {
            let (c, st) = values.get(mi).copied().unwrap_or((None, None));
            s.canary.push(c);
            if let Some(v) = &mut s.stable {
                v.push(st);
            }
        }
    }
}

/// The silent-canary rule reads the canary's `up` (or its recorded `targets_up`): a trace
/// holding neither for any track was exported without them, and the rule would roll the
/// release back on their absence alone. Then the rule is not evaluated, and the report
/// says so (this message); a trace with `up` for the stable track only is a canary gone.
fn silent_canary_unreadable(
    plan: &CheckedPlan,
    rules: &[AlertRule],
    trace: &Trace,
) -> Option<String> {
    let r = rules.iter().find(|r| r.is_silent_canary())?;
    let m = &plan.metrics[r.metric];
    let recorded = crate::lower::record_name(m);
    let raw: Vec<&str> = match &m.expr {
        crate::promql::MetricExpr::GaugeSum { sel } => vec![sel.metric.as_str()],
        _ => Vec::new(),
    };
    let present = trace
        .series
        .iter()
        .any(|s| s.name == recorded || s.name == m.name || raw.contains(&s.name.as_str()));
    (!present).then(|| {
        format!(
            "{} (silent canary): the trace has no `{}` series of any track (nor `{recorded}`); export `up{{service=\"{}\"}}` with the trace to replay it",
            r.alert,
            raw.first().copied().unwrap_or(m.name.as_str()),
            plan.service.name
        )
    })
}

/// Every guarded rule's request count comes from the trace: its recorded series
/// (`service_track:http_requests:increase5m`) or the counter it is computed from. Without
/// either the rule could never fire (Prometheus' `and` would find no count), and the
/// replay would report a release that nothing rolls back: an error naming the rule.
fn guards_readable(
    plan: &CheckedPlan,
    rules: &[AlertRule],
    inputs: &Inputs<'_>,
) -> Result<(), RunError> {
    for r in rules {
        let Some(g) = r.guard else { continue };
        use crate::prom::Origin;
        if !matches!(
            inputs.origin(g.count)[0],
            Origin::Absent | Origin::Raw { series: 0 }
        ) {
            continue;
        }
        let m = &plan.metrics[g.count];
        let counter = match &m.expr {
            crate::promql::MetricExpr::Increase { sel, .. } => sel.metric.clone(),
            _ => m.name.clone(),
        };
        return Err(RunError::Guard {
            message: format!(
                "{} has `min_requests: {}`, but the trace has no request count of the canary: no `{counter}` series nor `{}`",
                r.alert,
                g.min,
                crate::lower::record_name(m)
            ),
            hint: format!(
                "export `{counter}{{service=\"{}\"}}` (or its recorded series) with the trace; without it the rule can never fire",
                plan.service.name
            ),
        });
    }
    Ok(())
}

/// For each rule, the evaluation times (relative ms) at which its alert is firing when one
/// phase's rules file is loaded for the whole (aligned) trace, up to `until`: what
/// `promtool test rules` reports over that file, with no phase changes and no verdict to
/// stop at. The proof against promtool compares exactly this.
pub fn firing_per_rule(
    plan: &CheckedPlan,
    rules: &[AlertRule],
    trace: &Trace,
    semantics: Semantics,
    until: i64,
) -> Result<Vec<Vec<i64>>, RunError> {
    let ei = plan.monitoring.evaluation_interval.millis() as i64;
    let mut inputs = Inputs::new(plan, rules, trace, semantics)?;
    guards_readable(plan, rules, &inputs)?;
    let mut states: Vec<AlertState> = rules.iter().map(alert_state).collect();
    let mut labels: Vec<Vec<(String, String)>> = vec![Vec::new(); rules.len()];
    let mut out = vec![Vec::new(); rules.len()];
    let mut ts = 0;
    while ts <= until {
        inputs.values_at(ts).map_err(|e| RunError::query(plan, e))?;
        for (i, r) in rules.iter().enumerate() {
            let returned = inputs.alert(r);
            // Another alert of the rule (other labels): the active one goes, as in
            // `Evaluator::evaluate_alerts`.
            if let Some(l) = returned
                && labels[i] != l
            {
                states[i].step(ts, false);
                labels[i] = l.to_vec();
            }
            if states[i].step(ts, returned.is_some()).is_firing() {
                out[i].push(ts);
            }
        }
        ts += ei;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::grid_at_or_after;

    #[test]
    fn the_grid_is_unix_multiples_of_the_interval_plus_the_offset() {
        const MIN: i64 = 60_000;
        // On the grid: itself; between two grid times: the next one.
        assert_eq!(
            grid_at_or_after(1_714_564_800_000, MIN, 0),
            1_714_564_800_000
        );
        assert_eq!(
            grid_at_or_after(1_714_564_820_000, MIN, 0),
            1_714_564_860_000
        );
        assert_eq!(
            grid_at_or_after(1_714_564_800_000, MIN, 15_000),
            1_714_564_815_000
        );
        assert_eq!(
            grid_at_or_after(1_714_564_820_000, MIN, 15_000),
            1_714_564_875_000
        );
        assert_eq!(
            grid_at_or_after(1_714_564_815_000, MIN, 15_000),
            1_714_564_815_000
        );
        // Before the epoch too.
        assert_eq!(grid_at_or_after(-1, MIN, 0), 0);
        assert_eq!(grid_at_or_after(-MIN - 1, MIN, 0), -MIN);
    }
}
