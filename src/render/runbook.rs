//! `RUNBOOK.md`: the release for people, in the spirit of the Lawsker guide (preparation,
//! start, advancing phases, completion, the rollback flow, troubleshooting) but generated
//! for this plan: for each phase what to run, who gets the new version, how long at least,
//! what is watched and when it rolls back, with the exact commands the manifest gives
//! pipelines. The text is English throughout; only what the plan itself says (names,
//! metric descriptions) appears as the user wrote it.
//!
//! Alerts link here: every rollback rule, gate and no-data rule has a fixed anchor
//! ([`anchor`]): `rollback-<rule id>`, `gate-<metric>`, `no-data-<metric>`. Ids and metric
//! names are identifiers (`[a-z][a-z0-9_]*`), so the anchors need no escaping and stay put
//! when thresholds change. Anchors are explicit `<a id>` tags, not heading slugs, so they do
//! not depend on a Markdown renderer's slug rules.
//!
//! Plain Markdown built with `std::fmt::Write` (minijinja is kept for NGINX). User text is
//! escaped for Markdown ([`md`]) or put in code spans ([`code`]).

use super::alertmanager;
use super::anchors::{self, anchor};
use super::artifact::{Artifact, header};
use super::commands::{self, COMPOSE_BASE, Command, compose_command, shell_word};
use super::compose::{NGINX_SERVICE, canary_service};
use super::step::Step;
use super::text::{gate_text, group_rule_text, limit_text, rollback_text};
use crate::check::{CheckedPlan, Limit, Metric};
use crate::lower::{self, AlertRule, RuleKind};
use crate::model::{Sticky, trim};
use std::fmt::{self, Write};

/// Renders `RUNBOOK.md`.
pub fn render(plan: &CheckedPlan) -> Vec<Artifact> {
    let mut out = String::new();
    // Writing into a String never fails; the Result only satisfies `fmt::Write`.
    if write_runbook(&mut out, plan).is_err() {
        out.clear();
    }
    vec![Artifact {
        path: anchors::RUNBOOK.into(),
        contents: out,
    }]
}

// ---------------------------------------------------------------------------------------
// Markdown helpers.

/// Escapes text for inline Markdown (CommonMark and GitHub's extensions): every character
/// that could start emphasis, code, a link, HTML, an entity, a table cell, strikethrough or
/// math is backslash-escaped, and line breaks become spaces. Only for text after a line's
/// start (list items, headings, table cells), where `#`, `-`, `+` or `1.` start nothing.
pub fn md(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' | '`' | '*' | '_' | '[' | ']' | '<' | '>' | '|' | '&' | '~' | '$' => {
                out.push('\\');
                out.push(c);
            }
            '\n' | '\r' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// A code span holding `s` verbatim: the fence is longer than any backtick run inside.
/// Not for table cells (a `|` would split the cell; tables use [`md`]).
pub fn code(s: &str) -> String {
    let s = s.replace(['\n', '\r'], " ");
    let longest = s.split(|c| c != '`').map(str::len).max().unwrap_or(0);
    let fence = "`".repeat(longest + 1);
    let pad = if s.starts_with('`') || s.ends_with('`') {
        " "
    } else {
        ""
    };
    format!("{fence}{pad}{s}{pad}{fence}")
}

/// A fenced shell block of commands, each preceded by its description as a comment.
fn commands_block(out: &mut String, cmds: &[Command]) -> fmt::Result {
    let longest = cmds
        .iter()
        .flat_map(|c| {
            c.run
                .split(|ch| ch != '`')
                .chain(c.description.split(|ch| ch != '`'))
        })
        .map(str::len)
        .max()
        .unwrap_or(0);
    let fence = "`".repeat((longest + 1).max(3));
    writeln!(out, "{fence}sh")?;
    for c in cmds {
        writeln!(out, "# {}", c.description.replace(['\n', '\r'], " "))?;
        writeln!(out, "{}", c.run)?;
    }
    writeln!(out, "{fence}")?;
    writeln!(out)
}

fn heading(out: &mut String, level: usize, id: &str, text: &str) -> fmt::Result {
    writeln!(out, "{} <a id=\"{id}\"></a>{text}", "#".repeat(level))?;
    writeln!(out)
}

/// The heading of an alerting rule's section: its anchor ([`anchor`]), and the alert's
/// name in lowercase as a second anchor, so a link built from the alert name also lands.
fn rule_heading(out: &mut String, cx: &Ctx, kind: RuleKind, id: &str, text: &str) -> fmt::Result {
    let main = anchor(kind, id);
    let alias = alert_name(cx, kind, id).to_ascii_lowercase();
    if alias.is_empty() || alias == main {
        heading(out, 3, &main, text)
    } else {
        writeln!(out, "### <a id=\"{main}\"></a><a id=\"{alias}\"></a>{text}")?;
        writeln!(out)
    }
}

// ---------------------------------------------------------------------------------------
// The document.

struct Ctx<'a> {
    plan: &'a CheckedPlan,
    rules: Vec<AlertRule>,
    /// Who hears of critical alerts (rollbacks) and of warnings (gates, no data), as text.
    critical_to: String,
    warning_to: String,
}

fn write_runbook(out: &mut String, plan: &CheckedPlan) -> fmt::Result {
    let n = &plan.notifications;
    let mut critical = Vec::new();
    if let Some(s) = &n.slack {
        critical.push(format!("Slack {}", md(&s.channel)));
    }
    if let Some(e) = &n.email {
        let to: Vec<String> = e.to.iter().map(|a| md(a)).collect();
        critical.push(format!("email to {}", to.join(", ")));
    }
    if n.sms.is_some() {
        critical.push("SMS (through the SMS gateway webhook)".into());
    }
    let nobody = "nobody: the plan has no `notifications`, so the alert shows only in Alertmanager";
    let critical_to = if critical.is_empty() {
        nobody.to_string()
    } else {
        critical.join("; ")
    };
    let warning_to = match &n.slack {
        Some(s) => format!("Slack {}", md(&s.channel)),
        None => nobody.to_string(),
    };
    let cx = Ctx {
        plan,
        rules: lower::alert_rules(plan),
        critical_to,
        warning_to,
    };
    write_header(out, &cx)?;
    write_overview(out, &cx)?;
    write_audience(out, &cx)?;
    write_preparation(out, &cx)?;
    for i in 0..plan.phases.len() {
        write_phase(out, &cx, i)?;
    }
    write_promotion(out, &cx)?;
    write_gates(out, &cx)?;
    write_rollback_rules(out, &cx)?;
    write_no_data(out, &cx)?;
    write_manual_rollback(out, &cx)?;
    write_troubleshooting(out, &cx)?;
    Ok(())
}

fn write_header(out: &mut String, cx: &Ctx) -> fmt::Result {
    let p = cx.plan;
    // An HTML comment ends at the first `-->`; keep the file name from closing it early.
    let h = header(p, "<!--").trim_end().replace("-->", "--&gt;");
    writeln!(out, "{h} -->")?;
    writeln!(
        out,
        "# Release runbook: {} {} → {}",
        md(&p.name),
        md(&p.release.from),
        md(&p.release.to)
    )?;
    writeln!(out)?;
    writeln!(
        out,
        "This runbook releases {} of service {} (image {}) in {} phases, watched by Prometheus \
         and rolled back when a rollback rule fires. It is generated from the plan together \
         with the files it applies; `manifest.json` holds the same steps for pipelines.",
        code(&p.release.to),
        code(&p.service.name),
        code(&p.service.image),
        p.phases.len()
    )?;
    writeln!(out)?;
    writeln!(
        out,
        "Run every command from the folder given to `plan render --out` (the parent of this \
         one), where the base compose file {} is: the compose commands layer each step's \
         override on it, and docker-compose resolves the overrides' paths against its folder. \
         The text names files relative to this runbook's folder; the commands name them from \
         the `--out` folder ({}).",
        code(COMPOSE_BASE),
        code(&format!("{}/...", p.name))
    )?;
    writeln!(out)?;
    writeln!(out, "Contents:")?;
    writeln!(out)?;
    writeln!(out, "- [Overview](#overview)")?;
    writeln!(out, "- [Who gets the new version](#audience)")?;
    writeln!(out, "- [Preparation](#preparation)")?;
    for (i, ph) in p.phases.iter().enumerate() {
        writeln!(
            out,
            "- [Phase {}: {}](#phase-{})",
            i + 1,
            md(&ph.name),
            ph.name
        )?;
    }
    writeln!(out, "- [Promotion](#promotion)")?;
    writeln!(out, "- [Gates](#gates)")?;
    writeln!(out, "- [Automatic rollback](#rollback-rules)")?;
    writeln!(out, "- [No data](#no-data)")?;
    writeln!(out, "- [Rolling back](#rolling-back)")?;
    writeln!(out, "- [Troubleshooting](#troubleshooting)")?;
    writeln!(out)
}

fn write_overview(out: &mut String, cx: &Ctx) -> fmt::Result {
    let p = cx.plan;
    heading(out, 2, "overview", "Overview")?;
    writeln!(
        out,
        "| Phase | Users on {} | Targeted groups | Minimum duration |",
        md(&p.release.to)
    )?;
    writeln!(out, "| --- | --- | --- | --- |")?;
    for (i, ph) in p.phases.iter().enumerate() {
        let groups: Vec<String> = ph.groups.iter().map(|&g| md(&p.groups[g].name)).collect();
        let groups = if groups.is_empty() {
            "none".to_string()
        } else {
            groups.join(", ")
        };
        let dur = ph
            .duration
            .map_or_else(|| "runs on until promotion".to_string(), |d| d.to_string());
        writeln!(
            out,
            "| [{}. {}](#phase-{}) | {} | {} | {} |",
            i + 1,
            md(&ph.name),
            ph.name,
            ph.traffic,
            groups,
            dur
        )?;
    }
    writeln!(out)?;
    let total_ms: u64 = p
        .phases
        .iter()
        .filter_map(|ph| ph.duration.map(|d| d.millis()))
        .sum();
    if let Some(total) = crate::model::Duration::from_millis(total_ms) {
        writeln!(
            out,
            "The phases before the last one last {total} at least ({} hours) before {} reaches \
             100% of users.",
            trim(total_ms as f64 / 3_600_000.0),
            md(&p.release.to)
        )?;
        writeln!(out)?;
    }
    writeln!(
        out,
        "Every phase is watched by the same [gates](#gates) (a phase may advance only while \
         they hold) and the same [rollback rules](#rollback-rules) (any one firing rolls the \
         release back):"
    )?;
    writeln!(out)?;
    for g in &p.gates {
        let m = &p.metrics[g.metric];
        writeln!(
            out,
            "- gate [{}](#{})",
            code(&gate_text(p, g)),
            anchor(RuleKind::Gate, &m.name)
        )?;
    }
    for r in &p.rollbacks {
        writeln!(
            out,
            "- rollback [{}](#{})",
            code(&rollback_text(p, r)),
            anchor(RuleKind::Rollback, &r.id)
        )?;
    }
    if p.gates.is_empty() && p.rollbacks.is_empty() {
        writeln!(
            out,
            "- none: this plan watches nothing; advance and roll back by judgement"
        )?;
    }
    writeln!(out)
}

fn write_audience(out: &mut String, cx: &Ctx) -> fmt::Result {
    let p = cx.plan;
    let r = &p.routing;
    heading(out, 2, "audience", "Who gets the new version")?;
    let sticky = match &r.sticky {
        Sticky::Cookie(c) => format!(
            "by the {} cookie (requests without it are split by client address), so a user \
             stays on one version as the share grows",
            code(c)
        ),
        Sticky::Header(h) => format!(
            "by the {} request header (requests without it are split by client address), so a \
             user stays on one version as the share grows",
            code(h)
        ),
        Sticky::ClientAddress(_) => {
            "by client address, so a client stays on one version as the share grows".to_string()
        }
    };
    writeln!(
        out,
        "- NGINX (listening on port {}) sends each phase's share of users to {} {sticky}.",
        r.listen,
        md(&p.release.to)
    )?;
    match &r.group_header {
        Some(h) => writeln!(
            out,
            "- Requests whose {} header names a group targeted by the phase go to {} whatever \
             the split. The application or API gateway sets this header from the user's \
             group; NGINX does not evaluate the conditions below.",
            code(h),
            md(&p.release.to)
        )?,
        None => writeln!(
            out,
            "- The plan sets no `group_header`, so targeted groups cannot be routed by NGINX; \
             only the split applies."
        )?,
    }
    if let Some(h) = &r.force_header {
        writeln!(
            out,
            "- Testers pin themselves with the {} header: {} or {}.",
            code(h),
            code(&format!("{h}: canary")),
            code(&format!("{h}: stable"))
        )?;
    }
    writeln!(out)?;
    if !p.groups.is_empty() {
        writeln!(
            out,
            "User groups (conditions on one attribute are alternatives; different attributes \
             must all hold):"
        )?;
        writeln!(out)?;
        for g in &p.groups {
            let share = g
                .share
                .map(|s| format!(" (about {s} of requests)"))
                .unwrap_or_default();
            writeln!(
                out,
                "- **{}**{share}: {}",
                md(&g.name),
                group_rule_text(g, code)
            )?;
        }
        writeln!(out)?;
    }
    Ok(())
}

fn write_preparation(out: &mut String, cx: &Ctx) -> fmt::Result {
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

fn write_phase(out: &mut String, cx: &Ctx, i: usize) -> fmt::Result {
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
            let share = g
                .share
                .map(|s| format!(" (about {s} of requests)"))
                .unwrap_or_default();
            writeln!(
                out,
                "- **{}**{share}: {}",
                md(&g.name),
                group_rule_text(g, code)
            )?;
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
        commands::artifacts(p, step)
            .iter()
            .map(|a| code(a))
            .collect::<Vec<_>>()
            .join(", ")
    )?;
    writeln!(out)?;
    commands_block(out, &commands::step_commands(p, step))?;
    // What is watched.
    if !p.gates.is_empty() {
        let to = if last { "promote" } else { "advance" };
        writeln!(out, "**Watched (must hold to {to}):**")?;
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
    if !p.rollbacks.is_empty() {
        writeln!(out, "**Rolls back automatically when:**")?;
        writeln!(out)?;
        for r in &p.rollbacks {
            writeln!(
                out,
                "- [{}](#{}), alert {}",
                code(&rollback_text(p, r)),
                anchor(RuleKind::Rollback, &r.id),
                code(&alert_name(cx, RuleKind::Rollback, &r.id))
            )?;
        }
        writeln!(out)?;
    }
    // When to advance.
    let next = if last {
        "[the promotion](#promotion)".to_string()
    } else {
        let nx = &p.phases[i + 1].name;
        format!("[phase {}: {}](#phase-{nx})", i + 2, md(nx))
    };
    let wait = match ph.duration {
        Some(d) => format!("at least {d} has passed"),
        None => "it has run long enough to trust".to_string(),
    };
    writeln!(
        out,
        "**Advance to {next} when** {wait}, no gate or no-data warning is firing for the plan \
         (`amtool alert query --alertmanager.url=http://localhost:9093 plan={}`) and no \
         rollback has fired. Otherwise hold the phase, or [roll back](#rolling-back).",
        p.name
    )?;
    writeln!(out)
}

fn write_promotion(out: &mut String, cx: &Ctx) -> fmt::Result {
    let p = cx.plan;
    heading(out, 2, "promotion", "Promotion")?;
    writeln!(
        out,
        "When the last phase has run with every gate holding, {} becomes the stable version \
         and the canary is retired (applies {}):",
        md(&p.release.to),
        commands::artifacts(p, Step::Promotion)
            .iter()
            .map(|a| code(a))
            .collect::<Vec<_>>()
            .join(", ")
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

fn alert_name(cx: &Ctx, kind: RuleKind, id: &str) -> String {
    cx.rules
        .iter()
        .find(|r| r.kind == kind && r.id == id)
        .map_or_else(String::new, |r| r.alert.clone())
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

fn write_gates(out: &mut String, cx: &Ctx) -> fmt::Result {
    let p = cx.plan;
    heading(out, 2, "gates", "Gates")?;
    let window = p.monitoring.window;
    writeln!(
        out,
        "A gate is a health target {} must meet for a phase to advance. While one does not \
         hold for {window}, its warning fires (to {}); the phase must not advance, and \
         nothing is rolled back by the gate alone.",
        md(&p.release.to),
        cx.warning_to
    )?;
    writeln!(out)?;
    if p.gates.is_empty() {
        writeln!(out, "This plan has no gates.")?;
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
            code(&alert_name(cx, RuleKind::Gate, &m.name)),
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
                "- **Rolls back automatically at:** {}",
                related.join(", ")
            )?;
        }
        writeln!(
            out,
            "- **What to do:** hold the current phase; compare the canary with stable; find \
             the cause in the canary's logs. Advance only after the alert resolves; [roll \
             back](#rolling-back) by hand if it keeps worsening."
        )?;
        writeln!(out)?;
    }
    Ok(())
}

fn write_rollback_rules(out: &mut String, cx: &Ctx) -> fmt::Result {
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
        writeln!(
            out,
            "- **Fires when:** the canary's {} stays {} {} for {}.",
            code(&m.name),
            match r.bad_op(m).as_str() {
                ">" => "above",
                _ => "below",
            },
            limit_text(r.limit, m, "and"),
            r.for_
        )?;
        writeln!(
            out,
            "- **As written:** threshold {}, duration {}",
            code(&r.written),
            code(&r.for_.to_string())
        )?;
        metric_line(out, m)?;
        writeln!(
            out,
            "- **Alert:** {} (critical)",
            code(&alert_name(cx, RuleKind::Rollback, &r.id))
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
    Ok(())
}

fn write_no_data(out: &mut String, cx: &Ctx) -> fmt::Result {
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
    let compose = compose_command(p, Step::Phase(0));
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
             traffic (at a small share, a quiet hour may bring no request): {} (with the \
             current phase's override), then query {} in Prometheus. Do not advance while the \
             metric has no data.",
            code(&canary_service(p)),
            code(&format!("{compose} ps")),
            code(&lower::record_name(m))
        )?;
        writeln!(out)?;
    }
    Ok(())
}

fn write_manual_rollback(out: &mut String, cx: &Ctx) -> fmt::Result {
    let p = cx.plan;
    let compose = compose_command(p, Step::Rollback);
    let canary = canary_service(p);
    heading(out, 2, "rolling-back", "Rolling back")?;
    writeln!(
        out,
        "Roll back on any rollback alert, or by hand whenever in doubt: service first, \
         analysis later."
    )?;
    writeln!(out)?;
    writeln!(
        out,
        "1. **Switch traffic back and stop the canary.** If seconds allow, keep \
         the canary's logs first: {}. Then send all traffic back to {} and stop the canary \
         (applies {}):",
        code(&format!(
            "{compose} logs --no-color {canary} > {canary}.log"
        )),
        md(&p.release.from),
        commands::artifacts(p, Step::Rollback)
            .iter()
            .map(|a| code(a))
            .collect::<Vec<_>>()
            .join(", ")
    )?;
    writeln!(out)?;
    // Indent the block under the list item.
    let mut block = String::new();
    commands_block(&mut block, &commands::step_commands(p, Step::Rollback))?;
    for line in block.lines() {
        if line.is_empty() {
            writeln!(out)?;
        } else {
            writeln!(out, "   {line}")?;
        }
    }
    writeln!(
        out,
        "2. **Check** that {} is no longer running in the output of `ps` above, and that \
         the error rate of {} is back to normal.",
        code(&canary),
        md(&p.release.from)
    )?;
    writeln!(
        out,
        "3. **Recover data.** If {} changed data or schemas, restore them to what \
         {} expects (from the backup made in [preparation](#preparation)).",
        md(&p.release.to),
        md(&p.release.from)
    )?;
    writeln!(
        out,
        "4. **Notify.** Critical alerts already went to {}; tell the team the \
         rollback is done and which rule fired.",
        cx.critical_to
    )?;
    writeln!(
        out,
        "5. **Analyse.** Keep the logs and the metrics of the release window; find \
         why the rule fired before planning the next attempt."
    )?;
    writeln!(out)
}

fn write_troubleshooting(out: &mut String, cx: &Ctx) -> fmt::Result {
    let p = cx.plan;
    let compose = compose_command(p, Step::Phase(0));
    let nginx = NGINX_SERVICE;
    heading(out, 2, "troubleshooting", "Troubleshooting")?;
    writeln!(
        out,
        "**The traffic split does not take effect.** Test and reload NGINX (use the override of the current phase):"
    )?;
    writeln!(out)?;
    let mut cmds = vec![
        Command {
            description: "test the NGINX configuration".into(),
            run: format!("{compose} exec -T {nginx} nginx -t"),
        },
        Command {
            description: "reload it".into(),
            run: format!("{compose} exec -T {nginx} nginx -s reload"),
        },
    ];
    if let Some(h) = &p.routing.force_header {
        cmds.push(Command {
            description: format!("ask for {} explicitly", p.release.to),
            run: format!(
                "curl -sS -o /dev/null -w '%{{http_code}}\\n' -H {} http://localhost:{}/",
                shell_word(&format!("{h}: canary")),
                p.routing.listen
            ),
        });
    }
    commands_block(out, &cmds)?;
    writeln!(
        out,
        "**Metrics look wrong or are missing.** Check Prometheus and the recorded series the rules read:"
    )?;
    writeln!(out)?;
    let mut cmds = vec![Command {
        description: "is Prometheus up?".into(),
        run: "curl -fsS http://localhost:9090/-/healthy".into(),
    }];
    let mut seen = Vec::new();
    for r in &cx.rules {
        if seen.contains(&r.metric) {
            continue;
        }
        seen.push(r.metric);
        let m = &p.metrics[r.metric];
        cmds.push(Command {
            description: format!("{} of both tracks", m.name),
            run: format!(
                "curl -fsS http://localhost:9090/api/v1/query --data-urlencode {}",
                shell_word(&format!("query={}", lower::record_name(m)))
            ),
        });
    }
    commands_block(out, &cmds)?;
    writeln!(
        out,
        "**The automatic rollback did not happen.** Roll back by hand ([Rolling back](#rolling-back)) and check the services:"
    )?;
    writeln!(out)?;
    commands_block(
        out,
        &[Command {
            description: "the services' state".into(),
            run: format!("{} ps", compose_command(p, Step::Rollback)),
        }],
    )?;
    writeln!(
        out,
        "**In an emergency:** roll back at once; tell the team ({}); keep the logs and \
         metrics; analyse afterwards.",
        cx.critical_to
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markdown_escaping() {
        assert_eq!(md("a_b *c* <x>|y"), r"a\_b \*c\* \<x\>\|y");
        assert_eq!(
            md("#chan (x) [l](u) $m$ &amp; ~s~"),
            r"#chan (x) \[l\](u) \$m\$ \&amp; \~s\~"
        );
        assert_eq!(md("line\nbreak"), "line break");
        assert_eq!(code("a"), "`a`");
        assert_eq!(code("a`b"), "``a`b``");
        assert_eq!(code("`a"), "`` `a ``");
    }
}
