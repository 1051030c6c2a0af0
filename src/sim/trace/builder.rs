//! The trace both readers build: [`Trace`], the [`Builder`] that enforces the trace limits
//! as rows arrive, and the errors and checks the readers share (metric and label names,
//! sample values).

use super::time;
use crate::limits::{MAX_TRACE_SAMPLES, MAX_TRACE_SERIES, MAX_TRACE_SPAN_MS};
use crate::prom::{Sample, Series};
use std::collections::HashMap;
use std::fmt;

/// A whole trace.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Trace {
    pub(crate) series: Vec<Series>,
}

/// What is wrong with a trace file, and where.
#[derive(Debug, Clone, PartialEq)]
pub struct TraceError {
    /// 1-based line and column (in characters).
    pub(crate) line: usize,
    pub(crate) column: usize,
    pub(crate) message: String,
    pub(crate) hint: Option<String>,
}

impl TraceError {
    pub(crate) fn new(line: usize, column: usize, message: impl Into<String>) -> TraceError {
        TraceError {
            line,
            column,
            message: message.into(),
            hint: None,
        }
    }

    pub(crate) fn hint(mut self, hint: impl Into<String>) -> TraceError {
        self.hint = Some(hint.into());
        self
    }
}

impl fmt::Display for TraceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.line, self.column, self.message)
    }
}

/// What to do about a trace past a limit.
pub(crate) const TOO_LARGE_HINT: &str =
    "replay the weeks of the release: export only its time range and the series its rules read";

impl Trace {
    /// The earliest and latest sample times, if any sample exists.
    pub(crate) fn span(&self) -> Option<(i64, i64)> {
        let first = self
            .series
            .iter()
            .filter_map(|s| s.samples.first())
            .map(|s| s.t)
            .min()?;
        let last = self
            .series
            .iter()
            .filter_map(|s| s.samples.last())
            .map(|s| s.t)
            .max()?;
        Some((first, last))
    }

    /// Shifts every timestamp so that `zero` (absolute epoch ms) becomes 0.
    pub(crate) fn rebase(&mut self, zero: i64) {
        for s in &mut self.series {
            for x in &mut s.samples {
                x.t -= zero;
            }
        }
    }
}

/// Collects samples row by row, then sorts each series and checks for repeated
/// timestamps. Shared by both readers, and the one place the trace limits are enforced:
/// [`MAX_TRACE_SERIES`], [`MAX_TRACE_SAMPLES`] (as rows arrive, so memory stays bounded)
/// and [`MAX_TRACE_SPAN_MS`].
///
/// Each row carries `at`, where the reader found it, in the reader's own encoding (a
/// line and column, or a byte offset); [`Builder::finish`] turns it into a line and
/// column only for an error.
#[derive(Default)]
pub(crate) struct Builder {
    index: HashMap<(String, Vec<(String, String)>), usize>,
    series: Vec<Series>,
    /// Per series: (t, v, at) as read.
    rows: Vec<Vec<(i64, f64, u64)>>,
    samples: usize,
}

impl Builder {
    /// The index of the series `name{labels}`, created at `line:column` if new; `labels`
    /// need not be sorted; empty values are dropped. Errs (with the message) past
    /// [`MAX_TRACE_SERIES`].
    pub(crate) fn series_index(
        &mut self,
        name: &str,
        mut labels: Vec<(String, String)>,
        line: usize,
        column: usize,
    ) -> Result<usize, String> {
        labels.retain(|(_, v)| !v.is_empty());
        labels.sort();
        let key = (name.to_string(), labels);
        if let Some(&i) = self.index.get(&key) {
            return Ok(i);
        }
        if self.series.len() == MAX_TRACE_SERIES {
            return Err(format!(
                "the trace holds more than {MAX_TRACE_SERIES} series, the limit for a replay"
            ));
        }
        let i = self.series.len();
        self.series.push(Series {
            name: key.0.clone(),
            labels: key.1.clone(),
            samples: Vec::new(),
            line,
            column,
        });
        self.rows.push(Vec::new());
        self.index.insert(key, i);
        Ok(i)
    }

    /// Adds one sample to series `i`, read at `at`. Errs (with the message) past
    /// [`MAX_TRACE_SAMPLES`].
    pub(crate) fn push_at(&mut self, i: usize, t: i64, v: f64, at: u64) -> Result<(), String> {
        if self.samples == MAX_TRACE_SAMPLES {
            return Err(format!(
                "the trace holds more than {MAX_TRACE_SAMPLES} samples, the limit for a replay"
            ));
        }
        self.samples += 1;
        self.rows[i].push((t, v, at));
        Ok(())
    }

    /// Sorts samples by time (stable: rows keep their file order), rejects a second sample
    /// at the same time and a trace longer than [`MAX_TRACE_SPAN_MS`], and orders the
    /// series. `locate` turns a row's `at` into a line and column.
    pub(crate) fn finish(
        self,
        locate: impl Fn(u64) -> (usize, usize),
    ) -> Result<Trace, TraceError> {
        let error = |at: u64, message: String| {
            let (line, column) = locate(at);
            TraceError::new(line, column, message)
        };
        let mut series = self.series;
        // The earliest time, and the latest with where it was read.
        let mut first: Option<i64> = None;
        let mut last: Option<(i64, u64)> = None;
        for (s, mut rows) in series.iter_mut().zip(self.rows) {
            if !rows.is_sorted_by_key(|r| r.0) {
                rows.sort_by_key(|r| r.0);
            }
            for w in rows.windows(2) {
                if w[0].0 == w[1].0 {
                    let (a, b) = if w[0].2 < w[1].2 {
                        (w[0], w[1])
                    } else {
                        (w[1], w[0])
                    };
                    return Err(error(
                        b.2,
                        format!(
                            "second sample of {} at {} (the first is on line {})",
                            s.display(),
                            time::format_rfc3339(b.0),
                            locate(a.2).0
                        ),
                    )
                    .hint("a series holds one sample per timestamp, as in Prometheus' TSDB"));
                }
            }
            if let (Some(a), Some(b)) = (rows.first(), rows.last()) {
                first = Some(first.map_or(a.0, |f| f.min(a.0)));
                if last.is_none_or(|(t, _)| b.0 > t) {
                    last = Some((b.0, b.2));
                }
            }
            s.samples = rows.iter().map(|r| Sample { t: r.0, v: r.1 }).collect();
        }
        if let (Some(first), Some((last, at))) = (first, last)
            && last.saturating_sub(first) > MAX_TRACE_SPAN_MS
        {
            return Err(error(
                at,
                format!(
                    "the trace spans {} (from {} to this sample at {}), over the limit of {} days for a replay",
                    time::offset(last.saturating_sub(first)).trim_start_matches('+'),
                    time::format_rfc3339(first),
                    time::format_rfc3339(last),
                    MAX_TRACE_SPAN_MS / 86_400_000
                ),
            )
            .hint("replay the weeks of the release: export only its time range"));
        }
        series.sort_by(|a, b| {
            a.name
                .cmp(&b.name)
                .then_with(|| compare_labels(&a.labels, &b.labels))
        });
        Ok(Trace { series })
    }
}

/// Prometheus' `labels.Compare` on label sets sorted by name.
fn compare_labels(a: &[(String, String)], b: &[(String, String)]) -> std::cmp::Ordering {
    for (x, y) in a.iter().zip(b) {
        let o = x.0.cmp(&y.0).then_with(|| x.1.cmp(&y.1));
        if o.is_ne() {
            return o;
        }
    }
    a.len().cmp(&b.len())
}

/// Whether `s` is a valid metric name: `[a-zA-Z_:][a-zA-Z0-9_:]*`.
pub(crate) fn is_metric_name(s: &str) -> bool {
    let mut c = s.chars();
    c.next()
        .is_some_and(|f| f.is_ascii_alphabetic() || f == '_' || f == ':')
        && c.all(|x| x.is_ascii_alphanumeric() || x == '_' || x == ':')
}

/// Whether `s` is a valid label name: `[a-zA-Z_][a-zA-Z0-9_]*`.
pub(crate) fn is_label_name(s: &str) -> bool {
    let mut c = s.chars();
    c.next()
        .is_some_and(|f| f.is_ascii_alphabetic() || f == '_')
        && c.all(|x| x.is_ascii_alphanumeric() || x == '_')
}

/// A sample value: a float as Go's `strconv.ParseFloat` reads one (`NaN`, `+Inf`, `-Inf`,
/// `1e-3`...), or `stale` for a staleness marker when `allow_stale`.
pub(crate) fn parse_value(s: &str, allow_stale: bool) -> Result<f64, String> {
    if allow_stale && s == "stale" {
        return Ok(crate::prom::STALE_NAN);
    }
    let ok_chars = !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'+' | b'-'));
    match s.parse::<f64>() {
        // Any NaN read is an ordinary NaN, never the marker's bit pattern.
        Ok(v) if ok_chars => Ok(if v.is_nan() { f64::NAN } else { v }),
        _ => Err(format!(
            "`{s}` is not a sample value: expected a number, `NaN`, `+Inf`, `-Inf`{}",
            if allow_stale { " or `stale`" } else { "" }
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values() {
        assert_eq!(parse_value("1.5", false), Ok(1.5));
        assert_eq!(parse_value("+Inf", false), Ok(f64::INFINITY));
        assert_eq!(parse_value("-Inf", false), Ok(f64::NEG_INFINITY));
        assert!(parse_value("NaN", false).unwrap().is_nan());
        assert!(!crate::prom::is_stale_nan(
            parse_value("NaN", true).unwrap()
        ));
        assert!(crate::prom::is_stale_nan(
            parse_value("stale", true).unwrap()
        ));
        assert!(parse_value("stale", false).is_err());
        assert!(parse_value("", true).is_err());
        assert!(parse_value("1,5", true).is_err());
    }

    #[test]
    fn names() {
        assert!(is_metric_name("service_track:error_rate:ratio_rate5m"));
        assert!(!is_metric_name("5xx"));
        assert!(is_label_name("__x"));
        assert!(!is_label_name("a:b"));
    }
}
