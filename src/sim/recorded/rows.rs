//! The recorded values a trial's scrapes read, grid point by grid point. A scrape reads
//! every series a trial writes at one or two grid points; the recording keeps each series
//! in a column of its own, so a scrape read from there touches a cache line per series,
//! and the lanes of a batch, each at its own block, miss on nearly every one. Laid out by
//! grid point, a scrape reads one contiguous row, and a trial's next scrape the next row.
//!
//! A counter's increase at a point where the series was missing just before spans its
//! whole gap ([`super::recording`]); replayed after points of another stretch of the
//! recording it would add the gap's events at once, a burst the service never had, so a
//! scrape reads it only where its block replays the whole gap ([`Rows::get`]).

use super::channel::Channel;
use super::nested::Nested;
use super::recording::Recording;

/// The series of a recording that trials read, by grid point.
pub(super) struct Rows {
    /// Series per row.
    width: usize,
    values: Vec<f64>,
    /// Per recorded series, its place in a row (None: no trial reads it).
    column: Vec<Option<usize>>,
    /// Per recorded series read, its increases over missing points
    /// ([`super::recording::Recorded::spanning`]).
    spanning: Vec<Vec<(usize, usize)>>,
}

/// The grid point a scrape replays, and the first point of the block it is in: the
/// scrape before replayed the point before it, back to `first`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Replayed {
    pub(super) point: usize,
    pub(super) first: usize,
}

impl Rows {
    /// The rows of `rec`'s series that trials read: those of the channels that are `live`,
    /// every bucket of a histogram one of whose channels is (`histograms`, as channel
    /// lists), and the counters of each nesting.
    pub(super) fn new(
        rec: &Recording,
        channels: &[Channel],
        histograms: &[&[usize]],
        nested: &[Nested],
    ) -> Rows {
        let mut read = vec![false; rec.series.len()];
        for ch in channels.iter().filter(|ch| ch.live) {
            read[ch.rec] = true;
        }
        for h in histograms
            .iter()
            .filter(|h| h.iter().any(|&c| channels[c].live))
        {
            for &c in h.iter() {
                read[channels[c].rec] = true;
            }
        }
        for n in nested {
            for &c in n.parent.iter().chain([&n.child]) {
                read[channels[c].rec] = true;
            }
        }
        let mut column = vec![None; rec.series.len()];
        let mut order = Vec::new();
        for (s, _) in read.iter().enumerate().filter(|(_, r)| **r) {
            column[s] = Some(order.len());
            order.push(s);
        }
        let width = order.len();
        let mut values = Vec::with_capacity(width * rec.points);
        for p in 0..rec.points {
            values.extend(order.iter().map(|&s| rec.series[s].values[p]));
        }
        Rows {
            width,
            values,
            column,
            spanning: rec
                .series
                .iter()
                .zip(&read)
                .map(|(s, &r)| if r { s.spanning.clone() } else { Vec::new() })
                .collect(),
        }
    }

    /// What a scrape replaying `r` reads of recorded series `series` (NaN: nothing): a
    /// gauge's value; a counter's increase, unless it spans missing points from before
    /// `r.first`, the first its block replays.
    #[inline]
    pub(super) fn get(&self, series: usize, r: Replayed) -> f64 {
        let v = self.at(series, r.point);
        let spanning = &self.spanning[series];
        if spanning.is_empty() || v.is_nan() {
            return v;
        }
        match spanning.binary_search_by_key(&r.point, |&(k, _)| k) {
            Ok(i) if spanning[i].1 + 1 < r.first => f64::NAN,
            _ => v,
        }
    }

    /// Recorded series `series`' value at grid point `point` (NaN: none there). Only a
    /// series some trial reads has one ([`Rows::new`]).
    #[inline]
    fn at(&self, series: usize, point: usize) -> f64 {
        let c = self.column[series].expect("a series trials read");
        self.values[point * self.width + c]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::recorded::channel::Role;
    use crate::sim::recorded::recording::Recorded;

    fn series(name: &str, values: Vec<f64>) -> Recorded {
        Recorded {
            name: name.into(),
            labels: Vec::new(),
            counter: true,
            values,
            spanning: Vec::new(),
            whole: true,
            step_ms: 15_000,
            file: 0,
            line: 1,
            column: 1,
        }
    }

    fn channel(rec: usize, live: bool) -> Channel {
        Channel {
            rec,
            role: Role::Traffic { whole: true },
            canary: 2 * rec,
            stable: 2 * rec + 1,
            live,
            salt: 0,
            born_late: false,
            nested: false,
            instance: None,
            copy: false,
        }
    }

    /// A counter's increase after points at which it was missing spans them: a scrape
    /// reads it only where its block replays them all (from the point after the sample
    /// before them on).
    #[test]
    fn an_increase_over_a_gap_is_read_only_where_its_block_replays_the_gap() {
        let nan = f64::NAN;
        // A sample at points 0 (its increase unknown) and 1, none at 2 and 3: point 4's
        // increase spans points 2 to 4.
        let mut counter = series("c", vec![nan, 3.0, nan, nan, 9.0, 2.0]);
        counter.spanning = vec![(4, 1)];
        let mut gauge = series("g", vec![1.0, 2.0, nan, nan, 5.0, 6.0]);
        gauge.counter = false;
        let rec = Recording {
            files: Vec::new(),
            step_ms: 15_000,
            start_ms: 0,
            points: 6,
            series: vec![counter, gauge],
        };
        let rows = Rows::new(&rec, &[channel(0, true), channel(1, true)], &[], &[]);
        let at = |point, first| Replayed { point, first };
        // Blocks from points 1 and 2 replay points 2 to 4 (a block's first scrape follows
        // another stretch): the increase is theirs.
        assert_eq!(rows.get(0, at(4, 1)), 9.0);
        assert_eq!(rows.get(0, at(4, 2)), 9.0);
        // Blocks from points 3 and 4 do not replay point 2.
        assert!(rows.get(0, at(4, 3)).is_nan());
        assert!(rows.get(0, at(4, 4)).is_nan());
        // An increase of one step is read wherever it is replayed.
        assert_eq!(rows.get(0, at(1, 1)), 3.0);
        assert_eq!(rows.get(0, at(5, 5)), 2.0);
        // A gauge's value is its value.
        assert_eq!(rows.get(1, at(4, 4)), 5.0);
    }

    /// Each series read gives its own column's values, point by point; unread ones have no
    /// place in a row, unless a histogram or a nesting reads them.
    #[test]
    fn rows_give_every_read_series_its_recorded_values() {
        let rec = Recording {
            files: Vec::new(),
            step_ms: 15_000,
            start_ms: 0,
            points: 3,
            series: (0..5)
                .map(|s| {
                    let v = (0..3).map(|p| (10 * s + p) as f64).collect();
                    series(&format!("s{s}"), v)
                })
                .collect(),
        };
        // 0 live; 1 and 2 a histogram that 2 makes live; 3 unread; 4 a nesting's parent.
        let channels: Vec<Channel> = [true, false, true, false, false]
            .iter()
            .enumerate()
            .map(|(s, &live)| channel(s, live))
            .collect();
        let nested = [Nested {
            child: 0,
            parent: vec![4],
            known: super::super::nested::Known::Declared,
        }];
        let rows = Rows::new(&rec, &channels, &[&[1, 2]], &nested);
        assert_eq!(rows.width, 4);
        assert_eq!(rows.column[3], None);
        for s in [0, 1, 2, 4] {
            for p in 0..3 {
                assert_eq!(
                    rows.at(s, p),
                    rec.series[s].values[p],
                    "series {s} point {p}"
                );
            }
        }
    }
}
