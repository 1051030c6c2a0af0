//! Which stored samples a selector sees at an evaluation time.
//!
//! A range selector `x[w]` evaluated at `ts` sees the samples in `[ts-w, ts]` in
//! Prometheus 2.x and in `(ts-w, ts]` from 3.0 on; an instant selector `x` sees the
//! newest sample of the lookback window (5m by default), bounded the same way. The
//! engine (`matrixIterSlice`, `vectorSelectorSingle` in promql/engine.go) walks
//! a buffered iterator; here a series is a sorted slice and a window is a sub-slice,
//! found either by binary search (`select_range`, in tests) or by a [`RangeCursor`] that
//! moves two indices forward as the evaluation time advances.
//!
//! Staleness markers: Prometheus drops them from range vectors, and an instant
//! selector whose newest sample is a marker yields nothing. A sub-slice cannot skip
//! interior markers without copying, so windows returned here may contain markers and
//! every consumer in this module (`count_over_time`, `extrapolated_rate`) skips
//! them, which gives exactly the range vector Prometheus builds.

use super::Semantics;
use super::sample::Sample;

/// The default lookback delta of an instant selector (`--query.lookback-delta`), 5m.
pub(crate) const DEFAULT_LOOKBACK_MS: i64 = 5 * 60 * 1000;

/// Whether a sample at `t` lies after the start of a window beginning at `start`:
/// `t >= start` in 2.x (closed), `t > start` in 3.x (left-open).
#[inline]
fn after_start(t: i64, start: i64, semantics: Semantics) -> bool {
    match semantics {
        Semantics::Prometheus2 => t >= start,
        Semantics::Prometheus3 => t > start,
    }
}

#[cfg(test)]
/// The samples of `series` that the range selector `[range_ms]` sees at `ts`
/// (staleness markers included; see the module doc).
///
/// `series` must be sorted by strictly increasing timestamp.
#[inline]
pub(crate) fn select_range(
    series: &[Sample],
    ts: i64,
    range_ms: i64,
    semantics: Semantics,
) -> &[Sample] {
    let start = ts - range_ms;
    let hi = series.partition_point(|s| s.t <= ts);
    let lo = series[..hi].partition_point(|s| !after_start(s.t, start, semantics));
    &series[lo..hi]
}

#[cfg(test)]
/// The value an instant selector sees at `ts` with the given lookback: the newest
/// sample at or before `ts` inside the lookback window, or `None` when there is
/// none or when it is a staleness marker.
#[inline]
pub(crate) fn select_instant_with_lookback(
    series: &[Sample],
    ts: i64,
    lookback_ms: i64,
    semantics: Semantics,
) -> Option<Sample> {
    newest_live(select_range(series, ts, lookback_ms, semantics))
}

#[cfg(test)]
/// [`select_instant_with_lookback`] with the default 5m lookback.
#[inline]
pub(crate) fn select_instant(series: &[Sample], ts: i64, semantics: Semantics) -> Option<Sample> {
    select_instant_with_lookback(series, ts, DEFAULT_LOOKBACK_MS, semantics)
}

/// The newest sample of a lookback window, unless it is a staleness marker: a
/// marker hides the series at once, even when older live samples are in the window.
#[inline]
fn newest_live(window: &[Sample]) -> Option<Sample> {
    window.last().copied().filter(|s| !s.is_stale())
}

#[cfg(test)]
/// `count_over_time` of a window: the number of samples that are not staleness
/// markers. Returns `None` for an empty range vector (Prometheus gives no result
/// then, not 0).
#[inline]
pub(crate) fn count_over_time(window: &[Sample]) -> Option<f64> {
    let n = window.iter().filter(|s| !s.is_stale()).count();
    (n > 0).then_some(n as f64)
}

/// An incremental window over one series for evaluation times that only move
/// forward (a rule evaluated every minute over a long trace).
///
/// Each call moves two indices forward, so a whole pass over a trace costs
/// O(samples + evaluations) instead of a binary search per evaluation. If the time
/// or the window start moves backwards (or the semantics change), the cursor falls
/// back to a binary search, so any call sequence gives the same answer as
/// `select_range`. The series may
/// grow (samples appended) between calls; it must not otherwise change.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct RangeCursor {
    lo: usize,
    hi: usize,
    last_ts: i64,
    last_start: i64,
    last_semantics: Semantics,
    primed: bool,
}

impl RangeCursor {
    /// A cursor positioned before the first sample.
    #[inline]
    pub(crate) const fn new() -> Self {
        Self {
            lo: 0,
            hi: 0,
            last_ts: i64::MIN,
            last_start: i64::MIN,
            last_semantics: Semantics::Prometheus3,
            primed: false,
        }
    }

    /// The window that the range selector `[range_ms]` sees at `ts`: the same
    /// sub-slice as `select_range`.
    #[inline]
    pub(crate) fn window<'a>(
        &mut self,
        series: &'a [Sample],
        ts: i64,
        range_ms: i64,
        semantics: Semantics,
    ) -> &'a [Sample] {
        let start = ts - range_ms;
        if !self.primed
            || ts < self.last_ts
            || start < self.last_start
            || semantics != self.last_semantics
            || self.hi > series.len()
        {
            // Backwards, other bounds, or first use: re-seek both ends.
            self.hi = series.partition_point(|s| s.t <= ts);
            self.lo = series[..self.hi].partition_point(|s| !after_start(s.t, start, semantics));
            self.primed = true;
        } else {
            while self.hi < series.len() && series[self.hi].t <= ts {
                self.hi += 1;
            }
            while self.lo < self.hi && !after_start(series[self.lo].t, start, semantics) {
                self.lo += 1;
            }
        }
        self.last_ts = ts;
        self.last_start = start;
        self.last_semantics = semantics;
        &series[self.lo..self.hi]
    }

    /// The value an instant selector with the given lookback sees at `ts`: the same
    /// as `select_instant_with_lookback`. Use one cursor per (series, window).
    #[inline]
    pub(crate) fn instant(
        &mut self,
        series: &[Sample],
        ts: i64,
        lookback_ms: i64,
        semantics: Semantics,
    ) -> Option<Sample> {
        newest_live(self.window(series, ts, lookback_ms, semantics))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const MIN: i64 = 60_000;
    const P2: Semantics = Semantics::Prometheus2;
    const P3: Semantics = Semantics::Prometheus3;

    /// `start + step*i` for each value, one minute apart by default.
    fn series(values: &[f64], step: i64) -> Vec<Sample> {
        values
            .iter()
            .enumerate()
            .map(|(i, &v)| Sample::new(i as i64 * step, v))
            .collect()
    }

    fn ten_plus_ten_x10() -> Vec<Sample> {
        series(
            &(0..=10).map(|i| 10.0 + 10.0 * i as f64).collect::<Vec<_>>(),
            MIN,
        )
    }

    #[test]
    fn count_over_time_is_6_in_2x_and_5_in_3x() {
        // Reference doc: with 1m samples, count_over_time(c[5m]) is 6 in 2.42, 5 in 3.x.
        let s = ten_plus_ten_x10();
        assert_eq!(
            count_over_time(select_range(&s, 5 * MIN, 5 * MIN, P2)),
            Some(6.0)
        );
        assert_eq!(
            count_over_time(select_range(&s, 5 * MIN, 5 * MIN, P3)),
            Some(5.0)
        );
        assert_eq!(
            count_over_time(select_range(&s, 10 * MIN, 5 * MIN, P2)),
            Some(6.0)
        );
        assert_eq!(
            count_over_time(select_range(&s, 10 * MIN, 5 * MIN, P3)),
            Some(5.0)
        );
    }

    #[test]
    fn range_is_closed_on_the_right_in_both() {
        let s = ten_plus_ten_x10();
        for sem in [P2, P3] {
            let w = select_range(&s, 2 * MIN, 5 * MIN, sem);
            assert_eq!(w.last().unwrap().t, 2 * MIN);
            assert_eq!(w.first().unwrap().t, 0);
            // Between samples: the newest sample is the one before ts.
            let w = select_range(&s, 2 * MIN + 30_000, MIN, sem);
            assert_eq!(w, &s[2..3]);
        }
    }

    #[test]
    fn empty_windows() {
        let s = ten_plus_ten_x10();
        assert!(select_range(&s, -1, 5 * MIN, P2).is_empty());
        assert!(select_range(&[], 0, 5 * MIN, P3).is_empty());
        assert_eq!(count_over_time(select_range(&s, -1, MIN, P3)), None);
        // A gap longer than the window.
        let g = vec![Sample::new(0, 1.0), Sample::new(10 * MIN, 2.0)];
        assert!(select_range(&g, 5 * MIN, MIN, P3).is_empty());
    }

    #[test]
    fn instant_lookback_boundary() {
        let s = vec![Sample::new(0, 1.0)];
        // Exactly 5m old: visible in 2.x (closed lookback), gone in 3.x (left-open).
        assert_eq!(select_instant(&s, 5 * MIN, P2), Some(Sample::new(0, 1.0)));
        assert_eq!(select_instant(&s, 5 * MIN, P3), None);
        assert_eq!(
            select_instant(&s, 5 * MIN - 1, P3),
            Some(Sample::new(0, 1.0))
        );
        assert_eq!(select_instant(&s, 5 * MIN + 1, P2), None);
        // Nothing before the first sample.
        assert_eq!(select_instant(&s, -1, P2), None);
    }

    #[test]
    fn stale_marker_hides_the_series_at_once() {
        let s = vec![
            Sample::new(0, 1.0),
            Sample::new(MIN, 2.0),
            Sample::stale(2 * MIN),
        ];
        for sem in [P2, P3] {
            assert_eq!(
                select_instant(&s, MIN + 59_999, sem),
                Some(Sample::new(MIN, 2.0))
            );
            assert_eq!(select_instant(&s, 2 * MIN, sem), None);
            assert_eq!(select_instant(&s, 4 * MIN, sem), None);
            // Stale markers do not count in range vectors.
            assert_eq!(
                count_over_time(select_range(&s, 2 * MIN, 5 * MIN, sem)),
                Some(2.0)
            );
        }
        // A live sample after the marker revives the series.
        let mut s = s;
        s.push(Sample::new(3 * MIN, 5.0));
        assert_eq!(
            select_instant(&s, 3 * MIN, P3),
            Some(Sample::new(3 * MIN, 5.0))
        );
        // A window holding only a marker is empty for count_over_time.
        let only = [Sample::stale(0)];
        assert_eq!(count_over_time(&only), None);
    }

    #[test]
    fn ordinary_nan_is_a_value() {
        let s = vec![Sample::new(0, f64::NAN)];
        assert!(select_instant(&s, 0, P3).unwrap().v.is_nan());
    }

    #[test]
    fn cursor_matches_binary_search_on_a_minute_grid() {
        let s = ten_plus_ten_x10();
        for sem in [P2, P3] {
            let mut c = RangeCursor::new();
            let mut i = RangeCursor::new();
            for ts in (-2 * MIN..=14 * MIN).step_by(30_000) {
                assert_eq!(
                    c.window(&s, ts, 5 * MIN, sem),
                    select_range(&s, ts, 5 * MIN, sem)
                );
                assert_eq!(i.instant(&s, ts, 5 * MIN, sem), select_instant(&s, ts, sem));
            }
        }
    }

    #[test]
    fn cursor_survives_going_backwards_and_growing_series() {
        let mut s = ten_plus_ten_x10();
        let mut c = RangeCursor::new();
        assert_eq!(c.window(&s, 8 * MIN, 2 * MIN, P3), &s[7..9]);
        assert_eq!(c.window(&s, 3 * MIN, 2 * MIN, P3), &s[2..4]);
        assert_eq!(c.window(&s, 3 * MIN, 5 * MIN, P3), &s[0..4]);
        s.push(Sample::new(11 * MIN, 120.0));
        assert_eq!(c.window(&s, 12 * MIN, 2 * MIN, P3), &s[11..12]);
        // A shorter series than the cursor has seen (caller swapped series).
        let short = &s[..3];
        assert_eq!(c.window(short, 13 * MIN, 20 * MIN, P3), short);
        // Switching semantics at the same bounds re-includes the boundary sample.
        assert_eq!(c.window(&s, 5 * MIN, 5 * MIN, P3), &s[1..6]);
        assert_eq!(c.window(&s, 5 * MIN, 5 * MIN, P2), &s[0..6]);
    }

    /// Samples compared by bits, so that staleness markers (NaN) compare equal.
    fn bits(s: &[Sample]) -> Vec<(i64, u64)> {
        s.iter().map(|x| (x.t, x.v.to_bits())).collect()
    }

    fn arb_series() -> impl Strategy<Value = Vec<Sample>> {
        // Strictly increasing timestamps with irregular gaps, some stale markers.
        prop::collection::vec((1i64..90_000, any::<bool>(), -5.0f64..5.0, 0u8..10), 0..60).prop_map(
            |steps| {
                let mut t = -100_000;
                steps
                    .into_iter()
                    .map(|(dt, _, v, k)| {
                        t += dt;
                        if k == 0 {
                            Sample::stale(t)
                        } else {
                            Sample::new(t, v)
                        }
                    })
                    .collect()
            },
        )
    }

    proptest! {
        #![proptest_config(crate::prom::proptest_config())]
        #[test]
        fn cursor_equals_select_range(
            s in arb_series(),
            start in -200_000i64..200_000,
            steps in prop::collection::vec(0i64..120_000, 1..80),
            range in 1i64..400_000,
            p3 in any::<bool>(),
        ) {
            let sem = if p3 { P3 } else { P2 };
            let mut c = RangeCursor::new();
            let mut ic = RangeCursor::new();
            let mut ts = start;
            for dt in steps {
                ts += dt;
                prop_assert_eq!(
                    bits(c.window(&s, ts, range, sem)),
                    bits(select_range(&s, ts, range, sem))
                );
                prop_assert_eq!(
                    ic.instant(&s, ts, range, sem),
                    select_instant_with_lookback(&s, ts, range, sem)
                );
            }
        }

        #[test]
        fn select_range_matches_a_linear_filter(
            s in arb_series(),
            ts in -200_000i64..3_000_000,
            range in 1i64..400_000,
        ) {
            let closed: Vec<Sample> =
                s.iter().copied().filter(|x| x.t >= ts - range && x.t <= ts).collect();
            let open: Vec<Sample> =
                s.iter().copied().filter(|x| x.t > ts - range && x.t <= ts).collect();
            prop_assert_eq!(bits(select_range(&s, ts, range, P2)), bits(&closed));
            prop_assert_eq!(bits(select_range(&s, ts, range, P3)), bits(&open));
        }
    }
}
