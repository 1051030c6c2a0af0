//! The command line as typed: clap's parse of the arguments, before anything is resolved
//! (defaults that depend on the machine, the trial count a scenario file gives) in
//! [`super::settings`].

use crate::limits::{MAX_JOBS, MAX_SHARDS, MAX_TRIALS};
use crate::prom::Semantics;
use crate::sim::montecarlo::Slice;
use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

#[derive(Parser)]
#[command(
    name = "plan",
    version,
    about = "Compile and dry-run staged canary release plans"
)]
pub(super) struct Cli {
    #[command(subcommand)]
    pub(super) command: Command,
}

/// The verbs of `plan release`.
#[derive(Subcommand)]
pub(super) enum ReleaseVerb {
    /// Apply phase one.
    Start(StepArgs),
    /// Apply the next phase, once the current one has run its minimum duration and
    /// Prometheus reports its gates holding and no rollback alert.
    Next(StepArgs),
    /// Promote the new version, once the last phase's watch is over with no rollback alert.
    Complete(StepArgs),
    /// Roll back: every user to the stable version, the canary's rules unloaded.
    Rollback(StepArgs),
    /// Where the release is, what Prometheus reports, and what `next` would do.
    Status {
        /// The rendered plan's folder (`OUT/<plan>`, holding manifest.json).
        dir: PathBuf,
    },
    /// Receive Alertmanager's webhooks and roll the release back when a rollback alert of
    /// its current phase fires; expose the feedback counts on /metrics. Runs until SIGINT
    /// or SIGTERM.
    Serve {
        /// The rendered plan's folder (`OUT/<plan>`, holding manifest.json).
        dir: PathBuf,
        /// Listen here instead of the plan's `deployment.automatic_rollback.listen`
        /// (`127.0.0.1:0` picks a free port; the address is printed).
        #[arg(long)]
        listen: Option<std::net::SocketAddr>,
    },
    /// Count one user feedback (a bug report or praise) into the counter the plan's
    /// feedback metric reads (`feedback_submissions_total` on `serve`'s /metrics).
    Feedback {
        /// The rendered plan's folder (`OUT/<plan>`, holding manifest.json).
        dir: PathBuf,
        /// What the feedback is.
        #[arg(long = "type", value_enum)]
        kind: FeedbackKind,
        /// Which version the user was on.
        #[arg(long, value_enum, default_value_t = FeedbackTrack::Canary)]
        track: FeedbackTrack,
        /// What the user said (one line, at most 500 characters), kept for `report`.
        #[arg(long, value_parser = reason)]
        message: Option<String>,
        /// Who records it, for the audit log (default: $USER).
        #[arg(long, value_parser = reason)]
        by: Option<String>,
    },
    /// The release's history.
    Report {
        /// The rendered plan's folder (`OUT/<plan>`, holding manifest.json).
        dir: PathBuf,
        /// Markdown for people, JSON for tools.
        #[arg(long, value_enum, default_value_t = ReportFormat::Markdown)]
        format: ReportFormat,
    },
}

#[derive(Args)]
pub(super) struct StepArgs {
    /// The rendered plan's folder (`OUT/<plan>`, holding manifest.json).
    pub(super) dir: PathBuf,
    /// Print the commands the step would run and change nothing.
    #[arg(long)]
    pub(super) dry_run: bool,
    /// Why, for the history (required with --force).
    #[arg(long, value_parser = reason)]
    pub(super) reason: Option<String>,
    /// Go ahead although the phase's duration or its gates say wait.
    #[arg(long, requires = "reason")]
    pub(super) force: bool,
    /// Who acts, for the history (default: $USER).
    #[arg(long, value_parser = reason)]
    pub(super) by: Option<String>,
}

/// A reason or a name: one line of at most 500 characters.
fn reason(s: &str) -> Result<String, String> {
    let s = s.trim();
    if s.is_empty() {
        return Err("give a few words".into());
    }
    if s.chars().count() > 500 {
        return Err("at most 500 characters".into());
    }
    if s.chars().any(crate::release::report::is_invisible) {
        return Err(
            "one line of visible characters (no control, zero-width or right-to-left characters)"
                .into(),
        );
    }
    Ok(s.to_string())
}

#[derive(Clone, Copy, ValueEnum)]
pub(super) enum FeedbackKind {
    Bug,
    Praise,
}

#[derive(Clone, Copy, ValueEnum)]
pub(super) enum FeedbackTrack {
    Canary,
    Stable,
}

#[derive(Clone, Copy, ValueEnum)]
pub(super) enum ReportFormat {
    Markdown,
    Json,
}

#[derive(Subcommand)]
pub(super) enum Command {
    /// Check release plans against the schema and the semantic rules (for pre-commit hooks).
    Validate {
        /// Plan files (YAML).
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Output format for findings.
        #[arg(long, value_enum, default_value_t = Format::Human)]
        format: Format,
        /// Treat warnings as errors (exit 1 when any file has a warning).
        #[arg(long)]
        deny_warnings: bool,
        /// Also check these scenario files (YAML, see schemas/scenarios.schema.json) against
        /// each plan, as `plan simulate --scenarios` reads them. Takes every file after it.
        #[arg(long, value_name = "FILE", num_args = 1..)]
        scenarios: Vec<PathBuf>,
        /// Check the scenario files as `plan simulate --baseline RECORDING` reads them: at
        /// the recording's request rate, without models of what it records, and naming the
        /// fault effects a recorded trial cannot carry (repeatable, one file per export).
        #[arg(long, value_name = "RECORDING")]
        baseline: Vec<PathBuf>,
        /// With --baseline: the bootstrap's block length (default `1h`), as `plan simulate
        /// --block`.
        #[arg(long, requires = "baseline", value_parser = block_duration)]
        block: Option<i64>,
    },
    /// Compile plans into NGINX, compose, Prometheus and Alertmanager files, a manifest and a
    /// runbook, under OUT/<plan name>/.
    Render {
        /// Plan files (YAML).
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// The output folder (not a symbolic link); each plan's files go to OUT/<plan name>/.
        #[arg(long, default_value = "generated")]
        out: PathBuf,
        /// Write nothing; exit 1 listing the files that differ from what is on disk.
        #[arg(long)]
        check: bool,
        /// Also replace or delete what plan did not write in OUT/<plan name>/ (files
        /// without plan's `generated by plan` line, folders, links); without it, render stops
        /// and names them.
        #[arg(long, conflicts_with = "check")]
        delete_foreign: bool,
    },
    /// Dry-run the plan's rollback rules: Monte Carlo over built-in or given scenarios, or a
    /// replay of one recorded trace.
    Simulate {
        /// The plan file (YAML).
        file: PathBuf,
        /// A second plan file: run both on the same trials and give every figure as B - A
        /// over the pairs of trials, with its interval.
        #[arg(value_name = "B", conflicts_with_all = ["trace", "shard"])]
        against: Option<PathBuf>,
        /// Replay this recorded trace (CSV or Prometheus range-query JSON) instead.
        #[arg(long, conflicts_with = "scenarios")]
        trace: Option<PathBuf>,
        /// With --trace: when the release started (t=0), as RFC 3339
        /// (`2024-05-01T12:00:00Z`) or Unix seconds; default: the trace's first sample.
        #[arg(long, requires = "trace",
            conflicts_with_all = ["scenarios", "baseline"], value_parser = timestamp, allow_hyphen_values = true)]
        start: Option<i64>,
        /// With --trace: when the replay ends, as --start; default: the trace's last
        /// sample. Later shows what fires once the series stop (stale 5m after their last
        /// sample).
        #[arg(long, requires = "trace",
            conflicts_with_all = ["scenarios", "baseline"], value_parser = timestamp, allow_hyphen_values = true)]
        end: Option<i64>,
        /// With --trace: the rule group's evaluation offset (`0s` to under the evaluation
        /// interval): evaluations run at Unix times that are multiples of the interval plus
        /// this offset, as Prometheus schedules a group; default `0s`.
        #[arg(long, requires = "trace",
            conflicts_with_all = ["scenarios", "baseline"], value_parser = offset_duration, default_value = "0s")]
        evaluation_offset: i64,
        /// Scenario file (YAML, see schemas/scenarios.schema.json); default: the built-in
        /// scenarios (simulations/default.yaml).
        #[arg(long)]
        scenarios: Option<PathBuf>,
        /// Build each trial from this recording of the healthy service (CSV or Prometheus
        /// range-query JSON, as --trace; repeatable, one file per export) instead of the
        /// synthetic traffic: a block bootstrap of its scrapes, thinned to each phase's
        /// share, the scenarios' faults on top.
        #[arg(long, value_name = "RECORDING", conflicts_with = "trace")]
        baseline: Vec<PathBuf>,
        /// With --baseline: the bootstrap's block length (default `1h`).
        #[arg(long, requires = "baseline", value_parser = block_duration)]
        block: Option<i64>,
        /// Run only the K-th of N slices of the trials (`2/3`, K from 1) and print its
        /// tallies as a shard (JSON) for `plan merge`, which adds up the N shards into the
        /// report of the whole run. Every shard takes the same plan, scenarios, seed,
        /// trials and semantics; --jobs may differ.
        #[arg(long, value_name = "K/N", value_parser = shard, conflicts_with_all = ["trace", "format"])]
        shard: Option<Slice>,
        #[command(flatten)]
        run: RunArgs,
    },
    /// Add up the shards of one `plan simulate --shard K/N` run (all N of them, in any
    /// order) into the report of the whole run: the same bytes as the run unsharded.
    Merge {
        /// Shard files, as `plan simulate --shard` printed them.
        #[arg(required = true)]
        shards: Vec<PathBuf>,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Human)]
        format: Format,
        /// Also write the whole run's HTML report (the page `plan simulate --report` draws
        /// for the run unsharded, byte for byte).
        #[arg(long, value_name = "FILE.html")]
        report: Option<PathBuf>,
    },
    /// Drive a rendered plan's release on this host, phase by phase, with the commands its
    /// manifest lists; the release's state and audit log live in `OUT/.plan-release/<plan>/`.
    Release {
        #[command(subcommand)]
        verb: ReleaseVerb,
    },
    /// Find the thresholds, `for` durations and gate levels that keep false rollbacks
    /// within a budget and catch the most faulty releases, every setting judged on the
    /// same simulated trials; checks the recommended one on fresh trials.
    Tune {
        /// The plan file (YAML).
        file: PathBuf,
        /// Scenario file (YAML); default: the one the plan names, else the built-in
        /// scenarios.
        #[arg(long)]
        scenarios: Option<PathBuf>,
        /// The false-rollback budget for the whole release, on the fault-free scenarios:
        /// met when the upper end of the rate's 95% interval is at most this (`1%`,
        /// `0.01`).
        #[arg(long, value_parser = budget, default_value = "1%")]
        max_false_rollback: f64,
        /// A range to try instead of the default one: `RULE.threshold=FROM..TO` or
        /// `RULE.duration=FROM..TO`; RULE is a rollback condition's id (`error_rate`) or
        /// `gates.METRIC`. `window=FROM..TO` also tries the rate window
        /// (`monitoring.window`, at most 6 windows: each is a sweep of its own). Repeatable.
        #[arg(long, value_name = "RULE.PART=FROM..TO")]
        vary: Vec<String>,
        /// Keep a rule as written: a rollback condition's id, `gates.METRIC`, or `gates`
        /// for every gate. Repeatable.
        #[arg(long, value_name = "RULE")]
        keep: Vec<String>,
        /// Build each trial from this recording of the healthy service instead of the
        /// synthetic traffic, as `plan simulate --baseline` does (repeatable): the settings
        /// are then tuned to this service's own noise.
        #[arg(long, value_name = "RECORDING")]
        baseline: Vec<PathBuf>,
        /// With --baseline: the bootstrap's block length (default `1h`).
        #[arg(long, requires = "baseline", value_parser = block_duration)]
        block: Option<i64>,
        #[command(flatten)]
        run: RunArgs,
        /// Skip the check of the recommended setting on fresh trials (seed + 1).
        #[arg(long)]
        no_check: bool,
        /// After the search, sweep finer settings around the recommendation on the same
        /// trials and search on from it (one more sweep: about twice the time).
        #[arg(long)]
        refine: bool,
        /// Write the recommended setting into the plan file (only the tuned scalars
        /// change; comments, order and formatting stay). Without it, the change is printed.
        #[arg(long)]
        write: bool,
    },
    /// Print the JSON Schema of release plans (or of scenario files).
    Schema {
        /// Print the scenario files' schema instead.
        #[arg(long)]
        scenarios: bool,
    },
}

/// What a Monte Carlo run takes: `simulate` and `tune` alike.
#[derive(Args)]
pub(super) struct RunArgs {
    /// Master seed: the same seed gives the same numbers at any --jobs.
    #[arg(long, default_value_t = 1)]
    pub(super) seed: u64,
    /// Trials per scenario, 1 to 1,000,000 (overrides the scenario file).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=MAX_TRIALS))]
    pub(super) trials: Option<u64>,
    /// Worker threads, 1 to 256 (default: all cores).
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..=MAX_JOBS as i64))]
    pub(super) jobs: Option<u16>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Human)]
    pub(super) format: Format,
    /// Which Prometheus evaluation rules to follow.
    #[arg(long, value_enum, default_value_t = SemanticsArg::Prometheus3)]
    pub(super) semantics: SemanticsArg,
    /// Also write the results as one self-contained HTML page with charts (no script, no
    /// network), drawn from the same document as `--format json`.
    #[arg(long, value_name = "FILE.html")]
    pub(super) report: Option<PathBuf>,
}

/// A share of releases: `1%` or `0.01`, from 0 to 100%.
fn budget(s: &str) -> Result<f64, String> {
    let t = s.trim();
    let (v, bare) = match t.strip_suffix('%') {
        Some(p) => (p.trim().parse::<f64>().map(|p| p / 100.0), false),
        None => (t.parse::<f64>(), true),
    };
    let v = v.map_err(|_| format!("`{s}` is not a share; write `1%` or `0.01`"))?;
    if bare && v >= 1.0 {
        return Err(format!(
            "`{s}` reads as {}% of releases; write a percentage (`{s}%`) or a fraction below 1 (`0.01`)",
            v * 100.0
        ));
    }
    if !(v > 0.0 && v <= 1.0) {
        return Err(format!(
            "`{s}` is not above 0% and at most 100% (no number of trials shows a rate of exactly 0)"
        ));
    }
    Ok(v)
}

/// A shard flag: `K/N`, 1 <= K <= N <= MAX_SHARDS, to the slice (from 0).
fn shard(s: &str) -> Result<Slice, String> {
    let parse = |p: &str| p.trim().parse::<u64>().ok();
    let (k, n) = s
        .split_once('/')
        .and_then(|(k, n)| Some((parse(k)?, parse(n)?)))
        .ok_or_else(|| {
            format!("`{s}` is not a shard; write K/N, e.g. `2/3` for the second of three")
        })?;
    if n == 0 || n > MAX_SHARDS {
        return Err(format!("the shard count {n} is not from 1 to {MAX_SHARDS}"));
    }
    k.checked_sub(1)
        .and_then(|i| Slice::new(i, n))
        .ok_or_else(|| format!("shard {k} of {n} does not exist; K is from 1 to {n}"))
}

/// A block length: a positive duration.
fn block_duration(s: &str) -> Result<i64, String> {
    match crate::model::Duration::parse(s)?.millis() {
        0 => Err("a block must be longer than 0s".into()),
        ms => Ok(ms as i64),
    }
}

/// A timestamp flag: RFC 3339 or Unix seconds, as a trace writes them, to Unix ms.
fn timestamp(s: &str) -> Result<i64, String> {
    crate::sim::trace::time::parse_timestamp(s)
}

/// A duration flag in Prometheus syntax, zero allowed, to ms.
fn offset_duration(s: &str) -> Result<i64, String> {
    crate::model::parse_millis(s).map(|ms| ms as i64)
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(super) enum SemanticsArg {
    /// Prometheus 2.x (as 2.42): closed windows.
    Prometheus2,
    /// Prometheus 3.x: left-open windows (the default).
    Prometheus3,
}

impl From<SemanticsArg> for Semantics {
    fn from(s: SemanticsArg) -> Semantics {
        match s {
            SemanticsArg::Prometheus2 => Semantics::Prometheus2,
            SemanticsArg::Prometheus3 => Semantics::Prometheus3,
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(super) enum Format {
    Human,
    Json,
}
