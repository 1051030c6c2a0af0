//! `plan merge`: the shards of one `plan simulate --shard K/N` run added up into the
//! run's report. The plan and scenario file come from the shards (each keeps their
//! text), so the merge needs no other file, and reads them as `plan simulate` did: its
//! findings and notes are printed again beside the report. `--report` draws the run's HTML
//! page from the merged document, as `plan simulate --report` draws the run unsharded.

use super::args::Format;
use super::error::Error;
use super::report_file::{self, Kind, Report};
use super::settings::SimulateFlags;
use super::simulate::{
    ScenarioInput, monte_carlo_scenarios, query_failed, report_text, valid_source,
};
use crate::sim::scenario::Basis;
use crate::sim::shard::{self, MergeError, PLAN_VERSION, SHARD_KIND, SHARD_SCHEMA_VERSION, Shard};
use crate::source::{self, Source};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

/// The most bytes a shard file may hold: its plan and scenario file (1 MiB each at
/// most), and tallies of a few kilobytes.
const MAX_SHARD_BYTES: u64 = 16 << 20;

pub(super) fn merge(files: &[PathBuf], format: Format, report: Option<&Path>) -> Result<(), Error> {
    let mut shards = Vec::with_capacity(files.len());
    for file in files {
        shards.push((file.display().to_string(), read_shard(file)?));
    }
    let slices = shard::slices(shards).map_err(|e| Error::Shard(e.to_string()))?;
    let run = slices.run();
    let compiled = valid_source(Source::new(run.plan.name.clone(), run.plan.text.clone()))?;
    let Some(lowered) = &compiled.plan else {
        return Err(Error::Findings { unreadable: false });
    };
    let semantics = run.semantics().ok_or_else(|| {
        Error::Shard(format!(
            "the shards name the semantics `{}`, which this version of plan does not know; run the shards and the merge with one version of plan",
            run.semantics
        ))
    })?;
    let flags = SimulateFlags {
        seed: run.seed,
        trials: Some(run.trials_per_scenario),
        jobs: Some(1),
        semantics,
        start_ms: None,
        end_ms: None,
        evaluation_offset_ms: 0,
        shard: None,
        report: None,
        baseline: Vec::new(),
        block_ms: None,
    };
    let file = run
        .scenarios
        .as_ref()
        .map(|t| Source::new(t.name.clone(), t.text.clone()).holding(source::Kind::Scenarios));
    // The recording is not read again: the shards say the scenarios were read for trials
    // built from it, and at its request rate.
    let basis = match &run.recording {
        Some(r) => Basis::Recorded {
            requests_per_second: r.requests_per_second,
        },
        None => Basis::Synthetic,
    };
    let input = monte_carlo_scenarios(
        &compiled,
        lowered,
        ScenarioInput::Recorded(file),
        &flags,
        basis,
    )?;
    let results = slices
        .results(&input.scenarios, &lowered.plan, lowered.rules.len())
        .map_err(|e| Error::Shard(e.to_string()))?;
    if let Some(failure) = results.query_failure() {
        return Err(query_failed(&compiled, failure));
    }
    let recording = run.recording.as_ref().map(|r| r.assumptions.clone());
    let (text, doc) = report_text(lowered, &input, (&results, recording), format);
    let _ = std::io::stdout().write_all(text.as_bytes());
    match report {
        Some(path) => report_file::write(path, &lowered.plan, &Report::of(Kind::Simulation, &doc)),
        None => Ok(()),
    }
}

/// A shard file, read and parsed: exit 2 when it cannot be read, 1 when it is not a shard
/// of this version of `plan` (at its line and column when it is not JSON).
fn read_shard(path: &Path) -> Result<Shard, Error> {
    let name = path.display().to_string();
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(MAX_SHARD_BYTES + 1).read_to_end(&mut bytes))
        .map_err(|e| Error::Usage(format!("{name}: cannot read the shard: {e}")))?;
    if bytes.len() as u64 > MAX_SHARD_BYTES {
        return Err(Error::Shard(format!(
            "{name}: over {} MiB, larger than any shard `plan simulate --shard` writes",
            MAX_SHARD_BYTES >> 20
        )));
    }
    // serde_json's message ends in its own " at line L column C".
    let at = |e: &serde_json::Error| {
        let message = e.to_string();
        let message = message
            .rsplit_once(" at line ")
            .map_or(&*message, |(m, _)| m);
        format!("{name}:{}:{}: {message}", e.line(), e.column())
    };
    let value: serde_json::Value = serde_json::from_slice(&bytes).map_err(|e| {
        Error::Shard(match e.classify() {
            serde_json::error::Category::Eof => format!(
                "{}; a shard is the whole output of `plan simulate --shard`: was it cut short?",
                at(&e)
            ),
            _ => format!(
                "{}: not JSON, so not a shard of `plan simulate --shard`",
                at(&e)
            ),
        })
    })?;
    let not_a_shard = || Error::Shard(MergeError::NotAShard { file: name.clone() }.to_string());
    if value.get("kind").and_then(|k| k.as_str()) != Some(SHARD_KIND) {
        return Err(not_a_shard());
    }
    // Another version's shard may be laid out otherwise: say which version, not what
    // field is missing.
    if let Some(version) = value.get("plan_version").and_then(|v| v.as_str())
        && version != PLAN_VERSION
    {
        return Err(Error::Shard(
            MergeError::OtherVersion {
                file: name.clone(),
                version: version.to_string(),
            }
            .to_string(),
        ));
    }
    if value.get("schema_version").and_then(|v| v.as_u64()) != Some(SHARD_SCHEMA_VERSION.into()) {
        return Err(not_a_shard());
    }
    serde_json::from_slice(&bytes)
        .map_err(|e| Error::Shard(format!("{} (a damaged shard); rerun that shard", at(&e))))
}
