//! A recorded trace: the samples of named, labelled series over time, read from a CSV file
//! ([`csv`]) or from the JSON a Prometheus query returns ([`promjson`]), and the metric
//! values the plan's rules read from it at each evaluation ([`inputs`]).
//!
//! Both readers produce the same [`Trace`]: one [`Series`] per distinct name and label set,
//! its samples sorted by time (absolute milliseconds since the Unix epoch), staleness
//! markers included. Labels with an empty value are dropped, as Prometheus does (an empty
//! label is the same as no label). Series are ordered as Prometheus orders a sorted select
//! (by name, then label set), which fixes the order in which sums add up.
//!
//! Every error names the line and column of the offending text. The limits on a trace
//! (series, samples, time span) are enforced by the [`Builder`] both readers share, as
//! rows arrive.

pub mod csv;
pub mod inputs;
pub mod promjson;

use crate::limits::{MAX_TRACE_SAMPLES, MAX_TRACE_SERIES, MAX_TRACE_SPAN_MS};
use crate::prom::Sample;
pub use crate::prom::Series;
pub use crate::promql::quote;
use std::collections::HashMap;
use std::fmt;

/// A whole trace.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Trace {
    pub series: Vec<Series>,
}

/// What is wrong with a trace file, and where.
#[derive(Debug, Clone, PartialEq)]
pub struct TraceError {
    /// 1-based line and column (in characters).
    pub line: usize,
    pub column: usize,
    pub message: String,
    pub hint: Option<String>,
}

impl TraceError {
    pub fn new(line: usize, column: usize, message: impl Into<String>) -> TraceError {
        TraceError {
            line,
            column,
            message: message.into(),
            hint: None,
        }
    }

    pub fn hint(mut self, hint: impl Into<String>) -> TraceError {
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
pub const TOO_LARGE_HINT: &str =
    "replay the weeks of the release: export only its time range and the series its rules read";

/// The two file formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Csv,
    PromJson,
}

impl Format {
    /// JSON when the first non-blank character opens an object or array, else CSV.
    pub fn detect(text: &str) -> Format {
        match text
            .trim_start_matches('\u{feff}')
            .trim_start()
            .chars()
            .next()
        {
            Some('{') | Some('[') => Format::PromJson,
            _ => Format::Csv,
        }
    }
}

/// Reads a trace in either format (detected from the text).
pub fn parse(text: &str) -> Result<Trace, TraceError> {
    match Format::detect(text) {
        Format::Csv => csv::parse(text),
        Format::PromJson => promjson::parse(text),
    }
}

impl Trace {
    /// The earliest and latest sample times, if any sample exists.
    pub fn span(&self) -> Option<(i64, i64)> {
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
    pub fn rebase(&mut self, zero: i64) {
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
    pub fn series_index(
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
    pub fn push_at(&mut self, i: usize, t: i64, v: f64, at: u64) -> Result<(), String> {
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
    pub fn finish(self, locate: impl Fn(u64) -> (usize, usize)) -> Result<Trace, TraceError> {
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
                            format_rfc3339(b.0),
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
                    crate::sim::replay::offset(last.saturating_sub(first)).trim_start_matches('+'),
                    format_rfc3339(first),
                    format_rfc3339(last),
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
pub fn is_metric_name(s: &str) -> bool {
    let mut c = s.chars();
    c.next()
        .is_some_and(|f| f.is_ascii_alphabetic() || f == '_' || f == ':')
        && c.all(|x| x.is_ascii_alphanumeric() || x == '_' || x == ':')
}

/// Whether `s` is a valid label name: `[a-zA-Z_][a-zA-Z0-9_]*`.
pub fn is_label_name(s: &str) -> bool {
    let mut c = s.chars();
    c.next()
        .is_some_and(|f| f.is_ascii_alphabetic() || f == '_')
        && c.all(|x| x.is_ascii_alphanumeric() || x == '_')
}

// ----- time -----

/// A timestamp: RFC 3339 (`2024-05-01T12:00:00Z`, `2024-05-01T14:00:00.250+02:00`) or
/// Unix seconds (`1714564800`, `1714564800.25`), to epoch milliseconds. Digits past the
/// millisecond are rounded, half away from zero, as Prometheus' API rounds them.
pub fn parse_timestamp(s: &str) -> Result<i64, String> {
    if s.len() >= 10 && s.as_bytes()[4] == b'-' {
        parse_rfc3339(s)
    } else {
        parse_unix_seconds(s)
    }
}

/// Unix seconds written in decimal, exactly (no float rounding), to milliseconds.
pub fn parse_unix_seconds(s: &str) -> Result<i64, String> {
    let bad = || {
        format!(
            "`{s}` is not a timestamp: expected Unix seconds (`1714564800.25`) or RFC 3339 (`2024-05-01T12:00:00Z`)"
        )
    };
    let (neg, body) = match s.strip_prefix('-') {
        Some(b) => (true, b),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    let (int, frac) = body.split_once('.').unwrap_or((body, ""));
    if int.is_empty()
        || !int.bytes().all(|b| b.is_ascii_digit())
        || !frac.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(bad());
    }
    if int.len() > 12 {
        return Err(format!("`{s}` is out of range for a timestamp"));
    }
    let secs: i64 = int.parse().map_err(|_| bad())?;
    let fb = frac.as_bytes();
    let mut ms = 0i64;
    for i in 0..3 {
        ms = ms * 10 + fb.get(i).map_or(0, |b| (b - b'0') as i64);
    }
    if fb.get(3).is_some_and(|&b| b >= b'5') {
        ms += 1;
    }
    let total = secs * 1000 + ms;
    Ok(if neg { -total } else { total })
}

fn parse_rfc3339(s: &str) -> Result<i64, String> {
    let bad = |why: &str| format!("`{s}` is not an RFC 3339 timestamp: {why}");
    let b = s.as_bytes();
    let num = |r: std::ops::Range<usize>| -> Result<i64, String> {
        let part = s.get(r).ok_or_else(|| bad("too short"))?;
        if part.bytes().all(|c| c.is_ascii_digit()) {
            part.parse::<i64>().map_err(|_| bad("bad number"))
        } else {
            Err(bad(
                "expected YYYY-MM-DDTHH:MM:SS followed by Z or an offset",
            ))
        }
    };
    if b.len() < 20
        || b[7] != b'-'
        || !matches!(b[10], b'T' | b't' | b' ')
        || b[13] != b':'
        || b[16] != b':'
    {
        return Err(bad(
            "expected YYYY-MM-DDTHH:MM:SS followed by Z or an offset",
        ));
    }
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&mo) || d < 1 || d > days_in_month(y, mo) || h > 23 || mi > 59 || sec > 60
    {
        return Err(bad("a field is out of range"));
    }
    let mut i = 19;
    let mut ms = 0i64;
    if b.get(i) == Some(&b'.') {
        let start = i + 1;
        i = start;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i == start {
            return Err(bad("no digits after the decimal point"));
        }
        let frac = &b[start..i];
        for k in 0..3 {
            ms = ms * 10 + frac.get(k).map_or(0, |c| (c - b'0') as i64);
        }
        if frac.get(3).is_some_and(|&c| c >= b'5') {
            ms += 1;
        }
    }
    let offset_min = match &s[i..] {
        "Z" | "z" => 0,
        o if o.len() == 6
            && (o.starts_with('+') || o.starts_with('-'))
            && o.as_bytes()[3] == b':' =>
        {
            let oh = num(i + 1..i + 3)?;
            let om = num(i + 4..i + 6)?;
            if oh > 23 || om > 59 {
                return Err(bad("the offset is out of range"));
            }
            let m = oh * 60 + om;
            if o.starts_with('-') { -m } else { m }
        }
        _ => return Err(bad("expected Z or an offset like +02:00 after the time")),
    };
    let days = days_from_civil(y, mo, d);
    let secs = days * 86_400 + h * 3600 + mi * 60 + sec - offset_min * 60;
    Ok(secs * 1000 + ms)
}

fn is_leap(y: i64) -> bool {
    y % 4 == 0 && (y % 100 != 0 || y % 400 == 0)
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if is_leap(y) => 29,
        _ => 28,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (
        if m <= 2 {
            yoe + era * 400 + 1
        } else {
            yoe + era * 400
        },
        m,
        d,
    )
}

/// Epoch milliseconds as RFC 3339 in UTC: `2024-05-01T12:00:00Z` (milliseconds shown only
/// when not zero).
pub fn format_rfc3339(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let frac = ms.rem_euclid(1000);
    let (y, m, d) = civil_from_days(secs.div_euclid(86_400));
    let sod = secs.rem_euclid(86_400);
    let base = format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}",
        sod / 3600,
        sod % 3600 / 60,
        sod % 60
    );
    if frac == 0 {
        base + "Z"
    } else {
        format!("{base}.{frac:03}Z")
    }
}

/// A sample value: a float as Go's `strconv.ParseFloat` reads one (`NaN`, `+Inf`, `-Inf`,
/// `1e-3`...), or `stale` for a staleness marker when `allow_stale`.
pub fn parse_value(s: &str, allow_stale: bool) -> Result<f64, String> {
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
    fn timestamps() {
        assert_eq!(parse_timestamp("0"), Ok(0));
        assert_eq!(parse_timestamp("1714564800"), Ok(1_714_564_800_000));
        assert_eq!(parse_timestamp("1714564800.25"), Ok(1_714_564_800_250));
        assert_eq!(parse_timestamp("1714564800.0005"), Ok(1_714_564_800_001));
        assert_eq!(parse_timestamp("1714564800.0004"), Ok(1_714_564_800_000));
        assert_eq!(
            parse_timestamp("2024-05-01T12:00:00Z"),
            Ok(1_714_564_800_000)
        );
        assert_eq!(
            parse_timestamp("2024-05-01T14:00:00.250+02:00"),
            Ok(1_714_564_800_250)
        );
        assert_eq!(parse_timestamp("1970-01-01T00:00:00Z"), Ok(0));
        assert_eq!(
            parse_timestamp("2024-02-29T00:00:00Z"),
            Ok(1_709_164_800_000)
        );
        assert!(parse_timestamp("2023-02-29T00:00:00Z").is_err());
        assert!(parse_timestamp("2024-05-01T12:00:00").is_err());
        assert!(parse_timestamp("12:00").is_err());
        assert!(parse_timestamp("1e9").is_err());
        assert!(parse_timestamp("").is_err());
    }

    #[test]
    fn rfc3339_round_trips() {
        for ms in [
            0,
            1_714_564_800_000,
            1_714_564_800_250,
            -86_400_000,
            951_782_400_000,
        ] {
            assert_eq!(
                parse_timestamp(&format_rfc3339(ms)),
                Ok(ms),
                "{}",
                format_rfc3339(ms)
            );
        }
        assert_eq!(
            format_rfc3339(1_714_564_800_250),
            "2024-05-01T12:00:00.250Z"
        );
    }

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
