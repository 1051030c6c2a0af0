//! The block bootstrap: which stretch of the recording each stretch of a trial replays.
//!
//! A trial's scrapes are cut into blocks of `len` grid points; each block replays `len`
//! consecutive points of the recording from a start drawn at random, so that within a
//! block every correlation of the recording (a gauge's drift, a burst of errors, a slow
//! hour) is kept, and trials differ by where their blocks come from. When the recording
//! covers at least a day and a block, a block is drawn at the time of day it stands for
//! in the trial (the release starting at `start_hour` UTC): from any day of the recording,
//! within half a block of that time, so the daily cycle is kept. A shorter recording is
//! drawn from anywhere.

use rand::RngExt;
use rand::rngs::Xoshiro256PlusPlus;

const DAY_MS: i64 = 86_400_000;

/// How blocks are drawn.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Blocks {
    /// Grid points per block.
    pub(crate) len: usize,
    points: usize,
    /// With time-of-day matching: grid points per day, and the grid point of the recording
    /// at the same time of day as the trial's scrape 0.
    day: Option<(usize, usize)>,
}

impl Blocks {
    /// Blocks of `len` points (at least 1, at most `points - 1`) over a recording of
    /// `points` grid points every `step_ms` from `start_ms` (Unix ms), for trials whose
    /// scrape 0 is at `start_hour` UTC.
    pub(crate) fn new(
        len: usize,
        (points, step_ms, start_ms): (usize, i64, i64),
        start_hour: u32,
    ) -> Blocks {
        let len = len.clamp(1, points.saturating_sub(1).max(1));
        let per_day = (DAY_MS % step_ms == 0).then_some((DAY_MS / step_ms) as usize);
        let day = per_day.filter(|&d| points > d + len).map(|d| {
            let want = i64::from(start_hour) * 3_600_000;
            let have = start_ms.rem_euclid(DAY_MS);
            let first = ((want - have).rem_euclid(DAY_MS) / step_ms) as usize;
            (d, first)
        });
        Blocks { len, points, day }
    }

    /// Whether blocks are drawn at their time of day.
    pub(crate) fn day_matched(&self) -> bool {
        self.day.is_some()
    }

    /// How much of the recording one block is drawn from, in grid points: the span within
    /// half a block of its time of day on every day, or the whole recording.
    pub(crate) fn pool(&self) -> usize {
        match self.day {
            Some((per_day, _)) => (self.points / per_day).max(1) * self.len,
            None => self.points.saturating_sub(self.len),
        }
    }

    /// How many distinct days of the recording the blocks come from.
    pub(crate) fn days(&self) -> usize {
        self.day.map_or(0, |(d, _)| self.points / d)
    }

    /// The recording's grid point at which block `b` of a trial starts, drawn from `rng`
    /// (one uniform). Grid point 0 is never drawn: its counters' increases are unknown.
    pub(crate) fn draw(&self, b: usize, rng: &mut Xoshiro256PlusPlus) -> usize {
        let last = self.points - self.len; // the latest start that fits
        match self.day {
            None => rng.random_range(1..=last.max(1)),
            Some((per_day, first)) => {
                // The block's time of day, as a point of the recording's first day.
                let at = (first + b * self.len) % per_day;
                let half = self.len / 2;
                // Starts within half a block of `at + k·per_day`, clipped to [1, last]:
                // list them as ranges and pick one uniformly.
                let mut ranges = Vec::new();
                let mut total = 0usize;
                let mut centre = at;
                while centre <= last + half {
                    let lo = centre.saturating_sub(half).max(1);
                    let hi = (centre + half).min(last);
                    if lo <= hi {
                        ranges.push((lo, hi));
                        total += hi - lo + 1;
                    }
                    centre += per_day;
                }
                if total == 0 {
                    return rng.random_range(1..=last.max(1));
                }
                let mut k = rng.random_range(0..total);
                for (lo, hi) in ranges {
                    let n = hi - lo + 1;
                    if k < n {
                        return lo + k;
                    }
                    k -= n;
                }
                unreachable!("k is below the ranges' total")
            }
        }
    }
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
        let b = Blocks::new(60, (points, step, 6 * 3_600_000), 13);
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
        let b = Blocks::new(240, (2000, 15_000, 0), 10);
        assert!(!b.day_matched());
        assert_eq!(b.days(), 0);
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(1);
        let starts: Vec<usize> = (0..2000).map(|_| b.draw(0, &mut rng)).collect();
        assert!(starts.iter().all(|&s| (1..=1760).contains(&s)));
        let (lo, hi) = (starts.iter().min().unwrap(), starts.iter().max().unwrap());
        assert!(*lo < 20 && *hi > 1740, "{lo}..{hi}");
    }
}
