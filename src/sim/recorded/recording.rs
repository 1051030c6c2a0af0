//! A recording of the healthy service, as `--baseline` reads it: the traces of one or more
//! files (CSV or Prometheus range-query JSON, as `--trace` reads them) laid on one regular
//! scrape grid, each series kept as what a trial draws from it: a gauge's value at each
//! grid point, a counter's increase since its previous sample (resets corrected, as
//! `rate()` corrects them).
//!
//! The grid's step is the median gap between a series' consecutive samples (a range
//! query's `step`; a scrape interval for raw scrapes, to the second); every sample must sit within a
//! quarter of a step of a grid point, and no two on the same one. A grid point where a
//! series has no sample (a failed scrape, a staleness marker) stays empty: a trial drawing
//! that point gets no sample there either, and the counter's next increase covers the gap,
//! as in the recording: a trial reads it only where its block replays the whole gap
//! ([`Recorded::spanning`], [`super::rows::Rows::get`]); after points from another stretch
//! it would be a burst of the gap's events in one scrape.

use crate::prom::Series;
use crate::prom::sample::is_stale_nan;
use crate::sim::trace::{Trace, TraceError};
use std::collections::BTreeMap;
use std::ops::Range;

/// The labels a trial sets itself on every series it writes: a recording of the service
/// before its canary carries no track, and its service is the plan's.
pub(crate) const TRIAL_LABELS: [&str; 2] = ["service", "track"];

type Labels = Vec<(String, String)>;

/// One series of the recording on the grid.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Recorded {
    pub(crate) name: String,
    /// Its labels but [`TRIAL_LABELS`], sorted.
    pub(crate) labels: Vec<(String, String)>,
    /// A counter (`_total`, `_count`, `_sum`, `_bucket`, the names client libraries give
    /// them): `values` are increases; otherwise a gauge: `values` are the values.
    pub(crate) counter: bool,
    /// Per grid point: the value, or the increase since the series' previous sample (the
    /// first sample's is unknown: empty); NaN where the series has no sample.
    pub(crate) values: Vec<f64>,
    /// A counter's increases over missing points: each grid point whose increase spans
    /// points at which the series has no sample, with the point of its sample before
    /// them, in order.
    pub(crate) spanning: Vec<(usize, usize)>,
    /// Whether every increase is a whole number (request counts; not a `_sum`).
    pub(crate) whole: bool,
    /// The series' own step: the median gap between its samples (0 with one sample).
    pub(crate) step_ms: i64,
    /// Where the series first appears, for messages.
    pub(crate) file: usize,
    pub(crate) line: usize,
    pub(crate) column: usize,
}

impl Recorded {
    /// The sum of its values where it has a sample: a counter's events over the recording.
    pub(crate) fn total(&self) -> f64 {
        self.values.iter().filter(|v| !v.is_nan()).sum()
    }
}

/// How long a range query answers with a series' last sample after its last scrape:
/// Prometheus' default lookback delta.
pub(crate) const LOOKBACK_MS: i64 = 300_000;

/// The recording: its series on one grid.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Recording {
    /// The files, as named on the command line.
    pub(crate) files: Vec<String>,
    pub(crate) step_ms: i64,
    /// Absolute time (Unix ms) of grid point 0.
    pub(crate) start_ms: i64,
    /// Grid points.
    pub(crate) points: usize,
    pub(crate) series: Vec<Recorded>,
}

/// Why a recording cannot be used: the file (index into the files) and the position.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct RecordingError {
    pub(crate) file: usize,
    pub(crate) error: TraceError,
}

fn at(file: usize, s: &Series, message: String, hint: &str) -> RecordingError {
    RecordingError {
        file,
        error: TraceError::new(s.line, s.column, message).hint(hint),
    }
}

/// Whether a series named `name` is a counter, by the suffixes client libraries give.
pub(crate) fn is_counter(name: &str) -> bool {
    ["_total", "_count", "_sum", "_bucket"]
        .iter()
        .any(|s| name.ends_with(s))
}

impl Recording {
    /// A digest of the recording as trials read it (its grid, and every series' name,
    /// labels and values there), as 32 hex digits: 128-bit FNV-1a, which tells recordings
    /// apart (a shard of a run on one recording is not merged with a run on another) but is
    /// no protection against a recording made to collide.
    pub(crate) fn digest(&self) -> String {
        const PRIME: u128 = 0x0000_0000_0100_0000_0000_0000_0000_013b;
        let mut h: u128 = 0x6c62_272e_07bb_0142_62b8_2175_6295_c58d;
        let mut eat = |bytes: &[u8]| {
            for &b in bytes {
                h ^= u128::from(b);
                h = h.wrapping_mul(PRIME);
            }
        };
        for n in [self.step_ms, self.start_ms, self.points as i64] {
            eat(&n.to_le_bytes());
        }
        for s in &self.series {
            eat(s.name.as_bytes());
            for (k, v) in &s.labels {
                eat(&[0]);
                eat(k.as_bytes());
                eat(&[1]);
                eat(v.as_bytes());
            }
            eat(&[2]);
            for v in &s.values {
                eat(&v.to_bits().to_le_bytes());
            }
        }
        format!("{h:032x}")
    }

    /// Lays the traces of `files` (name, trace; absolute times) on one grid.
    pub(crate) fn new(files: Vec<(String, Trace)>) -> Result<Recording, RecordingError> {
        let names = files.iter().map(|(n, _)| n.clone()).collect();
        let all: Vec<(usize, Series)> = files
            .into_iter()
            .enumerate()
            .flat_map(|(f, (_, t))| t.series.into_iter().map(move |s| (f, s)))
            .collect();
        let step_ms = scrape_step(all.iter().map(|(_, s)| s)).ok_or_else(|| {
            let (f, s) = all.first().map_or((0, None), |(f, s)| (*f, Some(s)));
            RecordingError {
                file: f,
                error: TraceError::new(
                    s.map_or(1, |s| s.line),
                    s.map_or(1, |s| s.column),
                    "the recording has no series with two samples: there is no scrape interval to read",
                )
                .hint("export hours to weeks of the healthy service's series, every scrape interval (`promtool query range --step 15s`)"),
            }
        })?;
        let start_ms = all
            .iter()
            .filter_map(|(_, s)| s.samples.first().map(|x| x.t))
            .min()
            .unwrap_or(0);
        let end_ms = all
            .iter()
            .filter_map(|(_, s)| s.samples.last().map(|x| x.t))
            .max()
            .unwrap_or(0);
        let points = ((end_ms - start_ms + step_ms / 2) / step_ms + 1) as usize;
        // Per series (name, labels): where it first appeared (file, line).
        // One series per name and labels but `track` and `service`: the pieces of a
        // series exported in several files (a range query returns at most 11,000 points)
        // are joined; two samples of it at one grid point are refused by `on_grid`.
        let mut joined: BTreeMap<(String, Labels), (usize, Series)> = BTreeMap::new();
        for (file, s) in all {
            let mut labels: Vec<(String, String)> = s
                .labels
                .iter()
                .filter(|(k, _)| !TRIAL_LABELS.contains(&k.as_str()))
                .cloned()
                .collect();
            labels.sort();
            match joined.entry((s.name.clone(), labels)) {
                std::collections::btree_map::Entry::Occupied(mut e) => {
                    let into = &mut e.get_mut().1;
                    // Pieces of one series over time join; one series of two versions or
                    // services at once cannot be told apart once those labels go.
                    let trial_labels = |x: &Series| -> Vec<(String, String)> {
                        x.labels
                            .iter()
                            .filter(|(k, _)| TRIAL_LABELS.contains(&k.as_str()))
                            .cloned()
                            .collect()
                    };
                    let span = |x: &Series| {
                        (
                            x.samples.first().map(|a| a.t),
                            x.samples.last().map(|a| a.t),
                        )
                    };
                    let ((a0, a1), (b0, b1)) = (span(into), span(&s));
                    let overlap = a0 <= b1 && b0 <= a1;
                    if overlap && trial_labels(into) != trial_labels(&s) {
                        let shown = |l: Vec<(String, String)>| {
                            l.iter()
                                .map(|(k, v)| format!("{k}=\"{v}\""))
                                .collect::<Vec<_>>()
                                .join(",")
                        };
                        return Err(at(
                            file,
                            &s,
                            format!(
                                "{} is in the recording for {{{}}} and for {{{}}} at once: a trial sets `track` and `service` itself, so the recording must hold one version of one service",
                                s.display(),
                                shown(trial_labels(into)),
                                shown(trial_labels(&s))
                            ),
                            "export only the stable version of this service (a range query with `track=\"stable\"` and its `service`)",
                        ));
                    }
                    into.samples.extend(s.samples);
                    into.samples.sort_by_key(|x| x.t);
                }
                std::collections::btree_map::Entry::Vacant(e) => {
                    e.insert((file, s));
                }
            }
        }
        let mut series = Vec::with_capacity(joined.len());
        for ((_, labels), (file, s)) in joined {
            series.push(on_grid(file, &s, labels, (start_ms, step_ms, points))?);
        }
        Ok(Recording {
            files: names,
            step_ms,
            start_ms,
            points,
            series,
        })
    }

    /// The share of grid points at which series `i` has a value (a counter: from its
    /// second point, the first increase being unknown), leaving out `gaps` (no trial
    /// replays them).
    pub(crate) fn coverage(&self, i: usize, gaps: &[Range<usize>]) -> f64 {
        let r = &self.series[i];
        let from = usize::from(r.counter);
        let mut in_gap = vec![false; self.points];
        for p in gaps.iter().flat_map(|g| g.clone()) {
            in_gap[p] = true;
        }
        let (mut n, mut have) = (0usize, 0usize);
        for p in (from..self.points).filter(|&p| !in_gap[p]) {
            n += 1;
            have += usize::from(!r.values[p].is_nan());
        }
        if n == 0 {
            return 0.0;
        }
        have as f64 / n as f64
    }

    /// The stretches of grid points (after point 0, whose counters' increases are unknown)
    /// at which no series of the recording has a value: the recorder was down (Prometheus,
    /// or the export), not the service, whose series missing alone leave the others there.
    /// Each begins with the points before it, up to [`LOOKBACK_MS`], at which every series
    /// only repeats its previous sample ([`Self::repeats`]): a range query answers with a
    /// series' last sample for that long after its last scrape, so an export of one shows
    /// the outage as a flat stretch (no request at all) before the gap, or at the end of
    /// the recording when the recorder stopped before the export did.
    pub(crate) fn gaps(&self) -> Vec<Range<usize>> {
        let mut out: Vec<Range<usize>> = Vec::new();
        for p in 1..self.points {
            if self.series.iter().any(|s| !s.values[p].is_nan()) {
                continue;
            }
            match out.last_mut() {
                Some(g) if g.end == p => g.end = p + 1,
                _ => out.push(p..p + 1),
            }
        }
        let most = (LOOKBACK_MS / self.step_ms.max(1)) as usize;
        let mut joined: Vec<Range<usize>> = Vec::with_capacity(out.len());
        // The empty stretch at the end takes the repeated last samples of a recorder that
        // stopped before the export did.
        for mut g in out
            .into_iter()
            .chain(std::iter::once(self.points..self.points))
        {
            let floor = joined
                .last()
                .map_or(1, |j| j.end)
                .max(g.start.saturating_sub(most));
            while g.start > floor && self.repeats(g.start - 1) {
                g.start -= 1;
            }
            match joined.last_mut() {
                _ if g.is_empty() => {}
                Some(j) if j.end == g.start => j.end = g.end,
                _ => joined.push(g),
            }
        }
        joined
    }

    /// Whether at grid point `p` some series has a sample and every one that does only
    /// repeats its previous one: no counter increased, no gauge moved.
    pub(crate) fn repeats(&self, p: usize) -> bool {
        let mut any = false;
        for s in &self.series {
            let v = s.values[p];
            if v.is_nan() {
                continue;
            }
            any = true;
            let same = if s.counter {
                v == 0.0
            } else {
                p > 0 && v == s.values[p - 1]
            };
            if !same {
                return false;
            }
        }
        any
    }

    /// The recording's length, from its first grid point to its last.
    pub(crate) fn span_ms(&self) -> i64 {
        (self.points as i64 - 1) * self.step_ms
    }
}

/// The scrape interval: the median gap between consecutive samples over all series (a
/// missed scrape's double gap is rare), to the whole second when it is a second or more
/// (raw scrapes jitter by milliseconds), if any series has two samples.
fn scrape_step<'s>(series: impl Iterator<Item = &'s Series>) -> Option<i64> {
    let mut gaps: Vec<i64> = series
        .flat_map(|s| s.samples.windows(2).map(|w| w[1].t - w[0].t))
        .collect();
    if gaps.is_empty() {
        return None;
    }
    let mid = gaps.len() / 2;
    let median = *gaps.select_nth_unstable(mid).1;
    Some(if median >= 1000 {
        (median + 500) / 1000 * 1000
    } else {
        median.max(1)
    })
}

/// Series `s` on the grid `(start, step, points)`.
fn on_grid(
    file: usize,
    s: &Series,
    labels: Vec<(String, String)>,
    (start, step, points): (i64, i64, usize),
) -> Result<Recorded, RecordingError> {
    let counter = is_counter(&s.name);
    let mut values = vec![f64::NAN; points];
    let mut previous: Option<(usize, f64)> = None;
    let mut last_point: Option<usize> = None;
    let mut whole = true;
    let mut spanning = Vec::new();
    for x in &s.samples {
        let k = (x.t - start + step / 2).div_euclid(step);
        let off = x.t - (start + k * step);
        if off.abs() > step / 4 {
            return Err(at(
                file,
                s,
                format!(
                    "{} has a sample {} ms off the recording's {} s grid: a recording must be sampled every scrape interval",
                    s.display(),
                    off,
                    step as f64 / 1000.0
                ),
                "export the recording with a range query at one step (`promtool query range --step 15s`), or raw scrapes of one interval",
            ));
        }
        let k = k as usize;
        if previous.is_some_and(|(p, _)| p == k) || last_point == Some(k) {
            return Err(at(
                file,
                s,
                format!(
                    "{} has two samples within half a step of the same grid point (given twice, or in two files that overlap)",
                    s.display()
                ),
                "export the recording with a range query at one step, each stretch of time once",
            ));
        }
        last_point = Some(k);
        if x.v.is_nan() || is_stale_nan(x.v) {
            continue;
        }
        if !counter {
            values[k] = x.v;
        } else if let Some((p, before)) = previous {
            // A drop is a reset: the counter started again from 0.
            let inc = if x.v >= before { x.v - before } else { x.v };
            whole &= inc.fract() == 0.0;
            values[k] = inc;
            if p + 1 < k {
                spanning.push((k, p));
            }
        }
        previous = Some((k, x.v));
    }
    Ok(Recorded {
        name: s.name.clone(),
        labels,
        counter,
        values,
        spanning,
        whole,
        step_ms: scrape_step(std::iter::once(s)).unwrap_or(0),
        file,
        line: s.line,
        column: s.column,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::prom::Sample;

    fn series(name: &str, labels: &[(&str, &str)], samples: &[(i64, f64)]) -> Series {
        Series {
            name: name.into(),
            labels: labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            samples: samples.iter().map(|&(t, v)| Sample { t, v }).collect(),
            line: 1,
            column: 1,
        }
    }

    fn recording(series: Vec<Series>) -> Result<Recording, RecordingError> {
        Recording::new(vec![("r.csv".into(), Trace { series })])
    }

    /// A recorder down from point `down` to point 35 (no samples; none when `down` is 40),
    /// in a recording of a counter and a gauge every 15 s over 40 points that stop moving
    /// at point `flat` (as a range query's export shows an outage: the last sample
    /// repeated) and move again after the gap; when `moved`, with the gauge moving once
    /// more at that point.
    fn outage(flat: usize, down: usize, moved: Option<usize>) -> Recording {
        let at = |p: usize| p as i64 * 15_000;
        let live = |p: usize| p < down || p >= 36;
        let level = |p: usize| match p {
            36.. if down < 36 => (100 + p) as f64,
            _ => p.min(flat) as f64,
        };
        let counter: Vec<(i64, f64)> = (0..40)
            .filter(|&p| live(p))
            .map(|p| (at(p), 100.0 * level(p)))
            .collect();
        let gauge: Vec<(i64, f64)> = (0..40)
            .filter(|&p| live(p))
            .map(|p| (at(p), level(p) + f64::from(u8::from(moved == Some(p)))))
            .collect();
        recording(vec![
            series("http_requests_total", &[("code", "200")], &counter),
            series("memory_bytes", &[], &gauge),
        ])
        .unwrap()
    }

    /// A range query's export of an outage: every series repeats its last sample for up to
    /// the lookback (5m) before the gap, and those points are the gap's too; a series
    /// that still moves, or a flat stretch longer than the lookback, is not.
    #[test]
    fn the_flat_stretch_a_range_export_shows_before_an_outage_is_part_of_the_gap() {
        assert_eq!(outage(40, 30, None).gaps(), vec![30..36]);
        assert_eq!(outage(25, 30, None).gaps(), vec![26..36]);
        // The gauge moved at 28 (and back at 29): the stretch begins after it.
        assert_eq!(outage(25, 30, Some(28)).gaps(), vec![30..36]);
        // Flat from point 4 on: 20 points (5m) before the gap at most.
        assert_eq!(outage(3, 30, None).gaps(), vec![10..36]);
        // The recorder stopped at point 33 and the export went on to 40.
        let stopped = outage(33, 40, None);
        assert_eq!(stopped.gaps(), vec![34..40]);
        let r = outage(25, 30, None);
        assert!((26..30).all(|p| r.repeats(p)) && !r.repeats(25) && !r.repeats(30));
    }

    #[test]
    fn counters_become_increases_with_resets_corrected_and_gaps_kept() {
        let r = recording(vec![series(
            "http_requests_total",
            &[("code", "200"), ("track", "stable")],
            &[(0, 10.0), (15_000, 25.0), (45_001, 40.0), (60_000, 5.0)],
        )])
        .unwrap();
        assert_eq!(r.step_ms, 15_000);
        assert_eq!(r.points, 5);
        assert_eq!(r.series[0].labels, vec![("code".into(), "200".into())]);
        let v = &r.series[0].values;
        assert!(v[0].is_nan() && v[2].is_nan());
        assert_eq!((v[1], v[3], v[4]), (15.0, 15.0, 5.0));
        // Point 3's increase spans the missing point 2, from the sample at point 1.
        assert_eq!(r.series[0].spanning, vec![(3, 1)]);
        assert!(r.series[0].whole);
        // With one series, its missing point is a gap of the whole recording.
        assert_eq!(r.gaps(), vec![2..3]);
        assert_eq!(r.coverage(0, &[]), 0.75);
        assert_eq!(r.coverage(0, &r.gaps()), 1.0);
    }

    #[test]
    fn off_grid_samples_and_twice_recorded_series_are_refused() {
        let off = recording(vec![series(
            "mem",
            &[],
            &[(0, 1.0), (15_000, 1.0), (30_000, 1.0), (40_000, 1.0)],
        )]);
        assert!(
            off.unwrap_err()
                .error
                .message
                .contains("off the recording's 15 s grid")
        );
        let twice = recording(vec![
            series("up", &[("track", "stable")], &[(0, 1.0), (15_000, 1.0)]),
            series("up", &[("track", "canary")], &[(0, 1.0), (15_000, 1.0)]),
        ]);
        assert!(twice.unwrap_err().error.message.contains("at once"));
        let twice = recording(vec![
            series("up", &[("track", "stable")], &[(0, 1.0), (15_000, 1.0)]),
            series("up", &[("track", "stable")], &[(0, 1.0), (15_000, 1.0)]),
        ]);
        assert!(twice.unwrap_err().error.message.contains("two samples"));
        // Pieces of one series over time (as several exports give them) are joined.
        let pieces = recording(vec![
            series("up", &[], &[(0, 1.0), (15_000, 1.0)]),
            series("up", &[], &[(30_000, 1.0), (45_000, 0.0)]),
        ])
        .unwrap();
        assert_eq!(pieces.series.len(), 1);
        assert_eq!(pieces.series[0].values, vec![1.0, 1.0, 1.0, 0.0]);
        assert_eq!(pieces.coverage(0, &[]), 1.0);
        assert!(pieces.gaps().is_empty());
    }
}
