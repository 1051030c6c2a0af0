//! The limits `plan` enforces on what it is given, in one place: each one bounds memory or
//! time that would otherwise grow with a number a user (or an attacker) chose. They are
//! chosen from what real releases need, stated in the README, and checked before any work
//! that depends on them starts, with an error that names the value and the limit.

/// Trials per scenario (`--trials`, or `trials:` in a scenario file). A million trials
/// take minutes per scenario; confidence intervals stop narrowing usefully long before.
pub const MAX_TRIALS: u64 = 1_000_000;

/// Worker threads (`--jobs`). More threads than cores only add contention.
pub const MAX_JOBS: usize = 256;

/// Requests per second, in a plan's `traffic` or a scenario file. Counters are floats, as
/// in Prometheus; this rate keeps every counter of a release exact (below 2^53) for
/// decades, and is more than any single service's canary sees.
pub const MAX_REQUESTS_PER_SECOND: f64 = 1e7;

/// How often Prometheus may scrape or evaluate: from a second to an hour. Below a second
/// no real Prometheus runs; past an hour a canary's phases see too few evaluations to
/// judge anything. (The simulator's work grows with the number of evaluations.)
pub const MIN_INTERVAL_MS: u64 = 1_000;
pub const MAX_INTERVAL_MS: u64 = 3_600_000;

/// The longest `rate()` window: a day. Canary rules judge the last minutes or hours; the
/// simulator keeps every scrape of a window (at most 86,400 at one scrape a second).
pub const MAX_WINDOW_MS: u64 = 86_400_000;

/// The longest phase: 90 days. Releases are staged over days or weeks; a phase of months is
/// a typo (`900d`), and the simulator's time grows with it.
pub const MAX_PHASE_MS: u64 = 90 * 86_400_000;

/// The longest duration a scenario file takes (a fault's `onset`, `ramp`, `every` and
/// `lasting`, the latency `median`): a year, `1y`. Canary releases take hours to weeks; a
/// fault that starts, ramps or repeats over more than a year says nothing about one. The
/// bound also keeps every time of a trial (an onset plus the phases before it) far inside
/// the simulator's 64-bit milliseconds.
pub const MAX_SCENARIO_DURATION_MS: u64 = 365 * 86_400_000;

/// Scenarios in one scenario file. Each runs all its trials: a hundred already take a
/// hundred times the default run, far more than comparing a few faults needs.
pub const MAX_SCENARIOS: usize = 100;

/// The largest value of a simulated gauge (its mean or noise, in the metric's unit): far
/// above any count, byte size or latency a service reports, and far enough below `f64`'s
/// range that a noisy draw around it stays finite and exact to the unit.
pub const MAX_GAUGE_VALUE: f64 = 1e15;
