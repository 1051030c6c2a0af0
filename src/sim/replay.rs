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
//! [`Report`] for its fields. Times are milliseconds from t=0 (`*_ms`) plus, for events,
//! the absolute RFC 3339 time. Version 1 only grows by new fields.

use crate::check::CheckedPlan;
use crate::input::{self, ReadError, human_bytes};
use crate::limits::{
    MAX_REPLAY_TRANSITIONS_PER_RULE, MAX_TIMELINE_TRANSITIONS_PER_RULE, MAX_TRACE_BYTES,
    MAX_TRACE_JSON_BYTES, MAX_TRACE_LINE_BYTES,
};
use crate::lower::{self, AlertRule, RuleKind};
use crate::prom::Origin;
use crate::prom::{AlertState, Semantics};
use crate::sim::evaluator::{Evaluator, Event, Schedule, Verdict, alert_state};
use crate::sim::trace::inputs::Inputs;
use crate::sim::trace::time::{format_rfc3339, offset};
use crate::sim::trace::{TOO_LARGE_HINT, Trace, TraceError, csv, promjson};
use serde::Serialize;
use std::fmt::{self, Write as _};
use std::io::{BufRead, BufReader, Read};
use std::path::Path;

/// How to replay.
#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    pub semantics: Semantics,
    /// Absolute time (Unix ms) of t=0; default: the first sample floored to the
    /// evaluation interval.
    pub start_ms: Option<i64>,
}

/// Why a replay could not run.
#[derive(Debug, Clone, PartialEq)]
pub enum ReplayError {
    /// The trace file could not be read (exit 2).
    Io { file: String, reason: String },
    /// The trace is not a valid trace for this plan (exit 1).
    Trace {
        file: String,
        line: usize,
        column: usize,
        message: String,
        hint: Option<String>,
        /// The offending line's text, for the caret display.
        text: Option<String>,
    },
}

impl ReplayError {
    /// 2 for I/O errors, 1 for a bad trace.
    pub fn exit_code(&self) -> i32 {
        match self {
            ReplayError::Io { .. } => 2,
            ReplayError::Trace { .. } => 1,
        }
    }

    fn from_trace(file: &str, lines: &Lines, e: TraceError) -> ReplayError {
        let line_text = lines.line(e.line);
        ReplayError::Trace {
            file: file.to_string(),
            line: e.line,
            column: e.column,
            message: e.message,
            hint: e.hint,
            // Very long lines (a one-line JSON export) are not worth echoing.
            text: line_text.filter(|l| l.len() <= 400),
        }
    }
}

/// Where the text of a trace's line can be found again, to show it under an error.
pub enum Lines {
    /// The whole text is in memory (a JSON trace, or a test).
    Text(String),
    /// A CSV trace, read line by line from this regular file: read again up to the line.
    File(std::path::PathBuf),
    /// Only this line (its number, its text) is at hand.
    One(usize, String),
    /// A pipe or device: what was read is gone.
    Gone,
}

impl Lines {
    /// Line `n` (1-based), without its line break.
    fn line(&self, n: usize) -> Option<String> {
        let line = match self {
            Lines::Text(text) => text.split('\n').nth(n.checked_sub(1)?)?.to_string(),
            Lines::File(path) => {
                let opened = input::open(path, MAX_TRACE_BYTES).ok()?;
                let mut r = BufReader::new(opened.file);
                let mut buf = Vec::new();
                for _ in 0..n {
                    buf.clear();
                    let read = (&mut r)
                        .take(MAX_TRACE_LINE_BYTES)
                        .read_until(b'\n', &mut buf)
                        .ok()?;
                    if read == 0 {
                        return None;
                    }
                }
                String::from_utf8(buf).ok()?
            }
            Lines::One(at, text) if *at == n => text.clone(),
            Lines::One(..) | Lines::Gone => return None,
        };
        Some(
            line.trim_end_matches('\n')
                .trim_end_matches('\r')
                .to_string(),
        )
    }
}

impl fmt::Display for ReplayError {
    /// `file:line:col: error[trace]: message`, the line with a caret, then the hint: the
    /// same shape as plan diagnostics.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReplayError::Io { file, reason } => writeln!(f, "{file}: error[io]: {reason}"),
            ReplayError::Trace {
                file,
                line,
                column,
                message,
                hint,
                text,
            } => {
                writeln!(f, "{file}:{line}:{column}: error[trace]: {message}")?;
                if let Some(t) = text {
                    let gutter = line.to_string();
                    let pad = " ".repeat(gutter.len());
                    let caret: String = t
                        .chars()
                        .take(column.saturating_sub(1))
                        .map(|c| if c == '\t' { '\t' } else { ' ' })
                        .collect();
                    writeln!(f, "{pad} |")?;
                    writeln!(f, "{gutter} | {t}")?;
                    writeln!(f, "{pad} | {caret}^")?;
                }
                if let Some(h) = hint {
                    writeln!(f, "  = hint: {h}")?;
                }
                Ok(())
            }
        }
    }
}

impl std::error::Error for ReplayError {}

/// Replays the trace file through the plan; returns the human timeline or, with `json`,
/// the JSON document (both end with a newline).
pub fn replay(
    plan: &CheckedPlan,
    trace: &Path,
    semantics: Semantics,
    json: bool,
) -> Result<String, ReplayError> {
    let opts = Options {
        semantics,
        start_ms: None,
    };
    let report = replay_file(plan, trace, &opts)?;
    Ok(if json {
        serde_json::to_string_pretty(&report).unwrap_or_default() + "\n"
    } else {
        human(&report)
    })
}

/// Reads a trace file (CSV or Prometheus JSON, detected from its first non-blank line)
/// within the trace limits: a CSV trace line by line (never whole in memory, so devices
/// and pipes are bounded too), a JSON one whole, refused before reading when its length
/// is known to be over [`MAX_TRACE_JSON_BYTES`].
pub fn load(path: &Path) -> Result<(Trace, Lines), ReplayError> {
    let file = path.display().to_string();
    let io = |e: std::io::Error| ReplayError::Io {
        file: file.clone(),
        reason: match e.kind() {
            std::io::ErrorKind::NotFound => "no such file".into(),
            std::io::ErrorKind::PermissionDenied => "permission denied".into(),
            _ => e.to_string(),
        },
    };
    let at = |line: usize, column: usize, message: String, hint: &str| ReplayError::Trace {
        file: file.clone(),
        line,
        column,
        message,
        hint: Some(hint.to_string()),
        text: None,
    };
    let opened = input::open(path, MAX_TRACE_BYTES).map_err(|e| match e {
        ReadError::Io(e) => io(e),
        ReadError::Directory => ReplayError::Io {
            file: file.clone(),
            reason: "is a directory; give the trace file itself".into(),
        },
        ReadError::TooLarge { limit, size } => at(
            1,
            1,
            format!(
                "the trace is {} bytes, over the limit of {} for a trace",
                size.unwrap_or(limit),
                human_bytes(limit)
            ),
            TOO_LARGE_HINT,
        ),
    })?;
    let lines = if opened.len.is_some() {
        Lines::File(path.to_path_buf())
    } else {
        Lines::Gone
    };
    let mut r = BufReader::new(opened.file.take(MAX_TRACE_BYTES + 1));
    let mut csv = csv::Reader::default();
    // The blank lines before the first other one, kept in case the file is JSON.
    let mut head: Vec<u8> = Vec::new();
    let mut buf = Vec::new();
    let mut line_no = 0;
    let mut read = 0u64;
    let mut decided = false;
    loop {
        buf.clear();
        let n = (&mut r)
            .take(MAX_TRACE_LINE_BYTES + 1)
            .read_until(b'\n', &mut buf)
            .map_err(io)?;
        if n == 0 {
            break;
        }
        line_no += 1;
        read += n as u64;
        if !decided {
            let first = buf
                .strip_prefix("\u{feff}".as_bytes())
                .unwrap_or(&buf)
                .iter()
                .find(|b| !b.is_ascii_whitespace());
            match first {
                None => head.extend_from_slice(&buf),
                Some(b'{' | b'[') => {
                    head.extend_from_slice(&buf);
                    // What the buffer read ahead, then the rest of the file.
                    head.extend_from_slice(r.buffer());
                    return load_json(&file, opened.len, head, r.into_inner());
                }
                Some(_) => decided = true,
            }
        }
        if read > MAX_TRACE_BYTES {
            return Err(at(
                line_no,
                1,
                format!(
                    "the trace holds more than {}, the limit for a trace (read as a stream: a device or a pipe)",
                    human_bytes(MAX_TRACE_BYTES)
                ),
                TOO_LARGE_HINT,
            ));
        }
        if n as u64 > MAX_TRACE_LINE_BYTES {
            return Err(at(
                line_no,
                1,
                format!(
                    "line {line_no} is longer than {MAX_TRACE_LINE_BYTES} bytes, the limit for a line of a CSV trace"
                ),
                "a CSV trace holds one sample per line, of a few dozen bytes; check that this is a trace file",
            ));
        }
        let text = std::str::from_utf8(&buf).map_err(|e| {
            let valid = &buf[..e.valid_up_to()];
            let column = String::from_utf8_lossy(valid).chars().count() + 1;
            at(
                line_no,
                column,
                "not UTF-8 text".into(),
                "save the trace as UTF-8",
            )
        })?;
        csv.line(line_no, text).map_err(|e| {
            ReplayError::from_trace(&file, &Lines::One(line_no, text.to_string()), e)
        })?;
    }
    let t = csv
        .finish()
        .map_err(|e| ReplayError::from_trace(&file, &lines, e))?;
    Ok((t, lines))
}

/// The rest of a JSON trace whose first `head` bytes were read: read whole, parsed.
fn load_json(
    file: &str,
    len: Option<u64>,
    mut head: Vec<u8>,
    rest: impl Read,
) -> Result<(Trace, Lines), ReplayError> {
    let too_large = |size: String| {
        ReplayError::Trace {
        file: file.to_string(),
        line: 1,
        column: 1,
        message: format!(
            "the JSON trace {size}, over the limit of {} for a JSON trace (which is read whole)",
            human_bytes(MAX_TRACE_JSON_BYTES)
        ),
        hint: Some(
            "export a shorter time range, or write the trace as CSV (read line by line, up to 1 GiB)"
                .into(),
        ),
        text: None,
    }
    };
    if let Some(len) = len.filter(|&l| l > MAX_TRACE_JSON_BYTES) {
        return Err(too_large(format!("is {len} bytes")));
    }
    if let Some(len) = len {
        head.reserve_exact((len as usize).saturating_sub(head.len()));
    }
    let room = (MAX_TRACE_JSON_BYTES + 1).saturating_sub(head.len() as u64);
    rest.take(room)
        .read_to_end(&mut head)
        .map_err(|e| ReplayError::Io {
            file: file.to_string(),
            reason: e.to_string(),
        })?;
    if head.len() as u64 > MAX_TRACE_JSON_BYTES {
        return Err(too_large(
            "holds more than that (read as a stream: a device or a pipe)".into(),
        ));
    }
    let text = String::from_utf8(head).map_err(|e| {
        let valid = &e.as_bytes()[..e.utf8_error().valid_up_to()];
        let line = valid.iter().filter(|&&b| b == b'\n').count() + 1;
        let start = valid.iter().rposition(|&b| b == b'\n').map_or(0, |p| p + 1);
        let column = String::from_utf8_lossy(&valid[start..]).chars().count() + 1;
        ReplayError::Trace {
            file: file.to_string(),
            line,
            column,
            message: "not UTF-8 text".into(),
            hint: Some("save the trace as UTF-8".into()),
            text: None,
        }
    })?;
    let parsed = promjson::parse(&text);
    let lines = Lines::Text(text);
    let t = parsed.map_err(|e| ReplayError::from_trace(file, &lines, e))?;
    Ok((t, lines))
}

/// [`load`] then [`run`].
pub fn replay_file(plan: &CheckedPlan, path: &Path, opts: &Options) -> Result<Report, ReplayError> {
    let file = path.display().to_string();
    let (mut t, lines) = load(path)?;
    run(plan, &mut t, &file, opts).map_err(|e| ReplayError::from_trace(&file, &lines, e))
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
    trace: &mut Trace,
    file: &str,
    opts: &Options,
) -> Result<Report, TraceError> {
    let ei = plan.monitoring.evaluation_interval.millis() as i64;
    let (zero, end) = align(trace, ei, opts.start_ms)?;
    let trace: &Trace = trace;
    let rules = lower::alert_rules(plan);
    let schedule = Schedule::new(plan);
    let mut inputs = Inputs::new(plan, &rules, trace, opts.semantics)?;
    let mut ev = Evaluator::new(&rules, &schedule, true);
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
    Ok(report(
        plan,
        &rules,
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
    ))
}

/// For each rule, the evaluation times (relative ms) at which its alert is firing when one
/// phase's rules file is loaded for the whole (aligned) trace, up to `until`: what
/// `promtool test rules` reports over that file, with no phase changes and no verdict to
/// stop at. The proof against promtool compares exactly this.
pub fn firing_per_rule(
    plan: &CheckedPlan,
    trace: &Trace,
    semantics: Semantics,
    until: i64,
) -> Result<Vec<Vec<i64>>, TraceError> {
    let ei = plan.monitoring.evaluation_interval.millis() as i64;
    let rules = lower::alert_rules(plan);
    let mut inputs = Inputs::new(plan, &rules, trace, semantics)?;
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

// ----- the report -----

/// The replay's result: the JSON document, and what the human timeline prints.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Always `plan-replay`.
    pub format: &'static str,
    /// 1.
    pub version: u32,
    pub plan: String,
    pub trace: String,
    /// `prometheus2` or `prometheus3`.
    pub semantics: &'static str,
    /// t=0 (the release's start) as RFC 3339 and Unix milliseconds.
    pub start: String,
    pub start_unix_ms: i64,
    pub evaluation_interval_ms: i64,
    /// The last sample of the trace, from t=0.
    pub trace_end_ms: i64,
    /// Rule evaluations run (each evaluates every rule once).
    pub evaluations: u64,
    pub phases: Vec<PhaseOut>,
    /// Where each metric's values came from.
    pub metrics: Vec<MetricOut>,
    /// Series no rule reads (often a label typo), at most 20.
    pub unused_series: Vec<String>,
    pub unused_series_total: usize,
    pub rules: Vec<RuleOut>,
    /// In time order; per rule, the first 10,000 transitions (see
    /// [`RuleOut::transitions_omitted`]).
    pub events: Vec<EventOut>,
    pub verdict: VerdictOut,
    /// Gates firing when their phase ended: the phase could not have advanced.
    pub gate_failures: Vec<GateFailureOut>,
}

#[derive(Debug, Clone, Serialize)]
pub struct PhaseOut {
    pub name: String,
    pub traffic: String,
    pub starts_ms: i64,
}

#[derive(Debug, Clone, Serialize)]
pub struct MetricOut {
    pub name: String,
    pub canary: Origin,
    /// Only for metrics compared with the stable version.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stable: Option<Origin>,
}

#[derive(Debug, Clone, Serialize)]
pub struct RuleOut {
    pub alert: String,
    /// `rollback`, `gate` or `no_data`.
    pub kind: &'static str,
    pub summary: String,
    pub for_ms: u64,
    pub first_pending_ms: Option<i64>,
    pub first_firing_ms: Option<i64>,
    /// How many times it started firing.
    pub fired: usize,
    /// Transitions past the first 10,000 of this rule, counted but not listed in
    /// `events` (a flapping alert over a long trace).
    pub transitions_omitted: u64,
    /// The last omitted transition's time, when some are.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_omitted_ms: Option<i64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct EventOut {
    pub at_ms: i64,
    pub time: String,
    /// `phase_started`, `pending`, `firing`, `cleared` (pending, then false before `for`
    /// elapsed), `resolved` (was firing), `gate_failed`.
    pub event: &'static str,
    pub phase: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alert: Option<String>,
    /// For `firing`: when the alert became pending.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub active_since_ms: Option<i64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct VerdictOut {
    /// `rolled_back`, `promoted` or `running` (the trace ended first).
    pub outcome: &'static str,
    pub at_ms: i64,
    pub time: String,
    pub phase: String,
    /// The rollback rule that fired.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alert: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct GateFailureOut {
    pub phase: String,
    pub alert: String,
    pub at_ms: i64,
}

struct Frame<'a> {
    file: &'a str,
    zero: i64,
    end: i64,
    ei: i64,
    evaluations: u64,
    semantics: Semantics,
}

fn kind(k: RuleKind) -> &'static str {
    match k {
        RuleKind::Rollback => "rollback",
        RuleKind::Gate => "gate",
        RuleKind::NoData => "no_data",
    }
}

#[allow(clippy::too_many_arguments)]
fn report(
    plan: &CheckedPlan,
    rules: &[AlertRule],
    schedule: &Schedule,
    ev: &Evaluator<'_>,
    inputs: &Inputs<'_>,
    verdict: Option<Verdict>,
    f: Frame<'_>,
) -> Report {
    let phase_name = |p: usize| {
        plan.phases
            .get(p)
            .map_or_else(String::new, |x| x.name.clone())
    };
    let time = |ms: i64| format_rfc3339(f.zero + ms);
    let mut rule_out: Vec<RuleOut> = rules
        .iter()
        .map(|r| RuleOut {
            alert: r.alert.clone(),
            kind: kind(r.kind),
            summary: r.summary.clone(),
            for_ms: r.for_ms,
            first_pending_ms: None,
            first_firing_ms: None,
            fired: 0,
            transitions_omitted: 0,
            last_omitted_ms: None,
        })
        .collect();
    for (i, r) in rule_out.iter_mut().enumerate() {
        let log = ev.rule_log(i);
        r.fired = log.fired;
        r.transitions_omitted = log.omitted;
        r.last_omitted_ms = log.last_omitted_ts;
    }
    let mut events = Vec::new();
    let mut gate_failures = Vec::new();
    for e in ev.events() {
        let (at, name, phase, rule, since) = match *e {
            Event::PhaseStarted { ts, phase } => (ts, "phase_started", phase, None, None),
            Event::Pending { ts, rule, phase } => {
                rule_out[rule].first_pending_ms.get_or_insert(ts);
                (ts, "pending", phase, Some(rule), None)
            }
            Event::Firing {
                ts,
                rule,
                phase,
                active_at,
            } => {
                rule_out[rule].first_firing_ms.get_or_insert(ts);
                (ts, "firing", phase, Some(rule), Some(active_at))
            }
            Event::Cleared { ts, rule, phase } => (ts, "cleared", phase, Some(rule), None),
            Event::Resolved { ts, rule, phase } => (ts, "resolved", phase, Some(rule), None),
            Event::GateFailed { ts, rule, phase } => {
                gate_failures.push(GateFailureOut {
                    phase: phase_name(phase),
                    alert: rules[rule].alert.clone(),
                    at_ms: ts,
                });
                (ts, "gate_failed", phase, Some(rule), None)
            }
        };
        events.push(EventOut {
            at_ms: at,
            time: time(at),
            event: name,
            phase: phase_name(phase),
            alert: rule.map(|r| rules[r].alert.clone()),
            active_since_ms: since,
        });
    }
    let verdict = match verdict {
        Some(Verdict::RolledBack { ts, phase, rule }) => VerdictOut {
            outcome: "rolled_back",
            at_ms: ts,
            time: time(ts),
            phase: phase_name(phase),
            alert: Some(rules[rule].alert.clone()),
            summary: Some(rules[rule].summary.clone()),
        },
        Some(Verdict::Promoted { ts }) => VerdictOut {
            outcome: "promoted",
            at_ms: ts,
            time: time(ts),
            phase: phase_name(schedule.phase_at(ts)),
            alert: None,
            summary: None,
        },
        None => VerdictOut {
            outcome: "running",
            at_ms: f.end,
            time: time(f.end),
            phase: phase_name(ev.phase()),
            alert: None,
            summary: None,
        },
    };
    let metrics = plan
        .metrics
        .iter()
        .enumerate()
        .filter(|(mi, _)| rules.iter().any(|r| r.metric == *mi))
        .map(|(mi, m)| {
            let [c, s] = inputs.origin(mi);
            let stable = lower::tracks_needed(rules, mi)
                .contains(&crate::promql::Track::Stable)
                .then_some(s);
            MetricOut {
                name: m.name.clone(),
                canary: c,
                stable,
            }
        })
        .collect();
    let unused: Vec<String> = inputs.unused().map(|s| s.display()).collect();
    Report {
        format: "plan-replay",
        version: 1,
        plan: plan.name.clone(),
        trace: f.file.to_string(),
        semantics: match f.semantics {
            Semantics::Prometheus2 => "prometheus2",
            Semantics::Prometheus3 => "prometheus3",
        },
        start: format_rfc3339(f.zero),
        start_unix_ms: f.zero,
        evaluation_interval_ms: f.ei,
        trace_end_ms: f.end,
        evaluations: f.evaluations,
        phases: plan
            .phases
            .iter()
            .zip(&schedule.starts)
            .map(|(p, &s)| PhaseOut {
                name: p.name.clone(),
                traffic: p.traffic.to_string(),
                starts_ms: s,
            })
            .collect(),
        metrics,
        unused_series_total: unused.len(),
        unused_series: unused.into_iter().take(20).collect(),
        rules: rule_out,
        events,
        verdict,
        gate_failures,
    }
}

fn origin_text(o: &Origin) -> String {
    match o {
        Origin::Recorded { series } => format!("recorded {series}"),
        Origin::Raw { series } => format!("raw ({series} series)"),
        Origin::Absent => "no series in the trace".into(),
    }
}

/// The human timeline.
pub fn human(r: &Report) -> String {
    let mut s = String::new();
    let sem = if r.semantics == "prometheus2" {
        "Prometheus 2.42"
    } else {
        "Prometheus 3"
    };
    let _ = writeln!(
        s,
        "Replay of {} through plan `{}` ({sem} semantics)",
        r.trace, r.plan
    );
    let _ = writeln!(
        s,
        "  t=0 (release start) is {}; the trace ends at {}; {} evaluations every {}",
        r.start,
        offset(r.trace_end_ms),
        r.evaluations,
        offset(r.evaluation_interval_ms).trim_start_matches('+')
    );
    let width = r.metrics.iter().map(|m| m.name.len()).max().unwrap_or(0);
    let _ = writeln!(s, "\nMetrics");
    for m in &r.metrics {
        let _ = write!(s, "  {:width$}  canary: {}", m.name, origin_text(&m.canary));
        if let Some(st) = &m.stable {
            let _ = write!(s, "; stable: {}", origin_text(st));
        }
        s.push('\n');
    }
    if r.unused_series_total > 0 {
        let _ = writeln!(
            s,
            "  not read by any rule: {}{}",
            r.unused_series
                .iter()
                .take(5)
                .cloned()
                .collect::<Vec<_>>()
                .join(", "),
            if r.unused_series_total > 5 {
                format!(" and {} more", r.unused_series_total - 5)
            } else {
                String::new()
            }
        );
    }
    let _ = writeln!(s, "\nTimeline");
    let aw = r.rules.iter().map(|x| x.alert.len()).max().unwrap_or(0);
    let summary = |alert: &str| {
        r.rules
            .iter()
            .find(|x| x.alert == alert)
            .map_or("", |x| x.summary.as_str())
    };
    // Per rule: transitions listed so far, and how many there are in all.
    let mut shown = vec![0usize; r.rules.len()];
    let mut total: Vec<u64> = r.rules.iter().map(|x| x.transitions_omitted).collect();
    let rule_of = |alert: &Option<String>| {
        let a = alert.as_deref()?;
        r.rules.iter().position(|x| x.alert == a)
    };
    for e in &r.events {
        if e.event != "gate_failed"
            && let Some(i) = rule_of(&e.alert)
        {
            total[i] += 1;
        }
    }
    let last_of = |i: usize| {
        r.events
            .iter()
            .rev()
            .find(|e| e.event != "gate_failed" && rule_of(&e.alert) == Some(i))
            .map_or(0, |e| e.at_ms)
    };
    for e in &r.events {
        if e.event != "gate_failed"
            && let Some(i) = rule_of(&e.alert)
        {
            shown[i] += 1;
            if shown[i] > MAX_TIMELINE_TRANSITIONS_PER_RULE {
                if shown[i] == MAX_TIMELINE_TRANSITIONS_PER_RULE + 1 {
                    let more = total[i] - MAX_TIMELINE_TRANSITIONS_PER_RULE as u64;
                    let rule = &r.rules[i];
                    let until = match rule.last_omitted_ms {
                        Some(t) => t,
                        None => last_of(i),
                    };
                    let listed = if rule.transitions_omitted > 0 {
                        format!(
                            "`--format json` lists the first {MAX_REPLAY_TRANSITIONS_PER_RULE} and counts the rest"
                        )
                    } else {
                        "`--format json` lists every one".to_string()
                    };
                    let _ = writeln!(
                        s,
                        "  {:>10}  {}  [{}]  {:aw$}  ... {more} more transitions of this rule, up to {}, not shown here; {listed}",
                        offset(e.at_ms),
                        e.time,
                        e.phase,
                        rule.alert,
                        offset(until),
                    );
                }
                continue;
            }
        }
        let at = offset(e.at_ms);
        let line = match (e.event, &e.alert) {
            ("phase_started", _) => {
                let traffic = r
                    .phases
                    .iter()
                    .find(|p| p.name == e.phase)
                    .map_or("", |p| p.traffic.as_str());
                format!("phase {} starts ({traffic} of traffic)", e.phase)
            }
            ("firing", Some(a)) => format!(
                "{a:aw$}  FIRING     {} (pending since {})",
                summary(a),
                offset(e.active_since_ms.unwrap_or(e.at_ms))
            ),
            ("pending", Some(a)) => format!("{a:aw$}  pending    {}", summary(a)),
            ("cleared", Some(a)) => format!("{a:aw$}  cleared    (false before `for` elapsed)"),
            ("resolved", Some(a)) => format!("{a:aw$}  resolved"),
            ("gate_failed", Some(a)) => {
                format!("{a:aw$}  GATE FAILED: firing when phase {} ended", e.phase)
            }
            (other, _) => other.to_string(),
        };
        let _ = writeln!(s, "  {at:>10}  {}  [{}]  {line}", e.time, e.phase);
    }
    let v = &r.verdict;
    let _ = writeln!(s);
    match v.outcome {
        "rolled_back" => {
            let _ = writeln!(
                s,
                "Verdict: ROLLED BACK at {} ({}) in phase {}: {} fired ({}).",
                offset(v.at_ms),
                v.time,
                v.phase,
                v.alert.as_deref().unwrap_or(""),
                v.summary.as_deref().unwrap_or("")
            );
        }
        "promoted" => {
            let _ = writeln!(
                s,
                "Verdict: PROMOTED at {} ({}): the release reached phase {}.",
                offset(v.at_ms),
                v.time,
                v.phase
            );
        }
        _ => {
            let _ = writeln!(
                s,
                "Verdict: still RUNNING when the trace ends at {} ({}), in phase {}; no rollback rule fired.",
                offset(v.at_ms),
                v.time,
                v.phase
            );
        }
    }
    if r.gate_failures.is_empty() {
        let _ = writeln!(s, "Gates: none was firing at the end of a phase.");
    } else {
        for g in &r.gate_failures {
            let _ = writeln!(
                s,
                "Gate failed: {} was firing when phase {} ended at {}: the phase could not advance.",
                g.alert,
                g.phase,
                offset(g.at_ms)
            );
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets() {
        assert_eq!(offset(0), "+0s");
        assert_eq!(offset(60_000), "+1m");
        assert_eq!(offset(3_900_000), "+1h5m");
        assert_eq!(offset(90_061_500), "+1d1h1m1.5s");
        assert_eq!(offset(-30_000), "-30s");
    }
}
