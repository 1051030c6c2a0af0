//! `plan validate`: every plan (and scenario file) checked, every finding printed, for
//! people on stderr or as one JSON array on stdout.

use super::args::Format;
use super::error::Error;
use super::findings::{Batch, Extra};
use super::simulate::{on_recording, recording, recording_gap, refused_effects};
use crate::diagnostic::Diagnostic;
use crate::prom::Semantics;
use crate::sim::recorded::Baseline;
use crate::sim::scenario::Basis;
use std::io::Write;
use std::path::PathBuf;

/// `scenarios`: scenario files checked against every plan (beside those the plans name);
/// `baseline`: the recording they are read for, as `plan simulate --baseline` reads them,
/// in blocks of `block_ms` (`--block`).
pub(super) fn validate(
    files: &[PathBuf],
    (scenarios, baseline, block_ms): (&[PathBuf], &[PathBuf], Option<i64>),
    format: Format,
    deny_warnings: bool,
) -> Result<(), Error> {
    let mut b = Batch::plans(files, deny_warnings);
    let recording = recording(baseline)?;
    let baseline = recording.as_ref().map(|r| Baseline::of(r, block_ms));
    let basis = baseline.map_or(Basis::Synthetic, Baseline::basis);
    // On a recording: what the plan cannot read from it (at the plan), and the fault
    // effects a recorded trial cannot carry (at their lines).
    let recorded = |c: &crate::pipeline::Compiled, s: &crate::sim::scenario::Scenarios| {
        let (Some(baseline), Some(lowered)) = (baseline, &c.plan) else {
            return Default::default();
        };
        let (rm, described) = on_recording(lowered, s, Semantics::default(), baseline);
        let gap = recording_gap(c, baseline.rec, &described)
            .map(|g| Diagnostic::error("recording-series", "", g));
        (
            refused_effects(&rm, lowered, s),
            c.locate(gap.into_iter().collect()),
        )
    };
    let extra: &Extra<'_> = &recorded;
    for path in scenarios {
        b.scenario_file(path, (basis, extra));
    }
    // `plan simulate PLAN --baseline RECORDING` reads the plan's own scenario file (or the
    // built-in one) only when no `--scenarios` file takes its place.
    if scenarios.is_empty() {
        b.named_scenario_files(scenarios, (basis, extra));
        if baseline.is_some() {
            b.builtin_scenarios((basis, extra));
        }
    } else {
        b.named_scenario_files(scenarios, (Basis::Synthetic, &|_, _| Default::default()));
    }
    match format {
        Format::Json => {
            let mut out = serde_json::to_string_pretty(&b.findings).unwrap_or_else(|_| "[]".into());
            out.push('\n');
            let _ = std::io::stdout().write_all(out.as_bytes());
        }
        Format::Human => {
            let _ = std::io::stderr().write_all(b.text().as_bytes());
        }
    }
    b.outcome()
}
