//! One section per alerting rule, under the anchor its alert links to: the gates, the
//! rollback rules and the no-data warnings: when each fires, who hears of it, what to do.

use super::context::Ctx;
use super::markdown::{code, heading, md};
use super::phases::gate_failure;
use crate::check::Target;
use crate::check::{GatePolicy, Limit, Metric};
use crate::lower::{self, RuleKind};
use crate::model::AfterMaxHold;
use crate::render::anchors::anchor;
use crate::render::commands::{self, compose_command};
use crate::render::compose::canary_service;
use crate::render::step::Step;
use crate::render::text::{gate_text, limit_text, rollback_text};
use std::fmt::{self, Write};

/// The heading of an alerting rule's section: its anchor (`anchors::anchor`), and the alert's
/// name in lowercase as a second anchor, so a link built from the alert name also lands.
fn rule_heading(out: &mut String, cx: &Ctx, kind: RuleKind, id: &str, text: &str) -> fmt::Result {
    let main = anchor(kind, id);
    let alias = cx.alert_name(kind, id).to_ascii_lowercase();
    if alias.is_empty() || alias == main {
        heading(out, 3, &main, text)
    } else {
        writeln!(out, "### <a id=\"{main}\"></a><a id=\"{alias}\"></a>{text}")?;
        writeln!(out)
    }
}

fn metric_line(out: &mut String, m: &Metric) -> fmt::Result {
    writeln!(
        out,
        "- **Metric:** {}: {} (unit: {}; recorded as {})",
        code(&m.name),
        md(&m.description),
        m.unit.name(),
        code(&lower::record_name(m))
    )
}

pub(super) fn write_gates(out: &mut String, cx: &Ctx) -> fmt::Result {
    let p = cx.plan;
    heading(out, 2, "gates", "Gates")?;
    let window = p.monitoring.window;
    if p.gates.is_empty() {
        writeln!(
            out,
            "A gate is a health target {} must meet for a phase to advance. While one does not \
             hold for {window}, its warning fires (to {}); the phase must not advance, and \
             nothing is rolled back by the gate alone.",
            md(&p.release.to),
            cx.warning_to
        )?;
        writeln!(out)?;
        writeln!(out, "This plan has no gates.")?;
        writeln!(out)?;
    } else {
        writeln!(
            out,
            "A gate is a health target {} must meet for a phase to advance. While one does not \
             hold for {window}, its warning fires (to {}) and the phase must not advance. When \
             a phase's minimum duration is up with a gate firing, {}. In the last phase (100%) \
             a gate only warns: its watch ends in completion unless a rollback rule fires.",
            md(&p.release.to),
            cx.warning_to,
            gate_failure(p)
        )?;
        writeln!(out)?;
    }
    for g in &p.gates {
        let m = &p.metrics[g.metric];
        rule_heading(
            out,
            cx,
            RuleKind::Gate,
            &m.name,
            &format!("Gate: {}", code(&gate_text(p, g))),
        )?;
        metric_line(out, m)?;
        writeln!(out, "- **As written:** {}", code(&g.written))?;
        writeln!(
            out,
            "- **Alert:** {} (warning) fires when the canary's {} is {} {} for {window}.",
            code(&cx.alert_name(RuleKind::Gate, &m.name)),
            code(&m.name),
            g.op.negate().as_str(),
            limit_text(g.alert_limit(), m, "and")
        )?;
        if matches!(g.limit, Limit::RelativeToStable { .. }) {
            writeln!(
                out,
                "- **Compared with stable:** needs traffic on both versions; it cannot be \
                 judged once {} takes all traffic.",
                md(&p.release.to)
            )?;
        }
        writeln!(out, "- **Notified:** {}", cx.warning_to)?;
        let related: Vec<String> = p
            .rollbacks
            .iter()
            .filter(|r| r.metric == g.metric)
            .map(|r| {
                format!(
                    "[{}](#{})",
                    code(&rollback_text(p, r)),
                    anchor(RuleKind::Rollback, &r.id)
                )
            })
            .collect();
        if !related.is_empty() {
            writeln!(
                out,
                "- **{}:** {}",
                if cx.automatic() {
                    "Rolls back automatically at"
                } else {
                    "Rollback alert at"
                },
                related.join(", ")
            )?;
        }
        let at_end = match p.gate_policy {
            GatePolicy::Rollback => "roll back at once".to_string(),
            GatePolicy::Hold { max, then } => format!(
                "hold the phase at most {max}, then {}",
                match then {
                    AfterMaxHold::Rollback => "roll back",
                    AfterMaxHold::Stay => "stay held until the people running the release decide",
                }
            ),
        };
        writeln!(
            out,
            "- **What to do:** hold the current phase; compare the canary with stable; find \
             the cause in the canary's logs. Advance only after the alert resolves; if it still \
             fires when the phase's minimum duration is up, {at_end} (the gate policy); [roll \
             back](#rolling-back) by hand sooner if it keeps worsening."
        )?;
        writeln!(out)?;
    }
    Ok(())
}

pub(super) fn write_rollback_rules(out: &mut String, cx: &Ctx) -> fmt::Result {
    let p = cx.plan;
    heading(out, 2, "rollback-rules", "Automatic rollback")?;
    writeln!(
        out,
        "A rollback rule fires a critical alert when the canary's metric stays past its \
         limit for the rule's duration, in any phase. The alert is the trigger: the release \
         pipeline (reading `manifest.json`) or the person on call then applies \
         [the rollback](#rolling-back) at once."
    )?;
    writeln!(out)?;
    if p.rollbacks.is_empty() {
        writeln!(
            out,
            "This plan has no rollback rules: nothing rolls it back automatically."
        )?;
        writeln!(out)?;
    }
    for r in &p.rollbacks {
        let m = &p.metrics[r.metric];
        rule_heading(
            out,
            cx,
            RuleKind::Rollback,
            &r.id,
            &format!("Rollback: {}", code(&rollback_text(p, r))),
        )?;
        let lasting = match r.for_.positive() {
            Some(d) => format!("stays {{}} {{}} for {d}"),
            // `for: 0`: the first evaluation past the limit fires.
            None => "is {} {} at any evaluation (`for: 0s`)".to_string(),
        };
        writeln!(
            out,
            "- **Fires when:** the canary's {} {}.",
            code(&m.name),
            lasting
                .replacen(
                    "{}",
                    match r.bad_op(m).as_str() {
                        ">" => "above",
                        _ => "below",
                    },
                    1
                )
                .replacen("{}", &limit_text(r.limit, m, "and"), 1)
        )?;
        if let Some(g) = r.min_requests {
            writeln!(
                out,
                "- **Only with traffic:** the canary must have served at least {} requests in the {} window (`min_requests`, recorded as {}); in a thinner window the rule does not count, and its {} starts over.",
                g.min,
                p.monitoring.window,
                code(&lower::record_name(&p.metrics[g.count])),
                r.for_
            )?;
        }
        writeln!(
            out,
            "- **As written:** threshold {}, duration {}{}",
            code(&r.written),
            code(&r.for_.to_string()),
            r.min_requests
                .map(|g| format!(", min_requests {}", code(&g.min.to_string())))
                .unwrap_or_default()
        )?;
        metric_line(out, m)?;
        writeln!(
            out,
            "- **Alert:** {} (critical)",
            code(&cx.alert_name(RuleKind::Rollback, &r.id))
        )?;
        writeln!(out, "- **Notified:** {}", cx.critical_to)?;
        writeln!(
            out,
            "- **What to do:** [roll back now](#rolling-back); do not wait for the cause. Then \
             analyse why {} crossed the limit before trying again.",
            code(&m.name)
        )?;
        writeln!(out)?;
    }
    write_silent_canary(out, cx)
}

/// The silent-canary rule's section (or a line saying the plan turned it off).
fn write_silent_canary(out: &mut String, cx: &Ctx) -> fmt::Result {
    let p = cx.plan;
    let Some(sc) = p.silent_canary else {
        writeln!(
            out,
            "The silent-canary rule is off (`monitoring.silent_canary: off`): a canary that \
             crashes is noticed only by the no-data warnings, and is never rolled back \
             automatically."
        )?;
        return writeln!(out);
    };
    let Some(r) = cx.rules.iter().find(|r| r.is_silent_canary()) else {
        return Ok(());
    };
    let m = &p.metrics[sc.metric];
    rule_heading(
        out,
        cx,
        RuleKind::Rollback,
        &r.id,
        &format!(
            "Rollback: silent canary ({})",
            code(&format!("for {}", sc.after))
        ),
    )?;
    let serving: Vec<String> = (0..p.phases.len())
        .filter(|&i| r.runs_in(i))
        .map(|i| code(&p.phases[i].name))
        .collect();
    writeln!(
        out,
        "- **Fires when:** none of the canary's scrape targets has answered Prometheus for {} \
         (their `up` is 0), or no target of the canary is listed at all (`up` is absent), in a \
         phase that sends it users ({}).",
        sc.after,
        serving.join(", ")
    )?;
    writeln!(
        out,
        "- **Why it rolls back:** when the canary crashes, hangs or is gone, NGINX answers its \
         users with 502s that no application metric counts, and its own series vanish: every \
         other rule on it compares nothing and stays quiet, and only no-data warnings would \
         fire, for as long as the phase lasts. A silent canary is a failed canary."
    )?;
    writeln!(
        out,
        "- **As written:** {}",
        if sc.default {
            format!(
                "not in the plan; the default is used: {}, the rate window (at least two \
                 evaluation intervals). A restart or a failed scrape is shorter; after a whole \
                 window the canary has no `rate()` left, so every other rule is blind. Set \
                 `monitoring.silent_canary` to a duration, or `off`.",
                code(&sc.after.to_string())
            )
        } else {
            format!("`monitoring.silent_canary: {}`", sc.after)
        }
    )?;
    metric_line(out, m)?;
    writeln!(
        out,
        "- **Reads only `up`:** never the request counters, whose labelled series a client \
         library creates at a first request (a healthy canary that has served no 5xx has no \
         `code=\"5xx\"` series), so a healthy canary never trips it."
    )?;
    writeln!(out, "- **Alert:** {} (critical)", code(&r.alert))?;
    writeln!(out, "- **Notified:** {}", cx.critical_to)?;
    match p.deployment.target {
        Target::Compose => writeln!(
            out,
            "- **What to do:** [roll back now](#rolling-back); users are getting errors. Then \
             look at why {} stopped: {} with the phase's override, its exit code, an OOM kill \
             (`docker inspect`), its logs.",
            code(&canary_service(p)),
            code(&format!("{} ps", compose_command(p, Step::Phase(0))))
        )?,
        Target::Host(_) => writeln!(
            out,
            "- **What to do:** [roll back now](#rolling-back); users are getting errors. Then \
             look at why the canary {} stopped answering Prometheus' scrapes: its processes, \
             their exit codes, an OOM kill, their logs.",
            code(&p.release.to),
        )?,
    }
    writeln!(out)
}

pub(super) fn write_no_data(out: &mut String, cx: &Ctx) -> fmt::Result {
    let p = cx.plan;
    heading(out, 2, "no-data", "No data")?;
    writeln!(
        out,
        "When the canary reports no value for a watched metric, every comparison on it is \
         false: its gates pass and its rollback rules cannot fire. A warning (to {}) says so \
         after {}.",
        cx.warning_to, p.monitoring.window
    )?;
    writeln!(out)?;
    let state = commands::services_state(p, Step::Phase(0));
    for r in cx.rules.iter().filter(|r| r.kind == RuleKind::NoData) {
        let m = &p.metrics[r.metric];
        rule_heading(
            out,
            cx,
            RuleKind::NoData,
            &r.id,
            &format!("No data: {}", code(&m.name)),
        )?;
        metric_line(out, m)?;
        writeln!(out, "- **Alert:** {} (warning)", code(&r.alert))?;
        writeln!(out, "- **Notified:** {}", cx.warning_to)?;
        writeln!(
            out,
            "- **What to do:** check that {} runs and is scraped, and that the phase sends it \
             traffic (at a small share, a quiet hour may bring no request){}, then query {} in \
             Prometheus. Do not advance while the metric has no data.",
            code(&canary_service(p)),
            match &state {
                Some(c) => format!(": {} (with the current phase's override)", code(&c.run)),
                None => String::new(),
            },
            code(&lower::record_name(m))
        )?;
        writeln!(out)?;
    }
    Ok(())
}
