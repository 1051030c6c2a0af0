//! Flags resolved into the settings a run uses, decided here once: `--jobs` defaults to the
//! machine's cores (at most [`MAX_JOBS`]), `--trials` overrides the scenario file's trial
//! count. Out-of-range values never get this far: clap refuses them (see [`super::args`]).

use crate::limits::MAX_JOBS;
use crate::prom::Semantics;
use crate::sim::montecarlo::{Settings, Slice};
use crate::sim::scenario::Scenarios;

/// `plan simulate`'s flags as typed.
pub(super) struct SimulateFlags {
    pub(super) seed: u64,
    pub(super) trials: Option<u64>,
    pub(super) jobs: Option<usize>,
    pub(super) semantics: Semantics,
    /// Replay only: `--start`, `--end` (Unix ms) and `--evaluation-offset` (ms).
    pub(super) start_ms: Option<i64>,
    pub(super) end_ms: Option<i64>,
    pub(super) evaluation_offset_ms: i64,
    /// `--shard`: the slice of the trials to run, and write as a shard.
    pub(super) shard: Option<Slice>,
    /// `--report`: where to write the HTML report.
    pub(super) report: Option<std::path::PathBuf>,
    /// `--baseline`: the recording trials are built from, and `--block` (ms).
    pub(super) baseline: Vec<std::path::PathBuf>,
    pub(super) block_ms: Option<i64>,
}

impl SimulateFlags {
    /// The flags of a Monte Carlo run (no replay window).
    pub(super) fn of(run: &super::args::RunArgs) -> SimulateFlags {
        SimulateFlags {
            seed: run.seed,
            trials: run.trials,
            jobs: run.jobs.map(usize::from),
            semantics: run.semantics.into(),
            start_ms: None,
            end_ms: None,
            evaluation_offset_ms: 0,
            shard: None,
            report: run.report.clone(),
            baseline: Vec::new(),
            block_ms: None,
        }
    }

    /// The Monte Carlo settings for `scenarios`.
    pub(super) fn resolve(&self, scenarios: &Scenarios) -> Settings {
        Settings {
            seed: self.seed,
            jobs: self.jobs.unwrap_or_else(default_jobs),
            trials: self.trials.unwrap_or(scenarios.trials),
            semantics: self.semantics,
            slice: self.shard.unwrap_or(Slice::WHOLE),
        }
    }
}

/// One thread per core, at most [`MAX_JOBS`].
fn default_jobs() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get().min(MAX_JOBS))
}
