//! The runbook's opening: the title, what the release is and where to run the commands,
//! the contents, the phases at a glance, and who gets the new version.

use super::context::Ctx;
use super::markdown::{code, group_item, heading, md};
use super::phases::{gate_failure, watch_text};
use crate::check::Target;
use crate::lower::RuleKind;
use crate::model::{Sticky, trim};
use crate::render::anchors::anchor;
use crate::render::artifact::header;
use crate::render::commands::{COMPOSE_BASE, shell_word};
use crate::render::text::{gate_text, rollback_text};
use std::fmt::{self, Write};

pub(super) fn write_header(out: &mut String, cx: &Ctx) -> fmt::Result {
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
    match &p.deployment.target {
        Target::Compose => writeln!(
            out,
            "Run every command from the folder given to `plan render --out` (the parent of this \
             one), where the base compose file {} is: the compose commands layer each step's \
             override on it, and docker-compose resolves the overrides' paths against its folder. \
             The text names files relative to this runbook's folder; the commands name them from \
             the `--out` folder ({}).",
            code(COMPOSE_BASE),
            code(&format!("{}/...", p.name))
        )?,
        Target::Host(h) => writeln!(
            out,
            "NGINX and Prometheus run on this host: each step installs its NGINX file as {} and \
             its rules as {}, then reloads both. Run every command from the folder given to \
             `plan render --out` (the parent of this one). The text names files relative to \
             this runbook's folder; the commands name them from the `--out` folder ({}).",
            code(&h.nginx_conf),
            code(&h.rules_file),
            code(&format!("{}/...", p.name))
        )?,
    }
    writeln!(out)?;
    let name = shell_word(&p.name);
    writeln!(
        out,
        "{} runs these steps for you from the same folder, with exactly the commands listed \
         here: {} applies phase one; {} the next phase, once the phase's minimum duration is \
         over and Prometheus reports its gates holding and no rollback alert; {} the \
         promotion after the last phase's watch; {} the rollback. {} and {} tell where the \
         release is and how it went; its state and audit log are in {}.",
        code("plan release"),
        code(&format!("plan release start {name}")),
        code(&format!("plan release next {name}")),
        code(&format!("plan release complete {name}")),
        code(&format!("plan release rollback {name}")),
        code(&format!("plan release status {name}")),
        code(&format!("plan release report {name}")),
        code(&format!(".plan-release/{}/", p.name))
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

pub(super) fn write_overview(out: &mut String, cx: &Ctx) -> fmt::Result {
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
        let dur = if i + 1 == p.phases.len() {
            let default = if p.watch_is_default() {
                " (default)"
            } else {
                ""
            };
            format!("watched {}{default}, then complete", p.watch)
        } else {
            ph.duration
                .map_or_else(|| "runs on until promotion".to_string(), |d| d.to_string())
        };
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
    let total_ms: u64 = p.phases[..p.phases.len() - 1]
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
    writeln!(out)?;
    if !p.gates.is_empty() {
        writeln!(
            out,
            "When a phase's minimum duration is up with a gate firing, {}.",
            gate_failure(p)
        )?;
        writeln!(out)?;
    }
    writeln!(
        out,
        "The last phase, at 100%, is watched for {}: its rollback rules keep running, and \
         when the watch ends without a rollback the release is complete.",
        watch_text(p)
    )?;
    writeln!(out)
}

pub(super) fn write_audience(out: &mut String, cx: &Ctx) -> fmt::Result {
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
        "- NGINX (listening on {}) sends each phase's share of users to {} {sticky}.",
        match r.listen_address {
            None => format!("port {}", r.listen),
            Some(std::net::IpAddr::V6(a)) => format!("[{a}]:{}", r.listen),
            Some(a) => format!("{a}:{}", r.listen),
        },
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
            group_item(out, g)?;
        }
        writeln!(out)?;
    }
    Ok(())
}
