//! The latency buckets a Monte Carlo trial tracks: only those some rule can tell apart.
//!
//! A trial reports outcomes (which rules fire when), not values, and a rule compares
//! `histogram_quantile(q, rate(bucket[w])) * scale` with a constant. Merging the buckets
//! between two kept bounds changes the quantile only where it falls between them, and the
//! kept bounds are chosen so that no threshold lies there: for each threshold `T`, every
//! bound from the largest with `le * scale < T` to the smallest with `le * scale > T` is
//! kept, as are the highest finite bound and `+Inf`. A trial then draws one count per
//! merged cell instead of one per bucket (a sum of independent Poisson counts is Poisson),
//! and every comparison a rule makes comes out as it would on the full histogram:
//!
//! - A kept bucket's counter is the real cumulative counter, so its `rate()` is exact
//!   (zero clamp included).
//! - `rate()` of a cumulative bucket never exceeds that of a bucket above it: a lower
//!   bucket's first sample and increase are both no larger, and the extrapolated rate
//!   grows with both (more increase; a later extrapolated zero). This needs the edge gap to
//!   be decided the same way for every bucket, which holds on a synthetic trial's regular
//!   scrape grid: the gap is below `1.1 * avg` except while the window still reaches back
//!   to the release's start, where every counter's first sample is 0. So Prometheus'
//!   monotonicity repair never moves a kept bucket, and its 3.x small-delta rule cannot
//!   either (two rates within 1e-12 of each other are equal for counts below 10^12).
//! - When the rank falls between two neighbouring kept bounds, the quantile is computed
//!   from the same two buckets with the same float operations. Otherwise the quantile and
//!   the merged histogram's both lie between two kept bounds that no threshold separates,
//!   at or below the lowest kept bound (all thresholds above), or at the highest finite
//!   bound (exact).
//!
//! A rule that compares with the stable track's value has no fixed threshold, so then every
//! bucket is kept.

/// The finite bounds to keep out of `bounds` (sorted, ascending), for a quantile multiplied
/// by `scale` and compared with `thresholds` (None: a threshold that is not a constant,
/// so every bound is kept).
pub(crate) fn kept_bounds(bounds: &[f64], scale: f64, thresholds: Option<&[f64]>) -> Vec<f64> {
    let Some(thresholds) = thresholds else {
        return bounds.to_vec();
    };
    let mut keep = vec![false; bounds.len()];
    if let Some(last) = keep.last_mut() {
        *last = true;
    }
    for &t in thresholds {
        // A NaN threshold never holds; keeping everything is simplest and safe.
        if t.is_nan() {
            return bounds.to_vec();
        }
        let lo = bounds.iter().rposition(|&le| le * scale < t).unwrap_or(0);
        let hi = bounds
            .iter()
            .position(|&le| le * scale > t)
            .unwrap_or(bounds.len().saturating_sub(1));
        for k in keep.iter_mut().take(hi + 1).skip(lo) {
            *k = true;
        }
    }
    bounds
        .iter()
        .zip(&keep)
        .filter(|(_, k)| **k)
        .map(|(&le, _)| le)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Op;
    use crate::prom::rate::extrapolate;
    use crate::prom::{Bucket, Sample, Semantics, histogram_quantile};
    use proptest::prelude::*;

    const DEFAULT: [f64; 11] = [
        0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
    ];

    #[test]
    fn keeps_the_bounds_around_each_threshold_and_the_highest() {
        // Lawsker: p95 > 5000 ms and < 3000 ms, quantile in seconds scaled by 1000.
        assert_eq!(
            kept_bounds(&DEFAULT, 1000.0, Some(&[5000.0, 3000.0])),
            [2.5, 5.0, 10.0]
        );
        assert_eq!(kept_bounds(&DEFAULT, 1.0, Some(&[0.3])), [0.25, 0.5, 10.0]);
        // Below every bound, above every bound, exactly on the lowest.
        assert_eq!(kept_bounds(&DEFAULT, 1.0, Some(&[0.001])), [0.005, 10.0]);
        assert_eq!(kept_bounds(&DEFAULT, 1.0, Some(&[50.0])), [10.0]);
        assert_eq!(
            kept_bounds(&DEFAULT, 1.0, Some(&[0.005])),
            [0.005, 0.01, 10.0]
        );
        assert_eq!(kept_bounds(&DEFAULT, 1.0, None), DEFAULT);
        assert_eq!(kept_bounds(&DEFAULT, 1.0, Some(&[f64::NAN])), DEFAULT);
        assert!(kept_bounds(&[], 1.0, Some(&[1.0])).is_empty());
    }

    /// The rate of one cumulative bucket over a window on the trial's scrape grid, as
    /// `synth` computes it.
    fn rate(grid: &Grid, first: u64, last: u64, semantics: Semantics) -> Option<f64> {
        extrapolate(
            Sample::new(grid.first_j * grid.scrape_ms, first as f64),
            Sample::new(grid.last_j * grid.scrape_ms, last as f64),
            (grid.last_j - grid.first_j) as usize,
            last as f64 - first as f64,
            grid.ts - grid.window_ms,
            grid.ts,
            true,
            true,
            semantics,
        )
    }

    #[derive(Debug, Clone)]
    struct Grid {
        scrape_ms: i64,
        window_ms: i64,
        ts: i64,
        first_j: i64,
        last_j: i64,
    }

    /// The quantile over the buckets whose bounds are in `bounds` (+Inf always), from
    /// per-cell counts at the window's first and last sample.
    fn quantile(
        all: &[f64],
        bounds: &[f64],
        first: &[u64],
        delta: &[u64],
        q: f64,
        grid: &Grid,
        semantics: Semantics,
    ) -> Option<f64> {
        let mut buckets = Vec::new();
        let (mut f, mut l) = (0, 0);
        for k in 0..=all.len() {
            f += first[k];
            l += first[k] + delta[k];
            let le = all.get(k).copied().unwrap_or(f64::INFINITY);
            if le == f64::INFINITY || bounds.contains(&le) {
                buckets.push(Bucket::new(le, rate(grid, f, l, semantics)?));
            }
        }
        Some(histogram_quantile(q, &mut buckets, semantics))
    }

    fn grid() -> impl Strategy<Value = Grid> {
        // A 15s scrape, 1m evaluation and 5m window, at any evaluation of the first hours
        // (the first windows reach back before the counters' start at 0).
        (0i64..240).prop_map(|step| {
            let (scrape_ms, window_ms) = (15_000, 300_000);
            let ts = step * 60_000;
            let last_j = ts / scrape_ms;
            let first_j = ((ts - window_ms) / scrape_ms + 1).max(0);
            Grid {
                scrape_ms,
                window_ms,
                ts,
                first_j,
                last_j,
            }
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig {
            cases: 4000,
            failure_persistence: None,
            ..ProptestConfig::default()
        })]

        /// Every comparison of the scaled quantile with a threshold comes out the same on
        /// the kept buckets as on all of them, including windows where counters are small
        /// enough for `rate()`'s zero clamp to act on some buckets and not others.
        #[test]
        fn merged_buckets_never_change_a_comparison(
            grid in grid(),
            // Counts per cell (12 cells: 11 finite buckets and +Inf) before and inside the
            // window: often zero or tiny, sometimes large.
            cells in proptest::collection::vec(
                (prop_oneof![Just(0u64), 0u64..5, 0u64..100_000], prop_oneof![Just(0u64), 0u64..5, 0u64..10_000]),
                12,
            ),
            q in prop_oneof![Just(0.95), Just(0.5), Just(0.99), 0.0f64..=1.0],
            scale in prop_oneof![Just(1.0), Just(1000.0), Just(0.1)],
            thresholds in proptest::collection::vec(
                prop_oneof![
                    proptest::sample::select(DEFAULT.to_vec()),
                    0.001f64..20.0,
                ],
                1..3,
            ),
            ops in proptest::collection::vec(
                proptest::sample::select(vec![Op::Lt, Op::Le, Op::Gt, Op::Ge]),
                3,
            ),
            semantics in prop_oneof![Just(Semantics::Prometheus3), Just(Semantics::Prometheus2)],
        ) {
            let thresholds: Vec<f64> = thresholds.iter().map(|t| t * scale).collect();
            // At the release's start every counter is 0.
            let first: Vec<u64> = cells.iter().map(|c| if grid.first_j == 0 { 0 } else { c.0 }).collect();
            let delta: Vec<u64> = cells.iter().map(|c| c.1).collect();
            let kept = kept_bounds(&DEFAULT, scale, Some(&thresholds));
            let full = quantile(&DEFAULT, &DEFAULT, &first, &delta, q, &grid, semantics);
            let merged = quantile(&DEFAULT, &kept, &first, &delta, q, &grid, semantics);
            prop_assert_eq!(full.is_none(), merged.is_none());
            if let (Some(full), Some(merged)) = (full, merged) {
                prop_assert_eq!(full.is_nan(), merged.is_nan());
                for (&t, &op) in thresholds.iter().zip(&ops) {
                    prop_assert_eq!(
                        op.holds(full * scale, t),
                        op.holds(merged * scale, t),
                        "{:?} {} vs {} ({:?} kept {:?})", op, full * scale, merged * scale, t, kept
                    );
                }
            }
        }
    }
}
