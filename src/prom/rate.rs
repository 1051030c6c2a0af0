//! `rate`, `increase` and `delta` of a float range vector: Prometheus'
//! `extrapolatedRate` (promql/functions.go), float samples only.
//!
//! The result is the change over the samples in the window (counter resets undone),
//! extrapolated towards the window edges:
//!
//! 1. fewer than two samples: no result;
//! 2. `delta = last - first`, plus, for counters, the previous value at every reset
//!    (`cur < prev`);
//! 3. each edge gap (`first.t - start`, `end - last.t`) is extrapolated over in full
//!    when it is below `1.1 * avg` (avg = mean spacing of the samples), else over
//!    `avg / 2` only (the series is assumed to start or end there);
//! 4. for a counter with `delta > 0` and `first >= 0`, the start gap is capped at the
//!    time the counter would have needed to grow from zero
//!    (`sampled * (first / delta)`), so it is never extrapolated below zero;
//! 5. `result = delta * ((sampled + start_gap + end_gap) / sampled)`, divided by the
//!    range in seconds for `rate`.
//!
//! Steps 3 and 4 are applied in a different order by the two versions (PR #13725,
//! released in 2.51.0): 2.42 caps the start gap at the zero point *first* and then
//! compares the capped gap with the threshold, so a capped gap below `1.1 * avg` is
//! used in full even when the real gap was far above it; 2.51+ compares the real gap
//! with the threshold first (possibly replacing it by `avg / 2`) and caps afterwards.
//! Everything else, including the float operation order, is identical: the gaps are
//! `(ms difference as f64) / 1000`, the extended interval is summed left to right as
//! `sampled + start_gap + end_gap`, divided by `sampled`, divided by the range seconds
//! for a rate, and only then multiplied into the delta.

use super::Semantics;
use super::sample::Sample;

/// Go's `time.Duration.Seconds()` for a whole number of milliseconds: whole seconds
/// plus the nanosecond remainder / 1e9, which can differ in the last bit from
/// `ms as f64 / 1000.0`.
#[inline]
fn go_duration_seconds(ms: i64) -> f64 {
    let sec = ms / 1000;
    let nsec = (ms % 1000) * 1_000_000;
    sec as f64 + nsec as f64 / 1e9
}

/// Prometheus' `extrapolatedRate` over the float samples of one range vector.
///
/// `samples` is the window as returned by `select_range` (sorted, inside
/// `range_start_ms..=range_end_ms`); staleness markers in it are skipped, as
/// Prometheus drops them from range vectors. `range_start_ms` / `range_end_ms` are
/// `ts - range` and `ts` (shifted by any `offset`). `is_counter` enables counter-reset
/// handling and the zero clamp (`rate`, `increase`); `is_rate` divides by the range in
/// seconds (`rate`). Returns `None` where PromQL gives no sample (fewer than two
/// samples).
#[inline]
pub(crate) fn extrapolated_rate(
    samples: &[Sample],
    range_start_ms: i64,
    range_end_ms: i64,
    is_counter: bool,
    is_rate: bool,
    semantics: Semantics,
) -> Option<f64> {
    let first_idx = samples.iter().position(|s| !s.is_stale())?;
    let last_idx = samples.iter().rposition(|s| !s.is_stale())?;
    if last_idx == first_idx {
        return None;
    }
    let first = samples[first_idx];
    let last = samples[last_idx];
    debug_assert!(
        first.t >= range_start_ms && last.t <= range_end_ms,
        "samples outside the range"
    );

    // Same accumulation order as Prometheus: last - first, then each reset's
    // pre-reset value in time order.
    let mut result = last.v - first.v;
    let mut intervals: usize = 0; // live samples after the first, i.e. n - 1
    let mut prev = first.v;
    for s in &samples[first_idx + 1..=last_idx] {
        if s.is_stale() {
            continue;
        }
        intervals += 1;
        if is_counter && s.v < prev {
            result += prev;
        }
        prev = s.v;
    }

    extrapolate(
        first,
        last,
        intervals,
        result,
        range_start_ms,
        range_end_ms,
        is_counter,
        is_rate,
        semantics,
    )
}

/// The extrapolation half of [`extrapolated_rate`], for callers that keep running
/// summaries instead of sample slices (a synthetic trace that knows its first and
/// last sample and the reset-corrected change).
///
/// `first` and `last` are the oldest and newest samples of the range vector,
/// `intervals` its sample count minus one, and `delta` the change `last - first`
/// plus, for counters, the pre-reset value of every reset, accumulated in time
/// order as [`extrapolated_rate`] does (summation order matters for the last bit).
/// Returns `None` when `intervals` is 0, like a range vector with one sample.
#[allow(clippy::too_many_arguments)] // mirrors extrapolatedRate's inputs, on the hot path
#[inline]
pub(crate) fn extrapolate(
    first: Sample,
    last: Sample,
    intervals: usize,
    delta: f64,
    range_start_ms: i64,
    range_end_ms: i64,
    is_counter: bool,
    is_rate: bool,
    semantics: Semantics,
) -> Option<f64> {
    if intervals == 0 {
        return None;
    }
    let mut to_start = (first.t - range_start_ms) as f64 / 1000.0;
    let mut to_end = (range_end_ms - last.t) as f64 / 1000.0;
    let sampled = (last.t - first.t) as f64 / 1000.0;
    let avg = sampled / intervals as f64;
    let threshold = avg * 1.1;
    let clamps = is_counter && delta > 0.0 && first.v >= 0.0;

    let mut factor = match semantics {
        Semantics::Prometheus2 => {
            // 2.42: zero clamp first, then the threshold test on the clamped gap.
            if clamps {
                let to_zero = sampled * (first.v / delta);
                if to_zero < to_start {
                    to_start = to_zero;
                }
            }
            let mut extended = sampled;
            if to_start < threshold {
                extended += to_start;
            } else {
                extended += avg / 2.0;
            }
            if to_end < threshold {
                extended += to_end;
            } else {
                extended += avg / 2.0;
            }
            extended / sampled
        }
        Semantics::Prometheus3 => {
            // 2.51+: threshold test on the real gap first, then the zero clamp.
            if to_start >= threshold {
                to_start = avg / 2.0;
            }
            if clamps {
                let to_zero = sampled * (first.v / delta);
                if to_zero < to_start {
                    to_start = to_zero;
                }
            }
            if to_end >= threshold {
                to_end = avg / 2.0;
            }
            (sampled + to_start + to_end) / sampled
        }
    };
    if is_rate {
        factor /= go_duration_seconds(range_end_ms - range_start_ms);
    }
    Some(delta * factor)
}

/// `rate(x[range])` at `ts`: per-second increase of a counter over `window`
/// (the samples `select_range` gives for `ts` and `range_ms`).
#[inline]
pub(crate) fn rate(window: &[Sample], ts: i64, range_ms: i64, semantics: Semantics) -> Option<f64> {
    extrapolated_rate(window, ts - range_ms, ts, true, true, semantics)
}

/// `increase(x[range])` at `ts`: the increase of a counter over `window`.
#[inline]
pub(crate) fn increase(
    window: &[Sample],
    ts: i64,
    range_ms: i64,
    semantics: Semantics,
) -> Option<f64> {
    extrapolated_rate(window, ts - range_ms, ts, true, false, semantics)
}

#[cfg(test)]
/// `delta(x[range])` at `ts`: the change of a gauge over `window` (no reset handling,
/// no zero clamp).
#[inline]
pub(crate) fn delta(
    window: &[Sample],
    ts: i64,
    range_ms: i64,
    semantics: Semantics,
) -> Option<f64> {
    extrapolated_rate(window, ts - range_ms, ts, false, false, semantics)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::prom::select::select_range;
    use proptest::prelude::*;

    const MIN: i64 = 60_000;
    const P2: Semantics = Semantics::Prometheus2;
    const P3: Semantics = Semantics::Prometheus3;

    fn series(values: &[f64], step: i64) -> Vec<Sample> {
        values
            .iter()
            .enumerate()
            .map(|(i, &v)| Sample::new(i as i64 * step, v))
            .collect()
    }

    /// `a+bxn` in promtool notation, one sample per `step`.
    fn linear(a: f64, b: f64, n: usize, step: i64) -> Vec<Sample> {
        series(&(0..=n).map(|i| a + b * i as f64).collect::<Vec<_>>(), step)
    }

    fn inc_at(s: &[Sample], ts: i64, w: i64, sem: Semantics) -> Option<f64> {
        increase(select_range(s, ts, w, sem), ts, w, sem)
    }

    fn rate_at(s: &[Sample], ts: i64, w: i64, sem: Semantics) -> Option<f64> {
        rate(select_range(s, ts, w, sem), ts, w, sem)
    }

    #[test]
    fn reference_example_increase_at_2m_is_30_then_25() {
        // c = 10+10x10 at 1m; increase(c[5m]) at 2m: 30 in 2.42, 25 from 2.51.
        let c = linear(10.0, 10.0, 10, MIN);
        assert_eq!(inc_at(&c, 2 * MIN, 5 * MIN, P2), Some(30.0));
        assert_eq!(inc_at(&c, 2 * MIN, 5 * MIN, P3), Some(25.0));
    }

    #[test]
    fn full_window_of_a_steady_counter() {
        let c = linear(10.0, 10.0, 10, MIN);
        // 2.x: 6 samples over [5m,10m], both edges hit exactly: 50 * 300/300.
        assert_eq!(inc_at(&c, 10 * MIN, 5 * MIN, P2), Some(50.0));
        // 3.x: 5 samples (6m..10m), 1m start gap < 1.1*avg is extrapolated: 40*300/240.
        assert_eq!(inc_at(&c, 10 * MIN, 5 * MIN, P3), Some(50.0));
        let r = rate_at(&c, 10 * MIN, 5 * MIN, P3).unwrap();
        assert_eq!(r, 40.0 * (1.25 / 300.0));
        assert!((r - 50.0 / 300.0).abs() < 1e-15);
        // Checked with promtool 2.42: rate(c[5m]) at 7m is 1.6666666666666669E-01.
        assert_eq!(
            rate_at(&c, 7 * MIN, 5 * MIN, P2).unwrap().to_bits(),
            0.16666666666666669f64.to_bits()
        );
    }

    #[test]
    fn fewer_than_two_samples_is_no_result() {
        let c = linear(1.0, 1.0, 3, MIN);
        assert_eq!(inc_at(&c, 0, 5 * MIN, P2), None);
        assert_eq!(increase(&[], 0, 5 * MIN, P3), None);
        // Two samples, but one is a staleness marker.
        let s = [Sample::new(0, 1.0), Sample::stale(MIN)];
        assert_eq!(increase(&s, MIN, 5 * MIN, P2), None);
    }

    #[test]
    fn counter_reset_adds_the_pre_reset_value() {
        // 0 10 20 5 15 at 1m; window (-1m, 4m] in 3.x holds all five.
        let c = series(&[0.0, 10.0, 20.0, 5.0, 15.0], MIN);
        let w = select_range(&c, 4 * MIN, 5 * MIN, P3);
        assert_eq!(w.len(), 5);
        // delta = 15 - 0 + 20 = 35; first is 0 so the zero clamp removes the start gap:
        // factor = (240 + 0 + 0) / 240.
        assert_eq!(increase(w, 4 * MIN, 5 * MIN, P3), Some(35.0));
        assert_eq!(increase(w, 4 * MIN, 5 * MIN, P2), Some(35.0));
        // delta() ignores resets.
        assert_eq!(delta(w, 4 * MIN, 5 * MIN, P3), Some(15.0 * 300.0 / 240.0));
    }

    #[test]
    fn two_resets_in_a_row() {
        let c = series(&[100.0, 3.0, 1.0, 4.0], MIN);
        let w = &c[..];
        // 4 - 100 + 100 + 3 = 7
        let r = extrapolated_rate(w, 0, 3 * MIN, true, false, P3).unwrap();
        assert_eq!(r, 7.0);
    }

    #[test]
    fn stale_markers_inside_the_window_are_skipped() {
        // A stale marker between two live samples: the reset check compares 20 with 30.
        let with = vec![
            Sample::new(0, 10.0),
            Sample::new(MIN, 20.0),
            Sample::stale(2 * MIN),
            Sample::new(3 * MIN, 30.0),
        ];
        let without: Vec<Sample> = with.iter().copied().filter(|s| !s.is_stale()).collect();
        for sem in [P2, P3] {
            let a = extrapolated_rate(&with, -MIN, 3 * MIN, true, true, sem);
            let b = extrapolated_rate(&without, -MIN, 3 * MIN, true, true, sem);
            assert_eq!(a, b);
            assert!(a.is_some());
        }
        // Leading and trailing markers are skipped too.
        let edges = [
            Sample::stale(0),
            Sample::new(MIN, 1.0),
            Sample::new(2 * MIN, 2.0),
            Sample::stale(3 * MIN),
        ];
        assert_eq!(
            extrapolated_rate(&edges, 0, 3 * MIN, false, false, P3),
            extrapolated_rate(&edges[1..3], 0, 3 * MIN, false, false, P3)
        );
    }

    #[test]
    fn gap_at_the_end_extrapolates_half_an_interval() {
        // Samples at 0..3m, evaluated at 8m with [10m]: end gap 5m >= 1.1*1m.
        let c = linear(100.0, 10.0, 3, MIN);
        for sem in [P2, P3] {
            // start gap 2m (>= 66s) -> 30s; end gap 5m -> 30s. 30 * (180+30+30)/180 = 40.
            assert_eq!(inc_at(&c, 8 * MIN, 10 * MIN, sem), Some(40.0));
        }
    }

    #[test]
    fn zero_clamp_orders_differ_only_when_the_clamped_gap_crosses_the_threshold() {
        // First value small relative to delta: the zero point is 10s before the first
        // sample. 2.42 uses the 10s (below the 66s threshold); 3.x first replaces the
        // 120s gap by 30s, then clamps to 10s: same result.
        let c = vec![
            Sample::new(2 * MIN, 1.0),
            Sample::new(3 * MIN, 7.0),
            Sample::new(4 * MIN, 13.0),
        ];
        let a = extrapolated_rate(&c, 0, 4 * MIN, true, false, P2).unwrap();
        let b = extrapolated_rate(&c, 0, 4 * MIN, true, false, P3).unwrap();
        assert_eq!(a, b);
        assert_eq!(a, 12.0 * (130.0 / 120.0));
    }

    #[test]
    fn negative_first_value_or_gauge_is_not_clamped() {
        let g = series(&[-10.0, 0.0, 10.0], MIN);
        // Start gap 1m < 66s threshold: full extrapolation to the window start.
        assert_eq!(
            extrapolated_rate(&g, -MIN, 2 * MIN, true, false, P3),
            Some(30.0)
        );
        assert_eq!(
            extrapolated_rate(&g, -MIN, 2 * MIN, true, false, P2),
            Some(30.0)
        );
    }

    #[test]
    fn go_duration_seconds_matches_go() {
        assert_eq!(go_duration_seconds(300_000), 300.0);
        assert_eq!(go_duration_seconds(1_500), 1.5);
        assert_eq!(go_duration_seconds(1_234), 1.0 + 0.234);
    }

    #[test]
    fn extrapolate_needs_two_samples() {
        let s = Sample::new(0, 1.0);
        assert_eq!(extrapolate(s, s, 0, 0.0, -MIN, 0, true, true, P3), None);
    }

    proptest! {
        #![proptest_config(crate::prom::proptest_config())]

        #[test]
        fn extrapolate_from_summaries_equals_the_slice_form(
            vals in prop::collection::vec(0.0f64..1000.0, 2..30),
            step in 1_000i64..90_000,
            offset in 0i64..90_000,
            range in 1_000i64..3_000_000,
            is_counter in any::<bool>(),
            is_rate in any::<bool>(),
            p3 in any::<bool>(),
        ) {
            let sem = if p3 { P3 } else { P2 };
            let s = series(&vals, step);
            let ts = s.last().unwrap().t + offset;
            let w = select_range(&s, ts, range, sem);
            prop_assume!(w.len() >= 2);
            let mut d = w[w.len() - 1].v - w[0].v;
            if is_counter {
                for p in w.windows(2) {
                    if p[1].v < p[0].v { d += p[0].v; }
                }
            }
            let a = extrapolate(w[0], w[w.len() - 1], w.len() - 1, d, ts - range, ts, is_counter, is_rate, sem);
            let b = extrapolated_rate(w, ts - range, ts, is_counter, is_rate, sem);
            prop_assert_eq!(a.map(f64::to_bits), b.map(f64::to_bits));
        }
        #[test]
        fn steady_counter_rate_equals_slope(
            start in 0.0f64..1e6,
            slope_per_step in 0.0f64..1e4,
            step_s in 1i64..120,
            n in 2usize..200,
            k in 0i64..20,
            p3 in any::<bool>(),
        ) {
            let sem = if p3 { P3 } else { P2 };
            let step = step_s * 1000;
            let c = linear(start, slope_per_step, n, step);
            // Window covering samples k.. and ending on a sample, range a multiple of the
            // step: every edge gap is 0 or one step, so the extrapolation is exact apart
            // from the zero clamp near the counter's start.
            let end_idx = (n as i64).min(k + 5);
            let ts = end_idx * step;
            let range = 5 * step;
            let w = select_range(&c, ts, range, sem);
            prop_assume!(w.len() >= 2);
            let r = rate(w, ts, range, sem).unwrap();
            let slope = slope_per_step / step_s as f64;
            // The zero clamp can only shorten the extrapolation.
            prop_assert!(r <= slope * (1.0 + 1e-9) + 1e-12);
            if w[0].t > 0 && w[0].v >= slope_per_step * 1.1 || !p3 && w[0].t == ts - range {
                prop_assert!((r - slope).abs() <= 1e-9 * slope.max(1.0), "r={r} slope={slope}");
            }
        }

        #[test]
        fn increase_is_rate_times_range(
            vals in prop::collection::vec(0.0f64..1000.0, 2..30),
            step in 1_000i64..90_000,
            extra in 0i64..200_000,
            p3 in any::<bool>(),
        ) {
            let sem = if p3 { P3 } else { P2 };
            let s = series(&vals, step);
            let ts = s.last().unwrap().t + extra % step;
            let range = ts - s[0].t + 1;
            let w = select_range(&s, ts, range, sem);
            let i = increase(w, ts, range, sem).unwrap();
            let r = rate(w, ts, range, sem).unwrap();
            prop_assert!((r * go_duration_seconds(range) - i).abs() <= 1e-9 * i.abs().max(1.0));
            prop_assert!(i >= 0.0);
        }
    }
}
