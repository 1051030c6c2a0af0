//! The replay's human timeline: where each metric comes from, each rule's transitions with
//! their phase (the first few per rule, then a count), the gates failing at phase ends, and
//! the verdict.

use super::ReplayReport;
use crate::limits::{MAX_REPLAY_TRANSITIONS_PER_RULE, MAX_TIMELINE_TRANSITIONS_PER_RULE};
use crate::prom::Origin;
use crate::sim::trace::time::offset;
use std::fmt::Write as _;

fn origin_text(o: &Origin) -> String {
    match o {
        Origin::Recorded { series } => format!("recorded {series}"),
        Origin::Raw { series } => format!("raw ({series} series)"),
        Origin::Absent => "no series in the trace".into(),
    }
}

/// The human timeline.
pub(crate) fn timeline(r: &ReplayReport) -> String {
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
    let every = offset(r.evaluation_interval_ms);
    let every = every.trim_start_matches('+');
    let _ = writeln!(
        s,
        "  t=0, the release's start: {} ({})",
        r.start,
        if r.start_from == "flag" {
            "--start".to_string()
        } else {
            "the trace's first sample; --start to change".to_string()
        }
    );
    let _ = writeln!(
        s,
        "  end: {} ({}; {})",
        offset(r.end_ms),
        r.end,
        if r.end_from == "flag" {
            "--end".to_string()
        } else {
            "the trace's last sample; --end to go on".to_string()
        }
    );
    let _ = writeln!(
        s,
        "  the trace holds samples from {} to {}; its series go stale 5m after their last sample ({}{})",
        offset(r.trace_start_ms),
        offset(r.trace_end_ms),
        // 2.x's closed lookback window still reads a sample exactly 5m old.
        if r.semantics == "prometheus2" {
            "just after "
        } else {
            "at "
        },
        offset(r.stale_from_ms)
    );
    let grid = if r.evaluation_offset_ms == 0 {
        format!("Unix times that are multiples of {every}")
    } else {
        format!(
            "Unix times that are multiples of {every} plus {}",
            offset(r.evaluation_offset_ms).trim_start_matches('+')
        )
    };
    match (r.first_evaluation_ms, r.last_evaluation_ms) {
        (Some(first), Some(last)) => {
            let _ = writeln!(
                s,
                "  {} evaluations every {every}, from {} to {}, on Prometheus' grid: {grid} (--evaluation-offset to match your rule group's)",
                r.evaluations,
                offset(first),
                offset(last),
            );
        }
        _ => {
            let _ = writeln!(
                s,
                "  no evaluation: none of the grid times ({grid}) falls between the start and the end"
            );
        }
    }
    if let Some(first) = r.first_evaluation_ms.filter(|&f| f > 0) {
        let _ = writeln!(
            s,
            "  the release starts between two evaluations: the first is {} after it",
            offset(first).trim_start_matches('+')
        );
    }
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
    for sel in &r.unmatched_selectors {
        let _ = writeln!(s, "  matches no series of the trace: {sel}");
    }
    for note in &r.not_evaluated {
        let _ = writeln!(s, "  not evaluated: {note}");
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
    let mut past_verdict = false;
    for e in &r.events {
        if e.after_verdict && !past_verdict {
            past_verdict = true;
            let _ = writeln!(
                s,
                "  {:>10}  --- the verdict: {}; what follows would have happened had the release gone on ---",
                offset(r.verdict.at_ms),
                verdict_short(r)
            );
        }
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
                format!(
                    "{a:aw$}  GATE FAILED: firing when phase {}'s duration was up",
                    e.phase
                )
            }
            ("hold_started", _) => format!(
                "HOLD: phase {} is held, its gates checked at every evaluation",
                e.phase
            ),
            ("hold_ended", _) => format!("hold of phase {} ends", e.phase),
            (other, _) => other.to_string(),
        };
        let _ = writeln!(s, "  {at:>10}  {}  [{}]  {line}", e.time, e.phase);
    }
    let v = &r.verdict;
    let _ = writeln!(s);
    match v.outcome {
        "rolled_back" if v.reason != "rule" => {
            let _ = writeln!(
                s,
                "Verdict: ROLLED BACK at {} ({}) in phase {}: the gate {} {} ({}).",
                offset(v.at_ms),
                v.time,
                v.phase,
                v.alert.as_deref().unwrap_or(""),
                if v.reason == "hold_limit" {
                    "still failed when the longest hold was up"
                } else {
                    "was firing when the phase's duration was up"
                },
                v.summary.as_deref().unwrap_or("")
            );
        }
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
        "completed" => {
            let _ = writeln!(
                s,
                "Verdict: COMPLETED at {} ({}): the watch of phase {} ended with no rollback.",
                offset(v.at_ms),
                v.time,
                v.phase
            );
        }
        "held" => {
            let _ = writeln!(
                s,
                "Verdict: HELD at {} ({}) in phase {}: its gates still failed when the longest hold was up; someone must decide.",
                offset(v.at_ms),
                v.time,
                v.phase
            );
        }
        _ => {
            let _ = writeln!(
                s,
                "Verdict: still RUNNING when the replay ends at {} ({}), in phase {}; no rollback rule fired.",
                offset(v.at_ms),
                v.time,
                v.phase
            );
        }
    }
    let phase_ended = r
        .events
        .iter()
        .any(|e| e.event == "phase_started" || e.event == "hold_started")
        || r.verdict.reason == "watch_ended";
    if r.gate_failures.is_empty() {
        let _ = writeln!(
            s,
            "{}",
            if phase_ended {
                "Gates: none was firing at the end of a phase."
            } else {
                "Gates: no phase's duration was up within the replay."
            }
        );
    } else {
        for g in &r.gate_failures {
            let _ = writeln!(
                s,
                "Gate failed: {} was firing when phase {}'s duration was up at {}: it could not advance ({}){}.",
                g.alert,
                g.phase,
                offset(g.at_ms),
                r.gate_policy.text(),
                if g.after_verdict {
                    " (after the verdict)"
                } else {
                    ""
                }
            );
        }
    }
    for h in &r.holds {
        let how = match (h.outcome, h.to_ms) {
            ("advanced", Some(to)) => format!(
                "held {}, until its gates passed at {}; the next phase began then",
                span(to - h.from_ms),
                offset(to)
            ),
            ("rolled_back", Some(to)) => format!(
                "held {}, the longest hold: rolled back at {}",
                span(to - h.from_ms),
                offset(to)
            ),
            ("stayed", Some(to)) => format!(
                "held {}, the longest hold: still held at {}, for someone to decide",
                span(to - h.from_ms),
                offset(to)
            ),
            _ => "still held when the replay ends".to_string(),
        };
        let _ = writeln!(
            s,
            "Hold: phase {} from {}, {how}{}.",
            h.phase,
            offset(h.from_ms),
            if h.after_verdict {
                " (after the verdict)"
            } else {
                ""
            }
        );
    }
    if r.after_verdict.is_empty() {
        if r.verdict.outcome != "running" {
            let _ = writeln!(
                s,
                "After the verdict: no other rule or gate started firing up to {}.",
                offset(r.end_ms)
            );
        }
    } else {
        let _ = writeln!(
            s,
            "After the verdict, had the release gone on: {} started firing up to {}:",
            plural_rules(r.after_verdict.len()),
            offset(r.end_ms)
        );
        let aw = r
            .after_verdict
            .iter()
            .map(|a| a.alert.len())
            .max()
            .unwrap_or(0);
        for a in &r.after_verdict {
            let _ = writeln!(
                s,
                "  {:>10}  [{}]  {:aw$}  {:<8}  {}",
                offset(a.at_ms),
                a.phase,
                a.alert,
                a.kind,
                a.summary
            );
        }
    }
    s
}

/// A length of time, as `31m` or `1d2h`.
fn span(ms: i64) -> String {
    offset(ms).trim_start_matches('+').to_string()
}

/// `1 rule` / `3 rules`.
fn plural_rules(n: usize) -> String {
    format!("{n} rule{}", if n == 1 { "" } else { "s" })
}

/// The verdict in a few words, for the separator line.
fn verdict_short(r: &ReplayReport) -> String {
    let v = &r.verdict;
    match v.outcome {
        "rolled_back" => format!(
            "rolled back by {} in phase {}",
            v.alert.as_deref().unwrap_or(""),
            v.phase
        ),
        "completed" => format!("completed (the watch of phase {} ended)", v.phase),
        "held" => format!("held in phase {}", v.phase),
        _ => "still running".to_string(),
    }
}
