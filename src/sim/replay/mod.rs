//! `plan simulate FILE --trace TRACE`: one recorded trace replayed through the plan's
//! rules, phase by phase, with a timeline of what each rule did and how the release ended.
//!
//! Time alignment: the trace's absolute timestamps are shifted so that t=0, the start of
//! the release (of its first phase), is the first sample's time floored to the plan's
//! evaluation interval (on the Unix-epoch grid, as promtool's grid starts at 0), unless
//! [`Options::start_ms`] says otherwise. Rules are evaluated at 0, ei, 2ei, … up to the
//! last sample of the trace, through [`Evaluator`], exactly as for a Monte Carlo trial;
//! samples before t=0 still feed the first windows. The replay stops at the verdict: a
//! rollback rule firing, or reaching the last phase (promotion). Otherwise the release is
//! still running when the trace ends.
//!
//! A real Prometheus shifts each rule group's evaluations by a hash of the group, so a
//! real alert may fire up to one evaluation interval earlier or later than on this grid.
//!
//! Bounds: the trace is read within the limits of `src/limits.rs` (see [`load`]); each
//! rule's first [`MAX_REPLAY_TRANSITIONS_PER_RULE`] transitions are recorded and the rest
//! counted, and the human timeline lists the first [`MAX_TIMELINE_TRANSITIONS_PER_RULE`]
//! of each rule, then one line saying how many more there are and where to find them. The
//! phases, the gate failures and the verdict are always shown.
//!
//! The JSON document (`--format json`) is `{"format":"plan-replay","version":1,...}`; see
//! [`ReplayReport`] for its fields. Times are milliseconds from t=0 (`*_ms`) plus, for events,
//! the absolute RFC 3339 time. Version 1 only grows by new fields.

mod load;
mod report;
mod text;

pub use load::{ReplayError, load};
pub(crate) use report::ReplayReport;
pub(crate) use text::timeline;

use crate::check::CheckedPlan;
use crate::lower::AlertRule;
use crate::prom::{AlertState, Semantics};
use crate::sim::evaluator::{Evaluator, Schedule, alert_state};
use crate::sim::trace::Trace;
use crate::sim::trace::TraceError;
use crate::sim::trace::inputs::Inputs;
use crate::sim::trace::time::format_rfc3339;
use report::{Frame, report};
use std::path::Path;

/// How to replay.
#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    pub semantics: Semantics,
    /// Absolute time (Unix ms) of t=0; default: the first sample floored to the
    /// evaluation interval.
    pub start_ms: Option<i64>,
}

/// [`load`] then [`run`].
pub fn replay_file(
    plan: &CheckedPlan,
    rules: &[AlertRule],
    path: &Path,
    opts: &Options,
) -> Result<ReplayReport, ReplayError> {
    let file = path.display().to_string();
    let (mut t, lines) = load(path)?;
    run(plan, rules, &mut t, &file, opts).map_err(|e| ReplayError::from_trace(&file, &lines, e))
}

/// Shifts the trace so that t=0 is the start of the release (see the module doc) and
/// returns (absolute ms of t=0, relative ms of the last sample).
pub fn align(
    trace: &mut Trace,
    evaluation_interval_ms: i64,
    start_ms: Option<i64>,
) -> Result<(i64, i64), TraceError> {
    let Some((first, last)) = trace.span() else {
        return Err(TraceError::new(1, 1, "the trace holds no samples"));
    };
    let zero = start_ms
        .unwrap_or_else(|| first.div_euclid(evaluation_interval_ms) * evaluation_interval_ms);
    if last < zero {
        return Err(TraceError::new(
            1,
            1,
            format!(
                "the release starts at {} but the trace ends before, at {}",
                format_rfc3339(zero),
                format_rfc3339(last)
            ),
        ));
    }
    trace.rebase(zero);
    Ok((zero, last - zero))
}

/// Runs the replay over a parsed trace (which is re-based to t=0).
pub fn run(
    plan: &CheckedPlan,
    rules: &[AlertRule],
    trace: &mut Trace,
    file: &str,
    opts: &Options,
) -> Result<ReplayReport, TraceError> {
    let ei = plan.monitoring.evaluation_interval.millis() as i64;
    let (zero, end) = align(trace, ei, opts.start_ms)?;
    let trace: &Trace = trace;
    let schedule = Schedule::new(plan);
    let mut inputs = Inputs::new(plan, rules, trace, opts.semantics)?;
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
    let mut ts = 0i64;
    let verdict = loop {
        if ts > end {
            break None;
        }
        if let Some(v) = ev.enter(ts) {
            break Some(v);
        }
        let values = inputs.values_at(ts);
        evaluations += 1;
        if let Some(v) = ev.evaluate(ts, values) {
            break Some(v);
        }
        ts += ei;
    };
    let mut out = report(
        plan,
        rules,
        &schedule,
        &ev,
        &inputs,
        verdict,
        Frame {
            file,
            zero,
            end,
            ei,
            evaluations,
            semantics: opts.semantics,
        },
    );
    out.not_evaluated.extend(not_evaluated);
    Ok(out)
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
) -> Result<Vec<Vec<i64>>, TraceError> {
    let ei = plan.monitoring.evaluation_interval.millis() as i64;
    let mut inputs = Inputs::new(plan, rules, trace, semantics)?;
    let mut states: Vec<AlertState> = rules.iter().map(alert_state).collect();
    let mut out = vec![Vec::new(); rules.len()];
    let mut ts = 0;
    while ts <= until {
        let values = inputs.values_at(ts);
        for (i, r) in rules.iter().enumerate() {
            let (c, s) = values[r.metric];
            if states[i].step(ts, r.condition.holds(c, s)).is_firing() {
                out[i].push(ts);
            }
        }
        ts += ei;
    }
    Ok(out)
}
