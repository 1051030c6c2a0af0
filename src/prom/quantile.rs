//! `histogram_quantile(q, …)` over the buckets of one classic histogram: Prometheus'
//! `bucketQuantile` (promql/quantile.go).
//!
//! Steps, the same in every version: `q` NaN → NaN, `q < 0` → -Inf, `q > 1` → +Inf;
//! sort by `le`; no `+Inf` bucket → NaN; merge buckets with equal `le` (summing their
//! counts); repair the counts (below); fewer than two buckets or a total of 0 → NaN;
//! `rank = q * total`; the first bucket (the `+Inf` one excluded) with
//! `count >= rank`, found by Go's `sort.Search` bisection; none → the highest finite
//! `le`; the first bucket with `le <= 0` → that `le`; otherwise linear interpolation
//! `start + (end - start) * (rank' / count')` inside the bucket, the first bucket
//! starting at 0.
//!
//! The repair differs between versions:
//! - 2.42 (`ensureMonotonic`): a running maximum; any count below it is raised to it.
//! - 3.x (`ensureMonotonicAndIgnoreSmallDeltas`, from PR #13153, released in 2.49):
//!   first, a count whose relative difference from the last accepted count is below
//!   1e-12 (`almost.Equal`) is set to that count *in either direction*, so a tiny
//!   increase, a float artifact of summed rates, no longer opens a near-empty bucket;
//!   then any decrease is raised as before. The reference count is the last accepted
//!   one, not the last one seen.
//!
//! Float order: `bucketStart + (bucketEnd-bucketStart)*(rank/count)` is computed
//! without a fused multiply-add, as Prometheus' amd64 builds do (Go may fuse it on
//! arm64, where results can differ in the last bit).

use super::Semantics;

/// One classic histogram bucket: upper bound `le` and cumulative count.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Bucket {
    /// Upper bound (the `le` label); `f64::INFINITY` for the `+Inf` bucket.
    pub(crate) le: f64,
    /// Cumulative count of observations `<= le` (usually a `rate` of it).
    pub(crate) count: f64,
}

impl Bucket {
    /// A bucket with upper bound `le` and cumulative `count`.
    #[inline]
    pub(crate) const fn new(le: f64, count: f64) -> Self {
        Self { le, count }
    }
}

/// Relative tolerance under which 3.x treats neighbouring bucket counts as equal
/// (`smallDeltaTolerance`).
pub(crate) const SMALL_DELTA_TOLERANCE: f64 = 1e-12;

/// `histogram_quantile(q, buckets)` as Prometheus computes it for one histogram.
///
/// Works in place without allocating: `buckets` is sorted by `le`, and its counts
/// may be merged and repaired, as Prometheus does to its own copy. A NaN `le` has
/// no defined order in Prometheus; here it never panics (it sorts by
/// `f64::total_cmp`). An empty slice gives NaN.
pub(crate) fn histogram_quantile(q: f64, buckets: &mut [Bucket], semantics: Semantics) -> f64 {
    if q.is_nan() {
        return f64::NAN;
    }
    if q < 0.0 {
        return f64::NEG_INFINITY;
    }
    if q > 1.0 {
        return f64::INFINITY;
    }
    if buckets.is_empty() {
        return f64::NAN;
    }
    // Exporters list buckets in order; only sort when they are not.
    if !buckets.is_sorted_by(|a, b| a.le <= b.le) {
        buckets.sort_unstable_by(|a, b| a.le.total_cmp(&b.le));
    }
    if buckets[buckets.len() - 1].le != f64::INFINITY {
        return f64::NAN;
    }

    let n = coalesce(buckets);
    let b = &mut buckets[..n];
    match semantics {
        Semantics::Prometheus2 => ensure_monotonic(b),
        Semantics::Prometheus3 => ensure_monotonic_ignoring_small_deltas(b, SMALL_DELTA_TOLERANCE),
    }

    let Some(rank) = rank(q, n, |i| b[i]) else {
        return f64::NAN;
    };
    let i = go_sort_search(n - 1, |i| b[i].count >= rank);
    interpolate(n, |i| b[i], i, rank)
}

/// `histogram_quantile(q, buckets)` for buckets already in the shape Prometheus'
/// steps before the search leave them: `le` strictly increasing and ending at `+Inf`,
/// counts non-decreasing, and neighbouring counts either equal or further apart than
/// [`SMALL_DELTA_TOLERANCE`] (relative); `q` in [0, 1]. Sorting, merging and either
/// repair change nothing there, and on non-decreasing counts a linear search finds
/// what the bisection finds, so the result is [`histogram_quantile`]'s, bit for bit.
/// (The `rate()`s of one histogram's cumulative counters on a regular scrape grid,
/// with increases below 2^36, are in this shape.)
#[inline]
pub(crate) fn quantile_of_clean(q: f64, b: &[Bucket]) -> f64 {
    debug_assert!(
        b.windows(2)
            .all(|w| w[0].le < w[1].le && w[0].count <= w[1].count)
    );
    quantile_of_clean_by(q, b.len(), |i| b[i])
}

/// [`quantile_of_clean`] over the `n` buckets that `bucket(i)` gives (computed as the
/// search and the interpolation reach them, not stored).
#[inline(always)]
pub(crate) fn quantile_of_clean_by(q: f64, n: usize, bucket: impl Fn(usize) -> Bucket) -> f64 {
    debug_assert!((0.0..=1.0).contains(&q));
    debug_assert!(n == 0 || bucket(n - 1).le == f64::INFINITY);
    let Some(rank) = rank(q, n, &bucket) else {
        return f64::NAN;
    };
    let i = (0..n - 1)
        .position(|i| bucket(i).count >= rank)
        .unwrap_or(n - 1);
    interpolate(n, bucket, i, rank)
}

/// The rank of quantile `q` among the observations (the `+Inf` bucket's count) of the
/// `n` buckets `bucket(i)`; None (no result) with fewer than two buckets or no
/// observations.
#[inline(always)]
fn rank(q: f64, n: usize, bucket: impl Fn(usize) -> Bucket) -> Option<f64> {
    if n < 2 {
        return None;
    }
    let observations = bucket(n - 1).count;
    (observations != 0.0).then_some(q * observations)
}

/// The quantile at `rank` of the `n` buckets `bucket(i)`, given `i`, the first bucket (the
/// `+Inf` one excluded) whose count reaches it.
#[inline(always)]
fn interpolate(n: usize, bucket: impl Fn(usize) -> Bucket, i: usize, mut rank: f64) -> f64 {
    if i == n - 1 {
        return bucket(n - 2).le;
    }
    let b = bucket(i);
    if i == 0 && b.le <= 0.0 {
        return b.le;
    }
    let mut start = 0.0;
    let end = b.le;
    let mut count = b.count;
    if i > 0 {
        let below = bucket(i - 1);
        start = below.le;
        count -= below.count;
        rank -= below.count;
    }
    start + (end - start) * (rank / count)
}

/// Go's `sort.Search`: the smallest index in `0..n` where `f` is true, assuming `f`
/// is false then true; `n` if never. Reproduced exactly (rather than with
/// `partition_point`) so that a NaN count, which breaks monotonicity, probes the
/// same indices as Prometheus.
#[inline]
fn go_sort_search(n: usize, f: impl Fn(usize) -> bool) -> usize {
    let (mut i, mut j) = (0, n);
    while i < j {
        let h = (i + j) >> 1;
        if !f(h) {
            i = h + 1;
        } else {
            j = h;
        }
    }
    i
}

/// Merges neighbours with equal `le` (the slice is sorted), summing their counts in
/// slice order; returns the new length.
#[inline]
fn coalesce(buckets: &mut [Bucket]) -> usize {
    // Usually every `le` differs: nothing to merge, nothing to move.
    if buckets.windows(2).all(|w| w[0].le != w[1].le) {
        return buckets.len();
    }
    let mut last = buckets[0];
    let mut i = 0;
    for k in 1..buckets.len() {
        let b = buckets[k];
        if b.le == last.le {
            last.count += b.count;
        } else {
            buckets[i] = last;
            last = b;
            i += 1;
        }
    }
    buckets[i] = last;
    i + 1
}

/// 2.42's repair: raise every count to the running maximum.
#[inline]
fn ensure_monotonic(buckets: &mut [Bucket]) {
    let mut max = buckets[0].count;
    for b in &mut buckets[1..] {
        if b.count > max {
            max = b.count;
        } else if b.count < max {
            b.count = max;
        }
    }
}

/// 3.x's repair: absorb relative differences below `tolerance` in either direction,
/// then raise decreases; `prev` is the last accepted count.
#[inline]
fn ensure_monotonic_ignoring_small_deltas(buckets: &mut [Bucket], tolerance: f64) {
    let mut prev = buckets[0].count;
    for b in &mut buckets[1..] {
        let curr = b.count;
        if curr == prev {
            continue;
        }
        if almost_equal(prev, curr, tolerance) || curr < prev {
            b.count = prev;
            continue;
        }
        prev = curr;
    }
}

/// Prometheus' `util/almost.Equal`: `a` and `b` differ by less than `epsilon` times
/// their absolute sum (or than `epsilon` times the smallest normal near zero); two
/// NaNs are equal.
#[inline]
fn almost_equal(a: f64, b: f64, epsilon: f64) -> bool {
    if a.is_nan() && b.is_nan() {
        return true;
    }
    if a == b {
        return true;
    }
    let abs_sum = a.abs() + b.abs();
    let diff = (a - b).abs();
    if a == 0.0 || b == 0.0 || abs_sum < f64::MIN_POSITIVE {
        return diff < epsilon * f64::MIN_POSITIVE;
    }
    let sum = abs_sum.min(f64::MAX);
    // Far from the tolerance either way, a product decides as the quotient would (it is
    // within a few ulps of `epsilon * sum`); only near it is the division needed.
    if diff > 2.0 * epsilon * sum {
        return false;
    }
    if diff < 0.5 * epsilon * sum {
        return true;
    }
    diff / sum < epsilon
}

/// An `le` label as Go's `strconv.ParseFloat` reads it.
pub(crate) fn parse_le(s: &str) -> Option<f64> {
    match s {
        "+Inf" | "Inf" | "+inf" | "inf" | "+INF" | "INF" => Some(f64::INFINITY),
        "-Inf" | "-inf" => Some(f64::NEG_INFINITY),
        // Rust and Go read the same decimal, exponent, `inf`/`infinity`/`nan` spellings.
        _ => s.parse().ok(),
    }
}

/// The `le` label a bucket bound gets in Prometheus: in 2.x as the client library's text
/// format writes it (Go's `strconv.FormatFloat(b, 'g', -1, 64)`: `1`, `0.5`, `1e+06`); from
/// 3.0 normalized on ingestion to a float's form (`1.0`, `0.5`, `1e+06`), whatever the
/// scrape protocol.
pub(crate) fn format_le(bound: f64, semantics: Semantics) -> String {
    if bound.is_infinite() {
        return if bound > 0.0 { "+Inf" } else { "-Inf" }.to_string();
    }
    // Shortest round-trip digits, as Go's `-1` precision; `%e` outside 1e-4 ≤ |b| < 1e6.
    let scientific = format!("{bound:e}");
    let (mantissa, exp) = scientific.split_once('e').unwrap_or((&scientific, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let go = if bound != 0.0 && !(-4..6).contains(&exp) {
        format!(
            "{mantissa}e{}{:02}",
            if exp < 0 { '-' } else { '+' },
            exp.abs()
        )
    } else {
        format!("{bound}")
    };
    match semantics {
        Semantics::Prometheus3 if !go.contains(['.', 'e']) => go + ".0",
        _ => go,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn le_labels_as_prometheus_writes_them() {
        let two = |b| format_le(b, Semantics::Prometheus2);
        let three = |b| format_le(b, Semantics::Prometheus3);
        for (b, v2, v3) in [
            (1.0, "1", "1.0"),
            (0.0, "0", "0.0"),
            (0.5, "0.5", "0.5"),
            (2.5, "2.5", "2.5"),
            (0.005, "0.005", "0.005"),
            (0.0001, "0.0001", "0.0001"),
            (0.00001, "1e-05", "1e-05"),
            (100000.0, "100000", "100000.0"),
            (1e6, "1e+06", "1e+06"),
            (2.5e10, "2.5e+10", "2.5e+10"),
            (-3.0, "-3", "-3.0"),
            (f64::INFINITY, "+Inf", "+Inf"),
        ] {
            assert_eq!((two(b), three(b)), (v2.to_string(), v3.to_string()), "{b}");
            assert_eq!(parse_le(v2), Some(b));
        }
    }

    #[test]
    fn le_labels() {
        assert_eq!(parse_le("+Inf"), Some(f64::INFINITY));
        assert_eq!(parse_le("0.25"), Some(0.25));
        assert_eq!(parse_le("1e3"), Some(1000.0));
        assert_eq!(parse_le(""), None);
        assert_eq!(parse_le("fast"), None);
    }
    use proptest::prelude::*;

    const P2: Semantics = Semantics::Prometheus2;
    const P3: Semantics = Semantics::Prometheus3;
    const INF: f64 = f64::INFINITY;

    fn hq(q: f64, b: &[(f64, f64)], sem: Semantics) -> f64 {
        let mut v: Vec<Bucket> = b.iter().map(|&(le, c)| Bucket::new(le, c)).collect();
        histogram_quantile(q, &mut v, sem)
    }

    const REF: [(f64, f64); 3] = [(0.1, 50.0), (0.5, 90.0), (INF, 100.0)];

    #[test]
    fn reference_example() {
        for sem in [P2, P3] {
            assert_eq!(hq(0.95, &REF, sem), 0.5);
            assert_eq!(hq(0.5, &REF, sem), 0.1);
            let p70 = hq(0.7, &REF, sem);
            assert!((p70 - 0.3).abs() < 1e-15, "{p70}");
            assert_eq!(p70, 0.1 + (0.5 - 0.1) * (20.0 / 40.0));
        }
    }

    #[test]
    fn q_out_of_range_and_nan() {
        for sem in [P2, P3] {
            assert_eq!(hq(-0.1, &REF, sem), f64::NEG_INFINITY);
            assert_eq!(hq(1.1, &REF, sem), INF);
            assert!(hq(f64::NAN, &REF, sem).is_nan());
            // Out-of-range q wins even over unusable buckets.
            assert_eq!(hq(2.0, &[], sem), INF);
            // q = 0 and q = 1.
            assert_eq!(hq(0.0, &REF, sem), 0.0);
            assert_eq!(hq(1.0, &REF, sem), 0.5);
        }
    }

    #[test]
    fn unusable_bucket_sets_are_nan() {
        for sem in [P2, P3] {
            assert!(hq(0.5, &[], sem).is_nan());
            assert!(hq(0.5, &[(0.1, 5.0), (0.5, 10.0)], sem).is_nan(), "no +Inf");
            assert!(hq(0.5, &[(INF, 10.0)], sem).is_nan(), "one bucket");
            assert!(
                hq(0.5, &[(INF, 4.0), (INF, 6.0)], sem).is_nan(),
                "coalesced to one"
            );
            assert!(
                hq(0.5, &[(0.1, 0.0), (INF, 0.0)], sem).is_nan(),
                "no observations"
            );
        }
    }

    #[test]
    fn unsorted_and_duplicate_buckets() {
        let shuffled = [(INF, 100.0), (0.1, 50.0), (0.5, 90.0)];
        assert_eq!(hq(0.7, &shuffled, P3), hq(0.7, &REF, P3));
        // Two series with the same le (e.g. differing only in another label) are summed.
        let dup = [(0.1, 20.0), (0.1, 30.0), (0.5, 90.0), (INF, 100.0)];
        assert_eq!(hq(0.7, &dup, P2), hq(0.7, &REF, P2));
    }

    #[test]
    fn rank_in_the_inf_bucket_gives_the_highest_finite_le() {
        assert_eq!(hq(0.99, &[(1.0, 10.0), (2.0, 10.0), (INF, 20.0)], P3), 2.0);
    }

    #[test]
    fn non_positive_first_bucket_returns_its_bound() {
        let b = [(-1.0, 10.0), (0.0, 20.0), (1.0, 30.0), (INF, 30.0)];
        assert_eq!(hq(0.1, &b, P3), -1.0);
        // Second bucket interpolates from the first bucket's bound.
        assert_eq!(hq(0.5, &b, P3), -1.0 + 1.0 * (5.0 / 10.0));
        // A first bucket with le > 0 interpolates from 0.
        assert_eq!(
            hq(0.25, &[(4.0, 10.0), (INF, 10.0)], P3),
            4.0 * (2.5 / 10.0)
        );
    }

    #[test]
    fn decreasing_counts_are_forced_monotonic_in_both() {
        // 0.5 bucket went down (non-atomic ingestion): raised to 60.
        let b = [(0.1, 60.0), (0.5, 50.0), (1.0, 80.0), (INF, 100.0)];
        for sem in [P2, P3] {
            assert_eq!(hq(0.6, &b, sem), 0.1);
            assert_eq!(hq(0.7, &b, sem), 0.5 + 0.5 * (10.0 / 20.0));
        }
    }

    #[test]
    fn tiny_increase_is_ignored_only_in_3x() {
        // The 2.0 bucket exceeds the 1.0 bucket by a relative 5e-14: a float artifact.
        let b = [(1.0, 100.0), (2.0, 100.00000000001), (INF, 200.0)];
        let q = 100.000000000005 / 200.0;
        // 3.x: the 2.0 bucket is treated as equal to 100, so the rank lands in +Inf.
        assert_eq!(hq(q, &b, P3), 2.0);
        // 2.42: the tiny bucket holds the rank; interpolation inside it.
        let p2 = hq(q, &b, P2);
        assert!(p2 > 1.0 && p2 < 2.0, "{p2}");
        // A real difference is kept by both.
        let real = [(1.0, 100.0), (2.0, 150.0), (INF, 200.0)];
        assert_eq!(hq(0.6, &real, P2), hq(0.6, &real, P3));
    }

    #[test]
    fn tiny_decrease_does_not_move_the_reference_in_3x() {
        // 3.x keeps prev at the last accepted count: 100, then 100-1e-12 (absorbed),
        // then 100+2e-12 (absorbed relative to 100, not to the absorbed value).
        let mut v = [
            Bucket::new(1.0, 100.0),
            Bucket::new(2.0, 100.0 - 1e-12),
            Bucket::new(3.0, 100.0 + 2e-12),
            Bucket::new(INF, 100.0 + 2e-12),
        ];
        ensure_monotonic_ignoring_small_deltas(&mut v, SMALL_DELTA_TOLERANCE);
        assert!(v.iter().all(|b| b.count == 100.0));
    }

    #[test]
    fn almost_equal_matches_go() {
        assert!(almost_equal(f64::NAN, f64::NAN, 1e-12));
        assert!(!almost_equal(f64::NAN, 1.0, 1e-12));
        assert!(almost_equal(1.0, 1.0 + 1e-13, 1e-12));
        assert!(!almost_equal(1.0, 1.0 + 1e-11, 1e-12));
        assert!(!almost_equal(0.0, 1e-300, 1e-12));
        assert!(almost_equal(INF, INF, 1e-12));
        assert!(!almost_equal(f64::MAX, INF, 1e-12));
    }

    #[test]
    fn go_sort_search_matches_partition_point_for_monotone_predicates() {
        let v = [1, 3, 3, 7, 9];
        for x in 0..11 {
            assert_eq!(
                go_sort_search(v.len(), |i| v[i] >= x),
                v.partition_point(|&y| y < x)
            );
        }
    }

    proptest! {
        #![proptest_config(crate::prom::proptest_config())]
        #[test]
        fn result_is_within_the_bucket_bounds(
            mut incs in prop::collection::vec(0.001f64..100.0, 2..12),
            q in 0.0f64..=1.0,
            p3 in any::<bool>(),
        ) {
            let sem = if p3 { P3 } else { P2 };
            // Cumulative counts over le = 1, 2, ..., with +Inf last.
            let mut acc = 0.0;
            for x in incs.iter_mut() { acc += *x; *x = acc; }
            let n = incs.len();
            let mut b: Vec<Bucket> = incs
                .iter()
                .enumerate()
                .map(|(i, &c)| Bucket::new(if i + 1 == n { INF } else { (i + 1) as f64 }, c))
                .collect();
            let r = histogram_quantile(q, &mut b, sem);
            prop_assert!((0.0..=(n - 1) as f64).contains(&r), "r={}", r);
        }

        #[test]
        fn monotone_in_q(
            mut incs in prop::collection::vec(0.5f64..100.0, 2..12),
            q1 in 0.0f64..=1.0,
            q2 in 0.0f64..=1.0,
        ) {
            let mut acc = 0.0;
            for x in incs.iter_mut() { acc += *x; *x = acc; }
            let n = incs.len();
            let b: Vec<Bucket> = incs
                .iter()
                .enumerate()
                .map(|(i, &c)| Bucket::new(if i + 1 == n { INF } else { (i + 1) as f64 * 0.1 }, c))
                .collect();
            let (lo, hi) = if q1 <= q2 { (q1, q2) } else { (q2, q1) };
            for sem in [P2, P3] {
                let a = histogram_quantile(lo, &mut b.clone(), sem);
                let c = histogram_quantile(hi, &mut b.clone(), sem);
                prop_assert!(a <= c + 1e-12, "{} > {}", a, c);
            }
        }

        /// The shortcut for clean buckets (the simulator's: `rate()`s of cumulative
        /// counters, each an increase times one factor) is `histogram_quantile`, bit for
        /// bit, in both versions; empty buckets, ties and a zero total included.
        #[test]
        fn clean_buckets_give_histogram_quantile_bit_for_bit(
            incs in prop::collection::vec(prop_oneof![Just(0u64), 0u64..5, 0u64..1_000_000], 1..10),
            les in prop::collection::vec(-1.0f64..100.0, 10),
            factor in prop_oneof![Just(1.0f64), 1e-3f64..10.0],
            q in prop_oneof![Just(0.0f64), Just(0.5), Just(0.95), Just(1.0), 0.0f64..=1.0],
        ) {
            let mut les: Vec<f64> = les[..incs.len()].to_vec();
            les.sort_by(f64::total_cmp);
            les.dedup();
            let n = les.len() + 1;
            let mut total = 0u64;
            let b: Vec<Bucket> = (0..n)
                .map(|i| {
                    total += incs.get(i).copied().unwrap_or(0);
                    let le = les.get(i).copied().unwrap_or(INF);
                    Bucket::new(le, total as f64 * factor)
                })
                .collect();
            let clean = quantile_of_clean(q, &b);
            let by = quantile_of_clean_by(q, n, |i| b[i]);
            prop_assert_eq!(clean.to_bits(), by.to_bits());
            for sem in [P2, P3] {
                let full = histogram_quantile(q, &mut b.clone(), sem);
                prop_assert!(
                    full.to_bits() == clean.to_bits() || (full.is_nan() && clean.is_nan()),
                    "{:?}: {} vs {}", sem, full, clean
                );
            }
        }
    }
}
