//! The metric values a batch of recorded trials computes at each evaluation, one column
//! per lane: what full and sparse trials hand to the batch alike ([`Columns`]).

use crate::sim::evaluator::Columns;

/// Per metric and track, each lane's latest value (rows of `width` lanes).
pub(super) struct Values {
    data: Vec<Option<f64>>,
    width: usize,
}

impl Values {
    /// No value yet for `metrics` metrics on both tracks, in `width` lanes.
    pub(super) fn new(metrics: usize, width: usize) -> Values {
        Values {
            data: vec![None; 2 * metrics * width],
            width,
        }
    }

    pub(super) fn columns(&self) -> Columns<'_> {
        Columns {
            data: &self.data,
            width: self.width,
        }
    }

    /// Sets metric `mi`'s value on track `ti` (0: the canary) in lane `l`.
    #[inline]
    pub(super) fn set(&mut self, (mi, ti): (usize, usize), l: usize, v: Option<f64>) {
        self.data[(2 * mi + ti) * self.width + l] = v;
    }

    /// Lane `from` (the last) takes lane `l`'s place.
    pub(super) fn swap_remove(&mut self, l: usize, from: usize) {
        if from != l {
            for row in self.data.chunks_mut(self.width) {
                row[l] = row[from];
            }
        }
    }

    /// Lane `to` takes the values of lane `l` of `from`.
    pub(super) fn adopt(&mut self, to: usize, from: &Values, l: usize) {
        for (row, f) in self
            .data
            .chunks_mut(self.width)
            .zip(from.data.chunks(from.width))
        {
            row[to] = f[l];
        }
    }
}
