//! The release step by step: the preparation, each phase (who, how long, what to run,
//! what is watched, when to advance) and the promotion.

use super::context::Ctx;
use super::markdown::{applied_files, code, commands_block, group_item, heading, md};
use crate::check::{CheckedPlan, GatePolicy};
use crate::lower::RuleKind;
use crate::model::{AfterMaxHold, Duration, trim};
use crate::render::alertmanager;
use crate::render::anchors::anchor;
use crate::render::commands::{self};
use crate::render::step::Step;
use crate::render::text::{gate_text, rollback_text};
use std::fmt::{self, Write};

pub(super) fn write_preparation(out: &mut String, cx: &Ctx) -> fmt::Result {
    let p = cx.plan;
    heading(out, 2, "preparation", "Preparation")?;
    writeln!(out, "Before the first phase:")?;
    writeln!(out)?;
    writeln!(
        out,
        "1. Test {} fully in a test environment, back up the data, and make sure the people \
         who can roll back are online for the first phase.",
        md(&p.release.to)
    )?;
    writeln!(
        out,
        "2. Make sure the image {} is pulled or can be pulled on the host.",
        code(&format!("{}:{}", p.service.image, p.release.to))
    )?;
    let n = &p.notifications;
    let secrets: Vec<String> = [
        n.slack
            .as_ref()
            .map(|s| format!("{} (the Slack webhook URL)", code(&s.api_url_file))),
        n.email
            .as_ref()
            .and_then(|e| e.auth_password_file.as_ref())
            .map(|f| format!("{} (the SMTP password)", code(f))),
        n.sms
            .as_ref()
            .and_then(|s| s.credentials_file.as_ref())
            .map(|f| format!("{} (the SMS gateway's token)", code(f))),
    ]
    .into_iter()
    .flatten()
    .collect();
    let secrets = if secrets.is_empty() {
        String::new()
    } else {
        format!(
            ", and be able to read the secret files it names: {}",
            secrets.join(", ")
        )
    };
    writeln!(
        out,
        "3. Prometheus must run with `--web.enable-lifecycle` (the steps reload it) and load \
         the phase's rule file; Alertmanager must use {}{secrets}.",
        code(alertmanager::PATH)
    )?;
    writeln!(
        out,
        "4. Check every generated rule file, its unit tests and the Alertmanager \
         configuration:"
    )?;
    writeln!(out)?;
    commands_block(out, &commands::preparation_commands(p))?;
    Ok(())
}

pub(super) fn write_phase(out: &mut String, cx: &Ctx, i: usize) -> fmt::Result {
    let p = cx.plan;
    let ph = &p.phases[i];
    let last = i + 1 == p.phases.len();
    heading(
        out,
        2,
        &format!("phase-{}", ph.name),
        &format!(
            "Phase {} of {}: {} ({})",
            i + 1,
            p.phases.len(),
            md(&ph.name),
            ph.traffic
        ),
    )?;
    // Who.
    write!(
        out,
        "**Who gets {}:** {} of users by the split",
        md(&p.release.to),
        ph.traffic
    )?;
    if ph.groups.is_empty() {
        writeln!(out, "; no group is targeted.")?;
    } else {
        writeln!(out, ", plus these targeted groups:")?;
        writeln!(out)?;
        for &gi in &ph.groups {
            let g = &p.groups[gi];
            group_item(out, g)?;
        }
    }
    writeln!(out)?;
    if let Some(s) = Step::Phase(i).expected_request_share(p) {
        writeln!(
            out,
            "Expected share of requests on {}: about {s} (the split applies to users outside \
             the targeted groups).",
            md(&p.release.to)
        )?;
        writeln!(out)?;
    }
    // How long.
    match ph.duration {
        _ if last => writeln!(
            out,
            "**Watch:** {} from the moment the commands below complete: the rollback rules \
             keep running, and any one firing rolls the release back. When the watch ends \
             without a rollback, the release is complete.",
            watch_text(p)
        )?,
        Some(d) => writeln!(
            out,
            "**Minimum duration:** {d} ({} hours) from the moment the commands below complete.",
            trim(d.seconds() / 3600.0)
        )?,
        None => writeln!(
            out,
            "**Duration:** the last phase runs on; [promote](#promotion) once it has run long \
             enough with every gate holding."
        )?,
    }
    writeln!(out)?;
    // What to run.
    let step = Step::Phase(i);
    writeln!(
        out,
        "**Start the phase** (applies {}):",
        applied_files(p, step)
    )?;
    writeln!(out)?;
    commands_block(out, &commands::step_commands(p, step))?;
    // What is watched.
    if !p.gates.is_empty() {
        if last {
            writeln!(
                out,
                "**Gates (at 100% they only warn; the gate policy applies at the end of the \
                 phases before):**"
            )?;
        } else {
            writeln!(out, "**Watched (must hold to advance):**")?;
        }
        writeln!(out)?;
        for g in &p.gates {
            let m = &p.metrics[g.metric];
            writeln!(
                out,
                "- [{}](#{})",
                code(&gate_text(p, g)),
                anchor(RuleKind::Gate, &m.name)
            )?;
        }
        writeln!(out)?;
    }
    let silent = cx
        .rules
        .iter()
        .find(|r| r.is_silent_canary() && r.runs_in(i));
    if !p.rollbacks.is_empty() || silent.is_some() {
        if cx.automatic() {
            writeln!(
                out,
                "**Rolls back automatically (`plan release serve`) when:**"
            )?;
        } else {
            writeln!(
                out,
                "**Roll back when one of these alerts fires** (it pages {}; nothing rolls back \
                 by itself: `deployment.automatic_rollback` would):",
                cx.critical_to
            )?;
        }
        writeln!(out)?;
        for r in &p.rollbacks {
            writeln!(
                out,
                "- [{}](#{}), alert {}",
                code(&rollback_text(p, r)),
                anchor(RuleKind::Rollback, &r.id),
                code(&cx.alert_name(RuleKind::Rollback, &r.id))
            )?;
        }
        if let Some(r) = silent {
            writeln!(
                out,
                "- [the canary is silent](#{}): no scrape target up for {}, alert {}",
                anchor(RuleKind::Rollback, &r.id),
                Duration::from_millis(r.for_ms).map_or_else(String::new, |d| d.to_string()),
                code(&r.alert)
            )?;
        }
        writeln!(out)?;
    }
    // When to advance, or when the release is complete.
    if last {
        writeln!(
            out,
            "**The release is complete when** the watch of {} has ended and no rollback has \
             fired: go on to [the promotion](#promotion). A rollback rule firing during the \
             watch rolls the release back ([rolling back](#rolling-back)).",
            p.watch
        )?;
        return writeln!(out);
    }
    let nx = &p.phases[i + 1].name;
    let next = format!("[phase {}: {}](#phase-{nx})", i + 2, md(nx));
    let wait = match ph.duration {
        Some(d) => format!("at least {d} has passed"),
        None => "it has run long enough to trust".to_string(),
    };
    write!(
        out,
        "**Advance to {next} when** {wait}, no gate or no-data warning is firing for the plan \
         (`amtool alert query --alertmanager.url=http://localhost:9093 plan={}`) and no \
         rollback has fired.",
        p.name
    )?;
    match ph.duration {
        Some(d) if !p.gates.is_empty() => writeln!(
            out,
            " **If a gate is firing when the phase's {d} is up,** {}. While only a no-data warning \
             fires, hold the phase until the data is back, or [roll back](#rolling-back).",
            gate_failure(p)
        )?,
        _ => writeln!(
            out,
            " Otherwise hold the phase, or [roll back](#rolling-back)."
        )?,
    }
    writeln!(out)
}

pub(super) fn write_promotion(out: &mut String, cx: &Ctx) -> fmt::Result {
    let p = cx.plan;
    heading(out, 2, "promotion", "Promotion")?;
    writeln!(
        out,
        "When the last phase's watch of {} has ended without a rollback, the release is \
         complete: {} becomes the stable version and the canary is retired (applies {}):",
        p.watch,
        md(&p.release.to),
        applied_files(p, Step::Promotion)
    )?;
    writeln!(out)?;
    commands_block(out, &commands::step_commands(p, Step::Promotion))?;
    writeln!(
        out,
        "Afterwards: write down what the release showed (metrics, feedback, incidents), and set \
         the plan's `release.from` to {} for the next release.",
        code(&p.release.to)
    )?;
    writeln!(out)
}

/// What a gate firing when a phase's minimum duration is up does under the plan's
/// `gate_policy`, as the end of a sentence: roll back at once (the default), or hold the
/// phase, re-checking, at most `max_hold`, then roll back or stay held.
pub(super) fn gate_failure(p: &CheckedPlan) -> String {
    match p.gate_policy {
        GatePolicy::Rollback => "the release is [rolled back](#rolling-back) at once, with the \
             rollback steps (`gate_policy`: `on_failure: rollback`, the default)"
            .to_string(),
        GatePolicy::Hold { max, then } => {
            let after = match then {
                AfterMaxHold::Rollback => {
                    "the release is [rolled back](#rolling-back) with the rollback steps"
                        .to_string()
                }
                AfterMaxHold::Stay => "it stays held (`after_max_hold: stay`) until the people \
                     running the release decide to advance or [roll back](#rolling-back)"
                    .to_string(),
            };
            format!(
                "the phase is held (`gate_policy`: `on_failure: hold`): it keeps its traffic, the \
                 gates are re-checked at every evaluation, and it advances at the first at \
                 which none fires; held {max} ({} hours, `max_hold`) with a gate still firing, \
                 {after}",
                trim(max.seconds() / 3600.0)
            )
        }
    }
}

/// How long the last phase is watched, with ` (the default)` when the plan states none.
pub(super) fn watch_text(p: &CheckedPlan) -> String {
    let default = if p.watch_is_default() {
        ", the default: the plan states no `duration` for it"
    } else {
        ""
    };
    format!(
        "{} ({} hours{default})",
        p.watch,
        trim(p.watch.seconds() / 3600.0)
    )
}
