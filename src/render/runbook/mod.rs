//! `RUNBOOK.md`: the release for people, in the spirit of the Lawsker guide (preparation,
//! start, advancing phases, completion, the rollback flow, troubleshooting) but generated
//! for this plan: for each phase what to run, who gets the new version, how long at least,
//! what is watched and when it rolls back, with the exact commands the manifest gives
//! pipelines. The text is English throughout; only what the plan itself says (names,
//! metric descriptions) appears as the user wrote it.
//!
//! Alerts link here: every rollback rule, gate and no-data rule has a section under a fixed
//! anchor (`anchors`). Anchors are explicit `<a id>` tags, not heading slugs, so they do not
//! depend on a Markdown renderer's slug rules.
//!
//! Plain Markdown built with `std::fmt::Write` (minijinja is kept for NGINX), one file per
//! part of the document: `overview`, `phases`, `rules`, `recovery`. User text is escaped
//! for Markdown or put in code spans (`markdown`).

mod context;
mod markdown;
mod overview;
mod phases;
mod recovery;
mod rules;

use crate::check::CheckedPlan;
use crate::lower::AlertRule;
use crate::render::anchors;
use crate::render::artifact::Artifact;
use context::Ctx;
use std::fmt;

/// Renders `RUNBOOK.md`.
pub(crate) fn render(plan: &CheckedPlan, rules: &[AlertRule]) -> Vec<Artifact> {
    let mut out = String::new();
    // Writing into a String never fails; the Result only satisfies `fmt::Write`.
    if write_runbook(&mut out, plan, rules).is_err() {
        out.clear();
    }
    vec![Artifact {
        path: anchors::RUNBOOK.into(),
        contents: out,
    }]
}

fn write_runbook(out: &mut String, plan: &CheckedPlan, rules: &[AlertRule]) -> fmt::Result {
    let cx = Ctx::new(plan, rules);
    overview::write_header(out, &cx)?;
    overview::write_overview(out, &cx)?;
    overview::write_audience(out, &cx)?;
    phases::write_preparation(out, &cx)?;
    for i in 0..plan.phases.len() {
        phases::write_phase(out, &cx, i)?;
    }
    phases::write_promotion(out, &cx)?;
    rules::write_gates(out, &cx)?;
    rules::write_rollback_rules(out, &cx)?;
    rules::write_no_data(out, &cx)?;
    recovery::write_manual_rollback(out, &cx)?;
    recovery::write_troubleshooting(out, &cx)?;
    Ok(())
}
