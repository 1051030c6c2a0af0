//! The limits `plan` enforces on what it is given, in one place: each one bounds memory or
//! time that would otherwise grow with a number a user (or an attacker) chose. They are
//! chosen from what real releases need, stated in the README, and checked before any work
//! that depends on them starts, with an error that names the value and the limit.

// ----------------------------------------------------------------------------------------
// Files (plans and scenario files)

/// Bytes in a plan or scenario file. Plans are hand-written: the largest in `plans/` is
/// under 4 KiB, so 1 MiB is over 250 times what a real plan needs. Read through a
/// capped reader, so devices and pipes (whose length is 0) are bounded too.
pub(crate) const MAX_PLAN_BYTES: u64 = 1024 * 1024;

/// Nesting depth of a plan or scenario document (mappings and lists inside each other).
/// The example plans and scenario files are 4 levels deep; 32 leaves room for anything
/// legitimate and refuses a runaway `[[[[…` before the value parser sees it: its scanner
/// is quadratic in flow nesting (100 KB of `[` took 15 s).
pub(crate) const MAX_YAML_DEPTH: usize = 32;

/// Nodes (scalars, lists, mappings) in a plan or scenario document once every alias is
/// expanded. The example plans hold at most 218; 100,000 is over 450 times that, and
/// bounds what an "alias bomb" (a few KiB of nested aliases that expand to billions of
/// values, 2 GB in 5 s) can make the value parser build to a few tens of MB.
pub(crate) const MAX_YAML_NODES: u64 = 100_000;

// ----------------------------------------------------------------------------------------
// Plans

/// How often Prometheus may scrape or evaluate: from a second to an hour. Below a second
/// no real Prometheus runs; past an hour a canary's phases see too few evaluations to
/// judge anything. (The simulator's work grows with the number of evaluations.)
pub(crate) const MIN_INTERVAL_MS: u64 = 1_000;
pub(crate) const MAX_INTERVAL_MS: u64 = 3_600_000;

/// The longest `rate()` window: a day. Canary rules judge the last minutes or hours; the
/// simulator keeps every scrape of a window (at most 86,400 at one scrape a second).
pub(crate) const MAX_WINDOW_MS: u64 = 86_400_000;

/// The longest phase: 90 days. Releases are staged over days or weeks; a phase of months is
/// a typo (`900d`), and the simulator's time grows with it.
pub(crate) const MAX_PHASE_MS: u64 = 90 * 86_400_000;

/// Requests per second, in a plan's `traffic` or a scenario file. Counters are floats, as
/// in Prometheus; this rate keeps every counter of a release exact (below 2^53) for
/// decades, and is more than any single service's canary sees.
pub(crate) const MAX_REQUESTS_PER_SECOND: f64 = 1e7;

// ----------------------------------------------------------------------------------------
// Monte Carlo runs and scenario files

/// Trials per scenario (`--trials`, or `trials:` in a scenario file). A million trials
/// take minutes per scenario; confidence intervals stop narrowing usefully long before.
/// The only memory that grows with it: each trial's healthy twin's rollback time, 8 bytes
/// a trial (8 MB here).
pub(crate) const MAX_TRIALS: u64 = 1_000_000;

/// Worker threads (`--jobs`). More threads than cores only add contention.
pub(crate) const MAX_JOBS: usize = 256;

/// Trials `plan simulate A B` keeps per plan (trials per scenario times scenarios, the
/// extra twin pass aside): each trial's outcome is kept for the pairing (24 bytes, and 40
/// while a run's threads hand them over), so 10 million take under 1 GB at the most. The
/// default run holds 18,000.
pub(crate) const MAX_COMPARED_TRIALS: u64 = 10_000_000;

/// Shards of one run (`plan simulate --shard K/N`). Each shard is a process on its own
/// machine; past a thousand, each holds a few trials and the merge reads more files than
/// it saves time.
pub(crate) const MAX_SHARDS: u64 = 1_000;

/// Scenarios in one scenario file. Each runs all its trials: a hundred already take a
/// hundred times the default run, far more than comparing a few faults needs.
pub(crate) const MAX_SCENARIOS: usize = 100;

/// The longest duration a scenario file takes (a fault's `onset`, `ramp`, `every` and
/// `lasting`, the latency `median`): a year, `1y`. Canary releases take hours to weeks; a
/// fault that starts, ramps or repeats over more than a year says nothing about one. The
/// bound also keeps every time of a trial (an onset plus the phases before it) far inside
/// the simulator's 64-bit milliseconds.
pub(crate) const MAX_SCENARIO_DURATION_MS: u64 = 365 * 86_400_000;

/// The largest value of a simulated gauge (its mean or noise, in the metric's unit): far
/// above any count, byte size or latency a service reports, and far enough below `f64`'s
/// range that a noisy draw around it stays finite and exact to the unit.
pub(crate) const MAX_GAUGE_VALUE: f64 = 1e15;

// ----------------------------------------------------------------------------------------
// Traces and replays

/// Bytes in a CSV trace (`--trace`). CSV is read line by line, so memory follows the
/// samples, not the file; this bounds the time spent reading. A realistic trace (50 raw
/// series: request counters per code and track, 12 latency buckets per track, a few
/// gauges) takes about 170 MB a week at 15 s scrapes; 1 GiB holds six such weeks.
/// Replaying two weeks (340 MB) takes 2.3 s and 104 MB.
pub(crate) const MAX_TRACE_BYTES: u64 = 1024 * 1024 * 1024;

/// Bytes in a Prometheus JSON trace, which is parsed as one document held in memory
/// (about 4 times its size at the peak: 351 MB for the 91 MB of two weeks of the
/// realistic trace above). 128 MiB holds close to three weeks; for longer traces, CSV.
pub(crate) const MAX_TRACE_JSON_BYTES: u64 = 128 * 1024 * 1024;

/// Bytes in one line of a CSV trace: a row is under 200 bytes even with many labels.
pub(crate) const MAX_TRACE_LINE_BYTES: u64 = 64 * 1024;

/// Samples in a trace (24 bytes each while read, 16 once sorted). The realistic trace
/// above holds 2 million a week; 12 million is six weeks, about 300 MB.
pub(crate) const MAX_TRACE_SAMPLES: usize = 12_000_000;

/// Series in a trace: the realistic trace above has 50, a service with 20 pods a
/// thousand.
pub(crate) const MAX_TRACE_SERIES: usize = 10_000;

/// Time from a trace's first sample to its last: phases last days or weeks, so 92 days
/// (a quarter) is far more than a release takes, and keeps the evaluations a replay runs
/// below 530,000 at a 15 s evaluation interval.
pub(crate) const MAX_TRACE_SPAN_MS: i64 = 92 * 86_400_000;

/// Transitions (pending, firing, cleared, resolved) of one rule that a replay's human
/// timeline prints; the rest are counted on one line. A flapping alert would otherwise
/// print hundreds of thousands of lines.
pub(crate) const MAX_TIMELINE_TRANSITIONS_PER_RULE: usize = 20;

/// Transitions of one rule that a replay records and `--format json` lists; the rest are
/// counted (`transitions_omitted`). Bounds the report's memory whatever the trace.
pub(crate) const MAX_REPLAY_TRANSITIONS_PER_RULE: usize = 10_000;

/// Values of one metric a replay records for its report (`series`): every evaluation up to
/// this many, else every k-th, so that a long trace's document and HTML report stay small.
pub(crate) const MAX_REPLAY_SERIES_POINTS: usize = 2_000;
