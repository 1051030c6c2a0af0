//! Prometheus' evaluation semantics for alerting rules, re-implemented exactly.
//!
//! The simulator asks, millions of times per second, "would this alerting rule fire
//! at this evaluation?", and the trace replayer asks it over recorded data. The
//! answer depends on details a textbook formula misses: which samples a window
//! includes, how `rate` extrapolates, how `histogram_quantile` repairs buckets, when
//! a pending alert fires. This module reproduces them from the Prometheus source
//! (promql/engine.go, promql/functions.go, promql/quantile.go, rules/alerting.go),
//! down to the order of float operations, so results match bit for bit (amd64 builds;
//! see [`quantile`] for the one FMA caveat). Everything works on borrowed slices and
//! never allocates.
//!
//! - [`sample`]: [`Sample`] and the staleness marker;
//! - [`select`]: range and instant selection, and the incremental [`RangeCursor`];
//! - [`rate`](mod@rate): `extrapolated_rate` (and its summary form `extrapolate`), `rate`,
//!   `increase`, `delta`;
//! - [`quantile`]: `histogram_quantile` over classic buckets;
//! - [`compare`]: comparison filters, division, missing operands;
//! - [`alert`]: the pending/firing state machine of one alert;
//! - [`Series`] and [`query`]: a metric's query evaluated over named, labelled series, as a
//!   recording rule computes it.
//!
//! It is its own top-level module because three stages read it: `render` (to predict the
//! promtool tests it writes), the trace replay and the Monte Carlo simulator.
//!
//! # Differences between 2.42 and 3.x
//!
//! [`Semantics::Prometheus2`] is Prometheus 2.42 (Debian 12's, which `promtool`
//! here is); [`Semantics::Prometheus3`] is 3.x and is the default. Read in the source:
//!
//! 1. **Range selectors** (`matrixIterSlice`): 2.42 keeps samples with
//!    `t >= ts - range` (closed `[ts-range, ts]`); 3.0 keeps `t > ts - range`
//!    (left-open `(ts-range, ts]`). With samples on the minute, `x[5m]` holds 6 samples
//!    in 2.42 and 5 in 3.x.
//! 2. **Instant selectors** (`vectorSelectorSingle`): the newest sample at or before
//!    `ts`; 2.42 drops it when `t < ts - lookback` (closed window), 3.0 when
//!    `t <= ts - lookback` (left-open). A sample exactly 5m old is seen by 2.42 only.
//! 3. **rate/increase extrapolation** (`extrapolatedRate`): 2.42 first caps the
//!    start gap at the counter's extrapolated zero point and then compares the
//!    (capped) gap with `1.1 * avg`; since 2.51.0 (PR #13725, "Constrain extrapolation
//!    in rate() to half of sample interval") the real gap is compared with the
//!    threshold first (and replaced by `avg / 2` when too long) and the zero cap is
//!    applied afterwards. `c = 10+10x10` at 1m: `increase(c[5m])` at 2m is 30 in 2.42
//!    (gap 180s capped to 60s < 66s, extrapolated in full) and 25 in 3.x (gap 180s ≥
//!    66s becomes 30s; the 60s zero point is not shorter). The arithmetic is otherwise
//!    identical in both: gaps in seconds as `ms / 1000`, factor
//!    `(sampled + start + end) / sampled`, divided by the range seconds for `rate`,
//!    then multiplied into the delta.
//! 4. **histogram_quantile** (`bucketQuantile`): 2.42 forces monotonic counts with a
//!    running maximum; since 2.49 (PR #13153) counts within a relative 1e-12 of the
//!    last accepted count are first set equal to it in either direction, so a tiny
//!    float-artifact increase no longer forms a near-empty bucket that captures the
//!    rank. Everything else (NaN, ±Inf, +Inf bucket, interpolation) is unchanged.
//!
//! The alert state machine, staleness handling, comparisons and division are the
//! same in both.
//!
//! # Verification
//!
//! Besides the unit and property tests here, the 2.x behaviour was compared with
//! real `promtool test rules` runs on random series (counters with resets, gaps,
//! staleness markers, 10s–1m intervals, aligned and unaligned evaluation times,
//! random and non-monotonic bucket sets): every `rate`, `increase`, `delta`,
//! `count_over_time`, instant-selector and `histogram_quantile` value agreed bit for
//! bit with `promtool` 2.42 in `Prometheus2` mode, and with `promtool` 2.53.3 when
//! selecting windows as `Prometheus2` but extrapolating and repairing buckets as
//! `Prometheus3` (2.53 has the new rate order and bucket repair but still closed
//! windows); the firing states of rules with various `for` / `keep_firing_for`
//! matched on every evaluation. One trap when writing such tests: `promtool` only
//! loads input samples up to the last evaluation step at or before the largest
//! `eval_time` of a test group, so a query at an unaligned time near the end of the
//! data misses the newest samples.

pub(crate) mod alert;
pub(crate) mod compare;
pub(crate) mod engine;
pub(crate) mod parse;
pub(crate) mod quantile;
pub(crate) mod query;
pub(crate) mod rate;
pub(crate) mod reader;
pub(crate) mod sample;
pub(crate) mod select;
mod series;
pub(crate) mod summation;

pub(crate) use alert::{AlertState, AlertTiming, Status};
pub(crate) use compare::ratio;

pub(crate) use quantile::{Bucket, histogram_quantile};
pub(crate) use query::{Origin, Query};
pub(crate) use rate::rate;
#[cfg(test)]
pub(crate) use sample::is_stale_nan;
pub(crate) use sample::{STALE_NAN, Sample};
pub(crate) use select::{DEFAULT_LOOKBACK_MS, RangeCursor};

pub(crate) use series::Series;

/// Which Prometheus version's evaluation rules to follow.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Semantics {
    /// Prometheus 2.42: closed range and lookback windows, zero clamp before the
    /// extrapolation threshold, plain monotonicity repair in `histogram_quantile`.
    Prometheus2,
    /// Prometheus 3.x: left-open windows, threshold before the zero clamp,
    /// small-delta tolerant repair.
    #[default]
    Prometheus3,
}

impl Semantics {
    /// As reports and `--semantics` name it.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Semantics::Prometheus2 => "prometheus2",
            Semantics::Prometheus3 => "prometheus3",
        }
    }
}

/// Proptest settings for this module's tests: no failure-persistence files (they
/// would be written outside this directory); a failing case is printed instead.
#[cfg(test)]
fn proptest_config() -> proptest::test_runner::Config {
    proptest::test_runner::Config {
        failure_persistence: None,
        ..proptest::test_runner::Config::default()
    }
}
