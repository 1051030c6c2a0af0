//! The recorded values a trial's scrapes read, grid point by grid point. A scrape reads
//! every series a trial writes at one or two grid points; the recording keeps each series
//! in a column of its own, so a scrape read from there touches a cache line per series,
//! and the lanes of a batch, each at its own block, miss on nearly every one. Laid out by
//! grid point, a scrape reads one contiguous row, and a trial's next scrape the next row.

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
        }
    }

    /// Recorded series `series`' value at grid point `point` (NaN: none there). Only a
    /// series some trial reads has one ([`Rows::new`]).
    #[inline]
    pub(super) fn at(&self, series: usize, point: usize) -> f64 {
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
