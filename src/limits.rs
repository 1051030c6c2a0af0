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
