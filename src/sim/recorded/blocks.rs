//! The block bootstrap: which stretch of the recording each stretch of a trial replays.
//!
//! A trial's scrapes are cut into blocks of `len` grid points; each block replays `len`
//! consecutive points of the recording from a start drawn at random, so that within a
//! block every correlation of the recording (a gauge's drift, a burst of errors, a slow
//! hour) is kept, and trials differ by where their blocks come from. When the recording
//! spans at least a day and a block, a block is drawn at the time of day it stands for in
//! the trial (the release starting at `start_hour` UTC): from any day of the recording,
//! within half a block of that time but at most [`MAX_SHIFT_MS`] (a longer block would
//! otherwise be drawn at nearly any time of day, its whole daily cycle shifted), so the
//! daily cycle is kept. A shorter recording is drawn from anywhere.
//!
//! Gaps: grid points at which no series of the recording has a value (the recorder was
//! down, not the service) are no healthy scrape to replay: replayed, every series of the
//! canary would go silent at once. A block whose stretch holds one (or holds the point
//! after one, whose counters' increases span the gap) is never drawn: the starts left
//! are drawn from, at their time of day as before. A time of day with no start left on any
//! day is drawn from every start left.

use rand::RngExt;
use rand::rngs::Xoshiro256PlusPlus;
use std::ops::Range;

const DAY_MS: i64 = 86_400_000;

/// The farthest a matched block's start is from its time of day: an hour keeps the daily
/// cycle to within an hour, and the default 1h block (half an hour either side) and a 2h
/// one are within it.
pub(crate) const MAX_SHIFT_MS: i64 = 3_600_000;

/// How blocks are drawn.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Blocks {
    /// Grid points per block.
    pub(crate) len: usize,
    points: usize,
    /// With time-of-day matching: grid points per day, and the grid point of the recording
    /// at the same time of day as the trial's scrape 0.
    day: Option<(usize, usize)>,
    /// How far, in grid points, a matched block's start may be from its time of day.
    half: usize,
    /// With gaps: per grid point `p` (0..=points), how many starts before `p` replay no
    /// gap. None: there is no gap, every start from 1 to the last is drawn.
    free: Option<Vec<u32>>,
}

impl Blocks {
    /// Blocks of `len` points (at least 1, at most `points - 1`) over a recording of
    /// `points` grid points every `step_ms` from `start_ms` (Unix ms) with `gaps` (grid
    /// points with no value of any series), for trials whose scrape 0 is at `start_hour`
    /// UTC.
    pub(crate) fn new(
        len: usize,
        (points, step_ms, start_ms): (usize, i64, i64),
        start_hour: u32,
        gaps: &[Range<usize>],
    ) -> Blocks {
        let len = len.clamp(1, points.saturating_sub(1).max(1));
        let per_day = (DAY_MS % step_ms == 0).then_some((DAY_MS / step_ms) as usize);
        let day = per_day.filter(|&d| points > d + len).map(|d| {
            let want = i64::from(start_hour) * 3_600_000;
            let have = start_ms.rem_euclid(DAY_MS);
            let first = ((want - have).rem_euclid(DAY_MS) / step_ms) as usize;
            (d, first)
        });
        let half = (len / 2).min((MAX_SHIFT_MS / step_ms).max(0) as usize);
        let free = (!gaps.is_empty()).then(|| free_starts(points, len, gaps));
        Blocks {
            len,
            points,
            day,
            half,
            free,
        }
    }

    /// How far, in grid points, a matched block's start may be from its time of day.
    pub(crate) fn shift(&self) -> usize {
        self.half
    }

    /// Whether blocks are drawn at their time of day.
    pub(crate) fn day_matched(&self) -> bool {
        self.day.is_some()
    }

    /// The latest start that fits a block.
    fn last(&self) -> usize {
        self.points - self.len
    }

    /// Starts a block may be drawn from (1 to the last), and those of them that replay no
    /// gap.
    pub(crate) fn starts(&self) -> (usize, usize) {
        let all = self.last();
        (all, self.free_in(1, all))
    }

    /// How many starts in `lo..=hi` replay no gap.
    fn free_in(&self, lo: usize, hi: usize) -> usize {
        if lo > hi {
            return 0;
        }
        match &self.free {
            None => hi - lo + 1,
            Some(cum) => (cum[hi + 1] - cum[lo]) as usize,
        }
    }

    /// The `k`th start (from 0) at or after `lo` that replays no gap.
    fn nth_free(&self, lo: usize, k: usize) -> usize {
        match &self.free {
            None => lo + k,
            Some(cum) => {
                let want = cum[lo] as usize + k;
                cum.partition_point(|&c| c as usize <= want) - 1
            }
        }
    }

    /// How many grid points of the recording one block's start is drawn from: those within
    /// its window of its time of day on every day where a block fits and replays no gap
    /// (the fewest over the times of day a trial's blocks take), or the whole recording's
    /// starts that replay no gap.
    pub(crate) fn pool(&self) -> usize {
        self.matched().map_or(self.starts().1, |(pool, _)| pool)
    }

    /// How many distinct days of the recording the blocks come from (the fewest over the
    /// times of day a trial's blocks take; 0 when they are not drawn at their time of day).
    pub(crate) fn days(&self) -> usize {
        self.matched().map_or(0, |(_, days)| days)
    }

    /// Over the times of day a trial's blocks take that have starts left (the others are
    /// drawn from anywhere: [`Self::unmatched`]), the fewest starts a block is drawn from
    /// and the fewest days they are on; None when blocks are not drawn at their time of
    /// day, or no time of day has a start left.
    fn matched(&self) -> Option<(usize, usize)> {
        let (per_day, first) = self.day?;
        let mut seen = vec![false; per_day];
        let (mut at, mut fewest) = (first % per_day, None::<(usize, usize)>);
        while !seen[at] {
            seen[at] = true;
            // Starts and days at this time of day.
            let here = self
                .windows(at)
                .iter()
                .map(|&(lo, hi)| self.free_in(lo, hi))
                .filter(|&n| n > 0)
                .fold((0, 0), |(starts, days), n| (starts + n, days + 1));
            if here.1 > 0 {
                fewest = Some(fewest.map_or(here, |(p, d)| (p.min(here.0), d.min(here.1))));
            }
            at = (at + self.len) % per_day;
        }
        fewest
    }

    /// Of a trial's first `blocks` blocks, those whose time of day has no start left on
    /// any day (gaps at that time every day), drawn from every start left instead: their
    /// time of day, as a grid point of the recording's first day.
    pub(crate) fn unmatched(&self, blocks: usize) -> Vec<usize> {
        let Some((per_day, first)) = self.day else {
            return Vec::new();
        };
        let mut out: Vec<usize> = (0..blocks)
            .map(|b| (first + b * self.len) % per_day)
            .filter(|&at| {
                self.windows(at)
                    .iter()
                    .all(|&(lo, hi)| self.free_in(lo, hi) == 0)
            })
            .collect();
        out.sort_unstable();
        out.dedup();
        out
    }

    /// The starts within `half` of `at + k·per_day`, clipped to [1, last], as ranges.
    fn windows(&self, at: usize) -> Vec<(usize, usize)> {
        let Some((per_day, _)) = self.day else {
            return Vec::new();
        };
        let (last, half) = (self.last(), self.half);
        let mut ranges = Vec::new();
        let mut centre = at;
        while centre <= last + half {
            let lo = centre.saturating_sub(half).max(1);
            let hi = (centre + half).min(last);
            if lo <= hi {
                ranges.push((lo, hi));
            }
            centre += per_day;
        }
        ranges
    }

    /// A start drawn from every start that replays no gap (1 when none does: a run with
    /// none is refused before it draws).
    fn anywhere(&self, rng: &mut Xoshiro256PlusPlus) -> usize {
        let last = self.last();
        if self.free.is_none() {
            return rng.random_range(1..=last.max(1));
        }
        match self.free_in(1, last) {
            0 => 1,
            total => self.nth_free(1, rng.random_range(0..total)),
        }
    }

    /// The recording's grid point at which block `b` of a trial starts, drawn from `rng`
    /// (one uniform). Grid point 0 is never drawn: its counters' increases are unknown.
    pub(crate) fn draw(&self, b: usize, rng: &mut Xoshiro256PlusPlus) -> usize {
        let Some((per_day, first)) = self.day else {
            return self.anywhere(rng);
        };
        // The block's time of day, as a point of the recording's first day: the starts
        // near it on every day, one drawn uniformly.
        let ranges = self.windows((first + b * self.len) % per_day);
        let total: usize = ranges.iter().map(|&(lo, hi)| self.free_in(lo, hi)).sum();
        if total == 0 {
            return self.anywhere(rng);
        }
        let mut k = rng.random_range(0..total);
        for (lo, hi) in ranges {
            let n = self.free_in(lo, hi);
            if k < n {
                return self.nth_free(lo, k);
            }
            k -= n;
        }
        unreachable!("k is below the ranges' total")
    }
}

/// Per grid point `p` (0..=points), how many starts `s < p` replay no gap: a block from
/// `s` reads points `s - 1` (a trial's scrape 0) to `s + len - 1`, and none may be in one
/// of `gaps` (a point right after a gap is then never replayed either: its counters'
/// increases span the gap).
fn free_starts(points: usize, len: usize, gaps: &[Range<usize>]) -> Vec<u32> {
    // Per point, how many gap points come before it.
    let mut gap = vec![false; points];
    for g in gaps {
        for p in g.clone().filter(|&p| p < points) {
            gap[p] = true;
        }
    }
    let mut before = vec![0u32; points + 1];
    for p in 0..points {
        before[p + 1] = before[p] + u32::from(gap[p]);
    }
    let mut cum = vec![0u32; points + 1];
    for s in 0..points {
        let ok = s >= 1 && s + len <= points && before[s + len] == before[s - 1];
        cum[s + 1] = cum[s] + u32::from(ok);
    }
    cum
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn matched_blocks_start_within_half_a_block_of_their_time_of_day() {
        // Three days at 1m, starting at 06:00 UTC; trials start at 13:00; 1h blocks.
        let step = 60_000;
        let points = 3 * 1440;
        let b = Blocks::new(60, (points, step, 6 * 3_600_000), 13, &[]);
        assert!(b.day_matched());
        assert_eq!(b.days(), 3);
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(7);
        for block in 0..48 {
            for _ in 0..50 {
                let s = b.draw(block, &mut rng);
                assert!((1..=points - 60).contains(&s));
                // Minutes since midnight of the recording's point, against the block's.
                let tod = (360 + s) % 1440;
                let want = (13 * 60 + block * 60) % 1440;
                let d = (tod as i64 - want as i64).rem_euclid(1440);
                assert!(
                    d <= 30 || d >= 1440 - 30,
                    "block {block} drew {tod} for {want}"
                );
            }
        }
    }

    #[test]
    fn a_recording_under_a_day_is_drawn_from_anywhere() {
        let b = Blocks::new(240, (2000, 15_000, 0), 10, &[]);
        assert!(!b.day_matched());
        assert_eq!(b.days(), 0);
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(1);
        let starts: Vec<usize> = (0..2000).map(|_| b.draw(0, &mut rng)).collect();
        assert!(starts.iter().all(|&s| (1..=1760).contains(&s)));
        let (lo, hi) = (starts.iter().min().unwrap(), starts.iter().max().unwrap());
        assert!(*lo < 20 && *hi > 1740, "{lo}..{hi}");
    }

    /// Whether a block from `s` replays a point of `gaps` (its scrape 0 reads `s - 1`).
    fn touches(s: usize, len: usize, gaps: &[Range<usize>]) -> bool {
        gaps.iter().any(|g| s - 1 < g.end && g.start < s + len)
    }

    #[test]
    fn blocks_that_would_replay_a_gap_are_never_drawn() {
        // Three days at 1m from midnight, 1h blocks, trials from 13:00; a 20-minute gap
        // on day 2 at 13:10 and one on day 3 at 02:00.
        let (step, points, len) = (60_000, 3 * 1440 + 1, 60);
        let gaps = [1440 + 790..1440 + 810, 2880 + 120..2880 + 140];
        let b = Blocks::new(len, (points, step, 0), 13, &gaps);
        assert!(b.day_matched());
        // Each gap of 20 points leaves out the 20 starts that hold it, the 60 - 1 before
        // (their blocks reach it) and the one after (its scrape 0 reads it).
        let (all, free) = b.starts();
        assert_eq!(all, points - len);
        assert_eq!(all - free, 2 * (20 + len));
        let whole = Blocks::new(len, (points, step, 0), 13, &[]);
        assert_eq!(whole.starts(), (all, all));
        assert!(b.pool() < whole.pool());
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(3);
        let mut near = 0;
        for block in 0..48 {
            for _ in 0..200 {
                let s = b.draw(block, &mut rng);
                assert!((1..=points - len).contains(&s));
                assert!(!touches(s, len, &gaps), "block {block} drew {s}");
                // Still at its time of day (within half a block).
                let d = (s as i64 - (780 + block * 60) as i64).rem_euclid(1440);
                assert!(d <= 30 || d >= 1440 - 30, "block {block} drew {s}");
                near += usize::from(block == 0 && (1440..2880).contains(&s));
            }
        }
        // Block 0 (13:00) draws from days 1 and 3 only: every start near 13:00 on day 2
        // holds the first gap.
        assert_eq!(near, 0);
        // Unmatched, a block is drawn from every start left, and from nothing else.
        let one_gap = std::slice::from_ref(&(500..540));
        let short = Blocks::new(240, (2000, 15_000, 0), 10, one_gap);
        assert!(!short.day_matched());
        assert_eq!(short.starts(), (1760, 1760 - (40 + 240)));
        assert_eq!(
            (
                short.free_in(260, 260),
                short.free_in(261, 540),
                short.free_in(541, 541)
            ),
            (1, 0, 1)
        );
        for _ in 0..2000 {
            assert!(!touches(short.draw(0, &mut rng), 240, one_gap));
        }
        // A time of day that has a gap on every day is drawn from every start left, and
        // said so.
        let daily: Vec<Range<usize>> = (0..3).map(|d| d * 1440 + 790..d * 1440 + 810).collect();
        let b = Blocks::new(len, (points, step, 0), 13, &daily);
        assert_eq!(b.unmatched(4), vec![780]);
        for _ in 0..200 {
            assert!(!touches(b.draw(0, &mut rng), len, &daily));
        }
    }

    #[test]
    fn without_gaps_the_draws_are_those_of_before() {
        // The same stream gives the same starts with an empty gap list as the code before
        // gaps did: kept here as `draw` was written then.
        let b = Blocks::new(240, (40_321, 15_000, 0), 13, &[]);
        let (mut r1, mut r2) = (
            Xoshiro256PlusPlus::seed_from_u64(9),
            Xoshiro256PlusPlus::seed_from_u64(9),
        );
        for block in 0..100 {
            let (per_day, first) = b.day.unwrap();
            let at = (first + block * 240) % per_day;
            let last = b.points - 240;
            let mut ranges = Vec::new();
            let mut total = 0;
            let mut centre = at;
            while centre <= last + 120 {
                let lo = centre.saturating_sub(120).max(1);
                let hi = (centre + 120).min(last);
                if lo <= hi {
                    ranges.push((lo, hi));
                    total += hi - lo + 1;
                }
                centre += per_day;
            }
            let mut k = r2.random_range(0..total);
            let mut want = 0;
            for (lo, hi) in ranges {
                if k < hi - lo + 1 {
                    want = lo + k;
                    break;
                }
                k -= hi - lo + 1;
            }
            assert_eq!(b.draw(block, &mut r1), want);
        }
    }

    #[test]
    fn a_long_block_is_matched_to_within_an_hour_while_a_day_of_starts_is_left() {
        // A week at 15 s, blocks of a day: still at their time of day, within an hour.
        let points = 7 * 5760 + 1;
        let b = Blocks::new(5760, (points, 15_000, 0), 13, &[]);
        assert!(b.day_matched());
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(5);
        for _ in 0..500 {
            let s = b.draw(0, &mut rng);
            let d = (s as i64 - 13 * 240).rem_euclid(5760);
            assert!(d <= 240 || d >= 5760 - 240, "drew {s}");
        }
        // Each day gives 2h of starts, but the last: a block from its 13:00 would run
        // past the recording's end.
        assert_eq!(b.pool(), 6 * 481);
        assert_eq!(b.days(), 6);
        // Two days: a block of a day fits from the first day's 13:00 only.
        let two = Blocks::new(5760, (2 * 5760 + 1, 15_000, 0), 13, &[]);
        assert!(two.day_matched());
        assert_eq!((two.pool(), two.days()), (481, 1));
        // Six and a half days: under a day of starts, drawn from anywhere.
        let b = Blocks::new(6 * 5760 + 2880, (points, 15_000, 0), 13, &[]);
        assert!(!b.day_matched());
        assert_eq!(b.pool(), 2880 + 1);
    }
}
