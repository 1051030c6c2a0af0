//! A series as the engine reads it: a metric name, its labels, and its samples in time
//! order. Traces are read into series, and the promtool tests `plan render` generates build
//! theirs in memory.

use super::Sample;
use crate::promql::quote;

/// One series: a name, labels and samples.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Series {
    /// The metric name (`__name__`).
    pub(crate) name: String,
    /// The other labels, sorted by name, none empty.
    pub(crate) labels: Vec<(String, String)>,
    /// Sorted by strictly increasing time; absolute epoch milliseconds until
    /// a trace is rebased to its start.
    pub(crate) samples: Vec<Sample>,
    /// Where the series first appears in the file it was read from (0 when made in memory).
    pub(crate) line: usize,
    pub(crate) column: usize,
}

impl Series {
    /// The value of label `key` ("" when absent, as in PromQL).
    pub(crate) fn label(&self, key: &str) -> &str {
        self.labels
            .iter()
            .find(|(k, _)| k == key)
            .map_or("", |(_, v)| v.as_str())
    }

    /// `name{a="x",b="y"}` for messages.
    pub(crate) fn display(&self) -> String {
        let inner: Vec<String> = self
            .labels
            .iter()
            .map(|(k, v)| format!("{k}={}", quote(v)))
            .collect();
        format!("{}{{{}}}", self.name, inner.join(","))
    }
}
