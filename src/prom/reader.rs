//! How a query reads its series: a [`Reader`] answers an instant selector and a window's
//! `rate()` or `increase()` (and, from raw samples, the window itself). It exists so that
//! one evaluation, of a built-in query (`query`) or of a custom one (`engine`), serves both
//! a trace's samples and a sparse Monte Carlo trial's window edges.

use super::{DEFAULT_LOOKBACK_MS, RangeCursor, Sample, Semantics, Series};

/// One series read through a cursor (evaluation times only move forward).
#[derive(Debug, Clone)]
pub(crate) struct Cur {
    pub(crate) series: usize,
    cursor: RangeCursor,
}

impl Cur {
    pub(crate) fn new(series: usize) -> Cur {
        Cur {
            series,
            cursor: RangeCursor::new(),
        }
    }

    /// Back before the first sample, to read from any time again.
    pub(crate) fn rewind(&mut self) {
        self.cursor = RangeCursor::new();
    }
}

/// Where a query's series are read from: their samples ([`Raw`]), or a summary that knows
/// only what `rate()` reads (a recorded Monte Carlo trial drawn at its windows' edges,
/// `sim::recorded::sparse`). The sums, `or vector(0)` and quantiles of a built-in query
/// and the custom queries' engine are the same over either.
pub(crate) trait Reader {
    /// `rate()` (`is_rate`) or `increase()` of series `c.series` over the window `(ts - w,
    /// ts]` (closed under 2.x), as Prometheus extrapolates it; None with fewer than two
    /// samples there.
    fn extrapolated(
        &mut self,
        c: &mut Cur,
        window: (i64, i64),
        is_rate: bool,
        sem: Semantics,
    ) -> Option<f64>;

    /// Series `c.series` read by an instant selector at `ts` (5m lookback, staleness
    /// markers honoured).
    fn instant(&mut self, c: &mut Cur, ts: i64, sem: Semantics) -> Option<f64>;

    /// The samples of series `c.series` in the window `(ts - w, ts]` (closed under 2.x),
    /// for a custom query's other range functions; None from a reader that keeps no raw
    /// samples (a sparse trial, whose queries read only `rate()`, `increase()` and
    /// instants: [`super::engine::Bound::reads_edges_only`]).
    fn samples(&mut self, c: &mut Cur, window: (i64, i64), sem: Semantics) -> Option<&[Sample]>;
}

/// Series read from their samples, through each selector's cursor.
pub(crate) struct Raw<'s>(pub(crate) &'s [Series]);

impl Reader for Raw<'_> {
    fn extrapolated(
        &mut self,
        c: &mut Cur,
        (ts, w): (i64, i64),
        is_rate: bool,
        sem: Semantics,
    ) -> Option<f64> {
        let window = c.cursor.window(&self.0[c.series].samples, ts, w, sem);
        if is_rate {
            super::rate(window, ts, w, sem)
        } else {
            super::rate::increase(window, ts, w, sem)
        }
    }

    fn instant(&mut self, c: &mut Cur, ts: i64, sem: Semantics) -> Option<f64> {
        let s = &self.0[c.series].samples;
        c.cursor
            .instant(s, ts, DEFAULT_LOOKBACK_MS, sem)
            .map(|x| x.v)
    }

    fn samples(&mut self, c: &mut Cur, (ts, w): (i64, i64), sem: Semantics) -> Option<&[Sample]> {
        Some(c.cursor.window(&self.0[c.series].samples, ts, w, sem))
    }
}
